//! Criterion benchmarks of the OCPP message path: frame parse/serialize,
//! schema validation, one Heartbeat through the session state machine with
//! its handler and metrics, a command routed registry → station actor →
//! outbound frame, the cost of recording one message metric, and planning a
//! command (raw or typed) into its CALL frame.
//! Figures and the machine they were taken on: `benches/README.md`.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use actix_codec::{Decoder, Encoder};
use actix_web::error::PayloadError;
use actix_web::web::{Bytes, BytesMut};
use actix_web_actors::ws;
use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use voltgate::metrics::{self, Flow};
use voltgate::ocpp::frame::{self, MessageKind};
use voltgate::ocpp::schema::{self, Direction};
use voltgate::ocpp::{actions, Version};
use voltgate::station::actor::{Engine, SendCommand, StationActor};
use voltgate::station::handlers::{self, Env, Station};
use voltgate::station::operations::work_item::WorkItem;
use voltgate::station::session::{Effect, Limits, Session};
use voltgate::station::traffic;
use voltgate::store::redb::RedbStore;
use voltgate::store::{ChargeStationAuth, SecurityProfile, StationRuntime, Store, TriggerMessage};
use voltgate::supervisor::Registry;

const HEARTBEAT: &str = r#"[2,"19223201","Heartbeat",{}]"#;
const BOOT: &str = r#"[2,"19223202","BootNotification",{"reason":"PowerUp","chargingStation":{"model":"SingleSocketCharger","vendorName":"VendorX","serialNumber":"SN-000001","firmwareVersion":"1.2.3"}}]"#;

/// A 2.0.1 MeterValues CALL with ten sampled values, as a busy AC station sends.
fn meter_values() -> String {
    let measurands = [
        ("Energy.Active.Import.Register", None, 12345.6),
        ("Power.Active.Import", None, 11000.0),
        ("Current.Import", Some("L1"), 16.0),
        ("Current.Import", Some("L2"), 16.1),
        ("Current.Import", Some("L3"), 15.9),
        ("Voltage", Some("L1-N"), 230.1),
        ("Voltage", Some("L2-N"), 229.8),
        ("Voltage", Some("L3-N"), 230.4),
        ("SoC", None, 57.0),
        ("Frequency", None, 50.01),
    ];
    let sampled: Vec<Value> = measurands
        .iter()
        .map(|(measurand, phase, value)| {
            let mut v =
                json!({"value": value, "measurand": measurand, "context": "Sample.Periodic"});
            if let Some(phase) = phase {
                v["phase"] = json!(phase);
            }
            v
        })
        .collect();
    json!([2, "19223203", "MeterValues", {"evseId": 1, "meterValue": [{"timestamp": "2026-11-21T10:00:00Z", "sampledValue": sampled}]}])
        .to_string()
}

fn payload_of(text: &str) -> Value {
    match frame::parse(text) {
        Ok(frame::Frame::Call { payload, .. }) => payload,
        other => panic!("not a CALL: {other:?}"),
    }
}

fn frames(c: &mut Criterion) {
    let meter = meter_values();
    let mut group = c.benchmark_group("frame");
    for (name, text) in [
        ("heartbeat", HEARTBEAT),
        ("boot_notification", BOOT),
        ("meter_values_10", meter.as_str()),
    ] {
        group.bench_function(format!("parse/{name}"), |b| {
            b.iter(|| frame::parse(black_box(text)))
        });
        let payload = payload_of(text);
        group.bench_function(format!("serialize_call/{name}"), |b| {
            b.iter(|| frame::call(black_box("19223201"), "Action", black_box(&payload)))
        });
    }
    let answer = json!({"currentTime": "2026-11-21T10:00:00.000Z"});
    group.bench_function("serialize_result/heartbeat", |b| {
        b.iter(|| frame::call_result(black_box("19223201"), black_box(&answer)))
    });
    group.finish();
}

fn schemas(c: &mut Criterion) {
    let meter = payload_of(&meter_values());
    let boot = payload_of(BOOT);
    schema::warm_up(
        Version::V201,
        ["BootNotification", "MeterValues", "Heartbeat"],
    );
    let mut group = c.benchmark_group("schema");
    for (action, payload) in [
        ("Heartbeat", json!({})),
        ("BootNotification", boot),
        ("MeterValues", meter),
    ] {
        group.bench_function(format!("check/{action}"), |b| {
            b.iter(|| {
                schema::check(
                    Version::V201,
                    action,
                    Direction::Request,
                    black_box(&payload),
                )
            })
        });
    }
    group.finish();
}

