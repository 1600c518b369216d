//! Handler tests against a real (redb) store: every handled action answers
//! within the official response schema, and what it stores is there.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{handle, BootVerdict, Env, Station};
use crate::ocpp::schema::{check, Direction};
use crate::ocpp::Version;
use crate::station::operations::work_item::WorkItem;
use crate::store::redb::RedbStore;
use crate::store::*;

struct Fixture {
    env: Arc<Env>,
    _dir: tempfile::TempDir,
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000, 0).expect("time")
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("dir");
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(dir.path()).expect("store"));
    let auth = ChargeStationAuth {
        security_profile: SecurityProfile::UnsecuredBasicAuth,
        base64_sha256_password: Some("x".into()),
        invalid_username_allowed: false,
    };
    store
        .register_station("CS1", auth, now())
        .await
        .expect("register");
    let env = Env {
        store,
        heartbeat_interval_secs: 300,
        pending_boot_interval_secs: 15,
        ca: None,
        statuses: Default::default(),
        remote_auth: None,
        transactions: None,
    };
    Fixture {
        env: Arc::new(env),
        _dir: dir,
    }
}

impl Fixture {
    fn station(&self, version: Version) -> Arc<Station> {
        Arc::new(Station::new(
            "CS1".into(),
            version,
            StationRuntime::default(),
        ))
    }

    /// Handles `action` and checks request and response against the schemas.
    async fn call(&self, station: &Arc<Station>, action: &str, payload: Value) -> super::Handled {
        let version = station.version;
        assert_eq!(
            check(version, action, Direction::Request, &payload),
            Ok(()),
            "test payload of {action}"
        );
        let handled = handle(
            self.env.clone(),
            station.clone(),
            action.into(),
            payload,
            now(),
        )
        .await
        .unwrap_or_else(|e| panic!("{action}: {e:?}"));
        let valid = check(version, action, Direction::Response, &handled.response);
        assert_eq!(
            valid,
            Ok(()),
            "{version:?} {action} answered {}",
            handled.response
        );
        handled
    }

    async fn token(&self, uid: &str, valid: bool) {
        self.env
            .store
            .put_token(Token {
                country_code: "GB".into(),
                party_id: "TWK".into(),
                token_type: TokenType::Rfid,
                uid: uid.into(),
                contract_id: "GBTWK012345678V".into(),
                visual_number: None,
                issuer: "I".into(),
                group_id: Some("G1".into()),
                valid,
                language_code: None,
                cache_mode: CacheMode::Always,
                last_updated: None,
            })
            .await
            .expect("token");
    }
}

