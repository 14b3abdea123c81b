//! The runner tells the truth whatever the SQL does (README, "Truth under faults"): session
//! state, transaction control, COPY, failed CONCURRENTLY builds, warnings, kills, lost
//! connections, errors inside PL/pgSQL, and input that would otherwise be silently ignored.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{server, Project};

/// A role of this test's own (roles are cluster-wide), which may do nothing.
fn powerless_role(p: &Project, label: &str) -> String {
    let role = format!("powerless_{label}_{}", std::process::id());
    p.db.execute(&format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') \
         THEN CREATE ROLE {role} NOLOGIN; END IF; END $$"
    ));
    role
}

fn table_schema(p: &Project, table: &str) -> Option<String> {
    p.db.client()
        .query_opt(
            "SELECT table_schema::text FROM information_schema.tables WHERE table_name = $1",
            &[&table],
        )
        .unwrap()
        .map(|r| r.get(0))
}

fn dirty(p: &Project, version: i64) -> Option<bool> {
    p.db.client()
        .query_opt(
            "SELECT dirty FROM _migrate.schema_migrations WHERE version = $1",
            &[&version],
        )
        .unwrap()
        .map(|r| r.get(0))
}

/// Mutation this catches: dropping the session reset between migrations (`reset_session`).
#[test]
fn every_migration_starts_from_the_connections_session_state() {
    let p = Project::new("session_state");
    let role = powerless_role(&p, "ss");
    p.migration(
        "0001_coach_app.sql",
        "-- UP\ncreate schema app;\nset search_path to app, public;\n-- DOWN\ndrop schema app;\n",
    );
    p.migration(
        "0002_coach_t.sql",
        "-- UP\ncreate table coach_t (x int);\ncreate temp table scratch (x int);\n-- DOWN\ndrop table coach_t;\n",
    );
    p.migration(
        "0003_coach_role.sql",
        &format!(
            "-- UP\ncreate temp table scratch (x int);\nset role {role};\n-- DOWN\nselect 1;\n"
        ),
    );
    p.migration(
        "0004_coach_none.sql",
        &format!("-- transaction: none\n-- UP\nset role {role};\nselect 1;\n-- DOWN\nselect 1;\n"),
    );
    p.migration(
        "0005_coach_after.sql",
        "-- UP\ncreate table coach_after (x int);\n-- DOWN\ndrop table coach_after;\n",
    );
    p.migrate(&["up"]).success();
    // In one run as in five: 0001's search_path does not reach 0002.
    assert_eq!(table_schema(&p, "coach_t").as_deref(), Some("public"));
    assert_eq!(table_schema(&p, "coach_after").as_deref(), Some("public"));
    // The tracking rows were written as the connecting role, not the role 0003/0004 set.
    let by: Vec<String> =
        p.db.client()
            .query(
                "SELECT DISTINCT applied_by FROM _migrate.schema_migrations",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
    let me: String = p.db.scalar("SELECT current_user::text");
    assert_eq!(by, vec![me]);
    assert_eq!(dirty(&p, 4), Some(false));
    // Down runs as the connecting role too, whatever the migrations set.
    p.migrate(&["down", "--all"]).success();
    assert!(p.applied().is_empty());
}

/// Mutation this catches: ignoring `[session]` in migrate.toml.
#[test]
fn migrate_toml_session_settings_reach_every_migration() {
    let p = Project::new("session_settings");
    p.write(
        "migrate.toml",
        "[session]\nsearch_path = \"extensions, public\"\n",
    );
    p.migration(
        "0001_platform_ext.sql",
        "-- UP\ncreate schema if not exists extensions;\n-- DOWN\ndrop schema extensions;\n",
    );
    p.migration(
        "0002_coach_t.sql",
        "-- UP\nset search_path to public;\ncreate table coach_first (x int);\n-- DOWN\ndrop table coach_first;\n",
    );
    p.migration(
        "0003_coach_u.sql",
        "-- transaction: none\n-- UP\ncreate table coach_second (x int);\n-- DOWN\ndrop table coach_second;\n",
    );
    p.migration(
        "0004_coach_v.sql",
        "-- UP\ncreate table coach_third (x int);\n-- DOWN\ndrop table coach_third;\n",
    );
    p.migrate(&["up"]).success();
    assert_eq!(table_schema(&p, "coach_first").as_deref(), Some("public"));
    assert_eq!(
        table_schema(&p, "coach_second").as_deref(),
        Some("extensions")
    );
    assert_eq!(
        table_schema(&p, "coach_third").as_deref(),
        Some("extensions")
    );
    // A setting the server rejects names migrate.toml and applies nothing.
    p.write("migrate.toml", "[session]\nwork_mem = \"lots\"\n");
    p.migration(
        "0005_coach_w.sql",
        "-- UP\ncreate table coach_w (x int);\n-- DOWN\ndrop table coach_w;\n",
    );
    p.migrate(&["up"])
        .code(1)
        .stderr_has("migrate.toml")
        .stderr_has("work_mem");
    assert_eq!(table_schema(&p, "coach_w"), None);
    // A bad setting name is a configuration error before anything connects.
    p.write("migrate.toml", "[session]\n\"role\" = \"postgres\"\n");
    p.migrate(&["up"]).code(2).stderr_has("role");
    // So is one that changes how migrate must split the files into statements.
    p.write(
        "migrate.toml",
        "[session]\nstandard_conforming_strings = \"off\"\n",
    );
    p.migrate(&["up"])
        .code(2)
        .stderr_has("standard_conforming_strings")
        .stderr_has("splits migration files");
    // A transaction's own characteristics, and migrate's marks, neither (attacker finding:
    // `transaction_isolation` was refused as a role, `transaction_deferrable` failed the
    // first migration with advice to run it outside a transaction, `migrate.flight` was
    // taken).
    for (name, says) in [
        ("transaction_isolation", "SET TRANSACTION"),
        ("transaction_deferrable", "SET TRANSACTION"),
        ("migrate.flight", "migrate's own"),
        ("Migrate.in_migration", "migrate's own"),
        ("client_encoding", "UTF-8"),
        ("client_min_messages", "warnings reach it"),
    ] {
        p.write("migrate.toml", &format!("[session]\n\"{name}\" = \"on\"\n"));
        p.migrate(&["up"]).code(2).stderr_has(name).stderr_has(says);
    }
    // Nor a search_path that puts migrate's state first (attacker finding: the next
    // migration's `CREATE TABLE` and `DROP TABLE seed_runs` went to `_migrate`).
    p.write(
        "migrate.toml",
        "[session]\nsearch_path = \"_Migrate, public\"\n",
    );
    p.migrate(&["up"])
        .code(2)
        .stderr_has("cannot name `_migrate`");
}

/// Mutation this catches: dropping the transaction-control check of `migrations::parse`.
#[test]
fn transaction_control_in_a_file_is_refused_before_anything_runs() {
    for (body, word, line) in [
        (
            "begin;\ncreate table accounts (x int);\ncommit;\nselect 1/0;\n",
            "BEGIN",
            2,
        ),
        ("create table accounts (x int);\n  COMMIT ;\n", "COMMIT", 3),
        ("create table accounts (x int);\nend;\n", "END", 3),
        (
            "start transaction;\ncreate table accounts (x int);\n",
            "START TRANSACTION",
            2,
        ),
        (
            "create table accounts (x int);\n/* c */ rollback;\n",
            "ROLLBACK",
            3,
        ),
        (
            "create table accounts (x int);\nprepare transaction 'x';\n",
            "PREPARE TRANSACTION",
            3,
        ),
    ] {
        let p = Project::new("tx_control");
        p.migration(
            "0001_coach_ok.sql",
            "-- UP\ncreate table coach_ok (x int);\n-- DOWN\ndrop table coach_ok;\n",
        );
        p.migration(
            "0002_coach_tx.sql",
            &format!("-- UP\n{body}-- DOWN\ndrop table accounts;\n"),
        );
        for args in [&["up"][..], &["up", "--atomic"], &["check"]] {
            p.migrate(args)
                .code(2)
                .stderr_has(&format!("0002_coach_tx.sql:{line}"))
                .stderr_has(&format!("`{word}`"));
        }
        assert!(p.applied().is_empty(), "{body}");
        assert_eq!(table_schema(&p, "accounts"), None);
        assert_eq!(table_schema(&p, "coach_ok"), None);
    }
    // Savepoints, and BEGIN ATOMIC bodies, are not transaction control.
    let p = Project::new("tx_savepoint");
    p.migration(
        "0001_coach_sp.sql",
        "-- UP\ncreate table coach_sp (x int);\nsavepoint a;\ninsert into coach_sp values (1);\nrollback to savepoint a;\nrelease savepoint a;\n\
         create function coach_one() returns int language sql\nbegin atomic\n  select 1;\nend;\n\
         -- DOWN\ndrop function coach_one();\ndrop table coach_sp;\n",
    );
    p.migrate(&["up"]).success();
    let rows: i64 = p.db.scalar("SELECT count(*) FROM coach_sp");
    assert_eq!(rows, 0);
    let one: i32 = p.db.scalar("SELECT coach_one()");
    assert_eq!(one, 1);
    p.migrate(&["down"]).success();
}

/// A COPY migration (sent statement by statement) that turns standard strings off under a
/// name the file check cannot read, so that `hidden` runs where the check sees a string; then
/// a table, and a statement that fails.
pub(crate) fn hidden_after_copy(hidden: &str) -> String {
    format!(
        "-- UP\ncreate table coach_a (i int);\ncopy coach_a from stdin;\n1\n\\.\n\
         select set_config(name, 'off', false) from pg_settings \
         where name like 'standard%conforming%';\n\
         select 'a\\''; {hidden} --';\ncreate table coach_b (i int);\nselect 1/0;\n\
         -- DOWN\ndrop table coach_b;\ndrop table coach_a;\n"
    )
}

/// Statements PostgreSQL runs that the file check did not see as statements (it split the
/// text otherwise) may have ended the transaction, so a failure after them is not called
/// rolled back. Mutation this catches: not counting the statements each message completed.
#[test]
fn statements_the_check_did_not_see_make_a_failure_dirty() {
    let p = Project::new("unseen_statements");
    p.migration("0001_coach_a.sql", &hidden_after_copy("select 2;"));
    p.migrate(&["up"])
        .code(1)
        .stderr_has("division by zero")
        .stderr_has("PostgreSQL split it into more statements")
        .stderr_has("marked dirty");
    assert_eq!(dirty(&p, 1), Some(true));
}

/// A `COMMIT` and `BEGIN` hidden from the file check (here by turning standard strings off
/// with a name the check cannot read, in a COPY migration, which goes statement by
/// statement) commit part of the migration, and the statement that then fails aborts the
/// migration's own transaction, where nothing can be asked. `ROLLBACK AND CHAIN` tells it
/// from migrate's (`DEFERRABLE`). Mutation this catches: taking "cannot ask" for "still in
/// migrate's transaction" (it said "rolled back: nothing of it was applied" while `coach_a`
/// and its row were committed; attacker finding).
#[test]
fn a_hidden_commit_and_begin_leave_the_migration_dirty_not_rolled_back() {
    let file = hidden_after_copy("commit; begin;");
    for args in [&["up"][..], &["up", "--atomic"]] {
        let p = Project::new("hidden_commit_begin");
        p.migration("0001_coach_a.sql", &file);
        p.migrate(args)
            .code(1)
            .stderr_has("division by zero")
            .stderr_has(" NOT ")
            .stderr_has("marked dirty");
        assert_eq!(dirty(&p, 1), Some(true), "{args:?}");
        let rows: i64 = p.db.scalar("SELECT count(*) FROM coach_a");
        assert_eq!(rows, 1, "the part before the hidden COMMIT stays committed");
        assert_eq!(table_schema(&p, "coach_b"), None, "{args:?}");
    }
}

/// A `ROLLBACK AND CHAIN` hidden from the file check undoes what ran before it and begins a
/// transaction with migrate's characteristics (`DEFERRABLE`); what follows then succeeds.
/// Half of the migration is gone: it must not be recorded as applied. Mutation this catches
/// (attacker finding): `transaction_deferrable` taken as proof that the transaction is
/// migrate's own (it was recorded applied, without `coach_a` or its row). A hidden `COMMIT
/// AND CHAIN` loses nothing and stays applied.
#[test]
fn a_hidden_rollback_and_chain_is_not_recorded_as_applied() {
    let file = |hidden: &str| {
        format!(
            "-- UP\ncreate table coach_a (i int);\ncopy coach_a from stdin;\n1\n\\.\n\
             select set_config(name, 'off', false) from pg_settings \
             where name like 'standard%conforming%';\n\
             select 'a\\''; {hidden} --';\ncreate table coach_b (i int);\n\
             -- DOWN\ndrop table coach_b;\ndrop table coach_a;\n"
        )
    };
    let p = Project::new("hidden_rollback_chain");
    p.migration("0001_coach_a.sql", &file("rollback and chain;"));
    p.migrate(&["up"])
        .code(1)
        .stderr_has("ended the transaction")
        .stderr_has("marked dirty");
    assert_eq!(dirty(&p, 1), Some(true));
    assert_eq!(
        table_schema(&p, "coach_a"),
        None,
        "undone by the hidden ROLLBACK"
    );
    let q = Project::new("hidden_commit_chain");
    q.migration("0001_coach_a.sql", &file("commit and chain;"));
    q.migrate(&["up"]).success();
    assert_eq!(dirty(&q, 1), Some(false));
    assert_eq!(table_schema(&q, "coach_b"), Some("public".into()));
}

/// The server's warnings reach migrate whatever the database's `client_min_messages` says
/// (the resets keep it at `notice`; migrate filters on its side). Mutation this catches
/// (attacker finding): `ALTER DATABASE ... SET client_min_messages = error` made every
/// warning vanish from stderr, `--json` and `_migrate.history`, exit 0.
#[test]
fn warnings_arrive_whatever_the_database_default_for_client_messages() {
    let p = Project::new("warnings_min_messages");
    p.db.execute(&format!(
        "ALTER DATABASE \"{}\" SET client_min_messages = error",
        p.db.name()
    ));
    for v in [1, 2] {
        p.migration(
            &format!("000{v}_coach_w{v}.sql"),
            &format!(
                "-- UP\ndo $$ begin raise warning 'orphaned rows: {v}'; end $$;\n\
                 -- DOWN\nselect 1;\n"
            ),
        );
    }
    let json = p.migrate(&["up", "--json"]).success().json();
    for (i, v) in [1, 2].iter().enumerate() {
        assert_eq!(
            json["steps"][i]["warnings"][0]["message"],
            format!("orphaned rows: {v}"),
            "{json}"
        );
    }
}

/// 0001 a parent table; 0002 a child row whose deferred foreign key fails at COMMIT.
fn child_failing_at_commit(p: &Project) {
    p.migration(
        "0001_coach_parent.sql",
        "-- UP\ncreate table coach_parent (id int primary key);\n-- DOWN\ndrop table coach_parent;\n",
    );
    p.migration(
        "0002_coach_child.sql",
        "-- UP\ncreate table coach_child (parent int references coach_parent \
         deferrable initially deferred);\ninsert into coach_child values (42);\n\
         -- DOWN\ndrop table coach_child;\n",
    );
}

/// An `--atomic` run whose COMMIT fails (a deferred constraint) is a failure like any other:
/// named at its last migration, "at COMMIT", rolled back, in the history. Mutation this
/// catches (attacker finding): a bare `error: committing the --atomic run`, no report, no
/// history row.
#[test]
fn an_atomic_run_failing_at_commit_is_reported_and_rolled_back() {
    let p = Project::new("atomic_commit_fails");
    child_failing_at_commit(&p);
    let json = p.migrate(&["up", "--atomic", "--json"]).code(1).json();
    assert_eq!(json["failure"]["version"], 2, "{json}");
    assert_eq!(json["failure"]["rolled_back"], true, "{json}");
    assert!(
        json["failure"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("at COMMIT"),
        "{json}"
    );
    assert!(p.applied().is_empty());
    assert_eq!(table_schema(&p, "coach_parent"), None);
    let history: i64 =
        p.db.scalar("SELECT count(*) FROM _migrate.history WHERE version = 2 AND NOT success");
    assert_eq!(history, 1, "{json}");
}

/// Mutation this catches: sending COPY rows as SQL (the pre-fix "connection closed").
#[test]
fn copy_from_stdin_blocks_load_in_both_modes() {
    let p = Project::new("copy");
    let copy = "COPY public.coach_people (id, name, tags) FROM stdin;\n1\tO'Brien\t{a,b}\n2\t\\N\t{}\n3\t-- DOWN\t\\N\n\\.\n";
    p.migration(
        "0001_coach_people.sql",
        &format!(
            "-- UP\ncreate table coach_people (id int primary key, name text, tags text[]);\n{copy}-- DOWN\ndrop table coach_people;\n"
        ),
    );
    p.migration(
        "0002_coach_more.sql",
        "-- transaction: none\n-- UP\ncreate table coach_more (id int);\nCOPY coach_more FROM STDIN WITH (FORMAT csv);\n10\n11\n\\.\ninsert into coach_more values (12);\n-- DOWN\ndrop table coach_more;\n",
    );
    p.migrate(&["up"]).success();
    let names: Vec<Option<String>> =
        p.db.client()
            .query("SELECT name FROM coach_people ORDER BY id", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
    assert_eq!(
        names,
        vec![Some("O'Brien".into()), None, Some("-- DOWN".into())]
    );
    let more: i64 = p.db.scalar("SELECT sum(id) FROM coach_more");
    assert_eq!(more, 33);
    assert_eq!(dirty(&p, 2), Some(false));

    // A row the table refuses names the file; nothing of that migration stays.
    p.migration(
        "0003_coach_bad.sql",
        "-- UP\ncreate table coach_bad (id int);\nCOPY coach_bad FROM stdin;\n1\nnot a number\n\\.\n-- DOWN\ndrop table coach_bad;\n",
    );
    // The bad row is line 5 of the file, not the COPY statement's line 3 (mutation this
    // catches: `copy_row_line` dropped).
    p.migrate(&["up"])
        .code(1)
        .stderr_has("0003_coach_bad.sql:5")
        .stderr_has("invalid input syntax");
    assert_eq!(table_schema(&p, "coach_bad"), None);
    assert_eq!(p.applied(), vec![1, 2]);
}

/// Mutation this catches: letting a backslash line through to the server.
#[test]
fn psql_meta_commands_are_input_errors() {
    for (body, command, line) in [
        ("\\i other.sql\n", "\\i", 2),
        ("select 1;\n\\set ON_ERROR_STOP on\n", "\\set", 3),
        (
            "\\restrict AbCdEf\ncreate table t (x int);\n",
            "\\restrict",
            2,
        ),
        ("select 1 \\gset\n", "\\gset", 2),
        ("COPY t FROM stdin;\n1\n", "", 2),
    ] {
        let p = Project::new("meta");
        p.migration(
            "0001_coach_meta.sql",
            &format!("-- UP\n{body}-- DOWN\nselect 1;\n"),
        );
        let run = p.migrate(&["check"]);
        run.code(2)
            .stderr_has(&format!("0001_coach_meta.sql:{line}"));
        if command.is_empty() {
            run.stderr_has("\\.");
        } else {
            run.stderr_has(&format!("`{command}")).stderr_has("psql");
        }
        p.migrate(&["up"]).code(2);
        assert!(p.applied().is_empty());
    }
}

/// Mutation this catches: reporting a failed first CONCURRENTLY statement as rolled back.
#[test]
fn a_failed_concurrent_index_build_is_dirty_never_rolled_back() {
    let p = Project::new("concurrently");
    p.migration(
        "0001_coach_dups.sql",
        "-- UP\ncreate table coach_dups (x int);\ninsert into coach_dups values (1), (1);\n-- DOWN\ndrop table coach_dups;\n",
    );
    p.migration(
        "0002_coach_unique.sql",
        "-- transaction: none\n-- UP\ncreate unique index concurrently coach_dups_x on coach_dups (x);\n-- DOWN\ndrop index concurrently coach_dups_x;\n",
    );
    let json = p.migrate(&["up", "--json"]).code(1).json();
    let failure = &json["failure"];
    assert_eq!(failure["dirty"], true, "{json}");
    assert_eq!(failure["rolled_back"], false, "{json}");
    assert!(failure["state"].as_str().unwrap().contains("INVALID index"));
    // PostgreSQL left the INVALID index behind, and the status says dirty.
    let invalid: bool = p
        .db
        .scalar("SELECT NOT indisvalid FROM pg_index WHERE indexrelid = 'coach_dups_x'::regclass");
    assert!(invalid);
    assert_eq!(dirty(&p, 2), Some(true));
    p.migrate(&["up"]).code(1).stderr_has("dirty");
    // A first statement that PostgreSQL rolls back by itself is not dirty.
    let q = Project::new("first_fails");
    q.migration(
        "0001_coach_x.sql",
        "-- transaction: none\n-- UP\ncreate table coach_x (x int, x int);\ncreate table coach_y (y int);\n-- DOWN\nselect 1;\n",
    );
    let json = q.migrate(&["up", "--json"]).code(1).json();
    assert_eq!(json["failure"]["dirty"], false);
    assert_eq!(json["failure"]["rolled_back"], true);
    assert!(q.applied().is_empty());
}

/// Mutation this catches: dropping the notice forwarding of `db::session::drive`.
#[test]
fn server_warnings_are_shown_kept_and_in_json() {
    let p = Project::new("warnings");
    p.migration(
        "0001_coach_warn.sql",
        "-- UP\ndo $$ begin raise warning 'orphaned rows: %', 3; raise notice 'just so you know'; end $$;\n-- DOWN\ndo $$ begin raise warning 'going down'; end $$;\n",
    );
    let run = p.migrate(&["up", "--json"]);
    run.success().stderr_has("WARNING: orphaned rows: 3");
    assert!(!run.stderr.contains("just so you know"));
    let json = run.json();
    assert_eq!(
        json["steps"][0]["warnings"][0]["message"],
        "orphaned rows: 3"
    );
    let kept: Vec<String> =
        p.db.scalar("SELECT warnings FROM _migrate.history WHERE version = 1 AND direction = 'up'");
    assert_eq!(kept, vec!["WARNING: orphaned rows: 3".to_string()]);
    // --verbose adds NOTICEs.
    p.migrate(&["down", "--verbose"])
        .success()
        .stderr_has("WARNING: going down");
    p.migrate(&["up", "--verbose"])
        .success()
        .stderr_has("NOTICE: just so you know");
}

/// Mutation this catches: recording the `transaction: none` dirty mark only after an error.
#[test]
fn kill_9_during_a_non_transactional_migration_leaves_it_dirty() {
    for direction in ["up", "down"] {
        let p = Project::new("kill9");
        p.migration(
            "0001_coach_slow.sql",
            "-- transaction: none\n-- UP\ncreate table coach_a (x int);\nselect pg_sleep(60) /* up */;\ncreate table coach_b (x int);\n\
             -- DOWN\ndrop table coach_a;\nselect pg_sleep(60) /* down */;\ndrop table if exists coach_b;\n",
        );
        if direction == "down" {
            // Applied quickly first: the UP's sleep is cut short by the test.
            let mut child = spawn(&p, &["up"]);
            wait_for_query(&p, "/* up */");
            cancel_query(&p, "/* up */");
            let _ = child.wait();
            p.migrate(&["repair", "1"]).success();
            assert_eq!(dirty(&p, 1), Some(false));
        }
        let args: &[&str] = if direction == "up" {
            &["up"]
        } else {
            &["down", "--all"]
        };
        let mut child = spawn(&p, args);
        wait_for_query(&p, &format!("/* {direction} */"));
        child.kill().unwrap(); // SIGKILL: no handler, no cleanup
        let _ = child.wait();
        terminate_query(&p, &format!("/* {direction} */"));
        assert_eq!(dirty(&p, 1), Some(true), "{direction}");
        p.migrate(&["status"]).success().stdout_has("DIRTY");
        p.migrate(&["up"]).code(1).stderr_has("dirty");
    }
    // A transactional migration killed mid-way leaves nothing at all.
    let p = Project::new("kill9_tx");
    p.migration(
        "0001_coach_tx.sql",
        "-- UP\ncreate table coach_a (x int);\nselect pg_sleep(60) /* tx */;\n-- DOWN\ndrop table coach_a;\n",
    );
    let mut child = spawn(&p, &["up"]);
    wait_for_query(&p, "/* tx */");
    child.kill().unwrap();
    let _ = child.wait();
    terminate_query(&p, "/* tx */");
    assert!(p.applied().is_empty());
    assert_eq!(table_schema(&p, "coach_a"), None);
}

/// Mutation this catches: printing only "connection closed" when the session dies.
#[test]
fn a_lost_connection_names_the_migration_and_what_became_of_it() {
    let p = Project::new("lost");
    p.migration(
        "0001_coach_ok.sql",
        "-- UP\ncreate table coach_ok (x int);\n-- DOWN\ndrop table coach_ok;\n",
    );
    p.migration(
        "0002_coach_slow.sql",
        "-- UP\ncreate table coach_slow (x int);\nselect pg_sleep(60) /* lost */;\n-- DOWN\ndrop table coach_slow;\n",
    );
    let child = spawn(&p, &["up"]);
    wait_for_query(&p, "/* lost */");
    terminate_query(&p, "/* lost */");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("0002_coach_slow.sql"), "{stderr}");
    assert!(stderr.contains("administrator command"), "{stderr}");
    assert!(stderr.contains("rolled it back"), "{stderr}");
    assert_eq!(p.applied(), vec![1]);
    assert_eq!(table_schema(&p, "coach_slow"), None);

    // Outside a transaction: dirty, and said so.
    let q = Project::new("lost_none");
    q.migration(
        "0001_coach_slow.sql",
        "-- transaction: none\n-- UP\ncreate table coach_a (x int);\nselect pg_sleep(60) /* lost2 */;\n-- DOWN\nselect 1;\n",
    );
    let child = spawn(&q, &["up"]);
    wait_for_query(&q, "/* lost2 */");
    terminate_query(&q, "/* lost2 */");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("dirty"), "{stderr}");
    assert_eq!(dirty(&q, 1), Some(true));
}

/// Mutation this catches: dropping the PL/pgSQL context translation in `error_line`.
#[test]
fn errors_inside_do_blocks_and_function_bodies_name_the_file_line() {
    let p = Project::new("do_line");
    p.migration(
        "0001_coach_do.sql",
        "-- a header\n-- UP\ncreate table coach_t (x int);\n\ndo $$\nbegin\n  perform 1;\n  raise exception 'boom in block';\nend\n$$;\n-- DOWN\ndrop table coach_t;\n",
    );
    p.migrate(&["up"])
        .code(1)
        .stderr_has("0001_coach_do.sql:8")
        .stderr_has("boom in block");
    let q = Project::new("fn_line");
    q.migration(
        "0001_coach_fn.sql",
        "-- UP\ncreate function coach_f() returns void language plpgsql as $body$\nbegin\n  perform 1;\n  raise exception 'boom in function';\nend\n$body$;\n\nselect coach_f();\n-- DOWN\ndrop function coach_f();\n",
    );
    q.migrate(&["up"])
        .code(1)
        .stderr_has("0001_coach_fn.sql:5")
        .stderr_has("boom in function");
    // Overloads: the one PostgreSQL ran is told by its arguments (mutation this catches:
    // `defining_statement` taking the first function of the name, line 4, or the last, line 14).
    let r = Project::new("overload_line");
    r.migration(
        "0001_coach_fn.sql",
        "-- UP\ncreate function coach_f(a int) returns void language plpgsql as $b$\nbegin\n  perform 1;\nend\n$b$;\n\
         create function coach_f(a int, b int, out c text) returns text language plpgsql as $b$\nbegin\n  raise exception 'boom in overload';\nend\n$b$;\n\
         create function coach_f(a text, b text, c text) returns void language plpgsql as $b$\nbegin\n  perform 3;\nend\n$b$;\n\
         select coach_f(1, 2);\n-- DOWN\nselect 1;\n",
    );
    r.migrate(&["up"])
        .code(1)
        .stderr_has("0001_coach_fn.sql:9")
        .stderr_has("boom in overload");
    // Same number of arguments: told by their types, aliases read as PostgreSQL writes them
    // (mutation this catches: matching by number alone, which took the last one, line 10).
    let t = Project::new("overload_types");
    t.migration(
        "0001_coach_fn.sql",
        "-- UP\ncreate function coach_g(x varchar) returns int language plpgsql as $b$\nbegin\n  perform 1;\n  raise exception 'boom in varchar';\nend\n$b$;\n\
         create function coach_g(x text) returns int language plpgsql as $b$\nbegin\n  raise exception 'not this one';\nend\n$b$;\n\
         select coach_g('a'::varchar);\n-- DOWN\nselect 1;\n",
    );
    t.migrate(&["up"])
        .code(1)
        .stderr_has("0001_coach_fn.sql:5")
        .stderr_has("boom in varchar");
    // The same name in two schemas: told by the schema PostgreSQL names (mutation this
    // catches: the schema ignored, which took the last one, line 10; attacker finding).
    let u = Project::new("overload_schemas");
    u.db.execute("CREATE SCHEMA coach; CREATE SCHEMA wellness;");
    u.migration(
        "0001_coach_fn.sql",
        "-- UP\ncreate function coach.touch() returns int language plpgsql as $b$\nbegin\n  perform 1;\n  raise exception 'boom in coach';\nend\n$b$;\n\
         create function wellness.touch() returns int language plpgsql as $b$\nbegin\n  raise exception 'not this one';\nend\n$b$;\n\
         select coach.touch();\n-- DOWN\nselect 1;\n",
    );
    u.migrate(&["up"])
        .code(1)
        .stderr_has("0001_coach_fn.sql:5")
        .stderr_has("boom in coach");
}

/// Mutation this catches: `discover` skipping what is not a readable `*.sql` file again.
#[test]
fn nothing_in_the_migrations_directory_is_silently_skipped() {
    type Case = (&'static str, Box<dyn Fn(&Project)>, &'static str);
    let cases: Vec<Case> = vec![
        (
            "block comment before UP",
            Box::new(|p: &Project| {
                p.migration(
                    "0002_coach_x.sql",
                    "/* note */ create table coach_x (x int);\n-- UP\nselect 1;\n-- DOWN\n",
                );
            }),
            "0002_coach_x.sql:1",
        ),
        (
            "uppercase extension",
            Box::new(|p: &Project| {
                p.migration("0002_coach_x.SQL", "-- UP\nselect 1;\n-- DOWN\n");
            }),
            "0002_coach_x.SQL",
        ),
        (
            "dangling symlink",
            Box::new(|p: &Project| {
                std::os::unix::fs::symlink(
                    p.path().join("nowhere.sql"),
                    p.migrations().join("0002_coach_x.sql"),
                )
                .unwrap();
            }),
            "0002_coach_x.sql",
        ),
        (
            "directory",
            Box::new(|p: &Project| {
                std::fs::create_dir(p.migrations().join("0002_coach_x.sql")).unwrap();
            }),
            "directory",
        ),
        (
            "fifo",
            Box::new(|p: &Project| {
                let path = p.migrations().join("0002_coach_x.sql");
                let ok = Command::new("mkfifo").arg(&path).status().unwrap();
                assert!(ok.success());
            }),
            "not a regular file",
        ),
        (
            "backup copy",
            Box::new(|p: &Project| {
                p.migration("0002_coach_x.sql.orig", "-- UP\nselect 1;\n-- DOWN\n");
            }),
            "0002_coach_x.sql.orig",
        ),
        (
            "NUL byte",
            Box::new(|p: &Project| {
                p.migration(
                    "0002_coach_x.sql",
                    "-- UP\nselect 1;\nselect '\0';\n-- DOWN\n",
                );
            }),
            "0002_coach_x.sql:3",
        ),
    ];
    for (what, make, expected) in cases {
        let p = Project::new("skipped");
        p.migration(
            "0001_coach_ok.sql",
            "-- UP\ncreate table coach_ok (x int);\n-- DOWN\ndrop table coach_ok;\n",
        );
        p.write("migrations/README.md", "notes are fine\n");
        make(&p);
        for args in [&["up"][..], &["check"], &["status"]] {
            p.migrate(args).code(2).stderr_has(expected);
        }
        assert!(p.applied().is_empty(), "{what}");
    }
}

// --- helpers for runs the test interrupts ---------------------------------------------

/// Starts `migrate ARGS --database-url <the project's database>` without waiting for it.
pub fn spawn(p: &Project, args: &[&str]) -> Child {
    spawn_at(p, &p.db.url, args)
}

/// `spawn` against the database at `url` (a proxy or pooler in front of the test server).
pub fn spawn_at(p: &Project, url: &str, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_migrate"))
        .args(args)
        .args(["--database-url", url])
        .current_dir(p.path())
        .env_remove("DATABASE_URL")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn migrate")
}

/// Waits until a statement containing `marker` is running in the test's database.
pub fn wait_for_query(p: &Project, marker: &str) {
    let started = Instant::now();
    let mut client = server_client(p);
    loop {
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND datname = current_database() AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()",
                &[&marker],
            )
            .unwrap()
            .get(0);
        if n > 0 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no statement with {marker} started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn server_client(p: &Project) -> postgres::Client {
    let _ = server();
    p.db.client()
}

/// Ends the backend running `marker` (what a crash or `pg_terminate_backend` does).
pub fn terminate_query(p: &Project, marker: &str) {
    server_client(p)
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()",
            &[&marker],
        )
        .unwrap();
}

fn cancel_query(p: &Project, marker: &str) {
    server_client(p)
        .execute(
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()",
            &[&marker],
        )
        .unwrap();
}

/// Mutation this catches: `row.get` on a NULL definition panicking (exit 101), or a raw
/// "cache lookup failed" reaching the user, when DDL commits while verify reads.
#[test]
fn verify_beside_running_migrations_never_panics_or_shows_raw_catalog_errors() {
    let p = Project::new("verify_race");
    let indexes: String = (0..40)
        .map(|i| format!("create index churn_i{i} on coach.churn (a, b);\n"))
        .collect();
    p.migration(
        "0001_coach_churn.sql",
        &format!(
            "-- UP\ncreate schema if not exists coach;\ncreate table coach.churn (a int primary key, b int);\nalter table coach.churn enable row level security;\n{indexes}-- DOWN\ndrop table coach.churn;\n"
        ),
    );
    p.write("migrate.toml", "[schemas]\nmanaged = [\"coach\"]\n");
    p.migrate(&["up"]).success();
    let url = p.db.url.clone();
    let dir = p.path().to_path_buf();
    let churn = std::thread::spawn(move || {
        for _ in 0..20 {
            for command in ["down", "up"] {
                let _ = Command::new(env!("CARGO_BIN_EXE_migrate"))
                    .args([command, "--database-url", &url])
                    .current_dir(&dir)
                    .env_remove("DATABASE_URL")
                    .output();
            }
        }
    });
    let mut runs = 0;
    while !churn.is_finished() || runs < 5 {
        let run = p.migrate(&["verify", "--json"]);
        assert!(
            run.code == 0 || run.code == 1,
            "verify exited {}: {}",
            run.code,
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        assert!(!run.stderr.contains("cache lookup"), "{}", run.stderr);
        runs += 1;
    }
    churn.join().unwrap();
}

/// A login role `<prefix>_<pid>` (password `<role>-pw`) that may create tables in `public`,
/// with `grants` (SQL, `{role}` replaced) on top.
fn login_role(p: &Project, prefix: &str, grants: &str) -> String {
    let role = format!("{prefix}_{}", std::process::id());
    p.db.execute(&format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') \
         THEN CREATE ROLE {role} LOGIN PASSWORD '{role}-pw'; END IF; END $$;
         GRANT CREATE, USAGE ON SCHEMA public TO {role};
         {}",
        grants.replace("{role}", &role)
    ));
    role
}

/// `p`'s database as `role` of `login_role`.
fn url_as(p: &Project, role: &str) -> String {
    crate::support::with_credentials(&p.db.url, role, Some(&format!("{role}-pw")))
}

/// A login role that may create tables in `public` and use schema `authx`, but not reference
/// `authx.users`.
fn without_references(p: &Project, prefix: &str) -> String {
    login_role(
        p,
        prefix,
        &format!(
            "CREATE SCHEMA authx; CREATE TABLE authx.users (id int PRIMARY KEY);
             GRANT USAGE ON SCHEMA authx TO {{role}}; GRANT CREATE ON DATABASE \"{db}\" TO {{role}};",
            db = p.db.url.rsplit('/').next().unwrap()
        ),
    )
}

/// 0001 applied, 0002 written and pending.
fn applied_then_pending(label: &str) -> Project {
    let p = Project::new(label);
    p.migration(
        "0001_coach_a.sql",
        "-- UP\ncreate table coach_a (i int);\n-- DOWN\ndrop table coach_a;\n",
    );
    p.migrate(&["up"]).success();
    p.migration(
        "0002_coach_b.sql",
        "-- UP\ncreate table coach_b (i int);\n-- DOWN\ndrop table coach_b;\n",
    );
    p
}

/// Mutation this catches: dropping `privilege_advice` ("permission denied for table users"
/// names neither the schema nor the privilege).
#[test]
fn a_missing_privilege_names_the_object_and_the_privilege() {
    let p = Project::new("privilege");
    let role = without_references(&p, "narrow");
    // A switch and a switch back: the connecting role runs it (mutation this catches: the
    // last switch taken whatever it was, which blamed "the role this migration switched to").
    p.migration(
        "0001_coach_t.sql",
        &format!("-- UP\nset role {role};\nreset role;\ncreate table coach_t (user_id int references authx.users (id));\n-- DOWN\ndrop table coach_t;\n"),
    );
    let url = url_as(&p, &role);
    p.migrate_raw(&["up", "--database-url", &url], &[])
        .code(1)
        .stderr_has("0001_coach_t.sql:4")
        .stderr_has("the connecting role lacks REFERENCES on table authx.users");
}

/// Mutation this catches: `switches_role` dropped, so the advice blamed the connecting role
/// (here a superuser) for what a role the migration switched to lacked.
#[test]
fn a_missing_privilege_after_set_role_names_the_role_the_migration_switched_to() {
    let p = Project::new("privilege_switched");
    let role = without_references(&p, "switched");
    for (file, switch) in [
        ("0001_coach_t.sql", format!("set role {role}")),
        (
            "0002_coach_t.sql",
            format!("set session authorization {role}"),
        ),
    ] {
        p.migration(
            file,
            &format!(
                "-- UP\nselect 1;\n{switch};\ncreate table coach_t (user_id int references authx.users (id));\n-- DOWN\ndrop table coach_t;\n"
            ),
        );
        p.migrate(&["up"])
            .code(1)
            .stderr_has(&format!("{file}:4"))
            .stderr_has(
            "the role this migration switched to at line 3 lacks REFERENCES on table authx.users",
        );
        p.remove_migration(file);
    }
}

/// Mutation this catches: dropping the record guard (`record_guard`) that notices a
/// transaction the file ended itself, in a form the file check cannot see.
#[test]
fn a_migration_that_ends_its_own_transaction_is_dirty_never_rolled_back() {
    // The COMMIT is hidden from the file check by turning standard strings off first.
    let file = hidden_after_copy("commit;");
    for atomic in [false, true] {
        let p = Project::new("ended_early");
        p.migration(
            "0001_coach_ok.sql",
            "-- UP\ncreate table coach_ok (x int);\n-- DOWN\ndrop table coach_ok;\n",
        );
        p.migration("0002_coach_commit.sql", &file);
        let args: &[&str] = if atomic {
            &["up", "--atomic", "--json"]
        } else {
            &["up", "--json"]
        };
        let json = p.migrate(args).code(1).json();
        assert_eq!(json["failure"]["rolled_back"], false, "{json}");
        assert_eq!(json["failure"]["dirty"], true, "{json}");
        // What the database holds: coach_a committed, 0002 visibly dirty.
        assert_eq!(table_schema(&p, "coach_a").as_deref(), Some("public"));
        assert_eq!(dirty(&p, 2), Some(true));
        p.migrate(&["status"]).success().stdout_has("DIRTY");
        if atomic {
            // 0001 was committed by the file's COMMIT too, and the report says so.
            assert_eq!(p.applied(), vec![1, 2]);
            assert!(json["failure"]["state"].as_str().unwrap().contains("0001"));
        }
    }
}

/// Mutation this catches: treating a failed first `DO` block of a `transaction: none`
/// migration as rolled back, although it may have committed.
#[test]
fn a_do_block_that_commits_then_fails_outside_a_transaction_is_dirty() {
    let p = Project::new("do_commit");
    p.migration(
        "0001_coach_do.sql",
        "-- transaction: none\n-- UP\ndo $$ begin create table coach_x1 (); commit; perform 1/0; end $$;\ncreate table coach_x2 ();\n-- DOWN\nselect 1;\n",
    );
    let json = p.migrate(&["up", "--json"]).code(1).json();
    assert_eq!(json["failure"]["dirty"], true, "{json}");
    assert_eq!(dirty(&p, 1), Some(true));
    assert_eq!(table_schema(&p, "coach_x1").as_deref(), Some("public"));
}

/// Mutation this catches: no check, when it records, that the run still holds its lock
/// (a migration released it and another run took it meanwhile).
#[test]
fn a_migration_that_releases_the_run_lock_is_rolled_back_and_stops_the_run() {
    let p = Project::new("unlock_all");
    // The migration waits for a lock this test holds (not for a while: on a loaded machine
    // "a while" can end before the test has taken the migration lock).
    p.migration(
        "0001_coach_x.sql",
        "-- UP
select pg_advisory_unlock_all();
create table coach_x (a int);
select pg_advisory_xact_lock(4242) /* unlocked */;
-- DOWN
drop table coach_x;
",
    );
    let mut gate = p.db.client();
    gate.batch_execute("SELECT pg_advisory_lock(4242)").unwrap();
    let child = spawn(&p, &["up"]);
    wait_for_query(&p, "/* unlocked */");
    // Another run takes the lock the migration gave away.
    let mut other = p.db.client();
    let taken: bool = other
        .query_one(
            "SELECT pg_try_advisory_lock($1, $2)",
            &[&migrate::db::lock::KEYS.0, &migrate::db::lock::KEYS.1],
        )
        .unwrap()
        .get(0);
    assert!(taken);
    gate.batch_execute("SELECT pg_advisory_unlock(4242)")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("released the migration lock"), "{stderr}");
    assert!(p.applied().is_empty());
    assert_eq!(table_schema(&p, "coach_x"), None);
}

