//! The one oracle of the reliability harnesses (crash points, power cuts, kill loop, I/O
//! faults). It keeps a model of everything issued and acknowledged; after any crash and
//! reopen, the recovered log must satisfy:
//! - every event acknowledged as durable is there (after a process crash, every event
//!   acknowledged at all), unless a completed compaction removed it;
//! - sequences run 1..=n with no gap except inside ranges a compaction recorded (the
//!   recovered log is a prefix of what was written);
//! - each producer's events are its counters in issue order, nothing skipped but what a
//!   compaction removed, no duplicates, nothing beyond what it issued (no phantoms);
//! - every payload is byte-identical to what its producer wrote.
//!
//! Payloads are [`Mark`]s: producer, counter and padding derived from both, so an event
//! proves by itself who issued it, when, and that its bytes are intact.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use batpak::prelude::*;
use serde::{Deserialize, Serialize};

/// The payload every harness writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    pub producer: u32,
    pub counter: u64,
    #[serde(with = "serde_bytes")]
    pub pad: Vec<u8>,
}

impl Mark {
    /// The mark of `producer`'s `counter`-th event (0..=96 bytes of padding).
    pub fn new(producer: u32, counter: u64) -> Self {
        let len = ((counter * 31 + u64::from(producer) * 7) % 97) as usize;
        let byte = (counter as u8).wrapping_mul(7) ^ producer as u8;
        Self {
            producer,
            counter,
            pad: vec![byte; len],
        }
    }
}

/// What kind of crash the store went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crash {
    /// The process died; the operating system kept every write.
    Process,
    /// The machine lost power; only synced data is sure to be there.
    Power,
}

/// One acknowledged append.
#[derive(Debug, Clone, Copy)]
struct Ack {
    producer: u32,
    counter: u64,
    durable: bool,
}

/// The model of everything issued and acknowledged.
#[derive(Debug, Default, Clone)]
pub struct Oracle {
    /// Per producer, how many appends it issued (counters 0..issued).
    issued: BTreeMap<u32, u64>,
    /// Receipts by sequence.
    acks: BTreeMap<u64, Ack>,
    /// Everything up to here was acknowledged as durable (a sync covered it).
    pub durable_to: u64,
    /// Sequence ranges a completed compaction removed events from.
    removed: Vec<RangeInclusive<u64>>,
}

/// What a check found that was allowed.
#[derive(Debug, Default, Clone, Copy)]
pub struct Seen {
    /// Events in the recovered log.
    pub events: u64,
    /// Acknowledged but unsynced events the crash took (allowed after a power cut).
    pub lost_unsynced: u64,
}

impl Oracle {
    /// `producer` is about to append its next event; returns its counter.
    pub fn issue(&mut self, producer: u32) -> u64 {
        let n = self.issued.entry(producer).or_insert(0);
        *n += 1;
        *n - 1
    }

    /// `producer` issued `n` appends in all (counters 0..n), as far as a harness that does
    /// not see each issue knows (a child process with one append in flight).
    pub fn issued_up_to(&mut self, producer: u32, n: u64) {
        let e = self.issued.entry(producer).or_insert(0);
        *e = (*e).max(n);
    }

    /// A receipt for `producer`'s `counter`.
    pub fn ack(&mut self, seq: u64, producer: u32, counter: u64, durable: bool) {
        self.acks.insert(
            seq,
            Ack {
                producer,
                counter,
                durable,
            },
        );
        if durable {
            self.durable_to = self.durable_to.max(seq);
        }
    }

    /// Receipts so far.
    pub fn acked(&self) -> usize {
        self.acks.len()
    }

    /// A completed compaction removed events from `range` (of sequences).
    pub fn compacted(&mut self, range: RangeInclusive<u64>) {
        self.removed.push(range);
    }

    /// `true` when a completed compaction may have removed the event at `seq`.
    fn removable(&self, seq: u64) -> bool {
        self.removed.iter().any(|r| r.contains(&seq))
    }

