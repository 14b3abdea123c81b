//! Connecting as libpq tools do, against a cluster that demands a password (scram-sha-256):
//! credentials from the URL, PGPASSWORD, PGPASSFILE and ~/.pgpass, the other PG* variables,
//! `.env`, `database create|drop`, bad connection strings (exit 2, naming where the value
//! came from), a full server (53300, exit 3), and secrets that never reach the output.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::sync::OnceLock;

use migrate::local::ServerOptions;

use crate::support::{throwaway_cluster, Project, Run};

/// Trust for the superuser (to set the cluster up), passwords for everyone else.
const HBA: &str = "\
local all postgres               trust
host  all postgres 127.0.0.1/32  trust
host  all all      127.0.0.1/32  scram-sha-256
";

/// The password of role `app` (CREATEDB): blanks, quotes, `#`, `@`, `%`, `/` and `\`.
const PASSWORD: &str = "It's a s3cret #1 @/%\\x";

struct PasswordServer {
    port: u16,
}

fn password_server() -> &'static PasswordServer {
    static SERVER: OnceLock<PasswordServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let (_, port) = throwaway_cluster("-password", |cluster| {
            let hba = cluster
                .write_server_file("pg_hba.conf", HBA.as_bytes())
                .unwrap();
            ServerOptions {
                fast: true,
                settings: vec![("hba_file".into(), hba.display().to_string())],
            }
        });
        let mut admin = postgres::Client::connect(
            &format!("host=127.0.0.1 port={port} user=postgres dbname=postgres"),
            postgres::NoTls,
        )
        .unwrap();
        admin
            .batch_execute(&format!(
                "SET password_encryption = 'scram-sha-256';
                 CREATE ROLE app LOGIN CREATEDB PASSWORD {};
                 CREATE ROLE crowded LOGIN PASSWORD 'crowded-pw' CONNECTION LIMIT 0;
                 CREATE ROLE secret_keeper LOGIN;",
                literal(PASSWORD)
            ))
            .unwrap();
        admin
            .batch_execute("CREATE DATABASE app OWNER app")
            .unwrap();
        PasswordServer { port }
    })
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `PASSWORD` percent-encoded for a URL's user information.
fn encoded(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl PasswordServer {
    /// `postgres://app[:password]@127.0.0.1:PORT/db`.
    fn url(&self, password: Option<&str>, db: &str) -> String {
        match password {
            Some(p) => format!("postgres://app:{}@127.0.0.1:{}/{db}", encoded(p), self.port),
            None => format!("postgres://app@127.0.0.1:{}/{db}", self.port),
        }
    }
}

/// Every libpq variable, so the developer's own environment cannot steer a test.
const LIBPQ_VARIABLES: &[&str] = &[
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGDATABASE",
    "PGUSER",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGCHANNELBINDING",
    "PGOPTIONS",
    "PGAPPNAME",
    "PGSSLMODE",
    "PGSSLROOTCERT",
    "PGCONNECT_TIMEOUT",
    "PGTARGETSESSIONATTRS",
    "PGLOADBALANCEHOSTS",
    "DATABASE_URL",
];

/// Runs `migrate ARGS` in the project with exactly the libpq variables in `env` (HOME is
/// the project directory, so no real ~/.pgpass is read).
fn run(p: &Project, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_migrate"));
    command
        .args(args)
        .current_dir(p.path())
        .env_remove("MIGRATE_CONFIG")
        .env("HOME", p.path())
        .env("NO_COLOR", "1");
    for var in LIBPQ_VARIABLES {
        command.env_remove(var);
    }
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().expect("run migrate");
    Run {
        args: args.iter().map(|s| s.to_string()).collect(),
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Neither stdout nor stderr holds `secret` (nor its distinctive parts).
#[track_caller]
fn never_shows(run: &Run, secret: &str) {
    for part in [secret, "s3cret", "S3cr"] {
        if !secret.contains(part) {
            continue;
        }
        assert!(
            !run.stdout.contains(part) && !run.stderr.contains(part),
            "`{part}` of the secret was shown:\nstdout:\n{}\nstderr:\n{}",
            run.stdout,
            run.stderr
        );
    }
}

fn write_private(path: &std::path::Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A passfile line for `app` on this server, escaped as the format wants.
fn passfile_line(port: u16) -> String {
    let escaped = PASSWORD.replace('\\', "\\\\").replace(':', "\\:");
    format!("# comment\n127.0.0.1:{port}:*:app:{escaped}\n")
}

#[test]
fn the_password_comes_from_the_url_or_libpq_environment_or_the_passfile() {
    let s = password_server();
    let p = Project::new("conn_sources");
    let bare = s.url(None, "app");

    // In the URL (percent-encoded), and as key=value with quotes and escapes.
    let r = run(
        &p,
        &["status", "--database-url", &s.url(Some(PASSWORD), "app")],
        &[],
    );
    r.success().stdout_has("postgres://app:***@127.0.0.1");
    never_shows(&r, PASSWORD);
    let kv = format!(
        "host=127.0.0.1 port={} user=app dbname=app password = '{}'",
        s.port,
        PASSWORD.replace('\\', "\\\\").replace('\'', "\\'")
    );
    let r = run(&p, &["status", "--database-url", &kv], &[]);
    r.success().stdout_has("password = ***");
    never_shows(&r, PASSWORD);

    // None anywhere: exit 3, saying where it looked.
    run(&p, &["status", "--database-url", &bare], &[])
        .code(3)
        .stderr_has("no password was given");

    // PGPASSWORD.
    let r = run(
        &p,
        &["status", "--database-url", &bare],
        &[("PGPASSWORD", PASSWORD)],
    );
    r.success();
    never_shows(&r, PASSWORD);

    // A wrong PGPASSWORD: exit 3, naming the source, never the value.
    let wrong = "Wr0ngS3cret-pw";
    let r = run(
        &p,
        &["status", "--database-url", &bare],
        &[("PGPASSWORD", wrong)],
    );
    r.code(3)
        .stderr_has("password authentication failed")
        .stderr_has("the password came from PGPASSWORD");
    never_shows(&r, wrong);

    // PGPASSFILE, 0600.
    let passfile = p.path().join("passfile");
    write_private(&passfile, &passfile_line(s.port), 0o600);
    let file = passfile.to_str().unwrap();
    run(
        &p,
        &["status", "--database-url", &bare],
        &[("PGPASSFILE", file)],
    )
    .success();
    // The string's password and PGPASSWORD come before the file.
    run(
        &p,
        &["status", "--database-url", &bare],
        &[("PGPASSFILE", file), ("PGPASSWORD", wrong)],
    )
    .code(3);
    // Readable by others: ignored, as libpq does, and the error says why.
    write_private(&passfile, &passfile_line(s.port), 0o644);
    run(
        &p,
        &["status", "--database-url", &bare],
        &[("PGPASSFILE", file)],
    )
    .code(3)
    .stderr_has("group or world access");

    // ~/.pgpass (HOME is the project directory here).
    write_private(&p.path().join(".pgpass"), &passfile_line(s.port), 0o600);
    run(&p, &["status", "--database-url", &bare], &[]).success();
}

#[test]
fn host_port_user_database_and_settings_come_from_pg_variables() {
    let s = password_server();
    let p = Project::new("conn_pg_variables");
    let port = s.port.to_string();
    let env = [
        ("PGHOST", "127.0.0.1"),
        ("PGPORT", port.as_str()),
        ("PGUSER", "app"),
        ("PGDATABASE", "app"),
        ("PGPASSWORD", PASSWORD),
        ("PGAPPNAME", "deploy-bot"),
        ("PGCONNECT_TIMEOUT", "5"),
        ("PGSSLMODE", "disable"),
    ];
    // The URL names nothing; libpq's variables fill it in, and the session carries
    // PGAPPNAME's application_name (a migration records it).
    p.migration(
        "0001_platform_app.sql",
        "-- UP\nCREATE TABLE seen AS SELECT current_setting('application_name') AS app, \
         current_user AS who;\n-- DOWN\nDROP TABLE seen;\n",
    );
    run(&p, &["up", "--database-url", "postgres://"], &env).success();
    let mut admin = postgres::Client::connect(
        &format!("host=127.0.0.1 port={} user=postgres dbname=app", s.port),
        postgres::NoTls,
    )
    .unwrap();
    let row = admin.query_one("SELECT app, who FROM seen", &[]).unwrap();
    assert_eq!(row.get::<_, String>(0), "deploy-bot");
    assert_eq!(row.get::<_, String>(1), "app");
    run(&p, &["down", "--database-url", "postgres://"], &env).success();
    // The same with DATABASE_URL unset and key=value naming only the database.
    run(&p, &["status", "--database-url", "dbname=app"], &env).success();
    // PGSSLMODE is honoured: this server has no TLS.
    let mut require = env.to_vec();
    require.retain(|(k, _)| *k != "PGSSLMODE");
    require.push(("PGSSLMODE", "require"));
    run(&p, &["status", "--database-url", "postgres://"], &require)
        .code(3)
        .stderr_has("the server refused TLS");
    // A bad variable is a usage error naming it.
    let mut bad = env.to_vec();
    bad.retain(|(k, _)| *k != "PGPORT");
    bad.push(("PGPORT", "fifty"));
    run(&p, &["status", "--database-url", "postgres://"], &bad)
        .code(2)
        .stderr_has("invalid $PGPORT");
}

#[test]
fn dotenv_supplies_database_url_without_overriding_the_environment() {
    let s = password_server();
    let p = Project::new("conn_dotenv");
    p.write(
        ".env",
        &format!(
            "# teams keep this out of git\nDATABASE_URL={}\nPGPASSWORD=\"{}\"\n",
            s.url(None, "app"),
            PASSWORD.replace('\\', "\\\\").replace('"', "\\\"")
        ),
    );
    let r = run(&p, &["status"], &[]);
    r.success()
        .stdout_has(&format!("postgres://app@127.0.0.1:{}/app", s.port));
    never_shows(&r, PASSWORD);
    // A variable already set wins over .env.
    run(&p, &["status"], &[("PGPASSWORD", "Wr0ngS3cret-pw")])
        .code(3)
        .stderr_has("the password came from PGPASSWORD");
    // A wrong one that .env set is named with .env (attacker finding: it read as the shell's).
    p.write(
        ".env",
        &format!(
            "DATABASE_URL={}\nPGPASSWORD=Wr0ngDotenv-pw\n",
            s.url(None, "app")
        ),
    );
    let r = run(&p, &["status"], &[]);
    r.code(3)
        .stderr_has("the password came from PGPASSWORD (from ")
        .stderr_has(".env)");
    never_shows(&r, "Wr0ngDotenv-pw");
    // A bad URL in .env names .env.
    p.write(".env", "DATABASE_URL=not-a-url\n");
    run(&p, &["status"], &[])
        .code(2)
        .stderr_has("$DATABASE_URL (from ")
        .stderr_has(".env)")
        .stderr_has("neither a postgres:// or postgresql:// URL nor key=value pairs");
    // A line that is not KEY=VALUE.
    p.write(".env", "DATABASE_URL postgres://h/d\n");
    run(&p, &["status"], &[]).code(2).stderr_has(".env: a line");
}

#[test]
fn database_create_and_drop() {
    let s = password_server();
    let p = Project::new("conn_database");
    let name = format!("created_{}", std::process::id());
    let url = s.url(Some(PASSWORD), &name);
    // A missing database: exit 3, and the way forward.
    run(&p, &["status", "--database-url", &url], &[])
        .code(3)
        .stderr_has("does not exist")
        .stderr_has("migrate database create");
    let r = run(
        &p,
        &["database", "create", "--json", "--database-url", &url],
        &[],
    );
    r.success();
    assert_eq!(r.json()["changed"], true);
    assert_eq!(r.json()["database"], name.as_str());
    never_shows(&r, PASSWORD);
    run(&p, &["status", "--database-url", &url], &[]).success();
    run(&p, &["database", "create", "--database-url", &url], &[])
        .success()
        .stdout_has("already exists");

    // Drop asks; without a terminal it needs --yes.
    run(&p, &["database", "drop", "--database-url", &url], &[])
        .code(2)
        .stderr_has("pass --yes");
    // A protected environment refuses without --allow-destructive, even with --yes.
    p.write(
        "migrate.toml",
        "[env.production]\nurl_env = \"PRODUCTION_DATABASE_URL\"\nprotected = true\n",
    );
    let prod = [("PRODUCTION_DATABASE_URL", url.as_str())];
    run(
        &p,
        &["database", "drop", "--env", "production", "--yes"],
        &prod,
    )
    .code(1)
    .stderr_has("--allow-destructive");
    let r = run(
        &p,
        &[
            "database",
            "drop",
            "--env",
            "production",
            "--yes",
            "--allow-destructive",
            "--json",
        ],
        &prod,
    );
    r.success();
    assert_eq!(r.json()["changed"], true);
    run(
        &p,
        &["database", "drop", "--yes", "--database-url", &url],
        &[],
    )
    .success()
    .stdout_has("does not exist; nothing to do");
    run(&p, &["status", "--database-url", &url], &[]).code(3);
}

#[test]
fn bad_connection_strings_are_usage_errors_naming_the_part_and_the_source() {
    let p = Project::new("conn_bad_urls");
    let flag = |url: &str| run(&p, &["status", "--database-url", url], &[]);
    flag("").code(2).stderr_has("--database-url is empty");
    flag("postgres:///app")
        .code(2)
        .stderr_has("invalid connection string in --database-url: it names no host");
    flag("postgres://app@127.0.0.1/my%00db")
        .code(2)
        .stderr_has("the database name in the URL holds %00");
    flag("postgres://app@127.0.0.1:54x/app")
        .code(2)
        .stderr_has("the port is not a number");
    flag("mysql://app@127.0.0.1/app")
        .code(2)
        .stderr_has("the URL scheme `mysql://` is not postgres://");
    run(&p, &["status"], &[("DATABASE_URL", "not-a-url")])
        .code(2)
        .stderr_has("invalid connection string in $DATABASE_URL: it is neither");
    p.write(
        "migrate.toml",
        "[env.staging]\nurl_env = \"STAGING_DATABASE_URL\"\n",
    );
    run(
        &p,
        &["status", "--env", "staging"],
        &[("STAGING_DATABASE_URL", "postgres://u@h/d?sslmode=on")],
    )
    .code(2)
    .stderr_has("$STAGING_DATABASE_URL (url_env of [env.staging] in migrate.toml)")
    .stderr_has("the value of `sslmode` is not one of");
    // A password broken by a careless blank or `@`: refused without quoting it.
    let r = flag("host=127.0.0.1 user=app password=S3cr et-x");
    r.code(2)
        .stderr_has("single-quote a value that holds blanks");
    never_shows(&r, "S3cr et-x");
    let r = flag("postgres://app:S3cr@t-x@127.0.0.1/app");
    r.code(2).stderr_has("percent-encode an `@`");
    never_shows(&r, "S3cr@t-x");
}

#[test]
fn an_out_of_range_lock_timeout_is_refused_at_load() {
    let p = Project::new("conn_lock_timeout");
    p.write(
        "migrate.toml",
        "[env.production]\nurl_env = \"PRODUCTION_DATABASE_URL\"\nlock_timeout = \"99999999999999999999s\"\n",
    );
    run(
        &p,
        &["status", "--env", "production"],
        &[("PRODUCTION_DATABASE_URL", &p.db.url)],
    )
    .code(2)
    .stderr_has("migrate.toml")
    .stderr_has("[env.production] lock_timeout")
    .stderr_has("out of range");
    assert!(p.applied().is_empty());
}

#[test]
fn too_many_connections_at_connect_is_unavailable() {
    let s = password_server();
    let p = Project::new("conn_53300");
    let url = format!("postgres://crowded:crowded-pw@127.0.0.1:{}/app", s.port);
    run(&p, &["status", "--database-url", &url], &[])
        .code(3)
        .stderr_has("too many connections")
        .stderr_has("SQLSTATE 53300");
}

/// Generated passwords, set on a real role and written in every syntax: each connects
/// (the parser read the secret exactly), and neither the output of the run nor the error
/// of a failed one (a wrong password of the same shape) shows any of it.
#[test]
fn generated_secrets_connect_and_are_never_shown() {
    let s = password_server();
    let p = Project::new("conn_secret_property");
    let mut admin = postgres::Client::connect(
        &format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            s.port
        ),
        postgres::NoTls,
    )
    .unwrap();
    let specials = [
        ' ', '\'', '\\', '#', '@', ':', '/', '?', '&', '=', '%', '"', 'é',
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for case in 0..10 {
        let mut secret = String::new();
        for _ in 0..(next() % 4) {
            secret.push(specials[(next() % specials.len() as u64) as usize]);
        }
        secret.push_str(&format!("Zq{:08x}", next() as u32));
        for _ in 0..(next() % 4) {
            secret.push(specials[(next() % specials.len() as u64) as usize]);
        }
        admin
            .batch_execute(&format!(
                "ALTER ROLE secret_keeper PASSWORD {}",
                literal(&secret)
            ))
            .unwrap();
        let core = &secret[secret.find("Zq").unwrap()..][..10];
        for password in [secret.clone(), secret.replace("Zq", "Zx")] {
            let right = password == secret;
            let quoted = password.replace('\\', "\\\\").replace('\'', "\\'");
            let texts = [
                format!(
                    "postgres://secret_keeper:{}@127.0.0.1:{}/postgres",
                    encoded(&password),
                    s.port
                ),
                format!(
                    "postgresql://secret_keeper@127.0.0.1:{}/postgres?password={}",
                    s.port,
                    encoded(&password)
                ),
                format!(
                    "host=127.0.0.1 port={} user=secret_keeper dbname=postgres password='{quoted}'",
                    s.port
                ),
                format!(
                    "password = '{quoted}' host=127.0.0.1 port={} user=secret_keeper dbname=postgres",
                    s.port
                ),
            ];
            for text in &texts {
                let r = run(&p, &["status", "--json", "--database-url", text], &[]);
                r.code(if right { 0 } else { 3 });
                let wrong_core = core.replace("Zq", "Zx");
                for shown in [core, wrong_core.as_str()] {
                    assert!(
                        !r.stdout.contains(shown) && !r.stderr.contains(shown),
                        "case {case}: {shown} shown for {text}:\n{}\n{}",
                        r.stdout,
                        r.stderr
                    );
                }
            }
        }
    }
}

/// Mutation this catches: quoting a `.env` line that cannot be parsed (its value may be a
/// password) instead of naming its line and key.
#[test]
fn an_unparsable_dotenv_line_is_named_by_number_never_by_its_text() {
    for line in [
        "PGPASSWORD=Wr0ng DotPw",
        "export PGPASSWORD=Wr0ng Pw2",
        "PGPASSWORD Wr0ngNoEq",
    ] {
        let p = crate::support::Project::new("dotenv_parse");
        p.write(".env", &format!("A=1\n{line}\n"));
        let run = p.migrate_raw(&["status"], &[]);
        run.code(2)
            .stderr_has(".env: a line cannot be parsed (line 2");
        assert!(!run.stderr.contains("Wr0ng"), "{}", run.stderr);
        assert!(!run.stdout.contains("Wr0ng"), "{}", run.stdout);
    }
}
