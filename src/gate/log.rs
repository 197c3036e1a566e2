//! The decision log: a bounded ring of recent decisions and per-gate counters.
//!
//! Readers copy under a short lock; appends hold the same lock only to push one entry, so
//! reading the log never blocks the writer thread (which does not touch it) and delays a
//! producer by at most one copy.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::event::{EventId, EventKind};

/// What happened to a proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every gate allowed it.
    Allow,
    /// A gate denied it (one decision per denial).
    Deny,
    /// It was written around the gates with a reason.
    Bypass,
}

/// One entry of the decision log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// When, in microseconds since the epoch (the store's clock).
    pub at_us: u64,
    /// Allow, deny or bypass.
    pub outcome: Outcome,
    /// The denying gate (deny), `None` otherwise.
    pub gate: Option<String>,
    /// The denial code (deny), `None` otherwise.
    pub code: Option<String>,
    /// The denial message, the bypass reason, or a summary for an allow.
    pub message: String,
    /// Time spent evaluating the gates.
    pub elapsed: Duration,
    /// The event written, when it was written and its id is known.
    pub event: Option<EventId>,
    /// The proposal's entity.
    pub entity: String,
    /// The proposal's kind.
    pub kind: EventKind,
}

/// Allow and deny counts of one gate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GateCounters {
    /// Proposals it allowed.
    pub allowed: u64,
    /// Proposals it denied.
    pub denied: u64,
}

#[derive(Debug, Default)]
struct Inner {
    recent: VecDeque<Decision>,
    per_gate: BTreeMap<String, GateCounters>,
    allowed: u64,
    denied: u64,
    bypassed: u64,
}

/// Recent decisions and counters, readable at any time.
#[derive(Debug)]
pub struct DecisionLog {
    capacity: usize,
    inner: Mutex<Inner>,
}

/// Decisions kept in the ring.
pub const DECISION_LOG_CAPACITY: usize = 1024;

impl Default for DecisionLog {
    fn default() -> Self {
        Self {
            capacity: DECISION_LOG_CAPACITY,
            inner: Mutex::new(Inner::default()),
        }
    }
}

impl DecisionLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most recent decisions, oldest first.
    pub fn recent(&self) -> Vec<Decision> {
        self.recent_n(self.capacity)
    }

    /// The `n` most recent decisions, oldest first.
    pub fn recent_n(&self, n: usize) -> Vec<Decision> {
        let i = self.lock();
        i.recent
            .iter()
            .skip(i.recent.len().saturating_sub(n))
            .cloned()
            .collect()
    }

    /// Allow / deny counts per gate.
    pub fn counters(&self) -> BTreeMap<String, GateCounters> {
        self.lock().per_gate.clone()
    }

    /// Proposals allowed, denied and bypassed since open.
    pub fn totals(&self) -> (u64, u64, u64) {
        let i = self.lock();
        (i.allowed, i.denied, i.bypassed)
    }

    pub(crate) fn count_gates(&self, ran: &[(String, bool)]) {
        let mut i = self.lock();
        for (gate, ok) in ran {
            let c = i.per_gate.entry(gate.clone()).or_default();
            if *ok {
                c.allowed += 1;
            } else {
                c.denied += 1;
            }
        }
    }

    pub(crate) fn record(&self, d: Decision) {
        let mut i = self.lock();
        match d.outcome {
            Outcome::Allow => i.allowed += 1,
            Outcome::Deny => i.denied += 1,
            Outcome::Bypass => i.bypassed += 1,
        }
        if i.recent.len() >= self.capacity {
            i.recent.pop_front();
        }
        i.recent.push_back(d);
    }
}
