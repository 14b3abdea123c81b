//! Migration files: discovery, the UP/DOWN format, checksums. Pure: no database, no printing.

pub(crate) mod lexer;
pub(crate) mod plan;
pub(crate) mod promotion;

use std::ops::RangeInclusive;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{file_problems, Error, FileProblem};
use lexer::{has_code, Scanner, State};

/// One parsed migration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub version: i64,
    pub name: String,
    /// The managed schema (or `platform`) the name starts with.
    pub domain: String,
    /// Path as shown to the user (relative to the project when possible).
    pub path: String,
    /// SHA-256 of the file's bytes with CRLF normalised to LF, lowercase hex.
    pub checksum: String,
    /// When the file starts with a UTF-8 byte-order mark: the checksum of the bytes after
    /// it, so a file whose only change is an added BOM is recognised as such (the BOM is
    /// part of the checksum: an added one makes an applied file changed).
    pub checksum_without_bom: Option<String>,
    pub up: Section,
    pub down: Section,
    /// False for `-- transaction: none`: statements run one by one, outside a transaction.
    pub transactional: bool,
}

/// The SQL of one direction, and where it starts in the file (for error positions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub sql: String,
    /// 1-based line of the file on which `sql` begins.
    pub first_line: usize,
}

impl Section {
    /// The file line of a byte offset into `sql`.
    pub fn line_of_offset(&self, offset: usize) -> usize {
        let offset = offset.min(self.sql.len());
        self.first_line - 1 + lexer::LineIndex::new(&self.sql).line(offset)
    }

    /// The section's statements, as the runner sends them (see `lexer::split_statements`).
    pub fn statements(&self) -> Result<Vec<lexer::Statement<'_>>, lexer::SplitError> {
        lexer::split_statements(&self.sql)
    }

    /// The file line of PostgreSQL's 1-based character position into `sql`.
    pub fn line_of_position(&self, position: usize) -> usize {
        let offset = self
            .sql
            .char_indices()
            .nth(position.saturating_sub(1))
            .map_or(self.sql.len(), |(i, _)| i);
        self.line_of_offset(offset)
    }
}

impl Migration {
    /// A DOWN section with only comments or blanks marks the migration irreversible.
    pub fn reversible(&self) -> bool {
        has_code(&self.down.sql)
    }

    /// An UP section with only comments or blanks: a skeleton from `migrate new` not written
    /// yet. Read-only commands list it; `up` and `lock` refuse it.
    pub fn is_empty(&self) -> bool {
        !has_code(&self.up.sql)
    }

    /// The input error `up` and `lock` give for an empty migration, naming its `-- UP` line.
    pub fn empty_error(&self) -> Error {
        Error::input(format!(
            "{}:{}: the UP section is empty; write the forward SQL below `-- UP` (or delete \
             the file)",
            self.path,
            self.up.first_line.saturating_sub(1)
        ))
    }

    pub fn file_name(&self) -> String {
        file_name(self.version, &self.name)
    }
}

/// The lowercase hex SHA-256 of `bytes` with CRLF normalised to LF.
pub fn checksum(bytes: &[u8]) -> String {
    let mut hasher = Sha256::new();
    let mut from = 0;
    for crlf in memchr::memmem::find_iter(bytes, b"\r\n") {
        hasher.update(&bytes[from..crlf]);
        from = crlf + 1;
    }
    hasher.update(&bytes[from..]);
    hex(&hasher.finalize())
}

/// The UTF-8 byte-order mark.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// `checksum` of the bytes after a leading UTF-8 byte-order mark; None without one.
pub fn checksum_without_bom(bytes: &[u8]) -> Option<String> {
    bytes.strip_prefix(BOM).map(checksum)
}

/// Lowercase hexadecimal, two digits per byte.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0xf)]])
        .map(char::from)
        .collect()
}

/// The first 12 hex digits of a SHA-256, enough to tell two apart in a message. The text
/// comes from the database or a lock file, so it may not be hex: never slice inside a char.
pub fn short(checksum: &str) -> &str {
    checksum.get(..12).unwrap_or(checksum)
}

/// A version as messages write it (`0054`), or `none`.
pub fn version_label(v: Option<i64>) -> String {
    v.map_or_else(|| "none".to_string(), |v| format!("{v:04}"))
}

/// What a file name says: `<version>_<name>.sql`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName {
    pub version: i64,
    pub name: String,
    pub domain: String,
}

/// How a migration file name is shaped, said after every file-name error.
const FILE_NAME_SHAPE: &str = "a migration file is named <version>_<name>.sql: a version of at \
                               least four digits and a lowercase name starting with its domain, \
                               e.g. 0003_coach_core.sql";

/// Why a file name is not a migration's (DESIGN §3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileNameError {
    #[error("not a .sql file; {FILE_NAME_SHAPE}")]
    NotSql,
    #[error("file name has no `_` between version and name; {FILE_NAME_SHAPE}")]
    NoSeparator,
    #[error("version `{0}` is not at least four digits; {FILE_NAME_SHAPE}")]
    ShortVersion(String),
    #[error("version `{0}` is too large")]
    VersionTooLarge(String),
    #[error("version must be positive; {FILE_NAME_SHAPE}")]
    VersionZero,
    #[error("name `{0}` must be lowercase [a-z0-9_]+; {FILE_NAME_SHAPE}")]
    NotLowercase(String),
    #[error("name `{name}` does not start with a domain ({}); {FILE_NAME_SHAPE}", domains.join(", "))]
    NoDomain { name: String, domains: Vec<String> },
}

/// The one place the file-name format is written: `0003_coach_core.sql`.
pub fn file_name(version: i64, name: &str) -> String {
    format!("{version:04}_{name}.sql")
}

