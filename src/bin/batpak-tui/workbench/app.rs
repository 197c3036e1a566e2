//! The workbench's state and what each key does. Nothing here draws.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

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
}

impl Pane {
    pub const ALL: [Pane; 7] = [
        Pane::Overview,
        Pane::Segments,
        Pane::Fd,
        Pane::Channel,
        Pane::Latency,
        Pane::Gates,
        Pane::System,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing to do (the key is not bound).
    None,
    /// The view changed: draw again.
    Redraw,
    /// Run or pause the workload.
    ToggleRun,
    /// Zero the engine's statistics.
    ResetStats,
    /// Close the store and leave.
    Quit,
}

/// Every key and what it does, for the help overlay.
pub const KEYS: [(&str, &str); 11] = [
    ("q  Ctrl-C", "quit (closes the store cleanly)"),
    ("?", "this help (Esc closes it)"),
    ("Tab  Shift-Tab", "next / previous pane"),
    ("1-7", "go to a pane"),
    ("j k  ↓ ↑", "scroll the pane's table"),
    ("g  G", "top / bottom of the table"),
    ("space", "run / pause the workload"),
    ("s", "latency pane: append or sync latency"),
    ("r", "reset the engine's statistics"),
    ("", ""),
    ("", "--color, NO_COLOR, --ascii: see --help"),
];

/// The view state.
#[derive(Debug, Clone)]
pub struct App {
    pub pane: Pane,
    pub help: bool,
    pub latency: LatencyKind,
    /// First row shown in each pane's table.
    pub scroll: [usize; 7],
}

impl Default for App {
    fn default() -> Self {
        Self {
            pane: Pane::Overview,
            help: false,
            latency: LatencyKind::Append,
            scroll: [0; 7],
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
        match key.code {
            KeyCode::Char('c') if ctrl => Action::Quit,
            KeyCode::Char('q') => Action::Quit,
            KeyCode::Esc if self.help => self.redraw(|a| a.help = false),
            KeyCode::Char('?') => self.redraw(|a| a.help = !a.help),
            KeyCode::Tab => self.redraw(|a| a.step(1)),
            KeyCode::BackTab => self.redraw(|a| a.step(Pane::ALL.len() - 1)),
            KeyCode::Char(c @ '1'..='7') => {
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

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn every_binding_does_what_the_help_says() {
        let mut a = App::default();
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
        assert_eq!(a.pane, Pane::System, "Shift-Tab wraps around");
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
    }
}
