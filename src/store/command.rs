//! Messages from producers to the writer thread.

use crate::error::{AppendError, SyncError};
use crate::event::{AppendOptions, AppendReceipt, Coordinate, EventKind};

use super::body::Body;
use super::ticket::Reply;

/// One event to append, its payload already encoded on the caller's thread.
#[derive(Debug, Clone)]
pub struct BatchItem {
    /// Entity, scope and encoded payload (inline when small: no allocation per event).
    pub(crate) body: Body,
    pub(crate) kind: EventKind,
    /// Options and a bypass reason, boxed and only when there are any: most appends have
    /// none, and every byte of the item is copied through the channel.
    extra: Option<Box<Extra>>,
    /// Written by the store itself (a tombstone): may use the system kinds.
    pub(crate) system: bool,
}

/// The rarer parts of an item.
#[derive(Debug, Clone, Default)]
struct Extra {
    opts: AppendOptions,
    /// The reason of a write around the gates (set only by `Store::bypass`).
    bypass: Option<String>,
}

/// The options of an item without any.
const NO_OPTIONS: AppendOptions = AppendOptions {
    causation: None,
    correlation: None,
    expected: None,
    idempotency_key: None,
    durable: false,
};

fn is_default(o: &AppendOptions) -> bool {
    o.causation.is_none()
        && o.correlation.is_none()
        && o.expected.is_none()
        && o.idempotency_key.is_none()
        && !o.durable
}

pub(crate) type Item = BatchItem;

impl BatchItem {
    /// Encodes `payload` (MessagePack) for an append with default options.
    pub fn new<T: serde::Serialize + ?Sized>(
        coord: &Coordinate,
        kind: EventKind,
        payload: &T,
    ) -> Result<Self, AppendError> {
        let mut body = Body::new(&coord.entity, &coord.scope);
        encode_into(payload, &mut body)?;
        Ok(Self::with_body(body, kind))
    }

    /// An item holding `value` as a payload of `T`'s kind and schema version.
    pub fn typed<T: crate::typed::EventPayload>(
        coord: &Coordinate,
        value: &T,
    ) -> Result<Self, AppendError> {
        let mut body = Body::new(&coord.entity, &coord.scope);
        crate::typed::encode_into(value, &mut body)?;
        Ok(Self::with_body(body, T::KIND))
    }

    /// An item whose payload is already encoded.
    pub fn raw(coord: &Coordinate, kind: EventKind, payload: Vec<u8>) -> Self {
        Self::with_body(
            Body::with_payload(&coord.entity, &coord.scope, &payload),
            kind,
        )
    }

    fn with_body(body: Body, kind: EventKind) -> Self {
        Self {
            body,
            kind,
            extra: None,
            system: false,
        }
    }

    /// The entity name.
    pub fn entity(&self) -> &str {
        self.body.entity()
    }

    /// The scope name.
    pub fn scope(&self) -> &str {
        self.body.scope()
    }

    /// The encoded payload.
    pub fn payload(&self) -> &[u8] {
        self.body.payload()
    }

    /// Entity and scope as an owned [`Coordinate`].
    pub fn coordinate(&self) -> Coordinate {
        Coordinate::new(self.entity(), self.scope())
    }

    /// Sets the options (causation, correlation, expectation, idempotency key).
    pub fn with_options(mut self, opts: AppendOptions) -> Self {
        self.set_options(opts);
        self
    }

    /// The options.
    pub fn options(&self) -> &AppendOptions {
        self.extra.as_ref().map_or(&NO_OPTIONS, |e| &e.opts)
    }

    pub(crate) fn set_options(&mut self, opts: AppendOptions) {
        match (&mut self.extra, is_default(&opts)) {
            (Some(e), _) => e.opts = opts,
            (None, true) => {}
            (None, false) => self.extra = Some(Box::new(Extra { opts, bypass: None })),
        }
    }

    /// The options, to change them.
    pub(crate) fn options_mut(&mut self) -> &mut AppendOptions {
        &mut self.extra.get_or_insert_with(Box::default).opts
    }

    /// The reason of a write around the gates.
    pub(crate) fn bypass(&self) -> Option<&str> {
        self.extra.as_ref().and_then(|e| e.bypass.as_deref())
    }

    pub(crate) fn set_bypass(&mut self, reason: Option<String>) {
        match (&mut self.extra, reason) {
            (Some(e), r) => e.bypass = r,
            (None, None) => {}
            (None, Some(r)) => {
                self.extra = Some(Box::new(Extra {
                    opts: AppendOptions::default(),
                    bypass: Some(r),
                }))
            }
        }
    }
}

/// Encodes a payload as MessagePack with named fields.
pub(crate) fn encode<T: serde::Serialize + ?Sized>(payload: &T) -> Result<Vec<u8>, AppendError> {
    let mut buf = Vec::with_capacity(128);
    encode_into(payload, &mut buf)?;
    Ok(buf)
}

fn encode_into<T: serde::Serialize + ?Sized, W: std::io::Write>(
    payload: &T,
    out: &mut W,
) -> Result<(), AppendError> {
    payload
        .serialize(&mut rmp_serde::Serializer::new(out).with_struct_map())
        .map_err(|e| AppendError::Encode(e.to_string()))
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
    /// Run on the writer thread between batches (a compaction's commit).
    Quiesced {
        task: Box<dyn FnOnce() -> Result<(), String> + Send>,
        reply: Reply<Result<(), String>>,
    },
    #[cfg(feature = "testkit")]
    InjectPanic,
}

/// Why [`Store::try_submit`](crate::Store::try_submit) queued nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrySubmitError {
    /// The writer channel is full: the item comes back, nothing was queued.
    #[error("the writer channel is full")]
    Full(Box<BatchItem>),
    /// The append was refused (closed, poisoned, read-only, denied by a gate).
    #[error(transparent)]
    Refused(#[from] crate::error::AppendError),
}
