//! A search on a thread of its own, for the workbench's Tune pane: the same trials as
//! `tune` (each a `bench` child process), read as they finish through [`Progress`].

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use batpak_tui::preset::Preset;

use super::budget::Budget;
use super::search::{Search, Trial};
use super::trial::Bench;
use super::{report, run_time, scratch, space};

/// What a running search has found so far.
#[derive(Debug, Clone)]
pub struct Progress {
    /// The budget it keeps.
    pub budget: Budget,
    /// Every configuration run so far.
    pub trials: Vec<Trial>,
    /// The trial the search stands on.
    pub best: Option<usize>,
    /// Runs finished.
    pub runs: usize,
    /// When it started and when its time box ends.
    pub started: Instant,
    pub deadline: Instant,
    /// Whether it is still running.
    pub running: bool,
    /// Once it ended: what binds the pick, or why there is none.
    pub outcome: Option<String>,
}

/// A search running beside the workbench.
pub struct Background {
    stop: Arc<AtomicBool>,
    /// What it found so far.
    pub progress: Arc<Mutex<Progress>>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    /// Starts searching for `preset`'s workload within `budget`, for `time`, on scratch
    /// stores in `dir`.
    pub fn start(
        dir: PathBuf,
        preset: Preset,
        budget: Budget,
        time: Duration,
        repeats: usize,
    ) -> Result<Self, String> {
        let bench = scratch(&dir, &preset, run_time(time)).map_err(|e| e.to_string())?;
        let now = Instant::now();
        let progress = Arc::new(Mutex::new(Progress {
            budget: budget.clone(),
            trials: Vec::new(),
            best: None,
            runs: 0,
            started: now,
            deadline: now + time,
            running: true,
            outcome: None,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, st) = (progress.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("batpak-tune".into())
            .spawn(move || search(&bench, &preset, &budget, repeats, time, &st, &p))
            .map_err(|e| e.to_string())?;
        Ok(Self {
            stop,
            progress,
            thread: Some(thread),
        })
    }

    /// Asks the search to stop; what it found stays.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// A copy of what it found so far.
    pub fn snapshot(&self) -> Progress {
        self.progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn search(
    bench: &Bench,
    preset: &Preset,
    budget: &Budget,
    repeats: usize,
    time: Duration,
    stop: &AtomicBool,
    shared: &Arc<Mutex<Progress>>,
) {
    let deadline = Instant::now() + time;
    let mut s = Search::new(bench, preset, budget, repeats, stop, deadline);
    s.shared = Some(shared.clone());
    s.run(space::start(&preset.store, budget));
    let pick = s.best.map(|b| &s.trials[b]).filter(|t| t.feasible(budget));
    let outcome = match pick {
        Some(t) => {
            let level = report::level_with(&s.trials, budget, t);
            match report::level_words(&level) {
                Some(w) => format!("{}. {w}", report::binding(&s, t)),
                None => report::binding(&s, t),
            }
        }
        None => {
            let (_, unmet) = report::unmet(&s);
            let words: Vec<String> = unmet.into_iter().map(|u| u.text).collect();
            let failed = s.trials.iter().find_map(|t| t.error.clone());
            if let (true, Some(why)) = (words.is_empty(), &failed) {
                format!("no configuration ran: {why}")
            } else if words.is_empty() {
                "no configuration ran".to_string()
            } else {
                words.join("; ")
            }
        }
    };
    bench.clean();
    let mut p = shared.lock().unwrap_or_else(PoisonError::into_inner);
    p.running = false;
    p.outcome = Some(outcome);
}
