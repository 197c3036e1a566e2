//! Tampering that keeps every frame checksum valid: a byte of a payload or of an event
//! header edited and its frame's checksum recomputed, payloads of two events exchanged,
//! an event frame deleted, two frames swapped, a segment replaced by the same-numbered
//! segment of a copy of the store that went on differently. Each must make `batpak-tui
//! verify` exit 1, naming the file and the first broken link; an untouched store verifies
//! clean with every event's link checked.
//!
//! The frames are found by this file's own walker, written from the frame layout the
//! documentation gives (`crc:u32le len:varint body`, crc = masked crc32c over the length
//! bytes and the body), not by the engine's decoder.

use super::*;

/// Bytes of the segment file header.
const HEADER: usize = 64;

/// One frame of a segment file: where it starts, where its body starts, where it ends.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    body: usize,
    end: usize,
}

impl Span {
    fn is_event(&self, bytes: &[u8]) -> bool {
        bytes[self.body] == 1
    }
}

fn varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

fn frame_crc(len_and_body: &[u8]) -> u32 {
    crc32c::crc32c(len_and_body)
        .rotate_right(15)
        .wrapping_add(0xa282_ead8)
}

/// The complete frames of a segment file, in order.
fn frames(bytes: &[u8]) -> Vec<Span> {
    let mut out = Vec::new();
    let mut pos = HEADER;
    while pos + 5 <= bytes.len() {
        let mut p = pos + 4;
        let Some(len) = varint(bytes, &mut p) else {
            break;
        };
        let end = p + len as usize;
        if len == 0 || end > bytes.len() {
            break;
        }
        let stored =
            u32::from_le_bytes([bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]]);
        if frame_crc(&bytes[pos + 4..end]) != stored {
            break;
        }
        out.push(Span {
            start: pos,
            body: p,
            end,
        });
        pos = end;
    }
    out
}

/// Recomputes the checksum of the frame `s` after its body was edited in place.
fn reseal(bytes: &mut [u8], s: Span) {
    let crc = frame_crc(&bytes[s.start + 4..s.end]);
    bytes[s.start..s.start + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Where the payload text `event NNNNNN ` of the probes' workload starts inside frame
/// `s`, and the event number it carries.
fn payload_text(bytes: &[u8], s: Span) -> Option<(usize, u64)> {
    let body = &bytes[s.body..s.end];
    let at = body.windows(6).position(|w| w == b"event ")?;
    let digits = std::str::from_utf8(body.get(at + 6..at + 12)?).ok()?;
    Some((s.body + at, digits.parse().ok()?))
}

/// The event frames of a segment that carry the workload's text, with their numbers.
fn text_events(bytes: &[u8]) -> Vec<(Span, usize, u64)> {
    frames(bytes)
        .into_iter()
        .filter(|s| s.is_event(bytes))
        .filter_map(|s| payload_text(bytes, s).map(|(at, n)| (s, at, n)))
        .collect()
}

/// A closed store of several segments in `dir`; the name and path of a middle segment.
fn store_with_middle(dir: &Path) -> Res<(String, PathBuf)> {
    segmented_store(dir)?;
    let segs = seg_numbers(dir)?;
    let name = seg_name(segs[segs.len() / 2]);
    let path = dir.join(&name);
    Ok((name, path))
}

/// The `problem:` lines verify printed.
fn problems(out: &str) -> Vec<&str> {
    out.lines().filter(|l| l.starts_with("problem:")).collect()
}

/// Verify must exit 1, and its first problem must name `file` and contain `what`.
fn expect_first_problem(dir: &Path, file: &str, what: &str) -> Res<String> {
    let (code, out) = verify_cli(dir)?;
    assert_eq!(code, Some(1), "verify must fail: {out}");
    let first = problems(&out)
        .first()
        .copied()
        .unwrap_or_default()
        .to_string();
    assert!(
        first.contains(file) && first.contains(what),
        "the first problem must name {file} and say {what:?}: {out}"
    );
    Ok(out)
}

#[test]
fn an_untouched_store_verifies_clean_with_the_link_of_every_event_checked() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let n = segmented_store(tmp.path())?;
    let (code, out) = verify_cli(tmp.path())?;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!("hash chain: {n} linked events checked; head ")),
        "verify reports the chain: {out}"
    );
    Ok(())
}

