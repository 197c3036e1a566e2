//! The knobs `tune` searches, one definition each (the values it tries, how to read and
//! set it), and the rules from the tuning guide's trade-off matrix that bound them by
//! the budget before any run.

use batpak::config::SyncMode;
use batpak_tui::preset::{Size, StoreSection};

use super::budget::{Budget, Item};
use crate::units;

const MIB: u64 = 1 << 20;

/// One field of `StoreConfig` the search moves.
pub struct Knob {
    /// The field's name in `StoreConfig` and in a preset's `[store]`.
    pub name: &'static str,
    /// The values tried, ascending.
    pub ladder: &'static [u64],
    /// Reads the field (sync mode: 0 `SyncAll`, 1 `SyncData`).
    pub get: fn(&StoreSection) -> u64,
    /// Sets the field.
    pub set: fn(&mut StoreSection, u64),
    /// A value as text.
    pub show: fn(u64) -> String,
}

fn plain(v: u64) -> String {
    units::count(v)
}

fn size(v: u64) -> String {
    Size(v).binary()
}

fn mode(v: u64) -> String {
    if v == 0 { "SyncAll" } else { "SyncData" }.to_string()
}

/// Every knob, in the order a search pass moves them: the durability trade-off first
/// (it moves throughput most), then back-pressure, file handles and memory.
pub const KNOBS: [Knob; 7] = [
    Knob {
        name: "sync_every_n_events",
        ladder: &[
            1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 2000, 5000, 10_000, 20_000,
        ],
        get: |s| u64::from(s.sync_every_n_events),
        set: |s, v| s.sync_every_n_events = v.clamp(1, u64::from(u32::MAX)) as u32,
        show: plain,
    },
    Knob {
        name: "sync_mode",
        ladder: &[0, 1],
        get: |s| u64::from(s.sync_mode == SyncMode::SyncData),
        set: |s, v| {
            s.sync_mode = if v == 0 {
                SyncMode::SyncAll
            } else {
                SyncMode::SyncData
            }
        },
        show: mode,
    },
    Knob {
        name: "writer_channel_capacity",
        ladder: &[64, 256, 1024, 4096, 16_384, 65_536],
        get: |s| u64::from(s.writer_channel_capacity),
        set: |s, v| s.writer_channel_capacity = v as u32,
        show: plain,
    },
    Knob {
        name: "segment_max_bytes",
        ladder: &[MIB, 4 * MIB, 16 * MIB, 64 * MIB, 256 * MIB, 1024 * MIB],
        get: |s| s.segment_max_bytes.0,
        set: |s, v| s.segment_max_bytes = Size(v),
        show: size,
    },
    Knob {
        name: "fd_budget",
        ladder: &[4, 8, 16, 32, 64, 128, 256],
        get: |s| u64::from(s.fd_budget),
        set: |s, v| s.fd_budget = v as u32,
        show: plain,
    },
    Knob {
        name: "broadcast_capacity",
        ladder: &[256, 1024, 4096, 8192, 32_768],
        get: |s| u64::from(s.broadcast_capacity),
        set: |s, v| s.broadcast_capacity = v as u32,
        show: plain,
    },
    Knob {
        name: "cache_map_size_bytes",
        ladder: &[MIB, 4 * MIB, 16 * MIB, 64 * MIB, 256 * MIB],
        get: |s| s.cache_map_size_bytes.0,
        set: |s, v| s.cache_map_size_bytes = Size(v),
        show: size,
    },
];

/// The largest value the budget allows a knob before any run, and the item that sets
/// it: the part of the budget a configuration guarantees by itself.
#[derive(Debug, Clone, Copy)]
pub struct Cap {
    /// The largest allowed value.
    pub max: u64,
    /// The budget item it comes from.
    pub item: Item,
    /// The rule, in words.
    pub rule: &'static str,
}

