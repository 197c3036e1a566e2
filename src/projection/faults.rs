//! Fault injection at the heed call boundary of the projection cache (feature `testkit`).
//!
//! LMDB does its own file I/O, out of reach of the simulated file system; what the engine
//! can be tested against is every heed call it makes failing. [`CacheFaults`] fails the
//! Nth such call (and, when persistent, every later one) and names the calls it saw.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Which heed call of the projection cache fails; give it to
/// `OpenOptions::cache_faults`.
#[derive(Debug)]
pub struct CacheFaults {
    at: u64,
    persistent: bool,
    seen: AtomicU64,
    calls: Mutex<BTreeSet<&'static str>>,
}

impl CacheFaults {
    /// Fails the `at`-th heed call (0-based), and with `persistent` every later one.
    pub fn new(at: u64, persistent: bool) -> Arc<Self> {
        Arc::new(Self {
            at,
            persistent,
            seen: AtomicU64::new(0),
            calls: Mutex::new(BTreeSet::new()),
        })
    }

    /// Counts heed calls without failing any (to learn how many a scenario makes).
    pub fn counting() -> Arc<Self> {
        Self::new(u64::MAX, false)
    }

    /// Heed calls made so far.
    pub fn points(&self) -> u64 {
        self.seen.load(Ordering::SeqCst)
    }

    /// The distinct heed calls made so far ("put", "commit", ...).
    pub fn calls(&self) -> Vec<&'static str> {
        let calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        calls.iter().copied().collect()
    }

    /// Counts `call` and fails it when it is the one (or a later one, when persistent).
    pub(crate) fn check(&self, call: &'static str) -> heed::Result<()> {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(call);
        let n = self.seen.fetch_add(1, Ordering::SeqCst);
        if n == self.at || (self.persistent && n > self.at) {
            return Err(heed::Error::Io(std::io::Error::other(format!(
                "simulated failure of the cache's heed call {call} (call {n})"
            ))));
        }
        Ok(())
    }
}
