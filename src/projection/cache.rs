//! The projection cache: LMDB through heed in `DIR/cache/`, map size
//! `cache_map_size_bytes`, written behind (see [`super::behind`]).
//!
//! The cache is disposable: any value that fails its checksum or has another version is
//! recomputed, an environment that does not open is deleted and recreated, a cache of
//! another store or one that folded events past the log's end is cleared, and a full map
//! or a failing write means the state is computed without being cached (a fallback).
//!
//! A `project` never waits for the disk: it reads the buffer, then LMDB, and leaves its
//! new state in the buffer. A thread named `batpak-cache` commits the buffer (one durable
//! LMDB commit) when its oldest state is a second old, when it passes its byte bound, and
//! when the cache closes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use heed::Env;

use super::behind::{self, Inserted, Out, Pending};
use super::lmdb::{
    self, commit, hook, read_txn, write_txn, Cached, Db, Faults, MapBounds, META_KEY,
};
use crate::fs::account::WriteAccount;

pub(crate) use super::lmdb::{check, CacheCheck};

/// Directory of the cache inside the data directory.
pub const CACHE_DIR: &str = crate::layout::CACHE_DIR;

/// Cache counters.
#[derive(Debug, Default)]
pub(crate) struct CacheCounters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub fallbacks: AtomicU64,
    pub rebuilt_values: AtomicU64,
    pub commits: AtomicU64,
}

/// What the cache holds and has done.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// `false` when the cache could not be opened and projections run uncached.
    pub enabled: bool,
    /// Cached states (written to LMDB or waiting in the buffer).
    pub entries: u64,
    /// States waiting in the write-behind buffer.
    pub pending: u64,
    /// Bytes the buffer holds (keys, values and bookkeeping).
    pub pending_bytes: u64,
    /// Write transactions committed (each one durable: two syncs).
    pub commits: u64,
    /// Bytes of the map in use.
    pub used_bytes: u64,
    /// The map size (`cache_map_size_bytes`).
    pub map_size_bytes: u64,
    /// Projections answered from the cache without applying events.
    pub hits: u64,
    /// Projections that applied events (cold or warm).
    pub misses: u64,
    /// States computed but not cached: the map was full, the cache failed, or the buffer
    /// was at twice its bound.
    pub fallbacks: u64,
    /// Cached values found damaged, of another version or ahead of the log, and recomputed.
    pub rebuilt_values: u64,
    /// What opening the cache found (cleared, recreated), if anything.
    pub open_note: Option<String>,
}

/// Where the cache learns what the log has made durable, and counts its writes.
pub(crate) struct Link {
    /// Wear counters of the store.
    pub account: Arc<WriteAccount>,
    /// The newest durable sequence of the log.
    pub durable: Box<dyn Fn() -> u64 + Send + Sync>,
    /// The last sequence of the log at open.
    pub log_end: u64,
}

impl Link {
    /// A link to the store behind `shared` (held weakly: the cache never keeps it alive).
    pub fn of(shared: &Arc<crate::store::Shared>, log_end: u64) -> Self {
        let weak: Weak<crate::store::Shared> = Arc::downgrade(shared);
        Self {
            account: shared.account.clone(),
            durable: Box::new(move || {
                weak.upgrade()
                    .map_or(0, |s| s.durable_seq.load(Ordering::Acquire))
            }),
            log_end,
        }
    }
}

/// The open environment and the buffer, shared with the flush thread.
struct Core {
    env: Env,
    db: Db,
    bounds: MapBounds,
    faults: Faults,
    dir: PathBuf,
    store_id: u64,
    pending: Mutex<Pending>,
    /// Held by a flush or a forget from start to end: they never interleave.
    serial: Mutex<()>,
    link: Link,
    high_water: AtomicU64,
    counters: Arc<CacheCounters>,
}

enum Cmd {
    /// The buffer passed its bound: flush now.
    Flush,
    /// The cache closes: flush what can be written and stop.
    Shutdown,
}

struct Flusher {
    tx: Sender<Cmd>,
    thread: JoinHandle<()>,
}

pub(crate) struct Cache {
    core: Option<Arc<Core>>,
    flusher: Option<Flusher>,
    path: PathBuf,
    map_size: u64,
    pub counters: Arc<CacheCounters>,
    open_note: Option<String>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Core {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        lock(&self.pending)
    }

