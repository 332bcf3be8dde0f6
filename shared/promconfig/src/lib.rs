//! argus-promconfig: a `prometheus.yml` as users have it, mapped onto Argus.
//!
//! [`parse`] reads the file (serde-saphyr) into [`PromConfig`], keeping every key it
//! does not map so that [`PromConfig::unsupported`] can name each one (per job and
//! key): nothing is dropped silently. [`populate`] is Prometheus 2.42's
//! `PopulateLabels` (`scrape/target.go`): the discovered labels of one target, the
//! job's defaults (`job`, `__scrape_interval__`, `__scrape_timeout__`,
//! `__metrics_path__`, `__scheme__`, `__param_<name>`), its `relabel_configs` through
//! argus-relabel, the default port, the `instance` default and the removal of
//! `__meta_*`. [`plan`] turns the result into Argus targets:
//!
//! - the blackbox multi-target pattern (a `__param_target` after relabeling, on a
//!   `/probe` path) becomes a probe target of the URL in `__param_target` with the
//!   module in `__param_module` (from `params.module`), keeping `instance` and the
//!   other labels the relabeling produced;
//! - a job scraping a Pushgateway (its name says so or a target is on :9091) is
//!   replaced by Argus's own gateway: no target, one note;
//! - any other job becomes `scrape` targets of the URL Prometheus would scrape, with a
//!   per-job module carrying its timeout, `basic_auth`, `authorization` and
//!   `tls_config`.
//!
//! No I/O except [`read_file_sd`], which globs and reads `file_sd_configs` files.

use argus_model::time::parse_duration;
use argus_model::{Labels, Target};
use argus_relabel::{Relabel, RelabelConfig};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum PromConfigError {
    #[error("{origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("{origin}: {field}: {message}")]
    Field {
        origin: String,
        field: String,
        message: String,
    },
}

