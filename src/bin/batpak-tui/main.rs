//! `batpak-tui`: inspect and repair batpak data directories from the command line.

mod inspect;
mod units;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The batpak workbench and its headless commands.
#[derive(Debug, Parser)]
#[command(name = "batpak-tui", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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

/// Export formats.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    /// Statements building the `StoreConfig`.
    Rust,
    /// A preset file.
    Toml,
}

fn export(
    preset: &str,
    sets: &[String],
    dir: &std::path::Path,
    format: Format,
    json: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let p = batpak::preset::Preset::load(preset, sets)?;
    let (name, text) = match format {
        Format::Rust => ("rust", batpak::preset::rust_snippet(&p.store_config(dir))),
        Format::Toml => ("toml", batpak::preset::toml_text(&p)?),
    };
    if json {
        println!("{}", serde_json::json!({ "format": name, "text": text }));
    } else {
        print!("{text}");
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect { dir, json } => inspect::inspect(&dir, json),
        Command::Salvage { dir, json } => inspect::salvage(&dir, json),
        Command::Export {
            preset,
            sets,
            dir,
            format,
            json,
        } => export(&preset, &sets, &dir, format, json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("batpak-tui: {e}");
            ExitCode::FAILURE
        }
    }
}
