//! The writer thread: drains the command channel in batches, frames every event of a
//! batch into one buffer, writes it with one call, and syncs as the policy demands.
//!
//! Receipts are sent after `write` returned (never at enqueue); a receipt is marked
//! durable only when the sync covering it completed before it was sent. Syncs run beside
//! the writer (see [`syncer`]); producers that queue while a sync runs share the next one
//! (group commit).

mod io;
mod lane;
mod link;
mod stage;
mod syncer;

pub(crate) use lane::Lane;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TryRecvError};

use crate::codec::frame::Base;
use crate::config::StoreConfig;
use crate::error::{AppendError, SyncError};
use crate::event::Event;
use crate::fs::FsFile;

pub(crate) use super::chain::SegChain;
use super::command::{CloseReport, Command};
use super::index::Index;
use super::ticket::Reply;
use super::Shared;
use syncer::{Done, Held, Next, Syncer, Target};

/// Most commands taken from the channel per batch.
pub(super) const MAX_BATCH: usize = 4096;
/// How long the writer polls an empty channel before blocking.
pub(super) const SPIN: Duration = Duration::from_micros(50);
/// Longest the writer waits for more commands to share a sync producers wait for.
const GATHER: Duration = Duration::from_micros(100);
/// After this long without commands, unsynced events are synced.
pub const IDLE_SYNC_AFTER: Duration = Duration::from_millis(20);

/// A growable bit set of dictionary ids defined in the active segment.
#[derive(Debug, Default, Clone)]
pub(crate) struct BitSet(Vec<u64>);