/// The top level of prometheus.yml. Keys Argus does not map are kept in `other`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct PromConfig {
    #[serde(default)]
    pub global: GlobalConfig,
    #[serde(default)]
    pub scrape_configs: Vec<ScrapeConfig>,
    #[serde(default)]
    pub rule_files: Vec<String>,
    #[serde(default)]
    pub alerting: Option<Value>,
    #[serde(default)]
    pub remote_write: Vec<Value>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct GlobalConfig {
    #[serde(default)]
    pub scrape_interval: Option<String>,
    #[serde(default)]
    pub scrape_timeout: Option<String>,
    #[serde(default)]
    pub evaluation_interval: Option<String>,
    #[serde(default)]
    pub external_labels: BTreeMap<String, String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct ScrapeConfig {
    pub job_name: String,
    #[serde(default)]
    pub scrape_interval: Option<String>,
    #[serde(default)]
    pub scrape_timeout: Option<String>,
    #[serde(default)]
    pub metrics_path: Option<String>,
    #[serde(default)]
    pub scheme: Option<String>,
    #[serde(default)]
    pub params: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub honor_labels: Option<bool>,
    #[serde(default)]
    pub honor_timestamps: Option<bool>,
    #[serde(default)]
    pub basic_auth: Option<Value>,
    #[serde(default)]
    pub authorization: Option<Value>,
    #[serde(default)]
    pub tls_config: Option<Value>,
    #[serde(default)]
    pub sample_limit: Option<u64>,
    #[serde(default)]
    pub body_size_limit: Option<Value>,
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    #[serde(default)]
    pub file_sd_configs: Vec<FileSdConfig>,
    #[serde(default)]
    pub relabel_configs: Vec<RelabelConfig>,
    #[serde(default)]
    pub metric_relabel_configs: Vec<RelabelConfig>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    pub files: Vec<String>,
    #[serde(default)]
    pub refresh_interval: Option<String>,
}

/// One target group as discovery yields it (file_sd's `[{targets, labels}]`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetGroup {
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Prometheus's defaults (config/config.go at v2.42.0).
pub const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_secs(60);
pub const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_EVALUATION_INTERVAL: Duration = Duration::from_secs(60);
pub const DEFAULT_FILE_SD_REFRESH: Duration = Duration::from_secs(300);

/// Service discovery keys of 2.42 that Argus does not implement.
const DISCOVERY_KEYS: &[&str] = &[
    "azure_sd_configs",
    "consul_sd_configs",
    "digitalocean_sd_configs",
    "docker_sd_configs",
    "dockerswarm_sd_configs",
    "dns_sd_configs",
    "ec2_sd_configs",
    "eureka_sd_configs",
    "gce_sd_configs",
    "hetzner_sd_configs",
    "http_sd_configs",
    "ionos_sd_configs",
    "kubernetes_sd_configs",
    "kuma_sd_configs",
    "lightsail_sd_configs",
    "linode_sd_configs",
    "marathon_sd_configs",
    "nerve_sd_configs",
    "nomad_sd_configs",
    "openstack_sd_configs",
    "ovhcloud_sd_configs",
    "puppetdb_sd_configs",
    "scaleway_sd_configs",
    "serverset_sd_configs",
    "triton_sd_configs",
    "uyuni_sd_configs",
    "vultr_sd_configs",
];

/// Parses prometheus.yml text. Structural errors (a wrong type, a bad relabel rule, an
/// unparsable duration, two jobs of one name) are errors naming the field; keys Argus
/// cannot map are not errors but [`PromConfig::unsupported`] messages.
pub fn parse(text: &str, origin: &str) -> Result<PromConfig, PromConfigError> {
    let cfg: PromConfig = serde_saphyr::from_str(text).map_err(|e| PromConfigError::Parse {
        origin: origin.into(),
        message: e.to_string(),
    })?;
    let ferr = |field: String, message: String| PromConfigError::Field {
        origin: origin.into(),
        field,
        message,
    };
    let g = cfg.global()?;
    let _ = g;
    let mut seen = std::collections::BTreeSet::new();
    for (i, j) in cfg.scrape_configs.iter().enumerate() {
        let at = format!("scrape_configs[{i}]");
        if j.job_name.is_empty() {
            return Err(ferr(format!("{at}.job_name"), "must not be empty".into()));
        }
        if !seen.insert(j.job_name.clone()) {
            return Err(ferr(
                format!("{at}.job_name"),
                format!(
                    "found multiple scrape configs with job name {:?}",
                    j.job_name
                ),
            ));
        }
        cfg.job(i).map_err(|e| match e {
            PromConfigError::Field { field, message, .. } => ferr(field, message),
            other => other,
        })?;
        if let Some(s) = &j.scheme {
            if s != "http" && s != "https" {
                return Err(ferr(
                    format!("{at}.scheme"),
                    format!("unknown scrape config scheme {s:?}"),
                ));
            }
        }
        for (k, f) in j.file_sd_configs.iter().enumerate() {
            if let Some(r) = &f.refresh_interval {
                parse_duration(r)
                    .map_err(|e| ferr(format!("{at}.file_sd_configs[{k}].refresh_interval"), e))?;
            }
        }
        argus_relabel::compile_all(&format!("{at}.relabel_configs"), &j.relabel_configs)
            .map_err(|e| ferr(format!("{at}.relabel_configs"), e.to_string()))?;
        argus_relabel::compile_all(
            &format!("{at}.metric_relabel_configs"),
            &j.metric_relabel_configs,
        )
        .map_err(|e| ferr(format!("{at}.metric_relabel_configs"), e.to_string()))?;
    }
    Ok(cfg)
}

/// The global section with Prometheus's defaults applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Global {
    pub scrape_interval: Duration,
    pub scrape_timeout: Duration,
    pub evaluation_interval: Duration,
    pub external_labels: BTreeMap<String, String>,
}

/// One job with its defaults applied and its relabel rules compiled.
#[derive(Clone, Debug)]
pub struct Job {
    pub name: String,
    pub scrape_interval: Duration,
    pub scrape_timeout: Duration,
    pub metrics_path: String,
    pub scheme: String,
    pub params: BTreeMap<String, Vec<String>>,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub relabel: Vec<Relabel>,
    /// `metric_relabel_configs`, compiled.
    pub metric_relabel: Vec<Relabel>,
}

fn dur(field: &str, v: &Option<String>, default: Duration) -> Result<Duration, PromConfigError> {
    match v {
        None => Ok(default),
        Some(s) => parse_duration(s).map_err(|e| PromConfigError::Field {
            origin: String::new(),
            field: field.into(),
            message: e,
        }),
    }
}

impl PromConfig {
    /// `global` with 2.42's defaults: a timeout left unset is 10 s, or the interval
    /// when that is shorter; a timeout set above the interval is an error.
    pub fn global(&self) -> Result<Global, PromConfigError> {
        let g = &self.global;
        let scrape_interval = dur(
            "global.scrape_interval",
            &g.scrape_interval,
            DEFAULT_SCRAPE_INTERVAL,
        )?;
        let scrape_timeout = match &g.scrape_timeout {
            None => DEFAULT_SCRAPE_TIMEOUT.min(scrape_interval),
            t => dur("global.scrape_timeout", t, DEFAULT_SCRAPE_TIMEOUT)?,
        };
        if scrape_timeout > scrape_interval {
            return Err(PromConfigError::Field {
                origin: String::new(),
                field: "global.scrape_timeout".into(),
                message: "global scrape timeout greater than scrape interval".into(),
            });
        }
        Ok(Global {
            scrape_interval,
            scrape_timeout,
            evaluation_interval: dur(
                "global.evaluation_interval",
                &g.evaluation_interval,
                DEFAULT_EVALUATION_INTERVAL,
            )?,
            external_labels: g.external_labels.clone(),
        })
    }

