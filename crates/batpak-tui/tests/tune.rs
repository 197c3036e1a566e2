//! `batpak-tui tune` and `bench --config`, run as a user would: child processes, real
//! stores on disk, the JSON they print checked against the budget they were given.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::*;
use serde_json::Value;

fn batpak_tui(args: &[&str]) -> Res<Output> {
    Ok(Command::new(env!("CARGO_BIN_EXE_batpak-tui"))
        .args(args)
        .output()?)
}

fn batpak_tui_owned(args: &[String]) -> Res<Output> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    batpak_tui(&args)
}

fn json(out: &Output) -> Res<Value> {
    serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into()
    })
}

fn num(v: &Value, path: &str) -> Res<f64> {
    path.split('.')
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_f64)
        .ok_or_else(|| format!("no number at {path} in {v}").into())
}

/// `tune SCRATCH` on the embedded preset's workload: runs of 1 s, 2 repeats, JSON.
fn tune_args(scratch: &std::path::Path, budget: &str, time: &str) -> Res<Vec<String>> {
    let dir = scratch.to_str().ok_or("path")?;
    Ok([
        "tune",
        dir,
        "--preset",
        "embedded",
        "--budget",
        budget,
        "--time",
        time,
        "--run",
        "1s",
        "--repeats",
        "2",
        "--json",
    ]
    .map(String::from)
    .to_vec())
}

#[test]
fn tune_recommends_a_configuration_inside_the_budget_and_a_fresh_bench_of_its_export_confirms_it(
) -> TestResult {
    let dir = tempfile::tempdir()?;
    let scratch = dir.path().join("tune");
    let out = batpak_tui_owned(&tune_args(
        &scratch,
        "loss<=20, p99<=200ms, fds<=64, wear<=4000B",
        "24s",
    )?)?;
    let r = json(&out)?;
    assert!(out.status.success(), "{r}");
    let rec = &r["recommended"];
    let every = num(rec, "point.loss_events")?;
    assert!(every <= 20.0, "the pick may lose {every} events: {rec}");
    for m in rec["margins"].as_array().ok_or("margins")? {
        assert!(num(m, "spare")? >= 0.0, "a margin is broken: {m}");
    }
    assert!(
        rec["binding"].as_str().is_some_and(|b| !b.is_empty()),
        "no binding constraint named: {rec}"
    );
    assert!(r["front"].as_array().is_some_and(|f| !f.is_empty()));
    assert_eq!(r["proof"]["holds"], Value::Bool(true), "{}", r["proof"]);
    let rust = rec["rust"].as_str().ok_or("rust")?;
    assert!(rust.contains("StoreConfig::new"), "{rust}");
    let written = std::fs::read_to_string(scratch.join("tuned.rs"))?;
    assert_eq!(written, rust, "the snippet file holds the printed snippet");

    // Anyone can check the pick: bench the exported preset's [store].
    let tuned = scratch.join("tuned.toml");
    let check = dir.path().join("check");
    let out = batpak_tui(&[
        "bench",
        check.to_str().ok_or("path")?,
        "--preset",
        "embedded",
        "--config",
        tuned.to_str().ok_or("path")?,
        "--duration",
        "1s",
        "--json",
    ])?;
    let b = json(&out)?;
    assert!(out.status.success(), "{b}");
    let bound = num(&b, "loss_window.power_cut_bound_events")?;
    let max = num(&b, "loss_window.power_cut_events.max")?;
    assert!(
        bound <= 20.0 && max <= bound,
        "loss window {}",
        b["loss_window"]
    );
    assert_eq!(
        num(&b, "config.sync_every_n_events")?,
        num(rec, "point.loss_events")? + 1.0,
        "bench ran another [store] than the exported one"
    );
    Ok(())
}

#[test]
fn a_budget_no_configuration_meets_is_refused_naming_the_item_and_the_nearest() -> TestResult {
    let dir = tempfile::tempdir()?;
    let scratch = dir.path().join("tune");
    let out = batpak_tui_owned(&tune_args(&scratch, "loss<=50, p99<=1us", "8s")?)?;
    assert!(!out.status.success(), "an impossible budget was accepted");
    let r = json(&out)?;
    assert!(r["recommended"].is_null());
    let unmet = r["infeasible"]["unmet"].as_array().ok_or("unmet")?;
    assert!(
        unmet.iter().any(|u| u["item"]["item"] == "p99_micros"),
        "{unmet:?}"
    );
    assert!(r["infeasible"]["nearest"]["trial"].is_number());
    Ok(())
}

#[test]
fn a_bad_budget_is_refused_before_any_run_with_the_item_named() -> TestResult {
    let dir = tempfile::tempdir()?;
    let out = batpak_tui(&[
        "tune",
        dir.path().join("t").to_str().ok_or("path")?,
        "--budget",
        "loss<=100, p99<=2 parsecs",
    ])?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("p99<=2 parsecs"), "{err}");
    assert!(
        !dir.path().join("t").exists(),
        "a refused budget still made the directory"
    );
    Ok(())
}

#[test]
fn tune_refuses_a_directory_holding_other_files() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("notes.txt"), "mine")?;
    let out = batpak_tui(&["tune", dir.path().to_str().ok_or("path")?, "--time", "5s"])?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tune did not write"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes.txt"))?,
        "mine"
    );
    Ok(())
}

#[test]
fn ctrl_c_stops_tune_with_the_best_configuration_so_far_and_leaves_no_bench_running() -> TestResult
{
    let dir = tempfile::tempdir()?;
    let scratch = dir.path().join("tune");
    let child = Command::new(env!("CARGO_BIN_EXE_batpak-tui"))
        .args(tune_args(&scratch, "loss<=50", "2m")?)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    // Long enough for the first configuration's two runs and part of the next.
    std::thread::sleep(Duration::from_secs(5));
    // SAFETY: kill(2) with a pid this test spawned and still owns; no memory involved.
    let rc = unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(rc, 0);
    let out = child.wait_with_output()?;
    let r = json(&out)?;
    assert_eq!(r["interrupted"], Value::Bool(true), "{r}");
    assert!(
        num(&r, "elapsed_s")? < 30.0,
        "Ctrl-C did not stop the search"
    );
    assert!(
        r["recommended"]["point"]["trial"].is_number(),
        "no best-so-far: {r}"
    );
    assert!(r["proof"].is_null(), "an interrupted tune ran its proof");
    let left: Vec<String> = std::fs::read_dir(&scratch)?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !left.iter().any(|n| n == "run" || n.starts_with("trial-")),
        "scratch left behind: {left:?}"
    );
    Ok(())
}

#[test]
fn a_tune_whose_every_run_fails_says_why_instead_of_blaming_the_budget() -> TestResult {
    let dir = tempfile::tempdir()?;
    let scratch = dir.path().join("tune");
    let out = batpak_tui(&[
        "tune",
        scratch.to_str().ok_or("path")?,
        "--preset",
        "embedded",
        "--set",
        "workload.min_free_disk=\"1000 TiB\"",
        "--time",
        "6s",
        "--run",
        "1s",
        "--repeats",
        "2",
    ])?;
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("a run failed: bench exited early") && stdout.contains("free space"),
        "{stdout}"
    );
    Ok(())
}
