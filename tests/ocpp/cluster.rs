//! Several voltgate processes on one ScyllaDB keyspace (run when
//! `VOLTGATE_SCYLLA_URI` is set, skipped loudly otherwise): a command taken
//! by one node reaches a station connected to another, `?wait=true`
//! included, on 1.6 and 2.0.1; a station that reconnects through another
//! node closes its old socket there (1008) and commands follow it; the
//! internal API refuses calls without the cluster token; the fleet view
//! and `/api/v0/nodes` name the nodes.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::client::{connect, Station};
use crate::common::auth_body;

const TOKEN: &str = "cluster-token-for-tests";

/// One voltgate process of the cluster.
struct Node {
    id: String,
    child: Child,
    api: SocketAddr,
    ws: SocketAddr,
    cluster: SocketAddr,
    log: PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

fn scylla_uri() -> Option<String> {
    match std::env::var("VOLTGATE_SCYLLA_URI") {
        Ok(uri) if !uri.trim().is_empty() => Some(uri),
        _ => {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "skipped: VOLTGATE_SCYLLA_URI is not set: the cluster tests (several nodes on ScyllaDB) did not run"
            );
            None
        }
    }
}

async fn http(method: &str, url: String, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .finish();
    let mut request = match method {
        "GET" => client.get(&url),
        _ => client.post(&url),
    };
    if let Some(token) = token {
        request = request.insert_header(("Authorization", format!("Bearer {token}")));
    }
    let sent = match body {
        Some(body) => request.send_json(&body).await,
        None => request.send().await,
    };
    let mut response = sent.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let bytes = response.body().limit(1 << 24).await.expect("body");
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (response.status().as_u16(), value)
}

