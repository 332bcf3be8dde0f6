//! Rule group evaluation with Prometheus' semantics (prometheus/rules/group.go and
//! alerting.go, 2.42): recording rules write their series back, alerting rules run the
//! pending → firing → resolved state machine with `for`, `keep_firing_for`, `limit`,
//! ALERTS / ALERTS_FOR_STATE series, staleness markers for series that disappear, and
//! what `sendAlerts` would send at this tick. Pure: time is a parameter, no I/O.

use crate::file::{plain_labels, Rule, RuleGroup, RuleKind};
use argus_model::{Alert, Labels};
use argus_promql::{Engine, MemStorage, Queryable, Value as PValue};
use argus_template::prometheus::{alert_data, ExpandEnv};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Resolved alerts are kept (and re-sent) this long (Prometheus' `resolvedRetention`).
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// Series storage the evaluator reads from and writes rule results to.
pub trait SeriesStore: Queryable {
    /// Appends one sample; an error means the sample was discarded.
    fn append_sample(&mut self, labels: Labels, ts: i64, value: f64) -> Result<(), String>;
}

impl SeriesStore for MemStorage {
    fn append_sample(&mut self, labels: Labels, ts: i64, value: f64) -> Result<(), String> {
        self.append(labels, ts, value).map_err(|e| e.to_string())
    }
}

/// An alert's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// f64 stored as a string so NaN/±Inf survive JSON.
mod float_str {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&argus_promql::format_value(*v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "+Inf" => Ok(f64::INFINITY),
            "-Inf" => Ok(f64::NEG_INFINITY),
            _ => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// One alert instance of an alerting rule (Prometheus' `rules.Alert`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveAlert {
    pub labels: Labels,
    /// Expanded annotations in name order (values may be empty, as in Prometheus).
    pub annotations: Vec<(String, String)>,
    pub state: AlertState,
    #[serde(with = "float_str")]
    pub value: f64,
    pub active_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fired_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sent_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_firing_since: Option<i64>,
}

/// State of one rule across evaluations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleState {
    /// The rule's name when this state was written (to re-align after reloads).
    pub name: String,
    /// Alert instances by label fingerprint (alerting rules).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub active: BTreeMap<u64, ActiveAlert>,
    /// Series this rule wrote at its previous evaluation, by fingerprint (for
    /// staleness markers).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub series_prev: BTreeMap<u64, Labels>,
    /// The last evaluation error, if the last evaluation failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl RuleState {
    /// Prometheus' `ActiveAlerts()`: instances not resolved.
    pub fn active_alerts(&self) -> impl Iterator<Item = &ActiveAlert> {
        self.active.values().filter(|a| a.resolved_at.is_none())
    }
}

/// The persisted state of a rule group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupState {
    /// Time of the last evaluation; a tick at or before it is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_eval_ms: Option<i64>,
    /// Per rule, aligned with the group's rules.
    #[serde(default)]
    pub rules: Vec<RuleState>,
}

impl GroupState {
    /// Re-aligns the per-rule states with the group's rules (after a reload): states
    /// follow their rule by name; new rules start empty.
    pub fn align(&mut self, group: &RuleGroup) {
        if self.rules.len() == group.rules.len()
            && self
                .rules
                .iter()
                .zip(&group.rules)
                .all(|(s, r)| s.name == r.name)
        {
            return;
        }
        let mut old: Vec<Option<RuleState>> = std::mem::take(&mut self.rules)
            .into_iter()
            .map(Some)
            .collect();
        for r in &group.rules {
            let found = old
                .iter_mut()
                .find(|s| s.as_ref().is_some_and(|s| s.name == r.name))
                .and_then(Option::take);
            self.rules.push(found.unwrap_or_else(|| RuleState {
                name: r.name.clone(),
                ..Default::default()
            }));
        }
    }
}

/// Evaluation settings.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    pub external_labels: Labels,
    pub external_url: String,
    /// Minimum time between two sends of a firing alert (Prometheus: 1m).
    pub resend_delay_ms: i64,
    /// The group's interval when it sets none (for `endsAt` of firing alerts).
    pub default_interval_ms: i64,
    pub engine: Engine,
    /// Fill `EvalOutcome::recorded` / `alerts_series` (the samples are appended to the
    /// store either way).
    pub collect_series: bool,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            external_labels: Labels::new(),
            external_url: String::new(),
            resend_delay_ms: 60_000,
            default_interval_ms: 60_000,
            engine: Engine::default(),
            collect_series: true,
        }
    }
}

/// A rule that failed to evaluate at this tick.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleEvalError {
    pub index: usize,
    pub rule: String,
    pub error: String,
}

/// What one evaluation of a group produced.
#[derive(Debug, Clone, Default)]
pub struct EvalOutcome {
    /// What Prometheus' `sendAlerts` would send to Alertmanager at this tick.
    pub to_send: Vec<Alert>,
    /// Recording rule results (also appended to the storage).
    pub recorded: Vec<(Labels, f64)>,
    /// ALERTS and ALERTS_FOR_STATE samples (also appended to the storage).
    pub alerts_series: Vec<(Labels, f64)>,
    /// Rules whose evaluation failed (their state is unchanged).
    pub rule_errors: Vec<RuleEvalError>,
}

