//! A one-line message in the status bar: what just happened, or why something was refused.
//! It fades after a few seconds (the tick clears it).

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Error,
}

#[derive(Debug, Clone)]
pub struct Toast {
    pub text: String,
    pub level: Level,
    pub until: Instant,
}

impl Toast {
    pub fn info(text: impl Into<String>) -> Toast {
        Toast {
            text: text.into(),
            level: Level::Info,
            until: Instant::now() + Duration::from_secs(4),
        }
    }

    pub fn error(text: impl Into<String>) -> Toast {
        Toast {
            text: text.into(),
            level: Level::Error,
            until: Instant::now() + Duration::from_secs(8),
        }
    }

    pub fn expired(&self, now: Instant) -> bool {
        now >= self.until
    }
}
