//! Compaction: rewriting sealed segments without the events retention removes.
//!
//! Crash-safe by construction. The new segments are written beside the old ones as
//! `seg-N.bpk.compact` and synced, with the directory. The manifest `compact.manifest`,
//! listing them, is then written atomically: that is the commit point. Only after it are
//! the new files renamed over the old ones. An open that finds a manifest finishes the
//! renames (roll forward); one that finds `.compact` files without a manifest deletes them
//! (the compaction never committed). A crash at any moment therefore leaves the old state
//! or the new one, complete. The active segment is never touched.
//!
//! A rewritten segment keeps its header (number, base sequence and time), so every kept
//! event frame is re-encoded to the same bytes (only a batch flag changes where a batch
//! lost its later members). Removed events leave a gap frame recording their sequence
//! range, so verify and the sequence checks know the hole is intended.

mod commit;
mod rewrite;

use std::collections::HashSet;
use std::time::Instant;

use crate::codec::frame::{Base, EventHeader};
use crate::error::CompactError;

use super::index::Index;
use super::retention::{self, CompactionReport, RetentionPolicy, Tombstones};
use super::segment;
use super::Store;

#[cfg(feature = "testkit")]
pub use commit::set_step_pause;
pub(crate) use commit::MANIFEST;
use commit::{commit, discard_staged, stage};
pub(crate) use commit::{finish_pending, pending_note};
use rewrite::rewrite;
pub(crate) use rewrite::Rewritten;

/// A sealed segment as the index knows it.
#[derive(Clone, Copy)]
struct Sealed {
    no: u32,
    len: u64,
    base: Base,
}

impl Store {
    /// Removes what `policy` retains no longer, rewriting sealed segments (never the
    /// active one); appends go on meanwhile and wait only while the new files take effect
    /// and the index is rebuilt (`CompactionReport::writer_pause`).
    pub fn compact(&self, policy: &RetentionPolicy) -> Result<CompactionReport, CompactError> {
        self.compact_with(policy, false, |_, _| {})
    }

    /// What [`Store::compact`] would remove, changing nothing.
    pub fn compact_dry_run(
        &self,
        policy: &RetentionPolicy,
    ) -> Result<CompactionReport, CompactError> {
        self.compact_with(policy, true, |_, _| {})
    }

