//! A fault-injecting HTTP proxy for the AWS APIs, in front of moto: the faults the
//! emulator cannot produce (throttling, 5xx, transaction conflicts, `UnprocessedItems`,
//! answers slower than the SDK's attempt timeout, connection resets, and errors after
//! the real call was applied).
//!
//! The operation of each request is read the way the services route it: DynamoDB's JSON
//! protocol names it in `X-Amz-Target` (`DynamoDB_20120810.PutItem` → `PutItem`), SNS'
//! query protocol in the `Action` form field (`Publish`). Faults are chosen per
//! operation, first from a scripted sequence (the next N requests of that operation get
//! exactly these answers), then from rates (a seeded random draw, so a run is
//! reproducible). Every injected fault is counted by kind, every request by operation.
//!
//! Error bodies are the services' own wire formats (DynamoDB: `{"__type": ..,
//! "message": ..}` with the status AWS uses; SNS: the query protocol's `ErrorResponse`
//! XML), so the SDK classifies them exactly as it would real ones.

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// One injected answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// DynamoDB 400 `ProvisionedThroughputExceededException` (not forwarded).
    ProvisionedThroughputExceeded,
    /// DynamoDB 400 `ThrottlingException` (not forwarded).
    Throttling,
    /// DynamoDB 400 `RequestLimitExceeded` (not forwarded).
    RequestLimitExceeded,
    /// DynamoDB 500 `InternalServerError` (not forwarded).
    InternalError,
    /// DynamoDB 503 `ServiceUnavailable` (not forwarded).
    Unavailable,
    /// DynamoDB 400 `TransactionConflictException` (not forwarded): the item is part of
    /// an ongoing transaction; retryable, and not a failed condition.
    TransactionConflict,
    /// BatchWriteItem: only a subset of each table's requests is forwarded (and so
    /// written); the rest comes back in `UnprocessedItems`.
    Unprocessed,
    /// Forwarded (moto applies it), then the answer is held this long: past the SDK's
    /// attempt timeout, the client gives up on a request that did happen.
    Slow(Duration),
    /// The connection is reset (RST) without an answer (not forwarded).
    Reset,
    /// Forwarded and applied, then answered 500 `InternalServerError` (DynamoDB) or
    /// `InternalError` (SNS): the write happened but the client sees an error.
    AfterCall,
    /// SNS 400 `Throttling` (not forwarded).
    SnsThrottling,
    /// SNS 500 `InternalError` (not forwarded).
    SnsInternal,
}

