//! `_migrate.seed_runs`: one row per seed file loaded or cleared (DESIGN §4).
//!
//! Besides the columns of the contract, each row keeps `action` (`load` or `clear`),
//! `deleted` (rows a clear removed) and `relations` (the tables a load filled, as `regclass`
//! values), so that `seed status` can tell a file whose tables were dropped and recreated
//! since, or cleared, from one whose rows are there.

use std::collections::HashMap;

use tokio_postgres::GenericClient;

use super::load::Counts;
use crate::db::state::unnamed;
use crate::seeds::{SeedFile, SeedSet, UnchangedFiles};

/// Adds the columns this version records to a `seed_runs` table created by an older one.
const ENSURE: &str = "
ALTER TABLE _migrate.seed_runs
    ADD COLUMN IF NOT EXISTS action text NOT NULL DEFAULT 'load',
    ADD COLUMN IF NOT EXISTS deleted bigint NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS relations regclass[],
    ADD COLUMN IF NOT EXISTS table_rows bigint[],
    ADD COLUMN IF NOT EXISTS fingerprint text";

const INSERT: &str = "
INSERT INTO _migrate.seed_runs
    (seed_set, file, checksum, inserted, updated, unchanged, action, deleted, relations,
     table_rows, fingerprint)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8,
        ARRAY(SELECT r FROM unnest($9::text[]) WITH ORDINALITY AS u(n, i), to_regclass(u.n) AS r
              WHERE r IS NOT NULL ORDER BY u.i),
        $10, $11)";

const EXISTS: &str = "
SELECT to_regclass('_migrate.seed_runs') IS NOT NULL,
       EXISTS (SELECT FROM pg_catalog.pg_attribute
               WHERE attrelid = to_regclass('_migrate.seed_runs') AND attname = 'relations'
                 AND NOT attisdropped)";

