//! The [`Store`]: a durable, segmented event log with a single writer thread.

mod body;
mod causal;
mod chain;
mod checkpoint;
mod command;
mod compact;
mod consumer;
mod gating;
mod identity;
mod index;
mod query;
mod read;
mod reader;
mod reconfigure;
mod recovery;
mod retention;
mod segment;
mod shared;
mod snapshot;
mod stats;
mod subscription;
mod supervisor;
pub(crate) mod telemetry;
mod ticket;
mod typed;
mod verify;
mod verify_chain;
mod writer;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Sender, TrySendError};
use serde::Serialize;

use crate::config::StoreConfig;
use crate::error::{AppendError, OpenError, SyncError};
use crate::event::{AppendOptions, AppendReceipt, Coordinate, EventKind};
use crate::fs::{FileSystem, LockGuard, StdFs};
use crate::gate::{DecisionLog, GateSet};
use command::TrySubmitError as TrySubmit;

pub use causal::{CausalNode, CausalTree, TreeNode, Walk, WalkError, WalkLimits};
pub use checkpoint::CheckpointStatus;
pub use command::{BatchItem, CloseReport, TrySubmitError};
pub use consumer::{
    Consumer, ConsumerError, CONSUMER_ENTITY_PREFIX, CONSUMER_SCOPE, MAX_CONSUMER_NAME,
};

/// Encodes a value the way payloads are encoded (MessagePack with field names).
pub(crate) fn encode_payload<T: Serialize + ?Sized>(value: &T) -> Option<Vec<u8>> {
    command::encode(value).ok()
}
#[cfg(feature = "testkit")]
#[doc(hidden)]
pub use compact::set_step_pause as set_compaction_step_pause;
pub use query::Query;
pub use reconfigure::{applies, Applies, Reconfigured, ReopenableStore, Reopened, FIELDS};
pub use recovery::{RecoveryReport, Truncation};
pub use retention::{CompactionReport, RetentionPolicy, SCOPE_TOMBSTONE_ENTITY};
pub use snapshot::SnapshotReport;
pub use stats::{GateStats, Rates, SegmentStats, Stats, SubscriberStats, Wear};
pub use subscription::{RecvError, Subscription};
pub use telemetry::Histograms;
pub use verify::{verify, verify_against, verify_on, verify_with, Problem, VerifyReport};
pub use writer::IDLE_SYNC_AFTER;

use command::Command;
pub(crate) use shared::Shared;
use ticket::Waiter;

/// Name of the lock file in the data directory.
pub const LOCK_FILE: &str = crate::layout::LOCK;

/// How to open a store, beyond its [`StoreConfig`].
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Open without the lock, never writing anything: for inspecting a directory another
    /// process holds. Appends return [`AppendError::ReadOnly`].
    pub read_only: bool,
    /// On a damaged frame, keep everything before it and move the rest to `DIR/salvaged/`
    /// instead of refusing to open.
    pub salvage: bool,
    /// The file system to use (the real one by default).
    pub fs: Arc<dyn FileSystem>,
    /// Policy gates every write must pass (see [`crate::gate`]).
    pub gates: Option<GateSet>,
    /// Latency histograms (on by default; off saves a clock reading per append).
    pub telemetry: bool,
    /// Heed calls of the projection cache that fail on purpose (feature `testkit`).
    #[cfg(feature = "testkit")]
    pub cache_faults: Option<Arc<crate::projection::faults::CacheFaults>>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            read_only: false,
            salvage: false,
            fs: Arc::new(StdFs),
            gates: None,
            telemetry: true,
            #[cfg(feature = "testkit")]
            cache_faults: None,
        }
    }
}

impl OpenOptions {
    /// Read-only inspection.
    pub fn read_only() -> Self {
        Self {
            read_only: true,
            ..Self::default()
        }
    }

    /// Salvage on corruption.
    pub fn salvage() -> Self {
        Self {
            salvage: true,
            ..Self::default()
        }
    }

    /// Installs policy gates: every write of this store goes through them.
    pub fn with_gates(mut self, gates: GateSet) -> Self {
        self.gates = Some(gates);
        self
    }

    /// Uses another file system.
    pub fn with_fs(mut self, fs: Arc<dyn FileSystem>) -> Self {
        self.fs = fs;
        self
    }
}

/// A pending append from [`Store::submit`]; wait on it later.
#[must_use = "a ticket says whether the append was written; wait on it"]
pub struct Ticket(Waiter<ticket::AppendResult>, Option<Arc<Shared>>);

