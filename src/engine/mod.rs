//! The migration engine. Runs migrations against a database with their tracking rows: each in its own transaction
//! (or all in one for `--atomic`), `transaction: none` ones statement by statement.
//!
//! What the runner promises (README, "Truth under faults"):
//! - every migration starts from the connection's own session state plus the project's
//!   `[session]` settings, however runs are batched: whatever a migration `SET`s, its role,
//!   temp tables, cursors and prepared statements are reset before the next one, and the
//!   tracking rows are always written as the connecting role;
//! - a transactional migration and its tracking rows commit together or not at all, and its
//!   statements, tracking rows and COMMIT go to the server in one flight (one round trip);
//! - a `transaction: none` migration is recorded as in progress (dirty) and committed before
//!   its first statement runs, and is cleared only after its last one succeeded, so a killed
//!   process or a crashed server leaves it visibly dirty;
//! - a rollback is reported only when one happened, a lost connection is reported with what
//!   is known about the migration afterwards, and the server's warnings are kept.

use std::time::{Duration, Instant, SystemTime};

use futures_util::future::join_all;
use futures_util::StreamExt;
use serde::Serialize;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, GenericClient, SimpleQueryMessage};

use crate::db::session::{self, ServerMessage};
use crate::db::state::{self, Direction, HistoryEntry};
use crate::db::{describe_db_error, lock, sqlstate, Session};
use crate::migrations::lexer::{self, Statement};
use crate::migrations::{Migration, Section};

mod chain;
pub mod reporter;
pub use reporter::Reporter;

/// A migration that ran.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub version: i64,
    pub name: String,
    pub direction: Direction,
    pub duration_ms: i64,
    /// WARNINGs (and with --verbose NOTICEs) the server sent while it ran.
    pub warnings: Vec<ServerMessage>,
}

/// A migration that failed, and where.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub version: i64,
    pub name: String,
    pub direction: Direction,
    pub file: String,
    /// The line of the file the error points at: PostgreSQL's error position, the line of a
    /// `DO` block or function body it names, or the failing statement's first line.
    pub line: Option<usize>,
    pub error: String,
    /// True when the migration ran outside a transaction and may have taken effect in part:
    /// it is recorded as dirty.
    pub dirty: bool,
    /// True when the failed migration's changes were rolled back (never claimed when unknown).
    pub rolled_back: bool,
    /// True when the connection to the server was lost while it ran.
    pub connection_lost: bool,
    /// The signal that interrupted it (SIGINT, SIGTERM), if one did.
    pub interrupted: Option<String>,
    /// What is known about the migration's state after the failure, in a sentence.
    pub state: String,
    pub warnings: Vec<ServerMessage>,
}

impl Failure {
    /// A migration that did not start: nothing of it was applied (for `down`: it is still
    /// applied), for the reason `error`.
    fn did_not_start(migration: &Migration, direction: Direction, error: String) -> Failure {
        Failure {
            version: migration.version,
            name: migration.name.clone(),
            direction,
            file: migration.path.clone(),
            line: None,
            error,
            dirty: false,
            rolled_back: false,
            connection_lost: false,
            interrupted: session::interrupted().map(|s| session::signal_name(s).to_string()),
            state: match direction {
                Direction::Down => "it did not start: it is still applied".into(),
                _ => "it did not start: nothing of it was applied".into(),
            },
            warnings: Vec::new(),
        }
    }

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
    /// Versions of the plan this run did not run because another run had already done them
    /// (applied, or for `down` reverted) when its guard checked under the transaction-level
    /// lock (through a pooler only).
    pub skipped: Vec<i64>,
    pub failure: Option<Failure>,
}

impl Outcome {
    /// `step` committed: one of the steps, and recorded for a forced exit's report
    /// (`session::committed`), which would otherwise not know of it.
    fn done(&mut self, step: Step) {
        session::committed(step.version, &step.name, step.direction.as_str());
        self.steps.push(step);
    }
}

/// How a run excludes other runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locking {
    /// The caller holds the session-level migration lock for the whole run.
    Session,
    /// Through a transaction-mode pooler: each migration's transaction takes the
    /// transaction-level lock, waiting at most `lock_wait` (`--lock-wait`), and re-checks the
    /// applied state under it.
    Transaction { lock_wait: Duration },
}

pub struct Runner<'a> {
    pub session: &'a mut Session,
    /// The target, to reconnect after a lost connection and find out what became of the
    /// migration that was running.
    pub url: &'a crate::conninfo::ConnInfo,
    /// Settings each migration starts with (`[session]`, lock_timeout, statement_timeout).
    pub settings: &'a [(String, String)],
    pub progress: &'a dyn Reporter,
    /// A note for `_migrate.history`, per version (e.g. "applied out of order").
    pub note: &'a dyn Fn(i64) -> Option<String>,
    pub locking: Locking,
    /// Versions applied out of order on purpose (`--allow-out-of-order`): their guard under a
    /// transaction-level lock does not insist on being above the head.
    pub out_of_order: &'a [i64],
    /// Every migration file's version, ascending: under a transaction-level lock the guard of
    /// `up` checks that the file below each migration is still applied.
    pub versions: &'a [i64],
}

/// Restores the connection's initial session state: what `DISCARD ALL` does, except releasing
/// advisory locks (ours is among them) and `DISCARD PLANS`. `role` and `session_authorization`
/// are not reset by `RESET ALL`, hence the explicit statements. Cached plans change no result:
/// the server re-plans them itself when a catalog object they use or the `search_path`
/// changes, so dropping every plan before every migration only cost time (about a tenth of
/// `down --all`'s overhead over diesel_cli's).
const RESET_SESSION: &str = "SET SESSION AUTHORIZATION DEFAULT; RESET ROLE; RESET ALL; \
     CLOSE ALL; UNLISTEN *; DEALLOCATE ALL; DISCARD TEMP; DISCARD SEQUENCES; \
     SET client_min_messages = notice; SET migrate.flight = 'between'";

/// `RESET_SESSION` after a migration's tracking rows and COMMIT, in the same message: the
/// tracking rows were written after `AS_CONNECTING_ROLE`'s session-level `SET SESSION
/// AUTHORIZATION DEFAULT; RESET ROLE`, which the COMMIT kept, so only the rest is left to do.
const RESET_AFTER_TRACKING: &str = "RESET ALL; CLOSE ALL; UNLISTEN *; DEALLOCATE ALL; \
     DISCARD TEMP; DISCARD SEQUENCES; SET client_min_messages = notice; \
     SET migrate.flight = 'between'";

/// Through a transaction pooler the reset runs inside each transaction, on whichever server
/// connection the transaction got (`UNLISTEN *` there undoes a `LISTEN` before it takes
/// effect at commit; `pg_advisory_unlock_all` drops session-level advisory locks a migration
/// took, which would otherwise stay on a pooled connection, and leaves the run's
/// transaction-level lock alone). Prepared statements: not `DEALLOCATE ALL` (PgBouncer 1.21+
/// keeps its own, protocol-level ones on the server connections, `from_sql` false), but each
/// SQL-level one (`from_sql`) by name (`DEALLOCATE_FROM_SQL`): a `PREPARE` the static check
/// cannot see (`EXECUTE 'PREPARE ...'` in a `DO` block or function) would otherwise stay on
/// the pooled connection and collide with another client's. `reset_pooled` adds that and
/// restores `application_name`.
const RESET_POOLED: &str = "SET SESSION AUTHORIZATION DEFAULT; RESET ROLE; RESET ALL; \
     CLOSE ALL; UNLISTEN *; DISCARD TEMP; DISCARD SEQUENCES; \
     SELECT pg_catalog.pg_advisory_unlock_all(); SET client_min_messages = notice; \
     SET migrate.flight = 'between'";

/// Deallocates every SQL-level prepared statement (`PREPARE`, `from_sql`) by name, leaving
/// protocol-level ones (PgBouncer 1.21+'s) alone. Part of the pooled reset, which is also sent
/// after a pooled migration failed: no rollback undoes a `PREPARE` or a session-level advisory
/// lock it took before failing.
const DEALLOCATE_FROM_SQL: &str = "DO $migrate$ DECLARE s text; BEGIN \
     FOR s IN SELECT name FROM pg_catalog.pg_prepared_statements WHERE from_sql LOOP \
     EXECUTE 'DEALLOCATE ' || pg_catalog.quote_ident(s); END LOOP; END $migrate$";

/// `RESET_POOLED`, then `application_name` back to the one this client connected with:
/// `RESET ALL` sets it to the pooled server connection's startup value (the pooler's), so a
/// running migration and the lock it holds would show no application in `pg_stat_activity`,
/// and PgBouncer, which follows `application_name` through ParameterStatus, would keep the
/// pooler's for the client's later transactions.
fn reset_pooled(application_name: &str) -> String {
    format!(
        "{RESET_POOLED}; {DEALLOCATE_FROM_SQL}; {}",
        restore_application_name(application_name)
    )
}

/// `application_name` back to `name`, the one this client connected with, after a reset's
/// `RESET ALL`, which sets it to the server connection's startup value: through a pooler
/// (PgBouncer, `pool_mode = transaction` or `session`) that is the pooler's, not this
/// client's, so a running migration and the lock it holds showed no application in
/// `pg_stat_activity` or in a waiting run's message. Straight to the server the value is the
/// same, and the server reports no change.
fn restore_application_name(name: &str) -> String {
    format!("SET application_name = {}", literal(name))
}

/// Inside a transaction, before the tracking rows: back to the connecting role and no
/// timeouts, whatever the migration set (a migration's `SET statement_timeout = '1ms'` must
/// not fail its own bookkeeping). `_migrate.record_step` sets its own `search_path`.
const AS_CONNECTING_ROLE: &str = "SET SESSION AUTHORIZATION DEFAULT; RESET ROLE; \
     SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0";

/// In the closing of a migration in a transaction of its own, right after
/// `AS_CONNECTING_ROLE`: the deferred constraint checks and triggers run now, as they would at
/// `COMMIT` (as the connecting role, without timeouts), so that what they do is seen by
/// `record_step`'s checks (a trigger that releases the run's lock) and undone by the pooled
/// reset after it (a `LISTEN`, a setting or a session-level advisory lock a trigger takes
/// through a transaction pooler); a failure is still reported "at COMMIT". Not in an
/// `--atomic` run, whose deferred constraints hold across all of its migrations.
const DEFERRED_NOW: &str = "SET CONSTRAINTS ALL IMMEDIATE";

/// The statements of `AS_CONNECTING_ROLE`: `DEFERRED_NOW`'s index in a closing, where an error
/// is the deferred checks'.
const DEFERRED_AT: usize = 4;

/// Set (LOCAL) right after the migration's BEGIN: if it is gone when the tracking rows are
/// written, something in the file ended that transaction (a COMMIT the file check did not
/// see, a procedure that commits), and part of the migration is already committed.
const MARK_TRANSACTION: &str = "SET LOCAL migrate.in_migration = 'on'";

/// Set session-wide right after a migration's `BEGIN`, to a value no other flight of this
/// process uses: a rollback of that transaction undoes it, a `COMMIT` keeps it. So when it is
/// still there after the migration failed and its transaction was rolled back, a `COMMIT` in
/// the migration had kept it (`ended_before_error`; through a pooler too: an open or aborted
/// transaction keeps its server connection). The resets between migrations set it to
/// `between`, which a rollback of the next migration's transaction brings back (see
/// `state::IN_MIGRATION`).
const FLIGHT_SETTING: &str = "migrate.flight";

/// A value for `FLIGHT_SETTING` that no other flight of this process uses.
fn flight_mark() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}.{n}", std::process::id())
}

/// `SET` of `FLIGHT_SETTING` to `mark`.
fn set_flight(mark: &str) -> String {
    format!("SET {FLIGHT_SETTING} = {}", literal(mark))
}

/// How long, after a lost connection, a new session waits for the lost one to end (it may
/// still be running what it had received) before the outcome is called unknown.
const LOST_SESSION_WAIT: Duration = Duration::from_secs(30);

