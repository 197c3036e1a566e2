//! Durable consumers: how fast one catches up from disk, and how far behind a live one
//! runs, with the raw reads of the same store measured in the same run as the reference.
//!
//! - **Catch-up:** a store of `BATPAK_CONSUMER_EVENTS` events (default 200,000, 64-byte
//!   payloads over 1,000 entities) closed and reopened; a new consumer of the whole store
//!   receives them all, acknowledging every 1,000. Reference: `query_iter` over the same
//!   region.
//! - **Live lag:** a producer appends at a fixed rate (`BATPAK_CONSUMER_RATE`, default
//!   10,000 events/s, for 5 s); the consumer, in its own thread, records for each event the
//!   time from just before its `append` to its delivery (p50, p99, max).
//!
//! `cargo bench --bench consumer`.

use std::path::Path;
use std::time::{Duration, Instant};

use batpak::prelude::*;
use hdrhistogram::Histogram;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const KIND: EventKind = EventKind::new(3, 2);

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config(dir: &Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    c.sync_every_n_events = 1000;
    c
}

fn fill(dir: &Path, n: u64) -> Res<()> {
    let store = Store::open(config(dir))?;
    let payload = serde_bytes::ByteBuf::from(vec![7u8; 64]);
    let mut tickets = Vec::with_capacity(1024);
    for i in 0..n {
        let c = Coordinate::new(format!("e{}", i % 1000), "bench");
        tickets.push(store.submit(&c, KIND, &payload, AppendOptions::default())?);
        if tickets.len() == 1024 {
            for t in tickets.drain(..) {
                t.wait()?;
            }
        }
    }
    for t in tickets {
        t.wait()?;
    }
    store.close()?;
    Ok(())
}

/// Events per second a new consumer delivers from a reopened store, and the raw query rate.
fn catch_up(dir: &Path, n: u64, name: &str) -> Res<(f64, f64)> {
    let store = Store::open(config(dir))?;
    let t = Instant::now();
    let raw = store
        .query_iter(&Region::all())
        .filter(|e| e.as_ref().is_ok_and(|e| e.kind == KIND))
        .count() as u64;
    let raw_rate = raw as f64 / t.elapsed().as_secs_f64();
    let mut c = store.consumer(name, Region::all())?;
    let t = Instant::now();
    let mut got = 0u64;
    while got < n {
        let e = c.recv()?;
        if e.kind == KIND {
            got += 1;
            if got.is_multiple_of(1000) {
                c.ack(e.sequence)?;
            }
        }
    }
    let rate = got as f64 / t.elapsed().as_secs_f64();
    drop(c);
    store.close()?;
    Ok((rate, raw_rate))
}

/// Delivery latency of a live consumer at `rate` events/s for `secs` seconds.
fn live(dir: &Path, rate: u64, secs: u64) -> Res<Histogram<u64>> {
    let store = Store::open(config(dir))?;
    let total = rate * secs;
    let start = Instant::now();
    let (hist, produced) = std::thread::scope(|s| -> Res<(Histogram<u64>, u64)> {
        let consumer = s.spawn(|| -> Result<Histogram<u64>, String> {
            let mut h = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
            let mut c = store
                .consumer("live", Region::all())
                .map_err(|e| e.to_string())?;
            let mut got = 0;
            while got < total {
                let e = c.recv().map_err(|e| e.to_string())?;
                if e.kind != KIND {
                    continue;
                }
                let sent: u64 = e.payload().map_err(|e| e.to_string())?;
                let now = start.elapsed().as_nanos() as u64;
                h.saturating_record(now.saturating_sub(sent) / 1000);
                got += 1;
                if got % 1000 == 0 {
                    c.ack(e.sequence).map_err(|e| e.to_string())?;
                }
            }
            Ok(h)
        });
        let gap = Duration::from_secs_f64(1.0 / rate as f64);
        for i in 0..total {
            let due = gap * i as u32;
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
            let sent = start.elapsed().as_nanos() as u64;
            let c = Coordinate::new(format!("e{}", i % 1000), "live");
            store.append(&c, KIND, &sent)?;
        }
        let h = consumer.join().map_err(|_| "the consumer panicked")??;
        Ok((h, total))
    })?;
    let elapsed = start.elapsed();
    store.close()?;
    println!(
        "live: {produced} events in {:.1} s ({:.0}/s offered)",
        elapsed.as_secs_f64(),
        produced as f64 / elapsed.as_secs_f64()
    );
    Ok(hist)
}

fn main() -> Res<()> {
    let n = env("BATPAK_CONSUMER_EVENTS", 200_000);
    let rate = env("BATPAK_CONSUMER_RATE", 10_000);
    let dir = tempfile::tempdir()?;
    fill(dir.path(), n)?;
    for round in 1..=3 {
        // A new name each round starts from the beginning (it also passes the earlier
        // rounds' position events, one per 1,000).
        let (rate, raw) = catch_up(dir.path(), n, &format!("bench{round}"))?;
        println!(
            "catch-up round {round}: consumer {:.0} events/s, query_iter {:.0} events/s ({:.2}x)",
            rate,
            raw,
            raw / rate
        );
    }
    let live_dir = tempfile::tempdir()?;
    let h = live(live_dir.path(), rate, 5)?;
    println!(
        "live lag (append to delivery): p50 {} µs, p99 {} µs, max {} µs over {} events",
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.max(),
        h.len()
    );
    Ok(())
}
