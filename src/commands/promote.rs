//! `plan` and `promote`: bring one environment (production) up to another's (staging) applied
//! history, from the files staging ran, once the two histories are shown to agree.

use serde::Serialize;

use super::{count, listed, Context};
use crate::cli::PromotionArgs;
use crate::db::{self, state};
use crate::engine::{Failure, Locking, Runner, Step};
use crate::error::Error;
use crate::lint::Finding as LintFinding;
use crate::migrations::promotion::{self, Obstacle, Reason};
use crate::migrations::Migration;
use crate::target::{self, Target};
use crate::verify::Finding;

/// One side of a promotion, as it stood when planned.
#[derive(Debug, Serialize)]
pub struct Side {
    pub environment: String,
    pub target: String,
    pub head: Option<i64>,
    pub applied: usize,
    pub verify: VerifyCheck,
}

/// A migration the source applied and the destination lacks.
#[derive(Debug, Serialize)]
pub struct Pending {
    pub version: i64,
    pub name: String,
    /// The checksum the source recorded; the file applied must have it.
    pub checksum: String,
    /// The local file, when it exists.
    pub file: Option<String>,
}

/// What `plan` found, and what `promote` checks before it writes anything.
#[derive(Debug, Serialize)]
pub struct PlanReport {
    pub from: Side,
    pub to: Side,
    /// What the destination lacks, in the order it would be applied.
    pub missing: Vec<Pending>,
    pub may_proceed: bool,
    /// Why not, when `may_proceed` is false.
    pub reasons: Vec<Reason>,
    /// What `lint` finds in the migrations to apply, linted for the destination environment;
    /// an unacknowledged error-level finding blocks the promotion, warnings are listed.
    pub lint: Vec<LintFinding>,
    pub lint_acknowledged: usize,
}

/// What `verify` found on one database, as far as a promotion cares.
#[derive(Debug, Default, Serialize)]
pub struct VerifyCheck {
    /// False when verification did not run (promote runs it only after applying something).
    pub ran: bool,
    pub findings: Vec<Finding>,
}

/// What `promote` did.
#[derive(Debug, Serialize)]
pub struct PromoteReport {
    pub plan: PlanReport,
    /// Migrations applied to the destination.
    pub steps: Vec<Step>,
    pub failure: Option<Failure>,
    /// The destination's highest applied version afterwards.
    pub head: Option<i64>,
    /// `verify` on the destination after the promotion.
    pub verify: VerifyCheck,
}

/// The note every promoted migration carries in `_migrate.history`.
fn promoted_note(from: &str) -> String {
    format!("promoted from {from}")
}

/// What `verify` finds on one side of a promotion.
async fn drift_findings(
    ctx: &Context,
    env: &mut Env,
    files: &[Migration],
) -> anyhow::Result<VerifyCheck> {
    let report = crate::verify::inspect::inspect(
        &ctx.project,
        &mut env.client,
        files,
        env.target.redacted(),
    )
    .await?;
    Ok(VerifyCheck {
        ran: true,
        findings: report.findings,
    })
}

/// Errors `verify` found block a promotion; warnings do not.
fn drift_reasons(side: &str, check: &VerifyCheck) -> Vec<Reason> {
    check
        .findings
        .iter()
        // The plan compares histories and files itself; verify adds what the catalog shows.
        .filter(|f| f.fails() && !f.rule.is_history())
        .map(|f| {
            Reason::new(
                Obstacle::Drift,
                None,
                format!(
                    "{side}: verify found {} on {}: {}",
                    f.rule.as_str(),
                    f.location(),
                    f.message
                ),
            )
        })
        .collect()
}

/// One environment, connected.
struct Env {
    name: String,
    target: Target,
    client: db::Session,
}

async fn open(ctx: &Context, name: &str) -> anyhow::Result<Env> {
    let target = target::environment(&ctx.project, name)?;
    let client = db::connect(target.conninfo()).await?;
    Ok(Env {
        name: name.to_string(),
        target,
        client,
    })
}

async fn open_both(ctx: &Context, args: &PromotionArgs) -> anyhow::Result<(Env, Env)> {
    if args.from == args.to {
        return Err(Error::input(format!(
            "--from and --to both name `{}`; promotion needs two environments",
            args.from
        ))
        .into());
    }
    let from = open(ctx, &args.from).await?;
    let to = open(ctx, &args.to).await?;
    if from.target.conninfo().same_database(to.target.conninfo()) {
        return Err(Error::input(format!(
            "`{}` and `{}` have the same URL ({}); promotion needs two databases",
            from.name,
            to.name,
            to.target.redacted()
        ))
        .into());
    }
    Ok((from, to))
}