/// How long, after a lost connection, the runner keeps trying to connect again to learn what
/// became of the migration.
const RECONNECT_WAIT: Duration = Duration::from_secs(10);

/// How often a flight still running after a signal is cancelled again.
const RECANCEL: Duration = Duration::from_millis(250);

/// SQLSTATE of the record guard when the migration's transaction ended early.
const ENDED_EARLY: &str = "MG003";
/// SQLSTATE of the record guard when the migration released the run's own lock.
const LOCK_RELEASED: &str = "MG004";

/// A `SET [LOCAL] name TO value` statement for each setting, in order (`local` for `SET
/// LOCAL`). `SET` takes no snapshot, so a migration's own `SET TRANSACTION ISOLATION LEVEL`
/// still comes first after them (a `SELECT set_config(...)` would be its transaction's first
/// query). A value is read as `set_config` reads it: for the settings that hold a list of
/// names (`search_path`, `temp_tablespaces`, the preload libraries) each name of the list goes
/// as one literal, unquoted names folded to lower case, as PostgreSQL folds them; a list it
/// cannot split goes through `set_config`, one statement all the same.
fn settings_sql(settings: &[(String, String)], local: bool) -> Option<String> {
    if settings.is_empty() {
        return None;
    }
    let scope = if local { "SET LOCAL" } else { "SET" };
    let statements: Vec<String> = settings
        .iter()
        .map(|(name, value)| {
            let quoted_name: Vec<String> = name
                .split('.')
                .map(|part| format!("\"{}\"", part.replace('"', "\"\"")))
                .collect();
            let lists_names = [
                "search_path",
                "temp_tablespaces",
                "session_preload_libraries",
                "local_preload_libraries",
            ]
            .contains(&name.to_ascii_lowercase().as_str());
            let text = value;
            let value = match lists_names {
                false => Some(literal(value)),
                // An empty list as `''`, which `SET` stores as one empty name (`""`): no
                // schema has it, so the path is as empty as `set_config`'s `''`.
                true => name_list(value).map(|names| match names.is_empty() {
                    true => "''".to_string(),
                    false => names
                        .iter()
                        .map(|n| literal(n))
                        .collect::<Vec<_>>()
                        .join(", "),
                }),
            };
            match value {
                Some(value) => format!("{scope} {} TO {value}", quoted_name.join(".")),
                None => format!(
                    "SELECT pg_catalog.set_config({}, {}, {local})",
                    literal(name),
                    literal(text)
                ),
            }
        })
        .collect();
    Some(statements.join("; "))
}

/// The names of a list setting's value as PostgreSQL's `SplitIdentifierString` reads them:
/// comma-separated, `"quoted"` kept as written (with `""` for a quote), others folded to lower
/// case. None for what it would not read (an empty unquoted name, an unclosed quote).
fn name_list(value: &str) -> Option<Vec<String>> {
    // PostgreSQL's `scanner_isspace`: no other blank (a no-break space, a vertical tab) ends
    // a name or is skipped; it is part of the name.
    let blank = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c');
    let mut names = Vec::new();
    let mut rest = value.trim_start_matches(blank);
    if rest.is_empty() {
        return Some(names);
    }
    loop {
        let (name, after) = if let Some(quoted) = rest.strip_prefix('"') {
            let mut name = String::new();
            let mut chars = quoted.char_indices().peekable();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                if c == '"' {
                    if chars.peek().map(|&(_, n)| n) == Some('"') {
                        name.push('"');
                        chars.next();
                    } else {
                        end = Some(i + 1);
                        break;
                    }
                } else {
                    name.push(c);
                }
            }
            (name, &quoted[end?..])
        } else {
            // An unquoted name runs to a comma or a blank, and is folded as the lexer folds
            // identifiers (`downcase_identifier`): ASCII letters only, whatever else it holds.
            let end = rest
                .find(|c: char| c == ',' || blank(c))
                .unwrap_or(rest.len());
            if end == 0 {
                return None;
            }
            (rest[..end].to_ascii_lowercase(), &rest[end..])
        };
        // A quoted name may be empty (`""`), as `set_config` takes it.
        names.push(name);
        let after = after.trim_start_matches(blank);
        match after.strip_prefix(',') {
            Some(next) => rest = next.trim_start_matches(blank),
            None if after.is_empty() => return Some(names),
            None => return None,
        }
    }
}

