//! What a session carries besides its client: the server's notices (WARNING, NOTICE) as they
//! arrive, and the way to cancel its running statement when the process is told to stop.
//!
//! tokio-postgres hands notices to whoever polls the connection; `drive` polls it on a task of
//! its own and keeps them in a per-session queue. Every open session registers a cancel
//! request here, so a SIGINT or SIGTERM can cancel whatever statement is running server-side
//! (libpq's `PQcancel`) instead of leaving it to run, and holding locks, after we exit.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::{AsyncMessage, Connection};

/// A message the server sent outside a query's result: `RAISE WARNING`, `RAISE NOTICE`, ...
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServerMessage {
    /// PostgreSQL's severity: WARNING, NOTICE, INFO, LOG or DEBUG.
    pub severity: String,
    pub message: String,
}

impl std::fmt::Display for ServerMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.severity, self.message)
    }
}

/// The notices of one session, in the order the server sent them.
///
/// While `hold(true)`, the task that polls the connection stops after handing over each
/// notice until the notice is taken with `next_held` and its `Held` is dropped: every
/// request whose answer came before the notice has its answer by then, and none after it
/// has. That is how a reader with several requests in flight tells which one a notice
/// belongs to (`engine::chain`). Held only while somebody reads the notices: a held notice
/// nobody takes would stop the session.
pub struct Notices {
    queue: mpsc::UnboundedReceiver<(ServerMessage, Option<oneshot::Sender<()>>)>,
    holding: watch::Sender<bool>,
}

/// A notice taken with `Notices::next_held`: the connection stays stopped until it is dropped.
pub struct Held(#[allow(dead_code)] Option<oneshot::Sender<()>>);

impl Notices {
    /// Waits for the next notice; pending while the session is open and quiet.
    pub async fn next(&mut self) -> Option<ServerMessage> {
        self.queue.recv().await.map(|(m, _)| m)
    }

    /// `next`, with the connection kept stopped (under `hold(true)`) until `Held` is dropped.
    pub async fn next_held(&mut self) -> Option<(ServerMessage, Held)> {
        self.queue.recv().await.map(|(m, resume)| (m, Held(resume)))
    }

    /// Every notice that has arrived and not been taken yet.
    pub fn drain(&mut self) -> Vec<ServerMessage> {
        let mut out = Vec::new();
        while let Ok((m, _)) = self.queue.try_recv() {
            out.push(m);
        }
        out
    }

    /// Whether the connection stops after each notice until the notice is taken (see above);
    /// turning it off lets a stopped connection go on at once.
    pub fn hold(&self, on: bool) {
        self.holding.send_replace(on);
    }
}

/// The reason the server gave when it closed a session (e.g. `pg_terminate_backend`), if any.
pub type CloseReason = Arc<Mutex<Option<String>>>;

/// How often the server checks, while it runs a statement of a migration, that `migrate` is
/// still connected (PostgreSQL's `client_connection_check_interval`, 14 and later). A
/// `migrate` killed with SIGKILL, or gone 10 s after a signal, leaves no statement running on
/// the server, and no lock held, for longer than about this; without it the server notices
/// only when the statement ends and it answers.
pub const CLIENT_CONNECTION_CHECK_INTERVAL: &str = "1s";

/// Whether the server accepts `client_connection_check_interval` =
/// `CLIENT_CONNECTION_CHECK_INTERVAL`: PostgreSQL 14 or later (the session's `server_major`),
/// on a platform that can tell a closed socket (Linux; elsewhere it accepts only 0). Asked
/// with a `set_config` in a statement of its own, which never fails the command: for the rest
/// of the session when `for_session` (a session this run holds, before it waits for the
/// session-level lock: the wait, and a seed's or a repair's statements, are then checked
/// too), else transaction-local, which changes nothing (through a transaction pooler
/// neither). The answer is kept in `Session::checks_client_connection`; a server that refused
/// is not asked again.
pub async fn check_client_connection(session: &super::Session, for_session: bool) -> bool {
    let known = session.checks_client_connection.get().copied();
    if known == Some(false) || (known == Some(true) && !for_session) {
        return known == Some(true);
    }
    let accepted = session.server_major.is_some_and(|major| major >= 14)
        && session
            .client
            .batch_execute(&format!(
                "SELECT pg_catalog.set_config('client_connection_check_interval', \
                 '{CLIENT_CONNECTION_CHECK_INTERVAL}', {})",
                !for_session
            ))
            .await
            .is_ok();
    let _ = session.checks_client_connection.set(accepted);
    accepted
}

/// The major version of a `server_version` such as `15.20 (Debian 15.20-0+deb12u1)` or
/// `9.6.24` (major 9: releases before 10 had two-part majors, none of them 14 or later).
pub fn major_version(server_version: &str) -> Option<u32> {
    let digits: String = server_version
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Polls `connection` on its own task until it closes, queueing its notices; returns them
/// and a slot that holds the server's last word if it closed the session with an error.
/// The task that drives the connection: it ends once the client is gone and the connection
/// has said goodbye (see `Session`'s `Drop`).
pub fn drive<S, T>(
    connection: Connection<S, T>,
) -> (Notices, CloseReason, tokio::task::JoinHandle<()>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let (holding, held) = watch::channel(false);
    let reason: CloseReason = Arc::default();
    let slot = reason.clone();
    let mut connection = connection;
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    let task = tokio::spawn(async move {
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notice(notice)) => {
                    // WARNING always; NOTICE and INFO with --verbose; DEBUG and LOG never.
                    let shown = match notice.severity() {
                        "WARNING" => true,
                        "NOTICE" | "INFO" => super::verbose(),
                        _ => false,
                    };
                    if !shown {
                        continue;
                    }
                    let message = ServerMessage {
                        severity: notice.severity().to_string(),
                        message: notice.message().to_string(),
                    };
                    if !*held.borrow() {
                        let _ = tx.send((message, None));
                        continue;
                    }
                    let (resume, resumed) = oneshot::channel();
                    if tx.send((message, Some(resume))).is_err() {
                        continue;
                    }
                    let mut released = held.clone();
                    tokio::select! {
                        _ = resumed => {}
                        _ = released.wait_for(|on| !on) => {}
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let text = match e.as_db_error() {
                        Some(db) => super::describe_db_error(db),
                        None => super::chain(&e),
                    };
                    *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(text);
                    break;
                }
            }
        }
    });
    (Notices { queue: rx, holding }, reason, task)
}

