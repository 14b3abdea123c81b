//! The session-level advisory lock every writing run holds for its whole duration. A
//! transaction-level lock would deadlock with `CREATE INDEX CONCURRENTLY`, which waits for
//! every older transaction, including ours.

use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::Client;

use crate::error::Error;

/// The lock's two keys: "migr" and "ate!" as big-endian int4s.
pub const KEYS: (i32, i32) = (0x6d69_6772, 0x6174_6521);

/// The transaction-level form of the lock, for runs through a transaction-mode pooler: held
/// until the transaction ends, so it can never be left behind on a pooled server connection.
/// It waits at most `wait` (`--lock-wait`; `lock_timeout` for this statement only, then the
/// transaction's own value again), then fails with `lock_not_available` (55P03). With `check`
/// (`Session::checks_client_connection`), the server checks while it waits that this client
/// is still connected: a `migrate` killed while it waits leaves no waiter behind.
pub fn xact_lock(wait: Duration, check: bool) -> String {
    let millis = lock_timeout_millis(wait);
    let check = if check {
        format!(
            "SELECT pg_catalog.set_config('client_connection_check_interval', '{}', true); ",
            super::session::CLIENT_CONNECTION_CHECK_INTERVAL
        )
    } else {
        String::new()
    };
    format!(
        "{check}SELECT pg_catalog.set_config('migrate.lock_timeout', \
         pg_catalog.current_setting('lock_timeout'), true), \
         pg_catalog.set_config('lock_timeout', '{millis}', true); \
         SELECT pg_catalog.pg_advisory_xact_lock({}, {}); \
         SELECT pg_catalog.set_config('lock_timeout', \
         pg_catalog.current_setting('migrate.lock_timeout'), true)",
        KEYS.0, KEYS.1
    )
}

