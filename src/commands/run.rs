//! `up`, `down` and `redo`: plan against the applied history, then run under the lock.

use serde::Serialize;
use tokio_postgres::Client;

use super::{count, listed, through_pooler, Context};
use crate::cli::{DownArgs, RedoArgs, UpArgs};
use crate::db::state::{self, Direction};
use crate::db::Session;
use crate::engine::{Failure, Locking, Outcome, Runner, Step};
use crate::error::Error;
use crate::migrations::plan::{self, reconcile, DownTarget, Entry, Refusal};
use crate::migrations::{lexer, Migration};
use crate::target::Target;

/// What `up`, `down` or `redo` did, or with `--dry-run` would do.
#[derive(Debug, Serialize)]
pub struct RunReport {
    pub command: &'static str,
    pub target: String,
    pub dry_run: bool,
    pub atomic: bool,
    /// Migrations that took effect (with --dry-run: none).
    pub steps: Vec<Step>,
    /// With --dry-run: what would run, with its SQL.
    pub planned: Vec<Planned>,
    pub failure: Option<Failure>,
    /// Migrations of the plan another run did first (through a pooler, found under the
    /// lock): not run by this one, and said so.
    pub skipped: Vec<Skipped>,
    /// Versions applied below the highest applied one (--allow-out-of-order).
    pub out_of_order: Vec<i64>,
    /// The highest applied version afterwards.
    pub head: Option<i64>,
}

impl RunReport {
    fn new(command: &'static str, target: &Target, dry_run: bool, atomic: bool) -> RunReport {
        RunReport {
            command,
            target: target.redacted(),
            dry_run,
            atomic,
            steps: Vec::new(),
            planned: Vec::new(),
            failure: None,
            skipped: Vec::new(),
            out_of_order: Vec::new(),
            head: None,
        }
    }
}

/// A migration of the plan that this run did not run because another run (through a
/// transaction pooler, where runs exclude each other one transaction at a time) had already
/// done it when this run's guard checked under the lock.
#[derive(Debug, Serialize)]
pub struct Skipped {
    pub version: i64,
    pub name: String,
    pub direction: Direction,
    /// What happened to it, in a sentence.
    pub reason: String,
}

impl Skipped {
    fn new(plan: &[&Migration], skipped: &[i64], direction: Direction) -> Vec<Skipped> {
        plan.iter()
            .filter(|m| skipped.contains(&m.version))
            .map(|m| Skipped {
                version: m.version,
                name: m.name.clone(),
                direction,
                reason: match direction {
                    Direction::Down => "another run reverted it first",
                    _ => "another run applied it first",
                }
                .into(),
            })
            .collect()
    }
}

#[derive(Debug, Serialize)]
pub struct Planned {
    pub version: i64,
    pub name: String,
    pub file: String,
    pub direction: Direction,
    pub transactional: bool,
    pub sql: String,
}

fn planned(migrations: &[&Migration], direction: Direction) -> Vec<Planned> {
    migrations
        .iter()
        .map(|m| Planned {
            version: m.version,
            name: m.name.clone(),
            file: m.path.clone(),
            direction,
            transactional: m.transactional,
            sql: match direction {
                Direction::Down => m.down.sql.clone(),
                _ => m.up.sql.clone(),
            },
        })
        .collect()
}

fn refused(refusal: Refusal) -> Error {
    Error::refused(format!("refusing to run:\n{refusal}"))
}

/// The applied migrations a run plans from. Through a transaction pooler, read in a
/// transaction that holds the transaction-level lock: a migration another run has in flight
/// (its transaction holds the lock) is then read committed or rolled back, never as "not yet
/// applied", so a `down` started while a pooled `up` runs does not plan from before it.
async fn applied_for_plan(
    session: &Session,
    locking: Locking,
) -> anyhow::Result<Vec<plan::AppliedMigration>> {
    crate::db::session::before_any_migration(read_applied(session, locking).await)
}

