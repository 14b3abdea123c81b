//! `migrate.toml`: paths, managed schemas and named environments (DESIGN §7). Every key has a
//! default; unknown keys are errors that name the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::Error;
use crate::verify::{Level, Rule};

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
    /// Settings every migration starts with, e.g. `search_path = "public, extensions"`:
    /// applied with `set_config(name, value, true)` (`SET LOCAL`) inside each migration's
    /// transaction, or for the session around a `transaction: none` migration.
    #[serde(default)]
    pub session: BTreeMap<String, String>,
    #[serde(default)]
    pub lock: Lock,
    #[serde(default)]
    pub verify: VerifyConfig,
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
    pub acknowledge: Vec<LintAcknowledgement>,
}

/// `[[lint.acknowledge]]`: every finding of `rule` in migration `version` is accepted, for
/// `reason`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LintAcknowledgement {
    pub version: i64,
    pub rule: String,
    pub reason: String,
}

/// `[lock]`: how `migrate lock` prepares its scratch database.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Lock {
    /// SQL files (relative to the project) run in order on the scratch database before the
    /// migrations, e.g. to give it Supabase's `auth` and `extensions` schemas.
    pub prelude: Vec<PathBuf>,
}

/// `[verify]`: levels per rule, and findings the project accepts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerifyConfig {
    /// `[verify.levels]`: rule name → `error`, `warning` or `info`.
    pub levels: BTreeMap<String, Level>,
    /// `[[verify.acknowledge]]`: one finding of one rule on one object, with the reason.
    pub acknowledge: Vec<Acknowledgement>,
}

/// A finding the project accepts: shown as acknowledged, it does not fail `verify`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acknowledgement {
    /// The rule name, e.g. `multiple_permissive_policies`.
    pub rule: String,
    /// The object as verify names it: `schema.table.object`, e.g. `signify.notes` or
    /// `signify.increment_xp(uuid, integer)`.
    pub object: String,
    /// Why it is accepted; recorded and shown with the finding.
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
    /// Settings for this environment's migrations, over the top-level `[session]`.
    #[serde(default)]
    pub session: BTreeMap<String, String>,
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

    /// The `[lock] prelude` files: each as shown in messages, and its SQL. An unreadable file
    /// is a configuration error naming the key.
    pub fn lock_prelude(&self) -> Result<Vec<(String, String)>, Error> {
        self.config
            .lock
            .prelude
            .iter()
            .map(|file| {
                let shown = file.display().to_string();
                std::fs::read_to_string(self.root.join(file))
                    .map(|sql| (shown.clone(), sql))
                    .map_err(|e| {
                        Error::input(format!(
                            "{FILE_NAME}: [lock] prelude names {shown}, which cannot be read: {e}"
                        ))
                    })
            })
            .collect()
    }

    pub fn managed_schemas(&self) -> &[String] {
        &self.config.schemas.managed
    }
}

