//! Offline lint of migration files: squawk's rules (through the `squawk-linter` library, on
//! squawk's own parser) plus our row-level-security rules, with `-- squawk-ignore <rule>`
//! acknowledgements in the file and, for files already applied, in `migrate.toml`. Pure: no
//! database, no printing.

mod ignore;
mod rules;

use std::collections::BTreeSet;
use std::str::FromStr;

use serde::Serialize;
use squawk_linter::{Linter, Rule as SquawkRule, Version};
use squawk_syntax::{Parse, SourceFile, SyntaxNode};

use crate::config::{Config, Environment};
use crate::error::Error;
use crate::migrations::lexer::LineIndex;
use crate::migrations::Migration;
pub use crate::verify::Level;
use ignore::Ignores;
pub use rules::OWN_RULES;

/// The PostgreSQL version squawk assumes when `migrate.toml` names none.
pub const DEFAULT_PG_VERSION: &str = "15";

/// The rule name of a finding about an acknowledgement that acknowledges nothing.
pub const UNUSED_IGNORE: &str = "unused-ignore";

/// The rule name of a statement squawk's parser does not understand.
pub const SYNTAX_ERROR: &str = "syntax-error";

/// One finding, at a line of a migration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub file: String,
    pub version: i64,
    pub line: usize,
    pub column: usize,
    /// A stable kebab-case name: squawk's for its rules, ours for the rest.
    pub rule: String,
    pub level: Level,
    pub message: String,
    /// One line on what to do.
    pub remedy: String,
    /// `squawk` or `migrate`.
    pub source: &'static str,
}

/// A finding that an acknowledgement covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Acknowledged {
    pub finding: Finding,
    /// `file` (a `-- squawk-ignore` comment) or `migrate.toml`.
    pub by: &'static str,
    /// The reason given in `migrate.toml`, or after the rule in the comment.
    pub reason: Option<String>,
}

/// What linting a set of migrations found.
#[derive(Debug, Default, Serialize)]
pub struct Outcome {
    pub findings: Vec<Finding>,
    pub acknowledged: Vec<Acknowledged>,
}

impl Outcome {
    /// Unacknowledged error-level findings: what makes `lint` and `check` exit 1.
    pub fn errors(&self) -> usize {
        self.errors_found().count()
    }

    /// The unacknowledged error-level findings: what blocks a promotion.
    pub fn errors_found(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.level == Level::Error)
    }
}

/// How the files are linted: PostgreSQL version, which timeouts the runner sets, the
/// managed schemas, and the acknowledgements kept in `migrate.toml`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub pg_version: String,
    version: Version,
    /// `lock_timeout` / `statement_timeout` the runner sets before every migration, so
    /// squawk's `require-lock-timeout` / `require-statement-timeout` are satisfied.
    pub runner_sets: Vec<&'static str>,
    pub managed: Vec<String>,
    acknowledge: Vec<crate::config::LintAcknowledgement>,
}

impl Settings {
    /// From `migrate.toml`. `environments` are the environments the migrations will run in:
    /// a timeout counts as set by the runner only when every one of them configures it.
    pub fn new(config: &Config, environments: &[&Environment]) -> Result<Settings, Error> {
        let pg_version = config
            .lint
            .pg_version
            .clone()
            .unwrap_or_else(|| DEFAULT_PG_VERSION.to_string());
        let version = Version::from_str(&pg_version).map_err(|e| {
            Error::input(format!(
                "migrate.toml: [lint] pg_version = \"{pg_version}\" is not a PostgreSQL version \
                 such as \"15\" or \"16.2\" ({e})"
            ))
        })?;
        for ack in &config.lint.acknowledge {
            if !is_known_rule(&ack.rule) {
                return Err(Error::input(format!(
                    "migrate.toml: [[lint.acknowledge]] version {} names rule `{}`, which is \
                     neither squawk's nor migrate's; see `migrate lint --help` and the README",
                    ack.version, ack.rule
                )));
            }
            if ack.reason.trim().is_empty() {
                return Err(Error::input(format!(
                    "migrate.toml: [[lint.acknowledge]] version {} rule `{}` needs a reason",
                    ack.version, ack.rule
                )));
            }
        }
        let mut runner_sets = Vec::new();
        if !environments.is_empty() {
            if environments.iter().all(|e| e.lock_timeout.is_some()) {
                runner_sets.push("lock_timeout");
            }
            if environments.iter().all(|e| e.statement_timeout.is_some()) {
                runner_sets.push("statement_timeout");
            }
        }
        Ok(Settings {
            pg_version,
            version,
            runner_sets,
            managed: config.schemas.managed.clone(),
            acknowledge: config.lint.acknowledge.clone(),
        })
    }