/// The connections of sessions that were dropped holding the migration lock, with its
/// release queued (see `Session`'s `Drop`): `close` waits for them.
static CLOSING: Mutex<Vec<tokio::task::JoinHandle<()>>> = Mutex::new(Vec::new());

/// Keeps `connection` until `close`: it carries a session's last words.
pub(crate) fn closing(connection: tokio::task::JoinHandle<()>) {
    CLOSING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(connection);
}

/// How long `close` waits for the server to answer a session's last words.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Before the process exits: waits, at most `CLOSE_WAIT`, for the connections `closing`
/// kept to have sent what was queued on them (the lock's release) and said goodbye. The
/// runtime drops unfinished tasks when it ends, and what they had not sent with them.
pub async fn close() {
    let connections: Vec<_> =
        std::mem::take(&mut *CLOSING.lock().unwrap_or_else(|e| e.into_inner()));
    let _ = tokio::time::timeout(CLOSE_WAIT, futures_util::future::join_all(connections)).await;
}

type CancelFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
type Canceller = Box<dyn Fn() -> CancelFuture + Send + Sync>;

static CANCELLERS: Mutex<Vec<(u64, Arc<Canceller>)>> = Mutex::new(Vec::new());
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Registration of a session's cancel request; unregistered when dropped.
pub struct CancelRegistration(u64);

impl CancelRegistration {
    /// No registration: a session whose statements an interrupt must not cancel.
    pub fn none() -> CancelRegistration {
        CancelRegistration(u64::MAX)
    }
}

impl Drop for CancelRegistration {
    fn drop(&mut self) {
        let mut all = CANCELLERS.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|(id, _)| *id != self.0);
    }
}

/// Registers how to cancel a session's running statement (a cancel request on a new
/// connection, over TLS when the session uses it).
pub fn register_cancel(
    cancel: impl Fn() -> CancelFuture + Send + Sync + 'static,
) -> CancelRegistration {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let mut all = CANCELLERS.lock().unwrap_or_else(|e| e.into_inner());
    all.push((id, Arc::new(Box::new(cancel))));
    CancelRegistration(id)
}

/// The signal that interrupted this process (SIGHUP 1, SIGINT 2, SIGTERM 15), or 0.
static INTERRUPTED: AtomicI32 = AtomicI32::new(0);

/// Woken when a signal interrupts the process (see `interruption`).
static INTERRUPT: std::sync::OnceLock<tokio::sync::Notify> = std::sync::OnceLock::new();

fn interrupt() -> &'static tokio::sync::Notify {
    INTERRUPT.get_or_init(tokio::sync::Notify::new)
}

/// Resolves with the signal's number once the process is interrupted (at once if it was).
pub async fn interruption() -> i32 {
    loop {
        let notified = interrupt().notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(signal) = interrupted() {
            return signal;
        }
        notified.await;
    }
}

