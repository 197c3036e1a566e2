//! Retention and compaction: survivors read back identical for each rule, a removed
//! ancestor is reported by walks, a dry run changes nothing, keys and projections stay right.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use batpak::prelude::*;
use batpak::projection::Freshness;
use batpak::store::{verify, RetentionPolicy};
use common::*;

fn config(dir: &Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    c.segment_max_bytes = 8 * 1024;
    c
}

/// Every event of the store, by sequence.
fn all_events(store: &Store) -> Res<BTreeMap<u64, Event>> {
    let mut out = BTreeMap::new();
    for e in store.query_iter(&Region::all()) {
        let e = e?;
        out.insert(e.sequence, e);
    }
    Ok(out)
}

/// Sequences held by sealed segments right now.
fn sealed_range(store: &Store) -> (u64, u64) {
    let segs = store.stats().segments;
    let last_sealed = segs
        .iter()
        .filter(|s| s.sealed)
        .filter_map(|s| s.last_sequence)
        .max()
        .unwrap_or(0);
    (1, last_sealed)
}

/// Appends `n` events over entities `e0..e5` (payload = sequence-ish number); every third
/// event names the previous one as its cause.
fn fill(store: &Store, n: u64) -> Res<Vec<AppendReceipt>> {
    let mut out: Vec<AppendReceipt> = Vec::new();
    for i in 0..n {
        let mut opts = AppendOptions::default();
        if i % 3 == 2 {
            if let Some(prev) = out.last() {
                opts = opts.caused_by(prev.id);
            }
        }
        out.push(store.append_with(
            &Coordinate::new(format!("e{}", i % 6), format!("s{}", i % 2)),
            EventKind::new(1, 1),
            &(i as i64),
            opts,
        )?);
    }
    Ok(out)
}

/// The survivors equal the events before minus `removed`, field by field, and a reopen
/// (index rebuilt from the rewritten files) agrees.
fn check_survivors(
    dir: &Path,
    store: &Store,
    before: &BTreeMap<u64, Event>,
    removed: impl Fn(&Event) -> bool,
) -> Res<u64> {
    let mut expected = before.clone();
    expected.retain(|_, e| !removed(e));
    let gone = (before.len() - expected.len()) as u64;
    let after = all_events(store)?;
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    assert_eq!(after, expected, "survivors read back identical");
    for e in expected.values() {
        assert_eq!(store.get(e.id)?.as_ref(), Some(e));
    }
    let report = verify(dir)?;
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(report.removed, gone);
    Ok(gone)
}

#[test]
fn compaction_by_tombstone_drops_the_entity_s_earlier_events_in_sealed_segments_and_keeps_the_rest(
) -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(config(dir.path()))?;
    fill(&store, 600)?;
    let tomb = store.tombstone_entity(&Coordinate::new("e1", "s1"))?;
    fill(&store, 400)?;
    let before = all_events(&store)?;
    let (_, sealed_to) = sealed_range(&store);
    let report = store.compact(&RetentionPolicy {
        tombstones: true,
        ..RetentionPolicy::default()
    })?;
    let removed = |e: &Event| {
        e.coordinate.entity == "e1" && e.sequence < tomb.sequence && e.sequence <= sealed_to
    };
    let gone = check_survivors(dir.path(), &store, &before, removed)?;
    assert!(gone > 50, "{report:?}");
    assert_eq!(report.events_removed, gone);
    assert_eq!(
        store.stats().last_compaction.map(|r| r.events_removed),
        Some(gone),
        "the statistics carry the last compaction"
    );
    assert!(report.bytes_reclaimed() > 0);
    assert!(store.get(tomb.id)?.is_some(), "the tombstone stays");
    store.append(&Coordinate::new("e1", "s1"), EventKind::new(1, 1), &1i64)?;
    drop(store);
    let reopened = Store::open(config(dir.path()))?;
    let mut expected = before.clone();
    expected.retain(|_, e| !removed(e));
    let after = all_events(&reopened)?;
    assert_eq!(after.len(), expected.len() + 1);
    assert!(expected.iter().all(|(s, e)| after.get(s) == Some(e)));
    Ok(())
}

#[test]
fn compaction_by_scope_tombstone_drops_every_earlier_event_of_the_scope() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(config(dir.path()))?;
    fill(&store, 800)?;
    let tomb = store.tombstone_scope("s0")?;
    fill(&store, 300)?;
    let before = all_events(&store)?;
    let (_, sealed_to) = sealed_range(&store);
    store.compact(&RetentionPolicy {
        tombstones: true,
        ..RetentionPolicy::default()
    })?;
    let gone = check_survivors(dir.path(), &store, &before, |e| {
        e.coordinate.scope == "s0" && e.sequence < tomb.sequence && e.sequence <= sealed_to
    })?;
    assert!(gone > 200);
    Ok(())
}

