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
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};

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
/// built here, and the future holds only it and the socket's halves.
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
    let (reader, writer) = tokio::io::split(io);
    // Shared with the input stream, and taken back to drain the socket at
    // the end.
    let reader = Rc::new(RefCell::new(reader));
    let early = (!early.is_empty()).then_some(Ok(early));
    let input = reader.clone();
    let incoming = stream::iter(early).chain(stream::poll_fn(move |cx| {
        read_chunk(&mut *input.borrow_mut(), cx)
    }));
    let outgoing = WebsocketContext::with_codec(actor, incoming, codec);
    pump(outgoing, writer, reader, write_timeout)
}

/// Writes what the context sends until it ends, then closes the socket.
async fn pump<S, IO>(
    mut outgoing: S,
    mut writer: WriteHalf<IO>,
    reader: Rc<RefCell<ReadHalf<IO>>>,
    write_timeout: Duration,
) where
    S: Stream<Item = Result<Bytes, actix_web::Error>> + Unpin,
    IO: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(frames) = outgoing.next().await {
        let Ok(frames) = frames else { break };
        let written = async {
            writer.write_all(&frames).await?;
            writer.flush().await
        };
        match tokio::time::timeout(write_timeout, written).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "station socket write failed");
                break;
            }
            Err(_) => {
                tracing::info!(
                    ?write_timeout,
                    "station socket took no writes in time: closed"
                );
                break;
            }
        }
    }
    // Dropping the context ends the actor if it still runs (after a failed
    // write), and gives the reader back.
    drop(outgoing);
    let Ok(reader) = Rc::try_unwrap(reader) else {
        return;
    };
    linger(reader.into_inner().unsplit(writer)).await;
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
