//! Write accounting: what the engine asks of the storage medium, per class of file.
//!
//! A read-write store wraps its [`FileSystem`] in [`Accounted`], which counts, for every
//! file it opens, the bytes passed to `write`, the `write` calls and the syncs, by
//! [`FileClass`] (chosen from the file name when the file is opened). Beside the bytes it
//! keeps an estimate of what reaches the medium: the 4 KiB pages a write dirties that were
//! clean since the file's last sync. A sync writes every dirty page whole, so a page
//! rewritten after each sync counts once per sync; this is the page-rewrite floor of
//! `docs/performance.md`. The projection cache does its own I/O inside LMDB: its commits
//! are recorded here by the cache (see [`WriteAccount::record_cache_commit`]).
//!
//! Counting costs two relaxed atomic additions per write or sync and, for the page
//! estimate, one uncontended lock per write and sync of the file.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::config::SyncMode;
use crate::process::IoCounters;

use super::{FileSystem, FsFile, LockGuard, OpenMode, ReadView};

/// Page size the estimate of bytes sent to storage assumes.
pub const PAGE_BYTES: u64 = 4096;

/// What a file is for, as far as wear is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileClass {
    /// Segment files (`seg-*.bpk`, and a compaction's staged `seg-*.bpk.compact`).
    Segments,
    /// The index checkpoint (`index.ckpt` and its temporary file).
    Checkpoint,
    /// The projection cache (LMDB's files in `cache/`).
    Cache,
    /// The identity file, the lock, the compaction manifest, directory syncs and any file
    /// outside the data directory (a snapshot's destination).
    Other,
}

impl FileClass {
    /// Every class, in display order.
    pub const ALL: [FileClass; 4] = [
        FileClass::Segments,
        FileClass::Checkpoint,
        FileClass::Cache,
        FileClass::Other,
    ];

    /// A short lower-case name (`segments`, `checkpoint`, `cache`, `other`).
    pub fn name(self) -> &'static str {
        match self {
            FileClass::Segments => "segments",
            FileClass::Checkpoint => "checkpoint",
            FileClass::Cache => "cache",
            FileClass::Other => "other",
        }
    }

    /// The class of `path` for a store in `dir`.
    pub fn of(dir: &Path, path: &Path) -> FileClass {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let parent = path.parent().unwrap_or(Path::new(""));
        if parent != dir {
            return FileClass::Other;
        }
        if crate::layout::is_segment_or_staged(name) {
            FileClass::Segments
        } else if crate::layout::is_checkpoint(name) {
            FileClass::Checkpoint
        } else {
            FileClass::Other
        }
    }

    fn slot(self) -> usize {
        self as usize
    }
}

/// What one class of file has been asked to write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassWrites {
    /// Bytes passed to `write` (for the cache: bytes LMDB wrote, see the module docs).
    pub bytes: u64,
    /// `write` calls (for the cache: committed write transactions).
    pub writes: u64,
    /// Syncs (`fsync`, `fdatasync`, directory syncs; LMDB's per commit).
    pub syncs: u64,
    /// Estimate of bytes sent to storage: whole pages dirtied since each file's last sync.
    pub storage_bytes: u64,
}

impl ClassWrites {
    /// The counts of `self` minus those of `earlier` (saturating).
    pub fn since(&self, earlier: &ClassWrites) -> ClassWrites {
        ClassWrites {
            bytes: self.bytes.saturating_sub(earlier.bytes),
            writes: self.writes.saturating_sub(earlier.writes),
            syncs: self.syncs.saturating_sub(earlier.syncs),
            storage_bytes: self.storage_bytes.saturating_sub(earlier.storage_bytes),
        }
    }

    fn add(&mut self, other: &ClassWrites) {
        self.bytes += other.bytes;
        self.writes += other.writes;
        self.syncs += other.syncs;
        self.storage_bytes += other.storage_bytes;
    }
}

#[derive(Debug, Default)]
struct ClassCounter {
    bytes: AtomicU64,
    writes: AtomicU64,
    syncs: AtomicU64,
    storage_bytes: AtomicU64,
}

impl ClassCounter {
    fn load(&self) -> ClassWrites {
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ClassWrites {
            bytes: ld(&self.bytes),
            writes: ld(&self.writes),
            syncs: ld(&self.syncs),
            storage_bytes: ld(&self.storage_bytes),
        }
    }

    fn reset(&self) {
        for a in [&self.bytes, &self.writes, &self.syncs, &self.storage_bytes] {
            a.store(0, Ordering::Relaxed);
        }
    }
}

