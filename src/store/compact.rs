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

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::codec::frame::{self, Base, EventHeader, Frame};
use crate::codec::header::HEADER_LEN;
use crate::error::{CompactError, OpenError};
use crate::fs::{self as bfs, FileSystem, OpenMode};

use super::checkpoint;
use super::index::Index;
use super::retention::{self, CompactionReport, RetentionPolicy, Tombstones};
use super::segment;
use super::Store;

/// The commit record of a compaction in progress.
pub(crate) const MANIFEST: &str = "compact.manifest";
const MANIFEST_HEAD: &str = "batpak compaction 1";
const STAGED: &str = ".compact";

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

/// One part of a segment, in file order.
enum Part<'a> {
    Event(EventHeader, &'a [u8], Option<&'a [u8]>),
    Gap(u64, u64),
}

/// A sealed segment's frames.
struct Parsed<'a> {
    parts: Vec<Part<'a>>,
    entities: HashMap<u32, &'a [u8]>,
    scopes: HashMap<u32, &'a [u8]>,
    seal_last: u64,
}

fn parse<'a>(bytes: &'a [u8], base: Base, path: &Path) -> Result<Parsed<'a>, CompactError> {
    let mut p = Parsed {
        parts: Vec::new(),
        entities: HashMap::new(),
        scopes: HashMap::new(),
        seal_last: 0,
    };
    let h = HEADER_LEN as u64;
    let scan = segment::scan(bytes, base, h, h, |_, f| match f {
        Frame::Event(e, payload, bypass) => p.parts.push(Part::Event(e, payload, bypass)),
        Frame::Gap { first, last } => p.parts.push(Part::Gap(first, last)),
        Frame::EntityDef(id, name) => {
            p.entities.insert(id, name);
        }
        Frame::ScopeDef(id, name) => {
            p.scopes.insert(id, name);
        }
        Frame::Seal { last_seq, .. } => p.seal_last = last_seq,
        Frame::SyncMark(_) => {}
    });
    let damaged = |offset: u64, reason: String| CompactError::Damaged {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    if let Some((off, e)) = scan.error {
        return Err(damaged(off, e.to_string()));
    }
    if !scan.sealed || scan.commit != bytes.len() as u64 {
        return Err(damaged(
            scan.commit,
            "sealed segment ends without its seal".into(),
        ));
    }
    Ok(p)
}

