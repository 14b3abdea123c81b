//! `lint`: offline check of migration files for risky DDL (squawk's rules) and row-level
//! security gaps (ours). Also the gate `check`, `plan` and `promote` run.

use std::path::PathBuf;

use serde::Serialize;

use super::Context;
use crate::cli::{LintArgs, LintFormat};
use crate::db::state;
use crate::error::Error;
use crate::lint::{self, Acknowledged, Finding, Level, Outcome, Settings};
use crate::migrations::Migration;

/// What `lint` found.
#[derive(Debug, Serialize)]
pub struct LintReport {
    /// Files linted.
    pub files: usize,
    pub pg_version: String,
    /// Timeouts the runner sets for every migration in the environments considered, so
    /// squawk's matching `require-*-timeout` rule is off.
    pub set_by_runner: Vec<&'static str>,
    pub errors: usize,
    pub warnings: usize,
    /// Unacknowledged findings, by file and line.
    pub findings: Vec<Finding>,
    pub acknowledged: Vec<Acknowledged>,
    #[serde(skip)]
    pub format: LintFormat,
}

impl LintReport {
    fn new(files: usize, settings: &Settings, outcome: Outcome, format: LintFormat) -> LintReport {
        LintReport {
            files,
            pg_version: settings.pg_version.clone(),
            set_by_runner: settings.runner_sets.clone(),
            errors: outcome.errors(),
            warnings: outcome
                .findings
                .iter()
                .filter(|f| f.level == Level::Warning)
                .count(),
            findings: outcome.findings,
            acknowledged: outcome.acknowledged,
            format,
        }
    }
}

pub async fn lint(ctx: &Context, args: &LintArgs) -> anyhow::Result<LintReport> {
    let files = ctx.migrations()?;
    let chosen: Vec<i64> = if args.pending {
        let (client, target) = ctx.connect().await?;
        let applied = state::applied(&*client).await?;
        let env = target.environment.as_ref().map(|(name, _)| name.clone());
        let pending: Vec<i64> = files
            .iter()
            .map(|m| m.version)
            .filter(|v| !applied.iter().any(|a| a.version == *v))
            .collect();
        let (settings, outcome) = lint::for_project(
            &ctx.project.config,
            &files,
            |m| pending.contains(&m.version),
            env.as_deref(),
        )?;
        return Ok(LintReport::new(
            pending.len(),
            &settings,
            outcome,
            args.format,
        ));
    } else if args.files.is_empty() {
        files.iter().map(|m| m.version).collect()
    } else {
        select(ctx, &files, &args.files)?
    };
    let (settings, outcome) = lint::for_project(
        &ctx.project.config,
        &files,
        |m| chosen.contains(&m.version),
        ctx.global.env_name.as_deref(),
    )?;
    Ok(LintReport::new(
        chosen.len(),
        &settings,
        outcome,
        args.format,
    ))
}

/// The versions of the migrations the paths name; a path that is not one of the project's
/// migrations is an input error.
fn select(ctx: &Context, files: &[Migration], paths: &[PathBuf]) -> Result<Vec<i64>, Error> {
    let mut versions = Vec::new();
    for path in paths {
        let full = path
            .canonicalize()
            .map_err(|e| Error::input(format!("cannot read {}: {e}", path.display())))?;
        let found = files.iter().find(|m| {
            let own = ctx.project.root.join(&m.path);
            own.canonicalize().unwrap_or(own) == full
        });
        match found {
            Some(m) => versions.push(m.version),
            None => {
                return Err(Error::input(format!(
                    "{} is not a migration of this project: lint reads the files of {} (create \
                     one with `migrate new`)",
                    path.display(),
                    ctx.project.config.paths.migrations.display()
                )))
            }
        }
    }
    Ok(versions)
}
