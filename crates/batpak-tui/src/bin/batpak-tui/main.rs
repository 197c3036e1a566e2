//! `batpak-tui`: the workbench (`batpak-tui [DIR]`) and its headless commands.

mod bench;
mod compare;
mod figures;
mod inspect;
mod lifecycle;
mod profile;
mod tune;
mod units;
mod workbench;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The batpak workbench and its headless commands.
///
/// Without a command, `batpak-tui [DIR]` opens the workbench on DIR (default ./data):
/// the engine runs in-process with a workload (paused at start; space runs it) and live
/// panes show what it does.
#[derive(Debug, Parser)]
#[command(
    name = "batpak-tui",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// The data directory (created and marked as workload data if missing).
    #[arg(default_value = "./data")]
    dir: PathBuf,
    /// A built-in preset (default, embedded, server) or a .toml file.
    #[arg(long, default_value = "default")]
    preset: String,
    /// Override a field: `fd_budget=8` ([store]) or `workload.producers=4`.
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    sets: Vec<String>,
    /// Frames per second (1..=30).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=30))]
    fps: u32,
    /// Write synthetic events into a directory that holds other data.
    #[arg(long)]
    allow_existing_data: bool,
    /// Colours: none, ansi16 (default), ansi256, truecolor. NO_COLOR turns them off.
    #[arg(long, value_enum, default_value = "ansi16")]
    color: workbench::Colors,
    /// Plain ASCII instead of box drawing and block characters.
    #[arg(long)]
    ascii: bool,
    /// Another directory of preset files (`*.toml`) for the preset picker (`p`).
    #[arg(long)]
    presets_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show segments, event counts and recovery state, without taking the lock (works
    /// while another process holds the store).
    Inspect {
        /// The data directory.
        dir: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run the preset's workload on DIR and report throughput, latency and resources.
    Bench {
        /// The data directory (created and marked as workload data if missing).
        dir: PathBuf,
        #[command(flatten)]
        source: Source,
        /// How long to run: 10s, 500ms, 2m.
        #[arg(long, default_value = "10s", value_parser = bench::parse_duration)]
        duration: std::time::Duration,
        /// Write synthetic events into a directory that holds other data.
        #[arg(long)]
        allow_existing_data: bool,
        /// Print JSON (no progress bar).
        #[arg(long)]
        json: bool,
        /// Run the `[store]` table of this file (a preset, or what `tune` exported)
        /// instead of the preset's; `--set` still applies.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Read a store (read-only, also while another process holds it) and describe its
    /// workload: arrival rate, events per entity (Zipf fit), scopes, payload sizes, kinds,
    /// causal shares; `--toml` writes it as a `[workload]` table `bench --workload` replays.
    Profile {
        /// The data directory.
        dir: PathBuf,
        /// Only events of the last DUR (by the system clock): 30s, 15m, 12h, 7d.
        #[arg(long, value_parser = bench::parse_duration)]
        since: Option<std::time::Duration>,
        /// Print the whole profile as JSON.
        #[arg(long, conflicts_with = "toml")]
        json: bool,
        /// Print a preset file holding the `[workload]` table.
        #[arg(long)]
        toml: bool,
    },
    /// Run two presets on the same workload in fresh subdirectories and say, figure by
    /// figure, which is better.
    Compare {
        /// The first preset.
        a: String,
        /// The second preset.
        b: String,
        /// The preset whose [workload] both run (default: the first).
        #[arg(long)]
        workload: Option<String>,
        /// How long each runs.
        #[arg(long, default_value = "10s", value_parser = bench::parse_duration)]
        duration: std::time::Duration,
        /// Where the runs go (on the disk under test).
        #[arg(long, default_value = "./batpak-compare")]
        dir: PathBuf,
        /// Keep the run directories.
        #[arg(long)]
        keep: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Search the StoreConfig fields that matter (sync cadence and mode, channel and
    /// broadcast capacities, segment size, fd budget, cache map size) for the fastest
    /// configuration inside a budget, on scratch stores in DIR; print the Pareto front,
    /// the pick with its margins and what binds it, and prove it with a fresh bench.
    Tune {
        /// Where the scratch stores and the exported preset go (on the disk under test).
        #[arg(default_value = "./batpak-tune")]
        dir: PathBuf,
        #[command(flatten)]
        source: Source,
        /// The limits: 'loss<=100, p99<=2ms, rss<=64MiB, fds<=16, disk<=1GiB, wear<=300B'
        /// (loss in events or a size; wear in bytes sent to storage per event, or 3x).
        #[arg(long, default_value = "", value_parser = tune::Budget::parse)]
        budget: tune::Budget,
        /// The whole time box, proof included: 5m, 90s.
        #[arg(long, default_value = "5m", value_parser = bench::parse_duration)]
        time: std::time::Duration,
        /// Each run's duration (default: a hundredth of --time, 1s to 10s).
        #[arg(long, value_parser = bench::parse_duration)]
        run: Option<std::time::Duration>,
        /// Runs per configuration, to know its noise.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(2..=20))]
        repeats: u8,
        /// Print JSON (no progress bar).
        #[arg(long)]
        json: bool,
    },
    /// Delete a directory that holds nothing but workload data.
    Wipe {
        /// The directory.
        dir: PathBuf,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
        /// Accepted for symmetry; wipe prints one line either way.
        #[arg(long)]
        json: bool,
    },
    /// Print a preset's store configuration as a Rust snippet or as preset TOML.
    Export {
        /// A built-in preset (default, embedded, server) or a .toml file.
        #[arg(long, default_value = "default")]
        preset: String,
        /// Override a field: `fd_budget=8` ([store]) or `workload.producers=4`.
        #[arg(long = "set", value_name = "FIELD=VALUE")]
        sets: Vec<String>,
        /// The data directory written into the snippet.
        #[arg(long, default_value = "./data")]
        dir: PathBuf,
        /// `rust` or `toml`.
        #[arg(long, value_enum, default_value = "rust")]
        format: Format,
        /// Print JSON: {"format": ..., "text": ...}.
        #[arg(long)]
        json: bool,
    },
    /// Check a store end to end without taking its lock: every frame, seals, numbering,
    /// sequences, causal references, the checkpoint. Exit 0 clean, 1 problems, 2 could not run.
    Verify {
        /// The data directory.
        dir: PathBuf,
        /// A chain head (64 hex digits) printed by an earlier verify: also check that the
        /// history up to where it was taken is unchanged.
        #[arg(long, value_name = "HEX")]
        expect_head: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Copy a consistent store to DEST while it keeps running: sealed segments are
    /// hard-linked where possible. Works through the read-only open on a store another
    /// process holds.
    Snapshot {
        /// The data directory.
        dir: PathBuf,
        /// Where the copy goes (a new or empty directory).
        dest: PathBuf,
        /// Print JSON (no progress bar).
        #[arg(long)]
        json: bool,
    },
    /// Remove what the retention rules no longer keep, rewriting sealed segments
    /// (crash-safe; the active segment is never touched). Needs the lock, except --dry-run.
    Compact {
        /// The data directory.
        dir: PathBuf,
        /// Report what would be removed; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Remove events older than this: 30s, 15m, 12h, 7d.
        #[arg(long, value_parser = bench::parse_duration)]
        max_age: Option<std::time::Duration>,
        /// Keep the segment files under this size: "512 MiB", "2 GB", bytes.
        #[arg(long, value_parser = parse_size)]
        max_bytes: Option<u64>,
        /// Remove the events of tombstoned entities and scopes written before the tombstone.
        #[arg(long)]
        tombstones: bool,
        /// Print JSON (no progress bar).
        #[arg(long)]
        json: bool,
    },
    /// Open a damaged store keeping everything before the first bad frame; the rest moves
    /// to DIR/salvaged/ and nothing is deleted.
    Salvage {
        /// The data directory.
        dir: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Where a run's preset and workload come from (`bench`, `tune`).
#[derive(Debug, clap::Args)]
struct Source {
    /// A built-in preset (default, embedded, server) or a .toml file.
    #[arg(long, default_value = "default")]
    preset: String,
    /// Override a field: `fd_budget=8` ([store]) or `workload.producers=4`.
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    sets: Vec<String>,
    /// Run the `[workload]` table of this file (a preset, or `profile --toml` output)
    /// instead of the preset's; `--set workload.*` still applies.
    #[arg(long, value_name = "FILE", conflicts_with = "profile")]
    workload: Option<PathBuf>,
    /// Profile the store in this directory (read-only) and run its workload.
    #[arg(long, value_name = "DIR")]
    profile: Option<PathBuf>,
    /// With --profile: only the events of the last DUR.
    #[arg(long, value_parser = bench::parse_duration, requires = "profile")]
    since: Option<std::time::Duration>,
}

impl Source {
    /// The preset with its workload replaced as asked, `config`'s `[store]` if given,
    /// then every `--set`.
    fn load(
        &self,
        config: Option<&std::path::Path>,
    ) -> Result<batpak_tui::preset::Preset, Box<dyn std::error::Error>> {
        let mut p = batpak_tui::preset::Preset::load(&self.preset, &[])?;
        p.workload = profile::workload(
            &p,
            self.workload.as_deref(),
            self.profile.as_deref(),
            self.since,
        )?;
        if let Some(file) = config {
            p.store = config_file(file)?.store;
        }
        Ok(p.with_sets(&self.sets)?)
    }

    /// What the workload is, in words.
    fn name(&self) -> String {
        match (&self.workload, &self.profile) {
            (Some(f), _) => f.display().to_string(),
            (_, Some(d)) => format!("the profile of {}", d.display()),
            _ => self.preset.clone(),
        }
    }
}

/// Export formats.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    /// Statements building the `StoreConfig`.
    Rust,
    /// A preset file.
    Toml,
}

/// A size: `16 MiB` (binary), `16 MB` (decimal) or bytes.
fn parse_size(s: &str) -> Result<u64, String> {
    batpak_tui::preset::Size::parse(s).map(|z| z.0)
}

/// A preset file read for its `[store]` table (`bench --config`).
fn config_file(
    file: &std::path::Path,
) -> Result<batpak_tui::preset::Preset, Box<dyn std::error::Error>> {
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {name}: {e}"))?;
    Ok(batpak_tui::preset::Preset::parse(&text, &name)?)
}

fn export(
    preset: &str,
    sets: &[String],
    dir: &std::path::Path,
    format: Format,
    json: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let p = batpak_tui::preset::Preset::load(preset, sets)?;
    let (name, text) = match format {
        Format::Rust => (
            "rust",
            batpak_tui::preset::rust_snippet(&p.store_config(dir)),
        ),
        Format::Toml => ("toml", batpak_tui::preset::toml_text(&p)?),
    };
    if json {
        println!("{}", serde_json::json!({ "format": name, "text": text }));
    } else {
        print!("{text}");
    }
    Ok(())
}

fn verify(dir: &std::path::Path, expect_head: Option<&str>, json: bool) -> ExitCode {
    let expect = match expect_head.map(|h| (h, batpak::codec::chain::from_hex(h))) {
        None => None,
        Some((_, Some(v))) => Some(v),
        Some((h, None)) => {
            eprintln!("batpak-tui: --expect-head {h:?} is not a chain head: 64 hex digits, as verify prints it");
            return ExitCode::from(2);
        }
    };
    let mut progress = lifecycle::Progress::new(json, false);
    let mut show = |d, t| progress.show("segments", d, t);
    let report = match expect {
        Some(v) => batpak::store::verify_against(dir, v, &mut show),
        None => batpak::store::verify_with(dir, &mut show),
    };
    progress.finish();
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            eprintln!("batpak-tui: cannot verify {}: {e}", dir.display());
            return ExitCode::from(2);
        }
    };
    if json {
        println!(
            "{}",
            serde_json::json!({ "clean": report.is_clean(), "report": report })
        );
    } else {
        for p in &report.problems {
            println!("problem: {p}");
        }
        for n in &report.notes {
            println!("note: {n}");
        }
        let verdict = if report.is_clean() {
            "clean".to_string()
        } else {
            format!("{} problems", report.problems.len())
        };
        let removed = if report.removed > 0 {
            format!(" ({} removed by compaction)", units::count(report.removed))
        } else {
            String::new()
        };
        println!(
            "{}: {} events{removed} in {} segments and {} cached projections checked in {}: {verdict}",
            dir.display(),
            units::count(report.events),
            units::count(report.segments as u64),
            units::count(report.cache_values),
            units::duration(report.elapsed)
        );
        if let Some(head) = &report.chain_head {
            println!(
                "hash chain: {} linked events checked; head {head}",
                report.linked_events
            );
            if let Some(sealed) = &report.sealed_head {
                println!("sealed head {sealed} (stays findable after compaction)");
            }
            match report.head_found {
                Some(true) => println!("the recorded head is in the chain: the history up to it is unchanged"),
                Some(false) => println!("the recorded head is NOT in the chain"),
                None => println!("record a head elsewhere; `verify --expect-head HEX` later proves the history up to it unchanged"),
            }
        }
    }
    if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(command) = cli.command else {
        let args = workbench::Args {
            dir: cli.dir,
            preset: cli.preset,
            sets: cli.sets,
            fps: cli.fps,
            allow_existing_data: cli.allow_existing_data,
            colors: cli.color,
            ascii: cli.ascii,
            presets_dir: cli.presets_dir,
        };
        return report(workbench::run(args));
    };
    if let Command::Verify {
        dir,
        expect_head,
        json,
    } = &command
    {
        return verify(dir, expect_head.as_deref(), *json);
    }
    let result = match command {
        Command::Inspect { dir, json } => inspect::inspect(&dir, json),
        Command::Salvage { dir, json } => inspect::salvage(&dir, json),
        Command::Snapshot { dir, dest, json } => lifecycle::snapshot(&dir, &dest, json),
        Command::Compact {
            dir,
            dry_run,
            max_age,
            max_bytes,
            tombstones,
            json,
        } => lifecycle::compact(
            &dir,
            &batpak::store::RetentionPolicy {
                max_age,
                max_total_bytes: max_bytes,
                tombstones,
            },
            dry_run,
            json,
        ),
        Command::Bench {
            dir,
            source,
            duration,
            allow_existing_data,
            json,
            config,
        } => source
            .load(config.as_deref())
            .and_then(|p| bench::run(&dir, &p, duration, json, allow_existing_data))
            .and_then(|r| bench::print(&r, json)),
        Command::Profile {
            dir,
            since,
            json,
            toml,
        } => {
            let out = match (json, toml) {
                (true, _) => profile::Output::Json,
                (_, true) => profile::Output::Toml,
                _ => profile::Output::Text,
            };
            profile::profile(&dir, since, out)
        }
        Command::Compare {
            a,
            b,
            workload,
            duration,
            dir,
            keep,
            json,
        } => compare::compare(&a, &b, workload.as_deref(), duration, &dir, keep, json),
        Command::Tune {
            dir,
            source,
            budget,
            time,
            run,
            repeats,
            json,
        } => source.load(None).and_then(|p| {
            tune::tune(tune::Args {
                dir,
                preset: p,
                from: source.name(),
                budget,
                time,
                trial: run,
                repeats: usize::from(repeats),
                json,
            })
        }),
        Command::Wipe { dir, yes, json: _ } => bench::wipe(&dir, yes),
        Command::Verify { .. } => Ok(()),
        Command::Export {
            preset,
            sets,
            dir,
            format,
            json,
        } => export(&preset, &sets, &dir, format, json),
    };
    report(result)
}

fn report(result: Result<(), Box<dyn std::error::Error>>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Not eprintln!: after a hang-up stderr may be a dead terminal, and a failed
            // write must not turn the error into a panic.
            let _ = writeln!(std::io::stderr(), "batpak-tui: {e}");
            ExitCode::FAILURE
        }
    }
}
