//! A kill between creating a new segment and writing its header: the writer creates the
//! next segment before it seals the full one, so the directory holds an unsealed segment
//! followed by a 0-byte file, and no checkpoint (the writer never closed). That is an
//! ordinary crash state: verify must call it clean, the open must succeed with every
//! event, and after the store rolls into new segments verify must still be clean (no
//! numbering gap where the open removed the empty file).
//!
//! The state is a closed store without its checkpoint, plus the 0-byte next segment.

use super::*;

#[test]
fn a_zero_byte_segment_left_by_a_kill_during_a_roll_verifies_clean_before_and_after_the_next_rolls(
) -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("store");
    segmented_store(&dir)?;
    std::fs::remove_file(dir.join("index.ckpt"))?;
    let events = Store::open_read_only(&dir)?.stats().events;
    // The control: the crashed store is clean.
    let (code, out) = verify_cli(&dir)?;
    assert_eq!(code, Some(0), "the store without its checkpoint: {out}");
    let newest = *seg_numbers(&dir)?.last().ok_or("no segments")?;
    let empty = seg_name(newest + 1);
    std::fs::File::create(dir.join(&empty))?;

    let mut f = Findings::default();
    let (code, out) = verify_cli(&dir)?;
    f.expect(code == Some(0), || {
        format!(
            "verify of the crash state exits {code:?}, not 0: {}",
            out.trim()
        )
    });
    let store = Store::open(small_segments(&dir))?;
    assert_eq!(store.stats().events, events, "the open keeps every event");
    let segs_before = seg_numbers(&dir)?.len();
    let mut n = events;
    // Enough for at least two rolls of 16 KiB segments.
    while seg_numbers(&dir)?.len() < segs_before + 2 {
        for _ in 0..20 {
            append_nth(&store, n, AppendOptions::default())?;
            n += 1;
        }
    }
    store.close()?;
    drop(store);
    let (code, out) = verify_cli(&dir)?;
    f.expect(code == Some(0), || {
        format!(
            "verify after rolling into new segments exits {code:?}, not 0 (segments now {:?}): {}",
            seg_numbers(&dir).unwrap_or_default(),
            out.trim()
        )
    });
    let store = Store::open_read_only(&dir)?;
    f.expect(store.stats().events == n, || {
        format!(
            "{} events after reopening, {n} written",
            store.stats().events
        )
    });
    f.assert_none(&format!("0-byte {empty}"));
    Ok(())
}
