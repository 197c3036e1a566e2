//! Oversized length fields: a frame whose length claims an exabyte (at the torn tail and
//! inside synced data) and a checkpoint with a valid checksum whose counts claim four
//! billion items. Each is a clear outcome — cut as torn, refused naming file and offset,
//! detected and rebuilt — and no allocation is ever sized by the untrusted length: this
//! binary's allocator records the largest request, which must stay small.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use batpak::codec::frame::mask;
use batpak::codec::varint;
use batpak::prelude::*;
use batpak::store::CheckpointStatus;
use common::*;

/// The system allocator, recording the largest single request.
struct Largest;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed unchanged to the system allocator; only a counter is kept.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: as for `alloc`; `ptr` came from this allocator with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Largest = Largest;

/// The tests share the allocator's record: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// No allocation during `f` was larger than 64 MiB.
fn bounded<T>(what: &str, f: impl FnOnce() -> T) -> T {
    LARGEST.store(0, Ordering::Relaxed);
    let out = f();
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(largest > 0, "{what}: the recording allocator saw nothing");
    assert!(
        largest < 64 << 20,
        "{what}: an allocation of {largest} bytes"
    );
    out
}

/// A closed store of 50 events in one segment; its path.
fn store_of_fifty(dir: &Path) -> Res<std::path::PathBuf> {
    let store = Store::open(StoreConfig::new(dir))?;
    let coord = Coordinate::new("e", "s");
    for i in 0..50u32 {
        store.append(&coord, EventKind::new(1, 1), &i)?;
    }
    store.close()?;
    Ok(dir.join("seg-0000000001.bpk"))
}

/// A frame header claiming a body of 2^60 bytes.
fn exabyte_frame() -> Vec<u8> {
    let mut f = vec![0xAB; 4];
    varint::put(&mut f, 1 << 60);
    f.extend_from_slice(&[1; 16]);
    f
}

#[test]
fn a_frame_claiming_an_exabyte_after_the_last_sync_is_cut_as_torn_and_nothing_is_lost() -> TestResult
{
    let _one = SERIAL.lock();
    let dir = tempfile::tempdir()?;
    let seg = store_of_fifty(dir.path())?;
    let mut bytes = std::fs::read(&seg)?;
    let synced = bytes.len();
    bytes.extend_from_slice(&exabyte_frame());
    std::fs::write(&seg, &bytes)?;
    let store = bounded("open", || Store::open(StoreConfig::new(dir.path())))?;
    let cut = &store.recovery_report().truncated;
    assert_eq!(cut.len(), 1, "{cut:?}");
    assert_eq!(std::fs::metadata(&seg)?.len(), synced as u64);
    assert_eq!(store.query(&Region::all())?.len(), 50);
    Ok(())
}

#[test]
fn a_frame_claiming_an_exabyte_inside_synced_data_is_refused_naming_the_file_and_offset(
) -> TestResult {
    let _one = SERIAL.lock();
    let dir = tempfile::tempdir()?;
    let seg = store_of_fifty(dir.path())?;
    let mut bytes = std::fs::read(&seg)?;
    let at = bytes.len() / 2;
    // Overwrite from some byte in the middle: whichever frame it lands in is damaged.
    let frame = exabyte_frame();
    bytes[at..at + frame.len()].copy_from_slice(&frame);
    std::fs::write(&seg, &bytes)?;
    let err = bounded("open", || Store::open(StoreConfig::new(dir.path())))
        .err()
        .ok_or("a segment with a damaged frame in synced data opened")?;
    let text = err.to_string();
    assert!(
        text.contains("seg-0000000001.bpk") && text.contains("offset"),
        "{text}"
    );
    let report = bounded("verify", || batpak::store::verify(dir.path()))?;
    assert!(!report.is_clean());
    Ok(())
}

#[test]
fn a_checkpoint_with_a_valid_checksum_claiming_four_billion_items_is_refused_and_the_index_rebuilt(
) -> TestResult {
    let _one = SERIAL.lock();
    let dir = tempfile::tempdir()?;
    store_of_fifty(dir.path())?;
    let path = dir.path().join("index.ckpt");
    let mut bytes = std::fs::read(&path)?;
    // The body follows the 64-byte header; its first field counts segments.
    bytes[64..68].copy_from_slice(&u32::MAX.to_le_bytes());
    let body_end = bytes.len() - 4;
    let crc = mask(crc32c::crc32c(&bytes[64..body_end]));
    bytes[body_end..].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &bytes)?;
    let store = bounded("open", || Store::open(StoreConfig::new(dir.path())))?;
    let status = &store.recovery_report().checkpoint;
    assert!(
        matches!(status, CheckpointStatus::Damaged(_)),
        "the checkpoint was not refused: {status:?}"
    );
    assert_eq!(store.query(&Region::all())?.len(), 50);
    Ok(())
}
