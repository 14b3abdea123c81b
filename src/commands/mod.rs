//! One module per command. Each computes a report value and prints nothing itself.

pub mod baseline;
pub mod check;
pub mod completions;
pub mod database;
pub mod lint;
pub mod local;
pub mod lock;
pub mod new;
pub mod promote;
pub mod repair;
pub mod run;
pub mod seed;
pub mod status;
pub mod verify;

use std::time::Duration;

use crate::cli::GlobalArgs;
use crate::config::{Environment, Project};
use crate::db;
use crate::engine::{Locking, Reporter};
use crate::error::Error;
use crate::migrations::{self, Migration};
use crate::target::{self, Target};

/// What every command gets: the project, the global options, a progress sink, and the way
/// to ask a person for confirmation.
pub struct Context {
    pub project: Project,
    pub global: GlobalArgs,
    pub progress: Box<dyn Reporter>,
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

    /// `migrations`, read and parsed on blocking threads while `work` (connecting, locking)
    /// waits on the server. A problem with the files is reported first (exit 2), and at once:
    /// `work` is dropped unfinished (a lock wait included), as if the files had been read
    /// before connecting.
    pub async fn migrations_during<T>(
        &self,
        work: impl std::future::Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<(Vec<Migration>, T)> {
        let dir = self.project.migrations_dir();
        let root = self.project.root.clone();
        let domains = migrations::domains(self.project.managed_schemas());
        let files =
            tokio::task::spawn_blocking(move || migrations::discover(&dir, &root, &domains));
        let files = async {
            anyhow::Context::context(files.await, "reading the migration files")?
                .map_err(anyhow::Error::from)
        };
        tokio::pin!(files, work);
        tokio::select! {
            biased;
            files = &mut files => {
                let files = files?;
                Ok((files, work.await?))
            }
            done = &mut work => {
                let files = files.await?;
                Ok((files, done?))
            }
        }
    }

    /// Reads the migration files on a blocking thread, so that it overlaps with whatever the
    /// caller awaits meanwhile (connecting); `Sources::parse` parses them.
    pub async fn read_migrations(&self) -> anyhow::Result<migrations::Sources> {
        let dir = self.project.migrations_dir();
        let root = self.project.root.clone();
        let domains = migrations::domains(self.project.managed_schemas());
        let read = tokio::task::spawn_blocking(move || migrations::read(&dir, &root, &domains));
        Ok(anyhow::Context::context(
            read.await,
            "reading the migration files",
        )??)
    }

    pub fn target(&self) -> Result<Target, Error> {
        target::resolve(
            &self.project,
            self.global.database_url.as_deref(),
            self.global.env_name.as_deref(),
        )
    }

    /// Resolves the target and opens a session to it.
    pub async fn connect(&self) -> anyhow::Result<(db::Session, Target)> {
        let target = self.target()?;
        let client = db::connect(target.conninfo()).await?;
        Ok((client, target))
    }

    /// Takes the migration lock for a run that is not a migration run (seed, repair,
    /// baseline, promote), waiting at most `--lock-wait`; refuses through a transaction-mode
    /// pooler, where a session-level lock would stay behind on a pooled connection.
    pub async fn lock(
        &self,
        session: &db::Session,
        target: &Target,
        command: &str,
    ) -> anyhow::Result<()> {
        if db::pooler::is_transaction_pooler(target.conninfo(), session).await? {
            return Err(through_pooler(target, command).into());
        }
        self.take_session_lock(session).await
    }

    /// Takes the migration lock for `up`, `down` or `redo`: the session-level lock on a
    /// direct connection; through a transaction-mode pooler, none here, and each migration's
    /// transaction takes the transaction-level lock instead (`Locking::Transaction`, waiting at most `--lock-wait` for it each time).
    pub async fn lock_migrations(
        &self,
        session: &db::Session,
        target: &Target,
    ) -> anyhow::Result<Locking> {
        if db::pooler::is_transaction_pooler(target.conninfo(), session).await? {
            let lock_wait = Duration::from_secs(self.global.lock_wait);
            let progress = self.progress.as_ref();
            let asking = async {
                // Asked before the first transaction waits for the lock, which it then checks.
                db::session::check_client_connection(session, false).await;
                db::lock::announce_xact(session, lock_wait, &|m| progress.waiting(m)).await
            };
            let pooler =
                || " while asking the pooler for a server connection; nothing was done".to_string();
            db::session::before_writing(pooler, asking).await?;
            return Ok(Locking::Transaction { lock_wait });
        }
        self.take_session_lock(session).await?;
        Ok(Locking::Session)
    }

    async fn take_session_lock(&self, session: &db::Session) -> anyhow::Result<()> {
        let progress = self.progress.as_ref();
        db::lock::acquire(
            session,
            Duration::from_secs(self.global.lock_wait),
            &|message| progress.waiting(message),
        )
        .await
    }

    /// The settings every migration starts with: `[session]` of migrate.toml, then the
    /// environment's `[env.NAME.session]` over it, then its lock_timeout and statement_timeout.
    /// Names are PostgreSQL's, which ignore ASCII case (`guc_name_compare`): `WORK_MEM` of an
    /// environment overrides `work_mem` of `[session]`.
    pub fn migration_settings(&self, target: &Target) -> Vec<(String, String)> {
        let mut settings = std::collections::BTreeMap::new();
        let layers = [
            Some(&self.project.config.session),
            target.environment.as_ref().map(|(_, env)| &env.session),
        ];
        for (name, value) in layers.into_iter().flatten().flatten() {
            settings.insert(name.to_ascii_lowercase(), value.clone());
        }
        for (name, value) in target.settings() {
            settings.insert(name.to_ascii_lowercase(), value);
        }
        settings.into_iter().collect()
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
        self.confirm_protected_listing(target, action, &[])
    }

    /// `confirm_protected`, showing `items` (one per line, e.g. "0002 coach_t2") above the
    /// question, so a person sees what they agree to.
    pub fn confirm_protected_listing(
        &self,
        target: &Target,
        action: &str,
        items: &[String],
    ) -> Result<(), Error> {
        let Some((name, env)) = &target.environment else {
            return Ok(());
        };
        if !env.protected || self.global.yes {
            return Ok(());
        }
        let mut question: String = items.iter().map(|i| format!("  {i}\n")).collect();
        question.push_str(&format!("{action} to {name} ({})?", target.redacted()));
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

/// "0002 coach_t2": how a confirmation lists a migration.
pub fn listed(migrations: &[&Migration]) -> Vec<String> {
    migrations
        .iter()
        .map(|m| format!("{:04} {}", m.version, m.name))
        .collect()
}

/// The refusal for a command that needs a session of its own, through a transaction pooler.
pub fn through_pooler(target: &Target, what: &str) -> Error {
    through_pooler_at(&target.redacted(), what)
}

/// `through_pooler` for a server named by its redacted connection string (`lock`'s
/// `--scratch-url`).
pub fn through_pooler_at(shown: &str, what: &str) -> Error {
    Error::refused(format!(
        "{} is reached through a transaction-mode connection pooler (PgBouncer with \
         pool_mode = transaction, or the transaction pooler port 6543 of a hosted Supabase \
         project), which may run each statement on another server connection: {what} needs a \
         session of its own, so nothing was done. Connect directly to PostgreSQL (Supabase: \
         the direct connection, or the session pooler on port 5432) for this command",
        shown
    ))
}

/// "1 migration", "3 migrations".
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Creates the state tables on first use, under the lock the run holds (through a pooler,
/// the transaction-level lock of the creating transaction), and takes the run's lock
/// generation: on the session-level lock the tracking rows check it. Asks first, where taking
/// the lock did not, whether the server can check during each migration that this client is
/// still connected (`session::check_client_connection`).
pub(crate) async fn ensure_state(
    session: &mut db::Session,
    locking: Locking,
) -> anyhow::Result<()> {
    // Asked already where the lock was taken; otherwise before the `BEGIN` of the creating
    // transaction, which a refusal would abort.
    db::session::check_client_connection(session, false).await;
    let generation = match locking {
        Locking::Session => Some(db::state::ensure(&session.client).await?),
        Locking::Transaction { lock_wait } => {
            db::state::ensure_under_xact_lock(session, lock_wait).await?;
            None
        }
    };
    if generation.is_some() {
        session.lock_generation = generation;
    }
    Ok(())
}
