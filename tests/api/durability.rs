//! Acknowledged writes survive a restart, and a `kill -9` right after the
//! acknowledgement.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::json;

use crate::common::{
    auth_body, keyspace_for, start_in, test_certificate, token_body, Keyspace, TestServer,
};

#[actix_web::test]
async fn writes_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let keyspace = Keyspace::for_dir(dir.path());
    let s = TestServer::on(dir, keyspace).await;
    write_everything(&s).await;
    let TestServer {
        app, dir, keyspace, ..
    } = s;
    app.stop().await;

    let s = TestServer::on(dir, keyspace).await;
    read_everything(&s).await;
}

#[actix_web::test]
async fn writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base) = spawn_server(dir.path());
    let s = TestServer {
        base,
        app: placeholder_app(dir.path()).await,
        keyspace: Keyspace::for_dir(dir.path()),
        dir,
    };
    write_everything(&s).await;
    child.kill().expect("SIGKILL"); // no shutdown, no flush: only what was durable remains
    child.wait().expect("reaped");

    let (mut child, base) = spawn_server(s.dir.path());
    let s = TestServer { base, ..s };
    read_everything(&s).await;
    child.kill().ok();
    child.wait().ok();
}

async fn write_everything(s: &TestServer) {
    assert_eq!(
        s.post("/api/v0/cs/CS001", &auth_body("secret"))
            .await
            .status,
        201
    );
    assert_eq!(
        s.post(
            "/api/v0/cs/CS001/reconfigure",
            &json!({"HeartbeatInterval": "60"})
        )
        .await
        .status,
        200
    );
    assert_eq!(
        s.post(
            "/api/v0/cs/CS001/trigger",
            &json!({"trigger": "StatusNotification"})
        )
        .await
        .status,
        200
    );
    assert_eq!(s.post("/api/v0/token", &token_body("T1")).await.status, 201);
    let (pem, _) = test_certificate();
    assert_eq!(
        s.post("/api/v0/certificate", &json!({ "certificate": pem }))
            .await
            .status,
        201
    );
    assert_eq!(
        s.post("/api/v0/location/L1", &crate::common::location_body())
            .await
            .status,
        201
    );
}

async fn read_everything(s: &TestServer) {
    assert_eq!(s.get("/api/v0/cs/CS001/auth").await.status, 200);
    let station = s.get("/api/v0/cs/CS001").await.body;
    let pending = &station["pendingCommands"];
    assert_eq!(pending[0]["payload"]["value"], "60", "{pending}");
    assert_eq!(pending[1]["payload"]["trigger"], "StatusNotification");
    assert_eq!(s.get("/api/v0/token/T1").await.status, 200);
    let (_, hash) = test_certificate();
    assert_eq!(
        s.get(&format!("/api/v0/certificate/{hash}")).await.status,
        200
    );
    assert_eq!(s.get("/api/v0/location/L1").await.status, 200);
}

/// Runs the real binary on port 0 and reads the bound address from its log.
fn spawn_server(dir: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_voltgate"))
        .args([
            "serve",
            "--api-listen",
            "127.0.0.1:0",
            "--ws-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir)
        // With VOLTGATE_SCYLLA_URI set (inherited), the child runs on the
        // keyspace an in-process server on `dir` would use.
        .env("VOLTGATE_SCYLLA_KEYSPACE", keyspace_for(dir))
        .env("VOLTGATE_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("voltgate binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("server exited before listening")
            .expect("log line");
        if let Some(rest) = line.split("api_addr=").nth(1) {
            break rest.split_whitespace().next().expect("address").to_owned();
        }
    };
    // Keep draining the log so the child never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, format!("http://{addr}"))
}

/// `TestServer` wants an in-process app; for the child-process test it is an
/// unrelated one on its own directory, never used for requests.
async fn placeholder_app(dir: &std::path::Path) -> voltgate::App {
    start_in(voltgate::Config::for_tests(dir.join("unused"))).await
}
