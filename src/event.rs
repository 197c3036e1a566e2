//! The event model: ids, kinds, coordinates, stored events, query regions and receipts.

use std::fmt;
use std::ops::{Bound, RangeBounds};

use serde::de::DeserializeOwned;

use crate::error::ReadError;

/// A unique, ordered event id.
///
/// Ids are derived from the store id (high 64 bits) and the event's global sequence (low
/// 64 bits), so they are unique across stores, ordered like the sequence within one store,
/// and independent of the clock: a clock that jumps backwards changes no id and no order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(pub u128);

impl EventId {
    /// The id of sequence `seq` in the store with id `store`.
    pub const fn new(store: u64, seq: u64) -> Self {
        Self(((store as u128) << 64) | seq as u128)
    }

    /// The global sequence this id was derived from.
    pub const fn sequence(self) -> u64 {
        self.0 as u64
    }

    /// The id of the store that wrote the event.
    pub const fn store(self) -> u64 {
        (self.0 >> 64) as u64
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({self})")
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}-{}", self.store(), self.sequence())
    }
}

/// The type of an event: a category (high byte) and a type within it (low byte).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct EventKind(pub u16);

impl EventKind {
    /// The category of the store's own events; appends of it are refused.
    pub const SYSTEM: u8 = 0xFF;
    /// A tombstone of an entity (see [`Store::tombstone_entity`](crate::Store::tombstone_entity)).
    pub const TOMBSTONE_ENTITY: Self = Self::new(Self::SYSTEM, 1);
    /// A tombstone of a scope (see [`Store::tombstone_scope`](crate::Store::tombstone_scope)).
    pub const TOMBSTONE_SCOPE: Self = Self::new(Self::SYSTEM, 2);
    /// A durable consumer's acknowledged position (see [`Store::consumer`](crate::Store::consumer)).
    pub const CONSUMER_POSITION: Self = Self::new(Self::SYSTEM, 3);

    /// `true` for the store's own kinds (category 255).
    pub const fn is_system(self) -> bool {
        self.category() == Self::SYSTEM
    }

    /// A kind from a category and a type code.
    pub const fn new(category: u8, code: u8) -> Self {
        Self(((category as u16) << 8) | code as u16)
    }

    /// The category (high byte).
    pub const fn category(self) -> u8 {
        (self.0 >> 8) as u8
    }

    /// The type within the category (low byte).
    pub const fn code(self) -> u8 {
        self.0 as u8
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.category(), self.code())
    }
}

/// Where an event belongs: the entity it describes and the scope (tenant, stream family)
/// it lives in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Coordinate {
    /// The entity, e.g. `order:42`.
    pub entity: String,
    /// The scope, e.g. `tenant-3`.
    pub scope: String,
}

/// Longest entity or scope name, in bytes.
pub const MAX_NAME_BYTES: usize = 1024;

impl Coordinate {
    /// A coordinate from an entity and a scope.
    pub fn new(entity: impl Into<String>, scope: impl Into<String>) -> Self {
        Self {
            entity: entity.into(),
            scope: scope.into(),
        }
    }
}

impl fmt::Display for Coordinate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.entity, self.scope)
    }
}

/// The optimistic-concurrency expectation of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// The entity must have no events yet.
    NoEvents,
    /// The entity's latest event must have exactly this global sequence.
    Sequence(u64),
}

/// Optional parts of an append.
#[derive(Debug, Clone, Default)]
pub struct AppendOptions {
    /// The event that caused this one; it must exist.
    pub causation: Option<EventId>,
    /// The correlation (the root of a causal conversation); defaults to the cause's
    /// correlation, or the event itself for a root.
    pub correlation: Option<EventId>,
    /// Optimistic concurrency: the entity's expected last sequence.
    pub expected: Option<Expected>,
    /// A caller-chosen key: a repeated append with a remembered key returns the first
    /// receipt instead of writing again (see
    /// `StoreConfig::idempotency_window`).
    pub idempotency_key: Option<u128>,
    /// Return the receipt only after the sync that covers the event.
    pub durable: bool,
}

/// How many of the most recent idempotency keys are remembered by default; the store's
/// own window is `StoreConfig::idempotency_window`.
pub const IDEMPOTENCY_WINDOW: usize = 65_536;

impl AppendOptions {
    /// Names the cause.
    pub fn caused_by(mut self, id: EventId) -> Self {
        self.causation = Some(id);
        self
    }

    /// Names the correlation.
    pub fn correlated_with(mut self, id: EventId) -> Self {
        self.correlation = Some(id);
        self
    }

    /// Sets the optimistic-concurrency expectation.
    pub fn expect(mut self, expected: Expected) -> Self {
        self.expected = Some(expected);
        self
    }

