//! The Locations module, sender side: the eMSP pulls published locations
//! page by page (following `Link`), and single locations, EVSEs and
//! connectors; its library validates each object, and nothing private or
//! unpublished reaches it.

use awc::http::Method;
use serde_json::{json, Value};

use crate::common::{location_body, start, TestServer};
use crate::ocpi_call;
use crate::peer::Peer;

/// Registers `peer` with `s` (the eMSP initiates); voltgate's token for it.
pub async fn registered(s: &TestServer, peer: &Peer, token_a: &str) -> String {
    let made = s.post("/api/v0/register", &json!({"token": token_a})).await;
    assert_eq!(made.status, 201, "{made:?}");
    let outcome = peer
        .control(
            "register",
            json!({"versions_url": format!("http://{}/ocpi/versions", s.app.ocpi_addr()), "token": token_a}),
        )
        .await;
    assert_eq!(outcome["ok"], true, "{outcome}");
    outcome["cpo_token"].as_str().unwrap().to_owned()
}

fn header<'a>(reply: &'a Value, name: &str) -> Option<&'a str> {
    let headers = &reply["headers"];
    headers
        .as_object()
        .and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
        .and_then(|(_, v)| v.as_str())
}

#[actix_web::test]
async fn the_emsp_pulls_published_locations_and_nothing_private() {
    let s = start().await;
    let peer = Peer::start();
    let token = registered(&s, &peer, "token-a-pull").await;
    s.register("CS1").await;
    for (id, publish) in [("L1", true), ("L2", false), ("L3", true), ("L4", true)] {
        let mut body = location_body();
        body["id"] = json!(id);
        body["publish"] = json!(publish);
        body["province"] = json!("Greater London");
        body["evses"][0]["station_id"] = json!("CS1");
        body["evses"][0]["ocpp_evse_id"] = json!(1);
        let created = s.post("/api/v1/locations", &body).await;
        assert_eq!(created.body["status_code"], 1000, "{created:?}");
    }

    let first = peer
        .control(
            "get",
            json!({"module": "locations", "path_suffix": "?limit=2"}),
        )
        .await;
    assert_eq!(first["status"], 200, "{first}");
    assert_eq!(
        first["valid"], true,
        "the eMSP's library accepts them: {first}"
    );
    assert_eq!(header(&first, "x-total-count"), Some("3"), "{first}");
    assert_eq!(header(&first, "x-limit"), Some("2"));
    let page: Vec<&str> = first["body"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(page, ["L1", "L3"]);
    let evse = &first["body"]["data"][0]["evses"][0];
    for private in ["station_id", "ocpp_evse_id", "ocpp_connector_id"] {
        assert!(
            evse.get(private).is_none(),
            "{private} reached the eMSP: {evse}"
        );
    }
    assert!(first["body"]["data"][0].get("province").is_none());
    let link = header(&first, "link").expect("a next page").to_owned();
    let next_url = link
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_owned();
    let second = peer
        .control("get", json!({"module": "locations", "url": next_url}))
        .await;
    assert_eq!(second["valid"], true, "{second}");
    let page: Vec<&str> = second["body"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(page, ["L4"]);
    assert_eq!(header(&second, "link"), None, "the last page has no next");

    // One location, EVSE and connector, each validated by the eMSP.
    for (suffix, schema, id_field, id) in [
        ("L3", "Location", "id", "L3"),
        ("L3/E1", "EVSE", "uid", "E1"),
        ("L3/E1/1", "Connector", "id", "1"),
    ] {
        let one = peer
            .control("get", json!({"module": "locations", "path_suffix": suffix}))
            .await;
        assert_eq!(one["schema"], schema, "{suffix}: checked as a {schema}");
        assert_eq!(one["valid"], true, "{suffix}: {one}");
        assert_eq!(one["body"]["data"][id_field], id, "{suffix}");
    }
    // Unpublished and unknown: 2003.
    for suffix in ["L2", "L9", "L3/E9"] {
        let unknown = ocpi_call(
            &s,
            Method::GET,
            &format!("/ocpi/2.2.1/locations/{suffix}"),
            Some(&token),
            None,
            &[],
        )
        .await;
        assert_eq!(unknown.body["status_code"], 2003, "{suffix}: {unknown:?}");
    }
    // Bad paging: 2001 naming the parameter.
    let bad = ocpi_call(
        &s,
        Method::GET,
        "/ocpi/2.2.1/locations?date_from=yesterday",
        Some(&token),
        None,
        &[],
    )
    .await;
    assert_eq!(bad.body["status_code"], 2001, "{bad:?}");
    assert!(bad.body["status_message"]
        .as_str()
        .unwrap()
        .contains("date_from"));
}

#[actix_web::test]
async fn a_pending_partner_cannot_pull() {
    let s = start().await;
    s.post("/api/v0/register", &json!({"token": "token-a-pending"}))
        .await;
    let refused = ocpi_call(
        &s,
        Method::GET,
        "/ocpi/2.2.1/locations",
        Some("token-a-pending"),
        None,
        &[],
    )
    .await;
    assert_eq!(refused.status, 401, "{refused:?}");
}
