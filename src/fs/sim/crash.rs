//! What survives a crash, in several models, and crashes taken at any point of a
//! recorded run.
//!
//! Synced content always survives; so do directory entries made durable by a directory
//! sync. What happened after the last sync survives as the mode says. The device is taken
//! to write sectors atomically in the sense that bytes already synced are never damaged by
//! a later unsynced write to the same sector (appends rewrite a partial sector with its old
//! bytes unchanged); only unsynced bytes can be lost, torn or garbled.

use std::collections::HashMap;

use super::{Entry, Inode, Op, Rng, SimFs, State};

/// Sector size of the simulated device.
const SECTOR: u64 = 512;

/// What a crash keeps of the writes after the last sync of each file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Nothing unsynced.
    DropAll,
    /// A random prefix of the writes, the last one torn at any byte.
    TornPrefix,
    /// A random prefix, the last write kept only up to a sector boundary.
    TornSector,
    /// Each write kept or lost on its own (the device reorders).
    Subset,
    /// A random prefix, then one sector of the unsynced bytes filled with garbage.
    Garbage,
}

impl CrashMode {
    /// Every mode.
    pub const ALL: [CrashMode; 5] = [
        CrashMode::DropAll,
        CrashMode::TornPrefix,
        CrashMode::TornSector,
        CrashMode::Subset,
        CrashMode::Garbage,
    ];
}

/// The file system a reboot finds after a crash of `st`.
pub(super) fn survivor(st: &State, mode: CrashMode, seed: u64) -> SimFs {
    let mut rng = Rng(seed | 1);
    let mut entries = st.durable_entries.clone();
    let keep = rng.below(st.pending_dir.len() as u64 + 1) as usize;
    st.pending_dir[..keep]
        .iter()
        .for_each(|op| op.apply(&mut entries));
    let mut inodes = HashMap::new();
    for ino in entries.values() {
        if let Some(node) = st.inodes.get(ino) {
            let content = survive(node, mode, &mut rng);
            inodes.insert(
                *ino,
                Inode {
                    data: content.clone(),
                    durable: content,
                    pending: Vec::new(),
                },
            );
        }
    }
    let next = State {
        inodes,
        durable_entries: entries.clone(),
        entries,
        dirs: st.dirs.clone(),
        next_inode: st.next_inode,
        ..State::default()
    };
    SimFs::of(next)
}

/// What one file holds after the crash.
fn survive(node: &Inode, mode: CrashMode, rng: &mut Rng) -> Vec<u8> {
    let mut content = node.durable.clone();
    let synced = content.len() as u64;
    let pending = &node.pending;
    let n = match mode {
        CrashMode::DropAll => 0,
        _ => rng.below(pending.len() as u64 + 1) as usize,
    };
    for (i, op) in pending.iter().enumerate() {
        let last = i + 1 == n;
        let kept = match mode {
            CrashMode::Subset => rng.below(2) == 0,
            _ => i < n,
        };
        if !kept {
            continue;
        }
        let take = match op {
            Op::Write { off, data } => match mode {
                CrashMode::TornPrefix if last => rng.below(data.len() as u64 + 1) as usize,
                CrashMode::TornSector if last => {
                    let end = off + rng.below(data.len() as u64 + 1);
                    (end - end % SECTOR).saturating_sub(*off) as usize
                }
                _ => data.len(),
            },
            Op::SetLen(_) => 0,
        };
        op.apply(&mut content, take);
    }
    if mode == CrashMode::Garbage && (content.len() as u64) > synced {
        // One sector's worth of unsynced bytes garbled; synced bytes stay.
        let span = content.len() as u64 - synced;
        let start = synced + rng.below(span);
        let end = (start - start % SECTOR + SECTOR).min(content.len() as u64);
        for b in &mut content[start as usize..end as usize] {
            *b = rng.below(256) as u8;
        }
    }
    content
}

/// Crashes at every point of a recorded run: steps through its journal and takes, at any
/// point, the file system a crash there would leave.
pub struct Replay {
    journal: Vec<Entry>,
    state: State,
    at: usize,
}

impl Replay {
    /// Starts before the first call `fs` journaled (see [`SimFs::recording`]).
    pub fn of(fs: &SimFs) -> Self {
        let journal = fs
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .journal
            .clone()
            .unwrap_or_default();
        Self {
            journal,
            state: State::default(),
            at: 0,
        }
    }

    /// Calls replayed so far.
    pub fn position(&self) -> usize {
        self.at
    }

    /// Calls in the journal.
    pub fn len(&self) -> usize {
        self.journal.len()
    }

    /// `true` for an empty journal.
    pub fn is_empty(&self) -> bool {
        self.journal.is_empty()
    }

    /// Replays the next call; `false` at the end of the journal.
    pub fn step(&mut self) -> bool {
        let Some(e) = self.journal.get(self.at) else {
            return false;
        };
        self.state.apply(e);
        self.at += 1;
        true
    }

    /// The file system as it is right now, nothing lost (to look at what was written).
    pub fn live(&self) -> SimFs {
        SimFs::of(self.state.clone())
    }

    /// The file system a crash right now (after [`Replay::position`] calls) would leave.
    pub fn crash(&self, mode: CrashMode, seed: u64) -> SimFs {
        survivor(&self.state, mode, seed)
    }
}
