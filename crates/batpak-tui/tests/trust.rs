//! Trust probes: failures found from outside the engine (issue 17), each kept as a test
//! that uses only the public API and the `batpak-tui` commands, with child processes, real
//! files and real kills.
//!
//! - `idle`: an idle store writes nothing and makes no write calls.
//! - `damage`: a missing or truncated segment refuses the open, naming the file and
//!   pointing to salvage; verify finds it; a read-only open says so.
//! - `snapshot`: a snapshot copy without its identity file is refused, not opened.
//! - `crash_state`: the 0-byte segment a kill during a roll leaves is an ordinary crash
//!   state for verify, before and after the next rolls.
//! - `reader`: a read-only reader in another process keeps reading while the writer
//!   compacts.
//! - `stray`: a stray `seg-4294967295.bpk` neither exhausts verify's memory nor gets
//!   accepted by the open.
//! - `lock`: deleting `batpak.lock` does not let a second writer in.
//! - `empty_path`: `StoreConfig::new("")` is a clear error and writes nothing.
//! - `tamper`: edits that keep every checksum valid (a payload or header byte, exchanged
//!   payloads, a deleted or swapped frame, a segment from a diverged copy) break the hash
//!   chain, and verify names the first broken link.
//!
//! The tests that need a child process re-run this binary with `child_entry_point` and
//! the role in `BATPAK_TRUST_CHILD_ROLE` (see [`Kid`]).

mod common;

#[path = "trust/crash_state.rs"]
mod crash_state;
#[path = "trust/damage.rs"]
mod damage;
#[path = "trust/empty_path.rs"]
mod empty_path;
#[path = "trust/idle.rs"]
mod idle;
#[path = "trust/lock.rs"]
mod lock;
#[path = "trust/reader.rs"]
mod reader;
#[path = "trust/snapshot.rs"]
mod snapshot;
#[path = "trust/stray.rs"]
mod stray;
#[path = "trust/tamper.rs"]
mod tamper;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use batpak::prelude::*;
use common::*;

const ROLE_ENV: &str = "BATPAK_TRUST_CHILD_ROLE";
const DIR_ENV: &str = "BATPAK_TRUST_CHILD_DIR";

/// Runs only inside a child a probe started: plays the role it was given.
#[test]
fn child_entry_point() -> TestResult {
    let Ok(role) = std::env::var(ROLE_ENV) else {
        return Ok(());
    };
    // The harness printed "test child_entry_point ... " without a newline.
    println!();
    let dir = PathBuf::from(std::env::var(DIR_ENV)?);
    match role.as_str() {
        "idle-append" => idle::child(&dir, true),
        "idle-reopen" => idle::child(&dir, false),
        "durable-writer" => damage::durable_writer(&dir),
        "compactor" => reader::compactor(&dir),
        "lock-holder" => lock::holder(&dir),
        "empty-path" => empty_path::child(),
        other => Err(format!("unknown child role {other}").into()),
    }
}

/// A child process playing a role in `child_entry_point`; its stdout and stderr lines
/// (stderr prefixed `E: `) arrive on a channel. Killed (SIGKILL) when dropped.
struct Kid {
    child: Child,
    rx: mpsc::Receiver<String>,
    /// Every line received so far.
    lines: Vec<String>,
}

impl Kid {
    fn start(role: &str, dir: &Path) -> Res<Self> {
        Self::start_in(role, dir, None)
    }

