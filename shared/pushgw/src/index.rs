//! The metric-name index behind the cross-group consistency check.
//!
//! One item per metric name (`pk = "type#<name>"`, `sk = "type"`) in the `metrics` table:
//! `{type, refs, at}` = the type every group holding that name must use, how many
//! groups hold it (exact when every change goes through the gateway; may only
//! over-count, e.g. after a store-side TTL deletion), and when it was last claimed.
//!
//! A push touches the index only for names its group did not hold before (or holds
//! with another type): a steady stream of pushes to existing groups reads and writes
//! just the group item, so the check is O(new names in the push), never O(store).
//! Only when the index says "another group may hold this name with another type"
//! does the gateway verify by reading the groups (the rejection path), and repair a
//! stale count.

use argus_expfmt::MetricType;
use argus_model::{Cond, Item, Kv, Millis, StoreError, Table};
use serde_json::json;

pub const GROUP_PK: &str = "group";
/// Sort key of index items (DynamoDB key attributes cannot be empty).
pub const INDEX_SK: &str = "type";
/// A claim younger than this with no visible holder is taken as an in-flight push.
pub const IN_FLIGHT_MS: Millis = 10_000;

pub fn pk(name: &str) -> String {
    format!("type#{name}")
}

#[derive(Clone, Copy, Debug)]
pub struct Entry {
    pub kind: MetricType,
    pub refs: i64,
    pub at: Millis,
    pub version: u64,
}

pub fn type_from_str(s: &str) -> Option<MetricType> {
    Some(match s {
        "counter" => MetricType::Counter,
        "gauge" => MetricType::Gauge,
        "summary" => MetricType::Summary,
        "untyped" => MetricType::Untyped,
        "histogram" => MetricType::Histogram,
        _ => return None,
    })
}

pub async fn get(kv: &dyn Kv, name: &str) -> Result<Option<Entry>, StoreError> {
    let Some(item) = kv.get(Table::Metrics, &pk(name), INDEX_SK).await? else { return Ok(None) };
    let kind = item
        .attr_str("type")
        .and_then(type_from_str)
        .ok_or_else(|| StoreError::Permanent(format!("metric index item for {name:?} has no valid type")))?;
    let refs = item.attrs.get("refs").and_then(|v| v.as_i64()).unwrap_or(0);
    let at = item.attrs.get("at").and_then(|v| v.as_i64()).unwrap_or(0);
    Ok(Some(Entry { kind, refs, at, version: item.version }))
}

/// Writes the entry for `name`; `Err(Conflict)` if someone else changed it since `prev`.
pub async fn put(kv: &dyn Kv, name: &str, kind: MetricType, refs: i64, at: Millis, prev: Option<&Entry>) -> Result<(), StoreError> {
    let mut item = Item::new(pk(name), INDEX_SK);
    item.attrs.insert("type".into(), json!(kind.as_str()));
    item.attrs.insert("refs".into(), json!(refs.max(0)));
    item.attrs.insert("at".into(), json!(at));
    item.attrs.insert("kind".into(), json!("metric-type"));
    let cond = match prev {
        Some(e) => {
            item.version = e.version;
            Cond::Version(e.version)
        }
        None => Cond::NotExists,
    };
    kv.put(Table::Metrics, item, cond).await.map(|_| ())
}