/// A string literal that reads the same whatever `standard_conforming_strings` says.
pub(crate) fn literal(value: &str) -> String {
    format!("E'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

/// What one message of a flight is, to attribute its error.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Setup,
    Settings,
    Guard,
    /// The section's statement `index`, sent in a message that held bytes `sent_at` to
    /// `sent_to` of the section (the statement's own, or all the statements' when the whole
    /// section went as one message): PostgreSQL's error positions count from there, and one
    /// past its end ("at end of input") means its last byte.
    Statement {
        index: usize,
        sent_at: usize,
        sent_to: usize,
        /// Characters (bytes on `SQL_ASCII`) of the message before the section's text: the
        /// statements that opened the migration's transaction in the same message.
        lead: usize,
    },
    /// All of the section's statements as one message (a transactional migration without
    /// COPY); an error in it is attributed to a `Statement` by `Flight::in_body`.
    Body,
    /// The deferred constraint checks and triggers, run just before the tracking rows
    /// (`DEFERRED_NOW`): reported as at COMMIT, where PostgreSQL runs them otherwise, but the
    /// transaction is still open (and aborted) after they failed.
    Deferred,
    Record,
    Commit,
}

impl Runner<'_> {
    /// Runs `migrations` in order, each in its own transaction; stops at the first failure.
    pub async fn run(
        &mut self,
        migrations: &[&Migration],
        direction: Direction,
    ) -> anyhow::Result<Outcome> {
        let mut outcome = Outcome::default();
        let _finish = reporter::start(self.progress, migrations.len() as u64, direction.as_str());
        let mut at = 0;
        while let Some(migration) = migrations.get(at) {
            at += 1;
            if self.chains(migration, direction) {
                let end = migrations[at..]
                    .iter()
                    .position(|m| !self.chains(m, direction))
                    .map_or(migrations.len(), |n| at + n);
                let chain = &migrations[at - 1..end];
                at = end;
                if self.run_chain(chain, direction, &mut outcome).await? {
                    break;
                }
                continue;
            }
            if let Some(signal) = session::interrupted() {
                outcome.failure = Some(self.not_started(migration, direction, signal, None).await?);
                break;
            }
            if self.session.client.is_closed() {
                // Lost after the last migration committed (in the reset that follows it).
                outcome.failure = Some(self.not_started_lost(migration, direction));
                break;
            }
            self.progress.migration(&migration.file_name());
            let result = if migration.transactional {
                self.run_in_transaction(migration, direction).await?
            } else {
                match self.run_statements(migration, direction).await? {
                    Ok(step) => Ran::Done(step),
                    Err(failure) => Ran::Failed(failure),
                }
            };
            match result {
                Ran::Done(step) => outcome.done(step),
                Ran::Skipped => outcome.skipped.push(migration.version),
                Ran::DoneThenLost(step, failure) => {
                    outcome.done(step);
                    outcome.failure = Some(failure);
                    break;
                }
                Ran::Failed(failure) => {
                    outcome.failure = Some(failure);
                    break;
                }
            }
        }
        self.release_if_interrupted().await;
        Ok(outcome)
    }

    /// Whether `migration` runs in a chain (`chain`): in a transaction of its own, on a
    /// session of its own (the session-level lock), and without COPY (whose rows go after
    /// their statement, one message at a time).
    fn chains(&self, migration: &Migration, direction: Direction) -> bool {
        self.locking == Locking::Session
            && migration.transactional
            && statements(migration, section(migration, direction))
                .is_ok_and(|all| all.iter().all(|s| s.copy_data.is_none()))
    }

    /// Runs all `migrations` in one transaction: all of them take effect, or none.
    pub async fn run_atomic(
        &mut self,
        migrations: &[&Migration],
        direction: Direction,
    ) -> anyhow::Result<Outcome> {
        let _finish = reporter::start(self.progress, migrations.len() as u64, direction.as_str());
        let client = &self.session.client;
        let reset = match self.locking {
            Locking::Session => self.reset_session(),
            Locking::Transaction { .. } => self.reset_pooled(),
        };
        if self.locking == Locking::Session {
            client.batch_execute(&reset).await?;
        }
        client.batch_execute(state::BEGIN).await?;
        if let Locking::Transaction { lock_wait } = self.locking {
            lock::acquire_xact(self.session, lock_wait).await?;
        }
        let mut steps = Vec::new();
        for migration in migrations {
            if let Some(signal) = session::interrupted() {
                // Nothing after a signal is started, and nothing before it is committed.
                return self
                    .atomic_interrupted(migration, direction, signal, migrations.len())
                    .await;
            }
            self.progress.migration(&migration.file_name());
            let started = SystemTime::now();
            let clock = Instant::now();
            let note = (self.note)(migration.version);
            let mark = flight_mark();
            let mut parts = vec![(
                Part::Setup,
                format!("{reset}; {MARK_TRANSACTION}; {}", set_flight(&mark)),
            )];
            if let Some(sql) = self.settings_sql(true) {
                parts.push((Part::Settings, sql));
            }
            let section = section(migration, direction);
            let statements = statements(migration, section)?;
            if matches!(self.locking, Locking::Transaction { .. }) {
                parts.push((
                    Part::Guard,
                    guard(migration, direction, self.out_of_order, self.versions),
                ));
            }
            let flight = self
                .flight(
                    parts,
                    section,
                    &statements,
                    Some(self.record(migration, direction, note.as_deref(), false)),
                    false,
                    Some(&mark),
                )
                .await;
            let warnings = flight.warnings.clone();
            match flight.error {
                None => steps.push(Step {
                    version: migration.version,
                    name: migration.name.clone(),
                    direction,
                    duration_ms: clock.elapsed().as_millis() as i64,
                    warnings,
                }),
                Some((part, e)) => {
                    let lost = is_connection_lost(&e);
                    if !lost {
                        let _ = self.session.client.batch_execute("ROLLBACK").await;
                        self.deallocate_after_pooled_failure().await;
                    }
                    let mut failure =
                        self.failure(migration, direction, section, &statements, part, &e);
                    failure.warnings = warnings;
                    if flight.ended_early || flight.unseen {
                        let client = &self.session.client;
                        client.batch_execute(&self.reset_session()).await?;
                        let applied = state::applied(client).await?;
                        if direction == Direction::Down
                            || applied.iter().any(|a| a.version == migration.version)
                        {
                            state::mark_dirty(client, migration.version).await?;
                        } else {
                            state::record_applied(client, migration, 0, true).await?;
                        }
                        let kept: Vec<String> = steps
                            .iter()
                            .map(|s: &Step| format!("{:04}", s.version))
                            .collect();
                        failure.dirty = true;
                        failure.rolled_back = false;
                        let done = if direction == Direction::Down {
                            "reverted"
                        } else {
                            "applied and recorded"
                        };
                        let earlier = match kept.as_slice() {
                            [] => "it was the run's first migration".to_string(),
                            [one] => format!("{one} stays {done}"),
                            many => format!("{} stay {done}", many.join(", ")),
                        };
                        failure.state = format!(
                            "it ended the --atomic run's transaction (a COMMIT, ROLLBACK or \
                             committing procedure the file check did not see), so the run was \
                             NOT all or nothing: {earlier}, and {} is marked dirty. Remove the \
                             transaction control, check what took effect, then `migrate repair`",
                            migration.file_name()
                        );
                        self.log_failure(migration, started, &mut failure, note)
                            .await;
                        return Ok(Outcome {
                            steps,
                            skipped: Vec::new(),
                            failure: Some(failure),
                        });
                    }
                    failure.rolled_back = true;
                    failure.state = format!(
                        "the whole --atomic run was rolled back; nothing was applied (none of \
                         its {} migration(s))",
                        migrations.len()
                    );
                    if lost {
                        failure.state = format!(
                            "the connection was lost before the --atomic run committed, so \
                             PostgreSQL rolled all of it back ({})",
                            e.as_db_error()
                                .map(describe_db_error)
                                .or_else(|| self.session.close_reason())
                                .unwrap_or_else(|| "no reason given".into())
                        );
                    } else {
                        self.log_failure(migration, started, &mut failure, note)
                            .await;
                        self.release_if_interrupted().await;
                    }
                    return Ok(Outcome {
                        steps: Vec::new(),
                        skipped: Vec::new(),
                        failure: Some(failure),
                    });
                }
            }
        }
        if let (Some(signal), Some(last)) = (session::interrupted(), migrations.last()) {
            return self
                .atomic_interrupted(last, direction, signal, migrations.len())
                .await;
        }
        // The last migration's mark would outlive the run (on a pooled server connection too).
        let commit = format!("RESET {FLIGHT_SETTING}; COMMIT");
        let committed = self.session.client.batch_execute(&commit).await;
        // Warnings a deferred trigger raised at COMMIT: the run's, kept with its last step.
        let at_commit = self.session.notices.drain();
        for notice in &at_commit {
            self.progress.server_message(notice);
        }
        if let Some(step) = steps.last_mut() {
            step.warnings.extend(at_commit);
        }
        if let (Err(e), Some(last)) = (committed, migrations.last()) {
            return self
                .atomic_commit_failed(last, direction, &e, steps, migrations.len())
                .await;
        }
        for (step, migration) in steps.iter().zip(migrations) {
            keep_warnings(&self.session.client, migration, direction, &step.warnings).await?;
        }
        Ok(Outcome {
            steps,
            skipped: Vec::new(),
            failure: None,
        })
    }

    /// The failure for `migration`, not started because the session was found closed before
    /// it (lost after the migration before it committed).
    fn not_started_lost(&self, migration: &Migration, direction: Direction) -> Failure {
        let reason = self
            .session
            .close_reason()
            .unwrap_or_else(|| "no reason given".into());
        let mut failure = Failure::did_not_start(
            migration,
            direction,
            format!("the connection was lost before it started ({reason})"),
        );
        failure.connection_lost = true;
        failure
    }

    /// An `--atomic` run a signal stopped at `migration` (before it started, or before the
    /// run's `COMMIT` after the last one): all of it is rolled back.
    async fn atomic_interrupted(
        &mut self,
        migration: &Migration,
        direction: Direction,
        signal: i32,
        count: usize,
    ) -> anyhow::Result<Outcome> {
        session::settle().await;
        let _ = self.session.client.batch_execute("ROLLBACK").await;
        self.deallocate_after_pooled_failure().await;
        let mut failure = self
            .not_started(migration, direction, signal, Some(Vec::new()))
            .await?;
        failure.error = format!(
            "interrupted by {} before the --atomic run's COMMIT",
            session::signal_name(signal)
        );
        failure.state = format!(
            "the whole --atomic run was rolled back; nothing was applied (none of its {count} \
             migration(s))"
        );
        self.release_if_interrupted().await;
        Ok(Outcome {
            steps: Vec::new(),
            skipped: Vec::new(),
            failure: Some(failure),
        })
    }

    /// An `--atomic` run whose `COMMIT` failed (a deferred constraint, a lost connection, a
    /// signal): reported at its last migration; rolled back unless a lost connection left it
    /// committed (read again on a new session).
    async fn atomic_commit_failed(
        &mut self,
        last: &Migration,
        direction: Direction,
        e: &tokio_postgres::Error,
        steps: Vec<Step>,
        count: usize,
    ) -> anyhow::Result<Outcome> {
        let section = section(last, direction);
        let statements = statements(last, section)?;
        let mut failure = self.failure(last, direction, section, &statements, Part::Commit, e);
        failure.warnings = steps.last().map(|s| s.warnings.clone()).unwrap_or_default();
        if is_connection_lost(e) {
            failure.connection_lost = true;
            let (state, rolled_back, _) = self.after_lost_connection(last, direction, e).await;
            failure.state = state;
            failure.rolled_back = rolled_back;
            let steps = if rolled_back { Vec::new() } else { steps };
            return Ok(Outcome {
                steps,
                skipped: Vec::new(),
                failure: Some(failure),
            });
        }
        self.deallocate_after_pooled_failure().await;
        failure.rolled_back = true;
        failure.state = format!(
            "the whole --atomic run was rolled back at its COMMIT; nothing was applied (none \
             of its {count} migration(s))"
        );
        let note = (self.note)(last.version);
        self.log_failure(last, SystemTime::now(), &mut failure, note)
            .await;
        self.release_if_interrupted().await;
        Ok(Outcome {
            steps: Vec::new(),
            skipped: Vec::new(),
            failure: Some(failure),
        })
    }

    /// The `application_name` this client connected with (`application_name`, else
    /// `fallback_application_name`, else "migrate"), which the pooled reset restores.
    fn application_name(&self) -> &str {
        self.url
            .config()
            .get_application_name()
            .unwrap_or("migrate")
    }

    /// The settings every migration starts with: the server's check that this client is
    /// still connected, when the server takes it (`session::check_client_connection`), then
    /// the project's (which may set it otherwise).
    fn migration_settings(&self) -> Vec<(String, String)> {
        let check = self.session.checks_client().then(|| {
            (
                "client_connection_check_interval".to_string(),
                session::CLIENT_CONNECTION_CHECK_INTERVAL.to_string(),
            )
        });
        check
            .into_iter()
            .chain(self.settings.iter().cloned())
            .collect()
    }

    /// `settings_sql` of `migration_settings`.
    fn settings_sql(&self, local: bool) -> Option<String> {
        settings_sql(&self.migration_settings(), local)
    }

    /// `reset_pooled` with the application name this client connected with.
    fn reset_pooled(&self) -> String {
        reset_pooled(self.application_name())
    }

    /// `RESET_SESSION`, then `application_name` restored.
    fn reset_session(&self) -> String {
        self.reset_keeping_application_name(RESET_SESSION)
    }

    /// The session reset `reset` (`RESET_SESSION`, `RESET_AFTER_TRACKING`, ...), then
    /// `restore_application_name` with the name this client connected with.
    fn reset_keeping_application_name(&self, reset: &str) -> String {
        format!(
            "{reset}; {}",
            restore_application_name(self.application_name())
        )
    }

    /// `record` for this run's locking; `own_transaction` for a migration in a transaction of
    /// its own (with `DEFERRED_NOW`), not for one of an `--atomic` run.
    fn record(
        &self,
        migration: &Migration,
        direction: Direction,
        note: Option<&str>,
        own_transaction: bool,
    ) -> String {
        let pooled = match self.locking {
            Locking::Session => None,
            Locking::Transaction { .. } => Some(self.reset_pooled()),
        };
        record(
            migration,
            direction,
            note,
            pooled.as_deref(),
            self.session.lock_generation,
            own_transaction,
        )
    }

    /// Through a pooler, after a migration's transaction failed (and rolled back): a
    /// `PREPARE` it ran before failing outlives the rollback on the server connection it ran
    /// on. Best effort: PgBouncer hands this next statement the server connection just
    /// released (most recently used first) unless another client is waiting for one.
    async fn deallocate_after_pooled_failure(&self) {
        if matches!(self.locking, Locking::Transaction { .. }) {
            // The whole pooled reset, not only the deallocation: what the failed migration
            // did outside its transaction's reach (a session-level advisory lock, a
            // `PREPARE`) survives the rollback, and the reset at its end never ran.
            let _ = self
                .session
                .client
                .batch_execute(&self.reset_pooled())
                .await;
        }
    }

    /// After an interrupt: releases the session-level lock at once (every command that runs
    /// migrations), rather than when the server notices the session has gone.
    async fn release_if_interrupted(&self) {
        if self.locking == Locking::Session && session::interrupted().is_some() {
            let _ = lock::release(&self.session.client).await;
        }
    }

    /// One migration and its tracking rows in one transaction, sent in one flight.
    async fn run_in_transaction(
        &mut self,
        migration: &Migration,
        direction: Direction,
    ) -> anyhow::Result<Ran> {
        let note = (self.note)(migration.version);
        let started = SystemTime::now();
        let clock = Instant::now();
        let section = section(migration, direction);
        let statements = statements(migration, section)?;
        let mark = flight_mark();
        let begin = format!(
            "{}; {MARK_TRANSACTION}; {}",
            state::BEGIN,
            set_flight(&mark)
        );
        let mut parts = match self.locking {
            // The reset stays a message of its own, outside the transaction: a ROLLBACK of
            // the migration must not roll the reset back with it.
            // A session the last migration's flight reset after its COMMIT needs no reset.
            Locking::Session if self.session.reset => vec![(Part::Setup, begin)],
            Locking::Session => vec![(Part::Setup, self.reset_session()), (Part::Setup, begin)],
            // Through a pooler the reset runs inside the transaction, on whichever server
            // connection it got; so does the one before COMMIT (in `record`).
            Locking::Transaction { lock_wait } => vec![
                (Part::Setup, state::BEGIN.into()),
                (
                    Part::Setup,
                    format!(
                        "{}; {MARK_TRANSACTION}; {}",
                        self.reset_pooled(),
                        set_flight(&mark)
                    ),
                ),
                (
                    Part::Guard,
                    lock::xact_lock(lock_wait, self.session.checks_client()),
                ),
                (
                    Part::Guard,
                    guard(migration, direction, self.out_of_order, self.versions),
                ),
            ],
        };
        if let Some(sql) = self.settings_sql(true) {
            parts.push((Part::Settings, sql));
        }
        let flight = self
            .flight(
                parts,
                section,
                &statements,
                Some(self.record(migration, direction, note.as_deref(), true)),
                true,
                Some(&mark),
            )
            .await;
        let duration_ms = clock.elapsed().as_millis() as i64;
        if flight.error.is_none() {
            keep_warnings(&self.session.client, migration, direction, &flight.warnings).await?;
        }
        self.settle(migration, direction, flight, started, duration_ms, note)
            .await
    }

    /// What became of a migration run in a transaction of its own, from its `flight`: done
    /// (its warnings already kept), skipped, or failed, with what is known of its state
    /// written to `_migrate.history` (dirty when part of it may be committed).
    async fn settle(
        &mut self,
        migration: &Migration,
        direction: Direction,
        flight: Flight,
        started: SystemTime,
        duration_ms: i64,
        note: Option<String>,
    ) -> anyhow::Result<Ran> {
        let section = section(migration, direction);
        let statements = statements(migration, section)?;
        let Some((part, e)) = flight.error else {
            return Ok(Ran::Done(Step {
                version: migration.version,
                name: migration.name.clone(),
                direction,
                duration_ms,
                warnings: flight.warnings,
            }));
        };
        if part == Part::Guard && e.code().is_some_and(|c| c.code() == DONE_ELSEWHERE) {
            return Ok(Ran::Skipped);
        }
        if let Locking::Transaction { lock_wait } = self.locking {
            if part == Part::Guard
                && e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE)
            {
                return Err(lock::not_acquired(&self.session.client, lock_wait).await);
            }
        }
        if !is_connection_lost(&e) {
            self.deallocate_after_pooled_failure().await;
        }
        let mut failure = self.failure(migration, direction, section, &statements, part, &e);
        failure.warnings = flight.warnings;
        if is_connection_lost(&e) {
            failure.connection_lost = true;
            let (state, rolled_back, finished) =
                self.after_lost_connection(migration, direction, &e).await;
            failure.state = state;
            failure.rolled_back = rolled_back;
            if finished {
                // It took effect: a step like any other (the history line is the server's,
                // written in its transaction), and the lost connection stops the run after
                // it, at no line of it.
                failure.line = None;
                failure.error = "the connection was lost before the server's answers came \
                                 back"
                    .to_string();
                failure.state = format!(
                    "{}; it is {}; nothing after it was started",
                    failure.state,
                    match direction {
                        Direction::Down => "reverted and recorded",
                        _ => "applied and recorded",
                    }
                );
                let step = Step {
                    version: migration.version,
                    name: migration.name.clone(),
                    direction,
                    duration_ms,
                    warnings: std::mem::take(&mut failure.warnings),
                };
                return Ok(Ran::DoneThenLost(step, failure));
            }
            return Ok(Ran::Failed(failure));
        }
        if part == Part::Setup && self.session.client.is_closed() {
            return Err(anyhow::Error::new(e).context("starting the migration's transaction"));
        }
        if flight.ended_early || flight.unseen {
            // Part of it is committed and nothing says which: dirty, never "rolled back".
            let client = &self.session.client;
            client.batch_execute(&self.reset_session()).await?;
            match direction {
                Direction::Down => state::mark_dirty(client, migration.version).await?,
                _ => {
                    if !state::applied(client)
                        .await?
                        .iter()
                        .any(|a| a.version == migration.version)
                    {
                        state::record_applied(client, migration, duration_ms, true).await?;
                    } else {
                        state::mark_dirty(client, migration.version).await?;
                    }
                }
            }
            failure.dirty = true;
            failure.rolled_back = false;
            let why = if flight.ended_early {
                "it ended the transaction migrate ran it in (a COMMIT, ROLLBACK or committing \
                 procedure the file check did not see), so what ran before that was committed \
                 (a COMMIT) or undone (a ROLLBACK) on its own: it is NOT called rolled back"
            } else {
                "PostgreSQL split it into more statements than migrate's file check did, and \
                 one failed after those: a COMMIT or ROLLBACK among the ones the check did not \
                 see may have ended the transaction migrate ran it in, so it is NOT called \
                 rolled back"
            };
            failure.state = format!(
                "{why}: it is marked dirty. Remove the transaction control from the file (or \
                 split what PostgreSQL and the check read differently), check what took effect, \
                 then `migrate repair {v}` or `migrate repair {v} --forget`",
                v = migration.version
            );
            self.log_failure(migration, started, &mut failure, note)
                .await;
            return Ok(Ran::Failed(failure));
        }
        if part == Part::Record && e.code().is_some_and(|c| c.code() == LOCK_RELEASED) {
            failure.rolled_back = true;
            failure.state = "it was rolled back, and the run stops: it released the migration \
                             lock, so another run may have started beside this one"
                .into();
            self.log_failure(migration, started, &mut failure, note)
                .await;
            return Ok(Ran::Failed(failure));
        }
        // An error inside the transaction made its COMMIT a ROLLBACK; an error at COMMIT
        // (a deferred constraint) rolled it back too. Either way the session is idle now.
        failure.rolled_back = true;
        failure.state = match direction {
            Direction::Down => "it was rolled back: it is still applied".into(),
            _ => "it was rolled back: nothing of it was applied or recorded".into(),
        };
        if failure.interrupted.is_none() && part == Part::Guard {
            failure.state = "another run changed the applied migrations first; nothing was \
                             done: run `migrate status`"
                .into();
        }
        self.log_failure(migration, started, &mut failure, note)
            .await;
        Ok(Ran::Failed(failure))
    }

    /// `transaction: none`: recorded dirty and committed first, then each statement on its
    /// own (so `CREATE INDEX CONCURRENTLY` works), then marked clean.
    async fn run_statements(
        &mut self,
        migration: &Migration,
        direction: Direction,
    ) -> anyhow::Result<Result<Step, Failure>> {
        let started = SystemTime::now();
        let clock = Instant::now();
        let note = (self.note)(migration.version);
        let section = section(migration, direction);
        let statements = statements(migration, section)?;
        let client = &self.session.client;
        client.batch_execute(&self.reset_session()).await?;
        // In progress before anything runs: a kill from here on leaves it dirty.
        match direction {
            Direction::Down => state::mark_dirty(client, migration.version).await?,
            _ => state::record_applied(client, migration, 0, true).await?,
        }
        let mut parts = Vec::new();
        if let Some(sql) = self.settings_sql(false) {
            parts.push((Part::Settings, sql));
        }
        let flight = self
            .flight(parts, section, &statements, None, false, None)
            .await;
        let duration_ms = clock.elapsed().as_millis() as i64;
        let warnings = flight.warnings;
        if let (Some(i), Some(signal)) = (flight.stopped_before, session::interrupted()) {
            let failure = self
                .stopped(
                    migration,
                    direction,
                    section,
                    &statements,
                    i,
                    signal,
                    warnings,
                )
                .await?;
            return Ok(Err(failure));
        }
        let lost = flight
            .error
            .as_ref()
            .is_some_and(|(_, e)| is_connection_lost(e));
        if self.locking == Locking::Session && !lost {
            let client = &self.session.client;
            client.batch_execute(&self.reset_session()).await?;
            if !state::lock_still_ours(client, self.session.lock_generation).await? {
                let mut failure = Failure::did_not_start(
                    migration,
                    direction,
                    "the migration released the migration lock this run holds (DISCARD ALL, \
                     pg_advisory_unlock_all()), and another run has taken it since"
                        .to_string(),
                );
                failure.warnings = warnings;
                failure.state = format!(
                    "its statements ran{}, but its outcome is not recorded: another run may \
                     have changed the applied migrations meanwhile. The run stops; check \
                     `migrate status` and what took effect, then `migrate repair {v}` (it \
                     counts as applied) or `migrate repair {v} --forget`",
                    match &flight.error {
                        Some(_) => " until one failed",
                        None => "",
                    },
                    v = migration.version
                );
                self.log_failure(migration, started, &mut failure, note)
                    .await;
                return Ok(Err(failure));
            }
        }
        let client = &self.session.client;
        match flight.error {
            None => {
                client.batch_execute(&self.reset_session()).await?;
                state::finish_dirty(
                    client,
                    migration,
                    direction,
                    duration_ms,
                    started,
                    note.as_deref(),
                )
                .await?;
                keep_warnings(client, migration, direction, &warnings).await?;
                Ok(Ok(Step {
                    version: migration.version,
                    name: migration.name.clone(),
                    direction,
                    duration_ms,
                    warnings,
                }))
            }
            Some((part, e)) => {
                let mut failure =
                    self.failure(migration, direction, section, &statements, part, &e);
                failure.warnings = warnings;
                if is_connection_lost(&e) {
                    failure.connection_lost = true;
                    failure.dirty = true;
                    failure.state =
                        format!(
                        "the connection was lost part way; it was recorded as in progress before \
                         its first statement, so it stays marked dirty: check what took effect, \
                         then `migrate repair {0}` (it counts as {1}) or `migrate repair {0} \
                         --forget` (it counts as {2})",
                        migration.version,
                        "applied",
                        if direction == Direction::Down { "reverted" } else { "pending" },
                    );
                    return Ok(Err(failure));
                }
                let client = &self.session.client;
                client.batch_execute(&self.reset_session()).await?;
                // Nothing took effect when the failed statement is one that PostgreSQL rolls
                // back by itself and every one before it only set the session (`SET`,
                // `RESET`, `SHOW`: undone by the reset just sent); otherwise it stays dirty.
                let untouched = match part {
                    Part::Settings => true,
                    Part::Statement { index: i, .. } => {
                        statements[..i].iter().all(|s| session_only(s.sql))
                            && rolls_back_alone(statements[i].sql)
                    }
                    _ => false,
                };
                if untouched {
                    match direction {
                        Direction::Down => state::clear_dirty(client, migration.version).await?,
                        _ => state::forget_applied(client, migration.version).await?,
                    }
                    failure.dirty = false;
                    failure.rolled_back = true;
                    failure.state = match direction {
                        Direction::Down => {
                            "its first statement that changes anything failed and PostgreSQL \
                             rolled it back: it is still applied"
                                .into()
                        }
                        _ => "its first statement that changes anything failed and PostgreSQL \
                              rolled it back: nothing of it was applied"
                            .into(),
                    };
                } else {
                    failure.dirty = true;
                    failure.rolled_back = false;
                    failure.state = dirty_advice(migration, direction, &statements, part);
                }
                self.log_failure(migration, started, &mut failure, note)
                    .await;
                Ok(Err(failure))
            }
        }
    }

    /// Sends `parts`, then the statements (COPY rows streamed after their statement), then
    /// `record` and, when `commit`, COMMIT. Without COPY everything goes out at once, the
    /// section's statements as one message, and the answers are read after; with `commit`
    /// false the statements run one after another, one message each, and the first error
    /// stops them. Server notices are passed on as they arrive.
    async fn flight(
        &mut self,
        parts: Vec<(Part, String)>,
        section: &Section,
        statements: &[Statement<'_>],
        record: Option<String>,
        commit: bool,
        mark: Option<&str>,
    ) -> Flight {
        let reset_after_tracking = self.reset_keeping_application_name(RESET_AFTER_TRACKING);
        let Session {
            client,
            notices,
            positions_in_bytes,
            ..
        } = &mut *self.session;
        let in_bytes = *positions_in_bytes;
        let progress = self.progress;
        let mut warnings = Vec::new();
        let mut messages: Vec<(Part, String)> = parts;
        let has_copy = statements.iter().any(|s| s.copy_data.is_some());
        let pipelined = commit && !has_copy;
        let in_transaction = record.is_some();
        let mut ended_early = false;
        // PostgreSQL ran more statements than the file check split the section into.
        let mut unseen = false;
        // Outside a transaction: the statement a signal came before (none of it started).
        let mut stopped_before = None;
        let locking = self.locking;
        // Set when the flight ended with the reset for the next migration.
        let mut reset = false;
        let error = {
            let work = async {
                if pipelined {
                    // The statements as one message, as the file has them (comments between
                    // them included): the server parses and runs them in turn, with the
                    // per-message work done once per migration instead of once per
                    // statement, and stops at the first error (a syntax error anywhere
                    // stops it before any statement ran).
                    if let (Some(first), Some(last)) = (statements.first(), statements.last()) {
                        let body = &section.sql[first.offset..last.offset + last.sql.len()];
                        messages.push((Part::Body, body.to_string()));
                    }
                    // The tracking rows, COMMIT and (with the session-level lock) the reset for
                    // the next migration travel as one message: two messages fewer for the
                    // server to read and answer per migration. The reset runs only if COMMIT
                    // did (an error ends the message).
                    let (last, record_len) = match &record {
                        Some(record) => {
                            let then = match locking {
                                Locking::Session => format!("; {reset_after_tracking}"),
                                Locking::Transaction { .. } => String::new(),
                            };
                            let len = lexer::split_statements(record).map_or(0, |all| all.len());
                            ((Part::Record, format!("{record}; COMMIT{then}")), Some(len))
                        }
                        None => ((Part::Commit, "COMMIT".to_string()), None),
                    };
                    messages.push(last);
                    let results =
                        join_all(messages.iter().map(|(_, sql)| completed(client, sql))).await;
                    ended_early = results.iter().any(|(_, r)| {
                        r.as_ref()
                            .err()
                            .and_then(|e| e.code())
                            .is_some_and(|c| c.code() == ENDED_EARLY)
                    });
                    let last = messages.len() - 1;
                    // The first error is the cause; what follows failed because of it.
                    let Some((i, done, e)) = results
                        .into_iter()
                        .enumerate()
                        .find_map(|(i, (done, r))| r.err().map(|e| (i, done, e)))
                    else {
                        reset = locking == Locking::Session && record_len.is_some();
                        return None;
                    };
                    let part = match record_len {
                        // In the last message: the tracking rows failed (COMMIT never ran, so
                        // the transaction is still open and aborted), COMMIT failed, or the
                        // reset after a COMMIT that took effect did (the migration is done).
                        Some(len) if i == last && done > len => return None,
                        Some(len) if i == last && done == len => Part::Commit,
                        Some(_) if i == last && done == DEFERRED_AT => Part::Deferred,
                        _ if messages[i].0 == Part::Body => {
                            // As many statements completed as the check saw, and then one
                            // more failed: the server split the section otherwise, and what
                            // it ran unseen may have ended the transaction.
                            unseen = done >= statements.len();
                            in_body(section, statements, done, &e, in_bytes, 0)
                        }
                        _ => messages[i].0,
                    };
                    if part != Part::Commit && record.is_some() && !is_connection_lost(&e) {
                        // The tracking rows could not tell, when the migration ended our
                        // transaction, began one of its own and failed in it (an aborted
                        // transaction runs nothing): ask, then end it.
                        ended_early |= ended_before_error(client, mark).await;
                        let _ = client.batch_execute("COMMIT").await;
                    }
                    return Some((part, e));
                }
                for (part, sql) in &messages {
                    if let Err(e) = client.batch_execute(sql).await {
                        return Some((*part, e));
                    }
                }
                for (i, s) in statements.iter().enumerate() {
                    // Outside a transaction each statement commits: after a signal, none more
                    // is started (in one, the cancel and the rollback see to that).
                    if !in_transaction && session::interrupted().is_some() {
                        stopped_before = Some(i);
                        return None;
                    }
                    // One statement per message: more than one completing (and a failure
                    // after one completed) means the server split it into several.
                    let result = match &s.copy_data {
                        Some(data) => copy_in(client, s.sql, data.text).await,
                        None => {
                            let (done, result) = completed(client, s.sql).await;
                            unseen |= done > usize::from(result.is_ok());
                            result
                        }
                    };
                    if let Err(e) = result {
                        if in_transaction && !is_connection_lost(&e) {
                            ended_early = ended_before_error(client, mark).await;
                        }
                        if commit {
                            let _ = client.batch_execute("ROLLBACK").await;
                        }
                        return Some((
                            Part::Statement {
                                index: i,
                                sent_at: s.offset,
                                sent_to: s.offset + s.sql.len(),
                                lead: 0,
                            },
                            e,
                        ));
                    }
                }
                if let Some(record) = &record {
                    if let (done, Err(e)) = completed(client, record).await {
                        ended_early |= e.code().is_some_and(|c| c.code() == ENDED_EARLY);
                        if !is_connection_lost(&e) {
                            ended_early |= ended_before_error(client, mark).await;
                        }
                        if commit {
                            let _ = client.batch_execute("ROLLBACK").await;
                        }
                        // Only a migration's own transaction has the deferred checks there.
                        let part = match commit && done == DEFERRED_AT {
                            true => Part::Deferred,
                            false => Part::Record,
                        };
                        return Some((part, e));
                    }
                }
                if commit {
                    if let Err(e) = client.batch_execute("COMMIT").await {
                        return Some((Part::Commit, e));
                    }
                }
                None
            };
            tokio::pin!(work);
            loop {
                tokio::select! {
                    biased;
                    error = &mut work => break error,
                    Some(notice) = notices.next() => {
                        progress.server_message(&notice);
                        warnings.push(notice);
                    }
                    // After a signal the flight is cancelled again every 250 ms until it
                    // has come back: the first cancel request does nothing when it lands
                    // between two statements, or when the migration catches it
                    // (`EXCEPTION WHEN query_canceled`), and the rest of the flight would
                    // run on, up to its COMMIT. A request that arrives once the session is
                    // idle is ignored by the server.
                    _ = tokio::time::sleep(RECANCEL) => {
                        if session::interrupted().is_some() {
                            session::cancel_all().await;
                        }
                    }
                }
            }
        };
        for notice in notices.drain() {
            progress.server_message(&notice);
            warnings.push(notice);
        }
        if session::interrupted().is_some() {
            // The signal's own cancel request may still be on its way: let it land before
            // anything else is sent, or it cancels the bookkeeping that follows.
            session::settle().await;
        }
        self.session.reset = reset;
        Flight {
            error,
            warnings,
            ended_early,
            unseen,
            stopped_before,
        }
    }

    /// The failure for an error in `part` of a migration's flight.
    fn failure(
        &self,
        migration: &Migration,
        direction: Direction,
        section: &Section,
        statements: &[Statement<'_>],
        part: Part,
        error: &tokio_postgres::Error,
    ) -> Failure {
        let statement = match part {
            Part::Statement {
                index,
                sent_at,
                sent_to,
                lead,
            } => statements.get(index).map(|s| (s, (sent_at..sent_to, lead))),
            _ => None,
        };
        let (line, mut text) = match error.as_db_error() {
            Some(db) => (
                statement.clone().map(|(s, (sent, lead))| {
                    error_line(
                        section,
                        statements,
                        s,
                        sent,
                        lead,
                        db,
                        self.session.positions_in_bytes,
                    )
                }),
                describe_db_error(db),
            ),
            None => (
                statement
                    .clone()
                    .map(|(s, _)| section.line_of_offset(s.offset + lexer::leading_blank(s.sql))),
                crate::db::chain(error),
            ),
        };
        let interrupted = session::interrupted();
        match part {
            Part::Settings => {
                text = format!("applying the migration settings from migrate.toml ([session], lock_timeout, statement_timeout): {text}")
            }
            Part::Record => text = format!("recording it in _migrate: {text}"),
            Part::Commit | Part::Deferred => text = format!("at COMMIT: {text}"),
            Part::Guard => text = format!("{GUARD_CONTEXT}: {text}"),
            _ => {}
        }
        if let (Some(&SqlState::INSUFFICIENT_PRIVILEGE), Some(db), Some((statement, _))) =
            (error.code(), error.as_db_error(), statement.clone())
        {
            let before = statements
                .iter()
                .take_while(|s| !std::ptr::eq(*s, statement));
            let last = before
                .filter_map(|s| role_switch(s.sql).map(|to_another| (s, to_another)))
                .last();
            let role = match last.filter(|(_, to_another)| *to_another).map(|(s, _)| s) {
                Some(s) => format!(
                    "the role this migration switched to at line {}",
                    section.line_of_offset(s.offset + lexer::leading_blank(s.sql))
                ),
                None => "the connecting role".to_string(),
            };
            text.push_str(&privilege_advice(db.message(), statement.sql, &role));
        }
        // 25001 also means "SET TRANSACTION ... must be called before any query", which no
        // `transaction: none` would help.
        if error.code() == Some(&SqlState::ACTIVE_SQL_TRANSACTION)
            && error
                .as_db_error()
                .is_some_and(|db| db.message().contains("transaction block"))
            && migration.transactional
            && statement.is_some()
        {
            text.push_str("; add `-- transaction: none` to the file's header to run it outside a transaction (in a migration of its own)");
        }
        if let (Some(signal), Some(&SqlState::QUERY_CANCELED)) = (interrupted, error.code()) {
            text = format!(
                "interrupted by {}: the running statement was cancelled ({text})",
                session::signal_name(signal)
            );
        }
        Failure {
            version: migration.version,
            name: migration.name.clone(),
            direction,
            file: migration.path.clone(),
            line,
            error: text,
            dirty: false,
            rolled_back: false,
            connection_lost: false,
            interrupted: interrupted.map(|s| session::signal_name(s).to_string()),
            state: String::new(),
            warnings: Vec::new(),
        }
    }

    /// After a lost connection: reconnects (trying for up to `RECONNECT_WAIT`), waits for the
    /// lost session to end (up to `LOST_SESSION_WAIT`, by taking the migration lock it holds),
    /// and reads whether the migration is recorded, which tells whether its transaction
    /// committed. Returns what is known, and whether it was rolled back (false when unknown).
    async fn after_lost_connection(
        &self,
        migration: &Migration,
        direction: Direction,
        error: &tokio_postgres::Error,
    ) -> (String, bool, bool) {
        // The server's own word (57P01 "terminating connection due to administrator
        // command") comes with the failed statement's error; the session's close reason is
        // the fallback, for a connection that died between statements.
        let reason = error
            .as_db_error()
            .map(describe_db_error)
            .or_else(|| self.session.close_reason())
            .map_or(String::new(), |r| format!(" (the server said: {r})"));
        // The flight's statements, tracking rows and COMMIT went out together: the server may
        // still run what it had received, up to the COMMIT, after the connection is gone. The
        // lost session holds the migration lock (the session-level one, or through a pooler
        // the transaction's) until it ends, so taking it on a new session waits for that.
        let recorded = async {
            // The server, or the pooler or network in front of it, may be back in a moment:
            // try again every 250 ms for up to RECONNECT_WAIT (not after a signal).
            let deadline = Instant::now() + RECONNECT_WAIT;
            let session = loop {
                match crate::db::connect(self.url).await {
                    Ok(session) => break session,
                    Err(_) if Instant::now() < deadline && session::interrupted().is_none() => {
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                    Err(e) => return Err(e),
                }
            };
            let client = &session.client;
            match self.locking {
                Locking::Session => lock::acquire(&session, LOST_SESSION_WAIT, &|_| {}).await?,
                Locking::Transaction { .. } => {
                    client.batch_execute("BEGIN").await?;
                    lock::acquire_xact(&session, LOST_SESSION_WAIT).await?;
                }
            }
            let applied = state::applied(client).await?;
            anyhow::Ok(applied.iter().any(|a| a.version == migration.version))
        }
        .await;
        match recorded {
            Ok(recorded) => {
                let done = recorded != (direction == Direction::Down);
                let state = if done {
                    format!(
                        "the connection was lost{reason} after the whole migration had been \
                         sent; the server finished it: reconnected, waited for that session to \
                         end, and found it {}: its transaction committed",
                        if recorded {
                            "recorded as applied"
                        } else {
                            "no longer recorded"
                        }
                    )
                } else {
                    format!(
                        "the connection was lost before its transaction committed{reason}; \
                         reconnected, waited for that session to end, and found it {}: \
                         PostgreSQL rolled it back: it is {}",
                        if recorded {
                            "still recorded"
                        } else {
                            "not recorded"
                        },
                        if direction == Direction::Down {
                            "still applied"
                        } else {
                            "not applied"
                        }
                    )
                };
                (state, !done, done)
            }
            Err(e) => (
                format!(
                    "the connection was lost{reason}, and whether the server finished what it \
                     had already received (up to its COMMIT) is unknown: reconnecting and \
                     waiting for that session to end failed ({e:#}); run `migrate status` when \
                     the server is back"
                ),
                false,
                false,
            ),
        }
    }

    /// The run stopped on a signal before this migration began.
    async fn not_started(
        &mut self,
        migration: &Migration,
        direction: Direction,
        signal: i32,
        ran: Option<Vec<ServerMessage>>,
    ) -> anyhow::Result<Failure> {
        let mut failure = Failure::did_not_start(
            migration,
            direction,
            format!(
                "interrupted by {} before it started",
                session::signal_name(signal)
            ),
        );
        failure.interrupted = Some(session::signal_name(signal).to_string());
        if let Some(warnings) = ran {
            // Sent ahead in a chain, it began before the signal came; nothing committed it.
            failure.warnings = warnings;
            failure.error = format!(
                "interrupted by {} before its COMMIT",
                session::signal_name(signal)
            );
            failure.rolled_back = true;
            failure.state = match direction {
                Direction::Down => "it was rolled back: it is still applied".into(),
                _ => "it was rolled back: nothing of it was applied or recorded".into(),
            };
        }
        let note = (self.note)(migration.version);
        self.log_failure(migration, SystemTime::now(), &mut failure, note)
            .await;
        Ok(failure)
    }

    /// A `transaction: none` migration a signal stopped before its statement `next` started:
    /// what ran before it took effect (dirty), unless that only set the session (then it is
    /// as if it never started).
    #[allow(clippy::too_many_arguments)]
    async fn stopped(
        &mut self,
        migration: &Migration,
        direction: Direction,
        section: &Section,
        statements: &[Statement<'_>],
        next: usize,
        signal: i32,
        warnings: Vec<ServerMessage>,
    ) -> anyhow::Result<Failure> {
        let s = &statements[next];
        let line = section.line_of_offset(s.offset + lexer::leading_blank(s.sql));
        let name = session::signal_name(signal);
        let untouched = statements[..next].iter().all(|s| session_only(s.sql));
        let client = &self.session.client;
        client.batch_execute(&self.reset_session()).await?;
        let state = if untouched {
            match direction {
                Direction::Down => state::clear_dirty(client, migration.version).await?,
                _ => state::forget_applied(client, migration.version).await?,
            }
            match direction {
                Direction::Down => "it stopped before any statement that changes anything: it \
                                    is still applied"
                    .to_string(),
                _ => "it stopped before any statement that changes anything: nothing of it was \
                      applied"
                    .to_string(),
            }
        } else {
            dirty_advice(
                migration,
                direction,
                statements,
                Part::Statement {
                    index: next,
                    sent_at: s.offset,
                    sent_to: s.offset + s.sql.len(),
                    lead: 0,
                },
            )
        };
        let mut failure = Failure {
            version: migration.version,
            name: migration.name.clone(),
            direction,
            file: migration.path.clone(),
            line: Some(line),
            error: format!("interrupted by {name} before this statement started"),
            dirty: !untouched,
            rolled_back: false,
            connection_lost: false,
            interrupted: Some(name.to_string()),
            state,
            warnings,
        };
        let note = (self.note)(migration.version);
        self.log_failure(migration, SystemTime::now(), &mut failure, note)
            .await;
        Ok(failure)
    }

    /// Logs a failed migration run in the history, as the connecting role.
    /// Writes the failure's history line. When that fails too (no right to write
    /// `_migrate.history`, a damaged state table), the failure is still what is reported, and
    /// its state says the history line is missing and why.
    async fn log_failure(
        &self,
        migration: &Migration,
        started: SystemTime,
        failure: &mut Failure,
        note: Option<String>,
    ) {
        if session::interrupted().is_some() {
            // The signal's own cancel request must land before the history line is written,
            // or it cancels that (attacker finding: 1 run in about 150).
            session::settle().await;
        }
        let client = &self.session.client;
        let error = format!("{}: {}", failure.location(), failure.error);
        let note = match (&failure.interrupted, note) {
            (Some(signal), Some(note)) => Some(format!("interrupted by {signal}; {note}")),
            (Some(signal), None) => Some(format!("interrupted by {signal}")),
            (None, note) => note,
        };
        let warnings: Vec<String> = failure.warnings.iter().map(|w| w.to_string()).collect();
        let written = state::record_history(
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
                warnings: &warnings,
            },
        )
        .await;
        if let Err(e) = written {
            failure.state = format!(
                "{}; this failure could not be written to _migrate.history ({e:#})",
                failure.state
            );
        }
    }
}

/// Keeps a successful migration's warnings with its history line (written in its own
/// transaction before the warnings had arrived).
async fn keep_warnings(
    client: &Client,
    migration: &Migration,
    direction: Direction,
    warnings: &[ServerMessage],
) -> anyhow::Result<()> {
    if warnings.is_empty() {
        return Ok(());
    }
    let texts: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
    state::add_warnings(client, migration.version, direction, &texts).await
}

/// What became of one migration of a run.
enum Ran {
    Done(Step),
    /// Another run did it first (through a pooler, under the transaction-level lock).
    Skipped,
    Failed(Failure),
    /// It took effect, but the connection was lost before its answer came back (the server
    /// finished what it had received): done, and the run stops.
    DoneThenLost(Step, Failure),
}

struct Flight {
    error: Option<(Part, tokio_postgres::Error)>,
    warnings: Vec<ServerMessage>,
    /// PostgreSQL ran statements the file check did not see as such (it split the file
    /// otherwise) before one failed: whether they ended the transaction cannot be told.
    unseen: bool,
    /// Outside a transaction: the statement a signal came before, none of which started.
    stopped_before: Option<usize>,
    /// The migration ended the transaction it ran in: part of it may be committed.
    ended_early: bool,
}

/// The statement of a section sent as one message (`Part::Body`) that failed with `error`
/// after `done` of them completed: the one PostgreSQL's error position points into (a syntax
/// error anywhere fails the whole message before any statement runs), else the next one.
fn in_body(
    section: &Section,
    statements: &[Statement<'_>],
    done: usize,
    error: &tokio_postgres::Error,
    in_bytes: bool,
    lead: usize,
) -> Part {
    let sent_at = statements.first().map_or(0, |s| s.offset);
    let sent_to = statements.last().map_or(0, |s| s.offset + s.sql.len());
    let position = error.as_db_error().and_then(|db| match db.position() {
        Some(tokio_postgres::error::ErrorPosition::Original(p)) => {
            (*p as usize).checked_sub(lead).filter(|p| *p > 0)
        }
        _ => None,
    });
    let index = match position {
        Some(p) => {
            let at = sent_at + char_offset(&section.sql[sent_at..sent_to], p, in_bytes);
            statements.iter().rposition(|s| s.offset <= at).unwrap_or(0)
        }
        None => done.min(statements.len().saturating_sub(1)),
    };
    Part::Statement {
        index,
        sent_at,
        sent_to,
        lead,
    }
}

/// The byte offset in `text` of PostgreSQL's 1-based `position`: in characters, or in bytes
/// on a `SQL_ASCII` database (`Session::positions_in_bytes`); the end of `text` when it is
/// past it.
fn char_offset(text: &str, position: usize, in_bytes: bool) -> usize {
    let at = position.saturating_sub(1);
    if in_bytes {
        return at.min(text.len());
    }
    text.char_indices().nth(at).map_or(text.len(), |(i, _)| i)
}

/// Runs `sql` (one or more statements) as one simple-query message: how many of its
/// statements completed, and the error of the one that failed.
async fn completed(client: &Client, sql: &str) -> (usize, Result<(), tokio_postgres::Error>) {
    match client.simple_query_raw(sql).await {
        Ok(stream) => counted(Box::pin(stream)).await,
        Err(e) => (0, Err(e)),
    }
}

/// The answers of one simple-query message already sent (`Client::simple_query_raw` sends
/// it when first polled, before any answer): how many of its statements completed, and the
/// error of the one that failed.
async fn counted(
    mut stream: std::pin::Pin<Box<tokio_postgres::SimpleQueryStream>>,
) -> (usize, Result<(), tokio_postgres::Error>) {
    let mut done = 0;
    while let Some(message) = stream.next().await {
        match message {
            Ok(SimpleQueryMessage::CommandComplete(_)) => done += 1,
            Ok(_) => {}
            Err(e) => return (done, Err(e)),
        }
    }
    (done, Ok(()))
}

/// After an error in a migration's transaction: true when the migration had ended that
/// transaction itself before (a `COMMIT` or `ROLLBACK` the file check did not see), so part of
/// it may be committed. Nothing can be asked of an aborted transaction, so this ends it,
/// with `ROLLBACK AND CHAIN`, which fails when no transaction was open at all (the migration
/// ended migrate's and the failed statement ran outside one: ended), and otherwise undoes
/// `FLIGHT_SETTING` unless a `COMMIT` in the migration had kept it (`mark`: ended). Every
/// flight in a transaction sets a mark, directly and through a pooler; without one (none is
/// set outside a transaction) this cannot tell: false. Leaves a transaction open, for the
/// caller's `ROLLBACK` or `COMMIT` to end without a warning.
async fn ended_before_error(client: &Client, mark: Option<&str>) -> bool {
    match client.batch_execute("ROLLBACK AND CHAIN").await {
        Err(e) if e.code() == Some(&SqlState::NO_ACTIVE_SQL_TRANSACTION) => {
            let _ = client.batch_execute("BEGIN").await;
            true
        }
        Err(_) => false,
        Ok(()) => {
            let Some(mark) = mark else {
                return false;
            };
            let kept = format!("SELECT pg_catalog.current_setting('{FLIGHT_SETTING}', true)");
            match client.simple_query(&kept).await {
                Ok(messages) => messages
                    .iter()
                    .any(|m| matches!(m, SimpleQueryMessage::Row(row) if row.get(0) == Some(mark))),
                Err(_) => false,
            }
        }
    }
}

/// Streams a `COPY ... FROM STDIN` statement's rows (the driver's COPY-in).
async fn copy_in(
    client: &Client,
    statement: &str,
    rows: &str,
) -> Result<(), tokio_postgres::Error> {
    use futures_util::SinkExt;
    let sink = client.copy_in::<_, bytes::Bytes>(statement).await?;
    futures_util::pin_mut!(sink);
    sink.send(bytes::Bytes::copy_from_slice(rows.as_bytes()))
        .await?;
    sink.finish().await.map(|_| ())
}

/// How a failure of the guard under the transaction-level lock begins: another run changed
/// the applied migrations between this run's transactions (through a pooler).
pub const GUARD_CONTEXT: &str = "checking the applied migrations under the lock";

/// SQLSTATE of the guard when another run already did this migration: skipped, not failed.
const DONE_ELSEWHERE: &str = "MG001";

/// Under a transaction-level lock (pooler): the migration must still be as the plan saw it.
/// For `up`: not applied (`MG001` when another run applied it: skipped), no higher version
/// applied unless it is applied out of order on purpose, and the file below it still applied
/// (`MG002`: stop; `down` reverts newest first, so a run that reverted anything below has
/// reverted that one). For `down`: still applied (`MG001` when another run reverted it) and
/// still the head (`MG002`).
fn guard(
    migration: &Migration,
    direction: Direction,
    out_of_order: &[i64],
    versions: &[i64],
) -> String {
    let v = migration.version;
    let below = versions[..versions.partition_point(|&x| x < v)].last();
    let (done, conflict, why) = match direction {
        Direction::Down => (
            format!("NOT EXISTS (SELECT 1 FROM _migrate.schema_migrations WHERE version = {v})"),
            format!("EXISTS (SELECT 1 FROM _migrate.schema_migrations WHERE version > {v})"),
            format!("another run applied a migration above {v} meanwhile"),
        ),
        _ => {
            let above = if out_of_order.contains(&v) {
                "false".to_string()
            } else {
                format!("EXISTS (SELECT 1 FROM _migrate.schema_migrations WHERE version > {v})")
            };
            let gone = below.map_or("false".to_string(), |b| {
                format!("NOT EXISTS (SELECT 1 FROM _migrate.schema_migrations WHERE version = {b})")
            });
            (
                format!("EXISTS (SELECT 1 FROM _migrate.schema_migrations WHERE version = {v})"),
                format!("{above} OR {gone}"),
                format!(
                    "another run applied a migration above {v} or reverted {} below it meanwhile",
                    below.map_or("none".to_string(), |b| format!("{b:04}"))
                ),
            )
        }
    };
    format!(
        "DO $migrate$ BEGIN \
         IF {done} THEN RAISE EXCEPTION USING ERRCODE = '{DONE_ELSEWHERE}', \
         MESSAGE = 'migration {v} was {verb} by another run meanwhile'; END IF; \
         IF {conflict} THEN RAISE EXCEPTION USING ERRCODE = 'MG002', \
         MESSAGE = '{why}'; END IF; \
         PERFORM pg_catalog.nextval('_migrate.lock_generation'); \
         END $migrate$",
        verb = if direction == Direction::Down {
            "reverted"
        } else {
            "applied"
        }
    )
}

/// The tracking rows of a successful migration, as the connecting role, in one call of
/// `_migrate.record_step` (see `state::record_step_function`): its `schema_migrations` row
/// (added for `up`, removed for `down`) and its history line, with the server's clock for
/// start (the transaction's), finish and duration; refused (`MG003`) when the migration ended
/// its transaction, and with the session-level lock (`MG004`) when the migration released
/// the run's lock and another run took it.
fn record(
    migration: &Migration,
    direction: Direction,
    note: Option<&str>,
    pooled: Option<&str>,
    generation: Option<i64>,
    deferred_now: bool,
) -> String {
    // Through a pooler: no session-level lock to check, and the pooled reset after the rows
    // leaves the server connection as clean as the migration found it.
    let (check_lock, tail) = match pooled {
        None => (true, String::new()),
        Some(reset) => (false, format!("; {reset}")),
    };
    format!(
        // Every argument cast to its parameter's type: an overload somebody added (with an
        // `integer` version, say) never wins over the function `state::ensure` checked.
        "{AS_CONNECTING_ROLE}; {deferred}SELECT _migrate.record_step('{dir}'::text, {v}::bigint, \
         {name}::text, {checksum}::text, {tool}::text, {note}::text, {check_lock}::boolean, \
         {generation}::bigint){tail}",
        dir = direction.as_str(),
        v = migration.version,
        name = literal(&migration.name),
        checksum = literal(&migration.checksum),
        tool = literal(state::TOOL_VERSION),
        note = note.map_or("NULL".to_string(), literal),
        generation = generation.map_or("NULL".to_string(), |g| g.to_string()),
        deferred = if deferred_now {
            format!("{DEFERRED_NOW}; ")
        } else {
            String::new()
        },
    )
}

fn section(migration: &Migration, direction: Direction) -> &Section {
    match direction {
        Direction::Down => &migration.down,
        _ => &migration.up,
    }
}

/// The section's statements; parsing checked them, so an error here is a file that changed.
fn statements<'m>(
    migration: &Migration,
    section: &'m Section,
) -> anyhow::Result<Vec<Statement<'m>>> {
    section.statements().map_err(|e| {
        crate::error::Error::input(format!(
            "{}:{}: {}",
            migration.path,
            section.line_of_offset(e.offset()),
            e.message()
        ))
        .into()
    })
}

/// The connection is gone (server crash, `pg_terminate_backend`, network): nothing more can
/// be sent on it.
fn is_connection_lost(e: &tokio_postgres::Error) -> bool {
    e.is_closed() || sqlstate::error_is(e, sqlstate::is_connection_lost)
}

/// True for a statement that only sets or shows the session's settings (`SET`, `RESET`,
/// `SHOW`): nothing of it outlives the session reset.
fn session_only(sql: &str) -> bool {
    matches!(
        lexer::leading_words(sql, 1).first().map(String::as_str),
        Some("set" | "reset" | "show")
    )
}

/// True when PostgreSQL undoes a failed statement by itself, leaving nothing behind: every
/// statement except those that cannot run in a transaction block (`CONCURRENTLY` builds,
/// which leave an INVALID index; `VACUUM`, `CREATE DATABASE`, `ALTER SYSTEM`, ...).
fn rolls_back_alone(sql: &str) -> bool {
    let words = lexer::leading_words(sql, 64);
    let word = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    // A DO block or procedure may COMMIT part of its work outside a transaction block.
    let non_transactional = words.iter().any(|w| w == "concurrently")
        || matches!(word(0), "vacuum" | "cluster" | "reindex" | "do" | "call")
        || (word(0) == "alter" && word(1) == "system")
        || (matches!(word(0), "create" | "drop") && matches!(word(1), "database" | "tablespace"));
    !non_transactional
}

/// What to do about a dirty migration, naming what a failed `CONCURRENTLY` build leaves.
fn dirty_advice(
    migration: &Migration,
    direction: Direction,
    statements: &[Statement<'_>],
    part: Part,
) -> String {
    let mut advice =
        String::from("it ran outside a transaction and stopped part way, so it is marked dirty");
    if let Part::Statement { index: i, .. } = part {
        let words = lexer::leading_words(statements[i].sql, 6);
        if words.iter().any(|w| w == "concurrently") && words.first().is_some_and(|w| w == "create")
        {
            advice.push_str(
                "; a failed CREATE INDEX CONCURRENTLY leaves an INVALID index behind: drop it \
                 with DROP INDEX CONCURRENTLY before retrying",
            );
        }
        if i > 0 {
            advice.push_str(&format!("; its first {i} statement(s) took effect"));
        }
    }
    advice.push_str(&format!(
        ". Fix the database by hand, then `migrate repair {v}` (it counts as {a}) or `migrate \
         repair {v} --forget` (it counts as {b})",
        v = migration.version,
        a = "applied",
        b = if direction == Direction::Down {
            "reverted"
        } else {
            "pending"
        },
    ));
    advice
}

/// For "permission denied for table users" (SQLSTATE 42501), which names neither schema nor
/// privilege: the qualified object as the failing statement wrote it, and the privilege the
/// statement needs of it, so the fix is one GRANT (README: "Hosted Supabase: the migration
/// role" lists them all).
/// `role` names who lacks it: the connecting role, or the one the migration switched to.
fn privilege_advice(message: &str, statement: &str, role: &str) -> String {
    let Some((kind, name)) = message
        .strip_prefix("permission denied for ")
        .and_then(|rest| rest.split_once(' '))
    else {
        return String::new();
    };
    let name = name.trim_matches('"');
    let lower = statement.to_ascii_lowercase();
    // The qualified spelling in the statement, e.g. `auth.users` for `users`.
    let qualified = lower
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '"'))
        .map(|w| w.trim_matches('"').replace('"', ""))
        .find(|w| w.ends_with(&format!(".{}", name.to_ascii_lowercase())))
        .unwrap_or_else(|| name.to_string());
    let words = lexer::leading_words(statement, 3);
    let privilege = match (kind, words.first().map(String::as_str)) {
        ("table", _) if lower.contains("references") => "REFERENCES",
        ("table", Some("insert")) => "INSERT",
        ("table", Some("update")) => "UPDATE",
        ("table", Some("delete")) => "DELETE",
        ("table", Some("create" | "alter" | "drop")) => {
            "ownership (or REFERENCES for a foreign key)"
        }
        ("table", _) => "SELECT",
        ("schema", Some("create")) => "CREATE",
        ("schema", _) => "USAGE",
        ("function" | "procedure", _) => "EXECUTE",
        ("sequence", _) => "USAGE",
        _ => "a privilege",
    };
    format!(
        "; {role} lacks {privilege} on {kind} {qualified}: grant it (e.g. GRANT {grant} ON \
         {kind_upper} {qualified} TO <that role>), or run the statement as its owner",
        grant = privilege
            .split(' ')
            .next()
            .unwrap_or(privilege)
            .to_ascii_uppercase(),
        kind_upper = kind.to_ascii_uppercase(),
    )
}

