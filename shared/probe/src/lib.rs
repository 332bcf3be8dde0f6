//! argus-probe: blackbox_exporter-compatible probes (http, tcp, dns) and Prometheus-style
//! scraping (`scrape`), built once and run for many targets with bounded concurrency.
//!
//! - [`load_modules`]: blackbox.yml `modules:` vocabulary, merged over the defaults.
//! - [`Prober::probe`]: one probe → [`ProbeOutcome`] with exactly blackbox's metric set.
//! - [`Prober::run_many`] / [`Prober::run_targets`]: many targets, bounded concurrency,
//!   each bounded by its own timeout; bad input is a failed outcome, never a failed run.
//! - [`shard`]: split targets for the probe function's self fan-out.
//! - [`Prober::handle_probe_http`] / [`serve`]: blackbox's `GET /probe` for `argus dev`.

pub mod config;
mod dns;
mod http;
pub mod net;
mod registry;
pub mod scrape;
mod server;
mod tcp;
pub mod tls;

pub use config::{load_modules, ConfigError, Module, Modules, ProbeKind};
pub use server::{serve, Endpoint};

use argus_expfmt::{Metric, MetricFamily, MetricType, MetricValue};
use argus_model::{Labels, Millis, Target};
use futures::StreamExt;
use registry::{Ctx, Registry};
use std::time::{Duration, Instant};

/// Settings of a [`Prober`]; build it once per process (cold start).
#[derive(Clone, Debug)]
pub struct ProberConfig {
    /// Timeout of a probe whose module sets none.
    pub default_timeout: Duration,
    /// Allow link-local / instance-metadata addresses for every module.
    pub allow_link_local: bool,
    /// User-Agent of http probes (blackbox sends `Blackbox Exporter/<version>`).
    pub user_agent: String,
}

impl Default for ProberConfig {
    fn default() -> Self {
        ProberConfig {
            default_timeout: Duration::from_secs(10),
            allow_link_local: false,
            user_agent: format!(
                "Argus/{} (blackbox_exporter compatible)",
                env!("CARGO_PKG_VERSION")
            ),
        }
    }
}

/// The result of one probe.
#[derive(Clone, Debug)]
pub struct ProbeOutcome {
    pub success: bool,
    /// For http/tcp/dns: exactly blackbox_exporter's families for the module, sorted by
    /// name. For scrape: the target's families followed by `up`, `scrape_*`.
    pub families: Vec<MetricFamily>,
    /// logfmt lines, like blackbox's `?debug=true` "Logs for the probe".
    pub log: Vec<String>,
    pub duration: Duration,
    /// HTTP status of the final response (http, scrape), when one arrived.
    pub status_code: Option<u16>,
    /// Why the probe failed (the last error logged), `None` on success.
    pub error: Option<String>,
    /// When the probe started (the `now` given).
    pub at: Millis,
}

impl ProbeOutcome {
    /// A probe that could not start (unknown module, ...): `probe_success 0` (`up 0` for
    /// the scrape prober) and the error.
    pub fn failed(scrape: bool, error: impl Into<String>, now: Millis) -> ProbeOutcome {
        let error = error.into();
        let families = if scrape {
            vec![family("up", None, MetricType::Untyped, 0.0)]
        } else {
            vec![
                family(
                    "probe_duration_seconds",
                    Some("Returns how long the probe took to complete in seconds"),
                    MetricType::Gauge,
                    0.0,
                ),
                family(
                    "probe_success",
                    Some("Displays whether or not the probe was a success"),
                    MetricType::Gauge,
                    0.0,
                ),
            ]
        };
        ProbeOutcome {
            success: false,
            families,
            log: vec![format!(
                "ts={} level=error msg={:?}",
                argus_model::time::rfc3339(now),
                error
            )],
            duration: Duration::ZERO,
            status_code: None,
            error: Some(error),
            at: now,
        }
    }

    /// The value of a label-less family (`probe_success`, `up`, ...).
    pub fn value(&self, name: &str) -> Option<f64> {
        let f = self.families.iter().find(|f| f.name == name)?;
        f.metrics.first().map(|m| match m.value {
            MetricValue::Gauge(v) | MetricValue::Untyped(v) | MetricValue::Counter(v) => v,
            _ => f64::NAN,
        })
    }

    /// The exposition text of the families.
    pub fn text(&self) -> String {
        argus_expfmt::write_text(&self.families)
    }
}

fn family(name: &str, help: Option<&str>, kind: MetricType, v: f64) -> MetricFamily {
    let value = match kind {
        MetricType::Gauge => MetricValue::Gauge(v),
        _ => MetricValue::Untyped(v),
    };
    MetricFamily {
        name: name.to_string(),
        help: help.map(str::to_string),
        kind,
        metrics: vec![Metric {
            labels: Labels::new(),
            value,
            timestamp_ms: None,
        }],
    }
}

