//! Django-compatible password hashing (`pbkdf2_sha256$<iterations>$<salt>$<base64 hash>`).
//! The Django web app reads the same `password` column, so every hash written here must stay
//! verifiable by Django's `check_password`, and every hash Django wrote must verify here.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::Rng as _;
use rand::distr::Alphanumeric;
use subtle::ConstantTimeEq as _;

/// Iteration count of Django 5.x's `PBKDF2PasswordHasher` (Django 5.2 uses 1,000,000).
pub const DEFAULT_ITERATIONS: u32 = 1_000_000;

/// Highest iteration count accepted, so a hostile or corrupt database row cannot make one
/// verification run for minutes (100x Django's default).
pub const MAX_ITERATIONS: u32 = 100_000_000;

/// The algorithm name Django writes before the first `$`.
const ALGORITHM: &str = "pbkdf2_sha256";

/// Django's `UNUSABLE_PASSWORD_PREFIX`: `set_unusable_password()` stores `!` + 40 random chars.
const UNUSABLE_PASSWORD_PREFIX: char = '!';

/// Length of a generated salt: Django's `salt_entropy = 128` bits over 62 symbols
/// (`ceil(128 / log2(62)) = 22`), as `get_random_string(22)` produces.
const SALT_LEN: usize = 22;

/// PBKDF2-HMAC-SHA256 output length (Django's `dklen=None`, i.e. the digest size).
const HASH_LEN: usize = 32;

/// Why a password could not be hashed or a stored hash could not be checked.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    /// The stored hash names an algorithm other than `pbkdf2_sha256` (e.g. `argon2`).
    #[error("unsupported password hashing algorithm '{0}' (only pbkdf2_sha256 is supported)")]
    UnsupportedAlgorithm(String),
    /// The stored hash, or a salt / iteration count passed in, is not usable.
    #[error("malformed password hash: {0}")]
    Malformed(HashPart),
    /// `make_password*` was given an empty password; this module never hashes one.
    #[error("password must not be empty")]
    EmptyPassword,
}

/// The part of an encoded hash that is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashPart {
    /// Not `algorithm$iterations$salt$hash` (wrong number of `$`-separated fields).
    Structure,
    /// The algorithm field is empty or does not look like an algorithm name.
    Algorithm,
    /// The iteration count is not a plain decimal from 1 to [`MAX_ITERATIONS`].
    Iterations,
    /// The salt is empty or contains `$`.
    Salt,
    /// The hash is not padded standard base64 of exactly 32 bytes.
    Hash,
}

impl std::fmt::Display for HashPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HashPart::Structure => {
                "expected four '$'-separated fields (algorithm$iterations$salt$hash)"
            }
            HashPart::Algorithm => "bad algorithm field",
            HashPart::Iterations => "iteration count must be a decimal integer from 1 to 100000000",
            HashPart::Salt => "salt must be non-empty and must not contain '$'",
            HashPart::Hash => "hash must be standard base64 of 32 bytes",
        })
    }
}

/// Hashes `password` with a fresh random 22-character `[a-zA-Z0-9]` salt (like Django's
/// `get_random_string`) at [`DEFAULT_ITERATIONS`].
pub fn make_password(password: &str) -> Result<String, PasswordError> {
    make_password_with(password, &random_salt(), DEFAULT_ITERATIONS)
}

/// Hashes `password` with the given salt and iteration count. Gives exactly the string
/// Django's `PBKDF2PasswordHasher().encode(password, salt, iterations)` gives.
///
/// Like Django, refuses an empty salt or one containing `$`; also refuses 0 iterations or
/// more than [`MAX_ITERATIONS`], and an empty password.
pub fn make_password_with(
    password: &str,
    salt: &str,
    iterations: u32,
) -> Result<String, PasswordError> {
    if password.is_empty() {
        return Err(PasswordError::EmptyPassword);
    }
    if salt.is_empty() || salt.contains('$') {
        return Err(PasswordError::Malformed(HashPart::Salt));
    }
    if !(1..=MAX_ITERATIONS).contains(&iterations) {
        return Err(PasswordError::Malformed(HashPart::Iterations));
    }
    let hash = derive(password, salt, iterations);
    Ok(format!(
        "{ALGORITHM}${iterations}${salt}${}",
        BASE64.encode(hash)
    ))
}

