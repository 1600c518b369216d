//! The location aggregate's records: the OCPI 2.2.1 Location with its EVSEs
//! and connectors, the extra fields the seeds use (province, per-EVSE
//! payment types), and voltgate's private link from an EVSE to the OCPP
//! station and EVSE/connector that it is. Field names are OCPI's
//! (snake_case); every time is UTC with at most millisecond precision.
//!
//! Records written by earlier releases (MaEVe's shape, without `publish`,
//! `time_zone` or EVSE status) read back with OCPI's defaults.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a location's parking is (OCPI `ParkingType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ParkingType {
    /// Along a motorway.
    AlongMotorway,
    /// In a parking garage.
    ParkingGarage,
    /// On a parking lot.
    ParkingLot,
    /// On a driveway.
    OnDriveway,
    /// On the street.
    OnStreet,
    /// In an underground garage.
    UndergroundGarage,
}

/// Connector standards (OCPI `ConnectorType`); variants carry the wire names.
#[allow(non_camel_case_types, missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum ConnectorStandard {
    CHADEMO,
    CHAOJI,
    DOMESTIC_A,
    DOMESTIC_B,
    DOMESTIC_C,
    DOMESTIC_D,
    DOMESTIC_E,
    DOMESTIC_F,
    DOMESTIC_G,
    DOMESTIC_H,
    DOMESTIC_I,
    DOMESTIC_J,
    DOMESTIC_K,
    DOMESTIC_L,
    GBT_AC,
    GBT_DC,
    IEC_60309_2_single_16,
    IEC_60309_2_three_16,
    IEC_60309_2_three_32,
    IEC_60309_2_three_64,
    IEC_62196_T1,
    IEC_62196_T1_COMBO,
    IEC_62196_T2,
    IEC_62196_T2_COMBO,
    IEC_62196_T3A,
    IEC_62196_T3C,
    NEMA_5_20,
    NEMA_6_30,
    NEMA_6_50,
    NEMA_10_30,
    NEMA_10_50,
    NEMA_14_30,
    NEMA_14_50,
    PANTOGRAPH_BOTTOM_UP,
    PANTOGRAPH_TOP_DOWN,
    TESLA_R,
    TESLA_S,
    UNKNOWN,
}

impl ConnectorStandard {
    /// Every standard, in declaration order.
    pub const ALL: [ConnectorStandard; 38] = [
        ConnectorStandard::CHADEMO,
        ConnectorStandard::CHAOJI,
        ConnectorStandard::DOMESTIC_A,
        ConnectorStandard::DOMESTIC_B,
        ConnectorStandard::DOMESTIC_C,
        ConnectorStandard::DOMESTIC_D,
        ConnectorStandard::DOMESTIC_E,
        ConnectorStandard::DOMESTIC_F,
        ConnectorStandard::DOMESTIC_G,
        ConnectorStandard::DOMESTIC_H,
        ConnectorStandard::DOMESTIC_I,
        ConnectorStandard::DOMESTIC_J,
        ConnectorStandard::DOMESTIC_K,
        ConnectorStandard::DOMESTIC_L,
        ConnectorStandard::GBT_AC,
        ConnectorStandard::GBT_DC,
        ConnectorStandard::IEC_60309_2_single_16,
        ConnectorStandard::IEC_60309_2_three_16,
        ConnectorStandard::IEC_60309_2_three_32,
        ConnectorStandard::IEC_60309_2_three_64,
        ConnectorStandard::IEC_62196_T1,
        ConnectorStandard::IEC_62196_T1_COMBO,
        ConnectorStandard::IEC_62196_T2,
        ConnectorStandard::IEC_62196_T2_COMBO,
        ConnectorStandard::IEC_62196_T3A,
        ConnectorStandard::IEC_62196_T3C,
        ConnectorStandard::NEMA_5_20,
        ConnectorStandard::NEMA_6_30,
        ConnectorStandard::NEMA_6_50,
        ConnectorStandard::NEMA_10_30,
        ConnectorStandard::NEMA_10_50,
        ConnectorStandard::NEMA_14_30,
        ConnectorStandard::NEMA_14_50,
        ConnectorStandard::PANTOGRAPH_BOTTOM_UP,
        ConnectorStandard::PANTOGRAPH_TOP_DOWN,
        ConnectorStandard::TESLA_R,
        ConnectorStandard::TESLA_S,
        ConnectorStandard::UNKNOWN,
    ];
}

