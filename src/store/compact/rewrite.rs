//! Rewriting one sealed segment without some of its events: kept frames re-encoded to the
//! same bytes, removed runs recorded as gap frames, dictionary entries written again for the
//! names still used. In a chained segment (format 3) an entity that lost events gets an
//! anchor (the link of its last removed event, where its chain goes on) just before its next
//! kept event, or before the seal when none follows in the file; the seal records the chain value of the rewritten file beside the
//! value the next segment was chained to.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use crate::codec::frame::{self, Base, EventHeader, Frame, SealChain};
use crate::codec::header::{FileHeader, FileKind, HEADER_LEN};
use crate::error::CompactError;

use super::super::chain::segment_value;
use super::super::segment;

/// One part of a segment, in file order.
enum Part<'a> {
    Event(EventHeader, &'a [u8], Option<&'a [u8]>),
    Gap(u64, u64),
    Anchor(u32, u64, [u8; 8]),
    Start([u8; 32]),
    /// The idempotency key of an event an earlier compaction removed.
    Key(u64, u128),
}

/// A sealed segment's frames.
struct Parsed<'a> {
    parts: Vec<Part<'a>>,
    entities: HashMap<u32, &'a [u8]>,
    scopes: HashMap<u32, &'a [u8]>,
    seal_last: u64,
    seal_chain: Option<SealChain>,
}

