//! Contact CSV files in and out. Real-world CSV is messy: this module reads UTF-8 (with or
//! without BOM) or Windows-1252, CRLF, quoted fields with commas and newlines, and reports
//! every bad row by line with a reason instead of failing on the first. Writing escapes
//! cells that a spreadsheet would run as a formula. Pure: no database, no files.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value};

use crate::domain::{clean_display_name, normalize_email};

/// Longest name the schema stores (`tenants_groupemail.name VARCHAR(200)`).
pub const MAX_NAME: usize = 200;
/// Longest variable value accepted; longer cells are almost always a broken file.
pub const MAX_FIELD: usize = 10_000;

/// One valid contact row of an import.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRow {
    pub line: u64,
    pub email: String,
    pub name: Option<String>,
    pub variables: Option<Value>,
}

/// A row that cannot be imported, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct InvalidRow {
    pub line: u64,
    pub reason: String,
}

/// A row whose address already appeared earlier in the file (compared case-insensitively).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DuplicateRow {
    pub line: u64,
    pub email: String,
    pub first_line: u64,
}

/// A parsed file: what can be imported and what cannot.
#[derive(Debug, Clone, Default)]
pub struct ParsedCsv {
    pub headers: Vec<String>,
    pub rows: Vec<ImportRow>,
    pub invalid: Vec<InvalidRow>,
    pub duplicates: Vec<DuplicateRow>,
    /// Set when the file was not UTF-8 and was read as another encoding.
    pub encoding_note: Option<String>,
}

/// Why a whole file was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CsvError {
    #[error("the file is empty")]
    Empty,
    #[error("the file has a header row but no contacts")]
    HeaderOnly,
    #[error("no 'email' column in the header (found: {0})")]
    NoEmailColumn(String),
    #[error("column {0} of the header has no name")]
    UnnamedColumn(usize),
    #[error("column '{0}' appears twice in the header")]
    DuplicateColumn(String),
    #[error("the file is UTF-16; save it as UTF-8 and import again")]
    Utf16,
    #[error("line {line}: the file is neither UTF-8 nor Windows-1252 text")]
    Encoding { line: u64 },
    #[error("line {line}: {message}")]
    Syntax { line: u64, message: String },
}

/// Decodes the bytes of a CSV file to text: UTF-8 (BOM stripped), else Windows-1252 with a
/// note naming the first line that was not UTF-8.
pub fn decode(bytes: &[u8]) -> Result<(String, Option<String>), CsvError> {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(CsvError::Utf16);
    }
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok((s.to_string(), None)),
        Err(e) => {
            let bad_at = e.valid_up_to();
            let line = 1 + bytes[..bad_at].iter().filter(|b| **b == b'\n').count() as u64;
            let (text, _, _) = encoding_rs::WINDOWS_1252.decode(bytes);
            // Bytes Windows-1252 leaves undefined decode to C1 controls: not a text file.
            if let Some(pos) = text.find(|c: char| ('\u{80}'..='\u{9f}').contains(&c) || c == '\0')
            {
                let line = 1 + text[..pos].matches('\n').count() as u64;
                return Err(CsvError::Encoding { line });
            }
            Ok((
                text.into_owned(),
                Some(format!(
                    "the file is not UTF-8 (first at line {line}); it was read as Windows-1252"
                )),
            ))
        }
    }
}

/// Removes the quote `export` puts before cells a spreadsheet would evaluate.
fn unescape_formula(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest,
        _ => cell,
    }
}

