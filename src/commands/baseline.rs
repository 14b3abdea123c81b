//! `baseline <V>`: adopt an existing database by recording 1..V as applied without running them.

use std::time::SystemTime;

use serde::Serialize;

use super::{count, Context};
use crate::db::state::{self, Direction, HistoryEntry};
use crate::error::Error;

#[derive(Debug, Serialize)]
pub struct BaselineReport {
    pub target: String,
    pub version: i64,
    pub recorded: Vec<Recorded>,
}

#[derive(Debug, Serialize)]
pub struct Recorded {
    pub version: i64,
    pub name: String,
}

pub async fn baseline(ctx: &Context, version: i64) -> anyhow::Result<BaselineReport> {
    let files = ctx.migrations()?;
    if let Some(m) = files.iter().find(|m| m.version <= version && m.is_empty()) {
        return Err(m.empty_error().into());
    }
    let (mut client, target) = ctx.connect().await?;
    ctx.guard_destructive(&target, "baseline")?;
    ctx.lock(&client, &target, "baseline").await?;
    state::ensure(&client).await?;
    let applied = crate::db::session::before_any_migration(state::applied(&*client).await)?;
    if let Some(last) = applied.last() {
        return Err(Error::refused(format!(
            "{} migrations are already recorded (up to version {}); baseline only adopts a \
             database with no recorded history",
            applied.len(),
            last.version
        ))
        .into());
    }
    let chosen: Vec<_> = files.iter().filter(|m| m.version <= version).collect();

    if chosen.is_empty() {
        return Err(Error::input(format!(
            "no migration file has a version at or below {version}"
        ))
        .into());
    }
    let action = format!(
        "Record {} as applied without running them",
        count(chosen.len(), "migration")
    );
    ctx.confirm_protected(&target, &action)?;
    let tx = client.transaction().await?;
    let now = SystemTime::now();
    for m in &chosen {
        state::record_applied(&tx, m, 0, false).await?;
        state::record_history(
            &tx,
            &HistoryEntry {
                version: m.version,
                name: &m.name,
                direction: Direction::Baseline,
                checksum: Some(&m.checksum),
                started_at: now,
                finished_at: now,
                error: None,
                note: Some(&format!("baseline {version}: recorded without running")),
                warnings: &[],
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(BaselineReport {
        target: target.redacted(),
        version,
        recorded: chosen
            .iter()
            .map(|m| Recorded {
                version: m.version,
                name: m.name.clone(),
            })
            .collect(),
    })
}
