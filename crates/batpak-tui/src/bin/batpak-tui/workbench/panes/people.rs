//! Gate decisions; subscribers, projection cache and the process.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table};
use ratatui::Frame;

use super::{block, count, framed, kv, level, line, Ctx};
use crate::units::{bytes, percent};
use crate::workbench::app::{App, Pane};
use crate::workbench::text::clean;

/// Allow / deny / bypass counts per gate and the recent decisions with their messages.
pub fn gates(f: &mut Frame<'_>, area: Rect, app: &mut App, cx: &Ctx<'_>) {
    let (s, th) = (&cx.model.sample, &cx.theme);
    let outer = block(
        format!(
            "Gates: {} allowed, {} denied, {} bypassed",
            count(s.allowed),
            count(s.denied),
            count(s.bypassed)
        ),
        th,
    );
    let inner = outer.inner(area);
    f.render_widget(outer, area);
    if s.gates.is_empty() && s.decisions.is_empty() {
        let text = "This store has no gates (a preset's [gates] table installs them).";
        f.render_widget(Paragraph::new(Span::styled(text, th.dim())), inner);
        return;
    }
    let per_gate = (s.gates.len() as u16 + 1).min(inner.height / 2);
    let [counts, recent] =
        Layout::vertical([Constraint::Length(per_gate), Constraint::Min(1)]).areas(inner);
    let rows = s.gates.iter().map(|g| {
        Row::new(vec![
            Span::raw(clean(&g.gate, 30)),
            Span::styled(count(g.allowed), th.good()),
            Span::styled(
                count(g.denied),
                if g.denied > 0 { th.warn() } else { th.dim() },
            ),
        ])
    });
    let widths = [
        Constraint::Min(16),
        Constraint::Length(12),
        Constraint::Length(12),
    ];
    let header = Row::new(["gate", "allowed", "denied"]).style(th.dim());
    f.render_widget(Table::new(rows, widths).header(header), counts);
    let visible = recent.height.saturating_sub(1) as usize;
    let first = app.first_row(Pane::Gates, s.decisions.len(), visible);
    let rows = s.decisions.iter().skip(first).take(visible).map(|d| {
        let style = match d.outcome.as_str() {
            "deny" => th.warn(),
            "bypass" => th.bad(),
            _ => th.good(),
        };
        Row::new(vec![
            Span::styled(d.outcome.clone(), style),
            Span::raw(clean(&d.gate, 20)),
            Span::raw(clean(&d.entity, 24)),
            Span::raw(clean(&d.message, 120)),
        ])
    });
    let widths = [
        Constraint::Length(6),
        Constraint::Length(17),
        Constraint::Length(12),
        Constraint::Min(10),
    ];
    let header = Row::new(["recent", "gate", "entity", "message"]).style(th.dim());
    f.render_widget(Table::new(rows, widths).header(header), recent);
}

/// Subscriber lag and drops, projection cache use, and the process.
pub fn system(f: &mut Frame<'_>, area: Rect, cx: &Ctx<'_>) {
    let (s, th) = (&cx.model.sample, &cx.theme);
    let inner = framed(f, area, "Subscribers, cache, system".into(), th);
    let cache_fill = s.cache_used_bytes as f64 / s.cache_map_bytes.max(1) as f64;
    let fds = s.open_fds.map_or("n/a".into(), count);
    let lines = vec![
        line(vec![
            kv("RSS", bytes(s.rss_bytes), th),
            kv("CPU", percent(f64::from(s.cpu_percent) / 100.0), th),
            kv("open fds", fds, th),
        ]),
        line(vec![
            kv("workload: appended", count(s.appended), th),
            kv("denied", count(s.denials), th),
            kv("errors", count(s.errors), th),
            kv("reads", count(s.reads), th),
        ]),
        Line::from(vec![
            Span::styled("cache ", th.dim()),
            Span::styled(th.gauge(cache_fill, 12), level(cache_fill, th)),
            Span::raw(format!(
                " {} of {}, {} entries",
                bytes(s.cache_used_bytes),
                bytes(s.cache_map_bytes),
                count(s.cache_entries)
            )),
        ]),
        line(vec![
            kv("      hits", count(s.cache_hits), th),
            kv("misses", count(s.cache_misses), th),
            kv("fallbacks", count(s.cache_fallbacks), th),
        ]),
    ];
    let [text, subs] = Layout::vertical([Constraint::Length(5), Constraint::Min(1)]).areas(inner);
    f.render_widget(Paragraph::new(lines), text);
    let rows = s.subscribers.iter().enumerate().map(|(i, x)| {
        Row::new(vec![
            Span::raw(format!("#{}", i + 1)),
            Span::styled(count(x.lag), if x.lag > 0 { th.warn() } else { th.dim() }),
            Span::styled(
                count(x.dropped),
                if x.dropped > 0 { th.bad() } else { th.dim() },
            ),
            Span::raw(count(x.delivered)),
        ])
    });
    let widths = [
        Constraint::Length(11),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Min(10),
    ];
    let header = Row::new(["subscriber", "lag", "dropped", "delivered"]).style(th.dim());
    f.render_widget(Table::new(rows, widths).header(header), subs);
}
