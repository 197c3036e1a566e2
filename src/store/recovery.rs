//! Opening a data directory: identity, segment scan, torn-tail repair, salvage.
//!
//! Rules (see `docs/design.md`):
//! - A sealed segment must scan clean to its seal; any bad frame in it is corruption.
//! - In the newest segment, a bad frame at or after the largest synced length recorded by
//!   a sync marker is a torn tail: the file is cut back to the last complete unit (a whole
//!   batch) and the cut is synced and reported. A bad frame before it is corruption.
//! - Corruption refuses the open with the file and byte offset, unless salvage was asked
//!   for: then the bytes from the bad unit on and every later segment move to
//!   `DIR/salvaged/`, and nothing is deleted.
//! - A read-only open never writes: it stops at the first bad frame of the newest segment.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::codec::frame::{Base, Frame};
use crate::codec::header::{BYTES_CHAINED_VERSION, CHAINED_VERSION, HEADER_LEN};
use crate::config::SyncMode;
use crate::error::OpenError;
use crate::fs::{FileSystem, FsFile, OpenMode};

use super::chain::{segment_value, Fold, SegChain};
use super::checkpoint::{self, CheckpointStatus};
use super::index::{Dict, Index, NewEvent, SegMeta};
use super::segment::{self, Scan};
use super::writer::BitSet;

/// How the directory is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    ReadWrite { salvage: bool },
    ReadOnly,
}

impl Mode {
    fn writes(self) -> bool {
        matches!(self, Self::ReadWrite { .. })
    }
}

/// A torn tail that recovery cut off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// The segment file.
    pub path: PathBuf,
    /// The new length (the end of the last complete unit).
    pub offset: u64,
    /// Bytes removed.
    pub bytes: u64,
    /// What was found there.
    pub reason: String,
}

/// What the last open found and did.
#[derive(Debug, Clone, Default)]
pub struct RecoveryReport {
    /// Segment files read.
    pub segments: usize,
    /// Events indexed.
    pub events: u64,
    /// Torn tails cut back (read-write) or ignored (read-only).
    pub truncated: Vec<Truncation>,
    /// A newest segment file holding no more than a partial or damaged header (a roll cut
    /// by a crash before its header was synced), removed.
    pub removed_empty_segment: Option<PathBuf>,
    /// Files moved to `salvaged/`.
    pub salvaged: Vec<PathBuf>,
    /// Whether the index checkpoint was used.
    pub checkpoint: CheckpointStatus,
    /// A compaction the open finished (it had committed) or cleaned up (it had not).
    pub compaction: Option<String>,
    /// Synced data found missing (a read-only open reports it and goes on; a read-write
    /// open refuses with [`OpenError::Lost`]; a salvage open moves what follows aside).
    pub lost: Vec<Loss>,
    /// Time spent opening.
    pub elapsed: Duration,
}

impl RecoveryReport {
    /// What the open did and found, one sentence a line, for a person: synced data found
    /// missing first, then tails cut, files removed or moved aside, a compaction finished,
    /// and how the index was built.
    pub fn summary(&self) -> Vec<String> {
        let mut out: Vec<String> = self.lost.iter().map(|l| format!("LOST {l}")).collect();
        out.extend(self.truncated.iter().map(|t| {
            format!(
                "cut a torn tail of {} bytes from {} at offset {} ({})",
                t.bytes,
                t.path.display(),
                t.offset,
                t.reason
            )
        }));
        if let Some(p) = &self.removed_empty_segment {
            out.push(format!(
                "removed {} (a segment file holding no event, left by a roll a crash cut short)",
                p.display()
            ));
        }
        out.extend(
            self.salvaged
                .iter()
                .map(|p| format!("salvaged: {} (moved aside, never deleted)", p.display())),
        );
        if let Some(c) = &self.compaction {
            out.push(c.clone());
        }
        out.push(match &self.checkpoint {
            CheckpointStatus::Loaded => "index loaded from the checkpoint".to_string(),
            CheckpointStatus::Missing if self.segments == 0 => {
                "a new store: nothing to recover".into()
            }
            CheckpointStatus::Missing => {
                "index rebuilt by scanning (no checkpoint: the last close did not finish)".into()
            }
            CheckpointStatus::Stale(why) => {
                format!("index rebuilt by scanning (checkpoint stale: {why})")
            }
            CheckpointStatus::Damaged(why) => {
                format!("index rebuilt by scanning (checkpoint damaged: {why})")
            }
            _ => "index rebuilt by scanning (salvage does not use the checkpoint)".into(),
        });
        out
    }
}

