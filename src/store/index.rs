//! The in-memory index: one fixed-size [`Slot`] per event, threaded into intrusive lists.
//!
//! Every event gets a 52-byte slot holding its location and the heads of the lists it
//! belongs to: its entity's, its scope's and its kind's events in sequence order, its
//! correlation's members in sequence order, and its causal children. Lists are linked
//! through slot positions (`u32`), so no per-entity or per-correlation `Vec` is needed and
//! every walk step is one array access. Slots live in fixed-size chunks, so growth never
//! copies the index and its slack is at most one chunk.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use foldhash::HashMap;

use crate::codec::frame::Base;
use crate::config::DEFAULT_IDEMPOTENCY_WINDOW;

/// "No slot".
pub(crate) const NONE: u32 = u32::MAX;
/// Slots per chunk.
const CHUNK: usize = 16 * 1024;
/// Slot flag: the event is the root of its correlation (its `corr` is the list tail).
pub(crate) const ROOT: u16 = 1;
/// Slot flag: the event carries an idempotency key.
pub(crate) const KEYED: u16 = 2;
/// Slot flag: the event names a cause that a compaction removed.
pub(crate) const CAUSE_REMOVED: u16 = 4;

/// One event's entry in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    /// Segment number.
    pub seg: u32,
    /// Frame offset within the segment.
    pub off: u32,
    /// Entity dictionary id.
    pub entity: u32,
    /// Scope dictionary id.
    pub scope: u32,
    /// Event kind.
    pub kind: u16,
    /// `ROOT`, `KEYED`.
    pub flags: u16,
    /// Slot of the cause.
    pub parent: u32,
    /// Slot of the correlation root; for a root, the last member of its correlation.
    pub corr: u32,
    /// Next member of the same correlation.
    pub corr_next: u32,
    /// Most recent causal child.
    pub first_child: u32,
    /// Next older sibling (same cause).
    pub next_sibling: u32,
    /// Next event of the same entity.
    pub entity_next: u32,
    /// Next event of the same scope.
    pub scope_next: u32,
    /// Next event of the same kind.
    pub kind_next: u32,
}

impl Slot {
    const EMPTY: Slot = Slot {
        seg: 0,
        off: 0,
        entity: 0,
        scope: 0,
        kind: 0,
        flags: 0,
        parent: NONE,
        corr: NONE,
        corr_next: NONE,
        first_child: NONE,
        next_sibling: NONE,
        entity_next: NONE,
        scope_next: NONE,
        kind_next: NONE,
    };
}

/// Head, tail and length of one intrusive list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct List {
    pub head: u32,
    pub tail: u32,
    pub count: u32,
}

impl Default for List {
    fn default() -> Self {
        Self {
            head: NONE,
            tail: NONE,
            count: 0,
        }
    }
}

/// Names by dictionary id, with the list of events of each.
#[derive(Debug, Default)]
pub(crate) struct Dict {
    pub names: Vec<Arc<str>>,
    pub lists: Vec<List>,
    lookup: HashMap<Arc<str>, u32>,
}

impl Dict {
    /// The id of `name`, if known.
    pub fn id(&self, name: &str) -> Option<u32> {
        self.lookup.get(name).copied()
    }

    /// The name of `id` (empty for an unknown id).
    pub fn name(&self, id: u32) -> Arc<str> {
        self.names
            .get(id as usize)
            .cloned()
            .unwrap_or_else(|| Arc::from(""))
    }

    /// Adds a name with the next free id.
    pub fn intern(&mut self, name: &str) -> u32 {
        let id = self.names.len() as u32;
        self.define(id, name);
        id
    }

    /// Records `id` ↔ `name` (from a dictionary frame); `false` if `id` is already
    /// defined as another name.
    pub fn define(&mut self, id: u32, name: &str) -> bool {
        let i = id as usize;
        if let Some(existing) = self.names.get(i) {
            if !existing.is_empty() {
                return &**existing == name;
            }
        }
        if self.names.len() <= i {
            self.names.resize(i + 1, Arc::from(""));
            self.lists.resize(i + 1, List::default());
        }
        let name: Arc<str> = Arc::from(name);
        self.names[i] = name.clone();
        self.lookup.insert(name, id);
        true
    }

