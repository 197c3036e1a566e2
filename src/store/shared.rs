//! State shared by the store handle, the writer thread, readers and subscriptions.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::codec::frame::EventHeader;
use crate::config::StoreConfig;
use crate::error::ReadError;
use crate::event::{Event, EventId, EventKind};
use crate::fs::{FileSystem, FsFile};

use super::command::Item;
use super::index::Index;
use super::reader::{self, Located, MapCache, MapCounters};
use super::segment;
use super::subscription::Ring;

/// Cumulative counters, updated with relaxed atomics on the hot path.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub batches: AtomicU64,
    pub writes: AtomicU64,
    pub bytes_written: AtomicU64,
    pub syncs: AtomicU64,
    pub sync_nanos: AtomicU64,
    pub synced_events: AtomicU64,
    pub blocked_sends: AtomicU64,
    pub blocked_nanos: AtomicU64,
    pub segments_created: AtomicU64,
    pub writer_restarts: AtomicU64,
    pub maps: MapCounters,
}

/// How often a read that failed because the files changed under it is tried again (each
/// time only after the files did change).
const READ_RETRIES: u32 = 4;

pub(crate) struct Shared {
    config: RwLock<StoreConfig>,
    pub dir: PathBuf,
    pub fs: Arc<dyn FileSystem>,
    pub store_id: u64,
    index: RwLock<Index>,
    maps: Mutex<MapCache>,
    active: RwLock<Option<(u32, Arc<dyn FsFile>)>>,
    poison: Mutex<Option<String>>,
    poisoned: AtomicBool,
    pub closing: AtomicBool,
    pub stats: Counters,
    pub written_seq: AtomicU64,
    pub durable_seq: AtomicU64,
    /// Newest sequence whose receipt was sent (receipts go out in order).
    pub acked_seq: AtomicU64,
    /// Bytes written to segment files since open (never reset; the loss window's bytes
    /// are differences of it).
    pub appended_total: AtomicU64,
    /// Producers waiting for a sync right now (for group commit).
    pub sync_waiters: super::ticket::SyncWaiters,
    /// Odd while a compaction replaces segment files, bumped again once the new index is
    /// in: a read that failed across a change is tried again.
    pub layout: AtomicU64,
    subs: Mutex<Vec<Arc<Ring>>>,
    sub_count: AtomicUsize,
    /// The names of the durable consumers open on the store.
    consumers: Mutex<std::collections::BTreeSet<String>>,
    pub telemetry: super::telemetry::Telemetry,
    /// Bytes written and syncs per class of file (see [`crate::fs::account`]).
    pub account: Arc<crate::fs::account::WriteAccount>,
    /// Bumped by every `set_config`, so the writer reloads its copy.
    pub config_gen: AtomicU64,
    /// `sync_every_n_events == 1`: every receipt waits for a sync (waiters spin longer).
    pub every_append_durable: AtomicBool,
    /// Commands the last sync covered, or more producers waiting for it: above one,
    /// durable appends go through the writer thread, which gathers them (group commit).
    pub sync_group: AtomicUsize,
    /// A read-only store: another process may compact the files under it, and a read that
    /// fails then reloads the index from the files (see [`Shared::files_replaced_since`]).
    pub reloadable: AtomicBool,
    /// One reload at a time.
    reload: Mutex<()>,
}

impl Shared {
    pub fn new(
        config: StoreConfig,
        fs: Arc<dyn FileSystem>,
        store_id: u64,
        telemetry: bool,
        account: Arc<crate::fs::account::WriteAccount>,
    ) -> Self {
        let durable_every = config.sync_every_n_events == 1;
        let maps = MapCache::new(config.fd_budget.saturating_sub(1) as usize);
        Self {
            dir: config.data_dir.clone(),
            config: RwLock::new(config),
            fs,
            store_id,
            index: RwLock::new(Index::default()),
            maps: Mutex::new(maps),
            active: RwLock::new(None),
            poison: Mutex::new(None),
            poisoned: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            stats: Counters::default(),
            written_seq: AtomicU64::new(0),
            durable_seq: AtomicU64::new(0),
            acked_seq: AtomicU64::new(0),
            appended_total: AtomicU64::new(0),
            layout: AtomicU64::new(0),
            sync_waiters: Default::default(),
            subs: Mutex::new(Vec::new()),
            sub_count: AtomicUsize::new(0),
            consumers: Mutex::new(std::collections::BTreeSet::new()),
            telemetry: super::telemetry::Telemetry::new(telemetry),
            account,
            config_gen: AtomicU64::new(0),
            every_append_durable: AtomicBool::new(durable_every),
            sync_group: AtomicUsize::new(0),
            reloadable: AtomicBool::new(false),
            reload: Mutex::new(()),
        }
    }

