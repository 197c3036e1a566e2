//! Every `StoreConfig` field: value being edited, value in force, default, unit, when a
//! change applies, and the loaded preset's value where it differs.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table, TableState};
use ratatui::Frame;

use super::{framed, Ctx};
use crate::workbench::app::App;
use crate::workbench::config::{ConfigState, FIELDS};
use crate::workbench::text::clean;
use batpak::store::Applies;
use batpak_tui::preset::StoreSection;

fn applies(a: Applies) -> &'static str {
    match a {
        Applies::Live => "live",
        Applies::NextRoll => "next roll",
        Applies::NewSubscribers => "new subs",
        Applies::Reopen => "reopen",
    }
}

/// The config table, the line being typed and the last outcome.
pub fn config(f: &mut Frame<'_>, area: Rect, app: &mut App, cx: &Ctx<'_>) {
    let th = &cx.theme;
    let c = &app.config;
    let (pending, reopen) = c.pending();
    let title = format!(
        "Config: preset {}, {} unapplied ({} by reopen)  [a] applies",
        clean(&c.base_name, 24),
        pending.len(),
        reopen.len()
    );
    let inner = framed(f, area, title, th);
    let defaults = StoreSection::default();
    let texts = row_texts(c, &defaults);
    let wide = widest(&texts);
    let shown = columns(wide, inner.width as usize);
    // Columns with something to say that do not fit.
    let left_out: [bool; 5] = std::array::from_fn(|i| shown[i].is_none() && wide[i] > 0);
    let hidden = left_out.contains(&true);
    let [table, foot] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(if hidden { 3 } else { 2 }),
    ])
    .areas(inner);
    let rows = table_rows(texts, &shown, c.selected, cx);
    let widths: Vec<Constraint> = shown
        .iter()
        .flatten()
        .map(|&w| Constraint::Length(w as u16))
        .collect();
    let header = pick(HEADER.map(Span::raw), &shown).style(th.dim());
    // The selected row stays in view on short terminals.
    let mut state = TableState::default().with_selected(Some(c.selected + 1));
    f.render_stateful_widget(Table::new(rows, widths).header(header), table, &mut state);
    let mut lines = vec![prompt_line(c, cx)];
    if hidden {
        lines.push(Line::from(Span::styled(
            selected_line(c, &defaults, &left_out, inner.width as usize),
            th.dim(),
        )));
    }
    if let Some(m) = &c.message {
        lines.push(Line::from(Span::styled(clean(m, 200), th.warn())));
    }
    f.render_widget(Paragraph::new(lines), foot);
}

/// The table's columns.
const HEADER: [&str; 5] = ["field", "value", "default", "applies", "preset"];

/// Every field's row as text: field, value (`*`: not applied yet), default, when a
/// change applies, and the preset's value where the value differs from it.
fn row_texts(c: &ConfigState, defaults: &StoreSection) -> Vec<[String; 5]> {
    FIELDS
        .iter()
        .map(|fd| {
            let value = fd.shown(&c.edited.store);
            let in_force = fd.shown(&c.applied.store);
            let preset = fd.shown(&c.base.store);
            let marked = if value == in_force {
                value.clone()
            } else {
                format!("{value}*")
            };
            let preset = if preset == value {
                String::new()
            } else {
                preset
            };
            [
                fd.path.to_string(),
                marked,
                fd.shown(defaults),
                applies(fd.applies).to_string(),
                preset,
            ]
        })
        .collect()
}

/// Each column's widest entry (header and the data_dir and clock rows included); 0 for
/// the preset column while no value differs from the preset's.
fn widest(texts: &[[String; 5]]) -> [usize; 5] {
    std::array::from_fn(|i| {
        let cells = texts.iter().map(|t| t[i].chars().count());
        if i == 4 && cells.clone().all(|n| n == 0) {
            return 0;
        }
        cells
            .chain([HEADER[i].len(), EXTRA[i].len()])
            .max()
            .unwrap_or(0)
    })
}

