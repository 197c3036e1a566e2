//! Time charts with axes: a title line saying what is counted and which scale is in use,
//! a y axis labelled with the scale and its unit, and an x axis in seconds back from now,
//! the newest value at the right edge.

use std::collections::VecDeque;

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::Frame;

use super::Ctx;
use crate::units::short;
use crate::workbench::app::{Chart, Scales};
use crate::workbench::theme::Theme;

/// Width of the y axis labels (`1.5M/s`, `100 %`), the same in every chart so stacked
/// charts line up.
const LABEL: usize = 7;

/// One chart: what it shows and in which unit.
pub struct Series<'a> {
    /// What is counted, in words: `events per second`.
    pub title: &'a str,
    /// Oldest first, one value per frame.
    pub values: &'a VecDeque<u64>,
    /// Multiplies a stored value into the unit shown (the frame rate, for counts per frame).
    pub scale_by: f64,
    /// The unit after the y axis labels: `/s`, or nothing for a count.
    pub suffix: &'static str,
    /// Which scale the chart keeps.
    pub chart: Chart,
    /// A maximum the value cannot pass (the channel's capacity): the fixed scale's top.
    pub ceiling: Option<f64>,
    pub style: Style,
}

/// Draws `s` into `area`: a title line, then bars over the y axis, then the x axis.
pub fn time_chart(
    f: &mut Frame<'_>,
    area: Rect,
    s: &Series<'_>,
    scales: &mut Scales,
    cx: &Ctx<'_>,
) {
    let th = &cx.theme;
    if area.width < 20 || area.height == 0 {
        return;
    }
    let cols = area.width as usize - LABEL - 1;
    let skip = s.values.len().saturating_sub(cols);
    let shown: Vec<f64> = s
        .values
        .iter()
        .skip(skip)
        .map(|&v| v as f64 * s.scale_by)
        .collect();
    let peak = shown.iter().copied().fold(0.0, f64::max);
    let top = scales.top(s.chart, peak, s.ceiling);
    let mut lines = vec![title_line(s.title, scales.fixed, area.width as usize, th)];
    let body = (area.height as usize).saturating_sub(2).max(1);
    let levels = bar_levels(th);
    for row in 0..body {
        let label = y_label(row, body, top, s.suffix);
        let tick = if label.is_empty() {
            th.sym("│", "|")
        } else {
            th.sym("┤", "+")
        };
        let mut cells = " ".repeat(cols - shown.len());
        for v in &shown {
            cells.push_str(levels[eighths_in(*v / top, body, row)]);
        }
        lines.push(Line::from(vec![
            Span::styled(format!("{label:>LABEL$}{tick}"), th.dim()),
            Span::styled(cells, s.style),
        ]));
    }
    if area.height >= 3 {
        let fps = f64::from(cx.model.history.fps.max(1));
        lines.push(Line::from(vec![
            Span::raw(" ".repeat(LABEL)),
            Span::styled(x_axis(cols, fps, th), th.dim()),
        ]));
    }
    f.render_widget(ratatui::widgets::Paragraph::new(lines), area);
}

/// The y axis label of `row` (0 is the top) of `body` rows: the scale's top, its middle
/// where a row sits there, and 0 at the bottom.
fn y_label(row: usize, body: usize, top: f64, suffix: &str) -> String {
    if row == 0 {
        format!("{}{suffix}", short(top))
    } else if row == body - 1 {
        "0".to_string()
    } else if body >= 5 && body % 2 == 1 && row == body / 2 {
        format!("{}{suffix}", short(top / 2.0))
    } else {
        String::new()
    }
}

/// How many eighths of the cell in `row` (0 is the top) of `body` rows a bar reaching
/// `share` of the scale fills: 0 to 8.
fn eighths_in(share: f64, body: usize, row: usize) -> usize {
    let total = (share * (body * 8) as f64).round();
    let total = if total.is_finite() {
        total.max(0.0) as usize
    } else {
        0
    };
    let from_bottom = body - 1 - row;
    total.min(body * 8).saturating_sub(from_bottom * 8).min(8)
}

/// The x axis under `cols` columns of one frame each at `fps`: seconds back from now.
fn x_axis(cols: usize, fps: f64, th: &Theme) -> String {
    let span = cols.saturating_sub(1) as f64 / fps;
    let left = format!("-{} s", short(span.round()));
    let mid = format!("-{} s", short((span / 2.0).round()));
    axis_line(cols + 1, &left, &mid, "now", th)
}

/// `title` on the left, the scale in use on the right, said shorter (or not at all)
/// where the line is too narrow for both.
fn title_line<'a>(title: &str, fixed: bool, width: usize, th: &Theme) -> Line<'a> {
    let says: [&str; 3] = if fixed {
        ["fixed scale [f]", "fixed [f]", "fixed"]
    } else {
        ["auto scale [f]", "auto [f]", "auto"]
    };
    let room = width.saturating_sub(title.chars().count() + 1);
    let scale = says.into_iter().find(|s| s.len() <= room).unwrap_or("");
    let gap = width.saturating_sub(title.chars().count() + scale.len());
    Line::from(vec![
        Span::styled(title.to_string(), th.dim()),
        Span::raw(" ".repeat(gap)),
        Span::styled(scale, th.dim()),
    ])
}

