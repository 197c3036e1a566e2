//! The workbench's state and what each key does. Nothing here draws.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::config::{ConfigState, FIELDS};
use super::files::{Exported, PresetSource};
use super::model::Model;

/// The panes, in tab order (the digit keys select them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Overview,
    Segments,
    Fd,
    Channel,
    Latency,
    Causal,
    Gates,
    System,
    Config,
    Tune,
}

impl Pane {
    pub const ALL: [Pane; 10] = [
        Pane::Overview,
        Pane::Segments,
        Pane::Fd,
        Pane::Channel,
        Pane::Latency,
        Pane::Causal,
        Pane::Gates,
        Pane::System,
        Pane::Config,
        Pane::Tune,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Pane::Overview => "Overview",
            Pane::Segments => "Segments",
            Pane::Fd => "FD budget",
            Pane::Channel => "Channel",
            Pane::Latency => "Latency",
            Pane::Causal => "Causal graph",
            Pane::Gates => "Gates",
            Pane::System => "Subscribers/cache/system",
            Pane::Config => "Config",
            Pane::Tune => "Tune",
        }
    }

    fn index(self) -> usize {
        Pane::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }
}

/// Which histogram the latency pane shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatencyKind {
    Append,
    Sync,
}

/// The charts that keep a scale of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chart {
    Throughput,
    ChannelDepth,
    BlockedSends,
    MapHits,
    MapMisses,
    MapEvictions,
    Latency,
}

/// How tall the charts' scales are: automatic (each chart's shown maximum, rounded up to
/// a round number) or fixed with `f` (each chart keeps the largest scale it has shown
/// since, or its natural maximum where it has one: the channel's capacity, all of the
/// samples), so a slower run looks smaller than a faster one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scales {
    pub fixed: bool,
    held: [f64; 7],
}

impl Scales {
    /// The top of `chart`'s scale for data peaking at `peak`; `ceiling` is the chart's
    /// natural maximum, if it has one.
    pub fn top(&mut self, chart: Chart, peak: f64, ceiling: Option<f64>) -> f64 {
        let auto = round_up(peak);
        if !self.fixed {
            return auto;
        }
        if let Some(c) = ceiling.filter(|c| *c > 0.0) {
            return c;
        }
        let held = &mut self.held[chart as usize];
        *held = held.max(auto);
        *held
    }

    /// Between automatic and fixed; a fixed scale starts from what is shown now.
    pub fn toggle(&mut self) {
        self.fixed = !self.fixed;
        self.held = [0.0; 7];
    }
}

/// The round number (1, 1.5, 2, 3, 4, 5, 6 or 8 times a power of ten) at or above `v`;
/// at least 1.
pub fn round_up(v: f64) -> f64 {
    if !v.is_finite() || v <= 1.0 {
        return 1.0;
    }
    let power = 10f64.powf(v.log10().floor());
    [1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|&top| top >= v * (1.0 - 1e-12))
        .unwrap_or(10.0 * power)
}

/// What the frame loop does after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing to do (the key is not bound).
    None,
    /// The view changed: draw again.
    Redraw,
    /// Run or pause the workload.
    ToggleRun,
    /// Zero the engine's statistics.
    ResetStats,
    /// Apply the edited configuration (live fields at once, the rest by a reopen).
    Apply,
    /// Switch to the preset (what `Preset::load` takes).
    SwitchPreset(String),
    /// Write the snippet and the preset file.
    Export,
    /// Search for the best configuration inside this budget (the text `tune --budget`
    /// takes).
    StartTune(String),
    /// Stop the search; what it found stays.
    StopTune,
    /// Apply the configuration of this trial of the search.
    ApplyTrial(usize),
    /// Close the store and leave.
    Quit,
}

