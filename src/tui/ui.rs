//! Drawing the dashboard. Reads the state only; every widget copes with any size (a terminal
//! below 80x24 gets a message instead of a squeezed layout). Nothing depends on colour alone:
//! kept/rejected, sampled parts and heat-map cells also differ by text or glyph.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Clear, Dataset, Gauge, GraphType, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

use super::app::{App, Screen, PANELS};
use super::system::Snapshot;

pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

pub(crate) fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:.2}%", 100.0 * x)
    } else {
        "-".into()
    }
}

fn panel(app: &App, name: &str, title: String) -> Block<'static> {
    focused_block(title, PANELS.get(app.focus) == Some(&name))
}

/// A bordered block; the focused one has a bold border and its title in brackets (so focus
/// shows without colour).
pub(crate) fn focused_block(title: String, focused: bool) -> Block<'static> {
    let style = if focused { Style::default().add_modifier(Modifier::BOLD) } else { Style::default() };
    Block::bordered().title(if focused { format!("[{title}]") } else { title }).border_style(style)
}

pub fn draw(f: &mut Frame, app: &App, sys: &Snapshot) {
    let area = f.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!("gnn-soup needs a terminal of at least {MIN_WIDTH}x{MIN_HEIGHT} (this one is {}x{}). q quits.", area.width, area.height);
        f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), area);
        return;
    }
    match app.screen {
        Screen::Setup => super::screens::draw_setup(f, app, area),
        Screen::Inspect => super::screens::draw_inspector(f, app, area),
        Screen::Dashboard => dashboard(f, app, sys, area),
    }
    if app.help {
        help(f, app, area);
    }
    if app.confirm_quit {
        let r = centered(area, 50, 5);
        f.render_widget(Clear, r);
        f.render_widget(Paragraph::new("The job is still running.\nStop it (the best soup so far is kept)? y / n").block(Block::bordered().title("stop?")), r);
    }
    if let Some(dest) = &app.save_prompt {
        let r = centered(area, 70, 6);
        let what = app.results.get(app.results_cursor).map_or(String::new(), |r| r.strategy.to_string());
        f.render_widget(Clear, r);
        let text = format!("Copy the {what} soup and its report into this directory\n(existing files are never replaced):\n> {dest}_\nEnter saves, Esc cancels");
        f.render_widget(Paragraph::new(text).block(Block::bordered().title("save")), r);
    }
}

fn dashboard(f: &mut Frame, app: &App, sys: &Snapshot, area: Rect) {
    let rows = Layout::vertical([Constraint::Length(4), Constraint::Min(5), Constraint::Length(10), Constraint::Length(4), Constraint::Length(1)]).split(area);
    header(f, app, sys, rows[0]);
    let charts = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).split(rows[1]);
    let (loss, val) = app.shown_curves().map_or((&[][..], &[][..]), |c| (&c.loss[..], &c.val[..]));
    curve(f, app, charts[0], "loss", loss, Color::Magenta);
    curve(f, app, charts[1], "val accuracy", val, Color::Cyan);
    let mid = Layout::horizontal([Constraint::Percentage(34), Constraint::Percentage(27), Constraint::Percentage(39)]).split(rows[2]);
    weights(f, app, mid[0]);
    progress(f, app, mid[1]);
    results(f, app, mid[2]);
    log(f, app, rows[3]);
    footer(f, app, rows[4]);
}

