//! The conformance cases. Each takes a fresh fixture and checks one promise
//! of the store traits; times are fixed so results are exact.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::json;
use voltgate::store::*;

use super::fixture::Fixture;

fn t(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000 + seconds, 0).expect("valid time")
}

fn basic_auth(hash: &str) -> ChargeStationAuth {
    ChargeStationAuth {
        security_profile: SecurityProfile::UnsecuredBasicAuth,
        base64_sha256_password: Some(hash.to_owned()),
        invalid_username_allowed: false,
    }
}

fn page(offset: u64, limit: u32) -> Page {
    Page::new(offset, limit)
}

fn after(key: &str, offset: u64, limit: u32) -> Page {
    Page {
        offset,
        limit,
        after: Some(key.to_owned()),
    }
}

async fn registered(fx: &Fixture, id: &str) {
    fx.store
        .register_station(id, basic_auth("h"), t(0))
        .await
        .expect("register");
}

fn token(uid: &str) -> Token {
    Token {
        country_code: "GB".into(),
        party_id: "TWK".into(),
        token_type: TokenType::Rfid,
        uid: uid.into(),
        contract_id: "GBTWK012345678V".into(),
        visual_number: Some("card 1".into()),
        issuer: "Thoughtworks".into(),
        group_id: None,
        valid: true,
        language_code: Some("en".into()),
        cache_mode: CacheMode::Always,
        last_updated: Some(t(5)),
    }
}

fn location(id: &str) -> Location {
    serde_json::from_value(json!({
        "id": id, "country_code": "GB", "party_id": "TWK", "publish": true, "name": "Depot",
        "address": "1 High Street", "city": "London", "postal_code": "N1 1AA", "country": "GBR",
        "coordinates": {"latitude": "51.5", "longitude": "-0.12"}, "parking_type": "PARKING_LOT",
        "time_zone": "Europe/London",
        "evses": [{"uid": "E1", "evse_id": "GB*TWK*E1", "status": "AVAILABLE", "connectors": [
            {"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_3_PHASE",
             "max_voltage": 400, "max_amperage": 32, "last_updated": "2026-09-21T00:00:09Z"}],
            "last_updated": "2026-09-21T00:00:09Z"}],
        "last_updated": "2026-09-21T00:00:09Z"
    }))
    .expect("a valid location")
}

/// Location `id` last updated at `t(at)`.
fn location_at(id: &str, at: i64) -> Location {
    Location {
        last_updated: Some(t(at)),
        ..location(id)
    }
}

fn meter(at: i64, wh: f64) -> MeterValue {
    MeterValue {
        seq_no: 0,
        timestamp: t(at),
        sampled_values: vec![SampledValue {
            value: wh,
            measurand: Some("Energy.Active.Import.Register".into()),
            phase: None,
            unit: Some("Wh".into()),
            context: Some("Sample.Periodic".into()),
            location: None,
        }],
    }
}

pub fn event(station: &str, tx: &str, seq_no: u64, kind: TransactionEventKind) -> TransactionEvent {
    TransactionEvent {
        station_id: station.into(),
        transaction_id: tx.into(),
        seq_no,
        kind,
        timestamp: t(seq_no as i64 * 60),
        id_token: None,
        offline: false,
        evse_id: Some(1),
        connector_id: Some(1),
        stop_reason: None,
        meter_values: vec![meter(seq_no as i64 * 60, 1000.0 * seq_no as f64)],
    }
}

pub async fn register_creates_a_pending_station(fx: Fixture) {
    let record = fx
        .store
        .register_station("CS1", basic_auth("h1"), t(0))
        .await
        .unwrap();
    assert_eq!(record.provisioning, Provisioning::Pending);
    assert_eq!(record.registered_at, t(0));
    let stored = fx
        .store
        .station("CS1")
        .await
        .unwrap()
        .expect("station stored");
    assert_eq!(stored, record);
    assert_eq!(stored.auth, basic_auth("h1"));
    assert_eq!(fx.store.station("CS2").await.unwrap(), None);
}

pub async fn reregister_keeps_state_and_replaces_credentials(fx: Fixture) {
    registered(&fx, "CS1").await;
    fx.store
        .set_provisioning("CS1", Provisioning::Provisioned, t(1))
        .await
        .unwrap();
    fx.store
        .create_command(command("CS1", 1, "TriggerMessage"))
        .await
        .unwrap();
    let again = fx
        .store
        .register_station("CS1", basic_auth("h2"), t(2))
        .await
        .unwrap();
    assert_eq!(again.auth, basic_auth("h2"));
    assert_eq!(again.registered_at, t(0), "first registration time is kept");
    assert_eq!(again.updated_at, t(2));
    assert_eq!(again.provisioning, Provisioning::Provisioned);
    assert_eq!(
        fx.store.outbox("CS1").await.unwrap().len(),
        1,
        "queued work is kept"
    );
}

pub async fn unknown_station_has_no_work_and_refuses_new_work(fx: Fixture) {
    assert!(fx.store.outbox("nobody").await.unwrap().is_empty());
    let not_found = |r: StoreResult<()>| matches!(r, Err(StoreError::NotFound(_)));
    assert!(not_found(
        fx.store.create_command(command("nobody", 0, "Reset")).await
    ));
    let several = vec![command("nobody", 0, "Reset"), command("nobody", 1, "Reset")];
    assert!(not_found(
        fx.store.create_commands("nobody", &several).await
    ));
    assert!(not_found(
        fx.store
            .set_runtime("nobody", StationRuntime::default())
            .await
    ));
    assert!(not_found(
        fx.store
            .set_provisioning("nobody", Provisioning::Provisioned, t(0))
            .await
    ));
    assert!(fx.store.outbox("nobody").await.unwrap().is_empty());
    assert_eq!(fx.store.station("nobody").await.unwrap(), None);
}

pub async fn stations_list_in_id_order_with_paging(fx: Fixture) {
    for id in ["c", "a", "b", "d"] {
        registered(&fx, id).await;
    }
    let ids = |v: Vec<StationRecord>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(
        ids(fx.store.list_stations(page(0, 10)).await.unwrap()),
        ["a", "b", "c", "d"]
    );
    assert_eq!(
        ids(fx.store.list_stations(page(1, 2)).await.unwrap()),
        ["b", "c"]
    );
    assert!(fx
        .store
        .list_stations(page(4, 10))
        .await
        .unwrap()
        .is_empty());
    assert!(fx.store.list_stations(page(0, 0)).await.unwrap().is_empty());
    assert_eq!(
        ids(fx.store.list_stations(after("b", 0, 10)).await.unwrap()),
        ["c", "d"]
    );
    assert_eq!(
        ids(fx.store.list_stations(after("bb", 1, 1)).await.unwrap()),
        ["d"]
    );
    assert!(fx
        .store
        .list_stations(after("d", 0, 10))
        .await
        .unwrap()
        .is_empty());
}

/// Enough records that a backend spreading its list over partitions must
/// merge them: a cursor walk and offset pages both see each once, in order.
pub async fn cursor_pages_walk_every_record_once(fx: Fixture) {
    let mut expected: Vec<String> = (0..45)
        .map(|i| format!("CS-{:03}", (i * 37) % 101))
        .collect();
    for id in &expected {
        registered(&fx, id).await;
    }
    expected.sort();
    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = Page {
            offset: 0,
            limit: 7,
            after: cursor.clone(),
        };
        let batch = fx.store.list_stations(page).await.unwrap();
        walked.extend(batch.iter().map(|s| s.id.clone()));
        if batch.len() < 7 {
            break;
        }
        cursor = batch.last().map(|s| s.id.clone());
    }
    assert_eq!(walked, expected);
    let tail = fx.store.list_stations(page(40, 10)).await.unwrap();
    let tail: Vec<_> = tail.into_iter().map(|s| s.id).collect();
    assert_eq!(tail, expected[40..]);
    let middle = fx
        .store
        .list_stations(after(&expected[9], 3, 4))
        .await
        .unwrap();
    let middle: Vec<_> = middle.into_iter().map(|s| s.id).collect();
    assert_eq!(middle, expected[13..17]);
    // One record per page, by offset, at every fourth position.
    for (i, id) in expected.iter().enumerate().step_by(4) {
        let one = fx.store.list_stations(page(i as u64, 1)).await.unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(&one[0].id, id, "offset {i}");
    }
}

