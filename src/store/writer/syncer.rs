//! Syncing beside the writer, and the rule for when a receipt may be sent.
//!
//! The writer hands every staged command here once its bytes are written. A receipt goes
//! out at once when the loss window allows it: the command did not ask to be durable and,
//! counting it, fewer than `sync_every_n_events` acknowledged events would be unsynced.
//! Otherwise it is held until a sync covers it. Receipts are released in order, so the
//! acknowledged events are always a prefix of the written ones.
//!
//! Syncs run on a thread of their own while the writer goes on framing and writing the
//! next commands; the commands written during a sync share the next one (group commit).
//! When nothing else is queued and no sync is running, the writer syncs itself instead:
//! a lone durable producer then pays no thread hand-off on top of its sync.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::SyncMode;
use crate::error::{AppendError, SyncError};
use crate::event::AppendReceipt;
use crate::fs::FsFile;

use super::super::segment;
use super::super::ticket::{AppendResult, Reply};
use super::super::Shared;
use crate::codec::header::HEADER_LEN;

/// Longest a sync waits for more waiting producers' commands to share it.
const GATHER: Duration = Duration::from_micros(50);

/// A written command waiting for its receipt.
pub(crate) enum Done {
    One(Reply<AppendResult>, AppendReceipt, Option<Instant>),
    Many(
        Reply<Result<Vec<AppendReceipt>, AppendError>>,
        Vec<AppendReceipt>,
        Option<Instant>,
    ),
    Sync(Reply<Result<(), SyncError>>),
}

impl Done {
    /// Answers with an error (a failed write or sync).
    pub fn fail(self, msg: &str) {
        match self {
            Done::One(reply, _, _) => reply.send(Err(AppendError::Poisoned(msg.into()))),
            Done::Many(reply, _, _) => reply.send(Err(AppendError::Poisoned(msg.into()))),
            Done::Sync(reply) => reply.send(Err(SyncError::Poisoned(msg.into()))),
        }
    }

    /// Enqueue time and event count, for the append-latency histogram.
    fn stamp(&self) -> Option<(Instant, u64)> {
        match self {
            Done::One(_, _, at) => at.map(|t| (t, 1)),
            Done::Many(_, rs, at) => at.map(|t| (t, rs.len() as u64)),
            Done::Sync(_) => None,
        }
    }

    /// Sends the receipt, marked durable when `synced`.
    fn send(self, synced: bool) {
        match self {
            Done::One(reply, mut r, _) => {
                r.durable |= synced;
                reply.send(Ok(r));
            }
            Done::Many(reply, mut rs, _) => {
                rs.iter_mut().for_each(|r| r.durable |= synced);
                reply.send(Ok(rs));
            }
            Done::Sync(reply) => reply.send(Ok(())),
        }
    }
}

/// A command written up to `last_seq` (the newest sequence written when it was staged).
pub(crate) struct Held {
    pub done: Done,
    pub last_seq: u64,
    /// `Shared::appended_total` once its bytes are written.
    pub end_total: u64,
    /// Its caller waits for the sync (a durable append, `Store::sync`).
    pub durable: bool,
}

/// Where the writer has written up to: what a sync now would cover.
#[derive(Clone)]
pub(crate) struct Target {
    pub file: Arc<dyn FsFile>,
    pub seg: u32,
    pub len: u64,
    pub seq: u64,
    /// `Shared::appended_total` at `len`.
    pub total: u64,
    pub mode: SyncMode,
}

pub(crate) struct State {
    held: VecDeque<Held>,
    /// Newest sequence and position a completed sync covers.
    synced_seq: u64,
    synced: (u32, u64),
    /// `Shared::appended_total` a completed sync covers, and at the newest receipt sent.
    synced_total: u64,
    acked_total: u64,
    target: Option<Target>,
    every: u64,
    in_flight: bool,
    stop: bool,
    /// Commands the last sync released (a sync waits to gather as many again).
    last_cover: usize,
    stamps: Vec<(Instant, u64)>,
}

struct Ctl {
    state: Mutex<State>,
    /// The sync thread waits here for work.
    work: Condvar,
    /// The writer waits here for a running sync to end.
    idle: Condvar,
    shared: Arc<Shared>,
}

/// The sync thread and the receipts waiting for it.
pub(crate) struct Syncer {
    ctl: Arc<Ctl>,
    thread: Option<JoinHandle<()>>,
}

/// What the writer should do after handing over a batch.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Nothing waits for a sync.
    Nothing,
    /// A sync is needed and the sync thread does it.
    Background,
    /// A sync is needed and the writer had better do it itself, after waiting for up to
    /// this many more commands to share it (producers wait for it: group commit).
    Inline { gather: usize },
}

