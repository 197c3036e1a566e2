//! Engine benchmarks on the reference workload (64-byte payloads, 10,000 entities, 8 scopes).
//!
//! `cargo bench --bench engine` — stores live under `target/bench-data` (on the disk under
//! test, not a tmpfs), or under `$BATPAK_BENCH_DIR`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use batpak::prelude::*;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Reference {
    #[serde(with = "serde_bytes")]
    data: Vec<u8>,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn event(rng: &mut Rng) -> (Coordinate, EventKind, Reference) {
    let n = rng.next() % 10_000;
    let coord = Coordinate::new(format!("order:{n}"), format!("tenant-{}", rng.next() % 8));
    let data = (0..64).map(|_| rng.next() as u8).collect();
    (
        coord,
        EventKind::new(1, (n % 4 + 1) as u8),
        Reference { data },
    )
}

fn bench_dir(name: &str) -> PathBuf {
    let root = std::env::var_os("BATPAK_BENCH_DIR")
        .map_or_else(|| PathBuf::from("target/bench-data"), PathBuf::from);
    let dir = root.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn open(name: &str, tune: impl FnOnce(&mut StoreConfig)) -> Store {
    let mut cfg = StoreConfig::new(bench_dir(name));
    tune(&mut cfg);
    match Store::open(cfg) {
        Ok(s) => s,
        Err(e) => panic!("cannot open bench store {name}: {e}"),
    }
}

fn append_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    g.measurement_time(Duration::from_secs(4));
    let mut rng = Rng(1);

    let store = open("single", |_| {});
    g.throughput(Throughput::Elements(1));
    g.bench_function("single_producer_wait_each", |b| {
        b.iter(|| {
            let (c, k, p) = event(&mut rng);
            store.append(&c, k, &p).map(|r| r.sequence)
        })
    });

    g.throughput(Throughput::Elements(1000));
    g.bench_function("pipelined_submit_1000", |b| {
        b.iter(|| {
            let tickets: Vec<Ticket> = (0..1000)
                .filter_map(|_| {
                    let (c, k, p) = event(&mut rng);
                    store.submit(&c, k, &p, AppendOptions::default()).ok()
                })
                .collect();
            tickets.into_iter().filter_map(|t| t.wait().ok()).count()
        })
    });

    g.throughput(Throughput::Elements(100));
    g.bench_function("append_batch_100", |b| {
        b.iter(|| {
            let items: Vec<BatchItem> = (0..100)
                .filter_map(|_| {
                    let (c, k, p) = event(&mut rng);
                    BatchItem::new(&c, k, &p).ok()
                })
                .collect();
            store.append_batch(items, false).map(|r| r.len())
        })
    });
    drop(store);

    let store = Arc::new(open("four", |_| {}));
    g.throughput(Throughput::Elements(4 * 250));
    g.bench_function("four_producers_wait_each", |b| {
        b.iter_custom(|iters| producers(&store, 4, 250, iters))
    });
    drop(store);
    g.finish();
}

/// `threads` producers each appending `per_thread` events (waiting for each), `iters` times.
fn producers(store: &Arc<Store>, threads: u64, per_thread: u64, iters: u64) -> Duration {
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut rng = Rng(t + 7);
                for _ in 0..iters * per_thread {
                    let (c, k, p) = event(&mut rng);
                    let _ = store.append(&c, k, &p);
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|h| {
        let _ = h.join();
    });
    start.elapsed()
}

fn durable_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("durable_append");
    g.measurement_time(Duration::from_secs(5));
    g.sample_size(20);
    for threads in [1u64, 4] {
        let store = Arc::new(open(&format!("durable-{threads}"), |c| {
            c.sync_every_n_events = 1;
            c.sync_mode = SyncMode::SyncData;
        }));
        g.throughput(Throughput::Elements(threads * 50));
        g.bench_with_input(
            BenchmarkId::new("sync_every_1_syncdata_producers", threads),
            &threads,
            |b, &t| b.iter_custom(|iters| producers(&store, t, 50, iters)),
        );
    }
    g.finish();
}