    /// The model as of an earlier moment: only the receipts for which `keep` holds (a
    /// crash taken before the others were received).
    pub fn before(&self, keep: impl Fn(u64) -> bool) -> Oracle {
        let mut o = self.clone();
        o.acks.retain(|s, _| keep(*s));
        o.durable_to = o
            .acks
            .iter()
            .filter(|(_, a)| a.durable)
            .map(|(s, _)| *s)
            .max()
            .unwrap_or(0);
        o
    }

    /// Checks the recovered log (every event, in sequence order) after `crash`.
    pub fn check(&self, events: &[Event], crash: Crash) -> Result<Seen, String> {
        let mut last: BTreeMap<u32, u64> = BTreeMap::new();
        let mut expect_seq = 1u64;
        for e in events {
            while expect_seq < e.sequence {
                if !self.removable(expect_seq) {
                    return Err(format!(
                        "sequence {expect_seq} is missing before {}",
                        e.sequence
                    ));
                }
                expect_seq += 1;
            }
            if e.sequence != expect_seq {
                return Err(format!("sequence {} repeats or goes back", e.sequence));
            }
            expect_seq += 1;
            let m: Mark = e
                .payload()
                .map_err(|err| format!("event {} does not decode: {err}", e.sequence))?;
            if m != Mark::new(m.producer, m.counter) {
                return Err(format!("event {} payload is not intact", e.sequence));
            }
            let issued = self.issued.get(&m.producer).copied().unwrap_or(0);
            if m.counter >= issued {
                return Err(format!(
                    "event {} is producer {}'s counter {}, but it issued {issued} (a phantom)",
                    e.sequence, m.producer, m.counter
                ));
            }
            if let Some(a) = self.acks.get(&e.sequence) {
                if (a.producer, a.counter) != (m.producer, m.counter) {
                    return Err(format!(
                        "event {} holds producer {} counter {}, acknowledged as producer {} counter {}",
                        e.sequence, m.producer, m.counter, a.producer, a.counter
                    ));
                }
            }
            let next = last.get(&m.producer).map_or(0, |c| c + 1);
            if m.counter < next {
                return Err(format!(
                    "event {}: producer {} counter {} after {} (out of issue order or a duplicate)",
                    e.sequence,
                    m.producer,
                    m.counter,
                    next - 1
                ));
            }
            if m.counter > next && !self.skipped_were_removed(m.producer, next..m.counter) {
                return Err(format!(
                    "event {}: producer {} jumps from counter {next} to {}",
                    e.sequence, m.producer, m.counter
                ));
            }
            last.insert(m.producer, m.counter);
        }
        self.check_acked(events, crash)
    }

    /// Counters `range` of `producer` are absent: allowed only when a compaction removed
    /// each of them.
    fn skipped_were_removed(&self, producer: u32, range: std::ops::Range<u64>) -> bool {
        let seqs: BTreeMap<u64, u64> = self
            .acks
            .iter()
            .filter(|(_, a)| a.producer == producer && range.contains(&a.counter))
            .map(|(s, a)| (a.counter, *s))
            .collect();
        range
            .clone()
            .all(|c| seqs.get(&c).is_some_and(|s| self.removable(*s)))
    }

    /// Every acknowledged event the crash may not take is there.
    fn check_acked(&self, events: &[Event], crash: Crash) -> Result<Seen, String> {
        let present: std::collections::BTreeSet<u64> = events.iter().map(|e| e.sequence).collect();
        let mut seen = Seen {
            events: events.len() as u64,
            ..Seen::default()
        };
        for (seq, a) in &self.acks {
            if present.contains(seq) || self.removable(*seq) {
                continue;
            }
            let must = crash == Crash::Process || a.durable || *seq <= self.durable_to;
            if must {
                return Err(format!(
                    "event {seq} (producer {} counter {}) was acknowledged{} and is lost",
                    a.producer,
                    a.counter,
                    if a.durable { " as durable" } else { "" }
                ));
            }
            seen.lost_unsynced += 1;
        }
        Ok(seen)
    }
}
