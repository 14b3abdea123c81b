//! Daily use (issue 12): what a developer meets in the first hour — skeletons from `new`,
//! `up --to`, unmanaged databases, confirmations, `down`'s advice, the lock prelude,
//! completions, man pages, help examples and output that fits 80 columns.

use std::process::{Command, Stdio};

use crate::support::{server, Project, Run};

const T1: &str = "-- UP\ncreate table coach_t1 (id int);\n-- DOWN\ndrop table coach_t1;\n";
const T2: &str = "-- UP\ncreate table coach_t2 (id int);\n-- DOWN\ndrop table coach_t2;\n";

fn exists(p: &Project, table: &str) -> bool {
    p.db.scalar(&format!("SELECT to_regclass('{table}') IS NOT NULL"))
}

#[test]
fn a_new_empty_migration_is_listed_and_only_up_refuses_it() {
    let p = Project::new("new_then_status");
    p.migration("0001_coach_t1.sql", T1);
    p.migrate(&["lock", "--scratch-url", server().admin_url()])
        .success();
    p.migrate(&["new", "coach_streaks"])
        .success()
        .stdout_has("migrations/0002_coach_streaks.sql");

    // Read-only commands work and show it.
    let status = p.migrate(&["status"]);
    status
        .success()
        .stdout_has("pending")
        .stdout_has("(empty)")
        .stdout_has("migrations/0002_coach_streaks.sql has an empty UP section");
    let json = p.migrate(&["status", "--json"]).success().json();
    let row = &json["migrations"][1];
    assert_eq!(row["version"], 2);
    assert_eq!(row["state"], "pending");
    assert_eq!(row["empty"], true);
    assert_eq!(json["migrations"][0]["empty"], false);
    p.migrate(&["check"])
        .success()
        .stdout_has("schema.lock is current")
        .stdout_has("0002_coach_streaks.sql has an empty UP section");

    // up refuses, naming the file and its `-- UP` line, and applies nothing (not even 0001).
    p.migrate(&["up"])
        .code(2)
        .stderr_has("migrations/0002_coach_streaks.sql:5: the UP section is empty");
    assert!(p.applied().is_empty());
    assert!(!exists(&p, "public.coach_t1"));
    p.migrate(&["up", "--dry-run"])
        .code(2)
        .stderr_has("0002_coach_streaks.sql:5");
    // lock refuses it as well; what comes before it can be applied.
    p.migrate(&["lock", "--scratch-url", server().admin_url()])
        .code(2)
        .stderr_has("0002_coach_streaks.sql:5: the UP section is empty");
    p.migrate(&["up", "--to", "1"]).success();
    assert_eq!(p.applied(), vec![1]);
    p.migrate(&["verify"]).success();
}

#[test]
fn up_to_a_version_that_is_no_migration_is_a_usage_error() {
    let p = Project::new("up_to_unknown");
    p.migration("0001_coach_t1.sql", T1);
    p.migration("0002_coach_t2.sql", T2);
    p.migrate(&["up", "--to", "99"])
        .code(2)
        .stderr_has("--to 0099: no migration has that version");
    p.migrate(&["up", "--to", "0099", "--dry-run"]).code(2);
    assert!(p.applied().is_empty(), "nothing may be applied");
    assert!(!exists(&p, "public.coach_t1"));

    // A version that is applied but whose file is gone is still a version.
    p.migrate(&["up", "--to", "1"]).success();
    p.migrate(&["up", "--to", "1"])
        .success()
        .stdout_has("nothing to up");
    assert_eq!(p.applied(), vec![1]);
}

#[test]
fn verify_on_a_database_migrate_never_touched_says_so() {
    let p = Project::new("verify_unmanaged");
    p.migration("0001_coach_t1.sql", T1);
    p.migrate(&["verify"])
        .code(1)
        .stderr_has("is not managed by migrate (no _migrate state); run `migrate up`, or `migrate baseline VERSION`");
    let json = p.migrate(&["verify", "--json"]).code(1).json();
    assert_eq!(json["exit_code"], 1);
    assert!(
        !exists(&p, "_migrate.schema_migrations"),
        "verify writes nothing"
    );
}

