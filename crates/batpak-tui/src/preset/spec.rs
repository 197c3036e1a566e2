//! The `[workload]` and `[gates]` tables of a preset.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Size;
use batpak::event::EventKind;
use batpak::gate::{
    AllowedKinds, Evaluation, GateSet, MaxPayloadSize, RateLimit, RequiresCausation,
};

/// Weights of the readers' operations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReadMix {
    /// `get` of a recent event (one of the newest `workload::READ_WINDOW`).
    pub get: u32,
    /// Range query of the newest events (`workload::QUERY_WINDOW`).
    pub query: u32,
    /// causal walk from a recent event.
    pub walk: u32,
    /// projection of an entity, from the cache (`Freshness::AnyCached`).
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

/// One bin of a payload size histogram: `share` of the events carry a payload of
/// `min_bytes..=max_bytes` bytes as stored (the encoded payload `Event::payload` holds),
/// uniform within the bin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadBin {
    /// Smallest stored payload of the bin, in bytes.
    pub min_bytes: u32,
    /// Largest stored payload of the bin, in bytes (inclusive).
    pub max_bytes: u32,
    /// Weight of the bin (the bins' shares are normalised to sum to 1).
    pub share: f64,
}

/// One entry of the kind mix: `share` of the events have kind `category.code`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindShare {
    /// The kind's category (high byte); 255 (the store's own kinds) is refused.
    pub category: u8,
    /// The type within the category (low byte).
    pub code: u8,
    /// Weight (normalised over the mix).
    pub share: f64,
}

/// One entry of the batch size mix: `share` of the append calls write `events` events in
/// one `append_batch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchShare {
    /// Events per call (1 = a single `append`).
    pub events: u32,
    /// Weight (normalised over the mix).
    pub share: f64,
}

/// What the workload generator runs (see `docs/design.md`, reference workload, and
/// "Workload profiles" for the fields a profile fills in).
///
/// Every field added for profiles has a default that leaves the reference workload as it
/// was: uniform entities, payload sizes from `payload_min_bytes..=payload_max_bytes`, four
/// kinds of category 1, no explicit correlation, single non-durable appends, a constant
/// `target_rate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkloadSpec {
    /// Producer threads.
    pub producers: u32,
    /// Smallest payload (bytes of random data); used when `payload_sizes` is empty.
    pub payload_min_bytes: u32,
    /// Largest payload; used when `payload_sizes` is empty.
    pub payload_max_bytes: u32,
    /// Entities (`order:<n>`).
    pub entities: u32,
    /// Skew of the events over entities: the exponent `s` of a Zipf law, entity of rank
    /// `r` (1-based) drawing a share proportional to `r^-s`; 0 = uniform.
    pub entity_skew: f64,
    /// Scopes (`tenant-<k>`).
    pub scopes: u32,
    /// Share of appends naming the entity's previous event as cause (0..=1).
    pub causation_share: f64,
    /// Share of appends whose correlation names an earlier event (0..=1, at least
    /// `causation_share`: a caused event inherits its cause's correlation); the rest are
    /// roots. `None`: only caused events are correlated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_share: Option<f64>,
    /// Share of proposals built to be denied by the gates (0..=1).
    pub deny_share: f64,
    /// Stored payload size histogram; when empty, `payload_min_bytes..=payload_max_bytes`
    /// bytes of random data, uniform.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub payload_sizes: Vec<PayloadBin>,
    /// Kind mix; when empty, four kinds of category 1 (`1.1` to `1.4`), uniform.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<KindShare>,
    /// Batch size mix of the append calls; when empty, every call appends one event.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub batch_sizes: Vec<BatchShare>,
    /// Share of append calls that wait for their sync (`AppendOptions::durable`, a durable
    /// `append_batch`); `None` = 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub durable_share: Option<f64>,
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
    /// Open-loop rates of consecutive one-second steps, in events per second, repeated;
    /// when not empty it replaces `target_rate` (a step of 0 is a second of silence).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rate_steps: Vec<u64>,
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
            entity_skew: 0.0,
            scopes: 8,
            causation_share: 0.5,
            correlation_share: None,
            deny_share: 0.0,
            payload_sizes: Vec::new(),
            kinds: Vec::new(),
            batch_sizes: Vec::new(),
            durable_share: None,
            subscribers: 1,
            slow_subscribers: 0,
            readers: 1,
            read_mix: ReadMix::default(),
            target_rate: 0,
            rate_steps: Vec::new(),
            seed: 42,
            min_free_disk: Size(256 << 20),
        }
    }
}

