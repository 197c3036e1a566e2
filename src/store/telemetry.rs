//! Latency histograms and the gauges the counters cannot give, kept cheap on the append
//! path: a producer takes one clock reading per append (its enqueue time), the writer takes
//! one per batch and records the whole batch under one lock. With telemetry off
//! (`OpenOptions::telemetry = false`) neither happens; counters stay.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Highest value the histograms track exactly (one hour in microseconds); larger values
/// are clamped.
const MAX_MICROS: u64 = 3_600_000_000;

/// Append latency (enqueue → receipt), sync latency, and events and bytes per sync.
#[derive(Debug, Clone)]
pub struct Histograms {
    /// Microseconds from enqueue to receipt, per event.
    pub append_us: Histogram<u64>,
    /// Microseconds per sync.
    pub sync_us: Histogram<u64>,
    /// Events made durable per sync.
    pub events_per_sync: Histogram<u64>,
    /// Bytes made durable per sync.
    pub bytes_per_sync: Histogram<u64>,
    /// Acknowledged events not yet durable the moment before each sync completed: what a
    /// power cut at the worst point of each stretch between syncs would have lost. Three
    /// significant digits; `Stats::loss_peak_events` is the exact largest.
    pub loss_events: Histogram<u64>,
    /// The bytes of those events (with the frames written among them).
    pub loss_bytes: Histogram<u64>,
}

/// A histogram of 1..=`max` with 2 significant digits.
///
/// Zero can be recorded too (it counts in the lowest bucket).
pub(crate) fn histogram(max: u64) -> Histogram<u64> {
    Histogram::new_with_bounds(1, max, 2).expect("constant histogram bounds are valid")
}

impl Default for Histograms {
    fn default() -> Self {
        Self {
            append_us: histogram(MAX_MICROS),
            sync_us: histogram(MAX_MICROS),
            events_per_sync: histogram(1 << 32),
            bytes_per_sync: histogram(1 << 40),
            loss_events: Histogram::new_with_bounds(1, 1 << 32, 3)
                .expect("constant histogram bounds are valid"),
            loss_bytes: Histogram::new_with_bounds(1, 1 << 40, 3)
                .expect("constant histogram bounds are valid"),
        }
    }
}

impl Histograms {
    /// What was recorded after `earlier` (a snapshot of the same histograms).
    pub fn since(&self, earlier: &Histograms) -> Histograms {
        let diff = |a: &Histogram<u64>, b: &Histogram<u64>| {
            let mut d = a.clone();
            if d.subtract(b).is_err() {
                // `earlier` is not a prefix (statistics were reset in between).
                return a.clone();
            }
            d
        };
        Histograms {
            append_us: diff(&self.append_us, &earlier.append_us),
            sync_us: diff(&self.sync_us, &earlier.sync_us),
            events_per_sync: diff(&self.events_per_sync, &earlier.events_per_sync),
            bytes_per_sync: diff(&self.bytes_per_sync, &earlier.bytes_per_sync),
            loss_events: diff(&self.loss_events, &earlier.loss_events),
            loss_bytes: diff(&self.loss_bytes, &earlier.loss_bytes),
        }
    }
}

pub(crate) struct Telemetry {
    pub enabled: bool,
    hist: Mutex<Histograms>,
    pub high_water: AtomicUsize,
    /// The largest loss window seen (events, bytes), kept exactly (the histograms round).
    pub loss_peak: (AtomicU64, AtomicU64),
    origin: Instant,
    /// Microseconds after `origin` of the last completed sync (0 = none yet).
    last_sync: AtomicU64,
    /// Microseconds after `origin` of the last reset.
    reset_at: AtomicU64,
}

impl Telemetry {
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            hist: Mutex::new(Histograms::default()),
            high_water: AtomicUsize::new(0),
            loss_peak: (AtomicU64::new(0), AtomicU64::new(0)),
            origin: Instant::now(),
            last_sync: AtomicU64::new(0),
            reset_at: AtomicU64::new(0),
        }
    }

    /// The enqueue stamp of an append (none when telemetry is off).
    #[inline]
    pub fn stamp(&self) -> Option<Instant> {
        self.enabled.then(Instant::now)
    }

    /// Records the latencies of a batch of replies: (enqueue time, events).
    pub fn record_appends(&self, now: Instant, stamps: &[(Instant, u64)]) {
        if stamps.is_empty() {
            return;
        }
        let mut h = self.hist.lock().unwrap_or_else(PoisonError::into_inner);
        for (at, n) in stamps {
            let us = now.saturating_duration_since(*at).as_micros() as u64;
            let _ = h.append_us.record_n(us.clamp(1, MAX_MICROS), *n);
        }
    }

    pub fn record_sync(&self, took: Duration, events: u64, bytes: u64) {
        self.last_sync.store(
            self.origin.elapsed().as_micros().max(1) as u64,
            Ordering::Relaxed,
        );
        if !self.enabled {
            return;
        }
        let mut h = self.hist.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = h
            .sync_us
            .record((took.as_micros() as u64).clamp(1, MAX_MICROS));
        let _ = h.events_per_sync.record(events.max(1));
        let _ = h.bytes_per_sync.record(bytes.max(1));
    }

    /// Records the loss window the moment before a sync completed.
    pub fn record_exposure(&self, events: u64, bytes: u64) {
        self.loss_peak.0.fetch_max(events, Ordering::Relaxed);
        self.loss_peak.1.fetch_max(bytes, Ordering::Relaxed);
        if !self.enabled {
            return;
        }
        let mut h = self.hist.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = h.loss_events.record(events);
        let _ = h.loss_bytes.record(bytes);
    }

    pub fn note_depth(&self, depth: usize) {
        self.high_water.fetch_max(depth, Ordering::Relaxed);
    }

    pub fn histograms(&self) -> Histograms {
        self.hist
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Time since the last completed sync, if there was one.
    pub fn since_last_sync(&self) -> Option<Duration> {
        let at = self.last_sync.load(Ordering::Relaxed);
        (at > 0).then(|| {
            self.origin
                .elapsed()
                .saturating_sub(Duration::from_micros(at))
        })
    }

    /// Time the cumulative figures cover (since open or the last reset).
    pub fn window(&self) -> Duration {
        self.origin
            .elapsed()
            .saturating_sub(Duration::from_micros(self.reset_at.load(Ordering::Relaxed)))
    }

    pub fn reset(&self) {
        *self.hist.lock().unwrap_or_else(PoisonError::into_inner) = Histograms::default();
        self.high_water.store(0, Ordering::Relaxed);
        self.loss_peak.0.store(0, Ordering::Relaxed);
        self.loss_peak.1.store(0, Ordering::Relaxed);
        self.reset_at
            .store(self.origin.elapsed().as_micros() as u64, Ordering::Relaxed);
    }
}
