//! The reference server: the least an OCPP-J server can do, as a throughput
//! floor for voltgate. Raw tokio and tokio-tungstenite, one task per
//! connection, no actors, no authentication, no storage, no schema checks:
//! any path is accepted with the first offered `ocpp2.0.1`/`ocpp1.6`,
//! BootNotification and Heartbeat get their usual answers, every other CALL
//! an empty CALLRESULT.
//!
//! Also here: starting it as a child process for `--compare-reference`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;
use futures_util::{SinkExt, StreamExt};
use serde::de::IgnoredAny;
use serde_json::json;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use crate::station::messages::timestamp;

/// The subprotocols it speaks, in no particular preference: the client's
/// order decides.
const SUBPROTOCOLS: [&str; 2] = ["ocpp2.0.1", "ocpp1.6"];
/// Heartbeat interval given at boot.
const HEARTBEAT_INTERVAL_SECS: u64 = 300;
/// Pending connections the kernel may queue (capped by `net.core.somaxconn`).
/// tokio's `TcpListener::bind` asks for 128, which a fleet connecting at
/// once overflows (the dropped SYNs are retried a second later); voltgate's
/// listener (actix) asks for 2048.
const LISTEN_BACKLOG: u32 = 4096;
/// How long the child gets to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Listens on `addr` with a backlog fit for a fleet connecting at once.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves connections from `listener` until it fails.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(connection(stream));
            }
            // Out of file descriptors or a connection reset before accept:
            // the listener itself is fine, try again shortly.
            Err(e) if is_transient(&e) => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(e) => return Err(e),
        }
    }
}

fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    ) || e
        .raw_os_error()
        .is_some_and(|code| code == 23 || code == 24) // ENFILE, EMFILE
}

async fn connection(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    // The callback's signature is tungstenite's; its error type is large by design.
    #[allow(clippy::result_large_err)]
    let pick = |request: &Request, mut response: Response| -> Result<Response, ErrorResponse> {
        let offered = request
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if let Some(protocol) = choose_subprotocol(offered) {
            response
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(protocol));
        }
        Ok(response)
    };
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let Ok(mut ws) =
        tokio_tungstenite::accept_hdr_async_with_config(stream, pick, Some(config)).await
    else {
        return;
    };
    while let Some(Ok(message)) = ws.next().await {
        match message {
            Message::Text(text) => {
                if let Some(answer) = answer(&text) {
                    if ws.send(Message::text(answer)).await.is_err() {
                        return;
                    }
                }
            }
            Message::Close(_) => return,
            _ => {}
        }
    }
}

/// The first offered subprotocol it speaks.
pub fn choose_subprotocol(offered: &str) -> Option<&'static str> {
    offered
        .split(',')
        .map(str::trim)
        .find_map(|p| SUBPROTOCOLS.iter().copied().find(|&known| known == p))
}

/// The CALLRESULT for a CALL frame; `None` for anything else.
pub fn answer(text: &str) -> Option<String> {
    let (kind, id, action, _): (u8, String, String, IgnoredAny) =
        serde_json::from_str(text).ok()?;
    if kind != 2 {
        return None;
    }
    let payload = match action.as_str() {
        "BootNotification" => json!({
            "status": "Accepted", "currentTime": timestamp(Utc::now()), "interval": HEARTBEAT_INTERVAL_SECS
        }),
        "Heartbeat" => json!({"currentTime": timestamp(Utc::now())}),
        _ => json!({}),
    };
    Some(json!([3, id, payload]).to_string())
}

/// Starts `exe reference-server` on a free loopback port; returns the child
/// (killed when dropped) once it accepts connections.
pub async fn spawn_child(exe: &Path) -> anyhow::Result<(Child, SocketAddr)> {
    let addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
        probe.local_addr()?
    };
    let child = Command::new(exe)
        .arg("reference-server")
        .arg("--listen")
        .arg(addr.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {} reference-server", exe.display()))?;
    let deadline = Instant::now() + START_TIMEOUT;
    while TcpStream::connect(addr).await.is_err() {
        if Instant::now() >= deadline {
            bail!("the reference server did not listen on {addr} within {START_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((child, addr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn the_first_offered_known_subprotocol_wins() {
        assert_eq!(choose_subprotocol("ocpp1.6, ocpp2.0.1"), Some("ocpp1.6"));
        assert_eq!(choose_subprotocol("ocpp2.1,ocpp2.0.1"), Some("ocpp2.0.1"));
        assert_eq!(choose_subprotocol("ocpp1.5"), None);
        assert_eq!(choose_subprotocol(""), None);
    }

    #[test]
    fn calls_get_their_answers_and_everything_else_none() {
        let boot: Value = serde_json::from_str(
            &answer(r#"[2,"1","BootNotification",{"reason":"PowerUp"}]"#).unwrap(),
        )
        .unwrap();
        assert_eq!((boot[0].as_u64(), boot[1].as_str()), (Some(3), Some("1")));
        assert_eq!(
            (boot[2]["status"].as_str(), boot[2]["interval"].as_u64()),
            (Some("Accepted"), Some(300))
        );
        let beat: Value =
            serde_json::from_str(&answer(r#"[2,"x\"y","Heartbeat",{}]"#).unwrap()).unwrap();
        assert_eq!(beat[1], "x\"y", "ids are escaped");
        assert!(beat[2]["currentTime"].as_str().unwrap().ends_with('Z'));
        assert_eq!(
            answer(r#"[2,"9","Authorize",{"idTag":"A"}]"#).unwrap(),
            r#"[3,"9",{}]"#
        );
        assert_eq!(answer(r#"[3,"9",{}]"#), None);
        assert_eq!(answer("garbage"), None);
    }
}
