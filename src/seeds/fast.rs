//! A fast reader for the plain shape seed files have: `[[schema.table]]` headers and one-line
//! `key = value` pairs (strings, integers, decimals, booleans, dates, one-line arrays and
//! inline tables). A general TOML parser spends most of a large cold load's client time; this
//! one reads only that subset, and gives up (`None`) on anything else (multi-line values,
//! quoted or dotted keys, other headers, hex or exponent numbers, any doubt), so the file then
//! goes through the full parser. Where it answers, it answers what the full parser would.

use std::collections::HashMap;

use super::{Row, TableRows, Value};

/// The rows per table, or `None` when the file needs the full TOML parser.
pub fn parse(text: &str) -> Option<Vec<TableRows>> {
    // A byte-order mark; a carriage return that ends the text (TOML line ends are LF and
    // CRLF, but `split('\n')` below would take a final lone CR for one).
    if text.starts_with('\u{feff}') || text.ends_with('\r') {
        return None;
    }
    let mut tables: Vec<TableRows> = Vec::new();
    let mut index: HashMap<(&str, &str), usize> = HashMap::new();
    // The row being read: its table and values.
    let mut current: Option<(usize, Row)> = None;
    for (n, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let mut c = Cursor { rest: line };
        c.blanks();
        if c.rest.is_empty() || c.comment() {
            continue;
        }
        if let Some(header) = c.rest.strip_prefix("[[") {
            let end = header.find("]]")?;
            let (schema, table) = header[..end].split_once('.')?;
            if !is_bare_key(schema) || !is_bare_key(table) {
                return None;
            }
            c.rest = &header[end + 2..];
            c.blanks();
            if !(c.rest.is_empty() || c.comment()) {
                return None;
            }
            if let Some((t, row)) = current.take() {
                tables[t].rows.push(row);
            }
            let t = *index.entry((schema, table)).or_insert_with(|| {
                tables.push(TableRows {
                    schema: schema.to_string(),
                    table: table.to_string(),
                    rows: Vec::new(),
                });
                tables.len() - 1
            });
            current = Some((
                t,
                Row {
                    index: tables[t].rows.len() + 1,
                    line: n + 1,
                    values: Vec::new(),
                },
            ));
            continue;
        }
        let (_, row) = current.as_mut()?;
        let key = c.key()?;
        if row.values.iter().any(|(k, _)| k == key) {
            return None;
        }
        c.blanks();
        c.rest = c.rest.strip_prefix('=')?;
        c.blanks();
        let value = c.value()?;
        c.blanks();
        if !(c.rest.is_empty() || c.comment()) {
            return None;
        }
        row.values.push((key.to_string(), value));
    }
    if let Some((t, row)) = current {
        tables[t].rows.push(row);
    }
    Some(tables)
}

