//! Inspecting a live database: its history, the rules of DESIGN §8, and — when it is at the
//! lock's head — `schema.lock` (drift). What `verify` reports, and what `plan`/`promote` check
//! on both sides.

use std::collections::BTreeSet;

use serde::Serialize;
use tokio_postgres::{Client, IsolationLevel};

use super::{self as verify, drift, rules, Finding, Level, Rule, UnmatchedAcknowledgement};
use crate::config::Project;
use crate::db::catalog;
use crate::db::state;
use crate::lockfile::{self, Lockfile};
use crate::migrations::plan::{head, reconcile};
use crate::migrations::version_label as version;
use crate::migrations::Migration;

#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub target: String,
    /// The highest applied version.
    pub head: Option<i64>,
    /// The highest version schema.lock was made from.
    pub lock_head: Option<i64>,
    /// Whether the live catalog was compared with schema.lock.
    pub drift_compared: bool,
    /// Errors nobody acknowledged: the run fails when there is one.
    pub errors: usize,
    pub warnings: usize,
    pub info: usize,
    /// Findings `migrate.toml` acknowledges (`[[verify.acknowledge]]`).
    pub acknowledged: usize,
    /// Errors first, then by schema, table and object; acknowledged ones last.
    pub findings: Vec<Finding>,
    /// Acknowledgements in `migrate.toml` that matched no finding: remove them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unmatched_acknowledgements: Vec<UnmatchedAcknowledgement>,
}

/// How often verify reads the catalog again when it changed under the read.
const SNAPSHOT_TRIES: usize = 5;

/// The applied history and the catalog from one read-only snapshot. PostgreSQL's deparsing
/// functions (`pg_get_indexdef`, ...) read the live catalog, not the snapshot, so DDL that
/// commits during the read (a migration running beside verify) can make them return NULL or
/// fail ("cache lookup failed"): then the read is taken again, from a new snapshot, and after
/// `SNAPSHOT_TRIES` the error says why instead of showing a raw catalog error.
async fn snapshot(
    client: &mut Client,
    schemas: &[String],
) -> anyhow::Result<(
    Vec<crate::migrations::plan::AppliedMigration>,
    catalog::Catalog,
)> {
    let mut last = None;
    for attempt in 0..SNAPSHOT_TRIES {
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(200 * attempt as u64)).await;
        }
        let tx = client
            .build_transaction()
            .read_only(true)
            .isolation_level(IsolationLevel::RepeatableRead)
            .start()
            .await?;
        let read = async {
            let applied = state::applied(&tx).await?;
            let live = catalog::read(&tx, schemas).await?;
            anyhow::Ok((applied, live))
        }
        .await;
        let _ = tx.commit().await;
        match read {
            Ok(read) => return Ok(read),
            Err(e) if catalog::changed_during_read(&e) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    let e = last.expect("at least one attempt");
    Err(crate::error::Error::refused(format!(
        "the catalog kept changing while verify read it ({SNAPSHOT_TRIES} tries; is a migration \
         or other DDL running?): {e:#}; run verify again when it has finished"
    ))
    .into())
}

/// Verifies the database behind `client` (`target` names it, redacted); shared with
/// `plan`/`promote`, which verify both sides.
pub async fn inspect(
    project: &Project,
    client: &mut Client,
    files: &[Migration],
    target: String,
) -> anyhow::Result<VerifyReport> {
    let shown = project.config.paths.lock.display().to_string();
    let lock = Lockfile::read(&project.lock_path(), &shown)?;

    let (applied, live) = snapshot(client, project.managed_schemas()).await?;

    let dir = project.config.paths.migrations.display().to_string();
    let mut findings = verify::history(&reconcile(files, &applied), &dir);
    let versions: BTreeSet<i64> = applied.iter().map(|a| a.version).collect();
    let (lock_findings, drift_compared) = against_lock(
        lock.as_ref(),
        &shown,
        files,
        &dir,
        &versions,
        &live,
        project.managed_schemas(),
    );
    findings.extend(lock_findings);
    findings.extend(rules::lint(&live));
    let unmatched_acknowledgements = verify::triage(&mut findings, &project.config.verify);
    verify::sort(&mut findings);
    let open = |level: Level| {
        findings
            .iter()
            .filter(|f| f.acknowledged.is_none() && f.level == level)
            .count()
    };
    Ok(VerifyReport {
        target,
        head: head(&applied),
        lock_head: lock.as_ref().and_then(Lockfile::head),
        drift_compared,
        errors: open(Level::Error),
        warnings: open(Level::Warning),
        info: open(Level::Info),
        acknowledged: findings.iter().filter(|f| f.acknowledged.is_some()).count(),
        findings,
        unmatched_acknowledgements,
    })
}