    fn heap_bytes(&self) -> usize {
        let names: usize = self.names.iter().map(|n| n.len() + 16).sum();
        names
            + self.names.capacity() * 16
            + self.lists.capacity() * std::mem::size_of::<List>()
            + self.lookup.capacity() * 24
    }
}

// `event::IDEMPOTENCY_WINDOW` names the same default for code that does not see the config.
const _: () = assert!(DEFAULT_IDEMPOTENCY_WINDOW as usize == crate::event::IDEMPOTENCY_WINDOW);

/// The most recent idempotency keys, oldest evicted first.
#[derive(Debug)]
pub(crate) struct KeyWindow {
    map: HashMap<u128, u64>,
    order: VecDeque<u128>,
    /// Keys remembered at most ([`crate::StoreConfig::idempotency_window`]).
    cap: usize,
}

impl Default for KeyWindow {
    fn default() -> Self {
        Self {
            map: HashMap::default(),
            order: VecDeque::new(),
            cap: DEFAULT_IDEMPOTENCY_WINDOW as usize,
        }
    }
}

impl KeyWindow {
    /// Remembers at most `cap` keys from now on, forgetting the oldest beyond it.
    pub fn set_capacity(&mut self, cap: usize) {
        self.cap = cap;
        self.evict();
    }

    pub fn get(&self, key: u128) -> Option<u64> {
        self.map.get(&key).copied()
    }

    pub fn insert(&mut self, key: u128, seq: u64) {
        if self.map.insert(key, seq).is_none() {
            self.order.push_back(key);
        }
        self.evict();
    }

    fn evict(&mut self) {
        while self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }

    /// Keys with their sequences, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = (u128, u64)> + '_ {
        self.order
            .iter()
            .filter_map(|k| self.map.get(k).map(|s| (*k, *s)))
    }
}

/// What the index knows about a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegMeta {
    pub base: Base,
    /// Bytes of the file that hold complete, indexed frames.
    pub len: u64,
    pub sealed: bool,
    pub events: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
}

impl SegMeta {
    /// A segment holding only its header.
    pub fn empty(base: Base) -> Self {
        Self {
            base,
            len: crate::codec::header::HEADER_LEN as u64,
            sealed: false,
            events: 0,
            first_seq: None,
            last_seq: None,
        }
    }

    /// Counts an event written to the segment.
    pub fn note(&mut self, seq: u64) {
        self.events += 1;
        self.first_seq.get_or_insert(seq);
        self.last_seq = Some(seq);
    }
}

/// A new event for [`Index::push`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewEvent {
    pub seq: u64,
    pub seg: u32,
    pub off: u32,
    pub entity: u32,
    pub scope: u32,
    pub kind: u16,
    pub cause: Option<u64>,
    pub correlation: u64,
    pub key: Option<u128>,
}

/// The whole in-memory index.
#[derive(Debug, Default)]
pub(crate) struct Index {
    chunks: Vec<Box<[Slot]>>,
    len: u32,
    /// Runs of consecutive sequences: (first slot position, its sequence).
    runs: Vec<(u32, u64)>,
    pub entities: Dict,
    pub scopes: Dict,
    pub kinds: BTreeMap<u16, List>,
    pub keys: KeyWindow,
    pub segments: BTreeMap<u32, SegMeta>,
    /// Highest sequence whose bytes were written; later slots are staged, not visible.
    pub visible: u64,
    /// Bumped each time a compaction replaces the index: slot positions and frame offsets
    /// taken from an older generation are no longer valid.
    pub generation: u64,
    /// Per entity id, the newest anchor a compaction left (removed sequence, its link):
    /// where the entity's hash chain goes on when its later events were removed.
    pub anchors: HashMap<u32, (u64, [u8; 8])>,
}

impl Index {
    /// Number of slots.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// The slot at `pos`.
    #[inline]
    pub fn slot(&self, pos: u32) -> &Slot {
        let p = pos as usize;
        &self.chunks[p / CHUNK][p % CHUNK]
    }

    #[inline]
    fn slot_mut(&mut self, pos: u32) -> &mut Slot {
        let p = pos as usize;
        &mut self.chunks[p / CHUNK][p % CHUNK]
    }

    /// Records an anchor frame (the newest per entity wins).
    pub fn note_anchor(&mut self, entity: u32, seq: u64, link: [u8; 8]) {
        let e = self.anchors.entry(entity).or_insert((seq, link));
        if seq >= e.0 {
            *e = (seq, link);
        }
    }

