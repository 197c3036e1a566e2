//! The writer thread: drains the command channel in batches, frames every event of a
//! batch into one buffer, writes it with one call, and syncs as the policy demands.
//!
//! Receipts are sent after `write` returned (never at enqueue); a receipt is marked
//! durable only when the sync covering it completed before it was sent. Producers that
//! queue while a sync runs share the next one (group commit).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};

use crate::codec::frame::{self, Base, EventHeader};
use crate::codec::header::{FileHeader, FileKind, HEADER_LEN};
use crate::config::StoreConfig;
use crate::error::{AppendError, SyncError};
use crate::event::{AppendReceipt, Event, EventId, Expected, MAX_NAME_BYTES};
use crate::fs::FsFile;

use super::command::{CloseReport, Command, Item};
use super::index::{Index, NewEvent, SegMeta};
use super::segment;
use super::ticket::Reply;
use super::Shared;

/// Most commands taken from the channel per batch.
const MAX_BATCH: usize = 4096;
/// How long the writer polls an empty channel before blocking.
const SPIN: Duration = Duration::from_micros(50);
/// After this long without commands, unsynced events are synced.
pub const IDLE_SYNC_AFTER: Duration = Duration::from_millis(20);

/// A growable bit set of dictionary ids defined in the active segment.
#[derive(Debug, Default, Clone)]
pub(crate) struct BitSet(Vec<u64>);

impl BitSet {
    pub fn contains(&self, i: u32) -> bool {
        self.0
            .get(i as usize / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    pub fn insert(&mut self, i: u32) {
        let w = i as usize / 64;
        if self.0.len() <= w {
            self.0.resize(w + 1, 0);
        }
        self.0[w] |= 1 << (i % 64);
    }
}

/// The segment being appended to.
pub(crate) struct Active {
    pub no: u32,
    pub file: Arc<dyn FsFile>,
    pub base: Base,
    /// Bytes written.
    pub len: u64,
    /// Bytes known synced.
    pub synced: u64,
    /// Largest synced length recorded by a marker in the file.
    pub marked: u64,
    pub entities: BitSet,
    pub scopes: BitSet,
}

/// A staged command waiting for its reply.
enum Done {
    One(
        Reply<Result<AppendReceipt, AppendError>>,
        AppendReceipt,
        bool,
    ),
    Many(
        Reply<Result<Vec<AppendReceipt>, AppendError>>,
        Vec<AppendReceipt>,
        bool,
    ),
}

/// Why staging failed.
enum StageError {
    Reject(AppendError),
    Io(String),
}

impl From<AppendError> for StageError {
    fn from(e: AppendError) -> Self {
        Self::Reject(e)
    }
}

/// What a validated event will be written with.
#[derive(Clone, Copy)]
enum Plan {
    New {
        ts: u64,
        cause: Option<u64>,
        correlation: Option<u64>,
    },
    Duplicate(u64),
}

/// The writer's state; rebuilt from disk after a panic.
pub(crate) struct Writer {
    shared: Arc<Shared>,
    /// The configuration in force (a copy: reading the shared one costs a lock and a clone).
    cfg: StoreConfig,
    cfg_gen: u64,
    active: Option<Active>,
    next_seg: u32,
    next_seq: u64,
    buf: Vec<u8>,
    acked_unsynced: u64,
    after_close: u64,
    rejected: u64,
    done: Vec<Done>,
    sync_waiters: Vec<Reply<Result<(), SyncError>>>,
    shutdown: Option<Reply<CloseReport>>,
    publish: Vec<Arc<Event>>,
    /// Enqueue times of the commands staged in this batch, with their event counts.
    stamps: Vec<(Instant, u64)>,
    /// Events and bytes written since the last sync (for events and bytes per sync).
    unsynced_events: u64,
    unsynced_bytes: u64,
    #[cfg(feature = "testkit")]
    panic_next_write: bool,
}

impl Writer {
    pub fn new(shared: Arc<Shared>, active: Option<Active>, next_seg: u32, next_seq: u64) -> Self {
        Self {
            cfg: shared.config(),
            cfg_gen: shared.config_gen.load(Ordering::Acquire),
            shared,
            active,
            next_seg,
            next_seq,
            buf: Vec::with_capacity(1 << 16),
            acked_unsynced: 0,
            after_close: 0,
            rejected: 0,
            done: Vec::new(),
            sync_waiters: Vec::new(),
            shutdown: None,
            publish: Vec::new(),
            stamps: Vec::new(),
            unsynced_events: 0,
            unsynced_bytes: 0,
            #[cfg(feature = "testkit")]
            panic_next_write: false,
        }
    }

    /// Runs until shutdown or until every sender is gone.
    pub fn run(&mut self, rx: &Receiver<Command>) {
        let mut cmds = Vec::with_capacity(MAX_BATCH);
        while let Some(first) = self.next_command(rx) {
            cmds.push(first);
            while cmds.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(c) => cmds.push(c),
                    Err(_) => break,
                }
            }
            self.shared.stats.batches.fetch_add(1, Ordering::Relaxed);
            self.reload_config();
            self.shared.telemetry.note_depth(cmds.len() + rx.len());
            self.handle(&mut cmds);
            if self.shutdown.is_some() {
                self.finish_shutdown(rx);
                return;
            }
        }
        let _ = self.close_out();
    }

