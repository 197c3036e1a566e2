//! Recovery: torn tails, corruption, salvage, foreign and newer files, stale checkpoints.

mod common;

use std::path::{Path, PathBuf};

use batpak::codec::frame::{self, Base, Frame};
use batpak::codec::header::{FileHeader, FileKind, HEADER_LEN};
use batpak::prelude::*;
use batpak::store::CheckpointStatus;
use common::*;

/// Writes `n` single-event appends and closes cleanly; returns (sequence, payload) pairs.
fn populate(dir: &Path, n: u32) -> Res<Vec<(u64, String)>> {
    let store = Store::open(StoreConfig::new(dir))?;
    let mut out = Vec::new();
    for i in 0..n {
        let payload = format!("event number {i} with some text");
        let r = store.append(
            &Coordinate::new(format!("e{}", i % 5), "s"),
            EventKind::new(1, 1),
            &payload,
        )?;
        out.push((r.sequence, payload));
    }
    store.close()?;
    Ok(out)
}

fn seg(dir: &Path, no: u32) -> PathBuf {
    dir.join(format!("seg-{no:010}.bpk"))
}

/// (start, end, sequence) of every event frame in a segment file.
fn event_frames(bytes: &[u8]) -> Res<Vec<(usize, usize, u64)>> {
    let h = FileHeader::decode(bytes, FileKind::Segment).map_err(|e| format!("{e}"))?;
    let base = Base {
        seq: h.base_seq,
        ts: h.base_ts,
    };
    let mut pos = HEADER_LEN;
    let mut out = Vec::new();
    while pos < bytes.len() {
        let (f, n) = frame::decode(&bytes[pos..], &base).map_err(|e| format!("{e}"))?;
        if let Frame::Event(h, ..) = f {
            out.push((pos, pos + n, h.seq));
        }
        pos += n;
    }
    Ok(out)
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        if e.file_type()?.is_file() {
            std::fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(())
}

/// Truncates segment 1 of `dir` to `len` bytes (a torn write, or a crash mid-batch).
fn cut_segment(dir: &Path, len: u64) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(seg(dir, 1))?
        .set_len(len)
}

/// A copy of the store in `from` at `to` as a crash before the close would leave it: its
/// segment 1 cut to `len` bytes and no checkpoint (the close writes it after its sync).
fn copy_cut(from: &Path, to: &Path, len: u64) -> std::io::Result<()> {
    copy_dir(from, to)?;
    std::fs::remove_file(to.join("index.ckpt"))?;
    cut_segment(to, len)
}

fn read_all(store: &Store) -> Res<Vec<(u64, String)>> {
    store
        .query(&Region::all())?
        .into_iter()
        .map(|e| Ok((e.sequence, e.payload::<String>()?)))
        .collect()
}