impl Fault {
    /// The name it is counted under.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::ProvisionedThroughputExceeded => "ProvisionedThroughputExceeded",
            Fault::Throttling => "Throttling",
            Fault::RequestLimitExceeded => "RequestLimitExceeded",
            Fault::InternalError => "500",
            Fault::Unavailable => "503",
            Fault::TransactionConflict => "TransactionConflict",
            Fault::Unprocessed => "UnprocessedItems",
            Fault::Slow(_) => "SlowAnswer",
            Fault::Reset => "ConnectionReset",
            Fault::AfterCall => "500AfterCall",
            Fault::SnsThrottling => "SnsThrottling",
            Fault::SnsInternal => "Sns500",
        }
    }

    /// Whether it can be answered to a request of this service and operation.
    fn applies(&self, service: Service, op: &str) -> bool {
        match self {
            Fault::SnsThrottling | Fault::SnsInternal => service == Service::Sns,
            Fault::Unprocessed => service == Service::Dynamo && op == "BatchWriteItem",
            Fault::Slow(_) | Fault::Reset | Fault::AfterCall => service != Service::Other,
            // Only writes take part in transactions.
            Fault::TransactionConflict => {
                service == Service::Dynamo && matches!(op, "PutItem" | "DeleteItem" | "UpdateItem")
            }
            _ => service == Service::Dynamo,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Service {
    Dynamo,
    Sns,
    Other,
}

#[derive(Default)]
struct OpRule {
    /// Answers for the next requests (`None`: pass through).
    script: VecDeque<Option<Fault>>,
    /// Independent chances, tried in order.
    rates: Vec<(f64, Fault)>,
}

struct State {
    upstream: String,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    rules: Mutex<HashMap<String, OpRule>>,
    rng: Mutex<StdRng>,
    injected: Mutex<BTreeMap<String, u64>>,
    requests: Mutex<BTreeMap<String, u64>>,
    injected_on: Mutex<BTreeMap<String, u64>>,
    unprocessed_items: Mutex<u64>,
    /// Attempts per SDK call (`amz-sdk-invocation-id`, the same on every retry).
    attempts: Mutex<HashMap<String, u32>>,
}

/// The proxy; stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Listens on a free 127.0.0.1 port and forwards to `upstream` (`http://127.0.0.1:N`).
    pub async fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            rules: Mutex::new(HashMap::new()),
            rng: Mutex::new(StdRng::seed_from_u64(11)),
            injected: Mutex::new(BTreeMap::new()),
            requests: Mutex::new(BTreeMap::new()),
            injected_on: Mutex::new(BTreeMap::new()),
            unprocessed_items: Mutex::new(0),
            attempts: Mutex::new(HashMap::new()),
        });
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let st = st.clone();
                tokio::spawn(async move {
                    let reset = Arc::new(AtomicBool::new(false));
                    let io = TokioIo::new(ResetOnDrop {
                        inner: stream,
                        reset: reset.clone(),
                    });
                    let svc = hyper::service::service_fn(move |req| {
                        let (st, reset) = (st.clone(), reset.clone());
                        async move { st.answer(req, &reset).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .await;
                });
            }
        });
        FaultProxy { addr, state, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next requests of `op` (`PutItem`, `Publish`, or `*` for any) get these
    /// answers in order (`None`: passed through untouched).
    pub fn script(&self, op: &str, seq: impl IntoIterator<Item = Option<Fault>>) {
        let mut rules = self.state.rules.lock().unwrap();
        rules.entry(op.to_string()).or_default().script.extend(seq);
    }

    /// Each request of `op` (or `*`) gets `fault` with probability `p`.
    pub fn rate(&self, op: &str, p: f64, fault: Fault) {
        let mut rules = self.state.rules.lock().unwrap();
        rules
            .entry(op.to_string())
            .or_default()
            .rates
            .push((p, fault));
    }

    /// Reseeds the random draws (the default seed is fixed, so runs repeat).
    pub fn seed(&self, seed: u64) {
        *self.state.rng.lock().unwrap() = StdRng::seed_from_u64(seed);
    }

    /// Forgets every script and rate (counters stay).
    pub fn clear(&self) {
        self.state.rules.lock().unwrap().clear();
    }

    /// Forgets the rates, keeps what is left of the scripts.
    pub fn clear_rates(&self) {
        for rule in self.state.rules.lock().unwrap().values_mut() {
            rule.rates.clear();
        }
    }

    /// Faults injected so far, by kind.
    pub fn injected(&self) -> BTreeMap<String, u64> {
        self.state.injected.lock().unwrap().clone()
    }

    /// Faults injected so far, by `operation/kind` (`Publish/500AfterCall`).
    pub fn injected_by_operation(&self) -> BTreeMap<String, u64> {
        self.state.injected_on.lock().unwrap().clone()
    }

    pub fn injected_total(&self) -> u64 {
        self.injected().values().sum()
    }

    /// Requests seen so far, by operation (including retries).
    pub fn requests(&self) -> BTreeMap<String, u64> {
        self.state.requests.lock().unwrap().clone()
    }

    /// SDK calls seen and, of those, how many needed more than one attempt, and the
    /// most attempts one call took (the SDK sends the same `amz-sdk-invocation-id`
    /// on every attempt of a call).
    pub fn attempts(&self) -> Attempts {
        let a = self.state.attempts.lock().unwrap();
        Attempts {
            calls: a.len() as u64,
            retried_calls: a.values().filter(|n| **n > 1).count() as u64,
            max_attempts: a.values().copied().max().unwrap_or(0),
            retries: a.values().map(|n| u64::from(n - 1)).sum(),
        }
    }

    /// Write requests held back from BatchWriteItem calls (reported unprocessed).
    pub fn unprocessed_items(&self) -> u64 {
        *self.state.unprocessed_items.lock().unwrap()
    }
}

/// Attempt statistics of the SDK calls that went through the proxy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attempts {
    pub calls: u64,
    pub retried_calls: u64,
    pub max_attempts: u32,
    /// Attempts beyond the first, summed over calls.
    pub retries: u64,
}