/// Why a group could not be evaluated at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    #[error("group {group:?} was already evaluated at {last} (asked for {ts})")]
    NotNewer { group: String, last: i64, ts: i64 },
}

fn query_vector(
    engine: &Engine,
    expr: &argus_promql::Expr,
    ts: i64,
    q: &dyn Queryable,
) -> Result<Vec<(Labels, f64)>, String> {
    match engine.instant(expr, ts, q).map_err(|e| e.to_string())? {
        PValue::Vector(v) => Ok(v.into_iter().map(|s| (s.labels, s.value)).collect()),
        PValue::Scalar(v) => Ok(vec![(Labels::new(), v)]),
        _ => Err("rule result is not a vector or scalar".into()),
    }
}

/// Prometheus' `strutil.TableLinkForExpression`.
pub fn table_link(expr: &str) -> String {
    format!(
        "/graph?g0.expr={}&g0.tab=1",
        argus_template::query_escape(expr)
    )
}

/// Evaluates every rule of `group` at `ts_ms`, in order, against `store`.
pub fn eval_group(
    group: &RuleGroup,
    state: &mut GroupState,
    ts_ms: i64,
    store: &mut dyn SeriesStore,
    opts: &EvalOptions,
) -> Result<EvalOutcome, EvalError> {
    if let Some(last) = state.last_eval_ms {
        if ts_ms <= last {
            return Err(EvalError::NotNewer {
                group: group.name.clone(),
                last,
                ts: ts_ms,
            });
        }
    }
    state.align(group);
    let mut out = EvalOutcome::default();
    let interval = group.interval_ms.unwrap_or(opts.default_interval_ms);
    for (i, rule) in group.rules.iter().enumerate() {
        let rs = &mut state.rules[i];
        let result = match rule.kind {
            RuleKind::Recording => eval_recording(rule, group.limit, ts_ms, &*store, opts),
            RuleKind::Alerting => eval_alerting(rule, rs, group.limit, ts_ms, &*store, opts),
        };
        let vector = match result {
            Ok(v) => v,
            Err(e) => {
                rs.last_error = Some(e.clone());
                out.rule_errors.push(RuleEvalError {
                    index: i,
                    rule: rule.name.clone(),
                    error: e,
                });
                continue;
            }
        };
        rs.last_error = None;
        if rule.kind == RuleKind::Alerting {
            send_alerts(rule, rs, ts_ms, opts, interval, &mut out.to_send);
        }
        let mut returned: BTreeMap<u64, Labels> = BTreeMap::new();
        for (l, v) in vector {
            if opts.collect_series {
                match rule.kind {
                    RuleKind::Recording => out.recorded.push((l.clone(), v)),
                    RuleKind::Alerting => out.alerts_series.push((l.clone(), v)),
                }
            }
            match store.append_sample(l.clone(), ts_ms, v) {
                Ok(()) => {
                    returned.insert(l.fingerprint(), l);
                }
                Err(e) => {
                    rs.last_error = Some(e.clone());
                    out.rule_errors.push(RuleEvalError {
                        index: i,
                        rule: rule.name.clone(),
                        error: e,
                    });
                }
            }
        }
        for (fp, l) in std::mem::take(&mut rs.series_prev) {
            if !returned.contains_key(&fp) {
                // Series no longer exposed: mark it stale (errors are ignored as Prometheus does).
                let _ = store.append_sample(l, ts_ms, argus_promql::stale_nan());
            }
        }
        rs.series_prev = returned;
    }
    state.last_eval_ms = Some(ts_ms);
    Ok(out)
}

fn eval_recording(
    rule: &Rule,
    limit: usize,
    ts: i64,
    store: &dyn Queryable,
    opts: &EvalOptions,
) -> Result<Vec<(Labels, f64)>, String> {
    let v = query_vector(&opts.engine, &rule.expr, ts, store)?;
    let extra = plain_labels(&rule.labels);
    let mut seen = HashSet::with_capacity(v.len());
    let mut out = Vec::with_capacity(v.len());
    for (mut l, x) in v {
        l.set("__name__", &rule.name);
        for (k, val) in extra.iter() {
            l.set(k, val);
        }
        if !seen.insert(l.clone()) {
            return Err(
                "vector contains metrics with the same labelset after applying rule labels".into(),
            );
        }
        out.push((l, x));
    }
    if limit > 0 && out.len() > limit {
        return Err(format!(
            "exceeded limit of {limit} with {} series",
            out.len()
        ));
    }
    Ok(out)
}

