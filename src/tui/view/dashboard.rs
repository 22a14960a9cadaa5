//! The dashboard: what runs on what, the selected run's mixing weights (the widest panel: what
//! users open the workbench to inspect), its loss and accuracy curves, its progress (LS
//! schedule, PLS parts, greedy/GIS candidates), the session's results and the log.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, Gauge, GraphType, Paragraph, Row, Table};
use ratatui::Frame;

use crate::soup::{LogLevel, Strategy};
use crate::tui::app::App;
use crate::tui::keymap::{self, Context};
use crate::tui::state::{Panel, RunView};
use crate::tui::system::Snapshot;
use crate::tui::widgets::{fit, focused_block, pct, shade};
use crate::units::mib;

fn panel(app: &App, which: Panel, title: String) -> Block<'static> {
    focused_block(title, app.ui.focus == which)
}

pub fn draw(f: &mut Frame, app: &App, sys: &Snapshot, area: Rect) {
    let log_rows = if area.height >= 40 { 7 } else { 4 };
    let rows = Layout::vertical([
        Constraint::Length(4),
        Constraint::Min(10),
        Constraint::Length(log_rows),
        Constraint::Length(1),
    ])
    .split(area);
    header(f, app, sys, rows[0]);
    let body =
        Layout::horizontal([Constraint::Percentage(56), Constraint::Percentage(44)]).split(rows[1]);
    // The weights panel gets a row per ingredient (plus header, legend and borders) when they fit.
    let weights_rows = (weights_height(app, body[0].width.saturating_sub(2) as usize) as u16)
        .clamp(7, body[0].height.saturating_sub(6).max(7));
    let left =
        Layout::vertical([Constraint::Length(weights_rows), Constraint::Min(5)]).split(body[0]);
    weights(f, app, left[0]);
    progress(f, app, left[1]);
    let results_rows = (app.runs.len() as u16 + 4).clamp(5, 10);
    let right = Layout::vertical([
        Constraint::Min(4),
        Constraint::Min(4),
        Constraint::Length(results_rows),
    ])
    .split(body[1]);
    let run = app.shown_run();
    curve(f, app, right[0], "loss", run.map_or(&[][..], |r| &r.loss[..]), Color::Magenta);
    curve(f, app, right[1], "val accuracy", run.map_or(&[][..], |r| &r.val[..]), Color::Cyan);
    results(f, app, right[2]);
    log(f, app, rows[2]);
    footer(f, app, rows[3]);
}

fn header(f: &mut Frame, app: &App, sys: &Snapshot, area: Rect) {
    let cols =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).split(area);
    let job = &app.job;
    let run = app.shown_run();
    let strategy = run.map_or("-".to_string(), |r| r.strategy.to_string());
    let state = match (&job.failed, job.running) {
        (Some(_), _) => "FAILED",
        (None, true) => "running",
        (None, false) => "done",
    };
    let viewing = match app.ui.selected {
        Some(i) => format!(" (run {} of {})", i + 1, app.runs.len()),
        None => String::new(),
    };
    let text = format!(
        "{strategy}{viewing} on {} ({} nodes, {} edges), {} ingredients, {}",
        job.dataset,
        job.nodes,
        job.edges,
        job.ingredients.len(),
        job.device
    );
    let lines = vec![Line::from(text), Line::from(format!("{}  |  {}", sys.cpu_ram, sys.gpu))];
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(format!("{} [{state}]", app.title))),
        cols[0],
    );
    let (ratio, label) = match run {
        Some(r) if r.steps > 0 => {
            let eta = r.eta().map_or(String::new(), |d| format!(" eta {}s", d.as_secs()));
            (
                (r.step as f64 / r.steps as f64).clamp(0.0, 1.0),
                format!("{}/{}{eta}", r.step, r.steps),
            )
        }
        Some(r) if r.finished() => (1.0, "done".to_string()),
        _ if job.running => (0.0, "running".to_string()),
        _ => (1.0, "done".to_string()),
    };
    f.render_widget(
        Gauge::default()
            .block(Block::bordered().title("progress"))
            .ratio(ratio)
            .label(label)
            .gauge_style(Style::default().fg(Color::Green)),
        cols[1],
    );
}

