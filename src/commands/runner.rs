//! Runs migrations against a database with their tracking rows: each in its own transaction
//! (or all in one for `--atomic`), `transaction: none` ones statement by statement.

use std::time::{Instant, SystemTime};

use serde::Serialize;
use tokio_postgres::{Client, GenericClient, Transaction};

use crate::db::describe_db_error;
use crate::db::state::{self, Direction, HistoryEntry, Recorder};
use crate::migrations::lexer::split_statements;
use crate::migrations::{Migration, Section};
use crate::output::Progress;

/// A migration that ran.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub version: i64,
    pub name: String,
    pub direction: Direction,
    pub duration_ms: i64,
}

/// A migration that failed, and where.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub version: i64,
    pub name: String,
    pub direction: Direction,
    pub file: String,
    /// The line of the file PostgreSQL's error position points at, when it gives one.
    pub line: Option<usize>,
    pub error: String,
    /// True when the migration ran outside a transaction and stopped part way.
    pub dirty: bool,
    /// True when the failed migration's changes were rolled back.
    pub rolled_back: bool,
}

impl Failure {
    pub fn location(&self) -> String {
        match self.line {
            Some(line) => format!("{}:{line}", self.file),
            None => self.file.clone(),
        }
    }
}

/// What a run did: the steps that took effect, and the failure that stopped it, if any.
#[derive(Debug, Default)]
pub struct Outcome {
    pub steps: Vec<Step>,
    pub failure: Option<Failure>,
}

pub struct Runner<'a> {
    pub client: &'a mut Client,
    /// `SET LOCAL` settings from the environment (lock_timeout, statement_timeout).
    pub settings: &'a [(&'static str, String)],
    pub progress: &'a dyn Progress,
    /// A note for `_migrate.history`, per version (e.g. "applied out of order").
    pub note: &'a dyn Fn(i64) -> Option<String>,
}

impl Runner<'_> {
    /// Runs `migrations` in order, each in its own transaction; stops at the first failure.
    pub async fn run(
        &mut self,
        migrations: &[&Migration],
        direction: Direction,
    ) -> anyhow::Result<Outcome> {
        let mut outcome = Outcome::default();
        let recorder = Recorder::prepare(self.client).await?;
        self.progress
            .start(migrations.len() as u64, direction.as_str());
        for migration in migrations {
            self.progress.migration(&migration.file_name());
            let result = if migration.transactional {
                self.run_in_transaction(&recorder, migration, direction)
                    .await?
            } else {
                self.run_statements(&recorder, migration, direction).await?
            };
            match result {
                Ok(step) => outcome.steps.push(step),
                Err(failure) => {
                    outcome.failure = Some(failure);
                    break;
                }
            }
        }
        self.progress.finish();
        Ok(outcome)
    }

    /// Runs all `migrations` in one transaction: all of them take effect, or none.
    pub async fn run_atomic(
        &mut self,
        migrations: &[&Migration],
        direction: Direction,
    ) -> anyhow::Result<Outcome> {
        let recorder = Recorder::prepare(self.client).await?;
        self.progress
            .start(migrations.len() as u64, direction.as_str());
        let tx = self.client.transaction().await?;
        set_local(&tx, self.settings).await?;
        let mut steps = Vec::new();
        for migration in migrations {
            self.progress.migration(&migration.file_name());
            let note = (self.note)(migration.version);
            match apply_in(&tx, &recorder, migration, direction, note).await? {
                Ok(step) => steps.push(step),
                Err(failed) => {
                    tx.rollback().await?;
                    let failure = failed.record(&*self.client).await?;
                    self.progress.finish();
                    return Ok(Outcome {
                        steps: Vec::new(),
                        failure: Some(failure),
                    });
                }
            }
        }
        tx.commit().await?;
        self.progress.finish();
        Ok(Outcome {
            steps,
            failure: None,
        })
    }

    async fn run_in_transaction(
        &mut self,
        recorder: &Recorder,
        migration: &Migration,
        direction: Direction,
    ) -> anyhow::Result<Result<Step, Failure>> {
        let note = (self.note)(migration.version);
        let tx = self.client.transaction().await?;
        set_local(&tx, self.settings).await?;
        match apply_in(&tx, recorder, migration, direction, note).await? {
            Ok(step) => {
                tx.commit().await?;
                Ok(Ok(step))
            }
            Err(failed) => {
                tx.rollback().await?;
                Ok(Err(failed.record(&*self.client).await?))
            }
        }
    }

    /// `transaction: none`: each statement on its own, so `CREATE INDEX CONCURRENTLY` works.
    /// A failure part way leaves the migration recorded as dirty.
    async fn run_statements(
        &mut self,
        recorder: &Recorder,
        migration: &Migration,
        direction: Direction,
    ) -> anyhow::Result<Result<Step, Failure>> {
        let started = SystemTime::now();
        let clock = Instant::now();
        let section = section(migration, direction);
        for (name, value) in self.settings {
            self.client
                .batch_execute(&format!("SET {name} = '{value}'"))
                .await?;
        }
        let mut result = Ok(());
        for (done, statement) in split_statements(&section.sql).into_iter().enumerate() {
            if let Err(e) = self.client.batch_execute(statement.sql).await {
                let at = Section {
                    sql: statement.sql.to_string(),
                    first_line: section.line_of_offset(statement.offset),
                };
                // A lone failing statement rolls itself back; after others took effect, the
                // migration is half done.
                result = Err(failure(migration, direction, &at, &e, done > 0));
                break;
            }
        }
        for (name, _) in self.settings {
            self.client.batch_execute(&format!("RESET {name}")).await?;
        }
        let duration_ms = clock.elapsed().as_millis() as i64;
        if let Err(failure) = result {
            if failure.dirty {
                match direction {
                    Direction::Up => {
                        state::record_applied(&*self.client, migration, duration_ms, true).await?
                    }
                    _ => state::mark_dirty(&*self.client, migration.version).await?,
                }
            }
            let note = (self.note)(migration.version);
            record_failure(&*self.client, migration, started, &failure, note).await?;
            return Ok(Err(failure));
        }
        let note = (self.note)(migration.version);
        let tx = self.client.transaction().await?;
        recorder
            .succeeded(
                &tx,
                migration,
                direction,
                duration_ms,
                started,
                note.as_deref(),
            )
            .await?;
        tx.commit().await?;
        Ok(Ok(step(migration, direction, duration_ms)))
    }
}

