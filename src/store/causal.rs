//! Causal graph walks over the index: every hop is one slot access (`parent`,
//! `first_child` / `next_sibling`, `corr_next`), never a scan.
//!
//! An event may name an earlier event as its cause; it then joins the cause's correlation
//! unless it names another. A cause must exist before the event is written, so the graph is
//! acyclic by construction. Walks see what is visible (written) and work across segment
//! rolls and reopen, since the links live in the index and its checkpoint.

use std::collections::VecDeque;

use crate::event::{EventId, EventKind};

use super::index::{Index, CAUSE_REMOVED, NONE};
use super::Store;

/// One event reached by a walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CausalNode {
    /// The event.
    pub id: EventId,
    /// Its kind.
    pub kind: EventKind,
    /// Hops from the event the walk started at (0 for the start itself).
    pub depth: u32,
    /// Its cause, if it has one.
    pub cause: Option<EventId>,
}

/// Bounds of a [`Store::descendants`] or [`Store::causal_tree`] walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkLimits {
    /// Deepest level visited (1 = direct children only).
    pub max_depth: u32,
    /// Most events returned.
    pub max_count: usize,
}

impl Default for WalkLimits {
    fn default() -> Self {
        Self {
            max_depth: u32::MAX,
            max_count: 10_000,
        }
    }
}

/// The result of a walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walk {
    /// Events in walk order.
    pub nodes: Vec<CausalNode>,
    /// `true` when a limit stopped the walk before it was complete.
    pub truncated: bool,
    /// The walk reached an event whose cause a compaction removed (retention): this is
    /// that cause. The chain was cut there; it is not an error.
    pub removed_cause: Option<EventId>,
}

/// A causal tree rooted at one event, ready to render: `nodes[0]` is the root and every
/// node lists the indexes of its children in sequence order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CausalTree {
    /// Nodes in breadth-first order.
    pub nodes: Vec<TreeNode>,
    /// `true` when a limit cut the tree.
    pub truncated: bool,
}

/// A node of a [`CausalTree`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeNode {
    /// The event.
    pub node: CausalNode,
    /// Indexes into [`CausalTree::nodes`] of its children, oldest first.
    pub children: Vec<usize>,
}

/// Why a walk could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WalkError {
    /// The start event does not exist (or is not written yet).
    #[error("event {0} does not exist")]
    UnknownEvent(String),
}

struct Graph<'a> {
    idx: &'a Index,
    store: u64,
}

impl Graph<'_> {
    fn start(&self, id: EventId) -> Result<u32, WalkError> {
        let pos = (id.store() == self.store)
            .then(|| self.idx.pos_of(id.sequence()))
            .flatten();
        pos.filter(|_| id.sequence() <= self.idx.visible)
            .ok_or_else(|| WalkError::UnknownEvent(id.to_string()))
    }

    fn visible(&self, pos: u32) -> bool {
        pos != NONE && self.idx.seq_at(pos) <= self.idx.visible
    }

    fn node(&self, pos: u32, depth: u32) -> CausalNode {
        let s = self.idx.slot(pos);
        CausalNode {
            id: EventId::new(self.store, self.idx.seq_at(pos)),
            kind: EventKind(s.kind),
            depth,
            cause: (s.parent != NONE).then(|| EventId::new(self.store, self.idx.seq_at(s.parent))),
        }
    }

    /// Visible children of `pos`, oldest first (the list holds them newest first).
    fn children(&self, pos: u32) -> Vec<u32> {
        let mut out = Vec::new();
        let mut c = self.idx.slot(pos).first_child;
        while c != NONE {
            if self.visible(c) {
                out.push(c);
            }
            c = self.idx.slot(c).next_sibling;
        }
        out.reverse();
        out
    }

    /// Breadth-first from `start`: (slot, depth, parent index in the output).
    fn bfs(&self, start: u32, limits: WalkLimits) -> (Vec<(u32, u32, Option<usize>)>, bool) {
        let mut out = vec![(start, 0, None)];
        let mut queue = VecDeque::from([0usize]);
        let mut truncated = false;
        while let Some(i) = queue.pop_front() {
            let (pos, depth, _) = out[i];
            let kids = self.children(pos);
            if depth >= limits.max_depth {
                truncated |= !kids.is_empty();
                continue;
            }
            for k in kids {
                if out.len() > limits.max_count {
                    // `out` holds the start too: max_count descendants are in.
                    return (out, true);
                }
                out.push((k, depth + 1, Some(i)));
                queue.push_back(out.len() - 1);
            }
        }
        (out, truncated)
    }
}

impl Store {
    fn graph<R>(&self, f: impl FnOnce(&Graph<'_>) -> R) -> R {
        let idx = self.shared.index();
        f(&Graph {
            idx: &idx,
            store: self.shared.store_id,
        })
    }

    /// The causes of `id` up to the root, nearest first (depth 1 is the direct cause).
    pub fn ancestors(&self, id: EventId) -> Result<Walk, WalkError> {
        self.graph(|g| {
            let mut pos = g.start(id)?;
            let mut nodes = Vec::new();
            let mut depth = 0;
            while g.idx.slot(pos).parent != NONE {
                pos = g.idx.slot(pos).parent;
                depth += 1;
                nodes.push(g.node(pos, depth));
            }
            let cut = g.idx.slot(pos).flags & CAUSE_REMOVED != 0;
            Ok((
                Walk {
                    nodes,
                    truncated: false,
                    removed_cause: None,
                },
                cut.then(|| EventId::new(g.store, g.idx.seq_at(pos))),
            ))
        })
        .map(|(mut walk, cut_at)| {
            // The removed cause's id is in the event that names it (one read, at the cut).
            if let Some(at) = cut_at {
                walk.removed_cause = self.get(at).ok().flatten().and_then(|e| e.causation);
            }
            walk
        })
    }

    /// Every event caused by `id`, directly or transitively, breadth first (by depth, then
    /// by sequence), within `limits`.
    pub fn descendants(&self, id: EventId, limits: WalkLimits) -> Result<Walk, WalkError> {
        self.graph(|g| {
            let (found, truncated) = g.bfs(g.start(id)?, limits);
            let nodes = found
                .iter()
                .skip(1)
                .map(|&(p, d, _)| g.node(p, d))
                .collect();
            Ok(Walk {
                nodes,
                truncated,
                removed_cause: None,
            })
        })
    }

    /// Every event of the same correlation as `id`, in sequence order, `id` included.
    pub fn correlated(&self, id: EventId) -> Result<Walk, WalkError> {
        self.graph(|g| {
            let mut pos = g.idx.corr_root(g.start(id)?);
            let mut nodes = Vec::new();
            while pos != NONE && g.visible(pos) {
                nodes.push(g.node(pos, 0));
                pos = g.idx.slot(pos).corr_next;
            }
            Ok(Walk {
                nodes,
                truncated: false,
                removed_cause: None,
            })
        })
    }

    /// The tree of `id` and its descendants, for rendering.
    pub fn causal_tree(&self, id: EventId, limits: WalkLimits) -> Result<CausalTree, WalkError> {
        self.graph(|g| {
            let (found, truncated) = g.bfs(g.start(id)?, limits);
            let mut nodes: Vec<TreeNode> = found
                .iter()
                .map(|&(p, d, _)| TreeNode {
                    node: g.node(p, d),
                    children: Vec::new(),
                })
                .collect();
            for (i, &(_, _, parent)) in found.iter().enumerate() {
                if let Some(p) = parent {
                    nodes[p].children.push(i);
                }
            }
            Ok(CausalTree { nodes, truncated })
        })
    }
}
