//! Drawing the setup screen (checkpoint browser and strategy form) and the ingredient inspector.
//! Like the dashboard, every widget copes with any size, and selection, refusal and focus are
//! marked by text or glyph as well as colour.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

use super::app::{App, Inspection};
use super::setup::{EntryKind, FieldKind, Setup, SetupFocus};
use super::ui::{focused_block, pct, shade};
use crate::inspect::DiversityReport;

/// Rows `first..first + visible` of `len`, scrolled so that `cursor` shows.
fn window(len: usize, cursor: usize, visible: usize) -> std::ops::Range<usize> {
    let visible = visible.max(1);
    let first = cursor.saturating_sub(visible - 1).min(len.saturating_sub(visible));
    first..(first + visible).min(len)
}

pub fn draw_setup(f: &mut Frame, app: &App, area: Rect) {
    let Some(setup) = &app.setup else { return };
    let rows = Layout::vertical([Constraint::Min(8), Constraint::Length(3), Constraint::Length(1)]).split(area);
    let cols = Layout::horizontal([Constraint::Percentage(64), Constraint::Percentage(36)]).split(rows[0]);
    browser(f, setup, cols[0]);
    form(f, setup, cols[1]);
    let status = match (&setup.message, setup.settings()) {
        (Some(m), _) => Line::from(Span::styled(m.clone(), Style::default().add_modifier(Modifier::BOLD))),
        (None, Ok(s)) => Line::from(format!("ready: {} ingredient(s), {} strategy run(s); s or Enter (in the form) starts", setup.selected.len(), s.len())),
        (None, Err(e)) => Line::from(Span::styled(format!("not ready: {e}"), Style::default().add_modifier(Modifier::BOLD))),
    };
    f.render_widget(Paragraph::new(status).wrap(Wrap { trim: true }).block(Block::bordered().title("status")), rows[1]);
    let keys = match setup.focus {
        SetupFocus::Browser => "j/k move  space select  a all/none  Enter open  Bksp up  i inspect  s start  Tab form  q quit  ? help",
        SetupFocus::Form => "up/down field  left/right choose  type to edit  Enter start  Tab/Esc browser",
    };
    f.render_widget(Paragraph::new(keys).style(Style::default().add_modifier(Modifier::REVERSED)), rows[2]);
}

fn browser(f: &mut Frame, setup: &Setup, area: Rect) {
    let title = format!("checkpoints in {} ({} selected)", setup.dir.display(), setup.selected.len());
    let block = focused_block(title, setup.focus == SetupFocus::Browser);
    let inner = area.width.saturating_sub(2) as usize;
    let visible = area.height.saturating_sub(3) as usize;
    let range = window(setup.entries.len(), setup.cursor, visible);
    // Columns laid out by hand, so a refusal's reason can run across the metadata columns.
    // Every file listed is a checkpoint: the extension only takes room.
    let shown = |e: &super::setup::Entry| e.name.strip_suffix(".safetensors").unwrap_or(&e.name).to_string();
    let name_w = setup.entries.iter().map(|e| shown(e).chars().count()).max().unwrap_or(10).clamp(10, 30);
    let fit = |text: String, w: usize| -> String {
        let t: String = text.chars().take(w).collect();
        format!("{t:<w$}")
    };
    let dim = Style::default().fg(Color::DarkGray);
    let mut lines = vec![Line::from(Span::styled(
        fit(format!("   {:<name_w$} {:<9} {:<9} {:>4} {:>13} {}", "name", "arch", "dataset", "seed", "val/test", "init"), inner),
        Style::default().add_modifier(Modifier::BOLD),
    ))];
    for i in range {
        let e = &setup.entries[i];
        let cursor = if i == setup.cursor { ">" } else { " " };
        let name = fit(shown(e), name_w);
        let (mark, rest, style) = match &e.kind {
            EntryKind::Parent | EntryKind::Dir => (" ", String::new(), Style::default().add_modifier(Modifier::BOLD)),
            EntryKind::Checkpoint(Err(err)) => ("!", format!("unreadable: {err}"), dim),
            EntryKind::Checkpoint(Ok(m)) => {
                let selected = setup.is_selected(&e.path);
                match (selected, if selected { None } else { setup.blocked(e) }) {
                    (_, Some(why)) => (" ", format!("x {why}"), dim),
                    (selected, None) => (
                        if selected { "*" } else { " " },
                        format!(
                            "{:<9} {:<9} {:>4} {:>13} {}",
                            format!("{} {}x{}", m.arch.arch, m.arch.layers, m.arch.hidden),
                            m.dataset.chars().take(9).collect::<String>(),
                            m.seed.map_or("-".into(), |s| s.to_string()),
                            format!("{}/{}", m.val_acc.map_or("-".into(), pct), m.test_acc.map_or("-".into(), pct)),
                            m.init_fingerprint.chars().take(6).collect::<String>()
                        ),
                        if selected { Style::default().fg(Color::Green).add_modifier(Modifier::BOLD) } else { Style::default() },
                    ),
                }
            }
        };
        let style = if i == setup.cursor { style.add_modifier(Modifier::REVERSED) } else { style };
        lines.push(Line::from(Span::styled(fit(format!("{cursor}{mark} {name} {rest}"), inner), style)));
    }
    f.render_widget(Paragraph::new(lines).block(block), area);
}

