//! This engine and batpak 0.1.0 (from crates.io) on the same workloads, config and
//! filesystem, in one run; prints both figures and their ratio.
//!
//! `cargo bench --bench side_by_side` (stores under `target/bench-data/side-by-side`);
//! `BATPAK_BENCH_ONLY=throughput|durable|reopen` runs one part.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use batpak::prelude::*;
use serde::Serialize;

#[derive(Serialize)]
struct Reference {
    #[serde(with = "serde_bytes")]
    data: Vec<u8>,
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn root() -> PathBuf {
    std::env::var_os("BATPAK_BENCH_DIR")
        .map_or_else(|| PathBuf::from("target/bench-data"), PathBuf::from)
        .join("side-by-side")
}

fn fresh(name: &str) -> PathBuf {
    let dir = root().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn payload(i: u64) -> Reference {
    Reference {
        data: (0..64)
            .map(|b| (i as u8).wrapping_mul(31).wrapping_add(b))
            .collect(),
    }
}

fn entity(i: u64) -> (String, String) {
    (
        format!("order:{}", (i * 7919) % 10_000),
        format!("tenant-{}", i % 8),
    )
}

/// Events per second of `n` appends spread over `threads`, each waiting for its receipt.
fn rate(n: u64, threads: u64, append: Arc<dyn Fn(u64) + Send + Sync>) -> f64 {
    let start = Instant::now();
    let hs: Vec<_> = (0..threads)
        .map(|t| {
            let append = append.clone();
            std::thread::spawn(move || (t..n).step_by(threads as usize).for_each(|i| append(i)))
        })
        .collect();
    hs.into_iter().for_each(|h| {
        let _ = h.join();
    });
    n as f64 / start.elapsed().as_secs_f64()
}

fn ours(name: &str, tune: impl FnOnce(&mut StoreConfig)) -> Res<Arc<Store>> {
    let mut c = StoreConfig::new(fresh(name));
    tune(&mut c);
    Ok(Arc::new(Store::open(c)?))
}

fn theirs(name: &str, sync_every: u32) -> Res<Arc<batpak_v01::store::Store>> {
    let mut c = batpak_v01::store::StoreConfig::new(fresh(name));
    c.sync_every_n_events = sync_every;
    Ok(Arc::new(
        batpak_v01::store::Store::open(c).map_err(|e| format!("{e:?}"))?,
    ))
}

fn ours_append(s: Arc<Store>) -> Arc<dyn Fn(u64) + Send + Sync> {
    Arc::new(move |i| {
        let (e, sc) = entity(i);
        let _ = s.append(
            &Coordinate::new(e, sc),
            EventKind::new(1, (i % 4 + 1) as u8),
            &payload(i),
        );
    })
}

fn theirs_append(s: Arc<batpak_v01::store::Store>) -> Arc<dyn Fn(u64) + Send + Sync> {
    Arc::new(move |i| {
        let (e, sc) = entity(i);
        if let Ok(c) = batpak_v01::prelude::Coordinate::new(e, sc) {
            let kind = batpak_v01::prelude::EventKind::custom(1, (i % 4 + 1) as u16);
            let _ = s.append(&c, kind, &payload(i));
        }
    })
}

/// Tickets a pipelined producer keeps in flight (the default channel capacity).
const WINDOW: usize = 4096;

/// One `submit` per event with a sliding window of outstanding tickets: once `WINDOW` are
/// in flight, the oldest is awaited before the next submit. Every ticket is awaited.
fn pipelined(s: &Store, n: u64) -> f64 {
    let start = Instant::now();
    let mut tickets = std::collections::VecDeque::with_capacity(WINDOW + 1);
    for i in 0..n {
        let (e, sc) = entity(i);
        if let Ok(t) = s.submit(
            &Coordinate::new(e, sc),
            EventKind::new(1, 1),
            &payload(i),
            AppendOptions::default(),
        ) {
            tickets.push_back(t);
        }
        if tickets.len() > WINDOW {
            if let Some(t) = tickets.pop_front() {
                let _ = t.wait();
            }
        }
    }
    tickets.drain(..).for_each(|t| drop(t.wait()));
    n as f64 / start.elapsed().as_secs_f64()
}

/// `append_batch` of 100 events at a time.
fn batched(s: &Store, n: u64) -> f64 {
    let start = Instant::now();
    for chunk in 0..n / 100 {
        let items: Vec<BatchItem> = (chunk * 100..chunk * 100 + 100)
            .filter_map(|i| {
                let (e, sc) = entity(i);
                BatchItem::new(&Coordinate::new(e, sc), EventKind::new(1, 1), &payload(i)).ok()
            })
            .collect();
        let _ = s.append_batch(items, false);
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn dir_bytes(dir: &Path, prefix: &str) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .filter_map(|e| e.metadata().ok().map(|m| m.len()))
                .sum()
        })
        .unwrap_or(0)
}

/// An appended file for the floor: `write` of an event's size + `fdatasync`, the least a
/// durable append can cost on this file system.
fn floor_file() -> Res<std::fs::File> {
    let path = fresh("floor");
    std::fs::create_dir_all(&path)?;
    Ok(std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path.join("f"))?)
}