/// For each event part, whether its batch flag stays set: it did, and a later member of
/// the same batch is kept.
fn batch_flags(parts: &[Part<'_>], kept: &[bool]) -> Vec<bool> {
    let mut out = vec![false; parts.len()];
    let mut later_kept = false;
    for (i, part) in parts.iter().enumerate().rev() {
        if let Part::Event(h, ..) = part {
            if !h.batch_continues {
                later_kept = false;
            }
            out[i] = h.batch_continues && later_kept;
            later_kept |= kept[i];
        }
    }
    out
}

/// A rewritten sealed segment.
pub(crate) struct Rewritten {
    pub no: u32,
    pub bytes: Vec<u8>,
    pub before: u64,
    /// Sequences removed by this rewrite (sorted).
    pub removed: Vec<u64>,
}

/// Rewrites the sealed segment `bytes` without the events `drop` selects.
fn rewrite(
    bytes: &[u8],
    base: Base,
    path: &Path,
    drop: impl Fn(&EventHeader) -> bool,
) -> Result<(Vec<u8>, Vec<u64>), CompactError> {
    let p = parse(bytes, base, path)?;
    let kept: Vec<bool> = p
        .parts
        .iter()
        .map(|part| matches!(part, Part::Event(h, ..) if !drop(h)))
        .collect();
    let flags = batch_flags(&p.parts, &kept);
    let mut out = bytes[..HEADER_LEN].to_vec();
    let (mut defined_e, mut defined_s) = (HashSet::new(), HashSet::new());
    let (mut gap, mut removed, mut count, mut last) = (None, Vec::new(), 0u64, 0u64);
    for (i, part) in p.parts.iter().enumerate() {
        match part {
            Part::Gap(f, l) => extend_gap(&mut out, &mut gap, *f, *l),
            Part::Event(h, _, _) if !kept[i] => {
                removed.push(h.seq);
                extend_gap(&mut out, &mut gap, h.seq, h.seq);
            }
            Part::Event(h, payload, bypass) => {
                flush_gap(&mut out, &mut gap);
                define(
                    &mut out,
                    frame::ENTITY_DEF,
                    h.entity,
                    &p.entities,
                    &mut defined_e,
                    path,
                )?;
                define(
                    &mut out,
                    frame::SCOPE_DEF,
                    h.scope,
                    &p.scopes,
                    &mut defined_s,
                    path,
                )?;
                let h = EventHeader {
                    batch_continues: flags[i],
                    ..*h
                };
                frame::put_event(&mut out, &base, &h, *bypass, payload);
                count += 1;
            }
        }
        if let Part::Event(h, ..) = part {
            last = last.max(h.seq);
        }
    }
    flush_gap(&mut out, &mut gap);
    frame::put_seal(&mut out, p.seal_last.max(last), count);
    Ok((out, removed))
}

fn extend_gap(out: &mut Vec<u8>, gap: &mut Option<(u64, u64)>, first: u64, last: u64) {
    match gap {
        Some((_, l)) if first == *l + 1 => *l = last,
        _ => {
            flush_gap(out, gap);
            *gap = Some((first, last));
        }
    }
}

fn flush_gap(out: &mut Vec<u8>, gap: &mut Option<(u64, u64)>) {
    if let Some((f, l)) = gap.take() {
        frame::put_gap(out, f, l);
    }
}

fn define(
    out: &mut Vec<u8>,
    ty: u8,
    id: u32,
    names: &HashMap<u32, &[u8]>,
    defined: &mut HashSet<u32>,
    path: &Path,
) -> Result<(), CompactError> {
    if defined.insert(id) {
        let name = names.get(&id).ok_or_else(|| CompactError::Damaged {
            path: path.to_path_buf(),
            offset: 0,
            reason: format!("dictionary id {id} is used but never defined"),
        })?;
        frame::put_def(out, ty, id, name);
    }
    Ok(())
}

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
        let mut report = self.describe(&plan, dry_run);
        if !dry_run && !plan.is_empty() {
            report.writer_pause = self.apply(&plan, &report)?;
        }
        report.elapsed = start.elapsed();
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
            let r =
                self.rewrite_sealed(s, |h| retention::removes(policy, &tombstones, cutoff, h))?;
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
            let r = self.rewrite_sealed(s, |h| !crate::event::EventKind(h.kind).is_system())?;
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
        let (bytes, removed) = rewrite(view.bytes(), s.base, &path, drop)?;
        Ok(Rewritten {
            no: s.no,
            bytes,
            before: s.len,
            removed,
        })
    }

    fn describe(&self, plan: &[Rewritten], dry_run: bool) -> CompactionReport {
        let mut removed: Vec<u64> = plan
            .iter()
            .flat_map(|r| r.removed.iter().copied())
            .collect();
        removed.sort_unstable();
        let idx = self.shared.index();
        let (chains_cut, entities) = retention::consequences(&idx, &removed);
        let mut sample: Vec<String> = entities
            .iter()
            .map(|&e| idx.entities.name(e).to_string())
            .collect();
        sample.sort();
        sample.truncate(20);
        CompactionReport {
            dry_run,
            events_removed: removed.len() as u64,
            segments_touched: plan.iter().map(|r| r.no).collect(),
            bytes_before: plan.iter().map(|r| r.before).sum(),
            bytes_after: plan.iter().map(|r| r.bytes.len() as u64).sum(),
            chains_cut,
            entities_affected: entities.len() as u64,
            entities_sample: sample,
            ..CompactionReport::default()
        }
    }

    /// Writes the new segments beside the old ones, drops the affected projections, then
    /// has the writer (between two batches) commit, rename and rebuild the index.
    fn apply(
        &self,
        plan: &[Rewritten],
        report: &CompactionReport,
    ) -> Result<std::time::Duration, CompactError> {
        let fs = &*self.shared.fs;
        let dir = self.dir();
        let nos: Vec<u32> = plan.iter().map(|r| r.no).collect();
        if let Err(e) = stage(fs, dir, plan) {
            discard_staged(fs, dir, &nos);
            return Err(e);
        }
        self.forget_projections(plan, report);
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
        Ok(started.elapsed())
    }

    /// The index of the state after the commit, built before it (appends go on) from the
    /// new bytes and the untouched files: the writer then indexes only what it wrote
    /// meanwhile. `None` when anything does not read; the commit then rebuilds it all.
    fn prebuild(&self, plan: &[Rewritten]) -> Option<Index> {
        let fs = &*self.shared.fs;
        let dir = self.dir();
        let mut nos: Vec<u32> = fs
            .list_dir(dir)
            .ok()?
            .iter()
            .filter_map(|n| segment::parse_name(n))
            .collect();
        nos.sort_unstable();
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
    /// crash can only leave fewer cached values, never stale ones).
    fn forget_projections(&self, plan: &[Rewritten], report: &CompactionReport) {
        if report.entities_affected == 0 {
            return;
        }
        let mut removed: Vec<u64> = plan
            .iter()
            .flat_map(|r| r.removed.iter().copied())
            .collect();
        removed.sort_unstable();
        let names: HashSet<String> = {
            let idx = self.shared.index();
            let (_, ids) = retention::consequences(&idx, &removed);
            ids.iter()
                .map(|&e| idx.entities.name(e).to_string())
                .collect()
        };
        let cache = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = cache.as_ref() {
            c.forget_entities(&names);
        }
    }
}

