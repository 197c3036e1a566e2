//! The workbench's state and what each key does. Nothing here draws.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::config::{ConfigState, FIELDS};
use super::files::{Exported, PresetSource};

/// The panes, in tab order (the digit keys select them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Overview,
    Segments,
    Fd,
    Channel,
    Latency,
    Gates,
    System,
    Config,
}

impl Pane {
    pub const ALL: [Pane; 8] = [
        Pane::Overview,
        Pane::Segments,
        Pane::Fd,
        Pane::Channel,
        Pane::Latency,
        Pane::Gates,
        Pane::System,
        Pane::Config,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Pane::Overview => "Overview",
            Pane::Segments => "Segments",
            Pane::Fd => "FD budget",
            Pane::Channel => "Channel",
            Pane::Latency => "Latency",
            Pane::Gates => "Gates",
            Pane::System => "Subscribers/cache/system",
            Pane::Config => "Config",
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
    /// Close the store and leave.
    Quit,
}

/// Every key and what it does, for the help overlay.
pub const KEYS: [(&str, &str); 16] = [
    ("q  Ctrl-C", "quit (closes the store cleanly)"),
    ("?", "this help (Esc closes it)"),
    ("Tab  Shift-Tab", "next / previous pane"),
    ("1-8", "go to a pane"),
    ("j k  ↓ ↑", "scroll the table / select a field"),
    ("g  G", "top / bottom of the table"),
    ("space", "run / pause the workload"),
    ("s", "latency pane: append or sync latency"),
    ("r", "reset the engine's statistics"),
    ("p", "switch preset (Enter picks, Esc closes)"),
    ("e", "export snippet + preset file, offer to clipboard"),
    ("Enter", "config: type a value (Enter sets, Esc drops)"),
    ("+  -", "config: double / halve, toggle sync mode"),
    ("a", "config: apply (live now, others by a reopen)"),
    ("", ""),
    ("", "--color, NO_COLOR, --ascii: see --help"),
];

/// The preset picker overlay.
#[derive(Debug, Clone)]
pub struct Picker {
    pub items: Vec<PresetSource>,
    pub selected: usize,
}

/// The view state.
#[derive(Debug, Clone)]
pub struct App {
    pub pane: Pane,
    pub help: bool,
    pub latency: LatencyKind,
    /// First row shown in each pane's table.
    pub scroll: [usize; 8],
    pub config: ConfigState,
    /// Where presets are looked for besides the built-ins and `./presets/`.
    pub presets_dir: Option<std::path::PathBuf>,
    pub picker: Option<Picker>,
    /// The last export, shown until Esc.
    pub exported: Option<Exported>,
}

impl App {
    pub fn new(config: ConfigState) -> Self {
        Self {
            pane: Pane::Overview,
            help: false,
            latency: LatencyKind::Append,
            scroll: [0; 8],
            config,
            presets_dir: None,
            picker: None,
            exported: None,
        }
    }
}

impl App {
    /// Applies one key press.
    pub fn on_key(&mut self, key: KeyEvent) -> Action {
        if key.kind == KeyEventKind::Release {
            return Action::None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && key.code == KeyCode::Char('c') {
            return Action::Quit;
        }
        if self.config.input.is_some() {
            return self.typing(key.code);
        }
        if self.picker.is_some() {
            return self.picking(key.code);
        }
        if self.pane == Pane::Config {
            if let Some(a) = self.config_key(key.code) {
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
                })
            }),
            KeyCode::Char('e') => Action::Export,
            KeyCode::Char('?') => self.redraw(|a| a.help = !a.help),
            KeyCode::Tab => self.redraw(|a| a.step(1)),
            KeyCode::BackTab => self.redraw(|a| a.step(Pane::ALL.len() - 1)),
            KeyCode::Char(c @ '1'..='8') => {
                let i = c as usize - '1' as usize;
                self.redraw(|a| a.pane = Pane::ALL[i])
            }
            KeyCode::Char('j') | KeyCode::Down => self.redraw(|a| a.scroll_by(1)),
            KeyCode::Char('k') | KeyCode::Up => self.redraw(|a| a.scroll_by(-1)),
            KeyCode::Char('g') | KeyCode::Home => self.redraw(|a| a.scroll[a.pane.index()] = 0),
            KeyCode::Char('G') | KeyCode::End => {
                self.redraw(|a| a.scroll[a.pane.index()] = usize::MAX / 2)
            }
            KeyCode::Char(' ') => Action::ToggleRun,
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

    /// Keys while a value is typed: everything goes into the text.
    fn typing(&mut self, code: KeyCode) -> Action {
        let c = &mut self.config;
        match code {
            KeyCode::Enter => c.commit_input(),
            KeyCode::Esc => c.input = None,
            KeyCode::Backspace => {
                if let Some(t) = c.input.as_mut() {
                    t.pop();
                }
            }
            KeyCode::Char(ch) if !ch.is_control() => {
                if let Some(t) = c.input.as_mut().filter(|t| t.len() < 64) {
                    t.push(ch);
                }
            }
            _ => return Action::None,
        }
        Action::Redraw
    }

