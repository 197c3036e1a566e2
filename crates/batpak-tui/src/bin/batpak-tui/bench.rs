//! `bench` and `wipe`: run the workload on a preset and report what it did.

use std::collections::BTreeMap;
use std::error::Error;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use batpak::fs::account::FileClass;
use batpak::prelude::*;
use batpak::process::IoCounters;
use batpak::store::Wear;
use batpak_tui::preset::{Preset, StoreSection};
use batpak_tui::process::ProcessSampler;
use batpak_tui::workload::{self, Workload};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::figures::rows;

/// Percentiles of a latency histogram, in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Self {
        Self {
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// The median, 99th percentile and largest of a histogram of counts.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Spread {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
}

impl Spread {
    /// Percentiles from `h` (three significant digits), the exact largest `max`; a
    /// percentile never reads above the largest.
    fn of(h: &Histogram<u64>, max: u64) -> Self {
        Self {
            p50: h.value_at_quantile(0.5).min(max),
            p99: h.value_at_quantile(0.99).min(max),
            max,
        }
    }
}

/// What a crash during the run would have lost of the events whose receipts were sent.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct LossWindow {
    /// A power cut (or a crash of the kernel): acknowledged events not yet synced,
    /// measured the moment before each sync completed (the peak of each stretch between
    /// syncs), over the run.
    pub power_cut_events: Spread,
    /// The bytes of those events, with the frames written among them.
    pub power_cut_bytes: Spread,
    /// What the configuration guarantees: `sync_every_n_events - 1` (a receipt waits for
    /// a sync rather than leave more acknowledged events unsynced).
    pub power_cut_bound_events: u64,
    /// A crash of the process alone: 0 events and 0 bytes. A receipt is sent only after
    /// its bytes were passed to `write`, and the kernel keeps written bytes when the
    /// process dies (the kill tests in `tests/crash.rs` check it from outside).
    pub process_crash_events: u64,
    /// See `process_crash_events`.
    pub process_crash_bytes: u64,
}

impl LossWindow {
    fn of(s: &batpak::store::Stats, every: u32) -> Self {
        let h = &s.histograms;
        Self {
            power_cut_events: Spread::of(&h.loss_events, s.loss_peak_events),
            power_cut_bytes: Spread::of(&h.loss_bytes, s.loss_peak_bytes),
            power_cut_bound_events: u64::from(every.max(1) - 1),
            process_crash_events: 0,
            process_crash_bytes: 0,
        }
    }
}

/// What one class of file was asked to write during the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassRow {
    /// Bytes passed to `write`.
    pub bytes: u64,
    /// `write` calls.
    pub writes: u64,
    /// Syncs.
    pub syncs: u64,
    /// The engine's estimate of bytes sent to storage (pages dirtied since each sync).
    pub storage_estimate_bytes: u64,
}

/// What the run asked of the storage medium.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WearRow {
    /// Bytes the log appended (everything written to segment files).
    pub log_bytes: u64,
    /// Bytes sent to storage (see `storage_source`).
    pub storage_bytes: u64,
    /// `process write_bytes` (the kernel's figure) or `engine estimate`.
    pub storage_source: String,
    /// Per class of file: segments, checkpoint, cache, other.
    pub classes: BTreeMap<String, ClassRow>,
    /// The process's kernel counters over the run, where Linux has them.
    pub process_io: Option<IoCounters>,
}

