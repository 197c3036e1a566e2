//! I/O-error sweep: each scenario — appends of singles and batches across segment rolls
//! with reads and a closing checkpoint, group commit of three producers, compaction,
//! snapshot, recovery after a crash — is run once per I/O call it makes with that call
//! given each fault (EIO, ENOSPC, a sync that loses its data, EINTR, a short write, a short
//! read), once and from then on. The oracle is `common::sweep`'s; each test prints the call
//! sites and fault points it covered.
#![cfg(feature = "testkit")]

mod common;
#[path = "io_faults/open.rs"]
mod open;
#[path = "io_faults/source.rs"]
mod source;
#[path = "io_faults/write.rs"]
mod write;

use std::sync::{Mutex, OnceLock};

use batpak::fs::sim::{Fault, SimFs};
use batpak::prelude::*;
use common::sweep::{config, gaps, open_on, sweep, Figures, Outcome, Scenario};
use common::*;
use write::{Appends, Compaction, GroupCommit, Recovery, Snapshot};

/// Appends one payload (a batch of three copies, or one event) and takes the result.
fn append(out: &mut Outcome, store: &Store, i: u32, payload: &[u8], failed: bool) -> bool {
    let coord = Coordinate::new(format!("e{}", i % 4), "s");
    let batch = i % 9 == 4;
    let durable = if batch {
        i.is_multiple_of(2)
    } else {
        i.is_multiple_of(5)
    };
    let result = append_raw_mixed(store, &coord, payload, batch, durable)
        .map(|rs| rs.into_iter().map(|r| (r, payload.to_vec())).collect());
    out.take(result, failed) || failed
}

/// Appends `n` events of `len` random bytes (some batched, some durable) from `seed`, then
/// closes the store.
fn appends_then_close(out: &mut Outcome, store: Store, seed: u64, n: u32, len: usize) {
    let mut rng = Rng::new(seed);
    let mut failed = false;
    for i in 0..n {
        failed = append(out, &store, i, &rng.bytes(len), failed);
    }
    finish(out, store);
}

/// Every event of the store on `fs` (opened and closed again).
fn events_of(fs: &SimFs) -> Vec<Event> {
    let store = open_on(fs, config()).expect("the base store opens");
    events(&store).expect("the base store reads")
}

/// Closes the store (final sync, checkpoint) and notes the end state.
fn finish(out: &mut Outcome, store: Store) {
    out.poisoned = store.stats().poisoned.is_some();
    if store.close().is_err() {
        out.failed += 1;
    }
}

/// A store holding 300 events over many small segments, closed cleanly; entity `e1` has a
/// tombstone after its first events.
fn populated() -> SimFs {
    let fs = SimFs::new();
    let store = open_on(&fs, config()).expect("the base store opens");
    fill_base(&store);
    store.close().expect("base close");
    fs
}

/// The 300 events of [`populated`].
fn fill_base(store: &Store) {
    let mut rng = Rng::new(3);
    for i in 0..300u32 {
        let coord = Coordinate::new(format!("e{}", i % 4), "s");
        let item = BatchItem::raw(&coord, EventKind::new(1, 1), rng.bytes(50));
        store.append_raw(item).expect("base append");
        if i == 200 {
            store
                .tombstone_entity(&Coordinate::new("e1", "s"))
                .expect("tombstone");
        }
    }
}

/// After a compaction by tombstones of a base store: every event it must keep is there,
/// identical, and of the events it removes (`e1`'s before its tombstone) all or none
/// (returns whether they are there).
fn old_or_new(store: &Store, before: &[Event]) -> Res<bool> {
    let tomb = before
        .iter()
        .find(|e| e.kind == EventKind::TOMBSTONE_ENTITY)
        .ok_or("no tombstone")?
        .sequence;
    let dropped = |e: &Event| e.coordinate.entity == "e1" && e.sequence < tomb;
    let mut kept_dropped = 0;
    for e in before {
        match store.get(e.id)? {
            Some(got) if got.payload == e.payload => kept_dropped += u64::from(dropped(e)),
            Some(_) => return Err(format!("base event {} differs", e.sequence).into()),
            None if dropped(e) => {}
            None => return Err(format!("base event {} lost", e.sequence).into()),
        }
    }
    let all = before.iter().filter(|e| dropped(e)).count() as u64;
    if kept_dropped != 0 && kept_dropped != all {
        return Err(format!("a mix: {kept_dropped} of {all} compacted events left").into());
    }
    Ok(kept_dropped == all)
}

