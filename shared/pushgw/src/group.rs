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

/// The stored record of a group (and of each group of a bundle): format [`GROUP_FORMAT`],
/// separate from the domain type [`Group`], decoded strictly (unknown fields and other
/// versions are errors). A new layout bumps `v` and keeps decoding the old one.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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

/// The format of a stored group's header (groups and bundle entries).
pub const GROUP_FORMAT: u8 = 1;

/// Stored payload of one group: zstd( [`encode_raw`] ).
pub fn encode(g: &Group) -> Vec<u8> {
    let raw = encode_raw(g);
    ZSTD.with(|z| {
        let mut z = z.borrow_mut();
        let c =
            z.0.get_or_insert_with(|| zstd::bulk::Compressor::new(1).expect("zstd context"));
        c.compress(&raw).expect("zstd compresses in memory")
    })
}

pub fn decode(data: &[u8]) -> Result<Group, GatewayError> {
    decode_raw(&decompress(data)?)
}

/// A bundle: many groups in one payload, compressed together so that what they share
/// (label names, HELP texts) is stored about once:
/// zstd( { varint(len) varint(len) JSON header, text exposition }* ).
///
/// Families are kept in the text format here, not protobuf: values are then shortest
/// decimal strings, which compress to about half of protobuf's 8-byte doubles (the
/// probe's timings change every run), and a bundle is decoded once per version.
pub fn encode_bundle<'a>(groups: impl IntoIterator<Item = &'a Group>) -> Vec<u8> {
    let mut raw = Vec::with_capacity(64 << 10);
    for g in groups {
        let one = encode_raw_with(g, Families::Text);
        put_varint(&mut raw, one.len() as u64);
        raw.extend_from_slice(&one);
    }
    zstd::bulk::compress(&raw, BUNDLE_LEVEL).expect("zstd compresses in memory")
}

/// Bundles are written once per probe run and read by every scrape and evaluation:
/// a higher level than single groups buys size (DynamoDB bills per KB) cheaply.
const BUNDLE_LEVEL: i32 = 9;

pub fn decode_bundle(data: &[u8]) -> Result<Vec<Group>, GatewayError> {
    let raw = decompress(data)?;
    let mut out = Vec::new();
    let mut rest = &raw[..];
    while !rest.is_empty() {
        let (len, used) = get_varint(rest)?;
        let end = used
            .checked_add(len as usize)
            .filter(|e| *e <= rest.len())
            .ok_or_else(|| corrupt("truncated bundle entry"))?;
        out.push(decode_raw_with(&rest[used..end], Families::Text)?);
        rest = &rest[end..];
    }
    Ok(out)
}

/// How a payload holds its families.
#[derive(Clone, Copy)]
enum Families {
    /// Delimited protobuf (single groups: decoded on every cache miss, fast).
    Proto,
    /// Text exposition format (bundles).
    Text,
}

/// varint(len) JSON header, then the delimited protobuf families.
fn encode_raw(g: &Group) -> Vec<u8> {
    encode_raw_with(g, Families::Proto)
}

fn encode_raw_with(g: &Group, how: Families) -> Vec<u8> {
    let header = Header {
        v: GROUP_FORMAT,
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
    let mut raw = Vec::with_capacity(4096);
    put_varint(&mut raw, h.len() as u64);
    raw.extend_from_slice(&h);
    match how {
        Families::Proto => {
            for f in g.families.values() {
                prost::Message::encode_length_delimited(
                    &argus_expfmt::proto::to_proto(&f.family),
                    &mut raw,
                )
                .expect("Vec<u8> grows as needed");
            }
        }
        Families::Text => {
            let mut text = String::with_capacity(2048);
            for f in g.families.values() {
                argus_expfmt::write_family(&mut text, &f.family);
            }
            raw.extend_from_slice(text.as_bytes());
        }
    }
    raw
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// (value, bytes used)
fn get_varint(data: &[u8]) -> Result<(u64, usize), GatewayError> {
    let mut v: u64 = 0;
    for (i, b) in data.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    Err(corrupt("bad length prefix"))
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

fn decompress(data: &[u8]) -> Result<Vec<u8>, GatewayError> {
    ZSTD.with(|z| {
        let mut z = z.borrow_mut();
        if z.1.is_none() {
            z.1 = Some(zstd::bulk::Decompressor::new().map_err(corrupt)?);
        }
        let d = z.1.as_mut().expect("set above");
        // Capacity from the frame header when present; capped (256 MiB) against
        // corrupt input.
        let cap = zstd::zstd_safe::get_frame_content_size(data)
            .ok()
            .flatten()
            .unwrap_or(1 << 20)
            .min(256 << 20);
        d.decompress(data, cap as usize).map_err(corrupt)
    })
}

fn decode_raw(raw: &[u8]) -> Result<Group, GatewayError> {
    decode_raw_with(raw, Families::Proto)
}

fn decode_raw_with(raw: &[u8], how: Families) -> Result<Group, GatewayError> {
    let (len, i) = get_varint(raw)?;
    let end = i
        .checked_add(len as usize)
        .filter(|e| *e <= raw.len())
        .ok_or_else(|| corrupt("truncated header"))?;
    let header: Header = serde_json::from_slice(&raw[i..end]).map_err(corrupt)?;
    if header.v != GROUP_FORMAT {
        return Err(corrupt(format!(
            "format {} (this Argus reads {GROUP_FORMAT})",
            header.v
        )));
    }
    let fams = match how {
        Families::Proto => argus_expfmt::decode_delimited(&raw[end..]).map_err(corrupt)?,
        Families::Text => argus_expfmt::parse_text_bytes(&raw[end..]).map_err(corrupt)?,
    };
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
            "# HELP a help\n# TYPE a histogram\na_bucket{x=\"1\",le=\"0.5\"} 2\na_bucket{x=\"1\",le=\"+Inf\"} 2\na_sum{x=\"1\"} 1\na_count{x=\"1\"} 2\nb 3\n",
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
        let mut g2 = g.clone();
        g2.key.insert("instance".into(), "b".into());
        let bundle = encode_bundle([&g, &g2]);
        assert_eq!(decode_bundle(&bundle).unwrap(), vec![g.clone(), g2]);
        assert_eq!(decode_bundle(&encode_bundle([])).unwrap(), vec![]);
        assert!(decode_bundle(b"garbage").is_err());
        let mut cut = bundle.clone();
        cut.truncate(bundle.len() / 2);
        assert!(decode_bundle(&cut).is_err());
        assert_eq!(group_id(&g.key).len(), 32);
        // The record is decoded strictly: another format version or a renamed field is
        // an error (reported by the gateway), never a default group.
        let raw = encode_raw(&g);
        for (from, to) in [
            (&b"\"v\":1"[..], &b"\"v\":2"[..]),
            (b"\"push\":", b"\"pusx\":"),
        ] {
            let at = raw
                .windows(from.len())
                .position(|w| w == from)
                .expect("field in the header");
            let mut changed = raw.clone();
            changed[at..at + to.len()].copy_from_slice(to);
            let data = zstd::bulk::compress(&changed, 1).unwrap();
            let e = decode(&data).unwrap_err().to_string();
            assert!(e.contains("corrupt metric group payload"), "{e}");
        }
    }
}
