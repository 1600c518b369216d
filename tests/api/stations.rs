//! `/api/v0/cs/...`: registration, auth lookup and queued work.

use serde_json::json;

use crate::common::{auth_body, charging_profile_body, password_hash, start, test_certificate};

#[actix_web::test]
async fn register_then_look_up_auth_and_station() {
    let s = start().await;
    let reply = s.post("/api/v0/cs/CS001", &auth_body("secret")).await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.body, serde_json::Value::Null);

    let auth = s.get("/api/v0/cs/CS001/auth").await;
    assert_eq!(auth.status, 200);
    assert_eq!(
        auth.body,
        json!({"securityProfile": 0, "base64SHA256Password": password_hash("secret"), "invalidUsernameAllowed": false})
    );
    let station = s.get("/api/v0/cs/CS001").await;
    assert_eq!(station.status, 200);
    assert_eq!(
        station.body["provisioning"], "Pending",
        "a new station waits to be provisioned"
    );
    assert_eq!(station.body["pendingCommands"], json!([]));
    assert!(
        station.body.get("base64SHA256Password").is_none(),
        "the fleet view hides the hash"
    );
}

#[actix_web::test]
async fn reregistering_replaces_credentials() {
    let s = start().await;
    s.register("CS001").await;
    let body = json!({"securityProfile": 2, "invalidUsernameAllowed": true});
    assert_eq!(s.post("/api/v0/cs/CS001", &body).await.status, 201);
    let auth = s.get("/api/v0/cs/CS001/auth").await;
    assert_eq!(
        auth.body,
        json!({"securityProfile": 2, "invalidUsernameAllowed": true})
    );
}

#[actix_web::test]
async fn unknown_station_is_404() {
    let s = start().await;
    s.get("/api/v0/cs/NOPE/auth")
        .await
        .assert_error(404, "charge station \"NOPE\" not found");
    s.get("/api/v0/cs/NOPE")
        .await
        .assert_error(404, "not found");
    s.post("/api/v0/cs/NOPE/reconfigure", &json!({"K": "V"}))
        .await
        .assert_error(404, "charge station");
    s.post(
        "/api/v0/cs/NOPE/trigger",
        &json!({"trigger": "BootNotification"}),
    )
    .await
    .assert_error(404, "charge station");
    let (pem, _) = test_certificate();
    let certs = json!({"certificates": [{"type": "V2G", "certificate": pem}]});
    s.post("/api/v0/cs/NOPE/certificates", &certs)
        .await
        .assert_error(404, "charge station");
    s.post(
        "/api/v0/cs/NOPE/setchargingprofile",
        &charging_profile_body(1),
    )
    .await
    .assert_error(404, "charge station");
}

#[actix_web::test]
async fn registration_input_is_checked() {
    let s = start().await;
    let cases = [
        (
            json!({"securityProfile": 3, "base64SHA256Password": password_hash("x")}),
            "securityProfile",
        ),
        (
            json!({"securityProfile": -1, "base64SHA256Password": password_hash("x")}),
            "securityProfile",
        ),
        (
            json!({"securityProfile": "0", "base64SHA256Password": password_hash("x")}),
            "securityProfile",
        ),
        (
            json!({"base64SHA256Password": password_hash("x")}),
            "missing field `securityProfile`",
        ),
        (json!({"securityProfile": 0}), "base64SHA256Password"),
        (
            json!({"securityProfile": 1, "base64SHA256Password": "not base64!"}),
            "base64SHA256Password",
        ),
        (
            json!({"securityProfile": 0, "base64SHA256Password": "c2hvcnQ="}),
            "32 bytes",
        ),
        (
            json!({"securityProfile": 0, "base64SHA256Password": password_hash("x"), "invalidUsernameAllowed": "yes"}),
            "invalidUsernameAllowed",
        ),
        (json!([1, 2]), "invalid body"),
    ];
    for (body, needle) in cases {
        s.post("/api/v0/cs/CS001", &body)
            .await
            .assert_error(400, needle);
    }
    let long_id = "X".repeat(49);
    s.post(&format!("/api/v0/cs/{long_id}"), &auth_body("x"))
        .await
        .assert_error(400, "csId");
    s.post("/api/v0/cs/a%20b", &auth_body("x"))
        .await
        .assert_error(400, "csId");
    s.get("/api/v0/cs/CS001/auth")
        .await
        .assert_error(404, "not found");
}

