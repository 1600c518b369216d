//! Charging profiles on the station: `POST /cs/{id}/charging-profiles/clear`
//! → `ClearChargingProfile`, `/charging-profiles/read` → 2.0.1
//! `GetChargingProfiles` (1.6 has none), `/composite-schedule` →
//! `GetCompositeSchedule`. Purposes use the 2.0.1 names; 1.6 stations get
//! `ChargePointMaxProfile` for `ChargingStationMaxProfile`.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{not_in_v16, Operation, Untranslatable};
use crate::ocpp::Version;

/// Which profiles to clear; all of them when nothing is given.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClearProfiles {
    /// The profile id.
    pub id: Option<i64>,
    /// The EVSE (1.6: connector) whose profiles go.
    pub evse_id: Option<i64>,
    /// The purpose (2.0.1 names).
    pub purpose: Option<String>,
    /// The stack level.
    pub stack_level: Option<i64>,
}

fn v16_purpose(purpose: &str) -> Result<&str, Untranslatable> {
    match purpose {
        "ChargingStationMaxProfile" => Ok("ChargePointMaxProfile"),
        "TxDefaultProfile" | "TxProfile" => Ok(purpose),
        other => Err(Untranslatable(format!(
            "purpose {other} has no OCPP 1.6 equivalent"
        ))),
    }
}

impl Operation for ClearProfiles {
    const NAME: &'static str = "charging-profiles-clear";

    fn translate(
        &self,
        version: Version,
        _: &mut dyn FnMut() -> i32,
    ) -> Result<(&'static str, Value), Untranslatable> {
        let mut payload = json!({});
        match version {
            Version::V16 => {
                super::put(&mut payload, "id", self.id);
                super::put(&mut payload, "connectorId", self.evse_id);
                let purpose = self.purpose.as_deref().map(v16_purpose).transpose()?;
                super::put(&mut payload, "chargingProfilePurpose", purpose);
                super::put(&mut payload, "stackLevel", self.stack_level);
            }
            Version::V201 => {
                super::put(&mut payload, "chargingProfileId", self.id);
                let mut criteria = json!({});
                super::put(&mut criteria, "evseId", self.evse_id);
                super::put(
                    &mut criteria,
                    "chargingProfilePurpose",
                    self.purpose.as_ref(),
                );
                super::put(&mut criteria, "stackLevel", self.stack_level);
                if criteria.as_object().is_some_and(|c| !c.is_empty()) {
                    payload["chargingProfileCriteria"] = criteria;
                }
            }
        }
        Ok(("ClearChargingProfile", payload))
    }
}

/// Which installed profiles to report (2.0.1 only).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReadProfiles {
    /// The EVSE (0: the station).
    pub evse_id: Option<i64>,
    /// Only profiles with these ids.
    pub ids: Option<Vec<i64>>,
    /// Only profiles of this purpose.
    pub purpose: Option<String>,
    /// Only profiles at this stack level.
    pub stack_level: Option<i64>,
    /// Only profiles from these sources (CSO, EMS, SO, ...).
    pub sources: Option<Vec<String>>,
}

impl Operation for ReadProfiles {
    const NAME: &'static str = "charging-profiles-read";

    fn translate(
        &self,
        version: Version,
        numbers: &mut dyn FnMut() -> i32,
    ) -> Result<(&'static str, Value), Untranslatable> {
        if version == Version::V16 {
            return Err(not_in_v16(
                "GetChargingProfiles; read the composite schedule instead",
            ));
        }
        let mut criteria = json!({});
        super::put(&mut criteria, "chargingProfileId", self.ids.as_ref());
        super::put(
            &mut criteria,
            "chargingProfilePurpose",
            self.purpose.as_ref(),
        );
        super::put(&mut criteria, "stackLevel", self.stack_level);
        super::put(&mut criteria, "chargingLimitSource", self.sources.as_ref());
        let mut payload = json!({"requestId": numbers(), "chargingProfile": criteria});
        super::put(&mut payload, "evseId", self.evse_id);
        Ok(("GetChargingProfiles", payload))
    }
}

/// The composite schedule wanted.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompositeSchedule {
    /// The EVSE (1.6: connector; 0, the default, is the station).
    #[serde(default)]
    pub evse_id: i64,
    /// Seconds from now.
    pub duration: i64,
    /// A or W.
    pub charging_rate_unit: Option<String>,
}