/// Data the store's records say was there and is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loss {
    /// The missing, shortened or out-of-sequence file.
    pub path: PathBuf,
    /// What is missing and how the store knows.
    pub what: String,
}

impl std::fmt::Display for Loss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.what)
    }
}

/// Where the log stands after the segments read so far: the segments numbered from 1 and
/// each one's sequences continue the one before (compaction leaves gap frames, so even a
/// compacted store continues).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Chain {
    /// Number of the last segment read (0 before the first).
    pub no: u32,
    /// The last sequence it accounts for (events and removed ranges; its base if none).
    pub end: u64,
    /// It ends with its seal.
    pub sealed: bool,
    /// Its format version.
    pub version: u16,
    /// The hash-chain value its seal hands to the next segment (sealed, format 3).
    pub out: Option<[u8; 32]>,
}

impl Chain {
    /// The last segment read is sealed and of version 2, whose rolls create the next file
    /// before they seal: a file after it must exist.
    pub(crate) fn ends_sealed(&self) -> bool {
        self.sealed && self.version >= 2
    }

    /// The file missing after the last segment read, when it [`ends_sealed`](Self::ends_sealed).
    pub(crate) fn missing_next(&self, dir: &Path) -> Option<Loss> {
        self.ends_sealed().then(|| Loss {
            path: segment::path(dir, self.no.saturating_add(1)),
            what: format!(
                "segment file is missing: {} is sealed, and a sealed segment is always followed \
                 by the next one (it is created before the seal is written)",
                segment::file_name(self.no)
            ),
        })
    }

    /// What is missing before segment `no`, whose header says it starts after `base`.
    pub(crate) fn hole_before(&self, dir: &Path, no: u32, base: u64) -> Option<Loss> {
        let after = match self.no {
            0 => "the log starts at sequence 1".to_string(),
            prev => format!("{} ends at sequence {}", segment::file_name(prev), self.end),
        };
        if base > self.end && no > self.no + 1 {
            return Some(Loss {
                path: segment::path(dir, self.no + 1),
                what: format!(
                    "segment file is missing: {after} and {} starts after sequence {base}, so \
                     sequences {}..={base} are gone",
                    segment::file_name(no),
                    self.end + 1
                ),
            });
        }
        (base != self.end).then(|| Loss {
            path: segment::path(dir, no),
            what: format!(
                "segment starts after sequence {base} but {after}: the sequences do not continue \
                 across the files"
            ),
        })
    }
}

/// The newest segment, to be appended to.
pub(crate) struct ActiveInfo {
    pub no: u32,
    pub file: Arc<dyn FsFile>,
    pub base: Base,
    pub len: u64,
    pub marked: u64,
    pub entities: BitSet,
    pub scopes: BitSet,
    pub chain: SegChain,
}

pub(crate) struct Recovered {
    pub index: Index,
    pub active: Option<ActiveInfo>,
    pub next_seg: u32,
    pub next_seq: u64,
    pub report: RecoveryReport,
}

struct Ctx<'a> {
    fs: &'a dyn FileSystem,
    dir: &'a Path,
    store_id: u64,
    mode: Mode,
    sync: SyncMode,
}

/// The settings recovery follows: how it syncs what it repairs, and how many idempotency
/// keys the index it builds remembers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Knobs {
    pub sync: SyncMode,
    pub key_window: usize,
}

impl Knobs {
    /// The knobs of `config`.
    pub fn of(config: &crate::config::StoreConfig) -> Self {
        Self {
            sync: config.sync_mode,
            key_window: config.idempotency_window as usize,
        }
    }
}

