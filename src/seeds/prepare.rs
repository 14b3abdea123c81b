//! Checks seed rows against the tables' shapes and turns them into batches: per table, rows
//! with the same set of columns, each column's values as text. Pure; every problem is found
//! before anything is written.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use super::csv::{self, CsvSource};
use super::value::Kind;
use super::{Body, Row, SeedFile, TableRows};
use crate::db::seeds::catalog::TableShape;
use crate::error::FileProblem;

/// Rows of one table that give the same columns: loaded by one statement.
#[derive(Debug, Clone)]
pub struct Batch {
    pub table: TableShape,
    /// Indexes into `table.columns`, in `attnum` order.
    pub columns: Vec<usize>,
    /// Per column (parallel to `columns`), one text per row; `None` is NULL (CSV only).
    pub values: Vec<Vec<Option<String>>>,
    /// Each row's 1-based index among the table's rows in the file, and its line.
    pub rows: Vec<(usize, usize)>,
    /// For a CSV file: its text, and per column (parallel to `columns`) the field's position
    /// in the header. `values` stay empty until `materialized` (an empty table gets the text
    /// as it is).
    pub csv: Option<(Arc<CsvSource>, Vec<usize>)>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The batch with its values: a CSV batch's fields are read from its text now.
    pub fn materialized(&self) -> Cow<'_, Batch> {
        match &self.csv {
            Some((source, positions)) if self.values.is_empty() => {
                let mut batch = self.clone();
                batch.values = csv::columns(source, positions);
                Cow::Owned(batch)
            }
            _ => Cow::Borrowed(self),
        }
    }
}

/// More problems than this are counted, not listed.
const MAX_PROBLEMS: usize = 50;

struct Problems {
    list: Vec<FileProblem>,
    more: usize,
}

impl Problems {
    fn push(&mut self, file: &SeedFile, line: usize, message: String) {
        if self.list.len() < MAX_PROBLEMS {
            self.list.push(FileProblem {
                file: file.path.clone(),
                line: Some(line),
                message,
            });
        } else {
            self.more += 1;
        }
    }
}

/// The batches of each file (none for `.sql` files), or every problem found. The rows move
/// out of the files into the batches (a large set is not held twice).
pub fn prepare(
    files: &mut [SeedFile],
    shapes: &HashMap<String, TableShape>,
) -> Result<Vec<Vec<Batch>>, Vec<FileProblem>> {
    let mut problems = Problems {
        list: Vec::new(),
        more: 0,
    };
    let mut prepared = Vec::with_capacity(files.len());
    for file in files.iter_mut() {
        let mut batches = Vec::new();
        if let Body::Rows(tables) = &mut file.body {
            let tables = std::mem::take(tables);
            for rows in tables {
                batches.extend(table_batches(file, rows, shapes, &mut problems));
            }
        }
        if let Body::Csv(source) = &file.body {
            batches.extend(csv_batch(file, source, shapes, &mut problems));
        }
        prepared.push(batches);
    }
    if problems.list.is_empty() {
        return Ok(prepared);
    }
    if problems.more > 0 {
        let last = problems.list.last().cloned();
        if let Some(last) = last {
            problems.list.push(FileProblem {
                file: last.file,
                line: None,
                message: format!("... and {} more problem(s)", problems.more),
            });
        }
    }
    Err(problems.list)
}