pub async fn rows_of_similar_station_ids_stay_apart(fx: Fixture) {
    // "A" is a prefix of "AB": a prefix scan done wrong would mix their rows.
    for id in ["A", "AB", "A\u{0}"] {
        registered(&fx, id).await;
        let mut own = command(id, 1, "SetVariables");
        own.payload = json!({"of": id});
        fx.store.create_command(own).await.unwrap();
        fx.store
            .put_variables(id, vec![reported("K", id, 1)])
            .await
            .unwrap();
        fx.store
            .apply_transaction_event(event(id, "T", 1, TransactionEventKind::Started))
            .await
            .unwrap();
    }
    for id in ["A", "AB", "A\u{0}"] {
        let outbox = fx.store.outbox(id).await.unwrap();
        assert_eq!(outbox.len(), 1, "{id:?}");
        assert_eq!(outbox[0].payload["of"], id);
        let listed = fx
            .store
            .list_commands(id, CommandFilter::default(), page(0, 10))
            .await
            .unwrap();
        assert_eq!(listed.len(), 1, "{id:?}");
        let variables = fx.store.variables(id, page(0, 10)).await.unwrap();
        assert_eq!(variables.len(), 1, "{id:?}");
        assert_eq!(variables[0].value.as_deref(), Some(id));
        let txs = fx.store.list_transactions(id, page(0, 10)).await.unwrap();
        assert_eq!(txs.len(), 1, "{id:?}");
        assert_eq!(txs[0].station_id, id);
    }
}

pub async fn provisioning_and_runtime_roundtrip(fx: Fixture) {
    registered(&fx, "CS1").await;
    fx.store
        .set_provisioning("CS1", Provisioning::Provisioned, t(5))
        .await
        .unwrap();
    let station = fx.store.station("CS1").await.unwrap().unwrap();
    assert_eq!(
        (station.provisioning, station.updated_at),
        (Provisioning::Provisioned, t(5))
    );

    assert_eq!(fx.store.runtime("CS1").await.unwrap(), None);
    let runtime = StationRuntime {
        ocpp_version: Some(OcppVersion::V201),
        boot: Some(BootInfo {
            vendor: "Acme".into(),
            model: "Volt 1".into(),
            serial_number: Some("SN1".into()),
            firmware_version: Some("1.2.3".into()),
            reason: Some("PowerUp".into()),
        }),
        last_boot: Some(t(6)),
        last_seen: Some(t(7)),
        connectors: BTreeMap::from([(
            "1/1".to_owned(),
            ConnectorStatus {
                status: "Available".into(),
                error_code: None,
                updated_at: t(7),
            },
        )]),
        firmware_status: Some("Installed".into()),
        diagnostics_status: None,
        log_status: Some("Uploaded".into()),
        remote_start_accepted_at: Some(t(8)),
        security_events: vec![SecurityEvent {
            kind: "FirmwareUpdated".into(),
            timestamp: t(8),
            tech_info: None,
        }],
    };
    fx.store.set_runtime("CS1", runtime.clone()).await.unwrap();
    assert_eq!(fx.store.runtime("CS1").await.unwrap(), Some(runtime));
}

pub async fn tokens_roundtrip_list_and_delete(fx: Fixture) {
    for uid in ["C", "A", "B"] {
        fx.store.put_token(token(uid)).await.unwrap();
    }
    assert_eq!(fx.store.token("A").await.unwrap(), Some(token("A")));
    assert_eq!(fx.store.token("Z").await.unwrap(), None);
    let mut changed = token("A");
    changed.valid = false;
    fx.store.put_token(changed.clone()).await.unwrap();
    assert_eq!(fx.store.token("A").await.unwrap(), Some(changed));

    let uids = |v: Vec<Token>| v.into_iter().map(|t| t.uid).collect::<Vec<_>>();
    assert_eq!(
        uids(fx.store.list_tokens(page(0, 100)).await.unwrap()),
        ["A", "B", "C"]
    );
    assert_eq!(
        uids(fx.store.list_tokens(page(2, 100)).await.unwrap()),
        ["C"]
    );
    assert!(fx.store.list_tokens(page(3, 100)).await.unwrap().is_empty());
    assert_eq!(
        uids(fx.store.list_tokens(after("A", 1, 100)).await.unwrap()),
        ["C"]
    );
    assert!(fx
        .store
        .list_tokens(page(u64::MAX, 100))
        .await
        .unwrap()
        .is_empty());
    assert!(fx.store.list_tokens(page(0, 0)).await.unwrap().is_empty());

    // Read, then changed through the same store: the change is read back
    // at once (a backend that keeps copies of hot reads drops them on write).
    assert_eq!(fx.store.token("B").await.unwrap(), Some(token("B")));
    assert!(fx.store.delete_token("B").await.unwrap());
    assert_eq!(fx.store.token("B").await.unwrap(), None);
    assert!(!fx.store.delete_token("B").await.unwrap());
    fx.store.put_token(token("Z")).await.unwrap();
    assert_eq!(fx.store.token("Z").await.unwrap(), Some(token("Z")));
    assert!(fx.store.delete_token("Z").await.unwrap());
    assert_eq!(
        uids(fx.store.list_tokens(page(0, 100)).await.unwrap()),
        ["A", "C"]
    );
}

pub async fn certificates_roundtrip_and_delete(fx: Fixture) {
    let cert = StoredCertificate {
        hash: "h1".into(),
        pem: "pem".into(),
        uploaded_at: t(1),
    };
    fx.store.put_certificate(cert.clone()).await.unwrap();
    assert_eq!(fx.store.certificate("h1").await.unwrap(), Some(cert));
    assert_eq!(fx.store.certificate("h2").await.unwrap(), None);
    assert!(fx.store.delete_certificate("h1").await.unwrap());
    assert!(!fx.store.delete_certificate("h1").await.unwrap());
    assert_eq!(fx.store.certificate("h1").await.unwrap(), None);
}

pub async fn locations_roundtrip_and_list(fx: Fixture) {
    for id in ["L2", "L1"] {
        let written = fx.store.write_location(location(id), Expect::Any).await;
        assert!(matches!(written.unwrap(), LocationWrite::Written(_)));
    }
    let stored = fx.store.location("L1").await.unwrap().expect("stored");
    assert_eq!(stored.location, location("L1"));
    assert!(fx.store.location("L3").await.unwrap().is_none());
    let mut moved = location("L2");
    moved.city = "Leeds".into();
    fx.store
        .write_location(moved.clone(), Expect::Any)
        .await
        .unwrap();
    let all = fx.store.list_locations(page(0, 10)).await.unwrap();
    assert_eq!(all, [location("L1"), moved]);
    assert_eq!(fx.store.list_locations(page(1, 1)).await.unwrap().len(), 1);
}

pub async fn location_writes_are_conditional_on_the_version_read(fx: Fixture) {
    let LocationWrite::Written(first) = fx
        .store
        .write_location(location_at("L1", 1), Expect::Absent)
        .await
        .unwrap()
    else {
        panic!("a create of a new id is written");
    };
    assert_eq!(fx.store.location("L1").await.unwrap().unwrap().etag, first);
    assert_eq!(
        fx.store
            .write_location(location_at("L1", 2), Expect::Absent)
            .await
            .unwrap(),
        LocationWrite::Conflict(Some(first.clone())),
        "a create of an existing id is refused with its tag"
    );
    let stale = Expect::Etag("not-the-tag".into());
    assert_eq!(
        fx.store
            .write_location(location_at("L1", 2), stale)
            .await
            .unwrap(),
        LocationWrite::Conflict(Some(first.clone()))
    );
    let LocationWrite::Written(second) = fx
        .store
        .write_location(location_at("L1", 2), Expect::Etag(first.clone()))
        .await
        .unwrap()
    else {
        panic!("a write on the version read is written");
    };
    assert_ne!(first, second, "a new version has a new tag");
    assert_eq!(
        fx.store
            .delete_location("L1", Expect::Etag(first))
            .await
            .unwrap(),
        LocationWrite::Conflict(Some(second.clone())),
        "a delete of a stale version is refused"
    );
    assert_eq!(
        fx.store.location("L1").await.unwrap().unwrap().location,
        location_at("L1", 2)
    );
    assert!(matches!(
        fx.store
            .delete_location("L1", Expect::Etag(second))
            .await
            .unwrap(),
        LocationWrite::Written(_)
    ));
    assert!(fx.store.location("L1").await.unwrap().is_none());
    assert_eq!(
        fx.store.delete_location("L1", Expect::Any).await.unwrap(),
        LocationWrite::Conflict(None)
    );
    assert!(fx
        .store
        .list_locations(page(0, 10))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        fx.store
            .count_locations_updated(None, None, false)
            .await
            .unwrap(),
        0
    );
}

