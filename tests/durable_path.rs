//! Durable appends a producer runs on its own thread when the writer is idle keep every
//! promise of the queued path: issue order, durability before the receipt, survival.

mod common;

use std::sync::Arc;

use batpak::prelude::*;
use common::*;

fn durable_config(dir: &std::path::Path) -> StoreConfig {
    let mut c = small_config(dir);
    c.sync_every_n_events = 1;
    c.sync_mode = SyncMode::SyncData;
    c
}

#[test]
fn a_durable_append_never_overtakes_the_same_producers_earlier_submits() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(small_config(dir.path()))?;
    let coord = Coordinate::new("e", "s");
    for round in 0..20u32 {
        let tickets = (0..200u32)
            .map(|i| store.submit(&coord, EventKind::new(1, 1), &i, AppendOptions::default()))
            .collect::<Result<Vec<_>, _>>()?;
        let durable = store.append_with(
            &coord,
            EventKind::new(1, 2),
            &round,
            AppendOptions::default().durable(),
        )?;
        assert!(durable.durable, "round {round}: the receipt says durable");
        for t in tickets {
            let r = t.wait()?;
            assert!(
                r.sequence < durable.sequence,
                "round {round}: submit {} came after the durable append {}",
                r.sequence,
                durable.sequence
            );
        }
    }
    Ok(())
}

#[test]
fn one_then_four_durable_producers_keep_issue_order_and_every_acked_event_survives_reopen(
) -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut acked: Vec<(u32, u32, AppendReceipt)> = Vec::new();
    {
        let store = Arc::new(Store::open(durable_config(dir.path()))?);
        let lone = Coordinate::new("p-lone", "s");
        for i in 0..100u32 {
            let r = store.append(&lone, EventKind::new(1, 1), &i)?;
            assert!(r.durable, "append {i} of the lone producer is durable");
            acked.push((99, i, r));
        }
        let handles: Vec<_> = (0..4u32)
            .map(|p| {
                let store = store.clone();
                std::thread::spawn(
                    move || -> Result<Vec<(u32, u32, AppendReceipt)>, AppendError> {
                        let coord = Coordinate::new(format!("p-{p}"), "s");
                        (0..100u32)
                            .map(|i| {
                                let r = store.append(&coord, EventKind::new(1, 1), &i)?;
                                Ok((p, i, r))
                            })
                            .collect()
                    },
                )
            })
            .collect();
        for h in handles {
            acked.extend(h.join().map_err(|_| "producer panicked")??);
        }
        assert!(acked.iter().all(|(_, _, r)| r.durable));
        assert_eq!(store.stats().acked_unsynced, 0);
    }
    let report = batpak::store::verify(dir.path())?;
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let store = Store::open(durable_config(dir.path()))?;
    assert_eq!(store.stats().events, 500);
    for p in [0u32, 1, 2, 3, 99] {
        let entity = if p == 99 {
            "p-lone".to_string()
        } else {
            format!("p-{p}")
        };
        let values = store
            .stream(&entity)?
            .iter()
            .map(|e| e.payload::<u32>())
            .collect::<Result<Vec<_>, _>>()?;
        assert_eq!(
            values,
            (0..100).collect::<Vec<_>>(),
            "{entity} in issue order"
        );
    }
    for (_, _, r) in &acked {
        assert!(store.get(r.id)?.is_some(), "acked {} lost", r.sequence);
    }
    Ok(())
}

#[test]
fn a_durable_batch_of_a_lone_producer_is_all_there_after_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let coord = Coordinate::new("batch", "s");
    {
        let store = Store::open(small_config(dir.path()))?;
        for round in 0..10u32 {
            let items = (0..10u32)
                .map(|i| BatchItem::new(&coord, EventKind::new(1, 1), &(round * 10 + i)))
                .collect::<Result<Vec<_>, _>>()?;
            let rs = store.append_batch(items, true)?;
            assert!(rs.iter().all(|r| r.durable));
        }
    }
    let store = Store::open(small_config(dir.path()))?;
    let values = store
        .stream("batch")?
        .iter()
        .map(|e| e.payload::<u32>())
        .collect::<Result<Vec<_>, _>>()?;
    assert_eq!(values, (0..100).collect::<Vec<_>>());
    Ok(())
}
