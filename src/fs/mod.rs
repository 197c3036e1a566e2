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

pub mod account;
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
///
/// `read_at` and `write_at` are single system calls: they may transfer fewer bytes than
/// asked (a short read or write) or fail with `Interrupted` (EINTR). The engine calls
/// [`FsFile::write_all_at`] and [`FsFile::read_full_at`], which resume both, so neither is
/// ever a failure. Every method tracks its caller, so a test file system can tell the
/// engine's call sites apart.
pub trait FsFile: Send + Sync {
    /// One read of up to `buf.len()` bytes at `offset`; returns how many were read (0 at
    /// the end of the file).
    #[track_caller]
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// One write of `data` at `offset`; returns how many bytes were written.
    #[track_caller]
    fn write_at(&self, data: &[u8], offset: u64) -> io::Result<usize>;
    /// `fsync` or `fdatasync`.
    #[track_caller]
    fn sync(&self, mode: SyncMode) -> io::Result<()>;
    /// Truncates or extends the file.
    #[track_caller]
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// The current length in bytes.
    #[track_caller]
    fn size(&self) -> io::Result<u64>;

    /// Writes all of `data` at `offset`, resuming after short writes and EINTR.
    #[track_caller]
    fn write_all_at(&self, mut data: &[u8], mut offset: u64) -> io::Result<()> {
        while !data.is_empty() {
            match self.write_at(data, offset) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    let n = n.min(data.len());
                    data = &data[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads until `buf` is full or the file ends, resuming after short reads and EINTR;
    /// returns how many bytes were read.
    #[track_caller]
    fn read_full_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match self.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n.min(buf.len() - done),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }
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
    #[track_caller]
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Names of the entries of a directory.
    #[track_caller]
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// `true` if the path exists.
    fn exists(&self, path: &Path) -> bool;
    /// Opens a file.
    #[track_caller]
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FsFile>>;
    /// Renames a file (atomically replacing `to`).
    #[track_caller]
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    #[track_caller]
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creates, renames, removals) durable.
    #[track_caller]
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Makes `to` a second name of the file `from` (a hard link). File systems without
    /// links return `Unsupported`, and callers copy instead.
    #[track_caller]
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        let _ = (from, to);
        Err(io::ErrorKind::Unsupported.into())
    }
    /// Maps a whole file read-only.
    #[track_caller]
    fn map(&self, path: &Path) -> io::Result<Arc<dyn ReadView>>;

    /// Where the projection cache of the store in `dir` lives: LMDB does its own I/O, so
    /// this is a directory on a real file system, or `None` to run projections uncached.
    fn cache_dir(&self, dir: &Path) -> Option<std::path::PathBuf> {
        let _ = dir;
        None
    }

    /// Names of the symbolic links directly in `dir` (a file system without links has none).
    #[track_caller]
    fn links_in(&self, _dir: &Path) -> io::Result<Vec<String>> {
        Ok(Vec::new())
    }
    /// Takes an exclusive lock on `path` (created if missing); `Ok(None)` when another
    /// holder has it.
    #[track_caller]
    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn LockGuard>>>;
}

/// Replaces `dir/name` atomically with `parts` written in order: a temporary file is
/// written and `fsync`ed, renamed over the target, and the directory is `fsync`ed. A crash
/// leaves either the old file or the new one, whole.
#[track_caller]
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
        self.0.read_at(buf, offset)
    }

    fn write_at(&self, data: &[u8], offset: u64) -> io::Result<usize> {
        self.0.write_at(data, offset)
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

/// The two locks of a read-write open: the lock file, and the directory itself (which a
/// second open cannot replace by deleting a file).
struct StdLock {
    #[allow(dead_code)]
    dir: File,
    #[allow(dead_code)]
    file: File,
}

impl LockGuard for StdLock {}

/// Takes an exclusive `flock` on `file` without waiting; `false` when another holds it.
fn flock(file: &File) -> io::Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

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

    fn cache_dir(&self, dir: &Path) -> Option<std::path::PathBuf> {
        Some(dir.join(crate::layout::CACHE_DIR))
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

    /// Locks the directory holding `path` and then `path` (created if missing), both with
    /// `flock`. The lock file alone can be deleted, and a second open would then lock a new
    /// file of the same name; the directory cannot. The file stays for older builds, which
    /// lock only it.
    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn LockGuard>>> {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = File::open(parent)?;
        match flock(&dir) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            // A file system that cannot lock a directory (NFS emulates flock with fcntl,
            // which needs a writable descriptor): the lock file alone, as older builds.
            Err(_) => {}
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        if !flock(&file)? {
            return Ok(None);
        }
        Ok(Some(Box::new(StdLock { dir, file })))
    }
}
