//! The headless `batpak-tui` commands, run as a user would.

mod common;

use std::process::Command;

use batpak::prelude::*;
use common::*;

fn batpak_tui(args: &[&str]) -> Res<(bool, String, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_batpak-tui"))
        .args(args)
        .output()?;
    Ok((
        out.status.success(),
        String::from_utf8(out.stdout)?,
        String::from_utf8(out.stderr)?,
    ))
}

fn store_with_segments(dir: &std::path::Path) -> Res<u64> {
    let mut cfg = StoreConfig::new(dir);
    cfg.segment_max_bytes = 4096;
    let store = Store::open(cfg)?;
    for i in 0..500u32 {
        store.append(
            &Coordinate::new(format!("e{}", i % 7), "s"),
            EventKind::new(1, 1),
            &i,
        )?;
    }
    store.close()?;
    Ok(500)
}

#[test]
fn inspect_lists_segments_and_counts_while_another_open_holds_the_store() -> TestResult {
    let dir = tempfile::tempdir()?;
    store_with_segments(dir.path())?;
    let _holder = Store::open(StoreConfig::new(dir.path()))?;
    let path = dir.path().display().to_string();
    let (ok, out, err) = batpak_tui(&["inspect", &path])?;
    assert!(ok, "{err}");
    assert!(out.contains("500 events"), "{out}");
    assert!(
        out.contains("seg-0000000001.bpk") && out.contains("sealed") && out.contains("active"),
        "{out}"
    );
    let (ok, json, _) = batpak_tui(&["inspect", &path, "--json"])?;
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&json)?;
    assert_eq!(v["events"], 500);
    assert_eq!(v["checkpoint"], "loaded");
    assert_eq!(v["cache"]["present"], true);
    assert_eq!(v["workload_data"], false);
    assert!(v["torn_tails"].as_array().is_some_and(|t| t.is_empty()));
    assert!(v["segments"].as_array().is_some_and(|s| s.len() >= 3));
    Ok(())
}

#[test]
fn inspect_of_a_directory_without_a_store_fails_with_one_clear_line() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (ok, out, err) = batpak_tui(&["inspect", &dir.path().display().to_string()])?;
    assert!(!ok);
    assert!(out.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no store here"), "{err}");
    Ok(())
}

#[test]
fn salvage_moves_a_damaged_tail_aside_and_the_store_opens_again() -> TestResult {
    let dir = tempfile::tempdir()?;
    store_with_segments(dir.path())?;
    let seg = dir.path().join("seg-0000000002.bpk");
    let mut bytes = std::fs::read(&seg)?;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(&seg, &bytes)?;
    assert!(
        Store::open(StoreConfig::new(dir.path())).is_err(),
        "the damage is detected"
    );
    let path = dir.path().display().to_string();
    let (ok, out, err) = batpak_tui(&["salvage", &path])?;
    assert!(ok, "{err}");
    assert!(out.contains("salvaged:"), "{out}");
    assert!(
        dir.path().join("salvaged").read_dir()?.count() >= 2,
        "the rest of seg 2 and every later segment"
    );
    let store = Store::open(StoreConfig::new(dir.path()))?;
    let n = store.stats().events;
    assert!(n > 0 && n < 500, "{n} events kept");
    Ok(())
}

#[test]
fn export_prints_the_edited_preset_as_a_snippet_and_as_toml() -> TestResult {
    let (ok, out, err) = batpak_tui(&[
        "export",
        "--preset",
        "embedded",
        "--set",
        "fd_budget=4",
        "--dir",
        "/data/events",
    ])?;
    assert!(ok, "{err}");
    assert!(
        out.starts_with("let mut config = StoreConfig::new(\"/data/events\");"),
        "{out}"
    );
    assert!(out.contains("config.fd_budget = 4;"), "{out}");
    assert!(
        out.contains("config.segment_max_bytes = 16 * 1024 * 1024;"),
        "{out}"
    );
    let (ok, toml, _) = batpak_tui(&["export", "--preset", "server", "--format", "toml"])?;
    assert!(ok);
    let back = batpak_tui::preset::Preset::parse(&toml, "stdout")?;
    assert_eq!(back, batpak_tui::preset::Preset::builtin("server")?);
    let (ok, _, err) = batpak_tui(&["export", "--preset", "nope"])?;
    assert!(
        !ok && err.contains("default, embedded, server") && err.lines().count() == 1,
        "{err}"
    );
    Ok(())
}

