//! Missing or truncated segments: a store of several segments, closed cleanly (so its
//! checkpoint proves what was synced), loses a segment or the end of its newest one. The
//! read-write open must refuse, naming the file and pointing to salvage; `batpak-tui
//! verify` must exit 1 naming the file; the read-only open must refuse naming it or open
//! with the loss in its recovery report. The same for a store whose writer was killed
//! (no checkpoint) and lost its first segment; and after a middle hole nothing may be
//! appended.
//!
//! What the fix must provide: continuity checks on open (segment numbers and sequences
//! continue across files, nothing the checkpoint covers is missing or shorter), an
//! `OpenError` naming the file and `salvage`, and a `RecoveryReport` that names what a
//! read-only open found missing.

use super::*;

/// What is done to the store.
#[derive(Debug, Clone, Copy)]
enum Damage {
    DeleteFirst,
    DeleteMiddle,
    DeleteNewest,
    /// Cut this many bytes off the newest segment.
    TruncateNewestBy(u64),
    TruncateNewestToHalf,
    /// Cut the newest segment to this length.
    TruncateNewestTo(u64),
    /// Overwrite the last this-many bytes of the newest segment with zeros.
    ZeroNewestTail(u64),
}

/// Applies `damage` to the store in `dir`; the name of the file it hit.
fn apply(dir: &Path, damage: Damage) -> Res<String> {
    let segs = seg_numbers(dir)?;
    let (first, newest) = (segs[0], segs[segs.len() - 1]);
    let pick = |no: u32| (seg_name(no), dir.join(seg_name(no)));
    match damage {
        Damage::DeleteFirst | Damage::DeleteMiddle | Damage::DeleteNewest => {
            let no = match damage {
                Damage::DeleteFirst => first,
                Damage::DeleteMiddle => segs[segs.len() / 2],
                _ => newest,
            };
            let (name, path) = pick(no);
            std::fs::remove_file(path)?;
            Ok(name)
        }
        Damage::TruncateNewestBy(_)
        | Damage::TruncateNewestToHalf
        | Damage::TruncateNewestTo(_) => {
            let (name, path) = pick(newest);
            let len = std::fs::metadata(&path)?.len();
            let to = match damage {
                Damage::TruncateNewestBy(n) => len - n,
                Damage::TruncateNewestToHalf => len / 2,
                Damage::TruncateNewestTo(n) => n,
                _ => len,
            };
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)?
                .set_len(to)?;
            Ok(name)
        }
        Damage::ZeroNewestTail(n) => {
            let (name, path) = pick(newest);
            let mut bytes = std::fs::read(&path)?;
            let len = bytes.len();
            bytes[len - n as usize..].fill(0);
            std::fs::write(&path, &bytes)?;
            Ok(name)
        }
    }
}

/// Checks what verify, the read-only open and the read-write open say about `dir`, whose
/// file `name` lost data (the directory is checked in that order: the first two write
/// nothing).
fn expect_refused(dir: &Path, name: &str, what: &str) -> TestResult {
    let mut f = Findings::default();
    let (code, out) = verify_cli(dir)?;
    f.expect(code == Some(1), || {
        format!("verify exits {code:?}, not 1: {}", out.trim())
    });
    f.expect(names_problem(&out, name), || {
        format!("verify names no problem with {name}: {}", out.trim())
    });
    match Store::open_read_only(dir) {
        Err(e) => f.expect(e.to_string().contains(name), || {
            format!("the read-only open fails without naming {name}: {e}")
        }),
        Ok(store) => {
            let report = format!("{:?}", store.recovery_report());
            f.expect(report.contains(name), || {
                format!(
                    "the read-only open succeeds ({} events) and its recovery report does not \
                     name {name}: {report}",
                    store.stats().events
                )
            });
        }
    }
    match Store::open(small_segments(dir)) {
        Err(e) => {
            let msg = e.to_string();
            f.expect(msg.contains(name) && msg.contains("salvage"), || {
                format!("the open fails, but without naming {name} and salvage: {msg}")
            });
        }
        Ok(store) => f.expect(false, || {
            format!(
                "the open succeeds with {} events; recovery report: {:?}",
                store.stats().events,
                store.recovery_report()
            )
        }),
    }
    f.assert_none(what);
    Ok(())
}

fn damaged_store_is_refused(damage: Damage) -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("store");
    segmented_store(&dir)?;
    let name = apply(&dir, damage)?;
    expect_refused(&dir, &name, &format!("{damage:?} ({name})"))
}

#[test]
fn deleting_the_first_segment_refuses_the_open_naming_the_file() -> TestResult {
    damaged_store_is_refused(Damage::DeleteFirst)
}

