//! `io.prometheus.client` protobuf messages (metrics.proto, proto2) written by hand
//! with prost derives (no protoc here), and the varint length-delimited stream
//! client_golang pushes (`application/vnd.google.protobuf;
//! proto=io.prometheus.client.MetricFamily; encoding=delimited`).
//!
//! Native-histogram, exemplar and created-timestamp fields are not modelled: prost
//! skips them when decoding.

use crate::{Labels, Metric, MetricFamily, MetricType, MetricValue};
use prost::Message;

#[derive(Clone, PartialEq, Message)]
pub struct LabelPair {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Gauge {
    #[prost(double, optional, tag = "1")]
    pub value: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Counter {
    #[prost(double, optional, tag = "1")]
    pub value: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Quantile {
    #[prost(double, optional, tag = "1")]
    pub quantile: Option<f64>,
    #[prost(double, optional, tag = "2")]
    pub value: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Summary {
    #[prost(uint64, optional, tag = "1")]
    pub sample_count: Option<u64>,
    #[prost(double, optional, tag = "2")]
    pub sample_sum: Option<f64>,
    #[prost(message, repeated, tag = "3")]
    pub quantile: Vec<Quantile>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Untyped {
    #[prost(double, optional, tag = "1")]
    pub value: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Histogram {
    #[prost(uint64, optional, tag = "1")]
    pub sample_count: Option<u64>,
    #[prost(double, optional, tag = "4")]
    pub sample_count_float: Option<f64>,
    #[prost(double, optional, tag = "2")]
    pub sample_sum: Option<f64>,
    #[prost(message, repeated, tag = "3")]
    pub bucket: Vec<Bucket>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Bucket {
    #[prost(uint64, optional, tag = "1")]
    pub cumulative_count: Option<u64>,
    #[prost(double, optional, tag = "4")]
    pub cumulative_count_float: Option<f64>,
    #[prost(double, optional, tag = "2")]
    pub upper_bound: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ProtoMetric {
    #[prost(message, repeated, tag = "1")]
    pub label: Vec<LabelPair>,
    #[prost(message, optional, tag = "2")]
    pub gauge: Option<Gauge>,
    #[prost(message, optional, tag = "3")]
    pub counter: Option<Counter>,
    #[prost(message, optional, tag = "4")]
    pub summary: Option<Summary>,
    #[prost(message, optional, tag = "5")]
    pub untyped: Option<Untyped>,
    #[prost(message, optional, tag = "7")]
    pub histogram: Option<Histogram>,
    #[prost(int64, optional, tag = "6")]
    pub timestamp_ms: Option<i64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ProtoMetricFamily {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub help: Option<String>,
    #[prost(int32, optional, tag = "3")]
    pub r#type: Option<i32>,
    #[prost(message, repeated, tag = "4")]
    pub metric: Vec<ProtoMetric>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "unexpected EOF in message {index}: length {len} exceeds the {remaining} remaining bytes"
    )]
    Truncated {
        index: usize,
        len: u64,
        remaining: usize,
    },
    #[error("invalid varint length prefix of message {index}")]
    BadLength { index: usize },
    #[error("proto: cannot parse message {index}: {msg}")]
    Proto { index: usize, msg: String },
    #[error("metric family {family:?}: unsupported metric type {value}")]
    UnsupportedType { family: String, value: i32 },
    #[error("metric family {family:?}: metric {index} has no {kind} value")]
    MissingValue {
        family: String,
        index: usize,
        kind: &'static str,
    },
    #[error("metric family {family:?}: metric {index} has two or more labels named {label:?}")]
    DuplicateLabel {
        family: String,
        index: usize,
        label: String,
    },
}

/// Decodes a stream of varint-length-delimited `MetricFamily` messages. An empty input
/// is zero families. Never allocates beyond the input's size.
pub fn decode_delimited(mut buf: &[u8]) -> Result<Vec<MetricFamily>, DecodeError> {
    let mut out = Vec::new();
    let mut index = 0;
    while !buf.is_empty() {
        let len = prost::encoding::decode_varint(&mut buf)
            .map_err(|_| DecodeError::BadLength { index })?;
        if len > buf.len() as u64 {
            return Err(DecodeError::Truncated {
                index,
                len,
                remaining: buf.len(),
            });
        }
        let (msg, rest) = buf.split_at(len as usize);
        buf = rest;
        let pmf = ProtoMetricFamily::decode(msg).map_err(|e| DecodeError::Proto {
            index,
            msg: e.to_string(),
        })?;
        out.push(from_proto(pmf)?);
        index += 1;
    }
    Ok(out)
}

/// Encodes families as varint-length-delimited messages (what client_golang's
/// `push` sends).
pub fn encode_delimited(families: &[MetricFamily]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in families {
        let m = to_proto(f);
        m.encode_length_delimited(&mut out)
            .expect("Vec<u8> grows as needed");
    }
    out
}

fn count_from(int: Option<u64>, float: Option<f64>) -> f64 {
    match float {
        Some(f) if f != 0.0 => f,
        _ => int.unwrap_or(0) as f64,
    }
}

/// Converts a decoded protobuf family into the crate's model.
pub fn from_proto(p: ProtoMetricFamily) -> Result<MetricFamily, DecodeError> {
    let name = p.name.unwrap_or_default();
    let type_value = p.r#type.unwrap_or(0);
    let kind =
        MetricType::from_proto_value(type_value).ok_or_else(|| DecodeError::UnsupportedType {
            family: name.clone(),
            value: type_value,
        })?;
    let mut metrics = Vec::with_capacity(p.metric.len());
    for (index, m) in p.metric.into_iter().enumerate() {
        let mut names: Vec<&str> = m
            .label
            .iter()
            .map(|l| l.name.as_deref().unwrap_or(""))
            .collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(DecodeError::DuplicateLabel {
                family: name,
                index,
                label: w[0].to_string(),
            });
        }
        let missing = || DecodeError::MissingValue {
            family: name.clone(),
            index,
            kind: kind.as_str(),
        };
        let value = match kind {
            MetricType::Counter => {
                MetricValue::Counter(m.counter.ok_or_else(missing)?.value.unwrap_or(0.0))
            }
            MetricType::Gauge => {
                MetricValue::Gauge(m.gauge.ok_or_else(missing)?.value.unwrap_or(0.0))
            }
            MetricType::Untyped => {
                MetricValue::Untyped(m.untyped.ok_or_else(missing)?.value.unwrap_or(0.0))
            }
            MetricType::Summary => {
                let s = m.summary.ok_or_else(missing)?;
                MetricValue::Summary {
                    quantiles: s
                        .quantile
                        .iter()
                        .map(|q| (q.quantile.unwrap_or(0.0), q.value.unwrap_or(0.0)))
                        .collect(),
                    sum: s.sample_sum.unwrap_or(0.0),
                    count: s.sample_count.unwrap_or(0) as f64,
                }
            }
            MetricType::Histogram => {
                let h = m.histogram.ok_or_else(missing)?;
                MetricValue::Histogram {
                    buckets: h
                        .bucket
                        .iter()
                        .map(|b| {
                            (
                                b.upper_bound.unwrap_or(0.0),
                                count_from(b.cumulative_count, b.cumulative_count_float),
                            )
                        })
                        .collect(),
                    sum: h.sample_sum.unwrap_or(0.0),
                    count: count_from(h.sample_count, h.sample_count_float),
                }
            }
        };
        let labels = Labels::from_pairs(
            m.label
                .into_iter()
                .map(|l| (l.name.unwrap_or_default(), l.value.unwrap_or_default())),
        );
        metrics.push(Metric {
            labels,
            value,
            timestamp_ms: m.timestamp_ms,
        });
    }
    Ok(MetricFamily {
        name,
        help: p.help,
        kind,
        metrics,
    })
}

fn split_count(c: f64) -> (Option<u64>, Option<f64>) {
    if c >= 0.0 && c.fract() == 0.0 && c < 1.8446744073709552e19 {
        (Some(c as u64), None)
    } else {
        (None, Some(c))
    }
}

/// Converts a family into its protobuf message.
pub fn to_proto(f: &MetricFamily) -> ProtoMetricFamily {
    ProtoMetricFamily {
        name: Some(f.name.clone()),
        help: f.help.clone(),
        r#type: Some(f.kind.proto_value()),
        metric: f
            .metrics
            .iter()
            .map(|m| {
                let mut pm = ProtoMetric {
                    label: m
                        .labels
                        .iter()
                        .map(|(k, v)| LabelPair {
                            name: Some(k.to_string()),
                            value: Some(v.to_string()),
                        })
                        .collect(),
                    timestamp_ms: m.timestamp_ms,
                    ..Default::default()
                };
                match &m.value {
                    MetricValue::Counter(v) => pm.counter = Some(Counter { value: Some(*v) }),
                    MetricValue::Gauge(v) => pm.gauge = Some(Gauge { value: Some(*v) }),
                    MetricValue::Untyped(v) => pm.untyped = Some(Untyped { value: Some(*v) }),
                    MetricValue::Summary {
                        quantiles,
                        sum,
                        count,
                    } => {
                        pm.summary = Some(Summary {
                            sample_count: Some(*count as u64),
                            sample_sum: Some(*sum),
                            quantile: quantiles
                                .iter()
                                .map(|(q, v)| Quantile {
                                    quantile: Some(*q),
                                    value: Some(*v),
                                })
                                .collect(),
                        })
                    }
                    MetricValue::Histogram {
                        buckets,
                        sum,
                        count,
                    } => {
                        let (sc, scf) = split_count(*count);
                        pm.histogram = Some(Histogram {
                            sample_count: sc,
                            sample_count_float: scf,
                            sample_sum: Some(*sum),
                            bucket: buckets
                                .iter()
                                .map(|(le, c)| {
                                    let (cc, ccf) = split_count(*c);
                                    Bucket {
                                        cumulative_count: cc,
                                        cumulative_count_float: ccf,
                                        upper_bound: Some(*le),
                                    }
                                })
                                .collect(),
                        })
                    }
                }
                pm
            })
            .collect(),
    }
}
