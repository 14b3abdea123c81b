//! Reconciles migration files with the applied history, and plans `up` and `down`. Pure.

use serde::Serialize;

use super::{short, Listed, Migration};

/// A row of `_migrate.schema_migrations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppliedMigration {
    pub version: i64,
    pub name: String,
    pub checksum: String,
    /// RFC 3339, UTC.
    pub applied_at: String,
    pub applied_by: String,
    pub duration_ms: i64,
    pub tool_version: String,
    pub dirty: bool,
}

/// The highest applied version (rows come ordered by version), `None` on a fresh database.
pub fn head(applied: &[AppliedMigration]) -> Option<i64> {
    applied.last().map(|a| a.version)
}

/// How a migration stands against the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum State {
    Applied,
    Pending,
    /// Applied, but the file's checksum differs from the recorded one.
    Changed,
    /// Applied, but its file is gone.
    Missing,
    /// A migration that may have taken effect in part: a `transaction: none` one that failed
    /// part way, or one that ended its own transaction.
    Dirty,
}

impl State {
    /// The stable name, as JSON and the database write it.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// States that make `up` refuse to run.
    pub fn is_problem(self) -> bool {
        matches!(self, State::Changed | State::Missing | State::Dirty)
    }
}

/// What reconciling a migration file with the history needs of it: a parsed `Migration`,
/// or a `Listed` file `status` did not need to parse.
pub trait MigrationFile {
    fn version(&self) -> i64;
    fn name(&self) -> &str;
    /// Path as shown to the user.
    fn path(&self) -> &str;
    /// SHA-256 of the file (CRLF as LF), lowercase hex.
    fn checksum(&self) -> &str;
    /// The checksum of the file after its UTF-8 byte-order mark, when it starts with one.
    fn checksum_without_bom(&self) -> Option<&str>;
}

macro_rules! migration_file {
    ($($t:ty),*) => {$(
        impl MigrationFile for $t {
            fn version(&self) -> i64 {
                self.version
            }
            fn name(&self) -> &str {
                &self.name
            }
            fn path(&self) -> &str {
                &self.path
            }
            fn checksum(&self) -> &str {
                &self.checksum
            }
            fn checksum_without_bom(&self) -> Option<&str> {
                self.checksum_without_bom.as_deref()
            }
        }
    )*};
}
migration_file!(Migration, Listed);

/// One version, as the files and the database see it.
#[derive(Debug)]
pub struct Entry<'a, F = Migration> {
    pub version: i64,
    pub state: State,
    pub file: Option<&'a F>,
    pub applied: Option<&'a AppliedMigration>,
}

impl<F> Clone for Entry<'_, F> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<F> Copy for Entry<'_, F> {}

impl<'a, F: MigrationFile> Entry<'a, F> {
    pub fn name(&self) -> &'a str {
        match (self.file, self.applied) {
            (Some(f), _) => f.name(),
            (None, Some(a)) => &a.name,
            (None, None) => "",
        }
    }

    pub fn path(&self) -> String {
        match self.file {
            Some(f) => f.path().to_string(),
            None => super::file_name(self.version, self.name()),
        }
    }

    /// A changed file whose only change is a UTF-8 byte-order mark added in front: the
    /// recorded checksum is that of the file's bytes after the BOM.
    pub fn only_bom_added(&self) -> bool {
        self.state == State::Changed
            && match (
                self.file.and_then(|f| f.checksum_without_bom()),
                self.applied,
            ) {
                (Some(without), Some(applied)) => without == applied.checksum,
                _ => false,
            }
    }

    /// What is wrong with an applied migration, as one line with the way out.
    pub fn problem(&self) -> Option<String> {
        let path = self.path();
        match self.state {
            State::Changed if self.only_bom_added() => Some(format!(
                "{path} was changed after it was applied: only a byte-order mark was added \
                 (checksum {} recorded, {} on disk); save it as UTF-8 without a BOM, or \
                 accept it with `migrate repair {}`",
                short(self.applied.map_or("", |a| &a.checksum)),
                short(self.file.map_or("", |f| f.checksum())),
                self.version
            )),
            State::Changed => Some(format!(
                "{path} was edited after it was applied (checksum {} recorded, {} on disk); \
                 restore the file, or accept it with `migrate repair {}`",
                short(self.applied.map_or("", |a| &a.checksum)),
                short(self.file.map_or("", |f| f.checksum())),
                self.version
            )),
            State::Missing => Some(format!(
                "{path} is applied but its file is missing; restore the file from version control"
            )),
            State::Dirty => Some(format!(
                "{path} is marked dirty: part of it may have taken effect (it failed part way \
                 outside a transaction, or ended its own transaction); fix the database by \
                 hand, then `migrate repair {}`",
                self.version
            )),
            State::Applied | State::Pending => None,
        }
    }

    /// An applied migration whose file has been renamed since (same version and checksum,
    /// another name): not a problem for `up`, which does not apply it again, but the history
    /// names a file that is no longer there, so `status` says so.
    pub fn renamed(&self) -> Option<String> {
        let (Some(file), Some(applied)) = (self.file, self.applied) else {
            return None;
        };
        (self.state == State::Applied && file.name() != applied.name).then(|| {
            format!(
                "{} is applied under another name, {} (recorded in _migrate.schema_migrations; \
                 same version and checksum): the file was renamed after it was applied. `up` \
                 does not apply it again; rename it back to match the history, or keep the new \
                 name (the history keeps the old one)",
                file.path(),
                super::file_name(self.version, &applied.name)
            )
        })
    }
}