/// Parses a migration file name; `domains` are the names a migration may start with.
pub fn parse_file_name(file_name: &str, domains: &[String]) -> Result<FileName, FileNameError> {
    let stem = file_name
        .strip_suffix(".sql")
        .ok_or(FileNameError::NotSql)?;
    let (digits, name) = stem.split_once('_').ok_or(FileNameError::NoSeparator)?;
    if digits.len() < 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FileNameError::ShortVersion(digits.to_string()));
    }
    let version: i64 = digits
        .parse()
        .map_err(|_| FileNameError::VersionTooLarge(digits.to_string()))?;
    if version == 0 {
        return Err(FileNameError::VersionZero);
    }
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(FileNameError::NotLowercase(name.to_string()));
    }
    let domain = domains
        .iter()
        .find(|d| name == d.as_str() || name.starts_with(&format!("{d}_")))
        .ok_or_else(|| FileNameError::NoDomain {
            name: name.to_string(),
            domains: domains.to_vec(),
        })?;
    Ok(FileName {
        version,
        name: name.to_string(),
        domain: domain.clone(),
    })
}

/// A problem at a line of the file (or of the whole file), before it is given the file's name.
type Located = (Option<usize>, String);

/// Parses a migration file's bytes. `display` names the file in messages.
pub fn parse(file: FileName, display: &str, bytes: &[u8]) -> Result<Migration, FileProblem> {
    parse_checked(file, display, bytes, checksum(bytes))
}

/// `parse`, given the checksum of `bytes`.
fn parse_checked(
    file: FileName,
    display: &str,
    bytes: &[u8],
    checksum: String,
) -> Result<Migration, FileProblem> {
    let problem = |(line, message): Located| FileProblem {
        file: display.to_string(),
        line,
        message,
    };
    let text = decode(bytes).map_err(problem)?;
    let lines: Vec<&str> = text.split('\n').collect();
    let markers = find_markers(&text, &lines).map_err(problem)?;
    let section = |from: usize, to: usize| Section {
        sql: lines[from..to].join("\n"),
        first_line: from + 1,
    };
    let up = section(markers.up, markers.down - 1);
    let down = section(markers.down, lines.len());
    for (section, name) in [(&up, "UP"), (&down, "DOWN")] {
        check_section(section, name, markers.transactional).map_err(problem)?;
    }
    Ok(Migration {
        version: file.version,
        name: file.name,
        domain: file.domain,
        path: display.to_string(),
        checksum,
        checksum_without_bom: checksum_without_bom(bytes),
        up,
        down,
        transactional: markers.transactional,
    })
}

/// The file's text: UTF-8 without a byte-order mark, CRLF as LF, no NUL.
fn decode(bytes: &[u8]) -> Result<String, Located> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let valid = e.valid_up_to();
        let line = lexer::LineIndex::new(&String::from_utf8_lossy(&bytes[..valid])).line(valid);
        (
            Some(line),
            format!("not valid UTF-8 (byte {valid}); save the file as UTF-8"),
        )
    })?;
    let text = text
        .strip_prefix('\u{feff}')
        .unwrap_or(text)
        .replace("\r\n", "\n");
    if let Some(nul) = text.find('\0') {
        return Err((
            Some(lexer::LineIndex::new(&text).line(nul)),
            "holds a NUL byte, which PostgreSQL cannot take in SQL text; save the file as plain \
             UTF-8 text"
                .into(),
        ));
    }
    Ok(text)
}

/// Where the markers are (0-based indexes of the `-- UP` and `-- DOWN` lines) and what the
/// header's directives say.
struct Markers {
    up: usize,
    down: usize,
    transactional: bool,
}

/// The lines (1-based) that hold COPY rows, and the `\.` line that ends each block. COPY rows
/// are data, not SQL: markers, quotes and comments inside them mean nothing. Splitting the
/// whole text also finds psql meta-commands before anything else does.
fn copy_data_lines(text: &str) -> Result<Vec<RangeInclusive<usize>>, Located> {
    // Without a backslash there is neither COPY data to end nor a meta-command to find.
    if !text.contains('\\') {
        return Ok(Vec::new());
    }
    let index = lexer::LineIndex::new(text);
    let statements =
        lexer::split_statements(text).map_err(|e| (Some(index.line(e.offset())), e.message()))?;
    Ok(statements
        .iter()
        .filter_map(|s| s.copy_data.as_ref())
        .map(|d| {
            let first = index.line(d.offset);
            first..=first + d.text.matches('\n').count()
        })
        .collect())
}

/// Finds the one `-- UP` and the one `-- DOWN` marker outside strings, comments and COPY rows,
/// and reads the header's directives; the header may hold nothing else.
fn find_markers(text: &str, lines: &[&str]) -> Result<Markers, Located> {
    let data_lines = copy_data_lines(text)?;
    let mut up_at: Option<usize> = None;
    let mut down_at: Option<usize> = None;
    let mut transactional = true;
    let mut scanner = Scanner::default();
    // Where the construct that is still open at a line's start was opened.
    let mut opened_at = 0;
    for (index, line) in lines.iter().enumerate() {
        let number = index + 1;
        if data_lines.iter().any(|range| range.contains(&number)) {
            continue;
        }
        let in_code = scanner.state() == &State::Code;
        if let Some(marker) = marker(line).filter(|_| in_code) {
            check_marker(marker, up_at, down_at, number)?;
            match marker {
                Marker::Up => up_at = Some(number),
                Marker::Down => down_at = Some(number),
            }
            continue;
        }
        if up_at.is_none() && in_code && !directive(line, number)? {
            transactional = false;
        }
        let was_code = scanner.state() == &State::Code;
        let mut code_on_line = false;
        scanner.feed_code(line, |_, b| code_on_line |= !b.is_ascii_whitespace());
        scanner.feed("\n", |_| {});
        if up_at.is_none() && code_on_line {
            return Err((
                Some(number),
                "SQL before the `-- UP` marker would never run; the header holds only comments \
                 and directives: move the SQL below `-- UP`"
                    .into(),
            ));
        }
        if was_code && scanner.state() != &State::Code {
            opened_at = number;
        }
    }

    let unclosed = || match scanner.state() {
        State::Code => String::new(),
        state => format!(
            " ({} opened at line {opened_at} is never closed, so markers after it are SQL text)",
            state.describe()
        ),
    };
    let Some(up) = up_at else {
        return Err((
            None,
            format!(
                "missing `-- UP` marker; write `-- UP` on its own line before the forward SQL{}",
                unclosed()
            ),
        ));
    };
    let Some(down) = down_at else {
        return Err((
            None,
            format!(
                "missing `-- DOWN` marker; add `-- DOWN` and the reverse SQL after the UP section \
                 (leave it empty to mark the migration irreversible){}",
                unclosed()
            ),
        ));
    };
    if scanner.state() != &State::Code {
        return Err((
            Some(opened_at),
            format!("{} opened here is never closed", scanner.state().describe()),
        ));
    }
    Ok(Markers {
        up,
        down,
        transactional,
    })
}