    /// Job `i` with the global defaults applied (config.go `ScrapeConfig.Validate`).
    pub fn job(&self, i: usize) -> Result<Job, PromConfigError> {
        let g = self.global()?;
        let j = &self.scrape_configs[i];
        let at = format!("scrape_configs[{i}]");
        let scrape_interval = dur(
            &format!("{at}.scrape_interval"),
            &j.scrape_interval,
            g.scrape_interval,
        )?;
        let scrape_timeout = match &j.scrape_timeout {
            None => g.scrape_timeout.min(scrape_interval),
            t => dur(&format!("{at}.scrape_timeout"), t, g.scrape_timeout)?,
        };
        if scrape_timeout > scrape_interval {
            return Err(PromConfigError::Field {
                origin: String::new(),
                field: format!("{at}.scrape_timeout"),
                message: format!(
                    "scrape timeout greater than scrape interval for scrape config with job name {:?}",
                    j.job_name
                ),
            });
        }
        let relabel =
            argus_relabel::compile_all("relabel_configs", &j.relabel_configs).map_err(|e| {
                PromConfigError::Field {
                    origin: String::new(),
                    field: format!("{at}.relabel_configs"),
                    message: e.to_string(),
                }
            })?;
        let metric_relabel =
            argus_relabel::compile_all("metric_relabel_configs", &j.metric_relabel_configs)
                .map_err(|e| PromConfigError::Field {
                    origin: String::new(),
                    field: format!("{at}.metric_relabel_configs"),
                    message: e.to_string(),
                })?;
        Ok(Job {
            name: j.job_name.clone(),
            scrape_interval,
            scrape_timeout,
            metrics_path: j.metrics_path.clone().unwrap_or_else(|| "/metrics".into()),
            scheme: j.scheme.clone().unwrap_or_else(|| "http".into()),
            params: j.params.clone(),
            honor_labels: j.honor_labels.unwrap_or(false),
            honor_timestamps: j.honor_timestamps.unwrap_or(true),
            relabel,
            metric_relabel,
        })
    }

    /// One message per job and key that Argus cannot map (and per top-level key).
    pub fn unsupported(&self) -> Vec<String> {
        let mut out = Vec::new();
        for k in self.other.keys() {
            let why = match k.as_str() {
                "remote_read" => "Argus answers queries from its own store only",
                "storage" => "Argus's retention is `storage.retention` in argus.yml",
                "tracing" => "Argus does not export traces",
                _ => "not a key Argus knows",
            };
            out.push(format!("`{k}` is not supported ({why}); it is ignored"));
        }
        for k in self.global.other.keys() {
            let why = match k.as_str() {
                "query_log_file" => "Argus has no query log",
                _ => "not a key Argus knows",
            };
            out.push(format!(
                "global: `{k}` is not supported ({why}); it is ignored"
            ));
        }
        for j in &self.scrape_configs {
            let job = &j.job_name;
            for k in j.other.keys() {
                let msg = if DISCOVERY_KEYS.contains(&k.as_str()) {
                    format!(
                        "job {job:?}: `{k}` is not supported (Argus discovers targets from static_configs and file_sd_configs only); its targets are not scraped"
                    )
                } else {
                    format!("job {job:?}: `{k}` is not supported; it is ignored")
                };
                out.push(msg);
            }
        }
        if let Some(a) = &self.alerting {
            if let Err(e) = self.alertmanagers() {
                out.push(format!(
                    "alerting: {e}; alerts go to Argus's own notifier instead"
                ));
            }
            if a.get("alert_relabel_configs")
                .and_then(Value::as_array)
                .is_some_and(|v| !v.is_empty())
            {
                out.push(
                    "alerting: `alert_relabel_configs` is not supported yet; it is ignored".into(),
                );
            }
        }
        out
    }

    /// The (job index, file pattern, refresh interval) of every file_sd config.
    pub fn file_sd_patterns(&self) -> Vec<(usize, String, Duration)> {
        let mut out = Vec::new();
        for (i, j) in self.scrape_configs.iter().enumerate() {
            for f in &j.file_sd_configs {
                let refresh = f
                    .refresh_interval
                    .as_deref()
                    .and_then(|r| parse_duration(r).ok())
                    .unwrap_or(DEFAULT_FILE_SD_REFRESH);
                for p in &f.files {
                    out.push((i, p.clone(), refresh));
                }
            }
        }
        out
    }
}

