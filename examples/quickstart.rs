//! Writes events to `./example-data`, closes, reopens and queries them.
//!
//! `cargo run --release --example quickstart`

use batpak::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
enum Order {
    Placed { items: u32 },
    Paid { cents: u64 },
    Shipped,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::Path::new("./example-data");
    let mut config = StoreConfig::new(dir);
    config.segment_max_bytes = 256 * 1024; // 256 KiB segments, so a few roll
    let store = Store::open(config.clone())?;
    let before = store.stats().events;
    println!(
        "opened {} with {before} events ({:?})",
        dir.display(),
        store.recovery_report().checkpoint
    );

    let start = std::time::Instant::now();
    for n in 0..10_000u32 {
        let order = Coordinate::new(format!("order:{}", n % 100), format!("tenant-{}", n % 4));
        let placed = store.append(
            &order,
            EventKind::new(1, 1),
            &Order::Placed { items: n % 7 + 1 },
        )?;
        let paid = AppendOptions::default().caused_by(placed.id);
        let paid = store.append_with(
            &order,
            EventKind::new(1, 2),
            &Order::Paid { cents: 1999 },
            paid,
        )?;
        if n % 2 == 0 {
            store.append_with(
                &order,
                EventKind::new(1, 3),
                &Order::Shipped,
                AppendOptions::default().caused_by(paid.id),
            )?;
        }
    }
    println!("appended 25,000 events in {:?}", start.elapsed());
    let report = store.close()?;
    println!("closed: checkpoint written = {}", report.checkpoint_written);

    let start = std::time::Instant::now();
    let store = Store::open(config)?;
    println!(
        "reopened in {:?}: {} events",
        start.elapsed(),
        store.stats().events
    );
    let stream = store.stream("order:42")?;
    println!("order:42 has {} events; the last one:", stream.len());
    if let Some(last) = stream.last() {
        println!(
            "  #{} kind {} {:?} caused by {:?} (correlation {:?})",
            last.sequence,
            last.kind,
            last.payload::<Order>()?,
            last.causation,
            last.correlation
        );
    }
    let shipped = store.query(&Region::scope("tenant-2").with_kind(EventKind::new(1, 3)))?;
    println!("tenant-2 shipped {} orders", shipped.len());
    for s in store.stats().segments {
        println!(
            "  {} events {:>6} bytes {:>8} {}",
            s.file,
            s.events,
            s.bytes,
            if s.sealed { "sealed" } else { "active" }
        );
    }
    println!(
        "inspect it with: cargo run --release -- inspect {}",
        dir.display()
    );
    Ok(())
}
