//! `/api/v0/location`: store, look up, list.

use serde_json::{json, Value};

use crate::common::{location_body, start};

#[actix_web::test]
async fn location_lifecycle() {
    let s = start().await;
    let created = s.post("/api/v0/location/LOC1", &location_body()).await;
    assert_eq!(created.status, 201, "{created:?}");
    let found = s.get("/api/v0/location/LOC1").await;
    assert_eq!(found.status, 200);
    assert_eq!(found.body["id"], "LOC1");
    assert!(found.body["last_updated"].is_string());
    // Completed with what OCPI requires, stamped by voltgate.
    let stamp = found.body["last_updated"].clone();
    let mut expected = location_body();
    expected["id"] = json!("LOC1");
    expected["publish"] = json!(true);
    expected["time_zone"] = json!("UTC");
    expected["last_updated"] = stamp.clone();
    expected["evses"][0]["status"] = json!("UNKNOWN");
    expected["evses"][0]["last_updated"] = stamp.clone();
    expected["evses"][0]["connectors"][0]["last_updated"] = stamp.clone();
    assert_eq!(found.body, expected, "the full body round-trips");
    let millis = stamp.as_str().unwrap();
    assert!(
        millis.ends_with('Z') && millis.len() == 24,
        "{millis}: RFC 3339, ms, UTC"
    );
    s.get("/api/v0/location/LOC2")
        .await
        .assert_error(404, "location \"LOC2\" not found");
}

#[actix_web::test]
async fn locations_list_in_id_order() {
    let s = start().await;
    for id in ["L3", "L1", "L2"] {
        assert_eq!(
            s.post(&format!("/api/v0/location/{id}"), &location_body())
                .await
                .status,
            201
        );
    }
    let ids = |v: Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|l| l["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(s.get("/api/v0/location").await.body),
        ["L1", "L2", "L3"]
    );
    assert_eq!(
        ids(s.get("/api/v0/location?offset=1&limit=1").await.body),
        ["L2"]
    );
    assert!(ids(s.get("/api/v0/location?offset=3").await.body).is_empty());
    assert!(ids(s.get("/api/v0/location?limit=0").await.body).is_empty());
}

#[actix_web::test]
async fn location_input_is_checked() {
    let s = start().await;
    let with = |pointer: &str, value: Value| {
        let mut body = location_body();
        *body.pointer_mut(pointer).expect("field exists") = value;
        body
    };
    let cases = [
        (with("/parking_type", json!("ROOFTOP")), "parking_type"),
        (
            with("/evses/0/connectors/0/standard", json!("SCHUKO")),
            "evses[0].connectors[0].standard",
        ),
        (
            with("/evses/0/connectors/0/format", json!("PLUG")),
            "evses[0].connectors[0].format",
        ),
        (
            with("/evses/0/connectors/0/power_type", json!("AC")),
            "evses[0].connectors[0].power_type",
        ),
        (
            with("/evses/0/connectors/0/max_voltage", json!("400")),
            "max_voltage",
        ),
        (
            with("/evses/0/connectors", json!([])),
            "evses[0].connectors",
        ),
        (
            with("/coordinates/latitude", json!("91.0")),
            "coordinates.latitude",
        ),
        (
            with("/coordinates/longitude", json!("east")),
            "coordinates.longitude",
        ),
        (with("/country_code", json!("GBR")), "country_code"),
        (with("/country", json!("GB")), "country"),
        (with("/city", json!(7)), "city"),
    ];
    for (body, needle) in cases {
        s.post("/api/v0/location/LOC1", &body)
            .await
            .assert_error(400, needle);
    }
    let mut missing = location_body();
    missing.as_object_mut().unwrap().remove("coordinates");
    s.post("/api/v0/location/LOC1", &missing)
        .await
        .assert_error(400, "missing field `coordinates`");
    let mut other_id = location_body();
    other_id["id"] = json!("LOC9");
    s.post("/api/v0/location/LOC1", &other_id)
        .await
        .assert_error(400, "id");
    s.get("/api/v0/location/LOC1")
        .await
        .assert_error(404, "not found");
}
