//! Segment I/O: rolling, sealing, writing a batch, syncing and sync markers.

use std::sync::atomic::Ordering;

use crate::codec::frame::{self, Base};
use crate::codec::header::HEADER_LEN;

use super::super::index::{Index, SegMeta};
use super::super::segment;
use super::{Active, BitSet, SegChain, Writer};

impl Writer {
    /// Starts the next segment, then seals the active one (if any). In this order a sealed
    /// newest segment always means a missing file; a crash between the two leaves a bare
    /// newest segment after an unsealed one, which the next open removes (an unfinished roll).
    pub(super) fn roll(&mut self, idx: &mut Index) -> Result<(), String> {
        let cfg = &self.cfg;
        let base = Base {
            seq: self.next_seq - 1,
            ts: cfg.now_micros(),
        };
        let no = self.next_seg;
        let (fs, dir) = (&*self.shared.fs, &self.shared.dir);
        let (file, header) = segment::start(fs, dir, self.shared.store_id, no, base, cfg.sync_mode)
            .map_err(|e| format!("create segment {}: {e}", segment::path(dir, no).display()))?;
        self.next_seg = no
            .checked_add(1)
            .ok_or_else(|| format!("segment {no} is the last number there is"))?;
        let prev = match self.active.is_some() {
            true => self.seal(idx)?,
            false => None,
        };
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
            chain: SegChain::new_segment(&header, prev),
        });
        self.shared
            .stats
            .segments_created
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Seals the active segment; returns the chain value the next segment starts from
    /// (`None` after a segment of a format before the chain).
    pub(super) fn seal(&mut self, idx: &mut Index) -> Result<Option<[u8; 32]>, String> {
        let Some(no) = self.active.as_ref().map(|a| a.no) else {
            return Ok(None);
        };
        let chain = self.seal_chain();
        let meta = idx.segments.get(&no).copied();
        let (last, events) = meta.map_or((0, 0), |m| (m.last_seq.unwrap_or(m.base.seq), m.events));
        frame::put_seal(&mut self.buf, last, events, chain);
        self.flush()?;
        self.sync()?;
        if let (Some(m), Some(a)) = (idx.segments.get_mut(&no), self.active.as_ref()) {
            m.sealed = true;
            m.len = a.len;
        }
        self.shared.set_active(None);
        self.active = None;
        Ok(chain.map(|c| c.out))
    }

    pub(super) fn put_marker(&mut self) {
        self.refresh_synced();
        if let Some(a) = self.active.as_mut() {
            if a.marked < a.synced {
                frame::put_sync_mark(&mut self.buf, a.synced);
                a.marked = a.synced;
            }
        }
    }

    /// Writes the buffer with one call.
    pub(super) fn flush(&mut self) -> Result<(), String> {
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
        if let SegChain::Hashed(h)
        | SegChain::Starts {
            header: Some(h), ..
        } = &mut a.chain
        {
            h.update(&self.buf);
        }
        let stats = &self.shared.stats;
        let n = self.buf.len() as u64;
        stats.bytes_written.fetch_add(n, Ordering::Relaxed);
        self.shared.appended_total.fetch_add(n, Ordering::Relaxed);
        stats.writes.fetch_add(1, Ordering::Relaxed);
        self.buf.clear();
        Ok(())
    }

    /// Syncs everything written so far on this thread and releases the receipts it covers.
    pub(super) fn sync(&mut self) -> Result<(), String> {
        let target = self.target();
        self.syncer.sync_now(target)?;
        self.refresh_synced();
        Ok(())
    }

    /// Syncs, then records the synced length in a marker and syncs that. The marker is
    /// then the only thing past the length it records: nothing is left to mark, so an idle
    /// writer does not mark (and sync) its own marker again.
    pub(super) fn sync_and_mark(&mut self) -> Result<(), String> {
        self.sync()?;
        if self.active.as_ref().is_some_and(|a| a.marked < a.synced) {
            self.put_marker();
            self.flush()?;
            self.sync()?;
            if let Some(a) = self.active.as_mut().filter(|a| a.synced == a.len) {
                a.marked = a.synced;
            }
        }
        Ok(())
    }

    /// Syncs what is unsynced, then records the synced length in a marker and syncs that,
    /// so a damaged frame in synced data is never mistaken for a torn tail.
    pub(super) fn idle_sync(&mut self) {
        if let Err(e) = self.sync_and_mark() {
            self.poison(e);
        }
    }
}
