//! [`Stats`]: one cheap snapshot of what the engine is doing.

use std::sync::atomic::Ordering;
use std::time::Duration;

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

/// A snapshot of counters (cumulative since open) and state.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
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
}

pub(crate) fn collect(shared: &Shared, tx: Option<&Sender<Command>>) -> Stats {
    let c = &shared.stats;
    let ld = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let written = shared.written_seq.load(Ordering::Acquire);
    let durable = shared.durable_seq.load(Ordering::Acquire);
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
            })
            .collect();
        let active = segs.iter().any(|s| !s.sealed);
        (u64::from(idx.len()), segs, idx.heap_bytes(), active)
    };
    Stats {
        events,
        written_sequence: written,
        durable_sequence: durable,
        acked_unsynced: written.saturating_sub(durable),
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
        mapped_segments: shared.mapped_segments(),
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
    }
}
