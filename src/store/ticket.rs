//! One-shot reply slots between the writer and a waiting producer.
//!
//! A producer waiting for its receipt first spins briefly (the writer usually answers
//! within microseconds, and waking a parked thread costs tens of microseconds), then parks.
//! The writer only pays for `unpark` when the waiter actually parked. At most one waiter
//! per spare core spins at a time (the writer needs a core of its own): with more
//! producers than cores, the others park at once instead of stealing the writer's time.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

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
    value: Mutex<Option<T>>,
    waiter: Thread,
}

/// The writer's end: fulfilled exactly once (or dropped, which the waiter sees as `None`).
pub(crate) struct Reply<T>(Option<Arc<Inner<T>>>);

/// The producer's end.
pub(crate) struct Waiter<T>(Arc<Inner<T>>);

/// A reply slot whose waiter is the current thread.
pub(crate) fn pair<T>() -> (Reply<T>, Waiter<T>) {
    let inner = Arc::new(Inner {
        state: AtomicU8::new(EMPTY),
        value: Mutex::new(None),
        waiter: std::thread::current(),
    });
    (Reply(Some(inner.clone())), Waiter(inner))
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
    if let Ok(mut v) = inner.value.lock() {
        *v = value;
    }
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
        self.wait_spinning(SPIN)
    }

    /// [`Waiter::wait`] for a receipt that may wait for a sync: spins longer when `durable`.
    pub fn wait_for(self, durable: bool) -> Option<T> {
        self.wait_spinning(if durable { DURABLE_SPIN } else { SPIN })
    }

    /// [`Waiter::wait`] with another spin budget (used only when a spin slot is free).
    fn wait_spinning(self, spin: Duration) -> Option<T> {
        if std::thread::current().id() != self.0.waiter.id() {
            return self.wait_polling();
        }
        let start = Instant::now();
        let mut slot = SpinSlot::take();
        let budget = if slot.is_some() { spin } else { Duration::ZERO };
        let mut spins = 0u32;
        while self.0.state.load(Ordering::Acquire) != READY {
            spins += 1;
            if !spins.is_multiple_of(64) || start.elapsed() < budget {
                std::hint::spin_loop();
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
        self.0.value.lock().ok().and_then(|mut v| v.take())
    }

    /// `true` once the value (or the drop) arrived.
    pub fn is_ready(&self) -> bool {
        self.0.state.load(Ordering::Acquire) == READY
    }

    /// Waits on a thread other than the creator: polls with short sleeps.
    fn wait_polling(self) -> Option<T> {
        let mut pause = Duration::from_micros(5);
        while !self.is_ready() {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(1));
        }
        self.0.value.lock().ok().and_then(|mut v| v.take())
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
}