    fn squawk_linter(&self, transactional: bool) -> Linter {
        let mut exclude = Vec::new();
        if self.runner_sets.contains(&"lock_timeout") {
            exclude.push(SquawkRule::RequireLockTimeout);
        }
        if self.runner_sets.contains(&"statement_timeout") {
            exclude.push(SquawkRule::RequireStatementTimeout);
        }
        let mut linter = Linter::with_rules(&[], &exclude);
        linter.settings.pg_version = self.version;
        linter.settings.assume_in_transaction = transactional;
        linter
    }
}

/// Whether `name` is a rule squawk or migrate knows (or one of the two special ones).
pub fn is_known_rule(name: &str) -> bool {
    SquawkRule::from_str(name).is_ok()
        || OWN_RULES.iter().any(|r| r.name == name)
        || name == UNUSED_IGNORE
        || name == SYNTAX_ERROR
}

/// The environments a migration will run in, for which timeouts the runner sets: the one
/// named, else every one `migrate.toml` defines.
fn environments<'a>(
    config: &'a Config,
    named: Option<&str>,
) -> Result<Vec<&'a Environment>, Error> {
    match named {
        Some(name) => {
            config.env.get(name).map(|e| vec![e]).ok_or_else(|| {
                Error::input(format!("unknown environment `{name}` in migrate.toml"))
            })
        }
        None => Ok(config.env.values().collect()),
    }
}

/// Lints the project's migrations, reporting those `selected` picks, with the settings of
/// `environment` (or of every environment): what `lint`, `check`, `plan` and `promote` run.
pub fn for_project(
    config: &Config,
    files: &[Migration],
    selected: impl Fn(&Migration) -> bool + Sync,
    environment: Option<&str>,
) -> Result<(Settings, Outcome), Error> {
    let settings = Settings::new(config, &environments(config, environment)?)?;
    let outcome = lint(files, selected, &settings);
    Ok((settings, outcome))
}

