//! [`Stats`]: one cheap snapshot of what the engine is doing.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::fs::account::{FileClass, WriteTotals};
use crate::gate::{Decision, GateCounters};
use crate::process::IoCounters;

use super::telemetry::Histograms;

use crossbeam_channel::Sender;

use super::command::Command;
use super::segment;
use super::Shared;

/// One segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentStats {
    /// Segment number.
    pub number: u32,
    /// File name.
    pub file: String,
    /// First sequence in it.
    pub first_sequence: Option<u64>,
    /// Last sequence in it.
    pub last_sequence: Option<u64>,
    /// Events in it.
    pub events: u64,
    /// Bytes of complete frames.
    pub bytes: u64,
    /// `true` once complete (never written again).
    pub sealed: bool,
    /// Memory-mapped for reads right now (sealed segments only, within the fd budget).
    pub mapped: bool,
}

/// Subscriber state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriberStats {
    /// Entries waiting in its ring.
    pub lag: usize,
    /// Entries dropped because the ring was full.
    pub dropped: u64,
    /// Entries received.
    pub delivered: u64,
}

/// A snapshot of counters (cumulative since open or the last
/// [`Store::reset_stats`](crate::Store::reset_stats)) and state. Rates and recent
/// histograms are the difference of two snapshots: see [`Stats::rates_since`].
#[derive(Debug, Clone)]
pub struct Stats {
    /// When the snapshot was taken.
    pub taken_at: Instant,
    /// Time the cumulative figures cover.
    pub window: Duration,
    /// Whether latency histograms are recorded.
    pub telemetry: bool,
    /// Append (enqueue → receipt), sync latency, events and bytes per sync.
    pub histograms: Histograms,
    /// Events made durable by syncs.
    pub synced_events: u64,
    /// Deepest the writer channel has been.
    pub channel_high_water: usize,
    /// The largest loss window seen the moment before a sync completed: acknowledged
    /// events a power cut then would have lost (since open or the last reset; exact).
    pub loss_peak_events: u64,
    /// The bytes of that window (exact; its own largest, not necessarily the same sync's).
    pub loss_peak_bytes: u64,
    /// Time since the last completed sync, if any.
    pub since_last_sync: Option<Duration>,
    /// Projection cache.
    pub cache: crate::projection::CacheStats,
    /// Gate counters and recent decisions (empty for a store without gates).
    pub gates: GateStats,
    /// What the last open found.
    pub recovery: super::RecoveryReport,
    /// What the last compaction of this open store did (not its dry runs).
    pub last_compaction: Option<super::CompactionReport>,
    /// Events in the store.
    pub events: u64,
    /// Highest sequence written (acknowledged).
    pub written_sequence: u64,
    /// Highest sequence known durable.
    pub durable_sequence: u64,
    /// Events acknowledged but not yet synced (what a power cut could lose now).
    pub acked_unsynced: u64,
    /// Writer batches.
    pub batches: u64,
    /// `write` calls.
    pub writes: u64,
    /// Bytes written to segments.
    pub bytes_written: u64,
    /// Syncs completed.
    pub syncs: u64,
    /// Time spent in syncs.
    pub sync_time: Duration,
    /// Commands waiting in the writer channel.
    pub channel_depth: usize,
    /// Capacity of the writer channel.
    pub channel_capacity: usize,
    /// Sends that found the channel full and blocked.
    pub blocked_sends: u64,
    /// Time producers spent blocked.
    pub blocked_time: Duration,
    /// The fd budget.
    pub fd_budget: u32,
    /// Segment files open for writing or positional reads (the active one).
    pub open_segment_files: usize,
    /// Sealed segments memory-mapped.
    pub mapped_segments: usize,
    /// Map cache hits.
    pub map_hits: u64,
    /// Map cache misses.
    pub map_misses: u64,
    /// Map cache evictions.
    pub map_evictions: u64,
    /// Every segment.
    pub segments: Vec<SegmentStats>,
    /// Every subscriber.
    pub subscribers: Vec<SubscriberStats>,
    /// Writer restarts after a panic.
    pub writer_restarts: u64,
    /// Why the store is poisoned, if it is.
    pub poisoned: Option<String>,
    /// Heap bytes held by the in-memory index.
    pub index_bytes: usize,
    /// What the store asked of the storage medium: bytes written and syncs per class of
    /// file, and the process's storage writes.
    pub wear: Wear,
}

