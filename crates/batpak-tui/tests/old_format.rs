//! Stores written by older on-disk formats keep opening: for each older version N the
//! fixtures under `tests/fixtures/format-vN/` (closed cleanly: segments, identity and
//! checkpoint) and `tests/fixtures/format-vN-crashed/` (its writer was killed without
//! closing: no checkpoint) were written by `write_the_fixtures_of_this_format` below, run by
//! the build of that version, and committed. Every test works on a copy; the fixtures
//! themselves are never opened.
//!
//! Each copy is opened read-only and read-write, and every event is checked against the
//! generator that wrote it (sequence, entity, scope, kind, payload, causation); then more
//! events are appended, the store is reopened and everything is checked again, and
//! `batpak-tui verify` calls the copy clean.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use batpak::prelude::*;
use common::*;
use serde::{Deserialize, Serialize};

/// The older formats whose fixtures are committed: version 1 (the first), version 2
/// (before the hash chain) and version 3 (the chain of BLAKE3 links and steps).
const FORMATS: [u16; 3] = [1, 2, 3];
/// Events in each fixture.
const FIXTURE_EVENTS: usize = 300;
/// Events appended by the tests on top of a fixture's.
const MORE_EVENTS: usize = 60;
/// The fixtures' segment size: 300 events make 4 segments.
const SEGMENT_BYTES: u64 = 6 * 1024;
/// The events appended together by one `append_batch`.
const BATCH: std::ops::Range<usize> = 150..160;
/// Set in the child process writing the crashed fixture: the directory to write.
const CHILD_ENV: &str = "BATPAK_FIXTURE_CRASH_CHILD_DIR";

/// The payload of every fixture event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    n: u32,
    note: String,
    amount: i64,
    tags: Vec<String>,
}

/// Event `i` of the deterministic sequence (0-based; its store sequence is `i + 1`).
#[derive(Debug, Clone, PartialEq)]
struct Spec {
    coord: Coordinate,
    kind: EventKind,
    payload: Entry,
    /// The index of the event it names as its cause.
    cause: Option<usize>,
}

fn spec(i: usize) -> Spec {
    let n = i as u32;
    let coord = Coordinate::new(format!("account:{}", i % 7), format!("tenant-{}", i % 3));
    let kind = EventKind::new(2, 1 + (i % 4) as u8);
    let payload = Entry {
        n,
        note: format!("entry {i} of account {}", i % 7),
        amount: (i as i64 * 37 % 1000) - 500,
        tags: (0..i % 3).map(|t| format!("tag{t}")).collect(),
    };
    // Every fifth event is caused by the one three before it, except inside the batch,
    // whose items may only name events written before it.
    let in_batch = |j: usize| BATCH.contains(&j);
    let cause = (i % 5 == 4 && !(in_batch(i) && in_batch(i - 3))).then(|| i - 3);
    Spec {
        coord,
        kind,
        payload,
        cause,
    }
}

fn config(dir: &Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    c.segment_max_bytes = SEGMENT_BYTES;
    c
}

/// Appends events `range` of the sequence to `store`; the events of [`BATCH`] in it go in
/// one `append_batch`. `ids` holds the id of every earlier event and gains the new ones.
fn write(store: &Store, range: std::ops::Range<usize>, ids: &mut Vec<EventId>) -> TestResult {
    assert_eq!(ids.len(), range.start, "ids of every earlier event");
    let mut i = range.start;
    while i < range.end {
        if i == BATCH.start && BATCH.end <= range.end {
            let items = BATCH
                .map(|j| {
                    let s = spec(j);
                    let mut opts = AppendOptions::default();
                    if let Some(c) = s.cause {
                        opts = opts.caused_by(ids[c]);
                    }
                    BatchItem::new(&s.coord, s.kind, &s.payload).map(|b| b.with_options(opts))
                })
                .collect::<Result<Vec<_>, _>>()?;
            for r in store.append_batch(items, true)? {
                ids.push(r.id);
            }
            i = BATCH.end;
            continue;
        }
        let s = spec(i);
        let mut opts = AppendOptions::default();
        if let Some(c) = s.cause {
            opts = opts.caused_by(ids[c]);
        }
        let r = store.append_with(&s.coord, s.kind, &s.payload, opts)?;
        assert_eq!(r.sequence, i as u64 + 1);
        ids.push(r.id);
        i += 1;
    }
    Ok(())
}

