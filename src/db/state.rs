//! The `_migrate` schema (DESIGN §4). Column names are part of the contract: DBAs and CI
//! query them.

use std::time::SystemTime;

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, GenericClient};

use crate::migrations::plan::AppliedMigration;
use crate::migrations::Migration;

pub const TOOL_VERSION: &str = concat!("migrate ", env!("CARGO_PKG_VERSION"));

const CREATE: &str = "
CREATE SCHEMA IF NOT EXISTS _migrate;
REVOKE ALL ON SCHEMA _migrate FROM PUBLIC;
CREATE TABLE IF NOT EXISTS _migrate.schema_migrations (
    version      bigint PRIMARY KEY,
    name         text NOT NULL,
    checksum     text NOT NULL,
    applied_at   timestamptz NOT NULL DEFAULT now(),
    applied_by   text NOT NULL DEFAULT current_user,
    duration_ms  bigint NOT NULL DEFAULT 0,
    tool_version text NOT NULL,
    dirty        boolean NOT NULL DEFAULT false
);
CREATE TABLE IF NOT EXISTS _migrate.history (
    id           bigserial PRIMARY KEY,
    version      bigint,
    name         text,
    direction    text NOT NULL CHECK (direction IN ('up', 'down', 'baseline', 'repair')),
    checksum     text,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL,
    success      boolean NOT NULL,
    error        text,
    applied_by   text NOT NULL DEFAULT current_user,
    tool_version text NOT NULL,
    note         text,
    warnings     text[]
);
CREATE TABLE IF NOT EXISTS _migrate.seed_runs (
    id        bigserial PRIMARY KEY,
    seed_set  text NOT NULL,
    file      text NOT NULL,
    checksum  text NOT NULL,
    inserted  bigint NOT NULL,
    updated   bigint NOT NULL,
    unchanged bigint NOT NULL,
    ran_at    timestamptz NOT NULL DEFAULT now(),
    ran_by    text NOT NULL DEFAULT current_user
);
REVOKE ALL ON ALL TABLES IN SCHEMA _migrate FROM PUBLIC;
";

/// Moved on by every run that takes the migration lock, before it changes anything (see
/// `ensure`); the tracking rows of a run on the session-level lock check that nobody moved it
/// since (`record_step`). Created with the tables, and added to older state schemas.
const CREATE_GENERATION: &str = "CREATE SEQUENCE IF NOT EXISTS _migrate.lock_generation; \
     REVOKE ALL ON SEQUENCE _migrate.lock_generation FROM PUBLIC";

/// The next lock generation (this run's), as `ensure` takes it.
const NEXT_GENERATION: &str = "SELECT pg_catalog.nextval('_migrate.lock_generation')";

const EXISTS: &str = "SELECT to_regclass('_migrate.schema_migrations') IS NOT NULL";

/// What the state schema holds, in one round trip: the tables, the `warnings` column added
/// after the first release, and `record_step` exactly as this version defines it (`$1`: its
/// body): a function of another version, or one somebody replaced, is replaced. And whether
/// the session reads strings as migrate splits files (`standard_conforming_strings`).
const INSPECT: &str = "SELECT to_regclass('_migrate.schema_migrations') IS NOT NULL, \
     EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = \
     to_regclass('_migrate.history') AND attname = 'warnings' AND NOT attisdropped), \
     EXISTS (SELECT 1 FROM pg_catalog.pg_proc p WHERE p.oid = \
     to_regprocedure('_migrate.record_step(text, bigint, text, text, text, text, boolean, bigint)') \
     AND p.prosrc = $1 AND NOT p.prosecdef AND p.prorettype = 'pg_catalog.void'::pg_catalog.regtype \
     AND p.proconfig = ARRAY['search_path=pg_catalog']), \
     pg_catalog.current_setting('standard_conforming_strings') = 'on', \
     to_regclass('_migrate.lock_generation') IS NOT NULL";

/// Columns added after the first release, for state tables an older version created.
const UPGRADE: &str = "ALTER TABLE _migrate.history ADD COLUMN IF NOT EXISTS warnings text[]";