pub async fn only_published_locations_are_listed_for_partners(fx: Fixture) {
    let unpublished = |id: &str, at: i64| Location {
        publish: false,
        ..location_at(id, at)
    };
    for location in [
        location_at("P1", 10),
        unpublished("U1", 20),
        location_at("P2", 30),
        unpublished("U2", 40),
        location_at("P3", 50),
    ] {
        fx.store
            .write_location(location, Expect::Any)
            .await
            .unwrap();
    }
    let published = |from: Option<i64>, offset: u64| UpdatedWindow {
        from: from.map(t),
        offset,
        limit: 10,
        published_only: true,
        ..UpdatedWindow::default()
    };
    let ids = |found: Vec<Location>| found.into_iter().map(|l| l.id).collect::<Vec<_>>();
    assert_eq!(
        ids(fx
            .store
            .locations_updated(published(None, 0))
            .await
            .unwrap()),
        ["P1", "P2", "P3"]
    );
    assert_eq!(
        ids(fx
            .store
            .locations_updated(published(Some(20), 1))
            .await
            .unwrap()),
        ["P3"]
    );
    assert_eq!(
        fx.store
            .count_locations_updated(None, None, true)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        fx.store
            .count_locations_updated(None, None, false)
            .await
            .unwrap(),
        5
    );
    assert_eq!(
        fx.store
            .count_locations_updated(Some(t(20)), None, true)
            .await
            .unwrap(),
        2
    );
    // Unpublishing, publishing, moving in time and deleting move the entries.
    fx.store
        .write_location(unpublished("P2", 60), Expect::Any)
        .await
        .unwrap();
    fx.store
        .write_location(location_at("U1", 70), Expect::Any)
        .await
        .unwrap();
    fx.store
        .write_location(location_at("P1", 80), Expect::Any)
        .await
        .unwrap();
    fx.store.delete_location("P3", Expect::Any).await.unwrap();
    assert_eq!(
        ids(fx
            .store
            .locations_updated(published(None, 0))
            .await
            .unwrap()),
        ["U1", "P1"]
    );
    assert_eq!(
        fx.store
            .count_locations_updated(None, None, true)
            .await
            .unwrap(),
        2
    );
}

pub async fn locations_list_by_last_updated(fx: Fixture) {
    for (id, at) in [
        ("L3", 30),
        ("L1", 10),
        ("L5", 50),
        ("L2", 20),
        ("L4", 40),
        ("L0", 20),
    ] {
        fx.store
            .write_location(location_at(id, at), Expect::Any)
            .await
            .unwrap();
    }
    // L4 moves to the end: its old place is gone.
    fx.store
        .write_location(location_at("L4", 60), Expect::Any)
        .await
        .unwrap();
    let ids = |found: Vec<Location>| found.into_iter().map(|l| l.id).collect::<Vec<_>>();
    let window = |from: Option<i64>, to: Option<i64>, offset: u64, limit: u32| UpdatedWindow {
        from: from.map(t),
        to: to.map(t),
        after: None,
        offset,
        limit,
        published_only: false,
    };
    let all = fx
        .store
        .locations_updated(window(None, None, 0, 10))
        .await
        .unwrap();
    assert_eq!(ids(all), ["L1", "L0", "L2", "L3", "L5", "L4"]);
    let middle = fx
        .store
        .locations_updated(window(Some(20), Some(50), 0, 10))
        .await
        .unwrap();
    assert_eq!(
        ids(middle),
        ["L0", "L2", "L3"],
        "from inclusive, to exclusive"
    );
    let skipped = fx
        .store
        .locations_updated(window(Some(20), None, 2, 2))
        .await
        .unwrap();
    assert_eq!(ids(skipped), ["L3", "L5"]);
    let sought = UpdatedWindow {
        after: Some((t(20), "L0".into())),
        ..window(Some(10), None, 0, 2)
    };
    assert_eq!(
        ids(fx.store.locations_updated(sought).await.unwrap()),
        ["L2", "L3"],
        "a seek starts after the cursor"
    );
    assert_eq!(
        fx.store
            .count_locations_updated(None, None, false)
            .await
            .unwrap(),
        6
    );
    assert_eq!(
        fx.store
            .count_locations_updated(Some(t(20)), Some(t(50)), false)
            .await
            .unwrap(),
        3
    );
    fx.store.delete_location("L2", Expect::Any).await.unwrap();
    let rest = fx
        .store
        .locations_updated(window(Some(20), Some(50), 0, 10))
        .await
        .unwrap();
    assert_eq!(ids(rest), ["L0", "L3"]);
}

pub async fn evse_links_follow_the_records(fx: Fixture) {
    let linked = |uid: &str, station: &str, evse: Option<i32>, connector: Option<i32>| {
        let mut evse_record = location("L1").evses.unwrap().remove(0);
        evse_record.uid = uid.into();
        evse_record.station_id = Some(station.into());
        evse_record.ocpp_evse_id = evse;
        evse_record.ocpp_connector_id = connector;
        evse_record
    };
    let mut first = location("L1");
    first.evses = Some(vec![
        linked("E2", "CS1", None, Some(2)),
        linked("E1", "CS1", Some(1), None),
        linked("E3", "CS2", Some(1), None),
    ]);
    let mut second = location("L0");
    second.evses = Some(vec![linked("X", "CS1", Some(3), None)]);
    for l in [first.clone(), second] {
        fx.store.write_location(l, Expect::Any).await.unwrap();
    }
    let of = |links: Vec<EvseLink>| {
        links
            .into_iter()
            .map(|l| {
                (
                    l.location_id,
                    l.evse_uid,
                    l.ocpp_evse_id,
                    l.ocpp_connector_id,
                )
            })
            .collect::<Vec<_>>()
    };
    let s = |x: &str| x.to_owned();
    assert_eq!(
        of(fx.store.evse_links("CS1").await.unwrap()),
        [
            (s("L0"), s("X"), Some(3), None),
            (s("L1"), s("E1"), Some(1), None),
            (s("L1"), s("E2"), None, Some(2)),
        ]
    );
    assert_eq!(of(fx.store.evse_links("CS2").await.unwrap()).len(), 1);
    assert!(fx.store.evse_links("CS9").await.unwrap().is_empty());
    // E2 unlinked, E3 moved to CS1.
    first.evses = Some(vec![
        linked("E1", "CS1", Some(1), None),
        linked("E3", "CS1", Some(2), None),
        Evse {
            station_id: None,
            ocpp_connector_id: None,
            ..linked("E2", "CS1", None, None)
        },
    ]);
    fx.store.write_location(first, Expect::Any).await.unwrap();
    assert_eq!(
        of(fx.store.evse_links("CS1").await.unwrap()),
        [
            (s("L0"), s("X"), Some(3), None),
            (s("L1"), s("E1"), Some(1), None),
            (s("L1"), s("E3"), Some(2), None),
        ]
    );
    assert!(fx.store.evse_links("CS2").await.unwrap().is_empty());
    fx.store.delete_location("L1", Expect::Any).await.unwrap();
    assert_eq!(of(fx.store.evse_links("CS1").await.unwrap()).len(), 1);
}

