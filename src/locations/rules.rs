//! The rules a location must keep beyond its JSON types (OCPI 2.2.1 field
//! lengths and shapes, unique EVSE and connector ids, sane numbers), each
//! failure naming the field. Pure: the station links are checked against
//! the store by the caller.

use std::collections::HashSet;

use crate::store::{Evse, GeoLocation, Hours, Image, Location};

/// A field that breaks a rule, and which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The field's path, e.g. `evses[1].connectors[0].id`.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid field {}: {}", self.field, self.reason)
    }
}

/// A failure naming `field`.
pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Decodes a JSON value into `T`, naming the field that does not fit.
pub fn decode<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, Invalid> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        invalid(field, e.into_inner().to_string())
    })
}

/// Longest location id, EVSE uid and connector id (OCPI `CiString(36)`).
pub const MAX_ID_CHARS: usize = 36;

/// Checks that `value` has between `min` and `max` characters.
pub fn length(field: &str, value: &str, min: usize, max: usize) -> Result<(), Invalid> {
    let n = value.chars().count();
    if n < min || n > max {
        let rule = if min == max {
            format!("must be {min} characters long, not {n}")
        } else {
            format!("must be {min} to {max} characters long, not {n}")
        };
        return Err(invalid(field, rule));
    }
    Ok(())
}

fn optional(field: &str, value: &Option<String>, max: usize) -> Result<(), Invalid> {
    value
        .as_deref()
        .map_or(Ok(()), |v| length(field, v, 1, max))
}

/// Checks an id from a URL path or body (1 to 36 characters, printable ASCII).
pub fn id(field: &str, value: &str) -> Result<(), Invalid> {
    length(field, value, 1, MAX_ID_CHARS)?;
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(field, "must be printable ASCII without spaces"));
    }
    Ok(())
}

fn coordinates(field: &str, at: &GeoLocation) -> Result<(), Invalid> {
    let number = |name: &str, text: &str, limit: f64| {
        let value: f64 = text.trim().parse().map_err(|_| {
            invalid(
                format!("{field}.{name}"),
                format!("{text:?} is not a number"),
            )
        })?;
        if !value.is_finite() || value.abs() > limit {
            return Err(invalid(
                format!("{field}.{name}"),
                format!("{text} is outside -{limit} to {limit}"),
            ));
        }
        Ok(())
    };
    number("latitude", &at.latitude, 90.0)?;
    number("longitude", &at.longitude, 180.0)
}

fn images(field: &str, images: &Option<Vec<Image>>) -> Result<(), Invalid> {
    for (i, image) in images.iter().flatten().enumerate() {
        length(&format!("{field}[{i}].url"), &image.url, 1, 255)?;
        length(&format!("{field}[{i}].type"), &image.kind, 1, 4)?;
    }
    Ok(())
}

fn hhmm(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 5
        && bytes[2] == b':'
        && text[..2].parse::<u8>().is_ok_and(|h| h < 24)
        && text[3..].parse::<u8>().is_ok_and(|m| m < 60)
}

fn hours(hours: &Option<Hours>) -> Result<(), Invalid> {
    let Some(hours) = hours else {
        return Ok(());
    };
    for (i, day) in hours.regular_hours.iter().flatten().enumerate() {
        let field = format!("opening_times.regular_hours[{i}]");
        if !(1..=7).contains(&day.weekday) {
            return Err(invalid(
                format!("{field}.weekday"),
                "must be 1 (Monday) to 7 (Sunday)",
            ));
        }
        for (name, value) in [
            ("period_begin", &day.period_begin),
            ("period_end", &day.period_end),
        ] {
            if !hhmm(value) {
                return Err(invalid(
                    format!("{field}.{name}"),
                    format!("{value:?} is not HH:MM"),
                ));
            }
        }
    }
    Ok(())
}

/// Checks a payment type code (voltgate extra): 1 to 32 of A-Z, 0-9, `_`.
pub fn payment_type(field: &str, code: &str) -> Result<(), Invalid> {
    let fine = (1..=32).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if fine {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("{code:?} is not a payment type code (A-Z, 0-9, _)"),
        ))
    }
}

/// Checks one EVSE; `field` is its path.
pub fn evse(field: &str, evse: &Evse) -> Result<(), Invalid> {
    id(&format!("{field}.uid"), &evse.uid)?;
    optional(&format!("{field}.evse_id"), &evse.evse_id, 48)?;
    optional(&format!("{field}.floor_level"), &evse.floor_level, 4)?;
    optional(
        &format!("{field}.physical_reference"),
        &evse.physical_reference,
        16,
    )?;
    if let Some(at) = &evse.coordinates {
        coordinates(&format!("{field}.coordinates"), at)?;
    }
    images(&format!("{field}.images"), &evse.images)?;
    for (i, code) in evse.payment_types.iter().flatten().enumerate() {
        payment_type(&format!("{field}.payment_types[{i}]"), code)?;
    }
    match (&evse.station_id, evse.ocpp_evse_id, evse.ocpp_connector_id) {
        (None, None, None) => {}
        (None, _, _) => {
            return Err(invalid(
                format!("{field}.station_id"),
                "ocpp_evse_id and ocpp_connector_id need the station_id they belong to",
            ))
        }
        (Some(_), Some(evse_id), _) if evse_id < 1 => {
            return Err(invalid(
                format!("{field}.ocpp_evse_id"),
                "must be 1 or more",
            ))
        }
        (Some(_), _, Some(connector)) if connector < 1 => {
            return Err(invalid(
                format!("{field}.ocpp_connector_id"),
                "must be 1 or more",
            ))
        }
        (Some(station), _, _) => length(&format!("{field}.station_id"), station, 1, 48)?,
    }
    if evse.connectors.is_empty() {
        return Err(invalid(
            format!("{field}.connectors"),
            "an EVSE needs at least one connector",
        ));
    }
    let mut seen = HashSet::new();
    for (j, connector) in evse.connectors.iter().enumerate() {
        let path = format!("{field}.connectors[{j}]");
        id(&format!("{path}.id"), &connector.id)?;
        if !seen.insert(connector.id.as_str()) {
            return Err(invalid(
                format!("{path}.id"),
                format!("connector id {:?} appears twice in the EVSE", connector.id),
            ));
        }
        if connector.max_voltage < 0 || connector.max_amperage < 0 {
            return Err(invalid(
                path,
                "max_voltage and max_amperage must not be negative",
            ));
        }
        if connector.max_electric_power.is_some_and(|w| w < 0) {
            return Err(invalid(
                format!("{path}.max_electric_power"),
                "must not be negative",
            ));
        }
        optional(
            &format!("{path}.terms_and_conditions"),
            &connector.terms_and_conditions,
            255,
        )?;
        for (k, tariff) in connector.tariff_ids.iter().flatten().enumerate() {
            id(&format!("{path}.tariff_ids[{k}]"), tariff)?;
        }
    }
    Ok(())
}

