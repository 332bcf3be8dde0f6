//! Alertmanager's notification data (template/template.go `Data`) and the webhook body,
//! version "4" (notify/webhook).

use crate::alert::{go_time, StoredAlert, ZERO_TIME};
use argus_model::{Labels, Millis};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PayloadAlert {
    pub status: String,
    pub labels: Labels,
    pub annotations: Labels,
    pub starts_at: String,
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    pub fingerprint: String,
}

/// The webhook body, field for field (and order) as Alertmanager 0.25 sends it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub receiver: String,
    pub status: String,
    pub alerts: Vec<PayloadAlert>,
    pub group_labels: Labels,
    pub common_labels: Labels,
    pub common_annotations: Labels,
    #[serde(rename = "externalURL")]
    pub external_url: String,
    pub version: String,
    pub group_key: String,
    pub truncated_alerts: u64,
}

impl Message {
    /// `alerts` in notification order; `max_alerts` 0 = all.
    pub fn build(
        receiver: &str,
        group_key: &str,
        group_labels: &Labels,
        alerts: &[StoredAlert],
        external_url: &str,
        max_alerts: u64,
        now: Millis,
    ) -> Message {
        let (kept, truncated) = if max_alerts > 0 && alerts.len() as u64 > max_alerts {
            (
                &alerts[..max_alerts as usize],
                alerts.len() as u64 - max_alerts,
            )
        } else {
            (alerts, 0)
        };
        let payload: Vec<PayloadAlert> = kept
            .iter()
            .map(|a| {
                let resolved = a.resolved(now);
                PayloadAlert {
                    status: if resolved { "resolved" } else { "firing" }.into(),
                    labels: a.labels.clone(),
                    annotations: a.annotations.clone(),
                    starts_at: go_time(a.starts_at),
                    ends_at: if resolved {
                        go_time(a.ends_at)
                    } else {
                        ZERO_TIME.into()
                    },
                    generator_url: a.generator_url.clone(),
                    fingerprint: a.labels.fingerprint_hex(),
                }
            })
            .collect();
        let status = if payload.iter().any(|a| a.status == "firing") {
            "firing"
        } else {
            "resolved"
        };
        Message {
            receiver: strip_braces(receiver),
            status: status.into(),
            common_labels: common(kept.iter().map(|a| &a.labels)),
            common_annotations: common(kept.iter().map(|a| &a.annotations)),
            alerts: payload,
            group_labels: group_labels.clone(),
            external_url: external_url.to_string(),
            version: "4".into(),
            group_key: group_key.to_string(),
            truncated_alerts: truncated,
        }
    }

    pub fn firing(&self) -> impl Iterator<Item = &PayloadAlert> {
        self.alerts.iter().filter(|a| a.status == "firing")
    }
    pub fn resolved(&self) -> impl Iterator<Item = &PayloadAlert> {
        self.alerts.iter().filter(|a| a.status == "resolved")
    }
}

/// `regexp.MustCompile("{.*}").ReplaceAllString(receiver, "")`.
fn strip_braces(s: &str) -> String {
    match (s.find('{'), s.rfind('}')) {
        (Some(a), Some(b)) if a < b => format!("{}{}", &s[..a], &s[b + 1..]),
        _ => s.to_string(),
    }
}

/// Pairs present with the same value in every set.
fn common<'a>(mut sets: impl Iterator<Item = &'a Labels>) -> Labels {
    let Some(first) = sets.next() else {
        return Labels::new();
    };
    let mut pairs: Vec<(String, String)> = first
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for s in sets {
        pairs.retain(|(k, v)| s.get(k) == Some(v.as_str()));
    }
    Labels::from_pairs(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(inst: &str, summary: &str, ends: Millis) -> StoredAlert {
        StoredAlert {
            labels: Labels::from_pairs([
                ("alertname", "ProbeDown"),
                ("instance", inst),
                ("job", "blackbox"),
                ("severity", "critical"),
            ]),
            annotations: Labels::from_pairs([("summary", summary)]),
            starts_at: 1_000,
            ends_at: ends,
            generator_url: String::new(),
            updated_at: 0,
            timeout: false,
        }
    }

    /// Same shape and values as the reference body captured from Alertmanager 0.25.
    #[test]
    fn matches_reference_body() {
        let reference: serde_json::Value =
            serde_json::from_str(include_str!("../tests/data/webhook-resolved.json")).unwrap();
        let alerts = vec![
            a("http://svc-a", "Probe http://svc-a is down", 5_000),
            a("http://svc-b", "Probe svc-b down", 100_000),
        ];
        let m = Message::build(
            "webhook",
            r#"{}:{alertname="ProbeDown"}"#,
            &Labels::from_pairs([("alertname", "ProbeDown")]),
            &alerts,
            "http://vm:19093",
            0,
            10_000,
        );
        let mut got = serde_json::to_value(&m).unwrap();
        let mut want = reference.clone();
        for v in [&mut got, &mut want] {
            for a in v["alerts"].as_array_mut().unwrap() {
                a["startsAt"] = "T".into();
                if a["status"] == "resolved" {
                    a["endsAt"] = "T".into();
                }
                a["generatorURL"] = "".into();
            }
        }
        assert_eq!(got, want);
        // Key order as Alertmanager's.
        let text = serde_json::to_string(&m).unwrap();
        assert!(
            text.starts_with(
                r#"{"receiver":"webhook","status":"firing","alerts":[{"status":"resolved","labels""#
            ),
            "{text}"
        );
        assert!(text.ends_with(r#""externalURL":"http://vm:19093","version":"4","groupKey":"{}:{alertname=\"ProbeDown\"}","truncatedAlerts":0}"#), "{text}");
    }

    #[test]
    fn truncation() {
        let alerts = vec![
            a("1", "x", 100_000),
            a("2", "x", 100_000),
            a("3", "x", 100_000),
        ];
        let m = Message::build("r{x}", "k", &Labels::new(), &alerts, "", 2, 0);
        assert_eq!((m.alerts.len(), m.truncated_alerts), (2, 1));
        assert_eq!(m.receiver, "r");
        assert_eq!(m.common_annotations.get("summary"), Some("x"));
        assert_eq!(m.common_labels.get("instance"), None);
        assert_eq!(m.alerts[0].ends_at, ZERO_TIME);
    }
}
