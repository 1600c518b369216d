//! `/api/v1/locations/nearby` against a brute-force reference: random
//! locations around two cities, random searches with random filters; the
//! server must answer the same locations in the same order, with the
//! distance, and `/api/v1/filters` lists the filters' values.

use serde_json::{json, Value};

use crate::common::{config_in, location_body, start, start_with, Keyspace, TestServer};

/// A small deterministic generator (the test must not depend on a seed file).
struct Random(u64);

impl Random {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() * from.len() as f64) as usize % from.len()]
    }
}

fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let r = 6371.0088;
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let a = ((lat2 - lat1).to_radians() / 2.0).sin().powi(2)
        + p1.cos() * p2.cos() * ((lon2 - lon1).to_radians() / 2.0).sin().powi(2);
    2.0 * r * a.sqrt().asin()
}

const FACILITIES: [&str; 4] = ["CAFE", "WIFI", "MALL", "HOTEL"];
const STANDARDS: [&str; 3] = ["IEC_62196_T2", "IEC_62196_T2_COMBO", "CHADEMO"];
const STATUSES: [&str; 3] = ["AVAILABLE", "CHARGING", "OUTOFORDER"];

fn random_location(r: &mut Random, i: usize) -> Value {
    let (city, lat0, lon0) = if r.next() < 0.5 {
        ("Utrecht", 52.09, 5.12)
    } else {
        ("Amersfoort", 52.156, 5.387)
    };
    let lat = lat0 + (r.next() - 0.5) * 0.4;
    let lon = lon0 + (r.next() - 0.5) * 0.6;
    let standard = r.pick(&STANDARDS);
    let amps = [16, 32, 125][(r.next() * 3.0) as usize % 3];
    json!({
        "id": format!("L{i:04}"), "country_code": "NL", "party_id": "VGT",
        "publish": r.next() > 0.1, "address": "Street 1", "city": city, "country": "NLD",
        "coordinates": {"latitude": format!("{lat:.6}"), "longitude": format!("{lon:.6}")},
        "time_zone": "Europe/Amsterdam", "facilities": [r.pick(&FACILITIES)],
        "evses": [{"uid": "E1", "status": r.pick(&STATUSES), "connectors": [{"id": "1",
            "standard": standard, "format": "CABLE", "power_type": "AC_3_PHASE",
            "max_voltage": 230, "max_amperage": amps}]}]
    })
}

/// What the reference says a search returns: ids nearest first.
fn reference(all: &[Value], lat: f64, lon: f64, km: f64, filter: &(String, String)) -> Vec<String> {
    let mut hits: Vec<(f64, String)> = all
        .iter()
        .filter(|l| l["publish"] == true)
        .filter_map(|l| {
            let la: f64 = l["coordinates"]["latitude"].as_str()?.parse().ok()?;
            let lo: f64 = l["coordinates"]["longitude"].as_str()?.parse().ok()?;
            let d = haversine_km(lat, lon, la, lo);
            let connector = &l["evses"][0]["connectors"][0];
            let keep = d <= km
                && match (filter.0.as_str(), filter.1.as_str()) {
                    ("", _) => true,
                    ("facilities", f) => l["facilities"][0] == f,
                    ("connector_standard", s) => connector["standard"] == s,
                    ("city", c) => l["city"] == c,
                    ("available_only", _) => l["evses"][0]["status"] == "AVAILABLE",
                    ("min_power_kw", kw) => {
                        let w = 230 * connector["max_amperage"].as_i64().unwrap() * 3;
                        w as f64 >= kw.parse::<f64>().unwrap() * 1000.0
                    }
                    _ => unreachable!(),
                };
            keep.then(|| (d, l["id"].as_str().unwrap().to_owned()))
        })
        .collect();
    hits.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    hits.into_iter().map(|(_, id)| id).collect()
}

async fn load(s: &TestServer, count: usize) -> Vec<Value> {
    let mut r = Random(42);
    let mut all = Vec::new();
    for i in 0..count {
        let location = random_location(&mut r, i);
        let reply = s.post("/api/v1/locations", &location).await;
        assert_eq!(reply.body["status_code"], 1000, "{reply:?}");
        all.push(location);
    }
    all
}

