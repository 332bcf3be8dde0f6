//! argus-expfmt: the Prometheus exposition formats, pure (no I/O).
//!
//! - [`parse_text`]: text format 0.0.4, a faithful port of the Go `expfmt.TextParser`
//!   state machine (same accepted inputs, same rejections, same error messages and
//!   line numbers).
//! - [`write_text`]: the Go `expfmt.MetricFamilyToText` writer (HELP/TYPE, escaping,
//!   `strconv.FormatFloat(f, 'g', -1, 64)` numbers).
//! - [`decode_delimited`] / [`encode_delimited`]: varint length-delimited
//!   `io.prometheus.client.MetricFamily` protobuf messages, as client_golang pushes them.
//! - [`series`]: flattens a family to the samples Prometheus ingests from a scrape.

mod float;
pub mod proto;
mod series;
mod text_parse;
mod text_write;

pub use argus_model::Labels;
pub use float::{format_float, format_g, parse_float};
pub use proto::{decode_delimited, encode_delimited, DecodeError};
pub use series::series;
pub use text_parse::{parse_text, parse_text_bytes, ParseError};
pub use text_write::{
    escape_help, escape_label_value, write_family, write_header, write_metric, write_text,
};

/// The type of a metric family (the protobuf `MetricType` values, minus the
/// experimental gauge histogram).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetricType {
    Counter,
    Gauge,
    Summary,
    Untyped,
    Histogram,
}

impl MetricType {
    /// The lowercase name used on `# TYPE` lines.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Summary => "summary",
            MetricType::Untyped => "untyped",
            MetricType::Histogram => "histogram",
        }
    }

    /// The upper-case protobuf enum name (`GAUGE`), as Go prints a `dto.MetricType`.
    pub fn proto_name(self) -> &'static str {
        match self {
            MetricType::Counter => "COUNTER",
            MetricType::Gauge => "GAUGE",
            MetricType::Summary => "SUMMARY",
            MetricType::Untyped => "UNTYPED",
            MetricType::Histogram => "HISTOGRAM",
        }
    }

    /// Protobuf enum number.
    pub fn proto_value(self) -> i32 {
        match self {
            MetricType::Counter => 0,
            MetricType::Gauge => 1,
            MetricType::Summary => 2,
            MetricType::Untyped => 3,
            MetricType::Histogram => 4,
        }
    }

    pub fn from_proto_value(v: i32) -> Option<MetricType> {
        Some(match v {
            0 => MetricType::Counter,
            1 => MetricType::Gauge,
            2 => MetricType::Summary,
            3 => MetricType::Untyped,
            4 => MetricType::Histogram,
            _ => return None,
        })
    }
}

impl std::fmt::Display for MetricType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One metric family: all samples sharing a metric name (for summaries and histograms,
/// the `_sum`, `_count` and `_bucket` series are folded into the family).
#[derive(Clone, Debug, PartialEq)]
pub struct MetricFamily {
    pub name: String,
    pub help: Option<String>,
    pub kind: MetricType,
    pub metrics: Vec<Metric>,
}

/// One metric of a family: its labels (without `__name__`), value and optional timestamp.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    pub labels: Labels,
    pub value: MetricValue,
    pub timestamp_ms: Option<i64>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum MetricValue {
    Counter(f64),
    Gauge(f64),
    Untyped(f64),
    /// `quantiles`: (quantile, value) in the order given.
    Summary {
        quantiles: Vec<(f64, f64)>,
        sum: f64,
        count: f64,
    },
    /// `buckets`: (upper bound `le`, cumulative count) in the order given.
    Histogram {
        buckets: Vec<(f64, f64)>,
        sum: f64,
        count: f64,
    },
}

impl MetricValue {
    /// The family type this value belongs to.
    pub fn kind(&self) -> MetricType {
        match self {
            MetricValue::Counter(_) => MetricType::Counter,
            MetricValue::Gauge(_) => MetricType::Gauge,
            MetricValue::Untyped(_) => MetricType::Untyped,
            MetricValue::Summary { .. } => MetricType::Summary,
            MetricValue::Histogram { .. } => MetricType::Histogram,
        }
    }

    /// The single value of a counter, gauge or untyped metric.
    pub fn scalar(&self) -> Option<f64> {
        match self {
            MetricValue::Counter(v) | MetricValue::Gauge(v) | MetricValue::Untyped(v) => Some(*v),
            _ => None,
        }
    }
}

impl MetricFamily {
    pub fn new(name: impl Into<String>, kind: MetricType) -> Self {
        MetricFamily {
            name: name.into(),
            help: None,
            kind,
            metrics: Vec::new(),
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Appends a metric (builder style).
    pub fn with_metric(mut self, labels: Labels, value: MetricValue) -> Self {
        self.metrics.push(Metric {
            labels,
            value,
            timestamp_ms: None,
        });
        self
    }
}

pub use argus_model::labels::{
    valid_label_name as is_valid_label_name, valid_metric_name as is_valid_metric_name,
};
