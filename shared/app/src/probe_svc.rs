//! The probe use case: load the due targets, probe them with bounded concurrency, write
//! the run's result rows as one item, and push each target's metrics as the group
//! `job/<job>/instance/<url>{/<label>/<value>}` (the same `WriteRequest` an HTTP push
//! becomes). The groups of one invocation are stored together in the gateway's bundle
//! for that invocation's slot (`0` for the scheduled run, `1..` for fanned-out shards),
//! so a run costs two item writes however many targets it probes. Each group expires
//! after three of its target's intervals without a new probe.

use crate::config::ProbeConfig;
use crate::results::ResultRow;
use crate::targets;
use argus_model::{Kv, Millis, StoreError, Target};
use argus_probe::{Modules, ProbeOutcome, Prober};
use argus_pushgw::{Gateway, WriteRequest};
use async_trait::async_trait;
use std::fmt;
use std::sync::Arc;

/// Starts probe runs for target shards elsewhere (the probe function invokes itself
/// asynchronously, one invocation per shard).
#[async_trait]
pub trait FanOut: Send + Sync {
    /// `slot` names the shard's bundle and results item (`1..`).
    async fn invoke_shard(&self, slot: usize, target_ids: Vec<String>) -> Result<(), String>;
}

/// Missed runs after which a target's series disappear.
const KEEP_RUNS: u32 = 3;

pub struct ProbeService {
    kv: Arc<dyn Kv>,
    prober: Arc<Prober>,
    modules: Arc<Modules>,
    gateway: Arc<Gateway>,
    cfg: ProbeConfig,
    period_ms: i64,
}

#[derive(Clone, Debug)]
pub struct Probed {
    pub target: Target,
    pub success: bool,
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct ProbeReport {
    pub probed: Vec<Probed>,
    /// Target items that could not be read (named, with the reason).
    pub bad_items: Vec<String>,
    pub not_due: usize,
    /// Shards handed to other invocations.
    pub fanned_out: usize,
    /// Pushes or result writes that failed (the run went on).
    pub errors: Vec<String>,
}

impl ProbeReport {
    /// How many targets were up.
    pub fn up(&self) -> usize {
        self.probed.iter().filter(|p| p.success).count()
    }

    /// The invocation's result as the probe function returns it.
    pub fn summary(&self) -> serde_json::Value {
        let up = self.up();
        serde_json::json!({
            "probed": self.probed.len(),
            "up": up,
            "down": self.probed.len() - up,
            "fanned_out": self.fanned_out,
            "bad_items": self.bad_items,
            "errors": self.errors,
        })
    }
}

impl fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let up = self.up();
        write!(
            f,
            "probed {} targets: {} up, {} down",
            self.probed.len(),
            up,
            self.probed.len() - up
        )?;
        for p in self.probed.iter().filter(|p| !p.success) {
            write!(
                f,
                "\n    down {} ({})",
                p.target.url,
                p.error.as_deref().unwrap_or("failed")
            )?;
        }
        if self.fanned_out > 0 {
            write!(f, "; {} shards fanned out", self.fanned_out)?;
        }
        for b in &self.bad_items {
            write!(f, "\n    skipped bad target item: {b}")?;
        }
        for e in &self.errors {
            write!(f, "\n    error: {e}")?;
        }
        Ok(())
    }
}

impl ProbeService {
    pub fn new(
        kv: Arc<dyn Kv>,
        prober: Arc<Prober>,
        modules: Arc<Modules>,
        gateway: Arc<Gateway>,
        cfg: ProbeConfig,
        period_ms: i64,
    ) -> Self {
        ProbeService {
            kv,
            prober,
            modules,
            gateway,
            cfg,
            period_ms,
        }
    }

    pub fn modules(&self) -> &Arc<Modules> {
        &self.modules
    }

    pub fn prober(&self) -> &Arc<Prober> {
        &self.prober
    }

    /// One scheduled run: every enabled target that is due at `now`. Beyond
    /// `max_targets_per_invocation`, the first shard is probed here and the others are
    /// handed to `fan_out` (when given; otherwise all are probed here).
    pub async fn run(
        &self,
        now: Millis,
        fan_out: Option<&dyn FanOut>,
    ) -> Result<ProbeReport, StoreError> {
        let (all, bad_items) = targets::load_all(self.kv.as_ref()).await?;
        let total = all.len();
        let due: Vec<Target> = all
            .into_iter()
            .filter(|t| t.due_in_run(now, self.period_ms))
            .collect();
        let mut report = ProbeReport {
            bad_items,
            not_due: total - due.len(),
            ..Default::default()
        };
        let mut mine = due;
        if let Some(fo) = fan_out {
            if mine.len() > self.cfg.max_targets_per_invocation {
                let mut shards =
                    argus_probe::shard(mine, self.cfg.max_targets_per_invocation).into_iter();
                mine = shards.next().unwrap_or_default();
                for (i, s) in shards.enumerate() {
                    let ids: Vec<String> = s.iter().map(|t| t.id.clone()).collect();
                    match fo.invoke_shard(i + 1, ids).await {
                        Ok(()) => report.fanned_out += 1,
                        Err(e) => {
                            // Probe it here rather than lose it.
                            report
                                .errors
                                .push(format!("fan-out failed, probing the shard here: {e}"));
                            mine.extend(s);
                        }
                    }
                }
            }
        }
        self.probe_into(mine, now, "0", &mut report).await;
        Ok(report)
    }