/// Checks that `store` holds exactly events `0..n` of the sequence, through a full query,
/// `get` of each id and each entity's stream; returns their ids.
fn check(store: &Store, n: usize) -> Res<Vec<EventId>> {
    let events = store.query(&Region::all())?;
    assert_eq!(events.len(), n, "events in the store");
    let ids: Vec<EventId> = events.iter().map(|e| e.id).collect();
    for (i, e) in events.iter().enumerate() {
        let s = spec(i);
        assert_eq!(e.sequence, i as u64 + 1, "sequence of event {i}");
        assert_eq!(e.id.sequence(), e.sequence, "id of event {i}");
        assert_eq!(e.id.store(), store.store_id(), "store of event {i}");
        assert_eq!(e.coordinate, s.coord, "coordinate of event {i}");
        assert_eq!(e.kind, s.kind, "kind of event {i}");
        assert_eq!(e.payload::<Entry>()?, s.payload, "payload of event {i}");
        assert_eq!(
            e.causation,
            s.cause.map(|c| ids[c]),
            "causation of event {i}"
        );
        assert!(
            e.timestamp_us > 1_700_000_000_000_000,
            "timestamp of event {i}: {}",
            e.timestamp_us
        );
        let got = store
            .get(e.id)?
            .ok_or(format!("get of event {i} found nothing"))?;
        assert_eq!(got.payload, e.payload, "get of event {i}");
        assert_eq!(got.sequence, e.sequence, "get of event {i}");
    }
    for a in 0..7 {
        let entity = format!("account:{a}");
        let want: Vec<u64> = (0..n)
            .filter(|i| i % 7 == a)
            .map(|i| i as u64 + 1)
            .collect();
        let got: Vec<u64> = store.stream(&entity)?.iter().map(|e| e.sequence).collect();
        assert_eq!(got, want, "stream of {entity}");
    }
    Ok(ids)
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A copy of fixture `name` in a new temporary directory (the fixture is never opened).
fn copy_of(name: &str) -> Res<(tempfile::TempDir, PathBuf)> {
    let from = fixtures().join(name);
    let tmp = tempfile::tempdir()?;
    let to = tmp.path().join(name);
    std::fs::create_dir(&to)?;
    let mut n = 0;
    for e in std::fs::read_dir(&from)? {
        let e = e?;
        std::fs::copy(e.path(), to.join(e.file_name()))?;
        n += 1;
    }
    assert!(n >= 4, "fixture {name} holds {n} files");
    Ok((tmp, to))
}

fn verify_exit(dir: &Path) -> Res<(Option<i32>, String)> {
    tui(&["verify", &dir.display().to_string()])
}

/// The names of the files in fixture `name`, sorted.
fn fixture_files(base: &Path, name: &str) -> Res<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(base.join(name))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    Ok(names)
}

/// The fixture names: closed and crashed, of every older format.
fn every_fixture() -> Vec<String> {
    FORMATS
        .iter()
        .flat_map(|v| [format!("format-v{v}"), format!("format-v{v}-crashed")])
        .collect()
}

/// The format version in the header of the store's first segment (bytes 8..10).
fn header_version(dir: &Path) -> Res<u16> {
    Ok(*header_versions(dir)?.first().ok_or("no segment")?)
}

/// The format version in the header of every segment, in segment order.
fn header_versions(dir: &Path) -> Res<Vec<u16>> {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("seg-"))
        })
        .collect();
    segs.sort();
    segs.iter()
        .map(|p| {
            let bytes = std::fs::read(p)?;
            match bytes.get(8..10) {
                Some(v) => Ok(u16::from_le_bytes([v[0], v[1]])),
                None => Err(format!("{} has no header", p.display()).into()),
            }
        })
        .collect()
}

