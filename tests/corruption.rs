//! Exhaustive corruption: every single-bit flip of a segment holding 100 reference events,
//! of that store's index checkpoint, and of one cached projection value. After each flip
//! the store is opened and read: no panic, and the flip is either detected (the open or a
//! read fails naming the problem, the damaged checkpoint or cache value is reported and
//! rebuilt) or provably harmless (every event reads back identical). Anything else — data
//! that differs without an error — is a violation.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use batpak::prelude::*;
use batpak::projection::{Freshness, Projection};
use batpak::store::CheckpointStatus;
use common::*;
use serde::{Deserialize, Serialize};

/// What one flip led to.
#[derive(Debug, Default)]
struct Tally {
    flips: u64,
    /// The open refused the store.
    open_refused: u64,
    /// The open succeeded and a read failed.
    read_refused: u64,
    /// Reported (damaged checkpoint, cache value rebuilt, torn tail reported) and the data is
    /// still right.
    reported: u64,
    /// Nothing reported and every event identical.
    harmless: u64,
    violations: Vec<String>,
    panics: u64,
}

impl Tally {
    fn print(&self, what: &str) {
        println!(
            "{what}: {} flips: {} refused at open, {} refused at a read, {} reported and repaired, \
             {} harmless, {} violations, {} panics",
            self.flips,
            self.open_refused,
            self.read_refused,
            self.reported,
            self.harmless,
            self.violations.len(),
            self.panics
        );
    }

    fn assert_clean(&self, what: &str) {
        self.print(what);
        assert_eq!(self.panics, 0, "{what}: panics");
        assert!(
            self.violations.is_empty(),
            "{what}: undetected corruption, first: {:?}",
            self.violations.iter().take(5).collect::<Vec<_>>()
        );
    }
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Count {
    events: u64,
    bytes: u64,
}

struct Sizes;

impl Projection for Sizes {
    type State = Count;
    const NAME: &'static str = "sizes";
    const VERSION: u32 = 1;
    fn apply(state: &mut Count, event: &Event) {
        state.events += 1;
        state.bytes += event.payload.len() as u64;
    }
}

/// 100 reference events (a third caused by the previous one), a cached projection of
/// `order:7`, closed cleanly. Returns the events as written.
fn build(dir: &Path) -> Res<Vec<Event>> {
    let store = Store::open(StoreConfig::new(dir))?;
    let mut rng = Rng::new(7);
    let mut last = None;
    for i in 0..100u32 {
        let (mut coord, kind, payload) = reference_event(&mut rng);
        if i % 10 == 0 {
            coord = Coordinate::new("order:7", "tenant-1");
        }
        let opts = AppendOptions {
            causation: last.filter(|_| i % 3 == 0),
            ..AppendOptions::default()
        };
        last = Some(store.append_with(&coord, kind, &payload, opts)?.id);
    }
    store.project::<Sizes>("order:7", Freshness::Latest)?;
    let events = store.query(&Region::all())?;
    store.close()?;
    assert_eq!(events.len(), 100);
    Ok(events)
}

fn segment_path(dir: &Path) -> Res<PathBuf> {
    std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("seg-"))
        })
        .ok_or_else(|| "no segment file".into())
}

/// Opens read-only and reads every event three ways; sorts the outcome into `t`.
fn check_read_only(dir: &Path, expected: &[Event], t: &mut Tally, what: String) {
    let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<bool, String> {
        let store = match Store::open_read_only(dir) {
            Ok(s) => s,
            Err(_) => return Ok(false),
        };
        let reported = !matches!(
            store.recovery_report().checkpoint,
            CheckpointStatus::Loaded | CheckpointStatus::Missing
        ) || !store.recovery_report().truncated.is_empty();
        let all = match store.query(&Region::all()) {
            Ok(all) => all,
            Err(_) => return Err("read".into()),
        };
        let mut same = all.len() == expected.len();
        for (e, want) in all.iter().zip(expected) {
            same &= e == want;
        }
        for want in expected {
            match store.get(want.id) {
                Ok(Some(e)) => same &= &e == want,
                Ok(None) => same = false,
                Err(_) => return Err("read".into()),
            }
        }
        match store.stream("order:7") {
            Ok(s) => same &= s.len() == 10,
            Err(_) => return Err("read".into()),
        }
        match (same, reported) {
            (true, r) => Ok(r),
            (false, true) => Err("reported".into()),
            (false, false) => Err(format!("violation: {what}")),
        }
    }));
    t.flips += 1;
    match outcome {
        Err(_) => t.panics += 1,
        Ok(Ok(false)) if Store::open_read_only(dir).is_err() => t.open_refused += 1,
        Ok(Ok(false)) => t.harmless += 1,
        Ok(Ok(true)) => t.reported += 1,
        Ok(Err(e)) if e == "read" => t.read_refused += 1,
        // Data differs but the open said what it did (a reported torn tail): detected.
        Ok(Err(e)) if e == "reported" => t.reported += 1,
        Ok(Err(e)) => t.violations.push(e),
    }
}

