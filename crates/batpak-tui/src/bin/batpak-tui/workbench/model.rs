//! What the panes show: one serialisable sample of the engine, the workload and the
//! process, derived from two telemetry snapshots, plus a short history for the charts.
//! Samples captured from a real run are kept as test fixtures, so pane snapshots do not
//! depend on timing.

use std::collections::VecDeque;

use batpak::fs::account::FileClass;
use batpak::gate::Outcome;
use batpak::store::{Rates, Stats};
use batpak::StoreConfig;
use batpak_tui::process::ProcessStats;
use batpak_tui::workload::WorkloadStats;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Points kept for each chart (a minute at the default 4 frames per second).
pub const HISTORY: usize = 240;

/// Percentiles and bars of one latency histogram, in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    /// (upper bound in µs, count) for power-of-two buckets up to the maximum.
    pub buckets: Vec<(u64, u64)>,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let mut buckets = Vec::new();
        let mut upper = 1u64;
        let mut below = 0u64;
        while below < h.len() && upper < (1 << 40) {
            let upto = h.count_between(0, upper);
            buckets.push((upper, upto - below));
            below = upto;
            upper *= 2;
        }
        Self {
            count: h.len(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            buckets,
        }
    }
}

/// One segment file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub file: String,
    pub first: Option<u64>,
    pub last: Option<u64>,
    pub bytes: u64,
    pub sealed: bool,
    pub mapped: bool,
}

/// Allow / deny / bypass counts of one gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateRow {
    pub gate: String,
    pub allowed: u64,
    pub denied: u64,
}

/// One recent gate decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRow {
    pub outcome: String,
    pub gate: String,
    pub entity: String,
    pub message: String,
}

/// One subscriber.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriberRow {
    pub lag: u64,
    pub dropped: u64,
    pub delivered: u64,
}

/// Everything the panes draw at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub dir: String,
    pub preset: String,
    pub running: bool,
    pub poisoned: Option<String>,
    pub workload_stopped: Option<String>,
    pub sync_every_n_events: u32,
    pub sync_mode: String,
    pub segment_max_bytes: u64,
    pub events: u64,
    pub events_per_sec: f64,
    pub bytes_per_sec: f64,
    pub syncs_per_sec: f64,
    pub events_per_sync: f64,
    /// Recent append latency (enqueue → receipt) and sync latency.
    pub append: Latency,
    pub sync: Latency,
    /// Loss window: acknowledged but not synced; queued, not yet acknowledged.
    pub acked_unsynced: u64,
    pub queued: u64,
    pub since_last_sync_ms: Option<u64>,
    pub segments: Vec<Segment>,
    pub fd_budget: u32,
    pub open_files: u64,
    pub mapped: u64,
    pub map_hits: u64,
    pub map_misses: u64,
    pub map_evictions: u64,
    pub channel_depth: u64,
    pub channel_capacity: u64,
    pub channel_high_water: u64,
    pub blocked_sends: u64,
    pub blocked_sends_per_sec: f64,
    pub blocked_share: f64,
    pub gates: Vec<GateRow>,
    pub allowed: u64,
    pub denied: u64,
    pub bypassed: u64,
    pub decisions: Vec<DecisionRow>,
    pub subscribers: Vec<SubscriberRow>,
    pub cache_entries: u64,
    pub cache_used_bytes: u64,
    pub cache_map_bytes: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub cache_fallbacks: u64,
    pub rss_bytes: u64,
    pub cpu_percent: f32,
    pub open_fds: Option<u64>,
    pub appended: u64,
    pub denials: u64,
    pub errors: u64,
    pub reads: u64,
    /// What the last second asked of the storage medium.
    #[serde(default)]
    pub wear: WearSample,
    /// What the open did and found (`RecoveryReport::summary`), one sentence each.
    #[serde(default)]
    pub recovery: Vec<String>,
}

/// Bytes sent to storage and syncs by class of file, over the last second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WearSample {
    /// Bytes sent to storage per second.
    pub storage_bytes_per_sec: f64,
    /// Bytes sent to storage per appended event (`None` when nothing was appended).
    pub storage_bytes_per_event: Option<f64>,
    /// Bytes sent to storage per byte the log appended.
    pub write_amplification: Option<f64>,
    /// `true` when the storage figure is the kernel's, `false` for the engine's estimate.
    pub from_kernel: bool,
    /// (class, syncs per second), in display order.
    pub syncs_per_sec: Vec<(String, f64)>,
}

impl WearSample {
    fn of(r: &Rates) -> Self {
        let w = &r.wear;
        let events = r.events_per_sec * r.elapsed.as_secs_f64();
        Self {
            storage_bytes_per_sec: r.storage_bytes_per_sec(),
            storage_bytes_per_event: (events >= 1.0).then(|| w.storage_bytes() as f64 / events),
            write_amplification: w.write_amplification(),
            from_kernel: w.process_io.is_some(),
            syncs_per_sec: FileClass::ALL
                .into_iter()
                .map(|c| (c.name().to_string(), r.syncs_per_sec_of(c)))
                .collect(),
        }
    }
}

/// Where a sample comes from.
pub struct Inputs<'a> {
    pub dir: &'a str,
    pub preset: &'a str,
    pub config: &'a StoreConfig,
    pub now: &'a Stats,
    pub rates: &'a Rates,
    pub workload: &'a WorkloadStats,
    pub process: ProcessStats,
}

