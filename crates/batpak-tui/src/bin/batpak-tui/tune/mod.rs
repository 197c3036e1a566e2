//! `tune`: search the `StoreConfig` fields that matter for the best configuration inside a
//! budget, on scratch stores on the disk under test, and prove the pick with a fresh run.
//!
//! Every run is a `batpak-tui bench` child process, so memory and descriptors are the
//! configuration's own; the rules of the tuning guide's trade-off matrix set the starting
//! point and the caps (`space`), the search climbs from there (`search`), and the report
//! says what it found (`report`).

mod background;
mod budget;
mod report;
mod search;
mod space;
mod trial;

use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use batpak_tui::preset::Preset;
use serde::Serialize;

pub use background::{Background, Progress};
pub use budget::{Budget, Item};
pub use report::{front as report_front, point as report_point};
use report::{Margin, Point, Unmet};
use search::Search;
pub use search::Trial;
use trial::Bench;

use crate::bench::BenchResult;
use crate::units;

/// What `tune` was asked.
#[derive(Debug, Clone)]
pub struct Args {
    /// Where the scratch stores and the exported preset go.
    pub dir: PathBuf,
    /// The preset whose workload (unless replaced) and `[store]` the search starts from.
    pub preset: Preset,
    /// Its name, for the report.
    pub from: String,
    /// The budget.
    pub budget: Budget,
    /// The whole time box, proof included.
    pub time: Duration,
    /// Each run's duration (`None`: from the time box).
    pub trial: Option<Duration>,
    /// Runs per configuration.
    pub repeats: usize,
    /// Print JSON.
    pub json: bool,
}

/// What `tune --json` prints.
#[derive(Debug, Serialize)]
struct Report {
    workload_from: String,
    budget: Budget,
    run_seconds: f64,
    repeats: usize,
    configs_tried: usize,
    runs: usize,
    elapsed_s: f64,
    interrupted: bool,
    converged: bool,
    /// Every step the search took, in order.
    path: Vec<String>,
    front: Vec<Point>,
    recommended: Option<Recommended>,
    infeasible: Option<Infeasible>,
    proof: Option<Proof>,
}

#[derive(Debug, Serialize)]
struct Recommended {
    point: Point,
    changes_from_start: Vec<String>,
    margins: Vec<Margin>,
    binding: String,
    /// Trials inside the budget, faster by median, within the pick's noise.
    level_with: Vec<usize>,
    preset_file: PathBuf,
    rust: String,
    toml: String,
}

#[derive(Debug, Serialize)]
struct Infeasible {
    nearest: Option<Point>,
    unmet: Vec<Unmet>,
    /// Why configurations failed to run at all (each reason once).
    failures: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Proof {
    command: String,
    holds: bool,
    margins: Vec<Margin>,
    result: BenchResult,
}

/// The time one run gets from the box: about a hundredth, 1 s to 10 s.
fn run_time(time: Duration) -> Duration {
    (time / 100).clamp(Duration::from_secs(1), Duration::from_secs(10))
}

/// The proof run: about a tenth of the box, at least two runs' worth, at most 30 s.
fn proof_time(time: Duration, run: Duration) -> Duration {
    (time / 10).clamp(run * 2, Duration::from_secs(30).max(run * 2))
}

/// The file that marks a directory as `tune`'s own.
const MARK: &str = ".batpak-tune";

/// Makes `dir` tune's: new, empty, or an earlier tune's (it holds the workload, the
/// exported preset and the scratch store `run/`).
fn prepare(dir: &Path) -> Result<(), Box<dyn Error>> {
    let occupied = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some());
    if occupied && !dir.join(MARK).is_file() {
        return Err(format!(
            "{} holds files tune did not write; give tune a new or empty directory",
            dir.display()
        )
        .into());
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    std::fs::write(
        dir.join(MARK),
        "scratch stores and results of batpak-tui tune\n",
    )?;
    Ok(())
}

/// Makes `dir` tune's and writes the workload every run replays: where runs of `run`
/// each go.
fn scratch(dir: &Path, preset: &Preset, run: Duration) -> Result<Bench, Box<dyn Error>> {
    prepare(dir)?;
    let bench = Bench {
        exe: std::env::current_exe()?,
        workload: dir.join("workload.toml"),
        store_dir: dir.join("run"),
        config_dir: dir.to_path_buf(),
        duration: run,
    };
    std::fs::write(&bench.workload, batpak_tui::preset::toml_text(preset)?)?;
    Ok(bench)
}

/// Runs `tune`.
pub fn tune(a: Args) -> Result<(), Box<dyn Error>> {
    let started = Instant::now();
    let run = a.trial.unwrap_or_else(|| run_time(a.time));
    let proof_run = proof_time(a.time, run);
    let bench = scratch(&a.dir, &a.preset, run)?;
    let stop = Arc::new(AtomicBool::new(false));
    // Ctrl-C once: stop and report the best so far. Twice: exit at once.
    signal_hook::flag::register_conditional_shutdown(
        signal_hook::consts::SIGINT,
        130,
        stop.clone(),
    )?;
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    let deadline = started + a.time.saturating_sub(proof_run + run);
    if !a.json {
        eprintln!(
            "tuning for the workload of {} within {}: runs of {} repeated {} times, until {} (then a {} proof run); Ctrl-C stops with the best so far",
            a.from,
            a.budget,
            units::duration(run),
            a.repeats,
            units::duration(a.time),
            units::duration(proof_run)
        );
    }
    let mut s = Search::new(&bench, &a.preset, &a.budget, a.repeats, &stop, deadline);
    s.progress = !a.json;
    s.run(space::start(&a.preset.store, &a.budget));
    if !a.json {
        eprintln!();
    }
    let report = finish(&a, &s, &bench, proof_run, started)?;
    bench.clean();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report, &s);
    }
    match (&report.recommended, &report.proof) {
        (None, _) if s.trials.is_empty() && s.interrupted => {
            Err("interrupted before any configuration finished".into())
        }
        (None, _) if s.trials.is_empty() => Err("the time box ended before any configuration ran: give --time more than --run x --repeats".into()),
        (None, _) => Err("no configuration met the budget (see above)".into()),
        (Some(_), Some(p)) if !p.holds => {
            Err("the proof run of the pick broke the budget (see above)".into())
        }
        _ => Ok(()),
    }
}