/// Opens every segment of `dir`, building the index: from the checkpoint, or from
/// `start_from` when given. Every segment is checksummed whole either way; only frames past
/// what the starting index covers are indexed.
pub(crate) fn recover_with(
    fs: &dyn FileSystem,
    dir: &Path,
    store_id: u64,
    mode: Mode,
    knobs: Knobs,
    start_from: Option<Index>,
) -> Result<Recovered, OpenError> {
    let start = Instant::now();
    let ctx = Ctx {
        fs,
        dir,
        store_id,
        mode,
        sync: knobs.sync,
    };
    let nos = segment::list(fs, dir)?;
    segment::check_after_gaps(fs, dir, &nos, store_id)?;
    // Salvage rebuilds from the segments alone: the checkpoint may cover what moves aside.
    let loaded = match (start_from, mode) {
        (Some(idx), _) => Ok(idx),
        (None, Mode::ReadWrite { salvage: true }) => {
            Err(checkpoint::LoadError::Unusable(CheckpointStatus::Skipped))
        }
        (None, _) => checkpoint::load(fs, dir, store_id, &nos),
    };
    let mut lost = Vec::new();
    let loaded = match loaded {
        Ok(idx) => Ok(idx),
        Err(checkpoint::LoadError::Unusable(status)) => Err(status),
        Err(checkpoint::LoadError::Lost { path, what }) => {
            let loss = Loss { path, what };
            let status = CheckpointStatus::Stale(loss.to_string());
            lose(&ctx, &mut lost, loss)?;
            Err(status)
        }
    };
    let (mut index, mut report) = match loaded {
        Ok(idx) => (
            idx,
            RecoveryReport {
                checkpoint: CheckpointStatus::Loaded,
                ..Default::default()
            },
        ),
        Err(status) => (
            Index::default(),
            RecoveryReport {
                checkpoint: status,
                ..Default::default()
            },
        ),
    };
    report.lost = lost;
    index.keys.set_capacity(knobs.key_window);
    let mut active = None;
    let mut chain = Chain::default();
    let mut max_base = 0;
    let bare_newest = segment::bare_newest(fs, dir, &nos)?;
    for (i, &no) in nos.iter().enumerate() {
        let is_last = i + 1 == nos.len();
        // Before a bare newest segment, a segment may be the newest: a roll that made the
        // next file but did not seal this one.
        let maybe_last = is_last || (bare_newest && i + 2 == nos.len());
        match open_segment(&ctx, &mut index, &mut report, &mut chain, no, maybe_last)? {
            SegmentOutcome::Ok { base, active_info } => {
                max_base = max_base.max(base.seq);
                active = active_info;
                if !is_last && active.is_some() {
                    let newest = segment::path(dir, nos[i + 1]);
                    remove_empty(&ctx, &newest, &mut report)?;
                    break;
                }
            }
            SegmentOutcome::Removed => {}
            SegmentOutcome::Hole => {
                salvage_later(&ctx, &nos[i..], &mut report)?;
                break;
            }
            SegmentOutcome::Salvaged { base, active_info } => {
                // Cut below its seal: it is the newest, unsealed, ending where it was cut.
                chain.sealed = false;
                chain.end = index
                    .segments
                    .get(&no)
                    .and_then(|m| m.last_seq)
                    .unwrap_or(base.seq)
                    .max(base.seq);
                max_base = max_base.max(base.seq);
                active = active_info;
                salvage_later(&ctx, &nos[i + 1..], &mut report)?;
                break;
            }
        }
    }
    if chain.ends_sealed() {
        // After a salvage moved a hole aside, the hole was reported already.
        if let Some(loss) = chain
            .missing_next(dir)
            .filter(|_| report.salvaged.is_empty())
        {
            lose(&ctx, &mut report.lost, loss)?;
        }
        if mode.writes() {
            let next = start_next(&ctx, &chain)?;
            index.segments.insert(next.no, SegMeta::empty(next.base));
            chain.no = next.no;
            active = Some(next);
        }
    }
    if mode.writes() {
        sync_newest(&ctx, &index)?;
    }
    report.segments = index.segments.len();
    report.events = u64::from(index.len());
    index.visible = index.last_seq().unwrap_or(0);
    let next_seq = index.last_seq().unwrap_or(0).max(max_base).max(chain.end) + 1;
    report.elapsed = start.elapsed();
    let next_seg = chain
        .no
        .checked_add(1)
        .ok_or_else(|| OpenError::BadHeader {
            path: segment::path(dir, chain.no),
            reason: "the newest segment has the largest possible number; no segment can follow it"
                .into(),
        })?;
    Ok(Recovered {
        index,
        active,
        next_seg,
        next_seq,
        report,
    })
}

