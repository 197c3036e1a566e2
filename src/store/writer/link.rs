//! The writer's part of the hash chains: each event's link from its entity's previous one,
//! the active segment's running chain value, and the values a seal records.

use crate::codec::chain::{self, Content, Linked};
use crate::codec::frame::{self, SealChain};

use super::super::chain::SegChain;
use super::super::command::Item;
use super::super::index::{Index, NONE};
use super::super::query::locate;
use super::{Plan, StageError, Writer};
use crate::error::AppendError;

impl Writer {
    /// Whether the active segment is chained; writes its chain-start frame first when it
    /// holds no frame yet. Called before anything else is staged into a segment.
    pub(super) fn begin_chain(&mut self) -> bool {
        let Some(a) = self.active.as_mut() else {
            return false;
        };
        match &mut a.chain {
            SegChain::Off => false,
            SegChain::Starts { prev, header } => {
                let prev = *prev;
                frame::put_chain_start(&mut self.buf, &prev);
                a.chain = match header.take() {
                    Some(hash) => SegChain::Hashed(hash),
                    None => SegChain::Stepped(chain::start(&prev, a.no, a.base.seq, a.base.ts)),
                };
                true
            }
            SegChain::Stepped(_) | SegChain::Hashed(_) => true,
        }
    }

    /// Looks up, before anything of the command is staged, the previous link of every
    /// entity it appends to, so that a failed read rejects the command (nothing staged,
    /// the store goes on) instead of failing the writer halfway through a batch.
    pub(super) fn prepare_links(
        &mut self,
        idx: &Index,
        items: &[Item],
        plans: &mut [Plan],
    ) -> Result<(), StageError> {
        for (item, plan) in items.iter().zip(plans.iter_mut()) {
            if let Plan::New { entity, .. } = plan {
                *entity = idx.entities.id(item.entity());
                if let Some(id) = *entity {
                    self.entity_prev(idx, id)
                        .map_err(|e| StageError::Reject(AppendError::ChainRead(e)))?;
                }
            }
        }
        Ok(())
    }

    /// The link of a new event of `entity` in a segment of format `version`, remembered as
    /// the entity's latest.
    pub(super) fn link(
        &mut self,
        idx: &Index,
        (entity, version): (u32, u16),
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
        let link = chain::link(version, &prev, e, &content);
        if let Some(slot) = self.links.get_mut(entity as usize) {
            *slot = Some(link);
        }
        if let Some(SegChain::Stepped(v)) = self.active.as_mut().map(|a| &mut a.chain) {
            *v = chain::after_event(v, e.seq, &link);
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
    /// older format).
    pub(super) fn seal_chain(&mut self) -> Option<SealChain> {
        if !self.begin_chain() {
            return None;
        }
        // Format 4: the file's bytes up to the seal, the staged ones included.
        let value = match &self.active.as_ref()?.chain {
            SegChain::Stepped(value) => *value,
            SegChain::Hashed(hash) => {
                let mut hash = (**hash).clone();
                hash.update(&self.buf);
                hash.value()
            }
            SegChain::Off | SegChain::Starts { .. } => return None,
        };
        Some(SealChain { value, out: value })
    }
}
