//! argus-query: Prometheus 2.42's HTTP API (`/api/v1/...`, `/-/healthy`, `/-/ready`)
//! over Argus's store, read-only.
//!
//! [`QueryService::handle`] takes a plain `http::Request<Bytes>` and the time, so the
//! same code answers `argus dev`'s listener and the `query` Lambda's function URL.
//! Everything it reads comes through two ports: [`SampleSource`] (all sample reading:
//! the query planner computes the selectors and the span and asks for exactly that)
//! and [`StatusSource`] (rule groups with their stored state, probe targets with their
//! last results, metric metadata). Neither has a write method: the service has no code
//! path that writes.

mod params;
mod plan;
mod render;
pub mod server;

pub use params::{parse_duration_ns, parse_time, Form, MAX_TIME_MS, MIN_TIME_MS};
pub use plan::{matchers_of, plan, Plan};
pub use render::{go_e, value as format_sample_value};
pub use server::serve;

use argus_model::{Labels, Millis};
use argus_promql::{Engine, Expr, MatchOp, Matcher, MemStorage, Queryable, Value};
use argus_rules::{AlertState, GroupState, RuleGroup, RuleKind};
use async_trait::async_trait;
use bytes::Bytes;
use serde_json::{json, Value as J};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// Why a query failed, as Prometheus' `errorType`s.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// 400 `bad_data`.
    #[error("{0}")]
    BadData(String),
    /// 422 `execution`.
    #[error("{0}")]
    Execution(String),
    /// 503 `timeout`.
    #[error("query timed out in {0}")]
    Timeout(String),
    /// 422 `execution`: more samples than `query.max_samples`.
    #[error("query processing would load too many samples into memory in query execution")]
    TooManySamples,
    /// 500 `internal` (the store failed; retrying may help).
    #[error("{0}")]
    Internal(String),
}

impl QueryError {
    pub fn error_type(&self) -> &'static str {
        match self {
            QueryError::BadData(_) => "bad_data",
            QueryError::Execution(_) | QueryError::TooManySamples => "execution",
            QueryError::Timeout(_) => "timeout",
            QueryError::Internal(_) => "internal",
        }
    }

    pub fn status(&self) -> http::StatusCode {
        match self {
            QueryError::BadData(_) => http::StatusCode::BAD_REQUEST,
            QueryError::Execution(_) | QueryError::TooManySamples => {
                http::StatusCode::UNPROCESSABLE_ENTITY
            }
            QueryError::Timeout(_) => http::StatusCode::SERVICE_UNAVAILABLE,
            QueryError::Internal(_) => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, QueryError::Timeout(_) | QueryError::Internal(_))
    }
}

/// All sample reading. Returns the series matching any of `selectors` (each a
/// conjunction of matchers) with their samples in `[start_ms, end_ms]`, staleness
/// markers included; refuses with [`QueryError::TooManySamples`] beyond `max_samples`.
#[async_trait]
pub trait SampleSource: Send + Sync {
    async fn load(
        &self,
        selectors: &[Vec<Matcher>],
        start_ms: i64,
        end_ms: i64,
        max_samples: usize,
    ) -> Result<MemStorage, QueryError>;
}

/// A rule group with what the evaluator stored about it.
#[derive(Debug, Clone)]
pub struct GroupStatus {
    pub group: RuleGroup,
    /// The group's interval (its own or the global evaluation interval), ms.
    pub interval_ms: i64,
    /// `None`: never evaluated.
    pub state: Option<GroupState>,
    /// Wall time the last evaluation took, seconds (0 when not recorded).
    pub evaluation_time_s: f64,
}

/// A probe target as Prometheus shows an active scrape target.
#[derive(Debug, Clone, Default)]
pub struct TargetStatus {
    pub discovered_labels: Labels,
    pub labels: Labels,
    pub scrape_pool: String,
    pub scrape_url: String,
    /// "up", "down" or "unknown".
    pub health: String,
    pub last_error: String,
    pub last_scrape: Option<Millis>,
    pub last_scrape_duration_s: f64,
    pub scrape_interval: String,
    pub scrape_timeout: String,
}

/// HELP/TYPE of one metric family.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MetricMeta {
    pub metric: String,
    /// Prometheus' metadata types: counter, gauge, histogram, summary, unknown...
    pub kind: String,
    pub help: String,
    pub unit: String,
}