/// Whether a statement switches the role later statements run as: `Some(true)` for `SET
/// [SESSION | LOCAL] ROLE r`, `SET [SESSION | LOCAL] SESSION AUTHORIZATION r` and a
/// `set_config` of `role` or `session_authorization`; `Some(false)` for the ones that switch
/// back to the connecting role (`RESET ROLE`, `SET ROLE NONE`, `RESET SESSION AUTHORIZATION`,
/// `SET SESSION AUTHORIZATION DEFAULT`); `None` for any other statement.
fn role_switch(sql: &str) -> Option<bool> {
    let words = lexer::leading_words(sql, 5);
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let rest = match words.as_slice() {
        ["reset", "role", ..] | ["reset", "session", "authorization", ..] => return Some(false),
        ["set", "session" | "local", "role", rest @ ..] | ["set", "role", rest @ ..] => rest,
        ["set", "session" | "local", "session", "authorization", rest @ ..]
        | ["set", "session", "authorization", rest @ ..] => rest,
        _ => {
            let lower = sql.to_ascii_lowercase();
            let named = lower.contains("'role'") || lower.contains("'session_authorization'");
            return (lower.contains("set_config") && named).then_some(true);
        }
    };
    // A quoted name is not a word `leading_words` returns as `none` or `default`: it switches.
    Some(!matches!(rest.first(), Some(&("none" | "default"))))
}

