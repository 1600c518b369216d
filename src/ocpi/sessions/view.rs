//! Sessions and CDRs as OCPI 2.2.1 objects, built from what voltgate knows
//! of a transaction: its summary and meter values, the token's issuer, how
//! it was authorized and where it ran. Pure: no I/O, so every field rule is
//! unit-tested here. Only OCPI fields are written; times are OCPI DateTimes
//! and the start and end times are the station's.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::store::{
    ocpi_time, Connector, Evse, Location, MeterValue, Token, TokenType, Transaction,
};

/// Most charging periods a CDR carries: longer sessions have their meter
/// readings merged into this many periods.
const MOST_PERIODS: usize = 96;

/// The token a session was charged with (OCPI CdrToken).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CdrToken {
    /// The issuer's country code.
    pub country_code: String,
    /// The issuer's party id.
    pub party_id: String,
    /// The token's uid.
    pub uid: String,
    /// Its OCPI TokenType.
    #[serde(rename = "type")]
    pub token_type: String,
    /// The contract id (eMAID).
    pub contract_id: String,
}

/// The OCPI name of a token type (`RFID`, `APP_USER`, ...).
pub fn token_type_name(kind: TokenType) -> String {
    match serde_json::to_value(kind) {
        Ok(Value::String(name)) => name,
        _ => "OTHER".into(),
    }
}

impl CdrToken {
    /// The CdrToken of a token as voltgate keeps it.
    pub fn of(token: &Token) -> CdrToken {
        CdrToken {
            country_code: token.country_code.clone(),
            party_id: token.party_id.clone(),
            uid: token.uid.clone(),
            token_type: token_type_name(token.token_type),
            contract_id: token.contract_id.clone(),
        }
    }

    /// `CC-PID` of the issuer: the party the session belongs to.
    pub fn party(&self) -> String {
        format!("{}-{}", self.country_code, self.party_id)
    }
}

/// How the session was authorized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Authorization {
    /// OCPI AuthMethod: AUTH_REQUEST, COMMAND or WHITELIST.
    pub method: String,
    /// The eMSP's reference from a real-time authorization or START_SESSION.
    pub reference: Option<String>,
}

/// Where the session ran.
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    /// The location (its current record).
    pub location: Location,
    /// The EVSE.
    pub evse: Evse,
    /// The connector.
    pub connector: Connector,
}

/// Everything a Session or CDR is built from.
pub struct SessionFacts<'a> {
    /// The session's id (the CDR's too).
    pub id: &'a str,
    /// The CPO's country code and party id.
    pub cpo: (&'a str, &'a str),
    /// The transaction's summary.
    pub transaction: &'a Transaction,
    /// The meter's energy register when the transaction started, in Wh.
    pub start_wh: Option<f64>,
    /// The token.
    pub token: &'a CdrToken,
    /// How it was authorized.
    pub auth: &'a Authorization,
    /// Where.
    pub place: &'a Place,
    /// ISO 4217 currency of costs.
    pub currency: &'a str,
    /// When the object is written (its `last_updated`).
    pub now: DateTime<Utc>,
}