/// What the store asked of the storage medium since open or
/// [`Store::reset_stats`](crate::Store::reset_stats) (or, from [`Stats::rates_since`],
/// between two snapshots).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wear {
    /// Bytes written, writes and syncs per class of file, counted by the engine.
    pub files: WriteTotals,
    /// The kernel's storage counters of the whole process (`/proc/self/io`), where Linux
    /// has them. Process-wide: another store or any other file this process writes counts
    /// too.
    pub process_io: Option<IoCounters>,
}

impl Wear {
    /// Bytes the log appended: everything written to segment files (frames, headers,
    /// sync markers, dictionary entries; a compaction's rewritten segments too).
    pub fn log_bytes(&self) -> u64 {
        self.files.class(FileClass::Segments).bytes
    }

    /// Bytes sent to storage: the kernel's figure where there is one, else the engine's
    /// estimate (pages dirtied since each file's last sync, summed over the classes).
    pub fn storage_bytes(&self) -> u64 {
        self.process_io
            .map_or(self.files.total().storage_bytes, |io| io.storage_bytes())
    }

    /// Bytes sent to storage per byte the log appended (`None` before the first append).
    pub fn write_amplification(&self) -> Option<f64> {
        let log = self.log_bytes();
        (log > 0).then(|| self.storage_bytes() as f64 / log as f64)
    }

    /// What happened after `earlier`.
    pub fn since(&self, earlier: &Wear) -> Wear {
        Wear {
            files: self.files.since(&earlier.files),
            process_io: match (self.process_io, earlier.process_io) {
                (Some(a), Some(b)) => Some(a.since(&b)),
                _ => None,
            },
        }
    }
}

/// Gate counters and the most recent decisions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GateStats {
    /// Allow / deny counts per gate.
    pub per_gate: BTreeMap<String, GateCounters>,
    /// Proposals allowed, denied and bypassed.
    pub allowed: u64,
    /// See `allowed`.
    pub denied: u64,
    /// See `allowed`.
    pub bypassed: u64,
    /// The most recent decisions (up to 64), oldest first.
    pub recent: Vec<Decision>,
}

/// Rates and recent histograms between two snapshots.
#[derive(Debug, Clone)]
pub struct Rates {
    /// Time between the snapshots.
    pub elapsed: Duration,
    /// Events written per second.
    pub events_per_sec: f64,
    /// Bytes written per second.
    pub bytes_per_sec: f64,
    /// Syncs per second.
    pub syncs_per_sec: f64,
    /// Sends that blocked on a full channel, per second.
    pub blocked_sends_per_sec: f64,
    /// Share of the interval producers spent blocked (summed over producers).
    pub blocked_share: f64,
    /// Histograms of what happened between the snapshots.
    pub histograms: Histograms,
    /// What the store asked of the storage medium between the snapshots.
    pub wear: Wear,
}