    /// Starts the child in `cwd` (the parent's current directory when `None`).
    fn start_in(role: &str, dir: &Path, cwd: Option<&Path>) -> Res<Self> {
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.args([
            "child_entry_point",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE_ENV, role)
        .env(DIR_ENV, dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        if let Some(cwd) = cwd {
            cmd.current_dir(cwd);
        }
        let mut child = cmd.spawn()?;
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().ok_or("no stdout")?;
        let err = child.stderr.take().ok_or("no stderr")?;
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx2.send(format!("E: {line}"));
            }
        });
        Ok(Self {
            child,
            rx,
            lines: Vec::new(),
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Takes the lines that arrived so far.
    fn drain(&mut self) {
        while let Ok(l) = self.rx.try_recv() {
            self.lines.push(l);
        }
    }

    /// Waits until the child prints the line `want`.
    fn wait_for(&mut self, want: &str, timeout: Duration) -> Res<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(l) => {
                    let done = l == want;
                    self.lines.push(l);
                    if done {
                        return Ok(());
                    }
                }
                Err(_) => {
                    return Err(format!(
                        "the child did not print {want:?} within {timeout:?}; it printed: {}",
                        self.tail()
                    )
                    .into())
                }
            }
        }
    }

    /// The last lines received, for error messages.
    fn tail(&self) -> String {
        let from = self.lines.len().saturating_sub(12);
        self.lines[from..].join(" | ")
    }

    /// SIGKILLs the child and reaps it.
    fn kill(&mut self) -> TestResult {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Waits for the child to exit (killing it after `timeout`); its exit code and every
    /// line it printed.
    fn finish(mut self, timeout: Duration) -> Res<(Option<i32>, Vec<String>)> {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.child.try_wait()? {
                break s;
            }
            if Instant::now() > deadline {
                self.kill()?;
                return Err(format!("the child ran past {timeout:?}: {}", self.tail()).into());
            }
            self.drain();
            std::thread::sleep(Duration::from_millis(10));
        };
        // The reader threads end at end of file; collect what they still hold.
        while let Ok(l) = self.rx.recv_timeout(Duration::from_millis(500)) {
            self.lines.push(l);
        }
        Ok((status.code(), std::mem::take(&mut self.lines)))
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address-space limit every `batpak-tui verify` of these probes runs under.
const AS_LIMIT: u64 = 1 << 30;

/// `batpak-tui verify DIR` under [`AS_LIMIT`] (so a verify that allocates without bound
/// fails alone instead of taking the machine's memory), killed after 60 s: its exit code
/// (`None`: ended by a signal, e.g. an abort on a failed allocation) and its stdout
/// followed by its stderr (the first 64 KiB of each).
fn verify_cli(dir: &Path) -> Res<(Option<i32>, String)> {
    verify_cli_with(dir, &[])
}

/// [`verify_cli`] with more arguments after the directory.
fn verify_cli_with(dir: &Path, more: &[&str]) -> Res<(Option<i32>, String)> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_batpak-tui"));
    cmd.args(["verify", &dir.display().to_string()])
        .args(more)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the closure runs in the forked child before exec and only calls
    // setrlimit, which is async-signal-safe; it allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: AS_LIMIT as libc::rlim_t,
                rlim_max: AS_LIMIT as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let mut child = cmd.spawn()?;
    let out = child.stdout.take().ok_or("no stdout")?;
    let err = child.stderr.take().ok_or("no stderr")?;
    // Keep at most the first 64 KiB of each stream (the rest is read and dropped).
    let keep = |r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            let mut r = BufReader::new(r);
            let mut buf = [0u8; 8192];
            while let Ok(n) = std::io::Read::read(&mut r, &mut buf) {
                if n == 0 {
                    break;
                }
                if kept.len() < 64 * 1024 {
                    kept.extend_from_slice(&buf[..n]);
                }
            }
            String::from_utf8_lossy(&kept).into_owned()
        })
    };
    let (out, err) = (keep(Box::new(out)), keep(Box::new(err)));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break Some(s);
        }
        if Instant::now() > deadline {
            child.kill()?;
            child.wait()?;
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = format!(
        "{}{}",
        out.join().map_err(|_| "reader panicked")?,
        err.join().map_err(|_| "reader panicked")?
    );
    match status {
        Some(s) => {
            use std::os::unix::process::ExitStatusExt;
            let how = s.signal().map(|sig| format!("(killed by signal {sig})\n"));
            Ok((s.code(), format!("{}{text}", how.unwrap_or_default())))
        }
        None => Ok((None, format!("(still running after 60 s)\n{text}"))),
    }
}

