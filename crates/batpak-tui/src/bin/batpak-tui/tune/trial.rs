//! One trial: a configuration run as a fresh `batpak-tui bench` child process (its own
//! memory, descriptors and store), repeated to know its noise.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use batpak_tui::preset::{Preset, StoreSection};

use crate::bench::BenchResult;

/// The runs of one configuration.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The configuration.
    pub store: StoreSection,
    /// Each repeat's result.
    pub runs: Vec<BenchResult>,
}

impl Measured {
    /// The median of a figure over the repeats.
    pub fn median(&self, f: impl Fn(&BenchResult) -> f64) -> f64 {
        let mut v: Vec<f64> = self.runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    /// The smallest and largest of a figure over the repeats.
    pub fn range(&self, f: impl Fn(&BenchResult) -> f64) -> (f64, f64) {
        self.runs
            .iter()
            .map(f)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            })
    }

    /// The largest of a figure over the repeats (the one a budget is held to).
    pub fn worst(&self, f: impl Fn(&BenchResult) -> f64) -> f64 {
        self.range(f).1
    }

    /// The largest of a figure some runs may not have measured (`None`: none did).
    pub fn worst_of(&self, f: impl Fn(&BenchResult) -> Option<f64>) -> Option<f64> {
        self.runs.iter().filter_map(f).reduce(f64::max)
    }

    /// How far the repeats of a figure spread: (largest - smallest) / median.
    pub fn noise(&self, f: impl Fn(&BenchResult) -> f64 + Copy) -> f64 {
        let (lo, hi) = self.range(f);
        let m = self.median(f);
        if m > 0.0 {
            (hi - lo) / m
        } else {
            0.0
        }
    }
}

/// Where trials run and how long.
#[derive(Debug, Clone)]
pub struct Bench {
    /// The `batpak-tui` binary to run.
    pub exe: PathBuf,
    /// The preset file holding the workload (and gates) every trial runs.
    pub workload: PathBuf,
    /// Where the trial's store goes (wiped before each run).
    pub store_dir: PathBuf,
    /// Where candidate configuration files go.
    pub config_dir: PathBuf,
    /// Each run's duration.
    pub duration: Duration,
}

/// Why a run gave no result.
#[derive(Debug, Clone)]
pub enum RunError {
    /// The user interrupted it.
    Interrupted,
    /// The child failed: its last words.
    Failed(String),
}

impl Bench {
    /// The command line that runs `config` (a preset file holding a `[store]` table).
    pub fn command(&self, config: &Path) -> Command {
        let mut c = Command::new(&self.exe);
        c.arg("bench")
            .arg(&self.store_dir)
            .arg("--preset")
            .arg(&self.workload)
            .arg("--config")
            .arg(config)
            .arg("--duration")
            .arg(format!("{}ms", self.duration.as_millis()))
            .arg("--json");
        c
    }

    /// Writes `store` as the configuration file `name` beside the trials.
    pub fn write_config(
        &self,
        name: &str,
        base: &Preset,
        store: &StoreSection,
    ) -> Result<PathBuf, String> {
        let mut p = base.clone();
        p.store = store.clone();
        let text = batpak_tui::preset::toml_text(&p).map_err(|e| e.to_string())?;
        let path = self.config_dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("write {}: {e}", path.display()))?;
        Ok(path)
    }

    /// Removes the scratch store and the last run's output files (results stay).
    pub fn clean(&self) {
        let _ = batpak_tui::workload::wipe(&self.store_dir);
        for f in ["run.json", "run.err"] {
            let _ = std::fs::remove_file(self.config_dir.join(f));
        }
    }

    /// Runs `config` once on a fresh store, in its own process group (so that Ctrl-C
    /// reaches only `tune`, which then stops the child).
    pub fn run_once(&self, config: &Path, stop: &AtomicBool) -> Result<BenchResult, RunError> {
        if self.store_dir.exists() {
            batpak_tui::workload::wipe(&self.store_dir)
                .map_err(|e| RunError::Failed(format!("cannot clear the trial store: {e}")))?;
        }
        let out_path = self.config_dir.join("run.json");
        let err_path = self.config_dir.join("run.err");
        let file = |p: &Path| {
            std::fs::File::create(p)
                .map_err(|e| RunError::Failed(format!("create {}: {e}", p.display())))
        };
        let mut cmd = self.command(config);
        cmd.stdin(Stdio::null())
            .stdout(file(&out_path)?)
            .stderr(file(&err_path)?);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .spawn()
            .map_err(|e| RunError::Failed(format!("cannot start {}: {e}", self.exe.display())))?;
        let status = wait(child, self.duration * 4 + Duration::from_secs(30), stop)?;
        if !status.success() {
            let err = std::fs::read_to_string(&err_path).unwrap_or_default();
            let last = err
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            return Err(RunError::Failed(format!(
                "bench exited with {status}: {last}"
            )));
        }
        let out = std::fs::read(&out_path).unwrap_or_default();
        let result: BenchResult = serde_json::from_slice(&out)
            .map_err(|e| RunError::Failed(format!("bench printed no result: {e}")))?;
        match &result.stopped_early {
            Some(why) => Err(RunError::Failed(format!(
                "bench exited early, its workload stopped: {why}"
            ))),
            None => Ok(result),
        }
    }
}

/// Waits for the child, killing it when `stop` is set or it overruns `limit`.
fn wait(
    mut child: Child,
    limit: Duration,
    stop: &AtomicBool,
) -> Result<std::process::ExitStatus, RunError> {
    let start = Instant::now();
    loop {
        let why = if stop.load(Ordering::Relaxed) {
            Some(RunError::Interrupted)
        } else if start.elapsed() > limit {
            let secs = limit.as_secs();
            Some(RunError::Failed(format!(
                "the run took longer than {secs}s"
            )))
        } else {
            None
        };
        if let Some(why) = why {
            let _ = child.kill();
            let _ = child.wait();
            return Err(why);
        }
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(RunError::Failed(e.to_string())),
        }
    }
}