/// Socket or fixed cable (OCPI `ConnectorFormat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConnectorFormat {
    /// A socket; the driver brings the cable.
    Socket,
    /// A cable fixed to the EVSE.
    Cable,
}

/// Supply type (OCPI `PowerType`).
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum PowerType {
    /// Single-phase AC.
    AC_1_PHASE,
    /// Two-phase AC.
    AC_2_PHASE,
    /// Two-phase AC, split phase.
    AC_2_PHASE_SPLIT,
    /// Three-phase AC.
    AC_3_PHASE,
    /// Direct current.
    DC,
}

impl PowerType {
    /// Phases carrying current (a DC supply counts as one).
    pub fn phases(self) -> u32 {
        match self {
            PowerType::AC_1_PHASE | PowerType::DC => 1,
            PowerType::AC_2_PHASE | PowerType::AC_2_PHASE_SPLIT => 2,
            PowerType::AC_3_PHASE => 3,
        }
    }
}

/// What a location offers around the charger (OCPI `Facility`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum Facility {
    Hotel,
    Restaurant,
    Cafe,
    Mall,
    Supermarket,
    Sport,
    RecreationArea,
    Nature,
    Museum,
    BikeSharing,
    BusStop,
    TaxiStand,
    TramStop,
    MetroStation,
    TrainStation,
    Airport,
    ParkingLot,
    CarpoolParking,
    FuelStation,
    Wifi,
}

/// What an EVSE can do (OCPI `Capability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum Capability {
    ChargingProfileCapable,
    ChargingPreferencesCapable,
    ChipCardSupport,
    ContactlessCardSupport,
    CreditCardPayable,
    DebitCardPayable,
    PedTerminal,
    RemoteStartStopCapable,
    Reservable,
    RfidReader,
    StartSessionConnectorRequired,
    TokenGroupCapable,
    UnlockCapable,
}

/// Who may park at an EVSE (OCPI `ParkingRestriction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum ParkingRestriction {
    EvOnly,
    Plugged,
    Disabled,
    Customers,
    Motorcycles,
}

/// An EVSE's status (OCPI `Status`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum EvseStatus {
    Available,
    Blocked,
    Charging,
    Inoperative,
    Outoforder,
    Planned,
    Removed,
    Reserved,
    #[default]
    Unknown,
}

/// What an image shows (OCPI `ImageCategory`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum ImageCategory {
    Charger,
    Entrance,
    Location,
    Network,
    Operator,
    Other,
    Owner,
}

/// Latitude and longitude as decimal strings (OCPI `GeoLocation`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GeoLocation {
    /// Latitude in decimal degrees, -90 to 90.
    pub latitude: String,
    /// Longitude in decimal degrees, -180 to 180.
    pub longitude: String,
}

impl GeoLocation {
    /// The coordinates as numbers, when both parse and are in range.
    pub fn degrees(&self) -> Option<(f64, f64)> {
        let lat: f64 = self.latitude.trim().parse().ok()?;
        let lon: f64 = self.longitude.trim().parse().ok()?;
        let fine = lat.is_finite() && lon.is_finite() && lat.abs() <= 90.0 && lon.abs() <= 180.0;
        fine.then_some((lat, lon))
    }
}

/// An image (OCPI `Image`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Image {
    /// Where the image is.
    pub url: String,
    /// A thumbnail of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<String>,
    /// What it shows.
    pub category: ImageCategory,
    /// Its file type, e.g. "jpeg" (at most 4 characters).
    #[serde(rename = "type")]
    pub kind: String,
    /// Width in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Height in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
}

/// Who operates or owns a location (OCPI `BusinessDetails`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BusinessDetails {
    /// The name.
    pub name: String,
    /// Its website.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    /// Its logo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<Image>,
}

