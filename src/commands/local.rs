//! `local start|stop|status|url|reset`: the project's own PostgreSQL cluster.

use serde::Serialize;

use super::Context;
use crate::cli::LocalCommand;
use crate::error::Error;
use crate::local::{Cluster, ClusterStatus, ServerOptions};

#[derive(Debug, Serialize)]
pub struct LocalReport {
    pub action: &'static str,
    /// For stop: whether it was running.
    pub changed: bool,
    pub cluster: ClusterStatus,
}

pub fn local(ctx: &Context, command: LocalCommand) -> Result<LocalReport, Error> {
    let cluster = Cluster::new(&ctx.project.local_dir())?;
    let (action, changed) = match command {
        LocalCommand::Start => {
            let was_running = cluster.is_running();
            cluster.ensure_running(ServerOptions::default())?;
            ("start", !was_running)
        }
        LocalCommand::Stop => ("stop", cluster.stop()?),
        LocalCommand::Status => ("status", false),
        LocalCommand::Url => {
            cluster.ensure_running(ServerOptions::default())?;
            ("url", false)
        }
        LocalCommand::Reset => {
            if let Some((name, env)) = ctx
                .global
                .env_name
                .as_ref()
                .and_then(|name| ctx.project.config.env.get_key_value(name))
            {
                ctx.guard_destructive_env(name, env, "local reset")?;
            }
            if cluster.status().initialized {
                confirm_reset(ctx, &cluster)?;
            }
            cluster.reset(ServerOptions::default())?;
            ("reset", true)
        }
    };
    Ok(LocalReport {
        action,
        changed,
        cluster: cluster.status(),
    })
}

/// `local reset` deletes data: `--yes`, or a person's yes at the terminal. Without a terminal
/// and without `--yes` it is a usage error (exit 2); answering no is a refusal (exit 1).
fn confirm_reset(ctx: &Context, cluster: &Cluster) -> Result<(), Error> {
    if ctx.global.yes {
        return Ok(());
    }
    let data = cluster.status().data_dir;
    let question =
        format!("Delete every database of the local cluster ({data}) and start it empty?");
    match ctx.confirm.ask(&question) {
        Some(true) => Ok(()),
        Some(false) => Err(Error::refused(
            "not confirmed; the local cluster was left as it was",
        )),
        None => Err(Error::input(format!(
            "`local reset` deletes every database of the local cluster ({data}) and stdin is \
             not a terminal, so nobody can confirm: pass --yes"
        ))),
    }
}
