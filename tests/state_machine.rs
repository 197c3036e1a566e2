//! State-machine property test: random sequences of appends (single, durable, batches),
//! reads (get, stream, query), projections, tombstones and compactions, clean reopens
//! (checkpoint written and read) and read-only opens, on small segments so rolls happen,
//! checked after every step against a model (the events issued, less what a compaction
//! removes: a tombstoned entity's earlier events in sealed segments). 10,000 cases.
#![cfg(feature = "testkit")]

mod common;

use std::path::Path;
use std::sync::Arc;

use batpak::fs::sim::SimFs;
use batpak::prelude::*;
use batpak::projection::{Freshness, Projection};
use batpak::store::RetentionPolicy;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone)]
enum Op {
    Append {
        entity: u8,
        len: usize,
        durable: bool,
    },
    Batch {
        entity: u8,
        n: usize,
    },
    Get(usize),
    Stream(u8),
    Project(u8),
    Tombstone(u8),
    Compact,
    Reopen,
    ReadOnlyLook,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..4, 0usize..300, any::<bool>()).prop_map(|(entity, len, durable)| Op::Append { entity, len, durable }),
        2 => (0u8..4, 1usize..5).prop_map(|(entity, n)| Op::Batch { entity, n }),
        2 => any::<usize>().prop_map(Op::Get),
        1 => (0u8..4).prop_map(Op::Stream),
        1 => (0u8..4).prop_map(Op::Project),
        1 => (0u8..4).prop_map(Op::Tombstone),
        1 => Just(Op::Compact),
        1 => Just(Op::Reopen),
        1 => Just(Op::ReadOnlyLook),
    ]
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Fold {
    events: u64,
    bytes: u64,
    last: u64,
}

struct Sizes;

impl Projection for Sizes {
    type State = Fold;
    const NAME: &'static str = "sizes";
    const VERSION: u32 = 1;
    fn apply(s: &mut Fold, e: &Event) {
        s.events += 1;
        s.bytes += e.payload.len() as u64;
        s.last = e.sequence;
    }
}

fn config() -> StoreConfig {
    let mut c = StoreConfig::new(Path::new("/sim/data"));
    c.segment_max_bytes = 4 * 1024;
    c.sync_every_n_events = 4;
    c
}

fn options(fs: &SimFs, read_only: bool) -> OpenOptions {
    OpenOptions {
        read_only,
        ..OpenOptions::default().with_fs(Arc::new(fs.clone()))
    }
}

fn name(e: u8) -> String {
    format!("entity-{e}")
}

fn payload(n: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (n * 31 + i) as u8).collect()
}

/// One event of the model: `None` once a compaction removed it.
type Slot = Option<(u8, Vec<u8>)>;

/// Events of the model that are still there.
fn live(model: &[Slot]) -> impl Iterator<Item = (u64, u8, &Vec<u8>)> {
    model
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.as_ref().map(|(e, d)| (i as u64 + 1, *e, d)))
}

fn check_event(e: &Event, model: &[Slot]) -> Result<(), String> {
    let (ent, data) = model
        .get((e.sequence as usize).wrapping_sub(1))
        .and_then(Option::as_ref)
        .ok_or(format!("event {} is not in the model", e.sequence))?;
    if e.coordinate.entity != name(*ent) || &e.payload != data {
        return Err(format!("event {} differs from the model", e.sequence));
    }
    Ok(())
}

/// What a compaction by tombstones removes: events of a tombstoned entity before its last
/// tombstone, in sealed segments, except system events (tombstones themselves).
fn compact_model(store: &Store, model: &mut [Slot], tombs: &[(u8, u64)]) {
    let sealed_to = store
        .stats()
        .segments
        .iter()
        .filter(|s| s.sealed)
        .filter_map(|s| s.last_sequence)
        .max()
        .unwrap_or(0);
    for (i, slot) in model.iter_mut().enumerate() {
        let seq = i as u64 + 1;
        let Some((ent, _)) = slot else { continue };
        let last_tomb = tombs
            .iter()
            .filter(|(e, _)| e == ent)
            .map(|(_, t)| *t)
            .max();
        let is_tomb = tombs.iter().any(|(_, t)| *t == seq);
        if !is_tomb && seq <= sealed_to && last_tomb.is_some_and(|t| seq < t) {
            *slot = None;
        }
    }
}

