//! `profile`: what a real store's log says about its workload, as a `[workload]` table;
//! and the workload `bench --workload FILE` / `--profile DIR` replays.

use std::error::Error;
use std::path::Path;
use std::time::Duration;

use batpak_tui::preset::{Preset, WorkloadSpec};
use batpak_tui::workload::profile::{profile_dir, Profile};

/// How `profile` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// A summary for people.
    Text,
    /// The whole profile as JSON.
    Json,
    /// A preset file holding the `[workload]` table, with the figures as comments.
    Toml,
}

/// `profile DIR [--since DUR]`.
pub fn profile(dir: &Path, since: Option<Duration>, out: Output) -> Result<(), Box<dyn Error>> {
    let p = profile_dir(dir, since)?;
    match out {
        Output::Json => println!("{}", serde_json::to_string_pretty(&p)?),
        Output::Toml => print!("{}", p.to_toml()?),
        Output::Text => print_text(&p),
    }
    Ok(())
}

fn print_text(p: &Profile) {
    let r = &p.rate;
    let e = &p.entities;
    let s = &p.payload;
    println!(
        "{}: {} events over {:.1} s in {} session(s)",
        p.dir.display(),
        p.events,
        r.active_s,
        r.sessions
    );
    println!(
        "{:<18} mean {:.1} events/s; per second p50 {} p99 {} max {}",
        "rate", r.mean_per_s, r.per_second_p50, r.per_second_p99, r.per_second_max
    );
    let fit = if e.skew.uniform {
        "uniform".to_string()
    } else {
        format!(
            "Zipf s = {:.3} over the {} busiest",
            e.skew.s, e.skew.ranks_used
        )
    };
    println!(
        "{:<18} {} ({fit}); busiest {:.2} % of events",
        "entities",
        e.count,
        e.busiest_share * 100.0
    );
    println!("{:<18} {}", "scopes", p.scopes);
    println!(
        "{:<18} min {} p50 {} p90 {} p99 {} max {} (stored bytes, {} bins)",
        "payload",
        s.min_bytes,
        s.p50_bytes,
        s.p90_bytes,
        s.p99_bytes,
        s.max_bytes,
        s.histogram.len()
    );
    let kinds: Vec<String> = p
        .kinds
        .iter()
        .take(6)
        .map(|k| format!("{}.{} {:.1} %", k.category, k.code, k.share * 100.0))
        .collect();
    let more = p.kinds.len().saturating_sub(6);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    println!("{:<18} {}{more}", "kinds", kinds.join(", "));
    println!(
        "{:<18} causation {:.1} %, correlation {:.1} %",
        "causal",
        p.causation_share * 100.0,
        p.correlation_share * 100.0
    );
    for (field, why) in &p.not_recorded {
        println!("{field:<18} {why}");
    }
    println!(
        "(--toml writes the [workload] table; bench --workload FILE or --profile DIR replays it)"
    );
}

/// The workload `bench` runs: `--workload FILE` (the `[workload]` table of a preset or
/// profile file), `--profile DIR` (a profile made now), else the preset's own.
pub fn workload(
    preset: &Preset,
    file: Option<&Path>,
    store: Option<&Path>,
    since: Option<Duration>,
) -> Result<WorkloadSpec, Box<dyn Error>> {
    match (file, store) {
        (Some(_), Some(_)) => Err("give --workload FILE or --profile DIR, not both".into()),
        (Some(f), None) => {
            let text = std::fs::read_to_string(f)
                .map_err(|e| format!("cannot read workload file {}: {e}", f.display()))?;
            Ok(Preset::parse(&text, &f.display().to_string())?.workload)
        }
        (None, Some(d)) => {
            let p = profile_dir(d, since)?;
            eprintln!(
                "replaying the profile of {}: {} events, {:.0} events/s, {} entities (Zipf s = {:.3})",
                d.display(),
                p.events,
                p.rate.mean_per_s,
                p.entities.count,
                p.entities.skew.s
            );
            Ok(p.workload)
        }
        (None, None) => Ok(preset.workload.clone()),
    }
}
