//! Projections and their LMDB cache: equal to a fold from scratch after reopen, after the
//! cache is deleted or damaged, with the smallest map; freshness; versions; close and
//! reopen in one process.

mod common;

use batpak::prelude::*;
use batpak::projection::{Freshness, Projection};
use common::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Totals {
    events: u64,
    sum: i64,
    last: Option<u64>,
}

struct Ledger;

impl Projection for Ledger {
    type State = Totals;
    const NAME: &'static str = "ledger";
    const VERSION: u32 = 1;
    fn apply(state: &mut Totals, event: &Event) {
        state.events += 1;
        state.sum += event.payload::<i64>().unwrap_or(0);
        state.last = Some(event.sequence);
    }
}

/// The same fold under a new version: cached states of version 1 must not be used.
struct LedgerV2;

impl Projection for LedgerV2 {
    type State = Totals;
    const NAME: &'static str = "ledger";
    const VERSION: u32 = 2;
    fn apply(state: &mut Totals, event: &Event) {
        Ledger::apply(state, event);
        state.sum *= 1;
    }
}

fn from_scratch(store: &Store, entity: &str) -> Res<Totals> {
    let mut t = Totals::default();
    for e in store.stream(entity)? {
        Ledger::apply(&mut t, &e);
    }
    Ok(t)
}

fn fill(store: &Store, n: i64) -> TestResult {
    for i in 0..n {
        store.append(
            &Coordinate::new(format!("acct:{}", i % 10), "bank"),
            EventKind::new(2, 1),
            &i,
        )?;
    }
    Ok(())
}

#[test]
fn a_warm_projection_applies_only_newer_events_and_equals_a_fold_from_scratch() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    fill(&store, 200)?;
    let cold = store.project::<Ledger>("acct:3", Freshness::Latest)?;
    assert_eq!(cold, from_scratch(&store, "acct:3")?);
    let s = store.cache_stats();
    assert_eq!((s.hits, s.misses), (0, 1));
    assert_eq!(store.project::<Ledger>("acct:3", Freshness::Latest)?, cold);
    assert_eq!(
        store.cache_stats().hits,
        1,
        "nothing new: answered from the cache"
    );
    fill(&store, 30)?;
    let warm = store.project::<Ledger>("acct:3", Freshness::Latest)?;
    assert_eq!(warm, from_scratch(&store, "acct:3")?);
    assert_eq!(store.cache_stats().misses, 2);
    assert!(store.cache_stats().entries >= 1);
    Ok(())
}

#[test]
fn freshness_bounds_how_far_behind_a_cached_state_may_be() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    let acct = Coordinate::new("acct:1", "bank");
    for i in 0..5i64 {
        store.append(&acct, EventKind::new(2, 1), &i)?;
    }
    let cached = store.project::<Ledger>("acct:1", Freshness::Latest)?;
    store.append(&acct, EventKind::new(2, 1), &100i64)?;
    store.append(&acct, EventKind::new(2, 1), &200i64)?;
    assert_eq!(
        store.project::<Ledger>("acct:1", Freshness::AtMostBehind(2))?,
        cached,
        "two behind is allowed"
    );
    assert_eq!(
        store.project::<Ledger>("acct:1", Freshness::AnyCached)?,
        cached
    );
    let fresh = store.project::<Ledger>("acct:1", Freshness::AtMostBehind(1))?;
    assert_eq!(
        fresh.sum, 310,
        "one behind is not: the newest events are applied"
    );
    assert_eq!(store.project::<Ledger>("acct:1", Freshness::Latest)?, fresh);
    Ok(())
}

#[test]
fn projections_equal_a_fold_after_reopen_after_deleting_the_cache_and_after_damaging_one_value(
) -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let store = Store::open(StoreConfig::new(dir.path()))?;
        fill(&store, 300)?;
        for a in 0..10 {
            store.project::<Ledger>(&format!("acct:{a}"), Freshness::Latest)?;
        }
        store.close()?;
    }
    {
        let store = Store::open(StoreConfig::new(dir.path()))?;
        assert_eq!(
            store.project::<Ledger>("acct:4", Freshness::Latest)?,
            from_scratch(&store, "acct:4")?
        );
        assert_eq!(store.cache_stats().hits, 1, "the cache survived the reopen");
        store.close()?;
    }
    std::fs::remove_dir_all(dir.path().join("cache"))?;
    {
        let store = Store::open(StoreConfig::new(dir.path()))?;
        assert_eq!(
            store.project::<Ledger>("acct:4", Freshness::Latest)?,
            from_scratch(&store, "acct:4")?
        );
        store.close()?;
    }
    // Damage the stored state of acct:4 in place: find its key and flip a byte of its value.
    let data = dir.path().join("cache").join("data.mdb");
    let mut bytes = std::fs::read(&data)?;
    let key = b"ledger\0acct:4";
    let at = bytes
        .windows(key.len())
        .position(|w| w == key)
        .ok_or("cached value not found in the file")?;
    let value = at + key.len();
    bytes[value + 20] ^= 0xff;
    std::fs::write(&data, &bytes)?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    assert_eq!(
        store.project::<Ledger>("acct:4", Freshness::AnyCached)?,
        from_scratch(&store, "acct:4")?
    );
    assert_eq!(
        store.cache_stats().rebuilt_values,
        1,
        "the damaged value was detected and recomputed"
    );
    Ok(())
}

