//! Staging: validating a command's items, then framing and indexing them.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::codec::chain::Linked;
use crate::codec::frame::{self, EventHeader};
use crate::codec::header::HEADER_LEN;
use crate::error::AppendError;
use crate::event::{AppendReceipt, EventId, EventKind, Expected, MAX_NAME_BYTES};

use super::super::command::Item;
use super::super::index::{Dict, Index, NewEvent};
use super::{BitSet, Plan, StageError, Writer};

impl Writer {
    /// Validates every item, then frames and indexes them, pushing a receipt per item to
    /// `receipts`; all or nothing (a rejection pushes nothing).
    pub(super) fn stage(
        &mut self,
        idx: &mut Index,
        items: &[Item],
        receipts: &mut Vec<AppendReceipt>,
    ) -> Result<(), StageError> {
        if items.is_empty() {
            return Err(AppendError::EmptyBatch.into());
        }
        // The plan buffer is reused across commands: no allocation per append.
        let mut plans = std::mem::take(&mut self.plans);
        let staged = self.stage_planned(idx, items, &mut plans, receipts);
        self.plans = plans;
        staged
    }

    fn stage_planned(
        &mut self,
        idx: &mut Index,
        items: &[Item],
        plans: &mut Vec<Plan>,
        receipts: &mut Vec<AppendReceipt>,
    ) -> Result<(), StageError> {
        self.plan(idx, items, plans)?;
        self.prepare_links(idx, items, plans)?;
        self.ensure_room(idx, items, plans)?;
        let last_new = plans.iter().rposition(|p| matches!(p, Plan::New { .. }));
        for (i, (item, plan)) in items.iter().zip(plans.iter()).enumerate() {
            let receipt = match *plan {
                Plan::Duplicate(seq) => self.duplicate_receipt(idx, seq),
                Plan::New {
                    entity,
                    ts,
                    cause,
                    correlation,
                } => {
                    let names = self.define_names(idx, item, entity);
                    let placed = Placed {
                        ts,
                        cause,
                        correlation,
                        batch_continues: Some(i) != last_new,
                    };
                    self.put_event(idx, item, names, placed)?
                }
            };
            receipts.push(receipt);
        }
        Ok(())
    }

    pub(super) fn plan(
        &self,
        idx: &Index,
        items: &[Item],
        plans: &mut Vec<Plan>,
    ) -> Result<(), StageError> {
        plans.clear();
        let mut staged_entities: Vec<(&str, u64)> = Vec::new();
        let batch = items.len() > 1;
        let mut seq = self.next_seq;
        for item in items {
            check_name("entity", item.entity())?;
            check_name("scope", item.scope())?;
            if item.kind.is_system() && !item.system {
                return Err(AppendError::InvalidCoordinate(format!(
                    "kind {} is reserved: category {} belongs to the store (tombstones)",
                    item.kind,
                    EventKind::SYSTEM
                ))
                .into());
            }
            if let Some(seq) = item.options().idempotency_key.and_then(|k| idx.keys.get(k)) {
                plans.push(Plan::Duplicate(seq));
                continue;
            }
            if item.options().expected.is_some() {
                let actual = staged_entities
                    .iter()
                    .rev()
                    .find(|(e, _)| *e == item.entity())
                    .map(|(_, s)| *s)
                    .or_else(|| {
                        idx.entities
                            .id(item.entity())
                            .and_then(|e| idx.entity_last_seq(e))
                    });
                check_expected(item.entity(), item.options().expected, actual)?;
            }
            let (cause, correlation) = self.resolve_causal(idx, item)?;
            let ts = self.now;
            plans.push(Plan::New {
                entity: None, // looked up by `prepare_links`
                ts,
                cause,
                correlation,
            });
            if batch {
                staged_entities.push((item.entity(), seq));
            }
            seq += 1;
        }
        Ok(())
    }

