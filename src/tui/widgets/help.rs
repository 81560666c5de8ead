//! The `?` popup: the keys of the current screen, generated from the command registry (the
//! same list that draws the footer and fills the palette).

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Block, Clear, Row, Table};

use crate::tui::keymap::{KeyMap, ScreenId};
use crate::tui::theme::Theme;

pub fn draw(frame: &mut Frame, area: Rect, theme: &Theme, keymap: &KeyMap, screen: ScreenId, readonly: bool) {
    let rows: Vec<Row> = KeyMap::commands_for(screen)
        .map(|c| {
            let keys: Vec<String> = keymap.keys_of(c.id).iter().map(|k| k.label()).collect();
            let mut desc = c.description.to_string();
            if readonly && c.writes {
                desc.push_str(" (read-only)");
            }
            Row::new(vec![
                Span::styled(keys.join(" "), theme.key()),
                Span::raw(desc),
                Span::styled(c.id, theme.muted()),
            ])
        })
        .collect();
    let height = rows.len() as u16 + 2;
    let rect = super::centered(area, 64, height);
    frame.render_widget(Clear, rect);
    let table = Table::new(
        rows,
        [Constraint::Length(14), Constraint::Fill(1), Constraint::Length(15)],
    )
    .block(
        Block::bordered()
            .title(Span::styled(format!(" Keys: {} ", screen.title()), theme.accent()))
            .title_bottom(" esc close ")
            .style(theme.base()),
    )
    .column_spacing(1);
    frame.render_widget(table, rect);
}
