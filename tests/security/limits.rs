//! Connection limits: the node's station cap, per-address connection rate,
//! per-station message rate, slow handshakes and malformed frames.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

use crate::common;
use crate::{boots, connect_plain, counter, register};

#[actix_web::test]
async fn the_node_refuses_stations_above_its_cap() {
    let s = common::start_with(|c| c.limits.max_stations = Some(1)).await;
    let ws = s.app.ws_addr();
    register(&s, "CS1", 0).await;
    register(&s, "CS2", 0).await;
    let mut first = connect_plain(ws, "CS1", Some(("CS1", "secret")), &[])
        .await
        .connected();
    boots(&mut first).await;
    // The recorder is process-wide: the refusal must move the counter.
    let before = counter(&s, "voltgate_limit_refusals_total", "max_stations").await;
    assert_eq!(
        connect_plain(ws, "CS2", Some(("CS2", "secret")), &[])
            .await
            .refused(),
        503
    );
    assert!(counter(&s, "voltgate_limit_refusals_total", "max_stations").await >= before + 1.0);
    // The place comes back when the first station leaves.
    first.send(Message::Close(None)).await;
    let mut admitted = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let crate::Outcome::Connected(_) =
            connect_plain(ws, "CS2", Some(("CS2", "secret")), &[]).await
        {
            admitted = true;
            break;
        }
    }
    assert!(
        admitted,
        "the freed place was not given to the next station"
    );
}

#[actix_web::test]
async fn one_address_may_not_open_connections_too_fast() {
    let s = common::start_with(|c| c.limits.connections_per_ip_per_sec = 2).await;
    let ws = s.app.ws_addr();
    let before = counter(&s, "voltgate_limit_refusals_total", "connections_per_ip").await;
    // Unknown stations: each attempt is refused, and each counts.
    assert_eq!(connect_plain(ws, "X1", None, &[]).await.refused(), 401);
    assert_eq!(connect_plain(ws, "X2", None, &[]).await.refused(), 401);
    assert_eq!(connect_plain(ws, "X3", None, &[]).await.refused(), 429);
    assert!(
        counter(&s, "voltgate_limit_refusals_total", "connections_per_ip").await >= before + 1.0
    );
}

#[actix_web::test]
async fn a_flooding_station_is_disconnected_and_others_go_on() {
    let s = common::start_with(|c| c.limits.ocpp_messages_per_sec = 2).await;
    let ws = s.app.ws_addr();
    register(&s, "FLOOD", 0).await;
    register(&s, "CALM", 0).await;
    let mut flood = connect_plain(ws, "FLOOD", Some(("FLOOD", "secret")), &[])
        .await
        .connected();
    let mut calm = connect_plain(ws, "CALM", Some(("CALM", "secret")), &[])
        .await
        .connected();
    let before = counter(
        &s,
        "voltgate_limit_refusals_total",
        "ocpp_messages_per_station",
    )
    .await;
    for i in 0..40 {
        flood
            .send(Message::text(format!(r#"[2,"f{i}","Heartbeat",{{}}]"#)))
            .await;
    }
    assert_eq!(flood.closed().await, Some(1008), "policy violation");
    assert!(
        counter(
            &s,
            "voltgate_limit_refusals_total",
            "ocpp_messages_per_station"
        )
        .await
            >= before + 1.0
    );
    boots(&mut calm).await;
}

#[actix_web::test]
async fn a_slow_handshake_is_dropped_without_holding_the_worker() {
    // One OCPP worker: if the slow client held it, the station below could
    // not connect.
    let s = common::start_with(|c| c.ws_workers = Some(1)).await;
    let ws = s.app.ws_addr();
    register(&s, "CS1", 0).await;
    let mut slow = TcpStream::connect(ws).await.expect("connect");
    slow.write_all(b"GET /ws/CS1 HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n")
        .await
        .expect("partial head");
    let mut station = connect_plain(ws, "CS1", Some(("CS1", "secret")), &[])
        .await
        .connected();
    boots(&mut station).await;
    // The server gives up on the unfinished head (after 5 s) and closes.
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(10), slow.read(&mut buf))
        .await
        .expect("the server closed the slow handshake within 10 s");
    // A reset (Err) is a close as well.
    if let Ok(n) = read {
        let answer = String::from_utf8_lossy(&buf[..n]);
        assert!(n == 0 || answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
}

#[actix_web::test]
async fn malformed_utf8_closes_only_that_connection() {
    let s = common::start().await;
    let ws = s.app.ws_addr();
    register(&s, "BAD", 0).await;
    register(&s, "GOOD", 0).await;
    let mut bad = connect_plain(ws, "BAD", Some(("BAD", "secret")), &[])
        .await
        .connected();
    let mut good = connect_plain(ws, "GOOD", Some(("GOOD", "secret")), &[])
        .await
        .connected();
    let invalid = vec![b'[', b'2', b',', 0xff, 0xfe, b']'];
    bad.send(Message::Frame(Frame::message(
        invalid,
        OpCode::Data(Data::Text),
        true,
    )))
    .await;
    assert_eq!(bad.closed().await, Some(1002), "closed as a protocol error");
    boots(&mut good).await;
}

#[actix_web::test]
async fn a_station_that_does_not_read_is_disconnected_and_a_reader_is_not() {
    let s = common::start_with(|c| {
        c.limits.max_unread_bytes = 2_000;
        c.limits.ocpp_messages_per_sec = 0;
    })
    .await;
    let ws = s.app.ws_addr();
    register(&s, "DEAF", 0).await;
    register(&s, "READER", 0).await;
    let mut reader = connect_plain(ws, "READER", Some(("READER", "secret")), &[])
        .await
        .connected();
    boots(&mut reader).await;
    // Far more than the bound, read as it comes: the probe pings are
    // answered (the client answers pings while reading), nothing is cut.
    for _ in 0..200 {
        let answer = reader.call("Heartbeat", serde_json::json!({})).await;
        assert_eq!(answer[0], 3, "{answer}");
    }

    let mut deaf = connect_plain(ws, "DEAF", Some(("DEAF", "secret")), &[])
        .await
        .connected();
    boots(&mut deaf).await;
    let before = counter(
        &s,
        "voltgate_limit_refusals_total",
        "unread_bytes_per_station",
    )
    .await;
    // Sends and never reads: its answers pile up unread.
    for i in 0..200 {
        deaf.send(Message::text(format!(r#"[2,"d{i}","Heartbeat",{{}}]"#)))
            .await;
    }
    assert_eq!(deaf.closed().await, Some(1008));
    assert!(
        counter(
            &s,
            "voltgate_limit_refusals_total",
            "unread_bytes_per_station"
        )
        .await
            >= before + 1.0
    );
    let answer = reader.call("Heartbeat", serde_json::json!({})).await;
    assert_eq!(answer[0], 3, "the reader goes on: {answer}");
}
