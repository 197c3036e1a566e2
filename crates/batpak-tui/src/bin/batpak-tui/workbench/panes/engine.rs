//! Overview, segment files and the fd budget.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table};
use ratatui::Frame;

use super::{
    block, count, framed, gauge_line, kv, level, line, micros, rate, time_chart, Ctx, Series,
};
use crate::units::{bytes, decimal, times};
use crate::workbench::app::{App, Chart, Pane};

/// Throughput, latency, sync rate and the loss window.
pub fn overview(f: &mut Frame<'_>, area: Rect, app: &mut App, cx: &Ctx<'_>) {
    let (s, th) = (&cx.model.sample, &cx.theme);
    let inner = framed(f, area, "Overview".into(), th);
    let [head, chart, wear, opened, loss] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(1),
        Constraint::Length(2),
        Constraint::Length(1),
        Constraint::Length(3),
    ])
    .areas(inner);
    let head_lines = vec![
        line(vec![
            kv("throughput", rate(s.events_per_sec), th),
            kv("append p50", micros(s.append.p50), th),
            kv("p99", micros(s.append.p99), th),
        ]),
        line(vec![
            kv("syncs", rate(s.syncs_per_sec), th),
            kv("events/sync", decimal(s.events_per_sync), th),
            kv("events", count(s.events), th),
        ]),
    ];
    f.render_widget(Paragraph::new(head_lines), head);
    let series = Series {
        title: "events appended per second",
        values: &cx.model.history.throughput,
        scale_by: 1.0,
        suffix: "/s",
        chart: Chart::Throughput,
        ceiling: None,
        style: th.good(),
    };
    time_chart(f, chart, &series, &mut app.scales, cx);
    f.render_widget(Paragraph::new(wear_lines(cx)), wear);
    f.render_widget(Paragraph::new(opened_line(cx)), opened);
    f.render_widget(Paragraph::new(loss_lines(cx)), loss);
}

/// What the open did: data found missing in red, repairs (tails cut, files removed or
/// moved aside, a compaction finished) in yellow, else how the index was built.
fn opened_line<'a>(cx: &Ctx<'a>) -> Line<'a> {
    let (rec, th) = (&cx.model.sample.recovery, &cx.theme);
    let lost = rec.iter().filter(|l| l.starts_with("LOST ")).count();
    let repairs = rec.len().saturating_sub(lost + 1);
    let (style, text) = match (lost, rec.first()) {
        (0, _) if repairs > 0 => (th.warn(), rec[..repairs].join("; ")),
        (0, Some(first)) => (th.dim(), first.clone()),
        (0, None) => (th.dim(), "-".to_string()),
        (n, first) => (
            th.bad(),
            format!("{n} loss(es): {}", first.map_or("", String::as_str)),
        ),
    };
    Line::from(vec![
        Span::styled("opened ", th.dim()),
        Span::styled(text, style),
    ])
}

/// What the last second cost the storage medium: bytes sent to storage (per second, per
/// event, per byte the log appended) and syncs per second by class of file.
fn wear_lines<'a>(cx: &Ctx<'a>) -> Vec<Line<'a>> {
    let (w, th) = (&cx.model.sample.wear, &cx.theme);
    let label = if w.from_kernel {
        "to storage"
    } else {
        "to storage (est.)"
    };
    let per_event = w
        .storage_bytes_per_event
        .map_or("-".to_string(), |b| bytes(b.round() as u64));
    let amp = w.write_amplification.map_or("-".to_string(), times);
    let mut syncs = vec![Span::styled("syncs ", th.dim())];
    for (class, per_sec) in &w.syncs_per_sec {
        syncs.extend(kv(class.as_str(), rate(*per_sec), th));
    }
    vec![
        line(vec![
            kv(
                label,
                format!("{}/s", bytes(w.storage_bytes_per_sec as u64)),
                th,
            ),
            kv("per event", per_event, th),
            kv("vs log", amp, th),
        ]),
        Line::from(syncs),
    ]
}