/// Parses a contact CSV: a header row with `email` (required) and `name` (optional); every
/// other column becomes a key of the contact's `variables`.
pub fn parse(bytes: &[u8]) -> Result<ParsedCsv, CsvError> {
    let (text, encoding_note) = decode(bytes)?;
    if text.trim().is_empty() {
        return Err(CsvError::Empty);
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let header_record = reader
        .headers()
        .map_err(|e| CsvError::Syntax {
            line: 1,
            message: e.to_string(),
        })?
        .clone();
    let headers: Vec<String> = header_record.iter().map(clean_display_name).collect();
    let mut seen = BTreeSet::new();
    for (i, h) in headers.iter().enumerate() {
        if h.is_empty() {
            return Err(CsvError::UnnamedColumn(i + 1));
        }
        if !seen.insert(h.to_lowercase()) {
            return Err(CsvError::DuplicateColumn(h.clone()));
        }
    }
    let is = |h: &str, names: &[&str]| names.contains(&h.to_lowercase().as_str());
    let email_col = headers
        .iter()
        .position(|h| is(h, &["email", "e-mail", "email address", "e-mail address"]))
        .ok_or_else(|| CsvError::NoEmailColumn(headers.join(", ")))?;
    let name_col = headers.iter().position(|h| is(h, &["name", "full name"]));

    let mut parsed = ParsedCsv {
        headers: headers.clone(),
        encoding_note,
        ..ParsedCsv::default()
    };
    // Line numbers from byte offsets: csv's own line counter miscounts CRLF files.
    let newlines: Vec<usize> = text
        .bytes()
        .enumerate()
        .filter(|(_, b)| *b == b'\n')
        .map(|(i, _)| i)
        .collect();
    let line_at = |byte: u64| 1 + newlines.partition_point(|&nl| (nl as u64) <= byte) as u64;
    let mut first_seen: HashMap<String, u64> = HashMap::new();
    let mut any_record = false;
    for result in reader.records() {
        let record = match result {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| line_at(p.byte()));
                return Err(CsvError::Syntax {
                    line,
                    message: e.to_string(),
                });
            }
        };
        let line = record.position().map_or(0, |p| line_at(p.byte()));
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        any_record = true;
        if record.len() != headers.len() {
            parsed.invalid.push(InvalidRow {
                line,
                reason: format!(
                    "has {} fields, the header has {}",
                    record.len(),
                    headers.len()
                ),
            });
            continue;
        }
        let raw_email = unescape_formula(record.get(email_col).unwrap_or(""));
        let email = match normalize_email(raw_email) {
            Ok(e) => e,
            Err(e) => {
                parsed.invalid.push(InvalidRow {
                    line,
                    reason: format!("invalid email: {e}"),
                });
                continue;
            }
        };
        let name = name_col
            .and_then(|c| record.get(c))
            .map(|n| clean_display_name(unescape_formula(n)))
            .filter(|n| !n.is_empty());
        if name.as_ref().is_some_and(|n| n.chars().count() > MAX_NAME) {
            parsed.invalid.push(InvalidRow {
                line,
                reason: format!("name is longer than {MAX_NAME} characters"),
            });
            continue;
        }
        let mut vars = Map::new();
        let mut too_long = None;
        for (i, cell) in record.iter().enumerate() {
            if i == email_col || Some(i) == name_col {
                continue;
            }
            if cell.chars().count() > MAX_FIELD {
                too_long = Some(headers[i].clone());
                break;
            }
            vars.insert(
                headers[i].clone(),
                Value::String(unescape_formula(cell).to_string()),
            );
        }
        if let Some(col) = too_long {
            parsed.invalid.push(InvalidRow {
                line,
                reason: format!("column '{col}' is longer than {MAX_FIELD} characters"),
            });
            continue;
        }
        let key = email.to_lowercase();
        if let Some(first) = first_seen.get(&key) {
            parsed.duplicates.push(DuplicateRow {
                line,
                email,
                first_line: *first,
            });
            continue;
        }
        first_seen.insert(key, line);
        let variables = (!vars.is_empty()).then_some(Value::Object(vars));
        parsed.rows.push(ImportRow {
            line,
            email,
            name,
            variables,
        });
    }
    if !any_record {
        return Err(CsvError::HeaderOnly);
    }
    Ok(parsed)
}

/// A cell as written to an exported file: one a spreadsheet would evaluate (=, +, -, @, tab,
/// CR first) gets a leading quote, which `parse` removes again.
pub fn escape_cell(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_string()
    }
}

