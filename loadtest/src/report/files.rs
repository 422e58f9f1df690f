//! The latency distribution as files: `.hgrm` percentile text (`--hgrm`)
//! and an SVG percentile plot (`--plot`).

use std::fmt::Write as _;
use std::path::Path;

use hdrhistogram::Histogram;

use crate::Error;

/// HdrHistogram percentile distribution (`.hgrm`), values in milliseconds,
/// the same layout as HdrHistogram's `outputPercentileDistribution`.
pub fn hgrm(h: &Histogram<u64>) -> String {
    let scale = 1000.0; // recorded in µs, printed in ms
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    if !h.is_empty() {
        for v in h.iter_quantiles(5) {
            total += v.count_since_last_iteration();
            let p = v.quantile_iterated_to();
            let value = h.highest_equivalent(v.value_iterated_to()) as f64 / scale;
            if p < 1.0 {
                let _ = writeln!(
                    o,
                    "{value:>12.3} {p:>14.12} {total:>10} {:>14.2}",
                    1.0 / (1.0 - p)
                );
            } else {
                let _ = writeln!(o, "{value:>12.3} {p:>14.12} {total:>10}");
            }
        }
    }
    let (mean, sd, max) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (h.mean() / scale, h.stdev() / scale, h.max() as f64 / scale)
    };
    let _ = writeln!(o, "#[Mean    = {mean:>12.3}, StdDeviation   = {sd:>12.3}]");
    let _ = writeln!(
        o,
        "#[Max     = {max:>12.3}, Total count    = {:>12}]",
        h.len()
    );
    let _ = writeln!(
        o,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        h.buckets(),
        h.distinct_values()
    );
    o
}

/// Latency by percentile as SVG: x = 1/(1-p) on a log scale (labelled as
/// percentiles), y = latency in ms.
pub fn plot(h: &Histogram<u64>, title: &str, path: &Path) -> Result<(), Error> {
    use plotters::prelude::*;

    let mut points: Vec<(f64, f64)> = Vec::new();
    if !h.is_empty() {
        for v in h.iter_quantiles(5) {
            let p = v.quantile_iterated_to();
            if p >= 1.0 {
                continue;
            }
            let value = h.highest_equivalent(v.value_iterated_to()) as f64 / 1000.0;
            points.push((1.0 / (1.0 - p), value));
        }
    }
    let x_max = points
        .iter()
        .map(|p| p.0)
        .fold(10.0f64, f64::max)
        .max(h.len() as f64)
        .max(10.0);
    let y_max = points.iter().map(|p| p.1).fold(0.001f64, f64::max) * 1.1;
    let e = |e: &dyn std::fmt::Display| Error::msg(format!("plot {}: {e}", path.display()));

    let root = SVGBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d((1.0f64..x_max).log_scale(), 0.0f64..y_max)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .x_label_formatter(&|x| {
            let p = 100.0 * (1.0 - 1.0 / x);
            let s = format!("{p:.4}");
            let s = s.trim_end_matches('0').trim_end_matches('.');
            format!("{s}%")
        })
        .draw()
        .map_err(|x| e(&x))?;
    chart
        .draw_series(LineSeries::new(points, &BLUE))
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receiver::new_histogram;

    #[test]
    fn hgrm_has_the_standard_columns_and_footer() {
        let mut h = new_histogram();
        for v in 1..=1000u64 {
            h.record(v * 10).unwrap();
        }
        let text = hgrm(&h);
        let first = text.lines().next().unwrap();
        for col in ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"] {
            assert!(first.contains(col), "{first}");
        }
        assert!(text.contains("#[Mean    ="));
        assert!(text.contains("Total count    =         1000]"));
        // The last data row reaches percentile 1 and the total count.
        let last_row = text
            .lines()
            .rfind(|l| !l.starts_with('#') && !l.is_empty())
            .unwrap();
        assert!(last_row.contains("1.000000000000"), "{last_row}");
        assert!(last_row.contains("1000"), "{last_row}");
    }

    #[test]
    fn plot_writes_an_svg() {
        let mut h = new_histogram();
        for v in 1..=10_000u64 {
            h.record(v).unwrap();
        }
        let path = std::env::temp_dir().join(format!("lt-plot-{}.svg", std::process::id()));
        plot(&h, "test", &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
        let _ = std::fs::remove_file(&path);
    }
}
