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

/// Seconds since the backend serving this statement started, by the server's own clock.
const BACKEND_AGE: &str =
    "SELECT extract(epoch FROM pg_catalog.clock_timestamp() - backend_start) \
     FROM pg_catalog.pg_stat_activity WHERE pid = pg_catalog.pg_backend_pid()";

/// True when `first` (a session to `url`) reaches the server through a transaction-mode
/// pooler. Three signs, any of which settles it: the backend serving `first` is older than
/// `first` itself (a pooled server connection, reused); the backend changes between
/// statements of one session; or a second session of ours is handed the backend the first
/// one held once its transaction ends (or must wait for it). When the second session cannot
/// connect (a full server), the first two signs decide.
pub async fn is_transaction_pooler(
    url: &crate::conninfo::ConnInfo,
    first: &Session,
) -> anyhow::Result<bool> {
    let age: f64 = first_value(first, BACKEND_AGE)
        .await?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    if age > first.connected_at.elapsed().as_secs_f64() + 0.5 {
        return Ok(true);
    }
    let before = backend_pid(first).await?;
    let Ok(second) = super::connect(url).await else {
        return Ok(backend_pid(first).await? != before);
    };
    // Other clients of the same pool can reorder which connection is handed out next, so a
    // pooler gets three chances to show itself; a direct server never changes backends.
    for _ in 0..3 {
        first.batch_execute("BEGIN").await?;
        let held = backend_pid(first).await?;
        let waited = tokio::time::timeout(PATIENCE, backend_pid(&second.client)).await;
        first.batch_execute("COMMIT").await?;
        let other = match waited {
            Ok(pid) => pid?,
            // The only server connection was ours: a direct server never makes this wait.
            Err(_) => return Ok(true),
        };
        let again = backend_pid(&second.client).await?;
        if held != before || other == held || again != other {
            return Ok(true);
        }
    }
    Ok(false)
}