/// Weekly opening hours of one day (OCPI `RegularHours`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RegularHours {
    /// 1 = Monday ... 7 = Sunday.
    pub weekday: u8,
    /// Opening time, "HH:MM".
    pub period_begin: String,
    /// Closing time, "HH:MM".
    pub period_end: String,
}

/// A period of exceptional opening or closing (OCPI `ExceptionalPeriod`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExceptionalPeriod {
    /// Start of the period.
    #[serde(with = "ocpi_time")]
    pub period_begin: DateTime<Utc>,
    /// End of the period.
    #[serde(with = "ocpi_time")]
    pub period_end: DateTime<Utc>,
}

/// When a location is open (OCPI `Hours`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Hours {
    /// Open around the clock.
    pub twentyfourseven: bool,
    /// Regular hours per weekday (when not 24/7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regular_hours: Option<Vec<RegularHours>>,
    /// Exceptional openings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exceptional_openings: Option<Vec<ExceptionalPeriod>>,
    /// Exceptional closings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exceptional_closings: Option<Vec<ExceptionalPeriod>>,
}

/// A connector of an EVSE (OCPI `Connector`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Connector {
    /// Connector id, unique within the EVSE.
    pub id: String,
    /// Plug standard.
    pub standard: ConnectorStandard,
    /// Socket or cable.
    pub format: ConnectorFormat,
    /// Supply type.
    pub power_type: PowerType,
    /// Maximum voltage in volts.
    pub max_voltage: i32,
    /// Maximum current in amperes.
    pub max_amperage: i32,
    /// Maximum power in watts, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_electric_power: Option<i32>,
    /// Tariffs that apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tariff_ids: Option<Vec<String>>,
    /// URL of the terms and conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms_and_conditions: Option<String>,
    /// When it last changed (set by voltgate).
    #[serde(
        default,
        with = "ocpi_time::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_updated: Option<DateTime<Utc>>,
}

impl Connector {
    /// Its power in watts: `max_electric_power`, else volts × amperes × phases.
    pub fn power_watts(&self) -> i64 {
        match self.max_electric_power {
            Some(watts) => i64::from(watts),
            None => {
                i64::from(self.max_voltage)
                    * i64::from(self.max_amperage)
                    * i64::from(self.power_type.phases())
            }
        }
    }
}

/// An EVSE at a location (OCPI `EVSE`), with voltgate's private link to the
/// OCPP station that serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Evse {
    /// Unique id of the EVSE within the operator's platform.
    pub uid: String,
    /// The EVSE id (eMI3), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evse_id: Option<String>,
    /// Its status; set by the station's StatusNotifications when linked.
    #[serde(default)]
    pub status: EvseStatus,
    /// What it can do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Vec<Capability>>,
    /// How a driver can pay at it (voltgate extra, seed 003).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_types: Option<Vec<String>>,
    /// Its connectors.
    pub connectors: Vec<Connector>,
    /// Floor level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_level: Option<String>,
    /// Where it is, when not at the location's coordinates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinates: Option<GeoLocation>,
    /// The number or name painted on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub physical_reference: Option<String>,
    /// Who may park there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parking_restrictions: Option<Vec<ParkingRestriction>>,
    /// Pictures of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<Image>>,
    /// Private: the charge station that is this EVSE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub station_id: Option<String>,
    /// Private: its OCPP 2.0.1 EVSE id on that station.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocpp_evse_id: Option<i32>,
    /// Private: its OCPP 1.6 connector id on that station.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocpp_connector_id: Option<i32>,
    /// When it last changed (set by voltgate).
    #[serde(
        default,
        with = "ocpi_time::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_updated: Option<DateTime<Utc>>,
}

fn published() -> bool {
    true
}

fn utc() -> String {
    "UTC".to_owned()
}

