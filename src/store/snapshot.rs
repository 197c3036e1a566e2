//! Online backup: a consistent copy of a store while appends go on.
//!
//! The acknowledged events are made durable first (a read-write store syncs; through the
//! read-only open, another process holds the store and what it acknowledged as durable is
//! already in the files). Every segment but the newest is sealed and never changes again:
//! it is hard-linked where the file system allows and copied otherwise. The newest is
//! copied up to the end of its last written batch (a read-write store knows it; through
//! the read-only open the copy takes the size it finds, and the copy's first open cuts a
//! torn tail like after a crash). The identity file goes last, so an interrupted snapshot
//! never opens as a store. The checkpoint and the projection cache are not copied: the
//! copy rebuilds its index on open and its cache on first use.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::SyncMode;
use crate::error::SnapshotError;
use crate::fs::{FileSystem, OpenMode};

use super::{identity, segment, Store};

/// Bytes copied per read.
const CHUNK: usize = 1 << 20;

/// What [`Store::snapshot`] made.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SnapshotReport {
    /// The copy.
    pub dest: PathBuf,
    /// Segment files in the copy.
    pub segments: usize,
    /// Of these, how many are hard links to the source's sealed segments.
    pub linked: usize,
    /// Bytes of segment files in the copy (linked or copied).
    pub bytes: u64,
    /// Bytes actually copied.
    pub copied_bytes: u64,
    /// Every event up to this sequence was durable when the snapshot began and is in the
    /// copy.
    pub durable_sequence: u64,
    /// Time taken.
    #[serde(skip)]
    pub elapsed: Duration,
}

/// One segment of the plan: its number and how many bytes to take (`None`: all, it is
/// sealed and may be linked).
struct Part {
    no: u32,
    len: Option<u64>,
    size: u64,
}

impl Store {
    /// Copies the store to `dest` (a new or empty directory) while appends continue. Every
    /// event acknowledged as durable before the call is in the copy, which opens as a
    /// normal store. See [`Store::snapshot_with`] for progress reports.
    pub fn snapshot(&self, dest: impl AsRef<Path>) -> Result<SnapshotReport, SnapshotError> {
        self.snapshot_with(dest, |_, _| {})
    }

