//! CSV seed files (`<order>_<schema>.<table>.csv`) for bulk data, read with the `csv` crate:
//! the header row names the columns, every value is PostgreSQL text input, and an empty
//! unquoted field is NULL while `""` is an empty string, as in `COPY ... CSV`.

type Problems = Vec<(Option<usize>, String)>;

const NAMING: &str = "a CSV seed file is named <order>_<schema>.<table>.csv, e.g. \
                      030_coach.conversations.csv";

/// The schema and table a CSV seed file's name gives.
pub fn table_of(file_name: &str) -> Option<(&str, &str)> {
    let stem = file_name.strip_suffix(".csv")?;
    let (order, qualified) = stem.split_once('_')?;
    let (schema, table) = qualified.split_once('.')?;
    let fine = |s: &str| !s.is_empty() && !s.contains('.');
    (fine(order) && fine(schema) && fine(table)).then_some((schema, table))
}

/// A CSV seed file, checked for shape (header, one field per column on every row) but not
/// split into values: into an empty table its text goes to the server as it is, with
/// `COPY ... (FORMAT csv, HEADER)`, which reads values and NULLs exactly as described above.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvSource {
    pub schema: String,
    pub table: String,
    pub header: Vec<String>,
    /// The whole text, header included, without a byte-order mark.
    pub text: String,
    /// The line each row starts on.
    pub lines: Vec<usize>,
}

/// The line of a quoted field that never closes (RFC 4180: a quote opens a field only at
/// its start; inside one, `""` is a quote and `"` ends it), if there is one.
fn unterminated_quote(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let (mut line, mut opened_at) = (1, None);
    let mut at_field_start = true;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match opened_at {
            Some(_) if b == b'"' && bytes.get(i + 1) == Some(&b'"') => i += 1,
            Some(_) if b == b'"' => opened_at = None,
            Some(_) => {}
            None if b == b'"' && at_field_start => opened_at = Some(line),
            None => {}
        }
        if b == b'\n' {
            line += 1;
        }
        at_field_start = opened_at.is_none() && matches!(b, b',' | b'\n' | b'\r');
        i += 1;
    }
    opened_at
}

/// Checks a CSV seed file's name, header and rows. Problems carry their line.
pub fn scan(file_name: &str, text: String) -> Result<CsvSource, Problems> {
    let Some((schema, table)) = table_of(file_name) else {
        return Err(vec![(None, format!("`{file_name}`: {NAMING}"))]);
    };
    let (schema, table) = (schema.to_string(), table.to_string());
    let text = match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    };
    // The csv crate ends an unterminated quoted field at the end of the file; COPY (and so
    // this format) refuses it.
    if let Some(line) = unterminated_quote(&text) {
        return Err(vec![(
            Some(line),
            "a quoted field opened here is never closed; end it with `\"` (a quote inside \
             a quoted field is written `\"\"`)"
                .into(),
        )]);
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let header = header(&mut reader)?;
    let mut problems: Problems = Vec::new();
    let mut lines = Vec::new();
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => lines.push(record.position().map_or(0, |p| p.line() as usize)),
            Err(e) => {
                problems.push((line_of(&e), csv_message(&e)));
                if problems.len() >= 50 {
                    break;
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(CsvSource {
        schema,
        table,
        header,
        text,
        lines,
    })
}

fn line_of(e: &csv::Error) -> Option<usize> {
    e.position().map(|p| p.line() as usize)
}

/// The header row's names; an empty or repeated name is a problem.
fn header(reader: &mut csv::Reader<&[u8]>) -> Result<Vec<String>, Problems> {
    let header: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(str::to_string).collect(),
        Err(e) => return Err(vec![(line_of(&e).or(Some(1)), csv_message(&e))]),
    };
    if header.is_empty() || header.iter().all(String::is_empty) {
        return Err(vec![(
            Some(1),
            "the first line is the header row, naming the columns (id,email,...)".into(),
        )]);
    }
    let mut problems: Problems = Vec::new();
    for (i, name) in header.iter().enumerate() {
        if name.is_empty() {
            problems.push((Some(1), format!("header column {} has no name", i + 1)));
        } else if header[..i].contains(name) {
            problems.push((Some(1), format!("header names column `{name}` twice")));
        }
    }
    if problems.is_empty() {
        Ok(header)
    } else {
        Err(problems)
    }
}

/// Per row, the fields of the columns at `positions` in the header: `None` for an empty
/// unquoted field (NULL). Only for a source `scan` accepted.
pub fn columns(source: &CsvSource, positions: &[usize]) -> Vec<Vec<Option<String>>> {
    let mut out: Vec<Vec<Option<String>>> = positions
        .iter()
        .map(|_| Vec::with_capacity(source.lines.len()))
        .collect();
    let text = source.text.as_str();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    // Bytes, not strings: the text is UTF-8 already, and only the wanted fields are copied.
    let mut record = csv::ByteRecord::new();
    while let Ok(true) = reader.read_byte_record(&mut record) {
        let quoted = if positions.iter().any(|&p| record.get(p) == Some(b"")) {
            let start = record.position().map_or(0, |p| p.byte() as usize);
            let end = (reader.position().byte() as usize).min(text.len());
            quoted_fields(&text.as_bytes()[start..end], record.len())
        } else {
            Vec::new()
        };
        for (slot, &p) in positions.iter().enumerate() {
            let field = record.get(p).unwrap_or(b"");
            out[slot].push(
                if field.is_empty() && !quoted.get(p).copied().unwrap_or(false) {
                    None
                } else {
                    Some(String::from_utf8_lossy(field).into_owned())
                },
            );
        }
    }
    out
}

/// Each column's text per row (`None` for NULL).
#[cfg(test)]
type Columns = Vec<Vec<Option<String>>>;

/// Reads a CSV seed file into its columns' text, with the line of each row.
#[cfg(test)]
fn parse_csv(file_name: &str, text: &str) -> Result<(Vec<usize>, Columns), Problems> {
    let source = scan(file_name, text.to_string())?;
    let positions: Vec<usize> = (0..source.header.len()).collect();
    let columns = columns(&source, &positions);
    Ok((source.lines, columns))
}

fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!(
            "has {len} field(s) where the header row has {expected_len}; quote a value \
             that holds a comma (\"a, b\")"
        ),
        csv::ErrorKind::Utf8 { .. } => "is not valid UTF-8".into(),
        _ => format!("invalid CSV: {e}"),
    }
}

