//! The cost of telemetry on the append path: the same load with telemetry on and off,
//! interleaved and repeated in one run so the machine's noise hits both alike.
//!
//! `cargo bench --bench telemetry_cost` prints each round and the ratio of medians.

use std::path::PathBuf;
use std::time::Instant;

use batpak::prelude::*;

const EVENTS: u32 = 200_000;
const ROUNDS: usize = 8;

fn run(telemetry: bool, round: usize) -> Result<f64, Box<dyn std::error::Error>> {
    let root = std::env::var_os("BATPAK_BENCH_DIR")
        .map_or_else(|| PathBuf::from("target/bench-data"), PathBuf::from);
    let dir = root.join(format!("telemetry-{telemetry}-{round}"));
    let _ = std::fs::remove_dir_all(&dir);
    let options = OpenOptions {
        telemetry,
        ..OpenOptions::default()
    };
    let store = Store::open_with(StoreConfig::new(&dir), options)?;
    let coords: Vec<Coordinate> = (0..1000)
        .map(|i| Coordinate::new(format!("order:{i}"), format!("tenant-{}", i % 8)))
        .collect();
    let payload = [7u8; 64];
    let start = Instant::now();
    let mut tickets = Vec::with_capacity(1024);
    for i in 0..EVENTS {
        let c = &coords[(i % 1000) as usize];
        tickets.push(store.submit(
            c,
            EventKind::new(1, 1),
            &serde_bytes::Bytes::new(&payload),
            AppendOptions::default(),
        )?);
        if tickets.len() == 1024 {
            for t in tickets.drain(..) {
                t.wait()?;
            }
        }
    }
    for t in tickets.drain(..) {
        t.wait()?;
    }
    let rate = f64::from(EVENTS) / start.elapsed().as_secs_f64();
    store.close()?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(rate)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        // Alternate which goes first, so warm-up and drift do not favour one side.
        let order = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for t in order {
            let rate = run(t, round)?;
            println!(
                "round {round} telemetry {:<3} {:>10.0} events/s",
                if t { "on" } else { "off" },
                rate
            );
            if t {
                on.push(rate)
            } else {
                off.push(rate)
            }
        }
    }
    let (m_on, m_off) = (median(&mut on), median(&mut off));
    println!("median: on {m_on:.0} events/s, off {m_off:.0} events/s");
    println!(
        "telemetry cost: {:.2} % of append throughput",
        (1.0 - m_on / m_off) * 100.0
    );
    Ok(())
}
