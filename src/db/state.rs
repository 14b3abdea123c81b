//! The `_migrate` schema (DESIGN §4). Column names are part of the contract: DBAs and CI
//! query them.

use std::time::SystemTime;

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, GenericClient, Statement};

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
    note         text
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

const EXISTS: &str = "SELECT to_regclass('_migrate.schema_migrations') IS NOT NULL";

const SELECT_APPLIED: &str = "
SELECT version, name, checksum,
       to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
       applied_by, duration_ms, tool_version, dirty
FROM _migrate.schema_migrations ORDER BY version";

const INSERT_APPLIED: &str = "
INSERT INTO _migrate.schema_migrations
    (version, name, checksum, applied_by, duration_ms, tool_version, dirty)
VALUES ($1, $2, $3, current_user, $4, $5, $6)";

const DELETE_APPLIED: &str = "DELETE FROM _migrate.schema_migrations WHERE version = $1";

const INSERT_HISTORY: &str = "
INSERT INTO _migrate.history
    (version, name, direction, checksum, started_at, finished_at, success, error, tool_version, note)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// A successful `up`: the migration's row and its history line in one statement.
const RECORD_UP: &str = "
WITH applied AS (
    INSERT INTO _migrate.schema_migrations
        (version, name, checksum, applied_by, duration_ms, tool_version, dirty)
    VALUES ($1, $2, $3, current_user, $4, $5, false)
)
INSERT INTO _migrate.history
    (version, name, direction, checksum, started_at, finished_at, success, error, tool_version, note)
VALUES ($1, $2, 'up', $3, $6, $7, true, NULL, $5, $8)";

/// A successful `down`: the migration's row goes, its history line comes, in one statement.
const RECORD_DOWN: &str = "
WITH reverted AS (
    DELETE FROM _migrate.schema_migrations WHERE version = $1
)
INSERT INTO _migrate.history
    (version, name, direction, checksum, started_at, finished_at, success, error, tool_version, note)
VALUES ($1, $2, 'down', $3, $4, $5, true, NULL, $6, $7)";

/// Creates the state tables on first use; callers hold the migration lock.
pub async fn ensure(client: &Client) -> anyhow::Result<()> {
    let exists: bool = client.query_one(EXISTS, &[]).await?.get(0);
    if !exists {
        client.batch_execute(CREATE).await?;
    }
    Ok(())
}

/// The applied migrations, in version order; none when the state tables do not exist yet.
pub async fn applied(client: &impl GenericClient) -> anyhow::Result<Vec<AppliedMigration>> {
    let exists: bool = client.query_one(EXISTS, &[]).await?.get(0);
    if !exists {
        return Ok(Vec::new());
    }
    let rows = client.query(SELECT_APPLIED, &[]).await?;
    Ok(rows
        .iter()
        .map(|r| AppliedMigration {
            version: r.get(0),
            name: r.get(1),
            checksum: r.get(2),
            applied_at: r.get(3),
            applied_by: r.get(4),
            duration_ms: r.get(5),
            tool_version: r.get(6),
            dirty: r.get(7),
        })
        .collect())
}

pub async fn record_applied(
    client: &impl GenericClient,
    migration: &Migration,
    duration_ms: i64,
    dirty: bool,
) -> anyhow::Result<()> {
    client
        .execute(
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
    client.execute(DELETE_APPLIED, &[&version]).await?;
    Ok(())
}

pub async fn mark_dirty(client: &impl GenericClient, version: i64) -> anyhow::Result<()> {
    client
        .execute(
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
    client
        .execute(
            "UPDATE _migrate.schema_migrations SET checksum = $2, dirty = false WHERE version = $1",
            &[&version, &checksum],
        )
        .await?;
    Ok(())
}

/// The tracking statements of a run, prepared once: recording a successful migration costs
/// one round trip instead of a parse and an execute for each of two statements.
pub struct Recorder {
    up: Statement,
    down: Statement,
}

impl Recorder {
    /// Prepares the statements; the state tables must exist.
    pub async fn prepare(client: &Client) -> anyhow::Result<Recorder> {
        Ok(Recorder {
            up: client.prepare(RECORD_UP).await?,
            down: client.prepare(RECORD_DOWN).await?,
        })
    }

    /// Records a migration that ran successfully: its `schema_migrations` row (added for
    /// `up`, removed for `down`) and its history line, finished now.
    pub async fn succeeded(
        &self,
        client: &impl GenericClient,
        migration: &Migration,
        direction: Direction,
        duration_ms: i64,
        started_at: SystemTime,
        note: Option<&str>,
    ) -> anyhow::Result<()> {
        let finished_at = SystemTime::now();
        match direction {
            Direction::Up => {
                let params: [&(dyn ToSql + Sync); 8] = [
                    &migration.version,
                    &migration.name,
                    &migration.checksum,
                    &duration_ms,
                    &TOOL_VERSION,
                    &started_at,
                    &finished_at,
                    &note,
                ];
                client.execute(&self.up, &params).await?
            }
            _ => {
                let params: [&(dyn ToSql + Sync); 7] = [
                    &migration.version,
                    &migration.name,
                    &migration.checksum,
                    &started_at,
                    &finished_at,
                    &TOOL_VERSION,
                    &note,
                ];
                client.execute(&self.down, &params).await?
            }
        };
        Ok(())
    }
}

/// Directions of `_migrate.history`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Up,
    Down,
    Baseline,
    Repair,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
            Direction::Baseline => "baseline",
            Direction::Repair => "repair",
        }
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
}

pub async fn record_history(
    client: &impl GenericClient,
    entry: &HistoryEntry<'_>,
) -> anyhow::Result<()> {
    let success = entry.error.is_none();
    client
        .execute(
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
            ],
        )
        .await?;
    Ok(())
}
