//! Production conditions: a transaction-mode PgBouncer in front of the server, SIGINT and
//! SIGTERM during a long migration, and a visible wait for another run's lock.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::{server, Project};
use crate::truth::{spawn, terminate_query, wait_for_query};

/// A real PgBouncer in `pool_mode = transaction` in front of the test server, started once
/// per test process and stopped when it exits (a watchdog kills it if the tests are killed).
struct Bouncer {
    port: u16,
}

static BOUNCER: OnceLock<Bouncer> = OnceLock::new();
static ROUND_ROBIN: OnceLock<Bouncer> = OnceLock::new();
static SESSION_POOL: OnceLock<Bouncer> = OnceLock::new();
static SESSION_POOL_OF_ONE: OnceLock<Bouncer> = OnceLock::new();
static TRANSACTION_POOL_OF_ONE: OnceLock<Bouncer> = OnceLock::new();
static SESSION_POOL_NO_RESET: OnceLock<Bouncer> = OnceLock::new();
static STATEMENT_POOL: OnceLock<Bouncer> = OnceLock::new();
static TRANSACTION_POOL_ONE_CLIENT: OnceLock<Bouncer> = OnceLock::new();
static TRANSACTION_POOL_FORCED: OnceLock<Bouncer> = OnceLock::new();

fn pgbouncer_binary() -> PathBuf {
    for candidate in ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!("PgBouncer is not installed (Debian: apt-get install pgbouncer; .ci/run installs it)");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How many ports `bouncer` tries: a port found free may be taken before PgBouncer binds it.
const PORT_TRIES: usize = 5;

/// A transaction pooler of its own for the forced-exit test, which takes a pooler down when
/// it fails: the other tests' poolers stay up.
fn transaction_bouncer_for_forced_exits() -> &'static Bouncer {
    TRANSACTION_POOL_FORCED
        .get_or_init(|| start_bouncer("-forced", "pool_mode = transaction\ndefault_pool_size = 2"))
}

fn bouncer() -> &'static Bouncer {
    BOUNCER.get_or_init(|| start_bouncer("", "pool_mode = transaction\ndefault_pool_size = 4"))
}

/// A second PgBouncer in `pool_mode = transaction` that hands out the server connection idle
/// the longest (`server_round_robin = 1`) instead of the one released last.
fn round_robin_bouncer() -> &'static Bouncer {
    ROUND_ROBIN.get_or_init(|| {
        start_bouncer(
            "-rr",
            "pool_mode = transaction\ndefault_pool_size = 10\nserver_round_robin = 1",
        )
    })
}

/// A PgBouncer in `pool_mode = session`: each client keeps one server connection while it is
/// connected, and the next client may be handed it afterwards.
fn session_bouncer() -> &'static Bouncer {
    SESSION_POOL
        .get_or_init(|| start_bouncer("-session", "pool_mode = session\ndefault_pool_size = 4"))
}

/// A PgBouncer in `pool_mode = session` with one server connection per database: a second
/// client waits until the first one disconnects.
fn session_bouncer_of_one() -> &'static Bouncer {
    SESSION_POOL_OF_ONE
        .get_or_init(|| start_bouncer("-session1", "pool_mode = session\ndefault_pool_size = 1"))
}

/// A PgBouncer in `pool_mode = session` that hands on its server connections as the last
/// client left them: no `server_reset_query` (its default, `DISCARD ALL`, releases advisory
/// locks). Two per database, so the pooler check's second session is served beside the first.
fn session_bouncer_without_reset() -> &'static Bouncer {
    SESSION_POOL_NO_RESET.get_or_init(|| {
        start_bouncer(
            "-session-noreset",
            "pool_mode = session\ndefault_pool_size = 2\nserver_reset_query =",
        )
    })
}

/// A PgBouncer in `pool_mode = transaction` that takes one client at a time
/// (`max_client_conn = 1`): a second session of the same client is turned away.
fn transaction_bouncer_of_one_client() -> &'static Bouncer {
    TRANSACTION_POOL_ONE_CLIENT.get_or_init(|| {
        start_bouncer(
            "-one-client",
            "pool_mode = transaction\ndefault_pool_size = 3\nmax_client_conn = 1",
        )
    })
}

/// A PgBouncer in `pool_mode = statement`: no transaction blocks at all.
fn statement_bouncer() -> &'static Bouncer {
    STATEMENT_POOL
        .get_or_init(|| start_bouncer("-statement", "pool_mode = statement\ndefault_pool_size = 2"))
}

/// A PgBouncer in `pool_mode = transaction` with one server connection per database: a
/// second client waits until the first one's transaction ends.
fn transaction_bouncer_of_one() -> &'static Bouncer {
    TRANSACTION_POOL_OF_ONE.get_or_init(|| {
        start_bouncer(
            "-transaction1",
            "pool_mode = transaction\ndefault_pool_size = 1",
        )
    })
}

