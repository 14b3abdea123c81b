//! Telling a transaction-mode connection pooler (PgBouncer `pool_mode = transaction`, the
//! transaction port of hosted Supabase's Supavisor) from a direct session.
//!
//! Through such a pooler each transaction, and each statement outside one, may run on another
//! server connection: a session-level advisory lock stays behind on whichever connection took
//! it, `SET` leaks to other clients, and named prepared statements collide. No protocol
//! message says "pooler", so this watches what one does: two sessions of ours, one holding a
//! transaction open while the other asks for its backend pid twice. A direct server keeps
//! each session on its own backend; a transaction pooler hands the second session the first
//! one's backend once that transaction ends (PgBouncer reuses the most recently released
//! connection), or makes it wait while the pool is busy.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio_postgres::{Client, SimpleQueryMessage};

use super::Session;

/// How long the second session's `SELECT pg_backend_pid()` may take before a busy pool is
/// the only explanation (a direct server answers it at once).
const PATIENCE: Duration = Duration::from_secs(2);

async fn backend_pid(client: &Client) -> Result<String, tokio_postgres::Error> {
    Ok(first_value(client, "SELECT pg_catalog.pg_backend_pid()")
        .await?
        .unwrap_or_default())
}

async fn first_value(client: &Client, sql: &str) -> Result<Option<String>, tokio_postgres::Error> {
    let messages = client.simple_query(sql).await?;
    Ok(messages.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
        _ => None,
    }))
}

/// Seconds since the backend serving this statement started, by the server's own clock; and
/// the TCP connection it serves as the server sees it: client address and port, server
/// address and port (NULL over a Unix socket).
const BACKEND_AGE: &str =
    "SELECT extract(epoch FROM pg_catalog.clock_timestamp() - backend_start), \
     pg_catalog.host(pg_catalog.inet_client_addr()), pg_catalog.inet_client_port(), \
     pg_catalog.host(pg_catalog.inet_server_addr()), pg_catalog.inet_server_port() \
     FROM pg_catalog.pg_stat_activity WHERE pid = pg_catalog.pg_backend_pid()";

/// The row of `BACKEND_AGE`: the backend's age in seconds, and the server's view of the TCP
/// connection (client end, server end) when there is one.
async fn backend_view(
    client: &Client,
) -> Result<(f64, Option<(SocketAddr, SocketAddr)>), tokio_postgres::Error> {
    let messages = client.simple_query(BACKEND_AGE).await?;
    let Some(row) = messages.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => Some(row),
        _ => None,
    }) else {
        return Ok((0.0, None));
    };
    let age = row.get(0).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let end = |addr: usize, port: usize| -> Option<SocketAddr> {
        let ip: IpAddr = row.get(addr)?.parse().ok()?;
        let port: u16 = row.get(port)?.parse().ok()?;
        Some(SocketAddr::new(ip, port))
    };
    Ok((age, end(1, 2).zip(end(3, 4))))
}

/// True when the TCP connection the server sees (`client` end, `server` end) is one of this
/// process's own sockets: then no pooler or proxy stands between (it would be another process,
/// with sockets of its own). Read from `/proc/net/tcp` and `tcp6` and this process's file
/// descriptors (`/proc/self/fd`), Linux only; false when undecided (another system, a
/// `/proc` that cannot be read, an address translated on the way).
#[cfg(target_os = "linux")]
fn own_socket(client: SocketAddr, server: SocketAddr) -> bool {
    use procfs::process::{FDTarget, Process};
    let Ok(entries) = (match client {
        SocketAddr::V4(_) => procfs::net::tcp(),
        SocketAddr::V6(_) => procfs::net::tcp6(),
    }) else {
        return false;
    };
    let Some(inode) = entries
        .iter()
        .find(|e| e.local_address == client && e.remote_address == server)
        .map(|e| e.inode)
    else {
        return false;
    };
    Process::myself()
        .and_then(|me| me.fd())
        .is_ok_and(|mut fds| {
            fds.any(|fd| fd.is_ok_and(|fd| matches!(fd.target, FDTarget::Socket(i) if i == inode)))
        })
}

#[cfg(not(target_os = "linux"))]
fn own_socket(_client: SocketAddr, _server: SocketAddr) -> bool {
    false
}

/// What PgBouncer says when it refuses a transaction block in `pool_mode = statement`, and
/// closes the session (at the run's first `BEGIN`).
const STATEMENT_POOLING: &str = "transaction blocks not allowed in statement pooling mode";