/// A charging location (OCPI 2.2.1 `Location`, plus `province`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Location {
    /// Location id (at most 36 characters).
    #[serde(default)]
    pub id: String,
    /// Country code of the operator.
    pub country_code: String,
    /// Party id of the operator.
    pub party_id: String,
    /// Whether drivers may see it.
    #[serde(default = "published")]
    pub publish: bool,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Street and number.
    pub address: String,
    /// City or town.
    pub city: String,
    /// Postal code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// State or province as OCPI has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Province or region, for search (seed 003; also read as `region`).
    #[serde(default, alias = "region", skip_serializing_if = "Option::is_none")]
    pub province: Option<String>,
    /// ISO 3166-1 alpha-3 country code.
    pub country: String,
    /// Where it is.
    pub coordinates: GeoLocation,
    /// Kind of parking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parking_type: Option<ParkingType>,
    /// Its EVSEs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evses: Option<Vec<Evse>>,
    /// Who operates it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<BusinessDetails>,
    /// Who owns it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<BusinessDetails>,
    /// What is around it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facilities: Option<Vec<Facility>>,
    /// IANA time zone, e.g. "Europe/Oslo".
    #[serde(default = "utc")]
    pub time_zone: String,
    /// When it is open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opening_times: Option<Hours>,
    /// Whether charging goes on when the location closes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charging_when_closed: Option<bool>,
    /// Pictures of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<Image>>,
    /// When the record last changed (set by voltgate; ignored on input).
    #[serde(
        default,
        with = "ocpi_time::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_updated: Option<DateTime<Utc>>,
}

impl Location {
    /// Its EVSEs (none when the list is absent).
    pub fn evses(&self) -> &[Evse] {
        self.evses.as_deref().unwrap_or_default()
    }
}

impl Location {
    /// The station links of its EVSEs.
    pub fn links(&self) -> Vec<(String, EvseLink)> {
        self.evses()
            .iter()
            .filter_map(|evse| {
                let station = evse.station_id.clone()?;
                Some((
                    station,
                    EvseLink {
                        location_id: self.id.clone(),
                        evse_uid: evse.uid.clone(),
                        ocpp_evse_id: evse.ocpp_evse_id,
                        ocpp_connector_id: evse.ocpp_connector_id,
                    },
                ))
            })
            .collect()
    }
}

/// Characters of the geohash cell a location is indexed under (about 5 m).
pub const CELL_CHARS: usize = 9;

/// The geohash alphabet, in order.
pub const GEOHASH_ALPHABET: &str = "0123456789bcdefghjkmnpqrstuvwxyz";

/// What the nearby search filters on, kept beside a location's place so a
/// search reads no location it does not return. Each list is the union
/// over the location's EVSEs and connectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaceSummary {
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
    /// City.
    pub city: String,
    /// Province, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub province: Option<String>,
    /// Facilities.
    #[serde(default)]
    pub facilities: Vec<Facility>,
    /// Parking type, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parking_type: Option<ParkingType>,
    /// EVSE capabilities.
    #[serde(default)]
    pub capabilities: Vec<Capability>,
    /// EVSE payment types.
    #[serde(default)]
    pub payment_types: Vec<String>,
    /// Connector standards.
    #[serde(default)]
    pub standards: Vec<ConnectorStandard>,
    /// Connector power types.
    #[serde(default)]
    pub power_types: Vec<PowerType>,
    /// The most powerful connector's power, in watts.
    #[serde(default)]
    pub max_power_w: i64,
    /// Some EVSE is AVAILABLE.
    #[serde(default)]
    pub available: bool,
}

fn union<T: PartialEq + Copy>(into: &mut Vec<T>, items: impl IntoIterator<Item = T>) {
    for item in items {
        if !into.contains(&item) {
            into.push(item);
        }
    }
}

