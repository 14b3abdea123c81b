//! `status`: every migration, applied, pending, changed, missing or dirty.

use serde::Serialize;

use super::Context;
use crate::db::state;
use crate::migrations::plan::{head, reconcile, State};

#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub target: String,
    pub migrations: Vec<StatusRow>,
    pub counts: Counts,
    /// The highest applied version.
    pub head: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct StatusRow {
    pub version: i64,
    pub name: String,
    pub domain: Option<String>,
    pub state: State,
    pub applied_at: Option<String>,
    pub file: Option<String>,
    /// A pending file whose UP section is still empty (a skeleton from `migrate new`).
    pub empty: bool,
    /// What is wrong and what to do, for changed, missing and dirty rows.
    pub problem: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Counts {
    pub applied: usize,
    pub pending: usize,
    pub changed: usize,
    pub missing: usize,
    pub dirty: usize,
}

pub async fn status(ctx: &Context) -> anyhow::Result<StatusReport> {
    let files = ctx.migrations()?;
    let (client, target) = ctx.connect().await?;
    let applied = state::applied(&*client).await?;
    let entries = reconcile(&files, &applied);
    let mut counts = Counts::default();
    let rows = entries
        .iter()
        .map(|e| {
            *match e.state {
                State::Applied => &mut counts.applied,
                State::Pending => &mut counts.pending,
                State::Changed => &mut counts.changed,
                State::Missing => &mut counts.missing,
                State::Dirty => &mut counts.dirty,
            } += 1;
            StatusRow {
                version: e.version,
                name: e.name().to_string(),
                domain: e.file.map(|f| f.domain.clone()),
                state: e.state,
                applied_at: e.applied.map(|a| a.applied_at.clone()),
                file: e.file.map(|f| f.path.clone()),
                empty: e.state == State::Pending && e.file.is_some_and(|f| f.is_empty()),
                problem: e.problem(),
            }
        })
        .collect();
    Ok(StatusReport {
        target: target.redacted(),
        migrations: rows,
        counts,
        head: head(&applied),
    })
}
