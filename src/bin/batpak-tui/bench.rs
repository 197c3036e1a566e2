//! `bench`, `compare` and `wipe`: run the workload on a preset and report what it did;
//! run two configurations on the same workload and say which is better at what.

use std::error::Error;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use batpak::fs::account::FileClass;
use batpak::prelude::*;
use batpak::preset::{Preset, StoreSection, WorkloadSpec};
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

/// Which way a figure is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Better {
    Higher,
    Lower,
    /// Neither way: more of it buys one thing and costs another (said in the words).
    TradeOff(&'static str),
}

/// One figure of a result: its name, unit, value (`None`: not measured), text, direction.
struct Figure {
    name: &'static str,
    unit: &'static str,
    value: Option<f64>,
    text: String,
    better: Better,
}

fn rows(r: &BenchResult) -> Vec<Figure> {
    use Better::{Higher, Lower, TradeOff};
    let fig = |name, unit, value: f64, text: String, better| Figure {
        name,
        unit,
        value: Some(value),
        text,
        better,
    };
    let latency = |name, v: u64| fig(name, "µs", v as f64, units::micros(v), Lower);
    let per_sec = |name, v: f64, better| fig(name, "per s", v, units::rate(v), better);
    let count = |name, v: u64| fig(name, "count", v as f64, units::count(v), Lower);
    let size = |name, v: f64| fig(name, "bytes", v, units::bytes(v.round() as u64), Lower);
    vec![
        fig(
            "throughput",
            "events/s",
            r.throughput_events_per_s,
            units::rate_of(r.throughput_events_per_s, "events"),
            Higher,
        ),
        latency("append p50", r.append_latency_us.p50),
        latency("append p99", r.append_latency_us.p99),
        latency("append p999", r.append_latency_us.p999),
        Figure {
            name: "target rate",
            unit: "events/s",
            value: r.target_rate_events_per_s,
            text: r
                .target_rate_events_per_s
                .map_or("closed loop".into(), |t| units::rate_of(t, "events")),
            better: TradeOff("the workload's setting, not a result"),
        },
        per_sec("reads/s", r.reads_per_s, Higher),
        latency("read p50", r.read_latency_us.p50),
        latency("read p99", r.read_latency_us.p99),
        latency("sync p50", r.sync_latency_us.p50),
        latency("sync p99", r.sync_latency_us.p99),
        fig(
            "events per sync",
            "events",
            r.events_per_sync,
            units::decimal(r.events_per_sync),
            TradeOff("fewer syncs, more for a power cut to lose"),
        ),
        size("bytes per event", r.bytes_per_event),
        Figure {
            name: "write amplification",
            unit: "ratio",
            value: r.write_amplification,
            text: r.write_amplification.map_or("-".into(), units::times),
            better: Lower,
        },
        size("storage B/event", r.storage_bytes_per_event),
        per_sec(
            "segment syncs/s",
            per_s(r, FileClass::Segments),
            TradeOff("less for a power cut to lose, more wear"),
        ),
        per_sec("cache syncs/s", per_s(r, FileClass::Cache), Lower),
        per_sec(
            "other syncs/s",
            per_s(r, FileClass::Other) + per_s(r, FileClass::Checkpoint),
            Lower,
        ),
        fig(
            "resident memory",
            "bytes",
            r.rss_bytes as f64,
            units::bytes(r.rss_bytes),
            Lower,
        ),
        Figure {
            name: "open fds",
            unit: "count",
            value: r.open_fds.map(|n| n as f64),
            text: r.open_fds.map_or("-".into(), |n| units::count(n as u64)),
            better: Lower,
        },
        count("subscriber drops", r.subscriber_drops),
        fig(
            "denials",
            "count",
            r.denials as f64,
            units::count(r.denials),
            TradeOff("the gates refused more of the workload"),
        ),
    ]
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

/// Differences smaller than this share of the larger value are not called better: one
/// short run of each side is not precise enough to tell them apart.
const SAME: f64 = 0.05;

/// Which side is better at one figure, in words: (the better side, the words), such as
/// `server 3.2x better`. No side is better where the two are about the same, where a
/// side did not measure it, or where more of it is neither better nor worse.
fn verdict(
    better: Better,
    a: (&str, Option<f64>),
    b: (&str, Option<f64>),
) -> (Option<String>, String) {
    let ((an, Some(av)), (bn, Some(bv))) = (a, b) else {
        return (None, "not measured on both sides".into());
    };
    let ((hi, hv), (lo, lv)) = if av >= bv {
        ((an, av), (bn, bv))
    } else {
        ((bn, bv), (an, av))
    };
    if hv <= 0.0 || (hv - lv) / hv < SAME {
        return (None, "about the same".into());
    }
    // How many times the one is the other; `None`: the smaller is zero.
    let ratio = (lv > 0.0).then(|| units::times(hv / lv));
    let (winner, words) = match (better, &ratio) {
        (Better::Higher, Some(r)) => (hi, format!("{hi} {r} better")),
        (Better::Higher, None) => (hi, format!("{hi} better ({lo}: none)")),
        (Better::Lower, Some(r)) => (lo, format!("{lo} {r} better")),
        (Better::Lower, None) => (lo, format!("{lo} better (none)")),
        (Better::TradeOff(means), Some(r)) => {
            return (None, format!("neither: {hi} {r} higher ({means})"))
        }
        (Better::TradeOff(means), None) => {
            return (None, format!("neither: only {hi} has any ({means})"))
        }
    };
    (Some(winner.to_string()), words)
}

/// The names the two sides go by: a preset's name or a file's stem, told apart when
/// they are the same.
fn side_names(a: &str, b: &str) -> [String; 2] {
    let stem = |name: &str| {
        Path::new(name)
            .file_stem()
            .map_or(name.to_string(), |s| s.to_string_lossy().into_owned())
    };
    let (x, y) = (stem(a), stem(b));
    if x == y {
        [format!("{x} (first)"), format!("{y} (second)")]
    } else {
        [x, y]
    }
}

/// One side of a comparison, as `compare --json` prints it.
#[derive(Debug, Clone, Serialize)]
struct Side {
    name: String,
    preset: String,
    result: BenchResult,
}

/// One figure of both sides, as `compare --json` prints it.
#[derive(Debug, Clone, Serialize)]
struct Compared {
    figure: &'static str,
    unit: &'static str,
    /// `higher`, `lower`, or `neither` (a trade-off).
    better_when: &'static str,
    /// Each side's value by its name (`null`: not measured).
    values: serde_json::Map<String, serde_json::Value>,
    /// The better side's name; `null` when about the same or a trade-off.
    better: Option<String>,
    verdict: String,
}

/// What `compare --json` prints.
#[derive(Debug, Clone, Serialize)]
struct Comparison {
    /// The preset whose `[workload]` both sides ran.
    workload_from: String,
    workload: WorkloadSpec,
    duration_s: f64,
    sides: [Side; 2],
    figures: Vec<Compared>,
}

fn compared(sides: &[Side; 2]) -> Vec<Compared> {
    let [a, b] = sides;
    rows(&a.result)
        .into_iter()
        .zip(rows(&b.result))
        .map(|(fa, fb)| {
            let (better, verdict) = verdict(
                fa.better,
                (a.name.as_str(), fa.value),
                (b.name.as_str(), fb.value),
            );
            let mut values = serde_json::Map::new();
            for (side, v) in [(a, fa.value), (b, fb.value)] {
                values.insert(side.name.clone(), serde_json::json!(v));
            }
            Compared {
                figure: fa.name,
                unit: fa.unit,
                better_when: match fa.better {
                    Better::Higher => "higher",
                    Better::Lower => "lower",
                    Better::TradeOff(_) => "neither",
                },
                values,
                better,
                verdict,
            }
        })
        .collect()
}

/// `compare A B`: both presets on fresh subdirectories of `parent`, running the same
/// workload (the `[workload]` of `workload`, else of A), figure by figure with the
/// better side named.
pub fn compare(
    a: &str,
    b: &str,
    workload: Option<&str>,
    duration: Duration,
    parent: &Path,
    keep: bool,
    json: bool,
) -> Result<(), Box<dyn Error>> {
    let names = side_names(a, b);
    let from = workload.unwrap_or(a);
    let spec = Preset::load(from, &[])?.workload;
    let [na, nb] = &names;
    let first = run_side(na, a, &spec, duration, parent, keep, json)?;
    let second = run_side(nb, b, &spec, duration, parent, keep, json)?;
    if !keep {
        let _ = std::fs::remove_dir(parent);
    }
    let sides = [first, second];
    let figures = compared(&sides);
    if json {
        let c = Comparison {
            workload_from: from.to_string(),
            workload: spec,
            duration_s: duration.as_secs_f64(),
            sides,
            figures,
        };
        println!("{}", serde_json::to_string_pretty(&c)?);
        return Ok(());
    }
    println!(
        "both ran the [workload] of {from} for {} each; differences under {} are called about the same",
        units::duration(duration),
        units::percent(SAME)
    );
    print_compared(&sides, &figures);
    Ok(())
}

/// Runs one side, preset `preset` under the name `name`, on `spec`, in a fresh
/// subdirectory of `parent` (deleted after unless `keep`).
fn run_side(
    name: &str,
    preset: &str,
    spec: &WorkloadSpec,
    duration: Duration,
    parent: &Path,
    keep: bool,
    json: bool,
) -> Result<Side, Box<dyn Error>> {
    let mut loaded = Preset::load(preset, &[])?;
    loaded.workload = spec.clone();
    let dir: PathBuf = parent.join(name.replace([' ', '(', ')'], ""));
    if dir.exists() {
        workload::wipe(&dir)?;
    }
    if !json {
        eprintln!("running {name} on {}", dir.display());
    }
    let result = run(&dir, &loaded, duration, json, false)?;
    if !keep {
        workload::wipe(&dir)?;
    }
    Ok(Side {
        name: name.to_string(),
        preset: preset.to_string(),
        result,
    })
}

/// The comparison as a table: a column per side, named, and the verdict.
fn print_compared(sides: &[Side; 2], figures: &[Compared]) {
    let [a, b] = sides;
    let w = [&a.name, &b.name]
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0)
        .max(16);
    println!("{:<19} {:>w$} {:>w$}  better", "", a.name, b.name);
    let texts = rows(&a.result).into_iter().zip(rows(&b.result));
    for (f, (fa, fb)) in figures.iter().zip(texts) {
        println!(
            "{:<19} {:>w$} {:>w$}  {}",
            f.figure, fa.text, fb.text, f.verdict
        );
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_names_the_better_side_and_by_how_many_times_and_calls_noise_the_same() {
        let v = |b, x, y| verdict(b, ("embedded", Some(x)), ("server", Some(y)));
        assert_eq!(
            v(Better::Higher, 3_900.0, 55_000.0),
            (Some("server".into()), "server 14x better".into())
        );
        assert_eq!(
            v(Better::Lower, 1_400.0, 226.0),
            (Some("server".into()), "server 6.2x better".into())
        );
        assert_eq!(
            v(Better::Lower, 0.0, 12.0),
            (Some("embedded".into()), "embedded better (none)".into())
        );
        assert_eq!(
            v(Better::Higher, 100.0, 103.0),
            (None, "about the same".into())
        );
        let (side, words) = v(Better::TradeOff("fewer syncs"), 10.0, 800.0);
        assert_eq!(side, None);
        assert_eq!(words, "neither: server 80x higher (fewer syncs)");
        let (side, words) = verdict(Better::Lower, ("a", None), ("b", Some(3.0)));
        assert_eq!((side, words.as_str()), (None, "not measured on both sides"));
    }

    #[test]
    fn both_sides_are_named_even_when_they_are_the_same_preset() {
        assert_eq!(
            side_names("embedded", "./presets/x.toml"),
            ["embedded", "x"]
        );
        assert_eq!(
            side_names("server", "server"),
            ["server (first)", "server (second)"]
        );
    }
}