/// Operation and service of a request, from its headers and body.
fn operation(req: &http::request::Parts, body: &[u8]) -> (Service, String) {
    if let Some(t) = req
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
    {
        if let Some((prefix, op)) = t.split_once('.') {
            let svc = if prefix.starts_with("DynamoDB") {
                Service::Dynamo
            } else {
                Service::Other
            };
            return (svc, op.to_string());
        }
    }
    let mut action = None;
    let mut version = None;
    for (k, v) in form_urlencoded::parse(body) {
        match &*k {
            "Action" => action = Some(v.into_owned()),
            "Version" => version = Some(v.into_owned()),
            _ => {}
        }
    }
    match action {
        // The query protocol names the API version: SNS' is 2010-03-31.
        Some(a) if version.as_deref() == Some("2010-03-31") => (Service::Sns, a),
        Some(a) => (Service::Other, a),
        None => (Service::Other, String::new()),
    }
}

fn dynamo_error(status: u16, code: &str, message: &str) -> Response<Full<Bytes>> {
    let prefix = if code == "ThrottlingException" {
        "com.amazon.coral.availability"
    } else {
        "com.amazonaws.dynamodb.v20120810"
    };
    let body = serde_json::json!({"__type": format!("{prefix}#{code}"), "message": message});
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-requestid", "argus-fault-proxy")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn sns_error(status: u16, kind: &str, code: &str, message: &str) -> Response<Full<Bytes>> {
    let body = format!(
        "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>argus-fault-proxy</RequestId></ErrorResponse>"
    );
    Response::builder()
        .status(status)
        .header("content-type", "text/xml")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

fn after_call_error(service: Service) -> Response<Full<Bytes>> {
    match service {
        Service::Sns => sns_error(500, "Receiver", "InternalError", "injected after the call"),
        _ => dynamo_error(500, "InternalServerError", "injected after the call"),
    }
}

impl State {
    fn pick(&self, service: Service, op: &str) -> Option<Fault> {
        let mut rules = self.rules.lock().unwrap();
        for key in [op, "*"] {
            if let Some(rule) = rules.get_mut(key) {
                // A scripted step is consumed only by a request it can apply to.
                if let Some(step) = rule.script.front() {
                    if step.as_ref().is_none_or(|f| f.applies(service, op)) {
                        return rule.script.pop_front().flatten();
                    }
                }
            }
        }
        for key in [op, "*"] {
            if let Some(rule) = rules.get(key) {
                for (p, f) in &rule.rates {
                    if f.applies(service, op) && self.rng.lock().unwrap().random_bool(*p) {
                        return Some(f.clone());
                    }
                }
            }
        }
        None
    }

    fn count(&self, op: &str, fault: &Fault) {
        *self
            .injected_on
            .lock()
            .unwrap()
            .entry(format!("{op}/{}", fault.kind()))
            .or_default() += 1;
        *self
            .injected
            .lock()
            .unwrap()
            .entry(fault.kind().to_string())
            .or_default() += 1;
    }

    async fn answer(
        &self,
        req: Request<Incoming>,
        reset: &AtomicBool,
    ) -> Result<Response<Full<Bytes>>, std::io::Error> {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map_err(std::io::Error::other)?
            .to_bytes();
        let (service, op) = operation(&parts, &body);
        *self.requests.lock().unwrap().entry(op.clone()).or_default() += 1;
        if let Some(id) = parts
            .headers
            .get("amz-sdk-invocation-id")
            .and_then(|v| v.to_str().ok())
        {
            *self
                .attempts
                .lock()
                .unwrap()
                .entry(id.to_string())
                .or_default() += 1;
        }
        let fault = self.pick(service, &op);
        if let Some(f) = &fault {
            self.count(&op, f);
        }
        let forward = |body: Bytes| self.forward(&parts, body);
        Ok(match fault {
            None => forward(body).await?,
            Some(Fault::ProvisionedThroughputExceeded) => dynamo_error(
                400,
                "ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was exceeded.",
            ),
            Some(Fault::Throttling) => dynamo_error(400, "ThrottlingException", "Rate exceeded"),
            Some(Fault::RequestLimitExceeded) => dynamo_error(
                400,
                "RequestLimitExceeded",
                "Throughput exceeds the current throughput limit for your account.",
            ),
            Some(Fault::InternalError) => {
                dynamo_error(500, "InternalServerError", "Internal server error")
            }
            Some(Fault::Unavailable) => {
                dynamo_error(503, "ServiceUnavailable", "Service unavailable")
            }
            Some(Fault::TransactionConflict) => dynamo_error(
                400,
                "TransactionConflictException",
                "Transaction is ongoing for the item",
            ),
            Some(Fault::SnsThrottling) => sns_error(400, "Sender", "Throttling", "Rate exceeded"),
            Some(Fault::SnsInternal) => sns_error(500, "Receiver", "InternalError", "injected"),
            Some(Fault::Reset) => {
                reset.store(true, Ordering::SeqCst);
                return Err(std::io::Error::other("injected connection reset"));
            }
            Some(Fault::AfterCall) => {
                forward(body).await?;
                after_call_error(service)
            }
            Some(Fault::Slow(d)) => {
                let resp = forward(body).await?;
                tokio::time::sleep(d).await;
                resp
            }
            Some(Fault::Unprocessed) => self.unprocessed(&parts, body).await?,
        })
    }

    /// BatchWriteItem with part of each table's requests held back.
    async fn unprocessed(
        &self,
        parts: &http::request::Parts,
        body: Bytes,
    ) -> Result<Response<Full<Bytes>>, std::io::Error> {
        let mut doc: Value = serde_json::from_slice(&body).map_err(std::io::Error::other)?;
        let mut held = serde_json::Map::new();
        let mut forwarded = 0usize;
        if let Some(items) = doc.get_mut("RequestItems").and_then(Value::as_object_mut) {
            for (table, reqs) in items.iter_mut() {
                let Some(list) = reqs.as_array_mut() else {
                    continue;
                };
                let keep = list.len() / 2;
                let back = list.split_off(keep);
                *self.unprocessed_items.lock().unwrap() += back.len() as u64;
                forwarded += list.len();
                held.insert(table.clone(), Value::Array(back));
            }
            items.retain(|_, v| v.as_array().is_some_and(|a| !a.is_empty()));
        }
        let mut answer = if forwarded == 0 {
            serde_json::json!({"UnprocessedItems": {}})
        } else {
            let resp = self.forward(parts, Bytes::from(doc.to_string())).await?;
            if !resp.status().is_success() {
                return Ok(resp);
            }
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(std::io::Error::other)?
                .to_bytes();
            serde_json::from_slice(&bytes).map_err(std::io::Error::other)?
        };
        let un = answer
            .as_object_mut()
            .unwrap()
            .entry("UnprocessedItems")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(un) = un.as_object_mut() {
            for (table, back) in held {
                let slot = un.entry(table).or_insert_with(|| Value::Array(Vec::new()));
                if let (Some(slot), Value::Array(back)) = (slot.as_array_mut(), back) {
                    slot.extend(back);
                }
            }
        }
        Ok(Response::builder()
            .status(200)
            .header("content-type", "application/x-amz-json-1.0")
            .body(Full::new(Bytes::from(answer.to_string())))
            .unwrap())
    }

    async fn forward(
        &self,
        parts: &http::request::Parts,
        body: Bytes,
    ) -> Result<Response<Full<Bytes>>, std::io::Error> {
        let pq = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let mut b = Request::builder()
            .method(parts.method.clone())
            .uri(format!("{}{pq}", self.upstream));
        for (k, v) in &parts.headers {
            if k != http::header::CONTENT_LENGTH {
                b = b.header(k, v);
            }
        }
        let len = body.len();
        let mut out = b.body(Full::new(body)).map_err(std::io::Error::other)?;
        out.headers_mut()
            .insert(http::header::CONTENT_LENGTH, HeaderValue::from(len));
        let resp = self
            .client
            .request(out)
            .await
            .map_err(std::io::Error::other)?;
        let (mut p, body) = resp.into_parts();
        let bytes = body
            .collect()
            .await
            .map_err(std::io::Error::other)?
            .to_bytes();
        // The body may be rewritten: let hyper set the length, and drop the checksum.
        p.headers.remove(http::header::CONTENT_LENGTH);
        p.headers.remove("x-amz-crc32");
        Ok(Response::from_parts(p, Full::new(bytes)))
    }
}

/// A TCP stream that is reset (SO_LINGER 0, so the close sends RST) when dropped after
/// a reset fault.
struct ResetOnDrop {
    inner: TcpStream,
    reset: Arc<AtomicBool>,
}

impl Drop for ResetOnDrop {
    fn drop(&mut self) {
        if self.reset.load(Ordering::SeqCst) {
            let _ = self.inner.set_zero_linger();
        }
    }
}

impl AsyncRead for ResetOnDrop {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResetOnDrop {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