    /// Sets the idempotency key.
    pub fn idempotency_key(mut self, key: u128) -> Self {
        self.idempotency_key = Some(key);
        self
    }

    /// Waits for durability before returning the receipt.
    pub fn durable(mut self) -> Self {
        self.durable = true;
        self
    }
}

/// What the writer reports for a written event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendReceipt {
    /// The event id.
    pub id: EventId,
    /// The global sequence.
    pub sequence: u64,
    /// The segment number the frame was written to.
    pub segment: u64,
    /// The frame's byte offset in that segment.
    pub offset: u64,
    /// The event's timestamp (microseconds since the epoch).
    pub timestamp_us: u64,
    /// `true` when the sync covering the event had completed before the receipt was sent.
    pub durable: bool,
    /// `true` when the idempotency key matched an earlier event and nothing was written.
    pub deduplicated: bool,
}

/// An event as read back from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The id.
    pub id: EventId,
    /// The global sequence.
    pub sequence: u64,
    /// Microseconds since the epoch, from the store's clock.
    pub timestamp_us: u64,
    /// The kind.
    pub kind: EventKind,
    /// Entity and scope.
    pub coordinate: Coordinate,
    /// The cause, if any.
    pub causation: Option<EventId>,
    /// The correlation (the event itself for a root).
    pub correlation: EventId,
    /// The idempotency key the event was written with.
    pub idempotency_key: Option<u128>,
    /// Why the event was written around the policy gates, if it was.
    pub bypass_reason: Option<String>,
    /// The payload as encoded (MessagePack).
    pub payload: Vec<u8>,
}

impl Event {
    /// Decodes the payload into `T`.
    /// A versioned payload (a typed event of schema version 2 or later) is decoded without its prefix and
    /// without upcasting: [`Event::decode`] upcasts.
    pub fn payload<T: DeserializeOwned>(&self) -> Result<T, ReadError> {
        let (_, body) = crate::codec::version::split(&self.payload);
        rmp_serde::from_slice(body).map_err(|e| ReadError::Decode {
            id: self.id.to_string(),
            reason: e.to_string(),
        })
    }

    /// The raw encoded payload.
    pub fn payload_bytes(&self) -> &[u8] {
        &self.payload
    }
}

/// A query predicate: events matching every given part, in sequence order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// Only this entity.
    pub entity: Option<String>,
    /// Only this scope.
    pub scope: Option<String>,
    /// Only these kinds (empty = every kind).
    pub kinds: Vec<EventKind>,
    /// First sequence (inclusive).
    pub from_sequence: u64,
    /// Last sequence (inclusive).
    pub to_sequence: u64,
}

impl Default for Region {
    fn default() -> Self {
        Self::all()
    }
}

impl Region {
    /// Every event.
    pub fn all() -> Self {
        Self {
            entity: None,
            scope: None,
            kinds: Vec::new(),
            from_sequence: 0,
            to_sequence: u64::MAX,
        }
    }

    /// Every event of one entity.
    pub fn entity(entity: impl Into<String>) -> Self {
        Self::all().with_entity(entity)
    }

    /// Every event of one scope.
    pub fn scope(scope: impl Into<String>) -> Self {
        Self::all().with_scope(scope)
    }

    /// Restricts to an entity.
    pub fn with_entity(mut self, entity: impl Into<String>) -> Self {
        self.entity = Some(entity.into());
        self
    }

    /// Restricts to a scope.
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Adds a kind to the allowed kinds.
    pub fn with_kind(mut self, kind: EventKind) -> Self {
        self.kinds.push(kind);
        self
    }

    /// Restricts to a sequence range.
    pub fn with_sequences(mut self, range: impl RangeBounds<u64>) -> Self {
        self.from_sequence = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        self.to_sequence = match range.end_bound() {
            Bound::Included(&e) => e,
            Bound::Excluded(&e) => e.saturating_sub(1),
            Bound::Unbounded => u64::MAX,
        };
        self
    }

    /// `true` when `kind` is allowed.
    pub fn allows_kind(&self, kind: EventKind) -> bool {
        self.kinds.is_empty() || self.kinds.contains(&kind)
    }

    /// `true` when the event matches every part of the region.
    pub fn matches(&self, event: &Event) -> bool {
        (self.from_sequence..=self.to_sequence).contains(&event.sequence)
            && self.allows_kind(event.kind)
            && self
                .entity
                .as_ref()
                .is_none_or(|e| *e == event.coordinate.entity)
            && self
                .scope
                .as_ref()
                .is_none_or(|s| *s == event.coordinate.scope)
    }
}
