//! Crash tests: a child process appends durably and prints each receipt it gets; the
//! parent SIGKILLs it at random moments and checks every printed event after reopening.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use batpak::prelude::*;
use common::*;

/// (sequence, cycle, index) of a receipt the child printed.
type Printed = (u64, u64, u64);

const CHILD_ENV: &str = "BATPAK_CRASH_CHILD_DIR";

fn payload(cycle: u64, i: u64) -> String {
    format!("cycle {cycle} event {i} {}", "x".repeat((i % 50) as usize))
}

fn child_config(dir: &str) -> StoreConfig {
    let mut cfg = StoreConfig::new(dir);
    cfg.sync_every_n_events = 1;
    cfg.sync_mode = SyncMode::SyncData;
    cfg.segment_max_bytes = 64 * 1024;
    cfg
}

/// Runs only inside the child process: append forever, printing each receipt.
#[test]
fn crash_child_entry_point() -> TestResult {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return Ok(());
    };
    let cycle: u64 = std::env::var("BATPAK_CRASH_CYCLE")?.parse()?;
    let store = Store::open(child_config(&dir))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    for i in 0.. {
        let coord = Coordinate::new(format!("e{}", i % 13), "crash");
        let r = store.append(&coord, EventKind::new(1, 1), &payload(cycle, i))?;
        assert!(
            r.durable,
            "sync_every_n_events = 1 makes every receipt durable"
        );
        writeln!(out, "{} {} {}", r.sequence, cycle, i)?;
        out.flush()?;
    }
    Ok(())
}

fn run_child(dir: &std::path::Path, cycle: u64, run_for: Duration) -> Res<Vec<Printed>> {
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "crash_child_entry_point",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .env("BATPAK_CRASH_CYCLE", cycle.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The test harness prints "test name ... " before the child's own output.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if Instant::now() > deadline {
            child.kill()?;
            return Err("child never became ready".into());
        }
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
            if l.ends_with("ready") {
                break;
            }
        }
    }
    let second = Store::open(child_config(&dir.display().to_string()));
    assert!(
        matches!(second, Err(OpenError::Locked { .. })),
        "another process holds the lock"
    );
    std::thread::sleep(run_for);
    child.kill()?; // SIGKILL
    child.wait()?;
    reader.join().map_err(|_| "reader panicked")?;
    let mut acked = Vec::new();
    for line in rx.try_iter() {
        let parts: Vec<u64> = line.split(' ').filter_map(|p| p.parse().ok()).collect();
        if let [seq, c, i] = parts[..] {
            acked.push((seq, c, i));
        }
    }
    Ok(acked)
}

#[test]
fn every_event_a_sigkilled_child_printed_is_present_and_intact_after_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut rng = Rng::new(0x5eed);
    let mut all_acked = Vec::new();
    // Start from a store closed cleanly, so the first reopen uses a checkpoint and then
    // scans what the killed child appended after it.
    Store::open(child_config(&dir.path().display().to_string()))?.close()?;
    for cycle in 0..24u64 {
        let run_for = Duration::from_millis(5 + rng.below(120));
        let acked = run_child(dir.path(), cycle, run_for)?;
        all_acked.extend(acked);
        let store = Store::open(child_config(&dir.path().display().to_string()))?;
        for &(seq, c, i) in &all_acked {
            let e = store
                .get(EventId::new(store.store_id(), seq))?
                .ok_or(format!("acked event {seq} lost in cycle {cycle}"))?;
            assert_eq!(e.payload::<String>()?, payload(c, i), "event {seq} intact");
        }
        store.close()?;
    }
    assert!(
        all_acked.len() > 100,
        "the children appended {} events",
        all_acked.len()
    );
    Ok(())
}