/// Every key and what it does, for the help overlay.
pub const KEYS: [(&str, &str); 21] = [
    ("q  Ctrl-C", "quit (closes the store cleanly)"),
    ("?", "this help (Esc closes it)"),
    ("Tab  Shift-Tab", "next / previous pane"),
    ("1-9 0", "go to a pane"),
    ("j k  Down Up", "scroll the table / select a field"),
    ("g  G", "top / bottom of the table"),
    ("space", "run / pause the workload"),
    ("s", "latency pane: append or sync latency"),
    ("f", "charts: fixed scale (compare runs) / auto scale"),
    ("r", "reset the engine's statistics"),
    ("/", "causal: search an entity (Enter sets, Esc clears)"),
    (
        "Enter  Esc",
        "causal: show the event's tree / jump; Esc back",
    ),
    ("p", "switch preset (Enter picks, Esc closes)"),
    ("e", "export snippet + preset file, offer to clipboard"),
    ("Enter", "config: type a value (Enter sets, Esc drops)"),
    ("+  -", "config: double / halve, toggle sync mode"),
    ("a", "config: apply (live now, others by a reopen)"),
    ("t  x  b", "tune: search / stop / edit the budget"),
    ("Enter", "tune: apply the picked point (j k pick it)"),
    ("", ""),
    ("", "--color, NO_COLOR, --ascii: see --help"),
];

/// The causal pane's view state.
#[derive(Debug, Clone, Default)]
pub struct CausalUi {
    /// Selected row of the list or of the tree.
    pub selected: usize,
    /// The event whose tree is shown.
    pub focus: Option<u64>,
    /// Select the focused event once its tree is built (after Enter).
    pub select_focus: bool,
    /// The entity the list is limited to.
    pub entity: Option<String>,
    /// The entity being typed after `/`.
    pub search: Option<String>,
}

/// The preset picker overlay.
#[derive(Debug, Clone)]
pub struct Picker {
    pub items: Vec<PresetSource>,
    pub selected: usize,
    /// The preset picked while the config holds edits: switching drops them, so the
    /// picker asks first (Enter switches, Esc keeps the edits and closes the picker).
    pub confirm: Option<PresetSource>,
}

/// The view state.
#[derive(Debug, Clone)]
pub struct App {
    pub pane: Pane,
    pub help: bool,
    pub latency: LatencyKind,
    /// First row shown in each pane's table.
    pub scroll: [usize; 10],
    pub config: ConfigState,
    pub tune: super::tuning::TuneUi,
    pub causal: CausalUi,
    /// Where presets are looked for besides the built-ins and `./presets/`.
    pub presets_dir: Option<std::path::PathBuf>,
    pub picker: Option<Picker>,
    /// The last export, shown until Esc.
    pub exported: Option<Exported>,
    /// The charts' scales.
    pub scales: Scales,
    /// A one-off outcome (a preset switch) said in the status line until the next key.
    pub notice: Option<String>,
}

impl App {
    pub fn new(config: ConfigState) -> Self {
        Self {
            pane: Pane::Overview,
            help: false,
            latency: LatencyKind::Append,
            scroll: [0; 10],
            tune: super::tuning::TuneUi {
                budget: format!(
                    "loss<={}",
                    config.applied.store.sync_every_n_events.saturating_sub(1)
                ),
                ..Default::default()
            },
            config,
            causal: CausalUi::default(),
            presets_dir: None,
            picker: None,
            exported: None,
            scales: Scales::default(),
            notice: None,
        }
    }
}