fn curve(f: &mut Frame, app: &App, area: Rect, name: &str, points: &[(f64, f64)], color: Color) {
    let run = app.shown_run();
    let shown: &[(f64, f64)] =
        if app.ui.whole_run || points.len() <= 50 { points } else { &points[points.len() - 50..] };
    let window = if app.ui.whole_run { "whole run" } else { "recent" };
    let strategy = run.map_or("-".to_string(), |r| r.strategy.to_string());
    let last = shown.last().map_or("-".to_string(), |p| {
        if name == "loss" {
            format!("{:.4}", p.1)
        } else {
            pct(p.1)
        }
    });
    let block = panel(app, Panel::Curves, format!("{name} ({strategy}, {window}): {last}"));
    if shown.is_empty() {
        let why = match run {
            Some(r) if !r.strategy.is_learned() => {
                format!("{} has no epochs ([ ] selects another run)", r.strategy)
            }
            _ => "waiting for the first epoch".to_string(),
        };
        f.render_widget(Paragraph::new(why).block(block), area);
        return;
    }
    let (x0, x1) = (shown[0].0, shown[shown.len() - 1].0.max(shown[0].0 + 1.0));
    let (mut y0, mut y1) =
        shown.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    if (y1 - y0).abs() < 1e-9 {
        // A flat line: a narrow band around it (an accuracy stays within [0, 1]).
        let pad = (y0.abs() * 0.01).max(0.005);
        y0 -= pad;
        y1 += pad;
    }
    let data = Dataset::default()
        .marker(symbols::Marker::Braille)
        .graph_type(GraphType::Line)
        .style(Style::default().fg(color))
        .data(shown);
    // The title names the curve: no legend over the line.
    let chart = Chart::new(vec![data])
        .block(block)
        .legend_position(None)
        .x_axis(
            Axis::default()
                .bounds([x0, x1])
                .labels(vec![Span::raw(format!("{x0:.0}")), Span::raw(format!("{x1:.0}"))]),
        )
        .y_axis(
            Axis::default()
                .bounds([y0, y1])
                .labels(vec![Span::raw(format!("{y0:.2}")), Span::raw(format!("{y1:.2}"))]),
        );
    f.render_widget(chart, area);
}

/// Rows the weights panel needs to show every ingredient: header, one per ingredient, the legend
/// of the groups (about as many lines as its text needs at this width) and the borders.
fn weights_height(app: &App, inner: usize) -> usize {
    let run = app.shown_run();
    let ingredients = run.map_or(0, |r| r.weights.ingredients()).max(app.job.ingredients.len());
    let legend_chars: usize = run.map_or(0, |r| {
        if r.weights.groups.len() > 1 {
            r.weights.groups.iter().map(|g| g.len() + 4).sum()
        } else {
            0
        }
    });
    let legend_lines = legend_chars.div_ceil(inner.max(1)).min(3);
    ingredients + legend_lines + 3
}

