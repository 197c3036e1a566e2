//! Errors: one small enum per operation, each naming the path, offset or field involved,
//! and an umbrella [`Error`] they all convert into.

use std::io;
use std::path::PathBuf;

/// A [`StoreConfig`](crate::StoreConfig) value that makes no sense.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A number outside its allowed range.
    #[error("config field `{field}` = {value} is out of range; allowed {min}..={max}")]
    OutOfRange {
        /// The field name, as spelled in `StoreConfig`.
        field: &'static str,
        /// The rejected value.
        value: u64,
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
    },
    /// A value that is wrong for another reason.
    #[error("config field `{field}` is invalid: {reason}")]
    Invalid {
        /// The field name.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

/// Why [`Store::open`](crate::Store::open) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The configuration was rejected.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A file-system call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Another read-write open (this process or another) holds the directory.
    #[error("data directory {dir} is locked by another open store (lock file {lock})")]
    Locked {
        /// The data directory.
        dir: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
    /// A file belongs to another store.
    #[error(
        "{path} belongs to another store (store id {found:016x}, this store is {expected:016x})"
    )]
    ForeignFile {
        /// The refused file.
        path: PathBuf,
        /// This store's id.
        expected: u64,
        /// The id in the file.
        found: u64,
    },
    /// One of the store's files is a symbolic link: batpak never follows links inside its
    /// directory (a link could make it read, lock or replace a file elsewhere).
    #[error("{path} is a symbolic link; batpak does not follow links in its data directory (put the file itself there)")]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// A file was written by a newer format version.
    #[error("{path} has format version {found}; this build reads up to version {supported}")]
    UnsupportedVersion {
        /// The refused file.
        path: PathBuf,
        /// Its version.
        found: u16,
        /// The newest version this build reads.
        supported: u16,
    },
    /// A file header is not a batpak header.
    #[error("{path}: bad file header: {reason}")]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A damaged frame inside data that was synced (not a torn tail).
    #[error("{path} is corrupt at byte offset {offset}: {reason} (open with salvage to keep everything before it)")]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the bad frame.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// Data the store's own records say was there is gone: a missing or shorter segment,
    /// a hole in the numbering or the sequences, segment files without the identity file
    /// written last. The open stops so nothing more is lost or appended after the hole.
    #[error("{path}: {what}; the open stops rather than lose it silently (a salvage open, `batpak-tui salvage DIR`, keeps what is there and moves the rest aside)")]
    Lost {
        /// The missing, shortened or contradicting file.
        path: PathBuf,
        /// What is missing and how the store knows.
        what: String,
    },
    /// The writer thread could not be started.
    #[error("cannot start the writer thread: {0}")]
    Spawn(#[source] io::Error),
}

/// Why an append was not written.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AppendError {
    /// An earlier write or sync failed; the store accepts nothing until reopened.
    #[error("store is poisoned: {0}")]
    Poisoned(String),
    /// The store was closed.
    #[error("store is closed")]
    Closed,
    /// The store was opened read-only.
    #[error("store was opened read-only")]
    ReadOnly,
    /// The optimistic-concurrency check failed.
    #[error("entity `{entity}` is at sequence {actual:?}, expected {expected:?}")]
    Conflict {
        /// The entity.
        entity: String,
        /// The sequence the caller expected (`None` = no events yet).
        expected: Option<u64>,
        /// The entity's actual last sequence.
        actual: Option<u64>,
    },
    /// The named causation event does not exist.
    #[error("causation event {0} does not exist")]
    UnknownCause(String),
    /// The named correlation event does not exist.
    #[error("correlation event {0} does not exist")]
    UnknownCorrelation(String),
    /// The encoded event does not fit in a segment.
    #[error("event of {size} bytes does not fit a segment of segment_max_bytes = {max}")]
    TooLarge {
        /// The frame size.
        size: u64,
        /// The configured segment size.
        max: u64,
    },
    /// A batch with no events.
    #[error("append_batch needs at least one event")]
    EmptyBatch,
    /// The payload could not be encoded.
    #[error("cannot encode payload: {0}")]
    Encode(String),
    /// An entity or scope name is unusable.
    #[error("invalid coordinate: {0}")]
    InvalidCoordinate(String),
    /// One or more policy gates denied the append; nothing was written.
    #[error("denied: {}", .0.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("; "))]
    Denied(Vec<Denial>),
    /// The writer stopped before answering (it panicked and was restarted, or was shut down).
    #[error("the writer stopped before this append was written: {0}")]
    NotWritten(String),
    /// The entity's previous event could not be read to chain the new one to it (a read
    /// failure); nothing was written and the store goes on: the append may be retried.
    #[error("cannot chain to the entity's previous event: {0}; nothing was written")]
    ChainRead(String),
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// A file-system call failed.
    #[error("read {path} at offset {offset}: {source}")]
    Io {
        /// The segment file.
        path: PathBuf,
        /// Byte offset.
        offset: u64,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A frame failed its checksum or could not be decoded.
    #[error("{path} is corrupt at byte offset {offset}: {reason}")]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The payload did not decode into the requested type.
    #[error("payload of event {id} does not decode: {reason}")]
    Decode {
        /// The event id.
        id: String,
        /// The decoder's message.
        reason: String,
    },
    /// A typed read: the payload did not decode into the type, or no upcast leads from
    /// its version to the type's.
    #[error(transparent)]
    Payload(Box<PayloadError>),
    /// The store was closed.
    #[error("store is closed")]
    Closed,
}

