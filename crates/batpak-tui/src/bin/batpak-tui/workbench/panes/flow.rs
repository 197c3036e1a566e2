//! Channel back-pressure and latency histograms.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::{
    axis_line, count, framed, gauge_line, kv, line, micros, rate, time_chart, Ctx, Series,
};
use crate::units::{decimal, percent, short};
use crate::workbench::app::{App, Chart, LatencyKind};

/// Depth against capacity, high-water mark, blocked sends and time blocked.
pub fn channel(f: &mut Frame<'_>, area: Rect, app: &mut App, cx: &Ctx<'_>) {
    let (s, th, h) = (&cx.model.sample, &cx.theme, &cx.model.history);
    let inner = framed(f, area, "Channel back-pressure".into(), th);
    let fill = s.channel_depth as f64 / s.channel_capacity.max(1) as f64;
    let [text, depth, blocked] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(1),
        Constraint::Min(1),
    ])
    .areas(inner);
    let lines = vec![
        gauge_line(
            fill,
            inner.width,
            format!(
                " depth {} of {}  high water {}",
                count(s.channel_depth),
                count(s.channel_capacity),
                count(s.channel_high_water)
            ),
            th,
        ),
        line(vec![
            kv("blocked sends", rate(s.blocked_sends_per_sec), th),
            kv("total", count(s.blocked_sends), th),
            kv("time blocked", percent(s.blocked_share), th),
        ]),
    ];
    f.render_widget(Paragraph::new(lines), text);
    let depth_series = Series {
        title: "commands queued to the writer",
        values: &h.channel_depth,
        scale_by: 1.0,
        suffix: "",
        chart: Chart::ChannelDepth,
        ceiling: Some(s.channel_capacity as f64),
        style: th.good(),
    };
    time_chart(f, depth, &depth_series, &mut app.scales, cx);
    let blocked_series = Series {
        title: "sends that blocked per second",
        values: &h.blocked_per_sec,
        scale_by: 1.0,
        suffix: "/s",
        chart: Chart::BlockedSends,
        ceiling: None,
        style: th.warn(),
    };
    time_chart(f, blocked, &blocked_series, &mut app.scales, cx);
}

/// Histogram bars of append or sync latency with percentiles.
pub fn latency(f: &mut Frame<'_>, area: Rect, app: &mut App, cx: &Ctx<'_>) {
    let (s, th) = (&cx.model.sample, &cx.theme);
    let (name, l) = match app.latency {
        LatencyKind::Append => (
            th.sym(
                "append latency (enqueue → receipt)",
                "append latency (enqueue -> receipt)",
            ),
            &s.append,
        ),
        LatencyKind::Sync => ("sync latency", &s.sync),
    };
    let inner = framed(f, area, format!("Latency: {name}  [s] switches"), th);
    let mut lines = vec![
        line(vec![
            kv("p50", micros(l.p50), th),
            kv("p90", micros(l.p90), th),
            kv("p99", micros(l.p99), th),
            kv("p999", micros(l.p999), th),
            kv("max", micros(l.max), th),
        ]),
        line(vec![
            kv("samples", count(l.count), th),
            kv("syncs", rate(s.syncs_per_sec), th),
            kv("events/sync", decimal(s.events_per_sync), th),
            kv(
                "scale",
                if app.scales.fixed {
                    "fixed [f]"
                } else {
                    "auto [f]"
                }
                .into(),
                th,
            ),
        ]),
    ];
    // Two lines of figures above, the axis below.
    let rows = inner.height.saturating_sub(3) as usize;
    let shown = bars(&l.buckets, rows);
    let total = l.count.max(1) as f64;
    let peak = shown.iter().map(|b| b.1).max().unwrap_or(0) as f64 / total * 100.0;
    let top = app.scales.top(Chart::Latency, peak, Some(100.0));
    let width = inner.width.saturating_sub(24) as usize;
    for (upper, n) in &shown {
        let fill = *n as f64 / total * 100.0 / top;
        lines.push(Line::from(vec![
            Span::styled(
                format!("{}{:>9} ", th.sym("≤", "<="), micros(*upper)),
                th.dim(),
            ),
            Span::styled(
                th.gauge(fill, width)
                    .trim_end_matches(th.fill().1)
                    .to_string(),
                th.good(),
            ),
            Span::raw(format!(" {}", count(*n))),
        ]));
    }
    if l.count > 0 {
        lines.push(Line::from(Span::styled(
            format!(
                "{:>10}{} of samples",
                "",
                axis_line(
                    width + 1,
                    "0",
                    &format!("{} %", short(top / 2.0)),
                    &format!("{} %", short(top)),
                    th
                )
            ),
            th.dim(),
        )));
    }
    if l.count == 0 {
        lines.push(Line::from(Span::styled(
            "no samples in this window",
            th.dim(),
        )));
    }
    f.render_widget(Paragraph::new(lines), inner);
}

/// The non-empty range of buckets, merged pairwise until it fits `rows`.
fn bars(buckets: &[(u64, u64)], rows: usize) -> Vec<(u64, u64)> {
    let first = buckets.iter().position(|b| b.1 > 0).unwrap_or(0);
    let last = buckets.iter().rposition(|b| b.1 > 0).map_or(0, |i| i + 1);
    let mut v: Vec<(u64, u64)> = buckets.get(first..last).unwrap_or(&[]).to_vec();
    while v.len() > rows.max(1) {
        v = v
            .chunks(2)
            .map(|c| (c[c.len() - 1].0, c.iter().map(|b| b.1).sum()))
            .collect();
    }
    v
}

#[cfg(test)]
mod tests {
    #[test]
    fn histogram_bars_keep_every_sample_when_merged_to_fit() {
        let b: Vec<(u64, u64)> = (0..20)
            .map(|i| (1 << i, if i > 3 { i } else { 0 }))
            .collect();
        let shown = super::bars(&b, 5);
        assert!(shown.len() <= 5);
        let total: u64 = b.iter().map(|x| x.1).sum();
        assert_eq!(shown.iter().map(|x| x.1).sum::<u64>(), total);
        assert_eq!(shown.last().map(|x| x.0), Some(1 << 19));
    }
}
