//! What the Tune pane draws: the configurations a background search ran, taken from its
//! progress once a frame, and the pane's own view state.

use std::time::Instant;

use batpak_tui::preset::StoreSection;
use serde::{Deserialize, Serialize};

use crate::tune::{self, Progress, Trial};
use crate::units;

/// How long a search started from the pane runs, proof-free: the pick is applied and
/// watched live instead.
pub const TIME: std::time::Duration = std::time::Duration::from_secs(180);

/// One configuration on the scatter chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TunePoint {
    pub trial: usize,
    /// Median events/s.
    pub throughput: f64,
    /// Median append p99, µs.
    pub p99_us: f64,
    /// Acknowledged events a power cut may take.
    pub loss_events: u64,
    /// Median peak memory, bytes.
    pub rss_bytes: f64,
    /// Median bytes sent to storage per event.
    pub wear: f64,
    /// Inside the budget.
    pub feasible: bool,
    /// On the Pareto front.
    pub front: bool,
    /// The changes from the configuration in force.
    pub changes: Vec<String>,
    /// The configuration.
    pub store: StoreSection,
}

/// The search as the pane shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TuneView {
    /// A search exists (running or done).
    pub started: bool,
    pub running: bool,
    /// The budget, as text.
    pub budget: String,
    /// The p99 limit, µs, for the budget line.
    pub p99_limit_us: Option<f64>,
    /// `config 5, run 9, 1:10 of 3:00`.
    pub status: String,
    /// Once done: what binds the pick, or why there is none.
    pub outcome: Option<String>,
    /// Every configuration that ran, by trial.
    pub points: Vec<TunePoint>,
    /// The trial the search stands on (its pick so far).
    pub best: Option<usize>,
    /// The trial whose configuration is in force in the store.
    pub current: Option<usize>,
}

impl TuneView {
    /// The view of `p`, with changes said against `in_force`.
    pub fn build(p: &Progress, in_force: &StoreSection) -> Self {
        let ran: Vec<&Trial> = p
            .trials
            .iter()
            .filter(|t| t.error.is_none() && !t.measured.runs.is_empty())
            .collect();
        let front: Vec<usize> = tune::report_front(&p.trials, &p.budget)
            .iter()
            .map(|pt| pt.trial)
            .collect();
        let points = ran
            .iter()
            .map(|t| {
                let pt = tune::report_point(t, in_force, &p.budget);
                TunePoint {
                    trial: t.id,
                    throughput: pt.throughput,
                    p99_us: pt.p99_us,
                    loss_events: pt.loss_events,
                    rss_bytes: pt.rss_bytes,
                    wear: pt.storage_bytes_per_event,
                    feasible: pt.feasible,
                    front: front.contains(&t.id),
                    changes: compact(&pt.changes),
                    store: t.store.clone(),
                }
            })
            .collect();
        let failed = p.trials.iter().filter(|t| t.error.is_some()).count();
        let failed = if failed > 0 {
            format!(", {failed} failed")
        } else {
            String::new()
        };
        let now = Instant::now();
        let spent = now.saturating_duration_since(p.started);
        let total = p.deadline.saturating_duration_since(p.started);
        let status = if p.running {
            format!(
                "config {}, run {}, {} of {}{failed}",
                p.trials.len() + 1,
                p.runs + 1,
                units::clock(spent),
                units::clock(total)
            )
        } else {
            format!("done: {} configurations, {} runs", p.trials.len(), p.runs)
        };
        Self {
            started: true,
            running: p.running,
            budget: p.budget.to_string(),
            p99_limit_us: p.budget.items.iter().find_map(|i| match i {
                tune::Item::P99Micros(us) => Some(*us as f64),
                _ => None,
            }),
            status,
            outcome: p.outcome.clone(),
            points,
            best: p.best.map(|b| p.trials[b].id),
            current: p.trials.iter().find(|t| &t.store == in_force).map(|t| t.id),
        }
    }

    /// The front, fastest first: what the pane's list shows and Enter applies.
    pub fn front(&self) -> Vec<&TunePoint> {
        let mut f: Vec<&TunePoint> = self.points.iter().filter(|p| p.front).collect();
        f.sort_by(|a, b| b.throughput.total_cmp(&a.throughput));
        f
    }
}

/// `sync_every_n_events 10 -> 64` as `sync_every_n_events=64`: the list says what
/// the values are changed from.
fn compact(changes: &[String]) -> Vec<String> {
    changes
        .iter()
        .map(|c| match (c.split_once(' '), c.rsplit_once(" -> ")) {
            (Some((name, _)), Some((_, to))) => format!("{name}={to}"),
            _ => c.clone(),
        })
        .collect()
}

/// The pane's view state: the selected row of the front and the budget being typed.
#[derive(Debug, Clone, Default)]
pub struct TuneUi {
    pub selected: usize,
    /// The user moved the selection: it no longer follows the search's pick.
    pub moved: bool,
    /// The budget a search started with `t` keeps.
    pub budget: String,
    /// The budget being typed after `b`.
    pub input: Option<String>,
}
