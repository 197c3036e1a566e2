//! Segment files: naming, creation, and the frame scan used by recovery.
//!
//! A segment is `seg-NNNNNNNNNN.bpk`: a 64-byte [`FileHeader`] followed by frames
//! (see [`crate::codec::frame`]). Only the newest segment is ever written; a segment that
//! is complete ends with a seal frame and is never modified again.

use std::path::{Path, PathBuf};

use crate::codec::frame::{self, Base, Frame, FrameError};
use crate::codec::header::{FileHeader, FileKind, HEADER_LEN};
use crate::error::OpenError;
use crate::fs::{FileSystem, FsFile, OpenMode};
use std::sync::Arc;

pub(crate) use crate::layout::{parse_segment_name as parse_name, segment_name as file_name};

/// Full path of segment `no` in `dir`.
pub(crate) fn path(dir: &Path, no: u32) -> PathBuf {
    dir.join(file_name(no))
}

/// Segment numbers present in `dir`, ascending.
pub(crate) fn list(fs: &dyn FileSystem, dir: &Path) -> Result<Vec<u32>, OpenError> {
    numbers(fs, dir).map_err(|source| OpenError::Io {
        op: "list directory",
        path: dir.to_path_buf(),
        source,
    })
}

/// [`list`] with the plain I/O error.
pub(crate) fn numbers(fs: &dyn FileSystem, dir: &Path) -> std::io::Result<Vec<u32>> {
    let mut nos: Vec<u32> = fs
        .list_dir(dir)?
        .iter()
        .filter_map(|n| parse_name(n))
        .collect();
    nos.sort_unstable();
    Ok(nos)
}

/// Creates segment `no`: header written and synced, then the directory synced. When the
/// header does not reach the disk, the file is removed (best effort): the page cache could
/// otherwise show a header the disk does not have, and a later open would append to it.
pub(crate) fn create(
    fs: &dyn FileSystem,
    dir: &Path,
    header: &FileHeader,
    sync: crate::config::SyncMode,
) -> std::io::Result<Arc<dyn FsFile>> {
    let p = path(dir, header.number as u32);
    let file = fs.open(&p, OpenMode::CreateNew)?;
    let written = file
        .write_all_at(&header.encode(), 0)
        .and_then(|()| file.sync(sync));
    if let Err(e) = written {
        drop(file);
        let _ = fs.remove_file(&p).and_then(|()| fs.sync_dir(dir));
        return Err(e);
    }
    fs.sync_dir(dir)?;
    Ok(file)
}

/// Checks the segment files whose number does not follow the one before (a gap in the
/// numbering, or a first number above 1): each must be a segment of this store whose header
/// names the same number. A stray or renamed file is refused naming it before anything
/// else is judged by its neighbours (a gap would otherwise make a healthy segment look
/// like one that lost its seal).
pub(crate) fn check_after_gaps(
    fs: &dyn FileSystem,
    dir: &Path,
    nos: &[u32],
    store_id: u64,
) -> Result<(), OpenError> {
    let mut prev = 0u32;
    for (i, &no) in nos.iter().enumerate() {
        if u64::from(no) != u64::from(prev) + 1 {
            let p = path(dir, no);
            let view = fs.map(&p).map_err(|source| OpenError::Io {
                op: "read",
                path: p.clone(),
                source,
            })?;
            let bytes = view.bytes();
            match check_header(bytes, &p, store_id) {
                Ok(h) => check_number(&h, no, &p)?,
                // A newest file without a whole header after a version-1 segment is a roll
                // a crash cut (version 1 skipped the number of such a file once removed):
                // the open removes it. Version 2 reuses numbers, so after a version-2
                // segment such a file is a stray.
                Err(e)
                    if i + 1 == nos.len()
                        && is_cut_roll(bytes, &e)
                        && version_of(fs, dir, prev) == Some(1) => {}
                Err(e) => return Err(e),
            }
        }
        prev = no;
    }
    Ok(())
}

/// A newest segment file whose header `check_header` refused with `e` holds no more than a
/// partial or damaged header: a roll a crash cut before its header was synced. It holds no
/// event (the open removes it); a header of another store, or frames after it, are damage.
pub(crate) fn is_cut_roll(bytes: &[u8], e: &OpenError) -> bool {
    bytes.len() <= HEADER_LEN && !matches!(e, OpenError::ForeignFile { .. })
}

/// `true` when the newest of two or more segments holds no more than a header: it may be
/// the unfinished roll of the one before (a roll creates the next file before it seals).
pub(crate) fn bare_newest(fs: &dyn FileSystem, dir: &Path, nos: &[u32]) -> Result<bool, OpenError> {
    let (Some(&newest), true) = (nos.last(), nos.len() >= 2) else {
        return Ok(false);
    };
    let p = path(dir, newest);
    let io = |op| {
        let p = p.clone();
        move |source| OpenError::Io {
            op,
            path: p,
            source,
        }
    };
    let size = fs
        .open(&p, OpenMode::Read)
        .map_err(io("open"))?
        .size()
        .map_err(io("stat"))?;
    Ok(size <= HEADER_LEN as u64)
}

