//! An idle store does no I/O: after its appends settle (the idle sync and its marker), ten
//! seconds of idleness make no file-system call at all — no write, no sync, no read. Counted
//! on the simulated file system, which sees every call the engine makes. (The probe from
//! outside, `/proc/PID/io` of a child process, is in `tests/trust.rs`; the benchmark figure in
//! `benches/lifecycle.rs`.)
#![cfg(feature = "testkit")]

mod common;

use std::time::Duration;

use batpak::fs::sim::SimFs;
use batpak::prelude::*;
use common::sweep::open_on;
use common::*;

/// How long the store is watched while idle.
const IDLE: Duration = Duration::from_secs(10);
/// Time for the idle sync (due 20 ms after the last batch) and its marker to finish.
const SETTLE: Duration = Duration::from_millis(300);

fn config(every: u32) -> StoreConfig {
    let mut c = StoreConfig::new(std::path::Path::new("/sim/data"));
    c.sync_every_n_events = every;
    c
}

/// File-system calls the store makes during `IDLE` after `SETTLE`.
fn calls_while_idle(fs: &SimFs) -> u64 {
    std::thread::sleep(SETTLE);
    let before = fs.operations();
    std::thread::sleep(IDLE);
    fs.operations() - before
}

/// Opens, appends `n` events (durable ones when `durable`), and counts the idle calls.
fn idle_after_appends(every: u32, n: u32, durable: bool) -> Res<(SimFs, u64)> {
    let fs = SimFs::new();
    let store = open_on(&fs, config(every))?;
    let opts = if durable {
        AppendOptions::default().durable()
    } else {
        AppendOptions::default()
    };
    for i in 0..n {
        store.append_with(
            &Coordinate::new("e", "s"),
            EventKind::new(1, 1),
            &i,
            opts.clone(),
        )?;
    }
    let calls = calls_while_idle(&fs);
    store.close()?;
    Ok((fs, calls))
}

/// Reopens the store on `fs` (which holds data) and counts the idle calls.
fn idle_after_reopen(fs: &SimFs, every: u32) -> Res<u64> {
    let store = open_on(fs, config(every))?;
    let calls = calls_while_idle(fs);
    store.close()?;
    Ok(calls)
}

#[test]
fn ten_seconds_of_idleness_after_appends_or_a_reopen_make_no_file_system_call() -> TestResult {
    let cases: Vec<(&str, u32, u32, bool)> = vec![
        ("one event, sync every 1", 1, 1, false),
        ("one event, sync every 100", 100, 1, false),
        ("a thousand events, sync every 8", 8, 1000, false),
        ("durable appends, sync every 100", 100, 20, true),
    ];
    let runs: Vec<_> = cases
        .into_iter()
        .map(|(what, every, n, durable)| {
            std::thread::spawn(move || -> Result<(String, u64, u64), String> {
                let (fs, calls) =
                    idle_after_appends(every, n, durable).map_err(|e| e.to_string())?;
                let again = idle_after_reopen(&fs, every).map_err(|e| e.to_string())?;
                Ok((what.to_string(), calls, again))
            })
        })
        .collect();
    for run in runs {
        let (what, calls, again) = run.join().map_err(|_| "an idle run panicked")??;
        println!("idle {what}: {calls} calls after the appends, {again} after a reopen");
        assert_eq!(
            calls, 0,
            "{what}: the idle store made {calls} file-system calls in {IDLE:?}"
        );
        assert_eq!(
            again, 0,
            "{what}: the reopened idle store made {again} file-system calls in {IDLE:?}"
        );
    }
    Ok(())
}
