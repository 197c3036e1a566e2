//! The projection cache's LMDB layer: the environment, the transactions through the fault
//! hook, the value and meta formats, and the offline check.
//!
//! Key: projection name, a zero byte, the entity. Value:
//! `version:u32le last_seq:u64le crc:u32le state` where `crc` is the masked CRC32C of the
//! version, the sequence and the state (MessagePack). The meta entry (`META_KEY`) holds
//! `"BPKCACH2" store_id:u64le high_water:u64le`: the store the cache belongs to, and the
//! highest sequence any value written so far has folded. A cache whose high water lies
//! past the log's end folded events the log no longer has, and is cleared on open.
//!
//! The environment runs with `MDB_NOMETASYNC`: a commit writes its dirty pages, syncs the
//! data file (`fdatasync`), then writes the meta page without syncing it — one sync per
//! commit (`mdb_txn_commit` in LMDB's `mdb.c`; by default the meta page goes through an
//! `O_DSYNC` descriptor, a second sync). LMDB documents that this keeps the database's
//! integrity and gives up only the durability of the last commit at a system crash: the
//! next commit's sync makes it durable. The cache is disposable, so that commit is only
//! folding work to do again.
//!
//! LMDB has no page checksums and maps the file: a page it reads past the end of the file
//! faults the process (SIGBUS). So the open refuses a file shorter than the pages its meta
//! counts, then extends it (sparsely, no bytes written) to the whole map, so that a
//! damaged page can make LMDB read zeros but never past the file; and every key and value
//! heed hands back is checked to lie inside the map before it is copied.

use std::path::Path;

use heed::types::Bytes;
use heed::{CommitOrAbort, Database, Env, EnvOpenOptions, RoTxn, RwTxn, WithTls};

use crate::codec::frame::mask;
use crate::fs::account::WriteAccount;
use crate::process::IoCounters;

pub(crate) const META_KEY: &[u8] = b"\0batpak-meta";
const META_MAGIC: &[u8; 8] = b"BPKCACH2";
/// Syncs LMDB makes per durable commit (see the module documentation).
pub(crate) const SYNCS_PER_COMMIT: u64 = 1;

pub(crate) type Db = Database<'static, Bytes, Bytes>;

/// Heed calls that fail on purpose (feature `testkit`); nothing otherwise.
#[cfg(feature = "testkit")]
pub(crate) type Faults = Option<std::sync::Arc<super::faults::CacheFaults>>;
/// Heed calls that fail on purpose (feature `testkit`); nothing otherwise.
#[cfg(not(feature = "testkit"))]
pub(crate) type Faults = NoFaults;

/// No heed call fails on purpose (without the `testkit` feature).
#[cfg(not(feature = "testkit"))]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NoFaults;

/// Passes before every heed call of the cache: fails it when a test asks.
#[cfg(feature = "testkit")]
pub(crate) fn hook(faults: &Faults, call: &'static str) -> heed::Result<()> {
    faults.as_ref().map_or(Ok(()), |f| f.check(call))
}

/// Passes before every heed call of the cache: fails it when a test asks.
#[cfg(not(feature = "testkit"))]
#[inline(always)]
pub(crate) fn hook(_faults: &Faults, _call: &'static str) -> heed::Result<()> {
    Ok(())
}

/// A write transaction, through the fault hook.
pub(crate) fn write_txn<'e>(env: &'e Env, faults: &Faults) -> heed::Result<RwTxn<'e>> {
    hook(faults, "write_txn")?;
    env.write_txn()
}

/// A read transaction, through the fault hook.
pub(crate) fn read_txn<'e>(env: &'e Env, faults: &Faults) -> heed::Result<RoTxn<'e, WithTls>> {
    hook(faults, "read_txn")?;
    env.read_txn()
}

