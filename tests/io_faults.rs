//! I/O-error sweep: a scenario that opens a store, appends singles and batches (some
//! durable) across segment rolls, reads, and closes (checkpoint) is run once per I/O call
//! it makes, with that call failing — EIO, ENOSPC, or a sync that fails and loses the data
//! it should have made durable — transiently or from then on. After each run the disk is
//! healed and the store reopened:
//! - it opens, and every event acknowledged as durable is there, identical; after any fault
//!   but a data-losing sync, every acknowledged event is;
//! - once an append failed (a write or sync failed: the store is poisoned), no later append
//!   is acknowledged;
//! - a failed read returns an error and poisons nothing;
//! - no panic.
#![cfg(feature = "testkit")]

mod common;

use std::path::Path;
use std::sync::Arc;

use batpak::fs::sim::{Fault, SimFs};
use batpak::prelude::*;
use common::*;

fn config() -> StoreConfig {
    let mut c = StoreConfig::new(Path::new("/sim/data"));
    c.segment_max_bytes = 4 * 1024;
    c.sync_every_n_events = 8;
    c
}

fn open(fs: &SimFs) -> Result<Store, OpenError> {
    Store::open_with(
        config(),
        OpenOptions::default().with_fs(Arc::new(fs.clone())),
    )
}

struct Acked {
    seq: u64,
    durable: bool,
    payload: Vec<u8>,
}

/// What the scenario saw.
#[derive(Default)]
struct Run {
    acked: Vec<Acked>,
    /// An append failed.
    append_failed: bool,
    /// Appends acknowledged after one failed (must stay 0).
    acked_after_failure: u64,
    /// Reads that failed, and appends acknowledged after a failed read.
    read_failures: u64,
}

fn scenario(fs: &SimFs) -> Run {
    let mut run = Run::default();
    let Ok(store) = open(fs) else {
        return run;
    };
    let mut rng = Rng::new(11);
    for i in 0..60u32 {
        let coord = Coordinate::new(format!("e{}", i % 4), "s");
        let payload = rng.bytes(40 + (i as usize * 13) % 90);
        let batch = i % 9 == 4;
        let durable = if batch { i % 2 == 0 } else { i % 5 == 0 };
        let result = append_raw_mixed(&store, &coord, &payload, batch, durable);
        match result {
            Ok(rs) => {
                if run.append_failed {
                    run.acked_after_failure += rs.len() as u64;
                }
                run.acked.extend(rs.into_iter().map(|r| Acked {
                    seq: r.sequence,
                    durable: r.durable,
                    payload: payload.clone(),
                }));
            }
            Err(_) => run.append_failed = true,
        }
        if i % 10 == 9 {
            if let Some(a) = run.acked.first() {
                if store.get(EventId::new(store.store_id(), a.seq)).is_err() {
                    run.read_failures += 1;
                }
            }
        }
    }
    let _ = store.close();
    run
}

/// Runs the scenario with `fault` at call `at`, heals, reopens and checks.
fn one(fault: Fault, at: u64, persistent: bool) -> Res<()> {
    let what = format!(
        "{fault:?} at call {at}{}",
        if persistent { " and after" } else { "" }
    );
    let fs = SimFs::new();
    fs.inject(fault, at, persistent);
    let run = scenario(&fs);
    fs.clear_injection();
    if run.acked_after_failure > 0 {
        return Err(format!(
            "{what}: {} appends acknowledged after one failed",
            run.acked_after_failure
        )
        .into());
    }
    let store = open(&fs).map_err(|e| format!("{what}: does not reopen after healing: {e}"))?;
    for a in &run.acked {
        let must = a.durable || fault != Fault::SyncLosesData;
        match store.get(EventId::new(store.store_id(), a.seq))? {
            Some(e) if e.payload == a.payload => {}
            Some(_) => return Err(format!("{what}: event {} differs", a.seq).into()),
            None if must => return Err(format!("{what}: acknowledged event {} lost", a.seq).into()),
            None => {}
        }
    }
    if store.stats().poisoned.is_some() {
        return Err(format!("{what}: the reopened store is poisoned").into());
    }
    Ok(())
}

