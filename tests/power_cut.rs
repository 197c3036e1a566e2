//! Simulated power cuts: every file and directory operation goes through the simulated
//! file system, which at a random moment keeps only what was synced plus a torn prefix of
//! the writes after it. The store must open and satisfy `common::oracle` for a power cut,
//! and again after a second cut right after the recovery.
#![cfg(feature = "testkit")]

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use batpak::fs::sim::SimFs;
use batpak::prelude::*;
use common::oracle::{Crash, Mark, Oracle};
use common::*;

fn open(fs: &SimFs, sync_every: u32) -> Result<Store, OpenError> {
    let mut cfg = StoreConfig::new(Path::new("/sim/data"));
    cfg.segment_max_bytes = 8 * 1024;
    cfg.sync_every_n_events = sync_every;
    Store::open_with(cfg, OpenOptions::default().with_fs(Arc::new(fs.clone())))
}

/// Appends until the file system dies, keeping the oracle's model of what it issued and
/// what was acknowledged.
fn produce(store: &Store, rng: &mut Rng, stop: &AtomicBool) -> Oracle {
    let mut oracle = Oracle::default();
    while !stop.load(Ordering::Relaxed) {
        let coord = Coordinate::new(format!("e{}", rng.below(20)), format!("s{}", rng.below(3)));
        let n = if rng.below(10) == 0 { 3 } else { 1 };
        let durable = rng.below(if n > 1 { 2 } else { 4 }) == 0;
        let counters: Vec<u64> = (0..n).map(|_| oracle.issue(0)).collect();
        let item = |c: &u64| BatchItem::new(&coord, EventKind::new(1, 1), &Mark::new(0, *c));
        let result = if n > 1 {
            counters
                .iter()
                .map(item)
                .collect::<Result<Vec<_>, _>>()
                .and_then(|items| store.append_batch(items, durable))
        } else {
            let opts = if durable {
                AppendOptions::default().durable()
            } else {
                AppendOptions::default()
            };
            item(&counters[0])
                .and_then(|i| store.append_raw(i.with_options(opts)))
                .map(|r| vec![r])
        };
        match result {
            Ok(rs) => {
                for (r, c) in rs.iter().zip(&counters) {
                    oracle.ack(r.sequence, 0, *c, r.durable);
                }
            }
            Err(_) => break,
        }
    }
    oracle
}

/// Starts a producer on `store` and returns once the file system has done 20 to 420 more
/// operations (or the producer stopped): the moment to cut.
fn produce_a_while(
    fs: &SimFs,
    store: &Arc<Store>,
    rng: &mut Rng,
) -> (Arc<AtomicBool>, std::thread::JoinHandle<Oracle>) {
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
    (stop, producer)
}

/// (durable events checked, acknowledged events the cut took)
fn one_power_cut(seed: u64) -> Res<(u64, u64)> {
    let mut rng = Rng::new(seed);
    let fs = SimFs::new();
    let sync_every = [1, 2, 7, 1000][rng.below(4) as usize];
    let store = Arc::new(open(&fs, sync_every)?);
    let (stop, producer) = produce_a_while(&fs, &store, &mut rng);
    let after = fs.power_cut(rng.next_u64());
    stop.store(true, Ordering::Relaxed);
    let oracle = producer.join().map_err(|_| "producer panicked")?;
    drop(store);
    let store = open(&after, sync_every)
        .map_err(|e| format!("seed {seed}: the store does not open after the cut: {e}"))?;
    let first = oracle
        .check(&store.query(&Region::all())?, Crash::Power)
        .map_err(|e| format!("seed {seed}: {e}"))?;
    // Whatever recovery kept must survive the next cut too (recovery syncs its repairs).
    let again = after.power_cut(rng.next_u64());
    drop(store);
    let store = open(&again, sync_every)?;
    let second = oracle
        .check(&store.query(&Region::all())?, Crash::Power)
        .map_err(|e| format!("seed {seed}, second cut: {e}"))?;
    assert!(
        second.events >= first.events,
        "seed {seed}: recovered events vanished after a second cut"
    );
    Ok((oracle.durable_to, first.lost_unsynced))
}