fn table_batches(
    file: &SeedFile,
    rows: TableRows,
    shapes: &HashMap<String, TableShape>,
    problems: &mut Problems,
) -> Vec<Batch> {
    let qualified = rows.qualified();
    let first_line = rows.rows.first().map_or(1, |r| r.line);
    let Some(shape) = shapes.get(&qualified) else {
        problems.push(
            file,
            first_line,
            format!(
                "{qualified} row 1: table `{qualified}` does not exist (or is not a table); \
                 check the schema and table name"
            ),
        );
        return Vec::new();
    };
    if shape.primary_key.is_empty() {
        problems.push(
            file,
            first_line,
            format!(
                "{qualified} row 1: table `{qualified}` has no primary key, and seed rows are \
                 upserted by primary key; load it from a .sql seed file instead"
            ),
        );
        return Vec::new();
    }
    let key_columns: Vec<usize> = shape
        .primary_key
        .iter()
        .filter_map(|k| shape.column(k).map(|(i, _)| i))
        .collect();
    let mut batches: Vec<Batch> = Vec::new();
    let mut seen_keys: HashMap<String, usize> = HashMap::with_capacity(rows.rows.len());
    for row in rows.rows {
        let (index, line) = (row.index, row.line);
        let Some(mut cells) = row_cells(file, &qualified, shape, &key_columns, row, problems)
        else {
            continue;
        };
        cells.sort_by_key(|(i, _)| *i);
        let key = key_text(shape, &key_columns, &cells);
        if let Some(first) = seen_keys.insert(key, index) {
            problems.push(
                file,
                line,
                format!(
                    "{qualified} row {index}: same primary key ({}) as row {first} of this file; \
                     give each row once",
                    shape.primary_key.join(", ")
                ),
            );
            continue;
        }
        // A batch is a run of consecutive rows with the same columns: rows load in file
        // order, so a row may refer to an earlier row of the same table (a reply to a message).
        if batches
            .last()
            .is_none_or(|b| !b.columns.iter().eq(cells.iter().map(|(i, _)| i)))
        {
            let columns: Vec<usize> = cells.iter().map(|(i, _)| *i).collect();
            batches.push(Batch {
                table: shape.clone(),
                values: vec![Vec::new(); columns.len()],
                columns,
                rows: Vec::new(),
                csv: None,
            });
        }
        let batch = batches.last_mut().expect("a batch was just pushed");
        for (slot, (_, text)) in batch.values.iter_mut().zip(cells) {
            slot.push(text);
        }
        batch.rows.push((index, line));
    }
    batches
}

/// One row's cells (column index, text), or None when a problem was found in it: an unknown,
/// generated or identity column, a value that does not fit its column, a key not given.
fn row_cells(
    file: &SeedFile,
    qualified: &str,
    shape: &TableShape,
    key_columns: &[usize],
    row: Row,
    problems: &mut Problems,
) -> Option<Vec<(usize, Option<String>)>> {
    let at = |column: &str| format!("{qualified} row {}, column `{column}`", row.index);
    let mut cells: Vec<(usize, Option<String>)> = Vec::with_capacity(row.values.len());
    let mut given: Vec<usize> = Vec::with_capacity(row.values.len());
    let mut ok = true;
    for (name, value) in row.values {
        let name = name.as_str();
        let Some((i, column)) = shape.column(name) else {
            problems.push(
                file,
                row.line,
                format!(
                    "{}: unknown column; `{qualified}` has {}",
                    at(name),
                    column_list(shape)
                ),
            );
            ok = false;
            continue;
        };
        given.push(i);
        if column.generated {
            problems.push(
                file,
                row.line,
                format!(
                    "{}: is a generated column (GENERATED ALWAYS AS ...); PostgreSQL \
                     computes it, leave it out",
                    at(name)
                ),
            );
            ok = false;
            continue;
        }
        if column.identity_always && !shape.primary_key.iter().any(|k| k == name) {
            problems.push(
                file,
                row.line,
                format!(
                    "{}: is an identity column (GENERATED ALWAYS AS IDENTITY); leave it out",
                    at(name)
                ),
            );
            ok = false;
            continue;
        }
        match column.kind.text(&column.type_name, value) {
            Ok(text) => cells.push((i, Some(text))),
            Err(e) => {
                problems.push(file, row.line, format!("{}: {e}", at(name)));
                ok = false;
            }
        }
    }
    for &k in key_columns {
        if !given.contains(&k) {
            problems.push(
                file,
                row.line,
                format!(
                    "{}: primary-key value missing; seed rows are upserted by primary key \
                     ({}), so every row gives it",
                    at(&shape.columns[k].name),
                    shape.primary_key.join(", ")
                ),
            );
            ok = false;
        }
    }
    ok.then_some(cells)
}

/// The one batch of a CSV file: its header checked against the table, and every row's key
/// (given, not NULL, not twice); the other values are PostgreSQL's to judge.
fn csv_batch(
    file: &SeedFile,
    source: &Arc<CsvSource>,
    shapes: &HashMap<String, TableShape>,
    problems: &mut Problems,
) -> Option<Batch> {
    let qualified = format!("{}.{}", source.schema, source.table);
    let Some(shape) = shapes.get(&qualified) else {
        problems.push(
            file,
            1,
            format!(
                "table `{qualified}` (from the file name) does not exist (or is not a table); \
                 check the schema and table name"
            ),
        );
        return None;
    };
    if shape.primary_key.is_empty() {
        problems.push(
            file,
            1,
            format!(
                "table `{qualified}` has no primary key, and seed rows are upserted by primary \
                 key; load it from a .sql seed file instead"
            ),
        );
        return None;
    }
    let before = problems.list.len() + problems.more;
    let (mut columns, key_positions) = csv_header(file, &qualified, shape, source, problems);
    if problems.list.len() + problems.more > before {
        return None;
    }
    csv_keys(file, &qualified, shape, source, &key_positions, problems);
    if problems.list.len() + problems.more > before {
        return None;
    }
    columns.sort();
    Some(Batch {
        table: shape.clone(),
        columns: columns.iter().map(|(i, _)| *i).collect(),
        values: Vec::new(),
        rows: source
            .lines
            .iter()
            .enumerate()
            .map(|(i, &line)| (i + 1, line))
            .collect(),
        csv: Some((
            Arc::clone(source),
            columns.iter().map(|(_, p)| *p).collect(),
        )),
    })
}

