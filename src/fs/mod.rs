//! The file-system seam: every file and directory operation of the engine goes through
//! [`FileSystem`], so tests can swap the real one ([`StdFs`]) for a simulated one that
//! loses unsynced writes at a power cut (`SimFs`, behind the `testkit` feature).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use crate::config::SyncMode;

#[cfg(feature = "testkit")]
pub mod sim;

/// How to open a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Read only; the file must exist.
    Read,
    /// Read and write; the file must exist.
    ReadWrite,
    /// Read and write; the file must not exist yet.
    CreateNew,
}

/// An open file. Writes are positional; the engine tracks its own offsets.
pub trait FsFile: Send + Sync {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Writes all of `data` at `offset`.
    fn write_all_at(&self, data: &[u8], offset: u64) -> io::Result<()>;
    /// `fsync` or `fdatasync`.
    fn sync(&self, mode: SyncMode) -> io::Result<()>;
    /// Truncates or extends the file.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// The current length in bytes.
    fn size(&self) -> io::Result<u64>;
}

/// A read-only view of a whole file (a memory map on a real file system).
pub trait ReadView: Send + Sync {
    /// The file's bytes.
    fn bytes(&self) -> &[u8];
}

/// Holds an exclusive lock until dropped.
pub trait LockGuard: Send + Sync {}

/// Every file and directory operation the engine performs.
pub trait FileSystem: Send + Sync + fmt::Debug {
    /// Creates a directory and its parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Names of the entries of a directory.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// `true` if the path exists.
    fn exists(&self, path: &Path) -> bool;
    /// Opens a file.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FsFile>>;
    /// Renames a file (atomically replacing `to`).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creates, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Makes `to` a second name of the file `from` (a hard link). File systems without
    /// links return `Unsupported`, and callers copy instead.
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        let _ = (from, to);
        Err(io::ErrorKind::Unsupported.into())
    }
    /// Maps a whole file read-only.
    fn map(&self, path: &Path) -> io::Result<Arc<dyn ReadView>>;

    /// Names of the symbolic links directly in `dir` (a file system without links has none).
    fn links_in(&self, _dir: &Path) -> io::Result<Vec<String>> {
        Ok(Vec::new())
    }
    /// Takes an exclusive lock on `path` (created if missing); `Ok(None)` when another
    /// holder has it.
    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn LockGuard>>>;
}

/// Replaces `dir/name` atomically with `parts` written in order: a temporary file is
/// written and `fsync`ed, renamed over the target, and the directory is `fsync`ed. A crash
/// leaves either the old file or the new one, whole.
pub fn write_atomically(
    fs: &dyn FileSystem,
    dir: &Path,
    name: &str,
    parts: &[&[u8]],
) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    if fs.exists(&tmp) {
        fs.remove_file(&tmp)?;
    }
    let file = fs.open(&tmp, OpenMode::CreateNew)?;
    let mut off = 0;
    for part in parts {
        file.write_all_at(part, off)?;
        off += part.len() as u64;
    }
    file.sync(SyncMode::SyncAll)?;
    fs.rename(&tmp, &dir.join(name))?;
    fs.sync_dir(dir)
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdFs;

struct StdFile(File);

impl FsFile for StdFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        loop {
            match self.0.read_at(buf, offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    fn write_all_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        // `write_all_at` resumes after EINTR and short writes.
        self.0.write_all_at(data, offset)
    }

    fn sync(&self, mode: SyncMode) -> io::Result<()> {
        match mode {
            SyncMode::SyncAll => self.0.sync_all(),
            SyncMode::SyncData => self.0.sync_data(),
        }
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
}

struct StdMap(memmap2::Mmap);

impl ReadView for StdMap {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

struct StdLock(#[allow(dead_code)] File);

impl LockGuard for StdLock {}

impl FileSystem for StdFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(names)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FsFile>> {
        let mut o = OpenOptions::new();
        match mode {
            OpenMode::Read => o.read(true),
            OpenMode::ReadWrite => o.read(true).write(true),
            OpenMode::CreateNew => o.read(true).write(true).create_new(true),
        };
        Ok(Arc::new(StdFile(o.open(path)?)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::hard_link(from, to)
    }

    fn links_in(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_symlink() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(names)
    }

    fn map(&self, path: &Path) -> io::Result<Arc<dyn ReadView>> {
        let file = File::open(path)?;
        // SAFETY: only sealed segments are mapped. A sealed segment is never written,
        // truncated or replaced in place while a store has it open: the directory lock
        // keeps other writers out, and the engine only ever appends to the active segment.
        // The file descriptor is closed when this function returns; the mapping stays valid.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        Ok(Arc::new(StdMap(map)))
    }

    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn LockGuard>>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Box::new(StdLock(file)))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}