/// A `[workload]` value that parses but cannot be run: the field (dotted, as in the
/// preset) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The field, e.g. `payload_sizes[2].max_bytes`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn share(field: &str, v: f64) -> Result<(), SpecError> {
    if v.is_finite() && (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(SpecError {
            field: field.to_string(),
            message: format!("{v} is not a share between 0 and 1"),
        })
    }
}

fn weight(field: String, v: f64) -> Result<(), SpecError> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(SpecError {
            field,
            message: format!("{v} is not a weight (a number of at least 0)"),
        })
    }
}

fn some_weight<T>(field: &str, items: &[T], w: impl Fn(&T) -> f64) -> Result<(), SpecError> {
    if items.is_empty() || items.iter().map(&w).sum::<f64>() > 0.0 {
        Ok(())
    } else {
        Err(SpecError {
            field: field.to_string(),
            message: "every share is 0: at least one must be above 0".into(),
        })
    }
}

impl WorkloadSpec {
    /// Checks what the types cannot: shares within 0..=1, weights not negative, bins in
    /// order, no system kinds, batches of at least one event.
    pub fn validate(&self) -> Result<(), SpecError> {
        share("causation_share", self.causation_share)?;
        share("deny_share", self.deny_share)?;
        if let Some(c) = self.correlation_share {
            share("correlation_share", c)?;
        }
        if let Some(d) = self.durable_share {
            share("durable_share", d)?;
        }
        if !(self.entity_skew.is_finite() && (0.0..=10.0).contains(&self.entity_skew)) {
            return Err(SpecError {
                field: "entity_skew".into(),
                message: format!(
                    "{} is not a Zipf exponent between 0 (uniform) and 10",
                    self.entity_skew
                ),
            });
        }
        for (i, b) in self.payload_sizes.iter().enumerate() {
            weight(format!("payload_sizes[{i}].share"), b.share)?;
            if b.min_bytes > b.max_bytes {
                return Err(SpecError {
                    field: format!("payload_sizes[{i}].max_bytes"),
                    message: format!("{} is below min_bytes = {}", b.max_bytes, b.min_bytes),
                });
            }
        }
        some_weight("payload_sizes", &self.payload_sizes, |b| b.share)?;
        for (i, k) in self.kinds.iter().enumerate() {
            weight(format!("kinds[{i}].share"), k.share)?;
            if k.category == EventKind::SYSTEM {
                return Err(SpecError {
                    field: format!("kinds[{i}].category"),
                    message: "category 255 holds the store's own kinds; appends of it are refused"
                        .into(),
                });
            }
        }
        some_weight("kinds", &self.kinds, |k| k.share)?;
        for (i, b) in self.batch_sizes.iter().enumerate() {
            weight(format!("batch_sizes[{i}].share"), b.share)?;
            if b.events == 0 {
                return Err(SpecError {
                    field: format!("batch_sizes[{i}].events"),
                    message: "a batch holds at least one event".into(),
                });
            }
        }
        some_weight("batch_sizes", &self.batch_sizes, |b| b.share)?;
        if !self.rate_steps.is_empty() && self.rate_steps.iter().all(|&r| r == 0) {
            return Err(SpecError {
                field: "rate_steps".into(),
                message: "every step is 0 events/s: the workload would never append".into(),
            });
        }
        Ok(())
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