/// Runs `ops` against a store and the model; the first disagreement is the error.
fn run(ops: &[Op]) -> Result<(), String> {
    let fs = SimFs::new();
    let mut store = Store::open_with(config(), options(&fs, false)).map_err(|e| e.to_string())?;
    let mut model: Vec<Slot> = Vec::new();
    let mut tombs: Vec<(u8, u64)> = Vec::new();
    for (step, op) in ops.iter().enumerate() {
        let at = |m: String| format!("step {step} {op:?}: {m}");
        match op {
            Op::Append {
                entity,
                len,
                durable,
            } => {
                let data = payload(model.len(), *len);
                let mut item = BatchItem::raw(
                    &Coordinate::new(name(*entity), "s"),
                    EventKind::new(1, 1),
                    data.clone(),
                );
                if *durable {
                    item = item.with_options(AppendOptions::default().durable());
                }
                let r = store.append_raw(item).map_err(|e| at(e.to_string()))?;
                model.push(Some((*entity, data)));
                if r.sequence != model.len() as u64 || (*durable && !r.durable) {
                    return Err(at(format!("receipt {r:?}")));
                }
            }
            Op::Batch { entity, n } => {
                let coord = Coordinate::new(name(*entity), "s");
                let datas: Vec<Vec<u8>> =
                    (0..*n).map(|i| payload(model.len() + i, 20 + i)).collect();
                let items = datas
                    .iter()
                    .map(|d| BatchItem::raw(&coord, EventKind::new(1, 2), d.clone()))
                    .collect();
                let rs = store
                    .append_batch(items, false)
                    .map_err(|e| at(e.to_string()))?;
                for (r, d) in rs.iter().zip(datas) {
                    model.push(Some((*entity, d)));
                    if r.sequence != model.len() as u64 {
                        return Err(at(format!("batch receipt {r:?}")));
                    }
                }
            }
            Op::Get(i) if !model.is_empty() => {
                let seq = (i % model.len()) as u64 + 1;
                let got = store
                    .get(EventId::new(store.store_id(), seq))
                    .map_err(|e| at(e.to_string()))?;
                match (got, &model[seq as usize - 1]) {
                    (Some(e), _) => check_event(&e, &model).map_err(at)?,
                    (None, None) => {}
                    (None, Some(_)) => return Err(at(format!("event {seq} missing"))),
                }
            }
            Op::Get(_) => {}
            Op::Stream(ent) => {
                let got = store.stream(&name(*ent)).map_err(|e| at(e.to_string()))?;
                let want = live(&model).filter(|(_, e, _)| e == ent).count();
                if got.len() != want {
                    return Err(at(format!("{} events, model has {want}", got.len())));
                }
                for e in &got {
                    check_event(e, &model).map_err(at)?;
                }
            }
            Op::Project(ent) => {
                let got = store
                    .project::<Sizes>(&name(*ent), Freshness::Latest)
                    .map_err(|e| at(e.to_string()))?;
                let mut want = Fold::default();
                for (seq, e, d) in live(&model) {
                    if e == *ent {
                        want.events += 1;
                        want.bytes += d.len() as u64;
                        want.last = seq;
                    }
                }
                if got != want {
                    return Err(at(format!("{got:?} != {want:?}")));
                }
            }
            Op::Tombstone(ent) => {
                let r = store
                    .tombstone_entity(&Coordinate::new(name(*ent), "s"))
                    .map_err(|e| at(e.to_string()))?;
                if r.sequence != model.len() as u64 + 1 {
                    return Err(at(format!("tombstone receipt {r:?}")));
                }
                let e = store
                    .get(r.id)
                    .map_err(|e| at(e.to_string()))?
                    .ok_or(at("the tombstone is not there".into()))?;
                model.push(Some((*ent, e.payload)));
                tombs.push((*ent, r.sequence));
            }
            Op::Compact => {
                compact_model(&store, &mut model, &tombs);
                let report = store
                    .compact(&RetentionPolicy {
                        tombstones: true,
                        ..RetentionPolicy::default()
                    })
                    .map_err(|e| at(e.to_string()))?;
                let removed = model.iter().filter(|s| s.is_none()).count() as u64;
                let all = store.query(&Region::all()).map_err(|e| at(e.to_string()))?;
                if all.len() as u64 != model.len() as u64 - removed {
                    return Err(at(format!(
                        "{} events left, model {}: {report:?}",
                        all.len(),
                        model.len() as u64 - removed
                    )));
                }
                for e in &all {
                    check_event(e, &model).map_err(at)?;
                }
            }
            Op::Reopen => {
                store.close().map_err(|e| at(e.to_string()))?;
                drop(store);
                store = Store::open_with(config(), options(&fs, false))
                    .map_err(|e| at(e.to_string()))?;
                if store.stats().events != live(&model).count() as u64 {
                    return Err(at(format!("{} events after reopen", store.stats().events)));
                }
            }
            Op::ReadOnlyLook => {
                let ro = Store::open_with(config(), options(&fs, true))
                    .map_err(|e| at(e.to_string()))?;
                let all = ro.query(&Region::all()).map_err(|e| at(e.to_string()))?;
                if all.len() != live(&model).count() {
                    return Err(at(format!("read-only open sees {} events", all.len())));
                }
                for e in &all {
                    check_event(e, &model).map_err(at)?;
                }
            }
        }
    }
    store.close().map_err(|e| e.to_string())?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn any_sequence_of_operations_agrees_with_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        if let Err(e) = run(&ops) {
            prop_assert!(false, "{}", e);
        }
    }
}