#[test]
fn a_new_projection_version_ignores_cached_states_of_the_old_one() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    fill(&store, 50)?;
    store.project::<Ledger>("acct:2", Freshness::Latest)?;
    let v2 = store.project::<LedgerV2>("acct:2", Freshness::AnyCached)?;
    assert_eq!(v2, from_scratch(&store, "acct:2")?);
    assert_eq!(store.cache_stats().hits, 0);
    assert_eq!(store.cache_stats().misses, 2);
    Ok(())
}

#[test]
fn the_smallest_map_falls_back_to_computing_and_counts_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut cfg = StoreConfig::new(dir.path());
    cfg.cache_map_size_bytes = batpak::config::MIN_CACHE_MAP_SIZE_BYTES;
    let store = Store::open(cfg)?;
    fill(&store, 100)?;
    #[derive(Default, Serialize, Deserialize, PartialEq, Debug)]
    struct Big {
        blob: Vec<u64>,
    }
    struct Hog;
    impl Projection for Hog {
        type State = Big;
        const NAME: &'static str = "hog";
        const VERSION: u32 = 1;
        fn apply(state: &mut Big, event: &Event) {
            state
                .blob
                .extend(std::iter::repeat_n(u64::MAX - event.sequence, 4096));
        }
    }
    for a in 0..10 {
        let entity = format!("acct:{a}");
        assert_eq!(
            store.project::<Hog>(&entity, Freshness::Latest)?.blob.len(),
            10 * 4096
        );
        assert_eq!(
            store.project::<Ledger>(&entity, Freshness::Latest)?,
            from_scratch(&store, &entity)?
        );
    }
    let s = store.cache_stats();
    assert!(
        s.fallbacks > 0,
        "a 1 MiB map cannot hold 3 MiB of states: {s:?}"
    );
    assert!(s.used_bytes <= s.map_size_bytes);
    Ok(())
}

#[test]
fn a_map_smaller_than_the_minimum_is_refused_naming_the_field() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut cfg = StoreConfig::new(dir.path());
    cfg.cache_map_size_bytes = 64 * 1024;
    let err = Store::open(cfg).err().ok_or("opened")?.to_string();
    assert!(
        err.contains("cache_map_size_bytes") && err.contains("1048576..="),
        "{err}"
    );
    Ok(())
}

#[test]
fn close_and_reopen_in_one_process_three_times_keeps_the_cache_working() -> TestResult {
    let dir = tempfile::tempdir()?;
    for round in 0..3 {
        let store = Store::open(StoreConfig::new(dir.path()))?;
        fill(&store, 20)?;
        assert_eq!(
            store.project::<Ledger>("acct:1", Freshness::Latest)?,
            from_scratch(&store, "acct:1")?
        );
        assert!(
            store.cache_stats().enabled,
            "round {round}: {:?}",
            store.cache_stats().open_note
        );
        store.close()?;
    }
    Ok(())
}

/// Found by the cache fault sweep: `close` left the LMDB environment open until the handle
/// was dropped, so a reopen while the old handle was still held ran uncached.
#[test]
fn a_closed_store_still_held_does_not_keep_the_next_open_from_its_cache() -> TestResult {
    let dir = tempfile::tempdir()?;
    let first = Store::open(StoreConfig::new(dir.path()))?;
    fill(&first, 20)?;
    let want = first.project::<Ledger>("acct:1", Freshness::Latest)?;
    first.close()?;
    let second = Store::open(StoreConfig::new(dir.path()))?;
    let stats = second.cache_stats();
    assert!(stats.enabled, "{:?}", stats.open_note);
    assert_eq!(
        second.project::<Ledger>("acct:1", Freshness::AnyCached)?,
        want
    );
    assert_eq!(
        second.cache_stats().hits,
        1,
        "the state cached before the close is used"
    );
    drop(first);
    Ok(())
}