/// A marker may come once, UP before DOWN; the error says which rule it breaks.
fn check_marker(
    marker: Marker,
    up_at: Option<usize>,
    down_at: Option<usize>,
    number: usize,
) -> Result<(), Located> {
    let message = match (marker, up_at, down_at) {
        (Marker::Up, Some(first), _) => {
            format!("second `-- UP` marker (the first is at line {first}); a file has exactly one")
        }
        (Marker::Up, None, Some(down)) => {
            format!("`-- UP` comes after `-- DOWN` (line {down}); put the UP section first")
        }
        (Marker::Down, _, Some(first)) => format!(
            "second `-- DOWN` marker (the first is at line {first}); a file has exactly one"
        ),
        (Marker::Down, None, None) => {
            "`-- DOWN` comes before any `-- UP` marker; put the UP section first".into()
        }
        _ => return Ok(()),
    };
    Err((Some(number), message))
}

/// A header line: `false` when it is `-- transaction: none` (the migration runs outside a
/// transaction), `true` for anything else a header may hold; an unknown `transaction:` value
/// is an error.
fn directive(line: &str, number: usize) -> Result<bool, Located> {
    let Some((key, value)) = line
        .trim()
        .strip_prefix("--")
        .and_then(|d| d.split_once(':'))
    else {
        return Ok(true);
    };
    if !key.trim().eq_ignore_ascii_case("transaction") {
        return Ok(true);
    }
    match value.trim().to_ascii_lowercase().as_str() {
        "none" => Ok(false),
        other => Err((
            Some(number),
            format!(
                "unknown value `{other}` for `transaction:`; the only directive value is `none`"
            ),
        )),
    }
}

/// A section must split into statements, end outside any string or comment, and hold no
/// statement that begins, ends or prepares a transaction.
fn check_section(section: &Section, name: &str, transactional: bool) -> Result<(), Located> {
    let statements = section
        .statements()
        .map_err(|e| (Some(section.line_of_offset(e.offset())), e.message()))?;
    // Only the SQL counts: COPY rows may hold quotes that open nothing.
    if let Some(last) = statements.last() {
        let mut scanner = Scanner::default();
        scanner.feed(last.sql, |_| {});
        match scanner.state() {
            State::Code | State::LineComment => {}
            state => {
                return Err((
                    Some(section.line_of_offset(last.offset)),
                    format!("the {name} section ends inside {}", state.describe()),
                ))
            }
        }
    }
    for statement in statements {
        if changes_string_syntax(statement.sql) {
            return Err((
                Some(
                    section.line_of_offset(statement.offset + lexer::leading_blank(statement.sql)),
                ),
                format!(
                    "the {name} section sets `standard_conforming_strings` (or \
                     `backslash_quote`): migrate splits a file into statements as PostgreSQL \
                     does with `standard_conforming_strings = on`, its default, so with it off a \
                     backslash in a string could end a statement (or hide a COMMIT) where \
                     migrate does not see one; remove it, and write backslash escapes as \
                     E'...' strings"
                ),
            ));
        }
        if changes_client_encoding(statement.sql) {
            return Err((
                Some(
                    section.line_of_offset(statement.offset + lexer::leading_blank(statement.sql)),
                ),
                format!(
                    "the {name} section sets `client_encoding` (or `SET NAMES`): migrate talks \
                     to the server in UTF-8, and after it the server would read the rest of the \
                     migration, and the name and warnings migrate records, in another encoding \
                     and store them garbled; remove it (migration files are UTF-8, and \
                     PostgreSQL converts them to the database's encoding itself)"
                ),
            ));
        }
        if changes_state_schema(statement.sql) {
            return Err((
                Some(
                    section.line_of_offset(statement.offset + lexer::leading_blank(statement.sql)),
                ),
                format!(
                    "the {name} section changes `_migrate`, migrate's own state schema (its \
                     history, applied rows and the function that writes them): a migration that \
                     did would make migrate record what did not happen; remove it (reading it, \
                     GRANT and REVOKE on it are fine)"
                ),
            ));
        }
        if let Some(control) = transaction_control(statement.sql) {
            return Err((
                Some(
                    section.line_of_offset(statement.offset + lexer::leading_blank(statement.sql)),
                ),
                format!(
                    "`{control}` in the {name} section: migrate runs {} and records it in that \
                     same transaction, so a migration must not begin, end or prepare \
                     transactions itself; remove it (savepoints are fine), or move statements \
                     that cannot run in a transaction to a migration with `-- transaction: \
                     none`, whose statements each run on their own",
                    if transactional {
                        "the migration in one transaction"
                    } else {
                        "each statement of a `transaction: none` migration on its own"
                    }
                ),
            ));
        }
    }
    Ok(())
}