/// Starts a PgBouncer in front of the test server with `pool` settings (`pool_mode` among
/// them), in a directory named with `suffix`; stopped when the test process exits.
fn start_bouncer(suffix: &str, pool: &str) -> Bouncer {
    {
        // The server and the credentials the tests use (TEST_DATABASE_URL's, or the harness's).
        let admin: postgres::Config = server().admin_url().parse().unwrap();
        let server_host = match &admin.get_hosts()[0] {
            postgres::config::Host::Tcp(host) => host.clone(),
            postgres::config::Host::Unix(dir) => dir.display().to_string(),
        };
        let server_port = admin.get_ports().first().copied().unwrap_or(5432);
        let password = admin
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default();
        let dir =
            std::env::temp_dir().join(format!("migrate-pgbouncer{suffix}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("users.txt"),
            format!("\"{}\" \"{password}\"\n", server().user()),
        )
        .unwrap();
        // PgBouncer refuses to run as root: as root, run it as the server's own user.
        let root = unsafe { libc::geteuid() } == 0;
        for attempt in 1..=PORT_TRIES {
            let port = free_port();
            let log = dir.join(format!("pgbouncer-{attempt}.log"));
            std::fs::write(
                dir.join("pgbouncer.ini"),
                format!(
                    "[databases]\n* = host={server_host} port={server_port}\n\n[pgbouncer]\n\
                     listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                     auth_type = trust\nauth_file = {dir}/users.txt\n\
                     max_client_conn = 200\nserver_idle_timeout = 10\n{pool}\n\
                     ignore_startup_parameters = extra_float_digits,options\n\
                     logfile = {log}\npidfile = {dir}/pgbouncer.pid\n",
                    dir = dir.display(),
                    log = log.display(),
                ),
            )
            .unwrap();
            if root {
                let _ = Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&dir)
                    .status();
            }
            let mut command = if root {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(pgbouncer_binary());
                c
            } else {
                Command::new(pgbouncer_binary())
            };
            // Not waited on when it runs: the watchdog below ends it with the test process.
            #[allow(clippy::zombie_processes)]
            let mut child = command
                .arg(dir.join("pgbouncer.ini"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start pgbouncer");
            // Stopped with the test process, like the test clusters.
            let _ = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "while kill -0 {pid} 2>/dev/null; do sleep 1; done; kill {child} 2>/dev/null; \
                     pkill -f '{dir}/pgbouncer.ini' 2>/dev/null; rm -rf '{dir}'",
                    pid = std::process::id(),
                    child = child.id(),
                    dir = dir.display()
                ))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            // Listening once its log says so: a connection alone could reach whoever took
            // the port. If it exits instead, the port was taken first (or it failed).
            let deadline = Instant::now() + Duration::from_secs(20);
            let listening = format!("listening on 127.0.0.1:{port}");
            loop {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                if text.contains(&listening)
                    && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                {
                    return Bouncer { port };
                }
                if child.try_wait().unwrap().is_some() {
                    assert!(
                        text.contains("Address already in use"),
                        "pgbouncer exited:\n{text}"
                    );
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "pgbouncer did not start:\n{text}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("pgbouncer found no free port in {PORT_TRIES} tries");
    }
}

/// The project's database, reached through the pooler.
fn pooled_url(p: &Project) -> String {
    url_through(bouncer(), p)
}

/// The project's database, reached through `pooler`.
fn url_through(pooler: &Bouncer, p: &Project) -> String {
    let config: postgres::Config = p.db.url.parse().unwrap();
    crate::support::with_credentials(
        &format!(
            "postgres://127.0.0.1:{}/{}",
            pooler.port,
            config.get_dbname().unwrap()
        ),
        server().user(),
        None,
    )
}

fn advisory_locks(p: &Project) -> i64 {
    p.db.scalar(&format!(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = {} AND objid = {} \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        migrate::db::lock::KEYS.0,
        migrate::db::lock::KEYS.1
    ))
}

fn five(label: &str) -> Project {
    let p = Project::new(label);
    for v in 1..=5 {
        p.migration(
            &format!("{v:04}_coach_t{v}.sql"),
            &format!("-- UP\ncreate table coach_t{v} (x int);\n-- DOWN\ndrop table coach_t{v};\n"),
        );
    }
    p
}

/// Runs `migrate args` in `p`, sends it `signal` once the server runs the statement holding
/// `marker`, and waits for it: its output, and its stderr as text.
fn interrupt(
    p: &Project,
    args: &[&str],
    marker: &str,
    signal: libc::c_int,
) -> (std::process::Output, String) {
    let child = spawn(p, args);
    wait_for_query(p, marker);
    // SAFETY: signals our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stderr)
}

/// Sessions ever opened to the test database, by the server's statistics, read from the
/// `postgres` database once the count has settled (a backend adds its session to the
/// statistics as it exits).
fn sessions_opened(p: &Project) -> i64 {
    let name = p.db.name();
    let mut admin = postgres::Client::connect(server().admin_url(), postgres::NoTls).unwrap();
    let mut read = || -> i64 {
        admin
            .query_one(
                "SELECT coalesce(sessions, 0) FROM pg_stat_database WHERE datname = $1",
                &[&name],
            )
            .unwrap()
            .get(0)
    };
    let mut last = read();
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = read();
        if now == last {
            return now;
        }
        last = now;
    }
}

/// On a direct TCP connection the backend's client is this process's own socket, which
/// settles "no pooler" without the second session the other signs need (starting a backend
/// is most of a short run's server work). Mutation this catches: dropping the own-socket
/// check in `is_transaction_pooler` (two sessions per run again).
#[test]
fn a_direct_run_over_tcp_opens_one_session() {
    let p = Project::new("one_session");
    p.migration(
        "0001_coach_t.sql",
        "-- UP\ncreate table coach_t (x int);\n-- DOWN\ndrop table coach_t;\n",
    );
    assert!(
        p.db.url.contains("@127.0.0.1:"),
        "the harness connects over TCP"
    );
    let before = sessions_opened(&p);
    p.migrate(&["up"]).success();
    assert_eq!(
        sessions_opened(&p) - before,
        1,
        "sessions opened by one `up`"
    );
    assert_eq!(p.applied(), vec![1]);
}

/// A session pooler reuses server connections, so the backend is older than the session, but
/// it keeps each session on its own backend: what needs a session (a `transaction: none`
/// migration, the session-level lock) works through it, as the README says. Mutation this
/// catches: taking a reused backend for a transaction pooler (refused "through a transaction
/// pooler"; attacker finding).
#[test]
fn a_session_pooler_with_a_warm_pool_is_not_taken_for_a_transaction_pooler() {
    let p = Project::new("session_pool");
    p.migration(
        "0001_coach_t.sql",
        "-- transaction: none\n-- UP\ncreate table coach_t (x int);\n-- DOWN\ndrop table coach_t;\n",
    );
    let url = url_through(session_bouncer(), &p);
    // Warm the pool: this client's server connection stays in it after the client leaves.
    let mut warm = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    warm.batch_execute("SELECT 1").unwrap();
    drop(warm);
    std::thread::sleep(Duration::from_millis(1200));
    p.migrate_raw(&["up", "--database-url", &url], &[])
        .success();
    assert_eq!(p.applied(), vec![1]);
    assert_eq!(advisory_locks(&p), 0, "a lock was left behind");
}

/// A session pooler keeps the server connection when the client leaves, and without a
/// `server_reset_query` that releases advisory locks, whatever the session held stays held.
/// Mutation this catches (attacker finding): leaving the lock to the end of the session (the
/// next run through the pooler, or straight to the server, waited for "another migrate run"
/// that was an idle pooled connection), on success, on a failed migration, and for a command
/// that is not a migration run.
#[test]
fn the_lock_is_released_before_the_session_ends_through_a_session_pooler() {
    let p = Project::new("session_noreset");
    p.migration(
        "0001_coach_t.sql",
        "-- UP\ncreate table coach_t (x int);\n-- DOWN\ndrop table coach_t;\n",
    );
    let url = url_through(session_bouncer_without_reset(), &p);
    p.migrate_raw(&["up", "--database-url", &url], &[])
        .success();
    assert_eq!(p.applied(), vec![1]);
    assert_eq!(advisory_locks(&p), 0, "up left the lock behind");
    p.migration(
        "0002_coach_bad.sql",
        "-- UP\nselect 1/0;\n-- DOWN\nselect 1;\n",
    );
    p.migrate_raw(&["up", "--database-url", &url], &[]).code(1);
    assert_eq!(advisory_locks(&p), 0, "a failed up left the lock behind");
    p.remove_migration("0002_coach_bad.sql");
    p.migrate_raw(&["repair", "1", "--database-url", &url], &[])
        .success();
    assert_eq!(advisory_locks(&p), 0, "repair left the lock behind");
    // Straight to the server, the next run finds the lock free.
    p.migrate(&["--lock-wait", "0", "down"]).success();
    assert!(p.applied().is_empty());
}

/// A second session that waits past the first one's `COMMIT` cannot tell a full session pool
/// from a transaction pool busy with other clients (they take the connection first), so it is
/// taken for the kind a session-level lock is not safe with: transactional migrations run
/// under the transaction-level lock, and what needs a session is refused naming the pooler.
/// Mutations this catches (attacker findings): taking such a wait, or a second session that
/// cannot connect (PgBouncer's `max_client_conn` reached), for a session pooler (the
/// session-level lock stayed on a pooled connection for good).
#[test]
fn a_pooler_that_cannot_be_told_apart_is_taken_for_a_transaction_pooler() {
    for (label, pooler) in [
        ("session_pool_of_one", session_bouncer_of_one()),
        ("one_client", transaction_bouncer_of_one_client()),
    ] {
        let p = Project::new(label);
        p.migration(
            "0001_coach_t.sql",
            "-- UP\ncreate table coach_t (x int);\n-- DOWN\ndrop table coach_t;\n",
        )
        .migration(
            "0002_coach_u.sql",
            "-- transaction: none\n-- UP\ncreate table coach_u (x int);\n-- DOWN\ndrop table coach_u;\n",
        );
        let url = url_through(pooler, &p);
        p.migrate_raw(&["up", "--database-url", &url], &[])
            .code(1)
            .stderr_has("transaction-mode connection pooler")
            .stderr_has("0002_coach_u.sql");
        p.migrate_raw(&["up", "--to", "1", "--database-url", &url], &[])
            .success();
        assert_eq!(p.applied(), vec![1], "{label}");
        assert_eq!(advisory_locks(&p), 0, "{label}: a lock was left behind");
    }
}

/// The other side of the full session pool: a transaction pooler whose only connection is
/// busy makes the second session wait too, and hands it the connection at the first one's
/// `COMMIT`. Mutation this catches: taking every wait for a full session pool (the
/// `transaction: none` migration ran through the transaction pooler).
#[test]
fn a_full_transaction_pool_is_detected() {
    let p = Project::new("transaction_pool_of_one");
    p.migration(
        "0001_coach_t.sql",
        "-- UP\ncreate table coach_t (x int);\n-- DOWN\ndrop table coach_t;\n",
    )
    .migration(
        "0002_coach_idx.sql",
        "-- transaction: none\n-- UP\ncreate index concurrently coach_t_x on coach_t (x);\n-- DOWN\ndrop index concurrently coach_t_x;\n",
    );
    let url = url_through(transaction_bouncer_of_one(), &p);
    p.migrate_raw(&["up", "--database-url", &url], &[])
        .code(1)
        .stderr_has("transaction-mode connection pooler")
        .stderr_has("0002_coach_idx.sql");
    p.migrate_raw(&["up", "--to", "1", "--database-url", &url], &[])
        .success();
    assert_eq!(p.applied(), vec![1]);
    assert_eq!(advisory_locks(&p), 0, "a lock was left behind");
}

/// A pool that hands out the connection idle the longest (PgBouncer `server_round_robin`)
/// is told from a direct server too: runs through it take no session-level lock, so none is
/// left on a pooled connection. Mutation this catches: dropping the sign of two statements in
/// a row of one session on two backends (the lock stayed behind, the next run failed with
/// MG004 and later ones waited for "another migrate run"; attacker finding).
#[test]
fn a_round_robin_transaction_pooler_is_detected() {
    let p = five("round_robin");
    let url = url_through(round_robin_bouncer(), &p);
    p.migrate_raw(&["up", "--to", "2", "--database-url", &url], &[])
        .success();
    assert_eq!(advisory_locks(&p), 0, "a lock was left behind");
    p.migrate_raw(&["up", "--database-url", &url], &[])
        .success();
    p.migrate_raw(&["down", "--all", "--database-url", &url], &[])
        .success();
    assert!(p.applied().is_empty());
    assert_eq!(advisory_locks(&p), 0, "a lock was left behind");
}

/// Mutation this catches: taking the session-level lock (or named statements) through a
/// transaction pooler: the lock stays on a pooled connection, the next run fails.
#[test]
fn migrations_work_through_a_transaction_pooler_and_leave_no_lock() {
    let p = five("pooler");
    let url = pooled_url(&p);
    for _ in 0..2 {
        p.migrate_raw(&["up", "--to", "3", "--database-url", &url], &[])
            .success();
        assert_eq!(advisory_locks(&p), 0, "a lock was left behind");
        p.migrate_raw(&["up", "--database-url", &url], &[])
            .success();
        assert_eq!(p.applied(), vec![1, 2, 3, 4, 5]);
        p.migrate_raw(&["status", "--database-url", &url], &[])
            .success()
            .stdout_has("coach_t5");
        p.migrate_raw(&["down", "--all", "--database-url", &url], &[])
            .success();
        assert!(p.applied().is_empty());
        assert_eq!(advisory_locks(&p), 0, "a lock was left behind");
    }
    // Nothing leaks between pooled sessions either: each migration's settings were local.
    let leaked: i64 = p.db.scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND state = 'idle in transaction'",
    );
    assert_eq!(leaked, 0);
}

/// Mutation this catches: applying a `transaction: none` migration through the pooler, or
/// `setup` applying migrations before its seed set is refused.
#[test]
fn what_needs_a_session_is_refused_through_a_transaction_pooler() {
    let p = five("pooler_refused");
    p.migration(
        "0006_coach_idx.sql",
        "-- transaction: none\n-- UP\ncreate index concurrently coach_t1_x on coach_t1 (x);\n-- DOWN\ndrop index concurrently coach_t1_x;\n",
    );
    let url = pooled_url(&p);
    p.migrate_raw(&["up", "--database-url", &url], &[])
        .code(1)
        .stderr_has("transaction-mode connection pooler")
        .stderr_has("0006_coach_idx.sql")
        .stderr_has("Connect directly");
    assert!(p.applied().is_empty(), "refused before anything ran");
    // Direct, it works; then commands that need a session of their own are refused.
    p.migrate(&["up"]).success();
    std::fs::create_dir_all(p.path().join("seeds/base")).unwrap();
    for args in [&["repair", "6"][..], &["baseline", "6"], &["seed", "base"]] {
        let mut all = args.to_vec();
        all.extend(["--database-url", &url]);
        p.migrate_raw(&all, &[])
            .code(1)
            .stderr_has("transaction-mode connection pooler");
    }
    // `setup` is `up` then a seed set: refused before `up` applies anything (attacker
    // finding: it applied every pending migration, then refused the seed).
    p.migration(
        "0007_coach_t7.sql",
        "-- UP\ncreate table coach_t7 (x int);\n-- DOWN\ndrop table coach_t7;\n",
    );
    p.migrate_raw(&["setup", "--database-url", &url], &[])
        .code(1)
        .stderr_has("transaction-mode connection pooler");
    assert_eq!(p.applied(), vec![1, 2, 3, 4, 5, 6], "setup applied 0007");
    assert_eq!(advisory_locks(&p), 0);
}

/// Deferred constraint triggers run just before the tracking rows, as at COMMIT: what they do
/// is seen by the tracking rows' checks and undone by the pooled reset. Mutations this
/// catches (attacker findings): no `SET CONSTRAINTS ALL IMMEDIATE` before the tracking rows
/// (a trigger that let the run's lock go to another run, which reverted 0001 meanwhile, was
/// recorded applied above it; through a transaction pooler a trigger's session-level
/// advisory lock stayed held on the pooled connection).
#[test]
fn deferred_triggers_run_before_the_tracking_rows() {
    let trigger = |body: &str| {
        format!(
            "-- UP\ncreate table coach_b (x int);\n\
             create function coach_b_deferred() returns trigger language plpgsql as $$\n\
             begin {body} return null; end $$;\n\
             create constraint trigger coach_b_t after insert on coach_b deferrable initially \
             deferred for each row execute function coach_b_deferred();\n\
             insert into coach_b values (1);\n\
             -- DOWN\ndrop table coach_b;\ndrop function coach_b_deferred();\n"
        )
    };
    // Directly: the trigger lets the lock go, and another run takes it meanwhile.
    let p = Project::new("deferred_unlock");
    p.migration(
        "0001_coach_a.sql",
        "-- UP\ncreate table coach_a (x int);\n-- DOWN\ndrop table coach_a;\n",
    );
    p.migration(
        "0002_coach_b.sql",
        &trigger("perform pg_advisory_unlock_all(); perform pg_sleep(3);"),
    );
    let up = spawn(&p, &["up"]);
    wait_for_query(&p, "record_step('up'::text, 2::bigint");
    p.migrate(&["down", "--lock-wait", "2"])
        .success()
        .stdout_has("head is none");
    let out = up.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("released the migration lock"), "{stderr}");
    assert!(p.applied().is_empty(), "{:?}", p.applied());
    let gone: bool = p.db.scalar("SELECT to_regclass('coach_b') IS NULL");
    assert!(gone, "0002 was rolled back");

    // Through a transaction pooler: the trigger's session-level lock does not stay behind.
    let q = Project::new("deferred_pooled");
    q.migration(
        "0001_coach_b.sql",
        &trigger("perform pg_advisory_lock(999); perform set_config('app.leak', 'yes', false);"),
    );
    q.migrate_raw(&["up", "--database-url", &pooled_url(&q)], &[])
        .success();
    assert_eq!(q.applied(), vec![1]);
    let left: i64 = q.db.scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 999 \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    );
    assert_eq!(left, 0, "the trigger's lock stayed on a pooled connection");
}

