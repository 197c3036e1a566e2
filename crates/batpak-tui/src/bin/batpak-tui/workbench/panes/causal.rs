//! Recent events (or one entity's), and an event's ancestors and descendants as a tree,
//! with the selected event's details.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table, TableState};
use ratatui::Frame;

use super::{framed, Ctx};
use crate::workbench::app::App;
use crate::workbench::causal::EventRow;
use crate::workbench::text::clean;

/// The longest entity shown whole in the list (the details below show it in full).
const ENTITY: usize = 24;

/// A row's cells as text: event (with its tree indent), kind, entity, cause, payload.
fn texts(indent: String, r: &EventRow, cx: &Ctx<'_>) -> [String; 5] {
    [
        format!("{indent}#{}", r.seq),
        r.kind.clone(),
        clean(&r.entity, ENTITY),
        r.cause.map_or("root".into(), |c| {
            format!("{}#{c}", cx.theme.sym("← ", "<-"))
        }),
        r.payload.clone(),
    ]
}

/// Deepest level indented by its own two cells; below it the depth is written in the
/// indent instead, so a deep tree cannot crowd the ids out of their column.
const INDENT: usize = 4;

/// The indent of a tree row `depth` (1 and more) levels below the focus.
fn tree_indent(depth: usize, branch: &str) -> String {
    if depth <= INDENT {
        format!("{}{branch}", "  ".repeat(depth - 1))
    } else {
        format!("{:>w$}{branch}", depth, w = 2 * (INDENT - 1))
    }
}

/// A row's cells, styled.
fn cells<'a>(t: [String; 5], cx: &Ctx<'_>) -> Vec<Span<'a>> {
    let th = &cx.theme;
    let [event, kind, entity, cause, payload] = t;
    vec![
        Span::raw(event),
        Span::styled(kind, th.dim()),
        Span::raw(entity),
        Span::styled(cause, th.dim()),
        Span::raw(payload),
    ]
}

/// The list or the tree, and the selected event's details.
pub fn causal(f: &mut Frame<'_>, area: Rect, app: &mut App, cx: &Ctx<'_>) {
    let (v, th, ui) = (&cx.model.causal, &cx.theme, &app.causal);
    let title = match (&v.focus, &v.entity) {
        (Some(fo), _) => format!(
            "Causal graph: tree of #{}{}  [Enter] jump  [Esc] back",
            fo.tree.first().map_or(0, |(_, r)| r.seq),
            if fo.more_ancestors > 0 {
                format!(", {} more ancestors above", fo.more_ancestors)
            } else {
                String::new()
            }
        ),
        (None, Some(e)) => format!(
            "Causal graph: events of {}  [Enter] tree  [Esc] all",
            clean(e, 30)
        ),
        (None, None) => "Causal graph: recent events  [Enter] tree  [/] entity".into(),
    };
    let inner = framed(f, area, title, th);
    let [list, detail] = Layout::vertical([Constraint::Min(3), Constraint::Length(5)]).areas(inner);
    // (cells, row style, event) for every row; ids are never cut, so the id columns are
    // as wide as their widest entry.
    let mut found: Vec<([String; 5], Option<ratatui::style::Style>, &EventRow)> = Vec::new();
    match &v.focus {
        Some(fo) => {
            for r in &fo.ancestors {
                found.push((texts(th.sym("↑ ", "^ ").into(), r, cx), Some(th.dim()), r));
            }
            let branch = if th.ascii { "`-" } else { "└─" };
            for (depth, r) in &fo.tree {
                let indent = match depth {
                    0 => th.sym("● ", "* ").to_string(),
                    d => tree_indent(*d as usize, branch),
                };
                let style = (*depth == 0).then(|| th.title());
                found.push((texts(indent, r, cx), style, r));
            }
        }
        None => found.extend(
            v.recent
                .iter()
                .map(|r| (texts(String::new(), r, cx), None, r)),
        ),
    }
    let header = ["event", "kind", "entity", "cause", "payload"];
    let width = |i: usize| {
        found
            .iter()
            .map(|(t, _, _)| t[i].chars().count())
            .chain(std::iter::once(header[i].len()))
            .max()
            .unwrap_or(0) as u16
    };
    let widths = [
        Constraint::Length(width(0)),
        Constraint::Length(width(1)),
        Constraint::Length(width(2)),
        Constraint::Length(width(3)),
        Constraint::Min(10),
    ];
    let rows: Vec<(Row<'_>, &EventRow)> = found
        .into_iter()
        .map(|(t, style, r)| match style {
            Some(s) => (Row::new(cells(t, cx)).style(s), r),
            None => (Row::new(cells(t, cx)), r),
        })
        .collect();
    let selected = ui.selected.min(rows.len().saturating_sub(1));
    let chosen = rows.get(selected).map(|(_, r)| (*r).clone());
    let header = Row::new(header).style(th.dim());
    let table = Table::new(rows.into_iter().map(|(r, _)| r), widths)
        .header(header)
        .row_highlight_style(th.selected());
    let mut state = TableState::default().with_selected(chosen.as_ref().map(|_| selected));
    f.render_stateful_widget(table, list, &mut state);
    let lines = match (&chosen, &ui.search) {
        (_, Some(text)) => vec![Line::from(vec![
            Span::styled("entity: ", th.title()),
            Span::raw(clean(text, 128)),
            Span::styled(
                format!("{}  Enter searches, Esc drops", th.sym("▏", "_")),
                th.dim(),
            ),
        ])],
        (Some(r), None) => details(r, cx),
        (None, None) => vec![Line::from(Span::styled(
            "no events yet: space runs the workload",
            th.dim(),
        ))],
    };
    f.render_widget(Paragraph::new(lines), detail);
}

fn details<'a>(r: &EventRow, cx: &Ctx<'_>) -> Vec<Line<'a>> {
    let th = &cx.theme;
    vec![
        Line::from(vec![
            Span::styled(format!("#{} ", r.seq), th.title()),
            Span::raw(format!("kind {}  ", r.kind)),
            Span::raw(format!("{} / {}", r.entity, r.scope)),
        ]),
        Line::from(vec![
            Span::styled("correlation ", th.dim()),
            Span::raw(format!("#{}  ", r.correlation)),
            Span::styled("cause ", th.dim()),
            Span::raw(r.cause.map_or("none (a root)".into(), |c| format!("#{c}"))),
        ]),
        Line::from(vec![
            Span::styled("payload ", th.dim()),
            Span::raw(r.payload.clone()),
        ]),
    ]
}
