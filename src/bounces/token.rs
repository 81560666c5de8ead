//! Per-recipient unsubscribe tokens: `u<log id>-<20 hex>`, the hex being the first 80 bits
//! of HMAC-SHA256 over the log id and the recipient's address, keyed with a key derived
//! from the secret key (`SecretKey::derive`). Without the key a token can be neither forged
//! nor guessed from another one (ids are sequential, the tags are not). Lower case only, so
//! it survives mail systems that fold the case of local parts.

use crate::secrets::SecretKey;

const TAG_BYTES: usize = 10;

/// The signing key of unsubscribe tokens.
#[derive(Clone)]
pub struct TokenKey(ring::hmac::Key);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(***)")
    }
}

/// A token that parsed; `verify` says whether it is genuine for an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub log_id: i32,
    tag: String,
}

impl TokenKey {
    pub fn from_secret(key: &SecretKey) -> TokenKey {
        TokenKey::from_bytes(&key.derive("unsubscribe tokens v1"))
    }

    pub fn from_bytes(bytes: &[u8; 32]) -> TokenKey {
        TokenKey(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, bytes))
    }

    fn tag(&self, log_id: i32, email: &str) -> String {
        let msg = format!("unsubscribe\0{log_id}\0{}", email.trim().to_lowercase());
        let tag = ring::hmac::sign(&self.0, msg.as_bytes());
        // Hex by hand: a `format!` per byte was a third of a message's token cost.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut hex = String::with_capacity(TAG_BYTES * 2);
        for b in &tag.as_ref()[..TAG_BYTES] {
            hex.push(char::from(HEX[usize::from(b >> 4)]));
            hex.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        hex
    }

    /// The token of log row `log_id` sent to `email`.
    pub fn sign(&self, log_id: i32, email: &str) -> String {
        format!("u{log_id}-{}", self.tag(log_id, email))
    }

    /// True when `token` was made by this key for `email` (constant-time comparison).
    pub fn verify(&self, token: &Token, email: &str) -> bool {
        let expected = self.tag(token.log_id, email);
        subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), token.tag.as_bytes()).into()
    }
}

impl Token {
    /// Parses `u<id>-<hex>`; anything else is `None`.
    pub fn parse(text: &str) -> Option<Token> {
        let rest = text.trim().strip_prefix('u')?;
        let (id, tag) = rest.split_once('-')?;
        if id.is_empty() || id.len() > 10 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let tag = tag.to_ascii_lowercase();
        if tag.len() != TAG_BYTES * 2 || !tag.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let log_id: i32 = id.parse().ok()?;
        (log_id > 0).then_some(Token { log_id, tag })
    }

    /// Finds the first token in free text (an address, a subject line, a URL path).
    pub fn find_in(text: &str) -> Option<Token> {
        let lower = text.to_ascii_lowercase();
        let bytes = lower.as_bytes();
        for (i, _) in lower.match_indices('u') {
            if i > 0 && bytes[i - 1].is_ascii_alphanumeric() {
                continue;
            }
            let end = lower[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .map_or(lower.len(), |e| i + e);
            if let Some(t) = Token::parse(&lower[i..end]) {
                return Some(t);
            }
        }
        None
    }
}

/// The mailto address carrying `token`: `local+unsubscribe-TOKEN@domain` of `mailbox`.
pub fn mailto_address(mailbox: &str, token: &str) -> String {
    match mailbox.rsplit_once('@') {
        Some((local, domain)) => {
            let local = local.split('+').next().unwrap_or(local);
            format!("{local}+unsubscribe-{token}@{domain}")
        }
        None => mailbox.to_string(),
    }
}

/// The one-click URL of `token` under the deployment's public base URL.
pub fn https_url(base_url: &str, token: &str) -> String {
    format!("{}/u/{token}", base_url.trim().trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_for_their_row_and_address() {
        let k = TokenKey::from_bytes(&[3; 32]);
        let t = k.sign(42, "Ann@Example.com");
        assert!(t.starts_with("u42-") && t.len() == 4 + 20, "{t}");
        // Tokens in mail already sent must keep verifying: the value is pinned (HMAC-SHA256
        // of "unsubscribe\0<id>\0<address>", first 10 bytes in hex, computed independently).
        assert_eq!(t, "u42-f350ab24ae0c3fb06406");
        let parsed = Token::parse(&t).unwrap();
        assert_eq!(parsed.log_id, 42);
        assert!(k.verify(&parsed, "ann@example.com"));
        assert!(!k.verify(&parsed, "bob@example.com"));
        // Another id with the same tag, another key, a flipped digit: all refused.
        let other = Token::parse(&t.replacen("u42", "u43", 1)).unwrap();
        assert!(!k.verify(&other, "ann@example.com"));
        assert!(!TokenKey::from_bytes(&[4; 32]).verify(&parsed, "ann@example.com"));
        let mut flipped = t.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        let flipped = Token::parse(std::str::from_utf8(&flipped).unwrap()).unwrap();
        assert!(!k.verify(&flipped, "ann@example.com"));
    }

    #[test]
    fn parsing_is_strict_and_finding_works_in_addresses() {
        for bad in [
            "",
            "u",
            "u1-",
            "u-00",
            "x1-0000000000",
            "u0-00000000000000000000",
            "u1-zz000000000000000000",
            "u99999999999-00000000000000000000",
        ] {
            assert!(Token::parse(bad).is_none(), "{bad}");
        }
        let k = TokenKey::from_bytes(&[3; 32]);
        let t = k.sign(7, "a@b.c");
        let addr = mailto_address("news+x@acme.test", &t);
        assert_eq!(addr, format!("news+unsubscribe-{t}@acme.test"));
        assert_eq!(Token::find_in(&addr).unwrap().log_id, 7);
        assert_eq!(
            Token::find_in(&format!("Subject: unsubscribe {t}"))
                .unwrap()
                .log_id,
            7
        );
        assert!(Token::find_in("unsubscribe me please").is_none());
        assert_eq!(
            https_url("https://acme.test/", &t),
            format!("https://acme.test/u/{t}")
        );
    }
}
