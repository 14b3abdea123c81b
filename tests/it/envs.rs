//! Environments against a real PostgreSQL: TLS modes on a cluster with ssl=on, protected
//! environments, `plan` and `promote` between two databases playing staging and production.

use std::path::PathBuf;
use std::sync::OnceLock;

use migrate::local::ServerOptions;

use crate::support::{server, throwaway_cluster, Project, Run, TestDb};

// ---------------------------------------------------------------------------------------
// TLS

/// A second cluster with `ssl=on`, serving a certificate for `localhost` signed by a CA made
/// here; `ca` is that CA's certificate (PEM).
struct TlsServer {
    port: u16,
    ca: PathBuf,
}

fn tls_server() -> &'static TlsServer {
    static TLS: OnceLock<TlsServer> = OnceLock::new();
    TLS.get_or_init(|| {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "migrate test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let server_key = KeyPair::generate().unwrap();
        let server_cert = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&server_key, &issuer)
            .unwrap();
        let mut ca = PathBuf::new();
        let (_, port) = throwaway_cluster("-tls", |cluster| {
            let write = |name: &str, text: String| {
                cluster
                    .write_server_file(name, text.as_bytes())
                    .unwrap()
                    .display()
                    .to_string()
            };
            ca = PathBuf::from(write("ca.crt", ca_cert.pem()));
            ServerOptions {
                fast: true,
                settings: vec![
                    ("ssl".into(), "on".into()),
                    (
                        "ssl_cert_file".into(),
                        write("server.crt", server_cert.pem()),
                    ),
                    (
                        "ssl_key_file".into(),
                        write("server.key", server_key.serialize_pem()),
                    ),
                    ("hba_file".into(), write("pg_hba.conf", HBA.to_string())),
                ],
            }
        });
        let mut admin = postgres::Client::connect(
            &format!("host=127.0.0.1 port={port} user=postgres dbname=postgres"),
            postgres::NoTls,
        )
        .unwrap();
        admin
            .batch_execute("CREATE ROLE plain_only LOGIN; CREATE ROLE tls_only LOGIN;")
            .unwrap();
        TlsServer { port, ca }
    })
}

/// Trust on loopback, except that `plain_only` is rejected over TLS and `tls_only` without.
const HBA: &str = "\
local     all all                        trust
hostssl   all plain_only 127.0.0.1/32    reject
hostnossl all tls_only   127.0.0.1/32    reject
host      all all        127.0.0.1/32    trust
host      all all        ::1/128         trust
";

impl TlsServer {
    /// A URL to the TLS cluster through `host`, with `params` as its query.
    fn url(&self, host: &str, params: &str) -> String {
        format!(
            "postgres://postgres:Sw0rdfish-42@{host}:{}/postgres?{params}",
            self.port
        )
    }

    fn ca(&self) -> String {
        self.ca.display().to_string()
    }
}

/// Connects with the library's own `connect`; whether the session is encrypted, or the
/// whole error.
fn encrypted(url: &str) -> Result<bool, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let conninfo = migrate::conninfo::ConnInfo::new(url, migrate::conninfo::Env::Empty)
            .map_err(|e| e.to_string())?;
        let client = migrate::db::connect(&conninfo)
            .await
            .map_err(|e| format!("{e:#}"))?;
        let row = client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(row.get(0))
    })
}

#[test]
fn tls_require_encrypts_without_checking_the_certificate() {
    let tls = tls_server();
    assert_eq!(
        encrypted(&tls.url("127.0.0.1", "sslmode=require")),
        Ok(true)
    );
    // prefer takes TLS when offered; disable and the local default stay plain.
    assert_eq!(encrypted(&tls.url("127.0.0.1", "sslmode=prefer")), Ok(true));
    assert_eq!(
        encrypted(&tls.url("127.0.0.1", "sslmode=disable")),
        Ok(false)
    );
    assert_eq!(encrypted(&tls.url("127.0.0.1", "")), Ok(false));
    // The same through the binary.
    let p = Project::new("tls_require");
    p.migrate_raw(
        &[
            "status",
            "--database-url",
            &tls.url("127.0.0.1", "sslmode=require"),
        ],
        &[],
    )
    .success()
    .stdout_has("postgres:***@127.0.0.1");
}