impl Syncer {
    /// Starts the sync thread (without one, when the thread cannot be spawned, the writer
    /// does every sync itself). `synced` is what is known durable at start.
    pub fn start(shared: Arc<Shared>, synced: (u32, u64), synced_seq: u64) -> Self {
        let ctl = Arc::new(Ctl {
            state: Mutex::new(State {
                held: VecDeque::new(),
                synced_seq,
                synced,
                synced_total: 0,
                acked_total: 0,
                target: None,
                every: 1,
                in_flight: false,
                stop: false,
                last_cover: 0,
                stamps: Vec::new(),
            }),
            work: Condvar::new(),
            idle: Condvar::new(),
            shared,
        });
        let c = ctl.clone();
        let thread = std::thread::Builder::new()
            .name("batpak-sync".into())
            .spawn(move || c.run())
            .ok();
        Self { ctl, thread }
    }

    /// Hands over written commands and where the writer is now; sends every receipt the
    /// loss window allows and says whether a sync is needed and who should run it.
    pub fn hand_over(
        &self,
        done: &mut Vec<Held>,
        target: Option<Target>,
        every: u32,
        queue_empty: bool,
    ) -> Next {
        let st = self.add(done, target, every);
        if !st.needs_sync() {
            return Next::Nothing;
        }
        // Producers waiting for this sync have nothing to write meanwhile: the writer
        // syncs itself (one thread hand-off less per sync). A background sync (the loss
        // window filled up) overlaps with the writing of the next commands.
        let waiting = st.waiting_producers();
        if self.thread.is_none() || (!st.in_flight && (queue_empty || waiting)) {
            let gather = if waiting {
                st.last_cover.saturating_sub(st.held.len())
            } else {
                0
            };
            return Next::Inline { gather };
        }
        self.ctl.work.notify_one();
        Next::Background
    }

