//! The panes. Each draws one part of the [`Model`] into an area; none keeps engine state.

mod causal;
mod config;
mod engine;
mod flow;
mod people;

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Sparkline};
use ratatui::Frame;

use super::app::{App, Pane};
use super::model::Model;
use super::theme::Theme;

/// What every pane draws from.
pub struct Ctx<'a> {
    pub model: &'a Model,
    pub theme: Theme,
}

/// Draws `pane` into `area`.
pub fn draw(f: &mut Frame<'_>, area: Rect, pane: Pane, app: &mut App, cx: &Ctx<'_>) {
    match pane {
        Pane::Overview => engine::overview(f, area, cx),
        Pane::Segments => engine::segments(f, area, app, cx),
        Pane::Fd => engine::fd(f, area, cx),
        Pane::Channel => flow::channel(f, area, cx),
        Pane::Latency => flow::latency(f, area, app, cx),
        Pane::Causal => causal::causal(f, area, app, cx),
        Pane::Gates => people::gates(f, area, app, cx),
        Pane::System => people::system(f, area, cx),
        Pane::Config => config::config(f, area, app, cx),
    }
}

/// A bordered block titled like the pane.
pub fn block<'a>(title: String, th: &Theme) -> Block<'a> {
    Block::bordered()
        .border_set(th.border())
        .title(Span::styled(format!(" {title} "), th.title()))
}

/// Draws the pane's frame and returns the area inside it.
pub fn framed(f: &mut Frame<'_>, area: Rect, title: String, th: &Theme) -> Rect {
    let outer = block(title, th);
    let inner = outer.inner(area);
    f.render_widget(outer, area);
    inner
}

/// A gauge coloured by its fill, then `text`, within `room` cells: the gauge takes what
/// the text leaves, 4 to 20 cells.
pub fn gauge_line<'a>(fill: f64, room: u16, text: String, th: &Theme) -> Line<'a> {
    let width = (room as usize)
        .saturating_sub(text.chars().count())
        .clamp(4, 20);
    Line::from(vec![
        Span::styled(th.gauge(fill, width), level(fill, th)),
        Span::raw(text),
    ])
}

/// A sparkline of the newest values that fit `width`.
pub fn spark<'a>(
    values: &'a std::collections::VecDeque<u64>,
    width: u16,
    th: &Theme,
) -> Sparkline<'a> {
    let skip = values.len().saturating_sub(width as usize);
    let data: Vec<u64> = values.iter().skip(skip).copied().collect();
    Sparkline::default()
        .data(data)
        .bar_set(th.bars())
        .style(th.good())
}

/// `label value` with the label dimmed.
pub fn kv<'a>(label: &'a str, value: String, th: &Theme) -> Vec<Span<'a>> {
    vec![
        Span::styled(label, th.dim()),
        Span::raw(" "),
        Span::raw(value),
        Span::raw("   "),
    ]
}

/// One line of spans.
pub fn line<'a>(spans: Vec<Vec<Span<'a>>>) -> Line<'a> {
    Line::from(spans.into_iter().flatten().collect::<Vec<_>>())
}

/// `1234567` → `1,234,567`.
pub fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate with a unit suffix: `12.3k/s`.
pub fn rate(v: f64) -> String {
    match v {
        v if v >= 1e6 => format!("{:.2}M/s", v / 1e6),
        v if v >= 1e4 => format!("{:.1}k/s", v / 1e3),
        v if v >= 100.0 => format!("{v:.0}/s"),
        v => format!("{v:.1}/s"),
    }
}

/// Microseconds as µs, ms or s.
pub fn micros(us: u64) -> String {
    match us {
        0..1_000 => format!("{us} µs"),
        1_000..1_000_000 => format!("{:.1} ms", us as f64 / 1e3),
        _ => format!("{:.2} s", us as f64 / 1e6),
    }
}

/// The style for a fill level: fine, getting full, full.
pub fn level(fraction: f64, th: &Theme) -> Style {
    if fraction >= 0.9 {
        th.bad()
    } else if fraction >= 0.6 {
        th.warn()
    } else {
        th.good()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_like_a_person_writes_them() {
        assert_eq!(count(0), "0");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(rate(1_234_567.0), "1.23M/s");
        assert_eq!(rate(45_600.0), "45.6k/s");
        assert_eq!(rate(3.25), "3.2/s");
        assert_eq!(micros(850), "850 µs");
        assert_eq!(micros(1_500), "1.5 ms");
        assert_eq!(micros(2_500_000), "2.50 s");
    }
}
