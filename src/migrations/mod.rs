//! Migration files: discovery, the UP/DOWN format, checksums. Pure: no database, no printing.

pub mod lexer;
pub mod plan;
pub mod promotion;

use std::path::{Path, PathBuf};

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
        self.first_line + self.sql[..offset].bytes().filter(|&b| b == b'\n').count()
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
        format!("{:04}_{}.sql", self.version, self.name)
    }
}

/// The lowercase hex SHA-256 of `bytes` with CRLF normalised to LF.
pub fn checksum(bytes: &[u8]) -> String {
    let mut hasher = Sha256::new();
    let mut rest = bytes;
    while let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
        hasher.update(&rest[..i]);
        rest = &rest[i + 1..];
    }
    hasher.update(rest);
    hex(&hasher.finalize())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
#[derive(Debug, PartialEq, Eq)]
pub struct FileName {
    pub version: i64,
    pub name: String,
    pub domain: String,
}

/// Parses a migration file name; `domains` are the names a migration may start with.
pub fn parse_file_name(file_name: &str, domains: &[String]) -> Result<FileName, String> {
    let shape = "a migration file is named <version>_<name>.sql: a version of at least four \
                 digits and a lowercase name starting with its domain, e.g. 0003_coach_core.sql";
    let Some(stem) = file_name.strip_suffix(".sql") else {
        return Err(format!("not a .sql file; {shape}"));
    };
    let Some((digits, name)) = stem.split_once('_') else {
        return Err(format!(
            "file name has no `_` between version and name; {shape}"
        ));
    };
    if digits.len() < 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "version `{digits}` is not at least four digits; {shape}"
        ));
    }
    let version: i64 = digits
        .parse()
        .map_err(|_| format!("version `{digits}` is too large"))?;
    if version == 0 {
        return Err(format!("version must be positive; {shape}"));
    }
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(format!(
            "name `{name}` must be lowercase [a-z0-9_]+; {shape}"
        ));
    }
    let domain = domains
        .iter()
        .find(|d| name == d.as_str() || name.starts_with(&format!("{d}_")))
        .ok_or_else(|| {
            format!(
                "name `{name}` does not start with a domain ({}); {shape}",
                domains.join(", ")
            )
        })?;
    Ok(FileName {
        version,
        name: name.to_string(),
        domain: domain.clone(),
    })
}