#[test]
fn a_cache_from_another_store_is_cleared_and_named() -> TestResult {
    let a = tempfile::tempdir()?;
    let b = tempfile::tempdir()?;
    for d in [a.path(), b.path()] {
        let store = Store::open(StoreConfig::new(d))?;
        fill(&store, 20)?;
        store.project::<Ledger>("acct:1", Freshness::Latest)?;
        store.close()?;
    }
    std::fs::remove_dir_all(a.path().join("cache"))?;
    std::fs::create_dir_all(a.path().join("cache"))?;
    std::fs::copy(
        b.path().join("cache/data.mdb"),
        a.path().join("cache/data.mdb"),
    )?;
    let store = Store::open(StoreConfig::new(a.path()))?;
    let note = store
        .cache_stats()
        .open_note
        .ok_or("no note about the foreign cache")?;
    assert!(
        note.contains("another store") && note.contains("cache"),
        "{note}"
    );
    assert_eq!(
        store.project::<Ledger>("acct:1", Freshness::AnyCached)?,
        from_scratch(&store, "acct:1")?
    );
    Ok(())
}

#[test]
fn a_cache_file_that_is_not_lmdb_is_recreated_and_projections_still_answer() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let store = Store::open(StoreConfig::new(dir.path()))?;
        fill(&store, 20)?;
        store.close()?;
    }
    std::fs::create_dir_all(dir.path().join("cache"))?;
    std::fs::write(dir.path().join("cache/data.mdb"), vec![0x5au8; 64 * 1024])?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    let stats = store.cache_stats();
    assert!(stats.enabled, "{stats:?}");
    assert!(
        stats
            .open_note
            .as_deref()
            .is_some_and(|n| n.contains("recreated")),
        "{stats:?}"
    );
    assert_eq!(
        store.project::<Ledger>("acct:1", Freshness::Latest)?,
        from_scratch(&store, "acct:1")?
    );
    Ok(())
}

/// A cache that folded events the log does not have (here: the cache of the same store
/// later on, put beside an earlier snapshot of its log) must not serve them.
#[test]
fn a_cache_that_folded_events_past_the_logs_end_is_cleared_on_open() -> TestResult {
    let dir = tempfile::tempdir()?;
    let early = tempfile::tempdir()?;
    let early_dir = early.path().join("copy");
    {
        let store = Store::open(StoreConfig::new(dir.path()))?;
        fill(&store, 50)?;
        store.snapshot(&early_dir)?;
        fill(&store, 50)?;
        for a in 0..10 {
            store.project::<Ledger>(&format!("acct:{a}"), Freshness::Latest)?;
        }
        store.close()?;
    }
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(early_dir.join("cache"))?;
    for f in ["data.mdb", "lock.mdb"] {
        std::fs::copy(cache.join(f), early_dir.join("cache").join(f))?;
    }
    let store = Store::open(StoreConfig::new(&early_dir))?;
    let note = store.cache_stats().open_note.ok_or("no note")?;
    assert!(note.contains("past the log's end"), "{note}");
    assert_eq!(store.cache_stats().entries, 0, "cleared");
    assert_eq!(
        store.project::<Ledger>("acct:4", Freshness::AnyCached)?,
        from_scratch(&store, "acct:4")?
    );
    Ok(())
}

/// Found while making the cache write behind: a projection running between the
/// compaction's drop of the cached states and its commit cached a state of the old log,
/// which the compacted store then served.
#[cfg(feature = "testkit")]
#[test]
fn a_projection_running_beside_a_compaction_never_caches_the_removed_events() -> TestResult {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    batpak::store::set_compaction_step_pause(std::time::Duration::from_millis(20));
    let dir = tempfile::tempdir()?;
    let mut cfg = StoreConfig::new(dir.path());
    cfg.segment_max_bytes = 4096;
    let store = Arc::new(Store::open(cfg)?);
    fill(&store, 300)?;
    store.tombstone_entity(&Coordinate::new("acct:1", "bank"))?;
    fill(&store, 300)?;
    let stop = Arc::new(AtomicBool::new(false));
    let (s, st) = (store.clone(), stop.clone());
    let projector = std::thread::spawn(move || {
        while !st.load(Ordering::Relaxed) {
            let _ = s.project::<Ledger>("acct:1", Freshness::Latest);
        }
    });
    let compacted = store.compact(&batpak::store::RetentionPolicy {
        tombstones: true,
        ..Default::default()
    });
    stop.store(true, Ordering::Relaxed);
    projector.join().map_err(|_| "the projector panicked")?;
    batpak::store::set_compaction_step_pause(std::time::Duration::ZERO);
    assert!(compacted?.events_removed > 0);
    assert_eq!(
        store.project::<Ledger>("acct:1", Freshness::AnyCached)?,
        from_scratch(&store, "acct:1")?
    );
    Ok(())
}