/// Whether a statement may change migrate's own state schema: one that names `_migrate` and
/// starts with a command that creates, changes or removes anything (or runs code that may),
/// rather than reading it or granting rights on it.
fn changes_state_schema(sql: &str) -> bool {
    // The comments before the statement are not part of it.
    let lower = sql[lexer::leading_blank(sql)..].to_ascii_lowercase();
    // `_migrate` as a name of its own (`_migrate.history`, `"_migrate"`, `schema _migrate`),
    // not inside another (`app_migrate_log`, `_migrated_at`).
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'$';
    let names_it = lower.match_indices("_migrate").any(|(at, found)| {
        let before = lower.as_bytes()[..at].last().copied();
        let after = lower.as_bytes().get(at + found.len()).copied();
        !before.is_some_and(word) && !after.is_some_and(word)
    });
    names_it
        && matches!(
            lexer::leading_words(sql, 1).first().map(String::as_str),
            Some(
                "create"
                    | "alter"
                    | "drop"
                    | "insert"
                    | "update"
                    | "delete"
                    | "truncate"
                    | "merge"
                    | "do"
                    | "call"
                    | "copy"
                    | "comment"
                    | "security"
                    | "reindex"
                    | "cluster"
                    | "vacuum"
                    | "lock"
                    // Putting it on the search path, so a later statement changes it unnamed.
                    | "set"
            )
        )
}

/// Whether a statement may change how strings are read (`standard_conforming_strings`,
/// `backslash_quote`): a `SET` of either, or any other statement naming them (`set_config`,
/// an `EXECUTE` in a `DO` block), but `SHOW` and `RESET`, which cannot turn them off.
fn changes_string_syntax(sql: &str) -> bool {
    let lower = sql.to_ascii_lowercase();
    let named = lower.contains("standard_conforming_strings") || lower.contains("backslash_quote");
    named
        && !matches!(
            lexer::leading_words(sql, 1).first().map(String::as_str),
            Some("show" | "reset")
        )
}

/// Whether a statement may change the session's `client_encoding`: `SET NAMES`, or any
/// statement naming `client_encoding` (`SET`, `set_config`, an `EXECUTE` in a `DO` block) but
/// `SHOW`, `RESET` (back to migrate's UTF-8) and `ALTER` (a database's or role's default, which
/// migrate's own connections override).
fn changes_client_encoding(sql: &str) -> bool {
    let words = lexer::leading_words(sql, 3);
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let set_names = matches!(
        words.as_slice(),
        ["set", "names", ..] | ["set", "session" | "local", "names"]
    );
    set_names
        || (sql.to_ascii_lowercase().contains("client_encoding")
            && !matches!(words.first(), Some(&("show" | "reset" | "alter"))))
}

/// The transaction-control command a statement starts with, if any: `BEGIN`, `START
/// TRANSACTION`, `COMMIT`, `END`, `ROLLBACK` (not `ROLLBACK TO SAVEPOINT`), `ABORT`, and the
/// two-phase `PREPARE TRANSACTION`, `COMMIT PREPARED`, `ROLLBACK PREPARED`.
fn transaction_control(sql: &str) -> Option<String> {
    let words = lexer::leading_words(sql, 3);
    let first = words.first().map(String::as_str)?;
    let second = words.get(1).map(String::as_str);
    let third = words.get(2).map(String::as_str);
    let control = match (first, second) {
        ("begin" | "commit" | "end" | "abort", _) => true,
        ("start", Some("transaction")) => true,
        // ROLLBACK [WORK | TRANSACTION] TO [SAVEPOINT] name
        ("rollback", Some("to")) => false,
        ("rollback", Some("work" | "transaction")) if third == Some("to") => false,
        ("rollback", _) => true,
        ("prepare", Some("transaction")) => true,
        _ => false,
    };
    control.then(|| words[..words.len().min(2)].join(" ").to_ascii_uppercase())
}

#[derive(Debug, Clone, Copy)]
enum Marker {
    Up,
    Down,
}

/// `-- UP` / `-- DOWN` as a whole line: case-insensitive, surrounding blanks ignored.
fn marker(line: &str) -> Option<Marker> {
    let rest = line.trim().strip_prefix("--")?.trim();
    if rest.eq_ignore_ascii_case("up") {
        Some(Marker::Up)
    } else if rest.eq_ignore_ascii_case("down") {
        Some(Marker::Down)
    } else {
        None
    }
}

/// Reads and parses every `*.sql` file of `dir`, sorted by version. All problems are reported
/// together; hidden entries and files plainly not migrations (a README) are ignored (see
/// `classify_entry`).
pub fn discover(
    dir: &Path,
    display_root: &Path,
    domains: &[String],
) -> Result<Vec<Migration>, Error> {
    read(dir, display_root, domains)?.parse()
}

/// The migration files of a directory, read but not yet parsed: `Sources::parse` parses them.
/// Reading is the part that can overlap with connecting to the database.
#[derive(Debug)]
pub struct Sources {
    files: Vec<Source>,
    problems: Vec<FileProblem>,
}

/// One migration file's name, bytes and checksum.
#[derive(Debug)]
struct Source {
    name: FileName,
    display: String,
    bytes: Vec<u8>,
    checksum: String,
}

impl Sources {
    /// Parses every file, spread over the cores; then reports every problem of reading and
    /// parsing together, duplicate versions included.
    pub fn parse(self) -> Result<Vec<Migration>, Error> {
        let Sources { files, problems } = self;
        let parsed = in_parallel(&files, |source| {
            parse_checked(
                source.name.clone(),
                &source.display,
                &source.bytes,
                source.checksum.clone(),
            )
        });
        collect(parsed, problems)
    }

