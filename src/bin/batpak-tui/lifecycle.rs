//! `snapshot`: lifecycle commands on a data directory.

use std::error::Error;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use batpak::prelude::*;
use batpak::OpenError;

use crate::units::{bar, bytes};

/// Opens `dir` read-write, or read-only when another process holds it (saying so).
fn open_any(dir: &Path, json: bool) -> Result<Store, Box<dyn Error>> {
    // Refuses a directory without a store (a read-write open would make one).
    drop(Store::open_read_only(dir)?);
    match Store::open(StoreConfig::new(dir)) {
        Ok(s) => Ok(s),
        Err(OpenError::Locked { .. }) => {
            if !json {
                eprintln!(
                    "{} is held by another process: copying through the read-only open",
                    dir.display()
                );
            }
            Ok(Store::open_read_only(dir)?)
        }
        Err(e) => Err(e.into()),
    }
}

/// A progress line on stderr, redrawn at most ten times a second.
struct Progress {
    last: Instant,
    shown: bool,
    quiet: bool,
}

impl Progress {
    fn new(quiet: bool) -> Self {
        Self {
            last: Instant::now(),
            shown: false,
            quiet,
        }
    }

    fn show(&mut self, what: &str, done: u64, total: u64) {
        if self.quiet || (self.last.elapsed() < Duration::from_millis(100) && done < total) {
            return;
        }
        self.last = Instant::now();
        self.shown = true;
        let f = done as f64 / total.max(1) as f64;
        eprint!(
            "\r{what} {} {} / {}   ",
            bar(f, 30),
            bytes(done),
            bytes(total)
        );
        let _ = std::io::stderr().flush();
    }

    fn finish(&self) {
        if self.shown {
            eprintln!();
        }
    }
}

/// `batpak-tui snapshot DIR DEST`.
pub fn snapshot(dir: &Path, dest: &Path, json: bool) -> Result<(), Box<dyn Error>> {
    let store = open_any(dir, json)?;
    let mut progress = Progress::new(json);
    let report = store.snapshot_with(dest, |done, total| progress.show("copying", done, total));
    progress.finish();
    let report = report?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "report": report,
                "elapsed_ms": report.elapsed.as_secs_f64() * 1000.0,
            })
        );
    } else {
        println!(
            "snapshot of {} in {}: {} segments ({} hard-linked), {} of segments, {} copied, \
             every event up to sequence {} included, {:.1} ms",
            dir.display(),
            dest.display(),
            report.segments,
            report.linked,
            bytes(report.bytes),
            bytes(report.copied_bytes),
            report.durable_sequence,
            report.elapsed.as_secs_f64() * 1000.0
        );
    }
    Ok(())
}