#[actix_web::test]
async fn nearby_matches_a_brute_force_reference() {
    let s = start().await;
    let all = load(&s, 300).await;
    let mut r = Random(7);
    let mut answered = 0;
    for round in 0..40 {
        let lat = 52.12 + (r.next() - 0.5) * 0.3;
        let lon = 5.25 + (r.next() - 0.5) * 0.6;
        let km = [0.5, 3.0, 10.0, 25.0][round % 4];
        let filter = match round % 6 {
            0 => (String::new(), String::new()),
            1 => ("facilities".into(), r.pick(&FACILITIES).to_owned()),
            2 => ("connector_standard".into(), r.pick(&STANDARDS).to_owned()),
            3 => ("city".into(), "Utrecht".into()),
            4 => ("available_only".into(), "true".into()),
            _ => ("min_power_kw".into(), "22".into()),
        };
        let expected = reference(&all, lat, lon, km, &filter);
        answered += usize::from(!expected.is_empty());
        let mut url =
            format!("/api/v1/locations/nearby?lat={lat}&lng={lon}&distance_km={km}&limit=100");
        if !filter.0.is_empty() {
            url.push_str(&format!("&{}={}", filter.0, filter.1));
        }
        let reply = s.get(&url).await;
        assert_eq!(reply.body["status_code"], 1000, "{reply:?}");
        let found: Vec<String> = reply.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["id"].as_str().unwrap().to_owned())
            .collect();
        let expected_page: Vec<String> = expected.iter().take(100).cloned().collect();
        assert_eq!(found, expected_page, "round {round}: {url}");
        assert_eq!(
            reply.header("x-total-count"),
            Some(expected.len().to_string().as_str())
        );
        if let Some(first) = reply.body["data"].as_array().unwrap().first() {
            assert!(first["distance_km"].as_f64().unwrap() <= km);
        }
    }
    assert!(answered >= 25, "only {answered} searches found anything");
    // Paging walks the same order.
    let url = "/api/v1/locations/nearby?lat=52.1&lng=5.2&distance_km=30";
    let whole = reference(&all, 52.1, 5.2, 30.0, &(String::new(), String::new()));
    let second = s.get(&format!("{url}&offset=20&limit=20")).await;
    let ids: Vec<&str> = second.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        whole[20..40].iter().map(String::as_str).collect::<Vec<_>>()
    );
}

#[actix_web::test]
async fn a_moved_or_unpublished_location_is_found_where_it_is_now() {
    let s = start().await;
    let mut r = Random(3);
    let mut location = random_location(&mut r, 1);
    location["publish"] = json!(true);
    location["coordinates"] = json!({"latitude": "52.0", "longitude": "5.0"});
    assert_eq!(
        s.post("/api/v1/locations", &location).await.body["status_code"],
        1000
    );
    let near =
        |lat: f64, lon: f64| format!("/api/v1/locations/nearby?lat={lat}&lng={lon}&distance_km=1");
    assert_eq!(
        s.get(&near(52.0, 5.0)).await.header("x-total-count"),
        Some("1")
    );
    location["coordinates"] = json!({"latitude": "-33.9", "longitude": "151.2"});
    let moved = s
        .send(
            awc::http::Method::PUT,
            "/api/v1/locations/L0001",
            serde_json::to_vec(&location).unwrap(),
        )
        .await;
    assert_eq!(moved.body["status_code"], 1000, "{moved:?}");
    assert_eq!(
        s.get(&near(52.0, 5.0)).await.header("x-total-count"),
        Some("0")
    );
    assert_eq!(
        s.get(&near(-33.9, 151.2)).await.header("x-total-count"),
        Some("1")
    );
    location["publish"] = json!(false);
    s.send(
        awc::http::Method::PUT,
        "/api/v1/locations/L0001",
        serde_json::to_vec(&location).unwrap(),
    )
    .await;
    assert_eq!(
        s.get(&near(-33.9, 151.2)).await.header("x-total-count"),
        Some("0"),
        "unpublished: not found"
    );
}