#[actix_web::test]
async fn reconfigure_queues_each_setting() {
    let s = start().await;
    s.register("CS001").await;
    let settings = json!({"HeartbeatInterval": "300", "EVSE;1/Power;MaxSet": "11000"});
    let reply = s.post("/api/v0/cs/CS001/reconfigure", &settings).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    // One command per setting, waiting for the station, in key order.
    let pending = s.get("/api/v0/cs/CS001").await.body["pendingCommands"].clone();
    let settings = pending.as_array().expect("pending commands");
    assert_eq!(settings.len(), 2);
    assert_eq!(settings[0]["payload"]["key"], "EVSE;1/Power;MaxSet");
    assert_eq!(settings[1]["payload"]["value"], "300");
    assert!(settings.iter().all(|s| s["operation"] == "reconfigure"
        && s["status"] == "Pending"
        && s["delivery"]["status"] == "Pending"
        && s.get("version").is_none()));
}

#[actix_web::test]
async fn reconfigure_input_is_checked() {
    let s = start().await;
    s.register("CS001").await;
    let path = "/api/v0/cs/CS001/reconfigure";
    s.post(path, &json!({}))
        .await
        .assert_error(400, "no settings");
    s.post(path, &json!({"HeartbeatInterval": 300}))
        .await
        .assert_error(400, "HeartbeatInterval");
    s.post(path, &json!({"Comp/Var;a;b": "1"}))
        .await
        .assert_error(400, "Comp/Var;a;b");
    s.post(path, &json!({"Key With Space": "1"}))
        .await
        .assert_error(400, "Key With Space");
    s.post(path, &json!({"K": "v".repeat(501)}))
        .await
        .assert_error(400, "at most 500");
    s.post(path, &json!(["K", "V"]))
        .await
        .assert_error(400, "invalid body");
    assert_eq!(
        s.get("/api/v0/cs/CS001/commands").await.body,
        json!([]),
        "nothing half-stored"
    );
}

#[actix_web::test]
async fn certificates_are_queued_with_their_status() {
    let s = start().await;
    s.register("CS001").await;
    let (pem, hash) = test_certificate();
    let body = json!({"certificates": [
        {"type": "V2G", "certificate": pem},
        {"type": "CSMS", "certificate": pem, "status": "Accepted"},
    ]});
    assert_eq!(
        s.post("/api/v0/cs/CS001/certificates", &body).await.status,
        200
    );
    // Same certificate twice in one call: one command, the later request
    // wins; an outcome the caller knows is recorded, nothing is sent.
    let certs = s.get("/api/v0/cs/CS001/commands").await.body;
    assert_eq!(certs.as_array().map(Vec::len), Some(1), "{certs}");
    assert_eq!(certs[0]["operation"], "certificates");
    assert_eq!(certs[0]["payload"]["certificateId"], hash.as_str());
    assert_eq!(certs[0]["payload"]["type"], "CSMS");
    assert_eq!(certs[0]["status"], "Accepted");
    assert_eq!(certs[0]["delivery"]["status"], "Accepted");
    assert_eq!(
        s.get("/api/v0/cs/CS001").await.body["pendingCommands"],
        json!([])
    );
}