    pub(super) fn resolve_causal(
        &self,
        idx: &Index,
        item: &Item,
    ) -> Result<(Option<u64>, Option<u64>), AppendError> {
        let store = self.shared.store_id;
        let find = |id: EventId| {
            (id.store() == store)
                .then(|| idx.pos_of(id.sequence()))
                .flatten()
        };
        let cause = match item.options().causation {
            None => None,
            Some(id) => Some(find(id).ok_or_else(|| AppendError::UnknownCause(id.to_string()))?),
        };
        let corr_pos = match item.options().correlation {
            Some(id) => {
                Some(find(id).ok_or_else(|| AppendError::UnknownCorrelation(id.to_string()))?)
            }
            None => cause,
        };
        let correlation = corr_pos.map(|p| idx.seq_at(idx.corr_root(p)));
        Ok((cause.map(|p| idx.seq_at(p)), correlation))
    }

    /// Rolls to a new segment when the items would not fit in the active one.
    pub(super) fn ensure_room(
        &mut self,
        idx: &mut Index,
        items: &[Item],
        plans: &[Plan],
    ) -> Result<(), StageError> {
        let need: u64 = items
            .iter()
            .zip(plans)
            .filter(|(_, p)| matches!(p, Plan::New { .. }))
            .map(|(it, _)| frame_bound(it))
            .sum();
        if need == 0 {
            return Ok(());
        }
        let max = self.cfg.segment_max_bytes;
        if need + HEADER_LEN as u64 + 16 > max {
            return Err(AppendError::TooLarge { size: need, max }.into());
        }
        let used = self.active.as_ref().map(|a| a.len + self.buf.len() as u64);
        if used.is_none_or(|u| u + need > max) {
            self.roll(idx).map_err(StageError::Io)?;
        }
        Ok(())
    }

    pub(super) fn put_event(
        &mut self,
        idx: &mut Index,
        item: &Item,
        (entity, scope): (u32, u32),
        placed: Placed,
    ) -> Result<AppendReceipt, StageError> {
        let Placed {
            ts,
            cause,
            correlation,
            batch_continues,
        } = placed;
        let seq = self.next_seq;
        let correlation = correlation.unwrap_or(seq);
        let linked = Linked {
            seq,
            ts,
            kind: item.kind.0,
            cause,
            correlation,
            key: item.options().idempotency_key,
        };
        let version = self.active.as_ref().and_then(|a| a.chain.link_version());
        let link = match version {
            Some(version) => Some(
                self.link(idx, (entity, version), &linked, item)
                    .map_err(StageError::Io)?,
            ),
            None => None,
        };
        let a = self
            .active
            .as_ref()
            .ok_or_else(|| StageError::Io("no active segment to write to".into()))?;
        self.next_seq += 1;
        let off = a.len + self.buf.len() as u64;
        let h = EventHeader {
            seq,
            ts,
            kind: item.kind.0,
            entity,
            scope,
            cause,
            correlation,
            key: item.options().idempotency_key,
            batch_continues,
            link,
        };
        frame::put_event(
            &mut self.buf,
            &a.base,
            &h,
            item.bypass().map(str::as_bytes),
            item.payload(),
        );
        let no = a.no;
        idx.push(NewEvent {
            seq,
            seg: no,
            off: off as u32,
            entity,
            scope,
            kind: item.kind.0,
            cause,
            correlation: h.correlation,
            key: h.key,
        });
        note_event(idx, no, seq);
        if self.shared.has_subscribers() {
            self.publish
                .push(Arc::new(self.shared.event_from(&h, item)));
        }
        Ok(AppendReceipt {
            id: EventId::new(self.shared.store_id, seq),
            sequence: seq,
            segment: u64::from(no),
            offset: off,
            timestamp_us: ts,
            durable: false,
            deduplicated: false,
        })
    }