/// The tracking rows of one transactional migration, written by the engine at the end of the
/// migration's own transaction, after it has reset the session to the connecting role and
/// turned the timeouts off (`SECURITY INVOKER`: the rows are written, and `applied_by` is
/// named, as that role). One function call instead of a `DO` block and two `INSERT`s per
/// migration: PL/pgSQL compiles the function and plans its statements once per session,
/// where each `DO` block and each literal `INSERT` was parsed and planned anew (about a
/// quarter of a millisecond per migration on the server).
///
/// Errors: `MG003` when the migration ended the transaction migrate ran it in
/// (`IN_MIGRATION` is false). `MG004` when `check_lock` and the migration released the
/// session-level migration lock (`pg_advisory_unlock_all()`, `DISCARD ALL`) and another run
/// took it: another session holds it now, or the lock generation is no longer `generation`,
/// this run's (another run took it and let it go meanwhile). `pg_try_advisory_lock` is true
/// when this session holds the lock (it is re-entrant) or nobody does: O(1), where reading
/// `pg_locks` would copy the whole lock table; each call adds one hold, released with the
/// session. `pg_sequence_last_value` reads the generation without a scan.
pub(crate) fn record_step_function() -> String {
    format!(
        "DROP FUNCTION IF EXISTS _migrate.record_step(text, bigint, text, text, text, text, \
         boolean); \
         CREATE OR REPLACE FUNCTION _migrate.record_step(direction text, version bigint, \
         name text, checksum text, tool_version text, note text, check_lock boolean, \
         generation bigint) RETURNS void LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog AS \
         $fn${}$fn$",
        record_step_body()
    )
}

/// How the engine begins a migration's transaction. `DEFERRABLE` changes nothing there (it
/// only matters to a `SERIALIZABLE READ ONLY` transaction) but marks it: see `IN_MIGRATION`.
pub const BEGIN: &str = "BEGIN DEFERRABLE";

/// True while the session is still in the transaction the engine began for a migration
/// (`BEGIN`, then `SET LOCAL migrate.in_migration = 'on'`). Either mark is enough, and a
/// transaction the migration's own `COMMIT` or `ROLLBACK` left behind (the rest of its
/// message runs in one; so does a `BEGIN` of its own) has neither:
/// - the `SET LOCAL` marker, which `RESET ALL` in the migration clears too;
/// - `transaction_deferrable`, which `RESET ALL` leaves alone (PostgreSQL's
///   `GUC_NO_RESET_ALL`) and which a new transaction takes from
///   `default_transaction_deferrable` (when that is on, a migration that commits part of
///   itself and then succeeds is recorded as applied: all of it took effect), or from the
///   one it follows after `COMMIT AND CHAIN` (all of it took effect) or `ROLLBACK AND CHAIN`
///   (part of it was undone). So it counts only while `migrate.flight` is not `between`:
///   the engine sets it so, and commits that, before each migration's `BEGIN`, then to the
///   migration's own value; a rollback of the migration's transaction brings `between` back,
///   where `RESET ALL` clears it (a `RESET ALL` after a hidden `ROLLBACK AND CHAIN` is not
///   told apart).
pub const IN_MIGRATION: &str = "coalesce(pg_catalog.current_setting('migrate.in_migration', \
     true), '') OPERATOR(pg_catalog.=) 'on' OR \
     (pg_catalog.current_setting('transaction_deferrable') OPERATOR(pg_catalog.=) 'on' AND \
     coalesce(pg_catalog.current_setting('migrate.flight', true), '') \
     OPERATOR(pg_catalog.<>) 'between')";

