//! `lock`, the lock rule of `check`, and `verify` on the repository's migrations: a fresh
//! database verifies clean, and each manual breakage is an error that names its object.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde_json::Value;

use crate::support::{server, Project, Run};

pub(crate) fn lock(p: &Project) -> Run {
    p.migrate_raw(
        &["lock", "--json", "--scratch-url", server().admin_url()],
        &[],
    )
}

/// The lock of the repository's migrations, generated once for this test binary.
fn repo_lock() -> &'static str {
    static LOCK: OnceLock<String> = OnceLock::new();
    LOCK.get_or_init(|| {
        let p = Project::with_repo_migrations("lock_source");
        lock(&p).success();
        std::fs::read_to_string(p.path().join("schema.lock")).unwrap()
    })
}

/// The holes verify finds on the repository's head, acknowledged so each test sees only its
/// own breakage: none since 0055-0059 closed issue 11's (kept so a future hole has one place).
pub(crate) const HEAD_HOLES: &str = "";

/// A project with the repository's migrations (and, if asked, their schema.lock), migrated.
fn migrated(label: &str, with_lock: bool) -> Project {
    let p = Project::with_repo_migrations(label);
    p.write("migrate.toml", HEAD_HOLES);
    if with_lock {
        p.write("schema.lock", repo_lock());
    }
    p.migrate(&["up"]).success();
    p
}

pub(crate) fn findings(json: &Value) -> &Vec<Value> {
    json["findings"].as_array().expect("findings")
}

/// The first finding of `rule`; the test fails when there is none.
pub(crate) fn first<'a>(json: &'a Value, rule: &str) -> &'a Value {
    findings(json)
        .iter()
        .find(|f| f["rule"] == rule)
        .unwrap_or_else(|| panic!("no {rule} finding in {json}"))
}

/// (rule, schema.table.object) of every finding at `level` that is not acknowledged.
pub(crate) fn at_level(json: &Value, level: &str) -> BTreeSet<(String, String)> {
    findings(json)
        .iter()
        .filter(|f| f["level"] == level && f["acknowledged"].is_null())
        .map(|f| {
            let place: Vec<&str> = ["schema", "table", "object"]
                .iter()
                .filter_map(|k| f[*k].as_str())
                .collect();
            (f["rule"].as_str().unwrap().to_string(), place.join("."))
        })
        .collect()
}

