//! Offline verification: checks a store end to end without taking its lock or writing
//! anything, so it works on a store another process holds.
//!
//! Every frame's checksum and decoding, the seal of every segment before the newest, the
//! segment numbering (a missing file), sequence order and continuity within and across
//! segments, causal references (cause and correlation must be earlier events of the
//! store), the hash chains of format 3 (every event's link, every segment's chain value,
//! the links between files; see `verify_chain`), and the checkpoint against the segments.
//! Each problem names the file and, where it has one, the byte offset, in file order: the
//! first chain problem is the first broken link.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::codec::frame::{Base, Frame};
use crate::codec::header::{FileHeader, FileKind, HEADER_LEN};
use crate::error::OpenError;
use crate::fs::{FileSystem, StdFs};

use super::checkpoint::{self, CheckpointStatus, LoadError};
use super::recovery::Chain;
use super::verify_chain::ChainCheck;
use super::{identity, segment};

/// One thing wrong with a store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// The byte offset, where the problem has one.
    pub offset: Option<u64>,
    /// What is wrong.
    pub what: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.offset {
            Some(o) => write!(
                f,
                "{} at byte offset {o}: {}",
                self.file.display(),
                self.what
            ),
            None => write!(f, "{}: {}", self.file.display(), self.what),
        }
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VerifyReport {
    /// Segment files read.
    pub segments: usize,
    /// Events found.
    pub events: u64,
    /// Frames checked.
    pub frames: u64,
    /// Events compactions removed (recorded as gaps).
    pub removed: u64,
    /// Cached projection values checked.
    pub cache_values: u64,
    /// Events whose hash link was checked (those in segments of format 3 and later).
    pub linked_events: u64,
    /// The chain value after the newest chained segment's last frame, in hex: record it
    /// elsewhere, and a later [`verify_against`] shows whether the history up to it was
    /// rewritten.
    pub chain_head: Option<String>,
    /// The chain value the newest seal hands on, in hex: unlike a head taken inside the
    /// active segment, it stays findable after that segment is compacted.
    pub sealed_head: Option<String>,
    /// With [`verify_against`]: whether the recorded head was found in the chain.
    pub head_found: Option<bool>,
    /// Problems, in file order.
    pub problems: Vec<Problem>,
    /// Things that are not problems but worth knowing (a torn tail the next open cuts).
    pub notes: Vec<String>,
    /// Time taken.
    #[serde(skip)]
    pub elapsed: Duration,
}

impl VerifyReport {
    /// `true` when no problem was found.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

struct Checker<'a> {
    dir: &'a Path,
    report: VerifyReport,
    seen: HashSet<u64>,
    last_seq: u64,
    /// Ranges compactions removed, in order.
    removed: Vec<(u64, u64)>,
    /// The segments read so far continue from 1 up to here.
    chain: Chain,
    /// The hash chains.
    links: ChainCheck,
}

/// A frame the checks look at.
enum Seen {
    Event(u64, u64, Option<u64>, u64),
    Gap(u64, u64, u64),
}

