//! The latency chart (SVG, plotters): on top the charted latency's p50 and
//! p99 per second of the measuring phase, below its percentile distribution
//! on a "number of nines" axis (0%, 90%, 99%, 99.9%, ...), where tails show.
//! With `--compare-reference` the reference run is drawn alongside.

use std::path::Path;

use anyhow::anyhow;
use plotters::prelude::*;

use crate::histogram::micros_to_ms;
use crate::report::Report;

/// Width and height of the SVG, pixels.
const SIZE: (u32, u32) = (1000, 800);
/// The distribution axis goes to 99.999%.
const NINES: f64 = 5.0;

/// One run's lines: (label prefix, p50 per second, p99 per second, distribution).
struct Lines {
    label: String,
    p50: Vec<(f64, f64)>,
    p99: Vec<(f64, f64)>,
    percentiles: Vec<(f64, f64)>,
}

fn lines(report: &Report) -> Lines {
    let points = |pick: fn(&crate::report::TimelinePoint) -> Option<f64>| {
        report
            .timeline
            .iter()
            .filter_map(|t| pick(t).map(|ms| (f64::from(t.second), ms)))
            .collect()
    };
    let histogram = report.distribution.to_histogram();
    let percentiles = if histogram.is_empty() {
        Vec::new()
    } else {
        (0..=(NINES * 100.0) as u32)
            .map(|step| {
                let nines = f64::from(step) / 100.0;
                let quantile = 1.0 - 10f64.powf(-nines);
                (nines, micros_to_ms(histogram.value_at_quantile(quantile)))
            })
            .collect()
    };
    Lines {
        label: report.target.clone(),
        p50: points(|t| t.p50_ms),
        p99: points(|t| t.p99_ms),
        percentiles,
    }
}

/// "99.9%" for 3 nines.
fn nines_label(nines: &f64) -> String {
    let percent = 100.0 * (1.0 - 10f64.powf(-nines));
    let text = format!("{percent:.5}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

fn max_y<'a>(series: impl Iterator<Item = &'a (f64, f64)>) -> f64 {
    series.map(|&(_, y)| y).fold(0.0, f64::max).max(0.001) * 1.1
}

/// Writes the chart of `report` (and its reference run) to `path`.
pub fn write_svg(path: &Path, report: &Report) -> anyhow::Result<()> {
    let mut runs = vec![lines(report)];
    if let Some(reference) = &report.reference {
        runs.push(lines(reference));
    }
    let what = report.timeline_of.replace('_', " ");
    let fail = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", path.display());

    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let (top, bottom) = root.split_vertically(SIZE.1 / 2);
    let colors = [(BLUE, RED), (GREEN, MAGENTA)];

    let seconds = runs
        .iter()
        .flat_map(|r| r.p99.iter().chain(&r.p50))
        .map(|&(x, _)| x)
        .fold(1.0, f64::max);
    let y_top = max_y(runs.iter().flat_map(|r| r.p99.iter().chain(&r.p50)));
    let mut chart = ChartBuilder::on(&top)
        .caption(
            format!("{} {what} per second (ms)", report.scenario.as_str()),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..seconds, 0.0..y_top)
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .x_desc("seconds since measuring began")
        .y_desc("ms")
        .draw()
        .map_err(|e| fail(&e))?;
    for (run, &(c50, c99)) in runs.iter().zip(&colors) {
        for (points, color, name) in [(&run.p50, c50, "p50"), (&run.p99, c99, "p99")] {
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(|e| fail(&e))?
                .label(format!("{} {name}", run.label))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(|e| fail(&e))?;

    let y_bottom = max_y(runs.iter().flat_map(|r| r.percentiles.iter()));
    let mut chart = ChartBuilder::on(&bottom)
        .caption(format!("{what} distribution (ms)"), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..NINES, 0.0..y_bottom)
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .x_labels(NINES as usize + 1)
        .x_label_formatter(&nines_label)
        .x_desc("percentile")
        .y_desc("ms")
        .draw()
        .map_err(|e| fail(&e))?;
    for (run, &(color, _)) in runs.iter().zip(&colors) {
        chart
            .draw_series(LineSeries::new(
                run.percentiles.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| fail(&e))?
            .label(run.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_distribution_axis_counts_nines() {
        let labels: Vec<String> = [0.0, 1.0, 2.0, 3.0, 4.0].iter().map(nines_label).collect();
        assert_eq!(labels, ["0%", "90%", "99%", "99.9%", "99.99%"]);
    }
}
