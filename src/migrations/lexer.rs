//! Just enough of PostgreSQL's lexical rules to know where SQL text is "code" and where it is
//! inside a string, a quoted identifier, a dollar-quoted body or a block comment. Used to find
//! the `-- UP`/`-- DOWN` markers and to split a section into statements.

/// Where the scanner is at the end of a piece of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Code,
    /// Inside `'...'`; `escapes` is true for `E'...'` strings, where a backslash escapes.
    String {
        escapes: bool,
    },
    QuotedIdent,
    /// Inside `$tag$ ... $tag$`; holds the whole delimiter, e.g. `$$` or `$body$`.
    Dollar(String),
    /// Inside `/* ... */`, with its nesting depth (PostgreSQL nests block comments).
    BlockComment(u32),
    LineComment,
}

impl State {
    pub fn describe(&self) -> String {
        match self {
            State::Code | State::LineComment => "code".into(),
            State::String { .. } => "a quoted string".into(),
            State::QuotedIdent => "a quoted identifier".into(),
            State::Dollar(tag) => format!("a {tag}-quoted body"),
            State::BlockComment(_) => "a /* block comment */".into(),
        }
    }
}

/// A lexer over one text, advanced a line at a time or over the whole text.
pub struct Scanner {
    state: State,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner { state: State::Code }
    }
}

impl Scanner {
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Advances over `text`; calls `on_statement_end(byte_offset)` for each top-level `;`.
    pub fn feed(&mut self, text: &str, mut on_statement_end: impl FnMut(usize)) {
        self.visit(text, |i, b| {
            if b == b';' {
                on_statement_end(i)
            }
        });
    }

    /// Advances over `text`, calling `on_code(offset, byte)` for every byte outside comments,
    /// strings and quoted bodies (the byte that opens a string or body included).
    fn visit(&mut self, text: &str, mut on_code: impl FnMut(usize, u8)) {
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let c = bytes[i];
            let next = bytes.get(i + 1).copied();
            match &mut self.state {
                State::Code => match c {
                    b'\'' => {
                        on_code(i, c);
                        let escapes = i > 0
                            && matches!(bytes[i - 1], b'e' | b'E')
                            && (i < 2 || !is_ident_byte(bytes[i - 2]));
                        self.state = State::String { escapes };
                    }
                    b'"' => {
                        on_code(i, c);
                        self.state = State::QuotedIdent;
                    }
                    b'-' if next == Some(b'-') => {
                        self.state = State::LineComment;
                        i += 1;
                    }
                    b'/' if next == Some(b'*') => {
                        self.state = State::BlockComment(1);
                        i += 1;
                    }
                    b'$' if i == 0 || !is_ident_byte(bytes[i - 1]) => {
                        on_code(i, c);
                        if let Some(len) = dollar_tag_len(&bytes[i..]) {
                            self.state = State::Dollar(text[i..i + len].to_string());
                            i += len - 1;
                        }
                    }
                    _ => on_code(i, c),
                },
                State::String { escapes } => match c {
                    b'\\' if *escapes => i += 1,
                    b'\'' if next == Some(b'\'') => i += 1,
                    b'\'' => self.state = State::Code,
                    _ => {}
                },
                State::QuotedIdent => match c {
                    b'"' if next == Some(b'"') => i += 1,
                    b'"' => self.state = State::Code,
                    _ => {}
                },
                State::Dollar(tag) => {
                    if bytes[i..].starts_with(tag.as_bytes()) {
                        i += tag.len() - 1;
                        self.state = State::Code;
                    }
                }
                State::BlockComment(depth) => {
                    if c == b'*' && next == Some(b'/') {
                        *depth -= 1;
                        i += 1;
                        if *depth == 0 {
                            self.state = State::Code;
                        }
                    } else if c == b'/' && next == Some(b'*') {
                        *depth += 1;
                        i += 1;
                    }
                }
                State::LineComment => {
                    if c == b'\n' {
                        self.state = State::Code;
                    }
                }
            }
            i += 1;
        }
    }
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// Length of a dollar-quote delimiter (`$$` or `$tag$`) at the start of `bytes`.
fn dollar_tag_len(bytes: &[u8]) -> Option<usize> {
    let mut j = 1;
    while j < bytes.len() {
        match bytes[j] {
            b'$' => return Some(j + 1),
            b if (b.is_ascii_alphabetic() || b == b'_' || b >= 0x80)
                || (j > 1 && b.is_ascii_digit()) => {}
            _ => return None,
        }
        j += 1;
    }
    None
}

/// A statement of a section, with its byte offset in the section's text.
#[derive(Debug, PartialEq, Eq)]
pub struct Statement<'a> {
    pub offset: usize,
    pub sql: &'a str,
}

/// Splits SQL into statements at top-level semicolons, dropping empty and comment-only ones.
pub fn split_statements(sql: &str) -> Vec<Statement<'_>> {
    let mut ends = Vec::new();
    Scanner::default().feed(sql, |at| ends.push(at));
    let mut statements = Vec::new();
    let mut start = 0;
    for end in ends
        .into_iter()
        .map(|e| e + 1)
        .chain(std::iter::once(sql.len()))
    {
        let piece = &sql[start..end];
        if has_code(piece) {
            statements.push(Statement {
                offset: start,
                sql: piece,
            });
        }
        start = end;
    }
    statements
}

/// True when `sql` holds anything but blanks, comments and semicolons.
pub fn has_code(sql: &str) -> bool {
    let mut found = false;
    Scanner::default().visit(sql, |_, b| found |= !b.is_ascii_whitespace() && b != b';');
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statements(sql: &str) -> Vec<&str> {
        split_statements(sql)
            .into_iter()
            .map(|s| s.sql.trim())
            .collect()
    }

    #[test]
    fn splits_at_top_level_semicolons_only() {
        let sql = "create table a (x text default ';');\n\
                   create function f() returns int language sql as $$ select 1; $$;\n\
                   select 'it''s; fine', \"semi;colon\";\n\
                   /* a; /* nested; */ still; */ select 2;\n\
                   -- comment; here\n\
                   select E'back\\'slash;';";
        assert_eq!(
            statements(sql),
            vec![
                "create table a (x text default ';');",
                "create function f() returns int language sql as $$ select 1; $$;",
                "select 'it''s; fine', \"semi;colon\";",
                "/* a; /* nested; */ still; */ select 2;",
                "-- comment; here\nselect E'back\\'slash;';",
            ]
        );
    }

    #[test]
    fn tagged_dollar_quotes_hold_other_dollars() {
        let sql = "do $body$ begin perform $$;$$; end $body$; select 1";
        assert_eq!(statements(sql).len(), 2);
    }

    #[test]
    fn positional_parameters_are_not_dollar_quotes() {
        assert_eq!(statements("prepare p as select $1; select 2;").len(), 2);
    }

    #[test]
    fn comment_only_text_has_no_code() {
        assert!(!has_code("-- nothing\n  /* here; */ \n;"));
        assert!(has_code("-- x\nselect 1"));
        assert!(has_code("'a'"));
    }

    #[test]
    fn reports_unterminated_state() {
        let mut scanner = Scanner::default();
        scanner.feed("create function f() as $fn$ begin", |_| {});
        assert_eq!(scanner.state(), &State::Dollar("$fn$".into()));
    }
}