/// The file line an error in `statement` points at: PostgreSQL's position in the message
/// that held bytes `sent` of the section (its last byte when the position is past its end:
/// "syntax error at end of input");
/// else the line of a PL/pgSQL `DO` block or function body of this section that its context
/// names ("PL/pgSQL function inline_code_block line 3"); else the statement's first line.
fn error_line(
    section: &Section,
    statements: &[Statement<'_>],
    statement: &Statement<'_>,
    sent: std::ops::Range<usize>,
    lead: usize,
    db: &tokio_postgres::error::DbError,
    in_bytes: bool,
) -> usize {
    let position = match db.position() {
        Some(tokio_postgres::error::ErrorPosition::Original(p)) => (*p as usize).checked_sub(lead),
        _ => None,
    };
    if let Some(p) = position.filter(|p| *p > 0) {
        let text = &section.sql[sent.clone()];
        let mut at = char_offset(text, p, in_bytes);
        if at >= text.len() {
            // At end of input: the last code of the message, not comments or blanks after it.
            lexer::Scanner::default().feed_code(text, |i, b| {
                if !b.is_ascii_whitespace() {
                    at = i;
                }
            });
        }
        return section.line_of_offset(sent.start + at.min(text.len()));
    }
    if let Some(context) = db.where_() {
        for frame in context.lines() {
            let Some(rest) = frame.strip_prefix("PL/pgSQL function ") else {
                continue;
            };
            let Some((function, line)) = rest.split_once(" line ") else {
                continue;
            };
            let Ok(line) = line
                .split_whitespace()
                .next()
                .unwrap_or("")
                .parse::<usize>()
            else {
                continue;
            };
            let body = if function == "inline_code_block" {
                Some(statement)
            } else {
                defining_statement(statements, statement, function)
            };
            if let Some(body) = body.and_then(|s| body_offset(s).map(|o| s.offset + o)) {
                return section.line_of_offset(body) + line - 1;
            }
        }
        if let Some(line) = statement.copy_data.as_ref().and_then(|data| {
            let csv = statement.sql.to_ascii_lowercase().contains("csv");
            copy_row_line(context)
                .map(|row| section.line_of_offset(data.offset + record_offset(data.text, row, csv)))
        }) {
            return line;
        }
    }
    section.line_of_offset(statement.offset + lexer::leading_blank(statement.sql))
}

/// The statement of the section that defined `function` as PostgreSQL names it in an error
/// context (`coach.f(integer,character varying)`): a `CREATE [OR REPLACE] FUNCTION |
/// PROCEDURE` of that name whose input argument types are those (`varchar` read as
/// `character varying`, `int` as `integer`, ...), else of that many input arguments, else of
/// that name; of several, the last one before the failing statement (the definition in
/// force when it ran).
fn defining_statement<'s>(
    statements: &'s [Statement<'s>],
    failing: &Statement<'_>,
    function: &str,
) -> Option<&'s Statement<'s>> {
    let (qualified, args) = function.split_once('(').unwrap_or((function, ""));
    let name = qualified
        .rsplit('.')
        .next()
        .unwrap_or(qualified)
        .trim_matches('"')
        .to_ascii_lowercase();
    let types: Vec<String> = match args.trim_end_matches(')').trim() {
        "" => Vec::new(),
        list => list.split(',').map(canonical_type).collect(),
    };
    let mut named: Vec<(&Statement<'_>, Option<Vec<String>>)> = statements
        .iter()
        .filter(|s| {
            let words = lexer::leading_words(s.sql, 8);
            words.first().is_some_and(|w| w == "create")
                && words.iter().any(|w| w == "function" || w == "procedure")
                && words.contains(&name)
        })
        .map(|s| (s, input_arguments(s.sql, &name)))
        .collect();
    // `coach.touch()`: PostgreSQL names the schema when the function is not the one the
    // search path finds first; of functions of that name in several schemas, the one
    // created in it.
    if let Some((schema, _)) = qualified.rsplit_once('.') {
        let schema = schema.trim_matches('"').to_ascii_lowercase();
        let in_schema = |s: &Statement<'_>| {
            s.sql
                .to_ascii_lowercase()
                .replace('"', "")
                .contains(&format!("{schema}.{name}"))
        };
        if named.iter().any(|(s, _)| in_schema(s)) {
            named.retain(|(s, _)| in_schema(s));
        }
    }
    let typed = |args: &Vec<String>| {
        args.len() == types.len()
            && args.iter().zip(&types).all(|(arg, ty)| {
                // `name type` or a bare `type`: either reading may be the one.
                let words: Vec<&str> = arg.split_whitespace().collect();
                canonical_type(&words.join(" ")) == *ty
                    || (words.len() > 1 && canonical_type(&words[1..].join(" ")) == *ty)
            })
    };
    let pick = |keep: &dyn Fn(&Option<Vec<String>>) -> bool| -> Vec<&'s Statement<'s>> {
        named
            .iter()
            .filter(|(_, args)| keep(args))
            .map(|(s, _)| *s)
            .collect()
    };
    let by_types = pick(&|args| args.as_ref().is_some_and(typed));
    let by_arity = pick(&|args| args.as_ref().is_some_and(|a| a.len() == types.len()));
    let candidates = [by_types, by_arity, pick(&|_| true)]
        .into_iter()
        .find(|c| !c.is_empty())
        .unwrap_or_default();
    candidates
        .iter()
        .copied()
        .rfind(|s| s.offset <= failing.offset)
        .or(candidates.first().copied())
}