const LATEST: &str = "
SELECT DISTINCT ON (seed_set, file)
       seed_set, file, checksum,
       to_char(ran_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
       ran_by, inserted, updated, unchanged, {action}, {recreated}
FROM _migrate.seed_runs
ORDER BY seed_set, file, ran_at DESC, id DESC";

/// A relation recorded for a load that no longer exists: dropped (and maybe recreated, with
/// another oid) since.
const RECREATED: &str = "coalesce(EXISTS (SELECT FROM unnest(relations) AS r \
                         WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid = r)), false)";

/// Makes sure `seed_runs` has the columns this version writes (after `state::ensure`).
pub async fn ensure(client: &impl GenericClient) -> anyhow::Result<()> {
    client.batch_execute(ENSURE).await?;
    Ok(())
}

/// Records a load of `file`, which filled `relations` (quoted schema-qualified names; names
/// that resolve to no table are left out) with `table_rows` rows each, and left them with
/// `fingerprint`.
pub async fn record(
    client: &impl GenericClient,
    file: &SeedFile,
    counts: Counts,
    relations: &[String],
    table_rows: &[i64],
    fingerprint: Option<&str>,
) -> anyhow::Result<()> {
    insert(
        client,
        file,
        counts,
        "load",
        0,
        (relations, table_rows, fingerprint),
    )
    .await
}

/// The files of other sets whose latest load filled a table a clear emptied rows of by
/// cascade or trigger: recorded as cleared, since their rows are no longer all there.
const CLEAR_CASCADED: &str = "
INSERT INTO _migrate.seed_runs
    (seed_set, file, checksum, inserted, updated, unchanged, action, deleted, relations)
SELECT r.seed_set, r.file, r.checksum, 0, 0, 0, 'clear', 0, r.relations
FROM (SELECT DISTINCT ON (seed_set, file) seed_set, file, checksum, action, relations
      FROM _migrate.seed_runs ORDER BY seed_set, file, ran_at DESC, id DESC) AS r
WHERE r.action = 'load' AND r.seed_set <> ALL ($1::text[])
  AND r.relations && ARRAY(
      SELECT pg_catalog.to_regclass(pg_catalog.format('%I.%I', split_part(t, '.', 1),
                                                       substr(t, strpos(t, '.') + 1)))
      FROM unnest($2::text[]) AS t)
RETURNING seed_set || '/' || file";

/// After a clear of `sets` removed rows of `tables` (`schema.table`) by cascade or trigger:
/// records every loaded file of another set that filled one of them as cleared, so `seed
/// status` no longer calls it loaded. Returns them as `set/file`.
pub async fn record_cascaded(
    client: &impl GenericClient,
    sets: &[&str],
    tables: &[String],
) -> anyhow::Result<Vec<String>> {
    if tables.is_empty() {
        return Ok(Vec::new());
    }
    Ok(client
        .query(CLEAR_CASCADED, &[&sets, &tables])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect())
}

/// Records that `seed clear` removed `deleted` rows of `file`: it counts as not loaded.
pub async fn record_clear(
    client: &impl GenericClient,
    file: &SeedFile,
    deleted: i64,
) -> anyhow::Result<()> {
    insert(
        client,
        file,
        Counts::default(),
        "clear",
        deleted,
        (&[], &[], None),
    )
    .await
}

async fn insert(
    client: &impl GenericClient,
    file: &SeedFile,
    counts: Counts,
    action: &str,
    deleted: i64,
    (relations, table_rows, fingerprint): (&[String], &[i64], Option<&str>),
) -> anyhow::Result<()> {
    client
        .execute(
            INSERT,
            &[
                &file.set.as_str(),
                &file.name,
                &file.checksum,
                &counts.inserted,
                &counts.updated,
                &counts.unchanged,
                &action,
                &deleted,
                &relations,
                &table_rows,
                &fingerprint,
            ],
        )
        .await?;
    Ok(())
}

/// The latest load or clear of a file.
#[derive(Debug, Clone)]
pub struct SeedRun {
    pub seed_set: String,
    pub file: String,
    pub checksum: String,
    /// RFC 3339, UTC.
    pub ran_at: String,
    pub ran_by: String,
    pub counts: Counts,
    /// `seed clear` removed its rows.
    pub cleared: bool,
    /// A table it filled was dropped since (e.g. `down` then `up`): its rows are gone.
    pub tables_recreated: bool,
}

/// The latest run of every file ever loaded, by set and file name; none before the first.
pub async fn latest(client: &impl GenericClient) -> anyhow::Result<Vec<SeedRun>> {
    let row = &unnamed(client, EXISTS, &[]).await?[0];
    let (exists, current): (bool, bool) = (row.get(0), row.get(1));
    if !exists {
        return Ok(Vec::new());
    }
    // A table written by an older version has no action or relations: loads, still there.
    let sql = if current {
        LATEST
            .replace("{action}", "action = 'clear'")
            .replace("{recreated}", RECREATED)
    } else {
        LATEST
            .replace("{action}", "false")
            .replace("{recreated}", "false")
    };
    Ok(unnamed(client, &sql, &[])
        .await?
        .iter()
        .map(|r| SeedRun {
            seed_set: r.get(0),
            file: r.get(1),
            checksum: r.get(2),
            ran_at: r.get(3),
            ran_by: r.get(4),
            counts: Counts {
                inserted: r.get(5),
                updated: r.get(6),
                unchanged: r.get(7),
            },
            cleared: r.get(8),
            tables_recreated: r.get(9),
        })
        .collect())
}

/// The state of a table's rows, cheap to read: its oid, its row count, an XOR of a hash of
/// every row version's (ctid, xmin), and a hash of its columns (names, types, generated or
/// identity). Any insert, update or delete since, a table dropped and recreated or
/// rewritten, and a column added, dropped, renamed or retyped (the file might no longer fit
/// it) change it.
const TABLE_FINGERPRINT: &str = "
SELECT $1::text::regclass::oid::bigint, count(*),
       coalesce(bit_xor(pg_catalog.hashtextextended(ctid::text || ':' || xmin::text, 0)), 0),
       (SELECT pg_catalog.hashtextextended(string_agg(
                   a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod) || ' '
                   || a.attgenerated::text || a.attidentity::text, ',' ORDER BY a.attnum), 0)
        FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped)
FROM {}";

