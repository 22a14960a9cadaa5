//! The keys the workbench understands, independent of the terminal library (so key handling is
//! tested with plain values).

use ratatui::crossterm::event::{KeyCode, KeyModifiers};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Esc,
    Tab,
    Up,
    Down,
    Left,
    Right,
    Enter,
    Backspace,
    /// Ctrl-C: stop or quit from anywhere, even while typing in the form.
    Interrupt,
}

impl Key {
    /// The key for a terminal key press, if the workbench uses it.
    pub fn from_terminal(code: KeyCode, mods: KeyModifiers) -> Option<Key> {
        Some(match code {
            KeyCode::Char('c') if mods.contains(KeyModifiers::CONTROL) => Key::Interrupt,
            KeyCode::Char(c) => Key::Char(c),
            KeyCode::Esc => Key::Esc,
            KeyCode::Tab => Key::Tab,
            KeyCode::Up => Key::Up,
            KeyCode::Down => Key::Down,
            KeyCode::Left => Key::Left,
            KeyCode::Right => Key::Right,
            KeyCode::Enter => Key::Enter,
            KeyCode::Backspace => Key::Backspace,
            _ => return None,
        })
    }

    /// Up (`k`, arrow) or down (`j`, arrow), for lists.
    pub fn vertical(self) -> Option<bool> {
        match self {
            Key::Up | Key::Char('k') => Some(true),
            Key::Down | Key::Char('j') => Some(false),
            _ => None,
        }
    }
}