    /// A fan-out invocation: probe exactly these ids (those still present and enabled)
    /// and store them in `slot`.
    pub async fn run_ids(
        &self,
        ids: &[String],
        slot: &str,
        now: Millis,
    ) -> Result<ProbeReport, StoreError> {
        let (all, bad_items) = targets::load_all(self.kv.as_ref()).await?;
        let mine: Vec<Target> = all
            .into_iter()
            .filter(|t| t.enabled && ids.contains(&t.id))
            .collect();
        let mut report = ProbeReport {
            bad_items,
            ..Default::default()
        };
        self.probe_into(mine, now, slot, &mut report).await;
        Ok(report)
    }

    async fn probe_into(
        &self,
        targets: Vec<Target>,
        now: Millis,
        slot: &str,
        report: &mut ProbeReport,
    ) {
        if targets.is_empty() {
            return;
        }
        let outcomes = self
            .prober
            .run_targets(targets, &self.modules, self.cfg.concurrency, now)
            .await;
        let retention = self.cfg.results_retention.as_secs() as i64;
        let mut rows = Vec::with_capacity(outcomes.len());
        let writes = outcomes
            .iter()
            .map(|(t, o)| self.write_request(t, o))
            .collect();
        let period = std::time::Duration::from_millis(self.period_ms.max(1) as u64);
        match self
            .gateway
            .push_bundle(slot, writes, period * KEEP_RUNS, now)
            .await
        {
            Ok(verdicts) => {
                for ((t, _), v) in outcomes.iter().zip(verdicts) {
                    if let Err(e) = v {
                        report.errors.push(format!("metrics of {}: {e}", t.id));
                    }
                }
            }
            Err(e) => report.errors.push(format!("storing probe metrics: {e}")),
        }
        for (t, o) in outcomes {
            let row = ResultRow {
                target: t.id.clone(),
                at: now,
                success: o.success,
                status_code: o.status_code,
                duration_ms: o.duration.as_millis() as u64,
                error: o.error.clone(),
            };
            report.probed.push(Probed {
                target: t,
                success: o.success,
                status_code: o.status_code,
                duration_ms: row.duration_ms,
                error: o.error,
            });
            rows.push(row);
        }
        let item = crate::results::run_item(now, slot, rows, retention);
        if let Err(e) = self
            .kv
            .put(argus_model::Table::Results, item, argus_model::Cond::Always)
            .await
        {
            report.errors.push(format!("writing results: {e}"));
        }
    }

    /// The target's group: `instance` and its labels as the grouping key, kept for
    /// [`KEEP_RUNS`] of its intervals. A target's own `job` and `instance` labels (a
    /// prometheus.yml's job name and relabeled instance) replace the defaults (the
    /// probe job, the URL).
    fn write_request(&self, t: &Target, o: &ProbeOutcome) -> WriteRequest {
        let job = t
            .labels
            .get("job")
            .map_or(self.cfg.job.as_str(), String::as_str);
        let instance = t
            .labels
            .get("instance")
            .map_or(t.url.as_str(), String::as_str);
        let labels: Vec<(&str, &str)> = std::iter::once(("instance", instance))
            .chain(
                t.labels
                    .iter()
                    .filter(|(k, _)| k.as_str() != "job" && k.as_str() != "instance")
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            )
            .collect();
        let mut w = WriteRequest::push(job, &labels, o.families.clone(), true);
        let period = std::time::Duration::from_millis(self.period_ms.max(1) as u64);
        w.ttl = Some(t.interval.unwrap_or(period).max(period) * KEEP_RUNS);
        w
    }
}

/// Fan-out by asynchronous self-invocation (`InvocationType::Event`) with
/// `{"shard": [ids]}`; failed async invocations go to the function's DLQ.
pub struct LambdaFanOut {
    pub client: aws_sdk_lambda::Client,
    pub function_name: String,
}

#[async_trait]
impl FanOut for LambdaFanOut {
    async fn invoke_shard(&self, slot: usize, target_ids: Vec<String>) -> Result<(), String> {
        let payload =
            serde_json::json!({ "shard": target_ids, "slot": slot.to_string() }).to_string();
        self.client
            .invoke()
            .function_name(&self.function_name)
            .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
            .payload(aws_sdk_lambda::primitives::Blob::new(payload))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_sdk_lambda::error::DisplayErrorContext(e).to_string())
    }
}
