//! One module per command. Each computes a report value and prints nothing itself.

pub mod baseline;
pub mod check;
pub mod local;
pub mod new;
pub mod repair;
pub mod run;
pub mod runner;
pub mod status;

use std::time::Duration;

use tokio_postgres::Client;

use crate::cli::GlobalArgs;
use crate::config::Project;
use crate::db;
use crate::error::Error;
use crate::migrations::{self, Migration};
use crate::output::Progress;
use crate::target::{self, Target};

/// What every command gets: the project, the global options, and a progress sink.
pub struct Context {
    pub project: Project,
    pub global: GlobalArgs,
    pub progress: Box<dyn Progress>,
}

impl Context {
    /// Every migration file, parsed and checked; exit 2 naming file and line on any problem.
    pub fn migrations(&self) -> Result<Vec<Migration>, Error> {
        migrations::discover(
            &self.project.migrations_dir(),
            &self.project.root,
            &migrations::domains(self.project.managed_schemas()),
        )
    }

    pub fn target(&self) -> Result<Target, Error> {
        target::resolve(
            &self.project,
            self.global.database_url.as_deref(),
            self.global.env_name.as_deref(),
        )
    }

    /// Resolves the target and opens a session to it.
    pub async fn connect(&self) -> anyhow::Result<(Client, Target)> {
        let target = self.target()?;
        let client = db::connect(target.url()).await?;
        Ok((client, target))
    }

    /// Takes the migration lock, waiting at most `--lock-wait`.
    pub async fn lock(&self, client: &Client) -> anyhow::Result<()> {
        db::lock::acquire(client, Duration::from_secs(self.global.lock_wait)).await
    }

    /// Refuses a destructive command on a protected environment without --allow-destructive.
    pub fn guard_destructive(&self, target: &Target, what: &str) -> Result<(), Error> {
        match &target.environment {
            Some((name, env)) if env.protected && !self.global.allow_destructive => {
                Err(Error::refused(format!(
                    "environment `{name}` is protected: `{what}` needs --allow-destructive"
                )))
            }
            _ => Ok(()),
        }
    }
}