#[test]
fn compaction_by_age_drops_events_older_than_max_age_in_sealed_segments() -> TestResult {
    let dir = tempfile::tempdir()?;
    let clock = Arc::new(AtomicU64::new(1_000_000_000));
    let mut cfg = config(dir.path());
    let c = clock.clone();
    cfg.clock = Some(Arc::new(move || c.load(Ordering::SeqCst)));
    let store = Store::open(cfg)?;
    for _ in 0..10 {
        fill(&store, 100)?;
        clock.fetch_add(60_000_000, Ordering::SeqCst); // a minute
    }
    let before = all_events(&store)?;
    let (_, sealed_to) = sealed_range(&store);
    let now = clock.load(Ordering::SeqCst);
    let max_age = Duration::from_secs(5 * 60 + 30);
    store.compact(&RetentionPolicy {
        max_age: Some(max_age),
        ..RetentionPolicy::default()
    })?;
    let cutoff = now - max_age.as_micros() as u64;
    let gone = check_survivors(dir.path(), &store, &before, |e| {
        e.timestamp_us < cutoff && e.sequence <= sealed_to
    })?;
    assert!(gone >= 500, "{gone}");
    Ok(())
}

#[test]
fn compaction_by_size_empties_the_oldest_sealed_segments_until_the_store_fits() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(config(dir.path()))?;
    fill(&store, 2000)?;
    let before = all_events(&store)?;
    let seg_bytes = |s: &Store| s.stats().segments.iter().map(|g| g.bytes).sum::<u64>();
    let total = seg_bytes(&store);
    let cap = total / 2;
    let report = store.compact(&RetentionPolicy {
        max_total_bytes: Some(cap),
        ..RetentionPolicy::default()
    })?;
    assert!(seg_bytes(&store) <= cap, "{} > {cap}", seg_bytes(&store));
    let first_kept = all_events(&store)?.keys().next().copied().unwrap_or(0);
    let gone = check_survivors(dir.path(), &store, &before, |e| e.sequence < first_kept)?;
    assert_eq!(gone, report.events_removed);
    assert!(gone > 500);
    Ok(())
}

#[test]
fn a_walk_that_reaches_a_removed_ancestor_says_so() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(config(dir.path()))?;
    let root = store.append(&Coordinate::new("gone", "s"), EventKind::new(1, 1), &0i64)?;
    let child = store.append_with(
        &Coordinate::new("kept", "s"),
        EventKind::new(1, 2),
        &1i64,
        AppendOptions::default().caused_by(root.id),
    )?;
    let grandchild = store.append_with(
        &Coordinate::new("kept", "s"),
        EventKind::new(1, 3),
        &2i64,
        AppendOptions::default().caused_by(child.id),
    )?;
    store.tombstone_entity(&Coordinate::new("gone", "s"))?;
    fill(&store, 600)?;
    let dry = store.compact_dry_run(&RetentionPolicy {
        tombstones: true,
        ..RetentionPolicy::default()
    })?;
    assert_eq!(dry.events_removed, 1);
    assert!(
        dry.chains_cut >= 2,
        "child and grandchild lose their root: {dry:?}"
    );
    assert_eq!(dry.entities_sample, ["gone"]);
    store.compact(&RetentionPolicy {
        tombstones: true,
        ..RetentionPolicy::default()
    })?;
    let walk = store.ancestors(grandchild.id)?;
    assert_eq!(walk.nodes.len(), 1);
    assert_eq!(walk.nodes[0].id, child.id);
    assert_eq!(walk.removed_cause, Some(root.id));
    drop(store);
    let store = Store::open(config(dir.path()))?;
    assert_eq!(store.ancestors(grandchild.id)?.removed_cause, Some(root.id));
    assert_eq!(store.ancestors(child.id)?.removed_cause, Some(root.id));
    Ok(())
}

/// Every file of `dir` and its bytes.
fn snapshot_files(dir: &Path) -> Res<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_file() {
            out.insert(
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path())?,
            );
        }
    }
    Ok(out)
}

