//! The nearby search of drivers' apps: which geohash cells cover a circle,
//! the filters a location must match, and the query itself (cells read
//! from the store, exact great-circle distance, filters, order by distance,
//! then only the page's locations loaded). Also the filters' valid values.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::payment_types::PaymentTypes;
use super::rules::{invalid, Invalid};
use super::service::{Failure, Locations};
use crate::store::{
    Capability, Circle, ConnectorStandard, Facility, Location, ParkingType, PlaceEntry,
    PlaceSummary, PowerType,
};

/// Default search radius, km.
pub const DEFAULT_DISTANCE_KM: f64 = 10.0;
/// Largest search radius, km.
pub const MAX_DISTANCE_KM: f64 = 500.0;
/// Most cells one search reads (the precision is chosen to stay under it).
const MOST_CELLS: usize = 32;
/// Kilometres per degree of latitude.
const KM_PER_DEGREE: f64 = 111.195;
/// Default and largest page.
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;

/// Height and width in degrees of a geohash cell of `chars` characters.
fn cell_size(chars: usize) -> (f64, f64) {
    let bits = 5 * chars as i32;
    let lon_bits = (bits + 1) / 2;
    let lat_bits = bits / 2;
    (180.0 / 2f64.powi(lat_bits), 360.0 / 2f64.powi(lon_bits))
}

/// Steps from `from` to `to` by `step`, both ends included.
fn steps(from: f64, to: f64, step: f64) -> Vec<f64> {
    let mut points = Vec::new();
    let mut at = from;
    while at < to {
        points.push(at);
        at += step;
    }
    points.push(to);
    points
}

/// Geohash prefixes whose cells together cover `circle`: the finest
/// precision at which at most [`MOST_CELLS`] cells cover its bounding box.
pub fn covering(circle: &Circle) -> Vec<String> {
    let dlat = circle.radius_km / KM_PER_DEGREE;
    let (south, north) = (
        (circle.lat - dlat).max(-90.0),
        (circle.lat + dlat).min(90.0),
    );
    let widest = south.abs().max(north.abs());
    let dlon = if widest >= 89.0 {
        180.0
    } else {
        (dlat / widest.to_radians().cos()).min(180.0)
    };
    let mut chosen = 1;
    for chars in (1..=crate::store::CELL_CHARS).rev() {
        let (h, w) = cell_size(chars);
        let rows = ((north - south) / h).ceil() + 1.0;
        let columns = (2.0 * dlon / w).ceil() + 1.0;
        if rows * columns <= MOST_CELLS as f64 {
            chosen = chars;
            break;
        }
    }
    let (h, w) = cell_size(chosen);
    let (west, east) = if dlon >= 180.0 {
        (-180.0, 180.0 - w / 2.0)
    } else {
        (circle.lon - dlon, circle.lon + dlon)
    };
    let mut cells: Vec<String> = Vec::new();
    for lat in steps(south, north, h) {
        for lon in steps(west, east, w) {
            // Wrap across the antimeridian.
            let lon = (lon + 540.0).rem_euclid(360.0) - 180.0;
            let lat = lat.clamp(-90.0, 90.0 - 1e-9);
            if let Ok(cell) = geohash::encode(geohash::Coord { x: lon, y: lat }, chosen) {
                if !cells.contains(&cell) {
                    cells.push(cell);
                }
            }
        }
    }
    cells
}

/// The filters of a search; each takes several values (any may match), and
/// a location must match every filter given.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Filters {
    cities: Vec<String>,
    provinces: Vec<String>,
    facilities: Vec<Facility>,
    capabilities: Vec<Capability>,
    payment_types: Vec<String>,
    parking_types: Vec<ParkingType>,
    standards: Vec<ConnectorStandard>,
    power_types: Vec<PowerType>,
    min_power_w: Option<f64>,
    available_only: bool,
}