#[test]
fn a_format_3_store_keeps_its_chain_across_the_roll_into_this_builds_format() -> TestResult {
    for name in ["format-v3", "format-v3-crashed"] {
        let (_tmp, dir) = copy_of(name)?;
        let before = header_versions(&dir)?;
        let store = Store::open(config(&dir))?;
        let mut ids = check(&store, FIXTURE_EVENTS)?;
        // Enough events to fill the active format-3 segment and roll more than once.
        let more = FIXTURE_EVENTS..FIXTURE_EVENTS + 3 * MORE_EVENTS;
        write(&store, more.clone(), &mut ids)?;
        store.close()?;
        drop(store);
        let after = header_versions(&dir)?;
        assert!(before.iter().all(|v| *v == 3), "{name}: {before:?}");
        assert_eq!(
            after[..before.len()],
            before[..],
            "{name}: old segments keep format 3"
        );
        assert_eq!(
            after.last(),
            Some(&4),
            "{name}: new segments are format 4: {after:?}"
        );
        let (code, out) = verify_exit(&dir)?;
        assert_eq!(code, Some(0), "verify of {name} across formats: {out}");
        let store = Store::open_read_only(&dir)?;
        check(&store, more.end)?;
    }
    Ok(())
}

#[test]
fn the_fixtures_hold_only_the_files_of_a_closed_and_of_a_crashed_store_of_their_version(
) -> TestResult {
    let segs = |names: &[String]| names.iter().filter(|n| n.starts_with("seg-")).count();
    for v in FORMATS {
        let name = format!("format-v{v}");
        let closed = fixture_files(&fixtures(), &name)?;
        assert!(closed.contains(&"store.id".to_string()), "{closed:?}");
        assert!(closed.contains(&"index.ckpt".to_string()), "{closed:?}");
        assert!(segs(&closed) >= 3, "{closed:?}");
        assert_eq!(closed.len(), segs(&closed) + 2, "{closed:?}");
        let crashed = fixture_files(&fixtures(), &format!("{name}-crashed"))?;
        assert!(crashed.contains(&"store.id".to_string()), "{crashed:?}");
        assert!(segs(&crashed) >= 3, "{crashed:?}");
        assert_eq!(
            crashed.len(),
            segs(&crashed) + 1,
            "no checkpoint: {crashed:?}"
        );
        for dir in [name.clone(), format!("{name}-crashed")] {
            assert_eq!(header_version(&fixtures().join(&dir))?, v, "{dir}");
        }
    }
    Ok(())
}

#[test]
fn every_older_format_fixture_opens_read_only_with_every_event_as_written() -> TestResult {
    for name in every_fixture() {
        let (_tmp, dir) = copy_of(&name)?;
        let store = Store::open_read_only(&dir)?;
        check(&store, FIXTURE_EVENTS).map_err(|e| format!("{name}: {e}"))?;
        assert!(
            store
                .append(&Coordinate::new("x", "y"), EventKind::new(1, 1), &1u8)
                .is_err(),
            "a read-only open of {name} refuses appends"
        );
    }
    Ok(())
}

fn opens_read_write_takes_more_and_reopens_with_all(name: &str) -> TestResult {
    let (_tmp, dir) = copy_of(name)?;
    let store = Store::open(config(&dir))?;
    let mut ids = check(&store, FIXTURE_EVENTS)?;
    write(
        &store,
        FIXTURE_EVENTS..FIXTURE_EVENTS + MORE_EVENTS,
        &mut ids,
    )?;
    check(&store, FIXTURE_EVENTS + MORE_EVENTS)?;
    store.close()?;
    drop(store);
    let (code, out) = verify_exit(&dir)?;
    assert_eq!(code, Some(0), "verify of {name} after appending: {out}");
    let store = Store::open(config(&dir))?;
    check(&store, FIXTURE_EVENTS + MORE_EVENTS)?;
    store.close()?;
    drop(store);
    let store = Store::open_read_only(&dir)?;
    check(&store, FIXTURE_EVENTS + MORE_EVENTS)?;
    Ok(())
}