    /// The last sequence in the index (staged or visible).
    pub fn last_seq(&self) -> Option<u64> {
        self.len.checked_sub(1).map(|p| self.seq_at(p))
    }

    /// The sequence of the slot at `pos`.
    pub fn seq_at(&self, pos: u32) -> u64 {
        let i = self.runs.partition_point(|&(p, _)| p <= pos) - 1;
        let (p, s) = self.runs[i];
        s + u64::from(pos - p)
    }

    /// The slot position of `seq`, if the index holds it.
    pub fn pos_of(&self, seq: u64) -> Option<u32> {
        let i = self
            .runs
            .partition_point(|&(_, s)| s <= seq)
            .checked_sub(1)?;
        let (p, s) = self.runs[i];
        let end = self.runs.get(i + 1).map_or(self.len, |r| r.0);
        let pos = u64::from(p) + (seq - s);
        (pos < u64::from(end)).then_some(pos as u32)
    }

    /// The first slot position whose sequence is `>= seq`.
    pub fn lower_bound(&self, seq: u64) -> u32 {
        let i = self.runs.partition_point(|&(_, s)| s <= seq);
        if i == 0 {
            return 0;
        }
        let (p, s) = self.runs[i - 1];
        let end = self.runs.get(i).map_or(self.len, |r| r.0);
        (u64::from(p) + (seq - s)).min(u64::from(end)) as u32
    }

    /// The correlation root slot of the slot at `pos`.
    pub fn corr_root(&self, pos: u32) -> u32 {
        let s = self.slot(pos);
        if s.flags & ROOT != 0 {
            pos
        } else {
            s.corr
        }
    }

    /// The last sequence of an entity.
    pub fn entity_last_seq(&self, entity: u32) -> Option<u64> {
        let tail = self.entities.lists.get(entity as usize)?.tail;
        (tail != NONE).then(|| self.seq_at(tail))
    }

    /// Sequences of an entity's written (visible) events, oldest first.
    pub fn visible_entity_seqs(&self, entity: u32) -> impl Iterator<Item = u64> + '_ {
        let head = self
            .entities
            .lists
            .get(entity as usize)
            .map_or(NONE, |l| l.head);
        std::iter::successors((head != NONE).then_some(head), move |&p| {
            let next = self.slot(p).entity_next;
            (next != NONE).then_some(next)
        })
        .map(move |p| self.seq_at(p))
        .take_while(move |s| *s <= self.visible)
    }

    /// Appends a slot and links it into every list. The cause and correlation, when given,
    /// must already be in the index (the writer checks before staging).
    pub fn push(&mut self, e: NewEvent) -> u32 {
        let pos = self.len;
        if (pos as usize).is_multiple_of(CHUNK) && self.chunks.len() * CHUNK <= pos as usize {
            self.chunks
                .push(vec![Slot::EMPTY; CHUNK].into_boxed_slice());
        }
        if self.last_seq().is_none_or(|last| last + 1 != e.seq) {
            self.runs.push((pos, e.seq));
        }
        self.len += 1;
        let mut slot = Slot {
            seg: e.seg,
            off: e.off,
            entity: e.entity,
            scope: e.scope,
            kind: e.kind,
            flags: if e.key.is_some() { KEYED } else { 0 },
            ..Slot::EMPTY
        };
        match e.cause.map(|c| self.pos_of(c)) {
            Some(Some(parent)) => {
                slot.parent = parent;
                slot.next_sibling = self.slot(parent).first_child;
                self.slot_mut(parent).first_child = pos;
            }
            Some(None) => slot.flags |= CAUSE_REMOVED,
            None => {}
        }
        match self
            .pos_of(e.correlation)
            .filter(|_| e.correlation != e.seq)
        {
            Some(member) => {
                let root = self.corr_root(member);
                let tail = self.slot(root).corr;
                self.slot_mut(tail).corr_next = pos;
                self.slot_mut(root).corr = pos;
                slot.corr = root;
            }
            None => {
                slot.flags |= ROOT;
                slot.corr = pos;
            }
        }
        *self.slot_mut(pos) = slot;
        self.link_lists(pos, e);
        if let Some(k) = e.key {
            self.keys.insert(k, e.seq);
        }
        pos
    }

    fn link_lists(&mut self, pos: u32, e: NewEvent) {
        let ent = link(&mut self.entities.lists[e.entity as usize], pos);
        if ent != NONE {
            self.slot_mut(ent).entity_next = pos;
        }
        let sc = link(&mut self.scopes.lists[e.scope as usize], pos);
        if sc != NONE {
            self.slot_mut(sc).scope_next = pos;
        }
        let k = link(self.kinds.entry(e.kind).or_default(), pos);
        if k != NONE {
            self.slot_mut(k).kind_next = pos;
        }
    }

    /// Heap bytes held by the index (capacity based).
    pub fn heap_bytes(&self) -> usize {
        self.chunks.len() * CHUNK * std::mem::size_of::<Slot>()
            + self.chunks.capacity() * 16
            + self.runs.capacity() * 16
            + self.entities.heap_bytes()
            + self.scopes.heap_bytes()
            + self.kinds.len() * 48
            + self.keys.map.capacity() * 32
            + self.keys.order.capacity() * 16
    }

    /// Raw access for the checkpoint: every slot in order.
    pub fn slots(&self) -> impl Iterator<Item = &Slot> + '_ {
        (0..self.len).map(move |p| self.slot(p))
    }

    /// Raw access for the checkpoint.
    pub fn runs(&self) -> &[(u32, u64)] {
        &self.runs
    }

    /// Rebuilds an index from checkpointed parts: `len` slots in order.
    pub fn restore(slots: impl Iterator<Item = Slot>, len: usize, runs: Vec<(u32, u64)>) -> Self {
        let mut chunks: Vec<Box<[Slot]>> = Vec::with_capacity(len.div_ceil(CHUNK));
        for (i, slot) in slots.take(len).enumerate() {
            if i % CHUNK == 0 {
                chunks.push(vec![Slot::EMPTY; CHUNK].into_boxed_slice());
            }
            if let Some(c) = chunks.last_mut() {
                c[i % CHUNK] = slot;
            }
        }
        Self {
            chunks,
            len: len as u32,
            runs,
            ..Self::default()
        }
    }
}