/// Runs a migration's SQL inside `tx` and, when it succeeds, records it there too.
async fn apply_in<'m>(
    tx: &Transaction<'_>,
    recorder: &Recorder,
    migration: &'m Migration,
    direction: Direction,
    note: Option<String>,
) -> anyhow::Result<Result<Step, Failed<'m>>> {
    let started = SystemTime::now();
    let clock = Instant::now();
    let section = section(migration, direction);
    if let Err(e) = tx.batch_execute(&section.sql).await {
        let failure = failure(migration, direction, section, &e, false);
        return Ok(Err(Failed {
            migration,
            failure,
            started,
            note,
        }));
    }
    let duration_ms = clock.elapsed().as_millis() as i64;
    recorder
        .succeeded(
            tx,
            migration,
            direction,
            duration_ms,
            started,
            note.as_deref(),
        )
        .await?;
    Ok(Ok(step(migration, direction, duration_ms)))
}

/// A migration that failed inside a transaction: logged once that transaction rolled back.
struct Failed<'m> {
    migration: &'m Migration,
    failure: Failure,
    started: SystemTime,
    note: Option<String>,
}

impl Failed<'_> {
    async fn record(self, client: &impl GenericClient) -> anyhow::Result<Failure> {
        record_failure(
            client,
            self.migration,
            self.started,
            &self.failure,
            self.note,
        )
        .await?;
        Ok(self.failure)
    }
}

/// Logs a failed migration run in the history (its tracking row, if any, is the caller's).
async fn record_failure(
    client: &impl GenericClient,
    migration: &Migration,
    started: SystemTime,
    failure: &Failure,
    note: Option<String>,
) -> anyhow::Result<()> {
    let error = format!("{}: {}", failure.location(), failure.error);
    state::record_history(
        client,
        &HistoryEntry {
            version: migration.version,
            name: &migration.name,
            direction: failure.direction,
            checksum: Some(&migration.checksum),
            started_at: started,
            finished_at: SystemTime::now(),
            error: Some(&error),
            note: note.as_deref(),
        },
    )
    .await
}

/// `SET LOCAL` of the environment's settings (lock_timeout, statement_timeout), which
/// `config` has checked are durations.
pub(crate) async fn set_local(
    client: &impl GenericClient,
    settings: &[(&'static str, String)],
) -> anyhow::Result<()> {
    for (name, value) in settings {
        client
            .batch_execute(&format!("SET LOCAL {name} = '{value}'"))
            .await?;
    }
    Ok(())
}

fn section(migration: &Migration, direction: Direction) -> &Section {
    match direction {
        Direction::Down => &migration.down,
        _ => &migration.up,
    }
}

fn step(migration: &Migration, direction: Direction, duration_ms: i64) -> Step {
    Step {
        version: migration.version,
        name: migration.name.clone(),
        direction,
        duration_ms,
    }
}

fn failure(
    migration: &Migration,
    direction: Direction,
    section: &Section,
    error: &tokio_postgres::Error,
    dirty: bool,
) -> Failure {
    let (line, text) = match error.as_db_error() {
        Some(db) => {
            let line = match db.position() {
                Some(tokio_postgres::error::ErrorPosition::Original(p)) => {
                    Some(section.line_of_position(*p as usize))
                }
                _ => None,
            };
            (line, describe_db_error(db))
        }
        None => (None, crate::db::chain(error)),
    };
    Failure {
        version: migration.version,
        name: migration.name.clone(),
        direction,
        file: migration.path.clone(),
        line,
        error: text,
        dirty,
        rolled_back: !dirty,
    }
}
