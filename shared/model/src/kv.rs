//! The storage port. Every table is a set of items keyed by (partition key, sort key),
//! with optimistic versions for conditional writes and an optional expiry.
//!
//! Two real backends implement it (in `argus-store`): DynamoDB and an embedded redb file.
//! Typed stores (targets, metric groups, rule state, notification log...) are thin layers
//! over this one trait, so both backends have exactly the same semantics.

use crate::error::StoreError;
use crate::schema::Table;
use crate::time::{Millis, UnixSecs};
use async_trait::async_trait;
use serde_json::{Map, Value};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Item {
    pub pk: String,
    /// Empty for tables without a sort key (`targets`).
    pub sk: String,
    /// Plain attributes: native DynamoDB attributes (S, N, BOOL, M, L), readable and
    /// editable by users in the console. Keep them small.
    pub attrs: Map<String, Value>,
    /// Opaque payload (callers compress it), DynamoDB binary attribute `data`.
    pub data: Option<Vec<u8>>,
    /// Optimistic-concurrency version as read (0: never stored). See [`Cond`].
    pub version: u64,
    /// Unix seconds after which the item is dead (DynamoDB TTL attribute `ttl`).
    /// Expired items may still be returned (DynamoDB deletes lazily): check [`Item::live`].
    pub expires_at: Option<UnixSecs>,
}

impl Item {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Item {
            pk: pk.into(),
            sk: sk.into(),
            ..Default::default()
        }
    }

    pub fn live(&self, now: Millis) -> bool {
        self.expires_at.is_none_or(|t| t.as_millis() > now)
    }

    pub fn attr_str(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).and_then(Value::as_str)
    }

    pub fn with_attr(mut self, name: &str, v: impl Into<Value>) -> Self {
        self.attrs.insert(name.to_string(), v.into());
        self
    }

    /// Approximate stored size in bytes, counted the way DynamoDB bills (names + values).
    pub fn approx_size(&self) -> usize {
        fn val(v: &Value) -> usize {
            match v {
                Value::Null | Value::Bool(_) => 1,
                Value::Number(n) => n.to_string().len().div_ceil(2) + 1,
                Value::String(s) => s.len(),
                Value::Array(a) => 3 + a.iter().map(|x| 1 + val(x)).sum::<usize>(),
                Value::Object(o) => 3 + o.iter().map(|(k, x)| 1 + k.len() + val(x)).sum::<usize>(),
            }
        }
        2 + self.pk.len()
            + 2 + self.sk.len()
            + self.attrs.iter().map(|(k, v)| k.len() + val(v)).sum::<usize>()
            + self.data.as_ref().map_or(0, |d| 4 + d.len())
            + 8 // version
            + if self.expires_at.is_some() { 8 } else { 0 }
    }
}

/// Condition on a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cond {
    /// Unconditional; the stored version becomes `item.version + 1`.
    Always,
    /// Only if no item exists under the key; the stored version becomes 1.
    NotExists,
    /// Only if the stored version equals this one (0: does not exist); it becomes v + 1.
    Version(u64),
}

impl Cond {
    pub fn next_version(self, item: &Item) -> u64 {
        match self {
            Cond::Always => item.version + 1,
            Cond::NotExists => 1,
            Cond::Version(v) => v + 1,
        }
    }
}

#[async_trait]
pub trait Kv: Send + Sync {
    async fn get(&self, table: Table, pk: &str, sk: &str) -> Result<Option<Item>, StoreError>;

    /// Several items of one partition by sort key, in the order asked (`None` for an
    /// absent one). The default reads them concurrently with [`Kv::get`]; the embedded
    /// store reads them all in one read transaction.
    async fn get_many(
        &self,
        table: Table,
        pk: &str,
        sks: &[String],
    ) -> Result<Vec<Option<Item>>, StoreError> {
        futures::future::try_join_all(sks.iter().map(|sk| self.get(table, pk, sk))).await
    }

    /// Writes one item. Returns the version now stored, or `StoreError::Conflict`.
    async fn put(&self, table: Table, item: Item, cond: Cond) -> Result<u64, StoreError>;

    /// Unconditional batch write (results, sample chunks). All or an error; the
    /// DynamoDB backend retries unprocessed items.
    async fn put_batch(&self, table: Table, items: Vec<Item>) -> Result<(), StoreError>;

    /// Several conditional writes, each checked and answered on its own exactly as
    /// [`Kv::put`] would (one losing its condition does not stop the others), in order.
    /// The outer error is a failure of the whole call (nothing, or only some, written:
    /// callers retry as after a failed `put`). The embedded store applies them in one
    /// transaction with one commit (a request's writes share one fsync); the default
    /// writes them one by one, DynamoDB concurrently.
    async fn put_many(
        &self,
        writes: Vec<(Table, Item, Cond)>,
    ) -> Result<Vec<Result<u64, StoreError>>, StoreError> {
        let mut out = Vec::with_capacity(writes.len());
        for (table, item, cond) in writes {
            match self.put(table, item, cond).await {
                Ok(v) => out.push(Ok(v)),
                Err(e @ StoreError::Conflict(_)) => out.push(Err(e)),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Deletes one item (no error when absent, unless `cond` says it must exist).
    async fn delete(&self, table: Table, pk: &str, sk: &str, cond: Cond) -> Result<(), StoreError>;

    /// Items of one partition with sort key ≥ `sk_from` (all when `None`), ascending.
    async fn query(
        &self,
        table: Table,
        pk: &str,
        sk_from: Option<&str>,
    ) -> Result<Vec<Item>, StoreError>;

    /// Items of one partition with `sk_from` ≤ sort key < `sk_to`, ascending (the TSDB
    /// reads a time span of blocks with it). The default filters [`Kv::query`]; both
    /// backends override it so the store reads only the span.
    async fn query_between(
        &self,
        table: Table,
        pk: &str,
        sk_from: &str,
        sk_to: &str,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = self.query(table, pk, Some(sk_from)).await?;
        items.retain(|i| i.sk.as_str() < sk_to);
        Ok(items)
    }

    /// Every item of the table (small tables only: targets, metric groups, silences).
    async fn scan(&self, table: Table) -> Result<Vec<Item>, StoreError>;

    /// Makes every answered write durable before it returns. A no-op where an answered
    /// write already is (DynamoDB; the embedded store fsyncing every commit); the
    /// embedded store with `Durability::Interval` commits durably now. The notifier
    /// calls it between claiming a notification and sending it.
    async fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
