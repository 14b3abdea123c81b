//! The engine against a real PostgreSQL: apply, revert, refuse, lock, record.

use crate::support::{server, Project};

fn table(n: u32) -> String {
    format!(
        "-- UP\ncreate table coach_t{n} (id int primary key);\n-- DOWN\ndrop table coach_t{n};\n"
    )
}

/// A project with three simple migrations.
fn three(label: &str) -> Project {
    let p = Project::new(label);
    for n in 1..=3 {
        p.migration(&format!("000{n}_coach_t{n}.sql"), &table(n));
    }
    p
}

fn tables(p: &Project) -> Vec<String> {
    p.db.client()
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn history(p: &Project) -> Vec<(i64, String, bool)> {
    p.db.client()
        .query(
            "SELECT version, direction, success FROM _migrate.history ORDER BY id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[test]
fn up_down_all_up_round_trip() {
    let p = three("round_trip");
    let before = p.db.dump();
    p.migrate(&["up"])
        .success()
        .stdout_has("3 migration(s) done; head is 0003");
    assert_eq!(p.applied(), vec![1, 2, 3]);
    assert_eq!(tables(&p), vec!["coach_t1", "coach_t2", "coach_t3"]);
    p.migrate(&["down", "--all"]).success();
    assert!(p.applied().is_empty());
    assert_eq!(p.db.dump(), before);
    p.migrate(&["up"]).success();
    assert_eq!(p.applied(), vec![1, 2, 3]);
    p.migrate(&["up"])
        .success()
        .stdout_has("nothing to up: head is 0003");
}

#[test]
fn tracking_rows_carry_the_contract_columns() {
    let p = three("tracking_columns");
    p.migrate(&["up", "--to", "1"]).success();
    let row = p
        .db
        .client()
        .query_one(
            "SELECT name, checksum, applied_by, duration_ms >= 0, tool_version, dirty, applied_at <= now()
             FROM _migrate.schema_migrations WHERE version = 1",
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "coach_t1");
    // The SHA-256 of the file, lowercase hex (README), computed here rather than by the
    // product's own `migrations::checksum`, which would agree with itself whatever it did.
    // Mutations this catches (both passed the old comparison): upper-case hex in
    // `migrations::hex`, and `migrations::checksum` hashing a prefix first.
    use sha2::Digest;
    let expected = format!("{:x}", sha2::Sha256::digest(table(1).as_bytes()));
    assert_eq!(row.get::<_, String>(1), expected);
    assert_eq!(row.get::<_, String>(2), server().user());
    assert!(row.get::<_, bool>(3));
    assert!(row.get::<_, String>(4).starts_with("migrate "));
    assert!(!row.get::<_, bool>(5));
    assert!(row.get::<_, bool>(6));
    let public: bool =
        p.db.scalar("SELECT has_schema_privilege('public', '_migrate', 'USAGE')");
    assert!(!public, "_migrate is revoked from PUBLIC");
}

#[test]
fn history_lines_of_up_and_down_carry_the_contract_columns() {
    let p = three("history_columns");
    // A transactional migration's history line is timed by the server's clock (and a
    // `transaction: none` one's by the client's): these lie within the runs as the server saw
    // them, whatever the client's clock says (TEST_DATABASE_URL may be another host).
    let server_clock = |p: &Project| -> std::time::SystemTime {
        p.db.scalar("SELECT pg_catalog.clock_timestamp()")
    };
    let before = server_clock(&p);
    p.migrate(&["up", "--to", "1"]).success();
    p.migrate(&["up", "--atomic"]).success();
    p.migrate(&["down", "--all"]).success();
    let after = server_clock(&p);
    let rows =
        p.db.client()
            .query(
                "SELECT version, name, direction, checksum, success, error IS NULL, note IS NULL,
                    started_at <= finished_at, started_at, finished_at, applied_by, tool_version
             FROM _migrate.history ORDER BY id",
                &[],
            )
            .unwrap();
    let lines: Vec<(i64, String, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let expected: Vec<(i64, String, String)> = [(1, "up"), (2, "up"), (3, "up")]
        .into_iter()
        .chain([(3, "down"), (2, "down"), (1, "down")])
        .map(|(v, d)| (v, format!("coach_t{v}"), d.to_string()))
        .collect();
    assert_eq!(lines, expected);
    for (row, (version, _, _)) in rows.iter().zip(&expected) {
        let checksum = migrate::migrations::checksum(table(*version as u32).as_bytes());
        assert_eq!(row.get::<_, String>(3), checksum);
        for column in 4..=7 {
            assert!(row.get::<_, bool>(column), "column {column} of {version}");
        }
        let started: std::time::SystemTime = row.get(8);
        let finished: std::time::SystemTime = row.get(9);
        assert!(started >= before && finished <= after, "{version}");
        assert_eq!(row.get::<_, String>(10), server().user());
        assert!(row.get::<_, String>(11).starts_with("migrate "));
    }
}

#[test]
fn up_to_and_down_steps() {
    let p = three("to_and_steps");
    p.migrate(&["up", "--to", "2"]).success();
    assert_eq!(p.applied(), vec![1, 2]);
    p.migrate(&["up"]).success();
    p.migrate(&["down", "--steps", "2"]).success();
    assert_eq!(p.applied(), vec![1]);
    p.migrate(&["up"]).success();
    p.migrate(&["down", "--to", "1"]).success();
    assert_eq!(p.applied(), vec![1]);
    p.migrate(&["down"]).success();
    assert!(p.applied().is_empty());
    p.migrate(&["down"]).success().stdout_has("nothing to down");
    p.migrate(&["down", "--steps", "1", "--all"]).code(2);
}

#[test]
fn down_redo_and_repair_on_an_untouched_database_write_nothing() {
    let p = three("untouched_down");
    p.migrate(&["down"]).success().stdout_has("nothing to down");
    p.migrate(&["down", "--all"]).success();
    p.migrate(&["redo"]).success();
    p.migrate(&["repair", "1", "--forget"])
        .code(1)
        .stderr_has("not recorded as applied");
    let state: bool =
        p.db.scalar("SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = '_migrate')");
    assert!(!state, "a run with nothing to do created migrate's state");
}

#[test]
fn history_warnings_are_null_when_there_were_none_whatever_the_outcome() {
    let p = three("warnings_null");
    p.migration(
        "0004_coach_warns.sql",
        "-- UP\nDO $$ BEGIN RAISE WARNING 'four'; END $$;\n-- DOWN\nSELECT 1;\n",
    )
    .migration(
        "0005_coach_fails.sql",
        "-- UP\nSELECT 1/0;\n-- DOWN\nSELECT 1;\n",
    );
    p.migrate(&["up"]).code(1);
    let rows: Vec<(i64, bool, Option<Vec<String>>)> =
        p.db.client()
            .query(
                "SELECT version, success, warnings FROM _migrate.history ORDER BY id",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
    assert_eq!(
        rows,
        vec![
            (1, true, None),
            (2, true, None),
            (3, true, None),
            (4, true, Some(vec!["WARNING: four".to_string()])),
            (5, false, None),
        ]
    );
}

#[test]
fn redo_reverts_and_reapplies() {
    let p = three("redo");
    p.migrate(&["up"]).success();
    p.db.execute("INSERT INTO coach_t3 VALUES (1)");
    p.migrate(&["redo"]).success();
    assert_eq!(p.applied(), vec![1, 2, 3]);
    let rows: i64 = p.db.scalar("SELECT count(*) FROM coach_t3");
    assert_eq!(rows, 0, "the table was dropped and created again");
    let directions: Vec<String> = history(&p).into_iter().skip(3).map(|h| h.1).collect();
    assert_eq!(directions, vec!["down", "up"]);
}

#[test]
fn failing_migration_changes_nothing_and_names_the_file() {
    let p = three("failing");
    p.migration(
        "0004_coach_bad.sql",
        "-- UP\ncreate table coach_t4 (id int);\n\ninsert into coach_missing values (1);\n-- DOWN\ndrop table coach_t4;\n",
    );
    p.migrate(&["up", "--to", "3"]).success();
    let dump = p.db.dump();
    let run = p.migrate(&["up"]);
    run.code(1)
        .stderr_has("migrations/0004_coach_bad.sql:4")
        .stderr_has("relation \"coach_missing\" does not exist");
    assert_eq!(p.db.dump(), dump, "the failed migration was rolled back");
    assert_eq!(p.applied(), vec![1, 2, 3]);
    let last = history(&p).pop().unwrap();
    assert_eq!(last, (4, "up".to_string(), false));
    let error: String =
        p.db.scalar("SELECT error FROM _migrate.history ORDER BY id DESC LIMIT 1");
    assert!(error.contains("0004_coach_bad.sql:4"), "{error}");
}

/// A transactional migration's statements reach the server as one message: an error's line
/// comes from PostgreSQL's position in that message (a syntax error anywhere fails the whole
/// message before any statement runs), else from how many statements completed before it.
/// Mutations this catches: reading the position as bytes rather than characters (the
/// multibyte text before the syntax error moves it to line 4), and an off-by-one in the
/// count of completed statements (the division by zero is put on line 4).
#[test]
fn errors_in_a_multi_statement_migration_name_the_failing_statement() {
    let p = Project::new("body_lines");
    let wide = "é".repeat(40);
    p.migration(
        "0001_coach_syntax.sql",
        &format!(
            "-- UP\ncreate table coach_a (x text default '{wide}');\n-- a comment; with a semicolon\n\
             insert into coach_a values ('ß');\n\ncreate tabel coach_b (x int);\n-- DOWN\n\
             drop table coach_a;\n"
        ),
    );
    p.migrate(&["up"])
        .code(1)
        .stderr_has("migrations/0001_coach_syntax.sql:6:")
        .stderr_has("syntax error at or near \"tabel\"");
    assert!(p.applied().is_empty());
    assert!(tables(&p).is_empty(), "nothing of it ran: {:?}", tables(&p));

    p.migration(
        "0001_coach_syntax.sql",
        "-- UP\ncreate table coach_a (x int);\n-- DOWN\ndrop table coach_a;\n",
    );
    p.migration(
        "0002_coach_runtime.sql",
        &format!(
            "-- UP\ninsert into coach_a values (1);\n/* '{wide}'; */ insert into coach_a values (2);\n\
             select 1;\nselect 1 / (select count(*) - 2 from coach_a);\ninsert into coach_a values (3);\n\
             -- DOWN\ndelete from coach_a;\n"
        ),
    );
    p.migrate(&["up"])
        .code(1)
        .stderr_has("migrations/0002_coach_runtime.sql:5:")
        .stderr_has("division by zero");
    assert_eq!(p.applied(), vec![1]);
    let rows: i64 = p.db.scalar("SELECT count(*) FROM coach_a");
    assert_eq!(rows, 0, "the failed migration was rolled back");
}

/// "Syntax error at end of input" points one past the message: at the last line of the
/// statements, not at the blank lines and comments after them. Mutation this catches: not
/// clamping the position to the last code sent (a line of the comment or blanks after it; attacker
/// finding).
#[test]
fn a_syntax_error_at_end_of_input_names_the_last_statement_line() {
    let p = Project::new("end_of_input");
    p.migration(
        "0001_coach_t.sql",
        "-- UP\ncreate table coach_t (x int);\nselect (1,\n  2\n\n-- trailing note\n-- DOWN\ndrop table coach_t;\n",
    );
    p.migrate(&["up"])
        .code(1)
        .stderr_has("migrations/0001_coach_t.sql:4:")
        .stderr_has("syntax error at end of input");
    assert!(p.applied().is_empty());
}

/// On a `SQL_ASCII` database PostgreSQL counts error positions in bytes, not characters.
/// Mutation this catches: reading them as characters there too (the syntax error after
/// multibyte text is put 40 bytes further on, on line 7; attacker finding).
#[test]
fn error_positions_on_a_sql_ascii_database_count_bytes() {
    let p = Project::new("sql_ascii");
    let name = format!("{}_ascii", p.db.name());
    let mut admin =
        postgres::Client::connect(crate::support::server().admin_url(), postgres::NoTls).unwrap();
    admin
        .batch_execute(&format!(
            "CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'SQL_ASCII' \
             LC_COLLATE 'C' LC_CTYPE 'C'"
        ))
        .unwrap();
    let url = crate::support::with_database(&p.db.url, &name);
    let wide = "é".repeat(40);
    p.migration(
        "0001_coach_syntax.sql",
        &format!(
            "-- UP\nselect '{wide}';\nselect 1;\nselect 2;\n\ncreate tabel coach_b (x int);\n\
             select 3;\nselect 4;\n-- DOWN\nselect 1;\n"
        ),
    );
    p.migrate_raw(&["up", "--database-url", &url], &[])
        .code(1)
        .stderr_has("migrations/0001_coach_syntax.sql:6:")
        .stderr_has("syntax error at or near \"tabel\"");
    admin
        .batch_execute(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .unwrap();
}

#[test]
fn a_failure_stops_the_run_after_earlier_migrations_commit() {
    let p = three("stops");
    p.migration("0002_coach_t2.sql", "-- UP\nselect 1/0;\n-- DOWN\n");
    p.migrate(&["up"])
        .code(1)
        .stderr_has("division by zero")
        .stderr_has("1 migration(s) before it stay applied");
    assert_eq!(p.applied(), vec![1]);
}

#[test]
fn atomic_is_all_or_nothing() {
    let p = three("atomic");
    p.migration("0004_coach_bad.sql", "-- UP\nselect 1/0;\n-- DOWN\n");
    p.migrate(&["up", "--atomic"])
        .code(1)
        .stderr_has("nothing was applied");
    assert!(p.applied().is_empty());
    assert!(tables(&p).is_empty());
    p.remove_migration("0004_coach_bad.sql");
    let json = p.migrate(&["up", "--atomic", "--json"]).success().json();
    assert_eq!(json["steps"].as_array().unwrap().len(), 3);
    assert_eq!(json["atomic"], true);
}

#[test]
fn edited_applied_file_makes_up_refuse_and_status_show_changed() {
    let p = three("edited");
    p.migrate(&["up", "--to", "2"]).success();
    p.migration(
        "0002_coach_t2.sql",
        &table(2).replace("primary key", "primary key, x int"),
    );
    p.migrate(&["up"])
        .code(1)
        .stderr_has("migrations/0002_coach_t2.sql was edited after it was applied")
        .stderr_has("migrate repair 2");
    assert_eq!(p.applied(), vec![1, 2], "nothing applied");
    p.migrate(&["status"])
        .success()
        .stdout_has("CHANGED !")
        .stdout_has("1 changed");
    let json = p.migrate(&["status", "--json"]).success().json();
    assert_eq!(json["migrations"][1]["state"], "changed");
    assert_eq!(json["counts"]["pending"], 1);

    p.migrate(&["repair", "2"])
        .success()
        .stdout_has("accepted the current checksum");
    p.migrate(&["up"]).success();
    assert_eq!(p.applied(), vec![1, 2, 3]);
    let repairs: i64 = p.db.scalar(
        "SELECT count(*) FROM _migrate.history WHERE direction = 'repair' AND version = 2 AND note LIKE 'accepted checksum%'",
    );
    assert_eq!(repairs, 1);
}

#[test]
fn deleted_applied_file_shows_missing() {
    let p = three("deleted");
    p.migrate(&["up"]).success();
    p.remove_migration("0002_coach_t2.sql");
    let json = p.migrate(&["status", "--json"]).success().json();
    assert_eq!(json["migrations"][1]["state"], "missing");
    assert_eq!(json["counts"]["missing"], 1);
    p.migrate(&["status"]).success().stdout_has("MISSING !");
    p.migrate(&["up"])
        .code(1)
        .stderr_has("0002_coach_t2.sql is applied but its file is missing");
    p.migrate(&["down", "--all"])
        .code(1)
        .stderr_has("file is missing");
    assert_eq!(p.applied(), vec![1, 2, 3]);
}

#[test]
fn pending_below_head_needs_allow_out_of_order() {
    let p = Project::new("out_of_order");
    p.migration("0001_coach_t1.sql", &table(1));
    p.migration("0003_coach_t3.sql", &table(3));
    p.migrate(&["up"]).success();
    p.migration("0002_coach_t2.sql", &table(2));
    p.migrate(&["up"])
        .code(1)
        .stderr_has("merged out of order")
        .stderr_has("--allow-out-of-order");
    p.migrate(&["up", "--allow-out-of-order"])
        .success()
        .stdout_has("0002 was applied out of order");
    assert_eq!(p.applied(), vec![1, 2, 3]);
    let note: String =
        p.db.scalar("SELECT note FROM _migrate.history WHERE version = 2");
    assert!(note.contains("out of order"));
}

#[test]
fn concurrent_ups_apply_each_migration_once() {
    let p = Project::new("concurrent");
    for n in 1..=6 {
        p.migration(
            &format!("000{n}_coach_t{n}.sql"),
            &format!(
                "-- UP\ncreate table coach_t{n} (id int);\nselect pg_sleep(0.05);\n-- DOWN\ndrop table coach_t{n};\n"
            ),
        );
    }
    let runs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| s.spawn(|| p.migrate(&["up", "--json"])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut applied_by_runs = 0;
    for run in &runs {
        run.success();
        applied_by_runs += run.json()["steps"].as_array().unwrap().len();
    }
    assert_eq!(
        applied_by_runs, 6,
        "each migration applied by exactly one run"
    );
    assert_eq!(p.applied(), vec![1, 2, 3, 4, 5, 6]);
    let ups: i64 =
        p.db.scalar("SELECT count(*) FROM _migrate.history WHERE direction = 'up'");
    assert_eq!(ups, 6);
}

#[test]
fn lock_wait_times_out_with_exit_3_naming_the_holder() {
    let p = three("lock_wait");
    p.migrate(&["up", "--to", "1"]).success();
    let mut holder = p.db.client();
    let pid: i32 = holder
        .query_one(
            "SELECT pg_advisory_lock($1, $2), pg_backend_pid()",
            &[&migrate::db::lock::KEYS.0, &migrate::db::lock::KEYS.1],
        )
        .unwrap()
        .get(1);
    p.migrate(&["up", "--lock-wait", "1"])
        .code(3)
        .stderr_has(&format!("holds the migration lock: pid {pid}"));
    p.migrate(&["up", "--lock-wait", "0"]).code(3);
    assert_eq!(p.applied(), vec![1]);
    holder
        .batch_execute("SELECT pg_advisory_unlock_all()")
        .unwrap();
    p.migrate(&["up", "--lock-wait", "1"]).success();
}

#[test]
fn dry_run_changes_nothing() {
    let p = three("dry_run");
    let before = p.db.dump();
    let run = p.migrate(&["up", "--dry-run"]);
    run.success()
        .stdout_has("would run 3 migration(s)")
        .stdout_has("create table coach_t2");
    assert_eq!(p.db.dump(), before);
    let exists: bool =
        p.db.scalar("SELECT to_regnamespace('_migrate') IS NOT NULL");
    assert!(!exists, "not even the state schema is created");
    p.migrate(&["up", "--to", "2"]).success();
    let history_before = history(&p);
    let json = p
        .migrate(&["down", "--all", "--dry-run", "--json"])
        .success()
        .json();
    assert_eq!(json["planned"][0]["version"], 2);
    assert!(json["planned"][0]["sql"]
        .as_str()
        .unwrap()
        .contains("drop table coach_t2"));
    assert_eq!(p.applied(), vec![1, 2]);
    assert_eq!(history(&p), history_before);
}

#[test]
fn transaction_none_runs_concurrent_index_and_marks_dirty_on_failure() {
    let p = Project::new("no_transaction");
    p.migration(
        "0001_coach_t.sql",
        "-- UP\ncreate table coach_t (id int, x int);\n-- DOWN\ndrop table coach_t;\n",
    );
    p.migration(
        "0002_coach_idx.sql",
        "-- transaction: none\n-- UP\ncreate index concurrently coach_t_x on coach_t (x);\n-- DOWN\ndrop index concurrently coach_t_x;\n",
    );
    p.migrate(&["up"]).success();
    let valid: bool =
        p.db.scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = 'coach_t_x'::regclass");
    assert!(valid);

    p.migration(
        "0003_coach_half.sql",
        "-- transaction: none\n-- UP\ncreate index concurrently coach_t_id on coach_t (id);\nselect no_such_function();\n-- DOWN\ndrop index concurrently coach_t_id;\n",
    );
    p.migrate(&["up"])
        .code(1)
        .stderr_has("0003_coach_half.sql:4")
        .stderr_has("marked dirty");
    let dirty: bool =
        p.db.scalar("SELECT dirty FROM _migrate.schema_migrations WHERE version = 3");
    assert!(dirty);
    p.migrate(&["status"]).success().stdout_has("DIRTY !");
    p.migrate(&["up"]).code(1).stderr_has("marked dirty");
    p.migrate(&["up", "--atomic"]).code(1);

    // Undo by hand, forget the record, fix the file: it runs again.
    p.db.execute("DROP INDEX coach_t_id");
    p.migrate(&["repair", "3", "--forget"])
        .success()
        .stdout_has("counts as pending");
    p.migration(
        "0003_coach_half.sql",
        "-- transaction: none\n-- UP\ncreate index concurrently coach_t_id on coach_t (id);\n-- DOWN\ndrop index concurrently coach_t_id;\n",
    );
    p.migrate(&["up"]).success();
    p.migrate(&["down", "--all"]).success();
    assert!(p.applied().is_empty());
}

#[test]
fn repair_clears_a_dirty_mark() {
    let p = Project::new("repair_dirty");
    p.migration(
        "0001_coach_t.sql",
        "-- UP\ncreate table coach_t (id int);\n-- DOWN\ndrop table coach_t;\n",
    );
    p.migration(
        "0002_coach_half.sql",
        "-- transaction: none\n-- UP\nalter table coach_t add column a int;\nalter table coach_t add column a int;\n-- DOWN\nalter table coach_t drop column a;\n",
    );
    p.migrate(&["up"]).code(1);
    p.migrate(&["repair", "2"])
        .success()
        .stdout_has("cleared the dirty mark");
    let dirty: bool =
        p.db.scalar("SELECT dirty FROM _migrate.schema_migrations WHERE version = 2");
    assert!(!dirty);
    p.migrate(&["up"]).success().stdout_has("nothing to up");
    let repairs: i64 =
        p.db.scalar("SELECT count(*) FROM _migrate.history WHERE direction = 'repair'");
    assert_eq!(repairs, 1);
}

#[test]
fn baseline_records_without_running() {
    let p = three("baseline");
    p.migrate(&["baseline", "2"])
        .success()
        .stdout_has("recorded 2 migration(s)");
    assert_eq!(p.applied(), vec![1, 2]);
    assert!(tables(&p).is_empty(), "nothing ran");
    let baselines: i64 =
        p.db.scalar("SELECT count(*) FROM _migrate.history WHERE direction = 'baseline'");
    assert_eq!(baselines, 2);
    p.migrate(&["baseline", "3"])
        .code(1)
        .stderr_has("already recorded");
    p.migrate(&["up"]).success();
    assert_eq!(tables(&p), vec!["coach_t3"]);
}

#[test]
fn irreversible_migration_stops_down_before_it() {
    let p = three("irreversible");
    p.migration(
        "0002_coach_t2.sql",
        "-- UP\ncreate table coach_t2 (id int);\n-- DOWN\n-- cannot be undone: data is lost\n",
    );
    p.migrate(&["up"]).success();
    p.migrate(&["down", "--all"])
        .code(1)
        .stderr_has("0002_coach_t2.sql is irreversible")
        .stderr_has("--to 2");
    assert_eq!(p.applied(), vec![1, 2, 3], "down changed nothing");
    p.migrate(&["down", "--to", "2"]).success();
    assert_eq!(p.applied(), vec![1, 2]);
}

#[test]
fn json_output_is_one_document_for_every_command() {
    // Each command's exit code and effect are stated here, from the README, and the database
    // is read after it: a document whose `exit_code` only echoed the process's own passed with
    // `--dry-run` ignored. Mutation this catches: `up` ignoring `--dry-run` (run.rs) applies
    // 0003 and `applied` reads [1, 2, 3].
    let p = three("json");
    let succeeded = |direction: &str| -> i64 {
        p.db.scalar(&format!(
            "SELECT count(*) FROM _migrate.history WHERE direction = '{direction}' AND success"
        ))
    };
    // (arguments, exit code, versions recorded afterwards)
    let cases: [(&[&str], i32, &[i64]); 7] = [
        // No schema.lock yet: check fails (README, Commands).
        (&["check", "--json"], 1, &[]),
        (&["status", "--json"], 0, &[]),
        // baseline records without running.
        (&["baseline", "1", "--json"], 0, &[1]),
        (&["up", "--json", "--to", "2"], 0, &[1, 2]),
        (&["up", "--json", "--dry-run"], 0, &[1, 2]),
        (&["redo", "--json"], 0, &[1, 2]),
        (&["down", "--json"], 0, &[1]),
    ];
    for (args, code, applied) in cases {
        let run = p.migrate(args);
        run.code(code);
        let json = run.json();
        assert_eq!(json["exit_code"], code, "{args:?}");
        assert_eq!(json["ok"], code == 0, "{args:?}");
        assert_eq!(p.applied(), applied, "after {args:?}");
    }
    assert_eq!(
        tables(&p),
        Vec::<String>::new(),
        "baseline ran nothing, --dry-run applied nothing, down dropped 0002's table"
    );
    // up and redo applied 0002 once each; redo and down reverted it once each.
    assert_eq!((succeeded("up"), succeeded("down")), (2, 2));
    // Errors are a JSON document too, and still go to stderr.
    p.migration("0009_coach_bad.sql", "nope");
    let run = p.migrate(&["up", "--json"]);
    run.code(2).stderr_has("SQL before");
    assert_eq!(run.json()["ok"], false);
    assert_eq!(run.json()["exit_code"], 2);
    assert_eq!(p.applied(), [1]);
}

#[test]
fn passwords_never_appear_in_output() {
    let p = three("password");
    // The harness's server trusts loopback, so any password is accepted, and we can watch for
    // it; a TEST_DATABASE_URL's own password is watched instead.
    let (url, secret) = crate::support::with_password(&p.db.url);
    assert!(url.contains(&secret));
    let outputs = vec![
        p.migrate_raw(&["up", "--database-url", &url], &[]),
        p.migrate_raw(&["status", "--json", "--database-url", &url], &[]),
        p.migrate_raw(&["status"], &[("DATABASE_URL", &url)]),
        p.migrate_raw(&["down", "--dry-run", "--database-url", &url], &[]),
        // Unreachable: the error names the target, redacted.
        p.migrate_raw(
            &[
                "status",
                "--database-url",
                "postgres://app:Sw0rdfish-42@127.0.0.1:1/x",
            ],
            &[],
        ),
        p.migrate_raw(
            &[
                "status",
                "--database-url",
                "postgres://app@127.0.0.1:1/x?password=Sw0rdfish-42",
            ],
            &[],
        ),
        p.migrate_raw(
            &[
                "status",
                "--database-url",
                "host=127.0.0.1 port=1 password=Sw0rdfish-42",
            ],
            &[],
        ),
    ];
    for run in &outputs {
        for secret in [secret.as_str(), "Sw0rdfish-42"] {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "{run:?}"
            );
        }
    }
    outputs[0]
        .success()
        .stdout_has(&format!("{}:***@", server().user()));
    outputs[4]
        .code(3)
        .stderr_has("postgres://app:***@127.0.0.1:1/x");
}

#[test]
fn unreachable_database_exits_3() {
    let p = three("unreachable");
    p.migrate_raw(
        &["up", "--database-url", "postgres://nobody@127.0.0.1:1/none"],
        &[],
    )
    .code(3)
    .stderr_has("cannot connect to postgres://nobody@127.0.0.1:1/none");
    let missing_db = crate::support::with_database(server().admin_url(), "no_such_database");
    p.migrate_raw(&["status", "--database-url", &missing_db], &[])
        .code(3)
        .stderr_has("does not exist");
    p.migrate_raw(&["status", "--database-url", "mysql://x"], &[])
        .code(2)
        .stderr_has("invalid connection string in --database-url");
}

#[test]
fn config_errors_exit_2() {
    let p = three("config");
    p.write("migrate.toml", "[paths]\nmigration = \"db\"\n");
    p.migrate(&["status"])
        .code(2)
        .stderr_has("unknown field `migration`");
    p.write("migrate.toml", "[paths]\nmigrations = \"db/migrations\"\n");
    p.migrate(&["check"])
        .code(2)
        .stderr_has("cannot read the migrations directory");
    std::fs::create_dir_all(p.path().join("db")).unwrap();
    std::fs::rename(p.migrations(), p.path().join("db/migrations")).unwrap();
    p.migrate(&["up"]).success();
    assert_eq!(p.applied(), vec![1, 2, 3]);
}

/// `status` checks every file that is not applied byte for byte, and only finds the sections
/// of one that is: a file an older migrate applied before a rule existed is still reported
/// as what it is (applied), not as an input error; the same bytes pending are refused.
/// Fails if status skips the rules for pending files (the first half) or checks applied,
/// unchanged files whole again (the second half: exit 2 before this change).
#[test]
fn status_checks_every_file_except_applied_unchanged_ones() {
    let p = three("status_depth");
    p.migrate(&["up"]).success();
    let old_rules =
        "-- UP\ncreate table coach_t4 (id int);\ncommit;\n-- DOWN\ndrop table coach_t4;\n";
    p.migration("0004_coach_t4.sql", old_rules);
    p.migrate(&["status"])
        .code(2)
        .stderr_has("0004_coach_t4.sql:3")
        .stderr_has("`COMMIT` in the UP section");
    // As an older migrate without the transaction-control rule would have recorded it.
    let checksum = migrate::migrations::checksum(old_rules.as_bytes());
    p.db.execute(&format!(
        "INSERT INTO _migrate.schema_migrations (version, name, checksum, applied_by, duration_ms, tool_version, dirty)
         VALUES (4, 'coach_t4', '{checksum}', current_user, 1, 'migrate 0.0.9', false)"
    ));
    let json = p.migrate(&["status", "--json"]).success().json();
    let states: Vec<&str> = json["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["applied"; 4]);
    // Edited after it was applied: checked whole again, and its problem is named.
    p.migration(
        "0004_coach_t4.sql",
        &old_rules.replace("(id int)", "(id bigint)"),
    );
    p.migrate(&["status"])
        .code(2)
        .stderr_has("0004_coach_t4.sql:3");
}

/// Reading the files overlaps with connecting, but a broken file is still reported before an
/// unreachable database (exit 2, not 3), as `up` reports it. Fails if the connection error
/// wins the race.
#[test]
fn status_names_a_broken_file_before_an_unreachable_database() {
    let p = three("status_order");
    p.migration(
        "0004_coach_t4.sql",
        "-- UP\ncreate table coach_t4 (id int);\n",
    );
    p.migrate_raw(
        &[
            "status",
            "--database-url",
            "postgres://nobody@127.0.0.1:1/none",
        ],
        &[],
    )
    .code(2)
    .stderr_has("0004_coach_t4.sql")
    .stderr_has("missing `-- DOWN` marker");
}

/// A redo that fails while applying again says what is true: the re-applied ones before it
/// stay applied, the failed one stays reverted. Mutation this catches: counting the redo's
/// reverts as migrations that "stay applied" (it said 3 where 1 was, and 2 were reverted).
#[test]
fn a_failed_redo_counts_what_stays_applied_and_what_stays_reverted() {
    let p = Project::new("redo_counts");
    p.migration(
        "0001_coach_gate.sql",
        "-- UP\ncreate table coach_gate (x int);\ninsert into coach_gate values (1);\n-- DOWN\ndrop table coach_gate;\n",
    );
    p.migration("0002_coach_t2.sql", &table(2));
    p.migration(
        "0003_coach_t3.sql",
        "-- UP\ncreate table coach_t3 (id int);\nselect 1 / (select count(*) from coach_gate)::int;\n-- DOWN\ndrop table coach_t3;\ndelete from coach_gate;\n",
    );
    p.migrate(&["up"]).success();
    p.migrate(&["redo", "--steps", "2"])
        .code(1)
        .stderr_has("up of coach_t3 failed")
        .stderr_has("1 migration(s) before it stay applied")
        .stderr_has("1 migration(s) this run reverted stay reverted");
    assert_eq!(p.applied(), vec![1, 2]);
}
