//! The figures of a bench result, each with its unit and which way is better: what
//! `bench` prints, `compare` sets side by side and `tune` judges.

use batpak::fs::account::FileClass;

use crate::bench::BenchResult;
use crate::units;

fn per_s(r: &BenchResult, class: FileClass) -> f64 {
    r.syncs_per_s.get(class.name()).copied().unwrap_or(0.0)
}

/// Which way a figure is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
    /// Neither way: more of it buys one thing and costs another (said in the words).
    TradeOff(&'static str),
}

/// One figure of a result: its name, unit, value (`None`: not measured), text, direction.
pub struct Figure {
    /// What it is, as the tables print it.
    pub name: &'static str,
    /// Its unit.
    pub unit: &'static str,
    /// Its value; `None`: not measured.
    pub value: Option<f64>,
    /// Its value as text, with the unit.
    pub text: String,
    /// Which way is better.
    pub better: Better,
}

/// Every figure of a result, in the order the tables print them.
pub fn rows(r: &BenchResult) -> Vec<Figure> {
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
    let events = |name, v: u64| fig(name, "events", v as f64, units::count(v), Lower);
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
        events("power-cut loss p99", r.loss_window.power_cut_events.p99),
        events("power-cut loss max", r.loss_window.power_cut_events.max),
        size("loss bytes p99", r.loss_window.power_cut_bytes.p99 as f64),
        fig(
            "peak memory",
            "bytes",
            r.rss_peak_bytes as f64,
            units::bytes(r.rss_peak_bytes),
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
        Figure {
            name: "peak open fds",
            unit: "count",
            value: r.open_fds_peak.map(|n| n as f64),
            text: r
                .open_fds_peak
                .map_or("-".into(), |n| units::count(n as u64)),
            better: Lower,
        },
        size("disk used", r.disk_bytes as f64),
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