pub async fn locations_are_found_by_place(fx: Fixture) {
    let at = |id: &str, lat: &str, lon: &str, publish: bool| Location {
        coordinates: GeoLocation {
            latitude: lat.into(),
            longitude: lon.into(),
        },
        publish,
        ..location(id)
    };
    for l in [
        at("L1", "51.5", "-0.12", true),
        at("L2", "51.51", "-0.13", true),
        at("L3", "48.85", "2.35", true),
        at("L4", "51.5", "-0.121", false),
    ] {
        fx.store.write_location(l, Expect::Any).await.unwrap();
    }
    let near = |lat: f64, lon: f64| {
        let circle = Circle {
            lat,
            lon,
            radius_km: 5.0,
        };
        let prefixes = voltgate::locations::search::covering(&circle);
        let store = fx.store.clone();
        async move {
            let mut found = store.locations_near(circle, &prefixes).await.unwrap();
            found.sort_by(|a, b| a.location_id.cmp(&b.location_id));
            found
        }
    };
    let london = near(51.5, -0.12).await;
    let ids: Vec<&str> = london.iter().map(|e| e.location_id.as_str()).collect();
    assert_eq!(ids, ["L1", "L2"], "unpublished L4 and far L3 are not found");
    assert!(london[0].distance_km < 0.01);
    assert!(
        (london[1].distance_km - 1.3).abs() < 0.1,
        "{}",
        london[1].distance_km
    );
    assert_eq!(london[0].summary.city, "London");
    assert_eq!(
        london[0].summary.standards,
        [ConnectorStandard::IEC_62196_T2]
    );
    assert!(london[0].summary.available);
    fx.store
        .write_location(at("L2", "48.86", "2.35", true), Expect::Any)
        .await
        .unwrap();
    let ids = |found: Vec<PlaceEntry>| found.into_iter().map(|e| e.location_id).collect::<Vec<_>>();
    assert_eq!(ids(near(51.5, -0.12).await), ["L1"], "moved away");
    assert_eq!(ids(near(48.85, 2.35).await), ["L2", "L3"], "moved here");
    fx.store.delete_location("L1", Expect::Any).await.unwrap();
    assert!(near(51.5, -0.12).await.is_empty());
}

pub async fn cities_are_listed_per_province(fx: Fixture) {
    let at = |id: &str, province: Option<&str>, city: &str, publish: bool| Location {
        province: province.map(str::to_owned),
        city: city.into(),
        publish,
        ..location(id)
    };
    for l in [
        at("L1", Some("Utrecht"), "Utrecht", true),
        at("L2", Some("utrecht"), "Amersfoort", true),
        at("L3", Some("Utrecht"), "Utrecht", true),
        at("L4", Some("Utrecht"), "Zeist", false),
        at("L5", Some("Noord-Holland"), "Haarlem", true),
        at("L6", None, "Nowhere", true),
    ] {
        fx.store.write_location(l, Expect::Any).await.unwrap();
    }
    assert_eq!(
        fx.store.cities_of_province("UTRECHT").await.unwrap(),
        ["Amersfoort", "Utrecht"],
        "distinct, sorted, published only, any case"
    );
    fx.store
        .write_location(
            at("L2", Some("Gelderland"), "Amersfoort", true),
            Expect::Any,
        )
        .await
        .unwrap();
    fx.store.delete_location("L1", Expect::Any).await.unwrap();
    assert_eq!(
        fx.store.cities_of_province("Utrecht").await.unwrap(),
        ["Utrecht"]
    );
    fx.store.delete_location("L3", Expect::Any).await.unwrap();
    assert!(fx
        .store
        .cities_of_province("Utrecht")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        fx.store.cities_of_province("gelderland").await.unwrap(),
        ["Amersfoort"]
    );
}

pub async fn templates_roundtrip_and_list(fx: Fixture) {
    let template = |id: &str, name: &str| HardwareTemplate {
        id: id.into(),
        name: Some(name.into()),
        evses: location("L1").evses.unwrap(),
        last_updated: Some(t(3)),
    };
    for (id, name) in [("T2", "two"), ("T1", "one"), ("T3", "three")] {
        fx.store.put_template(template(id, name)).await.unwrap();
    }
    fx.store
        .put_template(template("T2", "second"))
        .await
        .unwrap();
    assert_eq!(
        fx.store.template("T2").await.unwrap(),
        Some(template("T2", "second"))
    );
    assert_eq!(fx.store.template("T9").await.unwrap(), None);
    let ids: Vec<String> = fx
        .store
        .list_templates(page(0, 10))
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids, ["T1", "T2", "T3"]);
    assert_eq!(fx.store.list_templates(page(2, 10)).await.unwrap().len(), 1);
}

pub async fn ocpi_partners_are_found_by_id_and_by_their_current_token(fx: Fixture) {
    let mut partner =
        OcpiPartner::from_registration("token-a", None, OcpiRegistrationStatus::Pending, t(1));
    fx.store.put_partner(partner.clone()).await.unwrap();
    assert_eq!(
        fx.store.partner(&partner.id).await.unwrap(),
        Some(partner.clone())
    );
    assert_eq!(
        fx.store
            .partner_by_token(&token_hash("token-a"))
            .await
            .unwrap(),
        Some(partner.clone())
    );
    // The handshake replaces TOKEN_A by TOKEN_C: only the new one finds it.
    partner.status = OcpiRegistrationStatus::Registered;
    partner.token_hash = Some(token_hash("token-c"));
    partner.token_to_partner = Some("token-b".into());
    partner.endpoints = vec![PartnerEndpoint {
        identifier: "locations".into(),
        role: "RECEIVER".into(),
        url: "https://emsp.example/ocpi/2.2.1/locations".into(),
    }];
    fx.store.put_partner(partner.clone()).await.unwrap();
    assert_eq!(
        fx.store
            .partner_by_token(&token_hash("token-a"))
            .await
            .unwrap(),
        None
    );
    let found = fx
        .store
        .partner_by_token(&token_hash("token-c"))
        .await
        .unwrap()
        .expect("found by its new token");
    assert_eq!(found, partner);
    assert_eq!(
        found.endpoint("locations", "RECEIVER"),
        Some("https://emsp.example/ocpi/2.2.1/locations")
    );
    let other = OcpiPartner::from_registration(
        "token-x",
        Some("https://other.example/versions".into()),
        OcpiRegistrationStatus::Pending,
        t(2),
    );
    assert_eq!(other.token_hash, None, "voltgate calls it first");
    let before = fx.store.list_partners().await.unwrap();
    assert!(!before.iter().any(|p| p.id == other.id));
    fx.store.put_partner(other.clone()).await.unwrap();
    let mut ids: Vec<String> = fx
        .store
        .list_partners()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    ids.sort();
    let mut expected = vec![partner.id.clone(), other.id.clone()];
    expected.sort();
    assert_eq!(ids, expected);
    assert!(fx.store.delete_partner(&partner.id).await.unwrap());
    assert!(!fx.store.delete_partner(&partner.id).await.unwrap());
    assert_eq!(fx.store.partner(&partner.id).await.unwrap(), None);
    let left: Vec<String> = fx
        .store
        .list_partners()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(
        left,
        std::slice::from_ref(&other.id),
        "the deleted partner is not listed"
    );
    assert_eq!(
        fx.store
            .partner_by_token(&token_hash("token-c"))
            .await
            .unwrap(),
        None
    );
}

fn push(object: &str, body: serde_json::Value) -> OcpiPush {
    OcpiPush {
        seq: 0,
        object: object.into(),
        module: "locations".into(),
        method: "PUT".into(),
        path: format!("GB/TWK/{object}"),
        body,
        queued_at: t(1),
    }
}

fn ocpi_object(kind: OcpiObjectKind, id: &str, party: &str, at: i64) -> OcpiObject {
    OcpiObject {
        kind,
        id: id.to_owned(),
        party: party.to_owned(),
        station_id: "CS1".into(),
        transaction_id: format!("T-{id}"),
        body: json!({"id": id, "kwh": at}),
        last_updated: t(at),
    }
}