/// Writes per class, by class: a copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteTotals {
    classes: [ClassWrites; 4],
}

impl WriteTotals {
    /// The counts of one class.
    pub fn class(&self, class: FileClass) -> ClassWrites {
        self.classes[class.slot()]
    }

    /// Every class with its counts, in display order.
    pub fn iter(&self) -> impl Iterator<Item = (FileClass, ClassWrites)> + '_ {
        FileClass::ALL.into_iter().map(|c| (c, self.class(c)))
    }

    /// The sum over every class.
    pub fn total(&self) -> ClassWrites {
        let mut sum = ClassWrites::default();
        self.classes.iter().for_each(|c| sum.add(c));
        sum
    }

    /// What happened after `earlier`.
    pub fn since(&self, earlier: &WriteTotals) -> WriteTotals {
        let mut out = WriteTotals::default();
        for c in FileClass::ALL {
            out.classes[c.slot()] = self.class(c).since(&earlier.class(c));
        }
        out
    }
}

/// The counters an [`Accounted`] file system and the projection cache add to.
#[derive(Debug, Default)]
pub struct WriteAccount {
    classes: [ClassCounter; 4],
    /// The process's kernel counters when counting began (or was last reset).
    io_baseline: Mutex<Option<IoCounters>>,
}

impl WriteAccount {
    /// Counters at zero, the process's kernel counters taken as the baseline.
    pub fn new() -> Self {
        Self {
            classes: Default::default(),
            io_baseline: Mutex::new(IoCounters::process()),
        }
    }

    /// The process's kernel storage counters since counting began, where Linux has them.
    pub fn process_io(&self) -> Option<IoCounters> {
        let base = *self
            .io_baseline
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Some(IoCounters::process()?.since(&base?))
    }

    /// A copy of every counter.
    pub fn totals(&self) -> WriteTotals {
        let mut t = WriteTotals::default();
        for c in FileClass::ALL {
            t.classes[c.slot()] = self.classes[c.slot()].load();
        }
        t
    }

    /// Zeroes every counter and takes the process's kernel counters as the new baseline.
    pub fn reset(&self) {
        self.classes.iter().for_each(ClassCounter::reset);
        *self
            .io_baseline
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = IoCounters::process();
    }

    fn counter(&self, class: FileClass) -> &ClassCounter {
        &self.classes[class.slot()]
    }

    fn record_write(&self, class: FileClass, bytes: u64, storage_bytes: u64) {
        let c = self.counter(class);
        c.bytes.fetch_add(bytes, Ordering::Relaxed);
        c.writes.fetch_add(1, Ordering::Relaxed);
        c.storage_bytes.fetch_add(storage_bytes, Ordering::Relaxed);
    }

    fn record_sync(&self, class: FileClass) {
        self.counter(class).syncs.fetch_add(1, Ordering::Relaxed);
    }

