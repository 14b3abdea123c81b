//! `migrate.toml`: paths, managed schemas and named environments (DESIGN §7). Every key has a
//! default; unknown keys are errors that name the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::Error;

pub const FILE_NAME: &str = "migrate.toml";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub paths: Paths,
    #[serde(default)]
    pub schemas: Schemas,
    #[serde(default)]
    pub env: BTreeMap<String, Environment>,
    #[serde(default)]
    pub lint: Lint,
}

/// `[lint]`: the PostgreSQL version squawk's rules assume, and acknowledgements of findings
/// in migrations that can no longer change (already applied: editing them changes their
/// checksum).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Lint {
    /// e.g. "15" or "16.2"; default 15.
    pub pg_version: Option<String>,
    pub acknowledge: Vec<Acknowledgement>,
}

/// `[[lint.acknowledge]]`: every finding of `rule` in migration `version` is accepted, for
/// `reason`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acknowledgement {
    pub version: i64,
    pub rule: String,
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Paths {
    pub migrations: PathBuf,
    pub seeds: PathBuf,
    pub lock: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            migrations: "migrations".into(),
            seeds: "seeds".into(),
            lock: "schema.lock".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Schemas {
    pub managed: Vec<String>,
}

impl Default for Schemas {
    fn default() -> Self {
        Schemas {
            managed: ["coach", "wellness", "partner", "signify", "counsel"]
                .map(String::from)
                .to_vec(),
        }
    }
}

/// A named target such as staging or production. Its URL comes from the environment
/// variable `url_env`, never from this file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    pub url_env: String,
    #[serde(default)]
    pub protected: bool,
    pub lock_timeout: Option<String>,
    pub statement_timeout: Option<String>,
}

/// The project: where `migrate.toml` is (or the working directory), and what it says.
#[derive(Debug, Clone)]
pub struct Project {
    pub root: PathBuf,
    pub config: Config,
}

impl Project {
    /// Loads `explicit` if given, else the nearest `migrate.toml` in `cwd` or its parents,
    /// else the defaults rooted at `cwd`.
    pub fn load(explicit: Option<&Path>, cwd: &Path) -> Result<Project, Error> {
        let path = match explicit {
            Some(p) => Some(cwd.join(p)),
            None => cwd
                .ancestors()
                .map(|d| d.join(FILE_NAME))
                .find(|p| p.is_file()),
        };
        let Some(path) = path else {
            return Ok(Project {
                root: cwd.to_path_buf(),
                config: Config::default(),
            });
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::input(format!("cannot read {}: {e}", path.display())))?;
        let config = parse(&text).map_err(|e| Error::input(format!("{}: {e}", path.display())))?;
        let root = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| cwd.to_path_buf());
        Ok(Project { root, config })
    }

    pub fn migrations_dir(&self) -> PathBuf {
        self.root.join(&self.config.paths.migrations)
    }

    pub fn seeds_dir(&self) -> PathBuf {
        self.root.join(&self.config.paths.seeds)
    }

    pub fn lock_path(&self) -> PathBuf {
        self.root.join(&self.config.paths.lock)
    }

    /// The local cluster's home, git-ignored.
    pub fn local_dir(&self) -> PathBuf {
        self.root.join(".migrate")
    }

    pub fn managed_schemas(&self) -> &[String] {
        &self.config.schemas.managed
    }
}

/// Parses and validates the text of a `migrate.toml`.
pub fn parse(text: &str) -> Result<Config, String> {
    let config: Config = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
    for schema in &config.schemas.managed {
        if !is_identifier(schema) {
            return Err(format!(
                "[schemas] managed: `{schema}` is not a lowercase identifier ([a-z_][a-z0-9_]*)"
            ));
        }
    }
    for (name, env) in &config.env {
        for (key, value) in [
            ("lock_timeout", &env.lock_timeout),
            ("statement_timeout", &env.statement_timeout),
        ] {
            if let Some(value) = value {
                if !is_duration(value) {
                    return Err(format!(
                        "[env.{name}] {key} = \"{value}\" is not a duration such as \"500ms\", \"5s\", \"15min\", \"1h\""
                    ));
                }
            }
        }
        if env.url_env.is_empty() {
            return Err(format!(
                "[env.{name}] url_env must name an environment variable"
            ));
        }
    }
    Ok(config)
}

fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// PostgreSQL's time units for settings such as `lock_timeout`.
fn is_duration(s: &str) -> bool {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0
        && matches!(
            s[digits..].trim(),
            "" | "us" | "ms" | "s" | "min" | "h" | "d"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_a_file() {
        let c = parse("").unwrap();
        assert_eq!(c.paths.migrations, PathBuf::from("migrations"));
        assert_eq!(c.schemas.managed.len(), 5);
        assert!(c.env.is_empty());
    }

    #[test]
    fn full_file() {
        let c = parse(
            r#"
            [paths]
            migrations = "db/migrations"
            [schemas]
            managed = ["coach"]
            [env.production]
            url_env = "PRODUCTION_DATABASE_URL"
            protected = true
            lock_timeout = "5s"
            statement_timeout = "15min"
            "#,
        )
        .unwrap();
        let prod = &c.env["production"];
        assert!(prod.protected);
        assert_eq!(prod.lock_timeout.as_deref(), Some("5s"));
        assert_eq!(c.paths.seeds, PathBuf::from("seeds"));
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = parse("[paths]\nmigration = \"x\"\n").unwrap_err();
        assert!(e.contains("unknown field `migration`"), "{e}");
        let e = parse("[env.staging]\nurl_env = \"X\"\nurl = \"postgres://\"\n").unwrap_err();
        assert!(e.contains("unknown field `url`"), "{e}");
    }

    #[test]
    fn bad_values() {
        assert!(parse("[env.p]\nurl_env = \"X\"\nlock_timeout = \"soon\"\n")
            .unwrap_err()
            .contains("lock_timeout"));
        assert!(parse("[schemas]\nmanaged = [\"Bad-Name\"]\n")
            .unwrap_err()
            .contains("Bad-Name"));
    }
}
