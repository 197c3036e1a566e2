//! Behaviour of the store API: appends, reads, reopen, producers, subscribers, close.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use batpak::prelude::*;
use common::*;

#[test]
fn append_get_and_query_survive_reopen_across_several_segment_rolls() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut rng = Rng::new(7);
    let mut written = Vec::new();
    {
        let store = Store::open(small_config(dir.path()))?;
        for _ in 0..2_000 {
            let (coord, kind, payload) = reference_event(&mut rng);
            let r = store.append(&coord, kind, &payload)?;
            written.push((r.id, coord, kind, payload));
        }
        assert!(
            store.stats().segments.len() >= 5,
            "segments: {}",
            store.stats().segments.len()
        );
        store.close()?;
    }
    let store = Store::open(small_config(dir.path()))?;
    for (id, coord, kind, payload) in &written {
        let e = store.get(*id)?.ok_or("event missing after reopen")?;
        assert_eq!(&e.coordinate, coord);
        assert_eq!(e.kind, *kind);
        assert_eq!(&e.payload::<Reference>()?, payload);
    }
    let all = store.query(&Region::all())?;
    assert_eq!(all.len(), written.len());
    assert!(all.windows(2).all(|w| w[0].sequence < w[1].sequence));
    let entity = &written[10].1.entity;
    let expected: Vec<EventId> = written
        .iter()
        .filter(|w| &w.1.entity == entity)
        .map(|w| w.0)
        .collect();
    let got: Vec<EventId> = store.stream(entity)?.iter().map(|e| e.id).collect();
    assert_eq!(got, expected);
    let scope_kind = Region::scope("tenant-3").with_kind(EventKind::new(1, 2));
    let expected = written
        .iter()
        .filter(|w| w.1.scope == "tenant-3" && w.2 == EventKind::new(1, 2))
        .count();
    assert_eq!(store.query(&scope_kind)?.len(), expected);
    Ok(())
}

#[test]
fn n_producer_threads_get_unique_receipts_and_every_event_reads_back() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(Store::open(small_config(dir.path()))?);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let coord = Coordinate::new(format!("producer:{t}"), "s");
                (0..500u32)
                    .map(|i| {
                        store
                            .append(&coord, EventKind::new(1, 1), &(t, i))
                            .map(|r| (r, t, i))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
        })
        .collect();
    let mut receipts = Vec::new();
    for t in threads {
        receipts.extend(t.join().map_err(|_| "producer panicked")??);
    }
    let mut seqs: Vec<u64> = receipts.iter().map(|r| r.0.sequence).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 2000, "sequences are unique");
    for (r, t, i) in receipts {
        let e = store.get(r.id)?.ok_or("missing")?;
        assert_eq!(e.payload::<(u32, u32)>()?, (t, i));
    }
    Ok(())
}

#[test]
fn pipelined_submit_returns_every_receipt_in_order() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    let coord = Coordinate::new("e", "s");
    let tickets: Vec<Ticket> = (0..1000u32)
        .map(|i| store.submit(&coord, EventKind::new(1, 1), &i, AppendOptions::default()))
        .collect::<Result<_, _>>()?;
    let seqs: Vec<u64> = tickets
        .into_iter()
        .map(|t| t.wait().map(|r| r.sequence))
        .collect::<Result<_, _>>()?;
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1));
    Ok(())
}

#[test]
fn the_subscriber_ring_drops_the_oldest_entries_and_counts_them() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut cfg = StoreConfig::new(dir.path());
    cfg.broadcast_capacity = 8;
    let store = Store::open(cfg)?;
    let mut sub = store.subscribe(Region::all());
    let coord = Coordinate::new("e", "s");
    for i in 0..20u32 {
        store.append(&coord, EventKind::new(1, 1), &i)?;
    }
    assert_eq!(sub.dropped(), 12);
    let first = sub.recv_timeout(Duration::from_secs(1))?;
    assert_eq!(
        first.payload::<u32>()?,
        12,
        "the oldest twelve were dropped"
    );
    assert_eq!(
        first.sequence, 13,
        "the delivery carries its sequence, so the gap shows"
    );
    Ok(())
}

#[test]
fn a_subscription_from_a_sequence_catches_up_then_goes_live_without_gap_or_duplicate() -> TestResult
{
    let dir = tempfile::tempdir()?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    let coord = Coordinate::new("e", "s");
    for i in 0..50u32 {
        store.append(&coord, EventKind::new(1, 1), &i)?;
    }
    let mut sub = store.subscribe_from(Region::entity("e"), 11);
    for i in 50..60u32 {
        store.append(&coord, EventKind::new(1, 1), &i)?;
    }
    let got: Vec<u64> = (0..50)
        .map(|_| sub.recv_timeout(Duration::from_secs(1)).map(|e| e.sequence))
        .collect::<Result<_, _>>()?;
    assert_eq!(got, (11..=60).collect::<Vec<u64>>());
    assert!(matches!(sub.try_recv(), Err(RecvError::Timeout)));
    Ok(())
}

