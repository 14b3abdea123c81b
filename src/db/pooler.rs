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

/// How long the second session's `SELECT pg_backend_pid()` may take before a busy pool is
/// the only explanation (a direct server answers it at once).
const PATIENCE: Duration = Duration::from_secs(2);

async fn backend_pid(client: &Client) -> Result<String, tokio_postgres::Error> {
    let messages = client
        .simple_query("SELECT pg_catalog.pg_backend_pid()")
        .await?;
    Ok(messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        })
        .unwrap_or_default())
}

/// True when `first` (a session to `url`) reaches the server through a transaction-mode
/// pooler. Opens a second session for the test; when that fails (the server is full), the
/// answer is what `first` alone shows.
pub async fn is_transaction_pooler(url: &crate::conninfo::ConnInfo, first: &Client) -> anyhow::Result<bool> {
    let before = backend_pid(first).await?;
    let Ok(second) = super::connect(url).await else {
        return Ok(backend_pid(first).await? != before);
    };
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
    Ok(held != before || other == held || again != other)
}