/// Flips every bit of `file`, one at a time, checking the store after each.
fn sweep(dir: &Path, file: &Path, expected: &[Event], t: &mut Tally) -> TestResult {
    let pristine = std::fs::read(file)?;
    let mut bytes = pristine.clone();
    for i in 0..pristine.len() {
        for bit in 0..8 {
            bytes[i] = pristine[i] ^ (1 << bit);
            std::fs::write(file, &bytes)?;
            check_read_only(dir, expected, t, format!("byte {i} bit {bit}"));
        }
        bytes[i] = pristine[i];
    }
    std::fs::write(file, &pristine)?;
    Ok(())
}

#[test]
fn every_bit_flip_of_a_segment_of_100_events_is_detected_or_harmless() -> TestResult {
    let dir = tempfile::tempdir()?;
    let expected = build(dir.path())?;
    // The checkpoint would answer reads without the segment's frames being decoded again;
    // without it every frame is scanned, which is what this sweep is about.
    std::fs::remove_file(dir.path().join("index.ckpt"))?;
    let seg = segment_path(dir.path())?;
    let mut t = Tally::default();
    sweep(dir.path(), &seg, &expected, &mut t)?;
    t.assert_clean("segment");
    assert!(
        t.open_refused + t.read_refused > t.flips / 2,
        "most flips are refused"
    );
    Ok(())
}

#[test]
fn every_bit_flip_of_the_checkpoint_is_detected_or_harmless() -> TestResult {
    let dir = tempfile::tempdir()?;
    let expected = build(dir.path())?;
    let ckpt = dir.path().join("index.ckpt");
    let mut t = Tally::default();
    sweep(dir.path(), &ckpt, &expected, &mut t)?;
    t.assert_clean("checkpoint");
    Ok(())
}

#[test]
fn every_bit_flip_of_a_cached_projection_value_is_detected_and_recomputed() -> TestResult {
    let dir = tempfile::tempdir()?;
    build(dir.path())?;
    let data = dir.path().join("cache").join("data.mdb");
    let pristine = std::fs::read(&data)?;
    let key = b"sizes\0order:7";
    let at = pristine
        .windows(key.len())
        .position(|w| w == key)
        .ok_or("cached value not found")?
        + key.len();
    let want = {
        let store = Store::open(StoreConfig::new(dir.path()))?;
        let mut c = Count::default();
        store
            .stream("order:7")?
            .iter()
            .for_each(|e| Sizes::apply(&mut c, e));
        store.close()?;
        c
    };
    // The value: version, folded sequence, checksum (16 bytes), then the MessagePack state.
    let len = 16 + rmp_serde::to_vec_named(&want)?.len();
    let mut t = Tally::default();
    for i in at..at + len {
        for bit in 0..8 {
            let mut bytes = pristine.clone();
            bytes[i] ^= 1 << bit;
            std::fs::write(&data, &bytes)?;
            t.flips += 1;
            let got = catch_unwind(AssertUnwindSafe(|| -> Res<(Count, u64)> {
                let store = Store::open(StoreConfig::new(dir.path()))?;
                let got = store.project::<Sizes>("order:7", Freshness::AnyCached)?;
                let rebuilt = store.cache_stats().rebuilt_values;
                store.close()?;
                Ok((got, rebuilt))
            }));
            match got {
                Err(_) => t.panics += 1,
                Ok(Err(e)) => t.violations.push(format!("byte {i} bit {bit}: {e}")),
                Ok(Ok((got, _))) if got != want => t
                    .violations
                    .push(format!("byte {i} bit {bit}: {got:?} != {want:?}")),
                Ok(Ok((_, 1))) => t.reported += 1,
                Ok(Ok((_, n))) => t.violations.push(format!(
                    "byte {i} bit {bit}: {n} values rebuilt, expected 1"
                )),
            }
        }
    }
    std::fs::write(&data, &pristine)?;
    t.assert_clean("cached projection value");
    Ok(())
}
