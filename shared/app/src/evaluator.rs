//! The evaluator use case: plays the Prometheus server once per tick.
//!
//! 1. snapshot the gateway (what a scrape with `honor_labels` would see, sample time =
//!    tick time, expired groups excluded);
//! 2. bring the in-memory window up to date with chunks other invocations wrote, then
//!    append the snapshot (series that vanished get staleness markers);
//! 3. for each rule group that is due: load its state (with version), evaluate
//!    (`argus_rules::eval_group`), hand the alerts to send to the notifier, and write the
//!    state back conditionally — an overlapping invocation that already advanced the
//!    group makes this write lose, so state never advances twice;
//! 4. store the tick's chunk (snapshot + recorded + ALERTS series) for later ticks;
//! 5. with `remote_write` configured, send the same samples out (after the alerts were
//!    handed to the notifier and the chunk stored, so alerting never waits on a
//!    receiver), bounded by the remote-write budget; see argus-remote-write.

use crate::alert_sink::{AlertSink, SendError};
use crate::tsdb::{self, Chunk, Window};
use argus_model::time::LOOKBACK_DELTA_MS;
use argus_model::{Cond, Item, Kv, Labels, Millis, StoreError, Table};
use argus_pushgw::Gateway;
use argus_rules::{AlertState, EvalOptions, GroupState, RuleGroup};
use std::fmt;
use std::sync::Arc;

/// Where rule group state is stored (the status page reads it under the same name).
pub const STATE_PARTITION: &str = argus_status::view::RULES_PK;

pub struct Evaluator {
    kv: Arc<dyn Kv>,
    gateway: Arc<Gateway>,
    groups: Vec<(String, RuleGroup)>,
    opts: EvalOptions,
    default_interval_ms: i64,
    retention: std::time::Duration,
    window: tokio::sync::Mutex<Window>,
    remote_write: Option<(Arc<argus_remote_write::RemoteWriter>, std::time::Duration)>,
    /// Delete expired samples after compaction (a store without TTL: the embedded one).
    sweep_expired: bool,
    /// Where alerts go: the built-in notifier's ingest, or external Alertmanagers.
    sink: Arc<dyn AlertSink>,
    /// A prometheus.yml's Pushgateway job (see [`Evaluator::with_gateway_scrape`]).
    gateway_scrape: Option<argus_promconfig::GatewayScrape>,
}

#[derive(Debug, Default, Clone)]
pub struct EvalReport {
    pub series: usize,
    pub groups_evaluated: usize,
    /// Groups another invocation had already evaluated for this tick.
    pub groups_skipped: usize,
    pub pending: Vec<String>,
    pub firing: Vec<String>,
    pub sent_to_notifier: usize,
    pub errors: Vec<String>,
    /// One entry per remote_write queue.
    pub remote_write: Vec<argus_remote_write::QueueReport>,
    /// Rule groups whose stored state could not be decoded (reported in `errors` and
    /// not evaluated; the record is left as it is).
    pub undecodable_states: usize,
}