/// A type name as PostgreSQL's `format_type` writes it in an error context, for comparing:
/// lower case, without a type modifier or a `pg_catalog.` prefix, aliases resolved.
fn canonical_type(name: &str) -> String {
    let lower = name.trim().trim_matches('"').to_ascii_lowercase();
    let without_modifier = match (lower.find('('), lower.rfind(')')) {
        (Some(open), Some(close)) if open < close => {
            format!("{}{}", &lower[..open], &lower[close + 1..])
        }
        _ => lower,
    };
    let words: Vec<&str> = without_modifier.split_whitespace().collect();
    let plain = words.join(" ");
    let plain = plain.strip_prefix("pg_catalog.").unwrap_or(&plain);
    let (base, array) = match plain.strip_suffix("[]") {
        Some(base) => (base.trim_end(), "[]"),
        None => (plain, ""),
    };
    let base = match base {
        "int" | "int4" => "integer",
        "int8" => "bigint",
        "int2" => "smallint",
        "varchar" => "character varying",
        "char" | "bpchar" => "character",
        "bool" => "boolean",
        "float8" | "float" => "double precision",
        "float4" => "real",
        "decimal" => "numeric",
        "timestamptz" => "timestamp with time zone",
        "timestamp" => "timestamp without time zone",
        "timetz" => "time with time zone",
        "time" => "time without time zone",
        other => other,
    };
    format!("{base}{array}")
}