/// Why a `migrate.toml` is not valid; the key is named, its value only where it is no secret
/// (URLs are never in this file).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}", .0.to_string().trim_end())]
    Toml(#[from] toml::de::Error),
    #[error("[schemas] managed: `{0}` is not a lowercase identifier ([a-z_][a-z0-9_]*)")]
    Schema(String),
    #[error(
        "{table} `{name}` is not a PostgreSQL setting name (letters, digits, `_`, and `.` for a \
         custom setting such as app.tenant)"
    )]
    SettingName { table: String, name: String },
    #[error(
        "{table} `{name}` cannot be set for migrations: they run as the connecting role (set \
         the role in the database URL instead)"
    )]
    SettingReserved { table: String, name: String },
    #[error(
        "{table} `{name}` cannot be set for migrations: it belongs to each transaction, and \
         settings are applied inside the migration's transaction after it began; a migration \
         that needs it starts with `SET TRANSACTION ...`"
    )]
    SettingTransaction { table: String, name: String },
    #[error(
        "{table} `{name}` cannot be set for migrations: `migrate.*` settings are migrate's own \
         (they mark the transaction it runs a migration in); choose another prefix, e.g. app."
    )]
    SettingOwn { table: String, name: String },
    #[error(
        "{table} `{name}` cannot be set for migrations: migrate sends the files as UTF-8 and \
         reads the server's messages so; another encoding would store text wrongly"
    )]
    SettingEncoding { table: String, name: String },
    #[error(
        "{table} `{name}` cannot be set for migrations: migrate keeps it at `notice` so that the \
         server's warnings reach it (it filters them itself)"
    )]
    SettingMessages { table: String, name: String },
    #[error(
        "{table} `{name}` cannot name `_migrate`: it is migrate's own state, which migrations \
         do not change (see \"Migrations do not change `_migrate`\" in the README)"
    )]
    SettingState { table: String, name: String },
    #[error(
        "{table} `{name}` cannot be set for migrations: migrate splits migration files into \
         statements as PostgreSQL does with its default, so another value would let a string \
         end a statement where migrate does not see one"
    )]
    SettingStringSyntax { table: String, name: String },
    #[error("{table} `{name}` holds a NUL character")]
    SettingNul { table: String, name: String },
    #[error(
        "{table} sets one setting twice, as `{first}` and `{second}`: PostgreSQL's setting \
         names ignore case; keep one"
    )]
    SettingTwice {
        table: String,
        first: String,
        second: String,
    },
    #[error(
        "[env.{env}] {key} = \"{value}\" is not a duration such as \"500ms\", \"5s\", \"15min\", \"1h\""
    )]
    Duration {
        env: String,
        key: &'static str,
        value: String,
    },
    #[error(
        "[env.{env}] {key} = \"{value}\" is out of range: PostgreSQL takes at most \
         {MAX_TIMEOUT_MS}ms (about 24 days); use \"0\" for no limit"
    )]
    DurationRange {
        env: String,
        key: &'static str,
        value: String,
    },
    #[error("[env.{0}] url_env must name an environment variable")]
    UrlEnv(String),
    #[error(
        "{key}: `{name}` is not a verify rule (rules: {})",
        Rule::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
    )]
    UnknownRule { key: String, name: String },
    #[error(
        "{key}: `{name}` is about the applied history and cannot be lowered or acknowledged; \
         restore the file or run `migrate repair`"
    )]
    HistoryRule { key: String, name: String },
    #[error("{0} object: name the object as verify shows it, e.g. \"signify.notes\"")]
    AcknowledgeObject(String),
    #[error("{0} reason: say why the finding is accepted (it is shown with the finding)")]
    AcknowledgeReason(String),
    #[error("{key}: {rule} on {object} is acknowledged twice")]
    AcknowledgedTwice {
        key: String,
        rule: String,
        object: String,
    },
}

/// Parses and validates the text of a `migrate.toml`.
pub fn parse(text: &str) -> Result<Config, ConfigError> {
    let config: Config = toml::from_str(text)?;
    for schema in &config.schemas.managed {
        if !is_identifier(schema) {
            return Err(ConfigError::Schema(schema.clone()));
        }
    }
    check_session("[session]", &config.session)?;
    for (name, env) in &config.env {
        check_session(&format!("[env.{name}.session]"), &env.session)?;
        for (key, value) in [
            ("lock_timeout", &env.lock_timeout),
            ("statement_timeout", &env.statement_timeout),
        ] {
            if let Some(value) = value {
                let (env, value) = (name.clone(), value.clone());
                match duration_ms(&value) {
                    None => return Err(ConfigError::Duration { env, key, value }),
                    Some(ms) if ms > MAX_TIMEOUT_MS => {
                        return Err(ConfigError::DurationRange { env, key, value })
                    }
                    Some(_) => {}
                }
            }
        }
        if env.url_env.is_empty() {
            return Err(ConfigError::UrlEnv(name.clone()));
        }
    }
    check_verify(&config.verify)?;
    Ok(config)
}