fn eval_alerting(
    rule: &Rule,
    rs: &mut RuleState,
    limit: usize,
    ts: i64,
    store: &dyn Queryable,
    opts: &EvalOptions,
) -> Result<Vec<(Labels, f64)>, String> {
    let res = query_vector(&opts.engine, &rule.expr, ts, store)?;
    let ext: Vec<(&str, &str)> = opts.external_labels.iter().collect();
    let query = |q: &str| -> Result<Vec<(Labels, f64)>, String> {
        let e = argus_promql::parse(q).map_err(|e| e.to_string())?;
        query_vector(&opts.engine, &e, ts, store)
    };
    let env = ExpandEnv {
        query: Some(&query),
        external_url: &opts.external_url,
    };
    let needs_data = rule
        .labels
        .iter()
        .chain(&rule.annotations)
        .any(|p| p.template.is_templated());
    let mut alerts: HashMap<u64, ActiveAlert> = HashMap::with_capacity(res.len());
    for (metric, value) in &res {
        let data = if needs_data {
            let l: Vec<(&str, &str)> = metric.iter().collect();
            alert_data(&l, &ext, &opts.external_url, *value)
        } else {
            argus_template::Value::Nil
        };
        let mut lb = metric.without_name();
        for p in &rule.labels {
            let v = p.template.expand(&data, &env);
            lb.set(&p.name, &v);
        }
        lb.set("alertname", &rule.name);
        let annotations: Vec<(String, String)> = rule
            .annotations
            .iter()
            .map(|p| (p.name.clone(), p.template.expand(&data, &env)))
            .collect();
        let h = lb.fingerprint();
        if alerts.contains_key(&h) {
            return Err(
                "vector contains metrics with the same labelset after applying alert labels".into(),
            );
        }
        alerts.insert(
            h,
            ActiveAlert {
                labels: lb,
                annotations,
                state: AlertState::Pending,
                value: *value,
                active_at: ts,
                fired_at: None,
                resolved_at: None,
                last_sent_at: None,
                valid_until: None,
                keep_firing_since: None,
            },
        );
    }
    let result_fps: HashSet<u64> = alerts.keys().copied().collect();
    for (h, a) in alerts {
        match rs.active.get_mut(&h) {
            Some(existing) if existing.state != AlertState::Inactive => {
                existing.value = a.value;
                existing.annotations = a.annotations;
            }
            _ => {
                rs.active.insert(h, a);
            }
        }
    }
    let mut vec = Vec::new();
    let mut num_active = 0usize;
    let mut delete = Vec::new();
    for (fp, a) in rs.active.iter_mut() {
        if !result_fps.contains(fp) {
            let mut keep_firing = false;
            if a.state == AlertState::Firing && rule.keep_firing_for_ms > 0 {
                let since = *a.keep_firing_since.get_or_insert(ts);
                if ts - since < rule.keep_firing_for_ms {
                    keep_firing = true;
                }
            }
            if a.state == AlertState::Pending
                || a.resolved_at
                    .is_some_and(|r| ts - r > RESOLVED_RETENTION_MS)
            {
                delete.push(*fp);
            }
            if a.state != AlertState::Inactive && !keep_firing {
                a.state = AlertState::Inactive;
                a.resolved_at = Some(ts);
            }
            if !keep_firing {
                continue;
            }
        } else {
            a.keep_firing_since = None;
        }
        num_active += 1;
        if a.state == AlertState::Pending && ts - a.active_at >= rule.for_ms {
            a.state = AlertState::Firing;
            a.fired_at = Some(ts);
        }
        let mut l = a.labels.clone();
        l.set("__name__", "ALERTS");
        l.set("alertstate", a.state.as_str());
        vec.push((l, 1.0));
        let mut l = a.labels.clone();
        l.set("__name__", "ALERTS_FOR_STATE");
        vec.push((l, a.active_at.div_euclid(1000) as f64));
    }
    for fp in delete {
        rs.active.remove(&fp);
    }
    if limit > 0 && num_active > limit {
        rs.active.clear();
        return Err(format!(
            "exceeded limit of {limit} with {num_active} alerts"
        ));
    }
    Ok(vec)
}

fn send_alerts(
    rule: &Rule,
    rs: &mut RuleState,
    ts: i64,
    opts: &EvalOptions,
    interval: i64,
    out: &mut Vec<Alert>,
) {
    let delta = opts.resend_delay_ms.max(interval);
    let mut gen_url = None;
    for a in rs.active.values_mut() {
        let needs = match a.state {
            AlertState::Pending => false,
            _ => {
                let resolved_since_sent = match (a.resolved_at, a.last_sent_at) {
                    (Some(r), Some(s)) => r > s,
                    (Some(_), None) => true,
                    _ => false,
                };
                resolved_since_sent || a.last_sent_at.is_none_or(|s| s + opts.resend_delay_ms < ts)
            }
        };
        if !needs {
            continue;
        }
        a.last_sent_at = Some(ts);
        a.valid_until = Some(ts + 4 * delta);
        let mut labels = a.labels.clone();
        for (k, v) in opts.external_labels.iter() {
            if labels.get(k).is_none() {
                labels.set(k, v);
            }
        }
        let url = gen_url.get_or_insert_with(|| {
            format!("{}{}", opts.external_url, table_link(&rule.expr_string()))
        });
        out.push(Alert {
            labels,
            annotations: Labels::from_pairs(a.annotations.iter().cloned()),
            starts_at: a.fired_at,
            ends_at: a.resolved_at.or(a.valid_until),
            generator_url: url.clone(),
        });
    }
}
