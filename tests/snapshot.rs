//! Online snapshots: consistent copies taken while producers keep appending, from the
//! read-write store and through the read-only open.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use batpak::prelude::*;
use batpak::store::verify;
use common::*;

/// An acknowledged append: its receipt, its payload and when the receipt arrived.
struct Acked {
    receipt: AppendReceipt,
    payload: Reference,
    at: Instant,
}

/// Four producers appending reference events (every third one durable) until `stop`.
fn producers(
    store: &Arc<Store>,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<Vec<Acked>>> {
    (0..4u64)
        .map(|t| {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut rng = Rng::new(t + 1);
                let mut acked = Vec::new();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let (coord, kind, payload) = reference_event(&mut rng);
                    let opts = AppendOptions {
                        durable: i.is_multiple_of(3),
                        ..AppendOptions::default()
                    };
                    match store.append_with(&coord, kind, &payload, opts) {
                        Ok(receipt) => acked.push(Acked {
                            receipt,
                            payload,
                            at: Instant::now(),
                        }),
                        Err(_) => break,
                    }
                    i += 1;
                }
                acked
            })
        })
        .collect()
}

fn join(handles: Vec<std::thread::JoinHandle<Vec<Acked>>>) -> Res<Vec<Acked>> {
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.join().map_err(|_| "producer panicked")?);
    }
    Ok(all)
}

/// Every acknowledgement received before `before` (durable ones only when `durable_only`)
/// is in `copy`, byte for byte; returns how many were checked.
fn check_copy(copy: &Store, acked: &[Acked], before: Instant, durable_only: bool) -> Res<usize> {
    let mut checked = 0;
    for a in acked.iter().filter(|a| a.at < before) {
        if durable_only && !a.receipt.durable {
            continue;
        }
        let got = copy.get(a.receipt.id)?.ok_or_else(|| {
            format!(
                "event {} acknowledged before the snapshot is missing",
                a.receipt.id
            )
        })?;
        assert_eq!(
            got.payload::<Reference>()?,
            a.payload,
            "event {}",
            a.receipt.id
        );
        checked += 1;
    }
    Ok(checked)
}

#[test]
fn a_snapshot_under_four_producers_holds_every_event_acknowledged_before_it_and_verifies_clean(
) -> TestResult {
    let dir = tempfile::tempdir()?;
    let dest = dir.path().join("copy");
    let mut cfg = small_config(&dir.path().join("store"));
    cfg.segment_max_bytes = 64 * 1024;
    let store = Arc::new(Store::open(cfg)?);
    let stop = Arc::new(AtomicBool::new(false));
    let handles = producers(&store, &stop);
    // Until there are sealed segments to link (however loaded the machine is).
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.stats().segments.len() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    let progress = Mutex::new(Vec::new());
    let report = store.snapshot_with(&dest, |done, total| {
        if let Ok(mut p) = progress.lock() {
            p.push((done, total));
        }
    })?;
    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, Ordering::Relaxed);
    let acked = join(handles)?;
    assert!(report.segments > 2, "{report:?}");
    assert!(
        report.linked > 0,
        "sealed segments are hard-linked: {report:?}"
    );
    let p = progress.into_inner().map_err(|_| "poisoned")?;
    assert!(p.last().is_some_and(|(d, t)| d == t), "{p:?}");
    assert!(
        acked.iter().any(|a| a.at > started),
        "producers kept appending during the snapshot"
    );
    let verified = verify(&dest)?;
    assert!(verified.is_clean(), "{:?}", verified.problems);
    let copy = Store::open(StoreConfig::new(&dest))?;
    assert_eq!(copy.store_id(), store.store_id());
    let checked = check_copy(&copy, &acked, started, false)?;
    assert!(checked > 100, "only {checked} events checked");
    Ok(())
}

#[test]
fn a_snapshot_through_the_read_only_open_holds_every_durable_event_of_the_writing_store(
) -> TestResult {
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("store");
    let dest = dir.path().join("copy");
    let mut cfg = small_config(&src);
    cfg.segment_max_bytes = 64 * 1024;
    let store = Arc::new(Store::open(cfg)?);
    let stop = Arc::new(AtomicBool::new(false));
    let handles = producers(&store, &stop);
    std::thread::sleep(Duration::from_millis(200));
    let reader = Store::open_read_only(&src)?;
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let report = reader.snapshot(&dest)?;
    stop.store(true, Ordering::Relaxed);
    let acked = join(handles)?;
    assert!(report.segments > 1, "{report:?}");
    let copy = Store::open(StoreConfig::new(&dest))?;
    let checked = check_copy(&copy, &acked, started, true)?;
    assert!(checked > 10, "only {checked} durable events checked");
    drop(copy);
    assert!(verify(&dest)?.is_clean());
    Ok(())
}

#[test]
fn a_snapshot_refuses_a_destination_that_holds_files_and_changes_nothing_there() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(small_config(&dir.path().join("store")))?;
    store.append(&Coordinate::new("e", "s"), EventKind::new(1, 1), &1u32)?;
    let dest = dir.path().join("busy");
    std::fs::create_dir_all(&dest)?;
    std::fs::write(dest.join("notes.txt"), b"keep me")?;
    let err = store
        .snapshot(&dest)
        .err()
        .ok_or("a busy destination was accepted")?;
    assert!(err.to_string().contains("busy"), "{err}");
    assert!(err.to_string().contains("not empty"), "{err}");
    assert_eq!(std::fs::read_dir(&dest)?.count(), 1);
    assert_eq!(std::fs::read(dest.join("notes.txt"))?, b"keep me");
    Ok(())
}
