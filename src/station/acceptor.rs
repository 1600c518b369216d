//! The OCPP listeners' worker threads and their accept loops: each worker
//! accepts on a shared listening socket and runs what it accepted on its
//! own thread, until it is told to pause, drain and stop.
//!
//! Accepting on the workers themselves, not on one accept thread that
//! passes each connection over a channel (actix-server's way), saves a
//! thread hand-off and a wake-up per connection and the accept thread's own
//! polling: that thread was 6% of the server's CPU while 10,000 stations
//! connected and booted (benches/README, 2026-12-03). Every worker listens
//! on the same socket, so a busy worker leaves connections to an idle one
//! rather than to a queue of its own.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_rt::Arbiter;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Notify};

/// Longest pause after an accept error that is not about one connection
/// (out of file descriptors or memory): accepting at once would fail again
/// and spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Longest wait for the worker threads to end at a stop.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// Blocking-pool threads per worker runtime, as actix-server sets them
/// (512 shared by the workers).
const BLOCKING_THREADS: usize = 512;

/// Running accept loops and the connections they started.
pub struct Acceptor {
    workers: Vec<Arbiter>,
    /// False once the loops are told to stop accepting.
    accepting: watch::Sender<bool>,
    connections: Arc<Connections>,
    /// An accept loop that ended without being asked says why here.
    failed: Option<mpsc::UnboundedReceiver<io::Error>>,
}

/// Connections started and not yet ended, across the workers.
#[derive(Default)]
struct Connections {
    open: AtomicUsize,
    none_open: Notify,
}

/// Counts one connection as open until dropped.
struct Open(Arc<Connections>);

impl Open {
    fn new(connections: &Arc<Connections>) -> Self {
        connections.open.fetch_add(1, Ordering::Relaxed);
        Self(connections.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.none_open.notify_waiters();
        }
    }
}

impl Acceptor {
    /// Starts `workers` threads accepting on `listener`. `serve` runs once
    /// on each worker and returns what handles that worker's connections.
    pub fn start<S, H, F>(
        listener: std::net::TcpListener,
        workers: usize,
        serve: S,
    ) -> io::Result<Self>
    where
        S: Fn() -> H + Send + Clone + 'static,
        H: Fn(TcpStream, SocketAddr) -> F + 'static,
        F: Future<Output = ()> + 'static,
    {
        let workers = workers.max(1);
        listener.set_nonblocking(true)?;
        let (accepting, _) = watch::channel(true);
        let connections = Arc::new(Connections::default());
        let (failures, failed) = mpsc::unbounded_channel();
        let mut arbiters = Vec::with_capacity(workers);
        for _ in 0..workers {
            // Each worker registers its own copy of the socket with its own
            // event loop.
            let socket = listener.try_clone()?;
            let arbiter = Arbiter::with_tokio_rt(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .max_blocking_threads((BLOCKING_THREADS / workers).max(1))
                    .build()
                    // As actix-server does: a process that cannot make an
                    // event loop at start cannot serve anything.
                    .expect("a worker's runtime (threads and an epoll instance) can be built")
            });
            let accepting = accepting.subscribe();
            let connections = connections.clone();
            let failures = failures.clone();
            let serve = serve.clone();
            // Made on the worker's thread: what handles its connections
            // stays there (it need not be Send).
            arbiter.spawn_fn(move || {
                actix_rt::spawn(async move {
                    let ended = match TcpListener::from_std(socket) {
                        Ok(socket) => accept_loop(socket, serve(), accepting, connections).await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = ended {
                        let _ = failures.send(e);
                    }
                });
            });
            arbiters.push(arbiter);
        }
        Ok(Self {
            workers: arbiters,
            accepting,
            connections,
            failed: Some(failed),
        })
    }

    /// Resolves with the error of an accept loop that ended on its own
    /// (never, short of a worker failing to start), or once every loop
    /// ended after [`Self::pause`]. Can be taken once.
    pub fn failure(&mut self) -> impl Future<Output = io::Result<()>> + Send + 'static {
        let failed = self.failed.take();
        async move {
            match failed {
                Some(mut failed) => match failed.recv().await {
                    Some(e) => Err(e),
                    None => Ok(()),
                },
                None => std::future::pending().await,
            }
        }
    }

    /// Stops accepting and closes the listening socket; connections already
    /// accepted go on.
    pub fn pause(&self) {
        self.accepting.send_replace(false);
    }

    /// Resolves once every connection accepted has ended.
    pub async fn drained(&self) {
        loop {
            let none_open = self.connections.none_open.notified();
            if self.connections.open.load(Ordering::Acquire) == 0 {
                return;
            }
            none_open.await;
        }
    }

    /// Connections accepted and not ended.
    pub fn open(&self) -> usize {
        self.connections.open.load(Ordering::Acquire)
    }

    /// Stops the workers: connections still open are dropped (their sockets
    /// closed) with the worker's event loop. Resolves when the threads have
    /// ended, or after [`STOP_WAIT`] (a worker's runtime waits for its
    /// blocking reads as it ends; one that hangs is left behind).
    pub async fn stop(self) {
        self.pause();
        for worker in &self.workers {
            worker.stop();
        }
        let workers = self.workers;
        let joined = tokio::task::spawn_blocking(move || {
            for worker in workers {
                let _ = worker.join();
            }
        });
        if tokio::time::timeout(STOP_WAIT, joined).await.is_err() {
            tracing::warn!("an OCPP worker thread did not end in time: left behind");
        }
    }
}