impl Location {
    /// The geohash cell and search summary it is indexed under: None when
    /// it is not published (drivers never find it) or has no valid place.
    pub fn place(&self) -> Option<(String, PlaceSummary)> {
        if !self.publish {
            return None;
        }
        let (lat, lon) = self.coordinates.degrees()?;
        let cell = geohash::encode(geohash::Coord { x: lon, y: lat }, CELL_CHARS).ok()?;
        let mut summary = PlaceSummary {
            lat,
            lon,
            city: self.city.clone(),
            province: self.province.clone(),
            facilities: self.facilities.clone().unwrap_or_default(),
            parking_type: self.parking_type,
            capabilities: Vec::new(),
            payment_types: Vec::new(),
            standards: Vec::new(),
            power_types: Vec::new(),
            max_power_w: 0,
            available: false,
        };
        for evse in self.evses() {
            union(
                &mut summary.capabilities,
                evse.capabilities.iter().flatten().copied(),
            );
            for code in evse.payment_types.iter().flatten() {
                if !summary.payment_types.contains(code) {
                    summary.payment_types.push(code.clone());
                }
            }
            union(
                &mut summary.standards,
                evse.connectors.iter().map(|c| c.standard),
            );
            union(
                &mut summary.power_types,
                evse.connectors.iter().map(|c| c.power_type),
            );
            for connector in &evse.connectors {
                summary.max_power_w = summary.max_power_w.max(connector.power_watts());
            }
            summary.available |= evse.status == EvseStatus::Available;
        }
        Some((cell, summary))
    }
}

/// Mean Earth radius used for distances, in km.
const EARTH_RADIUS_KM: f64 = 6_371.008_8;

/// Great-circle (haversine) distance between two points, in km.
pub fn distance_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
}

/// A circle on the Earth: what a nearby search covers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Circle {
    /// Centre latitude in degrees.
    pub lat: f64,
    /// Centre longitude in degrees.
    pub lon: f64,
    /// Radius in km.
    pub radius_km: f64,
}

impl Circle {
    /// The distance of a point from the centre when it is inside, in km.
    pub fn distance_to(&self, lat: f64, lon: f64) -> Option<f64> {
        let d = distance_km(self.lat, self.lon, lat, lon);
        (d <= self.radius_km).then_some(d)
    }
}

impl Location {
    /// The (province key, city) it is listed under for the cities filter:
    /// published locations with a province (the key is lower case).
    pub fn province_city(&self) -> Option<(String, String)> {
        let province = self.province.as_deref()?.trim();
        (self.publish && !province.is_empty())
            .then(|| (province.to_lowercase(), self.city.trim().to_owned()))
    }
}

/// A location found by place: its id, distance and search summary.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaceEntry {
    /// The location.
    pub location_id: String,
    /// The geohash cell it was found in.
    pub cell: String,
    /// Its distance from the search's centre, in km.
    pub distance_km: f64,
    /// What the search filters on.
    pub summary: PlaceSummary,
}

/// An EVSE of a location that names a charge station (found by station).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvseLink {
    /// The location.
    pub location_id: String,
    /// The EVSE's uid in it.
    pub evse_uid: String,
    /// The station's OCPP 2.0.1 EVSE id it is, when named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocpp_evse_id: Option<i32>,
    /// The station's OCPP 1.6 connector id it is, when named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocpp_connector_id: Option<i32>,
}

/// A hardware template: an EVSE and connector layout a charge station can
/// be created from (a copy, not a link).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HardwareTemplate {
    /// Template id (at most 36 characters).
    #[serde(default)]
    pub id: String,
    /// What it is, e.g. a vendor and model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The EVSEs and connectors of the layout.
    pub evses: Vec<Evse>,
    /// When it last changed (set by voltgate).
    #[serde(
        default,
        with = "ocpi_time::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_updated: Option<DateTime<Utc>>,
}

/// A location as stored, with the entity tag of exactly that version.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredLocation {
    /// The record.
    pub location: Location,
    /// Changes whenever the record does (opaque; an HTTP ETag).
    pub etag: String,
}

/// What a conditional location write expects to find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Anything: the last write wins.
    Any,
    /// No location with this id (a create).
    Absent,
    /// The version with this entity tag.
    Etag(String),
}

impl Expect {
    /// Whether the stored version (its tag, None when absent) is the one expected.
    pub fn allows(&self, current: Option<&str>) -> bool {
        match self {
            Expect::Any => true,
            Expect::Absent => current.is_none(),
            Expect::Etag(tag) => current == Some(tag.as_str()),
        }
    }
}

/// How a conditional location write or delete ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocationWrite {
    /// Done; the new version's entity tag (empty after a delete).
    Written(String),
    /// Not done: the stored version is not the one expected. Its tag, or
    /// None when there is no such location.
    Conflict(Option<String>),
}