fn parse<'a>(bytes: &'a [u8], base: Base, path: &Path) -> Result<Parsed<'a>, CompactError> {
    let mut p = Parsed {
        parts: Vec::new(),
        entities: HashMap::new(),
        scopes: HashMap::new(),
        seal_last: 0,
        seal_chain: None,
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
        Frame::Seal {
            last_seq, chain, ..
        } => {
            p.seal_last = last_seq;
            p.seal_chain = chain;
        }
        Frame::Anchor { entity, seq, link } => p.parts.push(Part::Anchor(entity, seq, link)),
        Frame::ChainStart(prev) => p.parts.push(Part::Start(prev)),
        Frame::KeptKey { seq, key } => p.parts.push(Part::Key(seq, key)),
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

/// Rewrites the sealed segment `bytes` without the events `drop` selects. The idempotency
/// key of a removed event (or one an earlier compaction kept) stays, as a kept-key frame,
/// while `keep_key(key, seq)` says the store still remembers it.
pub(super) fn rewrite(
    bytes: &[u8],
    base: Base,
    path: &Path,
    drop: impl Fn(&EventHeader) -> bool,
    keep_key: impl Fn(u128, u64) -> bool,
) -> Result<(Vec<u8>, Vec<u64>), CompactError> {
    let p = parse(bytes, base, path)?;
    let kept: Vec<bool> = p
        .parts
        .iter()
        .map(|part| matches!(part, Part::Event(h, ..) if !drop(h)))
        .collect();
    let flags = batch_flags(&p.parts, &kept);
    let mut w = Out {
        bytes: bytes[..HEADER_LEN].to_vec(),
        defined_e: HashSet::new(),
        defined_s: HashSet::new(),
        gap: None,
        keys: Vec::new(),
        anchors: BTreeMap::new(),
    };
    let (mut removed, mut count, mut last) = (Vec::new(), 0u64, 0u64);
    for (i, part) in p.parts.iter().enumerate() {
        match part {
            Part::Start(prev) => frame::put_chain_start(&mut w.bytes, prev),
            Part::Gap(f, l) => w.extend_gap(*f, *l),
            Part::Anchor(e, s, l) => w.note_anchor(*e, *s, *l),
            Part::Key(s, k) => w.keep_key(*s, *k, &keep_key),
            Part::Event(h, _, _) if !kept[i] => {
                removed.push(h.seq);
                w.extend_gap(h.seq, h.seq);
                if let Some(k) = h.key {
                    w.keep_key(h.seq, k, &keep_key);
                }
                if let Some(link) = h.link {
                    w.note_anchor(h.entity, h.seq, link);
                }
            }
            Part::Event(h, payload, bypass) => {
                w.flush_gap();
                w.settle_anchor(h.entity, &p, path)?;
                let out = &mut w.bytes;
                let (defined_e, defined_s) = (&mut w.defined_e, &mut w.defined_s);
                define(
                    out,
                    frame::ENTITY_DEF,
                    h.entity,
                    &p.entities,
                    defined_e,
                    path,
                )?;
                define(out, frame::SCOPE_DEF, h.scope, &p.scopes, defined_s, path)?;
                let h = EventHeader {
                    batch_continues: flags[i],
                    ..*h
                };
                frame::put_event(out, &base, &h, *bypass, payload);
                count += 1;
            }
        }
        if let Part::Event(h, ..) = part {
            last = last.max(h.seq);
        }
    }
    w.flush_gap();
    w.settle_anchors(&p, path)?;
    let mut out = w.bytes;
    let chain = p.seal_chain.map(|c| SealChain {
        value: {
            let (no, version) = header_of(&out);
            segment_value(&out, base, no, version)
        },
        out: c.out,
    });
    frame::put_seal(&mut out, p.seal_last.max(last), count, chain);
    Ok((out, removed))
}

/// The segment number and format version in a file header (already checked by the open
/// that indexed it).
fn header_of(bytes: &[u8]) -> (u32, u16) {
    FileHeader::decode(bytes, FileKind::Segment).map_or((0, 0), |h| (h.number as u32, h.version))
}

/// The rewritten file as it grows: the open removed run and the anchors it owes.
struct Out {
    bytes: Vec<u8>,
    defined_e: HashSet<u32>,
    defined_s: HashSet<u32>,
    gap: Option<(u64, u64)>,
    /// Kept keys of the open run, written after its gap frame (in sequence order).
    keys: Vec<(u64, u128)>,
    /// Per entity whose removed events are not yet anchored: its last removed sequence and link.
    anchors: BTreeMap<u32, (u64, [u8; 8])>,
}

impl Out {
    fn extend_gap(&mut self, first: u64, last: u64) {
        match &mut self.gap {
            Some((_, l)) if first == *l + 1 => *l = last,
            _ => {
                self.flush_gap();
                self.gap = Some((first, last));
            }
        }
    }

    fn note_anchor(&mut self, entity: u32, seq: u64, link: [u8; 8]) {
        let e = self.anchors.entry(entity).or_insert((seq, link));
        if seq >= e.0 {
            *e = (seq, link);
        }
    }

    fn keep_key(&mut self, seq: u64, key: u128, keep: &impl Fn(u128, u64) -> bool) {
        if keep(key, seq) {
            self.keys.push((seq, key));
        }
    }

    /// Writes the open run's gap frame and the keys it keeps.
    fn flush_gap(&mut self) {
        if let Some((f, l)) = self.gap.take() {
            frame::put_gap(&mut self.bytes, f, l);
        }
        for (seq, key) in self.keys.drain(..) {
            frame::put_kept_key(&mut self.bytes, seq, key);
        }
    }

    /// Writes the anchor `entity` owes, if any, just before its next kept event: one anchor
    /// per run of the entity's own removed events, however many other events lie between.
    fn settle_anchor(
        &mut self,
        entity: u32,
        p: &Parsed<'_>,
        path: &Path,
    ) -> Result<(), CompactError> {
        if let Some((seq, link)) = self.anchors.remove(&entity) {
            self.put_anchor(entity, seq, link, p, path)?;
        }
        Ok(())
    }

    /// Writes every anchor still owed (before the seal), each after its entity's name.
    fn settle_anchors(&mut self, p: &Parsed<'_>, path: &Path) -> Result<(), CompactError> {
        for (entity, (seq, link)) in std::mem::take(&mut self.anchors) {
            self.put_anchor(entity, seq, link, p, path)?;
        }
        Ok(())
    }

    fn put_anchor(
        &mut self,
        entity: u32,
        seq: u64,
        link: [u8; 8],
        p: &Parsed<'_>,
        path: &Path,
    ) -> Result<(), CompactError> {
        let (out, defined) = (&mut self.bytes, &mut self.defined_e);
        define(out, frame::ENTITY_DEF, entity, &p.entities, defined, path)?;
        frame::put_anchor(&mut self.bytes, entity, seq, link);
        Ok(())
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
            link: None,
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
            None,
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
                Part::Anchor(e, s, _) => format!("anchor{e}@{s}"),
                Part::Start(_) => "start".into(),
                Part::Key(s, k) => format!("key{k}@{s}"),
            })
            .collect()
    }

    #[test]
    fn the_keys_of_removed_events_stay_after_their_gap_while_the_store_remembers_them() {
        let keyed = |seq, entity| EventHeader {
            key: Some(u128::from(seq) * 100),
            ..event(seq, entity, false)
        };
        let bytes = segment(&[keyed(1, 1), keyed(2, 1), keyed(3, 0), keyed(4, 1)]);
        let x = Path::new("x");
        let (out, _) = rewrite(
            &bytes,
            Base::default(),
            x,
            |h| h.entity == 1,
            |k, _| k != 200,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            parts(&out),
            ["gap1-2", "key100@1", "e3", "gap4-4", "key400@4"]
        );
        // A second compaction carries the kept keys on, and drops one no longer remembered.
        let (again, _) = rewrite(&out, Base::default(), x, |h| h.seq == 3, |k, _| k != 400)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parts(&again), ["gap1-4", "key100@1", "key300@3"]);
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
        let (out, removed) = rewrite(
            &bytes,
            Base::default(),
            Path::new("x"),
            |h| h.entity == 1,
            |_, _| true,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(removed, vec![2, 4, 5]);
        assert_eq!(parts(&out), ["e1", "gap2-2", "e3", "gap4-5", "e6"]);
        let again = rewrite(
            &out,
            Base::default(),
            Path::new("x"),
            |h| h.seq == 3,
            |_, _| true,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parts(&again.0), ["e1", "gap2-5", "e6"]);
    }

    #[test]
    fn a_kept_event_is_re_encoded_to_the_same_frame_bytes() {
        let bytes = segment(&[event(1, 0, false), event(2, 1, false)]);
        let (out, _) = rewrite(
            &bytes,
            Base::default(),
            Path::new("x"),
            |h| h.seq == 2,
            |_, _| true,
        )
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

    use proptest::prelude::*;

    /// Events 1..=n over entities 0/1, with batch flags from `batches`.
    fn events(n: u64, entities: &[bool], batches: &[bool]) -> Vec<EventHeader> {
        (1..=n)
            .map(|seq| {
                let i = (seq - 1) as usize;
                event(seq, u32::from(entities[i]), batches[i] && seq < n)
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Rewriting twice with any removals keeps exactly the kept events in order, each
        /// re-encoded to the bytes it had, records every removed sequence in gaps (merged,
        /// in order, without overlap), and keeps batches whole among the kept events.
        #[test]
        fn rewrites_keep_exactly_the_survivors_and_record_every_removal(
            n in 1u64..60,
            entities in proptest::collection::vec(any::<bool>(), 60),
            batches in proptest::collection::vec(any::<bool>(), 60),
            first in proptest::collection::vec(any::<bool>(), 60),
            second in proptest::collection::vec(any::<bool>(), 60),
        ) {
            let evs = events(n, &entities, &batches);
            let bytes = segment(&evs);
            let drop1 = |h: &EventHeader| first[(h.seq - 1) as usize];
            let drop2 = |h: &EventHeader| second[(h.seq - 1) as usize];
            let (once, _) = rewrite(&bytes, Base::default(), Path::new("x"), drop1, |_, _| true)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let (twice, _) = rewrite(&once, Base::default(), Path::new("x"), drop2, |_, _| true)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let p = parse(&twice, Base::default(), Path::new("x"))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut covered = Vec::new();
            let mut last_gap_end = 0;
            for part in &p.parts {
                match part {
                    Part::Event(h, payload, _) => {
                        prop_assert!(!drop1(h) && !drop2(h));
                        prop_assert_eq!(*payload, &b"payload"[..]);
                        let orig = evs[(h.seq - 1) as usize];
                        prop_assert_eq!((h.entity, h.ts, h.correlation), (orig.entity, orig.ts, orig.correlation));
                        covered.push(h.seq);
                    }
                    Part::Gap(f, l) => {
                        prop_assert!(*f > last_gap_end && f <= l);
                        last_gap_end = *l;
                        covered.extend(*f..=*l);
                    }
                    Part::Anchor(..) | Part::Start(_) | Part::Key(..) => {}
                }
            }
            let all: Vec<u64> = (1..=n).collect();
            prop_assert_eq!(covered, all, "every sequence is kept or in a gap, in order");
            let kept: Vec<&EventHeader> = p.parts.iter().filter_map(|x| match x {
                Part::Event(h, ..) => Some(h),
                _ => None,
            }).collect();
            if let Some(last) = kept.last() {
                prop_assert!(!last.batch_continues, "the last kept event closes its batch");
            }
        }
    }
}
