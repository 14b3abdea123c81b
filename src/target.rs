//! Where a run connects (DESIGN §6): `--database-url`, then `--env NAME` from `migrate.toml`,
//! then `DATABASE_URL`, else the project's local cluster.

use serde::Serialize;

use crate::config::{Environment, Project};
use crate::error::Error;
use crate::local::{Cluster, ServerOptions, DATABASE};
use crate::redact::{redact_url, register_url};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Flag,
    Environment,
    DatabaseUrl,
    Local,
}

/// A resolved database to work on. Its URL carries secrets: show `redacted()` only.
#[derive(Debug, Clone)]
pub struct Target {
    url: String,
    pub source: Source,
    /// The `[env.NAME]` entry when the target came from `--env`.
    pub environment: Option<(String, Environment)>,
}

impl Target {
    pub fn new(url: String, source: Source, environment: Option<(String, Environment)>) -> Target {
        register_url(&url);
        Target {
            url,
            source,
            environment,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn redacted(&self) -> String {
        redact_url(&self.url)
    }

    pub fn protected(&self) -> bool {
        self.environment.as_ref().is_some_and(|(_, e)| e.protected)
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

/// Resolves the target; starts the local cluster when nothing else is named.
pub fn resolve(
    project: &Project,
    flag: Option<&str>,
    env_name: Option<&str>,
) -> Result<Target, Error> {
    if let Some(url) = flag {
        return Ok(Target::new(url.to_string(), Source::Flag, None));
    }
    if let Some(name) = env_name {
        return environment(project, name);
    }
    if let Some(url) = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) {
        return Ok(Target::new(url, Source::DatabaseUrl, None));
    }
    let cluster = Cluster::new(&project.local_dir())?;
    let port = cluster.ensure_running(ServerOptions::default())?;
    Ok(Target::new(
        cluster.url(port, DATABASE),
        Source::Local,
        None,
    ))
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
    Ok(Target::new(
        url,
        Source::Environment,
        Some((name.to_string(), env.clone())),
    ))
}