/// The body of `_migrate.record_step` (see `record_step_function`).
fn record_step_body() -> String {
    let held = lock_held("generation");
    format!(
        "
BEGIN
    IF NOT ({IN_MIGRATION}) THEN
        RAISE EXCEPTION USING ERRCODE = 'MG003', MESSAGE = 'the migration ended the \
         transaction migrate ran it in (a COMMIT or ROLLBACK the file check did not see, or a \
         procedure that commits)';
    END IF;
    IF check_lock AND NOT ({held}) THEN
        RAISE EXCEPTION USING ERRCODE = 'MG004', MESSAGE = 'the migration released the \
         migration lock this run holds (pg_advisory_unlock_all(), DISCARD ALL), and another \
         run has taken it since';
    END IF;
    IF direction = 'down' THEN
        DELETE FROM _migrate.schema_migrations s WHERE s.version = record_step.version;
    ELSE
        INSERT INTO _migrate.schema_migrations
            (version, name, checksum, applied_by, duration_ms, tool_version, dirty)
        VALUES (record_step.version, record_step.name, record_step.checksum, current_user,
            (date_part('epoch', clock_timestamp() - now()) * 1000)::bigint,
            record_step.tool_version, false);
    END IF;
    INSERT INTO _migrate.history (version, name, direction, checksum, started_at,
        finished_at, success, error, tool_version, note)
    VALUES (record_step.version, record_step.name, record_step.direction,
        record_step.checksum, now(), clock_timestamp(), true, NULL,
        record_step.tool_version, record_step.note);
END
"
    )
}

const SELECT_APPLIED: &str = "
SELECT version, name, checksum, applied_at, applied_by, duration_ms, tool_version, dirty
FROM _migrate.schema_migrations ORDER BY version";

const INSERT_APPLIED: &str = "
INSERT INTO _migrate.schema_migrations
    (version, name, checksum, applied_by, duration_ms, tool_version, dirty)
VALUES ($1, $2, $3, current_user, $4, $5, $6)";

const DELETE_APPLIED: &str = "DELETE FROM _migrate.schema_migrations WHERE version = $1";

const INSERT_HISTORY: &str = "
INSERT INTO _migrate.history
    (version, name, direction, checksum, started_at, finished_at, success, error, tool_version,
     note, warnings)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

/// A `transaction: none` migration that finished: clean for `up` (with its duration), gone
/// for `down`; and its history line, in one statement.
const FINISH_UP: &str = "
WITH applied AS (
    UPDATE _migrate.schema_migrations
    SET dirty = false, duration_ms = $4, applied_at = pg_catalog.now()
    WHERE version = $1
)
INSERT INTO _migrate.history
    (version, name, direction, checksum, started_at, finished_at, success, error, tool_version, note)
VALUES ($1, $2, 'up', $3, $5, pg_catalog.clock_timestamp(), true, NULL, $6, $7)";

const FINISH_DOWN: &str = "
WITH reverted AS (
    DELETE FROM _migrate.schema_migrations WHERE version = $1
)
INSERT INTO _migrate.history
    (version, name, direction, checksum, started_at, finished_at, success, error, tool_version, note)
VALUES ($1, $2, 'down', $3, $4, pg_catalog.clock_timestamp(), true, NULL, $5, $6)";

/// The server's warnings of a migration whose history line its own transaction wrote.
const ADD_WARNINGS: &str = "
UPDATE _migrate.history SET warnings = $3
WHERE id = (SELECT max(id) FROM _migrate.history WHERE version = $1 AND direction = $2)";

/// Runs `sql` as an unnamed statement (one round trip, and nothing left on the server's
/// connection, so it works through a transaction-mode pooler); parameter types come from
/// the server. Every read a command may make through a pooler goes through here: a named
/// statement (`query(&str)`) is parsed and closed in separate round trips, which a
/// transaction pooler may send to different server connections, leaving `s0` behind.
pub(crate) async fn unnamed(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
    let typed: Vec<(&(dyn ToSql + Sync), Type)> =
        params.iter().map(|p| (*p, type_of(*p))).collect();
    client.query_typed(sql, &typed).await
}