/// One row per ingredient: its mean weight as a number and a bar, then one shaded cell per
/// weight group (tensor, layer, or one for the whole model), named in the legend below.
fn weights(f: &mut Frame, app: &App, area: Rect) {
    let Some(run) = app.shown_run() else {
        f.render_widget(
            Paragraph::new("mixing weights appear when a strategy starts").block(panel(
                app,
                Panel::Weights,
                "mixing weights".into(),
            )),
            area,
        );
        return;
    };
    let when = if run.finished() {
        "final".to_string()
    } else if run.strategy.is_learned() {
        format!("epoch {}", run.step)
    } else {
        "when done".into()
    };
    let title = format!("mixing weights: {} ({when})", run.strategy);
    let w = &run.weights;
    let mean = w.mean();
    if mean.is_empty() {
        let msg = if run.strategy == Strategy::Ensemble {
            "the ensemble averages outputs: no weights"
        } else {
            "weights appear with the first epoch or when the strategy ends"
        };
        f.render_widget(Paragraph::new(msg).block(panel(app, Panel::Weights, title)), area);
        return;
    }
    let inner = area.width.saturating_sub(2) as usize;
    let groups = w.rows.len();
    let bar_width = 12usize;
    let prefix = 3 + 6 + bar_width + 2;
    let cell = if groups * 3 <= inner.saturating_sub(prefix) {
        3
    } else if groups * 2 <= inner.saturating_sub(prefix) {
        2
    } else {
        1
    };
    let fitting = (inner.saturating_sub(prefix) / cell).min(groups);
    // The legend names each column, wrapped over as many lines as it needs (at most 3).
    let legend = if groups > 1 {
        let names: Vec<String> = w
            .groups
            .iter()
            .enumerate()
            .take(fitting)
            .map(|(g, name)| format!("{}={name}", g + 1))
            .collect();
        let more = if fitting < groups {
            vec![format!("(+{} groups: widen)", groups - fitting)]
        } else {
            vec![]
        };
        wrap_words(names.into_iter().chain(more), inner.max(1), 3)
    } else {
        Vec::new()
    };
    let visible = (area.height as usize).saturating_sub(3 + legend.len()).max(1);
    let first = app.ui.weights_scroll.min(mean.len().saturating_sub(visible));
    let max = w.max();
    let max_mean = mean.iter().cloned().fold(0.0, f64::max).max(1e-12);
    let mut lines = vec![Line::from(Span::styled(
        fit(
            &format!(
                " # {:<5} {:<bar_width$}  {}",
                "mean",
                "",
                (1..=fitting).map(|g| format!("{g:<cell$}")).collect::<String>()
            ),
            inner,
        ),
        Style::default().add_modifier(Modifier::BOLD),
    ))];
    for (i, m) in mean.iter().enumerate().skip(first).take(visible) {
        let n = ((m / max_mean) * bar_width as f64).round() as usize;
        let cells: String = w
            .rows
            .iter()
            .take(fitting)
            .map(|row| {
                format!(
                    "{:<cell$}",
                    shade(if max > 0.0 { row[i] / max } else { 0.0 })
                        .to_string()
                        .repeat(cell.min(2))
                )
            })
            .collect();
        lines.push(Line::from(vec![
            Span::raw(format!("{i:>2} {m:.3} ")),
            Span::styled("█".repeat(n.min(bar_width)), Style::default().fg(Color::Magenta)),
            Span::raw(" ".repeat(bar_width - n.min(bar_width) + 2)),
            Span::raw(cells),
        ]));
    }
    for l in legend {
        lines.push(Line::from(Span::styled(l, Style::default().add_modifier(Modifier::ITALIC))));
    }
    let mut block = panel(app, Panel::Weights, title);
    if mean.len() > visible {
        block = block.title_bottom(format!(
            "{}-{} of {} (j/k)",
            first + 1,
            (first + visible).min(mean.len()),
            mean.len()
        ));
    }
    f.render_widget(Paragraph::new(lines).block(block), area);
}

/// Words joined by spaces into lines of at most `width` characters, at most `max_lines` of them
/// (the last one cut when they do not fit).
fn wrap_words(words: impl Iterator<Item = String>, width: usize, max_lines: usize) -> Vec<String> {
    let mut lines: Vec<String> = vec![String::new()];
    for w in words {
        let last = lines.last_mut().expect("one line at least");
        if last.is_empty() {
            *last = w;
        } else if last.chars().count() + 1 + w.chars().count() <= width {
            last.push(' ');
            last.push_str(&w);
        } else {
            lines.push(w);
        }
    }
    lines.truncate(max_lines);
    lines.into_iter().map(|l| fit(&l, width)).collect()
}