/// What `bench --json` prints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchResult {
    /// Events appended per second of the run.
    pub throughput_events_per_s: f64,
    /// The open-loop target (mean of `rate_steps` when given); `None` when closed loop.
    pub target_rate_events_per_s: Option<f64>,
    /// Enqueue to receipt, per event.
    pub append_latency_us: Latency,
    /// Each reader operation, over bounded windows (`workload::READ_WINDOW`).
    pub read_latency_us: Latency,
    /// Reader operations per second.
    pub reads_per_s: f64,
    /// Each sync.
    pub sync_latency_us: Latency,
    /// Events made durable per sync.
    pub events_per_sync: f64,
    /// Segment bytes per event in the store.
    pub bytes_per_event: f64,
    /// Bytes sent to storage / bytes the log appended, over the run.
    pub write_amplification: Option<f64>,
    /// Bytes sent to storage per appended event, over the run.
    pub storage_bytes_per_event: f64,
    /// Syncs per second by class of file.
    pub syncs_per_s: BTreeMap<String, f64>,
    /// What a power cut or a process crash would have lost.
    pub loss_window: LossWindow,
    /// What the run asked of the storage medium.
    pub wear: WearRow,
    /// Resident memory at the end of the run.
    pub rss_bytes: u64,
    /// Highest resident memory of the process during the run.
    pub rss_peak_bytes: u64,
    /// Open file descriptors at the end of the run.
    pub open_fds: Option<usize>,
    /// Most file descriptors open at a sample (about 4 a second).
    pub open_fds_peak: Option<usize>,
    /// Bytes the store's files take on disk (allocated) at the end of the run.
    pub disk_bytes: u64,
    /// Events the subscribers' rings dropped.
    pub subscriber_drops: u64,
    /// Appends the gates refused.
    pub denials: u64,
    /// Why the workload stopped before the run's end (a full disk, an error), if it did:
    /// the figures then cover less than the run.
    #[serde(default)]
    pub stopped_early: Option<String>,
    /// The `[store]` table the run used.
    pub config: StoreSection,
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
            (c.name().to_string(), row)
        })
        .collect();
    WearRow {
        log_bytes: w.log_bytes(),
        storage_bytes: w.storage_bytes(),
        storage_source: match w.process_io {
            Some(_) => "process write_bytes",
            None => "engine estimate",
        }
        .to_string(),
        classes,
        process_io: w.process_io,
    }
}

fn syncs_per_s(w: &Wear, secs: f64) -> BTreeMap<String, f64> {
    FileClass::ALL
        .into_iter()
        .map(|c| {
            let per_s = w.files.class(c).syncs as f64 / secs.max(1e-9);
            (c.name().to_string(), per_s)
        })
        .collect()
}

/// Allocated bytes of every file under `dir`.
pub fn disk_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_bytes(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
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
    let sampler = ProcessSampler::start(Duration::from_millis(250))?;
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
    let peak = sampler.peak().unwrap_or_default();
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
    let secs = elapsed.as_secs_f64().max(1e-9);
    let every = preset.store.sync_every_n_events;
    Ok(BenchResult {
        throughput_events_per_s: ws.appended as f64 / secs,
        target_rate_events_per_s: target_rate(&preset.workload),
        append_latency_us: Latency::of(&ws.latency_us),
        read_latency_us: Latency::of(&ws.read_latency_us),
        reads_per_s: ws.reads as f64 / secs,
        sync_latency_us: Latency::of(&stats.histograms.sync_us),
        events_per_sync: stats.synced_events as f64 / stats.syncs.max(1) as f64,
        bytes_per_event: segment_bytes as f64 / stats.events.max(1) as f64,
        write_amplification: wear.write_amplification(),
        storage_bytes_per_event: wear.storage_bytes() as f64 / ws.appended.max(1) as f64,
        syncs_per_s: syncs_per_s(&wear, secs),
        loss_window: LossWindow::of(&stats, every),
        wear: wear_row(&wear),
        rss_bytes: process.rss_bytes,
        rss_peak_bytes: peak.rss_bytes.max(process.rss_bytes),
        open_fds: process.open_fds,
        open_fds_peak: peak.open_fds.max(process.open_fds),
        disk_bytes: disk_bytes(dir),
        subscriber_drops: stats.subscribers.iter().map(|s| s.dropped).sum(),
        denials: ws.denied,
        stopped_early: ws.stopped.clone(),
        config: preset.store.clone(),
    })
}

/// The open-loop rate a workload aims at, if it is open loop.
fn target_rate(w: &batpak_tui::preset::WorkloadSpec) -> Option<f64> {
    if w.rate_steps.is_empty() {
        (w.target_rate > 0).then_some(w.target_rate as f64)
    } else {
        Some(w.rate_steps.iter().sum::<u64>() as f64 / w.rate_steps.len() as f64)
    }
}

/// Prints one result.
pub fn print(r: &BenchResult, json: bool) -> Result<(), Box<dyn Error>> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    for f in rows(r) {
        println!("{:<18} {:>20}", f.name, f.text);
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