/// Checks `password` against a stored `encoded` hash, at whatever iteration count it holds.
///
/// - `Ok(true)` / `Ok(false)`: the password matches / does not match (compared in constant
///   time).
/// - `Ok(false)` also for Django's unusable-password marker: `set_unusable_password()` writes
///   `!` followed by random characters, which no password may ever match. That is a normal
///   state of an account, not a corrupt row, so it is not an error. As Django 5.x does
///   (CVE-2024-39329), a hash at [`DEFAULT_ITERATIONS`] is still computed, so such a user
///   takes as long to refuse as a wrong password.
/// - `Ok(false)` for an empty `password`, at once: it never matches, not even a hash Django
///   made of `""` (Django's forms never let a user set one, and this module never makes one).
///   A login with an empty password is then just wrong credentials, for every user alike.
/// - `Err(UnsupportedAlgorithm)` for any other algorithm (e.g. `argon2$...`, `bcrypt_sha256$...`).
/// - `Err(Malformed)` for a `pbkdf2_sha256` hash that cannot be parsed, including an iteration
///   count above [`MAX_ITERATIONS`]; nothing is computed then. These are checked before the
///   empty password, so a corrupt row is reported whatever was typed.
pub fn verify_password(password: &str, encoded: &str) -> Result<bool, PasswordError> {
    if encoded.starts_with(UNUSABLE_PASSWORD_PREFIX) {
        if !password.is_empty() {
            std::hint::black_box(derive(password, &random_salt(), DEFAULT_ITERATIONS));
        }
        return Ok(false);
    }
    let parsed = parse(encoded)?;
    if password.is_empty() {
        return Ok(false);
    }
    let computed = derive(password, parsed.salt, parsed.iterations);
    Ok(computed.ct_eq(&parsed.hash).into())
}

/// Whether a stored hash should be replaced by `make_password(password)` once the user's
/// password has been verified: true when it is not `pbkdf2_sha256`, has fewer than
/// [`DEFAULT_ITERATIONS`], or is malformed. False for Django's unusable-password marker
/// (`!...`), which has no password to re-hash, and for counts at or above the default.
///
/// Django's own `must_update` also re-hashes when the count is *above* its default and when
/// the salt is shorter than 22 characters; this function does neither.
pub fn needs_rehash(encoded: &str) -> bool {
    if encoded.starts_with(UNUSABLE_PASSWORD_PREFIX) {
        return false;
    }
    match parse(encoded) {
        Ok(parsed) => parsed.iterations < DEFAULT_ITERATIONS,
        Err(_) => true,
    }
}

/// A parsed `pbkdf2_sha256$<iterations>$<salt>$<hash>`.
struct Parsed<'a> {
    iterations: u32,
    salt: &'a str,
    hash: [u8; HASH_LEN],
}

fn parse(encoded: &str) -> Result<Parsed<'_>, PasswordError> {
    // Django identifies the hasher by the text before the first '$'.
    let Some((algorithm, rest)) = encoded.split_once('$') else {
        // No '$' at all: never echo the value, it may be a plaintext password or a secret.
        return Err(PasswordError::Malformed(HashPart::Structure));
    };
    if algorithm != ALGORITHM {
        // Only name it when it looks like an algorithm name, so the error (which may end up
        // in a log) never carries arbitrary database content.
        let looks_like_name = !algorithm.is_empty()
            && algorithm.len() <= 32
            && algorithm
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        return Err(if looks_like_name {
            PasswordError::UnsupportedAlgorithm(algorithm.to_owned())
        } else {
            PasswordError::Malformed(HashPart::Algorithm)
        });
    }

    let mut fields = rest.split('$');
    let (Some(iterations), Some(salt), Some(hash), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        // Fewer than four fields, or more (e.g. a salt containing '$').
        return Err(PasswordError::Malformed(HashPart::Structure));
    };

    let iterations = parse_iterations(iterations)?;
    if salt.is_empty() {
        return Err(PasswordError::Malformed(HashPart::Salt));
    }
    let hash: [u8; HASH_LEN] = BASE64
        .decode(hash)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(PasswordError::Malformed(HashPart::Hash))?;

    Ok(Parsed {
        iterations,
        salt,
        hash,
    })
}