    /// [`Store::snapshot`], calling `progress(bytes_done, bytes_total)` as it goes.
    pub fn snapshot_with(
        &self,
        dest: impl AsRef<Path>,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<SnapshotReport, SnapshotError> {
        let start = Instant::now();
        let dest = dest.as_ref();
        let fs = &*self.shared.fs;
        check_dest(fs, dest)?;
        self.sync()?;
        let durable = self.shared.durable_seq.load(Ordering::Acquire);
        let plan = self.plan()?;
        fs.create_dir_all(dest)
            .map_err(|e| io("create directory", dest, e))?;
        let total: u64 = plan.iter().map(|p| p.len.unwrap_or(p.size)).sum();
        let mut report = SnapshotReport {
            dest: dest.to_path_buf(),
            durable_sequence: durable,
            ..SnapshotReport::default()
        };
        for part in &plan {
            let (from, to) = (
                segment::path(self.dir(), part.no),
                segment::path(dest, part.no),
            );
            let linked = part.len.is_none() && fs.hard_link(&from, &to).is_ok();
            let bytes = if linked {
                part.size
            } else {
                // A segment before the newest is copied whole as it is now (its seal may have
                // been written after the plan sized it).
                let n = copy(fs, &from, &to, part.len.unwrap_or(u64::MAX), |n| {
                    progress(report.bytes + n, total)
                })?;
                report.copied_bytes += n;
                n
            };
            report.linked += usize::from(linked);
            report.segments += 1;
            report.bytes += bytes;
            progress(report.bytes, total);
        }
        let id = self.dir().join(identity::FILE_NAME);
        report.copied_bytes += copy(fs, &id, &dest.join(identity::FILE_NAME), u64::MAX, |_| {})?;
        fs.sync_dir(dest)
            .map_err(|e| io("sync directory", dest, e))?;
        report.elapsed = start.elapsed();
        Ok(report)
    }

    /// The segments to take: all present now; the newest only up to its last written
    /// batch when this store writes it. A roll creates the next segment before it seals the
    /// current one, so a listing taken during a roll could pair a sealed newest with no
    /// next file: a read-write store lists under the index lock (its writer rolls under
    /// the write lock), and either kind lists again after sizing until nothing changed.
    fn plan(&self) -> Result<Vec<Part>, SnapshotError> {
        let fs = &*self.shared.fs;
        let dir = self.dir();
        let list = || segment::numbers(fs, dir).map_err(|e| io("list directory", dir, e));
        for _ in 0..PLAN_ATTEMPTS {
            let (nos, written) = {
                let idx = self.shared.index();
                let nos = list()?;
                let newest = nos.last().copied();
                let written =
                    newest.and_then(|n| idx.segments.get(&n).filter(|m| !m.sealed).map(|m| m.len));
                (nos, written)
            };
            let parts = self.sized(&nos, written)?;
            if list()? == nos {
                return Ok(parts);
            }
        }
        Err(io(
            "list directory",
            dir,
            std::io::Error::other("the segment files kept changing while the snapshot planned"),
        ))
    }

    /// The parts of segments `nos`, the newest up to `written` when this store writes it.
    fn sized(&self, nos: &[u32], written: Option<u64>) -> Result<Vec<Part>, SnapshotError> {
        let fs = &*self.shared.fs;
        let newest = nos.last().copied();
        nos.iter()
            .map(|&no| {
                let path = segment::path(self.dir(), no);
                let size = fs
                    .open(&path, OpenMode::Read)
                    .and_then(|f| f.size())
                    .map_err(|e| io("open", &path, e))?;
                let len = (Some(no) == newest).then(|| match (self.read_only, written) {
                    (false, Some(w)) => w.min(size),
                    _ => size,
                });
                Ok(Part { no, len, size })
            })
            .collect()
    }
}

/// Listings a snapshot's plan may take before it gives up on a directory that keeps changing.
const PLAN_ATTEMPTS: u32 = 20;

fn io(op: &'static str, path: &Path, source: std::io::Error) -> SnapshotError {
    SnapshotError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The destination must be missing or an empty directory.
fn check_dest(fs: &dyn FileSystem, dest: &Path) -> Result<(), SnapshotError> {
    if !fs.exists(dest) {
        return Ok(());
    }
    match fs.list_dir(dest) {
        Ok(entries) if entries.is_empty() => Ok(()),
        Ok(_) => Err(SnapshotError::DestinationNotEmpty(dest.to_path_buf())),
        Err(e) => Err(io("list directory", dest, e)),
    }
}

/// Copies the first `limit` bytes of `from` (all of it when shorter) to the new file `to`,
/// syncs it, and returns the bytes copied.
fn copy(
    fs: &dyn FileSystem,
    from: &Path,
    to: &Path,
    limit: u64,
    mut progress: impl FnMut(u64),
) -> Result<u64, SnapshotError> {
    let src = fs
        .open(from, OpenMode::Read)
        .map_err(|e| io("open", from, e))?;
    let dst = fs
        .open(to, OpenMode::CreateNew)
        .map_err(|e| io("create", to, e))?;
    let mut buf = vec![0u8; CHUNK];
    let mut off = 0u64;
    while off < limit {
        let want = usize::try_from(limit - off).map_or(CHUNK, |l| l.min(CHUNK));
        let n = src
            .read_full_at(&mut buf[..want], off)
            .map_err(|e| io("read", from, e))?;
        if n == 0 {
            break;
        }
        dst.write_all_at(&buf[..n], off)
            .map_err(|e| io("write", to, e))?;
        off += n as u64;
        progress(off);
    }
    dst.sync(SyncMode::SyncAll).map_err(|e| io("sync", to, e))?;
    Ok(off)
}
