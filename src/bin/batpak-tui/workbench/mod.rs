//! The interactive workbench: the complete engine in-process, a workload to drive it, and
//! live panes fed by the telemetry snapshot.
//!
//! Frame loop: wait for input until the frame is due, take one snapshot, draw only when
//! something changed (ratatui then writes only the cells that differ).

mod app;
mod model;
mod panes;
mod term;
#[cfg(test)]
mod tests;
mod text;
mod theme;
mod ui;

use std::collections::VecDeque;
use std::error::Error;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use batpak::preset::Preset;
use batpak::process::ProcessSampler;
use batpak::store::{OpenOptions, Stats};
use batpak::workload::Workload;
use batpak::{Store, StoreConfig};
use crossterm::event::{self, Event};
use ratatui::backend::{Backend, CrosstermBackend};
use ratatui::Terminal;

use app::{Action, App};
use model::{Inputs, Model, Sample};
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
}

/// The engine, its workload and what the panes were last drawn from.
struct Live {
    store: Arc<Store>,
    workload: Workload,
    sampler: ProcessSampler,
    config: StoreConfig,
    dir: String,
    preset: String,
    /// Snapshots of the last second: rates and recent histograms span it.
    window: VecDeque<Stats>,
    fps: usize,
    model: Model,
}

impl Live {
    /// Takes a snapshot; `true` when the sample differs from the last one.
    fn tick(&mut self) -> bool {
        let now = self.store.stats();
        let oldest = self.window.front().unwrap_or(&now);
        let rates = now.rates_since(oldest);
        let workload = self.workload.stats();
        let sample = Sample::build(&Inputs {
            dir: &self.dir,
            preset: &self.preset,
            config: &self.config,
            now: &now,
            rates: &rates,
            workload: &workload,
            process: self.sampler.latest().unwrap_or_default(),
        });
        if self.window.len() >= self.fps {
            self.window.pop_front();
        }
        self.window.push_back(now);
        self.model.history.add(&sample);
        let changed = sample != self.model.sample;
        self.model.sample = sample;
        changed
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::ToggleRun if self.workload.is_paused() => self.workload.resume(),
            Action::ToggleRun => self.workload.pause(),
            Action::ResetStats => {
                self.store.reset_stats();
                self.window.clear();
            }
            Action::None | Action::Redraw | Action::Quit => {}
        }
    }
}

impl Live {
    /// Opens the store in `dir` with `preset` and starts its workload (paused if `paused`).
    fn start(
        dir: &std::path::Path,
        name: &str,
        preset: &Preset,
        fps: u32,
        paused: bool,
    ) -> Result<Self, Box<dyn Error>> {
        let config = preset.store_config(dir);
        let options = OpenOptions {
            gates: preset.gates.as_ref().map(|g| g.build()),
            ..OpenOptions::default()
        };
        let store = Arc::new(Store::open_with(config.clone(), options)?);
        let workload = Workload::start(
            store.clone(),
            preset.workload.clone(),
            preset.gates.clone(),
            paused,
        )?;
        Ok(Self {
            store,
            workload,
            sampler: ProcessSampler::start(Duration::from_secs(1))?,
            config,
            dir: dir.display().to_string(),
            preset: name.to_string(),
            window: VecDeque::new(),
            fps: fps as usize,
            model: Model::default(),
        })
    }

    /// Stops the workload and closes the store.
    fn finish(self) -> Result<(), Box<dyn Error>> {
        let Live {
            workload, store, ..
        } = self;
        workload.stop();
        store.close()?;
        Ok(())
    }
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
    let closer = live.store.clone();
    stop.watch(move || {
        let _ = closer.close();
    })?;
    let theme = Theme::new(args.colors, args.ascii);
    let looped = {
        let _screen = term::Screen::enter()?;
        let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
        frame_loop(&mut terminal, &mut live, theme, fps, &stop)
    };
    let closed = live.finish();
    stop.finished();
    looped?;
    closed
}

fn frame_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    live: &mut Live,
    theme: Theme,
    fps: u32,
    stop: &term::Stop,
) -> Result<(), Box<dyn Error>>
where
    B::Error: Error + 'static,
{
    let frame = Duration::from_secs(1) / fps;
    let mut app = App::default();
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
                    let action = app.on_key(k);
                    if action == Action::Quit {
                        return Ok(());
                    }
                    live.act(action);
                    dirty |= action != Action::None;
                }
                Event::Resize(..) => dirty = true,
                _ => {}
            }
        }
        dirty |= live.tick();
        if dirty {
            let cx = Ctx {
                model: &live.model,
                theme,
            };
            terminal.draw(|f| ui::draw(f, &mut app, &cx))?;
            dirty = false;
        }
        // A slow frame does not make the next ones hurry.
        next = next.max(Instant::now());
    }
    Ok(())
}
