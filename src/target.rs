//! Where a run connects (DESIGN §6): `--database-url`, then `--env NAME` from `migrate.toml`,
//! then `DATABASE_URL` (which `.env` in the project root may set), else the project's local
//! cluster. The connection string is completed from libpq's environment (see `conninfo`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Serialize;

use crate::config::{Environment, Project};
use crate::conninfo::{ConnInfo, ConnInfoError, Env};
use crate::error::Error;
use crate::local::{Cluster, ServerOptions, DATABASE};

/// Where the connection string came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// `--database-url`.
    Flag,
    /// The variable `url_env` of `[env.NAME]` names.
    Environment,
    /// `$DATABASE_URL`.
    DatabaseUrl,
    /// The project's local cluster.
    Local,
}

/// A resolved database to work on. Its connection string carries secrets: show
/// `redacted()` only.
#[derive(Debug, Clone)]
pub struct Target {
    conninfo: ConnInfo,
    pub source: Source,
    /// The `[env.NAME]` entry when the target came from `--env`.
    pub environment: Option<(String, Environment)>,
}

impl Target {
    /// Parses `text`, which came from `source`; a bad string is an input error (exit 2) that
    /// names the part that is wrong and where the string came from.
    pub fn new(
        text: &str,
        source: Source,
        environment: Option<(String, Environment)>,
    ) -> Result<Target, Error> {
        let origin = origin(&source, environment.as_ref());
        if text.trim().is_empty() {
            return Err(Error::input(format!(
                "{origin} is empty: give a postgres://USER@HOST:PORT/DATABASE URL"
            )));
        }
        // The local cluster's URL is complete; the PG* variables are meant for other servers.
        let env = if source == Source::Local {
            Env::Empty
        } else {
            Env::Process
        };
        let conninfo = ConnInfo::new(text, env).map_err(|e| invalid(&origin, e))?;
        Ok(Target {
            conninfo,
            source,
            environment,
        })
    }

    /// The parsed connection: driver configuration, TLS parameters, redacted text.
    pub fn conninfo(&self) -> &ConnInfo {
        &self.conninfo
    }

    /// The connection string with its secrets replaced by `***`.
    pub fn redacted(&self) -> String {
        self.conninfo.redacted()
    }

    /// Where the connection string came from, in words (`$DATABASE_URL (from .env)`).
    pub fn origin(&self) -> String {
        origin(&self.source, self.environment.as_ref())
    }

    /// Session settings every migration runs with (`SET LOCAL` inside its transaction).
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        let Some((_, env)) = &self.environment else {
            return Vec::new();
        };
        let mut settings = Vec::new();
        if let Some(v) = &env.lock_timeout {
            settings.push(("lock_timeout", v.clone()));
        }
        if let Some(v) = &env.statement_timeout {
            settings.push(("statement_timeout", v.clone()));
        }
        settings
    }
}

/// `--database-url`, `$DATABASE_URL (from .env)`, `$STAGING_DATABASE_URL (url_env of
/// [env.staging] in migrate.toml)`.
fn origin(source: &Source, environment: Option<&(String, Environment)>) -> String {
    match (source, environment) {
        (Source::Flag, _) => "--database-url".to_string(),
        (Source::Environment, Some((name, env))) => format!(
            "{} (url_env of [env.{name}] in migrate.toml)",
            variable(&env.url_env)
        ),
        (Source::Environment, None) => "the environment's URL".to_string(),
        (Source::DatabaseUrl, _) => variable("DATABASE_URL"),
        (Source::Local, _) => "the local cluster's URL".to_string(),
    }
}

/// `$NAME`, and `(from .env)` when `.env` set it.
fn variable(name: &str) -> String {
    format!("${name}{}", dotenv_origin(name))
}

/// ` (from /path/.env)` when `.env` set the variable `name`, else nothing: a wrong password
/// that `.env` set is looked for there, not in the shell's environment.
pub(crate) fn dotenv_origin(name: &str) -> String {
    match from_dotenv(name) {
        true => format!(" (from {})", dotenv_shown()),
        false => String::new(),
    }
}

fn invalid(origin: &str, e: ConnInfoError) -> Error {
    match e.variable {
        Some(var) => Error::input(format!(
            "invalid {} (completing the connection string of {origin}): {}",
            variable(var),
            e.message
        )),
        None => Error::input(format!(
            "invalid connection string in {origin}: {}",
            e.message
        )),
    }
}

