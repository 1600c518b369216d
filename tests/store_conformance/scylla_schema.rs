//! What the ScyllaDB backend does at start besides serving the traits:
//! refusing a cluster it cannot reach, and a keyspace it cannot use.

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use voltgate::store::scylla::{ScyllaSettings, ScyllaStore};
use voltgate::store::Store;

use crate::fixture::scylla_settings;

fn refusal(result: Result<ScyllaStore, voltgate::store::StoreError>) -> String {
    match result {
        Ok(_) => panic!("the store opened"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn an_unreachable_cluster_is_refused_with_its_address() {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let mut settings = ScyllaSettings::new(vec!["127.0.0.1:1".into()], "voltgate");
    settings.connect_timeout_ms = 2_000;
    let why = refusal(ScyllaStore::connect(&settings).await);
    assert!(
        why.contains("cannot reach the ScyllaDB cluster at 127.0.0.1:1"),
        "{why}"
    );
}

/// A raw session on the node of `settings`, for changing what voltgate made.
async fn session(settings: &ScyllaSettings) -> Session {
    SessionBuilder::new()
        .known_nodes(settings.uri.clone().unwrap_or_default())
        .build()
        .await
        .expect("raw session")
}

#[tokio::test]
async fn an_incompatible_keyspace_is_refused_with_the_difference() {
    let settings = match scylla_settings() {
        Ok(settings) => settings,
        Err(why) => return crate::say_skipped(&why),
    };
    let store = ScyllaStore::connect(&settings)
        .await
        .expect("fresh keyspace");
    let outcome = AssertUnwindSafe(refusals(&settings)).catch_unwind().await;
    store.drop_keyspace().await.expect("keyspace dropped");
    store.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Changes the keyspace behind voltgate's back and checks each is refused.
async fn refusals(settings: &ScyllaSettings) {
    let raw = session(settings).await;
    let keyspace = &settings.keyspace;

    // A missing column and one of another type, as an older or foreign
    // schema would have them.
    for cql in [
        format!("ALTER TABLE {keyspace}.stations DROP password_hash"),
        format!("DROP TABLE {keyspace}.certificates"),
        format!(
            "CREATE TABLE {keyspace}.certificates (hash text PRIMARY KEY, pem int, uploaded_at timestamp)"
        ),
        // Same columns, another key: the list order and the partitions differ.
        format!("DROP TABLE {keyspace}.ocpi_partner_tokens"),
        format!(
            "CREATE TABLE {keyspace}.ocpi_partner_tokens (token_hash text, partner_id text, PRIMARY KEY ((token_hash), partner_id))"
        ),
    ] {
        raw.query_unpaged(cql, ()).await.expect("schema change");
    }
    let why = refusal(ScyllaStore::connect(settings).await);
    assert!(why.contains("not compatible"), "{why}");
    assert!(why.contains("stations.password_hash is missing"), "{why}");
    assert!(
        why.contains("certificates.pem is int, expected text"),
        "{why}"
    );
    assert!(
        why.contains(
            "ocpi_partner_tokens.partner_id is Clustering(0) in the key, expected Regular"
        ),
        "{why}"
    );

    // A keyspace that says it holds another version of the data model.
    raw.query_unpaged(
        format!(
            "UPDATE {keyspace}.schema_version SET model_version = 99 WHERE component = 'voltgate'"
        ),
        (),
    )
    .await
    .expect("version change");
    let why = refusal(ScyllaStore::connect(settings).await);
    assert!(why.contains("data model version 99"), "{why}");
}

#[tokio::test]
async fn a_keyspace_of_the_previous_model_is_upgraded_in_place() {
    let settings = match scylla_settings() {
        Ok(settings) => settings,
        Err(why) => return crate::say_skipped(&why),
    };
    let store = ScyllaStore::connect(&settings)
        .await
        .expect("fresh keyspace");
    let outcome = AssertUnwindSafe(upgrade_from_model_1(&settings, &store))
        .catch_unwind()
        .await;
    store.drop_keyspace().await.expect("keyspace dropped");
    store.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Turns the keyspace into what model 1 made (no command tables, the four
/// per-kind work queues with work in them, version 1), then opens it
/// again: it is upgraded, data kept, the queued work now commands.
async fn upgrade_from_model_1(settings: &ScyllaSettings, store: &ScyllaStore) {
    use chrono::Utc;
    use voltgate::store::*;

    let auth = ChargeStationAuth {
        security_profile: SecurityProfile::UnsecuredBasicAuth,
        base64_sha256_password: Some("h".into()),
        invalid_username_allowed: false,
    };
    store
        .register_station("CS1", auth, Utc::now())
        .await
        .expect("registered");
    // A location as the older release kept it: record and id directory
    // entry, no entry by last_updated (removed below).
    let location: Location = serde_json::from_value(serde_json::json!({
        "id": "L1", "country_code": "GB", "party_id": "TWK", "address": "1 High Street",
        "city": "London", "country": "GBR", "coordinates": {"latitude": "51.5", "longitude": "-0.12"},
        "last_updated": "2026-09-21T00:00:00Z"}))
    .unwrap();
    store
        .write_location(location, Expect::Any)
        .await
        .expect("location written");
    let raw = session(settings).await;
    let keyspace = &settings.keyspace;
    for bucket in 0..16i16 {
        raw.query_unpaged(
            format!(
                "DELETE FROM {keyspace}.directory WHERE kind = 'location_updated' AND bucket = ?"
            ),
            (bucket,),
        )
        .await
        .expect("entry removed");
    }
    for cql in [
        // Transactions as models 1 to 7 had them: no digests.
        format!("DROP TABLE {keyspace}.transactions"),
        format!("CREATE TABLE {keyspace}.transactions (station_id text, transaction_id text, revision bigint, summary text, applied_seq_nos set<bigint>, meter_buckets set<bigint>, PRIMARY KEY ((station_id, transaction_id)))"),
        format!("DROP TABLE {keyspace}.evse_links"),
        format!("DROP TABLE {keyspace}.location_cells"),
        format!("DROP TABLE {keyspace}.province_cities"),
        format!("DROP TABLE {keyspace}.hardware_templates"),
        format!("DROP TABLE {keyspace}.station_commands"),
        format!("DROP TABLE {keyspace}.station_outbox"),
        format!("DROP TABLE {keyspace}.ocpi_partners"),
        format!("DROP TABLE {keyspace}.ocpi_partner_tokens"),
        // Parties as models 1 to 4 kept them.
        format!("CREATE TABLE {keyspace}.ocpi_parties (credentials_token text, url text, status text, registered_at timestamp, PRIMARY KEY (credentials_token))"),
        format!("INSERT INTO {keyspace}.ocpi_parties (credentials_token, url, status, registered_at) VALUES ('tok-a', 'https://emsp.example/ocpi/versions', 'PENDING', 1790000000000)"),
        format!("INSERT INTO {keyspace}.ocpi_parties (credentials_token, status, registered_at) VALUES ('tok-b', 'REGISTERED', 1790000000000)"),
        // The queues as model 1 made them (triggers without evse/connector).
        format!("CREATE TABLE {keyspace}.station_settings (station_id text, name text, value text, status text, status_at timestamp, detail text, PRIMARY KEY ((station_id), name))"),
        format!("CREATE TABLE {keyspace}.station_install_certificates (station_id text, certificate_id text, certificate_use text, pem text, status text, status_at timestamp, detail text, PRIMARY KEY ((station_id), certificate_id))"),
        format!("CREATE TABLE {keyspace}.station_triggers (station_id text, seq bigint, message text, status text, status_at timestamp, detail text, PRIMARY KEY ((station_id), seq))"),
        format!("CREATE TABLE {keyspace}.station_charging_profiles (station_id text, profile_id bigint, evse_id bigint, profile text, status text, status_at timestamp, detail text, PRIMARY KEY ((station_id), profile_id))"),
        format!("INSERT INTO {keyspace}.station_settings (station_id, name, value, status, status_at) VALUES ('CS1', 'HeartbeatInterval', '60', 'Pending', 1790000000000)"),
        format!("INSERT INTO {keyspace}.station_install_certificates (station_id, certificate_id, certificate_use, pem, status, status_at) VALUES ('CS1', 'c1', 'CSMS', 'PEM', 'Accepted', 1790000000000)"),
        format!("INSERT INTO {keyspace}.station_triggers (station_id, seq, message, status, status_at) VALUES ('CS1', 1, 'StatusNotification', 'Pending', 1790000000000)"),
        format!("INSERT INTO {keyspace}.station_charging_profiles (station_id, profile_id, evse_id, profile, status, status_at, detail) VALUES ('CS1', 7, 1, '{{\"id\":7}}', 'NotSupported', 1790000000000, 'purpose')"),
        format!(
            "UPDATE {keyspace}.schema_version SET model_version = 1 WHERE component = 'voltgate'"
        ),
    ] {
        raw.query_unpaged(cql, ()).await.expect("back to model 1");
    }

    let upgraded = ScyllaStore::connect(settings)
        .await
        .expect("a model 1 keyspace opens");
    assert!(
        upgraded.station("CS1").await.unwrap().is_some(),
        "data kept"
    );
    // The queued work is commands now: the pending items in the outbox, in
    // delivery order, the settled ones with their outcome.
    let outbox = upgraded.outbox("CS1").await.unwrap();
    let operations: Vec<&str> = outbox.iter().map(|c| c.operation.as_str()).collect();
    assert_eq!(operations, ["reconfigure", "trigger"], "{outbox:?}");
    assert_eq!(outbox[0].payload["key"], "HeartbeatInterval");
    let all = upgraded
        .list_commands("CS1", CommandFilter::default(), Page::new(0, 10))
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all[0].operation, "setchargingprofile");
    assert_eq!(all[0].status, CommandStatus::Failed);
    assert_eq!(all[0].error.as_ref().unwrap().code, "NotSupported");
    assert_eq!(all[2].operation, "certificates");
    assert_eq!(all[2].status, CommandStatus::Accepted);
    for table in [
        "station_settings",
        "station_install_certificates",
        "station_triggers",
        "station_charging_profiles",
    ] {
        let rows = raw
            .query_unpaged(
                "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ? AND table_name = ?",
                (keyspace.as_str(), table),
            )
            .await
            .unwrap()
            .into_rows_result()
            .unwrap();
        assert_eq!(rows.rows_num(), 0, "{table} is dropped");
    }
    let command = CommandRecord::pending(
        "CS1",
        "ocpp",
        "Reset",
        OcppVersion::V16,
        serde_json::json!({"type": "Hard"}),
        DeliveryClass::Immediate,
        Utc::now(),
    );
    upgraded
        .create_command(command.clone())
        .await
        .expect("the new tables exist");
    assert_eq!(upgraded.outbox("CS1").await.unwrap().len(), 3);
    let version = raw
        .query_unpaged(
            format!(
                "SELECT model_version FROM {keyspace}.schema_version WHERE component = 'voltgate'"
            ),
            (),
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .single_row::<(i32,)>()
        .unwrap();
    assert_eq!(version, (8,));
    // Its transactions table has the digests column of model 8.
    let started = crate::cases::event("CS1", "T1", 0, TransactionEventKind::Started);
    assert!(upgraded.apply_transaction_event(started).await.unwrap());
    let tx = upgraded.transaction("CS1", "T1").await.unwrap().unwrap();
    assert_eq!(tx.event_count, 1);
    // Its OCPI parties are partners: one to call with its TOKEN_A, one whose
    // token is accepted; the old table is gone.
    let partners = upgraded.list_partners().await.unwrap();
    assert_eq!(partners.len(), 2, "{partners:?}");
    let calling = upgraded
        .partner(&partner_id_for("tok-a"))
        .await
        .unwrap()
        .expect("tok-a converted");
    assert_eq!(calling.token_to_partner.as_deref(), Some("tok-a"));
    assert_eq!(calling.status, OcpiRegistrationStatus::Pending);
    let accepted = upgraded
        .partner_by_token(&token_hash("tok-b"))
        .await
        .unwrap()
        .expect("tok-b is accepted");
    assert_eq!(accepted.status, OcpiRegistrationStatus::Registered);
    let parties_left = raw
        .query_unpaged(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ? AND table_name = 'ocpi_parties'",
            (keyspace.as_str(),),
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    assert_eq!(parties_left.rows_num(), 0, "ocpi_parties is dropped");
    // Its locations are listed by last_updated, and links can be kept.
    let listed = upgraded
        .locations_updated(UpdatedWindow {
            limit: 10,
            ..UpdatedWindow::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1, "indexed at the upgrade");
    assert!(upgraded.evse_links("CS1").await.unwrap().is_empty());
    upgraded.close().await;
}