fn header(f: &mut Frame, app: &App, sys: &Snapshot, area: Rect) {
    let cols = Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).split(area);
    let strategy = app.strategy.map_or("-".to_string(), |s| s.to_string());
    let state = match (&app.failed, app.running) {
        (Some(_), _) => "FAILED",
        (None, true) => "running",
        (None, false) => "done",
    };
    let text = format!("{strategy} on {} ({} nodes, {} edges), {} ingredients, {}", app.dataset, app.nodes, app.edges, app.ingredients.len(), app.device);
    let lines = vec![Line::from(text), Line::from(format!("{}  |  {}", sys.cpu_ram, sys.gpu))];
    f.render_widget(Paragraph::new(lines).block(Block::bordered().title(format!("{} [{state}]", app.title))), cols[0]);
    let ratio = if app.steps == 0 { if app.running { 0.0 } else { 1.0 } } else { (app.step as f64 / app.steps as f64).clamp(0.0, 1.0) };
    let eta = app.eta().map_or(String::new(), |d| format!(" eta {}s", d.as_secs()));
    let label = if app.steps == 0 { (if app.running { "running" } else { "done" }).to_string() } else { format!("{}/{}{eta}", app.step, app.steps) };
    f.render_widget(Gauge::default().block(Block::bordered().title("progress")).ratio(ratio).label(label).gauge_style(Style::default().fg(Color::Green)), cols[1]);
}

fn curve(f: &mut Frame, app: &App, area: Rect, name: &str, points: &[(f64, f64)], color: Color) {
    let shown: &[(f64, f64)] = if app.whole_run || points.len() <= 50 { points } else { &points[points.len() - 50..] };
    let window = if app.whole_run { "whole run" } else { "recent" };
    // Name the run when it is not the latest, or when several runs have curves.
    let window = match (app.shown_curves(), app.runs.len()) {
        (Some(c), n) if n > 1 => format!("{}, {window}", c.strategy),
        _ => window.to_string(),
    };
    let last = shown.last().map_or("-".to_string(), |p| if name == "loss" { format!("{:.4}", p.1) } else { pct(p.1) });
    let block = panel(app, "curves", format!("{name} ({window}): {last}"));
    if shown.is_empty() {
        f.render_widget(Paragraph::new("waiting for epochs (LS/PLS)").block(block), area);
        return;
    }
    let (x0, x1) = (shown[0].0, shown[shown.len() - 1].0.max(shown[0].0 + 1.0));
    let (mut y0, mut y1) = shown.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    if (y1 - y0).abs() < 1e-9 {
        // A flat line: a narrow band around it (an accuracy stays within [0, 1]).
        let pad = (y0.abs() * 0.01).max(0.005);
        y0 -= pad;
        y1 += pad;
    }
    let data = Dataset::default().name(name.to_string()).marker(symbols::Marker::Braille).graph_type(GraphType::Line).style(Style::default().fg(color)).data(shown);
    let chart = Chart::new(vec![data])
        .block(block)
        .x_axis(Axis::default().bounds([x0, x1]).labels(vec![Span::raw(format!("{x0:.0}")), Span::raw(format!("{x1:.0}"))]))
        .y_axis(Axis::default().bounds([y0, y1]).labels(vec![Span::raw(format!("{y0:.2}")), Span::raw(format!("{y1:.2}"))]));
    f.render_widget(chart, area);
}

/// Heat-map cell for `ratio` in [0, 1]: a darker glyph for a larger value, so it reads without
/// colour too.
pub(crate) fn shade(ratio: f64) -> char {
    const G: [char; 5] = [' ', '░', '▒', '▓', '█'];
    let r = if ratio.is_finite() { ratio.clamp(0.0, 1.0) } else { 0.0 };
    G[((r * 4.0).round() as usize).min(4)]
}