/// Commits a write transaction through the fault hook and records it in `account`: its
/// syncs, and the bytes LMDB wrote — this thread's `wchar` across the commit (only the
/// commit runs on this thread meanwhile), or where Linux's per-thread counters are
/// missing, the growth of the data file (a lower bound).
pub(crate) fn commit(
    txn: RwTxn<'_>,
    faults: &Faults,
    account: &WriteAccount,
    dir: &Path,
) -> heed::Result<()> {
    hook(faults, "commit")?;
    let before = Written::now(dir);
    let done = txn.commit();
    let after = Written::now(dir);
    // LMDB skips a commit that changed nothing: no write and no sync.
    if !after.nothing_since(&before) {
        account.record_cache_commit(after.since(&before), SYNCS_PER_COMMIT);
    }
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

    /// `true` when this thread is known to have written nothing since `earlier` (file
    /// growth says nothing of rewrites, so it never knows).
    fn nothing_since(&self, earlier: &Written) -> bool {
        matches!(self, Written::Thread(_)) && self.since(earlier) == 0
    }

    fn since(&self, earlier: &Written) -> u64 {
        match (self, earlier) {
            (Written::Thread(a), Written::Thread(b)) => a.since(b).wchar,
            (Written::FileSize(a), Written::FileSize(b)) => a.saturating_sub(*b),
            _ => 0,
        }
    }
}

/// Opens (creating) the environment in `path` and its one database.
pub(crate) fn open_env(
    path: &Path,
    map_size: u64,
    faults: &Faults,
    account: &WriteAccount,
) -> heed::Result<(Env, Db)> {
    hook(faults, "env open")?;
    let before = Written::now(path);
    // SAFETY: the cache directory belongs to this store, which holds the data directory's
    // lock, so no other batpak process opens it; LMDB's own lock file guards readers.
    let env = unsafe {
        let mut options = EnvOpenOptions::new();
        options.map_size(map_size as usize).max_dbs(1);
        // NO_META_SYNC keeps LMDB's integrity and gives up only the durability of the last
        // commit at a system crash (see the module documentation).
        options.flags(heed::EnvFlags::NO_META_SYNC);
        options.open(path)?
    };
    covers_its_pages(&env)?;
    hook(faults, "extend")?;
    extend_to_map(&env, map_size)?;
    let wtxn = write_txn(&env, faults)?;
    hook(faults, "create_database")?;
    let created = env.create_databases_and_commit(wtxn, |opener, wtxn| {
        opener
            .create_database(wtxn, None)
            .map(CommitOrAbort::<_, ()>::Commit)
    });
    // Creating the file writes its two meta pages, unsynced; opening the database changes
    // no page, so its commit inside heed writes and syncs nothing.
    account.record_cache_bytes(Written::now(path).since(&before));
    Ok((env, created?.unwrap_commit()))
}

/// Refuses a data file shorter than the pages its meta page says it holds (cut by
/// something outside LMDB): LMDB maps the file and would fault reading past its end.
fn covers_its_pages(env: &Env) -> heed::Result<()> {
    let pages = env.info().last_page_number as u64 + 1;
    let needed = pages * u64::from(env.unnamed_database_stat().page_size);
    let len = env.real_disk_size()?;
    if len >= needed {
        return Ok(());
    }
    Err(heed::Error::Io(std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        format!("data.mdb holds {len} bytes but its meta page counts {needed}"),
    )))
}

/// Extends the data file to `map_size` bytes without writing any (a sparse extension), so
/// a read anywhere in the map lands inside the file. No transaction is running yet.
fn extend_to_map(env: &Env, map_size: u64) -> heed::Result<()> {
    let file = env.try_clone_inner_file()?;
    if file.metadata()?.len() < map_size {
        file.set_len(map_size)?;
    }
    Ok(())
}

/// Where an environment's map lies, to check slices heed returns before reading them.
/// LMDB does not tell (its `me_mapaddr` is set only for fixed maps), so the map is looked
/// up in `/proc/self/maps` by the data file's inode; where that is not possible every
/// slice is taken as it comes, as LMDB itself would.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MapBounds(pub(crate) Option<(usize, usize)>);

