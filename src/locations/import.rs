//! CSV import of locations, one row per connector (location and EVSE
//! columns repeated), read as a stream: the bytes are parsed as they
//! arrive ([`Records`]), consecutive rows of one location make a group
//! ([`Grouper`]), and each group becomes one upsert of its location. Memory
//! holds one record, one group and the groups being written, whatever the
//! file's size. A bad row is reported with its line (the header is line 1)
//! and its location is not written, so nothing is half-written; other
//! locations go on.
//!
//! A group creates its location or updates it: the location's fields come
//! from the group's first row, the EVSEs named replace those of the same
//! uid (keeping their live status), the other EVSEs stay.

use std::collections::HashMap;

use crate::store::{Connector, Evse, EvseStatus, GeoLocation, Location};

/// Required columns, in no particular order.
pub const REQUIRED: [&str; 19] = [
    "location_id",
    "country_code",
    "party_id",
    "name",
    "address",
    "city",
    "postal_code",
    "country",
    "latitude",
    "longitude",
    "time_zone",
    "evse_uid",
    "evse_id",
    "connector_id",
    "standard",
    "format",
    "power_type",
    "max_voltage",
    "max_amperage",
];

/// Optional columns.
pub const OPTIONAL: [&str; 6] = [
    "province",
    "facilities",
    "max_electric_power",
    "station_id",
    "ocpp_evse_id",
    "ocpp_connector_id",
];

/// Longest record read, in bytes; a longer one is rejected.
const MAX_RECORD_BYTES: usize = 64 * 1024;

/// One CSV record: its first line and its fields (None: too long).
pub type Record = (u64, Option<Vec<Vec<u8>>>);

/// An incremental CSV parser: bytes in, whole records out.
pub struct Records {
    reader: csv_core::Reader,
    output: Vec<u8>,
    ends: Vec<usize>,
    written: usize,
    ended: usize,
    start_line: u64,
    oversized: bool,
}

impl Default for Records {
    fn default() -> Self {
        Records {
            reader: csv_core::Reader::new(),
            output: vec![0; 4096],
            ends: vec![0; 64],
            written: 0,
            ended: 0,
            start_line: 1,
            oversized: false,
        }
    }
}

impl Records {
    /// Parses `input` (empty: the end of the data), handing out each
    /// record completed.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<Record>) {
        let end_of_data = input.is_empty();
        loop {
            let (result, read, wrote, ended) = self.reader.read_record(
                input,
                &mut self.output[self.written..],
                &mut self.ends[self.ended..],
            );
            input = &input[read..];
            self.written += wrote;
            self.ended += ended;
            use csv_core::ReadRecordResult as R;
            match result {
                R::InputEmpty => {
                    if !end_of_data {
                        return;
                    }
                }
                R::OutputFull => {
                    if self.output.len() >= MAX_RECORD_BYTES {
                        // Too long: read on to its end, keeping nothing.
                        self.oversized = true;
                        self.written = 0;
                        self.ended = 0;
                    } else {
                        let bigger = self.output.len() * 2;
                        self.output.resize(bigger, 0);
                    }
                }
                R::OutputEndsFull => {
                    let more = self.ends.len() * 2;
                    self.ends.resize(more, 0);
                }
                R::Record => {
                    let fields = (!self.oversized).then(|| {
                        let mut start = 0;
                        self.ends[..self.ended]
                            .iter()
                            .map(|&end| {
                                let field = self.output[start..end].to_vec();
                                start = end;
                                field
                            })
                            .collect()
                    });
                    out.push((self.start_line, fields));
                    self.written = 0;
                    self.ended = 0;
                    self.oversized = false;
                    self.start_line = self.reader.line();
                }
                R::End => return,
            }
        }
    }
}

/// Where each column is.
#[derive(Debug, Clone)]
pub struct Header {
    index: HashMap<String, usize>,
    width: usize,
}

