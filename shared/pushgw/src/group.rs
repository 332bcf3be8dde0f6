//! One metric group (everything pushed under one grouping key) and its stored form.

use crate::GatewayError;
use argus_expfmt::{MetricFamily, MetricType, MetricValue};
use argus_model::{Labels, Millis};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Grouping key: label name → value (`job` always present). Values may be empty
/// (`instance@base64/=`), exactly as the original keeps them.
pub type GroupingKey = BTreeMap<String, String>;

pub const PUSH_TIME: &str = "push_time_seconds";
pub const PUSH_FAILURE_TIME: &str = "push_failure_time_seconds";
pub const PUSH_TIME_HELP: &str =
    "Last Unix time when changing this group in the Pushgateway succeeded.";
pub const PUSH_FAILURE_TIME_HELP: &str =
    "Last Unix time when changing this group in the Pushgateway failed.";

/// A family as stored in a group, with the time it was last pushed.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredFamily {
    pub family: MetricFamily,
    pub pushed_ms: Millis,
}

/// The whole state of one group.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Group {
    pub key: GroupingKey,
    /// User families by name (never `push_time_seconds`/`push_failure_time_seconds`).
    pub families: BTreeMap<String, StoredFamily>,
    /// Last successful change (`None`: the group only exists because a push failed).
    pub push_ms: Option<Millis>,
    /// When the `push_time_seconds` family was last set.
    pub push_set_ms: Millis,
    /// Last failed change (`None`: never failed).
    pub failure_ms: Option<Millis>,
    pub failure_set_ms: Millis,
    /// The group disappears after this time (Argus extension; `None`: never).
    pub expires_at_ms: Option<Millis>,
}

impl Group {
    pub fn new(key: GroupingKey) -> Self {
        Group {
            key,
            ..Default::default()
        }
    }

    /// The group without key and families (its timestamps and expiry).
    pub fn header(&self) -> Group {
        Group {
            key: GroupingKey::new(),
            families: BTreeMap::new(),
            push_ms: self.push_ms,
            push_set_ms: self.push_set_ms,
            failure_ms: self.failure_ms,
            failure_set_ms: self.failure_set_ms,
            expires_at_ms: self.expires_at_ms,
        }
    }

    pub fn live(&self, now: Millis) -> bool {
        self.expires_at_ms.is_none_or(|t| t > now)
    }

    pub fn last_push_successful(&self) -> bool {
        self.push_ms.unwrap_or(0) >= self.failure_ms.unwrap_or(0)
    }

    /// Labels added to every exposed sample of this group: the grouping key (empty
    /// values included) plus `instance=""` when neither the key nor the metric has an
    /// instance. Sorted by name.
    pub fn extra_labels(&self, metric_has_instance: bool) -> Vec<(&str, &str)> {
        let mut v: Vec<(&str, &str)> = self
            .key
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if !metric_has_instance && !self.key.contains_key("instance") {
            v.push(("instance", ""));
            v.sort();
        }
        v
    }

    /// The `push_time_seconds` and `push_failure_time_seconds` families of the group.
    pub fn timestamp_families(&self) -> [(MetricFamily, Millis); 2] {
        let gauge = |name: &str, help: &str, ms: Option<Millis>| MetricFamily {
            name: name.to_string(),
            help: Some(help.to_string()),
            kind: MetricType::Gauge,
            metrics: vec![argus_expfmt::Metric {
                labels: Labels::new(),
                value: MetricValue::Gauge(ms.map_or(0.0, |t| t as f64 / 1000.0)),
                timestamp_ms: None,
            }],
        };
        [
            (
                gauge(PUSH_TIME, PUSH_TIME_HELP, self.push_ms),
                self.push_set_ms,
            ),
            (
                gauge(PUSH_FAILURE_TIME, PUSH_FAILURE_TIME_HELP, self.failure_ms),
                self.failure_set_ms,
            ),
        ]
    }

    /// Number of exposed series (samples) of the user families.
    pub fn series_count(&self) -> usize {
        self.families
            .values()
            .map(|f| family_series_count(&f.family))
            .sum()
    }
}

pub fn family_series_count(f: &MetricFamily) -> usize {
    f.metrics
        .iter()
        .map(|m| match &m.value {
            MetricValue::Summary { quantiles, .. } => quantiles.len() + 2,
            MetricValue::Histogram { buckets, .. } => {
                buckets.len() + 2 + usize::from(!buckets.iter().any(|(le, _)| *le == f64::INFINITY))
            }
            _ => 1,
        })
        .sum()
}

/// Stable id of a grouping key: hex SHA-256 (first 128 bits) of its canonical form
/// (`name 0xff value 0xff` for each label, sorted, as the original's key).
pub fn group_id(key: &GroupingKey) -> String {
    let mut h = Sha256::new();
    for (k, v) in key {
        h.update(k.as_bytes());
        h.update([0xff]);
        h.update(v.as_bytes());
        h.update([0xff]);
    }
    hex::encode(&h.finalize()[..16])
}

