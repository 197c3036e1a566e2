//! Subscriptions: a lossy per-subscriber ring of `broadcast_capacity` entries.
//!
//! The writer pushes each written event into the ring of every subscriber whose region
//! matches; when a ring is full its oldest entry is dropped and counted, so a slow
//! consumer never slows the writer. Every delivery carries its sequence, so a consumer
//! sees its gaps. A subscription may start from a sequence: it then reads history from
//! disk up to the point it was registered, and continues with live deliveries after it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::event::{Event, Region};

use super::query::QueryCursor;
use super::Shared;

/// The state one subscriber shares with the writer.
pub(crate) struct Ring {
    pub region: Region,
    capacity: usize,
    queue: Mutex<VecDeque<Arc<Event>>>,
    ready: Condvar,
    pub dropped: AtomicU64,
    pub delivered: AtomicU64,
    pub closed: AtomicBool,
}

impl Ring {
    pub fn new(region: Region, capacity: usize) -> Self {
        Self {
            region,
            capacity: capacity.max(1),
            queue: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
            dropped: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        }
    }

    /// Pushes an event, dropping the oldest when full.
    pub fn push(&self, event: Arc<Event>) {
        if let Ok(mut q) = self.queue.lock() {
            if q.len() >= self.capacity {
                q.pop_front();
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            q.push_back(event);
        }
        self.ready.notify_one();
    }

    /// Entries waiting.
    pub fn len(&self) -> usize {
        self.queue.lock().map(|q| q.len()).unwrap_or(0)
    }

    /// Marks the ring closed and wakes the consumer.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.ready.notify_all();
    }

    fn pop(&self, deadline: Option<Instant>) -> Result<Arc<Event>, RecvError> {
        let mut q = self.queue.lock().map_err(|_| RecvError::Closed)?;
        loop {
            if let Some(e) = q.pop_front() {
                self.delivered.fetch_add(1, Ordering::Relaxed);
                return Ok(e);
            }
            if self.closed.load(Ordering::Acquire) {
                return Err(RecvError::Closed);
            }
            q = match deadline {
                None => self.ready.wait(q).map_err(|_| RecvError::Closed)?,
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Err(RecvError::Timeout);
                    }
                    self.ready
                        .wait_timeout(q, d - now)
                        .map_err(|_| RecvError::Closed)?
                        .0
                }
            };
        }
    }
}

/// Why a receive returned no event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// Nothing arrived in time (or nothing is waiting, for `try_recv`).
    #[error("no event arrived in time")]
    Timeout,
    /// The store was closed and every delivered event was received.
    #[error("the store was closed")]
    Closed,
    /// Reading history from disk failed.
    #[error("reading history failed: {0}")]
    History(String),
}

/// A live feed of the events matching a [`Region`].
pub struct Subscription {
    ring: Arc<Ring>,
    store: Weak<Shared>,
    /// History still to read from disk.
    history: Option<QueryCursor>,
    buffered: VecDeque<Event>,
    /// Live deliveries at or below this sequence were already read as history.
    live_after: u64,
}

impl Subscription {
    pub(crate) fn new(
        ring: Arc<Ring>,
        store: Weak<Shared>,
        history: Option<QueryCursor>,
        live_after: u64,
    ) -> Self {
        Self {
            ring,
            store,
            history,
            buffered: VecDeque::new(),
            live_after,
        }
    }

    /// Waits for the next event.
    pub fn recv(&mut self) -> Result<Event, RecvError> {
        self.next_event(None)
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Result<Event, RecvError> {
        self.next_event(Some(Instant::now()))
    }

    /// Waits at most `timeout` for the next event.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Event, RecvError> {
        self.next_event(Some(Instant::now() + timeout))
    }

    /// Events dropped because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.ring.dropped.load(Ordering::Relaxed)
    }

    /// Events waiting in the ring (the subscriber's lag).
    pub fn lag(&self) -> usize {
        self.ring.len()
    }

    fn next_event(&mut self, deadline: Option<Instant>) -> Result<Event, RecvError> {
        if let Some(e) = self.next_history()? {
            return Ok(e);
        }
        loop {
            let e = self.ring.pop(deadline)?;
            if e.sequence > self.live_after {
                return Ok(Arc::unwrap_or_clone(e));
            }
        }
    }

    fn next_history(&mut self) -> Result<Option<Event>, RecvError> {
        if let Some(e) = self.buffered.pop_front() {
            return Ok(Some(e));
        }
        let Some(cursor) = self.history.as_mut() else {
            return Ok(None);
        };
        let store = self.store.upgrade().ok_or(RecvError::Closed)?;
        let events = store
            .next_chunk(cursor, 512)
            .map_err(|e| RecvError::History(e.to_string()))?;
        if events.is_empty() {
            self.history = None;
        }
        self.buffered.extend(events);
        Ok(self.buffered.pop_front())
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.ring.close();
        if let Some(store) = self.store.upgrade() {
            store.remove_subscriber(&self.ring);
        }
    }
}