/// One `alerting.alertmanagers` entry Argus sends to (Alertmanager's v2 API).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertmanagerTarget {
    /// `<scheme>://<host:port><path_prefix>/api/v2/alerts`.
    pub url: String,
    pub timeout: Duration,
}

impl PromConfig {
    /// The Alertmanagers of `alerting.alertmanagers[*].static_configs`. Empty: Argus's
    /// own notifier. What cannot map (another discovery, `api_version: v1`, relabeling,
    /// auth) is an error naming the key: sending to part of them would drop alerts.
    pub fn alertmanagers(&self) -> Result<Vec<AlertmanagerTarget>, String> {
        let Some(list) = self
            .alerting
            .as_ref()
            .and_then(|a| a.get("alertmanagers"))
            .and_then(Value::as_array)
        else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (i, am) in list.iter().enumerate() {
            let at = format!("alertmanagers[{i}]");
            let Some(obj) = am.as_object() else {
                return Err(format!("{at}: not a mapping"));
            };
            for k in obj.keys() {
                if !matches!(
                    k.as_str(),
                    "static_configs"
                        | "scheme"
                        | "path_prefix"
                        | "timeout"
                        | "api_version"
                        | "follow_redirects"
                        | "enable_http2"
                ) {
                    return Err(format!(
                        "{at}: `{k}` is not supported (Argus sends to static_configs targets without auth or relabeling)"
                    ));
                }
            }
            let s = |k: &str| obj.get(k).and_then(Value::as_str);
            if let Some(v) = s("api_version") {
                if v != "v2" {
                    return Err(format!(
                        "{at}: api_version {v:?} is not supported (Alertmanager's v2 API only)"
                    ));
                }
            }
            let scheme = s("scheme").unwrap_or("http");
            if scheme != "http" && scheme != "https" {
                return Err(format!("{at}: unknown scheme {scheme:?}"));
            }
            let prefix = s("path_prefix").unwrap_or("").trim_end_matches('/');
            let timeout = match s("timeout") {
                Some(t) => parse_duration(t).map_err(|e| format!("{at}.timeout: {e}"))?,
                None => DEFAULT_SCRAPE_TIMEOUT,
            };
            for sc in obj
                .get("static_configs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for t in sc
                    .get("targets")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let Some(t) = t.as_str() else {
                        return Err(format!("{at}.static_configs: a target is not a string"));
                    };
                    out.push(AlertmanagerTarget {
                        url: format!("{scheme}://{t}{prefix}/api/v2/alerts"),
                        timeout,
                    });
                }
            }
        }
        Ok(out)
    }
}

/// Prometheus's `model.Duration` String() (one home: `argus_model::time`).
pub use argus_model::time::format_duration;

/// A target as Prometheus 2.42 shows it in `/api/v1/targets`.
#[derive(Clone, Debug, PartialEq)]
pub struct Populated {
    /// The labels before relabeling (`discoveredLabels`).
    pub discovered: Labels,
    /// `Ok(Some(all labels after relabeling, `__` ones included))`; `Ok(None)` if the
    /// relabeling dropped the target; `Err` if Prometheus would refuse it.
    pub result: Result<Option<Labels>, String>,
}

