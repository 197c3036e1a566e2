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

fn cells<'a>(indent: String, r: &EventRow, cx: &Ctx<'_>) -> Vec<Span<'a>> {
    let th = &cx.theme;
    vec![
        Span::raw(format!("{indent}#{}", r.seq)),
        Span::styled(r.kind.clone(), th.dim()),
        Span::raw(r.entity.clone()),
        Span::styled(
            r.cause
                .map_or("root".into(), |c| format!("{}#{c}", th.sym("← ", "<-"))),
            th.dim(),
        ),
        Span::raw(r.payload.clone()),
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
    let mut rows: Vec<(Row<'_>, &EventRow)> = Vec::new();
    match &v.focus {
        Some(fo) => {
            for r in &fo.ancestors {
                rows.push((
                    Row::new(cells(th.sym("↑ ", "^ ").into(), r, cx)).style(th.dim()),
                    r,
                ));
            }
            let branch = if th.ascii { "`-" } else { "└─" };
            for (depth, r) in &fo.tree {
                let indent = match depth {
                    0 => th.sym("● ", "* ").to_string(),
                    d => format!("{}{branch}", "  ".repeat(*d as usize - 1)),
                };
                let row = Row::new(cells(indent, r, cx));
                rows.push((
                    if *depth == 0 {
                        row.style(th.title())
                    } else {
                        row
                    },
                    r,
                ));
            }
        }
        None => rows.extend(
            v.recent
                .iter()
                .map(|r| (Row::new(cells(String::new(), r, cx)), r)),
        ),
    }
    let selected = ui.selected.min(rows.len().saturating_sub(1));
    let chosen = rows.get(selected).map(|(_, r)| (*r).clone());
    let widths = [
        Constraint::Length(16),
        Constraint::Length(6),
        Constraint::Length(14),
        Constraint::Length(9),
        Constraint::Min(10),
    ];
    let header = Row::new(["event", "kind", "entity", "cause", "payload"]).style(th.dim());
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