/// The OCPI id of the session of a transaction: 32 hex digits of the
/// SHA-256 of the station and transaction ids, so the same transaction
/// always finds its session, and no voltgate id is shown.
pub fn session_id(station_id: &str, transaction_id: &str) -> String {
    let digest = Sha256::digest(format!("{station_id}\u{1f}{transaction_id}").as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// The energy register of the earliest meter reading that has one, in Wh.
pub fn start_register(values: &[MeterValue]) -> Option<f64> {
    values
        .iter()
        .filter_map(|v| Some((v.timestamp, v.energy_wh()?)))
        .min_by_key(|(at, _)| *at)
        .map(|(_, wh)| wh)
}

/// kWh charged so far: the latest register less the start one, rounded
/// to the Wh, never negative.
pub fn kwh(transaction: &Transaction, start_wh: Option<f64>) -> f64 {
    let charged = transaction.energy_wh.unwrap_or(0.0) - start_wh.unwrap_or(0.0);
    round(charged.max(0.0) / 1000.0, 3)
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

fn time(at: &DateTime<Utc>) -> Value {
    json!(ocpi_time::format(at))
}

impl SessionFacts<'_> {
    fn started(&self) -> DateTime<Utc> {
        self.transaction.started_at.unwrap_or(self.now)
    }

    fn status(&self) -> &'static str {
        if self.transaction.ended_at.is_some() {
            "COMPLETED"
        } else {
            "ACTIVE"
        }
    }

    fn put_auth(&self, object: &mut Map<String, Value>) {
        object.insert("auth_method".into(), json!(self.auth.method));
        if let Some(reference) = &self.auth.reference {
            object.insert("authorization_reference".into(), json!(reference));
        }
    }

    /// The whole Session object.
    pub fn session(&self) -> Value {
        let mut object = Map::new();
        object.insert("country_code".into(), json!(self.cpo.0));
        object.insert("party_id".into(), json!(self.cpo.1));
        object.insert("id".into(), json!(self.id));
        object.insert("start_date_time".into(), time(&self.started()));
        if let Some(ended) = &self.transaction.ended_at {
            object.insert("end_date_time".into(), time(ended));
        }
        object.insert("kwh".into(), json!(kwh(self.transaction, self.start_wh)));
        object.insert("cdr_token".into(), json!(self.token));
        self.put_auth(&mut object);
        object.insert("location_id".into(), json!(self.place.location.id));
        object.insert("evse_uid".into(), json!(self.place.evse.uid));
        object.insert("connector_id".into(), json!(self.place.connector.id));
        object.insert("currency".into(), json!(self.currency));
        object.insert("status".into(), json!(self.status()));
        object.insert("last_updated".into(), time(&self.now));
        Value::Object(object)
    }

    /// What changed since the Session was sent whole: energy, status and,
    /// once it ended, its end.
    pub fn session_patch(&self) -> Value {
        let mut patch = json!({
            "kwh": kwh(self.transaction, self.start_wh),
            "status": self.status(),
            "last_updated": time(&self.now),
        });
        if let Some(ended) = &self.transaction.ended_at {
            patch["end_date_time"] = time(ended);
        }
        patch
    }

    /// The CDR of the ended session, with charging periods from `meter`.
    pub fn cdr(&self, meter: &[MeterValue]) -> Value {
        let start = self.started();
        let end = self.transaction.ended_at.unwrap_or(self.now).max(start);
        let total_energy = kwh(self.transaction, self.start_wh);
        let hours = round((end - start).num_milliseconds() as f64 / 3_600_000.0, 4);
        let (location, evse, connector) = (
            &self.place.location,
            &self.place.evse,
            &self.place.connector,
        );
        let mut cdr_location = json!({
            "id": location.id,
            "address": location.address,
            "city": location.city,
            "country": location.country,
            "coordinates": location.coordinates,
            "evse_uid": evse.uid,
            "evse_id": evse.evse_id.clone().unwrap_or_else(|| evse.uid.clone()),
            "connector_id": connector.id,
            "connector_standard": connector.standard,
            "connector_format": connector.format,
            "connector_power_type": connector.power_type,
        });
        for (field, value) in [
            ("name", &location.name),
            ("postal_code", &location.postal_code),
            ("state", &location.state),
        ] {
            if let Some(value) = value {
                cdr_location[field] = json!(value);
            }
        }
        let mut object = Map::new();
        object.insert("country_code".into(), json!(self.cpo.0));
        object.insert("party_id".into(), json!(self.cpo.1));
        object.insert("id".into(), json!(self.id));
        object.insert("start_date_time".into(), time(&start));
        object.insert("end_date_time".into(), time(&end));
        object.insert("session_id".into(), json!(self.id));
        object.insert("cdr_token".into(), json!(self.token));
        self.put_auth(&mut object);
        object.insert("cdr_location".into(), cdr_location);
        object.insert("currency".into(), json!(self.currency));
        object.insert(
            "charging_periods".into(),
            json!(charging_periods(start, end, total_energy, meter)),
        );
        // No tariffs are kept: the cost is 0, and the eMSP prices the energy.
        object.insert("total_cost".into(), json!({"excl_vat": 0.0}));
        object.insert("total_energy".into(), json!(total_energy));
        object.insert("total_time".into(), json!(hours));
        object.insert("last_updated".into(), time(&self.now));
        Value::Object(object)
    }
}

/// A ChargingPeriod from `from` to `to` with `kwh` charged in it.
fn period(from: DateTime<Utc>, to: DateTime<Utc>, kwh: f64) -> Value {
    let hours = (to - from).num_milliseconds().max(0) as f64 / 3_600_000.0;
    json!({
        "start_date_time": ocpi_time::format(&from),
        "dimensions": [
            {"type": "ENERGY", "volume": round(kwh.max(0.0), 3)},
            {"type": "TIME", "volume": round(hours, 4)},
        ],
    })
}

/// The charging periods of a session from `start` to `end`: one between
/// each two energy readings (at most [`MOST_PERIODS`], readings merged
/// evenly beyond), or one period with the whole energy when the meter
/// gave fewer than two readings.
pub fn charging_periods(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    total_kwh: f64,
    meter: &[MeterValue],
) -> Vec<Value> {
    let mut readings: Vec<(DateTime<Utc>, f64)> = meter
        .iter()
        .filter(|v| v.timestamp >= start && v.timestamp <= end)
        .filter_map(|v| Some((v.timestamp, v.energy_wh()?)))
        .collect();
    readings.sort_by_key(|(at, _)| *at);
    readings.dedup_by_key(|(at, _)| *at);
    if readings.len() < 2 {
        return vec![period(start, end, total_kwh)];
    }
    // Keep the first and last reading and an even spread between.
    if readings.len() > MOST_PERIODS + 1 {
        let last = readings.len() - 1;
        readings = (0..=MOST_PERIODS)
            .map(|i| readings[i * last / MOST_PERIODS])
            .collect();
    }
    let mut periods: Vec<Value> = readings
        .windows(2)
        .map(|pair| period(pair[0].0, pair[1].0, (pair[1].1 - pair[0].1) / 1000.0))
        .collect();
    // The time before the first reading (a late first sample) is part of
    // the first period.
    if readings[0].0 > start {
        periods[0]["start_date_time"] = json!(ocpi_time::format(&start));
        let first_to = readings[1].0;
        let hours = (first_to - start).num_milliseconds() as f64 / 3_600_000.0;
        periods[0]["dimensions"][1]["volume"] = json!(round(hours, 4));
    }
    periods
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SampledValue;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000 + minute * 60, 0).unwrap()
    }

    fn reading(minute: i64, wh: f64) -> MeterValue {
        MeterValue {
            seq_no: 0,
            timestamp: at(minute),
            sampled_values: vec![SampledValue {
                value: wh,
                measurand: None,
                phase: None,
                unit: Some("Wh".into()),
                context: None,
                location: None,
            }],
        }
    }

    fn facts_place() -> Place {
        let location: Location = serde_json::from_value(json!({
            "id": "L1", "country_code": "GB", "party_id": "TWK", "publish": true,
            "address": "1 High Street", "city": "London", "country": "GBR",
            "postal_code": "N1 9GU",
            "coordinates": {"latitude": "51.5", "longitude": "-0.12"}, "time_zone": "UTC",
            "evses": [{"uid": "E1", "evse_id": "GB*TWK*E1", "status": "CHARGING",
                "station_id": "CS1", "ocpp_connector_id": 1,
                "connectors": [{"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET",
                    "power_type": "AC_3_PHASE", "max_voltage": 230, "max_amperage": 32}]}]}))
        .unwrap();
        let evse = location.evses()[0].clone();
        let connector = evse.connectors[0].clone();
        Place {
            location,
            evse,
            connector,
        }
    }

    fn transaction(ended: bool) -> Transaction {
        Transaction {
            station_id: "CS1".into(),
            transaction_id: "42".into(),
            id_token: None,
            started_at: Some(at(0)),
            ended_at: ended.then(|| at(30)),
            stop_reason: None,
            evse_id: None,
            connector_id: Some(1),
            last_seq_no: 0,
            event_count: 1,
            meter_value_count: 3,
            offline: false,
            last_meter_value: None,
            energy_wh: Some(12_345.0),
        }
    }

    #[test]
    fn sessions_carry_ocpi_fields_only_and_their_energy() {
        let place = facts_place();
        let token = CdrToken {
            country_code: "NL".into(),
            party_id: "EMS".into(),
            uid: "TOKEN1".into(),
            token_type: "RFID".into(),
            contract_id: "NL-EMS-C12345678-X".into(),
        };
        let auth = Authorization {
            method: "AUTH_REQUEST".into(),
            reference: Some("REF1".into()),
        };
        let running = transaction(false);
        let id = session_id("CS1", "42");
        assert_eq!(id.len(), 32);
        let facts = SessionFacts {
            id: &id,
            cpo: ("GB", "TWK"),
            transaction: &running,
            start_wh: Some(10_000.0),
            token: &token,
            auth: &auth,
            place: &place,
            currency: "EUR",
            now: at(10),
        };
        let session = facts.session();
        assert_eq!(session["kwh"], 2.345);
        assert_eq!(session["status"], "ACTIVE");
        assert_eq!(session["start_date_time"], "2026-09-21T14:13:20.000Z");
        assert!(session.get("end_date_time").is_none());
        assert_eq!(session["authorization_reference"], "REF1");
        assert_eq!(session["cdr_token"]["type"], "RFID");
        assert_eq!(session["connector_id"], "1");
        let text = session.to_string();
        assert!(!text.contains("CS1") && !text.contains("\"42\""), "{text}");

        let ended = transaction(true);
        let facts = SessionFacts {
            transaction: &ended,
            ..facts
        };
        let patch = facts.session_patch();
        assert_eq!(patch["status"], "COMPLETED");
        assert_eq!(patch["end_date_time"], "2026-09-21T14:43:20.000Z");
        let meter = [
            reading(0, 10_000.0),
            reading(10, 11_000.0),
            reading(30, 12_345.0),
        ];
        let cdr = facts.cdr(&meter);
        assert_eq!(cdr["total_energy"], 2.345);
        assert_eq!(cdr["total_time"], 0.5);
        assert_eq!(cdr["total_cost"]["excl_vat"], 0.0);
        assert_eq!(cdr["session_id"], id.as_str());
        assert_eq!(cdr["cdr_location"]["evse_id"], "GB*TWK*E1");
        assert_eq!(cdr["cdr_location"]["connector_standard"], "IEC_62196_T2");
        assert_eq!(cdr["cdr_location"]["postal_code"], "N1 9GU");
        let periods = cdr["charging_periods"].as_array().unwrap();
        assert_eq!(periods.len(), 2);
        assert_eq!(periods[0]["dimensions"][0]["volume"], 1.0);
        assert_eq!(periods[1]["dimensions"][0]["volume"], 1.345);
        assert_eq!(periods[1]["start_date_time"], "2026-09-21T14:23:20.000Z");
        assert!(!cdr.to_string().contains("CS1"));
    }

    #[test]
    fn periods_cover_the_session_without_readings_and_merge_many() {
        let one = charging_periods(at(0), at(60), 7.5, &[]);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0]["dimensions"][0]["volume"], 7.5);
        assert_eq!(one[0]["dimensions"][1]["volume"], 1.0);
        let many: Vec<MeterValue> = (0..=600).map(|m| reading(m, m as f64 * 100.0)).collect();
        let merged = charging_periods(at(0), at(600), 60.0, &many);
        assert_eq!(merged.len(), MOST_PERIODS);
        let energy: f64 = merged
            .iter()
            .map(|p| p["dimensions"][0]["volume"].as_f64().unwrap())
            .sum();
        assert!((energy - 60.0).abs() < 0.01, "{energy}");
        // A first reading after the start stretches the first period back.
        let late = charging_periods(at(0), at(20), 2.0, &[reading(5, 0.0), reading(20, 2000.0)]);
        assert_eq!(late[0]["start_date_time"], ocpi_time::format(&at(0)));
        assert_eq!(late[0]["dimensions"][1]["volume"], round(20.0 / 60.0, 4));
    }

    #[test]
    fn start_registers_are_the_earliest_reading() {
        assert_eq!(
            start_register(&[reading(5, 200.0), reading(1, 100.0)]),
            Some(100.0)
        );
        assert_eq!(start_register(&[]), None);
    }
}
