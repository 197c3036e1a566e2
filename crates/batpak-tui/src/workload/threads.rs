//! The workload's threads: producers, subscribers, readers.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use batpak::error::AppendError;
use batpak::event::{AppendOptions, Coordinate, Event, EventId, EventKind, Region};
use batpak::projection::{Freshness, Projection};
use batpak::store::{RecvError, Store, WalkLimits};

use super::zipf::Zipf;
use super::{Shared, DENIED_KIND};

/// A small deterministic generator (xorshift64*), as the workload uses it.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// The reference payload shape: random bytes.
#[derive(serde::Serialize)]
struct Payload<'a> {
    #[serde(with = "serde_bytes")]
    data: &'a [u8],
}

/// The projection readers run: events and payload bytes per entity.
struct Activity;

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct ActivityState {
    events: u64,
    bytes: u64,
}

impl Projection for Activity {
    type State = ActivityState;
    const NAME: &'static str = "workload-activity";
    const VERSION: u32 = 1;
    fn apply(state: &mut ActivityState, event: &Event) {
        state.events += 1;
        state.bytes += event.payload.len() as u64;
    }
}

fn spawn(name: String, f: impl FnOnce() + Send + 'static) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name).spawn(f)
}

pub(crate) fn spawn_all(sh: &Arc<Shared>) -> std::io::Result<Vec<JoinHandle<()>>> {
    let spec = &sh.spec;
    let mut out = Vec::new();
    for i in 0..spec.producers {
        let s = sh.clone();
        out.push(spawn(format!("workload-producer-{i}"), move || {
            producer(&s, i)
        })?);
    }
    for i in 0..spec.subscribers + spec.slow_subscribers {
        let s = sh.clone();
        let slow = i >= spec.subscribers;
        out.push(spawn(format!("workload-subscriber-{i}"), move || {
            subscriber(&s, slow)
        })?);
    }
    for i in 0..spec.readers {
        let s = sh.clone();
        out.push(spawn(format!("workload-reader-{i}"), move || {
            reader(&s, i)
        })?);
    }
    Ok(out)
}

/// A proposal built to be denied by the configured gates, if they can deny one.
fn denied_proposal(sh: &Shared, rng: &mut Rng) -> Option<(EventKind, Vec<u8>)> {
    let g = sh.gates.as_ref()?;
    if let Some(max) = g.max_payload {
        return Some((EventKind::new(1, 1), rng.bytes(max.0 as usize + 1)));
    }
    if let Some(&k) = g.requires_causation.first() {
        return Some((EventKind(k), rng.bytes(16)));
    }
    (!g.allowed_kinds.is_empty()).then(|| (DENIED_KIND, rng.bytes(16)))
}

/// When each of a producer's appends is due: open loop at a constant rate, open loop
/// following `rate_steps`, or closed loop.
struct Pacer {
    start: Instant,
    /// Appends handed out so far (constant rate) or within the current step (steps).
    k: u64,
    /// The current step (steps only).
    step: u64,
}

impl Pacer {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            k: 0,
            step: 0,
        }
    }

    /// Events producer `index` of `producers` appends in one second at `rate`: the share
    /// of each producer rounds so that together they append exactly `rate`.
    fn share_of(rate: u64, index: u32, producers: u32) -> u64 {
        let p = u128::from(producers.max(1));
        let (i, r) = (u128::from(index), u128::from(rate));
        (r * (i + 1) / p - r * i / p) as u64
    }

    /// The due time of the next `n` appends (the first one's), and advances past them;
    /// `None` when this producer's share of every step is 0 (it has nothing to append).
    fn next_due(
        &mut self,
        spec: &crate::preset::WorkloadSpec,
        index: u32,
        n: u64,
    ) -> Option<Instant> {
        let producers = spec.producers.max(1);
        if !spec.rate_steps.is_empty() {
            let len = spec.rate_steps.len() as u64;
            // Skip silent or finished steps; give up on a whole cycle of silence.
            for _ in 0..=len {
                let rate = spec.rate_steps[(self.step % len) as usize];
                let mine = Self::share_of(rate, index, producers);
                if self.k < mine {
                    let at = Duration::from_secs(self.step)
                        + Duration::from_secs_f64(self.k as f64 / mine as f64);
                    self.k += n;
                    return Some(self.start + at);
                }
                self.k -= mine;
                self.step += 1;
            }
            return None;
        }
        let rate = spec.target_rate as f64 / f64::from(producers);
        let due = if rate > 0.0 {
            self.start + Duration::from_secs_f64(self.k as f64 / rate)
        } else {
            Instant::now()
        };
        self.k += n;
        Some(due)
    }
}

