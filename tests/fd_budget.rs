//! At most `fd_budget` segment files are open or mapped at once.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use batpak::prelude::*;
use common::*;

/// Segment files of `dir` this process has open (in /proc/self/fd) or mapped (in
/// /proc/self/maps).
fn segment_files_in_use(dir: &Path) -> Res<BTreeSet<String>> {
    let dir = std::fs::canonicalize(dir)?.display().to_string();
    let mut files = BTreeSet::new();
    for e in std::fs::read_dir("/proc/self/fd")? {
        if let Ok(target) = std::fs::read_link(e?.path()) {
            let t = target.display().to_string();
            if t.starts_with(&dir) && t.contains("/seg-") {
                files.insert(t);
            }
        }
    }
    for line in std::fs::read_to_string("/proc/self/maps")?.lines() {
        if let Some(pos) = line.find(&dir) {
            if line.contains("/seg-") {
                files.insert(line[pos..].to_string());
            }
        }
    }
    Ok(files)
}

#[test]
fn open_and_mapped_segment_files_never_exceed_the_fd_budget_while_reading_three_times_as_many(
) -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut cfg = StoreConfig::new(dir.path());
    cfg.segment_max_bytes = 4096;
    cfg.fd_budget = 4;
    let store = Store::open(cfg.clone())?;
    let mut rng = Rng::new(3);
    let mut ids = Vec::new();
    while store.stats().segments.len() < 3 * cfg.fd_budget as usize + 1 {
        let (coord, kind, payload) = reference_event(&mut rng);
        ids.push(store.append(&coord, kind, &payload)?.id);
    }
    let sealed = store.stats().segments.iter().filter(|s| s.sealed).count();
    assert!(sealed >= 12, "{sealed} sealed segments");
    let mut peak = 0;
    for round in 0..3 {
        for _ in 0..ids.len() {
            let id = ids[rng.below(ids.len() as u64) as usize];
            assert!(store.get(id)?.is_some());
            let in_use = segment_files_in_use(dir.path())?;
            peak = peak.max(in_use.len());
            assert!(
                in_use.len() <= cfg.fd_budget as usize,
                "round {round}: {} in use: {in_use:?}",
                in_use.len()
            );
        }
        assert_eq!(store.query(&Region::all())?.len(), ids.len());
        assert!(segment_files_in_use(dir.path())?.len() <= cfg.fd_budget as usize);
    }
    let stats = store.stats();
    assert!(
        stats.map_evictions > 0 && stats.map_misses > 0 && stats.map_hits > 0,
        "{stats:?}"
    );
    assert_eq!(
        peak, cfg.fd_budget as usize,
        "the budget is used, not just respected"
    );
    Ok(())
}
