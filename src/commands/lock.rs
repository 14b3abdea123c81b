//! `lock`: applies every migration to a temporary database on a scratch server, reads the
//! managed schemas back, drops the database, and writes `schema.lock`.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::SystemTime;

use anyhow::Context as _;
use serde::Serialize;

use super::Context;
use crate::cli::LockArgs;
use crate::conninfo::{ConnInfo, Env};
use crate::db::catalog::{self, Catalog};
use crate::db::database::{self, Template};
use crate::db::state::Direction;
use crate::db::{self, quote_ident};
use crate::engine::{Locking, Runner};
use crate::error::Error;
use crate::local::{Cluster, ServerOptions, DATABASE};
use crate::lockfile::Lockfile;
use crate::migrations::Migration;

#[derive(Debug, Serialize)]
pub struct LockReport {
    /// The lock file, as configured (`schema.lock` by default).
    pub file: String,
    /// The scratch server, redacted, and the temporary database made (and dropped) there.
    pub scratch_server: String,
    pub scratch_database: String,
    pub migrations: usize,
    pub head: Option<i64>,
    pub tables: usize,
    pub functions: usize,
    pub fingerprint: String,
    /// False when the file already said exactly this.
    pub changed: bool,
}

pub async fn lock(ctx: &Context, args: &LockArgs) -> anyhow::Result<LockReport> {
    let files = ctx.migrations()?;
    if let Some(m) = files.iter().find(|m| m.is_empty()) {
        return Err(m.empty_error().into());
    }
    let prelude = ctx.project.lock_prelude()?;
    let server = match &args.scratch_url {
        Some(url) => ConnInfo::new(url, Env::Process).map_err(|e| {
            Error::input(format!("invalid connection string in --scratch-url: {e}"))
        })?,
        None => {
            let cluster = Cluster::new(&ctx.project.local_dir())?;
            let port = cluster.ensure_running(ServerOptions::default())?;
            ConnInfo::new(&cluster.url(port, DATABASE), Env::Empty)
                .map_err(|e| Error::input(format!("the local cluster's URL: {e}")))?
        }
    };
    let mut admin = db::connect(&server).await?;
    // Its DROP DATABASE after an interrupt must not be cancelled by that interrupt.
    admin.survive_interrupts();
    // The build holds a session lock and runs `transaction: none` migrations statement by
    // statement: neither works when each statement may land on another server connection.
    if db::pooler::is_transaction_pooler(&server, &admin).await? {
        return Err(super::through_pooler_at(&server.redacted(), "lock").into());
    }
    let name = scratch_name();
    database::create(&admin, &name, Template::Pristine)
        .await
        .map_err(|e| {
            Error::refused(format!(
                "cannot create a scratch database on {}: {} (the role needs CREATEDB there; \
                 name another server with --scratch-url)",
                server.redacted(),
                db::chain(&e)
            ))
        })?;
    // Whatever happens while building, an interrupt included, the scratch database is
    // dropped before returning.
    let scratch_url = server
        .with_database(&name)
        .map_err(|e| Error::input(format!("the scratch database's connection string: {e}")))?;
    let built = tokio::select! {
        built = build(ctx, &prelude, &files, &scratch_url, &name) => built,
        signal = interrupted() => Err(Error::refused(format!(
            "interrupted by {signal}; schema.lock was not written"
        ))
        .into()),
    };
    // The interrupt may have ended the build first, by cancelling its statement.
    let built = match db::session::interrupted() {
        Some(signal) => Err(Error::refused(format!(
            "interrupted by {}; schema.lock was not written",
            db::session::signal_name(signal)
        ))
        .into()),
        None => built,
    };
    let dropped = database::drop(&admin, &name, true).await;
    if let Err(e) = dropped {
        let left = format!(
            "the scratch database {name} on {} was not dropped ({}); drop it by hand: \
             DROP DATABASE {} WITH (FORCE)",
            server.redacted(),
            db::chain(&e),
            quote_ident(&name)
        );
        return Err(match built {
            Err(failed) => failed.context(left),
            Ok(_) => Error::refused(left).into(),
        });
    }
    let catalog = built?;

    let lock = Lockfile::new(&files, ctx.project.managed_schemas(), &catalog);
    let text = lock.render();
    let path = ctx.project.lock_path();
    let shown = ctx.project.config.paths.lock.display().to_string();
    let changed = std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str());
    if changed {
        // Write beside it and rename, so a reader never sees half a file.
        let partial = path.with_extension("lock.partial");
        let written =
            std::fs::write(&partial, &text).and_then(|()| std::fs::rename(&partial, &path));
        if written.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        written.with_context(|| format!("writing {shown}"))?;
    }
    Ok(LockReport {
        file: shown,
        scratch_server: server.redacted(),
        scratch_database: name,
        migrations: files.len(),
        head: lock.head(),
        tables: catalog.table_count(),
        functions: catalog.schemas.values().map(|s| s.functions.len()).sum(),
        fingerprint: lock.fingerprint,
        changed,
    })
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM), naming the signal.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        },
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}

/// Runs the `[lock] prelude` files, then applies every migration to the scratch database at
/// `url`, and reads its catalog.
async fn build(
    ctx: &Context,
    prelude: &[(String, String)],
    files: &[Migration],
    url: &ConnInfo,
    name: &str,
) -> anyhow::Result<Catalog> {
    let mut client = db::connect(url).await?;
    for (file, sql) in prelude {
        client.batch_execute(sql).await.map_err(|e| {
            Error::refused(format!(
                "the lock prelude {file} failed on the scratch database {name}: {}\n\
                 schema.lock was not written",
                db::chain(&e)
            ))
        })?;
    }
    // The scratch database is ours alone, but the runner checks that it still holds the
    // lock it records under (a migration must not release it).
    db::lock::acquire(&client, std::time::Duration::ZERO, &|_| {}).await?;
    super::ensure_state(&mut client, Locking::Session).await?;
    let all: Vec<&Migration> = files.iter().collect();
    let note = |_: i64| None;
    let settings = ctx
        .project
        .config
        .session
        .clone()
        .into_iter()
        .collect::<Vec<_>>();
    let mut runner = Runner {
        session: &mut client,
        url,
        settings: &settings,
        progress: ctx.progress.as_ref(),
        note: &note,
        locking: Locking::Session,
        out_of_order: &[],
        versions: &[],
    };
    let outcome = runner.run(&all, Direction::Up).await?;
    if let Some(f) = outcome.failure {
        return Err(Error::refused(format!(
            "{} failed on the scratch database {name} at {}: {}\nschema.lock was not written",
            f.name,
            f.location(),
            f.error
        ))
        .into());
    }
    let tx = client.transaction().await?;
    catalog::read(&tx, ctx.project.managed_schemas()).await
}

/// A database name no other run uses: the process id and a random part.
fn scratch_name() -> String {
    let random = RandomState::new().hash_one(SystemTime::now());
    format!("migrate_lock_{}_{:08x}", std::process::id(), random as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_names_are_plain_identifiers() {
        let name = scratch_name();
        assert!(name.starts_with("migrate_lock_"));
        assert!(name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
    }
}