/// Creates the segment after the sealed newest one `chain` ends with (a salvage open of a
/// store whose next segment is missing), so that a sealed newest segment again means a
/// missing file.
fn start_next(ctx: &Ctx<'_>, chain: &Chain) -> Result<ActiveInfo, OpenError> {
    let no = chain.no.saturating_add(1);
    let base = Base {
        seq: chain.end,
        ts: crate::config::system_micros(),
    };
    let path = segment::path(ctx.dir, no);
    let (file, header) = segment::start(ctx.fs, ctx.dir, ctx.store_id, no, base, ctx.sync)
        .map_err(io_err("create", &path))?;
    Ok(ActiveInfo {
        no,
        file,
        base,
        len: HEADER_LEN as u64,
        marked: HEADER_LEN as u64,
        entities: BitSet::default(),
        scopes: BitSet::default(),
        chain: SegChain::new_segment(&header, chain.out),
    })
}

/// Syncs the two newest segments before the store writes anything: what recovery keeps of
/// them may have been written by an earlier process and never synced (it crashed, or its
/// sync failed), and a later sync of a newer file must not leave them behind. Older
/// segments were synced before the next one was made.
fn sync_newest(ctx: &Ctx<'_>, index: &Index) -> Result<(), OpenError> {
    for &no in index.segments.keys().rev().take(2) {
        let path = segment::path(ctx.dir, no);
        let file = ctx
            .fs
            .open(&path, OpenMode::Read)
            .map_err(io_err("open", &path))?;
        file.sync(ctx.sync).map_err(io_err("sync", &path))?;
    }
    Ok(())
}