impl Checker<'_> {
    fn problem(&mut self, file: &Path, offset: Option<u64>, what: impl Into<String>) {
        self.report.problems.push(Problem {
            file: file.to_path_buf(),
            offset,
            what: what.into(),
        });
    }

    fn event(&mut self, path: &Path, off: u64, seq: u64, cause: Option<u64>, corr: u64) {
        self.report.events += 1;
        if seq <= self.last_seq {
            self.problem(
                path,
                Some(off),
                format!("sequence {seq} does not follow {}", self.last_seq),
            );
        } else if self.last_seq > 0 && seq != self.last_seq + 1 {
            self.problem(
                path,
                Some(off),
                format!("sequence jumps from {} to {seq}", self.last_seq),
            );
        }
        for (what, r) in [
            ("cause", cause),
            ("correlation", (corr != seq).then_some(corr)),
        ] {
            if let Some(r) = r.filter(|r| !self.seen.contains(r) && !self.removed(*r)) {
                self.problem(
                    path,
                    Some(off),
                    format!("event {seq} names {what} {r}, which is not an earlier event"),
                );
            }
        }
        self.seen.insert(seq);
        self.last_seq = self.last_seq.max(seq);
    }

    /// A range a compaction removed: it must continue the sequence; causes and
    /// correlations inside it are known removed, not dangling.
    fn gap(&mut self, path: &Path, off: u64, first: u64, last: u64) {
        if first <= self.last_seq || (self.last_seq > 0 && first != self.last_seq + 1) {
            self.problem(
                path,
                Some(off),
                format!(
                    "removed range {first}..={last} does not follow {}",
                    self.last_seq
                ),
            );
        }
        self.removed.push((first, last));
        self.report.removed += last - first + 1;
        self.last_seq = self.last_seq.max(last);
    }

    fn removed(&self, seq: u64) -> bool {
        let i = self.removed.partition_point(|&(f, _)| f <= seq);
        i > 0 && self.removed[i - 1].1 >= seq
    }

    fn segment(&mut self, fs: &dyn FileSystem, store_id: u64, no: u32, is_last: bool) {
        let path = segment::path(self.dir, no);
        let view = match fs.map(&path) {
            Ok(v) => v,
            Err(e) => return self.problem(&path, None, format!("cannot read: {e}")),
        };
        let bytes = view.bytes();
        let header = match segment::check_header(bytes, &path, store_id) {
            Ok(h) => h,
            // What the open removes as a roll a crash cut before its header was synced.
            Err(e) if is_last && segment::is_cut_roll(bytes, &e) => {
                return self.report.notes.push(format!(
                    "{}: a newest segment of {} bytes with no complete header (a roll cut by a \
                     crash; the next read-write open removes it)",
                    path.display(),
                    bytes.len()
                ));
            }
            Err(e) => return self.problem(&path, Some(0), e.to_string()),
        };
        if let Err(e) = segment::check_number(&header, no, &path) {
            return self.problem(&path, Some(0), e.to_string());
        }
        if let Some(loss) = self.chain.hole_before(self.dir, no, header.base_seq) {
            self.problem(&loss.path, None, loss.what);
        }
        let base = Base {
            seq: header.base_seq,
            ts: header.base_ts,
        };
        let mut events = Vec::new();
        let mut end = base.seq;
        let mut walk = self.links.segment(no, base, header.version, bytes);
        let mut seal_off = None;
        let scan = segment::scan(
            bytes,
            base,
            HEADER_LEN as u64,
            HEADER_LEN as u64,
            |off, f| {
                end = end.max(segment::accounts_for(&f));
                walk.frame(off, &f);
                if matches!(f, Frame::Seal { .. }) {
                    seal_off = Some(off);
                }
                match f {
                    Frame::Event(h, ..) => {
                        events.push(Seen::Event(off, h.seq, h.cause, h.correlation))
                    }
                    Frame::Gap { first, last } => events.push(Seen::Gap(off, first, last)),
                    _ => {}
                }
            },
        );
        let broken = walk.finish(seal_off, scan.commit);
        self.chain = Chain {
            no,
            end,
            sealed: scan.sealed,
            version: header.version,
            out: None,
        };
        self.report.frames += events.len() as u64;
        for seen in events {
            match seen {
                Seen::Event(off, seq, cause, corr) => self.event(&path, off, seq, cause, corr),
                Seen::Gap(off, first, last) => self.gap(&path, off, first, last),
            }
        }
        for (off, what) in broken {
            self.problem(&path, off, what);
        }
        self.check_end(&path, &scan, bytes.len() as u64, is_last);
    }

    fn check_end(&mut self, path: &Path, scan: &segment::Scan, len: u64, is_last: bool) {
        let torn = scan.error.as_ref().map(|(o, e)| match e {
            crate::codec::frame::FrameError::Truncated => (
                *o,
                "segment is truncated: the frame here runs past the end of the file".to_string(),
            ),
            other => (*o, other.to_string()),
        });
        if !is_last {
            if let Some((off, e)) = torn {
                self.problem(path, Some(off), e);
            } else if !scan.sealed || scan.commit != len {
                self.problem(
                    path,
                    Some(scan.commit),
                    "segment ends without its seal (truncated?)",
                );
            }
            return;
        }
        if let Some((off, e)) = scan.damage_in_synced_part() {
            self.problem(path, Some(off), format!("{e} inside data that was synced"));
        } else if scan.commit < len {
            self.report.notes.push(format!(
                "{}: torn tail of {} bytes from offset {} (the next read-write open cuts it)",
                path.display(),
                len - scan.commit,
                scan.commit
            ));
        }
    }
}

/// The file an open error names.
fn error_path(e: &OpenError, dir: &Path) -> PathBuf {
    match e {
        OpenError::BadHeader { path, .. }
        | OpenError::ForeignFile { path, .. }
        | OpenError::UnsupportedVersion { path, .. }
        | OpenError::Io { path, .. } => path.clone(),
        _ => dir.to_path_buf(),
    }
}

/// Verifies the store in `dir` without writing anything. An `Err` means the check could
/// not run at all (no store there, unreadable directory).
pub fn verify(dir: &Path) -> Result<VerifyReport, OpenError> {
    verify_with(dir, |_, _| {})
}

/// [`verify`], calling `progress(segments_checked, segments)` as it goes.
pub fn verify_with(dir: &Path, progress: impl FnMut(u64, u64)) -> Result<VerifyReport, OpenError> {
    verify_on(&StdFs, dir, progress)
}

