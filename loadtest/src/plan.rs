//! Who is who in a fleet: station ids, which stations speak 2.0.1, and how
//! the fleet is cut into processes. Deterministic, so the parent (which
//! provisions) and every worker (which connects) agree without talking.

use serde::{Deserialize, Serialize};

use crate::station::Version;

/// The id of station `index`: the prefix and a zero-padded number.
pub fn station_id(prefix: &str, index: u32) -> String {
    format!("{prefix}{index:06}")
}

/// The version of station `index` when `share` of the fleet speaks 2.0.1:
/// the 2.0.1 stations are spread evenly, and any prefix of the fleet has the
/// share rounded down.
pub fn version_of(index: u32, share: f64) -> Version {
    let before = (f64::from(index) * share).floor();
    let after = (f64::from(index + 1) * share).floor();
    if after > before {
        Version::V201
    } else {
        Version::V16
    }
}

/// A contiguous range of stations run by one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slice {
    /// Global index of its first station.
    pub first: u32,
    /// How many stations.
    pub count: u32,
}

/// Cuts `stations` into as few processes as `per_process` allows, of
/// nearly equal size.
pub fn split(stations: u32, per_process: u32) -> Vec<Slice> {
    let per_process = per_process.max(1);
    let parts = stations.div_ceil(per_process).max(1);
    let base = stations / parts;
    let extra = stations % parts;
    let mut first = 0;
    (0..parts)
        .map(|part| {
            let count = base + u32::from(part < extra);
            let slice = Slice { first, count };
            first += count;
            slice
        })
        .collect()
}

/// `total` scaled to the share of the fleet a slice of `count` stations is.
pub fn share_of(total: f64, count: u32, stations: u32) -> f64 {
    if stations == 0 {
        0.0
    } else {
        total * f64::from(count) / f64::from(stations)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_padded() {
        assert_eq!(station_id("LT", 42), "LT000042");
        assert_eq!(station_id("X", 1_234_567), "X1234567");
    }

    #[test]
    fn the_v201_share_is_spread_evenly() {
        let versions: Vec<_> = (0..8).map(|i| version_of(i, 0.25)).collect();
        let v201 = versions.iter().filter(|&&v| v == Version::V201).count();
        assert_eq!(v201, 2);
        assert_eq!(versions[3], Version::V201);
        assert_eq!(versions[7], Version::V201);
        assert!((0..100).all(|i| version_of(i, 0.0) == Version::V16));
        assert!((0..100).all(|i| version_of(i, 1.0) == Version::V201));
        let half = (0..1000)
            .filter(|&i| version_of(i, 0.5) == Version::V201)
            .count();
        assert_eq!(half, 500);
    }

    #[test]
    fn split_uses_few_nearly_equal_processes() {
        assert_eq!(
            split(10, 15_000),
            [Slice {
                first: 0,
                count: 10
            }]
        );
        assert_eq!(
            split(19_000, 15_000),
            [
                Slice {
                    first: 0,
                    count: 9_500
                },
                Slice {
                    first: 9_500,
                    count: 9_500
                }
            ]
        );
        let parts = split(7, 3);
        assert_eq!(parts.iter().map(|s| s.count).collect::<Vec<_>>(), [3, 2, 2]);
        assert_eq!(parts[2].first, 5);
        assert_eq!(split(0, 10), [Slice { first: 0, count: 0 }]);
    }

    #[test]
    fn rates_are_shared_by_station_count() {
        assert_eq!(share_of(5000.0, 2500, 10_000), 1250.0);
        assert_eq!(share_of(5000.0, 0, 0), 0.0);
    }
}