impl Operation for CompositeSchedule {
    const NAME: &'static str = "composite-schedule";

    fn translate(
        &self,
        version: Version,
        _: &mut dyn FnMut() -> i32,
    ) -> Result<(&'static str, Value), Untranslatable> {
        let target = match version {
            Version::V16 => "connectorId",
            Version::V201 => "evseId",
        };
        let mut payload = json!({ target: self.evse_id, "duration": self.duration });
        super::put(
            &mut payload,
            "chargingRateUnit",
            self.charging_rate_unit.as_ref(),
        );
        Ok(("GetCompositeSchedule", payload))
    }
}

/// Translates an OCPP 2.0.1 ChargingProfileType into the 1.6 ChargingProfile.
pub(crate) fn profile_to_v16(p: &Value) -> Result<Value, String> {
    let purpose = match p["chargingProfilePurpose"].as_str() {
        Some("ChargingStationMaxProfile") => "ChargePointMaxProfile",
        Some(same @ ("TxDefaultProfile" | "TxProfile")) => same,
        other => {
            return Err(format!(
                "purpose {} has no OCPP 1.6 equivalent",
                other.unwrap_or("?")
            ))
        }
    };
    let schedules = p["chargingSchedule"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let [schedule] = schedules else {
        return Err("OCPP 1.6 takes exactly one charging schedule".to_owned());
    };
    let mut out = Map::new();
    out.insert("chargingProfileId".into(), p["id"].clone());
    out.insert("stackLevel".into(), p["stackLevel"].clone());
    out.insert("chargingProfilePurpose".into(), json!(purpose));
    out.insert(
        "chargingProfileKind".into(),
        p["chargingProfileKind"].clone(),
    );
    for field in ["recurrencyKind", "validFrom", "validTo"] {
        if let Some(v) = p.get(field) {
            out.insert(field.into(), v.clone());
        }
    }
    if let Some(tx) = p.get("transactionId") {
        let id = tx
            .as_str()
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or("OCPP 1.6 transaction ids are integers")?;
        out.insert("transactionId".into(), json!(id));
    }
    let mut sched = Map::new();
    for field in [
        "duration",
        "startSchedule",
        "chargingRateUnit",
        "minChargingRate",
    ] {
        if let Some(v) = schedule.get(field) {
            sched.insert(field.into(), v.clone());
        }
    }
    let periods: Vec<Value> = schedule["chargingSchedulePeriod"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|period| {
            let mut p16 = json!({"startPeriod": period["startPeriod"], "limit": period["limit"]});
            if let Some(n) = period.get("numberPhases") {
                p16["numberPhases"] = n.clone();
            }
            p16
        })
        .collect();
    sched.insert("chargingSchedulePeriod".into(), Value::Array(periods));
    out.insert("chargingSchedule".into(), Value::Object(sched));
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::both;
    use super::*;

    #[test]
    fn profile_operations_translate_per_version() {
        let [v16, v201] =
            both::<ClearProfiles>(json!({"evseId": 1, "purpose": "ChargingStationMaxProfile"}));
        assert_eq!(
            v16.unwrap().payload,
            json!({"connectorId": 1, "chargingProfilePurpose": "ChargePointMaxProfile"})
        );
        assert_eq!(
            v201.unwrap().payload,
            json!({"chargingProfileCriteria": {"evseId": 1, "chargingProfilePurpose": "ChargingStationMaxProfile"}})
        );
        let [v16, v201] = both::<ClearProfiles>(json!({}));
        assert_eq!(v16.unwrap().payload, json!({}));
        assert_eq!(v201.unwrap().payload, json!({}));
        let [v16, v201] = both::<ReadProfiles>(json!({"purpose": "TxProfile"}));
        assert!(v16.is_err());
        assert_eq!(
            v201.unwrap().payload,
            json!({"requestId": 7, "chargingProfile": {"chargingProfilePurpose": "TxProfile"}})
        );
        let [v16, v201] =
            both::<CompositeSchedule>(json!({"duration": 3600, "chargingRateUnit": "W"}));
        assert_eq!(
            v16.unwrap().payload,
            json!({"connectorId": 0, "duration": 3600, "chargingRateUnit": "W"})
        );
        assert_eq!(
            v201.unwrap().payload,
            json!({"evseId": 0, "duration": 3600, "chargingRateUnit": "W"})
        );
    }
}