/// The header's columns that go into the table, as (column index, header position), and the
/// header positions of the primary key; a problem for each column that cannot be loaded and
/// for a key column the header lacks.
fn csv_header(
    file: &SeedFile,
    qualified: &str,
    shape: &TableShape,
    source: &CsvSource,
    problems: &mut Problems,
) -> (Vec<(usize, usize)>, Vec<usize>) {
    let mut columns: Vec<(usize, usize)> = Vec::new(); // (column index, header position)
    for (position, name) in source.header.iter().enumerate() {
        let at = format!("{qualified} header, column `{name}`");
        match shape.column(name) {
            None => problems.push(
                file,
                1,
                format!(
                    "{at}: unknown column; `{qualified}` has {}",
                    column_list(shape)
                ),
            ),
            Some((_, c)) if c.generated => problems.push(
                file,
                1,
                format!(
                    "{at}: is a generated column (GENERATED ALWAYS AS ...); PostgreSQL computes \
                     it, leave it out"
                ),
            ),
            Some((_, c)) if c.identity_always && !shape.primary_key.contains(&c.name) => problems
                .push(
                    file,
                    1,
                    format!(
                        "{at}: is an identity column (GENERATED ALWAYS AS IDENTITY); leave it out"
                    ),
                ),
            Some((i, _)) => columns.push((i, position)),
        }
    }
    let key_positions: Vec<usize> = shape
        .primary_key
        .iter()
        .filter_map(|k| source.header.iter().position(|h| h == k))
        .collect();
    if key_positions.len() < shape.primary_key.len() {
        problems.push(
            file,
            1,
            format!(
                "{qualified} header: primary-key column(s) missing; seed rows are upserted by \
                 primary key ({}), so the header names every one",
                shape.primary_key.join(", ")
            ),
        );
    }
    (columns, key_positions)
}

/// Every row's key is given (not NULL) and given once.
fn csv_keys(
    file: &SeedFile,
    qualified: &str,
    shape: &TableShape,
    source: &CsvSource,
    key_positions: &[usize],
    problems: &mut Problems,
) {
    let keys = csv::columns(source, key_positions);
    let uuid: Vec<bool> = key_positions
        .iter()
        .map(|&p| {
            shape
                .column(&source.header[p])
                .is_some_and(|(_, c)| c.kind == Kind::Uuid)
        })
        .collect();
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(source.lines.len());
    for (row, &line) in source.lines.iter().enumerate() {
        let mut key = String::new();
        let mut null = None;
        for (slot, column) in keys.iter().enumerate() {
            match &column[row] {
                None => null = Some(&source.header[key_positions[slot]]),
                Some(text) if uuid[slot] => {
                    key.push_str(&text.to_ascii_lowercase().replace(['-', '{', '}'], ""))
                }
                Some(text) => key.push_str(text),
            }
            key.push('\u{0}');
        }
        if let Some(name) = null {
            problems.push(
                file,
                line,
                format!(
                    "{qualified} row {}, column `{name}`: primary-key value is NULL (an empty \
                     unquoted field); give it",
                    row + 1
                ),
            );
        } else if let Some(first) = seen.insert(key, row + 1) {
            problems.push(
                file,
                line,
                format!(
                    "{qualified} row {}: same primary key ({}) as row {first} of this file; \
                     give each row once",
                    row + 1,
                    shape.primary_key.join(", ")
                ),
            );
        }
    }
}

