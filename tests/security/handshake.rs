//! The OCPP listener's own HTTP handshake: what is not a station's
//! WebSocket upgrade gets a clear answer and the connection closes; what is
//! one works even when the station does not wait for the 101.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{common, register};

/// Sends `request` as is; returns everything the server wrote before it closed.
async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(request).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer))
        .await
        .expect("the server closed the connection after its answer")
        .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

#[actix_web::test]
async fn what_is_not_a_station_upgrade_is_answered_and_closed() {
    let s = common::start().await;
    let ws = s.app.ws_addr();
    register(&s, "CS1", 0).await;

    let plain = exchange(ws, b"GET /ws/CS1 HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(plain.starts_with("HTTP/1.1 426 "), "{plain}");
    assert!(plain.contains("upgrade: websocket\r\n"), "{plain}");
    assert!(
        plain.contains("Upgrade: websocket"),
        "the body says what is missing: {plain}"
    );

    let elsewhere = exchange(ws, b"GET /api/v0/cs HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(elsewhere.starts_with("HTTP/1.1 404 "), "{elsewhere}");
    assert!(
        elsewhere.ends_with("OCPP endpoint is /ws/{csId}\n"),
        "{elsewhere}"
    );

    let old_version = exchange(
        ws,
        b"GET /ws/CS1 HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await;
    assert!(old_version.starts_with("HTTP/1.1 426 "), "{old_version}");
    assert!(
        old_version.contains("sec-websocket-version: 13\r\n"),
        "{old_version}"
    );

    let garbage = exchange(ws, b"\x16\x03\x01\x02\x00 not http\r\n\r\n").await;
    assert!(garbage.starts_with("HTTP/1.1 400 "), "{garbage}");

    let mut huge = b"GET /ws/CS1 HTTP/1.1\r\nX-Pad: ".to_vec();
    huge.resize(20 * 1024, b'a');
    huge.extend_from_slice(b"\r\n\r\n");
    let too_large = exchange(ws, &huge).await;
    assert!(too_large.starts_with("HTTP/1.1 431 "), "{too_large}");
}

#[actix_web::test]
async fn a_station_that_sends_its_boot_behind_the_handshake_is_answered() {
    use base64::Engine;
    let s = common::start().await;
    let ws = s.app.ws_addr();
    register(&s, "CS1", 0).await;
    let auth = base64::engine::general_purpose::STANDARD.encode("CS1:secret");
    let mut bytes = format!(
        "GET /ws/CS1 HTTP/1.1\r\nHost: {ws}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: ocpp1.6\r\nAuthorization: Basic {auth}\r\n\r\n"
    )
    .into_bytes();
    // A masked text frame in the same write as the head.
    let boot = br#"[2,"b1","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]"#;
    let mask = [1u8, 2, 3, 4];
    bytes.extend_from_slice(&[0x81, 0x80 | u8::try_from(boot.len()).unwrap()]);
    bytes.extend_from_slice(&mask);
    bytes.extend(boot.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    let mut tcp = TcpStream::connect(ws).await.expect("connect");
    tcp.write_all(&bytes).await.expect("write");

    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    let answer = loop {
        let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf))
            .await
            .expect("an answer in time")
            .expect("read");
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&received));
        received.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some(at) = text.find("[3,\"b1\"") {
            break text[at..].to_owned();
        }
    };
    let head = String::from_utf8_lossy(&received);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(
        head.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{head}"
    );
    assert!(
        head.contains("sec-websocket-protocol: ocpp1.6\r\n"),
        "{head}"
    );
    assert!(answer.contains("\"status\":\"Accepted\""), "{answer}");
}