    /// [`Store::compact`] (or its dry run), calling `progress(segments_read, sealed_segments)`
    /// as it reads the sealed segments (the long part).
    pub fn compact_with(
        &self,
        policy: &RetentionPolicy,
        dry_run: bool,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<CompactionReport, CompactError> {
        let start = Instant::now();
        if self.read_only && !dry_run {
            return Err(CompactError::ReadOnly(self.dir().to_path_buf()));
        }
        let _one_at_a_time = self
            .compacting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let plan = self.plan_compaction(policy, &mut progress)?;
        let (mut report, affected) = self.describe(&plan, dry_run);
        if !dry_run && !plan.is_empty() {
            report.writer_pause = self.apply(&plan, &affected)?;
        }
        report.elapsed = start.elapsed();
        if !dry_run {
            *self
                .last_compaction
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(report.clone());
        }
        Ok(report)
    }

    fn plan_compaction(
        &self,
        policy: &RetentionPolicy,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Vec<Rewritten>, CompactError> {
        let (sealed, mut total, tombstones) = {
            let idx = self.shared.index();
            let sealed: Vec<Sealed> = idx
                .segments
                .iter()
                .filter(|(_, m)| m.sealed)
                .map(|(&no, m)| Sealed {
                    no,
                    len: m.len,
                    base: m.base,
                })
                .collect();
            let total: u64 = idx.segments.values().map(|m| m.len).sum();
            (sealed, total, Tombstones::collect(&idx))
        };
        let cutoff = policy.max_age.map(|age| {
            let age = u64::try_from(age.as_micros()).unwrap_or(u64::MAX);
            self.now_micros().saturating_sub(age)
        });
        let mut out: Vec<Rewritten> = Vec::new();
        let n = sealed.len() as u64;
        for (i, s) in sealed.iter().enumerate() {
            progress(i as u64, n);
            let drop = |h: &EventHeader| retention::removes(policy, &tombstones, cutoff, h);
            let r = self.rewrite_sealed(s, drop)?;
            if !r.removed.is_empty() {
                total -= s.len.saturating_sub(r.bytes.len() as u64);
                out.push(r);
            }
        }
        progress(n, n);
        let Some(cap) = policy.max_total_bytes else {
            return Ok(out);
        };
        for s in &sealed {
            if total <= cap {
                break;
            }
            let drop = |h: &EventHeader| !crate::event::EventKind(h.kind).is_system();
            let r = self.rewrite_sealed(s, drop)?;
            let now = out.iter().position(|o| o.no == s.no);
            let was = now.map_or(s.len, |i| out[i].bytes.len() as u64);
            total -= was.saturating_sub(r.bytes.len() as u64);
            match now {
                Some(i) => out[i] = r,
                None if !r.removed.is_empty() => out.push(r),
                None => {}
            }
        }
        out.sort_by_key(|r| r.no);
        Ok(out)
    }

    fn rewrite_sealed(
        &self,
        s: &Sealed,
        drop: impl Fn(&EventHeader) -> bool,
    ) -> Result<Rewritten, CompactError> {
        let path = segment::path(self.dir(), s.no);
        let view = self
            .shared
            .fs
            .map(&path)
            .map_err(|e| CompactError::io("read", &path, e))?;
        // Asked only of removed events that carry a key: a short read of the index each.
        let remembered = |key, seq| self.shared.index().keys.get(key) == Some(seq);
        let (bytes, removed) = rewrite(view.bytes(), s.base, &path, drop, remembered)?;
        Ok(Rewritten {
            no: s.no,
            bytes,
            before: s.len,
            removed,
        })
    }

    /// The report of `plan`, and the names of the entities that lose events.
    fn describe(&self, plan: &[Rewritten], dry_run: bool) -> (CompactionReport, HashSet<String>) {
        let mut removed: Vec<u64> = plan
            .iter()
            .flat_map(|r| r.removed.iter().copied())
            .collect();
        removed.sort_unstable();
        let idx = self.shared.index();
        let (chains_cut, entities) = retention::consequences(&idx, &removed);
        let affected: HashSet<String> = entities
            .iter()
            .map(|&e| idx.entities.name(e).to_string())
            .collect();
        let mut sample: Vec<String> = affected.iter().cloned().collect();
        sample.sort();
        sample.truncate(20);
        let report = CompactionReport {
            dry_run,
            events_removed: removed.len() as u64,
            segments_touched: plan.iter().map(|r| r.no).collect(),
            bytes_before: plan.iter().map(|r| r.before).sum(),
            bytes_after: plan.iter().map(|r| r.bytes.len() as u64).sum(),
            chains_cut,
            entities_affected: entities.len() as u64,
            entities_sample: sample,
            ..CompactionReport::default()
        };
        (report, affected)
    }

    /// Writes the new segments beside the old ones, drops the affected projections, then
    /// has the writer (between two batches) commit, rename and rebuild the index.
    fn apply(
        &self,
        plan: &[Rewritten],
        affected: &HashSet<String>,
    ) -> Result<std::time::Duration, CompactError> {
        let fs = &*self.shared.fs;
        let dir = self.dir();
        let nos: Vec<u32> = plan.iter().map(|r| r.no).collect();
        if let Err(e) = stage(fs, dir, plan) {
            discard_staged(fs, dir, &nos);
            return Err(e);
        }
        if let Err(e) = self.forget_projections(affected) {
            discard_staged(fs, dir, &nos);
            return Err(e);
        }
        let pre = self.prebuild(plan);
        let shared = self.shared.clone();
        let started = Instant::now();
        let task_nos = nos.clone();
        let committed = self.run_quiesced(Box::new(move || commit(&shared, &task_nos, pre)));
        if let Err(e) = committed {
            // Without a manifest the compaction never committed: its files go. With one,
            // they stay for the roll forward of the next open.
            if !fs.exists(&dir.join(MANIFEST)) {
                discard_staged(fs, dir, &nos);
            }
            return Err(CompactError::Commit(e));
        }
        // A projection between the drop above and the commit cached states of the old log.
        self.forget_projections(affected)?;
        Ok(started.elapsed())
    }

    /// The index of the state after the commit, built before it (appends go on) from the
    /// new bytes and the untouched files: the writer then indexes only what it wrote
    /// meanwhile. `None` when anything does not read; the commit then rebuilds it all.
    fn prebuild(&self, plan: &[Rewritten]) -> Option<Index> {
        let fs = &*self.shared.fs;
        let dir = self.dir();
        let nos = segment::numbers(fs, dir).ok()?;
        let mut idx = Index::default();
        let id = self.shared.store_id;
        for no in nos {
            let path = segment::path(dir, no);
            let indexed = match plan.iter().find(|r| r.no == no) {
                Some(r) => super::recovery::index_segment(&mut idx, no, &r.bytes, id, &path),
                None => {
                    let view = fs.map(&path).ok()?;
                    super::recovery::index_segment(&mut idx, no, view.bytes(), id, &path)
                }
            };
            indexed.ok()?;
        }
        Some(idx)
    }

    /// Drops cached projections of the entities that lose events (before the commit, so a
    /// crash can only leave fewer cached values, never stale ones). When the cache cannot
    /// drop them, it is closed and its directory deleted (it is disposable: the next open
    /// makes a new one); when even that fails, nothing may be compacted.
    fn forget_projections(&self, names: &HashSet<String>) -> Result<(), CompactError> {
        if names.is_empty() {
            return Ok(());
        }
        let cache = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(Err(failed)) = cache.as_ref().map(|c| c.forget_entities(names)) else {
            return Ok(());
        };
        let path = cache.as_ref().map(|c| c.path().to_path_buf());
        drop(cache);
        let mut cache = self
            .cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *cache = None;
        let Some(path) = path else { return Ok(()) };
        match std::fs::remove_dir_all(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(CompactError::Cache(format!(
                "{failed}, and deleting it failed ({e})"
            ))),
        }
    }
}
