//! Graceful shutdown: station sockets are closed with 1012 (Service Restart)
//! so stations reconnect elsewhere, and the app stops within its drain time.

use std::time::{Duration, Instant};

use crate::common::{self, TestServer};
use crate::{boots, connect_plain, register};

#[actix_web::test]
async fn shutdown_closes_station_sockets_with_service_restart() {
    let s = common::start_with(|c| c.limits.shutdown_drain_secs = 5).await;
    register(&s, "CS1", 0).await;
    register(&s, "CS2", 0).await;
    let ws = s.app.ws_addr();
    let mut one = connect_plain(ws, "CS1", Some(("CS1", "secret")), &[])
        .await
        .connected();
    let mut two = connect_plain(ws, "CS2", Some(("CS2", "secret")), &[])
        .await
        .connected();
    boots(&mut one).await;
    boots(&mut two).await;

    let TestServer {
        app,
        dir: _dir,
        keyspace: _keyspace,
        ..
    } = s;
    let started = Instant::now();
    let stopping = actix_rt::spawn(app.stop());
    assert_eq!(one.closed().await, Some(1012));
    assert_eq!(two.closed().await, Some(1012));
    stopping.await.expect("stopped");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopped within the drain time ({:?})",
        started.elapsed()
    );
    // Nothing listens any more.
    assert!(tokio::net::TcpStream::connect(ws).await.is_err());
}

#[actix_web::test]
async fn a_closing_stations_last_state_is_stored_before_the_store_closes() {
    let s = common::start().await;
    let (mut station, before) = booted_cs1(&s).await;
    // A heartbeat is only remembered in memory; the disconnect writes it.
    let answer = station.call("Heartbeat", serde_json::json!({})).await;
    assert_eq!(answer[0], 3, "{answer}");

    let TestServer {
        app, dir, keyspace, ..
    } = s;
    app.stop().await;
    let last_seen = stored_last_seen(TestServer::on(dir, keyspace).await).await;
    assert!(
        last_seen >= before,
        "the heartbeat's time ({last_seen}) was stored at shutdown (after {before})"
    );
}

#[actix_web::test]
async fn a_station_left_at_the_drain_time_still_gets_its_last_state_stored() {
    // A station that stops reading while it floods the server with
    // heartbeats: the answers fill both sockets' buffers, the server's write
    // waits (for the idle time, far past the drain), and its actor is not
    // polled, so it never sees the shutdown's close. The drain time runs
    // out with the station still connected.
    let s = common::start_with(|c| {
        c.limits.shutdown_drain_secs = 1;
        c.limits.ocpp_messages_per_sec = 0;
        c.limits.max_unread_bytes = 0;
    })
    .await;
    let (mut station, before) = booted_cs1(&s).await;
    let heartbeat = r#"[2,"h","Heartbeat",{}]"#;
    let flooding = async {
        loop {
            let sent = station.send_text(heartbeat);
            if tokio::time::timeout(Duration::from_millis(500), sent)
                .await
                .is_err()
            {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), flooding)
        .await
        .expect("the server stopped reading within a minute");

    let TestServer {
        app, dir, keyspace, ..
    } = s;
    let started = Instant::now();
    app.stop().await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the station held the drain to its end ({:?})",
        started.elapsed()
    );
    // Its last state (seen during the flood; heartbeats are only kept in
    // memory) is written when the stop drops the socket, and the stop
    // waits for that write before it closes the store.
    let last_seen = stored_last_seen(TestServer::on(dir, keyspace).await).await;
    assert!(
        last_seen >= before,
        "the flood's time ({last_seen}) was stored at shutdown (after {before})"
    );
    drop(station);
}

/// CS1 registered, connected and booted, and a time before anything it
/// sends from here on.
async fn booted_cs1(
    s: &TestServer,
) -> (
    crate::client::Station<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    chrono::DateTime<chrono::Utc>,
) {
    register(s, "CS1", 0).await;
    let mut station = connect_plain(s.app.ws_addr(), "CS1", Some(("CS1", "secret")), &[])
        .await
        .connected();
    boots(&mut station).await;
    let before = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    (station, before)
}

/// When CS1 was last seen, as the restarted server `restarted` has it.
async fn stored_last_seen(restarted: TestServer) -> chrono::DateTime<chrono::Utc> {
    let view = restarted.get("/api/v0/cs/CS1").await;
    assert_eq!(view.status, 200, "{view:?}");
    let last_seen = view.body["runtime"]["lastSeen"]
        .as_str()
        .unwrap_or_else(|| panic!("no lastSeen in {}", view.body));
    last_seen.parse().expect("a time")
}
