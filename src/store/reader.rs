//! Reading frames back: sealed segments through an LRU of memory maps bounded by
//! `fd_budget`, the active segment through positional reads on the writer's file.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::codec::frame::{self, Base, EventHeader, Frame};
use crate::error::ReadError;
use crate::event::{Coordinate, Event, EventId, EventKind};
use crate::fs::{FileSystem, FsFile, ReadView};

use super::segment;

/// Where an event's frame is, with what decoding it needs.
#[derive(Debug, Clone)]
pub(crate) struct Located {
    pub seq: u64,
    pub seg: u32,
    pub off: u32,
    pub base: Base,
    /// Bytes of the segment known to hold complete frames.
    pub limit: u64,
    pub entity: Arc<str>,
    pub scope: Arc<str>,
}

/// Counters of the map cache.
#[derive(Debug, Default)]
pub(crate) struct MapCounters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub evictions: AtomicU64,
}

/// Memory maps of sealed segments, least recently used evicted first.
pub(crate) struct MapCache {
    capacity: usize,
    tick: u64,
    maps: HashMap<u32, (Arc<dyn ReadView>, u64)>,
}

impl MapCache {
    /// A cache holding at most `capacity` maps.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            tick: 0,
            maps: HashMap::new(),
        }
    }

    /// The segments mapped now.
    pub fn mapped(&self) -> Vec<u32> {
        self.maps.keys().copied().collect()
    }

    /// Changes the capacity, evicting least recently used maps at once.
    pub fn set_capacity(&mut self, capacity: usize, counters: &MapCounters) {
        self.capacity = capacity.max(1);
        while self.maps.len() > self.capacity {
            self.evict_one(counters);
        }
    }

    /// Drops the map of `seg` (its file was replaced).
    pub fn forget(&mut self, seg: u32) {
        self.maps.remove(&seg);
    }

    fn evict_one(&mut self, counters: &MapCounters) {
        if let Some(&victim) = self
            .maps
            .iter()
            .min_by_key(|(_, (_, t))| *t)
            .map(|(k, _)| k)
        {
            self.maps.remove(&victim);
            counters.evictions.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The map of segment `seg`, mapping it on a miss.
    pub fn get(
        &mut self,
        fs: &dyn FileSystem,
        dir: &Path,
        seg: u32,
        counters: &MapCounters,
    ) -> std::io::Result<&Arc<dyn ReadView>> {
        self.tick += 1;
        let tick = self.tick;
        if self.maps.contains_key(&seg) {
            counters.hits.fetch_add(1, Ordering::Relaxed);
        } else {
            counters.misses.fetch_add(1, Ordering::Relaxed);
            while self.maps.len() >= self.capacity {
                self.evict_one(counters);
            }
            let view = fs.map(&segment::path(dir, seg))?;
            self.maps.insert(seg, (view, tick));
        }
        let entry = self
            .maps
            .get_mut(&seg)
            .ok_or_else(|| std::io::Error::other("map vanished"))?;
        entry.1 = tick;
        Ok(&entry.0)
    }
}

/// The header of the event frame at the start of `bytes`, checked to be the expected one.
pub(crate) fn decode_header(
    bytes: &[u8],
    loc: &Located,
    path: &Path,
) -> Result<EventHeader, ReadError> {
    decode_located(bytes, loc, path).map(|(h, ..)| h)
}

type Decoded<'a> = (EventHeader, &'a [u8], Option<&'a [u8]>);

fn decode_located<'a>(
    bytes: &'a [u8],
    loc: &Located,
    path: &Path,
) -> Result<Decoded<'a>, ReadError> {
    let corrupt = |reason: String| ReadError::Corrupt {
        path: path.to_path_buf(),
        offset: u64::from(loc.off),
        reason,
    };
    let (f, _) = frame::decode(bytes, &loc.base).map_err(|e| corrupt(e.to_string()))?;
    let Frame::Event(h, payload, bypass) = f else {
        return Err(corrupt(
            "index points at a frame that is not an event".into(),
        ));
    };
    if h.seq != loc.seq {
        return Err(corrupt(format!(
            "frame holds sequence {} where the index expects {}",
            h.seq, loc.seq
        )));
    }
    Ok((h, payload, bypass))
}

/// Decodes the event frame at the start of `bytes` and checks it is the expected one.
pub(crate) fn decode_event(
    bytes: &[u8],
    loc: &Located,
    store_id: u64,
    path: &Path,
) -> Result<Event, ReadError> {
    let (h, payload, bypass) = decode_located(bytes, loc, path)?;
    Ok(Event {
        id: EventId::new(store_id, h.seq),
        sequence: h.seq,
        timestamp_us: h.ts,
        kind: EventKind(h.kind),
        coordinate: Coordinate::new(&*loc.entity, &*loc.scope),
        causation: h.cause.map(|c| EventId::new(store_id, c)),
        correlation: EventId::new(store_id, h.correlation),
        idempotency_key: h.key,
        bypass_reason: bypass.map(|r| String::from_utf8_lossy(r).into_owned()),
        payload: payload.to_vec(),
    })
}

/// Reads one frame from a file being appended to: a first guess of its size, then the
/// exact size if the frame is larger.
pub(crate) fn read_frame_from_file(
    file: &dyn FsFile,
    off: u64,
    limit: u64,
    path: &Path,
) -> Result<Vec<u8>, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        offset: off,
        source,
    };
    let first = 512u64.min(limit.saturating_sub(off));
    let mut buf = vec![0u8; first as usize];
    read_exact_at(file, &mut buf, off).map_err(io)?;
    let claimed = frame::claimed_len(&buf).unwrap_or(0);
    if claimed <= buf.len() as u64 {
        return Ok(buf);
    }
    let total = claimed.min(limit.saturating_sub(off));
    let mut full = vec![0u8; total as usize];
    read_exact_at(file, &mut full, off).map_err(io)?;
    Ok(full)
}

/// Fills `buf` from `off`; a file that ends first ends inside a frame.
#[track_caller]
fn read_exact_at(file: &dyn FsFile, buf: &mut [u8], off: u64) -> std::io::Result<()> {
    if file.read_full_at(buf, off)? < buf.len() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "file ends inside a frame",
        ));
    }
    Ok(())
}