#[test]
fn tls_prefer_and_allow_try_the_other_way_when_the_server_rejects_the_first() {
    let tls = tls_server();
    let url = |user: &str, mode: &str| {
        format!(
            "postgres://{user}@127.0.0.1:{}/postgres?sslmode={mode}",
            tls.port
        )
    };
    // libpq's prefer: the server rejects this user over TLS, so a plain session follows.
    assert_eq!(encrypted(&url("plain_only", "prefer")), Ok(false));
    assert_eq!(encrypted(&url("postgres", "prefer")), Ok(true));
    let e = encrypted(&url("plain_only", "require")).unwrap_err();
    assert!(e.contains("pg_hba.conf rejects connection"), "{e}");
    // libpq's allow: plain first, TLS when the server rejects the plain session.
    assert_eq!(encrypted(&url("postgres", "allow")), Ok(false));
    assert_eq!(encrypted(&url("tls_only", "allow")), Ok(true));
    // Rejected both ways: both errors are shown.
    let e = encrypted(&url("nobody", "prefer")).unwrap_err();
    assert!(
        e.contains("role \"nobody\" does not exist")
            && e.contains("the attempt before it failed too"),
        "{e}"
    );
}

#[test]
fn tls_verify_full_with_the_right_root_certificate_connects() {
    let tls = tls_server();
    let ca = format!("sslrootcert={}", tls.ca());
    assert_eq!(
        encrypted(&tls.url("localhost", &format!("sslmode=verify-full&{ca}"))),
        Ok(true)
    );
    // verify-ca checks the chain only: the certificate names localhost, not 127.0.0.1.
    assert_eq!(
        encrypted(&tls.url("127.0.0.1", &format!("sslmode=verify-ca&{ca}"))),
        Ok(true)
    );
    // key=value connection strings carry the same parameters.
    let conninfo = format!(
        "host=localhost port={} user=postgres dbname=postgres sslmode=verify-full sslrootcert='{}'",
        tls.port,
        tls.ca()
    );
    assert_eq!(encrypted(&conninfo), Ok(true));
}

#[test]
fn tls_verify_full_without_the_root_certificate_fails_naming_the_certificate() {
    let tls = tls_server();
    let p = Project::new("tls_unknown_issuer");
    let run = p.migrate_raw(
        &[
            "status",
            "--database-url",
            &tls.url("localhost", "sslmode=verify-full"),
        ],
        &[],
    );
    run.code(3)
        .stderr_has("cannot connect to postgres://postgres:***@localhost:")
        .stderr_has(
            "the server's TLS certificate was rejected (sslmode=verify-full): unknown issuer",
        )
        .stderr_has("sslrootcert=")
        .stderr_has("invalid peer certificate: UnknownIssuer");
    assert!(!run.stderr.contains("Sw0rdfish-42"), "{}", run.stderr);

    // With the CA but the wrong name: verify-full checks the host name.
    let url = tls.url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={}", tls.ca()),
    );
    let e = encrypted(&url).unwrap_err();
    assert!(e.contains("name mismatch"), "{e}");
    // require with sslrootcert verifies the chain, as libpq does.
    let other_ca = p.path().join("other-ca.pem");
    let rcgen::CertifiedKey { cert, .. } =
        rcgen::generate_simple_self_signed(vec!["elsewhere".to_string()]).unwrap();
    std::fs::write(&other_ca, cert.pem()).unwrap();
    let url = tls.url(
        "localhost",
        &format!("sslmode=require&sslrootcert={}", other_ca.display()),
    );
    let e = encrypted(&url).unwrap_err();
    assert!(e.contains("unknown issuer"), "{e}");
}

