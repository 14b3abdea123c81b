//! What `migrate verify` reports (DESIGN §8): findings from the applied history, from rules
//! over the live catalog, and from the drift between the live catalog and `schema.lock`.

pub mod drift;
pub mod inspect;
pub mod rules;

use serde::{Deserialize, Serialize};

use crate::config::VerifyConfig;
use crate::migrations::plan::{Entry, State};
use crate::migrations::{file_name, short};

/// How serious a finding is: errors make `verify` exit 1, warnings and info do not.
/// `migrate.toml` may set a rule's level (`[verify.levels]`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, strum::IntoStaticStr,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Error,
    Warning,
    /// Worth knowing, nothing to fix by default (splinter's INFO).
    Info,
}

impl Level {
    /// The stable name, as JSON and the database write it.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Stable rule names: Supabase's lint names (splinter) where one exists.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Rule {
    ChecksumMismatch,
    FileMissing,
    MigrationDirty,
    LockStale,
    RlsDisabled,
    RlsEnabledNoPolicy,
    RlsPolicyAlwaysTrue,
    FunctionSearchPathMutable,
    SecurityDefinerView,
    MaterializedViewInApi,
    IndexMissing,
    IndexInvalid,
    UnindexedForeignKeys,
    NoPrimaryKey,
    DuplicateIndex,
    AuthRlsInitplan,
    MultiplePermissivePolicies,
    AnonSecurityDefinerFunctionExecutable,
    AuthenticatedSecurityDefinerFunctionExecutable,
    Drift,
}

impl Rule {
    /// Every rule, in report order.
    pub const ALL: &'static [Rule] = <Rule as strum::VariantArray>::VARIANTS;

    /// The rule with this stable name.
    pub fn from_name(name: &str) -> Option<Rule> {
        name.parse().ok()
    }

    /// Rules about the applied history and the files rather than the live catalog.
    pub fn is_history(self) -> bool {
        matches!(
            self,
            Rule::ChecksumMismatch | Rule::FileMissing | Rule::MigrationDirty | Rule::LockStale
        )
    }

    /// The stable name (Supabase's splinter name where one exists).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One thing `verify` found, with where it is and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: Rule,
    pub level: Level,
    /// None for findings about migration files.
    pub schema: Option<String>,
    /// The table (or view) the object belongs to, when it belongs to one.
    pub table: Option<String>,
    /// The object: a table, column, index, policy, trigger or function name, or a file.
    pub object: String,
    pub message: String,
    /// One line: what to do.
    pub remedy: String,
    /// The reason `migrate.toml` gives for accepting this finding (`[[verify.acknowledge]]`):
    /// it is shown but does not fail the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<String>,
}

impl Finding {
    /// Whether the finding fails the run: an error nobody acknowledged.
    pub fn fails(&self) -> bool {
        self.level == Level::Error && self.acknowledged.is_none()
    }

    /// `schema.table.object`, skipping the parts that are absent or repeated.
    pub fn location(&self) -> String {
        let mut parts: Vec<&str> = Vec::new();
        if let Some(schema) = &self.schema {
            parts.push(schema);
        }
        if let Some(table) = &self.table {
            parts.push(table);
        }
        if self.table.as_deref() != Some(self.object.as_str()) {
            parts.push(&self.object);
        }
        parts.join(".")
    }
}

/// Errors first, then by place, then by rule: the order the report lists them in.
/// Acknowledged findings come after the rest.
pub fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        let key = |f: &Finding| {
            (
                f.acknowledged.is_some(),
                f.level,
                f.schema.clone(),
                f.table.clone(),
                f.object.clone(),
                f.rule,
                f.message.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
}

/// An acknowledgement in `migrate.toml` that matched no finding (the object was fixed or
/// renamed): it should be removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnmatchedAcknowledgement {
    pub rule: String,
    pub object: String,
}

