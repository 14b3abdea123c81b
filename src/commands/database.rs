//! `database create|drop`: the target database itself, made or removed from the server's
//! maintenance database (`postgres`, else `template1`, as `createdb` and `dropdb` do).

use serde::Serialize;
use tokio_postgres::error::SqlState;

use super::Context;
use crate::cli::DropArgs;
use crate::db;
use crate::db::database::{self, Template};
use crate::error::Error;
use crate::target::Target;

/// What `database create` or `database drop` did.
#[derive(Debug, Serialize)]
pub struct DatabaseReport {
    /// The target, redacted.
    pub target: String,
    pub database: String,
    /// `create` or `drop`.
    pub action: &'static str,
    /// False when there was nothing to do (it already existed, or did not exist).
    pub changed: bool,
}

/// Creates the target's database; nothing to do when it exists.
pub async fn create(ctx: &Context) -> anyhow::Result<DatabaseReport> {
    let target = ctx.target()?;
    let name = target.conninfo().dbname().to_string();
    let admin = maintenance(&target, &name).await?;
    let changed = if database::exists(&admin, &name).await? {
        false
    } else {
        match database::create(&admin, &name, Template::Default).await {
            Ok(()) => true,
            // Created by someone else meanwhile: it exists, which is what was asked.
            Err(e) if e.code() == Some(&SqlState::DUPLICATE_DATABASE) => false,
            Err(e) => {
                return Err(Error::refused(format!(
                    "cannot create database \"{name}\" on {}: {}{}",
                    target.redacted(),
                    db::chain(&e),
                    if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) {
                        " (the role needs CREATEDB)"
                    } else {
                        ""
                    }
                ))
                .into())
            }
        }
    };
    Ok(DatabaseReport {
        target: target.redacted(),
        database: name,
        action: "create",
        changed,
    })
}

/// Drops the target's database, after a person's yes (or `--yes`); refused on a protected
/// environment without `--allow-destructive`.
pub async fn drop(ctx: &Context, args: &DropArgs) -> anyhow::Result<DatabaseReport> {
    let target = ctx.target()?;
    let name = target.conninfo().dbname().to_string();
    ctx.guard_destructive(&target, "database drop")?;
    if !ctx.global.yes {
        let question = format!(
            "Drop database \"{name}\" on {} and everything in it?",
            target.redacted()
        );
        match ctx.confirm.ask(&question) {
            Some(true) => {}
            Some(false) => {
                return Err(Error::refused(format!(
                    "not confirmed; database \"{name}\" was not dropped"
                ))
                .into())
            }
            None => {
                return Err(Error::input(format!(
                    "dropping database \"{name}\" needs a yes, and stdin is not a terminal: \
                     pass --yes"
                ))
                .into())
            }
        }
    }
    let admin = maintenance(&target, &name).await?;
    let changed = database::exists(&admin, &name).await?;
    if changed {
        database::drop(&admin, &name, args.force)
            .await
            .map_err(|e| {
                let hint = if e.code() == Some(&SqlState::OBJECT_IN_USE) {
                    " (other sessions are connected to it: end them, or pass --force)"
                } else {
                    ""
                };
                Error::refused(format!(
                    "cannot drop database \"{name}\" on {}: {}{hint}",
                    target.redacted(),
                    db::chain(&e)
                ))
            })?;
    }
    Ok(DatabaseReport {
        target: target.redacted(),
        database: name,
        action: "drop",
        changed,
    })
}

/// A session on the server's maintenance database: `postgres`, else `template1` (never the
/// database being created or dropped). The first failure is the one reported.
async fn maintenance(target: &Target, name: &str) -> anyhow::Result<db::Session> {
    let mut first_error = None;
    for candidate in ["postgres", "template1"] {
        if candidate == name {
            continue;
        }
        let conninfo = target.conninfo().with_database(candidate).map_err(|e| {
            Error::input(format!(
                "invalid connection string in {}: {e}",
                target.origin()
            ))
        })?;
        match db::connect(&conninfo).await {
            Ok(client) => return Ok(client),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.expect("at least one maintenance database is tried"))
}
