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
    /// A prometheus.yml to run as it is (scrape jobs, relabeling, file_sd, rule_files,
    /// global intervals), relative to this file; see `argus_app::promconfig`.
    #[serde(default)]
    pub prometheus_config: Option<String>,
    /// Probe modules generated from the prometheus.yml's scrape jobs (name → module
    /// document), merged over `probe.modules_file` (set by `promconfig::apply`).
    #[serde(skip)]
    pub extra_modules: BTreeMap<String, serde_json::Value>,
    /// External Alertmanagers the evaluator sends to instead of the built-in notifier
    /// (a prometheus.yml's `alerting.alertmanagers`; set by `promconfig::apply`).
    #[serde(skip)]
    pub external_alertmanagers: Vec<argus_promconfig::AlertmanagerTarget>,
    /// Directory of this file (set by `load`).
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// This process alone writes the store (`argus dev`): the gateway may keep its
    /// groups in memory and write them behind (set by `argus dev`, never by a file).
    #[serde(skip)]
    pub owns_store: bool,
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
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySection {
    /// Environment variable holding the bearer token pushes must carry (never the token).
    #[serde(default)]
    pub auth_token_env: Option<String>,
    /// Per-job default time-to-live of pushed groups (`job: 10m`).
    #[serde(default)]
    pub job_ttl: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// How long sample chunks are kept (TTL of the `samples` table items).
    #[serde(default = "d1d", with = "serde_duration")]
    pub retention: Duration,
}

impl Default for StorageSection {
    fn default() -> Self {
        StorageSection { retention: d1d() }
    }
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
    /// How often pushed groups are written to the embedded store and the store is
    /// fsynced: pushes and writes are answered from memory and a crash loses at most
    /// this much (the real Pushgateway persists every 5 minutes by default). `0s`
    /// writes and fsyncs before answering each one.
    #[serde(default = "d1s", with = "serde_duration")]
    pub sync_interval: Duration,
}

impl Default for DevSection {
    fn default() -> Self {
        DevSection {
            data_dir: d_data_dir(),
            notifications_file: d_nlog(),
            gateway_listen: d_gw(),
            blackbox_listen: d_bb(),
            alertmanager_listen: d_am(),
            sync_interval: d1s(),
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
fn d1d() -> Duration {
    Duration::from_secs(86400)
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
        for (i, t) in cfg.targets.iter().enumerate() {
            if t.url.trim().is_empty() {
                return Err(ConfigError::Field {
                    path: origin.into(),
                    field: format!("targets[{i}].url"),
                    message: "must not be empty".into(),
                });
            }
        }
        Ok(cfg)
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
    fn globs() {
        let chars: Vec<char> = "*.yml".chars().collect();
        assert!(glob_match(&chars, "a.yml"));
        assert!(!glob_match(&chars, "a.yaml"));
        let chars: Vec<char> = "r?.y*".chars().collect();
        assert!(glob_match(&chars, "r1.yaml"));
    }
}