/// `unnamed` for a statement whose rows do not matter.
async fn execute(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<(), tokio_postgres::Error> {
    unnamed(client, sql, params).await.map(|_| ())
}

/// The PostgreSQL type each Rust value here binds as (`query_typed` needs it spelled out).
fn type_of(value: &(dyn ToSql + Sync)) -> Type {
    // Our parameters are i64, &str/String (and Options of them), SystemTime, bool, and
    // string arrays: tell them apart by what accepts them.
    for ty in [
        Type::INT8,
        Type::BOOL,
        Type::TIMESTAMPTZ,
        Type::TEXT_ARRAY,
        Type::TEXT,
    ] {
        let mut buf = bytes::BytesMut::new();
        if value.to_sql_checked(&ty, &mut buf).is_ok() {
            return ty;
        }
    }
    Type::UNKNOWN
}

/// Creates the state tables on first use, then moves the lock generation on and returns
/// this run's: callers hold the migration lock, and call this before they change anything, so
/// a run whose migration let the lock go learns that another run took it meanwhile.
pub async fn ensure(client: &Client) -> anyhow::Result<i64> {
    super::session::before_any_migration(create_or_upgrade(client).await)
}

/// `ensure`, without its answer to a signal.
async fn create_or_upgrade(client: &Client) -> anyhow::Result<i64> {
    let row = &unnamed(client, INSPECT, &[&record_step_body()]).await?[0];
    let (tables, warnings, function): (bool, bool, bool) = (row.get(0), row.get(1), row.get(2));
    let generation: bool = row.get(4);
    if !row.get::<_, bool>(3) {
        return Err(crate::error::Error::input(
            "this session has standard_conforming_strings = off (a database or role default, or \
             the connection's options): migrate splits migration files into statements as \
             PostgreSQL does with it on, its default, and with it off a backslash in a string \
             could end a statement (or hide a COMMIT) where migrate does not see one; turn it \
             on for the role that migrates (ALTER ROLE ... SET standard_conforming_strings = \
             on) or remove the option"
                .to_string(),
        )
        .into());
    }
    let upgrade = async {
        if !tables {
            client.batch_execute(CREATE).await?;
        } else if !warnings {
            client.batch_execute(UPGRADE).await?;
        }
        if !generation {
            client.batch_execute(CREATE_GENERATION).await?;
        }
        if !tables || !function {
            client.batch_execute(&record_step_function()).await?;
        }
        Ok::<(), tokio_postgres::Error>(())
    };
    match upgrade.await {
        Err(e)
            if tables
                && e.code() == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) =>
        {
            return Err(crate::error::Error::refused(format!(
                "migrate's state schema _migrate was made by an older version and must be \
                 brought up to this one's (history.warnings, the sequence lock_generation, the \
                 function record_step), which only its owner may do ({}): run this command once \
                 as the owner of _migrate; nothing was done",
                crate::db::chain(&e)
            ))
            .into())
        }
        result => result?,
    }
    match unnamed(client, NEXT_GENERATION, &[]).await {
        Ok(rows) => Ok(rows[0].get(0)),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) => {
            Err(crate::error::Error::refused(
                "the connecting role may not use the sequence _migrate.lock_generation, which \
                 every run that writes moves on when it takes the migration lock: grant it as \
                 the owner of _migrate (GRANT USAGE ON SEQUENCE _migrate.lock_generation TO \
                 <this role>), or migrate as that owner; nothing was done"
                    .to_string(),
            )
            .into())
        }
        Err(e) => Err(e.into()),
    }
}

/// `ensure` in a transaction of its own that holds the transaction-level migration lock
/// (through a transaction pooler, where the session-level lock cannot be held).
pub async fn ensure_under_xact_lock(
    session: &super::Session,
    lock_wait: std::time::Duration,
) -> anyhow::Result<i64> {
    let client = &session.client;
    client.batch_execute("BEGIN").await?;
    super::lock::acquire_xact(session, lock_wait).await?;
    let created = ensure(client).await;
    client
        .batch_execute(if created.is_ok() {
            "COMMIT"
        } else {
            "ROLLBACK"
        })
        .await?;
    created
}

/// The applied migrations, in version order; none when the state tables do not exist yet.
pub async fn applied(client: &impl GenericClient) -> anyhow::Result<Vec<AppliedMigration>> {
    let exists: bool = unnamed(client, EXISTS, &[]).await?[0].get(0);
    if !exists {
        return Ok(Vec::new());
    }
    applied_rows(&unnamed(client, SELECT_APPLIED, &[]).await?)
}

