//! Typed events against raw ones, same run, same store settings, rounds, each starting with another way:
//! appends (one producer, `append` with an explicit kind and a struct payload vs
//! `append_typed` of the same struct at schema version 1 and at version 3) and reads
//! (`stream` + `Event::payload` into the struct vs `stream_typed`; and, reported apart,
//! `stream_typed` upcasting every event from version 1).
//!
//! `cargo bench --bench typed` (`BATPAK_TYPED_EVENTS`, default 100,000 appends a round).

use std::path::Path;
use std::time::Instant;

use batpak::prelude::*;
use serde::{Deserialize, Serialize};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const KIND: EventKind = EventKind::new(3, 1);
const ROUNDS: usize = 5;
const ENTITY_EVENTS: u64 = 1000;

/// The event at version 1.
#[derive(Serialize, Deserialize)]
struct V1 {
    order: u64,
    cents: u64,
    note: String,
}

/// The same event at version 3 (two upcast steps from version 1).
#[derive(Serialize, Deserialize)]
struct V3 {
    order: u64,
    cents: u64,
    note: String,
}

/// The middle version, only for the upcast path.
#[derive(Serialize, Deserialize)]
struct V2 {
    order: u64,
    cents: u64,
    note: String,
}

impl From<V1> for V2 {
    fn from(v: V1) -> Self {
        V2 {
            order: v.order,
            cents: v.cents,
            note: v.note,
        }
    }
}

impl From<V2> for V3 {
    fn from(v: V2) -> Self {
        V3 {
            order: v.order,
            cents: v.cents,
            note: v.note,
        }
    }
}

impl EventPayload for V1 {
    const KIND: EventKind = KIND;
}

impl EventPayload for V2 {
    const KIND: EventKind = KIND;
    const VERSION: u16 = 2;
    const UPCASTS: &'static [Upcast] = &[Upcast::step::<V1, V2>()];
}

impl EventPayload for V3 {
    const KIND: EventKind = KIND;
    const VERSION: u16 = 3;
    const UPCASTS: &'static [Upcast] = &[Upcast::step::<V1, V2>(), Upcast::step::<V2, V3>()];
}

fn events() -> u64 {
    std::env::var("BATPAK_TYPED_EVENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000)
}

fn config(dir: &Path) -> StoreConfig {
    let mut cfg = StoreConfig::new(dir);
    cfg.sync_every_n_events = 1000;
    cfg
}

fn coord(i: u64) -> Coordinate {
    Coordinate::new(format!("order:{}", i % 1000), "shop")
}

fn note(i: u64) -> String {
    format!("order {i} placed by the bench")
}

/// Appends per second of one way of appending, on a fresh store.
fn append_rate(how: &str) -> Res<f64> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(config(dir.path()))?;
    let n = events();
    let start = Instant::now();
    for i in 0..n {
        let (order, cents, note) = (i, i * 3, note(i));
        match how {
            "raw" => store
                .append(&coord(i), KIND, &V1 { order, cents, note })
                .map(drop)?,
            "typed v1" => store
                .append_typed(&coord(i), &V1 { order, cents, note })
                .map(drop)?,
            _ => store
                .append_typed(&coord(i), &V3 { order, cents, note })
                .map(drop)?,
        }
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    store.close()?;
    Ok(rate)
}

/// A store with one entity of `ENTITY_EVENTS` events at version 1 and one at version 3.
fn read_store(dir: &Path) -> Res<Store> {
    let store = Store::open(config(dir))?;
    for i in 0..ENTITY_EVENTS {
        let e1 = Coordinate::new("old", "shop");
        let e3 = Coordinate::new("new", "shop");
        store.append_typed(
            &e1,
            &V1 {
                order: i,
                cents: i,
                note: note(i),
            },
        )?;
        store.append_typed(
            &e3,
            &V3 {
                order: i,
                cents: i,
                note: note(i),
            },
        )?;
    }
    store.sync()?;
    Ok(store)
}

/// Microseconds per streamed and decoded entity (the best of 50 reads).
fn stream_us(store: &Store, how: &str) -> Res<f64> {
    let mut best = f64::MAX;
    for _ in 0..50 {
        let start = Instant::now();
        let sum: u64 = match how {
            "raw" => store
                .stream("new")?
                .iter()
                .map(|e| e.payload::<V3>().map(|v| v.cents))
                .sum::<Result<u64, _>>()?,
            "typed" => store
                .stream_typed::<V3>("new")?
                .iter()
                .map(|t| t.value.cents)
                .sum(),
            _ => store
                .stream_typed::<V3>("old")?
                .iter()
                .map(|t| t.value.cents)
                .sum(),
        };
        std::hint::black_box(sum);
        best = best.min(start.elapsed().as_secs_f64() * 1e6);
    }
    Ok(best)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Res<()> {
    let mut rates: [Vec<f64>; 3] = Default::default();
    let ways = ["raw", "typed v1", "typed v3"];
    for round in 0..ROUNDS {
        // Each round starts with another way: no way always runs first or last.
        for j in 0..ways.len() {
            let k = (round + j) % ways.len();
            rates[k].push(append_rate(ways[k])?);
        }
    }
    let [raw, t1, t3] = rates.map(median);
    println!(
        "appends, 1 producer, {} a round, median of {ROUNDS} rounds, each starting with another way",
        events()
    );
    println!("  raw append          {raw:>10.0} events/s");
    println!(
        "  append_typed v1     {t1:>10.0} events/s  {:.3} x raw",
        t1 / raw
    );
    println!(
        "  append_typed v3     {t3:>10.0} events/s  {:.3} x raw",
        t3 / raw
    );
    let dir = tempfile::tempdir()?;
    let store = read_store(dir.path())?;
    let mut reads: [Vec<f64>; 3] = Default::default();
    let ways = ["raw", "typed", "upcast"];
    for round in 0..ROUNDS {
        for j in 0..ways.len() {
            let k = (round + j) % ways.len();
            reads[k].push(stream_us(&store, ways[k])?);
        }
    }
    let [raw, typed, upcast] = reads.map(median);
    let per = |us: f64| us * 1e3 / ENTITY_EVENTS as f64;
    println!(
        "stream of an entity of {ENTITY_EVENTS} events, decoded, best of 50, median of {ROUNDS}"
    );
    println!(
        "  stream + payload    {raw:>8.0} µs  {:>5.0} ns/event",
        per(raw)
    );
    println!(
        "  stream_typed        {typed:>8.0} µs  {:>5.0} ns/event  {:.3} x raw",
        per(typed),
        typed / raw
    );
    println!(
        "  stream_typed, every event upcast 1 -> 3  {upcast:>8.0} µs  {:>5.0} ns/event",
        per(upcast)
    );
    store.close()?;
    Ok(())
}