/// Merges files and applied rows by version, in version order.
pub fn reconcile<'a, F: MigrationFile>(
    files: &'a [F],
    applied: &'a [AppliedMigration],
) -> Vec<Entry<'a, F>> {
    let mut entries: Vec<Entry<'a, F>> = Vec::with_capacity(files.len().max(applied.len()));
    let (mut f, mut a) = (files.iter().peekable(), applied.iter().peekable());
    loop {
        let entry = match (f.peek(), a.peek()) {
            (None, None) => break,
            (Some(file), Some(row)) if file.version() == row.version => {
                let state = if row.dirty {
                    State::Dirty
                } else if row.checksum != file.checksum() {
                    State::Changed
                } else {
                    State::Applied
                };
                let e = Entry {
                    version: file.version(),
                    state,
                    file: Some(*file),
                    applied: Some(row),
                };
                f.next();
                a.next();
                e
            }
            (Some(file), row) if row.is_none_or(|r| file.version() < r.version) => {
                let e = Entry {
                    version: file.version(),
                    state: State::Pending,
                    file: Some(*file),
                    applied: None,
                };
                f.next();
                e
            }
            (_, Some(row)) => {
                let state = if row.dirty {
                    State::Dirty
                } else {
                    State::Missing
                };
                let e = Entry {
                    version: row.version,
                    state,
                    file: None,
                    applied: Some(row),
                };
                a.next();
                e
            }
            (Some(_), None) => unreachable!("handled by the pending arm"),
        };
        entries.push(entry);
    }
    entries
}

/// Why a plan may not run: one line per problem, each with its remedy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub Vec<String>);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("\n"))
    }
}

/// What `up` will apply.
#[derive(Debug)]
pub struct UpPlan<'a> {
    pub migrations: Vec<&'a Migration>,
    /// Versions applied below the highest applied one (with `--allow-out-of-order`).
    pub out_of_order: Vec<i64>,
}

pub fn plan_up<'a>(
    entries: &[Entry<'a>],
    to: Option<i64>,
    allow_out_of_order: bool,
) -> Result<UpPlan<'a>, Refusal> {
    let mut problems: Vec<String> = entries.iter().filter_map(|e| e.problem()).collect();
    let highest_applied = entries
        .iter()
        .filter(|e| e.applied.is_some())
        .map(|e| e.version)
        .max();
    let mut plan = UpPlan {
        migrations: Vec::new(),
        out_of_order: Vec::new(),
    };
    for entry in entries.iter().filter(|e| e.state == State::Pending) {
        if to.is_some_and(|to| entry.version > to) {
            continue;
        }
        let file = entry.file.expect("pending entries have a file");
        if highest_applied.is_some_and(|h| entry.version < h) {
            if allow_out_of_order {
                plan.out_of_order.push(entry.version);
            } else {
                problems.push(format!(
                    "{} is pending but version {} is already applied (merged out of order); \
                     renumber it above {}, or run with --allow-out-of-order",
                    file.path,
                    highest_applied.unwrap_or_default(),
                    highest_applied.unwrap_or_default()
                ));
            }
        }
        plan.migrations.push(file);
    }
    if problems.is_empty() {
        Ok(plan)
    } else {
        Err(Refusal(problems))
    }
}

/// How far `down` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownTarget {
    Steps(usize),
    /// Revert every applied migration above this version.
    To(i64),
    All,
}

