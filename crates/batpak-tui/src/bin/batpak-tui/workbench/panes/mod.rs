//! The panes. Each draws one part of the [`Model`] into an area; none keeps engine state.

mod causal;
mod chart;
mod config;
mod engine;
mod flow;
mod people;
mod tune;

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Block;
use ratatui::Frame;

use super::app::{App, Pane};
use super::model::Model;
use super::theme::Theme;
pub use crate::units::{count, micros, rate};
pub use chart::{axis_line, time_chart, Series};

/// What every pane draws from.
pub struct Ctx<'a> {
    pub model: &'a Model,
    pub theme: Theme,
}

/// Draws `pane` into `area`.
pub fn draw(f: &mut Frame<'_>, area: Rect, pane: Pane, app: &mut App, cx: &Ctx<'_>) {
    match pane {
        Pane::Overview => engine::overview(f, area, app, cx),
        Pane::Segments => engine::segments(f, area, app, cx),
        Pane::Fd => engine::fd(f, area, app, cx),
        Pane::Channel => flow::channel(f, area, app, cx),
        Pane::Latency => flow::latency(f, area, app, cx),
        Pane::Causal => causal::causal(f, area, app, cx),
        Pane::Gates => people::gates(f, area, app, cx),
        Pane::System => people::system(f, area, cx),
        Pane::Config => config::config(f, area, app, cx),
        Pane::Tune => tune::tune(f, area, app, cx),
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