fn producer(sh: &Shared, index: u32) {
    let spec = &sh.spec;
    let mut rng = Rng::new(spec.seed.wrapping_add(u64::from(index) << 32));
    let mut last: HashMap<u64, EventId> = HashMap::new();
    let mix = Mix::new(spec);
    let mut pacer = Pacer::new();
    let mut calls = 0u64;
    while sh.running() {
        if sh.paused.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(20));
            pacer = Pacer::new();
            continue;
        }
        let batch = mix.batch_size(&mut rng);
        let Some(due) = pacer.next_due(spec, index, batch) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        calls += 1;
        if batch > 1 {
            append_batch(sh, &mix, &mut rng, &mut last, due, batch);
        } else {
            one_append(sh, &mix, &mut rng, &mut last, due);
        }
        if index == 0 && calls.is_multiple_of(2048) {
            check_disk(sh);
        }
    }
}

/// The distributions of a spec, prepared once per thread.
pub(crate) struct Mix {
    zipf: Option<Zipf>,
    /// Cumulative weights and bins of `payload_sizes`.
    payload: Vec<(f64, u32, u32)>,
    /// Cumulative weights and kinds of `kinds`.
    kinds: Vec<(f64, EventKind)>,
    /// Cumulative weights and sizes of `batch_sizes`.
    batches: Vec<(f64, u64)>,
    /// Chance that an event without a cause gets an explicit correlation.
    correlate: Option<f64>,
}

/// Cumulative weights, normalised to end at 1.
fn cumulative<T: Copy>(items: impl Iterator<Item = (f64, T)>) -> Vec<(f64, T)> {
    let mut acc = 0.0;
    let mut out: Vec<(f64, T)> = items
        .map(|(w, t)| {
            acc += w.max(0.0);
            (acc, t)
        })
        .collect();
    if acc > 0.0 {
        for (c, _) in &mut out {
            *c /= acc;
        }
    }
    out
}

/// The entry whose cumulative weight first exceeds a uniform draw.
fn pick<T: Copy>(table: &[(f64, T)], rng: &mut Rng) -> Option<T> {
    let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    table
        .iter()
        .find(|(c, _)| u < *c)
        .or(table.last())
        .map(|(_, t)| *t)
}

/// Bytes of random data whose reference payload (`{data: bytes}`, MessagePack with the
/// field name) encodes to `stored` bytes; 0 when `stored` is below the 8-byte envelope, and
/// one byte short where no length encodes exactly (the envelope grows at 256 and 65,536).
pub fn data_len_for(stored: u32) -> u32 {
    let encoded = |d: u32| {
        6 + d
            + match d {
                0..=255 => 2,
                256..=65_535 => 3,
                _ => 5,
            }
    };
    let mut d = stored.saturating_sub(8);
    while d > 0 && encoded(d) > stored {
        d -= 1;
    }
    d
}

impl Mix {
    pub(crate) fn new(spec: &crate::preset::WorkloadSpec) -> Self {
        let correlate = spec.correlation_share.map(|c| {
            let cause = spec.causation_share.clamp(0.0, 1.0);
            if cause >= 1.0 {
                0.0
            } else {
                ((c - cause) / (1.0 - cause)).clamp(0.0, 1.0)
            }
        });
        Self {
            zipf: (spec.entity_skew > 0.0)
                .then(|| Zipf::new(u64::from(spec.entities.max(1)), spec.entity_skew)),
            payload: cumulative(
                spec.payload_sizes
                    .iter()
                    .map(|b| (b.share, (b.min_bytes, b.max_bytes))),
            )
            .into_iter()
            .map(|(c, (lo, hi))| (c, lo, hi))
            .collect(),
            kinds: cumulative(
                spec.kinds
                    .iter()
                    .map(|k| (k.share, EventKind::new(k.category, k.code))),
            ),
            batches: cumulative(
                spec.batch_sizes
                    .iter()
                    .map(|b| (b.share, u64::from(b.events.max(1)))),
            ),
            correlate,
        }
    }

    /// An entity number: uniform, or rank - 1 of the Zipf law.
    pub(crate) fn entity(&self, spec: &crate::preset::WorkloadSpec, rng: &mut Rng) -> u64 {
        match &self.zipf {
            Some(z) => z.sample(rng) - 1,
            None => rng.below(u64::from(spec.entities.max(1))),
        }
    }

    fn batch_size(&self, rng: &mut Rng) -> u64 {
        if self.batches.is_empty() {
            1
        } else {
            pick(&self.batches, rng).unwrap_or(1)
        }
    }

