//! Reusable pieces: the virtual table, popups (help, palette, confirm, form) and the toast.

pub mod confirm;
pub mod form;
pub mod help;
pub mod palette;
pub mod table;
pub mod toast;

use ratatui::layout::{Constraint, Flex, Layout, Rect};

/// A rectangle of `width` x `height` centred in `area` (clamped to it).
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [h] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(area);
    let [v] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(h);
    v
}
