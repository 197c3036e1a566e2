//! The store identity file (`store.id`): a header holding the store id made at creation.
//! Every segment and checkpoint carries the same id, so files from another store are refused.

use std::hash::{BuildHasher, Hasher};
use std::path::Path;

use crate::codec::header::{FileHeader, FileKind, HEADER_LEN};
use crate::error::OpenError;
use crate::fs::FileSystem;

use super::segment;

/// File name of the identity file.
pub const FILE_NAME: &str = crate::layout::IDENTITY;

/// The store id of `dir`: read from `store.id`; made new (and written) for a read-write
/// open of a directory without segments. Segment files without `store.id` are not a store:
/// the identity file is written before the first segment and copied last by a snapshot, so
/// its absence means an interrupted copy holding who knows how many of the segments. Such a
/// directory is refused unless `adopt` (a salvage open) takes the id from its first segment.
pub(crate) fn load_or_create(
    fs: &dyn FileSystem,
    dir: &Path,
    read_only: bool,
    adopt: bool,
) -> Result<u64, OpenError> {
    if let Some(id) = read(fs, dir)? {
        return Ok(id);
    }
    let path = dir.join(FILE_NAME);
    let segments = if fs.exists(dir) {
        segment::list(fs, dir)?.len()
    } else {
        0
    };
    if segments > 0 && !adopt {
        return Err(missing(&path, segments));
    }
    let existing = first_segment_id(fs, dir)?;
    if read_only {
        return existing.ok_or_else(|| OpenError::BadHeader {
            path: path.clone(),
            reason: "no store here: the identity file and every segment are missing".into(),
        });
    }
    let id = existing.unwrap_or_else(new_id);
    write(fs, dir, id).map_err(|source| OpenError::Io {
        op: "write",
        path,
        source,
    })?;
    Ok(id)
}

/// The error for segment files found without the identity file.
pub(crate) fn missing(path: &Path, segments: usize) -> OpenError {
    OpenError::Lost {
        path: path.to_path_buf(),
        what: format!(
            "the identity file is missing but {segments} segment file(s) are here; a store is \
             complete only once its identity file exists (a snapshot or copy writes it last), \
             so this looks like an interrupted copy that may hold only some of the segments"
        ),
    }
}

/// The store id in `dir/store.id`, `None` when the file does not exist.
pub(crate) fn read(fs: &dyn FileSystem, dir: &Path) -> Result<Option<u64>, OpenError> {
    let path = dir.join(FILE_NAME);
    if !fs.exists(&path) {
        return Ok(None);
    }
    let view = fs.map(&path).map_err(|source| OpenError::Io {
        op: "read",
        path: path.clone(),
        source,
    })?;
    let h = FileHeader::decode(view.bytes(), FileKind::Identity)
        .map_err(|e| segment::header_error(&path, e))?;
    Ok(Some(h.store_id))
}

/// The store id in the header of the first segment of `dir`, if it has one.
pub(crate) fn first_segment_id(fs: &dyn FileSystem, dir: &Path) -> Result<Option<u64>, OpenError> {
    if !fs.exists(dir) {
        return Ok(None);
    }
    let Some(&first) = segment::list(fs, dir)?.first() else {
        return Ok(None);
    };
    let p = segment::path(dir, first);
    let view = fs.map(&p).map_err(|source| OpenError::Io {
        op: "read",
        path: p.clone(),
        source,
    })?;
    if view.bytes().len() < HEADER_LEN {
        return Ok(None);
    }
    let h = FileHeader::decode(view.bytes(), FileKind::Segment)
        .map_err(|e| segment::header_error(&p, e))?;
    Ok(Some(h.store_id))
}

fn write(fs: &dyn FileSystem, dir: &Path, id: u64) -> std::io::Result<()> {
    let header = FileHeader::new(FileKind::Identity, id, 0, 0, 0).encode();
    crate::fs::write_atomically(fs, dir, FILE_NAME, &[&header])
}

/// A fresh random id (std's per-process random hasher keys, mixed with time and pid).
fn new_id() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(crate::config::system_micros());
    h.write_u32(std::process::id());
    h.finish() | 1
}
