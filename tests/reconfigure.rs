//! Live reconfiguration: every field is classified; live fields apply at once; the rest
//! wait for a reopen, which `ReopenableStore` performs while producers wait.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use batpak::prelude::*;
use batpak::store::{applies, Applies, ReopenableStore, FIELDS};
use common::*;

#[test]
fn every_store_config_field_is_classified() {
    let debug = format!("{:?}", StoreConfig::new("x"));
    for (field, _) in FIELDS {
        assert!(
            debug.contains(&format!("{field}:")),
            "{field} is not a StoreConfig field"
        );
    }
    let pretty = format!("{:#?}", StoreConfig::new("x"));
    let fields_in_debug = pretty
        .lines()
        .filter(|l| l.starts_with("    ") && !l.starts_with("     ") && l.contains(": "))
        .count();
    assert_eq!(
        fields_in_debug,
        FIELDS.len(),
        "a StoreConfig field is missing from FIELDS: {debug}"
    );
    assert_eq!(applies("sync_every_n_events"), Some(Applies::Live));
    assert_eq!(applies("segment_max_bytes"), Some(Applies::NextRoll));
    assert_eq!(applies("writer_channel_capacity"), Some(Applies::Reopen));
}

fn append_n(store: &Store, n: u32) -> Res<Vec<AppendReceipt>> {
    Ok((0..n)
        .map(|i| {
            store.append(
                &Coordinate::new(format!("e{}", i % 7), "s"),
                EventKind::new(1, 1),
                &i,
            )
        })
        .collect::<Result<_, _>>()?)
}

#[test]
fn sync_every_n_events_and_sync_mode_apply_live() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    assert!(!append_n(&store, 1)?[0].durable);
    let mut c = store.config();
    c.sync_every_n_events = 1;
    c.sync_mode = SyncMode::SyncData;
    let r = store.reconfigure(&c)?;
    assert_eq!(r.applied, vec!["sync_every_n_events", "sync_mode"]);
    assert!(r.needs_reopen.is_empty());
    assert!(
        append_n(&store, 3)?.iter().all(|r| r.durable),
        "every receipt is durable now"
    );
    assert_eq!(store.config().sync_mode, SyncMode::SyncData);
    Ok(())
}

#[test]
fn segment_max_bytes_applies_from_the_next_roll_and_fd_budget_at_once() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    append_n(&store, 100)?;
    assert_eq!(store.stats().segments.len(), 1);
    let mut c = store.config();
    c.segment_max_bytes = 4096;
    c.fd_budget = 3;
    store.reconfigure(&c)?;
    let ids: Vec<EventId> = append_n(&store, 2000)?.iter().map(|r| r.id).collect();
    let segs = store.stats().segments;
    assert!(
        segs.len() > 5,
        "rolled at the new size: {} segments",
        segs.len()
    );
    assert!(segs.iter().skip(1).all(|s| s.bytes <= 4096), "{segs:?}");
    for id in ids.iter().step_by(7) {
        store.get(*id)?;
        assert!(
            store.stats().mapped_segments <= 2,
            "fd_budget 3 = the active file and two maps"
        );
    }
    Ok(())
}

#[test]
fn broadcast_capacity_applies_to_new_subscribers_and_limits_apply_live() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    let old_sub = store.subscribe(Region::all());
    let mut c = store.config();
    c.broadcast_capacity = 4;
    c.shutdown_drain_limit = 7;
    c.restart_policy.max_restarts = 9;
    let r = store.reconfigure(&c)?;
    assert_eq!(
        r.applied,
        vec![
            "broadcast_capacity",
            "restart_policy",
            "shutdown_drain_limit"
        ]
    );
    let new_sub = store.subscribe(Region::all());
    append_n(&store, 10)?;
    assert_eq!(new_sub.dropped(), 6, "the new ring holds 4");
    assert_eq!(old_sub.dropped(), 0, "the old ring keeps its capacity");
    assert_eq!(store.config().shutdown_drain_limit, 7);
    assert_eq!(store.config().restart_policy.max_restarts, 9);
    Ok(())
}

#[test]
fn fields_that_need_a_reopen_are_reported_and_left_unchanged() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    let mut c = store.config();
    c.writer_channel_capacity = 16;
    c.cache_map_size_bytes = 8 << 20;
    c.writer_stack_size = Some(1 << 20);
    c.clock = Some(Arc::new(|| 1));
    let r = store.reconfigure(&c)?;
    assert_eq!(
        r.needs_reopen,
        vec![
            "writer_channel_capacity",
            "cache_map_size_bytes",
            "writer_stack_size",
            "clock"
        ]
    );
    assert!(r.applied.is_empty());
    assert_eq!(store.config().writer_channel_capacity, 4096);
    let mut bad = store.config();
    bad.fd_budget = 0;
    assert!(store.reconfigure(&bad).is_err(), "validated like an open");
    Ok(())
}

#[test]
fn a_reopen_under_load_keeps_every_acked_event_and_no_producer_sees_an_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    let handle = Arc::new(ReopenableStore::open(
        StoreConfig::new(dir.path()),
        OpenOptions::default(),
    )?);
    let stop = Arc::new(AtomicBool::new(false));
    let producers: Vec<_> = (0..2)
        .map(|t| {
            let (h, stop) = (handle.clone(), stop.clone());
            std::thread::spawn(move || -> Result<Vec<EventId>, AppendError> {
                let mut ids = Vec::new();
                let mut i = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let r = h.get().append(
                        &Coordinate::new(format!("p{t}"), "s"),
                        EventKind::new(1, 1),
                        &i,
                    )?;
                    ids.push(r.id);
                    i += 1;
                }
                Ok(ids)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    let mut c = handle.get().config();
    c.writer_channel_capacity = 64;
    c.sync_every_n_events = 50;
    let reopened = handle.apply(c)?;
    assert!(reopened.changed.contains(&"writer_channel_capacity"));
    assert!(reopened.pause > Duration::ZERO);
    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for p in producers {
        all.extend(p.join().map_err(|_| "producer panicked")??);
    }
    let store = handle.get();
    assert_eq!(store.config().writer_channel_capacity, 64);
    for id in &all {
        assert!(
            store.get(*id)?.is_some(),
            "acked event {id} lost across the reopen"
        );
    }
    assert_eq!(store.stats().events, all.len() as u64);
    Ok(())
}
