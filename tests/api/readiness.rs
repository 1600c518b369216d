//! Liveness and readiness: `/health` answers while the process runs;
//! `/health/ready` only while the store answers. A store that cannot take
//! writes makes REST writes 503 with `Retry-After`, not 500.

use std::time::Duration;

use crate::common::{start, token_body};

#[actix_web::test]
async fn readiness_follows_the_store_and_its_loss_is_a_503_with_retry_after() {
    let s = start().await;
    let ready = s.get("/health/ready").await;
    assert_eq!(
        (ready.status, &ready.body["status"]),
        (200, &serde_json::json!("ready")),
        "{ready:?}"
    );

    // The store stops taking writes (what a lost ScyllaDB or a closing
    // store looks like from the API).
    s.app.store().close().await;
    // A readiness answer is reused for a second.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let not_ready = s.get("/health/ready").await;
    assert_eq!(not_ready.status, 503, "{not_ready:?}");
    assert!(
        not_ready.body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("store"),
        "{not_ready:?}"
    );
    assert_eq!(s.get("/health").await.status, 200, "liveness stays");

    let client = awc::Client::default();
    let response = client
        .post(format!("{}/api/v0/token", s.base))
        .send_json(&token_body("T-DOWN"))
        .await
        .expect("answered");
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(
        response
            .headers()
            .get("Retry-After")
            .and_then(|v| v.to_str().ok()),
        Some("5")
    );
}

/// A TCP proxy to the CQL node that the test can cut (every connection
/// dropped, new ones refused) and heal: a network loss between voltgate
/// and its store, without touching the shared node.
struct Proxy {
    addr: std::net::SocketAddr,
    cut: tokio::sync::watch::Sender<bool>,
}

impl Proxy {
    async fn to(target: String) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("proxy binds");
        let addr = listener.local_addr().expect("proxy address");
        let (cut, cut_seen) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if *cut_seen.borrow() {
                    continue; // dropped: refused while cut
                }
                let target = target.clone();
                let mut cut_now = cut_seen.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut_now.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Proxy { addr, cut }
    }

    fn set_cut(&self, cut: bool) {
        let _ = self.cut.send(cut);
    }
}

#[actix_web::test]
async fn a_lost_scylla_makes_voltgate_unready_and_503_and_it_recovers_with_nothing_lost() {
    let Ok(uri) = std::env::var("VOLTGATE_SCYLLA_URI") else {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "skipped: VOLTGATE_SCYLLA_URI is not set: the ScyllaDB outage test did not run"
        );
        return;
    };
    let node = uri.split(',').next().unwrap_or_default().trim().to_owned();
    let proxy = Proxy::to(node).await;
    let s = crate::common::start_with(|config| {
        config.scylla.uri = Some(vec![proxy.addr.to_string()]);
    })
    .await;
    s.register("OUT1").await;
    let mut cs = crate::client::connect(s.app.ws_addr(), "OUT1", "ocpp1.6").await;
    cs.boot_16().await;
    assert_eq!(
        s.post("/api/v0/token", &token_body("BEFORE")).await.status,
        201
    );
    assert_eq!(s.get("/health/ready").await.status, 200);

    proxy.set_cut(true);
    let mut status = 0;
    for _ in 0..60 {
        status = s.get("/health/ready").await.status;
        if status == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(status, 503, "readiness follows the store");
    let mut write = 0;
    for _ in 0..60 {
        write = s.post("/api/v0/token", &token_body("DURING")).await.status;
        if write == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        write, 503,
        "a write while the store is away is a 503, not a 500"
    );
    // The station keeps its connection and its heartbeats are answered.
    let beat = cs.ok("Heartbeat", serde_json::json!({})).await;
    assert!(beat["currentTime"].is_string(), "{beat}");

    proxy.set_cut(false);
    let mut ready = 0;
    for _ in 0..120 {
        ready = s.get("/health/ready").await.status;
        if ready == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(ready, 200, "ready again once the store is back");
    let mut after = 0;
    for _ in 0..20 {
        after = s.post("/api/v0/token", &token_body("AFTER")).await.status;
        if after == 201 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(after, 201);
    for uid in ["BEFORE", "AFTER"] {
        assert_eq!(
            s.get(&format!("/api/v0/token/{uid}")).await.status,
            200,
            "{uid} kept"
        );
    }
    let beat = cs.ok("Heartbeat", serde_json::json!({})).await;
    assert!(beat["currentTime"].is_string(), "still connected: {beat}");
}