fn form(f: &mut Frame, setup: &Setup, area: Rect) {
    let block = focused_block("strategy and settings".into(), setup.focus == SetupFocus::Form);
    let errors = setup.settings().err().unwrap_or_default();
    let mut lines: Vec<Line> = Vec::new();
    for (i, field) in setup.fields.iter().enumerate() {
        let active = i == setup.field && setup.focus == SetupFocus::Form;
        let value = match field.kind {
            FieldKind::Choice(_) => format!("< {} >", field.value),
            _ if active => format!("{}_", field.value),
            _ => field.value.clone(),
        };
        // A field whose value the validation names is marked with '!' (not only coloured).
        let wrong = errors.starts_with(&format!("{}:", field.name)) || (field.name == "sample" || field.name == "parts") && errors.contains("PLS needs");
        let style = match (active, wrong) {
            (_, true) => Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
            (true, false) => Style::default().add_modifier(Modifier::REVERSED),
            _ => Style::default(),
        };
        lines.push(Line::from(vec![Span::raw(format!("{}{:<12}", if wrong { "!" } else { " " }, field.name)), Span::styled(value, style)]));
    }
    if let Some(f) = setup.fields.get(setup.field).filter(|_| setup.focus == SetupFocus::Form) {
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled(f.help, Style::default().add_modifier(Modifier::ITALIC))));
    }
    if setup.value("strategy") == "all" {
        lines.push(Line::from("every strategy, each with its defaults"));
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(block), area);
}

pub fn draw_inspector(f: &mut Frame, app: &App, area: Rect) {
    let rows = Layout::vertical([Constraint::Min(8), Constraint::Length(1)]).split(area);
    let keys = "m cosine/distance  j/k scroll tensors  Esc back  ? help";
    f.render_widget(Paragraph::new(keys).style(Style::default().add_modifier(Modifier::REVERSED)), rows[1]);
    let block = Block::bordered().title("ingredient inspector");
    match &app.inspection {
        Inspection::Idle => f.render_widget(Paragraph::new("select ingredients on the setup screen, then press i").block(block), rows[0]),
        Inspection::Loading(n) => f.render_widget(Paragraph::new(format!("loading and comparing {n} checkpoints...")).block(block), rows[0]),
        Inspection::Failed(e) => f.render_widget(Paragraph::new(format!("cannot inspect: {e}")).wrap(Wrap { trim: true }).block(block), rows[0]),
        Inspection::Ready(d) => diversity(f, d, app.inspect_scroll, app.inspect_distance, rows[0]),
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
    let header = Row::new(["#", "file", "val", "test", "norm", "from init", ""]).style(Style::default().add_modifier(Modifier::BOLD));
    let widths = [Constraint::Length(3), Constraint::Min(12), Constraint::Length(7), Constraint::Length(7), Constraint::Length(8), Constraint::Length(9), Constraint::Length(25)];
    let title = format!("ingredients: mean cosine of {} {:.3}{}", d.cosine_of, d.mean_cosine(), if d.init.is_none() { " (no init.safetensors found)" } else { "" });
    f.render_widget(Table::new(summary, widths).header(header).block(Block::bordered().title(title)), rows[0]);

    let cols = Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).split(rows[1]);
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
    let header = Row::new(["tensor", "mean norm", "min-max"]).style(Style::default().add_modifier(Modifier::BOLD));
    let widths = [Constraint::Min(18), Constraint::Length(9), Constraint::Length(9)];
    let title = format!("per-tensor norms ({}-{} of {})", first + 1, (first + visible).min(d.tensors.len()), d.tensors.len());
    f.render_widget(Table::new(tensor_rows, widths).header(header).block(Block::bordered().title(title)), cols[1]);
}

/// A square matrix with a shade glyph beside each value (so it reads without colour): for
/// cosines, darker = more alike; for distances, darker = farther apart.
fn matrix(f: &mut Frame, title: &str, m: &[Vec<f64>], area: Rect, similarity: bool) {
    let n = m.len();
    let off: Vec<f64> = (0..n).flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j))).map(|(i, j)| m[i][j]).collect();
    let (lo, hi) = off.iter().fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    let cell = 6usize;
    let fit = ((area.width.saturating_sub(5)) as usize / cell).min(n);
    let mut lines = vec![Line::from(format!("   {}", (0..fit).map(|j| format!("{:>w$}", format!("#{j}"), w = cell)).collect::<String>()))];
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
