//! Durable, named consumers: at-least-once delivery of a region's events, in order, from a
//! position kept in the store itself.
//!
//! A consumer reads from the log, never from the subscription ring: the ring is only its
//! doorbell (a consumer registers one before its first read, so no append between a read
//! and a wait goes unnoticed, and a ring that overflows costs a wake-up, not an event).
//! Catching up and following live are the same loop: read the matching events after the
//! last one delivered, and when there are none, wait for the doorbell.
//!
//! The position is an event of the store's own (kind [`EventKind::CONSUMER_POSITION`],
//! entity `~consumer:NAME`), appended durably by [`Consumer::ack`]. Sequences are synced
//! in order, so an acknowledged position never names an event a power cut took: after any
//! crash, of the application or of the machine, the consumer resumes at or before the
//! first event it had not acknowledged. Retention never removes the store's own events.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::error::{AppendError, ReadError};
use crate::event::{AppendOptions, Coordinate, Event, EventKind, Region};

use super::query::QueryCursor;
use super::{BatchItem, RecvError, Store, Subscription};

/// The scope of every consumer position event.
pub const CONSUMER_SCOPE: &str = "~consumers";
/// The prefix of a consumer position event's entity (then the consumer's name).
pub const CONSUMER_ENTITY_PREFIX: &str = "~consumer:";
/// The longest consumer name, in bytes.
pub const MAX_CONSUMER_NAME: usize = 128;
/// Events read from the log at a time.
const CHUNK: usize = 512;

/// Why a consumer could not be made, read or acknowledged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumerError {
    /// The name is empty, too long or holds a control character.
    #[error("consumer name {name:?}: {reason}")]
    Name {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The store was opened read-only: a consumer must be able to keep its position.
    #[error("consumer {0:?}: the store is open read-only and cannot keep a position")]
    ReadOnly(String),
    /// Another consumer of this name is open on the store.
    #[error("consumer {0:?} is already open on this store")]
    InUse(String),
    /// The stored position names a sequence the log does not have.
    #[error("consumer {name:?}: its stored position {position} is past the log's end {end}")]
    AheadOfLog {
        /// The consumer.
        name: String,
        /// The position stored.
        position: u64,
        /// The newest sequence in the log.
        end: u64,
    },
    /// An acknowledgement named an event not yet delivered.
    #[error("consumer {name:?}: cannot acknowledge {sequence}, the last delivered is {delivered}")]
    NotDelivered {
        /// The consumer.
        name: String,
        /// The sequence acknowledged.
        sequence: u64,
        /// The last sequence delivered.
        delivered: u64,
    },
    /// Reading the log or the stored position failed.
    #[error("consumer {name:?}: {source}")]
    Read {
        /// The consumer.
        name: String,
        /// The read error.
        #[source]
        source: ReadError,
    },
    /// Writing the position failed.
    #[error("consumer {name:?}: keeping its position failed: {source}")]
    Ack {
        /// The consumer.
        name: String,
        /// The append error.
        #[source]
        source: AppendError,
    },
    /// The store was closed.
    #[error("the store was closed")]
    Closed,
}

/// A durable, named reader of a region (see the module documentation).
pub struct Consumer<'s> {
    store: &'s Store,
    name: String,
    region: Region,
    doorbell: Subscription,
    buffered: VecDeque<Event>,
    /// The first sequence not yet looked at.
    next: u64,
    /// The last sequence delivered (0: none).
    delivered: u64,
    /// The last sequence acknowledged (0: none).
    acked: u64,
}

impl std::fmt::Debug for Consumer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("name", &self.name)
            .field("delivered", &self.delivered)
            .field("acked", &self.acked)
            .finish()
    }
}

fn check_name(name: &str) -> Result<(), ConsumerError> {
    let reason = if name.is_empty() {
        "empty"
    } else if name.len() > MAX_CONSUMER_NAME {
        "longer than 128 bytes"
    } else if name.chars().any(char::is_control) {
        "holds a control character"
    } else {
        return Ok(());
    };
    Err(ConsumerError::Name {
        name: name.to_string(),
        reason,
    })
}

fn position_coordinate(name: &str) -> Coordinate {
    Coordinate::new(format!("{CONSUMER_ENTITY_PREFIX}{name}"), CONSUMER_SCOPE)
}

impl Store {
    /// The durable consumer `name` of `region`: it delivers, in sequence order, every
    /// matching event after its stored position (0 for a new name), catching up from the
    /// log and then following live appends. Events are delivered once written; call
    /// [`Consumer::ack`] after handling them to move the stored position (a restart
    /// delivers again what was not acknowledged).
    pub fn consumer(&self, name: &str, region: Region) -> Result<Consumer<'_>, ConsumerError> {
        check_name(name)?;
        if self.is_read_only() {
            return Err(ConsumerError::ReadOnly(name.to_string()));
        }
        if !self.shared.claim_consumer(name) {
            return Err(ConsumerError::InUse(name.to_string()));
        }
        // From here on the claim is released by the consumer's drop, or here on an error.
        let doorbell = self.subscribe(region.clone());
        let mut c = Consumer {
            store: self,
            name: name.to_string(),
            region,
            doorbell,
            buffered: VecDeque::new(),
            next: 1,
            delivered: 0,
            acked: 0,
        };
        let acked = c.stored_position()?;
        let end = self.shared.index().visible;
        if acked > end {
            return Err(ConsumerError::AheadOfLog {
                name: c.name.clone(),
                position: acked,
                end,
            });
        }
        c.acked = acked;
        c.delivered = acked;
        c.next = acked + 1;
        Ok(c)
    }
}