pub async fn ocpi_sessions_and_cdrs_list_per_party_by_last_updated(fx: Fixture) {
    use OcpiObjectKind::{Cdr, Session};
    let store = &fx.store;
    for (id, party, at) in [
        ("S1", "NL-EMS", 10),
        ("S2", "NL-EMS", 20),
        ("S3", "DE-XYZ", 15),
        ("S4", "NL-EMS", 20),
    ] {
        store
            .put_ocpi_object(ocpi_object(Session, id, party, at))
            .await
            .unwrap();
    }
    store
        .put_ocpi_object(ocpi_object(Cdr, "S1", "NL-EMS", 30))
        .await
        .unwrap();
    // S1 is updated: it moves to the end of its party's list.
    store
        .put_ocpi_object(ocpi_object(Session, "S1", "NL-EMS", 40))
        .await
        .unwrap();
    let ids =
        |objects: Vec<OcpiObject>| -> Vec<String> { objects.into_iter().map(|o| o.id).collect() };
    let window = |limit| UpdatedWindow {
        limit,
        ..UpdatedWindow::default()
    };
    let all = store
        .ocpi_objects_updated(Session, "NL-EMS", window(10))
        .await
        .unwrap();
    assert_eq!(ids(all.clone()), ["S2", "S4", "S1"]);
    assert_eq!(all[2].body["kwh"], 40);
    assert_eq!(all[2].transaction_id, "T-S1");
    // The cursor seeks after an entry; the window bounds by time.
    let next = store
        .ocpi_objects_updated(
            Session,
            "NL-EMS",
            UpdatedWindow {
                after: Some((t(20), "S2".into())),
                ..window(10)
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(next), ["S4", "S1"]);
    let bounded = store
        .ocpi_objects_updated(
            Session,
            "NL-EMS",
            UpdatedWindow {
                from: Some(t(15)),
                to: Some(t(40)),
                offset: 1,
                ..window(10)
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(bounded), ["S4"]);
    assert_eq!(
        store
            .count_ocpi_objects_updated(Session, "NL-EMS", Some(t(15)), Some(t(40)))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .count_ocpi_objects_updated(Session, "NL-EMS", None, None)
            .await
            .unwrap(),
        3
    );
    // Kinds and parties stay apart.
    assert_eq!(
        ids(store
            .ocpi_objects_updated(Cdr, "NL-EMS", window(10))
            .await
            .unwrap()),
        ["S1"]
    );
    assert_eq!(
        ids(store
            .ocpi_objects_updated(Session, "DE-XYZ", window(10))
            .await
            .unwrap()),
        ["S3"]
    );
    assert_eq!(
        store
            .ocpi_object(Cdr, "S1")
            .await
            .unwrap()
            .unwrap()
            .last_updated,
        t(30)
    );
    assert!(store.ocpi_object(Cdr, "S2").await.unwrap().is_none());
}

pub async fn cluster_leases_expire_and_the_newest_presence_wins(fx: Fixture) {
    let Some(cluster) = fx.store.cluster() else {
        // One node only: the embedded store keeps no cluster state.
        return;
    };
    let lease = |id: &str, stations| NodeLease {
        node_id: id.to_owned(),
        url: format!("http://{id}:9412"),
        started_at: t(0),
        stations,
    };
    cluster.renew_node(lease("a", 3), 60).await.unwrap();
    cluster.renew_node(lease("b", 1), 1).await.unwrap();
    cluster.renew_node(lease("a", 4), 60).await.unwrap();
    let mut live = cluster.live_nodes().await.unwrap();
    live.sort_by(|x, y| x.node_id.cmp(&y.node_id));
    assert_eq!(live, vec![lease("a", 4), lease("b", 1)]);
    // b stops renewing: its lease is gone after its TTL.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    let live: Vec<String> = cluster
        .live_nodes()
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.node_id)
        .collect();
    assert_eq!(live, ["a"]);
    cluster.remove_node("a").await.unwrap();
    assert!(cluster.live_nodes().await.unwrap().is_empty());

    let presence = |node: &str, connection| Presence {
        node_id: node.to_owned(),
        connection,
    };
    // The later connection wins, whatever order the writes arrive in.
    cluster
        .put_presence("CS1", presence("b", 2_000))
        .await
        .unwrap();
    cluster
        .put_presence("CS1", presence("a", 1_000))
        .await
        .unwrap();
    assert_eq!(
        cluster.presence("CS1").await.unwrap(),
        Some(presence("b", 2_000))
    );
    // The older connection's disconnect leaves the newer row alone.
    cluster.remove_presence("CS1", 1_000).await.unwrap();
    assert_eq!(
        cluster.presence("CS1").await.unwrap(),
        Some(presence("b", 2_000))
    );
    cluster.remove_presence("CS1", 2_000).await.unwrap();
    assert_eq!(cluster.presence("CS1").await.unwrap(), None);
    assert_eq!(cluster.presence("CS2").await.unwrap(), None);
}

pub async fn ocpi_push_queues_keep_order_and_coalesce_when_asked(fx: Fixture) {
    let store = &fx.store;
    let first = store
        .enqueue_push("p1", push("L1", json!(1)), false)
        .await
        .unwrap()
        .unwrap();
    let second = store
        .enqueue_push("p1", push("L2", json!(2)), false)
        .await
        .unwrap()
        .unwrap();
    let third = store
        .enqueue_push("p1", push("L1", json!(3)), false)
        .await
        .unwrap()
        .unwrap();
    assert!(first < second && second < third, "{first} {second} {third}");
    store
        .enqueue_push("p2", push("L1", json!(9)), false)
        .await
        .unwrap();
    let bodies = |pushes: Vec<OcpiPush>| pushes.into_iter().map(|p| p.body).collect::<Vec<_>>();
    assert_eq!(
        bodies(store.pending_pushes("p1", 10).await.unwrap()),
        [json!(1), json!(2), json!(3)]
    );
    assert_eq!(
        bodies(store.pending_pushes("p1", 2).await.unwrap()),
        [json!(1), json!(2)]
    );
    assert_eq!(store.count_pushes("p1").await.unwrap(), 3);
    // Coalescing: L2's pending push is replaced by the new one, at the end.
    let coalesced = store
        .enqueue_push("p1", push("L2", json!(4)), true)
        .await
        .unwrap();
    assert!(coalesced.is_some());
    assert_eq!(
        bodies(store.pending_pushes("p1", 10).await.unwrap()),
        [json!(1), json!(3), json!(4)]
    );
    // An object with nothing pending is not appended when coalescing.
    assert_eq!(
        store
            .enqueue_push("p1", push("L7", json!(5)), true)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.count_pushes("p1").await.unwrap(), 3);
    // Delivered pushes go; the object's latest pending push stays found.
    store.remove_push("p1", first).await.unwrap();
    store.remove_push("p1", first).await.unwrap();
    assert!(store
        .enqueue_push("p1", push("L1", json!(6)), true)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        bodies(store.pending_pushes("p1", 10).await.unwrap()),
        [json!(4), json!(6)]
    );
    store.clear_pushes("p1").await.unwrap();
    assert_eq!(store.count_pushes("p1").await.unwrap(), 0);
    assert_eq!(
        store
            .enqueue_push("p1", push("L1", json!(7)), true)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        bodies(store.pending_pushes("p2", 10).await.unwrap()),
        [json!(9)],
        "other partners keep theirs"
    );
}

pub async fn transaction_events_are_idempotent_by_seq_no(fx: Fixture) {
    let started = event("CS1", "T1", 0, TransactionEventKind::Started);
    assert!(fx
        .store
        .apply_transaction_event(started.clone())
        .await
        .unwrap());
    assert!(
        !fx.store
            .apply_transaction_event(started.clone())
            .await
            .unwrap(),
        "retry is a no-op"
    );
    let tx = fx.store.transaction("CS1", "T1").await.unwrap().unwrap();
    assert_eq!((tx.event_count, tx.meter_value_count), (1, 1));
    let values = fx
        .store
        .meter_values("CS1", "T1", page(0, 10))
        .await
        .unwrap();
    assert_eq!(values.len(), 1, "the retry stored no second meter value");
}

pub async fn transactions_fold_their_events(fx: Fixture) {
    let mut started = event("CS1", "T1", 0, TransactionEventKind::Started);
    started.id_token = Some(IdTokenRef {
        id: "DEADBEEF".into(),
        token_type: "ISO14443".into(),
    });
    let mut updated = event("CS1", "T1", 1, TransactionEventKind::Updated);
    updated.offline = true;
    let mut ended = event("CS1", "T1", 2, TransactionEventKind::Ended);
    ended.stop_reason = Some("EVDisconnected".into());
    // Events may arrive out of order (offline queue): the summary is the same.
    for e in [ended, started, updated] {
        assert!(fx.store.apply_transaction_event(e).await.unwrap());
    }
    let tx = fx.store.transaction("CS1", "T1").await.unwrap().unwrap();
    assert_eq!(tx.started_at, Some(t(0)));
    assert_eq!(tx.ended_at, Some(t(120)));
    assert_eq!(tx.stop_reason.as_deref(), Some("EVDisconnected"));
    assert_eq!(
        tx.id_token.as_ref().map(|t| t.id.as_str()),
        Some("DEADBEEF")
    );
    assert_eq!(
        (tx.last_seq_no, tx.event_count, tx.meter_value_count),
        (2, 3, 3)
    );
    assert!(tx.offline);
    let values = fx
        .store
        .meter_values("CS1", "T1", page(0, 10))
        .await
        .unwrap();
    let seqs: Vec<_> = values
        .iter()
        .map(|v| (v.seq_no, v.sampled_values[0].value))
        .collect();
    assert_eq!(
        seqs,
        [(0, 0.0), (1, 1000.0), (2, 2000.0)],
        "meter values in event order"
    );
    assert_eq!(fx.store.transaction("CS1", "T2").await.unwrap(), None);
}

pub async fn transactions_and_meter_values_page(fx: Fixture) {
    for tx in ["T3", "T1", "T2"] {
        fx.store
            .apply_transaction_event(event("CS1", tx, 0, TransactionEventKind::Started))
            .await
            .unwrap();
    }
    let mut many = event("CS1", "T1", 1, TransactionEventKind::Updated);
    many.meter_values = (0..5).map(|i| meter(100 + i, i as f64)).collect();
    fx.store.apply_transaction_event(many).await.unwrap();

    let ids = |v: Vec<Transaction>| v.into_iter().map(|t| t.transaction_id).collect::<Vec<_>>();
    assert_eq!(
        ids(fx
            .store
            .list_transactions("CS1", page(0, 10))
            .await
            .unwrap()),
        ["T1", "T2", "T3"]
    );
    assert_eq!(
        ids(fx.store.list_transactions("CS1", page(1, 1)).await.unwrap()),
        ["T2"]
    );
    assert!(fx
        .store
        .list_transactions("CS2", page(0, 10))
        .await
        .unwrap()
        .is_empty());

    let values = fx
        .store
        .meter_values("CS1", "T1", page(2, 3))
        .await
        .unwrap();
    let got: Vec<_> = values.iter().map(|v| v.sampled_values[0].value).collect();
    assert_eq!(
        got,
        [1.0, 2.0, 3.0],
        "one start value, then the five of seq 1 in order"
    );

    assert_eq!(
        ids(fx
            .store
            .list_transactions("CS1", after("T1", 0, 10))
            .await
            .unwrap()),
        ["T2", "T3"]
    );
    // Far-apart seq_nos (a backend may bucket meter values by seq_no) still
    // come back in event order, and an event's values arrive whole.
    for seq_no in [100_000, 700, u64::MAX, 5_000] {
        fx.store
            .apply_transaction_event(event("CS1", "T1", seq_no, TransactionEventKind::Updated))
            .await
            .unwrap();
    }
    let values = fx
        .store
        .meter_values("CS1", "T1", page(5, 10))
        .await
        .unwrap();
    let seqs: Vec<_> = values.iter().map(|v| v.seq_no).collect();
    assert_eq!(seqs, [1, 700, 5_000, 100_000, u64::MAX]);
    assert!(
        fx.store
            .meter_values("CS1", "T1", after("x", 0, 1))
            .await
            .is_err(),
        "meter values page by offset only"
    );
}

/// An event whose meter values are far more than one request of the
/// backend may carry (a backend that writes an event in one batch must
/// send the rest apart: Cassandra and ScyllaDB refuse a batch over 50 KiB)
/// keeps every value, in order.
pub async fn an_event_with_a_large_meter_report_keeps_every_value(fx: Fixture) {
    fx.store
        .apply_transaction_event(event("CS1", "T1", 0, TransactionEventKind::Started))
        .await
        .unwrap();
    let mut report = event("CS1", "T1", 1, TransactionEventKind::Updated);
    report.meter_values = (0..300)
        .map(|i| {
            let mut value = meter(100 + i, i as f64);
            let sample = value.sampled_values[0].clone();
            // Four phases of one reading, about 600 bytes a value stored.
            value.sampled_values = ["L1", "L2", "L3", "N"]
                .map(|phase| SampledValue {
                    phase: Some(phase.into()),
                    ..sample.clone()
                })
                .to_vec();
            value
        })
        .collect();
    assert!(fx.store.apply_transaction_event(report).await.unwrap());
    let tx = fx.store.transaction("CS1", "T1").await.unwrap().unwrap();
    assert_eq!((tx.event_count, tx.meter_value_count), (2, 301));
    let values = fx
        .store
        .meter_values("CS1", "T1", page(0, 500))
        .await
        .unwrap();
    let readings: Vec<_> = values.iter().map(|v| v.sampled_values[0].value).collect();
    let expected: Vec<f64> = std::iter::once(0.0)
        .chain((0..300).map(|i| i as f64))
        .collect();
    assert_eq!(readings, expected, "every value, in event order");
    assert!(values[1..].iter().all(|v| v.sampled_values.len() == 4));
}

/// One meter value far larger than a backend's batch may carry (it is
/// also in the transaction's summary and the event's digest) is kept.
pub async fn an_event_with_one_huge_meter_value_is_kept(fx: Fixture) {
    let mut report = event("CS1", "T1", 0, TransactionEventKind::Started);
    let sample = report.meter_values[0].sampled_values[0].clone();
    report.meter_values[0].sampled_values = (0..400)
        .map(|i| SampledValue {
            value: f64::from(i),
            phase: Some(format!("L{i}")),
            ..sample.clone()
        })
        .collect();
    assert!(fx.store.apply_transaction_event(report).await.unwrap());
    let tx = fx.store.transaction("CS1", "T1").await.unwrap().unwrap();
    assert_eq!((tx.event_count, tx.meter_value_count), (1, 1));
    let values = fx
        .store
        .meter_values("CS1", "T1", page(0, 10))
        .await
        .unwrap();
    assert_eq!(values.len(), 1);
    assert_eq!(values[0].sampled_values.len(), 400);
    assert_eq!(values[0].sampled_values[399].value, 399.0);
}

pub async fn concurrent_writes_all_land(fx: Fixture) {
    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = fx.store.clone();
        tasks.push(tokio::spawn(async move {
            store.put_token(token(&format!("U{i:03}"))).await
        }));
    }
    for task in tasks {
        task.await.expect("task").expect("write");
    }
    let all = fx.store.list_tokens(page(0, 100)).await.unwrap().len()
        + fx.store.list_tokens(page(100, 100)).await.unwrap().len();
    assert_eq!(all, 200);
}