/// Runs `work`, which writes nothing, and ends it at once on a signal with "interrupted by
/// SIGINT{said}" (`Error::refused`; the exit status is 128 + the signal all the same), `said`
/// saying what was going on and that nothing was done. For what may wait in a pooler's queue
/// (every server connection taken): the pooler has no server connection to pass a cancel
/// request on to, so waiting for the cancel to end it would sit out the 10 s limit.
pub async fn before_writing<T>(
    said: impl FnOnce() -> String,
    work: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::select! {
        biased;
        done = work => done,
        signal = interruption() => Err(crate::error::Error::refused(format!(
            "interrupted by {}{}",
            signal_name(signal),
            said()
        ))
        .into()),
    }
}

/// `result` of migrate reading or setting up its own state (`_migrate`) before any migration
/// or seed of the command started: an error a signal caused (its cancel request ended the
/// statement, which rolled back) says so, where the server's bare "canceling statement due to
/// user request" said nothing of what became of the run (attacker finding). An error that
/// names the signal already is left as it is.
pub fn before_any_migration<T>(result: anyhow::Result<T>) -> anyhow::Result<T> {
    match (result, interrupted()) {
        (Err(e), Some(signal)) if !format!("{e:#}").contains("interrupted by") => {
            Err(e.context(format!(
                "interrupted by {} while migrate read or set up its own state (_migrate), \
                 before any migration or seed started",
                signal_name(signal)
            )))
        }
        (result, _) => result,
    }
}

/// The first signal, as the signal handler itself records it: seen even while the runtime's
/// thread is blocked (the confirmation prompt), before the task of `watch_signals` runs.
static RAISED: AtomicI32 = AtomicI32::new(0);

/// The signal number that interrupted the run, if one did.
pub fn interrupted() -> Option<i32> {
    match INTERRUPTED.load(Ordering::SeqCst) {
        0 => match RAISED.load(Ordering::SeqCst) {
            0 => None,
            signal => Some(signal),
        },
        signal => Some(signal),
    }
}

/// The signal's name, for messages and the history's note.
pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// Listens for SIGINT, SIGTERM and SIGHUP (the terminal closed, an SSH session dropped: by
/// default it would end the process at once and leave the server running the migration) for
/// the rest of the process. The first one is recorded and
/// every open session's running statement is cancelled server-side, so the command winds
/// down through its normal error path: a transaction rolls back, a `transaction: none`
/// migration stays dirty, the interruption is written to the history, the lock is released.
/// If the command has not ended 10 seconds later, or a second signal comes, the process
/// exits at once with 128 + the signal number, as shells expect.
pub fn watch_signals() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return;
    };
    for number in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the action only touches atomics, which is async-signal-safe; tokio's own
        // action on the signal stays registered beside it.
        let _ = unsafe {
            signal_hook_registry::register(number, move || {
                let _ = RAISED.compare_exchange(0, number, Ordering::SeqCst, Ordering::SeqCst);
                if DELIVERED.fetch_add(1, Ordering::SeqCst) > 0 {
                    LATER.store(number, Ordering::SeqCst);
                }
            })
        };
    }
    tokio::spawn(async move {
        let mut first = true;
        loop {
            // Which stream is read first is tokio's choice when two signals are pending: the
            // first one delivered is `RAISED`'s.
            let number = tokio::select! {
                _ = int.recv() => libc::SIGINT,
                _ = term.recv() => libc::SIGTERM,
                _ = hup.recv() => libc::SIGHUP,
            };
            if !first {
                second_signal(LATER.load(Ordering::SeqCst), number);
                continue;
            }
            first = false;
            let interrupting = match RAISED.load(Ordering::SeqCst) {
                0 => number,
                raised => raised,
            };
            INTERRUPTED.store(interrupting, Ordering::SeqCst);
            interrupt().notify_waiters();
            let cancelling = tokio::spawn(cancel_all());
            *CANCELLING.lock().unwrap_or_else(|e| e.into_inner()) = Some(cancelling);
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_secs(10));
                exit_now(interrupting, "the run had not wound down 10 s after it");
            });
            // A second signal delivered before this task read the first: tokio's stream
            // merges the two (a double Ctrl-C, a runner signalling the group and the process).
            if DELIVERED.load(Ordering::SeqCst) > 1 {
                second_signal(LATER.load(Ordering::SeqCst), number);
            }
        }
    });
}

/// Signals delivered to the process (SIGINT, SIGTERM, SIGHUP), counted by the signal action.
static DELIVERED: AtomicUsize = AtomicUsize::new(0);

