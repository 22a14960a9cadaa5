//! The training viewer (`tui --attach` on a training directory): a gauge of the run, a row per
//! worker (its device, the ingredient it trains, epoch, loss, validation accuracy), and every
//! finished ingredient.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Gauge, Paragraph, Row, Table};
use ratatui::Frame;

use crate::tui::state::TrainingView;
use crate::tui::system::Snapshot;

fn percent(x: f64) -> String {
    if x.is_finite() {
        format!("{:.2}%", 100.0 * x)
    } else {
        "-".into()
    }
}

pub fn draw(f: &mut Frame, t: &TrainingView, source: &str, sys: &Snapshot, area: Rect) {
    let [head, workers, done, keys] = Layout::vertical([
        Constraint::Length(5),
        Constraint::Length(t.workers.len().max(1) as u16 + 3),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    let owned = t.owned();
    let state = match (&t.failed, t.finished) {
        (Some(_), _) => "failed".to_string(),
        (None, Some((s, true))) => format!("done in {s:.1}s, manifest written"),
        (None, Some((s, false))) => {
            format!("shard done in {s:.1}s (train --collect writes the manifest)")
        }
        (None, None) => "training".into(),
    };
    let shard = t.shard.as_ref().map_or(String::new(), |s| format!(", shard {s}"));
    let title = format!(
        "training {} ingredients: {} on {}{shard} [{state}]",
        t.ingredients, t.model, t.dataset
    );
    let [info, gauge] = Layout::vertical([Constraint::Length(2), Constraint::Length(1)])
        .areas(Block::bordered().inner(head));
    f.render_widget(Block::bordered().title(title), head);
    let lines = vec![
        Line::from(format!("{source}  |  {} worker(s): {}", t.workers.len(), t.devices.join(", "))),
        Line::from(format!("{}  |  {}", sys.cpu_ram, sys.gpu)),
    ];
    f.render_widget(Paragraph::new(lines), info);
    let ratio = if owned == 0 { 0.0 } else { (t.done.len() as f64 / owned as f64).min(1.0) };
    f.render_widget(
        Gauge::default()
            .ratio(ratio)
            .label(format!("{}/{owned} ingredients", t.done.len()))
            .gauge_style(Style::default().fg(Color::Green)),
        gauge,
    );

    let rows = t.workers.iter().enumerate().map(|(w, v)| {
        let device = t.devices.get(w).cloned().unwrap_or_default();
        match v.ingredient {
            Some(i) => Row::new(vec![
                format!("w{w}"),
                device,
                format!("#{i:02}"),
                format!("{}/{}", v.epoch, t.epochs),
                if v.loss.is_finite() { format!("{:.4}", v.loss) } else { "-".into() },
                percent(v.val_acc),
                v.batch.map_or(String::new(), |(b, n, rate)| format!("{b}/{n}  {rate:.0}/s")),
                v.finished.to_string(),
            ]),
            None => Row::new(vec![
                format!("w{w}"),
                device,
                "idle".into(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                v.finished.to_string(),
            ]),
        }
    });
    let header = Row::new(vec![
        "worker",
        "device",
        "ingredient",
        "epoch",
        "loss",
        "val",
        "batch, seeds",
        "finished",
    ])
    .style(Style::default().add_modifier(Modifier::BOLD));
    let widths = [
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(10),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Length(16),
        Constraint::Length(8),
    ];
    f.render_widget(
        Table::new(rows, widths).header(header).block(Block::bordered().title("workers")),
        workers,
    );

    // The latest finished ingredients that fit, in index order.
    let visible = done.height.saturating_sub(3) as usize;
    let skip = t.done.len().saturating_sub(visible);
    let rows = t.done.iter().skip(skip).map(|(i, (w, val, test))| {
        Row::new(vec![
            format!("ingredient-{i:02}"),
            w.map_or("kept".to_string(), |w| format!("w{w}")),
            percent(*val),
            percent(*test),
        ])
    });
    let header = Row::new(vec!["ingredient", "by", "val", "test"])
        .style(Style::default().add_modifier(Modifier::BOLD));
    let title = match &t.failed {
        Some(m) => format!("finished ingredients  |  FAILED: {m}"),
        None => format!("finished ingredients ({} of {owned})", t.done.len()),
    };
    f.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(16),
                Constraint::Length(6),
                Constraint::Length(8),
                Constraint::Length(8),
            ],
        )
        .header(header)
        .block(Block::bordered().title(title)),
        done,
    );
    f.render_widget(
        Paragraph::new("q close the viewer (the training goes on in its own process)"),
        keys,
    );
}
