//! Presets: TOML files holding a `[store]` table (every [`StoreConfig`] field TOML can
//! express), a `[workload]` table and an optional `[gates]` table. A preset carries no data
//! directory; the directory comes from the command line.
//!
//! ```
//! use batpak_tui::preset::Preset;
//!
//! let p = Preset::parse("[store]\nsegment_max_bytes = \"16 MiB\"\nfd_budget = 8\n", "inline")?;
//! let config = p.store_config("./data");
//! assert_eq!(config.segment_max_bytes, 16 * 1024 * 1024);
//! # Ok::<(), batpak_tui::preset::PresetError>(())
//! ```

mod error;
mod export;
mod size;
mod spec;

use std::path::Path;

use serde::{Deserialize, Serialize};

use batpak::config::{RestartPolicy, StoreConfig, SyncMode};

pub use error::PresetError;
pub use export::{rust_snippet, toml_text};
pub use size::Size;
pub use spec::{BatchShare, GateSpec, KindShare, PayloadBin, ReadMix, SpecError, WorkloadSpec};

/// The built-in presets, also shipped as `presets/*.toml`.
pub const BUILTIN: [(&str, &str); 3] = [
    ("default", include_str!("../../../../presets/default.toml")),
    (
        "embedded",
        include_str!("../../../../presets/embedded.toml"),
    ),
    ("server", include_str!("../../../../presets/server.toml")),
];

/// The `[store]` table: every `StoreConfig` field TOML can express (`clock` is code).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSection {
    /// See [`StoreConfig::segment_max_bytes`].
    pub segment_max_bytes: Size,
    /// See [`StoreConfig::sync_every_n_events`].
    pub sync_every_n_events: u32,
    /// See [`StoreConfig::fd_budget`].
    pub fd_budget: u32,
    /// See [`StoreConfig::writer_channel_capacity`].
    pub writer_channel_capacity: u32,
    /// See [`StoreConfig::broadcast_capacity`].
    pub broadcast_capacity: u32,
    /// See [`StoreConfig::cache_map_size_bytes`].
    pub cache_map_size_bytes: Size,
    /// See [`StoreConfig::restart_policy`].
    pub restart_policy: RestartPolicy,
    /// See [`StoreConfig::shutdown_drain_limit`].
    pub shutdown_drain_limit: u32,
    /// See [`StoreConfig::writer_stack_size`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writer_stack_size: Option<Size>,
    /// See [`StoreConfig::sync_mode`].
    pub sync_mode: SyncMode,
    /// See [`StoreConfig::idempotency_window`].
    pub idempotency_window: u32,
}

impl Default for StoreSection {
    fn default() -> Self {
        Self::from_config(&StoreConfig::new("."))
    }
}

impl StoreSection {
    /// The section describing `c` (its directory and clock are not part of it).
    pub fn from_config(c: &StoreConfig) -> Self {
        Self {
            segment_max_bytes: Size(c.segment_max_bytes),
            sync_every_n_events: c.sync_every_n_events,
            fd_budget: c.fd_budget,
            writer_channel_capacity: c.writer_channel_capacity,
            broadcast_capacity: c.broadcast_capacity,
            cache_map_size_bytes: Size(c.cache_map_size_bytes),
            restart_policy: c.restart_policy.clone(),
            shutdown_drain_limit: c.shutdown_drain_limit,
            writer_stack_size: c.writer_stack_size.map(|s| Size(s as u64)),
            sync_mode: c.sync_mode,
            idempotency_window: c.idempotency_window,
        }
    }

    /// A `StoreConfig` for `dir` with these values.
    pub fn to_config(&self, dir: impl AsRef<Path>) -> StoreConfig {
        let mut c = StoreConfig::new(dir);
        c.segment_max_bytes = self.segment_max_bytes.0;
        c.sync_every_n_events = self.sync_every_n_events;
        c.fd_budget = self.fd_budget;
        c.writer_channel_capacity = self.writer_channel_capacity;
        c.broadcast_capacity = self.broadcast_capacity;
        c.cache_map_size_bytes = self.cache_map_size_bytes.0;
        c.restart_policy = self.restart_policy.clone();
        c.shutdown_drain_limit = self.shutdown_drain_limit;
        c.writer_stack_size = self.writer_stack_size.map(|s| s.0 as usize);
        c.sync_mode = self.sync_mode;
        c.idempotency_window = self.idempotency_window;
        c
    }
}

/// A whole preset.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Preset {
    /// Store settings.
    pub store: StoreSection,
    /// The workload the bench and the workbench run.
    pub workload: WorkloadSpec,
    /// Gates to install, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gates: Option<GateSpec>,
}

impl Preset {
    /// Parses preset text; `origin` (a file name or `builtin:NAME`) is named in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, PresetError> {
        let preset: Self =
            toml::from_str(text).map_err(|e| PresetError::from_toml(&e, text, origin))?;
        preset
            .workload
            .validate()
            .map_err(|e| PresetError::from_spec(&e, text, origin))?;
        Ok(preset)
    }

    /// A built-in preset by name.
    pub fn builtin(name: &str) -> Result<Self, PresetError> {
        let (_, text) = BUILTIN.iter().find(|(n, _)| *n == name).ok_or_else(|| {
            PresetError::UnknownBuiltin {
                name: name.to_string(),
                known: BUILTIN.iter().map(|(n, _)| n.to_string()).collect(),
            }
        })?;
        Self::parse(text, &format!("builtin:{name}"))
    }

    /// Loads `--preset VALUE`: a file if it contains `/` or ends in `.toml`, else a built-in;
    /// then applies every `--set path=value`.
    pub fn load(value: &str, sets: &[String]) -> Result<Self, PresetError> {
        let (text, origin) = if value.contains('/') || value.ends_with(".toml") {
            let text = std::fs::read_to_string(value).map_err(|e| PresetError::Read {
                file: value.to_string(),
                reason: e.to_string(),
            })?;
            (text, value.to_string())
        } else {
            let (_, text) = BUILTIN.iter().find(|(n, _)| *n == value).ok_or_else(|| {
                PresetError::UnknownBuiltin {
                    name: value.to_string(),
                    known: BUILTIN.iter().map(|(n, _)| n.to_string()).collect(),
                }
            })?;
            (text.to_string(), format!("builtin:{value}"))
        };
        let preset = Self::parse(&text, &origin)?;
        if sets.is_empty() {
            return Ok(preset);
        }
        preset.with_sets(sets)
    }

    /// Applies `path=value` settings: `fd_budget=8` sets a `[store]` field,
    /// `workload.producers=4` a field of another table.
    pub fn with_sets(&self, sets: &[String]) -> Result<Self, PresetError> {
        let mut table = toml::Table::try_from(self).map_err(|e| PresetError::Set {
            set: String::new(),
            reason: e.to_string(),
        })?;
        for set in sets {
            error::apply_set(&mut table, set)?;
            Self::deserialize(toml::Value::Table(table.clone()))
                .map_err(|e| PresetError::from_set(&e, set))?;
        }
        let preset =
            Self::deserialize(toml::Value::Table(table)).map_err(|e| PresetError::Set {
                set: sets.join(" "),
                reason: e.to_string(),
            })?;
        preset.workload.validate().map_err(|e| PresetError::Set {
            set: sets.join(" "),
            reason: format!("field `workload.{}`: {}", e.field, e.message),
        })?;
        Ok(preset)
    }

    /// The store configuration for `dir`.
    pub fn store_config(&self, dir: impl AsRef<Path>) -> StoreConfig {
        self.store.to_config(dir)
    }
}