/// Applies `migrate.toml`'s `[verify]` settings: each configured rule's level, then the
/// acknowledgements (a rule on an object, as `Finding::location` names it). Returns the
/// acknowledgements that matched nothing.
pub fn triage(findings: &mut [Finding], config: &VerifyConfig) -> Vec<UnmatchedAcknowledgement> {
    for finding in findings.iter_mut() {
        if let Some(level) = config.levels.get(finding.rule.as_str()) {
            finding.level = *level;
        }
    }
    let mut unmatched = Vec::new();
    for ack in &config.acknowledge {
        let mut matched = false;
        for finding in findings
            .iter_mut()
            .filter(|f| f.rule.as_str() == ack.rule && f.location() == ack.object)
        {
            finding.acknowledged = Some(ack.reason.clone());
            matched = true;
        }
        if !matched {
            unmatched.push(UnmatchedAcknowledgement {
                rule: ack.rule.clone(),
                object: ack.object.clone(),
            });
        }
    }
    unmatched
}

/// Applied migrations whose file changed, is missing, or failed part way (Flyway's `validate`);
/// `dir` is how the migrations directory is shown (for missing files).
pub fn history(entries: &[Entry], dir: &str) -> Vec<Finding> {
    entries
        .iter()
        .filter_map(|e| {
            let (rule, message, remedy) = match e.state {
                State::Changed => (
                    Rule::ChecksumMismatch,
                    format!(
                        "applied migration {:04} was {} (recorded checksum {}, file {})",
                        e.version,
                        if e.only_bom_added() {
                            "changed afterwards: only a byte-order mark was added"
                        } else {
                            "edited afterwards"
                        },
                        short(e.applied.map_or("", |a| &a.checksum)),
                        short(e.file.map_or("", |f| &f.checksum)),
                    ),
                    format!(
                        "restore the file from version control, or accept it with `migrate \
                         repair {}`",
                        e.version
                    ),
                ),
                State::Missing => (
                    Rule::FileMissing,
                    format!("applied migration {:04} has no file", e.version),
                    "restore the file from version control".to_string(),
                ),
                State::Dirty => (
                    Rule::MigrationDirty,
                    format!(
                        "migration {:04} is marked dirty: it failed part way (outside a transaction, or after ending its own transaction)",
                        e.version
                    ),
                    format!(
                        "fix the database by hand, then `migrate repair {}`",
                        e.version
                    ),
                ),
                State::Applied | State::Pending => return None,
            };
            Some(Finding {
                rule,
                level: Level::Error,
                schema: None,
                table: None,
                object: match e.file {
                    Some(f) => f.path.clone(),
                    None => format!("{dir}/{}", file_name(e.version, e.name())),
                },
                message,
                remedy,
                acknowledged: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_one_name_that_finds_it() {
        let mut names: Vec<&str> = Rule::ALL.iter().map(|r| r.as_str()).collect();
        for &rule in Rule::ALL {
            assert_eq!(Rule::from_name(rule.as_str()), Some(rule));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Rule::ALL.len());
        assert_eq!(Rule::from_name("unindexed_foreign_key"), None);
    }

    #[test]
    fn acknowledgements_match_rule_and_location() {
        let finding = |rule: Rule, table: Option<&str>, object: &str| Finding {
            rule,
            level: Level::Error,
            schema: Some("signify".into()),
            table: table.map(String::from),
            object: object.into(),
            message: String::new(),
            remedy: String::new(),
            acknowledged: None,
        };
        let mut findings = vec![
            finding(Rule::MultiplePermissivePolicies, Some("notes"), "notes"),
            finding(Rule::MultiplePermissivePolicies, Some("notes"), "notes"),
            finding(Rule::RlsDisabled, Some("notes"), "notes"),
            finding(Rule::AnonSecurityDefinerFunctionExecutable, None, "f(uuid)"),
        ];
        let config: VerifyConfig = toml::from_str(
            r#"
            levels = { rls_disabled = "warning" }
            [[acknowledge]]
            rule = "multiple_permissive_policies"
            object = "signify.notes"
            reason = "later"
            [[acknowledge]]
            rule = "anon_security_definer_function_executable"
            object = "signify.f()"
            reason = "wrong arguments"
            "#,
        )
        .unwrap();
        let unmatched = triage(&mut findings, &config);
        assert_eq!(findings[0].acknowledged.as_deref(), Some("later"));
        assert_eq!(findings[1].acknowledged.as_deref(), Some("later"));
        assert_eq!(findings[2].level, Level::Warning);
        assert!(!findings[2].fails());
        assert!(findings[3].fails());
        assert_eq!(unmatched.len(), 1);
        assert_eq!(unmatched[0].object, "signify.f()");
    }
}
