//! `bench`, `compare` and `wipe`: run the workload on a preset and report what it did.

use std::error::Error;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use batpak::fs::account::FileClass;
use batpak::prelude::*;
use batpak::preset::{Preset, StoreSection};
use batpak::process::{IoCounters, ProcessSampler};
use batpak::store::Wear;
use batpak::workload::{self, Workload};
use serde::Serialize;

use crate::units;

/// Percentiles of a latency histogram, in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    p50: u64,
    p99: u64,
    p999: u64,
    max: u64,
}

impl Latency {
    fn of(h: &hdrhistogram::Histogram<u64>) -> Self {
        Self {
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// What one class of file was asked to write during the run.
#[derive(Debug, Clone, Serialize)]
pub struct ClassRow {
    bytes: u64,
    writes: u64,
    syncs: u64,
    /// The engine's estimate of bytes sent to storage (pages dirtied since each sync).
    storage_estimate_bytes: u64,
}

/// What the run asked of the storage medium.
#[derive(Debug, Clone, Serialize)]
pub struct WearRow {
    /// Bytes the log appended (everything written to segment files).
    log_bytes: u64,
    /// Bytes sent to storage (see `storage_source`).
    storage_bytes: u64,
    /// `process write_bytes` (the kernel's figure) or `engine estimate`.
    storage_source: &'static str,
    /// Per class of file: segments, checkpoint, cache, other.
    classes: std::collections::BTreeMap<&'static str, ClassRow>,
    /// The process's kernel counters over the run, where Linux has them.
    process_io: Option<IoCounters>,
}

/// What `bench --json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    throughput_events_per_s: f64,
    /// The open-loop target (mean of `rate_steps` when given); `None` when closed loop.
    target_rate_events_per_s: Option<f64>,
    append_latency_us: Latency,
    /// Each reader operation, over bounded windows (`workload::READ_WINDOW`).
    read_latency_us: Latency,
    reads_per_s: f64,
    sync_latency_us: Latency,
    events_per_sync: f64,
    bytes_per_event: f64,
    /// Bytes sent to storage / bytes the log appended, over the run.
    write_amplification: Option<f64>,
    /// Bytes sent to storage per appended event, over the run.
    storage_bytes_per_event: f64,
    /// Syncs per second by class of file.
    syncs_per_s: std::collections::BTreeMap<&'static str, f64>,
    wear: WearRow,
    rss_bytes: u64,
    open_fds: Option<usize>,
    subscriber_drops: u64,
    denials: u64,
    config: StoreSection,
}

fn wear_row(w: &Wear) -> WearRow {
    let classes = w
        .files
        .iter()
        .map(|(c, n)| {
            let row = ClassRow {
                bytes: n.bytes,
                writes: n.writes,
                syncs: n.syncs,
                storage_estimate_bytes: n.storage_bytes,
            };
            (c.name(), row)
        })
        .collect();
    WearRow {
        log_bytes: w.log_bytes(),
        storage_bytes: w.storage_bytes(),
        storage_source: match w.process_io {
            Some(_) => "process write_bytes",
            None => "engine estimate",
        },
        classes,
        process_io: w.process_io,
    }
}

fn syncs_per_s(w: &Wear, secs: f64) -> std::collections::BTreeMap<&'static str, f64> {
    FileClass::ALL
        .into_iter()
        .map(|c| (c.name(), w.files.class(c).syncs as f64 / secs.max(1e-9)))
        .collect()
}

/// `10s`, `500ms`, `2m`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let n: f64 = t[..split]
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 10s or 500ms"))?;
    let secs = match &t[split..] {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        other => {
            return Err(format!(
                "`{s}`: unknown unit `{other}` (use ms, s, m, h, d)"
            ))
        }
    };
    Ok(Duration::from_secs_f64(secs.max(0.0)))
}

/// Prepares `dir` for synthetic events: refuses real data, marks a new directory.
pub fn prepare(dir: &Path, allow_existing: bool) -> Result<(), Box<dyn Error>> {
    workload::check_target(dir, allow_existing)?;
    let fresh = std::fs::read_dir(dir)
        .map(|mut d| d.next().is_none())
        .unwrap_or(true);
    if fresh {
        workload::mark_dir(dir)?;
    }
    Ok(())
}