/// What a process crash and a power cut would lose right now.
fn loss_lines<'a>(cx: &Ctx<'a>) -> Vec<Line<'a>> {
    let (s, th) = (&cx.model.sample, &cx.theme);
    let since = s
        .since_last_sync_ms
        .map_or("no sync yet".to_string(), |ms| {
            format!("last sync {:.1} s ago", ms as f64 / 1e3)
        });
    let window = u64::from(s.sync_every_n_events.max(1));
    let fill = s.acked_unsynced as f64 / window as f64;
    let power = if s.acked_unsynced == 0 {
        Span::styled("nothing acknowledged".to_string(), th.good())
    } else {
        Span::styled(
            format!("{} acknowledged events", count(s.acked_unsynced)),
            level(fill, th),
        )
    };
    vec![
        Line::from(Span::styled(
            format!(
                "Loss window  (sync every {} events, {})",
                count(window),
                s.sync_mode
            ),
            th.title(),
        )),
        Line::from(vec![
            Span::styled("process crash ", th.dim()),
            Span::styled("nothing acknowledged", th.good()),
            Span::raw(format!(
                "  ({} queued, not yet acknowledged)",
                count(s.queued)
            )),
        ]),
        Line::from(vec![
            Span::styled("power cut     ", th.dim()),
            power,
            Span::raw(format!("  {} {since}", th.gauge(fill, 10))),
        ]),
    ]
}

/// Segment files: range, size against `segment_max_bytes`, state, mapped.
pub fn segments(f: &mut Frame<'_>, area: Rect, app: &mut App, cx: &Ctx<'_>) {
    let (s, th) = (&cx.model.sample, &cx.theme);
    let total: u64 = s.segments.iter().map(|g| g.bytes).sum();
    let outer = block(
        format!("Segments: {} files, {}", s.segments.len(), bytes(total)),
        th,
    );
    let visible = outer.inner(area).height.saturating_sub(1) as usize;
    let first = app.first_row(Pane::Segments, s.segments.len(), visible);
    let rows = s.segments.iter().skip(first).take(visible).map(|g| {
        let range = match (g.first, g.last) {
            (Some(a), Some(b)) => format!("{a}..={b}"),
            _ => "empty".into(),
        };
        let fill = g.bytes as f64 / s.segment_max_bytes.max(1) as f64;
        let state = if g.sealed { "sealed" } else { "active" };
        Row::new(vec![
            Span::raw(g.file.clone()),
            Span::raw(range),
            Span::raw(format!("{:>9}", bytes(g.bytes))),
            Span::styled(th.gauge(fill, 10), level(fill, th)),
            Span::styled(state, if g.sealed { th.dim() } else { th.good() }),
            Span::raw(if g.mapped { "mapped" } else { "" }),
        ])
    });
    let widths = [
        Constraint::Length(18),
        Constraint::Min(12),
        Constraint::Length(9),
        Constraint::Length(10),
        Constraint::Length(6),
        Constraint::Length(6),
    ];
    let header = Row::new(["file", "sequences", "size", "fill", "state", "mmap"]).style(th.dim());
    f.render_widget(Table::new(rows, widths).header(header).block(outer), area);
}

/// Open and mapped files against the budget; map cache hits, misses, evictions.
pub fn fd(f: &mut Frame<'_>, area: Rect, app: &mut App, cx: &Ctx<'_>) {
    let (s, th, h) = (&cx.model.sample, &cx.theme, &cx.model.history);
    let inner = framed(f, area, "FD budget".into(), th);
    let used = s.open_files + s.mapped;
    let fill = used as f64 / f64::from(s.fd_budget.max(1));
    let [text, a, b, c] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(1),
        Constraint::Min(1),
        Constraint::Min(1),
    ])
    .areas(inner);
    let lines = vec![
        gauge_line(
            fill,
            inner.width,
            format!(
                " {used} of {} ({} open, {} mapped)",
                s.fd_budget, s.open_files, s.mapped
            ),
            th,
        ),
        line(vec![
            kv("hits", count(s.map_hits), th),
            kv("misses", count(s.map_misses), th),
            kv("evictions", count(s.map_evictions), th),
        ]),
    ];
    f.render_widget(Paragraph::new(lines), text);
    // The history holds counts per frame; the charts show them per second.
    let per_s = f64::from(h.fps.max(1));
    let charts = [
        (
            "map hits per second",
            &h.map_hits,
            Chart::MapHits,
            th.good(),
            a,
        ),
        (
            "map misses per second",
            &h.map_misses,
            Chart::MapMisses,
            th.warn(),
            b,
        ),
        (
            "map evictions per second",
            &h.map_evictions,
            Chart::MapEvictions,
            th.bad(),
            c,
        ),
    ];
    for (title, values, chart, style, rect) in charts {
        let series = Series {
            title,
            values,
            scale_by: per_s,
            suffix: "/s",
            chart,
            ceiling: None,
            style,
        };
        time_chart(f, rect, &series, &mut app.scales, cx);
    }
}
