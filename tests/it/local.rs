//! `migrate local`: the zero-setup cluster a fresh checkout uses when no URL is given.

use crate::support::Project;

/// Stops and removes the project's local cluster even when an assertion fails.
struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(cluster) = migrate::local::Cluster::new(&self.0) {
            cluster.destroy();
        }
    }
}

#[test]
fn local_cluster_lifecycle_and_default_target() {
    let p = Project::new("local_cluster");
    p.migration(
        "0001_coach_t.sql",
        "-- UP\ncreate table coach_t (id int);\n-- DOWN\ndrop table coach_t;\n",
    );
    let _cleanup = Cleanup(p.path().join(".migrate"));

    let status = p
        .migrate_raw(&["local", "status", "--json"], &[])
        .success()
        .json();
    assert_eq!(status["cluster"]["initialized"], false);
    assert_eq!(status["cluster"]["running"], false);

    // No URL anywhere: `up` creates and starts the local cluster on demand.
    p.migrate_raw(&["up"], &[])
        .success()
        .stdout_has("target: postgres://postgres@127.0.0.1:");
    let status = p
        .migrate_raw(&["local", "status", "--json"], &[])
        .success()
        .json();
    assert_eq!(status["cluster"]["running"], true);
    let port = status["cluster"]["port"].as_u64().expect("a recorded port");
    assert!(p.path().join(".migrate/port").is_file());

    let url = p
        .migrate_raw(&["local", "url"], &[])
        .success()
        .stdout
        .trim()
        .to_string();
    assert_eq!(
        url,
        format!("postgres://postgres@127.0.0.1:{port}/postgres")
    );
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let applied: i64 = client
        .query_one("SELECT count(*) FROM _migrate.schema_migrations", &[])
        .unwrap()
        .get(0);
    assert_eq!(applied, 1);
    // PostgreSQL refuses root: when we are root, the server runs as `postgres`; otherwise as
    // the user running migrate. Read from the server process itself (the owner of its /proc
    // entry), on either branch: the check used to be skipped silently when not root.
    // Mutation this catches: `postgres_user` picking another system user (`nobody`): the
    // server then runs as it (the old root-only check of the data directory's owner caught
    // that too; what it missed is every run as a non-root user).
    let backend: i32 = client
        .query_one("SELECT pg_catalog.pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let output_of = |args: &[&str]| {
        let out = std::process::Command::new(args[0])
            .args(&args[1..])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let server_user = output_of(&["stat", "-c", "%U", &format!("/proc/{backend}")]);
    let we_are_root = unsafe { libc::geteuid() } == 0;
    let expected = if we_are_root {
        "postgres".to_string()
    } else {
        output_of(&["id", "-un"])
    };
    assert!(!expected.is_empty());
    assert_eq!(
        server_user, expected,
        "the server's backend {backend} runs as"
    );
    drop(client);

    p.migrate_raw(&["status"], &[])
        .success()
        .stdout_has("1 applied, 0 pending");
    p.migrate_raw(&["local", "stop"], &[])
        .success()
        .stdout_has("local cluster: stopped");
    assert_eq!(
        p.migrate_raw(&["local", "status", "--json"], &[]).json()["cluster"]["running"],
        false
    );

    // Started again, the data is still there.
    p.migrate_raw(&["local", "start"], &[])
        .success()
        .stdout_has("running on port");
    p.migrate_raw(&["status"], &[])
        .success()
        .stdout_has("1 applied");

    // reset: an empty cluster.
    p.migrate_raw(&["local", "reset", "--yes"], &[]).success();
    p.migrate_raw(&["status"], &[])
        .success()
        .stdout_has("0 applied, 1 pending");
    p.migrate_raw(&["local", "stop"], &[]).success();
}

#[test]
fn database_url_variable_wins_over_the_local_cluster() {
    let p = Project::new("database_url_var");
    p.migration(
        "0001_coach_t.sql",
        "-- UP\ncreate table coach_t (id int);\n-- DOWN\ndrop table coach_t;\n",
    );
    p.migrate_raw(&["up"], &[("DATABASE_URL", &p.db.url)])
        .success();
    assert_eq!(p.applied(), vec![1]);
    assert!(
        !p.path().join(".migrate").exists(),
        "no local cluster was created"
    );
}