/// The input arguments a `CREATE FUNCTION name (...)` declares (`OUT` ones are not part of
/// its signature), each as written, without its mode and default; `None` when the list is
/// not found.
fn input_arguments(sql: &str, name: &str) -> Option<Vec<String>> {
    let lower = sql.to_ascii_lowercase();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'$';
    let open = lower.match_indices(name).find_map(|(at, _)| {
        let before = lower.as_bytes()[..at].last().copied();
        let rest = lower[at + name.len()..].trim_start_matches(['"', ' ', '\t', '\n', '\r']);
        (!before.is_some_and(word) && rest.starts_with('(')).then(|| lower.len() - rest.len())
    })?;
    let mut depth = 0usize;
    let mut args: Vec<String> = vec![String::new()];
    for c in lower[open..].chars() {
        match c {
            '(' => {
                depth += 1;
                if depth == 1 {
                    continue;
                }
            }
            ')' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            ',' if depth == 1 => {
                args.push(String::new());
                continue;
            }
            _ => {}
        }
        if let Some(arg) = args.last_mut() {
            arg.push(c);
        }
    }
    Some(
        args.iter()
            .filter_map(|a| {
                let a = a.split(" default ").next().unwrap_or(a);
                let a = a.split('=').next().unwrap_or(a).trim();
                let words: Vec<&str> = a.split_whitespace().collect();
                match words.first() {
                    None | Some(&"out") => None,
                    Some(&("in" | "inout" | "variadic")) => Some(words[1..].join(" ")),
                    Some(_) => Some(words.join(" ")),
                }
            })
            .collect(),
    )
}

