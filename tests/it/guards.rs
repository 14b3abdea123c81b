//! What the README promises and a mutated product broke without any test noticing (issue 16):
//! the migration lock around every writing command and never around a dry run, the
//! `migration_dirty` verify rule, `seed status`'s "file missing" rows, and the environment's
//! timeouts for every kind of migration. Each test names the mutation it was shown to catch.

use sha2::Digest;

use crate::support::{server, Project, Run, TestDb};

const TABLE: &str =
    "-- UP\ncreate schema coach;\ncreate table coach.items (id int primary key, name text);\n\
                     -- DOWN\ndrop schema coach cascade;\n";

/// A migrated project with one table and a base seed file for it.
fn seeded_project(label: &str) -> Project {
    let p = Project::new(label);
    p.migration("0001_coach_items.sql", TABLE);
    p.migration(
        "0002_coach_more.sql",
        "-- UP\ncreate table coach.more (id int primary key);\n-- DOWN\ndrop table coach.more;\n",
    );
    p.write(
        "seeds/base/010_items.toml",
        "[[coach.items]]\nid = 1\nname = \"one\"\n\n[[coach.items]]\nid = 2\nname = \"two\"\n",
    );
    p.migrate(&["up"]).success();
    p
}

/// A session of the test holding the migration lock on `db`, and its pid.
fn hold_lock(db: &TestDb) -> (postgres::Client, i32) {
    let mut holder = db.client();
    let pid = holder
        .query_one(
            "SELECT pg_advisory_lock($1, $2), pg_backend_pid()",
            &[&migrate::db::lock::KEYS.0, &migrate::db::lock::KEYS.1],
        )
        .unwrap()
        .get(1);
    (holder, pid)
}

/// Everything a run may write: the state tables, the seed rows, the schema.
fn written(db: &TestDb) -> String {
    format!("{}\n{}", db.dump(), db.dump_data(&["_migrate", "coach"]))
}

/// What is wrong with `run`, a command that should have waited for the lock `pid` holds and
/// then exited 3 naming it, having written nothing; None when nothing is.
fn not_refused_by_the_lock(run: &Run, pid: i32, wrote: bool) -> Option<String> {
    let named = run
        .stderr
        .contains(&format!("holds the migration lock: pid {pid}"));
    (run.code != 3 || !named || wrote).then(|| {
        format!(
            "migrate {:?} exited {}{}\nstderr: {}",
            run.args,
            run.code,
            if wrote { " and wrote" } else { "" },
            run.stderr
        )
    })
}

