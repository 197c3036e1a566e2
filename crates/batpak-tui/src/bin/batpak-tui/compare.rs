//! `compare`: two configurations on the same workload, figure by figure, with the better
//! side named.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Duration;

use batpak_tui::preset::{Preset, WorkloadSpec};
use batpak_tui::workload;
use serde::Serialize;

use crate::bench::{run, BenchResult};
use crate::figures::{rows, Better};
use crate::units;

/// Differences smaller than this share of the larger value are not called better: one
/// short run of each side is not precise enough to tell them apart.
const SAME: f64 = 0.05;

/// Which side is better at one figure, in words: (the better side, the words), such as
/// `server 3.2x better`. No side is better where the two are about the same, where a
/// side did not measure it, or where more of it is neither better nor worse.
fn verdict(
    better: Better,
    a: (&str, Option<f64>),
    b: (&str, Option<f64>),
) -> (Option<String>, String) {
    let ((an, Some(av)), (bn, Some(bv))) = (a, b) else {
        return (None, "not measured on both sides".into());
    };
    let ((hi, hv), (lo, lv)) = if av >= bv {
        ((an, av), (bn, bv))
    } else {
        ((bn, bv), (an, av))
    };
    if hv <= 0.0 || (hv - lv) / hv < SAME {
        return (None, "about the same".into());
    }
    // How many times the one is the other; `None`: the smaller is zero.
    let ratio = (lv > 0.0).then(|| units::times(hv / lv));
    let (winner, words) = match (better, &ratio) {
        (Better::Higher, Some(r)) => (hi, format!("{hi} {r} better")),
        (Better::Higher, None) => (hi, format!("{hi} better ({lo}: none)")),
        (Better::Lower, Some(r)) => (lo, format!("{lo} {r} better")),
        (Better::Lower, None) => (lo, format!("{lo} better (none)")),
        (Better::TradeOff(means), Some(r)) => {
            return (None, format!("neither: {hi} {r} higher ({means})"))
        }
        (Better::TradeOff(means), None) => {
            return (None, format!("neither: only {hi} has any ({means})"))
        }
    };
    (Some(winner.to_string()), words)
}

/// The names the two sides go by: a preset's name or a file's stem, told apart when
/// they are the same.
fn side_names(a: &str, b: &str) -> [String; 2] {
    let stem = |name: &str| {
        Path::new(name)
            .file_stem()
            .map_or(name.to_string(), |s| s.to_string_lossy().into_owned())
    };
    let (x, y) = (stem(a), stem(b));
    if x == y {
        [format!("{x} (first)"), format!("{y} (second)")]
    } else {
        [x, y]
    }
}

/// One side of a comparison, as `compare --json` prints it.
#[derive(Debug, Clone, Serialize)]
struct Side {
    name: String,
    preset: String,
    result: BenchResult,
}

/// One figure of both sides, as `compare --json` prints it.
#[derive(Debug, Clone, Serialize)]
struct Compared {
    figure: &'static str,
    unit: &'static str,
    /// `higher`, `lower`, or `neither` (a trade-off).
    better_when: &'static str,
    /// Each side's value by its name (`null`: not measured).
    values: serde_json::Map<String, serde_json::Value>,
    /// The better side's name; `null` when about the same or a trade-off.
    better: Option<String>,
    verdict: String,
}

/// What `compare --json` prints.
#[derive(Debug, Clone, Serialize)]
struct Comparison {
    /// The preset whose `[workload]` both sides ran.
    workload_from: String,
    workload: WorkloadSpec,
    duration_s: f64,
    sides: [Side; 2],
    figures: Vec<Compared>,
}

fn compared(sides: &[Side; 2]) -> Vec<Compared> {
    let [a, b] = sides;
    rows(&a.result)
        .into_iter()
        .zip(rows(&b.result))
        .map(|(fa, fb)| {
            let (better, verdict) = verdict(
                fa.better,
                (a.name.as_str(), fa.value),
                (b.name.as_str(), fb.value),
            );
            let mut values = serde_json::Map::new();
            for (side, v) in [(a, fa.value), (b, fb.value)] {
                values.insert(side.name.clone(), serde_json::json!(v));
            }
            Compared {
                figure: fa.name,
                unit: fa.unit,
                better_when: match fa.better {
                    Better::Higher => "higher",
                    Better::Lower => "lower",
                    Better::TradeOff(_) => "neither",
                },
                values,
                better,
                verdict,
            }
        })
        .collect()
}