/// PgBouncer in `pool_mode = statement` refuses every transaction block, and closes the
/// session at the first `BEGIN`. Mutation this catches (attacker finding): its bare FATAL
/// with exit 3 ("unreachable"), where a refusal names the pooler and what to do.
#[test]
fn a_statement_pooler_is_refused_naming_it() {
    let p = five("statement_pool");
    let url = url_through(statement_bouncer(), &p);
    for args in [&["up"][..], &["down"], &["verify"]] {
        let mut all = args.to_vec();
        all.extend(["--database-url", &url]);
        p.migrate_raw(&all, &[])
            .code(1)
            .stderr_has("statement-mode connection pooler")
            .stderr_has("Connect directly");
    }
    assert!(p.applied().is_empty());
    assert_eq!(advisory_locks(&p), 0);
}

/// `SET TRANSACTION ISOLATION LEVEL` must come before the transaction's first query, and
/// through a pooler migrate's lock and checks come first: refused before anything runs, with
/// the line, where it used to fail half-way through the run. Directly it works. Mutation
/// this catches: `sets_transaction_characteristics` dropped.
#[test]
fn set_transaction_is_refused_through_a_transaction_pooler() {
    let p = five("pooler_set_transaction");
    p.migration(
        "0006_coach_serializable.sql",
        "-- UP\n-- stricter\nset transaction isolation level serializable;\ncreate table coach_s (x int);\n-- DOWN\ndrop table coach_s;\n",
    );
    let url = pooled_url(&p);
    p.migrate_raw(&["up", "--database-url", &url], &[])
        .code(1)
        .stderr_has("transaction-mode connection pooler")
        .stderr_has("0006_coach_serializable.sql:3 (`SET TRANSACTION`")
        .stderr_has("Connect directly");
    assert!(p.applied().is_empty(), "refused before anything ran");
    p.migrate(&["up"]).success();
    assert_eq!(p.applied(), vec![1, 2, 3, 4, 5, 6]);
}

/// Mutation this catches: runs through the pooler taking no transaction-level lock (the
/// `XACT_LOCK` statement made a no-op): they then apply beside a run that holds the migration
/// lock. (`lock::acquire_xact` alone, the `--atomic` run's lock, is not seen: the run took the
/// same lock to create the state tables just before; README, Mutation testing.)
#[test]
fn runs_through_a_pooler_wait_for_the_migration_lock() {
    let p = five("pooler_waits");
    let url = pooled_url(&p);
    for atomic in [false, true] {
        let mut holder = p.db.client();
        holder
            .query_one(
                "SELECT pg_advisory_lock($1, $2)",
                &[&migrate::db::lock::KEYS.0, &migrate::db::lock::KEYS.1],
            )
            .unwrap();
        let args: &[&str] = if atomic { &["up", "--atomic"] } else { &["up"] };
        let mut child = spawn_pooled(&p, args);
        // Until its transaction waits for the advisory lock; it must not finish first.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let waiting: i64 = p.db.scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND wait_event_type = 'Lock' AND wait_event = 'advisory'",
            );
            if waiting > 0 {
                break;
            }
            if let Some(status) = child.try_wait().unwrap() {
                let out = child.wait_with_output().unwrap();
                panic!(
                    "atomic={atomic}: the run ended ({status}) without waiting for the lock; \
                     applied {:?}\n{}",
                    p.applied(),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            assert!(Instant::now() < deadline, "atomic={atomic}: never waited");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            p.applied().is_empty(),
            "atomic={atomic}: applied under the lock"
        );
        holder
            .batch_execute("SELECT pg_advisory_unlock_all()")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(p.applied(), vec![1, 2, 3, 4, 5], "atomic={atomic}");
        p.migrate_raw(&["down", "--all", "--database-url", &url], &[])
            .success();
    }
}

/// Mutation this catches: skipping the re-check under the transaction-level lock.
#[test]
fn concurrent_runs_through_a_pooler_apply_each_migration_once() {
    let p = five("pooler_concurrent");
    let runs: Vec<Child> = (0..3).map(|_| spawn_pooled(&p, &["up"])).collect();
    for run in runs {
        let out = run.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(p.applied(), vec![1, 2, 3, 4, 5]);
    let ups: i64 =
        p.db.scalar("SELECT count(*) FROM _migrate.history WHERE direction = 'up' AND success");
    assert_eq!(ups, 5);
}

/// Statements containing `marker` running now (active: an idle pooled server connection
/// still shows its last statement).
fn running(p: &Project, marker: &str) -> i64 {
    p.db.client()
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND state = 'active' AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()",
            &[&marker],
        )
        .unwrap()
        .get(0)
}

