//! The stored records of the notifier other than the notification log ([`crate::nflog`]):
//! alerts, aggregation groups and silences. Each has its own wire type with a format
//! version (`{"v":1,...}`), separate from the domain type, so renaming a field of
//! [`StoredAlert`], [`GroupState`] or [`Silence`] cannot silently change what is stored.
//!
//! Decoding is strict: a v1 record must have every field and no unknown one. Records
//! written before versioning (no `v`) are read in their old shape (the same field names,
//! with the defaults the old decoder had) and rewritten as v1 on their next write. A
//! record that does not decode, or has a version this release does not know, is a
//! [`RecordError`]: the notifier logs it, counts it
//! (`argus_notifier_records_unreadable_total{record=...}` on `/metrics`) and fails or
//! reports the operation that met it; it never replaces it with a default or a new
//! value.
//!
//! The v1 field names are those the records had before versioning, so readers that
//! decode them leniently (the status page) keep working.

use crate::alert::StoredAlert;
use crate::silence::{ApiMatcher, Silence};
use argus_model::{Labels, Millis};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The record version this release writes (all three kinds).
pub const RECORD_VERSION: u64 = 1;

/// The kinds of record, as the `record` label of the unreadable-records counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordKind {
    Alert,
    Group,
    Silence,
}

impl RecordKind {
    pub const ALL: [RecordKind; 3] = [RecordKind::Alert, RecordKind::Group, RecordKind::Silence];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Alert => "alert",
            RecordKind::Group => "group",
            RecordKind::Silence => "silence",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// A stored record that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("stored {} record {key} is corrupt: {message}", kind.as_str())]
    Corrupt {
        kind: RecordKind,
        key: String,
        message: String,
    },
    #[error("stored {} record {key} has record version {version}, unknown to this release (written by a newer one?)", kind.as_str())]
    UnknownVersion {
        kind: RecordKind,
        key: String,
        version: String,
    },
}

impl RecordError {
    pub fn kind(&self) -> RecordKind {
        match self {
            RecordError::Corrupt { kind, .. } | RecordError::UnknownVersion { kind, .. } => *kind,
        }
    }
    pub fn key(&self) -> &str {
        match self {
            RecordError::Corrupt { key, .. } | RecordError::UnknownVersion { key, .. } => key,
        }
    }
}

/// An aggregation group's stored state: its timer and the resolved alerts already
/// flushed out of it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupState {
    pub route: String,
    pub route_key: String,
    pub key: String,
    pub labels: Labels,
    pub next_flush: Millis,
    pub has_flushed: bool,
    /// Resolved alerts flushed out of the group: fingerprint → their `updated_at` then.
    pub removed: BTreeMap<String, Millis>,
}

// ---------------------------------------------------------------- wire types

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertV1 {
    v: u64,
    labels: Labels,
    annotations: Labels,
    starts_at: Millis,
    ends_at: Millis,
    generator_url: String,
    updated_at: Millis,
    timeout: bool,
}

