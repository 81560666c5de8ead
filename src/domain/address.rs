//! Address and display-name hygiene. Whatever ends up in a mail header passes through here
//! first, so CR/LF and other control characters can never reach one.

/// Why an address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("empty address")]
    Empty,
    #[error("'{0}' contains a space or control character")]
    BadCharacter(String),
    #[error("'{0}' must contain exactly one @")]
    At(String),
    #[error("'{0}' has an empty part before or after @")]
    EmptyPart(String),
    #[error("'{0}' has no dot in its domain")]
    NoDot(String),
    #[error("'{0}' is too long (local part at most 64, whole address at most 254 characters)")]
    TooLong(String),
    #[error("'{0}' has an invalid domain")]
    BadDomain(String),
}

/// Validates an address and returns it trimmed, with the domain lower-cased (the local part
/// keeps its case: it is the recipient's to interpret).
pub fn normalize_email(raw: &str) -> Result<String, AddressError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(AddressError::Empty);
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AddressError::BadCharacter(printable(s)));
    }
    if s.chars().any(|c| {
        matches!(
            c,
            '<' | '>' | ',' | ';' | '"' | '(' | ')' | '[' | ']' | '\\'
        )
    }) {
        return Err(AddressError::BadCharacter(printable(s)));
    }
    let mut parts = s.split('@');
    let (local, domain) = match (parts.next(), parts.next(), parts.next()) {
        (Some(l), Some(d), None) => (l, d),
        _ => return Err(AddressError::At(printable(s))),
    };
    if local.is_empty() || domain.is_empty() {
        return Err(AddressError::EmptyPart(printable(s)));
    }
    if local.len() > 64 || s.len() > 254 {
        return Err(AddressError::TooLong(printable(s)));
    }
    if !domain.contains('.') {
        return Err(AddressError::NoDot(printable(s)));
    }
    let labels_ok = domain
        .split('.')
        .all(|l| !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-'));
    if !labels_ok || local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(AddressError::BadDomain(printable(s)));
    }
    Ok(format!("{local}@{}", domain.to_lowercase()))
}

/// A display name safe for headers and tables: control characters (CR, LF, tab, ...) become
/// spaces, runs of whitespace collapse, ends are trimmed.
pub fn clean_display_name(raw: &str) -> String {
    let replaced: String = raw
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    replaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(300)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_normalizes_ordinary_addresses() {
        assert_eq!(
            normalize_email("  Ann.Lee@Example.COM ").unwrap(),
            "Ann.Lee@example.com"
        );
        assert_eq!(
            normalize_email("a+tag@sub.example.org").unwrap(),
            "a+tag@sub.example.org"
        );
    }

    #[test]
    fn refuses_malformed_addresses() {
        assert_eq!(normalize_email(""), Err(AddressError::Empty));
        assert!(matches!(
            normalize_email("a b@example.com"),
            Err(AddressError::BadCharacter(_))
        ));
        assert!(matches!(
            normalize_email("ab.example.com"),
            Err(AddressError::At(_))
        ));
        assert!(matches!(
            normalize_email("a@b@example.com"),
            Err(AddressError::At(_))
        ));
        assert!(matches!(
            normalize_email("@example.com"),
            Err(AddressError::EmptyPart(_))
        ));
        assert!(matches!(
            normalize_email("a@localhost"),
            Err(AddressError::NoDot(_))
        ));
        assert!(matches!(
            normalize_email("a@exa..mple.com"),
            Err(AddressError::BadDomain(_))
        ));
        let long_local = format!("{}@example.com", "x".repeat(65));
        assert!(matches!(
            normalize_email(&long_local),
            Err(AddressError::TooLong(_))
        ));
        assert!(matches!(
            normalize_email("a@example.com\r\nBcc: x@evil.com"),
            Err(AddressError::BadCharacter(_))
        ));
    }

    #[test]
    fn display_names_lose_line_breaks() {
        assert_eq!(
            clean_display_name(" Ann\r\nBcc: evil@x.com\t"),
            "Ann Bcc: evil@x.com"
        );
        assert_eq!(clean_display_name("Zoë  Ünal"), "Zoë Ünal");
    }
}
