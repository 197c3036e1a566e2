//! What a search found, in figures and words: the Pareto front, the pick with its margin
//! on every budget item, what binds it, and the nearest configuration when nothing fits.

use batpak_tui::preset::StoreSection;
use serde::Serialize;

use super::budget::{Budget, Item};
use super::search::{better, distance, Search, Trial};
use super::space::{self, KNOBS};
use crate::units;

/// One configuration as the front and the JSON show it.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// The trial's number.
    pub trial: usize,
    /// Median throughput, events/s.
    pub throughput: f64,
    /// Spread of the throughput over the repeats, as a share of the median.
    pub throughput_noise: f64,
    /// Median append p99, µs.
    pub p99_us: f64,
    /// Acknowledged events a power cut may take (the configuration's bound).
    pub loss_events: u64,
    /// Median peak resident memory, bytes.
    pub rss_bytes: f64,
    /// Median bytes sent to storage per event.
    pub storage_bytes_per_event: f64,
    /// Whether every budget item holds.
    pub feasible: bool,
    /// The changes from the configuration the search started at.
    pub changes: Vec<String>,
}

/// One budget item on the pick.
#[derive(Debug, Clone, Serialize)]
pub struct Margin {
    /// The item.
    pub item: Item,
    /// The measured value (the worst repeat's).
    pub value: Option<f64>,
    /// Share of the limit left: 0.35 = 35 % to spare; negative when broken.
    pub spare: Option<f64>,
    /// The line as printed.
    pub text: String,
}

/// The item nothing met, and how near the nearest came.
#[derive(Debug, Clone, Serialize)]
pub struct Unmet {
    /// The item.
    pub item: Item,
    /// The best value any configuration reached.
    pub best: Option<f64>,
    /// The trial that reached it.
    pub trial: Option<usize>,
    /// The line as printed.
    pub text: String,
}

/// Trial `t` as a point, its changes said against `base`.
pub fn point(t: &Trial, base: &StoreSection, budget: &Budget) -> Point {
    let m = &t.measured;
    let thr = |r: &crate::bench::BenchResult| r.throughput_events_per_s;
    Point {
        trial: t.id,
        throughput: m.median(thr),
        throughput_noise: m.noise(thr),
        p99_us: m.median(|r| r.append_latency_us.p99 as f64),
        loss_events: m.worst(|r| r.loss_window.power_cut_bound_events as f64) as u64,
        rss_bytes: m.median(|r| r.rss_peak_bytes as f64),
        storage_bytes_per_event: m.median(|r| r.storage_bytes_per_event),
        feasible: t.feasible(budget),
        changes: space::diff(base, &t.store),
    }
}

/// The configurations no other beats on all of throughput (higher), append p99, power-cut
/// loss and peak memory (lower), by their medians; fastest first.
pub fn front(trials: &[Trial], budget: &Budget) -> Vec<Point> {
    let Some(start) = trials.first() else {
        return Vec::new();
    };
    let pts: Vec<Point> = trials
        .iter()
        .filter(|t| t.error.is_none() && !t.measured.runs.is_empty())
        .map(|t| point(t, &start.store, budget))
        .collect();
    let key = |p: &Point| [-p.throughput, p.p99_us, p.loss_events as f64, p.rss_bytes];
    let dominates = |a: &Point, b: &Point| {
        let (ka, kb) = (key(a), key(b));
        ka.iter().zip(&kb).all(|(x, y)| x <= y) && ka.iter().zip(&kb).any(|(x, y)| x < y)
    };
    let mut f: Vec<Point> = pts
        .iter()
        .filter(|p| !pts.iter().any(|q| dominates(q, p)))
        .cloned()
        .collect();
    f.sort_by(|a, b| b.throughput.total_cmp(&a.throughput));
    f
}

/// The pick's margin on every budget item.
pub fn margins(t: &Trial, budget: &Budget) -> Vec<Margin> {
    budget
        .items
        .iter()
        .map(|&item| {
            let value = item.value(&t.measured);
            let spare = value.map(|v| 1.0 - v / item.limit().max(1e-9));
            let text = match (value, spare) {
                (Some(v), Some(s)) if s >= 0.0 => format!(
                    "{:<6} {} of <= {}: {} to spare",
                    item.key(),
                    item.text(v),
                    item.text(item.limit()),
                    units::percent(s)
                ),
                (Some(v), _) => format!(
                    "{:<6} {} of <= {}: BROKEN by {}",
                    item.key(),
                    item.text(v),
                    item.text(item.limit()),
                    item.text(v - item.limit())
                ),
                (None, _) => format!("{:<6} not measured on this platform", item.key()),
            };
            Margin {
                item,
                value,
                spare,
                text,
            }
        })
        .collect()
}

