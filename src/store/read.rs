//! Reads: `get`, queries, streams and subscriptions.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::error::ReadError;
use crate::event::{Event, EventId, Region};

use super::query::{self, Query};
use super::subscription::{self, Subscription};
use super::Store;

impl Store {
    /// The event with this id, if it exists.
    pub fn get(&self, id: EventId) -> Result<Option<Event>, ReadError> {
        if id.store() != self.shared.store_id {
            return Ok(None);
        }
        let locate = || {
            let idx = self.shared.index();
            let layout = self.shared.layout.load(Ordering::Acquire);
            idx.pos_of(id.sequence())
                .filter(|_| id.sequence() <= idx.visible)
                .map(|pos| (query::locate(&idx, pos), layout))
        };
        self.shared.read_retrying(|| match locate() {
            Some((loc, layout)) => (self.shared.read_located(&loc).map(Some), layout),
            None => (Ok(None), 0),
        })
    }

    /// Every event in the region, in sequence order.
    pub fn query(&self, region: &Region) -> Result<Vec<Event>, ReadError> {
        self.query_iter(region).collect()
    }

    /// The events of a region as a lazy iterator (read in chunks).
    pub fn query_iter(&self, region: &Region) -> Query<'_> {
        Query {
            shared: &self.shared,
            cursor: query::QueryCursor::new(region.clone()),
            buffer: Vec::new().into_iter(),
        }
    }

    /// Every event of one entity, in sequence order.
    pub fn stream(&self, entity: &str) -> Result<Vec<Event>, ReadError> {
        self.query(&Region::entity(entity))
    }

    /// A live feed of new events matching `region`.
    pub fn subscribe(&self, region: Region) -> Subscription {
        self.subscribe_inner(region, None)
    }

    /// A feed that first reads the matching history from sequence `from` on, then continues
    /// live without a gap or a duplicate.
    pub fn subscribe_from(&self, region: Region, from: u64) -> Subscription {
        self.subscribe_inner(region, Some(from))
    }

    fn subscribe_inner(&self, region: Region, from: Option<u64>) -> Subscription {
        let cap = self.shared.config().broadcast_capacity as usize;
        let ring = Arc::new(subscription::Ring::new(region.clone(), cap));
        self.shared.add_subscriber(ring.clone());
        let live_after = self.shared.index().visible;
        let history = from.map(|f| {
            let (lo, hi) = (
                f.max(region.from_sequence),
                live_after.min(region.to_sequence),
            );
            let r = region.with_sequences(lo..=hi);
            query::QueryCursor::new(r)
        });
        Subscription::new(
            ring,
            Arc::downgrade(&self.shared),
            history,
            if from.is_some() { live_after } else { 0 },
        )
    }
}