fn any_of<T: PartialEq>(wanted: &[T], have: &[T]) -> bool {
    wanted.is_empty() || wanted.iter().any(|w| have.contains(w))
}

impl Filters {
    /// Whether a location with this summary matches.
    pub fn matches(&self, s: &PlaceSummary) -> bool {
        let text = |wanted: &[String], have: Option<&str>| {
            wanted.is_empty()
                || have
                    .is_some_and(|have| wanted.iter().any(|w| w.eq_ignore_ascii_case(have.trim())))
        };
        text(&self.cities, Some(&s.city))
            && text(&self.provinces, s.province.as_deref())
            && any_of(&self.facilities, &s.facilities)
            && any_of(&self.capabilities, &s.capabilities)
            && any_of(&self.payment_types, &s.payment_types)
            && (self.parking_types.is_empty()
                || s.parking_type
                    .is_some_and(|p| self.parking_types.contains(&p)))
            && any_of(&self.standards, &s.standards)
            && any_of(&self.power_types, &s.power_types)
            && self.min_power_w.is_none_or(|w| s.max_power_w as f64 >= w)
            && (!self.available_only || s.available)
    }
}

/// A search as asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Nearby {
    /// Where and how far.
    pub circle: Circle,
    /// What must match.
    pub filters: Filters,
    /// Results to skip.
    pub offset: usize,
    /// Most results.
    pub limit: usize,
}

fn number(params: &HashMap<String, String>, name: &str) -> Result<Option<f64>, Invalid> {
    params
        .get(name)
        .map(|text| {
            text.trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .ok_or_else(|| invalid(name, format!("{text:?} is not a number")))
        })
        .transpose()
}

