//! Drawing: one file per screen, and the boxes drawn over any screen (help, stop?, save).
//! Every widget copes with any size, and selection, refusal and focus are marked by text or
//! glyph as well as colour.

pub mod dashboard;
pub mod inspector;
pub mod setup;
pub mod training;

use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::app::App;
use super::keymap::{self, Context};
use super::state::{Modal, Screen};
use super::system::Snapshot;
use super::widgets::centered;

pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

pub fn draw(f: &mut Frame, app: &App, sys: &Snapshot) {
    let area = f.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!("gnn-soup needs a terminal of at least {MIN_WIDTH}x{MIN_HEIGHT} (this one is {}x{}). q quits.", area.width, area.height);
        f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), area);
        return;
    }
    match (app.ui.screen, &app.setup) {
        _ if app.training.is_some() => training::draw(
            f,
            app.training.as_ref().unwrap_or(&Default::default()),
            app.job.run_dir.as_deref().unwrap_or(""),
            sys,
            area,
        ),
        (Screen::Setup, Some(setup)) => setup::draw(f, setup, area),
        (Screen::Inspect, _) => inspector::draw(f, &app.inspection, &app.ui, area),
        _ => dashboard::draw(f, app, sys, area),
    }
    draw_modal(f, app);
    if app.ui.monochrome {
        monochrome(f.buffer_mut());
    }
}

/// Takes the colours out of a drawn frame; a cell with a background colour is reversed instead,
/// so a selection stays visible. Glyphs (markers, bars, `*`) carry the meaning without colour.
pub fn monochrome(buf: &mut ratatui::buffer::Buffer) {
    use ratatui::style::{Color, Modifier};
    for cell in buf.content.iter_mut() {
        if cell.bg != Color::Reset {
            cell.modifier.insert(Modifier::REVERSED);
        }
        cell.fg = Color::Reset;
        cell.bg = Color::Reset;
    }
}

fn draw_modal(f: &mut Frame, app: &App) {
    let area = f.area();
    match &app.ui.modal {
        None => {}
        Some(Modal::Help) => help(f, app),
        Some(Modal::ConfirmStop) => {
            let r = centered(area, 50, 5);
            f.render_widget(Clear, r);
            f.render_widget(
                Paragraph::new(
                    "The job is still running.\nStop it (the best soup so far is kept)? y / n",
                )
                .block(Block::bordered().title("stop?")),
                r,
            );
        }
        Some(Modal::SavePrompt(dest)) => {
            let r = centered(area, 70, 6);
            let what = app.shown_run().map_or(String::new(), |r| r.strategy.to_string());
            f.render_widget(Clear, r);
            let text = format!("Copy the {what} soup and its report into this directory\n(existing files are never replaced):\n> {dest}_\nEnter saves, Esc cancels");
            f.render_widget(Paragraph::new(text).block(Block::bordered().title("save")), r);
        }
    }
}

/// What the help box adds to the keys of the dashboard.
const LEGEND: &[&str] = &[
    "",
    "Heat map: darker glyph = larger weight. * marks partial",
    "results and the PLS parts sampled this epoch.",
];

fn help(f: &mut Frame, app: &App) {
    let context = app.screen_context();
    let mut text = keymap::help_lines(&[context], &app.situation());
    if context == Context::Dashboard {
        text.extend(LEGEND.iter().map(|s| s.to_string()));
    }
    if let Some(dir) = &app.job.run_dir {
        text.push(format!("run directory: {dir}"));
    }
    if let Some(log) = &app.log_file {
        text.push(format!("log file: {log}"));
    }
    let longest = text.iter().map(|l| l.chars().count()).max().unwrap_or(0) as u16;
    let width = (longest + 2).clamp(40, f.area().width);
    let inner = usize::from(width.saturating_sub(2)).max(1);
    let rows: usize = text.iter().map(|l| l.chars().count().div_ceil(inner).max(1)).sum();
    let r = centered(f.area(), width, rows as u16 + 2);
    f.render_widget(Clear, r);
    let paragraph = Paragraph::new(text.join("\n")).wrap(Wrap { trim: false });
    f.render_widget(paragraph.block(Block::bordered().title("keys (any key closes)")), r);
}
