//! One upgraded station socket: bytes from the socket to the actor's
//! WebSocket context, frames from the context to the socket, until either
//! side ends.
//!
//! Nothing is buffered between reads: each read lands on the stack and is
//! handed straight to the frame decoder, and what the actor sends is written
//! as the context encodes it. An idle station costs its actor, its context
//! and the kernel's socket, not the 2 × 8 KiB that a general HTTP
//! dispatcher keeps for every upgraded connection (issue 15's measurement).

use std::cell::RefCell;
use std::future::Future;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix::{Actor, StreamHandler};
use actix_http::ws::{Codec, Message, ProtocolError};
use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use actix_web_actors::ws::WebsocketContext;
use futures_util::{stream, Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

/// Bytes taken from the socket per read. Longer messages take several reads.
const READ_CHUNK: usize = 8 * 1024;
/// Longest wait for the station to close its side once the actor has
/// stopped.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

/// Runs `actor` on the upgraded socket `io`. `early` holds bytes the client
/// sent behind its request head, before it saw the 101. A write not done
/// within `write_timeout` ends the connection: while it waits the
/// actor is not polled, so its own idle and unread-bytes checks cannot.
///
/// Not an `async fn`: its arguments would stay in the future's state beside
/// the context they are moved into (the actor twice over). The context is
/// built here, and the future holds only it and the socket.
pub fn run<A, IO>(
    io: IO,
    early: Bytes,
    actor: A,
    codec: Codec,
    write_timeout: Duration,
) -> impl Future<Output = ()>
where
    A: Actor<Context = WebsocketContext<A>> + StreamHandler<Result<Message, ProtocolError>>,
    IO: AsyncRead + AsyncWrite + Unpin + 'static,
{
    // One socket, not split halves: reads (inside the context's input
    // stream) and writes (the pump) run in this one task and never at the
    // same time, so a `RefCell` borrowed for one poll is all the sharing
    // needed, where `tokio::io::split` takes a lock on every read and write.
    let io = Rc::new(RefCell::new(io));
    let early = (!early.is_empty()).then_some(Ok(early));
    let input = io.clone();
    let incoming = stream::iter(early).chain(stream::poll_fn(move |cx| {
        read_chunk(&mut *input.borrow_mut(), cx)
    }));
    let outgoing = WebsocketContext::with_codec(actor, incoming, codec);
    pump(outgoing, io, write_timeout)
}

/// Writes what the context sends until it ends, then closes the socket.
async fn pump<S, IO>(mut outgoing: S, io: Rc<RefCell<IO>>, write_timeout: Duration)
where
    S: Stream<Item = Result<Bytes, actix_web::Error>> + Unpin,
    IO: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(frames) = outgoing.next().await {
        let Ok(frames) = frames else { break };
        match write_within(&io, &frames, write_timeout).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                tracing::info!(
                    ?write_timeout,
                    "station socket took no writes in time: closed"
                );
                break;
            }
            Err(e) => {
                tracing::debug!(error = %e, "station socket write failed");
                break;
            }
        }
    }
    // Dropping the context ends the actor if it still runs (after a failed
    // write), and gives the socket back.
    drop(outgoing);
    let Ok(io) = Rc::try_unwrap(io) else {
        return;
    };
    linger(io.into_inner()).await;
}

/// Writes and flushes `frames`, failing with `TimedOut` when the station
/// takes them not within `limit`. Nearly every write is done at its first
/// poll: the deadline's timer is made only for one that has to wait.
async fn write_within<IO: AsyncWrite + Unpin>(
    io: &RefCell<IO>,
    frames: &[u8],
    limit: Duration,
) -> std::io::Result<()> {
    let mut written = 0;
    let mut deadline: Option<Pin<Box<tokio::time::Sleep>>> = None;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(done) = poll_write_all(&mut *io.borrow_mut(), frames, &mut written, cx) {
            return Poll::Ready(done);
        }
        let deadline = deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::ErrorKind::TimedOut.into())),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Writes `frames` from `*written` on, then flushes.