/// `applied_for_plan`, without its answer to a signal.
async fn read_applied(
    session: &Session,
    locking: Locking,
) -> anyhow::Result<Vec<plan::AppliedMigration>> {
    let client = &session.client;
    let Locking::Transaction { lock_wait } = locking else {
        return state::applied(client).await;
    };
    client.batch_execute("BEGIN").await?;
    crate::db::lock::acquire_xact(session, lock_wait).await?;
    let applied = state::applied(client).await;
    client
        .batch_execute(if applied.is_ok() {
            "COMMIT"
        } else {
            "ROLLBACK"
        })
        .await?;
    applied
}

async fn head(client: &Client) -> anyhow::Result<Option<i64>> {
    Ok(state::applied(client).await?.last().map(|a| a.version))
}

/// The head after a run; after a lost connection, as a new session reads it (None when the
/// server cannot be reached again).
async fn head_after(
    client: &Client,
    target: &Target,
    failure: &Option<Failure>,
) -> anyhow::Result<Option<i64>> {
    if failure.as_ref().is_some_and(|f| f.connection_lost) || client.is_closed() {
        // The run's session is gone (also after a failure of its own, while what followed
        // it was undone): read it on a new one. When the server cannot be reached again it
        // stays unknown (null), never a guess.
        return Ok(match crate::db::connect(target.conninfo()).await {
            Ok(session) => head(&session.client).await.ok().flatten(),
            Err(_) => None,
        });
    }
    head(client).await
}

/// `--to` must name a migration: a file, or an applied version (a typo would otherwise apply
/// everything below it).
fn check_to(ctx: &Context, to: Option<i64>, entries: &[Entry]) -> Result<(), Error> {
    match to {
        Some(to) if !entries.iter().any(|e| e.version == to) => Err(Error::input(format!(
            "--to {to:04}: no migration has that version (no file {}/{to:04}_*.sql, and it is \
             not applied); `migrate status` lists the versions",
            ctx.project.config.paths.migrations.display()
        ))),
        _ => Ok(()),
    }
}

/// A migration whose UP section is still empty (a skeleton from `migrate new`) is not run.
fn refuse_empty(plan: &[&Migration]) -> Result<(), Error> {
    match plan.iter().find(|m| m.is_empty()) {
        Some(m) => Err(m.empty_error()),
        None => Ok(()),
    }
}

pub async fn up(ctx: &Context, args: &UpArgs) -> anyhow::Result<RunReport> {
    let (files, (mut client, target, locking)) = ctx
        .migrations_during(async {
            let (client, target) = ctx.connect().await?;
            let locking = match args.dry_run {
                true => None,
                false => Some(ctx.lock_migrations(&client, &target).await?),
            };
            Ok((client, target, locking))
        })
        .await?;
    let mut report = RunReport::new("up", &target, args.dry_run, args.atomic);
    let Some(locking) = locking else {
        let applied = state::applied_read_only(&mut client).await?;
        let entries = reconcile(&files, &applied);
        check_to(ctx, args.to, &entries)?;
        let plan = plan::plan_up(&entries, args.to, args.allow_out_of_order).map_err(refused)?;
        refuse_empty(&plan.migrations)?;
        report.planned = planned(&plan.migrations, Direction::Up);
        report.out_of_order = plan.out_of_order;
        report.head = plan::head(&applied);
        return Ok(report);
    };
    let applied = applied_for_plan(&client, locking).await?;
    let entries = reconcile(&files, &applied);
    check_to(ctx, args.to, &entries)?;
    let plan = plan::plan_up(&entries, args.to, args.allow_out_of_order).map_err(refused)?;
    refuse_empty(&plan.migrations)?;
    refuse_outside_transaction_through_pooler(
        &target,
        locking,
        &plan.migrations,
        &[Direction::Up],
    )?;
    if args.atomic {
        if let Some(m) = plan.migrations.iter().find(|m| !m.transactional) {
            return Err(Error::input(format!(
                "{} runs outside a transaction (`-- transaction: none`), so it cannot be part of \
                 an --atomic run; apply it on its own first",
                m.path
            ))
            .into());
        }
    }
    if !plan.migrations.is_empty() {
        let action = format!("Apply {}", count(plan.migrations.len(), "migration"));
        ctx.confirm_protected_listing(&target, &action, &listed(&plan.migrations))?;
    }
    // Created only once confirmed, so a refused run leaves the database untouched.
    super::ensure_state(&mut client, locking).await?;
    let out_of_order = plan.out_of_order.clone();
    let note = |v: i64| {
        out_of_order
            .contains(&v)
            .then(|| "applied out of order (--allow-out-of-order)".to_string())
    };
    let settings = ctx.migration_settings(&target);
    let versions = versions(&files);
    let mut runner = Runner {
        session: &mut client,
        url: target.conninfo(),
        settings: &settings,
        progress: ctx.progress.as_ref(),
        note: &note,
        locking,
        out_of_order: &out_of_order,
        versions: &versions,
    };
    let outcome = if args.atomic {
        runner.run_atomic(&plan.migrations, Direction::Up).await?
    } else {
        runner.run(&plan.migrations, Direction::Up).await?
    };
    report.steps = outcome.steps;
    report.skipped = Skipped::new(&plan.migrations, &outcome.skipped, Direction::Up);
    report.failure = outcome.failure;
    report.out_of_order = plan.out_of_order;
    report.head = if plan.migrations.is_empty() {
        // Nothing ran: the head is the one the (empty) plan was made against, not whatever
        // another run has applied since.
        plan::head(&applied)
    } else {
        head_after(&client, &target, &report.failure).await?
    };
    Ok(report)
}