/// Lints the UP sections of `all` (every migration of the project, in version order) and
/// reports findings for those `selected` returns true for. Every file is read so that a
/// `GRANT` knows what the tables it names hold, whichever file created them.
pub fn lint(
    all: &[Migration],
    selected: impl Fn(&Migration) -> bool + Sync,
    settings: &Settings,
) -> Outcome {
    let prepared = prepare_all(all, &selected, settings);
    let mut model = rules::Model::default();
    let mut outcome = Outcome::default();
    let mut used_acks: BTreeSet<usize> = BTreeSet::new();
    for (migration, prepared) in all.iter().zip(prepared) {
        let Prepared {
            text,
            parse,
            squawk,
        } = prepared;
        let root = parse.syntax_node();
        model.learn(&root);
        let Some(mut raw) = squawk else {
            continue;
        };
        let lines = LineIndex::new(&text);
        let ignores = find_ignores(&text, &root, &lines);
        raw.extend(own_findings(migration, &root, &model, settings));
        let mut used_ignores = BTreeSet::new();
        for (range_start, mut finding) in raw {
            let (line, column) = lines.line_col(range_start);
            finding.line = line;
            finding.column = column;
            if let Some((index, reason)) = ignores.covering(&finding.rule, range_start, line) {
                used_ignores.insert(index);
                outcome.acknowledged.push(Acknowledged {
                    finding,
                    by: "file",
                    reason,
                });
                continue;
            }
            if let Some(index) = settings
                .acknowledge
                .iter()
                .position(|a| a.version == migration.version && a.rule == finding.rule)
            {
                used_acks.insert(index);
                outcome.acknowledged.push(Acknowledged {
                    finding,
                    by: "migrate.toml",
                    reason: Some(settings.acknowledge[index].reason.clone()),
                });
                continue;
            }
            outcome.findings.push(finding);
        }
        for (index, ignore) in ignores.iter().enumerate() {
            let (line, column) = lines.line_col(ignore.offset);
            let mut messages: Vec<String> = ignore
                .unknown
                .iter()
                .map(|name| format!("`-- squawk-ignore` names `{name}`, which is no rule"))
                .collect();
            if ignore.unknown.is_empty() && !used_ignores.contains(&index) {
                messages.push(format!(
                    "`-- squawk-ignore {}` acknowledges nothing here",
                    ignore.names()
                ));
            }
            for message in messages {
                outcome.findings.push(Finding {
                    file: migration.path.clone(),
                    version: migration.version,
                    line,
                    column,
                    rule: UNUSED_IGNORE.into(),
                    level: Level::Warning,
                    message,
                    remedy: "remove the comment, or put it directly above the statement it is for"
                        .into(),
                    source: "migrate",
                });
            }
        }
    }
    for (index, ack) in settings.acknowledge.iter().enumerate() {
        let Some(migration) = all.iter().find(|m| m.version == ack.version) else {
            continue;
        };
        if used_acks.contains(&index) || !selected(migration) {
            continue;
        }
        outcome.findings.push(Finding {
            file: migration.path.clone(),
            version: migration.version,
            line: migration.up.first_line,
            column: 1,
            rule: UNUSED_IGNORE.into(),
            level: Level::Warning,
            message: format!(
                "migrate.toml acknowledges `{}` in version {:04}, which has no such finding",
                ack.rule, ack.version
            ),
            remedy: "remove that [[lint.acknowledge]] entry".into(),
            source: "migrate",
        });
    }
    let sort = |f: &Finding| (f.version, f.line, f.column, f.rule.clone());
    outcome.findings.sort_by_key(sort);
    outcome.acknowledged.sort_by_key(|a| sort(&a.finding));
    outcome
}

/// The UP section, preceded by blank lines so that offsets map to the file's own lines.
fn section_text(migration: &Migration) -> String {
    let mut text = "\n".repeat(migration.up.first_line.saturating_sub(1));
    text.push_str(&migration.up.sql);
    text
}

/// One file parsed, with squawk's findings when it is selected.
struct Prepared {
    text: String,
    parse: Parse<SourceFile>,
    squawk: Option<Vec<(usize, Finding)>>,
}

