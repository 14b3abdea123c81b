//! One module per command. Each computes a report value and prints nothing itself.

pub mod baseline;
pub mod check;
pub mod lint;
pub mod local;
pub mod lock;
pub mod new;
pub mod promote;
pub mod repair;
pub mod run;
pub mod runner;
pub mod seed;
pub mod status;
pub mod verify;

use std::time::Duration;

use tokio_postgres::Client;

use crate::cli::GlobalArgs;
use crate::config::{Environment, Project};
use crate::db;
use crate::error::Error;
use crate::migrations::{self, Migration};
use crate::output::Progress;
use crate::target::{self, Target};

/// What every command gets: the project, the global options, a progress sink, and the way
/// to ask a person for confirmation.
pub struct Context {
    pub project: Project,
    pub global: GlobalArgs,
    pub progress: Box<dyn Progress>,
    pub confirm: Box<dyn Confirm>,
}

/// Asks a person a yes/no question (the terminal prompt lives in `output`); the policy of
/// when to ask stays in `Context::confirm_protected`.
pub trait Confirm {
    /// The answer, or None when nobody can be asked (stdin is not a terminal).
    fn ask(&self, question: &str) -> Option<bool>;
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
            Some((name, env)) => self.guard_destructive_env(name, env, what),
            None => Ok(()),
        }
    }

    /// The same guard for a command that names an environment but does not connect to it
    /// (`local reset --env production` is a slip worth stopping).
    pub fn guard_destructive_env(
        &self,
        name: &str,
        env: &Environment,
        what: &str,
    ) -> Result<(), Error> {
        if env.protected && !self.global.allow_destructive {
            return Err(Error::refused(format!(
                "environment `{name}` is protected: `{what}` needs --allow-destructive"
            )));
        }
        Ok(())
    }

    /// Before a writing run against a protected environment: `--yes`, or a person's yes at
    /// the terminal. Without a terminal and without `--yes` it is a usage error (exit 2);
    /// answering no is a refusal (exit 1). `action` reads like "Apply 3 migrations".
    pub fn confirm_protected(&self, target: &Target, action: &str) -> Result<(), Error> {
        let Some((name, env)) = &target.environment else {
            return Ok(());
        };
        if !env.protected || self.global.yes {
            return Ok(());
        }
        let question = format!("{action} to {name} ({})?", target.redacted());
        match self.confirm.ask(&question) {
            Some(true) => Ok(()),
            Some(false) => Err(Error::refused(format!(
                "not confirmed; nothing was changed in `{name}`"
            ))),
            None => Err(Error::input(format!(
                "environment `{name}` is protected and stdin is not a terminal, so nobody can \
                 confirm \"{action}\": pass --yes"
            ))),
        }
    }
}

/// "1 migration", "3 migrations".
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