#[test]
fn a_tail_truncated_at_every_byte_of_the_last_frames_reopens_with_every_earlier_event_intact(
) -> TestResult {
    let src = tempfile::tempdir()?;
    let written = populate(src.path(), 40)?;
    let bytes = std::fs::read(seg(src.path(), 1))?;
    let frames = event_frames(&bytes)?;
    let from = frames[frames.len() - 5].0;
    let work = tempfile::tempdir()?;
    for cut in from..=bytes.len() {
        let dir = work.path().join(format!("cut-{cut}"));
        copy_cut(src.path(), &dir, cut as u64)?;
        let store = Store::open(StoreConfig::new(&dir))?;
        let complete = frames.iter().filter(|f| f.1 <= cut).count();
        assert_eq!(
            read_all(&store)?,
            written[..complete].to_vec(),
            "cut at byte {cut}"
        );
        drop(store);
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}

#[test]
fn a_zero_filled_tail_is_cut_back_and_reported() -> TestResult {
    let dir = tempfile::tempdir()?;
    let written = populate(dir.path(), 20)?;
    let path = seg(dir.path(), 1);
    let mut bytes = std::fs::read(&path)?;
    let good = bytes.len() as u64;
    bytes.extend(vec![0u8; 4096]);
    std::fs::write(&path, &bytes)?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    assert_eq!(read_all(&store)?, written);
    let cut = &store.recovery_report().truncated;
    assert_eq!(cut.len(), 1);
    assert_eq!((cut[0].offset, cut[0].bytes), (good, 4096));
    assert_eq!(std::fs::metadata(&path)?.len(), good);
    Ok(())
}

#[test]
fn a_flipped_byte_mid_log_refuses_to_open_naming_the_segment_and_offset() -> TestResult {
    let dir = tempfile::tempdir()?;
    populate(dir.path(), 40)?;
    let path = seg(dir.path(), 1);
    let mut bytes = std::fs::read(&path)?;
    let frames = event_frames(&bytes)?;
    let (start, end, _) = frames[20];
    bytes[(start + end) / 2] ^= 0x40;
    std::fs::write(&path, &bytes)?;
    let err = Store::open(StoreConfig::new(dir.path()))
        .err()
        .ok_or("opened a corrupt store")?;
    assert!(
        matches!(&err, OpenError::Corrupt { offset, .. } if *offset == start as u64),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("seg-0000000001.bpk") && msg.contains(&format!("offset {start}")),
        "{msg}"
    );
    Ok(())
}

#[test]
fn salvage_keeps_everything_before_a_bad_frame_and_moves_the_rest_aside() -> TestResult {
    let dir = tempfile::tempdir()?;
    let written = populate(dir.path(), 40)?;
    let path = seg(dir.path(), 1);
    let mut bytes = std::fs::read(&path)?;
    let frames = event_frames(&bytes)?;
    let (start, _, _) = frames[20];
    bytes[start + 6] ^= 0x01;
    std::fs::write(&path, &bytes)?;
    let store = Store::open_with(StoreConfig::new(dir.path()), OpenOptions::salvage())?;
    assert_eq!(read_all(&store)?, written[..20].to_vec());
    let moved = &store.recovery_report().salvaged;
    assert_eq!(moved.len(), 1);
    let tail = std::fs::read(&moved[0])?;
    assert_eq!(
        tail,
        bytes[start..].to_vec(),
        "the salvaged bytes are exactly the rest of the segment"
    );
    let r = store.append(
        &Coordinate::new("e", "s"),
        EventKind::new(1, 1),
        &"after salvage".to_string(),
    )?;
    store.close()?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    assert_eq!(store.get(r.id)?.map(|e| e.sequence), Some(21));
    Ok(())
}

#[test]
fn a_segment_from_another_store_is_refused_naming_the_file() -> TestResult {
    let a = tempfile::tempdir()?;
    let b = tempfile::tempdir()?;
    let mut cfg = small_config(a.path());
    cfg.segment_max_bytes = 4096;
    let store = Store::open(cfg.clone())?;
    for i in 0..1000u32 {
        store.append(&Coordinate::new("e", "s"), EventKind::new(1, 1), &i)?;
    }
    assert!(store.stats().segments.len() >= 3);
    store.close()?;
    populate(b.path(), 5)?;
    // Without the checkpoint, which would already refuse the changed length.
    std::fs::remove_file(a.path().join("index.ckpt"))?;
    std::fs::copy(seg(b.path(), 1), seg(a.path(), 2))?;
    let err = Store::open(cfg).err().ok_or("opened")?;
    assert!(matches!(err, OpenError::ForeignFile { .. }), "{err}");
    assert!(err.to_string().contains("seg-0000000002.bpk"), "{err}");
    Ok(())
}

#[test]
fn a_segment_of_a_newer_format_version_is_refused_with_a_clear_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    populate(dir.path(), 3)?;
    let path = seg(dir.path(), 1);
    let mut bytes = std::fs::read(&path)?;
    let mut h = FileHeader::decode(&bytes, FileKind::Segment).map_err(|e| format!("{e}"))?;
    h.version += 1;
    bytes[..HEADER_LEN].copy_from_slice(&h.encode());
    std::fs::write(&path, &bytes)?;
    let err = Store::open(StoreConfig::new(dir.path()))
        .err()
        .ok_or("opened")?;
    assert!(
        matches!(
            err,
            OpenError::UnsupportedVersion {
                found: 5,
                supported: 4,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("seg-0000000001.bpk"), "{err}");
    Ok(())
}

#[test]
fn a_clean_close_leaves_a_checkpoint_the_next_open_uses() -> TestResult {
    let dir = tempfile::tempdir()?;
    let written = populate(dir.path(), 100)?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    assert_eq!(store.recovery_report().checkpoint, CheckpointStatus::Loaded);
    assert_eq!(read_all(&store)?, written);
    Ok(())
}

#[test]
fn a_segment_shorter_than_its_checkpoint_refuses_the_open_and_a_read_only_open_reports_it(
) -> TestResult {
    let dir = tempfile::tempdir()?;
    let written = populate(dir.path(), 30)?;
    let path = seg(dir.path(), 1);
    let frames = event_frames(&std::fs::read(&path)?)?;
    cut_segment(dir.path(), frames[9].1 as u64)?;
    let err = Store::open(StoreConfig::new(dir.path()))
        .err()
        .ok_or("an open accepted a segment shorter than its checkpoint")?;
    let msg = err.to_string();
    assert!(matches!(err, OpenError::Lost { .. }), "{msg}");
    assert!(
        msg.contains("seg-0000000001.bpk") && msg.contains("synced bytes"),
        "{msg}"
    );
    assert_eq!(
        std::fs::metadata(&path)?.len(),
        frames[9].1 as u64,
        "the refused open changed the file"
    );
    let ro = Store::open_read_only(dir.path())?;
    assert!(matches!(
        ro.recovery_report().checkpoint,
        CheckpointStatus::Stale(_)
    ));
    assert_eq!(
        ro.recovery_report().lost.len(),
        1,
        "{:?}",
        ro.recovery_report()
    );
    assert_eq!(read_all(&ro)?, written[..10].to_vec());
    drop(ro);
    let salvaged = Store::open_with(StoreConfig::new(dir.path()), OpenOptions::salvage())?;
    assert_eq!(read_all(&salvaged)?, written[..10].to_vec());
    drop(salvaged);
    let again = Store::open(StoreConfig::new(dir.path()))?;
    assert_eq!(
        read_all(&again)?,
        written[..10].to_vec(),
        "after salvage the store opens"
    );
    Ok(())
}

#[test]
fn a_damaged_checkpoint_is_detected_and_the_index_rebuilt() -> TestResult {
    let dir = tempfile::tempdir()?;
    let written = populate(dir.path(), 30)?;
    let ck = dir.path().join("index.ckpt");
    let mut bytes = std::fs::read(&ck)?;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&ck, &bytes)?;
    assert_rebuilt_from_damaged_checkpoint(dir.path(), &written)
}

/// Opens `dir`, expecting the checkpoint to be reported damaged and every event rebuilt.
fn assert_rebuilt_from_damaged_checkpoint(dir: &Path, written: &[(u64, String)]) -> TestResult {
    let store = Store::open(StoreConfig::new(dir))?;
    let status = &store.recovery_report().checkpoint;
    assert!(matches!(status, CheckpointStatus::Damaged(_)), "{status:?}");
    assert_eq!(read_all(&store)?, written);
    Ok(())
}

#[test]
fn a_checkpoint_from_another_store_is_not_used() -> TestResult {
    let a = tempfile::tempdir()?;
    let b = tempfile::tempdir()?;
    let written = populate(a.path(), 10)?;
    populate(b.path(), 10)?;
    std::fs::copy(b.path().join("index.ckpt"), a.path().join("index.ckpt"))?;
    assert_rebuilt_from_damaged_checkpoint(a.path(), &written)
}

#[test]
fn a_read_only_open_never_truncates_a_torn_tail() -> TestResult {
    let dir = tempfile::tempdir()?;
    let written = populate(dir.path(), 10)?;
    let path = seg(dir.path(), 1);
    let mut bytes = std::fs::read(&path)?;
    bytes.extend([0x55u8; 100]);
    std::fs::write(&path, &bytes)?;
    let store = Store::open_read_only(dir.path())?;
    assert_eq!(read_all(&store)?, written);
    assert_eq!(store.recovery_report().truncated.len(), 1);
    drop(store);
    assert_eq!(std::fs::read(&path)?, bytes, "the file is untouched");
    Ok(())
}

#[test]
fn a_batch_cut_anywhere_by_a_crash_is_all_or_nothing_after_reopen() -> TestResult {
    let src = tempfile::tempdir()?;
    let (before, batch_start, batch_end) = {
        let store = Store::open(StoreConfig::new(src.path()))?;
        let c = Coordinate::new("acct", "s");
        let before = store.append(&c, EventKind::new(1, 1), &"before".to_string())?;
        let items = (0..5)
            .map(|i| {
                BatchItem::new(
                    &c,
                    EventKind::new(1, 2),
                    &format!("batch item {i} {}", "x".repeat(40)),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let receipts = store.append_batch(items, true)?;
        store.close()?;
        let frames = event_frames(&std::fs::read(seg(src.path(), 1))?)?;
        let first = frames
            .iter()
            .find(|f| f.2 == receipts[0].sequence)
            .ok_or("batch frame")?
            .0;
        let last = frames
            .iter()
            .find(|f| f.2 == receipts[4].sequence)
            .ok_or("batch frame")?
            .1;
        (before, first, last)
    };
    let work = tempfile::tempdir()?;
    for cut in (batch_start + 1..batch_end).step_by(7) {
        let dir = work.path().join(format!("cut-{cut}"));
        copy_cut(src.path(), &dir, cut as u64)?;
        let store = Store::open(StoreConfig::new(&dir))?;
        let events = store.stream("acct")?;
        assert_eq!(
            events.len(),
            1,
            "cut at {cut}: no part of the batch survives"
        );
        assert_eq!(events[0].id, before.id);
        drop(store);
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}

#[test]
fn a_damaged_header_in_front_of_frames_is_refused_not_removed() -> TestResult {
    let dir = tempfile::tempdir()?;
    populate(dir.path(), 20)?;
    let path = seg(dir.path(), 1);
    let mut bytes = std::fs::read(&path)?;
    bytes[10] ^= 0x40;
    std::fs::write(&path, &bytes)?;
    let err = Store::open(StoreConfig::new(dir.path()))
        .err()
        .ok_or("opened")?;
    assert!(err.to_string().contains("seg-0000000001.bpk"), "{err}");
    assert!(path.exists(), "a segment holding events is never removed");
    Ok(())
}

#[test]
fn a_store_file_that_is_a_symbolic_link_is_refused_and_its_target_left_alone() -> TestResult {
    let dir = tempfile::tempdir()?;
    let outside = tempfile::tempdir()?;
    populate(dir.path(), 10)?;
    // The checkpoint and the lock file replaced by links to files elsewhere.
    for name in ["index.ckpt", "batpak.lock"] {
        let target = outside.path().join(name);
        std::fs::write(&target, b"not yours")?;
        let link = dir.path().join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&target, &link)?;
        let err = Store::open(StoreConfig::new(dir.path()))
            .err()
            .ok_or("opened")?;
        assert!(matches!(err, OpenError::Symlink { .. }), "{err}");
        assert!(err.to_string().contains(name), "{err}");
        let ro = Store::open_read_only(dir.path())
            .err()
            .ok_or("opened read-only")?;
        assert!(matches!(ro, OpenError::Symlink { .. }), "{ro}");
        assert_eq!(
            std::fs::read(&target)?,
            b"not yours",
            "the target is untouched"
        );
        std::fs::remove_file(&link)?;
    }
    Ok(())
}

#[test]
fn files_the_store_does_not_know_are_ignored_and_never_touched() -> TestResult {
    let dir = tempfile::tempdir()?;
    let written = populate(dir.path(), 30)?;
    let outside = tempfile::tempdir()?;
    std::fs::write(outside.path().join("target"), b"keep")?;
    std::fs::write(dir.path().join("notes.txt"), b"mine")?;
    std::fs::write(dir.path().join("segment.bak"), b"old")?;
    std::fs::create_dir(dir.path().join("extra"))?;
    std::os::unix::fs::symlink(outside.path().join("target"), dir.path().join("link"))?;
    {
        let store = Store::open(StoreConfig::new(dir.path()))?;
        assert_eq!(read_all(&store)?, written);
        store.compact(&batpak::store::RetentionPolicy::default())?;
        store.close()?;
    }
    assert_eq!(std::fs::read(dir.path().join("notes.txt"))?, b"mine");
    assert_eq!(std::fs::read(dir.path().join("segment.bak"))?, b"old");
    assert!(dir.path().join("extra").is_dir());
    assert_eq!(std::fs::read(outside.path().join("target"))?, b"keep");
    assert!(std::fs::symlink_metadata(dir.path().join("link"))?
        .file_type()
        .is_symlink());
    Ok(())
}

/// Appends until the store in `dir` has at least `segments` segment files.
fn grow_to(store: &Store, segments: usize, from: u32) -> Res<u32> {
    let mut i = from;
    while store.stats().segments.len() < segments {
        store.append(
            &Coordinate::new(format!("e{}", i % 5), "s"),
            EventKind::new(1, 1),
            &format!("event number {i} with some text"),
        )?;
        i += 1;
    }
    Ok(i)
}

#[test]
fn salvaging_a_hole_twice_keeps_every_moved_file_and_the_store_verifies_clean_between() -> TestResult
{
    let dir = tempfile::tempdir()?;
    let mut cfg = small_config(dir.path());
    cfg.segment_max_bytes = 4096;
    let store = Store::open(cfg.clone())?;
    let mut i = grow_to(&store, 5, 0)?;
    store.close()?;
    drop(store);
    for round in 0..2 {
        std::fs::remove_file(seg(dir.path(), 3))?;
        let err = Store::open(cfg.clone())
            .err()
            .ok_or("a hole was accepted")?;
        assert!(err.to_string().contains("seg-0000000003.bpk"), "{err}");
        let salvaged = Store::open_with(cfg.clone(), OpenOptions::salvage())?;
        assert!(!salvaged.recovery_report().lost.is_empty());
        i = grow_to(&salvaged, 5, i)?;
        salvaged.close()?;
        drop(salvaged);
        let report = batpak::store::verify(dir.path())?;
        assert!(report.is_clean(), "round {round}: {:?}", report.problems);
        let store = Store::open(cfg.clone())?;
        let events = store.query(&Region::all())?;
        let seqs: Vec<u64> = events.iter().map(|e| e.sequence).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "round {round}: sequences go back"
        );
        drop(store);
    }
    let moved = std::fs::read_dir(dir.path().join("salvaged"))?.count();
    assert!(
        moved >= 4,
        "the second salvage replaced files the first moved aside: {moved} left"
    );
    Ok(())
}
