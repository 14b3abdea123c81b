//! The PostgreSQL harness: one throw-away cluster per test binary, started with the same code
//! as the local cluster (or the server `TEST_DATABASE_URL` names), and a fresh database per
//! test, so tests run in parallel. A project builder runs the real binary in a temporary
//! directory with its own migration files.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use migrate::local::{Cluster, ServerOptions};

/// The server every test of this binary uses.
pub struct Server {
    /// A URL to the server's `postgres` database, with rights to create databases.
    admin_url: String,
    /// The role `admin_url` logs in as (`postgres` on the harness's own cluster; any name
    /// under `TEST_DATABASE_URL`): what `applied_by` records and what URLs name.
    user: String,
    admin: Mutex<postgres::Client>,
}

static SERVER: OnceLock<Server> = OnceLock::new();
static CLUSTERS: Mutex<Vec<Cluster>> = Mutex::new(Vec::new());
static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn server() -> &'static Server {
    SERVER.get_or_init(|| {
        let admin_url = match std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
        {
            Some(url) => url,
            None => start_cluster(),
        };
        let mut admin = postgres::Client::connect(&admin_url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to the test server: {e}"));
        let user = admin
            .query_one("SELECT current_user::text", &[])
            .expect("the test server's user")
            .get(0);
        Server {
            admin_url,
            user,
            admin: Mutex::new(admin),
        }
    })
}

/// A throw-away cluster under the temp directory, stopped and removed when the test process
/// exits (at exit, or by a watchdog if the process is killed).
fn start_cluster() -> String {
    let (cluster, port) = throwaway_cluster("", |_| ServerOptions {
        fast: true,
        settings: vec![("max_connections".into(), max_connections().to_string())],
    });
    cluster.url(port, "postgres")
}

/// Connections one test thread may hold at its peak, with room to spare: its clients, the
/// sessions of the `migrate` runs it starts (three at once in the concurrency tests), and the
/// server connections PgBouncer keeps per test database; closed connections also linger a
/// moment before their backend exits. Measured: 14 client backends at the peak of a whole
/// run with 2 test threads (README, Tests).
const CONNECTIONS_PER_TEST: usize = 16;

/// `max_connections` for the harness's cluster: every test thread at its peak at once, plus
/// the admin session and superuser_reserved_connections; never below PostgreSQL's default
/// (100), which a machine with a dozen cores and more test threads would exhaust.
fn max_connections() -> usize {
    let threads = std::env::var("RUST_TEST_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    (threads * CONNECTIONS_PER_TEST + 20).max(100)
}

/// Starts another throw-away cluster (e.g. one with TLS on); `prepare` may write server files
/// and returns the options to start it with. Stopped and removed like the main one.
pub fn throwaway_cluster(
    label: &str,
    prepare: impl FnOnce(&Cluster) -> ServerOptions,
) -> (Cluster, u16) {
    let root = std::env::temp_dir().join(format!("migrate-test{label}-{}", std::process::id()));
    let cluster = Cluster::new(&root).expect("PostgreSQL server binaries");
    let options = prepare(&cluster);
    let port = cluster
        .ensure_running(options)
        .unwrap_or_else(|e| panic!("cannot start the test cluster: {e}"));
    let mut clusters = CLUSTERS.lock().unwrap_or_else(|e| e.into_inner());
    if clusters.is_empty() {
        extern "C" fn stop_clusters() {
            let clusters = CLUSTERS.lock().unwrap_or_else(|e| e.into_inner());
            for cluster in clusters.iter() {
                cluster.destroy();
            }
        }
        // SAFETY: registers a plain function with no arguments to run at process exit.
        unsafe { libc::atexit(stop_clusters) };
    }
    clusters.push(cluster.clone());
    // If the test process is killed, atexit does not run: a watchdog shell stops the server
    // (SIGQUIT is PostgreSQL's immediate shutdown) and removes its files.
    let watchdog = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         kill -QUIT $(head -n 1 '{data}/postmaster.pid' 2>/dev/null) 2>/dev/null; sleep 1; \
         rm -rf '{root}' '{server}'",
        pid = std::process::id(),
        data = cluster.data_dir().display(),
        root = root.display(),
        server = cluster.data_dir().parent().unwrap().display(),
    );
    let _ = Command::new("sh")
        .arg("-c")
        .arg(watchdog)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    (cluster, port)
}

/// `url` with its database replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    migrate::conninfo::Parsed::new(url)
        .expect("a valid connection string")
        .with_database(database)
}