#[test]
fn every_spelling_of_a_savepoint_rollback_is_allowed() {
    let p = Project::new("savepoints");
    p.migration(
        "0001_coach_sp.sql",
        "-- UP\ncreate table coach_sp (x int);\nsavepoint a;\nrollback work to savepoint a;\nrollback transaction to a;\nrollback to a;\n-- DOWN\ndrop table coach_sp;\n",
    );
    p.migrate(&["up"]).success();
}

/// Each migration's warnings are its own, in the output and in `_migrate.history`, when the
/// next migration was already sent while it was read (a chain): a warning the next one
/// raised at its very start arrives right behind this one's COMMIT, and one a deferred
/// trigger raises at COMMIT right before its last answers. Mutations this catches: the
/// connection not held at each notice (the COMMIT warning, queued behind answers already
/// read, taken for the next migration's), and the warnings of a migration in the middle of
/// a chain not written with the next one's tracking rows.
#[test]
fn warnings_stay_with_their_migration_when_the_next_was_sent_ahead() {
    let p = Project::new("warnings_chain");
    for (v, name) in [(1, "one"), (2, "two"), (3, "three"), (4, "four")] {
        p.migration(
            &format!("000{v}_coach_{name}.sql"),
            &format!(
                "-- UP\ndo $$ begin raise warning 'up {name}'; end $$;\ncreate table coach_{name} (x int);\n\
                 -- DOWN\ndo $$ begin raise warning 'down {name}'; end $$;\ndrop table coach_{name};\n"
            ),
        );
    }
    // Each warns at COMMIT, after its tracking rows (kept with the next migration's), right
    // before its last answers: ten of them, as the race this guards against is not lost
    // every time.
    let names = [
        "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen",
    ];
    for (i, name) in names.iter().enumerate() {
        p.migration(
            &format!("{:04}_coach_{name}.sql", i + 5),
            &format!(
                "-- UP\ncreate table coach_{name} (x int);\n\
                 create function coach_{name}_warn() returns trigger language plpgsql as $$ \
                 begin raise warning 'up {name}'; return null; end $$;\n\
                 create constraint trigger coach_{name}_warn after insert on coach_{name} \
                 deferrable initially deferred for each row execute function coach_{name}_warn();\n\
                 insert into coach_{name} values (1);\n\
                 -- DOWN\ndo $$ begin raise warning 'down {name}'; end $$;\n\
                 drop table coach_{name};\ndrop function coach_{name}_warn();\n"
            ),
        );
    }
    for (args, direction) in [
        (&["up", "--json"][..], "up"),
        (&["down", "--all", "--json"][..], "down"),
    ] {
        let mut args = args.to_vec();
        if direction == "down" {
            args.push("--allow-destructive");
        }
        let json = p.migrate(&args).success().json();
        let steps = json["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 14, "{json}");
        for step in steps {
            let name = step["name"]
                .as_str()
                .unwrap()
                .trim_start_matches("coach_")
                .to_string();
            let messages: Vec<&str> = step["warnings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w["message"].as_str().unwrap())
                .collect();
            assert_eq!(messages, vec![format!("{direction} {name}")], "{json}");
            let kept: Vec<String> = p.db.scalar(&format!(
                "SELECT warnings FROM _migrate.history WHERE version = {} AND direction = '{direction}'",
                step["version"]
            ));
            assert_eq!(kept, vec![format!("WARNING: {direction} {name}")]);
        }
    }
}

/// Mutation this catches: a migration whose COMMIT fails (a deferred constraint) judged by
/// the message the tracking rows and COMMIT share as failing in its tracking rows, or as done
/// (the count of completed statements misread): the error must say "at COMMIT", nothing of
/// it stays, and the run stops there.
#[test]
fn a_migration_failing_at_commit_is_reported_at_commit_and_rolled_back() {
    let p = Project::new("commit_fails");
    child_failing_at_commit(&p);
    p.migration(
        "0003_coach_after.sql",
        "-- UP\ncreate table coach_after (x int);\n-- DOWN\ndrop table coach_after;\n",
    );
    p.migrate(&["up"])
        .code(1)
        .stderr_has("0002_coach_child.sql")
        .stderr_has("at COMMIT");
    assert_eq!(p.applied(), vec![1]);
    let child: Option<String> = p.db.scalar("SELECT to_regclass('coach_child')::text");
    assert_eq!(child, None, "rolled back");
    let after: Option<String> = p.db.scalar("SELECT to_regclass('coach_after')::text");
    assert_eq!(after, None, "the run stopped at 0002");
    let history: i64 =
        p.db.scalar("SELECT count(*) FROM _migrate.history WHERE version = 2 AND NOT success");
    assert_eq!(history, 1, "the failure is in the history");
}

/// The migration after one that fails at COMMIT was sent ahead, but nothing of it may run:
/// not what a rollback cannot undo (a sequence's `setval`, a session-level advisory lock),
/// and not its time (the failure is reported at once, not after the next migration's work).
/// A serializable first statement still works in a migration sent ahead (its guard takes no
/// snapshot). Mutation this catches: the `MOVE` guard dropped from an opening sent ahead
/// (setval took effect and the report waited for the sleep; attacker finding).
#[test]
fn nothing_of_the_next_migration_runs_after_a_failure_at_commit() {
    let p = Project::new("commit_fails_next_waits");
    p.db.execute("create sequence coach_s");
    child_failing_at_commit(&p);
    p.migration(
        "0003_coach_after.sql",
        "-- UP\nselect setval('coach_s', 777);\nselect pg_advisory_lock(4242);\nselect pg_sleep(5);\n\
         create table coach_after (x int);\n-- DOWN\ndrop table coach_after;\n",
    );
    let started = std::time::Instant::now();
    let json = p.migrate(&["up", "--json"]).code(1).json();
    let took = started.elapsed();
    assert_eq!(json["failure"]["version"], 2, "{json}");
    assert_eq!(p.applied(), vec![1]);
    let last: i64 = p.db.scalar("SELECT last_value FROM coach_s");
    assert_eq!(
        last, 1,
        "setval of the migration after the failure took effect"
    );
    assert!(
        took < std::time::Duration::from_secs(5),
        "the report waited for the next migration's work: {took:?}"
    );

    let q = Project::new("serializable_sent_ahead");
    q.migration(
        "0001_coach_a.sql",
        "-- UP\ncreate table coach_a (x int);\n-- DOWN\ndrop table coach_a;\n",
    );
    q.migration(
        "0002_coach_b.sql",
        "-- UP\nset transaction isolation level serializable;\ncreate table coach_b (x int);\n-- DOWN\ndrop table coach_b;\n",
    );
    q.migrate(&["up"]).success();
    q.migrate(&["down", "--all"]).success();
}

/// A migration that releases the run's lock (`pg_advisory_unlock_all()`) lets another run
/// in; when one took the lock meanwhile, even if it has released it again by the time the
/// tracking rows are written, the migration is rolled back and the run stops: every run
/// that takes the lock moves `_migrate.lock_generation` on, and the tracking rows check it.
/// Here the other run reverts 0001 while 0002 sleeps. Mutation this catches: the generation
/// check dropped from `record_step` (0002 was recorded applied above a reverted 0001, and the
/// two runs reported different heads; attacker finding).
#[test]
fn a_migration_that_released_the_lock_to_another_run_is_rolled_back() {
    let p = Project::new("lock_released");
    p.migration(
        "0001_coach_a.sql",
        "-- UP\ncreate table coach_a (x int);\n-- DOWN\ndrop table coach_a;\n",
    );
    p.migration(
        "0002_coach_b.sql",
        "-- UP\nselect pg_advisory_unlock_all();\nselect pg_sleep(2) /* unlocked */;\n\
         create table coach_b (x int);\n-- DOWN\ndrop table coach_b;\n",
    );
    let up = spawn(&p, &["up"]);
    wait_for_query(&p, "/* unlocked */");
    p.migrate(&["down", "--lock-wait", "1"])
        .success()
        .stdout_has("head is none");
    let out = up.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("released the migration lock"), "{stderr}");
    assert!(p.applied().is_empty(), "{:?}", p.applied());
    assert_eq!(table_schema(&p, "coach_b"), None, "0002 was rolled back");
}

/// A multi-action rule keeps its inner semicolons (psql's parenthesis rule): a
/// `transaction: none` migration with one runs, and an error after it in a transactional one
/// names its own line. Mutation this catches: splitting inside parentheses (a valid file
/// failed with "syntax error at end of input" and was left dirty; attacker finding).
#[test]
fn a_rule_with_several_actions_is_one_statement() {
    let p = Project::new("rule_actions");
    let rule = "create table coach_t (x int);\ncreate table coach_u (x int);\n\
                create rule coach_r as on insert to coach_t do also (\n  insert into coach_u values (1);\n  insert into coach_u values (2)\n);\n";
    p.migration(
        "0001_coach_none.sql",
        &format!("-- transaction: none\n-- UP\n{rule}insert into coach_t values (0);\n-- DOWN\ndrop table coach_t;\ndrop table coach_u;\n"),
    );
    p.migrate(&["up"]).success();
    let rows: i64 = p.db.scalar("SELECT count(*) FROM coach_u");
    assert_eq!(rows, 2);
    p.migrate(&["down"]).success();
    p.remove_migration("0001_coach_none.sql");
    p.migration(
        "0001_coach_tx.sql",
        &format!("-- UP\n{rule}select 1/0;\n-- DOWN\nselect 1;\n"),
    );
    p.migrate(&["up"])
        .code(1)
        .stderr_has("0001_coach_tx.sql:8:")
        .stderr_has("division by zero");
}

/// The same for a `transaction: none` migration, whose `DISCARD ALL` lets the lock go: when
/// another run took it meanwhile (here a `repair --forget` of the migration itself), the run
/// writes no outcome over what that run did, and says so. Mutation this catches: the
/// `lock_still_ours` check before the state writes dropped (the migration was reported done
/// and its history said so, while `schema_migrations` had no row; attacker finding).
#[test]
fn a_migration_outside_a_transaction_that_released_the_lock_records_nothing_over_another_run() {
    let p = Project::new("lock_discarded");
    p.migration(
        "0001_coach_a.sql",
        "-- transaction: none\n-- UP\ndiscard all;\nselect pg_sleep(2) /* discarded */;\n\
         create table coach_a (x int);\n-- DOWN\ndrop table coach_a;\n",
    );
    let up = spawn(&p, &["up"]);
    wait_for_query(&p, "/* discarded */");
    p.migrate(&["repair", "1", "--forget", "--lock-wait", "1"])
        .success();
    let out = up.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("released the migration lock"), "{stderr}");
    assert!(stderr.contains("not recorded"), "{stderr}");
    assert!(p.applied().is_empty(), "{:?}", p.applied());
    let succeeded: i64 = p.db.scalar(
        "SELECT count(*) FROM _migrate.history WHERE version = 1 AND direction = 'up' AND success",
    );
    assert_eq!(succeeded, 0, "the history says it was applied");
}

