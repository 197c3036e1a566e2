//! What the engine costs the storage medium, in one run:
//!
//! 1. the embedded preset's workload with projections on and off (`read_mix.project`):
//!    bytes sent to storage per byte the log appended (write amplification) and per
//!    event, and syncs per second by class of file, and the ratio of the two runs;
//! 2. `project()` of an entity that has one new event since its cached state, p50 / p99,
//!    and of one that has none (the warm hit);
//! 3. the `sync_every_n_events` curve (1, 10, 100, 1000): bytes sent to storage per
//!    event beside the page-rewrite floor, `appended bytes + one page per sync`.
//!
//! `cargo bench --bench wear` (`BATPAK_WEAR_SECS` seconds per workload run, default 6).
//! Bytes sent to storage are the kernel's `write_bytes` for this process where Linux
//! has `/proc/self/io`, else the engine's estimate (the run says which). Every store
//! lives under `target/bench-data/wear` until the end of the run: deleting one with
//! dirty pages would cancel bytes the next run is counting.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use batpak::fs::account::{FileClass, PAGE_BYTES};
use batpak::prelude::*;
use batpak::projection::{Freshness, Projection};
use batpak::store::Wear;
use batpak_tui::preset::Preset;
use batpak_tui::workload::{Rng, Workload};
use hdrhistogram::Histogram;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn root() -> PathBuf {
    std::env::var_os("BATPAK_BENCH_DIR")
        .map_or_else(|| PathBuf::from("target/bench-data"), PathBuf::from)
        .join("wear")
}

fn secs() -> Duration {
    let s = std::env::var("BATPAK_WEAR_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(6.0);
    Duration::from_secs_f64(s)
}

/// What one workload run asked of the medium.
struct Run {
    events: u64,
    elapsed: Duration,
    wear: Wear,
    cache_commits: u64,
}

impl Run {
    fn per_event(&self) -> f64 {
        self.wear.storage_bytes() as f64 / self.events.max(1) as f64
    }

    fn syncs_per_s(&self, class: FileClass) -> f64 {
        self.wear.files.class(class).syncs as f64 / self.elapsed.as_secs_f64()
    }

    fn print(&self, label: &str) {
        let w = &self.wear;
        println!(
            "{label:<28} {:>9.0} ev/s  log {:>10} B  storage {:>11} B  WA {:>5.2}  {:>7.1} B/event  \
             syncs/s: segments {:>7.1} cache {:>7.1} checkpoint {:>4.1} other {:>4.1}  cache commits {}",
            self.events as f64 / self.elapsed.as_secs_f64(),
            w.log_bytes(),
            w.storage_bytes(),
            w.write_amplification().unwrap_or(0.0),
            self.per_event(),
            self.syncs_per_s(FileClass::Segments),
            self.syncs_per_s(FileClass::Cache),
            self.syncs_per_s(FileClass::Checkpoint),
            self.syncs_per_s(FileClass::Other),
            self.cache_commits,
        );
    }
}

/// Runs `preset` with `sets` on a fresh directory for `secs()`.
fn workload(name: &str, preset: &str, sets: &[&str]) -> Res<Run> {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let preset = Preset::load(preset, &sets)?;
    let dir = root().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    batpak_tui::workload::mark_dir(&dir)?;
    let store = Arc::new(Store::open(preset.store_config(&dir))?);
    let w = Workload::start(store.clone(), preset.workload.clone(), None, false)?;
    let start = store.stats();
    std::thread::sleep(secs());
    let end = store.stats();
    w.stop();
    let events = end.written_sequence - start.written_sequence;
    store.close()?;
    Ok(Run {
        events,
        elapsed: end.taken_at - start.taken_at,
        wear: end.rates_since(&start).wear,
        cache_commits: end.wear.files.class(FileClass::Cache).writes
            - start.wear.files.class(FileClass::Cache).writes,
    })
}

fn projections_on_and_off() -> Res<()> {
    println!("== embedded preset, {:.0} s each ==", secs().as_secs_f64());
    let on = workload("embedded-projections-on", "embedded", &[])?;
    on.print("projections on");
    let off = workload(
        "embedded-projections-off",
        "embedded",
        &["workload.read_mix.project=0"],
    )?;
    off.print("projections off");
    let wa = |r: &Run| r.wear.write_amplification().unwrap_or(0.0);
    println!(
        "on / off: bytes sent to storage per byte appended {:.2}x, per event {:.2}x; \
         cache syncs {:.1}/s; storage figure from {}",
        wa(&on) / wa(&off).max(1e-9),
        on.per_event() / off.per_event().max(1e-9),
        on.syncs_per_s(FileClass::Cache),
        if on.wear.process_io.is_some() {
            "the kernel (write_bytes)"
        } else {
            "the engine's estimate"
        }
    );
    Ok(())
}

/// The projection timed: events and payload bytes of an entity.
struct Tally;

impl Projection for Tally {
    type State = (u64, u64);
    const NAME: &'static str = "wear-bench-tally";
    const VERSION: u32 = 1;
    fn apply(state: &mut (u64, u64), event: &Event) {
        state.0 += 1;
        state.1 += event.payload.len() as u64;
    }
}

#[derive(serde::Serialize)]
struct Reference<'a> {
    #[serde(with = "serde_bytes")]
    data: &'a [u8],
}

