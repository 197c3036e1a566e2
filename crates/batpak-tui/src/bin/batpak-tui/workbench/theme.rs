//! Colours and symbols: the 16 ANSI colours by default, 256 or true colour on request,
//! none with `NO_COLOR`, and plain ASCII instead of box drawing and block characters.

use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols;

/// How many colours the terminal is asked to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Colors {
    /// No colour (also what `NO_COLOR` selects).
    None,
    /// The 16 ANSI colours (the default: every terminal has them).
    Ansi16,
    /// The 256-colour palette.
    Ansi256,
    /// 24-bit colour.
    Truecolor,
}

/// The colours to use: none when `NO_COLOR` is set to anything but the empty string.
fn resolve(asked: Colors, no_color: Option<&std::ffi::OsStr>) -> Colors {
    if no_color.is_some_and(|v| !v.is_empty()) {
        Colors::None
    } else {
        asked
    }
}

/// Styles and symbols for every pane.
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub colors: Colors,
    pub ascii: bool,
}

/// ASCII borders.
const ASCII_BORDER: symbols::border::Set = symbols::border::Set {
    top_left: "+",
    top_right: "+",
    bottom_left: "+",
    bottom_right: "+",
    vertical_left: "|",
    vertical_right: "|",
    horizontal_top: "-",
    horizontal_bottom: "-",
};

/// ASCII sparkline levels.
const ASCII_BARS: symbols::bar::Set = symbols::bar::Set {
    full: "#",
    seven_eighths: "#",
    three_quarters: "=",
    five_eighths: "=",
    half: "-",
    three_eighths: "-",
    one_quarter: ".",
    one_eighth: ".",
    empty: " ",
};

impl Theme {
    /// `NO_COLOR` (any non-empty value) wins over the flag.
    pub fn new(colors: Colors, ascii: bool) -> Self {
        Self {
            colors: resolve(colors, std::env::var_os("NO_COLOR").as_deref()),
            ascii,
        }
    }

    fn fg(&self, ansi: Color, indexed: u8, rgb: (u8, u8, u8)) -> Style {
        match self.colors {
            Colors::None => Style::default(),
            Colors::Ansi16 => Style::default().fg(ansi),
            Colors::Ansi256 => Style::default().fg(Color::Indexed(indexed)),
            Colors::Truecolor => Style::default().fg(Color::Rgb(rgb.0, rgb.1, rgb.2)),
        }
    }

    pub fn title(&self) -> Style {
        self.fg(Color::Cyan, 44, (80, 200, 220))
            .add_modifier(Modifier::BOLD)
    }

    pub fn good(&self) -> Style {
        self.fg(Color::Green, 35, (90, 200, 120))
    }

    pub fn warn(&self) -> Style {
        self.fg(Color::Yellow, 178, (230, 190, 60))
    }

    pub fn bad(&self) -> Style {
        self.fg(Color::Red, 160, (230, 80, 80))
            .add_modifier(Modifier::BOLD)
    }

    pub fn dim(&self) -> Style {
        match self.colors {
            Colors::None => Style::default(),
            _ => self.fg(Color::DarkGray, 244, (140, 140, 140)),
        }
    }

    pub fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }

    pub fn border(&self) -> symbols::border::Set<'static> {
        if self.ascii {
            ASCII_BORDER
        } else {
            symbols::border::PLAIN
        }
    }

    pub fn bars(&self) -> symbols::bar::Set<'static> {
        if self.ascii {
            ASCII_BARS
        } else {
            symbols::bar::NINE_LEVELS
        }
    }

    /// `unicode`, or `ascii` in ASCII mode.
    pub fn sym(&self, unicode: &'static str, ascii: &'static str) -> &'static str {
        if self.ascii {
            ascii
        } else {
            unicode
        }
    }

    /// A filled / empty cell pair for text gauges.
    pub fn fill(&self) -> (char, char) {
        if self.ascii {
            ('#', '.')
        } else {
            ('█', '░')
        }
    }

    /// A gauge of `width` cells for a fraction 0..=1.
    pub fn gauge(&self, fraction: f64, width: usize) -> String {
        let (full, empty) = self.fill();
        let n = ((fraction.clamp(0.0, 1.0)) * width as f64).round() as usize;
        std::iter::repeat_n(full, n)
            .chain(std::iter::repeat_n(empty, width - n.min(width)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_turns_colours_off_unless_empty() {
        let set = std::ffi::OsStr::new("1");
        let empty = std::ffi::OsStr::new("");
        assert_eq!(resolve(Colors::Truecolor, Some(set)), Colors::None);
        assert_eq!(resolve(Colors::Ansi256, Some(empty)), Colors::Ansi256);
        assert_eq!(resolve(Colors::Ansi16, None), Colors::Ansi16);
        let plain = Theme {
            colors: Colors::None,
            ascii: true,
        };
        assert_eq!(plain.bad().fg, None, "no colour without colours");
        assert_eq!(plain.gauge(0.5, 4), "##..");
    }
}
