//! Latency histograms: the one HdrHistogram shape every recorder uses, a
//! sparse serializable form so worker processes can ship exact histograms
//! to the parent, and the percentile summary the report prints.
//!
//! Values are microseconds. The sparse form lists each non-empty bucket as
//! `(highest equivalent value, count)`; recording those pairs into a fresh
//! histogram of the same shape lands every count in the bucket it came from,
//! so merging across processes loses nothing.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Largest latency kept apart from the rest: one hour, in microseconds.
/// Longer values saturate into the top bucket.
const MAX_MICROS: u64 = 3_600_000_000;
/// Three significant digits: 0.1% resolution at any magnitude.
const SIGNIFICANT_DIGITS: u8 = 3;

/// A fresh, empty histogram of the shape used everywhere (µs, 1 µs..1 h).
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, SIGNIFICANT_DIGITS)
        .expect("constant histogram bounds are valid")
}

/// A histogram as non-empty buckets: `(value µs, count)` pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistogramData(pub Vec<(u64, u64)>);

impl HistogramData {
    /// The non-empty buckets of `histogram`.
    pub fn of(histogram: &Histogram<u64>) -> Self {
        HistogramData(
            histogram
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect(),
        )
    }

    /// Adds these counts to `into` (same shape, so the buckets line up).
    pub fn add_to(&self, into: &mut Histogram<u64>) {
        for &(value, count) in &self.0 {
            into.saturating_record_n(value, count);
        }
    }

    /// Back to a full histogram.
    pub fn to_histogram(&self) -> Histogram<u64> {
        let mut histogram = new_histogram();
        self.add_to(&mut histogram);
        histogram
    }

    /// Merges `other` into `self`.
    pub fn merge(&mut self, other: &HistogramData) {
        let mut histogram = self.to_histogram();
        other.add_to(&mut histogram);
        *self = HistogramData::of(&histogram);
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.0.iter().map(|&(_, count)| count).sum()
    }
}

/// The latency summary the report shows, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p99_9: f64,
    /// Largest value.
    pub max: f64,
}

impl Percentiles {
    /// The summary of `histogram`, or `None` when nothing was recorded.
    pub fn of(histogram: &Histogram<u64>) -> Option<Self> {
        if histogram.is_empty() {
            return None;
        }
        let ms = |quantile: f64| micros_to_ms(histogram.value_at_quantile(quantile));
        Some(Percentiles {
            count: histogram.len(),
            mean: histogram.mean() / 1000.0,
            p50: ms(0.5),
            p90: ms(0.9),
            p99: ms(0.99),
            p99_9: ms(0.999),
            max: micros_to_ms(histogram.max()),
        })
    }
}

/// Microseconds as fractional milliseconds.
pub fn micros_to_ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

/// Microseconds of `duration`, at least 1 (the histogram's lowest value).
pub fn micros(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram_of(values: impl IntoIterator<Item = u64>) -> Histogram<u64> {
        let mut h = new_histogram();
        for v in values {
            h.record(v).unwrap();
        }
        h
    }

    #[test]
    fn percentiles_of_one_to_a_thousand_ms() {
        let h = histogram_of((1..=1000).map(|ms| ms * 1000));
        let p = Percentiles::of(&h).unwrap();
        assert_eq!(p.count, 1000);
        // Three significant digits: within 0.1% of the exact order statistic.
        for (got, exact) in [
            (p.p50, 500.0),
            (p.p90, 900.0),
            (p.p99, 990.0),
            (p.p99_9, 999.0),
            (p.max, 1000.0),
        ] {
            assert!((got - exact).abs() <= exact * 0.001, "{got} vs {exact}");
        }
        assert!((p.mean - 500.5).abs() < 0.5, "{}", p.mean);
    }

    #[test]
    fn nothing_recorded_has_no_percentiles() {
        assert_eq!(Percentiles::of(&new_histogram()), None);
    }

    #[test]
    fn sparse_form_round_trips_exactly() {
        let h = histogram_of([1, 2, 3, 1500, 1501, 250_000, 7_000_000, 7_000_000]);
        let data = HistogramData::of(&h);
        assert_eq!(data.count(), 8);
        let back = data.to_histogram();
        assert_eq!(back, h, "every count lands in the bucket it came from");
        let json = serde_json::to_string(&data).unwrap();
        assert_eq!(serde_json::from_str::<HistogramData>(&json).unwrap(), data);
    }

    #[test]
    fn merging_parts_equals_recording_everything_in_one() {
        // Two workers see different halves of the same traffic.
        let slow: Vec<u64> = (0..100).map(|i| 10_000 + i * 977).collect();
        let fast: Vec<u64> = (0..900).map(|i| 100 + i * 3).collect();
        let mut merged = HistogramData::of(&histogram_of(slow.iter().copied()));
        merged.merge(&HistogramData::of(&histogram_of(fast.iter().copied())));
        let together = histogram_of(slow.iter().chain(&fast).copied());
        assert_eq!(merged.to_histogram(), together);
        let p = Percentiles::of(&merged.to_histogram()).unwrap();
        assert_eq!(p.count, 1000);
        // The slowest tenth comes from one worker only: p90 sits at the fast
        // worker's top, p99 inside the slow worker's range.
        assert!(p.p90 < 3.0 && p.p99 > 10.0, "{p:?}");
    }

    #[test]
    fn huge_values_saturate_instead_of_failing() {
        let mut h = new_histogram();
        h.saturating_record(u64::MAX);
        assert_eq!(h.len(), 1);
        assert!(h.max() >= MAX_MICROS);
    }
}