pub(crate) fn set(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// Migrates, breaks the database with `sql`, and asserts that verify exits 1 with exactly
/// these errors.
#[track_caller]
fn breaks(label: &str, with_lock: bool, sql: &str, errors: &[(&str, &str)]) -> Value {
    let p = migrated(label, with_lock);
    p.db.execute(sql);
    let run = p.migrate(&["verify", "--json"]);
    run.code(1);
    let json = run.json();
    assert_eq!(at_level(&json, "error"), set(errors), "{}", run.stdout);
    for f in findings(&json).iter().filter(|f| f["level"] == "error") {
        assert!(!f["message"].as_str().unwrap().is_empty());
        assert!(!f["remedy"].as_str().unwrap().is_empty());
    }
    let human = p.migrate(&["verify"]);
    human.code(1).stdout_has("ERROR");
    for (rule, _) in errors {
        human.stdout_has(rule);
    }
    json
}

#[test]
fn a_freshly_migrated_database_verifies_clean() {
    let p = migrated("verify_clean", true);
    let run = p.migrate(&["verify", "--json"]);
    run.success();
    let json = run.json();
    assert_eq!(json["errors"], 0);
    assert_eq!(json["drift_compared"], true);
    assert_eq!(json["head"], 59);
    assert_eq!(json["lock_head"], 59);
    assert_eq!(json["acknowledged"], 0);
    // coach.job_queue is service-only on purpose (migrations/README.md).
    assert_eq!(
        at_level(&json, "warning"),
        set(&[("rls_enabled_no_policy", "coach.job_queue.job_queue")])
    );
    p.migrate(&["verify"])
        .success()
        .stdout_has("drift compared")
        .stdout_has("coach.job_queue")
        .stdout_has("0 error(s), 1 warning(s), 0 info, 0 acknowledged");
}

#[test]
fn session_settings_of_the_target_do_not_read_as_drift() {
    // Deparsed text depends on search_path and the output styles; a target whose database
    // sets them differently from the scratch server must still verify clean.
    let p = Project::with_repo_migrations("verify_settings");
    p.write("migrate.toml", HEAD_HOLES);
    p.migration(
        "0060_counsel_trial.sql",
        "-- UP\nALTER TABLE counsel.users
             ADD COLUMN trial interval NOT NULL DEFAULT interval '30 days',
             ADD COLUMN trial_from timestamptz DEFAULT '2024-01-01 00:00+00';
         CREATE INDEX users_trial_from ON counsel.users (trial_from)
             WHERE trial_from > '2024-06-01 00:00+00';
         -- DOWN\nALTER TABLE counsel.users DROP COLUMN trial, DROP COLUMN trial_from;\n",
    );
    lock(&p).success();
    p.migrate(&["up"]).success();
    p.db.execute(
        "DO $$ BEGIN
           EXECUTE format('ALTER DATABASE %I SET search_path = counsel, coach, auth, public',
                          current_database());
           EXECUTE format('ALTER DATABASE %I SET intervalstyle = iso_8601', current_database());
           EXECUTE format('ALTER DATABASE %I SET datestyle = %L', current_database(), 'SQL, DMY');
           EXECUTE format('ALTER DATABASE %I SET timezone = %L', current_database(),
                          'Pacific/Chatham');
         END $$",
    );
    let run = p.migrate(&["verify", "--json"]);
    run.success();
    let json = run.json();
    assert_eq!(at_level(&json, "error"), set(&[]), "{}", run.stdout);
    // No drift only means something if drift was compared. Mutation this catches: verify
    // skipping the comparison (`against_lock` returning before `drift::drift`) — this test
    // passed under it.
    assert_eq!(json["drift_compared"], true, "{}", run.stdout);
    assert_eq!(json["head"], 60);
    assert_eq!(json["lock_head"], 60);
    // And under these settings a real difference is still found.
    p.db.execute("ALTER TABLE counsel.users ALTER COLUMN trial SET DEFAULT interval '31 days'");
    let json = p.migrate(&["verify", "--json"]).code(1).json();
    assert_eq!(
        at_level(&json, "error"),
        set(&[("drift", "counsel.users.trial")]),
        "{json:#}"
    );
}

#[test]
fn disabled_rls_is_an_error() {
    let json = breaks(
        "verify_rls_off",
        true,
        "ALTER TABLE coach.users DISABLE ROW LEVEL SECURITY",
        &[
            ("rls_disabled", "coach.users.users"),
            ("drift", "coach.users.users"),
        ],
    );
    let drift = first(&json, "drift");
    assert_eq!(
        drift["message"],
        "table users differs: rls_enabled: lock `true`, database `false`"
    );
}

#[test]
fn a_dropped_index_is_missing() {
    breaks(
        "verify_drop_index",
        true,
        "DROP INDEX coach.idx_conversations_user_pending_analysis",
        &[(
            "index_missing",
            "coach.conversations.idx_conversations_user_pending_analysis",
        )],
    );
}

#[test]
fn an_invalid_index_is_an_error() {
    breaks(
        "verify_invalid_index",
        true,
        "UPDATE pg_index SET indisvalid = false
         WHERE indexrelid = 'coach.idx_job_queue_pending_analysis'::regclass",
        &[(
            "index_invalid",
            "coach.job_queue.idx_job_queue_pending_analysis",
        )],
    );
}

#[test]
fn a_dropped_policy_is_drift() {
    let json = breaks(
        "verify_drop_policy",
        true,
        r#"DROP POLICY "Users can view their own data" ON coach.users"#,
        &[("drift", "coach.users.Users can view their own data")],
    );
    assert!(findings(&json).iter().any(|f| f["message"]
        == r#"policy "Users can view their own data" is in schema.lock but not in the database"#));
}

#[test]
fn a_using_true_policy_for_authenticated_is_an_error() {
    // Without a lock: the rule alone makes verify fail.
    breaks(
        "verify_always_true",
        false,
        "CREATE POLICY everyone_reads ON partner.partner_messages
         FOR SELECT TO authenticated USING (true)",
        &[(
            "rls_policy_always_true",
            "partner.partner_messages.everyone_reads",
        )],
    );
}

#[test]
fn an_extra_column_is_drift() {
    let json = breaks(
        "verify_extra_column",
        true,
        "ALTER TABLE counsel.users ADD COLUMN nickname text",
        &[("drift", "counsel.users.nickname")],
    );
    assert!(findings(&json)
        .iter()
        .any(|f| f["message"] == "column nickname is in the database but not in schema.lock"));
}

#[test]
fn a_changed_function_body_is_drift() {
    let json = breaks(
        "verify_function_body",
        true,
        "CREATE OR REPLACE FUNCTION coach.update_updated_at_column() RETURNS trigger
         LANGUAGE plpgsql SET search_path = '' AS $$
         BEGIN NEW.updated_at = pg_catalog.now() - interval '1 hour'; RETURN NEW; END $$",
        &[("drift", "coach.update_updated_at_column()")],
    );
    let f = first(&json, "drift");
    assert!(
        f["message"].as_str().unwrap().contains("body changed"),
        "{f}"
    );
}

#[test]
fn a_security_definer_function_without_search_path_is_an_error() {
    breaks(
        "verify_secdef",
        false,
        "CREATE FUNCTION signify.grant_all_xp() RETURNS integer
         LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'",
        // PostgreSQL grants EXECUTE on a new function to PUBLIC: anyone may call it too.
        &[
            ("function_search_path_mutable", "signify.grant_all_xp()"),
            (
                "anon_security_definer_function_executable",
                "signify.grant_all_xp()",
            ),
            (
                "authenticated_security_definer_function_executable",
                "signify.grant_all_xp()",
            ),
        ],
    );
}

#[test]
fn an_unindexed_foreign_key_is_info_unless_the_project_raises_it() {
    // splinter rates it INFO: a cost on deletes, not a hole.
    let p = migrated("verify_unindexed_fk", false);
    p.db.execute(
        "CREATE TABLE wellness.notes (
             id uuid PRIMARY KEY,
             entry_id uuid REFERENCES wellness.wellness_entries (id));
         ALTER TABLE wellness.notes ENABLE ROW LEVEL SECURITY;
         CREATE POLICY notes_none ON wellness.notes TO authenticated USING (false)",
    );
    let run = p.migrate(&["verify", "--json"]);
    run.success();
    let fk = set(&[(
        "unindexed_foreign_keys",
        "wellness.notes.notes_entry_id_fkey",
    )]);
    assert_eq!(at_level(&run.json(), "info"), fk, "{}", run.stdout);
    p.migrate(&["verify"])
        .success()
        .stdout_has("info")
        .stdout_has("CREATE INDEX ON wellness.notes (entry_id)");
    // This repository's migrate.toml raises it: every foreign key here is indexed.
    p.write(
        "migrate.toml",
        &format!("[verify.levels]\nunindexed_foreign_keys = \"error\"\n{HEAD_HOLES}"),
    );
    let run = p.migrate(&["verify", "--json"]);
    run.code(1);
    assert_eq!(at_level(&run.json(), "error"), fk);
}

#[test]
fn an_edited_applied_migration_is_an_error() {
    let p = migrated("verify_edited", true);
    let file = p.migrations().join("0011_coach_policies.sql");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{text}\n-- edited after it was applied\n")).unwrap();
    let run = p.migrate(&["verify", "--json"]);
    run.code(1);
    let json = run.json();
    assert_eq!(
        at_level(&json, "error"),
        set(&[("checksum_mismatch", "migrations/0011_coach_policies.sql")])
    );
    assert!(
        at_level(&json, "warning").contains(&(
            "lock_stale".to_string(),
            "migrations/0011_coach_policies.sql".to_string()
        )),
        "{}",
        run.stdout
    );
    p.remove_migration("0054_counsel_personality_insights.sql");
    let json = p.migrate(&["verify", "--json"]).json();
    assert!(at_level(&json, "error").contains(&(
        "file_missing".to_string(),
        "migrations/0054_counsel_personality_insights.sql".to_string()
    )));
}

#[test]
fn drift_is_skipped_with_a_warning_when_behind() {
    let p = Project::with_repo_migrations("verify_behind");
    p.write("schema.lock", repo_lock());
    p.migrate(&["up", "--to", "12"]).success();
    let run = p.migrate(&["verify", "--json"]);
    run.success();
    let json = run.json();
    assert_eq!(json["drift_compared"], false);
    let skipped = first(&json, "drift");
    assert_eq!(skipped["level"], "warning");
    assert!(
        skipped["message"]
            .as_str()
            .unwrap()
            .contains("20 migration(s) behind schema.lock (head 0012, lock head 0059)"),
        "{skipped}"
    );
}

#[test]
fn lock_is_deterministic_and_check_follows_the_files() {
    let p = Project::with_repo_migrations("lock_check");
    p.migrate(&["check"])
        .code(1)
        .stderr_has("schema.lock does not exist — run `migrate lock`");

    let first = lock(&p);
    first.success();
    let json = first.json();
    assert_eq!(json["changed"], true);
    assert_eq!(json["migrations"], 25);
    let bytes = std::fs::read(p.path().join("schema.lock")).unwrap();
    let again = lock(&p);
    again.success();
    assert_eq!(again.json()["changed"], false);
    assert_eq!(std::fs::read(p.path().join("schema.lock")).unwrap(), bytes);
    assert_eq!(bytes, repo_lock().as_bytes(), "another project, same bytes");
    // The scratch databases are gone.
    let mut admin = postgres::Client::connect(server().admin_url(), postgres::NoTls).unwrap();
    for run in [json, again.json()] {
        let name = run["scratch_database"].as_str().unwrap().to_string();
        assert!(name.starts_with("migrate_lock_"));
        let left: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_database WHERE datname = $1",
                &[&name],
            )
            .unwrap()
            .get(0);
        assert_eq!(left, 0, "{name} was not dropped");
    }
    p.migrate(&["check"])
        .success()
        .stdout_has("schema.lock is current");

    // One character of one migration.
    let file = p.migrations().join("0021_wellness_policies.sql");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{text} ")).unwrap();
    p.migrate(&["check"])
        .code(1)
        .stderr_has("schema.lock is stale — run `migrate lock`")
        .stderr_has("migrations/0021_wellness_policies.sql (edited)");
    p.migration(
        "0060_counsel_extra.sql",
        "-- UP\nSELECT 1;\n-- DOWN\nSELECT 1;\n",
    );
    let check = p.migrate(&["check", "--json"]);
    check.code(1);
    let stale = check.json()["stale"].clone();
    assert_eq!(
        stale,
        serde_json::json!([
            {"file": "migrations/0021_wellness_policies.sql", "change": "edited"},
            {"file": "migrations/0060_counsel_extra.sql", "change": "added"},
        ])
    );
    p.remove_migration("0060_counsel_extra.sql");
    lock(&p).success();
    p.migrate(&["check"]).success();
    assert_ne!(std::fs::read(p.path().join("schema.lock")).unwrap(), bytes);
}

#[test]
fn a_failing_migration_writes_no_lock_and_drops_the_scratch_database() {
    let p = Project::new("lock_fails");
    p.migration(
        "0001_coach_a.sql",
        "-- UP\nCREATE SCHEMA coach;\n-- DOWN\nDROP SCHEMA coach;\n",
    );
    p.migration(
        "0002_coach_b.sql",
        "-- UP\nCREATE TABLE coach.t (id int REFERENCES coach.nowhere (id));\n-- DOWN\n\
         DROP TABLE coach.t;\n",
    );
    let run = lock(&p);
    run.code(1)
        .stderr_has("coach_b failed on the scratch database")
        .stderr_has("at migrations/0002_coach_b.sql")
        .stderr_has("schema.lock was not written");
    assert!(!p.path().join("schema.lock").exists());
    let name = run
        .stderr
        .split_whitespace()
        .find(|w| w.starts_with("migrate_lock_"))
        .expect("the scratch database is named");
    // The whole name, or the count below would be 0 whatever happened.
    assert!(
        name.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "{name}"
    );
    let mut admin = postgres::Client::connect(server().admin_url(), postgres::NoTls).unwrap();
    let left: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            &[&name],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "{name} was not dropped");
}