/// Accepts only the canonical decimal Django writes (`str(int)`): ASCII digits, no sign, no
/// leading zero, 1..=MAX_ITERATIONS. Django would fail a non-canonical form anyway, since it
/// compares the whole re-encoded string.
fn parse_iterations(text: &str) -> Result<u32, PasswordError> {
    let malformed = PasswordError::Malformed(HashPart::Iterations);
    if text.is_empty() || text.len() > 9 || text.starts_with('0') {
        return Err(malformed);
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed);
    }
    match text.parse::<u32>() {
        Ok(n) if (1..=MAX_ITERATIONS).contains(&n) => Ok(n),
        _ => Err(malformed),
    }
}

/// 22 characters drawn uniformly from `[a-zA-Z0-9]` by the thread-local CSPRNG, the same
/// alphabet and length as Django's `get_random_string(22)`.
fn random_salt() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(SALT_LEN)
        .map(char::from)
        .collect()
}

// ring's PBKDF2 is compiled (optimised, with its SHA-256 assembly) in ring itself, so it is
// fast even in debug builds of recalliq; a generic RustCrypto call would be monomorphised
// here at our own opt-level and take seconds per login in tests.
fn derive(password: &str, salt: &str, iterations: u32) -> [u8; HASH_LEN] {
    let mut out = [0u8; HASH_LEN];
    let rounds = std::num::NonZeroU32::new(iterations).unwrap_or(std::num::NonZeroU32::MIN);
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        rounds,
        salt.as_bytes(),
        password.as_bytes(),
        &mut out,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Generated by Django 5.2.19 (PBKDF2PasswordHasher.iterations == 1_000_000), after
    // `settings.configure()`, with `django.contrib.auth.hashers`:
    //   DJ_1M      = make_password("correct horse battery staple",
    //                              salt="Z9x8Yq2LmN4pQr7sTu1vWx", hasher="pbkdf2_sha256")
    //   DJ_870K    = PBKDF2PasswordHasher().encode("hunter2", "a3KfT9wQz8LmXc2RpV7nYb",
    //                                              iterations=870000)
    //   DJ_260K    = PBKDF2PasswordHasher().encode("password", "seasalt", iterations=260000)
    //   DJ_36K     = PBKDF2PasswordHasher().encode("password", "seasalt", iterations=36000)
    //   DJ_UNICODE = make_password("pässwörd✓日本", salt="uNiC0deSaltX7Yz",
    //                              hasher="pbkdf2_sha256")
    //   DJ_UNICODE_36K = PBKDF2PasswordHasher().encode("pässwörd✓日本", "uNiC0deSaltX7Yz",
    //                                                  iterations=36000)
    //   DJ_EMPTY_PASSWORD = make_password("", salt="emptypwsaltABC", hasher="pbkdf2_sha256")
    //   DJ_UNUSABLE = make_password(None)   # what set_unusable_password() stores
    // Django refuses an empty salt: encode(pw, "") raises
    //   ValueError("salt must be provided and cannot contain $.")
    //
    // In an unoptimised build one 1,000,000-iteration hash takes seconds (the generic
    // HMAC/PBKDF2 code is compiled into this crate at its opt-level), so the tests compute
    // each 1M vector once and do the many negative checks on the low-count vectors.
    const DJ_1M: &str =
        "pbkdf2_sha256$1000000$Z9x8Yq2LmN4pQr7sTu1vWx$xtFkih4MuslCGpa58RnunpHlynbbCKLwdRBOindWSXo=";
    const DJ_870K: &str =
        "pbkdf2_sha256$870000$a3KfT9wQz8LmXc2RpV7nYb$tuCXx/VNYL/WgiFN1r6TD87d/KvlrhUDHLp+4lnXT5A=";
    const DJ_260K: &str =
        "pbkdf2_sha256$260000$seasalt$ftMWvEdczZQK5azuap2CQYKRjHLa1wOuMrfMiYEswYQ=";
    const DJ_36K: &str = "pbkdf2_sha256$36000$seasalt$IsbBJ2CT9Lda81b8kQagfbE724czlpFEGcSYKv6cAjM=";
    const DJ_UNICODE: &str =
        "pbkdf2_sha256$1000000$uNiC0deSaltX7Yz$ypPBUuMElS5m2i8vy0/Zr1cRbux9OfV35DSnnJSYPgU=";
    const DJ_UNICODE_36K: &str =
        "pbkdf2_sha256$36000$uNiC0deSaltX7Yz$QlMdgqkIZn+3InGgUcrlutpZ9DZys6DXz+ycfjz/CQg=";
    const DJ_EMPTY_PASSWORD: &str =
        "pbkdf2_sha256$1000000$emptypwsaltABC$lmcYXk41lEvBDYfFGGVMwmYpCg5P9yZuFuTRdGY+6qs=";
    const DJ_UNUSABLE: &str = "!qlphUJTAPPMJMcBqxdifftpmQiyLyIICwlcLdU0n";

    const UNICODE_PASSWORD: &str = "pässwörd✓日本";

    /// Low-count vectors: (password, salt, iterations, Django's encoding).
    const LOW_VECTORS: &[(&str, &str, u32, &str)] = &[
        ("password", "seasalt", 260_000, DJ_260K),
        ("password", "seasalt", 36_000, DJ_36K),
        (UNICODE_PASSWORD, "uNiC0deSaltX7Yz", 36_000, DJ_UNICODE_36K),
    ];

    /// A valid 32-byte hash field, for parse-only tests that never compute PBKDF2.
    const ANY_HASH: &str = "xtFkih4MuslCGpa58RnunpHlynbbCKLwdRBOindWSXo=";

    fn malformed(part: HashPart) -> Result<bool, PasswordError> {
        Err(PasswordError::Malformed(part))
    }

    #[test]
    fn default_iterations_match_django_5() {
        assert_eq!(DEFAULT_ITERATIONS, 1_000_000);
    }

    #[test]
    fn django_vector_1m_ascii_verifies() {
        assert_eq!(
            verify_password("correct horse battery staple", DJ_1M),
            Ok(true)
        );
    }

    #[test]
    fn django_vector_1m_unicode_verifies() {
        assert_eq!(verify_password(UNICODE_PASSWORD, DJ_UNICODE), Ok(true));
    }

    #[test]
    fn django_vector_870k_verifies() {
        assert_eq!(verify_password("hunter2", DJ_870K), Ok(true));
    }

    #[test]
    fn django_low_count_vectors_verify() {
        for &(password, _, _, encoded) in LOW_VECTORS {
            assert_eq!(verify_password(password, encoded), Ok(true), "{encoded}");
        }
    }

    #[test]
    fn wrong_password_fails() {
        for &(password, _, _, encoded) in LOW_VECTORS {
            for wrong in [
                format!("{password}x"),
                password[1..].to_owned(),
                String::from("x"),
            ] {
                assert_eq!(
                    verify_password(&wrong, encoded),
                    Ok(false),
                    "{wrong:?} {encoded}"
                );
            }
        }
        assert_eq!(verify_password("Password", DJ_36K), Ok(false));
        // Same text, other Unicode normalisation ("ä" as 'a' + combining diaeresis): Django
        // does not normalise either, so this must not match.
        assert_eq!(
            verify_password("pa\u{308}sswörd✓日本", DJ_UNICODE_36K),
            Ok(false)
        );
        // Right password, hash of another salt or count.
        let other_salt = DJ_36K.replace("$seasalt$", "$seasalu$");
        assert_eq!(verify_password("password", &other_salt), Ok(false));
        let other_count = DJ_36K.replace("$36000$", "$36001$");
        assert_eq!(verify_password("password", &other_count), Ok(false));
    }

    #[test]
    fn make_password_with_reproduces_django_exactly() {
        for &(password, salt, iterations, encoded) in LOW_VECTORS {
            assert_eq!(
                make_password_with(password, salt, iterations).as_deref(),
                Ok(encoded)
            );
        }
    }

    #[test]
    fn make_password_format_and_round_trip() {
        let encoded = make_password("s3cret pässword").unwrap();
        let fields: Vec<&str> = encoded.split('$').collect();
        assert_eq!(fields.len(), 4, "{encoded}");
        assert_eq!(fields[0], "pbkdf2_sha256");
        assert_eq!(fields[1], "1000000");
        assert_eq!(fields[2].len(), 22);
        assert!(fields[2].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(fields[3].len(), 44); // base64 of 32 bytes, with one '=' of padding
        assert!(fields[3].ends_with('='));

        assert_eq!(verify_password("s3cret pässword", &encoded), Ok(true));
        assert!(!needs_rehash(&encoded));
    }

    #[test]
    fn random_salts_look_like_djangos_and_differ() {
        let salts: Vec<String> = (0..200).map(|_| random_salt()).collect();
        for salt in &salts {
            assert_eq!(salt.len(), 22);
            assert!(salt.bytes().all(|b| b.is_ascii_alphanumeric()), "{salt}");
        }
        let mut unique = salts.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), salts.len());
        // All three character classes turn up across 200 * 22 draws.
        let all: String = salts.concat();
        assert!(all.bytes().any(|b| b.is_ascii_lowercase()));
        assert!(all.bytes().any(|b| b.is_ascii_uppercase()));
        assert!(all.bytes().any(|b| b.is_ascii_digit()));
    }

    #[test]
    fn empty_password_is_refused() {
        assert_eq!(make_password(""), Err(PasswordError::EmptyPassword));
        assert_eq!(
            make_password_with("", "somesalt", 1000),
            Err(PasswordError::EmptyPassword)
        );
        // Never matches, not even a hash Django made of "" (and nothing is computed).
        assert_eq!(verify_password("", DJ_EMPTY_PASSWORD), Ok(false));
        assert_eq!(verify_password("", DJ_1M), Ok(false));
        // A malformed or unsupported stored hash is reported before the empty password.
        assert_eq!(
            verify_password("", "pbkdf2_sha256$x$s$h"),
            malformed(HashPart::Iterations)
        );
        assert_eq!(
            verify_password("", "argon2$argon2id$x"),
            Err(PasswordError::UnsupportedAlgorithm("argon2".into()))
        );
    }

    #[test]
    fn unusable_password_marker_never_matches() {
        // Each non-empty check runs one dummy 1M-iteration hash (Django's fake runtime).
        assert_eq!(verify_password(&DJ_UNUSABLE[1..], DJ_UNUSABLE), Ok(false));
        assert_eq!(verify_password("", DJ_UNUSABLE), Ok(false));
        assert_eq!(verify_password("", "!"), Ok(false));
        assert!(!needs_rehash(DJ_UNUSABLE));
        assert!(!needs_rehash("!"));
    }

    #[test]
    fn unsupported_algorithms_are_named() {
        let cases = [
            (
                "argon2$argon2id$v=19$m=102400,t=2,p=8$c29tZXNhbHQ$abc",
                "argon2",
            ),
            (
                "bcrypt_sha256$$2b$12$abcdefghijklmnopqrstuu",
                "bcrypt_sha256",
            ),
            ("pbkdf2_sha1$1000000$salt$abc=", "pbkdf2_sha1"),
            ("md5$salt$0123456789abcdef0123456789abcdef", "md5"),
            ("scrypt$16384$salt$8$1$abc=", "scrypt"),
        ];
        for (encoded, name) in cases {
            let err = verify_password("password", encoded).unwrap_err();
            assert_eq!(err, PasswordError::UnsupportedAlgorithm(name.to_owned()));
            assert!(err.to_string().contains(name), "{err}");
            assert!(needs_rehash(encoded));
        }
    }

    #[test]
    fn odd_algorithm_fields_are_not_echoed() {
        // Could be a plaintext password sitting in the column: never put it in an error.
        for encoded in [
            "hunter2",
            "",
            "PBKDF2_SHA256$1000$s$h",
            "my password$x",
            "$1000$s$h",
        ] {
            let err = verify_password("password", encoded).unwrap_err();
            assert!(
                matches!(err, PasswordError::Malformed(_)),
                "{encoded}: {err:?}"
            );
            assert!(needs_rehash(encoded));
        }
        assert_eq!(
            verify_password("p", "hunter2"),
            malformed(HashPart::Structure)
        );
        assert_eq!(verify_password("p", ""), malformed(HashPart::Structure));
        assert_eq!(
            verify_password("p", "my password$x"),
            malformed(HashPart::Algorithm)
        );
    }

    #[test]
    fn malformed_structure() {
        for encoded in [
            "pbkdf2_sha256$",
            "pbkdf2_sha256$1000000",
            "pbkdf2_sha256$1000000$salt",
            // Salt containing '$' gives a fifth field.
            &format!("pbkdf2_sha256$1000000$sa$lt${ANY_HASH}"),
            &format!("pbkdf2_sha256$1000000$salt${ANY_HASH}$"),
        ] {
            assert_eq!(
                verify_password("p", encoded),
                malformed(HashPart::Structure),
                "{encoded}"
            );
        }
    }

    #[test]
    fn malformed_iterations() {
        for iterations in [
            "",
            "0",
            "-1",
            "+1000",
            " 1000",
            "1_000",
            "01000",
            "1e6",
            "abc",
            "100000001",  // above MAX_ITERATIONS: a hostile row must not cost minutes
            "4294967296", // overflows u32
            "99999999999999999999999",
        ] {
            let encoded = format!("pbkdf2_sha256${iterations}$salt${ANY_HASH}");
            assert_eq!(
                verify_password("p", &encoded),
                malformed(HashPart::Iterations),
                "{encoded}"
            );
            assert!(needs_rehash(&encoded));
        }
        // The bound itself parses (needs_rehash only parses; nothing is computed).
        assert!(!needs_rehash(&format!(
            "pbkdf2_sha256$100000000$salt${ANY_HASH}"
        )));
    }

    #[test]
    fn malformed_salt() {
        let encoded = format!("pbkdf2_sha256$1000$${ANY_HASH}");
        assert_eq!(verify_password("p", &encoded), malformed(HashPart::Salt));
        // Django: encode(pw, "") and encode(pw, "a$b") raise
        // ValueError("salt must be provided and cannot contain $.")
        for salt in ["", "a$b", "$"] {
            assert_eq!(
                make_password_with("p", salt, 1000),
                Err(PasswordError::Malformed(HashPart::Salt)),
                "{salt:?}"
            );
        }
    }

    #[test]
    fn malformed_hash_field() {
        for hash in [
            "",
            "not base64!",
            // 32 bytes without padding (Django writes padded base64)
            "xtFkih4MuslCGpa58RnunpHlynbbCKLwdRBOindWSXo",
            // URL-safe alphabet
            "tuCXx_VNYL_WgiFN1r6TD87d_KvlrhUDHLp-4lnXT5A=",
            // 16 bytes
            "AAAAAAAAAAAAAAAAAAAAAA==",
            // 33 bytes
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            let encoded = format!("pbkdf2_sha256$1000$salt${hash}");
            assert_eq!(
                verify_password("p", &encoded),
                malformed(HashPart::Hash),
                "{hash}"
            );
        }
    }

    #[test]
    fn make_password_with_rejects_bad_iterations() {
        for iterations in [0, MAX_ITERATIONS + 1, u32::MAX] {
            assert_eq!(
                make_password_with("p", "salt", iterations),
                Err(PasswordError::Malformed(HashPart::Iterations))
            );
        }
    }

    #[test]
    fn needs_rehash_rules() {
        assert!(!needs_rehash(DJ_1M));
        assert!(!needs_rehash(DJ_UNICODE));
        assert!(needs_rehash(DJ_870K));
        assert!(needs_rehash(DJ_260K));
        assert!(needs_rehash(DJ_36K));
        assert!(needs_rehash(&format!(
            "pbkdf2_sha256$999999$salt${ANY_HASH}"
        )));
        // Above the default is not downgraded.
        assert!(!needs_rehash(&format!(
            "pbkdf2_sha256$1200000$salt${ANY_HASH}"
        )));
        assert!(needs_rehash(
            "argon2$argon2id$v=19$m=102400,t=2,p=8$c2FsdA$aGFzaA"
        ));
        assert!(needs_rehash("pbkdf2_sha256$1000000$salt$short"));
        assert!(needs_rehash(""));
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            PasswordError::UnsupportedAlgorithm("argon2".into()).to_string(),
            "unsupported password hashing algorithm 'argon2' (only pbkdf2_sha256 is supported)"
        );
        assert_eq!(
            PasswordError::Malformed(HashPart::Salt).to_string(),
            "malformed password hash: salt must be non-empty and must not contain '$'"
        );
        assert_eq!(
            PasswordError::EmptyPassword.to_string(),
            "password must not be empty"
        );
    }
}
