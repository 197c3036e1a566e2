//! Rewriting one sealed segment without some of its events: kept frames re-encoded to the
//! same bytes, removed runs recorded as gap frames, dictionary entries written again for the
//! names still used.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::codec::frame::{self, Base, EventHeader, Frame};
use crate::codec::header::HEADER_LEN;
use crate::error::CompactError;

use super::super::segment;

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
pub(super) fn rewrite(
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
            let (once, _) = rewrite(&bytes, Base::default(), Path::new("x"), drop1)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let (twice, _) = rewrite(&once, Base::default(), Path::new("x"), drop2)
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
                }
            }
            let all: Vec<u64> = (1..=n).collect();
            prop_assert_eq!(covered, all, "every sequence is kept or in a gap, in order");
            let kept: Vec<&EventHeader> = p.parts.iter().filter_map(|x| match x {
                Part::Event(h, ..) => Some(h),
                Part::Gap(..) => None,
            }).collect();
            if let Some(last) = kept.last() {
                prop_assert!(!last.batch_continues, "the last kept event closes its batch");
            }
        }
    }
}