/// Writes contacts as CSV: `email`, `name`, then every variable key (sorted).
pub fn write_contacts<W: std::io::Write>(
    out: W,
    contacts: &[(String, Option<String>, Option<Value>)],
) -> Result<(), csv::Error> {
    let mut keys = BTreeSet::new();
    for (_, _, vars) in contacts {
        if let Some(Value::Object(m)) = vars {
            keys.extend(m.keys().cloned());
        }
    }
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(out);
    let mut header = vec!["email".to_string(), "name".to_string()];
    header.extend(keys.iter().cloned());
    w.write_record(&header)?;
    for (email, name, vars) in contacts {
        let mut row = vec![
            escape_cell(email),
            escape_cell(name.as_deref().unwrap_or("")),
        ];
        for k in &keys {
            let v = match vars {
                Some(Value::Object(m)) => match m.get(k) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Null) | None => String::new(),
                    Some(other) => other.to_string(),
                },
                _ => String::new(),
            };
            row.push(escape_cell(&v));
        }
        w.write_record(&row)?;
    }
    w.flush()?;
    Ok(())
}

/// The header of an email log export.
pub const EMAIL_LOG_HEADER: [&str; 9] = [
    "id",
    "batch_id",
    "recipient_email",
    "recipient_name",
    "status",
    "attempts",
    "sent_at",
    "smtp_response",
    "error_message",
];

/// One email log row as CSV fields (in `EMAIL_LOG_HEADER` order).
pub fn email_log_fields(r: &crate::db::EmailLog) -> [String; 9] {
    let t = |v: Option<chrono::NaiveDateTime>| {
        v.map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
            .unwrap_or_default()
    };
    [
        r.id.to_string(),
        r.batch_id.to_string(),
        r.recipient_email.clone(),
        r.recipient_name.clone().unwrap_or_default(),
        r.status.clone(),
        r.attempts.to_string(),
        t(r.sent_at),
        r.smtp_response.clone().unwrap_or_default(),
        r.error_message.clone().unwrap_or_default(),
    ]
}