    /// Dictionary ids of the item's names (the entity's is `known` when the plan found it),
    /// writing a definition frame for each name not yet defined in the active segment. The
    /// segment's chain-start frame goes first, if it has none yet.
    pub(super) fn define_names(
        &mut self,
        idx: &mut Index,
        item: &Item,
        known: Option<u32>,
    ) -> (u32, u32) {
        self.begin_chain();
        let (entities, scopes) = match self.active.as_mut() {
            Some(a) => (Some(&mut a.entities), Some(&mut a.scopes)),
            None => (None, None),
        };
        let buf = &mut self.buf;
        let entity = define(
            &mut idx.entities,
            entities,
            buf,
            (frame::ENTITY_DEF, item.entity()),
            known,
        );
        let scope = define(
            &mut idx.scopes,
            scopes,
            buf,
            (frame::SCOPE_DEF, item.scope()),
            None,
        );
        (entity, scope)
    }

    pub(super) fn duplicate_receipt(&self, idx: &Index, seq: u64) -> AppendReceipt {
        let (segment, offset, ts) = match idx.pos_of(seq) {
            Some(pos) => {
                let loc = super::super::query::locate(idx, pos);
                let ts = self
                    .shared
                    .read_located(&loc)
                    .map(|e| e.timestamp_us)
                    .unwrap_or(0);
                (u64::from(loc.seg), u64::from(loc.off), ts)
            }
            None => (0, 0, 0),
        };
        AppendReceipt {
            id: EventId::new(self.shared.store_id, seq),
            sequence: seq,
            segment,
            offset,
            timestamp_us: ts,
            durable: seq <= self.shared.durable_seq.load(Ordering::Acquire),
            deduplicated: true,
        }
    }
}

/// Where the plan put a new event: its time, causal links and batch flag.
pub(super) struct Placed {
    ts: u64,
    cause: Option<u64>,
    correlation: Option<u64>,
    batch_continues: bool,
}

/// An upper bound of an item's bytes in a segment: its event frame with the widest ids and
/// its link, plus definitions of both names and a segment's chain-start frame.
fn frame_bound(item: &Item) -> u64 {
    let names = item.entity().len() + item.scope().len() + 2 * (1 + 5 + frame::MAX_OVERHEAD);
    let chain_start = 33 + frame::MAX_OVERHEAD;
    let header = frame::MAX_OVERHEAD + 2 + 4 * 10 + 3 + 2 * 5 + 16 + 8 + chain_start;
    let reason = item.bypass().map_or(0, |r| r.len() + 10);
    (item.payload().len() + header + names + reason) as u64
}

fn check_name(what: &str, name: &str) -> Result<(), AppendError> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(AppendError::InvalidCoordinate(format!(
            "{what} name must be 1..={MAX_NAME_BYTES} bytes, got {}",
            name.len()
        )));
    }
    Ok(())
}

fn check_expected(
    entity: &str,
    expected: Option<Expected>,
    actual: Option<u64>,
) -> Result<(), AppendError> {
    let want = match expected {
        None => return Ok(()),
        Some(Expected::NoEvents) => None,
        Some(Expected::Sequence(s)) => Some(s),
    };
    if want == actual {
        return Ok(());
    }
    Err(AppendError::Conflict {
        entity: entity.to_string(),
        expected: want,
        actual,
    })
}

fn note_event(idx: &mut Index, seg: u32, seq: u64) {
    if let Some(m) = idx.segments.get_mut(&seg) {
        m.note(seq);
    }
}

/// The dictionary id of `name`, writing its definition frame the first time the active
/// segment (whose defined ids are `defined`) uses it.
fn define(
    dict: &mut Dict,
    defined: Option<&mut BitSet>,
    buf: &mut Vec<u8>,
    (ty, name): (u8, &str),
    known: Option<u32>,
) -> u32 {
    let id = known
        .or_else(|| dict.id(name))
        .unwrap_or_else(|| dict.intern(name));
    if let Some(d) = defined.filter(|d| !d.contains(id)) {
        frame::put_def(buf, ty, id, name.as_bytes());
        d.insert(id);
    }
    id
}
