//! The running engine behind the panes: the store (through its workload), snapshots,
//! and what the keys ask of it — run/pause, reset, apply a config, switch presets, export.

use std::collections::VecDeque;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use batpak::store::{OpenOptions, Stats};
use batpak::{Store, StoreConfig};
use batpak_tui::preset::Preset;
use batpak_tui::process::ProcessSampler;
use batpak_tui::workload::Workload;

use super::app::{Action, App, Pane};
use super::causal::{self, CausalView};
use super::config::{describe, ConfigState, Edit};
use super::files;
use super::model::{Inputs, Model, Sample};
use super::tuning::TuneView;

/// The store the signal watchdog closes if the input loop is stuck.
pub type Current = Arc<Mutex<Option<Arc<Store>>>>;

/// The engine, its workload and what the panes were last drawn from.
pub struct Live {
    /// `None` only after a preset switch failed to reopen anything.
    workload: Option<Workload>,
    sampler: ProcessSampler,
    pub dir: PathBuf,
    preset: String,
    gates: Option<batpak_tui::preset::GateSpec>,
    /// Snapshots of the last second: rates and recent histograms span it.
    window: VecDeque<Stats>,
    fps: usize,
    pub model: Model,
    pub current: Current,
    /// The Tune pane's search, once started.
    tune: Option<crate::tune::Background>,
}

impl Drop for Live {
    /// A panic in the frame loop unwinds through here: the store still closes.
    fn drop(&mut self) {
        if let Some(w) = self.workload.take() {
            let _ = close_engine(w);
        }
    }
}

fn options(gates: Option<&batpak_tui::preset::GateSpec>) -> OpenOptions {
    OpenOptions {
        gates: gates.map(|g| g.build()),
        ..OpenOptions::default()
    }
}

/// Opens the store in `dir` with `preset` and starts its workload (paused if `paused`).
fn open_engine(dir: &Path, preset: &Preset, paused: bool) -> Result<Workload, Box<dyn Error>> {
    let store = Arc::new(Store::open_with(
        preset.store_config(dir),
        options(preset.gates.as_ref()),
    )?);
    Ok(Workload::start(
        store,
        preset.workload.clone(),
        preset.gates.clone(),
        paused,
    )?)
}

/// Stops the workload and closes its store.
/// A close whose final sync or checkpoint failed is an error here, not a report to drop.
fn close_engine(w: Workload) -> Result<(), String> {
    let store = w.store();
    w.stop();
    match store.close() {
        Ok(r) => r.error.map_or(Ok(()), Err),
        Err(e) => Err(e.to_string()),
    }
}

impl Live {
    /// Opens the store in `dir` with `preset` and starts its workload (paused if `paused`).
    pub fn start(
        dir: &Path,
        name: &str,
        preset: &Preset,
        fps: u32,
        paused: bool,
    ) -> Result<Self, Box<dyn Error>> {
        let workload = open_engine(dir, preset, paused)?;
        let current = Arc::new(Mutex::new(Some(workload.store())));
        Ok(Self {
            workload: Some(workload),
            sampler: ProcessSampler::start(Duration::from_secs(1))?,
            dir: dir.to_path_buf(),
            preset: name.to_string(),
            gates: preset.gates.clone(),
            window: VecDeque::new(),
            fps: fps as usize,
            model: Model::default(),
            current,
            tune: None,
        })
    }

    fn store(&self) -> Option<Arc<Store>> {
        self.workload.as_ref().map(Workload::store)
    }

