//! Policy gates: a [`Gate`] looks at a [`Proposal`] and a read-only [`StoreView`] and
//! allows it or returns a [`Denial`].
//!
//! A store opened with a [`GateSet`] (see [`OpenOptions::with_gates`]) cannot be written
//! around it: its plain `append`, `append_batch` and `submit` are gated too, and the one
//! ungated path, [`Store::bypass`], is recorded durably in the event (a bypass flag and the
//! reason) and in the [`DecisionLog`]. [`Store::pipeline`] turns a proposal into a sealed
//! [`Receipt`] that only a passed evaluation can produce.
//!
//! **Where gates run.** On the caller's thread, before the append is queued, so a slow gate
//! slows only its caller and never the writer. **Races.** A gate's reads of the store see
//! what was written when it ran; another append may land between the check and the write.
//! When a gate reads the proposal's entity sequence through [`StoreView::entity_sequence`]
//! and the caller set no expectation, the append is sent with that sequence as its
//! expectation, so the writer refuses it (`AppendError::Conflict`) if the entity moved on:
//! the decision a gate made is never applied to a state it did not see.
//!
//! [`OpenOptions::with_gates`]: crate::OpenOptions::with_gates
//! [`Store::bypass`]: crate::Store::bypass
//! [`Store::pipeline`]: crate::Store::pipeline

mod builtin;
mod log;
mod pipeline;

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use crate::event::{AppendOptions, Coordinate, Event, EventId, EventKind};
use crate::store::BatchItem;

pub use builtin::{AllowedKinds, DecodesAs, MaxPayloadSize, RateLimit, RequiresCausation};
pub use log::{Decision, DecisionLog, GateCounters, Outcome};
pub use pipeline::{Pipeline, Receipt};

pub use crate::error::Denial;

/// A proposed append, as gates see it.
#[derive(Debug, Clone)]
pub struct Proposal {
    pub(crate) item: BatchItem,
}

impl Proposal {
    /// A proposal with its payload encoded (MessagePack) on the caller's thread.
    pub fn new<T: serde::Serialize + ?Sized>(
        coord: &Coordinate,
        kind: EventKind,
        payload: &T,
    ) -> Result<Self, crate::AppendError> {
        Ok(Self {
            item: BatchItem::new(coord, kind, payload)?,
        })
    }

    /// Sets causation, correlation, expectation or idempotency key.
    pub fn with_options(mut self, opts: AppendOptions) -> Self {
        self.item = self.item.with_options(opts);
        self
    }

    /// The entity name.
    pub fn entity(&self) -> &str {
        self.item.entity()
    }

    /// The scope name.
    pub fn scope(&self) -> &str {
        self.item.scope()
    }

    /// Entity and scope as an owned [`Coordinate`].
    pub fn coordinate(&self) -> Coordinate {
        self.item.coordinate()
    }

    /// The kind.
    pub fn kind(&self) -> EventKind {
        self.item.kind
    }

    /// The encoded payload.
    pub fn payload_bytes(&self) -> &[u8] {
        self.item.payload()
    }

    /// The payload decoded into `T`.
    pub fn payload<T: DeserializeOwned>(&self) -> Result<T, String> {
        rmp_serde::from_slice(self.item.payload()).map_err(|e| e.to_string())
    }

    /// The named cause.
    pub fn causation(&self) -> Option<EventId> {
        self.item.options().causation
    }

    /// The named correlation.
    pub fn correlation(&self) -> Option<EventId> {
        self.item.options().correlation
    }
}

/// What a gate may read of the store: what was written when it runs.
pub struct StoreView<'a> {
    pub(crate) store: &'a crate::Store,
    pub(crate) observed: RefCell<Vec<(String, Option<u64>)>>,
}

impl StoreView<'_> {
    /// The sequence of the entity's latest event (`None` = no events). Reading it makes the
    /// append conditional on it (see the module documentation).
    pub fn entity_sequence(&self, entity: &str) -> Option<u64> {
        let seq = self.store.entity_sequence(entity);
        self.observed.borrow_mut().push((entity.to_string(), seq));
        seq
    }

    /// Events in the store.
    pub fn event_count(&self) -> u64 {
        self.store.stats().events
    }

    /// An event by id.
    pub fn get(&self, id: EventId) -> Option<Event> {
        self.store.get(id).ok().flatten()
    }

    /// The store's clock, microseconds since the epoch.
    pub fn now_micros(&self) -> u64 {
        self.store.now_micros()
    }
}

/// A policy check.
pub trait Gate: Send + Sync {
    /// The name shown in denials, counters and the decision log.
    fn name(&self) -> &str;
    /// Allows the proposal or says why not.
    fn check(&self, proposal: &Proposal, view: &StoreView<'_>) -> Result<(), Denial>;
}

/// Whether evaluation stops at the first denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Evaluation {
    /// Stop at the first denial.
    #[default]
    FailFast,
    /// Run every gate and collect every denial.
    EvaluateAll,
}

/// An ordered set of gates.
#[derive(Clone, Default)]
pub struct GateSet {
    gates: Vec<Arc<dyn Gate>>,
    mode: Evaluation,
}

impl std::fmt::Debug for GateSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.gates.iter().map(|g| g.name()).collect();
        f.debug_struct("GateSet")
            .field("gates", &names)
            .field("mode", &self.mode)
            .finish()
    }
}

/// The outcome of evaluating a gate set on one proposal.
pub(crate) struct Verdict {
    pub denials: Vec<Denial>,
    /// (gate name, allowed) for every gate that ran.
    pub ran: Vec<(String, bool)>,
    pub elapsed: Duration,
}

impl GateSet {
    /// An empty set evaluated in `mode`.
    pub fn new(mode: Evaluation) -> Self {
        Self {
            gates: Vec::new(),
            mode,
        }
    }

    /// Appends a gate (gates run in the order added).
    pub fn with(mut self, gate: impl Gate + 'static) -> Self {
        self.gates.push(Arc::new(gate));
        self
    }

    /// Number of gates.
    pub fn len(&self) -> usize {
        self.gates.len()
    }

    /// `true` when the set has no gate.
    pub fn is_empty(&self) -> bool {
        self.gates.is_empty()
    }

    /// Names of the gates, in order.
    pub fn names(&self) -> Vec<String> {
        self.gates.iter().map(|g| g.name().to_string()).collect()
    }

    pub(crate) fn evaluate(&self, p: &Proposal, view: &StoreView<'_>) -> Verdict {
        let start = Instant::now();
        let mut v = Verdict {
            denials: Vec::new(),
            ran: Vec::new(),
            elapsed: Duration::ZERO,
        };
        for g in &self.gates {
            let result = g.check(p, view);
            v.ran.push((g.name().to_string(), result.is_ok()));
            if let Err(d) = result {
                v.denials.push(d);
                if self.mode == Evaluation::FailFast {
                    break;
                }
            }
        }
        v.elapsed = start.elapsed();
        v
    }
}
