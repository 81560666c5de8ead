//! The yes/no dialog in front of every destructive action: it names the consequence; `y` or
//! Enter confirms, `n` or Esc cancels.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use crate::tui::theme::Theme;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Yes,
    No,
    Undecided,
}

#[derive(Debug, Clone)]
pub struct Confirm<A> {
    pub title: String,
    pub message: String,
    /// What to do on "yes".
    pub action: A,
}

impl<A> Confirm<A> {
    pub fn new(title: impl Into<String>, message: impl Into<String>, action: A) -> Self {
        Confirm {
            title: title.into(),
            message: message.into(),
            action,
        }
    }

    pub fn handle_key(&self, key: &KeyEvent) -> Answer {
        match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => Answer::Yes,
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc | KeyCode::Char('q') => {
                Answer::No
            }
            _ => Answer::Undecided,
        }
    }

    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let width = 56.min(area.width);
        let inner_width = width.saturating_sub(4).max(1) as usize;
        let lines = textwrap_count(&self.message, inner_width) as u16;
        let rect = super::centered(area, width, lines + 4);
        frame.render_widget(Clear, rect);
        let block = Block::bordered()
            .title(Span::styled(format!(" {} ", self.title), theme.warn()))
            .style(theme.base());
        let text = vec![
            Line::from(self.message.clone()),
            Line::from(""),
            Line::from(vec![
                Span::styled("y", theme.key()),
                Span::raw(" yes   "),
                Span::styled("n", theme.key()),
                Span::raw(" no"),
            ])
            .alignment(Alignment::Center),
        ];
        frame.render_widget(
            Paragraph::new(text).wrap(Wrap { trim: true }).block(block),
            rect,
        );
    }
}

fn textwrap_count(text: &str, width: usize) -> usize {
    let mut lines = 1;
    let mut col = 0;
    for word in text.split_whitespace() {
        let w = word.chars().count();
        if col > 0 && col + 1 + w > width {
            lines += 1;
            col = w;
        } else {
            col += if col > 0 { 1 + w } else { w };
        }
    }
    lines
}
