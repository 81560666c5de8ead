//! Plain output for humans (aligned columns) and scripts (`--json`).

use std::io::Write;

/// Prints rows under headers with columns padded to the widest cell.
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(render_table(headers, rows).as_bytes());
}

pub fn render_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut s = line(headers.to_vec());
    for row in rows {
        s.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    s
}

/// Prints a value as pretty JSON on standard output.
pub fn print_json<T: serde::Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("recalliq: cannot encode JSON: {e}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn aligns_columns() {
        let t = super::render_table(
            &["ID", "NAME"],
            &[
                vec!["1".into(), "Acme".into()],
                vec!["22".into(), "B".into()],
            ],
        );
        assert_eq!(t, "ID  NAME\n1   Acme\n22  B\n");
    }
}