const RELOCK: &str = "run `migrate lock` and commit the file";

/// What `lock` (shown as `shown`) says about the database: whether it is stale for `files` or
/// the `managed` schemas, and, when the `applied` versions are exactly the lock's, the drift
/// of the `live` catalog from it. The flag says whether drift was compared.
fn against_lock(
    lock: Option<&Lockfile>,
    shown: &str,
    files: &[Migration],
    dir: &str,
    applied: &BTreeSet<i64>,
    live: &catalog::Catalog,
    managed: &[String],
) -> (Vec<Finding>, bool) {
    let Some(lock) = lock else {
        let message = format!("{shown} does not exist: drift was not compared");
        return (vec![notice(Rule::Drift, shown, message, RELOCK)], false);
    };
    let mut out: Vec<Finding> = lockfile::stale(files, lock, dir)
        .into_iter()
        .map(|stale| {
            let message = format!(
                "{} was {} since {shown} was written",
                stale.file,
                stale.change.as_str()
            );
            notice(Rule::LockStale, &stale.file, message, RELOCK)
        })
        .collect();
    if let Some(made_for) = lock.other_schemas(managed) {
        let message = format!(
            "{shown} was made for managed schemas [{}], migrate.toml lists [{}]: drift is \
             compared for the schemas in both only",
            made_for.join(", "),
            lockfile::schema_list(managed).join(", ")
        );
        out.push(notice(Rule::LockStale, shown, message, RELOCK));
    }

    let locked: BTreeSet<i64> = lock.migrations.iter().map(|m| m.version).collect();
    if *applied == locked {
        let both =
            |schema: &String| lock.managed_schemas.contains(schema) && managed.contains(schema);
        let mut expected = lock.schemas.clone();
        expected.retain(|schema, _| both(schema));
        let mut actual = lockfile::lock_catalog(live);
        actual.retain(|schema, _| both(schema));
        out.extend(drift::drift(&expected, &actual));
        out.extend(drift::outside_triggers(
            &lock.outside_triggers,
            &lockfile::outside_triggers(live),
        ));
        return (out, true);
    }
    out.push(if applied.is_subset(&locked) {
        let message = format!(
            "the database is {} migration(s) behind {shown} (head {}, lock head {}): drift was \
             not compared",
            locked.len() - applied.len(),
            version(applied.last().copied()),
            version(lock.head())
        );
        notice(
            Rule::Drift,
            shown,
            message,
            "run `migrate up`, then verify again",
        )
    } else {
        let unknown: Vec<String> = applied
            .difference(&locked)
            .map(|v| format!("{v:04}"))
            .collect();
        let message = format!(
            "the database has migrations {shown} does not list ({}): drift was not compared",
            unknown.join(", ")
        );
        notice(
            Rule::Drift,
            shown,
            message,
            "run `migrate lock` with those migration files present",
        )
    });
    (out, false)
}

/// A warning about the lock or the comparison itself, not about a database object.
fn notice(rule: Rule, object: &str, message: String, remedy: &str) -> Finding {
    Finding {
        rule,
        level: Level::Warning,
        schema: None,
        table: None,
        object: object.to_string(),
        message,
        remedy: remedy.to_string(),
        acknowledged: None,
    }
}
