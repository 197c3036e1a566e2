//! The typed face of the store: appends and reads of [`EventPayload`] types, beside the
//! raw ones and on the same path (a typed append is a [`BatchItem`] like any other).

use crate::error::{AppendError, ReadError};
use crate::event::{AppendOptions, AppendReceipt, Coordinate, Region};
use crate::typed::{EventPayload, Typed};

use super::{BatchItem, Store};

impl Store {
    /// Appends `value` with its type's kind and schema version.
    pub fn append_typed<T: EventPayload>(
        &self,
        coord: &Coordinate,
        value: &T,
    ) -> Result<AppendReceipt, AppendError> {
        self.append_typed_with(coord, value, AppendOptions::default())
    }

    /// [`Store::append_typed`] with causation, correlation, expectation, idempotency key
    /// or a durability wait.
    pub fn append_typed_with<T: EventPayload>(
        &self,
        coord: &Coordinate,
        value: &T,
        opts: AppendOptions,
    ) -> Result<AppendReceipt, AppendError> {
        self.append_raw(BatchItem::typed(coord, value)?.with_options(opts))
    }

    /// The events of `entity` of `T`'s kind, in sequence order, each upcast to `T`.
    /// Events of other kinds are left out; one that does not decode is an error naming
    /// it.
    pub fn stream_typed<T: EventPayload>(&self, entity: &str) -> Result<Vec<Typed<T>>, ReadError> {
        self.query_typed(&Region::entity(entity))
    }

    /// The events in `region` of `T`'s kind, each upcast to `T`.
    pub fn query_typed<T: EventPayload>(
        &self,
        region: &Region,
    ) -> Result<Vec<Typed<T>>, ReadError> {
        let region = region.clone().with_kind(T::KIND);
        self.query_iter(&region)
            .map(|e| e.and_then(|e| e.typed::<T>()))
            .collect()
    }
}
