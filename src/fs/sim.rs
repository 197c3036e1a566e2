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
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{FileSystem, FsFile, LockGuard, OpenMode, ReadView};
use crate::config::SyncMode;

#[derive(Debug, Clone)]
enum Op {
    Write { off: u64, data: Vec<u8> },
    SetLen(u64),
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

#[derive(Debug, Default)]
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
}

/// The simulated file system. Clones share state.
#[derive(Debug, Clone, Default)]
pub struct SimFs {
    state: Arc<Mutex<State>>,
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
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
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
        let mut rng = Rng(seed | 1);
        let mut entries = st.durable_entries.clone();
        let keep = rng.below(st.pending_dir.len() as u64 + 1) as usize;
        st.pending_dir[..keep]
            .iter()
            .for_each(|op| op.apply(&mut entries));
        let mut inodes = HashMap::new();
        for ino in entries.values() {
            if let Some(node) = st.inodes.get(ino) {
                let content = survive(node, &mut rng);
                inodes.insert(
                    *ino,
                    Inode {
                        data: content.clone(),
                        durable: content,
                        pending: Vec::new(),
                    },
                );
            }
        }
        let next = State {
            inodes,
            durable_entries: entries.clone(),
            entries,
            dirs: st.dirs.clone(),
            next_inode: st.next_inode,
            ..State::default()
        };
        SimFs {
            state: Arc::new(Mutex::new(next)),
        }
    }

    /// Reads a whole file as it is now (for tests that damage files).
    pub fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        let st = self.lock()?;
        let ino = st.entries.get(path).ok_or_else(|| not_found(path))?;
        Ok(st
            .inodes
            .get(ino)
            .map(|n| n.data.clone())
            .unwrap_or_default())
    }
}

/// What a file holds after a power cut: its synced content plus a random prefix of later
/// operations, the last write possibly torn.
fn survive(node: &Inode, rng: &mut Rng) -> Vec<u8> {
    let mut content = node.durable.clone();
    let n = rng.below(node.pending.len() as u64 + 1) as usize;
    for (i, op) in node.pending.iter().take(n).enumerate() {
        match op {
            Op::SetLen(l) => content.resize(*l as usize, 0),
            Op::Write { off, data } => {
                let take = if i + 1 == n {
                    rng.below(data.len() as u64 + 1) as usize
                } else {
                    data.len()
                };
                write_into(&mut content, *off, &data[..take]);
            }
        }
    }
    content
}

fn write_into(buf: &mut Vec<u8>, off: u64, data: &[u8]) {
    let end = off as usize + data.len();
    if buf.len() < end {
        buf.resize(end, 0);
    }
    buf[off as usize..end].copy_from_slice(data);
}

struct SimFile {
    fs: SimFs,
    ino: u64,
}

impl SimFile {
    fn with<R>(&self, f: impl FnOnce(&mut Inode) -> R) -> io::Result<R> {
        self.access(|_| None, f)
    }

    fn modify<R>(&self, f: impl FnOnce(&mut Inode) -> R) -> io::Result<R> {
        self.access(|st| st.fail_write, f)
    }

    fn access<R>(
        &self,
        fault: impl FnOnce(&State) -> Option<io::ErrorKind>,
        f: impl FnOnce(&mut Inode) -> R,
    ) -> io::Result<R> {
        let mut st = self.fs.lock()?;
        st.ops += 1;
        if let Some(kind) = fault(&st) {
            return Err(io::Error::new(kind, "simulated I/O failure"));
        }
        let node = st
            .inodes
            .get_mut(&self.ino)
            .ok_or_else(|| io::Error::other("inode vanished"))?;
        Ok(f(node))
    }
}

impl FsFile for SimFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.with(|n| {
            let start = (offset as usize).min(n.data.len());
            let len = buf.len().min(n.data.len() - start);
            buf[..len].copy_from_slice(&n.data[start..start + len]);
            len
        })
    }

    fn write_all_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        self.modify(|n| {
            write_into(&mut n.data, offset, data);
            n.pending.push(Op::Write {
                off: offset,
                data: data.to_vec(),
            });
        })
    }

    fn sync(&self, _mode: SyncMode) -> io::Result<()> {
        self.access(
            |st| st.fail_sync,
            |n| {
                n.durable = n.data.clone();
                n.pending.clear();
            },
        )
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.modify(|n| {
            n.data.resize(len as usize, 0);
            n.pending.push(Op::SetLen(len));
        })
    }

    fn size(&self) -> io::Result<u64> {
        self.with(|n| n.data.len() as u64)
    }
}

struct SimView(Vec<u8>);

impl ReadView for SimView {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

struct SimLock {
    fs: SimFs,
    path: PathBuf,
}

impl LockGuard for SimLock {}

impl Drop for SimLock {
    fn drop(&mut self) {
        let mut st = self.fs.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.locks.remove(&self.path);
    }
}

impl FileSystem for SimFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.lock()?;
        st.ops += 1;
        for a in dir.ancestors() {
            st.dirs.insert(a.to_path_buf());
        }
        Ok(())
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut st = self.lock()?;
        st.ops += 1;
        if !st.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        Ok(st
            .entries
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect())
    }

    fn exists(&self, path: &Path) -> bool {
        self.lock()
            .is_ok_and(|st| st.entries.contains_key(path) || st.dirs.contains(path))
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FsFile>> {
        let mut st = self.lock()?;
        st.ops += 1;
        let ino = match (mode, st.entries.get(path).copied()) {
            (OpenMode::CreateNew, Some(_)) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists", path.display()),
                ))
            }
            (OpenMode::CreateNew, None) => {
                if !path.parent().is_some_and(|p| st.dirs.contains(p)) {
                    return Err(not_found(path));
                }
                st.next_inode += 1;
                let ino = st.next_inode;
                st.inodes.insert(ino, Inode::default());
                st.entries.insert(path.to_path_buf(), ino);
                st.pending_dir.push(DirOp::Link(path.to_path_buf(), ino));
                ino
            }
            (_, Some(ino)) => ino,
            (_, None) => return Err(not_found(path)),
        };
        Ok(Arc::new(SimFile {
            fs: self.clone(),
            ino,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.lock()?;
        st.ops += 1;
        let ino = st.entries.remove(from).ok_or_else(|| not_found(from))?;
        st.entries.insert(to.to_path_buf(), ino);
        st.pending_dir
            .push(DirOp::Rename(from.to_path_buf(), to.to_path_buf()));
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut st = self.lock()?;
        st.ops += 1;
        st.entries.remove(path).ok_or_else(|| not_found(path))?;
        st.pending_dir.push(DirOp::Unlink(path.to_path_buf()));
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.lock()?;
        st.ops += 1;
        let ops = std::mem::take(&mut st.pending_dir);
        let (done, keep): (Vec<DirOp>, Vec<DirOp>) =
            ops.into_iter().partition(|op| op.dir() == dir);
        let mut durable = std::mem::take(&mut st.durable_entries);
        done.iter().for_each(|op| op.apply(&mut durable));
        st.durable_entries = durable;
        st.pending_dir = keep;
        Ok(())
    }

    fn map(&self, path: &Path) -> io::Result<Arc<dyn ReadView>> {
        let data = self.read_file(path)?;
        Ok(Arc::new(SimView(data)))
    }

    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn LockGuard>>> {
        let mut st = self.lock()?;
        if !st.locks.insert(path.to_path_buf()) {
            return Ok(None);
        }
        Ok(Some(Box::new(SimLock {
            fs: self.clone(),
            path: path.to_path_buf(),
        })))
    }
}