impl App {
    /// Applies one key press; `model` says which event a causal row is.
    pub fn on_key(&mut self, key: KeyEvent, model: &Model) -> Action {
        if key.kind == KeyEventKind::Release {
            return Action::None;
        }
        self.notice = None;
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && key.code == KeyCode::Char('c') {
            return Action::Quit;
        }
        if self.config.input.is_some() {
            return self.typing(key.code);
        }
        if self.tune.input.is_some() {
            return self.budget_typing(key.code);
        }
        if self.causal.search.is_some() {
            return self.searching(key.code);
        }
        if self.picker.is_some() {
            return self.picking(key.code);
        }
        if self.pane == Pane::Config {
            if let Some(a) = self.config_key(key.code) {
                return a;
            }
        }
        if self.pane == Pane::Tune && !self.help {
            if let Some(a) = self.tune_key(key.code, model) {
                return a;
            }
        }
        if self.pane == Pane::Causal && !self.help {
            if let Some(a) = self.causal_key(key.code, model) {
                return a;
            }
        }
        match key.code {
            KeyCode::Char('q') => Action::Quit,
            KeyCode::Esc if self.help => self.redraw(|a| a.help = false),
            KeyCode::Esc if self.exported.is_some() => self.redraw(|a| a.exported = None),
            KeyCode::Char('p') => self.redraw(|a| {
                a.picker = Some(Picker {
                    items: super::files::presets(a.presets_dir.as_deref()),
                    selected: 0,
                    confirm: None,
                })
            }),
            KeyCode::Char('e') => Action::Export,
            KeyCode::Char('/') => self.redraw(|a| {
                a.pane = Pane::Causal;
                a.causal.search = Some(String::new());
            }),
            KeyCode::Char('?') => self.redraw(|a| a.help = !a.help),
            KeyCode::Tab => self.redraw(|a| a.step(1)),
            KeyCode::BackTab => self.redraw(|a| a.step(Pane::ALL.len() - 1)),
            KeyCode::Char(c @ '0'..='9') => {
                let i = (c as usize + 9 - '0' as usize) % 10;
                self.redraw(|a| a.pane = Pane::ALL[i])
            }
            KeyCode::Char('j') | KeyCode::Down => self.redraw(|a| a.scroll_by(1)),
            KeyCode::Char('k') | KeyCode::Up => self.redraw(|a| a.scroll_by(-1)),
            KeyCode::Char('g') | KeyCode::Home => self.redraw(|a| a.scroll[a.pane.index()] = 0),
            KeyCode::Char('G') | KeyCode::End => {
                self.redraw(|a| a.scroll[a.pane.index()] = usize::MAX / 2)
            }
            KeyCode::Char(' ') => Action::ToggleRun,
            KeyCode::Char('f') => self.redraw(|a| a.scales.toggle()),
            KeyCode::Char('r') => Action::ResetStats,
            KeyCode::Char('s') if self.pane == Pane::Latency => self.redraw(|a| {
                a.latency = match a.latency {
                    LatencyKind::Append => LatencyKind::Sync,
                    LatencyKind::Sync => LatencyKind::Append,
                }
            }),
            _ => Action::None,
        }
    }

    /// Keys of the config pane (others fall through to the global ones).
    fn config_key(&mut self, code: KeyCode) -> Option<Action> {
        let c = &mut self.config;
        let last = FIELDS.len() - 1;
        match code {
            KeyCode::Char('j') | KeyCode::Down => c.selected = (c.selected + 1).min(last),
            KeyCode::Char('k') | KeyCode::Up => c.selected = c.selected.saturating_sub(1),
            KeyCode::Char('g') | KeyCode::Home => c.selected = 0,
            KeyCode::Char('G') | KeyCode::End => c.selected = last,
            KeyCode::Enter => c.begin_input(),
            KeyCode::Char('+') | KeyCode::Char('=') => c.step(true),
            KeyCode::Char('-') => c.step(false),
            KeyCode::Char('a') => return Some(Action::Apply),
            _ => return None,
        }
        Some(Action::Redraw)
    }

    /// Keys of the causal pane: move, open a tree or jump within it, go back.
    fn causal_key(&mut self, code: KeyCode, model: &Model) -> Option<Action> {
        let c = &mut self.causal;
        let rows = causal_rows(model);
        match code {
            KeyCode::Char('j') | KeyCode::Down => {
                c.selected = (c.selected + 1).min(rows.len().saturating_sub(1));
            }
            KeyCode::Char('k') | KeyCode::Up => c.selected = c.selected.saturating_sub(1),
            KeyCode::Char('g') | KeyCode::Home => c.selected = 0,
            KeyCode::Char('G') | KeyCode::End => c.selected = rows.len().saturating_sub(1),
            KeyCode::Enter => {
                let seq = rows.get(c.selected.min(rows.len().saturating_sub(1)))?;
                c.focus = Some(*seq);
                c.select_focus = true;
            }
            KeyCode::Esc if c.focus.is_some() => {
                c.focus = None;
                c.selected = 0;
            }
            KeyCode::Esc if c.entity.is_some() => {
                c.entity = None;
                c.selected = 0;
            }
            _ => return None,
        }
        Some(Action::Redraw)
    }