/// README, TLS: without `sslrootcert`, `~/.postgresql/root.crt` is the root certificate when it
/// exists (as libpq), for `verify-full` and for `require` (which then verifies the chain);
/// `sslrootcert=system` makes `verify-full` the default and refuses a weaker `sslmode`.
/// Mutations this catches: the `~/.postgresql/root.crt` default dropped from `conninfo`
/// (verify-full then fails, require then connects), and `system` no longer implying
/// verify-full (the plain `sslrootcert=system` URL then connects with `prefer`).
#[test]
fn tls_root_certificate_defaults() {
    let tls = tls_server();
    let p = Project::new("tls_root_defaults");
    let home = p.path().join("home");
    std::fs::create_dir_all(home.join(".postgresql")).unwrap();
    let home_env = home.display().to_string();
    let status = |params: &str| {
        p.migrate_raw(
            &["status", "--database-url", &tls.url("localhost", params)],
            &[("HOME", &home_env)],
        )
    };
    // No root.crt yet: verify-full has only the system's CAs, which do not know ours.
    status("sslmode=verify-full")
        .code(3)
        .stderr_has("unknown issuer");
    // ~/.postgresql/root.crt holds our CA: verify-full connects with no sslrootcert.
    std::fs::copy(&tls.ca, home.join(".postgresql/root.crt")).unwrap();
    status("sslmode=verify-full").success();
    // Another CA there: require verifies the chain against it, and fails.
    let rcgen::CertifiedKey { cert, .. } =
        rcgen::generate_simple_self_signed(vec!["elsewhere".to_string()]).unwrap();
    std::fs::write(home.join(".postgresql/root.crt"), cert.pem()).unwrap();
    status("sslmode=require")
        .code(3)
        .stderr_has("unknown issuer");
    std::fs::remove_file(home.join(".postgresql/root.crt")).unwrap();
    status("sslmode=require").success();
    // sslrootcert=system: verify-full unless told otherwise, and nothing weaker.
    status("sslrootcert=system")
        .code(3)
        .stderr_has("sslmode=verify-full")
        .stderr_has("unknown issuer");
    status("sslrootcert=system&sslmode=require")
        .code(2)
        .stderr_has("sslmode=require cannot be used with sslrootcert=system");
}

#[test]
fn tls_require_against_a_server_without_tls_says_the_server_refused() {
    // The main test cluster runs with ssl=off.
    let p = Project::new("tls_refused");
    // A TEST_DATABASE_URL server may offer TLS: then a throw-away one without it stands in.
    let ssl: String = p.db.scalar("SHOW ssl");
    let plain = if ssl == "off" {
        p.db.url.clone()
    } else {
        let (cluster, port) = throwaway_cluster("-plain", |_| ServerOptions {
            fast: true,
            ..ServerOptions::default()
        });
        cluster.url(port, "postgres")
    };
    let (url, secret) = crate::support::with_password(&plain);
    let url = format!("{url}?sslmode=require");
    let run = p.migrate_raw(&["up", "--database-url", &url], &[]);
    run.code(3)
        .stderr_has("the server refused TLS: sslmode=require requires encryption")
        .stderr_has("error performing TLS handshake: server does not support TLS");
    assert!(!run.stderr.contains(&secret), "{}", run.stderr);
    // prefer falls back to a plain session.
    assert_eq!(encrypted(&format!("{plain}?sslmode=prefer")), Ok(false));
    // When the plain session fails too, the refusal of TLS before it is not worth a word.
    let e = encrypted(&format!("{plain}_nonexistent?sslmode=prefer")).unwrap_err();
    assert!(e.contains("does not exist"), "{e}");
    assert!(!e.contains("attempt before"), "{e}");
    let _ = server();
}

#[test]
fn tls_parameter_errors_exit_2() {
    let p = Project::new("tls_params");
    p.migrate_raw(
        &[
            "status",
            "--database-url",
            &format!("{}?sslmode=verify", p.db.url),
        ],
        &[],
    )
    .code(2)
    .stderr_has("the value of `sslmode` is not one of");
    p.migrate_raw(
        &[
            "status",
            "--database-url",
            &format!(
                "{}?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem",
                p.db.url
            ),
        ],
        &[],
    )
    .code(2)
    .stderr_has("sslrootcert=/nonexistent/ca.pem: cannot read certificates");
}

// ---------------------------------------------------------------------------------------
// Environments, protection, plan and promote

/// A project whose migrate.toml names two environments, each its own database: staging is
/// the project's own database, production a second one, protected.
struct Pair {
    p: Project,
    prod: TestDb,
}

/// Timeouts as a real project sets them, generous: a loaded machine must not fail a test
/// that is not about them (a whole promote under a 300 ms lock_timeout did). The timeout tests
/// write their own tight ones (`TIGHT`).
const ENVIRONMENTS: &str = r#"
[env.staging]
url_env = "STAGING_URL"
statement_timeout = "10min"

[env.production]
url_env = "PRODUCTION_URL"
protected = true
lock_timeout = "1min"
"#;

/// `ENVIRONMENTS` with timeouts short enough to watch them stop a migration.
const TIGHT: &str = r#"
[env.staging]
url_env = "STAGING_URL"
statement_timeout = "2s"

[env.production]
url_env = "PRODUCTION_URL"
protected = true
lock_timeout = "300ms"
"#;