fn progress(f: &mut Frame, app: &App, area: Rect) {
    let Some(run) = app.shown_run() else {
        f.render_widget(
            Paragraph::new("").block(panel(app, Panel::Progress, "progress".into())),
            area,
        );
        return;
    };
    match run.strategy {
        Strategy::Pls => pls_parts(f, app, run, area),
        Strategy::Ls => ls_schedule(f, app, run, area),
        Strategy::Greedy | Strategy::Gis => candidates(f, app, run, area),
        Strategy::Uniform | Strategy::Ensemble => {
            let what = if run.strategy == Strategy::Uniform {
                "the mean of every ingredient's weights"
            } else {
                "the mean of every ingredient's outputs (N forward passes per prediction)"
            };
            f.render_widget(
                Paragraph::new(format!("{}: {what}; no steps", run.strategy)).block(panel(
                    app,
                    Panel::Progress,
                    run.strategy.to_string(),
                )),
                area,
            );
        }
    }
}

fn ls_schedule(f: &mut Frame, app: &App, run: &RunView, area: Rect) {
    let best =
        run.val.iter().cloned().fold(
            None,
            |b: Option<(f64, f64)>, p| if b.is_none_or(|b| p.1 > b.1) { Some(p) } else { b },
        );
    let per_epoch =
        if run.step > 0 { run.elapsed.as_secs_f64() / run.step as f64 } else { f64::NAN };
    let mut lines = vec![
        Line::from(format!("epoch {}/{}, {per_epoch:.2} s each", run.step, run.steps)),
        Line::from(format!("learning rate {:.3} (cosine warm restarts)", run.lr)),
        Line::from(format!(
            "best val {}",
            best.map_or("-".into(), |(e, v)| format!("{} at epoch {e:.0}", pct(v)))
        )),
    ];
    if let Some(h) = run.report.as_ref().and_then(|r| r.holdout.as_ref()) {
        lines.push(Line::from(format!(
            "held out {} nodes: best epoch {}{}",
            h.select_nodes,
            h.best_epoch,
            if h.stopped_early { ", stopped early" } else { "" }
        )));
    }
    f.render_widget(
        Paragraph::new(lines).block(panel(app, Panel::Progress, "LS schedule".into())),
        area,
    );
}

fn pls_parts(f: &mut Frame, app: &App, run: &RunView, area: Rect) {
    let k = run.parts.unwrap_or(0);
    let block =
        panel(app, Panel::Progress, format!("PLS parts: {} of {k} sampled", run.last_sample.len()));
    // part_uses is bounded even when an events file claims absurd K.
    let spans: Vec<Span> = (0..k.min(run.part_uses.len()))
        .map(|p| {
            let sampled = run.last_sample.contains(&p);
            let text = format!(
                "{:>3}{}",
                run.part_uses.get(p).copied().unwrap_or(0),
                if sampled { "*" } else { " " }
            );
            Span::styled(
                text,
                if sampled {
                    Style::default().fg(Color::Green).add_modifier(Modifier::BOLD)
                } else {
                    Style::default()
                },
            )
        })
        .collect();
    let mut lines = vec![
        Line::from(format!(
            "{} nodes, {} edges; lr {:.3}",
            run.last_subgraph.0, run.last_subgraph.1, run.lr
        )),
        Line::from("uses per part, * = now"),
    ];
    let per_line = ((area.width.saturating_sub(2)) / 4).max(1) as usize;
    for chunk in spans.chunks(per_line) {
        lines.push(Line::from(chunk.to_vec()));
    }
    f.render_widget(Paragraph::new(lines).block(block), area);
}

