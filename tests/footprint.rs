//! The reference workload at 1 M events: bytes per event in segment files (≤ 120) and in
//! the in-memory index (≤ 64), counted by a counting global allocator.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use batpak::prelude::*;
use common::*;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call forwards to the system allocator unchanged; the counter only records
// the sizes of successful allocations and deallocations.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as `GlobalAlloc::alloc`, forwarded.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as `GlobalAlloc::dealloc`, forwarded.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as `GlobalAlloc::realloc`, forwarded.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const EVENTS: u64 = 1_000_000;

/// Appends the reference workload: half the events are caused by the previous event of
/// the same entity.
fn write_reference(store: &Store) -> TestResult {
    let mut rng = Rng::new(42);
    let mut last: Vec<Option<EventId>> = vec![None; 10_000];
    let mut tickets = Vec::with_capacity(1024);
    for i in 0..EVENTS {
        let n = rng.below(10_000) as usize;
        let coord = Coordinate::new(format!("order:{n}"), format!("tenant-{}", rng.below(8)));
        let kind = EventKind::new(1, (i % 4 + 1) as u8);
        let payload = Reference {
            data: rng.bytes(64),
        };
        let mut opts = AppendOptions::default();
        if rng.below(2) == 0 {
            if let Some(cause) = last[n] {
                opts = opts.caused_by(cause);
            }
        }
        // Causes must be written before they are named, so wait for this one now when the
        // next event of the entity may name it; otherwise pipeline.
        let r = store.submit(&coord, kind, &payload, opts)?;
        tickets.push((n, r));
        if tickets.len() == 1024 || i + 1 == EVENTS {
            for (n, t) in tickets.drain(..) {
                last[n] = Some(t.wait()?.id);
            }
        }
    }
    Ok(())
}

fn segment_bytes(dir: &std::path::Path) -> std::io::Result<u64> {
    let mut total = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_name().to_string_lossy().starts_with("seg-") {
            total += e.metadata()?.len();
        }
    }
    Ok(total)
}

#[test]
fn the_reference_workload_costs_at_most_120_bytes_on_disk_and_64_bytes_of_index_per_event(
) -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    write_reference(&store)?;
    store.close()?;
    drop(store);
    let disk = segment_bytes(dir.path())? as f64 / EVENTS as f64;
    let ckpt = std::fs::metadata(dir.path().join("index.ckpt"))?.len() as f64 / EVENTS as f64;

    let before = LIVE.load(Ordering::SeqCst);
    let store = Store::open(StoreConfig::new(dir.path()))?;
    let after_open = LIVE.load(Ordering::SeqCst);
    assert_eq!(store.stats().events, EVENTS);
    let index = (after_open - before) as f64 / EVENTS as f64;
    let reported = store.stats().index_bytes as f64 / EVENTS as f64;

    let rebuilt_dir = tempfile::tempdir()?;
    for e in std::fs::read_dir(dir.path())? {
        let e = e?;
        if e.file_name().to_string_lossy().starts_with("seg-") || e.file_name() == "store.id" {
            std::fs::copy(e.path(), rebuilt_dir.path().join(e.file_name()))?;
        }
    }
    let before = LIVE.load(Ordering::SeqCst);
    let rebuilt = Store::open(StoreConfig::new(rebuilt_dir.path()))?;
    let rebuilt_index = (LIVE.load(Ordering::SeqCst) - before) as f64 / EVENTS as f64;
    assert_eq!(rebuilt.stats().events, EVENTS);

    eprintln!(
        "reference workload, 1M events: {disk:.1} B/event in segments, {ckpt:.1} B/event checkpoint, \
         index {index:.1} B/event after checkpoint load ({rebuilt_index:.1} after a rebuild; {reported:.1} by capacity)"
    );
    assert!(disk <= 120.0, "{disk:.1} bytes per event on disk");
    assert!(index <= 64.0, "{index:.1} bytes per event in the index");
    assert!(
        rebuilt_index <= 64.0,
        "{rebuilt_index:.1} bytes per event in a rebuilt index"
    );
    Ok(())
}