fn outcome(o: Outcome) -> &'static str {
    match o {
        Outcome::Allow => "allow",
        Outcome::Deny => "deny",
        Outcome::Bypass => "bypass",
    }
}

impl Sample {
    pub fn build(i: &Inputs<'_>) -> Self {
        let (s, r) = (i.now, i.rates);
        let h = &r.histograms;
        let per_sync = h.events_per_sync.mean();
        Self {
            dir: i.dir.to_string(),
            preset: i.preset.to_string(),
            running: !i.workload.paused && i.workload.stopped.is_none(),
            poisoned: s.poisoned.clone(),
            workload_stopped: i.workload.stopped.clone(),
            sync_every_n_events: i.config.sync_every_n_events,
            sync_mode: format!("{:?}", i.config.sync_mode),
            segment_max_bytes: i.config.segment_max_bytes,
            events: s.events,
            events_per_sec: r.events_per_sec,
            bytes_per_sec: r.bytes_per_sec,
            syncs_per_sec: r.syncs_per_sec,
            events_per_sync: if per_sync.is_finite() { per_sync } else { 0.0 },
            append: Latency::of(&h.append_us),
            sync: Latency::of(&h.sync_us),
            acked_unsynced: s.acked_unsynced,
            queued: s.channel_depth as u64,
            since_last_sync_ms: s.since_last_sync.map(|d| d.as_millis() as u64),
            segments: s
                .segments
                .iter()
                .map(|g| Segment {
                    file: g.file.clone(),
                    first: g.first_sequence,
                    last: g.last_sequence,
                    bytes: g.bytes,
                    sealed: g.sealed,
                    mapped: g.mapped,
                })
                .collect(),
            fd_budget: s.fd_budget,
            open_files: s.open_segment_files as u64,
            mapped: s.mapped_segments as u64,
            map_hits: s.map_hits,
            map_misses: s.map_misses,
            map_evictions: s.map_evictions,
            channel_depth: s.channel_depth as u64,
            channel_capacity: s.channel_capacity as u64,
            channel_high_water: s.channel_high_water as u64,
            blocked_sends: s.blocked_sends,
            blocked_sends_per_sec: r.blocked_sends_per_sec,
            blocked_share: r.blocked_share,
            gates: s
                .gates
                .per_gate
                .iter()
                .map(|(g, c)| GateRow {
                    gate: g.clone(),
                    allowed: c.allowed,
                    denied: c.denied,
                })
                .collect(),
            allowed: s.gates.allowed,
            denied: s.gates.denied,
            bypassed: s.gates.bypassed,
            decisions: s
                .gates
                .recent
                .iter()
                .rev()
                .take(32)
                .map(|d| DecisionRow {
                    outcome: outcome(d.outcome).to_string(),
                    gate: d.gate.clone().unwrap_or_default(),
                    entity: d.entity.clone(),
                    message: d.message.clone(),
                })
                .collect(),
            subscribers: s
                .subscribers
                .iter()
                .map(|x| SubscriberRow {
                    lag: x.lag as u64,
                    dropped: x.dropped,
                    delivered: x.delivered,
                })
                .collect(),
            cache_entries: s.cache.entries,
            cache_used_bytes: s.cache.used_bytes,
            cache_map_bytes: s.cache.map_size_bytes,
            cache_hits: s.cache.hits,
            cache_misses: s.cache.misses,
            cache_fallbacks: s.cache.fallbacks,
            rss_bytes: i.process.rss_bytes,
            cpu_percent: i.process.cpu_percent,
            open_fds: i.process.open_fds.map(|n| n as u64),
            appended: i.workload.appended,
            denials: i.workload.denied,
            errors: i.workload.errors,
            reads: i.workload.reads,
            wear: WearSample::of(r),
            recovery: s.recovery.summary(),
        }
    }
}

/// Recent values of what the charts show, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// Frames per second the points were taken at (a fixture without it: 4).
    #[serde(default = "four")]
    pub fps: u32,
    pub throughput: VecDeque<u64>,
    pub blocked_per_sec: VecDeque<u64>,
    pub channel_depth: VecDeque<u64>,
    pub map_hits: VecDeque<u64>,
    pub map_misses: VecDeque<u64>,
    pub map_evictions: VecDeque<u64>,
    #[serde(skip)]
    last_maps: Option<(u64, u64, u64)>,
}

fn four() -> u32 {
    4
}

fn push(q: &mut VecDeque<u64>, v: u64) {
    if q.len() == HISTORY {
        q.pop_front();
    }
    q.push_back(v);
}

impl History {
    pub fn add(&mut self, s: &Sample) {
        push(&mut self.throughput, s.events_per_sec as u64);
        push(&mut self.blocked_per_sec, s.blocked_sends_per_sec as u64);
        push(&mut self.channel_depth, s.channel_depth);
        let (h, m, e) = self
            .last_maps
            .unwrap_or((s.map_hits, s.map_misses, s.map_evictions));
        push(&mut self.map_hits, s.map_hits.saturating_sub(h));
        push(&mut self.map_misses, s.map_misses.saturating_sub(m));
        push(&mut self.map_evictions, s.map_evictions.saturating_sub(e));
        self.last_maps = Some((s.map_hits, s.map_misses, s.map_evictions));
    }
}

/// The sample and history the panes draw (what a fixture holds).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub sample: Sample,
    pub history: History,
    #[serde(default)]
    pub causal: super::causal::CausalView,
    #[serde(default)]
    pub tune: super::tuning::TuneView,
}
