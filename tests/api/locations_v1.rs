//! `/api/v1/locations`: the management API in OCPI conventions, its
//! conditional writes, sub-resources, listing by `last_updated` and the
//! envelope's answers to bad input.

use awc::http::Method;
use serde_json::{json, Value};

use crate::common::{location_body, start, Reply, TestServer};

fn v1_location(id: &str) -> Value {
    let mut body = location_body();
    body["id"] = json!(id);
    body["time_zone"] = json!("Europe/London");
    body
}

fn etag(reply: &Reply) -> String {
    reply.header("etag").expect("an ETag").to_owned()
}

#[track_caller]
fn assert_ocpi(reply: &Reply, http: u16, code: u64) {
    assert_eq!(reply.status, http, "{reply:?}");
    assert_eq!(reply.body["status_code"], code, "{reply:?}");
    assert!(reply.body["timestamp"].is_string(), "{reply:?}");
}

async fn call(
    s: &TestServer,
    method: Method,
    path: &str,
    body: &Value,
    if_match: Option<&str>,
) -> Reply {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(tag) = if_match {
        headers.push(("if-match", tag));
    }
    s.send_with(method, path, serde_json::to_vec(body).unwrap(), &headers)
        .await
}

#[actix_web::test]
async fn a_location_is_created_replaced_merged_and_deleted_with_etags() {
    let s = start().await;
    let created = s.post("/api/v1/locations", &v1_location("L1")).await;
    assert_ocpi(&created, 200, 1000);
    assert_eq!(created.body["data"]["id"], "L1");
    let first = etag(&created);
    assert_ocpi(
        &s.post("/api/v1/locations", &v1_location("L1")).await,
        200,
        2001,
    );

    let read = s.get("/api/v1/locations/L1").await;
    assert_ocpi(&read, 200, 1000);
    assert_eq!(etag(&read), first);
    assert_eq!(read.body["data"], created.body["data"]);

    let mut renamed = v1_location("L1");
    renamed["name"] = json!("Renamed");
    let replaced = call(
        &s,
        Method::PUT,
        "/api/v1/locations/L1",
        &renamed,
        Some(&first),
    )
    .await;
    assert_ocpi(&replaced, 200, 1000);
    let second = etag(&replaced);
    assert_ne!(first, second);
    let stale = call(
        &s,
        Method::PUT,
        "/api/v1/locations/L1",
        &renamed,
        Some(&first),
    )
    .await;
    assert_ocpi(&stale, 412, 2000);
    assert_eq!(etag(&stale), second, "412 names the current version");

    let no_stamp = call(
        &s,
        Method::PATCH,
        "/api/v1/locations/L1",
        &json!({"name": "X"}),
        None,
    )
    .await;
    assert_ocpi(&no_stamp, 200, 2001);
    assert!(no_stamp.body["status_message"]
        .as_str()
        .unwrap()
        .contains("last_updated"));
    let patch =
        json!({"name": "Patched", "postal_code": null, "last_updated": "2026-12-01T10:00:00Z"});
    let patched = call(
        &s,
        Method::PATCH,
        "/api/v1/locations/L1",
        &patch,
        Some(&second),
    )
    .await;
    assert_ocpi(&patched, 200, 1000);
    assert_eq!(patched.body["data"]["name"], "Patched");
    assert!(
        patched.body["data"].get("postal_code").is_none(),
        "null clears"
    );
    assert_eq!(
        patched.body["data"]["evses"][0]["uid"], "E1",
        "untouched fields stay"
    );

    // MaEVe's view shows the same record.
    let v0 = s.get("/api/v0/location/L1").await;
    assert_eq!(v0.body, patched.body["data"]);

    let gone = call(
        &s,
        Method::DELETE,
        "/api/v1/locations/L1",
        &json!({}),
        Some(&second),
    )
    .await;
    assert_ocpi(&gone, 412, 2000);
    assert_ocpi(&s.delete("/api/v1/locations/L1").await, 200, 1000);
    assert_ocpi(&s.get("/api/v1/locations/L1").await, 200, 2003);
    assert_ocpi(&s.delete("/api/v1/locations/L1").await, 200, 2003);
}