impl Ticket {
    /// Waits for the receipt.
    pub fn wait(self) -> Result<AppendReceipt, AppendError> {
        // A durable ticket counts as its store's producer waiting for a sync.
        let _waiting = self.1.as_ref().map(|sh| sh.sync_waiters.enter());
        self.0
            .wait_recycling(self.1.is_some())
            .unwrap_or_else(|| Err(writer_gone()))
    }

    /// `true` once the receipt (or an error) is available.
    pub fn is_ready(&self) -> bool {
        self.0.is_ready()
    }
}

fn writer_gone() -> AppendError {
    AppendError::NotWritten(
        "the writer stopped before answering (it panicked or the store closed)".into(),
    )
}

/// A durable, segmented event log. `Send + Sync`: share it with an `Arc`.
///
/// Dropping a `Store` without [`Store::close`] does what `close` does (drains up to
/// `shutdown_drain_limit` queued commands, syncs, writes the index checkpoint) and ignores
/// its errors; nothing acknowledged is lost and nothing is left half written either way.
pub struct Store {
    shared: Arc<Shared>,
    /// Kept until the store is dropped; after close the writer has gone and sends fail.
    tx: Option<Sender<Command>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// The writer's state, which a lone durable producer borrows when the writer is idle.
    lane: Option<Arc<writer::Lane>>,
    lock: Mutex<Option<Box<dyn LockGuard>>>,
    gates: Option<Arc<GateSet>>,
    decisions: DecisionLog,
    pub(crate) cache: std::sync::RwLock<Option<crate::projection::cache::Cache>>,
    read_only: bool,
    report: RecoveryReport,
    /// Held by a running compaction (one at a time).
    compacting: Mutex<()>,
    /// Held for the whole of `close`, so a second `close` returns only once the first is done.
    closing: Mutex<()>,
    /// The report of the last compaction (for the statistics).
    last_compaction: Mutex<Option<CompactionReport>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.shared.dir)
            .field("store_id", &format_args!("{:016x}", self.shared.store_id))
            .field("read_only", &self.read_only)
            .finish()
    }
}

impl Store {
    /// Opens (creating if needed) the store in `config.data_dir`.
    pub fn open(config: StoreConfig) -> Result<Self, OpenError> {
        Self::open_with(config, OpenOptions::default())
    }

    /// Opens the store in `dir` read-only with default settings.
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<Self, OpenError> {
        Self::open_with(StoreConfig::new(dir), OpenOptions::read_only())
    }

    /// Opens with explicit options.
    pub fn open_with(config: StoreConfig, options: OpenOptions) -> Result<Self, OpenError> {
        config.validate()?;
        let (fs, account) =
            crate::fs::account::Accounted::wrap(options.fs.clone(), &config.data_dir);
        let dir = config.data_dir.clone();
        let io = |op, source| OpenError::Io {
            op,
            path: dir.clone(),
            source,
        };
        if !options.read_only {
            fs.create_dir_all(&dir)
                .map_err(|e| io("create directory", e))?;
        }
        refuse_links(&*fs, &dir)?;
        let lock = if options.read_only {
            None
        } else {
            Some(take_lock(&*fs, &dir)?)
        };
        let store_id = identity::load_or_create(
            &*fs,
            &dir,
            options.read_only,
            options.salvage && !options.read_only,
        )?;
        let mode = match (options.read_only, options.salvage) {
            (true, _) => recovery::Mode::ReadOnly,
            (false, salvage) => recovery::Mode::ReadWrite { salvage },
        };
        let rec =
            supervisor::recover_dir(&*fs, &dir, store_id, mode, recovery::Knobs::of(&config))?;
        let report = rec.report.clone();
        let cache_dir = fs.cache_dir(&dir).filter(|_| !options.read_only);
        let shared = Arc::new(Shared::new(
            config.clone(),
            fs,
            store_id,
            options.telemetry,
            account,
        ));
        let cache = cache_dir
            .map(|path| crate::projection::cache::open_for(&shared, path, &options, rec.next_seq));
        let (tx, writer, lane) = if options.read_only {
            supervisor::install_read_only(&shared, rec);
            shared
                .reloadable
                .store(true, std::sync::atomic::Ordering::Release);
            (None, None, None)
        } else {
            let (tx, handle, lane) = supervisor::start(&shared, rec).map_err(OpenError::Spawn)?;
            (Some(tx), Some(handle), Some(lane))
        };
        Ok(Self {
            shared,
            tx,
            writer: Mutex::new(writer),
            lane,
            lock: Mutex::new(lock),
            gates: options.gates.map(Arc::new),
            decisions: DecisionLog::default(),
            cache: std::sync::RwLock::new(cache),
            read_only: options.read_only,
            report,
            compacting: Mutex::new(()),
            closing: Mutex::new(()),
            last_compaction: Mutex::new(None),
        })
    }