/// Resolves the target; starts the local cluster when nothing else is named.
pub fn resolve(
    project: &Project,
    flag: Option<&str>,
    env_name: Option<&str>,
) -> Result<Target, Error> {
    if let Some(url) = flag {
        return Target::new(url, Source::Flag, None);
    }
    if let Some(name) = env_name {
        return environment(project, name);
    }
    if let Some(url) = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) {
        return Target::new(&url, Source::DatabaseUrl, None);
    }
    let cluster = Cluster::new(&project.local_dir())?;
    let port = cluster.ensure_running(ServerOptions::default())?;
    Target::new(&cluster.url(port, DATABASE), Source::Local, None)
}

/// The target of `[env.NAME]`: its URL comes from the variable `url_env` names.
pub fn environment(project: &Project, name: &str) -> Result<Target, Error> {
    let Some(env) = project.config.env.get(name) else {
        let known: Vec<&str> = project.config.env.keys().map(String::as_str).collect();
        return Err(Error::input(format!(
            "unknown environment `{name}`; migrate.toml defines {}",
            if known.is_empty() {
                "none (add an [env.NAME] table)".to_string()
            } else {
                known.join(", ")
            }
        )));
    };
    let url = std::env::var(&env.url_env)
        .ok()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            Error::input(format!(
                "environment `{name}` takes its URL from ${}, which is not set",
                env.url_env
            ))
        })?;
    Target::new(
        &url,
        Source::Environment,
        Some((name.to_string(), env.clone())),
    )
}

/// The `.env` file read at start, and the variables it set.
struct Dotenv {
    path: PathBuf,
    set: Vec<String>,
}

static DOTENV: OnceLock<Dotenv> = OnceLock::new();

/// Reads `.env` in the project root, as dbmate and sqlx-cli do: each `KEY=VALUE` it holds
/// becomes an environment variable unless that variable is already set (the environment
/// wins). Call once, before any thread starts. A line that cannot be parsed is an input
/// error naming the file (never the value, which may be a password).
pub fn load_dotenv(root: &Path) -> Result<(), Error> {
    let path = root.join(".env");
    if !path.is_file() {
        return Ok(());
    }
    let shown = path.display().to_string();
    let iter = dotenvy::from_path_iter(&path)
        .map_err(|e| Error::input(format!("cannot read {shown}: {e}")))?;
    let mut set = Vec::new();
    for item in iter {
        let (key, value) = item.map_err(|e| dotenv_error(&path, &shown, e))?;
        if std::env::var_os(&key).is_none() {
            // Single-threaded here: run() calls this before the runtime starts.
            std::env::set_var(&key, &value);
            if key == "DATABASE_URL" || key == "PGPASSWORD" || key.ends_with("_URL") {
                crate::redact::register_connection_string(&value);
            }
            if key == "PGPASSWORD" {
                crate::redact::register(value);
            }
            set.push(key);
        }
    }
    let _ = DOTENV.set(Dotenv { path, set });
    Ok(())
}

/// A `.env` line that cannot be parsed, by its line number and the key it starts with: never
/// its text, which may hold a password (the key before `=` is a name, the rest is not).
fn dotenv_error(path: &Path, shown: &str, e: dotenvy::Error) -> Error {
    match e {
        dotenvy::Error::LineParse(fragment, _) => {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let found = text
                .lines()
                .enumerate()
                .find(|(_, l)| !fragment.is_empty() && l.contains(fragment.trim()));
            let (number, key) = match found {
                Some((i, line)) => {
                    let key = line
                        .trim_start()
                        .trim_start_matches("export ")
                        .split('=')
                        .next()
                        .unwrap_or("")
                        .trim();
                    let key_ok = line.contains('=')
                        && !key.is_empty()
                        && key.len() <= 64
                        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                    (
                        format!(" (line {}", i + 1),
                        key_ok.then(|| format!(", key `{key}`")),
                    )
                }
                None => (String::new(), None),
            };
            Error::input(format!(
                "{shown}: a line cannot be parsed{number}{}{}; write KEY=VALUE, quoting values \
                 with blanks or # in them (KEY='a value')",
                key.unwrap_or_default(),
                if number.is_empty() { "" } else { ")" }
            ))
        }
        other => Error::input(format!("{shown}: {other}")),
    }
}

/// Whether `.env` set the variable `name`.
pub fn from_dotenv(name: &str) -> bool {
    DOTENV
        .get()
        .is_some_and(|d| d.set.iter().any(|k| k == name))
}

fn dotenv_shown() -> String {
    DOTENV
        .get()
        .map_or(".env".to_string(), |d| d.path.display().to_string())
}
