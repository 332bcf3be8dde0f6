//! The configuration in SSM Parameter Store, versioned, applied without a redeploy.
//!
//! [`Bundle`] is argus.yml with every file it names (rule files, Alertmanager config,
//! modules file, the prometheus.yml with its rule files and file_sd files) as one JSON
//! document, by path relative to argus.yml. `argus config push argus.yml` validates
//! the bundle the way a function would load it ([`Bundle::validate`]) and uploads it
//! ([`push`]); SSM numbers every upload.
//!
//! A cold start reads the bundle from `ARGUS_CONFIG_SSM` (`env::FunctionEnv`).
//! [`SsmConfigWatcher::poll`] is what a warm function calls on each invocation
//! (through `crate::warm::Warm`, which every function's handler goes through): at most
//! once a minute (in the `now` timeline) it makes one `GetParameter` call; a new
//! version is written out to a directory, validated, and returned to be applied. An
//! invalid version (pushed around the CLI), or one whose services fail to build
//! ([`SsmConfigWatcher::refuse`]), is logged once, counted in
//! `argus_config_invalid_total`, remembered so it is not fetched again, and the last
//! good configuration keeps running.

use crate::config::AppConfig;
use anyhow::{bail, Context, Result};
use argus_model::Millis;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

pub const BUNDLE_FORMAT: u32 = 1;
/// Name of argus.yml inside a bundle.
pub const MAIN: &str = "argus.yml";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    pub format: u32,
    /// Relative path → contents; `argus.yml` is the entry point.
    pub files: BTreeMap<String, String>,
}

fn relative(base: &Path, p: &Path, what: &str) -> Result<String> {
    let rel = p.strip_prefix(base).map_err(|_| {
        anyhow::anyhow!(
            "{what} {} is outside {}: a pushed configuration holds only files under argus.yml's directory",
            p.display(),
            base.display()
        )
    })?;
    Ok(rel.to_string_lossy().replace('\\', "/"))
}

impl Bundle {
    /// Reads argus.yml and every file it names.
    pub fn collect(argus_yml: &Path) -> Result<Bundle> {
        let cfg = AppConfig::load(argus_yml)?;
        let base = cfg.base_dir.clone();
        let base = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base
        };
        let norm = |p: PathBuf| -> PathBuf {
            if p.is_absolute() {
                p
            } else {
                Path::new(".").join(p)
            }
        };
        let base_n = norm(base.clone());
        let mut files = BTreeMap::new();
        files.insert(
            MAIN.to_string(),
            std::fs::read_to_string(argus_yml)
                .with_context(|| format!("reading {}", argus_yml.display()))?,
        );
        let mut add = |p: PathBuf, what: &str| -> Result<()> {
            let p = norm(p);
            let text =
                std::fs::read_to_string(&p).with_context(|| format!("{what} {}", p.display()))?;
            files.insert(relative(&base_n, &p, what)?, text);
            Ok(())
        };
        for p in cfg.rule_paths()? {
            add(p, "rule file")?;
        }
        if let Some(f) = &cfg.alertmanager_config {
            add(cfg.resolve(f), "alertmanager_config")?;
        }
        if let Some(f) = &cfg.probe.modules_file {
            add(cfg.resolve(f), "probe.modules_file")?;
        }
        if let Some(f) = &cfg.prometheus_config {
            let path = cfg.resolve(f);
            let l = crate::promconfig::load(&path)?;
            add(path, "prometheus_config")?;
            let mut c = cfg.clone();
            c.rule_files = l.plan.rule_files.clone();
            for p in c.rule_paths()? {
                add(p, "rule file of the Prometheus config")?;
            }
            for p in l.files.keys() {
                add(p.clone(), "file_sd file")?;
            }
        }
        Ok(Bundle {
            format: BUNDLE_FORMAT,
            files,
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("bundle serializes")
    }

    pub fn from_json(text: &str) -> Result<Bundle> {
        let b: Bundle = serde_json::from_str(text).context("not a configuration bundle")?;
        if b.format != BUNDLE_FORMAT {
            bail!(
                "bundle format {} is not supported (this build reads {BUNDLE_FORMAT})",
                b.format
            );
        }
        if !b.files.contains_key(MAIN) {
            bail!("the bundle has no {MAIN}");
        }
        Ok(b)
    }

    /// Writes the files under `dir` (paths must stay inside it) and returns the path of
    /// argus.yml there.
    pub fn materialize(&self, dir: &Path) -> Result<PathBuf> {
        for (rel, text) in &self.files {
            let p = Path::new(rel);
            if p.components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
            {
                bail!("bundle path {rel:?} leaves the configuration directory");
            }
            let full = dir.join(p);
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::write(&full, text).with_context(|| format!("writing {}", full.display()))?;
        }
        Ok(dir.join(MAIN))
    }

    /// Loads what [`materialize`](Self::materialize) wrote the way a function does,
    /// and refuses what a function would run degraded: a rule file that does not load,
    /// an Alertmanager config or modules that do not parse, a prometheus.yml that
    /// cannot map.
    pub fn validate(argus_yml: &Path) -> Result<AppConfig> {
        validate_config(AppConfig::load(argus_yml)?)
    }
}

/// Whether a parameter's text is a bundle (else it is argus.yml itself).
pub fn is_bundle(text: &str) -> bool {
    text.trim_start().starts_with('{') && text.contains("\"files\"")
}

/// [`Bundle::validate`] of a loaded argus.yml.
pub fn validate_config(mut cfg: AppConfig) -> Result<AppConfig> {
    crate::promconfig::prepare(&mut cfg)?;
    let (_, problems) = crate::pipeline::load_rule_groups(&cfg)?;
    if !problems.is_empty() {
        bail!("{}", problems.join("; "));
    }
    crate::pipeline::load_modules(&cfg)?;
    if let Some(f) = &cfg.alertmanager_config {
        let p = cfg.resolve(f);
        let text = std::fs::read_to_string(&p)
            .with_context(|| format!("alertmanager_config {}", p.display()))?;
        argus_notify::load_config(&text)
            .map_err(|e| anyhow::anyhow!("alertmanager_config: {e}"))?;
    }
    Ok(cfg)
}

/// Uploads a bundle as a new version of `name` (Advanced tier above 4 KB); returns
/// the version.
pub async fn push(client: &aws_sdk_ssm::Client, name: &str, b: &Bundle) -> Result<i64> {
    let value = b.to_json();
    let tier = if value.len() > 4096 {
        aws_sdk_ssm::types::ParameterTier::Advanced
    } else {
        aws_sdk_ssm::types::ParameterTier::Standard
    };
    let out = client
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .tier(tier)
        .overwrite(true)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "SSM parameter {name}: {}",
                aws_sdk_ssm::error::DisplayErrorContext(e)
            )
        })?;
    Ok(out.version)
}

