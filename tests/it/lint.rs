//! `migrate lint`: squawk's rules and ours found with file and line, acknowledgements in the
//! file and in migrate.toml, the three output formats, and the gates in `check` and `plan`.

use serde_json::Value;

use crate::support::{server, Project, Run};

const BASE: &str = "-- UP
CREATE SCHEMA coach;
CREATE TABLE coach.t (id uuid PRIMARY KEY, user_id uuid NOT NULL, x bigint, u uuid);
ALTER TABLE coach.t ENABLE ROW LEVEL SECURITY;
-- DOWN
DROP SCHEMA coach CASCADE;
";

/// Each line a risky pattern (the line number is the comment's), then an acknowledged one
/// and an ignore that acknowledges nothing.
const RISKY: &str = "-- UP
CREATE INDEX t_x ON coach.t (x);
ALTER TABLE coach.t ADD COLUMN y text NOT NULL;
ALTER TABLE coach.t ALTER COLUMN x TYPE numeric;
ALTER TABLE coach.t ADD CONSTRAINT t_u_fkey FOREIGN KEY (u) REFERENCES coach.t (id);
ALTER TABLE coach.t ADD CONSTRAINT t_x_check CHECK (x > 0);
CREATE TABLE coach.open (id uuid PRIMARY KEY, user_id uuid NOT NULL);
CREATE POLICY t_own ON coach.t FOR SELECT TO authenticated USING (user_id = auth.uid());
CREATE FUNCTION coach.f() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1';
GRANT SELECT, INSERT, UPDATE ON coach.t TO authenticated;
GRANT SELECT, UPDATE (x) ON coach.t TO authenticated;
-- squawk-ignore require-concurrent-index-creation -- reviewed: coach.t is small
CREATE INDEX t_u ON coach.t (u);
-- squawk-ignore ban-drop-column
SELECT 1;
CREATE MATERIALIZED VIEW coach.mv AS SELECT id, user_id FROM coach.t;
GRANT SELECT ON coach.mv TO authenticated;
-- DOWN
SELECT 1;
";

const FILE: &str = "migrations/0002_coach_risky.sql";

/// Both timeouts set by the runner in the only environment, so squawk's timeout rules are off.
const TIMEOUTS: &str = "[env.production]\nurl_env = \"PRODUCTION_URL\"\nlock_timeout = \"5s\"\n\
                        statement_timeout = \"1min\"\n";

fn risky(label: &str) -> Project {
    let p = Project::new(label);
    p.migration("0001_coach_base.sql", BASE)
        .migration("0002_coach_risky.sql", RISKY)
        .write("migrate.toml", TIMEOUTS);
    p
}

