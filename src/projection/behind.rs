//! The projection cache's write-behind buffer: folded states wait in memory and are
//! committed to LMDB together, at most about once a second.
//!
//! A state waits until it is [`MAX_AGE`] old (the oldest waiting state decides), until the
//! buffer holds more than its byte bound (the flush thread is woken at once), or until the
//! cache closes. Only states whose events are all durable in the log
//! (`last_seq <= durable sequence`) are written: a power cut can take unsynced events from
//! the log, and a cache written before them would hold states folding events that no
//! longer exist. A state the log has not yet made durable waits for the next flush.
//!
//! Each state carries a stamp; a flush writes copies and afterwards removes only the
//! entries whose stamp did not change meanwhile, so a newer state put during the commit
//! stays buffered. Readers look in the buffer first, then in LMDB: a flush commits before
//! it removes, so a state is always in one of the two.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Age of the oldest buffered state at which the buffer is flushed.
pub const MAX_AGE: Duration = Duration::from_secs(1);
/// Upper bound of the buffer's byte bound; a smaller map gets an eighth of its size.
pub const MAX_PENDING_BYTES: u64 = 4 << 20;
/// Bytes counted per buffered state beside its key and value (map and allocation cost).
const ENTRY_OVERHEAD: u64 = 64;

/// The byte bound of the buffer of a cache whose map is `map_size` bytes.
pub fn pending_limit(map_size: u64) -> u64 {
    (map_size / 8).min(MAX_PENDING_BYTES)
}

struct Entry {
    value: Vec<u8>,
    last_seq: u64,
    stamp: u64,
}

/// A state copied out for writing.
pub(crate) struct Out {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub last_seq: u64,
    stamp: u64,
}

/// What [`Pending::insert`] did with a state.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Inserted {
    /// Buffered; the buffer is within its bound.
    Buffered,
    /// Buffered; the buffer passed its bound and should be flushed now.
    Full,
    /// Not buffered: a compaction forgot states since the fold began.
    Stale,
    /// Not buffered: the buffer is at twice its bound (the flush is behind).
    Refused,
}

/// Buffered states by key.
pub(crate) struct Pending {
    entries: HashMap<Vec<u8>, Entry>,
    bytes: u64,
    limit: u64,
    oldest: Option<Instant>,
    next_stamp: u64,
    generation: u64,
}

impl Pending {
    /// An empty buffer bounded to about `limit` bytes.
    pub fn new(limit: u64) -> Self {
        Self {
            entries: HashMap::new(),
            bytes: 0,
            limit,
            oldest: None,
            next_stamp: 0,
            generation: 0,
        }
    }

    /// Bumped whenever states are forgotten: a fold that began before must not be cached.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// States buffered, and their bytes.
    pub fn size(&self) -> (u64, u64) {
        (self.entries.len() as u64, self.bytes)
    }