    fn set_current(&self) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = self.store();
    }

    /// Takes a snapshot (and the causal pane's events when it is shown); `true` when
    /// something the panes draw changed.
    pub fn tick(&mut self, app: &mut App) -> bool {
        let (Some(w), Some(store)) = (self.workload.as_ref(), self.store()) else {
            return false;
        };
        let now = store.stats();
        let oldest = self.window.front().unwrap_or(&now);
        let rates = now.rates_since(oldest);
        let config: StoreConfig = store.config();
        let sample = Sample::build(&Inputs {
            dir: &self.dir.display().to_string(),
            preset: &self.preset,
            config: &config,
            now: &now,
            rates: &rates,
            workload: &w.stats(),
            process: self.sampler.latest().unwrap_or_default(),
        });
        if self.window.len() >= self.fps {
            self.window.pop_front();
        }
        self.window.push_back(now);
        self.model.history.fps = self.fps as u32;
        self.model.history.add(&sample);
        let mut changed = sample != self.model.sample;
        self.model.sample = sample;
        if let Some(t) = &self.tune {
            let view = TuneView::build(&t.snapshot(), &app.config.applied.store);
            changed |= view != self.model.tune;
            self.model.tune = view;
        }
        if app.pane == Pane::Causal {
            let c = &mut app.causal;
            let view = CausalView {
                entity: c.entity.clone(),
                recent: causal::recent(&store, c.entity.as_deref()),
                focus: c.focus.and_then(|seq| causal::focus(&store, seq)),
            };
            if std::mem::take(&mut c.select_focus) {
                c.selected = view.focus.as_ref().map_or(0, |f| f.ancestors.len());
            }
            changed |= view != self.model.causal;
            self.model.causal = view;
        }
        changed
    }

    /// Carries out `action`; returns text to offer to the clipboard, if any.
    pub fn act(&mut self, action: Action, app: &mut App) -> Option<String> {
        match action {
            Action::ToggleRun => {
                if let Some(w) = &self.workload {
                    if w.is_paused() {
                        w.resume();
                    } else {
                        w.pause();
                    }
                }
            }
            Action::ResetStats => {
                if let Some(s) = self.store() {
                    s.reset_stats();
                }
                self.window.clear();
            }
            Action::Apply => app.config.message = Some(self.apply(&mut app.config)),
            Action::SwitchPreset(value) => app.notice = Some(self.switch(&value, &mut app.config)),
            Action::Export => {
                return match files::export(&app.config.edited, &self.dir, Path::new(".")) {
                    Ok(e) => {
                        let text = e.snippet.clone();
                        app.config.message = Some(format!(
                            "exported to {} and {}",
                            e.rust_file.display(),
                            e.toml_file.display()
                        ));
                        app.exported = Some(e);
                        Some(text)
                    }
                    Err(why) => {
                        app.config.message = Some(why);
                        None
                    }
                };
            }
            Action::StartTune(budget) => app.notice = Some(self.start_tune(&budget, app)),
            Action::StopTune => {
                if let Some(t) = &self.tune {
                    t.stop();
                }
            }
            Action::ApplyTrial(trial) => {
                let point = self.model.tune.points.iter().find(|p| p.trial == trial);
                if let Some(p) = point {
                    app.config.edited.store = p.store.clone();
                    let outcome = self.apply(&mut app.config);
                    app.notice = Some(format!("trial {trial}: {outcome}"));
                    app.config.message = Some(outcome);
                }
            }
            Action::None | Action::Redraw | Action::Quit => {}
        }
        None
    }

    /// Starts a search for the configuration in force and its workload, within `budget`,
    /// on scratch stores beside the data directory; pauses the workload meanwhile (its
    /// load would be measured too). Returns what happened, for the status line.
    fn start_tune(&mut self, budget: &str, app: &App) -> String {
        let budget = match crate::tune::Budget::parse(budget) {
            Ok(b) => b,
            Err(e) => return e,
        };
        if let Some(w) = &self.workload {
            w.pause();
        }
        let mut scratch = self.dir.clone().into_os_string();
        scratch.push(".tune");
        self.tune = None;
        let started = crate::tune::Background::start(
            scratch.into(),
            app.config.applied.clone(),
            budget,
            crate::workbench::tuning::TIME,
            3,
        );
        match started {
            Ok(t) => {
                self.tune = Some(t);
                "searching, workload paused (x stops)".into()
            }
            Err(e) => format!("cannot tune: {e}"),
        }
    }

    /// Applies the edited values: live fields at once, the others by a reopen while the
    /// workload's threads wait. Returns what happened, for the pane.
    fn apply(&mut self, c: &mut ConfigState) -> String {
        let (Some(w), Some(store)) = (self.workload.as_ref(), self.store()) else {
            return "no store is open".into();
        };
        let new = c.edited.store_config(&self.dir);
        let report = match store.reconfigure(&new) {
            Ok(r) => r,
            Err(e) => return format!("refused: {e}"),
        };
        drop(store);
        let live = report.applied.join(", ");
        if report.needs_reopen.is_empty() {
            c.applied = c.edited.clone();
            return if live.is_empty() {
                "nothing to apply".into()
            } else {
                format!("applied live: {live}")
            };
        }
        let start = Instant::now();
        let opts = options(self.gates.as_ref());
        let mut failure = None;
        let swapped = w.swap_store(|old| {
            let _ = old.close();
            match Store::open_with(new.clone(), opts.clone()) {
                Ok(s) => Ok(Arc::new(s)),
                Err(e) => {
                    failure = Some(e.to_string());
                    Store::open_with(old.config(), opts.clone()).map(Arc::new)
                }
            }
        });
        let pause = start.elapsed();
        self.set_current();
        self.window.clear();
        match (swapped, failure) {
            (Err(e), _) => format!("the reopen failed and the store is closed: {e}"),
            (Ok(()), Some(e)) => format!("reopen refused ({e}); kept the old configuration"),
            (Ok(()), None) => {
                c.applied = c.edited.clone();
                format!(
                    "reopened for {} in {:.0} ms (producers waited){}",
                    report.needs_reopen.join(", "),
                    pause.as_secs_f64() * 1e3,
                    if live.is_empty() {
                        String::new()
                    } else {
                        format!("; live: {live}")
                    }
                )
            }
        }
    }

    /// Closes the store and opens it with another preset (its gates and workload too).
    /// The config pane's message says in full what happened, edits dropped included; the
    /// returned notice says it in short for the status line.
    fn switch(&mut self, value: &str, c: &mut ConfigState) -> String {
        let preset = match Preset::load(value, &[]) {
            Ok(p) => p,
            Err(e) => {
                c.message = Some(format!("cannot load {value}: {e}"));
                return format!("{value} not loaded; nothing changed");
            }
        };
        let start = Instant::now();
        let paused = self.workload.as_ref().is_none_or(Workload::is_paused);
        let closed = match self.workload.take() {
            Some(w) => close_engine(w),
            None => Ok(()),
        };
        let name = value.to_string();
        let (message, notice) = match open_engine(&self.dir, &preset, paused) {
            Ok(w) => {
                self.workload = Some(w);
                self.gates = preset.gates.clone();
                self.preset = name.clone();
                let dropped = c.edits();
                *c = ConfigState::new(&name, preset);
                let took = start.elapsed().as_secs_f64() * 1e3;
                switched(&name, took, &dropped)
            }
            Err(e) => (
                format!("cannot open the store with {name}: {e}"),
                format!("{name} did not open the store (see the config pane)"),
            ),
        };
        let (message, notice) = match closed {
            Ok(()) => (message, notice),
            Err(e) => (
                format!("{message}; closing the old store failed: {e}"),
                format!("{notice}; the old close failed (see the config pane)"),
            ),
        };
        c.message = Some(message);
        self.set_current();
        self.window.clear();
        notice
    }

    /// Stops the workload and closes the store.
    pub fn finish(mut self) -> Result<(), Box<dyn Error>> {
        if let Some(w) = self.workload.take() {
            close_engine(w).map_err(|e| format!("closing the store failed: {e}"))?;
        }
        Ok(())
    }
}

/// What a switch to `name` that took `took_ms` and dropped `dropped` says: in full for the
/// config pane, in short for the status line.
fn switched(name: &str, took_ms: f64, dropped: &[Edit]) -> (String, String) {
    if dropped.is_empty() {
        return (
            format!("switched to {name} in {took_ms:.0} ms"),
            format!("switched to {name}"),
        );
    }
    let n = dropped.len();
    (
        format!(
            "switched to {name} in {took_ms:.0} ms; dropped {}",
            describe(dropped)
        ),
        format!(
            "switched to {name}; {n} edit{} dropped",
            if n == 1 { "" } else { "s" }
        ),
    )
}