#[test]
fn close_drains_at_most_the_shutdown_drain_limit_and_reports_the_rest() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut cfg = StoreConfig::new(dir.path());
    cfg.shutdown_drain_limit = 10;
    // A clock that takes a millisecond per call keeps the writer slower than the producer,
    // so commands are still queued when the close begins.
    cfg.clock = Some(Arc::new(|| {
        std::thread::sleep(Duration::from_millis(1));
        batpak::config::system_time_micros()
    }));
    let store = Store::open(cfg)?;
    let coord = Coordinate::new("e", "s");
    let tickets: Vec<Ticket> = (0..300u32)
        .map(|i| store.submit(&coord, EventKind::new(1, 1), &i, AppendOptions::default()))
        .collect::<Result<_, _>>()?;
    let report = store.close()?;
    let results: Vec<_> = tickets.into_iter().map(Ticket::wait).collect();
    let rejected = results
        .iter()
        .filter(|r| matches!(r, Err(AppendError::Closed)))
        .count() as u64;
    let written = results.iter().filter(|r| r.is_ok()).count() as u64;
    assert_eq!(report.drained, 10, "{report:?}");
    assert!(rejected > 0, "{report:?}");
    assert_eq!(report.rejected, rejected, "{report:?}");
    assert_eq!(written + rejected, 300);
    assert!(matches!(
        store.append(&coord, EventKind::new(1, 1), &0),
        Err(AppendError::Closed)
    ));
    drop(store);
    let reopened = Store::open(StoreConfig::new(dir.path()))?;
    assert_eq!(
        reopened.stats().events,
        written,
        "every acknowledged event is there"
    );
    Ok(())
}

#[test]
fn the_injected_clock_stamps_every_event() -> TestResult {
    let dir = tempfile::tempdir()?;
    let ticks = Arc::new(AtomicU64::new(1_000_000));
    let mut cfg = StoreConfig::new(dir.path());
    let t = ticks.clone();
    cfg.clock = Some(Arc::new(move || t.fetch_add(10, Ordering::SeqCst)));
    let store = Store::open(cfg)?;
    let coord = Coordinate::new("e", "s");
    let a = store.append(&coord, EventKind::new(1, 1), &1)?;
    let b = store.append(&coord, EventKind::new(1, 1), &2)?;
    assert!(
        (1_000_000..1_000_100).contains(&a.timestamp_us),
        "{}",
        a.timestamp_us
    );
    assert!(b.timestamp_us > a.timestamp_us);
    assert_eq!(
        store.get(b.id)?.map(|e| e.timestamp_us),
        Some(b.timestamp_us)
    );
    Ok(())
}

#[test]
fn a_clock_that_jumps_backwards_changes_no_id_or_order() -> TestResult {
    let dir = tempfile::tempdir()?;
    let ticks = Arc::new(AtomicU64::new(5_000_000));
    let mut cfg = StoreConfig::new(dir.path());
    let t = ticks.clone();
    cfg.clock = Some(Arc::new(move || t.fetch_sub(1_000, Ordering::SeqCst)));
    let store = Store::open(cfg)?;
    let coord = Coordinate::new("e", "s");
    let a = store.append(&coord, EventKind::new(1, 1), &1)?;
    let b = store.append(&coord, EventKind::new(1, 1), &2)?;
    assert!(a.id < b.id && a.sequence < b.sequence);
    assert!(b.timestamp_us < a.timestamp_us);
    assert_eq!(
        store.get(a.id)?.map(|e| e.timestamp_us),
        Some(a.timestamp_us)
    );
    Ok(())
}

#[test]
fn a_second_read_write_open_of_the_same_directory_is_refused_naming_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let _first = Store::open(StoreConfig::new(dir.path()))?;
    let err = Store::open(StoreConfig::new(dir.path()))
        .err()
        .ok_or("second open succeeded")?;
    assert!(matches!(err, OpenError::Locked { .. }));
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
    Ok(())
}