/// Waits up to `within` for every statement marked `marker` to have ended; true when they
/// did.
fn ended_within(p: &Project, marker: &str, within: Duration) -> bool {
    let started = Instant::now();
    while running(p, marker) > 0 {
        if started.elapsed() > within {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

/// Mutation this catches: no `client_connection_check_interval` in the migrations' settings
/// (the server runs a killed `migrate`'s statement to its end, two minutes here, holding the
/// migration lock), or setting it only on one of the paths (a chain's opening, a
/// `transaction: none` migration's session, a pooled transaction).
#[test]
fn a_killed_migrate_leaves_no_statement_running_and_the_lock_free() {
    // What the server must notice within about a second: SIGKILL (nothing of the process
    // runs), and a migration that catches every cancel, which the process gives up on 10 s
    // after a signal.
    let catches_cancels = "do $$ begin loop begin perform pg_sleep(120) /* k */; \
        exception when query_canceled then null; end; end loop; end $$;";
    for (case, header, sleep, pooled, signal) in [
        (
            "chain",
            "",
            "select pg_sleep(120) /* k */;",
            false,
            libc::SIGKILL,
        ),
        (
            "none",
            "-- transaction: none\n",
            "select pg_sleep(120) /* k */;",
            false,
            libc::SIGKILL,
        ),
        (
            "pooled",
            "",
            "select pg_sleep(120) /* k */;",
            true,
            libc::SIGKILL,
        ),
        ("caught", "", catches_cancels, false, libc::SIGTERM),
    ] {
        let p = five("killed");
        p.migration(
            "0006_coach_slow.sql",
            &format!(
                "{header}-- UP\ncreate table coach_slow (x int);\n{sleep}\n-- DOWN\ndrop table coach_slow;\n"
            ),
        );
        let mut child = match pooled {
            true => spawn_pooled(&p, &["up"]),
            false => spawn(&p, &["up"]),
        };
        wait_for_query(&p, "/* k */");
        // SAFETY: signals our own child process.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        let _ = child.wait();
        // Nothing of the process is left to cancel anything: the server ends the statement
        // because it sees the client gone, in about a second, and its session with it.
        let ended = ended_within(&p, "/* k */", Duration::from_secs(15));
        if !ended {
            terminate_query(&p, "/* k */");
        }
        assert!(
            ended,
            "{case}: the statement still runs after its client is gone"
        );
        assert_eq!(advisory_locks(&p), 0, "{case}: the lock is still held");
        let table_gone: bool = p.db.scalar("SELECT to_regclass('coach_slow') IS NULL");
        if header.is_empty() {
            assert_eq!(p.applied(), vec![1, 2, 3, 4, 5], "{case}: 0006 rolled back");
            assert!(table_gone, "{case}: coach_slow survived the rollback");
        } else {
            let dirty: bool =
                p.db.scalar("SELECT dirty FROM _migrate.schema_migrations WHERE version = 6");
            assert!(dirty, "{case}: 0006 is dirty");
            assert!(!table_gone, "{case}: its first statement committed");
        }
    }
}

/// The same for what runs outside a migration: a seed's statements, and the wait for the
/// migration lock (on the session, and through a transaction pooler in each transaction).
/// Mutation this catches (attacker finding): the check set only in the migrations' settings,
/// so a `seed` killed with SIGKILL left its statement running holding the lock, and a killed
/// waiter stayed queued for the lock until its `--lock-wait` ran out.
#[test]
fn a_killed_seed_or_lock_waiter_leaves_nothing_behind_on_the_server() {
    let p = five("killed_outside");
    p.migration(
        "0006_coach_seedslow.sql",
        "-- UP\ncreate table coach_seedslow (x int primary key);\n\
         create function coach_seedslow_sleep() returns trigger language plpgsql as \
         $$ begin perform pg_sleep(120); return new; end $$;\n\
         create trigger coach_seedslow_sleep before insert on coach_seedslow \
         for each row execute function coach_seedslow_sleep();\n\
         -- DOWN\ndrop table coach_seedslow;\ndrop function coach_seedslow_sleep();\n",
    );
    p.write(
        "seeds/base/010_slow.toml",
        "[[public.coach_seedslow]]\nx = 1\n",
    );
    p.migrate(&["up"]).success();

    let mut child = spawn(&p, &["seed", "base"]);
    wait_for_query(&p, "coach_seedslow");
    // SAFETY: signals our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
    let _ = child.wait();
    let ended = ended_within(&p, "coach_seedslow", Duration::from_secs(15));
    if !ended {
        terminate_query(&p, "coach_seedslow");
    }
    assert!(
        ended,
        "seed: the statement still runs after its client is gone"
    );
    assert_eq!(advisory_locks(&p), 0, "seed: the lock is still held");
    let rows: i64 = p.db.scalar("SELECT count(*) FROM coach_seedslow");
    assert_eq!(rows, 0, "seed: the killed load was rolled back");

    for pooled in [false, true] {
        let mut holder = p.db.client();
        holder
            .execute(
                "SELECT pg_advisory_lock($1, $2)",
                &[&migrate::db::lock::KEYS.0, &migrate::db::lock::KEYS.1],
            )
            .unwrap();
        let args = ["down", "--lock-wait", "120"];
        let mut child = match pooled {
            true => spawn_pooled(&p, &args),
            false => spawn(&p, &args),
        };
        let marker = match pooled {
            true => "pg_advisory_xact_lock(",
            false => "pg_advisory_lock(",
        };
        wait_for_query(&p, marker);
        // SAFETY: signals our own child process.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
        let _ = child.wait();
        let ended = ended_within(&p, marker, Duration::from_secs(15));
        if !ended {
            terminate_query(&p, marker);
        }
        assert!(
            ended,
            "pooled {pooled}: the killed run still waits for the lock"
        );
        drop(holder);
        assert_eq!(p.applied(), vec![1, 2, 3, 4, 5, 6], "pooled {pooled}");
    }
}

/// A signal at the confirmation prompt of a protected environment answers "no" at once:
/// nothing was changed, the lock is free, exit 128 + the signal. Mutation this catches
/// (attacker finding): the prompt read stdin on the runtime's one thread, so the signal was
/// seen only when a line or EOF came (the run sat at the prompt holding the lock).
#[test]
fn a_signal_at_the_confirmation_prompt_ends_the_run_at_once() {
    let p = five("signal_prompt");
    p.write(
        "migrate.toml",
        "[env.prod]\nurl_env = \"PROD_URL\"\nprotected = true\n",
    );
    for (signal, code, name) in [(libc::SIGINT, 130, "SIGINT"), (libc::SIGHUP, 129, "SIGHUP")] {
        // On a terminal (script(1)), with a stdin that stays open and silent.
        let mut child = Command::new("script")
            .args([
                "-qefc",
                &format!("'{}' --env prod up", env!("CARGO_BIN_EXE_migrate")),
                "/dev/null",
            ])
            .current_dir(p.path())
            .env("PROD_URL", &p.db.url)
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The migrate process under script: its command line names the env, its cwd the
        // project.
        let started = Instant::now();
        let pid = loop {
            let found = std::fs::read_dir("/proc").unwrap().flatten().find_map(|e| {
                let pid: i32 = e.file_name().to_str()?.parse().ok()?;
                let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
                let cwd = std::fs::read_link(e.path().join("cwd")).ok()?;
                let argv0 = cmdline.split(|b| *b == 0).next()?;
                (argv0.ends_with(b"migrate") && cwd == p.path()).then_some(pid)
            });
            if let Some(pid) = found {
                break pid;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "migrate did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        // At the prompt, holding the lock.
        while advisory_locks(&p) == 0 {
            assert!(started.elapsed() < Duration::from_secs(20), "no lock taken");
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: signals a process this test started (through script).
        unsafe { libc::kill(pid, signal) };
        let out = finish_within_keeping_stdin(&mut child, Duration::from_secs(5));
        let shown = String::from_utf8_lossy(&out);
        assert!(shown.contains(&format!("interrupted by {name}")), "{shown}");
        assert!(shown.contains("not confirmed"), "{shown}");
        assert_eq!(child.wait().unwrap().code(), Some(code), "{shown}");
        assert!(p.applied().is_empty());
        assert_eq!(advisory_locks(&p), 0, "the lock was left behind");
    }
}

/// Waits at most `limit` for `child` to exit, its stdin still open; its stdout.
fn finish_within_keeping_stdin(child: &mut Child, limit: Duration) -> Vec<u8> {
    use std::io::Read;
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    out
}

/// A signal while connecting to a server that does not answer (here a socket that accepts
/// and says nothing) ends the attempt at once: nothing to cancel, nothing done. Mutation this
/// catches (attacker finding): waiting for the 10 s limit and then saying that what was
/// running "may still be rolling back".
#[test]
fn a_signal_while_connecting_stops_at_once() {
    let p = Project::new("signal_connecting");
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "postgres://nobody@127.0.0.1:{}/nowhere",
        silent.local_addr().unwrap().port()
    );
    for (signal, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let child = crate::truth::spawn_at(&p, &url, &["up"]);
        // Accepted, then never answered.
        let (_held, _) = silent.accept().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: signals our own child process.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        let out = finish_within(child, Duration::from_secs(5));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{stderr}");
        assert!(stderr.contains("while connecting"), "{stderr}");
        assert!(stderr.contains("nothing was done"), "{stderr}");
        assert!(!stderr.contains("rolling back"), "{stderr}");
    }
}

/// A forced exit (a second signal here; the 10 s limit takes the same path) lists the
/// migrations the run saw committed, and keeps the exit status and name of the signal that
/// interrupted the run. Mutations this catches (attacker findings): the exit said only that
/// whatever was running "may still be rolling back", with 0001 committed and recorded; and it
/// named the second signal (SIGTERM, exit 143) where SIGHUP had interrupted the run.
#[test]
fn a_forced_exit_lists_what_committed_and_names_the_first_signal() {
    for json in [false, true] {
        let p = Project::new("forced_exit");
        p.migration(
            "0001_coach_a.sql",
            "-- UP\ncreate table coach_a (x int);\n-- DOWN\ndrop table coach_a;\n",
        )
        .migration(
            "0002_coach_b.sql",
            "-- UP\ndo $$ begin loop begin perform pg_sleep(60) /* forced */; \
             exception when query_canceled then null; end; end loop; end $$;\n\
             -- DOWN\nselect 1;\n",
        );
        let args: &[&str] = if json { &["--json", "up"] } else { &["up"] };
        let child = spawn(&p, args);
        wait_for_query(&p, "/* forced */");
        // SAFETY: signals our own child process.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGHUP) };
        std::thread::sleep(Duration::from_millis(700));
        // SAFETY: as above.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let out = finish_within(child, Duration::from_secs(5));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(129), "{stderr}");
        assert!(stderr.contains("interrupted by SIGHUP"), "{stderr}");
        assert!(
            stderr.contains("a second signal, SIGTERM, came"),
            "{stderr}"
        );
        assert!(
            stderr.contains("committed before it: 0001 coach_a (up)"),
            "{stderr}"
        );
        if json {
            let doc: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
            assert_eq!(doc["exit_code"], 129, "{stdout}");
            assert_eq!(doc["committed"][0]["version"], 1, "{stdout}");
            assert_eq!(doc["committed"][0]["direction"], "up", "{stdout}");
        }
        assert_eq!(p.applied(), vec![1]);
    }
}

/// Two signals back to back: the exit says which one interrupted the run (the first one
/// delivered: sent together, either may be, since two threads of the process can take them
/// at once) with its exit status, names the other as the second, and waits for the cancel
/// request the first one sent to be answered. Through PgBouncer 1.18 a process that exits
/// with a cancel connection open takes the pooler down (`bad client state: 0`). Mutation
/// this catches (attacker finding): exiting at the second signal without waiting for the
/// cancel requests (the pooler died in one run of four).
#[test]
fn two_signals_back_to_back_exit_as_the_first_and_keep_the_pooler_up() {
    let pooler = transaction_bouncer_for_forced_exits();
    for round in 0..6 {
        let p = Project::new("signals_back_to_back");
        for v in 1..=30 {
            p.migration(
                &format!("{v:04}_coach_q{v}.sql"),
                &format!(
                    "-- UP\nselect pg_sleep(0.08) /* q{v} */;\ncreate table coach_q{v} (x int);\n\
                     -- DOWN\ndrop table coach_q{v};\n"
                ),
            );
        }
        let child = crate::truth::spawn_at(&p, &url_through(pooler, &p), &["up"]);
        wait_for_query(&p, "/* q3 */");
        let (first, name) = match round % 2 {
            0 => (libc::SIGHUP, "SIGHUP"),
            _ => (libc::SIGINT, "SIGINT"),
        };
        // SAFETY: signals our own child process.
        unsafe {
            libc::kill(child.id() as libc::pid_t, first);
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let out = finish_within(child, Duration::from_secs(10));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let (interrupting, other) = match out.status.code() {
            Some(143) => ("SIGTERM", name),
            code => {
                assert_eq!(code, Some(128 + first), "round {round}: {stderr}");
                (name, "SIGTERM")
            }
        };
        assert!(
            stderr.contains(&format!("interrupted by {interrupting}")),
            "round {round}: {stderr}"
        );
        // Exited at the second signal (naming it), or wound down before it was read.
        if stderr.contains("exiting without waiting") {
            assert!(
                stderr.contains(&format!("a second signal, {other}, came")),
                "round {round}: {stderr}"
            );
        }
        // The pooler is still up for everybody.
        let mut client = postgres::Client::connect(&url_through(pooler, &p), postgres::NoTls)
            .unwrap_or_else(|e| panic!("round {round}: the pooler is gone: {e}"));
        client.batch_execute("SELECT 1").unwrap();
    }
}

/// A signal while `up`, `repair` or `baseline` reads migrate's own state (here waiting
/// behind a table lock another session holds on it) says that no migration started, with the
/// exit status of the signal. Mutation this catches (attacker findings): the server's bare
/// "canceling statement due to user request", which said nothing of what became of the run.
#[test]
fn a_signal_while_reading_the_state_says_no_migration_started() {
    let p = Project::new("signal_state");
    p.migration(
        "0001_coach_a.sql",
        "-- UP\ncreate table coach_a (x int);\n-- DOWN\ndrop table coach_a;\n",
    )
    .migration(
        "0002_coach_b.sql",
        "-- UP\ncreate table coach_b (x int);\n-- DOWN\ndrop table coach_b;\n",
    );
    p.migrate(&["up", "--to", "1"]).success();
    for args in [&["up"][..], &["repair", "1"], &["baseline", "2"]] {
        let mut holder = p.db.client();
        holder
            .batch_execute("BEGIN; LOCK TABLE _migrate.schema_migrations IN ACCESS EXCLUSIVE MODE")
            .unwrap();
        let child = spawn(&p, args);
        wait_for_query(&p, "ORDER BY version");
        // SAFETY: signals our own child process.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
        let out = finish_within(child, Duration::from_secs(5));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "{args:?}: {stderr}");
        assert!(
            stderr.contains("interrupted by SIGINT while migrate read or set up its own state"),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains("before any migration or seed started"),
            "{args:?}: {stderr}"
        );
        holder.batch_execute("COMMIT").unwrap();
        assert_eq!(p.applied(), vec![1], "{args:?}");
    }
}

/// A signal while a pooler queues the run's statements (its one server connection taken by
/// another client) ends the run at once: the cancel request has no server connection to go
/// to, and nothing was written. Mutations this catches (attacker finding): pooler detection,
/// and a command that only reads, left to the cancel (they sat out the 10 s limit, then said
/// what was running "may still be rolling back").
#[test]
fn a_signal_while_a_pooler_queues_the_run_ends_it_at_once() {
    for (label, pooler) in [
        ("queued_transaction_pool", transaction_bouncer_of_one()),
        ("queued_session_pool", session_bouncer_of_one()),
    ] {
        let p = Project::new(label);
        p.migration(
            "0001_coach_t.sql",
            "-- UP\ncreate table coach_t (x int);\n-- DOWN\ndrop table coach_t;\n",
        );
        let url = url_through(pooler, &p);
        // In a transaction, so a transaction pooler keeps the connection with it too.
        let mut other = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        other.batch_execute("BEGIN; SELECT 1").unwrap();
        for (args, signal, code) in [
            (&["up"][..], libc::SIGTERM, 143),
            (&["status"][..], libc::SIGINT, 130),
            (&["up", "--dry-run"][..], libc::SIGHUP, 129),
        ] {
            let child = crate::truth::spawn_at(&p, &url, args);
            std::thread::sleep(Duration::from_millis(1500));
            // SAFETY: signals our own child process.
            unsafe { libc::kill(child.id() as libc::pid_t, signal) };
            let out = finish_within(child, Duration::from_secs(5));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(code), "{label} {args:?}: {stderr}");
            assert!(stderr.contains("nothing was"), "{label} {args:?}: {stderr}");
            assert!(
                !stderr.contains("rolling back"),
                "{label} {args:?}: {stderr}"
            );
        }
        other.batch_execute("COMMIT").unwrap();
        drop(other);
        assert!(p.applied().is_empty(), "{label}");
        assert_eq!(advisory_locks(&p), 0, "{label}: a lock was left behind");
    }
}

/// Mutation this catches: exiting on a signal without cancelling the server's statement
/// (SIGHUP, a closed terminal, ended the process at once: attacker finding).
#[test]
fn sigint_sigterm_and_sighup_cancel_the_statement_record_it_and_release_the_lock() {
    for (signal, name, code, transactional) in [
        (libc::SIGINT, "SIGINT", 130, true),
        (libc::SIGTERM, "SIGTERM", 143, true),
        (libc::SIGTERM, "SIGTERM", 143, false),
        (libc::SIGHUP, "SIGHUP", 129, true),
    ] {
        let p = Project::new("signal");
        let header = if transactional {
            ""
        } else {
            "-- transaction: none\n"
        };
        p.migration(
            "0001_coach_ok.sql",
            "-- UP\ncreate table coach_ok (x int);\n-- DOWN\ndrop table coach_ok;\n",
        );
        p.migration(
            "0002_coach_slow.sql",
            &format!(
                "{header}-- UP\ncreate table coach_slow (x int);\nselect pg_sleep(120) /* sig */;\n-- DOWN\ndrop table coach_slow;\n"
            ),
        );
        let (out, stderr) = interrupt(&p, &["up"], "/* sig */", signal);
        assert_eq!(out.status.code(), Some(code), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("interrupted by {name}")),
            "{stderr}"
        );
        // Server side: nothing left running, the lock free, the interruption in the history.
        assert_eq!(running(&p, "/* sig */"), 0, "the statement still runs");
        assert_eq!(advisory_locks(&p), 0, "the lock is still held");
        let note: String = p.db.scalar(
            "SELECT note FROM _migrate.history WHERE version = 2 AND NOT success ORDER BY id DESC LIMIT 1",
        );
        assert!(note.contains(&format!("interrupted by {name}")), "{note}");
        if transactional {
            assert_eq!(p.applied(), vec![1], "rolled back");
            let slow: bool = p.db.scalar("SELECT to_regclass('coach_slow') IS NULL");
            assert!(slow);
        } else {
            let dirty: bool =
                p.db.scalar("SELECT dirty FROM _migrate.schema_migrations WHERE version = 2");
            assert!(dirty, "a half-run transaction: none migration is dirty");
        }
        terminate_query(&p, "/* sig */");
    }
}

/// Mutation this catches: waiting for the lock silently.
#[test]
fn a_run_waiting_for_the_lock_says_so_at_once_and_names_the_holder() {
    let p = five("lock_wait_message");
    let mut holder: postgres::Config = p.db.url.parse().unwrap();
    let mut holder = holder
        .application_name("nightly-backfill")
        .connect(postgres::NoTls)
        .unwrap();
    let pid: i32 = holder
        .query_one(
            "SELECT pg_advisory_lock($1, $2), pg_backend_pid()",
            &[&migrate::db::lock::KEYS.0, &migrate::db::lock::KEYS.1],
        )
        .unwrap()
        .get(1);
    let mut child = spawn(&p, &["up", "--lock-wait", "60"]);
    // stderr is a pipe, not a terminal: the message still comes, before the run ends.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(
        line.contains("waiting up to 60s for the migration lock"),
        "{line}"
    );
    assert!(line.contains(&format!("pid {pid}")), "{line}");
    assert!(line.contains("application `nightly-backfill`"), "{line}");
    assert!(line.contains("client 127.0.0.1:"), "{line}");
    holder
        .batch_execute("SELECT pg_advisory_unlock_all()")
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(p.applied(), vec![1, 2, 3, 4, 5]);
}

/// Mutation this catches: leaving a migration's session settings on the pooled server
/// connection after the run (the reset runs only before each migration).
#[test]
fn settings_a_migration_makes_do_not_leak_to_other_clients_of_the_pool() {
    let p = Project::new("pooler_leak");
    p.migration(
        "0001_coach_x.sql",
        // statement_timeout last: only the bookkeeping runs under it (which must not be hit by
        // it), never a statement of the migration itself, which a loaded machine can keep 1 ms.
        "-- UP\nset search_path to nowhere, public;\ncreate table public.coach_x (a int);\nset default_transaction_read_only = on;\nset statement_timeout = '1ms';\n-- DOWN\ndrop table public.coach_x;\n",
    );
    let url = pooled_url(&p);
    p.migrate_raw(&["up", "--database-url", &url], &[])
        .success();
    // Every server connection of the pool, as another client of it sees them.
    for _ in 0..6 {
        // PgBouncer may still be opening server connections for other tests: retry briefly.
        let mut other = (0..20)
            .find_map(|_| {
                postgres::Client::connect(&url, postgres::NoTls)
                    .map_err(|_| std::thread::sleep(Duration::from_millis(100)))
                    .ok()
            })
            .expect("connect through pgbouncer");
        let rows = other
            .simple_query(
                "SHOW search_path; SHOW statement_timeout; SHOW default_transaction_read_only",
            )
            .unwrap();
        let values: Vec<String> = rows
            .iter()
            .filter_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            })
            .collect();
        assert_eq!(values, vec!["\"$user\", public", "0", "off"], "{values:?}");
    }
}

