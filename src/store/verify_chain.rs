//! The hash-chain part of `verify`: every link recomputed from its event and its entity's
//! previous link, every segment's chain value from its frames, every chain-start frame
//! against the seal before it. Segments of formats before the chain are not chained; the
//! chain starts again from the genesis value after them.

use std::collections::HashMap;

use crate::codec::chain::{self, Content, Linked, SegmentHash, GENESIS};
use crate::codec::frame::{Base, Frame};
use crate::codec::header::{BYTES_CHAINED_VERSION, CHAINED_VERSION};

use super::chain::Fold;

/// What the chain check of one segment found: problems as (offset, what), in file order.
pub(crate) type Found = Vec<(Option<u64>, String)>;

/// The chain check across the segments, in order.
#[derive(Default)]
pub(crate) struct ChainCheck {
    /// Per entity id, the link its next event must follow.
    links: HashMap<u32, [u8; 8]>,
    entities: HashMap<u32, Vec<u8>>,
    scopes: HashMap<u32, Vec<u8>>,
    /// The value the previous segment handed on (`None` after an unchained one).
    prev_out: Option<[u8; 32]>,
    /// The chain value after the newest chained segment's last frame.
    pub head: Option<[u8; 32]>,
    /// Events whose link was checked.
    pub linked: u64,
    /// The value handed on by the newest seal (it survives a compaction of its segment).
    pub sealed_head: Option<[u8; 32]>,
    /// A head recorded earlier, to be found in the chain.
    pub expect: Option<[u8; 32]>,
    /// Whether `expect` was found: as the value after some frame, or as a seal's value.
    pub expect_found: bool,
}

/// How a segment's chain value is computed: format 3 folds its frames, format 4 hashes its
/// bytes (hashed up to `upto` so far).
enum Value {
    Steps(Fold),
    Bytes { hash: Box<SegmentHash>, upto: usize },
}

/// One segment's walk.
pub(crate) struct SegmentWalk<'c> {
    check: &'c mut ChainCheck,
    bytes: &'c [u8],
    value: Value,
    version: u16,
    chained: bool,
    first: bool,
    seal: Option<Option<crate::codec::frame::SealChain>>,
    pub found: Found,
}

impl ChainCheck {
    /// A check that also looks for the recorded head `expect`.
    pub fn expecting(expect: Option<[u8; 32]>) -> Self {
        Self {
            expect,
            ..Self::default()
        }
    }

    fn note_value(&mut self, v: &[u8; 32]) {
        if self.expect.as_ref() == Some(v) {
            self.expect_found = true;
        }
    }

    /// Starts the walk of segment `no` of format `version`, whose file is `bytes`.
    pub fn segment<'a>(
        &'a mut self,
        no: u32,
        base: Base,
        version: u16,
        bytes: &'a [u8],
    ) -> SegmentWalk<'a> {
        let value = match version >= BYTES_CHAINED_VERSION {
            true => Value::Bytes {
                hash: Box::default(),
                upto: 0,
            },
            false => Value::Steps(Fold::new(no, base)),
        };
        SegmentWalk {
            chained: version >= CHAINED_VERSION,
            check: self,
            bytes,
            value,
            version,
            first: true,
            seal: None,
            found: Vec::new(),
        }
    }
}

