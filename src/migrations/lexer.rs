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
    /// Length in bytes of the identifier (or keyword, or number) the last code byte ended: an
    /// `E` that is a whole identifier opens an escape string, and a `$` inside an identifier
    /// (PostgreSQL allows `$` after its first character: `x$y`) is part of it, not a
    /// dollar quote.
    ident: usize,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner {
            state: State::Code,
            ident: 0,
        }
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
    pub fn feed_code(&mut self, text: &str, on_code: impl FnMut(usize, u8)) {
        self.visit(text, on_code);
    }

    /// Advances over `text`, calling `on_code(offset, byte)` for every byte outside comments,
    /// strings and quoted bodies (the byte that opens a string or body included).
    fn visit(&mut self, text: &str, mut on_code: impl FnMut(usize, u8)) {
        self.visit_until(text, |i, b| {
            on_code(i, b);
            true
        });
    }

    /// Like `visit`, but stops after the first byte for which `on_code` returns false and
    /// returns the offset just past it; None when it reached the end of `text`.
    fn visit_until(
        &mut self,
        text: &str,
        mut on_code: impl FnMut(usize, u8) -> bool,
    ) -> Option<usize> {
        let bytes = text.as_bytes();
        let mut i = 0;
        // Identifiers do not run across the pieces a text is fed in (lines).
        self.ident = 0;
        while i < bytes.len() {
            let c = bytes[i];
            let next = bytes.get(i + 1).copied();
            let ident = std::mem::take(&mut self.ident);
            match &mut self.state {
                State::Code => match c {
                    b'\'' => {
                        let _ = on_code(i, c);
                        let escapes = ident == 1 && matches!(bytes[i - 1], b'e' | b'E');
                        self.state = State::String { escapes };
                    }
                    b'"' => {
                        let _ = on_code(i, c);
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
                    b'$' if ident == 0 => {
                        let _ = on_code(i, c);
                        if let Some(len) = dollar_tag_len(&bytes[i..]) {
                            self.state = State::Dollar(text[i..i + len].to_string());
                            i += len - 1;
                        }
                    }
                    _ => {
                        if is_ident_byte(c) || c == b'$' {
                            self.ident = ident + 1;
                        }
                        if !on_code(i, c) {
                            return Some(i + 1);
                        }
                    }
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
        None
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
    /// For `COPY ... FROM STDIN`: the rows that follow it in the file, up to the `\.` line.
    pub copy_data: Option<CopyData<'a>>,
}

/// The inline rows of a `COPY ... FROM STDIN` statement, as `pg_dump` writes them: every line
/// after the statement up to a line holding only `\.` (which is not part of `text`).
#[derive(Debug, PartialEq, Eq)]
pub struct CopyData<'a> {
    /// Byte offset of the first row in the section's text.
    pub offset: usize,
    /// The rows, each ending in a newline.
    pub text: &'a str,
}

/// Why a piece of SQL cannot be split into statements the runner can send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitError {
    /// A backslash outside strings and comments: a psql meta-command such as `\i` or `\set`.
    MetaCommand { offset: usize, command: String },
    /// `COPY ... FROM STDIN` whose rows never end with a `\.` line.
    UnterminatedCopy { offset: usize },
    /// `COPY ... TO STDOUT`: the rows would go to the client, which a migration cannot take.
    CopyToStdout { offset: usize },
}

impl SplitError {
    /// Byte offset of the problem in the text that was split.
    pub fn offset(&self) -> usize {
        match self {
            SplitError::MetaCommand { offset, .. }
            | SplitError::UnterminatedCopy { offset }
            | SplitError::CopyToStdout { offset } => *offset,
        }
    }

    /// What is wrong and what to do, for a message that names the file and line.
    pub fn message(&self) -> String {
        match self {
            SplitError::MetaCommand { command, .. } => format!(
                "`{command}` is a psql meta-command, not SQL: migrate sends SQL to the server \
                 and runs no psql commands; write the SQL itself here (for `\\i`, the included \
                 file's statements)"
            ),
            SplitError::UnterminatedCopy { .. } => "`COPY ... FROM STDIN` opened here has no end: \
                 its rows must end with a line holding only `\\.`, as pg_dump writes them"
                .into(),
            SplitError::CopyToStdout { .. } => "`COPY ... TO STDOUT` sends rows to the client, \
                 which a migration cannot receive; copy to a table or a server file instead"
                .into(),
        }
    }
}

/// Splits SQL into statements at top-level semicolons, dropping empty and comment-only ones.
///
/// Follows psql's rules where plain splitting would go wrong: semicolons inside a
/// `CREATE FUNCTION ... BEGIN ATOMIC ... END` body do not end the statement, and the rows
/// after `COPY ... FROM STDIN;` (up to `\.`) are data, not SQL. A backslash outside strings
/// and comments is a psql meta-command, which the server would reject: it is an error here.
pub fn split_statements(sql: &str) -> Result<Vec<Statement<'_>>, SplitError> {
    let mut statements = Vec::new();
    let mut start = 0;
    while start < sql.len() {
        let mut scanner = Scanner::default();
        let mut words = Words::default();
        let mut problem = None;
        let mut code = false;
        let end = scanner.visit_until(&sql[start..], |i, b| {
            code |= !b.is_ascii_whitespace() && b != b';';
            let at = start + i;
            if b == b'\\' {
                let command: String = sql[at..]
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .take(20)
                    .collect();
                problem = Some(SplitError::MetaCommand {
                    offset: at,
                    command,
                });
                return false;
            }
            words.byte(sql, at, b);
            // As psql: a semicolon inside parentheses (a rule's `DO ALSO (...; ...)`) or a
            // `BEGIN ATOMIC` body does not end the statement.
            !(b == b';' && words.atomic_depth == 0 && words.paren_depth == 0)
        });
        if let Some(problem) = problem {
            return Err(problem);
        }
        let end = end.map_or(sql.len(), |e| start + e);
        words.finish(sql, end);
        let piece = &sql[start..end];
        if !code {
            start = end;
            continue;
        }
        let mut statement = Statement {
            offset: start,
            sql: piece,
            copy_data: None,
        };
        let mut next = end;
        match words.copy_direction() {
            Some(CopyDirection::FromStdin) => {
                // The rows start on the next line and end at a line holding only `\.`.
                let data_start = sql[end..].find('\n').map_or(sql.len(), |n| end + n + 1);
                let mut line_start = data_start;
                let mut data_end = None;
                while line_start < sql.len() {
                    let line_end = sql[line_start..]
                        .find('\n')
                        .map_or(sql.len(), |n| line_start + n);
                    if &sql[line_start..line_end] == "\\." {
                        data_end = Some((line_start, (line_end + 1).min(sql.len())));
                        break;
                    }
                    line_start = line_end + 1;
                }
                let Some((data_end, after)) = data_end else {
                    return Err(SplitError::UnterminatedCopy {
                        offset: words.first_code.unwrap_or(start),
                    });
                };
                statement.copy_data = Some(CopyData {
                    offset: data_start,
                    text: &sql[data_start..data_end],
                });
                next = after;
            }
            Some(CopyDirection::ToStdout) => {
                return Err(SplitError::CopyToStdout {
                    offset: words.first_code.unwrap_or(start),
                });
            }
            None => {}
        }
        statements.push(statement);
        start = next;
    }
    Ok(statements)
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Kind {
    #[default]
    Other,
    /// `CREATE [OR REPLACE] FUNCTION|PROCEDURE`: `BEGIN ATOMIC ... END` may follow.
    Routine,
    Copy,
}

enum CopyDirection {
    FromStdin,
    ToStdout,
}

/// The words of one statement outside strings and comments, as far as splitting needs them:
/// the first few (to recognise `CREATE FUNCTION` and `COPY`), whether `FROM STDIN` or
/// `TO STDOUT` occurs, and psql's `BEGIN ... END` depth inside a function body.
#[derive(Default)]
struct Words {
    /// Offset where the current word started, and the offset of its last byte.
    current: Option<(usize, usize)>,
    first: Vec<String>,
    /// What the first words make the statement, as far as splitting cares.
    kind: Kind,
    /// The previous word's byte range.
    previous: (usize, usize),
    from_stdin: bool,
    to_stdout: bool,
    atomic_depth: u32,
    /// Parentheses open at this point: as in psql, `BEGIN ATOMIC`, `CASE` and `END` count
    /// towards `atomic_depth` only outside them.
    paren_depth: i64,
    /// Offset of the statement's first byte of code (after comments and blanks).
    first_code: Option<usize>,
}

impl Words {
    fn byte(&mut self, sql: &str, at: usize, b: u8) {
        if self.first_code.is_none() && !b.is_ascii_whitespace() {
            self.first_code = Some(at);
        }
        let continues = self.current.is_some_and(|(_, last)| last + 1 == at);
        if is_ident_byte(b) || (b == b'$' && continues) {
            match self.current {
                Some((start, last)) if last + 1 == at => self.current = Some((start, at)),
                Some(_) => {
                    self.finish(sql, at);
                    self.current = Some((at, at));
                }
                None => self.current = Some((at, at)),
            }
        } else {
            self.finish(sql, at);
            match b {
                b'(' => self.paren_depth += 1,
                // psql ignores a `)` that closes nothing.
                b')' => self.paren_depth = (self.paren_depth - 1).max(0),
                _ => {}
            }
        }
    }

    fn finish(&mut self, sql: &str, _at: usize) {
        let Some((start, last)) = self.current.take() else {
            return;
        };
        let word = &sql[start..=last];
        if self.first.len() < 4 {
            self.first.push(word.to_ascii_lowercase());
            {
                let routine = |w: &String| w == "function" || w == "procedure";
                self.kind = match self.first.as_slice() {
                    // CREATE [OR REPLACE] FUNCTION|PROCEDURE, as psql recognises it.
                    [create, what, ..] if create == "create" && routine(what) => Kind::Routine,
                    [create, or, replace, what, ..]
                        if create == "create"
                            && or == "or"
                            && replace == "replace"
                            && routine(what) =>
                    {
                        Kind::Routine
                    }
                    [copy, ..] if copy == "copy" => Kind::Copy,
                    _ => Kind::Other,
                };
            }
        } else if self.kind == Kind::Other {
            // Nothing later in an ordinary statement matters for splitting.
            return;
        }
        match self.kind {
            Kind::Routine if self.paren_depth != 0 => {}
            // The body opens with `BEGIN ATOMIC` (a `begin` alone is a name: a parameter, a
            // column, `RETURN begin + 1`); inside it `CASE` opens and `END` closes.
            Kind::Routine if self.atomic_depth == 0 => {
                let previous = &sql[self.previous.0..self.previous.1];
                if word.eq_ignore_ascii_case("atomic") && previous.eq_ignore_ascii_case("begin") {
                    self.atomic_depth = 1;
                }
            }
            // A `case` or `end` that is a column (`r.end`) or an alias (`AS case`) opens or
            // closes nothing (psql counts them anyway; the server's grammar does not).
            Kind::Routine
                if sql[..start].trim_end().ends_with('.')
                    || (sql[self.previous.0..self.previous.1].eq_ignore_ascii_case("as")
                        && sql[self.previous.1..start].trim().is_empty()) => {}
            Kind::Routine => {
                if word.eq_ignore_ascii_case("case") {
                    self.atomic_depth += 1;
                } else if word.eq_ignore_ascii_case("end") {
                    self.atomic_depth -= 1;
                }
            }
            Kind::Copy => {
                let previous = &sql[self.previous.0..self.previous.1];
                if previous.eq_ignore_ascii_case("from") && word.eq_ignore_ascii_case("stdin") {
                    self.from_stdin = true;
                } else if previous.eq_ignore_ascii_case("to") && word.eq_ignore_ascii_case("stdout")
                {
                    self.to_stdout = true;
                }
            }
            Kind::Other => {}
        }
        self.previous = (start, last + 1);
    }

    fn copy_direction(&self) -> Option<CopyDirection> {
        if self.first.first().is_none_or(|w| w != "copy") {
            None
        } else if self.from_stdin {
            Some(CopyDirection::FromStdin)
        } else if self.to_stdout {
            Some(CopyDirection::ToStdout)
        } else {
            None
        }
    }
}

/// The leading keywords of a statement (outside comments and strings), lowercase; at most `n`.
pub fn leading_words(sql: &str, n: usize) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    let flush = |current: &mut Option<(usize, usize)>, words: &mut Vec<String>| {
        if let Some((start, last)) = current.take() {
            if words.len() < n {
                words.push(sql[start..=last].to_ascii_lowercase());
            }
        }
    };
    Scanner::default().visit_until(sql, |i, b| {
        if is_ident_byte(b) {
            match current {
                Some((start, last)) if last + 1 == i => current = Some((start, i)),
                _ => {
                    flush(&mut current, &mut words);
                    current = Some((i, i));
                }
            }
        } else {
            flush(&mut current, &mut words);
        }
        words.len() < n
    });
    flush(&mut current, &mut words);
    words
}

/// Line numbers of byte offsets into one text, by binary search over its line starts: the one
/// offset-to-line helper (migrations, seeds and lint positions all go through it).
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    /// The 1-based line of a byte offset.
    pub fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&start| start <= offset)
    }

    /// The 1-based line and column (in bytes) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let line = self.line(offset);
        (line, offset - self.starts[line - 1] + 1)
    }
}