#[test]
fn an_unwritable_lock_leaves_no_partial_file() {
    let p = Project::new("lock_unwritable");
    p.migration(
        "0001_coach_a.sql",
        "-- UP\nCREATE SCHEMA coach;\n-- DOWN\nDROP SCHEMA coach;\n",
    );
    std::fs::create_dir(p.path().join("schema.lock")).unwrap();
    lock(&p).code(1).stderr_has("writing schema.lock");
    let mut left: Vec<String> = std::fs::read_dir(p.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("schema.lock"))
        .collect();
    left.sort();
    assert_eq!(left, ["schema.lock"]);
}

#[test]
fn a_hand_edited_lock_is_refused() {
    let p = Project::with_repo_migrations("lock_tampered");
    p.write(
        "schema.lock",
        &repo_lock().replacen("rls_enabled = true", "rls_enabled = false", 1),
    );
    p.migrate(&["check"])
        .code(2)
        .stderr_has("schema.lock: the fingerprint does not match");
    p.migrate(&["verify"])
        .code(2)
        .stderr_has("schema.lock: the fingerprint does not match");
    p.write("schema.lock", "fingerprint = 3\n");
    p.migrate(&["check"])
        .code(2)
        .stderr_has("schema.lock is not a valid schema.lock");
    std::fs::write(p.path().join("schema.lock"), b"fingerprint = \"\xff\"\n").unwrap();
    p.migrate(&["check"])
        .code(2)
        .stderr_has("schema.lock is not a valid schema.lock: stream did not contain valid UTF-8")
        .stderr_has("regenerate it with `migrate lock`");
    // A lock written before the schema list was recorded.
    let list = "managed_schemas = [\n    \"coach\",\n    \"counsel\",\n    \"partner\",\n    \
                \"signify\",\n    \"wellness\",\n]\n";
    assert!(repo_lock().contains(list));
    p.write("schema.lock", &repo_lock().replacen(list, "", 1));
    p.migrate(&["check"])
        .code(2)
        .stderr_has("missing field `managed_schemas`")
        .stderr_has("regenerate it with `migrate lock`");
}