/// What `down` will revert, newest first. Refused, changing nothing, when any of them has no
/// file, was edited, is dirty or is irreversible.
pub fn plan_down<'a>(
    entries: &[Entry<'a>],
    target: DownTarget,
) -> Result<Vec<&'a Migration>, Refusal> {
    let applied: Vec<&Entry<'a>> = entries
        .iter()
        .rev()
        .filter(|e| e.applied.is_some())
        .collect();
    let chosen: Vec<&Entry<'a>> = match target {
        DownTarget::Steps(n) => applied.into_iter().take(n).collect(),
        DownTarget::To(v) => applied.into_iter().filter(|e| e.version > v).collect(),
        DownTarget::All => applied,
    };
    let mut problems = Vec::new();
    let mut plan = Vec::new();
    for entry in chosen {
        if let Some(problem) = entry.problem() {
            problems.push(problem);
            continue;
        }
        let file = entry
            .file
            .expect("an applied entry without problems has its file");
        if !file.reversible() && problems.is_empty() {
            // Suggest a command only when it would revert something: what is newer than it.
            let way_out = if plan.is_empty() {
                "it is the newest applied migration, so nothing can be reverted (to undo it, \
                 write a new migration)"
                    .to_string()
            } else {
                format!(
                    "`migrate down --to {}` reverts only the {} newer one(s)",
                    file.version,
                    plan.len()
                )
            };
            problems.push(format!(
                "{} is irreversible (its DOWN section is empty); down stops before it: {way_out}",
                file.path
            ));
        }
        plan.push(file);
    }
    if problems.is_empty() {
        Ok(plan)
    } else {
        Err(Refusal(problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrations::Section;

    fn file(version: i64, checksum: &str) -> Migration {
        Migration {
            version,
            name: format!("coach_{version}"),
            domain: "coach".into(),
            path: format!("migrations/{version:04}_coach_{version}.sql"),
            checksum: checksum.into(),
            checksum_without_bom: None,
            up: Section {
                sql: "select 1;".into(),
                first_line: 2,
            },
            down: Section {
                sql: "select 2;".into(),
                first_line: 4,
            },
            transactional: true,
        }
    }

    fn row(version: i64, checksum: &str, dirty: bool) -> AppliedMigration {
        AppliedMigration {
            version,
            name: format!("coach_{version}"),
            checksum: checksum.into(),
            applied_at: String::new(),
            applied_by: String::new(),
            duration_ms: 0,
            tool_version: String::new(),
            dirty,
        }
    }

    fn states(entries: &[Entry]) -> Vec<(i64, State)> {
        entries.iter().map(|e| (e.version, e.state)).collect()
    }

    #[test]
    fn reconciles_every_state() {
        let files = vec![file(1, "a"), file(2, "b"), file(4, "d"), file(5, "e")];
        let applied = vec![
            row(1, "a", false),
            row(2, "x", false),
            row(3, "c", false),
            row(4, "d", true),
        ];
        let entries = reconcile(&files, &applied);
        assert_eq!(
            states(&entries),
            vec![
                (1, State::Applied),
                (2, State::Changed),
                (3, State::Missing),
                (4, State::Dirty),
                (5, State::Pending)
            ]
        );
    }

    /// Mutations these catch (cargo-mutants): a state's name changed, `is_problem` constant.
    #[test]
    fn states_are_named_as_json_shows_them_and_problems_are_what_up_refuses() {
        let files = vec![file(1, "a"), file(2, "b"), file(4, "d"), file(5, "e")];
        let applied = vec![
            row(1, "a", false),
            row(2, "x", false),
            row(3, "c", false),
            row(4, "d", true),
        ];
        for entry in reconcile(&files, &applied) {
            let json = serde_json::to_value(entry.state).unwrap();
            assert_eq!(json, entry.state.as_str(), "{entry:?}");
            let alone = [entry];
            let refused = plan_up(&alone, None, false).is_err();
            assert_eq!(entry.state.is_problem(), refused, "{entry:?}");
        }
    }

    /// Mutations this catches: `Entry::name` or `Entry::path` returning a constant, the
    /// refusal's lines not joined (its `Display`).
    #[test]
    fn problems_name_the_file_or_the_file_that_is_gone() {
        let files = vec![file(1, "a"), file(2, "b")];
        let applied = vec![row(1, "z", false), row(3, "c", false)];
        let entries = reconcile(&files, &applied);
        assert_eq!(entries[0].name(), "coach_1");
        assert_eq!(entries[2].name(), "coach_3");
        assert_eq!(entries[0].path(), "migrations/0001_coach_1.sql");
        assert_eq!(entries[2].path(), "0003_coach_3.sql");
        let refusal = plan_up(&entries, None, false).unwrap_err();
        // One line per problem, in order.
        let lines: Vec<String> = refusal.to_string().lines().map(String::from).collect();
        assert_eq!(lines, refusal.0);
        assert!(refusal.0[0].starts_with("migrations/0001_coach_1.sql was edited"));
        assert!(refusal.0[1].starts_with("0003_coach_3.sql is applied but its file is missing"));
    }

    /// Mutation this catches: `--to V` leaving V itself out (`>` made `>=`).
    #[test]
    fn up_to_includes_its_version() {
        let files = vec![file(1, "a"), file(2, "b"), file(3, "c")];
        let entries = reconcile(&files, &[]);
        let plan = plan_up(&entries, Some(2), false).unwrap();
        let versions: Vec<i64> = plan.migrations.iter().map(|m| m.version).collect();
        assert_eq!(versions, vec![1, 2]);
    }

    #[test]
    fn up_refuses_on_problems_and_lists_them_all() {
        let files = vec![file(1, "a"), file(2, "b"), file(5, "e")];
        let applied = vec![row(1, "z", false), row(3, "c", false)];
        let entries = reconcile(&files, &applied);
        let refusal = plan_up(&entries, None, false).unwrap_err();
        assert_eq!(refusal.0.len(), 3, "{refusal}");
        assert!(refusal.0[0].contains("edited after it was applied"));
        assert!(refusal.0[1].contains("file is missing"));
        assert!(refusal.0[2].contains("merged out of order"));
    }

    #[test]
    fn up_to_and_out_of_order() {
        let files = vec![file(1, "a"), file(2, "b"), file(3, "c"), file(4, "d")];
        let applied = vec![row(1, "a", false), row(3, "c", false)];
        let entries = reconcile(&files, &applied);
        let plan = plan_up(&entries, Some(3), true).unwrap();
        assert_eq!(
            plan.migrations
                .iter()
                .map(|m| m.version)
                .collect::<Vec<_>>(),
            vec![2]
        );
        assert_eq!(plan.out_of_order, vec![2]);
        let plan = plan_up(&entries, None, true).unwrap();
        assert_eq!(
            plan.migrations
                .iter()
                .map(|m| m.version)
                .collect::<Vec<_>>(),
            vec![2, 4]
        );
    }

    #[test]
    fn down_targets() {
        let files = vec![file(1, "a"), file(2, "b"), file(3, "c"), file(4, "d")];
        let applied = vec![row(1, "a", false), row(2, "b", false), row(3, "c", false)];
        let entries = reconcile(&files, &applied);
        let versions = |t| {
            plan_down(&entries, t)
                .unwrap()
                .iter()
                .map(|m| m.version)
                .collect::<Vec<_>>()
        };
        assert_eq!(versions(DownTarget::Steps(1)), vec![3]);
        assert_eq!(versions(DownTarget::Steps(9)), vec![3, 2, 1]);
        assert_eq!(versions(DownTarget::To(1)), vec![3, 2]);
        assert_eq!(versions(DownTarget::All), vec![3, 2, 1]);
    }

    #[test]
    fn down_refuses_irreversible() {
        let mut irreversible = file(2, "b");
        irreversible.down.sql = "-- no way back\n".into();
        let files = vec![file(1, "a"), irreversible, file(3, "c")];
        let applied = vec![row(1, "a", false), row(2, "b", false), row(3, "c", false)];
        let entries = reconcile(&files, &applied);
        let refusal = plan_down(&entries, DownTarget::All).unwrap_err();
        assert!(refusal.0[0].contains("irreversible"), "{refusal}");
        assert!(refusal.0[0].contains("`migrate down --to 2`"), "{refusal}");
        assert!(plan_down(&entries, DownTarget::Steps(1)).is_ok());
        // The irreversible one is the head: no command would help, so none is suggested.
        let entries = reconcile(&files[..2], &applied[..2]);
        let refusal = plan_down(&entries, DownTarget::Steps(1)).unwrap_err();
        assert!(!refusal.0[0].contains("--to"), "{refusal}");
        assert!(
            refusal.0[0].contains("nothing can be reverted"),
            "{refusal}"
        );
    }
}