#[test]
fn every_io_call_of_append_roll_read_close_and_reopen_failing_loses_no_acknowledged_event(
) -> TestResult {
    let mut total = 0;
    let mut report = Vec::new();
    for fault in Fault::ALL {
        let probe = SimFs::new();
        probe.inject(fault, u64::MAX, false);
        let clean = scenario(&probe);
        assert!(
            !clean.append_failed && clean.acked.len() > 60,
            "{fault:?}: the clean run works"
        );
        let points = probe.fault_points();
        for at in 0..points {
            for persistent in [false, true] {
                let outcome = std::panic::catch_unwind(|| one(fault, at, persistent));
                match outcome {
                    Ok(r) => r?,
                    Err(_) => return Err(format!("{fault:?} at call {at}: panic").into()),
                }
                total += 1;
            }
        }
        report.push(format!("{fault:?}: {points} calls"));
    }
    println!(
        "I/O-error sweep: {total} runs, every call failing once and from then on ({}), 0 violations",
        report.join(", ")
    );
    Ok(())
}

#[test]
fn a_failed_read_returns_an_error_and_poisons_nothing() -> TestResult {
    let fs = SimFs::new();
    let store = open(&fs)?;
    let r = store.append_with(
        &Coordinate::new("e", "s"),
        EventKind::new(1, 1),
        &1u32,
        AppendOptions::default().durable(),
    )?;
    // Every call from now on may be a read; the first one that is fails.
    fs.inject(Fault::Io, 0, false);
    let mut failed = 0;
    for _ in 0..3 {
        failed += u32::from(store.get(r.id).is_err());
    }
    fs.clear_injection();
    assert!(
        store.stats().poisoned.is_none(),
        "a read fault poisons nothing"
    );
    store.append(&Coordinate::new("e", "s"), EventKind::new(1, 1), &2u32)?;
    println!("{failed} of 3 reads failed");
    Ok(())
}

/// (sequence, payload) of events acknowledged as durable.
type Durable = Vec<(u64, Vec<u8>)>;

/// A file system a crash left behind: torn unsynced writes to cut, no checkpoint; and
/// the events that were acknowledged as durable before it.
fn crashed() -> Res<(SimFs, Durable)> {
    let fs = SimFs::new();
    let store = open(&fs)?;
    let mut durable = Vec::new();
    let mut rng = Rng::new(5);
    for i in 0..40u32 {
        let payload = rng.bytes(60);
        let coord = Coordinate::new(format!("e{}", i % 3), "s");
        let opts = if i % 4 == 0 {
            AppendOptions::default().durable()
        } else {
            AppendOptions::default()
        };
        let item = BatchItem::raw(&coord, EventKind::new(1, 1), payload.clone());
        let r = store.append_raw(item.with_options(opts))?;
        if r.durable {
            durable.push((r.sequence, payload));
        }
    }
    let cut = fs.power_cut(9);
    drop(store);
    Ok((cut, durable))
}

#[test]
fn every_io_call_of_a_recovery_after_a_crash_failing_loses_no_durable_event() -> TestResult {
    let (base, durable) = crashed()?;
    let mut total = 0;
    for fault in Fault::ALL {
        let probe = base.duplicate();
        probe.inject(fault, u64::MAX, false);
        drop(open(&probe)?);
        let points = probe.fault_points();
        for at in 0..points {
            for persistent in [false, true] {
                let what = format!("recovery, {fault:?} at call {at}, persistent {persistent}");
                let fs = base.duplicate();
                fs.inject(fault, at, persistent);
                let first = std::panic::catch_unwind(|| open(&fs).map(drop));
                if first.is_err() {
                    return Err(format!("{what}: panic").into());
                }
                fs.clear_injection();
                let store = open(&fs).map_err(|e| format!("{what}: does not reopen: {e}"))?;
                for (seq, payload) in &durable {
                    let got = store.get(EventId::new(store.store_id(), *seq))?;
                    if got.map(|e| e.payload) != Some(payload.clone()) {
                        return Err(format!("{what}: durable event {seq} lost or changed").into());
                    }
                }
                total += 1;
            }
        }
    }
    println!(
        "recovery I/O-error sweep: {total} runs, {} durable events checked each, 0 violations",
        durable.len()
    );
    Ok(())
}
