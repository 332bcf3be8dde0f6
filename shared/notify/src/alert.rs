//! The alert as the notifier keeps it (Alertmanager's `types.Alert`): times resolved,
//! `updatedAt`, and whether `endsAt` was a resolve-timeout guess.

use argus_model::time::rfc3339;
use argus_model::{Alert, Labels, Millis};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredAlert {
    pub labels: Labels,
    #[serde(default)]
    pub annotations: Labels,
    /// Unix ms.
    pub starts_at: Millis,
    /// Unix ms; an alert is resolved once `ends_at <= now`.
    pub ends_at: Millis,
    #[serde(default)]
    pub generator_url: String,
    pub updated_at: Millis,
    /// `ends_at` was set by the resolve timeout, not by the sender.
    #[serde(default)]
    pub timeout: bool,
}

/// Why a posted alert was rejected (Alertmanager's `Alert.Validate`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("alert {index} ({labels}): {message}")]
pub struct AlertError {
    pub index: usize,
    pub labels: String,
    pub message: String,
}

impl StoredAlert {
    /// Alertmanager's `postAlerts` defaults: startsAt = now (or endsAt), endsAt = now +
    /// resolve_timeout when absent; then `Validate`.
    pub fn from_posted(
        index: usize,
        a: Alert,
        now: Millis,
        resolve_timeout_ms: i64,
    ) -> Result<StoredAlert, AlertError> {
        let err = |m: &str| AlertError {
            index,
            labels: a.labels.to_string(),
            message: m.to_string(),
        };
        if a.labels.is_empty() {
            return Err(err("at least one label pair required"));
        }
        for (k, _) in a.labels.iter() {
            if !crate::matcher::valid_label_name(k) {
                return Err(err(&format!("invalid label name {k:?}")));
            }
        }
        for (k, _) in a.annotations.iter() {
            if !crate::matcher::valid_label_name(k) {
                return Err(err(&format!("invalid annotation name {k:?}")));
            }
        }
        let starts_at = a.starts_at.or(a.ends_at).unwrap_or(now);
        let (ends_at, timeout) = match a.ends_at {
            Some(e) => (e, false),
            None => (now + resolve_timeout_ms, true),
        };
        if ends_at < starts_at {
            return Err(err("start time must be before end time"));
        }
        Ok(StoredAlert {
            labels: a.labels,
            annotations: a.annotations,
            starts_at,
            ends_at,
            generator_url: a.generator_url,
            updated_at: now,
            timeout,
        })
    }

    pub fn fingerprint(&self) -> u64 {
        self.labels.fingerprint()
    }

    pub fn resolved(&self, now: Millis) -> bool {
        self.ends_at <= now
    }

    /// Alertmanager's `Alert.Merge`: `newer` is the more recently updated one.
    pub fn merge(&self, newer: &StoredAlert) -> StoredAlert {
        if newer.updated_at < self.updated_at {
            return newer.merge(self);
        }
        let mut res = newer.clone();
        if self.starts_at < newer.starts_at {
            res.starts_at = self.starts_at;
        }
        // "Resolved" here is relative to the newer update's time.
        let now = newer.updated_at;
        if newer.resolved(now) {
            if self.resolved(now) && self.ends_at > newer.ends_at {
                res.ends_at = self.ends_at;
            }
        } else if self.ends_at > newer.ends_at && !self.timeout {
            res.ends_at = self.ends_at;
        }
        res
    }

    /// The provider's `Put`: merge with the stored alert when their activity overlaps.
    pub fn merge_into(old: Option<&StoredAlert>, new: StoredAlert) -> StoredAlert {
        match old {
            Some(o)
                if (new.ends_at > o.starts_at && new.ends_at < o.ends_at)
                    || (new.starts_at > o.starts_at && new.starts_at < o.ends_at) =>
            {
                o.merge(&new)
            }
            _ => new,
        }
    }
}