#[test]
fn down_suggests_only_a_command_that_would_revert_something() {
    let p = Project::new("down_irreversible");
    p.migration("0001_coach_t1.sql", T1);
    p.migration(
        "0002_coach_keep.sql",
        "-- UP\ncreate table coach_keep (id int);\n-- DOWN\n-- no way back\n",
    );
    p.migration("0003_coach_t2.sql", T2);
    p.migrate(&["up"]).success();
    // Above the irreversible 0002 there is 0003: `down --to 2` reverts it.
    p.migrate(&["down", "--all"])
        .code(1)
        .stderr_has("0002_coach_keep.sql is irreversible")
        .stderr_has("`migrate down --to 2` reverts only the 1 newer one(s)");
    assert_eq!(p.applied(), vec![1, 2, 3]);
    p.migrate(&["down", "--to", "2"]).success();
    assert_eq!(p.applied(), vec![1, 2]);
    // Now 0002 is the head: nothing would help, so no command is suggested.
    let run = p.migrate(&["down"]);
    run.code(1)
        .stderr_has("it is the newest applied migration, so nothing can be reverted");
    assert!(!run.stderr.contains("--to"), "{}", run.stderr);
    assert_eq!(p.applied(), vec![1, 2]);
}

#[test]
fn new_after_the_largest_version_is_a_usage_error() {
    let p = Project::new("new_max_version");
    p.migration(&format!("{}_coach_last.sql", i64::MAX), T1);
    p.migrate(&["new", "coach_next"])
        .code(2)
        .stderr_has(&format!(
            "the highest version in migrations is {}, the largest a version can be",
            i64::MAX
        ));
    let files = std::fs::read_dir(p.migrations()).unwrap().count();
    assert_eq!(files, 1, "no file was written");
}

#[test]
fn lock_runs_the_prelude_before_the_migrations() {
    let p = Project::new("lock_prelude");
    // A migration that expects Supabase's auth schema, as a Supabase project's would.
    p.migration(
        "0001_coach_profiles.sql",
        "-- UP\ncreate schema coach;\ncreate table coach.profiles (id uuid primary key \
         references auth.users (id));\n-- DOWN\ndrop schema coach cascade;\n",
    );
    p.migrate(&["lock", "--scratch-url", server().admin_url()])
        .code(1)
        .stderr_has("schema \"auth\" does not exist");
    assert!(!p.path().join("schema.lock").exists());

    std::fs::create_dir(p.path().join("supabase")).unwrap();
    std::fs::copy(
        crate::support::repo().join("tests/fixtures/supabase_auth.sql"),
        p.path().join("supabase/prelude.sql"),
    )
    .unwrap();
    p.write(
        "migrate.toml",
        "[lock]\nprelude = [\"supabase/prelude.sql\"]\n",
    );
    p.migrate(&["lock", "--scratch-url", server().admin_url()])
        .success();
    let lock = std::fs::read_to_string(p.path().join("schema.lock")).unwrap();
    assert!(lock.contains("profiles"), "{lock}");
    // Only the managed schemas are locked: the prelude's auth schema is not.
    assert!(!lock.contains("[schemas.auth"), "{lock}");

    // A prelude file that is not there is a configuration error naming the key.
    p.write(
        "migrate.toml",
        "[lock]\nprelude = [\"supabase/missing.sql\"]\n",
    );
    p.migrate(&["lock", "--scratch-url", server().admin_url()])
        .code(2)
        .stderr_has(
            "migrate.toml: [lock] prelude names supabase/missing.sql, which cannot be read",
        );
    // A failing prelude is reported with its file, and nothing is written.
    p.write("supabase/bad.sql", "select nope;\n");
    p.write("migrate.toml", "[lock]\nprelude = [\"supabase/bad.sql\"]\n");
    p.migrate(&["lock", "--scratch-url", server().admin_url()])
        .code(1)
        .stderr_has("the lock prelude supabase/bad.sql failed on the scratch database");
}

