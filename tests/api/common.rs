//! Starting the real server on 127.0.0.1 (random port, temporary data dir)
//! and talking to it with a real HTTP client.

use std::path::Path;

use awc::http::Method;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use voltgate::store::scylla::{ScyllaSettings, ScyllaStore};
use voltgate::{App, Config};

/// A running server with its own data directory.
pub struct TestServer {
    /// The app.
    pub app: App,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Kept so the directory lives as long as the server.
    pub dir: TempDir,
    /// Kept so the server's ScyllaDB keyspace (if any) lives as long as the server.
    pub keyspace: Keyspace,
}

/// When set to `host:port[,host:port]`, every test server runs on that
/// ScyllaDB (or Cassandra) node, in a keyspace of its own.
pub const SCYLLA_URI_VAR: &str = "VOLTGATE_SCYLLA_URI";

/// The keyspace of the server on `dir`: one per directory, so a restart on
/// the same directory finds the same data.
pub fn keyspace_for(dir: &Path) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in dir.as_os_str().as_encoded_bytes() {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("vg_it_{hash:016x}")
}

fn scylla_settings(dir: &Path) -> Option<ScyllaSettings> {
    let uri = std::env::var(SCYLLA_URI_VAR).ok()?;
    let nodes = uri.split(',').map(str::to_owned).collect();
    let mut settings = ScyllaSettings::new(nodes, keyspace_for(dir));
    // A shared test node applies schema slowly; requests get room.
    settings.request_timeout_ms = 20_000;
    Some(settings)
}

/// Drops a test server's keyspace when the test is done with it.
pub struct Keyspace(Option<ScyllaSettings>);

impl Keyspace {
    /// The keyspace of the server on `dir` (nothing without ScyllaDB).
    pub fn for_dir(dir: &Path) -> Keyspace {
        Keyspace(scylla_settings(dir))
    }
}

impl Drop for Keyspace {
    fn drop(&mut self) {
        let Some(settings) = self.0.take() else {
            return;
        };
        // Drop runs outside async; a thread of its own gets a runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let store = ScyllaStore::connect(&settings).await?;
                store.drop_keyspace().await
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop a test keyspace: {e}");
        }
    }
}

/// Starts a server with test settings in a fresh directory.
pub async fn start() -> TestServer {
    start_with(|_| {}).await
}

/// Starts a server with test settings changed by `adjust`.
pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
    let dir = tempfile::tempdir().expect("temp dir");
    let keyspace = Keyspace::for_dir(dir.path());
    let mut config = config_in(dir.path());
    adjust(&mut config);
    let app = start_in(config).await;
    let base = format!("http://{}", app.api_addr());
    TestServer {
        app,
        base,
        dir,
        keyspace,
    }
}

impl TestServer {
    /// Starts a server on `dir` and its keyspace: a restart when a server
    /// ran there before.
    pub async fn on(dir: TempDir, keyspace: Keyspace) -> TestServer {
        TestServer::on_with(dir, keyspace, |_| {}).await
    }

    /// [`TestServer::on`] with test settings changed by `adjust`.
    pub async fn on_with(
        dir: TempDir,
        keyspace: Keyspace,
        adjust: impl FnOnce(&mut Config),
    ) -> TestServer {
        let mut config = config_in(dir.path());
        adjust(&mut config);
        let app = start_in(config).await;
        TestServer {
            base: format!("http://{}", app.api_addr()),
            app,
            dir,
            keyspace,
        }
    }
}

/// Starts the app as `main` does.
pub async fn start_in(config: Config) -> App {
    voltgate::start(config).await.expect("server starts")
}

/// Test settings on `dir`: its redb file, or its own keyspace when
/// `VOLTGATE_SCYLLA_URI` is set.
pub fn config_in(dir: &Path) -> Config {
    let mut config = Config::for_tests(dir);
    if let Some(settings) = scylla_settings(dir) {
        config.scylla = settings;
    }
    config
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// The body as JSON (`Null` when empty).
    pub body: Value,
    /// The Location header, when present.
    pub location: Option<String>,
    /// The X-Next-Cursor header of a full list page, when present.
    pub next_cursor: Option<String>,
    /// Every header, names in lower case.
    pub headers: Vec<(String, String)>,
}

