//! The writer's part of the hash chains: each event's link from its entity's previous one,
//! the active segment's running chain value, and the values a seal records.

use crate::codec::chain::{self, Content, Linked};
use crate::codec::frame::{self, SealChain};

use super::super::chain::{segment_value, SegChain};
use super::super::command::Item;
use super::super::index::{Index, NONE};
use super::super::query::locate;
use super::super::segment;
use super::Writer;

impl Writer {
    /// Whether the active segment is chained; writes its chain-start frame first when it
    /// holds no frame yet. Called before anything else is staged into a segment.
    pub(super) fn begin_chain(&mut self) -> bool {
        let Some(a) = self.active.as_mut() else {
            return false;
        };
        match a.chain {
            SegChain::Off => false,
            SegChain::Starts(prev) => {
                frame::put_chain_start(&mut self.buf, &prev);
                a.chain = SegChain::Running(chain::start(&prev, a.no, a.base.seq, a.base.ts));
                true
            }
            SegChain::Running(_) | SegChain::Unread => true,
        }
    }

    /// The link of a new event of `entity`, remembered as the entity's latest.
    pub(super) fn link(
        &mut self,
        idx: &Index,
        entity: u32,
        e: &Linked,
        item: &Item,
    ) -> Result<[u8; 8], String> {
        let prev = self.entity_prev(idx, entity)?;
        let content = Content {
            entity: item.entity().as_bytes(),
            scope: item.scope().as_bytes(),
            bypass: item.bypass().map(str::as_bytes),
            payload: item.payload(),
        };
        let link = chain::link(&prev, e, &content);
        if let Some(slot) = self.links.get_mut(entity as usize) {
            *slot = Some(link);
        }
        if let Some(a) = self.active.as_mut() {
            if let SegChain::Running(v) = a.chain {
                a.chain = SegChain::Running(chain::after_event(&v, e.seq, &link));
            }
        }
        Ok(link)
    }

    /// The link of the entity's latest event or anchor: remembered, or looked up once
    /// (the index's last event of the entity, or a later anchor a compaction left).
    fn entity_prev(&mut self, idx: &Index, entity: u32) -> Result<[u8; 8], String> {
        let i = entity as usize;
        if self.links.len() <= i {
            self.links.resize(i + 1, None);
        }
        if let Some(l) = self.links[i] {
            return Ok(l);
        }
        let tail = idx.entities.lists.get(i).map_or(NONE, |l| l.tail);
        let from_event = match tail {
            NONE => None,
            pos => {
                let link = self
                    .shared
                    .read_link(&locate(idx, pos))
                    .map_err(|e| format!("read the entity's last event for its link: {e}"))?;
                Some((idx.seq_at(pos), link.unwrap_or([0; 8])))
            }
        };
        let anchor = idx.anchors.get(&entity).copied();
        let prev = match (from_event, anchor) {
            (Some(e), Some(a)) => {
                if a.0 > e.0 {
                    a.1
                } else {
                    e.1
                }
            }
            (Some(e), None) => e.1,
            (None, Some(a)) => a.1,
            (None, None) => [0; 8],
        };
        self.links[i] = Some(prev);
        Ok(prev)
    }

    /// The chain values the active segment's seal records (`None` for a segment of an
    /// older format). A reopened segment's value is read from its file (flushed first).
    pub(super) fn seal_chain(&mut self) -> Result<Option<SealChain>, String> {
        if !self.begin_chain() {
            return Ok(None);
        }
        if matches!(self.active.as_ref().map(|a| a.chain), Some(SegChain::Unread)) {
            self.flush()?;
        }
        let Some(a) = self.active.as_mut() else {
            return Ok(None);
        };
        let value = match a.chain {
            SegChain::Running(v) => v,
            _ => {
                let path = segment::path(&self.shared.dir, a.no);
                let view = self
                    .shared
                    .fs
                    .map(&path)
                    .map_err(|e| format!("read {} for its chain value: {e}", path.display()))?;
                let bytes = view.bytes().get(..a.len as usize).unwrap_or(view.bytes());
                segment_value(bytes, a.base, a.no)
            }
        };
        a.chain = SegChain::Running(value);
        Ok(Some(SealChain { value, out: value }))
    }
}
