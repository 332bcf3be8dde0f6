//! The probe use case: load the due targets, probe them with bounded concurrency, write
//! the run's result rows as one item, and push each target's metrics as the group
//! `job/<job>/instance/<url>{/<label>/<value>}` (the same `WriteRequest` an HTTP push
//! becomes). The groups of one invocation are stored together in the gateway's bundle
//! for that invocation's slot (`0` for the scheduled run, `1..` for fanned-out shards),
//! so a run costs two item writes however many targets it probes. Each group expires
//! after three of its target's intervals without a new probe.
//!
//! Locations: a service built [`ProbeService::at_location`] probes only the targets
//! allowed there, adds `location="<name>"` to every group's key (one group per
//! (target, location)), writes its bundle and results under `<location>/<slot>` (so
//! the locations never overwrite each other) and adds a heartbeat group
//! `job="argus-location",location="<name>"` to its scheduled run's bundle:
//! `argus_location_last_run_timestamp_seconds`, `argus_location_interval_seconds`,
//! `argus_locations_configured` and `argus_quorum`. The heartbeat is kept for
//! [`HEARTBEAT_TTL`], so a location that stops running leaves a value that grows old
//! (alerted on by `examples/rules/quorum.yml`) instead of vanishing like its targets'
//! series do.

use crate::config::ProbeConfig;
use crate::results::ResultRow;
use crate::targets;
use argus_expfmt::{MetricFamily, MetricType, MetricValue};
use argus_model::{Kv, Labels, Millis, StoreError, Target};
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

/// How long a location's heartbeat group outlives its last run: long enough that a
/// silent location is alerted on for a week (then `LocationsMissing` takes over).
pub const HEARTBEAT_TTL: std::time::Duration = std::time::Duration::from_secs(7 * 86400);

/// Job of the locations' heartbeat groups.
pub const HEARTBEAT_JOB: &str = "argus-location";

/// Where a probe service runs: its name, every configured name and the quorum.
#[derive(Clone, Debug, Default)]
pub struct Location {
    pub name: String,
    pub all: Vec<String>,
    pub quorum: usize,
}