fn finish(
    a: &Args,
    s: &Search<'_>,
    bench: &Bench,
    proof_run: Duration,
    started: Instant,
) -> Result<Report, Box<dyn Error>> {
    let start = s.trials.first();
    let pick = s
        .best
        .map(|b| &s.trials[b])
        .filter(|t| t.feasible(&a.budget));
    let mut recommended = None;
    let mut infeasible = None;
    let mut proof = None;
    if let (Some(pick), Some(start)) = (pick, start) {
        let mut p = a.preset.clone();
        p.store = pick.store.clone();
        let file = a.dir.join("tuned.toml");
        let toml = batpak_tui::preset::toml_text(&p)?;
        std::fs::write(&file, &toml)?;
        let rust = batpak_tui::preset::rust_snippet(&p.store_config("./data"));
        std::fs::write(a.dir.join("tuned.rs"), &rust)?;
        if !s.interrupted {
            proof = Some(prove(a, bench, &file, proof_run)?);
        }
        recommended = Some(Recommended {
            point: report::point(pick, &start.store, &a.budget),
            changes_from_start: space::diff(&a.preset.store, &pick.store),
            margins: report::margins(pick, &a.budget),
            binding: report::binding(s, pick),
            level_with: report::level_with(&s.trials, &a.budget, pick)
                .into_iter()
                .map(|(id, _)| id)
                .collect(),
            preset_file: file,
            rust,
            toml,
        });
    } else if let Some(start) = start {
        let (nearest, unmet) = report::unmet(s);
        let mut failures: Vec<String> = Vec::new();
        for e in s.trials.iter().filter_map(|t| t.error.clone()) {
            if !failures.contains(&e) {
                failures.push(e);
            }
        }
        infeasible = Some(Infeasible {
            nearest: nearest.map(|n| report::point(&s.trials[n], &start.store, &a.budget)),
            unmet,
            failures,
        });
    }
    Ok(Report {
        workload_from: a.from.clone(),
        budget: a.budget.clone(),
        run_seconds: bench.duration.as_secs_f64(),
        repeats: a.repeats,
        configs_tried: s.trials.len(),
        runs: s.trials.iter().map(|t| t.measured.runs.len()).sum(),
        elapsed_s: started.elapsed().as_secs_f64(),
        interrupted: s.interrupted,
        converged: s.converged,
        path: s
            .moves
            .iter()
            .map(|m| {
                let k = &space::KNOBS[m.knob];
                format!("{} {} -> {}", k.name, (k.show)(m.from), (k.show)(m.to))
            })
            .collect(),
        front: report::front(&s.trials, &a.budget),
        recommended,
        infeasible,
        proof,
    })
}