/// The last sequence a frame accounts for: an event's own, the end of a removed range, a
/// seal's last; 0 for the others.
pub(crate) fn accounts_for(f: &Frame<'_>) -> u64 {
    match f {
        Frame::Event(h, ..) => h.seq,
        Frame::Gap { last, .. } => *last,
        Frame::Seal { last_seq, .. } => *last_seq,
        _ => 0,
    }
}

/// Creates segment `no` of store `store_id`, starting after `base` (see [`create`]), with
/// the header bytes it wrote (where format 4's segment hash starts).
pub(crate) fn start(
    fs: &dyn FileSystem,
    dir: &Path,
    store_id: u64,
    no: u32,
    base: Base,
    sync: crate::config::SyncMode,
) -> std::io::Result<(Arc<dyn FsFile>, [u8; HEADER_LEN])> {
    let header = FileHeader::new(FileKind::Segment, store_id, no.into(), base.seq, base.ts);
    Ok((create(fs, dir, &header, sync)?, header.encode()))
}

/// The format version in the header of segment `no`, if it reads.
fn version_of(fs: &dyn FileSystem, dir: &Path, no: u32) -> Option<u16> {
    let view = fs.map(&path(dir, no)).ok()?;
    FileHeader::decode(view.bytes(), FileKind::Segment)
        .ok()
        .map(|h| h.version)
}

/// Refuses a segment whose header names another number than its file name.
pub(crate) fn check_number(h: &FileHeader, no: u32, p: &Path) -> Result<(), OpenError> {
    if h.number == u64::from(no) {
        return Ok(());
    }
    Err(OpenError::BadHeader {
        path: p.to_path_buf(),
        reason: format!(
            "the file name says segment {no} but its header says segment {}; a segment keeps the \
             name it was created with (a stray or renamed copy?)",
            h.number
        ),
    })
}

/// Checks a segment header against the store id; errors name the file.
pub(crate) fn check_header(bytes: &[u8], p: &Path, store_id: u64) -> Result<FileHeader, OpenError> {
    let h = FileHeader::decode(bytes, FileKind::Segment).map_err(|e| header_error(p, e))?;
    if h.store_id != store_id {
        return Err(OpenError::ForeignFile {
            path: p.to_path_buf(),
            expected: store_id,
            found: h.store_id,
        });
    }
    Ok(h)
}

/// Turns a header decoding error into an [`OpenError`] naming the file.
pub(crate) fn header_error(p: &Path, e: crate::codec::header::HeaderError) -> OpenError {
    match e {
        crate::codec::header::HeaderError::Version(found) => OpenError::UnsupportedVersion {
            path: p.to_path_buf(),
            found,
            supported: crate::codec::header::FORMAT_VERSION,
        },
        other => OpenError::BadHeader {
            path: p.to_path_buf(),
            reason: other.to_string(),
        },
    }
}

/// What a scan of one segment found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scan {
    /// End of the last complete unit (a batch's last event, a marker or the seal).
    pub commit: u64,
    /// The largest synced length any valid marker recorded.
    pub synced: u64,
    /// A seal frame was found.
    pub sealed: bool,
    /// The last complete unit is a sync marker recording every byte before it: the file
    /// needs no newer marker.
    pub marked_to_end: bool,
    /// The first bad frame, if the scan stopped before the end of the bytes.
    pub error: Option<(u64, FrameError)>,
}

impl Scan {
    /// The bad frame lies inside bytes known to have been synced: corruption, not a tear.
    pub fn damage_in_synced_part(&self) -> Option<(u64, &FrameError)> {
        self.error
            .as_ref()
            .filter(|(off, _)| *off < self.synced)
            .map(|(o, e)| (*o, e))
    }
}

