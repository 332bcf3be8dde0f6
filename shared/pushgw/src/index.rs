//! The metric-name index behind the cross-group consistency check.
//!
//! Per metric name, in the `metrics` table under partition `type#<name>`:
//! - one *type* item (`sk = "type"`): the type every group holding the name must use;
//! - one *member* item per group holding the name (`sk = <group id>`, attributes
//!   `type`, `at`).
//!
//! A push touches the index only for names its group did not hold before (or holds
//! with another type): it writes its own member items (distinct items, so concurrent
//! group creations never contend) and reads the type item. A steady stream of pushes
//! to existing groups reads and writes just the group item: the check is O(new names
//! in the push), never O(store). Only when the type item disagrees does the gateway
//! list that name's members and read their groups (the rejection path), cleaning up
//! stale members; see `Gateway::claim` for the protocol that keeps two concurrent
//! re-typings from both succeeding.

use argus_expfmt::MetricType;
use argus_model::{Cond, Item, Kv, Millis, StoreError, Table};
use serde_json::json;

pub const GROUP_PK: &str = "group";
/// Sort key of type items (DynamoDB key attributes cannot be empty).
pub const TYPE_SK: &str = "type";
/// A member younger than this whose group does not (yet) hold the name counts as an
/// in-flight push.
pub const IN_FLIGHT_MS: Millis = 10_000;

pub fn pk(name: &str) -> String {
    format!("type#{name}")
}

#[derive(Clone, Copy, Debug)]
pub struct TypeEntry {
    pub kind: MetricType,
    pub version: u64,
}

#[derive(Clone, Debug)]
pub struct Member {
    pub group: String,
    pub kind: MetricType,
    pub at: Millis,
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

fn kind_of(item: &Item) -> Result<MetricType, StoreError> {
    item.attr_str("type")
        .and_then(type_from_str)
        .ok_or_else(|| {
            StoreError::Permanent(format!(
                "metric index item {}/{} has no valid type",
                item.pk, item.sk
            ))
        })
}

pub async fn get_type(kv: &dyn Kv, name: &str) -> Result<Option<TypeEntry>, StoreError> {
    let Some(item) = kv.get(Table::Metrics, &pk(name), TYPE_SK).await? else {
        return Ok(None);
    };
    Ok(Some(TypeEntry {
        kind: kind_of(&item)?,
        version: item.version,
    }))
}

/// Writes the type item; `Err(Conflict)` if it changed since `prev` (or exists when
/// `prev` is `None`).
pub async fn put_type(
    kv: &dyn Kv,
    name: &str,
    kind: MetricType,
    prev: Option<&TypeEntry>,
) -> Result<(), StoreError> {
    let mut item = Item::new(pk(name), TYPE_SK);
    item.attrs.insert("type".into(), json!(kind.as_str()));
    let cond = match prev {
        Some(e) => {
            item.version = e.version;
            Cond::Version(e.version)
        }
        None => Cond::NotExists,
    };
    kv.put(Table::Metrics, item, cond).await.map(|_| ())
}

pub async fn put_member(
    kv: &dyn Kv,
    name: &str,
    group: &str,
    kind: MetricType,
    at: Millis,
) -> Result<(), StoreError> {
    let mut item = Item::new(pk(name), group);
    item.attrs.insert("type".into(), json!(kind.as_str()));
    item.attrs.insert("at".into(), json!(at));
    kv.put(Table::Metrics, item, Cond::Always).await.map(|_| ())
}

pub async fn delete_member(kv: &dyn Kv, name: &str, group: &str) -> Result<(), StoreError> {
    kv.delete(Table::Metrics, &pk(name), group, Cond::Always)
        .await
}

pub async fn members(kv: &dyn Kv, name: &str) -> Result<Vec<Member>, StoreError> {
    let items = kv.query(Table::Metrics, &pk(name), None).await?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if item.sk == TYPE_SK {
            continue;
        }
        out.push(Member {
            kind: kind_of(&item)?,
            at: item.attrs.get("at").and_then(|v| v.as_i64()).unwrap_or(0),
            group: item.sk,
        });
    }
    Ok(out)
}
