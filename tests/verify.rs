//! Offline verify: a clean store is clean; a flipped byte, a truncated segment, a missing
//! segment and a stale checkpoint are each found and named; exit codes 0 / 1 / 2.

mod common;

use std::path::Path;

use batpak::prelude::*;
use batpak::store::verify;
use common::*;

fn store_with_segments(dir: &Path) -> TestResult {
    let mut cfg = StoreConfig::new(dir);
    cfg.segment_max_bytes = 4096;
    let store = Store::open(cfg)?;
    let mut last: Option<EventId> = None;
    for i in 0..1500u32 {
        let opts = AppendOptions {
            causation: last.filter(|_| i % 2 == 0),
            ..AppendOptions::default()
        };
        last = Some(
            store
                .append_with(
                    &Coordinate::new(format!("e{}", i % 5), "s"),
                    EventKind::new(1, 1),
                    &i,
                    opts,
                )?
                .id,
        );
    }
    assert!(store.stats().segments.len() >= 4);
    store.close()?;
    Ok(())
}

fn seg(dir: &Path, no: u32) -> std::path::PathBuf {
    dir.join(format!("seg-{no:010}.bpk"))
}

fn problems(dir: &Path) -> Res<Vec<String>> {
    Ok(verify(dir)?
        .problems
        .iter()
        .map(|p| p.to_string())
        .collect())
}

#[test]
fn a_clean_store_verifies_clean_even_while_another_open_holds_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    store_with_segments(dir.path())?;
    let _holder = Store::open(StoreConfig::new(dir.path()))?;
    let report = verify(dir.path())?;
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(report.events, 1500);
    Ok(())
}

/// Found by the tamper probes: a segment reopened under its checkpoint and sealed later
/// recorded a wrong chain value (the open's scan skips the events the checkpoint covers).
#[test]
fn a_store_reopened_from_its_checkpoint_and_appended_to_until_it_rolls_verifies_clean() -> TestResult
{
    let dir = tempfile::tempdir()?;
    store_with_segments(dir.path())?;
    for round in 0..3u32 {
        let mut cfg = StoreConfig::new(dir.path());
        cfg.segment_max_bytes = 4096;
        let store = Store::open(cfg)?;
        let before = store.stats().segments.len();
        let mut i = 0u32;
        while store.stats().segments.len() < before + 2 {
            store.append(
                &Coordinate::new(format!("e{}", i % 5), "s"),
                EventKind::new(1, 1),
                &(round * 100_000 + i),
            )?;
            i += 1;
        }
        store.close()?;
        drop(store);
        let report = verify(dir.path())?;
        assert!(report.is_clean(), "round {round}: {:?}", report.problems);
        assert_eq!(report.linked_events, report.events, "round {round}");
    }
    Ok(())
}

#[test]
fn a_flipped_byte_is_found_with_its_file_and_offset() -> TestResult {
    let dir = tempfile::tempdir()?;
    store_with_segments(dir.path())?;
    let path = seg(dir.path(), 2);
    let mut bytes = std::fs::read(&path)?;
    bytes[500] ^= 0x08;
    std::fs::write(&path, &bytes)?;
    let found = problems(dir.path())?;
    assert!(
        found
            .iter()
            .any(|p| p.contains("seg-0000000002.bpk at byte offset")),
        "{found:?}"
    );
    Ok(())
}

#[test]
fn a_truncated_segment_is_found() -> TestResult {
    let dir = tempfile::tempdir()?;
    store_with_segments(dir.path())?;
    let path = seg(dir.path(), 1);
    let len = std::fs::metadata(&path)?.len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)?
        .set_len(len - 30)?;
    let found = problems(dir.path())?;
    assert!(
        found
            .iter()
            .any(|p| p.contains("seg-0000000001.bpk at byte offset") && p.contains("truncated")),
        "{found:?}"
    );
    Ok(())
}

#[test]
fn a_missing_segment_is_found() -> TestResult {
    let dir = tempfile::tempdir()?;
    store_with_segments(dir.path())?;
    std::fs::remove_file(seg(dir.path(), 2))?;
    let found = problems(dir.path())?;
    assert!(
        found
            .iter()
            .any(|p| p.contains("seg-0000000002.bpk") && p.contains("missing")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|p| p.contains("sequence jumps")),
        "the gap in sequences is named too: {found:?}"
    );
    Ok(())
}

#[test]
fn a_segment_shorter_than_its_checkpoint_covers_is_found_naming_the_segment() -> TestResult {
    let dir = tempfile::tempdir()?;
    store_with_segments(dir.path())?;
    // The newest segment loses most of what the checkpoint says it covers.
    let last = std::fs::read_dir(dir.path())?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("seg-"))
        .count() as u32;
    let path = seg(dir.path(), last);
    let len = std::fs::metadata(&path)?.len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)?
        .set_len(len / 2)?;
    let report = verify(dir.path())?;
    let found: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
    assert!(
        found
            .iter()
            .any(|p| p.contains(&format!("seg-{last:010}.bpk")) && p.contains("the checkpoint")),
        "{found:?}"
    );
    assert!(
        report.notes.iter().any(|n| n.contains("torn tail")),
        "{:?}",
        report.notes
    );
    Ok(())
}

struct Count;

impl batpak::projection::Projection for Count {
    type State = (u64, String);
    const NAME: &'static str = "count";
    const VERSION: u32 = 1;
    fn apply(state: &mut (u64, String), _: &Event) {
        state.0 += 1;
        state.1 = "a marker the test finds in the cache file".into();
    }
}

#[test]
fn a_damaged_cached_projection_is_found_in_the_cache_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    store_with_segments(dir.path())?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    store.project::<Count>("e1", batpak::projection::Freshness::Latest)?;
    store.close()?;
    drop(store);
    let clean = verify(dir.path())?;
    assert!(clean.is_clean(), "{:?}", clean.problems);
    assert_eq!(clean.cache_values, 1);
    let data = dir.path().join("cache").join("data.mdb");
    let mut bytes = std::fs::read(&data)?;
    let marker = b"a marker the test finds";
    let at = bytes
        .windows(marker.len())
        .position(|w| w == marker)
        .ok_or("the cached state is not in data.mdb")?;
    bytes[at + 3] ^= 0x20;
    std::fs::write(&data, &bytes)?;
    let found = problems(dir.path())?;
    assert!(
        found.iter().any(|p| p.contains("data.mdb")
            && p.contains("count/e1")
            && p.contains("checksum mismatch")),
        "{found:?}"
    );
    Ok(())
}