/// Writes the rewritten segments beside the old ones and syncs them and the directory.
fn stage(fs: &dyn FileSystem, dir: &Path, plan: &[Rewritten]) -> Result<(), CompactError> {
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
fn discard_staged(fs: &dyn FileSystem, dir: &Path, nos: &[u32]) {
    for &no in nos {
        let p = staged(dir, no);
        if fs.exists(&p) {
            let _ = fs.remove_file(&p);
        }
    }
    let _ = fs.sync_dir(dir);
}

/// The commit, run by the writer between batches: manifest, renames, index rebuild.
fn commit(shared: &Arc<super::Shared>, nos: &[u32], pre: Option<Index>) -> Result<(), String> {
    let fs = &*shared.fs;
    let dir = &shared.dir;
    let mut text = format!("{MANIFEST_HEAD}\n");
    nos.iter().for_each(|n| text.push_str(&format!("{n}\n")));
    text.push_str("end\n");
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
    let sync = shared.config().sync_mode;
    // Every segment is checksummed again; only what was written since the prebuild (or
    // everything, without one) is indexed.
    let rec = super::recovery::recover_with(
        fs,
        dir,
        shared.store_id,
        super::recovery::Mode::ReadOnly,
        sync,
        pre,
    )
    .map_err(|e| {
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

fn install(shared: &super::Shared, mut index: Index, nos: &[u32]) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Vec<u8> {
        vec![0u8; HEADER_LEN]
    }

    fn event(seq: u64, entity: u32, batch_continues: bool) -> EventHeader {
        EventHeader {
            seq,
            ts: seq * 10,
            kind: 1,
            entity,
            scope: 0,
            cause: None,
            correlation: seq,
            key: None,
            batch_continues,
        }
    }

    fn segment(events: &[EventHeader]) -> Vec<u8> {
        let mut b = header();
        frame::put_def(&mut b, frame::ENTITY_DEF, 0, b"a");
        frame::put_def(&mut b, frame::ENTITY_DEF, 1, b"b");
        frame::put_def(&mut b, frame::SCOPE_DEF, 0, b"s");
        for h in events {
            frame::put_event(&mut b, &Base::default(), h, None, b"payload");
        }
        frame::put_seal(
            &mut b,
            events.last().map_or(0, |h| h.seq),
            events.len() as u64,
        );
        b
    }

    fn parts(bytes: &[u8]) -> Vec<String> {
        let p = parse(bytes, Base::default(), Path::new("x")).unwrap_or_else(|e| panic!("{e}"));
        p.parts
            .iter()
            .map(|part| match part {
                Part::Event(h, ..) => {
                    format!("e{}{}", h.seq, if h.batch_continues { "+" } else { "" })
                }
                Part::Gap(f, l) => format!("gap{f}-{l}"),
            })
            .collect()
    }

    #[test]
    fn removed_events_leave_merged_gaps_and_a_batch_keeps_its_remaining_members_together() {
        let bytes = segment(&[
            event(1, 0, false),
            event(2, 1, true),
            event(3, 0, true),
            event(4, 1, false),
            event(5, 1, false),
            event(6, 0, false),
        ]);
        let (out, removed) = rewrite(&bytes, Base::default(), Path::new("x"), |h| h.entity == 1)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(removed, vec![2, 4, 5]);
        assert_eq!(parts(&out), ["e1", "gap2-2", "e3", "gap4-5", "e6"]);
        let again = rewrite(&out, Base::default(), Path::new("x"), |h| h.seq == 3)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parts(&again.0), ["e1", "gap2-5", "e6"]);
    }

    #[test]
    fn a_kept_event_is_re_encoded_to_the_same_frame_bytes() {
        let bytes = segment(&[event(1, 0, false), event(2, 1, false)]);
        let (out, _) = rewrite(&bytes, Base::default(), Path::new("x"), |h| h.seq == 2)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut one = Vec::new();
        frame::put_event(
            &mut one,
            &Base::default(),
            &event(1, 0, false),
            None,
            b"payload",
        );
        assert!(out.windows(one.len()).any(|w| w == one.as_slice()));
    }
}