    /// Commits every buffered state the log made durable, with the new high water, in one
    /// durable transaction. A failed commit loses those states (counted as fallbacks).
    fn flush(&self) {
        let _serial = lock(&self.serial);
        let durable = (self.link.durable)();
        let batch = self.pending().writable(durable);
        if !batch.is_empty() {
            let high = batch.iter().map(|o| o.last_seq).max().unwrap_or(0);
            let high = high.max(self.high_water.load(Ordering::Relaxed));
            match self.write(&batch, high) {
                Ok(()) => {
                    self.high_water.store(high, Ordering::Relaxed);
                    self.counters.commits.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    let lost = batch.len() as u64;
                    self.counters.fallbacks.fetch_add(lost, Ordering::Relaxed);
                }
            }
            self.pending().remove_written(&batch);
        }
        let shed = self.pending().shed(durable);
        self.counters.fallbacks.fetch_add(shed, Ordering::Relaxed);
    }

    fn write(&self, batch: &[Out], high: u64) -> heed::Result<()> {
        let f = &self.faults;
        let mut w = write_txn(&self.env, f)?;
        for o in batch {
            hook(f, "put")?;
            self.db.put(&mut w, &o.key, &o.value)?;
        }
        hook(f, "put")?;
        let meta = lmdb::meta_value(self.store_id, high);
        self.db.put(&mut w, META_KEY, &meta)?;
        commit(w, f, &self.link.account, &self.dir)
    }

    /// The state of `key` in LMDB.
    fn read(&self, key: &[u8]) -> Option<Vec<u8>> {
        let rtxn = read_txn(&self.env, &self.faults).ok()?;
        hook(&self.faults, "get").ok()?;
        let raw = self.db.get(&rtxn, key).ok()??;
        self.bounds.holds(raw).then(|| raw.to_vec())
    }
}

/// The flush thread's loop body: waits until the buffer is due or a command comes;
/// returns `false` once it should stop.
fn flush_step(core: &Core, rx: &Receiver<Cmd>) -> bool {
    let wait = core.pending().due_in();
    match rx.recv_timeout(wait) {
        Ok(Cmd::Flush) => core.flush(),
        Err(RecvTimeoutError::Timeout) => {
            if core.pending().due() {
                core.flush();
            }
        }
        Ok(Cmd::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
            core.flush();
            return false;
        }
    }
    true
}

fn start_flusher(core: &Arc<Core>) -> Option<Flusher> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let core = core.clone();
    let thread = std::thread::Builder::new()
        .name("batpak-cache".into())
        .spawn(move || while flush_step(&core, &rx) {})
        .ok()?;
    Some(Flusher { tx, thread })
}

/// Opens the projection cache of the store behind `shared` in `path`; the log's next
/// sequence is `next_seq`.
pub(crate) fn open_for(
    shared: &Arc<crate::store::Shared>,
    path: PathBuf,
    options: &crate::store::OpenOptions,
    next_seq: u64,
) -> Cache {
    let faults = faults_of(options);
    let map_size = shared.config().cache_map_size_bytes;
    let link = Link::of(shared, next_seq.saturating_sub(1));
    Cache::open(path, shared.store_id, map_size, faults, link)
}

/// The heed calls `options` asks to fail (feature `testkit`).
#[cfg(feature = "testkit")]
fn faults_of(options: &crate::store::OpenOptions) -> Faults {
    options.cache_faults.clone()
}

/// The heed calls `options` asks to fail (feature `testkit`).
#[cfg(not(feature = "testkit"))]
fn faults_of(_options: &crate::store::OpenOptions) -> Faults {
    lmdb::NoFaults
}

impl Cache {
    /// Opens (or creates) the cache of the store `store_id` in `path`.
    pub fn open(path: PathBuf, store_id: u64, map_size: u64, faults: Faults, link: Link) -> Self {
        let mut cache = Self {
            core: None,
            flusher: None,
            path,
            map_size,
            counters: Arc::default(),
            open_note: None,
        };
        let opened = cache.try_open(store_id, &faults, &link).or_else(|first| {
            // A damaged or incompatible environment: it is disposable, start again.
            let _ = std::fs::remove_dir_all(&cache.path);
            cache.open_note = Some(format!(
                "{} did not open ({first}); recreated",
                cache.path.display()
            ));
            cache.try_open(store_id, &faults, &link)
        });
        match opened {
            Ok((env, db, high)) => {
                let core = cache.core_of(env, db, high, store_id, faults, link);
                cache.flusher = start_flusher(&core);
                cache.core = Some(core);
            }
            Err(e) => {
                cache.open_note = Some(format!(
                    "{} unusable ({e}); projections run uncached",
                    cache.path.display()
                ));
            }
        }
        cache
    }