/// Mutation this catches: releasing the lock after an interrupt in `up` only (it is the
/// runner's job, for every command that runs migrations).
#[test]
fn sigint_during_down_releases_the_lock_and_keeps_the_migration_applied() {
    let p = Project::new("signal_down");
    p.migration(
        "0001_coach_slow.sql",
        "-- UP\ncreate table coach_slow (x int);\n-- DOWN\nselect pg_sleep(120) /* sigdown */;\ndrop table coach_slow;\n",
    );
    p.migrate(&["up"]).success();
    let (out, _) = interrupt(&p, &["down"], "/* sigdown */", libc::SIGINT);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(running(&p, "/* sigdown */"), 0, "the statement still runs");
    assert_eq!(advisory_locks(&p), 0, "the lock is still held");
    assert_eq!(p.applied(), vec![1], "the down was rolled back");
}

/// Mutation this catches: cancelling a flight only once after a signal. The migration catches
/// the first cancel (`EXCEPTION WHEN query_canceled`) and sleeps again; without a second cancel
/// it would run on to its COMMIT and be applied although the run was interrupted.
#[test]
fn a_migration_that_catches_the_first_cancel_is_still_interrupted() {
    let p = Project::new("signal_caught");
    p.migration(
        "0001_coach_stubborn.sql",
        "-- UP\ncreate table coach_stubborn (x int);\n\
         do $$ begin perform pg_sleep(60) /* caught1 */; \
         exception when query_canceled then perform pg_sleep(8) /* caught2 */; end $$;\n\
         -- DOWN\ndrop table coach_stubborn;\n",
    );
    let child = spawn(&p, &["up"]);
    wait_for_query(&p, "/* caught1 */");
    let sent = std::time::Instant::now();
    // SAFETY: signals our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        sent.elapsed() < std::time::Duration::from_secs(5),
        "the second sleep ran out instead of being cancelled: {:?}",
        sent.elapsed()
    );
    assert!(
        p.applied().is_empty(),
        "applied although interrupted: {stderr}"
    );
    let table: Option<String> = p.db.scalar("SELECT to_regclass('coach_stubborn')::text");
    assert_eq!(table, None, "rolled back");
    assert_eq!(running(&p, "/* caught2 */"), 0, "the statement still runs");
    assert_eq!(advisory_locks(&p), 0, "the lock is still held");
}

/// Through a transaction pooler a `COMMIT` and `BEGIN` hidden from the file check are caught
/// too: the migration's failed transaction keeps its server connection, where the flight mark
/// the `COMMIT` kept is read. Mutation this catches: no mark through a pooler (it said
/// "rolled back" while `coach_a` stayed committed; attacker finding).
#[test]
fn a_hidden_commit_through_a_pooler_leaves_the_migration_dirty() {
    let p = Project::new("pooled_hidden_commit");
    p.migration(
        "0001_coach_a.sql",
        &crate::truth::hidden_after_copy("commit; begin;"),
    );
    p.migrate_raw(&["up", "--database-url", &pooled_url(&p)], &[])
        .code(1)
        .stderr_has("division by zero")
        .stderr_has("NOT called rolled back")
        .stderr_has("marked dirty");
    let dirty: bool =
        p.db.scalar("SELECT dirty FROM _migrate.schema_migrations WHERE version = 1");
    assert!(dirty);
    assert_eq!(advisory_locks(&p), 0, "a lock was left behind");
}

/// Outside a transaction each statement commits, so after a signal no further statement of a
/// `transaction: none` migration starts: one that swallowed the cancel finishes, the next does
/// not run, and the migration stays dirty. Mutation this catches: not checking for the signal
/// between statements (`coach_s1` was created after the signal and the migration recorded
/// clean; attacker finding).
#[test]
fn after_a_signal_no_further_statement_of_a_none_migration_starts() {
    let p = Project::new("signal_none_between");
    p.migration(
        "0001_coach_s.sql",
        "-- transaction: none\n-- UP\n\
         do $$ begin perform pg_sleep(60) /* none_caught */; \
         exception when query_canceled then null; end $$;\ncreate table coach_s1 (x int);\n\
         -- DOWN\ndrop table coach_s1;\n",
    );
    let (out, stderr) = interrupt(&p, &["up"], "/* none_caught */", libc::SIGINT);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("0001_coach_s.sql:4: interrupted by SIGINT before this statement started"),
        "{stderr}"
    );
    let table: Option<String> = p.db.scalar("SELECT to_regclass('coach_s1')::text");
    assert_eq!(table, None, "started after the signal");
    let dirty: bool =
        p.db.scalar("SELECT dirty FROM _migrate.schema_migrations WHERE version = 1");
    assert!(dirty, "its first statement took effect");
    assert_eq!(advisory_locks(&p), 0, "the lock is still held");
}

/// A block that catches the cancel swallows it, and the rest of the migration, sent with it,
/// runs on to its COMMIT faster than the next cancel: the migration is done and recorded, the
/// exit status is the signal's, and the output says the signal stopped nothing. Mutation this
/// catches: emitting the report without naming the signal (only the exit status told; attacker
/// finding).
#[test]
fn a_swallowed_cancel_is_named_when_the_migration_still_finished() {
    let p = Project::new("signal_swallowed");
    p.migration(
        "0001_coach_a.sql",
        "-- UP\ncreate table coach_a (x int);\n\
         do $$ begin perform pg_sleep(60) /* swallowed */; \
         exception when query_canceled then null; end $$;\ncreate table coach_b (x int);\n\
         -- DOWN\ndrop table coach_b;\ndrop table coach_a;\n",
    );
    let (out, stderr) = interrupt(&p, &["up"], "/* swallowed */", libc::SIGINT);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted by SIGINT: what is reported above had finished"),
        "{stderr}"
    );
    assert_eq!(p.applied(), vec![1], "{stderr}");
    assert_eq!(advisory_locks(&p), 0, "the lock is still held");
}

/// Through a transaction pooler the cancel request goes to the pooler, which forwards it to
/// the server connection running the statement: the statement stops, the transaction rolls
/// back, its transaction-level lock goes with it, and the interruption is recorded.
/// Mutation this catches: a cancel request sent to the pooler without the key data the pooler
/// handed out (or not sent at all): the sleep keeps running on the server.
#[test]
fn signals_through_a_transaction_pooler_cancel_the_statement_and_record_it() {
    for (signal, name, code) in [
        (libc::SIGINT, "SIGINT", 130),
        (libc::SIGTERM, "SIGTERM", 143),
    ] {
        let p = five("pooled_signal");
        p.migration(
            "0006_coach_slow.sql",
            "-- UP\ncreate table coach_slow (x int);\nselect pg_sleep(120) /* pooled sig */;\n-- DOWN\ndrop table coach_slow;\n",
        );
        let url = pooled_url(&p);
        let child = spawn_pooled(&p, &["up"]);
        wait_for_query(&p, "/* pooled sig */");
        // SAFETY: signals our own child process.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{name}: {stderr}");
        assert!(
            stderr.contains("canceling statement due to user request"),
            "{stderr}"
        );
        assert_eq!(
            running(&p, "/* pooled sig */"),
            0,
            "the statement still runs"
        );
        assert_eq!(advisory_locks(&p), 0, "a lock was left behind");
        assert_eq!(p.applied(), vec![1, 2, 3, 4, 5], "0006 rolled back");
        let slow: bool = p.db.scalar("SELECT to_regclass('coach_slow') IS NULL");
        assert!(slow, "coach_slow survived the rollback");
        let note: String = p.db.scalar(
            "SELECT note FROM _migrate.history WHERE version = 6 AND NOT success ORDER BY id DESC LIMIT 1",
        );
        assert!(note.contains(&format!("interrupted by {name}")), "{note}");
        // The pool still serves the next run.
        p.remove_migration("0006_coach_slow.sql");
        p.migrate_raw(&["status", "--database-url", &url], &[])
            .success();
        terminate_query(&p, "/* pooled sig */");
    }
}

/// The names of the prepared statements on the pooled server connections, as another client
/// of the pool sees them (PgBouncer hands out the most recently used connection first).
fn pooled_prepared_statements(url: &str) -> Vec<String> {
    let mut names = Vec::new();
    for _ in 0..4 {
        let mut other = postgres::Client::connect(url, postgres::NoTls).unwrap();
        for m in other
            .simple_query("SELECT name FROM pg_prepared_statements")
            .unwrap()
        {
            if let postgres::SimpleQueryMessage::Row(r) = m {
                names.extend(r.get(0).map(str::to_string));
            }
        }
    }
    names
}

