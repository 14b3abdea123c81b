//! Cancel requests sent the way libpq's `PQcancel` sends them: on a new connection to the
//! server (or pooler) the session is connected to, then waiting until the other side closes
//! that connection, which is how it says the request was handled.
//!
//! tokio-postgres closes its cancel connection as soon as the request is written. PostgreSQL
//! does not mind, but PgBouncer 1.18 (Debian 12's) exits with `FATAL ... disconnect_client():
//! bad client state: 0` when a cancel client goes away before PgBouncer has forwarded the
//! request (pgbouncer/pgbouncer#801, fixed in 1.19 by #846): a Ctrl-C of `migrate up` through
//! the pooler took the pooler down for every application behind it.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_postgres::config::Host;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{CancelToken, Config};
use tokio_postgres_rustls::MakeRustlsConnect;

/// How long connecting for a cancel request may take. Once the request is sent, its
/// connection stays open until the other side closes it, however long that takes (a stalled
/// server; the forced exit 10 s after a signal bounds it): closing it first is what takes
/// PgBouncer 1.18 down (attacker finding: a server stalled for 6 s outlasted a 5 s limit on
/// the whole request, and the pooler died).
const CANCEL_TIMEOUT: Duration = Duration::from_secs(5);

/// Cancel requests sent and not yet answered (the other side has not closed the connection).
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Counts a cancel request out of `IN_FLIGHT` when it ends, however it ends.
struct InFlight;

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Set when the process is about to exit: no cancel request starts after it.
static EXITING: AtomicBool = AtomicBool::new(false);

/// Before the process exits at once: starts no more cancel requests, then waits, at most
/// `limit`, until none is in flight. Call it on a thread other than the runtime's (which
/// answers them): a process that exits while one is open closes it first, which takes
/// PgBouncer 1.18 down (see the module's note; attacker finding: a second signal through the
/// pooler did).
pub fn finish_in_flight(limit: Duration) {
    EXITING.store(true, Ordering::SeqCst);
    let started = std::time::Instant::now();
    while IN_FLIGHT.load(Ordering::SeqCst) > 0 && started.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Asks the server to cancel the statement the session of `token` is running. Best effort,
/// as `PQcancel`: the statement may have finished already, and errors are not reported. With
/// several hosts, the request goes to the first one that accepts it (the one the session
/// most likely reached: sessions connect to the first host that answers).
pub async fn send(token: &CancelToken, config: &Config, tls: &MakeRustlsConnect) {
    IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
    let _done = InFlight;
    // Counted first, then checked: either the exit waits for this request, or it is not sent.
    if EXITING.load(Ordering::SeqCst) {
        return;
    }
    let hosts = config.get_hosts();
    let ports = config.get_ports();
    let addrs = config.get_hostaddrs();
    for (i, host) in hosts.iter().enumerate() {
        // libpq: one port for all hosts, or one per host.
        let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
        let sent = match host {
            Host::Tcp(name) => {
                let connect = async {
                    match addrs.get(i) {
                        Some(addr) => TcpStream::connect((*addr, port)).await,
                        None => TcpStream::connect((name.as_str(), port)).await,
                    }
                };
                match tokio::time::timeout(CANCEL_TIMEOUT, connect).await {
                    Ok(Ok(stream)) => over(token, stream, name, tls).await,
                    _ => false,
                }
            }
            Host::Unix(dir) => {
                let path = dir.join(format!(".s.PGSQL.{port}"));
                match tokio::time::timeout(CANCEL_TIMEOUT, UnixStream::connect(path)).await {
                    Ok(Ok(stream)) => over(token, stream, "", tls).await,
                    _ => false,
                }
            }
        };
        if sent {
            return;
        }
    }
}

/// Sends the request on `stream`, with TLS when the session's `sslmode` asked for it.
async fn over<S>(token: &CancelToken, stream: S, host: &str, tls: &MakeRustlsConnect) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut tls = tls.clone();
    // The rustls connector's error type is `Infallible`.
    let connect = match MakeTlsConnect::<WaitForClose<S>>::make_tls_connect(&mut tls, host) {
        Ok(connect) => connect,
        Err(never) => match never {},
    };
    token
        .cancel_query_raw(WaitForClose(stream), connect)
        .await
        .is_ok()
}

/// A stream whose shutdown does not half-close it but reads until the peer closes it: what
/// `PQcancel` does after writing the request. tokio-postgres shuts its cancel stream down
/// once the request is written and returns; with this, it returns once the request was handled.
struct WaitForClose<S>(S);

impl<S: AsyncRead + Unpin> AsyncRead for WaitForClose<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WaitForClose<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut scratch = [0u8; 256];
        loop {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.0).poll_read(cx, &mut buf) {
                // End of stream: the other side closed, the request was handled.
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                // Servers send nothing back; a TLS close_notify or an error is skipped.
                Poll::Ready(Ok(())) => continue,
                // A reset is a close too.
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
