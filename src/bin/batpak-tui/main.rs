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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect { dir, json } => inspect::inspect(&dir, json),
        Command::Salvage { dir, json } => inspect::salvage(&dir, json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("batpak-tui: {e}");
            ExitCode::FAILURE
        }
    }
}
