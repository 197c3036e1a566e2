//! The Tune pane: the configurations a search ran as a scatter chart (throughput against
//! append p99, the p99 budget as a line, inside / outside the budget marked, the
//! configuration in force and the selected one marked), the Pareto front as a list to
//! pick from, and what the pick changes.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use super::{framed, Ctx};
use crate::units::{bytes, count, micros, rate, short};
use crate::workbench::app::{round_up, App};
use crate::workbench::text::clean;
use crate::workbench::theme::Theme;
use crate::workbench::tuning::{TunePoint, TuneView, TIME};

/// Width of the y axis labels.
const LABEL: usize = 7;

pub fn tune(f: &mut Frame<'_>, area: Rect, app: &mut App, cx: &Ctx<'_>) {
    let (v, th) = (&cx.model.tune, &cx.theme);
    let state = if v.running {
        "searching"
    } else if v.started {
        "done"
    } else {
        "idle"
    };
    let inner = framed(
        f,
        area,
        format!("Tune: {state}  [t] search [x] stop [b] budget"),
        th,
    );
    let [head, chart, list, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(6),
        Constraint::Length(6),
        Constraint::Length(3),
    ])
    .areas(inner);
    f.render_widget(Paragraph::new(head_line(app, v, th)), head);
    if !v.started {
        return intro(f, chart.union(list).union(foot), cx);
    }
    let front = v.front();
    // Until the user moves it, the selection follows the search's pick.
    let pick = front.iter().position(|p| Some(p.trial) == v.best);
    let sel = match (app.tune.moved, pick) {
        (false, Some(i)) => i,
        _ => app.tune.selected.min(front.len().saturating_sub(1)),
    };
    app.tune.selected = sel;
    let selected = front.get(sel).map(|p| p.trial);
    scatter(f, chart, v, selected, th);
    f.render_widget(Paragraph::new(list_lines(&front, sel, v, list, th)), list);
    f.render_widget(
        Paragraph::new(foot_lines(front.get(sel).copied(), v, th)).wrap(Wrap { trim: true }),
        foot,
    );
}

fn head_line<'a>(app: &App, v: &TuneView, th: &Theme) -> Line<'a> {
    let budget = match &app.tune.input {
        Some(t) => {
            return Line::from(vec![
                Span::styled("budget: ", th.dim()),
                Span::styled(format!("{t}_"), th.selected()),
                Span::styled("  Enter sets, Esc drops", th.dim()),
            ])
        }
        None if v.started => v.budget.clone(),
        None => app.tune.budget.clone(),
    };
    let budget = if budget.is_empty() {
        "none".to_string()
    } else {
        budget
    };
    Line::from(vec![
        Span::styled("budget ", th.dim()),
        Span::raw(clean(&budget, 40)),
        Span::raw("  "),
        Span::styled(clean(&v.status, 36), th.dim()),
    ])
}

fn intro(f: &mut Frame<'_>, area: Rect, cx: &Ctx<'_>) {
    let th = &cx.theme;
    let dir = format!("{}.tune", cx.model.sample.dir);
    let text = vec![
        Line::from("Which config should this device run? t searches for the fastest one"),
        Line::from("inside the budget, on scratch stores on this disk, with this workload."),
        Line::from(""),
        Line::from(Span::styled(
            "b edits the budget: loss<=100, p99<=2ms, rss<=64MiB, fds<=16, disk<=1GiB,",
            th.dim(),
        )),
        Line::from(Span::styled(
            "wear<=300B (loss in acknowledged events a power cut may take).",
            th.dim(),
        )),
        Line::from(""),
        Line::from(format!(
            "Each config runs as a fresh bench, repeated 3 times, for up to {}",
            crate::units::clock(TIME)
        )),
        Line::from(format!(
            "in {}; the workload here pauses meanwhile.",
            clean(&dir, 50)
        )),
        Line::from("Then j/k pick a point, Enter applies it to this store, e exports it."),
    ];
    f.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
}

/// Which mark a point gets, strongest first.
fn mark(p: &TunePoint, v: &TuneView, selected: Option<usize>, th: &Theme) -> (&'static str, Style) {
    if Some(p.trial) == selected {
        ("@", th.selected())
    } else if Some(p.trial) == v.current {
        ("C", th.title())
    } else if p.feasible {
        (th.sym("●", "*"), th.good())
    } else {
        (th.sym("×", "x"), th.bad())
    }
}