/// Writes email log rows (the log viewer's export, `recalliq logs --csv`): one header line,
/// then one line per row, every field quoted as needed so nothing is lost.
pub fn write_email_logs<W: std::io::Write>(
    out: W,
    rows: &[crate::db::EmailLog],
) -> Result<(), csv::Error> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(EMAIL_LOG_HEADER)?;
    for r in rows {
        w.write_record(email_log_fields(r))?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_bom_crlf_quotes_and_variables() {
        let file = "\u{feff}Email,Name,City,Note\r\nann@example.com,Ann,Oslo,\"a, b\"\r\nbob@example.com,,\"New\r\nYork\",\r\n";
        let p = parse(file.as_bytes()).unwrap();
        assert_eq!(p.rows.len(), 2);
        assert_eq!(
            p.rows[0].variables,
            Some(json!({"City": "Oslo", "Note": "a, b"}))
        );
        assert_eq!(p.rows[1].name, None);
        assert_eq!(p.rows[1].variables.as_ref().unwrap()["City"], "New\r\nYork");
        assert_eq!((p.rows[0].line, p.rows[1].line), (2, 3));
    }

    #[test]
    fn reports_invalid_rows_by_line() {
        let file = "email,name\nok@example.com,A\nbad example@x.com,B\nno-at.example.com,C\na@b@example.com,D\nx@nodot,E\nOK@EXAMPLE.com,F\n";
        let p = parse(file.as_bytes()).unwrap();
        assert_eq!(p.rows.len(), 1);
        let lines: Vec<u64> = p.invalid.iter().map(|i| i.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6]);
        assert!(p.invalid[0].reason.contains("space"), "{:?}", p.invalid[0]);
        assert!(p.invalid[3].reason.contains("no dot"), "{:?}", p.invalid[3]);
        assert_eq!(
            p.duplicates,
            vec![DuplicateRow {
                line: 7,
                email: "OK@example.com".into(),
                first_line: 2
            }]
        );
    }

    #[test]
    fn names_lose_control_characters() {
        let p = parse(b"email,name\na@example.com,\"Ann\r\nBcc: evil@x.com\x07\"\n").unwrap();
        assert_eq!(p.rows[0].name.as_deref(), Some("Ann Bcc: evil@x.com"));
    }

    #[test]
    fn whole_file_errors_are_clear() {
        assert_eq!(parse(b"").unwrap_err(), CsvError::Empty);
        assert_eq!(parse(b"  \n").unwrap_err(), CsvError::Empty);
        assert_eq!(parse(b"email,name\n").unwrap_err(), CsvError::HeaderOnly);
        assert_eq!(
            parse(b"mail,name\nx@y.z,A\n").unwrap_err(),
            CsvError::NoEmailColumn("mail, name".into())
        );
        assert_eq!(
            parse(b"email,,x\na@b.co,,\n").unwrap_err(),
            CsvError::UnnamedColumn(2)
        );
        assert_eq!(
            parse(b"email,City,city\na@b.co,1,2\n").unwrap_err(),
            CsvError::DuplicateColumn("city".into())
        );
        assert_eq!(parse(&[0xFF, 0xFE, b'e', 0]).unwrap_err(), CsvError::Utf16);
    }

    #[test]
    fn windows_1252_is_converted_with_a_note() {
        let file = b"email,name\nz@example.com,Zo\xeb M\xfcller\n";
        let p = parse(file).unwrap();
        assert_eq!(p.rows[0].name.as_deref(), Some("Zoë Müller"));
        assert!(p.encoding_note.as_deref().unwrap().contains("line 2"));
        // 0x81 is undefined in Windows-1252: not text.
        assert_eq!(
            parse(b"email,name\na@b.co,x\x81\n").unwrap_err(),
            CsvError::Encoding { line: 2 }
        );
    }

    #[test]
    fn field_count_and_length_limits() {
        let long = "x".repeat(MAX_NAME + 1);
        let huge = "y".repeat(MAX_FIELD + 1);
        let file = format!("email,name,v\na@b.co,A\nb@b.co,{long},1\nc@b.co,C,{huge}\n");
        let p = parse(file.as_bytes()).unwrap();
        assert!(p.rows.is_empty());
        let reasons: Vec<&str> = p.invalid.iter().map(|i| i.reason.as_str()).collect();
        assert_eq!(reasons[0], "has 2 fields, the header has 3");
        assert!(reasons[1].contains("name is longer"));
        assert!(reasons[2].contains("column 'v' is longer"));
    }

    #[test]
    fn export_escapes_formulas_and_round_trips() {
        let contacts = vec![
            (
                "a@example.com".to_string(),
                Some("=HYPERLINK(\"x\")".to_string()),
                Some(json!({"city": "+47", "n": "@x", "z": "ok, \"quoted\"\nline"})),
            ),
            (
                "b@example.com".to_string(),
                None,
                Some(json!({"city": "Oslo"})),
            ),
        ];
        let mut buf = Vec::new();
        write_contacts(&mut buf, &contacts).unwrap();
        let text = String::from_utf8(buf.clone()).unwrap();
        assert!(text.starts_with("email,name,city,n,z\r\n"));
        assert!(text.contains("'=HYPERLINK"), "{text}");
        assert!(text.contains("'+47") && text.contains("'@x"));
        let back = parse(&buf).unwrap();
        assert_eq!(back.rows[0].name.as_deref(), Some("=HYPERLINK(\"x\")"));
        assert_eq!(
            back.rows[0].variables,
            Some(json!({"city": "+47", "n": "@x", "z": "ok, \"quoted\"\nline"}))
        );
        assert_eq!(
            back.rows[1].variables,
            Some(json!({"city": "Oslo", "n": "", "z": ""}))
        );
    }
}