impl BitSet {
    pub fn contains(&self, i: u32) -> bool {
        self.0
            .get(i as usize / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    pub fn insert(&mut self, i: u32) {
        let w = i as usize / 64;
        if self.0.len() <= w {
            self.0.resize(w + 1, 0);
        }
        self.0[w] |= 1 << (i % 64);
    }
}

/// Work run on the writer thread between batches, and where its result goes.
type Task = (
    Box<dyn FnOnce() -> Result<(), String> + Send>,
    Reply<Result<(), String>>,
);

/// The segment being appended to.
pub(crate) struct Active {
    pub no: u32,
    pub file: Arc<dyn FsFile>,
    pub base: Base,
    /// Bytes written.
    pub len: u64,
    /// Bytes known synced.
    pub synced: u64,
    /// Largest synced length recorded by a marker in the file; the file's length when the
    /// last frame is a synced marker recording everything before it (nothing to mark).
    pub marked: u64,
    pub entities: BitSet,
    pub scopes: BitSet,
    /// Its place in the log chain.
    pub chain: SegChain,
}

/// Why staging failed.
enum StageError {
    Reject(AppendError),
    Io(String),
}

impl From<AppendError> for StageError {
    fn from(e: AppendError) -> Self {
        Self::Reject(e)
    }
}

/// What a validated event will be written with.
#[derive(Clone, Copy)]
enum Plan {
    New {
        /// The entity's dictionary id, if the name is known already.
        entity: Option<u32>,
        ts: u64,
        cause: Option<u64>,
        correlation: Option<u64>,
    },
    Duplicate(u64),
}

/// The writer's state; rebuilt from disk after a panic.
pub(crate) struct Writer {
    shared: Arc<Shared>,
    /// The configuration in force (a copy: reading the shared one costs a lock and a clone).
    cfg: StoreConfig,
    cfg_gen: u64,
    active: Option<Active>,
    next_seg: u32,
    next_seq: u64,
    buf: Vec<u8>,
    after_close: u64,
    rejected: u64,
    /// Commands of this batch, written and waiting to be handed to the syncer.
    done: Vec<Held>,
    syncer: Syncer,
    shutdown: Option<Reply<CloseReport>>,
    /// Tasks to run once the batch is written (see `Command::Quiesced`).
    tasks: Vec<Task>,
    publish: Vec<Arc<Event>>,
    /// Reused buffers of staging (no allocation per append).
    plans: Vec<Plan>,
    receipts: Vec<crate::event::AppendReceipt>,
    /// The reused one-command batch of a producer running its own append.
    single: Vec<Command>,
    /// When the last batch ended (idle syncs come `IDLE_SYNC_AFTER` later).
    last_batch: Instant,
    /// The link of each entity's latest event (or anchor), by entity id, once looked up.
    links: Vec<Option<[u8; 8]>>,
    /// The clock read at the start of the group being staged: events written together
    /// share it (a clock read per event cost the pipelined path ~10 %).
    now: u64,
    #[cfg(feature = "testkit")]
    panic_next_write: bool,
}

impl Writer {
    pub fn new(shared: Arc<Shared>, active: Option<Active>, next_seg: u32, next_seq: u64) -> Self {
        let synced = active.as_ref().map_or((0, 0), |a| (a.no, a.synced));
        let syncer = Syncer::start(shared.clone(), synced, next_seq.saturating_sub(1));
        Self {
            cfg: shared.config(),
            cfg_gen: shared.config_gen.load(Ordering::Acquire),
            shared,
            active,
            next_seg,
            next_seq,
            buf: Vec::with_capacity(1 << 16),
            after_close: 0,
            rejected: 0,
            done: Vec::new(),
            syncer,
            shutdown: None,
            tasks: Vec::new(),
            publish: Vec::new(),
            plans: Vec::new(),
            receipts: Vec::new(),
            single: Vec::with_capacity(1),
            last_batch: Instant::now(),
            links: Vec::new(),
            now: 0,
            #[cfg(feature = "testkit")]
            panic_next_write: false,
        }
    }

    /// Runs one batch of commands taken from the channel (`rx`, to gather more for a
    /// shared sync) or, with `rx` `None`, given by a producer running its own append.
    pub fn batch(&mut self, cmds: &mut Vec<Command>, rx: Option<&Receiver<Command>>) {
        self.shared.stats.batches.fetch_add(1, Ordering::Relaxed);
        self.reload_config();
        let queued = rx.map_or(0, Receiver::len);
        self.shared.telemetry.note_depth(cmds.len() + queued);
        self.handle(cmds, rx);
        self.last_batch = Instant::now();
    }

    /// Runs one command on the calling producer's thread (see [`Lane`]).
    pub fn run_one(&mut self, cmd: Command) {
        let mut cmds = std::mem::take(&mut self.single);
        cmds.push(cmd);
        self.batch(&mut cmds, None);
        cmds.clear();
        self.single = cmds;
    }

    /// A producer may run its own append now (not while closing, nor with a panic armed
    /// for the writer thread by a test).
    fn takes_inline(&self) -> bool {
        #[cfg(feature = "testkit")]
        if self.panic_next_write {
            return false;
        }
        self.shutdown.is_none()
    }

    /// Close was asked for.
    fn shutting_down(&self) -> bool {
        self.shutdown.is_some()
    }

    /// With unsynced data, how long until it is due for an idle sync (zero: now); `None`
    /// when there is nothing to sync.
    fn idle_sync_in(&mut self) -> Option<Duration> {
        self.has_unsynced()
            .then(|| IDLE_SYNC_AFTER.saturating_sub(self.last_batch.elapsed()))
    }

    /// Picks up a configuration changed by `Store::reconfigure` (one atomic load per batch).
    fn reload_config(&mut self) {
        let gen = self.shared.config_gen.load(Ordering::Acquire);
        if gen != self.cfg_gen {
            self.cfg = self.shared.config();
            self.cfg_gen = gen;
        }
    }

    fn has_unsynced(&mut self) -> bool {
        self.refresh_synced();
        !self.shared.is_poisoned()
            && self
                .active
                .as_ref()
                .is_some_and(|a| a.synced < a.len || a.marked < a.synced)
    }

    /// Takes the synced length of the active segment from the syncer.
    fn refresh_synced(&mut self) {
        let (seg, len) = self.syncer.synced();
        if let Some(a) = self.active.as_mut().filter(|a| a.no == seg) {
            a.synced = a.synced.max(len);
        }
    }

    /// What a sync now would cover.
    fn target(&self) -> Option<Target> {
        self.active.as_ref().map(|a| Target {
            file: a.file.clone(),
            seg: a.no,
            len: a.len,
            seq: self.next_seq.saturating_sub(1),
            total: self.shared.appended_total.load(Ordering::Relaxed),
            mode: self.cfg.sync_mode,
        })
    }

    fn handle(&mut self, cmds: &mut Vec<Command>, rx: Option<&Receiver<Command>>) {
        if let Some(msg) = self.shared.poison_message() {
            for cmd in cmds.drain(..) {
                match cmd {
                    Command::Shutdown { reply } => self.shutdown = Some(reply),
                    other => reject(other, &AppendError::Poisoned(msg.clone())),
                }
            }
            return;
        }
        self.put_marker();
        if let Err(e) = self.stage_all(cmds) {
            return self.poison(e);
        }
        if let Err(e) = self.flush() {
            return self.poison(e);
        }
        self.make_visible();
        self.settle(rx);
        self.run_tasks();
    }

    /// Runs the quiesced tasks of this batch: everything staged is written by now.
    fn run_tasks(&mut self) {
        for (task, reply) in self.tasks.drain(..) {
            reply.send(task());
        }
    }

    /// Hands the written commands to the syncer, syncing here when that is quickest.
    fn settle(&mut self, rx: Option<&Receiver<Command>>) {
        let every = self.cfg.sync_every_n_events;
        let target = self.target();
        let queue_empty = rx.is_none_or(Receiver::is_empty);
        let next = self
            .syncer
            .hand_over(&mut self.done, target, every, queue_empty);
        if let Next::Inline { gather } = next {
            let gathered = match rx {
                Some(rx) => self.gather(rx, gather),
                None => Ok(()),
            };
            if let Err(e) = gathered.and_then(|()| self.sync()) {
                return self.poison(e);
            }
        }
        if let Some(msg) = self.shared.poison_message() {
            self.syncer.fail_all(&msg);
        }
    }

    /// Group commit: waits up to `GATHER` for `want` more commands (as many as shared the
    /// last sync) and writes them, so the coming sync covers them too.
    fn gather(&mut self, rx: &Receiver<Command>, want: usize) -> Result<(), String> {
        if want == 0 || self.shutdown.is_some() {
            return Ok(());
        }
        let deadline = Instant::now() + GATHER;
        let mut more = Vec::new();
        while more.len() < want && Instant::now() < deadline {
            match rx.try_recv() {
                Ok(c) => more.push(c),
                Err(TryRecvError::Empty) => std::thread::yield_now(),
                Err(TryRecvError::Disconnected) => break,
            }
        }
        if more.is_empty() {
            return Ok(());
        }
        self.put_marker();
        self.stage_all(&mut more)?;
        self.flush()?;
        self.make_visible();
        let target = self.target();
        let every = self.cfg.sync_every_n_events;
        drop(self.syncer.add(&mut self.done, target, every));
        Ok(())
    }

    fn stage_all(&mut self, cmds: &mut Vec<Command>) -> Result<(), String> {
        let shared = self.shared.clone();
        let mut idx = shared.index_mut();
        self.now = self.cfg.now_micros();
        for cmd in cmds.drain(..) {
            if self.shutdown.is_some() || !self.admit(&cmd) {
                self.rejected += 1;
                reject(cmd, &AppendError::Closed);
                continue;
            }
            self.stage_command(&mut idx, cmd)?;
        }
        Ok(())
    }

    /// After close began, only `shutdown_drain_limit` more commands are written.
    fn admit(&mut self, cmd: &Command) -> bool {
        if matches!(cmd, Command::Shutdown { .. } | Command::Sync { .. }) {
            return true;
        }
        if !self.shared.closing.load(Ordering::Acquire) {
            return true;
        }
        self.after_close += 1;
        self.after_close <= u64::from(self.cfg.shutdown_drain_limit)
    }

    fn stage_command(&mut self, idx: &mut Index, cmd: Command) -> Result<(), String> {
        match cmd {
            Command::Append { item, reply, at } => {
                let mut out = std::mem::take(&mut self.receipts);
                out.clear();
                let staged = self.stage(idx, std::slice::from_ref(&item), &mut out);
                let receipt = out.pop();
                self.receipts = out;
                match (staged, receipt) {
                    (Ok(()), Some(rec)) => {
                        self.hold(Done::One(reply, rec, at), item.options().durable);
                    }
                    (Ok(()), None) => reply.send(Err(AppendError::EmptyBatch)),
                    (Err(StageError::Reject(e)), _) => reply.send(Err(e)),
                    (Err(StageError::Io(e)), _) => return Err(e),
                }
            }
            Command::Batch {
                items,
                durable,
                reply,
                at,
            } => {
                let mut r = Vec::with_capacity(items.len());
                match self.stage(idx, &items, &mut r) {
                    Ok(()) => self.hold(Done::Many(reply, r, at), durable),
                    Err(StageError::Reject(e)) => reply.send(Err(e)),
                    Err(StageError::Io(e)) => return Err(e),
                }
            }
            Command::Sync { reply } => self.hold(Done::Sync(reply), true),
            Command::Shutdown { reply } => self.shutdown = Some(reply),
            Command::Quiesced { task, reply } => self.tasks.push((task, reply)),
            #[cfg(feature = "testkit")]
            Command::InjectPanic => self.panic_next_write = true,
        }
        Ok(())
    }

    /// Keeps a staged command until its batch is written and handed to the syncer.
    fn hold(&mut self, done: Done, durable: bool) {
        let written = self.shared.appended_total.load(Ordering::Relaxed);
        self.done.push(Held {
            done,
            last_seq: self.next_seq.saturating_sub(1),
            end_total: written + self.buf.len() as u64,
            durable,
        });
    }

    /// Makes the written events visible to readers and subscribers.
    fn make_visible(&mut self) {
        let last = self.next_seq - 1;
        {
            let mut idx = self.shared.index_mut();
            idx.visible = last;
            if let Some(a) = self.active.as_ref() {
                if let Some(m) = idx.segments.get_mut(&a.no) {
                    m.len = a.len;
                }
            }
        }
        self.shared.written_seq.store(last, Ordering::Release);
        if !self.publish.is_empty() {
            self.shared.broadcast(self.publish.drain(..));
        }
    }

    /// A failed write or sync: nothing more is acknowledged until the store is reopened.
    fn poison(&mut self, msg: String) {
        self.shared.set_poisoned(msg.clone());
        self.buf.clear();
        self.publish.clear();
        self.done.drain(..).for_each(|h| h.done.fail(&msg));
        self.syncer.fail_all(&msg);
        self.tasks
            .drain(..)
            .for_each(|(_, reply)| reply.send(Err(msg.clone())));
    }

    /// Rejects what is still queued, syncs, marks, and writes the index checkpoint.
    fn finish_shutdown(&mut self, rx: &Receiver<Command>) {
        while let Ok(cmd) = rx.try_recv() {
            self.rejected += 1;
            reject(cmd, &AppendError::Closed);
        }
        let report = self.close_out();
        if let Some(reply) = self.shutdown.take() {
            reply.send(report);
        }
    }

    fn close_out(&mut self) -> CloseReport {
        let mut report = CloseReport {
            drained: self
                .after_close
                .min(u64::from(self.cfg.shutdown_drain_limit)),
            rejected: self.rejected,
            checkpoint_written: false,
            error: None,
        };
        if let Some(msg) = self.shared.poison_message() {
            report.error = Some(msg);
            return report;
        }
        if let Err(e) = self.sync_and_mark() {
            self.poison(e.clone());
            report.error = Some(e);
            return report;
        }
        match self.shared.write_checkpoint() {
            Ok(()) => report.checkpoint_written = true,
            Err(e) => report.error = Some(e),
        }
        report
    }
}

fn reject(cmd: Command, err: &AppendError) {
    match cmd {
        Command::Append { reply, .. } => reply.send(Err(err.clone())),
        Command::Batch { reply, .. } => reply.send(Err(err.clone())),
        Command::Sync { reply } => reply.send(Err(match err {
            AppendError::Poisoned(m) => SyncError::Poisoned(m.clone()),
            _ => SyncError::Closed,
        })),
        Command::Shutdown { reply } => reply.send(CloseReport {
            error: Some(err.to_string()),
            ..Default::default()
        }),
        Command::Quiesced { reply, .. } => reply.send(Err(err.to_string())),
        #[cfg(feature = "testkit")]
        Command::InjectPanic => {}
    }
}