#[test]
fn a_lock_made_for_another_schema_list_is_stale_not_drift() {
    let p = migrated("lock_schema_list", true);
    // The same schemas in another order: the same list.
    p.write(
        "migrate.toml",
        &format!(
            "[schemas]\nmanaged = [\"wellness\", \"coach\", \"partner\", \"counsel\", \"signify\"]\n{HEAD_HOLES}"
        ),
    );
    p.migrate(&["check"]).success();
    p.write(
        "migrate.toml",
        &format!(
            "[schemas]\nmanaged = [\"coach\", \"wellness\", \"partner\", \"signify\", \"counsel\", \"auth\"]\n{HEAD_HOLES}"
        ),
    );
    p.migrate(&["check"])
        .code(1)
        .stderr_has("schema.lock is stale — run `migrate lock`")
        .stderr_has("made for managed schemas [coach, counsel, partner, signify, wellness]");
    // auth is not in the lock because the lock was not made for it: not an extra schema.
    let run = p.migrate(&["verify", "--json"]);
    run.success();
    let json = run.json();
    assert_eq!(at_level(&json, "error"), set(&[]), "{}", run.stdout);
    assert_eq!(json["drift_compared"], true);
    let stale = first(&json, "lock_stale");
    assert_eq!(stale["level"], "warning");
    assert!(
        stale["message"]
            .as_str()
            .unwrap()
            .contains("migrate.toml lists [auth, coach, counsel, partner, signify, wellness]"),
        "{stale}"
    );
    // The schemas in both lists are still compared.
    p.db.execute("ALTER TABLE counsel.users ADD COLUMN nickname text");
    let json = p.migrate(&["verify", "--json"]).json();
    assert_eq!(
        at_level(&json, "error"),
        set(&[("drift", "counsel.users.nickname")])
    );
}

