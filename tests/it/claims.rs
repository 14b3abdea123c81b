//! README claims that had no test (issue 16), one test each against the real binary and a
//! real PostgreSQL. Each names the mutation of the product it was shown to catch.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::Project;

const T1: &str = "-- UP\ncreate table coach_t1 (id int);\n-- DOWN\ndrop table coach_t1;\n";

/// README, Migration files: hidden entries and files that plainly are not migrations
/// (`README.md`, `notes.txt`, `.gitkeep`) are ignored; every other command sees only the
/// `.sql` file. Mutation this catches: discovery taking every regular file as a migration
/// (the `.sql` test in `migrations::discover` dropped) — `up` then refuses README.md.
#[test]
fn files_that_are_not_migrations_are_ignored() {
    let p = Project::new("claims_not_sql");
    p.migration("0001_coach_t1.sql", T1);
    p.write(
        "migrations/README.md",
        "# Migrations\n\n-- UP\nnot sql at all\n",
    );
    p.write("migrations/notes.txt", "remember to lock\n");
    p.write("migrations/.gitkeep", "");
    p.write(
        "migrations/.0002_coach_hidden.sql",
        "not a migration: hidden\n",
    );
    p.migrate(&["check"]).code(1).stderr_has("schema.lock");
    p.migrate(&["up"]).success();
    assert_eq!(p.applied(), [1]);
    let status = p.migrate(&["status", "--json"]).success().json();
    let files: Vec<&str> = status["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["file"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["migrations/0001_coach_t1.sql"]);
    let exists: bool =
        p.db.scalar("SELECT to_regclass('public.coach_t1') IS NOT NULL");
    assert!(exists);
}

const SEEDED: &str = "-- UP
CREATE SCHEMA coach;
CREATE TABLE coach.topics (id int PRIMARY KEY, title text NOT NULL);
CREATE TABLE coach.entries (
    id  uuid PRIMARY KEY,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    body text NOT NULL
);
-- DOWN
DROP SCHEMA coach CASCADE;
";

fn seeded(label: &str) -> Project {
    let p = Project::new(label);
    p.migration("0001_coach_topics.sql", SEEDED);
    p.migrate(&["up"]).success();
    p
}

fn topics(p: &Project) -> Vec<(i32, String)> {
    p.db.client()
        .query("SELECT id, title FROM coach.topics ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// README, Seeds: "Loading never deletes" — not a row you added, not a row a file no longer
/// lists. Mutation this catches: the loader emptying each table before it loads it (a
/// `DELETE FROM` ahead of the upsert in `seeds::load`) — the reload then inserts instead of
/// updating, and rows 2 and 3 are gone.
#[test]
fn seeds_never_delete() {
    let p = seeded("claims_seed_no_delete");
    p.write(
        "seeds/base/010_topics.toml",
        "[[coach.topics]]\nid = 1\ntitle = \"sleep\"\n\n[[coach.topics]]\nid = 2\ntitle = \"focus\"\n",
    );
    p.migrate(&["seed", "base"]).success();
    p.db.execute("INSERT INTO coach.topics VALUES (3, 'mine, not the seed''s')");
    // The file no longer lists row 2, and changes row 1.
    p.write(
        "seeds/base/010_topics.toml",
        "[[coach.topics]]\nid = 1\ntitle = \"rest\"\n",
    );
    let json = p.migrate(&["seed", "base", "--json"]).success().json();
    assert_eq!(json["totals"]["updated"], 1, "{json:#}");
    assert_eq!(
        topics(&p),
        [
            (1, "rest".to_string()),
            (2, "focus".to_string()),
            (3, "mine, not the seed's".to_string())
        ]
    );
    // The CSV path too.
    std::fs::remove_file(p.path().join("seeds/base/010_topics.toml")).unwrap();
    p.write("seeds/base/010_coach.topics.csv", "id,title\n1,rest\n");
    p.migrate(&["seed", "base"]).success();
    assert_eq!(topics(&p).len(), 3);
}

/// README, Seeds, "Checked first": a GENERATED ALWAYS identity column that is not the key is
/// an input error (exit 2) naming file, table, row and column, and nothing is written.
/// Mutation this catches: the check in `seeds::prepare` dropped (both the TOML and the CSV
/// one, each tried alone) — the row then loads, exit 0, with the file's value in it.
#[test]
fn a_non_key_identity_column_in_a_seed_is_an_input_error() {
    let p = seeded("claims_seed_identity");
    p.write(
        "seeds/base/010_entries.toml",
        "[[coach.entries]]\nid = \"00000000-0000-4000-8000-000000000001\"\nbody = \"fine\"\n\n\
         [[coach.entries]]\nid = \"00000000-0000-4000-8000-000000000002\"\nseq = 7\nbody = \"no\"\n",
    );
    p.migrate(&["seed", "base"]).code(2).stderr_has(
        "seeds/base/010_entries.toml:5: coach.entries row 2, column `seq`: is an identity \
         column (GENERATED ALWAYS AS IDENTITY); leave it out",
    );
    std::fs::remove_file(p.path().join("seeds/base/010_entries.toml")).unwrap();
    p.write(
        "seeds/base/010_coach.entries.csv",
        "id,seq,body\n00000000-0000-4000-8000-000000000002,7,no\n",
    );
    p.migrate(&["seed", "base"])
        .code(2)
        .stderr_has("seeds/base/010_coach.entries.csv")
        .stderr_has("`seq`: is an identity column (GENERATED ALWAYS AS IDENTITY); leave it out");
    let rows: i64 = p.db.scalar("SELECT count(*) FROM coach.entries");
    assert_eq!(rows, 0, "nothing was written");
}

/// README, Commands: `--quiet` prints only errors; colour (`--color auto`) needs a terminal
/// and no `NO_COLOR`. Mutations this catches: `--quiet` ignored by the printer (stdout not
/// empty), and `NO_COLOR` ignored by `output::colour` (escapes on the terminal).
#[test]
fn quiet_prints_only_errors_and_no_color_is_honoured_on_a_terminal() {
    let p = Project::new("claims_quiet");
    p.migration("0001_coach_t1.sql", T1);
    let run = p.migrate(&["up", "--quiet"]);
    run.success();
    assert_eq!(run.stdout, "", "--quiet printed on stdout");
    assert_eq!(p.applied(), [1], "and still did the work");
    let run = p.migrate(&["status", "-q"]);
    run.success();
    assert_eq!(run.stdout, "");
    // Errors still go to stderr.
    p.write("migrations/0002_coach_bad.sql", "nope\n");
    let run = p.migrate(&["up", "--quiet"]);
    run.code(2).stderr_has("0002_coach_bad.sql:1");
    assert_eq!(run.stdout, "");
    std::fs::remove_file(p.migrations().join("0002_coach_bad.sql")).unwrap();

    // On a real terminal (script(1)): colour, unless NO_COLOR is set.
    let on_terminal = |no_color: Option<&str>| {
        let mut command = Command::new("script");
        command
            .args([
                "-qefc",
                &format!(
                    "'{}' status --database-url '{}'",
                    env!("CARGO_BIN_EXE_migrate"),
                    p.db.url
                ),
                "/dev/null",
            ])
            .current_dir(p.path())
            .env("TERM", "xterm-256color")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null());
        if let Some(value) = no_color {
            command.env("NO_COLOR", value);
        }
        String::from_utf8_lossy(&command.output().unwrap().stdout).into_owned()
    };
    let coloured = on_terminal(None);
    assert!(coloured.contains("\u{1b}["), "{coloured}");
    let plain = on_terminal(Some("1"));
    assert!(
        plain.contains("applied") && !plain.contains("\u{1b}["),
        "{plain}"
    );
    // An empty NO_COLOR counts as unset (no-color.org).
    assert!(on_terminal(Some("")).contains("\u{1b}["));
}

/// Writes an executable shell script.
fn script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, format!("#!/bin/sh\n{text}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A directory holding stand-ins named initdb, pg_ctl and postgres: enough to be found
/// (`local status` of a cluster never created runs none of them).
fn server_dir(dir: &Path) {
    for name in ["initdb", "pg_ctl", "postgres"] {
        script(&dir.join(name), "exit 1");
    }
}

/// README, Where it connects: server binaries are found through `PG_BINDIR`, `PATH`,
/// `pg_config --bindir`, then the newest `/usr/lib/postgresql/*/bin`, in that order; a
/// `PG_BINDIR` without them is an error naming it. Mutation this catches: the `pg_config`
/// step dropped from `local::find_bindir` (the third case then finds the system's
/// binaries instead of pg_config's).
#[test]
fn server_binaries_are_found_in_the_documented_order() {
    let p = Project::new("claims_bindir");
    let root = p.path().join("bins");
    let (named, on_path, configured) = (root.join("named"), root.join("path"), root.join("cfg"));
    server_dir(&named);
    server_dir(&on_path);
    server_dir(&configured);
    let tools = root.join("tools");
    script(
        &tools.join("pg_config"),
        &format!("echo '{}'", configured.display()),
    );
    let bindir = |env: &[(&str, &str)]| {
        let run = p.migrate_raw(&["local", "status", "--json"], env);
        run.success();
        run.json()["cluster"]["bindir"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let path = |dirs: &[&Path]| std::env::join_paths(dirs).unwrap().into_string().unwrap();
    let both = path(&[&tools, &on_path]);
    let show = |d: &Path| d.display().to_string();
    // PG_BINDIR first, then PATH, then pg_config, then /usr/lib/postgresql.
    assert_eq!(
        bindir(&[("PG_BINDIR", &show(&named)), ("PATH", &both)]),
        show(&named)
    );
    assert_eq!(bindir(&[("PATH", &both)]), show(&on_path));
    assert_eq!(bindir(&[("PATH", &path(&[&tools]))]), show(&configured));
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let e = e.ok()?;
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").is_file().then_some((version, bin))
        })
        .max();
    if let Some((_, newest)) = newest {
        let empty = root.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        assert_eq!(bindir(&[("PATH", &show(&empty))]), show(&newest));
    }
    // A PG_BINDIR without the server is an error, not a silent fallback.
    p.migrate_raw(
        &["local", "status"],
        &[("PG_BINDIR", &show(&tools)), ("PATH", &both)],
    )
    .code(3)
    .stderr_has(&format!(
        "PG_BINDIR={} has no initdb, pg_ctl and postgres",
        tools.display()
    ));
}

/// README, TLS: "a host that cannot be reached is not tried a second time by
/// `prefer`/`allow`". A listener that accepts and hangs up at once counts the attempts.
/// Mutation this catches: `db::connect` retrying on any first error (the
/// `tls::server_answered` guard dropped) — the refused host's message then carries "the
/// attempt before it failed too", and the listener counts two attempts (each half was
/// shown to fail on its own).
#[test]
fn sslmode_allow_does_not_retry_a_host_that_cannot_be_reached() {
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let p = Project::new("claims_allow");
    // Refused outright: nothing listens on port 1.
    let run = p.migrate_raw(
        &[
            "status",
            "--database-url",
            "postgres://u@127.0.0.1:1/db?sslmode=allow",
        ],
        &[],
    );
    run.code(3).stderr_has("Connection refused");
    assert!(!run.stderr.contains("attempt before it"), "{}", run.stderr);

    // Reached, but no PostgreSQL answers: one attempt only.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let attempts = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let counter = {
        let (attempts, done) = (attempts.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        attempts.fetch_add(1, Ordering::SeqCst);
                        drop(stream);
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
        })
    };
    let url = format!("postgres://u@127.0.0.1:{port}/db?sslmode=allow&connect_timeout=5");
    let run = p.migrate_raw(&["status", "--database-url", &url], &[]);
    done.store(true, Ordering::SeqCst);
    counter.join().unwrap();
    run.code(3);
    assert_eq!(attempts.load(Ordering::SeqCst), 1, "{}", run.stderr);
    assert!(!run.stderr.contains("attempt before it"), "{}", run.stderr);
}