    fn core_of(
        &self,
        env: Env,
        db: Db,
        high: u64,
        store_id: u64,
        faults: Faults,
        link: Link,
    ) -> Arc<Core> {
        let bounds = MapBounds::of(&env, &self.path, env.real_disk_size().unwrap_or(0));
        Arc::new(Core {
            env,
            db,
            bounds,
            faults,
            dir: self.path.clone(),
            store_id,
            pending: Mutex::new(Pending::new(behind::pending_limit(self.map_size))),
            serial: Mutex::new(()),
            link,
            high_water: AtomicU64::new(high),
            counters: self.counters.clone(),
        })
    }

    /// The environment, its database and its high water.
    fn try_open(
        &mut self,
        store_id: u64,
        faults: &Faults,
        link: &Link,
    ) -> heed::Result<(Env, Db, u64)> {
        std::fs::create_dir_all(&self.path)?;
        let (env, db) = lmdb::open_env(&self.path, self.map_size, faults, &link.account)?;
        let high = self.adopt(&env, db, store_id, faults, link)?;
        Ok((env, db, high))
    }

    /// Keeps the cache's states if it belongs to this store and folded nothing past the
    /// log's end, clears it otherwise; returns its high water.
    fn adopt(
        &mut self,
        env: &Env,
        db: Db,
        store_id: u64,
        f: &Faults,
        link: &Link,
    ) -> heed::Result<u64> {
        let mut wtxn = write_txn(env, f)?;
        hook(f, "get")?;
        let bounds = MapBounds::of(env, &self.path, env.real_disk_size()?);
        // No page is dirty yet: whatever `get` returns must lie in the map.
        let meta = db.get(&wtxn, META_KEY)?.map(|v| {
            if bounds.holds(v) {
                v.to_vec()
            } else {
                Vec::new()
            }
        });
        let why = match kept(meta.as_deref(), store_id, link.log_end) {
            Ok(high) => return Ok(high),
            Err(why) => why,
        };
        if let Some(why) = why {
            self.open_note = Some(format!("{} {why}; cleared", self.path.display()));
        }
        hook(f, "clear")?;
        db.clear(&mut wtxn)?;
        hook(f, "put")?;
        db.put(&mut wtxn, META_KEY, &lmdb::meta_value(store_id, 0))?;
        commit(wtxn, f, &link.account, &self.path)?;
        self.counters.commits.fetch_add(1, Ordering::Relaxed);
        Ok(0)
    }

    /// Bumped when states are forgotten: pass it to [`Cache::put`] from before the fold.
    pub fn generation(&self) -> u64 {
        self.core.as_ref().map_or(0, |c| c.pending().generation())
    }

    /// The cached state of (`name`, `entity`) if present, intact and of `version`.
    pub fn get(&self, name: &str, version: u32, entity: &str) -> Option<Cached> {
        let core = self.core.as_ref()?;
        let key = lmdb::key(name, entity);
        let buffered = core.pending().get(&key).map(<[u8]>::to_vec);
        let raw = buffered.or_else(|| core.read(&key))?;
        let decoded = lmdb::decode_value(&raw, version);
        if decoded.is_none() {
            self.counters.rebuilt_values.fetch_add(1, Ordering::Relaxed);
        }
        decoded
    }