/// Whether one of verify's `problem:` lines names `name`.
fn names_problem(out: &str, name: &str) -> bool {
    out.lines()
        .any(|l| l.starts_with("problem:") && l.contains(name))
}

/// The file name of segment `no`.
fn seg_name(no: u32) -> String {
    format!("seg-{no:010}.bpk")
}

/// Segment numbers present in `dir`, ascending.
fn seg_numbers(dir: &Path) -> Res<Vec<u32>> {
    let mut nos = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let name = e?.file_name().to_string_lossy().into_owned();
        if let Some(no) = name
            .strip_prefix("seg-")
            .and_then(|n| n.strip_suffix(".bpk"))
            .and_then(|n| n.parse::<u32>().ok())
        {
            nos.push(no);
        }
    }
    nos.sort_unstable();
    Ok(nos)
}

/// 16 KiB segments, the rest default.
fn small_segments(dir: &Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    c.segment_max_bytes = 16 * 1024;
    c
}

/// Appends event `n` of the probes' workload (payload: its text).
fn append_nth(store: &Store, n: u64, opts: AppendOptions) -> Res<AppendReceipt> {
    let text = format!("event {n:06} {}", "x".repeat(80));
    Ok(store.append_with(
        &Coordinate::new(format!("item:{}", n % 9), "probe"),
        EventKind::new(1, 1),
        &text,
        opts,
    )?)
}

/// Fills a store with 16 KiB segments until it has at least four and the newest holds
/// more than 10 KiB; the events written.
fn fill_segments(store: &Store, dir: &Path) -> Res<u64> {
    let mut n = 0;
    loop {
        for _ in 0..10 {
            append_nth(store, n, AppendOptions::default())?;
            n += 1;
        }
        let segs = seg_numbers(dir)?;
        if let (4.., Some(&newest)) = (segs.len(), segs.last()) {
            if std::fs::metadata(dir.join(seg_name(newest)))?.len() > 10 * 1024 {
                return Ok(n);
            }
        }
    }
}

/// A store of at least four 16 KiB segments in `dir`, closed cleanly (it has its index
/// checkpoint); the events written.
fn segmented_store(dir: &Path) -> Res<u64> {
    let store = Store::open(small_segments(dir))?;
    let n = fill_segments(&store, dir)?;
    store.close()?;
    drop(store);
    assert!(
        dir.join("index.ckpt").exists(),
        "a clean close writes the checkpoint"
    );
    Ok(n)
}

/// A store as a crashed writer leaves it: several segments, the newest unsealed, no
/// checkpoint. Returns its event count.
fn crashed_store(dir: &Path) -> Res<u64> {
    segmented_store(dir)?;
    std::fs::remove_file(dir.join("index.ckpt"))?;
    let store = Store::open_read_only(dir)?;
    Ok(store.stats().events)
}

/// Every file under `dir` (recursively) with its size.
fn file_sizes(dir: &Path) -> Res<std::collections::BTreeMap<PathBuf, u64>> {
    let mut out = std::collections::BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let ty = e.file_type()?;
            if ty.is_dir() {
                todo.push(e.path());
            } else {
                out.insert(e.path(), e.metadata()?.len());
            }
        }
    }
    Ok(out)
}

/// Expectations a probe checks, collected so one failure message lists all it found.
#[derive(Default)]
struct Findings(Vec<String>);

impl Findings {
    fn expect(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }

    fn assert_none(self, probe: &str) {
        assert!(
            self.0.is_empty(),
            "{probe}: {} expectation(s) failed:\n  - {}",
            self.0.len(),
            self.0.join("\n  - ")
        );
    }
}