impl MapBounds {
    /// The bounds of `env`'s map of the data file in `dir`, no further than `file_len`
    /// bytes (reads past the end of the file fault).
    pub fn of(env: &Env, dir: &Path, file_len: u64) -> Self {
        use std::os::unix::fs::MetadataExt;
        let ino = std::fs::metadata(dir.join("data.mdb")).map(|m| m.ino());
        let maps = std::fs::read_to_string("/proc/self/maps");
        let found = match (ino, maps) {
            (Ok(ino), Ok(maps)) => find_map(&maps, ino),
            _ => None,
        };
        let cap = env
            .info()
            .map_size
            .min(usize::try_from(file_len).unwrap_or(usize::MAX));
        Self(found.map(|(start, end)| (start, end.min(start.saturating_add(cap)))))
    }

    /// `true` when all of `s` lies in the map (a damaged page can make LMDB hand back a
    /// length reaching past it).
    pub fn holds(&self, s: &[u8]) -> bool {
        let Some((start, end)) = self.0 else {
            return true;
        };
        let p = s.as_ptr() as usize;
        p >= start && p.checked_add(s.len()).is_some_and(|e| e <= end)
    }
}

/// The address range of the mapping of inode `ino` named `.../data.mdb` in the text of
/// `/proc/self/maps` (`start-end perms offset dev inode path`).
fn find_map(maps: &str, ino: u64) -> Option<(usize, usize)> {
    maps.lines().find_map(|line| {
        let mut f = line.split_whitespace();
        let range = f.next()?;
        let inode = f.nth(3)?.parse::<u64>().ok()?;
        let path = f.next()?;
        if inode != ino || !path.ends_with("data.mdb") {
            return None;
        }
        let (a, b) = range.split_once('-')?;
        let start = usize::from_str_radix(a, 16).ok()?;
        let end = usize::from_str_radix(b, 16).ok()?;
        Some((start, end))
    })
}

/// The meta value of the store `store_id` with values folded up to `high_water`.
pub(crate) fn meta_value(store_id: u64, high_water: u64) -> Vec<u8> {
    let mut v = META_MAGIC.to_vec();
    v.extend_from_slice(&store_id.to_le_bytes());
    v.extend_from_slice(&high_water.to_le_bytes());
    v
}

/// (store id, high water) of a meta value of this format.
pub(crate) fn parse_meta(v: &[u8]) -> Option<(u64, u64)> {
    let rest = v.strip_prefix(META_MAGIC)?;
    let id = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
    let high = u64::from_le_bytes(rest.get(8..16)?.try_into().ok()?);
    (rest.len() == 16).then_some((id, high))
}

/// The key of (`name`, `entity`).
pub(crate) fn key(name: &str, entity: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + entity.len() + 1);
    k.extend_from_slice(name.as_bytes());
    k.push(0);
    k.extend_from_slice(entity.as_bytes());
    k
}

/// The entity named by a key, when it is one of a state.
pub(crate) fn entity_of(key: &[u8]) -> Option<&str> {
    let z = key.iter().position(|&b| b == 0)?;
    std::str::from_utf8(&key[z + 1..]).ok()
}

fn checksum(version: u32, last_seq: u64, state: &[u8]) -> u32 {
    let mut c = crc32c::crc32c(&version.to_le_bytes());
    c = crc32c::crc32c_append(c, &last_seq.to_le_bytes());
    mask(crc32c::crc32c_append(c, state))
}

/// The stored form of a state.
pub(crate) fn encode_value(version: u32, last_seq: u64, state: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + state.len());
    v.extend_from_slice(&version.to_le_bytes());
    v.extend_from_slice(&last_seq.to_le_bytes());
    v.extend_from_slice(&checksum(version, last_seq, state).to_le_bytes());
    v.extend_from_slice(state);
    v
}

