//! The metric-name index behind the cross-group consistency check.
//!
//! One *member* item per (metric name, type, group holding it), in the `metrics`
//! table: `pk = "type#<name>#<type>"`, `sk = <group id>`, attribute `at` (when it was
//! written). A push touches the index only for names its group did not hold before
//! with the same type: it writes its member items (distinct items, so concurrent group
//! creations never contend), then lists the *other* types' partitions of those names
//! (and of the names their `_count`/`_sum`/`_bucket` suffixes collide with). Those
//! partitions are empty unless there is a conflict, so the check is O(new names in the
//! push), never O(store); a steady stream of pushes to existing groups does not touch
//! the index at all.
//!
//! Every accepted push listed the other types *after* writing its own member, so of
//! two concurrent pushes with incompatible types the later lister sees the earlier
//! one's member: both may be rejected in a tight race, never both accepted.
//! Members whose group does not hold the name count while younger than
//! [`IN_FLIGHT_MS`] (a push between its member write and its group write) and are
//! deleted once older (groups deleted or expired behind the gateway's back).

use argus_expfmt::MetricType;
use argus_model::{Cond, Item, Kv, Millis, StoreError, Table};
use serde_json::json;

pub const GROUP_PK: &str = "group";
pub const IN_FLIGHT_MS: Millis = 10_000;
pub const ALL_TYPES: [MetricType; 5] = [
    MetricType::Counter,
    MetricType::Gauge,
    MetricType::Summary,
    MetricType::Untyped,
    MetricType::Histogram,
];

pub fn pk(name: &str, kind: MetricType) -> String {
    format!("type#{name}#{}", kind.as_str())
}

#[derive(Clone, Debug)]
pub struct Member {
    pub group: String,
    pub at: Millis,
}

pub async fn put_member(
    kv: &dyn Kv,
    name: &str,
    kind: MetricType,
    group: &str,
    at: Millis,
) -> Result<(), StoreError> {
    let mut item = Item::new(pk(name, kind), group);
    item.attrs.insert("at".into(), json!(at));
    kv.put(Table::Metrics, item, Cond::Always).await.map(|_| ())
}

pub async fn delete_member(
    kv: &dyn Kv,
    name: &str,
    kind: MetricType,
    group: &str,
) -> Result<(), StoreError> {
    kv.delete(Table::Metrics, &pk(name, kind), group, Cond::Always)
        .await
}

pub async fn members(kv: &dyn Kv, name: &str, kind: MetricType) -> Result<Vec<Member>, StoreError> {
    let items = kv.query(Table::Metrics, &pk(name, kind), None).await?;
    Ok(items
        .into_iter()
        .map(|i| Member {
            at: i.attrs.get("at").and_then(|v| v.as_i64()).unwrap_or(0),
            group: i.sk,
        })
        .collect())
}