/// The fingerprint of `relations` (quoted schema-qualified names), one table at a time,
/// each read once per `cache`.
pub async fn fingerprint(
    client: &impl GenericClient,
    relations: &[String],
    cache: &mut HashMap<String, String>,
) -> anyhow::Result<String> {
    let mut parts = Vec::with_capacity(relations.len());
    for name in relations {
        if !cache.contains_key(name) {
            let sql = TABLE_FINGERPRINT.replace("{}", name);
            let row = &unnamed(client, &sql, &[name]).await?[0];
            let (oid, rows, hash, columns): (i64, i64, i64, i64) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            cache.insert(name.clone(), format!("{oid}:{rows}:{hash:x}:{columns:x}"));
        }
        parts.push(cache[name].clone());
    }
    Ok(parts.join(";"))
}

const LAST_LOADS: &str = "
SELECT seed_set, file, checksum, fingerprint, table_rows,
       ARRAY(SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)
             FROM unnest(relations) WITH ORDINALITY AS u(r, i)
             JOIN pg_catalog.pg_class c ON c.oid = u.r
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             ORDER BY u.i),
       ARRAY(SELECT n.nspname || '.' || c.relname
             FROM unnest(relations) WITH ORDINALITY AS u(r, i)
             JOIN pg_catalog.pg_class c ON c.oid = u.r
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             ORDER BY u.i)
FROM (SELECT DISTINCT ON (seed_set, file) *
      FROM _migrate.seed_runs ORDER BY seed_set, file, ran_at DESC, id DESC) AS latest
WHERE action = 'load' AND fingerprint IS NOT NULL
  AND cardinality(relations) = cardinality(table_rows)";

/// The files whose last load's tables nothing has written since (same fingerprint): loading
/// them again, if they are byte-identical, would change nothing.
pub async fn unchanged(client: &impl GenericClient) -> anyhow::Result<UnchangedFiles> {
    let row = &unnamed(client, EXISTS, &[]).await?[0];
    let mut files = UnchangedFiles::new();
    if !(row.get::<_, bool>(0) && row.get::<_, bool>(1)) {
        return Ok(files);
    }
    let has_fingerprints: bool = unnamed(
        client,
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_attribute \
         WHERE attrelid = '_migrate.seed_runs'::regclass AND attname = 'fingerprint' \
         AND NOT attisdropped)",
        &[],
    )
    .await?[0]
        .get(0);
    if !has_fingerprints {
        return Ok(files);
    }
    let mut cache = HashMap::new();
    for row in unnamed(client, LAST_LOADS, &[]).await? {
        let set = match row.get::<_, &str>(0) {
            "test" => SeedSet::Test,
            _ => SeedSet::Base,
        };
        let recorded: String = row.get(3);
        let rows: Vec<i64> = row.get(4);
        let quoted: Vec<String> = row.get(5);
        let names: Vec<String> = row.get(6);
        if quoted.len() != rows.len() {
            continue; // a table it filled is gone
        }
        if fingerprint(client, &quoted, &mut cache).await? == recorded {
            files.insert(
                (set, row.get(1)),
                (row.get(2), names.into_iter().zip(rows).collect()),
            );
        }
    }
    Ok(files)
}

/// The schema-qualified names a `.sql` seed file mentions (`signify.practice_metrics_daily`),
/// as candidates for the relations it fills; the database keeps those that are tables.
pub fn names_in_sql(sql: &str) -> Vec<String> {
    let is_start = |c: char| c.is_ascii_alphabetic() || c == '_';
    let is_part = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$';
    let mut names: Vec<String> = Vec::new();
    let chars: Vec<char> = sql.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let prev_ok = i == 0 || !(is_part(chars[i - 1]) || chars[i - 1] == '.');
        if prev_ok && is_start(chars[i]) {
            let start = i;
            while i < chars.len() && is_part(chars[i]) {
                i += 1;
            }
            if i + 1 < chars.len() && chars[i] == '.' && is_start(chars[i + 1]) {
                i += 1;
                while i < chars.len() && is_part(chars[i]) {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect();
                let followed_by_dot = i < chars.len() && chars[i] == '.';
                if !followed_by_dot && !names.contains(&name) {
                    names.push(name);
                }
            }
        } else {
            i += 1;
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names_of_sql() {
        assert_eq!(
            names_in_sql(
                "-- signify.my_practice_metrics() reads it\n\
                 REFRESH MATERIALIZED VIEW signify.practice_metrics_daily; SELECT 1.5, a.b.c"
            ),
            vec![
                "signify.my_practice_metrics",
                "signify.practice_metrics_daily"
            ]
        );
    }
}