impl Server {
    /// A new empty database for one test.
    pub fn database(&self, label: &str) -> TestDb {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let clean: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        let name = format!("t{}_{n}_{clean}", std::process::id());
        self.admin
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .batch_execute(&format!("CREATE DATABASE \"{name}\" TEMPLATE template0"))
            .unwrap_or_else(|e| panic!("create database {name}: {e}"));
        TestDb {
            url: with_database(&self.admin_url, &name),
        }
    }

    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// The role the tests connect as.
    pub fn user(&self) -> &str {
        &self.user
    }
}

/// `url` with a password in it, and that password: the one it (or PGPASSWORD) has, else one
/// made up (the harness's cluster trusts loopback, so any password is accepted), for tests
/// that watch for a password in the output.
pub fn with_password(url: &str) -> (String, String) {
    let config: postgres::Config = url.parse().expect("a valid connection string");
    if let Some(password) = config.get_password() {
        return (
            url.to_string(),
            String::from_utf8_lossy(password).into_owned(),
        );
    }
    let password = std::env::var("PGPASSWORD").unwrap_or_else(|_| "Sw0rdfish-42".to_string());
    let user = config.get_user().unwrap_or(server().user());
    (with_credentials(url, user, Some(&password)), password)
}

/// `url` logging in as `user` with `password` (none: no password in the string), in the same
/// form (URL or key=value) and to the same host, port and database.
pub fn with_credentials(url: &str, user: &str, password: Option<&str>) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
    // What a URL's userinfo must encode (RFC 3986), so a plain password reads as written.
    const USERINFO: &AsciiSet = &CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'#')
        .add(b'%')
        .add(b'/')
        .add(b':')
        .add(b'<')
        .add(b'>')
        .add(b'?')
        .add(b'@')
        .add(b'[')
        .add(b'\\')
        .add(b']')
        .add(b'^')
        .add(b'`')
        .add(b'{')
        .add(b'|')
        .add(b'}');
    let scheme_end = ["postgresql://", "postgres://"]
        .iter()
        .find(|p| url.starts_with(*p))
        .map(|p| p.len());
    let Some(start) = scheme_end else {
        let quote = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
        let mut text = format!("{url} user={}", quote(user));
        if let Some(password) = password {
            text.push_str(&format!(" password={}", quote(password)));
        }
        return text;
    };
    let authority_end = url[start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| start + i);
    let hosts = url[start..authority_end]
        .rfind('@')
        .map_or(start, |at| start + at + 1);
    let mut userinfo = utf8_percent_encode(user, USERINFO).to_string();
    if let Some(password) = password {
        userinfo.push(':');
        userinfo.extend(utf8_percent_encode(password, USERINFO));
    }
    format!("{}{userinfo}@{}", &url[..start], &url[hosts..])
}

/// `url` with the libpq `options` parameter `options` (percent-encoded, e.g.
/// `-c%20statement_timeout%3D700`).
pub fn with_options(url: &str, options: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options={options}")
}

pub struct TestDb {
    pub url: String,
}

impl TestDb {
    /// The database's name: the last part of its URL's path.
    pub fn name(&self) -> String {
        let path = self.url.rsplit('/').next().unwrap_or_default();
        path.split('?').next().unwrap_or_default().to_string()
    }

    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).expect("connect to the test database")
    }

    /// One scalar value.
    pub fn scalar<T: for<'a> postgres::types::FromSql<'a>>(&self, sql: &str) -> T {
        self.client()
            .query_one(sql, &[])
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get(0)
    }

    pub fn execute(&self, sql: &str) {
        self.client()
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// `pg_dump --schema-only` of everything but the `_migrate` state, normalised.
    pub fn dump(&self) -> String {
        pg_dump(
            &self.url,
            &["--schema-only", "--no-owner", "--exclude-schema=_migrate"],
        )
    }
}

/// `pg_dump --data-only` of the given schemas, normalised like `dump()`: for checking that
/// a run wrote nothing.
pub fn dump_data_of(url: &str, schemas: &[&str]) -> String {
    let mut args = vec!["--data-only".to_string(), "--no-owner".to_string()];
    args.extend(schemas.iter().map(|s| format!("--schema={s}")));
    pg_dump(url, &args)
}

