//! A small modal form: text, password, number and choice fields, each with its own check
//! run as the user types (after the field was touched) and on submit, the error shown next
//! to the field. Tab / Down / Up move between fields, Left / Right cycle a choice, Enter
//! submits, Esc cancels.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use crate::tui::theme::Theme;

/// A field check: `Some(message)` when the value is wrong.
pub type Check = fn(&str) -> Option<String>;

#[derive(Debug, Clone)]
pub enum Kind {
    Text,
    Password,
    Number,
    Choice(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub value: String,
    pub kind: Kind,
    pub check: Option<Check>,
    pub error: Option<String>,
    touched: bool,
}

impl Field {
    pub fn text(name: &'static str, label: &'static str, value: impl Into<String>) -> Field {
        Field {
            name,
            label,
            value: value.into(),
            kind: Kind::Text,
            check: None,
            error: None,
            touched: false,
        }
    }
    pub fn password(name: &'static str, label: &'static str) -> Field {
        Field {
            kind: Kind::Password,
            ..Field::text(name, label, "")
        }
    }
    pub fn number(name: &'static str, label: &'static str, value: impl Into<String>) -> Field {
        Field {
            kind: Kind::Number,
            check: Some(check_number),
            ..Field::text(name, label, value)
        }
    }
    /// A choice among `options`, starting at `value` (or the first).
    pub fn choice(
        name: &'static str,
        label: &'static str,
        options: Vec<String>,
        value: &str,
    ) -> Field {
        let v = if options.iter().any(|o| o == value) {
            value.to_string()
        } else {
            options.first().cloned().unwrap_or_default()
        };
        Field {
            kind: Kind::Choice(options),
            ..Field::text(name, label, v)
        }
    }
    pub fn with_check(mut self, check: Check) -> Field {
        self.check = Some(check);
        self
    }

    fn validate(&mut self) {
        self.error = self.check.and_then(|c| c(&self.value));
    }