#[test]
fn completions_and_man_pages_are_generated_for_every_shell() {
    let p = Project::new("completions");
    for (shell, marker) in [
        ("bash", "complete -F _migrate"),
        ("zsh", "#compdef migrate"),
        ("fish", "complete -c migrate"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let run = p.migrate_raw(&["completions", shell], &[]);
        run.success().stdout_has(marker);
        // Subcommands and their options are in the script.
        run.stdout_has("verify").stdout_has("allow-out-of-order");
    }
    p.migrate_raw(&["completions", "tcsh"], &[])
        .code(2)
        .stderr_has("invalid value 'tcsh'");

    p.migrate_raw(&["man"], &[])
        .success()
        .stdout_has(".TH migrate 1")
        .stdout_has("completions");
    let dir = p.path().join("man1");
    p.migrate_raw(&["man", "--dir", dir.to_str().unwrap()], &[])
        .success()
        .stdout_has("migrate-up.1");
    let page = std::fs::read_to_string(dir.join("migrate-up.1")).unwrap();
    assert!(page.contains("allow\\-out\\-of\\-order"), "{page}");
    assert!(dir.join("migrate-local-reset.1").is_file());
}

#[test]
fn every_help_ends_with_examples() {
    let p = Project::new("help_examples");
    for args in [
        &["--help"][..],
        &["up", "--help"],
        &["status", "--help"],
        &["verify", "--help"],
        &["local", "reset", "--help"],
        &["seed", "test", "--help"],
        &["completions", "--help"],
    ] {
        let run = p.migrate_raw(args, &[]);
        run.success();
        let tail: Vec<&str> = run.stdout.trim_end().lines().rev().take(2).collect();
        assert!(
            tail.iter().all(|l| l.trim_start().starts_with("migrate ")),
            "{args:?} --help does not end with examples:\n{}",
            run.stdout
        );
        run.stdout_has("\nExamples:\n");
    }
}

/// Runs `migrate ARGS` on a pseudo-terminal (util-linux `script`) with `input` typed in; the
/// exit code and what the terminal showed.
fn in_terminal(p: &Project, args: &[&str], env: &[(&str, &str)], input: &str) -> Run {
    let quoted: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_migrate"))
        .chain(args.iter().copied())
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let mut command = Command::new("script");
    command
        .args(["-qefc", &quoted.join(" "), "/dev/null"])
        .current_dir(p.path())
        .env_remove("DATABASE_URL")
        .env("NO_COLOR", "1")
        .env("TERM", "dumb")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("run script(1)");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    Run {
        args: args.iter().map(|s| s.to_string()).collect(),
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).replace('\r', ""),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn promote_lists_the_migrations_before_asking() {
    let p = Project::new("promote_listing");
    let prod = server().database("promote_listing_prod");
    p.write(
        "migrate.toml",
        "[env.staging]\nurl_env = \"STAGING_URL\"\n\n[env.production]\nurl_env = \
         \"PRODUCTION_URL\"\nprotected = true\n",
    );
    p.migration("0001_coach_t1.sql", T1);
    p.migration("0002_coach_t2.sql", T2);
    let env = [
        ("STAGING_URL", p.db.url.as_str()),
        ("PRODUCTION_URL", prod.url.as_str()),
    ];
    p.migrate_raw(&["up", "--env", "staging"], &env).success();
    let promote = ["promote", "--from", "staging", "--to", "production"];

    // Answered no on a terminal: the list came first, then the question; nothing applied.
    let run = in_terminal(&p, &promote, &env, "n\n");
    run.code(1);
    let shown = &run.stdout;
    let list = shown.find("  0001 coach_t1\n  0002 coach_t2\n");
    let question = shown.find("Apply 2 migrations promoted from staging to production");
    assert!(
        list.is_some() && question.is_some() && list < question,
        "the migrations must be listed before the question:\n{shown}"
    );
    assert!(shown.contains("[y/N]"), "{shown}");
    let applied: i64 = prod.scalar(
        "SELECT count(*) FROM pg_catalog.pg_tables WHERE tablename IN ('coach_t1', 'coach_t2')",
    );
    assert_eq!(applied, 0);

    // Answered yes: applied.
    in_terminal(&p, &promote, &env, "y\n").success();
    let applied: i64 = prod.scalar("SELECT count(*) FROM _migrate.schema_migrations");
    assert_eq!(applied, 2);
}

#[test]
fn local_reset_asks_on_a_terminal_and_needs_yes_without_one() {
    let p = Project::new("local_reset_confirm");
    p.migration("0001_coach_t1.sql", T1);
    let _cleanup = Cleanup(p.path().join(".migrate"));
    p.migrate_raw(&["up"], &[]).success();

    // No terminal, no --yes: a usage error, and the data stays.
    p.migrate_raw(&["local", "reset"], &[])
        .code(2)
        .stderr_has("stdin is not a terminal, so nobody can confirm: pass --yes");
    p.migrate_raw(&["status"], &[])
        .success()
        .stdout_has("1 applied, 0 pending");
    // On a terminal, no keeps it.
    let run = in_terminal(&p, &["local", "reset"], &[], "n\n");
    run.code(1)
        .stdout_has("Delete every database of the local cluster");
    p.migrate_raw(&["status"], &[])
        .success()
        .stdout_has("1 applied, 0 pending");
    // --yes resets it.
    p.migrate_raw(&["local", "reset", "--yes"], &[]).success();
    p.migrate_raw(&["status"], &[])
        .success()
        .stdout_has("0 applied, 1 pending");
    p.migrate_raw(&["local", "stop"], &[]).success();
}

/// Stops and removes a project's local cluster even when an assertion fails.
struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(cluster) = migrate::local::Cluster::new(&self.0) {
            cluster.destroy();
        }
    }
}

