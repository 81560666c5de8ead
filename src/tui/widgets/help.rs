//! The `?` popup: the keys of the current screen, generated from the command registry (the
//! same list that draws the footer and fills the palette). When the list is taller than the
//! screen it is laid out in two columns.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Block, Clear, Row, Table};

use crate::tui::keymap::{CommandSpec, KeyMap, ScreenId};
use crate::tui::theme::Theme;

pub fn draw(
    frame: &mut Frame,
    area: Rect,
    theme: &Theme,
    keymap: &KeyMap,
    screen: ScreenId,
    readonly: bool,
) {
    let commands: Vec<&CommandSpec> = KeyMap::commands_for(screen).collect();
    let row = |c: &CommandSpec, with_id: bool| {
        let keys: Vec<String> = keymap.keys_of(c.id).iter().map(|k| k.label()).collect();
        let mut desc = c.description.to_string();
        if readonly && c.writes {
            desc.push_str(" (read-only)");
        }
        let mut cells = vec![Span::styled(keys.join(" "), theme.key()), Span::raw(desc)];
        if with_id {
            cells.push(Span::styled(c.id, theme.muted()));
        }
        Row::new(cells)
    };
    let block = Block::bordered()
        .title(Span::styled(
            format!(" Keys: {} ", screen.title()),
            theme.accent(),
        ))
        .title_bottom(" esc close ")
        .style(theme.base());
    let one_column = commands.len() as u16 + 2 <= area.height;
    if one_column {
        let rect = super::centered(area, 64, commands.len() as u16 + 2);
        frame.render_widget(Clear, rect);
        let rows: Vec<Row> = commands.iter().map(|c| row(c, true)).collect();
        let widths = [
            Constraint::Length(14),
            Constraint::Fill(1),
            Constraint::Length(15),
        ];
        frame.render_widget(
            Table::new(rows, widths).block(block).column_spacing(1),
            rect,
        );
        return;
    }
    let half = commands.len().div_ceil(2);
    let rect = super::centered(area, area.width.min(100), half as u16 + 2);
    frame.render_widget(Clear, rect);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let cols: [Rect; 2] = Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)])
        .spacing(1)
        .areas(inner);
    for (part, col) in commands.chunks(half).zip(cols) {
        let rows: Vec<Row> = part.iter().map(|c| row(c, false)).collect();
        let widths = [Constraint::Length(9), Constraint::Fill(1)];
        frame.render_widget(Table::new(rows, widths).column_spacing(1), col);
    }
}