pub async fn writes_survive_reopen(mut fx: Fixture) {
    registered(&fx, "CS1").await;
    fx.store
        .put_variables("CS1", vec![reported("K", "V", 1)])
        .await
        .unwrap();
    fx.store.put_token(token("A")).await.unwrap();
    fx.store
        .write_location(location("L1"), Expect::Any)
        .await
        .unwrap();
    fx.store
        .apply_transaction_event(event("CS1", "T1", 0, TransactionEventKind::Started))
        .await
        .unwrap();
    fx.reopen().await;
    assert!(fx.store.station("CS1").await.unwrap().is_some());
    assert_eq!(
        fx.store.variables("CS1", page(0, 10)).await.unwrap().len(),
        1
    );
    assert_eq!(fx.store.token("A").await.unwrap(), Some(token("A")));
    let l1 = fx.store.location("L1").await.unwrap().map(|s| s.location);
    assert_eq!(l1, Some(location("L1")));
    assert_eq!(
        fx.store
            .count_locations_updated(None, None, false)
            .await
            .unwrap(),
        1
    );
    assert!(fx.store.transaction("CS1", "T1").await.unwrap().is_some());
    assert!(
        !fx.store
            .apply_transaction_event(event("CS1", "T1", 0, TransactionEventKind::Started))
            .await
            .unwrap(),
        "seen events are remembered across restarts"
    );
}

