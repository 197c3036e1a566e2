//! Helpers shared by the integration tests: the reference workload and small utilities.
#![allow(dead_code)]

use batpak::prelude::*;
use serde::{Deserialize, Serialize};

/// The reference payload: 64 bytes of pseudo-random data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

pub use batpak::workload::Rng;

pub fn reference_event(rng: &mut Rng) -> (Coordinate, EventKind, Reference) {
    let coord = Coordinate::new(
        format!("order:{}", rng.below(10_000)),
        format!("tenant-{}", rng.below(8)),
    );
    let kind = EventKind::new(1, (rng.below(4) + 1) as u8);
    (
        coord,
        kind,
        Reference {
            data: rng.bytes(64),
        },
    )
}

pub fn small_config(dir: &std::path::Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    c.segment_max_bytes = 16 * 1024;
    c
}

/// A projection of an entity: its events and the sum of their `i64` payloads.
pub struct Sum;

impl batpak::projection::Projection for Sum {
    type State = (u64, i64);
    const NAME: &'static str = "sum";
    const VERSION: u32 = 1;
    fn apply(state: &mut (u64, i64), event: &Event) {
        state.0 += 1;
        state.1 += event.payload::<i64>().unwrap_or(0);
    }
}

pub type TestResult = Result<(), Box<dyn std::error::Error>>;
pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Appends `payload` at `coord` as a batch of three copies (`batch`) or as one event,
/// waiting for the sync when `durable`; the receipts.
pub fn append_raw_mixed(
    store: &Store,
    coord: &Coordinate,
    payload: &[u8],
    batch: bool,
    durable: bool,
) -> Result<Vec<AppendReceipt>, AppendError> {
    let item = || BatchItem::raw(coord, EventKind::new(1, 1), payload.to_vec());
    if batch {
        return store.append_batch((0..3).map(|_| item()).collect(), durable);
    }
    let opts = if durable {
        AppendOptions::default().durable()
    } else {
        AppendOptions::default()
    };
    store.append_raw(item().with_options(opts)).map(|r| vec![r])
}

/// The oracle every reliability harness checks a recovered store against.
pub mod oracle;

/// The I/O-error sweep driver and its oracle.
#[cfg(feature = "testkit")]
pub mod sweep;
