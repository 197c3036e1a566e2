//! The projection cache under faults. LMDB does its own I/O, out of reach of the simulated
//! file system, so the cache is tested at the heed call boundary — every heed call of a
//! run of projections, appends, a compaction and a reopen failing, once and from then on —
//! and by damaging or deleting its files between runs. The oracle: every projection equals
//! the fold of the log at that moment, during the faulted run and after a clean reopen;
//! a compaction that cannot drop the cached states it would make stale changes nothing.
#![cfg(feature = "testkit")]

mod common;

use std::path::Path;
use std::sync::Arc;

use batpak::prelude::*;
use batpak::projection::faults::CacheFaults;
use batpak::projection::{Freshness, Projection};
use batpak::store::RetentionPolicy;
use common::*;

const ENTITIES: [&str; 3] = ["e0", "e1", "e2"];

fn config(dir: &Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    c.segment_max_bytes = 4 * 1024;
    c
}

fn open(dir: &Path, faults: Option<Arc<CacheFaults>>) -> Result<Store, OpenError> {
    Store::open_with(
        config(dir),
        OpenOptions {
            cache_faults: faults,
            ..OpenOptions::default()
        },
    )
}

/// The projection computed from the log itself.
fn fold(store: &Store, entity: &str) -> Res<(u64, i64)> {
    let mut state = (0, 0);
    for e in store.query(&Region::entity(entity))? {
        Sum::apply(&mut state, &e);
    }
    Ok(state)
}

/// Every entity's projection, at each freshness, equals the fold of the log.
fn check_projections(store: &Store, what: &str) -> Res<()> {
    for entity in ENTITIES {
        let want = fold(store, entity)?;
        for f in [Freshness::Latest, Freshness::AtMostBehind(0)] {
            let got = store.project::<Sum>(entity, f)?;
            if got != want {
                return Err(
                    format!("{what}: {entity} projects {got:?}, the log folds {want:?}").into(),
                );
            }
        }
    }
    Ok(())
}

fn fill(store: &Store, round: i64) -> Res<()> {
    for i in 0..90i64 {
        let entity = ENTITIES[(i % 3) as usize];
        store.append(
            &Coordinate::new(entity, "s"),
            EventKind::new(1, 1),
            &(round * 100 + i),
        )?;
    }
    Ok(())
}

/// Projections between appends, a tombstone and a compaction, a close and a clean reopen.
/// Returns whether the compaction had to drop the whole cache (it could not drop the
/// states it made stale).
fn scenario(dir: &Path, faults: Option<Arc<CacheFaults>>, what: &str) -> Res<bool> {
    let store = open(dir, faults)?;
    for round in 0..3 {
        fill(&store, round)?;
        check_projections(&store, what)?;
    }
    store.tombstone_entity(&Coordinate::new("e1", "s"))?;
    fill(&store, 3)?;
    let enabled = store.cache_stats().enabled;
    let report = store.compact(&RetentionPolicy {
        tombstones: true,
        ..RetentionPolicy::default()
    });
    match report {
        Ok(r) if r.events_removed > 0 => {}
        Ok(r) => return Err(format!("{what}: the compaction removed nothing: {r:?}").into()),
        Err(e) => return Err(format!("{what}: compaction: {e}").into()),
    }
    let dropped = enabled && !store.cache_stats().enabled;
    check_projections(&store, what)?;
    store.close()?;
    let store = open(dir, None)?;
    check_projections(&store, &format!("{what}, after a clean reopen"))?;
    if !store.cache_stats().enabled {
        return Err(format!(
            "{what}: the clean reopen has no cache: {:?}",
            store.cache_stats()
        )
        .into());
    }
    store.close()?;
    Ok(dropped)
}

#[test]
fn every_heed_call_of_the_projection_cache_failing_never_changes_a_projection() -> TestResult {
    let probe = CacheFaults::counting();
    let dir = tempfile::tempdir()?;
    assert!(!scenario(dir.path(), Some(probe.clone()), "clean run")?);
    let points = probe.points();
    let (mut runs, mut dropped) = (0, 0);
    for at in 0..points {
        for persistent in [false, true] {
            let what = format!(
                "heed call {at}{}",
                if persistent { " and after" } else { "" }
            );
            let dir = tempfile::tempdir()?;
            let faults = CacheFaults::new(at, persistent);
            let outcome = std::panic::catch_unwind(|| scenario(dir.path(), Some(faults), &what))
                .map_err(|_| format!("{what}: panic"))?;
            dropped += u32::from(outcome?);
            runs += 1;
        }
    }
    println!(
        "projection cache at the heed boundary: {points} heed calls ({}), each failing once and \
         from then on: {runs} runs, every compaction done; {dropped} had to delete the cache \
         because the states it made stale could not be dropped; 0 violations",
        probe.calls().join(", ")
    );
    assert!(
        dropped > 0,
        "no fault ever reached the compaction's cache step"
    );
    Ok(())
}

/// What damaging the cache directory between runs does: each kind is applied to a copy of
/// a store whose cache holds every entity's state.
#[test]
fn a_deleted_truncated_or_garbled_cache_is_rebuilt_and_every_projection_equals_the_log(
) -> TestResult {
    let template = tempfile::tempdir()?;
    {
        let store = open(template.path(), None)?;
        fill(&store, 0)?;
        check_projections(&store, "template")?;
        store.close()?;
    }
    type Damage = fn(&Path) -> std::io::Result<()>;
    let kinds: [(&str, Damage); 8] = [
        ("data.mdb deleted", |c| {
            std::fs::remove_file(c.join("data.mdb"))
        }),
        ("lock.mdb deleted", |c| {
            std::fs::remove_file(c.join("lock.mdb"))
        }),
        ("directory deleted", |c| std::fs::remove_dir_all(c)),
        ("data.mdb emptied", |c| {
            std::fs::write(c.join("data.mdb"), b"")
        }),
        ("data.mdb cut in half", |c| {
            let p = c.join("data.mdb");
            let len = std::fs::metadata(&p)?.len();
            std::fs::OpenOptions::new()
                .write(true)
                .open(&p)?
                .set_len(len / 2)
        }),
        ("meta pages garbled", |c| {
            garble(&c.join("data.mdb"), 0, 8192)
        }),
        ("data pages garbled", |c| {
            garble(&c.join("data.mdb"), 8192, 1 << 20)
        }),
        ("directory replaced by a file", |c| {
            std::fs::remove_dir_all(c)?;
            std::fs::write(c, b"not a cache")
        }),
    ];
    for (name, damage) in kinds {
        let dir = tempfile::tempdir()?;
        copy_dir(template.path(), dir.path())?;
        damage(&dir.path().join("cache"))?;
        let store = open(dir.path(), None).map_err(|e| format!("{name}: {e}"))?;
        check_projections(&store, name)?;
        println!("{name}: {:?}", store.cache_stats().open_note);
        store.close()?;
    }
    Ok(())
}

/// Overwrites `len` bytes at `at` with a fixed pseudo-random pattern.
fn garble(path: &Path, at: usize, len: usize) -> std::io::Result<()> {
    let mut bytes = std::fs::read(path)?;
    let mut rng = Rng::new(99);
    let end = (at + len).min(bytes.len());
    bytes[at..end].copy_from_slice(&rng.bytes(end - at));
    std::fs::write(path, bytes)
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&dest)?;
            copy_dir(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), dest)?;
        }
    }
    Ok(())
}