    /// Keys of the preset picker.
    fn picking(&mut self, code: KeyCode) -> Action {
        let Some(p) = self.picker.as_mut() else {
            return Action::None;
        };
        match code {
            KeyCode::Char('j') | KeyCode::Down => {
                p.selected = (p.selected + 1).min(p.items.len().saturating_sub(1));
            }
            KeyCode::Char('k') | KeyCode::Up => p.selected = p.selected.saturating_sub(1),
            KeyCode::Enter => {
                let value = p.items.get(p.selected).map(|s| s.value.clone());
                self.picker = None;
                return value.map_or(Action::Redraw, Action::SwitchPreset);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyEvent;

    fn app() -> App {
        App::new(ConfigState::new(
            "default",
            batpak::preset::Preset::default(),
        ))
    }

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn every_binding_does_what_the_help_says() {
        let mut a = app();
        assert_eq!(a.on_key(key(KeyCode::Char('q'))), Action::Quit);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(a.on_key(ctrl_c), Action::Quit);
        assert_eq!(a.on_key(key(KeyCode::Char('?'))), Action::Redraw);
        assert!(a.help);
        a.on_key(key(KeyCode::Esc));
        assert!(!a.help);
        a.on_key(key(KeyCode::Tab));
        assert_eq!(a.pane, Pane::Segments);
        a.on_key(key(KeyCode::BackTab));
        a.on_key(key(KeyCode::BackTab));
        assert_eq!(a.pane, Pane::Config, "Shift-Tab wraps around");
        for (i, p) in Pane::ALL.iter().enumerate() {
            let digit = char::from(b'1' + i as u8);
            a.on_key(key(KeyCode::Char(digit)));
            assert_eq!(a.pane, *p, "key {digit}");
        }
        a.on_key(key(KeyCode::Char('2')));
        a.on_key(key(KeyCode::Char('j')));
        a.on_key(key(KeyCode::Down));
        assert_eq!(a.scroll[1], 2);
        a.on_key(key(KeyCode::Char('k')));
        a.on_key(key(KeyCode::Up));
        a.on_key(key(KeyCode::Up));
        assert_eq!(a.scroll[1], 0, "scrolling stops at the top");
        a.on_key(key(KeyCode::Char('G')));
        assert_eq!(
            a.first_row(Pane::Segments, 10, 4),
            6,
            "G shows the last rows"
        );
        a.on_key(key(KeyCode::Char('g')));
        assert_eq!(a.scroll[1], 0);
        assert_eq!(a.on_key(key(KeyCode::Char(' '))), Action::ToggleRun);
        assert_eq!(a.on_key(key(KeyCode::Char('r'))), Action::ResetStats);
        assert_eq!(
            a.on_key(key(KeyCode::Char('s'))),
            Action::None,
            "s only in the latency pane"
        );
        a.on_key(key(KeyCode::Char('5')));
        a.on_key(key(KeyCode::Char('s')));
        assert_eq!(a.latency, LatencyKind::Sync);
        assert_eq!(a.on_key(key(KeyCode::Char('x'))), Action::None);
        assert_eq!(a.on_key(key(KeyCode::Char('e'))), Action::Export);
    }

    #[test]
    fn config_keys_select_type_step_and_apply() {
        let mut a = app();
        a.on_key(key(KeyCode::Char('8')));
        assert_eq!(a.pane, Pane::Config);
        a.on_key(key(KeyCode::Char('j')));
        a.on_key(key(KeyCode::Char('j')));
        assert_eq!(a.config.field().path, "fd_budget");
        let before = a.config.edited.store.fd_budget;
        a.on_key(key(KeyCode::Char('+')));
        assert_eq!(a.config.edited.store.fd_budget, before * 2);
        a.on_key(key(KeyCode::Enter));
        for _ in 0..5 {
            a.on_key(key(KeyCode::Backspace));
        }
        for ch in "12q".chars() {
            a.on_key(key(KeyCode::Char(ch)));
        }
        assert_eq!(
            a.config.input.as_deref(),
            Some("12q"),
            "q is typed, not quit"
        );
        a.on_key(key(KeyCode::Backspace));
        a.on_key(key(KeyCode::Enter));
        assert_eq!(a.config.edited.store.fd_budget, 12);
        a.on_key(key(KeyCode::Enter));
        a.on_key(key(KeyCode::Esc));
        assert!(a.config.input.is_none(), "Esc drops the typed text");
        assert_eq!(a.on_key(key(KeyCode::Char('a'))), Action::Apply);
        a.on_key(key(KeyCode::Char('G')));
        assert_eq!(a.config.field().path, "sync_mode");
    }

    #[test]
    fn the_preset_picker_lists_the_builtins_and_enter_switches() {
        let mut a = app();
        a.on_key(key(KeyCode::Char('p')));
        let items = a.picker.as_ref().map(|p| p.items.len()).unwrap_or(0);
        assert!(items >= 3);
        a.on_key(key(KeyCode::Char('j')));
        a.on_key(key(KeyCode::Char('j')));
        assert_eq!(
            a.on_key(key(KeyCode::Enter)),
            Action::SwitchPreset("server".into())
        );
        assert!(a.picker.is_none());
        a.on_key(key(KeyCode::Char('p')));
        a.on_key(key(KeyCode::Esc));
        assert!(a.picker.is_none());
    }
}
