//! Every `StoreConfig` field: value being edited, value in force, default, unit, when a
//! change applies, and the loaded preset's value where it differs.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table, TableState};
use ratatui::Frame;

use super::{framed, Ctx};
use crate::workbench::app::App;
use crate::workbench::config::FIELDS;
use crate::workbench::text::clean;
use batpak::preset::StoreSection;
use batpak::store::Applies;

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
    let [table, foot] = Layout::vertical([Constraint::Min(3), Constraint::Length(2)]).areas(inner);
    let defaults = StoreSection::default();
    let mut rows = vec![Row::new(vec![
        Span::raw("data_dir"),
        Span::raw(clean(&cx.model.sample.dir, 30)),
        Span::styled("command line", th.dim()),
        Span::styled("reopen", th.dim()),
        Span::raw(""),
    ])];
    rows.extend(FIELDS.iter().enumerate().map(|(i, fd)| {
        let with_unit = |v: String| match fd.unit {
            "" | "bytes" => v,
            _ if v.parse::<u64>().is_err() => v,
            unit => format!("{v} {unit}"),
        };
        let value = with_unit(fd.show(&c.edited.store));
        let in_force = with_unit(fd.show(&c.applied.store));
        let preset = with_unit(fd.show(&c.base.store));
        let shown = if value == in_force {
            value.clone()
        } else {
            format!("{value}*")
        };
        let style = if i == c.selected {
            th.selected()
        } else if value != in_force {
            th.warn()
        } else {
            ratatui::style::Style::default()
        };
        Row::new(vec![
            Span::raw(fd.path),
            Span::raw(shown),
            Span::styled(with_unit(fd.show(&defaults)), th.dim()),
            Span::raw(applies(fd.applies)),
            Span::styled(
                if preset == value {
                    String::new()
                } else {
                    format!("preset: {preset}")
                },
                th.dim(),
            ),
        ])
        .style(style)
    }));
    rows.push(Row::new(vec![
        Span::raw("clock"),
        Span::styled("system time", th.dim()),
        Span::styled("code only", th.dim()),
    ]));
    let widths = [
        Constraint::Length(29),
        Constraint::Length(16),
        Constraint::Length(14),
        Constraint::Length(9),
        Constraint::Min(0),
    ];
    let header = Row::new(["field", "value", "default", "applies", "preset"]).style(th.dim());
    // The selected row stays in view on short terminals.
    let mut state = TableState::default().with_selected(Some(c.selected + 1));
    f.render_stateful_widget(Table::new(rows, widths).header(header), table, &mut state);
    let mut lines = Vec::new();
    if let Some(t) = &c.input {
        lines.push(Line::from(vec![
            Span::styled(format!("{} = ", c.field().path), th.title()),
            Span::raw(clean(t, 64)),
            Span::styled(
                format!("{}  Enter sets, Esc drops", th.sym("▏", "_")),
                th.dim(),
            ),
        ]));
    } else if let Some(line) = unapplied(c) {
        lines.push(Line::from(Span::styled(line, th.warn())));
    } else {
        lines.push(Line::from(Span::styled(
            "j/k select  Enter type  +/- step  a apply  p presets  e export  (* unapplied)",
            th.dim(),
        )));
    }
    if let Some(m) = &c.message {
        lines.push(Line::from(Span::styled(clean(m, 200), th.warn())));
    }
    f.render_widget(Paragraph::new(lines), foot);
}

/// The selected field's unapplied change, if it has one.
fn unapplied(c: &crate::workbench::config::ConfigState) -> Option<String> {
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
