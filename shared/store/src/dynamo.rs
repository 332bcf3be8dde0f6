//! The DynamoDB backend. Items map to native attributes so the `targets` table stays
//! readable and editable in the console; payloads go to the binary attribute `data`.

use argus_model::schema::{TableSpec, PAYLOAD_ATTR, TTL_ATTR, VERSION_ATTR};
use argus_model::{Cond, Item, Kv, StoreError, Table};
use async_trait::async_trait;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::retries::classifiers::{ClassifyRetry, RetryAction};
use serde_json::{Map, Number, Value};
use std::collections::HashMap;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct DynamoKv {
    client: Client,
    prefix: String,
}

impl DynamoKv {
    /// `prefix` is prepended to every table name (`argus-` → `argus-targets`...).
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        DynamoKv {
            client,
            prefix: prefix.into(),
        }
    }

    /// The client from the shared SDK configuration (its [`crate::AwsLimits`]), with
    /// `TransactionConflictException` retried like a throttle (see
    /// [`TransactionConflictIsTransient`]).
    pub fn from_conf(conf: &aws_config::SdkConfig, prefix: impl Into<String>) -> Self {
        let conf = aws_sdk_dynamodb::config::Builder::from(conf)
            .retry_classifier(TransactionConflictIsTransient)
            .build();
        Self::new(Client::from_conf(conf), prefix)
    }

    pub fn table_name(&self, t: Table) -> String {
        format!("{}{}", self.prefix, t.name())
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// The SDK's standard classifiers retry throttling, 5xx and timeouts, not
/// `TransactionConflictException`, which DynamoDB answers to a single-item write whose
/// item is part of someone's ongoing transaction: AWS documents it as safe to retry, and
/// it says nothing about our condition. This classifier makes the SDK retry it within
/// the same attempt limits.
#[derive(Debug)]
pub struct TransactionConflictIsTransient;

impl ClassifyRetry for TransactionConflictIsTransient {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        use aws_sdk_dynamodb::operation::{
            batch_write_item::BatchWriteItemError, delete_item::DeleteItemError,
            put_item::PutItemError, update_item::UpdateItemError,
        };
        let Some(Err(err)) = ctx.output_or_error() else {
            return RetryAction::NoActionIndicated;
        };
        let Some(op) = err.as_operation_error() else {
            return RetryAction::NoActionIndicated;
        };
        let code = op
            .downcast_ref::<PutItemError>()
            .and_then(|e| e.code())
            .or_else(|| op.downcast_ref::<DeleteItemError>().and_then(|e| e.code()))
            .or_else(|| op.downcast_ref::<UpdateItemError>().and_then(|e| e.code()))
            .or_else(|| {
                op.downcast_ref::<BatchWriteItemError>()
                    .and_then(|e| e.code())
            });
        if code == Some("TransactionConflictException") {
            RetryAction::transient_error()
        } else {
            RetryAction::NoActionIndicated
        }
    }

    fn name(&self) -> &'static str {
        "TransactionConflictException is transient"
    }
}

/// Maps SDK errors: a failed condition → Conflict; throttling, 5xx, network, timeouts and
/// `TransactionConflictException` (the item is in someone's transaction: try again, it is
/// not a lost race) → Transient; the rest (validation, missing table...) → Permanent.
pub(crate) fn classify<E>(e: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StoreError::Transient(format!("dynamodb: {}", e))
        }
        SdkError::ServiceError(se) => {
            let err = se.err();
            let code = err.code().unwrap_or("");
            let msg = format!("dynamodb {code}: {}", err.message().unwrap_or(""));
            match code {
                "ConditionalCheckFailedException" => StoreError::Conflict(msg),
                "TransactionConflictException"
                | "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "InternalServerError"
                | "ServiceUnavailable"
                | "LimitExceededException" => StoreError::Transient(msg),
                _ if se.raw().status().is_server_error() => StoreError::Transient(msg),
                _ => StoreError::Permanent(msg),
            }
        }
        _ => StoreError::Permanent(format!("dynamodb: {e}")),
    }
}

