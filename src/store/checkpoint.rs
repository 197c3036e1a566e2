//! The index checkpoint (`index.ckpt`), written at a clean close so the next open loads the
//! index instead of rebuilding it.
//!
//! ```text
//! header   64 bytes, kind "CK" (see codec::header)
//! body     segments: count:u32, then per segment
//!              no:u32 base_seq:u64 base_ts:u64 len:u64 sealed:u8 events:u64
//!              first_seq:u64 last_seq:u64 (u64::MAX = none) tail_crc:u32
//!          entities, scopes: count:u32, then per name len:u32 bytes head:u32 tail:u32 count:u32
//!          kinds: count:u32, then per kind kind:u16 head:u32 tail:u32 count:u32
//!          runs: count:u32, then pos:u32 seq:u64
//!          slots: count:u32, then 13 little-endian fields per slot (52 bytes)
//!          keys: count:u32, then key:u128 seq:u64
//!          visible:u64
//! trailer  masked crc32c of the body (u32)
//! ```
//!
//! The checkpoint covers a prefix of the log: each listed segment up to `len` bytes, and
//! `tail_crc` is the checksum of the (up to) 64 bytes before `len`. It is used only if every
//! listed segment still exists with at least `len` bytes and the same tail (sealed ones with
//! exactly `len`), and no unlisted segment sits before the last listed one; otherwise it is
//! stale and the index is rebuilt by scanning. Segments and bytes after the covered prefix
//! are scanned and indexed as usual; every frame is still checksummed on open.

use std::path::{Path, PathBuf};

use crate::codec::frame::{mask, Base};
use crate::codec::header::{FileHeader, FileKind, HEADER_LEN};
use crate::fs::{FileSystem, OpenMode};

use super::index::{Dict, Index, List, SegMeta, Slot};
use super::segment;

/// File name of the checkpoint.
pub const FILE_NAME: &str = crate::layout::CHECKPOINT;
const TAIL: u64 = 64;

/// What happened to the checkpoint at the last open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckpointStatus {
    /// There was none (first open, or the last close did not finish).
    #[default]
    Missing,
    /// It was loaded; only data written after it was scanned into the index.
    Loaded,
    /// It no longer matches the segments; the index was rebuilt by scanning.
    Stale(String),
    /// It is damaged or from another store; the index was rebuilt by scanning.
    Damaged(String),
    /// Not consulted (salvage rebuilds from the segments alone).
    Skipped,
}

/// Writes the checkpoint of `idx` atomically (temporary file, sync, rename, directory sync).
pub(crate) fn write(
    fs: &dyn FileSystem,
    dir: &Path,
    store_id: u64,
    idx: &Index,
) -> std::io::Result<()> {
    let mut body = Vec::with_capacity(idx.len() as usize * 56 + 4096);
    put_segments(fs, dir, idx, &mut body)?;
    put_dict(&idx.entities, &mut body);
    put_dict(&idx.scopes, &mut body);
    put_u32(&mut body, idx.kinds.len() as u32);
    for (k, l) in &idx.kinds {
        body.extend_from_slice(&k.to_le_bytes());
        put_list(&mut body, l);
    }
    put_u32(&mut body, idx.runs().len() as u32);
    for (p, s) in idx.runs() {
        put_u32(&mut body, *p);
        put_u64(&mut body, *s);
    }
    put_u32(&mut body, idx.len());
    idx.slots().for_each(|s| put_slot(&mut body, s));
    let keys: Vec<(u128, u64)> = idx.keys.entries().collect();
    put_u32(&mut body, keys.len() as u32);
    for (k, s) in keys {
        body.extend_from_slice(&k.to_le_bytes());
        put_u64(&mut body, s);
    }
    put_u64(&mut body, idx.visible);
    let crc = mask(crc32c::crc32c(&body)).to_le_bytes();
    let header = FileHeader::new(FileKind::Checkpoint, store_id, 1, 0, 0).encode();
    crate::fs::write_atomically(fs, dir, FILE_NAME, &[&header, &body, &crc])
}

/// Removes the checkpoint (when it is stale, so it can never be mistaken for current).
pub(crate) fn remove(fs: &dyn FileSystem, dir: &Path) -> std::io::Result<()> {
    let p = dir.join(FILE_NAME);
    if fs.exists(&p) {
        fs.remove_file(&p)?;
        fs.sync_dir(dir)?;
    }
    Ok(())
}

/// Why [`load`] gave no index.
pub(crate) enum LoadError {
    /// Missing or damaged: rebuild by scanning.
    Unusable(CheckpointStatus),
    /// Intact, but the segments no longer hold what it covers: synced data is gone.
    Lost {
        /// The segment that is missing, shorter or changed.
        path: PathBuf,
        /// What the checkpoint says it held.
        what: String,
    },
}

