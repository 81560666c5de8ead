//! The login screen: username and password against `core_user`. Refusals say why (inactive
//! user, suspended tenant); repeated failures make the next attempt wait longer.

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use crate::tui::theme::Theme;
use crate::tui::widgets::centered;

#[derive(Debug, Clone, Default)]
pub struct Login {
    pub username: String,
    pub password: String,
    /// 0 = username, 1 = password.
    pub focus: usize,
    pub message: Option<String>,
    pub failures: u32,
    pub locked_until: Option<Instant>,
}

pub enum LoginOutcome {
    Submit,
    Quit,
    Continue,
}

/// How long to wait after `failures` consecutive failures: none for the first, then
/// 1, 2, 4 ... seconds, at most 30.
pub fn delay_after(failures: u32) -> Duration {
    if failures < 2 {
        Duration::ZERO
    } else {
        Duration::from_secs((1u64 << (failures - 2).min(5)).min(30))
    }
}

impl Login {
    pub fn new(user: Option<String>) -> Login {
        let focus = if user.is_some() { 1 } else { 0 };
        Login {
            username: user.unwrap_or_default(),
            focus,
            ..Login::default()
        }
    }

    /// Seconds left before another attempt is accepted.
    pub fn wait_left(&self, now: Instant) -> Option<u64> {
        let until = self.locked_until?;
        (until > now).then(|| (until - now).as_secs_f64().ceil() as u64)
    }

    pub fn failed(&mut self, reason: String, now: Instant) {
        self.failures += 1;
        self.password.clear();
        let delay = delay_after(self.failures);
        self.locked_until = (!delay.is_zero()).then(|| now + delay);
        self.message = Some(reason);
    }

    pub fn handle_key(&mut self, key: &KeyEvent) -> LoginOutcome {
        let field = if self.focus == 0 {
            &mut self.username
        } else {
            &mut self.password
        };
        match key.code {
            KeyCode::Esc => return LoginOutcome::Quit,
            KeyCode::Tab | KeyCode::Down | KeyCode::BackTab | KeyCode::Up => {
                self.focus = 1 - self.focus
            }
            KeyCode::Enter if self.focus == 0 => self.focus = 1,
            KeyCode::Enter => return LoginOutcome::Submit,
            KeyCode::Backspace => {
                field.pop();
            }
            KeyCode::Char(c) => field.push(c),
            _ => {}
        }
        LoginOutcome::Continue
    }

    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: &Theme, wait: Option<u64>) {
        let rect = centered(area, 50, 12);
        let block = Block::bordered()
            .title(Span::styled(" RecallIQ — log in ", theme.accent()))
            .style(theme.base());
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        let [fields, msg, help] = Layout::vertical([
            Constraint::Length(5),
            Constraint::Fill(1),
            Constraint::Length(1),
        ])
        .areas(inner);
        let field = |label: &str, value: String, focused: bool| {
            let cursor = if focused { "_" } else { "" };
            Line::from(vec![
                Span::styled(
                    format!(" {label:>9} "),
                    if focused {
                        theme.accent()
                    } else {
                        theme.base()
                    },
                ),
                Span::styled(
                    format!("{value}{cursor}"),
                    if focused {
                        theme.selected()
                    } else {
                        theme.base()
                    },
                ),
            ])
        };
        frame.render_widget(
            Paragraph::new(vec![
                Line::from(""),
                field("Username", self.username.clone(), self.focus == 0),
                Line::from(""),
                field(
                    "Password",
                    "•".repeat(self.password.chars().count()),
                    self.focus == 1,
                ),
            ]),
            fields,
        );
        let mut lines = Vec::new();
        if let Some(m) = &self.message {
            lines.push(Line::styled(format!(" {m}"), theme.error()));
        }
        if let Some(s) = wait {
            lines.push(Line::styled(
                format!(" too many failures: wait {s} s"),
                theme.warn(),
            ));
        }
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), msg);
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(" enter", theme.key()),
                Span::raw(" log in  "),
                Span::styled("tab", theme.key()),
                Span::raw(" field  "),
                Span::styled("esc", theme.key()),
                Span::raw(" quit"),
            ])),
            help,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_grows_and_is_capped() {
        assert_eq!(delay_after(1), Duration::ZERO);
        assert_eq!(delay_after(2), Duration::from_secs(1));
        assert_eq!(delay_after(3), Duration::from_secs(2));
        assert_eq!(delay_after(5), Duration::from_secs(8));
        assert_eq!(delay_after(40), Duration::from_secs(30));
    }
}