/// Accepts until told to stop, starting `handle` for each connection on
/// this thread.
async fn accept_loop<H, F>(
    listener: TcpListener,
    handle: H,
    mut accepting: watch::Receiver<bool>,
    connections: Arc<Connections>,
) -> io::Result<()>
where
    H: Fn(TcpStream, SocketAddr) -> F + 'static,
    F: Future<Output = ()> + 'static,
{
    loop {
        let accepted = tokio::select! {
            biased;
            _ = accepting.wait_for(|accepting| !*accepting) => return Ok(()),
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let open = Open::new(&connections);
                let connection = handle(tcp, peer);
                actix_rt::spawn(async move {
                    connection.await;
                    drop(open);
                });
            }
            // The client gave up before it was accepted: nothing to do.
            Err(e) if about_one_connection(&e) => {}
            Err(e) => {
                crate::api::log_limited::warn(
                    "ocpp_accept_failed",
                    &format!("accepting a connection failed: {e}"),
                );
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}

/// Whether an accept error concerns only the connection being accepted.
/// Linux's accept(2) also passes on the new socket's pending network
/// errors; those say nothing about the listener either.
fn about_one_connection(e: &io::Error) -> bool {
    let kind = matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    );
    kind || e.raw_os_error().is_some_and(|code| {
        [
            libc::ENETDOWN,
            libc::EPROTO,
            libc::ENOPROTOOPT,
            libc::EHOSTDOWN,
            libc::ENONET,
            libc::EHOSTUNREACH,
            libc::EOPNOTSUPP,
            libc::ENETUNREACH,
        ]
        .contains(&code)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn listener() -> std::net::TcpListener {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap()
    }

    /// Echoes one line back, then holds the connection until the peer closes.
    fn echo() -> impl Fn(TcpStream, SocketAddr) -> std::pin::Pin<Box<dyn Future<Output = ()>>> {
        |mut tcp: TcpStream, _| {
            Box::pin(async move {
                let mut buf = [0; 64];
                while let Ok(n) = tcp.read(&mut buf).await {
                    if n == 0 || tcp.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            })
        }
    }

    async fn echoed(addr: SocketAddr) -> tokio::net::TcpStream {
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client.write_all(b"hello").await.unwrap();
        let mut got = [0; 5];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
        client
    }

    #[actix_rt::test]
    async fn connections_are_served_and_a_graceful_stop_waits_for_them() {
        let socket = listener();
        let addr = socket.local_addr().unwrap();
        let acceptor = Acceptor::start(socket, 2, echo).unwrap();
        let mut clients = Vec::new();
        for _ in 0..20 {
            clients.push(echoed(addr).await);
        }
        assert_eq!(acceptor.open(), 20);
        acceptor.pause();
        // The listening socket closes once every worker has seen the pause.
        let refused = async {
            while tokio::net::TcpStream::connect(addr).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), refused)
            .await
            .expect("no connection accepted after the pause");
        let drained = tokio::time::timeout(Duration::from_millis(200), acceptor.drained()).await;
        assert!(drained.is_err(), "open connections keep the drain waiting");
        drop(clients);
        tokio::time::timeout(Duration::from_secs(5), acceptor.drained())
            .await
            .expect("drained once the clients closed");
        assert_eq!(acceptor.open(), 0);
        acceptor.stop().await;
    }

    #[actix_rt::test]
    async fn a_stop_ends_the_connections_still_open() {
        let socket = listener();
        let addr = socket.local_addr().unwrap();
        let acceptor = Acceptor::start(socket, 2, echo).unwrap();
        let mut client = echoed(addr).await;
        tokio::time::timeout(Duration::from_secs(5), acceptor.stop())
            .await
            .expect("the workers end");
        let mut rest = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "the server side closed the connection");
    }
}
