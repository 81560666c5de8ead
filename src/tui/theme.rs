//! Colours and emphasis. The built-in themes use only the 16 named ANSI colours so they
//! work in any terminal; `NO_COLOR` turns colour off entirely (emphasis stays, via bold and
//! reverse). `theme.toml` in the config dir overrides single roles: `selected_bg = "blue"`.

use std::collections::HashMap;
use std::path::Path;

use ratatui::style::{Color, Modifier, Style};

/// The styles every widget draws with, by role.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    pub fg: Option<Color>,
    pub bg: Option<Color>,
    pub accent: Option<Color>,
    pub muted: Option<Color>,
    pub selected_fg: Option<Color>,
    pub selected_bg: Option<Color>,
    pub error: Option<Color>,
    pub ok: Option<Color>,
    pub warn: Option<Color>,
    pub gauge: Option<Color>,
    /// No colours at all (NO_COLOR).
    pub monochrome: bool,
}

impl Theme {
    pub fn dark() -> Theme {
        Theme {
            name: "dark".into(),
            fg: None,
            bg: None,
            accent: Some(Color::Cyan),
            muted: Some(Color::DarkGray),
            selected_fg: Some(Color::Black),
            selected_bg: Some(Color::Cyan),
            error: Some(Color::LightRed),
            ok: Some(Color::Green),
            warn: Some(Color::Yellow),
            gauge: Some(Color::Green),
            monochrome: false,
        }
    }

    pub fn light() -> Theme {
        Theme {
            name: "light".into(),
            fg: Some(Color::Black),
            bg: Some(Color::White),
            accent: Some(Color::Blue),
            muted: Some(Color::Gray),
            selected_fg: Some(Color::White),
            selected_bg: Some(Color::Blue),
            error: Some(Color::Red),
            ok: Some(Color::Green),
            warn: Some(Color::Magenta),
            gauge: Some(Color::Blue),
            monochrome: false,
        }
    }

    /// No colour, only bold / reverse / dim.
    pub fn monochrome() -> Theme {
        Theme {
            name: "none".into(),
            fg: None,
            bg: None,
            accent: None,
            muted: None,
            selected_fg: None,
            selected_bg: None,
            error: None,
            ok: None,
            warn: None,
            gauge: None,
            monochrome: true,
        }
    }