fn table(n: u32) -> String {
    format!(
        "-- UP\ncreate table coach_t{n} (id int primary key);\n-- DOWN\ndrop table coach_t{n};\n"
    )
}

impl Pair {
    fn new(label: &str) -> Pair {
        let p = Project::new(label);
        p.write("migrate.toml", ENVIRONMENTS);
        Pair {
            prod: server().database(&format!("{label}_prod")),
            p,
        }
    }

    /// With three simple migrations.
    fn three(label: &str) -> Pair {
        let pair = Pair::new(label);
        for n in 1..=3 {
            pair.p
                .migration(&format!("000{n}_coach_t{n}.sql"), &table(n));
        }
        pair
    }

    fn run(&self, args: &[&str]) -> Run {
        self.p.migrate_raw(
            args,
            &[
                ("STAGING_URL", &self.p.db.url),
                ("PRODUCTION_URL", &self.prod.url),
            ],
        )
    }

    /// `migrate promote --from staging --to production EXTRA`.
    fn promote(&self, extra: &[&str]) -> Run {
        let mut args = vec!["promote", "--from", "staging", "--to", "production"];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    fn staging(&self) -> Vec<(i64, String)> {
        recorded(&self.p.db)
    }

    fn production(&self) -> Vec<(i64, String)> {
        recorded(&self.prod)
    }

    fn versions(&self) -> Vec<i64> {
        self.production().into_iter().map(|(v, _)| v).collect()
    }
}

/// Versions and checksums in `_migrate.schema_migrations`.
fn recorded(db: &TestDb) -> Vec<(i64, String)> {
    let exists: bool = db.scalar("SELECT to_regclass('_migrate.schema_migrations') IS NOT NULL");
    if !exists {
        return Vec::new();
    }
    db.client()
        .query(
            "SELECT version, checksum FROM _migrate.schema_migrations ORDER BY version",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// The `kind`s and versions of a plan's reasons.
fn reasons(json: &serde_json::Value) -> Vec<(String, Option<i64>)> {
    json["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_string(),
                r["version"].as_i64(),
            )
        })
        .collect()
}

/// `plan --json`, which must exit `code` (the caller knows whether the plan may proceed; the
/// plan's own `may_proceed` is not the judge of its exit code). Mutation this catches: a plan
/// that may not proceed exiting 0 (`PlanReport::status` always Success) — every refusal
/// test fails; it passed when the expected code was read from `may_proceed`.
#[track_caller]
fn plan_json(pair: &Pair, code: i32) -> serde_json::Value {
    let run = pair.run(&["plan", "--from", "staging", "--to", "production", "--json"]);
    run.code(code);
    let json = run.json();
    assert_eq!(json["may_proceed"], code == 0, "{json:#}");
    assert_eq!(json["exit_code"], code);
    json
}

#[test]
fn promote_brings_production_to_staging_head_with_identical_checksums() {
    let pair = Pair::new("promote_repo");
    // verify's errors block a promotion: head's issue-11 holes are acknowledged until 0055+.
    pair.p.write(
        "migrate.toml",
        &format!("{ENVIRONMENTS}{}", crate::verify::HEAD_HOLES),
    );
    for entry in std::fs::read_dir(crate::support::repo().join("migrations")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "sql") {
            std::fs::copy(&path, pair.p.migrations().join(path.file_name().unwrap())).unwrap();
        }
    }
    pair.run(&["up", "--env", "staging"]).success();
    pair.run(&["up", "--env", "production", "--to", "22", "--yes"])
        .success();
    let before = pair.versions();
    assert_eq!(before.last(), Some(&22));