fn candidates(f: &mut Frame, app: &App, run: &RunView, area: Rect) {
    let block = panel(
        app,
        Panel::Progress,
        format!("{} candidates: {} of {} tried", run.strategy, run.candidates.len(), run.steps),
    );
    if run.candidates.is_empty() {
        f.render_widget(Paragraph::new("starting from the best ingredient...").block(block), area);
        return;
    }
    let factor = if run.strategy == Strategy::Gis { "a" } else { "w" };
    let rows = run.candidates.iter().rev().map(|c| {
        Row::new(vec![
            c.ingredient.to_string(),
            format!("{:.2}", c.factor),
            pct(c.val_acc),
            if c.accepted { "kept".into() } else { "rejected".into() },
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(3),
            Constraint::Length(4),
            Constraint::Length(7),
            Constraint::Length(8),
        ],
    )
    .header(
        Row::new(vec!["ing", factor, "val", ""])
            .style(Style::default().add_modifier(Modifier::BOLD)),
    )
    .block(block);
    f.render_widget(table, area);
}

fn results(f: &mut Frame, app: &App, area: Rect) {
    let mut rows: Vec<Row> = Vec::new();
    let acc = &app.job.ingredient_acc;
    if !acc.is_empty() {
        let n = acc.len() as f64;
        let mean = |f: fn(&(f64, f64)) -> f64| acc.iter().map(f).sum::<f64>() / n;
        rows.push(Row::new(vec![
            " ingr mean".to_string(),
            pct(mean(|a| a.0)),
            pct(mean(|a| a.1)),
            String::new(),
        ]));
    }
    let shown = app.shown_index();
    let focused = app.ui.focus == Panel::Results;
    for (i, run) in app.runs.iter().enumerate() {
        let mark = if Some(i) == shown { ">" } else { " " };
        let cells = match &run.report {
            Some(r) => vec![
                format!("{mark}{}{}", r.strategy, if r.partial { "*" } else { "" }),
                pct(r.val_acc),
                pct(r.test_acc),
                format!("{:.1}s", r.seconds),
                format!("{}M", mib(r.peak_rss_bytes)),
            ],
            None => vec![
                format!("{mark}{}", run.strategy),
                "...".into(),
                String::new(),
                format!("{:.1}s", run.elapsed.as_secs_f64()),
                String::new(),
            ],
        };
        let row = Row::new(cells);
        rows.push(if focused && Some(i) == shown {
            row.style(Style::default().add_modifier(Modifier::REVERSED))
        } else {
            row
        });
    }
    // Keep the selected run in view.
    let visible = area.height.saturating_sub(3) as usize;
    let at = shown.map_or(0, |i| i + 1 + usize::from(!acc.is_empty()));
    let skip = at.saturating_sub(visible).min(rows.len().saturating_sub(visible));
    let rows: Vec<Row> = rows.into_iter().skip(skip).collect();
    // Columns by priority: time and peak memory go first when the panel is narrow.
    let inner = area.width.saturating_sub(2);
    let columns = if inner >= 40 {
        5
    } else if inner >= 33 {
        4
    } else {
        3
    };
    let widths = [
        Constraint::Length(11),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Length(6),
    ];
    let table = Table::new(rows, &widths[..columns])
        .header(
            Row::new(vec![" run", "val", "test", "time", "peak"].into_iter().take(columns))
                .style(Style::default().add_modifier(Modifier::BOLD)),
        )
        .block(panel(app, Panel::Results, "results (> shown, * partial; s save)".into()));
    f.render_widget(table, area);
}

fn log(f: &mut Frame, app: &App, area: Rect) {
    let block = panel(app, Panel::Log, "log".into());
    let visible = area.height.saturating_sub(2) as usize;
    let end = app.logs.len().saturating_sub(app.ui.log_scroll);
    let start = end.saturating_sub(visible);
    let lines: Vec<Line> = app.logs[start..end]
        .iter()
        .map(|(level, msg)| {
            let style = match level {
                LogLevel::Error => Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
                LogLevel::Warn => Style::default().fg(Color::Magenta).add_modifier(Modifier::BOLD),
                LogLevel::Info => Style::default(),
            };
            Line::from(vec![
                Span::styled(format!("{:<5} ", level.name()), style),
                Span::raw(msg.clone()),
            ])
        })
        .collect();
    f.render_widget(Paragraph::new(lines).block(block), area);
}

fn footer(f: &mut Frame, app: &App, area: Rect) {
    let keys = keymap::footer(Context::Dashboard, &app.situation());
    f.render_widget(
        Paragraph::new(keys).style(Style::default().add_modifier(Modifier::REVERSED)),
        area,
    );
}
