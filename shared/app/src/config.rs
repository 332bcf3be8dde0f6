//! `argus.yml`: one file configures a deployment or an `argus dev` run. Paths inside it
//! are relative to the file. Parsed once (at cold start) into typed config.

use argus_model::time::serde_duration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("{path}: field `{field}`: {message}")]
    Field {
        path: String,
        field: String,
        message: String,
    },
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    #[serde(default)]
    pub global: Global,
    #[serde(default)]
    pub probe: ProbeConfig,
    /// Targets `argus dev` seeds into the targets table (existing items are kept).
    #[serde(default)]
    pub targets: Vec<TargetSeed>,
    /// Prometheus rule files (globs allowed), relative to this file.
    #[serde(default)]
    pub rule_files: Vec<String>,
    /// Alertmanager-format configuration file for the notifier, relative to this file.
    #[serde(default)]
    pub alertmanager_config: Option<String>,
    #[serde(default)]
    pub gateway: GatewaySection,
    #[serde(default)]
    pub storage: StorageSection,
    #[serde(default)]
    pub dev: DevSection,
    /// Prometheus `remote_write` queues the evaluator sends every tick's samples to.
    #[serde(default)]
    pub remote_write: Vec<argus_remote_write::RemoteWriteConfig>,
    /// The Prometheus query API (`argus dev`'s `:9090`, the `query` function).
    #[serde(default)]
    pub query: QuerySection,
    /// The status page (`/` of the query endpoint): public mode, which targets.
    #[serde(default)]
    pub status_page: argus_status::StatusConfig,
    /// Where probes run (in AWS, each a region the probe function is deployed to).
    /// Empty: one unnamed location and no `location` label (the single-region setup).
    #[serde(default)]
    pub locations: Vec<String>,
    /// How many locations must fail before a site is down (published as `argus_quorum`
    /// for the quorum rules); default: a majority of `locations`.
    #[serde(default)]
    pub quorum: Option<usize>,
    /// A prometheus.yml to run as it is (scrape jobs, relabeling, file_sd, rule_files,
    /// global intervals), relative to this file; see `argus_app::promconfig`.
    #[serde(default)]
    pub prometheus_config: Option<String>,
    /// Probe modules generated from the prometheus.yml's scrape jobs (name → module
    /// document), merged over `probe.modules_file` (set by `promconfig::apply`).
    #[serde(skip)]
    pub extra_modules: BTreeMap<String, serde_json::Value>,
    /// What the prometheus.yml's jobs (by name) do to the samples they scrape
    /// (`honor_labels`, `metric_relabel_configs`; set by `promconfig::apply`).
    #[serde(skip)]
    pub sample_rules: BTreeMap<String, argus_promconfig::SampleRules>,
    /// The prometheus.yml's Pushgateway job: what its scrape does to pushed series
    /// (set by `promconfig::apply`).
    #[serde(skip)]
    pub gateway_scrape: Option<argus_promconfig::GatewayScrape>,
    /// External Alertmanagers the evaluator sends to instead of the built-in notifier
    /// (a prometheus.yml's `alerting.alertmanagers`; set by `promconfig::apply`).
    #[serde(skip)]
    pub external_alertmanagers: Vec<argus_promconfig::AlertmanagerTarget>,
    /// Directory of this file (set by `load`).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Global {
    /// Period of the probe schedule (the EventBridge rate in AWS).
    #[serde(default = "d15s", with = "serde_duration")]
    pub scrape_interval: Duration,
    /// Period of the evaluator schedule; rule groups without `interval` use it.
    #[serde(default = "d15s", with = "serde_duration")]
    pub evaluation_interval: Duration,
    #[serde(default)]
    pub external_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub external_url: Option<String>,
}