fn down_target(args: &DownArgs) -> DownTarget {
    match (args.steps, args.to, args.all) {
        (_, _, true) => DownTarget::All,
        (_, Some(v), _) => DownTarget::To(v),
        (Some(n), _, _) => DownTarget::Steps(n),
        (None, None, false) => DownTarget::Steps(1),
    }
}

pub async fn down(ctx: &Context, args: &DownArgs) -> anyhow::Result<RunReport> {
    let (files, (mut client, target, locking)) = ctx
        .migrations_during(async {
            let (client, target) = ctx.connect().await?;
            ctx.guard_destructive(&target, "down")?;
            let locking = match args.dry_run {
                true => None,
                false => Some(ctx.lock_migrations(&client, &target).await?),
            };
            Ok((client, target, locking))
        })
        .await?;
    let mut report = RunReport::new("down", &target, args.dry_run, false);
    let Some(locking) = locking else {
        let applied = state::applied_read_only(&mut client).await?;
        let entries = reconcile(&files, &applied);
        let plan = plan::plan_down(&entries, down_target(args)).map_err(refused)?;
        report.planned = planned(&plan, Direction::Down);
        report.head = plan::head(&applied);
        return Ok(report);
    };
    let applied = applied_for_plan(&client, locking).await?;
    let entries = reconcile(&files, &applied);
    let plan = plan::plan_down(&entries, down_target(args)).map_err(refused)?;
    refuse_outside_transaction_through_pooler(&target, locking, &plan, &[Direction::Down])?;
    if !plan.is_empty() {
        let action = format!("Revert {}", count(plan.len(), "migration"));
        ctx.confirm_protected(&target, &action)?;
        // Only a run that reverts something needs the state (and then it exists): one with
        // nothing to revert leaves an untouched database untouched.
        super::ensure_state(&mut client, locking).await?;
    }
    let outcome = run_plan(
        ctx,
        &mut client,
        &target,
        locking,
        &plan,
        Direction::Down,
        &versions(&files),
    )
    .await?;
    report.steps = outcome.steps;
    report.skipped = Skipped::new(&plan, &outcome.skipped, Direction::Down);
    report.failure = outcome.failure;
    report.head = if plan.is_empty() {
        plan::head(&applied)
    } else {
        head_after(&client, &target, &report.failure).await?
    };
    Ok(report)
}

