//! A probe target: the documented item schema of the `targets` table.
//!
//! | attribute | type | meaning |
//! | --- | --- | --- |
//! | `id` | S | key; defaults to the URL |
//! | `url` | S | what to probe (`https://...`, `host:port` for tcp, a name for dns) |
//! | `module` | S | probe module name (`http_2xx` default) |
//! | `labels` | M of S | extra labels on every metric and alert of this target |
//! | `interval` | S | Prometheus duration, e.g. `1m` (default: the schedule's rate) |
//! | `enabled` | BOOL | false pauses probing (default true) |
//! | `locations` | L of S | probe only from these locations (names from `locations:` in argus.yml; default: all) |

use crate::kv::Item;
use crate::time::{self, Millis};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

pub const DEFAULT_MODULE: &str = "http_2xx";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub id: String,
    pub url: String,
    #[serde(default = "default_module")]
    pub module: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(
        default,
        with = "time::serde_duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub interval: Option<Duration>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Locations allowed to probe this target; empty: every location.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<String>,
}

fn default_module() -> String {
    DEFAULT_MODULE.to_string()
}
fn yes() -> bool {
    true
}

/// Why a targets-table item could not be read; names the item and field.
#[derive(Debug, thiserror::Error)]
#[error("target item {id:?}: {message}")]
pub struct TargetError {
    pub id: String,
    pub message: String,
}

impl Target {
    pub fn new(url: &str) -> Self {
        Target {
            id: url.to_string(),
            url: url.to_string(),
            module: default_module(),
            labels: BTreeMap::new(),
            interval: None,
            enabled: true,
            locations: Vec::new(),
        }
    }

    pub fn to_item(&self) -> Item {
        let mut v = serde_json::to_value(self).expect("target serializes");
        let attrs = v.as_object_mut().map(std::mem::take).unwrap_or_default();
        let mut item = Item::new(self.id.clone(), "");
        item.attrs = attrs;
        item.attrs.remove("id");
        item
    }

    pub fn from_item(item: &Item) -> Result<Target, TargetError> {
        let mut attrs = item.attrs.clone();
        attrs.insert("id".into(), item.pk.clone().into());
        let t: Target =
            serde_json::from_value(serde_json::Value::Object(attrs)).map_err(|e| TargetError {
                id: item.pk.clone(),
                message: e.to_string(),
            })?;
        if t.url.trim().is_empty() {
            return Err(TargetError {
                id: t.id,
                message: "field `url` is empty".into(),
            });
        }
        Ok(t)
    }
}

impl Target {
    /// Whether the probe running at `location` probes this target (`None`: a single,
    /// unnamed location probes everything).
    pub fn probed_from(&self, location: Option<&str>) -> bool {
        match location {
            None => true,
            Some(l) => self.locations.is_empty() || self.locations.iter().any(|x| x == l),
        }
    }

    /// The first of the target's `locations` that is not in `known`, as an error naming
    /// the item and the field.
    pub fn check_locations(&self, known: &[String]) -> Result<(), TargetError> {
        for (i, l) in self.locations.iter().enumerate() {
            if !known.iter().any(|k| k == l) {
                let message = if known.is_empty() {
                    format!(
                        "field `locations[{i}]`: unknown location {l:?} (argus.yml configures no `locations`)"
                    )
                } else {
                    format!(
                        "field `locations[{i}]`: unknown location {l:?} (configured: {})",
                        known.join(", ")
                    )
                };
                return Err(TargetError {
                    id: self.id.clone(),
                    message,
                });
            }
        }
        Ok(())
    }

    /// Stateless schedule: a run at `now` on a schedule of period `period_ms` probes this
    /// target when a multiple of its interval falls in `(now - period, now]`. Targets
    /// without an interval (or with one shorter than the period) run every time. No
    /// per-target "last run" bookkeeping is written.
    pub fn due_in_run(&self, now: Millis, period_ms: i64) -> bool {
        if !self.enabled {
            return false;
        }
        let Some(iv) = self.interval else { return true };
        let iv = crate::time::millis(iv);
        if iv <= period_ms || period_ms <= 0 {
            return true;
        }
        // Spread targets with the same interval over the interval by their id.
        let offset = (fnv(&self.id) % iv as u64) as i64;
        let t = now - offset;
        t.div_euclid(iv) != (t - period_ms).div_euclid(iv)
    }
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(14695981039346656037u64, |h, b| {
        (h ^ b as u64).wrapping_mul(1099511628211)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_round_trip() {
        let mut t = Target::new("https://example.com");
        t.labels.insert("team".into(), "web".into());
        t.interval = Some(Duration::from_secs(300));
        let item = t.to_item();
        assert_eq!(item.attr_str("interval"), Some("5m"));
        assert_eq!(Target::from_item(&item).unwrap(), t);
    }

    #[test]
    fn locations_round_trip_and_check() {
        let mut t = Target::new("https://example.com");
        assert!(
            t.to_item().attrs.get("locations").is_none(),
            "old items unchanged"
        );
        assert!(t.probed_from(Some("eu-west-1")) && t.probed_from(None));
        t.locations = vec!["eu-west-1".into(), "us-east-1".into()];
        let back = Target::from_item(&t.to_item()).unwrap();
        assert_eq!(back, t);
        assert!(t.probed_from(Some("us-east-1")));
        assert!(!t.probed_from(Some("ap-south-1")));
        let known = vec!["eu-west-1".to_string(), "us-east-1".to_string()];
        assert!(t.check_locations(&known).is_ok());
        t.locations.push("mars-1".into());
        let e = t.check_locations(&known).unwrap_err().to_string();
        assert!(
            e.contains("\"https://example.com\"")
                && e.contains("locations[2]")
                && e.contains("mars-1"),
            "{e}"
        );
    }

    #[test]
    fn bad_item_names_the_field() {
        let item = Item::new("x", "").with_attr("url", 5);
        let e = Target::from_item(&item).unwrap_err().to_string();
        assert!(e.contains("\"x\"") && e.contains("invalid type"), "{e}");
        let item = Item::new("y", "")
            .with_attr("url", "https://y")
            .with_attr("interval", "5q");
        assert!(Target::from_item(&item)
            .unwrap_err()
            .to_string()
            .contains("duration"));
    }

    #[test]
    fn due_in_run_probes_once_per_interval() {
        let mut t = Target::new("https://example.com");
        t.interval = Some(Duration::from_secs(300));
        // Over an hour of 1-minute runs, a 5-minute target is probed exactly 12 times.
        let runs = (0..60)
            .filter(|i| t.due_in_run(1_800_000_000_000 + i * 60_000, 60_000))
            .count();
        assert_eq!(runs, 12);
        t.interval = None;
        assert!(t.due_in_run(0, 60_000));
        t.enabled = false;
        assert!(!t.due_in_run(0, 60_000));
    }
}
