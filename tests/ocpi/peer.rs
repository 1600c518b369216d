//! The independent eMSP: `tests/ocpi_peer/emsp.py` (built on the PyPI OCPI
//! library `extrawest-ocpi`) run as a process on 127.0.0.1. Its Python
//! environment is made on first use under `target/ocpi-peer-venv` from the
//! pinned `requirements.txt`, so the README's test command needs nothing
//! installed beforehand but Python 3 and access to PyPI.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

/// Guards the one-time environment set-up across the tests of this binary.
static VENV: Mutex<Option<Result<PathBuf, String>>> = Mutex::new(None);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python of the peer's environment, made when missing (or stale).
fn python() -> Result<PathBuf, String> {
    let mut guard = VENV.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(made) = guard.as_ref() {
        return made.clone();
    }
    let made = make_venv();
    *guard = Some(made.clone());
    made
}

fn make_venv() -> Result<PathBuf, String> {
    let requirements = root().join("tests/ocpi_peer/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).map_err(|e| e.to_string())?;
    let venv = root().join("target/ocpi-peer-venv");
    let python = venv.join("bin/python");
    let stamp = venv.join("requirements.installed");
    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(python);
    }
    let run = |cmd: &mut Command, what: &str| -> Result<(), String> {
        let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{what} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "python3 -m venv",
    )?;
    run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&requirements),
        "pip install -r tests/ocpi_peer/requirements.txt",
    )?;
    std::fs::write(&stamp, wanted).map_err(|e| e.to_string())?;
    Ok(python)
}

/// A running eMSP peer; killed when dropped.
pub struct Peer {
    child: Child,
    /// Its origin, `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Peer {
    /// Starts the peer; panics with the reason when it cannot.
    pub fn start() -> Peer {
        let python = python().unwrap_or_else(|why| panic!("the OCPI peer's environment: {why}"));
        let port = free_port();
        let script = root().join("tests/ocpi_peer/emsp.py");
        let mut child = Command::new(python)
            .arg(&script)
            .args(["--port", &port.to_string(), "--exit-with-stdin"])
            .current_dir(Path::new(&root()).join("tests/ocpi_peer"))
            // Its stdin closes with this process: a peer never outlives a test.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the peer starts");
        let stdout = child.stdout.take().expect("peer stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(base) = line.strip_prefix("READY ") {
                    let _ = tx.send(base.trim().to_owned());
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("the OCPI peer did not get ready on port {port}"));
        Peer { child, base }
    }

    /// Calls a control endpoint (`POST /control/{what}`) and returns its JSON.
    pub async fn control(&self, what: &str, body: Value) -> Value {
        let mut response = awc::Client::builder()
            .timeout(Duration::from_secs(60))
            .finish()
            .post(format!("{}/control/{what}", self.base))
            .send_json(&body)
            .await
            .unwrap_or_else(|e| panic!("control {what}: {e}"));
        let bytes = response
            .body()
            .limit(16 * 1024 * 1024)
            .await
            .expect("control body");
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("control {what}: {}", String::from_utf8_lossy(&bytes)))
    }

    /// What the peer's OCPI side received from index `since` on.
    pub async fn received(&self, since: usize) -> Value {
        self.control_get(&format!("received?since={since}")).await
    }

    /// A control GET (`GET /control/{what}`).
    pub async fn control_get(&self, what: &str) -> Value {
        let mut response = awc::Client::default()
            .get(format!("{}/control/{what}", self.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("control {what}: {e}"));
        let bytes = response
            .body()
            .limit(16 * 1024 * 1024)
            .await
            .expect("control body");
        serde_json::from_slice(&bytes).expect("control JSON")
    }

    /// The peer's registration state.
    pub async fn state(&self) -> Value {
        self.control_get("state").await
    }
}
