//! Changing the configuration of an open store.
//!
//! Fields that apply live take effect at once (segment size from the next roll, broadcast
//! capacity for new subscribers); the others need the store reopened, which
//! [`ReopenableStore`] does while producers simply wait.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use crate::config::StoreConfig;
use crate::error::{ConfigError, OpenError};

use super::{OpenOptions, Store};

/// When a change of a field takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applies {
    /// At once.
    Live,
    /// From the next segment roll.
    NextRoll,
    /// For subscriptions made after the change.
    NewSubscribers,
    /// Only after the store is reopened.
    Reopen,
}

/// Every `StoreConfig` field, in declaration order, with when a change applies.
pub const FIELDS: [(&str, Applies); 13] = [
    ("data_dir", Applies::Reopen),
    ("segment_max_bytes", Applies::NextRoll),
    ("sync_every_n_events", Applies::Live),
    ("fd_budget", Applies::Live),
    ("writer_channel_capacity", Applies::Reopen),
    ("broadcast_capacity", Applies::NewSubscribers),
    ("cache_map_size_bytes", Applies::Reopen),
    ("restart_policy", Applies::Live),
    ("shutdown_drain_limit", Applies::Live),
    ("writer_stack_size", Applies::Reopen),
    ("clock", Applies::Reopen),
    ("sync_mode", Applies::Live),
    ("idempotency_window", Applies::Reopen),
];

/// When a change of `field` takes effect (`None` for an unknown name).
pub fn applies(field: &str) -> Option<Applies> {
    FIELDS.iter().find(|(f, _)| *f == field).map(|(_, a)| *a)
}

/// What [`Store::reconfigure`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconfigured {
    /// Fields changed and in force.
    pub applied: Vec<&'static str>,
    /// Fields that differ but wait for a reopen.
    pub needs_reopen: Vec<&'static str>,
}

fn changed(old: &StoreConfig, new: &StoreConfig) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut check = |name: &'static str, differs: bool| {
        if differs {
            out.push(name);
        }
    };
    check("data_dir", old.data_dir != new.data_dir);
    check(
        "segment_max_bytes",
        old.segment_max_bytes != new.segment_max_bytes,
    );
    check(
        "sync_every_n_events",
        old.sync_every_n_events != new.sync_every_n_events,
    );
    check("fd_budget", old.fd_budget != new.fd_budget);
    check(
        "writer_channel_capacity",
        old.writer_channel_capacity != new.writer_channel_capacity,
    );
    check(
        "broadcast_capacity",
        old.broadcast_capacity != new.broadcast_capacity,
    );
    check(
        "cache_map_size_bytes",
        old.cache_map_size_bytes != new.cache_map_size_bytes,
    );
    check("restart_policy", old.restart_policy != new.restart_policy);
    check(
        "shutdown_drain_limit",
        old.shutdown_drain_limit != new.shutdown_drain_limit,
    );
    check(
        "writer_stack_size",
        old.writer_stack_size != new.writer_stack_size,
    );
    let same_clock = match (&old.clock, &new.clock) {
        (None, None) => true,
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        _ => false,
    };
    check("clock", !same_clock);
    check("sync_mode", old.sync_mode != new.sync_mode);
    check(
        "idempotency_window",
        old.idempotency_window != new.idempotency_window,
    );
    out
}

impl Store {
    /// Applies what can change while running and reports what needs a reopen. The fields
    /// that need a reopen keep their old values until then.
    pub fn reconfigure(&self, new: &StoreConfig) -> Result<Reconfigured, ConfigError> {
        new.validate()?;
        let old = self.shared.config();
        let (applied, needs_reopen): (Vec<&'static str>, Vec<&'static str>) = changed(&old, new)
            .into_iter()
            .partition(|f| applies(f) != Some(Applies::Reopen));
        if !applied.is_empty() {
            // Every field that applies without a reopen comes from `new`; the others stay.
            self.shared.set_config(StoreConfig {
                data_dir: old.data_dir.clone(),
                writer_channel_capacity: old.writer_channel_capacity,
                cache_map_size_bytes: old.cache_map_size_bytes,
                writer_stack_size: old.writer_stack_size,
                clock: old.clock.clone(),
                idempotency_window: old.idempotency_window,
                ..new.clone()
            });
        }
        let report = Reconfigured {
            applied,
            needs_reopen,
        };
        Ok(report)
    }
}

/// A store that can be closed and reopened with another configuration while other threads
/// keep appending through it: during the reopen they wait, none gets an error, and no
/// acknowledged event is lost (the close drains and syncs).
pub struct ReopenableStore {
    inner: RwLock<Arc<Store>>,
    options: OpenOptions,
}

/// What a reopen did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reopened {
    /// How long writers were held.
    pub pause: Duration,
    /// The fields that changed.
    pub changed: Vec<&'static str>,
}

impl ReopenableStore {
    /// Opens the store.
    pub fn open(config: StoreConfig, options: OpenOptions) -> Result<Self, OpenError> {
        let store = Store::open_with(config, options.clone())?;
        Ok(Self {
            inner: RwLock::new(Arc::new(store)),
            options,
        })
    }

    /// The store in use; hold the guard only for one operation, so a reopen can proceed.
    pub fn get(&self) -> RwLockReadGuard<'_, Arc<Store>> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies `new`: live fields at once, the rest by closing and reopening. Producers
    /// wait while it happens; the pause is measured.
    pub fn apply(&self, new: StoreConfig) -> Result<Reopened, OpenError> {
        let live = self.get().reconfigure(&new)?;
        if live.needs_reopen.is_empty() {
            return Ok(Reopened {
                pause: Duration::ZERO,
                changed: live.applied,
            });
        }
        let start = Instant::now();
        let mut slot = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        // The write lock is held: nobody else holds the store, the close drains it all.
        let _ = slot.close();
        let reopened = Store::open_with(new.clone(), self.options.clone());
        let store = match reopened {
            Ok(s) => s,
            Err(e) => {
                // Keep the store usable with the configuration it had.
                let old = slot.config();
                *slot = Arc::new(Store::open_with(old, self.options.clone())?);
                return Err(e);
            }
        };
        *slot = Arc::new(store);
        let pause = start.elapsed();
        let mut changed = live.applied;
        changed.extend(live.needs_reopen);
        Ok(Reopened { pause, changed })
    }
}

impl super::shared::Shared {
    /// Replaces the configuration in force and lets the writer and the map cache see it.
    pub fn set_config(&self, c: StoreConfig) {
        self.resize_maps(c.fd_budget.saturating_sub(1) as usize);
        self.every_append_durable
            .store(c.sync_every_n_events == 1, Ordering::Relaxed);
        *self
            .config_lock()
            .write()
            .unwrap_or_else(PoisonError::into_inner) = c;
        self.config_gen.fetch_add(1, Ordering::Release);
    }
}
