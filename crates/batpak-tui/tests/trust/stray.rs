//! One stray file named `seg-4294967295.bpk` in a healthy store: garbage bytes or a copy
//! of a real segment (in a store closed cleanly), a real segment's header alone or an
//! empty file (in a store a crashed writer left, no checkpoint).
//! `batpak-tui verify` (run under a 1 GiB address-space limit, like every verify here)
//! must finish by itself and exit 1 naming the file (not be killed, not abort on a failed
//! allocation); the open must refuse naming the file, rather than accept it (today the header alone is accepted, the
//! next segment number wraps to `seg-0000000000.bpk` and a later roll poisons the store).
//! An empty stray file may instead be removed like the empty newest file of a crashed
//! roll, as long as the store then keeps working.

use super::*;

const STRAY: &str = "seg-4294967295.bpk";

/// The first 300 characters of `s`, for messages.
fn short(s: &str) -> String {
    s.trim().chars().take(300).collect()
}

/// Where the stray file goes.
#[derive(Clone, Copy, PartialEq)]
enum Layout {
    /// A store closed cleanly: checkpoint, newest segment active.
    Closed,
    /// A store a crashed writer left: newest segment unsealed, no checkpoint.
    Crashed,
}

fn stray_file_is_refused(
    layout: Layout,
    contents: impl FnOnce(&Path) -> Res<Vec<u8>>,
    what: &str,
) -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("store");
    let events = match layout {
        Layout::Closed => segmented_store(&dir)?,
        Layout::Crashed => crashed_store(&dir)?,
    };
    // The control: the healthy store verifies clean under the same limit.
    let (code, out) = verify_cli(&dir)?;
    assert_eq!(
        code,
        Some(0),
        "the healthy store under the limit: {}",
        short(&out)
    );
    let bytes = contents(&dir)?;
    let empty = bytes.is_empty();
    std::fs::write(dir.join(STRAY), bytes)?;

    let mut f = Findings::default();
    let (code, out) = verify_cli(&dir)?;
    f.expect(code == Some(1), || {
        format!(
            "verify under a 1 GiB address-space limit ends with {code:?}, not exit 1: {}",
            short(&out)
        )
    });
    f.expect(names_problem(&out, STRAY), || {
        format!("verify names no problem with {STRAY}: {}", short(&out))
    });
    match Store::open(small_segments(&dir)) {
        Err(e) => f.expect(e.to_string().contains(STRAY), || {
            format!("the open fails without naming {STRAY}: {e}")
        }),
        Ok(store) => {
            // Roll twice and see what the accepted file does to the store.
            let segs = seg_numbers(&dir)?;
            let mut failed = None;
            let mut n = events;
            while failed.is_none()
                && seg_numbers(&dir)?.len() < segs.len() + 2
                && n < events + 3_000
            {
                if let Err(e) = append_nth(&store, n, AppendOptions::default().durable()) {
                    failed = Some(e.to_string());
                }
                n += 1;
            }
            let now = seg_numbers(&dir)?;
            let closed = store.close().map(|_| ()).map_err(|e| e.to_string());
            drop(store);
            let (code, out) = verify_cli(&dir)?;
            let kept_working = failed.is_none() && closed.is_ok() && code == Some(0);
            f.expect(empty && !dir.join(STRAY).exists() && kept_working, || {
                format!(
                    "the open accepts the store with {STRAY}; rolling twice from segments \
                     {segs:?} made {now:?}; appends: {}; close: {closed:?}; verify then exits \
                     {code:?}: {}",
                    failed.unwrap_or_else(|| "went on".into()),
                    short(&out)
                )
            });
        }
    }
    f.assert_none(what);
    Ok(())
}

#[test]
fn a_stray_seg_4294967295_of_garbage_bytes_fails_verify_within_bounded_memory_and_the_open(
) -> TestResult {
    stray_file_is_refused(
        Layout::Closed,
        |_| {
            Ok((0..4096u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect())
        },
        "garbage seg-4294967295.bpk",
    )
}

#[test]
fn a_stray_seg_4294967295_copied_from_a_real_segment_fails_verify_within_bounded_memory_and_the_open(
) -> TestResult {
    stray_file_is_refused(
        Layout::Closed,
        |dir| Ok(std::fs::read(dir.join(seg_name(1)))?),
        "copied seg-4294967295.bpk",
    )
}

#[test]
fn a_stray_seg_4294967295_holding_a_real_segment_header_is_refused_not_accepted_and_rolled_into(
) -> TestResult {
    stray_file_is_refused(
        Layout::Crashed,
        |dir| Ok(std::fs::read(dir.join(seg_name(1)))?[..64].to_vec()),
        "header-only seg-4294967295.bpk",
    )
}

#[test]
fn an_empty_stray_seg_4294967295_is_refused_or_removed_without_wrapping_the_segment_numbers(
) -> TestResult {
    stray_file_is_refused(
        Layout::Crashed,
        |_| Ok(Vec::new()),
        "empty seg-4294967295.bpk",
    )
}
