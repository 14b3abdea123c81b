//! Snapshots (insta) of what machines and people read: every command's `--json` document, a
//! success and a typical failure, and `--help` of the binary and every subcommand. CI
//! pipelines parse the JSON, so a changed shape must be a reviewed diff in
//! `tests/it/snapshots/`, not a surprise (README, Development). What differs from run to run —
//! paths, databases, ports, durations, timestamps, pids, server versions — is filtered out
//! before comparing, as uv does.

use clap::CommandFactory;

use crate::support::{server, with_database, Project, Run};
use migrate::cli::Cli;

/// A managed-schema table with RLS and a policy: `verify` finds nothing wrong with it.
const T1: &str = "\
-- UP
CREATE SCHEMA coach;
CREATE TABLE coach.items (id bigint PRIMARY KEY, name text NOT NULL);
ALTER TABLE coach.items ENABLE ROW LEVEL SECURITY;
CREATE POLICY items_read ON coach.items FOR SELECT USING (true);
-- DOWN
DROP SCHEMA coach CASCADE;
";

const T2: &str = "\
-- UP
CREATE TABLE coach.notes (id bigint PRIMARY KEY, body text NOT NULL);
ALTER TABLE coach.notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY notes_read ON coach.notes FOR SELECT USING (true);
-- DOWN
DROP TABLE coach.notes;
";

/// Fails on the server: the table it inserts into does not exist.
const BROKEN: &str = "\
-- UP
INSERT INTO coach.nowhere VALUES (1);
-- DOWN
SELECT 1;
";

/// A table in a managed schema without row-level security: `lint` and `verify` say so.
const NO_RLS: &str = "\
-- UP
CREATE TABLE coach.open (id bigint PRIMARY KEY, owner_id uuid NOT NULL);
-- DOWN
DROP TABLE coach.open;
";

/// `run`'s stdout with what differs between runs replaced, asserted against the snapshot
/// `name`; it must also be exactly one JSON document.
#[track_caller]
fn json(name: &str, p: &Project, run: &Run, code: i32) {
    run.code(code);
    let document = run.json();
    assert_eq!(document["exit_code"], code, "{name}: exit_code");
    snapshot(name, p, &run.stdout, FILTERS);
}

/// `text` as the snapshot `name`, with the project's path and then `filters` replaced.
#[track_caller]
fn snapshot(name: &str, p: &Project, text: &str, filters: &[(&str, &str)]) {
    let text = text.replace(p.path().to_str().unwrap(), "[PROJECT]");
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots");
    settings.set_prepend_module_to_snapshot(false);
    for (pattern, replacement) in filters {
        settings.add_filter(pattern, *replacement);
    }
    settings.bind(|| insta::assert_snapshot!(name, text));
}

