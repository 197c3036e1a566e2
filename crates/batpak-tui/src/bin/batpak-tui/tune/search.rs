//! The search: coordinate climbing from the rules' starting point. Each pass moves one
//! knob at a time a rung up (then down) for as long as a step is better beyond the noise
//! and inside the budget (a step level with the incumbent is looked past: one rung
//! further is tried before the direction is given up); it ends when a pass moves nothing,
//! the time box runs out or the user presses Ctrl-C. docs/design.md says why this and not successive halving.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use batpak_tui::preset::{Preset, StoreSection};

use super::budget::Budget;
use super::space::{self, KNOBS};
use super::trial::{Bench, Measured, RunError};
use super::Progress;
use crate::bench::BenchResult;
use crate::units;

/// Two medians closer than this share are never called different, whatever the spread.
const MIN_DIFFERENCE: f64 = 0.02;

/// One configuration the search ran.
#[derive(Debug, Clone)]
pub struct Trial {
    /// Its number, from 1.
    pub id: usize,
    /// The configuration.
    pub store: StoreSection,
    /// Its runs (empty if it failed).
    pub measured: Measured,
    /// Why it has no result, if so.
    pub error: Option<String>,
}

impl Trial {
    /// Whether it ran and every budget item holds on it.
    pub fn feasible(&self, budget: &Budget) -> bool {
        self.error.is_none() && budget.holds(&self.measured)
    }
}

/// A step the search took: knob, from, to.
#[derive(Debug, Clone)]
pub struct Move {
    /// Index into `KNOBS`.
    pub knob: usize,
    /// The value before.
    pub from: u64,
    /// The value after.
    pub to: u64,
}

/// A figure of a run.
type Figure = fn(&BenchResult) -> f64;

/// The figures compared, in order, each `true` when higher is better.
const ORDER: [(&str, Figure, bool); 4] = [
    ("throughput", |r| r.throughput_events_per_s, true),
    ("append p99", |r| r.append_latency_us.p99 as f64, false),
    ("storage B/event", |r| r.storage_bytes_per_event, false),
    ("peak memory", |r| r.rss_peak_bytes as f64, false),
];

/// Whether `a` is better than `b` beyond the noise: at the first figure of `ORDER` where
/// the repeats do not overlap (every run of one side beats every run of the other) and
/// the medians differ by more than `MIN_DIFFERENCE`, `a` is ahead. Figures within the
/// noise pass to the next; if every figure is, `a` is not better.
pub fn better(a: &Measured, b: &Measured) -> bool {
    for (_, f, higher) in ORDER {
        let ((alo, ahi), (blo, bhi)) = (a.range(f), b.range(f));
        let (am, bm) = (a.median(f), b.median(f));
        let apart = (am - bm).abs() > MIN_DIFFERENCE * am.abs().max(bm.abs());
        if !apart {
            continue;
        }
        let (a_ahead, b_ahead) = if higher {
            (alo > bhi, ahi < blo)
        } else {
            (ahi < blo, alo > bhi)
        };
        if a_ahead {
            return true;
        }
        if b_ahead {
            return false;
        }
    }
    false
}

/// How far a trial is from the budget: the sum of each broken item's excess over its
/// limit, as a share of the limit (0 when it holds; failed trials are infinitely far).
pub fn distance(t: &Trial, budget: &Budget) -> f64 {
    if t.error.is_some() {
        return f64::INFINITY;
    }
    budget
        .violations(&t.measured)
        .iter()
        .map(|(i, v)| v.map_or(f64::INFINITY, |v| v / i.limit().max(1e-9) - 1.0))
        .sum()
}

/// The search's state and what it found.
pub struct Search<'a> {
    pub bench: &'a Bench,
    pub base: &'a Preset,
    pub budget: &'a Budget,
    pub repeats: usize,
    pub stop: &'a AtomicBool,
    /// Show a progress line on stderr.
    pub progress: bool,
    /// Every configuration run, in order.
    pub trials: Vec<Trial>,
    /// Every step taken.
    pub moves: Vec<Move>,
    /// The trial the search stands on.
    pub best: Option<usize>,
    /// Whether the user interrupted it.
    pub interrupted: bool,
    /// Whether it ended because a pass moved nothing.
    pub converged: bool,
    /// Where a watcher (the workbench's Tune pane) reads the search as it goes.
    pub shared: Option<Arc<Mutex<Progress>>>,
    started: Instant,
    deadline: Instant,
    runs: usize,
}