    /// What `status` shows of every file. A file `trusted(version, checksum)` says is
    /// byte-identical to one the database records as applied is listed without being parsed:
    /// it passed every rule when it was applied, and a read-only command runs none of its
    /// statements. Every other file is parsed and checked whole, with the same errors as
    /// `parse`.
    pub fn list(self, trusted: impl Fn(i64, &str) -> bool + Sync) -> Result<Vec<Listed>, Error> {
        let Sources { files, problems } = self;
        // Trusted files are only moved into their listing; the others are parsed on the cores.
        let (trusted, others): (Vec<Source>, Vec<Source>) = files
            .into_iter()
            .partition(|source| trusted(source.name.version, &source.checksum));
        let mut listed: Vec<Result<Listed, FileProblem>> = in_parallel(&others, |source| {
            parse_checked(
                source.name.clone(),
                &source.display,
                &source.bytes,
                source.checksum.clone(),
            )
            .map(Listed::from)
        });
        listed.extend(trusted.into_iter().map(|source| {
            Ok(Listed {
                checksum_without_bom: checksum_without_bom(&source.bytes),
                version: source.name.version,
                name: source.name.name,
                domain: source.name.domain,
                path: source.display,
                checksum: source.checksum,
                empty: false,
            })
        }));
        collect(listed, problems)
    }
}

/// A migration file as `status` lists it: who it is, and whether its UP section is empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub version: i64,
    pub name: String,
    /// The managed schema (or `platform`) the name starts with.
    pub domain: String,
    /// Path as shown to the user (relative to the project when possible).
    pub path: String,
    /// SHA-256 of the file's bytes with CRLF normalised to LF, lowercase hex.
    pub checksum: String,
    /// `Migration::checksum_without_bom`.
    pub checksum_without_bom: Option<String>,
    /// An UP section with only comments or blanks (`Migration::is_empty`); false for a file
    /// listed without parsing, which was applied and so was not empty.
    pub empty: bool,
}

impl From<Migration> for Listed {
    fn from(m: Migration) -> Listed {
        Listed {
            empty: m.is_empty(),
            version: m.version,
            name: m.name,
            domain: m.domain,
            path: m.path,
            checksum: m.checksum,
            checksum_without_bom: m.checksum_without_bom,
        }
    }
}

/// The files that parsed, sorted by version, or every problem (those of reading, those of
/// parsing, duplicate versions) in one error.
fn collect<F: plan::MigrationFile>(
    results: Vec<Result<F, FileProblem>>,
    mut problems: Vec<FileProblem>,
) -> Result<Vec<F>, Error> {
    let mut files: Vec<F> = Vec::with_capacity(results.len());
    for result in results {
        match result {
            Ok(f) => files.push(f),
            Err(p) => problems.push(p),
        }
    }
    files.sort_by_key(|f| f.version());
    for pair in files.windows(2) {
        if pair[0].version() == pair[1].version() {
            problems.push(FileProblem {
                file: pair[1].path().to_string(),
                line: None,
                message: format!(
                    "duplicate version {} (also {}); give one of them the next free number",
                    pair[1].version(),
                    pair[0].path()
                ),
            });
        }
    }
    if problems.is_empty() {
        Ok(files)
    } else {
        Err(file_problems(&problems))
    }
}

/// `f` over `items` on every core, results in order (rayon's work stealing: a thread the
/// server or the database session keeps off its core leaves its files to the others, where
/// equal fixed parts waited for it). Reading, hashing and lexing are independent per file,
/// and a thousand files are most of `status`'s time otherwise.
fn in_parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync + Send) -> Vec<R> {
    use rayon::prelude::*;
    items.par_iter().map(f).collect()
}

/// Reads every `*.sql` file of `dir` (names, bytes, checksums) without parsing it. Problems
/// with entries, names and reading are kept for `Sources::parse` to report with the rest.
pub fn read(dir: &Path, display_root: &Path, domains: &[String]) -> Result<Sources, Error> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Error::input(format!(
            "cannot read the migrations directory {}: {e}; create it or set [paths] migrations in migrate.toml",
            dir.display()
        ))
    })?;
    // Files are opened relative to the directory (one path lookup instead of one per file).
    let handle = std::fs::File::open(dir).map_err(|e| {
        Error::input(format!(
            "cannot read the migrations directory {}: {e}",
            dir.display()
        ))
    })?;
    let shown_dir = dir
        .strip_prefix(display_root)
        .unwrap_or(dir)
        .display()
        .to_string();
    let shown = |name: &str| match shown_dir.as_str() {
        "" => name.to_string(),
        d => format!("{d}/{name}"),
    };
    let mut problems = Vec::new();
    // (file name, path as shown): one directory, so the names sort as the paths do.
    let mut found: Vec<(String, String)> = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                return Err(Error::input(format!(
                    "cannot read the migrations directory {}: {e}",
                    dir.display()
                )))
            }
        };
        let (name, utf8) = match entry.file_name().into_string() {
            Ok(name) => (name, true),
            Err(raw) => (raw.to_string_lossy().into_owned(), false),
        };
        if name.starts_with('.') {
            continue;
        }
        match classify_entry(&entry, &name) {
            Entry::Migration if !utf8 => problems.push(FileProblem {
                file: shown(&name),
                line: None,
                message: "file name is not UTF-8".into(),
            }),
            Entry::Migration => {
                let display = shown(&name);
                found.push((name, display));
            }
            Entry::Other => {}
            Entry::Problem(message) => problems.push(FileProblem {
                file: shown(&name),
                line: None,
                message,
            }),
        }
    }
    found.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut files = Vec::with_capacity(found.len());
    for result in in_parallel(&found, |(name, display)| {
        read_source(&handle, dir, name, display, domains)
    }) {
        match result {
            Ok(source) => files.push(source),
            Err(p) => problems.push(p),
        }
    }
    Ok(Sources { files, problems })
}