/// A conditional put carries a random token of its own in this attribute, so that its
/// retry can tell its own applied write from an identical one by another writer.
/// Not part of `Item` (never in `attrs`); readers of the table may ignore it.
///
/// The SDK retries a write whose answer was lost (a 500 or a timeout after DynamoDB
/// applied it); the retry then fails its own condition, because the first attempt moved
/// the version. A failed condition is ours when the stored item carries this write's
/// token at the version it wrote; another writer's item, even with the same content,
/// never does.
pub const WRITE_TOKEN_ATTR: &str = "_wt";

/// A `Cond` as a DynamoDB condition expression (none for `Cond::Always`).
struct Condition {
    expression: &'static str,
    names: HashMap<String, String>,
    values: Option<HashMap<String, AttributeValue>>,
}

impl Condition {
    fn of(cond: Cond, spec: &TableSpec) -> Option<Condition> {
        match cond {
            Cond::Always => None,
            Cond::NotExists | Cond::Version(0) => Some(Condition {
                expression: "attribute_not_exists(#pk)",
                names: HashMap::from([("#pk".to_string(), spec.pk.to_string())]),
                values: None,
            }),
            Cond::Version(v) => Some(Condition {
                expression: "#ver = :ver",
                names: HashMap::from([("#ver".to_string(), VERSION_ATTR.to_string())]),
                values: Some(HashMap::from([(
                    ":ver".to_string(),
                    AttributeValue::N(v.to_string()),
                )])),
            }),
        }
    }
}

fn to_av(v: &Value) -> AttributeValue {
    match v {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(a) => AttributeValue::L(a.iter().map(to_av).collect()),
        Value::Object(o) => {
            AttributeValue::M(o.iter().map(|(k, v)| (k.clone(), to_av(v))).collect())
        }
    }
}

fn from_av(v: &AttributeValue) -> Value {
    match v {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => n
            .parse::<i64>()
            .map(Value::from)
            .ok()
            .or_else(|| {
                n.parse::<f64>()
                    .ok()
                    .and_then(Number::from_f64)
                    .map(Value::Number)
            })
            .unwrap_or_else(|| Value::String(n.clone())),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::L(l) => Value::Array(l.iter().map(from_av).collect()),
        AttributeValue::M(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), from_av(v))).collect())
        }
        AttributeValue::Ss(s) => Value::Array(s.iter().cloned().map(Value::String).collect()),
        AttributeValue::Ns(s) => Value::Array(s.iter().cloned().map(Value::String).collect()),
        _ => Value::Null,
    }
}

fn key_map(spec: &TableSpec, pk: &str, sk: &str) -> HashMap<String, AttributeValue> {
    let mut m = HashMap::new();
    m.insert(spec.pk.to_string(), AttributeValue::S(pk.to_string()));
    if let Some(s) = spec.sk {
        m.insert(s.to_string(), AttributeValue::S(sk.to_string()));
    }
    m
}

fn to_dynamo(spec: &TableSpec, item: &Item, version: u64) -> HashMap<String, AttributeValue> {
    let mut m = key_map(spec, &item.pk, &item.sk);
    for (k, v) in &item.attrs {
        if k != spec.pk && Some(k.as_str()) != spec.sk {
            m.insert(k.clone(), to_av(v));
        }
    }
    if let Some(d) = &item.data {
        m.insert(PAYLOAD_ATTR.into(), AttributeValue::B(Blob::new(d.clone())));
    }
    m.insert(VERSION_ATTR.into(), AttributeValue::N(version.to_string()));
    if let Some(t) = item.expires_at {
        m.insert(TTL_ATTR.into(), AttributeValue::N(t.0.to_string()));
    }
    m
}

fn from_dynamo(spec: &TableSpec, m: &HashMap<String, AttributeValue>) -> Result<Item, StoreError> {
    let s = |name: &str| m.get(name).and_then(|v| v.as_s().ok()).cloned();
    let pk = s(spec.pk).ok_or_else(|| {
        StoreError::Permanent(format!("item without key `{}` in {}", spec.pk, spec.name))
    })?;
    let sk = spec.sk.and_then(s).unwrap_or_default();
    let num = |name: &str| {
        m.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
    };
    let mut attrs = Map::new();
    for (k, v) in m {
        if k == spec.pk
            || Some(k.as_str()) == spec.sk
            || k == PAYLOAD_ATTR
            || k == VERSION_ATTR
            || k == TTL_ATTR
            || k == WRITE_TOKEN_ATTR
        {
            continue;
        }
        attrs.insert(k.clone(), from_av(v));
    }
    Ok(Item {
        pk,
        sk,
        attrs,
        data: m
            .get(PAYLOAD_ATTR)
            .and_then(|v| v.as_b().ok())
            .map(|b| b.as_ref().to_vec()),
        version: num(VERSION_ATTR).unwrap_or(0).max(0) as u64,
        expires_at: num(TTL_ATTR).map(argus_model::UnixSecs),
    })
}