pub async fn redo(ctx: &Context, args: &RedoArgs) -> anyhow::Result<RunReport> {
    let (files, (mut client, target, locking)) = ctx
        .migrations_during(async {
            let (client, target) = ctx.connect().await?;
            ctx.guard_destructive(&target, "redo")?;
            let locking = ctx.lock_migrations(&client, &target).await?;
            Ok((client, target, locking))
        })
        .await?;
    let applied = applied_for_plan(&client, locking).await?;
    let entries = reconcile(&files, &applied);
    let plan = plan::plan_down(&entries, DownTarget::Steps(args.steps)).map_err(refused)?;
    refuse_outside_transaction_through_pooler(
        &target,
        locking,
        &plan,
        &[Direction::Down, Direction::Up],
    )?;
    if !plan.is_empty() {
        let action = format!("Revert and re-apply {}", count(plan.len(), "migration"));
        ctx.confirm_protected(&target, &action)?;
        super::ensure_state(&mut client, locking).await?;
    }
    let mut outcome = run_plan(
        ctx,
        &mut client,
        &target,
        locking,
        &plan,
        Direction::Down,
        &versions(&files),
    )
    .await?;
    let mut skipped = Skipped::new(&plan, &outcome.skipped, Direction::Down);
    if outcome.failure.is_none() {
        // Only what this run's down reverted (through a pooler, another run may have
        // reverted some of them first: re-applying those would leave a gap below the head).
        let reverted: Vec<i64> = outcome.steps.iter().map(|s| s.version).collect();
        let again: Vec<&Migration> = plan
            .iter()
            .rev()
            .copied()
            .filter(|m| reverted.contains(&m.version))
            .collect();
        let up = run_plan(
            ctx,
            &mut client,
            &target,
            locking,
            &again,
            Direction::Up,
            &versions(&files),
        )
        .await?;
        outcome.steps.extend(up.steps);
        skipped.extend(Skipped::new(&again, &up.skipped, Direction::Up));
        outcome.failure = up.failure;
    }
    // A migration another run reverted first was not redone: this run did not revert it, so
    // it does not apply it again either. What was asked did not happen (exit 1).
    if outcome.failure.is_none() {
        outcome.failure = skipped
            .iter()
            .find(|s| s.direction == Direction::Down)
            .and_then(|s| plan.iter().find(|m| m.version == s.version))
            .map(|m| not_redone(m));
    }
    let mut report = RunReport::new("redo", &target, false, false);
    report.steps = outcome.steps;
    report.skipped = skipped;
    report.failure = outcome.failure;
    report.head = if plan.is_empty() {
        plan::head(&applied)
    } else {
        head_after(&client, &target, &report.failure).await?
    };
    Ok(report)
}

/// The failure of a redo whose migration `m` another run reverted first.
fn not_redone(m: &Migration) -> Failure {
    Failure {
        version: m.version,
        name: m.name.clone(),
        direction: Direction::Down,
        file: m.path.clone(),
        line: None,
        error: "another run reverted it first, so this redo neither reverted nor re-applied it"
            .into(),
        dirty: false,
        rolled_back: false,
        connection_lost: false,
        interrupted: None,
        state: format!(
            "it is left as the other run left it (`migrate status` shows it; `migrate up` \
             applies it again): {} was not redone",
            m.file_name()
        ),
        warnings: Vec::new(),
    }
}

/// Every file's version, ascending (files are sorted by version).
fn versions(files: &[Migration]) -> Vec<i64> {
    files.iter().map(|m| m.version).collect()
}

async fn run_plan(
    ctx: &Context,
    session: &mut Session,
    target: &Target,
    locking: Locking,
    plan: &[&Migration],
    direction: Direction,
    versions: &[i64],
) -> anyhow::Result<Outcome> {
    let settings = ctx.migration_settings(target);
    let note = |_| None;
    Runner {
        session,
        url: target.conninfo(),
        settings: &settings,
        progress: ctx.progress.as_ref(),
        note: &note,
        locking,
        out_of_order: &[],
        versions,
    }
    .run(plan, direction)
    .await
}

