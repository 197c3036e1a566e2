//! The `[workload]` and `[gates]` tables of a preset.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Size;
use crate::event::EventKind;
use crate::gate::{
    AllowedKinds, Evaluation, GateSet, MaxPayloadSize, RateLimit, RequiresCausation,
};

/// Weights of the readers' operations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReadMix {
    /// `get` of a recent event.
    pub get: u32,
    /// `query` of an entity's stream.
    pub query: u32,
    /// causal walk from a recent event.
    pub walk: u32,
    /// projection of an entity.
    pub project: u32,
}

impl Default for ReadMix {
    fn default() -> Self {
        Self {
            get: 4,
            query: 2,
            walk: 2,
            project: 2,
        }
    }
}

/// What the workload generator runs (see `docs/design.md`, reference workload).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkloadSpec {
    /// Producer threads.
    pub producers: u32,
    /// Smallest payload (bytes of random data).
    pub payload_min_bytes: u32,
    /// Largest payload.
    pub payload_max_bytes: u32,
    /// Entities (`order:<n>`).
    pub entities: u32,
    /// Scopes (`tenant-<k>`).
    pub scopes: u32,
    /// Share of appends naming the entity's previous event as cause (0..=1).
    pub causation_share: f64,
    /// Share of proposals built to be denied by the gates (0..=1).
    pub deny_share: f64,
    /// Subscribers keeping up.
    pub subscribers: u32,
    /// Subscribers that fall behind on purpose.
    pub slow_subscribers: u32,
    /// Reader threads.
    pub readers: u32,
    /// What readers do.
    pub read_mix: ReadMix,
    /// Open-loop target in events per second; 0 = closed loop (as fast as acknowledged).
    pub target_rate: u64,
    /// Seed of the deterministic generator.
    pub seed: u64,
    /// Stop before the disk's free space falls below this.
    pub min_free_disk: Size,
}

impl Default for WorkloadSpec {
    fn default() -> Self {
        Self {
            producers: 2,
            payload_min_bytes: 64,
            payload_max_bytes: 64,
            entities: 10_000,
            scopes: 8,
            causation_share: 0.5,
            deny_share: 0.0,
            subscribers: 1,
            slow_subscribers: 0,
            readers: 1,
            read_mix: ReadMix::default(),
            target_rate: 0,
            seed: 42,
            min_free_disk: Size(256 << 20),
        }
    }
}

/// The `[gates]` table: which shipped gates to install.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GateSpec {
    /// Run every gate and collect every denial (else stop at the first).
    pub evaluate_all: bool,
    /// `MaxPayloadSize`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_payload: Option<Size>,
    /// `RateLimit`: events per entity and window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_entity: Option<u32>,
    /// `RateLimit` window in milliseconds.
    pub rate_window_ms: u64,
    /// `RequiresCausation`: kinds (as `u16`) that must name a cause.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requires_causation: Vec<u16>,
    /// `AllowedKinds`: kinds (as `u16`) allowed per scope.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub allowed_kinds: BTreeMap<String, Vec<u16>>,
}

impl GateSpec {
    /// The gate set this table describes.
    pub fn build(&self) -> GateSet {
        let mode = if self.evaluate_all {
            Evaluation::EvaluateAll
        } else {
            Evaluation::FailFast
        };
        let mut set = GateSet::new(mode);
        if let Some(max) = self.max_payload {
            set = set.with(MaxPayloadSize {
                max_bytes: usize::try_from(max.0).unwrap_or(usize::MAX),
            });
        }
        if !self.allowed_kinds.is_empty() {
            let per_scope = self
                .allowed_kinds
                .iter()
                .map(|(s, ks)| (s.clone(), ks.iter().map(|k| EventKind(*k)).collect()))
                .collect();
            set = set.with(AllowedKinds {
                per_scope,
                default: None,
            });
        }
        if !self.requires_causation.is_empty() {
            set = set.with(RequiresCausation {
                kinds: self
                    .requires_causation
                    .iter()
                    .map(|k| EventKind(*k))
                    .collect(),
            });
        }
        if let Some(n) = self.rate_limit_per_entity {
            set = set.with(RateLimit::new(
                n,
                Duration::from_millis(self.rate_window_ms.max(1)),
            ));
        }
        set
    }
}