#[test]
fn bench_json_reports_every_documented_key_and_marks_the_directory() -> TestResult {
    let parent = tempfile::tempdir()?;
    let dir = parent.path().join("bench");
    let path = dir.display().to_string();
    let (ok, out, err) = batpak_tui(&[
        "bench",
        &path,
        "--preset",
        "embedded",
        "--duration",
        "500ms",
        "--json",
        "--set",
        "workload.readers=0",
    ])?;
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out)?;
    for key in [
        "throughput_events_per_s",
        "target_rate_events_per_s",
        "append_latency_us",
        "read_latency_us",
        "reads_per_s",
        "sync_latency_us",
        "events_per_sync",
        "bytes_per_event",
        "rss_bytes",
        "open_fds",
        "subscriber_drops",
        "denials",
        "config",
    ] {
        assert!(v.get(key).is_some(), "missing {key}: {out}");
    }
    for p in ["p50", "p99", "p999", "max"] {
        assert!(v["append_latency_us"][p].is_u64() && v["sync_latency_us"][p].is_u64());
    }
    assert!(v["throughput_events_per_s"]
        .as_f64()
        .is_some_and(|t| t > 0.0));
    assert_eq!(v["config"]["fd_budget"], 8);
    assert!(dir.join(".batpak-workload").exists());
    let (ok, _, err) = batpak_tui(&["wipe", &path, "--yes"])?;
    assert!(ok, "{err}");
    assert!(!dir.exists());
    Ok(())
}

#[test]
fn bench_refuses_a_directory_of_real_data_without_allow_existing_data() -> TestResult {
    let dir = tempfile::tempdir()?;
    store_with_segments(dir.path())?;
    let path = dir.path().display().to_string();
    let (ok, _, err) = batpak_tui(&["bench", &path, "--duration", "200ms", "--json"])?;
    assert!(!ok && err.contains("--allow-existing-data"), "{err}");
    let (ok, _, err) = batpak_tui(&["wipe", &path, "--yes"])?;
    assert!(!ok && err.contains("not marked"), "{err}");
    assert!(
        dir.path().join("seg-0000000001.bpk").exists(),
        "nothing was deleted"
    );
    Ok(())
}

#[test]
fn compare_runs_both_presets_on_one_workload_and_says_which_is_better_per_figure() -> TestResult {
    let parent = tempfile::tempdir()?;
    let runs = parent.path().join("runs");
    let (ok, out, err) = batpak_tui(&[
        "compare",
        "embedded",
        "server",
        "--duration",
        "300ms",
        "--dir",
        &runs.display().to_string(),
    ])?;
    assert!(ok, "{err}");
    assert!(out.contains("both ran the [workload] of embedded"), "{out}");
    let header = out.lines().nth(1).unwrap_or_default();
    assert!(
        header.contains("embedded") && header.contains("server") && header.contains("better"),
        "{out}"
    );
    let throughput = out
        .lines()
        .find(|l| l.starts_with("throughput"))
        .unwrap_or_default();
    assert!(
        throughput.contains("x better") || throughput.contains("about the same"),
        "{out}"
    );
    assert!(
        out.contains("events per sync") && !out.contains("b / a"),
        "{out}"
    );
    assert!(!runs.exists(), "run directories are removed without --keep");
    Ok(())
}

#[test]
fn compare_json_names_both_sides_by_preset_or_file_and_the_shared_workload() -> TestResult {
    let parent = tempfile::tempdir()?;
    let runs = parent.path().join("runs");
    let server = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../presets/server.toml");
    let (ok, out, err) = batpak_tui(&[
        "compare",
        "embedded",
        &server.display().to_string(),
        "--workload",
        "server",
        "--duration",
        "300ms",
        "--dir",
        &runs.display().to_string(),
        "--json",
    ])?;
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out)?;
    assert!(v.get("a").is_none() && v.get("b").is_none(), "{out}");
    assert_eq!(v["sides"][0]["name"], "embedded");
    assert_eq!(v["sides"][1]["name"], "server");
    assert_eq!(v["workload_from"], "server");
    let server_workload = batpak_tui::preset::Preset::load("server", &[])?.workload;
    assert_eq!(v["workload"], serde_json::to_value(server_workload)?);
    let figures = v["figures"].as_array().cloned().unwrap_or_default();
    let throughput = figures
        .iter()
        .find(|f| f["figure"] == "throughput")
        .cloned()
        .unwrap_or_default();
    assert_eq!(throughput["better_when"], "higher");
    assert!(
        throughput["values"]["embedded"].is_f64() && throughput["values"]["server"].is_f64(),
        "{throughput}"
    );
    assert!(
        ["embedded", "server"]
            .map(serde_json::Value::from)
            .contains(&throughput["better"])
            || throughput["better"].is_null(),
        "{throughput}"
    );
    Ok(())
}