enum SegmentOutcome {
    Ok {
        base: Base,
        active_info: Option<ActiveInfo>,
    },
    Removed,
    /// A hole before this segment, which a salvage open moves aside with all later ones.
    Hole,
    Salvaged {
        base: Base,
        active_info: Option<ActiveInfo>,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> OpenError + 'a {
    move |source| OpenError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Records `loss`: a read-write open stops, a read-only one reports it and goes on, a
/// salvage open goes on to keep what is there.
fn lose(ctx: &Ctx<'_>, lost: &mut Vec<Loss>, loss: Loss) -> Result<(), OpenError> {
    if ctx.mode == (Mode::ReadWrite { salvage: false }) {
        return Err(OpenError::Lost {
            path: loss.path,
            what: loss.what,
        });
    }
    lost.push(loss);
    Ok(())
}

fn open_segment(
    ctx: &Ctx<'_>,
    index: &mut Index,
    report: &mut RecoveryReport,
    chain: &mut Chain,
    no: u32,
    is_last: bool,
) -> Result<SegmentOutcome, OpenError> {
    let path = segment::path(ctx.dir, no);
    let view = ctx.fs.map(&path).map_err(io_err("map", &path))?;
    let bytes = view.bytes();
    let header = match segment::check_header(bytes, &path, ctx.store_id) {
        Ok(h) => h,
        Err(e) if is_last && segment::is_cut_roll(bytes, &e) => {
            return remove_empty(ctx, &path, report);
        }
        Err(e) => return Err(e),
    };
    segment::check_number(&header, no, &path)?;
    if let Some(loss) = chain.hole_before(ctx.dir, no, header.base_seq) {
        lose(ctx, &mut report.lost, loss)?;
        if ctx.mode != Mode::ReadOnly {
            return Ok(SegmentOutcome::Hole);
        }
    }
    let base = Base {
        seq: header.base_seq,
        ts: header.base_ts,
    };
    // Format 3's chain value is folded frame by frame; format 4's hashes the file's bytes.
    let stepped = (CHAINED_VERSION..BYTES_CHAINED_VERSION).contains(&header.version);
    let mut fold = (is_last && stepped).then(|| Fold::new(no, base));
    let (scan, bad, defined, end, out) = scan_into(index, no, bytes, base, fold.as_mut());
    let prev_out = chain.out;
    *chain = Chain {
        no,
        end,
        sealed: scan.sealed,
        version: header.version,
        out,
    };
    // The active segment's chain state over what the open keeps of it.
    let seg_chain = |len: u64, value: Option<[u8; 32]>| {
        let kept = bytes.get(..len as usize).unwrap_or(bytes);
        SegChain::reopened(header.version, kept, value, prev_out)
    };
    let damage = find_damage(&scan, bytes.len() as u64, is_last, bad);
    let file_len = bytes.len() as u64;
    if let Some((offset, reason)) = damage {
        let cut = scan.commit.min(offset);
        let kept = bytes.get(..cut as usize).unwrap_or(bytes);
        let value = segment_value(kept, base, no, header.version);
        let seg_chain = seg_chain(cut, Some(value));
        drop(view);
        return salvage_or_refuse(
            ctx, index, report, no, &scan, offset, reason, defined, seg_chain,
        );
    }
    let active_chain =
        (is_last && !scan.sealed).then(|| seg_chain(scan.commit, fold.map(|f| f.current())));
    drop(view);
    if is_last && scan.commit < file_len {
        cut_torn_tail(ctx, report, &path, &scan, file_len)?;
    }
    let active_info = match active_chain {
        Some(chain) => Some(active_info(ctx, no, base, &scan, defined, chain)?),
        None => None,
    };
    Ok(SegmentOutcome::Ok { base, active_info })
}

/// Scans segment `no` (its whole `bytes`, header included) into `index`, indexing the
/// frames past what the index already covers of it; records its length and seal.
type Scanned = (
    Scan,
    Option<(u64, String)>,
    (BitSet, BitSet),
    u64,
    Option<[u8; 32]>,
);

/// ... the last sequence the segment accounts for (events, removed ranges, the seal), and
/// the chain value its seal hands on.
/// `fold`, when given, takes in every frame (the active segment's chain value).
fn scan_into(
    index: &mut Index,
    no: u32,
    bytes: &[u8],
    base: Base,
    mut fold: Option<&mut Fold>,
) -> Scanned {
    let covered = index.segments.get(&no).map_or(HEADER_LEN as u64, |m| m.len);
    let meta = index.segments.entry(no).or_insert(SegMeta::empty(base));
    meta.base = base;
    let mut defined = (BitSet::default(), BitSet::default());
    let mut bad: Option<(u64, String)> = None;
    let mut end = base.seq;
    let mut out = None;
    // The fold needs every event decoded, the checkpoint's covered ones too.
    let decode_from = if fold.is_some() {
        HEADER_LEN as u64
    } else {
        covered
    };
    let scan = segment::scan(bytes, base, HEADER_LEN as u64, decode_from, |off, f| {
        end = end.max(segment::accounts_for(&f));
        if let Some(fold) = fold.as_deref_mut() {
            fold.frame(&f);
        }
        if let Frame::Seal { chain: Some(c), .. } = f {
            out = Some(c.out);
        }
        if bad.is_none() {
            if let Err(why) = apply(index, no, off, f, off >= covered, &mut defined) {
                bad = Some((off, why));
            }
        }
    });
    if let Some(m) = index.segments.get_mut(&no) {
        m.len = scan.commit;
        m.sealed = scan.sealed;
        end = end.max(m.last_seq.unwrap_or(0));
    }
    (scan, bad, defined, end, out)
}

/// Indexes the segment `no` whose bytes are `bytes` (read from `path`) into `index`, as far
/// as it holds complete units; an error names what is wrong with it.
pub(crate) fn index_segment(
    index: &mut Index,
    no: u32,
    bytes: &[u8],
    store_id: u64,
    path: &Path,
) -> Result<(), String> {
    let header = segment::check_header(bytes, path, store_id).map_err(|e| e.to_string())?;
    let base = Base {
        seq: header.base_seq,
        ts: header.base_ts,
    };
    match scan_into(index, no, bytes, base, None) {
        (_, Some((off, why)), ..) => Err(format!("{} at offset {off}: {why}", path.display())),
        _ => Ok(()),
    }
}

/// Applies one frame of a complete unit to the index; `index_it` is false for frames the
/// checkpoint already covers (they are still checksummed by the scan).
fn apply(
    index: &mut Index,
    no: u32,
    off: u64,
    f: Frame<'_>,
    index_it: bool,
    defined: &mut (BitSet, BitSet),
) -> Result<(), String> {
    match f {
        Frame::EntityDef(id, name) => {
            define(&mut index.entities, &mut defined.0, "entity", id, name)?
        }
        Frame::ScopeDef(id, name) => define(&mut index.scopes, &mut defined.1, "scope", id, name)?,
        Frame::Event(h, ..) if index_it => {
            if index.last_seq().is_some_and(|last| h.seq <= last) {
                return Err(format!(
                    "sequence {} does not follow {:?}",
                    h.seq,
                    index.last_seq()
                ));
            }
            if index
                .entities
                .names
                .get(h.entity as usize)
                .is_none_or(|n| n.is_empty())
                || index
                    .scopes
                    .names
                    .get(h.scope as usize)
                    .is_none_or(|n| n.is_empty())
            {
                return Err(format!(
                    "event {} uses an undefined entity or scope id",
                    h.seq
                ));
            }
            index.push(NewEvent {
                seq: h.seq,
                seg: no,
                off: off as u32,
                entity: h.entity,
                scope: h.scope,
                kind: h.kind,
                cause: h.cause,
                correlation: h.correlation,
                key: h.key,
            });
            if let Some(m) = index.segments.get_mut(&no) {
                m.note(h.seq);
            }
        }
        Frame::Anchor { entity, seq, link } => index.note_anchor(entity, seq, link),
        Frame::KeptKey { seq, key } => index.keys.insert(key, seq),
        _ => {}
    }
    Ok(())
}

/// Records a dictionary frame: the name must be UTF-8 and agree with earlier definitions.
fn define(
    dict: &mut Dict,
    defined: &mut BitSet,
    what: &str,
    id: u32,
    name: &[u8],
) -> Result<(), String> {
    defined.insert(id);
    let name = std::str::from_utf8(name).map_err(|_| format!("{what} name is not UTF-8"))?;
    if !dict.define(id, name) {
        return Err(format!("{what} id {id} defined twice with different names"));
    }
    Ok(())
}

/// Where the segment is damaged (not merely torn), if anywhere.
fn find_damage(
    scan: &Scan,
    len: u64,
    is_last: bool,
    bad: Option<(u64, String)>,
) -> Option<(u64, String)> {
    if let Some(b) = bad {
        return Some(b);
    }
    if !is_last {
        if let Some((off, e)) = &scan.error {
            return Some((*off, e.to_string()));
        }
        if !scan.sealed || scan.commit != len {
            return Some((
                scan.commit,
                "a segment before the newest ends without its seal".into(),
            ));
        }
        return None;
    }
    scan.damage_in_synced_part()
        .map(|(off, e)| (off, format!("{e} inside data that was synced")))
}

fn remove_empty(
    ctx: &Ctx<'_>,
    path: &Path,
    report: &mut RecoveryReport,
) -> Result<SegmentOutcome, OpenError> {
    if ctx.mode.writes() {
        ctx.fs.remove_file(path).map_err(io_err("remove", path))?;
        ctx.fs
            .sync_dir(ctx.dir)
            .map_err(io_err("sync directory", ctx.dir))?;
    }
    report.removed_empty_segment = Some(path.to_path_buf());
    Ok(SegmentOutcome::Removed)
}

fn cut_torn_tail(
    ctx: &Ctx<'_>,
    report: &mut RecoveryReport,
    path: &Path,
    scan: &Scan,
    len: u64,
) -> Result<(), OpenError> {
    let reason = match &scan.error {
        Some((off, e)) => format!("{e} at offset {off}"),
        None => "an unfinished batch".to_string(),
    };
    if ctx.mode.writes() {
        let file = ctx
            .fs
            .open(path, OpenMode::ReadWrite)
            .map_err(io_err("open", path))?;
        file.set_len(scan.commit)
            .map_err(io_err("truncate", path))?;
        file.sync(SyncMode::SyncAll).map_err(io_err("sync", path))?;
    }
    report.truncated.push(Truncation {
        path: path.to_path_buf(),
        offset: scan.commit,
        bytes: len - scan.commit,
        reason,
    });
    Ok(())
}

fn active_info(
    ctx: &Ctx<'_>,
    no: u32,
    base: Base,
    scan: &Scan,
    defined: (BitSet, BitSet),
    chain: SegChain,
) -> Result<ActiveInfo, OpenError> {
    let path = segment::path(ctx.dir, no);
    let mode = if ctx.mode.writes() {
        OpenMode::ReadWrite
    } else {
        OpenMode::Read
    };
    let file = ctx.fs.open(&path, mode).map_err(io_err("open", &path))?;
    if ctx.mode.writes() {
        // What this open read must survive the next crash even if it was never synced.
        file.sync(ctx.sync).map_err(io_err("sync", &path))?;
    }
    Ok(ActiveInfo {
        no,
        file,
        base,
        len: scan.commit,
        marked: if scan.marked_to_end {
            scan.commit
        } else {
            scan.synced
        },
        entities: defined.0,
        scopes: defined.1,
        chain,
    })
}

#[allow(clippy::too_many_arguments)]
fn salvage_or_refuse(
    ctx: &Ctx<'_>,
    index: &mut Index,
    report: &mut RecoveryReport,
    no: u32,
    scan: &Scan,
    offset: u64,
    reason: String,
    defined: (BitSet, BitSet),
    chain: SegChain,
) -> Result<SegmentOutcome, OpenError> {
    let path = segment::path(ctx.dir, no);
    if ctx.mode != (Mode::ReadWrite { salvage: true }) {
        return Err(OpenError::Corrupt {
            path,
            offset,
            reason,
        });
    }
    let keep = scan.commit.min(offset);
    let dest = fresh_name(
        ctx.fs,
        &salvage_dir(ctx)?,
        &format!("{}.from-{keep}", segment::file_name(no)),
    );
    let file = ctx
        .fs
        .open(&path, OpenMode::ReadWrite)
        .map_err(io_err("open", &path))?;
    let len = file.size().map_err(io_err("stat", &path))?;
    copy_range(ctx.fs, &*file, keep, len, &dest)?;
    file.set_len(keep).map_err(io_err("truncate", &path))?;
    file.sync(SyncMode::SyncAll)
        .map_err(io_err("sync", &path))?;
    report.salvaged.push(dest);
    if let Some(m) = index.segments.get_mut(&no) {
        m.len = keep;
        m.sealed = false;
    }
    let base = index
        .segments
        .get(&no)
        .map_or_else(Base::default, |m| m.base);
    let trimmed = Scan {
        commit: keep,
        synced: scan.synced.min(keep),
        sealed: false,
        marked_to_end: false,
        error: None,
    };
    let info = active_info(ctx, no, base, &trimmed, defined, chain)?;
    Ok(SegmentOutcome::Salvaged {
        base,
        active_info: Some(info),
    })
}

/// Where salvage moves what it cannot keep.
pub(crate) const SALVAGED_DIR: &str = crate::layout::SALVAGED_DIR;

fn salvage_dir(ctx: &Ctx<'_>) -> Result<PathBuf, OpenError> {
    let dir = ctx.dir.join(SALVAGED_DIR);
    ctx.fs
        .create_dir_all(&dir)
        .map_err(io_err("create", &dir))?;
    Ok(dir)
}

/// `dir/name`, or `dir/name.1`, `.2`, ... if taken: an earlier salvage that failed or was
/// cut short may have left a copy under that name, and nothing salvaged is ever replaced.
fn fresh_name(fs: &dyn FileSystem, dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !fs.exists(&first) {
        return first;
    }
    (1u32..)
        .map(|n| dir.join(format!("{name}.{n}")))
        .find(|p| !fs.exists(p))
        .unwrap_or(first)
}

fn copy_range(
    fs: &dyn FileSystem,
    src: &dyn FsFile,
    from: u64,
    to: u64,
    dest: &Path,
) -> Result<(), OpenError> {
    let out = fs
        .open(dest, OpenMode::CreateNew)
        .map_err(io_err("create", dest))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = from;
    while pos < to {
        let n = ((to - pos) as usize).min(buf.len());
        let got = src
            .read_full_at(&mut buf[..n], pos)
            .map_err(io_err("read", dest))?;
        if got == 0 {
            break;
        }
        out.write_all_at(&buf[..got], pos - from)
            .map_err(io_err("write", dest))?;
        pos += got as u64;
    }
    out.sync(SyncMode::SyncAll).map_err(io_err("sync", dest))?;
    let parent = dest.parent().unwrap_or(dest);
    fs.sync_dir(parent)
        .map_err(io_err("sync directory", parent))
}

fn salvage_later(
    ctx: &Ctx<'_>,
    later: &[u32],
    report: &mut RecoveryReport,
) -> Result<(), OpenError> {
    if later.is_empty() {
        return Ok(());
    }
    let dir = salvage_dir(ctx)?;
    for &no in later {
        let from = segment::path(ctx.dir, no);
        // Numbers are reused, so an earlier salvage may have moved a file of this name.
        let to = fresh_name(ctx.fs, &dir, &segment::file_name(no));
        ctx.fs.rename(&from, &to).map_err(io_err("move", &from))?;
        report.salvaged.push(to);
    }
    ctx.fs
        .sync_dir(&dir)
        .map_err(io_err("sync directory", &dir))?;
    ctx.fs
        .sync_dir(ctx.dir)
        .map_err(io_err("sync directory", ctx.dir))
}
