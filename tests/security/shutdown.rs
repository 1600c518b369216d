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
