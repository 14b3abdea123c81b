//! Talking to PostgreSQL: connecting, the `_migrate` state tables, the advisory lock.

mod cancel;
pub(crate) mod catalog;
pub(crate) mod database;
pub mod lock;
pub(crate) mod pooler;
pub(crate) mod seeds;
pub(crate) mod session;
pub(crate) mod sqlstate;
pub(crate) mod state;
pub(crate) mod tls;

use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use crate::conninfo::{ConnInfo, PasswordSource};
use crate::error::Error;
use tls::SslMode;

/// An open session: the client, the server's notices, and the server's reason if it closed
/// the session. Derefs to the client. Its statement is cancelled on SIGINT/SIGTERM
/// (`session::watch_signals`) for as long as it lives.
pub struct Session {
    pub client: Client,
    pub notices: session::Notices,
    pub closed: session::CloseReason,
    /// When the connection attempt began (for telling a pooled backend from our own).
    pub connected_at: std::time::Instant,
    /// The engine reset the session (`RESET ALL`, ...) after the last migration that ran on
    /// it, so the next one need not reset it first; false on a new session.
    pub reset: bool,
    /// PostgreSQL's error positions count this session's query text in characters, except
    /// on a `SQL_ASCII` database (`server_encoding`), where they count bytes.
    pub positions_in_bytes: bool,
    /// The lock generation this run took with the session-level migration lock
    /// (`state::ensure`), which the tracking rows check; none before that, and through a
    /// pooler.
    pub lock_generation: Option<i64>,
    /// The server accepts `client_connection_check_interval` (see
    /// `session::check_client_connection`): the engine sets it for every migration, so a
    /// statement left running by a `migrate` that is gone ends within
    /// `session::CLIENT_CONNECTION_CHECK_INTERVAL`. Unset until asked: when the session-level
    /// lock is taken (`lock::acquire`, which sets it for the whole session), before the first
    /// transaction-level one, or by `ensure_state`.
    pub checks_client_connection: std::sync::OnceLock<bool>,
    /// The server's major version, from the `server_version` it reports at connection.
    pub server_major: Option<u32>,
    /// This session took the session-level migration lock (`lock::acquire`): dropping it
    /// releases the lock first.
    pub(crate) holds_lock: std::sync::atomic::AtomicBool,
    /// The task driving the connection, handed to `session::closing` on drop when the
    /// lock's release is queued on it.
    connection: Option<tokio::task::JoinHandle<()>>,
    _cancel: session::CancelRegistration,
}

/// A session that holds the migration lock releases it when dropped, on every path (done,
/// failed, interrupted): closing the connection would release it too, but a session pooler
/// (PgBouncer `pool_mode = session`) keeps the server connection, and with a
/// `server_reset_query` that does not release advisory locks (empty, or not `DISCARD ALL`)
/// the lock would stay held in the pool for good. The release is queued on the connection
/// ahead of its goodbye (`Terminate`); `session::close` waits for it to have been sent.
impl Drop for Session {
    fn drop(&mut self) {
        if !self.holds_lock.load(std::sync::atomic::Ordering::Relaxed) || self.client.is_closed() {
            return;
        }
        // Polled once: that queues the statement on the connection; its answer is not
        // waited for here (the connection task reads it before it closes).
        let release = lock::release(&self.client);
        let mut release = std::pin::pin!(release);
        let mut context = std::task::Context::from_waker(futures_util::task::noop_waker_ref());
        let _ = std::future::Future::poll(release.as_mut(), &mut context);
        if let Some(connection) = self.connection.take() {
            session::closing(connection);
        }
    }
}

impl std::ops::Deref for Session {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl std::ops::DerefMut for Session {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

impl Session {
    /// Keeps this session's statements running when the process is interrupted: for the
    /// cleanup a command does after an interruption (dropping a scratch database).
    pub fn survive_interrupts(&mut self) {
        self._cancel = session::CancelRegistration::none();
    }

    /// The server was asked, and accepted, to check that this client is still connected
    /// (`checks_client_connection`).
    pub fn checks_client(&self) -> bool {
        self.checks_client_connection.get() == Some(&true)
    }

