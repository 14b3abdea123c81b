//! `check`: offline validation of the migration files (a malformed file exits 2).

use serde::Serialize;

use super::Context;

#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub migrations: usize,
    pub head: Option<i64>,
    pub irreversible: Vec<String>,
    pub no_transaction: Vec<String>,
}

pub fn check(ctx: &Context) -> anyhow::Result<CheckReport> {
    let files = ctx.migrations()?;
    Ok(CheckReport {
        migrations: files.len(),
        head: files.last().map(|m| m.version),
        irreversible: files
            .iter()
            .filter(|m| !m.reversible())
            .map(|m| m.path.clone())
            .collect(),
        no_transaction: files
            .iter()
            .filter(|m| !m.transactional)
            .map(|m| m.path.clone())
            .collect(),
    })
}