#[test]
fn an_edited_payload_byte_with_its_checksum_fixed_is_a_broken_link_naming_the_event_and_its_files_seal(
) -> TestResult {
    let tmp = tempfile::tempdir()?;
    let (name, path) = store_with_middle(tmp.path())?;
    let mut bytes = std::fs::read(&path)?;
    let events = text_events(&bytes);
    let (span, at, n) = events[events.len() / 2];
    // The filler after the number: one 'x' becomes 'y'.
    bytes[at + 14] = b'y';
    reseal(&mut bytes, span);
    std::fs::write(&path, &bytes)?;
    let out = expect_first_problem(
        tmp.path(),
        &name,
        &format!("broken link at event {}", n + 1),
    )?;
    // The link locates the edit; the segment's byte hash (format 4) breaks at its seal.
    let found = problems(&out);
    assert_eq!(
        found.len(),
        2,
        "one edit, its link and its file's seal: {out}"
    );
    assert!(
        found[1].contains(&name) && found[1].contains("the seal records"),
        "{out}"
    );
    // The open checks checksums and continuity, not links: it still opens.
    let store = Store::open_read_only(tmp.path())?;
    assert!(store.stats().events > n);
    Ok(())
}

#[test]
fn an_edited_event_kind_with_its_checksum_fixed_is_a_broken_link() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let (name, path) = store_with_middle(tmp.path())?;
    let mut bytes = std::fs::read(&path)?;
    let events = text_events(&bytes);
    let (span, _, n) = events[events.len() / 3];
    // body: type flags seq:varint ts:varint kind:varint ...
    let mut p = span.body + 2;
    varint(&bytes, &mut p).ok_or("seq")?;
    varint(&bytes, &mut p).ok_or("ts")?;
    let kind_at = p;
    let kind = varint(&bytes, &mut p).ok_or("kind")?;
    assert_eq!(
        p,
        kind_at + 2,
        "the probes' kind (1, 1) takes two varint bytes"
    );
    assert!(kind > 0);
    bytes[kind_at] ^= 0x02;
    reseal(&mut bytes, span);
    std::fs::write(&path, &bytes)?;
    expect_first_problem(
        tmp.path(),
        &name,
        &format!("broken link at event {}", n + 1),
    )?;
    Ok(())
}

#[test]
fn two_events_of_one_entity_exchanging_payloads_break_the_first_of_them() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let (name, path) = store_with_middle(tmp.path())?;
    let mut bytes = std::fs::read(&path)?;
    let events = text_events(&bytes);
    // Events n and n + 9 belong to the same entity (item:{n % 9}).
    let (a, a_at, n) = events[2];
    let (b, b_at, _) = *events
        .iter()
        .find(|(_, _, m)| *m == n + 9)
        .ok_or("no second event of the entity in the segment")?;
    let len = 12;
    let (ta, tb) = (
        bytes[a_at..a_at + len].to_vec(),
        bytes[b_at..b_at + len].to_vec(),
    );
    bytes[a_at..a_at + len].copy_from_slice(&tb);
    bytes[b_at..b_at + len].copy_from_slice(&ta);
    reseal(&mut bytes, a);
    reseal(&mut bytes, b);
    std::fs::write(&path, &bytes)?;
    let out = expect_first_problem(
        tmp.path(),
        &name,
        &format!("broken link at event {}", n + 1),
    )?;
    assert!(
        out.contains(&format!("broken link at event {}", n + 10)),
        "the second is reported too: {out}"
    );
    Ok(())
}

#[test]
fn a_deleted_event_frame_is_found_in_its_file() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let (name, path) = store_with_middle(tmp.path())?;
    let bytes = std::fs::read(&path)?;
    let events = text_events(&bytes);
    let (span, _, _) = events[events.len() / 2];
    let mut cut = bytes[..span.start].to_vec();
    cut.extend_from_slice(&bytes[span.end..]);
    std::fs::write(&path, &cut)?;
    let (code, out) = verify_cli(tmp.path())?;
    assert_eq!(code, Some(1), "{out}");
    assert!(names_problem(&out, &name), "{out}");
    Ok(())
}

#[test]
fn two_swapped_event_frames_are_found_in_their_file() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let (name, path) = store_with_middle(tmp.path())?;
    let bytes = std::fs::read(&path)?;
    let events = text_events(&bytes);
    let (a, b) = events
        .windows(2)
        .map(|w| (w[0].0, w[1].0))
        .find(|(a, b)| a.end == b.start)
        .ok_or("no two adjacent event frames")?;
    let mut swapped = bytes[..a.start].to_vec();
    swapped.extend_from_slice(&bytes[b.start..b.end]);
    swapped.extend_from_slice(&bytes[a.start..a.end]);
    swapped.extend_from_slice(&bytes[b.end..]);
    std::fs::write(&path, &swapped)?;
    let (code, out) = verify_cli(tmp.path())?;
    assert_eq!(code, Some(1), "{out}");
    assert!(names_problem(&out, &name), "{out}");
    Ok(())
}