impl SegmentWalk<'_> {
    /// Takes in one frame (in file order, complete units only).
    pub fn frame(&mut self, off: u64, f: &Frame<'_>) {
        match *f {
            Frame::EntityDef(id, name) => {
                self.check.entities.insert(id, name.to_vec());
            }
            Frame::ScopeDef(id, name) => {
                self.check.scopes.insert(id, name.to_vec());
            }
            _ => {}
        }
        if !self.chained {
            return;
        }
        let first = std::mem::replace(&mut self.first, false);
        if self.check.expect.is_some() && !self.check.expect_found {
            // Format 4: the value after the frame before this one.
            if let Some(v) = self.bytes_value(off) {
                self.check.note_value(&v);
            }
        }
        match *f {
            Frame::ChainStart(prev) => self.start(off, first, prev),
            Frame::Event(h, payload, bypass) => self.event(off, &h, payload, bypass),
            Frame::Anchor { entity, link, .. } => {
                self.check.links.insert(entity, link);
            }
            Frame::Seal { chain, .. } => {
                if let Some(c) = chain {
                    self.check.sealed_head = Some(c.out);
                    self.check.note_value(&c.out);
                }
                self.seal = Some(chain);
            }
            _ => {}
        }
        if first && !matches!(f, Frame::ChainStart(_)) {
            self.found.push((
                Some(off),
                "the segment's chain does not start here: its first frame is not the chain \
                 start (frames before it removed, or the file was rewritten)"
                    .into(),
            ));
        }
        if let Value::Steps(fold) = &mut self.value {
            fold.frame(f);
            if self.check.expect.is_some() && !self.check.expect_found {
                let v = fold.current();
                self.check.note_value(&v);
            }
        }
    }

    /// Format 4: the value of the file's bytes up to `end` (`None` in a format-3 file).
    fn bytes_value(&mut self, end: u64) -> Option<[u8; 32]> {
        let Value::Bytes { hash, upto } = &mut self.value else {
            return None;
        };
        let end = (end as usize).min(self.bytes.len());
        if let Some(part) = self.bytes.get(*upto..end) {
            hash.update(part);
            *upto = end;
        }
        Some(hash.value())
    }

    fn start(&mut self, off: u64, first: bool, prev: [u8; 32]) {
        if !first {
            self.found.push((
                Some(off),
                "a second chain-start frame inside a segment".into(),
            ));
        }
        let want = self.check.prev_out.unwrap_or(GENESIS);
        if prev != want {
            self.found.push((
                Some(off),
                format!(
                    "broken link between files: this segment continues the chain from {} but \
                     the segment before it ends with {} (a segment removed, replaced or put in \
                     another's place)",
                    short(&prev),
                    short(&want)
                ),
            ));
        }
    }

    fn event(
        &mut self,
        off: u64,
        h: &crate::codec::frame::EventHeader,
        payload: &[u8],
        bypass: Option<&[u8]>,
    ) {
        let Some(stored) = h.link else {
            self.found.push((
                Some(off),
                format!("event {} carries no hash link in a chained segment", h.seq),
            ));
            return;
        };
        let name = |m: &HashMap<u32, Vec<u8>>, id| m.get(&id).cloned().unwrap_or_default();
        let (entity, scope) = (
            name(&self.check.entities, h.entity),
            name(&self.check.scopes, h.scope),
        );
        let prev = self.check.links.get(&h.entity).copied().unwrap_or([0; 8]);
        let content = Content {
            entity: &entity,
            scope: &scope,
            bypass,
            payload,
        };
        if chain::link(self.version, &prev, &Linked::of(h), &content) != stored {
            self.found.push((
                Some(off),
                format!(
                    "broken link at event {} of entity {:?}: its hash does not match its \
                     content and the entity's previous event (this event was edited, or an \
                     earlier event of the entity was removed, replaced or moved)",
                    h.seq,
                    String::from_utf8_lossy(&entity)
                ),
            ));
        }
        // Go on from what is stored, so that one edit is reported once.
        self.check.links.insert(h.entity, stored);
        self.check.linked += 1;
    }

    /// Ends the walk: `seal_off` is where the scan found the seal, `commit` where the
    /// segment's complete frames end.
    pub fn finish(mut self, seal_off: Option<u64>, commit: u64) -> Found {
        if !self.chained {
            self.check.prev_out = None;
            return self.found;
        }
        if self.first {
            // No frame yet (a roll's new file): it hands on what it was handed.
            return self.found;
        }
        let value = match &self.value {
            Value::Steps(fold) => fold.current(),
            Value::Bytes { .. } => self
                .bytes_value(seal_off.unwrap_or(commit))
                .unwrap_or(GENESIS),
        };
        if self.check.expect.is_some() && !self.check.expect_found {
            self.check.note_value(&value);
        }
        match self.seal {
            Some(Some(c)) => {
                if c.value != value {
                    self.found.push((
                        seal_off,
                        format!(
                            "broken chain: the seal records {} but the segment's frames chain \
                             to {} (bytes of this file edited, or events removed, reordered or \
                             replaced in it)",
                            short(&c.value),
                            short(&value)
                        ),
                    ));
                }
                self.check.prev_out = Some(c.out);
            }
            Some(None) => {
                self.found.push((
                    seal_off,
                    "the seal of a chained segment records no chain value".into(),
                ));
                self.check.prev_out = Some(value);
            }
            None => self.check.prev_out = Some(value),
        }
        self.check.head = Some(value);
        self.found
    }
}

/// The first 8 bytes of a chain value in hex.
fn short(v: &[u8; 32]) -> String {
    chain::hex(&v[..8])
}