/// One `write` of `buf` + `fdatasync` on `f`, timed.
fn floor_op(f: &mut std::fs::File, buf: &[u8]) -> Duration {
    use std::io::Write;
    let s = Instant::now();
    let _ = f.write_all(buf);
    let _ = f.sync_data();
    s.elapsed()
}

/// One durable append, timed.
fn durable_op(s: &Store, i: u64) -> Duration {
    let (e, sc) = entity(i);
    let start = Instant::now();
    let _ = s.append(&Coordinate::new(e, sc), EventKind::new(1, 1), &payload(i));
    start.elapsed()
}

fn p50(mut t: Vec<Duration>) -> Duration {
    t.sort();
    t[t.len() / 2]
}

/// p50 of the floor (write of an event's size + fdatasync) and of this engine's durable
/// append, in 20 alternating blocks of 25 operations each, so both see the same disk.
fn durable_vs_floor(s: &Store, f: &mut std::fs::File) -> (Duration, Duration) {
    let buf = vec![7u8; 110];
    let (mut floor, mut ours) = (Vec::new(), Vec::new());
    for block in 0..20u64 {
        floor.extend((0..25).map(|_| floor_op(f, &buf)));
        ours.extend((0..25).map(|i| durable_op(s, block * 25 + i)));
    }
    (p50(floor), p50(ours))
}

fn row(what: &str, ours: f64, theirs: f64, unit: &str) {
    println!(
        "{what:<44} {ours:>14.1} {theirs:>14.1} {:>8.2}x  {unit}",
        ours / theirs.max(1e-9)
    );
}

fn main() -> Res<()> {
    println!(
        "{:<44} {:>14} {:>14} {:>9}",
        "workload", "this engine", "batpak 0.1.0", "ratio"
    );
    if part("throughput") {
        throughput()?;
    }
    if part("durable") {
        durable()?;
    }
    if part("reopen") {
        reopen_and_size()?;
    }
    Ok(())
}

/// `BATPAK_BENCH_ONLY=throughput|durable|reopen` runs one part of the comparison.
fn part(name: &str) -> bool {
    std::env::var("BATPAK_BENCH_ONLY").map_or(true, |only| only == name)
}

fn throughput() -> Res<()> {
    let n = 20_000;
    let (a, b) = (ours("single", |_| {})?, theirs("single-v01", 1000)?);
    row(
        "single producer, append and wait (events/s)",
        rate(n, 1, ours_append(a.clone())),
        rate(n, 1, theirs_append(b)),
        "",
    );
    let v01_single = rate(n, 1, theirs_append(theirs("pipe-v01", 1000)?));
    row(
        "pipelined: submit vs 0.1.0 append (events/s)",
        pipelined(&*ours("pipelined", |_| {})?, 1_000_000),
        v01_single,
        "0.1.0 has no pipelined API",
    );
    row(
        "append_batch of 100 vs 0.1.0 append (events/s)",
        batched(&*ours("batched", |_| {})?, 1_000_000),
        v01_single,
        "",
    );
    let (a4, b4) = (ours("four", |_| {})?, theirs("four-v01", 1000)?);
    row(
        "4 producers, append and wait (events/s)",
        rate(n, 4, ours_append(a4)),
        rate(n, 4, theirs_append(b4)),
        "",
    );
    Ok(())
}

