//! Retention: which events a compaction removes, and tombstones.
//!
//! Three rules, each optional: events older than `max_age`; the oldest sealed segments'
//! events while the store is larger than `max_total_bytes`; and, with `tombstones`, the
//! events of an entity or scope written before its tombstone. Tombstones themselves are
//! kept (they are what keeps a removed entity removed), and the active segment is never
//! touched. Everything else survives byte for byte, with its id, sequence and causal links.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::codec::frame::EventHeader;
use crate::error::AppendError;
use crate::event::{AppendOptions, AppendReceipt, Coordinate, EventKind};

use super::command::BatchItem;
use super::index::{Index, NONE};
use super::Store;

/// Entity name of a scope's tombstone event.
pub const SCOPE_TOMBSTONE_ENTITY: &str = "~scope-tombstone";

/// What a compaction may remove.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicy {
    /// Remove events older than this (by their timestamp).
    #[serde(default, with = "opt_secs")]
    pub max_age: Option<Duration>,
    /// Remove the oldest sealed segments' events while the segment files hold more bytes
    /// than this (a disk cap).
    #[serde(default)]
    pub max_total_bytes: Option<u64>,
    /// Remove the events an entity or scope had before its tombstone.
    #[serde(default)]
    pub tombstones: bool,
}

mod opt_secs {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(&d.map(|d| d.as_secs_f64()), s)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let secs: Option<f64> = serde::Deserialize::deserialize(d)?;
        secs.map(|s| Duration::try_from_secs_f64(s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

mod as_micros {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }
}

/// What a compaction removed (or, for a dry run, would remove).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CompactionReport {
    /// Nothing was changed: this is what the compaction would do.
    pub dry_run: bool,
    /// Events removed.
    pub events_removed: u64,
    /// Segment files rewritten.
    pub segments_touched: Vec<u32>,
    /// Bytes of the touched segments before.
    pub bytes_before: u64,
    /// Bytes of the touched segments after.
    pub bytes_after: u64,
    /// Surviving events whose cause or correlation root is removed (their causal chain
    /// is cut; walks report the removed cause).
    pub chains_cut: u64,
    /// Entities that lose events: their cached projections are dropped and rebuilt.
    pub entities_affected: u64,
    /// Up to 20 of those entities, for display.
    pub entities_sample: Vec<String>,
    /// How long appends waited while the new files took effect and the index was rebuilt.
    #[serde(rename = "writer_pause_us", with = "as_micros")]
    pub writer_pause: Duration,
    /// Time taken.
    #[serde(rename = "elapsed_us", with = "as_micros")]
    pub elapsed: Duration,
}

impl CompactionReport {
    /// Bytes the compaction frees.
    pub fn bytes_reclaimed(&self) -> u64 {
        self.bytes_before.saturating_sub(self.bytes_after)
    }
}

impl Store {
    /// Appends a tombstone of `coord.entity` and waits until it is durable. A compaction
    /// with [`RetentionPolicy::tombstones`] then removes the entity's earlier events and
    /// keeps the tombstone.
    pub fn tombstone_entity(&self, coord: &Coordinate) -> Result<AppendReceipt, AppendError> {
        self.tombstone(coord, EventKind::TOMBSTONE_ENTITY)
    }

    /// Appends a tombstone of `scope` (as an event of the entity
    /// [`SCOPE_TOMBSTONE_ENTITY`] in that scope) and waits until it is durable. A
    /// compaction with tombstones then removes every earlier event of the scope.
    pub fn tombstone_scope(&self, scope: &str) -> Result<AppendReceipt, AppendError> {
        self.tombstone(
            &Coordinate::new(SCOPE_TOMBSTONE_ENTITY, scope),
            EventKind::TOMBSTONE_SCOPE,
        )
    }

    fn tombstone(&self, coord: &Coordinate, kind: EventKind) -> Result<AppendReceipt, AppendError> {
        let mut item = BatchItem::new(coord, kind, &())?.with_options(AppendOptions {
            durable: true,
            ..AppendOptions::default()
        });
        item.system = true;
        self.submit_ungated(item)?.wait()
    }
}

/// The tombstones in the index: the newest tombstone sequence per entity and per scope id.
#[derive(Default)]
pub(crate) struct Tombstones {
    entities: HashMap<u32, u64>,
    scopes: HashMap<u32, u64>,
}

impl Tombstones {
    /// Walks the index's list of each tombstone kind (oldest first, so the newest wins).
    pub fn collect(idx: &Index) -> Self {
        let mut t = Self::default();
        for (kind, of_entity) in [
            (EventKind::TOMBSTONE_ENTITY, true),
            (EventKind::TOMBSTONE_SCOPE, false),
        ] {
            let mut pos = idx.kinds.get(&kind.0).map_or(NONE, |l| l.head);
            while pos != NONE {
                let s = idx.slot(pos);
                let (map, id) = if of_entity {
                    (&mut t.entities, s.entity)
                } else {
                    (&mut t.scopes, s.scope)
                };
                map.insert(id, idx.seq_at(pos));
                pos = s.kind_next;
            }
        }
        t
    }

    /// The event was written before a tombstone of its entity or scope.
    pub fn covers(&self, h: &EventHeader) -> bool {
        let before = |m: &HashMap<u32, u64>, id: u32| m.get(&id).is_some_and(|&t| h.seq < t);
        before(&self.entities, h.entity) || before(&self.scopes, h.scope)
    }
}

/// Whether retention removes the event `h` by age or tombstone (`cutoff_us`: events
/// stamped before it are too old).
pub(crate) fn removes(
    policy: &RetentionPolicy,
    tombstones: &Tombstones,
    cutoff_us: Option<u64>,
    h: &EventHeader,
) -> bool {
    if EventKind(h.kind).is_system() {
        return false;
    }
    cutoff_us.is_some_and(|c| h.ts < c) || (policy.tombstones && tombstones.covers(h))
}

/// Surviving events whose cause or correlation root is in `removed` (sorted), and the
/// entities that lose events.
pub(crate) fn consequences(idx: &Index, removed: &[u64]) -> (u64, HashSet<u32>) {
    let gone = |seq: u64| removed.binary_search(&seq).is_ok();
    let mut cut = 0;
    let mut entities = HashSet::new();
    for pos in 0..idx.len() {
        let seq = idx.seq_at(pos);
        let s = idx.slot(pos);
        if gone(seq) {
            entities.insert(s.entity);
            continue;
        }
        let cause_gone = s.parent != NONE && gone(idx.seq_at(s.parent));
        let root = idx.corr_root(pos);
        let root_gone = root != pos && gone(idx.seq_at(root));
        cut += u64::from(cause_gone || root_gone);
    }
    (cut, entities)
}
