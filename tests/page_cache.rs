//! What the page cache shows is not what the disk has: after a failed sync (Linux drops
//! the pages from the way to the disk but goes on showing them) and after a process that
//! died without syncing (a restart without a reboot reads its writes from the cache). Found
//! by the I/O-error sweep's last rule: after healing, a durable append followed by a power
//! cut must keep that append and every durable receipt. Each test fails without its fix.
#![cfg(feature = "testkit")]

mod common;

use std::path::Path;

use batpak::fs::sim::{Call, Fault, Replay, SimFs};
use batpak::fs::FileSystem;
use batpak::prelude::*;
use common::sweep::{config, open_on};
use common::*;

/// A durable append to the store on `fs`, a power cut, a reopen: the append is there.
fn durable_append_survives_a_power_cut(fs: &SimFs, what: &str) -> TestResult {
    let store = open_on(fs, config()).map_err(|e| format!("{what}: reopen: {e}"))?;
    let r = store.append_with(
        &Coordinate::new("after", "s"),
        EventKind::new(1, 1),
        &"after",
        AppendOptions::default().durable(),
    )?;
    let cut = fs.power_cut(7);
    drop(store);
    let store = open_on(&cut, config()).map_err(|e| format!("{what}: after the power cut: {e}"))?;
    assert!(
        store.get(r.id)?.is_some(),
        "{what}: the durable append is lost"
    );
    Ok(())
}

fn append(store: &Store, i: u32) -> Result<AppendReceipt, AppendError> {
    store.append(&Coordinate::new("e", "s"), EventKind::new(1, 1), &i)
}

#[test]
fn after_a_failed_sync_the_store_cuts_what_the_disk_may_have_lost() -> TestResult {
    let fs = SimFs::new();
    let store = open_on(&fs, config())?;
    for i in 0..5 {
        append(&store, i)?;
    }
    fs.inject(Fault::SyncLosesData, 0, false);
    assert!(store.sync().is_err(), "the sync failed");
    fs.clear_injection();
    drop(store);
    // The same boot: the cache would still show the five events the disk never got.
    durable_append_survives_a_power_cut(&fs, "after a failed sync")
}

#[test]
fn a_segment_whose_header_never_reached_the_disk_is_removed() -> TestResult {
    let fill = |store: &Store| -> Result<(), AppendError> {
        for i in 0..200 {
            append(store, i)?;
        }
        Ok(())
    };
    let probe = SimFs::new();
    fill(&open_on(&probe, config())?)?;
    let header_sync = probe
        .call_sites()
        .into_iter()
        .find(|s| s.file == "src/store/segment.rs" && s.call == Call::Sync)
        .ok_or("no segment was created")?;
    let fs = SimFs::new();
    let store = open_on(&fs, config())?;
    fs.inject_at_site(
        Fault::SyncLosesData,
        (header_sync.file, header_sync.line, header_sync.call),
        0,
        false,
    );
    assert!(fill(&store).is_err(), "the roll failed");
    fs.clear_injection();
    drop(store);
    let names = fs.list_dir(Path::new("/sim/data"))?;
    assert!(
        !names.contains(&"seg-0000000002.bpk".to_string()),
        "{names:?}"
    );
    durable_append_survives_a_power_cut(&fs, "after a failed header sync")
}

#[test]
fn a_restart_without_a_reboot_at_any_moment_of_a_roll_keeps_later_durable_appends() -> TestResult {
    let fs = SimFs::recording();
    let store = open_on(&fs, config())?;
    let mut i = 0;
    while store.stats().segments.len() < 3 {
        append(&store, i)?;
        i += 1;
    }
    drop(store);
    let mut replay = Replay::of(&fs);
    let mut moments = 0;
    while replay.step() {
        // The state a new process finds at this moment, unsynced writes and all.
        let live = replay.live();
        if open_on(&live.duplicate(), config()).is_err() {
            continue; // before the store existed
        }
        durable_append_survives_a_power_cut(&live, &format!("call {}", replay.position()))?;
        moments += 1;
    }
    println!(
        "{moments} restarts without a reboot, each followed by a durable append and a power cut"
    );
    assert!(moments > 50);
    Ok(())
}