/// Every event of the store by sequence.
fn events(store: &Store) -> Res<Vec<Event>> {
    Ok(store.query(&Region::all())?)
}

/// Every sweep's figures, printed together by the last one to finish.
static ALL: Mutex<(Figures, usize)> = Mutex::new((
    Figures {
        runs: 0,
        points: Vec::new(),
        sites: std::collections::BTreeMap::new(),
        clean: std::collections::BTreeSet::new(),
    },
    0,
));
const SCENARIOS: usize = 10;

fn run_sweep(s: &dyn Scenario) -> TestResult {
    let mut figures = Figures::default();
    sweep(s, &mut figures)?;
    let (first, _) = gaps(&figures);
    assert!(
        first.is_empty(),
        "call sites of a clean run left unfaulted: {first:?}"
    );
    println!("{}", figures.report(s.name()));
    let mut all = ALL.lock().unwrap_or_else(|e| e.into_inner());
    all.0.runs += figures.runs;
    all.0.points.extend(figures.points);
    all.0.clean.extend(figures.clean);
    for (k, v) in figures.sites {
        all.0.sites.entry(k).or_default().extend(v);
    }
    all.1 += 1;
    if all.1 == SCENARIOS {
        println!("{}", all.0.report("I/O-error sweep, all scenarios"));
        let reached = all
            .0
            .sites
            .keys()
            .map(|(file, line, _)| (file.to_string(), *line))
            .collect();
        let (missing, named, total) = source::unreached(&reached)?;
        assert!(
            missing.is_empty(),
            "I/O call sites in the source the sweep never reached: {missing:#?}"
        );
        println!(
            "the engine's source has {total} I/O call lines: {} reached by the sweep, {named} named \
             as unreachable with the reason (tests/io_faults/source.rs)",
            total - named
        );
        let (_, later) = gaps(&all.0);
        println!(
            "{} call sites are reached only after a fault (cleanup and error paths, not faulted themselves): {}",
            later.len(),
            later.join(", ")
        );
    }
    Ok(())
}

#[test]
fn every_io_call_of_appends_rolls_reads_and_the_checkpoint_failing_loses_no_acknowledged_event(
) -> TestResult {
    run_sweep(&Appends)
}

#[test]
fn every_io_call_of_a_group_commit_of_three_producers_failing_loses_no_acknowledged_event(
) -> TestResult {
    run_sweep(&GroupCommit)
}

#[test]
fn every_io_call_of_a_compaction_failing_leaves_the_old_state_or_the_new_one() -> TestResult {
    run_sweep(&Compaction(OnceLock::new()))
}

#[test]
fn every_io_call_of_a_snapshot_failing_loses_nothing_and_a_reported_snapshot_opens() -> TestResult {
    run_sweep(&Snapshot(OnceLock::new()))
}

#[test]
fn every_io_call_of_a_recovery_after_a_crash_failing_loses_no_durable_event() -> TestResult {
    run_sweep(&Recovery(OnceLock::new()))
}

#[test]
fn every_io_call_of_a_salvage_failing_keeps_a_prefix_and_loses_no_acknowledged_event() -> TestResult
{
    run_sweep(&open::Salvage(OnceLock::new()))
}

#[test]
fn every_io_call_of_an_open_finishing_a_committed_compaction_failing_ends_in_the_new_state(
) -> TestResult {
    run_sweep(&open::Interrupted {
        committed: true,
        base: OnceLock::new(),
    })
}

#[test]
fn every_io_call_of_an_open_removing_an_uncommitted_compaction_failing_keeps_the_old_state(
) -> TestResult {
    run_sweep(&open::Interrupted {
        committed: false,
        base: OnceLock::new(),
    })
}

#[test]
fn every_io_call_of_a_salvage_adopting_a_directory_without_identity_and_with_a_torn_newest_segment_failing_loses_nothing(
) -> TestResult {
    run_sweep(&open::Damaged(OnceLock::new()))
}