/// The latest signal delivered after the first, or 0.
static LATER: AtomicI32 = AtomicI32::new(0);

/// A second signal (`later`, else `read`): the process exits at once, on a thread of its
/// own, so the runtime goes on answering the cancel requests `exit_now` waits for. The exit
/// status and name stay those of the signal that interrupted the run.
fn second_signal(later: i32, read: i32) {
    let second = if later == 0 { read } else { later };
    let interrupting = interrupted().unwrap_or(second);
    std::thread::spawn(move || {
        exit_now(
            interrupting,
            &format!("a second signal, {}, came", signal_name(second)),
        )
    });
}

/// Set by the CLI for `--json`: a forced exit still prints its one JSON document.
pub static JSON_OUTPUT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A migration this run saw committed: its version, name and direction ("up", "down").
type Committed = (i64, String, &'static str);

/// The migrations this run has seen committed, in order, for a forced exit's report.
static COMMITTED: Mutex<Vec<Committed>> = Mutex::new(Vec::new());

/// Records that the migration `version` `name` committed in `direction`: a forced exit
/// (`exit_now`) lists it as done, where it could only have said that whatever was running
/// "may still be rolling back" (attacker finding: committed migrations went unreported).
pub fn committed(version: i64, name: &str, direction: &'static str) {
    COMMITTED.lock().unwrap_or_else(|e| e.into_inner()).push((
        version,
        name.to_string(),
        direction,
    ));
}

/// Exits at once with 128 + `signal`, saying so (and, with --json, as a JSON document): the
/// migrations this run saw committed (`committed`) are listed as done; the server may still
/// be finishing or rolling back what was running after them.
fn exit_now(signal: i32, why: &str) -> ! {
    use std::io::Write;
    // One exit: a second thread that gets here waits for the first one's.
    static ONE_EXIT: Mutex<()> = Mutex::new(());
    let _exiting = ONE_EXIT.lock().unwrap_or_else(|e| e.into_inner());
    super::cancel::finish_in_flight(std::time::Duration::from_secs(3));
    let done = COMMITTED.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let listed = match done.is_empty() {
        true => String::new(),
        false => format!(
            "; committed before it: {}",
            done.iter()
                .map(|(v, name, direction)| format!("{v:04} {name} ({direction})"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let message = format!(
        "interrupted by {} and exiting without waiting ({why}){listed}; whatever was running \
         {}may still be rolling back or finishing on the server; run `migrate status` to see \
         what took effect",
        signal_name(signal),
        if done.is_empty() { "" } else { "after them " },
    );
    if JSON_OUTPUT.load(Ordering::Relaxed) {
        let steps: Vec<_> = done
            .iter()
            .map(|(v, name, direction)| {
                serde_json::json!({ "version": v, "name": name, "direction": direction })
            })
            .collect();
        let doc = serde_json::json!({
            "ok": false,
            "exit_code": 128 + signal,
            "error": message,
            "committed": steps,
        });
        let _ = writeln!(std::io::stdout(), "{doc}");
    }
    let _ = writeln!(std::io::stderr(), "error: {message}");
    std::process::exit(128 + signal);
}

/// The cancel requests a signal sent, while they wait for the server (or pooler) to close
/// their connections.
static CANCELLING: Mutex<Option<tokio::task::JoinHandle<()>>> = Mutex::new(None);

/// Waits until the cancel requests a signal sent have been handled (each gives up after a
/// few seconds). The command's statement fails as soon as the server cancels it, often before
/// the pooler has closed the cancel connection; a process that exited then would close it
/// first, which is what crashes PgBouncer 1.18 (see `db::cancel`).
pub async fn settle() {
    let cancelling = CANCELLING.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(cancelling) = cancelling {
        let _ = cancelling.await;
    }
}

/// Sends a cancel request for every open session's running statement.
pub async fn cancel_all() {
    let cancellers: Vec<Arc<Canceller>> = CANCELLERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(_, c)| c.clone())
        .collect();
    futures_util::future::join_all(cancellers.iter().map(|c| c())).await;
}

#[cfg(test)]
mod tests {
    use super::major_version;

    /// `server_version` as servers report it: Debian's and EnterpriseDB's suffixes, a beta,
    /// a two-part major of before 10.
    #[test]
    fn the_major_version_is_the_leading_number() {
        assert_eq!(major_version("15.20 (Debian 15.20-0+deb12u1)"), Some(15));
        assert_eq!(major_version("14.1"), Some(14));
        assert_eq!(major_version("17beta2"), Some(17));
        assert_eq!(major_version("9.6.24"), Some(9));
        assert_eq!(major_version("unknown"), None);
    }
}