/// The widest line, in characters (box-drawing characters are one column each).
fn widest(text: &str) -> usize {
    text.lines().map(|l| l.chars().count()).max().unwrap_or(0)
}

#[test]
fn output_fits_80_columns_without_splitting_names() {
    let p = Project::with_repo_migrations("eighty_columns");
    std::fs::copy(
        crate::support::repo().join("schema.lock"),
        p.path().join("schema.lock"),
    )
    .unwrap();
    let columns = [("COLUMNS", "80")];
    let url = p.db.url.clone();
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--database-url", &url]);
        p.migrate_raw(&all, &columns)
    };
    run(&["up"]).success();
    let status = run(&["status"]);
    status.success();
    assert!(widest(&status.stdout) <= 80, "{}", status.stdout);
    // Every name is on one line, whole.
    for entry in std::fs::read_dir(p.migrations()).unwrap() {
        let file = entry.unwrap().file_name().into_string().unwrap();
        let name = &file[5..file.len() - 4];
        status.stdout_has(name);
    }

    // A table without RLS: the finding's identifiers stay whole at 80 columns.
    p.db.execute(
        "create table coach.a_rather_long_table_name_for_the_eighty_column_check (id int primary key)",
    );
    let verify = run(&["verify"]);
    verify.code(1);
    assert!(widest(&verify.stdout) <= 80, "{}", verify.stdout);
    verify.stdout_has("coach.a_rather_long_table_name_for_the_eighty_column_check");

    // Wider: the same report as a table.
    let wide = p.migrate(&["verify"]);
    wide.code(1).stdout_has("┆ rls_disabled");
}

#[test]
fn colour_follows_the_flag_and_dumb_terminals() {
    let p = Project::new("colour");
    p.migration("0001_coach_t1.sql", T1);
    let plain = p.migrate(&["status", "--color", "never"]);
    assert!(!plain.success().stdout.contains('\u{1b}'));
    // NO_COLOR is set by the harness, and stdout is a pipe: `always` still colours.
    let coloured = p.migrate(&["status", "--color", "always"]);
    assert!(
        coloured.success().stdout.contains("\u{1b}["),
        "{}",
        coloured.stdout
    );
    p.migrate(&["status", "--color", "sometimes"])
        .code(2)
        .stderr_has("invalid value 'sometimes'");

    // On a terminal: TERM=dumb gets no colour, a capable terminal does (NO_COLOR unset).
    let url = p.db.url.clone();
    let on_terminal = |term: &str| {
        let mut command = Command::new("script");
        command
            .args([
                "-qefc",
                &format!(
                    "'{}' status --database-url '{url}'",
                    env!("CARGO_BIN_EXE_migrate")
                ),
                "/dev/null",
            ])
            .current_dir(p.path())
            .env_remove("NO_COLOR")
            .env("TERM", term)
            .stdin(Stdio::null());
        String::from_utf8_lossy(&command.output().unwrap().stdout).into_owned()
    };
    let dumb = on_terminal("dumb");
    assert!(
        dumb.contains("pending") && !dumb.contains('\u{1b}'),
        "{dumb}"
    );
    let xterm = on_terminal("xterm-256color");
    assert!(xterm.contains("\u{1b}["), "{xterm}");
}
