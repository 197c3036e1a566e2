//! Wear accounting: what the engine counts per class of file agrees with the files it
//! leaves, the projection cache's commits count as cache writes, and an idle store asks
//! nothing of the medium.

mod common;

use std::path::Path;
use std::time::Duration;

use batpak::fs::account::FileClass;
use batpak::prelude::*;
use batpak::projection::Freshness;
use common::*;

fn config(dir: &Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    c.sync_every_n_events = 100;
    c
}

fn fill(store: &Store, n: i64) -> TestResult {
    for i in 0..n {
        let coord = Coordinate::new(format!("e{}", i % 20), "wear");
        store.append(&coord, EventKind::new(1, 1), &i)?;
    }
    Ok(())
}

/// Bytes of the files in `dir` whose class is `class`.
fn bytes_on_disk(dir: &Path, class: FileClass) -> Res<u64> {
    let mut sum = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_file() && FileClass::of(dir, &e.path()) == class {
            sum += e.metadata()?.len();
        }
    }
    Ok(sum)
}

#[test]
fn the_bytes_counted_per_class_are_the_bytes_the_files_hold() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(config(dir.path()))?;
    fill(&store, 3_000)?;
    store.sync()?;
    let before_close = store.stats().wear.files;
    let segments = before_close.class(FileClass::Segments);
    assert_eq!(
        segments.bytes,
        bytes_on_disk(dir.path(), FileClass::Segments)?,
        "every byte written to a segment is in a segment file: {segments:?}"
    );
    assert!(
        segments.syncs >= 3_000 / 100,
        "one sync per 100 events at least: {segments:?}"
    );
    assert!(
        segments.storage_bytes >= segments.bytes,
        "whole pages reach the medium: {segments:?}"
    );
    assert_eq!(before_close.class(FileClass::Checkpoint).bytes, 0);
    store.close()?;
    let after_close = store.stats().wear.files.class(FileClass::Checkpoint);
    assert_eq!(
        after_close.bytes,
        bytes_on_disk(dir.path(), FileClass::Checkpoint)?,
        "the close wrote the checkpoint: {after_close:?}"
    );
    assert!(after_close.syncs >= 1, "{after_close:?}");
    Ok(())
}

#[test]
fn the_projection_caches_commits_count_as_cache_writes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(config(dir.path()))?;
    fill(&store, 200)?;
    let before = store.stats().wear.files.class(FileClass::Cache);
    for e in 0..20 {
        store.project::<Sum>(&format!("e{e}"), Freshness::Latest)?;
    }
    store.close()?;
    let cache = store
        .stats()
        .wear
        .files
        .class(FileClass::Cache)
        .since(&before);
    assert!(cache.writes >= 1 && cache.syncs >= 1, "{cache:?}");
    if batpak::process::IoCounters::this_thread().is_some() {
        assert!(cache.bytes >= 4096, "LMDB writes whole pages: {cache:?}");
    }
    Ok(())
}

#[test]
fn projecting_under_load_commits_the_cache_at_most_about_once_a_second() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(config(dir.path()))?;
    fill(&store, 1_000)?;
    let a = store.stats();
    let mut projections = 0;
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_millis(3_200) {
        fill(&store, 1)?;
        store.project::<Sum>(&format!("e{}", projections % 20), Freshness::Latest)?;
        projections += 1;
    }
    let b = store.stats();
    let cache = b.rates_since(&a).wear.files.class(FileClass::Cache);
    assert!(
        (1..=4).contains(&cache.writes) && cache.syncs == cache.writes,
        "{projections} projections in 3.2 s made {cache:?}"
    );
    Ok(())
}

/// What an idle store (appends done, synced, projections cached) wrote during 2.5 s.
fn idle_writes(dir: &Path) -> Res<batpak::fs::account::WriteTotals> {
    let store = Store::open(config(dir))?;
    fill(&store, 500)?;
    for e in 0..20 {
        store.project::<Sum>(&format!("e{e}"), Freshness::Latest)?;
    }
    store.sync()?;
    // Long enough for the writer's idle marker and the cache's write-behind flush.
    std::thread::sleep(Duration::from_millis(2_500));
    let a = store.stats();
    std::thread::sleep(Duration::from_millis(2_500));
    let b = store.stats();
    Ok(b.rates_since(&a).wear.files)
}

#[test]
fn an_idle_store_leaves_its_cache_checkpoint_and_other_files_alone() -> TestResult {
    let dir = tempfile::tempdir()?;
    let idle = idle_writes(dir.path())?;
    for class in [FileClass::Cache, FileClass::Checkpoint, FileClass::Other] {
        let n = idle.class(class);
        assert_eq!(
            (n.bytes, n.writes, n.syncs),
            (0, 0, 0),
            "{}: an idle store wrote {n:?}",
            class.name()
        );
    }
    Ok(())
}

/// An idle writer used to write a sync marker, sync it, and write a marker for that sync
/// again, thousands of times a second (fixed with the Trust issue; see also tests/idle.rs).
#[test]
fn an_idle_store_leaves_its_segments_alone() -> TestResult {
    let dir = tempfile::tempdir()?;
    let n = idle_writes(dir.path())?.class(FileClass::Segments);
    assert_eq!(
        (n.bytes, n.writes, n.syncs),
        (0, 0, 0),
        "an idle store wrote {n:?}"
    );
    Ok(())
}

#[test]
fn the_processs_kernel_counters_cover_what_the_engine_wrote_where_linux_has_them() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(config(dir.path()))?;
    fill(&store, 2_000)?;
    store.sync()?;
    let w = store.stats().wear;
    let Some(io) = w.process_io else {
        return Ok(());
    };
    let engine = w.files.total();
    assert!(
        io.wchar >= engine.bytes,
        "the process passed at least the engine's bytes to write(): {io:?} {engine:?}"
    );
    assert!(w.log_bytes() > 0);
    assert!(w.write_amplification().is_some());
    Ok(())
}