    /// The server's reason for closing the session, when it gave one.
    pub fn close_reason(&self) -> Option<String> {
        self.closed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Whether NOTICEs reach the user: with `--verbose` (`MIGRATE_VERBOSE=1`, set by the CLI).
/// WARNINGs always do. Filtered here rather than with `SET client_min_messages`, which
/// would change the session (and, through a transaction pooler, other clients' sessions).
pub fn verbose() -> bool {
    std::env::var_os("MIGRATE_VERBOSE").is_some_and(|v| v == "1")
}

/// Opens a session to `target`, with TLS as its `sslmode` says (see `tls`). Failures are
/// "unavailable" (exit 3) when the server could not be reached or refused the session,
/// name the target redacted, and say whether TLS, the password or the database was the
/// problem.
pub async fn connect(target: &ConnInfo) -> anyhow::Result<Session> {
    let started = std::time::Instant::now();
    let shown = target.redacted();
    let config = target.config().clone();
    let tls_params = target.tls();
    let mode = tls_params.mode(tls::is_local(config.get_hosts()));
    let connector = tls::connector(tls_params.verification(mode), tls_params.root_cert.as_ref())
        .map_err(|e| Error::input(format!("cannot connect to {shown}: {e}")))?;
    let attempt = |ssl_mode| {
        let mut config = config.clone();
        config.ssl_mode(ssl_mode);
        let connector = connector.clone();
        async move { config.connect(connector).await }
    };
    use tokio_postgres::config::SslMode::{Disable as Plain, Require as Tls};
    // The first attempt's error, when a second attempt followed it.
    let mut first_error = None;
    let (first, second) = match mode {
        SslMode::Disable => (Plain, None),
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => (Tls, None),
        // libpq's prefer: TLS; plain when the server refuses TLS, the handshake fails, or
        // the server rejects the encrypted session.
        SslMode::Prefer => (Tls, Some(Plain)),
        // libpq's allow: plain; TLS when the server rejects the plain session.
        SslMode::Allow => (Plain, Some(Tls)),
    };
    let connecting = async {
        match (attempt(first).await, second) {
            (Err(e), Some(second)) if tls::server_answered(&e) => {
                first_error = Some(e);
                attempt(second).await
            }
            (result, _) => result,
        }
    };
    // A signal while connecting (a server that does not answer, a pooler that queues the
    // session) ends the attempt at once: there is nothing to cancel yet, and nothing was
    // done. A connection made after a signal (to learn what became of a migration) is not cut
    // short.
    let result = match session::interrupted() {
        Some(_) => connecting.await,
        None => tokio::select! {
            result = connecting => result,
            signal = session::interruption() => {
                return Err(Error::refused(format!(
                    "interrupted by {} while connecting to {shown}; nothing was done",
                    session::signal_name(signal)
                ))
                .into())
            }
        },
    };
    let (client, connection) = result.map_err(|e| {
        let kind = match e.code() {
            Some(code) if !sqlstate::is_unavailable(code) => Error::refused,
            _ => Error::unavailable,
        };
        let why = tls::explain(&e, mode).map_or(String::new(), |w| format!("{w}: "));
        // The first attempt's error, unless it was only a server without TLS saying so.
        let earlier = first_error
            .map(|first| chain(&first))
            .filter(|first| !first.ends_with("server does not support TLS"))
            .map_or(String::new(), |first| {
                format!(" (the attempt before it failed too: {first})")
            });
        kind(format!(
            "cannot connect to {shown}: {why}{}{earlier}{}",
            chain(&e),
            advice(target, &e)
        ))
    })?;
    let positions_in_bytes = connection.parameter("server_encoding") == Some("SQL_ASCII");
    let server_major = connection
        .parameter("server_version")
        .and_then(session::major_version);
    let (notices, closed, connection) = session::drive(connection);
    let token = client.cancel_token();
    let cancel_tls = connector.clone();
    let cancel_config = config.clone();
    let cancel = session::register_cancel(move || {
        let token = token.clone();
        let tls = cancel_tls.clone();
        let config = cancel_config.clone();
        Box::pin(async move { cancel::send(&token, &config, &tls).await })
    });
    Ok(Session {
        client,
        notices,
        closed,
        connected_at: started,
        reset: false,
        lock_generation: None,
        checks_client_connection: std::sync::OnceLock::new(),
        server_major,
        holds_lock: std::sync::atomic::AtomicBool::new(false),
        connection: Some(connection),
        positions_in_bytes,
        _cancel: cancel,
    })
}

/// What to do about a failed connection, when the failure says: where the password came
/// from (or that none was found), and `migrate database create` for a missing database.
fn advice(target: &ConnInfo, e: &tokio_postgres::Error) -> String {
    let code = e.code();
    let auth = refused_login(code, &chain(e));
    let mut notes = Vec::new();
    if auth {
        notes.push(target.password_source().describe());
        notes.extend(target.notes().iter().cloned());
    } else if code == Some(&SqlState::INVALID_CATALOG_NAME) {
        notes.push(format!(
            "create it with `migrate database create` (database \"{}\")",
            target.dbname()
        ));
    } else if matches!(target.password_source(), PasswordSource::Missing { .. }) {
        notes.extend(target.notes().iter().cloned());
    }
    notes.iter().map(|n| format!("; {n}")).collect()
}

/// The server or a pooler refused the login: PostgreSQL's SQLSTATE 28P01 or 28000,
/// tokio-postgres's "password missing", or PgBouncer's refusal, which comes as a protocol
/// violation (08P01) in PostgreSQL's words ("password authentication failed", "SASL
/// authentication failed"; PgBouncer's `src/client.c`).
fn refused_login(code: Option<&SqlState>, message: &str) -> bool {
    code == Some(&SqlState::INVALID_PASSWORD)
        || code == Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION)
        || message.contains("password missing")
        || (code == Some(&SqlState::PROTOCOL_VIOLATION)
            && [
                "password authentication failed",
                "SASL authentication failed",
            ]
            .iter()
            .any(|words| message.contains(words)))
}

/// The whole chain of an error on one line: tokio-postgres hides causes behind "db error".
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    if let Some(db) = e
        .downcast_ref::<tokio_postgres::Error>()
        .and_then(|e| e.as_db_error())
    {
        return describe_db_error(db);
    }
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// `ERROR: message (SQLSTATE x)`, with the detail and hint PostgreSQL gives.
pub fn describe_db_error(db: &tokio_postgres::error::DbError) -> String {
    let mut text = format!(
        "{}: {} (SQLSTATE {})",
        db.severity(),
        db.message(),
        db.code().code()
    );
    if let Some(detail) = db.detail() {
        text.push_str(&format!("; detail: {detail}"));
    }
    if let Some(hint) = db.hint() {
        text.push_str(&format!("; hint: {hint}"));
    }
    if let Some(r#where) = db.where_() {
        text.push_str(&format!("; where: {}", r#where.replace('\n', " / ")));
    }
    text
}

/// Quotes an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PgBouncer refuses a wrong password as a protocol violation (08P01), not 28P01: still a
    /// refused login, whose error says where the password came from (attacker finding: only
    /// the direct refusal said it). Another protocol violation is not.
    #[test]
    fn a_refused_login_is_told_by_postgresql_and_pgbouncer_alike() {
        let pgbouncer = Some(&SqlState::PROTOCOL_VIOLATION);
        assert!(refused_login(
            Some(&SqlState::INVALID_PASSWORD),
            "FATAL: password authentication failed for user \"app\""
        ));
        assert!(refused_login(
            None,
            "invalid configuration: password missing"
        ));
        assert!(refused_login(
            pgbouncer,
            "FATAL: password authentication failed (SQLSTATE 08P01)"
        ));
        assert!(refused_login(
            pgbouncer,
            "FATAL: SASL authentication failed (SQLSTATE 08P01)"
        ));
        assert!(!refused_login(
            pgbouncer,
            "FATAL: bad client state: 0 (SQLSTATE 08P01)"
        ));
    }
}
