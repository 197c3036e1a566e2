//! The interactive workbench: the complete engine in-process, a workload to drive it, and
//! live panes fed by the telemetry snapshot.
//!
//! Frame loop: wait for input until the frame is due, take one snapshot, draw only when
//! something changed (ratatui then writes only the cells that differ).

mod app;
mod causal;
mod config;
mod files;
mod live;
mod model;
mod panes;
mod term;
#[cfg(test)]
mod tests;
mod text;
mod theme;
mod tty;
mod tuning;
mod ui;

use std::error::Error;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use batpak_tui::preset::Preset;
use crossterm::event::{self, Event};
use ratatui::backend::{Backend, CrosstermBackend};
use ratatui::Terminal;

use app::{Action, App};
use config::ConfigState;
use live::Live;
use panes::Ctx;
pub use theme::Colors;
use theme::Theme;

/// What the workbench was started with.
#[derive(Debug, Clone)]
pub struct Args {
    pub dir: PathBuf,
    pub preset: String,
    pub sets: Vec<String>,
    pub fps: u32,
    pub allow_existing_data: bool,
    pub colors: Colors,
    pub ascii: bool,
    pub presets_dir: Option<PathBuf>,
}

/// Opens the store in `args.dir`, starts the workload paused, and runs the frame loop
/// until `q`, Ctrl-C or a signal; then closes the store.
pub fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let preset = Preset::load(&args.preset, &args.sets)?;
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| format!("cannot create {}: {e}", args.dir.display()))?;
    crate::bench::prepare(&args.dir, args.allow_existing_data)?;
    let fps = args.fps.clamp(1, 30);
    let mut live = Live::start(&args.dir, &args.preset, &preset, fps, true)?;
    let stop = term::Stop::default();
    let current = live.current.clone();
    stop.watch(move || {
        let store = current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match store {
            Some(s) => s.close().map(drop).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    })?;
    let theme = Theme::new(args.colors, args.ascii);
    let mut app = App::new(ConfigState::new(&args.preset, preset));
    app.presets_dir = args.presets_dir.clone();
    let looped = {
        let _screen = term::Screen::enter()?;
        let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
        let looped = frame_loop(&mut terminal, &mut live, &mut app, theme, fps, &stop);
        release(terminal);
        looped
    };
    stop.closing();
    let closed = live.finish();
    stop.finished();
    looped?;
    closed
}

/// Drops the terminal without its complaint: ratatui's `Terminal` shows the cursor when
/// dropped and `eprintln!`s when that fails, which panics when stderr is the terminal that
/// just hung up, before the store is closed. The screen guard shows the cursor itself.
fn release<B: Backend>(mut terminal: Terminal<B>) {
    if terminal.show_cursor().is_err() {
        std::mem::forget(terminal);
    }
}

fn frame_loop<B: Backend + Write>(
    terminal: &mut Terminal<B>,
    live: &mut Live,
    app: &mut App,
    theme: Theme,
    fps: u32,
    stop: &term::Stop,
) -> Result<(), Box<dyn Error>>
where
    B::Error: Error + 'static,
{
    let frame = Duration::from_secs(1) / fps;
    let tty = tty::Tty::open();
    let mut dirty = true;
    let mut next = Instant::now();
    while !stop.asked() {
        next += frame;
        loop {
            let left = next.saturating_duration_since(Instant::now());
            let ready = tty.wait(left)?;
            if ready == tty::Ready::Gone {
                // The terminal hung up: close the store as after `q`.
                return Ok(());
            }
            // Every event crossterm has parsed, and the resizes that reach it through its
            // own signal pipe (read at the latest when the frame's wait times out).
            while event::poll(Duration::ZERO)? {
                match event::read()? {
                    Event::Key(k) => {
                        let action = app.on_key(k, &live.model);
                        if action == Action::Quit {
                            return Ok(());
                        }
                        dirty |= action != Action::None;
                        if let Some(text) = live.act(action, app) {
                            files::offer_to_clipboard(terminal.backend_mut(), &text)?;
                        }
                    }
                    Event::Resize(..) => dirty = true,
                    _ => {}
                }
            }
            if ready == tty::Ready::Timeout {
                break;
            }
        }
        dirty |= live.tick(app);
        if dirty {
            let cx = Ctx {
                model: &live.model,
                theme,
            };
            terminal.draw(|f| ui::draw(f, app, &cx))?;
            dirty = false;
        }
        // A slow frame does not make the next ones hurry.
        next = next.max(Instant::now());
    }
    Ok(())
}