#[async_trait]
impl Kv for DynamoKv {
    async fn get(&self, table: Table, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let spec = table.spec();
        let out = self
            .client
            .get_item()
            .table_name(self.table_name(table))
            .set_key(Some(key_map(spec, pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        out.item.as_ref().map(|m| from_dynamo(spec, m)).transpose()
    }

    async fn put(&self, table: Table, item: Item, cond: Cond) -> Result<u64, StoreError> {
        let spec = table.spec();
        let version = cond.next_version(&item);
        let mut attrs = to_dynamo(spec, &item, version);
        let token = (cond != Cond::Always).then(|| format!("{:016x}", rand::random::<u64>()));
        if let Some(t) = &token {
            attrs.insert(WRITE_TOKEN_ATTR.into(), AttributeValue::S(t.clone()));
        }
        let mut req = self
            .client
            .put_item()
            .table_name(self.table_name(table))
            .set_item(Some(attrs));
        if let Some(c) = Condition::of(cond, spec) {
            req = req
                .condition_expression(c.expression)
                .set_expression_attribute_names(Some(c.names))
                .set_expression_attribute_values(c.values);
        }
        match (req.send().await.map_err(classify), token) {
            (Ok(_), _) => Ok(version),
            (Err(StoreError::Conflict(msg)), Some(token)) => {
                let out = self
                    .client
                    .get_item()
                    .table_name(self.table_name(table))
                    .set_key(Some(key_map(spec, &item.pk, &item.sk)))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(classify)?;
                let stored = out.item.unwrap_or_default();
                let own = stored.get(WRITE_TOKEN_ATTR).and_then(|v| v.as_s().ok()) == Some(&token)
                    && stored.get(VERSION_ATTR).and_then(|v| v.as_n().ok())
                        == Some(&version.to_string());
                if own {
                    tracing::debug!(table = table.name(), pk = %item.pk, "a retried write found itself applied");
                    Ok(version)
                } else {
                    Err(StoreError::Conflict(msg))
                }
            }
            (Err(e), _) => Err(e),
        }
    }

    /// Concurrent conditional puts (at most 16 in flight), answered in order. Writes to
    /// one key more than once in a call are made one after the other instead, so each
    /// sees the one before (as in the embedded store's transaction).
    async fn put_many(
        &self,
        writes: Vec<(Table, Item, Cond)>,
    ) -> Result<Vec<Result<u64, StoreError>>, StoreError> {
        use futures::StreamExt;
        let mut keys = std::collections::HashSet::new();
        let distinct = writes
            .iter()
            .all(|(t, i, _)| keys.insert((t.name(), i.pk.as_str(), i.sk.as_str())));
        let mut out = Vec::with_capacity(writes.len());
        if !distinct {
            for (t, item, cond) in writes {
                match self.put(t, item, cond).await {
                    Err(e) if !matches!(e, StoreError::Conflict(_)) => return Err(e),
                    r => out.push(r),
                }
            }
            return Ok(out);
        }
        let mut results = futures::stream::iter(writes)
            .map(|(t, item, cond)| self.put(t, item, cond))
            .buffered(16);
        while let Some(r) = results.next().await {
            match r {
                Err(e) if !matches!(e, StoreError::Conflict(_)) => return Err(e),
                r => out.push(r),
            }
        }
        Ok(out)
    }

    async fn put_batch(&self, table: Table, items: Vec<Item>) -> Result<(), StoreError> {
        let spec = table.spec();
        let name = self.table_name(table);
        for chunk in items.chunks(25) {
            let mut pending: Vec<WriteRequest> = chunk
                .iter()
                .map(|i| {
                    let put = PutRequest::builder()
                        .set_item(Some(to_dynamo(spec, i, i.version + 1)))
                        .build()
                        .expect("item is set");
                    WriteRequest::builder().put_request(put).build()
                })
                .collect();
            let mut attempt = 0u32;
            while !pending.is_empty() {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(name.clone(), pending)
                    .send()
                    .await
                    .map_err(classify)?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&name))
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                attempt += 1;
                if attempt > 8 {
                    return Err(StoreError::Transient(format!(
                        "{} items unprocessed after retries",
                        pending.len()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(25 << attempt.min(6))).await;
            }
        }
        Ok(())
    }

    async fn delete(&self, table: Table, pk: &str, sk: &str, cond: Cond) -> Result<(), StoreError> {
        let spec = table.spec();
        let mut req = self
            .client
            .delete_item()
            .table_name(self.table_name(table))
            .set_key(Some(key_map(spec, pk, sk)));
        // Deleting "only if absent" is a no-op, as in the embedded store.
        if let Some(c) = Condition::of(cond, spec).filter(|_| cond != Cond::NotExists) {
            req = req
                .condition_expression(c.expression)
                .set_expression_attribute_names(Some(c.names))
                .set_expression_attribute_values(c.values);
        }
        match req.send().await.map_err(classify) {
            Ok(_) => Ok(()),
            // A retried delete whose first attempt was applied (answered 500 or too
            // late) fails its condition on an item that is gone: what it asked for.
            // An item still there (at another version) is a real lost race.
            Err(StoreError::Conflict(msg)) if matches!(cond, Cond::Version(v) if v > 0) => {
                match self.get(table, pk, sk).await? {
                    None => Ok(()),
                    Some(_) => Err(StoreError::Conflict(msg)),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn query(
        &self,
        table: Table,
        pk: &str,
        sk_from: Option<&str>,
    ) -> Result<Vec<Item>, StoreError> {
        let spec = table.spec();
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let mut req = self
                .client
                .query()
                .table_name(self.table_name(table))
                .consistent_read(true)
                .expression_attribute_names("#pk", spec.pk)
                .expression_attribute_values(":pk", AttributeValue::S(pk.to_string()))
                .set_exclusive_start_key(start.take());
            match (sk_from, spec.sk) {
                (Some(from), Some(sk)) => {
                    req = req
                        .key_condition_expression("#pk = :pk AND #sk >= :from")
                        .expression_attribute_names("#sk", sk)
                        .expression_attribute_values(":from", AttributeValue::S(from.to_string()));
                }
                _ => req = req.key_condition_expression("#pk = :pk"),
            }
            let page = req.send().await.map_err(classify)?;
            for m in page.items() {
                out.push(from_dynamo(spec, m)?);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }

    async fn query_between(
        &self,
        table: Table,
        pk: &str,
        sk_from: &str,
        sk_to: &str,
    ) -> Result<Vec<Item>, StoreError> {
        let spec = table.spec();
        let Some(sk) = spec.sk else {
            return self.query(table, pk, None).await;
        };
        let mut out = Vec::new();
        if sk_to <= sk_from {
            return Ok(out);
        }
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            // BETWEEN is inclusive: items equal to `sk_to` are dropped below.
            let page = self
                .client
                .query()
                .table_name(self.table_name(table))
                .consistent_read(true)
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
                .expression_attribute_names("#pk", spec.pk)
                .expression_attribute_names("#sk", sk)
                .expression_attribute_values(":pk", AttributeValue::S(pk.to_string()))
                .expression_attribute_values(":from", AttributeValue::S(sk_from.to_string()))
                .expression_attribute_values(":to", AttributeValue::S(sk_to.to_string()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(classify)?;
            for m in page.items() {
                let item = from_dynamo(spec, m)?;
                if item.sk.as_str() < sk_to {
                    out.push(item);
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }

    async fn scan(&self, table: Table) -> Result<Vec<Item>, StoreError> {
        let spec = table.spec();
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(self.table_name(table))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(classify)?;
            for m in page.items() {
                out.push(from_dynamo(spec, m)?);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        if spec.sk.is_some() {
            out.sort_by(|a, b| (&a.pk, &a.sk).cmp(&(&b.pk, &b.sk)));
        } else {
            out.sort_by(|a, b| a.pk.cmp(&b.pk));
        }
        Ok(out)
    }
}