impl Populated {
    /// The `labels` of the API: the public ones (no `__` prefix).
    pub fn labels(&self) -> Option<Labels> {
        match &self.result {
            Ok(Some(l)) => Some(
                l.iter()
                    .filter(|(k, _)| !k.starts_with("__"))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            _ => None,
        }
    }
}

fn sorted(pairs: BTreeMap<String, String>) -> Labels {
    pairs.into_iter().collect()
}

/// The label set of one discovered target: its address and its group's labels (the
/// target's own win), as `targetsFromGroup` builds it.
pub fn target_labels(address: &str, group: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut m = group.clone();
    m.insert("__address__".into(), address.into());
    m
}

/// Prometheus 2.42's `PopulateLabels` for one target of `job`.
pub fn populate(job: &Job, discovered: BTreeMap<String, String>) -> Populated {
    let mut pre = discovered;
    let defaults = [
        ("job", job.name.clone()),
        ("__scrape_interval__", format_duration(job.scrape_interval)),
        ("__scrape_timeout__", format_duration(job.scrape_timeout)),
        ("__metrics_path__", job.metrics_path.clone()),
        ("__scheme__", job.scheme.clone()),
    ];
    for (k, v) in defaults {
        if pre.get(k).is_none_or(|x| x.is_empty()) {
            pre.insert(k.into(), v);
        }
    }
    for (k, v) in &job.params {
        let name = format!("__param_{k}");
        // Unconditional in 2.42: `params` override a discovered `__param_<name>`.
        if let Some(first) = v.first() {
            pre.insert(name, first.clone());
        }
    }
    // An empty value is an absent label in Prometheus's label sets.
    pre.retain(|_, v| !v.is_empty());
    let discovered = sorted(pre);
    let result = finish(job, &discovered);
    Populated { discovered, result }
}

fn finish(_job: &Job, discovered: &Labels) -> Result<Option<Labels>, String> {
    let Some(lset) = argus_relabel::process(discovered, &_job.relabel) else {
        return Ok(None);
    };
    let mut m = lset.to_map();
    let Some(addr) = m.get("__address__").cloned().filter(|a| !a.is_empty()) else {
        return Err("no address".into());
    };
    let scheme = m.get("__scheme__").cloned().unwrap_or_default();
    let addr = match add_port(&addr) {
        false => addr,
        true => match scheme.as_str() {
            "http" | "" => format!("{addr}:80"),
            "https" => format!("{addr}:443"),
            _ => return Err(format!("invalid scheme: {scheme:?}")),
        },
    };
    if addr.contains('/') {
        return Err(format!("{addr:?} is not a valid hostname"));
    }
    m.insert("__address__".into(), addr.clone());
    let interval = m.get("__scrape_interval__").cloned().unwrap_or_default();
    let iv =
        parse_duration(&interval).map_err(|e| format!("error parsing scrape interval: {e}"))?;
    if iv.is_zero() {
        return Err("scrape interval cannot be 0".into());
    }
    let timeout = m.get("__scrape_timeout__").cloned().unwrap_or_default();
    let to = parse_duration(&timeout).map_err(|e| format!("error parsing scrape timeout: {e}"))?;
    if to.is_zero() {
        return Err("scrape timeout cannot be 0".into());
    }
    if to > iv {
        return Err(format!(
            "scrape timeout cannot be greater than scrape interval ({timeout:?} > {interval:?})"
        ));
    }
    m.retain(|k, _| !k.starts_with("__meta_"));
    if m.get("instance").is_none_or(|v| v.is_empty()) {
        m.insert("instance".into(), addr);
    }
    Ok(Some(sorted(m)))
}

/// Go's `net.SplitHostPort` test of `addPort`: true when the address has no port and
/// appending one makes it valid.
fn add_port(addr: &str) -> bool {
    fn split_ok(s: &str) -> bool {
        if let Some(rest) = s.strip_prefix('[') {
            // [host]:port
            match rest.split_once(']') {
                Some((h, p)) => !h.contains(']') && p.starts_with(':') && !p[1..].contains(':'),
                None => false,
            }
        } else {
            match s.rsplit_once(':') {
                Some((h, _)) => !h.contains(':') && !h.contains('[') && !h.contains(']'),
                None => false,
            }
        }
    }
    if split_ok(addr) {
        return false;
    }
    split_ok(&format!("{addr}:1234"))
}

/// The URL Prometheus scrapes for a populated target (`Target.URL()`): scheme,
/// address, metrics path and the query from `params` overridden by `__param_*`.
pub fn scrape_url(job: &Job, lset: &Labels) -> String {
    let mut params: BTreeMap<String, Vec<String>> = job.params.clone();
    for (k, v) in lset.iter() {
        if let Some(p) = k.strip_prefix("__param_") {
            let e = params.entry(p.to_string()).or_default();
            if e.is_empty() {
                e.push(v.to_string());
            } else {
                e[0] = v.to_string();
            }
        }
    }
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, vs) in &params {
        for v in vs {
            q.append_pair(k, v);
        }
    }
    let q = q.finish();
    let scheme = lset.get("__scheme__").unwrap_or("http");
    let addr = lset.get("__address__").unwrap_or("");
    let path = lset.get("__metrics_path__").unwrap_or("");
    if q.is_empty() {
        format!("{scheme}://{addr}{path}")
    } else {
        format!("{scheme}://{addr}{path}?{q}")
    }
}

