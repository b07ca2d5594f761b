//! `strata bench --plot FILE.svg`: throughput bars and latency
//! distributions, side by side.

use std::path::Path;

use plotters::prelude::*;

use super::BenchReport;
use crate::error::{Result, StrataError};

const FONT: &str = "sans-serif";
const COLORS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
];

/// Write the chart of `report` to `path` (SVG).
pub fn write_svg(report: &BenchReport, path: &Path) -> Result<()> {
    draw(report, path).map_err(|e| StrataError::Usage(format!("plot {}: {e}", path.display())))
}

fn draw(r: &BenchReport, path: &Path) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (1280, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!(
        "strata bench: {}, {} cores, {} build",
        r.workload, r.machine.cores, r.machine.profile
    );
    let root = root.titled(&title, (FONT, 22))?;
    let (left, right) = root.split_horizontally(600);

    // Throughput: medians as bars, min–max as a line through each.
    let mut bars: Vec<(String, f64, f64, f64)> = r
        .ingest
        .iter()
        .map(|i| {
            let s = &i.events_per_s;
            (format!("ingest {}", i.format), s.median, s.min, s.max)
        })
        .collect();
    let per_s = |s: f64| r.history_events as f64 / s;
    let b = &r.batch_seconds;
    bars.push((
        "batch (every view)".into(),
        per_s(b.median),
        per_s(b.max),
        per_s(b.min),
    ));
    let k = &r.replay_events_per_s;
    bars.push(("kappa replay".into(), k.median, k.min, k.max));
    let top = bars.iter().map(|b| b.3).fold(1.0, f64::max) / 1e6 * 1.1;
    let n = bars.len() as u32;
    let mut chart = ChartBuilder::on(&left)
        .caption(
            "throughput, million events/s (bar: median; line: min–max)",
            (FONT, 16),
        )
        .margin(16)
        .x_label_area_size(36)
        .y_label_area_size(150)
        .build_cartesian_2d(0.0..top, (0..n - 1).into_segmented())?;
    let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    let label = |v: &SegmentValue<u32>| match v {
        SegmentValue::CenterOf(row) => labels
            .get((n - 1 - row) as usize)
            .cloned()
            .unwrap_or_default(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(TRANSPARENT)
        .y_label_formatter(&label)
        .x_desc("million events/s")
        .label_style((FONT, 14))
        .draw()?;
    for (i, (_, median, min, max)) in bars.iter().enumerate() {
        let i = i as u32;
        // The first bar on top.
        let row = n - 1 - i;
        let color = COLORS[i as usize % COLORS.len()];
        let mut bar = Rectangle::new(
            [
                (0.0, SegmentValue::Exact(row)),
                (median / 1e6, SegmentValue::Exact(row + 1)),
            ],
            color.mix(0.8).filled(),
        );
        bar.set_margin(12, 12, 0, 0);
        chart.draw_series([bar])?;
        chart.draw_series([PathElement::new(
            vec![
                (min / 1e6, SegmentValue::CenterOf(row)),
                (max / 1e6, SegmentValue::CenterOf(row)),
            ],
            BLACK.stroke_width(2),
        )])?;
        chart.draw_series([Text::new(
            format!("{:.2}", median / 1e6),
            (median / 1e6, SegmentValue::CenterOf(row)),
            (FONT, 13),
        )])?;
    }

    // Latency: each distribution as a cumulative curve on a log axis.
    let series = [
        ("served query, batch only", &r.served_batch_only),
        ("served query, batch ∪ speed", &r.served_with_speed),
        ("freshness: append → served", &r.freshness),
        ("kappa checkpoint pause", &r.checkpoint_pause),
    ];
    let all = series
        .iter()
        .flat_map(|(_, l)| l.samples_ms.iter().copied());
    let (lo, hi) = all.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo <= hi {
        ((lo * 0.8).max(0.01), hi * 1.25)
    } else {
        (0.1, 10.0)
    };
    let mut chart = ChartBuilder::on(&right)
        .caption("latency distribution (share of samples ≤ x)", (FONT, 16))
        .margin(16)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d((lo..hi).log_scale(), 0.0..100.0)?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .x_labels(8)
        .x_label_formatter(&|v| format!("{v}"))
        .x_desc("milliseconds (log scale)")
        .y_desc("% of samples")
        .label_style((FONT, 14))
        .draw()?;
    for (i, (name, l)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let n = l.samples_ms.len().max(1) as f64;
        let points = l
            .samples_ms
            .iter()
            .enumerate()
            .map(|(j, v)| (*v, 100.0 * (j + 1) as f64 / n));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(format!(
                "{name}: p50 {:.1} ms, p99 {:.1} ms",
                l.p50_ms, l.p99_ms
            ))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
