//! Charge stations as assets (seed 004): a station's EVSEs live in the
//! location it stands at, as the EVSEs whose `station_id` names it, so a
//! change to them changes that location (conditionally, as every location
//! change). A station view adds what the station itself reported: its boot
//! details and the configuration it reported, read-only.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::rules::{self, invalid};
use super::service::{Failure, Locations};
use crate::store::{
    ChargeStationAuth, Evse, HardwareTemplate, Location, OcppVersion, Page, SecurityProfile,
    StoreError,
};

/// Reported configuration keys shown in a view.
const CONFIGURATION_KEYS: u32 = 200;

/// OCPP registration given with a station (as `POST /api/v0/cs/{id}`).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct OcppRegistration {
    /// 0, 1 or 2 (MaEVe numbering).
    #[schema(value_type = u8)]
    pub security_profile: SecurityProfile,
    /// base64 of the SHA-256 of the password (profiles 0 and 1).
    #[serde(default)]
    pub base64_sha256_password: Option<String>,
    /// Tolerate a Basic auth username other than the station id.
    #[serde(default)]
    pub invalid_username_allowed: bool,
}

/// A station as written: where it stands and its EVSEs.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct ChargeStationInput {
    /// The station id (its OCPP identity); the path's when absent.
    #[serde(default)]
    pub id: String,
    /// The location it stands at.
    pub location_id: String,
    /// Its EVSEs (`station_id` is set to the station).
    #[serde(default)]
    pub evses: Vec<Evse>,
    /// Copies the EVSEs of this hardware template (instead of `evses`).
    #[serde(default)]
    pub template_id: Option<String>,
    /// Registers it for OCPP at the same time.
    #[serde(default)]
    pub registration: Option<OcppRegistration>,
}

/// A station as shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChargeStationAsset {
    /// The station id.
    pub id: String,
    /// The location it stands at.
    pub location_id: String,
    /// Its EVSEs, with their live status.
    pub evses: Vec<Evse>,
    /// OCPP version of its last connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub ocpp_version: Option<OcppVersion>,
    /// From its last BootNotification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// From its last BootNotification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// From its last BootNotification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    /// From its last BootNotification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firmware_version: Option<String>,
    /// What it reported of its configuration (read-only; first 200 keys).
    pub configuration: BTreeMap<String, Option<String>>,
    /// When its EVSEs last changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
}

impl Locations {
    /// Creates (`create`: refused when it exists) or replaces a hardware
    /// template; its EVSEs follow the location rules and name no station.
    pub async fn put_template(
        &self,
        template: HardwareTemplate,
        create: bool,
        now: DateTime<Utc>,
    ) -> Result<HardwareTemplate, Failure> {
        rules::id("id", &template.id)?;
        if template.evses.is_empty() {
            return Err(invalid("evses", "a template needs at least one EVSE").into());
        }
        rules::evses(&template.evses, "template")?;
        self.payment_types().check(&template.evses)?;
        if let Some(i) = template.evses.iter().position(|e| e.station_id.is_some()) {
            return Err(invalid(
                format!("evses[{i}].station_id"),
                "a template names no station",
            )
            .into());
        }
        if create && self.store().template(&template.id).await?.is_some() {
            return Err(Failure::Exists(format!(
                "hardware template {:?} exists; PUT replaces it",
                template.id
            )));
        }
        let template = HardwareTemplate {
            last_updated: Some(crate::store::ocpi_time::truncate(now)),
            ..template
        };
        self.store().put_template(template.clone()).await?;
        Ok(template)
    }

    /// The location holding station `id`'s EVSEs, if any.
    async fn station_location(&self, id: &str) -> Result<Option<String>, Failure> {
        let links = self.store().evse_links(id).await?;
        Ok(links.into_iter().next().map(|l| l.location_id))
    }

    /// Station `id`'s view.
    pub async fn station(&self, id: &str) -> Result<ChargeStationAsset, Failure> {
        let not_found = || Failure::NotFound(format!("charge station {id:?}"));
        let location_id = self.station_location(id).await?.ok_or_else(not_found)?;
        let location = self.get(&location_id).await?.location;
        let evses: Vec<Evse> = location
            .evses()
            .iter()
            .filter(|e| e.station_id.as_deref() == Some(id))
            .cloned()
            .collect();
        let runtime = self.store().runtime(id).await?.unwrap_or_default();
        let boot = runtime.boot.clone();
        let page = Page::new(0, CONFIGURATION_KEYS);
        let configuration = self
            .store()
            .variables(id, page)
            .await
            .or_else(|e| match e {
                StoreError::NotFound(_) => Ok(Vec::new()),
                other => Err(other),
            })?
            .into_iter()
            .map(|v| (v.key, v.value))
            .collect();
        let last_updated = evses.iter().filter_map(|e| e.last_updated).max();
        Ok(ChargeStationAsset {
            id: id.to_owned(),
            location_id,
            ocpp_version: runtime.ocpp_version,
            vendor: boot.as_ref().map(|b| b.vendor.clone()),
            model: boot.as_ref().map(|b| b.model.clone()),
            serial_number: boot.as_ref().and_then(|b| b.serial_number.clone()),
            firmware_version: boot.as_ref().and_then(|b| b.firmware_version.clone()),
            configuration,
            last_updated: last_updated.map(|t| crate::store::ocpi_time::format(&t)),
            evses,
        })
    }