/// Checks a whole location.
pub fn location(location: &Location) -> Result<(), Invalid> {
    id("id", &location.id)?;
    length("country_code", &location.country_code, 2, 2)?;
    length("party_id", &location.party_id, 3, 3)?;
    optional("name", &location.name, 255)?;
    length("address", &location.address, 1, 45)?;
    length("city", &location.city, 1, 45)?;
    optional("postal_code", &location.postal_code, 10)?;
    optional("state", &location.state, 20)?;
    optional("province", &location.province, 60)?;
    length("country", &location.country, 3, 3)?;
    coordinates("coordinates", &location.coordinates)?;
    length("time_zone", &location.time_zone, 1, 255)?;
    images("images", &location.images)?;
    hours(&location.opening_times)?;
    evses(location.evses(), "location")
}

/// Checks the EVSEs of a `whole` (location, template): each one, and that
/// no uid appears twice.
pub fn evses(evses: &[Evse], whole: &str) -> Result<(), Invalid> {
    let mut uids = HashSet::new();
    for (i, one) in evses.iter().enumerate() {
        let field = format!("evses[{i}]");
        evse(&field, one)?;
        if !uids.insert(one.uid.as_str()) {
            return Err(invalid(
                format!("{field}.uid"),
                format!("EVSE uid {:?} appears twice in the {whole}", one.uid),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// A valid location with one linked EVSE of two connectors.
    pub fn example(id: &str) -> Location {
        serde_json::from_value(json!({
            "id": id, "country_code": "NL", "party_id": "VGT", "publish": true,
            "name": "Depot", "address": "Main 1", "city": "Utrecht", "province": "Utrecht",
            "country": "NLD", "coordinates": {"latitude": "52.09", "longitude": "5.12"},
            "time_zone": "Europe/Amsterdam", "facilities": ["WIFI"],
            "evses": [{"uid": "E1", "status": "AVAILABLE", "station_id": "CS1", "ocpp_evse_id": 1,
                "capabilities": ["RFID_READER"], "payment_types": ["CREDIT_CARD"],
                "connectors": [
                    {"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_3_PHASE", "max_voltage": 230, "max_amperage": 32},
                    {"id": "2", "standard": "IEC_62196_T2_COMBO", "format": "CABLE", "power_type": "DC", "max_voltage": 500, "max_amperage": 200, "max_electric_power": 100000}]}],
            "opening_times": {"twentyfourseven": false, "regular_hours": [{"weekday": 1, "period_begin": "08:00", "period_end": "20:00"}]}
        }))
        .unwrap()
    }

    #[test]
    fn a_valid_location_passes() {
        assert_eq!(location(&example("L1")), Ok(()));
    }

    #[test]
    fn each_broken_rule_names_its_field() {
        type Breaker = Box<dyn Fn(&mut Location)>;
        let cases: Vec<(&str, Breaker)> = vec![
            ("id", Box::new(|l| l.id = "x".repeat(37))),
            (
                "coordinates.latitude",
                Box::new(|l| l.coordinates.latitude = "95".into()),
            ),
            (
                "coordinates.longitude",
                Box::new(|l| l.coordinates.longitude = "east".into()),
            ),
            ("country", Box::new(|l| l.country = "NL".into())),
            (
                "evses[1].uid",
                Box::new(|l| {
                    let copy = l.evses()[0].clone();
                    l.evses.as_mut().unwrap().push(copy);
                }),
            ),
            (
                "evses[0].connectors[1].id",
                Box::new(|l| {
                    l.evses.as_mut().unwrap()[0].connectors[1].id = "1".into();
                }),
            ),
            (
                "evses[0].station_id",
                Box::new(|l| l.evses.as_mut().unwrap()[0].station_id = None),
            ),
            (
                "evses[0].payment_types[0]",
                Box::new(|l| {
                    l.evses.as_mut().unwrap()[0].payment_types = Some(vec!["cash!".into()]);
                }),
            ),
            (
                "opening_times.regular_hours[0].period_end",
                Box::new(|l| {
                    l.opening_times
                        .as_mut()
                        .unwrap()
                        .regular_hours
                        .as_mut()
                        .unwrap()[0]
                        .period_end = "25:00".into();
                }),
            ),
        ];
        for (field, break_it) in cases {
            let mut broken = example("L1");
            break_it(&mut broken);
            let error = location(&broken).expect_err(field);
            assert_eq!(error.field, field, "{error}");
        }
    }
}
