//! [`StoreConfig`]: every tuning knob of a store, with the defaults of the tuning guide.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::error::ConfigError;

/// A clock returning microseconds since the Unix epoch.
///
/// Injected through [`StoreConfig::clock`]; every event timestamp comes from it.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// How the writer makes appended bytes durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum SyncMode {
    /// `fsync`: file data and metadata (size, times) reach stable storage.
    #[default]
    SyncAll,
    /// `fdatasync`: file data and the metadata needed to read it back (the size) reach
    /// stable storage; other metadata (times) may not. Faster on most file systems.
    SyncData,
}

/// What happens when the writer thread panics.
///
/// The writer is restarted in place after `backoff` (doubling up to `max_backoff`) as
/// long as fewer than `max_restarts` restarts happened within `window`; otherwise the
/// store is poisoned. A restart first cuts the active segment back to the last
/// acknowledged frame, so no acknowledged event is lost and no half batch survives.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RestartPolicy {
    /// Restarts allowed within `window`; `0` poisons the store at the first panic.
    pub max_restarts: u32,
    /// The sliding window over which restarts are counted (`window_ms` in presets).
    #[serde(with = "crate::config::duration_ms", rename = "window_ms")]
    pub window: Duration,
    /// Pause before the first restart (`backoff_ms` in presets).
    #[serde(with = "crate::config::duration_ms", rename = "backoff_ms")]
    pub backoff: Duration,
    /// Upper bound of the doubling pause (`max_backoff_ms` in presets).
    #[serde(with = "crate::config::duration_ms", rename = "max_backoff_ms")]
    pub max_backoff: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            max_restarts: 3,
            window: Duration::from_secs(60),
            backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(1),
        }
    }
}

impl RestartPolicy {
    /// A policy that never restarts: the first writer panic poisons the store.
    pub fn never() -> Self {
        Self {
            max_restarts: 0,
            ..Self::default()
        }
    }
}

pub(crate) mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// The configuration of a [`Store`](crate::Store).
///
/// Create one with [`StoreConfig::new`], which applies the defaults of the tuning guide,
/// then override fields before passing it to [`Store::open`](crate::Store::open):
///
/// ```
/// use batpak::prelude::*;
///
/// let mut config = StoreConfig::new("/data/events");
/// config.segment_max_bytes = 16 * 1024 * 1024;  // 16 MB segments
/// config.fd_budget = 8;                           // minimal FDs
/// config.sync_every_n_events = 10;                // near-durable
/// assert_eq!(config.writer_channel_capacity, 4096);
/// ```
#[derive(Clone)]
pub struct StoreConfig {
    /// The data directory (created if missing).
    pub data_dir: PathBuf,
    /// A segment file rolls when the next write would pass this size. Bytes; default 256 MiB.
    pub segment_max_bytes: u64,
    /// Never more than this many acknowledged events stay unsynced. Events; default 1000.
    /// `1` makes every append durable before its receipt is returned.
    pub sync_every_n_events: u32,
    /// Segment files open or memory-mapped at once, the active segment included. Count;
    /// default 64.
    pub fd_budget: u32,
    /// Capacity of the bounded channel feeding the writer; a full channel blocks the
    /// producer. Messages; default 4096.
    pub writer_channel_capacity: u32,
    /// Per-subscriber ring size; when full the oldest entry is dropped. Messages; default 8192.
    pub broadcast_capacity: u32,
    /// LMDB map size for the projection cache. Bytes; default 64 MiB.
    pub cache_map_size_bytes: u64,
    /// Writer thread recovery from panics.
    pub restart_policy: RestartPolicy,
    /// Maximum queued commands drained on close; the rest are rejected and reported.
    /// Messages; default 1024.
    pub shutdown_drain_limit: u32,
    /// Stack size of the writer thread. Bytes; `None` = the platform default.
    pub writer_stack_size: Option<usize>,
    /// The clock for every timestamp, in microseconds since the epoch; `None` = system time.
    /// The writer reads it once per group of appends it stages together (one write), so
    /// events committed in one group share a timestamp.
    pub clock: Option<Clock>,
    /// `fsync` (`SyncAll`) or `fdatasync` (`SyncData`).
    pub sync_mode: SyncMode,
    /// How many of the most recent idempotency keys are remembered, across reopen, crash
    /// and compaction of the events that carried them; an append retried with a key still
    /// remembered returns the first receipt instead of writing again. Keys; default 65,536
    /// (about 48 bytes of memory each). Takes effect at the next open.
    pub idempotency_window: u32,
}

/// Default of [`StoreConfig::idempotency_window`].
pub const DEFAULT_IDEMPOTENCY_WINDOW: u32 = 65_536;
/// Largest allowed [`StoreConfig::idempotency_window`].
pub const MAX_IDEMPOTENCY_WINDOW: u32 = 1 << 24;

/// Default of [`StoreConfig::segment_max_bytes`].
pub const DEFAULT_SEGMENT_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// Smallest allowed [`StoreConfig::segment_max_bytes`].
pub const MIN_SEGMENT_MAX_BYTES: u64 = 4096;
/// Largest allowed [`StoreConfig::segment_max_bytes`] (frame offsets are 32-bit).
pub const MAX_SEGMENT_MAX_BYTES: u64 = 1 << 32;
/// Smallest allowed [`StoreConfig::cache_map_size_bytes`].
pub const MIN_CACHE_MAP_SIZE_BYTES: u64 = 1024 * 1024;
/// Smallest allowed [`StoreConfig::writer_stack_size`].
pub const MIN_WRITER_STACK_SIZE: usize = 64 * 1024;
/// Smallest allowed [`StoreConfig::fd_budget`]: the active segment plus one sealed one.
pub const MIN_FD_BUDGET: u32 = 2;