    /// Resolves the theme: NO_COLOR wins, then `name` (dark, light, or a TOML file path),
    /// then `theme.toml` in the config dir on top of the dark theme.
    pub fn load(config_dir: &Path, name: Option<&str>, no_color: bool) -> Result<Theme, String> {
        if no_color {
            return Ok(Theme::monochrome());
        }
        match name.map(str::trim) {
            Some("light") => return Ok(Theme::light()),
            Some("dark") => return Ok(Theme::dark()),
            Some(path) if !path.is_empty() => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read theme {path}: {e}"))?;
                return Theme::from_toml(&text).map_err(|e| format!("{path}: {e}"));
            }
            _ => {}
        }
        let path = config_dir.join("theme.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => Theme::from_toml(&text).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Theme::dark()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// `base = "light"` picks the theme to start from; other keys set single roles.
    pub fn from_toml(text: &str) -> Result<Theme, String> {
        let table: HashMap<String, String> = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut theme = match table.get("base").map(String::as_str) {
            Some("light") => Theme::light(),
            Some("dark") | None => Theme::dark(),
            Some(other) => return Err(format!("unknown base theme '{other}' (dark, light)")),
        };
        for (key, value) in &table {
            if key == "base" {
                continue;
            }
            let color = parse_color(value)?;
            let slot = match key.as_str() {
                "fg" => &mut theme.fg,
                "bg" => &mut theme.bg,
                "accent" => &mut theme.accent,
                "muted" => &mut theme.muted,
                "selected_fg" => &mut theme.selected_fg,
                "selected_bg" => &mut theme.selected_bg,
                "error" => &mut theme.error,
                "ok" => &mut theme.ok,
                "warn" => &mut theme.warn,
                "gauge" => &mut theme.gauge,
                other => return Err(format!("unknown theme key '{other}'")),
            };
            *slot = color;
        }
        theme.name = "custom".into();
        Ok(theme)
    }

    fn style(&self, fg: Option<Color>, bg: Option<Color>) -> Style {
        let mut s = Style::default();
        if self.monochrome {
            return s;
        }
        if let Some(c) = fg {
            s = s.fg(c);
        }
        if let Some(c) = bg {
            s = s.bg(c);
        }
        s
    }

    pub fn base(&self) -> Style {
        self.style(self.fg, self.bg)
    }
    pub fn accent(&self) -> Style {
        self.style(self.accent, None).add_modifier(Modifier::BOLD)
    }
    pub fn muted(&self) -> Style {
        if self.monochrome {
            Style::default().add_modifier(Modifier::DIM)
        } else {
            self.style(self.muted, None)
        }
    }
    pub fn selected(&self) -> Style {
        if self.monochrome || self.selected_bg.is_none() {
            Style::default().add_modifier(Modifier::REVERSED)
        } else {
            self.style(self.selected_fg, self.selected_bg)
        }
    }
    pub fn error(&self) -> Style {
        self.style(self.error, None).add_modifier(Modifier::BOLD)
    }
    pub fn ok(&self) -> Style {
        self.style(self.ok, None)
    }
    pub fn warn(&self) -> Style {
        self.style(self.warn, None)
    }
    pub fn gauge(&self) -> Style {
        if self.monochrome {
            Style::default()
        } else {
            self.style(self.gauge, None)
        }
    }
    pub fn key(&self) -> Style {
        self.accent()
    }
}

/// The 16 ANSI colour names, `none` and `#rrggbb` (for those who want it).
pub fn parse_color(text: &str) -> Result<Option<Color>, String> {
    let t = text
        .trim()
        .to_ascii_lowercase()
        .replace(['-', '_', ' '], "");
    let c = match t.as_str() {
        "none" | "reset" | "default" => return Ok(None),
        "black" => Color::Black,
        "red" => Color::Red,
        "green" => Color::Green,
        "yellow" => Color::Yellow,
        "blue" => Color::Blue,
        "magenta" => Color::Magenta,
        "cyan" => Color::Cyan,
        "gray" | "grey" => Color::Gray,
        "darkgray" | "darkgrey" | "brightblack" => Color::DarkGray,
        "lightred" | "brightred" => Color::LightRed,
        "lightgreen" | "brightgreen" => Color::LightGreen,
        "lightyellow" | "brightyellow" => Color::LightYellow,
        "lightblue" | "brightblue" => Color::LightBlue,
        "lightmagenta" | "brightmagenta" => Color::LightMagenta,
        "lightcyan" | "brightcyan" => Color::LightCyan,
        "white" | "brightwhite" => Color::White,
        hex if hex.len() == 7 && hex.starts_with('#') => {
            let v =
                u32::from_str_radix(&hex[1..], 16).map_err(|_| format!("bad colour '{text}'"))?;
            Color::Rgb((v >> 16) as u8, (v >> 8) as u8, v as u8)
        }
        _ => {
            return Err(format!(
                "unknown colour '{text}' (use one of the 16 ANSI names)"
            ));
        }
    };
    Ok(Some(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named_only(t: &Theme) -> bool {
        [
            t.fg,
            t.bg,
            t.accent,
            t.muted,
            t.selected_fg,
            t.selected_bg,
            t.error,
            t.ok,
            t.warn,
            t.gauge,
        ]
        .iter()
        .flatten()
        .all(|c| !matches!(c, Color::Rgb(..) | Color::Indexed(_)))
    }

    #[test]
    fn built_in_themes_use_named_colours() {
        assert!(named_only(&Theme::dark()));
        assert!(named_only(&Theme::light()));
    }

    #[test]
    fn no_color_has_no_colour() {
        let t = Theme::monochrome();
        for s in [
            t.base(),
            t.accent(),
            t.selected(),
            t.error(),
            t.ok(),
            t.gauge(),
        ] {
            assert_eq!(s.fg, None);
            assert_eq!(s.bg, None);
        }
    }

    #[test]
    fn toml_overrides() {
        let t = Theme::from_toml("base = \"light\"\nselected_bg = \"red\"").unwrap();
        assert_eq!(t.selected_bg, Some(Color::Red));
        assert_eq!(t.fg, Some(Color::Black));
        assert!(Theme::from_toml("wat = \"red\"").is_err());
        assert!(Theme::from_toml("fg = \"chartreuse\"").is_err());
    }
}
