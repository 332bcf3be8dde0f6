//! Text format writer, as Go's `expfmt.MetricFamilyToText`.

use crate::float::push_float;
use crate::{MetricFamily, MetricValue};

/// Writes all families in the given order (no sorting, no merging).
pub fn write_text(families: &[MetricFamily]) -> String {
    let mut out = String::new();
    for f in families {
        write_family(&mut out, f);
    }
    out
}

/// Appends one family: `# HELP` (when set), `# TYPE`, then every metric. A family
/// without metrics writes nothing (Go refuses to write it).
pub fn write_family(out: &mut String, f: &MetricFamily) {
    if f.metrics.is_empty() {
        return;
    }
    write_header(out, f);
    let mut labels: Vec<(&str, &str)> = Vec::new();
    for m in &f.metrics {
        labels.clear();
        labels.extend(m.labels.iter());
        write_metric(out, &f.name, &labels, &m.value, m.timestamp_ms);
    }
}

/// The `# HELP` and `# TYPE` lines of a family.
pub fn write_header(out: &mut String, f: &MetricFamily) {
    if let Some(help) = &f.help {
        out.push_str("# HELP ");
        out.push_str(&f.name);
        out.push(' ');
        escape_help_into(out, help);
        out.push('\n');
    }
    out.push_str("# TYPE ");
    out.push_str(&f.name);
    out.push(' ');
    out.push_str(f.kind.as_str());
    out.push('\n');
}

/// Appends the sample lines of one metric of family `name` with the given label pairs
/// (written in the given order; empty values are written, e.g. `instance=""`).
/// Summaries write quantiles, `_sum`, `_count`; histograms write buckets (plus a
/// `+Inf` bucket when absent), `_sum`, `_count`, as the Go writer.
pub fn write_metric(
    out: &mut String,
    name: &str,
    labels: &[(&str, &str)],
    value: &MetricValue,
    ts: Option<i64>,
) {
    match value {
        MetricValue::Counter(v) | MetricValue::Gauge(v) | MetricValue::Untyped(v) => {
            sample(out, name, "", labels, None, *v, ts);
        }
        MetricValue::Summary {
            quantiles,
            sum,
            count,
        } => {
            for (q, v) in quantiles {
                sample(out, name, "", labels, Some(("quantile", *q)), *v, ts);
            }
            sample(out, name, "_sum", labels, None, *sum, ts);
            sample(out, name, "_count", labels, None, *count, ts);
        }
        MetricValue::Histogram {
            buckets,
            sum,
            count,
        } => {
            let mut inf_seen = false;
            for (le, c) in buckets {
                sample(out, name, "_bucket", labels, Some(("le", *le)), *c, ts);
                if *le == f64::INFINITY {
                    inf_seen = true;
                }
            }
            if !inf_seen {
                sample(
                    out,
                    name,
                    "_bucket",
                    labels,
                    Some(("le", f64::INFINITY)),
                    *count,
                    ts,
                );
            }
            sample(out, name, "_sum", labels, None, *sum, ts);
            sample(out, name, "_count", labels, None, *count, ts);
        }
    }
}

fn sample(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &[(&str, &str)],
    extra: Option<(&str, f64)>,
    v: f64,
    ts: Option<i64>,
) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() || extra.is_some() {
        out.push('{');
        let mut sep = "";
        for (k, val) in labels {
            out.push_str(sep);
            out.push_str(k);
            out.push_str("=\"");
            escape_label_value_into(out, val);
            out.push('"');
            sep = ",";
        }
        if let Some((k, f)) = extra {
            out.push_str(sep);
            out.push_str(k);
            out.push_str("=\"");
            push_float(out, f);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    // Counts (uint64 in the protobuf model) go through float64 too, as in Go.
    push_float(out, v);
    if let Some(t) = ts {
        out.push(' ');
        out.push_str(&t.to_string());
    }
    out.push('\n');
}

/// HELP escaping: `\` → `\\`, newline → `\n`.
pub fn escape_help(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_help_into(&mut out, s);
    out
}

fn escape_help_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Label value escaping: `\` → `\\`, `"` → `\"`, newline → `\n`.
pub fn escape_label_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_label_value_into(&mut out, s);
    out
}

fn escape_label_value_into(out: &mut String, s: &str) {
    if !s.contains(['\\', '"', '\n']) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}
