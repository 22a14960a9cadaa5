//! The ingredient inspector: accuracy, norms and distance from the shared init per ingredient,
//! the cosine or distance matrix, per-tensor norms, and the ingredient least like the others.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

use crate::inspect::DiversityReport;
use crate::tui::keymap::{self, Context, Situation};
use crate::tui::state::{Inspection, Ui};
use crate::tui::widgets::{pct, shade};

pub fn draw(f: &mut Frame, inspection: &Inspection, ui: &Ui, area: Rect) {
    let rows = Layout::vertical([Constraint::Min(8), Constraint::Length(1)]).split(area);
    let keys = keymap::footer(Context::Inspector, &Situation::default());
    f.render_widget(
        Paragraph::new(keys).style(Style::default().add_modifier(Modifier::REVERSED)),
        rows[1],
    );
    let block = Block::bordered().title("ingredient inspector");
    match inspection {
        Inspection::Idle => f.render_widget(
            Paragraph::new("select ingredients on the setup screen, then press i").block(block),
            rows[0],
        ),
        Inspection::Loading(n) => f.render_widget(
            Paragraph::new(format!("loading and comparing {n} checkpoints...")).block(block),
            rows[0],
        ),
        Inspection::Failed(e) => f.render_widget(
            Paragraph::new(format!("cannot inspect: {e}")).wrap(Wrap { trim: true }).block(block),
            rows[0],
        ),
        Inspection::Ready(d) => diversity(f, d, ui.inspect_scroll, ui.inspect_distance, rows[0]),
    }
}

fn num(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.3}")
    }
}

fn diversity(f: &mut Frame, d: &DiversityReport, scroll: usize, show_distance: bool, area: Rect) {
    let n = d.ingredients.len();
    let top = (n as u16 + 3).min(area.height / 2);
    let rows = Layout::vertical([Constraint::Length(top), Constraint::Min(4)]).split(area);
    let outlier = d.outlier();
    let summary = d.ingredients.iter().enumerate().map(|(i, g)| {
        let name = g.path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let mark = if Some(i) == outlier { " <- least like the others" } else { "" };
        Row::new(vec![
            format!("#{i}"),
            name,
            g.val_acc.map_or("-".into(), pct),
            g.test_acc.map_or("-".into(), pct),
            num(g.norm),
            g.distance_from_init.map_or("-".into(), num),
            mark.to_string(),
        ])
    });
    let header = Row::new(["#", "file", "val", "test", "norm", "from init", ""])
        .style(Style::default().add_modifier(Modifier::BOLD));
    let widths = [
        Constraint::Length(3),
        Constraint::Min(12),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Length(9),
        Constraint::Length(25),
    ];
    let title = format!(
        "ingredients: mean cosine of {} {:.3}{}",
        d.cosine_of,
        d.mean_cosine(),
        if d.init.is_none() { " (no init.safetensors found)" } else { "" }
    );
    f.render_widget(
        Table::new(summary, widths).header(header).block(Block::bordered().title(title)),
        rows[0],
    );

    let cols =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).split(rows[1]);
    if show_distance {
        matrix(f, "L2 distance between weights (m: cosine)", &d.distance, cols[0], false);
    } else {
        matrix(f, &format!("cosine of {} (m: distance)", d.cosine_of), &d.cosine, cols[0], true);
    }
    let visible = cols[1].height.saturating_sub(3) as usize;
    let first = scroll.min(d.tensors.len().saturating_sub(visible.max(1)));
    let tensor_rows = d.tensors.iter().skip(first).take(visible).map(|t| {
        let (lo, hi) = t.norms.iter().fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        let mean = t.norms.iter().sum::<f64>() / t.norms.len().max(1) as f64;
        Row::new(vec![t.name.clone(), num(mean), format!("{lo:.2}-{hi:.2}")])
    });
    let header = Row::new(["tensor", "mean norm", "min-max"])
        .style(Style::default().add_modifier(Modifier::BOLD));
    let widths = [Constraint::Min(18), Constraint::Length(9), Constraint::Length(9)];
    let title = format!(
        "per-tensor norms ({}-{} of {})",
        first + 1,
        (first + visible).min(d.tensors.len()),
        d.tensors.len()
    );
    f.render_widget(
        Table::new(tensor_rows, widths).header(header).block(Block::bordered().title(title)),
        cols[1],
    );
}

/// A square matrix with a shade glyph beside each value (so it reads without colour): for
/// cosines, darker = more alike; for distances, darker = farther apart.
fn matrix(f: &mut Frame, title: &str, m: &[Vec<f64>], area: Rect, similarity: bool) {
    let n = m.len();
    let off: Vec<f64> = (0..n)
        .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
        .map(|(i, j)| m[i][j])
        .collect();
    let (lo, hi) = off.iter().fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    let cell = 6usize;
    let fit = ((area.width.saturating_sub(5)) as usize / cell).min(n);
    let mut lines = vec![Line::from(format!(
        "   {}",
        (0..fit).map(|j| format!("{:>w$}", format!("#{j}"), w = cell)).collect::<String>()
    ))];
    for (i, row) in m.iter().enumerate().take(area.height.saturating_sub(3) as usize) {
        let mut spans = vec![Span::raw(format!("#{i:<2}"))];
        for (j, &x) in row.iter().enumerate().take(fit) {
            let glyph = if i == j || hi <= lo { ' ' } else { shade((x - lo) / (hi - lo)) };
            let text = if similarity { format!("{x:>5.2}") } else { format!("{:>5}", num(x)) };
            spans.push(Span::raw(format!("{glyph}{}", &text[text.len().saturating_sub(5)..])));
        }
        lines.push(Line::from(spans));
    }
    if fit < n {
        lines.push(Line::from(format!("(first {fit} of {n}: widen the terminal)")));
    }
    f.render_widget(Paragraph::new(lines).block(Block::bordered().title(title.to_string())), area);
}