impl EvalReport {
    /// The invocation's result as the evaluator function returns it.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "series": self.series,
            "groups_evaluated": self.groups_evaluated,
            "pending": self.pending.len(),
            "firing": self.firing.len(),
            "sent_to_notifier": self.sent_to_notifier,
            "errors": self.errors,
            "undecodable_states": self.undecodable_states,
            "remote_write": self.remote_write,
        })
    }
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "evaluated {} groups over {} series: {} pending, {} firing, {} alerts to the notifier",
            self.groups_evaluated,
            self.series,
            self.pending.len(),
            self.firing.len(),
            self.sent_to_notifier
        )?;
        for p in &self.pending {
            write!(f, "\n    pending {p}")?;
        }
        for p in &self.firing {
            write!(f, "\n    FIRING  {p}")?;
        }
        for e in &self.errors {
            write!(f, "\n    error: {e}")?;
        }
        for q in &self.remote_write {
            write!(f, "\n    {q}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("reading the gateway: {0}")]
    Gateway(String),
    #[error(transparent)]
    Chunk(#[from] tsdb::ChunkError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Evaluator {
    /// `groups` are (state key, group): the key is `<file>/<group name>`.
    pub fn new(
        kv: Arc<dyn Kv>,
        gateway: Arc<Gateway>,
        sink: Arc<dyn AlertSink>,
        groups: Vec<(String, RuleGroup)>,
        opts: EvalOptions,
        default_interval: std::time::Duration,
        retention: std::time::Duration,
    ) -> Self {
        // The interval in the rule engine's unit (ms).
        let default_interval_ms = argus_model::time::millis(default_interval);
        // Lookback (5m) plus the largest range any rule selects, plus two ticks of slack.
        // What the rules read back (lookback included), plus two ticks of slack.
        let needed = groups
            .iter()
            .map(|(_, g)| g.history_needed_ms(LOOKBACK_DELTA_MS))
            .max()
            .unwrap_or(LOOKBACK_DELTA_MS);
        let span = needed.max(LOOKBACK_DELTA_MS) + 2 * default_interval_ms;
        Evaluator {
            kv,
            gateway,
            groups,
            opts,
            default_interval_ms,
            retention,
            window: tokio::sync::Mutex::new(Window::new(span)),
            remote_write: None,
            sweep_expired: false,
            sink,
            gateway_scrape: None,
        }
    }

    /// Sends every tick's samples to these queues, spending at most `budget` per tick.
    pub fn with_remote_write(
        mut self,
        writer: Arc<argus_remote_write::RemoteWriter>,
        budget: std::time::Duration,
    ) -> Self {
        self.remote_write = Some((writer, budget));
        self
    }

    /// Sweep expired samples after each compaction: for a store without TTL (the
    /// embedded one that `argus dev` owns); DynamoDB's TTL expires them for free.
    pub fn sweep_expired(mut self, on: bool) -> Self {
        self.sweep_expired = on;
        self
    }

    /// The rule groups with their state keys (for the alerts view).
    pub fn rule_groups(&self) -> &[(String, RuleGroup)] {
        &self.groups
    }

    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.groups.iter().map(|(k, _)| k.as_str())
    }

    /// A prometheus.yml's Pushgateway job: its `honor_labels` and
    /// `metric_relabel_configs` apply to the pushed groups' series (not to the probe
    /// runs', which their own jobs' rules already went through).
    pub fn with_gateway_scrape(mut self, g: Option<argus_promconfig::GatewayScrape>) -> Self {
        self.gateway_scrape = g;
        self
    }

    /// The gateway as this evaluator scrapes it.
    pub async fn scrape_gateway(&self, now: Millis) -> Result<Vec<(Labels, f64)>, EvalError> {
        let err = |e: argus_pushgw::GatewayError| EvalError::Gateway(e.to_string());
        let Some(g) = &self.gateway_scrape else {
            return self.gateway.snapshot(now).await.map_err(err);
        };
        let (pushed, mut bundled) = self.gateway.snapshot_parts(now).await.map_err(err)?;
        bundled.extend(
            pushed
                .into_iter()
                .filter_map(|(l, v)| g.mutate(&l).map(|l| (l, v))),
        );
        Ok(bundled)
    }

    pub async fn tick(&self, now: Millis) -> Result<EvalReport, EvalError> {
        let snapshot = self.scrape_gateway(now).await?;
        let mut report = EvalReport {
            series: snapshot.len(),
            ..Default::default()
        };
        let mut w = self.window.lock().await;
        w.catch_up(self.kv.as_ref(), now).await?;
        let prev_tick = w.last_ts();
        if !w.append(now, &snapshot) {
            // This tick (or a later one) was already evaluated by another invocation.
            report.groups_skipped = self.groups.len();
            return Ok(report);
        }
        let mut generated: Vec<(Labels, f64)> = Vec::new();
        for (key, group) in &self.groups {
            match self.eval_one(key, group, now, &mut w, &mut report).await {
                Ok(series) => generated.extend(series),
                Err(e) => report.errors.push(format!("group {key}: {e}")),
            }
        }
        w.note_generated(generated.iter().map(|(l, _)| l.clone()));
        let chunk = Chunk {
            ts: now,
            scraped: snapshot,
            generated,
        };
        tsdb::write_chunk(self.kv.as_ref(), &chunk, self.retention).await?;
        drop(w);
        if let Some((writer, budget)) = &self.remote_write {
            let deadline = std::time::Instant::now() + *budget;
            report.remote_write = writer
                .send_tick(now, chunk.scraped.iter().chain(&chunk.generated), deadline)
                .await;
        }
        // Finished 2-hour spans become blocks (at cold start and when a span closes).
        if tsdb::compact::due(prev_tick, now) {
            if let Err(e) =
                tsdb::compact(self.kv.as_ref(), now, self.retention, self.sweep_expired).await
            {
                report.errors.push(format!("compaction: {e}"));
            }
        }
        Ok(report)
    }

    async fn eval_one(
        &self,
        key: &str,
        group: &RuleGroup,
        now: Millis,
        w: &mut Window,
        report: &mut EvalReport,
    ) -> Result<Vec<(Labels, f64)>, EvalError> {
        let stored = self.kv.get(Table::Alerts, STATE_PARTITION, key).await?;
        let version = stored.as_ref().map_or(0, |i| i.version);
        let mut state: GroupState = match stored.as_ref().and_then(|i| i.data.as_deref()) {
            // An unreadable record is reported and the group is not evaluated: replacing
            // it by a default would reset every pending and firing alert of the group.
            Some(d) => match argus_rules::decode_state(d) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(group = key, error = %e, "rule group state not decoded; group skipped");
                    report.undecodable_states += 1;
                    report
                        .errors
                        .push(format!("group {key}: {e}; group not evaluated"));
                    return Ok(Vec::new());
                }
            },
            None => GroupState::default(),
        };
        let interval = group.interval_ms.unwrap_or(self.default_interval_ms);
        if let Some(last) = state.last_eval_ms {
            // Due when a full interval (less 10% jitter slack) has passed.
            if now - last < interval - interval / 10 {
                report.groups_skipped += 1;
                return Ok(Vec::new());
            }
        }
        let outcome =
            match argus_rules::eval_group(group, &mut state, now, &mut w.storage, &self.opts) {
                Ok(o) => o,
                Err(argus_rules::EvalError::NotNewer { .. }) => {
                    report.groups_skipped += 1;
                    return Ok(Vec::new());
                }
            };
        for e in &outcome.rule_errors {
            report.errors.push(format!(
                "group {key}: rule {} ({}): {}",
                e.index, e.rule, e.error
            ));
        }
        for rs in &state.rules {
            for a in rs.active_alerts() {
                let desc = format!("{} {}", rs.name, a.labels.without_name());
                match a.state {
                    AlertState::Firing => report.firing.push(desc),
                    AlertState::Pending => report.pending.push(desc),
                    _ => {}
                }
            }
        }
        // Hand over first (idempotent: the notifier merges by fingerprint), then claim
        // the state transition; a lost race means another invocation did the same.
        if !outcome.to_send.is_empty() {
            report.sent_to_notifier += outcome.to_send.len();
            match self.sink.send(outcome.to_send.clone(), now).await {
                Ok(()) => {}
                // As Prometheus: a failed send is logged and the alert is sent again at
                // the next resend (its endsAt keeps it active meanwhile).
                Err(SendError::Reported(e)) => report.errors.push(format!("group {key}: {e}")),
                Err(SendError::Retry(e)) => {
                    return Err(EvalError::Store(StoreError::Transient(e)));
                }
            }
        }
        let mut item = Item::new(STATE_PARTITION, key);
        item.data = Some(argus_rules::encode_state(&state));
        match self
            .kv
            .put(Table::Alerts, item, Cond::Version(version))
            .await
        {
            Ok(_) => {
                report.groups_evaluated += 1;
                Ok(outcome
                    .recorded
                    .into_iter()
                    .chain(outcome.alerts_series)
                    .collect())
            }
            Err(StoreError::Conflict(_)) => {
                report.groups_skipped += 1;
                Ok(Vec::new())
            }
            Err(e) => Err(e.into()),
        }
    }
}