impl Reply {
    /// The header `name` (lower case), when present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Asserts a `{"status","error"}` failure with `code` whose error mentions `needle`.
    #[track_caller]
    pub fn assert_error(&self, code: u16, needle: &str) {
        assert_eq!(self.status, code, "{self:?}");
        let error = self.body["error"].as_str().unwrap_or_default();
        assert!(self.body["status"].is_string(), "no status in {self:?}");
        assert!(
            error.contains(needle),
            "error {error:?} does not mention {needle:?}"
        );
    }
}

impl TestServer {
    /// Sends `body` (raw bytes) with `method` to `path`.
    pub async fn send(&self, method: Method, path: &str, body: impl Into<Vec<u8>>) -> Reply {
        self.send_with(method, path, body, &[("content-type", "application/json")])
            .await
    }

    /// Sends `body` with `method` to `path` and these headers.
    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        body: impl Into<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let client = awc::Client::default();
        let mut request = client.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.insert_header((*name, *value));
        }
        let mut response = request.send_body(body.into()).await.expect("request sent");
        let bytes = response
            .body()
            .limit(16 * 1024 * 1024)
            .await
            .expect("body read");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
        };
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        Reply {
            status: response.status().as_u16(),
            location: header("location"),
            next_cursor: header("x-next-cursor"),
            headers,
            body,
        }
    }

    /// POSTs JSON.
    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::POST, path, serde_json::to_vec(body).expect("json"))
            .await
    }

    /// POSTs raw text.
    pub async fn post_raw(&self, path: &str, body: &str) -> Reply {
        self.send(Method::POST, path, body.as_bytes().to_vec())
            .await
    }

    /// GETs.
    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, Vec::new()).await
    }

    /// DELETEs.
    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, Vec::new()).await
    }

    /// Registers a station with profile 0 and password `secret`.
    pub async fn register(&self, id: &str) {
        let reply = self
            .post(&format!("/api/v0/cs/{id}"), &auth_body("secret"))
            .await;
        assert_eq!(reply.status, 201, "{reply:?}");
    }
}

/// base64(SHA-256(password)), as the API stores it.
pub fn password_hash(password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(password.as_bytes()))
}

/// A profile 0 registration body.
pub fn auth_body(password: &str) -> Value {
    json!({"securityProfile": 0, "base64SHA256Password": password_hash(password)})
}

/// A valid token body.
pub fn token_body(uid: &str) -> Value {
    json!({
        "countryCode": "GB", "partyId": "TWK", "type": "RFID", "uid": uid,
        "contractId": "GB-TWK-012345678", "issuer": "Thoughtworks", "valid": true,
        "cacheMode": "ALWAYS"
    })
}

/// A valid location body.
pub fn location_body() -> Value {
    json!({
        "country_code": "GB", "party_id": "TWK", "name": "Depot", "address": "1 High Street",
        "city": "London", "postal_code": "N1 1AA", "country": "GBR",
        "coordinates": {"latitude": "51.5072", "longitude": "-0.1276"},
        "parking_type": "PARKING_LOT",
        "evses": [{"uid": "E1", "evse_id": "GB*TWK*E1", "connectors": [
            {"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_3_PHASE",
             "max_voltage": 400, "max_amperage": 32}
        ]}]
    })
}

/// A valid OCPP 2.0.1 ChargingProfileType.
pub fn charging_profile_body(id: i64) -> Value {
    json!({
        "id": id, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": [{"id": 1, "chargingRateUnit": "W", "startSchedule": "2026-11-21T00:00:00Z",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11000.0}]}]
    })
}

/// The test certificate and its MaEVe hash (computed with openssl).
pub fn test_certificate() -> (String, String) {
    let pem = include_str!("../fixtures/cert.pem").to_owned();
    let hash = include_str!("../fixtures/cert.pem.hash").trim().to_owned();
    (pem, hash)
}