/// The rules: a power cut loses at most `sync_every_n_events - 1` acknowledged events,
/// so a loss budget of L allows at most L + 1; descriptors beyond the segments' own
/// (the lock, the cache, the checkpoint, stdio: about 10) come out of an fds budget; a
/// segment is at most an eighth of a disk budget (compaction frees whole segments), the
/// cache map at most a quarter.
pub fn cap(knob: &Knob, budget: &Budget) -> Option<Cap> {
    budget.items.iter().find_map(|&item| {
        let (max, rule) = match (knob.name, item) {
            ("sync_every_n_events", Item::LossEvents(l)) => (
                l.saturating_add(1),
                "a power cut loses at most sync_every_n_events - 1 acknowledged events",
            ),
            ("fd_budget", Item::Fds(f)) => (
                f.saturating_sub(FD_OVERHEAD).max(2),
                "the process holds about 10 descriptors besides the segments",
            ),
            ("segment_max_bytes", Item::Disk(d)) => (
                (d / 8).max(MIB),
                "compaction frees whole segments: one is at most an eighth of the disk",
            ),
            ("cache_map_size_bytes", Item::Disk(d)) => (
                (d / 4).max(MIB),
                "the cache may grow to its map: at most a quarter of the disk",
            ),
            _ => return None,
        };
        Some(Cap { max, item, rule })
    })
}

/// Descriptors a store and the bench process hold besides segment files and maps.
const FD_OVERHEAD: u64 = 10;

/// The values a knob may take under the budget: its ladder up to the cap, and the cap
/// itself when it falls between two rungs (sync every L + 1 is exactly the budget).
pub fn values(knob: &Knob, budget: &Budget) -> Vec<u64> {
    let cap = cap(knob, budget).map_or(u64::MAX, |c| c.max);
    let mut v: Vec<u64> = knob.ladder.iter().copied().filter(|&x| x <= cap).collect();
    let exact = knob.name == "sync_every_n_events" || knob.name == "fd_budget";
    if exact && cap != u64::MAX && !v.contains(&cap) {
        v.push(cap);
    }
    if v.is_empty() {
        v.push(knob.ladder[0]);
    }
    v
}

/// The configuration a search starts from: the workload's own `[store]`, each knob
/// brought within its cap (to the largest allowed value at or below it); a memory budget
/// under 64 MiB starts from the tuning guide's embedded capacities.
pub fn start(base: &StoreSection, budget: &Budget) -> StoreSection {
    let mut s = base.clone();
    let small = budget
        .items
        .iter()
        .any(|i| matches!(i, Item::Rss(r) if *r < 64 * MIB));
    if small {
        s.writer_channel_capacity = s.writer_channel_capacity.min(256);
        s.broadcast_capacity = s.broadcast_capacity.min(1024);
        s.cache_map_size_bytes = Size(s.cache_map_size_bytes.0.min(4 * MIB));
    }
    for k in &KNOBS {
        if let Some(c) = cap(k, budget) {
            if (k.get)(&s) > c.max {
                let allowed = values(k, budget);
                let v = allowed.iter().copied().filter(|&x| x <= c.max).max();
                (k.set)(&mut s, v.unwrap_or(allowed[0]));
            }
        }
    }
    s
}

/// The next value of a knob from `now` upward (`up`) or downward among `values`.
pub fn neighbour(values: &[u64], now: u64, up: bool) -> Option<u64> {
    if up {
        values.iter().copied().filter(|&v| v > now).min()
    } else {
        values.iter().copied().filter(|&v| v < now).max()
    }
}

/// The changes from `from` to `to`, knob by knob: `sync_every_n_events 1000 -> 101`.
pub fn diff(from: &StoreSection, to: &StoreSection) -> Vec<String> {
    KNOBS
        .iter()
        .filter(|k| (k.get)(from) != (k.get)(to))
        .map(|k| {
            format!(
                "{} {} -> {}",
                k.name,
                (k.show)((k.get)(from)),
                (k.show)((k.get)(to))
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loss_budget_caps_the_sync_cadence_at_one_more_than_the_events_it_may_lose(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let budget = Budget::parse("loss<=100, fds<=16, disk<=1GiB")?;
        let base = batpak_tui::preset::Preset::builtin("server")?.store;
        let s = start(&base, &budget);
        assert_eq!(s.sync_every_n_events, 101);
        assert_eq!(s.fd_budget, 6);
        assert_eq!(s.segment_max_bytes.0, 64 * MIB);
        let every = &KNOBS[0];
        assert_eq!(values(every, &budget).last(), Some(&101));
        assert_eq!(neighbour(&values(every, &budget), 101, true), None);
        assert_eq!(neighbour(&values(every, &budget), 101, false), Some(64));
        Ok(())
    }
}