/// Every command that may run through a transaction pooler leaves no named prepared
/// statement on a pooled server connection, so the next run (ours or another app's) does not
/// fail with `prepared statement "s0" already exists`.
/// Mutation this catches: a read with `query(&str)` (a named statement, parsed and closed in
/// separate round trips) outside a transaction, as `seed status` did.
#[test]
fn commands_through_a_transaction_pooler_leave_no_prepared_statement_behind() {
    let p = five("pooler_named");
    p.migration(
        "0006_coach_seeded.sql",
        "-- UP\ncreate table coach_seeded (id int primary key);\n-- DOWN\ndrop table coach_seeded;\n",
    );
    p.write(
        "seeds/base/100_coach_seeded.toml",
        "[[public.coach_seeded]]\nid = 1\n",
    );
    p.migrate(&["up"]).success();
    let url = pooled_url(&p);
    let commands: [&[&str]; 9] = [
        &["seed", "status"],
        &["seed", "base", "--dry-run"],
        &["status"],
        &["verify"],
        &["lint", "--pending"],
        &["up"],
        &["up", "--dry-run"],
        &["down", "--dry-run"],
        &["redo", "--allow-destructive"],
    ];
    for args in commands {
        for _ in 0..2 {
            let mut all = args.to_vec();
            all.extend(["--database-url", &url]);
            let run = p.migrate_raw(&all, &[]);
            assert!(!run.stderr.contains("already exists"), "{run:?}");
            assert_eq!(run.code, 0, "{run:?}");
            assert_eq!(
                pooled_prepared_statements(&url),
                Vec::<String>::new(),
                "after {args:?}"
            );
        }
    }
}

/// Mutation this catches: `lock` building through a transaction pooler (a session lock left
/// on a pooled connection, `transaction: none` statements spread over server connections).
#[test]
fn lock_refuses_a_scratch_server_behind_a_transaction_pooler() {
    let p = five("pooler_lock");
    let url = pooled_url(&p);
    p.migrate(&["lock", "--scratch-url", &url])
        .code(1)
        .stderr_has("transaction-mode connection pooler")
        .stderr_has("lock needs a session of its own")
        .stderr_has("Connect directly");
    assert!(
        !p.path().join("schema.lock").exists(),
        "schema.lock written"
    );
    let scratch: i64 =
        p.db.scalar("SELECT count(*) FROM pg_database WHERE datname LIKE 'migrate_lock_%'");
    assert_eq!(scratch, 0, "a scratch database was created");
    assert_eq!(advisory_locks(&p), 0);
}

/// Mutation this catches: a lock wait ended by a signal reported as PostgreSQL's raw cancel
/// error ("db error: ... canceling statement"), and the interruption said twice.
#[test]
fn a_signal_during_a_lock_wait_says_it_interrupted_the_wait() {
    let p = five("lock_wait_signal");
    let mut holder = p.db.client();
    holder
        .execute(
            "SELECT pg_advisory_lock($1, $2)",
            &[&migrate::db::lock::KEYS.0, &migrate::db::lock::KEYS.1],
        )
        .unwrap();
    let mut child = spawn(&p, &["up", "--lock-wait", "60"]);
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("waiting up to 60s"), "{line}");
    // SAFETY: signals our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(130), "{rest}");
    assert!(
        rest.contains("interrupted by SIGINT while waiting for the migration lock, held by pid"),
        "{rest}"
    );
    assert!(!rest.contains("db error"), "{rest}");
    assert_eq!(rest.matches("interrupted by").count(), 1, "{rest}");
    assert!(p.applied().is_empty());
}

/// Mutation this catches: "interrupted by SIGINT: interrupted by SIGINT" from `lock`.
#[test]
fn an_interrupted_lock_says_so_once() {
    let p = Project::new("lock_signal");
    p.migration(
        "0001_coach_slow.sql",
        "-- UP\nselect pg_sleep(120) /* lockslow */;\n-- DOWN\nselect 1;\n",
    );
    let child = spawn(&p, &["lock", "--scratch-url", server().admin_url()]);
    let mut client = p.db.client();
    let started = Instant::now();
    while client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%/* lockslow */%' \
             AND pid <> pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get::<_, i64>(0)
        == 0
    {
        assert!(started.elapsed() < Duration::from_secs(60), "never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: signals our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("schema.lock was not written"), "{stderr}");
    assert_eq!(
        stderr.matches("interrupted by SIGINT").count(),
        1,
        "{stderr}"
    );
}

/// A signal during `up --atomic` rolls the whole run back, even when the running statement
/// swallows the cancel: no migration starts after the signal, and the run's COMMIT is never
/// sent. Mutation this catches (attacker finding): the `--atomic` loop not looking at the
/// signal (the rest of the run went on and committed, reported as "had finished before the
/// signal").
#[test]
fn a_signal_during_an_atomic_run_rolls_all_of_it_back() {
    let p = Project::new("signal_atomic");
    p.migration(
        "0001_coach_a.sql",
        "-- UP\ndo $$ begin perform pg_sleep(120) /* atomic_sig */; \
         exception when query_canceled then null; end $$;\ncreate table coach_a (x int);\n\
         -- DOWN\ndrop table coach_a;\n",
    );
    p.migration(
        "0002_coach_b.sql",
        "-- UP\ncreate table coach_b (x int);\n-- DOWN\ndrop table coach_b;\n",
    );
    let (out, stderr) = interrupt(
        &p,
        &["up", "--atomic", "--json"],
        "/* atomic_sig */",
        libc::SIGINT,
    );
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["failure"]["state"]
            .as_str()
            .unwrap_or_default()
            .contains("whole --atomic run was rolled back"),
        "{report}"
    );
    assert!(p.applied().is_empty(), "{report}");
    let a: Option<String> = p.db.scalar("SELECT to_regclass('coach_a')::text");
    let b: Option<String> = p.db.scalar("SELECT to_regclass('coach_b')::text");
    assert_eq!((a, b), (None, None));
}

/// A signal between two reverts stops `down` before the next one commits, which stays
/// applied. Mutation this catches: the up direction's wording ("nothing of it was applied") for a
/// migration that `down` did not start reverting.
#[test]
fn a_down_stopped_by_a_signal_says_the_next_migration_is_still_applied() {
    let p = Project::new("signal_down_between");
    p.migration(
        "0001_coach_a.sql",
        "-- UP\ncreate table coach_a (x int);\n-- DOWN\ndrop table coach_a;\n",
    );
    // The cancel the signal sends is swallowed: this revert completes, the next never starts.
    p.migration(
        "0002_coach_b.sql",
        "-- UP\ncreate table coach_b (x int);\n-- DOWN\ndo $$ begin perform pg_sleep(120) /* between */; \
         exception when query_canceled then null; end $$;\ndrop table coach_b;\n",
    );
    p.migrate(&["up"]).success();
    let (out, stderr) = interrupt(
        &p,
        &["down", "--all", "--allow-destructive", "--json"],
        "/* between */",
        libc::SIGINT,
    );
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let failure = &report["failure"];
    assert_eq!(report["exit_code"], 130, "{report}");
    // The cancel is sent again every 250 ms: on a busy machine one may reach 0002's DROP
    // after the block swallowed the first, and then 0002 is the one rolled back.
    let stopped = failure["version"].as_i64().unwrap();
    assert!(stopped == 1 || stopped == 2, "{report}");
    // Sent ahead while 0002 ran (a chain), its revert may have begun and been rolled back.
    let state = failure["state"].as_str().unwrap();
    assert!(
        [
            "it did not start: it is still applied",
            "it was rolled back: it is still applied"
        ]
        .contains(&state),
        "{report}"
    );
    let still: Vec<i64> = (1..=stopped).collect();
    assert_eq!(p.applied(), still);
}

/// Mutation this catches: a run that lost its connection reporting no head ("head is none")
/// and "the server said: connection closed" while the server sent 57P01, and a rolled-back
/// transaction reported with `rolled_back: false`.
#[test]
fn a_lost_connection_reports_the_head_and_the_servers_reason() {
    let p = Project::new("lost_head");
    p.migration(
        "0001_coach_ok.sql",
        "-- UP\ncreate table coach_ok (x int);\n-- DOWN\ndrop table coach_ok;\n",
    );
    p.migration(
        "0002_coach_slow.sql",
        "-- UP\ncreate table coach_slow (x int);\nselect pg_sleep(60) /* losthead */;\n-- DOWN\ndrop table coach_slow;\n",
    );
    for json in [true, false] {
        let args: &[&str] = if json { &["up", "--json"] } else { &["up"] };
        let child = spawn(&p, args);
        wait_for_query(&p, "/* losthead */");
        terminate_query(&p, "/* losthead */");
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{stderr}");
        assert!(!stderr.contains("connection closed"), "{stderr}");
        assert!(
            stderr.contains("(the server said: FATAL: terminating connection due to administrator command (SQLSTATE 57P01))"),
            "{stderr}"
        );
        if json {
            let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
            assert_eq!(report["head"], 1, "{report}");
            assert_eq!(report["failure"]["rolled_back"], true, "{report}");
            assert_eq!(report["failure"]["connection_lost"], true, "{report}");
        } else {
            assert!(stdout.contains("head is 0001"), "{stdout}");
        }
        assert_eq!(p.applied(), vec![1]);
    }
}

/// A file renamed after it was applied (same version and checksum) stays `applied`, `up` does
/// not apply it again, and `status` says the history names another file.
/// Mutation this catches: the rename passing unnoticed (no problem line), or treated as a
/// new migration by `up`.
#[test]
fn a_renamed_applied_file_is_noted_by_status_and_not_applied_again() {
    let p = five("renamed");
    p.migrate(&["up"]).success();
    std::fs::rename(
        p.migrations().join("0002_coach_t2.sql"),
        p.migrations().join("0002_coach_second.sql"),
    )
    .unwrap();
    p.migrate(&["status"])
        .success()
        .stdout_has("5 applied, 0 pending, 0 changed, 0 missing, 0 dirty")
        .stdout_has(
            "! migrations/0002_coach_second.sql is applied under another name, 0002_coach_t2.sql",
        );
    let report = p.migrate(&["status", "--json"]).json();
    let row = &report["migrations"][1];
    assert_eq!(row["state"], "applied", "{row}");
    assert!(
        row["problem"]
            .as_str()
            .is_some_and(|s| s.contains("renamed after it was applied")),
        "{row}"
    );
    p.migrate(&["up"]).success().stdout_has("nothing to up");
    let ups: i64 =
        p.db.scalar("SELECT count(*) FROM _migrate.history WHERE version = 2 AND direction = 'up'");
    assert_eq!(ups, 1, "applied again");
    assert_eq!(p.applied(), vec![1, 2, 3, 4, 5]);
}

/// A signal while a run waits for the transaction-level lock through the pooler: the wait is
/// cancelled at once, and the process stays until the pooler has closed the cancel
/// connection. Mutation this catches: exiting as soon as the command fails, which cut the
/// cancel connection short and made PgBouncer 1.18 exit (`bad client state: 0`) in about half
/// the tries, dropping every client of the pool.
#[test]
fn a_signal_during_a_lock_wait_through_the_pooler_leaves_the_pooler_up() {
    let p = five("pooled_wait_signal");
    let url = pooled_url(&p);
    let mut holder = p.db.client();
    holder
        .execute(
            &format!(
                "SELECT pg_advisory_lock({}, {})",
                migrate::db::lock::KEYS.0,
                migrate::db::lock::KEYS.1
            ),
            &[],
        )
        .unwrap();
    for (signal, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)]
        .into_iter()
        .cycle()
        .take(6)
    {
        let child = spawn_pooled(&p, &["up"]);
        wait_for_query(&p, "pg_advisory_xact_lock");
        // SAFETY: signals our own child process.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{stderr}");
        // Active, not merely the last statement of an idle pooled server connection.
        let waiting: i64 = p.db.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND state = 'active' AND query LIKE '%pg_advisory_xact_lock%' \
             AND pid <> pg_backend_pid()",
        );
        assert_eq!(waiting, 0, "still waiting");
        assert!(!stderr.contains("exiting without waiting"), "{stderr}");
        // Said as a direct run says it, not as PostgreSQL's raw cancel.
        assert!(
            stderr.contains("while waiting for the migration lock, held by pid"),
            "{stderr}"
        );
        assert!(!stderr.contains("canceling statement"), "{stderr}");
        // The pooler is still there for the next client.
        p.migrate_raw(&["status", "--database-url", &url], &[])
            .success();
    }
    assert!(p.applied().is_empty());
}

