//! A simulated file system that models what a power cut keeps (feature `testkit`).
//!
//! Every file keeps the content it had at its last sync plus the writes since, in order.
//! Directory entries (creates, renames, removals) become durable only when their directory
//! is synced. [`SimFs::power_cut`] freezes this file system (every later call fails, as if
//! the machine stopped) and returns the file system a reboot would find: for each file its
//! synced content plus a random prefix of the later writes, the last one possibly torn at
//! any byte; for the directory, its synced entries plus a random prefix of the later
//! operations. Directories themselves are created durably.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::panic::Location;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

mod crash;
mod fault;
mod ops;

pub use crash::{CrashMode, Replay};
pub use fault::{Call, CallSite, Fault};
use fault::{Coverage, Injection, Verdict};

#[derive(Debug, Clone)]
enum Op {
    Write { off: u64, data: Vec<u8> },
    SetLen(u64),
}

impl Op {
    /// Carries the operation out on `buf`, a write only up to its first `take` bytes.
    fn apply(&self, buf: &mut Vec<u8>, take: usize) {
        match self {
            Op::SetLen(l) => buf.resize(*l as usize, 0),
            Op::Write { off, data } => write_into(buf, *off, &data[..take.min(data.len())]),
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<Op>,
}

#[derive(Debug, Clone)]
enum DirOp {
    Link(PathBuf, u64),
    Unlink(PathBuf),
    Rename(PathBuf, PathBuf),
}

impl DirOp {
    fn dir(&self) -> PathBuf {
        let p = match self {
            Self::Link(p, _) | Self::Unlink(p) | Self::Rename(_, p) => p,
        };
        p.parent().map(Path::to_path_buf).unwrap_or_default()
    }

    fn apply(&self, entries: &mut BTreeMap<PathBuf, u64>) {
        match self {
            Self::Link(p, ino) => {
                entries.insert(p.clone(), *ino);
            }
            Self::Unlink(p) => {
                entries.remove(p);
            }
            Self::Rename(from, to) => {
                if let Some(ino) = entries.remove(from) {
                    entries.insert(to.clone(), ino);
                }
            }
        }
    }
}

/// One mutating call, as the journal of a recording file system keeps it.
#[derive(Debug, Clone)]
enum Entry {
    Write { ino: u64, off: u64, data: Vec<u8> },
    SetLen { ino: u64, len: u64 },
    Sync { ino: u64 },
    Create { path: PathBuf, ino: u64 },
    Dir(DirOp),
    SyncDir(PathBuf),
    MkDir(PathBuf),
}

#[derive(Debug, Default, Clone)]
struct State {
    inodes: HashMap<u64, Inode>,
    entries: BTreeMap<PathBuf, u64>,
    durable_entries: BTreeMap<PathBuf, u64>,
    pending_dir: Vec<DirOp>,
    dirs: BTreeSet<PathBuf>,
    locks: BTreeSet<PathBuf>,
    next_inode: u64,
    dead: bool,
    ops: u64,
    /// Writes and truncates fail with this error kind while set (a full or failing disk).
    fail_write: Option<io::ErrorKind>,
    /// Syncs fail with this error kind while set.
    fail_sync: Option<io::ErrorKind>,
    /// Every mutating call in order, when recording (see [`SimFs::recording`]).
    journal: Option<Vec<Entry>>,
    /// A fault to inject at the Nth call it applies to (see [`SimFs::inject`]).
    injection: Option<Injection>,
    /// Calls per engine call site.
    coverage: Coverage,
}

impl State {
    /// Counts a call against its call site and fails it when an injected or switched-on
    /// fault says so.
    fn charge(
        &mut self,
        call: Call,
        ino: Option<u64>,
        at: &'static Location<'static>,
    ) -> io::Result<Verdict> {
        self.ops += 1;
        let switched = match call {
            Call::WriteAt | Call::SetLen => self.fail_write,
            Call::Sync => self.fail_sync,
            _ => None,
        };
        if let Some(kind) = switched {
            return Err(io::Error::new(kind, "simulated I/O failure"));
        }
        let verdict = fault::charge(&mut self.coverage, self.injection.as_mut(), call, at);
        let loses = self.injection.as_ref().map(Injection::fault) == Some(Fault::SyncLosesData);
        if verdict.is_err() && call == Call::Sync && loses {
            // As Linux does after a failed writeback: the writes are dropped from the way
            // to the disk, while the page cache goes on showing them.
            if let Some(node) = ino.and_then(|i| self.inodes.get_mut(&i)) {
                node.pending.clear();
            }
        }
        verdict
    }

    /// The current content of the file at `path`.
    fn content(&self, path: &Path) -> io::Result<Vec<u8>> {
        let ino = self.entries.get(path).ok_or_else(|| not_found(path))?;
        Ok(self
            .inodes
            .get(ino)
            .map(|n| n.data.clone())
            .unwrap_or_default())
    }

    /// Carries out one mutating call (live, or replayed from a journal).
    fn apply(&mut self, e: &Entry) {
        match e {
            Entry::Write { ino, off, data } => {
                if let Some(n) = self.inodes.get_mut(ino) {
                    write_into(&mut n.data, *off, data);
                    n.pending.push(Op::Write {
                        off: *off,
                        data: data.clone(),
                    });
                }
            }
            Entry::SetLen { ino, len } => {
                if let Some(n) = self.inodes.get_mut(ino) {
                    n.data.resize(*len as usize, 0);
                    n.pending.push(Op::SetLen(*len));
                }
            }
            Entry::Sync { ino } => {
                // What reaches the disk is what was pending, applied to what was there:
                // after a failed sync dropped its writes, the cache view (`data`) still
                // shows them but they never become durable.
                if let Some(n) = self.inodes.get_mut(ino) {
                    for op in std::mem::take(&mut n.pending) {
                        op.apply(&mut n.durable, usize::MAX);
                    }
                }
            }
            Entry::Create { path, ino } => {
                self.next_inode = self.next_inode.max(*ino);
                self.inodes.insert(*ino, Inode::default());
                self.entries.insert(path.clone(), *ino);
                self.pending_dir.push(DirOp::Link(path.clone(), *ino));
            }
            Entry::Dir(op) => {
                op.apply(&mut self.entries);
                self.pending_dir.push(op.clone());
            }
            Entry::SyncDir(dir) => {
                let ops = std::mem::take(&mut self.pending_dir);
                let (done, keep): (Vec<DirOp>, Vec<DirOp>) =
                    ops.into_iter().partition(|op| op.dir() == *dir);
                done.iter()
                    .for_each(|op| op.apply(&mut self.durable_entries));
                self.pending_dir = keep;
            }
            Entry::MkDir(dir) => {
                for a in dir.ancestors() {
                    self.dirs.insert(a.to_path_buf());
                }
            }
        }
    }

    /// Applies `e` and keeps it in the journal when recording.
    fn record(&mut self, e: Entry) {
        self.apply(&e);
        if let Some(j) = self.journal.as_mut() {
            j.push(e);
        }
    }
}

/// The simulated file system. Clones share state.
#[derive(Debug, Clone, Default)]
pub struct SimFs {
    state: Arc<Mutex<State>>,
    cache: Arc<CacheRoot>,
}

/// A real directory for projection caches (LMDB does its own I/O, out of reach of the
/// simulation), private to one simulated file system and its clones, removed with the last.
/// A copy or a crash survivor starts without one, as if the cache had been lost.
#[derive(Debug)]
struct CacheRoot(PathBuf);

impl Default for CacheRoot {
    fn default() -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        CacheRoot(std::env::temp_dir().join(format!("batpak-sim-cache-{}-{n}", std::process::id())))
    }
}

impl Drop for CacheRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dead() -> io::Error {
    io::Error::other("simulated power cut: the machine is off")
}

fn not_found(p: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} not found", p.display()),
    )
}

