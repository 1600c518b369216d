//! A minimal OCPP-J charge station over a real WebSocket (tokio-tungstenite)
//! for the tests: connects with Basic auth and subprotocols, sends CALLs,
//! answers the CSMS's CALLs. Every wait is bounded so a bug fails a test
//! instead of hanging it.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Response};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single expected frame may take.
const PATIENCE: Duration = Duration::from_secs(10);

/// A connected test station, over plain TCP by default (or TLS).
pub struct Station<S = MaybeTlsStream<TcpStream>> {
    ws: WebSocketStream<S>,
    next_id: u64,
    /// CSMS CALLs that arrived while we waited for an answer.
    calls: std::collections::VecDeque<Value>,
    /// The subprotocol the server picked.
    pub protocol: Option<String>,
}

/// The handshake request of station `id` at `url` (ws:// or wss://) with
/// Basic `user:password`, offering `protocols`.
pub fn handshake(
    url: &str,
    credentials: Option<(&str, &str)>,
    protocols: &str,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut request = url.into_client_request().expect("valid URL");
    if !protocols.is_empty() {
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_str(protocols).unwrap(),
        );
    }
    if let Some((user, password)) = credentials {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        request.headers_mut().insert(
            "Authorization",
            HeaderValue::from_str(&format!("Basic {token}")).unwrap(),
        );
    }
    request
}

/// Connects as `id` with Basic `user:password`, offering `protocols`.
pub async fn connect_as(
    addr: SocketAddr,
    id: &str,
    credentials: Option<(&str, &str)>,
    protocols: &str,
) -> Result<Station, tokio_tungstenite::tungstenite::Error> {
    let request = handshake(&format!("ws://{addr}/ws/{id}"), credentials, protocols);
    let (ws, response) = tokio_tungstenite::connect_async(request).await?;
    Ok(Station::over(ws, &response))
}

/// Connects as `id` with the password the tests register (`secret`).
pub async fn connect(addr: SocketAddr, id: &str, protocol: &str) -> Station {
    connect_as(addr, id, Some((id, "secret")), protocol)
        .await
        .expect("station connects")
}

/// The HTTP status of a refused handshake.
pub fn refused_status(error: tokio_tungstenite::tungstenite::Error) -> u16 {
    match error {
        tokio_tungstenite::tungstenite::Error::Http(response) => response.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

impl<S> Station<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    /// A station on an upgraded WebSocket, with the server's answer.
    pub fn over(ws: WebSocketStream<S>, response: &Response<Option<Vec<u8>>>) -> Self {
        let protocol = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Station {
            ws,
            next_id: 1,
            calls: Default::default(),
            protocol,
        }
    }

    /// Sends a raw text frame.
    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    /// Sends a raw frame.
    pub async fn send(&mut self, message: Message) {
        self.ws.send(message).await.expect("send");
    }

    /// The next text message, parsed; panics after [`PATIENCE`].
    pub async fn recv(&mut self) -> Value {
        loop {
            match self.next_message().await {
                Some(Message::Text(text)) => {
                    return serde_json::from_str(&text).expect("server sent JSON")
                }
                Some(Message::Ping(_) | Message::Pong(_)) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// The next frame of any kind (None when the stream ended).
    pub async fn next_message(&mut self) -> Option<Message> {
        match tokio::time::timeout(PATIENCE, self.ws.next()).await {
            Ok(Some(Ok(message))) => Some(message),
            Ok(Some(Err(_)) | None) => None,
            Err(_) => panic!("no frame from the server within {PATIENCE:?}"),
        }
    }

    /// Waits for the server to close the connection; returns the close code.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            match self.next_message().await {
                Some(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                None => return None,
                Some(_) => continue,
            }
        }
    }

    /// Sends a CALL and returns the answer frame ([3, ...] or [4, ...]).
    pub async fn call(&mut self, action: &str, payload: Value) -> Value {
        let id = format!("t{}", self.next_id);
        self.next_id += 1;
        self.send_text(&json!([2, id, action, payload]).to_string())
            .await;
        loop {
            let frame = self.recv().await;
            if frame[0] == 2 {
                // The CSMS may call us at any time; keep it for expect_call.
                self.calls.push_back(frame);
                continue;
            }
            assert_eq!(frame[1], id, "answer to {action} carries its id: {frame}");
            return frame;
        }
    }

    /// Sends a CALL and returns the CALLRESULT payload (panics on CALLERROR).
    pub async fn ok(&mut self, action: &str, payload: Value) -> Value {
        let answer = self.call(action, payload).await;
        assert_eq!(answer[0], 3, "{action} answered {answer}");
        answer[2].clone()
    }

    /// Waits for a CSMS CALL of `action`; returns (message id, payload).
    pub async fn expect_call(&mut self, action: &str) -> (String, Value) {
        let frame = match self.calls.pop_front() {
            Some(frame) => frame,
            None => self.recv().await,
        };
        assert_eq!(
            (frame[0].as_u64(), frame[2].as_str()),
            (Some(2), Some(action)),
            "expected a {action} CALL, got {frame}"
        );
        (frame[1].as_str().expect("id").to_owned(), frame[3].clone())
    }

    /// CSMS CALLs that arrived while we waited for answers and that no
    /// `expect_call` has taken yet.
    pub fn unexpected_calls(&self) -> &std::collections::VecDeque<Value> {
        &self.calls
    }

    /// Answers a CSMS CALL.
    pub async fn reply(&mut self, id: &str, payload: Value) {
        self.send_text(&json!([3, id, payload]).to_string()).await;
    }

    /// Answers a CSMS CALL and closes the connection in the same write, as
    /// a station that reboots at once after accepting a Reset.
    pub async fn reply_and_close(&mut self, id: &str, payload: Value) {
        let answer = json!([3, id, payload]).to_string();
        self.ws.feed(Message::text(answer)).await.expect("feed");
        self.ws.feed(Message::Close(None)).await.expect("feed");
        self.ws.flush().await.expect("flush");
    }

    /// Boots as a 2.0.1 station; returns the BootNotification answer.
    pub async fn boot_201(&mut self) -> Value {
        self.ok("BootNotification", json!({"reason": "PowerUp", "chargingStation": {"model": "Volt", "vendorName": "Acme"}})).await
    }

    /// Boots as a 1.6 station; returns the BootNotification answer.
    pub async fn boot_16(&mut self) -> Value {
        self.ok(
            "BootNotification",
            json!({"chargePointVendor": "Acme", "chargePointModel": "Volt"}),
        )
        .await
    }
}