#[actix_web::test]
async fn certificate_input_is_checked() {
    let s = start().await;
    s.register("CS001").await;
    let (pem, _) = test_certificate();
    let path = "/api/v0/cs/CS001/certificates";
    let cases = [
        (json!({"certificates": []}), "certificates"),
        (json!({}), "missing field `certificates`"),
        (
            json!({"certificates": [{"type": "XX", "certificate": pem}]}),
            "certificates[0].type",
        ),
        (
            json!({"certificates": [{"type": "V2G", "certificate": pem, "status": "Done"}]}),
            "certificates[0].status",
        ),
        (
            json!({"certificates": [{"type": "V2G", "certificate": pem}, {"type": "MO", "certificate": "nope"}]}),
            "certificates[1].certificate",
        ),
        (
            json!({"certificates": [{"type": "MO"}]}),
            "missing field `certificate`",
        ),
    ];
    for (body, needle) in cases {
        s.post(path, &body).await.assert_error(400, needle);
    }
    assert_eq!(s.get("/api/v0/cs/CS001/commands").await.body, json!([]));
}

#[actix_web::test]
async fn triggers_are_queued_in_order() {
    let s = start().await;
    s.register("CS001").await;
    for trigger in ["BootNotification", "SignV2GCertificate"] {
        let reply = s
            .post("/api/v0/cs/CS001/trigger", &json!({ "trigger": trigger }))
            .await;
        assert_eq!(reply.status, 200);
    }
    let triggers = s.get("/api/v0/cs/CS001").await.body["pendingCommands"].clone();
    assert_eq!(triggers.as_array().map(Vec::len), Some(2), "{triggers}");
    assert_eq!(triggers[0]["payload"]["trigger"], "BootNotification");
    assert_eq!(triggers[1]["payload"]["trigger"], "SignV2GCertificate");
    assert_eq!(triggers[1]["operation"], "trigger");
    assert_eq!(triggers[1]["delivery"]["status"], "Pending");
    let ids = [&triggers[0]["commandId"], &triggers[1]["commandId"]].map(|v| v.as_str().unwrap());
    assert!(ids[0] < ids[1], "oldest first");
    s.post("/api/v0/cs/CS001/trigger", &json!({"trigger": "Reset"}))
        .await
        .assert_error(400, "trigger");
    s.post("/api/v0/cs/CS001/trigger", &json!({}))
        .await
        .assert_error(400, "missing field `trigger`");
}

#[actix_web::test]
async fn charging_profiles_are_checked_and_queued() {
    let s = start().await;
    s.register("CS001").await;
    let path = "/api/v0/cs/CS001/setchargingprofile";
    assert_eq!(
        s.post(&format!("{path}?evseId=2"), &charging_profile_body(5))
            .await
            .status,
        200
    );
    let mut changed = charging_profile_body(5);
    changed["stackLevel"] = json!(1);
    assert_eq!(s.post(path, &changed).await.status, 200);
    // Both go, in order: the station replaces a profile of the same id.
    let profiles = s.get("/api/v0/cs/CS001").await.body["pendingCommands"].clone();
    assert_eq!(profiles.as_array().map(Vec::len), Some(2), "{profiles}");
    assert_eq!(profiles[0]["payload"]["evseId"], 2);
    assert_eq!(profiles[1]["payload"]["profileId"], 5);
    assert_eq!(profiles[1]["payload"]["evseId"], 0);
    assert_eq!(profiles[1]["payload"]["profile"]["stackLevel"], 1);

    let mut bad_unit = charging_profile_body(6);
    bad_unit["chargingSchedule"][0]["chargingRateUnit"] = json!("kW");
    s.post(path, &bad_unit)
        .await
        .assert_error(400, "/chargingSchedule/0/chargingRateUnit");
    let mut no_kind = charging_profile_body(6);
    no_kind
        .as_object_mut()
        .unwrap()
        .remove("chargingProfileKind");
    s.post(path, &no_kind)
        .await
        .assert_error(400, "chargingProfileKind");
    s.post(&format!("{path}?evseId=-1"), &charging_profile_body(6))
        .await
        .assert_error(400, "query");
}