fn weights(f: &mut Frame, app: &App, area: Rect) {
    let block = panel(app, "weights", "mixing weights (bar: mean; map: group x ingredient)".into());
    let mean = app.mean_weights();
    if mean.is_empty() {
        f.render_widget(Paragraph::new("weights appear with the first LS/PLS epoch").block(block), area);
        return;
    }
    let max = app.weights.iter().flatten().cloned().fold(0.0, f64::max);
    let bar_width = 12usize;
    let mut lines: Vec<Line> = Vec::new();
    let visible = area.height.saturating_sub(2) as usize;
    let first = app.weights_scroll.min(mean.len().saturating_sub(visible));
    let block = if mean.len() > visible { block.title_bottom(format!("{}-{} of {} (j/k)", first + 1, (first + visible).min(mean.len()), mean.len())) } else { block };
    for (i, w) in mean.iter().enumerate().skip(first).take(visible) {
        let n = ((w / mean.iter().cloned().fold(0.0, f64::max).max(1e-12)) * bar_width as f64).round() as usize;
        let map: String = app.weights.iter().map(|row| shade(if max > 0.0 { row[i] / max } else { 0.0 })).collect();
        lines.push(Line::from(vec![
            Span::raw(format!("{i:>2} {w:.3} ")),
            Span::styled("█".repeat(n), Style::default().fg(Color::Magenta)),
            Span::raw(" ".repeat(bar_width - n.min(bar_width) + 1)),
            Span::raw(map),
        ]));
    }
    f.render_widget(Paragraph::new(lines).block(block), area);
}

fn progress(f: &mut Frame, app: &App, area: Rect) {
    if let Some(k) = app.parts {
        let block = panel(app, "progress", format!("PLS parts: {} of {k} sampled", app.last_sample.len()));
        let mut spans = Vec::new();
        for p in 0..k {
            let sampled = app.last_sample.contains(&p);
            let text = format!("{:>3}{}", app.part_uses.get(p).copied().unwrap_or(0), if sampled { "*" } else { " " });
            spans.push(Span::styled(text, if sampled { Style::default().fg(Color::Green).add_modifier(Modifier::BOLD) } else { Style::default() }));
        }
        let mut lines = vec![Line::from(format!("{} nodes, {} edges", app.last_subgraph.0, app.last_subgraph.1)), Line::from("uses per part, * = now")];
        let per_line = ((area.width.saturating_sub(2)) / 4).max(1) as usize;
        for chunk in spans.chunks(per_line) {
            lines.push(Line::from(chunk.to_vec()));
        }
        f.render_widget(Paragraph::new(lines).block(block), area);
        return;
    }
    let block = panel(app, "progress", "candidates (greedy / GIS)".into());
    if app.candidates.is_empty() {
        let lr = if app.lr > 0.0 { format!("learning rate {:.3}", app.lr) } else { "no candidates for this strategy".into() };
        f.render_widget(Paragraph::new(lr).block(block), area);
        return;
    }
    let rows = app.candidates.iter().rev().map(|c| Row::new(vec![c.ingredient.to_string(), format!("{:.2}", c.factor), pct(c.val_acc), if c.accepted { "kept".into() } else { "rejected".into() }]));
    let table = Table::new(rows, [Constraint::Length(3), Constraint::Length(4), Constraint::Length(6), Constraint::Length(8)]).header(Row::new(vec!["ing", "a", "val", ""]).style(Style::default().add_modifier(Modifier::BOLD))).block(block);
    f.render_widget(table, area);
}