#[test]
fn a_read_only_open_sees_what_the_holder_has_written_and_cannot_append() -> TestResult {
    let dir = tempfile::tempdir()?;
    let writer = Store::open(StoreConfig::new(dir.path()))?;
    let coord = Coordinate::new("e", "s");
    let r = writer.append(&coord, EventKind::new(1, 1), &"hello")?;
    let reader = Store::open_read_only(dir.path())?;
    assert_eq!(
        reader.get(r.id)?.map(|e| e.payload::<String>().ok()),
        Some(Some("hello".into()))
    );
    assert!(matches!(
        reader.append(&coord, EventKind::new(1, 1), &1),
        Err(AppendError::ReadOnly)
    ));
    Ok(())
}

#[test]
fn a_nonsensical_config_is_refused_naming_the_field_and_range() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut cfg = StoreConfig::new(dir.path());
    cfg.segment_max_bytes = 100;
    let err = Store::open(cfg).err().ok_or("opened")?.to_string();
    assert!(
        err.contains("segment_max_bytes") && err.contains("4096..="),
        "{err}"
    );
    Ok(())
}

#[test]
fn a_repeated_idempotency_key_returns_the_first_receipt_even_after_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let coord = Coordinate::new("e", "s");
    let opts = AppendOptions::default().idempotency_key(0xfeed);
    let first = {
        let store = Store::open(StoreConfig::new(dir.path()))?;
        let first = store.append_with(&coord, EventKind::new(1, 1), &1, opts.clone())?;
        let again = store.append_with(&coord, EventKind::new(1, 1), &1, opts.clone())?;
        assert!(again.deduplicated && again.id == first.id);
        first
    };
    let store = Store::open(StoreConfig::new(dir.path()))?;
    let again = store.append_with(&coord, EventKind::new(1, 1), &1, opts)?;
    assert!(again.deduplicated);
    assert_eq!(again.id, first.id);
    assert_eq!(store.stats().events, 1);
    Ok(())
}

#[test]
fn an_expected_sequence_that_does_not_match_is_a_conflict_and_writes_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    let coord = Coordinate::new("acct:1", "s");
    let a = store.append_with(
        &coord,
        EventKind::new(1, 1),
        &1,
        AppendOptions::default().expect(Expected::NoEvents),
    )?;
    let stale = AppendOptions::default().expect(Expected::NoEvents);
    let err = store
        .append_with(&coord, EventKind::new(1, 1), &2, stale)
        .err()
        .ok_or("appended")?;
    assert!(matches!(err, AppendError::Conflict { actual: Some(s), .. } if s == a.sequence));
    store.append_with(
        &coord,
        EventKind::new(1, 1),
        &3,
        AppendOptions::default().expect(Expected::Sequence(a.sequence)),
    )?;
    assert_eq!(store.stream("acct:1")?.len(), 2);
    Ok(())
}

#[test]
fn a_batch_with_an_unknown_cause_writes_none_of_its_events() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    let coord = Coordinate::new("e", "s");
    let ok = BatchItem::new(&coord, EventKind::new(1, 1), &1)?;
    let bad = BatchItem::new(&coord, EventKind::new(1, 1), &2)?
        .with_options(AppendOptions::default().caused_by(EventId::new(store.store_id(), 999)));
    let err = store
        .append_batch(vec![ok.clone(), bad], false)
        .err()
        .ok_or("appended")?;
    assert!(matches!(err, AppendError::UnknownCause(_)));
    assert_eq!(store.stats().events, 0);
    let receipts = store.append_batch(vec![ok.clone(), ok], true)?;
    assert!(receipts.iter().all(|r| r.durable));
    assert_eq!(store.stats().events, 2);
    Ok(())
}

#[test]
fn an_event_inherits_the_correlation_of_its_cause() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    let coord = Coordinate::new("e", "s");
    let root = store.append(&coord, EventKind::new(1, 1), &1)?;
    let child = store.append_with(
        &coord,
        EventKind::new(1, 2),
        &2,
        AppendOptions::default().caused_by(root.id),
    )?;
    let grandchild = store.append_with(
        &coord,
        EventKind::new(1, 3),
        &3,
        AppendOptions::default().caused_by(child.id),
    )?;
    let e = store.get(grandchild.id)?.ok_or("missing")?;
    assert_eq!(e.causation, Some(child.id));
    assert_eq!(e.correlation, root.id);
    assert_eq!(
        store.get(root.id)?.map(|e| e.correlation),
        Some(root.id),
        "a root is its own correlation"
    );
    Ok(())
}

#[test]
fn a_durable_append_is_synced_before_its_receipt_returns() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    let coord = Coordinate::new("e", "s");
    let plain = store.append(&coord, EventKind::new(1, 1), &1)?;
    assert!(!plain.durable);
    let durable = store.append_with(
        &coord,
        EventKind::new(1, 1),
        &2,
        AppendOptions::default().durable(),
    )?;
    assert!(durable.durable);
    assert!(store.stats().durable_sequence >= durable.sequence);
    Ok(())
}