    /// Picks up a configuration changed by `Store::reconfigure` (one atomic load per batch).
    fn reload_config(&mut self) {
        let gen = self.shared.config_gen.load(Ordering::Acquire);
        if gen != self.cfg_gen {
            self.cfg = self.shared.config();
            self.cfg_gen = gen;
        }
    }

    /// The next command: polls briefly, then blocks, syncing when the channel stays idle.
    fn next_command(&mut self, rx: &Receiver<Command>) -> Option<Command> {
        let start = Instant::now();
        loop {
            match rx.try_recv() {
                Ok(c) => return Some(c),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) if start.elapsed() < SPIN => std::hint::spin_loop(),
                Err(TryRecvError::Empty) => break,
            }
        }
        if self.has_unsynced() {
            match rx.recv_timeout(IDLE_SYNC_AFTER.saturating_sub(start.elapsed())) {
                Ok(c) => return Some(c),
                Err(RecvTimeoutError::Disconnected) => return None,
                Err(RecvTimeoutError::Timeout) => self.idle_sync(),
            }
        }
        rx.recv().ok()
    }

    fn has_unsynced(&self) -> bool {
        !self.shared.is_poisoned()
            && self
                .active
                .as_ref()
                .is_some_and(|a| a.synced < a.len || a.marked < a.synced)
    }

    /// Syncs what is unsynced, then records the synced length in a marker and syncs that,
    /// so a damaged frame in synced data is never mistaken for a torn tail.
    fn idle_sync(&mut self) {
        if let Err(e) = self.sync_and_mark() {
            self.poison(e);
        }
    }

    fn sync_and_mark(&mut self) -> Result<(), String> {
        self.sync()?;
        if self.active.as_ref().is_some_and(|a| a.marked < a.synced) {
            self.put_marker();
            self.flush()?;
            self.sync()?;
        }
        Ok(())
    }

    fn handle(&mut self, cmds: &mut Vec<Command>) {
        if let Some(msg) = self.shared.poison_message() {
            for cmd in cmds.drain(..) {
                match cmd {
                    Command::Shutdown { reply } => self.shutdown = Some(reply),
                    other => reject(other, &AppendError::Poisoned(msg.clone())),
                }
            }
            return;
        }
        self.put_marker();
        if let Err(e) = self.stage_all(cmds) {
            return self.poison(e);
        }
        if let Err(e) = self.flush() {
            return self.poison(e);
        }
        self.make_visible();
        let want_sync = self.wants_sync();
        if want_sync {
            if let Err(e) = self.sync() {
                return self.poison(e);
            }
        }
        self.reply_all(want_sync);
    }

    fn stage_all(&mut self, cmds: &mut Vec<Command>) -> Result<(), String> {
        let shared = self.shared.clone();
        let mut idx = shared.index_mut();
        for cmd in cmds.drain(..) {
            if self.shutdown.is_some() || !self.admit(&cmd) {
                self.rejected += 1;
                reject(cmd, &AppendError::Closed);
                continue;
            }
            self.stage_command(&mut idx, cmd)?;
        }
        Ok(())
    }

    /// After close began, only `shutdown_drain_limit` more commands are written.
    fn admit(&mut self, cmd: &Command) -> bool {
        if matches!(cmd, Command::Shutdown { .. } | Command::Sync { .. }) {
            return true;
        }
        if !self.shared.closing.load(Ordering::Acquire) {
            return true;
        }
        self.after_close += 1;
        self.after_close <= u64::from(self.cfg.shutdown_drain_limit)
    }

    fn stage_command(&mut self, idx: &mut Index, cmd: Command) -> Result<(), String> {
        match cmd {
            Command::Append { item, reply, at } => {
                match self.stage(idx, std::slice::from_ref(&item)) {
                    Ok(mut r) => match r.pop() {
                        Some(rec) => {
                            self.stamps.extend(at.map(|t| (t, 1)));
                            self.done.push(Done::One(reply, rec, item.opts.durable));
                        }
                        None => reply.send(Err(AppendError::EmptyBatch)),
                    },
                    Err(StageError::Reject(e)) => reply.send(Err(e)),
                    Err(StageError::Io(e)) => return Err(e),
                }
            }
            Command::Batch {
                items,
                durable,
                reply,
                at,
            } => match self.stage(idx, &items) {
                Ok(r) => {
                    self.stamps.extend(at.map(|t| (t, r.len() as u64)));
                    self.done.push(Done::Many(reply, r, durable));
                }
                Err(StageError::Reject(e)) => reply.send(Err(e)),
                Err(StageError::Io(e)) => return Err(e),
            },
            Command::Sync { reply } => self.sync_waiters.push(reply),
            Command::Shutdown { reply } => self.shutdown = Some(reply),
            #[cfg(feature = "testkit")]
            Command::InjectPanic => self.panic_next_write = true,
        }
        Ok(())
    }

    /// Validates every item, then frames and indexes them; all or nothing.
    fn stage(&mut self, idx: &mut Index, items: &[Item]) -> Result<Vec<AppendReceipt>, StageError> {
        if items.is_empty() {
            return Err(AppendError::EmptyBatch.into());
        }
        let plans = self.plan(idx, items)?;
        self.ensure_room(idx, items, &plans)?;
        let last_new = plans.iter().rposition(|p| matches!(p, Plan::New { .. }));
        let mut receipts = Vec::with_capacity(items.len());
        for (i, (item, plan)) in items.iter().zip(&plans).enumerate() {
            let receipt = match *plan {
                Plan::Duplicate(seq) => self.duplicate_receipt(idx, seq),
                Plan::New {
                    ts,
                    cause,
                    correlation,
                } => self.put_event(idx, item, ts, cause, correlation, Some(i) != last_new)?,
            };
            receipts.push(receipt);
        }
        Ok(receipts)
    }

    fn plan(&self, idx: &Index, items: &[Item]) -> Result<Vec<Plan>, StageError> {
        let mut plans = Vec::with_capacity(items.len());
        let mut staged_entities: Vec<(&str, u64)> = Vec::new();
        let mut seq = self.next_seq;
        for item in items {
            check_name("entity", &item.coord.entity)?;
            check_name("scope", &item.coord.scope)?;
            if let Some(seq) = item.opts.idempotency_key.and_then(|k| idx.keys.get(k)) {
                plans.push(Plan::Duplicate(seq));
                continue;
            }
            if item.opts.expected.is_some() {
                let actual = staged_entities
                    .iter()
                    .rev()
                    .find(|(e, _)| *e == item.coord.entity)
                    .map(|(_, s)| *s)
                    .or_else(|| {
                        idx.entities
                            .id(&item.coord.entity)
                            .and_then(|e| idx.entity_last_seq(e))
                    });
                check_expected(&item.coord.entity, item.opts.expected, actual)?;
            }
            let (cause, correlation) = self.resolve_causal(idx, item)?;
            let ts = self.cfg.now_micros();
            plans.push(Plan::New {
                ts,
                cause,
                correlation,
            });
            staged_entities.push((&item.coord.entity, seq));
            seq += 1;
        }
        Ok(plans)
    }

    fn resolve_causal(
        &self,
        idx: &Index,
        item: &Item,
    ) -> Result<(Option<u64>, Option<u64>), AppendError> {
        let store = self.shared.store_id;
        let find = |id: EventId| {
            (id.store() == store)
                .then(|| idx.pos_of(id.sequence()))
                .flatten()
        };
        let cause = match item.opts.causation {
            None => None,
            Some(id) => Some(find(id).ok_or_else(|| AppendError::UnknownCause(id.to_string()))?),
        };
        let corr_pos = match item.opts.correlation {
            Some(id) => {
                Some(find(id).ok_or_else(|| AppendError::UnknownCorrelation(id.to_string()))?)
            }
            None => cause,
        };
        let correlation = corr_pos.map(|p| idx.seq_at(idx.corr_root(p)));
        Ok((cause.map(|p| idx.seq_at(p)), correlation))
    }

    /// Rolls to a new segment when the items would not fit in the active one.
    fn ensure_room(
        &mut self,
        idx: &mut Index,
        items: &[Item],
        plans: &[Plan],
    ) -> Result<(), StageError> {
        let need: u64 = items
            .iter()
            .zip(plans)
            .filter(|(_, p)| matches!(p, Plan::New { .. }))
            .map(|(it, _)| frame_bound(it))
            .sum();
        if need == 0 {
            return Ok(());
        }
        let max = self.cfg.segment_max_bytes;
        if need + HEADER_LEN as u64 + 16 > max {
            return Err(AppendError::TooLarge { size: need, max }.into());
        }
        let used = self.active.as_ref().map(|a| a.len + self.buf.len() as u64);
        if used.is_none_or(|u| u + need > max) {
            self.roll(idx).map_err(StageError::Io)?;
        }
        Ok(())
    }

    fn put_event(
        &mut self,
        idx: &mut Index,
        item: &Item,
        ts: u64,
        cause: Option<u64>,
        correlation: Option<u64>,
        batch_continues: bool,
    ) -> Result<AppendReceipt, StageError> {
        let (entity, scope) = self.define_names(idx, item);
        let a = self
            .active
            .as_ref()
            .ok_or_else(|| StageError::Io("no active segment to write to".into()))?;
        let seq = self.next_seq;
        self.next_seq += 1;
        self.unsynced_events += 1;
        let off = a.len + self.buf.len() as u64;
        let h = EventHeader {
            seq,
            ts,
            kind: item.kind.0,
            entity,
            scope,
            cause,
            correlation: correlation.unwrap_or(seq),
            key: item.opts.idempotency_key,
            batch_continues,
        };
        frame::put_event(
            &mut self.buf,
            &a.base,
            &h,
            item.bypass.as_deref().map(str::as_bytes),
            &item.payload,
        );
        let no = a.no;
        idx.push(NewEvent {
            seq,
            seg: no,
            off: off as u32,
            entity,
            scope,
            kind: item.kind.0,
            cause,
            correlation: h.correlation,
            key: h.key,
        });
        note_event(idx, no, seq);
        if self.shared.has_subscribers() {
            self.publish
                .push(Arc::new(self.shared.event_from(&h, item)));
        }
        Ok(AppendReceipt {
            id: EventId::new(self.shared.store_id, seq),
            sequence: seq,
            segment: u64::from(no),
            offset: off,
            timestamp_us: ts,
            durable: false,
            deduplicated: false,
        })
    }

    /// Dictionary ids of the item's names, writing a definition frame for each name not
    /// yet defined in the active segment.
    fn define_names(&mut self, idx: &mut Index, item: &Item) -> (u32, u32) {
        let entity = idx
            .entities
            .id(&item.coord.entity)
            .unwrap_or_else(|| idx.entities.intern(&item.coord.entity));
        let scope = idx
            .scopes
            .id(&item.coord.scope)
            .unwrap_or_else(|| idx.scopes.intern(&item.coord.scope));
        if let Some(a) = self.active.as_mut() {
            if !a.entities.contains(entity) {
                frame::put_def(
                    &mut self.buf,
                    frame::ENTITY_DEF,
                    entity,
                    item.coord.entity.as_bytes(),
                );
                a.entities.insert(entity);
            }
            if !a.scopes.contains(scope) {
                frame::put_def(
                    &mut self.buf,
                    frame::SCOPE_DEF,
                    scope,
                    item.coord.scope.as_bytes(),
                );
                a.scopes.insert(scope);
            }
        }
        (entity, scope)
    }

    fn duplicate_receipt(&self, idx: &Index, seq: u64) -> AppendReceipt {
        let (segment, offset, ts) = match idx.pos_of(seq) {
            Some(pos) => {
                let loc = super::query::locate(idx, pos);
                let ts = self
                    .shared
                    .read_located(&loc)
                    .map(|e| e.timestamp_us)
                    .unwrap_or(0);
                (u64::from(loc.seg), u64::from(loc.off), ts)
            }
            None => (0, 0, 0),
        };
        AppendReceipt {
            id: EventId::new(self.shared.store_id, seq),
            sequence: seq,
            segment,
            offset,
            timestamp_us: ts,
            durable: seq <= self.shared.durable_seq.load(Ordering::Acquire),
            deduplicated: true,
        }
    }

    /// Seals the active segment (if any) and starts the next one.
    fn roll(&mut self, idx: &mut Index) -> Result<(), String> {
        if self.active.is_some() {
            self.seal(idx)?;
        }
        let cfg = &self.cfg;
        let base = Base {
            seq: self.next_seq - 1,
            ts: cfg.now_micros(),
        };
        let no = self.next_seg;
        let header = FileHeader::new(
            FileKind::Segment,
            self.shared.store_id,
            no.into(),
            base.seq,
            base.ts,
        );
        let path = segment::path(&self.shared.dir, no);
        let file = segment::create(&*self.shared.fs, &self.shared.dir, &header, cfg.sync_mode)
            .map_err(|e| format!("create segment {}: {e}", path.display()))?;
        self.next_seg += 1;
        idx.segments.insert(no, SegMeta::empty(base));
        self.shared.set_active(Some((no, file.clone())));
        self.active = Some(Active {
            no,
            file,
            base,
            len: HEADER_LEN as u64,
            synced: HEADER_LEN as u64,
            marked: HEADER_LEN as u64,
            entities: BitSet::default(),
            scopes: BitSet::default(),
        });
        self.shared
            .stats
            .segments_created
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn seal(&mut self, idx: &mut Index) -> Result<(), String> {
        let Some(no) = self.active.as_ref().map(|a| a.no) else {
            return Ok(());
        };
        let meta = idx.segments.get(&no).copied();
        let (last, events) = meta.map_or((0, 0), |m| (m.last_seq.unwrap_or(m.base.seq), m.events));
        frame::put_seal(&mut self.buf, last, events);
        self.flush()?;
        self.sync()?;
        if let (Some(m), Some(a)) = (idx.segments.get_mut(&no), self.active.as_ref()) {
            m.sealed = true;
            m.len = a.len;
        }
        self.shared.set_active(None);
        self.active = None;
        Ok(())
    }

    fn put_marker(&mut self) {
        if let Some(a) = self.active.as_mut() {
            if a.marked < a.synced {
                frame::put_sync_mark(&mut self.buf, a.synced);
                a.marked = a.synced;
            }
        }
    }

    /// Writes the buffer with one call.
    fn flush(&mut self) -> Result<(), String> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let Some(a) = self.active.as_mut() else {
            self.buf.clear();
            return Ok(());
        };
        #[cfg(feature = "testkit")]
        if std::mem::take(&mut self.panic_next_write) {
            let half = self.buf.len() / 2;
            let _ = a.file.write_all_at(&self.buf[..half], a.len);
            std::panic::panic_any("injected writer panic after a partial batch write");
        }
        a.file.write_all_at(&self.buf, a.len).map_err(|e| {
            format!(
                "write {} at offset {}: {e}",
                segment::path(&self.shared.dir, a.no).display(),
                a.len
            )
        })?;
        a.len += self.buf.len() as u64;
        self.unsynced_bytes += self.buf.len() as u64;
        let stats = &self.shared.stats;
        stats
            .bytes_written
            .fetch_add(self.buf.len() as u64, Ordering::Relaxed);
        stats.writes.fetch_add(1, Ordering::Relaxed);
        self.buf.clear();
        Ok(())
    }

    /// Makes the written events visible to readers and subscribers.
    fn make_visible(&mut self) {
        let last = self.next_seq - 1;
        {
            let mut idx = self.shared.index_mut();
            idx.visible = last;
            if let Some(a) = self.active.as_ref() {
                if let Some(m) = idx.segments.get_mut(&a.no) {
                    m.len = a.len;
                }
            }
        }
        self.shared.written_seq.store(last, Ordering::Release);
        if !self.publish.is_empty() {
            self.shared.broadcast(self.publish.drain(..));
        }
    }

    fn wants_sync(&self) -> bool {
        let new: u64 = self.done.iter().map(new_events).sum();
        let durable = self
            .done
            .iter()
            .any(|d| matches!(d, Done::One(_, _, true) | Done::Many(_, _, true)));
        let every = u64::from(self.cfg.sync_every_n_events);
        durable
            || !self.sync_waiters.is_empty()
            || self.shutdown.is_some()
            || self.acked_unsynced + new >= every
    }

    fn sync(&mut self) -> Result<(), String> {
        let Some(a) = self.active.as_mut() else {
            return Ok(());
        };
        if a.synced < a.len {
            let start = Instant::now();
            a.file.sync(self.cfg.sync_mode).map_err(|e| {
                format!(
                    "sync {}: {e}",
                    segment::path(&self.shared.dir, a.no).display()
                )
            })?;
            a.synced = a.len;
            let took = start.elapsed();
            let stats = &self.shared.stats;
            stats.syncs.fetch_add(1, Ordering::Relaxed);
            stats
                .sync_nanos
                .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
            stats
                .synced_events
                .fetch_add(self.unsynced_events, Ordering::Relaxed);
            self.shared
                .telemetry
                .record_sync(took, self.unsynced_events, self.unsynced_bytes);
            self.unsynced_events = 0;
            self.unsynced_bytes = 0;
        }
        self.acked_unsynced = 0;
        self.shared
            .durable_seq
            .store(self.next_seq - 1, Ordering::Release);
        Ok(())
    }

    fn reply_all(&mut self, synced: bool) {
        if !self.stamps.is_empty() {
            self.shared
                .telemetry
                .record_appends(Instant::now(), &self.stamps);
            self.stamps.clear();
        }
        for d in self.done.drain(..) {
            match d {
                Done::One(reply, mut r, _) => {
                    r.durable |= synced;
                    reply.send(Ok(r));
                }
                Done::Many(reply, mut rs, _) => {
                    rs.iter_mut().for_each(|r| r.durable |= synced);
                    reply.send(Ok(rs));
                }
            }
        }
        if !synced {
            self.acked_unsynced = self.shared.written_seq.load(Ordering::Acquire)
                - self.shared.durable_seq.load(Ordering::Acquire);
        }
        self.sync_waiters.drain(..).for_each(|w| w.send(Ok(())));
    }

    /// A failed write or sync: nothing more is acknowledged until the store is reopened.
    fn poison(&mut self, msg: String) {
        self.shared.set_poisoned(msg.clone());
        self.buf.clear();
        self.stamps.clear();
        self.publish.clear();
        let err = AppendError::Poisoned(msg.clone());
        for d in self.done.drain(..) {
            match d {
                Done::One(reply, _, _) => reply.send(Err(err.clone())),
                Done::Many(reply, _, _) => reply.send(Err(err.clone())),
            }
        }
        self.sync_waiters
            .drain(..)
            .for_each(|w| w.send(Err(SyncError::Poisoned(msg.clone()))));
    }

    /// Rejects what is still queued, syncs, marks, and writes the index checkpoint.
    fn finish_shutdown(&mut self, rx: &Receiver<Command>) {
        while let Ok(cmd) = rx.try_recv() {
            self.rejected += 1;
            reject(cmd, &AppendError::Closed);
        }
        let report = self.close_out();
        if let Some(reply) = self.shutdown.take() {
            reply.send(report);
        }
    }

    fn close_out(&mut self) -> CloseReport {
        let mut report = CloseReport {
            drained: self
                .after_close
                .min(u64::from(self.cfg.shutdown_drain_limit)),
            rejected: self.rejected,
            checkpoint_written: false,
            error: None,
        };
        if let Some(msg) = self.shared.poison_message() {
            report.error = Some(msg);
            return report;
        }
        if let Err(e) = self.sync_and_mark() {
            self.poison(e.clone());
            report.error = Some(e);
            return report;
        }
        match self.shared.write_checkpoint() {
            Ok(()) => report.checkpoint_written = true,
            Err(e) => report.error = Some(e),
        }
        report
    }
}

