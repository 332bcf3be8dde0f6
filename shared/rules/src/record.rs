//! The stored form of a rule group's state (the `alerts` table, pk `rules`, sk
//! `<file>/<group>`): a record type of its own with a format version, separate from the
//! domain type [`GroupState`], decoded strictly.
//!
//! Format 1 is a JSON object `{"v": 1, "last_eval_ms", "rules": [...]}` with the field
//! names spelled out below. Records written before versioning (no `"v"`) have the same
//! layout and are read as format 0 (migrated as they are). An unknown field, a wrong
//! type or a version newer than [`STATE_FORMAT`] is an error: the caller reports it and
//! never replaces the state by a default (that would reset every pending and firing
//! alert). To change the layout: add a `V2` record, bump [`STATE_FORMAT`], keep reading
//! format 1 by migrating it in [`decode_state`], and say so in ARCHITECTURE.md.

use crate::eval::{ActiveAlert, AlertState, GroupState, RuleState};
use argus_model::Labels;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The format [`encode_state`] writes.
pub const STATE_FORMAT: u32 = 1;

/// A stored state that cannot be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordError {
    #[error("stored rule group state is unreadable (format {version}): {message}")]
    Undecodable { version: u32, message: String },
    #[error(
        "stored rule group state has format {0}, newer than this Argus reads ({STATE_FORMAT})"
    )]
    Newer(u32),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupV1 {
    #[serde(default)]
    v: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_eval_ms: Option<i64>,
    #[serde(default)]
    rules: Vec<RuleV1>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleV1 {
    name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    active: BTreeMap<u64, AlertV1>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    series_prev: BTreeMap<u64, Labels>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertV1 {
    labels: Labels,
    annotations: Vec<(String, String)>,
    state: StateV1,
    /// The value as Prometheus prints it (`NaN`, `+Inf` survive JSON).
    value: String,
    active_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fired_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resolved_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_sent_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    valid_until: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keep_firing_since: Option<i64>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum StateV1 {
    Inactive,
    Pending,
    Firing,
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "NaN" => Ok(f64::NAN),
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => s
            .parse()
            .map_err(|_| format!("value {s:?} is not a number")),
    }
}

/// The stored bytes of a group's state (format [`STATE_FORMAT`]).
pub fn encode_state(s: &GroupState) -> Vec<u8> {
    let r = GroupV1 {
        v: STATE_FORMAT,
        last_eval_ms: s.last_eval_ms,
        rules: s
            .rules
            .iter()
            .map(|r| RuleV1 {
                name: r.name.clone(),
                active: r
                    .active
                    .iter()
                    .map(|(fp, a)| {
                        let rec = AlertV1 {
                            labels: a.labels.clone(),
                            annotations: a.annotations.clone(),
                            state: match a.state {
                                AlertState::Inactive => StateV1::Inactive,
                                AlertState::Pending => StateV1::Pending,
                                AlertState::Firing => StateV1::Firing,
                            },
                            value: argus_promql::format_value(a.value),
                            active_at: a.active_at,
                            fired_at: a.fired_at,
                            resolved_at: a.resolved_at,
                            last_sent_at: a.last_sent_at,
                            valid_until: a.valid_until,
                            keep_firing_since: a.keep_firing_since,
                        };
                        (*fp, rec)
                    })
                    .collect(),
                series_prev: r.series_prev.clone(),
                last_error: r.last_error.clone(),
            })
            .collect(),
    };
    serde_json::to_vec(&r).expect("a state record serializes")
}

/// Reads stored bytes (format 0 or 1) strictly; see the module note.
pub fn decode_state(data: &[u8]) -> Result<GroupState, RecordError> {
    // The version first, so a newer record is named as such rather than "unknown field".
    #[derive(Deserialize)]
    struct Version {
        #[serde(default)]
        v: u32,
    }
    let version = serde_json::from_slice::<Version>(data)
        .map_err(|e| RecordError::Undecodable {
            version: 0,
            message: e.to_string(),
        })?
        .v;
    if version > STATE_FORMAT {
        return Err(RecordError::Newer(version));
    }
    let bad = |message: String| RecordError::Undecodable { version, message };
    let r: GroupV1 = serde_json::from_slice(data).map_err(|e| bad(e.to_string()))?;
    let mut rules = Vec::with_capacity(r.rules.len());
    for rule in r.rules {
        let mut active = BTreeMap::new();
        for (fp, a) in rule.active {
            let alert = ActiveAlert {
                labels: a.labels,
                annotations: a.annotations,
                state: match a.state {
                    StateV1::Inactive => AlertState::Inactive,
                    StateV1::Pending => AlertState::Pending,
                    StateV1::Firing => AlertState::Firing,
                },
                value: parse_value(&a.value).map_err(bad)?,
                active_at: a.active_at,
                fired_at: a.fired_at,
                resolved_at: a.resolved_at,
                last_sent_at: a.last_sent_at,
                valid_until: a.valid_until,
                keep_firing_since: a.keep_firing_since,
            };
            active.insert(fp, alert);
        }
        rules.push(RuleState {
            name: rule.name,
            active,
            series_prev: rule.series_prev,
            last_error: rule.last_error,
        });
    }
    Ok(GroupState {
        last_eval_ms: r.last_eval_ms,
        rules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> GroupState {
        let mut active = BTreeMap::new();
        active.insert(
            42,
            ActiveAlert {
                labels: Labels::from_pairs([("alertname", "Down"), ("job", "x")]),
                annotations: vec![("summary".into(), "down".into())],
                state: AlertState::Firing,
                value: f64::NAN,
                active_at: 1000,
                fired_at: Some(2000),
                resolved_at: None,
                last_sent_at: Some(2000),
                valid_until: Some(62_000),
                keep_firing_since: None,
            },
        );
        GroupState {
            last_eval_ms: Some(2000),
            rules: vec![RuleState {
                name: "Down".into(),
                active,
                series_prev: BTreeMap::new(),
                last_error: None,
            }],
        }
    }

    #[test]
    fn round_trip_and_format_0() {
        let s = sample();
        let bytes = encode_state(&s);
        assert!(
            bytes.starts_with(br#"{"v":1,"#),
            "{}",
            String::from_utf8_lossy(&bytes)
        );
        let back = decode_state(&bytes).unwrap();
        assert_eq!(back.rules[0].active[&42].state, AlertState::Firing);
        assert!(back.rules[0].active[&42].value.is_nan());
        assert_eq!(back.last_eval_ms, Some(2000));
        // A record written before versioning (the domain type's own JSON) still reads.
        let legacy = serde_json::to_vec(&s).unwrap();
        let old = decode_state(&legacy).unwrap();
        assert_eq!(old.rules[0].name, "Down");
        assert_eq!(old.rules[0].active[&42].fired_at, Some(2000));
    }

    #[test]
    fn undecodable_and_newer_records_are_errors() {
        // A renamed field (what a careless domain change would write) is refused.
        let renamed = br#"{"v":1,"last_eval":5,"rules":[]}"#;
        assert!(matches!(
            decode_state(renamed),
            Err(RecordError::Undecodable { version: 1, .. })
        ));
        assert!(decode_state(b"not json").is_err());
        assert_eq!(
            decode_state(br#"{"v":2,"future":true}"#).unwrap_err(),
            RecordError::Newer(2)
        );
        let bad_value = br#"{"v":1,"rules":[{"name":"a","active":{"1":{"labels":{},"annotations":[],"state":"firing","value":"x","active_at":0}}}]}"#;
        assert!(decode_state(bad_value).is_err());
    }
}