/// The nine heights of a cell, empty to full.
fn bar_levels(th: &Theme) -> [&'static str; 9] {
    let b = th.bars();
    [
        b.empty,
        b.one_eighth,
        b.one_quarter,
        b.three_eighths,
        b.half,
        b.five_eighths,
        b.three_quarters,
        b.seven_eighths,
        b.full,
    ]
}

/// An axis of exactly `width` cells: a corner, then `left` at the start, `mid` centred
/// on the middle of the cells after the corner and `right` at the end, each with a blank
/// either side so it does not run into the rule, each left out when there is no room.
pub fn axis_line(width: usize, left: &str, mid: &str, right: &str, th: &Theme) -> String {
    let rule = th.sym("─", "-");
    let mut cells: Vec<String> = std::iter::once(th.sym("└", "+"))
        .chain(std::iter::repeat_n(rule, width.saturating_sub(1)))
        .map(str::to_string)
        .take(width)
        .collect();
    let (l, m, r) = (
        left.chars().count(),
        mid.chars().count(),
        right.chars().count(),
    );
    if l + r + 4 <= width {
        put(&mut cells, 1, left);
        put(&mut cells, width - r - 1, right);
        let at = (1 + (width - 1) / 2).saturating_sub(m / 2);
        if m > 0 && at >= l + 5 && at + m + 2 < width - r {
            put(&mut cells, at - 1, mid);
        }
    } else if r + 2 <= width {
        put(&mut cells, width - r - 1, right);
    }
    cells.concat()
}

/// Writes ` text ` over `cells` from `at` (a blank, the text, a blank where room is).
fn put(cells: &mut [String], at: usize, text: &str) {
    let padded = format!(" {text} ");
    for (i, c) in padded.chars().enumerate() {
        if let Some(cell) = cells.get_mut(at + i) {
            *cell = c.to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workbench::theme::Colors;

    #[test]
    fn an_axis_keeps_its_width_and_leaves_out_labels_that_do_not_fit() {
        let th = Theme {
            colors: Colors::None,
            ascii: true,
        };
        assert_eq!(
            axis_line(20, "-5 s", "", "now", &th),
            "+ -5 s --------- now"
        );
        assert_eq!(
            axis_line(24, "0", "50 %", "100 %", &th),
            "+ 0 ----- 50 % --- 100 %"
        );
        assert_eq!(
            axis_line(20, "0", "50 %", "100 %", &th),
            "+ 0 --- 50 % - 100 %"
        );
        assert_eq!(axis_line(16, "0", "50 %", "100 %", &th), "+ 0 ------ 100 %");
        assert_eq!(axis_line(6, "-5 s", "", "now", &th), "+- now");
        assert_eq!(axis_line(3, "-5 s", "", "now", &th), "+--");
    }

    #[test]
    fn a_narrow_chart_says_its_scale_shorter_rather_than_running_into_the_title() {
        let th = Theme {
            colors: Colors::None,
            ascii: true,
        };
        let text = |width| {
            title_line("commands queued", false, width, &th)
                .spans
                .iter()
                .map(|s| s.content.to_string())
                .collect::<String>()
        };
        assert_eq!(text(32), "commands queued   auto scale [f]");
        assert_eq!(text(26), "commands queued   auto [f]");
        assert_eq!(text(20), "commands queued auto");
        assert_eq!(text(17), "commands queued  ");
    }

    #[test]
    fn a_bar_fills_the_cells_below_its_height_and_part_of_the_one_it_ends_in() {
        // Four rows, a bar at 5/8 of the scale: 2.5 rows of 4.
        let rows: Vec<usize> = (0..4).map(|row| eighths_in(0.625, 4, row)).collect();
        assert_eq!(rows, [0, 4, 8, 8]);
        assert_eq!(
            eighths_in(2.0, 4, 0),
            8,
            "a value over the scale fills the chart"
        );
        assert_eq!(eighths_in(f64::NAN, 4, 3), 0, "no scale draws nothing");
    }

    #[test]
    fn the_y_axis_says_the_top_the_middle_and_zero_with_the_unit() {
        let labels: Vec<String> = (0..5).map(|row| y_label(row, 5, 60_000.0, "/s")).collect();
        assert_eq!(labels, ["60k/s", "", "30k/s", "", "0"]);
    }

    #[test]
    fn the_x_axis_counts_seconds_back_to_now() {
        let th = Theme {
            colors: Colors::None,
            ascii: true,
        };
        // 41 columns at 4 frames a second: 10 s.
        assert_eq!(
            x_axis(41, 4.0, &th),
            "+ -10 s ---------- -5 s -------------- now"
        );
    }
}