impl Default for Global {
    fn default() -> Self {
        Global {
            scrape_interval: d15s(),
            evaluation_interval: d15s(),
            external_labels: BTreeMap::new(),
            external_url: None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// Probes in flight at once in one invocation.
    #[serde(default = "d_concurrency")]
    pub concurrency: usize,
    /// Above this many due targets, the probe function fans out to itself.
    #[serde(default = "d_shard")]
    pub max_targets_per_invocation: usize,
    /// blackbox.yml-style file with `modules:`, merged over the built-in modules.
    #[serde(default)]
    pub modules_file: Option<String>,
    /// Job label of pushed probe metrics (`job/<job>/instance/<target>`).
    #[serde(default = "d_job")]
    pub job: String,
    #[serde(default = "d30d", with = "serde_duration")]
    pub results_retention: Duration,
    /// Allow probing link-local / instance-metadata addresses (off by default).
    #[serde(default)]
    pub allow_link_local: bool,
    /// The location this probe runs as (one of `locations`); the `ARGUS_LOCATION`
    /// environment variable overrides it.
    #[serde(default)]
    pub location: Option<String>,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            concurrency: d_concurrency(),
            max_targets_per_invocation: d_shard(),
            modules_file: None,
            job: d_job(),
            results_retention: d30d(),
            allow_link_local: false,
            location: None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSeed {
    pub url: String,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub module: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default, with = "serde_duration::option")]
    pub interval: Option<Duration>,
    /// Probe only from these locations (default: all).
    #[serde(default)]
    pub locations: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySection {
    /// Environment variable holding the bearer token pushes must carry (never the token).
    #[serde(default)]
    pub auth_token_env: Option<String>,
    /// Per-job default time-to-live of pushed groups (`job: 10m`), parsed at load so
    /// `argus config check` refuses a bad one.
    #[serde(default, with = "duration_map")]
    pub job_ttl: BTreeMap<String, Duration>,
    /// Serve `PUT /api/v1/admin/wipe` (the real Pushgateway's
    /// `--web.enable-admin-api`); off by default, and it needs the token when one is set.
    #[serde(default)]
    pub enable_admin_api: bool,
}

/// Serde helper: a map of Prometheus durations; a bad one is an error naming its key.
mod duration_map {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::collections::BTreeMap;
    use std::time::Duration;

    pub fn serialize<S: Serializer>(
        m: &BTreeMap<String, Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_map(
            m.iter()
                .map(|(k, d)| (k, argus_model::time::format_duration(*d))),
        )
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Duration>, D::Error> {
        BTreeMap::<String, String>::deserialize(d)?
            .into_iter()
            .map(|(k, v)| match argus_model::time::parse_duration(&v) {
                Ok(d) => Ok((k, d)),
                Err(e) => Err(serde::de::Error::custom(format!(
                    "gateway.job_ttl.{k}: {e}"
                ))),
            })
            .collect()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// How long samples are kept (TTL of the `samples` table items, and the embedded
    /// store's sweep). Prometheus's default: 15 days.
    #[serde(default = "d15d", with = "serde_duration")]
    pub retention: Duration,
}

impl Default for StorageSection {
    fn default() -> Self {
        StorageSection { retention: d15d() }
    }
}

/// Limits of the query API (Prometheus' `--query.*` flags and their defaults).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuerySection {
    /// A query that would load more samples is refused (`--query.max-samples`).
    #[serde(default = "d_max_samples")]
    pub max_samples: usize,
    /// Longest a query may run (`--query.timeout`); a request's `timeout` may shorten it.
    #[serde(default = "d2m", with = "serde_duration")]
    pub timeout: Duration,
    /// How far back an instant selector looks (`--query.lookback-delta`).
    #[serde(default = "d5m", with = "serde_duration")]
    pub lookback_delta: Duration,
}

impl Default for QuerySection {
    fn default() -> Self {
        QuerySection {
            max_samples: d_max_samples(),
            timeout: d2m(),
            lookback_delta: d5m(),
        }
    }
}

fn d_max_samples() -> usize {
    50_000_000
}
fn d2m() -> Duration {
    Duration::from_secs(120)
}
fn d5m() -> Duration {
    Duration::from_secs(300)
}
fn d_query() -> String {
    "127.0.0.1:9090".into()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevSection {
    #[serde(default = "d_data_dir")]
    pub data_dir: String,
    #[serde(default = "d_nlog")]
    pub notifications_file: String,
    #[serde(default = "d_gw")]
    pub gateway_listen: String,
    #[serde(default = "d_bb")]
    pub blackbox_listen: String,
    #[serde(default = "d_am")]
    pub alertmanager_listen: String,
    /// The Prometheus query API (and, with the token in `<data_dir>/dev-api.json`,
    /// the CLI's route into the running store).
    #[serde(default = "d_query")]
    pub query_listen: String,
    /// How often pushed groups are written to the embedded store and the store is
    /// fsynced: pushes and writes are answered from memory and a crash loses at most
    /// this much (the real Pushgateway persists every 5 minutes by default). `0s`
    /// writes and fsyncs before answering each one.
    #[serde(default = "d1s", with = "serde_duration")]
    pub sync_interval: Duration,
    /// Locations simulated in this one process, each probing with its own faults.
    #[serde(default)]
    pub locations: Vec<DevLocation>,
    /// Limits of the three local listeners (the shared HTTP edge, `argus-http`).
    #[serde(default)]
    pub http: HttpLimitsSection,
}

/// `dev.http`: the limits every local listener applies (defaults in
/// [`argus_http::Limits::default`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpLimitsSection {
    /// Time to receive a request's head (slow-loris guard).
    #[serde(with = "serde_duration")]
    pub header_read_timeout: Duration,
    /// Time a kept-alive connection may wait for its next request.
    #[serde(with = "serde_duration")]
    pub idle_timeout: Duration,
    /// Time to read a body and answer (503 with a message after it).
    #[serde(with = "serde_duration")]
    pub request_timeout: Duration,
    /// Largest request body (413 above).
    pub max_body_bytes: usize,
    /// Largest request head (431 above).
    pub max_header_bytes: usize,
    /// Open connections per listener; over it the oldest idle one is closed, or the
    /// newcomer gets 503 when all are busy.
    pub max_connections: usize,
    /// How long stopping waits for requests in progress.
    #[serde(with = "serde_duration")]
    pub shutdown_grace: Duration,
}

impl Default for HttpLimitsSection {
    fn default() -> Self {
        let l = argus_http::Limits::default();
        HttpLimitsSection {
            header_read_timeout: l.header_read_timeout,
            idle_timeout: l.idle_timeout,
            request_timeout: l.request_timeout,
            max_body_bytes: l.max_body_bytes,
            max_header_bytes: l.max_header_bytes,
            max_connections: l.max_connections,
            shutdown_grace: l.shutdown_grace,
        }
    }
}

impl HttpLimitsSection {
    /// The edge's limits, or the name of the `dev.http` field that is unusable and why.
    pub fn limits(&self) -> Result<argus_http::Limits, (&'static str, &'static str)> {
        let l = argus_http::Limits {
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            request_timeout: self.request_timeout,
            max_body_bytes: self.max_body_bytes,
            max_header_bytes: self.max_header_bytes,
            max_connections: self.max_connections,
            shutdown_grace: self.shutdown_grace,
        };
        l.validate()?;
        Ok(l)
    }
}

/// A location `argus dev` simulates: its own probe run and series, with injected faults.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevLocation {
    /// One of `locations`.
    pub name: String,
    /// Target ids this location cannot reach: their probes fail without sending
    /// anything ("unreachable from <name>").
    #[serde(default)]
    pub unreachable: Vec<String>,
    /// The location never reports (its probe does not run): its silence must alert.
    #[serde(default)]
    pub silent: bool,
}

impl Default for DevSection {
    fn default() -> Self {
        DevSection {
            data_dir: d_data_dir(),
            notifications_file: d_nlog(),
            gateway_listen: d_gw(),
            blackbox_listen: d_bb(),
            alertmanager_listen: d_am(),
            query_listen: d_query(),
            sync_interval: d1s(),
            http: HttpLimitsSection::default(),
            locations: Vec::new(),
        }
    }
}

fn d1s() -> Duration {
    Duration::from_secs(1)
}
fn d15s() -> Duration {
    Duration::from_secs(15)
}
fn d30d() -> Duration {
    Duration::from_secs(30 * 86400)
}
fn d15d() -> Duration {
    Duration::from_secs(argus_tsdb::DEFAULT_RETENTION_S as u64)
}
fn d_concurrency() -> usize {
    64
}
fn d_shard() -> usize {
    1000
}
fn d_job() -> String {
    "probe".into()
}
fn d_data_dir() -> String {
    ".argus".into()
}
fn d_nlog() -> String {
    ".argus/notifications.jsonl".into()
}
fn d_gw() -> String {
    "127.0.0.1:9091".into()
}
fn d_bb() -> String {
    "127.0.0.1:9115".into()
}
fn d_am() -> String {
    "127.0.0.1:9093".into()
}

impl AppConfig {
    pub fn load(path: &Path) -> Result<AppConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let mut cfg = Self::parse(&text, &path.display().to_string())?;
        cfg.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(cfg)
    }

    pub fn parse(text: &str, origin: &str) -> Result<AppConfig, ConfigError> {
        let cfg: AppConfig = serde_saphyr::from_str(text).map_err(|e| ConfigError::File {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        if cfg.probe.concurrency == 0 {
            return Err(ConfigError::Field {
                path: origin.into(),
                field: "probe.concurrency".into(),
                message: "must be at least 1".into(),
            });
        }
        argus_remote_write::validate_all(&cfg.remote_write).map_err(|e| ConfigError::Field {
            path: origin.into(),
            field: e.field,
            message: e.message,
        })?;
        if let Err((field, message)) = cfg.dev.http.limits() {
            return Err(ConfigError::Field {
                path: origin.into(),
                field: format!("dev.http.{field}"),
                message: message.into(),
            });
        }
        for (i, t) in cfg.targets.iter().enumerate() {
            if t.url.trim().is_empty() {
                return Err(ConfigError::Field {
                    path: origin.into(),
                    field: format!("targets[{i}].url"),
                    message: "must not be empty".into(),
                });
            }
        }
        cfg.check_locations(origin)?;
        Ok(cfg)
    }

    /// `locations`, `quorum`, `probe.location`, `dev.locations` and the seeded
    /// targets' `locations` agree with each other.
    fn check_locations(&self, origin: &str) -> Result<(), ConfigError> {
        let err = |field: String, message: String| ConfigError::Field {
            path: origin.into(),
            field,
            message,
        };
        let names = &self.locations;
        for (i, n) in names.iter().enumerate() {
            if n.trim().is_empty() || n.contains('/') {
                return Err(err(
                    format!("locations[{i}]"),
                    format!("{n:?} is not a location name (non-empty, no `/`)"),
                ));
            }
            if names[..i].contains(n) {
                return Err(err(
                    format!("locations[{i}]"),
                    format!("{n:?} is listed twice"),
                ));
            }
        }
        if let Some(q) = self.quorum {
            if names.is_empty() {
                return Err(err(
                    "quorum".into(),
                    "needs `locations` (a quorum of locations)".into(),
                ));
            }
            if q == 0 || q > names.len() {
                return Err(err(
                    "quorum".into(),
                    format!(
                        "{q} is not between 1 and the {} locations configured ({})",
                        names.len(),
                        names.join(", ")
                    ),
                ));
            }
        }
        let known = |field: String, l: &str| -> Result<(), ConfigError> {
            if names.iter().any(|n| n == l) {
                Ok(())
            } else if names.is_empty() {
                Err(err(
                    field,
                    format!("unknown location {l:?}: no `locations` are configured"),
                ))
            } else {
                Err(err(
                    field,
                    format!("unknown location {l:?} (configured: {})", names.join(", ")),
                ))
            }
        };
        if let Some(l) = &self.probe.location {
            known("probe.location".into(), l)?;
        }
        for (i, d) in self.dev.locations.iter().enumerate() {
            known(format!("dev.locations[{i}].name"), &d.name)?;
            if self.dev.locations[..i].iter().any(|o| o.name == d.name) {
                return Err(err(
                    format!("dev.locations[{i}].name"),
                    format!("{:?} is simulated twice", d.name),
                ));
            }
        }
        for (i, t) in self.targets.iter().enumerate() {
            for (j, l) in t.locations.iter().enumerate() {
                known(format!("targets[{i}].locations[{j}] ({})", t.url), l)?;
            }
        }
        Ok(())
    }

    /// Failing locations that make a site down: `quorum`, else a majority.
    pub fn quorum(&self) -> usize {
        self.quorum.unwrap_or(self.locations.len() / 2 + 1)
    }

    /// The location this process probes as: `ARGUS_LOCATION` (`env`) over
    /// `probe.location`; an unknown name is an error naming where it came from. With
    /// `locations` configured and none chosen, the first location (the home region).
    pub fn probe_location(&self, env: Option<&str>) -> Result<Option<String>, ConfigError> {
        let (field, chosen) = match env.filter(|s| !s.is_empty()) {
            Some(e) => ("ARGUS_LOCATION", Some(e.to_string())),
            None => ("probe.location", self.probe.location.clone()),
        };
        match chosen {
            None => Ok(self.locations.first().cloned()),
            Some(l) if self.locations.contains(&l) => Ok(Some(l)),
            Some(l) => Err(ConfigError::Field {
                path: "argus.yml".into(),
                field: field.into(),
                message: if self.locations.is_empty() {
                    format!("location {l:?}: argus.yml configures no `locations`")
                } else {
                    format!(
                        "location {l:?} is not one of the configured locations ({}): deploy and list it first",
                        self.locations.join(", ")
                    )
                },
            }),
        }
    }

    /// A path from the config, resolved against the config file's directory.
    pub fn resolve(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// Expands `rule_files` globs (`*` and `?` in the file name part).
    pub fn rule_paths(&self) -> Result<Vec<PathBuf>, ConfigError> {
        let mut out = Vec::new();
        for pat in &self.rule_files {
            let full = self.resolve(pat);
            let name = full.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !name.contains('*') && !name.contains('?') {
                out.push(full);
                continue;
            }
            let dir = full.parent().map(Path::to_path_buf).unwrap_or_default();
            let rx: Vec<char> = name.chars().collect();
            let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map_err(|e| ConfigError::Field {
                    path: dir.display().to_string(),
                    field: "rule_files".into(),
                    message: e.to_string(),
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| glob_match(&rx, n))
                })
                .collect();
            found.sort();
            out.extend(found);
        }
        Ok(out)
    }

    pub fn targets(&self) -> Vec<argus_model::Target> {
        self.targets
            .iter()
            .map(|s| {
                let mut t = argus_model::Target::new(&s.url);
                if let Some(id) = &s.id {
                    t.id = id.clone();
                }
                if let Some(m) = &s.module {
                    t.module = m.clone();
                }
                t.labels = s.labels.clone();
                t.interval = s.interval;
                t.locations = s.locations.clone();
                t
            })
            .collect()
    }
}

/// Shell-style match of `*` and `?` (no character classes).
fn glob_match(p: &[char], s: &str) -> bool {
    let s: Vec<char> = s.chars().collect();
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_unknown_fields() {
        let c = AppConfig::parse("targets:\n  - url: https://example.com\n", "t.yml").unwrap();
        assert_eq!(c.global.evaluation_interval, Duration::from_secs(15));
        assert_eq!(c.probe.job, "probe");
        let e = AppConfig::parse("probe:\n  concurency: 3\n", "t.yml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("concurency"), "{e}");
        let e = AppConfig::parse("probe:\n  concurrency: 0\n", "t.yml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("probe.concurrency"), "{e}");
        let e = AppConfig::parse("global:\n  scrape_interval: 5x\n", "t.yml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("duration"), "{e}");
        // gateway.job_ttl is parsed at load (issue 17): `argus config check` refuses it.
        let c = AppConfig::parse("gateway:\n  job_ttl: {batch: 10m}\n", "t.yml").unwrap();
        assert_eq!(c.gateway.job_ttl["batch"], Duration::from_secs(600));
        let e = AppConfig::parse("gateway:\n  job_ttl: {batch: soon}\n", "t.yml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("gateway.job_ttl.batch: not a valid duration string: \"soon\""),
            "{e}"
        );
    }

    #[test]
    fn remote_write_section() {
        let c = AppConfig::parse(
            "remote_write:\n  - url: http://127.0.0.1:9090/api/v1/write\n    name: prom\n",
            "t.yml",
        )
        .unwrap();
        assert_eq!(c.remote_write[0].queue_name(), "prom");
        let e = AppConfig::parse(
            "remote_write:\n  - url: http://a/\n    basic_auht: {}\n",
            "t.yml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("basic_auht"), "{e}");
        let e = AppConfig::parse(
            "remote_write:\n  - url: http://a/\n    headers: {User-Agent: x}\n",
            "t.yml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("t.yml: field `remote_write[0].headers`: User-Agent is a reserved header"),
            "{e}"
        );
    }

    #[test]
    fn dev_http_limits_default_parse_and_are_checked() {
        let c = AppConfig::parse("{}", "t.yml").unwrap();
        assert_eq!(c.dev.http.limits().unwrap(), argus_http::Limits::default());
        assert!(!c.gateway.enable_admin_api);
        let c = AppConfig::parse(
            "gateway:\n  enable_admin_api: true\ndev:\n  http:\n    header_read_timeout: 3s\n    max_connections: 50\n",
            "t.yml",
        )
        .unwrap();
        assert!(c.gateway.enable_admin_api);
        let l = c.dev.http.limits().unwrap();
        assert_eq!(l.header_read_timeout, Duration::from_secs(3));
        assert_eq!(l.max_connections, 50);
        assert_eq!(l.idle_timeout, argus_http::Limits::default().idle_timeout);
        for (yaml, field) in [
            (
                "dev:\n  http:\n    max_connections: 0\n",
                "dev.http.max_connections",
            ),
            (
                "dev:\n  http:\n    idle_timeout: 0s\n",
                "dev.http.idle_timeout",
            ),
            ("dev:\n  http:\n    max_conections: 5\n", "max_conections"),
        ] {
            let e = AppConfig::parse(yaml, "t.yml").unwrap_err().to_string();
            assert!(e.contains(field), "{yaml}: {e}");
        }
        // The example config spells out the defaults.
        let ex = AppConfig::load(&repo_root().join("examples/argus.yml")).unwrap();
        assert_eq!(ex.dev.http.limits().unwrap(), argus_http::Limits::default());
    }

    fn repo_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    #[test]
    fn locations_are_checked() {
        let ok = "locations: [eu, us, ap]\nprobe:\n  location: us\ntargets:\n  - url: https://a\n    locations: [eu, us]\n";
        let c = AppConfig::parse(ok, "t.yml").unwrap();
        assert_eq!(c.quorum(), 2);
        assert_eq!(c.targets()[0].locations, ["eu", "us"]);
        assert_eq!(c.probe_location(None).unwrap().as_deref(), Some("us"));
        assert_eq!(c.probe_location(Some("ap")).unwrap().as_deref(), Some("ap"));
        let e = c.probe_location(Some("mars")).unwrap_err().to_string();
        assert!(e.contains("ARGUS_LOCATION") && e.contains("mars"), "{e}");
        let bad = |text: &str, want: &[&str]| {
            let e = AppConfig::parse(text, "t.yml").unwrap_err().to_string();
            for w in want {
                assert!(e.contains(w), "{w:?} not in {e}");
            }
        };
        bad(
            "locations: [eu, us]\ntargets:\n  - url: https://a\n  - url: https://b\n    locations: [us, mars]\n",
            &["targets[1].locations[1]", "https://b", "mars", "eu, us"],
        );
        bad(
            "locations: [eu, us, ap]\nquorum: 4\n",
            &["`quorum`", "4", "3 locations"],
        );
        bad("quorum: 1\n", &["`quorum`"]);
        bad("locations: [eu, eu]\n", &["locations[1]", "twice"]);
        bad(
            "locations: [eu]\nprobe:\n  location: us\n",
            &["probe.location", "\"us\""],
        );
        bad(
            "locations: [eu]\ndev:\n  locations:\n    - name: us\n",
            &["dev.locations[0].name"],
        );
        let c = AppConfig::parse("{}", "t.yml").unwrap();
        assert_eq!(c.probe_location(None).unwrap(), None);
    }

    #[test]
    fn globs() {
        let chars: Vec<char> = "*.yml".chars().collect();
        assert!(glob_match(&chars, "a.yml"));
        assert!(!glob_match(&chars, "a.yaml"));
        let chars: Vec<char> = "r?.y*".chars().collect();
        assert!(glob_match(&chars, "r1.yaml"));
    }
}
