//! # batpak
//!
//! A synchronous event store: append-only segment files written by one writer thread fed
//! through a bounded channel, group commit, causal metadata (causation / correlation) in
//! every event header, and an in-memory index rebuilt from a checkpoint on open. No async
//! runtime. Everything is tuned through [`StoreConfig`].
//!
//! ```
//! use batpak::prelude::*;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(StoreConfig::new(dir.path()))?;
//! let order = Coordinate::new("order:42", "tenant-1");
//! let placed = store.append(&order, EventKind::new(1, 1), &"placed")?;
//! let paid = store.append_with(&order, EventKind::new(1, 2), &"paid",
//!     AppendOptions::default().caused_by(placed.id))?;
//! assert_eq!(store.stream("order:42")?.len(), 2);
//! assert_eq!(store.get(paid.id)?.and_then(|e| e.causation), Some(placed.id));
//! store.close()?;
//! # Ok(())
//! # }
//! ```
//!
//! See `docs/design.md` for the file layout, the frame format, the durability contract and
//! the recovery rules.

pub mod codec;
pub mod config;
pub mod error;
pub mod event;
pub mod fs;
pub mod gate;
pub mod layout;
pub mod process;
pub mod projection;
pub mod store;
pub mod typed;

pub use config::{Clock, RestartPolicy, StoreConfig, SyncMode};
pub use error::{
    AppendError, CompactError, ConfigError, Error, OpenError, PayloadError, ReadError, Result,
    SnapshotError, SyncError,
};
pub use event::{
    AppendOptions, AppendReceipt, Coordinate, Event, EventId, EventKind, Expected, Region,
};
pub use store::{
    BatchItem, CausalNode, CausalTree, CheckpointStatus, CloseReport, OpenOptions, RecoveryReport,
    RecvError, Stats, Store, Subscription, Ticket, TrySubmitError, Walk, WalkError, WalkLimits,
};

/// Everything a typical user needs: `use batpak::prelude::*;`.
pub mod prelude {
    pub use crate::config::{Clock, RestartPolicy, StoreConfig, SyncMode};
    pub use crate::error::{AppendError, Error, OpenError, ReadError, SyncError};
    pub use crate::event::{
        AppendOptions, AppendReceipt, Coordinate, Event, EventId, EventKind, Expected, Region,
    };
    pub use crate::gate::{Denial, Evaluation, Gate, GateSet, Proposal, StoreView};
    pub use crate::store::{
        BatchItem, CausalTree, CloseReport, Consumer, ConsumerError, OpenOptions, RecvError, Store,
        Subscription, Ticket, TrySubmitError, WalkError, WalkLimits,
    };
    pub use crate::typed::{EventPayload, Typed, Upcast};
}