impl StoreConfig {
    /// A configuration for `data_dir` with the tuning guide's defaults.
    pub fn new(data_dir: impl AsRef<Path>) -> Self {
        Self {
            data_dir: data_dir.as_ref().to_path_buf(),
            segment_max_bytes: DEFAULT_SEGMENT_MAX_BYTES,
            sync_every_n_events: 1000,
            fd_budget: 64,
            writer_channel_capacity: 4096,
            broadcast_capacity: 8192,
            cache_map_size_bytes: 64 * 1024 * 1024,
            restart_policy: RestartPolicy::default(),
            shutdown_drain_limit: 1024,
            writer_stack_size: None,
            clock: None,
            sync_mode: SyncMode::SyncAll,
            idempotency_window: DEFAULT_IDEMPOTENCY_WINDOW,
        }
    }

    /// Checks every field; the error names the field and its allowed range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::Invalid {
                field: "data_dir",
                reason: "the path is empty (name a directory, e.g. \"./data\")".into(),
            });
        }
        range_u64(
            "segment_max_bytes",
            self.segment_max_bytes,
            MIN_SEGMENT_MAX_BYTES,
            MAX_SEGMENT_MAX_BYTES,
        )?;
        range_u64(
            "sync_every_n_events",
            self.sync_every_n_events.into(),
            1,
            u32::MAX.into(),
        )?;
        range_u64(
            "fd_budget",
            self.fd_budget.into(),
            MIN_FD_BUDGET.into(),
            65_536,
        )?;
        range_u64(
            "writer_channel_capacity",
            self.writer_channel_capacity.into(),
            1,
            1 << 24,
        )?;
        range_u64(
            "broadcast_capacity",
            self.broadcast_capacity.into(),
            1,
            1 << 24,
        )?;
        range_u64(
            "cache_map_size_bytes",
            self.cache_map_size_bytes,
            MIN_CACHE_MAP_SIZE_BYTES,
            1 << 44,
        )?;
        if let Some(stack) = self.writer_stack_size {
            range_u64(
                "writer_stack_size",
                stack as u64,
                MIN_WRITER_STACK_SIZE as u64,
                1 << 32,
            )?;
        }
        range_u64(
            "idempotency_window",
            self.idempotency_window.into(),
            1,
            MAX_IDEMPOTENCY_WINDOW.into(),
        )?;
        if self.restart_policy.backoff > self.restart_policy.max_backoff {
            return Err(ConfigError::Invalid {
                field: "restart_policy.backoff",
                reason: "must not exceed restart_policy.max_backoff".into(),
            });
        }
        Ok(())
    }

    /// The current time from [`StoreConfig::clock`] or the system clock, in microseconds.
    pub(crate) fn now_micros(&self) -> u64 {
        match &self.clock {
            Some(clock) => clock(),
            None => system_micros(),
        }
    }
}

/// Microseconds since the Unix epoch from the system clock (0 before the epoch).
pub(crate) fn system_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The default clock: system time in microseconds since the epoch.
pub fn system_time_micros() -> u64 {
    system_micros()
}

fn range_u64(field: &'static str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange {
            field,
            value,
            min,
            max,
        })
    }
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("data_dir", &self.data_dir)
            .field("segment_max_bytes", &self.segment_max_bytes)
            .field("sync_every_n_events", &self.sync_every_n_events)
            .field("fd_budget", &self.fd_budget)
            .field("writer_channel_capacity", &self.writer_channel_capacity)
            .field("broadcast_capacity", &self.broadcast_capacity)
            .field("cache_map_size_bytes", &self.cache_map_size_bytes)
            .field("restart_policy", &self.restart_policy)
            .field("shutdown_drain_limit", &self.shutdown_drain_limit)
            .field("writer_stack_size", &self.writer_stack_size)
            .field("clock", &self.clock.as_ref().map(|_| "<injected>"))
            .field("sync_mode", &self.sync_mode)
            .field("idempotency_window", &self.idempotency_window)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_tuning_guide() {
        let c = StoreConfig::new("x");
        assert_eq!(c.segment_max_bytes, 256 * 1024 * 1024);
        assert_eq!(c.sync_every_n_events, 1000);
        assert_eq!(c.fd_budget, 64);
        assert_eq!(c.writer_channel_capacity, 4096);
        assert_eq!(c.broadcast_capacity, 8192);
        assert_eq!(c.cache_map_size_bytes, 64 * 1024 * 1024);
        assert_eq!(c.restart_policy, RestartPolicy::default());
        assert_eq!(c.shutdown_drain_limit, 1024);
        assert_eq!(c.writer_stack_size, None);
        assert!(c.clock.is_none());
        assert_eq!(c.sync_mode, SyncMode::SyncAll);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn zero_channel_capacity_is_rejected_naming_field_and_range() {
        let mut c = StoreConfig::new("x");
        c.writer_channel_capacity = 0;
        let msg = c
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(msg.contains("writer_channel_capacity"), "{msg}");
        assert!(msg.contains("1..=16777216"), "{msg}");
    }
}
