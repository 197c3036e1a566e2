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
    wear: WearRow,
    workload_data: bool,
    segments: Vec<SegmentRow>,
}

#[derive(Serialize)]
struct CacheRow {
    present: bool,
    /// Apparent size of the cache's files.
    bytes: u64,
    /// Bytes the medium holds for them (LMDB's data file is sparse past its last page).
    allocated_bytes: u64,
}

/// Bytes on the medium per class of file, and what this inspection wrote (nothing: it
/// opens read-only). Wear while a store runs is in `bench --json` and the workbench.
#[derive(Serialize)]
struct WearRow {
    on_disk: std::collections::BTreeMap<&'static str, u64>,
    inspection_wrote_bytes: u64,
    inspection_syncs: u64,
}

/// (apparent, allocated) bytes of the files directly in `dir`.
fn dir_bytes(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .fold((0, 0), |(a, b), m| (a + m.len(), b + m.blocks() * 512))
        })
        .unwrap_or((0, 0))
}

fn cache_row(dir: &Path) -> CacheRow {
    let cache = dir.join(batpak::projection::CACHE_DIR);
    let (bytes, allocated_bytes) = dir_bytes(&cache);
    CacheRow {
        present: cache.is_dir(),
        bytes,
        allocated_bytes,
    }
}

fn wear_row(dir: &Path, stats: &Stats, cache: &CacheRow) -> WearRow {
    use batpak::fs::account::FileClass;
    let mut on_disk = std::collections::BTreeMap::new();
    let (mut segments, mut checkpoint, mut other) = (0, 0, 0);
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(m) = e.metadata() else { continue };
        if !m.is_file() {
            continue;
        }
        match FileClass::of(dir, &e.path()) {
            FileClass::Segments => segments += m.len(),
            FileClass::Checkpoint => checkpoint += m.len(),
            _ => other += m.len(),
        }
    }
    on_disk.insert(FileClass::Segments.name(), segments);
    on_disk.insert(FileClass::Checkpoint.name(), checkpoint);
    on_disk.insert(FileClass::Cache.name(), cache.allocated_bytes);
    on_disk.insert(FileClass::Other.name(), other);
    let wrote = stats.wear.files.total();
    WearRow {
        on_disk,
        inspection_wrote_bytes: wrote.bytes,
        inspection_syncs: wrote.syncs,
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
        wear: wear_row(store.dir(), stats, &cache_row(store.dir())),
        cache: cache_row(store.dir()),
        workload_data: batpak_tui::workload::is_workload_dir(store.dir()),
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
        format!(
            "{} on disk ({} apparent)",
            units::bytes(r.cache.allocated_bytes),
            units::bytes(r.cache.bytes)
        )
    } else {
        "none".into()
    };
    println!("projection cache: {cache}");
    let on_disk: Vec<String> = batpak::fs::account::FileClass::ALL
        .iter()
        .filter_map(|c| r.wear.on_disk.get(c.name()).map(|b| (c.name(), b)))
        .map(|(class, b)| format!("{class} {}", units::bytes(*b)))
        .collect();
    println!(
        "on disk by class: {}; this inspection wrote {} in {} syncs",
        on_disk.join(", "),
        units::bytes(r.wear.inspection_wrote_bytes),
        r.wear.inspection_syncs
    );
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