/// Why [`Store::sync`](crate::Store::sync) or [`Store::close`](crate::Store::close) failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncError {
    /// The store is poisoned.
    #[error("store is poisoned: {0}")]
    Poisoned(String),
    /// The store was already closed.
    #[error("store is closed")]
    Closed,
    /// [`Store::wait_durable`](crate::Store::wait_durable) was given a sequence the store
    /// has not written.
    #[error("sequence {sequence} is not written yet (the newest written is {written})")]
    NotWritten {
        /// The sequence asked for.
        sequence: u64,
        /// The newest sequence written.
        written: u64,
    },
}

/// Why [`Store::snapshot`](crate::Store::snapshot) failed. Nothing in the source store is
/// changed either way; a failed copy may leave a partial destination behind, which never
/// opens as a store of its own (its identity file is written last).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The destination exists and is not an empty directory.
    #[error("snapshot destination {0} exists and is not empty")]
    DestinationNotEmpty(PathBuf),
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Making the acknowledged events durable first failed.
    #[error("cannot sync before the snapshot: {0}")]
    Sync(#[from] SyncError),
}

/// Why [`Store::compact`](crate::Store::compact) failed. Nothing changed unless the
/// message says the compaction committed (then the next open finishes it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompactError {
    /// Compaction needs the directory lock.
    #[error("compact needs the lock on {0}: this store was opened read-only (another process may hold it)")]
    ReadOnly(PathBuf),
    /// A sealed segment does not read clean: verify it, salvage if needed, then compact.
    #[error(
        "{path} is damaged at byte offset {offset}: {reason}; nothing was compacted (run verify)"
    )]
    Damaged {
        /// The segment.
        path: PathBuf,
        /// Where.
        offset: u64,
        /// What.
        reason: String,
    },
    /// A file operation failed before the commit: nothing changed.
    #[error("{op} {path}: {source}; nothing was compacted")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The projection cache could neither drop the states of the entities losing events
    /// (they would be stale after the compaction) nor be deleted: nothing changed.
    #[error("{0}; nothing was compacted")]
    Cache(String),
    /// The writer could not take the new files into use.
    #[error("{0}")]
    Commit(String),
}

impl CompactError {
    pub(crate) fn io(op: &'static str, path: &std::path::Path, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Any batpak error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// See [`ConfigError`].
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// See [`OpenError`].
    #[error(transparent)]
    Open(#[from] OpenError),
    /// See [`AppendError`].
    #[error(transparent)]
    Append(#[from] AppendError),
    /// See [`ReadError`].
    #[error(transparent)]
    Read(#[from] ReadError),
    /// See [`SyncError`].
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// See [`SnapshotError`].
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// See [`CompactError`].
    #[error(transparent)]
    Compact(#[from] CompactError),
}

/// `Result` with the umbrella [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a gate refused a proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The gate's name.
    pub gate: String,
    /// A short machine-readable code, e.g. `payload_too_large`.
    pub code: String,
    /// A sentence for people.
    pub message: String,
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} denied ({}): {}", self.gate, self.code, self.message)
    }
}

impl Denial {
    /// A denial by `gate` with `code` and `message`.
    pub fn new(gate: &str, code: &str, message: impl Into<String>) -> Self {
        Self {
            gate: gate.to_string(),
            code: code.to_string(),
            message: message.into(),
        }
    }
}

/// Why a typed read of one event failed: which event, of which kind and schema version,
/// read as which type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {id} (entity {entity:?}, kind {kind}, schema version {version}) does not decode as {type_name}: {reason}")]
pub struct PayloadError {
    /// The event id.
    pub id: String,
    /// The event's entity.
    pub entity: String,
    /// The event's kind, as `category.code`.
    pub kind: String,
    /// The schema version the payload was written with.
    pub version: u16,
    /// The type asked for.
    pub type_name: &'static str,
    /// What went wrong.
    pub reason: String,
}
