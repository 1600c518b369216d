//! The OCPP listeners (plain `ws://` and TLS `wss://`): the workers accept
//! (`acceptor`); each connection gets its TLS handshake (bounded in
//! time), its request head read, the admission decided in `endpoint`, and
//! then the answer written, or the station run on the socket (`socket`).
//!
//! These listeners speak only the WebSocket handshake, not general HTTP:
//! a station's connection carries one request, and anything else gets an
//! answer and is closed. That is what lets an idle station cost a few KiB.

use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix_http::ws::Codec;
use actix_web::web::Bytes;
use futures_util::future::Either;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use super::acceptor::Acceptor;
use super::actor::{Engine, NoProtocol, StationActor};
use super::endpoint::{self, Admission, Origin};
use super::gate::Gate;
use super::socket;
use crate::transport::http_head::{self, Answer};
use crate::transport::tls::TlsSession;

/// How an OCPP listener runs.
pub struct ListenerSettings {
    /// Pending connections the kernel may queue. A fleet reconnecting
    /// together (after an outage or a restart) fills the queue at once; a
    /// short one sends stations into SYN retries of 1 s, 3 s, 7 s. The
    /// kernel caps it at net.core.somaxconn.
    pub backlog: u32,
    /// Longest a client may take to send its request head.
    pub head_timeout: Duration,
    /// Longest a client may take over its TLS handshake.
    pub tls_timeout: Duration,
    /// Worker threads (None: one per core).
    pub workers: Option<usize>,
}

/// What every connection on one worker shares.
struct Shared {
    engine: Arc<Engine>,
    gate: Arc<Gate>,
    tls: Option<TlsAcceptor>,
    /// TLS handshakes this worker runs at once; the others wait for a place
    /// before their time starts (a wss storm would otherwise compute
    /// thousands of server flights that time out before they are sent).
    tls_handshakes: Semaphore,
    head_timeout: Duration,
    tls_timeout: Duration,
}

/// TLS handshakes in progress per worker (actix-tls's figure).
const TLS_HANDSHAKES_PER_WORKER: usize = 256;

/// Binds an OCPP listener on `addr`, TLS with `tls`; returns its running
/// workers and the address it is bound to.
pub fn serve(
    addr: SocketAddr,
    settings: &ListenerSettings,
    engine: Arc<Engine>,
    gate: Arc<Gate>,
    tls: Option<rustls::ServerConfig>,
) -> std::io::Result<(Acceptor, SocketAddr)> {
    let listener = bind(addr, settings.backlog)?;
    let bound = listener.local_addr()?;
    let tls = tls.map(|config| TlsAcceptor::from(Arc::new(config)));
    let (head_timeout, tls_timeout) = (settings.head_timeout, settings.tls_timeout);
    let workers = settings.workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let acceptor = Acceptor::start(listener, workers, move || {
        // Called once per worker: each gets its own handshake places.
        let shared = Rc::new(Shared {
            engine: engine.clone(),
            gate: gate.clone(),
            tls: tls.clone(),
            tls_handshakes: Semaphore::new(TLS_HANDSHAKES_PER_WORKER),
            head_timeout,
            tls_timeout,
        });
        move |tcp: TcpStream, peer: SocketAddr| connection(tcp, peer, shared.clone())
    })?;
    Ok((acceptor, bound))
}

/// A listening socket with room for `backlog` pending connections.
fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}

async fn connection(tcp: TcpStream, peer: SocketAddr, shared: Rc<Shared>) {
    let peer = Some(peer);
    // OCPP messages are small and answered one by one: no Nagle delay.
    let _ = tcp.set_nodelay(true);
    let Some(acceptor) = shared.tls.clone() else {
        // A task's future is as large as its largest step and lives as long
        // as the connection: every step runs boxed, so that a station keeps
        // its socket's state once, in its own allocation.
        let origin = Origin { peer, tls: None };
        let upgraded = Box::pin(handshake(tcp, origin, &shared)).await;
        return Box::pin(Upgraded::run(upgraded)).await;
    };
    // Boxed: a TLS connection's state is larger, and a plain connection's
    // task would otherwise carry that room too.
    Box::pin(tls_connection(tcp, peer, acceptor, &shared)).await
}

