//! `status`: every migration, applied, pending, changed, missing or dirty.

use serde::Serialize;

use std::collections::HashMap;

use super::Context;
use crate::db::state;
use crate::migrations::plan::{head, reconcile, AppliedMigration, State};

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
    /// What is wrong and what to do, for changed, missing and dirty rows, and for an applied
    /// file renamed since (its state stays `applied`).
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
    // Reading the files and the applied rows overlap: each waits on its own I/O.
    let (sources, connected) = tokio::join!(ctx.read_migrations(), async {
        let (client, target) = ctx.connect().await?;
        let applied = state::applied_outside_transaction(&client).await?;
        anyhow::Ok((target, applied))
    });
    let sources = sources?;
    let (target, applied) = match connected {
        Ok(connected) => connected,
        Err(e) => {
            // A broken file is reported before an unreachable database, as `up` does.
            sources.parse()?;
            return Err(e);
        }
    };
    // A file byte-identical to an applied one passed every rule when it was applied, and
    // status runs nothing: it is listed unparsed. Every other file is checked whole.
    let recorded: HashMap<i64, &AppliedMigration> =
        applied.iter().map(|a| (a.version, a)).collect();
    let files = sources.list(|version, checksum| {
        recorded
            .get(&version)
            .is_some_and(|a| !a.dirty && a.checksum == checksum)
    })?;
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
                empty: e.state == State::Pending && e.file.is_some_and(|f| f.empty),
                problem: e.problem().or_else(|| e.renamed()),
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
