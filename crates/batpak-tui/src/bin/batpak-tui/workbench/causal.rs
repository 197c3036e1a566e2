//! The causal pane's data: recent events (or one entity's), and for a chosen event its
//! ancestors and its descendants as a tree. Built from the store each frame while the
//! pane is shown; serialisable so fixtures can hold it.

use batpak::store::WalkLimits;
use batpak::{Event, EventId, Region, Store};
use serde::{Deserialize, Serialize};

use super::text::clean;

/// Events listed.
const RECENT: u64 = 200;
/// Nearest ancestors shown.
const ANCESTORS: usize = 20;
/// Bounds of the descendant tree.
const LIMITS: WalkLimits = WalkLimits {
    max_depth: 8,
    max_count: 200,
};

/// One event as the pane shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRow {
    pub seq: u64,
    pub kind: String,
    pub entity: String,
    pub scope: String,
    pub correlation: u64,
    pub cause: Option<u64>,
    /// The payload as compact JSON (MessagePack decoded), cut short, made printable.
    pub payload: String,
}

impl EventRow {
    pub fn of(e: &Event) -> Self {
        let payload = rmpv::decode::read_value(&mut e.payload.as_slice())
            .map(|v| v.to_string())
            .unwrap_or_else(|_| format!("{} bytes, not MessagePack", e.payload.len()));
        Self {
            seq: e.sequence,
            kind: e.kind.to_string(),
            entity: clean(&e.coordinate.entity, 64),
            scope: clean(&e.coordinate.scope, 64),
            correlation: e.correlation.sequence(),
            cause: e.causation.map(EventId::sequence),
            payload: clean(&payload, 160),
        }
    }
}

/// The chosen event, where it came from and what followed from it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Focus {
    /// The nearest ancestors, oldest first, ending with the chosen event's direct cause.
    pub ancestors: Vec<EventRow>,
    /// Ancestors further up than those shown.
    pub more_ancestors: usize,
    /// The chosen event (depth 0) and its descendants, depth first, with their depth.
    pub tree: Vec<(u32, EventRow)>,
    /// A limit cut the tree.
    pub truncated: bool,
    /// An ancestor a compaction removed (the chain is cut there).
    pub removed_cause: Option<u64>,
}

/// What the pane draws.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CausalView {
    /// The entity searched for, if any.
    pub entity: Option<String>,
    /// Newest first.
    pub recent: Vec<EventRow>,
    pub focus: Option<Focus>,
}

/// The newest events (of `entity` when given), newest first.
pub fn recent(store: &Store, entity: Option<&str>) -> Vec<EventRow> {
    let events = match entity {
        Some(e) => store.stream(e).unwrap_or_default(),
        None => {
            let last = store.stats().written_sequence;
            let region = Region {
                from_sequence: last.saturating_sub(RECENT - 1).max(1),
                ..Region::all()
            };
            store.query(&region).unwrap_or_default()
        }
    };
    events
        .iter()
        .rev()
        .take(RECENT as usize)
        .map(EventRow::of)
        .collect()
}

/// Ancestors and descendants of event `seq`.
pub fn focus(store: &Store, seq: u64) -> Option<Focus> {
    let id = EventId::new(store.store_id(), seq);
    let read = |id: EventId| store.get(id).ok().flatten().map(|e| EventRow::of(&e));
    let up = store.ancestors(id).ok()?;
    let mut ancestors: Vec<EventRow> = up
        .nodes
        .iter()
        .take(ANCESTORS)
        .filter_map(|n| read(n.id))
        .collect();
    ancestors.reverse();
    let tree = store.causal_tree(id, LIMITS).ok()?;
    let mut rows = Vec::new();
    let mut stack = vec![(0usize, 0u32)];
    while let Some((i, depth)) = stack.pop() {
        let Some(node) = tree.nodes.get(i) else {
            continue;
        };
        if let Some(r) = read(node.node.id) {
            rows.push((depth, r));
        }
        stack.extend(node.children.iter().rev().map(|&c| (c, depth + 1)));
    }
    Some(Focus {
        more_ancestors: up.nodes.len().saturating_sub(ANCESTORS),
        ancestors,
        tree: rows,
        truncated: tree.truncated,
        removed_cause: up.removed_cause.map(EventId::sequence),
    })
}