fn to_families(reg: &Registry) -> Vec<MetricFamily> {
    reg.families
        .iter()
        .filter(|(_, f)| !f.samples.is_empty())
        .map(|(name, f)| MetricFamily {
            name: name.to_string(),
            help: Some(f.help.to_string()),
            kind: match f.kind {
                registry::Kind::Gauge => MetricType::Gauge,
                registry::Kind::Untyped => MetricType::Untyped,
            },
            metrics: f
                .samples
                .iter()
                .map(|(labels, v)| Metric {
                    labels: Labels::from_pairs(labels.iter().map(|(k, v)| (*k, v.as_str()))),
                    value: MetricValue::Gauge(*v),
                    timestamp_ms: None,
                })
                .collect(),
        })
        .collect()
}

/// Probes targets; holds the shared TLS configurations. Cheap to share in an `Arc`.
pub struct Prober {
    cfg: ProberConfig,
    pub(crate) tls: tls::TlsCache,
    pub(crate) user_agent: String,
    pub(crate) scrape_user_agent: String,
}

impl Prober {
    pub fn new(cfg: ProberConfig) -> Prober {
        Prober {
            user_agent: cfg.user_agent.clone(),
            scrape_user_agent: format!("Argus/{} (scrape)", env!("CARGO_PKG_VERSION")),
            tls: tls::TlsCache::new(),
            cfg,
        }
    }

    pub fn config(&self) -> &ProberConfig {
        &self.cfg
    }

    /// The module's timeout, else the default.
    pub fn timeout_for(&self, module: &Module) -> Duration {
        module.timeout.unwrap_or(self.cfg.default_timeout)
    }

    /// Runs one probe, bounded by the module's timeout (or the default).
    pub async fn probe(&self, target: &str, module: &Module, now: Millis) -> ProbeOutcome {
        self.probe_with_timeout(target, module, now, self.timeout_for(module))
            .await
    }

    /// Runs one probe bounded by `timeout`; on timeout the metrics measured so far are
    /// reported with `probe_success 0`, like blackbox.
    pub async fn probe_with_timeout(
        &self,
        target: &str,
        module: &Module,
        now: Millis,
        timeout: Duration,
    ) -> ProbeOutcome {
        let start = Instant::now();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut ctx = Ctx::new(
            now,
            &module.name,
            target,
            self.cfg.allow_link_local || module.allow_link_local,
        );
        ctx.info(
            "Beginning probe",
            &[
                ("probe", &module.prober()),
                ("timeout_seconds", &timeout.as_secs_f64()),
            ],
        );
        let (success, families) = match &module.kind {
            ProbeKind::Scrape(m) => {
                let (ok, fams) =
                    scrape::probe_scrape(&mut ctx, self, target, m, deadline, timeout).await;
                (ok, Some(fams))
            }
            kind => {
                ctx.reg.gauge(
                    "probe_success",
                    "Displays whether or not the probe was a success",
                );
                ctx.reg.gauge(
                    "probe_duration_seconds",
                    "Returns how long the probe took to complete in seconds",
                );
                let ok = match kind {
                    ProbeKind::Http(m) => {
                        http::probe_http(&mut ctx, self, target, m, deadline).await
                    }
                    ProbeKind::Tcp(m) => tcp::probe_tcp(&mut ctx, self, target, m, deadline).await,
                    ProbeKind::Dns(m) => dns::probe_dns(&mut ctx, target, m, deadline).await,
                    ProbeKind::Scrape(_) => false,
                };
                (ok, None)
            }
        };
        let duration = start.elapsed();
        if let ProbeKind::Http(_) = module.kind {
            ctx.status_code = ctx
                .reg
                .get("probe_http_status_code")
                .filter(|c| *c > 0.0)
                .map(|c| c as u16);
        }
        ctx.reg
            .set("probe_duration_seconds", duration.as_secs_f64());
        ctx.reg
            .set("probe_success", if success { 1.0 } else { 0.0 });
        if success {
            ctx.info(
                "Probe succeeded",
                &[("duration_seconds", &duration.as_secs_f64())],
            );
        } else {
            let err = ctx.last_error.clone();
            ctx.log(
                registry::Level::Error,
                "Probe failed",
                &[("duration_seconds", &duration.as_secs_f64())],
            );
            ctx.last_error = err.or_else(|| Some("probe failed".into()));
        }
        ProbeOutcome {
            success,
            families: families.unwrap_or_else(|| to_families(&ctx.reg)),
            log: std::mem::take(&mut ctx.log),
            duration,
            status_code: ctx.status_code,
            error: if success { None } else { ctx.last_error.take() },
            at: now,
        }
    }