/// A small deterministic generator for crash choices.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        if n == 0 {
            0
        } else {
            self.0 % n
        }
    }
}

impl SimFs {
    /// An empty file system.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty file system that keeps a journal of every mutating call, so that crashes
    /// can later be taken at any point of it (see [`Replay`]).
    pub fn recording() -> Self {
        let fs = Self::default();
        fs.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .journal = Some(Vec::new());
        fs
    }

    /// From now on the `at`-th call (0-based) that `fault` applies to fails, and with
    /// `persistent` every later one too. Replaces an earlier injection.
    pub fn inject(&self, fault: Fault, at: u64, persistent: bool) {
        self.set_injection(Injection::new(fault, at, persistent, None));
    }

    /// [`SimFs::inject`] counting only the calls of one method made from one engine line
    /// (as a [`CallSite`] names them): reaches a site whatever the threads' interleaving.
    pub fn inject_at_site(
        &self,
        fault: Fault,
        site: (&'static str, u32, Call),
        at: u64,
        persistent: bool,
    ) {
        self.set_injection(Injection::new(fault, at, persistent, Some(site)));
    }

    fn set_injection(&self, injection: Injection) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .injection = Some(injection);
    }

    /// Calls the injected fault applied to so far (faulted or not): run once with the
    /// fault out of reach to learn how many points a scenario has.
    pub fn fault_points(&self) -> u64 {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .injection
            .map_or(0, |i| i.seen)
    }

