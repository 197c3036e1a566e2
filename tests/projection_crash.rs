//! The projection cache across crashes: a child process projecting (and appending) is
//! SIGKILLed at random moments, and a simulated power cut takes the log's unsynced events
//! while projections of them wait to be written. After each, every projection equals the
//! fold of the log, every state served from the cache (`AnyCached`) is the fold of a
//! prefix of the entity's events, and an offline verify finds nothing wrong.
#![cfg(feature = "testkit")]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use batpak::fs::sim::SimFs;
use batpak::fs::{FileSystem, FsFile, LockGuard, OpenMode, ReadView};
use batpak::prelude::*;
use batpak::projection::{Freshness, Projection};
use common::*;

const CHILD_ENV: &str = "BATPAK_PROJECTION_CRASH_DIR";
const ENTITIES: u64 = 12;

/// Every sequence of the entity's events, in order: a state says exactly which events it
/// folded, so a wrong or reordered fold cannot pass for a right one. States grow with the
/// log, so the child's write-behind buffer passes its bound and flushes often.
struct Seen;

impl Projection for Seen {
    type State = Vec<u64>;
    const NAME: &'static str = "seen";
    const VERSION: u32 = 1;
    fn apply(state: &mut Vec<u64>, event: &Event) {
        state.push(event.sequence);
    }
}

fn entity(n: u64) -> String {
    format!("e{n}")
}

fn config(dir: &Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    c.sync_every_n_events = 50;
    // The smallest map: a 128 KiB write-behind bound, so flushes come often.
    c.cache_map_size_bytes = batpak::config::MIN_CACHE_MAP_SIZE_BYTES;
    c
}

/// The entity's event sequences in the log.
fn log_of(store: &Store, e: &str) -> Res<Vec<u64>> {
    Ok(store.stream(e)?.iter().map(|ev| ev.sequence).collect())
}

/// Every entity: `Latest` equals the fold of the log, `AnyCached` a fold of a prefix.
fn check_every_projection(store: &Store, what: &str) -> Res<()> {
    for n in 0..ENTITIES {
        let e = entity(n);
        let log = log_of(store, &e)?;
        let cached = store.project::<Seen>(&e, Freshness::AnyCached)?;
        if !log.starts_with(&cached) {
            return Err(format!(
                "{what}: {e} served a state of {} events that is not a prefix of its {} events \
                 in the log",
                cached.len(),
                log.len()
            )
            .into());
        }
        let latest = store.project::<Seen>(&e, Freshness::Latest)?;
        if latest != log {
            return Err(format!("{what}: {e} projects {latest:?}, the log holds {log:?}").into());
        }
    }
    Ok(())
}

fn verify_clean(fs: &dyn FileSystem, dir: &Path, what: &str) -> Res<()> {
    let report = batpak::store::verify_on(fs, dir, |_, _| {})?;
    if !report.problems.is_empty() {
        return Err(format!("{what}: verify found {:?}", report.problems).into());
    }
    Ok(())
}

/// Runs only inside the child process: append and project forever.
#[test]
fn projection_crash_child_entry_point() -> TestResult {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return Ok(());
    };
    let store = Store::open(config(Path::new(&dir)))?;
    let mut rng = Rng::new(std::process::id().into());
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    loop {
        let e = entity(rng.below(ENTITIES));
        store.append(&Coordinate::new(&e, "crash"), EventKind::new(1, 1), &1i64)?;
        let f = match rng.below(3) {
            0 => Freshness::Latest,
            1 => Freshness::AtMostBehind(3),
            _ => Freshness::AnyCached,
        };
        store.project::<Seen>(&entity(rng.below(ENTITIES)), f)?;
    }
}

fn run_child(dir: &Path, run_for: Duration) -> Res<()> {
    let (mut child, _lines) =
        start_ready_child("projection_crash_child_entry_point", CHILD_ENV, dir)?;
    std::thread::sleep(run_for);
    child.kill()?; // SIGKILL
    child.wait()?;
    Ok(())
}

#[test]
fn every_projection_equals_the_fold_of_the_log_after_sigkills_while_projecting() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut rng = Rng::new(0x0b5e55ed);
    let (mut cycles_with_cached_states, mut cleared) = (0, 0);
    for cycle in 0..16 {
        // Spans several write-behind flushes (age 1 s, or the byte bound much sooner).
        let run_for = Duration::from_millis(50 + rng.below(2_200));
        run_child(dir.path(), run_for)?;
        let what = format!("cycle {cycle} after {} ms", run_for.as_millis());
        verify_clean(&batpak::fs::StdFs, dir.path(), &what)?;
        let store = Store::open(config(dir.path()))?;
        let opened = store.cache_stats();
        if !opened.enabled {
            return Err(format!("{what}: the cache did not open: {:?}", opened.open_note).into());
        }
        cycles_with_cached_states += u32::from(opened.entries > 0);
        cleared += u32::from(opened.open_note.is_some());
        check_every_projection(&store, &what)?;
        store.close()?;
    }
    println!(
        "16 SIGKILLs while projecting: {cycles_with_cached_states} reopens found cached states, \
         {cleared} found the cache cleared or recreated; every projection equal to the log"
    );
    assert!(
        cycles_with_cached_states >= 8,
        "the kills hardly ever left a cache to check ({cycles_with_cached_states} of 16)"
    );
    Ok(())
}