    /// Hands over written commands and sends what the loss window allows, without
    /// starting a sync.
    pub fn add(
        &self,
        done: &mut Vec<Held>,
        target: Option<Target>,
        every: u32,
    ) -> MutexGuard<'_, State> {
        let mut st = self.ctl.lock();
        st.every = u64::from(every.max(1));
        if target.is_some() {
            st.target = target;
        }
        st.held.extend(done.drain(..));
        self.ctl.release(&mut st);
        st
    }

    /// Syncs everything written now, on this thread (waiting for a running sync first),
    /// and releases what it covers.
    pub fn sync_now(&self, target: Option<Target>) -> Result<(), String> {
        let mut st = self.ctl.lock();
        if target.is_some() {
            st.target = target;
        }
        while st.in_flight {
            st = self
                .ctl
                .idle
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if !st.unsynced() {
            self.ctl.release(&mut st);
            return Ok(());
        }
        self.ctl.sync_locked(st)
    }

    /// Segment and length a completed sync covers.
    pub fn synced(&self) -> (u32, u64) {
        self.ctl.lock().synced
    }

    /// Answers every held command with the error (the store is poisoned).
    pub fn fail_all(&self, msg: &str) {
        let held: Vec<Held> = self.ctl.lock().held.drain(..).collect();
        held.into_iter().for_each(|h| h.done.fail(msg));
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.ctl.lock().stop = true;
        self.ctl.work.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl State {
    fn unsynced(&self) -> bool {
        self.target
            .as_ref()
            .is_some_and(|t| t.seq > self.synced_seq || (t.seg, t.len) > self.synced)
    }

    fn needs_sync(&self) -> bool {
        !self.held.is_empty() && self.unsynced()
    }

    /// Producers wait for the next sync: it may wait briefly to be shared.
    fn waiting_producers(&self) -> bool {
        self.every == 1 || self.held.iter().any(|h| h.durable)
    }
}

impl Ctl {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run(&self) {
        let mut st = self.lock();
        loop {
            if st.stop {
                return;
            }
            if st.in_flight || !st.needs_sync() {
                st = self.work.wait(st).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            st = self.gather(st);
            if st.stop || st.in_flight || !st.needs_sync() {
                continue;
            }
            if self.sync_locked(st).is_err() {
                return;
            }
            st = self.lock();
        }
    }

    /// Group commit: when producers wait for this sync and the last one was shared by
    /// several commands, waits up to `GATHER` for as many before starting it.
    fn gather<'a>(&self, mut st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        let want = st.last_cover;
        if want < 2 || !st.waiting_producers() {
            return st;
        }
        let deadline = Instant::now() + GATHER;
        while st.held.len() < want && !st.stop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            st = self
                .work
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        st
    }

    /// Runs one sync of the current target with the lock released, then records it and
    /// releases what it covers; a failure poisons the store and fails every held command.
    fn sync_locked(&self, mut st: MutexGuard<'_, State>) -> Result<(), String> {
        let Some(t) = st.target.clone() else {
            return Ok(());
        };
        st.in_flight = true;
        let before = (st.synced, st.synced_seq);
        drop(st);
        let start = Instant::now();
        let res = t.file.sync(t.mode);
        let took = start.elapsed();
        let mut st = self.lock();
        st.in_flight = false;
        self.idle.notify_all();
        if let Err(e) = res {
            let msg = format!(
                "sync {}: {e}",
                segment::path(&self.shared.dir, t.seg).display()
            );
            self.shared.set_poisoned(msg.clone());
            // After a failed sync the page cache may go on showing writes the disk lost:
            // cut the file back to what the last good sync covered, so that nothing (this
            // store's or a later open's) is ever written after them. Best effort.
            let good = match before.0 {
                (seg, len) if seg == t.seg => len,
                _ => HEADER_LEN as u64,
            };
            let _ = t.file.set_len(good).and_then(|()| t.file.sync(t.mode));
            let held: Vec<Held> = st.held.drain(..).collect();
            drop(st);
            held.into_iter().for_each(|h| h.done.fail(&msg));
            return Err(msg);
        }
        self.note_exposure(&st, before.1);
        st.synced_seq = st.synced_seq.max(t.seq);
        st.synced = st.synced.max((t.seg, t.len));
        st.synced_total = st.synced_total.max(t.total);
        self.shared.durable_seq.fetch_max(t.seq, Ordering::AcqRel);
        let events = t.seq.saturating_sub(before.1);
        let bytes = match before.0 {
            (seg, len) if seg == t.seg => t.len.saturating_sub(len),
            _ => t.len,
        };
        self.note_sync(took, events, bytes);
        let released = self.release(&mut st);
        // As many as the sync covered, or as many as waited meanwhile if more did.
        st.last_cover = released.max(
            self.shared
                .sync_waiters
                .peak_since_last_look()
                .min(released * 2),
        );
        self.shared
            .sync_group
            .store(st.last_cover, Ordering::Relaxed);
        Ok(())
    }

    /// Records the loss window as it stood the moment before a sync completed: what a
    /// power cut then would have lost of the acknowledged events (and their bytes). The
    /// window only grows between syncs, so this is the peak of each stretch.
    fn note_exposure(&self, st: &State, synced_seq_before: u64) {
        let acked = self.shared.acked_seq.load(Ordering::Acquire);
        let events = acked.saturating_sub(synced_seq_before);
        let bytes = st.acked_total.saturating_sub(st.synced_total);
        self.shared.telemetry.record_exposure(events, bytes);
    }

    fn note_sync(&self, took: Duration, events: u64, bytes: u64) {
        let stats = &self.shared.stats;
        stats.syncs.fetch_add(1, Ordering::Relaxed);
        stats
            .sync_nanos
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
        stats.synced_events.fetch_add(events, Ordering::Relaxed);
        self.shared.telemetry.record_sync(took, events, bytes);
    }

    /// Sends, in order, every held receipt that a completed sync covers or that the loss
    /// window allows unsynced; returns how many commands it answered. The latencies are
    /// recorded before the receipts go out, so a snapshot taken after a receipt counts it.
    fn release(&self, st: &mut State) -> usize {
        let (synced_seq, every) = (st.synced_seq, st.every);
        let n = st
            .held
            .iter()
            .take_while(|h| {
                h.last_seq <= synced_seq || (!h.durable && h.last_seq - synced_seq < every)
            })
            .count();
        if n == 0 {
            return 0;
        }
        let State {
            held,
            stamps,
            acked_total,
            ..
        } = st;
        stamps.extend(held.iter().take(n).filter_map(|h| h.done.stamp()));
        if !stamps.is_empty() {
            self.shared.telemetry.record_appends(Instant::now(), stamps);
            stamps.clear();
        }
        // The newest acknowledged sequence is published before the receipts go out, so
        // that a caller holding a receipt never reads a loss window without its event.
        if let Some(last) = held.get(n - 1) {
            self.shared
                .acked_seq
                .fetch_max(last.last_seq, Ordering::AcqRel);
            *acked_total = (*acked_total).max(last.end_total);
        }
        for h in held.drain(..n) {
            h.done.send(h.last_seq <= synced_seq);
        }
        n
    }
}
