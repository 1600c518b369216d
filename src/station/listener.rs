//! The OCPP listeners (plain `ws://` and TLS `wss://`): actix-server accepts
//! on its workers; each connection gets its TLS handshake (bounded in
//! time), its request head read, the admission decided in `endpoint`, and
//! then the answer written, or the station run on the socket (`socket`).
//!
//! These listeners speak only the WebSocket handshake, not general HTTP:
//! a station's connection carries one request, and anything else gets an
//! answer and is closed. That is what lets an idle station cost a few KiB.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_http::ws::Codec;
use actix_rt::net::TcpStream;
use actix_server::Server;
use actix_service::fn_service;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;

use super::actor::Engine;
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
    /// Longest wait for connections to end at a graceful stop, in seconds.
    pub shutdown_secs: u64,
}

/// What every connection of a listener shares.
#[derive(Clone)]
struct Shared {
    engine: Arc<Engine>,
    gate: Arc<Gate>,
    tls: Option<TlsAcceptor>,
    head_timeout: Duration,
    tls_timeout: Duration,
}

/// Binds an OCPP listener on `addr`, TLS with `tls`; returns the running
/// server and the address it is bound to.
pub fn serve(
    addr: SocketAddr,
    settings: &ListenerSettings,
    engine: Arc<Engine>,
    gate: Arc<Gate>,
    tls: Option<rustls::ServerConfig>,
) -> std::io::Result<(Server, SocketAddr)> {
    let listener = bind(addr, settings.backlog)?;
    let bound = listener.local_addr()?;
    let shared = Shared {
        engine,
        gate,
        tls: tls.map(|config| TlsAcceptor::from(Arc::new(config))),
        head_timeout: settings.head_timeout,
        tls_timeout: settings.tls_timeout,
    };
    let mut builder = Server::build()
        .backlog(settings.backlog)
        // `main` handles SIGINT/SIGTERM and drains everything in order.
        .disable_signals()
        .shutdown_timeout(settings.shutdown_secs);
    if let Some(workers) = settings.workers {
        builder = builder.workers(workers.max(1));
    }
    let server = builder
        .listen("ocpp", listener, move || {
            let shared = shared.clone();
            fn_service(move |tcp: TcpStream| {
                let shared = shared.clone();
                async move {
                    connection(tcp, shared).await;
                    Ok::<_, Infallible>(())
                }
            })
        })?
        .run();
    Ok((server, bound))
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

async fn connection(tcp: TcpStream, shared: Shared) {
    let peer = tcp.peer_addr().ok();
    // OCPP messages are small and answered one by one: no Nagle delay.
    let _ = tcp.set_nodelay(true);
    match shared.tls.clone() {
        None => handshake(tcp, Origin { peer, tls: None }, &shared).await,
        // Boxed: a TLS connection's state is several KiB larger, and a
        // plain connection's task would otherwise carry that room too.
        Some(acceptor) => Box::pin(tls_connection(tcp, peer, acceptor, &shared)).await,
    }
}

async fn tls_connection(
    tcp: TcpStream,
    peer: Option<SocketAddr>,
    acceptor: TlsAcceptor,
    shared: &Shared,
) {
    // Boxed, as the handshake's other steps below: a future's state is as
    // large as its largest step, and it lives as long as the connection.
    let accept = Box::pin(acceptor.accept(tcp));
    match tokio::time::timeout(shared.tls_timeout, accept).await {
        Ok(Ok(stream)) => {
            let session = TlsSession::of(stream.get_ref().1);
            let origin = Origin {
                peer,
                tls: Some(&session),
            };
            handshake(stream, origin, shared).await;
        }
        Ok(Err(e)) => tracing::debug!(peer = ?peer, error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!(peer = ?peer, "TLS handshake not finished in time"),
    }
}

/// Reads the request head, decides, answers, and runs what was admitted.
async fn handshake<IO>(mut io: IO, origin: Origin<'_>, shared: &Shared)
where
    IO: AsyncRead + AsyncWrite + Unpin + 'static,
{
    // The head's read and the admission run boxed, so the connection's
    // long-lived state (the task's future) is only what the socket needs:
    // inline, they made every station's task 20 KiB.
    let (head, early) = match Box::pin(http_head::read(&mut io, shared.head_timeout)).await {
        Ok(read) => read,
        Err(e) => {
            if let Some(answer) = e.answer() {
                refuse(io, answer).await;
            }
            return;
        }
    };
    let admission = Box::pin(endpoint::admit(&head, origin, &shared.engine, &shared.gate)).await;
    drop(head);
    let codec = Codec::new().max_size(shared.engine.max_frame_bytes);
    match admission {
        Admission::Refused(answer) => refuse(io, answer).await,
        Admission::Station(answer, actor) => {
            if io.write_all(&answer.to_bytes()).await.is_ok() {
                Box::pin(socket::run(io, early, *actor, codec)).await;
            }
        }
        Admission::NoProtocol(answer, actor) => {
            if io.write_all(&answer.to_bytes()).await.is_ok() {
                Box::pin(socket::run(io, early, actor, codec)).await;
            }
        }
    }
}

/// Writes `answer` and closes.
async fn refuse<IO: AsyncWrite + Unpin>(mut io: IO, answer: Answer) {
    let _ = io.write_all(&answer.to_bytes()).await;
    let _ = io.shutdown().await;
}

#[cfg(test)]
mod tests {
    use actix_web::web::Bytes;

    use super::super::actor::StationActor;
    use super::*;

    /// The size of the future `f` returns, without calling it.
    fn future_size<A, B, F: std::future::Future>(_: impl FnOnce(A, B) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    fn run_size<F: std::future::Future>(
        _: impl FnOnce(TcpStream, Bytes, StationActor, Codec) -> F,
    ) -> usize {
        std::mem::size_of::<F>()
    }

    #[test]
    fn a_connected_station_costs_its_tasks_little() {
        // A connected station holds its connection task and the boxed
        // socket pump for as long as it is connected: their sizes are
        // memory per station. Inline, the handshake's steps once made the
        // task 20 KiB.
        let task = future_size(connection);
        let pump = run_size(socket::run::<StationActor, TcpStream>);
        assert!(task <= 2048, "connection task of {task} bytes");
        assert!(pump <= 3072, "socket pump of {pump} bytes");
    }
}