/// Go's `time.Time` JSON form: RFC 3339 with trailing zeros of the fraction dropped.
pub fn go_time(ms: Millis) -> String {
    let s = rfc3339(ms);
    // rfc3339 gives `...:SS.mmmZ`.
    if let Some(rest) = s.strip_suffix('Z') {
        if let Some((base, frac)) = rest.rsplit_once('.') {
            let frac = frac.trim_end_matches('0');
            return if frac.is_empty() {
                format!("{base}Z")
            } else {
                format!("{base}.{frac}Z")
            };
        }
    }
    s
}

/// Go's zero time, printed for the `endsAt` of firing alerts.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Alertmanager's `types.AlertSlice` order: by `job`, then `instance`, then label sets.
pub fn alert_order(a: &Labels, b: &Labels) -> Ordering {
    for key in ["job", "instance"] {
        match (a.get(key), b.get(key)) {
            (None, None) => continue,
            (None, Some(_)) => return Ordering::Greater,
            (Some(_), None) => return Ordering::Less,
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {}
        }
    }
    labels_before(a, b)
}

/// `model.LabelSet.Before`.
fn labels_before(a: &Labels, b: &Labels) -> Ordering {
    if a.len() != b.len() {
        return a.len().cmp(&b.len());
    }
    let mut names: Vec<&str> = a
        .iter()
        .map(|(k, _)| k)
        .chain(b.iter().map(|(k, _)| k))
        .collect();
    names.sort_unstable();
    for n in names {
        match (a.get(n), b.get(n)) {
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {}
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn posted(ends: Option<Millis>) -> Alert {
        Alert {
            labels: Labels::from_pairs([("alertname", "A")]),
            annotations: Labels::new(),
            starts_at: None,
            ends_at: ends,
            generator_url: String::new(),
        }
    }

    #[test]
    fn defaults_and_validation() {
        let a = StoredAlert::from_posted(0, posted(None), 1000, 300_000).unwrap();
        assert_eq!((a.starts_at, a.ends_at, a.timeout), (1000, 301_000, true));
        let a = StoredAlert::from_posted(0, posted(Some(500)), 1000, 300_000).unwrap();
        assert_eq!((a.starts_at, a.ends_at, a.timeout), (500, 500, false));
        assert!(a.resolved(1000));
        let mut bad = posted(None);
        bad.labels = Labels::new();
        assert!(StoredAlert::from_posted(3, bad, 0, 1)
            .unwrap_err()
            .to_string()
            .contains("alert 3"));
        let mut bad = posted(Some(10));
        bad.starts_at = Some(20);
        assert!(StoredAlert::from_posted(0, bad, 0, 1).is_err());
    }

    #[test]
    fn merge_keeps_earliest_start_and_resolves() {
        let first = StoredAlert::from_posted(0, posted(None), 1000, 300_000).unwrap();
        let again = StoredAlert::from_posted(0, posted(None), 61_000, 300_000).unwrap();
        let m = StoredAlert::merge_into(Some(&first), again);
        assert_eq!((m.starts_at, m.ends_at), (1000, 361_000));
        let resolved =
            StoredAlert::from_posted(0, posted(Some(120_000)), 121_000, 300_000).unwrap();
        let m = StoredAlert::merge_into(Some(&m), resolved);
        assert_eq!((m.starts_at, m.ends_at), (1000, 120_000));
        assert!(m.resolved(121_000));
        // A new firing after the old one ended starts a new alert.
        let later = StoredAlert::from_posted(0, posted(None), 500_000, 300_000).unwrap();
        assert_eq!(StoredAlert::merge_into(Some(&m), later).starts_at, 500_000);
    }

    #[test]
    fn go_times_and_order() {
        assert_eq!(go_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(go_time(1_500), "1970-01-01T00:00:01.5Z");
        let a = Labels::from_pairs([("job", "a"), ("instance", "2")]);
        let b = Labels::from_pairs([("job", "a"), ("instance", "10")]);
        let c = Labels::from_pairs([("alertname", "x")]);
        let mut v = vec![c.clone(), a.clone(), b.clone()];
        v.sort_by(alert_order);
        assert_eq!(v, vec![b, a, c]);
    }
}
