//! The projection cache: LMDB through heed in `DIR/cache/`, map size
//! `cache_map_size_bytes`.
//!
//! Key: projection name, a zero byte, the entity. Value:
//! `version:u32le last_seq:u64le crc:u32le state` where `crc` is the masked CRC32C of the
//! version, the sequence and the state (MessagePack). A `meta` entry holds the store id, so
//! a cache directory copied from another store is cleared, not used. The cache is
//! disposable: any value that fails its checksum or has another version is recomputed, an
//! environment that does not open is deleted and recreated, and a full map means the state
//! is computed without being cached (counted as a fallback).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use heed::types::Bytes;
use heed::{CommitOrAbort, Database, Env, EnvOpenOptions, RoTxn, RwTxn, WithTls};

use crate::codec::frame::mask;
use crate::fs::account::WriteAccount;
use crate::process::IoCounters;

/// Directory of the cache inside the data directory.
pub const CACHE_DIR: &str = "cache";
const META_KEY: &[u8] = b"\0batpak-meta";
const META_MAGIC: &[u8; 8] = b"BPKCACHE";

/// Cache counters.
#[derive(Debug, Default)]
pub(crate) struct CacheCounters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub fallbacks: AtomicU64,
    pub rebuilt_values: AtomicU64,
}

/// What the cache holds and has done.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// `false` when the cache could not be opened and projections run uncached.
    pub enabled: bool,
    /// Cached states.
    pub entries: u64,
    /// Bytes of the map in use.
    pub used_bytes: u64,
    /// The map size (`cache_map_size_bytes`).
    pub map_size_bytes: u64,
    /// Projections answered from the cache without applying events.
    pub hits: u64,
    /// Projections that applied events (cold or warm).
    pub misses: u64,
    /// States computed but not cached because the map was full or the cache failed.
    pub fallbacks: u64,
    /// Cached values found damaged or of another version, and recomputed.
    pub rebuilt_values: u64,
    /// What opening the cache found (cleared, recreated), if anything.
    pub open_note: Option<String>,
}

/// A decoded cache value.
pub(crate) struct Cached {
    pub last_seq: u64,
    pub state: Vec<u8>,
}

/// Heed calls that fail on purpose (feature `testkit`); nothing otherwise.
#[cfg(feature = "testkit")]
pub(crate) type Faults = Option<std::sync::Arc<super::faults::CacheFaults>>;
/// Heed calls that fail on purpose (feature `testkit`); nothing otherwise.
#[cfg(not(feature = "testkit"))]
pub(crate) type Faults = ();

/// Passes before every heed call of the cache: fails it when a test asks.
#[cfg(feature = "testkit")]
fn hook(faults: &Faults, call: &'static str) -> heed::Result<()> {
    faults.as_ref().map_or(Ok(()), |f| f.check(call))
}

#[cfg(not(feature = "testkit"))]
#[inline(always)]
fn hook(_faults: &Faults, _call: &'static str) -> heed::Result<()> {
    Ok(())
}

/// A write transaction, through the fault hook.
fn write_txn<'e>(env: &'e Env, faults: &Faults) -> heed::Result<RwTxn<'e>> {
    hook(faults, "write_txn")?;
    env.write_txn()
}

/// A read transaction, through the fault hook.
fn read_txn<'e>(env: &'e Env, faults: &Faults) -> heed::Result<RoTxn<'e, WithTls>> {
    hook(faults, "read_txn")?;
    env.read_txn()
}

/// Syncs LMDB makes per durable commit: the data file's `fdatasync`, then the meta page
/// written through a descriptor opened with `O_DSYNC` (`mdb_txn_commit` in `mdb.c`).
const SYNCS_PER_COMMIT: u64 = 2;

/// Commits a write transaction through the fault hook and records it in `account`: its
/// syncs, and the bytes LMDB wrote — this thread's `wchar` across the commit (only the
/// commit runs on this thread meanwhile), or where Linux's per-thread counters are
/// missing, the growth of the data file (a lower bound).
fn commit(txn: RwTxn<'_>, faults: &Faults, account: &WriteAccount, dir: &Path) -> heed::Result<()> {
    hook(faults, "commit")?;
    let before = Written::now(dir);
    let done = txn.commit();
    account.record_cache_commit(Written::now(dir).since(&before), SYNCS_PER_COMMIT);
    done
}

/// What this thread has written, or the data file's size where that is not known.
enum Written {
    Thread(IoCounters),
    FileSize(u64),
}