    /// Buffers a state folded up to `last_seq` by a fold that began at `generation`; a
    /// buffer at twice its bound or a failing cache is counted as a fallback.
    pub fn put(
        &self,
        name: &str,
        version: u32,
        entity: &str,
        last_seq: u64,
        state: &[u8],
        generation: u64,
    ) {
        let Some(core) = self.core.as_ref() else {
            self.counters.fallbacks.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let value = lmdb::encode_value(version, last_seq, state);
        let inserted = core
            .pending()
            .insert(lmdb::key(name, entity), value, last_seq, generation);
        match inserted {
            Inserted::Buffered | Inserted::Stale => {}
            Inserted::Full => self.wake_flusher(core),
            Inserted::Refused => {
                self.counters.fallbacks.fetch_add(1, Ordering::Relaxed);
                self.wake_flusher(core);
            }
        }
    }

    /// Asks the flush thread to flush now; without one, flushes on this thread.
    fn wake_flusher(&self, core: &Core) {
        match &self.flusher {
            // A full channel already holds a request.
            Some(f) => {
                let _ = f.tx.try_send(Cmd::Flush);
            }
            None => core.flush(),
        }
    }

    /// Removes every cached state of the named entities (of any projection), buffered or
    /// written; when that fails, every cached state. An error means stale states may
    /// remain: the caller must not remove the entities' events while this cache can serve
    /// them.
    pub fn forget_entities(
        &self,
        entities: &std::collections::HashSet<String>,
    ) -> Result<(), String> {
        let Some(core) = self.core.as_ref() else {
            return Ok(());
        };
        let _serial = lock(&core.serial);
        let named = |k: &[u8]| lmdb::entity_of(k).is_some_and(|e| entities.contains(e));
        core.pending().forget(named);
        let f = &core.faults;
        let account = &core.link.account;
        let removed = doomed(core, &named).and_then(|doomed| {
            let mut w = write_txn(&core.env, f)?;
            for k in &doomed {
                hook(f, "delete")?;
                core.db.delete(&mut w, k)?;
            }
            commit(w, f, account, &core.dir)
        });
        let Err(first) = removed else {
            self.counters.commits.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        };
        // Stale values must not survive: without a way to remove them, drop them all.
        core.pending().forget(|_| true);
        write_txn(&core.env, f)
            .and_then(|mut w| {
                hook(f, "clear")?;
                core.db.clear(&mut w)?;
                commit(w, f, account, &core.dir)
            })
            .map_err(|e| {
                format!(
                    "the projection cache {} could not drop the states of the entities ({first}) \
                     nor clear them ({e})",
                    self.path.display()
                )
            })
    }

    /// The cache's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Counters and sizes.
    pub fn stats(&self) -> CacheStats {
        let c = &self.counters;
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut s = CacheStats {
            map_size_bytes: self.map_size,
            hits: ld(&c.hits),
            misses: ld(&c.misses),
            fallbacks: ld(&c.fallbacks),
            rebuilt_values: ld(&c.rebuilt_values),
            commits: ld(&c.commits),
            open_note: self.open_note.clone(),
            ..CacheStats::default()
        };
        if let Some(core) = &self.core {
            fill_sizes(core, &mut s);
        }
        s
    }

    /// Commits what the log made durable and closes the environment, waiting until LMDB
    /// released it, so the same directory can be opened again in this process.
    pub fn close(&mut self) {
        if let Some(f) = self.flusher.take() {
            let _ = f.tx.send(Cmd::Shutdown);
            let _ = f.thread.join();
        }
        if let Some(core) = self.core.take() {
            // Without a flush thread (it could not start) the buffer is written here.
            core.flush();
            let env = core.env.clone();
            drop(core);
            env.prepare_for_closing().wait();
        }
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        self.close();
    }
}

/// The high water of a cache whose meta entry `meta` says it may be kept by the store
/// `store_id` whose log ends at `log_end`; else why it is cleared (`None`: a new cache).
fn kept(meta: Option<&[u8]>, store_id: u64, log_end: u64) -> Result<u64, Option<String>> {
    let why = match meta.map(lmdb::parse_meta) {
        Some(Some((id, high))) if id == store_id && high <= log_end => return Ok(high),
        Some(Some((id, _))) if id != store_id => "belonged to another store".to_string(),
        Some(Some((_, high))) => {
            format!("held states folded up to sequence {high}, past the log's end at {log_end}")
        }
        Some(None) => "was of an older format".to_string(),
        None => return Err(None),
    };
    Err(Some(why))
}

/// Keys of the written states `named` says.
fn doomed(core: &Core, named: &dyn Fn(&[u8]) -> bool) -> heed::Result<Vec<Vec<u8>>> {
    let f = &core.faults;
    let r = read_txn(&core.env, f)?;
    hook(f, "iter")?;
    let mut keys = Vec::new();
    for item in core.db.iter(&r)? {
        let (k, _) = item?;
        if core.bounds.holds(k) && named(k) {
            keys.push(k.to_vec());
        }
    }
    Ok(keys)
}

/// Buffered states counted exactly up to this many (each costs an LMDB lookup); beyond,
/// `entries` counts every buffered state as new (an upper bound).
const EXACT_PENDING: usize = 4096;

/// Entries, buffer and map use of an open cache.
fn fill_sizes(core: &Core, s: &mut CacheStats) {
    s.enabled = true;
    let keys: Option<Vec<Vec<u8>>> = {
        let pending = core.pending();
        (s.pending, s.pending_bytes) = pending.size();
        (s.pending as usize <= EXACT_PENDING).then(|| pending.keys().map(<[u8]>::to_vec).collect())
    };
    let Ok(r) = read_txn(&core.env, &core.faults) else {
        return;
    };
    let written = core.db.len(&r).unwrap_or(0).saturating_sub(1);
    let new = keys.map_or(s.pending, |keys| {
        keys.iter()
            .filter(|k| core.db.get(&r, k).ok().flatten().is_none())
            .count() as u64
    });
    let info = core.env.info();
    s.entries = written + new;
    s.used_bytes = (info.last_page_number as u64 + 1) * 4096;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(durable: &Arc<AtomicU64>) -> Link {
        let d = durable.clone();
        Link {
            account: Arc::new(WriteAccount::new()),
            durable: Box::new(move || d.load(Ordering::Relaxed)),
            log_end: 100,
        }
    }

    #[cfg(feature = "testkit")]
    fn no_faults() -> Faults {
        None
    }

    #[cfg(not(feature = "testkit"))]
    fn no_faults() -> Faults {
        lmdb::NoFaults
    }

    fn open(dir: &Path, durable: &Arc<AtomicU64>) -> Cache {
        Cache::open(dir.join("cache"), 7, 1 << 20, no_faults(), link(durable))
    }

    #[test]
    fn a_cache_is_kept_only_by_its_own_store_with_a_log_reaching_its_high_water() {
        let meta = lmdb::meta_value(7, 50);
        assert_eq!(kept(Some(&meta), 7, 50), Ok(50));
        assert!(kept(Some(&meta), 8, 50).is_err_and(|w| w.is_some_and(|w| w.contains("another"))));
        assert!(kept(Some(&meta), 7, 49).is_err_and(|w| w.is_some_and(|w| w.contains("past"))));
        assert!(kept(Some(b"BPKCACHE"), 7, 50).is_err_and(|w| w.is_some()));
        assert_eq!(kept(None, 7, 50), Err(None), "a new cache");
    }

    #[test]
    fn a_state_of_events_the_log_has_not_made_durable_waits_in_the_buffer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let durable = Arc::new(AtomicU64::new(5));
        let cache = open(dir.path(), &durable);
        let core = cache.core.clone().expect("the cache opened");
        cache.put("p", 1, "e", 10, b"state", cache.generation());
        core.flush();
        assert_eq!(cache.stats().pending, 1, "event 10 is not durable yet");
        assert!(core.read(&lmdb::key("p", "e")).is_none());
        durable.store(10, Ordering::Relaxed);
        core.flush();
        assert_eq!(cache.stats().pending, 0);
        assert!(core.read(&lmdb::key("p", "e")).is_some(), "written");
        assert_eq!(core.high_water.load(Ordering::Relaxed), 10);
        assert!(cache.get("p", 1, "e").is_some_and(|c| c.last_seq == 10));
    }

    #[test]
    fn close_writes_the_buffer_and_a_reopen_reads_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let durable = Arc::new(AtomicU64::new(100));
        let mut cache = open(dir.path(), &durable);
        cache.put("p", 1, "e", 42, b"state", cache.generation());
        assert_eq!(cache.stats().commits, 1, "only the open's commit so far");
        cache.close();
        let again = open(dir.path(), &durable);
        let got = again
            .get("p", 1, "e")
            .expect("the state survived the close");
        assert_eq!((got.last_seq, got.state.as_slice()), (42, &b"state"[..]));
    }

    #[test]
    fn the_data_files_map_is_found_where_linux_lists_maps() {
        if !Path::new("/proc/self/maps").exists() {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = open(dir.path(), &Arc::new(AtomicU64::new(0)));
        let core = cache.core.clone().expect("the cache opened");
        assert!(core.bounds.0.is_some(), "the map of data.mdb was found");
        let meta = core.read(META_KEY).expect("the meta entry");
        assert!(lmdb::parse_meta(&meta).is_some_and(|(id, _)| id == 7));
    }
}