/// A `[session]` table names PostgreSQL settings (`search_path`, `work_mem`, or a dotted
/// custom one such as `app.tenant`); the server judges the values when a migration starts.
/// Names that differ only in ASCII case are one setting (`guc_name_compare`): a table that
/// holds two of them is refused, since which value wins would be an accident of order.
fn check_session(table: &str, settings: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    let mut seen: BTreeMap<String, &String> = BTreeMap::new();
    for name in settings.keys() {
        if let Some(first) = seen.insert(name.to_ascii_lowercase(), name) {
            return Err(ConfigError::SettingTwice {
                table: table.to_string(),
                first: first.clone(),
                second: name.clone(),
            });
        }
    }
    for (name, value) in settings {
        let (table, name) = (table.to_string(), name.clone());
        let valid = !name.is_empty()
            && name.split('.').all(|part| {
                let mut bytes = part.bytes();
                bytes
                    .next()
                    .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                    && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
            });
        if !valid {
            return Err(ConfigError::SettingName { table, name });
        }
        let lower = name.to_ascii_lowercase();
        if ["role", "session_authorization"].contains(&lower.as_str()) {
            return Err(ConfigError::SettingReserved { table, name });
        }
        if [
            "transaction_isolation",
            "transaction_read_only",
            "transaction_deferrable",
        ]
        .contains(&lower.as_str())
        {
            return Err(ConfigError::SettingTransaction { table, name });
        }
        if lower.starts_with("migrate.") {
            return Err(ConfigError::SettingOwn { table, name });
        }
        if lower == "client_encoding" {
            return Err(ConfigError::SettingEncoding { table, name });
        }
        if lower == "client_min_messages" {
            return Err(ConfigError::SettingMessages { table, name });
        }
        let names_state = |item: &str| {
            let item = item.trim();
            match item.strip_prefix('"').and_then(|i| i.strip_suffix('"')) {
                Some(quoted) => quoted == "_migrate",
                None => item.eq_ignore_ascii_case("_migrate"),
            }
        };
        if lower == "search_path" && value.split(',').any(names_state) {
            return Err(ConfigError::SettingState { table, name });
        }
        if ["standard_conforming_strings", "backslash_quote"].contains(&lower.as_str()) {
            return Err(ConfigError::SettingStringSyntax { table, name });
        }
        if value.contains('\0') {
            return Err(ConfigError::SettingNul { table, name });
        }
    }
    Ok(())
}

/// Rules and acknowledgements must name rules verify has; the applied history's rules
/// (edited, missing or dirty migrations) are not for lowering: `migrate repair` settles them.
fn check_verify(verify: &VerifyConfig) -> Result<(), ConfigError> {
    let rule = |key: &str, name: &str| -> Result<(), ConfigError> {
        let (key, name) = (key.to_string(), name.to_string());
        match Rule::from_name(&name) {
            None => Err(ConfigError::UnknownRule { key, name }),
            Some(r) if r.is_history() && r != Rule::LockStale => {
                Err(ConfigError::HistoryRule { key, name })
            }
            Some(_) => Ok(()),
        }
    };
    for name in verify.levels.keys() {
        rule(&format!("[verify.levels] {name}"), name)?;
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, ack) in verify.acknowledge.iter().enumerate() {
        let key = format!("[[verify.acknowledge]] #{}", i + 1);
        rule(&format!("{key} rule"), &ack.rule)?;
        if ack.object.trim().is_empty() {
            return Err(ConfigError::AcknowledgeObject(key));
        }
        if ack.reason.trim().is_empty() {
            return Err(ConfigError::AcknowledgeReason(key));
        }
        if !seen.insert((ack.rule.as_str(), ack.object.as_str())) {
            return Err(ConfigError::AcknowledgedTwice {
                key,
                rule: ack.rule.clone(),
                object: ack.object.clone(),
            });
        }
    }
    Ok(())
}

fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The largest `lock_timeout` / `statement_timeout` PostgreSQL accepts: an int of ms.
const MAX_TIMEOUT_MS: u128 = i32::MAX as u128;

