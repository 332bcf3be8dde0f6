//! The probe use case: load the due targets, probe them with bounded concurrency, write
//! one result row per target, and push each target's metrics to the gateway under
//! `job/<job>/instance/<url>{/<label>/<value>}` through the gateway's write path (the
//! same `WriteRequest` an HTTP push becomes), so probe and client pushes are alike.

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
    async fn invoke_shard(&self, target_ids: Vec<String>) -> Result<(), String>;
}

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

impl fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let up = self.probed.iter().filter(|p| p.success).count();
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
                for s in shards {
                    let ids: Vec<String> = s.iter().map(|t| t.id.clone()).collect();
                    match fo.invoke_shard(ids).await {
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
        self.probe_into(mine, now, &mut report).await;
        Ok(report)
    }

    /// A fan-out invocation: probe exactly these ids (those still present and enabled).
    pub async fn run_ids(&self, ids: &[String], now: Millis) -> Result<ProbeReport, StoreError> {
        let (all, bad_items) = targets::load_all(self.kv.as_ref()).await?;
        let mine: Vec<Target> = all
            .into_iter()
            .filter(|t| t.enabled && ids.contains(&t.id))
            .collect();
        let mut report = ProbeReport {
            bad_items,
            ..Default::default()
        };
        self.probe_into(mine, now, &mut report).await;
        Ok(report)
    }

    async fn probe_into(&self, targets: Vec<Target>, now: Millis, report: &mut ProbeReport) {
        let outcomes = self
            .prober
            .run_targets(targets, &self.modules, self.cfg.concurrency, now)
            .await;
        let retention = self.cfg.results_retention.as_secs() as i64;
        let mut rows = Vec::with_capacity(outcomes.len());
        let pushes = outcomes.iter().map(|(t, o)| self.push(t, o, now));
        let push_results = futures::future::join_all(pushes).await;
        for ((t, o), pushed) in outcomes.into_iter().zip(push_results) {
            if let Err(e) = pushed {
                report.errors.push(format!("push of {}: {e}", t.id));
            }
            let row = ResultRow {
                target: t.id.clone(),
                at: now,
                success: o.success,
                status_code: o.status_code,
                duration_ms: o.duration.as_millis() as u64,
                error: o.error.clone(),
            };
            rows.push(row.to_item(retention));
            report.probed.push(Probed {
                target: t,
                success: o.success,
                status_code: o.status_code,
                duration_ms: row.duration_ms,
                error: o.error,
            });
        }
        if let Err(e) = self.kv.put_batch(argus_model::Table::Results, rows).await {
            report.errors.push(format!("writing results: {e}"));
        }
    }

    async fn push(&self, t: &Target, o: &ProbeOutcome, now: Millis) -> Result<(), String> {
        let labels: Vec<(&str, &str)> = std::iter::once(("instance", t.url.as_str()))
            .chain(
                t.labels
                    .iter()
                    .filter(|(k, _)| k.as_str() != "job" && k.as_str() != "instance")
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            )
            .collect();
        let w = WriteRequest::push(&self.cfg.job, &labels, o.families.clone(), true);
        self.gateway.push(w, now).await.map_err(|e| e.to_string())
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
    async fn invoke_shard(&self, target_ids: Vec<String>) -> Result<(), String> {
        let payload = serde_json::json!({ "shard": target_ids }).to_string();
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