/// Target groups of every job: static ones and, for file_sd, the groups read from
/// `files` (path → contents) with `__meta_filepath`.
pub fn groups_of(
    cfg: &PromConfig,
    i: usize,
    files: &BTreeMap<PathBuf, Vec<TargetGroup>>,
    base_dir: &Path,
) -> Vec<TargetGroup> {
    let j = &cfg.scrape_configs[i];
    let mut out: Vec<TargetGroup> = j
        .static_configs
        .iter()
        .map(|s| TargetGroup {
            targets: s.targets.clone(),
            labels: s.labels.clone(),
        })
        .collect();
    for f in &j.file_sd_configs {
        for pat in &f.files {
            let full = resolve(base_dir, pat);
            for (path, groups) in files {
                if glob::Pattern::new(&full.to_string_lossy())
                    .map(|p| p.matches_path(path))
                    .unwrap_or(false)
                {
                    for g in groups {
                        let mut g = g.clone();
                        g.labels
                            .insert("__meta_filepath".into(), path.display().to_string());
                        out.push(g);
                    }
                }
            }
        }
    }
    out
}

pub fn resolve(base_dir: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base_dir.join(p)
    }
}

/// Parses one file_sd file (JSON or YAML, by content).
pub fn parse_file_sd(text: &str) -> Result<Vec<TargetGroup>, String> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let groups: Vec<TargetGroup> = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    for (gi, g) in groups.iter().enumerate() {
        for (ti, t) in g.targets.iter().enumerate() {
            if t.trim().is_empty() {
                return Err(format!("group {gi}: targets[{ti}] is empty"));
            }
        }
    }
    Ok(groups)
}

/// A file_sd file (or pattern) that could not be read or parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSdError {
    pub job: String,
    /// The file; `None` when the pattern itself is bad.
    pub path: Option<PathBuf>,
    pub message: String,
}

impl std::fmt::Display for FileSdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message)
    }
}

/// Globs and reads every file_sd file of the config. Files that cannot be read or
/// parsed are reported beside the good ones; a caller that read them before keeps
/// their last good groups, as Prometheus does ([`keep_last_good`]).
pub fn read_file_sd(
    cfg: &PromConfig,
    base_dir: &Path,
) -> (BTreeMap<PathBuf, Vec<TargetGroup>>, Vec<FileSdError>) {
    let mut files = BTreeMap::new();
    let mut errors: Vec<FileSdError> = Vec::new();
    for (i, pat, _) in cfg.file_sd_patterns() {
        let job = &cfg.scrape_configs[i].job_name;
        let full = resolve(base_dir, &pat);
        let paths = match glob::glob(&full.to_string_lossy()) {
            Ok(p) => p,
            Err(e) => {
                errors.push(FileSdError {
                    job: job.clone(),
                    path: None,
                    message: format!("job {job:?}: file_sd pattern {pat:?}: {e}"),
                });
                continue;
            }
        };
        for p in paths.flatten() {
            if files.contains_key(&p) {
                continue;
            }
            let res = std::fs::read_to_string(&p)
                .map_err(|e| e.to_string())
                .and_then(|text| parse_file_sd(&text));
            match res {
                Ok(g) => {
                    files.insert(p, g);
                }
                Err(e) => errors.push(FileSdError {
                    job: job.clone(),
                    message: format!("job {job:?}: {}: {e}", p.display()),
                    path: Some(p),
                }),
            }
        }
    }
    (files, errors)
}

/// Puts back the previous groups of every file that failed this time.
pub fn keep_last_good(
    files: &mut BTreeMap<PathBuf, Vec<TargetGroup>>,
    errors: &[FileSdError],
    previous: &BTreeMap<PathBuf, Vec<TargetGroup>>,
) {
    for e in errors {
        if let Some(p) = &e.path {
            if let Some(g) = previous.get(p) {
                files.insert(p.clone(), g.clone());
            }
        }
    }
}

/// Modification times of the files the config's file_sd patterns match now (a change
/// in this map means the targets must be re-read).
pub fn file_sd_stamps(
    cfg: &PromConfig,
    base_dir: &Path,
) -> BTreeMap<PathBuf, Option<std::time::SystemTime>> {
    let mut out = BTreeMap::new();
    for (_, pat, _) in cfg.file_sd_patterns() {
        let full = resolve(base_dir, &pat);
        if let Ok(paths) = glob::glob(&full.to_string_lossy()) {
            for p in paths.flatten() {
                let m = std::fs::metadata(&p).and_then(|m| m.modified()).ok();
                out.insert(p, m);
            }
        }
    }
    out
}