#[test]
fn a_slow_producers_events_are_synced_soon_after_the_writer_goes_idle() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    let r = store.append(&Coordinate::new("e", "s"), EventKind::new(1, 1), &1)?;
    assert!(!r.durable);
    std::thread::sleep(batpak::store::IDLE_SYNC_AFTER * 10);
    assert_eq!(store.stats().acked_unsynced, 0);
    assert!(store.stats().durable_sequence >= r.sequence);
    Ok(())
}

#[test]
fn an_event_larger_than_a_segment_is_refused_naming_the_limit_and_nothing_is_written() -> TestResult
{
    let dir = tempfile::tempdir()?;
    let store = Store::open(small_config(dir.path()))?;
    let coord = Coordinate::new("e", "s");
    let big = vec![7u8; 20 * 1024];
    let err = store
        .append(&coord, EventKind::new(1, 1), &serde_bytes::Bytes::new(&big))
        .err()
        .ok_or("appended")?;
    assert!(
        matches!(err, AppendError::TooLarge { max: 16384, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("segment_max_bytes"), "{err}");
    store.append(&coord, EventKind::new(1, 1), &1u8)?;
    assert_eq!(store.stats().events, 1);
    Ok(())
}

#[test]
fn hostile_coordinates_are_refused_with_a_clear_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    let empty = store
        .append(&Coordinate::new("", "s"), EventKind::new(1, 1), &1u8)
        .err()
        .ok_or("appended")?;
    assert!(
        matches!(empty, AppendError::InvalidCoordinate(_)),
        "{empty}"
    );
    let huge = Coordinate::new("x".repeat(5000), "s");
    let err = store
        .append(&huge, EventKind::new(1, 1), &1u8)
        .err()
        .ok_or("appended")?;
    assert!(err.to_string().contains("1..=1024"), "{err}");
    // Control characters and escapes are just bytes to the store; they round-trip.
    let odd = Coordinate::new("order:\u{1b}[2J\n", "tenant\u{0}");
    let r = store.append(&odd, EventKind::new(1, 1), &"\u{1b}]52;c;payload")?;
    assert_eq!(store.get(r.id)?.map(|e| e.coordinate), Some(odd));
    Ok(())
}

#[test]
fn a_full_writer_channel_blocks_producers_and_counts_the_blocked_sends_and_time() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut cfg = StoreConfig::new(dir.path());
    cfg.writer_channel_capacity = 2;
    // A slow clock keeps the writer behind the producer.
    cfg.clock = Some(Arc::new(|| {
        std::thread::sleep(Duration::from_micros(300));
        batpak::config::system_time_micros()
    }));
    let store = Store::open(cfg)?;
    let coord = Coordinate::new("e", "s");
    let tickets: Vec<Ticket> = (0..50u32)
        .map(|i| store.submit(&coord, EventKind::new(1, 1), &i, AppendOptions::default()))
        .collect::<Result<_, _>>()?;
    for t in tickets {
        t.wait()?;
    }
    let stats = store.stats();
    assert!(stats.blocked_sends > 0, "{stats:?}");
    assert!(stats.blocked_time > Duration::ZERO);
    assert_eq!(stats.channel_capacity, 2);
    assert_eq!(stats.events, 50, "a blocked producer loses nothing");
    Ok(())
}

#[test]
fn a_second_close_racing_the_first_returns_only_once_the_store_is_closed() -> TestResult {
    for round in 0..20 {
        let dir = tempfile::tempdir()?;
        let store = std::sync::Arc::new(Store::open(StoreConfig::new(dir.path()))?);
        for i in 0..2_000u32 {
            store.append(
                &Coordinate::new(format!("e{}", i % 50), "s"),
                EventKind::new(1, 1),
                &i,
            )?;
        }
        let ckpt = dir.path().join("index.ckpt");
        let closers: Vec<_> = (0..2)
            .map(|_| {
                let (store, ckpt) = (store.clone(), ckpt.clone());
                std::thread::spawn(move || (store.close().is_ok(), ckpt.exists()))
            })
            .collect();
        let results: Vec<(bool, bool)> = closers
            .into_iter()
            .map(|h| h.join().map_err(|_| "a close panicked"))
            .collect::<Result<_, _>>()?;
        assert_eq!(
            results.iter().filter(|r| r.0).count(),
            1,
            "round {round}: {results:?}"
        );
        assert!(
            results.iter().all(|r| r.1),
            "round {round}: a close returned before the checkpoint was written: {results:?}"
        );
    }
    Ok(())
}