fn append_reference(store: &Store, rng: &mut Rng, entities: u64) -> Res<u64> {
    let entity = rng.below(entities);
    let coord = Coordinate::new(format!("order:{entity}"), format!("tenant-{}", entity % 8));
    let data = rng.bytes(64);
    store.append(&coord, EventKind::new(1, 1), &Reference { data: &data })?;
    Ok(entity)
}

fn micros(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

/// `project()` after one new event of the entity (the fold applies it and caches the new
/// state), and again with nothing new (a hit).
fn project_latency() -> Res<()> {
    let dir = root().join("project-latency");
    let _ = std::fs::remove_dir_all(&dir);
    let preset = Preset::load("embedded", &[])?;
    let store = Store::open(preset.store_config(&dir))?;
    let entities = 1_000;
    let mut rng = Rng::new(7);
    for _ in 0..10_000 {
        append_reference(&store, &mut rng, entities)?;
    }
    for e in 0..entities {
        store.project::<Tally>(&format!("order:{e}"), Freshness::Latest)?;
    }
    let mut new_event = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3)?;
    let mut hit = new_event.clone();
    let deadline = Instant::now() + secs();
    while Instant::now() < deadline {
        let entity = format!("order:{}", append_reference(&store, &mut rng, entities)?);
        let t = Instant::now();
        store.project::<Tally>(&entity, Freshness::Latest)?;
        new_event.record(t.elapsed().as_nanos().max(1) as u64)?;
        let t = Instant::now();
        store.project::<Tally>(&entity, Freshness::Latest)?;
        hit.record(t.elapsed().as_nanos().max(1) as u64)?;
    }
    let commits = store.stats().wear.files.class(FileClass::Cache).writes;
    store.close()?;
    println!("== project(), embedded config, 1,000 entities ==");
    println!(
        "one new event: p50 {:.1} µs  p99 {:.1} µs  ({} projections)   nothing new: p50 {:.1} µs  p99 {:.1} µs   cache commits {}",
        micros(&new_event, 0.5),
        micros(&new_event, 0.99),
        new_event.len(),
        micros(&hit, 0.5),
        micros(&hit, 0.99),
        commits,
    );
    Ok(())
}

/// Bytes per event if every sync rewrote whole pages only: the appended bytes, plus the
/// pages a sync's bytes span beyond them (an interval of `b` bytes at a random offset
/// touches `(b - 1) / P + 1` pages on average).
fn floor_per_event(log_per_event: f64, every: u32) -> f64 {
    let per_sync = log_per_event * f64::from(every);
    let pages = (per_sync - 1.0) / PAGE_BYTES as f64 + 1.0;
    pages * PAGE_BYTES as f64 / f64::from(every)
}

fn sync_curve() -> Res<()> {
    println!("== sync_every_n_events, default preset, 1 producer, no readers or subscribers ==");
    for every in [1u32, 10, 100, 1000] {
        let name = format!("sync-every-{every}");
        let sets = [
            format!("sync_every_n_events={every}"),
            "workload.producers=1".into(),
            "workload.readers=0".into(),
            "workload.subscribers=0".into(),
        ];
        let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
        let run = workload(&name, "default", &sets)?;
        let log_per_event = run.wear.log_bytes() as f64 / run.events.max(1) as f64;
        run.print(&format!("sync every {every}"));
        println!(
            "{:<28} log {:.1} B/event, page-rewrite floor {:.1} B/event, measured {:.1} B/event",
            "",
            log_per_event,
            floor_per_event(log_per_event, every),
            run.per_event()
        );
    }
    Ok(())
}

fn only(part: &str) -> bool {
    std::env::var("BATPAK_WEAR_ONLY").map_or(true, |o| o.split(',').any(|p| p == part))
}

fn main() -> Res<()> {
    if only("projections") {
        projections_on_and_off()?;
    }
    if only("project") {
        project_latency()?;
    }
    if only("sync") {
        sync_curve()?;
    }
    let _ = std::fs::remove_dir_all(root());
    Ok(())
}