impl Written {
    fn now(dir: &Path) -> Self {
        match IoCounters::this_thread() {
            Some(io) => Written::Thread(io),
            None => {
                Written::FileSize(std::fs::metadata(dir.join("data.mdb")).map_or(0, |m| m.len()))
            }
        }
    }

    fn since(&self, earlier: &Written) -> u64 {
        match (self, earlier) {
            (Written::Thread(a), Written::Thread(b)) => a.since(b).wchar,
            (Written::FileSize(a), Written::FileSize(b)) => a.saturating_sub(*b),
            _ => 0,
        }
    }
}

pub(crate) struct Cache {
    env: Option<(Env, Database<'static, Bytes, Bytes>)>,
    faults: Faults,
    path: PathBuf,
    map_size: u64,
    pub counters: CacheCounters,
    open_note: Option<String>,
    account: std::sync::Arc<WriteAccount>,
}

/// Opens the projection cache of the store behind `shared` in `path` (`_next_seq`, the
/// log's next sequence, is for checking the cache against the log).
pub(crate) fn open_for(
    shared: &std::sync::Arc<crate::store::Shared>,
    path: PathBuf,
    options: &crate::store::OpenOptions,
    _next_seq: u64,
) -> Cache {
    #[cfg(feature = "testkit")]
    let faults = options.cache_faults.clone();
    #[cfg(not(feature = "testkit"))]
    let faults = {
        let _ = options;
    };
    let map_size = shared.config().cache_map_size_bytes;
    Cache::open(
        path,
        shared.store_id,
        map_size,
        faults,
        shared.account.clone(),
    )
}

fn open_env(
    path: &Path,
    map_size: u64,
    faults: &Faults,
    account: &WriteAccount,
) -> heed::Result<(Env, Database<'static, Bytes, Bytes>)> {
    hook(faults, "env open")?;
    let before = Written::now(path);
    // SAFETY: the cache directory belongs to this store, which holds the data directory's
    // lock, so no other batpak process opens it; LMDB's own lock file guards readers.
    let env = unsafe {
        EnvOpenOptions::new()
            .map_size(map_size as usize)
            .max_dbs(1)
            .open(path)?
    };
    let wtxn = write_txn(&env, faults)?;
    hook(faults, "create_database")?;
    let created = env.create_databases_and_commit(wtxn, |opener, wtxn| {
        opener
            .create_database(wtxn, None)
            .map(CommitOrAbort::<_, ()>::Commit)
    });
    // Creating the file and `create_databases_and_commit` (one durable commit inside heed)
    // are counted together.
    account.record_cache_commit(Written::now(path).since(&before), SYNCS_PER_COMMIT);
    Ok((env, created?.unwrap_commit()))
}

/// What an offline check of a store's cache found.
#[derive(Debug, Default)]
pub(crate) struct CacheCheck {
    /// Values checked.
    pub values: u64,
    /// (key as text, what is wrong).
    pub problems: Vec<(String, String)>,
    /// Why the check did not run, when it did not.
    pub skipped: Option<String>,
}

/// Checks the cache in `path` without writing: it belongs to the store `store_id`, every
/// value's checksum holds, and no value claims to have folded events past `last_seq`.
pub(crate) fn check(path: &Path, store_id: u64, last_seq: u64) -> CacheCheck {
    let mut out = CacheCheck::default();
    if !path.join("data.mdb").exists() {
        out.skipped = Some("no projection cache".into());
        return out;
    }
    // SAFETY: the environment is opened read-only; LMDB's lock file coordinates with a
    // process that writes it, and nothing in this process has it open (if something
    // does, heed refuses and the check is skipped).
    let env = match unsafe {
        EnvOpenOptions::new()
            .max_dbs(1)
            .flags(heed::EnvFlags::READ_ONLY)
            .open(path)
    } {
        Ok(env) => env,
        Err(e) => {
            out.skipped = Some(format!("cannot open {}: {e}", path.display()));
            return out;
        }
    };
    let checked = env.read_txn().and_then(|r| {
        let db = env
            .open_databases_and_commit(r, |opener, r| {
                opener
                    .open_database::<Bytes, Bytes>(r, None)
                    .map(CommitOrAbort::<_, ()>::Commit)
            })?
            .unwrap_commit();
        let Some(db) = db else {
            return Ok(());
        };
        let r = env.read_txn()?;
        for item in db.iter(&r)? {
            let (k, v) = item?;
            check_value(&mut out, store_id, last_seq, k, v);
        }
        Ok(())
    });
    if let Err(e) = checked {
        out.problems
            .push(("(environment)".into(), format!("does not read: {e}")));
    }
    out
}

fn check_value(out: &mut CacheCheck, store_id: u64, last_seq: u64, k: &[u8], v: &[u8]) {
    let key = String::from_utf8_lossy(k).replace('\0', "/");
    if k == META_KEY {
        if v != meta_value(store_id).as_slice() {
            out.problems.push((
                key,
                "belongs to another store (it is cleared on open)".into(),
            ));
        }
        return;
    }
    out.values += 1;
    let version = v
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    match version.and_then(|ver| decode_value(v, ver)) {
        None => out.problems.push((
            key,
            "checksum mismatch (the value is recomputed on next use)".into(),
        )),
        Some(c) if c.last_seq > last_seq => out.problems.push((
            key,
            format!(
                "folds events up to sequence {} but the log ends at {last_seq}",
                c.last_seq
            ),
        )),
        Some(_) => {}
    }
}

fn meta_value(store_id: u64) -> Vec<u8> {
    let mut v = META_MAGIC.to_vec();
    v.extend_from_slice(&store_id.to_le_bytes());
    v
}

impl Cache {
    /// Opens (or creates) the cache of the store `store_id` in `path`.
    pub fn open(
        path: PathBuf,
        store_id: u64,
        map_size: u64,
        faults: Faults,
        account: std::sync::Arc<WriteAccount>,
    ) -> Self {
        let mut cache = Self {
            env: None,
            faults,
            path,
            map_size,
            counters: CacheCounters::default(),
            open_note: None,
            account,
        };
        match cache.try_open(store_id) {
            Ok(()) => {}
            Err(first) => {
                // A damaged or incompatible environment: it is disposable, start again.
                let _ = std::fs::remove_dir_all(&cache.path);
                cache.open_note = Some(format!(
                    "{} did not open ({first}); recreated",
                    cache.path.display()
                ));
                if let Err(e) = cache.try_open(store_id) {
                    cache.open_note = Some(format!(
                        "{} unusable ({e}); projections run uncached",
                        cache.path.display()
                    ));
                }
            }
        }
        cache
    }