/// Starts `migrate ARGS` through the pooler without waiting for it.
fn spawn_pooled(p: &Project, args: &[&str]) -> Child {
    crate::truth::spawn_at(p, &pooled_url(p), args)
}

/// Once `first` (already started) runs the statement marked `marker`, starts `second`, which
/// queues for the migration lock behind it; the outputs of both, each within a minute.
fn queued_behind(
    p: &Project,
    first: Child,
    marker: &str,
    second: impl FnOnce() -> Child,
) -> (std::process::Output, std::process::Output) {
    wait_for_query(p, marker);
    let second = second();
    wait_for_lock_waiters(p, 1);
    (
        finish_within(first, Duration::from_secs(60)),
        finish_within(second, Duration::from_secs(60)),
    )
}

/// Waits at most `limit` for `child`; a run still going then is killed and the test fails.
fn finish_within(mut child: Child, limit: Duration) -> std::process::Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Through the pooler a run waits for the lock as a direct one does: it says so at once,
/// naming the holder, and gives up after `--lock-wait` with exit 3.
/// Mutation this catches: `pg_advisory_xact_lock` without a lock_timeout (the run waited,
/// silent, as long as the holder held the lock).
#[test]
fn a_run_through_the_pooler_says_it_waits_and_gives_up_after_lock_wait() {
    let p = five("pooled_lock_wait");
    let mut holder = p.db.client();
    holder
        .execute(
            &format!(
                "SELECT pg_advisory_lock({}, {}) /* holder */",
                migrate::db::lock::KEYS.0,
                migrate::db::lock::KEYS.1
            ),
            &[],
        )
        .unwrap();
    let child = spawn_pooled(&p, &["--lock-wait", "2", "up"]);
    let out = finish_within(child, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("waiting up to 2s for the migration lock, held by pid"),
        "{stderr}"
    );
    assert!(stderr.contains("/* holder */"), "{stderr}");
    // Held by a client that is not migrate: not called "another migrate run" (attacker
    // finding).
    assert!(
        stderr.contains("another session holds the migration lock"),
        "{stderr}"
    );
    assert!(p.applied().is_empty());
    drop(holder);
    // Free again: the same run applies everything.
    p.migrate_raw(&["up", "--database-url", &pooled_url(&p)], &[])
        .success();
    assert_eq!(p.applied(), vec![1, 2, 3, 4, 5]);
}

/// A direct `down --all` that reverts what a pooled `up` stands on, between two of its
/// migrations: the pooled run stops instead of applying the next migration above a gap.
/// Mutation this catches: the guard checking only "not applied yet" and "nothing above"
/// (the run applied 0005 with 0001-0004 reverted, and said all was well).
#[test]
fn a_pooled_up_stops_when_another_run_reverts_what_it_stands_on() {
    let p = Project::new("pooled_gap");
    for n in 1..=6 {
        let body = if n == 4 {
            "select pg_sleep(3) /* gap */;\n"
        } else {
            ""
        };
        p.migration(
            &format!("000{n}_coach_t{n}.sql"),
            &format!(
                "-- UP\ncreate table coach_t{n} (id int);\n{body}-- DOWN\ndrop table coach_t{n};\n"
            ),
        );
    }
    p.migrate(&["up", "--to", "3"]).success();
    let pooled = spawn_pooled(&p, &["up"]);
    wait_for_query(&p, "/* gap */");
    let down = spawn(&p, &["down", "--all"]);
    let pooled = finish_within(pooled, Duration::from_secs(60));
    let down = finish_within(down, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&pooled.stderr);
    assert_eq!(
        down.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert_eq!(pooled.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("reverted 0004 below it meanwhile"),
        "{stderr}"
    );
    // Whatever the order, never a migration above one that is not applied.
    let applied = p.applied();
    let expected: Vec<i64> = (1..=applied.len() as i64).collect();
    assert_eq!(applied, expected, "a gap below the head");
    assert!(applied.is_empty(), "down --all ran last");
}

/// What a migration leaves on its session stays on our side of the pooler: a `LISTEN` and a
/// session-level advisory lock are undone before the transaction commits, and a `PREPARE` (which no rollback undoes) is
/// refused before anything runs, naming the file and line.
/// Mutations this catches: the pooled reset without `UNLISTEN *` (one server connection of
/// the pool kept listening for every later client), and no refusal of `PREPARE` (the pool
/// kept `p1`, and a later client's `PREPARE p1` failed).
#[test]
fn a_migration_leaves_no_listen_or_prepared_statement_in_the_pool() {
    let p = Project::new("pooled_session_state");
    p.migration(
        "0001_coach_listen.sql",
        "-- UP\ncreate table coach_l (id int);\nlisten coach_events;\nselect pg_advisory_lock(4242);\n-- DOWN\ndrop table coach_l;\n",
    );
    let url = pooled_url(&p);
    p.migrate_raw(&["up", "--database-url", &url], &[])
        .success();
    assert_eq!(p.applied(), vec![1]);
    // Pool size 4: four open transactions hold every server connection of the pool.
    let mut clients: Vec<postgres::Client> = (0..4)
        .map(|_| postgres::Client::connect(&url, postgres::NoTls).unwrap())
        .collect();
    for c in &mut clients {
        c.simple_query("BEGIN").unwrap();
    }
    for c in &mut clients {
        let rows = c
            .simple_query("SELECT count(*) FROM pg_listening_channels()")
            .unwrap();
        let count = rows.iter().find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        });
        assert_eq!(count.as_deref(), Some("0"), "a pooled connection listens");
    }
    for c in &mut clients {
        c.simple_query("COMMIT").unwrap();
    }
    // Nor a session-level advisory lock the migration took.
    let kept: i64 =
        p.db.scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242");
    assert_eq!(
        kept, 0,
        "a pooled connection keeps the migration's advisory lock"
    );
    p.migration(
        "0002_coach_prepare.sql",
        "-- UP\ncreate table coach_p (id int);\nprepare p1 as select 1;\n-- DOWN\ndrop table coach_p;\n",
    );
    p.migrate_raw(&["up", "--database-url", &url], &[])
        .code(1)
        .stderr_has("0002_coach_prepare.sql:3 (`PREPARE`");
    assert_eq!(p.applied(), vec![1]);
    // Directly it runs (the session ends with the run).
    p.migrate(&["up"]).success();
    assert_eq!(p.applied(), vec![1, 2]);
}

/// The SQL-level prepared statements (`from_sql`) on every server connection of the pool:
/// four open transactions hold all of them (pool size 4).
fn sql_prepared_statements_in_the_pool(url: &str) -> Vec<String> {
    let mut clients: Vec<postgres::Client> = (0..4)
        .map(|_| postgres::Client::connect(url, postgres::NoTls).unwrap())
        .collect();
    let mut names = Vec::new();
    for c in &mut clients {
        c.simple_query("BEGIN").unwrap();
        for m in c
            .simple_query("SELECT name FROM pg_prepared_statements WHERE from_sql")
            .unwrap()
        {
            if let postgres::SimpleQueryMessage::Row(r) = m {
                names.extend(r.get(0).map(str::to_string));
            }
        }
    }
    for c in &mut clients {
        c.simple_query("COMMIT").unwrap();
    }
    names
}

/// A `PREPARE` the static refusal cannot see (run by `EXECUTE` in a `DO` block or in a
/// function the migration calls, in UP or DOWN, one by one or `--atomic`) leaves no prepared
/// statement on a pooled server connection: the pooled reset deallocates every SQL-level one.
/// Fails without the `DEALLOCATE` loop in `RESET_POOLED`: `q`, `Odd "Name"` and `from_fn`
/// stay in the pool, and a later client's `PREPARE q` fails with "already exists".
#[test]
fn a_prepare_hidden_in_a_do_block_leaves_no_prepared_statement_in_the_pool() {
    let p = Project::new("pooled_hidden_prepare");
    p.migration(
        "0001_coach_hidden.sql",
        "-- UP\ncreate table coach_h (id int);\n\
         do $$ begin execute 'prepare q as select 1'; \
         execute 'prepare \"Odd \"\"Name\"\"\" as select 2'; end $$;\n\
         -- DOWN\ndrop table coach_h;\ndo $$ begin execute 'prepare q_down as select 1'; end $$;\n",
    );
    p.migration(
        "0002_coach_fn.sql",
        "-- UP\ncreate function coach_prep() returns void language plpgsql as $$ \
         begin execute 'prepare from_fn as select 3'; end $$;\nselect coach_prep();\n\
         -- DOWN\ndrop function coach_prep();\n",
    );
    let url = pooled_url(&p);
    for args in [
        &["up"][..],
        &["down", "--all"],
        &["up", "--atomic"],
        &["redo", "--steps", "2", "--allow-destructive"],
    ] {
        let mut all = args.to_vec();
        all.extend(["--database-url", &url]);
        p.migrate_raw(&all, &[]).success();
        assert_eq!(
            sql_prepared_statements_in_the_pool(&url),
            Vec::<String>::new(),
            "after {args:?}"
        );
    }
    assert_eq!(p.applied(), vec![1, 2]);
    // Another client of the pool can use the name.
    let mut other = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    other
        .batch_execute("BEGIN; PREPARE q AS SELECT 1; DEALLOCATE q; COMMIT")
        .unwrap();
}

