//! Simulated power cuts: every file and directory operation goes through the simulated
//! file system, which at a random moment keeps only what was synced plus a torn prefix of
//! the writes after it. Every event acknowledged as durable must survive and the store
//! must open.
#![cfg(feature = "testkit")]

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use batpak::fs::sim::SimFs;
use batpak::prelude::*;
use common::*;

fn open(fs: &SimFs, sync_every: u32) -> Result<Store, OpenError> {
    let mut cfg = StoreConfig::new(Path::new("/sim/data"));
    cfg.segment_max_bytes = 8 * 1024;
    cfg.sync_every_n_events = sync_every;
    Store::open_with(cfg, OpenOptions::default().with_fs(Arc::new(fs.clone())))
}

struct Acked {
    seq: u64,
    durable: bool,
    payload: Vec<u8>,
}

/// Appends until the file system dies, recording every receipt.
fn produce(store: &Store, rng: &mut Rng, stop: &AtomicBool) -> Vec<Acked> {
    let mut acked = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let coord = Coordinate::new(format!("e{}", rng.below(20)), format!("s{}", rng.below(3)));
        let len = rng.below(300) as usize;
        let payload = rng.bytes(len);
        let batch = rng.below(10) == 0;
        let durable = if batch {
            rng.below(2) == 0
        } else {
            rng.below(4) == 0
        };
        let result = append_raw_mixed(store, &coord, &payload, batch, durable);
        match result {
            Ok(rs) => acked.extend(rs.into_iter().map(|r| Acked {
                seq: r.sequence,
                durable: r.durable,
                payload: payload.clone(),
            })),
            Err(_) => break,
        }
    }
    acked
}

/// (durable events checked, acknowledged events the cut took)
fn one_power_cut(seed: u64) -> Res<(u64, u64)> {
    let mut rng = Rng::new(seed);
    let fs = SimFs::new();
    let sync_every = [1, 2, 7, 1000][rng.below(4) as usize];
    let store = Arc::new(open(&fs, sync_every)?);
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (store, stop) = (store.clone(), stop.clone());
        let mut prng = Rng::new(rng.next_u64());
        std::thread::spawn(move || produce(&store, &mut prng, &stop))
    };
    let cut_after = fs.operations() + 20 + rng.below(400);
    while fs.operations() < cut_after && !producer.is_finished() {
        std::thread::yield_now();
    }
    let after = fs.power_cut(rng.next_u64());
    stop.store(true, Ordering::Relaxed);
    let acked = producer.join().map_err(|_| "producer panicked")?;
    drop(store);
    let store = open(&after, sync_every)
        .map_err(|e| format!("seed {seed}: the store does not open after the cut: {e}"))?;
    let (mut durable, mut lost) = (0, 0);
    for a in &acked {
        let got = store.get(EventId::new(store.store_id(), a.seq))?;
        durable += u64::from(a.durable);
        match got {
            Some(e) => assert_eq!(
                e.payload, a.payload,
                "seed {seed}: event {} is not intact",
                a.seq
            ),
            None => {
                assert!(!a.durable, "seed {seed}: durable event {} lost", a.seq);
                lost += 1;
            }
        }
    }
    // Whatever recovery kept must survive the next cut too (recovery syncs its repairs).
    let seen = store.stats().events;
    let again = after.power_cut(rng.next_u64());
    drop(store);
    let store = open(&again, sync_every)?;
    assert!(
        store.stats().events >= seen,
        "seed {seed}: recovered events vanished after a second cut"
    );
    Ok((durable, lost))
}

#[test]
fn every_event_acknowledged_as_durable_survives_a_simulated_power_cut() -> TestResult {
    let (mut durable, mut lost) = (0, 0);
    for seed in 0..300 {
        let (d, l) = one_power_cut(seed)?;
        durable += d;
        lost += l;
    }
    eprintln!("300 power cuts: {durable} durable receipts checked, {lost} acknowledged-but-unsynced events lost");
    assert!(
        durable > 1000,
        "the workload acknowledged too few durable events to prove anything"
    );
    assert!(
        lost > 0,
        "no cut ever dropped an unsynced event: the simulation is not biting"
    );
    Ok(())
}

#[test]
fn a_full_disk_poisons_the_store_with_a_clear_error_and_a_reopen_after_freeing_space_keeps_every_acked_event(
) -> TestResult {
    let fs = SimFs::new();
    let store = open(&fs, 1000)?;
    let coord = Coordinate::new("e", "s");
    let acked: Vec<AppendReceipt> = (0..50u32)
        .map(|i| store.append(&coord, EventKind::new(1, 1), &i))
        .collect::<Result<_, _>>()?;
    fs.fail_writes(std::io::ErrorKind::StorageFull);
    let err = store
        .append(&coord, EventKind::new(1, 1), &99u32)
        .err()
        .ok_or("a write to a full disk was acknowledged")?;
    assert!(
        matches!(&err, AppendError::Poisoned(m) if m.contains("seg-0000000001.bpk")),
        "{err}"
    );
    fs.heal();
    let later = store
        .append(&coord, EventKind::new(1, 1), &100u32)
        .err()
        .ok_or("a poisoned store accepted an append")?;
    assert!(
        matches!(later, AppendError::Poisoned(_)),
        "poisoned stays poisoned: {later}"
    );
    assert!(
        matches!(store.sync(), Err(SyncError::Poisoned(_))),
        "a failed write is never papered over by a sync"
    );
    assert!(store.stats().poisoned.is_some());
    drop(store);
    let store = open(&fs, 1000)?;
    for r in &acked {
        assert!(
            store.get(r.id)?.is_some(),
            "acked event {} lost",
            r.sequence
        );
    }
    assert_eq!(store.stats().events, 50);
    Ok(())
}

#[test]
fn a_failing_sync_poisons_the_store_and_is_never_retried() -> TestResult {
    let fs = SimFs::new();
    let store = open(&fs, 1)?;
    let coord = Coordinate::new("e", "s");
    let first = store.append(&coord, EventKind::new(1, 1), &1u32)?;
    assert!(first.durable);
    fs.fail_syncs(std::io::ErrorKind::Other);
    let err = store
        .append(&coord, EventKind::new(1, 1), &2u32)
        .err()
        .ok_or("acknowledged without its sync")?;
    assert!(
        matches!(&err, AppendError::Poisoned(m) if m.starts_with("sync ")),
        "{err}"
    );
    fs.heal();
    assert!(matches!(
        store.append(&coord, EventKind::new(1, 1), &3u32),
        Err(AppendError::Poisoned(_))
    ));
    Ok(())
}