/// `applied` with one statement instead of two, on a session outside a transaction: the read
/// itself, whose "no such table" (which would abort a transaction) is the answer "none".
pub async fn applied_outside_transaction(client: &Client) -> anyhow::Result<Vec<AppliedMigration>> {
    match unnamed(client, SELECT_APPLIED, &[]).await {
        Ok(rows) => applied_rows(&rows),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => {
            Ok(Vec::new())
        }
        Err(e) => Err(e.into()),
    }
}

/// `applied_at` is formatted here (RFC 3339, UTC, milliseconds, as `to_char` wrote it before):
/// `to_char` on the server took most of the query's time.
fn applied_rows(rows: &[tokio_postgres::Row]) -> anyhow::Result<Vec<AppliedMigration>> {
    Ok(rows
        .iter()
        .map(|r| AppliedMigration {
            version: r.get(0),
            name: r.get(1),
            checksum: r.get(2),
            applied_at: humantime::format_rfc3339_millis(r.get::<_, SystemTime>(3)).to_string(),
            applied_by: r.get(4),
            duration_ms: r.get(5),
            tool_version: r.get(6),
            dirty: r.get(7),
        })
        .collect())
}

/// Reads the applied history inside a read-only transaction (for --dry-run).
pub async fn applied_read_only(client: &mut Client) -> anyhow::Result<Vec<AppliedMigration>> {
    let tx = client.build_transaction().read_only(true).start().await?;
    let applied = applied(&tx).await?;
    tx.commit().await?;
    Ok(applied)
}

pub async fn record_applied(
    client: &impl GenericClient,
    migration: &Migration,
    duration_ms: i64,
    dirty: bool,
) -> anyhow::Result<()> {
    execute(
        client,
        INSERT_APPLIED,
        &[
            &migration.version,
            &migration.name,
            &migration.checksum,
            &duration_ms,
            &TOOL_VERSION,
            &dirty,
        ],
    )
    .await?;
    Ok(())
}

pub async fn forget_applied(client: &impl GenericClient, version: i64) -> anyhow::Result<()> {
    execute(client, DELETE_APPLIED, &[&version]).await?;
    Ok(())
}

/// Whether this session still holds the migration lock and nobody else took it since this run
/// took `generation` (see `record_step`): it takes the lock again when it is free, as
/// `record_step` does. For the state writes after a `transaction: none` migration, which may
/// have let the lock go (`DISCARD ALL`).
pub async fn lock_still_ours(
    client: &impl GenericClient,
    generation: Option<i64>,
) -> anyhow::Result<bool> {
    let sql = format!("SELECT {}", lock_held("$1::bigint"));
    Ok(unnamed(client, &sql, &[&generation]).await?[0].get(0))
}

/// True when this session holds the migration lock (taking it again if it is free: re-entrant,
/// O(1)) and the lock generation is still `generation` (an SQL expression; NULL skips that
/// check; a sequence reset to no value counts as moved): the condition `record_step` and
/// `lock_still_ours` share.
fn lock_held(generation: &str) -> String {
    let (k1, k2) = super::lock::KEYS;
    format!(
        "pg_catalog.pg_try_advisory_lock({k1}, {k2}) AND ({generation} IS NULL OR \
         coalesce(pg_catalog.pg_sequence_last_value(\
         '_migrate.lock_generation'::pg_catalog.regclass) OPERATOR(pg_catalog.=) {generation}, \
         false))"
    )
}

pub async fn mark_dirty(client: &impl GenericClient, version: i64) -> anyhow::Result<()> {
    execute(
        client,
        "UPDATE _migrate.schema_migrations SET dirty = true WHERE version = $1",
        &[&version],
    )
    .await?;
    Ok(())
}

pub async fn set_checksum(
    client: &impl GenericClient,
    version: i64,
    checksum: &str,
) -> anyhow::Result<()> {
    execute(
        client,
        "UPDATE _migrate.schema_migrations SET checksum = $2, dirty = false WHERE version = $1",
        &[&version, &checksum],
    )
    .await?;
    Ok(())
}