/// Which fields of a record's raw bytes are quoted (the `csv` crate's records do not say,
/// and an empty quoted field is an empty string where an empty unquoted one is NULL). The
/// reader's defaults are assumed: `,` between fields, `"` quotes, doubled to escape.
fn quoted_fields(raw: &[u8], fields: usize) -> Vec<bool> {
    let mut quoted = Vec::with_capacity(fields);
    let mut i = 0;
    while quoted.len() < fields {
        if raw.get(i) == Some(&b'"') {
            quoted.push(true);
            i += 1;
            // To the closing quote: a doubled quote is an escaped one.
            while i < raw.len() {
                if raw[i] == b'"' {
                    if raw.get(i + 1) == Some(&b'"') {
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                i += 1;
            }
        } else {
            quoted.push(false);
        }
        // To the next field.
        while i < raw.len() && raw[i] != b',' && raw[i] != b'\n' && raw[i] != b'\r' {
            i += 1;
        }
        i += 1;
    }
    quoted
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_unterminated_quoted_field_is_refused_with_its_line() {
        assert_eq!(
            super::unterminated_quote("id,email\n1,\"unterminated\n"),
            Some(2)
        );
        assert_eq!(
            super::unterminated_quote("a,b\n1,\"x\"\"y\"\n2,\"multi\nline\"\n"),
            None
        );
        assert_eq!(super::unterminated_quote("a\nab\"c\n"), None);
        let err = super::scan("900_coach.users.csv", "id,email\n1,\"open\n".into()).unwrap_err();
        assert_eq!(err[0].0, Some(2));
    }

    use super::*;

    #[test]
    fn names_give_schema_and_table() {
        assert_eq!(
            table_of("030_coach.conversations.csv"),
            Some(("coach", "conversations"))
        );
        assert_eq!(table_of("030_conversations.csv"), None);
        assert_eq!(table_of("coach.conversations.csv"), None);
        assert!(parse_csv("x.csv", "id\n1\n").unwrap_err()[0]
            .1
            .contains("<order>_<schema>.<table>.csv"));
    }

    #[test]
    fn empty_unquoted_is_null_and_quoted_is_empty_text() {
        let text = "id,note,tags,extra\n1,,\"{a,b}\",\"\"\n2,\"say \"\"hi\"\", ok\",{},x\n";
        let (lines, columns) = parse_csv("010_coach.notes.csv", text).unwrap();
        assert_eq!(lines, [2, 3]);
        assert_eq!(columns[1][0], None);
        assert_eq!(columns[2][0].as_deref(), Some("{a,b}"));
        assert_eq!(columns[3][0].as_deref(), Some(""));
        assert_eq!(columns[1][1].as_deref(), Some("say \"hi\", ok"));
        assert_eq!(
            quoted_fields(b"\"\",,\"a\"\"\",", 4),
            [true, false, true, false]
        );
    }

    #[test]
    fn ragged_rows_and_bad_headers_name_the_line() {
        let problems = parse_csv("010_coach.notes.csv", "id,note\n1,a\n2,b,c\n").unwrap_err();
        assert_eq!(problems[0].0, Some(3), "{problems:?}");
        assert!(problems[0].1.contains("3 field(s)"), "{problems:?}");
        let problems = parse_csv("010_coach.notes.csv", "id,id\n1,2\n").unwrap_err();
        assert!(problems[0].1.contains("twice"), "{problems:?}");
    }
}