#[test]
fn deleting_a_middle_segment_refuses_the_open_naming_the_file() -> TestResult {
    damaged_store_is_refused(Damage::DeleteMiddle)
}

#[test]
fn deleting_the_newest_segment_refuses_the_open_naming_the_file() -> TestResult {
    damaged_store_is_refused(Damage::DeleteNewest)
}

#[test]
fn cutting_100_bytes_off_the_newest_segment_refuses_the_open_naming_the_file() -> TestResult {
    damaged_store_is_refused(Damage::TruncateNewestBy(100))
}

#[test]
fn cutting_the_newest_segment_to_half_refuses_the_open_naming_the_file() -> TestResult {
    damaged_store_is_refused(Damage::TruncateNewestToHalf)
}

#[test]
fn cutting_the_newest_segment_to_its_header_refuses_the_open_naming_the_file() -> TestResult {
    damaged_store_is_refused(Damage::TruncateNewestTo(64))
}

#[test]
fn cutting_the_newest_segment_to_0_bytes_refuses_the_open_naming_the_file() -> TestResult {
    damaged_store_is_refused(Damage::TruncateNewestTo(0))
}

#[test]
fn zeroing_the_last_4_kib_of_the_newest_segment_refuses_the_open_naming_the_file() -> TestResult {
    damaged_store_is_refused(Damage::ZeroNewestTail(4096))
}

/// The child: fills a store of 16 KiB segments, makes it durable, says `synced` and
/// waits to be killed.
pub fn durable_writer(dir: &Path) -> TestResult {
    let store = Store::open(small_segments(dir))?;
    let n = fill_segments(&store, dir)?;
    append_nth(&store, n, AppendOptions::default().durable())?;
    println!("synced");
    std::thread::sleep(Duration::from_secs(120));
    drop(store);
    Ok(())
}

#[test]
fn a_killed_writer_s_store_missing_its_first_segment_is_refused_and_fails_verify() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("store");
    let mut kid = Kid::start("durable-writer", &dir)?;
    kid.wait_for("synced", Duration::from_secs(60))?;
    kid.kill()?; // SIGKILL: no close, no checkpoint
    assert!(
        !dir.join("index.ckpt").exists(),
        "a killed writer left a checkpoint"
    );
    assert!(seg_numbers(&dir)?.len() >= 4);
    let name = apply(&dir, Damage::DeleteFirst)?;
    let mut f = Findings::default();
    let (code, out) = verify_cli(&dir)?;
    f.expect(code == Some(1), || {
        format!("verify exits {code:?}, not 1: {}", out.trim())
    });
    f.expect(names_problem(&out, &name), || {
        format!("verify names no problem with {name}: {}", out.trim())
    });
    match Store::open(small_segments(&dir)) {
        Err(e) => {
            let msg = e.to_string();
            f.expect(msg.contains(&name) && msg.contains("salvage"), || {
                format!("the open fails, but without naming {name} and salvage: {msg}")
            });
        }
        Ok(store) => f.expect(false, || {
            format!(
                "the open succeeds with {} events, the first at sequence {:?}",
                store.stats().events,
                store
                    .query(&Region::all())
                    .ok()
                    .and_then(|e| e.first().map(|e| e.sequence))
            )
        }),
    }
    f.assert_none("no checkpoint, first segment deleted");
    Ok(())
}

#[test]
fn after_a_middle_hole_the_open_refuses_and_nothing_is_appended() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("store");
    segmented_store(&dir)?;
    let name = apply(&dir, Damage::DeleteMiddle)?;
    let before: Vec<(PathBuf, u64)> = file_sizes(&dir)?
        .into_iter()
        .filter(|(p, _)| p.to_string_lossy().ends_with(".bpk"))
        .collect();
    let appended = match Store::open(small_segments(&dir)) {
        Err(_) => None,
        Ok(store) => {
            let r = append_nth(&store, 1_000_000, AppendOptions::default().durable());
            store.close()?;
            Some(r.map(|r| r.sequence).map_err(|e| e.to_string()))
        }
    };
    let after: Vec<(PathBuf, u64)> = file_sizes(&dir)?
        .into_iter()
        .filter(|(p, _)| p.to_string_lossy().ends_with(".bpk"))
        .collect();
    let mut f = Findings::default();
    f.expect(appended.is_none(), || {
        format!("the open accepted the store missing {name}; an append then returned {appended:?}")
    });
    f.expect(before == after, || {
        format!("the segment files changed: {before:?} -> {after:?}")
    });
    f.assert_none("middle hole");
    Ok(())
}