    fn try_open(&mut self, store_id: u64) -> heed::Result<()> {
        std::fs::create_dir_all(&self.path)?;
        let f = &self.faults;
        let (env, db) = open_env(&self.path, self.map_size, f, &self.account)?;
        let mut wtxn = write_txn(&env, f)?;
        hook(f, "get")?;
        let meta = db.get(&wtxn, META_KEY)?.map(<[u8]>::to_vec);
        if meta.as_deref() != Some(&meta_value(store_id)[..]) {
            if meta.is_some() {
                self.open_note = Some(format!(
                    "{} belonged to another store; cleared",
                    self.path.display()
                ));
            }
            hook(f, "clear")?;
            db.clear(&mut wtxn)?;
            hook(f, "put")?;
            db.put(&mut wtxn, META_KEY, &meta_value(store_id))?;
        }
        commit(wtxn, f, &self.account, &self.path)?;
        self.env = Some((env, db));
        Ok(())
    }

    fn key(name: &str, entity: &str) -> Vec<u8> {
        let mut k = Vec::with_capacity(name.len() + entity.len() + 1);
        k.extend_from_slice(name.as_bytes());
        k.push(0);
        k.extend_from_slice(entity.as_bytes());
        k
    }

    fn checksum(version: u32, last_seq: u64, state: &[u8]) -> u32 {
        let mut c = crc32c::crc32c(&version.to_le_bytes());
        c = crc32c::crc32c_append(c, &last_seq.to_le_bytes());
        mask(crc32c::crc32c_append(c, state))
    }

    /// The cached state of (`name`, `entity`) if present, intact and of `version`.
    pub fn get(&self, name: &str, version: u32, entity: &str) -> Option<Cached> {
        let (env, db) = self.env.as_ref()?;
        let rtxn = read_txn(env, &self.faults).ok()?;
        hook(&self.faults, "get").ok()?;
        let raw = db.get(&rtxn, &Self::key(name, entity)).ok()??;
        let decoded = decode_value(raw, version);
        if decoded.is_none() {
            self.counters.rebuilt_values.fetch_add(1, Ordering::Relaxed);
        }
        decoded
    }