/// Throughput (y) against append p99 (x), one mark per configuration.
fn scatter(f: &mut Frame<'_>, area: Rect, v: &TuneView, selected: Option<usize>, th: &Theme) {
    if area.width < 30 || area.height < 4 {
        return;
    }
    let cols = area.width as usize - LABEL - 1;
    let body = area.height as usize - 2;
    let xmax = round_up(
        v.points
            .iter()
            .map(|p| p.p99_us)
            .chain(v.p99_limit_us)
            .fold(0.0, f64::max)
            * 1.05,
    );
    let ymax = round_up(v.points.iter().map(|p| p.throughput).fold(0.0, f64::max) * 1.05);
    let col = |x: f64| {
        ((x / xmax) * (cols - 1) as f64)
            .round()
            .clamp(0.0, (cols - 1) as f64) as usize
    };
    let row = |y: f64| {
        body - 1
            - ((y / ymax) * (body - 1) as f64)
                .round()
                .clamp(0.0, (body - 1) as f64) as usize
    };
    let mut grid: Vec<Vec<(&str, Style)>> = vec![vec![(" ", Style::default()); cols]; body];
    if let Some(limit) = v.p99_limit_us {
        let c = col(limit);
        for r in &mut grid {
            r[c] = (th.sym("┊", ":"), th.warn());
        }
    }
    // Weakest marks first, so the selected and in-force ones end on top.
    let mut order: Vec<&TunePoint> = v.points.iter().collect();
    let rank = |p: &TunePoint| match mark(p, v, selected, th).0 {
        "@" => 3,
        "C" => 2,
        m if m == th.sym("●", "*") => 1,
        _ => 0,
    };
    order.sort_by_key(|p| rank(p));
    for p in order {
        grid[row(p.throughput)][col(p.p99_us)] = mark(p, v, selected, th);
    }
    let mut lines = vec![Line::from(Span::styled(
        format!(
            "events/s vs append p99: {} in budget  {} outside  C in force  @ picked  {} limit",
            th.sym("●", "*"),
            th.sym("×", "x"),
            th.sym("┊", ":")
        ),
        th.dim(),
    ))];
    for (r, cells) in grid.into_iter().enumerate() {
        let label = if r == 0 {
            format!("{}/s", short(ymax))
        } else if r == body - 1 {
            "0".into()
        } else {
            String::new()
        };
        let tick = if label.is_empty() {
            th.sym("│", "|")
        } else {
            th.sym("┤", "+")
        };
        let mut spans = vec![Span::styled(format!("{label:>LABEL$}{tick}"), th.dim())];
        spans.extend(cells.into_iter().map(|(s, st)| Span::styled(s, st)));
        lines.push(Line::from(spans));
    }
    lines.push(x_axis(cols, xmax, th));
    f.render_widget(Paragraph::new(lines), area);
}

/// `0`, the middle and the top of the p99 axis, with its unit.
fn x_axis<'a>(cols: usize, xmax: f64, th: &Theme) -> Line<'a> {
    let (mid, right) = (
        micros((xmax / 2.0) as u64),
        format!("{} p99", micros(xmax as u64)),
    );
    let mut text = format!("{:LABEL$}0", "");
    let mid_at = LABEL + 1 + cols / 2 - mid.chars().count() / 2;
    while text.chars().count() < mid_at {
        text.push(' ');
    }
    text.push_str(&mid);
    let right_at = (LABEL + 1 + cols).saturating_sub(right.chars().count());
    while text.chars().count() < right_at {
        text.push(' ');
    }
    text.push_str(&right);
    Line::from(Span::styled(text, th.dim()))
}

fn list_lines<'a>(
    front: &[&TunePoint],
    sel: usize,
    v: &TuneView,
    area: Rect,
    th: &Theme,
) -> Vec<Line<'a>> {
    let mut lines = vec![Line::from(Span::styled(
        format!(
            "  {:>5} {:>9} {:>9} {:>6} {:>9} {:>6}  changes vs in force",
            "trial", "events/s", "p99", "loss", "memory", "B/ev"
        ),
        th.dim(),
    ))];
    let room = (area.height as usize).saturating_sub(1).max(1);
    let first = sel.saturating_sub(room - 1);
    for (i, p) in front.iter().enumerate().skip(first).take(room) {
        let pick = if Some(p.trial) == v.best { ">" } else { " " };
        let inside = if p.feasible { "*" } else { " " };
        let changes = if p.changes.is_empty() {
            "(in force)".to_string()
        } else {
            p.changes.join(", ")
        };
        let text = format!(
            "{pick}{inside}{:>5} {:>9} {:>9} {:>6} {:>9} {:>6}  {}",
            p.trial,
            rate(p.throughput),
            micros(p.p99_us as u64),
            count(p.loss_events),
            bytes(p.rss_bytes as u64),
            p.wear.round(),
            changes
        );
        let text = clean(&text, area.width as usize);
        let style = if i == sel {
            th.selected()
        } else {
            Style::default()
        };
        lines.push(Line::from(Span::styled(text, style)));
    }
    if front.is_empty() {
        lines.push(Line::from(Span::styled(
            "  no configuration has finished yet",
            th.dim(),
        )));
    }
    lines
}

fn foot_lines<'a>(p: Option<&TunePoint>, v: &TuneView, th: &Theme) -> Vec<Line<'a>> {
    let mut lines = Vec::new();
    if let Some(p) = p {
        let what = if p.changes.is_empty() {
            "the config in force".to_string()
        } else {
            p.changes.join(", ")
        };
        lines.push(Line::from(vec![
            Span::styled(format!("@ trial {}: ", p.trial), th.title()),
            Span::raw(what),
            Span::styled("  Enter applies, e exports", th.dim()),
        ]));
    }
    if let Some(o) = &v.outcome {
        lines.push(Line::from(Span::styled(format!("> {o}"), th.dim())));
    }
    lines
}