/// Marks a `transaction: none` migration as finished: for `up` its row becomes clean, for
/// `down` it goes; its history line is written in the same statement.
pub async fn finish_dirty(
    client: &impl GenericClient,
    migration: &Migration,
    direction: Direction,
    duration_ms: i64,
    started_at: SystemTime,
    note: Option<&str>,
) -> anyhow::Result<()> {
    match direction {
        Direction::Down => {
            let params: [&(dyn ToSql + Sync); 6] = [
                &migration.version,
                &migration.name,
                &migration.checksum,
                &started_at,
                &TOOL_VERSION,
                &note,
            ];
            execute(client, FINISH_DOWN, &params).await?
        }
        _ => {
            let params: [&(dyn ToSql + Sync); 7] = [
                &migration.version,
                &migration.name,
                &migration.checksum,
                &duration_ms,
                &started_at,
                &TOOL_VERSION,
                &note,
            ];
            execute(client, FINISH_UP, &params).await?
        }
    };
    Ok(())
}

/// Clears the dirty mark a `down` of a `transaction: none` migration set before it started,
/// when nothing of the `down` took effect.
pub async fn clear_dirty(client: &impl GenericClient, version: i64) -> anyhow::Result<()> {
    execute(
        client,
        "UPDATE _migrate.schema_migrations SET dirty = false WHERE version = $1",
        &[&version],
    )
    .await?;
    Ok(())
}

/// Keeps the server's warnings with the history line of a migration that succeeded.
pub async fn add_warnings(
    client: &impl GenericClient,
    version: i64,
    direction: Direction,
    warnings: &[String],
) -> anyhow::Result<()> {
    execute(
        client,
        ADD_WARNINGS,
        &[&version, &direction.as_str(), &warnings],
    )
    .await?;
    Ok(())
}

/// `add_warnings` as one literal statement, every name qualified, for a message that also
/// runs a migration's own statements (whose `search_path` may still be in effect): the
/// engine writes a migration's warnings in the transaction of the migration after it.
pub(crate) fn add_warnings_sql(version: i64, direction: Direction, warnings: &[String]) -> String {
    let texts: Vec<String> = warnings.iter().map(|w| crate::engine::literal(w)).collect();
    format!(
        "UPDATE _migrate.history SET warnings = ARRAY[{}]::pg_catalog.text[] \
         WHERE id OPERATOR(pg_catalog.=) (SELECT pg_catalog.max(h.id) FROM _migrate.history h \
         WHERE h.version OPERATOR(pg_catalog.=) {version} \
         AND h.direction OPERATOR(pg_catalog.=) '{}')",
        texts.join(", "),
        direction.as_str()
    )
}

/// Directions of `_migrate.history`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Up,
    Down,
    Baseline,
    Repair,
}

impl Direction {
    /// The stable name, as JSON and the database write it.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One line of the append-only history.
pub struct HistoryEntry<'a> {
    pub version: i64,
    pub name: &'a str,
    pub direction: Direction,
    pub checksum: Option<&'a str>,
    pub started_at: SystemTime,
    pub finished_at: SystemTime,
    pub error: Option<&'a str>,
    pub note: Option<&'a str>,
    /// The server's WARNINGs (and with --verbose NOTICEs) while it ran.
    pub warnings: &'a [String],
}

pub async fn record_history(
    client: &impl GenericClient,
    entry: &HistoryEntry<'_>,
) -> anyhow::Result<()> {
    let success = entry.error.is_none();
    execute(
        client,
        INSERT_HISTORY,
        &[
            &entry.version,
            &entry.name,
            &entry.direction.as_str(),
            &entry.checksum,
            &entry.started_at,
            &entry.finished_at,
            &success,
            &entry.error,
            &TOOL_VERSION,
            &entry.note,
            // NULL when there were none, as on the lines `record_step` and `FINISH_*` write.
            &(!entry.warnings.is_empty()).then_some(entry.warnings),
        ],
    )
    .await?;
    Ok(())
}

/// Whether migrate has ever recorded anything in this database.
const MANAGED: &str = "SELECT to_regclass('_migrate.schema_migrations') IS NOT NULL";

/// Whether the database behind `client` holds migrate's state.
pub async fn is_managed(client: &impl GenericClient) -> anyhow::Result<bool> {
    Ok(unnamed(client, MANAGED, &[]).await?[0].get(0))
}
