//! `inspect` and `salvage`.

use std::error::Error;
use std::path::Path;

use batpak::prelude::*;
use batpak::store::{CheckpointStatus, RecoveryReport, Stats};
use serde::Serialize;

use crate::units;

#[derive(Serialize)]
struct SegmentRow {
    file: String,
    first_sequence: Option<u64>,
    last_sequence: Option<u64>,
    events: u64,
    bytes: u64,
    sealed: bool,
}

#[derive(Serialize)]
struct Report {
    dir: String,
    store_id: String,
    events: u64,
    segment_bytes: u64,
    bytes_per_event: Option<f64>,
    checkpoint: String,
    /// What the open did and found (`RecoveryReport::summary`).
    recovery: Vec<String>,
    /// Synced data found missing (the read-write open would refuse).
    lost: Vec<String>,
    torn_tails: Vec<String>,
    salvaged: Vec<String>,
    recovery_ms: f64,
    cache: CacheRow,
    workload_data: bool,
    segments: Vec<SegmentRow>,
}

#[derive(Serialize)]
struct CacheRow {
    present: bool,
    bytes: u64,
}

fn cache_row(dir: &Path) -> CacheRow {
    let cache = dir.join(batpak::projection::CACHE_DIR);
    let bytes = std::fs::read_dir(&cache)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    CacheRow {
        present: cache.is_dir(),
        bytes,
    }
}

fn checkpoint_text(c: &CheckpointStatus) -> String {
    match c {
        CheckpointStatus::Missing => "missing (the index was rebuilt by scanning)".into(),
        CheckpointStatus::Loaded => "loaded".into(),
        CheckpointStatus::Stale(why) => format!("stale: {why}"),
        CheckpointStatus::Damaged(why) => format!("damaged: {why}"),
        _ => "not used".into(),
    }
}

fn report(store: &Store, stats: &Stats, rec: &RecoveryReport) -> Report {
    let segment_bytes: u64 = stats.segments.iter().map(|s| s.bytes).sum();
    Report {
        dir: store.dir().display().to_string(),
        store_id: format!("{:016x}", store.store_id()),
        events: stats.events,
        segment_bytes,
        bytes_per_event: (stats.events > 0).then(|| segment_bytes as f64 / stats.events as f64),
        checkpoint: checkpoint_text(&rec.checkpoint),
        recovery: rec.summary(),
        lost: rec.lost.iter().map(ToString::to_string).collect(),
        torn_tails: rec
            .truncated
            .iter()
            .map(|t| {
                format!(
                    "{} from offset {} ({} bytes): {}",
                    t.path.display(),
                    t.offset,
                    t.bytes,
                    t.reason
                )
            })
            .collect(),
        salvaged: rec
            .salvaged
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        recovery_ms: rec.elapsed.as_secs_f64() * 1000.0,
        cache: cache_row(store.dir()),
        workload_data: batpak::workload::is_workload_dir(store.dir()),
        segments: stats
            .segments
            .iter()
            .map(|s| SegmentRow {
                file: s.file.clone(),
                first_sequence: s.first_sequence,
                last_sequence: s.last_sequence,
                events: s.events,
                bytes: s.bytes,
                sealed: s.sealed,
            })
            .collect(),
    }
}

fn print(r: &Report, json: bool) -> Result<(), Box<dyn Error>> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    println!("store {} (id {})", r.dir, r.store_id);
    for l in &r.lost {
        println!("LOST: {l}");
    }
    if !r.lost.is_empty() {
        println!(
            "(a read-write open refuses this store; `batpak-tui salvage DIR` keeps what is there)"
        );
    }
    let per_event = r.bytes_per_event.map_or("-".into(), |b| format!("{b:.1}"));
    println!(
        "{} events in {} segments, {} ({} bytes/event)",
        r.events,
        r.segments.len(),
        units::bytes(r.segment_bytes),
        per_event
    );
    println!(
        "index checkpoint: {} (opened in {:.1} ms)",
        r.checkpoint, r.recovery_ms
    );
    let cache = if r.cache.present {
        units::bytes(r.cache.bytes)
    } else {
        "none".into()
    };
    println!("projection cache: {cache}");
    if r.workload_data {
        println!("holds synthetic workload data (batpak-tui wipe can delete it)");
    }
    for line in r.recovery.iter().filter(|l| !l.starts_with("LOST ")) {
        println!("recovery: {line}");
    }
    println!();
    println!(
        "{:<20} {:>12} {:>12} {:>10} {:>11}  STATE",
        "SEGMENT", "FIRST", "LAST", "EVENTS", "BYTES"
    );
    for s in &r.segments {
        let seq = |v: Option<u64>| v.map_or("-".into(), |v| v.to_string());
        let state = if s.sealed { "sealed" } else { "active" };
        println!(
            "{:<20} {:>12} {:>12} {:>10} {:>11}  {state}",
            s.file,
            seq(s.first_sequence),
            seq(s.last_sequence),
            s.events,
            units::bytes(s.bytes)
        );
    }
    Ok(())
}

/// Prints what is in `dir` using the read-only open.
pub fn inspect(dir: &Path, json: bool) -> Result<(), Box<dyn Error>> {
    let store = Store::open_read_only(dir)?;
    let stats = store.stats();
    print(&report(&store, &stats, store.recovery_report()), json)
}

/// Opens `dir` with salvage and reports what moved.
pub fn salvage(dir: &Path, json: bool) -> Result<(), Box<dyn Error>> {
    let store = Store::open_with(StoreConfig::new(dir), OpenOptions::salvage())?;
    let stats = store.stats();
    let r = report(&store, &stats, store.recovery_report());
    store.close()?;
    if !json && r.salvaged.is_empty() {
        println!("nothing to salvage: every segment reads clean");
    }
    print(&r, json)
}