/// Everything but samples: rules, targets, metadata.
#[async_trait]
pub trait StatusSource: Send + Sync {
    async fn rule_groups(&self) -> Result<Vec<GroupStatus>, QueryError>;
    async fn targets(&self, now: Millis) -> Result<Vec<TargetStatus>, QueryError>;
    async fn metadata(&self, now: Millis) -> Result<Vec<MetricMeta>, QueryError>;
}

/// What to answer for a path this service does not serve (the status page, admin
/// routes...). Without one, unknown paths get Prometheus' 404.
pub type Fallback = Arc<
    dyn Fn(
            http::Request<Bytes>,
            Millis,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = http::Response<Bytes>> + Send>>
        + Send
        + Sync,
>;

/// Prometheus's answer to a path it does not serve (what a [`Fallback`] ends in).
pub fn not_found() -> http::Response<Bytes> {
    text_response(http::StatusCode::NOT_FOUND, "404 page not found\n")
}

/// Settings (from `argus.yml`'s `query:` section).
#[derive(Debug, Clone)]
pub struct QueryOptions {
    /// `query.max_samples` (Prometheus' `--query.max-samples`, 50,000,000).
    pub max_samples: usize,
    /// `query.timeout` (Prometheus' `--query.timeout`, 2m); a request's `timeout`
    /// may only shorten it.
    pub timeout: Duration,
    /// `query.lookback_delta` (5m).
    pub lookback_ms: i64,
    /// Step of subqueries without one: the global evaluation interval.
    pub subquery_step_ms: i64,
    /// When set, every request must carry `Authorization: Bearer <token>`.
    pub auth_token: Option<String>,
    /// `/api/v1/status/buildinfo`'s version.
    pub version: String,
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions {
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            lookback_ms: argus_model::time::LOOKBACK_DELTA_MS,
            subquery_step_ms: 60_000,
            auth_token: None,
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// Prometheus' HTTP API over the two read ports.
pub struct QueryService {
    samples: Arc<dyn SampleSource>,
    status: Arc<dyn StatusSource>,
    opts: QueryOptions,
    fallback: Option<Fallback>,
}

type Res = Result<J, QueryError>;

use argus_model::valid_label_name as is_label_name;

fn invalid_param(name: &str, msg: impl std::fmt::Display) -> QueryError {
    QueryError::BadData(format!("invalid parameter {name:?}: {msg}"))
}

fn json_response(status: http::StatusCode, body: &J) -> http::Response<Bytes> {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Bytes::from(body.to_string()))
        .expect("static response parts are valid")
}

fn text_response(status: http::StatusCode, body: &'static str) -> http::Response<Bytes> {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Bytes::from_static(body.as_bytes()))
        .expect("static response parts are valid")
}

/// Parses an expression as the API does; an empty one gets Prometheus' message.
fn parse_expr(q: &str) -> Result<Expr, String> {
    if q.trim().is_empty() {
        return Err("1:1: parse error: no expression found in input".into());
    }
    argus_promql::parse(q).map_err(|e| match e {
        argus_promql::PromqlError::Parse { msg, .. } => msg,
        other => other.to_string(),
    })
}

/// Prometheus' `parser.ParseMetricSelector` for `match[]`, and its check that a set
/// has at least one matcher that does not match the empty string.
fn parse_match_sets(values: &[&str]) -> Result<Vec<Vec<Matcher>>, String> {
    let mut sets = Vec::new();
    const EMPTY: &str = "match[] must contain at least one non-empty matcher";
    for v in values {
        // Prometheus' selector parser leaves the emptiness check to the API.
        let e = parse_expr(v).map_err(|e| {
            if e.contains("at least one non-empty matcher") {
                EMPTY.to_string()
            } else {
                e
            }
        })?;
        match e {
            Expr::VectorSelector(vs) if vs.offset.is_none() && vs.at.is_none() => {
                sets.push(matchers_of(&vs))
            }
            _ => {
                return Err(format!(
                    "1:1: parse error: unexpected expression {v:?}, expected a series selector"
                ))
            }
        }
    }
    for s in &sets {
        if !s.iter().any(|m| !m.is_match("")) {
            return Err(EMPTY.into());
        }
    }
    Ok(sets)
}

/// Every series (each has a name).
fn all_series() -> Vec<Vec<Matcher>> {
    vec![vec![Matcher::new(MatchOp::NotEqual, "__name__", "")]]
}

impl QueryService {
    pub fn new(
        samples: Arc<dyn SampleSource>,
        status: Arc<dyn StatusSource>,
        opts: QueryOptions,
    ) -> Self {
        QueryService {
            samples,
            status,
            opts,
            fallback: None,
        }
    }

    /// Answers unknown paths with `f` (the lead mounts the status page at `/`).
    pub fn with_fallback(mut self, f: Fallback) -> Self {
        self.fallback = Some(f);
        self
    }

    pub fn options(&self) -> &QueryOptions {
        &self.opts
    }

    fn engine(&self) -> Engine {
        Engine {
            lookback_ms: self.opts.lookback_ms,
            subquery_step_ms: self.opts.subquery_step_ms,
        }
    }

    fn authorized(&self, req: &http::Request<Bytes>) -> bool {
        let Some(want) = &self.opts.auth_token else {
            return true;
        };
        let got = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        use subtle::ConstantTimeEq;
        got.len() == want.len() && bool::from(got.as_bytes().ct_eq(want.as_bytes()))
    }

    pub async fn handle(&self, req: http::Request<Bytes>, now: Millis) -> http::Response<Bytes> {
        let path = req.uri().path().to_string();
        let method = req.method().clone();
        let is_api = path.starts_with("/api/v1/") || path.starts_with("/-/");
        if is_api && !self.authorized(&req) {
            return json_response(
                http::StatusCode::UNAUTHORIZED,
                &json!({"status": "error", "errorType": "unauthorized", "error": "missing or wrong bearer token"}),
            );
        }
        let get = method == http::Method::GET || method == http::Method::HEAD;
        let get_post = get || method == http::Method::POST;
        let form = Form::from_request(&req);
        let result = match (path.as_str(), get, get_post) {
            ("/-/healthy", true, _) => {
                return text_response(http::StatusCode::OK, "Prometheus Server is Healthy.\n")
            }
            ("/-/ready", true, _) => {
                return text_response(http::StatusCode::OK, "Prometheus Server is Ready.\n")
            }
            ("/api/v1/query", _, true) => self.query(&form, now).await,
            ("/api/v1/query_range", _, true) => self.query_range(&form).await,
            ("/api/v1/query_exemplars", _, true) => self.exemplars(&form),
            ("/api/v1/series", _, true) => self.series(&form).await,
            ("/api/v1/labels", _, true) => self.label_names(&form).await,
            ("/api/v1/metadata", true, _) => self.metadata(&form, now).await,
            ("/api/v1/rules", true, _) => self.rules(&Form::query_only(&req)).await,
            ("/api/v1/alerts", true, _) => self.alerts().await,
            ("/api/v1/targets", true, _) => self.targets(&Form::query_only(&req), now).await,
            ("/api/v1/status/buildinfo", true, _) => Ok(self.buildinfo()),
            (p, true, _) if p.starts_with("/api/v1/label/") && p.ends_with("/values") => {
                let name = &p["/api/v1/label/".len()..p.len() - "/values".len()];
                let name = percent_decode(name);
                self.label_values(&name, &form).await
            }
            _ => {
                if let Some(f) = &self.fallback {
                    return f(req, now).await;
                }
                return not_found();
            }
        };
        match result {
            Ok(data) => json_response(
                http::StatusCode::OK,
                &json!({"status": "success", "data": data}),
            ),
            Err(e) => json_response(
                e.status(),
                &json!({"status": "error", "errorType": e.error_type(), "error": e.to_string()}),
            ),
        }
    }

    /// The request's timeout: `timeout` if given (and shorter), else the configured one.
    fn timeout(&self, form: &Form) -> Result<Duration, QueryError> {
        let to = form.get("timeout");
        if to.is_empty() {
            return Ok(self.opts.timeout);
        }
        let ns = parse_duration_ns(to).map_err(|e| invalid_param("timeout", e))?;
        let d = Duration::from_nanos(ns.max(0) as u64);
        Ok(d.min(self.opts.timeout))
    }

    /// Loads what `expr` needs and evaluates it, within `timeout`.
    async fn run(
        &self,
        expr: Expr,
        start: i64,
        end: i64,
        step: Option<i64>,
        timeout: Duration,
    ) -> Result<Value, QueryError> {
        let engine = self.engine();
        let p = plan(
            &expr,
            start,
            end,
            engine.lookback_ms,
            engine.subquery_step_ms,
        );
        let samples = self.samples.clone();
        let max = self.opts.max_samples;
        // As Prometheus checks its context between phases: a deadline already passed
        // when loading ends is a timeout, whatever the timer's resolution.
        let deadline = std::time::Instant::now() + timeout;
        let work = async move {
            let store = if p.selectors.is_empty() {
                MemStorage::new()
            } else {
                samples
                    .load(&p.selectors, p.start_ms, p.end_ms, max)
                    .await?
            };
            if std::time::Instant::now() >= deadline {
                return Err(QueryError::Timeout("query execution".into()));
            }
            tokio::task::spawn_blocking(move || match step {
                None => engine
                    .instant(&expr, start, &store)
                    .map_err(|e| QueryError::Execution(e.to_string())),
                Some(step) => engine
                    .range(&expr, start, end, step, &store)
                    .map(Value::Matrix)
                    .map_err(|e| QueryError::Execution(e.to_string())),
            })
            .await
            .map_err(|e| QueryError::Internal(format!("query evaluation failed: {e}")))?
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(QueryError::Timeout("expression evaluation".into())),
        }
    }

    async fn query(&self, form: &Form, now: Millis) -> Res {
        let ts =
            params::parse_time_param(form, "time", now).map_err(|e| invalid_param("time", e))?;
        let timeout = self.timeout(form)?;
        let expr = parse_expr(form.get("query")).map_err(|e| invalid_param("query", e))?;
        let v = self.run(expr, ts, ts, None, timeout).await?;
        Ok(render::instant(&v, ts))
    }

    async fn query_range(&self, form: &Form) -> Res {
        let start = parse_time(form.get("start")).map_err(|e| invalid_param("start", e))?;
        let end = parse_time(form.get("end")).map_err(|e| invalid_param("end", e))?;
        if end < start {
            return Err(invalid_param(
                "end",
                "end timestamp must not be before start time",
            ));
        }
        let step_ns = parse_duration_ns(form.get("step")).map_err(|e| invalid_param("step", e))?;
        if step_ns <= 0 {
            return Err(invalid_param(
                "step",
                "zero or negative query resolution step widths are not accepted. Try a positive integer",
            ));
        }
        if (end as i128 - start as i128) * 1_000_000 / step_ns > 11_000 {
            return Err(QueryError::BadData(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
            ));
        }
        let timeout = self.timeout(form)?;
        let expr = parse_expr(form.get("query")).map_err(QueryError::BadData)?;
        let kind = match &expr {
            e if matches!(
                e.value_type(),
                promql_parser::parser::value::ValueType::Matrix
            ) =>
            {
                Some("range vector")
            }
            e if matches!(
                e.value_type(),
                promql_parser::parser::value::ValueType::String
            ) =>
            {
                Some("string")
            }
            _ => None,
        };
        if let Some(k) = kind {
            return Err(QueryError::BadData(format!(
                "invalid expression type \"{k}\" for range query, must be Scalar or instant Vector"
            )));
        }
        let step = ((step_ns / 1_000_000) as i64).max(1);
        let v = self.run(expr, start, end, Some(step), timeout).await?;
        let Value::Matrix(series) = v else {
            return Err(QueryError::Internal(
                "range query did not return a matrix".into(),
            ));
        };
        Ok(json!({"resultType": "matrix", "result": render::matrix(&series)}))
    }

    fn exemplars(&self, form: &Form) -> Res {
        let start = params::parse_time_param(form, "start", MIN_TIME_MS)
            .map_err(|e| invalid_param("start", e))?;
        let end = params::parse_time_param(form, "end", MAX_TIME_MS)
            .map_err(|e| invalid_param("end", e))?;
        if end < start {
            return Err(QueryError::BadData(
                "end timestamp must not be before start timestamp".into(),
            ));
        }
        parse_expr(form.get("query")).map_err(QueryError::BadData)?;
        // Argus stores no exemplars.
        Ok(json!([]))
    }

    fn span(form: &Form) -> Result<(i64, i64), QueryError> {
        let start = params::parse_time_param(form, "start", MIN_TIME_MS)
            .map_err(|e| invalid_param("start", e))?;
        let end = params::parse_time_param(form, "end", MAX_TIME_MS)
            .map_err(|e| invalid_param("end", e))?;
        Ok((start, end))
    }

    /// Series with a sample in the span, matching any set, sorted by labels, once each.
    async fn matching_series(
        &self,
        sets: &[Vec<Matcher>],
        start: i64,
        end: i64,
    ) -> Result<BTreeSet<Labels>, QueryError> {
        let store = self
            .samples
            .load(sets, start, end, self.opts.max_samples)
            .await?;
        let mut out = BTreeSet::new();
        for set in sets {
            for s in store.select(set, start, end) {
                out.insert(s.labels);
            }
        }
        Ok(out)
    }

    async fn series(&self, form: &Form) -> Res {
        let values = form.all("match[]");
        if values.is_empty() {
            return Err(QueryError::BadData("no match[] parameter provided".into()));
        }
        let (start, end) = Self::span(form)?;
        let sets = parse_match_sets(&values).map_err(|e| invalid_param("match[]", e))?;
        let found = self.matching_series(&sets, start, end).await?;
        Ok(J::Array(found.iter().map(render::labels).collect()))
    }

    async fn label_names(&self, form: &Form) -> Res {
        let (start, end) = Self::span(form)?;
        let values = form.all("match[]");
        let sets = if values.is_empty() {
            all_series()
        } else {
            parse_match_sets(&values).map_err(QueryError::BadData)?
        };
        let found = self.matching_series(&sets, start, end).await?;
        let names: BTreeSet<&str> = found
            .iter()
            .flat_map(|l| l.iter().map(|(k, _)| k))
            .collect();
        Ok(json!(names))
    }

    async fn label_values(&self, name: &str, form: &Form) -> Res {
        if !is_label_name(name) {
            return Err(QueryError::BadData(format!("invalid label name: {name:?}")));
        }
        let (start, end) = Self::span(form)?;
        let values = form.all("match[]");
        let sets = if values.is_empty() {
            all_series()
        } else {
            parse_match_sets(&values).map_err(QueryError::BadData)?
        };
        let found = self.matching_series(&sets, start, end).await?;
        let vals: BTreeSet<&str> = found.iter().filter_map(|l| l.get(name)).collect();
        Ok(json!(vals))
    }

    async fn metadata(&self, form: &Form, now: Millis) -> Res {
        let limit: i64 = match form.get("limit") {
            "" => -1,
            s => s
                .parse()
                .map_err(|_| QueryError::BadData("limit must be a number".into()))?,
        };
        let metric = form.get("metric");
        let mut by: BTreeMap<String, BTreeSet<(String, String, String)>> = BTreeMap::new();
        for m in self.status.metadata(now).await? {
            if !metric.is_empty() && m.metric != metric {
                continue;
            }
            by.entry(m.metric)
                .or_default()
                .insert((m.kind, m.help, m.unit));
        }
        let mut out = serde_json::Map::new();
        for (name, set) in by {
            if limit >= 0 && out.len() as i64 >= limit {
                break;
            }
            let list: Vec<J> = set
                .into_iter()
                .map(|(t, h, u)| json!({"type": t, "help": h, "unit": u}))
                .collect();
            out.insert(name, J::Array(list));
        }
        Ok(J::Object(out))
    }

    async fn rules(&self, form: &Form) -> Res {
        let typ = form.get("type").to_ascii_lowercase();
        if !typ.is_empty() && typ != "alert" && typ != "record" {
            return Err(invalid_param(
                "type",
                format!("not supported value {typ:?}"),
            ));
        }
        let want_alerts = typ.is_empty() || typ == "alert";
        let want_records = typ.is_empty() || typ == "record";
        let mut groups = Vec::new();
        for g in self.status.rule_groups().await? {
            let last_eval = g.state.as_ref().and_then(|s| s.last_eval_ms);
            let mut rules = Vec::new();
            for (i, r) in g.group.rules.iter().enumerate() {
                let rs = g
                    .state
                    .as_ref()
                    .and_then(|s| s.rules.get(i))
                    .filter(|s| s.name == r.name);
                let last_error = rs.and_then(|s| s.last_error.clone());
                let health = match (last_eval, &last_error) {
                    (None, _) => "unknown",
                    (Some(_), Some(_)) => "err",
                    (Some(_), None) => "ok",
                };
                let labels = Labels::from_pairs(
                    r.labels
                        .iter()
                        .map(|p| (p.name.clone(), p.template.text().to_string())),
                );
                let mut obj = match r.kind {
                    RuleKind::Alerting => {
                        if !want_alerts {
                            continue;
                        }
                        let annotations = Labels::from_pairs(
                            r.annotations
                                .iter()
                                .map(|p| (p.name.clone(), p.template.text().to_string())),
                        );
                        let alerts = rs.map(alerts_json).unwrap_or_default();
                        let state = rs
                            .map(|s| {
                                s.active_alerts().map(|a| a.state).fold(
                                    AlertState::Inactive,
                                    |acc, st| match (acc, st) {
                                        (AlertState::Firing, _) | (_, AlertState::Firing) => {
                                            AlertState::Firing
                                        }
                                        (AlertState::Pending, _) | (_, AlertState::Pending) => {
                                            AlertState::Pending
                                        }
                                        _ => AlertState::Inactive,
                                    },
                                )
                            })
                            .unwrap_or(AlertState::Inactive);
                        json!({
                            "state": state.as_str(),
                            "name": r.name,
                            "query": r.expr_string(),
                            "duration": r.for_ms as f64 / 1000.0,
                            "keepFiringFor": r.keep_firing_for_ms as f64 / 1000.0,
                            "labels": render::labels(&labels),
                            "annotations": render::labels(&annotations),
                            "alerts": alerts,
                            "health": health,
                            "type": "alerting",
                        })
                    }
                    RuleKind::Recording => {
                        if !want_records {
                            continue;
                        }
                        let mut o = json!({
                            "name": r.name,
                            "query": r.expr_string(),
                            "health": health,
                            "type": "recording",
                        });
                        if !labels.is_empty() {
                            o["labels"] = render::labels(&labels);
                        }
                        o
                    }
                };
                if let Some(e) = last_error {
                    obj["lastError"] = J::String(e);
                }
                obj["evaluationTime"] = json!(0.0);
                obj["lastEvaluation"] = render::time(last_eval);
                rules.push(obj);
            }
            groups.push(json!({
                "name": g.group.name,
                "file": g.group.file,
                "rules": rules,
                "interval": g.interval_ms as f64 / 1000.0,
                "limit": g.group.limit,
                "evaluationTime": g.evaluation_time_s,
                "lastEvaluation": render::time(last_eval),
            }));
        }
        Ok(json!({ "groups": groups }))
    }

    async fn alerts(&self) -> Res {
        let mut alerts = Vec::new();
        for g in self.status.rule_groups().await? {
            let Some(state) = &g.state else { continue };
            for (i, r) in g.group.rules.iter().enumerate() {
                if r.kind != RuleKind::Alerting {
                    continue;
                }
                if let Some(rs) = state.rules.get(i).filter(|s| s.name == r.name) {
                    alerts.extend(alerts_json(rs));
                }
            }
        }
        Ok(json!({ "alerts": alerts }))
    }

    async fn targets(&self, form: &Form, now: Millis) -> Res {
        let pool = form.get("scrapePool");
        let state = form.get("state").to_ascii_lowercase();
        let active = state.is_empty() || state == "any" || state == "active";
        let mut list = Vec::new();
        if active {
            let mut ts = self.status.targets(now).await?;
            ts.sort_by(|a, b| a.scrape_pool.cmp(&b.scrape_pool));
            for t in ts {
                if !pool.is_empty() && t.scrape_pool != pool {
                    continue;
                }
                list.push(json!({
                    "discoveredLabels": render::labels(&t.discovered_labels),
                    "labels": render::labels(&t.labels),
                    "scrapePool": t.scrape_pool,
                    "scrapeUrl": t.scrape_url,
                    "globalUrl": t.scrape_url,
                    "lastError": t.last_error,
                    "lastScrape": render::time(t.last_scrape),
                    "lastScrapeDuration": t.last_scrape_duration_s,
                    "health": t.health,
                    "scrapeInterval": t.scrape_interval,
                    "scrapeTimeout": t.scrape_timeout,
                }));
            }
        }
        Ok(json!({"activeTargets": list, "droppedTargets": []}))
    }

    fn buildinfo(&self) -> J {
        json!({
            "version": self.opts.version,
            "revision": "",
            "branch": "",
            "buildUser": "argus",
            "buildDate": "",
            "goVersion": "",
        })
    }
}

fn alerts_json(rs: &argus_rules::RuleState) -> Vec<J> {
    rs.active_alerts()
        .map(|a| {
            let annotations = Labels::from_pairs(a.annotations.iter().cloned());
            let mut o = json!({
                "labels": render::labels(&a.labels),
                "annotations": render::labels(&annotations),
                "state": a.state.as_str(),
                "activeAt": render::time(Some(a.active_at)),
                "value": go_e(a.value),
            });
            if let Some(k) = a.keep_firing_since {
                o["keepFiringSince"] = render::time(Some(k));
            }
            o
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}
