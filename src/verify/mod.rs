//! What `migrate verify` reports (DESIGN §8): findings from the applied history, from rules
//! over the live catalog, and from the drift between the live catalog and `schema.lock`.

pub mod drift;
pub mod rules;

use serde::Serialize;

use crate::migrations::plan::{Entry, State};
use crate::migrations::short;

/// How serious a finding is: errors make `verify` exit 1, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Error,
    Warning,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
        }
    }
}

/// Stable rule names: Supabase's lint names (splinter) where one exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
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
    Drift,
}

impl Rule {
    /// Rules about the applied history and the files rather than the live catalog.
    pub fn is_history(self) -> bool {
        matches!(
            self,
            Rule::ChecksumMismatch | Rule::FileMissing | Rule::MigrationDirty | Rule::LockStale
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Rule::ChecksumMismatch => "checksum_mismatch",
            Rule::FileMissing => "file_missing",
            Rule::MigrationDirty => "migration_dirty",
            Rule::LockStale => "lock_stale",
            Rule::RlsDisabled => "rls_disabled",
            Rule::RlsEnabledNoPolicy => "rls_enabled_no_policy",
            Rule::RlsPolicyAlwaysTrue => "rls_policy_always_true",
            Rule::FunctionSearchPathMutable => "function_search_path_mutable",
            Rule::SecurityDefinerView => "security_definer_view",
            Rule::MaterializedViewInApi => "materialized_view_in_api",
            Rule::IndexMissing => "index_missing",
            Rule::IndexInvalid => "index_invalid",
            Rule::UnindexedForeignKeys => "unindexed_foreign_keys",
            Rule::NoPrimaryKey => "no_primary_key",
            Rule::DuplicateIndex => "duplicate_index",
            Rule::AuthRlsInitplan => "auth_rls_initplan",
            Rule::Drift => "drift",
        }
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
}

impl Finding {
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
pub fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        (a.level, &a.schema, &a.table, &a.object, a.rule, &a.message)
            .cmp(&(b.level, &b.schema, &b.table, &b.object, b.rule, &b.message))
    });
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
                        "applied migration {:04} was edited afterwards (recorded checksum {}, \
                         file {})",
                        e.version,
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
                        "migration {:04} failed part way outside a transaction",
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
                    None => format!("{dir}/{:04}_{}.sql", e.version, e.name()),
                },
                message,
                remedy,
            })
        })
        .collect()
}
