//! Consistency checks of one push, as the original's `checkWriteRequest` + client_golang
//! `Gatherers.Gather` would find them (restricted to the group being changed; the
//! cross-group part lives in `index`).

use crate::group::{Group, GroupingKey, StoredFamily, PUSH_FAILURE_TIME, PUSH_TIME};
use argus_expfmt::{
    is_valid_label_name, is_valid_metric_name, Metric, MetricFamily, MetricType, MetricValue,
};
use argus_model::Labels;
use std::collections::{BTreeMap, HashSet};

/// Applies the grouping key to the pushed families: grouping labels override body
/// labels, so body labels named in the key are dropped, and the key itself is added
/// when the group is exposed (`Group::extra_labels`), not stored in every metric.
/// Families with the same name: the last one wins, as in the original's map.
pub fn apply_grouping(
    families: Vec<MetricFamily>,
    key: &GroupingKey,
) -> BTreeMap<String, MetricFamily> {
    let mut out = BTreeMap::new();
    for mut f in families {
        for m in &mut f.metrics {
            if m.labels.iter().any(|(k, _)| key.contains_key(k)) {
                for k in key.keys() {
                    m.labels.remove(k);
                }
            }
        }
        out.insert(f.name.clone(), f);
    }
    out
}

pub fn has_timestamps(families: &BTreeMap<String, MetricFamily>) -> bool {
    families
        .values()
        .any(|f| f.metrics.iter().any(|m| m.timestamp_ms.is_some()))
}

/// Go-like rendering of a metric for error messages: `{ label:<name:"a" value:"b" > gauge:<value:1 > }`.
pub fn describe(m: &Metric, g: &Group) -> String {
    let mut s = String::from("{ ");
    let has_instance = m.labels.get("instance").is_some();
    let mut labels: Vec<(String, String)> =
        m.labels.iter().map(|(k, v)| (k.into(), v.into())).collect();
    for (k, v) in g.extra_labels(has_instance) {
        if let Some(e) = labels.iter_mut().find(|(n, _)| n == k) {
            e.1 = v.to_string();
        } else {
            labels.push((k.into(), v.into()));
        }
    }
    labels.sort();
    for (k, v) in labels {
        s.push_str(&format!("label:<name:{k:?} value:{v:?} > "));
    }
    let kind = m.value.kind().as_str();
    match &m.value {
        MetricValue::Counter(v) | MetricValue::Gauge(v) | MetricValue::Untyped(v) => s.push_str(
            &format!("{kind}:<value:{} > ", argus_expfmt::format_float(*v)),
        ),
        MetricValue::Summary { sum, count, .. } | MetricValue::Histogram { sum, count, .. } => s
            .push_str(&format!(
                "{kind}:<sample_count:{} sample_sum:{} > ",
                argus_expfmt::format_float(*count),
                argus_expfmt::format_float(*sum)
            )),
    }
    s.push('}');
    s
}

/// Checks the group as it would be after the push. Returns the first problem.
pub fn check_group(g: &Group) -> Result<(), String> {
    let mut names: Vec<(&str, MetricType)> = Vec::new();
    for (name, StoredFamily { family: f, .. }) in &g.families {
        if !is_valid_metric_name(name) {
            return Err(format!(
                "collected metric named {name:?} has an invalid metric name"
            ));
        }
        if name == PUSH_TIME || name == PUSH_FAILURE_TIME {
            continue; // replaced by the gateway's own families, as in the original
        }
        names.push((name, f.kind));
        // Duplicates are rare: compare label-set fingerprints first, and only look
        // for the duplicate itself when two fingerprints are equal.
        let mut fps: Vec<u64> = f.metrics.iter().map(|m| m.labels.fingerprint()).collect();
        fps.sort_unstable();
        let maybe_dup = fps.windows(2).any(|w| w[0] == w[1]);
        let mut seen: HashSet<&Labels> = HashSet::new();
        for m in &f.metrics {
            if m.value.kind() != f.kind {
                return Err(format!(
                    "collected metric {name:?} {} is not a {}",
                    describe(m, g),
                    f.kind.proto_name()
                ));
            }
            for (k, _) in m.labels.iter() {
                if !is_valid_label_name(k) || k.starts_with("__") {
                    return Err(format!(
                        "collected metric {name:?} {} has a label with an invalid name: {k}",
                        describe(m, g)
                    ));
                }
                if f.kind == MetricType::Summary && k == "quantile" {
                    return Err(format!(
                        "collected metric {name:?} {} must not have an explicit \"quantile\" label",
                        describe(m, g)
                    ));
                }
            }
            // Body labels named in the grouping key were dropped when it was pushed:
            // the remaining labels identify the series within the group.
            if maybe_dup && !seen.insert(&m.labels) {
                return Err(format!(
                    "collected metric {name:?} {} was collected before with the same name and label values",
                    describe(m, g)
                ));
            }
        }
    }
    // Suffix collisions among the group's own families.
    let kinds: BTreeMap<&str, MetricType> = names.iter().copied().collect();
    for (name, kind) in &names {
        if let Some(msg) = suffix_collision(name, *kind, |n| kinds.get(n).copied()) {
            return Err(msg);
        }
    }
    Ok(())
}

/// client_golang's `checkSuffixCollisions`, in both directions, against the family
/// types `lookup` knows.
pub fn suffix_collision(
    name: &str,
    kind: MetricType,
    lookup: impl Fn(&str) -> Option<MetricType>,
) -> Option<String> {
    for suffix in ["_count", "_sum", "_bucket"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if base.is_empty() {
                continue;
            }
            match lookup(base) {
                Some(MetricType::Summary) if suffix != "_bucket" => {
                    return Some(format!(
                        "collected metric named {name:?} collides with previously collected summary named {base:?}"
                    ))
                }
                Some(MetricType::Histogram) => {
                    return Some(format!(
                        "collected metric named {name:?} collides with previously collected histogram named {base:?}"
                    ))
                }
                _ => {}
            }
        }
    }
    if matches!(kind, MetricType::Summary | MetricType::Histogram) {
        let mut suffixes = vec!["_count", "_sum"];
        if kind == MetricType::Histogram {
            suffixes.push("_bucket");
        }
        for s in suffixes {
            let other = format!("{name}{s}");
            if lookup(&other).is_some() {
                return Some(format!(
                    "collected histogram or summary named {name:?} collides with previously collected metric named {other:?}"
                ));
            }
        }
    }
    None
}

/// The names (with their types) that a suffix collision check of `name` must look at
/// in other groups.
pub fn related_names(name: &str, kind: MetricType) -> Vec<String> {
    let mut out = Vec::new();
    for suffix in ["_count", "_sum", "_bucket"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if !base.is_empty() {
                out.push(base.to_string());
            }
        }
    }
    if matches!(kind, MetricType::Summary | MetricType::Histogram) {
        out.push(format!("{name}_count"));
        out.push(format!("{name}_sum"));
        if kind == MetricType::Histogram {
            out.push(format!("{name}_bucket"));
        }
    }
    out
}