/// `transaction: none` migrations need a session of their own (a session-level lock, and
/// statements that must not share a transaction): refused through a transaction pooler.
fn refuse_outside_transaction_through_pooler(
    target: &Target,
    locking: Locking,
    plan: &[&Migration],
    directions: &[Direction],
) -> Result<(), Error> {
    if !matches!(locking, Locking::Transaction { .. }) {
        return Ok(());
    }
    if let Some(m) = plan.iter().find(|m| !m.transactional) {
        return Err(through_pooler(
            target,
            &format!("{} (`-- transaction: none`)", m.path),
        ));
    }
    for m in plan {
        for &direction in directions {
            let section = match direction {
                Direction::Down => &m.down,
                _ => &m.up,
            };
            // Parsing checked the statements; a section that no longer splits fails later.
            let Ok(statements) = section.statements() else {
                continue;
            };
            let line = |s: &lexer::Statement<'_>| {
                section.line_of_offset(s.offset + lexer::leading_blank(s.sql))
            };
            if let Some(s) = statements.iter().find(|s| creates_session_state(s.sql)) {
                return Err(through_pooler(
                    target,
                    &format!(
                        "{}:{} (`PREPARE`: a prepared statement outlives the transaction, \
                         so the pooler would hand it to other clients)",
                        m.path,
                        line(s)
                    ),
                ));
            }
            if let Some(s) = statements
                .iter()
                .find(|s| sets_transaction_characteristics(s.sql))
            {
                return Err(through_pooler(
                    target,
                    &format!(
                        "{}:{} (`SET TRANSACTION`: PostgreSQL takes it only before the \
                         transaction's first query, and through a pooler each migration's \
                         transaction starts with migrate's lock and checks)",
                        m.path,
                        line(s)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A statement that leaves state on the session a transaction cannot take back: `PREPARE`
/// (`PREPARE TRANSACTION` is refused for every migration). Settings, temporary objects,
/// cursors and `LISTEN` are undone by the reset that ends each pooled transaction.
fn creates_session_state(sql: &str) -> bool {
    let words = lexer::leading_words(sql, 2);
    words.first().map(String::as_str) == Some("prepare")
        && words.get(1).map(String::as_str) != Some("transaction")
}

/// A statement that sets its transaction's isolation level, deferrability, snapshot or
/// read-write mode (`SET TRANSACTION ...`, `SET [LOCAL] transaction_isolation = ...`), which
/// PostgreSQL accepts only before the transaction's first query (`SET TRANSACTION READ ONLY`
/// it takes at any time).
fn sets_transaction_characteristics(sql: &str) -> bool {
    let words = lexer::leading_words(sql, 12);
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let lower = sql.to_ascii_lowercase();
    // `set_config('transaction_isolation', ...)` and the like.
    if lower.contains("set_config")
        && (lower.contains("transaction_isolation") || lower.contains("transaction_deferrable"))
    {
        return true;
    }
    let rest = match words.as_slice() {
        ["set", "local" | "session", rest @ ..] | ["set", rest @ ..] => rest,
        _ => return false,
    };
    match rest {
        // Only `READ ONLY` alone: `READ ONLY, ISOLATION LEVEL ...` sets the level too.
        ["transaction", "read", "only"] => false,
        ["transaction", ..] | ["transaction_isolation" | "transaction_deferrable", ..] => true,
        ["transaction_read_only", ..] => !words.contains(&"on") && !words.contains(&"true"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::sets_transaction_characteristics as sets;

    /// What PostgreSQL takes only before a transaction's first query, in its spellings.
    #[test]
    fn transaction_characteristics_that_must_come_first() {
        for sql in [
            "set transaction isolation level serializable",
            "SET TRANSACTION SNAPSHOT '00000003-0000001B-1'",
            "set transaction read write",
            "set transaction deferrable",
            "SET LOCAL transaction_isolation = 'repeatable read'",
            "set transaction_deferrable to on",
            "set transaction_read_only = off",
            "set transaction read only, isolation level serializable",
            "set transaction read only isolation level repeatable read",
            "select set_config('transaction_isolation', 'serializable', true)",
        ] {
            assert!(sets(sql), "{sql}");
        }
        for sql in [
            "set transaction read only",
            "set transaction_read_only = on",
            "set session characteristics as transaction isolation level serializable",
            "set local search_path = coach",
            "select current_setting('transaction_isolation')",
            "select 1",
        ] {
            assert!(!sets(sql), "{sql}");
        }
    }
}