fn is_bare_key(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Control characters TOML does not allow in strings and comments (tab is allowed).
fn is_control(c: char) -> bool {
    (c < ' ' && c != '\t') || c == '\u{7f}'
}

struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    fn blanks(&mut self) {
        self.rest = self.rest.trim_start_matches([' ', '\t']);
    }

    /// A comment to the end of the line.
    fn comment(&mut self) -> bool {
        if self.rest.starts_with('#') && !self.rest.chars().any(is_control) {
            self.rest = "";
            true
        } else {
            false
        }
    }

    fn key(&mut self) -> Option<&'a str> {
        let end = self
            .rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(self.rest.len());
        let key = &self.rest[..end];
        if key.is_empty() {
            return None;
        }
        self.rest = &self.rest[end..];
        Some(key)
    }

    fn value(&mut self) -> Option<Value> {
        match self.rest.as_bytes().first()? {
            b'"' => self.basic_string().map(Value::String),
            b'\'' => self.literal_string().map(Value::String),
            b'[' => self.array(),
            b'{' => self.inline_table(),
            _ => self.scalar(),
        }
    }

    fn basic_string(&mut self) -> Option<String> {
        if self.rest.starts_with("\"\"\"") {
            return None;
        }
        let mut out = String::new();
        let mut chars = self.rest[1..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.rest = &self.rest[1 + i + 1..];
                    return Some(out);
                }
                '\\' => {
                    let (_, e) = chars.next()?;
                    match e {
                        'b' => out.push('\u{8}'),
                        't' => out.push('\t'),
                        'n' => out.push('\n'),
                        'f' => out.push('\u{c}'),
                        'r' => out.push('\r'),
                        '"' => out.push('"'),
                        '\\' => out.push('\\'),
                        'u' | 'U' => {
                            let len = if e == 'u' { 4 } else { 8 };
                            let start = 1 + i + 2;
                            let hex = self.rest.get(start..start + len)?;
                            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                                return None;
                            }
                            out.push(char::from_u32(u32::from_str_radix(hex, 16).ok()?)?);
                            for _ in 0..len {
                                chars.next();
                            }
                        }
                        _ => return None,
                    }
                }
                c if is_control(c) => return None,
                c => out.push(c),
            }
        }
        None
    }

    fn literal_string(&mut self) -> Option<String> {
        if self.rest.starts_with("'''") {
            return None;
        }
        let end = self.rest[1..].find('\'')?;
        let s = &self.rest[1..1 + end];
        if s.chars().any(is_control) {
            return None;
        }
        self.rest = &self.rest[1 + end + 1..];
        Some(s.to_string())
    }

    fn array(&mut self) -> Option<Value> {
        self.rest = &self.rest[1..];
        let mut items = Vec::new();
        loop {
            self.blanks();
            if let Some(rest) = self.rest.strip_prefix(']') {
                self.rest = rest;
                return Some(Value::Array(items));
            }
            items.push(self.value()?);
            self.blanks();
            if let Some(rest) = self.rest.strip_prefix(',') {
                self.rest = rest;
            } else if !self.rest.starts_with(']') {
                return None;
            }
        }
    }

    fn inline_table(&mut self) -> Option<Value> {
        self.rest = &self.rest[1..];
        let mut entries: Vec<(String, Value)> = Vec::new();
        self.blanks();
        if let Some(rest) = self.rest.strip_prefix('}') {
            self.rest = rest;
            return Some(Value::Table(entries));
        }
        loop {
            self.blanks();
            let key = self.key()?;
            if entries.iter().any(|(k, _)| k == key) {
                return None;
            }
            self.blanks();
            self.rest = self.rest.strip_prefix('=')?;
            self.blanks();
            let value = self.value()?;
            entries.push((key.to_string(), value));
            self.blanks();
            if let Some(rest) = self.rest.strip_prefix('}') {
                self.rest = rest;
                return Some(Value::Table(entries));
            }
            self.rest = self.rest.strip_prefix(',')?;
        }
    }

    /// Booleans, plain decimal integers and decimals, and dates and times.
    fn scalar(&mut self) -> Option<Value> {
        let end = self
            .rest
            .find([',', ']', '}', ' ', '\t', '#'])
            .unwrap_or(self.rest.len());
        let token = &self.rest[..end];
        let after = &self.rest[end..];
        let value = match token {
            "true" => Value::Boolean(true),
            "false" => Value::Boolean(false),
            _ if is_integer(token) => Value::Integer(token.parse().ok()?),
            _ if is_decimal(token) => Value::Float(token.parse().ok()?),
            // `1979-05-27 07:32:00`: a date-time with a space, which this reader leaves alone.
            _ if after.starts_with(' ') && after[1..].starts_with(|c: char| c.is_ascii_digit()) => {
                return None
            }
            _ if token.len() >= 8 && token.as_bytes()[..2].iter().all(u8::is_ascii_digit) => {
                Value::Datetime(token.parse::<toml_edit::Datetime>().ok()?.to_string())
            }
            _ => return None,
        };
        self.rest = after;
        Some(value)
    }
}

/// `-12`, `+3`, `0`: no leading zeros, no underscores.
fn is_integer(token: &str) -> bool {
    let digits = token.strip_prefix(['-', '+']).unwrap_or(token);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
}

