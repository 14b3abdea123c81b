//! The session-level advisory lock every writing run holds for its whole duration. A
//! transaction-level lock would deadlock with `CREATE INDEX CONCURRENTLY`, which waits for
//! every older transaction, including ours.

use std::time::Duration;

use tokio_postgres::Client;

use crate::error::Error;

/// The lock's two keys: "migr" and "ate!" as big-endian int4s.
pub const KEYS: (i32, i32) = (0x6d69_6772, 0x6174_6521);

const HOLDER: &str = "
    SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''),
           coalesce(to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS UTC'), '')
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.classid = $1::int4::oid AND l.objid = $2::int4::oid AND l.objsubid = 2
    LIMIT 1";

/// Takes the lock, waiting at most `wait`; exits 3 naming the holder when it cannot.
pub async fn acquire(client: &Client, wait: Duration) -> anyhow::Result<()> {
    let acquired = if wait.is_zero() {
        let row = client
            .query_one("SELECT pg_try_advisory_lock($1, $2)", &[&KEYS.0, &KEYS.1])
            .await?;
        row.get::<_, bool>(0)
    } else {
        let millis = wait.as_millis().clamp(1, i32::MAX as u128);
        client
            .batch_execute(&format!("SET lock_timeout = {millis}"))
            .await?;
        let result = client
            .query_one("SELECT pg_advisory_lock($1, $2)", &[&KEYS.0, &KEYS.1])
            .await;
        client.batch_execute("RESET lock_timeout").await?;
        match result {
            Ok(_) => true,
            Err(e) if e.code().is_some_and(|c| c.code() == "55P03") => false,
            Err(e) => return Err(e.into()),
        }
    };
    if acquired {
        return Ok(());
    }
    let holder = client.query_opt(HOLDER, &[&KEYS.0, &KEYS.1]).await?;
    let who = match holder {
        Some(row) => format!(
            "pid {} (application `{}`, user `{}`, connected {})",
            row.get::<_, i32>(0),
            row.get::<_, String>(1),
            row.get::<_, String>(2),
            row.get::<_, String>(3)
        ),
        None => "another session".to_string(),
    };
    Err(Error::unavailable(format!(
        "another migrate run holds the migration lock: {who}; waited {}s. \
         Let it finish, or raise --lock-wait",
        wait.as_secs()
    ))
    .into())
}

/// Releases the lock (closing the session releases it too).
pub async fn release(client: &Client) -> anyhow::Result<()> {
    client
        .execute("SELECT pg_advisory_unlock($1, $2)", &[&KEYS.0, &KEYS.1])
        .await?;
    Ok(())
}