/// Mutation this catches: taking a missing `SET LOCAL` marker alone for a migration that ended
/// its own transaction. `RESET ALL` (or `SET migrate.in_migration TO DEFAULT`) in a migration
/// clears the marker too, yet everything is still in the migration's transaction: it must be
/// applied and recorded clean, one by one and with `--atomic`, not called committed-in-part
/// and dirty (which it is not: the whole transaction would be rolled back... or committed).
#[test]
fn a_migration_that_resets_all_settings_is_applied_not_dirty() {
    for atomic in [false, true] {
        let p = Project::new(if atomic {
            "reset_all_atomic"
        } else {
            "reset_all"
        });
        p.migration(
            "0001_coach_a.sql",
            "-- UP\ncreate table coach_a (i int);\nreset all;\n-- DOWN\ndrop table coach_a;\n",
        );
        p.migration(
            "0002_coach_b.sql",
            "-- UP\ncreate table coach_b (i int);\nset migrate.in_migration to default;\n\
             -- DOWN\ndrop table coach_b;\n",
        );
        let args: &[&str] = if atomic { &["up", "--atomic"] } else { &["up"] };
        p.migrate(args).success();
        assert_eq!(p.applied(), vec![1, 2]);
        assert_eq!(dirty(&p, 1), Some(false));
        assert_eq!(dirty(&p, 2), Some(false));
        p.migrate(&["down", "--all"]).success();
        assert!(p.applied().is_empty());
        let left: Option<String> = p.db.scalar("SELECT to_regclass('coach_a')::text");
        assert_eq!(left, None);
    }
}