    /// Stores a state; a full map or a failing cache is counted as a fallback.
    pub fn put(&self, name: &str, version: u32, entity: &str, last_seq: u64, state: &[u8]) {
        let Some((env, db)) = self.env.as_ref() else {
            self.counters.fallbacks.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let mut v = Vec::with_capacity(16 + state.len());
        v.extend_from_slice(&version.to_le_bytes());
        v.extend_from_slice(&last_seq.to_le_bytes());
        v.extend_from_slice(&Self::checksum(version, last_seq, state).to_le_bytes());
        v.extend_from_slice(state);
        let f = &self.faults;
        let stored = write_txn(env, f).and_then(|mut w| {
            hook(f, "put")?;
            db.put(&mut w, &Self::key(name, entity), &v)?;
            commit(w, f, &self.account, &self.path)
        });
        if stored.is_err() {
            self.counters.fallbacks.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Removes every cached state of the named entities (of any projection); when that
    /// fails, every cached state. An error means stale states may remain: the caller must
    /// not remove the entities' events while this cache can serve them.
    pub fn forget_entities(
        &self,
        entities: &std::collections::HashSet<String>,
    ) -> Result<(), String> {
        let Some((env, db)) = self.env.as_ref() else {
            return Ok(());
        };
        let f = &self.faults;
        let removed = self.doomed(env, db, entities).and_then(|doomed| {
            let mut w = write_txn(env, f)?;
            for k in &doomed {
                hook(f, "delete")?;
                db.delete(&mut w, k)?;
            }
            commit(w, f, &self.account, &self.path)
        });
        let Err(first) = removed else {
            return Ok(());
        };
        // Stale values must not survive: without a way to remove them, drop them all.
        write_txn(env, f)
            .and_then(|mut w| {
                hook(f, "clear")?;
                db.clear(&mut w)?;
                commit(w, f, &self.account, &self.path)
            })
            .map_err(|e| {
                format!(
                    "the projection cache {} could not drop the states of the entities ({first}) \
                     nor clear them ({e})",
                    self.path.display()
                )
            })
    }

    /// Keys of the cached states of `entities`.
    fn doomed(
        &self,
        env: &Env,
        db: &Database<'static, Bytes, Bytes>,
        entities: &std::collections::HashSet<String>,
    ) -> heed::Result<Vec<Vec<u8>>> {
        let f = &self.faults;
        let r = read_txn(env, f)?;
        hook(f, "iter")?;
        let mut keys = Vec::new();
        for item in db.iter(&r)? {
            let (k, _) = item?;
            let named = k.iter().position(|&b| b == 0).is_some_and(|z| {
                std::str::from_utf8(&k[z + 1..]).is_ok_and(|e| entities.contains(e))
            });
            if named {
                keys.push(k.to_vec());
            }
        }
        Ok(keys)
    }

    /// The cache's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Counters and sizes.
    pub fn stats(&self) -> CacheStats {
        let c = &self.counters;
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (enabled, entries, used) = match &self.env {
            Some((env, db)) => {
                let entries = read_txn(env, &self.faults)
                    .ok()
                    .and_then(|r| db.len(&r).ok())
                    .unwrap_or(0);
                let info = env.info();
                (
                    true,
                    entries.saturating_sub(1),
                    (info.last_page_number as u64 + 1) * 4096,
                )
            }
            None => (false, 0, 0),
        };
        CacheStats {
            enabled,
            entries,
            used_bytes: used,
            map_size_bytes: self.map_size,
            hits: ld(&c.hits),
            misses: ld(&c.misses),
            fallbacks: ld(&c.fallbacks),
            rebuilt_values: ld(&c.rebuilt_values),
            open_note: self.open_note.clone(),
        }
    }

    /// Closes the environment and waits until LMDB released it, so the same directory can
    /// be opened again in this process.
    pub fn close(&mut self) {
        if let Some((env, _)) = self.env.take() {
            env.prepare_for_closing().wait();
        }
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        self.close();
    }
}

fn decode_value(raw: &[u8], version: u32) -> Option<Cached> {
    let head = raw.get(..16)?;
    let v = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let mut s = [0u8; 8];
    s.copy_from_slice(&head[4..12]);
    let last_seq = u64::from_le_bytes(s);
    let crc = u32::from_le_bytes([head[12], head[13], head[14], head[15]]);
    let state = &raw[16..];
    (v == version && Cache::checksum(v, last_seq, state) == crc).then(|| Cached {
        last_seq,
        state: state.to_vec(),
    })
}
