//! Hostile input (issue #10 item 6): property tests of CSV import, template rendering,
//! address validation and header building. No panic, no header injection (CR/LF never
//! reaches a header line unencoded), bounded output. Case counts are modest so the whole
//! module runs in a few seconds.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::Config;
use recalliq::csvio;
use recalliq::domain::{clean_display_name, normalize_email};
use recalliq::mail::{MessageParts, Unsubscribe, build_message};
use recalliq::render::{MAX_RENDERED_BYTES, Recipient, Renderer, TemplateSource, TenantInfo};
use serde_json::json;

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Strings full of what breaks headers and parsers: CR, LF, NUL, quotes, commas, colons,
/// angle brackets, non-ASCII, emoji, and plain letters.
fn nasty() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => "[a-zA-Z0-9 .@_-]{1,6}",
            1 => Just("\r\n".to_string()),
            1 => Just("\n".to_string()),
            1 => Just("\r".to_string()),
            1 => Just("\0".to_string()),
            1 => Just("\"".to_string()),
            1 => Just(",".to_string()),
            1 => Just(":".to_string()),
            1 => Just("<>".to_string()),
            1 => Just("\r\nBcc: victim@evil.test\r\n".to_string()),
            1 => Just("=?utf-8?q?x?=".to_string()),
            1 => Just("\t".to_string()),
            1 => Just("é日本😀".to_string()),
            1 => Just("\u{2028}\u{85}".to_string()),
        ],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

/// Header names a message built by `build_message` may carry.
const ALLOWED_HEADERS: &[&str] = &[
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "reply-to",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
];