impl<'a> Search<'a> {
    /// A search that stops at `deadline`.
    pub fn new(
        bench: &'a Bench,
        base: &'a Preset,
        budget: &'a Budget,
        repeats: usize,
        stop: &'a AtomicBool,
        deadline: Instant,
    ) -> Self {
        Self {
            bench,
            base,
            budget,
            repeats,
            stop,
            progress: false,
            trials: Vec::new(),
            moves: Vec::new(),
            best: None,
            interrupted: false,
            converged: false,
            shared: None,
            started: Instant::now(),
            deadline,
            runs: 0,
        }
    }

    /// Runs the search: first the workload's own configuration (what the pick is measured
    /// against), then from `start` (the rules' starting point) on.
    pub fn run(&mut self, start: StoreSection) {
        let own = self.base.store.clone();
        if own != start {
            // Where the search stands if the time box ends before the start runs.
            self.best = self.trial(&own);
            if self.best.is_none() {
                return;
            }
        }
        let Some(first) = self.trial(&start) else {
            return;
        };
        self.best = Some(first);
        self.publish();
        loop {
            let mut moved = false;
            for k in 0..KNOBS.len() {
                if self.out_of_time() {
                    return;
                }
                moved |= self.climb(k);
            }
            if !moved {
                self.converged = true;
                return;
            }
        }
    }

    fn out_of_time(&mut self) -> bool {
        if self.stop.load(Ordering::Relaxed) {
            self.interrupted = true;
        }
        self.interrupted || Instant::now() >= self.deadline
    }

    /// Moves knob `k` up while each step is better, else down; whether it moved.
    fn climb(&mut self, k: usize) -> bool {
        let knob = &KNOBS[k];
        let values = space::values(knob, self.budget);
        let mut moved = false;
        for up in [true, false] {
            loop {
                let Some(best) = self.best else { return moved };
                let now = (knob.get)(&self.trials[best].store);
                let Some(next) = space::neighbour(&values, now, up) else {
                    break;
                };
                let mut store = self.trials[best].store.clone();
                (knob.set)(&mut store, next);
                let Some(t) = self.trial(&store) else {
                    return moved;
                };
                let step = if self.accepts(t, best) {
                    Some((t, next))
                } else if self.level(t, best) {
                    // A plateau: within the noise of where the search stands. One rung
                    // further may be clearly better (throughput often climbs in steps
                    // smaller than the noise of one).
                    let Some(further) = space::neighbour(&values, next, up) else {
                        break;
                    };
                    (knob.set)(&mut store, further);
                    let Some(t2) = self.trial(&store) else {
                        return moved;
                    };
                    self.accepts(t2, best).then_some((t2, further))
                } else {
                    None
                };
                let Some((t, to)) = step else {
                    break;
                };
                self.moves.push(Move {
                    knob: k,
                    from: now,
                    to,
                });
                self.best = Some(t);
                self.publish();
                moved = true;
            }
            if moved {
                break;
            }
        }
        moved
    }

    /// Whether trial `t` replaces `best`: inside the budget and better beyond the noise,
    /// or, while nothing is inside the budget, clearly nearer to it.
    fn accepts(&self, t: usize, best: usize) -> bool {
        let (c, b) = (&self.trials[t], &self.trials[best]);
        if c.error.is_some() {
            return false;
        }
        match (c.feasible(self.budget), b.feasible(self.budget)) {
            (true, true) => better(&c.measured, &b.measured),
            (true, false) => true,
            (false, true) => false,
            (false, false) => distance(c, self.budget) < 0.9 * distance(b, self.budget),
        }
    }

    /// Whether trial `t` is level with `best`: inside the budget and not worse beyond
    /// the noise.
    fn level(&self, t: usize, best: usize) -> bool {
        let (c, b) = (&self.trials[t], &self.trials[best]);
        c.feasible(self.budget) && b.feasible(self.budget) && !better(&b.measured, &c.measured)
    }

    /// The trial of `store`: an earlier one of the same configuration, or a new one run
    /// `repeats` times. `None` when the time box ended or the user interrupted it.
    fn trial(&mut self, store: &StoreSection) -> Option<usize> {
        if let Some(i) = self.trials.iter().position(|t| &t.store == store) {
            return Some(i);
        }
        if self.out_of_time() {
            return None;
        }
        let id = self.trials.len() + 1;
        let mut measured = Measured {
            store: store.clone(),
            runs: Vec::new(),
        };
        let config = match self
            .bench
            .write_config(&format!("trial-{id}.toml"), self.base, store)
        {
            Ok(p) => p,
            Err(e) => return Some(self.push(measured, Some(e))),
        };
        let mut error = None;
        for _ in 0..self.repeats {
            self.show(id);
            match self.bench.run_once(&config, self.stop) {
                Ok(r) => measured.runs.push(r),
                Err(RunError::Interrupted) => {
                    self.interrupted = true;
                    let _ = std::fs::remove_file(&config);
                    return None;
                }
                Err(RunError::Failed(e)) => {
                    error = Some(e);
                    break;
                }
            }
            self.runs += 1;
            self.publish();
        }
        let _ = std::fs::remove_file(&config);
        Some(self.push(measured, error))
    }