impl Node {
    fn start(id: &str, uri: &str, keyspace: &str) -> Node {
        let (api, ws, cluster, ocpi) = (free_addr(), free_addr(), free_addr(), free_addr());
        let dir = tempfile::tempdir().expect("dir").keep();
        let log = dir.join("voltgate.log");
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_voltgate"))
            .args(["--scylla-uri", uri, "--scylla-keyspace", keyspace])
            // A shared test node applies schema slowly while other tests run.
            .args(["--scylla-request-timeout-ms", "20000"])
            .args([
                "--api-listen",
                &api.to_string(),
                "--ws-listen",
                &ws.to_string(),
            ])
            .args(["--ocpi-listen", &ocpi.to_string()])
            .args(["--data-dir", &dir.join("data").to_string_lossy()])
            .args(["--node-id", id, "--node-url", &format!("http://{cluster}")])
            .args([
                "--cluster-listen",
                &cluster.to_string(),
                "--cluster-token",
                TOKEN,
            ])
            .args(["--presence-ttl-secs", "6"])
            .args([
                "--connections-per-ip-per-sec",
                "0",
                "--ocpp-messages-per-sec",
                "0",
            ])
            .env("VOLTGATE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("voltgate starts");
        Node {
            id: id.to_owned(),
            child,
            api,
            ws,
            cluster,
            log,
        }
    }

    async fn ready(&mut self) {
        for _ in 0..300 {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("node {} exited with {status}: {}", self.id, self.log_text());
            }
            let client = awc::Client::default();
            if let Ok(response) = client
                .get(format!("http://{}/health", self.api))
                .send()
                .await
            {
                if response.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("node {} never got ready: {}", self.id, self.log_text());
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        http("GET", format!("http://{}{path}", self.api), None, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        http(
            "POST",
            format!("http://{}{path}", self.api),
            None,
            Some(body),
        )
        .await
    }
}

/// Waits until `node` sees `station` connected through `on`.
async fn seen_on(node: &Node, station: &str, on: &str) {
    let mut last = Value::Null;
    for _ in 0..100 {
        let (_, view) = node.get(&format!("/api/v0/cs/{station}")).await;
        if view["connected"] == true && view["node"] == on {
            return;
        }
        last = view;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{} does not see {station} on {on}: {last}", node.id);
}

/// The value of the sample `name` with `labels` on `node`'s `/metrics`;
/// 0 when absent.
async fn counter(node: &Node, name: &str, labels: &[(&str, &str)]) -> f64 {
    let client = awc::Client::default();
    let mut response = client
        .get(format!("http://{}/metrics", node.api))
        .send()
        .await
        .expect("metrics");
    let text = response.body().limit(1 << 24).await.expect("metrics body");
    crate::metrics::sample(&String::from_utf8_lossy(&text), name, labels).unwrap_or(0.0)
}

/// A trigger through `node`'s REST API with `?wait=true`, answered by `cs`.
async fn trigger_through(node: &Node, cs: &mut Station, station: &str, action: &str) -> Value {
    let url = format!("http://{}/api/v0/cs/{station}/trigger?wait=true", node.api);
    let waiting = actix_web::rt::spawn(async move {
        http(
            "POST",
            url,
            None,
            Some(json!({"trigger": "StatusNotification"})),
        )
        .await
    });
    let (id, _) = cs.expect_call(action).await;
    cs.reply(&id, json!({"status": "Accepted"})).await;
    let (status, body) = waiting.await.expect("request task");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["delivered"], true, "{body}");
    body
}

#[actix_web::test]
async fn commands_reach_stations_on_other_nodes_and_follow_a_reconnect() {
    let Some(uri) = scylla_uri() else {
        return;
    };
    let keyspace = format!("vg_cluster_{}", std::process::id());
    let mut a = Node::start("node-a", &uri, &keyspace);
    a.ready().await;
    let mut b = Node::start("node-b", &uri, &keyspace);
    b.ready().await;

    // The internal API wants the cluster token.
    let deliver = format!("http://{}/cluster/v1/deliver", a.cluster);
    let (status, body) = http("POST", deliver.clone(), None, Some(json!({}))).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = http("POST", deliver, Some("wrong-token-of-16+"), Some(json!({}))).await;
    assert_eq!(status, 401);
    let (status, body) = http(
        "GET",
        format!("http://{}/cluster/v1/node", a.cluster),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!((status, &body["node_id"]), (200, &json!("node-a")));
    // ... and is not served on the public REST listener.
    let (status, _) = http(
        "POST",
        format!("http://{}/cluster/v1/deliver", a.api),
        Some(TOKEN),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 404);

    let mut on_b = Vec::new();
    for (station, version, trigger) in [
        ("CL16", "ocpp1.6", "TriggerMessage"),
        ("CL201", "ocpp2.0.1", "TriggerMessage"),
    ] {
        let (status, body) = b
            .post(&format!("/api/v0/cs/{station}"), auth_body("secret"))
            .await;
        assert_eq!(status, 201, "{body}");
        let mut cs = connect(a.ws, station, version).await;
        if version == "ocpp1.6" {
            cs.boot_16().await;
        } else {
            cs.boot_201().await;
        }
        seen_on(&b, station, "node-a").await;
        // Taken by B, delivered by A, answered back to B.
        trigger_through(&b, &mut cs, station, trigger).await;

        // The station reconnects through B: A closes its old socket (1008).
        let mut moved = connect(b.ws, station, version).await;
        if version == "ocpp1.6" {
            moved.boot_16().await;
        } else {
            moved.boot_201().await;
        }
        assert_eq!(
            cs.closed().await,
            Some(1008),
            "the old socket on A is closed as replaced"
        );
        seen_on(&a, station, "node-b").await;
        // Commands taken by A now go to B.
        trigger_through(&a, &mut moved, station, trigger).await;
        on_b.push(moved);
    }

    // Both nodes are live, each holding one station now... both on B.
    let mut nodes = Value::Null;
    for _ in 0..50 {
        nodes = a.get("/api/v0/nodes").await.1;
        let b_count = nodes
            .as_array()
            .and_then(|n| n.iter().find(|n| n["node_id"] == "node-b"))
            .map(|n| n["stations"].clone());
        if nodes.as_array().map(Vec::len) == Some(2) && b_count == Some(json!(2)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut ids: Vec<&str> = nodes
        .as_array()
        .unwrap_or_else(|| panic!("{nodes}"))
        .iter()
        .filter_map(|n| n["node_id"].as_str())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["node-a", "node-b"], "{nodes}");

    // Each waiting caller had its answer pushed by the node that delivered
    // the command (B's two triggers went to A, A's two to B).
    for node in [&a, &b] {
        assert_eq!(
            counter(
                node,
                "voltgate_cluster_forward_answers_total",
                &[("how", "pushed")]
            )
            .await,
            2.0,
            "answers pushed to {}",
            node.id
        );
    }

    // The fleet list through A, whose node holds neither: both are
    // connected on B (looked up in bulk, one page at once).
    let (status, listed) = a.get("/api/v0/cs?connected=true").await;
    assert_eq!(status, 200, "{listed}");
    let held: Vec<(&str, &str)> = listed
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .iter()
        .filter_map(|s| Some((s["id"].as_str()?, s["node"].as_str()?)))
        .collect();
    assert_eq!(held, [("CL16", "node-b"), ("CL201", "node-b")], "{listed}");
    let (_, disconnected) = a.get("/api/v0/cs?connected=false").await;
    assert_eq!(disconnected, json!([]));

    drop(on_b);
    drop(a);
    drop(b);
    drop_keyspace(&uri, keyspace).await;
}

#[actix_web::test]
async fn a_killed_nodes_stations_reconnect_elsewhere_and_its_silent_ones_fail_fast() {
    let Some(uri) = scylla_uri() else {
        return;
    };
    let keyspace = format!("vg_cluster_kill_{}", std::process::id());
    let mut a = Node::start("node-a", &uri, &keyspace);
    a.ready().await;
    let mut b = Node::start("node-b", &uri, &keyspace);
    b.ready().await;
    for station in ["KA1", "KA2"] {
        let (status, body) = b
            .post(&format!("/api/v0/cs/{station}"), auth_body("secret"))
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let mut ka1 = connect(a.ws, "KA1", "ocpp1.6").await;
    ka1.boot_16().await;
    let mut ka2 = connect(a.ws, "KA2", "ocpp1.6").await;
    ka2.boot_16().await;
    seen_on(&b, "KA1", "node-a").await;
    seen_on(&b, "KA2", "node-a").await;

    // kill -9 of A: its sockets drop without a close.
    let _ = a.child.kill();
    let _ = a.child.wait();
    let killed = std::time::Instant::now();

    // KA1 reconnects through B (the balancer's other node) and is reachable
    // at once, before A's lease has run out.
    let mut moved = connect(b.ws, "KA1", "ocpp1.6").await;
    moved.boot_16().await;
    seen_on(&b, "KA1", "node-b").await;
    trigger_through(&b, &mut moved, "KA1", "TriggerMessage").await;
    assert!(
        killed.elapsed() < Duration::from_secs(6),
        "within the lease TTL"
    );

    // KA2 stays away: its presence still names A, whose lease is still
    // current, so an immediate command is forwarded, A does not answer
    // (tried twice), the command fails with the reason and the stale
    // presence is cleared.
    let (status, reset) = b
        .post("/api/v0/cs/KA2/reset?wait=true", json!({"type": "Soft"}))
        .await;
    assert_eq!(status, 200, "{reset}");
    assert_eq!(reset["status"], "Failed", "{reset}");
    assert_eq!(reset["error"]["code"], "NodeUnreachable", "{reset}");
    let (_, view) = b.get("/api/v0/cs/KA2").await;
    assert_eq!(view["connected"], false, "{view}");
    let (status, again) = b
        .post("/api/v0/cs/KA2/reset", json!({"type": "Soft"}))
        .await;
    assert_eq!(status, 409, "not connected anywhere: {again}");

    // A's lease runs out: only B is live.
    let mut nodes = Value::Null;
    for _ in 0..100 {
        nodes = b.get("/api/v0/nodes").await.1;
        if nodes.as_array().map(Vec::len) == Some(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(nodes[0]["node_id"], "node-b", "{nodes}");
    assert!(
        killed.elapsed() < Duration::from_secs(15),
        "gone within the TTL"
    );
    drop(ka1);
    drop(ka2);
    drop(b);
    drop_keyspace(&uri, keyspace).await;
}

async fn drop_keyspace(uri: &str, keyspace: String) {
    let settings = voltgate::store::scylla::ScyllaSettings::new(
        uri.split(',').map(str::to_owned).collect(),
        keyspace,
    );
    if let Ok(store) = voltgate::store::scylla::ScyllaStore::connect(&settings).await {
        let _ = store.drop_keyspace().await;
    }
}

#[actix_web::test]
async fn a_batch_over_stations_on_two_nodes_is_delivered_and_counted_whole() {
    let Some(uri) = scylla_uri() else {
        return;
    };
    let keyspace = format!("vg_cluster_batch_{}", std::process::id());
    let mut a = Node::start("node-a", &uri, &keyspace);
    a.ready().await;
    let mut b = Node::start("node-b", &uri, &keyspace);
    b.ready().await;
    for station in ["SA", "SB"] {
        let (status, body) = a
            .post(&format!("/api/v0/cs/{station}"), auth_body("secret"))
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let mut sa = connect(a.ws, "SA", "ocpp1.6").await;
    sa.boot_16().await;
    let mut sb = connect(b.ws, "SB", "ocpp2.0.1").await;
    sb.boot_201().await;
    seen_on(&a, "SB", "node-b").await;

    let url = format!("http://{}/api/v0/commands?wait=true", a.api);
    let body = json!({"select": {"connected": true, "idPrefix": "S"}, "operation": "ocpp",
        "action": "TriggerMessage",
        "payload": {"1.6": {"requestedMessage": "StatusNotification", "connectorId": 1},
                    "2.0.1": {"requestedMessage": "StatusNotification"}}});
    let waiting = actix_web::rt::spawn(async move { http("POST", url, None, Some(body)).await });
    for cs in [&mut sa, &mut sb] {
        let (id, _) = cs.expect_call("TriggerMessage").await;
        cs.reply(&id, json!({"status": "Accepted"})).await;
    }
    let (status, reply) = waiting.await.expect("request task");
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["commands"], 2, "{reply}");
    assert_eq!(reply["counts"], json!({"Accepted": 2}), "{reply}");
    assert_eq!(reply["complete"], true, "{reply}");
    // The aggregate view reads the same from the other node.
    let batch = reply["batchId"].as_str().unwrap().to_owned();
    let (_, view) = b.get(&format!("/api/v0/commands/{batch}")).await;
    assert_eq!(view["counts"], json!({"Accepted": 2}), "{view}");
    drop(a);
    drop(b);
    drop_keyspace(&uri, keyspace).await;
}
