//! The workbench end to end: the real binary in tmux at 80x24, driven by keys, checked by
//! what the screen shows; and a terminal that goes away under a running benchmark.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// One tmux server of its own per test (its socket name), so tests do not meet.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(dir: &Path, name: &str, args: &str) -> Result<Self, Box<dyn std::error::Error>> {
        let t = Tmux {
            socket: format!("batpak-{name}-{}", std::process::id()),
        };
        let bin = env!("CARGO_BIN_EXE_batpak-tui");
        // exec: the pane's process is the workbench itself, not a shell waiting on it.
        let cmd = format!("exec {bin} {args}");
        let out = t.run(&[
            "new-session",
            "-d",
            "-s",
            "wb",
            "-x",
            "80",
            "-y",
            "24",
            "-c",
            &dir.display().to_string(),
            &cmd,
        ])?;
        if !out.status.success() {
            return Err(format!(
                "tmux did not start: {}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        Ok(t)
    }

    fn run(&self, args: &[&str]) -> Result<Output, Box<dyn std::error::Error>> {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .map_err(|e| format!("tmux is needed for this test (.ci/run installs it): {e}").into())
    }

    fn keys(&self, keys: &[&str]) -> TestResult {
        for k in keys {
            self.run(&["send-keys", "-t", "wb", k])?;
            std::thread::sleep(Duration::from_millis(60));
        }
        Ok(())
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "wb"])
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// Waits until the screen shows `text`; fails with the screen it last saw.
    fn wait_for(&self, text: &str) -> Result<String, Box<dyn std::error::Error>> {
        self.wait_long(text, Duration::from_secs(20))
    }

    /// `wait_for` with a longer patience, for what takes whole benchmark runs.
    fn wait_long(
        &self,
        text: &str,
        patience: Duration,
    ) -> Result<String, Box<dyn std::error::Error>> {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if s.contains(text) {
                return Ok(s);
            }
            if start.elapsed() > patience {
                return Err(format!("the screen never showed {text:?}; it showed:\n{s}").into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn alive(&self) -> bool {
        self.run(&["has-session", "-t", "wb"])
            .is_ok_and(|o| o.status.success())
    }

    /// Waits up to `patience` for the session to end; whether it did.
    fn gone_within(&self, patience: Duration) -> bool {
        let start = Instant::now();
        while self.alive() && start.elapsed() < patience {
            std::thread::sleep(Duration::from_millis(100));
        }
        !self.alive()
    }

    fn pane_pid(&self) -> Option<u32> {
        let o = self
            .run(&["display-message", "-p", "-t", "wb", "#{pane_pid}"])
            .ok()?;
        String::from_utf8_lossy(&o.stdout).trim().parse().ok()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn verify_clean(data: &Path) -> Result<String, Box<dyn std::error::Error>> {
    let out = Command::new(env!("CARGO_BIN_EXE_batpak-tui"))
        .arg("verify")
        .arg(data)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "verify: {text}");
    assert!(text.contains(": clean"), "{text}");
    Ok(text)
}

fn events_in(verify_line: &str) -> u64 {
    verify_line
        .split(": ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.replace(',', "").parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_session_at_80x24_runs_switches_preset_edits_a_reopen_field_exports_is_asked_before_a_switch_drops_the_edit_and_quits(
) -> TestResult {
    let dir = tempfile::tempdir()?;
    let tmux = Tmux::start(dir.path(), "session", "./data")?;
    tmux.wait_for("PAUSED (space runs)")?;
    tmux.wait_for("┌ Overview")?;
    tmux.keys(&["Space"])?;
    tmux.wait_for("RUNNING")?;
    tmux.keys(&["p"])?;
    tmux.wait_for("server (built-in)")?;
    tmux.keys(&["j", "j", "Enter"])?;
    tmux.wait_for("switched to server")?;
    tmux.keys(&["9"])?;
    let screen = tmux.wait_for("Config: preset server")?;
    assert!(
        screen.contains("16384 commands"),
        "server's channel capacity shown:\n{screen}"
    );
    tmux.keys(&["j", "j", "j", "Enter"])?;
    tmux.wait_for("writer_channel_capacity = 16384")?;
    tmux.keys(&["BSpace"; 5])?;
    tmux.keys(&["6", "4", "Enter"])?;
    let screen = tmux.wait_for("1 unapplied, 1 need a reopen")?;
    assert!(screen.contains("64 commands*"), "{screen}");
    assert!(
        screen.contains("writer_channel_capacity = 64, in force 16384 (reopens on a)"),
        "{screen}"
    );
    tmux.keys(&["a"])?;
    tmux.wait_for("reopened for writer_channel_capacity")?;
    // The producers waited through the reopen: none got an error.
    tmux.keys(&["8"])?;
    let system = tmux.wait_for("workload: appended")?;
    assert!(system.contains("errors 0"), "{system}");
    tmux.keys(&["9"])?;
    tmux.keys(&["e"])?;
    tmux.wait_for("written to ./batpak-config.rs")?;
    let snippet = std::fs::read_to_string(dir.path().join("batpak-config.rs"))?;
    assert!(
        snippet.contains("config.writer_channel_capacity = 64;"),
        "{snippet}"
    );
    assert!(
        snippet.contains("SyncMode::SyncData"),
        "the server preset's values: {snippet}"
    );
    assert!(
        snippet.starts_with("let mut config = StoreConfig::new(\"./data\");"),
        "{snippet}"
    );
    tmux.keys(&["Escape", "p"])?;
    tmux.wait_for("default (built-in)")?;
    tmux.keys(&["Enter"])?;
    let asked = tmux.wait_for("Switch preset and drop the edits?")?;
    assert!(
        asked.contains("and drops 1 edit (writer_channel_capacity = 64; 1 applied)."),
        "{asked}"
    );
    tmux.keys(&["Enter"])?;
    tmux.wait_for("switched to default; 1 edit dropped")?;
    tmux.keys(&["1", "f"])?;
    tmux.wait_for("fixed scale [f]")?;
    tmux.keys(&["q"])?;
    assert!(
        tmux.gone_within(Duration::from_secs(10)),
        "q ends the workbench"
    );
    let data: PathBuf = dir.path().join("data");
    assert!(
        data.join("index.ckpt").exists(),
        "the store was closed cleanly"
    );
    let report = verify_clean(&data)?;
    assert!(events_in(&report) > 0, "{report}");
    Ok(())
}

/// Starts a benchmark in the workbench (`args` after the binary, tmux socket `name`), closes its terminal, and
/// waits for the process to end. Returns the data dir and how many events the screen said
/// were acknowledged just before.
fn hang_up_under_a_benchmark(
    dir: &Path,
    name: &str,
    args: &str,
) -> Result<(PathBuf, u64), Box<dyn std::error::Error>> {
    let tmux = Tmux::start(dir, name, args)?;
    tmux.wait_for("PAUSED")?;
    tmux.keys(&["Space"])?;
    tmux.wait_for("RUNNING")?;
    tmux.keys(&["8"])?;
    std::thread::sleep(Duration::from_millis(1200));
    // What the workload had acknowledged when the terminal went away (a lower bound).
    let screen = tmux.wait_for("workload: appended")?;
    let acked: u64 = screen
        .split("workload: appended ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .map(|n| n.replace(',', ""))
        .and_then(|n| n.parse().ok())
        .ok_or(format!("no appended count on screen:\n{screen}"))?;
    assert!(acked > 0, "the benchmark ran:\n{screen}");
    let pid = tmux.pane_pid().ok_or("no pane pid")?;
    tmux.run(&["kill-server"])?;
    let start = Instant::now();
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    while proc_dir.exists() && start.elapsed() < Duration::from_secs(40) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = start.elapsed();
    eprintln!("the workbench ended {took:?} after its terminal went away");
    assert!(
        !proc_dir.exists(),
        "the workbench still runs {took:?} after its terminal went away"
    );
    Ok((dir.join("data"), acked))
}

#[test]
fn closing_the_terminal_under_a_running_benchmark_ends_the_process_with_the_store_closed(
) -> TestResult {
    // stderr is the terminal that goes away, as for a user over SSH: a complaint written
    // to it on the way out must not stop the close.
    let dir = tempfile::tempdir()?;
    let (data, acked) = hang_up_under_a_benchmark(dir.path(), "hangup-tty", "./data")?;
    assert!(
        data.join("index.ckpt").exists(),
        "the store was closed (checkpoint written)"
    );
    let report = verify_clean(&data)?;
    assert!(
        events_in(&report) >= acked,
        "{acked} events were acknowledged before the hang-up: {report}"
    );
    Ok(())
}

#[test]
fn a_hang_up_is_seen_by_the_frame_loop_which_closes_the_store_without_the_watchdog() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (data, _) = hang_up_under_a_benchmark(dir.path(), "hangup-log", "./data 2>stderr.txt")?;
    let stderr = std::fs::read_to_string(dir.path().join("stderr.txt"))?;
    assert!(
        !stderr.contains("did not close the store") && !stderr.contains("panicked"),
        "the frame loop closed the store itself: {stderr}"
    );
    assert!(
        data.join("index.ckpt").exists(),
        "the store was closed (checkpoint written); stderr: {stderr}"
    );
    Ok(())
}

#[test]
fn the_tune_pane_searches_within_a_typed_budget_shows_the_configurations_and_applies_the_picked_one(
) -> TestResult {
    let dir = tempfile::tempdir()?;
    let tmux = Tmux::start(dir.path(), "tune", "./data --preset embedded")?;
    tmux.wait_for("PAUSED (space runs)")?;
    tmux.keys(&["0"])?;
    tmux.wait_for("Tune: idle")?;
    tmux.wait_for("budget loss<=9")?;
    tmux.keys(&["b"])?;
    tmux.wait_for("Enter sets, Esc drops")?;
    tmux.keys(&["BSpace"; 7])?;
    tmux.run(&["send-keys", "-t", "wb", "-l", "loss<=20, p99<=500ms"])?;
    tmux.keys(&["Enter"])?;
    tmux.wait_for("budget loss<=20, p99<=500ms")?;
    tmux.keys(&["t"])?;
    tmux.wait_for("Tune: searching")?;
    // The configuration in force runs first (three fresh benches of about 2 s), then
    // the search's first step.
    let patience = Duration::from_secs(90);
    let screen = tmux.wait_long("(in force)", patience)?;
    assert!(screen.contains("events/s vs append p99"), "{screen}");
    assert!(
        screen.contains("ms p99") || screen.contains("µs p99"),
        "the x axis has its unit:\n{screen}"
    );
    tmux.wait_long("sync_every_n_events=", patience)?;
    tmux.keys(&["x"])?;
    let done = tmux.wait_for("Tune: done")?;
    assert!(done.contains("│> "), "what binds the pick is said:\n{done}");
    // Pick the row that changes something, and apply it.
    let rows: Vec<&str> = done
        .lines()
        .skip_while(|l| !l.contains("changes vs in force"))
        .skip(1)
        .take_while(|l| l.contains(" events") || l.contains("/s "))
        .collect();
    let at = rows
        .iter()
        .position(|l| l.contains("sync_every_n_events="))
        .ok_or_else(|| format!("no row changes the sync cadence:\n{done}"))?;
    // The selection starts at the search's pick: to the top first, then down.
    tmux.keys(&vec!["k"; rows.len()])?;
    tmux.keys(&vec!["j"; at])?;
    tmux.keys(&["Enter"])?;
    let applied = tmux.wait_for(": applied live: sync_every_n_events")?;
    assert!(applied.contains("trial "), "{applied}");
    tmux.keys(&["q"])?;
    assert!(
        tmux.gone_within(Duration::from_secs(15)),
        "q ends the workbench"
    );
    verify_clean(&dir.path().join("data"))?;
    let scratch = dir.path().join("data.tune");
    assert!(
        !scratch.join("run").exists(),
        "the scratch store was left behind"
    );
    Ok(())
}