/// Runs the server's own `pg_dump` with `args` on `url`; its output without the random
/// `\restrict` token lines pg_dump 15.14+ writes into every dump.
fn pg_dump<S: AsRef<std::ffi::OsStr>>(url: &str, args: &[S]) -> String {
    let bindir = migrate::local::find_bindir().expect("PostgreSQL binaries");
    let output = Command::new(bindir.join("pg_dump"))
        .args(args)
        .arg("-d")
        .arg(url)
        .output()
        .expect("run pg_dump");
    assert!(
        output.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl TestDb {
    /// `pg_dump --data-only` of `schemas`, normalised like `dump()`.
    pub fn dump_data(&self, schemas: &[&str]) -> String {
        dump_data_of(&self.url, schemas)
    }
}

/// The repository's own directory (for its migrations and fixtures).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A throw-away project directory with its own database.
pub struct Project {
    pub dir: tempfile::TempDir,
    pub db: TestDb,
}

impl Project {
    /// An empty project: no migrations yet.
    pub fn new(label: &str) -> Project {
        let dir = tempfile::Builder::new()
            .prefix("migrate-project-")
            .tempdir()
            .expect("tempdir");
        std::fs::create_dir(dir.path().join("migrations")).expect("migrations dir");
        Project {
            dir,
            db: server().database(label),
        }
    }

    /// A project whose migrations are a copy of the repository's own.
    pub fn with_repo_migrations(label: &str) -> Project {
        let project = Project::new(label);
        for entry in std::fs::read_dir(repo().join("migrations")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|x| x == "sql") {
                std::fs::copy(&path, project.migrations().join(path.file_name().unwrap())).unwrap();
            }
        }
        project
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn migrations(&self) -> PathBuf {
        self.path().join("migrations")
    }

    /// Writes `migrations/<file>`.
    pub fn migration(&self, file: &str, text: &str) -> &Self {
        std::fs::write(self.migrations().join(file), text).unwrap();
        self
    }

    pub fn write(&self, relative: &str, text: &str) -> &Self {
        let path = self.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        self
    }

    pub fn remove_migration(&self, file: &str) {
        std::fs::remove_file(self.migrations().join(file)).unwrap();
    }

    /// Runs `migrate ARGS --database-url <this test's database>`.
    pub fn migrate(&self, args: &[&str]) -> Run {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--database-url", &self.db.url]);
        self.migrate_raw(&all, &[])
    }

    /// Runs `migrate ARGS` with extra environment variables, and no database URL added.
    pub fn migrate_raw(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_migrate"));
        command
            .args(args)
            .current_dir(self.path())
            .env_remove("DATABASE_URL")
            .env_remove("MIGRATE_CONFIG")
            .env("NO_COLOR", "1");
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

    /// Versions recorded in `_migrate.schema_migrations`.
    pub fn applied(&self) -> Vec<i64> {
        let exists: bool = self
            .db
            .scalar("SELECT to_regclass('_migrate.schema_migrations') IS NOT NULL");
        if !exists {
            return Vec::new();
        }
        self.db
            .client()
            .query(
                "SELECT version FROM _migrate.schema_migrations ORDER BY version",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }
}

/// The outcome of one run of the binary.
#[derive(Debug)]
pub struct Run {
    pub args: Vec<String>,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code, expected,
            "migrate {:?} exited {} (expected {expected})\nstdout:\n{}\nstderr:\n{}",
            self.args, self.code, self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn success(&self) -> &Self {
        self.code(0)
    }

    #[track_caller]
    pub fn stdout_has(&self, text: &str) -> &Self {
        assert!(
            self.stdout.contains(text),
            "stdout lacks {text:?}:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, text: &str) -> &Self {
        assert!(
            self.stderr.contains(text),
            "stderr lacks {text:?}:\n{}\nstdout:\n{}",
            self.stderr,
            self.stdout
        );
        self
    }

    /// The single JSON document on stdout.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", self.stdout))
    }
}

/// Runs `sql` after tests/sql/rls_helpers.sql (the `pg_temp` helpers the RLS scripts call), in
/// one transaction that is always rolled back: how the scripts of tests/sql are run.
pub fn rolled_back_with_rls_helpers(
    client: &mut postgres::Client,
    sql: &str,
) -> Result<(), postgres::Error> {
    let helpers = std::fs::read_to_string(repo().join("tests/sql/rls_helpers.sql"))
        .expect("read tests/sql/rls_helpers.sql");
    let mut tx = client.transaction().expect("begin");
    let result = tx
        .batch_execute(&helpers)
        .and_then(|()| tx.batch_execute(sql));
    tx.rollback().expect("rollback");
    result
}