    /// Keys of the tune pane: search, stop, budget, pick and apply a point.
    fn tune_key(&mut self, code: KeyCode, model: &Model) -> Option<Action> {
        let front = model.tune.front().len();
        let t = &mut self.tune;
        match code {
            KeyCode::Char('t') if !model.tune.running => {
                t.moved = false;
                return Some(Action::StartTune(t.budget.clone()));
            }
            KeyCode::Char('x') if model.tune.running => return Some(Action::StopTune),
            KeyCode::Char('b') => t.input = Some(t.budget.clone()),
            KeyCode::Char('j') | KeyCode::Down => {
                t.selected = (t.selected + 1).min(front.saturating_sub(1));
                t.moved = true;
            }
            KeyCode::Char('k') | KeyCode::Up => {
                t.selected = t.selected.saturating_sub(1);
                t.moved = true;
            }
            KeyCode::Enter => {
                let trial = model.tune.front().get(t.selected).map(|p| p.trial)?;
                return Some(Action::ApplyTrial(trial));
            }
            _ => return None,
        }
        Some(Action::Redraw)
    }

    /// Keys while the tune budget is typed after `b`.
    fn budget_typing(&mut self, code: KeyCode) -> Action {
        let t = &mut self.tune;
        match edit_line(&mut t.input, code, 120) {
            Typed::Done(text) => match crate::tune::Budget::parse(&text) {
                Ok(_) => t.budget = text.trim().to_string(),
                Err(e) => self.notice = Some(e),
            },
            Typed::Ignored => return Action::None,
            Typed::Edited => {}
        }
        Action::Redraw
    }

    /// Keys while an entity is typed after `/`.
    fn searching(&mut self, code: KeyCode) -> Action {
        let c = &mut self.causal;
        match edit_line(&mut c.search, code, 128) {
            Typed::Done(text) => {
                c.entity = (!text.trim().is_empty()).then(|| text.trim().to_string());
                c.focus = None;
                c.selected = 0;
            }
            Typed::Ignored => return Action::None,
            Typed::Edited => {}
        }
        Action::Redraw
    }

    /// Keys while a value is typed: everything goes into the text.
    fn typing(&mut self, code: KeyCode) -> Action {
        let c = &mut self.config;
        match edit_line(&mut c.input, code, 64) {
            Typed::Done(text) => c.set_typed(&text),
            Typed::Ignored => return Action::None,
            Typed::Edited => {}
        }
        Action::Redraw
    }

    /// Keys of the preset picker.
    fn picking(&mut self, code: KeyCode) -> Action {
        let edits = !self.config.edits().is_empty();
        let Some(p) = self.picker.as_mut() else {
            return Action::None;
        };
        if let Some(chosen) = &p.confirm {
            match code {
                KeyCode::Enter | KeyCode::Char('y') => {
                    let value = chosen.value.clone();
                    self.picker = None;
                    return Action::SwitchPreset(value);
                }
                KeyCode::Esc | KeyCode::Char('n') => self.picker = None,
                _ => return Action::None,
            }
            return Action::Redraw;
        }
        match code {
            KeyCode::Char('j') | KeyCode::Down => {
                p.selected = (p.selected + 1).min(p.items.len().saturating_sub(1));
            }
            KeyCode::Char('k') | KeyCode::Up => p.selected = p.selected.saturating_sub(1),
            KeyCode::Enter => {
                let chosen = p.items.get(p.selected).cloned();
                if edits && chosen.is_some() {
                    p.confirm = chosen;
                    return Action::Redraw;
                }
                self.picker = None;
                return chosen.map_or(Action::Redraw, |c| Action::SwitchPreset(c.value));
            }
            KeyCode::Esc | KeyCode::Char('p') | KeyCode::Char('q') => self.picker = None,
            _ => return Action::None,
        }
        Action::Redraw
    }

