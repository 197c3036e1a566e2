//! Queries: pick the most selective index list for a [`Region`], walk it in sequence order,
//! and read the frames in chunks so the index lock is never held during disk reads.

use crate::error::ReadError;
use crate::event::{Event, Region};

use super::index::{Index, NONE};
use super::reader::Located;
use super::Shared;

/// Which list a query walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Entity(u32),
    Scope(u32),
    Kind(u16),
    All,
    Nothing,
}

/// The resumable state of a query.
#[derive(Debug, Clone)]
pub(crate) struct QueryCursor {
    region: Region,
    source: Option<Source>,
    /// Last slot visited; `None` before the first.
    last: Option<u32>,
    /// Its sequence, to find the place again in a rebuilt index.
    last_seq: u64,
    /// Index generation `last` belongs to.
    generation: u64,
    done: bool,
}

/// The moving part of a [`QueryCursor`].
type Position = (Option<Source>, Option<u32>, u64, u64, bool);

impl QueryCursor {
    fn position(&self) -> Position {
        (
            self.source,
            self.last,
            self.last_seq,
            self.generation,
            self.done,
        )
    }

    fn set_position(&mut self, p: Position) {
        (
            self.source,
            self.last,
            self.last_seq,
            self.generation,
            self.done,
        ) = p;
    }

    pub fn new(region: Region) -> Self {
        Self {
            region,
            source: None,
            last: None,
            last_seq: 0,
            generation: 0,
            done: false,
        }
    }
}

fn pick_source(idx: &Index, r: &Region) -> Source {
    if let Some(e) = &r.entity {
        return idx.entities.id(e).map_or(Source::Nothing, Source::Entity);
    }
    if let Some(s) = &r.scope {
        return idx.scopes.id(s).map_or(Source::Nothing, Source::Scope);
    }
    if let [k] = r.kinds[..] {
        return if idx.kinds.contains_key(&k.0) {
            Source::Kind(k.0)
        } else {
            Source::Nothing
        };
    }
    Source::All
}

fn first(idx: &Index, src: Source, from_seq: u64) -> u32 {
    let head = match src {
        Source::Entity(e) => idx.entities.lists[e as usize].head,
        Source::Scope(s) => idx.scopes.lists[s as usize].head,
        Source::Kind(k) => idx.kinds.get(&k).map_or(NONE, |l| l.head),
        Source::All => {
            let p = idx.lower_bound(from_seq);
            if p < idx.len() {
                p
            } else {
                NONE
            }
        }
        Source::Nothing => NONE,
    };
    head
}

fn next(idx: &Index, src: Source, pos: u32) -> u32 {
    let s = idx.slot(pos);
    match src {
        Source::Entity(_) => s.entity_next,
        Source::Scope(_) => s.scope_next,
        Source::Kind(_) => s.kind_next,
        Source::All if pos + 1 < idx.len() => pos + 1,
        _ => NONE,
    }
}

fn matches(idx: &Index, r: &Region, pos: u32, seq: u64) -> bool {
    let s = idx.slot(pos);
    seq >= r.from_sequence
        && r.allows_kind(crate::event::EventKind(s.kind))
        && r.entity
            .as_deref()
            .is_none_or(|e| &*idx.entities.names[s.entity as usize] == e)
        && r.scope
            .as_deref()
            .is_none_or(|sc| &*idx.scopes.names[s.scope as usize] == sc)
}

/// The first position of `src` with a sequence of at least `from`.
fn resume(idx: &Index, src: Source, from: u64) -> u32 {
    let mut p = first(idx, src, from);
    while p != NONE && idx.seq_at(p) < from {
        p = next(idx, src, p);
    }
    p
}

/// The location of the event in slot `pos`, for reading its frame.
pub(crate) fn locate(idx: &Index, pos: u32) -> Located {
    let s = idx.slot(pos);
    // A segment the index does not know holds nothing readable: limit 0.
    let (base, limit) = idx
        .segments
        .get(&s.seg)
        .map_or((Default::default(), 0), |m| (m.base, m.len));
    Located {
        seq: idx.seq_at(pos),
        seg: s.seg,
        off: s.off,
        base,
        limit,
        entity: idx.entities.name(s.entity),
        scope: idx.scopes.name(s.scope),
    }
}

/// Collects up to `limit` locations, advancing the cursor.
fn collect(idx: &Index, c: &mut QueryCursor, limit: usize) -> Vec<Located> {
    let mut out = Vec::new();
    let src = *c.source.get_or_insert_with(|| pick_source(idx, &c.region));
    let to = c.region.to_sequence.min(idx.visible);
    let mut pos = match c.last {
        None => first(idx, src, c.region.from_sequence),
        Some(p) if c.generation == idx.generation => next(idx, src, p),
        // A compaction rebuilt the index: positions moved, sequences did not.
        Some(_) => resume(idx, src, c.last_seq + 1),
    };
    c.generation = idx.generation;
    while pos != NONE {
        let seq = idx.seq_at(pos);
        if seq > to {
            c.done = seq > c.region.to_sequence;
            return out;
        }
        c.last = Some(pos);
        c.last_seq = seq;
        if matches(idx, &c.region, pos, seq) {
            out.push(locate(idx, pos));
            if out.len() >= limit {
                return out;
            }
        }
        pos = next(idx, src, pos);
    }
    out
}

impl Shared {
    /// Reads the next chunk of at most `limit` events; empty when the query is exhausted
    /// for now (a later call sees events written since).
    pub(crate) fn next_chunk(
        &self,
        c: &mut QueryCursor,
        limit: usize,
    ) -> Result<Vec<Event>, ReadError> {
        if c.done {
            return Ok(Vec::new());
        }
        // Where the cursor stands, to go back there (the region itself never changes).
        let before = c.position();
        self.read_retrying(|| {
            c.set_position(before);
            let (locs, layout) = {
                let idx = self.index();
                let layout = self.layout.load(std::sync::atomic::Ordering::Acquire);
                (collect(&idx, c, limit), layout)
            };
            (locs.iter().map(|l| self.read_located(l)).collect(), layout)
        })
    }
}

/// An iterator over the events of a region, read in chunks.
pub struct Query<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) cursor: QueryCursor,
    pub(crate) buffer: std::vec::IntoIter<Event>,
}

impl Iterator for Query<'_> {
    type Item = Result<Event, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.buffer.next() {
            return Some(Ok(e));
        }
        match self.shared.next_chunk(&mut self.cursor, 1024) {
            Ok(chunk) if chunk.is_empty() => None,
            Ok(chunk) => {
                self.buffer = chunk.into_iter();
                self.buffer.next().map(Ok)
            }
            Err(e) => {
                self.cursor.done = true;
                Some(Err(e))
            }
        }
    }
}

impl super::Store {
    /// Written events of `entity` with a sequence above `after`.
    pub(crate) fn entity_events_after(&self, entity: &str, after: u64) -> u64 {
        let idx = self.shared.index();
        idx.entities.id(entity).map_or(0, |e| {
            idx.visible_entity_seqs(e).filter(|s| *s > after).count() as u64
        })
    }
}