fn v16_meter(ts: &str, wh: &str) -> Value {
    json!([{"timestamp": ts, "sampledValue": [{"value": wh, "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}])
}

#[tokio::test]
async fn every_v16_action_answers_within_the_schema() {
    let fx = fixture().await;
    fx.token("TAG1", true).await;
    let s = fx.station(Version::V16);
    let pnc = "org.openchargealliance.iso15118pnc";
    let cases = [
        (
            "BootNotification",
            json!({"chargePointVendor": "Acme", "chargePointModel": "One"}),
        ),
        ("Heartbeat", json!({})),
        (
            "StatusNotification",
            json!({"connectorId": 1, "errorCode": "NoError", "status": "Available"}),
        ),
        ("Authorize", json!({"idTag": "TAG1"})),
        (
            "MeterValues",
            json!({"connectorId": 1, "meterValue": v16_meter("2026-11-21T10:00:00Z", "10")}),
        ),
        (
            "DataTransfer",
            json!({"vendorId": "acme", "messageId": "x"}),
        ),
        (
            "DataTransfer",
            json!({"vendorId": pnc, "messageId": "Authorize", "data": "{\"idToken\":{\"idToken\":\"TAG1\",\"type\":\"eMAID\"}}"}),
        ),
        (
            "DataTransfer",
            json!({"vendorId": pnc, "messageId": "SignCertificate", "data": "{\"csr\":\"x\"}"}),
        ),
        (
            "DataTransfer",
            json!({"vendorId": pnc, "messageId": "GetCertificateStatus", "data": "{}"}),
        ),
        (
            "DataTransfer",
            json!({"vendorId": pnc, "messageId": "Get15118EVCertificate", "data": "{}"}),
        ),
        (
            "DataTransfer",
            json!({"vendorId": pnc, "messageId": "Nope", "data": "{}"}),
        ),
        (
            "SecurityEventNotification",
            json!({"type": "FirmwareUpdated", "timestamp": "2026-11-21T10:00:00Z"}),
        ),
        ("FirmwareStatusNotification", json!({"status": "Installed"})),
        (
            "SignedFirmwareStatusNotification",
            json!({"status": "Installed", "requestId": 1}),
        ),
        (
            "DiagnosticsStatusNotification",
            json!({"status": "Uploaded"}),
        ),
        (
            "LogStatusNotification",
            json!({"status": "Uploaded", "requestId": 1}),
        ),
        (
            "SignCertificate",
            json!({"csr": "-----BEGIN CERTIFICATE REQUEST-----"}),
        ),
    ];
    for (action, payload) in cases {
        fx.call(&s, action, payload).await;
    }
    let runtime = fx
        .env
        .store
        .runtime("CS1")
        .await
        .unwrap()
        .expect("runtime stored");
    assert_eq!(runtime.connectors["1"].status, "Available");
    assert_eq!(runtime.firmware_status.as_deref(), Some("Installed"));
    assert_eq!(runtime.diagnostics_status.as_deref(), Some("Uploaded"));
    assert_eq!(runtime.security_events[0].kind, "FirmwareUpdated");
    assert_eq!(
        runtime.boot.as_ref().map(|b| b.vendor.as_str()),
        Some("Acme")
    );
}

#[tokio::test]
async fn pnc_authorize_answers_from_the_token_store() {
    let fx = fixture().await;
    fx.token("EMAID1", true).await;
    let s = fx.station(Version::V16);
    let data = |id: &str| {
        json!({"vendorId": "org.openchargealliance.iso15118pnc", "messageId": "Authorize",
        "data": json!({"idToken": {"idToken": id, "type": "eMAID"}}).to_string()})
    };
    let answer = fx.call(&s, "DataTransfer", data("EMAID1")).await.response;
    assert_eq!(answer["status"], "Accepted");
    let inner: Value = serde_json::from_str(answer["data"].as_str().unwrap()).unwrap();
    assert_eq!(inner["idTokenInfo"]["status"], "Accepted");
    let answer = fx.call(&s, "DataTransfer", data("NOPE")).await.response;
    let inner: Value = serde_json::from_str(answer["data"].as_str().unwrap()).unwrap();
    assert_eq!(inner["idTokenInfo"]["status"], "Unknown");
    let signed = fx.call(&s, "DataTransfer", json!({"vendorId": "org.openchargealliance.iso15118pnc", "messageId": "SignCertificate", "data": "{}"})).await.response;
    let inner: Value = serde_json::from_str(signed["data"].as_str().unwrap()).unwrap();
    assert_eq!(
        inner["status"], "Rejected",
        "no CA configured: a failure, not an invented success"
    );
}

#[tokio::test]
async fn every_v201_action_answers_within_the_schema() {
    let fx = fixture().await;
    fx.token("TOK1", true).await;
    let s = fx.station(Version::V201);
    let id_token = json!({"idToken": "TOK1", "type": "ISO14443"});
    let sampled = json!([{"timestamp": "2026-11-21T10:00:00Z", "sampledValue": [{"value": 1.5, "unitOfMeasure": {"unit": "kWh", "multiplier": 3}}]}]);
    let cases = [
        (
            "BootNotification",
            json!({"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V", "serialNumber": "S1", "firmwareVersion": "1.0"}}),
        ),
        ("Heartbeat", json!({})),
        (
            "StatusNotification",
            json!({"timestamp": "2026-11-21T10:00:00Z", "connectorStatus": "Occupied", "evseId": 1, "connectorId": 2}),
        ),
        ("Authorize", json!({"idToken": id_token})),
        (
            "TransactionEvent",
            json!({"eventType": "Started", "timestamp": "2026-11-21T10:00:00Z", "triggerReason": "Authorized", "seqNo": 0, "transactionInfo": {"transactionId": "TX1"}, "idToken": id_token, "evse": {"id": 1, "connectorId": 2}}),
        ),
        (
            "TransactionEvent",
            json!({"eventType": "Updated", "timestamp": "2026-11-21T10:05:00Z", "triggerReason": "MeterValuePeriodic", "seqNo": 1, "transactionInfo": {"transactionId": "TX1"}, "meterValue": sampled}),
        ),
        ("MeterValues", json!({"evseId": 1, "meterValue": sampled})),
        (
            "NotifyReport",
            json!({"requestId": 1, "generatedAt": "2026-11-21T10:00:00Z", "seqNo": 0}),
        ),
        (
            "NotifyEvent",
            json!({"generatedAt": "2026-11-21T10:00:00Z", "seqNo": 0, "eventData": [{"eventId": 1, "timestamp": "2026-11-21T10:00:00Z", "trigger": "Alerting", "actualValue": "1", "eventNotificationType": "HardWiredNotification", "component": {"name": "C"}, "variable": {"name": "V"}}]}),
        ),
        (
            "SecurityEventNotification",
            json!({"type": "TamperDetectionActivated", "timestamp": "2026-11-21T10:00:00Z"}),
        ),
        ("FirmwareStatusNotification", json!({"status": "Installed"})),
        ("LogStatusNotification", json!({"status": "Uploaded"})),
        ("SignCertificate", json!({"csr": "x"})),
        (
            "GetCertificateStatus",
            json!({"ocspRequestData": {"hashAlgorithm": "SHA256", "issuerNameHash": "a", "issuerKeyHash": "b", "serialNumber": "c", "responderURL": "http://ocsp"}}),
        ),
        (
            "Get15118EVCertificate",
            json!({"iso15118SchemaVersion": "urn:iso:15118:2:2013:MsgDef", "action": "Install", "exiRequest": "AAAA"}),
        ),
        ("DataTransfer", json!({"vendorId": "acme"})),
        (
            "ClearedChargingLimit",
            json!({"chargingLimitSource": "EMS"}),
        ),
        (
            "NotifyChargingLimit",
            json!({"chargingLimit": {"chargingLimitSource": "EMS"}}),
        ),
        (
            "NotifyEVChargingNeeds",
            json!({"evseId": 1, "chargingNeeds": {"requestedEnergyTransfer": "AC_three_phase"}}),
        ),
        (
            "ReportChargingProfiles",
            json!({"requestId": 1, "chargingLimitSource": "CSO", "evseId": 1, "tbc": false, "chargingProfile": [{"id": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Absolute", "chargingSchedule": [{"id": 1, "chargingRateUnit": "W", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 1.0}]}]}]}),
        ),
    ];
    for (action, payload) in cases {
        fx.call(&s, action, payload).await;
    }
    let runtime = fx.env.store.runtime("CS1").await.unwrap().expect("runtime");
    assert_eq!(runtime.connectors["1/2"].status, "Occupied");
    assert_eq!(
        runtime.boot.as_ref().and_then(|b| b.reason.as_deref()),
        Some("PowerUp")
    );
    let tx = fx
        .env
        .store
        .transaction("CS1", "TX1")
        .await
        .unwrap()
        .expect("transaction");
    assert_eq!(
        (tx.evse_id, tx.connector_id, tx.event_count),
        (Some(1), Some(2), 2)
    );
    let values = fx
        .env
        .store
        .meter_values("CS1", "TX1", Page::new(0, 10))
        .await
        .unwrap();
    assert_eq!(
        values[0].sampled_values[0].value, 1500.0,
        "multiplier applied"
    );
}

#[tokio::test]
async fn boot_is_pending_until_configuration_is_applied() {
    let fx = fixture().await;
    let setting = WorkItem::Setting {
        key: "HeartbeatInterval".into(),
        value: "60".into(),
    }
    .command("CS1", now());
    fx.env.store.create_command(setting.clone()).await.unwrap();
    let s = fx.station(Version::V16);
    let boot = json!({"chargePointVendor": "Acme", "chargePointModel": "One"});
    let handled = fx.call(&s, "BootNotification", boot.clone()).await;
    assert_eq!(
        handled.boot.as_ref().map(|b| (b.verdict, b.outbox.len())),
        Some((BootVerdict::Pending, 1)),
        "the outbox read to decide goes to the actor"
    );
    assert_eq!(
        (
            handled.response["status"].as_str(),
            handled.response["interval"].as_u64()
        ),
        (Some("Pending"), Some(15))
    );
    assert_eq!(
        fx.env
            .store
            .station("CS1")
            .await
            .unwrap()
            .unwrap()
            .provisioning,
        Provisioning::Pending
    );

    let mut applied = setting;
    applied.settle(CommandStatus::Accepted, None, None, now());
    fx.env.store.update_command(&applied).await.unwrap();
    let handled = fx.call(&s, "BootNotification", boot).await;
    assert_eq!(handled.boot.map(|b| b.verdict), Some(BootVerdict::Accepted));
    assert_eq!(handled.response["interval"], 300);
    assert_eq!(
        fx.env
            .store
            .station("CS1")
            .await
            .unwrap()
            .unwrap()
            .provisioning,
        Provisioning::Provisioned
    );
}

#[tokio::test]
async fn a_boot_reads_the_registration_only_while_it_may_be_pending() {
    let fx = fixture().await;
    let provisioning = || async {
        let station = fx.env.store.station("CS1").await.unwrap();
        station.expect("registered").provisioning
    };
    let boot = json!({"chargePointVendor": "Acme", "chargePointModel": "One"});

    // Known provisioned at connect: the registration is not read, so a
    // pending one (which cannot happen after connect, provisioning never
    // goes back) stays as it is.
    let known = fx.station(Version::V16);
    known.mark_provisioned();
    fx.call(&known, "BootNotification", boot.clone()).await;
    assert_eq!(provisioning().await, Provisioning::Pending);

    // Not known: read, provisioned, and known from then on.
    let unknown = fx.station(Version::V16);
    fx.call(&unknown, "BootNotification", boot).await;
    assert_eq!(provisioning().await, Provisioning::Provisioned);
    assert!(unknown.is_provisioned());
}

#[tokio::test]
async fn token_status_follows_the_store() {
    let fx = fixture().await;
    fx.token("GOOD", true).await;
    fx.token("REVOKED", false).await;
    let v16 = fx.station(Version::V16);
    let v201 = fx.station(Version::V201);
    for (tag, s16, s201) in [
        ("GOOD", "Accepted", "Accepted"),
        ("REVOKED", "Blocked", "Blocked"),
        ("NOBODY", "Invalid", "Unknown"),
    ] {
        let a = fx
            .call(&v16, "Authorize", json!({ "idTag": tag }))
            .await
            .response;
        assert_eq!(a["idTagInfo"]["status"], s16, "{tag}");
        let b = fx
            .call(
                &v201,
                "Authorize",
                json!({"idToken": {"idToken": tag, "type": "ISO14443"}}),
            )
            .await
            .response;
        assert_eq!(b["idTokenInfo"]["status"], s201, "{tag}");
    }
    let free = fx
        .call(
            &v201,
            "Authorize",
            json!({"idToken": {"idToken": "", "type": "NoAuthorization"}}),
        )
        .await
        .response;
    assert_eq!(free["idTokenInfo"]["status"], "Accepted");
}

#[tokio::test]
async fn v16_transactions_get_ids_and_are_stored() {
    let fx = fixture().await;
    fx.token("TAG1", true).await;
    let s = fx.station(Version::V16);
    let start = json!({"connectorId": 1, "idTag": "TAG1", "meterStart": 100, "timestamp": "2026-11-21T10:00:00Z"});
    let started = fx.call(&s, "StartTransaction", start).await.response;
    let id = started["transactionId"].as_i64().expect("id");
    assert_eq!(started["idTagInfo"]["status"], "Accepted");
    let second = fx.call(&s, "StartTransaction", json!({"connectorId": 2, "idTag": "TAG1", "meterStart": 0, "timestamp": "2026-11-21T10:00:00Z"})).await.response;
    assert_ne!(second["transactionId"], started["transactionId"]);

    let meter = json!({"connectorId": 1, "transactionId": id, "meterValue": v16_meter("2026-11-21T10:10:00Z", "600")});
    fx.call(&s, "MeterValues", meter.clone()).await;
    fx.call(&s, "MeterValues", meter).await; // a retry stores nothing new
    let stop = json!({"transactionId": id, "meterStop": 1100, "timestamp": "2026-11-21T10:30:00Z", "reason": "EVDisconnected"});
    assert_eq!(
        fx.call(&s, "StopTransaction", stop).await.response,
        json!({})
    );

    let tx = fx
        .env
        .store
        .transaction("CS1", &id.to_string())
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(tx.stop_reason.as_deref(), Some("EVDisconnected"));
    assert_eq!(tx.event_count, 3);
    let values = fx
        .env
        .store
        .meter_values("CS1", &id.to_string(), Page::new(0, 10))
        .await
        .unwrap();
    let wh: Vec<f64> = values.iter().map(|v| v.sampled_values[0].value).collect();
    assert_eq!(wh, [100.0, 600.0, 1100.0]);
}

#[tokio::test]
async fn v201_transaction_event_retries_are_idempotent() {
    let fx = fixture().await;
    let s = fx.station(Version::V201);
    let event = json!({"eventType": "Started", "timestamp": "2026-11-21T10:00:00Z", "triggerReason": "CablePluggedIn", "seqNo": 0, "offline": true, "transactionInfo": {"transactionId": "T9"}});
    fx.call(&s, "TransactionEvent", event.clone()).await;
    fx.call(&s, "TransactionEvent", event).await;
    let tx = fx
        .env
        .store
        .transaction("CS1", "T9")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(tx.event_count, 1);
    assert!(tx.offline);
}

#[tokio::test]
async fn a_heartbeat_is_answered_at_once_as_its_handler_would() {
    let fx = fixture().await;
    for version in [Version::V16, Version::V201] {
        let s = fx.station(version);
        let at_once = super::answer_at_once(&s, "Heartbeat", now()).expect("answered at once");
        assert_eq!(s.update_runtime(|_| {}).last_seen, Some(now()), "seen");
        let handled = fx.call(&s, "Heartbeat", json!({})).await;
        assert_eq!(at_once, handled, "{version:?}");
        for action in ["BootNotification", "StatusNotification", "Authorize"] {
            assert!(
                super::answer_at_once(&s, action, now()).is_none(),
                "{action} goes through its handler"
            );
        }
    }
}

#[tokio::test]
async fn a_1_6_start_looks_for_its_remote_start_only_while_one_may_wait() {
    let fx = fixture().await;
    let s = fx.station(Version::V16);
    let mut remote = remote_start(
        Version::V16,
        json!({"idTag": "APP1", "connectorId": 1}),
        now(),
    );
    remote.status = CommandStatus::Accepted;
    fx.env.store.create_command(remote.clone()).await.unwrap();
    let linked = || async {
        let command = fx.env.store.command("CS1", &remote.id).await.unwrap();
        command.expect("stored").transaction_id
    };
    let start = json!({"connectorId": 1, "idTag": "APP1", "meterStart": 0, "timestamp": "2026-12-01T10:00:00Z"});

    // The station accepted no remote start on record: a local start, and
    // the station's commands are not read.
    fx.call(&s, "StartTransaction", start.clone()).await;
    assert_eq!(linked().await, None);

    // Marked as the actor marks an acceptance: the start is linked.
    s.update_runtime(|r| r.remote_start_accepted_at = Some(now()));
    let started = fx.call(&s, "StartTransaction", start.clone()).await;
    let id = started.response["transactionId"].to_string();
    assert_eq!(linked().await, Some(id));
    // None is left open, but a fresh acceptance may not be readable yet.
    assert!(s.runtime(|r| r.remote_start_accepted_at.is_some()));

    // An older marker with nothing left open is dropped.
    let earlier = now() - chrono::TimeDelta::minutes(5);
    s.update_runtime(|r| r.remote_start_accepted_at = Some(earlier));
    fx.call(&s, "StartTransaction", start).await;
    assert_eq!(s.runtime(|r| r.remote_start_accepted_at), None);

    // A remote start accepted while a start's read was out is not
    // forgotten with the older marker that start saw.
    let later = now();
    s.update_runtime(|r| r.remote_start_accepted_at = Some(later));
    s.forget_remote_start(earlier);
    assert_eq!(s.runtime(|r| r.remote_start_accepted_at), Some(later));
}

impl Fixture {
    /// As the actor does when `station` answers `command` Accepted: the
    /// write noted at once, the record landing 100 ms later (a message
    /// about the command comes in between).
    fn accepted_later(
        &self,
        station: &Arc<Station>,
        command: &CommandRecord,
    ) -> tokio::task::JoinHandle<()> {
        let write = station.command_write();
        let store = self.env.store.clone();
        let mut accepted = command.clone();
        accepted.status = CommandStatus::Accepted;
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            store.update_command(&accepted).await.unwrap();
            drop(write);
        })
    }
}

/// A remote start for CS1 in `version`'s action, made at `at` (Pending).
fn remote_start(version: Version, payload: Value, at: DateTime<Utc>) -> CommandRecord {
    let action = match version {
        Version::V16 => "RemoteStartTransaction",
        _ => "RequestStartTransaction",
    };
    CommandRecord::pending(
        "CS1",
        "remote-start",
        action,
        version,
        payload,
        DeliveryClass::Immediate,
        at,
    )
}

#[tokio::test]
async fn a_start_right_after_the_acceptance_waits_for_it_to_be_stored() {
    for version in [Version::V16, Version::V201] {
        let fx = fixture().await;
        let s = fx.station(version);
        let (payload, start_action, start) = match version {
            Version::V16 => (
                json!({"idTag": "APP1", "connectorId": 1}),
                "StartTransaction",
                json!({"connectorId": 1, "idTag": "APP1", "meterStart": 0, "timestamp": "2026-12-01T10:00:00Z"}),
            ),
            _ => (
                json!({"idToken": {"idToken": "APP1", "type": "ISO14443"}, "remoteStartId": 7}),
                "TransactionEvent",
                json!({"eventType": "Started", "timestamp": "2026-12-01T10:00:00Z", "triggerReason": "RemoteStart", "seqNo": 0, "transactionInfo": {"transactionId": "TX7", "remoteStartId": 7}}),
            ),
        };
        let remote = remote_start(version, payload, now());
        fx.env.store.create_command(remote.clone()).await.unwrap();
        // As the actor does at the Accepted answer: the 1.6 marker, and the
        // command's write begun; the write lands a little later.
        if version == Version::V16 {
            s.update_runtime(|r| r.remote_start_accepted_at = Some(now()));
        }
        let landing = fx.accepted_later(&s, &remote);
        let started = fx.call(&s, start_action, start).await;
        landing.await.unwrap();
        let transaction = match version {
            Version::V16 => started.response["transactionId"].to_string(),
            _ => "TX7".to_owned(),
        };
        let command = fx.env.store.command("CS1", &remote.id).await.unwrap();
        assert_eq!(
            command.expect("stored").transaction_id,
            Some(transaction),
            "{version:?}: linked once the acceptance was stored"
        );
    }
}

#[tokio::test]
async fn a_status_right_after_the_answer_keeps_both() {
    let fx = fixture().await;
    let s = fx.station(Version::V201);
    let command = CommandRecord::pending(
        "CS1",
        "update-firmware",
        "UpdateFirmware",
        Version::V201,
        json!({"requestId": 5}),
        DeliveryClass::Immediate,
        now(),
    );
    fx.env.store.create_command(command.clone()).await.unwrap();
    // The station accepts, and its first FirmwareStatusNotification comes
    // before the Accepted record landed.
    let landing = fx.accepted_later(&s, &command);
    let status = json!({"status": "Downloading", "requestId": 5});
    fx.call(&s, "FirmwareStatusNotification", status).await;
    landing.await.unwrap();
    let stored = fx.env.store.command("CS1", &command.id).await.unwrap();
    let stored = stored.expect("stored");
    assert_eq!(stored.status, CommandStatus::Accepted);
    let progress: Vec<&str> = stored.progress.iter().map(|p| p.status.as_str()).collect();
    assert_eq!(
        progress,
        ["Downloading"],
        "the answer and the status both kept"
    );
}

#[tokio::test]
async fn a_start_reported_late_is_linked_by_when_it_happened() {
    let fx = fixture().await;
    let s = fx.station(Version::V16);
    // Accepted half an hour ago; the station started five minutes later
    // while offline, and reports the start only now.
    let accepted_at = now() - chrono::TimeDelta::minutes(30);
    let mut remote = remote_start(
        Version::V16,
        json!({"idTag": "APP1", "connectorId": 1}),
        accepted_at,
    );
    remote.status = CommandStatus::Accepted;
    fx.env.store.create_command(remote.clone()).await.unwrap();
    s.update_runtime(|r| r.remote_start_accepted_at = Some(accepted_at));
    let at = super::timestamp(now() - chrono::TimeDelta::minutes(25));
    let start = json!({"connectorId": 1, "idTag": "APP1", "meterStart": 0, "timestamp": at});
    let started = fx.call(&s, "StartTransaction", start).await;
    let command = fx.env.store.command("CS1", &remote.id).await.unwrap();
    assert_eq!(
        command.expect("stored").transaction_id,
        Some(started.response["transactionId"].to_string())
    );
}

#[tokio::test]
async fn a_remote_start_never_acted_on_is_not_linked_to_a_much_later_start() {
    let fx = fixture().await;
    let s = fx.station(Version::V16);
    let accepted = |tag: &str, at: DateTime<Utc>| {
        let mut command = remote_start(Version::V16, json!({"idTag": tag, "connectorId": 1}), at);
        command.status = CommandStatus::Accepted;
        command
    };
    // Accepted two hours ago; no cable came, so the station dropped it.
    let stale = accepted("APP1", now() - chrono::TimeDelta::hours(2));
    fx.env.store.create_command(stale.clone()).await.unwrap();
    let fresh = accepted("APP2", now());
    fx.env.store.create_command(fresh.clone()).await.unwrap();
    let store = fx.env.store.clone();
    let linked = |id: String| {
        let store = store.clone();
        async move {
            let command = store.command("CS1", &id).await.unwrap();
            command.expect("stored").transaction_id
        }
    };
    let start = |tag: &str| json!({"connectorId": 1, "idTag": tag, "meterStart": 0, "timestamp": "2026-12-01T10:00:00Z"});

    // A local start with the stale command's tag, while the fresh remote
    // start waits (its marker set five minutes ago).
    let marked = now() - chrono::TimeDelta::minutes(5);
    s.update_runtime(|r| r.remote_start_accepted_at = Some(marked));
    fx.call(&s, "StartTransaction", start("APP1")).await;
    assert_eq!(
        linked(stale.id.clone()).await,
        None,
        "not the stale remote start"
    );

    // The fresh one is linked, and the stale one does not count as still
    // waiting: the marker goes.
    let started = fx.call(&s, "StartTransaction", start("APP2")).await;
    let id = started.response["transactionId"].to_string();
    assert_eq!(linked(fresh.id.clone()).await, Some(id));
    assert_eq!(s.runtime(|r| r.remote_start_accepted_at), None);
}
