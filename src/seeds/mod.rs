//! Seed sets (DESIGN §9): discovering `seeds/base` and `seeds/test`, and reading `.toml` seed
//! files into rows per table. Pure: no database, no printing.

pub mod csv;
pub mod prepare;
pub mod value;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use toml::de::{DeTable, DeValue};

use crate::error::{file_problems, Error, FileProblem};
use crate::migrations::checksum;
use crate::migrations::lexer::LineIndex;
pub use value::{Value, ValueError};

/// A named directory of seed files.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum SeedSet {
    Base,
    Test,
}

impl From<crate::cli::SeedSetName> for SeedSet {
    fn from(name: crate::cli::SeedSetName) -> SeedSet {
        match name {
            crate::cli::SeedSetName::Base => SeedSet::Base,
            crate::cli::SeedSetName::Test => SeedSet::Test,
        }
    }
}

impl SeedSet {
    /// Its directory's name under `seeds/`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The sets a command loads, in order: `test` is base, then test.
    pub fn with_prerequisites(self) -> &'static [SeedSet] {
        match self {
            SeedSet::Base => &[SeedSet::Base],
            SeedSet::Test => &[SeedSet::Base, SeedSet::Test],
        }
    }
}

/// One seed file on disk.
#[derive(Debug, Clone)]
pub struct SeedFile {
    pub set: SeedSet,
    /// The file name, unique within its set (`010_users.toml`); recorded in `seed_runs`.
    pub name: String,
    /// Path as shown to the user (relative to the project when possible).
    pub path: String,
    /// Same checksum as migrations: SHA-256 of the bytes with CRLF normalised to LF.
    pub checksum: String,
    pub body: Body,
}

#[derive(Debug, Clone)]
pub enum Body {
    /// Rows per table (a `.toml` file, or the one table of a `.csv` file), tables in the
    /// order they first appear in the file.
    Rows(Vec<TableRows>),
    /// Run as it is; it must be idempotent itself.
    Sql(String),
    /// A `.csv` file: rows of one table, checked for shape, split into values only if needed.
    Csv(std::sync::Arc<csv::CsvSource>),
    /// Byte-identical to its last load, and nothing has written to its tables since: not
    /// parsed again. Its tables and row counts, from that load.
    Unchanged(Vec<(String, i64)>),
}

/// Files that need not be parsed: by set and file name, the checksum of their last load and
/// the rows per table it left, for those whose tables nothing has written since.
pub type UnchangedFiles =
    std::collections::HashMap<(SeedSet, String), (String, Vec<(String, i64)>)>;

/// The rows a file gives for one table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableRows {
    pub schema: String,
    pub table: String,
    pub rows: Vec<Row>,
}

impl TableRows {
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }
}

/// One row: its 1-based index among the table's rows in the file, the line it starts on,
/// and its values in the order written.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub index: usize,
    pub line: usize,
    pub values: Vec<(String, Value)>,
}

/// The paths of a set's files in name order; `None` when its directory does not exist.
pub fn list_set(seeds_dir: &Path, set: SeedSet) -> Result<Option<Vec<PathBuf>>, Error> {
    list(&seeds_dir.join(set.as_str()))
}

/// The name and checksum of each file of a set, in name order, without parsing it (what
/// `seed status` compares with `seed_runs`); empty when the set's directory does not exist.
pub fn checksums(seeds_dir: &Path, set: SeedSet) -> Result<Vec<(String, String)>, Error> {
    let paths = list_set(seeds_dir, set)?.unwrap_or_default();
    paths
        .iter()
        .map(|path| {
            let bytes = std::fs::read(path)
                .map_err(|e| Error::input(format!("{}: cannot read: {e}", path.display())))?;
            Ok((file_name(path), checksum(&bytes)))
        })
        .collect()
}

/// Reads and parses files, in the order given, on as many threads as there are cores:
/// parsing large TOML files is most of a cold load's client time.
pub fn read_all(
    files: &[(SeedSet, PathBuf)],
    root: &Path,
    unchanged: &UnchangedFiles,
) -> Result<Vec<SeedFile>, Error> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len());
    // Largest first, so that a big file does not start last.
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by_cached_key(|&i| {
        std::cmp::Reverse(std::fs::metadata(&files[i].1).map_or(0, |m| m.len()))
    });
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let k = next.fetch_add(1, Ordering::Relaxed);
            let Some(&i) = order.get(k) else {
                return done;
            };
            let (set, path) = &files[i];
            done.push((i, read(path, &display(path, root), *set, unchanged)));
        }
    };
    let mut results: Vec<(usize, Result<SeedFile, Vec<FileProblem>>)> = if workers > 1 {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers).map(|_| scope.spawn(work)).collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    } else {
        work()
    };
    results.sort_by_key(|(i, _)| *i);
    let mut parsed = Vec::with_capacity(results.len());
    let mut problems = Vec::new();
    for (_, result) in results {
        match result {
            Ok(file) => parsed.push(file),
            Err(mut p) => problems.append(&mut p),
        }
    }
    if problems.is_empty() {
        Ok(parsed)
    } else {
        Err(file_problems(&problems))
    }
}