#[test]
fn a_dry_run_changes_no_byte_and_predicts_what_the_compaction_then_does() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(config(dir.path()))?;
    fill(&store, 900)?;
    store.tombstone_entity(&Coordinate::new("e2", "s0"))?;
    store.sync()?;
    let files = snapshot_files(dir.path())?;
    let policy = RetentionPolicy {
        tombstones: true,
        max_total_bytes: Some(40 * 1024),
        ..RetentionPolicy::default()
    };
    let dry = store.compact_dry_run(&policy)?;
    assert!(dry.dry_run && dry.events_removed > 0);
    assert!(
        store.stats().last_compaction.is_none(),
        "a dry run is not a compaction"
    );
    assert_eq!(
        snapshot_files(dir.path())?,
        files,
        "the dry run wrote nothing"
    );
    let done = store.compact(&policy)?;
    assert_eq!(
        (
            done.events_removed,
            &done.segments_touched,
            done.bytes_after,
            done.chains_cut
        ),
        (
            dry.events_removed,
            &dry.segments_touched,
            dry.bytes_after,
            dry.chains_cut
        )
    );
    assert_ne!(snapshot_files(dir.path())?, files);
    Ok(())
}

/// Appends `payload` to `entity` with an idempotency key.
fn keyed(store: &Store, entity: &str, key: u128, payload: i64) -> Res<AppendReceipt> {
    Ok(store.append_with(
        &Coordinate::new(entity, "s"),
        EventKind::new(1, 1),
        &payload,
        AppendOptions {
            idempotency_key: Some(key),
            ..AppendOptions::default()
        },
    )?)
}

#[test]
fn idempotency_keys_of_survivors_still_deduplicate_after_compaction_and_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(config(dir.path()))?;
    let kept = keyed(&store, "keep", 0xfeed, 7)?;
    let dropped = keyed(&store, "drop", 0xbeef, 8)?;
    store.tombstone_entity(&Coordinate::new("drop", "s"))?;
    fill(&store, 600)?;
    store.compact(&RetentionPolicy {
        tombstones: true,
        ..RetentionPolicy::default()
    })?;
    assert!(store.get(dropped.id)?.is_none());
    let first = keyed(&store, "keep", 0xfeed, 7)?;
    drop(store);
    let second = keyed(&Store::open(config(dir.path()))?, "keep", 0xfeed, 7)?;
    for r in [first, second] {
        assert!(r.deduplicated);
        assert_eq!(r.sequence, kept.sequence);
    }
    Ok(())
}

/// Retries `key` on the entity `drop` and checks the store answers with the first receipt.
fn retried_is_deduplicated(store: &Store, key: u128, first: &AppendReceipt) -> TestResult {
    let again = keyed(store, "drop", key, 8)?;
    assert!(
        again.deduplicated,
        "the retry of key {key:#x} wrote event {} again",
        again.sequence
    );
    assert_eq!(again.sequence, first.sequence);
    Ok(())
}

#[test]
fn the_key_of_a_compacted_event_still_deduplicates_after_compaction_reopen_and_a_lost_checkpoint(
) -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(config(dir.path()))?;
    let first = keyed(&store, "drop", 0xbeef, 8)?;
    store.tombstone_entity(&Coordinate::new("drop", "s"))?;
    fill(&store, 600)?;
    let tombstones = RetentionPolicy {
        tombstones: true,
        ..RetentionPolicy::default()
    };
    let report = store.compact(&tombstones)?;
    assert!(report.events_removed >= 1);
    assert!(store.get(first.id)?.is_none(), "the event was compacted");
    retried_is_deduplicated(&store, 0xbeef, &first)?;
    drop(store);
    retried_is_deduplicated(&Store::open(config(dir.path()))?, 0xbeef, &first)?;
    // A process killed after the compaction leaves no checkpoint: the open rebuilds the
    // index from the segments, which must still hold the key.
    std::fs::remove_file(dir.path().join(batpak::layout::CHECKPOINT))?;
    let store = Store::open(config(dir.path()))?;
    assert_eq!(
        store.recovery_report().checkpoint,
        batpak::store::CheckpointStatus::Missing
    );
    retried_is_deduplicated(&store, 0xbeef, &first)?;
    // A second compaction of the same segment carries the kept key along.
    fill(&store, 300)?;
    store.compact(&RetentionPolicy {
        max_total_bytes: Some(1),
        ..RetentionPolicy::default()
    })?;
    drop(store);
    std::fs::remove_file(dir.path().join(batpak::layout::CHECKPOINT))?;
    let store = Store::open(config(dir.path()))?;
    retried_is_deduplicated(&store, 0xbeef, &first)?;
    assert!(verify(dir.path())?.is_clean());
    Ok(())
}