/// Regular expressions over the output and what they become, in this order.
const FILTERS: &[(&str, &str)] = &[
    // The harness's databases (`t<pid>_<n>_<label>`), then any URL that names one: the
    // tool shows it redacted, and its user, host and port depend on the server.
    (r"\bt\d+_\d+_[a-z0-9_]+", "[DB]"),
    (r#"postgres(ql)?://[^\s"'`]*/\[DB\]"#, "[DATABASE_URL]"),
    // Durations and timings in any unit a report uses.
    (r#""([a-z_]*_ms)": \d+"#, r#""$1": "[ms]""#),
    (
        r#""(elapsed|duration|seconds)": [0-9.]+"#,
        r#""$1": "[duration]""#,
    ),
    // Timestamps, ISO 8601 or PostgreSQL's text form.
    (
        r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d(:?\d\d)?)?",
        "[TIMESTAMP]",
    ),
    (r#""pid": \d+"#, r#""pid": "[PID]""#),
    (r#""port": \d+"#, r#""port": "[PORT]""#),
    // Any other URL's user, host and port (the server the harness started, or
    // TEST_DATABASE_URL's, whose user may differ and carry a password).
    (r#"postgres(ql)?://[^@/\s"'`]+@"#, "postgres://[USER]@"),
    (r"@[A-Za-z0-9.\-\[\]:]+:\d+/", "@[HOST]:[PORT]/"),
    (
        r#""(pg_version|server_version)": "[^"]*""#,
        r#""$1": "[PG_VERSION]""#,
    ),
    // lock's temporary database on the scratch server.
    (r"migrate_lock_\d+_[0-9a-f]+", "migrate_lock_[SCRATCH]"),
    (r#""bindir": "[^"]*""#, r#""bindir": "[BINDIR]""#),
    // A completion script is clap_complete's, whole; its shape is what is pinned here.
    (r#""script": "(?:[^"\\]|\\.)*""#, r#""script": "[SCRIPT]""#),
    (
        r#""tool_version": "[^"]*""#,
        r#""tool_version": "[VERSION]""#,
    ),
    (
        r#""(applied_by|ran_by|loaded_by|by)": "[^"]*""#,
        r#""$1": "[USER]""#,
    ),
];

/// A project with T1 and T2 and a current schema.lock.
fn two(label: &str) -> Project {
    let p = Project::new(label);
    p.migration("0001_coach_items.sql", T1);
    p.migration("0002_coach_notes.sql", T2);
    p.migrate(&["lock", "--scratch-url", server().admin_url()])
        .success();
    p
}

#[test]
fn json_of_up_down_redo_status_verify() {
    let p = two("shapes_up");
    json("status_pending", &p, &p.migrate(&["status", "--json"]), 0);
    json(
        "up_dry_run",
        &p,
        &p.migrate(&["up", "--dry-run", "--json"]),
        0,
    );
    json("up", &p, &p.migrate(&["up", "--json"]), 0);
    json("status_applied", &p, &p.migrate(&["status", "--json"]), 0);
    json("verify", &p, &p.migrate(&["verify", "--json"]), 0);
    json("redo", &p, &p.migrate(&["redo", "--json"]), 0);
    json("down", &p, &p.migrate(&["down", "--json"]), 0);
    json(
        "down_dry_run",
        &p,
        &p.migrate(&["down", "--all", "--dry-run", "--json"]),
        0,
    );

    // Failures: a migration the server rejects; verify's findings and a changed file.
    p.migration("0003_coach_broken.sql", BROKEN);
    json("up_failed", &p, &p.migrate(&["up", "--json"]), 1);
    p.remove_migration("0003_coach_broken.sql");
    p.migration("0003_coach_open.sql", NO_RLS);
    p.migrate(&["up"]).success();
    p.migration(
        "0001_coach_items.sql",
        &format!("{T1}-- an edit after it was applied\n"),
    );
    json("status_changed", &p, &p.migrate(&["status", "--json"]), 0);
    json("verify_findings", &p, &p.migrate(&["verify", "--json"]), 1);
    json("up_refused", &p, &p.migrate(&["up", "--json"]), 1);
}

#[test]
fn json_of_new_check_lock_lint_baseline_repair() {
    let p = two("shapes_files");
    json("check", &p, &p.migrate(&["check", "--json"]), 0);
    json("lint", &p, &p.migrate(&["lint", "--json"]), 0);
    json(
        "new",
        &p,
        &p.migrate(&["new", "coach_streaks", "--json"]),
        0,
    );
    json(
        "new_bad_name",
        &p,
        &p.migrate(&["new", "Coach-Streaks", "--json"]),
        2,
    );
    p.remove_migration("0003_coach_streaks.sql");

    // A file the lock does not list, and lint's error rules.
    p.migration("0003_coach_open.sql", NO_RLS);
    json("check_stale", &p, &p.migrate(&["check", "--json"]), 1);
    json("lint_error", &p, &p.migrate(&["lint", "--json"]), 1);
    json(
        "lock",
        &p,
        &p.migrate(&["lock", "--scratch-url", server().admin_url(), "--json"]),
        0,
    );
    p.migration("0004_coach_broken.sql", BROKEN);
    json(
        "lock_failed",
        &p,
        &p.migrate(&["lock", "--scratch-url", server().admin_url(), "--json"]),
        1,
    );
    p.remove_migration("0004_coach_broken.sql");

    // baseline adopts once; repair accepts an edit and refuses a version never applied.
    json("baseline", &p, &p.migrate(&["baseline", "2", "--json"]), 0);
    json(
        "baseline_refused",
        &p,
        &p.migrate(&["baseline", "2", "--json"]),
        1,
    );
    p.migration(
        "0002_coach_notes.sql",
        &format!("{T2}-- an edit after it was applied\n"),
    );
    json("repair", &p, &p.migrate(&["repair", "2", "--json"]), 0);
    json(
        "repair_not_applied",
        &p,
        &p.migrate(&["repair", "9", "--json"]),
        1,
    );
}

const ENVIRONMENTS: &str = r#"
[env.staging]
url_env = "STAGING_URL"

[env.production]
url_env = "PRODUCTION_URL"
protected = true
"#;

#[test]
fn json_of_plan_and_promote() {
    let p = two("shapes_promote");
    p.write("migrate.toml", ENVIRONMENTS);
    let prod = server().database("shapes_promote_prod");
    let env = [
        ("STAGING_URL", p.db.url.as_str()),
        ("PRODUCTION_URL", &prod.url),
    ];
    let run = |args: &[&str]| p.migrate_raw(args, &env);
    let plan = ["plan", "--from", "staging", "--to", "production", "--json"];
    let promote = [
        "promote",
        "--from",
        "staging",
        "--to",
        "production",
        "--yes",
        "--json",
    ];
    run(&["up", "--env", "staging"]).success();
    json("plan", &p, &run(&plan), 0);
    json("promote", &p, &run(&promote), 0);

    // Production applied a version staging has not: the plan may not proceed.
    p.migration("0003_coach_open.sql", NO_RLS);
    run(&["up", "--env", "production", "--yes"]).success();
    json("plan_refused", &p, &run(&plan), 1);
    json("promote_refused", &p, &run(&promote), 1);
}

const ITEMS: &str = r#"
[[coach.items]]
id = 1
name = "first"

[[coach.items]]
id = 2
name = "second"
"#;

const NOTES: &str = r#"
[[coach.notes]]
id = 1
body = "a note"
"#;

#[test]
fn json_of_seeds_and_setup() {
    let p = two("shapes_seeds");
    p.write("seeds/base/010_items.toml", ITEMS);
    p.write("seeds/test/010_notes.toml", NOTES);
    json(
        "seed_refused",
        &p,
        &p.migrate(&["seed", "base", "--json"]),
        1,
    );
    json(
        "setup",
        &p,
        &p.migrate(&["setup", "--seed", "test", "--json"]),
        0,
    );
    json("seed_base", &p, &p.migrate(&["seed", "base", "--json"]), 0);
    json(
        "seed_test_dry_run",
        &p,
        &p.migrate(&["seed", "test", "--dry-run", "--json"]),
        0,
    );
    json(
        "seed_status",
        &p,
        &p.migrate(&["seed", "status", "--json"]),
        0,
    );
    json(
        "seed_clear",
        &p,
        &p.migrate(&["seed", "clear", "test", "--json"]),
        0,
    );
    p.write(
        "seeds/base/020_bad.toml",
        "[[coach.items]]\nid = \"three\"\nname = \"bad\"\n",
    );
    json(
        "seed_bad_value",
        &p,
        &p.migrate(&["seed", "base", "--json"]),
        2,
    );
}

#[test]
fn json_of_database_local_and_unreachable() {
    let p = Project::new("shapes_database");
    let name = format!("{}_created", p.db.url.rsplit('/').next().unwrap());
    let url = with_database(&p.db.url, &name);
    let at = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--database-url", url.as_str()]);
        p.migrate_raw(&all, &[])
    };
    json(
        "database_create",
        &p,
        &at(&["database", "create", "--json"]),
        0,
    );
    json(
        "database_drop_unconfirmed",
        &p,
        &at(&["database", "drop", "--json"]),
        2,
    );
    json(
        "database_drop",
        &p,
        &at(&["database", "drop", "--yes", "--json"]),
        0,
    );
    json("status_database_missing", &p, &at(&["status", "--json"]), 3);
    json(
        "status_unreachable",
        &p,
        &p.migrate_raw(
            &[
                "status",
                "--json",
                "--database-url",
                "postgres://u@127.0.0.1:1/db",
            ],
            &[],
        ),
        3,
    );

    // The local cluster: nothing yet, then started, then stopped.
    let _cleanup = LocalCleanup(p.path().join(".migrate"));
    json(
        "local_status_none",
        &p,
        &p.migrate_raw(&["local", "status", "--json"], &[]),
        0,
    );
    json(
        "local_start",
        &p,
        &p.migrate_raw(&["local", "start", "--json"], &[]),
        0,
    );
    json(
        "local_url",
        &p,
        &p.migrate_raw(&["local", "url", "--json"], &[]),
        0,
    );
    json(
        "local_stop",
        &p,
        &p.migrate_raw(&["local", "stop", "--json"], &[]),
        0,
    );
    json(
        "local_reset_unconfirmed",
        &p,
        &p.migrate_raw(&["local", "reset", "--json"], &[]),
        2,
    );
    json(
        "man_dir",
        &p,
        &p.migrate_raw(&["man", "--dir", "man", "--json"], &[]),
        0,
    );
}

/// Stops and removes a project's local cluster even when an assertion fails.
struct LocalCleanup(std::path::PathBuf);

impl Drop for LocalCleanup {
    fn drop(&mut self) {
        if let Ok(cluster) = migrate::local::Cluster::new(&self.0) {
            cluster.destroy();
        }
    }
}

/// `--help` of the binary and of every subcommand, at a fixed width.
#[test]
fn help_of_every_command() {
    let p = Project::new("shapes_help");
    fn walk(command: &clap::Command, path: Vec<String>, p: &Project) {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let run = p.migrate_raw(&args, &[("COLUMNS", "100")]);
        run.success();
        assert_eq!(
            run.stderr,
            "",
            "`migrate {}` wrote on stderr",
            args.join(" ")
        );
        let name = if path.is_empty() {
            "help".to_string()
        } else {
            format!("help_{}", path.join("_"))
        };
        // Help is the same text everywhere: nothing is filtered.
        snapshot(&name, p, &run.stdout, &[]);
        for sub in command.get_subcommands() {
            let mut next = path.clone();
            next.push(sub.get_name().to_string());
            walk(sub, next, p);
        }
    }
    walk(&Cli::command(), Vec::new(), &p);
}

/// Usage errors are clap's, and with `--json` they are one JSON document too (exit 2), as
/// every other error is: a pipeline reading stdout gets a document, not nothing.
#[test]
fn json_of_usage_errors_and_completions() {
    let p = Project::new("shapes_usage");
    json(
        "usage_unknown_argument",
        &p,
        &p.migrate_raw(&["up", "--json", "--bogus"], &[]),
        2,
    );
    json(
        "usage_invalid_value",
        &p,
        &p.migrate_raw(&["down", "--steps", "x", "--json"], &[]),
        2,
    );
    let run = p.migrate_raw(&["completions", "bash", "--json"], &[]);
    assert!(run.json()["script"]
        .as_str()
        .unwrap()
        .contains("_migrate()"));
    json("completions", &p, &run, 0);
}