/// What holds the pick where it is, in words.
pub fn binding(s: &Search<'_>, pick: &Trial) -> String {
    // A knob the budget cut short, standing at its cap: the cap binds. The step below
    // says what it is worth.
    for knob in &KNOBS {
        let Some(cap) = space::cap(knob, s.budget) else {
            continue;
        };
        let at = (knob.get)(&pick.store);
        let top = knob.ladder.last().copied().unwrap_or(0);
        if at != cap.max || cap.max >= top {
            continue;
        }
        let below = space::neighbour(&space::values(knob, s.budget), at, false)
            .and_then(|v| {
                let mut store = pick.store.clone();
                (knob.set)(&mut store, v);
                s.trials
                    .iter()
                    .find(|t| t.store == store && t.error.is_none())
            })
            .map_or(String::new(), |t| {
                let thr = |t: &Trial| t.measured.median(|r| r.throughput_events_per_s);
                format!(
                    "; one step down, {} {}, ran {} against {}",
                    knob.name,
                    (knob.show)((knob.get)(&t.store)),
                    units::rate_of(thr(t), "events"),
                    units::rate_of(thr(pick), "events")
                )
            });
        return format!(
            "{} {} is the largest that keeps {} <= {} ({}){}",
            knob.name,
            (knob.show)(at),
            cap.item.what(),
            cap.item.text(cap.item.limit()),
            cap.rule,
            below
        );
    }
    // A neighbour that was better but broke the budget: the item it broke binds.
    let blocked = s
        .trials
        .iter()
        .filter(|t| t.error.is_none() && !t.feasible(s.budget))
        .filter(|t| better(&t.measured, &pick.measured))
        .filter_map(|t| {
            let (item, v) = s.budget.violations(&t.measured).into_iter().next()?;
            Some((t, item, v?))
        })
        .max_by(|a, b| {
            let thr = |t: &Trial| t.measured.median(|r| r.throughput_events_per_s);
            thr(a.0).total_cmp(&thr(b.0))
        });
    if let Some((t, item, v)) = blocked {
        let change = space::diff(&pick.store, &t.store).join(", ");
        return format!(
            "{}: {change} would reach {} but breaks {} <= {} ({})",
            item.key(),
            units::rate_of(t.measured.median(|r| r.throughput_events_per_s), "events"),
            item.what(),
            item.text(item.limit()),
            item.text(v)
        );
    }
    let tightest = margins(pick, s.budget)
        .into_iter()
        .filter_map(|m| m.spare.map(|sp| (m.item, sp)))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    let tail = tightest.map_or(String::new(), |(i, sp)| {
        format!(
            "; the tightest item is {} ({} to spare)",
            i.key(),
            units::percent(sp)
        )
    });
    format!("no budget item binds: no change the search tried was better beyond the noise{tail}")
}

/// Configurations inside the budget that ran faster than the pick by their medians but
/// within its noise (not better by the search's rule): (trial, median events/s).
pub fn level_with(trials: &[Trial], budget: &Budget, pick: &Trial) -> Vec<(usize, f64)> {
    let thr = |t: &Trial| t.measured.median(|r| r.throughput_events_per_s);
    let mut v: Vec<(usize, f64)> = trials
        .iter()
        .filter(|t| t.id != pick.id && t.feasible(budget))
        .filter(|t| thr(t) > thr(pick) && !better(&t.measured, &pick.measured))
        .map(|t| (t.id, thr(t)))
        .collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    v
}

/// The words for `level_with`, if there is any.
pub fn level_words(level: &[(usize, f64)]) -> Option<String> {
    if level.is_empty() {
        return None;
    }
    let list: Vec<String> = level
        .iter()
        .take(3)
        .map(|(id, t)| format!("trial {id} ({})", units::rate_of(*t, "events")))
        .collect();
    Some(format!(
        "faster by median but within the pick's noise: {}; more repeats would tell them apart",
        list.join(", ")
    ))
}

/// For a budget nothing met: each item the nearest configuration breaks, with the best
/// value any configuration reached for it.
pub fn unmet(s: &Search<'_>) -> (Option<usize>, Vec<Unmet>) {
    let nearest = s
        .trials
        .iter()
        .enumerate()
        .filter(|(_, t)| t.error.is_none())
        .min_by(|a, b| distance(a.1, s.budget).total_cmp(&distance(b.1, s.budget)))
        .map(|(i, _)| i);
    let Some(n) = nearest else {
        return (None, Vec::new());
    };
    let items = s
        .budget
        .violations(&s.trials[n].measured)
        .into_iter()
        .map(|(item, _)| {
            let best = s
                .trials
                .iter()
                .filter(|t| t.error.is_none())
                .filter_map(|t| item.value(&t.measured).map(|v| (t.id, v)))
                .min_by(|a, b| a.1.total_cmp(&b.1));
            let text = match best {
                Some((id, v)) if v <= item.limit() => format!(
                    "{item}: trial {id} met it ({}) but broke another item",
                    item.text(v)
                ),
                Some((id, v)) => format!(
                    "{item}: no configuration met it; the best was {} (trial {id}, {} the limit)",
                    item.text(v),
                    units::times(v / item.limit().max(1e-9))
                ),
                None => format!("{item}: not measured on this platform"),
            };
            Unmet {
                item,
                best: best.map(|b| b.1),
                trial: best.map(|b| b.0),
                text,
            }
        })
        .collect();
    (Some(n), items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::search::tests::measured;

    fn trial(id: usize, throughput: f64, p99: u64, rss: u64) -> Trial {
        let mut m = measured(&[(throughput, p99, rss)]);
        m.store.fd_budget = id as u32;
        Trial {
            id,
            store: m.store.clone(),
            measured: m,
            error: None,
        }
    }

    #[test]
    fn the_front_keeps_only_configurations_no_other_beats_on_every_figure_fastest_first(
    ) -> Result<(), String> {
        let budget = Budget::parse("p99<=1ms")?;
        let trials = [
            trial(1, 100.0, 500, 10),
            trial(2, 200.0, 900, 10),
            trial(3, 150.0, 950, 12),
            trial(4, 300.0, 2_000, 10),
            trial(5, 90.0, 400, 20),
        ];
        let f = front(&trials, &budget);
        let ids: Vec<usize> = f.iter().map(|p| p.trial).collect();
        assert_eq!(
            ids,
            vec![4, 2, 1, 5],
            "trial 3 is beaten by trial 2 on every figure"
        );
        let feasible: Vec<bool> = f.iter().map(|p| p.feasible).collect();
        assert_eq!(feasible, vec![false, true, true, true]);
        Ok(())
    }
}
