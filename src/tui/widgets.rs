//! Pieces every screen draws with. Focus, selection and magnitude show as text or glyphs as well
//! as colour, so the screens read on any theme and without colour.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::widgets::Block;

pub use crate::units::percent as pct;

/// A bordered block; the focused one has a bold border and its title in brackets.
pub fn focused_block(title: String, focused: bool) -> Block<'static> {
    let style =
        if focused { Style::default().add_modifier(Modifier::BOLD) } else { Style::default() };
    Block::bordered().title(if focused { format!("[{title}]") } else { title }).border_style(style)
}

/// Heat-map cell for `ratio` in [0, 1]: a darker glyph for a larger value.
pub fn shade(ratio: f64) -> char {
    const G: [char; 5] = [' ', '░', '▒', '▓', '█'];
    let r = if ratio.is_finite() { ratio.clamp(0.0, 1.0) } else { 0.0 };
    G[((r * 4.0).round() as usize).min(4)]
}

/// A `w` x `h` rectangle in the middle of `area` (clipped to it).
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// Rows `first..first + visible` of `len`, scrolled so that `cursor` shows.
pub fn window(len: usize, cursor: usize, visible: usize) -> std::ops::Range<usize> {
    let visible = visible.max(1);
    let first = cursor.saturating_sub(visible - 1).min(len.saturating_sub(visible));
    first..(first + visible).min(len)
}

/// `text` cut or padded to exactly `w` characters.
pub fn fit(text: &str, w: usize) -> String {
    let t: String = text.chars().take(w).collect();
    format!("{t:<w$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shades_and_windows() {
        assert_eq!((shade(0.0), shade(0.5), shade(1.0), shade(f64::NAN)), (' ', '▒', '█', ' '));
        assert_eq!(window(10, 0, 4), 0..4);
        assert_eq!(window(10, 9, 4), 6..10);
        assert_eq!(window(3, 2, 10), 0..3);
        assert_eq!(fit("abcdef", 3), "abc");
        assert_eq!(fit("ab", 4), "ab  ");
    }
}
