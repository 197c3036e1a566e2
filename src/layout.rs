//! Every name in a data directory, in one place (a leaf: it imports nothing of the crate).
//!
//! | name | what |
//! |---|---|
//! | `batpak.lock` | the writer's lock ([`LOCK`]) |
//! | `store.id` | the store's identity, written last: the completeness marker ([`IDENTITY`]) |
//! | `index.ckpt` | the index checkpoint of a clean close ([`CHECKPOINT`]) |
//! | `seg-NNNNNNNNNN.bpk` | segment `N` ([`segment_name`]) |
//! | `*.tmp` | a file being replaced atomically ([`TMP`]) |
//! | `compact.manifest`, `*.compact` | a compaction in progress ([`COMPACT_MANIFEST`], [`COMPACT_STAGED`]) |
//! | `cache/` | the projection cache, rebuildable ([`CACHE_DIR`]) |
//! | `salvaged/` | what a salvage moved aside ([`SALVAGED_DIR`]) |
//! | `.batpak-workload` | reserved: a tool's mark for synthetic data it may wipe ([`TOOL_MARK`]) |

/// The lock file a writer holds.
pub const LOCK: &str = "batpak.lock";
/// The identity file, written once the directory holds a whole store.
pub const IDENTITY: &str = "store.id";
/// The index checkpoint.
pub const CHECKPOINT: &str = "index.ckpt";
/// The projection cache's directory.
pub const CACHE_DIR: &str = "cache";
/// Where a salvage moves what it cannot keep.
pub const SALVAGED_DIR: &str = "salvaged";
/// The manifest of a compaction in progress.
pub const COMPACT_MANIFEST: &str = "compact.manifest";
/// The suffix of a segment a compaction has staged.
pub const COMPACT_STAGED: &str = ".compact";
/// The suffix of a file written aside and renamed into place.
pub const TMP: &str = ".tmp";
/// Reserved for tools: the mark of a directory of synthetic data a tool may wipe. The
/// store never writes it but treats it as its own (never a foreign file, never a link).
pub const TOOL_MARK: &str = ".batpak-workload";

const SEGMENT_PREFIX: &str = "seg-";
const SEGMENT_SUFFIX: &str = ".bpk";

/// The file name of segment `no`.
pub fn segment_name(no: u32) -> String {
    format!("{SEGMENT_PREFIX}{no:010}{SEGMENT_SUFFIX}")
}

/// The segment number in a segment file name.
pub fn parse_segment_name(name: &str) -> Option<u32> {
    let digits = name
        .strip_prefix(SEGMENT_PREFIX)?
        .strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Shaped like a segment (`seg-*.bpk`), whatever its number.
pub fn is_segment_like(name: &str) -> bool {
    name.starts_with(SEGMENT_PREFIX) && name.ends_with(SEGMENT_SUFFIX)
}

/// A segment or a compaction's staged copy of one: what the wear accounting counts as log.
pub fn is_segment_or_staged(name: &str) -> bool {
    name.starts_with(SEGMENT_PREFIX)
        && (name.ends_with(SEGMENT_SUFFIX)
            || name
                .strip_suffix(COMPACT_STAGED)
                .is_some_and(|n| n.ends_with(SEGMENT_SUFFIX)))
}

/// The checkpoint or the checkpoint being written.
pub fn is_checkpoint(name: &str) -> bool {
    name == CHECKPOINT || is_tmp_of(name, CHECKPOINT)
}

fn is_tmp_of(name: &str, file: &str) -> bool {
    name.strip_suffix(TMP) == Some(file)
}

/// The files and directories a store keeps in its directory (besides a compaction in
/// progress): what a directory of nothing but store data holds.
pub fn is_store_file(name: &str) -> bool {
    [LOCK, IDENTITY, CHECKPOINT, CACHE_DIR, SALVAGED_DIR].contains(&name)
        || is_tmp_of(name, IDENTITY)
        || is_tmp_of(name, CHECKPOINT)
        || is_segment_like(name)
}

/// A name the store may make or replace in its directory, or reach through a link to
/// something elsewhere: its own files, any segment-like or temporary name, the tool mark.
pub fn is_store_name(name: &str) -> bool {
    is_store_file(name)
        || name.starts_with(SEGMENT_PREFIX)
        || name.ends_with(TMP)
        || name == COMPACT_MANIFEST
        || name.starts_with(TOOL_MARK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_name_parses_back_to_its_number_and_nothing_else_does() {
        assert_eq!(segment_name(42), "seg-0000000042.bpk");
        assert_eq!(parse_segment_name(&segment_name(42)), Some(42));
        assert_eq!(parse_segment_name("seg-42.bpk"), None);
        assert_eq!(parse_segment_name("seg-00000000x2.bpk"), None);
    }

    #[test]
    fn the_store_owns_its_files_and_the_tool_mark_but_not_an_operators_notes() {
        for own in [
            "batpak.lock",
            "store.id",
            "index.ckpt.tmp",
            "cache",
            "seg-0000000001.bpk",
        ] {
            assert!(is_store_file(own), "{own}");
        }
        assert!(is_store_name(".batpak-workload"));
        assert!(is_store_name("compact.manifest"));
        assert!(!is_store_name("notes.txt"));
        assert!(is_segment_or_staged("seg-0000000001.bpk.compact"));
        assert!(is_checkpoint("index.ckpt.tmp"));
    }
}
