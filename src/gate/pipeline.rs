//! `Proposal` → `Pipeline` → `Receipt`.

use crate::error::AppendError;
use crate::event::{AppendReceipt, EventId};
use crate::store::Store;

use super::Proposal;

/// Turns proposals into gated receipts. Get one from [`Store::pipeline`].
#[derive(Debug, Clone, Copy)]
pub struct Pipeline<'a> {
    pub(crate) store: &'a Store,
}

/// Proof that a proposal passed every gate of its store and was written.
///
/// It has no public constructor: the only way to hold one is through a [`Pipeline`].
///
/// ```compile_fail,E0451
/// use batpak::gate::Receipt;
/// use batpak::AppendReceipt;
///
/// fn forge(receipt: AppendReceipt) -> Receipt {
///     Receipt { receipt, gates: 0 } // the fields are private: this does not compile
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    receipt: AppendReceipt,
    gates: usize,
}

impl Receipt {
    /// The append receipt.
    pub fn receipt(&self) -> &AppendReceipt {
        &self.receipt
    }

    /// The event id.
    pub fn id(&self) -> EventId {
        self.receipt.id
    }

    /// How many gates passed it.
    pub fn gates_passed(&self) -> usize {
        self.gates
    }
}

impl Pipeline<'_> {
    /// Evaluates the store's gates on `proposal` and writes it if they all allow it.
    pub fn submit(&self, proposal: Proposal) -> Result<Receipt, AppendError> {
        let gates = self.store.gate_count();
        let receipt = self.store.append_gated(proposal.item)?;
        Ok(Receipt { receipt, gates })
    }
}