/// Parses every file and runs squawk on the selected ones, on all cores: the files do not
/// depend on each other until our rules need what earlier migrations created.
fn prepare_all(
    all: &[Migration],
    selected: &(impl Fn(&Migration) -> bool + Sync),
    settings: &Settings,
) -> Vec<Prepared> {
    let prepare = |m: &Migration| {
        let text = section_text(m);
        let parse = SourceFile::parse(&text);
        let squawk = selected(m).then(|| squawk_findings(m, settings, &text, &parse));
        Prepared {
            text,
            parse,
            squawk,
        }
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = if all.len() < 16 { 1 } else { threads };
    let chunk = all.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        // squawk's parser recurses once per nesting level: a big stack keeps a deeply nested
        // statement (PostgreSQL takes `SELECT ((((...))))` a thousand deep) from aborting.
        let handles: Vec<_> = all
            .chunks(chunk)
            .map(|part| {
                std::thread::Builder::new()
                    .stack_size(crate::BIG_STACK)
                    .spawn_scoped(scope, move || part.iter().map(prepare).collect::<Vec<_>>())
                    .expect("spawn a lint thread")
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// Most files have no acknowledgement: skip walking their tokens for one.
fn find_ignores(text: &str, root: &SyntaxNode, lines: &LineIndex) -> Ignores {
    if text.contains("squawk-ignore") {
        Ignores::find(root, lines)
    } else {
        Ignores::default()
    }
}

fn new_finding(
    migration: &Migration,
    rule: String,
    level: Level,
    message: String,
    remedy: String,
    source: &'static str,
) -> Finding {
    Finding {
        file: migration.path.clone(),
        version: migration.version,
        line: 0,
        column: 0,
        rule,
        level,
        message,
        remedy,
        source,
    }
}

/// squawk's findings (and its parser's errors) before acknowledgements, keyed by byte offset.
fn squawk_findings(
    migration: &Migration,
    settings: &Settings,
    text: &str,
    parse: &Parse<SourceFile>,
) -> Vec<(usize, Finding)> {
    let finding = |rule, level, message, remedy| {
        new_finding(migration, rule, level, message, remedy, "squawk")
    };
    let root = parse.syntax_node();
    let mut out = Vec::new();
    for error in parse.errors() {
        out.push((
            usize::from(error.range().start()),
            finding(
                SYNTAX_ERROR.into(),
                Level::Error,
                format!("squawk cannot parse this: {}", error.message()),
                "fix the SQL, or acknowledge it if PostgreSQL accepts it (then lint cannot see \
                 inside this statement)"
                    .into(),
            ),
        ));
    }
    // squawk applies `-- squawk-ignore` itself and cannot say which ones it used, so it
    // lints a copy with those comments blanked out and the acknowledgements are ours.
    let ignores = find_ignores(text, &root, &LineIndex::new(text));
    let masked;
    let (parse, text) = if ignores.is_empty() {
        (parse.clone(), text)
    } else {
        masked = ignores.masked(text);
        (SourceFile::parse(&masked), masked.as_str())
    };
    let mut linter = settings.squawk_linter(migration.transactional);
    for violation in linter.lint(&parse, text) {
        let offset = usize::from(violation.text_range.start());
        if violation.code == SquawkRule::RequireConcurrentIndexCreation
            && rules::index_on_new_relation(&root, offset)
        {
            continue;
        }
        let rule = violation.code.to_string();
        let remedy = violation
            .help
            .clone()
            .unwrap_or_else(|| format!("see https://squawkhq.com/docs/{rule}"));
        out.push((
            offset,
            finding(
                rule,
                squawk_level(violation.code),
                violation.message.clone(),
                remedy,
            ),
        ));
    }
    out
}

/// Our rules' findings, keyed by byte offset.
fn own_findings(
    migration: &Migration,
    root: &SyntaxNode,
    model: &rules::Model,
    settings: &Settings,
) -> Vec<(usize, Finding)> {
    let mut out = Vec::new();
    if migration.transactional {
        if let Some(offset) = rules::lone_concurrent_index(root) {
            out.push((
                offset,
                new_finding(
                    migration,
                    SquawkRule::BanConcurrentIndexCreationInTransaction.to_string(),
                    Level::Error,
                    "CREATE INDEX CONCURRENTLY cannot run inside a transaction, and the runner \
                     runs this migration in one"
                        .into(),
                    "add `-- transaction: none` to the file's header".into(),
                    "migrate",
                ),
            ));
        }
    }
    for own in rules::check(root, model, &settings.managed) {
        out.push((
            own.offset,
            new_finding(
                migration,
                own.rule.name.into(),
                own.rule.level,
                own.message,
                own.remedy,
                "migrate",
            ),
        ));
    }
    out
}

/// Errors are what takes a long lock, rewrites a table, loses data or fails part way;
/// style and compatibility rules are warnings.
fn squawk_level(rule: SquawkRule) -> Level {
    use SquawkRule::*;
    match rule {
        RequireConcurrentIndexCreation
        | RequireConcurrentIndexDeletion
        | ConstraintMissingNotValid
        | AddingFieldWithDefault
        | AddingForeignKeyConstraint
        | ChangingColumnType
        | AddingNotNullableField
        | AddingSerialPrimaryKeyField
        | AddingRequiredField
        | DisallowedUniqueConstraint
        | RenamingColumn
        | RenamingTable
        | BanDropDatabase
        | BanDropColumn
        | BanDropTable
        | BanDropNotNull
        | BanConcurrentIndexCreationInTransaction
        | TransactionNesting
        | BanUncommittedTransaction
        | BanTruncateCascade
        | RequireConcurrentPartitionDetach
        | RequireConcurrentReindex
        | BanCreateDomainWithConstraint
        | BanAlterDomainWithAddConstraint
        | IdentifierTooLong
        | BanDuplicateColumnAssignments => Level::Error,
        _ => Level::Warning,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrations::{parse, FileName};

    fn migration(version: i64, text: &str) -> Migration {
        let file = FileName {
            version,
            name: format!("coach_m{version}"),
            domain: "coach".into(),
        };
        parse(file, &format!("m{version}.sql"), text.as_bytes()).unwrap()
    }

    fn lint_one(text: &str) -> Outcome {
        let settings = Settings::new(&Config::default(), &[]).unwrap();
        lint(&[migration(1, text)], |_| true, &settings)
    }

    fn rules_at(outcome: &Outcome) -> Vec<(usize, &str)> {
        outcome
            .findings
            .iter()
            .filter(|f| !f.rule.starts_with("require-") || f.rule.contains("concurrent"))
            .map(|f| (f.line, f.rule.as_str()))
            .collect()
    }

    #[test]
    fn an_ignore_covers_the_whole_next_statement_and_only_it() {
        let outcome = lint_one(
            "-- header\n-- UP\n-- squawk-ignore prefer-bigint-over-int -- counters\n\
             CREATE TABLE coach.t (\n  id uuid PRIMARY KEY,\n  n int\n);\n\
             ALTER TABLE coach.t ENABLE ROW LEVEL SECURITY;\n\
             CREATE TABLE coach.u (id uuid PRIMARY KEY, n int);\n\
             ALTER TABLE coach.u ENABLE ROW LEVEL SECURITY;\n-- DOWN\n",
        );
        assert_eq!(rules_at(&outcome), vec![(9, "prefer-bigint-over-int")]);
        assert_eq!(outcome.acknowledged.len(), 1);
        assert_eq!(outcome.acknowledged[0].finding.line, 6);
        assert_eq!(outcome.acknowledged[0].reason.as_deref(), Some("counters"));
    }

    #[test]
    fn unknown_and_unused_ignores_are_warnings_and_our_rules_can_be_ignored() {
        let outcome = lint_one(
            "-- UP\n-- squawk-ignore no-such-rule\nSELECT 1;\n-- squawk-ignore rls-disabled\n\
             CREATE TABLE \"coach\".\"T\" (id uuid PRIMARY KEY);\n\
             -- squawk-ignore-file prefer-text-field\n-- DOWN\n",
        );
        let found = rules_at(&outcome);
        assert_eq!(
            found,
            vec![(2, UNUSED_IGNORE), (6, UNUSED_IGNORE)],
            "{outcome:#?}"
        );
        assert!(outcome.findings[0].message.contains("no-such-rule"));
        assert_eq!(outcome.acknowledged[0].finding.rule, "rls-disabled");
        assert!(outcome.acknowledged[0].finding.message.contains("coach.T"));
    }

    #[test]
    fn user_data_follows_foreign_keys_across_migrations() {
        let settings = Settings::new(&Config::default(), &[]).unwrap();
        let all = [
            migration(
                1,
                "-- UP\nCREATE TABLE coach.a (id uuid PRIMARY KEY, user_id uuid);\n\
                 CREATE TABLE coach.lookup (id uuid PRIMARY KEY);\n-- DOWN\n",
            ),
            migration(
                2,
                "-- UP\nCREATE TABLE coach.b (id uuid PRIMARY KEY, a uuid REFERENCES coach.a (id));\n\
                 ALTER TABLE coach.b ENABLE ROW LEVEL SECURITY;\n\
                 GRANT UPDATE ON coach.b TO authenticated;\n\
                 GRANT UPDATE ON coach.lookup TO authenticated;\n\
                 CREATE POLICY p ON coach.b FOR SELECT TO anon USING ((true));\n-- DOWN\n",
            ),
        ];
        let outcome = lint(&all, |m| m.version == 2, &settings);
        let found: Vec<(usize, &str)> = rules_at(&outcome);
        assert_eq!(
            found,
            vec![
                (4, "whole-table-write-grant"),
                (6, "rls-policy-always-true")
            ]
        );
    }
}