#[actix_web::test]
async fn search_input_is_checked_and_filters_are_listed() {
    let s = start().await;
    for (query, field) in [
        ("lng=5", "lat"),
        ("lat=95&lng=5", "lat"),
        ("lat=52&lng=5&distance_km=0", "distance_km"),
        ("lat=52&lng=5&distance_km=600", "distance_km"),
        ("lat=52&lng=5&facilities=CINEMA", "facilities"),
        (
            "lat=52&lng=5&connector_standard=TYPE_2",
            "connector_standard",
        ),
    ] {
        let reply = s.get(&format!("/api/v1/locations/nearby?{query}")).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body["status_code"], 2001, "{query}: {reply:?}");
        assert!(reply.body["status_message"]
            .as_str()
            .unwrap()
            .contains(field));
    }
    assert_eq!(
        s.get("/api/v1/filters/cities").await.body["status_code"],
        2001
    );
    let mut located = json!({"id": "C1", "country_code": "NL", "party_id": "VGT", "address": "Main 1",
        "city": "Zeist", "province": "Utrecht", "country": "NLD", "time_zone": "UTC",
        "coordinates": {"latitude": "52.09", "longitude": "5.23"}});
    assert_eq!(
        s.post("/api/v1/locations", &located).await.body["status_code"],
        1000
    );
    located["id"] = json!("C2");
    located["city"] = json!("Amersfoort");
    assert_eq!(
        s.post("/api/v1/locations", &located).await.body["status_code"],
        1000
    );
    let cities = s.get("/api/v1/filters/cities?province=utrecht").await;
    assert_eq!(cities.body["data"], json!(["Amersfoort", "Zeist"]));
    let filters = s.get("/api/v1/filters").await;
    assert_eq!(filters.body["status_code"], 1000);
    let data = &filters.body["data"];
    for (name, value) in [
        ("facilities", "WIFI"),
        ("capabilities", "RFID_READER"),
        ("parking_types", "ON_STREET"),
        ("connector_standard", "IEC_62196_T2"),
        ("power_type", "DC"),
    ] {
        assert!(
            data[name].as_array().unwrap().contains(&json!(value)),
            "{name} lacks {value}"
        );
    }
}

#[actix_web::test]
async fn configured_payment_types_are_listed_and_enforced() {
    let s = start_with(|config| {
        config.payment_types = vec!["GCASH".into(), "MAYA".into()];
    })
    .await;
    let filters = s.get("/api/v1/filters").await;
    assert_eq!(
        filters.body["data"]["payment_types"],
        json!(["GCASH", "MAYA"])
    );
    let mut body = location_body();
    body["id"] = json!("P1");
    body["evses"][0]["payment_types"] = json!(["MAYA", "CASH"]);
    let refused = s.post("/api/v1/locations", &body).await;
    assert_eq!(refused.body["status_code"], 2001, "{refused:?}");
    let message = refused.body["status_message"].as_str().unwrap();
    assert!(
        message.contains("evses[0].payment_types[1]") && message.contains("CASH"),
        "{message}"
    );
    body["evses"][0]["payment_types"] = json!(["MAYA"]);
    let created = s.post("/api/v1/locations", &body).await;
    assert_eq!(created.body["status_code"], 1000, "{created:?}");
    let found = s
        .get("/api/v1/locations/nearby?lat=51.5&lng=-0.12&payment_types=MAYA,GCASH")
        .await;
    assert_eq!(found.body["data"][0]["id"], "P1", "{found:?}");

    // Without the setting, any well-formed code is taken and none is listed.
    let open = start().await;
    assert_eq!(
        open.get("/api/v1/filters").await.body["data"]["payment_types"],
        json!([])
    );
    body["evses"][0]["payment_types"] = json!(["CASH"]);
    assert_eq!(
        open.post("/api/v1/locations", &body).await.body["status_code"],
        1000
    );

    let dir = tempfile::tempdir().unwrap();
    let _keyspace = Keyspace::for_dir(dir.path());
    let mut config = config_in(dir.path());
    config.payment_types = vec!["GCASH".into(), "cash!".into()];
    let refused = voltgate::start(config).await.err().expect("refused");
    let refused = refused.to_string();
    assert!(
        refused.contains("--payment-types") && refused.contains("cash!"),
        "{refused}"
    );
}