/// Mutations this catches: `seed` (base or test), `seed clear`, `down`, `redo`, `repair` or
/// `baseline` running without the migration lock (each one's `ctx.lock`/`lock_migrations`
/// call deleted: the seed commands then load or delete rows beside a running migration; the
/// migration commands fail later in the record guard, exit 1, with a failure in history).
#[test]
fn every_writing_command_waits_for_the_migration_lock() {
    let p = seeded_project("guard_writing_lock");
    p.write("seeds/test/010_more.toml", "[[coach.more]]\nid = 7\n");
    p.migrate(&["seed", "base"]).success();
    // Every command is tried, and every one that did not wait is listed.
    let mut problems = Vec::new();
    let mut check = |commands: &[&[&str]]| {
        let (_holder, pid) = hold_lock(&p.db);
        let before = written(&p.db);
        for args in commands {
            let run = p.migrate(&[args, &["--lock-wait", "1"][..]].concat());
            problems.extend(not_refused_by_the_lock(&run, pid, written(&p.db) != before));
        }
    };
    // At head, with the base set loaded: each seed command would write.
    check(&[&["seed", "base"], &["seed", "test"], &["seed", "clear"]]);
    // One migration pending: each migration command would write.
    p.migrate(&["down"]).success();
    check(&[
        &["down"],
        &["redo"],
        &["baseline", "2"],
        &["repair", "1", "--forget"],
    ]);
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// Mutations this catches: `--dry-run` taking the lock it promises not to take (README,
/// Commands), for `up`, `down`, `seed` and `seed clear` (the lock moved before the dry-run
/// branch, or the `!args.dry_run` condition dropped).
#[test]
fn dry_runs_take_no_lock() {
    let p = seeded_project("guard_dry_run_lock");
    p.migrate(&["seed", "base"]).success();
    // Every dry run is tried, and every one that failed is listed.
    let mut problems = Vec::new();
    let mut dry_run = |args: &[&str], says: &str| {
        let run = p.migrate(&[args, &["--dry-run", "--lock-wait", "0"][..]].concat());
        if run.code != 0 || !run.stdout.contains(says) {
            problems.push(format!("{run:?}"));
        }
    };
    let holder = hold_lock(&p.db);
    let before = written(&p.db);
    dry_run(
        &["seed", "base"],
        "would leave 0 inserted, 0 updated, 2 unchanged",
    );
    dry_run(&["seed", "clear"], "would delete");
    dry_run(&["down"], "drop table coach.more");
    assert_eq!(written(&p.db), before);
    drop(holder);
    p.migrate(&["down"]).success();
    let _holder = hold_lock(&p.db);
    let before = written(&p.db);
    dry_run(&["up"], "would run 1 migration(s)");
    assert_eq!(written(&p.db), before);
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

const ENVIRONMENTS: &str = "[env.staging]\nurl_env = \"STAGING_URL\"\n\n\
                            [env.production]\nurl_env = \"PRODUCTION_URL\"\nprotected = true\n";

/// Mutation this catches: `promote` not taking production's lock (its `ctx.lock` deleted: the
/// plan is then checked and run while another run migrates production, and the runner's record
/// guard fails the first migration, exit 1).
#[test]
fn promote_waits_for_productions_lock() {
    let p = Project::new("guard_promote_lock");
    let production = server().database("guard_promote_lock_prod");
    p.write("migrate.toml", ENVIRONMENTS);
    for n in 1..=2 {
        p.migration(
            &format!("000{n}_coach_t{n}.sql"),
            &format!("-- UP\ncreate table coach_t{n} (id int primary key);\n-- DOWN\ndrop table coach_t{n};\n"),
        );
    }
    let env = [
        ("STAGING_URL", p.db.url.as_str()),
        ("PRODUCTION_URL", production.url.as_str()),
    ];
    p.migrate_raw(&["up", "--env", "staging"], &env).success();
    p.migrate_raw(&["up", "--env", "production", "--to", "1", "--yes"], &env)
        .success();
    let (holder, pid) = hold_lock(&production);
    let before = written(&production);
    let promote = [
        "promote",
        "--from",
        "staging",
        "--to",
        "production",
        "--yes",
    ];
    let run = p.migrate_raw(&[&promote[..], &["--lock-wait", "1"]].concat(), &env);
    let wrote = written(&production) != before;
    if let Some(problem) = not_refused_by_the_lock(&run, pid, wrote) {
        panic!("{problem}");
    }
    drop(holder);
    p.migrate_raw(&promote, &env).success();
    let head: i64 = production.scalar("SELECT max(version) FROM _migrate.schema_migrations");
    assert_eq!(head, 2);
}

/// Mutation this catches: the `migration_dirty` rule deleted from verify (a `transaction:
/// none` migration that failed part way then verifies clean).
#[test]
fn verify_reports_a_dirty_migration() {
    let p = Project::new("guard_verify_dirty");
    p.migration(
        "0001_coach_t.sql",
        "-- UP\ncreate table coach_t (id int primary key, a int);\n-- DOWN\ndrop table coach_t;\n",
    );
    p.migrate(&["up"]).success();
    let clean = p.migrate(&["verify", "--json"]);
    clean.success();
    assert_eq!(clean.json()["errors"], 0);
    p.migration(
        "0002_coach_half.sql",
        "-- transaction: none\n-- UP\ncreate index concurrently coach_t_a on coach_t (a);\n\
         select 1/0;\n-- DOWN\ndrop index concurrently coach_t_a;\n",
    );
    p.migrate(&["up"]).code(1).stderr_has("marked dirty");
    let run = p.migrate(&["verify", "--json"]);
    run.code(1);
    let json = run.json();
    let errors: Vec<(String, String)> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["level"] == "error")
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["object"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [(
            "migration_dirty".to_string(),
            "migrations/0002_coach_half.sql".to_string()
        )],
        "{json}"
    );
    p.migrate(&["verify"])
        .code(1)
        .stdout_has("migration_dirty")
        .stdout_has("migrate repair 2");
    // Repaired, it verifies clean again.
    p.migrate(&["repair", "2"]).success();
    p.migrate(&["verify"]).success();
}

/// Mutation this catches: `seed status` dropping the rows of loaded files that are gone
/// (its "file missing" loop deleted: the file silently disappears from the report).
#[test]
fn seed_status_lists_a_loaded_file_that_is_gone() {
    let p = seeded_project("guard_seed_missing");
    p.write("seeds/base/020_more.toml", "[[coach.more]]\nid = 7\n");
    p.migrate(&["seed", "base"]).success();
    std::fs::remove_file(p.path().join("seeds/base/020_more.toml")).unwrap();
    let json = p.migrate(&["seed", "status", "--json"]).success().json();
    let rows: Vec<(String, String, String)> = json["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["seed_set"].as_str().unwrap().to_string(),
                f["file"].as_str().unwrap().to_string(),
                f["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let row = |f: &str, s: &str| ("base".to_string(), f.to_string(), s.to_string());
    assert_eq!(
        rows,
        [
            row("010_items.toml", "loaded"),
            row("020_more.toml", "missing")
        ],
        "{json}"
    );
    let gone = &json["files"][1];
    assert!(gone["checksum"].is_null(), "{gone}");
    // SHA-256 of the file as it was written above, computed here.
    let sha: String = sha2::Sha256::digest(b"[[coach.more]]\nid = 7\n")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(gone["loaded_checksum"], sha);
    assert_eq!(gone["loaded_by"], server().user());
    p.migrate(&["seed", "status"])
        .success()
        .stdout_has("020_more.toml")
        .stdout_has("1 loaded, 0 changed since load, 0 never loaded, 1 file missing");
}

/// Tight timeouts, for watching them stop migrations.
const TIMEOUTS: &str = "[env.staging]\nurl_env = \"STAGING_URL\"\nstatement_timeout = \"1s\"\n\n\
                        [env.production]\nurl_env = \"PRODUCTION_URL\"\nlock_timeout = \"300ms\"\n";

/// Mutations this catches: the environment's `lock_timeout` and `statement_timeout` skipped for
/// `transaction: none` migrations (the settings flight of `run_statements` dropped), for
/// `--atomic` runs (the settings of `run_atomic` dropped), or for `down`.
#[test]
fn every_kind_of_migration_runs_with_the_environments_timeouts() {
    let p = Project::new("guard_timeouts");
    p.write("migrate.toml", TIMEOUTS);
    p.migration(
        "0001_coach_t.sql",
        "-- UP\ncreate table coach_t (id int primary key);\n-- DOWN\nselect pg_sleep(8);\ndrop table coach_t;\n",
    );
    let env = [
        ("STAGING_URL", p.db.url.as_str()),
        ("PRODUCTION_URL", p.db.url.as_str()),
    ];
    p.migrate_raw(&["up", "--env", "staging"], &env).success();

    // lock_timeout, outside a transaction: another session holds the table.
    p.migration(
        "0002_coach_none.sql",
        "-- transaction: none\n-- UP\nalter table coach_t add column note text;\n-- DOWN\nalter table coach_t drop column note;\n",
    );
    let mut holder = p.db.client();
    let mut tx = holder.transaction().unwrap();
    // Released by the server after a while, so a run that waits without a timeout ends, and
    // the test fails instead of hanging.
    tx.batch_execute(
        "SET LOCAL idle_in_transaction_session_timeout = '20s';
         LOCK TABLE coach_t IN ACCESS EXCLUSIVE MODE",
    )
    .unwrap();
    p.migrate_raw(&["up", "--env", "production", "--yes"], &env)
        .code(1)
        .stderr_has("0002_coach_none.sql")
        .stderr_has("canceling statement due to lock timeout (SQLSTATE 55P03)");
    tx.rollback().unwrap();
    assert_eq!(p.applied(), [1]);

    // statement_timeout, outside a transaction.
    p.migration(
        "0002_coach_none.sql",
        "-- transaction: none\n-- UP\nselect pg_sleep(8);\n-- DOWN\nselect 1;\n",
    );
    p.migrate_raw(&["up", "--env", "staging"], &env)
        .code(1)
        .stderr_has("canceling statement due to statement timeout (SQLSTATE 57014)");
    assert_eq!(p.applied(), [1]);

    // statement_timeout in an --atomic run.
    p.migration(
        "0002_coach_none.sql",
        "-- UP\nselect pg_sleep(8);\n-- DOWN\nselect 1;\n",
    );
    p.migrate_raw(&["up", "--env", "staging", "--atomic"], &env)
        .code(1)
        .stderr_has("canceling statement due to statement timeout (SQLSTATE 57014)");
    assert_eq!(p.applied(), [1]);

    // statement_timeout going down.
    p.remove_migration("0002_coach_none.sql");
    p.migrate_raw(&["down", "--env", "staging"], &env)
        .code(1)
        .stderr_has("canceling statement due to statement timeout (SQLSTATE 57014)");
    assert_eq!(p.applied(), [1]);
}

/// Setting names ignore case, as PostgreSQL's do: an environment's `WORK_MEM` overrides
/// `[session]`'s `work_mem`. Mutation this catches (attacker finding): merging by exact
/// spelling (both were sent, and the later in byte order, `[session]`'s, won).
#[test]
fn an_environment_setting_overrides_whatever_its_case() {
    let p = Project::new("guard_setting_case");
    p.write(
        "migrate.toml",
        "[session]\nwork_mem = \"4MB\"\n\n\
         [env.staging]\nurl_env = \"STAGING_URL\"\n\n[env.staging.session]\nWORK_MEM = \"8MB\"\n",
    );
    p.migration(
        "0001_coach_mem.sql",
        "-- UP\ncreate table public.coach_mem as select current_setting('work_mem') as mem;\n\
         -- DOWN\ndrop table public.coach_mem;\n",
    );
    let env = [("STAGING_URL", p.db.url.as_str())];
    p.migrate_raw(&["up", "--env", "staging"], &env).success();
    let mem: String = p.db.scalar("SELECT mem FROM public.coach_mem");
    assert_eq!(mem, "8MB");
}

/// The environment's timeouts and `[session]` settings are `SET LOCAL` statements, which take
/// no snapshot: a migration's `SET TRANSACTION ISOLATION LEVEL` still comes first, sent ahead
/// in a chain or not. A list setting reads as `set_config` reads it (unquoted names folded).
/// Mutation this catches: the settings as one `SELECT set_config(...)` again ("SET TRANSACTION
/// ISOLATION LEVEL must be called before any query" whenever an environment set a timeout;
/// attacker finding).
#[test]
fn settings_leave_set_transaction_first() {
    let p = Project::new("guard_set_transaction");
    p.write(
        "migrate.toml",
        "[session]\nsearch_path = \"Coach_Extra, \\\"Mixed Case\\\", public\"\n\n\
         [env.staging]\nurl_env = \"STAGING_URL\"\nlock_timeout = \"5s\"\nstatement_timeout = \"1min\"\n",
    );
    for n in 1..=2 {
        p.migration(
            &format!("000{n}_coach_iso{n}.sql"),
            &format!(
                "-- UP\nset transaction isolation level serializable;\n\
                 create table public.coach_iso{n} as select current_setting('transaction_isolation') as level, \
                 current_setting('search_path') as path, current_setting('lock_timeout') as lock;\n\
                 -- DOWN\ndrop table public.coach_iso{n};\n"
            ),
        );
    }
    let env = [("STAGING_URL", p.db.url.as_str())];
    p.migrate_raw(&["up", "--env", "staging"], &env).success();
    for n in 1..=2 {
        let row: (String, String, String) = {
            let r =
                p.db.client()
                    .query_one(
                        &format!("SELECT level, path, lock FROM public.coach_iso{n}"),
                        &[],
                    )
                    .unwrap();
            (r.get(0), r.get(1), r.get(2))
        };
        assert_eq!(
            row,
            (
                "serializable".to_string(),
                "coach_extra, \"Mixed Case\", public".to_string(),
                "5s".to_string()
            )
        );
    }
    // An empty list and an empty quoted name are still `SET` statements the server takes,
    // with `SET TRANSACTION` first (attacker findings: `SET ... TO ;`, and a `set_config`
    // fallback that took a snapshot).
    for (label, path, shown) in [
        ("guard_set_transaction_empty", "", "\"\""),
        (
            "guard_set_transaction_quoted",
            "\\\"\\\", public",
            "\"\", public",
        ),
    ] {
        let q = Project::new(label);
        q.write(
            "migrate.toml",
            &format!("[session]\nsearch_path = \"{path}\"\n"),
        );
        q.migration(
            "0001_coach_iso.sql",
            "-- UP\nset transaction isolation level serializable;\n\
             create table public.coach_iso as select current_setting('search_path') as path;\n\
             -- DOWN\ndrop table public.coach_iso;\n",
        );
        q.migrate(&["up"]).success();
        let got: String = q.db.scalar("SELECT path FROM public.coach_iso");
        assert_eq!(got, shown, "{label}");
    }
}

/// Mutation this catches: `state::clear_dirty` a no-op (cargo-mutants): a `transaction: none`
/// migration whose DOWN fails on its first statement, which PostgreSQL rolls back by itself,
/// stays applied and must not stay marked dirty.
#[test]
fn a_down_outside_a_transaction_that_changed_nothing_is_not_dirty() {
    let p = Project::new("guard_down_clean");
    p.migration(
        "0001_coach_t.sql",
        "-- transaction: none\n-- UP\ncreate table coach_t (id int);\n\
         -- DOWN\ndrop table coach_missing;\ndrop table coach_t;\n",
    );
    p.migrate(&["up"]).success();
    let json = p.migrate(&["down", "--json"]).code(1).json();
    assert_eq!(json["failure"]["dirty"], false, "{json}");
    assert_eq!(json["failure"]["rolled_back"], true, "{json}");
    let dirty: bool =
        p.db.scalar("SELECT dirty FROM _migrate.schema_migrations WHERE version = 1");
    assert!(!dirty, "still applied, and clean");
    p.migrate(&["up"]).success().stdout_has("nothing to up");
}

/// Mutation this catches: `state::ensure` not upgrading state tables an older `migrate` made
/// (its `!` deleted: `_migrate.history` without `warnings` is left so, and keeping a
/// migration's warnings then fails the run).
#[test]
fn state_tables_of_an_older_migrate_are_upgraded_on_first_use() {
    let p = Project::new("guard_state_upgrade");
    p.migration(
        "0001_coach_t.sql",
        "-- UP\ncreate table coach_t (id int);\n-- DOWN\ndrop table coach_t;\n",
    );
    p.migrate(&["up"]).success();
    p.db.execute("ALTER TABLE _migrate.history DROP COLUMN warnings");
    p.migration(
        "0002_coach_warns.sql",
        "-- UP\ndo $$ begin raise warning 'heads up'; end $$;\n-- DOWN\nselect 1;\n",
    );
    p.migrate(&["up"]).success();
    let kept: Vec<String> =
        p.db.scalar("SELECT warnings FROM _migrate.history WHERE version = 2 AND direction = 'up'");
    assert_eq!(kept, vec!["WARNING: heads up".to_string()]);
}

/// Mutation this catches: `state::ensure` not creating `_migrate.record_step` in state tables
/// an older `migrate` made (its `|| !function` deleted): every transactional migration then
/// fails writing its tracking rows ("function _migrate.record_step(...) does not exist").
#[test]
fn state_tables_without_the_record_function_get_it_on_first_use() {
    let p = Project::new("guard_state_function");
    p.migration(
        "0001_coach_t.sql",
        "-- UP\ncreate table coach_t (id int);\n-- DOWN\ndrop table coach_t;\n",
    );
    p.migrate(&["up"]).success();
    p.db.execute("DROP FUNCTION _migrate.record_step");
    p.migration(
        "0002_coach_u.sql",
        "-- UP\ncreate table coach_u (id int);\n-- DOWN\ndrop table coach_u;\n",
    );
    p.migrate(&["up"]).success();
    p.migrate(&["down"]).success();
    let rows: Vec<String> = p.db.scalar(
        "SELECT array_agg(direction || ' ' || version || ' ' || applied_by ORDER BY id) \
         FROM _migrate.history WHERE version = 2",
    );
    let user: String = p.db.scalar("SELECT current_user::text");
    assert_eq!(rows, vec![format!("up 2 {user}"), format!("down 2 {user}")]);
    let applied: Vec<i64> =
        p.db.scalar("SELECT array_agg(version ORDER BY version) FROM _migrate.schema_migrations");
    assert_eq!(applied, vec![1]);
}

/// Mutation this catches: any error while waiting for the migration lock taken for the lock
/// timeout (`lock::acquire`'s SQLSTATE 55P03 match made `true`): a statement_timeout the
/// connection sets, shorter than `--lock-wait`, then reads as "another run holds the lock,
/// waited 30s" instead of the server's own error.
#[test]
fn an_error_while_waiting_for_the_lock_is_not_called_a_lock_timeout() {
    let p = Project::new("guard_lock_error");
    p.migration(
        "0001_coach_t.sql",
        "-- UP\ncreate table coach_t (id int);\n-- DOWN\ndrop table coach_t;\n",
    );
    let (_holder, _) = hold_lock(&p.db);
    let url = crate::support::with_options(&p.db.url, "-c%20statement_timeout%3D700");
    let run = p.migrate_raw(&["up", "--lock-wait", "30", "--database-url", &url], &[]);
    assert_ne!(run.code, 0, "{run:?}");
    run.stderr_has("canceling statement due to statement timeout");
    assert!(!run.stderr.contains("waited 30s"), "{run:?}");
    assert!(p.applied().is_empty());
}