/// The application a pooled run connected as: `pg_stat_activity` shows it while a migration
/// runs (and holds the lock), and another run waiting for the lock names it, through a
/// transaction pooler and a session pooler alike.
/// Fails without restoring `application_name` after `RESET ALL` in the pooled reset, and in
/// the session resets before and after each migration (a session pooler's server connection
/// started with the pooler's own startup value; attacker finding): the running migration's
/// backend showed an empty application, and so did the waiting run's message.
#[test]
fn a_pooled_run_keeps_its_application_name_while_it_holds_the_lock() {
    let p = Project::new("pooled_appname");
    p.migration(
        "0001_coach_a.sql",
        "-- UP\ncreate table coach_a (id int);\n-- DOWN\ndrop table coach_a;\n",
    );
    p.migration(
        "0002_coach_slow.sql",
        "-- UP\nselect pg_sleep(2) /* appname */;\n-- DOWN\nselect 1;\n",
    );
    // application_name, else fallback_application_name, else PGAPPNAME, else "migrate".
    let names = [
        ("?application_name=deploy-pooled", None, "deploy-pooled"),
        (
            "?fallback_application_name=fallback-app",
            None,
            "fallback-app",
        ),
        ("", Some("env-app"), "env-app"),
        ("", None, "migrate"),
    ];
    let poolers = [bouncer(), session_bouncer()];
    for (pooler, (query, env, expected)) in poolers
        .into_iter()
        .flat_map(|pooler| names.map(|name| (pooler, name)))
    {
        let url = format!("{}{query}", url_through(pooler, &p));
        let mut command = Command::new(env!("CARGO_BIN_EXE_migrate"));
        command
            .args(["up", "--database-url", &url])
            .current_dir(p.path())
            .env_remove("DATABASE_URL")
            .env_remove("PGAPPNAME")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(name) = env {
            command.env("PGAPPNAME", name);
        }
        let pooled = command.spawn().unwrap();
        wait_for_query(&p, "/* appname */");
        let shown: String = p.db.scalar(
            "SELECT string_agg(application_name, ',') FROM pg_stat_activity \
             WHERE datname = current_database() AND state = 'active' \
             AND query LIKE '%/* appname */%' AND pid <> pg_backend_pid()",
        );
        assert_eq!(shown, expected);
        // A direct run waits for the lock and names the pooled run's application.
        let mut direct = spawn(&p, &["up", "--lock-wait", "60"]);
        let mut stderr = BufReader::new(direct.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        assert!(
            line.contains(&format!("application `{expected}`")),
            "{line}"
        );
        let pooled = finish_within(pooled, Duration::from_secs(60));
        assert!(
            pooled.status.success(),
            "{}",
            String::from_utf8_lossy(&pooled.stderr)
        );
        assert!(direct.wait().unwrap().success());
        assert_eq!(p.applied(), vec![1, 2]);
        p.migrate(&["down", "--all"]).success();
    }
}

/// Migrations 0001..=`n` (`coach_r<v>`), with `pg_sleep(<secs>) /* <marker> */` in the
/// sections `slow` names (version, "UP" or "DOWN").
fn racing(label: &str, n: i64, slow: &[(i64, &str, u32)]) -> Project {
    let p = Project::new(label);
    for v in 1..=n {
        let sleep = |section: &str| {
            slow.iter()
                .find(|(sv, ss, _)| *sv == v && *ss == section)
                .map_or(String::new(), |(_, ss, secs)| {
                    format!(
                        "select pg_sleep({secs}) /* slow{v}{} */;\n",
                        ss.to_lowercase()
                    )
                })
        };
        p.migration(
            &format!("{v:04}_coach_r{v}.sql"),
            &format!(
                "-- UP\ncreate table coach_r{v} (id int);\n{}-- DOWN\ndrop table coach_r{v};\n{}",
                sleep("UP"),
                sleep("DOWN")
            ),
        );
    }
    p
}

/// Waits until `count` sessions of the test's database wait for an advisory lock.
fn wait_for_lock_waiters(p: &Project, count: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let waiting: i64 = p.db.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND wait_event_type = 'Lock' AND wait_event = 'advisory'",
        );
        if waiting >= count {
            return;
        }
        assert!(Instant::now() < deadline, "nobody waits for the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The tester's race: a pooled `down` started while a pooled `up` applies its first
/// migration. It used to read the applied state outside the lock (the `up`'s migration not
/// yet committed), plan nothing, and exit 0 with "nothing to down: head is 0001", though
/// 0001 was applied when it ended. Now it plans from a read under the lock, so it either
/// reverts 0001 (and the `up` stops at the gap) or stops, exit 1, saying another run
/// applied above it; never "nothing to down".
#[test]
fn a_pooled_down_racing_a_pooled_up_tells_what_happened() {
    let p = racing("pooled_race", 4, &[(1, "UP", 2), (2, "UP", 1)]);
    for round in 0..2 {
        let up = spawn_pooled(&p, &["up"]);
        wait_for_query(&p, "/* slow1up */");
        let down = spawn_pooled(&p, &["down"]);
        let up = finish_within(up, Duration::from_secs(60));
        let down = finish_within(down, Duration::from_secs(60));
        let (down_out, down_err) = (text(&down.stdout), text(&down.stderr));
        let (up_out, up_err) = (text(&up.stdout), text(&up.stderr));
        let all = format!("round {round}\nup: {up_out}{up_err}\ndown: {down_out}{down_err}");
        assert!(!down_out.contains("nothing to down"), "{all}");
        let applied = p.applied();
        if down.status.code() == Some(0) {
            // It reverted 0001 between the up's transactions; the up stopped at the gap.
            assert!(down_out.contains("coach_r1"), "{all}");
            assert!(down_out.contains("head is none"), "{all}");
            assert_eq!(up.status.code(), Some(1), "{all}");
            assert!(up_err.contains("reverted 0001 below it"), "{all}");
            assert!(applied.is_empty(), "{all}");
        } else {
            assert_eq!(down.status.code(), Some(1), "{all}");
            assert!(
                down_err.contains("another run applied a migration above"),
                "{all}"
            );
            assert_eq!(up.status.code(), Some(0), "{all}");
            assert_eq!(applied, vec![1, 2, 3, 4], "{all}");
            p.migrate(&["down", "--all"]).success();
        }
    }
}

/// A migration another run did first (found under the lock) is reported as skipped, human
/// and `--json`, with the head the database has after the run; `up` and `down` still exit 0
/// (what was asked holds: it is applied, or reverted). Deterministic: a direct run queues
/// for the lock while the pooled run's slow migration holds it, so it goes first after it.
/// Fails when a skip is silent (the pooled run said "1 migration(s) done; head is 0004" and
/// nothing of 0004).
#[test]
fn a_migration_another_run_did_first_is_reported_skipped() {
    let p = racing("pooled_skip", 4, &[(3, "UP", 2), (4, "DOWN", 2)]);
    for json in [false, true] {
        p.migrate(&["up", "--to", "2"]).success();
        let mut args = vec!["up"];
        if json {
            args.insert(0, "--json");
        }
        let (pooled, direct) = queued_behind(&p, spawn_pooled(&p, &args), "/* slow3up */", || {
            spawn(&p, &["up"])
        });
        assert!(direct.status.success(), "{}", text(&direct.stderr));
        let out = text(&pooled.stdout);
        assert_eq!(
            pooled.status.code(),
            Some(0),
            "{out}{}",
            text(&pooled.stderr)
        );
        assert_eq!(p.applied(), vec![1, 2, 3, 4]);
        if json {
            let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(doc["ok"], true, "{doc}");
            assert_eq!(doc["head"], 4, "{doc}");
            assert_eq!(doc["steps"].as_array().unwrap().len(), 1, "{doc}");
            assert_eq!(doc["skipped"][0]["version"], 4, "{doc}");
            assert_eq!(doc["skipped"][0]["direction"], "up", "{doc}");
            assert_eq!(
                doc["skipped"][0]["reason"], "another run applied it first",
                "{doc}"
            );
        } else {
            assert!(
                out.contains("skipped 0004 coach_r4 (up): another run applied it first"),
                "{out}"
            );
            assert!(
                out.contains(
                    "1 migration(s) done, 1 skipped (another run did it first); head is 0004"
                ),
                "{out}"
            );
        }
        // The same for down: the pooled run plans 0004 and 0003, the direct one reverts
        // 0003 right after the pooled one reverted 0004.
        let (pooled, direct) = queued_behind(
            &p,
            spawn_pooled(&p, &["down", "--steps", "2"]),
            "/* slow4down */",
            || spawn(&p, &["down"]),
        );
        assert!(direct.status.success(), "{}", text(&direct.stderr));
        let out = text(&pooled.stdout);
        assert_eq!(
            pooled.status.code(),
            Some(0),
            "{out}{}",
            text(&pooled.stderr)
        );
        assert!(
            out.contains("skipped 0003 coach_r3 (down): another run reverted it first"),
            "{out}"
        );
        assert!(out.contains("head is 0002"), "{out}");
        assert_eq!(p.applied(), vec![1, 2]);
        p.migrate(&["down", "--all"]).success();
    }
}

/// A pooled `redo` whose migration another (pooled) run reverted first did not redo it: it
/// says so and exits 1, and does not claim that what it re-applied stays reverted. The
/// redo's plan read queues behind the `down`'s slow transaction, and the `down`'s next
/// transaction (already queued) reverts the migration the redo planned.
/// Fails when the skip is silent (exit 0, "0 migration(s) done; head is 0002").
#[test]
fn a_pooled_redo_says_when_another_run_reverted_its_migration_first() {
    let p = racing("pooled_redo_race", 4, &[(4, "DOWN", 2), (3, "DOWN", 1)]);
    p.migrate(&["up"]).success();
    let (down, redo) = queued_behind(
        &p,
        spawn_pooled(&p, &["down", "--steps", "2"]),
        "/* slow4down */",
        || spawn_pooled(&p, &["redo", "--allow-destructive"]),
    );
    assert!(down.status.success(), "{}", text(&down.stderr));
    let (out, err) = (text(&redo.stdout), text(&redo.stderr));
    assert_eq!(redo.status.code(), Some(1), "{out}{err}");
    assert!(
        out.contains("skipped 0003 coach_r3 (down): another run reverted it first"),
        "{out}"
    );
    assert!(out.contains("head is 0002"), "{out}");
    assert!(
        err.contains(
            "another run reverted it first, so this redo neither reverted nor re-applied it"
        ),
        "{err}"
    );
    assert!(!err.contains("stay reverted"), "{err}");
    assert_eq!(p.applied(), vec![1, 2]);
}

/// A pooled `up` that stops because another run reverted what it had just applied does not
/// claim that what it applied "stays applied", and shows the head the database has.
/// Deterministic: a direct `down` queues for the lock during the pooled run's slow 0003.
/// Fails with the old wording: "1 migration(s) before it stay applied", though the other
/// run had reverted 0003.
#[test]
fn a_pooled_up_stopped_by_another_run_does_not_claim_its_steps_stay() {
    let p = racing("pooled_raced_steps", 4, &[(3, "UP", 2)]);
    p.migrate(&["up", "--to", "2"]).success();
    let (pooled, direct) = queued_behind(&p, spawn_pooled(&p, &["up"]), "/* slow3up */", || {
        spawn(&p, &["down"])
    });
    assert!(direct.status.success(), "{}", text(&direct.stderr));
    let (out, err) = (text(&pooled.stdout), text(&pooled.stderr));
    assert_eq!(pooled.status.code(), Some(1), "{out}{err}");
    assert!(err.contains("reverted 0003 below it meanwhile"), "{err}");
    assert!(
        err.contains(
            "this run applied 1 migration(s) before it, which the other run may have changed since"
        ),
        "{err}"
    );
    assert!(!err.contains("stay applied"), "{err}");
    assert!(out.contains("head is 0002"), "{out}");
    assert_eq!(p.applied(), vec![1, 2]);
}

/// A migration that prepares a statement (hidden in a `DO` block) and then fails leaves it
/// in the pool neither: no rollback undoes a `PREPARE`, so the runner deallocates after the
/// failure, on the server connection PgBouncer just released (one by one and `--atomic`).
/// Fails without it: `leak` stays on a pooled server connection.
#[test]
fn a_failed_pooled_migration_leaves_no_prepared_statement_or_lock_in_the_pool() {
    let p = Project::new("pooled_fail_prepare");
    p.migration(
        "0001_coach_f.sql",
        "-- UP\ncreate table coach_f (id int);\n\
         do $$ begin execute 'prepare leak as select 1'; end $$;\n\
         select pg_advisory_lock(4242);\nselect 1/0;\n\
         -- DOWN\ndrop table coach_f;\n",
    );
    let url = pooled_url(&p);
    for args in [&["up"][..], &["up", "--atomic"]] {
        let mut all = args.to_vec();
        all.extend(["--database-url", &url]);
        p.migrate_raw(&all, &[])
            .code(1)
            .stderr_has("division by zero");
        assert_eq!(
            sql_prepared_statements_in_the_pool(&url),
            Vec::<String>::new(),
            "after {args:?}"
        );
        // Nor the session-level advisory lock it took before failing (the rollback does not
        // release it).
        let held: i64 = p
            .db
            .scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242");
        assert_eq!(
            held, 0,
            "advisory lock 4242 stays in the pool after {args:?}"
        );
    }
    assert!(p.applied().is_empty());
}