/// Walks the frames of `bytes` (a whole segment file) from `start`, handing each frame of
/// a complete unit to `on_frame` in order. Frames of a batch that never finished, and
/// dictionary frames after the last complete unit, are not handed over. Event frames before
/// `decode_from` (already indexed from a checkpoint) are only checksummed, not handed over.
pub(crate) fn scan<'a>(
    bytes: &'a [u8],
    base: Base,
    start: u64,
    decode_from: u64,
    mut on_frame: impl FnMut(u64, Frame<'a>),
) -> Scan {
    let mut out = Scan {
        commit: start,
        synced: HEADER_LEN as u64,
        sealed: false,
        marked_to_end: false,
        error: None,
    };
    let mut pending: Vec<(u64, Frame<'a>)> = Vec::new();
    let mut batch_open = false;
    let mut pos = start as usize;
    while pos < bytes.len() {
        if (pos as u64) < decode_from && !out.sealed {
            if let Ok((body, n)) = frame::verify(&bytes[pos..]) {
                if body[0] == frame::EVENT {
                    batch_open = body.get(1).is_some_and(|f| f & frame::BATCH_CONTINUES != 0);
                    if !batch_open {
                        out.commit = (pos + n) as u64;
                        out.marked_to_end = false;
                        pending.drain(..).for_each(|(o, f)| on_frame(o, f));
                    }
                    pos += n;
                    continue;
                }
            }
        }
        let (f, n) = match frame::decode(&bytes[pos..], &base) {
            Ok(ok) => ok,
            Err(e) => {
                out.error = Some((pos as u64, e));
                out.synced = out.synced.max(synced_mark_after(bytes, &base, pos + 1));
                break;
            }
        };
        if out.sealed {
            out.error = Some((pos as u64, FrameError::BadBody("frame after the seal")));
            break;
        }
        let end = (pos + n) as u64;
        let completes = match f {
            Frame::Event(h, ..) => {
                batch_open = h.batch_continues;
                !batch_open
            }
            Frame::EntityDef(..) | Frame::ScopeDef(..) => false,
            Frame::SyncMark(len) => {
                out.synced = out.synced.max(len.min(pos as u64));
                !batch_open
            }
            Frame::Gap { .. }
            | Frame::Anchor { .. }
            | Frame::ChainStart(_)
            | Frame::KeptKey { .. } => !batch_open,
            Frame::Seal { .. } => {
                out.sealed = true;
                true
            }
        };
        let marks_all = matches!(f, Frame::SyncMark(len) if len == pos as u64);
        pending.push((pos as u64, f));
        if completes {
            out.commit = end;
            out.marked_to_end = marks_all;
            pending.drain(..).for_each(|(o, f)| on_frame(o, f));
        }
        pos += n;
    }
    out
}

/// The largest synced length recorded by a valid marker at or after `from`: a bad frame
/// before such a marker lies in bytes that were synced. Only positions that can start a
/// marker frame are checksummed, so this is linear in the bytes searched.
fn synced_mark_after(bytes: &[u8], base: &Base, from: usize) -> u64 {
    let mut best = 0;
    for pos in from..bytes.len().saturating_sub(6) {
        let body_len = bytes[pos + 4];
        if !(2..=11).contains(&body_len) || bytes[pos + 5] != frame::SYNC_MARK {
            continue;
        }
        if let Ok((Frame::SyncMark(len), _)) = frame::decode(&bytes[pos..], base) {
            best = best.max(len.min(pos as u64));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::frame::EventHeader;

    fn event(seq: u64, batch_continues: bool) -> Vec<u8> {
        let mut b = Vec::new();
        let h = EventHeader {
            seq,
            ts: 5,
            kind: 1,
            entity: 0,
            scope: 0,
            cause: None,
            correlation: seq,
            key: None,
            batch_continues,
            link: None,
        };
        frame::put_event(&mut b, &Base::default(), &h, None, b"x");
        b
    }

    #[test]
    fn names_round_trip_and_foreign_names_are_ignored() {
        assert_eq!(parse_name(&file_name(42)), Some(42));
        assert_eq!(parse_name("seg-42.bpk"), None);
        assert_eq!(parse_name("notes.txt"), None);
    }

    #[test]
    fn an_unfinished_batch_at_the_tail_is_not_handed_over() {
        let mut bytes = vec![0u8; HEADER_LEN];
        bytes.extend(event(1, false));
        let after_first = bytes.len() as u64;
        bytes.extend(event(2, true));
        bytes.extend(event(3, true));
        let mut seen = Vec::new();
        let s = scan(
            &bytes,
            Base::default(),
            HEADER_LEN as u64,
            HEADER_LEN as u64,
            |_, f| seen.push(f),
        );
        assert_eq!(s.commit, after_first);
        assert_eq!(seen.len(), 1);
        assert_eq!(s.error, None);
    }

    /// A log of one synced event followed by its marker; returns it and the marker's end.
    fn marked_log() -> (Vec<u8>, u64) {
        let mut bytes = vec![0u8; HEADER_LEN];
        bytes.extend(event(1, false));
        let synced = bytes.len() as u64;
        let mut mark = Vec::new();
        frame::put_sync_mark(&mut mark, synced);
        bytes.extend(mark);
        let end = bytes.len() as u64;
        (bytes, end)
    }

    fn scan_all(bytes: &[u8]) -> Scan {
        let h = HEADER_LEN as u64;
        scan(bytes, Base::default(), h, h, |_, _| {})
    }

    #[test]
    fn damage_before_a_sync_marker_is_corruption() {
        let (mut bytes, _) = marked_log();
        bytes[HEADER_LEN + 7] ^= 0xff;
        let s = scan_all(&bytes);
        assert_eq!(
            s.damage_in_synced_part().map(|d| d.0),
            Some(HEADER_LEN as u64)
        );
    }

    #[test]
    fn damage_after_the_last_sync_marker_is_a_torn_tail() {
        let (mut bytes, commit) = marked_log();
        bytes.extend(event(2, false));
        let last = bytes.len() - 2;
        bytes[last] ^= 0xff;
        let s = scan_all(&bytes);
        assert_eq!(s.damage_in_synced_part(), None);
        assert_eq!(s.commit, commit);
    }
}