    /// The buffered value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.entries.get(key).map(|e| e.value.as_slice())
    }

    /// The keys buffered (for counting how many LMDB does not hold yet).
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.entries.keys().map(Vec::as_slice)
    }

    fn cost(key: &[u8], value: &[u8]) -> u64 {
        (key.len() + value.len()) as u64 + ENTRY_OVERHEAD
    }

    /// Buffers `value` for `key`, folded up to `last_seq` by a fold that began at
    /// `generation`.
    pub fn insert(
        &mut self,
        key: Vec<u8>,
        value: Vec<u8>,
        last_seq: u64,
        generation: u64,
    ) -> Inserted {
        if generation != self.generation {
            return Inserted::Stale;
        }
        let cost = Self::cost(&key, &value);
        let replaced = self
            .entries
            .get(&key)
            .map_or(0, |e| Self::cost(&key, &e.value));
        if self.bytes - replaced + cost > 2 * self.limit {
            return Inserted::Refused;
        }
        self.next_stamp += 1;
        let entry = Entry {
            value,
            last_seq,
            stamp: self.next_stamp,
        };
        self.entries.insert(key, entry);
        self.bytes = self.bytes - replaced + cost;
        self.oldest.get_or_insert_with(Instant::now);
        if self.bytes > self.limit {
            Inserted::Full
        } else {
            Inserted::Buffered
        }
    }

    /// How long until the oldest state is [`MAX_AGE`] old (`MAX_AGE` when none waits).
    pub fn due_in(&self) -> Duration {
        self.oldest
            .map_or(MAX_AGE, |t| MAX_AGE.saturating_sub(t.elapsed()))
    }

    /// `true` when the oldest state is old enough or the buffer is past its bound.
    pub fn due(&self) -> bool {
        self.oldest.is_some() && (self.due_in().is_zero() || self.bytes > self.limit)
    }

    /// Copies of the states folded only from durable events (`last_seq <= durable`).
    pub fn writable(&self, durable: u64) -> Vec<Out> {
        self.entries
            .iter()
            .filter(|(_, e)| e.last_seq <= durable)
            .map(|(k, e)| Out {
                key: k.clone(),
                value: e.value.clone(),
                last_seq: e.last_seq,
                stamp: e.stamp,
            })
            .collect()
    }

    /// Removes the states of `done` that were not replaced since they were copied.
    pub fn remove_written(&mut self, done: &[Out]) {
        for o in done {
            if self.entries.get(&o.key).is_some_and(|e| e.stamp == o.stamp) {
                self.take(&o.key);
            }
        }
        self.restart_age();
    }

    /// Drops the states not yet writable when the buffer is still past its bound after a
    /// flush (the cache is disposable: they are folded again on next use). Returns how
    /// many went.
    pub fn shed(&mut self, durable: u64) -> u64 {
        if self.bytes <= self.limit {
            return 0;
        }
        let doomed: Vec<Vec<u8>> = self
            .entries
            .iter()
            .filter(|(_, e)| e.last_seq > durable)
            .map(|(k, _)| k.clone())
            .collect();
        doomed.iter().for_each(|k| self.take(k));
        self.restart_age();
        doomed.len() as u64
    }

    /// Forgets every state whose key `doomed` says, and every fold in progress.
    pub fn forget(&mut self, doomed: impl Fn(&[u8]) -> bool) {
        self.generation += 1;
        let keys: Vec<Vec<u8>> = self.entries.keys().filter(|k| doomed(k)).cloned().collect();
        keys.iter().for_each(|k| self.take(k));
        self.restart_age();
    }

    fn take(&mut self, key: &[u8]) {
        if let Some(e) = self.entries.remove(key) {
            self.bytes -= Self::cost(key, &e.value);
        }
    }

    /// What is left waits a whole [`MAX_AGE`] again from now: a flush at most about once
    /// a second, also when states wait for the log to become durable.
    fn restart_age(&mut self) {
        self.oldest = (!self.entries.is_empty()).then(Instant::now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    #[test]
    fn only_states_of_durable_events_are_written_and_a_newer_state_survives_the_flush() {
        let mut p = Pending::new(1 << 20);
        assert_eq!(p.insert(k("a"), k("1"), 5, 0), Inserted::Buffered);
        assert_eq!(p.insert(k("b"), k("2"), 9, 0), Inserted::Buffered);
        let out = p.writable(7);
        assert_eq!(out.len(), 1, "b folds event 9, not durable yet");
        assert_eq!(p.insert(k("a"), k("3"), 6, 0), Inserted::Buffered);
        p.remove_written(&out);
        assert_eq!(
            p.get(b"a"),
            Some(&b"3"[..]),
            "replaced during the flush: kept"
        );
        assert_eq!(p.size().0, 2);
        let out = p.writable(9);
        p.remove_written(&out);
        assert_eq!(p.size(), (0, 0));
        assert!(!p.due());
    }

    #[test]
    fn a_fold_that_began_before_a_forget_is_not_buffered() {
        let mut p = Pending::new(1 << 20);
        let g = p.generation();
        p.insert(k("p\0e1"), k("x"), 1, g);
        p.insert(k("p\0e2"), k("y"), 1, g);
        p.forget(|key| key.ends_with(b"e1"));
        assert_eq!(p.get(b"p\0e1"), None);
        assert!(p.get(b"p\0e2").is_some());
        assert_eq!(p.insert(k("p\0e1"), k("z"), 2, g), Inserted::Stale);
        assert_eq!(
            p.insert(k("p\0e1"), k("z"), 2, p.generation()),
            Inserted::Buffered
        );
    }

    #[test]
    fn the_buffer_asks_for_a_flush_past_its_bound_and_refuses_at_twice_it() {
        let mut p = Pending::new(1000);
        let big = vec![0u8; 700];
        assert_eq!(p.insert(k("a"), big.clone(), 1, 0), Inserted::Buffered);
        assert_eq!(p.insert(k("b"), big.clone(), 1, 0), Inserted::Full);
        assert!(p.due(), "past its bound");
        assert_eq!(p.insert(k("c"), big.clone(), 1, 0), Inserted::Refused);
        assert_eq!(
            p.insert(k("a"), big, 1, 0),
            Inserted::Full,
            "a replacement fits"
        );
        assert_eq!(p.shed(0), 2, "nothing durable: both shed");
        assert_eq!(p.size(), (0, 0));
    }

    #[test]
    fn the_oldest_state_makes_the_buffer_due_after_max_age() {
        let mut p = Pending::new(1 << 20);
        assert_eq!(p.due_in(), MAX_AGE);
        p.insert(k("a"), k("1"), 1, 0);
        assert!(!p.due());
        assert!(p.due_in() <= MAX_AGE);
        p.oldest = Instant::now().checked_sub(MAX_AGE);
        assert!(p.due());
    }
}
