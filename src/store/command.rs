//! Messages from producers to the writer thread.

use crate::error::{AppendError, SyncError};
use crate::event::{AppendOptions, AppendReceipt, Coordinate, EventKind};

use super::ticket::Reply;

/// One event to append, its payload already encoded on the caller's thread.
#[derive(Debug, Clone)]
pub struct BatchItem {
    pub(crate) coord: Coordinate,
    pub(crate) kind: EventKind,
    pub(crate) payload: Vec<u8>,
    pub(crate) opts: AppendOptions,
    /// The reason of a write around the gates (set only by `Store::bypass`).
    pub(crate) bypass: Option<String>,
}

pub(crate) type Item = BatchItem;

impl BatchItem {
    /// Encodes `payload` (MessagePack) for an append with default options.
    pub fn new<T: serde::Serialize + ?Sized>(
        coord: &Coordinate,
        kind: EventKind,
        payload: &T,
    ) -> Result<Self, AppendError> {
        Ok(Self::raw(coord, kind, encode(payload)?))
    }

    /// An item whose payload is already encoded.
    pub fn raw(coord: &Coordinate, kind: EventKind, payload: Vec<u8>) -> Self {
        Self {
            coord: coord.clone(),
            kind,
            payload,
            opts: AppendOptions::default(),
            bypass: None,
        }
    }

    /// Sets the options (causation, correlation, expectation, idempotency key).
    pub fn with_options(mut self, opts: AppendOptions) -> Self {
        self.opts = opts;
        self
    }
}

/// Encodes a payload as MessagePack with named fields.
pub(crate) fn encode<T: serde::Serialize + ?Sized>(payload: &T) -> Result<Vec<u8>, AppendError> {
    let mut buf = Vec::with_capacity(128);
    payload
        .serialize(&mut rmp_serde::Serializer::new(&mut buf).with_struct_map())
        .map_err(|e| AppendError::Encode(e.to_string()))?;
    Ok(buf)
}

/// What [`Store::close`](crate::Store::close) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloseReport {
    /// Commands written after the close began (at most `shutdown_drain_limit`).
    pub drained: u64,
    /// Commands rejected with [`AppendError::Closed`] because the drain limit was reached.
    pub rejected: u64,
    /// The index checkpoint was written (the next open skips the rebuild).
    pub checkpoint_written: bool,
    /// What went wrong, if the final sync or the checkpoint failed.
    pub error: Option<String>,
}

// Appends are the hot path and most of the traffic: boxing their item to shrink the
// rarer variants would add an allocation per event.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Command {
    Append {
        item: Item,
        reply: Reply<Result<AppendReceipt, AppendError>>,
        /// Enqueue time, for the append-latency histogram (`None` with telemetry off).
        at: Option<std::time::Instant>,
    },
    Batch {
        items: Vec<Item>,
        durable: bool,
        reply: Reply<Result<Vec<AppendReceipt>, AppendError>>,
        at: Option<std::time::Instant>,
    },
    Sync {
        reply: Reply<Result<(), SyncError>>,
    },
    Shutdown {
        reply: Reply<CloseReport>,
    },
    #[cfg(feature = "testkit")]
    InjectPanic,
}