    /// Bytes of random data for the next payload.
    fn data_len(&self, spec: &crate::preset::WorkloadSpec, rng: &mut Rng) -> u64 {
        if self.payload.is_empty() {
            let span = u64::from(
                spec.payload_max_bytes
                    .saturating_sub(spec.payload_min_bytes),
            ) + 1;
            return u64::from(spec.payload_min_bytes) + rng.below(span);
        }
        let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let (_, lo, hi) = self
            .payload
            .iter()
            .find(|(c, _, _)| u < *c)
            .or(self.payload.last())
            .copied()
            .unwrap_or((1.0, 0, 0));
        let stored = u64::from(lo) + rng.below(u64::from(hi - lo) + 1);
        u64::from(data_len_for(stored as u32))
    }

    fn kind(&self, rng: &mut Rng) -> EventKind {
        if self.kinds.is_empty() {
            EventKind::new(1, (rng.below(4) + 1) as u8)
        } else {
            pick(&self.kinds, rng).unwrap_or(EventKind::new(1, 1))
        }
    }
}

/// One event of the workload, ready to append.
struct Planned {
    entity: u64,
    coord: Coordinate,
    kind: EventKind,
    data: Vec<u8>,
    opts: AppendOptions,
}

/// Draws the next event; `deny` lets it be a proposal built to be denied. `None` for a
/// denied proposal's kind and payload when that is what was drawn (`Err`).
fn plan(
    sh: &Shared,
    mix: &Mix,
    rng: &mut Rng,
    last: &HashMap<u64, EventId>,
    deny: bool,
) -> Result<Planned, (Coordinate, EventKind, Vec<u8>)> {
    let spec = &sh.spec;
    let n = mix.entity(spec, rng);
    let coord = Coordinate::new(
        format!("order:{n}"),
        format!("tenant-{}", rng.below(u64::from(spec.scopes.max(1)))),
    );
    if deny && spec.deny_share > 0.0 && rng.chance(spec.deny_share) {
        if let Some((kind, data)) = denied_proposal(sh, rng) {
            return Err((coord, kind, data));
        }
    }
    let len = mix.data_len(spec, rng);
    let cause = if rng.chance(spec.causation_share) {
        last.get(&n).copied()
    } else {
        None
    };
    let correlation = match mix.correlate {
        Some(p) if cause.is_none() && rng.chance(p) => last.get(&n).copied(),
        _ => None,
    };
    let kind = mix.kind(rng);
    let data = rng.bytes(len as usize);
    let durable = spec.durable_share.is_some_and(|d| rng.chance(d));
    Ok(Planned {
        entity: n,
        coord,
        kind,
        data,
        opts: AppendOptions {
            causation: cause,
            correlation,
            durable,
            ..AppendOptions::default()
        },
    })
}

fn record_latency(sh: &Shared, due: Instant, events: u64) {
    let us = due.elapsed().as_micros() as u64;
    let mut h = sh.latency.lock().unwrap_or_else(PoisonError::into_inner);
    let _ = h.record_n(us.clamp(1, 3_600_000_000), events);
}

