//! Helpers shared by the integration tests: the reference workload and small utilities.
#![allow(dead_code)]

use batpak::prelude::*;
use serde::{Deserialize, Serialize};

/// The reference payload: 64 bytes of pseudo-random data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

/// A small deterministic generator (xorshift64*): every harness's events come from a seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

pub fn reference_event(rng: &mut Rng) -> (Coordinate, EventKind, Reference) {
    let coord = Coordinate::new(
        format!("order:{}", rng.below(10_000)),
        format!("tenant-{}", rng.below(8)),
    );
    let kind = EventKind::new(1, (rng.below(4) + 1) as u8);
    (
        coord,
        kind,
        Reference {
            data: rng.bytes(64),
        },
    )
}

pub fn small_config(dir: &std::path::Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    c.segment_max_bytes = 16 * 1024;
    c
}

/// A projection of an entity: its events and the sum of their `i64` payloads.
pub struct Sum;

impl batpak::projection::Projection for Sum {
    type State = (u64, i64);
    const NAME: &'static str = "sum";
    const VERSION: u32 = 1;
    fn apply(state: &mut (u64, i64), event: &Event) {
        state.0 += 1;
        state.1 += event.payload::<i64>().unwrap_or(0);
    }
}

pub type TestResult = Result<(), Box<dyn std::error::Error>>;
pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Appends `payload` at `coord` as a batch of three copies (`batch`) or as one event,
/// waiting for the sync when `durable`; the receipts.
pub fn append_raw_mixed(
    store: &Store,
    coord: &Coordinate,
    payload: &[u8],
    batch: bool,
    durable: bool,
) -> Result<Vec<AppendReceipt>, AppendError> {
    let item = || BatchItem::raw(coord, EventKind::new(1, 1), payload.to_vec());
    if batch {
        return store.append_batch((0..3).map(|_| item()).collect(), durable);
    }
    let opts = if durable {
        AppendOptions::default().durable()
    } else {
        AppendOptions::default()
    };
    store.append_raw(item().with_options(opts)).map(|r| vec![r])
}

/// The oracle every reliability harness checks a recovered store against.
pub mod oracle;

/// The I/O-error sweep driver and its oracle.
#[cfg(feature = "testkit")]
pub mod sweep;

/// The lines a child test process prints on its stdout.
pub type ChildLines = std::io::Lines<std::io::BufReader<std::process::ChildStdout>>;

/// Starts this test binary again as a child running only the test `entry` with `env` set to
/// `dir`, and waits (up to 30 s) for it to print a line ending in "ready"; the child is
/// killed if it never does. Returns the child and the rest of its stdout.
pub fn start_ready_child(
    entry: &str,
    env: &str,
    dir: &std::path::Path,
) -> Res<(std::process::Child, ChildLines)> {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args([entry, "--exact", "--nocapture", "--test-threads=1"])
        .env(env, dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = std::io::BufReader::new(stdout).lines();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match lines.next() {
            Some(Ok(l)) if l.ends_with("ready") => return Ok((child, lines)),
            Some(Ok(_)) if std::time::Instant::now() < deadline => {}
            _ => {
                child.kill()?;
                return Err("the child never became ready".into());
            }
        }
    }
}
