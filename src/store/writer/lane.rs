//! Who runs the writer: its own thread, or a lone durable producer that finds it idle.
//!
//! The writer's state sits behind a mutex. The writer thread takes commands from the
//! channel and locks the state for each batch. A producer whose append waits for a sync
//! may instead run that append itself, under the same lock, when the writer is idle:
//! - the lock is free (no batch is being written);
//! - the channel is empty and the writer thread holds no command it took from it, so
//!   nothing the producer queued earlier can be overtaken (its appends stay in issue
//!   order);
//! - the last sync was not shared by several producers (group commit goes through the
//!   writer thread, which gathers them).
//!
//! The producer then frames, writes and syncs on its own thread. A lone durable producer
//! pays neither the writer's wake-up nor its own, and no second busy core slows its sync
//! (on a small virtual machine a sync runs tens of microseconds slower while another
//! thread spins or yields). A write-group leader in RocksDB writes for its group the same
//! way.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Select, Sender, TryRecvError};

use super::super::command::Command;
use super::super::supervisor;
use super::super::Shared;
use super::{Writer, MAX_BATCH, SPIN};

/// Longest the writer thread sleeps without looking for unsynced data: a producer that ran
/// its own appends leaves the sync marker of its last sync for the writer to write.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// A value alone on its cache line (two lines: adjacent-line prefetching pairs them).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded<T>(T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// The writer's state, and the restart history of the policy's window.
struct Owned {
    writer: Writer,
    restarts: Vec<Instant>,
}

/// The writer's state shared by the writer thread and idle-writer producers.
pub(crate) struct Lane {
    state: Mutex<Option<Owned>>,
    shared: Arc<Shared>,
    /// Set by the writer thread before it takes a command from the channel, cleared only
    /// when it goes to sleep on an empty channel: while it is clear, the writer holds no
    /// command outside the lock.
    busy: Padded<AtomicBool>,
}

type Guard<'a> = MutexGuard<'a, Option<Owned>>;

impl Lane {
    pub fn new(shared: Arc<Shared>, writer: Writer) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(Some(Owned {
                writer,
                restarts: Vec::new(),
            })),
            shared,
            busy: Padded(AtomicBool::new(true)),
        })
    }

    fn lock(&self) -> Guard<'_> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Nothing queued, nothing taken outside the lock, no group of producers sharing
    /// syncs. The channel is looked at first: a command the writer took from it was taken
    /// after `busy` was set (both sequentially consistent), so a producer that sees the
    /// channel without its earlier command also sees `busy`.
    fn idle(&self, tx: &Sender<Command>) -> bool {
        tx.is_empty()
            && !self.busy.load(Ordering::SeqCst)
            && self.shared.sync_group.load(Ordering::Relaxed) <= 1
    }

    /// Runs `cmd` (an append that waits for its sync) on this thread when the writer is
    /// idle; gives it back (to be queued) otherwise.
    pub fn try_run(&self, cmd: Command, tx: &Sender<Command>) -> Option<Command> {
        if !self.idle(tx) {
            return Some(cmd);
        }
        let Ok(mut g) = self.state.try_lock() else {
            return Some(cmd);
        };
        // Checked again under the lock: the writer cannot finish a batch meanwhile.
        match g.as_ref() {
            Some(o) if self.idle(tx) && o.writer.takes_inline() => {}
            _ => return Some(cmd),
        }
        self.run_locked(&mut g, |w| w.run_one(cmd));
        None
    }

    /// Runs `f` on the writer; after a panic, rebuilds it from disk as `restart_policy`
    /// says (or poisons the store when the policy gives up).
    fn run_locked(&self, g: &mut Guard<'_>, f: impl FnOnce(&mut Writer)) {
        let Some(owned) = g.as_mut() else { return };
        let Err(panic) = catch_unwind(AssertUnwindSafe(|| f(&mut owned.writer))) else {
            return;
        };
        let msg = supervisor::panic_message(&*panic);
        let Some(Owned {
            writer,
            mut restarts,
        }) = g.take()
        else {
            return;
        };
        // The old writer (its files, its sync thread) goes before recovery reads the disk.
        drop(writer);
        let writer = supervisor::restart(&self.shared, &mut restarts, &msg).unwrap_or_else(|why| {
            self.shared.set_poisoned(why);
            Writer::new(self.shared.clone(), None, 0, 0)
        });
        **g = Some(Owned { writer, restarts });
    }

    /// The writer thread: takes commands from the channel and runs them in batches until
    /// shutdown or until every sender is gone.
    pub fn run_thread(&self, rx: &Receiver<Command>) {
        let mut cmds = Vec::with_capacity(MAX_BATCH);
        loop {
            let first = self.next_command(rx);
            let mut g = self.lock();
            let Some(first) = first else {
                if let Some(o) = g.as_mut() {
                    let _ = o.writer.close_out();
                }
                *g = None;
                return;
            };
            cmds.push(first);
            while cmds.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(c) => cmds.push(c),
                    Err(_) => break,
                }
            }
            self.run_locked(&mut g, |w| w.batch(&mut cmds, Some(rx)));
            // Left over only after a panic: dropping them answers "not written".
            cmds.clear();
            if let Some(o) = g.as_mut().filter(|o| o.writer.shutting_down()) {
                o.writer.finish_shutdown(rx);
                *g = None;
                return;
            }
        }
    }

    /// The next command: polls briefly, then sleeps until the channel has one, syncing
    /// when the store stays idle.
    fn next_command(&self, rx: &Receiver<Command>) -> Option<Command> {
        let start = Instant::now();
        self.busy.store(true, Ordering::SeqCst);
        loop {
            match rx.try_recv() {
                Ok(c) => return Some(c),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) if start.elapsed() < SPIN => std::hint::spin_loop(),
                Err(TryRecvError::Empty) => break,
            }
        }
        loop {
            let wait = self.idle_wait();
            self.busy.store(false, Ordering::SeqCst);
            // Waits without taking: a command is only taken once `busy` is set again.
            let mut sel = Select::new();
            sel.recv(rx);
            let ready = sel.ready_timeout(wait).is_ok();
            self.busy.store(true, Ordering::SeqCst);
            match rx.try_recv() {
                Ok(c) => return Some(c),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) if !ready => self.idle_sync_if_due(),
                Err(TryRecvError::Empty) => {}
            }
        }
    }

    /// How long to wait for a command before looking for unsynced data again.
    fn idle_wait(&self) -> Duration {
        let mut g = self.lock();
        g.as_mut()
            .and_then(|o| o.writer.idle_sync_in())
            .unwrap_or(IDLE_CHECK)
    }

    /// Syncs (and marks) what is unsynced once no batch ran for `IDLE_SYNC_AFTER`.
    fn idle_sync_if_due(&self) {
        let mut g = self.lock();
        if g.as_mut().and_then(|o| o.writer.idle_sync_in()) == Some(Duration::ZERO) {
            self.run_locked(&mut g, Writer::idle_sync);
        }
    }
}