fn poll_write_all<IO: AsyncWrite + Unpin>(
    io: &mut IO,
    frames: &[u8],
    written: &mut usize,
    cx: &mut Context<'_>,
) -> Poll<std::io::Result<()>> {
    while *written < frames.len() {
        match Pin::new(&mut *io).poll_write(cx, &frames[*written..]) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(0)) => return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
            Poll::Ready(Ok(n)) => *written += n,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
        }
    }
    Pin::new(io).poll_flush(cx)
}

/// Ends a connection the way RFC 6455 asks, after a close frame or a
/// refusal: the server closes TCP first, then reads until the station
/// closes too, for a bounded time. Closing a socket with unread input resets
/// it, and a reset can destroy the last frame or answer before the station
/// has read it.
pub async fn linger<IO: AsyncRead + AsyncWrite + Unpin>(mut io: IO) {
    let ending = async {
        let _ = io.shutdown().await;
        discard_until_closed(&mut io).await;
    };
    let _ = tokio::time::timeout(SHUTDOWN_WAIT, ending).await;
}

/// Reads and drops what arrives until the peer closes or the socket fails.
async fn discard_until_closed<R: AsyncRead + Unpin>(reader: &mut R) {
    std::future::poll_fn(|cx| loop {
        // On the stack of each poll, not in the future's state.
        let mut discarded = [MaybeUninit::<u8>::uninit(); 1024];
        let mut read = ReadBuf::uninit(&mut discarded);
        match Pin::new(&mut *reader).poll_read(cx, &mut read) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(())) if !read.filled().is_empty() => continue,
            Poll::Ready(_) => return Poll::Ready(()),
        }
    })
    .await;
}

/// One read from the socket as the next chunk of input: None at the end,
/// an error as the stream's error (the actor sees a protocol error and stops).
fn read_chunk<R: AsyncRead + Unpin>(
    reader: &mut R,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Bytes, PayloadError>>> {
    // Left uninitialised: zeroing 8 KiB for every read (and for every read
    // that finds nothing) costs more than the read.
    let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
    let mut read = ReadBuf::uninit(&mut chunk);
    match Pin::new(reader).poll_read(cx, &mut read) {
        Poll::Pending => Poll::Pending,
        Poll::Ready(Err(e)) => Poll::Ready(Some(Err(PayloadError::Io(e)))),
        Poll::Ready(Ok(())) if read.filled().is_empty() => Poll::Ready(None),
        Poll::Ready(Ok(())) => Poll::Ready(Some(Ok(Bytes::copy_from_slice(read.filled())))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_write_the_station_does_not_take_in_time_fails() {
        // The station's side reads nothing and its window holds 64 bytes.
        let (ours, _station) = tokio::io::duplex(64);
        let ours = RefCell::new(ours);
        let limit = Duration::from_millis(50);
        assert!(
            write_within(&ours, &[1; 32], limit).await.is_ok(),
            "fits the window"
        );
        let started = std::time::Instant::now();
        let stuck = write_within(&ours, &[2; 1024], limit).await;
        assert_eq!(
            stuck.map_err(|e| e.kind()),
            Err(std::io::ErrorKind::TimedOut)
        );
        assert!(started.elapsed() >= limit, "not before the limit");
    }

    #[tokio::test]
    async fn a_slow_station_gets_all_of_a_long_write() {
        let (ours, mut station) = tokio::io::duplex(16);
        let ours = RefCell::new(ours);
        let frames: Vec<u8> = (0..=255).collect();
        let reading = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut chunk = [0; 7];
            while got.len() < 256 {
                let n = tokio::io::AsyncReadExt::read(&mut station, &mut chunk)
                    .await
                    .unwrap();
                got.extend_from_slice(&chunk[..n]);
            }
            got
        });
        write_within(&ours, &frames, Duration::from_secs(5))
            .await
            .expect("written");
        assert_eq!(reading.await.unwrap(), frames);
    }
}
