//! Store lifecycle at 1 M reference events: snapshot time (hard links for sealed segments,
//! copying otherwise) and compaction throughput (tombstones of a tenth of the entities,
//! which touches every sealed segment; and a disk cap of half the store).
//!
//! `cargo bench --bench lifecycle` (stores under `target/bench-data/lifecycle`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use batpak::fs::{FileSystem, FsFile, LockGuard, OpenMode, ReadView, StdFs};
use batpak::prelude::*;
use batpak::store::RetentionPolicy;
use serde::Serialize;

#[derive(Serialize)]
struct Reference {
    #[serde(with = "serde_bytes")]
    data: Vec<u8>,
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const EVENTS: u64 = 1_000_000;

fn root() -> PathBuf {
    std::env::var_os("BATPAK_BENCH_DIR")
        .map_or_else(|| PathBuf::from("target/bench-data"), PathBuf::from)
        .join("lifecycle")
}

/// A store of `EVENTS` reference events in `root()/source` (made once, kept for reruns).
fn source() -> Res<PathBuf> {
    let dir = root().join("source");
    if dir.join(".complete").exists() {
        return Ok(dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = StoreConfig::new(&dir);
    cfg.segment_max_bytes = 16 * 1024 * 1024;
    let store = Store::open(cfg)?;
    let mut batch = Vec::with_capacity(1000);
    for i in 0..EVENTS {
        let data = (0..64u8).map(|b| (i as u8).wrapping_mul(31) ^ b).collect();
        let coord = Coordinate::new(
            format!("order:{}", (i * 7919) % 10_000),
            format!("tenant-{}", i % 8),
        );
        batch.push(BatchItem::new(
            &coord,
            EventKind::new(1, (i % 4 + 1) as u8),
            &Reference { data },
        )?);
        if batch.len() == 1000 {
            store.append_batch(std::mem::take(&mut batch), false)?;
        }
    }
    store.close()?;
    std::fs::write(dir.join(".complete"), b"")?;
    Ok(dir)
}

/// The real file system without hard links (a destination on another file system).
#[derive(Debug)]
struct NoLinks(StdFs);

impl FileSystem for NoLinks {
    fn create_dir_all(&self, d: &Path) -> std::io::Result<()> {
        self.0.create_dir_all(d)
    }
    fn list_dir(&self, d: &Path) -> std::io::Result<Vec<String>> {
        self.0.list_dir(d)
    }
    fn exists(&self, p: &Path) -> bool {
        self.0.exists(p)
    }
    fn open(&self, p: &Path, m: OpenMode) -> std::io::Result<Arc<dyn FsFile>> {
        self.0.open(p, m)
    }
    fn rename(&self, a: &Path, b: &Path) -> std::io::Result<()> {
        self.0.rename(a, b)
    }
    fn remove_file(&self, p: &Path) -> std::io::Result<()> {
        self.0.remove_file(p)
    }
    fn sync_dir(&self, d: &Path) -> std::io::Result<()> {
        self.0.sync_dir(d)
    }
    fn map(&self, p: &Path) -> std::io::Result<Arc<dyn ReadView>> {
        self.0.map(p)
    }
    fn try_lock(&self, p: &Path) -> std::io::Result<Option<Box<dyn LockGuard>>> {
        self.0.try_lock(p)
    }
}

fn snapshot(src: &Path, links: bool) -> Res<()> {
    let options = if links {
        OpenOptions::default()
    } else {
        OpenOptions::default().with_fs(Arc::new(NoLinks(StdFs)))
    };
    let store = Store::open_with(StoreConfig::new(src), options)?;
    for round in 0..3 {
        let dest = root().join(format!("snapshot-{round}"));
        let _ = std::fs::remove_dir_all(&dest);
        let t = Instant::now();
        let r = store.snapshot(&dest)?;
        println!(
            "snapshot of {EVENTS} events: {:.1} ms ({} segments, {} hard-linked, {:.1} MiB of segments, {:.1} MiB copied)",
            t.elapsed().as_secs_f64() * 1000.0,
            r.segments,
            r.linked,
            r.bytes as f64 / (1 << 20) as f64,
            r.copied_bytes as f64 / (1 << 20) as f64
        );
        std::fs::remove_dir_all(&dest)?;
    }
    Ok(())
}

/// A fresh copy of the source (a snapshot: hard links, the source is never modified).
fn work_copy(src: &Path, name: &str) -> Res<PathBuf> {
    let dest = root().join(name);
    let _ = std::fs::remove_dir_all(&dest);
    Store::open(StoreConfig::new(src))?.snapshot(&dest)?;
    Ok(dest)
}

fn compaction(src: &Path, what: &str, policy: RetentionPolicy, tombstones: bool) -> Res<()> {
    for round in 0..3 {
        let dir = work_copy(src, &format!("compact-{round}"))?;
        let mut cfg = StoreConfig::new(&dir);
        cfg.segment_max_bytes = 16 * 1024 * 1024;
        let store = Store::open(cfg)?;
        if tombstones {
            for e in (0..10_000).step_by(10) {
                store.tombstone_entity(&Coordinate::new(format!("order:{e}"), "tenant-0"))?;
            }
        }
        let t = Instant::now();
        let r = store.compact(&policy)?;
        let secs = t.elapsed().as_secs_f64();
        println!(
            "compaction ({what}) of {EVENTS} events: {:.0} ms, {} segments read and rewritten, \
             {:.1} MiB in -> {:.1} MiB out = {:.0} MiB/s of segments; {} events removed; \
             appends waited {:.1} ms (commit + index rebuild)",
            secs * 1000.0,
            r.segments_touched.len(),
            r.bytes_before as f64 / (1 << 20) as f64,
            r.bytes_after as f64 / (1 << 20) as f64,
            r.bytes_before as f64 / (1 << 20) as f64 / secs,
            r.events_removed,
            r.writer_pause.as_secs_f64() * 1000.0
        );
        drop(store);
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}

fn main() -> Res<()> {
    let src = source()?;
    snapshot(&src, true)?;
    snapshot(&src, false)?;
    let tombstones = RetentionPolicy {
        tombstones: true,
        ..RetentionPolicy::default()
    };
    compaction(&src, "tombstones of 1,000 entities", tombstones, true)?;
    let cap = RetentionPolicy {
        max_total_bytes: Some(45 * 1024 * 1024),
        ..RetentionPolicy::default()
    };
    compaction(&src, "cap at 45 MiB", cap, false)?;
    Ok(())
}
