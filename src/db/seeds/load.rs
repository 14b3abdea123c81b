//! Upserting a batch of seed rows in one statement, and finding the row behind a failure.
//!
//! Each column travels as one `text[]` parameter; PostgreSQL unnests and casts them. One
//! statement updates the existing rows that differ and inserts the missing ones; rows that
//! are equal are not touched, so no trigger fires and no tuple is rewritten. (`INSERT ... ON
//! CONFLICT DO UPDATE ... WHERE` would fire BEFORE INSERT triggers and lock every existing row.)
//! Into an empty table (a fresh database) the rows go with `COPY`, the fastest way in.

use futures_util::SinkExt;
use serde::Serialize;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Transaction;

use super::catalog::ColumnShape;
use crate::db::{describe_db_error, quote_ident, sqlstate};
use crate::seeds::csv::CsvSource;
use crate::seeds::prepare::Batch;

/// What loading did to a table's rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub inserted: i64,
    pub updated: i64,
    pub unchanged: i64,
}

impl Counts {
    pub fn add(&mut self, other: Counts) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
    }
}

/// Why a batch did not load.
#[derive(Debug)]
pub struct LoadError {
    pub error: tokio_postgres::Error,
    /// Row-level security applies to the loading role on this table (it is not the owner and
    /// has no BYPASSRLS, or the table has FORCE ROW LEVEL SECURITY).
    pub rls: bool,
    /// The server refused to start a COPY. tokio-postgres then ends the COPY it never began
    /// with a CopyFail and a second Sync, whose ReadyForQuery answers the *next* request: the
    /// session's replies are out of step, so nothing more may be sent on it (the caller
    /// reports this error and drops the connection, which rolls the transaction back).
    pub session_unusable: bool,
}

impl LoadError {
    fn query(error: tokio_postgres::Error, rls: bool) -> LoadError {
        LoadError {
            error,
            rls,
            session_unusable: false,
        }
    }
}

const EMPTY_AND_RLS: &str =
    "SELECT NOT EXISTS (SELECT FROM {}), row_security_active($1::text::regclass)";

/// Loads one batch; the counts, or PostgreSQL's error.
pub async fn upsert(tx: &Transaction<'_>, batch: &Batch) -> Result<Counts, LoadError> {
    let target = target(batch);
    let row = tx
        .query_one(&EMPTY_AND_RLS.replace("{}", &target), &[&target])
        .await
        .map_err(|e| LoadError::query(e, false))?;
    let (empty, rls): (bool, bool) = (row.get(0), row.get(1));
    // Under row-level security a table can look empty while it is not, and COPY FROM refuses
    // to run at all: the statement goes through the policies like any INSERT.
    if empty && !rls {
        let inserted = match &batch.csv {
            Some((source, _)) => copy_csv(tx, batch, source).await?,
            None => copy_in(tx, batch).await?,
        };
        return Ok(Counts {
            inserted: inserted as i64,
            updated: 0,
            unchanged: batch.len() as i64 - inserted as i64,
        });
    }
    let batch = batch.materialized();
    let (inserted, updated) = run(tx, &upsert_sql(&batch), &batch, batch.len())
        .await
        .map_err(|e| LoadError::query(e, rls))?;
    Ok(Counts {
        inserted,
        updated,
        unchanged: batch.len() as i64 - inserted - updated,
    })
}

/// Runs the batch statement over the first `rows` rows.
async fn run(
    tx: &Transaction<'_>,
    sql: &str,
    batch: &Batch,
    rows: usize,
) -> Result<(i64, i64), tokio_postgres::Error> {
    let sliced: Vec<&[Option<String>]> = batch.values.iter().map(|v| &v[..rows]).collect();
    let params: Vec<&(dyn ToSql + Sync)> =
        sliced.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
    let row = tx.query_one(sql, &params).await?;
    Ok((row.get(0), row.get(1)))
}

fn target(batch: &Batch) -> String {
    format!(
        "{}.{}",
        quote_ident(&batch.table.schema),
        quote_ident(&batch.table.name)
    )
}

/// `COPY ... FROM STDIN (FORMAT csv, HEADER)` of a CSV file's text as it is: for an empty
/// table. The server reads values and NULLs as the file's rules say, as `psql \copy` would.
async fn copy_csv(
    tx: &Transaction<'_>,
    batch: &Batch,
    source: &CsvSource,
) -> Result<u64, LoadError> {
    let names: Vec<String> = source.header.iter().map(|n| quote_ident(n)).collect();
    let chunks = source
        .text
        .as_bytes()
        .chunks(COPY_CHUNK)
        .map(<[u8]>::to_vec);
    copy(tx, batch, &names, " (FORMAT csv, HEADER true)", chunks).await
}