#[test]
fn snapshot_copies_a_store_held_by_another_open_and_the_copy_holds_every_event() -> TestResult {
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("store");
    store_with_segments(&src)?;
    let holder = Store::open(StoreConfig::new(&src))?;
    let dest = dir.path().join("copy");
    let (ok, out, err) = batpak_tui(&[
        "snapshot",
        &src.display().to_string(),
        &dest.display().to_string(),
        "--json",
    ])?;
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out)?;
    assert!(
        v["report"]["segments"].as_u64().is_some_and(|n| n > 1),
        "{out}"
    );
    drop(holder);
    let copy = Store::open(StoreConfig::new(&dest))?;
    assert_eq!(copy.stats().events, 500);
    let again = dir.path().join("copy2");
    let (ok, out, err) = batpak_tui(&[
        "snapshot",
        &src.display().to_string(),
        &again.display().to_string(),
    ])?;
    assert!(ok, "{err}");
    assert!(
        out.contains("hard-linked") && out.contains("copy2"),
        "{out}"
    );
    Ok(())
}

#[test]
fn snapshot_of_a_directory_without_a_store_fails_in_one_line_and_creates_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let empty = dir.path().join("nothing");
    std::fs::create_dir_all(&empty)?;
    let dest = dir.path().join("copy");
    let (ok, _, err) = batpak_tui(&[
        "snapshot",
        &empty.display().to_string(),
        &dest.display().to_string(),
    ])?;
    assert!(!ok);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("no store here"), "{err}");
    assert!(!dest.exists());
    assert_eq!(std::fs::read_dir(&empty)?.count(), 0);
    Ok(())
}

#[test]
fn compact_dry_run_reports_and_changes_nothing_then_compact_removes_what_it_said() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut cfg = StoreConfig::new(dir.path());
    cfg.segment_max_bytes = 4096;
    let store = Store::open(cfg)?;
    for i in 0..600u32 {
        store.append(
            &Coordinate::new(format!("e{}", i % 3), "s"),
            EventKind::new(1, 1),
            &i,
        )?;
    }
    store.tombstone_entity(&Coordinate::new("e0", "s"))?;
    for i in 0..100u32 {
        store.append(&Coordinate::new("e1", "s"), EventKind::new(1, 1), &i)?;
    }
    store.close()?;
    let path = dir.path().display().to_string();
    let before: Vec<(String, Vec<u8>)> = files(dir.path())?;
    let (ok, out, err) = batpak_tui(&["compact", &path, "--tombstones", "--dry-run", "--json"])?;
    assert!(ok, "{err}");
    let dry: serde_json::Value = serde_json::from_str(&out)?;
    let would = dry["report"]["events_removed"]
        .as_u64()
        .ok_or("no events_removed")?;
    assert!(would > 100, "{out}");
    assert!(files(dir.path())? == before, "the dry run changed a file");
    let (ok, out, err) = batpak_tui(&["compact", &path, "--tombstones"])?;
    assert!(ok, "{err}");
    assert!(out.contains(&format!("removed {would} events")), "{out}");
    let (ok, out, _) = batpak_tui(&["verify", &path])?;
    assert!(ok && out.contains("clean"), "{out}");
    let (ok, _, err) = batpak_tui(&["compact", &path])?;
    assert!(!ok && err.contains("at least one retention rule"), "{err}");
    Ok(())
}

#[test]
fn compact_of_a_store_another_process_holds_says_it_needs_the_lock() -> TestResult {
    let dir = tempfile::tempdir()?;
    store_with_segments(dir.path())?;
    let _holder = Store::open(StoreConfig::new(dir.path()))?;
    let path = dir.path().display().to_string();
    let (ok, _, err) = batpak_tui(&["compact", &path, "--max-age", "1d"])?;
    assert!(!ok);
    assert!(err.contains("needs the lock"), "{err}");
    let (ok, out, err) = batpak_tui(&["compact", &path, "--max-age", "1d", "--dry-run"])?;
    assert!(ok, "{err}");
    assert!(out.contains("would remove 0 events"), "{out}");
    Ok(())
}

/// Every file of `dir` with its bytes, sorted by name.
fn files(dir: &std::path::Path) -> Res<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_file() {
            out.push((
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path())?,
            ));
        }
    }
    out.sort();
    Ok(out)
}

#[test]
fn the_verify_command_exits_0_when_clean_1_with_problems_and_2_when_it_cannot_run() -> TestResult {
    let dir = tempfile::tempdir()?;
    store_with_segments(dir.path())?;
    let run = |d: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_batpak-tui"))
            .args(["verify", &d.display().to_string()])
            .output()
    };
    let clean = run(dir.path())?;
    assert_eq!(clean.status.code(), Some(0));
    assert!(String::from_utf8(clean.stdout)?.contains(": clean"));
    std::fs::remove_file(dir.path().join(batpak::layout::segment_name(3)))?;
    let bad = run(dir.path())?;
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8(bad.stdout)?.contains("problem: "));
    let nothing = tempfile::tempdir()?;
    let none = run(nothing.path())?;
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8(none.stderr)?.contains("cannot verify"));
    Ok(())
}