/// Mutation this catches: `state::ensure` checking only that a `record_step(text, bigint, ...)`
/// exists, and the call leaving its arguments' types to overload resolution. An overload with
/// an `integer` version (which the literal version would pick) or a body somebody replaced
/// records nothing; `up` then said "done" over migrations it never recorded.
#[test]
fn a_replaced_or_overloaded_record_function_is_not_trusted() {
    let p = Project::new("record_overload");
    for v in 1..=3 {
        p.migration(
            &format!("000{v}_coach_t{v}.sql"),
            &format!("-- UP\ncreate table coach_t{v} (i int);\n-- DOWN\ndrop table coach_t{v};\n"),
        );
    }
    p.migrate(&["up", "--to", "1"]).success();
    p.db.execute(
        "CREATE FUNCTION _migrate.record_step(direction text, version int, name text, \
         checksum text, tool_version text, note text, check_lock boolean) RETURNS void \
         LANGUAGE sql AS 'select null'",
    );
    p.migrate(&["up", "--to", "2"]).success();
    assert_eq!(p.applied(), vec![1, 2], "the overload recorded nothing");
    p.db.execute(
        "CREATE OR REPLACE FUNCTION _migrate.record_step(direction text, version bigint, \
         name text, checksum text, tool_version text, note text, check_lock boolean) \
         RETURNS void LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog \
         AS $$ BEGIN END $$",
    );
    p.migrate(&["up"]).success();
    assert_eq!(
        p.applied(),
        vec![1, 2, 3],
        "the replaced body recorded nothing"
    );
}

