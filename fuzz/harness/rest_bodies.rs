//! One fuzz input as the body of every REST call that takes one, through
//! the real server (routes, JSON extraction, validation, handlers, the redb
//! store) started once on 127.0.0.1: no answer may be a 5xx, none may take
//! longer than the read timeout. Shared by the fuzz target and the
//! regression test.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

/// Every REST call with a request body.
const ROUTES: [&str; 9] = [
    "/api/v0/cs/FUZZ2",
    "/api/v0/cs/FUZZ1/reconfigure",
    "/api/v0/cs/FUZZ1/certificates",
    "/api/v0/cs/FUZZ1/trigger",
    "/api/v0/cs/FUZZ1/setchargingprofile",
    "/api/v0/token",
    "/api/v0/certificate",
    "/api/v0/register",
    "/api/v0/location/L1",
];

/// Longest an answer may take.
const PATIENCE: Duration = Duration::from_secs(10);

/// The server, started on first use and kept for the whole run.
fn server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let dir = tempfile::tempdir().expect("temp dir");
            let config = voltgate::Config::for_tests(dir.path());
            actix_rt::System::new().block_on(async move {
                let mut app = voltgate::start(config).await.expect("voltgate starts");
                tx.send(app.api_addr()).expect("fuzzer waits");
                let _ = app.wait().await;
                drop(dir);
            });
        });
        let addr = rx.recv().expect("server address");
        let body = br#"{"securityProfile":0,"base64SHA256Password":"K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols="}"#;
        let status = post(addr, "/api/v0/cs/FUZZ1", body);
        assert_eq!(status, 201, "test station registered");
        addr
    })
}

/// POSTs `body` to `path`; the status code.
fn post(addr: SocketAddr, path: &str, body: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: fuzz\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("write head");
    stream.write_all(body).expect("write body");
    let mut answer = Vec::new();
    if let Err(e) = stream.read_to_end(&mut answer) {
        panic!("no answer from {path} within {PATIENCE:?}: {e}");
    }
    let line = String::from_utf8_lossy(&answer);
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer from {path}: {line:?}"))
}

/// Runs one input; panics (the fuzzer's finding) on a 5xx or a hang.
pub fn run(data: &[u8]) {
    let addr = server();
    for path in ROUTES {
        let status = post(addr, path, data);
        assert!(
            status < 500,
            "{path} answered {status} to {:?}",
            String::from_utf8_lossy(data)
        );
    }
}