/// Polls a future that never waits (the Heartbeat handler touches no store).
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the handler waited on something"),
    }
}

fn session_heartbeat(c: &mut Criterion) {
    // With the server's recorder installed, so recording is measured too.
    metrics::prometheus();
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(dir.path()).expect("store"));
    let env = Arc::new(Env {
        store,
        heartbeat_interval_secs: 300,
        pending_boot_interval_secs: 15,
        ca: None,
        // Bounded by the bench's few connectors; nothing takes from it here.
        statuses: Default::default(),
        remote_auth: None,
        transactions: None,
    });
    let station = Arc::new(Station::new(
        "BENCH-CS".into(),
        Version::V201,
        StationRuntime::default(),
    ));
    let mut session: Session<()> = Session::new(Version::V201, Limits::default());
    session.set_booted();
    schema::warm_up(Version::V201, ["Heartbeat"]);
    c.bench_function("session/heartbeat_full", |b| {
        b.iter(|| {
            // As the actor does it: parse + validate, handle, answer, record.
            let mut effects = Vec::new();
            session.handle_text(Instant::now(), black_box(HEARTBEAT), &mut effects);
            let mut sent = None;
            for effect in effects {
                traffic::record(Version::V201, &effect);
                if let Effect::Handle {
                    id,
                    action,
                    payload,
                } = effect
                {
                    let label = actions::label(Version::V201, &action);
                    let started = Instant::now();
                    let handled = ready(handlers::handle(
                        env.clone(),
                        station.clone(),
                        action,
                        payload,
                        Utc::now(),
                    ));
                    metrics::handler_duration(Version::V201, label, started.elapsed());
                    let mut answers = Vec::new();
                    session.handle_reply(&id, handled.map(|h| h.response), &mut answers);
                    for answer in answers {
                        traffic::record(Version::V201, &answer);
                        if let Effect::Send { text, .. } = answer {
                            sent = Some(text);
                        }
                    }
                }
            }
            sent.expect("a CALLRESULT")
        })
    });
    c.bench_function("metrics/record_one_message", |b| {
        b.iter(|| {
            metrics::ocpp_message(
                Flow::Received,
                Version::V201,
                MessageKind::Call,
                black_box("Heartbeat"),
            )
        })
    });
}

/// A client-side (masked) WebSocket text frame, as a station sends it.
fn station_frame(codec: &mut actix_http::ws::Codec, text: &str) -> Result<Bytes, PayloadError> {
    let mut buffer = BytesMut::new();
    codec
        .encode(
            actix_http::ws::Message::Text(text.to_owned().into()),
            &mut buffer,
        )
        .expect("encode");
    Ok(buffer.freeze())
}

/// A station actor on an in-memory WebSocket: frames in through a channel,
/// the actor's outbound text frames decoded and handed out on another.
struct MemoryStation {
    inbound: mpsc::UnboundedSender<Result<Bytes, PayloadError>>,
    outbound: mpsc::UnboundedReceiver<String>,
    codec: actix_http::ws::Codec,
}