/// A TCP proxy in front of the test server whose open connections the test can cut (what a
/// network failure or a killed pooler does to them), while it keeps accepting new ones.
struct Proxy {
    port: u16,
    open: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
    /// Until when new connections are dropped at once (a server or pooler restarting).
    refuse_until: std::sync::Arc<std::sync::Mutex<Option<Instant>>>,
}

impl Proxy {
    fn start(target: String) -> Proxy {
        use std::net::{Shutdown, TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let registry = open.clone();
        let refuse_until = std::sync::Arc::new(std::sync::Mutex::new(None::<Instant>));
        let refusing = refuse_until.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if refusing
                    .lock()
                    .unwrap()
                    .is_some_and(|until| Instant::now() < until)
                {
                    continue;
                }
                let (Ok(client), Ok(server)) = (client, TcpStream::connect(&target)) else {
                    continue;
                };
                let mut all = registry.lock().unwrap();
                all.push(client.try_clone().unwrap());
                all.push(server.try_clone().unwrap());
                let pairs = [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ];
                for (mut from, mut to) in pairs {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Proxy {
            port,
            open,
            refuse_until,
        }
    }

    /// Drops every new connection for `how_long`.
    fn refuse_for(&self, how_long: Duration) {
        *self.refuse_until.lock().unwrap() = Some(Instant::now() + how_long);
    }

    /// Cuts every connection open through the proxy, both ways.
    fn cut(&self) {
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Mutation this catches: saying a migration was rolled back because the connection died
/// before its COMMIT came back. The whole flight (statements, tracking rows, COMMIT) had been
/// sent; the server runs what it had received and commits it after the connection is gone
/// (the migration turns off the server's check that the client is still connected, which
/// would otherwise end it), and the report must say what the database then holds: applied
/// and recorded, among the steps.
#[test]
fn a_connection_cut_after_the_flight_was_sent_reports_what_the_server_committed() {
    let p = Project::new("lost_sent");
    // host:port of the test server, between the user part and the database.
    let after_scheme = p.db.url.split_once("://").map_or("", |(_, r)| r);
    let after_user = after_scheme
        .rsplit_once('@')
        .map_or(after_scheme, |(_, r)| r);
    let authority = after_user.split('/').next().unwrap_or("");
    if authority.parse::<std::net::SocketAddr>().is_err() {
        eprintln!("skipped: the test server is not reached over TCP ({authority})");
        return;
    }
    let proxy = Proxy::start(authority.to_string());
    let url =
        p.db.url
            .replacen(authority, &format!("127.0.0.1:{}", proxy.port), 1);
    p.migration(
        "0001_coach_sent.sql",
        "-- UP\nset local client_connection_check_interval = 0;\n\
         create table coach_sent (x int);\nselect pg_sleep(2) /* sent */;\n\
         -- DOWN\ndrop table coach_sent;\n",
    );
    let child = spawn_at(&p, &url, &["up"]);
    wait_for_query(&p, "/* sent */");
    // The way back is closed for a moment, as while a pooler restarts.
    proxy.refuse_for(Duration::from_millis(1500));
    proxy.cut();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(p.applied(), vec![1], "the server committed it: {stderr}");
    assert_eq!(table_schema(&p, "coach_sent").as_deref(), Some("public"));
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("recorded as applied"), "{stderr}");
    assert!(!stderr.contains("rolled it back"), "{stderr}");
    // It is a step like any other, and no line of it failed (attacker finding: the report
    // counted it as not done and named its line 2, which had completed).
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("1 migration(s) done; head is 0001"),
        "{stdout}"
    );
    assert!(stderr.contains("it is applied and recorded"), "{stderr}");
    assert!(!stderr.contains("0001_coach_sent.sql:2"), "{stderr}");
}

/// The connection lost in the reset after a migration's COMMIT (here `pg_terminate_backend`
/// while `DISCARD TEMP` drops the migration's thousand temp tables): that migration is
/// committed and recorded, and the run must say so, and that the next one did not start,
/// with exit 3. Mutation this catches (attacker finding): a bare "connection closed" with no
/// steps, no failure and no head, after the reset was retried on the dead session, and
/// when no chained migration followed (a `transaction: none` one, or none).
#[test]
fn a_connection_lost_in_the_reset_after_commit_reports_the_migration_done() {
    // The next migration chained, `transaction: none` (not chained), or none in the run.
    let none = "-- transaction: none\n-- UP\ncreate table coach_two (x int);\n\
                -- DOWN\ndrop table coach_two;\n";
    let chained = "-- UP\ncreate table coach_two (x int);\n-- DOWN\ndrop table coach_two;\n";
    let two_not_started = (2, "it did not start: nothing of it was applied");
    let one_done = (
        1,
        "it is applied and recorded; nothing after it was started",
    );
    let variants = [
        (chained, &["up", "--json"][..], two_not_started),
        (none, &["up", "--json"][..], one_done),
        (chained, &["up", "--json", "--to", "1"][..], one_done),
    ];
    let (mut at, mut missed) = (0, 0);
    while let Some(&(next, args, (version, state))) = variants.get(at) {
        let p = Project::new("lost_in_reset");
        p.migration(
            "0001_coach_one.sql",
            "-- UP\ncreate table coach_one (x int);\n\
             do $$ begin for i in 1..1000 loop \
             execute format('create temp table scratch_%s (x int)', i); end loop; end $$;\n\
             -- DOWN\ndrop table coach_one;\n",
        );
        p.migration("0002_coach_two.sql", next);
        let mut child = spawn(&p, args);
        let mut client = server_client(&p);
        let started = Instant::now();
        loop {
            // Once 0001 is committed, while its session still runs the message that
            // committed it.
            let killed: i64 = client
                .query_one(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                     WHERE datname = current_database() AND state = 'active' \
                     AND query LIKE '%DISCARD TEMP%' AND pid <> pg_backend_pid() \
                     AND EXISTS (SELECT 1 FROM _migrate.schema_migrations WHERE version = 1)",
                    &[],
                )
                .map_or(0, |r| r.get(0));
            if killed > 0 {
                break;
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{args:?}: never in the reset"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            // The run slipped past the reset before it was caught (a busy machine): again.
            missed += 1;
            assert!(
                missed < 10,
                "{args:?}: the reset was never caught in 10 runs"
            );
            continue;
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
        assert_eq!(report["steps"][0]["version"], 1, "{report}");
        assert_eq!(report["failure"]["version"], version, "{report}");
        assert_eq!(report["failure"]["connection_lost"], true, "{report}");
        assert_eq!(report["failure"]["state"], state, "{report}");
        assert_eq!(p.applied(), vec![1]);
        assert_eq!(table_schema(&p, "coach_two"), None);
        at += 1;
    }
}

/// Mutation this catches: letting the error of writing a failure's history line replace the
/// failure (`log_failure(...)?`). A role that may read `_migrate` but not write it runs `up`:
/// the report must still name the file and say the migration was rolled back, and add that
/// its history line could not be written.
#[test]
fn a_failure_that_cannot_be_written_to_the_history_is_still_reported() {
    let p = applied_then_pending("history_denied");
    let role = login_role(
        &p,
        "reader",
        "GRANT USAGE ON SCHEMA _migrate TO {role};
         GRANT SELECT ON ALL TABLES IN SCHEMA _migrate TO {role};",
    );
    let url = url_as(&p, &role);
    // Without the lock generation nothing starts, and the error says which grant is missing.
    p.migrate_raw(&["up", "--database-url", &url], &[])
        .code(1)
        .stderr_has("GRANT USAGE ON SEQUENCE _migrate.lock_generation")
        .stderr_has("nothing was done");
    assert_eq!(p.applied(), vec![1]);
    p.db.execute(&format!(
        "GRANT USAGE, SELECT ON SEQUENCE _migrate.lock_generation TO {role}"
    ));
    p.migrate_raw(&["up", "--database-url", &url], &[])
        .code(1)
        .stderr_has("0002_coach_b.sql")
        .stderr_has("rolled back")
        .stderr_has("could not be written to _migrate.history");
    assert_eq!(p.applied(), vec![1]);
    assert_eq!(table_schema(&p, "coach_b"), None);
}

/// A state schema an older version made (no `lock_generation` here) can only be brought up to
/// date by its owner: another role gets a refusal that says so, not a bare "permission
/// denied" (mutation this catches: the refusal dropped from `state::ensure`; attacker finding).
#[test]
fn an_older_state_schema_asks_for_its_owner() {
    let p = applied_then_pending("older_state");
    p.db.execute("DROP SEQUENCE _migrate.lock_generation");
    let role = login_role(
        &p,
        "later",
        "GRANT USAGE ON SCHEMA _migrate TO {role};
         GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA _migrate TO {role};",
    );
    let url = url_as(&p, &role);
    p.migrate_raw(&["up", "--database-url", &url], &[])
        .code(1)
        .stderr_has("made by an older version")
        .stderr_has("as the owner of _migrate; nothing was done");
    assert_eq!(p.applied(), vec![1]);
    p.migrate(&["up"]).success();
    assert_eq!(p.applied(), vec![1, 2]);
}

/// Mutation this catches: not checking the session's own `standard_conforming_strings` (a
/// database or role default, or the connection's options). With it off, a file that passes
/// the split's checks can hide a COMMIT and a BEGIN in a string, and a half-committed
/// migration was reported "rolled back" (attacker finding). Nothing runs.
#[test]
fn a_session_without_standard_strings_is_refused_before_anything_runs() {
    let p = Project::new("nonstandard_strings");
    p.migration(
        "0001_coach_h.sql",
        "-- UP\ncreate table coach_h (x int);\nselect 'a\\''; commit; begin; --';\nselect 1/0;\n\
         -- DOWN\ndrop table coach_h;\n",
    );
    let url = crate::support::with_options(&p.db.url, "-c%20standard_conforming_strings%3Doff");
    p.migrate_raw(&["up", "--database-url", &url], &[])
        .code(2)
        .stderr_has("standard_conforming_strings = off");
    assert_eq!(table_schema(&p, "coach_h"), None, "nothing ran");
    assert!(p.applied().is_empty());
}

/// Mutation this catches: counting a `transaction: none` migration's `SET`/`RESET` statements
/// as having taken effect. One that only set the session before its first real statement
/// failed was marked dirty, blocking `up` until a manual repair (attacker finding).
#[test]
fn a_none_migration_that_only_set_the_session_before_failing_is_not_dirty() {
    let p = Project::new("none_set_only");
    p.migration(
        "0001_coach_n.sql",
        "-- transaction: none\n-- UP\nreset all;\nset search_path to default;\n\
         select 1/0;\n-- DOWN\nselect 1;\n",
    );
    p.migrate(&["up"])
        .code(1)
        .stderr_has("division by zero")
        .stderr_has("nothing of it was applied");
    assert_eq!(dirty(&p, 1), None, "not recorded at all");
    p.migrate(&["status"]).success().stdout_has("pending");
}
