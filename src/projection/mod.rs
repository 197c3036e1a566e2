//! Projections: fold an entity's events into a state, cached in LMDB.
//!
//! ```
//! use batpak::prelude::*;
//! use batpak::projection::{Freshness, Projection};
//!
//! #[derive(Default, serde::Serialize, serde::Deserialize)]
//! struct Balance { cents: i64 }
//!
//! struct Balances;
//! impl Projection for Balances {
//!     type State = Balance;
//!     const NAME: &'static str = "balances";
//!     const VERSION: u32 = 1;
//!     fn apply(state: &mut Balance, event: &Event) {
//!         state.cents += event.payload::<i64>().unwrap_or(0);
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(StoreConfig::new(dir.path()))?;
//! let acct = Coordinate::new("acct:1", "bank");
//! store.append(&acct, EventKind::new(2, 1), &500i64)?;
//! store.append(&acct, EventKind::new(2, 1), &-120i64)?;
//! assert_eq!(store.project::<Balances>("acct:1", Freshness::Latest)?.cents, 380);
//! # Ok(())
//! # }
//! ```

pub mod behind;
pub(crate) mod cache;
#[cfg(feature = "testkit")]
pub mod faults;
mod lmdb;

use std::sync::atomic::Ordering;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ReadError;
use crate::event::{Event, Region};
use crate::store::Store;

pub use cache::{CacheStats, CACHE_DIR};

/// A fold of one entity's events into a state.
pub trait Projection {
    /// The state; `Default` is the state before any event.
    type State: Serialize + DeserializeOwned + Default;
    /// The name, unique per store (part of the cache key).
    const NAME: &'static str;
    /// Bump it when `apply` or `State` change: cached states of other versions are ignored.
    const VERSION: u32;
    /// Applies one event (in sequence order).
    fn apply(state: &mut Self::State, event: &Event);
}

/// How fresh a projected state must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Every written event applied.
    Latest,
    /// A cached state may miss at most this many of the entity's newest events.
    AtMostBehind(u64),
    /// Any cached state will do (computed when there is none).
    AnyCached,
}

impl Store {
    /// The state of projection `P` for `entity`, as fresh as `freshness` asks.
    pub fn project<P: Projection>(
        &self,
        entity: &str,
        freshness: Freshness,
    ) -> Result<P::State, ReadError> {
        let cache = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Read before the fold: a compaction forgetting states meanwhile makes it stale.
        let generation = cache.as_ref().map_or(0, |c| c.generation());
        let latest = self.entity_sequence(entity).unwrap_or(0);
        let cached = cache
            .as_ref()
            .and_then(|c| c.get(P::NAME, P::VERSION, entity))
            .and_then(|c| within_log(cache.as_ref(), c, latest));
        let (mut state, from) =
            match cached.and_then(|c| decode::<P>(&c.state).map(|s| (s, c.last_seq))) {
                Some((s, seq)) if self.fresh_enough(entity, seq, latest, freshness) => {
                    if let Some(c) = cache.as_ref() {
                        c.counters.hits.fetch_add(1, Ordering::Relaxed);
                    }
                    return Ok(s);
                }
                Some((s, seq)) => (s, seq),
                None => (P::State::default(), 0),
            };
        let region = Region::entity(entity).with_sequences(from + 1..=latest);
        for e in self.query_iter(&region) {
            P::apply(&mut state, &e?);
        }
        if let Some(c) = cache.as_ref() {
            c.counters.misses.fetch_add(1, Ordering::Relaxed);
            match crate::store::encode_payload(&state) {
                Some(bytes) => c.put(P::NAME, P::VERSION, entity, latest, &bytes, generation),
                None => {
                    c.counters.fallbacks.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Ok(state)
    }

    fn fresh_enough(&self, entity: &str, cached: u64, latest: u64, f: Freshness) -> bool {
        match f {
            Freshness::AnyCached => true,
            Freshness::Latest => cached >= latest,
            Freshness::AtMostBehind(n) => {
                cached >= latest || self.entity_events_after(entity, cached) <= n
            }
        }
    }

    /// The projection cache's counters and sizes.
    pub fn cache_stats(&self) -> CacheStats {
        let cache = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.as_ref().map(|c| c.stats()).unwrap_or_default()
    }
}

/// A cached state that folded past the entity's newest event folded events the log no
/// longer has (cut by a failed sync, or by a salvage): it is recomputed, never used.
fn within_log(cache: Option<&cache::Cache>, c: lmdb::Cached, latest: u64) -> Option<lmdb::Cached> {
    if c.last_seq <= latest {
        return Some(c);
    }
    if let Some(cache) = cache {
        cache
            .counters
            .rebuilt_values
            .fetch_add(1, Ordering::Relaxed);
    }
    None
}

fn decode<P: Projection>(bytes: &[u8]) -> Option<P::State> {
    rmp_serde::from_slice(bytes).ok()
}