/// At most one check a minute.
pub const CHECK_EVERY_MS: i64 = 60_000;

#[derive(Default)]
struct WatchState {
    last_check: Option<Millis>,
    applied: Option<i64>,
    /// The version running before the last one [`SsmConfigWatcher::poll`] returned
    /// (what [`SsmConfigWatcher::refuse`] goes back to).
    previous: Option<i64>,
    refused: Option<i64>,
}

/// Why a check did not produce a configuration to apply.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// The parameter could not be read (network, throttling, permissions); the next
    /// check (a minute later) tries again.
    #[error("SSM parameter {name}: {reason}")]
    Unreadable { name: String, reason: String },
    /// This version is refused for good (logged once, counted); the running
    /// configuration stays.
    #[error("{name} version {version} is invalid and ignored: {reason}")]
    Invalid {
        name: String,
        version: i64,
        reason: String,
    },
}

impl PollError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, PollError::Unreadable { .. })
    }
}

pub struct SsmConfigWatcher {
    client: aws_sdk_ssm::Client,
    name: String,
    dir: PathBuf,
    state: Mutex<WatchState>,
    calls: AtomicU64,
    invalid: AtomicU64,
}

impl SsmConfigWatcher {
    /// `dir` is where versions are written out (`/tmp/argus-config` in Lambda);
    /// `applied` the version already running (from the cold start), if known.
    pub fn new(client: aws_sdk_ssm::Client, name: &str, dir: &Path, applied: Option<i64>) -> Self {
        SsmConfigWatcher {
            client,
            name: name.to_string(),
            dir: dir.to_path_buf(),
            state: Mutex::new(WatchState {
                applied,
                ..WatchState::default()
            }),
            calls: AtomicU64::new(0),
            invalid: AtomicU64::new(0),
        }
    }

    /// Counts `now` as a check already made (the cold start just read the parameter):
    /// the first call to the service is one minute later.
    pub fn checked_at(self, now: Millis) -> Self {
        self.state.lock().expect("watch state").last_check = Some(now);
        self
    }