#[test]
fn every_other_rule_reports_its_object_at_its_level() {
    let p = migrated("verify_rules", false);
    p.db.execute(
        "CREATE TABLE counsel.scratch (n int);
         ALTER TABLE counsel.scratch ENABLE ROW LEVEL SECURITY;
         CREATE POLICY per_row ON counsel.scratch TO authenticated
             USING (n::text = auth.uid()::text);
         CREATE INDEX scratch_n_a ON counsel.scratch (n);
         CREATE INDEX scratch_n_b ON counsel.scratch (n);
         CREATE MATERIALIZED VIEW counsel.all_users AS SELECT id FROM counsel.users;
         GRANT SELECT ON counsel.all_users TO authenticated;
         CREATE VIEW counsel.user_names AS SELECT id FROM counsel.users;
         GRANT SELECT ON counsel.user_names TO anon;
         CREATE FUNCTION counsel.helper() RETURNS int LANGUAGE sql AS 'SELECT 1';
         CREATE PROCEDURE counsel.tidy() LANGUAGE sql AS 'SELECT 1';
         CREATE AGGREGATE counsel.total(int) (sfunc = int4pl, stype = int);",
    );
    let run = p.migrate(&["verify", "--json"]);
    run.code(1);
    let json = run.json();
    assert_eq!(
        at_level(&json, "error"),
        set(&[("security_definer_view", "counsel.user_names.user_names")])
    );
    let warnings = at_level(&json, "warning");
    for expected in [
        ("no_primary_key", "counsel.scratch.scratch"),
        ("auth_rls_initplan", "counsel.scratch.per_row"),
        ("duplicate_index", "counsel.scratch.scratch_n_a"),
        ("materialized_view_in_api", "counsel.all_users.all_users"),
        ("function_search_path_mutable", "counsel.helper()"),
        ("function_search_path_mutable", "counsel.tidy()"),
        ("drift", "schema.lock"),
    ] {
        assert!(
            warnings.contains(&(expected.0.to_string(), expected.1.to_string())),
            "{expected:?} missing from {warnings:?}"
        );
    }
    // An aggregate cannot take SET search_path: nothing to report.
    assert!(
        !findings(&json)
            .iter()
            .any(|f| f["object"] == "total(integer)"),
        "{}",
        run.stdout
    );
    let remedy = |object: &str| {
        findings(&json)
            .iter()
            .find(|f| f["object"] == object)
            .map(|f| f["remedy"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert!(remedy("helper()").starts_with("ALTER FUNCTION counsel.helper() SET search_path = ''"));
    assert!(remedy("tidy()").starts_with("ALTER PROCEDURE counsel.tidy() SET search_path = ''"));
    let initplan = first(&json, "auth_rls_initplan");
    assert_eq!(
        initplan["message"],
        "policy \"per_row\" calls auth.uid() once per row"
    );
}

#[test]
fn an_interrupted_lock_drops_its_scratch_database_and_writes_nothing() {
    let p = Project::new("lock_interrupted");
    p.migration(
        "0001_coach_slow.sql",
        "-- UP\nselect pg_sleep(300);\n-- DOWN\nselect 1;\n",
    );
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_migrate"))
        .args(["lock", "--scratch-url", server().admin_url()])
        .current_dir(p.path())
        .env_remove("DATABASE_URL")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pattern = format!("migrate_lock_{}_%", child.id());
    let mut admin = postgres::Client::connect(server().admin_url(), postgres::NoTls).unwrap();
    let scratch_exists = |admin: &mut postgres::Client| -> bool {
        admin
            .query_one(
                "SELECT EXISTS (SELECT FROM pg_database WHERE datname LIKE $1)",
                &[&pattern],
            )
            .unwrap()
            .get(0)
    };
    // Wait until the migration runs on the scratch database, then interrupt.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let running = |admin: &mut postgres::Client| -> bool {
        admin
            .query_one(
                "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE datname LIKE $1 AND query LIKE '%pg_sleep%')",
                &[&pattern],
            )
            .unwrap()
            .get(0)
    };
    while !running(&mut admin) {
        assert!(
            std::time::Instant::now() < deadline,
            "lock never reached its migration"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // SAFETY: sends SIGINT to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // 128 + SIGINT, as for every interrupted command.
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted by SIGINT; schema.lock was not written"),
        "{stderr}"
    );
    assert!(
        !scratch_exists(&mut admin),
        "the scratch database was dropped"
    );
    assert!(!p.path().join("schema.lock").exists());
}