fn durable() -> Res<()> {
    let durable = |c: &mut StoreConfig| {
        c.sync_every_n_events = 1;
        c.sync_mode = SyncMode::SyncData;
    };
    let (ad, bd) = (ours("durable", durable)?, theirs("durable-v01", 1)?);
    let ad4 = ours("durable-4", durable)?;
    // One and four durable producers alternate in rounds, so the ratio compares figures
    // taken moments apart (the sync latency of a shared disk drifts a lot).
    let (mut ones, mut fours, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..9 {
        let one = rate(300, 1, ours_append(ad.clone()));
        let four = rate(1200, 4, ours_append(ad4.clone()));
        ones.push(one);
        fours.push(four);
        ratios.push(four / one);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    row(
        "durable, 1 producer (events/s)",
        median(&mut ones),
        rate(500, 1, theirs_append(bd)),
        "0.1.0 acks before its sync",
    );
    row(
        "durable, 4 producers (events/s)",
        median(&mut fours),
        rate(2000, 4, theirs_append(theirs("durable-4-v01", 1)?)),
        "",
    );
    let spread = format!(
        "{:.2}..{:.2}",
        ratios.iter().copied().fold(f64::MAX, f64::min),
        ratios.iter().copied().fold(0.0, f64::max)
    );
    let ours_ratio = median(&mut ratios);
    let (mut file, store) = (floor_file()?, ours("durable-p50", durable)?);
    let (mut shares, mut floors, mut p50s) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        let (floor, p50) = durable_vs_floor(&store, &mut file);
        shares.push(floor.as_secs_f64() / p50.as_secs_f64() * 100.0);
        floors.push(floor.as_secs_f64() * 1e6);
        p50s.push(p50.as_secs_f64() * 1e6);
    }
    println!(
        "durable floor: p50 of write 110 B + fdatasync on an appended file {:.1} µs; this engine's durable append p50 {:.1} µs \
         = {:.0} % of the floor (median of 3 rounds of 20 alternating blocks, {:.0}..{:.0} %)",
        median(&mut floors),
        median(&mut p50s),
        median(&mut shares),
        shares.iter().copied().fold(f64::MAX, f64::min),
        shares.iter().copied().fold(0.0, f64::max),
    );
    println!("4 durable producers {ours_ratio:.2}x one (median of 9 alternating rounds, {spread})");
    Ok(())
}

fn reopen_and_size() -> Res<()> {
    let n = 200_000;
    let a = ours("reopen", |_| {})?;
    rate(n, 4, ours_append(a.clone()));
    let dir_a = a.dir().to_path_buf();
    a.close()?;
    drop(a);
    let b = theirs("reopen-v01", 1000)?;
    rate(n, 4, theirs_append(b.clone()));
    let dir_b = root().join("reopen-v01");
    drop(b);
    let t = Instant::now();
    let reopened = Store::open(StoreConfig::new(&dir_a))?;
    let ours_ms = t.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(reopened.stats().events, n);
    let t = Instant::now();
    let theirs_store = batpak_v01::store::Store::open(batpak_v01::store::StoreConfig::new(&dir_b))
        .map_err(|e| format!("{e:?}"))?;
    let theirs_ms = t.elapsed().as_secs_f64() * 1000.0;
    println!(
        "{:<44} {ours_ms:>14.1} {theirs_ms:>14.1} {:>8.2}x  lower is better",
        "reopen 200k events (ms)",
        theirs_ms / ours_ms
    );
    drop(theirs_store);
    let per = |bytes: u64| bytes as f64 / n as f64;
    let (ours_b, theirs_b) = (
        per(dir_bytes(&dir_a, "seg-")),
        per(dir_bytes(&dir_b, "") + dir_bytes(&dir_b.join("segments"), "")),
    );
    println!(
        "{:<44} {ours_b:>14.1} {theirs_b:>14.1} {:>8.2}x  lower is better",
        "bytes on disk per event (segments)",
        theirs_b / ours_b
    );
    Ok(())
}
