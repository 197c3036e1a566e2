//! `snapshot` and `compact`: lifecycle commands on a data directory.

use std::error::Error;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use batpak::prelude::*;
use batpak::store::{CompactionReport, RetentionPolicy};
use batpak::OpenError;

use crate::units::{bar, bytes, count, duration};

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
pub struct Progress {
    last: Instant,
    shown: bool,
    quiet: bool,
    /// The counts are bytes (shown as sizes), not items.
    bytes: bool,
}

impl Progress {
    /// Quiet with `--json` and when stderr is not a terminal (a log or a pipe).
    pub fn new(quiet: bool, bytes: bool) -> Self {
        use std::io::IsTerminal;
        Self {
            last: Instant::now(),
            shown: false,
            quiet: quiet || !std::io::stderr().is_terminal(),
            bytes,
        }
    }

    pub fn show(&mut self, what: &str, done: u64, total: u64) {
        if self.quiet || (self.last.elapsed() < Duration::from_millis(100) && done < total) {
            return;
        }
        self.last = Instant::now();
        self.shown = true;
        let f = done as f64 / total.max(1) as f64;
        let (d, t) = if self.bytes {
            (bytes(done), bytes(total))
        } else {
            (count(done), count(total))
        };
        eprint!("\r{what} {} {d} / {t}   ", bar(f, 30));
        let _ = std::io::stderr().flush();
    }

    pub fn finish(&self) {
        if self.shown {
            eprintln!();
        }
    }
}

/// `batpak-tui snapshot DIR DEST`.
pub fn snapshot(dir: &Path, dest: &Path, json: bool) -> Result<(), Box<dyn Error>> {
    let store = open_any(dir, json)?;
    let mut progress = Progress::new(json, true);
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
             every event up to sequence {} included, {}",
            dir.display(),
            dest.display(),
            report.segments,
            report.linked,
            bytes(report.bytes),
            bytes(report.copied_bytes),
            report.durable_sequence,
            duration(report.elapsed)
        );
    }
    Ok(())
}

/// `batpak-tui compact DIR`.
pub fn compact(
    dir: &Path,
    policy: &RetentionPolicy,
    dry_run: bool,
    json: bool,
) -> Result<(), Box<dyn Error>> {
    if policy.max_age.is_none() && policy.max_total_bytes.is_none() && !policy.tombstones {
        return Err(
            "give at least one retention rule: --max-age, --max-bytes or --tombstones".into(),
        );
    }
    let probe = Store::open_read_only(dir)?;
    // A dry run writes nothing at all: not even the checkpoint a read-write close writes.
    let opened = if dry_run {
        Ok(probe)
    } else {
        drop(probe);
        Store::open(StoreConfig::new(dir))
    };
    let store = match opened {
        Ok(s) => s,
        Err(OpenError::Locked { .. }) => {
            return Err(format!(
                "compact needs the lock on {}: another process holds the store (close it, or run --dry-run)",
                dir.display()
            )
            .into())
        }
        Err(e) => return Err(e.into()),
    };
    let mut progress = Progress::new(json, false);
    let report = store.compact_with(policy, dry_run, |done, total| {
        progress.show("reading segments", done, total)
    });
    progress.finish();
    print_compaction(dir, &report?, json);
    Ok(())
}

fn print_compaction(dir: &Path, r: &CompactionReport, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({ "report": r, "bytes_reclaimed": r.bytes_reclaimed() })
        );
        return;
    }
    let verb = if r.dry_run { "would remove" } else { "removed" };
    println!(
        "{}: {verb} {} events from {} segments, {} reclaimed ({} -> {}); {} causal chains cut; \
         {} entities lose events{}",
        dir.display(),
        count(r.events_removed),
        r.segments_touched.len(),
        bytes(r.bytes_reclaimed()),
        bytes(r.bytes_before),
        bytes(r.bytes_after),
        r.chains_cut,
        r.entities_affected,
        if r.entities_sample.is_empty() {
            String::new()
        } else {
            format!(" ({})", r.entities_sample.join(", "))
        }
    );
    if !r.dry_run && !r.segments_touched.is_empty() {
        println!(
            "appends waited {} while the new files took effect; {} in all",
            duration(r.writer_pause),
            duration(r.elapsed)
        );
    }
}
