//! Profiles: what a real store's log says about the workload that wrote it, as a
//! `[workload]` table the generator can replay (see `docs/design.md`, "Workload profiles").
//!
//! A profile reads every event (through the read-only open when given a directory, so it
//! works while the application holds the store) and measures the arrival rate (mean and
//! one-second bursts), events per entity (a fitted Zipf exponent), entity and scope counts,
//! the stored payload size histogram, the kind mix and the causation / correlation shares.
//! Two things an application decides are not in the log and are left out, saying so:
//! batch sizes and durable appends (see [`NOT_RECORDED`]).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::preset::{KindShare, PayloadBin, WorkloadSpec};
use batpak::error::{OpenError, ReadError};
use batpak::event::{EventKind, Region};
use batpak::store::Store;

use super::zipf::{self, Fit};
use super::Rng;

/// A gap between two events longer than this (seconds) ends a session: the rate is
/// measured over the sessions, not over the idle time between them.
pub const IDLE_GAP_S: u64 = 10;

/// Most one-second steps a profile writes into `rate_steps` (more active seconds are
/// summarised by this many quantiles of their per-second rates).
pub const MAX_RATE_STEPS: usize = 100;

/// Most kinds a profile lists (the most frequent; the shares are of those listed).
pub const MAX_KINDS: usize = 256;

/// What a profile cannot measure because the log does not record it, and why.
pub const NOT_RECORDED: [(&str, &str); 2] = [
    (
        "batch_sizes",
        "not derivable: the log marks the events of an append_batch (a frame flag), but the \
         public read API does not expose it, so a batch cannot be told from single appends; \
         the profile leaves batch_sizes empty (every call one event)",
    ),
    (
        "durable_share",
        "not recorded: whether an append waited for its sync (AppendOptions::durable) is not \
         written to the log; the profile leaves durable_share unset (0)",
    ),
];

/// Why a profile could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// The store could not be opened.
    #[error("cannot open {}: {source}", dir.display())]
    Open {
        /// The directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: OpenError,
    },
    /// An event could not be read.
    #[error("cannot read {}: {source}", dir.display())]
    Read {
        /// The directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: ReadError,
    },
    /// Nothing to profile.
    #[error("{}: {why}", dir.display())]
    Empty {
        /// The directory.
        dir: PathBuf,
        /// What was found instead.
        why: String,
    },
}

/// The arrival rate.
#[derive(Debug, Clone, Serialize)]
pub struct RateProfile {
    /// Events per second over the sessions: events after each session's first, over the
    /// sessions' spans (first to last timestamp), summed.
    pub mean_per_s: f64,
    /// Percentiles of the events counted in each whole second of a session, seconds
    /// counted from the session's first event (its last second, partial, left out).
    pub per_second_p50: u64,
    /// The 1 s burst: 99th percentile of the per-second counts.
    pub per_second_p99: u64,
    /// The busiest second.
    pub per_second_max: u64,
    /// Seconds counted for the percentiles.
    pub seconds: u64,
    /// Sessions (runs of events without a gap over [`IDLE_GAP_S`]).
    pub sessions: u64,
    /// Seconds from the first to the last event of each session, summed.
    pub active_s: f64,
}

/// Events per entity.
#[derive(Debug, Clone, Serialize)]
pub struct EntityProfile {
    /// Entities with at least one event in the profiled range.
    pub count: u64,
    /// The fitted Zipf law.
    pub skew: Fit,
    /// Share of the events on the busiest entity.
    pub busiest_share: f64,
    /// Mean events per entity.
    pub mean_events: f64,
}

/// Stored payload sizes (the encoded payload, as `Event::payload` holds it).
#[derive(Debug, Clone, Serialize)]
pub struct PayloadProfile {
    /// Smallest.
    pub min_bytes: u64,
    /// Mean.
    pub mean_bytes: f64,
    /// Median.
    pub p50_bytes: u64,
    /// 90th percentile.
    pub p90_bytes: u64,
    /// 99th percentile.
    pub p99_bytes: u64,
    /// Largest.
    pub max_bytes: u64,
    /// The histogram: bins of a quarter of a power of two (every length below 8 its own),
    /// each narrowed to the smallest and largest length seen in it.
    pub histogram: Vec<PayloadBin>,
}