pub async fn transaction_numbers_are_unique_and_survive_reopen(mut fx: Fixture) {
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(fx.store.next_transaction_number("CS1").await.unwrap());
    }
    // Unique and increasing; a backend may reserve ids in blocks, so after
    // a restart the next one is only promised to be above every earlier one.
    assert!(seen[0] > 0);
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    fx.reopen().await;
    let after_restart = fx.store.next_transaction_number("CS1").await.unwrap();
    assert!(
        after_restart > seen[4],
        "{after_restart} reused after a restart (had {seen:?})"
    );
}

/// Runs `n` copies of `op` at once (indexed) and collects what each returned.
async fn at_once<T, F, Fut>(n: usize, op: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(op(i))).collect();
    let mut results = Vec::with_capacity(n);
    for task in tasks {
        results.push(task.await.expect("task"));
    }
    results
}

pub async fn concurrent_registrations_of_one_station_agree(fx: Fixture) {
    let store = fx.store.clone();
    let records = at_once(8, move |i| {
        let store = store.clone();
        async move {
            let password = format!("hash-{i}");
            store
                .register_station("CS1", basic_auth(&password), t(i as i64))
                .await
                .expect("register")
        }
    })
    .await;
    let stored = fx.store.station("CS1").await.unwrap().expect("registered");
    assert!(
        records
            .iter()
            .all(|r| r.registered_at == stored.registered_at),
        "one registration created the station, the others replaced its credentials"
    );
    assert!(
        records.iter().any(|r| r.auth == stored.auth),
        "the stored credentials are one caller's"
    );
    let listed = fx.store.list_stations(page(0, 10)).await.unwrap();
    assert_eq!(listed.len(), 1);
}

pub async fn a_concurrently_delivered_event_counts_once(fx: Fixture) {
    fx.store
        .apply_transaction_event(event("CS1", "T1", 0, TransactionEventKind::Started))
        .await
        .unwrap();
    let store = fx.store.clone();
    let applied = at_once(8, move |_| {
        let store = store.clone();
        async move {
            store
                .apply_transaction_event(event("CS1", "T1", 1, TransactionEventKind::Updated))
                .await
                .expect("apply")
        }
    })
    .await;
    assert_eq!(applied.iter().filter(|a| **a).count(), 1, "{applied:?}");
    let tx = fx.store.transaction("CS1", "T1").await.unwrap().unwrap();
    assert_eq!((tx.event_count, tx.meter_value_count), (2, 2));
    let values = fx
        .store
        .meter_values("CS1", "T1", page(0, 10))
        .await
        .unwrap();
    assert_eq!(values.len(), 2);
    let listed = fx
        .store
        .list_transactions("CS1", page(0, 10))
        .await
        .unwrap();
    assert_eq!(listed, [tx], "the listing shows the final summary");
}

pub async fn concurrent_transaction_numbers_are_distinct(fx: Fixture) {
    let store = fx.store.clone();
    let mut numbers = at_once(50, move |_| {
        let store = store.clone();
        async move { store.next_transaction_number("CS1").await.expect("number") }
    })
    .await;
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 50);
    assert!(numbers[0] > 0);
}

fn command(station: &str, at: i64, action: &str) -> CommandRecord {
    let mut command = CommandRecord::pending(
        station,
        "ocpp",
        action,
        OcppVersion::V201,
        json!({"type": "Immediate"}),
        DeliveryClass::Immediate,
        t(at),
    );
    command.expires_at = Some(t(at + 60));
    command
}

pub async fn commands_keep_their_outbox_and_list_newest_first(fx: Fixture) {
    registered(&fx, "CS1").await;
    registered(&fx, "CS10").await;
    let commands: Vec<CommandRecord> = (0..5)
        .map(|i| {
            command(
                "CS1",
                i,
                if i % 2 == 0 {
                    "Reset"
                } else {
                    "TriggerMessage"
                },
            )
        })
        .collect();
    for c in &commands {
        fx.store.create_command(c.clone()).await.unwrap();
    }
    fx.store
        .create_command(command("CS10", 9, "Reset"))
        .await
        .unwrap();
    assert_eq!(
        fx.store.command("CS1", &commands[2].id).await.unwrap(),
        Some(commands[2].clone())
    );
    assert_eq!(
        fx.store.command("CS10", &commands[2].id).await.unwrap(),
        None
    );

    // The outbox: every pending command, oldest first, of this station only.
    let outbox = fx.store.outbox("CS1").await.unwrap();
    let ids = |records: &[CommandRecord]| records.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&outbox), ids(&commands));

    // Settling one takes it out of the outbox and keeps its answer.
    let mut answered = commands[1].clone();
    answered.settle(
        CommandStatus::Rejected,
        Some(json!({"status": "Rejected"})),
        None,
        t(10),
    );
    fx.store.update_command(&answered).await.unwrap();
    let mut failed = commands[3].clone();
    failed.settle(
        CommandStatus::Failed,
        None,
        Some(CommandError {
            code: "Timeout".into(),
            description: "no answer within 30 s".into(),
            details: None,
        }),
        t(11),
    );
    fx.store.update_command(&failed).await.unwrap();
    assert_eq!(
        fx.store.command("CS1", &answered.id).await.unwrap(),
        Some(answered.clone())
    );
    let outbox = fx.store.outbox("CS1").await.unwrap();
    assert_eq!(
        ids(&outbox),
        vec![
            commands[0].id.clone(),
            commands[2].id.clone(),
            commands[4].id.clone()
        ]
    );

    // Lists: newest first, paged by offset or by cursor, filtered.
    let all = fx
        .store
        .list_commands("CS1", CommandFilter::default(), page(0, 10))
        .await
        .unwrap();
    let mut newest_first = ids(&commands);
    newest_first.reverse();
    assert_eq!(ids(&all), newest_first);
    let second = fx
        .store
        .list_commands("CS1", CommandFilter::default(), page(2, 2))
        .await
        .unwrap();
    assert_eq!(ids(&second), newest_first[2..4].to_vec());
    let after_cursor = fx
        .store
        .list_commands(
            "CS1",
            CommandFilter::default(),
            after(&newest_first[1], 0, 10),
        )
        .await
        .unwrap();
    assert_eq!(ids(&after_cursor), newest_first[2..].to_vec());
    let resets = fx
        .store
        .list_commands(
            "CS1",
            CommandFilter {
                action: Some("Reset".into()),
                ..CommandFilter::default()
            },
            page(0, 10),
        )
        .await
        .unwrap();
    assert_eq!(
        ids(&resets),
        vec![
            commands[4].id.clone(),
            commands[2].id.clone(),
            commands[0].id.clone()
        ]
    );
    let pending_triggers = fx
        .store
        .list_commands(
            "CS1",
            CommandFilter {
                status: Some(CommandStatus::Failed),
                action: Some("TriggerMessage".into()),
            },
            page(0, 10),
        )
        .await
        .unwrap();
    assert_eq!(ids(&pending_triggers), vec![commands[3].id.clone()]);
}

