//! Typed events: a Rust type bound to an [`EventKind`] and a schema version, and the
//! upcasts that read its older versions as the newest shape.
//!
//! ```
//! use batpak::prelude::*;
//! use batpak::typed::{EventPayload, Upcast};
//! use serde::{Deserialize, Serialize};
//!
//! /// How version 1 of the event was written (kept to read old events).
//! #[derive(Serialize, Deserialize)]
//! struct PlacedV1 { amount: u32 }
//!
//! /// The event today.
//! #[derive(Serialize, Deserialize, Debug, PartialEq)]
//! struct Placed { cents: u64 }
//!
//! impl From<PlacedV1> for Placed {
//!     fn from(v1: PlacedV1) -> Self { Placed { cents: u64::from(v1.amount) * 100 } }
//! }
//! impl EventPayload for PlacedV1 { const KIND: EventKind = EventKind::new(1, 1); }
//! impl EventPayload for Placed {
//!     const KIND: EventKind = EventKind::new(1, 1);
//!     const VERSION: u16 = 2;
//!     const UPCASTS: &'static [Upcast] = &[Upcast::step::<PlacedV1, Placed>()];
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(StoreConfig::new(dir.path()))?;
//! let order = Coordinate::new("order:1", "shop");
//! store.append_typed(&order, &PlacedV1 { amount: 3 })?; // an old build wrote this
//! store.append_typed(&order, &Placed { cents: 450 })?;
//! let placed: Vec<Placed> = store.stream_typed::<Placed>("order:1")?.into_iter().map(|t| t.value).collect();
//! assert_eq!(placed, vec![Placed { cents: 300 }, Placed { cents: 450 }]);
//! # Ok(())
//! # }
//! ```
//!
//! On disk a version-1 payload is plain MessagePack, byte for byte what [`Store::append`]
//! writes, so every event written before a type had versions reads as version 1. A later
//! version is written behind a 4-byte prefix: `0xC1` (a byte MessagePack never uses), `v`,
//! and the version as a big-endian `u16`. [`Event::payload`] skips the prefix;
//! [`Event::decode`] reads it and upcasts.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{AppendError, PayloadError, ReadError};
use crate::event::{Event, EventKind};

use crate::codec::version::header;
pub use crate::codec::version::split;

/// A Rust type stored as the payload of one [`EventKind`].
pub trait EventPayload: Serialize + DeserializeOwned {
    /// The kind its events are written with (one type per kind and version).
    const KIND: EventKind;
    /// The schema version this type is (1 for a type that never changed).
    const VERSION: u16 = 1;
    /// The steps from each older version to the next, oldest first: `UPCASTS[i]` reads
    /// version `i + 1` and makes version `i + 2`. Version `VERSION` needs
    /// `VERSION - 1` of them; a missing step is an error when an event needs it.
    const UPCASTS: &'static [Upcast] = &[];
}

/// One step of a schema: reads the payload of one version, writes the next.
#[derive(Clone, Copy)]
pub struct Upcast {
    from: u16,
    to: u16,
    run: fn(&[u8]) -> Result<Vec<u8>, String>,
}

impl std::fmt::Debug for Upcast {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Upcast({} -> {})", self.from, self.to)
    }
}

impl Upcast {
    /// The step from `A` to `B` through `B: From<A>`; `A::VERSION + 1` must be
    /// `B::VERSION` (checked when the step is used).
    pub const fn step<A: EventPayload, B: EventPayload + From<A>>() -> Self {
        Self {
            from: A::VERSION,
            to: B::VERSION,
            run: run_step::<A, B>,
        }
    }
}

fn run_step<A: EventPayload, B: EventPayload + From<A>>(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let a: A = rmp_serde::from_slice(bytes).map_err(|e| e.to_string())?;
    encode_value(&B::from(a)).map_err(|e| e.to_string())
}

fn encode_value<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, rmp_serde::encode::Error> {
    let mut out = Vec::new();
    value.serialize(&mut rmp_serde::Serializer::new(&mut out).with_struct_map())?;
    Ok(out)
}

/// Writes `value` as a payload of `T::VERSION` into `out`.
pub(crate) fn encode_into<T: EventPayload, W: std::io::Write>(
    value: &T,
    out: &mut W,
) -> Result<(), AppendError> {
    if let Some(h) = header(T::VERSION) {
        out.write_all(&h)
            .map_err(|e| AppendError::Encode(e.to_string()))?;
    }
    value
        .serialize(&mut rmp_serde::Serializer::new(out).with_struct_map())
        .map_err(|e| AppendError::Encode(e.to_string()))
}

/// A decoded event: its metadata and payload as stored, and the value in `T`'s shape.
#[derive(Debug, Clone)]
pub struct Typed<T> {
    /// The event as stored.
    pub event: Event,
    /// The payload, upcast to `T`'s version.
    pub value: T,
}

impl Event {
    /// The schema version the payload was written with (1 when it carries none).
    pub fn schema_version(&self) -> u16 {
        split(&self.payload).0
    }

    /// Decodes the payload as `T`, upcasting an older version through `T::UPCASTS`.
    /// The error names the event's kind, version and entity.
    pub fn decode<T: EventPayload>(&self) -> Result<T, ReadError> {
        let fail = |reason: String| {
            ReadError::Payload(Box::new(PayloadError {
                id: self.id.to_string(),
                entity: self.coordinate.entity.clone(),
                kind: self.kind.to_string(),
                version: self.schema_version(),
                type_name: std::any::type_name::<T>(),
                reason,
            }))
        };
        if self.kind != T::KIND {
            return Err(fail(format!("the type reads kind {}", T::KIND)));
        }
        let (version, body) = split(&self.payload);
        if version > T::VERSION {
            return Err(fail(format!(
                "written as version {version}, newer than the type's {}",
                T::VERSION
            )));
        }
        let mut owned: Option<Vec<u8>> = None;
        let mut at = version;
        while at < T::VERSION {
            let step = T::UPCASTS
                .iter()
                .find(|u| u.from == at)
                .ok_or_else(|| fail(format!("no upcast from version {at} to {}", at + 1)))?;
            if step.to != at + 1 {
                return Err(fail(format!(
                    "the upcast from version {at} makes version {}, not {}",
                    step.to,
                    at + 1
                )));
            }
            let input = owned.as_deref().unwrap_or(body);
            let next =
                (step.run)(input).map_err(|e| fail(format!("upcast from version {at}: {e}")))?;
            owned = Some(next);
            at += 1;
        }
        rmp_serde::from_slice(owned.as_deref().unwrap_or(body)).map_err(|e| fail(e.to_string()))
    }

    /// [`Event::decode`] into a [`Typed`], keeping the event.
    pub fn typed<T: EventPayload>(self) -> Result<Typed<T>, ReadError> {
        let value = self.decode::<T>()?;
        Ok(Typed { event: self, value })
    }
}