/// Loads the checkpoint if it is intact and still describes a prefix of `segments`.
pub(crate) fn load(
    fs: &dyn FileSystem,
    dir: &Path,
    store_id: u64,
    segments: &[u32],
) -> Result<Index, LoadError> {
    let path: PathBuf = dir.join(FILE_NAME);
    if !fs.exists(&path) {
        return Err(LoadError::Unusable(CheckpointStatus::Missing));
    }
    let damaged = |why: String| {
        LoadError::Unusable(CheckpointStatus::Damaged(format!(
            "{}: {why}",
            path.display()
        )))
    };
    let view = fs.map(&path).map_err(|e| damaged(e.to_string()))?;
    let bytes = view.bytes();
    let h = FileHeader::decode(bytes, FileKind::Checkpoint).map_err(|e| damaged(e.to_string()))?;
    if h.store_id != store_id {
        return Err(damaged(format!("belongs to store {:016x}", h.store_id)));
    }
    let body = bytes
        .get(HEADER_LEN..bytes.len().saturating_sub(4))
        .ok_or_else(|| damaged("too short".into()))?;
    let stored = &bytes[bytes.len() - 4..];
    if mask(crc32c::crc32c(body)).to_le_bytes() != stored {
        return Err(damaged("checksum mismatch".into()));
    }
    let (idx, tails) = decode(body).ok_or_else(|| damaged("body does not decode".into()))?;
    check_fresh(fs, dir, &idx, &tails, segments)?;
    Ok(idx)
}

/// Checks that every segment the checkpoint lists is there with what it covers: the
/// checkpoint is written at a clean close after everything it covers was synced, and
/// nothing later shortens a segment (compaction and salvage remove the checkpoint first).
fn check_fresh(
    fs: &dyn FileSystem,
    dir: &Path,
    idx: &Index,
    tails: &Tails,
    segments: &[u32],
) -> Result<(), LoadError> {
    let listed: Vec<u32> = idx.segments.keys().copied().collect();
    if let Some(&no) = listed.iter().find(|n| segments.binary_search(n).is_err()) {
        let len = idx.segments.get(&no).map_or(0, |m| m.len);
        return Err(lost(
            segment::path(dir, no),
            format!(
                "segment file is missing; the checkpoint of the last clean close covers {len} synced bytes of it"
            ),
        ));
    }
    let last = listed.last().copied().unwrap_or(0);
    if let Some(&no) = segments
        .iter()
        .find(|n| **n < last && !idx.segments.contains_key(n))
    {
        return Err(lost(
            segment::path(dir, no),
            "segment file sits among the segments the checkpoint covers, which did not list it"
                .into(),
        ));
    }
    for (&no, meta) in &idx.segments {
        let p = segment::path(dir, no);
        // Not knowing is not losing: rebuild by scanning, which reads every segment anyway.
        let failed = |e: std::io::Error| {
            LoadError::Unusable(CheckpointStatus::Stale(format!(
                "{}: cannot be read: {e}",
                p.display()
            )))
        };
        let file = fs.open(&p, OpenMode::Read).map_err(failed)?;
        let len = file.size().map_err(failed)?;
        if len < meta.len {
            return Err(lost(
                p,
                format!(
                    "segment is {len} bytes, but the checkpoint of the last clean close covers {} synced bytes of it",
                    meta.len
                ),
            ));
        }
        if meta.sealed && len != meta.len {
            return Err(lost(
                p,
                format!("segment was sealed at {} bytes and is now {len}", meta.len),
            ));
        }
        if Some(tail_crc(&*file, meta.len).map_err(failed)?) != tails.get(&no).copied() {
            return Err(lost(
                p,
                format!(
                    "segment changed before offset {}, inside the synced bytes the checkpoint of the last clean close covers",
                    meta.len
                ),
            ));
        }
    }
    Ok(())
}

/// Synced data the checkpoint covers is gone from `path`.
fn lost(path: PathBuf, what: String) -> LoadError {
    LoadError::Lost { path, what }
}

fn tail_crc(file: &dyn crate::fs::FsFile, len: u64) -> std::io::Result<u32> {
    let from = len.saturating_sub(TAIL);
    let mut buf = vec![0u8; (len - from) as usize];
    let done = file.read_full_at(&mut buf, from)?;
    Ok(crc32c::crc32c(&buf[..done]))
}

fn put_segments(
    fs: &dyn FileSystem,
    dir: &Path,
    idx: &Index,
    body: &mut Vec<u8>,
) -> std::io::Result<()> {
    put_u32(body, idx.segments.len() as u32);
    for (&no, m) in &idx.segments {
        let file = fs.open(&segment::path(dir, no), OpenMode::Read)?;
        put_u32(body, no);
        put_u64(body, m.base.seq);
        put_u64(body, m.base.ts);
        put_u64(body, m.len);
        body.push(u8::from(m.sealed));
        put_u64(body, m.events);
        put_u64(body, m.first_seq.unwrap_or(u64::MAX));
        put_u64(body, m.last_seq.unwrap_or(u64::MAX));
        put_u32(body, tail_crc(&*file, m.len)?);
    }
    Ok(())
}

fn put_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(&v.to_le_bytes());
}