    /// A copy of the configuration in force.
    pub fn config(&self) -> StoreConfig {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The store's clock (the configured one or system time) without copying the config.
    pub fn now_micros(&self) -> u64 {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .now_micros()
    }

    pub fn config_lock(&self) -> &RwLock<StoreConfig> {
        &self.config
    }

    /// Bounds the map cache to `capacity` maps, evicting at once if needed.
    pub fn resize_maps(&self, capacity: usize) {
        let mut maps = self.maps.lock().unwrap_or_else(PoisonError::into_inner);
        maps.set_capacity(capacity, &self.stats.maps);
    }

    /// After a read that failed with the layout at `seen`: waits out a compaction in
    /// progress and says whether the layout changed (the read is worth one more try).
    pub fn layout_changed_since(&self, seen: u64) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let now = self.layout.load(Ordering::Acquire);
            if now == seen && now.is_multiple_of(2) {
                return false;
            }
            if now.is_multiple_of(2) || std::time::Instant::now() > deadline {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
    }

    /// Runs `read` (its result, and the layout it located the events under) until it
    /// succeeds, the files did not change under it, or `READ_RETRIES` more tries are spent:
    /// a compaction (here or, under a read-only store, in another process) may replace the
    /// files between locating and reading.
    pub fn read_retrying<T>(
        &self,
        mut read: impl FnMut() -> (Result<T, ReadError>, u64),
    ) -> Result<T, ReadError> {
        let mut tries = 0;
        loop {
            let (out, layout) = read();
            if out.is_ok() || tries == READ_RETRIES || !self.files_replaced_since(layout) {
                return out;
            }
            tries += 1;
        }
    }

    /// After a read that failed with the layout at `seen`: whether the files changed under
    /// it, so the read is worth one more try. In this process a compaction says so through
    /// the layout counter; under a read-only store another process may have compacted, so
    /// the index is reloaded from the files (recovery, read-only) and the maps dropped.
    pub fn files_replaced_since(&self, seen: u64) -> bool {
        self.layout_changed_since(seen) || self.reload_from_files(seen)
    }

    /// Rebuilds a read-only store's index from the files as they are now; `true` when it
    /// did, or another reader did since `seen`. A compaction in another process may be half
    /// way through its renames, whose segments keep their numbers and sequences, so a failed
    /// attempt is tried again. The layout counter is odd while the index and the maps are
    /// swapped, like during a compaction here, so a failing reader waits for the swap.
    fn reload_from_files(&self, seen: u64) -> bool {
        if !self.reloadable.load(Ordering::Acquire) {
            return false;
        }
        let _one = self.reload.lock().unwrap_or_else(PoisonError::into_inner);
        if self.layout.load(Ordering::Acquire) != seen {
            return true;
        }
        let knobs = super::recovery::Knobs::of(&self.config());
        for _ in 0..3 {
            let mode = super::recovery::Mode::ReadOnly;
            let dir = &self.dir;
            match super::recovery::recover_with(&*self.fs, dir, self.store_id, mode, knobs, None) {
                Ok(rec) => {
                    self.layout.fetch_add(1, Ordering::AcqRel);
                    super::supervisor::install_read_only(self, rec);
                    let mapped = self
                        .maps
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .mapped();
                    self.forget_maps(&mapped);
                    self.layout.fetch_add(1, Ordering::AcqRel);
                    return true;
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
        false
    }

    /// Drops the maps of segments whose files were replaced (readers holding one keep it).
    pub fn forget_maps(&self, segs: &[u32]) {
        let mut maps = self.maps.lock().unwrap_or_else(PoisonError::into_inner);
        segs.iter().for_each(|s| maps.forget(*s));
    }

    /// Reads the index. A panic elsewhere never makes the index unreadable: a panicking
    /// writer is restarted from disk, which replaces the index.
    pub fn index(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn index_mut(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn set_active(&self, active: Option<(u32, Arc<dyn FsFile>)>) {
        *self.active.write().unwrap_or_else(PoisonError::into_inner) = active;
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    pub fn poison_message(&self) -> Option<String> {
        if !self.is_poisoned() {
            return None;
        }
        self.poison
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn set_poisoned(&self, msg: String) {
        let mut p = self.poison.lock().unwrap_or_else(PoisonError::into_inner);
        p.get_or_insert(msg);
        self.poisoned.store(true, Ordering::Release);
    }

    /// Number of segment maps held (for the fd budget).
    pub fn mapped_segments(&self) -> Vec<u32> {
        self.maps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .mapped()
    }

    /// Reads and decodes the event at a location.
    pub fn read_located(&self, loc: &Located) -> Result<Event, ReadError> {
        self.with_frame(loc, |bytes, path| {
            reader::decode_event(bytes, loc, self.store_id, path)
        })
    }

    /// The chain link of the event at a location (`None` for a format before the chain).
    pub fn read_link(&self, loc: &Located) -> Result<Option<[u8; 8]>, ReadError> {
        self.with_frame(loc, |bytes, path| {
            reader::decode_header(bytes, loc, path).map(|h| h.link)
        })
    }

    /// Hands the bytes from the frame at a location on (from the active file or a map).
    fn with_frame<T>(
        &self,
        loc: &Located,
        decode: impl FnOnce(&[u8], &Path) -> Result<T, ReadError>,
    ) -> Result<T, ReadError> {
        let path = segment::path(&self.dir, loc.seg);
        {
            let active = self.active.read().unwrap_or_else(PoisonError::into_inner);
            if let Some((no, file)) = active.as_ref().filter(|(no, _)| *no == loc.seg) {
                debug_assert_eq!(*no, loc.seg);
                let bytes =
                    reader::read_frame_from_file(&**file, u64::from(loc.off), loc.limit, &path)?;
                return decode(&bytes, &path);
            }
        }
        let mut maps = self.maps.lock().unwrap_or_else(PoisonError::into_inner);
        let view = maps
            .get(&*self.fs, &self.dir, loc.seg, &self.stats.maps)
            .map_err(|source| ReadError::Io {
                path: path.clone(),
                offset: 0,
                source,
            })?;
        let bytes = view
            .bytes()
            .get(loc.off as usize..)
            .ok_or_else(|| ReadError::Corrupt {
                path: path.clone(),
                offset: u64::from(loc.off),
                reason: "segment is shorter than the index expects".into(),
            })?;
        decode(bytes, &path)
    }

    /// Builds the event a subscriber receives from what the writer staged.
    pub fn event_from(&self, h: &EventHeader, item: &Item) -> Event {
        Event {
            id: EventId::new(self.store_id, h.seq),
            sequence: h.seq,
            timestamp_us: h.ts,
            kind: EventKind(h.kind),
            coordinate: item.coordinate(),
            causation: h.cause.map(|c| EventId::new(self.store_id, c)),
            correlation: EventId::new(self.store_id, h.correlation),
            idempotency_key: h.key,
            bypass_reason: item.bypass().map(str::to_string),
            payload: item.payload().to_vec(),
        }
    }

    pub fn has_subscribers(&self) -> bool {
        self.sub_count.load(Ordering::Relaxed) > 0
    }

    pub fn add_subscriber(&self, ring: Arc<Ring>) {
        let mut subs = self.subs.lock().unwrap_or_else(PoisonError::into_inner);
        subs.push(ring);
        self.sub_count.store(subs.len(), Ordering::Relaxed);
    }

    /// Marks the consumer `name` open; `false` when it already is.
    pub fn claim_consumer(&self, name: &str) -> bool {
        self.consumers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_string())
    }

    /// Marks the consumer `name` closed.
    pub fn release_consumer(&self, name: &str) {
        self.consumers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
    }

    pub fn remove_subscriber(&self, ring: &Arc<Ring>) {
        let mut subs = self.subs.lock().unwrap_or_else(PoisonError::into_inner);
        subs.retain(|r| !Arc::ptr_eq(r, ring));
        self.sub_count.store(subs.len(), Ordering::Relaxed);
    }

    /// Subscriber rings (for statistics).
    pub fn subscribers(&self) -> Vec<Arc<Ring>> {
        self.subs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Hands written events to every matching subscriber.
    pub fn broadcast(&self, events: impl Iterator<Item = Arc<Event>>) {
        let subs = self.subs.lock().unwrap_or_else(PoisonError::into_inner);
        for e in events {
            for ring in subs.iter().filter(|r| r.region.matches(&e)) {
                ring.push(e.clone());
            }
        }
    }

    /// Wakes every subscriber for the last time.
    pub fn close_subscribers(&self) {
        for ring in self
            .subs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            ring.close();
        }
    }
}

impl Shared {
    /// Writes the index checkpoint (at a clean close).
    pub fn write_checkpoint(&self) -> Result<(), String> {
        let idx = self.index();
        super::checkpoint::write(&*self.fs, &self.dir, self.store_id, &idx)
            .map_err(|e| format!("write checkpoint in {}: {e}", self.dir.display()))
    }
}
