//! Compaction crash test: a child process compacts a store of many segments and is
//! SIGKILLed at random moments (every file step of the compaction is slowed down so that the
//! kills land in each phase). Every reopen must show the full old state or the full new
//! one, with every surviving event byte-identical.
#![cfg(feature = "testkit")]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use batpak::prelude::*;
use batpak::store::{verify, RetentionPolicy};
use common::*;

const CHILD_ENV: &str = "BATPAK_COMPACT_CHILD_DIR";
/// Pause after each file step of the child's compaction.
const STEP: Duration = Duration::from_millis(3);

fn config(dir: &Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    c.segment_max_bytes = 8 * 1024;
    c
}

fn policy() -> RetentionPolicy {
    RetentionPolicy {
        tombstones: true,
        ..RetentionPolicy::default()
    }
}

/// Runs only inside the child process: compact, then say so.
#[test]
fn compaction_child_entry_point() -> TestResult {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return Ok(());
    };
    batpak::store::set_compaction_step_pause(STEP);
    let store = Store::open(config(Path::new(&dir)))?;
    println!("ready");
    store.compact(&policy())?;
    println!("compacted");
    Ok(())
}

/// A store of many sealed segments where entity e1 and scope s1 have tombstones.
fn template(dir: &Path) -> Res<()> {
    let store = Store::open(config(dir))?;
    let mut rng = Rng::new(7);
    for i in 0..3000u64 {
        let (_, kind, payload) = reference_event(&mut rng);
        store.append(
            &Coordinate::new(format!("e{}", i % 5), format!("s{}", i % 3)),
            kind,
            &payload,
        )?;
        if i == 2000 {
            store.tombstone_entity(&Coordinate::new("e1", "s1"))?;
        }
        if i == 2500 {
            store.tombstone_scope("s2")?;
        }
    }
    store.close()?;
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Res<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        if e.file_type()?.is_file() && e.file_name() != "batpak.lock" {
            std::fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(())
}

fn events(store: &Store) -> Res<BTreeMap<u64, Event>> {
    let mut out = BTreeMap::new();
    for e in store.query_iter(&Region::all()) {
        let e = e?;
        out.insert(e.sequence, e);
    }
    Ok(out)
}

/// Starts the child on `dir`, waits for it to be ready, lets it run `after`, kills it.
fn kill_child_after(dir: &Path, after: Duration) -> Res<bool> {
    let (mut child, lines) = start_ready_child("compaction_child_entry_point", CHILD_ENV, dir)?;
    std::thread::sleep(after);
    child.kill()?; // SIGKILL
    child.wait()?;
    Ok(lines.map_while(Result::ok).any(|l| l.contains("compacted")))
}

#[test]
fn a_compaction_killed_at_any_moment_leaves_the_full_old_or_the_full_new_state() -> TestResult {
    let root = tempfile::tempdir()?;
    let tpl = root.path().join("template");
    template(&tpl)?;
    let old = events(&Store::open(config(&tpl))?)?;
    let new = {
        let probe = root.path().join("probe");
        copy_dir(&tpl, &probe)?;
        let s = Store::open(config(&probe))?;
        let started = Instant::now();
        batpak::store::set_compaction_step_pause(STEP);
        let r = s.compact(&policy())?;
        batpak::store::set_compaction_step_pause(Duration::ZERO);
        eprintln!(
            "compaction: {} segments, {} events removed, {:?} with {STEP:?} per step",
            r.segments_touched.len(),
            r.events_removed,
            started.elapsed()
        );
        assert!(r.segments_touched.len() > 10, "{r:?}");
        events(&s)?
    };
    assert!(new.len() < old.len());
    // Long enough to cover the whole compaction in the child, with the open before it.
    let span = (STEP * 2 * 60).as_millis() as u64;
    let mut rng = Rng::new(0xc0ffee);
    let (mut saw_old, mut saw_new, mut rolled_forward, mut cleaned_up) = (0, 0, 0, 0);
    for cycle in 0..24 {
        let dir = root.path().join(format!("cycle-{cycle}"));
        copy_dir(&tpl, &dir)?;
        let finished = kill_child_after(&dir, Duration::from_millis(rng.below(span)))?;
        // Before any reopen: whatever the kill left verifies clean, and a committed but
        // unfinished compaction is pointed out.
        let before = verify(&dir)?;
        assert!(before.is_clean(), "cycle {cycle}: {:?}", before.problems);
        if dir.join("compact.manifest").exists() {
            assert!(
                before.notes.iter().any(|n| n.contains("did not finish")),
                "cycle {cycle}: {:?}",
                before.notes
            );
        }
        let store = Store::open(config(&dir))?;
        let note = store
            .recovery_report()
            .compaction
            .clone()
            .unwrap_or_default();
        rolled_forward += usize::from(note.starts_with("finished"));
        cleaned_up += usize::from(note.starts_with("removed"));
        let got = events(&store)?;
        if got == old {
            assert!(!finished, "cycle {cycle}: the child said it compacted");
            saw_old += 1;
        } else if got == new {
            saw_new += 1;
        } else {
            return Err(format!(
                "cycle {cycle}: {} events after reopen: neither the old ({}) nor the new ({}) state ({note})",
                got.len(),
                old.len(),
                new.len()
            )
            .into());
        }
        drop(store);
        let report = verify(&dir)?;
        assert!(report.is_clean(), "cycle {cycle}: {:?}", report.problems);
        std::fs::remove_dir_all(&dir)?;
    }
    eprintln!(
        "24 kills: {saw_old} old state ({cleaned_up} with staged files removed), {saw_new} new state ({rolled_forward} finished by the reopen)"
    );
    assert!(saw_old > 0 && saw_new > 0, "kills landed on one side only");
    assert!(
        cleaned_up > 0 && rolled_forward > 0,
        "kills never landed between writing the new files and the renames ({cleaned_up} clean-ups, {rolled_forward} roll-forwards)"
    );
    Ok(())
}