/// Parses a migration file's bytes. `display` names the file in messages.
pub fn parse(file: FileName, display: &str, bytes: &[u8]) -> Result<Migration, FileProblem> {
    let problem = |line: Option<usize>, message: String| FileProblem {
        file: display.to_string(),
        line,
        message,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        problem(
            Some(line),
            format!(
                "not valid UTF-8 (byte {}); save the file as UTF-8",
                e.valid_up_to()
            ),
        )
    })?;
    let text = text
        .strip_prefix('\u{feff}')
        .unwrap_or(text)
        .replace("\r\n", "\n");
    let line_at = |offset: usize| 1 + text[..offset].bytes().filter(|&b| b == b'\n').count();
    if let Some(nul) = text.find('\0') {
        return Err(problem(
            Some(line_at(nul)),
            "holds a NUL byte, which PostgreSQL cannot take in SQL text; save the file as plain \
             UTF-8 text"
                .into(),
        ));
    }
    // COPY rows are data, not SQL: markers, quotes and comments inside them mean nothing.
    // Splitting the whole text also finds psql meta-commands before anything else does.
    // Without a backslash there is neither COPY data to end nor a meta-command to find.
    let data_lines = match if text.contains('\\') {
        lexer::split_statements(&text)
    } else {
        Ok(Vec::new())
    } {
        Ok(statements) => statements
            .iter()
            .filter_map(|s| s.copy_data.as_ref())
            .map(|d| {
                let first = line_at(d.offset);
                // The rows, and the `\.` line that ends them.
                first..=first + d.text.matches('\n').count()
            })
            .collect::<Vec<_>>(),
        Err(e) => return Err(problem(Some(line_at(e.offset())), e.message())),
    };

    let mut up_at: Option<usize> = None;
    let mut down_at: Option<usize> = None;
    let mut transactional = true;
    let mut scanner = Scanner::default();
    // Where the construct that is still open at a line's start was opened.
    let mut opened_at = 0;
    let lines: Vec<&str> = text.split('\n').collect();
    for (index, line) in lines.iter().enumerate() {
        let number = index + 1;
        if data_lines.iter().any(|range| range.contains(&number)) {
            continue;
        }
        let in_code = scanner.state() == &State::Code;
        match marker(line).filter(|_| in_code) {
            Some(Marker::Up) => {
                if let Some(first) = up_at {
                    return Err(problem(
                        Some(number),
                        format!("second `-- UP` marker (the first is at line {first}); a file has exactly one"),
                    ));
                }
                if let Some(down) = down_at {
                    return Err(problem(
                        Some(number),
                        format!(
                            "`-- UP` comes after `-- DOWN` (line {down}); put the UP section first"
                        ),
                    ));
                }
                up_at = Some(number);
                continue;
            }
            Some(Marker::Down) => {
                if let Some(first) = down_at {
                    return Err(problem(
                        Some(number),
                        format!("second `-- DOWN` marker (the first is at line {first}); a file has exactly one"),
                    ));
                }
                if up_at.is_none() {
                    return Err(problem(
                        Some(number),
                        "`-- DOWN` comes before any `-- UP` marker; put the UP section first"
                            .into(),
                    ));
                }
                down_at = Some(number);
                continue;
            }
            None => {}
        }
        if up_at.is_none() && in_code {
            let trimmed = line.trim();
            if let Some(directive) = trimmed.strip_prefix("--") {
                if let Some((key, value)) = directive.split_once(':') {
                    if key.trim().eq_ignore_ascii_case("transaction") {
                        match value.trim().to_ascii_lowercase().as_str() {
                            "none" => transactional = false,
                            other => {
                                return Err(problem(
                                    Some(number),
                                    format!("unknown value `{other}` for `transaction:`; the only directive value is `none`"),
                                ))
                            }
                        }
                    }
                }
            }
        }
        let was_code = scanner.state() == &State::Code;
        let mut code_on_line = false;
        scanner.feed_code(line, |_, b| code_on_line |= !b.is_ascii_whitespace());
        scanner.feed("\n", |_| {});
        if up_at.is_none() && code_on_line {
            return Err(problem(
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
    let Some(up_at) = up_at else {
        return Err(problem(
            None,
            format!(
                "missing `-- UP` marker; write `-- UP` on its own line before the forward SQL{}",
                unclosed()
            ),
        ));
    };
    let Some(down_at) = down_at else {
        return Err(problem(
            None,
            format!(
                "missing `-- DOWN` marker; add `-- DOWN` and the reverse SQL after the UP section \
                 (leave it empty to mark the migration irreversible){}",
                unclosed()
            ),
        ));
    };
    if scanner.state() != &State::Code {
        return Err(problem(
            Some(opened_at),
            format!("{} opened here is never closed", scanner.state().describe()),
        ));
    }

    let section = |from: usize, to: usize| Section {
        sql: lines[from..to].join("\n"),
        first_line: from + 1,
    };
    let up = section(up_at, down_at - 1);
    let down = section(down_at, lines.len());
    for (section, name) in [(&up, "UP"), (&down, "DOWN")] {
        let statements = section
            .statements()
            .map_err(|e| problem(Some(section.line_of_offset(e.offset())), e.message()))?;
        // Only the SQL counts: COPY rows may hold quotes that open nothing.
        if let Some(last) = statements.last() {
            let mut scanner = Scanner::default();
            scanner.feed(last.sql, |_| {});
            match scanner.state() {
                State::Code | State::LineComment => {}
                state => {
                    return Err(problem(
                        Some(section.line_of_offset(last.offset)),
                        format!("the {name} section ends inside {}", state.describe()),
                    ))
                }
            }
        }
        for statement in statements {
            if let Some(control) = transaction_control(statement.sql) {
                return Err(problem(
                    Some(
                        section
                            .line_of_offset(statement.offset + lexer::leading_blank(statement.sql)),
                    ),
                    format!(
                        "`{control}` in the {name} section: migrate runs {} and records it in \
                         that same transaction, so a migration must not begin, end or prepare \
                         transactions itself; remove it (savepoints are fine), or move \
                         statements that cannot run in a transaction to a migration with \
                         `-- transaction: none`, whose statements each run on their own",
                        if transactional {
                            "the migration in one transaction"
                        } else {
                            "each statement of a `transaction: none` migration on its own"
                        }
                    ),
                ));
            }
        }
    }

    Ok(Migration {
        version: file.version,
        name: file.name,
        domain: file.domain,
        path: display.to_string(),
        checksum: checksum(bytes),
        up,
        down,
        transactional,
    })
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

/// Reads every `*.sql` file of `dir`, sorted by version. All problems are reported together;
/// hidden entries and files plainly not migrations (a README) are ignored (see `classify_entry`).
pub fn discover(
    dir: &Path,
    display_root: &Path,
    domains: &[String],
) -> Result<Vec<Migration>, Error> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Error::input(format!(
            "cannot read the migrations directory {}: {e}; create it or set [paths] migrations in migrate.toml",
            dir.display()
        ))
    })?;
    let mut problems = Vec::new();
    let mut paths: Vec<PathBuf> = Vec::new();
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
        let path = entry.path();
        let display = path
            .strip_prefix(display_root)
            .unwrap_or(&path)
            .display()
            .to_string();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        match classify_entry(&path, &name) {
            Entry::Migration => paths.push(path),
            Entry::Other => {}
            Entry::Problem(message) => problems.push(FileProblem {
                file: display,
                line: None,
                message,
            }),
        }
    }
    paths.sort();

    // Reading, hashing and lexing are independent per file: spread over the cores, in
    // order (a thousand files are most of `status`'s time otherwise).
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8)
        .min(paths.len().max(1));
    let chunk = paths.len().div_ceil(threads).max(1);
    let results: Vec<Result<Migration, FileProblem>> = std::thread::scope(|scope| {
        let workers: Vec<_> = paths
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|path| read_migration(path, display_root, domains))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    let mut migrations: Vec<Migration> = Vec::new();
    for result in results {
        match result {
            Ok(m) => migrations.push(m),
            Err(p) => problems.push(p),
        }
    }
    migrations.sort_by_key(|m| m.version);
    for pair in migrations.windows(2) {
        if pair[0].version == pair[1].version {
            problems.push(FileProblem {
                file: pair[1].path.clone(),
                line: None,
                message: format!(
                    "duplicate version {} (also {}); give one of them the next free number",
                    pair[1].version, pair[0].path
                ),
            });
        }
    }
    if problems.is_empty() {
        Ok(migrations)
    } else {
        Err(file_problems(&problems))
    }
}

/// Reads and parses one migration file.
fn read_migration(
    path: &Path,
    display_root: &Path,
    domains: &[String],
) -> Result<Migration, FileProblem> {
    let display = path
        .strip_prefix(display_root)
        .unwrap_or(path)
        .display()
        .to_string();
    let problem = |message: String| FileProblem {
        file: display.clone(),
        line: None,
        message,
    };
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| problem("file name is not UTF-8".into()))?;
    let name = parse_file_name(file_name, domains).map_err(problem)?;
    let bytes = std::fs::read(path).map_err(|e| problem(format!("cannot read: {e}")))?;
    parse(name, &display, &bytes)
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
fn classify_entry(path: &Path, name: &str) -> Entry {
    let looks_like_migration = name.to_ascii_lowercase().ends_with(".sql")
        || name
            .split_once('_')
            .is_some_and(|(v, _)| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
    let kind = match std::fs::metadata(path) {
        Ok(meta) => meta.file_type(),
        Err(e) => {
            return Entry::Problem(match std::fs::symlink_metadata(path) {
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