    /// Every engine line that called this file system so far, with its calls and the
    /// faults it was given.
    pub fn call_sites(&self) -> Vec<CallSite> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .coverage
            .sites()
    }

    /// No more injected faults.
    pub fn clear_injection(&self) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .injection = None;
    }

    /// A file system holding `st`.
    fn of(st: State) -> SimFs {
        SimFs {
            state: Arc::new(Mutex::new(st)),
            cache: Arc::default(),
        }
    }

    /// An independent copy of this file system as it is now (its own state from here on).
    /// Its call counts, call sites and injection start afresh.
    pub fn duplicate(&self) -> SimFs {
        let mut st = self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        st.coverage = Coverage::default();
        st.injection = None;
        Self::of(st)
    }

    /// Mutating calls journaled so far (0 when not recording).
    pub fn journal_len(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .journal
            .as_ref()
            .map_or(0, Vec::len)
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, io::Error> {
        let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if st.dead {
            return Err(dead());
        }
        Ok(st)
    }

    /// From now on every write and truncate fails with `kind` (e.g. `StorageFull`), until
    /// [`SimFs::heal`].
    pub fn fail_writes(&self, kind: io::ErrorKind) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .fail_write = Some(kind);
    }

    /// From now on every sync fails with `kind`, until [`SimFs::heal`].
    pub fn fail_syncs(&self, kind: io::ErrorKind) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .fail_sync = Some(kind);
    }

    /// Writes and syncs succeed again (space was freed).
    pub fn heal(&self) {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.fail_write = None;
        st.fail_sync = None;
    }

    /// File-system calls made so far (to pick crash moments).
    pub fn operations(&self) -> u64 {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .ops
    }

    /// Cuts the power: this file system stops answering, and the returned one holds what
    /// survived (see the module documentation). `seed` picks what survives.
    pub fn power_cut(&self, seed: u64) -> SimFs {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.dead = true;
        crash::survivor(&st, CrashMode::TornPrefix, seed)
    }

    /// Reads a whole file as it is now (for tests that damage files).
    pub fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.lock()?.content(path)
    }
}

fn write_into(buf: &mut Vec<u8>, off: u64, data: &[u8]) {
    let end = off as usize + data.len();
    if buf.len() < end {
        buf.resize(end, 0);
    }
    buf[off as usize..end].copy_from_slice(data);
}
