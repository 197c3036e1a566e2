//! An idle store: what ten seconds of idleness cost after appends and after a reopen,
//! measured from the process's own `/proc/self/io` (bytes passed to `write`, bytes sent to
//! storage, write calls) and its CPU time. Every row should read 0 bytes, 0 calls, ~0 ms.
//!
//! `cargo bench --bench idle` (stores under `target/bench-data/idle`; Linux only).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use batpak::prelude::*;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// How long each store is left idle.
const IDLE: Duration = Duration::from_secs(10);
/// Time for the idle sync and its marker after the last append.
const SETTLE: Duration = Duration::from_millis(300);

/// `wchar`, `syscw` and `write_bytes` of `/proc/self/io`.
#[derive(Clone, Copy, Default)]
struct Io {
    wchar: u64,
    syscw: u64,
    write_bytes: u64,
}

fn io_now() -> Res<Io> {
    let text = std::fs::read_to_string("/proc/self/io")?;
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0)
    };
    Ok(Io {
        wchar: field("wchar:"),
        syscw: field("syscw:"),
        write_bytes: field("write_bytes:"),
    })
}

/// User plus system CPU time of this process.
fn cpu_now() -> Duration {
    // SAFETY: `getrusage` writes one `rusage` into the zeroed struct we own.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn root() -> PathBuf {
    std::env::var_os("BATPAK_BENCH_DIR")
        .map_or_else(|| PathBuf::from("target/bench-data"), PathBuf::from)
        .join("idle")
}

fn config(dir: &Path, every: u32) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    c.sync_every_n_events = every;
    c
}

/// Prints one row: what the idle window cost.
fn watch(what: &str) -> Res<()> {
    std::thread::sleep(SETTLE);
    let (io0, cpu0, t0) = (io_now()?, cpu_now(), Instant::now());
    std::thread::sleep(IDLE);
    let (io1, cpu1, dt) = (io_now()?, cpu_now(), t0.elapsed());
    println!(
        "{what:<44} {:>8} {:>10} {:>10} {:>9.2} ms {:>6.3} %",
        io1.syscw - io0.syscw,
        io1.wchar - io0.wchar,
        io1.write_bytes - io0.write_bytes,
        (cpu1 - cpu0).as_secs_f64() * 1e3,
        (cpu1 - cpu0).as_secs_f64() / dt.as_secs_f64() * 100.0
    );
    Ok(())
}

fn main() -> Res<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    println!(
        "idle for {IDLE:?} after {SETTLE:?} of settling\n{:<44} {:>8} {:>10} {:>10} {:>12} {:>8}",
        "", "writes", "wchar B", "storage B", "cpu", "of core"
    );
    for every in [1u32, 100] {
        let dir = root().join(format!("every-{every}"));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(config(&dir, every))?;
        for i in 0..1000u32 {
            store.append(
                &Coordinate::new(format!("e{}", i % 10), "s"),
                EventKind::new(1, 1),
                &i,
            )?;
        }
        watch(&format!("1,000 appends, sync every {every}"))?;
        store.close()?;
        let store = Store::open(config(&dir, every))?;
        watch(&format!("reopened, sync every {every}"))?;
        store.close()?;
    }
    Ok(())
}
