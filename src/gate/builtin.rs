//! Gates shipped with batpak, configurable and usable by the workbench workload.

use std::collections::{HashMap, VecDeque};
use std::marker::PhantomData;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use super::{Denial, Gate, Proposal, StoreView};
use crate::event::EventKind;

/// Denies payloads larger than `max_bytes` (encoded size).
#[derive(Debug, Clone)]
pub struct MaxPayloadSize {
    /// Largest encoded payload allowed.
    pub max_bytes: usize,
}

impl Gate for MaxPayloadSize {
    fn name(&self) -> &str {
        "max_payload_size"
    }

    fn check(&self, p: &Proposal, _: &StoreView<'_>) -> Result<(), Denial> {
        let n = p.payload_bytes().len();
        if n <= self.max_bytes {
            return Ok(());
        }
        Err(Denial::new(
            self.name(),
            "payload_too_large",
            format!("payload is {n} bytes, the limit is {}", self.max_bytes),
        ))
    }
}

/// Allows only listed kinds in listed scopes; scopes not listed get `default` (if any).
#[derive(Debug, Clone, Default)]
pub struct AllowedKinds {
    /// Kinds allowed per scope.
    pub per_scope: HashMap<String, Vec<EventKind>>,
    /// Kinds allowed in scopes not listed; `None` allows every kind there.
    pub default: Option<Vec<EventKind>>,
}

impl Gate for AllowedKinds {
    fn name(&self) -> &str {
        "allowed_kinds"
    }

    fn check(&self, p: &Proposal, _: &StoreView<'_>) -> Result<(), Denial> {
        let scope = p.scope();
        let Some(allowed) = self.per_scope.get(scope).or(self.default.as_ref()) else {
            return Ok(());
        };
        if allowed.contains(&p.kind()) {
            return Ok(());
        }
        Err(Denial::new(
            self.name(),
            "kind_not_allowed",
            format!("kind {} is not allowed in scope `{scope}`", p.kind()),
        ))
    }
}

/// Allows at most `max_events` proposals per entity within `window`.
#[derive(Debug)]
pub struct RateLimit {
    /// Proposals allowed per entity and window.
    pub max_events: u32,
    /// The sliding window.
    pub window: Duration,
    seen: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl RateLimit {
    /// At most `max_events` per entity within `window`.
    pub fn new(max_events: u32, window: Duration) -> Self {
        Self {
            max_events,
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }
}

/// Entities tracked before idle ones are forgotten.
const RATE_LIMIT_ENTITIES: usize = 65_536;

impl Gate for RateLimit {
    fn name(&self) -> &str {
        "rate_limit"
    }

    fn check(&self, p: &Proposal, _: &StoreView<'_>) -> Result<(), Denial> {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() > RATE_LIMIT_ENTITIES {
            seen.retain(|_, q| {
                q.back()
                    .is_some_and(|t| now.duration_since(*t) < self.window)
            });
        }
        let q = seen.entry(p.entity().to_string()).or_default();
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            q.pop_front();
        }
        if q.len() < self.max_events as usize {
            q.push_back(now);
            return Ok(());
        }
        Err(Denial::new(
            self.name(),
            "rate_limited",
            format!(
                "entity `{}` reached {} events per {:?}",
                p.entity(),
                self.max_events,
                self.window
            ),
        ))
    }
}

/// Denies the listed kinds unless they name a causation.
#[derive(Debug, Clone)]
pub struct RequiresCausation {
    /// Kinds that must name their cause.
    pub kinds: Vec<EventKind>,
}

impl Gate for RequiresCausation {
    fn name(&self) -> &str {
        "requires_causation"
    }

    fn check(&self, p: &Proposal, _: &StoreView<'_>) -> Result<(), Denial> {
        if p.causation().is_some() || !self.kinds.contains(&p.kind()) {
            return Ok(());
        }
        Err(Denial::new(
            self.name(),
            "causation_required",
            format!("kind {} must name the event that caused it", p.kind()),
        ))
    }
}

/// Denies payloads of `kinds` (or of every kind, when empty) that do not decode as `T`.
pub struct DecodesAs<T> {
    name: String,
    kinds: Vec<EventKind>,
    _t: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for DecodesAs<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodesAs")
            .field("name", &self.name)
            .field("kinds", &self.kinds)
            .finish()
    }
}

impl<T> DecodesAs<T> {
    /// Checks `kinds` (every kind when empty); `type_name` appears in denials.
    pub fn new(type_name: &str, kinds: Vec<EventKind>) -> Self {
        Self {
            name: format!("decodes_as_{type_name}"),
            kinds,
            _t: PhantomData,
        }
    }
}

impl<T: DeserializeOwned> Gate for DecodesAs<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self, p: &Proposal, _: &StoreView<'_>) -> Result<(), Denial> {
        if !self.kinds.is_empty() && !self.kinds.contains(&p.kind()) {
            return Ok(());
        }
        match p.payload::<T>() {
            Ok(_) => Ok(()),
            Err(e) => Err(Denial::new(&self.name, "payload_does_not_decode", e)),
        }
    }
}