/// `COPY target (names) FROM STDIN options`, sending `chunks`; the rows copied. A COPY the
/// server refuses to start leaves the session unusable (see `LoadError`).
async fn copy(
    tx: &Transaction<'_>,
    batch: &Batch,
    names: &[String],
    options: &str,
    chunks: impl Iterator<Item = Vec<u8>>,
) -> Result<u64, LoadError> {
    let sink = tx
        .copy_in::<_, std::io::Cursor<Vec<u8>>>(&format!(
            "COPY {} ({}) FROM STDIN{options}",
            target(batch),
            names.join(", ")
        ))
        .await
        .map_err(|error| LoadError {
            error,
            rls: false,
            session_unusable: true,
        })?;
    futures_util::pin_mut!(sink);
    for chunk in chunks {
        sink.send(std::io::Cursor::new(chunk))
            .await
            .map_err(|e| LoadError::query(e, false))?;
    }
    sink.as_mut()
        .finish()
        .await
        .map_err(|e| LoadError::query(e, false))
}

/// The row and column a failed CSV `COPY` names in its context (`COPY items, line 3, column
/// price: "x"`): line 1 is the header, so line n is row n - 1.
fn copy_context(batch: &Batch, error: &tokio_postgres::Error) -> Option<Failure> {
    batch.csv.as_ref()?;
    let context = error.as_db_error()?.where_()?;
    let rest = &context[context.find(", line ")? + ", line ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let line: usize = digits.parse().ok()?;
    let row = *batch.rows.get(line.checked_sub(2)?)?;
    let column = rest
        .split_once(", column ")
        .and_then(|(_, c)| c.split_once(':').map(|(name, _)| name.to_string()));
    Some(Failure {
        row: Some(row),
        column,
        message: message(error),
        bad_input: is_bad_input(error),
    })
}

/// What the rows of a COPY are sent in.
const COPY_CHUNK: usize = 1 << 20;

/// `COPY ... FROM STDIN` of the batch in text format: for an empty table, where every row is
/// new. The rows inserted.
async fn copy_in(tx: &Transaction<'_>, batch: &Batch) -> Result<u64, LoadError> {
    let names: Vec<String> = batch
        .columns
        .iter()
        .map(|&i| quote_ident(&batch.table.columns[i].name))
        .collect();
    // Rows in COPY's text format, about COPY_CHUNK bytes at a time.
    let mut row = 0;
    let chunks = std::iter::from_fn(move || {
        if row >= batch.len() {
            return None;
        }
        let mut chunk = String::with_capacity(COPY_CHUNK + 4096);
        while row < batch.len() && chunk.len() < COPY_CHUNK {
            for (c, values) in batch.values.iter().enumerate() {
                if c > 0 {
                    chunk.push('\t');
                }
                match &values[row] {
                    Some(text) => copy_escape(text, &mut chunk),
                    None => chunk.push_str("\\N"),
                }
            }
            chunk.push('\n');
            row += 1;
        }
        Some(chunk.into_bytes())
    });
    copy(tx, batch, &names, "", chunks).await
}

/// COPY's text format: backslash, tab, newline and carriage return are escaped.
fn copy_escape(text: &str, out: &mut String) {
    if !text.contains(['\\', '\t', '\n', '\r']) {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// Deletes the batch's rows by primary key; the rows deleted.
pub async fn delete(tx: &Transaction<'_>, batch: &Batch) -> Result<u64, tokio_postgres::Error> {
    let batch = &*batch.materialized();
    let table = &batch.table;
    let keys: Vec<(usize, &ColumnShape)> = batch
        .columns
        .iter()
        .enumerate()
        .map(|(slot, &i)| (slot, &table.columns[i]))
        .filter(|(_, c)| table.primary_key.contains(&c.name))
        .collect();
    let casts: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(n, (_, c))| format!("u.c{}::{} AS {}", n + 1, c.cast_type, quote_ident(&c.name)))
        .collect();
    let params: Vec<String> = (1..=keys.len()).map(|n| format!("${n}::text[]")).collect();
    let aliases: Vec<String> = (1..=keys.len()).map(|n| format!("c{n}")).collect();
    let key_match = table
        .primary_key
        .iter()
        .map(|k| format!("t.{k} = s.{k}", k = quote_ident(k)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let sql = format!(
        "DELETE FROM {} AS t USING (SELECT {} FROM unnest({}) AS u({})) AS s WHERE {key_match}",
        target(batch),
        casts.join(", "),
        params.join(", "),
        aliases.join(", ")
    );
    let values: Vec<&Vec<Option<String>>> =
        keys.iter().map(|(slot, _)| &batch.values[*slot]).collect();
    let params: Vec<&(dyn ToSql + Sync)> =
        values.iter().map(|v| *v as &(dyn ToSql + Sync)).collect();
    tx.execute(&sql, &params).await
}

/// The statement for a batch: `$n` is the n-th column's values as `text[]`.
pub fn upsert_sql(batch: &Batch) -> String {
    let table = &batch.table;
    let target = target(batch);
    let columns: Vec<&ColumnShape> = batch.columns.iter().map(|&i| &table.columns[i]).collect();
    let names: Vec<String> = columns.iter().map(|c| quote_ident(&c.name)).collect();
    let params: Vec<String> = (1..=columns.len())
        .map(|n| format!("${n}::text[]"))
        .collect();
    let aliases: Vec<String> = (1..=columns.len()).map(|n| format!("c{n}")).collect();
    let casts: Vec<String> = columns
        .iter()
        .zip(&names)
        .zip(&aliases)
        .map(|((c, name), alias)| format!("u.{alias}::{} AS {name}", c.cast_type))
        .collect();
    let key_match = table
        .primary_key
        .iter()
        .map(|k| format!("t.{k} = s.{k}", k = quote_ident(k)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let others: Vec<&String> = columns
        .iter()
        .zip(&names)
        .filter(|(c, _)| !table.primary_key.contains(&c.name))
        .map(|(_, n)| n)
        .collect();
    let overriding = if columns.iter().any(|c| c.identity_always) {
        " OVERRIDING SYSTEM VALUE"
    } else {
        ""
    };
    let mut sql = format!(
        "WITH src AS MATERIALIZED (\n  SELECT {}\n  FROM unnest({}) AS u({})\n)",
        casts.join(", "),
        params.join(", "),
        aliases.join(", ")
    );
    if others.is_empty() {
        sql.push_str(", updated AS (SELECT 1 WHERE false)");
    } else {
        let set: Vec<String> = others.iter().map(|n| format!("{n} = s.{n}")).collect();
        // Compared as PostgreSQL prints them, not with each type's `=`: that operator calls
        // `River@x` and `river@x` equal for citext, 7.5 and 7.50 for numeric, `1 day` and
        // `24 hours` for interval, so a changed value would be left unwritten (and json,
        // xml and point have no `=` at all).
        let side = |prefix: &str| {
            others
                .iter()
                .map(|n| format!("{prefix}.{n}::text"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        sql.push_str(&format!(
            ", updated AS (\n  UPDATE {target} AS t SET {}\n  FROM src AS s\n  \
             WHERE {key_match} AND ROW({}) IS DISTINCT FROM ROW({})\n  RETURNING 1\n)",
            set.join(", "),
            side("t"),
            side("s")
        ));
    }
    sql.push_str(&format!(
        ", inserted AS (\n  INSERT INTO {target} AS t ({cols}){overriding}\n  \
         SELECT {cols} FROM src AS s\n  \
         WHERE NOT EXISTS (SELECT 1 FROM {target} AS t WHERE {key_match})\n  RETURNING 1\n)\n\
         SELECT (SELECT count(*) FROM inserted), (SELECT count(*) FROM updated)",
        cols = names.join(", ")
    ));
    sql
}

/// A sequence moved (or with `--dry-run`, to be moved) past the explicit values loaded into
/// its identity or serial column.
#[derive(Debug, Clone, Serialize)]
pub struct SequenceMove {
    pub sequence: String,
    /// `schema.table.column`.
    pub column: String,
    /// The sequence's last value afterwards: the next value it gives is one more.
    pub value: i64,
}

/// Moves the sequence behind every identity or serial column a batch gave explicit values
/// to, so that the application's next insert does not collide: to the column's maximum, never
/// backwards (a sequence already past it, or counting down, is left alone). Sequences do not
/// roll back, so with `dry_run` nothing is moved: the report says where they would go.
pub async fn follow_sequences(
    tx: &Transaction<'_>,
    batches: &[&Batch],
    dry_run: bool,
) -> Result<Vec<SequenceMove>, tokio_postgres::Error> {
    // (table, column, sequence, schema.table.column)
    let mut seen: Vec<(String, String, String, String)> = Vec::new();
    for batch in batches {
        for &i in &batch.columns {
            let column = &batch.table.columns[i];
            if let Some(sequence) = &column.sequence {
                let key = (
                    target(batch),
                    quote_ident(&column.name),
                    sequence.clone(),
                    format!("{}.{}", batch.table.qualified(), column.name),
                );
                if !seen.contains(&key) {
                    seen.push(key);
                }
            }
        }
    }
    let mut moves = Vec::new();
    for (table, column, sequence, shown) in seen {
        let value = if dry_run {
            "m.max"
        } else {
            "pg_catalog.setval(s.seqrelid, m.max)"
        };
        let sql = format!(
            "SELECT {value} FROM (SELECT max({column})::bigint AS max FROM {table}) AS m, \
             pg_catalog.pg_sequence AS s \
             WHERE s.seqrelid = $1::text::regclass AND s.seqincrement > 0 AND m.max IS NOT NULL \
               AND m.max >= (SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END \
                             FROM {sequence})"
        );
        if let Some(row) = tx.query_opt(&sql, &[&sequence]).await? {
            moves.push(SequenceMove {
                column: shown,
                sequence,
                value: row.get(0),
            });
        }
    }
    Ok(moves)
}

/// Where a batch failed: the row and column when they can be found, and PostgreSQL's error.
#[derive(Debug)]
pub struct Failure {
    /// 1-based index of the row among its table's rows in the file, and the row's line.
    pub row: Option<(usize, usize)>,
    pub column: Option<String>,
    pub message: String,
    /// A data or constraint error: the seed file is at fault (exit 2).
    pub bad_input: bool,
}

/// A data exception (22), an integrity constraint violation (23), or a privilege or policy
/// that refuses the rows (42501: no INSERT/UPDATE privilege, or a row-level security policy).
fn is_bad_input(e: &tokio_postgres::Error) -> bool {
    e.code()
        .is_some_and(|c| sqlstate::is_bad_data(c) || *c == SqlState::INSUFFICIENT_PRIVILEGE)
}

fn message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => describe_db_error(db),
        None => crate::db::chain(e),
    }
}

/// A batch that did not load: the row at fault (when it could be found), and whether
/// row-level security applies to the loading role on its table.
#[derive(Debug)]
pub struct BatchFailure {
    pub failure: Failure,
    pub rls: bool,
}

/// Upserts one batch inside a savepoint, so that a failure leaves the transaction usable for
/// finding the row at fault. It is released on success: left open, every batch would nest
/// one subtransaction deeper (each level keeps its own state until the commit).
pub async fn upsert_in_savepoint(
    tx: &Transaction<'_>,
    batch: &Batch,
) -> anyhow::Result<Result<Counts, BatchFailure>> {
    tx.batch_execute("SAVEPOINT seed_batch").await?;
    match upsert(tx, batch).await {
        Ok(counts) => {
            tx.batch_execute("RELEASE SAVEPOINT seed_batch").await?;
            Ok(Ok(counts))
        }
        Err(e) if e.session_unusable => Ok(Err(BatchFailure {
            failure: unlocated(&e.error),
            rls: e.rls,
        })),
        Err(e) => {
            tx.batch_execute("ROLLBACK TO SAVEPOINT seed_batch").await?;
            Ok(Err(BatchFailure {
                failure: locate(tx, batch, e.error).await?,
                rls: e.rls,
            }))
        }
    }
}

const DELETED_PER_TABLE: &str = "
SELECT schemaname || '.' || relname, n_tup_del
FROM pg_catalog.pg_stat_xact_user_tables WHERE n_tup_del > 0";

/// Rows deleted in this transaction so far, per table (`schema.table`), by the database's own
/// counts: what `ON DELETE CASCADE` and triggers removed included.
pub async fn deleted_per_table(tx: &Transaction<'_>) -> anyhow::Result<Vec<(String, i64)>> {
    Ok(tx
        .query(DELETED_PER_TABLE, &[])
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect())
}

/// A failure whose row is not looked for: not the data's fault, or the session cannot be
/// used any more.
pub fn unlocated(error: &tokio_postgres::Error) -> Failure {
    Failure {
        row: None,
        column: None,
        message: message(error),
        bad_input: is_bad_input(error),
    }
}

/// Finds the first row whose inclusion makes the batch fail, by bisecting over prefixes of
/// the batch (rows may depend on earlier rows of the same batch), each attempt inside a
/// savepoint that is rolled back. Then the column: the one PostgreSQL names, or the first
/// whose value does not cast. The transaction must be usable (rolled back to a savepoint
/// taken before the batch).
pub async fn locate(
    tx: &Transaction<'_>,
    batch: &Batch,
    error: tokio_postgres::Error,
) -> anyhow::Result<Failure> {
    if !is_bad_input(&error) || batch.is_empty() {
        return Ok(unlocated(&error));
    }
    if let Some(failure) = copy_context(batch, &error) {
        return Ok(failure);
    }
    let batch = &*batch.materialized();
    let sql = upsert_sql(batch);
    let (mut good, mut bad, mut error) = (0, batch.len(), error);
    while bad - good > 1 {
        let mid = good + (bad - good) / 2;
        tx.batch_execute("SAVEPOINT seed_probe").await?;
        let result = run(tx, &sql, batch, mid).await;
        tx.batch_execute("ROLLBACK TO SAVEPOINT seed_probe").await?;
        match result {
            Ok(_) => good = mid,
            Err(e) if is_bad_input(&e) => {
                bad = mid;
                error = e;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let row = bad - 1;
    let mut column = error
        .as_db_error()
        .and_then(|db| db.column())
        .map(str::to_string);
    let mut text = message(&error);
    if column.is_none() && sqlstate::error_is(&error, sqlstate::is_data_exception) {
        for (slot, &i) in batch.columns.iter().enumerate() {
            let c = &batch.table.columns[i];
            tx.batch_execute("SAVEPOINT seed_probe").await?;
            let cast = format!("SELECT $1::text::{}", c.type_name);
            let result = tx.query_one(&cast, &[&batch.values[slot][row]]).await;
            tx.batch_execute("ROLLBACK TO SAVEPOINT seed_probe").await?;
            if let Err(e) = result {
                column = Some(c.name.clone());
                text = message(&e);
                break;
            }
        }
    }
    Ok(Failure {
        row: Some(batch.rows[row]),
        column,
        message: text,
        bad_input: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::seeds::catalog::TableShape;
    use crate::seeds::value::Kind;

    fn column(name: &str, type_name: &str) -> ColumnShape {
        ColumnShape {
            name: name.into(),
            type_name: type_name.into(),
            cast_type: type_name.into(),
            kind: Kind::Other,
            generated: false,
            identity_always: false,
            sequence: None,
        }
    }

    fn batch(columns: Vec<usize>) -> Batch {
        Batch {
            table: TableShape {
                schema: "partner".into(),
                name: "relationship_members".into(),
                columns: vec![
                    column("relationship_id", "uuid"),
                    column("user_id", "uuid"),
                    column("role", "text"),
                    column("extra", "json"),
                ],
                primary_key: vec!["relationship_id".into(), "user_id".into()],
            },
            values: vec![Vec::new(); columns.len()],
            columns,
            rows: Vec::new(),
            csv: None,
        }
    }

    #[test]
    fn statement_updates_differing_rows_and_inserts_missing_ones() {
        let sql = upsert_sql(&batch(vec![0, 1, 2, 3]));
        assert!(sql.contains(
            "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(c1, c2, c3, c4)"
        ));
        assert!(sql.contains("u.c1::uuid AS \"relationship_id\""));
        assert!(sql.contains(
            "WHERE t.\"relationship_id\" = s.\"relationship_id\" AND t.\"user_id\" = s.\"user_id\" \
             AND ROW(t.\"role\"::text, t.\"extra\"::text) IS DISTINCT FROM \
             ROW(s.\"role\"::text, s.\"extra\"::text)"
        ));
        assert!(sql.contains("SET \"role\" = s.\"role\", \"extra\" = s.\"extra\""));
        assert!(sql.contains("WHERE NOT EXISTS"));
    }

    #[test]
    fn copy_text_escapes() {
        let mut out = String::new();
        copy_escape("plain", &mut out);
        copy_escape("a\tb\nc\\d\re", &mut out);
        assert_eq!(out, "plaina\\tb\\nc\\\\d\\re");
    }

    #[test]
    fn key_only_rows_are_only_inserted() {
        let sql = upsert_sql(&batch(vec![0, 1]));
        assert!(!sql.contains("UPDATE"));
        assert!(sql.contains("updated AS (SELECT 1 WHERE false)"));
    }
}