/// What a prometheus.yml becomes in Argus.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub targets: Vec<Target>,
    /// Probe modules the scrape jobs need (name → blackbox-style module document).
    pub modules: BTreeMap<String, Value>,
    /// Rule file patterns, resolved against the config's directory.
    pub rule_files: Vec<String>,
    /// Notes on how jobs were mapped (the Pushgateway job, ...).
    pub notes: Vec<String>,
    /// Keys that cannot map and targets Prometheus would refuse, one message each.
    pub warnings: Vec<String>,
    /// Targets the relabeling dropped, per job.
    pub dropped: BTreeMap<String, usize>,
    /// What each job (by name) does to the samples it scrapes.
    pub sample_rules: BTreeMap<String, SampleRules>,
    /// The Pushgateway job (the first one), whose place Argus's gateway takes: what
    /// its scrape does to the pushed series.
    pub gateway_scrape: Option<GatewayScrape>,
}

/// A Pushgateway job's scrape of the gateway: its sample rules and the labels of its
/// (first) target (`job`, `instance` and the target's own labels).
#[derive(Clone, Debug, Default)]
pub struct GatewayScrape {
    pub job: String,
    pub rules: SampleRules,
    pub target: Labels,
}

impl GatewayScrape {
    /// The labels a pushed series (as the gateway exposes it, empty values absent) is
    /// stored with, `None` when dropped. With `honor_labels: true` the gateway's
    /// `job` and `instance` always win (it exposes `instance=""` for groups without
    /// one, so Prometheus adds no instance either).
    pub fn mutate(&self, pushed: &Labels) -> Option<Labels> {
        if self.rules.honor_labels {
            let target = Labels::from_pairs(
                self.target
                    .iter()
                    .filter(|(k, _)| *k != "job" && *k != "instance"),
            );
            self.rules.mutate(pushed, &target)
        } else {
            self.rules.mutate(pushed, &self.target)
        }
    }
}

/// What a job does to each sample it scrapes: `honor_labels`, `honor_timestamps` and
/// `metric_relabel_configs` (2.42's `mutateSampleLabels`, then `relabel.Process`).
#[derive(Clone, Debug, Default)]
pub struct SampleRules {
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub metric_relabel: Vec<Relabel>,
}

impl SampleRules {
    pub fn of(job: &Job) -> SampleRules {
        SampleRules {
            honor_labels: job.honor_labels,
            honor_timestamps: job.honor_timestamps,
            metric_relabel: job.metric_relabel.clone(),
        }
    }

    /// The labels a scraped series is stored with (`exposed` has its `__name__`;
    /// `target` is the target's labels, `job` and `instance` included), `None` when
    /// the metric relabeling drops it.
    ///
    /// With `honor_labels: true` an exposed label wins over the target's; with
    /// `false` the target's wins and the exposed value moves to `exported_<name>`
    /// (`exported_exported_<name>`... while that name is taken, shortest names
    /// first), as 2.42 does. Empty values are absent.
    pub fn mutate(&self, exposed: &Labels, target: &Labels) -> Option<Labels> {
        let mut out = exposed.clone();
        if self.honor_labels {
            for (k, v) in target.iter() {
                if exposed.get(k).is_none() {
                    out.set(k, v);
                }
            }
        } else {
            let mut conflicting: Vec<(String, String)> = Vec::new();
            for (k, v) in target.iter() {
                if let Some(e) = exposed.get(k).filter(|e| !e.is_empty()) {
                    conflicting.push((k.to_string(), e.to_string()));
                }
                out.set(k, v);
            }
            // A stable sort by name length, as 2.42's `resolveConflictingExposedLabels`.
            conflicting.sort_by_key(|(k, _)| k.len());
            for i in 0..conflicting.len() {
                let mut name = conflicting[i].0.clone();
                loop {
                    name = format!("exported_{name}");
                    if exposed.get(&name).is_none()
                        && target.get(&name).is_none()
                        && !conflicting[..i].iter().any(|(k, _)| *k == name)
                    {
                        break;
                    }
                }
                conflicting[i].0 = name;
            }
            for (k, v) in &conflicting {
                out.set(k, v);
            }
        }
        argus_relabel::process(&out, &self.metric_relabel)
    }
}

/// Prefix of the ids of targets that come from a prometheus.yml (so a re-import or a
/// reload can replace them without touching targets added by hand).
pub const ID_PREFIX: &str = "prom:";

/// The module a scrape job's targets use.
pub fn job_module_name(job: &str) -> String {
    format!("prometheus_job:{job}")
}

fn is_pushgateway_job(j: &ScrapeConfig, groups: &[TargetGroup]) -> bool {
    j.job_name.to_lowercase().contains("pushgateway")
        || groups
            .iter()
            .flat_map(|g| g.targets.iter())
            .any(|t| t.ends_with(":9091"))
}