/// [`verify_with`], also checking that `head` (a [`VerifyReport::chain_head`] or
/// [`VerifyReport::sealed_head`] recorded earlier) is a value of the chain: the history up
/// to where it was taken is the same. When it is not, that is a problem of the report.
pub fn verify_against(
    dir: &Path,
    head: [u8; 32],
    progress: impl FnMut(u64, u64),
) -> Result<VerifyReport, OpenError> {
    verify_checking(&StdFs, dir, ChainCheck::expecting(Some(head)), progress)
}

/// [`verify_with`] on another file system (the projection cache, which LMDB reads itself,
/// is checked on the real one).
pub fn verify_on(
    fs: &dyn FileSystem,
    dir: &Path,
    progress: impl FnMut(u64, u64),
) -> Result<VerifyReport, OpenError> {
    verify_checking(fs, dir, ChainCheck::default(), progress)
}

fn verify_checking(
    fs: &dyn FileSystem,
    dir: &Path,
    links: ChainCheck,
    mut progress: impl FnMut(u64, u64),
) -> Result<VerifyReport, OpenError> {
    let start = Instant::now();
    let (store_id, id_missing) = match identity::read(fs, dir)? {
        Some(id) => (id, false),
        // Segment files without the identity file: checked as the first segment's store,
        // and reported.
        None => (identity::load_or_create(fs, dir, true, true)?, true),
    };
    let nos = segment::list(fs, dir)?;
    let mut c = Checker {
        dir,
        report: VerifyReport::default(),
        seen: HashSet::new(),
        last_seq: 0,
        removed: Vec::new(),
        chain: Chain::default(),
        links,
    };
    c.report.segments = nos.len();
    if id_missing {
        let path = dir.join(identity::FILE_NAME);
        c.problem(&path, None, identity::missing(&path, nos.len()).to_string());
    }
    if let Err(e) = segment::check_after_gaps(fs, dir, &nos, store_id) {
        c.problem(&error_path(&e, dir), None, e.to_string());
    }
    let bare_newest = segment::bare_newest(fs, dir, &nos).unwrap_or(false);
    for (i, &no) in nos.iter().enumerate() {
        progress(i as u64, nos.len() as u64);
        let is_last = i + 1 == nos.len();
        c.segment(
            fs,
            store_id,
            no,
            is_last || (bare_newest && i + 2 == nos.len()),
        );
        if !is_last && bare_newest && c.chain.no == no && !c.chain.sealed {
            c.report.notes.push(format!(
                "{}: an unfinished roll (the segment before it was never sealed); the next \
                 read-write open removes it",
                segment::path(dir, nos[i + 1]).display()
            ));
            break;
        }
    }
    if let Some(loss) = c.chain.missing_next(dir) {
        c.problem(&loss.path, None, loss.what);
    }
    progress(nos.len() as u64, nos.len() as u64);
    match checkpoint::load(fs, dir, store_id, &nos) {
        Ok(_) => {}
        Err(LoadError::Lost { path, what }) => c.problem(&path, None, what),
        Err(LoadError::Unusable(CheckpointStatus::Damaged(why))) => c.problem(
            &dir.join(checkpoint::FILE_NAME),
            None,
            format!("damaged: {why}"),
        ),
        Err(LoadError::Unusable(_)) => {}
    }
    if let Some(note) = super::compact::pending_note(fs, dir) {
        c.report.notes.push(note);
    }
    let cache_dir = fs.cache_dir(dir);
    let cache = match &cache_dir {
        Some(path) => crate::projection::cache::check(path, store_id, c.last_seq),
        None => crate::projection::cache::CacheCheck {
            skipped: Some("this file system keeps no projection cache".into()),
            ..Default::default()
        },
    };
    let cache_file = cache_dir.unwrap_or_default().join("data.mdb");
    for (key, what) in cache.problems {
        c.problem(
            &cache_file,
            None,
            format!("cached projection {key}: {what}"),
        );
    }
    c.report.cache_values = cache.values;
    if let Some(why) = cache.skipped {
        c.report
            .notes
            .push(format!("projection cache not checked: {why}"));
    }
    let id_path = dir.join(identity::FILE_NAME);
    if let Ok(view) = fs.map(&id_path) {
        if FileHeader::decode(view.bytes(), FileKind::Identity).is_err() {
            c.problem(&id_path, Some(0), "identity header does not decode");
        }
    }
    c.report.linked_events = c.links.linked;
    c.report.chain_head = c.links.head.map(|h| crate::codec::chain::hex(&h));
    c.report.sealed_head = c.links.sealed_head.map(|h| crate::codec::chain::hex(&h));
    if let Some(want) = c.links.expect {
        c.report.head_found = Some(c.links.expect_found);
        if !c.links.expect_found {
            let what = format!(
                "the recorded head {} is not a value of this store's chain: the history up \
                 to where it was taken was rewritten, or the head is from another store (or \
                 was taken inside a segment compacted since; a sealed head stays findable)",
                crate::codec::chain::hex(&want)
            );
            c.problem(dir, None, what);
        }
    }
    c.report.elapsed = start.elapsed();
    Ok(c.report)
}