fn put_list(b: &mut Vec<u8>, l: &List) {
    put_u32(b, l.head);
    put_u32(b, l.tail);
    put_u32(b, l.count);
}

fn put_dict(d: &Dict, b: &mut Vec<u8>) {
    put_u32(b, d.names.len() as u32);
    for (name, list) in d.names.iter().zip(&d.lists) {
        put_u32(b, name.len() as u32);
        b.extend_from_slice(name.as_bytes());
        put_list(b, list);
    }
}

fn put_slot(b: &mut Vec<u8>, s: &Slot) {
    for v in [s.seg, s.off, s.entity, s.scope] {
        put_u32(b, v);
    }
    b.extend_from_slice(&s.kind.to_le_bytes());
    b.extend_from_slice(&s.flags.to_le_bytes());
    for v in [
        s.parent,
        s.corr,
        s.corr_next,
        s.first_child,
        s.next_sibling,
        s.entity_next,
        s.scope_next,
        s.kind_next,
    ] {
        put_u32(b, v);
    }
}

/// A bounds-checked reader over the checkpoint body: every count is checked against the
/// bytes left before anything is allocated.
struct Rd<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Rd<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|s| u16::from_le_bytes([s[0], s[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    fn u64(&mut self) -> Option<u64> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Some(u64::from_le_bytes(a))
    }

    /// A count of items of at least `min_size` bytes each, refused if the rest is too short.
    fn count(&mut self, min_size: usize) -> Option<usize> {
        let n = self.u32()? as usize;
        (n.checked_mul(min_size)? <= self.b.len() - self.pos).then_some(n)
    }

    fn list(&mut self) -> Option<List> {
        Some(List {
            head: self.u32()?,
            tail: self.u32()?,
            count: self.u32()?,
        })
    }
}

/// Checksums of the bytes before each segment's covered length.
type Tails = std::collections::HashMap<u32, u32>;

fn decode(body: &[u8]) -> Option<(Index, Tails)> {
    let mut r = Rd { b: body, pos: 0 };
    let mut tails = std::collections::HashMap::new();
    let mut segments = std::collections::BTreeMap::new();
    for _ in 0..r.count(57)? {
        let no = r.u32()?;
        let base = Base {
            seq: r.u64()?,
            ts: r.u64()?,
        };
        let len = r.u64()?;
        let sealed = r.take(1)?[0] != 0;
        let events = r.u64()?;
        let opt = |v: u64| (v != u64::MAX).then_some(v);
        let (first_seq, last_seq) = (opt(r.u64()?), opt(r.u64()?));
        tails.insert(no, r.u32()?);
        segments.insert(
            no,
            SegMeta {
                base,
                len,
                sealed,
                events,
                first_seq,
                last_seq,
            },
        );
    }
    let entities = decode_dict(&mut r)?;
    let scopes = decode_dict(&mut r)?;
    let mut kinds = std::collections::BTreeMap::new();
    for _ in 0..r.count(14)? {
        kinds.insert(r.u16()?, r.list()?);
    }
    let mut runs = Vec::new();
    for _ in 0..r.count(12)? {
        runs.push((r.u32()?, r.u64()?));
    }
    let n = r.count(52)?;
    let raw = r.take(n * 52)?;
    let mut idx = Index::restore(raw.chunks_exact(52).map(decode_slot), n, runs);
    // Every key the checkpoint holds (bounded by its size); the open then applies the
    // configured window.
    idx.keys.set_capacity(usize::MAX);
    for _ in 0..r.count(24)? {
        let k = r.take(16)?;
        let mut a = [0u8; 16];
        a.copy_from_slice(k);
        idx.keys.insert(u128::from_le_bytes(a), r.u64()?);
    }
    idx.visible = r.u64()?;
    (r.pos == body.len()).then_some(())?;
    idx.entities = entities;
    idx.scopes = scopes;
    idx.kinds = kinds;
    idx.segments = segments;
    Some((idx, tails))
}

fn decode_dict(r: &mut Rd<'_>) -> Option<Dict> {
    let mut d = Dict::default();
    for id in 0..r.count(16)? {
        let len = r.u32()? as usize;
        let name = std::str::from_utf8(r.take(len)?).ok()?;
        if !name.is_empty() && !d.define(id as u32, name) {
            return None;
        }
        let list = r.list()?;
        if d.lists.len() <= id {
            d.lists.resize(id + 1, List::default());
            d.names.resize(id + 1, std::sync::Arc::from(""));
        }
        d.lists[id] = list;
    }
    Some(d)
}

fn decode_slot(b: &[u8]) -> Slot {
    let u = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    Slot {
        seg: u(0),
        off: u(4),
        entity: u(8),
        scope: u(12),
        kind: u16::from_le_bytes([b[16], b[17]]),
        flags: u16::from_le_bytes([b[18], b[19]]),
        parent: u(20),
        corr: u(24),
        corr_next: u(28),
        first_child: u(32),
        next_sibling: u(36),
        entity_next: u(40),
        scope_next: u(44),
        kind_next: u(48),
    }
}