fn results(f: &mut Frame, app: &App, area: Rect) {
    let mut rows: Vec<Row> = Vec::new();
    if !app.ingredient_acc.is_empty() {
        let n = app.ingredient_acc.len() as f64;
        let mean = |f: fn(&(f64, f64)) -> f64| app.ingredient_acc.iter().map(f).sum::<f64>() / n;
        rows.push(Row::new(vec!["ingr mean".to_string(), pct(mean(|a| a.0)), pct(mean(|a| a.1)), String::new()]));
    }
    let focused = PANELS.get(app.focus) == Some(&"results");
    for (i, r) in app.results.iter().enumerate() {
        let cursor = if focused && i == app.results_cursor { ">" } else { " " };
        let row = Row::new(vec![
            format!("{cursor}{}{}", r.strategy, if r.partial { "*" } else { "" }),
            pct(r.val_acc),
            pct(r.test_acc),
            format!("{:.1}s", r.seconds),
            format!("{:.0}M", r.peak_rss_bytes as f64 / (1u64 << 20) as f64),
        ]);
        rows.push(if focused && i == app.results_cursor { row.style(Style::default().add_modifier(Modifier::REVERSED)) } else { row });
    }
    // Keep the selected result in view.
    let visible = area.height.saturating_sub(3) as usize;
    let skip = (app.results_cursor + 2).saturating_sub(visible).min(rows.len().saturating_sub(visible));
    let rows: Vec<Row> = rows.into_iter().skip(skip).collect();
    // Columns by priority: time and peak memory go first when the panel is narrow.
    let inner = area.width.saturating_sub(2);
    let columns = if inner >= 36 { 5 } else if inner >= 30 { 4 } else { 3 };
    let widths = [Constraint::Length(9), Constraint::Length(6), Constraint::Length(6), Constraint::Length(6), Constraint::Length(5)];
    let table = Table::new(rows, &widths[..columns])
        .header(Row::new(vec![" result", "val", "test", "time", "peak"].into_iter().take(columns)).style(Style::default().add_modifier(Modifier::BOLD)))
        .block(panel(app, "results", "results (* partial; s save)".into()));
    f.render_widget(table, area);
}

fn log(f: &mut Frame, app: &App, area: Rect) {
    let block = panel(app, "log", "log".into());
    let visible = area.height.saturating_sub(2) as usize;
    let end = app.logs.len().saturating_sub(app.log_scroll);
    let start = end.saturating_sub(visible);
    let lines: Vec<Line> = app.logs[start..end]
        .iter()
        .map(|(lvl, msg)| {
            let style = match lvl.as_str() {
                "error" => Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
                "warn" => Style::default().fg(Color::Magenta).add_modifier(Modifier::BOLD),
                _ => Style::default(),
            };
            Line::from(vec![Span::styled(format!("{lvl:<5} "), style), Span::raw(msg.clone())])
        })
        .collect();
    f.render_widget(Paragraph::new(lines).block(block), area);
}

fn footer(f: &mut Frame, app: &App, area: Rect) {
    let keys = match (app.running, app.setup.is_some()) {
        (true, _) => "q stop  Tab panel  j/k scroll  w window  [ ] run  s save  ? help",
        (false, true) => "n new run  s save  Tab panel  j/k scroll  [ ] run  w window  q quit  ? help",
        (false, false) => "q/Esc quit  Tab panel  j/k scroll  [ ] run  w window  s save  ? help",
    };
    f.render_widget(Paragraph::new(keys).style(Style::default().add_modifier(Modifier::REVERSED)), area);
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h }
}

fn help(f: &mut Frame, app: &App, area: Rect) {
    let r = centered(area, 70, 24);
    let mut text = vec![
        "Dashboard",
        "q        stop the job (asks first) / quit when done",
        "Esc      back out: to the setup screen, or quit",
        "Tab      next panel; j k / arrows scroll it (weights,",
        "         results: selects the row, log: goes back)",
        "w        curves: recent 50 epochs / whole run",
        "[ ]      curves of the previous / next strategy run",
        "s        save the selected result's soup and report",
        "n        new run on the setup screen",
        "Setup",
        "space    select / unselect; a all / none; Enter open dir",
        "i        inspect the selected ingredients (m there:",
        "         cosine / distance matrix; Esc back)",
        "Tab      form: up/down field, left/right choice, type",
        "s        start (Enter in the form)",
        "Ctrl-C   as q, from any screen (also while typing)",
        "?        this help (any key closes it)",
        "",
        "Heat map: darker glyph = larger weight. * marks partial",
        "results and the PLS parts sampled this epoch.",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    if let Some(dir) = &app.run_dir {
        text.push(format!("run directory: {dir}"));
    }
    if let Some(log) = &app.log_file {
        text.push(format!("log file: {log}"));
    }
    f.render_widget(Clear, r);
    f.render_widget(Paragraph::new(text.join("\n")).block(Block::bordered().title("keys")), r);
}
