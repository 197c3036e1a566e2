//! The simulated file system's files and its [`FileSystem`] methods: each call is charged
//! to its engine call site (and may be faulted), then carried out on the shared state and
//! journaled when recording.

use std::io;
use std::panic::Location;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError};

use super::fault::{Call, Verdict};
use super::{not_found, DirOp, Entry, Inode, SimFs};
use crate::config::SyncMode;
use crate::fs::{FileSystem, FsFile, LockGuard, OpenMode, ReadView};

struct SimFile {
    fs: SimFs,
    ino: u64,
}

impl SimFile {
    /// A read of the file (`read_at`, `size`).
    #[track_caller]
    fn with<R>(&self, call: Call, f: impl FnOnce(&mut Inode, Verdict) -> R) -> io::Result<R> {
        let mut st = self.fs.lock()?;
        let verdict = st.charge(call, Some(self.ino), Location::caller())?;
        let node = st
            .inodes
            .get_mut(&self.ino)
            .ok_or_else(|| io::Error::other("inode vanished"))?;
        Ok(f(node, verdict))
    }

    /// A write or truncate: applied and journaled unless a fault says otherwise; `e` gets
    /// the verdict (a short write keeps part of its bytes).
    #[track_caller]
    fn mutate(&self, call: Call, e: impl FnOnce(Verdict) -> Entry) -> io::Result<()> {
        let mut st = self.fs.lock()?;
        let verdict = st.charge(call, Some(self.ino), Location::caller())?;
        if !st.inodes.contains_key(&self.ino) {
            return Err(io::Error::other("inode vanished"));
        }
        st.record(e(verdict));
        Ok(())
    }
}

/// How many of `len` bytes a call moves.
fn moved(len: usize, verdict: Verdict) -> usize {
    match verdict {
        Verdict::Whole => len,
        Verdict::Short => len.div_ceil(2),
    }
}

impl FsFile for SimFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.with(Call::ReadAt, |n, verdict| {
            let start = (offset as usize).min(n.data.len());
            let len = moved(buf.len().min(n.data.len() - start), verdict);
            buf[..len].copy_from_slice(&n.data[start..start + len]);
            len
        })
    }

    fn write_at(&self, data: &[u8], offset: u64) -> io::Result<usize> {
        let mut len = data.len();
        self.mutate(Call::WriteAt, |verdict| {
            len = moved(data.len(), verdict);
            Entry::Write {
                ino: self.ino,
                off: offset,
                data: data[..len].to_vec(),
            }
        })?;
        Ok(len)
    }

    fn sync(&self, _mode: SyncMode) -> io::Result<()> {
        let mut st = self.fs.lock()?;
        st.charge(Call::Sync, Some(self.ino), Location::caller())?;
        st.record(Entry::Sync { ino: self.ino });
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.mutate(Call::SetLen, |_| Entry::SetLen { ino: self.ino, len })
    }

    fn size(&self) -> io::Result<u64> {
        self.with(Call::Size, |n, _| n.data.len() as u64)
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
        st.charge(Call::CreateDir, None, Location::caller())?;
        st.record(Entry::MkDir(dir.to_path_buf()));
        Ok(())
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut st = self.lock()?;
        st.charge(Call::ListDir, None, Location::caller())?;
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
        let call = match mode {
            OpenMode::Read => Call::OpenRead,
            OpenMode::ReadWrite | OpenMode::CreateNew => Call::OpenWrite,
        };
        st.charge(call, None, Location::caller())?;
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
                let ino = st.next_inode + 1;
                st.record(Entry::Create {
                    path: path.to_path_buf(),
                    ino,
                });
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
        st.charge(Call::Rename, None, Location::caller())?;
        if !st.entries.contains_key(from) {
            return Err(not_found(from));
        }
        st.record(Entry::Dir(DirOp::Rename(
            from.to_path_buf(),
            to.to_path_buf(),
        )));
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut st = self.lock()?;
        st.charge(Call::Remove, None, Location::caller())?;
        if !st.entries.contains_key(path) {
            return Err(not_found(path));
        }
        st.record(Entry::Dir(DirOp::Unlink(path.to_path_buf())));
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.lock()?;
        st.charge(Call::SyncDir, None, Location::caller())?;
        st.record(Entry::SyncDir(dir.to_path_buf()));
        Ok(())
    }

    fn map(&self, path: &Path) -> io::Result<Arc<dyn ReadView>> {
        let mut st = self.lock()?;
        st.charge(Call::Map, None, Location::caller())?;
        let data = st.content(path)?;
        Ok(Arc::new(SimView(data)))
    }

    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.lock()?;
        st.charge(Call::HardLink, None, Location::caller())?;
        let ino = *st.entries.get(from).ok_or_else(|| not_found(from))?;
        if st.entries.contains_key(to) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists", to.display()),
            ));
        }
        st.record(Entry::Dir(DirOp::Link(to.to_path_buf(), ino)));
        Ok(())
    }

    fn cache_dir(&self, dir: &Path) -> Option<PathBuf> {
        let inside = dir.strip_prefix("/").unwrap_or(dir);
        Some(self.cache.0.join(inside).join(crate::layout::CACHE_DIR))
    }

    fn links_in(&self, _dir: &Path) -> io::Result<Vec<String>> {
        let mut st = self.lock()?;
        st.charge(Call::ListDir, None, Location::caller())?;
        Ok(Vec::new())
    }

    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn LockGuard>>> {
        let mut st = self.lock()?;
        st.charge(Call::Lock, None, Location::caller())?;
        if !st.locks.insert(path.to_path_buf()) {
            return Ok(None);
        }
        Ok(Some(Box::new(SimLock {
            fs: self.clone(),
            path: path.to_path_buf(),
        })))
    }
}
