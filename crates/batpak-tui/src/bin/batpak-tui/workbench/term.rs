//! The terminal: raw mode and the alternate screen while the workbench runs, restored on
//! every way out (normal exit, panic, SIGTERM, SIGHUP, SIGINT). Signals are handled on a
//! thread of their own, so a dropped SSH connection ends the process with the store closed
//! even if the input loop is stuck on a dead terminal.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste};
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use crossterm::{cursor, execute};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// How long the input loop gets to close the store itself after a signal.
const GRACE: Duration = Duration::from_secs(3);
/// How long a close the input loop has begun may take before the watchdog gives up on it
/// (stopping the workload and syncing can take seconds on a loaded device).
const CLOSING: Duration = Duration::from_secs(30);

/// Puts the terminal back as it was (safe to call more than once).
pub fn restore() {
    let _ = disable_raw_mode();
    let mut out = io::stdout();
    let _ = execute!(
        out,
        DisableMouseCapture,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        cursor::Show
    );
    let _ = out.flush();
}

/// Raw mode and the alternate screen until dropped.
pub struct Screen(());

impl Screen {
    pub fn enter() -> io::Result<Self> {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            hook(info);
        }));
        enable_raw_mode()?;
        let guard = Self(());
        execute!(
            io::stdout(),
            EnterAlternateScreen,
            EnableBracketedPaste,
            cursor::Hide
        )?;
        Ok(guard)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Set when a signal asked the workbench to stop.
#[derive(Clone, Default)]
pub struct Stop {
    asked: Arc<AtomicBool>,
    /// The input loop has begun closing the store.
    closing: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
}

impl Stop {
    pub fn asked(&self) -> bool {
        self.asked.load(Ordering::Acquire)
    }

    pub fn ask(&self) {
        self.asked.store(true, Ordering::Release);
    }

    /// The input loop is closing the store: the watchdog waits for it rather than close
    /// the store under it and exit half way.
    pub fn closing(&self) {
        self.closing.store(true, Ordering::Release);
    }

    /// The input loop has closed the store: the watchdog has nothing left to do.
    pub fn finished(&self) {
        self.done.store(true, Ordering::Release);
    }

    /// Starts the signal thread. After a signal it gives the input loop `GRACE` to close
    /// the store; if the loop is stuck (a dead terminal), it runs `close` itself, restores
    /// the terminal and exits.
    pub fn watch(
        &self,
        close: impl FnOnce() -> Result<(), String> + Send + 'static,
    ) -> io::Result<()> {
        let mut signals = Signals::new([SIGTERM, SIGHUP, SIGINT])?;
        let me = self.clone();
        std::thread::Builder::new()
            .name("batpak-tui-signals".into())
            .spawn(move || {
                if signals.forever().next().is_none() {
                    return;
                }
                me.ask();
                let start = Instant::now();
                loop {
                    if me.done.load(Ordering::Acquire) {
                        return;
                    }
                    let closing = me.closing.load(Ordering::Acquire);
                    let patience = if closing { GRACE + CLOSING } else { GRACE };
                    if start.elapsed() >= patience {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                let waited = start.elapsed();
                let closed = close();
                restore();
                // stderr may be a dead terminal: a failed write is ignored, not a panic.
                let mut err = io::stderr();
                let _ = writeln!(
                    err,
                    "batpak-tui: the input loop did not close the store within {:.0} s of the \
                     signal; the signal thread closed it",
                    waited.as_secs_f64()
                );
                if let Err(e) = closed {
                    let _ = writeln!(err, "batpak-tui: closing the store failed: {e}");
                }
                std::process::exit(1);
            })?;
        Ok(())
    }
}