fn list(params: &HashMap<String, String>, name: &str) -> Vec<String> {
    params
        .get(name)
        .map(|text| {
            text.split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn values<T: DeserializeOwned>(
    params: &HashMap<String, String>,
    name: &str,
) -> Result<Vec<T>, Invalid> {
    list(params, name)
        .into_iter()
        .map(|v| {
            serde_json::from_value(Value::String(v.clone())).map_err(|_| {
                invalid(
                    name,
                    format!("{v:?} is not a valid value (see /api/v1/filters)"),
                )
            })
        })
        .collect()
}

impl Nearby {
    /// Reads a search from query parameters, naming what is wrong.
    pub fn from_params(params: &HashMap<String, String>) -> Result<Nearby, Invalid> {
        let lat = number(params, "lat")?.ok_or_else(|| invalid("lat", "is required"))?;
        let lon = number(params, "lng")?.ok_or_else(|| invalid("lng", "is required"))?;
        if lat.abs() > 90.0 {
            return Err(invalid("lat", format!("{lat} is outside -90 to 90")));
        }
        if lon.abs() > 180.0 {
            return Err(invalid("lng", format!("{lon} is outside -180 to 180")));
        }
        let radius_km = number(params, "distance_km")?.unwrap_or(DEFAULT_DISTANCE_KM);
        if radius_km <= 0.0 || radius_km > MAX_DISTANCE_KM {
            return Err(invalid(
                "distance_km",
                format!("{radius_km} is not above 0 and at most {MAX_DISTANCE_KM}"),
            ));
        }
        let min_power_kw = number(params, "min_power_kw")?;
        if min_power_kw.is_some_and(|kw| kw < 0.0) {
            return Err(invalid("min_power_kw", "must not be negative"));
        }
        let available_only = match params.get("available_only").map(String::as_str) {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(invalid(
                    "available_only",
                    format!("{other:?} is not true or false"),
                ))
            }
        };
        let count = |name: &str, default: usize| -> Result<usize, Invalid> {
            params.get(name).map_or(Ok(default), |text| {
                text.trim()
                    .parse()
                    .map_err(|_| invalid(name, format!("{text:?} is not a whole number")))
            })
        };
        let limit = count("limit", DEFAULT_LIMIT)?;
        if limit == 0 {
            return Err(invalid("limit", "must be 1 or more"));
        }
        Ok(Nearby {
            circle: Circle {
                lat,
                lon,
                radius_km,
            },
            filters: Filters {
                cities: list(params, "city"),
                provinces: list(params, "province"),
                facilities: values(params, "facilities")?,
                capabilities: values(params, "capabilities")?,
                payment_types: list(params, "payment_types"),
                parking_types: values(params, "parking_types")?,
                standards: values(params, "connector_standard")?,
                power_types: values(params, "power_type")?,
                min_power_w: min_power_kw.map(|kw| kw * 1000.0),
                available_only,
            },
            offset: count("offset", 0)?,
            limit: limit.min(MAX_LIMIT),
        })
    }
}

/// A location found, with its distance.
#[derive(Debug, Clone, Serialize)]
pub struct Found {
    /// The location.
    #[serde(flatten)]
    pub location: Location,
    /// Its distance from the search's centre, km.
    pub distance_km: f64,
}

/// A page of results and how many matched in all.
#[derive(Debug)]
pub struct Results {
    /// The page, nearest first.
    pub page: Vec<Found>,
    /// All matches.
    pub total: usize,
}

/// Every match of `search`, nearest first (ties by id).
pub fn ranked(mut entries: Vec<PlaceEntry>, filters: &Filters) -> Vec<PlaceEntry> {
    entries.retain(|e| filters.matches(&e.summary));
    entries.sort_by(|a, b| {
        a.distance_km
            .total_cmp(&b.distance_km)
            .then_with(|| a.location_id.cmp(&b.location_id))
    });
    entries
}

impl Locations {
    /// Runs a nearby search.
    pub async fn nearby(&self, search: &Nearby) -> Result<Results, Failure> {
        let prefixes = covering(&search.circle);
        let entries = self
            .store()
            .locations_near(search.circle, &prefixes)
            .await?;
        let matches = ranked(entries, &search.filters);
        let total = matches.len();
        let page: Vec<_> = matches
            .into_iter()
            .skip(search.offset)
            .take(search.limit)
            .collect();
        let loads = page
            .iter()
            .map(|entry| self.store().location(&entry.location_id));
        let loaded = futures_util::future::try_join_all(loads).await?;
        let page = page
            .into_iter()
            .zip(loaded)
            .filter_map(|(entry, stored)| {
                let location = stored?.location;
                // An index row left behind by a crash names an old place.
                let cell = location.place()?.0;
                (cell == entry.cell).then(|| Found {
                    location,
                    distance_km: (entry.distance_km * 1000.0).round() / 1000.0,
                })
            })
            .collect();
        Ok(Results { page, total })
    }
}

/// The valid values of each filter (`GET /api/v1/filters`).
pub fn filter_values(payment_types: &PaymentTypes) -> serde_json::Map<String, Value> {
    fn all<T: Serialize>(items: &[T]) -> Value {
        serde_json::to_value(items).unwrap_or_default()
    }
    use Capability as C;
    use Facility as F;
    let mut map = serde_json::Map::new();
    map.insert(
        "facilities".into(),
        all(&[
            F::Hotel,
            F::Restaurant,
            F::Cafe,
            F::Mall,
            F::Supermarket,
            F::Sport,
            F::RecreationArea,
            F::Nature,
            F::Museum,
            F::BikeSharing,
            F::BusStop,
            F::TaxiStand,
            F::TramStop,
            F::MetroStation,
            F::TrainStation,
            F::Airport,
            F::ParkingLot,
            F::CarpoolParking,
            F::FuelStation,
            F::Wifi,
        ]),
    );
    map.insert(
        "capabilities".into(),
        all(&[
            C::ChargingProfileCapable,
            C::ChargingPreferencesCapable,
            C::ChipCardSupport,
            C::ContactlessCardSupport,
            C::CreditCardPayable,
            C::DebitCardPayable,
            C::PedTerminal,
            C::RemoteStartStopCapable,
            C::Reservable,
            C::RfidReader,
            C::StartSessionConnectorRequired,
            C::TokenGroupCapable,
            C::UnlockCapable,
        ]),
    );
    map.insert(
        "parking_types".into(),
        all(&[
            ParkingType::AlongMotorway,
            ParkingType::ParkingGarage,
            ParkingType::ParkingLot,
            ParkingType::OnDriveway,
            ParkingType::OnStreet,
            ParkingType::UndergroundGarage,
        ]),
    );
    map.insert("payment_types".into(), all(payment_types.codes()));
    map.insert("connector_standard".into(), all(&ConnectorStandard::ALL));
    map.insert(
        "power_type".into(),
        all(&[
            PowerType::AC_1_PHASE,
            PowerType::AC_2_PHASE,
            PowerType::AC_2_PHASE_SPLIT,
            PowerType::AC_3_PHASE,
            PowerType::DC,
        ]),
    );
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::distance_km;

    #[test]
    fn covering_cells_hold_every_point_of_the_circle() {
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        for _ in 0..300 {
            let circle = Circle {
                lat: next() * 170.0 - 85.0,
                lon: next() * 360.0 - 180.0,
                radius_km: 0.5 + next() * 499.5,
            };
            let cells = covering(&circle);
            assert!(
                cells.len() <= MOST_CELLS * 2,
                "{} cells for {circle:?}",
                cells.len()
            );
            for _ in 0..50 {
                // A random point inside the circle.
                let bearing = next() * std::f64::consts::TAU;
                let d = next() * circle.radius_km * 0.999;
                let dlat = d * bearing.cos() / KM_PER_DEGREE;
                let lat = (circle.lat + dlat).clamp(-89.999, 89.999);
                let dlon = d * bearing.sin() / (KM_PER_DEGREE * lat.to_radians().cos().max(1e-6));
                let lon = (circle.lon + dlon + 540.0).rem_euclid(360.0) - 180.0;
                if distance_km(circle.lat, circle.lon, lat, lon) > circle.radius_km {
                    continue;
                }
                let cell = geohash::encode(geohash::Coord { x: lon, y: lat }, 9).unwrap();
                assert!(
                    cells.iter().any(|c| cell.starts_with(c.as_str())),
                    "{lat},{lon} ({cell}) not covered by {cells:?} for {circle:?}"
                );
            }
        }
    }

    #[test]
    fn search_parameters_are_checked_by_name() {
        let params = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let ok = Nearby::from_params(&params(&[
            ("lat", "52.1"),
            ("lng", "5.1"),
            ("facilities", "CAFE,WIFI"),
        ]))
        .unwrap();
        assert_eq!(ok.circle.radius_km, DEFAULT_DISTANCE_KM);
        assert_eq!(ok.filters.facilities, [Facility::Cafe, Facility::Wifi]);
        for (pairs, field) in [
            (vec![("lng", "5")], "lat"),
            (vec![("lat", "91"), ("lng", "5")], "lat"),
            (vec![("lat", "1"), ("lng", "east")], "lng"),
            (
                vec![("lat", "1"), ("lng", "5"), ("distance_km", "0")],
                "distance_km",
            ),
            (
                vec![("lat", "1"), ("lng", "5"), ("distance_km", "501")],
                "distance_km",
            ),
            (
                vec![("lat", "1"), ("lng", "5"), ("facilities", "CINEMA")],
                "facilities",
            ),
            (
                vec![("lat", "1"), ("lng", "5"), ("parking_types", "INDOOR")],
                "parking_types",
            ),
            (
                vec![("lat", "1"), ("lng", "5"), ("available_only", "yes")],
                "available_only",
            ),
        ] {
            assert_eq!(
                Nearby::from_params(&params(&pairs)).unwrap_err().field,
                field
            );
        }
    }
}