/// The data_dir row, a row per field (the selected one highlighted, unapplied ones
/// warned), then the clock row, each with only the `shown` columns.
fn table_rows(
    texts: Vec<[String; 5]>,
    shown: &[Option<usize>; 5],
    selected: usize,
    cx: &Ctx<'_>,
) -> Vec<Row<'static>> {
    let th = &cx.theme;
    let value_width = shown[1].unwrap_or(16);
    let mut rows = vec![pick(
        [
            Span::raw("data_dir"),
            Span::raw(tail(&cx.model.sample.dir, value_width)),
            Span::styled(EXTRA[2], th.dim()),
            Span::styled(EXTRA[3], th.dim()),
            Span::raw(""),
        ],
        shown,
    )];
    rows.extend(texts.into_iter().enumerate().map(|(i, t)| {
        let style = if i == selected {
            th.selected()
        } else if t[1].ends_with('*') {
            th.warn()
        } else {
            Style::default()
        };
        let [field, value, default, when, preset] = t;
        let cells = [
            Span::raw(field),
            Span::raw(value),
            Span::styled(default, th.dim()),
            Span::raw(when),
            Span::styled(preset, th.dim()),
        ];
        pick(cells, shown).style(style)
    }));
    rows.push(pick(
        [
            Span::raw("clock"),
            Span::styled("system time", th.dim()),
            Span::styled("code only", th.dim()),
            Span::raw(""),
            Span::raw(""),
        ],
        shown,
    ));
    rows
}

/// A row of the `shown` columns of `cells`.
fn pick(cells: [Span<'static>; 5], shown: &[Option<usize>; 5]) -> Row<'static> {
    Row::new(
        cells
            .into_iter()
            .zip(shown)
            .filter_map(|(cell, w)| w.map(|_| cell))
            .collect::<Vec<_>>(),
    )
}

/// The line under the table: what is being typed, the selected field's unapplied
/// change, or the keys.
fn prompt_line<'a>(c: &ConfigState, cx: &Ctx<'_>) -> Line<'a> {
    let th = &cx.theme;
    if let Some(t) = &c.input {
        return Line::from(vec![
            Span::styled(format!("{} = ", c.field().path), th.title()),
            Span::raw(clean(t, 64)),
            Span::styled(
                format!("{}  Enter sets, Esc drops", th.sym("▏", "_")),
                th.dim(),
            ),
        ]);
    }
    match unapplied(c) {
        Some(line) => Line::from(Span::styled(line, th.warn())),
        None => Line::from(Span::styled(
            "j/k select  Enter type  +/- step  a apply  p presets  e export  (* unapplied)",
            th.dim(),
        )),
    }
}

/// What the data_dir and clock rows say in the default and applies columns.
const EXTRA: [&str; 5] = ["", "", "command line", "reopen", ""];

/// Which columns are shown and how wide: field and value always, then applies, the
/// preset's value (when any differs) and the default while they fit whole in `room`
/// cells (one cell between columns); a column is never cut.
fn columns(widest: [usize; 5], room: usize) -> [Option<usize>; 5] {
    let mut shown = [Some(widest[0]), Some(widest[1]), None, None, None];
    let mut used = widest[0] + 1 + widest[1];
    for i in [3, 4, 2] {
        if widest[i] > 0 && used + 1 + widest[i] <= room {
            shown[i] = Some(widest[i]);
            used += 1 + widest[i];
        }
    }
    shown
}

/// The end of `path` in at most `width` characters (`...` where it was cut).
fn tail(path: &str, width: usize) -> String {
    let chars: Vec<char> = clean(path, 4096).chars().collect();
    if chars.len() <= width {
        return chars.into_iter().collect();
    }
    let keep = width.saturating_sub(3);
    let end: String = chars[chars.len() - keep..].iter().collect();
    format!("...{end}")
}

/// What the left-out columns say for the selected field (its default, the preset's
/// value, when a change applies), for terminals too narrow for those columns; the field's
/// name leads where the line has room for it.
fn selected_line(
    c: &ConfigState,
    defaults: &StoreSection,
    left_out: &[bool; 5],
    width: usize,
) -> String {
    let f = c.field();
    let mut parts = Vec::new();
    if left_out[2] {
        parts.push(format!("default {}", f.shown(defaults)));
    }
    if left_out[4] {
        parts.push(format!(
            "preset {}: {}",
            clean(&c.base_name, 24),
            f.shown(&c.base.store)
        ));
    }
    if left_out[3] {
        parts.push(format!("applies {}", applies(f.applies)));
    }
    let said = parts.join(", ");
    let named = format!("{}: {said}", f.path);
    if named.chars().count() <= width {
        named
    } else {
        said
    }
}

/// The selected field's unapplied change, if it has one.
fn unapplied(c: &ConfigState) -> Option<String> {
    let f = c.field();
    let (value, now) = (f.show(&c.edited.store), f.show(&c.applied.store));
    (value != now).then(|| {
        format!(
            "{} = {value}, in force {now} ({} on a)",
            f.path,
            match f.applies {
                Applies::Reopen => "reopens",
                _ => "applies live",
            }
        )
    })
}