    let plan = plan_json(&pair, 0);
    assert_eq!(plan["may_proceed"], true);
    assert_eq!(plan["reasons"], serde_json::json!([]));
    let missing: Vec<i64> = plan["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["version"].as_i64().unwrap())
        .collect();
    let expected: Vec<i64> = pair
        .staging()
        .into_iter()
        .map(|(v, _)| v)
        .filter(|v| !before.contains(v))
        .collect();
    assert_eq!(missing, expected);
    assert_eq!(plan["to"]["head"], 22);
    assert_eq!(plan["from"]["environment"], "staging");
    // Each side names its own database (not merely some non-empty text). Mutation this
    // catches: the plan showing one side's target for both.
    let database = |url: &str| url.rsplit('/').next().unwrap().to_string();
    for (side, url) in [("from", &pair.p.db.url), ("to", &pair.prod.url)] {
        let target = plan[side]["target"].as_str().unwrap();
        assert!(
            target.ends_with(&format!("/{}", database(url))),
            "{side}: {target}"
        );
    }

    let run = pair.promote(&["--yes", "--json"]);
    run.success();
    let report = run.json();
    assert_eq!(report["steps"].as_array().unwrap().len(), missing.len());
    assert_eq!(pair.production(), pair.staging());
    assert_eq!(pair.prod.dump(), pair.p.db.dump());
    let promoted: i64 = pair.prod.scalar(
        "SELECT count(*) FROM _migrate.history
         WHERE note = 'promoted from staging' AND direction = 'up' AND success",
    );
    assert_eq!(promoted, missing.len() as i64);

    // Nothing left to promote.
    let again = plan_json(&pair, 0);
    assert_eq!(again["missing"], serde_json::json!([]));
    pair.promote(&["--yes"])
        .success()
        .stdout_has("nothing to promote");
}

#[test]
fn promote_applies_what_staging_applied_and_no_other_local_file() {
    let pair = Pair::three("promote_exact");
    pair.run(&["up", "--env", "staging", "--to", "2"]).success();
    pair.run(&["up", "--env", "production", "--to", "1", "--yes"])
        .success();
    // Production is protected: without a terminal, --yes is needed, and nothing is applied.
    pair.promote(&[])
        .code(2)
        .stderr_has("\"Apply 1 migration promoted from staging\": pass --yes");
    assert_eq!(pair.versions(), [1]);
    // 0003 is a local file staging has not applied: it is not promoted.
    let run = pair.promote(&["--yes", "--json"]);
    run.success();
    assert_eq!(pair.versions(), [1, 2]);
    assert_eq!(pair.production(), pair.staging());
    assert_eq!(run.json()["head"], 2);
    let noted: String = pair.prod.scalar(
        "SELECT string_agg(version || ' ' || direction || ' ' || coalesce(note, '-'), ', ' ORDER BY id)
         FROM _migrate.history",
    );
    assert_eq!(noted, "1 up -, 2 up promoted from staging");
}

#[test]
fn plan_refuses_diverged_history() {
    // Production applied a version staging has not.
    let pair = Pair::three("plan_diverged");
    pair.run(&["up", "--env", "staging"]).success();
    pair.run(&["up", "--env", "production", "--yes"]).success();
    pair.run(&["repair", "2", "--forget", "--env", "staging"])
        .success();
    let plan = plan_json(&pair, 1);
    assert_eq!(plan["may_proceed"], false);
    assert_eq!(reasons(&plan), [("diverged".to_string(), Some(2))]);

    // Production skipped a version staging applied before others: the order differs.
    let pair = Pair::three("plan_order");
    pair.run(&["up", "--env", "staging"]).success();
    pair.run(&["up", "--env", "production", "--yes"]).success();
    pair.run(&[
        "repair",
        "2",
        "--forget",
        "--env",
        "production",
        "--allow-destructive",
        "--yes",
    ])
    .success();
    let plan = plan_json(&pair, 1);
    assert_eq!(reasons(&plan), [("diverged".to_string(), Some(2))]);
    let before = pair.production();
    pair.promote(&["--yes"])
        .code(1)
        .stderr_has("refusing to promote")
        .stderr_has("not a prefix");
    assert_eq!(pair.production(), before);
}

#[test]
fn plan_refuses_a_changed_checksum() {
    let pair = Pair::three("plan_checksum");
    pair.run(&["up", "--env", "production", "--to", "2", "--yes"])
        .success();
    // The file was edited after production ran it; staging ran the edited one.
    pair.p.migration(
        "0002_coach_t2.sql",
        "-- UP\ncreate table coach_t2 (id bigint primary key);\n-- DOWN\ndrop table coach_t2;\n",
    );
    pair.run(&["up", "--env", "staging"]).success();
    let plan = plan_json(&pair, 1);
    assert_eq!(reasons(&plan), [("checksum_changed".to_string(), Some(2))]);
    pair.run(&["plan", "--from", "staging", "--to", "production"])
        .code(1)
        .stdout_has("may proceed: no")
        .stdout_has("0002 coach_t2 has checksum");
}

#[test]
fn plan_refuses_a_dirty_migration() {
    let pair = Pair::three("plan_dirty");
    pair.p.migration(
        "0003_coach_t3.sql",
        "-- transaction: none\n-- UP\ncreate table coach_t3 (id int);\nselect 1/0;\n-- DOWN\ndrop table if exists coach_t3;\n",
    );
    pair.run(&["up", "--env", "production", "--to", "1", "--yes"])
        .success();
    pair.run(&["up", "--env", "staging"])
        .code(1)
        .stderr_has("division by zero");
    let plan = plan_json(&pair, 1);
    assert_eq!(reasons(&plan), [("dirty".to_string(), Some(3))]);
    assert!(plan["reasons"][0]["message"]
        .as_str()
        .unwrap()
        .starts_with("staging: 0003 coach_t3 failed part way"));
}

#[test]
fn plan_refuses_when_production_is_ahead() {
    let pair = Pair::three("plan_ahead");
    pair.run(&["up", "--env", "staging", "--to", "1"]).success();
    pair.run(&["up", "--env", "production", "--yes"]).success();
    let plan = plan_json(&pair, 1);
    assert_eq!(
        reasons(&plan),
        [
            ("production_ahead".to_string(), Some(2)),
            ("production_ahead".to_string(), Some(3))
        ]
    );
}

#[test]
fn plan_and_promote_refuse_files_that_differ_from_staging() {
    let pair = Pair::three("plan_files");
    pair.run(&["up", "--env", "staging"]).success();
    pair.run(&["up", "--env", "production", "--to", "1", "--yes"])
        .success();
    // Someone edited migration 3 locally after staging ran it.
    pair.p.migration(
        "0003_coach_t3.sql",
        "-- UP\ncreate table coach_t3 (id text primary key);\n-- DOWN\ndrop table coach_t3;\n",
    );
    let plan = plan_json(&pair, 1);
    assert_eq!(reasons(&plan), [("file_changed".to_string(), Some(3))]);
    pair.promote(&["--yes"])
        .code(1)
        .stderr_has("0003_coach_t3.sql differs from what staging applied");
    assert_eq!(pair.versions(), [1]);

    pair.p.remove_migration("0003_coach_t3.sql");
    let plan = plan_json(&pair, 1);
    assert_eq!(reasons(&plan), [("file_missing".to_string(), Some(3))]);
    pair.promote(&["--yes"]).code(1);
    assert_eq!(pair.versions(), [1]);
}

#[test]
fn protected_environment_needs_the_flags() {
    let pair = Pair::three("protected");
    // Without a terminal, a protected run needs --yes (exit 2, nothing applied).
    pair.run(&["up", "--env", "production"])
        .code(2)
        .stderr_has("environment `production` is protected and stdin is not a terminal")
        .stderr_has("\"Apply 3 migrations\": pass --yes");
    let untouched: bool = pair
        .prod
        .scalar("SELECT to_regnamespace('_migrate') IS NULL");
    assert!(untouched, "a refused run created the state tables");
    pair.run(&["up", "--env", "production", "--yes"]).success();
    assert_eq!(pair.versions(), [1, 2, 3]);

    // Destructive commands need --allow-destructive, and --yes too.
    for args in [
        vec!["down", "--env", "production", "--yes"],
        vec!["redo", "--env", "production", "--yes"],
        vec!["repair", "3", "--env", "production", "--yes"],
        vec!["baseline", "3", "--env", "production", "--yes"],
        vec!["local", "reset", "--env", "production"],
    ] {
        let what = if args[0] == "local" {
            "local reset"
        } else {
            args[0]
        };
        pair.run(&args).code(1).stderr_has(&format!(
            "environment `production` is protected: `{what}` needs --allow-destructive"
        ));
    }
    assert_eq!(pair.versions(), [1, 2, 3]);
    pair.run(&["down", "--env", "production", "--allow-destructive"])
        .code(2)
        .stderr_has("pass --yes");
    assert_eq!(pair.versions(), [1, 2, 3]);
    pair.run(&[
        "down",
        "--env",
        "production",
        "--allow-destructive",
        "--yes",
    ])
    .success();
    assert_eq!(pair.versions(), [1, 2]);

    // Promote to a protected environment needs --yes as well.
    pair.run(&["up", "--env", "staging"]).success();
    pair.promote(&[]).code(2).stderr_has("pass --yes");
    assert_eq!(pair.versions(), [1, 2]);

    // An unprotected environment asks nothing.
    pair.run(&["down", "--env", "staging"]).success();
    assert_eq!(pair.staging().len(), 2);
}

#[test]
fn every_migration_runs_with_the_environments_timeouts() {
    let pair = Pair::three("timeouts");
    pair.run(&["up", "--env", "production", "--to", "1", "--yes"])
        .success();
    pair.p.write("migrate.toml", TIGHT);
    // Another session holds a lock on the table migration 2 alters: production's
    // lock_timeout (300ms) makes the migration fail quickly instead of waiting.
    pair.p.migration(
        "0002_coach_t2.sql",
        "-- UP\nalter table coach_t1 add column note text;\n-- DOWN\nalter table coach_t1 drop column note;\n",
    );
    let mut holder = pair.prod.client();
    let mut tx = holder.transaction().unwrap();
    tx.batch_execute("LOCK TABLE coach_t1 IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    pair.run(&["up", "--env", "production", "--yes"])
        .code(1)
        .stderr_has("0002_coach_t2.sql")
        .stderr_has("canceling statement due to lock timeout (SQLSTATE 55P03)");
    tx.rollback().unwrap();
    assert_eq!(pair.versions(), [1]);

    // Staging's statement_timeout (2s) stops a migration that runs longer.
    pair.p.migration(
        "0003_coach_t3.sql",
        "-- UP\nselect pg_sleep(5);\n-- DOWN\nselect 1;\n",
    );
    pair.run(&["up", "--env", "staging"])
        .code(1)
        .stderr_has("canceling statement due to statement timeout (SQLSTATE 57014)");
    assert_eq!(
        pair.staging()
            .into_iter()
            .map(|(v, _)| v)
            .collect::<Vec<_>>(),
        [1, 2]
    );
}

#[test]
fn environment_errors_exit_2() {
    let pair = Pair::three("env_errors");
    pair.run(&["status", "--env", "qa"])
        .code(2)
        .stderr_has("unknown environment `qa`; migrate.toml defines production, staging");
    pair.p
        .migrate_raw(&["status", "--env", "staging"], &[])
        .code(2)
        .stderr_has("environment `staging` takes its URL from $STAGING_URL, which is not set");
    pair.run(&["plan", "--from", "staging", "--to", "staging"])
        .code(2)
        .stderr_has("--from and --to both name `staging`");
    pair.p
        .migrate_raw(
            &["plan", "--from", "staging", "--to", "production"],
            &[
                ("STAGING_URL", &pair.p.db.url),
                ("PRODUCTION_URL", &pair.p.db.url),
            ],
        )
        .code(2)
        .stderr_has("have the same URL");
    pair.p.write(
        "migrate.toml",
        "[env.production]\nurl_env = \"PRODUCTION_URL\"\nprotect = true\n",
    );
    pair.run(&["status", "--env", "production"])
        .code(2)
        .stderr_has("unknown field `protect`");
}

#[test]
fn plan_and_promote_refuse_when_verify_finds_errors() {
    let pair = Pair::three("plan_drift");
    pair.run(&["up", "--env", "staging"]).success();
    pair.run(&["up", "--env", "production", "--to", "1", "--yes"])
        .success();
    // Someone built a table by hand in a managed schema of production, without RLS.
    pair.prod
        .execute("CREATE SCHEMA coach; CREATE TABLE coach.hand_made (id int PRIMARY KEY)");
    let plan = plan_json(&pair, 1);
    assert_eq!(plan["may_proceed"], false);
    assert_eq!(reasons(&plan), [("drift".to_string(), None)]);
    let message = plan["reasons"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("production: verify found rls_disabled on coach.hand_made"),
        "{message}"
    );
    assert_eq!(plan["to"]["verify"]["ran"], true);
    let before = pair.production();
    pair.promote(&["--yes"])
        .code(1)
        .stderr_has("refusing to promote");
    assert_eq!(pair.production(), before);

    // Fixed by hand: the promotion goes through, and verify runs on production afterwards.
    pair.prod
        .execute("ALTER TABLE coach.hand_made ENABLE ROW LEVEL SECURITY");
    let report = pair.promote(&["--yes", "--json"]).success().json();
    assert_eq!(report["steps"].as_array().unwrap().len(), 2);
    assert_eq!(report["verify"]["ran"], true);
    assert!(report["verify"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["rule"] == "rls_enabled_no_policy"
            && f["schema"] == "coach"
            && f["object"] == "hand_made"));
}