/// A duration in PostgreSQL's time units for settings such as `lock_timeout`, in
/// milliseconds (a number too long to hold counts as out of range); None when it is not one.
fn duration_ms(s: &str) -> Option<u128> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let per_unit: u128 = match s[digits..].trim() {
        "us" => 0,
        "" | "ms" => 1,
        "s" => 1_000,
        "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    let n: u128 = s[..digits].parse().unwrap_or(u128::MAX);
    Some(if per_unit == 0 {
        n / 1000
    } else {
        n.saturating_mul(per_unit)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_named_twice_in_two_cases_is_refused() {
        let e = parse("[session]\nwork_mem = \"4MB\"\nWORK_MEM = \"8MB\"\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "[session] sets one setting twice, as `WORK_MEM` and `work_mem`: PostgreSQL's \
             setting names ignore case; keep one"
        );
        let e = parse(
            "[env.ci]\nurl_env = \"CI_URL\"\n[env.ci.session]\n\"App.Tenant\" = \"a\"\n\"app.tenant\" = \"b\"\n",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("[env.ci.session] sets one setting twice"),
            "{e}"
        );
        parse("[session]\nwork_mem = \"4MB\"\n[env.ci]\nurl_env = \"X\"\n[env.ci.session]\nWORK_MEM = \"8MB\"\n")
            .unwrap();
    }

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
        let e = parse("[paths]\nmigration = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `migration`"), "{e}");
        let e = parse("[env.staging]\nurl_env = \"X\"\nurl = \"postgres://\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `url`"), "{e}");
    }

    #[test]
    fn verify_levels_and_acknowledgements() {
        let c = parse(
            r#"
            [verify.levels]
            unindexed_foreign_keys = "error"
            multiple_permissive_policies = "info"
            [[verify.acknowledge]]
            rule = "authenticated_security_definer_function_executable"
            object = "signify.increment_xp(uuid, integer)"
            reason = "the app's XP endpoint"
            "#,
        )
        .unwrap();
        assert_eq!(c.verify.levels["unindexed_foreign_keys"], Level::Error);
        assert_eq!(c.verify.acknowledge[0].reason, "the app's XP endpoint");

        let e = parse("[verify.levels]\nunindexed_foreign_key = \"info\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("[verify.levels] unindexed_foreign_key: `unindexed_foreign_key` is not a verify rule"),
            "{e}"
        );
        let e = parse("[verify.levels]\nno_primary_key = \"fatal\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown variant `fatal`"), "{e}");
        let e = parse("[verify.levels]\nchecksum_mismatch = \"info\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("migrate repair"), "{e}");
        let ack = |rule: &str, object: &str, reason: &str| {
            format!(
                "[[verify.acknowledge]]\nrule = \"{rule}\"\nobject = \"{object}\"\nreason = \"{reason}\"\n"
            )
        };
        let e = parse(&ack("no_such_rule", "a.b", "r"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("[[verify.acknowledge]] #1 rule:"), "{e}");
        let e = parse(&ack("no_primary_key", "a.b", " "))
            .unwrap_err()
            .to_string();
        assert!(e.contains("reason"), "{e}");
        let twice = ack("no_primary_key", "a.b", "r").repeat(2);
        assert!(parse(&twice)
            .unwrap_err()
            .to_string()
            .contains("acknowledged twice"));
        let e = parse("[[verify.acknowledge]]\nrule = \"no_primary_key\"\nobject = \"a\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `reason`"), "{e}");
    }

    #[test]
    fn bad_values() {
        assert!(parse("[env.p]\nurl_env = \"X\"\nlock_timeout = \"soon\"\n")
            .unwrap_err()
            .to_string()
            .contains("lock_timeout"));
        let e = parse("[env.p]\nurl_env = \"X\"\nlock_timeout = \"99999999999999999999s\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[env.p] lock_timeout") && e.contains("out of range"),
            "{e}"
        );
        assert!(parse("[env.p]\nurl_env = \"X\"\nstatement_timeout = \"25d\"\n").is_err());
        assert!(parse("[env.p]\nurl_env = \"X\"\nstatement_timeout = \"24d\"\n").is_ok());
        assert!(parse("[schemas]\nmanaged = [\"Bad-Name\"]\n")
            .unwrap_err()
            .to_string()
            .contains("Bad-Name"));
    }
}