/// The seed files of a directory, sorted by name; dotfiles and `*.md` are ignored, any other
/// extension is an error (a typo would otherwise skip a file silently).
fn list(dir: &Path) -> Result<Option<Vec<PathBuf>>, Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::input(format!("cannot read {}: {e}", dir.display()))),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|e| Error::input(format!("cannot read {}: {e}", dir.display())))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() || name.starts_with('.') || name.ends_with(".md") {
            continue;
        }
        if !(name.ends_with(".toml") || name.ends_with(".csv") || name.ends_with(".sql")) {
            return Err(Error::input(format!(
                "{}: a seed file is .toml (rows per table), .csv (rows of one table) or .sql \
                 (run as it is); rename or move it",
                path.display()
            )));
        }
        paths.push(path);
    }
    paths.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(Some(paths))
}

fn display(path: &Path, root: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

fn read(
    path: &Path,
    shown: &str,
    set: SeedSet,
    unchanged: &UnchangedFiles,
) -> Result<SeedFile, Vec<FileProblem>> {
    let problem = |line: Option<usize>, message: String| FileProblem {
        file: shown.to_string(),
        line,
        message,
    };
    let bytes =
        std::fs::read(path).map_err(|e| vec![problem(None, format!("cannot read: {e}"))])?;
    let checksum = checksum(&bytes);
    let text =
        String::from_utf8(bytes).map_err(|_| vec![problem(None, "is not valid UTF-8".into())])?;
    let name = file_name(path);
    if let Some((loaded, tables)) = unchanged.get(&(set, name.clone())) {
        if *loaded == checksum && !shown.ends_with(".sql") {
            return Ok(SeedFile {
                set,
                name,
                path: shown.to_string(),
                checksum,
                body: Body::Unchanged(tables.clone()),
            });
        }
    }
    let parsed = if shown.ends_with(".sql") {
        return Ok(SeedFile {
            set,
            name,
            path: shown.to_string(),
            checksum,
            body: Body::Sql(text),
        });
    } else if shown.ends_with(".csv") {
        let source = csv::scan(&name, text).map_err(|problems| {
            problems
                .into_iter()
                .map(|(line, message)| problem(line, message))
                .collect::<Vec<_>>()
        })?;
        return Ok(SeedFile {
            set,
            name,
            path: shown.to_string(),
            checksum,
            body: Body::Csv(std::sync::Arc::new(source)),
        });
    } else {
        parse_toml(&text)
    };
    let body = Body::Rows(parsed.map_err(|problems| {
        problems
            .into_iter()
            .map(|(line, message)| problem(line, message))
            .collect::<Vec<_>>()
    })?);
    Ok(SeedFile {
        set,
        name,
        path: shown.to_string(),
        checksum,
        body,
    })
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

const SHAPE: &str = "a seed file lists rows per schema-qualified table: `[[schema.table]]` \
                     headers, each followed by `column = value` lines";

type Problems = Vec<(Option<usize>, String)>;

/// Parses a `.toml` seed file into rows per table, with the `toml` crate (which also bounds
/// nesting: a value nested deeper than it allows is an error with its line, not a crash).
/// Problems carry their line. A large file made only of `[[schema.table]]` rows is parsed in
/// pieces on all cores (see `split_rows`); any doubt, and any error, goes to one parse of the
/// whole file.
pub fn parse_toml(text: &str) -> Result<Vec<TableRows>, Problems> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    if let Some(pieces) = split_rows(text, workers) {
        let parsed: Vec<Result<Vec<TableRows>, Problems>> = std::thread::scope(|scope| {
            let handles: Vec<_> = pieces
                .iter()
                .map(|&(start, end, line)| {
                    scope.spawn(move || {
                        parse_whole(&text[start..end]).map(|mut tables| {
                            for t in &mut tables {
                                t.rows.iter_mut().for_each(|r| r.line += line - 1);
                            }
                            tables
                        })
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        if parsed.iter().all(Result::is_ok) {
            let mut tables: Vec<TableRows> = Vec::new();
            for piece in parsed.into_iter().flatten() {
                for t in piece {
                    match tables
                        .iter_mut()
                        .find(|m| m.schema == t.schema && m.table == t.table)
                    {
                        Some(m) => {
                            let offset = m.rows.len();
                            m.rows.extend(t.rows.into_iter().map(|mut r| {
                                r.index += offset;
                                r
                            }));
                        }
                        None => tables.push(t),
                    }
                }
            }
            return Ok(tables);
        }
    }
    parse_whole(text)
}

/// Below this size a file is parsed in one piece.
const SPLIT_BYTES: usize = 1 << 20;

/// Where a file can be cut into pieces that parse alone to the same rows as the whole: at
/// lines that start a `[[schema.table]]` row. Only when nothing but comments and blank lines
/// precede the first such line, and no line starts another kind of header (`[table]`, or a
/// `[[a.b.c]]` that would nest in the row before it): then each piece holds whole rows, and
/// a cut inside a multi-line string leaves the piece before it unparsable, which sends the
/// file to one whole parse. `(start, end, first line)` of each piece.
fn split_rows(text: &str, pieces: usize) -> Option<Vec<(usize, usize, usize)>> {
    if pieces < 2 || text.len() < SPLIT_BYTES {
        return None;
    }
    let mut starts: Vec<(usize, usize)> = Vec::new(); // (byte, line) of each row header
    let mut offset = 0;
    for (n, line) in text.split_inclusive('\n').enumerate() {
        if line.starts_with('[') {
            let header = line.strip_prefix("[[")?;
            let (name, _) = header.split_once("]]")?;
            if name.split('.').count() != 2 {
                return None;
            }
            starts.push((offset, n + 1));
        } else if starts.is_empty() {
            let content = line.trim();
            if !(content.is_empty() || content.starts_with('#')) {
                return None;
            }
        }
        offset += line.len();
    }
    let target = text.len() / pieces;
    let mut cuts = vec![(0, 1)];
    for &(byte, line) in &starts {
        if byte >= cuts.last()?.0 + target && cuts.len() < pieces {
            cuts.push((byte, line));
        }
    }
    if cuts.len() < 2 {
        return None;
    }
    Some(
        cuts.iter()
            .enumerate()
            .map(|(i, &(start, line))| {
                let end = cuts.get(i + 1).map_or(text.len(), |c| c.0);
                (start, end, line)
            })
            .collect(),
    )
}

/// One parse of a whole TOML text.
fn parse_whole(text: &str) -> Result<Vec<TableRows>, Problems> {
    let lines = LineIndex::new(text);
    let line_of = |span: std::ops::Range<usize>| lines.line(span.start);
    let doc = DeTable::parse(text).map_err(|e| {
        let message = e.message().trim().to_string();
        vec![(
            e.span().map(|s| lines.line(s.start)),
            format!("invalid TOML: {message}"),
        )]
    })?;
    let mut tables: Vec<(usize, TableRows)> = Vec::new();
    let mut problems: Problems = Vec::new();
    // The document is consumed as it is read: values move out instead of being copied.
    for (schema, item) in doc.into_inner() {
        let item_line = line_of(item.span());
        let schema = schema.into_inner();
        let DeValue::Table(schema_table) = item.into_inner() else {
            problems.push((
                Some(item_line),
                format!("`{schema}` is not a schema of tables; {SHAPE}"),
            ));
            continue;
        };
        for (table, item) in schema_table {
            let table = table.into_inner();
            let qualified = format!("{schema}.{table}");
            let item_line = line_of(item.span());
            let rows = match item.into_inner() {
                DeValue::Array(rows) => rows,
                _ => {
                    problems.push((
                        Some(item_line),
                        format!("`{qualified}` is not an array of rows; {SHAPE}"),
                    ));
                    continue;
                }
            };
            let mut converted = Vec::with_capacity(rows.len());
            for (i, row) in rows.into_iter().enumerate() {
                let line = line_of(row.span());
                let DeValue::Table(values) = row.into_inner() else {
                    problems.push((
                        Some(line),
                        format!("`{qualified}` is not an array of rows; {SHAPE}"),
                    ));
                    break;
                };
                match row_values(values) {
                    Ok(values) => converted.push(Row {
                        index: i + 1,
                        line,
                        values,
                    }),
                    Err((column, message)) => problems.push((
                        Some(line),
                        format!("{qualified} row {}, column `{column}`: {message}", i + 1),
                    )),
                }
            }
            let first = converted.first().map_or(usize::MAX, |r| r.line);
            tables.push((
                first,
                TableRows {
                    schema: schema.to_string(),
                    table: table.into_owned(),
                    rows: converted,
                },
            ));
        }
    }
    if !problems.is_empty() {
        problems.sort_by_key(|(line, _)| *line);
        return Err(problems);
    }
    // Rows of one table may reference another's (foreign keys): load tables in the order
    // they first appear in the file, not grouped by schema as TOML nests them.
    tables.sort_by_key(|(first, _)| *first);
    Ok(tables.into_iter().map(|(_, t)| t).collect())
}

fn row_values(table: DeTable<'_>) -> Result<Vec<(String, Value)>, (String, ValueError)> {
    table
        .into_iter()
        .map(|(k, v)| {
            let k = k.into_inner().into_owned();
            match Value::from_toml(v.into_inner()) {
                Ok(v) => Ok((k, v)),
                Err(e) => Err((k, e)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(tables: &[TableRows]) -> Vec<String> {
        tables.iter().map(|t| t.qualified()).collect()
    }

    #[test]
    fn tables_load_in_file_order_with_row_lines() {
        let text = "\
[[auth.users]]
id = \"a\"

[[coach.users]]
id = \"a\"
goals = [\"sleep\"]

[[auth.users]]
id = \"b\"

[[auth.identities]]
id = 1
";
        let tables = parse_toml(text).unwrap();
        assert_eq!(
            names(&tables),
            vec!["auth.users", "coach.users", "auth.identities"]
        );
        let auth = &tables[0];
        assert_eq!(auth.rows.len(), 2);
        assert_eq!((auth.rows[1].index, auth.rows[1].line), (2, 8));
        assert_eq!(tables[1].rows[0].line, 4);
        assert!(tables[1].rows[0].values.contains(&(
            "goals".to_string(),
            Value::Array(vec![Value::String("sleep".into())])
        )));
    }

    #[test]
    fn inline_arrays_of_rows_are_accepted() {
        let text = "[coach]\nusers = [\n  { id = \"a\" },\n  { id = \"b\" },\n]\n";
        let tables = parse_toml(text).unwrap();
        assert_eq!(tables[0].rows.len(), 2);
        assert_eq!(tables[0].rows[1].line, 4);
    }

    #[test]
    fn shape_errors_name_the_line() {
        let problems = parse_toml("title = \"x\"\n").unwrap_err();
        assert!(
            problems[0].1.contains("`title` is not a schema"),
            "{problems:?}"
        );
        let problems = parse_toml("[coach]\nusers = 5\n").unwrap_err();
        assert!(problems[0]
            .1
            .contains("`coach.users` is not an array of rows"));
        let problems = parse_toml("[[coach.users]]\nid = \n").unwrap_err();
        assert_eq!(problems[0].0, Some(2), "{problems:?}");
        assert!(problems[0].1.starts_with("invalid TOML"));
    }

    #[test]
    fn a_large_file_parsed_in_pieces_gives_the_rows_of_one_parse() {
        let mut text = String::from("# rows\n\n");
        for i in 0..40_000 {
            let table = if i % 3 == 0 {
                "auth.users"
            } else {
                "coach.users"
            };
            text.push_str(&format!(
                "[[{table}]]\nid = \"{i}\"\nnote = \"\"\"\nline [[x.y]]\n\"\"\"\n\n"
            ));
        }
        assert!(split_rows(&text, 2).is_some_and(|p| p.len() == 2));
        assert_eq!(parse_toml(&text).unwrap(), parse_whole(&text).unwrap());
        // Another kind of header, or a key before the first row: one piece.
        assert!(split_rows(&format!("[coach]\n{text}"), 2).is_none());
        assert!(split_rows(&format!("title = 1\n{text}"), 2).is_none());
        // A cut inside a multi-line string: the whole file's parse decides.
        let tricky = text.replace("line [[x.y]]", "[[x.y]]");
        assert_eq!(parse_toml(&tricky), parse_whole(&tricky));
    }

    #[test]
    fn lines_of_offsets() {
        let lines = LineIndex::new("ab\ncd\n\nef");
        assert_eq!(lines.line(0), 1);
        assert_eq!(lines.line(2), 1);
        assert_eq!(lines.line(3), 2);
        assert_eq!(lines.line(6), 3);
        assert_eq!(lines.line(7), 4);
    }
}
