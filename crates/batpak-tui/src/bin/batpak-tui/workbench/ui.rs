//! The frame: tabs and one pane at 80x24, a dashboard grid on big terminals, the status
//! line, the help overlay, and a clear message when the terminal is too small.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Row, Table, Tabs, Wrap};
use ratatui::Frame;

use super::app::{App, Pane, Picker, KEYS};
use super::config::describe;
use super::files::{Exported, PresetSource};
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
    let [tabs, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    // The tab bar says which pane the keys act on, in the grid too.
    tab_bar(f, tabs, app, cx);
    if area.width >= GRID.0 && area.height >= GRID.1 {
        grid(f, body, app, cx);
    } else {
        panes::draw(f, body, app.pane, app, cx);
    }
    status_line(f, status, app, cx);
    if let Some(p) = &app.picker {
        match &p.confirm {
            Some(chosen) => confirm_switch(f, area, chosen, app, cx),
            None => picker(f, area, p, cx),
        }
    } else if let Some(e) = &app.exported {
        exported(f, area, e, cx);
    }
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
            Pane::System => "Sys",
            Pane::Config => "Conf",
            Pane::Fd => "FD",
            Pane::Channel => "Chan",
            Pane::Latency => "Lat",
            Pane::Segments => "Segs",
            Pane::Causal => "Causal",
            Pane::Overview => "Over",
            other => other.title(),
        };
        format!("{} {short}", (i + 1) % 10)
    });
    let selected = Pane::ALL.iter().position(|p| *p == app.pane);
    let tabs = Tabs::new(titles)
        .select(selected)
        .highlight_style(cx.theme.selected())
        .padding(" ", "")
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
    let cells = [
        (Pane::Overview, a),
        (Pane::Latency, b),
        (Pane::Segments, c),
        (Pane::Fd, d),
        (Pane::Channel, e),
    ];
    for (pane, rect) in cells {
        panes::draw(f, rect, pane, app, cx);
    }
    // The config, causal and tune panes, when selected, take the bottom row.
    if matches!(app.pane, Pane::Config | Pane::Causal | Pane::Tune) {
        return panes::draw(f, bottom, app.pane, app, cx);
    }
    let [g, h] = Layout::horizontal([Constraint::Percentage(50); 2]).areas(bottom);
    panes::draw(f, g, Pane::Gates, app, cx);
    panes::draw(f, h, Pane::System, app, cx);
}

fn status_line(f: &mut Frame<'_>, area: Rect, app: &App, cx: &Ctx<'_>) {
    let (s, th) = (&cx.model.sample, &cx.theme);
    let mut spans = vec![
        Span::styled(format!(" {} ", clean(&s.dir, 40)), th.title()),
        Span::raw(format!("preset {}  ", clean(&s.preset, 24))),
    ];
    spans.push(if s.running {
        Span::styled("RUNNING", th.good())
    } else {
        // A notice needs the room of the hint.
        let hint = if app.notice.is_some() {
            ""
        } else {
            " (space runs)"
        };
        Span::styled(format!("PAUSED{hint}"), th.warn())
    });
    if let Some(why) = &s.workload_stopped {
        spans.push(Span::styled(
            format!("  stopped: {}", clean(why, 60)),
            th.bad(),
        ));
    }
    let (pending, reopen) = app.config.pending();
    if !pending.is_empty() {
        spans.push(Span::styled(
            format!(
                "  {} unapplied, {} need a reopen",
                pending.len(),
                reopen.len()
            ),
            th.warn(),
        ));
    }
    if let Some(p) = &s.poisoned {
        spans.push(Span::styled(
            format!("  POISONED: {}", clean(p, 60)),
            th.bad(),
        ));
    }
    match &app.notice {
        Some(n) => spans.push(Span::styled(format!("  {}", clean(n, 80)), th.warn())),
        None => spans.push(Span::styled("  ? help  q quit", th.dim())),
    }
    f.render_widget(Line::from(spans), area);
}

/// The key table, as wide as its longest line (never cut: 80x24 holds it).
fn help(f: &mut Frame<'_>, area: Rect, cx: &Ctx<'_>) {
    let keys = KEYS
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0) as u16;
    let what = KEYS
        .iter()
        .map(|(_, w)| w.chars().count())
        .max()
        .unwrap_or(0) as u16;
    let rect = centred(area, keys + 1 + what + 2, KEYS.len() as u16 + 2);
    let rows = KEYS
        .iter()
        .map(|(k, what)| Row::new(vec![Span::styled(*k, cx.theme.title()), Span::raw(*what)]));
    let table = Table::new(rows, [Constraint::Length(keys), Constraint::Min(10)])
        .block(block("Keys".into(), &cx.theme));
    f.render_widget(Clear, rect);
    f.render_widget(table, rect);
}

/// A centred rectangle of at most `w`×`h`.
fn centred(area: Rect, w: u16, h: u16) -> Rect {
    let (w, h) = (w.min(area.width), h.min(area.height));
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

fn picker(f: &mut Frame<'_>, area: Rect, p: &Picker, cx: &Ctx<'_>) {
    let rect = centred(area, 60, p.items.len() as u16 + 2);
    let rows = p.items.iter().enumerate().map(|(i, s)| {
        let row = Row::new(vec![Span::raw(clean(&s.label, 56))]);
        if i == p.selected {
            row.style(cx.theme.selected())
        } else {
            row
        }
    });
    let table = Table::new(rows, [Constraint::Min(10)]).block(block(
        "Preset: Enter switches (reopens the store)".into(),
        &cx.theme,
    ));
    f.render_widget(Clear, rect);
    f.render_widget(table, rect);
}

/// Switching presets drops the edits: said before it happens.
fn confirm_switch(f: &mut Frame<'_>, area: Rect, chosen: &PresetSource, app: &App, cx: &Ctx<'_>) {
    let th = &cx.theme;
    let text = vec![
        Line::from(format!(
            "Switching to {} reopens the store with its values",
            clean(&chosen.value, 40),
        )),
        Line::from(format!("and drops {}.", describe(&app.config.edits()))),
        Line::from(""),
        Line::from(Span::styled(
            "Enter switches   Esc keeps the edits (then e exports them)",
            th.dim(),
        )),
    ];
    let width = area.width.saturating_sub(8).min(72);
    let inner = width.saturating_sub(2).max(1) as usize;
    let lines: usize = text.iter().map(|l| l.width().div_ceil(inner).max(1)).sum();
    let rect = centred(area, width, lines as u16 + 2);
    f.render_widget(Clear, rect);
    f.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: true })
            .block(block("Switch preset and drop the edits?".into(), th)),
        rect,
    );
}

fn exported(f: &mut Frame<'_>, area: Rect, e: &Exported, cx: &Ctx<'_>) {
    let mut lines: Vec<Line<'_>> = e
        .snippet
        .lines()
        .map(|l| Line::from(clean(l, 120)))
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        format!(
            "written to {} and {}",
            e.rust_file.display(),
            e.toml_file.display()
        ),
        cx.theme.good(),
    )));
    for b in &e.backups {
        lines.push(Line::from(Span::styled(
            format!("kept {}", b.display()),
            cx.theme.dim(),
        )));
    }
    lines.push(Line::from(Span::styled(
        "offered to the clipboard (OSC 52); Esc closes",
        cx.theme.dim(),
    )));
    let rect = centred(area, area.width.saturating_sub(4), lines.len() as u16 + 2);
    f.render_widget(Clear, rect);
    f.render_widget(
        Paragraph::new(lines).block(block("Export".into(), &cx.theme)),
        rect,
    );
}
