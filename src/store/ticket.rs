//! One-shot reply slots between the writer and a waiting producer.
//!
//! A producer waiting for its receipt first spins briefly (the writer usually answers
//! within microseconds, and waking a parked thread costs tens of microseconds), then parks.
//! The writer only pays for `unpark` when the waiter actually parked. At most one waiter
//! per spare core spins at a time (the writer needs a core of its own): with more
//! producers than cores, the others park at once instead of stealing the writer's time.
//!
//! Slots for append receipts are recycled through a small per-thread pool: a producer
//! pipelining thousands of appends allocates none after the first window, and no slot
//! is freed on the writer's thread (a free across threads contends on the allocator).

use std::cell::{RefCell, UnsafeCell};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{Thread, ThreadId};
use std::time::{Duration, Instant};

use crate::error::AppendError;
use crate::event::AppendReceipt;

const EMPTY: u8 = 0;
const READY: u8 = 1;
const PARKED: u8 = 2;

/// How long a waiter spins before parking.
const SPIN: Duration = Duration::from_micros(60);
/// How long a waiter for a durable receipt spins: a sync takes longer than a write, and
/// waking a parked thread afterwards would add tens of microseconds to every durable append.
const DURABLE_SPIN: Duration = Duration::from_millis(1);

/// Waiters spinning right now.
static SPINNING: AtomicUsize = AtomicUsize::new(0);

/// Waiters for a sync right now. A lone one spins (its sync is the only thing running);
/// with several, they share the next syncs (group commit) and spinning would only take
/// the cores their next appends and the writer need, so they park.
static SYNC_WAITERS: AtomicUsize = AtomicUsize::new(0);

/// The producers of one store waiting for a sync, and the most at once since the writer
/// last looked: group commit waits for as many (a sync may have covered fewer when some
/// arrived while it ran).
#[derive(Debug, Default)]
pub(crate) struct SyncWaiters {
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl SyncWaiters {
    /// Counts the caller as waiting until the guard drops.
    pub fn enter(&self) -> WaitingForSync<'_> {
        let n = self.now.fetch_add(1, Ordering::AcqRel) + 1;
        self.peak.fetch_max(n, Ordering::AcqRel);
        WaitingForSync(self)
    }

    /// The most waiting at once since the last call.
    pub fn peak_since_last_look(&self) -> usize {
        self.peak
            .swap(self.now.load(Ordering::Acquire), Ordering::AcqRel)
    }
}

/// A producer of one store waiting for a sync (see [`SyncWaiters`]).
pub(crate) struct WaitingForSync<'a>(&'a SyncWaiters);

impl Drop for WaitingForSync<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Counts a waiter for a sync while it lives.
struct SyncWaiter;

impl SyncWaiter {
    fn enter() -> Self {
        SYNC_WAITERS.fetch_add(1, Ordering::AcqRel);
        Self
    }

    fn alone() -> bool {
        SYNC_WAITERS.load(Ordering::Acquire) <= 1
    }
}

impl Drop for SyncWaiter {
    fn drop(&mut self) {
        SYNC_WAITERS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How many waiters may spin at once: the cores left when the writer has one.
fn spin_slots() -> usize {
    static SLOTS: OnceLock<usize> = OnceLock::new();
    *SLOTS.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .saturating_sub(1)
    })
}

/// A spin slot, released when dropped.
struct SpinSlot;

impl SpinSlot {
    fn take() -> Option<Self> {
        if SPINNING.fetch_add(1, Ordering::AcqRel) < spin_slots() {
            Some(Self)
        } else {
            SPINNING.fetch_sub(1, Ordering::AcqRel);
            None
        }
    }
}

impl Drop for SpinSlot {
    fn drop(&mut self) {
        SPINNING.fetch_sub(1, Ordering::AcqRel);
    }
}

struct Inner<T> {
    state: AtomicU8,
    /// Written once by the writer before `state` becomes `READY`; read by the waiter only
    /// after it saw `READY`.
    value: UnsafeCell<Option<T>>,
    waiter: Thread,
}

// SAFETY: `value` is accessed by one side at a time: the `Reply` (unique, consumed on
// delivery) writes it before the release store of `READY`; the `Waiter` (unique) reads it
// only after an acquire load saw `READY`, and a recycled slot is reset only when its
// `Arc` is unique. So no two threads ever touch the cell at once, and `T: Send` lets the
// value cross from the writer to the waiter.
unsafe impl<T: Send> Sync for Inner<T> {}

impl<T> Inner<T> {
    fn new() -> Self {
        Self {
            state: AtomicU8::new(EMPTY),
            value: UnsafeCell::new(None),
            waiter: std::thread::current(),
        }
    }
}

/// The writer's end: fulfilled exactly once (or dropped, which the waiter sees as `None`).
pub(crate) struct Reply<T>(Option<Arc<Inner<T>>>);

/// The producer's end.
pub(crate) struct Waiter<T>(Arc<Inner<T>>);

/// A reply slot whose waiter is the current thread.
pub(crate) fn pair<T>() -> (Reply<T>, Waiter<T>) {
    let inner = Arc::new(Inner::new());
    (Reply(Some(inner.clone())), Waiter(inner))
}

/// What the writer answers to one append.
pub(crate) type AppendResult = Result<AppendReceipt, AppendError>;

/// Most recycled append slots one thread keeps.
const POOL_MAX: usize = 4096;