fn read_benches(c: &mut Criterion) {
    let store = open("reads", |_| {});
    let mut rng = Rng(9);
    let ids: Vec<EventId> = (0..200_000)
        .filter_map(|_| {
            let (c, k, p) = event(&mut rng);
            BatchItem::new(&c, k, &p).ok()
        })
        .collect::<Vec<_>>()
        .chunks(1000)
        .flat_map(|chunk| {
            store
                .append_batch(chunk.to_vec(), false)
                .unwrap_or_default()
        })
        .map(|r| r.id)
        .collect();
    let mut g = c.benchmark_group("read");
    g.measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(1));
    g.bench_function("get_random", |b| {
        b.iter(|| store.get(ids[(rng.next() % ids.len() as u64) as usize]))
    });
    g.bench_function("stream_one_entity_20_events", |b| {
        b.iter(|| {
            store
                .stream(&format!("order:{}", rng.next() % 10_000))
                .map(|v| v.len())
        })
    });
    let region = Region::scope("tenant-3").with_kind(EventKind::new(1, 2));
    g.bench_function("query_scope_and_kind_6k_events", |b| {
        b.iter(|| store.query(&region).map(|v| v.len()))
    });
    g.finish();
}

fn reopen_benches(c: &mut Criterion) {
    let dir = bench_dir("reopen-1m");
    {
        let mut cfg = StoreConfig::new(&dir);
        cfg.sync_every_n_events = 100_000;
        let Ok(store) = Store::open(cfg) else { return };
        let mut rng = Rng(5);
        for _ in 0..1000 {
            let items: Vec<BatchItem> = (0..1000)
                .filter_map(|_| {
                    let (c, k, p) = event(&mut rng);
                    BatchItem::new(&c, k, &p).ok()
                })
                .collect();
            let _ = store.append_batch(items, false);
        }
        let _ = store.close();
    }
    let mut g = c.benchmark_group("reopen");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("open_1m_events_with_checkpoint_until_first_get", |b| {
        b.iter_custom(|iters| time_opens(&dir, iters, false))
    });
    g.bench_function(
        "open_1m_events_rebuilding_without_checkpoint_until_first_get",
        |b| b.iter_custom(|iters| time_opens(&dir, iters, true)),
    );
    let _ = std::fs::remove_dir_all(&dir);
    g.finish();
}

fn causal_benches(c: &mut Criterion) {
    let store = open("causal", |_| {});
    let coord = Coordinate::new("chain", "t");
    let k = EventKind::new(1, 1);
    let mut last = store.append(&coord, k, &0u32).map(|r| r.id).ok();
    for i in 1..=10_000u32 {
        let opts = AppendOptions {
            causation: last,
            ..AppendOptions::default()
        };
        last = store.append_with(&coord, k, &i, opts).map(|r| r.id).ok();
    }
    let root = store
        .append(&Coordinate::new("wide", "t"), k, &0u32)
        .map(|r| r.id)
        .ok();
    let items: Vec<BatchItem> = (0..10_000u32)
        .filter_map(|i| {
            let opts = AppendOptions {
                causation: root,
                ..AppendOptions::default()
            };
            BatchItem::new(&Coordinate::new(format!("leaf:{i}"), "t"), k, &i)
                .ok()
                .map(|b| b.with_options(opts))
        })
        .collect();
    let _ = store.append_batch(items, false);
    let (Some(last), Some(root)) = (last, root) else {
        return;
    };
    let mut g = c.benchmark_group("causal");
    g.measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("ancestors_10000_hops", |b| {
        b.iter(|| store.ancestors(last).map(|w| w.nodes.len()))
    });
    let limits = WalkLimits {
        max_depth: 4,
        max_count: 100_000,
    };
    g.bench_function("descendants_of_a_10000_wide_tree", |b| {
        b.iter(|| store.descendants(root, limits).map(|w| w.nodes.len()))
    });
    g.finish();
}

