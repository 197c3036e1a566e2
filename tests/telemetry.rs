//! Telemetry: one snapshot holds histograms, counters, gauges and the durability state;
//! rates come from two snapshots; reset starts the figures over.

mod common;

use std::sync::Arc;
use std::time::Duration;

use batpak::prelude::*;
use common::*;

fn append_n(store: &Store, n: u32) -> TestResult {
    for i in 0..n {
        store.append(
            &Coordinate::new(format!("e{}", i % 5), "s"),
            EventKind::new(1, 1),
            &i,
        )?;
    }
    Ok(())
}

#[test]
fn a_snapshot_counts_every_append_in_the_latency_histogram_and_every_sync_in_the_sync_histogram(
) -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut cfg = StoreConfig::new(dir.path());
    cfg.sync_every_n_events = 10;
    let store = Store::open(cfg)?;
    append_n(&store, 100)?;
    let batch = (0..20u32)
        .map(|i| BatchItem::new(&Coordinate::new("b", "s"), EventKind::new(1, 1), &i))
        .collect::<Result<Vec<_>, _>>()?;
    store.append_batch(batch, false)?;
    let s = store.stats();
    assert_eq!(
        s.histograms.append_us.len(),
        120,
        "one latency per event, batches included"
    );
    assert!(s.histograms.append_us.value_at_quantile(0.5) >= 1);
    assert_eq!(s.histograms.sync_us.len(), s.syncs);
    assert!(
        s.syncs >= 10,
        "sync_every_n_events = 10 over 120 events: {}",
        s.syncs
    );
    assert!(
        (100..=120).contains(&s.synced_events),
        "fewer than 10 events may wait for a sync: {}",
        s.synced_events
    );
    assert!(
        s.histograms.events_per_sync.max() <= 20,
        "never more than a batch past the limit"
    );
    assert!(s.since_last_sync.is_some());
    assert!(s.channel_high_water >= 1);
    assert!(s.telemetry);
    Ok(())
}

#[test]
fn the_durability_state_shows_acknowledged_but_unsynced_events_until_the_idle_sync() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    append_n(&store, 5)?;
    let s = store.stats();
    assert_eq!(s.written_sequence, 5);
    assert!(s.acked_unsynced > 0 || s.durable_sequence == 5, "{s:?}");
    std::thread::sleep(batpak::store::IDLE_SYNC_AFTER * 10);
    let s = store.stats();
    assert_eq!(s.acked_unsynced, 0);
    assert!(s
        .since_last_sync
        .is_some_and(|d| d < Duration::from_secs(5)));
    Ok(())
}

#[test]
fn rates_and_recent_histograms_are_the_difference_of_two_snapshots() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    append_n(&store, 50)?;
    let before = store.stats();
    std::thread::sleep(Duration::from_millis(20));
    append_n(&store, 30)?;
    let after = store.stats();
    let r = after.rates_since(&before);
    assert_eq!(
        r.histograms.append_us.len(),
        30,
        "only the appends between the snapshots"
    );
    assert!(r.events_per_sec > 0.0 && r.elapsed >= Duration::from_millis(20));
    assert!((r.events_per_sec * r.elapsed.as_secs_f64() - 30.0).abs() < 0.5);
    Ok(())
}

#[test]
fn reset_stats_starts_counters_and_histograms_over() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    append_n(&store, 40)?;
    store.sync()?;
    store.reset_stats();
    let s = store.stats();
    assert_eq!(
        (
            s.histograms.append_us.len(),
            s.syncs,
            s.bytes_written,
            s.batches
        ),
        (0, 0, 0, 0)
    );
    assert_eq!(
        s.events, 40,
        "state is not a statistic: the events are still there"
    );
    append_n(&store, 3)?;
    assert_eq!(store.stats().histograms.append_us.len(), 3);
    Ok(())
}

#[test]
fn with_telemetry_off_counters_still_count_but_no_latency_is_recorded() -> TestResult {
    let dir = tempfile::tempdir()?;
    let options = OpenOptions {
        telemetry: false,
        ..OpenOptions::default()
    };
    let store = Store::open_with(StoreConfig::new(dir.path()), options)?;
    append_n(&store, 10)?;
    store.sync()?;
    let s = store.stats();
    assert!(!s.telemetry);
    assert_eq!(s.histograms.append_us.len(), 0);
    assert_eq!(s.histograms.sync_us.len(), 0);
    assert!(s.syncs >= 1 && s.bytes_written > 0);
    Ok(())
}

#[test]
fn the_snapshot_carries_gates_cache_subscribers_and_the_last_recovery() -> TestResult {
    let dir = tempfile::tempdir()?;
    let gates =
        GateSet::new(Evaluation::FailFast).with(batpak::gate::MaxPayloadSize { max_bytes: 8 });
    let store = Arc::new(Store::open_with(
        StoreConfig::new(dir.path()),
        OpenOptions::default().with_gates(gates),
    )?);
    let c = Coordinate::new("e", "s");
    let _sub = store.subscribe(Region::all());
    store.append(&c, EventKind::new(1, 1), &1u8)?;
    assert!(store
        .append(&c, EventKind::new(1, 1), &"much too long for the gate")
        .is_err());
    let s = store.stats();
    assert_eq!((s.gates.allowed, s.gates.denied), (1, 1));
    assert_eq!(s.gates.per_gate["max_payload_size"].denied, 1);
    assert_eq!(s.gates.recent.len(), 2);
    assert_eq!(s.subscribers.len(), 1);
    assert_eq!(s.subscribers[0].lag, 1);
    assert!(s.cache.enabled);
    assert_eq!(s.cache.map_size_bytes, 64 << 20);
    assert!(matches!(
        s.recovery.checkpoint,
        batpak::CheckpointStatus::Missing
    ));
    Ok(())
}

#[test]
fn a_pipelined_producer_never_has_more_than_sync_every_minus_one_acknowledged_events_unsynced(
) -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut cfg = StoreConfig::new(dir.path());
    cfg.sync_every_n_events = 50;
    let store = Arc::new(Store::open(cfg)?);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (store, done) = (store.clone(), done.clone());
        std::thread::spawn(move || {
            let (mut worst, mut samples) = (0, 0u64);
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                worst = worst.max(store.stats().acked_unsynced);
                samples += 1;
            }
            (worst, samples)
        })
    };
    let mut tickets = std::collections::VecDeque::new();
    for i in 0..20_000u32 {
        tickets.push_back(store.submit(
            &Coordinate::new(format!("e{}", i % 64), "s"),
            EventKind::new(1, 1),
            &i,
            AppendOptions::default(),
        )?);
        if tickets.len() > 512 {
            if let Some(t) = tickets.pop_front() {
                t.wait()?;
            }
        }
    }
    for t in tickets {
        t.wait()?;
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (worst, samples) = watcher.join().map_err(|_| "watcher panicked")?;
    assert!(samples > 10, "the watcher sampled only {samples} times");
    assert!(
        worst <= 49,
        "{worst} acknowledged events were unsynced at once with sync_every_n_events = 50"
    );
    Ok(())
}
