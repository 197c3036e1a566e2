//! The workload generator shared by the workbench, `batpak-tui bench` and the benchmarks.
//!
//! Producer threads append the reference workload (entities `order:<n>`, scopes
//! `tenant-<k>`, random payloads, a share naming the entity's previous event as cause, a
//! share built to be denied by the store's gates); subscriber threads consume (some slowly,
//! on purpose); reader threads mix `get`, `query`, causal walks and projections. With a
//! target rate the load is open loop and every latency is measured from the moment the
//! append was *due*, so a stalled writer shows up in the figures instead of slowing the
//! generator down (no coordinated omission); without one it is closed loop. It can be
//! paused, resumed and pointed at a reopened store, and it is deterministic for a seed.

mod disk;
pub mod profile;
mod threads;
pub mod zipf;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;

use hdrhistogram::Histogram;

use crate::preset::{GateSpec, WorkloadSpec};
use batpak::store::Store;

pub use disk::{available_bytes, is_workload_dir, mark_dir, wipe, WipeError, MARK_FILE};
pub use threads::{data_len_for, Rng, QUERY_WINDOW, READ_WINDOW};

/// Kind of the proposals built to be denied (no cause, where `[gates]` requires one).
pub const DENIED_KIND: batpak::EventKind = batpak::EventKind::new(9, 9);

/// Counters of a running workload.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub appended: AtomicU64,
    pub denied: AtomicU64,
    pub errors: AtomicU64,
    pub reads: AtomicU64,
    pub received: AtomicU64,
}

/// What a workload has done so far.
#[derive(Clone)]
pub struct WorkloadStats {
    /// Events acknowledged.
    pub appended: u64,
    /// Proposals the gates denied.
    pub denied: u64,
    /// Appends that failed otherwise.
    pub errors: u64,
    /// Reader operations done.
    pub reads: u64,
    /// Events the subscribers received.
    pub received: u64,
    /// Append latency in microseconds, from the intended start (open loop) or the call.
    pub latency_us: Histogram<u64>,
    /// Latency of each reader operation in microseconds (see [`READ_WINDOW`]).
    pub read_latency_us: Histogram<u64>,
    /// Why the workload stopped itself, if it did.
    pub stopped: Option<String>,
    /// Paused right now.
    pub paused: bool,
}

impl std::fmt::Debug for WorkloadStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkloadStats")
            .field("appended", &self.appended)
            .field("denied", &self.denied)
            .field("errors", &self.errors)
            .field("reads", &self.reads)
            .field("received", &self.received)
            .field("latency_p50_us", &self.latency_us.value_at_quantile(0.5))
            .field("latency_p99_us", &self.latency_us.value_at_quantile(0.99))
            .field("read_p99_us", &self.read_latency_us.value_at_quantile(0.99))
            .field("stopped", &self.stopped)
            .field("paused", &self.paused)
            .finish()
    }
}

pub(crate) struct Shared {
    pub spec: WorkloadSpec,
    pub gates: Option<GateSpec>,
    pub store: RwLock<Arc<Store>>,
    pub paused: AtomicBool,
    pub stop: AtomicBool,
    pub counters: Counters,
    pub latency: Mutex<Histogram<u64>>,
    pub read_latency: Mutex<Histogram<u64>>,
    pub stopped: Mutex<Option<String>>,
}

impl Shared {
    /// The store in use, held for one operation: a swap (see [`Workload::swap_store`])
    /// waits for the operation, and the next one waits for the swap.
    pub fn store(&self) -> std::sync::RwLockReadGuard<'_, Arc<Store>> {
        self.store.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops every thread, recording why (the first reason wins).
    pub fn halt(&self, why: String) {
        self.stopped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(why);
        self.stop.store(true, Ordering::Release);
    }

    pub fn running(&self) -> bool {
        !self.stop.load(Ordering::Acquire)
    }
}

/// A running workload; stops when dropped.
pub struct Workload {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workload")
            .field("spec", &self.shared.spec)
            .finish()
    }
}

/// A latency histogram of 1 µs..1 h with 2 significant digits, as the engine's.
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("constant histogram bounds are valid")
}

impl Workload {
    /// Starts the threads against `store`; `gates` is the `[gates]` table the store was
    /// opened with (it decides how denied proposals are built). Starts paused if `paused`.
    pub fn start(
        store: Arc<Store>,
        spec: WorkloadSpec,
        gates: Option<GateSpec>,
        paused: bool,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            spec,
            gates,
            store: RwLock::new(store),
            paused: AtomicBool::new(paused),
            stop: AtomicBool::new(false),
            counters: Counters::default(),
            latency: Mutex::new(histogram()),
            read_latency: Mutex::new(histogram()),
            stopped: Mutex::new(None),
        });
        let threads = threads::spawn_all(&shared)?;
        Ok(Self { shared, threads })
    }

    /// Pauses producers and readers (subscribers keep draining).
    pub fn pause(&self) {
        self.shared.paused.store(true, Ordering::Release);
    }

    /// Resumes after [`Workload::pause`].
    pub fn resume(&self) {
        self.shared.paused.store(false, Ordering::Release);
    }

    /// `true` while paused.
    pub fn is_paused(&self) -> bool {
        self.shared.paused.load(Ordering::Acquire)
    }

    /// Replaces the store while every thread waits: `swap` gets the old store once no
    /// operation is running on it (close it there) and returns the new one. A producer
    /// never sees the closed store; it waits for the swap instead. On an error the old
    /// store stays in place.
    pub fn swap_store<E>(
        &self,
        swap: impl FnOnce(&Arc<Store>) -> Result<Arc<Store>, E>,
    ) -> Result<(), E> {
        let mut slot = self
            .shared
            .store
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        *slot = swap(&slot)?;
        Ok(())
    }

    /// The store the threads use now.
    pub fn store(&self) -> Arc<Store> {
        self.shared.store().clone()
    }

    /// Points every thread at another store (after a reopen). Subscribers re-subscribe.
    pub fn retarget(&self, store: Arc<Store>) {
        *self
            .shared
            .store
            .write()
            .unwrap_or_else(PoisonError::into_inner) = store;
    }

    /// What the workload has done so far.
    pub fn stats(&self) -> WorkloadStats {
        let c = &self.shared.counters;
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        WorkloadStats {
            appended: ld(&c.appended),
            denied: ld(&c.denied),
            errors: ld(&c.errors),
            reads: ld(&c.reads),
            received: ld(&c.received),
            latency_us: self
                .shared
                .latency
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            read_latency_us: self
                .shared
                .read_latency
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            stopped: self
                .shared
                .stopped
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            paused: self.is_paused(),
        }
    }

    /// Stops the threads and returns the final figures.
    pub fn stop(mut self) -> WorkloadStats {
        self.join();
        self.stats()
    }

    fn join(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    /// `true` once the workload stopped itself (see [`WorkloadStats::stopped`]).
    pub fn has_stopped(&self) -> bool {
        !self.shared.running()
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        self.join();
    }
}

/// Checks that `dir` may receive synthetic events: it is missing, empty, or marked as
/// workload data; otherwise only with `allow_existing`.
pub fn check_target(dir: &Path, allow_existing: bool) -> Result<(), String> {
    let occupied = std::fs::read_dir(dir)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    if !occupied || allow_existing || is_workload_dir(dir) {
        return Ok(());
    }
    Err(format!(
        "{} holds data that was not written by the workload; refusing to add synthetic events (use --allow-existing-data to do it anyway)",
        dir.display()
    ))
}