    /// The version running (the cold start's or the last one applied).
    pub fn applied(&self) -> Option<i64> {
        self.state.lock().expect("watch state").applied
    }

    /// Configuration versions refused so far.
    pub fn invalid(&self) -> u64 {
        self.invalid.load(Ordering::Relaxed)
    }

    /// The version [`poll`](Self::poll) returned could not be applied (its services
    /// did not build): refused like an invalid one, and the previous version is the
    /// running one again.
    pub fn refuse(&self, version: i64, why: &anyhow::Error, now: Millis) {
        let mut st = self.state.lock().expect("watch state");
        if st.applied == Some(version) {
            st.applied = st.previous;
        }
        st.refused = Some(version);
        self.invalid.fetch_add(1, Ordering::Relaxed);
        emf_invalid(&self.name, version, now);
        tracing::error!(parameter = %self.name, version, error = %format!("{why:#}"),
            "configuration version does not build; the running one is kept");
    }

    /// `GetParameter` calls made so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// `Ok(Some((version, config)))` when a new valid version is there to apply;
    /// `Ok(None)` when not due, unchanged, or an already refused version; `Err` once
    /// per invalid version (also logged and counted).
    pub async fn poll(&self, now: Millis) -> Result<Option<(i64, AppConfig)>, PollError> {
        {
            let mut st = self.state.lock().expect("watch state");
            if st.last_check.is_some_and(|t| now - t < CHECK_EVERY_MS) {
                return Ok(None);
            }
            st.last_check = Some(now);
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        let out = self
            .client
            .get_parameter()
            .name(&self.name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| PollError::Unreadable {
                name: self.name.clone(),
                reason: aws_sdk_ssm::error::DisplayErrorContext(e).to_string(),
            })?;
        let p = out.parameter.ok_or_else(|| PollError::Unreadable {
            name: self.name.clone(),
            reason: "no parameter in the answer".into(),
        })?;
        let version = p.version;
        {
            let st = self.state.lock().expect("watch state");
            if st.applied == Some(version) || st.refused == Some(version) {
                return Ok(None);
            }
        }
        let res = (|| -> Result<AppConfig> {
            let text = p.value.as_deref().unwrap_or("");
            if !is_bundle(text) {
                // argus.yml itself, as a cold start also takes it.
                return validate_config(AppConfig::parse(text, &self.name)?);
            }
            let b = Bundle::from_json(text)?;
            let dir = self.dir.join(format!("v{version}"));
            let _ = std::fs::remove_dir_all(&dir);
            let main = b.materialize(&dir)?;
            Bundle::validate(&main)
        })();
        let mut st = self.state.lock().expect("watch state");
        match res {
            Ok(cfg) => {
                st.previous = st.applied;
                st.applied = Some(version);
                Ok(Some((version, cfg)))
            }
            Err(e) => {
                st.refused = Some(version);
                self.invalid.fetch_add(1, Ordering::Relaxed);
                emf_invalid(&self.name, version, now);
                tracing::error!(parameter = %self.name, version, error = %format!("{e:#}"),
                    "invalid configuration version ignored; the running one is kept");
                Err(PollError::Invalid {
                    name: self.name.clone(),
                    version,
                    reason: format!("{e:#}"),
                })
            }
        }
    }

    pub fn metrics_text(&self) -> String {
        let st = self.state.lock().expect("watch state");
        format!(
            "# HELP argus_config_invalid_total Configuration versions refused as invalid.\n\
             # TYPE argus_config_invalid_total counter\n\
             argus_config_invalid_total {}\n\
             # HELP argus_config_version The SSM version of the running configuration.\n\
             # TYPE argus_config_version gauge\n\
             argus_config_version {}\n",
            self.invalid.load(Ordering::Relaxed),
            st.applied.unwrap_or(0)
        )
    }
}

/// One CloudWatch embedded-metric-format line (`Argus` namespace,
/// `argus_config_invalid_total`, count 1) on stdout, where Lambda sends it to the
/// function's log group and CloudWatch turns it into a metric to alarm on.
pub fn emf_line(parameter: &str, version: i64, now_ms: Millis) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{
                "Namespace": "Argus",
                "Dimensions": [["parameter"]],
                "Metrics": [{"Name": "argus_config_invalid_total", "Unit": "Count"}]
            }]
        },
        "parameter": parameter,
        "version": version,
        "argus_config_invalid_total": 1
    })
    .to_string()
}

fn emf_invalid(parameter: &str, version: i64, now: Millis) {
    println!("{}", emf_line(parameter, version, now));
}