#[test]
fn every_older_format_fixture_opens_read_write_takes_more_events_and_reopens_with_all_of_them(
) -> TestResult {
    for name in every_fixture() {
        opens_read_write_takes_more_and_reopens_with_all(&name)
            .map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}

#[test]
fn verify_calls_a_copy_of_every_older_format_fixture_clean() -> TestResult {
    for name in every_fixture() {
        let (_tmp, dir) = copy_of(&name)?;
        let (code, out) = verify_exit(&dir)?;
        assert_eq!(code, Some(0), "verify of {name}: {out}");
        assert!(out.contains("clean"), "verify of {name}: {out}");
    }
    Ok(())
}

/// Copies the files of a store (identity, segments and, when `checkpoint`, the index
/// checkpoint; nothing else) from `from` into the new directory `to`.
fn keep_store_files(from: &Path, to: &Path, checkpoint: bool) -> TestResult {
    if to.exists() {
        std::fs::remove_dir_all(to)?;
    }
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let keep = name == "store.id"
            || (name.starts_with("seg-") && name.ends_with(".bpk"))
            || (checkpoint && name == "index.ckpt");
        if keep && e.file_type()?.is_file() {
            std::fs::copy(e.path(), to.join(&name))?;
        }
    }
    Ok(())
}

/// Runs only inside the child the fixture writer starts: writes the sequence, syncs, says
/// so and waits to be killed.
#[test]
fn fixture_crash_child_entry_point() -> TestResult {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return Ok(());
    };
    println!();
    let store = Store::open(config(Path::new(&dir)))?;
    write(&store, 0..FIXTURE_EVENTS, &mut Vec::new())?;
    store.sync()?;
    println!("synced");
    std::thread::sleep(Duration::from_secs(600));
    Ok(())
}

/// Writes both fixtures of the format this build writes, `format-vN` and
/// `format-vN-crashed`, into `tests/fixtures/` (or `BATPAK_FIXTURE_OUT`). Run by the last
/// build of a format before it changes: `cargo test --release --features testkit --test
/// old_format -- --ignored write_the_fixtures_of_this_format`, then add N to `FORMATS`.
#[test]
#[ignore = "writes the committed fixtures; run by hand"]
fn write_the_fixtures_of_this_format() -> TestResult {
    let out = std::env::var("BATPAK_FIXTURE_OUT").map_or_else(|_| fixtures(), PathBuf::from);
    let work = tempfile::tempdir()?;

    let closed = work.path().join("closed");
    let store = Store::open(config(&closed))?;
    write(&store, 0..FIXTURE_EVENTS, &mut Vec::new())?;
    store.close()?;
    drop(store);
    let name = format!("format-v{}", header_version(&closed)?);
    keep_store_files(&closed, &out.join(&name), true)?;

    let crashed = work.path().join("crashed");
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "fixture_crash_child_entry_point",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &crashed)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut synced = false;
    for line in BufReader::new(stdout).lines() {
        if line? == "synced" {
            synced = true;
            break;
        }
        assert!(Instant::now() < deadline, "the child did not sync in time");
    }
    child.kill()?; // SIGKILL: no close, no checkpoint
    child.wait()?;
    assert!(synced, "the child exited before syncing");
    assert!(
        !crashed.join("index.ckpt").exists(),
        "a killed writer left a checkpoint"
    );
    let crashed_name = format!("{name}-crashed");
    keep_store_files(&crashed, &out.join(&crashed_name), false)?;

    for name in [name, crashed_name] {
        let files = fixture_files(&out, &name)?;
        let bytes: u64 = files
            .iter()
            .map(|f| std::fs::metadata(out.join(&name).join(f)).map(|m| m.len()))
            .sum::<Result<u64, _>>()?;
        println!("{name}: {files:?}, {bytes} bytes");
    }
    Ok(())
}