impl Header {
    /// Reads the header record; says which required column is missing or
    /// which column is unknown.
    pub fn read(fields: &[Vec<u8>]) -> Result<Header, String> {
        let mut index = HashMap::new();
        for (i, field) in fields.iter().enumerate() {
            let name = std::str::from_utf8(field)
                .map_err(|_| "the header is not UTF-8".to_owned())?
                .trim()
                .trim_start_matches('\u{feff}')
                .to_owned();
            if !REQUIRED.contains(&name.as_str()) && !OPTIONAL.contains(&name.as_str()) {
                return Err(format!("unknown column {name:?} in the header"));
            }
            if index.insert(name.clone(), i).is_some() {
                return Err(format!("column {name:?} appears twice in the header"));
            }
        }
        if let Some(missing) = REQUIRED.iter().find(|c| !index.contains_key(**c)) {
            return Err(format!("the header lacks the required column {missing:?}"));
        }
        Ok(Header {
            index,
            width: fields.len(),
        })
    }
}

/// One row, read.
#[derive(Debug, Clone)]
pub struct Row {
    /// Its line.
    pub line: u64,
    /// The location's fields (EVSEs empty).
    pub location: Location,
    /// The EVSE's fields (connectors empty).
    pub evse: Evse,
    /// The connector.
    pub connector: Connector,
}

fn text(fields: &[String], header: &Header, name: &str) -> Option<String> {
    let i = *header.index.get(name)?;
    let value = fields.get(i)?.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

fn required(fields: &[String], header: &Header, name: &str) -> Result<String, String> {
    text(fields, header, name).ok_or_else(|| format!("{name} is empty"))
}

fn enumerated<T: serde::de::DeserializeOwned>(value: &str, name: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(value.to_owned()))
        .map_err(|_| format!("{name} {value:?} is not a valid value"))
}

fn number<T: std::str::FromStr>(value: &str, name: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{name} {value:?} is not a whole number"))
}