#[test]
fn every_io_call_of_the_offline_verify_failing_is_reported_and_changes_nothing() -> TestResult {
    run_sweep(&open::Verify(OnceLock::new()))
}

#[test]
fn a_failed_read_returns_an_error_and_poisons_nothing() -> TestResult {
    let fs = SimFs::new();
    let store = open_on(&fs, config())?;
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

/// Found by the sweep: a read that failed once while a compaction rebuilt its index after
/// the commit poisoned the store. Every read-only call site of a compaction now fails once,
/// at each of its calls: the store stays usable and loses nothing.
#[test]
fn a_read_failing_once_during_a_compaction_never_poisons_the_store() -> TestResult {
    let scenario = Compaction(OnceLock::new());
    let probe = scenario.base();
    scenario.run(&probe);
    let mut runs = 0;
    for site in probe.call_sites().iter().filter(|s| s.call.reads_only()) {
        for k in 0..site.calls {
            let fs = scenario.base();
            fs.inject_at_site(Fault::Io, (site.file, site.line, site.call), k, false);
            let out = scenario.run(&fs);
            assert!(
                !out.poisoned && out.acked_after_failure == 0,
                "{}:{} {:?} call {k}: {out:?}",
                site.file,
                site.line,
                site.call
            );
            fs.clear_injection();
            scenario.check(&fs, &scenario.open(&fs)?, &out)?;
            runs += 1;
        }
    }
    println!("{runs} single read faults during a compaction, none poisoned the store");
    assert!(runs > 0);
    Ok(())
}

/// Found by the sweep: a salvage that failed while copying the damaged tail left its
/// partial copy behind, and every later salvage refused to start because that name was
/// taken. Now it takes the next free name and never replaces a salvaged file.
#[test]
fn a_salvage_that_failed_part_way_can_run_again_and_keeps_every_copy() -> TestResult {
    let scenario = open::Salvage(OnceLock::new());
    let probe = scenario.base();
    scenario.run(&probe);
    let copy = probe
        .call_sites()
        .into_iter()
        .find(|s| s.file == "src/store/recovery.rs" && s.call == batpak::fs::sim::Call::ReadAt)
        .ok_or("the salvage never copied")?;
    let fs = scenario.base();
    fs.inject_at_site(Fault::Io, (copy.file, copy.line, copy.call), 0, false);
    assert!(scenario.open(&fs).is_err(), "the faulted salvage succeeded");
    fs.clear_injection();
    let store = scenario.open(&fs)?;
    assert!(!store.recovery_report().salvaged.is_empty());
    let dir = std::path::Path::new("/sim/data/salvaged");
    let mut names: Vec<String> = batpak::fs::FileSystem::list_dir(&fs, dir)?
        .into_iter()
        .filter(|n| n.starts_with("seg-0000000002.bpk.from-"))
        .collect();
    names.sort();
    assert_eq!(
        names.len(),
        2,
        "the partial copy and the whole one: {names:?}"
    );
    assert!(names[1].ends_with(".1"), "{names:?}");
    Ok(())
}

/// A directory whose symbolic links cannot be listed is not taken to have none: the open
/// stops with an error naming the directory instead of going on unchecked.
#[test]
fn an_open_that_cannot_look_for_symbolic_links_stops_naming_the_directory() -> TestResult {
    let fs = SimFs::new();
    drop(open_on(&fs, config())?);
    let probe = fs.duplicate();
    drop(open_on(&probe, config())?);
    let links = probe
        .call_sites()
        .into_iter()
        .find(|s| s.file == "src/store/mod.rs" && s.call == batpak::fs::sim::Call::ListDir)
        .ok_or("the open never looked for links")?;
    fs.inject_at_site(Fault::Io, (links.file, links.line, links.call), 0, false);
    let err = open_on(&fs, config())
        .err()
        .ok_or("opened without the check")?;
    assert!(
        err.to_string().contains("symbolic links") && err.to_string().contains("/sim/data"),
        "{err}"
    );
    fs.clear_injection();
    drop(open_on(&fs, config())?);
    Ok(())
}
