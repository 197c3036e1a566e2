//! Starting the writer thread and restarting it after a panic, as `restart_policy` says.
//!
//! A restart rebuilds the writer from disk: recovery cuts the active segment back to the
//! last complete unit (so a half-written batch disappears) and rebuilds the index, which
//! replaces the one the panicking writer may have left half updated. Every acknowledged
//! event was written before its receipt was sent, so it is still there.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Sender};

use crate::error::OpenError;
use crate::fs::FileSystem;

use super::checkpoint::{self, CheckpointStatus};
use super::command::Command;
use super::recovery::{self, Knobs, Mode, Recovered};
use super::writer::{Active, Lane, Writer};
use super::Shared;

/// Recovers `dir`, removing a stale or damaged checkpoint in read-write mode so it can never
/// be mistaken for a current one later.
pub(crate) fn recover_dir(
    fs: &dyn FileSystem,
    dir: &Path,
    store_id: u64,
    mode: Mode,
    knobs: Knobs,
) -> Result<Recovered, OpenError> {
    let finished = match mode {
        Mode::ReadOnly => None,
        Mode::ReadWrite { .. } => super::compact::finish_pending(fs, dir)?,
    };
    // A salvage may cut or move segments the checkpoint covers: it goes first, so a crash
    // part way never leaves a checkpoint that proves a loss the salvage accepted.
    if mode == (Mode::ReadWrite { salvage: true }) {
        remove_checkpoint(fs, dir)?;
    }
    let mut rec = recovery::recover_with(fs, dir, store_id, mode, knobs, None)?;
    // A read-only open of a live store may list the directory while its writer is half way
    // through a roll (the next file made, the current one not sealed yet, or the other way
    // round in what the listing and the reads saw): a loss it reports is looked at again.
    for _ in 0..2 {
        if mode != Mode::ReadOnly || rec.report.lost.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        rec = recovery::recover_with(fs, dir, store_id, mode, knobs, None)?;
    }
    rec.report.compaction = finished;
    let stale = matches!(
        rec.report.checkpoint,
        CheckpointStatus::Stale(_) | CheckpointStatus::Damaged(_)
    );
    let salvaged = !rec.report.salvaged.is_empty();
    if (stale || salvaged) && mode != Mode::ReadOnly {
        remove_checkpoint(fs, dir)?;
    }
    Ok(rec)
}

fn remove_checkpoint(fs: &dyn FileSystem, dir: &Path) -> Result<(), OpenError> {
    checkpoint::remove(fs, dir).map_err(|source| OpenError::Io {
        op: "remove stale checkpoint",
        path: dir.join(checkpoint::FILE_NAME),
        source,
    })
}

/// Installs the recovered index and the newest segment's handle for readers.
pub(crate) fn install_read_only(shared: &Shared, rec: Recovered) {
    let last = rec.index.visible;
    {
        let mut idx = shared.index_mut();
        let generation = idx.generation + 1;
        *idx = rec.index;
        idx.generation = generation;
    }
    shared.written_seq.store(last, Ordering::Release);
    shared.durable_seq.store(last, Ordering::Release);
    shared.acked_seq.store(last, Ordering::Release);
    shared.set_active(rec.active.map(|a| (a.no, a.file)));
}

/// Installs the recovered index and returns the writer state.
fn install(shared: &Arc<Shared>, mut rec: Recovered) -> Writer {
    let active = rec.active.take();
    let (next_seg, next_seq) = (rec.next_seg, rec.next_seq);
    install_read_only(shared, rec);
    let active = active.map(|a| {
        shared.set_active(Some((a.no, a.file.clone())));
        Active {
            no: a.no,
            file: a.file,
            base: a.base,
            len: a.len,
            synced: a.len,
            marked: a.marked,
            entities: a.entities,
            scopes: a.scopes,
            chain: a.chain,
        }
    });
    Writer::new(shared.clone(), active, next_seg, next_seq)
}

/// Starts the named writer thread; returns the channel into it and the writer's state,
/// which an idle-writer producer may borrow (see [`Lane`]).
pub(crate) fn start(
    shared: &Arc<Shared>,
    rec: Recovered,
) -> std::io::Result<(Sender<Command>, JoinHandle<()>, Arc<Lane>)> {
    let cfg = shared.config();
    let (tx, rx) = bounded(cfg.writer_channel_capacity as usize);
    let lane = Lane::new(shared.clone(), install(shared, rec));
    let mut builder = std::thread::Builder::new().name("batpak-writer".into());
    if let Some(stack) = cfg.writer_stack_size {
        builder = builder.stack_size(stack);
    }
    let l = lane.clone();
    let handle = builder.spawn(move || l.run_thread(&rx))?;
    Ok((tx, handle, lane))
}

/// Rebuilds the writer from disk after a panic, unless the restart policy gives up (the
/// reason is returned).
pub(crate) fn restart(
    shared: &Arc<Shared>,
    restarts: &mut Vec<Instant>,
    msg: &str,
) -> Result<Writer, String> {
    let policy = shared.config().restart_policy;
    let now = Instant::now();
    restarts.retain(|t| now.duration_since(*t) < policy.window);
    if restarts.len() >= policy.max_restarts as usize {
        return Err(format!(
            "writer panicked ({msg}); restart policy allows {} restarts within {:?}, giving up",
            policy.max_restarts, policy.window
        ));
    }
    let backoff = policy
        .backoff
        .saturating_mul(1 << restarts.len().min(16))
        .min(policy.max_backoff);
    restarts.push(now);
    std::thread::sleep(backoff.max(Duration::ZERO));
    shared.set_active(None);
    let cfg = shared.config();
    let mode = Mode::ReadWrite { salvage: false };
    let rec = recover_dir(
        &*shared.fs,
        &shared.dir,
        shared.store_id,
        mode,
        Knobs::of(&cfg),
    )
    .map_err(|e| format!("writer panicked ({msg}) and recovery failed: {e}"))?;
    shared.stats.writer_restarts.fetch_add(1, Ordering::Relaxed);
    Ok(install(shared, rec))
}

/// The text a panic carried.
pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