fn new_events(d: &Done) -> u64 {
    match d {
        Done::One(_, r, _) => u64::from(!r.deduplicated),
        Done::Many(_, rs, _) => rs.iter().filter(|r| !r.deduplicated).count() as u64,
    }
}

fn note_event(idx: &mut Index, seg: u32, seq: u64) {
    if let Some(m) = idx.segments.get_mut(&seg) {
        m.note(seq);
    }
}

/// An upper bound of an item's bytes in a segment: its event frame with the widest ids,
/// plus definitions of both names.
fn frame_bound(item: &Item) -> u64 {
    let names =
        item.coord.entity.len() + item.coord.scope.len() + 2 * (1 + 5 + frame::MAX_OVERHEAD);
    let header = frame::MAX_OVERHEAD + 2 + 4 * 10 + 3 + 2 * 5 + 16;
    let reason = item.bypass.as_ref().map_or(0, |r| r.len() + 10);
    (item.payload.len() + header + names + reason) as u64
}

fn check_name(what: &str, name: &str) -> Result<(), AppendError> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(AppendError::InvalidCoordinate(format!(
            "{what} name must be 1..={MAX_NAME_BYTES} bytes, got {}",
            name.len()
        )));
    }
    Ok(())
}

fn check_expected(
    entity: &str,
    expected: Option<Expected>,
    actual: Option<u64>,
) -> Result<(), AppendError> {
    let want = match expected {
        None => return Ok(()),
        Some(Expected::NoEvents) => None,
        Some(Expected::Sequence(s)) => Some(s),
    };
    if want == actual {
        return Ok(());
    }
    Err(AppendError::Conflict {
        entity: entity.to_string(),
        expected: want,
        actual,
    })
}

fn reject(cmd: Command, err: &AppendError) {
    match cmd {
        Command::Append { reply, .. } => reply.send(Err(err.clone())),
        Command::Batch { reply, .. } => reply.send(Err(err.clone())),
        Command::Sync { reply } => reply.send(Err(match err {
            AppendError::Poisoned(m) => SyncError::Poisoned(m.clone()),
            _ => SyncError::Closed,
        })),
        Command::Shutdown { reply } => reply.send(CloseReport {
            error: Some(err.to_string()),
            ..Default::default()
        }),
        #[cfg(feature = "testkit")]
        Command::InjectPanic => {}
    }
}
