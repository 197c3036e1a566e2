//! The workload's threads: producers, subscribers, readers.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::AppendError;
use crate::event::{AppendOptions, Coordinate, Event, EventId, EventKind, Region};
use crate::projection::{Freshness, Projection};
use crate::store::{RecvError, WalkLimits};

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

fn producer(sh: &Shared, index: u32) {
    let spec = &sh.spec;
    let mut rng = Rng::new(spec.seed.wrapping_add(u64::from(index) << 32));
    let mut last: HashMap<u64, EventId> = HashMap::new();
    let rate = spec.target_rate as f64 / f64::from(spec.producers.max(1));
    let (mut start, mut k) = (Instant::now(), 0u64);
    while sh.running() {
        if sh.paused.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(20));
            (start, k) = (Instant::now(), 0);
            continue;
        }
        let due = if rate > 0.0 {
            start + Duration::from_secs_f64(k as f64 / rate)
        } else {
            Instant::now()
        };
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        k += 1;
        one_append(sh, &mut rng, &mut last, due);
        if index == 0 && k.is_multiple_of(2048) {
            check_disk(sh);
        }
    }
}

fn one_append(sh: &Shared, rng: &mut Rng, last: &mut HashMap<u64, EventId>, due: Instant) {
    let spec = &sh.spec;
    let n = rng.below(u64::from(spec.entities.max(1)));
    let coord = Coordinate::new(
        format!("order:{n}"),
        format!("tenant-{}", rng.below(u64::from(spec.scopes.max(1)))),
    );
    let deny = if spec.deny_share > 0.0 && rng.chance(spec.deny_share) {
        denied_proposal(sh, rng)
    } else {
        None
    };
    let (kind, data, cause) = match deny {
        Some((kind, data)) => (kind, data, None),
        None => {
            let span = u64::from(
                spec.payload_max_bytes
                    .saturating_sub(spec.payload_min_bytes),
            ) + 1;
            let len = u64::from(spec.payload_min_bytes) + rng.below(span);
            let cause = if rng.chance(spec.causation_share) {
                last.get(&n).copied()
            } else {
                None
            };
            (
                EventKind::new(1, (rng.below(4) + 1) as u8),
                rng.bytes(len as usize),
                cause,
            )
        }
    };
    let opts = AppendOptions {
        causation: cause,
        ..AppendOptions::default()
    };
    let store = sh.store();
    let c = &sh.counters;
    match store.append_with(&coord, kind, &Payload { data: &data }, opts) {
        Ok(r) => {
            c.appended.fetch_add(1, Ordering::Relaxed);
            last.insert(n, r.id);
            let us = due.elapsed().as_micros() as u64;
            let mut h = sh.latency.lock().unwrap_or_else(PoisonError::into_inner);
            let _ = h.record(us.clamp(1, 3_600_000_000));
        }
        Err(AppendError::Denied(_)) => {
            c.denied.fetch_add(1, Ordering::Relaxed);
        }
        Err(AppendError::UnknownCause(_)) => {
            // The cause was written to a store that has since been replaced.
            last.remove(&n);
        }
        Err(AppendError::Poisoned(why)) => sh.halt(format!("the store is poisoned: {why}")),
        Err(_) => {
            c.errors.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(5));
        }
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

fn reader(sh: &Shared, index: u32) {
    let mut rng = Rng::new(sh.spec.seed ^ (0xdead_beef + u64::from(index)));
    let mix = &sh.spec.read_mix;
    let total = u64::from(mix.get + mix.query + mix.walk + mix.project);
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
                written.saturating_sub(rng.below(1000)).max(1),
            );
            let entity = format!("order:{}", rng.below(u64::from(sh.spec.entities.max(1))));
            let pick = rng.below(total) as u32;
            let _ = if pick < mix.get {
                store.get(id).map(|_| ()).map_err(|e| e.to_string())
            } else if pick < mix.get + mix.query {
                store.stream(&entity).map(|_| ()).map_err(|e| e.to_string())
            } else if pick < mix.get + mix.query + mix.walk {
                store
                    .descendants(
                        id,
                        WalkLimits {
                            max_depth: 3,
                            max_count: 100,
                        },
                    )
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            } else {
                store
                    .project::<Activity>(&entity, Freshness::AtMostBehind(10))
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            };
            sh.counters.reads.fetch_add(1, Ordering::Relaxed);
        }
    }
}
