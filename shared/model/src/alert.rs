//! The alert that flows from the evaluator to the notifier: Alertmanager's v2
//! `postableAlert` shape, so a real Prometheus and Argus' evaluator speak the same.

use crate::labels::Labels;
use crate::time::{self, Millis};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub labels: Labels,
    #[serde(default)]
    pub annotations: Labels,
    /// Unix ms; `None` when the sender did not say (the receiver fills in "now").
    #[serde(default, with = "opt_rfc3339", skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<Millis>,
    #[serde(default, with = "opt_rfc3339", skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Millis>,
    #[serde(
        default,
        rename = "generatorURL",
        skip_serializing_if = "String::is_empty"
    )]
    pub generator_url: String,
}

impl Alert {
    pub fn name(&self) -> &str {
        self.labels.get("alertname").unwrap_or("")
    }
    /// Resolved when `ends_at` is set and not after `now` (Alertmanager's rule).
    pub fn resolved_at(&self, now: Millis) -> bool {
        matches!(self.ends_at, Some(e) if e <= now)
    }
}

mod opt_rfc3339 {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Millis>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(ms) => s.serialize_str(&time::rfc3339(*ms)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Millis>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        match s {
            None => Ok(None),
            Some(s) if s.is_empty() || s.starts_with("0001-01-01") => Ok(None),
            Some(s) => chrono::DateTime::parse_from_rfc3339(&s)
                .map(|t| Some(t.timestamp_millis()))
                .map_err(|e| serde::de::Error::custom(format!("invalid time {s:?}: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postable_alert_json() {
        let j = r#"{"labels":{"alertname":"SiteDown","severity":"page"},
                    "annotations":{"summary":"down"},
                    "startsAt":"2026-11-22T05:00:00.000Z","generatorURL":"http://x/graph"}"#;
        let a: Alert = serde_json::from_str(j).unwrap();
        assert_eq!(a.name(), "SiteDown");
        assert_eq!(a.ends_at, None);
        assert_eq!(a.starts_at, Some(1795323600000));
        let back = serde_json::to_value(&a).unwrap();
        assert_eq!(back["startsAt"], "2026-11-22T05:00:00.000Z");
        assert!(!a.resolved_at(i64::MAX));
    }
}