fn progress(start: Instant, duration: Duration, w: &Workload) {
    let done = start.elapsed().as_secs_f64() / duration.as_secs_f64().max(1e-9);
    let s = w.stats();
    let rate = s.appended as f64 / start.elapsed().as_secs_f64().max(1e-9);
    eprint!(
        "\r{} {:>5.1}s/{:.0}s {:>10} events {:>9.0} events/s",
        crate::units::bar(done, 30),
        start.elapsed().as_secs_f64(),
        duration.as_secs_f64(),
        s.appended,
        rate
    );
    let _ = std::io::stderr().flush();
}

/// Runs the preset's workload on `dir` for `duration`.
pub fn run(
    dir: &Path,
    preset: &Preset,
    duration: Duration,
    quiet: bool,
    allow: bool,
) -> Result<BenchResult, Box<dyn Error>> {
    prepare(dir, allow)?;
    let options = OpenOptions {
        gates: preset.gates.as_ref().map(|g| g.build()),
        ..OpenOptions::default()
    };
    let store = Arc::new(Store::open_with(preset.store_config(dir), options)?);
    let sampler = ProcessSampler::start(Duration::from_secs(1))?;
    let at_start = store.stats();
    let w = Workload::start(
        store.clone(),
        preset.workload.clone(),
        preset.gates.clone(),
        false,
    )?;
    let start = Instant::now();
    while start.elapsed() < duration && !w.has_stopped() {
        std::thread::sleep(Duration::from_millis(100));
        if !quiet {
            progress(start, duration, &w);
        }
    }
    let elapsed = start.elapsed();
    let stats = store.stats();
    let process = sampler.latest().unwrap_or_default();
    let ws = w.stop();
    if !quiet {
        eprintln!();
    }
    if let Some(why) = &ws.stopped {
        eprintln!("batpak-tui: the workload stopped early: {why}");
    }
    let segment_bytes: u64 = stats.segments.iter().map(|s| s.bytes).sum();
    store.close()?;
    let wear = stats.rates_since(&at_start).wear;
    let secs = elapsed.as_secs_f64();
    Ok(BenchResult {
        throughput_events_per_s: ws.appended as f64 / elapsed.as_secs_f64().max(1e-9),
        target_rate_events_per_s: target_rate(&preset.workload),
        append_latency_us: Latency::of(&ws.latency_us),
        read_latency_us: Latency::of(&ws.read_latency_us),
        reads_per_s: ws.reads as f64 / secs.max(1e-9),
        sync_latency_us: Latency::of(&stats.histograms.sync_us),
        events_per_sync: stats.synced_events as f64 / stats.syncs.max(1) as f64,
        bytes_per_event: segment_bytes as f64 / stats.events.max(1) as f64,
        write_amplification: wear.write_amplification(),
        storage_bytes_per_event: wear.storage_bytes() as f64 / ws.appended.max(1) as f64,
        syncs_per_s: syncs_per_s(&wear, secs),
        wear: wear_row(&wear),
        rss_bytes: process.rss_bytes,
        open_fds: process.open_fds,
        subscriber_drops: stats.subscribers.iter().map(|s| s.dropped).sum(),
        denials: ws.denied,
        config: preset.store.clone(),
    })
}

/// The open-loop rate a workload aims at, if it is open loop.
fn target_rate(w: &batpak::preset::WorkloadSpec) -> Option<f64> {
    if w.rate_steps.is_empty() {
        (w.target_rate > 0).then_some(w.target_rate as f64)
    } else {
        Some(w.rate_steps.iter().sum::<u64>() as f64 / w.rate_steps.len() as f64)
    }
}

fn per_s(r: &BenchResult, class: FileClass) -> f64 {
    r.syncs_per_s.get(class.name()).copied().unwrap_or(0.0)
}