/// Compares the two environments' histories and the files; the plan, and the files to apply
/// when it may proceed.
async fn compare<'a>(
    ctx: &Context,
    files: &'a [Migration],
    from: &mut Env,
    to: &mut Env,
) -> anyhow::Result<(PlanReport, Vec<&'a Migration>)> {
    let from_applied = state::applied_read_only(&mut from.client).await?;
    let to_applied = state::applied_read_only(&mut to.client).await?;
    let comparison = promotion::compare((&from.name, &to.name), &from_applied, &to_applied, files);
    let mut reasons = comparison.reasons;
    let from_verify = drift_findings(ctx, from, files).await?;
    let to_verify = drift_findings(ctx, to, files).await?;
    reasons.extend(drift_reasons(&from.name, &from_verify));
    reasons.extend(drift_reasons(&to.name, &to_verify));
    let to_promote: Vec<i64> = comparison.missing.iter().map(|r| r.version).collect();
    let (_, lint) = crate::lint::for_project(
        &ctx.project.config,
        files,
        |m| to_promote.contains(&m.version),
        Some(&to.name),
    )?;
    reasons.extend(lint.errors_found().map(|f| {
        Reason::new(
            Obstacle::Lint,
            Some(f.version),
            format!(
                "{}:{}: lint {} {}: {} (fix it, or acknowledge it with `-- squawk-ignore {}`)",
                f.file,
                f.line,
                f.level.as_str(),
                f.rule,
                f.message,
                f.rule
            ),
        )
    }));
    let missing = comparison
        .missing
        .iter()
        .map(|row| Pending {
            version: row.version,
            name: row.name.clone(),
            checksum: row.checksum.clone(),
            file: files
                .iter()
                .find(|m| m.version == row.version)
                .map(|m| m.path.clone()),
        })
        .collect();
    let side = |env: &Env, applied: &[crate::migrations::plan::AppliedMigration], verify| Side {
        environment: env.name.clone(),
        target: env.target.redacted(),
        head: crate::migrations::plan::head(applied),
        applied: applied.len(),
        verify,
    };
    let report = PlanReport {
        from: side(from, &from_applied, from_verify),
        to: side(to, &to_applied, to_verify),
        missing,
        may_proceed: reasons.is_empty(),
        reasons,
        lint_acknowledged: lint.acknowledged.len(),
        lint: lint.findings,
    };
    let to_apply = if report.may_proceed {
        comparison.files
    } else {
        Vec::new()
    };
    Ok((report, to_apply))
}

pub async fn plan(ctx: &Context, args: &PromotionArgs) -> anyhow::Result<PlanReport> {
    let files = ctx.migrations()?;
    let (mut from, mut to) = open_both(ctx, args).await?;
    Ok(compare(ctx, &files, &mut from, &mut to).await?.0)
}

pub async fn promote(ctx: &Context, args: &PromotionArgs) -> anyhow::Result<PromoteReport> {
    let files = ctx.migrations()?;
    let (mut from, mut to) = open_both(ctx, args).await?;
    // Plan under the destination's lock, so what was checked is what runs.
    ctx.lock(&to.client, &to.target, "promote").await?;
    let (plan, to_apply) = compare(ctx, &files, &mut from, &mut to).await?;
    let mut report = PromoteReport {
        head: plan.to.head,
        plan,
        steps: Vec::new(),
        failure: None,
        verify: VerifyCheck::default(),
    };
    if !report.plan.may_proceed || to_apply.is_empty() {
        return Ok(report);
    }
    ctx.confirm_protected_listing(
        &to.target,
        &format!(
            "Apply {} promoted from {}",
            count(to_apply.len(), "migration"),
            from.name
        ),
        &listed(&to_apply),
    )?;
    super::ensure_state(&mut to.client, Locking::Session).await?;
    let note_text = promoted_note(&from.name);
    let note = |_| Some(note_text.clone());
    let settings = ctx.migration_settings(&to.target);
    let outcome = Runner {
        session: &mut to.client,
        url: to.target.conninfo(),
        settings: &settings,
        progress: ctx.progress.as_ref(),
        note: &note,
        locking: Locking::Session,
        out_of_order: &[],
        versions: &[],
    }
    .run(&to_apply, state::Direction::Up)
    .await?;
    report.steps = outcome.steps;
    report.failure = outcome.failure;
    report.head = state::applied(&*to.client).await?.last().map(|a| a.version);
    report.verify = drift_findings(ctx, &mut to, &files).await?;
    Ok(report)
}