/// `7.5`, `-0.25`: digits on both sides of the point, no exponent.
fn is_decimal(token: &str) -> bool {
    match token.split_once('.') {
        Some((whole, fraction)) => {
            is_integer(whole)
                && !fraction.is_empty()
                && fraction.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seeds::parse_full;

    /// Where the fast reader answers, it answers what the full parser does.
    #[track_caller]
    fn same(text: &str) {
        let fast = parse(text).unwrap_or_else(|| panic!("fast reader gave up on:\n{text}"));
        let full = parse_full(text).unwrap();
        assert_eq!(fast, full, "\n{text}");
    }

    #[track_caller]
    fn gives_up(text: &str) {
        assert!(parse(text).is_none(), "should give up on:\n{text}");
    }

    #[test]
    fn reads_plain_seed_files_like_the_full_parser() {
        same("");
        same("# only a comment\n\n");
        same(
            "# users\n[[auth.users]]\nid = \"00000000-0000-4000-8000-00000000a001\"\n\
             email = 'river@example.com'  # trailing comment\n\n\
             [[coach.users]] # header comment\r\nid = \"a\"\r\nstage = 2\r\n\
             goals = [\"sleep\", \"focus, daily\", ]\n\
             profile = { tone = \"gentle\", days = [1, 2], nested = { ok = true } }\n\
             empty = {}\nnone = []\nscore = -7.50\nplus = +3\nzero = 0\n\
             born = 1990-04-01\nseen_at = 2024-05-01T10:00:00Z\nlocal = 2024-05-01T10:00:00.123\n\
             at = 07:32:00\noffset = 2024-05-01T10:00:00+02:00\n\
             [[auth.users]]\nid = \"b\"\n\tindented = \"tab\"\n",
        );
        same("[[coach.users]]\ns = \"tab\\there \\\"q\\\" back\\\\slash \\u00e9 \\U0001F600\"\n");
        same("[[coach.users]]\ns = \"é ü 中文 #not a comment\"\nt = '#\\no escapes'\n");
    }

    /// Every combination of tricky values, keys, headers and line ends: wherever the fast
    /// reader answers, the full parser (toml_edit, which the `toml` crate is built on) must
    /// accept the text and give the same rows, and the `toml` crate must accept it too.
    #[test]
    fn agrees_with_the_full_parser_on_tricky_inputs() {
        #[rustfmt::skip]
        const VALUES: &[&str] = &[
            r#""a""#, r#""""#, "''", "'a'", r#""\u00e9""#, r#""\uD800""#, r#""\U0010FFFF""#,
            r#""\U00110000""#, r#""\x41""#, r#""\e""#, r#""\u00e""#, r#""\u0000""#, r#""\ ""#,
            r#""a\"b""#, r#""a""""#, "'a''", r#""""a""""#, "'''a'''", "\"tab\there\"",
            "'tab\there'", "\"del\u{7f}\"", "'del\u{7f}'", "\"nul\u{0}\"", "'#'", r##""#""##,
            "1", "+1", "-0", "+0", "00", "1.0", "-0.0", "+1.5", "1.", ".5", "01.5", "1e5",
            "1.5E3", "1_0", "0x10", "--1", "inf", "+inf", "nan", "9223372036854775807",
            "-9223372036854775808", "9223372036854775808", "0.1", "3.14159265358979323846",
            "12345678", "12345678e3", "10_000_000", "true", "false", "True", "true#c",
            "1979-05-27", "1979-05-27T07:32:00Z", "1979-05-27t07:32:00z", "1979-02-30",
            "1979-04-31", "2000-02-29", "1979-00-01", "1979-5-27", "19790-05-27",
            "1979-05-27T07:32:00.999999999999Z", "1979-05-27T24:00:00", "1979-05-27T07:32:60Z",
            "1979-05-27T07:32", "07:32", "07:32:00", "25:00:00", "07:32:00.123456789123",
            "1979-05-27T07:32:00+24:00", "1979-05-27T07:32:00-00:00", "1979-05-27T07:32:00+02",
            "1979-05-27T07:32:00+0200", "1979-05-27T07:32:00.Z", "1979-05-27T07:32:00Zx",
            "1979-05-27 07:32:00", "1979-05-27_07:32:00", "1979-05-27 # c", "[]", "[ ]",
            "[1,]", "[,]", "[1,,2]", "[1 2]", "[[1],[2]]", r#"["]"]"#, "{}", "{ }", "{a=1}",
            "{a=1,}", "{a.b=1}", r#"{"a"=1}"#, "{a=1 b=2}", "{a=1,a=2}", "{a=1,b={c=[]}}",
            r#"{a = "}"}"#, "[\"a\",'b',1,1.5,true,{x=1}]", "\u{feff}1",
        ];
        #[rustfmt::skip]
        const KEYS: &[&str] = &["a-b", "1", "true", "a.b", "\"a\"", "'a'", "a b", "é", "-"];
        #[rustfmt::skip]
        const HEADERS: &[&str] = &[
            "[[a.b]]", "[[a.b]]#c", "\t[[a.b]] # c", "[[a.b ]]", "[[ a.b]]", "[[a .b]]",
            "[[a.b]]]", "[[a.b] ]", "[ [a.b]]", "[[a-b.c_d]]", "[[1.2]]", "[[a.b.c]]", "[a.b]",
            "[[a]]", "[[a.\"b\"]]", "[[a.b]]x", "[[a.b]] # \u{7}",
        ];
        let (mut answered, mut differ) = (0, Vec::new());
        let mut check = |text: String| {
            if let Some(fast) = parse(&text) {
                answered += 1;
                let full = parse_full(&text);
                let toml_accepts = text.parse::<toml::Table>().is_ok();
                if full.as_ref() != Ok(&fast) || !toml_accepts {
                    differ.push(format!("{text:?}\n  fast: {fast:?}\n  full: {full:?}"));
                }
            }
        };
        for v in VALUES {
            for end in [
                "", "\n", "\r\n", "\r", "\n\r", "\r\r\n", " # c\n", "#c", "x\n",
            ] {
                check(format!("[[a.b]]\nk={v}{end}"));
                check(format!("[[a.b]]\nk = [{v}, {v}]{end}"));
                check(format!("[[a.b]]\nk = {{ x = {v} }}{end}"));
            }
        }
        for k in KEYS {
            check(format!("[[a.b]]\n{k} = 1\n"));
            check(format!("[[a.b]]\nk = {{ {k} = 1 }}\n"));
            check(format!("[[a.b]]\n{k} = 1\n{k} = 2\n"));
        }
        for h in HEADERS {
            for h2 in HEADERS {
                check(format!("{h}\nk = 1\n{h2}\nk = 2\n"));
                check(format!("{h}\nb = 1\n[[a.c]]\n{h2}\n"));
            }
        }
        for odd in [
            "\r", "\u{0}", "\u{7}", "\u{7f}", "\u{b}", "\u{c}", "\u{a0}", "\u{feff}",
        ] {
            let lines = ["[[a.b]]", "k = 1", "# comment", "s = \"x\""];
            for at in 0..lines.len() {
                let mut text = String::new();
                for (i, line) in lines.iter().enumerate() {
                    let odd = if i == at { odd } else { "" };
                    text.push_str(&format!("{odd}{line}{odd}\n"));
                }
                check(text);
            }
        }
        assert!(differ.is_empty(), "{}", differ.join("\n"));
        // The comparison means something only if the fast reader answered often.
        assert!(
            answered > 500,
            "the fast reader answered only {answered} inputs"
        );
    }

    #[test]
    fn gives_up_on_anything_else() {
        gives_up("title = \"x\"\n");
        gives_up("[coach]\nusers = []\n");
        gives_up("[[coach.users]]\n[coach.users.profile]\ntone = 1\n");
        gives_up("[[coach.users]]\ns = \"\"\"\nmulti\n\"\"\"\n");
        gives_up("[[coach.users]]\ns = '''x'''\n");
        gives_up("[[coach.users]]\ngoals = [\n  \"a\",\n]\n");
        gives_up("[[coach.users]]\n\"quoted key\" = 1\n");
        gives_up("[[coach.users]]\na.b = 1\n");
        gives_up("[[ coach.users ]]\nid = 1\n");
        gives_up("[[coach.\"users\"]]\nid = 1\n");
        gives_up("[[coach.users]]\nn = 1_000\n");
        gives_up("[[coach.users]]\nn = 0x1F\n");
        gives_up("[[coach.users]]\nn = 1e3\n");
        gives_up("[[coach.users]]\nn = 007\n");
        gives_up("[[coach.users]]\nn = inf\n");
        gives_up("[[coach.users]]\nn = 99999999999999999999\n");
        gives_up("[[coach.users]]\nd = 1979-05-27 07:32:00\n");
        gives_up("[[coach.users]]\nd = 1979-13-27\n");
        gives_up("[[coach.users]]\nid = 1\nid = 2\n");
        gives_up("[[coach.users]]\nt = { a = 1, a = 2 }\n");
        gives_up("[[coach.users]]\nt = { a = 1, }\n");
        gives_up("[[coach.users]]\ns = \"bad \\q escape\"\n");
        gives_up("[[coach.users]]\ns = \"unterminated\n");
        gives_up("[[coach.users]]\nid = 1 2\n");
        gives_up("[[coach.users]]\nid =\n");
        gives_up("\u{feff}[[coach.users]]\nid = 1\n");
        gives_up("[[coach.users]]\ns = \"nul \u{0} inside\"\n");
        gives_up("[[coach.users]]\nid = 1\r");
    }
}