/// Asserts that the header block of `raw` is well formed: CRLF line ends only, every line
/// a known header or a folded continuation.
fn assert_clean_head(raw: &[u8]) {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next().unwrap();
    for line in head.split("\r\n") {
        assert!(
            !line.contains('\r') && !line.contains('\n'),
            "bare CR or LF in header line {line:?}"
        );
        if line.starts_with(' ') || line.starts_with('\t') {
            continue;
        }
        let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
        assert!(
            ALLOWED_HEADERS.contains(&name.as_str()),
            "unexpected header line {line:?} in\n{head}"
        );
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn csv_arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1500)) {
        if let Ok(parsed) = csvio::parse(&bytes) {
            let lines = bytes.iter().filter(|b| **b == b'\n' || **b == b'\r').count() + 1;
            prop_assert!(parsed.rows.len() + parsed.invalid.len() + parsed.duplicates.len() <= lines);
            for row in &parsed.rows {
                prop_assert!(!row.email.chars().any(|c| c.is_control() || c.is_whitespace()));
                let again = normalize_email(&row.email);
                prop_assert_eq!(again.as_deref(), Ok(row.email.as_str()));
                if let Some(n) = &row.name {
                    prop_assert!(!n.chars().any(char::is_control), "name {:?}", n);
                }
            }
        }
    }

    #[test]
    fn csv_structured_rows_are_clean(rows in prop::collection::vec((nasty(), nasty(), nasty()), 1..20)) {
        let mut text = String::from("email,name,plan\n");
        for (e, n, p) in &rows {
            let cell = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
            text.push_str(&format!("{}@example.com,{},{}\n", e.replace([',', '"', '\r', '\n'], ""), cell(n), cell(p)));
        }
        if let Ok(parsed) = csvio::parse(text.as_bytes()) {
            prop_assert!(parsed.rows.len() + parsed.invalid.len() + parsed.duplicates.len() <= rows.len());
            for row in &parsed.rows {
                prop_assert!(!row.email.chars().any(|c| c.is_control() || c.is_whitespace()));
                if let Some(n) = &row.name {
                    prop_assert!(!n.chars().any(char::is_control), "name {:?}", n);
                }
            }
        }
    }

    #[test]
    fn addresses_and_names_are_header_safe(raw in nasty(), local in "[a-zA-Z0-9+_-]{1,8}(\\.[a-zA-Z0-9+_-]{1,8}){0,2}", domain in "[a-z0-9]{1,6}(-[a-z0-9]{1,5})?\\.[a-z]{2,6}") {
        for candidate in [raw.clone(), format!("{local}@{domain}"), format!("{local}{raw}@{domain}")] {
            if let Ok(e) = normalize_email(&candidate) {
                prop_assert!(!e.chars().any(|c| c.is_control() || c.is_whitespace()), "{:?}", e);
                prop_assert_eq!(e.matches('@').count(), 1);
                prop_assert!(e.len() <= 254);
                prop_assert_eq!(normalize_email(&e), Ok(e.clone()), "idempotent");
            }
        }
        let plain = format!("{local}@{domain}");
        prop_assert!(normalize_email(&plain).is_ok(), "{:?}", plain);
        let n = clean_display_name(&raw);
        prop_assert!(!n.chars().any(char::is_control), "{:?}", n);
        prop_assert_eq!(n.trim(), n.as_str());
        prop_assert_eq!(clean_display_name(&n), n.clone(), "idempotent");
    }

    #[test]
    fn rendering_never_panics_and_subjects_stay_on_one_line(
        pieces in prop::collection::vec(prop_oneof![
            nasty(),
            Just("{{ v }}".to_string()),
            Just("{{ name|default('x') }}".to_string()),
            Just("{{ v|upper }}".to_string()),
            Just("{{".to_string()),
            Just("}}".to_string()),
            Just("{% if v %}y{% endif %}".to_string()),
            Just("{% for c in v %}{{ c }}{% endfor %}".to_string()),
            Just("{{ missing }}".to_string()),
            Just("{# c #}".to_string()),
        ], 0..8),
        value in nasty(),
        name in nasty(),
    ) {
        let template = pieces.concat();
        let source = TemplateSource {
            subject: template.clone(),
            body_html: Some(format!("<p>{template}</p>")),
            body_text: Some(template.clone()),
        };
        if let Ok(renderer) = Renderer::new(&source) {
            let recipient = Recipient {
                email: "ann@example.com".into(),
                name: Some(name.clone()),
                variables: Some(json!({ "v": value })),
            };
            if let Ok(r) = renderer.render(&recipient, None, &TenantInfo::default(), "https://acme.test/u") {
                prop_assert!(!r.subject.contains('\r') && !r.subject.contains('\n'), "{:?}", r.subject);
                prop_assert!(r.text.len() <= MAX_RENDERED_BYTES);
            }
        }
    }

    #[test]
    fn built_headers_admit_no_injection(
        from_name in nasty(),
        to_name in nasty(),
        subject in nasty(),
        url_tail in nasty(),
        body in nasty(),
    ) {
        let unsub = Unsubscribe {
            mailto: "unsubscribe@acme.test".into(),
            https_url: Some(format!("https://acme.test/u/{url_tail}")),
        };
        let parts = MessageParts {
            from_email: "news@acme.test",
            from_name: Some(&from_name),
            to_email: "ann@example.com",
            to_name: Some(&to_name),
            reply_to: Some("help@acme.test"),
            unsubscribe: &unsub,
        };
        let rendered = recalliq::render::Rendered {
            subject: subject.clone(),
            html: Some(format!("<p>{body}</p>")),
            text: body.clone(),
        };
        if let Ok(msg) = build_message(&parts, &rendered) {
            assert_clean_head(msg.bytes());
            prop_assert_eq!(msg.envelope().to().len(), 1, "no extra recipient");
        }
    }
}

#[test]
fn hostile_templates_are_stopped_with_bounded_time_and_memory() {
    let started = Instant::now();
    let cases = [
        // 10^10 iterations: runs out of fuel.
        "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}",
        // 100000 x 1 KiB = 100 MiB of output: over the output bound.
        "{% for a in range(100000) %}{{ big }}{% endfor %}",
        // Deep recursion through a macro.
        "{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}",
    ];
    for template in cases {
        let renderer = Renderer::new(&TemplateSource {
            subject: "s".into(),
            body_html: None,
            body_text: Some(template.into()),
        })
        .unwrap();
        let recipient = Recipient {
            email: "ann@example.com".into(),
            name: None,
            variables: Some(json!({ "big": "y".repeat(1024) })),
        };
        let err = renderer
            .render(
                &recipient,
                None,
                &TenantInfo::default(),
                "https://acme.test/u",
            )
            .expect_err(template)
            .to_string();
        assert!(!err.contains('\n'), "one line: {err}");
        assert!(err.contains("ann@example.com"), "{err}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "hostile templates took {:?}",
        started.elapsed()
    );
}