/// `err` as a refusal that names the pooler and what to do, when PgBouncer in `pool_mode =
/// statement` ended the session with it (it passes for a transaction pooler, and refuses the
/// first `BEGIN`; migrate writes only inside transactions, so nothing was changed); any other
/// error as it is.
pub fn explain_statement_pooler(err: anyhow::Error) -> anyhow::Error {
    let refused_begin = err.chain().any(|cause| {
        cause
            .downcast_ref::<tokio_postgres::Error>()
            .and_then(|e| e.as_db_error())
            .is_some_and(|db| db.message().contains(STATEMENT_POOLING))
    });
    if !refused_begin {
        return err;
    }
    crate::error::Error::refused(format!(
        "the database is reached through a statement-mode connection pooler (PgBouncer with \
         pool_mode = statement, which said: {STATEMENT_POOLING}): migrate runs every migration, \
         and its own checks, in a transaction, so it cannot work through it; nothing was \
         changed. Connect directly to PostgreSQL, or through a pool in session or transaction \
         mode"
    ))
    .into()
}

/// True when `first` (a session to `url`) reaches the server through a transaction-mode
/// pooler. Three signs, any of which settles it: the backend changes between statements of
/// one session; a second session of ours is handed the backend the first one held once its
/// transaction ends (or must wait for it); or two statements in a row of one session get two
/// backends (a round-robin pool). A backend older than `first` itself (a pooled server
/// connection, reused) says "a pooler" but not which kind: a session pooler shows none of the
/// three signs. Undecided is taken for a transaction pooler, where a session-level lock would
/// stay behind for good: a second session that cannot connect (a client limit, a full server)
/// or that waits past the first one's `COMMIT` (a full session pool, or a transaction pool
/// busy with other clients). A session whose backend serves this process's own TCP socket
/// (`own_socket`) is direct, and no second session is opened.
///
/// Nothing is written before it has answered, so a signal ends it at once ("nothing was
/// done"): a pooler that queues its statements (every server connection taken) has no server
/// connection to pass the cancel request on to, and the run sat out the 10 s limit, then said
/// what was running "may still be rolling back" (attacker finding).
pub async fn is_transaction_pooler(
    url: &crate::conninfo::ConnInfo,
    first: &Session,
) -> anyhow::Result<bool> {
    let connecting = || format!(" while connecting to {}; nothing was done", url.redacted());
    super::session::before_writing(connecting, detect(url, first)).await
}

/// `is_transaction_pooler`, without its answer to a signal.
async fn detect(url: &crate::conninfo::ConnInfo, first: &Session) -> anyhow::Result<bool> {
    let (age, tcp) = backend_view(first).await?;
    // A pooled server connection, reused: a pooler, but a session pooler (`pool_mode =
    // session`) reuses them too, and keeps each session on its own backend, where a
    // session-level lock is safe; the signs below tell the two apart.
    let reused = age > first.connected_at.elapsed().as_secs_f64() + 0.5;
    // The backend's client is this process's own socket: a direct session, settled without
    // a second session (one backend fewer to start, about 10 ms of a short run).
    if !reused && tcp.is_some_and(|(client, server)| own_socket(client, server)) {
        return Ok(false);
    }
    let before = backend_pid(first).await?;
    let Ok(second) = super::connect(url).await else {
        // Undecided (a pooler's client limit, Supavisor's per-tenant one, a full server): the
        // kind a session lock is not safe with, since a lock left on a pooled connection
        // stays for good (attacker finding: PgBouncer with `max_client_conn` reached).
        return Ok(true);
    };
    // Other clients of the same pool can reorder which connection is handed out next, so a
    // pooler gets three chances to show itself (six when it is known to pool); a direct
    // server or a session pooler never changes a session's backend.
    for _ in 0..if reused { 6 } else { 3 } {
        first.batch_execute("BEGIN").await?;
        let held = backend_pid(first).await?;
        let asked = backend_pid(&second.client);
        tokio::pin!(asked);
        let waited = tokio::time::timeout(PATIENCE, &mut asked).await;
        first.batch_execute("COMMIT").await?;
        let other = match waited {
            Ok(pid) => pid?,
            // A full pool (a direct server never makes this wait). A transaction pooler hands
            // the connection on at our `COMMIT`, unless other clients queued before ours
            // take it first; a session pooler keeps it with our session (PgBouncer `pool_mode
            // = session` with every connection taken). The two cannot be told apart, so the
            // kind a session lock is safe with is not assumed (attacker finding: a busy
            // transaction pool taken for a session pool kept the lock for good).
            Err(_) => return Ok(true),
        };
        let again = backend_pid(&second.client).await?;
        if held != before || other == held || again != other {
            return Ok(true);
        }
        // A pool that hands out the connection idle the longest (PgBouncer's
        // `server_round_robin`) gives two statements in a row of one session two backends,
        // now that both sessions' connections are idle.
        if backend_pid(first).await? != backend_pid(first).await? {
            return Ok(true);
        }
    }
    Ok(false)
}
