//! Making a compaction take effect: staging the new files, the manifest commit, the
//! renames, the index swap, and finishing or discarding an interrupted one at open.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{CompactError, OpenError};
use crate::fs::{self as bfs, FileSystem, OpenMode};

use super::super::index::Index;
use super::super::{checkpoint, segment};
use super::Rewritten;

/// The commit record of a compaction in progress.
pub(crate) const MANIFEST: &str = crate::layout::COMPACT_MANIFEST;
const MANIFEST_HEAD: &str = "batpak compaction 1";
const STAGED: &str = crate::layout::COMPACT_STAGED;

/// Pause after each step of a compaction's file work (crash tests kill a compacting
/// process at random moments and need every step to last long enough to be hit).
#[cfg(feature = "testkit")]
static STEP_PAUSE_US: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Makes every file step of a compaction in this process pause for `pause`.
#[cfg(feature = "testkit")]
#[doc(hidden)]
pub fn set_step_pause(pause: std::time::Duration) {
    let us = u64::try_from(pause.as_micros()).unwrap_or(u64::MAX);
    STEP_PAUSE_US.store(us, std::sync::atomic::Ordering::Relaxed);
}

/// One step of file work done (a pause in crash tests, nothing otherwise).
fn step() {
    #[cfg(feature = "testkit")]
    {
        let us = STEP_PAUSE_US.load(std::sync::atomic::Ordering::Relaxed);
        if us > 0 {
            std::thread::sleep(std::time::Duration::from_micros(us));
        }
    }
}

/// Path of the rewritten segment `no` before it takes effect.
fn staged(dir: &Path, no: u32) -> PathBuf {
    dir.join(format!("{}{STAGED}", segment::file_name(no)))
}

/// Writes the rewritten segments beside the old ones and syncs them and the directory.
pub(super) fn stage(
    fs: &dyn FileSystem,
    dir: &Path,
    plan: &[Rewritten],
) -> Result<(), CompactError> {
    for r in plan {
        let path = staged(dir, r.no);
        if fs.exists(&path) {
            fs.remove_file(&path)
                .map_err(|e| CompactError::io("remove", &path, e))?;
        }
        let f = fs
            .open(&path, OpenMode::CreateNew)
            .map_err(|e| CompactError::io("create", &path, e))?;
        f.write_all_at(&r.bytes, 0)
            .and_then(|()| f.sync(crate::config::SyncMode::SyncAll))
            .map_err(|e| CompactError::io("write", &path, e))?;
        step();
    }
    fs.sync_dir(dir)
        .map_err(|e| CompactError::io("sync directory", dir, e))
}

/// Removes the staged files of a compaction that did not commit (best effort: an open
/// removes any left over).
pub(super) fn discard_staged(fs: &dyn FileSystem, dir: &Path, nos: &[u32]) {
    for &no in nos {
        let p = staged(dir, no);
        if fs.exists(&p) {
            let _ = fs.remove_file(&p);
        }
    }
    let _ = fs.sync_dir(dir);
}

/// The commit, run by the writer between batches: manifest, renames, index rebuild.
pub(super) fn commit(
    shared: &Arc<super::super::Shared>,
    nos: &[u32],
    pre: Option<Index>,
) -> Result<(), String> {
    let fs = &*shared.fs;
    let dir = &shared.dir;
    let mut text = format!("{MANIFEST_HEAD}\n");
    nos.iter().for_each(|n| text.push_str(&format!("{n}\n")));
    text.push_str("end\n");
    // The checkpoint describes the old files: gone before the commit, so no state a crash
    // can leave pairs new files with it (the next open rebuilds the index instead).
    checkpoint::remove(fs, dir).map_err(|e| format!("remove the checkpoint: {e}"))?;
    bfs::write_atomically(fs, dir, MANIFEST, &[text.as_bytes()])
        .map_err(|e| format!("write {}: {e}", dir.join(MANIFEST).display()))?;
    step();
    shared
        .layout
        .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    let finished = roll_forward(fs, dir, nos).map_err(|e| {
        let msg = format!(
            "compaction committed but could not finish ({e}); reopen the store to complete it"
        );
        shared.set_poisoned(msg.clone());
        msg
    });
    finished?;
    // Every segment is checksummed again; only what was written since the prebuild (or
    // everything, without one) is indexed.
    let rec = rebuild(shared, pre).map_err(|e| {
        let msg =
            format!("compaction done but the index could not be rebuilt ({e}); reopen the store");
        shared.set_poisoned(msg.clone());
        msg
    })?;
    // The stale checkpoint is gone (roll_forward); the next close writes a fresh one.
    // Writing it here would hold appends for as long again as the rebuild.
    install(shared, rec.index, nos);
    Ok(())
}