/// A simulated file system whose projection cache lives in one real directory that
/// survives its power cuts (SimFs's own starts empty after a cut).
#[derive(Debug)]
struct KeepCache {
    fs: SimFs,
    cache: PathBuf,
}

impl FileSystem for KeepCache {
    fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        self.fs.create_dir_all(dir)
    }
    fn list_dir(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        self.fs.list_dir(dir)
    }
    fn exists(&self, path: &Path) -> bool {
        self.fs.exists(path)
    }
    fn open(&self, path: &Path, mode: OpenMode) -> std::io::Result<Arc<dyn FsFile>> {
        self.fs.open(path, mode)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.fs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        self.fs.remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        self.fs.sync_dir(dir)
    }
    fn map(&self, path: &Path) -> std::io::Result<Arc<dyn ReadView>> {
        self.fs.map(path)
    }
    fn cache_dir(&self, _dir: &Path) -> Option<PathBuf> {
        Some(self.cache.clone())
    }
    fn try_lock(&self, path: &Path) -> std::io::Result<Option<Box<dyn LockGuard>>> {
        self.fs.try_lock(path)
    }
}

fn open_on(fs: SimFs, cache: &Path) -> Result<Store, OpenError> {
    let mut cfg = config(Path::new("/sim/data"));
    cfg.sync_every_n_events = 1_000;
    let fs = KeepCache {
        fs,
        cache: cache.to_path_buf(),
    };
    Store::open_with(cfg, OpenOptions::default().with_fs(Arc::new(fs)))
}

/// Appends and projects on two threads until `stop`; errors end a thread (the machine
/// went off).
fn load(store: &Arc<Store>, stop: &Arc<AtomicBool>, seed: u64) -> Vec<std::thread::JoinHandle<()>> {
    let (s, st) = (store.clone(), stop.clone());
    let producer = std::thread::spawn(move || {
        let mut rng = Rng::new(seed);
        while !st.load(Ordering::Relaxed) {
            let e = entity(rng.below(ENTITIES));
            let appended = s.append(&Coordinate::new(&e, "cut"), EventKind::new(1, 1), &1i64);
            if appended.is_err() {
                return;
            }
        }
    });
    let (s, st) = (store.clone(), stop.clone());
    let projector = std::thread::spawn(move || {
        let mut rng = Rng::new(seed ^ 0xff);
        while !st.load(Ordering::Relaxed) {
            if s.project::<Seen>(&entity(rng.below(ENTITIES)), Freshness::Latest)
                .is_err()
            {
                return;
            }
        }
    });
    vec![producer, projector]
}

#[test]
fn a_power_cut_never_leaves_the_cache_holding_states_of_events_the_log_lost() -> TestResult {
    let mut rng = Rng::new(0xc0ffee);
    let mut lost_events = 0;
    for round in 0..6u64 {
        let cache = tempfile::tempdir()?;
        let sim = SimFs::new();
        let store = Arc::new(open_on(sim.clone(), cache.path())?);
        let stop = Arc::new(AtomicBool::new(false));
        let threads = load(&store, &stop, round);
        // Past at least one write-behind flush, with the log's syncs lagging the folds.
        std::thread::sleep(Duration::from_millis(1_100 + rng.below(1_500)));
        let written = store.stats().written_sequence;
        let survivor = sim.power_cut(rng.next_u64());
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().map_err(|_| "a load thread panicked")?;
        }
        // The machine is off: whatever the cache still writes at close folds only events
        // the log had made durable before the cut (the power cut kept them).
        drop(store);
        let what = format!("power cut {round}");
        let keep = KeepCache {
            fs: survivor.clone(),
            cache: cache.path().to_path_buf(),
        };
        verify_clean(&keep, Path::new("/sim/data"), &what)?;
        let store = open_on(survivor, cache.path())?;
        lost_events += written.saturating_sub(store.stats().written_sequence);
        check_every_projection(&store, &what)?;
        store.close()?;
    }
    println!(
        "6 power cuts under load took {lost_events} acknowledged, unsynced events from the log"
    );
    assert!(lost_events > 0, "no cut took events: nothing was tested");
    Ok(())
}