/// A row's primary key as one string, for spotting the same key twice in a file.
fn key_text(
    shape: &TableShape,
    key_columns: &[usize],
    cells: &[(usize, Option<String>)],
) -> String {
    let mut key = String::new();
    for &k in key_columns {
        if let Some((_, Some(text))) = cells.iter().find(|(i, _)| *i == k) {
            if shape.columns[k].kind == Kind::Uuid {
                key.push_str(&text.to_ascii_lowercase().replace(['-', '{', '}'], ""));
            } else {
                key.push_str(text);
            }
        }
        key.push('\u{0}');
    }
    key
}

fn column_list(shape: &TableShape) -> String {
    let names: Vec<&str> = shape.columns.iter().map(|c| c.name.as_str()).collect();
    format!("columns {}", names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::seeds::catalog::ColumnShape;
    use crate::seeds::{parse_toml, SeedSet};

    fn column(name: &str, type_name: &str, category: &str) -> ColumnShape {
        ColumnShape {
            name: name.into(),
            type_name: type_name.into(),
            cast_type: type_name.into(),
            kind: Kind::of(type_name, category, None),
            generated: name == "level",
            identity_always: false,
            sequence: None,
        }
    }

    fn shapes() -> HashMap<String, TableShape> {
        let users = TableShape {
            schema: "coach".into(),
            name: "users".into(),
            columns: vec![
                column("id", "uuid", "U"),
                column("email", "text", "S"),
                column("age", "integer", "N"),
                column("level", "smallint", "N"),
            ],
            primary_key: vec!["id".into()],
        };
        HashMap::from([("coach.users".to_string(), users)])
    }

    fn file(text: &str) -> SeedFile {
        SeedFile {
            set: SeedSet::Base,
            name: "010_x.toml".into(),
            path: "seeds/base/010_x.toml".into(),
            checksum: String::new(),
            body: Body::Rows(parse_toml(text).unwrap()),
        }
    }

    const A: &str = "00000000-0000-4000-8000-00000000000a";
    const B: &str = "00000000-0000-4000-8000-00000000000b";

    #[test]
    fn consecutive_rows_with_the_same_columns_batch_together_in_file_order() {
        let c = A.replace('a', "c");
        let d = A.replace('a', "d");
        let text = format!(
            "[[coach.users]]\nid = \"{A}\"\nemail = \"a@example.com\"\n\
             [[coach.users]]\nemail = \"b@example.com\"\nid = \"{B}\"\n\
             [[coach.users]]\nid = \"{c}\"\n\
             [[coach.users]]\nemail = \"d@example.com\"\nid = \"{d}\"\n"
        );
        let batches = prepare(&mut [file(&text)], &shapes()).unwrap().remove(0);
        assert_eq!(batches.len(), 3);
        assert_eq!(batches[0].columns, vec![0, 1]);
        assert_eq!(batches[0].rows, vec![(1, 1), (2, 4)]);
        assert_eq!(
            batches[0].values[1],
            vec![Some("a@example.com".into()), Some("b@example.com".into())]
        );
        assert_eq!(batches[1].columns, vec![0]);
        assert_eq!(batches[1].rows, vec![(3, 7)]);
        assert_eq!(batches[2].rows, vec![(4, 9)]);
    }

    #[test]
    fn every_problem_names_file_line_table_row_and_column() {
        let text = format!(
            "[[coach.users]]\nid = \"{A}\"\nnickname = \"x\"\n\
             [[coach.users]]\nemail = \"b@example.com\"\n\
             [[coach.users]]\nid = \"{B}\"\nage = \"old\"\n\
             [[coach.users]]\nid = \"{A}\"\nage = 1.5\nlevel = 3\n\
             [[coach.users]]\nid = \"{}\"\n\
             [[coach.nope]]\nid = 1\n",
            B.to_uppercase()
        );
        let problems = prepare(&mut [file(&text)], &shapes()).unwrap_err();
        let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        let expected = [
            "seeds/base/010_x.toml:1: coach.users row 1, column `nickname`: unknown column",
            "seeds/base/010_x.toml:4: coach.users row 2, column `id`: primary-key value missing",
            "seeds/base/010_x.toml:9: coach.users row 4, column `age`: expected an integer",
            "seeds/base/010_x.toml:9: coach.users row 4, column `level`: is a generated column",
            "seeds/base/010_x.toml:13: coach.users row 5: same primary key (id) as row 3",
            "seeds/base/010_x.toml:15: coach.nope row 1: table `coach.nope` does not exist",
        ];
        assert_eq!(lines.len(), expected.len(), "{lines:#?}");
        for (line, expected) in lines.iter().zip(expected) {
            assert!(
                line.starts_with(expected),
                "{line}\nshould start with\n{expected}"
            );
        }
    }
}
