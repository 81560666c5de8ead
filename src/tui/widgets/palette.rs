//! The `:` command palette: fuzzy search over every command of the registry (not only the
//! current screen's). Scoring is a small subsequence matcher: consecutive and word-start
//! matches score higher, so `ns` ranks "next-screen" first.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, List, ListItem, ListState, Paragraph};

use crate::tui::keymap::{COMMANDS, CommandSpec, KeyMap};
use crate::tui::theme::Theme;

/// Score of `needle` as a subsequence of `hay` (case-insensitive); `None` if not one.
pub fn fuzzy_score(needle: &str, hay: &str) -> Option<i64> {
    let hay: Vec<char> = hay.to_lowercase().chars().collect();
    let mut score = 0i64;
    let mut pos = 0usize;
    let mut prev: Option<usize> = None;
    for n in needle.to_lowercase().chars().filter(|c| !c.is_whitespace()) {
        let found = (pos..hay.len()).find(|&i| hay[i] == n)?;
        score += 1;
        if prev.is_some_and(|p| p + 1 == found) {
            score += 5;
        }
        if found == 0 || matches!(hay[found - 1], '-' | ' ' | '/' | '_') {
            score += 3;
        }
        score -= (found - pos).min(10) as i64 / 3;
        prev = Some(found);
        pos = found + 1;
    }
    Some(score * 100 - hay.len() as i64)
}

#[derive(Debug, Clone, Default)]
pub struct Palette {
    pub query: String,
    pub selected: usize,
}

pub enum PaletteOutcome {
    Run(&'static CommandSpec),
    Close,
    Continue,
}

impl Palette {
    /// Matching commands, best first.
    pub fn matches(&self) -> Vec<&'static CommandSpec> {
        let mut scored: Vec<(i64, usize, &'static CommandSpec)> = COMMANDS
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let by_id = fuzzy_score(&self.query, c.id);
                let by_desc = fuzzy_score(&self.query, c.description);
                by_id.max(by_desc).map(|s| (s, i, c))
            })
            .collect();
        scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.into_iter().map(|(_, _, c)| c).collect()
    }

    pub fn handle_key(&mut self, key: &KeyEvent) -> PaletteOutcome {
        match key.code {
            KeyCode::Esc => PaletteOutcome::Close,
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                PaletteOutcome::Close
            }
            KeyCode::Enter => match self.matches().get(self.selected) {
                Some(c) => PaletteOutcome::Run(c),
                None => PaletteOutcome::Continue,
            },
            KeyCode::Up => {
                self.selected = self.selected.saturating_sub(1);
                PaletteOutcome::Continue
            }
            KeyCode::Down | KeyCode::Tab => {
                let n = self.matches().len();
                if self.selected + 1 < n {
                    self.selected += 1;
                }
                PaletteOutcome::Continue
            }
            KeyCode::Backspace => {
                self.query.pop();
                self.selected = 0;
                PaletteOutcome::Continue
            }
            KeyCode::Char(c) => {
                self.query.push(c);
                self.selected = 0;
                PaletteOutcome::Continue
            }
            _ => PaletteOutcome::Continue,
        }
    }

    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: &Theme, keymap: &KeyMap) {
        let matches = self.matches();
        let height = (matches.len() as u16 + 4)
            .min(area.height.saturating_sub(2))
            .max(5);
        let rect = super::centered(area, 60, height);
        frame.render_widget(Clear, rect);
        let block = Block::bordered()
            .title(Span::styled(" Command ", theme.accent()))
            .style(theme.base());
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        let [input, list] =
            Layout::vertical([Constraint::Length(2), Constraint::Fill(1)]).areas(inner);
        frame.render_widget(
            Paragraph::new(vec![
                Line::from(vec![
                    Span::styled(": ", theme.key()),
                    Span::raw(self.query.clone()),
                    Span::raw("_"),
                ]),
                Line::styled("─".repeat(input.width as usize), theme.muted()),
            ]),
            input,
        );
        let items: Vec<ListItem> = matches
            .iter()
            .map(|c| {
                let key = keymap.label(c.id);
                ListItem::new(Line::from(vec![
                    Span::raw(format!("{:<16}", c.id)),
                    Span::raw(format!("{:<28}", c.description)),
                    Span::styled(key, theme.key()),
                ]))
            })
            .collect();
        let mut state = ListState::default().with_selected(Some(self.selected));
        frame.render_stateful_widget(
            List::new(items).highlight_style(theme.selected()),
            list,
            &mut state,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsequence_scoring() {
        assert!(fuzzy_score("nt", "new-tenant").is_some());
        assert!(fuzzy_score("xyz", "new-tenant").is_none());
        assert!(fuzzy_score("quit", "quit") > fuzzy_score("quit", "q-u-i-t-x"));
        assert_eq!(fuzzy_score("", "anything").map(|s| s <= 0), Some(true));
    }

    #[test]
    fn palette_finds_commands() {
        let p = Palette {
            query: "reset".into(),
            selected: 0,
        };
        assert_eq!(p.matches().first().map(|c| c.id), Some("reset-password"));
        let p = Palette {
            query: "usr".into(),
            selected: 0,
        };
        assert!(p.matches().iter().any(|c| c.id == "users"));
    }
}