#[test]
fn the_idempotency_window_is_configured_and_forgets_the_oldest_keys_beyond_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let windowed = |n: u32| {
        let mut c = config(dir.path());
        c.idempotency_window = n;
        c
    };
    let store = Store::open(windowed(100))?;
    let firsts: Vec<AppendReceipt> = (0..150u128)
        .map(|k| keyed(&store, "drop", k, 8))
        .collect::<Res<_>>()?;
    for k in 50..150 {
        retried_is_deduplicated(&store, k, &firsts[k as usize])?;
    }
    drop(store);
    // Reopened with a smaller window: only the newest 10 keys are remembered.
    let store = Store::open(windowed(10))?;
    for k in 140..150 {
        retried_is_deduplicated(&store, k, &firsts[k as usize])?;
    }
    let forgotten = keyed(&store, "drop", 139, 8)?;
    assert!(
        !forgotten.deduplicated,
        "key 139 lies outside a window of 10"
    );
    assert!(forgotten.sequence > firsts[149].sequence);
    drop(store);
    let refused = Store::open(windowed(0))
        .err()
        .ok_or("a window of 0 opened")?;
    assert!(
        refused.to_string().contains("idempotency_window"),
        "{refused}"
    );
    Ok(())
}

#[test]
fn a_cached_projection_is_recomputed_from_the_survivors_after_compaction() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(config(dir.path()))?;
    fill(&store, 900)?;
    let full = store.project::<Sum>("e3", Freshness::Latest)?;
    let cached = store.project::<Sum>("e3", Freshness::AnyCached)?;
    assert_eq!(cached, full);
    let before = all_events(&store)?;
    // e3 lives in s1. The sealed range is read after the tombstone: writing it may seal
    // the segment before it (how full that is depends on the timestamps' widths).
    let tomb = store.tombstone_scope("s1")?;
    let (_, sealed_to) = sealed_range(&store);
    store.compact(&RetentionPolicy {
        tombstones: true,
        ..RetentionPolicy::default()
    })?;
    let expected = before
        .values()
        .filter(|e| e.coordinate.entity == "e3")
        .filter(|e| !(e.sequence < tomb.sequence && e.sequence <= sealed_to))
        .fold((0u64, 0i64), |(n, s), e| {
            (n + 1, s + e.payload::<i64>().unwrap_or(0))
        });
    assert!(expected.0 < full.0);
    assert_eq!(store.project::<Sum>("e3", Freshness::AnyCached)?, expected);
    Ok(())
}

#[test]
fn compaction_through_the_read_only_open_is_refused_naming_the_directory() -> TestResult {
    let dir = tempfile::tempdir()?;
    let holder = Store::open(config(dir.path()))?;
    fill(&holder, 10)?;
    let ro = Store::open_read_only(dir.path())?;
    let err = ro
        .compact(&RetentionPolicy::default())
        .err()
        .ok_or("a read-only compaction was accepted")?;
    let msg = err.to_string();
    assert!(
        msg.contains("needs the lock") && msg.contains(&dir.path().display().to_string()),
        "{msg}"
    );
    Ok(())
}

#[test]
fn a_query_that_spans_a_compaction_continues_without_skipping_or_repeating() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(config(dir.path()))?;
    fill(&store, 3000)?;
    let tomb = store.tombstone_entity(&Coordinate::new("e4", "s0"))?;
    fill(&store, 200)?;
    let (_, sealed_to) = sealed_range(&store);
    let before = all_events(&store)?;
    let mut iter = store.query_iter(&Region::all());
    let head: Vec<Event> = iter.by_ref().take(1500).collect::<Result<_, _>>()?;
    let last_seen = head.last().map_or(0, |e| e.sequence);
    store.compact(&RetentionPolicy {
        tombstones: true,
        ..RetentionPolicy::default()
    })?;
    let tail: Vec<Event> = iter.collect::<Result<_, _>>()?;
    assert_eq!(tail.first().map(|e| e.sequence > last_seen), Some(true));
    let seqs: Vec<u64> = head.iter().chain(&tail).map(|e| e.sequence).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order, no repeats");
    // No survivor is skipped; what the iterator had read before the compaction (one chunk
    // ahead) may still hold removed events, each exactly as it was.
    let survivors: Vec<u64> = all_events(&store)?
        .into_keys()
        .filter(|s| *s > last_seen)
        .collect();
    let tail_seqs: std::collections::BTreeSet<u64> = tail.iter().map(|e| e.sequence).collect();
    assert!(survivors.iter().all(|s| tail_seqs.contains(s)));
    assert!(tail.iter().all(|e| before.get(&e.sequence) == Some(e)));
    assert!(
        tail.len() < before.len() - head.len(),
        "the compaction removed some of the tail"
    );
    let _ = (tomb, sealed_to);
    Ok(())
}

