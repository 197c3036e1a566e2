//! A panicking writer is restarted as the restart policy says, losing no acked event.
#![cfg(feature = "testkit")]

mod common;

use std::time::Duration;

use batpak::prelude::*;
use common::*;

fn append_n(store: &Store, from: u32, n: u32) -> Result<Vec<AppendReceipt>, AppendError> {
    (from..from + n)
        .map(|i| {
            store.append(
                &Coordinate::new(format!("e{}", i % 3), "s"),
                EventKind::new(1, 1),
                &i,
            )
        })
        .collect()
}

#[test]
fn a_writer_panic_after_a_partial_batch_write_is_restarted_and_every_acked_event_survives(
) -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut acked = Vec::new();
    {
        let store = Store::open(StoreConfig::new(dir.path()))?;
        acked.extend(append_n(&store, 0, 50)?);
        store.inject_writer_panic()?;
        let coord = Coordinate::new("batch", "s");
        let items = (0..20u32)
            .map(|i| BatchItem::new(&coord, EventKind::new(2, 1), &i))
            .collect::<Result<Vec<_>, _>>()?;
        let err = store
            .append_batch(items, false)
            .err()
            .ok_or("the batch was acknowledged")?;
        assert!(matches!(err, AppendError::NotWritten(_)), "{err}");
        acked.extend(append_n(&store, 50, 50)?);
        let stats = store.stats();
        assert_eq!(stats.writer_restarts, 1);
        assert_eq!(stats.poisoned, None);
        assert!(
            store.stream("batch")?.is_empty(),
            "no half of the batch is visible"
        );
        store.close()?;
    }
    let store = Store::open(StoreConfig::new(dir.path()))?;
    for r in &acked {
        let e = store
            .get(r.id)?
            .ok_or(format!("acked event {} lost", r.sequence))?;
        assert_eq!(e.sequence, r.sequence);
    }
    assert!(
        store.stream("batch")?.is_empty(),
        "the half-written batch is gone after reopen too"
    );
    assert_eq!(store.stats().events, 100);
    Ok(())
}

#[test]
fn when_the_restart_policy_gives_up_the_store_is_poisoned_with_a_clear_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut cfg = StoreConfig::new(dir.path());
    cfg.restart_policy = RestartPolicy::never();
    let store = Store::open(cfg)?;
    let first = append_n(&store, 0, 5)?;
    store.inject_writer_panic()?;
    assert!(append_n(&store, 5, 1).is_err());
    std::thread::sleep(Duration::from_millis(50));
    let err = append_n(&store, 6, 1)
        .err()
        .ok_or("a poisoned store accepted an append")?;
    assert!(
        matches!(&err, AppendError::Poisoned(m) if m.contains("restart policy")),
        "{err}"
    );
    assert!(store.stats().poisoned.is_some());
    drop(store);
    let store = Store::open(StoreConfig::new(dir.path()))?;
    for r in first {
        assert!(store.get(r.id)?.is_some());
    }
    Ok(())
}

#[test]
fn a_writer_stack_smaller_than_the_minimum_is_refused_naming_the_field() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut cfg = StoreConfig::new(dir.path());
    cfg.writer_stack_size = Some(4096);
    let err = Store::open(cfg).err().ok_or("opened")?.to_string();
    assert!(
        err.contains("writer_stack_size") && err.contains("65536..="),
        "{err}"
    );
    Ok(())
}
