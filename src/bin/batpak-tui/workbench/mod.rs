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
mod tuning;
mod ui;

use std::error::Error;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use batpak::preset::Preset;
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
        if let Some(s) = store {
            let _ = s.close();
        }
    })?;
    let theme = Theme::new(args.colors, args.ascii);
    let mut app = App::new(ConfigState::new(&args.preset, preset));
    app.presets_dir = args.presets_dir.clone();
    let looped = {
        let _screen = term::Screen::enter()?;
        let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
        frame_loop(&mut terminal, &mut live, &mut app, theme, fps, &stop)
    };
    stop.closing();
    let closed = live.finish();
    stop.finished();
    looped?;
    closed
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
    let mut dirty = true;
    let mut next = Instant::now();
    while !stop.asked() {
        next += frame;
        loop {
            let left = next.saturating_duration_since(Instant::now());
            if !event::poll(left)? {
                break;
            }
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