pub async fn commands_need_a_station_and_an_existing_record(fx: Fixture) {
    let orphan = command("NOPE", 0, "Reset");
    assert!(matches!(
        fx.store.create_command(orphan.clone()).await,
        Err(StoreError::NotFound(_))
    ));
    registered(&fx, "CS1").await;
    let never_created = command("CS1", 1, "Reset");
    assert!(matches!(
        fx.store.update_command(&never_created).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(fx.store.outbox("CS1").await.unwrap().is_empty());
    assert!(fx
        .store
        .list_commands("CS1", CommandFilter::default(), page(0, 10))
        .await
        .unwrap()
        .is_empty());
}

pub async fn several_commands_are_stored_in_their_order(fx: Fixture) {
    registered(&fx, "CS1").await;
    let first = command("CS1", 1, "SetVariables");
    let mut known = command("CS1", 2, "InstallCertificate");
    known.settle(CommandStatus::Accepted, None, None, t(2));
    let last = command("CS1", 3, "TriggerMessage");
    fx.store
        .create_commands("CS1", &[first.clone(), known.clone(), last.clone()])
        .await
        .unwrap();
    let outbox = fx.store.outbox("CS1").await.unwrap();
    assert_eq!(
        outbox,
        vec![first, last],
        "settled commands skip the outbox"
    );
    let listed = fx
        .store
        .list_commands("CS1", CommandFilter::default(), page(0, 10))
        .await
        .unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[1], known);
}
pub async fn pending_commands_survive_reopen(mut fx: Fixture) {
    registered(&fx, "CS1").await;
    let mut configuration = command("CS1", 1, "SetVariables");
    configuration.class = DeliveryClass::Configuration;
    configuration.expires_at = None;
    fx.store
        .create_command(configuration.clone())
        .await
        .unwrap();
    fx.reopen().await;
    assert_eq!(fx.store.outbox("CS1").await.unwrap(), vec![configuration]);
}

pub async fn batches_keep_their_commands_in_station_order(fx: Fixture) {
    let ids = ["S2", "S1", "S3"];
    for id in ids {
        registered(&fx, id).await;
    }
    let batch = BatchRecord {
        batch_id: new_command_id(t(1)),
        operation: "reset".into(),
        action: Some("Reset".into()),
        created_at: t(1),
        commands: 3,
        skipped: BTreeMap::from([("NotConnected".to_owned(), 2)]),
        untranslatable: None,
    };
    let commands: Vec<CommandRecord> = ids
        .iter()
        .map(|id| {
            let mut c = command(id, 1, "Reset");
            c.batch_id = Some(batch.batch_id.clone());
            c
        })
        .collect();
    fx.store
        .create_batch(batch.clone(), commands.clone())
        .await
        .unwrap();
    assert_eq!(
        fx.store.batch(&batch.batch_id).await.unwrap(),
        Some(batch.clone())
    );
    assert_eq!(
        fx.store
            .batch("0000000000000000000000000000")
            .await
            .unwrap(),
        None
    );
    let stations = |records: Vec<CommandRecord>| {
        records
            .into_iter()
            .map(|c| c.station_id)
            .collect::<Vec<_>>()
    };
    let all = fx
        .store
        .batch_commands(&batch.batch_id, page(0, 10))
        .await
        .unwrap();
    assert_eq!(stations(all), vec!["S1", "S2", "S3"]);
    let rest = fx
        .store
        .batch_commands(&batch.batch_id, after("S1", 0, 1))
        .await
        .unwrap();
    assert_eq!(stations(rest), vec!["S2"]);
    // Each is an ordinary command of its station, in its outbox.
    for c in &commands {
        assert_eq!(
            fx.store.outbox(&c.station_id).await.unwrap(),
            vec![c.clone()]
        );
    }
    let mut settled = commands[0].clone();
    settled.settle(
        CommandStatus::Accepted,
        Some(json!({"status": "Accepted"})),
        None,
        t(2),
    );
    fx.store.update_command(&settled).await.unwrap();
    let seen = fx
        .store
        .batch_commands(&batch.batch_id, page(0, 10))
        .await
        .unwrap();
    assert!(
        seen.contains(&settled),
        "the batch view reads the commands as they are now"
    );
}

fn reported(key: &str, value: &str, at: i64) -> ReportedVariable {
    ReportedVariable {
        key: key.into(),
        value: Some(value.into()),
        mutability: None,
        status: None,
        source: "GetConfiguration".into(),
        reported_at: t(at),
    }
}

pub async fn variables_are_kept_per_key_in_key_order(fx: Fixture) {
    registered(&fx, "CS1").await;
    registered(&fx, "CS10").await;
    fx.store
        .put_variables(
            "CS1",
            vec![
                reported("B", "1", 1),
                reported("A", "1", 1),
                reported("C", "1", 1),
            ],
        )
        .await
        .unwrap();
    fx.store
        .put_variables("CS1", vec![reported("B", "2", 2)])
        .await
        .unwrap();
    fx.store
        .put_variables("CS10", vec![reported("A", "other", 1)])
        .await
        .unwrap();
    let all = fx.store.variables("CS1", page(0, 10)).await.unwrap();
    let keys: Vec<&str> = all.iter().map(|v| v.key.as_str()).collect();
    assert_eq!(keys, ["A", "B", "C"]);
    assert_eq!(all[1], reported("B", "2", 2), "a key set again is replaced");
    let rest = fx.store.variables("CS1", after("A", 0, 1)).await.unwrap();
    assert_eq!(rest, vec![reported("B", "2", 2)]);
    assert_eq!(
        fx.store.variables("CS10", page(0, 10)).await.unwrap().len(),
        1
    );
    // Many at once (a report part): all land.
    let many: Vec<ReportedVariable> = (0..120)
        .map(|i| reported(&format!("K{i:03}"), "v", 3))
        .collect();
    fx.store.put_variables("CS1", many).await.unwrap();
    assert_eq!(
        fx.store.variables("CS1", page(0, 500)).await.unwrap().len(),
        123
    );
}

pub async fn active_transactions_are_indexed_fleet_wide(fx: Fixture) {
    for (station, tx) in [("CS2", "T1"), ("CS1", "T2"), ("CS1", "T1"), ("CS10", "T9")] {
        registered(&fx, station).await;
        fx.store
            .apply_transaction_event(event(station, tx, 0, TransactionEventKind::Started))
            .await
            .unwrap();
    }
    fx.store
        .apply_transaction_event(event("CS1", "T1", 1, TransactionEventKind::Updated))
        .await
        .unwrap();
    // A retried Started event changes nothing.
    assert!(!fx
        .store
        .apply_transaction_event(event("CS1", "T1", 0, TransactionEventKind::Started))
        .await
        .unwrap());
    let keys = |list: Vec<Transaction>| {
        list.into_iter()
            .map(|t| format!("{}/{}", t.station_id, t.transaction_id))
            .collect::<Vec<_>>()
    };
    let all = fx.store.active_transactions(page(0, 10)).await.unwrap();
    assert_eq!(all[0].energy_wh, Some(1000.0), "the summary as it is now");
    assert_eq!(keys(all), ["CS1/T1", "CS1/T2", "CS10/T9", "CS2/T1"]);
    let rest = fx
        .store
        .active_transactions(after(&active_key("CS1", "T2"), 0, 2))
        .await
        .unwrap();
    assert_eq!(keys(rest), ["CS10/T9", "CS2/T1"]);
    for _ in 0..2 {
        // Ended takes it out; the retry finds it out already.
        fx.store
            .apply_transaction_event(event("CS10", "T9", 5, TransactionEventKind::Ended))
            .await
            .unwrap();
    }
    let all = fx.store.active_transactions(page(0, 10)).await.unwrap();
    assert_eq!(keys(all), ["CS1/T1", "CS1/T2", "CS2/T1"]);
    // A Started retried after its Ended (a station resending its queue)
    // does not list the ended transaction as active again.
    assert!(!fx
        .store
        .apply_transaction_event(event("CS10", "T9", 0, TransactionEventKind::Started))
        .await
        .unwrap());
    let all = fx.store.active_transactions(page(0, 10)).await.unwrap();
    assert_eq!(keys(all), ["CS1/T1", "CS1/T2", "CS2/T1"]);
}