/// A decoded cache value.
pub(crate) struct Cached {
    pub last_seq: u64,
    pub state: Vec<u8>,
}

/// The value decoded, if it is intact and of `version`.
pub(crate) fn decode_value(raw: &[u8], version: u32) -> Option<Cached> {
    let head = raw.get(..16)?;
    let v = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let mut s = [0u8; 8];
    s.copy_from_slice(&head[4..12]);
    let last_seq = u64::from_le_bytes(s);
    let crc = u32::from_le_bytes([head[12], head[13], head[14], head[15]]);
    let state = &raw[16..];
    (v == version && checksum(v, last_seq, state) == crc).then(|| Cached {
        last_seq,
        state: state.to_vec(),
    })
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
    }
    .and_then(|env| covers_its_pages(&env).map(|()| env))
    {
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
        let bounds = MapBounds::of(&env, path, env.real_disk_size()?);
        let r = env.read_txn()?;
        for item in db.iter(&r)? {
            let (k, v) = item?;
            if !(bounds.holds(k) && bounds.holds(v)) {
                out.problems.push((
                    "(environment)".into(),
                    "a damaged page points past the end of the file".into(),
                ));
                break;
            }
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
        check_meta(out, store_id, last_seq, key, v);
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

fn check_meta(out: &mut CacheCheck, store_id: u64, last_seq: u64, key: String, v: &[u8]) {
    match parse_meta(v) {
        Some((id, _)) if id != store_id => out.problems.push((
            key,
            "belongs to another store (it is cleared on open)".into(),
        )),
        Some((_, high)) if high > last_seq => out.problems.push((
            key,
            format!(
                "records states folded up to sequence {high} but the log ends at {last_seq} \
                 (it is cleared on open)"
            ),
        )),
        Some(_) => {}
        // The format before the high water: cleared on open, not damage.
        None if v.starts_with(b"BPKCACHE") => {}
        None => out
            .problems
            .push((key, "an unknown format (it is cleared on open)".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_files_mapping_is_found_by_inode_and_name() {
        let maps = "7f00-7f80 r--s 00000000 08:01 42 /d/cache/data.mdb\n\
                    7f80-7fff r--s 00000000 08:01 43 /e/cache/data.mdb\n\
                    8000-9000 r-xp 00000000 08:01 43 /usr/lib/libc.so\n";
        assert_eq!(find_map(maps, 43), Some((0x7f80, 0x7fff)));
        assert_eq!(find_map(maps, 44), None);
        let b = MapBounds(Some((0x1000, 0x2000)));
        let inside = [0u8; 16];
        assert!(
            MapBounds(None).holds(&inside),
            "nothing known: taken as it comes"
        );
        assert!(!b.holds(&inside), "a slice elsewhere");
        let at = inside.as_ptr() as usize;
        let around = MapBounds(Some((at, at + 16)));
        assert!(around.holds(&inside));
        assert!(
            !MapBounds(Some((at, at + 15))).holds(&inside),
            "one byte past"
        );
    }

    #[test]
    fn a_meta_value_reads_back_and_other_formats_do_not() {
        let v = meta_value(0xabcd, 77);
        assert_eq!(parse_meta(&v), Some((0xabcd, 77)));
        assert_eq!(parse_meta(&v[..v.len() - 1]), None);
        let mut old = b"BPKCACHE".to_vec();
        old.extend_from_slice(&0xabcdu64.to_le_bytes());
        assert_eq!(parse_meta(&old), None);
    }

    #[test]
    fn a_value_with_one_flipped_bit_does_not_decode() {
        let mut v = encode_value(3, 41, b"state");
        assert!(decode_value(&v, 3).is_some_and(|c| c.last_seq == 41 && c.state == b"state"));
        assert!(decode_value(&v, 4).is_none(), "another version");
        v[18] ^= 1;
        assert!(decode_value(&v, 3).is_none());
    }
}