/// Bytes of blanks and comments before a statement's first keyword (for its line).
pub fn leading_blank(sql: &str) -> usize {
    let mut first = None;
    Scanner::default().visit_until(sql, |i, b| {
        if b.is_ascii_whitespace() {
            return true;
        }
        // A quote or `$` that opens a string reports its byte but cannot stop the visit.
        first.get_or_insert(i);
        false
    });
    first.unwrap_or(0)
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
            .unwrap()
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

    /// PostgreSQL's identifiers may hold `$` after the first character, and psql counts
    /// `BEGIN` towards a function body only outside parentheses: otherwise a `COMMIT` reads
    /// as part of a string, a dollar quote or a body, and the check for transaction control
    /// never sees it.
    #[test]
    fn dollars_in_identifiers_and_a_parameter_named_begin_hide_nothing() {
        assert_eq!(
            statements("select coach.x$E'\\'; commit; begin; -- ';"),
            vec!["select coach.x$E'\\';", "commit;", "begin;"]
        );
        assert_eq!(
            statements("select 1 as x$$a$; commit; select 2 as y$a$;"),
            vec!["select 1 as x$$a$;", "commit;", "select 2 as y$a$;"]
        );
        assert_eq!(
            statements(
                "create function coach.f(begin int) returns int language sql as 'select 1'; \
                 commit; begin; select 1;"
            )
            .len(),
            4
        );
        // `begin` as a name, in the parameters, a `RETURN` body or a column of a `BEGIN
        // ATOMIC` body, and `function` as a table name, open no body.
        for sql in [
            "create function f(begin int) returns int language sql immutable return begin + 1; \
             commit; begin; select 1;",
            "create function h() returns setof int language sql begin atomic select begin from ev; \
             end; commit; begin; select 1;",
            "create table function as select 1 as begin; commit; begin; select 1;",
        ] {
            assert_eq!(statements(sql).len(), 4, "{sql}");
        }
        // A dollar quote right after another one is a dollar quote again.
        assert_eq!(
            statements("select $$a$$$$b;$$; select 3;"),
            vec!["select $$a$$$$b;$$;", "select 3;"]
        );
    }

    #[test]
    fn positional_parameters_are_not_dollar_quotes() {
        assert_eq!(statements("prepare p as select $1; select 2;").len(), 2);
    }

    #[test]
    fn begin_atomic_bodies_keep_their_semicolons() {
        let sql = "create function f() returns int language sql begin atomic select 1; select case when true then 2 end; end;\n\
                   end;\nselect 3;";
        let got = statements(sql);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].ends_with("end; end;"), "{got:?}");
        assert_eq!(got[1], "end;");
    }

    /// psql's rule: a semicolon inside parentheses ends nothing (a multi-action rule). And in a
    /// `BEGIN ATOMIC` body, `case` and `end` as qualified columns or aliases open and close
    /// nothing, so a `COMMIT` after the body is a statement of its own and an `END` inside it
    /// is not one (attacker findings: a rule cut at its inner semicolon; a `COMMIT` hidden in
    /// a body after `r.case`; `r.end` ending a body early).
    #[test]
    fn parentheses_and_keywords_used_as_names_split_as_the_server_reads_them() {
        assert_eq!(
            statements(
                "create rule r as on insert to t do also (insert into x values (1); insert into y values (2));\n\
                 select 1;"
            )
            .len(),
            2
        );
        assert_eq!(statements("select 1); select 2;").len(), 2);
        let hidden = statements(
            "create function f() returns int language sql begin atomic select r.case from (select 1 as \"case\") r; end;\n\
             commit;",
        );
        assert_eq!(hidden.len(), 2, "{hidden:?}");
        assert_eq!(hidden[1], "commit;");
        let early = statements(
            "create function f() returns int language sql begin atomic select r.end from (select 1 as \"end\") r; select 2; end;\n\
             select 3;",
        );
        assert_eq!(early.len(), 2, "{early:?}");
        assert_eq!(
            statements(
                "create function f() returns int language sql begin atomic select 1 as end; end; select 4;"
            )
            .len(),
            2
        );
        // A quoted name after AS is no keyword, and the END after it closes the body.
        for quoted in ["\"case\"", "\"end\""] {
            let sql = format!(
                "create function f() returns int language sql begin atomic select 1 as {quoted}; end;\n\
                 commit;\ncreate table after (id int);"
            );
            assert_eq!(statements(&sql).len(), 3, "{sql}");
        }
    }

    #[test]
    fn copy_from_stdin_takes_its_rows() {
        let sql = "create table t (a text);\nCOPY public.t (a) FROM stdin;\nO'Brien\n-- not a comment; x\n\\.\nselect 1;\n";
        let got = split_statements(sql).unwrap();
        assert_eq!(got.len(), 3);
        let data = got[1].copy_data.as_ref().unwrap();
        assert_eq!(data.text, "O'Brien\n-- not a comment; x\n");
        assert_eq!(&sql[data.offset..data.offset + 7], "O'Brien");
        assert_eq!(got[2].sql.trim(), "select 1;");
        assert!(matches!(
            split_statements("copy t from stdin;\nrow\n"),
            Err(SplitError::UnterminatedCopy { offset: 0 })
        ));
        assert!(matches!(
            split_statements("select 1;\ncopy t to stdout;"),
            Err(SplitError::CopyToStdout { .. })
        ));
        // Only `TO STDOUT` is: a server-side COPY TO elsewhere runs as it is (cargo-mutants:
        // `&&` made `||` in `Words::finish` took this for one).
        let got = split_statements("copy t to program 'gzip > /tmp/t.gz';\nselect 1;").unwrap();
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].copy_data.is_none());
    }

    #[test]
    fn meta_commands_are_refused_outside_strings() {
        let err = split_statements("select 1;\n\\i other.sql\n").unwrap_err();
        assert_eq!(
            err,
            SplitError::MetaCommand {
                offset: 10,
                command: "\\i".into()
            }
        );
        assert!(split_statements("select '\\i', E'\\n'; -- \\set\n/* \\x */").is_ok());
        assert!(matches!(
            split_statements("\\restrict abc\nselect 1;"),
            Err(SplitError::MetaCommand { offset: 0, .. })
        ));
    }

    #[test]
    fn leading_words_skip_comments() {
        assert_eq!(
            leading_words("-- c\n/* x */ Begin Transaction;", 3),
            vec!["begin", "transaction"]
        );
        assert_eq!(leading_words("COMMIT", 1), vec!["commit"]);
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