pub struct ProbeService {
    kv: Arc<dyn Kv>,
    prober: Arc<Prober>,
    modules: Arc<Modules>,
    gateway: Arc<Gateway>,
    cfg: ProbeConfig,
    period_ms: i64,
    location: Option<Location>,
    /// Every configured location (targets naming others are bad items).
    known_locations: Vec<String>,
    /// `argus dev` fault injection: target ids this location "cannot reach".
    unreachable: std::sync::RwLock<std::collections::HashSet<String>>,
    /// A prometheus.yml's jobs (by name): what they do to scraped samples.
    sample_rules: std::collections::BTreeMap<String, argus_promconfig::SampleRules>,
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
            location: None,
            known_locations: Vec::new(),
            unreachable: Default::default(),
            sample_rules: Default::default(),
        }
    }

    /// The prometheus.yml jobs' sample rules (`honor_labels`, `metric_relabel_configs`),
    /// applied to the samples of the targets of those jobs (`prom:` ids).
    pub fn with_sample_rules(
        mut self,
        rules: std::collections::BTreeMap<String, argus_promconfig::SampleRules>,
    ) -> Self {
        self.sample_rules = rules;
        self
    }

    /// This service probes as `location` (see the module docs).
    pub fn at_location(mut self, location: Option<Location>, known: Vec<String>) -> Self {
        self.location = location;
        self.known_locations = known;
        self
    }

    pub fn location(&self) -> Option<&str> {
        self.location.as_ref().map(|l| l.name.as_str())
    }

    /// `argus dev` fault injection: from now on these target ids fail from this
    /// location without being contacted.
    pub fn set_unreachable<I: IntoIterator<Item = String>>(&self, ids: I) {
        *self.unreachable.write().unwrap_or_else(|e| e.into_inner()) = ids.into_iter().collect();
    }

    /// The targets of this location; targets naming an unknown location are reported
    /// as bad items (the others are probed).
    fn mine(&self, all: Vec<Target>, bad_items: &mut Vec<String>) -> Vec<Target> {
        all.into_iter()
            .filter(|t| match t.check_locations(&self.known_locations) {
                Ok(()) => t.probed_from(self.location()),
                Err(e) => {
                    bad_items.push(e.to_string());
                    false
                }
            })
            .collect()
    }

    /// The bundle / results slot of this location.
    fn slot(&self, slot: &str) -> String {
        match self.location() {
            Some(l) => format!("{l}/{slot}"),
            None => slot.to_string(),
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
        let (all, mut bad_items) = targets::load_all(self.kv.as_ref()).await?;
        let all = self.mine(all, &mut bad_items);
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
        self.probe_into(mine, now, "0", true, &mut report).await;
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
        let (all, mut bad_items) = targets::load_all(self.kv.as_ref()).await?;
        let mine: Vec<Target> = self
            .mine(all, &mut bad_items)
            .into_iter()
            .filter(|t| t.enabled && ids.contains(&t.id))
            .collect();
        let mut report = ProbeReport {
            bad_items,
            ..Default::default()
        };
        self.probe_into(mine, now, slot, false, &mut report).await;
        Ok(report)
    }

    async fn probe_into(
        &self,
        targets: Vec<Target>,
        now: Millis,
        slot: &str,
        scheduled: bool,
        report: &mut ProbeReport,
    ) {
        let heartbeat = if scheduled { self.heartbeat(now) } else { None };
        if targets.is_empty() && heartbeat.is_none() {
            return;
        }
        let slot = self.slot(slot);
        let (cut, reach): (Vec<Target>, Vec<Target>) = {
            let unreachable = self.unreachable.read().unwrap_or_else(|e| e.into_inner());
            targets
                .into_iter()
                .partition(|t| unreachable.contains(&t.id))
        };
        let mut outcomes = self
            .prober
            .run_targets(reach, &self.modules, self.cfg.concurrency, now)
            .await;
        for t in cut {
            let why = format!(
                "unreachable from {} (simulated by dev.locations)",
                self.location().unwrap_or("here")
            );
            let o = ProbeOutcome::failed(t.module == "scrape", why, now);
            outcomes.push((t, o));
        }
        let retention = self.cfg.results_retention;
        let mut rows = Vec::with_capacity(outcomes.len());
        let mut writes: Vec<WriteRequest> = outcomes
            .iter()
            .map(|(t, o)| self.write_request(t, o))
            .collect();
        writes.extend(heartbeat);
        let period = std::time::Duration::from_millis(self.period_ms.max(1) as u64);
        match self
            .gateway
            .push_bundle(&slot, writes, period * KEEP_RUNS, now)
            .await
        {
            Ok(verdicts) => {
                let names = outcomes
                    .iter()
                    .map(|(t, _)| t.id.as_str())
                    .chain(std::iter::once(HEARTBEAT_JOB));
                for (id, v) in names.zip(verdicts) {
                    if let Err(e) = v {
                        report.errors.push(format!("metrics of {id}: {e}"));
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
                phases_ms: phases_ms(&o.families),
                cert_expiry: gauge(&o.families, "probe_ssl_earliest_cert_expiry").map(|v| v as i64),
                log: (!o.success).then(|| o.log.clone()),
                location: self.location().map(str::to_string),
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
        if rows.is_empty() {
            return;
        }
        let item = crate::results::run_item(now, &slot, rows, retention);
        if let Err(e) = self
            .kv
            .put(argus_model::Table::Results, item, argus_model::Cond::Always)
            .await
        {
            report.errors.push(format!("writing results: {e}"));
        }
        // The scheduled run (slot 0) closes the hours and days behind it: usually
        // two gets, a write once an hour.
        if slot == "0" {
            let quorum = self.location.as_ref().map(|l| l.quorum);
            match argus_status::rollup::advance_with(self.kv.as_ref(), now, retention, quorum).await
            {
                Ok(r) => report.errors.extend(
                    r.unreadable
                        .into_iter()
                        .map(|e| format!("uptime rollups: unreadable item kept: {e}")),
                ),
                Err(e) => report.errors.push(format!("uptime rollups: {e}")),
            }
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
            .chain(self.location().map(|l| ("location", l)))
            .chain(
                t.labels
                    .iter()
                    .filter(|(k, _)| {
                        let k = k.as_str();
                        k != "job"
                            && k != "instance"
                            && !(k == "location" && self.location.is_some())
                    })
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            )
            .collect();
        let families = match self.sample_rules.get(job) {
            Some(rules) if t.id.starts_with(argus_promconfig::ID_PREFIX) => {
                let target = Labels::from_pairs(
                    std::iter::once(("job", job))
                        .chain(labels.iter().copied())
                        .filter(|(_, v)| !v.is_empty()),
                );
                apply_sample_rules(
                    o.families.clone(),
                    rules,
                    &target,
                    t.module.starts_with("prometheus_job:"),
                )
            }
            _ => strip_timestamps(o.families.clone()),
        };
        let mut w = WriteRequest::push(job, &labels, families, true);
        let period = std::time::Duration::from_millis(self.period_ms.max(1) as u64);
        w.ttl = Some(t.interval.unwrap_or(period).max(period) * KEEP_RUNS);
        w
    }

    /// The location's heartbeat group (none without a location).
    fn heartbeat(&self, now: Millis) -> Option<WriteRequest> {
        let loc = self.location.as_ref()?;
        let gauge = |name: &str, help: &str, v: f64| {
            MetricFamily::new(name, MetricType::Gauge)
                .with_help(help)
                .with_metric(Labels::new(), MetricValue::Gauge(v))
        };
        let families = vec![
            gauge(
                "argus_location_last_run_timestamp_seconds",
                "When this location's probe last ran.",
                now as f64 / 1000.0,
            ),
            gauge(
                "argus_location_interval_seconds",
                "Period of this location's probe schedule.",
                self.period_ms as f64 / 1000.0,
            ),
            gauge(
                "argus_locations_configured",
                "Locations configured in argus.yml.",
                loc.all.len() as f64,
            ),
            gauge(
                "argus_quorum",
                "Failing locations that make a site down.",
                loc.quorum as f64,
            ),
        ];
        let mut w = WriteRequest::push(HEARTBEAT_JOB, &[("location", &loc.name)], families, true);
        w.ttl = Some(HEARTBEAT_TTL);
        Some(w)
    }
}

/// The report series the scrape prober adds after the target's own families.
const REPORT_FAMILIES: [&str; 4] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
];

/// Samples are stored at the time of the run: a timestamp a target exposes is not
/// kept (the gateway takes no timestamps; see argus-promconfig's README).
fn strip_timestamps(mut families: Vec<MetricFamily>) -> Vec<MetricFamily> {
    for f in &mut families {
        for m in &mut f.metrics {
            m.timestamp_ms = None;
        }
    }
    families
}

/// A prometheus.yml job's sample rules over one run's families (see
/// `argus_promconfig::SampleRules::mutate`). The families are kept as they are when
/// nothing changes; otherwise every series is relabeled on its own, as Prometheus
/// does, and the kept ones are stored as untyped families by (new) name. The
/// report series (`up`, `scrape_*`; `scrape` says the run has them) are not relabeled
/// and `scrape_samples_post_metric_relabeling` counts what is kept.
pub(crate) fn apply_sample_rules(
    families: Vec<MetricFamily>,
    rules: &argus_promconfig::SampleRules,
    target: &Labels,
    scrape: bool,
) -> Vec<MetricFamily> {
    let mut families = strip_timestamps(families);
    let split = if scrape {
        families
            .iter()
            .position(|f| f.name == REPORT_FAMILIES[0])
            .filter(|&i| {
                families[i..]
                    .iter()
                    .map(|f| f.name.as_str())
                    .eq(REPORT_FAMILIES.iter().copied())
            })
            .unwrap_or(families.len())
    } else {
        families.len()
    };
    let mut report = families.split_off(split);
    let conflict = |l: &Labels| target.iter().any(|(k, _)| l.get(k).is_some());
    let untouched = rules.metric_relabel.is_empty()
        && !families
            .iter()
            .any(|f| f.metrics.iter().any(|m| conflict(&m.labels)));
    if untouched {
        families.extend(report);
        return families;
    }
    let mut by_name: std::collections::BTreeMap<String, MetricFamily> = Default::default();
    let mut kept = 0usize;
    for f in &families {
        for (series, v) in argus_expfmt::series(f) {
            let Some(mut l) = rules.mutate(&series, target) else {
                continue;
            };
            let Some(name) = l.name().map(String::from) else {
                continue; // relabeled without a name: Prometheus refuses the sample
            };
            l.remove(argus_model::labels::METRIC_NAME);
            // The gateway sets the target's labels on every series of the group.
            for (k, _) in target.iter() {
                l.remove(k);
            }
            kept += 1;
            by_name
                .entry(name.clone())
                .or_insert_with(|| MetricFamily::new(&name, MetricType::Untyped))
                .metrics
                .push(argus_expfmt::Metric {
                    labels: l,
                    value: MetricValue::Untyped(v),
                    timestamp_ms: None,
                });
        }
    }
    for f in &mut report {
        if f.name == "scrape_samples_post_metric_relabeling" {
            for m in &mut f.metrics {
                m.value = MetricValue::Untyped(kept as f64);
            }
        }
    }
    let mut out: Vec<MetricFamily> = by_name.into_values().collect();
    out.extend(report);
    out
}

/// `probe_http_duration_seconds` by phase (whole ms), in `argus_status::results::PHASES` order.
fn phases_ms(families: &[argus_expfmt::MetricFamily]) -> Option<[u32; 5]> {
    let f = families
        .iter()
        .find(|f| f.name == "probe_http_duration_seconds")?;
    let mut out = [0u32; 5];
    for m in &f.metrics {
        let phase = m.labels.get("phase")?;
        let i = argus_status::results::PHASES
            .iter()
            .position(|p| *p == phase)?;
        if let argus_expfmt::MetricValue::Gauge(v) | argus_expfmt::MetricValue::Untyped(v) = m.value
        {
            out[i] = (v * 1e3).round().clamp(0.0, u32::MAX as f64) as u32;
        }
    }
    Some(out)
}

fn gauge(families: &[argus_expfmt::MetricFamily], name: &str) -> Option<f64> {
    let f = families.iter().find(|f| f.name == name)?;
    match f.metrics.first()?.value {
        argus_expfmt::MetricValue::Gauge(v) | argus_expfmt::MetricValue::Untyped(v) => {
            v.is_finite().then_some(v)
        }
        _ => None,
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