    fn cycle(&mut self, step: isize) {
        if let Kind::Choice(options) = &self.kind {
            if options.is_empty() {
                return;
            }
            let i = options.iter().position(|o| *o == self.value).unwrap_or(0) as isize;
            let n = options.len() as isize;
            self.value = options[((i + step).rem_euclid(n)) as usize].clone();
        }
    }
}

pub fn required(v: &str) -> Option<String> {
    if v.trim().is_empty() {
        Some("required".into())
    } else {
        None
    }
}

pub fn check_number(v: &str) -> Option<String> {
    match v.trim().parse::<i64>() {
        Ok(n) if (0..=i32::MAX as i64).contains(&n) => None,
        _ => Some("a whole number, 0 or more".into()),
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum FormOutcome {
    Submit,
    Cancel,
    Continue,
}

/// A form and what it is for (`P` tells the app what to do with the values).
#[derive(Debug, Clone)]
pub struct Form<P> {
    pub title: String,
    pub fields: Vec<Field>,
    pub focus: usize,
    pub purpose: P,
    /// An error from the store after submit (e.g. "username taken").
    pub error: Option<String>,
}

impl<P> Form<P> {
    pub fn new(title: impl Into<String>, purpose: P, fields: Vec<Field>) -> Form<P> {
        Form {
            title: title.into(),
            fields,
            focus: 0,
            purpose,
            error: None,
        }
    }

    pub fn value(&self, name: &str) -> &str {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value.as_str())
            .unwrap_or("")
    }

    pub fn set_error(&mut self, name: &str, message: impl Into<String>) {
        if let Some(f) = self.fields.iter_mut().find(|f| f.name == name) {
            f.error = Some(message.into());
        }
    }

    /// Runs every check; true when all pass.
    pub fn validate(&mut self) -> bool {
        for f in &mut self.fields {
            f.touched = true;
            f.validate();
        }
        self.fields.iter().all(|f| f.error.is_none())
    }

    pub fn handle_key(&mut self, key: &KeyEvent) -> FormOutcome {
        let n = self.fields.len().max(1);
        match key.code {
            KeyCode::Esc => return FormOutcome::Cancel,
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                return FormOutcome::Cancel;
            }
            KeyCode::Enter => {
                return if self.validate() {
                    FormOutcome::Submit
                } else {
                    if let Some(i) = self.fields.iter().position(|f| f.error.is_some()) {
                        self.focus = i;
                    }
                    FormOutcome::Continue
                };
            }
            KeyCode::Tab | KeyCode::Down => self.focus = (self.focus + 1) % n,
            KeyCode::BackTab | KeyCode::Up => self.focus = (self.focus + n - 1) % n,
            _ => {
                let Some(field) = self.fields.get_mut(self.focus) else {
                    return FormOutcome::Continue;
                };
                let choice = matches!(field.kind, Kind::Choice(_));
                match key.code {
                    KeyCode::Left if choice => field.cycle(-1),
                    KeyCode::Right | KeyCode::Char(' ') if choice => field.cycle(1),
                    KeyCode::Backspace if !choice => {
                        field.value.pop();
                    }
                    KeyCode::Char(c)
                        if !choice && !key.modifiers.contains(KeyModifiers::CONTROL) =>
                    {
                        if !matches!(field.kind, Kind::Number) || c.is_ascii_digit() {
                            field.value.push(c);
                        }
                    }
                    _ => return FormOutcome::Continue,
                }
                field.touched = true;
                field.validate();
                self.error = None;
            }
        }
        FormOutcome::Continue
    }

    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let full = self.fields.len() as u16 * 2 + 5;
        // A long form on a small screen drops the blank lines kept for field errors.
        let compact = full > area.height;
        let shown_errors = self
            .fields
            .iter()
            .filter(|f| f.touched && f.error.is_some())
            .count() as u16;
        let height = if compact {
            self.fields.len() as u16 + shown_errors + 4
        } else {
            full
        };
        let rect = super::centered(area, 64, height);
        frame.render_widget(Clear, rect);
        let label_w = self.fields.iter().map(|f| f.label.len()).max().unwrap_or(0) + 1;
        let mut lines = Vec::new();
        for (i, f) in self.fields.iter().enumerate() {
            let focused = i == self.focus;
            let shown = match &f.kind {
                Kind::Password => "•".repeat(f.value.chars().count()),
                Kind::Choice(_) => format!("◂ {} ▸", f.value),
                _ => f.value.clone(),
            };
            let value_style = if focused {
                theme.selected()
            } else {
                theme.base()
            };
            let cursor = if focused && !matches!(f.kind, Kind::Choice(_)) {
                "_"
            } else {
                ""
            };
            lines.push(Line::from(vec![
                Span::styled(
                    format!("{:>label_w$} ", f.label),
                    if focused {
                        theme.accent()
                    } else {
                        theme.base()
                    },
                ),
                Span::styled(format!("{shown}{cursor}"), value_style),
            ]));
            lines.push(match &f.error {
                Some(e) if f.touched => Line::from(vec![
                    Span::raw(" ".repeat(label_w + 1)),
                    Span::styled(format!("✗ {e}"), theme.error()),
                ]),
                _ if compact => continue,
                _ => Line::from(""),
            });
        }
        lines.push(match &self.error {
            Some(e) => Line::styled(e.clone(), theme.error()),
            None => Line::from(""),
        });
        lines.push(Line::from(vec![
            Span::styled("enter", theme.key()),
            Span::raw(" save  "),
            Span::styled("tab", theme.key()),
            Span::raw(" next field  "),
            Span::styled("←→", theme.key()),
            Span::raw(" choose  "),
            Span::styled("esc", theme.key()),
            Span::raw(" cancel"),
        ]));
        let block = Block::bordered()
            .title(Span::styled(format!(" {} ", self.title), theme.accent()))
            .style(theme.base());
        frame.render_widget(Paragraph::new(lines).block(block), rect);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn validates_inline_and_on_submit() {
        let mut f = Form::new(
            "t",
            (),
            vec![
                Field::text("name", "Name", "").with_check(required),
                Field::number("limit", "Limit", "10"),
            ],
        );
        assert_eq!(f.handle_key(&key(KeyCode::Enter)), FormOutcome::Continue);
        assert_eq!(f.fields[0].error.as_deref(), Some("required"));
        f.handle_key(&key(KeyCode::Char('x')));
        assert!(f.fields[0].error.is_none());
        f.handle_key(&key(KeyCode::Tab));
        f.handle_key(&key(KeyCode::Char('a')));
        assert_eq!(f.value("limit"), "10", "letters do not go into numbers");
        assert_eq!(f.handle_key(&key(KeyCode::Enter)), FormOutcome::Submit);
    }

    #[test]
    fn choices_cycle() {
        let mut f = Form::new(
            "t",
            (),
            vec![Field::choice(
                "r",
                "Role",
                vec!["a".into(), "b".into()],
                "b",
            )],
        );
        f.handle_key(&key(KeyCode::Right));
        assert_eq!(f.value("r"), "a");
        f.handle_key(&key(KeyCode::Left));
        assert_eq!(f.value("r"), "b");
    }
}