/// What a store's log says about the workload that wrote it.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    /// The directory profiled.
    pub dir: PathBuf,
    /// Events profiled (the store's own events, tombstones, are left out).
    pub events: u64,
    /// The store's own events in the range, not profiled.
    pub system_events: u64,
    /// Only events at or after this timestamp (µs since the epoch) were profiled.
    pub since_us: Option<u64>,
    /// Oldest timestamp profiled (µs since the epoch).
    pub first_timestamp_us: u64,
    /// Newest timestamp profiled.
    pub last_timestamp_us: u64,
    /// The arrival rate.
    pub rate: RateProfile,
    /// Events per entity.
    pub entities: EntityProfile,
    /// Scopes with at least one event.
    pub scopes: u64,
    /// Payload sizes.
    pub payload: PayloadProfile,
    /// The kind mix, most frequent first.
    pub kinds: Vec<KindShare>,
    /// Share of events naming a cause.
    pub causation_share: f64,
    /// Share of events whose correlation names another event (not a root).
    pub correlation_share: f64,
    /// What the log does not record (field, reason).
    pub not_recorded: BTreeMap<&'static str, &'static str>,
    /// The `[workload]` table that replays this profile.
    pub workload: WorkloadSpec,
}

/// Profiles the store in `dir` through the read-only open (it works while another process
/// holds the store); with `since`, only events of the last `since` (by the system clock).
pub fn profile_dir(dir: &Path, since: Option<Duration>) -> Result<Profile, ProfileError> {
    let store = Store::open_read_only(dir).map_err(|source| ProfileError::Open {
        dir: dir.to_path_buf(),
        source,
    })?;
    let since_us = since.map(|d| now_us().saturating_sub(d.as_micros() as u64));
    profile_store(&store, since_us)
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The payload histogram's bin of `len`: its first length and its last.
fn bin_of(len: u64) -> (u64, u64) {
    if len < 8 {
        return (len, len);
    }
    let e = 63 - u64::from(len.leading_zeros());
    let width = 1u64 << (e - 2);
    let lo = len & !(width - 1);
    (lo, lo + width - 1)
}

/// A run of events without a gap over [`IDLE_GAP_S`], counted per second from its first
/// event (so a workload that changes its rate every second, counted from its start, is
/// counted in the same seconds).
#[derive(Debug, Clone)]
struct Session {
    first_us: u64,
    last_us: u64,
    events: u64,
    /// Events in each second since `first_us`.
    counts: Vec<u64>,
}

impl Session {
    fn new(ts: u64) -> Self {
        Self {
            first_us: ts,
            last_us: ts,
            events: 0,
            counts: Vec::new(),
        }
    }

    /// Whether `ts` belongs to this session: within [`IDLE_GAP_S`] of its last event, and
    /// not that far before its first (a clock set back starts another).
    fn holds(&self, ts: u64) -> bool {
        let gap = IDLE_GAP_S * 1_000_000;
        ts <= self.last_us.saturating_add(gap) && ts.saturating_add(gap) >= self.first_us
    }

    fn add(&mut self, ts: u64) {
        let i = (ts.saturating_sub(self.first_us) / 1_000_000) as usize;
        if self.counts.len() <= i {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += 1;
        self.events += 1;
        self.last_us = self.last_us.max(ts);
    }

    /// The counts of the whole seconds: the last one ends at the last event, partial, and
    /// is left out when there are others.
    fn whole_seconds(&self) -> &[u64] {
        match self.counts.len() {
            0 | 1 => &self.counts,
            n => &self.counts[..n - 1],
        }
    }
}

/// Accumulates sessions, in the order the log holds the events.
#[derive(Default)]
struct Seconds {
    sessions: Vec<Session>,
}

impl Seconds {
    fn add(&mut self, ts: u64) {
        match self.sessions.last_mut() {
            Some(s) if s.holds(ts) => s.add(ts),
            _ => {
                let mut s = Session::new(ts);
                s.add(ts);
                self.sessions.push(s);
            }
        }
    }

    /// The rate figures and the per-second counts of the whole seconds.
    fn rate(&self) -> (RateProfile, Vec<u64>) {
        let events_after_first: u64 = self.sessions.iter().map(|s| s.events - 1).sum();
        let span_us: u64 = self.sessions.iter().map(|s| s.last_us - s.first_us).sum();
        let counts: Vec<u64> = self
            .sessions
            .iter()
            .flat_map(|s| s.whole_seconds().iter().copied())
            .collect();
        let mut sorted = counts.clone();
        sorted.sort_unstable();
        let q = |p: f64| quantile(&sorted, p);
        let rate = RateProfile {
            mean_per_s: if span_us > 0 {
                events_after_first as f64 / (span_us as f64 / 1e6)
            } else {
                0.0
            },
            per_second_p50: q(0.5),
            per_second_p99: q(0.99),
            per_second_max: sorted.last().copied().unwrap_or(0),
            seconds: sorted.len() as u64,
            sessions: self.sessions.len() as u64,
            active_s: span_us as f64 / 1e6,
        };
        (rate, counts)
    }
}

/// The `p` quantile of sorted values (nearest rank); 0 when empty.
fn quantile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `x` rounded to 6 decimals, so shares print short.
fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// The one-second steps that replay `counts`: the counts themselves when there are at most
/// [`MAX_RATE_STEPS`], else that many quantiles (midpoints) of them in a fixed shuffled
/// order, so any run of the steps has the same rates as the whole.
fn rate_steps(counts: &[u64], seed: u64) -> Vec<u64> {
    if counts.len() <= MAX_RATE_STEPS {
        return counts.to_vec();
    }
    let mut sorted = counts.to_vec();
    sorted.sort_unstable();
    let mut steps: Vec<u64> = (0..MAX_RATE_STEPS)
        .map(|i| quantile(&sorted, (i as f64 + 0.5) / MAX_RATE_STEPS as f64))
        .collect();
    let mut rng = Rng::new(seed);
    for i in (1..steps.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        steps.swap(i, j);
    }
    steps
}

/// One bin of the payload histogram as it fills: events, shortest and longest length.
#[derive(Debug, Clone, Copy)]
struct Bin {
    events: u64,
    min: u64,
    max: u64,
}

/// What a pass over the log counts.
struct Tally {
    entities: HashMap<String, u64>,
    scopes: HashMap<String, u64>,
    kinds: HashMap<EventKind, u64>,
    bins: BTreeMap<u64, Bin>,
    sizes: hdrhistogram::Histogram<u64>,
    seconds: Seconds,
    events: u64,
    system: u64,
    caused: u64,
    correlated: u64,
    first_ts: u64,
    last_ts: u64,
    payload_sum: u64,
}

impl Tally {
    fn new() -> Self {
        Self {
            entities: HashMap::new(),
            scopes: HashMap::new(),
            kinds: HashMap::new(),
            bins: BTreeMap::new(),
            sizes: super::histogram(),
            seconds: Seconds::default(),
            events: 0,
            system: 0,
            caused: 0,
            correlated: 0,
            first_ts: u64::MAX,
            last_ts: 0,
            payload_sum: 0,
        }
    }

    /// Counts one event (the store's own apart).
    fn add(&mut self, e: batpak::event::Event) {
        if e.kind.is_system() {
            self.system += 1;
            return;
        }
        self.events += 1;
        let ts = e.timestamp_us;
        (self.first_ts, self.last_ts) = (self.first_ts.min(ts), self.last_ts.max(ts));
        self.seconds.add(ts);
        *self.entities.entry(e.coordinate.entity).or_default() += 1;
        *self.scopes.entry(e.coordinate.scope).or_default() += 1;
        *self.kinds.entry(e.kind).or_default() += 1;
        self.caused += u64::from(e.causation.is_some());
        self.correlated += u64::from(e.correlation != e.id);
        let len = e.payload.len() as u64;
        self.payload_sum += len;
        let _ = self.sizes.record(len.max(1));
        let (lo, _) = bin_of(len);
        let b = self.bins.entry(lo).or_insert(Bin {
            events: 0,
            min: len,
            max: len,
        });
        (b.events, b.min, b.max) = (b.events + 1, b.min.min(len), b.max.max(len));
    }

    /// The payload figures and histogram.
    fn payload(&self) -> PayloadProfile {
        let total = self.events.max(1) as f64;
        let histogram = self
            .bins
            .values()
            .map(|b| PayloadBin {
                min_bytes: u32::try_from(b.min).unwrap_or(u32::MAX),
                max_bytes: u32::try_from(b.max).unwrap_or(u32::MAX),
                share: round6(b.events as f64 / total),
            })
            .collect();
        PayloadProfile {
            min_bytes: self.bins.values().map(|b| b.min).min().unwrap_or(0),
            mean_bytes: self.payload_sum as f64 / total,
            p50_bytes: self.sizes.value_at_quantile(0.5),
            p90_bytes: self.sizes.value_at_quantile(0.9),
            p99_bytes: self.sizes.value_at_quantile(0.99),
            max_bytes: self.bins.values().map(|b| b.max).max().unwrap_or(0),
            histogram,
        }
    }

    /// The [`MAX_KINDS`] most frequent kinds with their shares, most frequent first.
    fn kinds(&self) -> Vec<KindShare> {
        let total = self.events.max(1) as f64;
        let mut list: Vec<(EventKind, u64)> = self.kinds.iter().map(|(k, n)| (*k, *n)).collect();
        list.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        list.truncate(MAX_KINDS);
        list.iter()
            .map(|(k, n)| KindShare {
                category: k.category(),
                code: k.code(),
                share: round6(*n as f64 / total),
            })
            .collect()
    }

    /// Events per entity and the fitted skew.
    fn entities(&self) -> EntityProfile {
        let per_entity: Vec<u64> = self.entities.values().copied().collect();
        let busiest = per_entity.iter().copied().max().unwrap_or(0);
        let total = self.events.max(1) as f64;
        EntityProfile {
            count: per_entity.len() as u64,
            skew: zipf::fit(&per_entity),
            busiest_share: round6(busiest as f64 / total),
            mean_events: total / per_entity.len().max(1) as f64,
        }
    }

    fn finish(self, dir: PathBuf, since_us: Option<u64>) -> Profile {
        let total = self.events.max(1) as f64;
        let (rate, counts) = self.seconds.rate();
        let payload = self.payload();
        let kinds = self.kinds();
        let entities = self.entities();
        let causation_share = round6(self.caused as f64 / total);
        let correlation_share = round6(self.correlated as f64 / total);
        let defaults = WorkloadSpec::default();
        let workload = WorkloadSpec {
            entities: u32::try_from(entities.count).unwrap_or(u32::MAX),
            entity_skew: round6(entities.skew.s),
            scopes: u32::try_from(self.scopes.len()).unwrap_or(u32::MAX),
            causation_share,
            correlation_share: Some(correlation_share),
            payload_min_bytes: u32::try_from(payload.min_bytes).unwrap_or(u32::MAX),
            payload_max_bytes: u32::try_from(payload.max_bytes).unwrap_or(u32::MAX),
            payload_sizes: payload.histogram.clone(),
            kinds: kinds.clone(),
            target_rate: rate.mean_per_s.round() as u64,
            rate_steps: rate_steps(&counts, defaults.seed),
            ..defaults
        };
        Profile {
            dir,
            events: self.events,
            system_events: self.system,
            since_us,
            first_timestamp_us: self.first_ts,
            last_timestamp_us: self.last_ts,
            rate,
            entities,
            scopes: self.scopes.len() as u64,
            payload,
            kinds,
            causation_share,
            correlation_share,
            not_recorded: NOT_RECORDED.into_iter().collect(),
            workload,
        }
    }
}

/// Profiles `store`; with `since_us`, only events with a timestamp at or after it.
pub fn profile_store(store: &Store, since_us: Option<u64>) -> Result<Profile, ProfileError> {
    let dir = store.dir().to_path_buf();
    let mut tally = Tally::new();
    for e in store.query_iter(&Region::all()) {
        let e = e.map_err(|source| ProfileError::Read {
            dir: dir.clone(),
            source,
        })?;
        if since_us.is_none_or(|s| e.timestamp_us >= s) {
            tally.add(e);
        }
    }
    if tally.events == 0 {
        let why = match since_us {
            Some(s) => format!(
                "no events at or after {s} µs since the epoch (the --since window) to profile"
            ),
            None => "the store holds no events to profile".to_string(),
        };
        return Err(ProfileError::Empty { dir, why });
    }
    Ok(tally.finish(dir, since_us))
}

impl Profile {
    /// The profile as a preset file: comments with what was measured and what the log does
    /// not record, then the `[workload]` table (`[store]` stays the default; `--preset`
    /// or `bench --workload FILE` combine it with any store configuration).
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        #[derive(Serialize)]
        struct Table<'a> {
            workload: &'a WorkloadSpec,
        }
        let r = &self.rate;
        let p = &self.payload;
        let mut out = format!(
            "# batpak workload profile of {}\n\
             # {} events ({} of the store's own left out) over {:.1} s in {} session(s)\n\
             # rate: mean {:.1} events/s, per second p50 {} p99 {} max {} ({} whole seconds)\n\
             # entities: {}, Zipf s = {:.3} fitted on the {} busiest (dispersion {:.2}{}); busiest holds {:.2} %\n\
             # scopes: {}\n\
             # payload (stored bytes): min {} mean {:.1} p50 {} p90 {} p99 {} max {}\n\
             # causation {:.4}, correlation {:.4}\n",
            self.dir.display(),
            self.events,
            self.system_events,
            r.active_s,
            r.sessions,
            r.mean_per_s,
            r.per_second_p50,
            r.per_second_p99,
            r.per_second_max,
            r.seconds,
            self.entities.count,
            self.entities.skew.s,
            self.entities.skew.ranks_used,
            self.entities.skew.dispersion,
            if self.entities.skew.uniform {
                ", as even as uniform arrivals: no skew"
            } else {
                ""
            },
            self.entities.busiest_share * 100.0,
            self.scopes,
            p.min_bytes,
            p.mean_bytes,
            p.p50_bytes,
            p.p90_bytes,
            p.p99_bytes,
            p.max_bytes,
            self.causation_share,
            self.correlation_share,
        );
        for (field, why) in &self.not_recorded {
            out.push_str(&format!("# {field}: {why}\n"));
        }
        out.push_str(
            "# rate_steps replays the per-second rates (it replaces target_rate, the mean); \
             threads, read_mix, seed and min_free_disk are the generator's defaults: the log \
             does not record readers or subscribers\n",
        );
        out.push_str(&toml::to_string(&Table {
            workload: &self.workload,
        })?);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_bins_are_quarters_of_a_power_of_two() {
        assert_eq!(bin_of(0), (0, 0));
        assert_eq!(bin_of(7), (7, 7));
        assert_eq!(bin_of(8), (8, 9));
        assert_eq!(bin_of(72), (64, 79));
        assert_eq!(bin_of(79), (64, 79));
        assert_eq!(bin_of(80), (80, 95));
        assert_eq!(bin_of(1000), (896, 1023));
    }

    #[test]
    fn seconds_split_into_sessions_at_idle_gaps_and_count_from_each_sessions_first_event() {
        let mut s = Seconds::default();
        // 5 events/s for 10 s starting mid-second, then silence, then 3 events.
        for i in 0..50u64 {
            s.add(1_000_500_000 + i * 200_000);
        }
        for i in 0..3u64 {
            s.add(2_000_000_000 + i * 100_000);
        }
        let (r, counts) = s.rate();
        assert_eq!(r.sessions, 2);
        assert_eq!(r.per_second_max, 5, "{counts:?}");
        assert!((r.mean_per_s - 5.0).abs() < 0.3, "{r:?}");
        // Steps of 2 and 8 events a second from a start mid-second: counted from the
        // session's first event, the seconds are the steps (wall-clock seconds would mix
        // two steps each).
        let t0 = 3_000_300_000u64;
        for (k, rate) in [2u64, 8, 2, 8, 2].into_iter().enumerate() {
            for j in 0..rate {
                s.add(t0 + k as u64 * 1_000_000 + j * 1_000_000 / rate);
            }
        }
        let (r, counts) = s.rate();
        assert_eq!(r.sessions, 3);
        let mut want = vec![5u64; 9];
        want.extend([3, 2, 8, 2, 8]);
        assert_eq!(counts, want);
    }

    #[test]
    fn long_runs_of_seconds_become_shuffled_quantile_steps() {
        let counts: Vec<u64> = (0..1000).collect();
        let steps = rate_steps(&counts, 1);
        assert_eq!(steps.len(), MAX_RATE_STEPS);
        let mean = steps.iter().sum::<u64>() as f64 / steps.len() as f64;
        assert!((mean - 499.5).abs() < 5.0, "{mean}");
        assert!(steps.windows(2).any(|w| w[0] > w[1]), "not shuffled");
    }
}