/// Reads one migration file of the directory `handle` (`dir`) is: its name, bytes and
/// checksum.
fn read_source(
    handle: &std::fs::File,
    dir: &Path,
    file_name: &str,
    display: &str,
    domains: &[String],
) -> Result<Source, FileProblem> {
    let problem = |message: String| FileProblem {
        file: display.to_string(),
        line: None,
        message,
    };
    let name = parse_file_name(file_name, domains).map_err(|e| problem(e.to_string()))?;
    let bytes =
        read_in(handle, dir, file_name).map_err(|e| problem(format!("cannot read: {e}")))?;
    Ok(Source {
        name,
        checksum: checksum(&bytes),
        display: display.to_string(),
        bytes,
    })
}

/// The bytes of the file `name` in the directory `handle` (`dir`) is. Read without asking
/// its size first, into a buffer each reading thread keeps (most migration files fit the
/// first read, and the second one says so), then copied out at their size.
#[cfg(unix)]
fn read_in(handle: &std::fs::File, _dir: &Path, name: &str) -> std::io::Result<Vec<u8>> {
    use rustix::fs::{openat, Mode, OFlags};
    use std::io::Read;
    thread_local! {
        static BUFFER: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; 64 << 10]);
    }
    let mut file = std::fs::File::from(openat(
        handle,
        name,
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?);
    BUFFER.with_borrow_mut(|buffer| {
        let mut len = 0;
        loop {
            if len == buffer.len() {
                buffer.resize(2 * len, 0);
            }
            match file.read(&mut buffer[len..]) {
                Ok(0) => return Ok(buffer[..len].to_vec()),
                Ok(n) => len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    })
}

/// The bytes of the file `name` in the directory `dir`.
#[cfg(not(unix))]
fn read_in(_handle: &std::fs::File, dir: &Path, name: &str) -> std::io::Result<Vec<u8>> {
    std::fs::read(dir.join(name))
}

/// What an entry of the migrations directory is.
enum Entry {
    /// A regular `*.sql` file (or a link to one): parsed as a migration.
    Migration,
    /// Something that is plainly not a migration (a README, notes): ignored.
    Other,
    /// Something that looks like a migration but cannot be one: an input error, never skipped.
    Problem(String),
}

/// Sorts an entry of the migrations directory. Every name ending in `.sql` in any case, and
/// every name starting with a version and `_`, looks like a migration; it is one only as a
/// readable regular file named `*.sql`. Directories, FIFOs, sockets and broken links are
/// problems whatever their name, because a file moved there by mistake would silently not run.
fn classify_entry(entry: &std::fs::DirEntry, name: &str) -> Entry {
    let looks_like_migration = name.to_ascii_lowercase().ends_with(".sql")
        || name
            .split_once('_')
            .is_some_and(|(v, _)| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
    // The directory entry knows its own type (no `stat`); a link is followed.
    let kind = match entry.file_type() {
        Ok(kind) if !kind.is_symlink() => Ok(kind),
        _ => std::fs::metadata(entry.path()).map(|meta| meta.file_type()),
    };
    let kind = match kind {
        Ok(kind) => kind,
        Err(e) => {
            return Entry::Problem(match std::fs::symlink_metadata(entry.path()) {
                Ok(link) if link.file_type().is_symlink() => format!(
                    "a symbolic link whose target cannot be read ({e}); fix or remove the link"
                ),
                _ => format!("cannot be read: {e}"),
            })
        }
    };
    if kind.is_dir() {
        return Entry::Problem(
            "a directory: migrations are read from the migrations directory itself, never from \
             subdirectories; move its files up or the directory out (or hide it with a leading `.`)"
                .into(),
        );
    }
    if !kind.is_file() {
        return Entry::Problem(
            "not a regular file (a FIFO, socket or device); migrations must be regular files"
                .into(),
        );
    }
    if name.ends_with(".sql") {
        Entry::Migration
    } else if name.to_ascii_lowercase().ends_with(".sql") {
        Entry::Problem("the extension must be `.sql` in lowercase; rename the file".into())
    } else if looks_like_migration {
        Entry::Problem(
            "named like a migration but not `.sql`, so it would never run; rename it to \
             `<version>_<name>.sql`, or move it out of the migrations directory"
                .into(),
        )
    } else {
        Entry::Other
    }
}

/// The names a migration may start with: the managed schemas and `platform`.
pub fn domains(managed: &[String]) -> Vec<String> {
    let mut domains = vec!["platform".to_string()];
    domains.extend(managed.iter().cloned());
    domains
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domains() -> Vec<String> {
        super::domains(&["coach".into(), "wellness".into()])
    }

    fn parse_text(text: &str) -> Result<Migration, FileProblem> {
        parse_bytes(text.as_bytes())
    }

    fn parse_bytes(bytes: &[u8]) -> Result<Migration, FileProblem> {
        let name = parse_file_name("0001_coach_core.sql", &domains()).unwrap();
        parse(name, "migrations/0001_coach_core.sql", bytes)
    }

    fn error(text: &str) -> (Option<usize>, String) {
        let p = parse_text(text).unwrap_err();
        (p.line, p.message)
    }

    /// Mutations these catch (cargo-mutants): `file_name` a constant, the NUL byte's line
    /// counted by the wrong bytes, `START TRANSACTION` no longer seen as transaction control.
    #[test]
    fn file_name_nul_line_and_start_transaction() {
        let m = parse_text("-- UP\nselect 1;\n-- DOWN\nselect 2;\n").unwrap();
        assert_eq!(m.file_name(), "0001_coach_core.sql");
        let (line, message) = error("-- UP\nselect 1;\nselect '\0';\n-- DOWN\n");
        assert_eq!(line, Some(3), "{message}");
        assert!(message.contains("NUL byte"), "{message}");
        for control in [
            "start transaction",
            "START  Transaction isolation level serializable",
        ] {
            let (line, message) = error(&format!(
                "-- UP\ncreate table coach.t ();\n{control};\n-- DOWN\n"
            ));
            assert_eq!(line, Some(3), "{message}");
            assert!(
                message.starts_with("`START TRANSACTION` in the UP section"),
                "{message}"
            );
        }
    }

    /// Mutation this catches: `changes_string_syntax` dropped. With
    /// `standard_conforming_strings` off the server reads `'a\\'; commit; --'` as a string
    /// that ends before `commit`, where migrate's split sees one string: a COMMIT the file
    /// check never saw (attacker finding). Every way of setting it is refused; SHOW is not.
    #[test]
    fn setting_how_strings_are_read_is_refused() {
        for set in [
            "set standard_conforming_strings = off",
            "SET LOCAL standard_conforming_strings TO 'off'",
            "set session backslash_quote = on",
            "select set_config('standard_conforming_strings', 'off', true)",
            "do $$ begin execute 'set standard_conforming_strings = off'; end $$",
        ] {
            let (line, message) = error(&format!(
                "-- UP\ncreate table coach.t ();\n{set};\nselect 'a\\''; commit; --';\n-- DOWN\n"
            ));
            assert_eq!(line, Some(3), "{set}: {message}");
            assert!(
                message.contains("sets `standard_conforming_strings`"),
                "{set}: {message}"
            );
        }
        parse_text("-- UP\nshow standard_conforming_strings;\n-- DOWN\n").unwrap();
    }

    /// Mutation this catches: `changes_client_encoding` dropped. A migration that set another
    /// client encoding had the rest of its statements, and the warnings migrate recorded,
    /// read in that encoding (attacker finding: garbled warnings in history).
    #[test]
    fn setting_the_client_encoding_is_refused() {
        for set in [
            "set client_encoding = 'LATIN1'",
            "SET LOCAL client_encoding TO 'WIN1252'",
            "set names 'LATIN1'",
            "SET SESSION NAMES 'SQL_ASCII'",
            "select set_config('client_encoding', 'LATIN1', false)",
            "do $$ begin execute 'set client_encoding = latin1'; end $$",
        ] {
            let (line, message) = error(&format!(
                "-- UP\ncreate table coach.t ();\n{set};\nselect 'caf\u{e9}';\n-- DOWN\n"
            ));
            assert_eq!(line, Some(3), "{set}: {message}");
            assert!(
                message.contains("sets `client_encoding`"),
                "{set}: {message}"
            );
        }
        for fine in [
            "show client_encoding",
            "reset client_encoding",
            "alter role app set client_encoding = 'LATIN1'",
            "select 1 as names",
        ] {
            parse_text(&format!("-- UP\n{fine};\n-- DOWN\n"))
                .unwrap_or_else(|e| panic!("{fine}: {e:?}"));
        }
    }

    /// Mutation this catches: `changes_state_schema` dropped. A migration that replaced
    /// `_migrate.record_step` made every later migration of the run "done" and unrecorded
    /// (attacker finding). Changing `_migrate` is refused; reading it and granting on it is not.
    #[test]
    fn changing_the_state_schema_is_refused() {
        for change in [
            "create or replace function _migrate.record_step() returns void language sql as 'select'",
            "DELETE FROM _migrate.schema_migrations",
            "drop schema _migrate cascade",
            "do $$ begin execute 'truncate _migrate.history'; end $$",
        ] {
            let (line, message) = error(&format!(
                "-- UP\ncreate table coach.t ();\n{change};\n-- DOWN\n"
            ));
            assert_eq!(line, Some(3), "{change}: {message}");
            assert!(message.contains("changes `_migrate`"), "{change}: {message}");
        }
        parse_text(
            "-- UP\ngrant select on all tables in schema _migrate to public;\n\
             select count(*) from _migrate.history;\n\
             create table coach.app_migrate_log (id int);\n\
             alter table coach.users add column _migrated_at timestamptz;\n-- DOWN\n",
        )
        .unwrap();
        let (_, message) = error("-- UP\nDELETE FROM \"_migrate\".history;\n-- DOWN\n");
        assert!(message.contains("changes `_migrate`"), "{message}");
        let (_, message) = error(
            "-- UP\nset local search_path = _migrate, public;\ndelete from schema_migrations;\n-- DOWN\n",
        );
        assert!(message.contains("changes `_migrate`"), "{message}");
        // A comment before a statement is not the statement.
        parse_text(
            "-- UP\n-- we never touch _migrate.history here\ninsert into coach.t values (1);\n-- DOWN\n",
        )
        .unwrap();
    }

    /// Mutation this catches: a name like `0001_x.txt` no longer taken for a migration that
    /// would never run (`classify_entry`'s `!v.is_empty()` negated).
    #[test]
    fn a_migration_named_file_that_is_not_sql_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("0001_coach_x.txt"), "-- UP\n-- DOWN\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "fine\n").unwrap();
        let error = discover(dir.path(), dir.path(), &domains()).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("0001_coach_x.txt"), "{text}");
        assert!(
            text.contains("named like a migration but not `.sql`"),
            "{text}"
        );
        assert!(!text.contains("notes.txt"), "{text}");
    }

    #[test]
    fn parses_sections_and_lines() {
        let m = parse_text(
            "-- a header\n-- UP\ncreate table coach.t ();\n\n-- DOWN\ndrop table coach.t;\n",
        )
        .unwrap();
        assert_eq!(m.up.sql, "create table coach.t ();\n");
        assert_eq!(m.up.first_line, 3);
        assert_eq!(m.down.sql.trim(), "drop table coach.t;");
        assert_eq!(m.down.first_line, 6);
        assert!(m.transactional);
        assert!(m.reversible());
        assert_eq!(m.domain, "coach");
    }

    #[test]
    fn markers_in_odd_case_and_spacing() {
        let m = parse_text("  --   up  \nselect 1;\n\t--Down\t\nselect 2;").unwrap();
        assert_eq!(m.up.sql.trim(), "select 1;");
        assert_eq!(m.down.sql.trim(), "select 2;");
    }

    #[test]
    fn crlf_and_bom_parse_and_checksum_as_lf() {
        let lf = "-- UP\nselect 1;\n-- DOWN\nselect 2;\n";
        let crlf = lf.replace('\n', "\r\n");
        let a = parse_text(lf).unwrap();
        let b = parse_text(&crlf).unwrap();
        assert_eq!(a.checksum, b.checksum);
        assert_eq!(a.up, b.up);
        let mut bom = b"\xef\xbb\xbf".to_vec();
        bom.extend_from_slice(lf.as_bytes());
        let c = parse_bytes(&bom).unwrap();
        assert_eq!(c.up, a.up);
        assert_eq!(
            checksum(b"hello\r\nworld"),
            "26c60a61d01db5836ca70fefd44a6a016620413c8ef5f259a6c5612d4f79d3b8"
        );
        assert_eq!(checksum(b"hello\r\nworld"), checksum(b"hello\nworld"));
    }

    #[test]
    fn transaction_none_directive() {
        let m = parse_text(
            "-- transaction: none\n-- UP\ncreate index concurrently i on t (x);\n-- DOWN\n",
        )
        .unwrap();
        assert!(!m.transactional);
        assert!(!m.reversible());
        let (line, message) = error("-- Transaction: sometimes\n-- UP\nselect 1;\n-- DOWN\n");
        assert_eq!(line, Some(1));
        assert!(message.contains("unknown value `sometimes`"), "{message}");
    }

    #[test]
    fn comment_only_down_is_irreversible() {
        let m = parse_text("-- UP\nselect 1;\n-- DOWN\n-- cannot be undone\n\n").unwrap();
        assert!(!m.reversible());
    }

    #[test]
    fn marker_inside_dollar_body_is_sql() {
        let text = "-- UP\ncreate function coach.f() returns void language plpgsql as $$\nbegin\n-- DOWN\nend $$;\n-- DOWN\ndrop function coach.f();\n";
        let m = parse_text(text).unwrap();
        assert!(m.up.sql.contains("-- DOWN\nend $$;"));
        assert_eq!(m.down.sql.trim(), "drop function coach.f();");
        assert_eq!(m.down.first_line, 7);
    }

    #[test]
    fn unclosed_dollar_body_is_named() {
        let (_, message) = error("-- UP\ncreate function f() as $$\nbegin\n-- DOWN\nselect 1;\n");
        assert!(message.contains("missing `-- DOWN`"), "{message}");
        assert!(
            message.contains("$$-quoted body opened at line 2"),
            "{message}"
        );
    }

    #[test]
    fn missing_markers() {
        assert!(error("select 1;")
            .1
            .contains("SQL before the `-- UP` marker"));
        assert!(error("-- just a comment").1.contains("missing `-- UP`"));
        assert!(error("-- UP\nselect 1;\n").1.contains("missing `-- DOWN`"));
    }

    #[test]
    fn repeated_and_misordered_markers() {
        assert_eq!(
            error("-- UP\nselect 1;\n-- up\n-- DOWN\n"),
            (
                Some(3),
                "second `-- UP` marker (the first is at line 1); a file has exactly one".into()
            )
        );
        let (line, message) = error("-- UP\nselect 1;\n-- DOWN\n-- DOWN\n");
        assert_eq!(line, Some(4));
        assert!(message.contains("second `-- DOWN`"));
        let (line, message) = error("-- DOWN\nselect 1;\n-- UP\nselect 2;\n");
        assert_eq!(line, Some(1));
        assert!(message.contains("before any `-- UP`"));
    }

    #[test]
    fn empty_up_section_parses_as_an_empty_migration() {
        let m = parse_text("-- header\n-- UP\n-- nothing yet\n\n-- DOWN\n").unwrap();
        assert!(m.is_empty());
        assert!(!m.reversible());
        let message = m.empty_error().message;
        assert!(message.contains(":2: the UP section is empty"), "{message}");
        assert!(!parse_text("-- UP\nselect 1;\n-- DOWN\n")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn unclosed_string_in_down() {
        let (line, message) = error("-- UP\nselect 1;\n-- DOWN\nselect 'oops;\n");
        assert_eq!(line, Some(4));
        assert!(message.contains("never closed"), "{message}");
    }

    #[test]
    fn non_utf8_names_the_line() {
        let (line, message) = {
            let p = parse_bytes(b"-- UP\nselect '\xff';\n-- DOWN\n").unwrap_err();
            (p.line, p.message)
        };
        assert_eq!(line, Some(2));
        assert!(message.contains("not valid UTF-8"));
    }

    #[test]
    fn short_checksums_never_split_a_character() {
        assert_eq!(short("0123456789abcdef"), "0123456789ab");
        assert_eq!(short("abc"), "abc");
        assert_eq!(short("01234567890é"), "01234567890é");
        assert_eq!(version_label(Some(7)), "0007");
        assert_eq!(version_label(None), "none");
    }

    #[test]
    fn file_name_rules() {
        let d = domains();
        assert_eq!(
            parse_file_name("0012_wellness_entries.sql", &d).unwrap(),
            FileName {
                version: 12,
                name: "wellness_entries".into(),
                domain: "wellness".into()
            }
        );
        assert_eq!(
            parse_file_name("00001_platform.sql", &d).unwrap().version,
            1
        );
        for bad in [
            "001_coach_x.sql",
            "0001-coach-x.sql",
            "0001_Coach_x.sql",
            "0000_coach_x.sql",
            "0001_billing_x.sql",
            "0001_coachx.sql",
            "abcd_coach.sql",
            "0001_.sql",
            "99999999999999999999_coach.sql",
        ] {
            assert!(
                parse_file_name(bad, &d).is_err(),
                "{bad} should be rejected"
            );
        }
    }

    #[test]
    fn error_positions_map_to_file_lines() {
        let m = parse_text("-- UP\nselect 1;\nselect nope;\n-- DOWN\n").unwrap();
        let position = m.up.sql.find("nope").unwrap() + 1;
        assert_eq!(m.up.line_of_position(position), 3);
    }
}