    /// Records bytes the projection cache's LMDB wrote outside a commit (creating its file).
    pub fn record_cache_bytes(&self, bytes: u64) {
        let c = self.counter(FileClass::Cache);
        c.bytes.fetch_add(bytes, Ordering::Relaxed);
        c.storage_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Records one committed write transaction of the projection cache: `bytes` LMDB
    /// wrote (whole pages, so they are also what reaches the medium) and its `syncs`.
    pub fn record_cache_commit(&self, bytes: u64, syncs: u64) {
        let c = self.counter(FileClass::Cache);
        c.bytes.fetch_add(bytes, Ordering::Relaxed);
        c.writes.fetch_add(1, Ordering::Relaxed);
        c.syncs.fetch_add(syncs, Ordering::Relaxed);
        c.storage_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// A [`FileSystem`] that counts what passes through it into a [`WriteAccount`].
#[derive(Debug)]
pub struct Accounted {
    inner: Arc<dyn FileSystem>,
    account: Arc<WriteAccount>,
    dir: PathBuf,
}

impl Accounted {
    /// Wraps `inner` for the store in `dir`; returns the wrapper and its counters.
    pub fn wrap(
        inner: Arc<dyn FileSystem>,
        dir: &Path,
    ) -> (Arc<dyn FileSystem>, Arc<WriteAccount>) {
        let account = Arc::new(WriteAccount::new());
        let fs = Accounted {
            inner,
            account: account.clone(),
            dir: dir.to_path_buf(),
        };
        (Arc::new(fs), account)
    }
}

/// Pages of one file dirtied since its last sync, as disjoint ranges `start -> end`
/// (page numbers, end exclusive).
#[derive(Debug, Default)]
struct DirtyPages(BTreeMap<u64, u64>);

impl DirtyPages {
    /// Marks `first..end` dirty; returns how many of those pages were clean.
    fn dirty(&mut self, first: u64, end: u64) -> u64 {
        let (mut lo, mut hi) = (first, end);
        let mut already = 0;
        // Every range that touches or overlaps `first..end` merges into one.
        let touching: Vec<(u64, u64)> = self
            .0
            .range(..=end)
            .rev()
            .take_while(|(_, &e)| e >= first)
            .map(|(&s, &e)| (s, e))
            .collect();
        for (s, e) in touching {
            already += e.min(end).saturating_sub(s.max(first));
            lo = lo.min(s);
            hi = hi.max(e);
            self.0.remove(&s);
        }
        self.0.insert(lo, hi);
        (end - first) - already
    }

    fn clean(&mut self) {
        self.0.clear();
    }
}

struct AccountedFile {
    inner: Arc<dyn FsFile>,
    class: FileClass,
    account: Arc<WriteAccount>,
    dirty: Mutex<DirtyPages>,
}

impl AccountedFile {
    fn count_write(&self, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        let (first, end) = (offset / PAGE_BYTES, (offset + len).div_ceil(PAGE_BYTES));
        let fresh = self
            .dirty
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .dirty(first, end);
        self.account
            .record_write(self.class, len, fresh * PAGE_BYTES);
    }
}

impl FsFile for AccountedFile {
    #[track_caller]
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }

    #[track_caller]
    fn write_at(&self, data: &[u8], offset: u64) -> io::Result<usize> {
        let n = self.inner.write_at(data, offset)?;
        self.count_write(offset, n as u64);
        Ok(n)
    }

    #[track_caller]
    fn sync(&self, mode: SyncMode) -> io::Result<()> {
        // Counted even when it fails: the device was asked to flush.
        self.account.record_sync(self.class);
        let done = self.inner.sync(mode);
        if done.is_ok() {
            self.dirty
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clean();
        }
        done
    }

    #[track_caller]
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }

    #[track_caller]
    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
}

impl FileSystem for Accounted {
    #[track_caller]
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }

    #[track_caller]
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list_dir(dir)
    }

    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }

    #[track_caller]
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FsFile>> {
        let inner = self.inner.open(path, mode)?;
        if mode == OpenMode::Read {
            return Ok(inner);
        }
        Ok(Arc::new(AccountedFile {
            inner,
            class: FileClass::of(&self.dir, path),
            account: self.account.clone(),
            dirty: Mutex::default(),
        }))
    }

    #[track_caller]
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }

    #[track_caller]
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path)
    }

    #[track_caller]
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.account.record_sync(FileClass::Other);
        self.inner.sync_dir(dir)
    }

    #[track_caller]
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.hard_link(from, to)
    }

    #[track_caller]
    fn map(&self, path: &Path) -> io::Result<Arc<dyn ReadView>> {
        self.inner.map(path)
    }

    fn cache_dir(&self, dir: &Path) -> Option<PathBuf> {
        self.inner.cache_dir(dir)
    }

    #[track_caller]
    fn links_in(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.links_in(dir)
    }

    #[track_caller]
    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn LockGuard>>> {
        self.inner.try_lock(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_counts_once_until_the_next_sync() {
        let mut d = DirtyPages::default();
        assert_eq!(d.dirty(0, 1), 1);
        assert_eq!(d.dirty(0, 1), 0, "still dirty");
        assert_eq!(d.dirty(0, 3), 2, "two new pages beside it");
        assert_eq!(d.dirty(5, 6), 1);
        assert_eq!(d.dirty(2, 6), 2, "pages 3 and 4 fill the hole");
        assert_eq!(d.0.len(), 1, "one merged range: {:?}", d.0);
        d.clean();
        assert_eq!(d.dirty(0, 1), 1, "a sync cleaned it");
    }

    #[test]
    fn files_are_classed_by_name_inside_the_data_directory_only() {
        let dir = Path::new("/d");
        let class = |p: &str| FileClass::of(dir, Path::new(p));
        assert_eq!(class("/d/seg-0000000001.bpk"), FileClass::Segments);
        assert_eq!(class("/d/seg-0000000001.bpk.compact"), FileClass::Segments);
        assert_eq!(class("/d/index.ckpt.tmp"), FileClass::Checkpoint);
        assert_eq!(class("/d/store.id"), FileClass::Other);
        assert_eq!(class("/d/compact.manifest"), FileClass::Other);
        assert_eq!(class("/backup/seg-0000000001.bpk"), FileClass::Other);
    }
}