fn gate_benches(c: &mut Criterion) {
    use batpak::gate::{AllowedKinds, MaxPayloadSize, RateLimit, RequiresCausation};
    let mut g = c.benchmark_group("gates");
    g.measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Elements(1));
    let plain = open("gates-none", |_| {});
    let mut rng = Rng(11);
    g.bench_function("append_without_gates", |b| {
        b.iter(|| {
            let (c, k, p) = event(&mut rng);
            plain.append(&c, k, &p).map(|r| r.sequence)
        })
    });
    drop(plain);
    let gates = GateSet::new(Evaluation::EvaluateAll)
        .with(MaxPayloadSize { max_bytes: 4096 })
        .with(AllowedKinds::default())
        .with(RequiresCausation {
            kinds: vec![EventKind::new(9, 9)],
        })
        .with(RateLimit::new(1_000_000, Duration::from_secs(1)));
    let mut cfg = StoreConfig::new(bench_dir("gates-four"));
    cfg.sync_every_n_events = 1000;
    let Ok(gated) = Store::open_with(cfg, OpenOptions::default().with_gates(gates)) else {
        return;
    };
    g.bench_function("append_through_four_gates", |b| {
        b.iter(|| {
            let (c, k, p) = event(&mut rng);
            gated.append(&c, k, &p).map(|r| r.sequence)
        })
    });
    g.finish();
}

#[derive(Default, Serialize, Deserialize)]
struct Count {
    events: u64,
    bytes: u64,
}

struct Counter;

impl batpak::projection::Projection for Counter {
    type State = Count;
    const NAME: &'static str = "count";
    const VERSION: u32 = 1;
    fn apply(state: &mut Count, event: &Event) {
        state.events += 1;
        state.bytes += event.payload.len() as u64;
    }
}

fn projection_benches(c: &mut Criterion) {
    use batpak::projection::Freshness;
    let store = open("projection", |_| {});
    let coord = Coordinate::new("busy", "t");
    let items: Vec<BatchItem> = (0..10_000u32)
        .filter_map(|i| BatchItem::new(&coord, EventKind::new(1, 1), &i).ok())
        .collect();
    let _ = store.append_batch(items, false);
    let mut g = c.benchmark_group("projection");
    g.measurement_time(Duration::from_secs(4));
    // A read-only open has no cache: every call folds all 10,000 events.
    let Ok(uncached) = Store::open_read_only(store.dir()) else {
        return;
    };
    g.bench_function("cold_10000_events_folded_from_disk", |b| {
        b.iter(|| {
            uncached
                .project::<Counter>("busy", Freshness::Latest)
                .map(|s| s.events)
        })
    });
    let _ = store.project::<Counter>("busy", Freshness::Latest);
    g.bench_function("warm_cached_10000_events", |b| {
        b.iter(|| {
            store
                .project::<Counter>("busy", Freshness::Latest)
                .map(|s| s.events)
        })
    });
    g.finish();
}

/// Time of `iters` opens of `dir` until a `get` returned; the close is not timed.
fn time_opens(dir: &std::path::Path, iters: u64, without_checkpoint: bool) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        if without_checkpoint {
            let _ = std::fs::remove_file(dir.join("index.ckpt"));
        }
        let start = Instant::now();
        let store = Store::open(StoreConfig::new(dir));
        let found = store
            .as_ref()
            .ok()
            .and_then(|s| s.get(EventId::new(s.store_id(), 777_777)).ok().flatten());
        total += start.elapsed();
        assert!(found.is_some());
        drop(store);
    }
    total
}

criterion_group!(
    benches,
    append_benches,
    durable_benches,
    read_benches,
    causal_benches,
    gate_benches,
    projection_benches,
    reopen_benches
);
criterion_main!(benches);
