//! Flattening a family into the samples Prometheus ingests from a scrape.

use crate::float::format_float;
use crate::{Labels, MetricFamily, MetricValue};

/// Every sample of the family as `(labels with __name__, value)`, exactly as a
/// Prometheus scrape of [`crate::write_text`]'s output would ingest it: counters,
/// gauges and untyped as `name`; summaries as `name{quantile=..}`, `name_sum`,
/// `name_count`; histograms as `name_bucket{le=..}` (plus `le="+Inf"` when absent),
/// `name_sum`, `name_count`. `le`/`quantile` values are formatted as the Go writer
/// prints them (`0.1`, `1e+06`, `+Inf`).
pub fn series(f: &MetricFamily) -> Vec<(Labels, f64)> {
    let mut out = Vec::new();
    for m in &f.metrics {
        let named = |suffix: &str| {
            m.labels
                .clone()
                .with("__name__", &format!("{}{}", f.name, suffix))
        };
        match &m.value {
            MetricValue::Counter(v) | MetricValue::Gauge(v) | MetricValue::Untyped(v) => {
                out.push((named(""), *v));
            }
            MetricValue::Summary {
                quantiles,
                sum,
                count,
            } => {
                for (q, v) in quantiles {
                    out.push((named("").with("quantile", &format_float(*q)), *v));
                }
                out.push((named("_sum"), *sum));
                out.push((named("_count"), *count));
            }
            MetricValue::Histogram {
                buckets,
                sum,
                count,
            } => {
                for (le, c) in buckets {
                    out.push((named("_bucket").with("le", &format_float(*le)), *c));
                }
                if !buckets.iter().any(|(le, _)| *le == f64::INFINITY) {
                    out.push((named("_bucket").with("le", "+Inf"), *count));
                }
                out.push((named("_sum"), *sum));
                out.push((named("_count"), *count));
            }
        }
    }
    out
}