/// Reads the committed layout into an index. A read that fails is tried twice more
/// (rebuilding everything) before the store is given up: a transient read fault must not
/// poison it.
fn rebuild(
    shared: &super::super::Shared,
    pre: Option<Index>,
) -> Result<super::super::recovery::Recovered, OpenError> {
    let attempt = |pre| {
        super::super::recovery::recover_with(
            &*shared.fs,
            &shared.dir,
            shared.store_id,
            super::super::recovery::Mode::ReadOnly,
            super::super::recovery::Knobs::of(&shared.config()),
            pre,
        )
    };
    attempt(pre)
        .or_else(|_| attempt(None))
        .or_else(|_| attempt(None))
}

fn install(shared: &super::super::Shared, mut index: Index, nos: &[u32]) {
    let mut idx = shared.index_mut();
    index.generation = idx.generation + 1;
    *idx = index;
    drop(idx);
    shared.forget_maps(nos);
    shared
        .layout
        .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
}

/// Renames the staged segments `nos` over the old ones (those still staged), removes the
/// now stale checkpoint and the manifest, syncing the directory after each step.
fn roll_forward(fs: &dyn FileSystem, dir: &Path, nos: &[u32]) -> std::io::Result<()> {
    for &no in nos {
        let from = staged(dir, no);
        if fs.exists(&from) {
            fs.rename(&from, &segment::path(dir, no))?;
            step();
        }
    }
    fs.sync_dir(dir)?;
    checkpoint::remove(fs, dir)?;
    step();
    let manifest = dir.join(MANIFEST);
    if fs.exists(&manifest) {
        fs.remove_file(&manifest)?;
    }
    fs.sync_dir(dir)
}

/// At a read-write open: finishes a committed compaction, or deletes the files of one that
/// never committed. Returns what it did, for the recovery report.
pub(crate) fn finish_pending(fs: &dyn FileSystem, dir: &Path) -> Result<Option<String>, OpenError> {
    let io = |op, path: &Path, source| OpenError::Io {
        op,
        path: path.to_path_buf(),
        source,
    };
    let manifest = dir.join(MANIFEST);
    if fs.exists(&manifest) {
        let nos = read_manifest(fs, &manifest)?;
        roll_forward(fs, dir, &nos).map_err(|e| io("finish compaction", dir, e))?;
        return Ok(Some(format!(
            "finished a compaction that was interrupted after it committed ({} segments)",
            nos.len()
        )));
    }
    let names = fs.list_dir(dir).map_err(|e| io("list directory", dir, e))?;
    let stale: Vec<&String> = names
        .iter()
        .filter(|n| {
            n.strip_suffix(STAGED)
                .and_then(segment::parse_name)
                .is_some()
        })
        .collect();
    for n in &stale {
        let p = dir.join(n);
        fs.remove_file(&p).map_err(|e| io("remove", &p, e))?;
    }
    if stale.is_empty() {
        return Ok(None);
    }
    fs.sync_dir(dir).map_err(|e| io("sync directory", dir, e))?;
    Ok(Some(format!(
        "removed {} segment files of a compaction that never committed",
        stale.len()
    )))
}

/// What an interrupted compaction left in `dir`, for verify (which changes nothing).
pub(crate) fn pending_note(fs: &dyn FileSystem, dir: &Path) -> Option<String> {
    if fs.exists(&dir.join(MANIFEST)) {
        return Some(format!(
            "{}: a compaction committed but did not finish; the next read-write open finishes it",
            dir.join(MANIFEST).display()
        ));
    }
    let staged = fs
        .list_dir(dir)
        .ok()?
        .iter()
        .filter(|n| {
            n.strip_suffix(STAGED)
                .and_then(segment::parse_name)
                .is_some()
        })
        .count();
    (staged > 0).then(|| {
        format!(
            "{staged} segment files of a compaction that never committed; the next read-write open removes them"
        )
    })
}

fn read_manifest(fs: &dyn FileSystem, path: &Path) -> Result<Vec<u32>, OpenError> {
    let bad = |reason: &str| OpenError::BadHeader {
        path: path.to_path_buf(),
        reason: format!("compaction manifest: {reason}"),
    };
    let view = fs.map(path).map_err(|source| OpenError::Io {
        op: "read",
        path: path.to_path_buf(),
        source,
    })?;
    let text = std::str::from_utf8(view.bytes()).map_err(|_| bad("not text"))?;
    let mut lines = text.lines();
    if lines.next() != Some(MANIFEST_HEAD) {
        return Err(bad("unknown first line"));
    }
    let mut nos = Vec::new();
    for line in lines {
        if line == "end" {
            return Ok(nos);
        }
        nos.push(line.parse().map_err(|_| bad("bad segment number"))?);
    }
    Err(bad("no end line (written by a different program?)"))
}