/// Appends `count` events of the workload to the store in `dir` with the filler `fill`.
fn go_on(dir: &Path, from: u64, count: u64, fill: char) -> TestResult {
    let store = Store::open(small_segments(dir))?;
    for n in from..from + count {
        let text = format!("event {n:06} {}", fill.to_string().repeat(80));
        store.append(
            &Coordinate::new(format!("item:{}", n % 9), "probe"),
            EventKind::new(1, 1),
            &text,
        )?;
    }
    store.close()?;
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> TestResult {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        if e.file_type()?.is_file() {
            std::fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(())
}

#[test]
fn a_segment_replaced_by_the_same_numbered_segment_of_a_diverged_copy_is_found() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let (ours, theirs) = (tmp.path().join("ours"), tmp.path().join("theirs"));
    let n = segmented_store(&ours)?;
    let forked_at = *seg_numbers(&ours)?.last().ok_or("no segment")?;
    copy_dir(&ours, &theirs)?;
    // Both go on with events of the same sizes but different text, for several segments.
    go_on(&ours, n, 600, 'x')?;
    go_on(&theirs, n, 600, 'z')?;
    let segs = seg_numbers(&ours)?;
    let target = *segs
        .iter()
        .find(|&&no| no > forked_at + 1 && no + 1 < *segs.last().unwrap_or(&0))
        .ok_or("not enough segments after the fork")?;
    let (c, o) = verify_cli(&theirs)?;
    assert_eq!(c, Some(0), "the copy itself is clean: {o}");
    std::fs::copy(theirs.join(seg_name(target)), ours.join(seg_name(target)))?;
    let (code, out) = verify_cli(&ours)?;
    assert_eq!(code, Some(1), "{out}");
    let first = problems(&out)
        .first()
        .copied()
        .unwrap_or_default()
        .to_string();
    assert!(
        first.contains(&seg_name(target)) || first.contains(&seg_name(target + 1)),
        "the first problem names the replaced file or the one after it: {out}"
    );
    Ok(())
}

/// The chain head a clean verify printed.
fn head_of(dir: &Path) -> Res<String> {
    let (code, out) = verify_cli(dir)?;
    assert_eq!(code, Some(0), "{out}");
    let head = out
        .lines()
        .find_map(|l| l.split("; head ").nth(1))
        .ok_or_else(|| format!("no head printed: {out}"))?;
    Ok(head.trim().to_string())
}

#[test]
fn a_recorded_head_is_found_after_more_appends_and_not_in_a_copy_that_went_on_differently(
) -> TestResult {
    let tmp = tempfile::tempdir()?;
    let (ours, theirs) = (tmp.path().join("ours"), tmp.path().join("theirs"));
    let n = segmented_store(&ours)?;
    copy_dir(&ours, &theirs)?;
    let at_fork = head_of(&ours)?;
    go_on(&ours, n, 300, 'x')?;
    let ours_later = head_of(&ours)?;
    assert_ne!(ours_later, at_fork, "the head moves with the appends");
    let (code, out) = verify_cli_with(&ours, &["--expect-head", &at_fork])?;
    assert_eq!(
        code,
        Some(0),
        "the history up to the fork is unchanged: {out}"
    );
    assert!(out.contains("the recorded head is in the chain"), "{out}");
    go_on(&theirs, n, 300, 'z')?;
    let (code, out) = verify_cli_with(&theirs, &["--expect-head", &at_fork])?;
    assert_eq!(
        code,
        Some(0),
        "the copy shares the history up to the fork: {out}"
    );
    let (code, out) = verify_cli_with(&theirs, &["--expect-head", &ours_later])?;
    assert_eq!(
        code,
        Some(1),
        "the copy's later history is another one: {out}"
    );
    assert!(
        out.contains("is not a value of this store's chain"),
        "{out}"
    );
    let (code, out) = verify_cli_with(&ours, &["--expect-head", "not-a-head"])?;
    assert_eq!(code, Some(2), "a malformed head is refused: {out}");
    assert!(out.contains("64 hex digits"), "{out}");
    Ok(())
}