/// Who holds the lock, as the server sees them.
const HOLDER: &str = "
    SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''),
           coalesce(host(a.client_addr) || ':' || a.client_port, 'local socket'),
           coalesce(to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS UTC'), ''),
           coalesce(a.state, ''),
           coalesce(to_char(a.query_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS UTC'), ''),
           coalesce(left(regexp_replace(a.query, '[[:space:]]+', ' ', 'g'), 120), '')
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.classid = $1::int4::oid AND l.objid = $2::int4::oid AND l.objsubid = 2
    LIMIT 1";

/// Takes the transaction-level lock inside the caller's transaction, waiting at most `wait`.
/// When it is not acquired in time the transaction is rolled back and the error (exit 3)
/// names the holder.
pub async fn acquire_xact(session: &super::Session, wait: Duration) -> anyhow::Result<()> {
    let client = &session.client;
    match client
        .batch_execute(&xact_lock(wait, session.checks_client()))
        .await
    {
        Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => {
            client.batch_execute("ROLLBACK").await?;
            Err(not_acquired(client, wait).await)
        }
        // A cancel our own signal handler sent, as `acquire` says it.
        Err(e)
            if e.code() == Some(&SqlState::QUERY_CANCELED)
                && super::session::interrupted().is_some() =>
        {
            let _ = client.batch_execute("ROLLBACK").await;
            let who = holder(client)
                .await
                .unwrap_or_else(|_| "another session".to_string());
            let by = super::session::interrupted().map_or("", super::session::signal_name);
            Err(Error::refused(format!(
                "interrupted by {by} while waiting for the migration lock, held by {who}; \
                 nothing was done"
            ))
            .into())
        }
        result => Ok(result?),
    }
}

/// Through a transaction pooler, before the run's first transaction waits for the lock: when
/// another session holds it, says so at once and names the holder, as `acquire` does.
pub async fn announce_xact(
    client: &Client,
    wait: Duration,
    waiting: &dyn Fn(&str),
) -> anyhow::Result<()> {
    client.batch_execute("BEGIN").await?;
    let free = client
        .query_typed_one(
            "SELECT pg_catalog.pg_try_advisory_xact_lock($1, $2)",
            &[(&KEYS.0, Type::INT4), (&KEYS.1, Type::INT4)],
        )
        .await;
    let who = match &free {
        Ok(row) if !row.get::<_, bool>(0) => Some(holder(client).await),
        _ => None,
    };
    client.batch_execute("ROLLBACK").await?;
    free?;
    if let Some(who) = who {
        announce(waiting, wait, &who?);
    }
    Ok(())
}

/// Says, before waiting, who holds the lock and how long the run will wait for it (nothing
/// when it will not wait).
fn announce(waiting: &dyn Fn(&str), wait: Duration, who: &str) {
    if !wait.is_zero() {
        waiting(&format!(
            "waiting up to {}s for the migration lock, held by {who}",
            wait.as_secs()
        ));
    }
}

/// `wait` as a `lock_timeout` in milliseconds: at least 1, since 0 would mean no limit.
fn lock_timeout_millis(wait: Duration) -> u128 {
    wait.as_millis().clamp(1, i32::MAX as u128)
}

/// The lock was not acquired within `wait`: who holds it, as an "unavailable" error (exit 3).
/// "Another session", not "another migrate run": a DBA's console or a pooled connection a
/// lock was left on hold it too; the holder's application says which.
pub async fn not_acquired(client: &Client, wait: Duration) -> anyhow::Error {
    let who = match holder(client).await {
        Ok(who) => who,
        Err(e) => return e,
    };
    Error::unavailable(format!(
        "another session holds the migration lock: {who}; waited {}s. \
         Let it finish, or raise --lock-wait",
        wait.as_secs()
    ))
    .into()
}

/// The lock's holder in a sentence, or "another session" when it is gone already.
pub async fn holder(client: &Client) -> anyhow::Result<String> {
    let row = client
        .query_typed_opt(HOLDER, &[(&KEYS.0, Type::INT4), (&KEYS.1, Type::INT4)])
        .await?;
    Ok(match row {
        Some(row) => {
            let state: String = row.get(5);
            let query: String = row.get(7);
            format!(
                "pid {} (application `{}`, user `{}`, client {}, connected since {}, {}{})",
                row.get::<_, i32>(0),
                row.get::<_, String>(1),
                row.get::<_, String>(2),
                row.get::<_, String>(3),
                row.get::<_, String>(4),
                if state.is_empty() {
                    "state unknown".to_string()
                } else {
                    state.clone()
                },
                if query.is_empty() {
                    String::new()
                } else if state == "active" {
                    format!(" since {}: `{query}`", row.get::<_, String>(6))
                } else {
                    format!("; last statement: `{query}`")
                }
            )
        }
        None => "another session".to_string(),
    })
}

/// Takes the lock, waiting at most `wait`; exits 3 naming the holder when it cannot. When
/// the lock is taken, `waiting` hears at once whom it waits for and for how long at most.
/// The session releases it when dropped (see `Session`'s `Drop`). Before it waits, the
/// session is set to have the server check that this client is still connected
/// (`session::check_client_connection`), so a `migrate` killed while it waits, or while it
/// holds the lock, leaves neither behind for longer than
/// `session::CLIENT_CONNECTION_CHECK_INTERVAL`.
pub async fn acquire(
    session: &super::Session,
    wait: Duration,
    waiting: &dyn Fn(&str),
) -> anyhow::Result<()> {
    super::session::check_client_connection(session, true).await;
    take(session, wait, waiting).await?;
    session
        .holds_lock
        .store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// `acquire`, but for the session's record of it.
async fn take(client: &Client, wait: Duration, waiting: &dyn Fn(&str)) -> anyhow::Result<()> {
    let row = client
        .query_typed_one(
            "SELECT pg_try_advisory_lock($1, $2)",
            &[(&KEYS.0, Type::INT4), (&KEYS.1, Type::INT4)],
        )
        .await?;
    if row.get::<_, bool>(0) {
        return Ok(());
    }
    let who = holder(client).await?;
    let acquired = if wait.is_zero() {
        false
    } else {
        announce(waiting, wait, &who);
        let millis = lock_timeout_millis(wait);
        client
            .batch_execute(&format!("SET lock_timeout = {millis}"))
            .await?;
        let wait_for_lock = client.query_typed_one(
            "SELECT pg_advisory_lock($1, $2)",
            &[(&KEYS.0, Type::INT4), (&KEYS.1, Type::INT4)],
        );
        tokio::pin!(wait_for_lock);
        // A signal that came before the statement reached the server cancelled nothing:
        // once it has, cancel again.
        let mut cancelled_again = false;
        let result = loop {
            tokio::select! {
                result = &mut wait_for_lock => break result,
                _ = tokio::time::sleep(Duration::from_millis(250)), if !cancelled_again => {
                    if super::session::interrupted().is_some() {
                        cancelled_again = true;
                        super::session::cancel_all().await;
                    }
                }
            }
        };
        client.batch_execute("RESET lock_timeout").await?;
        match result {
            Ok(_) => true,
            Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => false,
            // A cancel our own signal handler sent (a statement_timeout is the same SQLSTATE
            // and keeps the server's words).
            Err(e)
                if e.code() == Some(&SqlState::QUERY_CANCELED)
                    && super::session::interrupted().is_some() =>
            {
                let by = super::session::interrupted().map_or("", super::session::signal_name);
                return Err(Error::refused(format!(
                    "interrupted by {by} while waiting for the migration lock, held by {who}; \
                     nothing was done"
                ))
                .into());
            }
            Err(e) => return Err(e.into()),
        }
    };
    if acquired {
        return Ok(());
    }
    Err(not_acquired(client, wait).await)
}
/// Releases the lock, every hold of it (the runner's record guard adds one per migration;
/// closing the session releases them too).
pub async fn release(client: &Client) -> anyhow::Result<()> {
    client
        .batch_execute(&format!(
            "DO $migrate$ BEGIN WHILE pg_catalog.pg_advisory_unlock({}, {}) LOOP END LOOP; END $migrate$",
            KEYS.0, KEYS.1
        ))
        .await?;
    Ok(())
}