impl Row {
    /// Reads one record against the header.
    pub fn read(line: u64, fields: &[Vec<u8>], header: &Header) -> Result<Row, String> {
        if fields.len() != header.width {
            return Err(format!(
                "has {} columns, the header has {}",
                fields.len(),
                header.width
            ));
        }
        let fields: Vec<String> = fields
            .iter()
            .map(|f| String::from_utf8(f.clone()))
            .collect::<Result<_, _>>()
            .map_err(|_| "is not UTF-8".to_owned())?;
        let f = |name: &str| text(&fields, header, name);
        let r = |name: &str| required(&fields, header, name);
        let optional_number = |name: &str| -> Result<Option<i32>, String> {
            f(name).map(|v| number(&v, name)).transpose()
        };
        let location = Location {
            id: r("location_id")?,
            country_code: r("country_code")?,
            party_id: r("party_id")?,
            publish: true,
            name: f("name"),
            address: r("address")?,
            city: r("city")?,
            postal_code: f("postal_code"),
            state: None,
            province: f("province"),
            country: r("country")?,
            coordinates: GeoLocation {
                latitude: r("latitude")?,
                longitude: r("longitude")?,
            },
            parking_type: None,
            evses: None,
            operator: None,
            owner: None,
            facilities: f("facilities")
                .map(|list| {
                    list.split('|')
                        .map(|v| enumerated(v.trim(), "facilities"))
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?,
            time_zone: r("time_zone")?,
            opening_times: None,
            charging_when_closed: None,
            images: None,
            last_updated: None,
        };
        let evse = Evse {
            uid: r("evse_uid")?,
            evse_id: f("evse_id"),
            status: EvseStatus::Unknown,
            capabilities: None,
            payment_types: None,
            connectors: Vec::new(),
            floor_level: None,
            coordinates: None,
            physical_reference: None,
            parking_restrictions: None,
            images: None,
            station_id: f("station_id"),
            ocpp_evse_id: optional_number("ocpp_evse_id")?,
            ocpp_connector_id: optional_number("ocpp_connector_id")?,
            last_updated: None,
        };
        let connector = Connector {
            id: r("connector_id")?,
            standard: enumerated(&r("standard")?, "standard")?,
            format: enumerated(&r("format")?, "format")?,
            power_type: enumerated(&r("power_type")?, "power_type")?,
            max_voltage: number(&r("max_voltage")?, "max_voltage")?,
            max_amperage: number(&r("max_amperage")?, "max_amperage")?,
            max_electric_power: optional_number("max_electric_power")?,
            tariff_ids: None,
            terms_and_conditions: None,
            last_updated: None,
        };
        Ok(Row {
            line,
            location,
            evse,
            connector,
        })
    }
}

/// The rows of one location, consecutive in the file.
#[derive(Debug, Clone)]
pub struct Group {
    /// The location's fields and the EVSEs with their connectors, in the
    /// order of the file.
    pub location: Location,
    /// The first line of the group.
    pub line: u64,
    /// Rows of the group that could not be read: (line, reason).
    pub bad: Vec<(u64, String)>,
}

/// Collects consecutive rows into groups.
#[derive(Debug, Default)]
pub struct Grouper {
    current: Option<Group>,
}

impl Grouper {
    /// Adds a row (or the reason it could not be read, with the location id
    /// when it was readable); returns the group it closed, if any.
    pub fn push(&mut self, line: u64, row: Result<Row, (Option<String>, String)>) -> Option<Group> {
        let id = match &row {
            Ok(row) => Some(row.location.id.clone()),
            Err((id, _)) => id.clone(),
        };
        let same = match (&self.current, &id) {
            (Some(group), Some(id)) => group.location.id == *id,
            // A row without a readable id belongs to the group it is in.
            (Some(_), None) => true,
            (None, _) => false,
        };
        let closed = if same { None } else { self.current.take() };
        let group = self.current.get_or_insert_with(|| Group {
            location: Location {
                id: id.clone().unwrap_or_default(),
                ..placeholder()
            },
            line,
            bad: Vec::new(),
        });
        match row {
            Err((_, reason)) => group.bad.push((line, reason)),
            Ok(row) => {
                if group.location.evses.is_none() {
                    // The first row gives the location's fields.
                    group.location = Location {
                        evses: Some(Vec::new()),
                        ..row.location
                    };
                }
                let evses = group.location.evses.get_or_insert_with(Vec::new);
                match evses.iter_mut().find(|e| e.uid == row.evse.uid) {
                    Some(evse) => evse.connectors.push(row.connector),
                    None => evses.push(Evse {
                        connectors: vec![row.connector],
                        ..row.evse
                    }),
                }
            }
        }
        closed
    }

    /// The last group, at the end of the file.
    pub fn finish(&mut self) -> Option<Group> {
        self.current.take()
    }
}

/// An empty location to fill.
fn placeholder() -> Location {
    Location {
        id: String::new(),
        country_code: String::new(),
        party_id: String::new(),
        publish: true,
        name: None,
        address: String::new(),
        city: String::new(),
        postal_code: None,
        state: None,
        province: None,
        country: String::new(),
        coordinates: GeoLocation {
            latitude: String::new(),
            longitude: String::new(),
        },
        parking_type: None,
        evses: None,
        operator: None,
        owner: None,
        facilities: None,
        time_zone: String::new(),
        opening_times: None,
        charging_when_closed: None,
        images: None,
        last_updated: None,
    }
}

/// The location id of a record that could not be read whole.
pub fn id_of(fields: &[Vec<u8>], header: &Header) -> Option<String> {
    let i = *header.index.get("location_id")?;
    let id = std::str::from_utf8(fields.get(i)?).ok()?.trim();
    (!id.is_empty()).then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "location_id,country_code,party_id,name,address,city,postal_code,country,latitude,longitude,time_zone,evse_uid,evse_id,connector_id,standard,format,power_type,max_voltage,max_amperage,facilities";

    fn records(data: &[u8], chunk: usize) -> Vec<Record> {
        let mut parser = Records::default();
        let mut out = Vec::new();
        for piece in data.chunks(chunk) {
            parser.feed(piece, &mut out);
        }
        parser.feed(&[], &mut out);
        out
    }

    #[test]
    fn records_come_whole_whatever_the_chunks() {
        let data = format!("{HEADER}\nL1,NL,VGT,\"Depot, north\",Main 1,Utrecht,,NLD,52.1,5.1,UTC,E1,,1,IEC_62196_T2,SOCKET,AC_3_PHASE,230,16,WIFI|CAFE\n");
        for chunk in [1, 7, 4096] {
            let out = records(data.as_bytes(), chunk);
            assert_eq!(out.len(), 2, "chunk {chunk}");
            assert_eq!(out[1].0, 2, "the second record is line 2");
            let fields = out[1].1.as_ref().unwrap();
            assert_eq!(fields[3], b"Depot, north");
            assert_eq!(fields.len(), 20);
        }
        let long = format!("{HEADER}\n{}\nL2\n", "x".repeat(MAX_RECORD_BYTES + 10));
        let out = records(long.as_bytes(), 1000);
        assert_eq!(out.len(), 3);
        assert!(out[1].1.is_none(), "too long");
        assert_eq!(
            out[2].1.as_ref().unwrap()[0],
            b"L2",
            "the next record reads on"
        );
    }

    #[test]
    fn rows_group_by_location_and_evse() {
        let data = format!(
            "{HEADER}\n\
             L1,NL,VGT,A,Main 1,Utrecht,,NLD,52.1,5.1,UTC,E1,,1,IEC_62196_T2,SOCKET,AC_3_PHASE,230,16,WIFI\n\
             L1,NL,VGT,A,Main 1,Utrecht,,NLD,52.1,5.1,UTC,E1,,2,CHADEMO,CABLE,DC,500,100,\n\
             L1,NL,VGT,A,Main 1,Utrecht,,NLD,52.1,5.1,UTC,E2,,1,IEC_62196_T2,SOCKET,AC_3_PHASE,230,16,\n\
             L2,NL,VGT,B,Main 2,Utrecht,,NLD,52.2,5.2,UTC,E1,,1,SCHUKO,SOCKET,AC_1_PHASE,230,16,\n\
             L3,NL,VGT,C,Main 3,Utrecht,,NLD,52.3,5.3,UTC,E1,,1,IEC_62196_T2,SOCKET,AC_3_PHASE,230\n"
        );
        let out = records(data.as_bytes(), 64);
        let header = Header::read(out[0].1.as_ref().unwrap()).unwrap();
        let mut grouper = Grouper::default();
        let mut groups = Vec::new();
        for (line, fields) in &out[1..] {
            let fields = fields.as_ref().unwrap();
            let row = Row::read(*line, fields, &header).map_err(|e| (id_of(fields, &header), e));
            groups.extend(grouper.push(*line, row));
        }
        groups.extend(grouper.finish());
        assert_eq!(groups.len(), 3);
        let l1 = &groups[0].location;
        assert_eq!(l1.evses().len(), 2);
        assert_eq!(l1.evses()[0].connectors.len(), 2);
        assert_eq!(l1.facilities.as_ref().unwrap().len(), 1);
        assert!(groups[0].bad.is_empty());
        assert_eq!(groups[1].bad.len(), 1);
        assert_eq!(groups[1].bad[0].0, 5);
        assert!(
            groups[1].bad[0].1.contains("standard"),
            "{:?}",
            groups[1].bad
        );
        assert!(
            groups[2].bad[0].1.contains("columns"),
            "{:?}",
            groups[2].bad
        );
    }

    #[test]
    fn a_header_must_name_the_required_columns_only_once() {
        let read = |h: &str| {
            Header::read(
                &h.split(',')
                    .map(|f| f.as_bytes().to_vec())
                    .collect::<Vec<_>>(),
            )
        };
        assert!(read(HEADER).is_ok());
        assert!(read("location_id,country_code")
            .unwrap_err()
            .contains("party_id"));
        assert!(read(&format!("{HEADER},colour"))
            .unwrap_err()
            .contains("colour"));
        assert!(read(&format!("{HEADER},city"))
            .unwrap_err()
            .contains("twice"));
    }
}
