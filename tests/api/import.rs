//! `POST /api/v1/locations/import`: CSV as the body or as a multipart
//! upload, good rows written, bad rows reported by line without
//! half-writing their location, updates keeping live status.

use awc::http::Method;
use serde_json::{json, Value};

use crate::common::{start, Reply, TestServer};

const HEADER: &str = "location_id,country_code,party_id,name,address,city,postal_code,country,latitude,longitude,time_zone,evse_uid,evse_id,connector_id,standard,format,power_type,max_voltage,max_amperage,province,facilities,max_electric_power";

fn row(location: &str, evse: &str, connector: &str, standard: &str) -> String {
    format!("{location},NL,VGT,Depot {location},Main 1,Utrecht,3511,NLD,52.09,5.12,Europe/Amsterdam,{evse},NL*VGT*{evse},{connector},{standard},SOCKET,AC_3_PHASE,230,32,Utrecht,WIFI|CAFE,")
}

async fn upload(s: &TestServer, body: Vec<u8>, kind: &str) -> Reply {
    s.send_with(
        Method::POST,
        "/api/v1/locations/import",
        body,
        &[("content-type", kind)],
    )
    .await
}

fn lines(reply: &Reply) -> Vec<u64> {
    reply.body["data"]["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect()
}

#[actix_web::test]
async fn good_rows_are_written_and_bad_rows_reported_by_line() {
    let s = start().await;
    let mut csv = [
        HEADER.to_owned(),
        row("L1", "E1", "1", "IEC_62196_T2"),
        row("L1", "E1", "2", "IEC_62196_T2_COMBO"),
        row("L1", "E2", "1", "IEC_62196_T2"),
        row("L2", "E1", "1", "IEC_62196_T2"),
        row("L3", "E1", "1", "SCHUKO"),
        row("L3", "E2", "1", "IEC_62196_T2"),
        "L4,NL,VGT,short row".to_owned(),
        row("L5", "E1", "1", "IEC_62196_T2").replace("52.09", "95.0"),
    ]
    .join("\n")
    .into_bytes();
    // A row that is not UTF-8.
    csv.extend_from_slice(b"\nL6,NL,VGT,\xff\xfe,Main 1,Utrecht,3511,NLD,52.09,5.12,UTC,E1,,1,IEC_62196_T2,SOCKET,AC_3_PHASE,230,32,,,\n");
    let reply = upload(&s, csv.clone(), "text/csv").await;
    assert_eq!(reply.body["status_code"], 1000, "{reply:?}");
    let data = &reply.body["data"];
    assert_eq!(
        (data["created"].as_u64(), data["updated"].as_u64()),
        (Some(2), Some(0)),
        "{data}"
    );
    assert_eq!(lines(&reply), [6, 8, 9, 10], "{data}");
    assert_eq!(data["rejected_total"], 4);
    let reasons = data["rejected"].to_string();
    for needle in ["SCHUKO", "columns", "latitude", "UTF-8"] {
        assert!(reasons.contains(needle), "{needle} not in {reasons}");
    }
    let l1 = s.get("/api/v1/locations/L1").await.body["data"].clone();
    assert_eq!(l1["evses"].as_array().unwrap().len(), 2);
    assert_eq!(l1["evses"][0]["connectors"].as_array().unwrap().len(), 2);
    assert_eq!(l1["facilities"], json!(["WIFI", "CAFE"]));
    assert_eq!(l1["province"], "Utrecht");
    assert_eq!(
        s.get("/api/v1/locations/L3").await.body["status_code"],
        2003,
        "not half-written"
    );
    assert_eq!(
        s.get("/api/v1/locations/L5").await.body["status_code"],
        2003
    );

    // Again: updates, and the live status of an EVSE stays.
    let patch = json!({"status": "CHARGING", "last_updated": "2026-12-01T10:00:00Z"});
    let patched = s
        .send(
            Method::PATCH,
            "/api/v1/locations/L1/evses/E1",
            serde_json::to_vec(&patch).unwrap(),
        )
        .await;
    assert_eq!(patched.body["status_code"], 1000);
    let again = upload(&s, csv, "text/csv").await;
    assert_eq!(
        (
            again.body["data"]["created"].as_u64(),
            again.body["data"]["updated"].as_u64()
        ),
        (Some(0), Some(2))
    );
    let l1 = s.get("/api/v1/locations/L1").await.body["data"].clone();
    assert_eq!(l1["evses"][0]["status"], "CHARGING");
}

#[actix_web::test]
async fn a_multipart_upload_reads_the_file_field() {
    let s = start().await;
    let csv = [HEADER.to_owned(), row("M1", "E1", "1", "IEC_62196_T2")].join("\r\n");
    let boundary = "xYzBoundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"l.csv\"\r\nContent-Type: text/csv\r\n\r\n{csv}\r\n\
         --{boundary}--\r\n"
    );
    let reply = upload(
        &s,
        body.into_bytes(),
        &format!("multipart/form-data; boundary={boundary}"),
    )
    .await;
    assert_eq!(reply.body["status_code"], 1000, "{reply:?}");
    assert_eq!(reply.body["data"]["created"], 1);
    assert_eq!(
        s.get("/api/v1/locations/M1").await.body["data"]["city"],
        "Utrecht"
    );
}

#[actix_web::test]
async fn a_bad_header_or_content_type_writes_nothing() {
    let s = start().await;
    let missing = format!(
        "location_id,country_code\n{}",
        row("L1", "E1", "1", "IEC_62196_T2")
    );
    let reply = upload(&s, missing.into_bytes(), "text/csv").await;
    assert_eq!(reply.body["status_code"], 2001, "{reply:?}");
    assert!(reply.body["status_message"]
        .as_str()
        .unwrap()
        .contains("party_id"));
    let empty = upload(&s, Vec::new(), "text/csv").await;
    assert_eq!(empty.body["status_code"], 2001);
    let text = upload(&s, b"x".to_vec(), "text/plain").await;
    assert_eq!(text.status, 415);
    let listed: Value = s.get("/api/v1/locations").await.body;
    assert_eq!(listed["data"], json!([]));
}