/// A window of locations ordered by `last_updated` (then id).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpdatedWindow {
    /// Only locations updated at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Only locations updated before this time.
    pub to: Option<DateTime<Utc>>,
    /// Seek: start after this (last_updated, id), where the previous page ended.
    pub after: Option<(DateTime<Utc>, String)>,
    /// Locations to skip after the seek point.
    pub offset: u64,
    /// Most locations returned.
    pub limit: u32,
    /// Only `publish: true` locations (what OCPI partners may see), from an
    /// index of their own so that paging and counts stay seeks.
    pub published_only: bool,
}

/// Milliseconds since the epoch of a `last_updated` (0 when absent or
/// before 1970): the key the stores order locations by.
pub fn updated_millis(at: Option<DateTime<Utc>>) -> u64 {
    at.map_or(0, |at| u64::try_from(at.timestamp_millis()).unwrap_or(0))
}

/// The entity tag of a stored record's bytes: base64url of the first 12
/// bytes of their SHA-256.
pub fn etag_of(bytes: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..12])
}

/// OCPI's DateTime: RFC 3339 in UTC with at most millisecond precision,
/// written `2026-12-01T10:00:00.123Z`; any RFC 3339 time is read.
pub mod ocpi_time {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Cuts a time to OCPI's millisecond precision.
    pub fn truncate(at: DateTime<Utc>) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at)
    }

    /// Writes a time as OCPI does.
    pub fn format(at: &DateTime<Utc>) -> String {
        truncate(*at).to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    /// Serializes as [`format`].
    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(at))
    }

    /// Reads any RFC 3339 time.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| truncate(t.with_timezone(&Utc)))
            .map_err(serde::de::Error::custom)
    }

    /// The same for optional fields.
    pub mod option {
        use super::*;

        /// Serializes as [`format`](super::format).
        pub fn serialize<S: Serializer>(
            at: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match at {
                Some(at) => super::serialize(at, s),
                None => s.serialize_none(),
            }
        }

        /// Reads any RFC 3339 time, or null.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|text| {
                    DateTime::parse_from_rfc3339(&text)
                        .map(|t| super::truncate(t.with_timezone(&Utc)))
                        .map_err(serde::de::Error::custom)
                })
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_maeve_record_reads_back_with_ocpi_defaults() {
        let old = json!({"id": "L1", "country_code": "NL", "party_id": "VGT",
            "address": "Main 1", "city": "Utrecht", "country": "NLD",
            "coordinates": {"latitude": "52.09", "longitude": "5.12"},
            "evses": [{"uid": "E1", "connectors": [{"id": "1", "standard": "IEC_62196_T2",
                "format": "SOCKET", "power_type": "AC_3_PHASE", "max_voltage": 230, "max_amperage": 16}]}],
            "last_updated": "2026-01-02T03:04:05.678912Z"});
        let location: Location = serde_json::from_value(old).unwrap();
        assert!(location.publish);
        assert_eq!(location.time_zone, "UTC");
        assert_eq!(location.evses()[0].status, EvseStatus::Unknown);
        let written = serde_json::to_value(&location).unwrap();
        assert_eq!(written["last_updated"], "2026-01-02T03:04:05.678Z");
        assert_eq!(
            location.evses()[0].connectors[0].power_watts(),
            230 * 16 * 3
        );
    }

    #[test]
    fn coordinates_out_of_range_have_no_degrees() {
        let at = |lat: &str, lon: &str| GeoLocation {
            latitude: lat.into(),
            longitude: lon.into(),
        };
        assert_eq!(at("52.5", "-1.25").degrees(), Some((52.5, -1.25)));
        assert_eq!(at("91", "0").degrees(), None);
        assert_eq!(at("x", "0").degrees(), None);
        assert_eq!(at("NaN", "0").degrees(), None);
    }

    #[test]
    fn etags_differ_when_bytes_do() {
        assert_eq!(etag_of(b"a"), etag_of(b"a"));
        assert_ne!(etag_of(b"a"), etag_of(b"b"));
        assert_eq!(etag_of(b"a").len(), 16);
    }
}