#[test]
fn every_event_acknowledged_as_durable_survives_a_simulated_power_cut() -> TestResult {
    let (mut durable, mut lost) = (0, 0);
    for seed in 0..300 {
        let (d, l) = one_power_cut(seed)?;
        durable += d;
        lost += l;
    }
    eprintln!("300 power cuts: {durable} events covered by durable receipts, {lost} acknowledged-but-unsynced events lost");
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

/// (acknowledged events the cut took, the loss window the store reported just before)
fn cut_after_reading_the_loss_window(seed: u64, sync_every: u32) -> Res<(u64, u64)> {
    let mut rng = Rng::new(seed);
    let fs = SimFs::new();
    let store = Arc::new(open(&fs, sync_every)?);
    let (stop, producer) = produce_a_while(&fs, &store, &mut rng);
    stop.store(true, Ordering::Relaxed);
    let oracle = producer.join().map_err(|_| "producer panicked")?;
    let stats = store.stats();
    let bound = u64::from(sync_every - 1);
    assert!(
        stats.loss_peak_events <= bound && stats.acked_unsynced <= bound,
        "seed {seed}: the loss window ({} now, {} at most) exceeds sync_every_n_events - 1 = {bound}",
        stats.acked_unsynced,
        stats.loss_peak_events
    );
    let after = fs.power_cut(rng.next_u64());
    drop(store);
    let store = open(&after, sync_every)?;
    let seen = oracle
        .check(&store.query(&Region::all())?, Crash::Power)
        .map_err(|e| format!("seed {seed}: {e}"))?;
    Ok((seen.lost_unsynced, stats.acked_unsynced))
}

#[test]
fn a_power_cut_never_takes_more_acknowledged_events_than_the_loss_window_the_store_reported(
) -> TestResult {
    let mut took_some = false;
    for seed in 0..120 {
        let sync_every = [2, 7, 50][seed as usize % 3];
        let (lost, window) = cut_after_reading_the_loss_window(1_000 + seed, sync_every)?;
        assert!(
            lost <= window,
            "seed {seed}: the cut took {lost} acknowledged events, the store reported {window} at risk"
        );
        took_some |= lost > 0;
    }
    assert!(
        took_some,
        "no cut took an unsynced event: the simulation is not biting"
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

/// The oracle itself bites: a lost durable event, a gap, a reordering, a duplicate, a
/// phantom and a changed payload are each refused.
#[test]
fn the_oracle_refuses_a_loss_a_gap_a_reordering_a_duplicate_a_phantom_and_a_changed_payload(
) -> TestResult {
    let fs = SimFs::new();
    let store = open(&fs, 1000)?;
    let mut oracle = Oracle::default();
    let coord = Coordinate::new("e", "s");
    for i in 0..6 {
        let c = oracle.issue(0);
        let opts = if i == 2 {
            AppendOptions::default().durable()
        } else {
            AppendOptions::default()
        };
        let r = store.append_with(&coord, EventKind::new(1, 1), &Mark::new(0, c), opts)?;
        oracle.ack(r.sequence, 0, c, r.durable);
    }
    let events = store.query(&Region::all())?;
    assert!(oracle.check(&events, Crash::Power).is_ok());
    let tail_lost = oracle.check(&events[..4], Crash::Power)?;
    assert_eq!(
        tail_lost.lost_unsynced, 2,
        "unsynced tail may go in a power cut"
    );
    assert!(
        oracle.check(&events[..4], Crash::Process).is_err(),
        "not in a process crash"
    );
    assert!(
        oracle.check(&events[..2], Crash::Power).is_err(),
        "the durable event is lost"
    );
    let mut gap = events.clone();
    gap.remove(1);
    assert!(oracle.check(&gap, Crash::Power).is_err(), "a gap");
    let mut swapped = events.clone();
    let (a, b) = (swapped[3].payload.clone(), swapped[4].payload.clone());
    swapped[3].payload = b;
    swapped[4].payload = a;
    assert!(
        oracle.check(&swapped, Crash::Power).is_err(),
        "a reordering"
    );
    let mut dup = events.clone();
    dup[4].payload = dup[3].payload.clone();
    assert!(oracle.check(&dup, Crash::Power).is_err(), "a duplicate");
    // An event nobody issued (appended behind the oracle's back).
    store.append(&coord, EventKind::new(1, 1), &Mark::new(0, 6))?;
    let phantom = store.query(&Region::all())?;
    assert!(oracle.check(&phantom, Crash::Power).is_err(), "a phantom");
    let mut changed = events.clone();
    if let Some(byte) = changed[0].payload.last_mut() {
        *byte ^= 1;
    }
    assert!(
        oracle.check(&changed, Crash::Power).is_err(),
        "a changed payload"
    );
    Ok(())
}
