//! Fault injection and call-site coverage for the simulated file system.
//!
//! [`SimFs::inject`](super::SimFs::inject) makes the Nth call a [`Fault`] applies to fail
//! (and, when persistent, the later ones too). Every call is counted against the engine
//! line that made it (the file-system traits track their callers), so a sweep can report
//! how many distinct call sites it reached and which faults each one saw.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::panic::Location;

/// A file-system method, as the fault model and the coverage report see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Call {
    /// `FsFile::read_at`.
    ReadAt,
    /// `FsFile::write_at`.
    WriteAt,
    /// `FsFile::sync`.
    Sync,
    /// `FsFile::set_len`.
    SetLen,
    /// `FsFile::size`.
    Size,
    /// `FileSystem::create_dir_all`.
    CreateDir,
    /// `FileSystem::list_dir`.
    ListDir,
    /// `FileSystem::open` for reading only.
    OpenRead,
    /// `FileSystem::open` for writing, or creating.
    OpenWrite,
    /// `FileSystem::rename`.
    Rename,
    /// `FileSystem::remove_file`.
    Remove,
    /// `FileSystem::sync_dir`.
    SyncDir,
    /// `FileSystem::map`.
    Map,
    /// `FileSystem::hard_link`.
    HardLink,
    /// `FileSystem::try_lock`.
    Lock,
}

impl Call {
    /// `true` for calls that only read: a fault there must not poison the store.
    pub fn reads_only(self) -> bool {
        matches!(
            self,
            Call::ReadAt | Call::Size | Call::ListDir | Call::OpenRead | Call::Map
        )
    }
}

/// A fault [`SimFs::inject`](super::SimFs::inject) can give a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// `EIO` from any call.
    Io,
    /// `ENOSPC` from a write, truncate, open, create, rename, removal or directory sync.
    NoSpace,
    /// A file sync fails with `EIO` and the writes it should have made durable never reach
    /// the disk, while reads go on showing them (what Linux does to dirty pages after a
    /// failed writeback: the page cache cannot be trusted).
    SyncLosesData,
    /// `EINTR` from a read or a write, which moved nothing. Persistent: every second call.
    Interrupted,
    /// A write that writes only the first half of its bytes (at least one).
    ShortWrite,
    /// A read that returns only the first half of what it could (at least one byte).
    ShortRead,
}

impl Fault {
    /// Every fault.
    pub const ALL: [Fault; 6] = [
        Fault::Io,
        Fault::NoSpace,
        Fault::SyncLosesData,
        Fault::Interrupted,
        Fault::ShortWrite,
        Fault::ShortRead,
    ];

    /// `true` when the call fails; `false` for the ones the engine must resume (EINTR,
    /// short transfers), which must change nothing the store does.
    pub fn fails(self) -> bool {
        matches!(self, Fault::Io | Fault::NoSpace | Fault::SyncLosesData)
    }

    /// `true` when this fault can hit `call`.
    pub fn applies_to(self, call: Call) -> bool {
        match self {
            Fault::Io => true,
            Fault::NoSpace => matches!(
                call,
                Call::WriteAt
                    | Call::SetLen
                    | Call::OpenWrite
                    | Call::CreateDir
                    | Call::Rename
                    | Call::Remove
                    | Call::SyncDir
                    | Call::HardLink
                    | Call::Lock
            ),
            Fault::SyncLosesData => call == Call::Sync,
            Fault::Interrupted => matches!(call, Call::ReadAt | Call::WriteAt),
            Fault::ShortWrite => call == Call::WriteAt,
            Fault::ShortRead => call == Call::ReadAt,
        }
    }
}

/// What an injection does to the call it hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Carry the call out whole.
    Whole,
    /// Move only part of the bytes.
    Short,
}

/// One line of the engine that called the file system, and what it met there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSite {
    /// Source file of the call.
    pub file: &'static str,
    /// Line of the call.
    pub line: u32,
    /// The method called.
    pub call: Call,
    /// How often it was called.
    pub calls: u64,
    /// The faults it was given.
    pub faults: BTreeSet<Fault>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Injection {
    fault: Fault,
    /// Hits the call it applies to with this index (0-based)...
    at: u64,
    /// ...and, when persistent, later ones too.
    persistent: bool,
    /// Only calls of this method made from this engine line, when set.
    site: Option<(&'static str, u32, Call)>,
    /// Calls it applied to so far.
    pub(super) seen: u64,
}

impl Injection {
    pub(super) fn new(
        fault: Fault,
        at: u64,
        persistent: bool,
        site: Option<(&'static str, u32, Call)>,
    ) -> Self {
        Self {
            fault,
            at,
            persistent,
            site,
            seen: 0,
        }
    }

    pub(super) fn fault(&self) -> Fault {
        self.fault
    }

    /// Counts a call it applies to; the fault when this call is hit.
    fn hit(&mut self, call: Call, from: &Location<'_>) -> Option<(Fault, u64)> {
        let elsewhere = self
            .site
            .is_some_and(|site| site != (from.file(), from.line(), call));
        if !self.fault.applies_to(call) || elsewhere {
            return None;
        }
        let n = self.seen;
        self.seen += 1;
        let later = self.persistent && n > self.at;
        // A persistent EINTR hits every second call, so that resuming makes progress.
        let later = later && (self.fault != Fault::Interrupted || (n - self.at).is_multiple_of(2));
        (n == self.at || later).then_some((self.fault, n))
    }
}

/// Key of a call site: file, line, method.
type SiteKey = (&'static str, u32, Call);

/// Calls per site and the faults each was given.
#[derive(Debug, Clone, Default)]
pub(super) struct Coverage {
    sites: BTreeMap<SiteKey, (u64, BTreeSet<Fault>)>,
}

impl Coverage {
    pub(super) fn sites(&self) -> Vec<CallSite> {
        self.sites
            .iter()
            .map(|(&(file, line, call), (calls, faults))| CallSite {
                file,
                line,
                call,
                calls: *calls,
                faults: faults.clone(),
            })
            .collect()
    }
}

/// Counts a call against its site and asks the injection about it: `Err` for a failing
/// fault, [`Verdict::Short`] for a short transfer.
pub(super) fn charge(
    coverage: &mut Coverage,
    injection: Option<&mut Injection>,
    call: Call,
    at: &'static Location<'static>,
) -> io::Result<Verdict> {
    let site = coverage
        .sites
        .entry((at.file(), at.line(), call))
        .or_default();
    site.0 += 1;
    let Some((fault, n)) = injection.and_then(|i| i.hit(call, at)) else {
        return Ok(Verdict::Whole);
    };
    site.1.insert(fault);
    let kind = match fault {
        Fault::ShortRead | Fault::ShortWrite => return Ok(Verdict::Short),
        Fault::Interrupted => io::ErrorKind::Interrupted,
        Fault::NoSpace => io::ErrorKind::StorageFull,
        Fault::Io | Fault::SyncLosesData => io::ErrorKind::Other,
    };
    Err(io::Error::new(
        kind,
        format!("simulated {fault:?} at call {n}"),
    ))
}