    fn push(&mut self, measured: Measured, error: Option<String>) -> usize {
        self.trials.push(Trial {
            id: self.trials.len() + 1,
            store: measured.store.clone(),
            measured,
            error,
        });
        self.publish();
        self.trials.len() - 1
    }

    /// Copies what the search knows to its watcher, if it has one.
    fn publish(&self) {
        if let Some(shared) = &self.shared {
            let mut p = shared.lock().unwrap_or_else(PoisonError::into_inner);
            p.trials.clone_from(&self.trials);
            p.best = self.best;
            p.runs = self.runs;
            p.started = self.started;
            p.deadline = self.deadline;
        }
    }

    /// The progress line: bar, time, configurations and runs, the best so far, ETA.
    fn show(&self, id: usize) {
        if !self.progress {
            return;
        }
        let total = self.deadline.saturating_duration_since(self.started);
        let spent = self.started.elapsed();
        let done = spent.as_secs_f64() / total.as_secs_f64().max(1e-9);
        let best = self.best.map(|b| &self.trials[b].measured).map_or_else(
            || "best: none yet".to_string(),
            |m| {
                format!(
                    "best {} p99 {}",
                    units::rate(m.median(|r| r.throughput_events_per_s)),
                    units::micros(m.median(|r| r.append_latency_us.p99 as f64) as u64)
                )
            },
        );
        let left = total.saturating_sub(spent);
        eprint!(
            "\r{} {}/{} config {id} run {} {best}  ETA {}   ",
            units::bar(done, 20),
            units::clock(spent),
            units::clock(total),
            self.runs + 1,
            units::clock(left)
        );
        let _ = std::io::stderr().flush();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::bench::{Latency, LossWindow, WearRow};

    /// A run with this throughput, append p99 (µs) and peak memory.
    pub(crate) fn run(throughput: f64, p99: u64, rss: u64) -> BenchResult {
        BenchResult {
            throughput_events_per_s: throughput,
            target_rate_events_per_s: None,
            append_latency_us: Latency {
                p99,
                ..Latency::default()
            },
            read_latency_us: Latency::default(),
            reads_per_s: 0.0,
            sync_latency_us: Latency::default(),
            events_per_sync: 1.0,
            bytes_per_event: 100.0,
            write_amplification: Some(1.0),
            storage_bytes_per_event: 100.0,
            syncs_per_s: Default::default(),
            loss_window: LossWindow::default(),
            wear: WearRow::default(),
            rss_bytes: rss,
            rss_peak_bytes: rss,
            open_fds: Some(10),
            open_fds_peak: Some(10),
            disk_bytes: 0,
            subscriber_drops: 0,
            denials: 0,
            stopped_early: None,
            config: batpak_tui::preset::Preset::builtin("default")
                .map(|p| p.store)
                .expect("the default preset parses"),
        }
    }

    pub(crate) fn measured(runs: &[(f64, u64, u64)]) -> Measured {
        let runs: Vec<BenchResult> = runs.iter().map(|&(t, p, r)| run(t, p, r)).collect();
        Measured {
            store: runs[0].config.clone(),
            runs,
        }
    }

    #[test]
    fn a_configuration_is_better_only_when_every_repeat_beats_every_repeat_of_the_other() {
        let base = measured(&[(100.0, 500, 10), (104.0, 510, 10), (98.0, 490, 10)]);
        let clearly = measured(&[(120.0, 500, 10), (118.0, 505, 10), (125.0, 495, 10)]);
        assert!(better(&clearly, &base));
        assert!(!better(&base, &clearly));
        // Faster by median but one repeat overlaps: within the noise, and so is p99.
        let overlapping = measured(&[(115.0, 500, 10), (103.0, 500, 10), (118.0, 500, 10)]);
        assert!(!better(&overlapping, &base));
        // Throughput within the noise, p99 clearly lower: better on the next figure.
        let quicker = measured(&[(101.0, 300, 10), (99.0, 310, 10), (103.0, 290, 10)]);
        assert!(better(&quicker, &base));
        // Everything within the noise except memory: smaller memory wins last.
        let leaner = measured(&[(100.0, 500, 5), (104.0, 510, 5), (98.0, 490, 5)]);
        assert!(better(&leaner, &base));
        assert!(!better(&base, &base));
    }
}