    fn redraw(&mut self, f: impl FnOnce(&mut Self)) -> Action {
        f(self);
        Action::Redraw
    }

    fn step(&mut self, by: usize) {
        self.pane = Pane::ALL[(self.pane.index() + by) % Pane::ALL.len()];
    }

    fn scroll_by(&mut self, by: isize) {
        let s = &mut self.scroll[self.pane.index()];
        *s = s.saturating_add_signed(by);
    }

    /// The first row of the current pane's table, kept within `rows` rows of which
    /// `visible` fit (the stored value is clamped too, so `k` works at once after `G`).
    pub fn first_row(&mut self, pane: Pane, rows: usize, visible: usize) -> usize {
        let s = &mut self.scroll[pane.index()];
        *s = (*s).min(rows.saturating_sub(visible));
        *s
    }
}

/// What a key did to a line being typed.
enum Typed {
    /// Enter: the line, taken out.
    Done(String),
    /// Typed into, or dropped with Esc.
    Edited,
    /// Not a key for typing.
    Ignored,
}

/// One key on the line being typed in `line` (at most `max` bytes; printable only).
fn edit_line(line: &mut Option<String>, code: KeyCode, max: usize) -> Typed {
    match code {
        KeyCode::Enter => return Typed::Done(line.take().unwrap_or_default()),
        KeyCode::Esc => *line = None,
        KeyCode::Backspace => {
            if let Some(t) = line.as_mut() {
                t.pop();
            }
        }
        KeyCode::Char(ch) if !ch.is_control() => {
            if let Some(t) = line.as_mut().filter(|t| t.len() < max) {
                t.push(ch);
            }
        }
        _ => return Typed::Ignored,
    }
    Typed::Edited
}

