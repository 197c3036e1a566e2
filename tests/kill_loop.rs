//! Kill loop: a child process appends from two producers, printing every receipt it gets,
//! and is SIGKILLed at a random moment; the parent reopens the store and checks it against
//! what the child was told. Repeated 2,000 times across three sync policies, each
//! directory taking 40 kills in a row (every reopen recovers what the previous kills left).
//!
//! The oracle is `common::oracle`'s for a process crash (the OS keeps what was written):
//! every acknowledged event is there, byte for byte, durable or not; sequences run 1..=n
//! without gaps or duplicates; each producer's events are its counters 0, 1, 2, ... in
//! issue order with nothing extra (at most the one append it was waiting for beyond its
//! last receipt). The projection cache the child kept writing equals a fold of the log,
//! and the store verifies clean.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use batpak::prelude::*;
use batpak::projection::{Freshness, Projection};
use common::oracle::{Crash, Mark, Oracle};
use common::*;

const CHILD_ENV: &str = "BATPAK_KILL_CHILD_DIR";
const POLICY_ENV: &str = "BATPAK_KILL_CHILD_POLICY";
const PRODUCERS: u32 = 2;
const CYCLES: u32 = 2_000;
const PER_DIR: u32 = 40;

/// Events and the sum of their counters, per producer.
struct Tally;

impl Projection for Tally {
    type State = (u64, u64);
    const NAME: &'static str = "tally";
    const VERSION: u32 = 1;
    fn apply(state: &mut (u64, u64), event: &Event) {
        state.0 += 1;
        state.1 += event.payload::<Mark>().map_or(0, |m| m.counter);
    }
}

/// The three sync policies the cycles rotate through.
fn config(dir: &Path, policy: u32) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    c.segment_max_bytes = 64 * 1024;
    match policy % 3 {
        0 => {
            c.sync_every_n_events = 1;
            c.sync_mode = SyncMode::SyncData;
        }
        1 => {}
        _ => c.sync_every_n_events = 64,
    }
    c
}

fn entity(p: u32) -> String {
    format!("producer-{p}")
}

/// Runs only inside the child: appends until killed, printing each receipt.
#[test]
fn kill_loop_child_entry_point() -> TestResult {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return Ok(());
    };
    // The test harness has printed "test NAME ... " without a newline: end that line so
    // the first receipt starts a line of its own.
    println!();
    let policy: u32 = std::env::var(POLICY_ENV)?.parse()?;
    let store = std::sync::Arc::new(Store::open(config(Path::new(&dir), policy))?);
    let handles: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let store = store.clone();
            std::thread::spawn(move || -> Result<(), String> {
                let next = store.stream(&entity(p)).map_err(|e| e.to_string())?.len() as u64;
                let coord = Coordinate::new(entity(p), "kill");
                for counter in next.. {
                    let mark = Mark::new(p, counter);
                    // Every 16th append of the third policy waits for its sync.
                    let durable = policy % 3 == 2 && counter % 16 == 0;
                    let opts = if durable {
                        AppendOptions::default().durable()
                    } else {
                        AppendOptions::default()
                    };
                    let r = store
                        .append_with(&coord, EventKind::new(1, 1), &mark, opts)
                        .map_err(|e| e.to_string())?;
                    println!("A {} {} {p} {counter}", r.sequence, u8::from(r.durable));
                    // Keep the projection cache busy, so kills land in its writes too.
                    if counter % 25 == 0 {
                        store
                            .project::<Tally>(&entity(p), Freshness::Latest)
                            .map_err(|e| e.to_string())?;
                    }
                }
                Ok(())
            })
        })
        .collect();
    println!("ready");
    for h in handles {
        h.join().map_err(|_| "producer panicked")??;
    }
    Ok(())
}

/// One receipt the child printed.
#[derive(Debug, Clone, Copy)]
struct Ack {
    seq: u64,
    durable: bool,
    producer: u32,
    counter: u64,
}

fn parse(line: &str) -> Option<Ack> {
    let mut f = line.split(' ');
    (f.next()? == "A").then_some(())?;
    let seq = f.next()?.parse().ok()?;
    let durable = f.next()? == "1";
    let producer = f.next()?.parse().ok()?;
    let counter = f.next()?.parse().ok()?;
    Some(Ack {
        seq,
        durable,
        producer,
        counter,
    })
}

