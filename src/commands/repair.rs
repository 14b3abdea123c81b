//! `repair <V>`: accept an edited migration's current checksum, clear a dirty mark, or with
//! `--forget` remove the record so the migration is pending again.

use std::time::SystemTime;

use serde::Serialize;

use super::Context;
use crate::cli::RepairArgs;
use crate::db::state::{self, Direction, HistoryEntry};
use crate::error::Error;

#[derive(Debug, Serialize)]
pub struct RepairReport {
    pub target: String,
    pub version: i64,
    pub name: String,
    /// `accepted_checksum`, `cleared_dirty`, `forgotten`, or `nothing_to_repair`.
    pub action: &'static str,
    pub old_checksum: String,
    pub new_checksum: Option<String>,
}

pub async fn repair(ctx: &Context, args: &RepairArgs) -> anyhow::Result<RepairReport> {
    let files = ctx.migrations()?;
    let (mut client, target) = ctx.connect().await?;
    ctx.guard_destructive(&target, "repair")?;
    ctx.lock(&client, &target, "repair").await?;
    let applied = crate::db::session::before_any_migration(state::applied(&*client).await)?;
    let Some(row) = applied.iter().find(|a| a.version == args.version) else {
        return Err(Error::refused(format!(
            "version {} is not recorded as applied; nothing to repair",
            args.version
        ))
        .into());
    };
    // Only once there is something to repair (and so a state schema): a refused repair leaves
    // an untouched database untouched.
    state::ensure(&client).await?;
    let file = files.iter().find(|m| m.version == args.version);
    let (action, new_checksum) = if args.forget {
        ("forgotten", None)
    } else {
        let Some(file) = file else {
            return Err(Error::refused(format!(
                "the file of version {} is missing; restore it, or use `repair {} --forget` to drop its record",
                args.version, args.version
            ))
            .into());
        };
        let action = if row.dirty {
            "cleared_dirty"
        } else if row.checksum != file.checksum {
            "accepted_checksum"
        } else {
            "nothing_to_repair"
        };
        (action, Some(file.checksum.clone()))
    };
    let report = RepairReport {
        target: target.redacted(),
        version: row.version,
        name: row.name.clone(),
        action,
        old_checksum: row.checksum.clone(),
        new_checksum: new_checksum.clone(),
    };
    if action == "nothing_to_repair" {
        return Ok(report);
    }
    ctx.confirm_protected(
        &target,
        &format!("Repair {:04} {} ({action})", row.version, row.name),
    )?;
    let tx = client.transaction().await?;
    match &new_checksum {
        Some(checksum) => state::set_checksum(&tx, row.version, checksum).await?,
        None => state::forget_applied(&tx, row.version).await?,
    }
    let note = match action {
        "cleared_dirty" => "cleared the dirty mark; the migration counts as applied".to_string(),
        "forgotten" => "removed the record; the migration counts as pending".to_string(),
        _ => format!(
            "accepted checksum {} (was {})",
            new_checksum.as_deref().unwrap_or(""),
            row.checksum
        ),
    };
    let now = SystemTime::now();
    state::record_history(
        &tx,
        &HistoryEntry {
            version: row.version,
            name: &row.name,
            direction: Direction::Repair,
            checksum: new_checksum.as_deref().or(Some(&row.checksum)),
            started_at: now,
            finished_at: now,
            error: None,
            note: Some(&note),
            warnings: &[],
        },
    )
    .await?;
    tx.commit().await?;
    Ok(report)
}