#[derive(Serialize, Deserialize)]
struct Header {
    v: u8,
    key: GroupingKey,
    /// (family name, pushed_ms), in the order of the protobuf families that follow.
    fams: Vec<(String, Millis)>,
    push: Option<Millis>,
    push_set: Millis,
    fail: Option<Millis>,
    fail_set: Millis,
    exp: Option<Millis>,
}

/// Stored payload: zstd( varint(len) JSON header, delimited protobuf families ).
pub fn encode(g: &Group) -> Vec<u8> {
    let header = Header {
        v: 1,
        key: g.key.clone(),
        fams: g
            .families
            .iter()
            .map(|(n, f)| (n.clone(), f.pushed_ms))
            .collect(),
        push: g.push_ms,
        push_set: g.push_set_ms,
        fail: g.failure_ms,
        fail_set: g.failure_set_ms,
        exp: g.expires_at_ms,
    };
    let h = serde_json::to_vec(&header).expect("header serializes");
    let mut body = Vec::with_capacity(4096);
    for f in g.families.values() {
        prost::Message::encode_length_delimited(
            &argus_expfmt::proto::to_proto(&f.family),
            &mut body,
        )
        .expect("Vec<u8> grows as needed");
    }
    let mut raw = Vec::with_capacity(h.len() + body.len() + 10);
    let mut n = h.len() as u64;
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            raw.push(b);
            break;
        }
        raw.push(b | 0x80);
    }
    raw.extend_from_slice(&h);
    raw.extend_from_slice(&body);
    ZSTD.with(|z| {
        let mut z = z.borrow_mut();
        let c =
            z.0.get_or_insert_with(|| zstd::bulk::Compressor::new(1).expect("zstd context"));
        c.compress(&raw).expect("zstd compresses in memory")
    })
}

/// Per-thread zstd contexts: creating one costs far more than compressing a group.
type Contexts = (
    Option<zstd::bulk::Compressor<'static>>,
    Option<zstd::bulk::Decompressor<'static>>,
);
thread_local! {
    static ZSTD: std::cell::RefCell<Contexts> = const { std::cell::RefCell::new((None, None)) };
}

fn corrupt(msg: impl std::fmt::Display) -> GatewayError {
    GatewayError::Store(argus_model::StoreError::Permanent(format!(
        "corrupt metric group payload: {msg}"
    )))
}

pub fn decode(data: &[u8]) -> Result<Group, GatewayError> {
    // Payloads are small; cap decompression at 256 MiB against corrupt input.
    let raw = ZSTD.with(|z| {
        let mut z = z.borrow_mut();
        if z.1.is_none() {
            z.1 = Some(zstd::bulk::Decompressor::new().map_err(corrupt)?);
        }
        let d = z.1.as_mut().expect("set above");
        // Capacity from the frame header when present; payloads are small. Capped
        // against corrupt input.
        let cap = zstd::zstd_safe::get_frame_content_size(data)
            .ok()
            .flatten()
            .unwrap_or(1 << 20)
            .min(256 << 20);
        d.decompress(data, cap as usize).map_err(corrupt)
    })?;
    let mut len: u64 = 0;
    let mut shift = 0;
    let mut i = 0;
    loop {
        let b = *raw
            .get(i)
            .ok_or_else(|| corrupt("truncated header length"))?;
        i += 1;
        len |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return Err(corrupt("bad header length"));
        }
    }
    let end = i
        .checked_add(len as usize)
        .filter(|e| *e <= raw.len())
        .ok_or_else(|| corrupt("truncated header"))?;
    let header: Header = serde_json::from_slice(&raw[i..end]).map_err(corrupt)?;
    let fams = argus_expfmt::decode_delimited(&raw[end..]).map_err(corrupt)?;
    if fams.len() != header.fams.len() {
        return Err(corrupt("family count mismatch"));
    }
    let families = header
        .fams
        .into_iter()
        .zip(fams)
        .map(|((name, pushed_ms), family)| (name, StoredFamily { family, pushed_ms }))
        .collect();
    Ok(Group {
        key: header.key,
        families,
        push_ms: header.push,
        push_set_ms: header.push_set,
        failure_ms: header.fail,
        failure_set_ms: header.fail_set,
        expires_at_ms: header.exp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip() {
        let mut key = GroupingKey::new();
        key.insert("job".into(), "j".into());
        key.insert("instance".into(), "".into());
        let fams = argus_expfmt::parse_text(
            "# HELP a help\n# TYPE a histogram\na_bucket{x=\"1\",le=\"0.5\"} 2\na_sum{x=\"1\"} 1\na_count{x=\"1\"} 2\nb 3\n",
        )
        .unwrap();
        let mut g = Group::new(key);
        for f in fams {
            g.families.insert(
                f.name.clone(),
                StoredFamily {
                    family: f,
                    pushed_ms: 5,
                },
            );
        }
        g.push_ms = Some(1234);
        g.push_set_ms = 1234;
        g.expires_at_ms = Some(99);
        let back = decode(&encode(&g)).unwrap();
        assert_eq!(back, g);
        assert!(decode(b"garbage").is_err());
        assert_eq!(group_id(&g.key).len(), 32);
    }
}