/// Runs the child on `dir` for `after` once it is ready, kills it, returns its receipts.
fn run_child(dir: &Path, policy: u32, after: Duration) -> Res<Vec<Ack>> {
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "kill_loop_child_entry_point",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .env(POLICY_ENV, policy.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    // Wait until the child has opened the store (its lock file is taken) before timing.
    while !dir.join("batpak.lock").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(after);
    child.kill()?; // SIGKILL
    child.wait()?;
    let lines = reader.join().map_err(|_| "reader panicked")?;
    Ok(lines.iter().filter_map(|l| parse(l)).collect())
}

/// Checks the reopened store against the oracle (every receipt the children got so far,
/// and per producer how many appends it may have issued); returns each producer's event
/// count.
fn check(dir: &Path, policy: u32, oracle: &Oracle, cycle: u32) -> Res<BTreeMap<u32, u64>> {
    let store = Store::open(config(dir, policy))?;
    let events: Vec<Event> = store.query(&Region::all())?;
    oracle
        .check(&events, Crash::Process)
        .map_err(|e| format!("cycle {cycle}: {e}; recovery {:?}", store.recovery_report()))?;
    let mut counts: BTreeMap<u32, u64> = BTreeMap::new();
    for e in &events {
        let m: Mark = e.payload()?;
        *counts.entry(m.producer).or_default() += 1;
    }
    // A projection from the cache the child was writing when it was killed (its state
    // plus the newer events) equals a fold of the log; verify below checks no cached
    // value claims events past the log's end.
    for p in 0..PRODUCERS {
        let mut want = (0, 0);
        for e in store.stream(&entity(p))? {
            Tally::apply(&mut want, &e);
        }
        let got = store.project::<Tally>(&entity(p), Freshness::Latest)?;
        if got != want {
            return Err(format!(
                "cycle {cycle}: producer {p} projects {got:?}, the log folds {want:?}"
            )
            .into());
        }
    }
    store.close()?;
    let report = batpak::store::verify(dir)?;
    if !report.is_clean() {
        return Err(format!("cycle {cycle}: verify: {:?}", report.problems).into());
    }
    Ok(counts)
}

/// Kills to make, the random seed and where the directories go: 2,000 from 0x5eed in the
/// temporary directory, or what the soak asks for (`BATPAK_SOAK_KILLS`, `BATPAK_SOAK_SEED`,
/// `BATPAK_SOAK_DIR`, e.g. a loop-mounted xfs or btrfs).
fn scale() -> Res<(u32, u64, tempfile::TempDir)> {
    let var = |name: &str| std::env::var(name).ok();
    let kills = match var("BATPAK_SOAK_KILLS") {
        Some(v) => v
            .parse()
            .map_err(|e| format!("BATPAK_SOAK_KILLS={v}: {e}"))?,
        None => CYCLES,
    };
    let seed = match var("BATPAK_SOAK_SEED") {
        Some(v) => v
            .parse()
            .map_err(|e| format!("BATPAK_SOAK_SEED={v}: {e}"))?,
        None => 0x5eed,
    };
    let root = match var("BATPAK_SOAK_DIR") {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    Ok((kills.div_ceil(PER_DIR) * PER_DIR, seed, root))
}

#[test]
fn two_thousand_kills_across_three_sync_policies_lose_no_acknowledged_event() -> TestResult {
    if std::env::var(CHILD_ENV).is_ok() {
        return Ok(());
    }
    let (kills, seed, root) = scale()?;
    let mut rng = Rng::new(seed);
    let (mut acks, mut recovered) = (0u64, 0u64);
    let mut per_policy = [0u32; 3];
    let started = Instant::now();
    for batch in 0..kills / PER_DIR {
        let policy = (batch + seed as u32) % 3;
        let dir = root.path().join(format!("dir-{batch}"));
        let mut oracle = Oracle::default();
        let mut counts: BTreeMap<u32, u64> = BTreeMap::new();
        for k in 0..PER_DIR {
            let cycle = batch * PER_DIR + k;
            let after = Duration::from_micros(rng.below(20_000));
            let got = run_child(&dir, policy, after)?;
            acks += got.len() as u64;
            // A producer starts at its count; it may have one unacknowledged append in
            // flight beyond its last receipt (printed or not).
            for p in 0..PRODUCERS {
                let start = counts.get(&p).copied().unwrap_or(0);
                let printed = got
                    .iter()
                    .filter(|a| a.producer == p)
                    .map(|a| a.counter + 1)
                    .max();
                oracle.issued_up_to(p, printed.unwrap_or(start) + 1);
            }
            for a in got {
                oracle.ack(a.seq, a.producer, a.counter, a.durable);
            }
            counts = check(&dir, policy, &oracle, cycle)?;
            recovered = counts.values().sum();
            per_policy[policy as usize] += 1;
        }
        std::fs::remove_dir_all(&dir)?;
    }
    // The line the soak script adds to its running totals.
    println!(
        "soak kill_loop kills={kills} every_event={} default={} every_64_durable={} receipts={acks} violations=0",
        per_policy[0], per_policy[1], per_policy[2]
    );
    println!(
        "{kills} kills ({} sync every event, {} default, {} every 64 with durable appends): \
         {acks} receipts checked, last directory held {recovered} events, 0 violations, {:.0} s",
        per_policy[0],
        per_policy[1],
        per_policy[2],
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