/// The sequences of the causal pane's rows: the list, or ancestors then the tree.
pub fn causal_rows(model: &Model) -> Vec<u64> {
    let v = &model.causal;
    match &v.focus {
        Some(f) => f
            .ancestors
            .iter()
            .map(|r| r.seq)
            .chain(f.tree.iter().map(|(_, r)| r.seq))
            .collect(),
        None => v.recent.iter().map(|r| r.seq).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyEvent;

    fn app() -> App {
        App::new(ConfigState::new(
            "default",
            batpak_tui::preset::Preset::default(),
        ))
    }

    fn on(a: &mut App, k: KeyEvent) -> Action {
        a.on_key(k, &Model::default())
    }

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn every_binding_does_what_the_help_says() {
        let mut a = app();
        assert_eq!(on(&mut a, key(KeyCode::Char('q'))), Action::Quit);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(on(&mut a, ctrl_c), Action::Quit);
        assert_eq!(on(&mut a, key(KeyCode::Char('?'))), Action::Redraw);
        assert!(a.help);
        on(&mut a, key(KeyCode::Esc));
        assert!(!a.help);
        on(&mut a, key(KeyCode::Tab));
        assert_eq!(a.pane, Pane::Segments);
        on(&mut a, key(KeyCode::BackTab));
        on(&mut a, key(KeyCode::BackTab));
        assert_eq!(a.pane, Pane::Tune, "Shift-Tab wraps around");
        for (i, p) in Pane::ALL.iter().enumerate() {
            let digit = char::from(b'0' + ((i + 1) % 10) as u8);
            on(&mut a, key(KeyCode::Char(digit)));
            assert_eq!(a.pane, *p, "key {digit}");
        }
        on(&mut a, key(KeyCode::Char('2')));
        on(&mut a, key(KeyCode::Char('j')));
        on(&mut a, key(KeyCode::Down));
        assert_eq!(a.scroll[1], 2);
        on(&mut a, key(KeyCode::Char('k')));
        on(&mut a, key(KeyCode::Up));
        on(&mut a, key(KeyCode::Up));
        assert_eq!(a.scroll[1], 0, "scrolling stops at the top");
        on(&mut a, key(KeyCode::Char('G')));
        assert_eq!(
            a.first_row(Pane::Segments, 10, 4),
            6,
            "G shows the last rows"
        );
        on(&mut a, key(KeyCode::Char('g')));
        assert_eq!(a.scroll[1], 0);
        assert_eq!(on(&mut a, key(KeyCode::Char(' '))), Action::ToggleRun);
        assert_eq!(on(&mut a, key(KeyCode::Char('r'))), Action::ResetStats);
        assert_eq!(
            on(&mut a, key(KeyCode::Char('s'))),
            Action::None,
            "s only in the latency pane"
        );
        on(&mut a, key(KeyCode::Char('5')));
        on(&mut a, key(KeyCode::Char('s')));
        assert_eq!(a.latency, LatencyKind::Sync);
        assert_eq!(on(&mut a, key(KeyCode::Char('x'))), Action::None);
        assert_eq!(on(&mut a, key(KeyCode::Char('e'))), Action::Export);
    }

    #[test]
    fn config_keys_select_type_step_and_apply() {
        let mut a = app();
        on(&mut a, key(KeyCode::Char('9')));
        assert_eq!(a.pane, Pane::Config);
        on(&mut a, key(KeyCode::Char('j')));
        on(&mut a, key(KeyCode::Char('j')));
        assert_eq!(a.config.field().path, "fd_budget");
        let before = a.config.edited.store.fd_budget;
        on(&mut a, key(KeyCode::Char('+')));
        assert_eq!(a.config.edited.store.fd_budget, before * 2);
        on(&mut a, key(KeyCode::Enter));
        for _ in 0..5 {
            on(&mut a, key(KeyCode::Backspace));
        }
        for ch in "12q".chars() {
            on(&mut a, key(KeyCode::Char(ch)));
        }
        assert_eq!(
            a.config.input.as_deref(),
            Some("12q"),
            "q is typed, not quit"
        );
        on(&mut a, key(KeyCode::Backspace));
        on(&mut a, key(KeyCode::Enter));
        assert_eq!(a.config.edited.store.fd_budget, 12);
        on(&mut a, key(KeyCode::Enter));
        on(&mut a, key(KeyCode::Esc));
        assert!(a.config.input.is_none(), "Esc drops the typed text");
        assert_eq!(on(&mut a, key(KeyCode::Char('a'))), Action::Apply);
        on(&mut a, key(KeyCode::Char('G')));
        assert_eq!(a.config.field().path, "idempotency_window");
    }

    #[test]
    fn the_preset_picker_lists_the_builtins_and_enter_switches() {
        let mut a = app();
        on(&mut a, key(KeyCode::Char('p')));
        let items = a.picker.as_ref().map(|p| p.items.len()).unwrap_or(0);
        assert!(items >= 3);
        on(&mut a, key(KeyCode::Char('j')));
        on(&mut a, key(KeyCode::Char('j')));
        assert_eq!(
            on(&mut a, key(KeyCode::Enter)),
            Action::SwitchPreset("server".into())
        );
        assert!(a.picker.is_none());
        on(&mut a, key(KeyCode::Char('p')));
        on(&mut a, key(KeyCode::Esc));
        assert!(a.picker.is_none());
    }

    fn row(seq: u64) -> crate::workbench::causal::EventRow {
        crate::workbench::causal::EventRow {
            seq,
            kind: "1.1".into(),
            entity: "order:1".into(),
            scope: "s".into(),
            correlation: 1,
            cause: None,
            payload: "{}".into(),
        }
    }

    #[test]
    fn causal_keys_search_open_a_tree_jump_within_it_and_go_back() {
        let mut a = app();
        let mut m = Model::default();
        m.causal.recent = vec![row(30), row(20), row(10)];
        let press = |a: &mut App, code: KeyCode, m: &Model| a.on_key(key(code), m);
        press(&mut a, KeyCode::Char('/'), &m);
        assert_eq!(a.pane, Pane::Causal);
        for ch in "order:1q".chars() {
            press(&mut a, KeyCode::Char(ch), &m);
        }
        press(&mut a, KeyCode::Backspace, &m);
        press(&mut a, KeyCode::Enter, &m);
        assert_eq!(a.causal.entity.as_deref(), Some("order:1"));
        press(&mut a, KeyCode::Char('j'), &m);
        press(&mut a, KeyCode::Enter, &m);
        assert_eq!(
            a.causal.focus,
            Some(20),
            "Enter opens the selected event's tree"
        );
        m.causal.focus = Some(crate::workbench::causal::Focus {
            ancestors: vec![row(5)],
            tree: vec![(0, row(20)), (1, row(25))],
            ..Default::default()
        });
        for _ in 0..5 {
            press(&mut a, KeyCode::Char('j'), &m);
        }
        assert_eq!(a.causal.selected, 2, "selection stops at the last node");
        press(&mut a, KeyCode::Enter, &m);
        assert_eq!(a.causal.focus, Some(25), "Enter jumps to a node");
        press(&mut a, KeyCode::Esc, &m);
        assert_eq!(a.causal.focus, None);
        press(&mut a, KeyCode::Esc, &m);
        assert_eq!(a.causal.entity, None, "Esc clears the search");
    }

    #[test]
    fn picking_a_preset_with_edits_asks_first_enter_switches_and_esc_keeps_the_edits() {
        let mut a = app();
        a.config.set("fd_budget=128");
        let pick_server = |a: &mut App| {
            on(a, key(KeyCode::Char('p')));
            on(a, key(KeyCode::Char('j')));
            on(a, key(KeyCode::Char('j')));
            on(a, key(KeyCode::Enter))
        };
        assert_eq!(pick_server(&mut a), Action::Redraw, "no switch yet");
        let asked = a.picker.as_ref().and_then(|p| p.confirm.clone());
        assert_eq!(asked.map(|c| c.value), Some("server".to_string()));
        assert_eq!(on(&mut a, key(KeyCode::Esc)), Action::Redraw);
        assert!(a.picker.is_none());
        assert_eq!(a.config.edits().len(), 1, "Esc keeps the edit");
        pick_server(&mut a);
        assert_eq!(
            on(&mut a, key(KeyCode::Enter)),
            Action::SwitchPreset("server".into())
        );
        assert!(a.picker.is_none());
    }

    #[test]
    fn f_switches_every_chart_between_auto_and_fixed_scale() {
        let mut a = app();
        assert!(!a.scales.fixed);
        assert_eq!(on(&mut a, key(KeyCode::Char('f'))), Action::Redraw);
        assert!(a.scales.fixed);
        on(&mut a, key(KeyCode::Char('f')));
        assert!(!a.scales.fixed);
    }

    #[test]
    fn a_fixed_scale_keeps_its_top_so_a_slower_run_draws_shorter() {
        let mut s = Scales::default();
        assert_eq!(s.top(Chart::Throughput, 3_900.0, None), 4_000.0, "auto");
        s.toggle();
        assert_eq!(s.top(Chart::Throughput, 55_000.0, None), 60_000.0);
        assert_eq!(
            s.top(Chart::Throughput, 3_900.0, None),
            60_000.0,
            "the fixed scale keeps the fast run's top"
        );
        assert_eq!(
            s.top(Chart::ChannelDepth, 3.0, Some(4_096.0)),
            4_096.0,
            "a chart with a natural maximum is fixed at it"
        );
        s.toggle();
        assert_eq!(s.top(Chart::Throughput, 3_900.0, None), 4_000.0);
    }

    #[test]
    fn scales_round_up_to_numbers_that_read_well() {
        let tops: Vec<f64> = [0.0, 1.2, 7.0, 151.0, 3_900.0, 55_000.0, 1_234_567.0]
            .into_iter()
            .map(round_up)
            .collect();
        assert_eq!(tops, [1.0, 1.5, 8.0, 200.0, 4_000.0, 60_000.0, 1_500_000.0]);
    }

    #[test]
    fn any_key_clears_a_notice_in_the_status_line() {
        let mut a = app();
        a.notice = Some("switched to server".into());
        on(&mut a, key(KeyCode::Char('x')));
        assert_eq!(a.notice, None);
    }
}
