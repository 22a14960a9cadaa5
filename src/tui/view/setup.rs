//! The setup screen: the checkpoint browser and the strategy form.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;

use crate::soup::Setting;
use crate::tui::keymap::{self, Command, Context, Situation};
use crate::tui::setup::{Entry, EntryKind, FieldKind, Setup, SetupFocus};
use crate::tui::widgets::{fit, focused_block, pct, window};

pub fn draw(f: &mut Frame, setup: &Setup, area: Rect) {
    let rows = Layout::vertical([Constraint::Min(8), Constraint::Length(3), Constraint::Length(1)])
        .split(area);
    let cols =
        Layout::horizontal([Constraint::Percentage(64), Constraint::Percentage(36)]).split(rows[0]);
    browser(f, setup, cols[0]);
    form(f, setup, cols[1]);
    let status = match (&setup.message, setup.settings()) {
        (Some(m), _) => {
            Line::from(Span::styled(m.clone(), Style::default().add_modifier(Modifier::BOLD)))
        }
        (None, Ok(s)) => Line::from(format!(
            "ready: {} ingredient(s), {} strategy run(s); {} or {} (in the form) starts",
            setup.selected.len(),
            s.len(),
            keymap::label_of(Context::Browser, Command::Start),
            keymap::label_of(Context::Form, Command::Start),
        )),
        (None, Err(e)) => Line::from(Span::styled(
            format!("not ready: {e}"),
            Style::default().add_modifier(Modifier::BOLD),
        )),
    };
    f.render_widget(
        Paragraph::new(status).wrap(Wrap { trim: true }).block(Block::bordered().title("status")),
        rows[1],
    );
    let context = match setup.focus {
        SetupFocus::Browser => Context::Browser,
        SetupFocus::Form => Context::Form,
    };
    // The browser's and the form's keys hold in every situation.
    let keys = keymap::footer(context, &Situation::default());
    f.render_widget(
        Paragraph::new(keys).style(Style::default().add_modifier(Modifier::REVERSED)),
        rows[2],
    );
}

fn browser(f: &mut Frame, setup: &Setup, area: Rect) {
    let title =
        format!("checkpoints in {} ({} selected)", setup.dir.display(), setup.selected.len());
    let block = focused_block(title, setup.focus == SetupFocus::Browser);
    let inner = area.width.saturating_sub(2) as usize;
    let visible = area.height.saturating_sub(3) as usize;
    let range = window(setup.entries.len(), setup.cursor, visible);
    // Columns laid out by hand, so a refusal's reason can run across the metadata columns.
    // Every file listed is a checkpoint: the extension only takes room.
    let shown = |e: &Entry| e.name.strip_suffix(".safetensors").unwrap_or(&e.name).to_string();
    let name_w =
        setup.entries.iter().map(|e| shown(e).chars().count()).max().unwrap_or(10).clamp(10, 30);
    let dim = Style::default().fg(Color::DarkGray);
    let mut lines = vec![Line::from(Span::styled(
        fit(
            &format!(
                "   {:<name_w$} {:<9} {:<9} {:>4} {:>13} {}",
                "name", "arch", "dataset", "seed", "val/test", "init"
            ),
            inner,
        ),
        Style::default().add_modifier(Modifier::BOLD),
    ))];
    for i in range {
        let e = &setup.entries[i];
        let cursor = if i == setup.cursor { ">" } else { " " };
        let name = fit(&shown(e), name_w);
        let (mark, rest, style) = match &e.kind {
            EntryKind::Parent | EntryKind::Dir => {
                (" ", String::new(), Style::default().add_modifier(Modifier::BOLD))
            }
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
                            format!(
                                "{}/{}",
                                m.val_acc.map_or("-".into(), pct),
                                m.test_acc.map_or("-".into(), pct)
                            ),
                            m.init_fingerprint.chars().take(6).collect::<String>()
                        ),
                        if selected {
                            Style::default().fg(Color::Green).add_modifier(Modifier::BOLD)
                        } else {
                            Style::default()
                        },
                    ),
                }
            }
        };
        let style = if i == setup.cursor { style.add_modifier(Modifier::REVERSED) } else { style };
        lines.push(Line::from(Span::styled(
            fit(&format!("{cursor}{mark} {name} {rest}"), inner),
            style,
        )));
    }
    f.render_widget(Paragraph::new(lines).block(block), area);
}

fn form(f: &mut Frame, setup: &Setup, area: Rect) {
    let block = focused_block("strategy and settings".into(), setup.focus == SetupFocus::Form);
    // The field the validation names is marked with '!' (not only coloured).
    let wrong_field = setup.settings().err().and_then(|e| e.field);
    let mut lines: Vec<Line> = Vec::new();
    for (i, field) in setup.fields.iter().enumerate() {
        let active = i == setup.field && setup.focus == SetupFocus::Form;
        let value = match field.kind {
            FieldKind::Choice(_) => format!("< {} >", field.value),
            _ if active => format!("{}_", field.value),
            _ => field.value.clone(),
        };
        let wrong = wrong_field == Some(field.name());
        let style = match (active, wrong) {
            (_, true) => Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
            (true, false) => Style::default().add_modifier(Modifier::REVERSED),
            _ => Style::default(),
        };
        lines.push(Line::from(vec![
            Span::raw(format!("{}{:<12}", if wrong { "!" } else { " " }, field.name())),
            Span::styled(value, style),
        ]));
    }
    if let Some(f) = setup.fields.get(setup.field).filter(|_| setup.focus == SetupFocus::Form) {
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled(
            f.help(),
            Style::default().add_modifier(Modifier::ITALIC),
        )));
    }
    if setup.value("strategy") == "all" {
        let recipe = setup.recipe.as_ref().map(|r| {
            let name = r.path.file_name().unwrap_or_default().to_string_lossy();
            format!("the recipe {name}")
        });
        let flags = Setting::with_implied(&setup.flags);
        let given: Vec<String> = recipe
            .into_iter()
            .chain(flags.iter().map(|(setting, v)| format!("{} {v}", setting.name)))
            .collect();
        lines.push(Line::from(if given.is_empty() {
            "every strategy, each with its defaults".to_string()
        } else {
            format!("every strategy, each with its defaults and {}", given.join(", "))
        }));
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(block), area);
}