    /// Creates (`create`: refused when it has EVSEs already) or replaces
    /// station `id`: registers it when asked, puts its EVSEs in the location
    /// named (keeping the live status of an EVSE of the same uid), then
    /// takes them out of the location it stood at before, if another.
    pub async fn put_station(
        &self,
        id: &str,
        input: ChargeStationInput,
        create: bool,
        now: DateTime<Utc>,
    ) -> Result<ChargeStationAsset, Failure> {
        if !input.id.is_empty() && input.id != id {
            return Err(invalid(
                "id",
                format!("{:?} differs from the id in the path", input.id),
            )
            .into());
        }
        let mut input = input;
        if let Some(template_id) = &input.template_id {
            if !input.evses.is_empty() {
                return Err(invalid("template_id", "give evses or template_id, not both").into());
            }
            let template = self.store().template(template_id).await?.ok_or_else(|| {
                invalid(
                    "template_id",
                    format!("no hardware template {template_id:?}"),
                )
            })?;
            input.evses = template.evses;
        }
        if input.evses.is_empty() {
            return Err(invalid("evses", "a charge station needs at least one EVSE").into());
        }
        let before = self.station_location(id).await?;
        if create && before.is_some() {
            return Err(Failure::Exists(format!(
                "charge station {id:?} exists; PUT replaces it"
            )));
        }
        if let Some(registration) = input.registration {
            let auth = ChargeStationAuth {
                security_profile: registration.security_profile,
                base64_sha256_password: registration.base64_sha256_password,
                invalid_username_allowed: registration.invalid_username_allowed,
            };
            if let Some((field, reason)) = auth.problem() {
                return Err(invalid(format!("registration.{field}"), reason).into());
            }
            self.store().register_station(id, auth, now).await?;
        }
        let evses: Vec<Evse> = input
            .evses
            .into_iter()
            .map(|e| Evse {
                station_id: Some(id.to_owned()),
                ..e
            })
            .collect();
        self.replace_station_evses(&input.location_id, id, Some(&evses), now)
            .await?;
        if let Some(old) = before.filter(|old| *old != input.location_id) {
            self.replace_station_evses(&old, id, None, now).await?;
        }
        self.station(id).await
    }

    /// Merges `fields` into station `id`: `location_id` moves it, `evses`
    /// replaces its EVSEs whole, `registration` registers it again.
    pub async fn patch_station(
        &self,
        id: &str,
        fields: &serde_json::Map<String, serde_json::Value>,
        now: DateTime<Utc>,
    ) -> Result<ChargeStationAsset, Failure> {
        use serde_json::Value;
        let current = self.station(id).await?;
        let mut merged = serde_json::Map::new();
        merged.insert("id".into(), Value::String(current.id));
        merged.insert("location_id".into(), Value::String(current.location_id));
        merged.insert(
            "evses".into(),
            serde_json::to_value(&current.evses).unwrap_or_default(),
        );
        for key in ["location_id", "evses", "registration"] {
            if let Some(value) = fields.get(key) {
                merged.insert(key.into(), value.clone());
            }
        }
        let input: ChargeStationInput = rules::decode(Value::Object(merged))?;
        self.put_station(id, input, false, now).await
    }

    /// Station `id`'s EVSEs in location `location_id` become `evses`
    /// (None: removed).
    async fn replace_station_evses(
        &self,
        location_id: &str,
        id: &str,
        evses: Option<&[Evse]>,
        now: DateTime<Utc>,
    ) -> Result<(), Failure> {
        let change = |current: Option<Location>| {
            let mut location =
                current.ok_or_else(|| Failure::NotFound(format!("location {location_id:?}")))?;
            let stored = location.evses.take().unwrap_or_default();
            let (mine, mut others): (Vec<Evse>, Vec<Evse>) = stored
                .into_iter()
                .partition(|e| e.station_id.as_deref() == Some(id));
            for evse in evses.unwrap_or_default() {
                let status = mine
                    .iter()
                    .find(|m| m.uid == evse.uid)
                    .map_or(evse.status, |m| m.status);
                others.push(Evse {
                    status,
                    ..evse.clone()
                });
            }
            location.evses = Some(others);
            Ok(location)
        };
        self.change(location_id, None, now, change).await.map(drop)
    }
}