/// Maps a parsed config and its discovered groups onto Argus.
pub fn plan(
    cfg: &PromConfig,
    files: &BTreeMap<PathBuf, Vec<TargetGroup>>,
    base_dir: &Path,
) -> Result<Plan, PromConfigError> {
    let mut p = Plan {
        warnings: cfg.unsupported(),
        rule_files: cfg
            .rule_files
            .iter()
            .map(|r| resolve(base_dir, r).display().to_string())
            .collect(),
        ..Plan::default()
    };
    let mut ids = std::collections::BTreeSet::new();
    for (i, raw) in cfg.scrape_configs.iter().enumerate() {
        let job = cfg.job(i)?;
        let groups = groups_of(cfg, i, files, base_dir);
        if is_pushgateway_job(raw, &groups) {
            if p.gateway_scrape.is_none() {
                let target = groups
                    .iter()
                    .flat_map(|g| g.targets.iter().map(move |t| target_labels(t, &g.labels)))
                    .find_map(|d| populate(&job, d).labels());
                if let Some(target) = target {
                    p.gateway_scrape = Some(GatewayScrape {
                        job: job.name.clone(),
                        rules: SampleRules::of(&job),
                        target,
                    });
                }
            }
            p.notes.push(format!(
                "job {:?} scrapes a Pushgateway: Argus's own gateway takes its place (point the pushers at it); {}",
                job.name,
                if job.honor_labels {
                    "pushed groups keep their job and instance labels (honor_labels: true)"
                } else {
                    "as with honor_labels: false, pushed job and instance labels become exported_job/exported_instance and the series get the job's job and instance"
                }
            ));
            continue;
        }
        p.sample_rules
            .insert(job.name.clone(), SampleRules::of(&job));
        let mut module_used = false;
        for g in &groups {
            for addr in &g.targets {
                let pop = populate(&job, target_labels(addr, &g.labels));
                let lset = match pop.result {
                    Ok(Some(l)) => l,
                    Ok(None) => {
                        *p.dropped.entry(job.name.clone()).or_default() += 1;
                        continue;
                    }
                    Err(e) => {
                        p.warnings
                            .push(format!("job {:?}: target {addr:?}: {e}", job.name));
                        continue;
                    }
                };
                let public: BTreeMap<String, String> = lset
                    .iter()
                    .filter(|(k, _)| !k.starts_with("__"))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                let instance = public.get("instance").cloned().unwrap_or_default();
                let probe_path = lset
                    .get("__metrics_path__")
                    .is_some_and(|m| m.ends_with("/probe"));
                let mut t = match lset.get("__param_target") {
                    Some(url) if probe_path => {
                        let mut t = Target::new(url);
                        t.module = lset
                            .get("__param_module")
                            .unwrap_or(argus_model::target::DEFAULT_MODULE)
                            .to_string();
                        t
                    }
                    _ => {
                        module_used = true;
                        let mut t = Target::new(&scrape_url(&job, &lset));
                        t.module = job_module_name(&job.name);
                        t
                    }
                };
                t.labels = public;
                t.interval = lset
                    .get("__scrape_interval__")
                    .and_then(|s| parse_duration(s).ok());
                let mut id = format!("{ID_PREFIX}{}/{instance}", job.name);
                if ids.contains(&id) {
                    if p.targets
                        .iter()
                        .any(|o| o.id == id && o.url == t.url && o.labels == t.labels)
                    {
                        continue; // the same target twice: Prometheus keeps one
                    }
                    let mut n = 2;
                    while ids.contains(&format!("{id}#{n}")) {
                        n += 1;
                    }
                    id = format!("{id}#{n}");
                }
                ids.insert(id.clone());
                t.id = id;
                p.targets.push(t);
            }
        }
        if module_used {
            let mut scrape = serde_json::Map::new();
            for (k, v) in [
                ("basic_auth", &raw.basic_auth),
                ("authorization", &raw.authorization),
                ("tls_config", &raw.tls_config),
                ("body_size_limit", &raw.body_size_limit),
            ] {
                if let Some(v) = v {
                    scrape.insert(k.into(), v.clone());
                }
            }
            if let Some(n) = raw.sample_limit {
                scrape.insert("sample_limit".into(), n.into());
            }
            p.modules.insert(
                job_module_name(&job.name),
                serde_json::json!({
                    "prober": "scrape",
                    "timeout": format_duration(job.scrape_timeout),
                    "scrape": scrape,
                }),
            );
        }
    }
    Ok(p)
}

/// The modules of a plan as a blackbox.yml-shaped JSON document (`{"modules": {...}}`).
pub fn modules_document(p: &Plan) -> String {
    serde_json::json!({ "modules": p.modules }).to_string()
}

#[cfg(test)]
mod tests;