#[actix_web::test]
async fn evses_and_connectors_are_sub_resources() {
    let s = start().await;
    assert_ocpi(
        &s.post("/api/v1/locations", &v1_location("L1")).await,
        200,
        1000,
    );
    let evse = s.get("/api/v1/locations/L1/evses/E1").await;
    assert_ocpi(&evse, 200, 1000);
    assert_eq!(evse.body["data"]["evse_id"], "GB*TWK*E1");
    let patch = json!({"status": "OUTOFORDER", "last_updated": "2026-12-01T10:00:00Z"});
    let patched = call(
        &s,
        Method::PATCH,
        "/api/v1/locations/L1/evses/E1",
        &patch,
        None,
    )
    .await;
    assert_ocpi(&patched, 200, 1000);
    assert_eq!(patched.body["data"]["status"], "OUTOFORDER");
    let connector = json!({"id": "2", "standard": "CHADEMO", "format": "CABLE", "power_type": "DC",
        "max_voltage": 500, "max_amperage": 120});
    let put = call(
        &s,
        Method::PUT,
        "/api/v1/locations/L1/evses/E1/connectors/2",
        &connector,
        None,
    )
    .await;
    assert_ocpi(&put, 200, 1000);
    let read = s.get("/api/v1/locations/L1/evses/E1/connectors/2").await;
    assert_eq!(read.body["data"]["standard"], "CHADEMO");
    let location = s.get("/api/v1/locations/L1").await;
    assert_eq!(
        location.body["data"]["evses"][0]["connectors"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_ocpi(&s.get("/api/v1/locations/L1/evses/E9").await, 200, 2003);
    assert_ocpi(
        &s.get("/api/v1/locations/L1/evses/E1/connectors/9").await,
        200,
        2003,
    );
    let wrong = call(
        &s,
        Method::PUT,
        "/api/v1/locations/L1/evses/E1/connectors/3",
        &connector,
        None,
    )
    .await;
    assert_ocpi(&wrong, 200, 2001);
}

#[actix_web::test]
async fn concurrent_patches_of_different_evses_all_land() {
    let s = start().await;
    let mut body = v1_location("L1");
    let template = body["evses"][0].clone();
    let evses: Vec<Value> = (0..12)
        .map(|i| {
            let mut evse = template.clone();
            evse["uid"] = json!(format!("E{i}"));
            evse
        })
        .collect();
    body["evses"] = json!(evses);
    assert_ocpi(&s.post("/api/v1/locations", &body).await, 200, 1000);
    let patches = (0..12).map(|i| {
        let s = &s;
        async move {
            let patch = json!({"physical_reference": format!("P{i}"), "last_updated": "2026-12-01T10:00:00Z"});
            call(s, Method::PATCH, &format!("/api/v1/locations/L1/evses/E{i}"), &patch, None).await
        }
    });
    for reply in futures_util::future::join_all(patches).await {
        assert_ocpi(&reply, 200, 1000);
    }
    let stored = s.get("/api/v1/locations/L1").await;
    for (i, evse) in stored.body["data"]["evses"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        assert_eq!(
            evse["physical_reference"],
            format!("P{i}"),
            "no change lost"
        );
    }
    // Two writers on one version with If-Match: one wins, one is told.
    let tag = etag(&stored);
    let racing = (0..2).map(|i| {
        let (s, tag) = (&s, tag.clone());
        async move {
            let patch = json!({"name": format!("N{i}"), "last_updated": "2026-12-01T10:00:00Z"});
            call(s, Method::PATCH, "/api/v1/locations/L1", &patch, Some(&tag))
                .await
                .status
        }
    });
    let mut statuses = futures_util::future::join_all(racing).await;
    statuses.sort();
    assert_eq!(statuses, [200, 412]);
}

#[actix_web::test]
async fn locations_list_by_last_updated_with_ocpi_paging() {
    let s = start().await;
    for id in ["L3", "L1", "L2", "L5", "L4"] {
        assert_ocpi(
            &s.post("/api/v1/locations", &v1_location(id)).await,
            200,
            1000,
        );
    }
    let first = s.get("/api/v1/locations?limit=2").await;
    assert_ocpi(&first, 200, 1000);
    assert_eq!(first.header("x-total-count"), Some("5"));
    assert_eq!(first.header("x-limit"), Some("2"));
    let ids = |r: &Reply| -> Vec<String> {
        r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let mut seen = ids(&first);
    let mut link = first.header("link").map(str::to_owned);
    while let Some(next) = link {
        let url = next
            .trim_start_matches('<')
            .split('>')
            .next()
            .unwrap()
            .to_owned();
        let path = &url[url.find("/api/v1").unwrap()..];
        let page = s.get(path).await;
        assert_ocpi(&page, 200, 1000);
        seen.extend(ids(&page));
        link = page.header("link").map(str::to_owned);
    }
    assert_eq!(
        seen,
        ["L3", "L1", "L2", "L5", "L4"],
        "creation order = update order"
    );
    let later = s
        .get("/api/v1/locations?date_from=2100-01-01T00:00:00Z")
        .await;
    assert!(ids(&later).is_empty());
    assert_eq!(later.header("x-total-count"), Some("0"));
    let reversed = s
        .get("/api/v1/locations?date_from=2026-12-02T00:00:00Z&date_to=2026-12-01T00:00:00Z")
        .await;
    assert_ocpi(&reversed, 200, 2001);
    assert_ocpi(
        &s.get("/api/v1/locations?date_from=yesterday").await,
        200,
        2001,
    );
}

#[actix_web::test]
async fn bad_input_is_answered_in_the_envelope() {
    let s = start().await;
    let malformed = s
        .send_with(
            Method::POST,
            "/api/v1/locations",
            "{\"id\": ",
            &[("content-type", "application/json")],
        )
        .await;
    assert_ocpi(&malformed, 400, 2001);
    let text = s
        .send_with(
            Method::POST,
            "/api/v1/locations",
            "{}",
            &[("content-type", "text/plain")],
        )
        .await;
    assert_ocpi(&text, 415, 2001);
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let oversized = s
        .send_with(
            Method::POST,
            "/api/v1/locations",
            huge,
            &[("content-type", "application/json")],
        )
        .await;
    assert_ocpi(&oversized, 413, 2001);
    let with = |pointer: &str, value: Value| {
        let mut body = v1_location("L1");
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        body.pointer_mut(parent).expect("parent exists")[key] = value;
        body
    };
    let cases = [
        (with("/parking_type", json!("ROOFTOP")), "parking_type"),
        (
            with("/coordinates/latitude", json!("91")),
            "coordinates.latitude",
        ),
        (with("/id", json!("x".repeat(37))), "id"),
        (
            with("/evses/0/station_id", json!("NOPE")),
            "evses[0].station_id",
        ),
        (
            with(
                "/evses",
                json!([location_body()["evses"][0], location_body()["evses"][0]]),
            ),
            "evses[1].uid",
        ),
        (
            with("/evses/0/connectors/0/standard", json!("SCHUKO")),
            "evses[0].connectors[0].standard",
        ),
    ];
    for (body, field) in cases {
        let reply = s.post("/api/v1/locations", &body).await;
        assert_ocpi(&reply, 200, 2001);
        let message = reply.body["status_message"].as_str().unwrap();
        assert!(message.contains(field), "{message:?} does not name {field}");
    }
    assert_ocpi(&s.get("/api/v1/locations/NOPE").await, 200, 2003);
    // Nothing half-written.
    assert_eq!(
        s.get("/api/v1/locations").await.header("x-total-count"),
        Some("0")
    );
}

#[actix_web::test]
async fn batches_answer_each_item_and_a_bad_one_stops_nothing() {
    let s = start().await;
    let mut bad = v1_location("L2");
    bad["parking_type"] = json!("ROOFTOP");
    let created = s
        .post(
            "/api/v1/locations/batch",
            &json!([v1_location("L1"), bad, v1_location("L3")]),
        )
        .await;
    assert_ocpi(&created, 200, 1000);
    let codes = |r: &Reply| -> Vec<(String, u64)> {
        r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["id"].as_str().unwrap().to_owned(),
                    i["status_code"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let s_ = |x: &str| x.to_owned();
    assert_eq!(
        codes(&created),
        [(s_("L1"), 1000), (s_("L2"), 2001), (s_("L3"), 1000)]
    );
    assert!(created.body["data"][1]["status_message"]
        .as_str()
        .unwrap()
        .contains("parking_type"));
    assert_ocpi(&s.get("/api/v1/locations/L2").await, 200, 2003);

    let patches = json!([
        {"id": "L1", "name": "Batched", "last_updated": "2026-12-01T10:00:00Z"},
        {"id": "L9", "name": "Nobody", "last_updated": "2026-12-01T10:00:00Z"},
        {"id": "L3", "name": "No stamp"},
    ]);
    let patched = call(&s, Method::PATCH, "/api/v1/locations/batch", &patches, None).await;
    assert_ocpi(&patched, 200, 1000);
    assert_eq!(
        codes(&patched),
        [(s_("L1"), 1000), (s_("L9"), 2003), (s_("L3"), 2001)]
    );
    assert_eq!(
        s.get("/api/v1/locations/L1").await.body["data"]["name"],
        "Batched"
    );
    assert_ne!(
        s.get("/api/v1/locations/L3").await.body["data"]["name"],
        "No stamp"
    );

    assert_ocpi(
        &s.post("/api/v1/locations/batch", &json!([])).await,
        200,
        2001,
    );
    let too_many: Vec<Value> = (0..1001).map(|i| json!({"id": format!("X{i}")})).collect();
    assert_ocpi(
        &s.post("/api/v1/locations/batch", &json!(too_many)).await,
        200,
        2001,
    );
}

#[actix_web::test]
async fn charge_stations_keep_their_evses_in_their_location() {
    let s = start().await;
    for id in ["L1", "L2"] {
        assert_ocpi(
            &s.post("/api/v1/locations", &v1_location(id)).await,
            200,
            1000,
        );
    }
    let mut evse = location_body()["evses"][0].clone();
    evse["uid"] = json!("E10");
    evse["ocpp_evse_id"] = json!(1);
    let station = json!({"id": "CS1", "location_id": "L1", "evses": [evse],
        "registration": {"security_profile": 0, "base64_sha256_password": crate::common::password_hash("pw")}});
    let created = s.post("/api/v1/chargestations", &station).await;
    assert_ocpi(&created, 200, 1000);
    assert_eq!(created.body["data"]["evses"][0]["station_id"], "CS1");
    assert_eq!(
        s.get("/api/v0/cs/CS1/auth").await.status,
        200,
        "registered for OCPP"
    );
    let l1 = s.get("/api/v1/locations/L1").await.body["data"].clone();
    let uids: Vec<&str> = l1["evses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["uid"].as_str().unwrap())
        .collect();
    assert_eq!(
        uids,
        ["E1", "E10"],
        "the station's EVSE joined its location"
    );
    assert_ocpi(&s.post("/api/v1/chargestations", &station).await, 200, 2001);

    let moved = call(
        &s,
        Method::PATCH,
        "/api/v1/chargestations/CS1",
        &json!({"location_id": "L2"}),
        None,
    )
    .await;
    assert_ocpi(&moved, 200, 1000);
    assert_eq!(moved.body["data"]["location_id"], "L2");
    let count = |l: Value| l["evses"].as_array().unwrap().len();
    assert_eq!(
        count(s.get("/api/v1/locations/L1").await.body["data"].clone()),
        1
    );
    assert_eq!(
        count(s.get("/api/v1/locations/L2").await.body["data"].clone()),
        2
    );
    let shown = s.get("/api/v1/chargestations/CS1").await;
    assert_ocpi(&shown, 200, 1000);
    assert_eq!(shown.body["data"]["evses"][0]["uid"], "E10");
    assert!(shown.body["data"]["configuration"].is_object());

    assert_ocpi(&s.get("/api/v1/chargestations/NOPE").await, 200, 2003);
    // In a batch: one good, one naming an unknown location.
    let mut back = station.clone();
    back["location_id"] = json!("L1");
    let mut lost = station.clone();
    lost["location_id"] = json!("NOWHERE");
    let batch = s
        .post("/api/v1/chargestations/batch", &json!([back, lost]))
        .await;
    assert_ocpi(&batch, 200, 1000);
    let item_codes: Vec<u64> = batch.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status_code"].as_u64().unwrap())
        .collect();
    assert_eq!(item_codes, [1000, 2003]);
    assert_eq!(
        s.get("/api/v1/chargestations/CS1").await.body["data"]["location_id"],
        "L1"
    );
    let mut unregistered = station.clone();
    unregistered["id"] = json!("CS2");
    unregistered.as_object_mut().unwrap().remove("registration");
    unregistered["evses"][0]["uid"] = json!("E20");
    let refused = s.post("/api/v1/chargestations", &unregistered).await;
    assert_ocpi(&refused, 200, 2001);
    assert!(refused.body["status_message"]
        .as_str()
        .unwrap()
        .contains("station_id"));
    unregistered["registration"] =
        json!({"security_profile": 0, "base64_sha256_password": "short"});
    let bad = s.post("/api/v1/chargestations", &unregistered).await;
    assert_ocpi(&bad, 200, 2001);
    assert!(bad.body["status_message"]
        .as_str()
        .unwrap()
        .contains("registration"));
}

#[actix_web::test]
async fn a_station_created_from_a_template_gets_a_copy_of_its_layout() {
    let s = start().await;
    assert_ocpi(
        &s.post("/api/v1/locations", &v1_location("L1")).await,
        200,
        1000,
    );
    let mut evse = location_body()["evses"][0].clone();
    evse["uid"] = json!("T-E1");
    let template = json!({"id": "AC22", "name": "Wallbox 22 kW", "evses": [evse]});
    assert_ocpi(&s.post("/api/v1/templates", &template).await, 200, 1000);
    assert_ocpi(&s.post("/api/v1/templates", &template).await, 200, 2001);
    let mut linked = template.clone();
    linked["id"] = json!("BAD");
    linked["evses"][0]["station_id"] = json!("CS1");
    let refused = s.post("/api/v1/templates", &linked).await;
    assert_ocpi(&refused, 200, 2001);
    assert!(refused.body["status_message"]
        .as_str()
        .unwrap()
        .contains("station_id"));

    let station = json!({"id": "CS1", "location_id": "L1", "template_id": "AC22",
        "registration": {"security_profile": 0, "base64_sha256_password": crate::common::password_hash("pw")}});
    let created = s.post("/api/v1/chargestations", &station).await;
    assert_ocpi(&created, 200, 1000);
    assert_eq!(created.body["data"]["evses"][0]["uid"], "T-E1");
    // A copy: changing the template later leaves the station alone.
    let mut changed = template.clone();
    changed["evses"][0]["uid"] = json!("T-E9");
    let replaced = call(&s, Method::PUT, "/api/v1/templates/AC22", &changed, None).await;
    assert_ocpi(&replaced, 200, 1000);
    assert_eq!(
        s.get("/api/v1/chargestations/CS1").await.body["data"]["evses"][0]["uid"],
        "T-E1"
    );
    assert_eq!(
        s.get("/api/v1/templates/AC22").await.body["data"]["evses"][0]["uid"],
        "T-E9"
    );
    assert_eq!(
        s.get("/api/v1/templates").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_ocpi(&s.get("/api/v1/templates/NOPE").await, 200, 2003);
    let mut unknown = station.clone();
    unknown["id"] = json!("CS2");
    unknown["template_id"] = json!("NOPE");
    let refused = s.post("/api/v1/chargestations", &unknown).await;
    assert_ocpi(&refused, 200, 2001);
    assert!(refused.body["status_message"]
        .as_str()
        .unwrap()
        .contains("template_id"));
}
