//! Running the gates of a gated store on every write path, and recording decisions.

use std::cell::RefCell;
use std::time::Duration;

use crate::error::AppendError;
use crate::event::{AppendOptions, AppendReceipt, Coordinate, EventKind, Expected};
use crate::gate::{Decision, DecisionLog, Outcome, Pipeline, Proposal, StoreView};

use super::command::Item;
use super::Store;

/// What to log once the gated append was written.
pub(crate) struct Allowed {
    elapsed: Duration,
    entity: String,
    kind: EventKind,
}

impl Store {
    /// The decision log (empty for a store without gates).
    pub fn decisions(&self) -> &DecisionLog {
        &self.decisions
    }

    /// The pipeline that turns proposals into sealed receipts.
    pub fn pipeline(&self) -> Pipeline<'_> {
        Pipeline { store: self }
    }

    /// The sequence of an entity's latest written event (`None` = no events).
    pub fn entity_sequence(&self, entity: &str) -> Option<u64> {
        let idx = self.shared.index();
        let e = idx.entities.id(entity)?;
        match idx.entity_last_seq(e) {
            Some(seq) if seq <= idx.visible => Some(seq),
            // The latest is staged but not written yet: the newest written one.
            _ => idx.visible_entity_seqs(e).last(),
        }
    }

    /// The store's clock, in microseconds since the epoch.
    pub(crate) fn now_micros(&self) -> u64 {
        self.shared.now_micros()
    }

    pub(crate) fn gate_count(&self) -> usize {
        self.gates.as_ref().map_or(0, |g| g.len())
    }

    /// Writes around the gates, recording `reason` durably in the event (its bypass flag
    /// and reason) and in the decision log.
    pub fn bypass<T: serde::Serialize + ?Sized>(
        &self,
        reason: &str,
        coord: &Coordinate,
        kind: EventKind,
        payload: &T,
        opts: AppendOptions,
    ) -> Result<AppendReceipt, AppendError> {
        if reason.trim().is_empty() {
            return Err(AppendError::InvalidCoordinate(
                "a bypass needs a reason".into(),
            ));
        }
        let mut item = super::BatchItem::new(coord, kind, payload)?.with_options(opts);
        item.set_bypass(Some(reason.to_string()));
        let receipt = self.submit_ungated(item)?.wait()?;
        self.decisions.record(Decision {
            at_us: self.shared.now_micros(),
            outcome: Outcome::Bypass,
            gate: None,
            code: None,
            message: reason.to_string(),
            elapsed: Duration::ZERO,
            event: Some(receipt.id),
            entity: coord.entity.clone(),
            kind,
        });
        Ok(receipt)
    }

    /// Runs the gates on `item`; on a denial, logs it and returns the error.
    pub(crate) fn admit(&self, mut item: Item) -> Result<(Item, Option<Allowed>), AppendError> {
        let Some(gates) = self.gates.clone() else {
            return Ok((item, None));
        };
        item.set_bypass(None);
        let view = StoreView {
            store: self,
            observed: RefCell::new(Vec::new()),
        };
        let proposal = Proposal { item };
        let verdict = gates.evaluate(&proposal, &view);
        let mut item = proposal.item;
        self.decisions.count_gates(&verdict.ran);
        if !verdict.denials.is_empty() {
            for d in &verdict.denials {
                self.decisions.record(Decision {
                    at_us: self.shared.now_micros(),
                    outcome: Outcome::Deny,
                    gate: Some(d.gate.clone()),
                    code: Some(d.code.clone()),
                    message: d.message.clone(),
                    elapsed: verdict.elapsed,
                    event: None,
                    entity: item.entity().to_string(),
                    kind: item.kind,
                });
            }
            return Err(AppendError::Denied(verdict.denials));
        }
        if item.options().expected.is_none() {
            let seen = view.observed.borrow();
            if let Some((_, seq)) = seen.iter().find(|(e, _)| *e == item.entity()) {
                item.options_mut().expected =
                    Some(seq.map_or(Expected::NoEvents, Expected::Sequence));
            }
        }
        let allowed = Allowed {
            elapsed: verdict.elapsed,
            entity: item.entity().to_string(),
            kind: item.kind,
        };
        Ok((item, Some(allowed)))
    }

    /// Logs an allowed proposal (with its event id when it is known).
    pub(crate) fn log_allowed(&self, allowed: Option<Allowed>, event: Option<&AppendReceipt>) {
        let Some(a) = allowed else { return };
        self.decisions.record(Decision {
            at_us: self.shared.now_micros(),
            outcome: Outcome::Allow,
            gate: None,
            code: None,
            message: format!("allowed by {} gates", self.gate_count()),
            elapsed: a.elapsed,
            event: event.map(|r| r.id),
            entity: a.entity,
            kind: a.kind,
        });
    }

    /// Gates, writes and waits: the path of `append`, `append_with` and the pipeline.
    pub(crate) fn append_gated(&self, item: Item) -> Result<AppendReceipt, AppendError> {
        if self.gates.is_none() {
            return self.enqueue(item, true)?.wait();
        }
        let (item, allowed) = self.admit(item)?;
        let receipt = self.enqueue(item, true)?.wait()?;
        self.log_allowed(allowed, Some(&receipt));
        Ok(receipt)
    }
}