impl Rates {
    /// Syncs per second of one class of file.
    pub fn syncs_per_sec_of(&self, class: FileClass) -> f64 {
        self.wear.files.class(class).syncs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Bytes sent to storage per second (see [`Wear::storage_bytes`]).
    pub fn storage_bytes_per_sec(&self) -> f64 {
        self.wear.storage_bytes() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl Stats {
    /// Rates and histograms of what happened since `earlier`.
    pub fn rates_since(&self, earlier: &Stats) -> Rates {
        let elapsed = self.taken_at.saturating_duration_since(earlier.taken_at);
        let secs = elapsed.as_secs_f64().max(1e-9);
        let per = |a: u64, b: u64| a.saturating_sub(b) as f64 / secs;
        Rates {
            elapsed,
            events_per_sec: per(self.written_sequence, earlier.written_sequence),
            bytes_per_sec: per(self.bytes_written, earlier.bytes_written),
            syncs_per_sec: per(self.syncs, earlier.syncs),
            blocked_sends_per_sec: per(self.blocked_sends, earlier.blocked_sends),
            blocked_share: self
                .blocked_time
                .saturating_sub(earlier.blocked_time)
                .as_secs_f64()
                / secs,
            histograms: self.histograms.since(&earlier.histograms),
            wear: self.wear.since(&earlier.wear),
        }
    }
}

pub(crate) fn collect(shared: &Shared, tx: Option<&Sender<Command>>) -> Stats {
    let c = &shared.stats;
    let ld = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    // Acked before durable: a sync completing in between can only shrink the difference.
    let acked = shared.acked_seq.load(Ordering::Acquire);
    let written = shared.written_seq.load(Ordering::Acquire);
    let durable = shared.durable_seq.load(Ordering::Acquire);
    let mapped = shared.mapped_segments();
    let (events, segments, index_bytes, has_active) = {
        let idx = shared.index();
        let segs: Vec<SegmentStats> = idx
            .segments
            .iter()
            .map(|(&no, m)| SegmentStats {
                number: no,
                file: segment::file_name(no),
                first_sequence: m.first_seq,
                last_sequence: m.last_seq,
                events: m.events,
                bytes: m.len,
                sealed: m.sealed,
                mapped: mapped.contains(&no),
            })
            .collect();
        let active = segs.iter().any(|s| !s.sealed);
        (u64::from(idx.len()), segs, idx.heap_bytes(), active)
    };
    let t = &shared.telemetry;
    Stats {
        taken_at: Instant::now(),
        window: t.window(),
        telemetry: t.enabled,
        histograms: t.histograms(),
        synced_events: ld(&c.synced_events),
        channel_high_water: t.high_water.load(Ordering::Relaxed),
        loss_peak_events: t.loss_peak.0.load(Ordering::Relaxed),
        loss_peak_bytes: t.loss_peak.1.load(Ordering::Relaxed),
        since_last_sync: t.since_last_sync(),
        cache: Default::default(),
        gates: GateStats::default(),
        recovery: Default::default(),
        last_compaction: None,
        events,
        written_sequence: written,
        durable_sequence: durable,
        acked_unsynced: acked.min(written).saturating_sub(durable),
        batches: ld(&c.batches),
        writes: ld(&c.writes),
        bytes_written: ld(&c.bytes_written),
        syncs: ld(&c.syncs),
        sync_time: Duration::from_nanos(ld(&c.sync_nanos)),
        channel_depth: tx.map_or(0, |t| t.len()),
        channel_capacity: tx.and_then(|t| t.capacity()).unwrap_or(0),
        blocked_sends: ld(&c.blocked_sends),
        blocked_time: Duration::from_nanos(ld(&c.blocked_nanos)),
        fd_budget: shared.config().fd_budget,
        open_segment_files: usize::from(has_active),
        mapped_segments: mapped.len(),
        map_hits: ld(&c.maps.hits),
        map_misses: ld(&c.maps.misses),
        map_evictions: ld(&c.maps.evictions),
        segments,
        subscribers: shared
            .subscribers()
            .iter()
            .map(|r| SubscriberStats {
                lag: r.len(),
                dropped: r.dropped.load(Ordering::Relaxed),
                delivered: r.delivered.load(Ordering::Relaxed),
            })
            .collect(),
        writer_restarts: ld(&c.writer_restarts),
        poisoned: shared.poison_message(),
        index_bytes,
        wear: Wear {
            files: shared.account.totals(),
            process_io: shared.account.process_io(),
        },
    }
}

/// Zeroes every cumulative counter and histogram.
pub(crate) fn reset(shared: &Shared) {
    let c = &shared.stats;
    for a in [
        &c.batches,
        &c.writes,
        &c.bytes_written,
        &c.syncs,
        &c.sync_nanos,
        &c.synced_events,
        &c.blocked_sends,
        &c.blocked_nanos,
        &c.maps.hits,
        &c.maps.misses,
        &c.maps.evictions,
    ] {
        a.store(0, Ordering::Relaxed);
    }
    shared.telemetry.reset();
    shared.account.reset();
}