impl MemoryStation {
    fn start(actor: StationActor) -> Self {
        let (inbound, rx) = mpsc::unbounded_channel();
        let input = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        let mut output = Box::pin(ws::WebsocketContext::create(actor, input));
        let (texts, outbound) = mpsc::unbounded_channel();
        // Polling the output stream is what runs the actor: pump it forever.
        actix::spawn(async move {
            let mut codec = actix_http::ws::Codec::new().client_mode();
            let mut buffer = BytesMut::new();
            while let Some(Ok(chunk)) = output.next().await {
                buffer.extend_from_slice(&chunk);
                while let Ok(Some(frame)) = codec.decode(&mut buffer) {
                    if let actix_http::ws::Frame::Text(bytes) = frame {
                        let text = String::from_utf8(bytes.to_vec()).expect("UTF-8");
                        if texts.send(text).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        MemoryStation {
            inbound,
            outbound,
            codec: actix_http::ws::Codec::new().client_mode(),
        }
    }

    fn send(&mut self, text: &str) {
        let frame = station_frame(&mut self.codec, text);
        self.inbound.send(frame).expect("actor alive");
    }

    async fn next_text(&mut self) -> Value {
        let text = self.outbound.recv().await.expect("actor alive");
        serde_json::from_str(&text).expect("JSON frame")
    }
}

fn command_routing(c: &mut Criterion) {
    let system = actix::System::new();
    let dir = tempfile::tempdir_in(fast_dir()).expect("temp dir");
    let id = "BENCH-CS";
    let (registry, store, mut station) = system.block_on(async {
        let store: Arc<dyn Store> = Arc::new(RedbStore::open(dir.path()).expect("store"));
        let auth = ChargeStationAuth {
            security_profile: SecurityProfile::UnsecuredBasicAuth,
            base64_sha256_password: Some("x".into()),
            invalid_username_allowed: false,
        };
        store
            .register_station(id, auth, Utc::now())
            .await
            .expect("register");
        let registry = Registry::new(8);
        let env = Arc::new(Env {
            store: store.clone(),
            heartbeat_interval_secs: 300,
            pending_boot_interval_secs: 15,
            ca: None,
            statuses: Default::default(),
            remote_auth: None,
            transactions: None,
        });
        let engine = Engine::new(
            env,
            Arc::new(registry.clone()),
            Limits::default(),
            Duration::from_secs(3600),
            1 << 20,
        );
        // Accepted on an earlier connection: goes on without booting once it
        // has sent its first message.
        let actor = StationActor::new(
            Arc::new(engine),
            id.into(),
            Version::V201,
            StationRuntime::default(),
            true,
        );
        let mut station = MemoryStation::start(actor);
        station.send(HEARTBEAT);
        assert_eq!(station.next_text().await[0], 3, "Heartbeat answered");
        while !registry.is_connected(id).await {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        (registry, store, station)
    });
    c.bench_function("command/route_to_outbound_frame", |b| {
        b.iter_custom(|iters| {
            system.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let trigger = WorkItem::Trigger {
                        trigger: TriggerMessage::StatusNotification,
                        evse_id: None,
                        connector_id: None,
                    };
                    let command = trigger.command(id, Utc::now());
                    store.create_command(command.clone()).await.expect("stored");
                    let started = Instant::now();
                    registry
                        .send_command(
                            id,
                            SendCommand {
                                command,
                                waiter: None,
                            },
                        )
                        .await
                        .expect("routed");
                    let call = station.next_text().await;
                    total += started.elapsed();
                    assert_eq!(call[2], "TriggerMessage", "{call}");
                    let answer = json!([3, call[1], {"status": "Accepted"}]).to_string();
                    station.send(&answer);
                }
                total
            })
        })
    });
}

/// Where the benchmark's store lives: tmpfs when there is one, so the
/// figures are about voltgate and not the disk's fsync.
fn fast_dir() -> std::path::PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    }
}

/// Planning commands: a raw TriggerMessage checked against its schema and
/// written as a CALL frame, and a typed reset translated for each version.
fn command_planning(c: &mut Criterion) {
    use voltgate::station::operations::{self, raw, reset};
    let mut group = c.benchmark_group("command_planning");
    group.bench_function("raw TriggerMessage to frame", |b| {
        b.iter(|| {
            let payload = json!({"requestedMessage": "StatusNotification", "evse": {"id": 1, "connectorId": 1}});
            let call = raw::plan(Version::V201, black_box("TriggerMessage"), payload).expect("valid");
            black_box(frame::call("1", call.action, &call.payload))
        })
    });
    let reset: reset::Reset = serde_json::from_value(json!({"type": "Hard"})).expect("body");
    for version in [Version::V16, Version::V201] {
        group.bench_function(format!("typed reset to {} frame", version.label()), |b| {
            b.iter(|| {
                let call = operations::plan(black_box(&reset), version, &mut || 1).expect("valid");
                black_box(frame::call("1", call.action, &call.payload))
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    frames,
    schemas,
    session_heartbeat,
    command_routing,
    command_planning
);
criterion_main!(benches);