/// Appends `pos` to a list, returning the previous tail (to be pointed at `pos`).
fn link(list: &mut List, pos: u32) -> u32 {
    let prev = list.tail;
    if prev == NONE {
        list.head = pos;
    }
    list.tail = pos;
    list.count += 1;
    prev
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: u64, entity: u32, cause: Option<u64>, correlation: u64) -> NewEvent {
        NewEvent {
            seq,
            seg: 1,
            off: 64,
            entity,
            scope: 0,
            kind: 1,
            cause,
            correlation,
            key: None,
        }
    }

    fn index_with_names() -> Index {
        let mut idx = Index::default();
        idx.entities.intern("a");
        idx.entities.intern("b");
        idx.scopes.intern("s");
        idx
    }

    #[test]
    fn sequences_with_gaps_map_to_positions_and_back() {
        let mut idx = index_with_names();
        for seq in [1, 2, 3, 10, 11, 20] {
            idx.push(ev(seq, 0, None, seq));
        }
        assert_eq!(idx.pos_of(10), Some(3));
        assert_eq!(idx.pos_of(5), None);
        assert_eq!(idx.pos_of(21), None);
        assert_eq!(idx.seq_at(5), 20);
        assert_eq!(idx.lower_bound(5), 3);
        assert_eq!(idx.lower_bound(0), 0);
        assert_eq!(idx.lower_bound(99), 6);
    }

    #[test]
    fn correlation_and_children_are_linked() {
        let mut idx = index_with_names();
        idx.push(ev(1, 0, None, 1));
        idx.push(ev(2, 1, Some(1), 1));
        idx.push(ev(3, 0, Some(1), 1));
        let root = idx.slot(0);
        assert_eq!(root.flags & ROOT, ROOT);
        assert_eq!(root.corr, 2, "root points at the correlation tail");
        assert_eq!(root.corr_next, 1);
        assert_eq!(idx.slot(1).corr_next, 2);
        assert_eq!(root.first_child, 2);
        assert_eq!(idx.slot(2).next_sibling, 1);
        assert_eq!(idx.entity_last_seq(0), Some(3));
        assert_eq!(idx.slot(0).entity_next, 2);
    }

    #[test]
    fn a_slot_is_52_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 52);
    }
}