/// Runs the pick once more as a fresh `bench`, as anyone can, and holds it to the budget.
fn prove(
    a: &Args,
    bench: &Bench,
    config: &Path,
    duration: Duration,
) -> Result<Proof, Box<dyn Error>> {
    let b = Bench {
        duration,
        ..bench.clone()
    };
    if !a.json {
        eprintln!(
            "proof: a fresh {} bench of the pick",
            units::duration(duration)
        );
    }
    let command = format!(
        "batpak-tui bench {} --preset {} --config {} --duration {}s --json",
        b.store_dir.display(),
        b.workload.display(),
        config.display(),
        duration.as_secs()
    );
    let never = AtomicBool::new(false);
    let result = b
        .run_once(config, &never)
        .map_err(|e| format!("the proof run failed: {e:?}"))?;
    let measured = trial::Measured {
        store: result.config.clone(),
        runs: vec![result.clone()],
    };
    let t = search::Trial {
        id: 0,
        store: measured.store.clone(),
        measured,
        error: None,
    };
    Ok(Proof {
        command,
        holds: t.feasible(&a.budget),
        margins: report::margins(&t, &a.budget),
        result,
    })
}

fn print_report(r: &Report, s: &Search<'_>) {
    let how = if r.interrupted {
        "interrupted"
    } else if r.converged {
        "converged"
    } else {
        "time box ended"
    };
    println!(
        "searched {} configurations ({} runs of {}, each configuration {} times) in {}: {how}",
        r.configs_tried,
        r.runs,
        units::duration(Duration::from_secs_f64(r.run_seconds)),
        r.repeats,
        units::clock(Duration::from_secs_f64(r.elapsed_s))
    );
    println!("budget: {}", r.budget);
    print_front(&r.front, r.recommended.as_ref().map(|p| p.point.trial));
    if let Some(rec) = &r.recommended {
        print_pick(rec);
    }
    if let Some(inf) = &r.infeasible {
        println!();
        println!("no configuration met the budget.");
        for u in &inf.unmet {
            println!("  {}", u.text);
        }
        if let Some(n) = &inf.nearest {
            println!("nearest: trial {}: {}", n.trial, changes(&n.changes));
        }
        for f in &inf.failures {
            println!("  a run failed: {f}");
        }
    }
    match (&r.proof, s.interrupted) {
        (Some(p), _) => print_proof(p),
        (None, true) => println!("\ninterrupted: no proof run. Check the pick with `batpak-tui bench DIR --config FILE`."),
        (None, false) => {}
    }
}

fn changes(c: &[String]) -> String {
    if c.is_empty() {
        "the starting configuration".into()
    } else {
        c.join(", ")
    }
}

fn print_front(front: &[Point], pick: Option<usize>) {
    println!();
    println!("Pareto front (throughput x append p99 x power-cut loss x peak memory), with");
    println!("storage writes per event (wear); * inside the budget, > the pick:");
    println!(
        "  {:>5} {:>16} {:>9} {:>7} {:>10} {:>7}  changes from the workload's config",
        "trial", "throughput", "p99", "loss", "memory", "wear"
    );
    for p in front.iter().take(12) {
        let mark = match (Some(p.trial) == pick, p.feasible) {
            (true, _) => ">",
            (false, true) => "*",
            _ => " ",
        };
        println!(
            "{mark} {:>5} {:>9} ±{:<5} {:>9} {:>7} {:>10} {:>5} B  {}",
            p.trial,
            units::rate(p.throughput),
            units::percent(p.throughput_noise / 2.0),
            units::micros(p.p99_us as u64),
            units::count(p.loss_events),
            units::bytes(p.rss_bytes as u64),
            p.storage_bytes_per_event.round(),
            changes(&p.changes)
        );
    }
    if front.len() > 12 {
        println!("  ... {} more (--json lists them all)", front.len() - 12);
    }
}

fn print_pick(rec: &Recommended) {
    println!();
    println!(
        "recommended (trial {}): {}",
        rec.point.trial,
        changes(&rec.changes_from_start)
    );
    for m in &rec.margins {
        println!("  {}", m.text);
    }
    println!("binding: {}", rec.binding);
    if !rec.level_with.is_empty() {
        let ids: Vec<String> = rec
            .level_with
            .iter()
            .map(|i| format!("trial {i}"))
            .collect();
        println!(
            "within the noise: {} ran faster by median, not beyond the pick's spread; more --repeats would tell them apart",
            ids.join(", ")
        );
    }
    println!();
    println!("as Rust:");
    print!("{}", rec.rust);
    println!(
        "written to {} and {} (a preset: `bench --config` and the workbench's --preset take it)",
        rec.preset_file.with_extension("rs").display(),
        rec.preset_file.display()
    );
}

fn print_proof(p: &Proof) {
    println!();
    println!(
        "proof ({}): {}, append p99 {}; {}",
        p.command,
        units::rate_of(p.result.throughput_events_per_s, "events"),
        units::micros(p.result.append_latency_us.p99),
        if p.holds {
            "every budget item holds"
        } else {
            "THE BUDGET IS BROKEN"
        }
    );
    for m in &p.margins {
        println!("  {}", m.text);
    }
}
