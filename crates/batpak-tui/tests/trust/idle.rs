//! An idle store does no I/O: a child opens a store (appending one event, or reopening one
//! that holds data and appending nothing), then sleeps; over 10 s of idleness no file in
//! the directory changes size and the child's write counters (`/proc/PID/io`: `wchar`
//! bytes written, `syscw` write calls) stay where they were.

use super::*;

/// Settle time after the child says it is ready (the one sync an append needs is due
/// after `batpak::store::IDLE_SYNC_AFTER`, 20 ms).
const SETTLE: Duration = Duration::from_millis(300);
/// The idle window measured.
const IDLE: Duration = Duration::from_secs(10);

/// The child: opens the store in `dir` (default configuration), appends one event when
/// `append`, says `ready` and sleeps until killed.
pub fn child(dir: &Path, append: bool) -> TestResult {
    let store = Store::open(StoreConfig::new(dir))?;
    if append {
        store.append(
            &Coordinate::new("idle:1", "probe"),
            EventKind::new(1, 1),
            &"one",
        )?;
    }
    println!("ready");
    std::thread::sleep(Duration::from_secs(120));
    drop(store);
    Ok(())
}

/// `wchar` and `syscw` of process `pid` (every thread of it).
fn write_counters(pid: u32) -> Res<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io"))?;
    let field = |name: &str| -> Res<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| format!("no {name} in /proc/{pid}/io: {text}").into())
    };
    Ok((field("wchar:")?, field("syscw:")?))
}

fn stays_quiet(role: &str, dir: &Path) -> TestResult {
    let mut kid = Kid::start(role, dir)?;
    kid.wait_for("ready", Duration::from_secs(30))?;
    std::thread::sleep(SETTLE);
    let sizes_before = file_sizes(dir)?;
    let (wchar_before, syscw_before) = write_counters(kid.pid())?;
    std::thread::sleep(IDLE);
    let sizes_after = file_sizes(dir)?;
    let (wchar_after, syscw_after) = write_counters(kid.pid())?;
    kid.drain();
    let child_alive = kid.child.try_wait()?.is_none();
    kid.kill()?;

    let mut f = Findings::default();
    f.expect(child_alive, || {
        format!("the child exited during the idle window: {}", kid.tail())
    });
    let changed: Vec<String> = sizes_before
        .iter()
        .filter_map(|(p, &b)| {
            let a = sizes_after.get(p).copied();
            (a != Some(b)).then(|| {
                format!(
                    "{}: {b} -> {} bytes",
                    p.file_name().map_or("?".into(), |n| n.to_string_lossy()),
                    a.map_or("gone".to_string(), |a| a.to_string())
                )
            })
        })
        .chain(
            sizes_after
                .keys()
                .filter(|p| !sizes_before.contains_key(*p))
                .map(|p| format!("{} appeared", p.display())),
        )
        .collect();
    f.expect(changed.is_empty(), || {
        format!(
            "files changed over {IDLE:?} of idleness: {}",
            changed.join(", ")
        )
    });
    f.expect(wchar_after == wchar_before, || {
        format!(
            "the idle child wrote {} bytes in {IDLE:?} (wchar {wchar_before} -> {wchar_after})",
            wchar_after - wchar_before
        )
    });
    f.expect(syscw_after == syscw_before, || {
        format!(
            "the idle child made {} write calls in {IDLE:?} (syscw {syscw_before} -> {syscw_after})",
            syscw_after - syscw_before
        )
    });
    f.assert_none(role);
    Ok(())
}

#[test]
fn a_store_left_idle_after_one_append_writes_nothing_for_ten_seconds() -> TestResult {
    let tmp = tempfile::tempdir()?;
    stays_quiet("idle-append", &tmp.path().join("store"))
}

#[test]
fn a_reopened_store_holding_data_left_idle_writes_nothing_for_ten_seconds() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("store");
    let store = Store::open(StoreConfig::new(&dir))?;
    for n in 0..200 {
        append_nth(&store, n, AppendOptions::default())?;
    }
    store.close()?;
    drop(store);
    stays_quiet("idle-reopen", &dir)
}
