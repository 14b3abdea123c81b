//! `check`: offline validation of the migration files (a malformed file exits 2), and whether
//! `schema.lock` still matches them (a stale lock exits 1).

use serde::Serialize;

use super::Context;
use crate::lint::Finding;
use crate::lockfile::{self, Lockfile, Stale};

#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub migrations: usize,
    pub head: Option<i64>,
    pub irreversible: Vec<String>,
    pub no_transaction: Vec<String>,
    /// Files whose UP section is still empty (skeletons from `migrate new`): not in the lock
    /// check, and `up` refuses them.
    pub empty: Vec<String>,
    /// The lock file, as configured.
    pub lock: String,
    pub lock_missing: bool,
    /// Files added, removed, edited or renamed since the lock was written.
    pub stale: Vec<Stale>,
    /// The managed schemas the lock was made for, when `migrate.toml` now lists others.
    pub lock_schemas: Option<Vec<String>>,
    /// What `lint` finds in every migration: an error-level finding fails the check.
    pub lint: LintCheck,
}

/// The lint part of `check`.
#[derive(Debug, Serialize)]
pub struct LintCheck {
    pub errors: usize,
    pub findings: Vec<Finding>,
    pub acknowledged: usize,
}

impl CheckReport {
    /// Whether `schema.lock` is missing or no longer matches the files or the schema list.
    pub fn lock_outdated(&self) -> bool {
        self.lock_missing || !self.stale.is_empty() || self.lock_schemas.is_some()
    }
}

pub fn check(ctx: &Context) -> anyhow::Result<CheckReport> {
    let files = ctx.migrations()?;
    let shown = ctx.project.config.paths.lock.display().to_string();
    let lock = Lockfile::read(&ctx.project.lock_path(), &shown)?;
    let dir = ctx.project.config.paths.migrations.display().to_string();
    let (_, outcome) = crate::lint::for_project(
        &ctx.project.config,
        &files,
        |_| true,
        ctx.global.env_name.as_deref(),
    )?;
    Ok(CheckReport {
        lint: LintCheck {
            errors: outcome.errors(),
            acknowledged: outcome.acknowledged.len(),
            findings: outcome.findings,
        },
        migrations: files.len(),
        head: files.last().map(|m| m.version),
        irreversible: files
            .iter()
            .filter(|m| !m.reversible() && !m.is_empty())
            .map(|m| m.path.clone())
            .collect(),
        no_transaction: files
            .iter()
            .filter(|m| !m.transactional)
            .map(|m| m.path.clone())
            .collect(),
        empty: files
            .iter()
            .filter(|m| m.is_empty())
            .map(|m| m.path.clone())
            .collect(),
        lock_missing: lock.is_none(),
        stale: lock
            .as_ref()
            .map_or_else(Vec::new, |l| lockfile::stale(&files, l, &dir)),
        lock_schemas: lock
            .as_ref()
            .and_then(|l| l.other_schemas(ctx.project.managed_schemas()))
            .map(<[String]>::to_vec),
        lock: shown,
    })
}