/// Where record `row` (1-based, as PostgreSQL counts them) of COPY `data` starts: a record
/// may span lines, in CSV through a quoted newline, in text format through a newline after a
/// backslash. Past the last record: the end.
fn record_offset(data: &str, row: usize, csv: bool) -> usize {
    let bytes = data.as_bytes();
    let mut records = 1;
    let mut quoted = false;
    let mut backslashes = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if records == row {
            return i;
        }
        match b {
            b'"' if csv => quoted = !quoted,
            b'\n' if !(csv && quoted) && (csv || backslashes % 2 == 0) => records += 1,
            _ => {}
        }
        backslashes = if b == b'\\' && !csv {
            backslashes + 1
        } else {
            0
        };
    }
    bytes.len()
}

/// The row of a `COPY ... FROM STDIN` an error came from (1-based), from PostgreSQL's
/// context line `COPY coach_t, line 3, column id: "x"`.
fn copy_row_line(context: &str) -> Option<usize> {
    let frame = context.lines().find(|l| l.starts_with("COPY "))?;
    let (_, rest) = frame.split_once(", line ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|row| *row > 0)
}

/// Byte offset of a dollar-quoted body's opening delimiter in a statement.
fn body_offset(statement: &Statement<'_>) -> Option<usize> {
    let mut found = None;
    lexer::Scanner::default().feed_code(statement.sql, |i, b| {
        if found.is_none() && b == b'$' && statement.sql[i + 1..].contains('$') {
            let rest = &statement.sql[i + 1..];
            let tag_end = rest.find('$').unwrap_or(0);
            if rest[..tag_end]
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_')
                && !rest[..tag_end]
                    .bytes()
                    .next()
                    .is_some_and(|c| c.is_ascii_digit())
            {
                found = Some(i);
            }
        }
    });
    found
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

#[cfg(test)]
mod settings_tests {
    use super::{name_list, settings_sql};

    /// As `set_config` reads a list setting: unquoted names folded, quoted ones kept.
    /// `DEFERRED_AT` is where `DEFERRED_NOW` stands in a closing.
    #[test]
    fn the_deferred_checks_follow_the_connecting_role() {
        let statements = crate::migrations::lexer::split_statements(super::AS_CONNECTING_ROLE)
            .unwrap()
            .len();
        assert_eq!(statements, super::DEFERRED_AT);
    }

    #[test]
    fn list_settings_read_as_set_config_reads_them() {
        assert_eq!(
            name_list("Extensions, \"My \"\"S\"\" \", public"),
            Some(vec![
                "extensions".to_string(),
                "My \"S\" ".to_string(),
                "public".to_string()
            ])
        );
        assert_eq!(
            name_list("\"$user\", public"),
            Some(vec!["$user".to_string(), "public".to_string()])
        );
        assert_eq!(name_list("a,,b"), None);
        // Attacker findings: an empty list made `SET ... TO ;`, and `""` fell back to
        // `set_config`, which takes a snapshot.
        assert_eq!(name_list("  "), Some(vec![]));
        assert_eq!(
            name_list("\"\", public"),
            Some(vec![String::new(), "public".to_string()])
        );
        assert_eq!(
            settings_sql(&[("search_path".to_string(), " ".to_string())], true).unwrap(),
            "SET LOCAL \"search_path\" TO ''"
        );
        assert_eq!(name_list("\"open"), None);
        // Attacker findings: only ASCII letters fold, and only PostgreSQL's five blanks end a
        // name (a no-break space or a vertical tab is part of it).
        assert_eq!(
            name_list("Ärger, PUBLIC"),
            Some(vec!["Ärger".to_string(), "public".to_string()])
        );
        assert_eq!(
            name_list("\u{a0}public, my\u{a0}Schema,\u{b}x"),
            Some(vec![
                "\u{a0}public".to_string(),
                "my\u{a0}schema".to_string(),
                "\u{b}x".to_string()
            ])
        );
        assert_eq!(
            name_list("\t a ,\x0c\r\nb\n"),
            Some(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(
            settings_sql(
                &[
                    ("search_path".to_string(), "Ext, public".to_string()),
                    ("lock_timeout".to_string(), "5s".to_string()),
                    ("search_path".to_string(), "a b".to_string()),
                ],
                true
            )
            .unwrap(),
            "SET LOCAL \"search_path\" TO E'ext', E'public'; SET LOCAL \"lock_timeout\" TO E'5s'; \
             SELECT pg_catalog.set_config(E'search_path', E'a b', true)"
        );
    }
}

#[cfg(test)]
mod copy_tests {
    use super::record_offset;

    /// PostgreSQL counts COPY records, not lines (attacker finding: a quoted newline in CSV,
    /// an escaped one in text format, put the reported line one short).
    #[test]
    fn records_that_span_lines_are_counted_once() {
        let csv = "1,\"multi\nline\"\n2,two\nx,three\n";
        assert_eq!(&csv[record_offset(csv, 3, true)..], "x,three\n");
        let text = "1\tmulti\\\nline\n2\ttwo\nx\tthree\n";
        assert_eq!(&text[record_offset(text, 3, false)..], "x\tthree\n");
        let plain = "a\nb\nc\n";
        assert_eq!(record_offset(plain, 1, false), 0);
        assert_eq!(&plain[record_offset(plain, 2, false)..], "b\nc\n");
    }
}

#[cfg(test)]
mod privilege_tests {
    use super::{privilege_advice, role_switch};

    /// Who runs a statement: the last switch before it decides (attacker findings: `SET ROLE
    /// x; RESET ROLE` blamed x, and `set_config('role', ...)` blamed the connecting role).
    #[test]
    fn the_last_role_switch_decides() {
        assert_eq!(role_switch("set role weak"), Some(true));
        assert_eq!(role_switch("SET LOCAL ROLE \"Weak\""), Some(true));
        assert_eq!(role_switch("set session authorization weak"), Some(true));
        assert_eq!(
            role_switch("select set_config('role', 'weak', true)"),
            Some(true)
        );
        assert_eq!(role_switch("reset role"), Some(false));
        assert_eq!(role_switch("set role none"), Some(false));
        assert_eq!(role_switch("reset session authorization"), Some(false));
        assert_eq!(
            role_switch("set session authorization default"),
            Some(false)
        );
        assert_eq!(role_switch("reset all"), None);
        assert_eq!(role_switch("insert into t values (1)"), None);
    }

    #[test]
    fn names_the_qualified_object_and_the_privilege() {
        let advice = privilege_advice(
            "permission denied for table users",
            "create table coach.t (user_id uuid references auth.users (id))",
            "the connecting role",
        );
        assert!(
            advice.contains("REFERENCES on table auth.users"),
            "{advice}"
        );
        let advice = privilege_advice(
            "permission denied for schema extensions",
            "create extension x schema extensions",
            "the connecting role",
        );
        assert!(advice.contains("CREATE on schema extensions"), "{advice}");
        assert_eq!(privilege_advice("something else", "select 1", "r"), "");
        // cargo-mutants: the CREATE/ALTER/DROP arm deleted read "lacks SELECT" here.
        let advice = privilege_advice(
            "permission denied for table users",
            "create trigger t after insert on auth.users for each row execute function f()",
            "the connecting role",
        );
        assert!(
            advice
                .contains("lacks ownership (or REFERENCES for a foreign key) on table auth.users"),
            "{advice}"
        );
    }

    /// Mutation this catches (cargo-mutants): `ALTER SYSTEM`, which writes its file outside
    /// any transaction, taken for a statement PostgreSQL rolls back by itself.
    #[test]
    fn only_transactional_first_statements_roll_back_alone() {
        assert!(!super::rolls_back_alone(
            "alter system set work_mem = '1MB'"
        ));
        assert!(!super::rolls_back_alone(
            "create index concurrently i on t (x)"
        ));
        assert!(super::rolls_back_alone("alter table t add column x int"));
    }
}