async fn tls_connection(
    tcp: TcpStream,
    peer: Option<SocketAddr>,
    acceptor: TlsAcceptor,
    shared: &Shared,
) {
    let Ok(place) = shared.tls_handshakes.acquire().await else {
        return;
    };
    let accept = Box::pin(acceptor.accept(tcp));
    let stream = match tokio::time::timeout(shared.tls_timeout, accept).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return tracing::debug!(peer = ?peer, error = %e, "TLS handshake failed"),
        Err(_) => return tracing::debug!(peer = ?peer, "TLS handshake not finished in time"),
    };
    drop(place);
    let session = TlsSession::of(stream.get_ref().1);
    let origin = Origin {
        peer,
        tls: Some(&session),
    };
    let upgraded = Box::pin(handshake(stream, origin, shared)).await;
    Box::pin(Upgraded::run(upgraded)).await;
}

/// Reads the request head, decides, and answers: the socket upgraded, with
/// what is to run on it, or None once the refusal is written.
async fn handshake<IO>(mut io: IO, origin: Origin<'_>, shared: &Shared) -> Option<Upgraded<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let (head, early) = match http_head::read(&mut io, shared.head_timeout).await {
        Ok(read) => read,
        Err(e) => {
            if let Some(answer) = e.answer() {
                refuse(io, answer).await;
            }
            return None;
        }
    };
    let admission = endpoint::admit(&head, origin, &shared.engine, &shared.gate).await;
    let (answer, station) = match admission {
        Admission::Refused(answer) => {
            refuse(io, answer).await;
            return None;
        }
        Admission::Station(answer, actor) => (answer, Some(*actor)),
        Admission::NoProtocol(answer) => (answer, None),
    };
    io.write_all(&answer.to_bytes()).await.ok()?;
    Some(Upgraded {
        io,
        early,
        codec: Codec::new().max_size(shared.engine.max_frame_bytes),
        write_timeout: shared.engine.idle_timeout,
        station,
    })
}

/// A socket whose handshake has completed, and what runs on it.
struct Upgraded<IO> {
    io: IO,
    /// What the client sent behind its request head.
    early: Bytes,
    codec: Codec,
    /// Longest a write may wait for the station to take it.
    write_timeout: Duration,
    /// The station's actor; None when no subprotocol was agreed, and the
    /// socket is closed at once.
    station: Option<StationActor>,
}

impl<IO: AsyncRead + AsyncWrite + Unpin + 'static> Upgraded<IO> {
    /// The socket's life from here; nothing after a refusal.
    fn run(upgraded: Option<Self>) -> impl Future<Output = ()> {
        let Some(upgraded) = upgraded else {
            return Either::Left(std::future::ready(()));
        };
        let (io, early, codec) = (upgraded.io, upgraded.early, upgraded.codec);
        let write_timeout = upgraded.write_timeout;
        Either::Right(match upgraded.station {
            Some(actor) => Either::Left(socket::run(io, early, actor, codec, write_timeout)),
            None => Either::Right(socket::run(io, early, NoProtocol, codec, write_timeout)),
        })
    }
}

/// Writes `answer` and closes.
async fn refuse<IO: AsyncRead + AsyncWrite + Unpin>(mut io: IO, answer: Answer) {
    if io.write_all(&answer.to_bytes()).await.is_ok() {
        // A client still sending (a head over the bound, frames behind a
        // refused handshake) would otherwise get a reset, not the answer.
        socket::linger(io).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future `f` returns, without calling it.
    fn future_size<A, B, C, F: std::future::Future>(_: impl FnOnce(A, B, C) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    #[test]
    fn a_connected_station_costs_its_tasks_little() {
        // A connected station holds its connection task and its socket's
        // boxed state for as long as it is connected: their sizes are memory
        // per station. With the handshake
        // inline, the task was once 20 KiB.
        let task = future_size(connection);
        assert!(task <= 512, "connection task of {task} bytes");
        let socket = socket_size(Upgraded::<TcpStream>::run);
        assert!(socket <= 3072, "socket state of {socket} bytes");
    }

    fn socket_size<A, F>(_: impl FnOnce(A) -> F) -> usize {
        std::mem::size_of::<F>()
    }
}