/// `compare A B`: both presets on fresh subdirectories of `parent`, running the same
/// workload (the `[workload]` of `workload`, else of A), figure by figure with the
/// better side named.
pub fn compare(
    a: &str,
    b: &str,
    workload: Option<&str>,
    duration: Duration,
    parent: &Path,
    keep: bool,
    json: bool,
) -> Result<(), Box<dyn Error>> {
    let names = side_names(a, b);
    let from = workload.unwrap_or(a);
    let spec = Preset::load(from, &[])?.workload;
    let [na, nb] = &names;
    let first = run_side(na, a, &spec, duration, parent, keep, json)?;
    let second = run_side(nb, b, &spec, duration, parent, keep, json)?;
    if !keep {
        let _ = std::fs::remove_dir(parent);
    }
    let sides = [first, second];
    let figures = compared(&sides);
    if json {
        let c = Comparison {
            workload_from: from.to_string(),
            workload: spec,
            duration_s: duration.as_secs_f64(),
            sides,
            figures,
        };
        println!("{}", serde_json::to_string_pretty(&c)?);
        return Ok(());
    }
    println!(
        "both ran the [workload] of {from} for {} each; differences under {} are called about the same",
        units::duration(duration),
        units::percent(SAME)
    );
    print_compared(&sides, &figures);
    Ok(())
}

/// Runs one side, preset `preset` under the name `name`, on `spec`, in a fresh
/// subdirectory of `parent` (deleted after unless `keep`).
fn run_side(
    name: &str,
    preset: &str,
    spec: &WorkloadSpec,
    duration: Duration,
    parent: &Path,
    keep: bool,
    json: bool,
) -> Result<Side, Box<dyn Error>> {
    let mut loaded = Preset::load(preset, &[])?;
    loaded.workload = spec.clone();
    let dir: PathBuf = parent.join(name.replace([' ', '(', ')'], ""));
    if dir.exists() {
        workload::wipe(&dir)?;
    }
    if !json {
        eprintln!("running {name} on {}", dir.display());
    }
    let result = run(&dir, &loaded, duration, json, false)?;
    if !keep {
        workload::wipe(&dir)?;
    }
    Ok(Side {
        name: name.to_string(),
        preset: preset.to_string(),
        result,
    })
}

/// The comparison as a table: a column per side, named, and the verdict.
fn print_compared(sides: &[Side; 2], figures: &[Compared]) {
    let [a, b] = sides;
    let w = [&a.name, &b.name]
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0)
        .max(16);
    println!("{:<19} {:>w$} {:>w$}  better", "", a.name, b.name);
    let texts = rows(&a.result).into_iter().zip(rows(&b.result));
    for (f, (fa, fb)) in figures.iter().zip(texts) {
        println!(
            "{:<19} {:>w$} {:>w$}  {}",
            f.figure, fa.text, fb.text, f.verdict
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_names_the_better_side_and_by_how_many_times_and_calls_noise_the_same() {
        let v = |b, x, y| verdict(b, ("embedded", Some(x)), ("server", Some(y)));
        assert_eq!(
            v(Better::Higher, 3_900.0, 55_000.0),
            (Some("server".into()), "server 14x better".into())
        );
        assert_eq!(
            v(Better::Lower, 1_400.0, 226.0),
            (Some("server".into()), "server 6.2x better".into())
        );
        assert_eq!(
            v(Better::Lower, 0.0, 12.0),
            (Some("embedded".into()), "embedded better (none)".into())
        );
        assert_eq!(
            v(Better::Higher, 100.0, 103.0),
            (None, "about the same".into())
        );
        let (side, words) = v(Better::TradeOff("fewer syncs"), 10.0, 800.0);
        assert_eq!(side, None);
        assert_eq!(words, "neither: server 80x higher (fewer syncs)");
        let (side, words) = verdict(Better::Lower, ("a", None), ("b", Some(3.0)));
        assert_eq!((side, words.as_str()), (None, "not measured on both sides"));
    }

    #[test]
    fn both_sides_are_named_even_when_they_are_the_same_preset() {
        assert_eq!(
            side_names("embedded", "./presets/x.toml"),
            ["embedded", "x"]
        );
        assert_eq!(
            side_names("server", "server"),
            ["server (first)", "server (second)"]
        );
    }
}