/// The current thread's id (`std::thread::current()` clones an `Arc` on every call).
fn current_id() -> ThreadId {
    thread_local! {
        static ID: ThreadId = std::thread::current().id();
    }
    ID.try_with(|id| *id)
        .unwrap_or_else(|_| std::thread::current().id())
}

thread_local! {
    static POOL: RefCell<Vec<Arc<Inner<AppendResult>>>> = const { RefCell::new(Vec::new()) };
}

/// A reply slot for one append, taken from this thread's pool when it has one.
pub(crate) fn append_pair() -> (Reply<AppendResult>, Waiter<AppendResult>) {
    let inner = POOL
        .try_with(|p| p.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_else(|| Arc::new(Inner::new()));
    (Reply(Some(inner.clone())), Waiter(inner))
}

impl Waiter<AppendResult> {
    /// [`Waiter::wait_for`], then hands the slot back to this thread's pool.
    pub fn wait_recycling(mut self, durable: bool) -> Option<AppendResult> {
        let value = self.wait_ref(durable);
        if let Some(inner) = Arc::get_mut(&mut self.0) {
            // The writer has let go: the slot is ours alone and may be reused here.
            if inner.waiter.id() == current_id() {
                *inner.state.get_mut() = EMPTY;
                *inner.value.get_mut() = None;
                let slot = self.0;
                let _ = POOL.try_with(|p| {
                    let mut p = p.borrow_mut();
                    if p.len() < POOL_MAX {
                        p.push(slot);
                    }
                });
            }
        }
        value
    }
}

impl<T> Reply<T> {
    /// Delivers the value and wakes the waiter if it parked.
    pub fn send(mut self, value: T) {
        if let Some(inner) = self.0.take() {
            deliver(&inner, Some(value));
        }
    }
}

fn deliver<T>(inner: &Inner<T>, value: Option<T>) {
    // SAFETY: only this (unique, consumed) reply writes the cell, and the waiter reads it
    // only after the release swap below made the write visible.
    unsafe { *inner.value.get() = value };
    if inner.state.swap(READY, Ordering::AcqRel) == PARKED {
        inner.waiter.unpark();
    }
}

impl<T> Drop for Reply<T> {
    fn drop(&mut self) {
        if let Some(inner) = self.0.take() {
            deliver(&inner, None);
        }
    }
}

impl<T> Waiter<T> {
    /// Waits for the value; `None` when the writer dropped the reply unanswered.
    ///
    /// On the thread that created the pair it spins, then parks; elsewhere it polls.
    pub fn wait(self) -> Option<T> {
        self.wait_ref(false)
    }

    /// [`Waiter::wait`] for a reply that may wait for a sync: spins longer when `durable`.
    pub fn wait_for(self, durable: bool) -> Option<T> {
        self.wait_ref(durable)
    }

    /// Waits (spinning at most `spin` when a spin slot is free) and takes the value.
    fn wait_ref(&self, durable: bool) -> Option<T> {
        if self.is_ready() {
            // Answered already (the common case for a pipelined ticket): no clock, no slot.
        } else if current_id() == self.0.waiter.id() {
            self.spin_then_park(durable);
        } else {
            self.poll();
        }
        // SAFETY: `state` is `READY` (acquire): the writer's single write is visible and
        // it never touches the cell again; this waiter is the only reader.
        unsafe { (*self.0.value.get()).take() }
    }

    fn spin_then_park(&self, durable: bool) {
        let _counted = durable.then(SyncWaiter::enter);
        let spin = if durable { DURABLE_SPIN } else { SPIN };
        let start = Instant::now();
        let mut slot = SpinSlot::take();
        let budget = if slot.is_some() { spin } else { Duration::ZERO };
        let mut spins = 0u32;
        while self.0.state.load(Ordering::Acquire) != READY {
            spins += 1;
            if !spins.is_multiple_of(64)
                || (start.elapsed() < budget && (!durable || SyncWaiter::alone()))
            {
                if durable {
                    // A sync runs in the kernel (journal, block layer): give way to it.
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
                continue;
            }
            slot = None;
            if self
                .0
                .state
                .compare_exchange(EMPTY, PARKED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                while self.0.state.load(Ordering::Acquire) != READY {
                    std::thread::park();
                }
            }
        }
        drop(slot);
    }

    /// `true` once the value (or the drop) arrived.
    pub fn is_ready(&self) -> bool {
        self.0.state.load(Ordering::Acquire) == READY
    }

    /// Waits on a thread other than the creator: polls with short sleeps.
    fn poll(&self) {
        let mut pause = Duration::from_micros(5);
        while !self.is_ready() {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_sent_from_another_thread_arrives() {
        let (reply, waiter) = pair();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            reply.send(7u32);
        });
        assert_eq!(waiter.wait(), Some(7));
        t.join().ok();
    }

    #[test]
    fn a_dropped_reply_wakes_the_waiter_with_none() {
        let (reply, waiter) = pair::<u32>();
        std::thread::spawn(move || drop(reply));
        assert_eq!(waiter.wait(), None);
    }

    #[test]
    fn a_recycled_append_slot_starts_empty_and_takes_a_new_value() {
        for i in 0..3u64 {
            let (reply, waiter) = append_pair();
            assert!(!waiter.is_ready());
            let t = std::thread::spawn(move || reply.send(Err(AppendError::Closed)));
            let got = waiter.wait_recycling(false);
            assert!(matches!(got, Some(Err(AppendError::Closed))), "round {i}");
            t.join().ok();
        }
    }
}