fn on_error(sh: &Shared, e: AppendError, last: &mut HashMap<u64, EventId>, entities: &[u64]) {
    let c = &sh.counters;
    match e {
        AppendError::Denied(_) => {
            c.denied.fetch_add(1, Ordering::Relaxed);
        }
        AppendError::UnknownCause(_) | AppendError::UnknownCorrelation(_) => {
            // The cause was written to a store that has since been replaced.
            for n in entities {
                last.remove(n);
            }
        }
        AppendError::Poisoned(why) => sh.halt(format!("the store is poisoned: {why}")),
        _ => {
            c.errors.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn one_append(
    sh: &Shared,
    mix: &Mix,
    rng: &mut Rng,
    last: &mut HashMap<u64, EventId>,
    due: Instant,
) {
    let (coord, kind, data, opts, n) = match plan(sh, mix, rng, last, true) {
        Ok(p) => (p.coord, p.kind, p.data, p.opts, Some(p.entity)),
        Err((coord, kind, data)) => (coord, kind, data, AppendOptions::default(), None),
    };
    let store = sh.store();
    match store.append_with(&coord, kind, &Payload { data: &data }, opts) {
        Ok(r) => {
            sh.counters.appended.fetch_add(1, Ordering::Relaxed);
            if let Some(n) = n {
                last.insert(n, r.id);
            }
            record_latency(sh, due, 1);
        }
        Err(e) => on_error(sh, e, last, n.as_slice()),
    }
}

fn append_batch(
    sh: &Shared,
    mix: &Mix,
    rng: &mut Rng,
    last: &mut HashMap<u64, EventId>,
    due: Instant,
    size: u64,
) {
    let mut items = Vec::with_capacity(size as usize);
    let mut entities = Vec::with_capacity(size as usize);
    let mut durable = false;
    for _ in 0..size {
        // A batch is all or nothing: no proposal in it is built to be denied.
        let Ok(p) = plan(sh, mix, rng, last, false) else {
            continue;
        };
        durable |= p.opts.durable;
        let item = match batpak::store::BatchItem::new(&p.coord, p.kind, &Payload { data: &p.data })
        {
            Ok(item) => item,
            Err(e) => {
                on_error(sh, e, last, &[]);
                return;
            }
        };
        entities.push(p.entity);
        items.push(item.with_options(AppendOptions {
            durable: false,
            ..p.opts
        }));
    }
    if items.is_empty() {
        return;
    }
    let store = sh.store();
    match store.append_batch(items, durable) {
        Ok(receipts) => {
            sh.counters
                .appended
                .fetch_add(receipts.len() as u64, Ordering::Relaxed);
            for (n, r) in entities.iter().zip(&receipts) {
                last.insert(*n, r.id);
            }
            record_latency(sh, due, receipts.len() as u64);
        }
        Err(e) => on_error(sh, e, last, &entities),
    }
}

fn check_disk(sh: &Shared) {
    let store = sh.store();
    let floor = sh.spec.min_free_disk.0;
    if let Some(free) = super::available_bytes(store.dir()) {
        if free < floor {
            sh.halt(format!(
                "stopped: free space on the disk of {} is {free} bytes, below the floor of {floor} bytes",
                store.dir().display()
            ));
        }
    }
}

fn subscriber(sh: &Shared, slow: bool) {
    while sh.running() {
        let store = sh.store();
        let mut sub = store.subscribe(Region::all());
        drop(store);
        loop {
            if !sh.running() {
                return;
            }
            match sub.recv_timeout(Duration::from_millis(100)) {
                Ok(_) => {
                    sh.counters.received.fetch_add(1, Ordering::Relaxed);
                    if slow {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
                Err(RecvError::Timeout) => {}
                // The store closed (a reopen): subscribe to the new one.
                Err(_) => break,
            }
        }
    }
}

/// How far back a reader looks, in sequences: `get` and causal walks start from one of the
/// newest `READ_WINDOW` events.
pub const READ_WINDOW: u64 = 4096;

/// Events a reader's query reads: the newest `QUERY_WINDOW` of the store, a sequence range
/// (an entity query walks the entity's whole index list from its head, so it would cost
/// more as the entity grows).
pub const QUERY_WINDOW: u64 = 64;

/// One reader operation, each bounded however large the store grows: a `get`, a range query
/// of the newest [`QUERY_WINDOW`] events, a causal walk (depth 3, at most 100 events), or a
/// projection served from the cache (`AnyCached`: an entity is folded once, when the cache
/// has no state for it; `AtMostBehind` would count the entity's events past the cached
/// state, walking its whole index list).
fn read_once(
    store: &Store,
    op: u32,
    mix: &crate::preset::ReadMix,
    written: u64,
    id: EventId,
    entity: &str,
) {
    // A failed read (a store being replaced) counts like any other: it was attempted.
    let _ok = if op < mix.get {
        store.get(id).is_ok()
    } else if op < mix.get + mix.query {
        let window =
            Region::all().with_sequences(written.saturating_sub(QUERY_WINDOW - 1).max(1)..=written);
        store
            .query_iter(&window)
            .take(QUERY_WINDOW as usize)
            .try_for_each(|e| e.map(|_| ()))
            .is_ok()
    } else if op < mix.get + mix.query + mix.walk {
        let limits = WalkLimits {
            max_depth: 3,
            max_count: 100,
        };
        store.descendants(id, limits).is_ok()
    } else {
        store
            .project::<Activity>(entity, Freshness::AnyCached)
            .is_ok()
    };
}

fn reader(sh: &Shared, index: u32) {
    let mut rng = Rng::new(sh.spec.seed ^ (0xdead_beef + u64::from(index)));
    let mix = &sh.spec.read_mix;
    let entities = Mix::new(&sh.spec);
    let total = u64::from(mix.get + mix.query + mix.walk + mix.project);
    let mut local = super::histogram();
    while sh.running() {
        if sh.paused.load(Ordering::Acquire) || total == 0 {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        let store = sh.store();
        let written = store.stats().written_sequence;
        if written == 0 {
            drop(store);
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        for _ in 0..64 {
            let id = EventId::new(
                store.store_id(),
                written.saturating_sub(rng.below(READ_WINDOW)).max(1),
            );
            let entity = format!("order:{}", entities.entity(&sh.spec, &mut rng));
            let op = rng.below(total) as u32;
            let began = Instant::now();
            read_once(&store, op, mix, written, id, &entity);
            let us = began.elapsed().as_micros() as u64;
            let _ = local.record(us.clamp(1, 3_600_000_000));
            sh.counters.reads.fetch_add(1, Ordering::Relaxed);
        }
        drop(store);
        let mut h = sh
            .read_latency
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let _ = h.add(&local);
        drop(h);
        local.reset();
    }
}