impl Consumer<'_> {
    /// The consumer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The last sequence acknowledged (stored): where a restart resumes after.
    pub fn position(&self) -> u64 {
        self.acked
    }

    /// The last sequence delivered by this consumer (its position until something is).
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Sequences written to the log after the last one delivered (of any region: an upper
    /// bound of the events still to come).
    pub fn lag(&self) -> u64 {
        self.store
            .shared
            .index()
            .visible
            .saturating_sub(self.delivered)
    }

    /// Waits for the next event.
    pub fn recv(&mut self) -> Result<Event, ConsumerError> {
        loop {
            if let Some(e) = self.recv_timeout(Duration::from_secs(3600))? {
                return Ok(e);
            }
        }
    }

    /// The next event if one is already written.
    pub fn try_recv(&mut self) -> Result<Option<Event>, ConsumerError> {
        self.recv_timeout(Duration::ZERO)
    }

    /// Waits at most `timeout` for the next event; `None` when none came.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<Event>, ConsumerError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.buffered.pop_front() {
                self.delivered = e.sequence;
                return Ok(Some(e));
            }
            if self.fill()? {
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.doorbell.recv_timeout(left) {
                // Rung: drain the ring (the events themselves are read from the log).
                Ok(_) => while self.doorbell.try_recv().is_ok() {},
                Err(RecvError::Timeout) => return Ok(None),
                Err(_) => return self.last_look(),
            }
        }
    }

    /// The store closed under the consumer: what is still written is delivered, then
    /// [`ConsumerError::Closed`].
    fn last_look(&mut self) -> Result<Option<Event>, ConsumerError> {
        match self.fill() {
            Ok(true) => Ok(self
                .buffered
                .pop_front()
                .inspect(|e| self.delivered = e.sequence)),
            _ => Err(ConsumerError::Closed),
        }
    }

    /// Reads the next matching events from the log; `true` when some were buffered.
    fn fill(&mut self) -> Result<bool, ConsumerError> {
        let seen = self.store.shared.index().visible;
        let mut cursor = QueryCursor::new(self.region.clone().with_sequences(self.next..));
        let events = self
            .store
            .shared
            .next_chunk(&mut cursor, CHUNK)
            .map_err(|source| self.read_error(source))?;
        let full = events.len() == CHUNK;
        if let Some(last) = events.last() {
            self.next = last.sequence + 1;
        }
        if !full {
            // Every matching event up to `seen` was in this read.
            self.next = self.next.max(seen + 1);
        }
        let before = self.buffered.len();
        self.buffered.extend(
            events
                .into_iter()
                .filter(|e| e.kind != EventKind::CONSUMER_POSITION),
        );
        Ok(self.buffered.len() > before)
    }

    fn read_error(&self, source: ReadError) -> ConsumerError {
        match source {
            ReadError::Closed => ConsumerError::Closed,
            source => ConsumerError::Read {
                name: self.name.clone(),
                source,
            },
        }
    }

    /// The position stored by the last acknowledgement of this name (0 for none).
    fn stored_position(&self) -> Result<u64, ConsumerError> {
        let coord = position_coordinate(&self.name);
        let region = Region::entity(coord.entity).with_kind(EventKind::CONSUMER_POSITION);
        let last = self
            .store
            .query(&region)
            .map_err(|source| self.read_error(source))?
            .pop();
        match last {
            None => Ok(0),
            Some(e) => e.payload::<u64>().map_err(|source| self.read_error(source)),
        }
    }

    /// Stores `sequence` as handled (with every matching event before it) and returns once
    /// that is durable. A sequence at or before the stored position changes nothing; one
    /// past the last delivered is refused.
    pub fn ack(&mut self, sequence: u64) -> Result<(), ConsumerError> {
        if sequence <= self.acked {
            return Ok(());
        }
        if sequence > self.delivered {
            return Err(ConsumerError::NotDelivered {
                name: self.name.clone(),
                sequence,
                delivered: self.delivered,
            });
        }
        let ack = |source| ConsumerError::Ack {
            name: self.name.clone(),
            source,
        };
        let mut item = BatchItem::new(
            &position_coordinate(&self.name),
            EventKind::CONSUMER_POSITION,
            &sequence,
        )
        .map_err(ack)?
        .with_options(AppendOptions {
            durable: true,
            ..AppendOptions::default()
        });
        item.system = true;
        self.store
            .submit_ungated(item)
            .and_then(super::Ticket::wait)
            .map_err(ack)?;
        self.acked = sequence;
        Ok(())
    }

    /// [`Consumer::ack`] of the last event delivered.
    pub fn ack_delivered(&mut self) -> Result<(), ConsumerError> {
        self.ack(self.delivered)
    }
}

impl Drop for Consumer<'_> {
    fn drop(&mut self) {
        self.store.shared.release_consumer(&self.name);
    }
}