#[test]
fn readers_running_during_a_compaction_see_every_survivor_and_no_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(Store::open(config(dir.path()))?);
    let receipts = fill(&store, 3000)?;
    store.tombstone_entity(&Coordinate::new("e5", "s1"))?;
    fill(&store, 200)?;
    let keep: Vec<EventId> = receipts
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 6 != 5)
        .map(|(_, r)| r.id)
        .collect();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|t| {
            let (store, stop, keep) = (store.clone(), stop.clone(), keep.clone());
            std::thread::spawn(move || -> Result<u64, String> {
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for id in keep.iter().skip(t).step_by(7) {
                        match store.get(*id) {
                            Ok(Some(e)) if e.id == *id => reads += 1,
                            other => return Err(format!("{id}: {other:?}")),
                        }
                    }
                }
                Ok(reads)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(20));
    let r = store.compact(&RetentionPolicy {
        tombstones: true,
        ..RetentionPolicy::default()
    })?;
    assert!(r.events_removed > 100);
    std::thread::sleep(Duration::from_millis(20));
    stop.store(true, Ordering::Relaxed);
    for h in readers {
        let reads = h.join().map_err(|_| "reader panicked")??;
        assert!(reads > 0);
    }
    Ok(())
}

#[cfg(feature = "testkit")]
#[test]
fn a_compaction_that_hits_a_full_disk_changes_nothing_and_leaves_no_file_behind() -> TestResult {
    use batpak::fs::sim::SimFs;
    let fs = SimFs::new();
    let dir = Path::new("/sim/data");
    let open = || {
        Store::open_with(
            config(dir),
            OpenOptions::default().with_fs(Arc::new(fs.clone())),
        )
    };
    let store = open()?;
    fill(&store, 900)?;
    store.tombstone_entity(&Coordinate::new("e1", "s1"))?;
    let before = all_events(&store)?;
    let listing = |fs: &SimFs| -> Res<Vec<String>> {
        let mut names = batpak::fs::FileSystem::list_dir(fs, dir)?;
        names.sort();
        Ok(names)
    };
    let files = listing(&fs)?;
    fs.fail_writes(std::io::ErrorKind::StorageFull);
    let err = store
        .compact(&RetentionPolicy {
            tombstones: true,
            ..RetentionPolicy::default()
        })
        .err()
        .ok_or("a compaction on a full disk succeeded")?;
    fs.heal();
    assert!(err.to_string().contains("nothing was compacted"), "{err}");
    assert_eq!(listing(&fs)?, files, "no staged file is left behind");
    assert_eq!(all_events(&store)?, before);
    store.append(&Coordinate::new("e0", "s0"), EventKind::new(1, 1), &1i64)?;
    drop(store);
    assert_eq!(all_events(&open()?)?.len(), before.len() + 1);
    Ok(())
}

#[test]
fn appends_during_a_compaction_are_all_indexed_and_survive_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(Store::open(config(dir.path()))?);
    fill(&store, 3000)?;
    store.tombstone_entity(&Coordinate::new("e2", "s0"))?;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producers: Vec<_> = (0..2i64)
        .map(|t| {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || -> Result<Vec<(EventId, i64)>, String> {
                let mut acked = Vec::new();
                let mut i = 0i64;
                while !stop.load(Ordering::Relaxed) {
                    let v = t * 1_000_000 + i;
                    let r = store
                        .append(
                            &Coordinate::new(format!("live{t}"), "s9"),
                            EventKind::new(1, 7),
                            &v,
                        )
                        .map_err(|e| e.to_string())?;
                    acked.push((r.id, v));
                    i += 1;
                }
                Ok(acked)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(30));
    let r = store.compact(&RetentionPolicy {
        tombstones: true,
        ..RetentionPolicy::default()
    })?;
    std::thread::sleep(Duration::from_millis(30));
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for p in producers {
        acked.extend(p.join().map_err(|_| "producer panicked")??);
    }
    assert!(
        r.events_removed > 100 && acked.len() > 100,
        "{r:?} {}",
        acked.len()
    );
    let check = |s: &Store| -> TestResult {
        for (id, v) in &acked {
            let e = s.get(*id)?.ok_or(format!("acked {id} missing"))?;
            assert_eq!(e.payload::<i64>()?, *v);
        }
        Ok(())
    };
    check(&store)?;
    let live =
        store.query(&Region::entity("live0"))?.len() + store.query(&Region::entity("live1"))?.len();
    assert_eq!(
        live,
        acked.len(),
        "every acked event is in the entity lists once"
    );
    let count = all_events(&store)?.len();
    drop(store);
    let reopened = Store::open(config(dir.path()))?;
    check(&reopened)?;
    assert_eq!(all_events(&reopened)?.len(), count);
    Ok(())
}