    /// Probes every job with at most `concurrency` in flight; outcomes come back in job
    /// order. Each probe is bounded by its own timeout (plus a 1 s guard), so a hanging
    /// target never delays the others beyond that.
    pub async fn run_many(
        &self,
        jobs: Vec<(Target, Module)>,
        concurrency: usize,
        now: Millis,
    ) -> Vec<ProbeOutcome> {
        let n = jobs.len();
        let mut out: Vec<Option<ProbeOutcome>> = vec![None; n];
        let mut stream = futures::stream::iter(jobs.into_iter().enumerate())
            .map(|(i, (t, m))| async move {
                let timeout = self.timeout_for(&m);
                let scrape = matches!(m.kind, ProbeKind::Scrape(_));
                let guard = timeout + Duration::from_secs(1);
                let o = match tokio::time::timeout(
                    guard,
                    self.probe_with_timeout(&t.url, &m, now, timeout),
                )
                .await
                {
                    Ok(o) => o,
                    Err(_) => ProbeOutcome::failed(
                        scrape,
                        format!("probe of {:?} did not finish within {:?}", t.url, guard),
                        now,
                    ),
                };
                (i, o)
            })
            .buffer_unordered(concurrency.max(1));
        while let Some((i, o)) = stream.next().await {
            out[i] = Some(o);
        }
        out.into_iter()
            .map(|o| o.unwrap_or_else(|| ProbeOutcome::failed(false, "probe was not run", now)))
            .collect()
    }

    /// Like [`Prober::run_many`], looking modules up by name: a target naming an unknown
    /// module gets a failed outcome saying so.
    pub async fn run_targets(
        &self,
        targets: Vec<Target>,
        modules: &Modules,
        concurrency: usize,
        now: Millis,
    ) -> Vec<(Target, ProbeOutcome)> {
        let mut jobs = Vec::new();
        let mut slots: Vec<Result<usize, ProbeOutcome>> = Vec::with_capacity(targets.len());
        for t in &targets {
            match modules.get(&t.module) {
                Some(m) => {
                    slots.push(Ok(jobs.len()));
                    jobs.push((t.clone(), m.clone()));
                }
                None => slots.push(Err(ProbeOutcome::failed(
                    t.module == "scrape",
                    format!(
                        "unknown module {:?} for target {:?} (known: {})",
                        t.module,
                        t.id,
                        modules.names().collect::<Vec<_>>().join(", ")
                    ),
                    now,
                ))),
            }
        }
        let mut done: Vec<Option<ProbeOutcome>> = self
            .run_many(jobs, concurrency, now)
            .await
            .into_iter()
            .map(Some)
            .collect();
        targets
            .into_iter()
            .zip(slots)
            .map(|(t, s)| {
                let o = match s {
                    Ok(i) => done[i]
                        .take()
                        .unwrap_or_else(|| ProbeOutcome::failed(false, "probe was not run", now)),
                    Err(o) => o,
                };
                (t, o)
            })
            .collect()
    }

    /// blackbox's `GET /probe?target=..&module=..[&debug=true]` as a response.
    pub async fn handle_probe_http(
        &self,
        query: &str,
        modules: &Modules,
        now: Millis,
    ) -> ::http::Response<bytes::Bytes> {
        server::handle_probe(self, query, None, modules, now).await
    }
}

/// Splits targets into shards of at most `max_per_shard`, balanced (sizes differ by at
/// most one) and stable: targets are ordered by id, so the same set always gives the
/// same shards.
pub fn shard(mut targets: Vec<Target>, max_per_shard: usize) -> Vec<Vec<Target>> {
    if targets.is_empty() {
        return Vec::new();
    }
    let max = max_per_shard.max(1);
    targets.sort_by(|a, b| a.id.cmp(&b.id));
    let n = targets.len();
    let shards = n.div_ceil(max);
    let base = n / shards;
    let extra = n % shards;
    let mut out = Vec::with_capacity(shards);
    let mut it = targets.into_iter();
    for i in 0..shards {
        let size = base + usize::from(i < extra);
        out.push(it.by_ref().take(size).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(n: usize) -> Vec<Target> {
        (0..n)
            .map(|i| Target::new(&format!("https://t{i:04}.example")))
            .collect()
    }

    #[test]
    fn shard_is_balanced_stable_and_complete() {
        assert!(shard(vec![], 10).is_empty());
        let s = shard(targets(25), 10);
        assert_eq!(s.iter().map(Vec::len).collect::<Vec<_>>(), [9, 8, 8]);
        let mut rev = targets(25);
        rev.reverse();
        let s2 = shard(rev, 10);
        assert_eq!(s, s2, "same set → same shards regardless of input order");
        let all: Vec<String> = s.iter().flatten().map(|t| t.id.clone()).collect();
        let mut want: Vec<String> = targets(25).into_iter().map(|t| t.id).collect();
        want.sort();
        assert_eq!(all, want);
        assert_eq!(shard(targets(1000), 1000).len(), 1);
        assert_eq!(
            shard(targets(1001), 1000)
                .iter()
                .map(Vec::len)
                .collect::<Vec<_>>(),
            [501, 500]
        );
        assert_eq!(shard(targets(3), 0).len(), 3);
    }

    #[test]
    fn failed_outcome_has_probe_success_zero() {
        let o = ProbeOutcome::failed(false, "unknown module", 0);
        assert_eq!(o.value("probe_success"), Some(0.0));
        let o = ProbeOutcome::failed(true, "x", 0);
        assert_eq!(o.value("up"), Some(0.0));
    }
}