fn rows(r: &BenchResult) -> Vec<(&'static str, f64, String)> {
    let latency = |name, v: u64| (name, v as f64, format!("{v} µs"));
    let ratio = |name, v: f64| (name, v, format!("{v:.1}"));
    let count = |name, v: u64| (name, v as f64, v.to_string());
    vec![
        (
            "throughput",
            r.throughput_events_per_s,
            format!("{:.0} events/s", r.throughput_events_per_s),
        ),
        latency("append p50", r.append_latency_us.p50),
        latency("append p99", r.append_latency_us.p99),
        latency("append p999", r.append_latency_us.p999),
        (
            "target rate",
            r.target_rate_events_per_s.unwrap_or(0.0),
            r.target_rate_events_per_s
                .map_or("closed loop".into(), |t| format!("{t:.0} events/s")),
        ),
        ratio("reads/s", r.reads_per_s),
        latency("read p50", r.read_latency_us.p50),
        latency("read p99", r.read_latency_us.p99),
        latency("sync p50", r.sync_latency_us.p50),
        latency("sync p99", r.sync_latency_us.p99),
        ratio("events per sync", r.events_per_sync),
        ratio("bytes per event", r.bytes_per_event),
        ratio("write amplification", r.write_amplification.unwrap_or(0.0)),
        ratio("storage B/event", r.storage_bytes_per_event),
        ratio("segment syncs/s", per_s(r, FileClass::Segments)),
        ratio("cache syncs/s", per_s(r, FileClass::Cache)),
        ratio(
            "other syncs/s",
            per_s(r, FileClass::Other) + per_s(r, FileClass::Checkpoint),
        ),
        (
            "resident memory",
            r.rss_bytes as f64,
            units::bytes(r.rss_bytes),
        ),
        (
            "open fds",
            r.open_fds.unwrap_or(0) as f64,
            r.open_fds.map_or("-".into(), |n| n.to_string()),
        ),
        count("subscriber drops", r.subscriber_drops),
        count("denials", r.denials),
    ]
}

/// Prints one result.
pub fn print(r: &BenchResult, json: bool) -> Result<(), Box<dyn Error>> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    for (name, _, text) in rows(r) {
        println!("{name:<18} {text:>20}");
    }
    Ok(())
}

/// `compare A B`: both presets on fresh subdirectories of `parent`, side by side.
pub fn compare(
    a: &str,
    b: &str,
    duration: Duration,
    parent: &Path,
    keep: bool,
    json: bool,
) -> Result<(), Box<dyn Error>> {
    let mut results = Vec::new();
    for (side, name) in [("a", a), ("b", b)] {
        let preset = Preset::load(name, &[])?;
        let label = Path::new(name)
            .file_stem()
            .map_or(name.to_string(), |s| s.to_string_lossy().into_owned());
        let dir: PathBuf = parent.join(format!("{side}-{label}"));
        if dir.exists() {
            workload::wipe(&dir)?;
        }
        if !json {
            eprintln!("running {name} on {}", dir.display());
        }
        results.push(run(&dir, &preset, duration, json, false)?);
        if !keep {
            workload::wipe(&dir)?;
        }
    }
    if !keep {
        let _ = std::fs::remove_dir(parent);
    }
    if json {
        println!(
            "{}",
            serde_json::json!({ "a": results[0], "b": results[1] })
        );
        return Ok(());
    }
    println!("{:<18} {:>20} {:>20} {:>8}", "", a, b, "b / a");
    for ((name, va, ta), (_, vb, tb)) in rows(&results[0]).into_iter().zip(rows(&results[1])) {
        let ratio = if va > 0.0 {
            format!("{:.2}", vb / va)
        } else {
            "-".into()
        };
        println!("{name:<18} {ta:>20} {tb:>20} {ratio:>8}");
    }
    Ok(())
}

/// `wipe DIR`: deletes a workload directory, asking first unless `yes`.
pub fn wipe(dir: &Path, yes: bool) -> Result<(), Box<dyn Error>> {
    if !workload::is_workload_dir(dir) {
        return Err(workload::WipeError::NotWorkload(dir.to_path_buf()).into());
    }
    if !yes {
        eprint!("delete {} and everything in it? [y/N] ", dir.display());
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            println!("kept {}", dir.display());
            return Ok(());
        }
    }
    workload::wipe(dir)?;
    println!("deleted {}", dir.display());
    Ok(())
}
