//! Causal graph walks: ancestors, descendants, correlation and trees, across segment rolls
//! and reopen.

mod common;

use batpak::prelude::*;
use common::*;

fn caused_by(id: EventId) -> AppendOptions {
    AppendOptions::default().caused_by(id)
}

fn ids(walk: &batpak::Walk) -> Vec<EventId> {
    walk.nodes.iter().map(|n| n.id).collect()
}

#[test]
fn ancestors_climb_to_the_root_across_segment_rolls_and_after_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut cfg = StoreConfig::new(dir.path());
    cfg.segment_max_bytes = 4096;
    let mut chain = Vec::new();
    {
        let store = Store::open(cfg.clone())?;
        let root = store.append(
            &Coordinate::new("order:1", "t"),
            EventKind::new(1, 1),
            &0u32,
        )?;
        chain.push(root.id);
        for i in 1..300u32 {
            // Unrelated traffic between the links of the chain.
            store.append(
                &Coordinate::new(format!("noise:{i}"), "t"),
                EventKind::new(9, 9),
                &i,
            )?;
            let r = store.append_with(
                &Coordinate::new("order:1", "t"),
                EventKind::new(1, 2),
                &i,
                caused_by(chain[chain.len() - 1]),
            )?;
            chain.push(r.id);
        }
        assert!(
            store.stats().segments.len() >= 3,
            "{} segments",
            store.stats().segments.len()
        );
        let walk = store.ancestors(chain[299])?;
        assert_eq!(
            ids(&walk),
            chain[..299].iter().rev().copied().collect::<Vec<_>>()
        );
        store.close()?;
    }
    let store = Store::open(cfg)?;
    let walk = store.ancestors(chain[299])?;
    assert_eq!(walk.nodes.len(), 299);
    assert_eq!(walk.nodes[0].depth, 1);
    assert_eq!(walk.nodes[298].id, chain[0]);
    assert_eq!(walk.nodes[298].cause, None, "the root has no cause");
    assert!(store.ancestors(chain[0])?.nodes.is_empty());
    Ok(())
}

/// root ─┬─ a ─┬─ a1
///       │     └─ a2 ── a2x
///       └─ b
fn tree(store: &Store) -> Res<Vec<EventId>> {
    let c = Coordinate::new("o", "t");
    let k = EventKind::new(1, 1);
    let root = store.append(&c, k, &"root")?.id;
    let a = store.append_with(&c, k, &"a", caused_by(root))?.id;
    let b = store.append_with(&c, k, &"b", caused_by(root))?.id;
    let a1 = store.append_with(&c, k, &"a1", caused_by(a))?.id;
    let a2 = store.append_with(&c, k, &"a2", caused_by(a))?.id;
    let a2x = store.append_with(&c, k, &"a2x", caused_by(a2))?.id;
    Ok(vec![root, a, b, a1, a2, a2x])
}

#[test]
fn descendants_are_breadth_first_in_sequence_order_within_depth_and_count_limits() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    let t = tree(&store)?;
    let all = store.descendants(t[0], WalkLimits::default())?;
    assert_eq!(ids(&all), t[1..].to_vec());
    assert_eq!(
        all.nodes.iter().map(|n| n.depth).collect::<Vec<_>>(),
        vec![1, 1, 2, 2, 3]
    );
    assert!(!all.truncated);
    let shallow = store.descendants(
        t[0],
        WalkLimits {
            max_depth: 1,
            max_count: 100,
        },
    )?;
    assert_eq!(ids(&shallow), vec![t[1], t[2]]);
    assert!(shallow.truncated);
    let few = store.descendants(
        t[0],
        WalkLimits {
            max_depth: 10,
            max_count: 3,
        },
    )?;
    assert_eq!(ids(&few), t[1..4].to_vec());
    assert!(few.truncated);
    Ok(())
}

#[test]
fn the_causal_tree_gives_each_node_its_children_for_rendering() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    let t = tree(&store)?;
    let tree = store.causal_tree(t[0], WalkLimits::default())?;
    let child_ids = |i: usize| {
        tree.nodes[i]
            .children
            .iter()
            .map(|&c| tree.nodes[c].node.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(tree.nodes[0].node.id, t[0]);
    assert_eq!(child_ids(0), vec![t[1], t[2]]);
    let a = tree
        .nodes
        .iter()
        .position(|n| n.node.id == t[1])
        .ok_or("a missing")?;
    assert_eq!(child_ids(a), vec![t[3], t[4]]);
    assert_eq!(tree.nodes.iter().map(|n| n.node.depth).max(), Some(3));
    Ok(())
}

#[test]
fn correlated_lists_the_whole_conversation_in_sequence_order() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    let t = tree(&store)?;
    let other = store.append(
        &Coordinate::new("x", "t"),
        EventKind::new(1, 1),
        &"unrelated",
    )?;
    // Naming any member as the correlation joins its conversation.
    let joined = store.append_with(
        &Coordinate::new("y", "t"),
        EventKind::new(1, 1),
        &"joined",
        AppendOptions::default().correlated_with(t[3]),
    )?;
    let mut expected = t.clone();
    expected.push(joined.id);
    assert_eq!(ids(&store.correlated(t[4])?), expected);
    assert_eq!(ids(&store.correlated(other.id)?), vec![other.id]);
    assert_eq!(store.get(joined.id)?.map(|e| e.correlation), Some(t[0]));
    Ok(())
}

#[test]
fn walks_from_an_unknown_event_say_so() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    let missing = EventId::new(store.store_id(), 42);
    let err = store
        .ancestors(missing)
        .err()
        .ok_or("walked from nothing")?;
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(store.descendants(missing, WalkLimits::default()).is_err());
    assert!(store.correlated(missing).is_err());
    Ok(())
}