/// (file, line, rule, level) of every finding in a `--json` report's `key`.
fn found(json: &Value, key: &str) -> Vec<(String, u64, String, String)> {
    json[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {json}"))
        .iter()
        .map(|f| {
            let f = f.get("finding").unwrap_or(f);
            (
                f["file"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap(),
                f["rule"].as_str().unwrap().to_string(),
                f["level"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn has(findings: &[(String, u64, String, String)], line: u64, rule: &str, level: &str) -> bool {
    findings
        .iter()
        .any(|(f, l, r, lv)| f == FILE && *l == line && r == rule && lv == level)
}

#[test]
fn each_risky_pattern_is_found_with_file_and_line() {
    let p = risky("lint_patterns");
    let run = p.migrate(&["lint", "--json"]);
    run.code(1);
    let json = run.json();
    let findings = found(&json, "findings");
    for (line, rule, level) in [
        (2, "require-concurrent-index-creation", "error"),
        (3, "adding-required-field", "error"),
        (4, "changing-column-type", "error"),
        (5, "constraint-missing-not-valid", "error"),
        (6, "constraint-missing-not-valid", "error"),
        (7, "rls-disabled", "error"),
        (8, "auth-rls-initplan", "warning"),
        (9, "function-search-path-mutable", "error"),
        (10, "whole-table-write-grant", "warning"),
        (14, "unused-ignore", "warning"),
        (17, "materialized-view-in-api", "warning"),
    ] {
        assert!(
            has(&findings, line, rule, level),
            "{rule} ({level}) not found at {FILE}:{line}: {findings:#?}"
        );
    }
    // A column list is fine; the acknowledged index is not reported but listed as such.
    assert!(
        !findings.iter().any(|(_, l, _, _)| *l == 11 || *l == 13),
        "{findings:#?}"
    );
    let acknowledged = found(&json, "acknowledged");
    assert!(has(
        &acknowledged,
        13,
        "require-concurrent-index-creation",
        "error"
    ));
    assert_eq!(
        json["acknowledged"][0]["reason"],
        "reviewed: coach.t is small"
    );
    // The base migration is clean, and the runner sets both timeouts.
    assert!(
        !findings
            .iter()
            .any(|(f, ..)| f.ends_with("0001_coach_base.sql")),
        "{findings:#?}"
    );
    assert_eq!(json["ok"], false);

    // Human table: file:line, rule, level, message, remedy; exit 1 on an error.
    p.migrate(&["lint"])
        .code(1)
        .stdout_has("migrations/0002_coach_risky.sql:7")
        .stdout_has("rls-disabled")
        .stdout_has("ALTER TABLE coach.open ENABLE ROW LEVEL SECURITY")
        .stderr_has("lint found");
    // Linting one file by path.
    let one = p.migrate(&["lint", "migrations/0001_coach_base.sql", "--format", "json"]);
    one.success();
    assert_eq!(one.json()["files"], 1);
    assert_eq!(one.json()["findings"], serde_json::json!([]));
    p.migrate(&["lint", "elsewhere.sql"])
        .code(2)
        .stderr_has("cannot read elsewhere.sql");
}

#[test]
fn github_annotations_name_file_line_and_rule() {
    let p = risky("lint_github");
    let run = p.migrate(&["lint", "--format", "github"]);
    run.code(1);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(!lines.is_empty());
    for line in &lines {
        let (command, rest) = line
            .strip_prefix("::")
            .and_then(|l| l.split_once(' '))
            .unwrap_or_else(|| panic!("not a workflow command: {line}"));
        assert!(matches!(command, "error" | "warning"), "{line}");
        let (properties, message) = rest.split_once("::").expect("properties::message");
        let props: Vec<(&str, &str)> = properties
            .split(',')
            .map(|p| p.split_once('=').expect("key=value"))
            .collect();
        let keys: Vec<&str> = props.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["file", "line", "col", "title"], "{line}");
        assert!(props[1].1.parse::<u32>().is_ok(), "{line}");
        assert!(!message.is_empty() && !message.contains('\n'));
    }
    assert!(lines.contains(&"::error file=migrations/0002_coach_risky.sql,line=7,col=1,title=migrate lint%3A rls-disabled::table coach.open is created without row level security: anon and authenticated reach every row their grants allow — add `ALTER TABLE coach.open ENABLE ROW LEVEL SECURITY;` to this migration, with policies"), "{lines:#?}");
}

#[test]
fn timeouts_the_runner_sets_and_outside_acknowledgements_come_from_migrate_toml() {
    let p = Project::new("lint_config");
    p.migration("0001_coach_base.sql", BASE);
    let rules = |run: &Run| -> Vec<String> {
        found(&run.json(), "findings")
            .into_iter()
            .map(|(_, _, r, _)| r)
            .collect()
    };
    // No environment: nothing sets the timeouts, squawk asks for them.
    let bare = p.migrate(&["lint", "--json"]);
    bare.success();
    assert!(rules(&bare).contains(&"require-lock-timeout".to_string()));
    assert!(rules(&bare).contains(&"require-statement-timeout".to_string()));
    // One environment without statement_timeout: only that one is asked for.
    p.write(
        "migrate.toml",
        "[env.staging]\nurl_env = \"S\"\nlock_timeout = \"5s\"\n",
    );
    let half = p.migrate(&["lint", "--json"]);
    assert!(!rules(&half).contains(&"require-lock-timeout".to_string()));
    assert!(rules(&half).contains(&"require-statement-timeout".to_string()));
    // An applied migration is acknowledged by version and rule, with a reason.
    p.write(
        "migrate.toml",
        &format!(
            "{TIMEOUTS}[lint]\npg_version = \"16\"\n[[lint.acknowledge]]\nversion = 1\n\
             rule = \"prefer-bigint-over-int\"\nreason = \"none\"\n"
        ),
    );
    let acked = p.migrate(&["lint", "--json"]);
    acked.success();
    let json = acked.json();
    assert_eq!(json["pg_version"], "16");
    // Nothing to acknowledge in 0001: the entry is reported as unused.
    assert_eq!(
        found(&json, "findings"),
        vec![(
            "migrations/0001_coach_base.sql".to_string(),
            2,
            "unused-ignore".to_string(),
            "warning".to_string()
        )]
    );
    p.write(
        "migrate.toml",
        "[[lint.acknowledge]]\nversion = 1\nrule = \"no-such-rule\"\nreason = \"x\"\n",
    );
    p.migrate(&["lint"])
        .code(2)
        .stderr_has("names rule `no-such-rule`");
    p.write("migrate.toml", "[lint]\npg_version = \"fifteen\"\n");
    p.migrate(&["lint"])
        .code(2)
        .stderr_has("pg_version = \"fifteen\" is not a PostgreSQL version");
}

#[test]
fn transaction_mode_is_per_file() {
    let p = Project::new("lint_transaction");
    p.write("migrate.toml", TIMEOUTS)
        .migration("0001_coach_base.sql", BASE)
        .migration(
            "0002_coach_concurrently.sql",
            "-- UP\nCREATE INDEX CONCURRENTLY t_x ON coach.t (x);\n-- DOWN\nDROP INDEX coach.t_x;\n",
        )
        .migration(
            "0003_coach_outside.sql",
            "-- transaction: none\n-- UP\nCREATE INDEX CONCURRENTLY t_u ON coach.t (u);\n\
             -- DOWN\nDROP INDEX CONCURRENTLY coach.t_u;\n",
        );
    let json = p.migrate(&["lint", "--json"]).json();
    let findings = found(&json, "findings");
    // Inside a transaction CONCURRENTLY fails (even as the only statement, which squawk
    // assumes could run outside one); outside, squawk asks for robust statements.
    assert!(
        findings
            .iter()
            .any(|(f, l, r, lv)| f.ends_with("0002_coach_concurrently.sql")
                && *l == 2
                && r == "ban-concurrent-index-creation-in-transaction"
                && lv == "error"),
        "{findings:#?}"
    );
    assert!(findings
        .iter()
        .any(|(f, l, r, _)| f.ends_with("0003_coach_outside.sql")
            && *l == 3
            && r == "prefer-robust-stmts"));
    assert!(!findings.iter().any(
        |(f, _, r, _)| f.ends_with("0003_coach_outside.sql") && r.starts_with("ban-concurrent")
    ));
}

#[test]
fn check_fails_on_an_unacknowledged_error() {
    let p = Project::new("lint_check");
    p.migration("0001_coach_base.sql", BASE);
    let lock = || {
        p.migrate_raw(&["lock", "--scratch-url", server().admin_url()], &[])
            .success();
    };
    lock();
    p.migrate(&["check"])
        .success()
        .stdout_has("lint: 0 error(s)");
    p.migration(
        "0002_coach_index.sql",
        "-- UP\nCREATE INDEX t_x ON coach.t (x);\n-- DOWN\nDROP INDEX coach.t_x;\n",
    );
    lock();
    let run = p.migrate(&["check", "--json"]);
    run.code(1);
    let json = run.json();
    assert_eq!(json["stale"], serde_json::json!([]));
    assert_eq!(json["lint"]["errors"], 1);
    p.migrate(&["check"])
        .code(1)
        .stderr_has("lint found 1 error(s)")
        .stderr_has("migrations/0002_coach_index.sql:2: error require-concurrent-index-creation");
}

#[test]
fn plan_refuses_while_a_migration_to_promote_has_an_unacknowledged_error() {
    let p = Project::new("lint_plan");
    let prod = server().database("lint_plan_prod");
    p.write(
        "migrate.toml",
        "[env.staging]\nurl_env = \"STAGING_URL\"\n\n[env.production]\nurl_env = \
         \"PRODUCTION_URL\"\nlock_timeout = \"5s\"\nstatement_timeout = \"1min\"\n",
    )
    .migration("0001_coach_base.sql", BASE)
    .migration(
        "0002_coach_acknowledged.sql",
        "-- UP\n-- squawk-ignore require-concurrent-index-creation -- reviewed\n\
         CREATE INDEX t_x ON coach.t (x);\n-- DOWN\nDROP INDEX coach.t_x;\n",
    );
    let env = [
        ("STAGING_URL", p.db.url.as_str()),
        ("PRODUCTION_URL", prod.url.as_str()),
    ];
    let plan = || {
        p.migrate_raw(
            &["plan", "--from", "staging", "--to", "production", "--json"],
            &env,
        )
    };
    p.migrate_raw(&["up", "--env", "production", "--to", "1"], &env)
        .success();
    p.migrate_raw(&["up", "--env", "staging"], &env).success();
    let ok = plan();
    ok.success();
    assert_eq!(ok.json()["may_proceed"], true);
    assert_eq!(ok.json()["lint_acknowledged"], 1);

    p.migration(
        "0003_coach_index.sql",
        "-- UP\nCREATE INDEX t_u ON coach.t (u);\n-- DOWN\nDROP INDEX coach.t_u;\n",
    );
    p.migrate_raw(&["up", "--env", "staging"], &env).success();
    let refused = plan();
    refused.code(1);
    let json = refused.json();
    assert_eq!(json["may_proceed"], false);
    let reasons = json["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 1, "{reasons:#?}");
    assert_eq!(reasons[0]["kind"], "lint");
    assert_eq!(reasons[0]["version"], 3);
    assert!(reasons[0]["message"].as_str().unwrap().starts_with(
        "migrations/0003_coach_index.sql:2: lint error require-concurrent-index-creation"
    ));
    let findings = found(&json, "lint");
    assert_eq!(findings.len(), 1, "{findings:#?}");
    // `lint --pending` on production: what `up` would apply there, for its settings.
    let pending = p.migrate_raw(
        &["lint", "--pending", "--env", "production", "--json"],
        &env,
    );
    pending.code(1);
    let json = pending.json();
    assert_eq!(json["files"], 2);
    assert_eq!(
        json["set_by_runner"],
        serde_json::json!(["lock_timeout", "statement_timeout"])
    );
    let rules: Vec<_> = found(&json, "findings");
    assert_eq!(rules.len(), 1, "{rules:#?}");
    assert_eq!(rules[0].0, "migrations/0003_coach_index.sql");
    // promote refuses the same way, and applies nothing.
    p.migrate_raw(
        &[
            "promote",
            "--from",
            "staging",
            "--to",
            "production",
            "--yes",
        ],
        &env,
    )
    .code(1)
    .stderr_has("refusing to promote")
    .stderr_has("lint error require-concurrent-index-creation");
    let applied: i64 = prod.scalar("SELECT count(*) FROM _migrate.schema_migrations");
    assert_eq!(applied, 1);
}

/// Mutation this catches: linting on a default-sized stack, where squawk's parser aborts the
/// process (exit 134) on a statement PostgreSQL runs fine.
#[test]
fn a_deeply_nested_statement_is_linted_not_a_crash() {
    let p = crate::support::Project::new("lint_deep");
    let depth = 5000;
    p.migration(
        "0001_coach_deep.sql",
        &format!(
            "-- UP\nselect {}1{};\n-- DOWN\n",
            "(".repeat(depth),
            ")".repeat(depth)
        ),
    );
    let run = p.migrate_raw(&["lint", "--json"], &[]);
    assert!(
        run.code == 0 || run.code == 1,
        "exit {}: {}",
        run.code,
        run.stderr
    );
    run.json();
    let check = p.migrate_raw(&["check"], &[]);
    assert!(check.code != 134 && check.code != 101, "{}", check.stderr);
}
