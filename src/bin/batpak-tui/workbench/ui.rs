//! The frame: tabs and one pane at 80x24, a dashboard grid on big terminals, the status
//! line, the help overlay, and a clear message when the terminal is too small.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Row, Table, Tabs};
use ratatui::Frame;

use super::app::{App, Pane, KEYS};
use super::panes::{self, block, Ctx};
use super::text::clean;

/// The smallest terminal the workbench draws in.
pub const MIN: (u16, u16) = (80, 24);
/// From this size on, every pane is shown at once.
pub const GRID: (u16, u16) = (160, 48);

/// Draws the whole frame.
pub fn draw(f: &mut Frame<'_>, app: &mut App, cx: &Ctx<'_>) {
    let area = f.area();
    if area.width < MIN.0 || area.height < MIN.1 {
        return too_small(f, area);
    }
    let [body, status] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area);
    if area.width >= GRID.0 && area.height >= GRID.1 {
        grid(f, body, app, cx);
    } else {
        let [tabs, pane] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(body);
        tab_bar(f, tabs, app, cx);
        panes::draw(f, pane, app.pane, app, cx);
    }
    status_line(f, status, cx);
    if app.help {
        help(f, area, cx);
    }
}

fn too_small(f: &mut Frame<'_>, area: Rect) {
    let text = vec![
        Line::from(format!("batpak-tui needs {}×{},", MIN.0, MIN.1)),
        Line::from(format!("has {}×{}.", area.width, area.height)),
        Line::from("Enlarge the terminal; q quits."),
    ];
    f.render_widget(Paragraph::new(text), area);
}

fn tab_bar(f: &mut Frame<'_>, area: Rect, app: &App, cx: &Ctx<'_>) {
    let titles = Pane::ALL.iter().enumerate().map(|(i, p)| {
        let short = match p {
            Pane::System => "System",
            Pane::Fd => "FD",
            other => other.title(),
        };
        format!("{} {short}", i + 1)
    });
    let selected = Pane::ALL.iter().position(|p| *p == app.pane);
    let tabs = Tabs::new(titles)
        .select(selected)
        .highlight_style(cx.theme.selected())
        .divider(if cx.theme.ascii { "|" } else { "│" });
    f.render_widget(tabs, area);
}

fn grid(f: &mut Frame<'_>, area: Rect, app: &mut App, cx: &Ctx<'_>) {
    let [top, mid, bottom] = Layout::vertical([
        Constraint::Percentage(34),
        Constraint::Percentage(33),
        Constraint::Percentage(33),
    ])
    .areas(area);
    let [a, b] = Layout::horizontal([Constraint::Percentage(50); 2]).areas(top);
    let [c, d, e] = Layout::horizontal([
        Constraint::Percentage(50),
        Constraint::Percentage(25),
        Constraint::Percentage(25),
    ])
    .areas(mid);
    let [g, h] = Layout::horizontal([Constraint::Percentage(50); 2]).areas(bottom);
    let cells = [
        (Pane::Overview, a),
        (Pane::Latency, b),
        (Pane::Segments, c),
        (Pane::Fd, d),
        (Pane::Channel, e),
        (Pane::Gates, g),
        (Pane::System, h),
    ];
    for (pane, rect) in cells {
        panes::draw(f, rect, pane, app, cx);
    }
}

fn status_line(f: &mut Frame<'_>, area: Rect, cx: &Ctx<'_>) {
    let (s, th) = (&cx.model.sample, &cx.theme);
    let mut spans = vec![
        Span::styled(format!(" {} ", clean(&s.dir, 40)), th.title()),
        Span::raw(format!("preset {}  ", clean(&s.preset, 24))),
    ];
    spans.push(if s.running {
        Span::styled("RUNNING", th.good())
    } else {
        Span::styled("PAUSED (space runs)", th.warn())
    });
    if let Some(why) = &s.workload_stopped {
        spans.push(Span::styled(
            format!("  stopped: {}", clean(why, 60)),
            th.bad(),
        ));
    }
    if let Some(p) = &s.poisoned {
        spans.push(Span::styled(
            format!("  POISONED: {}", clean(p, 60)),
            th.bad(),
        ));
    }
    spans.push(Span::styled("  ? help  q quit", th.dim()));
    f.render_widget(Line::from(spans), area);
}

fn help(f: &mut Frame<'_>, area: Rect, cx: &Ctx<'_>) {
    let w = 62.min(area.width);
    let h = (KEYS.len() as u16 + 2).min(area.height);
    let rect = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    let rows = KEYS
        .iter()
        .map(|(k, what)| Row::new(vec![Span::styled(*k, cx.theme.title()), Span::raw(*what)]));
    let table = Table::new(rows, [Constraint::Length(15), Constraint::Min(10)])
        .block(block("Keys".into(), &cx.theme));
    f.render_widget(Clear, rect);
    f.render_widget(table, rect);
}