    /// Opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The store id (the high half of every [`EventId`]).
    pub fn store_id(&self) -> u64 {
        self.shared.store_id
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The configuration in force.
    pub fn config(&self) -> StoreConfig {
        self.shared.config()
    }

    /// What the open found and repaired.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// Appends one event; returns after its bytes were handed to the OS (and after the
    /// sync covering it when the policy makes it durable).
    pub fn append<T: Serialize + ?Sized>(
        &self,
        coord: &Coordinate,
        kind: EventKind,
        payload: &T,
    ) -> Result<AppendReceipt, AppendError> {
        self.append_with(coord, kind, payload, AppendOptions::default())
    }

    /// [`Store::append`] with causation, correlation, expectation, idempotency key or a
    /// durability wait.
    pub fn append_with<T: Serialize + ?Sized>(
        &self,
        coord: &Coordinate,
        kind: EventKind,
        payload: &T,
        opts: AppendOptions,
    ) -> Result<AppendReceipt, AppendError> {
        self.append_gated(BatchItem::new(coord, kind, payload)?.with_options(opts))
    }

    /// Appends an already encoded payload.
    pub fn append_raw(&self, item: BatchItem) -> Result<AppendReceipt, AppendError> {
        self.append_gated(item)
    }

    /// Queues an append and returns at once with a ticket to wait on later, so one thread
    /// can keep the writer busy.
    pub fn submit<T: Serialize + ?Sized>(
        &self,
        coord: &Coordinate,
        kind: EventKind,
        payload: &T,
        opts: AppendOptions,
    ) -> Result<Ticket, AppendError> {
        let mut item = BatchItem::new(coord, kind, payload)?;
        item.set_options(opts);
        self.submit_item(item)
    }

    /// Queues an already built item. On a gated store the gates run first, on this thread;
    /// the decision is logged without the event id, which only the ticket knows.
    pub fn submit_item(&self, item: BatchItem) -> Result<Ticket, AppendError> {
        if self.gates.is_none() {
            return self.submit_ungated(item);
        }
        let (item, allowed) = self.admit(item)?;
        self.log_allowed(allowed, None);
        self.submit_ungated(item)
    }

    #[inline]
    fn submit_ungated(&self, item: BatchItem) -> Result<Ticket, AppendError> {
        self.enqueue(item, false)
    }

    /// Queues one append; `blocking` when the caller waits for the receipt right away, so
    /// an append that waits for its sync may run on this thread (see [`writer::Lane`]).
    #[inline]
    fn enqueue(&self, item: BatchItem, blocking: bool) -> Result<Ticket, AppendError> {
        let (reply, waiter) = ticket::append_pair();
        let at = self.shared.telemetry.stamp();
        let durable =
            item.options().durable || self.shared.every_append_durable.load(Ordering::Relaxed);
        self.dispatch(Command::Append { item, reply, at }, blocking && durable)?;
        Ok(Ticket(waiter, durable.then(|| self.shared.clone())))
    }

    /// Appends several events in one message and one write: all of them or none, also
    /// across a crash. `durable` waits for the covering sync.
    pub fn append_batch(
        &self,
        items: Vec<BatchItem>,
        durable: bool,
    ) -> Result<Vec<AppendReceipt>, AppendError> {
        if items.is_empty() {
            return Err(AppendError::EmptyBatch);
        }
        let mut admitted = Vec::with_capacity(items.len());
        let mut allowed = Vec::with_capacity(items.len());
        for item in items {
            let (item, a) = self.admit(item)?;
            admitted.push(item);
            allowed.push(a);
        }
        let items = admitted;
        let (reply, waiter) = ticket::pair();
        let at = self.shared.telemetry.stamp();
        let cmd = Command::Batch {
            items,
            durable,
            reply,
            at,
        };
        self.dispatch(
            cmd,
            durable || self.shared.every_append_durable.load(Ordering::Relaxed),
        )?;
        let waiting = durable.then(|| self.shared.sync_waiters.enter());
        let receipts = waiter
            .wait_for(durable)
            .unwrap_or_else(|| Err(writer_gone()))?;
        drop(waiting);
        for (a, r) in allowed.into_iter().zip(&receipts) {
            self.log_allowed(a, Some(r));
        }
        Ok(receipts)
    }

    /// Queues an append without ever blocking: when the writer channel is full the item
    /// comes back in [`TrySubmitError::Full`](TrySubmit::Full) and nothing is queued, so a producer can shed
    /// load or retry later instead of waiting. Gates run first, as for [`Store::submit_item`].
    pub fn try_submit(&self, item: BatchItem) -> Result<Ticket, TrySubmit> {
        let item = match self.gates {
            None => item,
            Some(_) => {
                let (item, allowed) = self.admit(item)?;
                self.log_allowed(allowed, None);
                item
            }
        };
        let tx = self.check_open()?;
        let (reply, waiter) = ticket::append_pair();
        let at = self.shared.telemetry.stamp();
        let durable =
            item.options().durable || self.shared.every_append_durable.load(Ordering::Relaxed);
        match tx.try_send(Command::Append { item, reply, at }) {
            Ok(()) => Ok(Ticket(waiter, durable.then(|| self.shared.clone()))),
            Err(TrySendError::Disconnected(_)) => Err(AppendError::Closed.into()),
            Err(TrySendError::Full(Command::Append { item, .. })) => {
                Err(TrySubmit::Full(Box::new(item)))
            }
            Err(TrySendError::Full(_)) => Err(AppendError::Closed.into()),
        }
    }

    /// Waits until the event at `sequence` is durable: returns at once when a sync already
    /// covers it, else asks for one (as [`Store::sync`]) and waits for it. A sequence the
    /// store has not written is [`SyncError::NotWritten`].
    pub fn wait_durable(&self, sequence: u64) -> Result<(), SyncError> {
        if self.shared.durable_seq.load(Ordering::Acquire) >= sequence {
            return Ok(());
        }
        let written = self.shared.written_seq.load(Ordering::Acquire);
        if sequence > written {
            return Err(SyncError::NotWritten { sequence, written });
        }
        self.sync()
    }

    /// Makes every acknowledged event durable.
    pub fn sync(&self) -> Result<(), SyncError> {
        if self.read_only {
            return Ok(());
        }
        let (reply, waiter) = ticket::pair();
        self.send(Command::Sync { reply }).map_err(|e| match e {
            AppendError::Poisoned(m) => SyncError::Poisoned(m),
            _ => SyncError::Closed,
        })?;
        waiter.wait().unwrap_or(Err(SyncError::Closed))
    }

    /// Refuses when the store is read-only, poisoned or closing.
    #[inline]
    fn check_open(&self) -> Result<&Sender<Command>, AppendError> {
        let tx = self.tx.as_ref().ok_or(AppendError::ReadOnly)?;
        if let Some(msg) = self.shared.poison_message() {
            return Err(AppendError::Poisoned(msg));
        }
        if self.shared.closing.load(Ordering::Acquire) {
            return Err(AppendError::Closed);
        }
        Ok(tx)
    }

    #[inline]
    fn send(&self, cmd: Command) -> Result<(), AppendError> {
        self.dispatch(cmd, false)
    }

    /// Queues `cmd`; with `run_here` (the caller waits for its sync right away) it runs
    /// on this thread instead when the writer is idle (see [`writer::Lane`]).
    #[inline]
    fn dispatch(&self, cmd: Command, run_here: bool) -> Result<(), AppendError> {
        let tx = self.check_open()?;
        let cmd = match self.lane.as_ref().filter(|_| run_here) {
            Some(lane) => match lane.try_run(cmd, tx) {
                None => return Ok(()),
                Some(cmd) => cmd,
            },
            None => cmd,
        };
        match tx.try_send(cmd) {
            Ok(()) => Ok(()),
            Err(TrySendError::Disconnected(_)) => Err(AppendError::Closed),
            Err(TrySendError::Full(cmd)) => {
                let start = Instant::now();
                let res = tx.send(cmd).map_err(|_| AppendError::Closed);
                let stats = &self.shared.stats;
                stats.blocked_sends.fetch_add(1, Ordering::Relaxed);
                stats
                    .blocked_nanos
                    .fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
                res
            }
        }
    }

    /// A snapshot of everything the engine does: counters, histograms, segments, fd
    /// budget, subscribers, gates, projection cache, durability state, last recovery.
    pub fn stats(&self) -> Stats {
        let mut s = stats::collect(&self.shared, self.tx.as_ref());
        s.cache = self.cache_stats();
        let (allowed, denied, bypassed) = self.decisions.totals();
        s.gates = GateStats {
            per_gate: self.decisions.counters(),
            allowed,
            denied,
            bypassed,
            recent: self.decisions.recent_n(64),
        };
        s.recovery = self.report.clone();
        s.last_compaction = self
            .last_compaction
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        s
    }

    /// Zeroes the cumulative counters and histograms (rates stay comparable: take a new
    /// baseline snapshot after a reset).
    pub fn reset_stats(&self) {
        stats::reset(&self.shared);
    }

    /// Closes the store: drains at most `shutdown_drain_limit` queued commands (the rest get
    /// [`AppendError::Closed`] and are counted), syncs, and writes the index checkpoint.
    /// Every later call returns a "closed" error; a second `close` returns
    /// [`SyncError::Closed`], and while the first is still running it waits for it, so that
    /// when any `close` returns the store is closed (checkpoint written, lock released).
    pub fn close(&self) -> Result<CloseReport, SyncError> {
        let _one = self.closing.lock().unwrap_or_else(PoisonError::into_inner);
        if self.shared.closing.swap(true, Ordering::AcqRel) {
            return Err(SyncError::Closed);
        }
        let Some(tx) = self.tx.as_ref() else {
            self.shared.set_active(None);
            return Ok(CloseReport::default());
        };
        let (reply, waiter) = ticket::pair();
        let sent = tx.send(Command::Shutdown { reply }).is_ok();
        let report = if sent { waiter.wait() } else { None };
        if let Some(h) = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = h.join();
        }
        self.shared.close_subscribers();
        self.shared.set_active(None);
        // The directory may be opened again as soon as close returns: the projection cache
        // too (LMDB refuses a second environment on the same files in one process).
        *self.cache.write().unwrap_or_else(PoisonError::into_inner) = None;
        drop(
            self.lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        match report {
            Some(r) => match (&r.error, self.shared.poison_message()) {
                (_, Some(m)) => Err(SyncError::Poisoned(m)),
                _ => Ok(r),
            },
            None => Err(SyncError::Closed),
        }
    }

    /// Runs `task` on the writer thread between two batches (nothing is being written) and
    /// returns its result.
    pub(crate) fn run_quiesced(
        &self,
        task: Box<dyn FnOnce() -> Result<(), String> + Send>,
    ) -> Result<(), String> {
        let (reply, waiter) = ticket::pair();
        self.send(Command::Quiesced { task, reply })
            .map_err(|e| e.to_string())?;
        waiter
            .wait()
            .unwrap_or_else(|| Err(writer_gone().to_string()))
    }

    /// Makes the writer panic after writing half of its next batch (restart tests).
    #[cfg(feature = "testkit")]
    #[doc(hidden)]
    pub fn inject_writer_panic(&self) -> Result<(), AppendError> {
        self.send(Command::InjectPanic)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// Refuses a data directory where one of the store's own names is a symbolic link: opening,
/// locking or replacing it would act on a file elsewhere. Links the store does not use are
/// left alone, like any other file it does not know.
fn refuse_links(fs: &dyn FileSystem, dir: &Path) -> Result<(), OpenError> {
    let links = match fs.links_in(dir) {
        Ok(l) => l,
        // No directory yet: the open makes it.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        // Not knowing is not the same as none: the open stops here.
        Err(source) => {
            return Err(OpenError::Io {
                op: "look for symbolic links in",
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    match links.into_iter().find(|n| is_store_name(n)) {
        Some(name) => Err(OpenError::Symlink {
            path: dir.join(name),
        }),
        None => Ok(()),
    }
}

pub use crate::layout::is_store_file;
use crate::layout::is_store_name;

fn take_lock(fs: &dyn FileSystem, dir: &Path) -> Result<Box<dyn LockGuard>, OpenError> {
    let lock = dir.join(LOCK_FILE);
    match fs.try_lock(&lock) {
        Ok(Some(guard)) => Ok(guard),
        Ok(None) => Err(OpenError::Locked {
            dir: dir.to_path_buf(),
            lock,
        }),
        Err(source) => Err(OpenError::Io {
            op: "lock",
            path: lock,
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn store_is_send_and_sync() {
        assert_send_sync::<Store>();
    }
}