/// Alerts as stored before versioning.
#[derive(Deserialize)]
struct AlertLegacy {
    labels: Labels,
    #[serde(default)]
    annotations: Labels,
    starts_at: Millis,
    ends_at: Millis,
    #[serde(default)]
    generator_url: String,
    updated_at: Millis,
    #[serde(default)]
    timeout: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupV1 {
    v: u64,
    route: String,
    route_key: String,
    key: String,
    labels: Labels,
    next_flush: Millis,
    has_flushed: bool,
    removed: BTreeMap<String, Millis>,
}

#[derive(Deserialize)]
struct GroupLegacy {
    route: String,
    route_key: String,
    key: String,
    labels: Labels,
    next_flush: Millis,
    has_flushed: bool,
    #[serde(default)]
    removed: BTreeMap<String, Millis>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MatcherV1 {
    name: String,
    value: String,
    is_regex: bool,
    is_equal: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SilenceV1 {
    v: u64,
    id: String,
    matchers: Vec<MatcherV1>,
    starts_at: Millis,
    ends_at: Millis,
    updated_at: Millis,
    created_by: String,
    comment: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MatcherLegacy {
    name: String,
    value: String,
    #[serde(default)]
    is_regex: bool,
    #[serde(default = "yes")]
    is_equal: bool,
}
fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct SilenceLegacy {
    id: String,
    matchers: Vec<MatcherLegacy>,
    starts_at: Millis,
    ends_at: Millis,
    updated_at: Millis,
    created_by: String,
    comment: String,
}

fn object<T: Serialize>(w: T) -> Map<String, Value> {
    match serde_json::to_value(w) {
        Ok(Value::Object(m)) => m,
        _ => unreachable!("a record struct serializes to an object"),
    }
}

/// Decodes `attrs` as `V1` when `v` is 1, as `Legacy` when there is no `v`.
fn decode_versioned<V1, Legacy, T>(
    kind: RecordKind,
    key: &str,
    attrs: &Map<String, Value>,
    v1: impl FnOnce(V1) -> T,
    legacy: impl FnOnce(Legacy) -> T,
) -> Result<T, RecordError>
where
    V1: for<'de> Deserialize<'de>,
    Legacy: for<'de> Deserialize<'de>,
{
    let corrupt = |e: serde_json::Error| RecordError::Corrupt {
        kind,
        key: key.to_string(),
        message: e.to_string(),
    };
    match attrs.get("v") {
        None => Legacy::deserialize(attrs).map(legacy).map_err(corrupt),
        Some(v) if v.as_u64() == Some(RECORD_VERSION) => {
            V1::deserialize(attrs).map(v1).map_err(corrupt)
        }
        Some(v) => Err(RecordError::UnknownVersion {
            kind,
            key: key.to_string(),
            version: v.to_string(),
        }),
    }
}

// ---------------------------------------------------------------- alerts

pub fn encode_alert(a: &StoredAlert) -> Map<String, Value> {
    object(AlertV1 {
        v: RECORD_VERSION,
        labels: a.labels.clone(),
        annotations: a.annotations.clone(),
        starts_at: a.starts_at,
        ends_at: a.ends_at,
        generator_url: a.generator_url.clone(),
        updated_at: a.updated_at,
        timeout: a.timeout,
    })
}

pub fn decode_alert(key: &str, attrs: &Map<String, Value>) -> Result<StoredAlert, RecordError> {
    decode_versioned(
        RecordKind::Alert,
        key,
        attrs,
        |w: AlertV1| StoredAlert {
            labels: w.labels,
            annotations: w.annotations,
            starts_at: w.starts_at,
            ends_at: w.ends_at,
            generator_url: w.generator_url,
            updated_at: w.updated_at,
            timeout: w.timeout,
        },
        |w: AlertLegacy| StoredAlert {
            labels: w.labels,
            annotations: w.annotations,
            starts_at: w.starts_at,
            ends_at: w.ends_at,
            generator_url: w.generator_url,
            updated_at: w.updated_at,
            timeout: w.timeout,
        },
    )
}

// ---------------------------------------------------------------- groups

pub fn encode_group(g: &GroupState) -> Map<String, Value> {
    object(GroupV1 {
        v: RECORD_VERSION,
        route: g.route.clone(),
        route_key: g.route_key.clone(),
        key: g.key.clone(),
        labels: g.labels.clone(),
        next_flush: g.next_flush,
        has_flushed: g.has_flushed,
        removed: g.removed.clone(),
    })
}

pub fn decode_group(key: &str, attrs: &Map<String, Value>) -> Result<GroupState, RecordError> {
    decode_versioned(
        RecordKind::Group,
        key,
        attrs,
        |w: GroupV1| GroupState {
            route: w.route,
            route_key: w.route_key,
            key: w.key,
            labels: w.labels,
            next_flush: w.next_flush,
            has_flushed: w.has_flushed,
            removed: w.removed,
        },
        |w: GroupLegacy| GroupState {
            route: w.route,
            route_key: w.route_key,
            key: w.key,
            labels: w.labels,
            next_flush: w.next_flush,
            has_flushed: w.has_flushed,
            removed: w.removed,
        },
    )
}

// ---------------------------------------------------------------- silences

pub fn encode_silence(s: &Silence) -> Map<String, Value> {
    object(SilenceV1 {
        v: RECORD_VERSION,
        id: s.id.clone(),
        matchers: s
            .matchers
            .iter()
            .map(|m| MatcherV1 {
                name: m.name.clone(),
                value: m.value.clone(),
                is_regex: m.is_regex,
                is_equal: m.is_equal,
            })
            .collect(),
        starts_at: s.starts_at,
        ends_at: s.ends_at,
        updated_at: s.updated_at,
        created_by: s.created_by.clone(),
        comment: s.comment.clone(),
    })
}

pub fn decode_silence(key: &str, attrs: &Map<String, Value>) -> Result<Silence, RecordError> {
    decode_versioned(
        RecordKind::Silence,
        key,
        attrs,
        |w: SilenceV1| Silence {
            id: w.id,
            matchers: w
                .matchers
                .into_iter()
                .map(|m| ApiMatcher {
                    name: m.name,
                    value: m.value,
                    is_regex: m.is_regex,
                    is_equal: m.is_equal,
                })
                .collect(),
            starts_at: w.starts_at,
            ends_at: w.ends_at,
            updated_at: w.updated_at,
            created_by: w.created_by,
            comment: w.comment,
        },
        |w: SilenceLegacy| Silence {
            id: w.id,
            matchers: w
                .matchers
                .into_iter()
                .map(|m| ApiMatcher {
                    name: m.name,
                    value: m.value,
                    is_regex: m.is_regex,
                    is_equal: m.is_equal,
                })
                .collect(),
            starts_at: w.starts_at,
            ends_at: w.ends_at,
            updated_at: w.updated_at,
            created_by: w.created_by,
            comment: w.comment,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alert() -> StoredAlert {
        StoredAlert {
            labels: Labels::from_pairs([("alertname", "A"), ("instance", "x")]),
            annotations: Labels::from_pairs([("summary", "s")]),
            starts_at: 1,
            ends_at: 2,
            generator_url: "http://g".into(),
            updated_at: 3,
            timeout: true,
        }
    }

    fn group() -> GroupState {
        GroupState {
            route: "0.1".into(),
            route_key: "{}/{team=\"a\"}".into(),
            key: "{}:{alertname=\"A\"}".into(),
            labels: Labels::from_pairs([("alertname", "A")]),
            next_flush: 10,
            has_flushed: true,
            removed: [("00000000000000ab".to_string(), 7)].into_iter().collect(),
        }
    }

    fn silence() -> Silence {
        Silence {
            id: "id-1".into(),
            matchers: vec![ApiMatcher {
                name: "alertname".into(),
                value: "A.*".into(),
                is_regex: true,
                is_equal: false,
            }],
            starts_at: 1,
            ends_at: 2,
            updated_at: 1,
            created_by: "me".into(),
            comment: "c".into(),
        }
    }

    /// Asserts the three ways a record can be unreadable are errors naming it.
    fn unreadable<T: std::fmt::Debug>(
        kind: RecordKind,
        good: Map<String, Value>,
        decode: impl Fn(&str, &Map<String, Value>) -> Result<T, RecordError>,
    ) {
        let mut newer = good.clone();
        newer.insert("v".into(), 2.into());
        let e = decode("pk/sk", &newer).unwrap_err();
        assert!(matches!(e, RecordError::UnknownVersion { .. }), "{e}");
        assert_eq!((e.kind(), e.key()), (kind, "pk/sk"));
        assert!(e.to_string().contains("pk/sk") && e.to_string().contains(kind.as_str()));
        let mut as_text = good.clone();
        as_text.insert("v".into(), "1".into());
        assert!(matches!(
            decode("k", &as_text),
            Err(RecordError::UnknownVersion { .. })
        ));
        // A v1 record missing a field, with an unknown field, with a wrong type.
        for (i, bad) in [
            {
                let mut m = good.clone();
                let first = m.keys().find(|k| *k != "v").unwrap().clone();
                m.remove(&first);
                m
            },
            {
                let mut m = good.clone();
                m.insert("surprise".into(), json!(1));
                m
            },
            {
                let mut m = good.clone();
                for (k, v) in m.iter_mut() {
                    if k != "v" && v.is_number() {
                        *v = json!("soon");
                        break;
                    }
                }
                m
            },
        ]
        .iter()
        .enumerate()
        {
            let e = decode("k", bad).unwrap_err();
            assert!(
                matches!(e, RecordError::Corrupt { kind: k, .. } if k == kind),
                "case {i}: {e}"
            );
        }
        let junk = json!({"hello": 1});
        assert!(matches!(
            decode("k", junk.as_object().unwrap()),
            Err(RecordError::Corrupt { .. })
        ));
    }

    #[test]
    fn alert_records_round_trip_and_unreadable_ones_are_errors() {
        let attrs = encode_alert(&alert());
        assert_eq!(attrs["v"], 1);
        assert_eq!(decode_alert("k", &attrs).unwrap(), alert());
        unreadable(RecordKind::Alert, attrs, decode_alert);
        // Written before versioning: read with the old defaults.
        let old =
            json!({"labels": {"alertname": "A"}, "starts_at": 1, "ends_at": 2, "updated_at": 3});
        let a = decode_alert("k", old.as_object().unwrap()).unwrap();
        assert_eq!((a.starts_at, a.timeout, a.annotations.len()), (1, false, 0));
    }

    #[test]
    fn group_records_round_trip_and_unreadable_ones_are_errors() {
        let attrs = encode_group(&group());
        assert_eq!(attrs["v"], 1);
        assert_eq!(decode_group("k", &attrs).unwrap(), group());
        unreadable(RecordKind::Group, attrs, decode_group);
        let old = json!({"route": "0", "route_key": "{}", "key": "{}:{}", "labels": {},
                         "next_flush": 5, "has_flushed": false});
        let g = decode_group("k", old.as_object().unwrap()).unwrap();
        assert_eq!((g.next_flush, g.removed.len()), (5, 0));
    }

    #[test]
    fn silence_records_round_trip_and_unreadable_ones_are_errors() {
        let attrs = encode_silence(&silence());
        assert_eq!(attrs["v"], 1);
        assert_eq!(attrs["matchers"][0]["isRegex"], true);
        assert_eq!(decode_silence("k", &attrs).unwrap(), silence());
        unreadable(RecordKind::Silence, attrs, decode_silence);
        let old = json!({"id": "x", "matchers": [{"name": "a", "value": "b"}], "starts_at": 1,
                         "ends_at": 2, "updated_at": 1, "created_by": "", "comment": ""});
        let s = decode_silence("k", old.as_object().unwrap()).unwrap();
        assert!(s.matchers[0].is_equal && !s.matchers[0].is_regex);
    }
}
