//! Wiring: builds each service once (cold start) from `argus.yml`, a store and, in AWS,
//! the SDK configuration. The functions build the piece they run; `argus dev` and the
//! end-to-end tests build all of them and drive them with [`Pipeline::tick_all`].

use crate::alert_sink::{AlertSink, ExternalAlertmanagers};
use crate::config::AppConfig;
use crate::evaluator::{EvalReport, Evaluator};
use crate::probe_svc::{ProbeReport, ProbeService};
use anyhow::{Context, Result};
use argus_model::{Kv, Millis};
use argus_notify::{Notifier, NotifierOptions, TickReport};
use argus_probe::{Modules, Prober, ProberConfig};
use argus_pushgw::{Gateway, GatewayConfig};
use std::fmt;
use std::sync::Arc;

/// Resolves `${env:NAME}` (e.g. `topic_arn: ${env:ARGUS_TOPIC_ARN}`) and `${ssm:/name}`
/// references (AWS only) in the string fields of a YAML document. The document is
/// parsed first and values are substituted into its parsed strings, so a secret holding
/// `"`, `#`, `: ` or a newline is a value, never YAML. A document without references is
/// returned as it is; one with references comes back as the equivalent JSON (which is
/// YAML), so the parser that reads it next sees the same tree. In such a document an
/// unquoted scalar YAML reads as a boolean or a number (`yes`, `0.50`) reaches a string
/// field in its canonical form (`true`, `0.5`): quote those.
pub async fn expand_refs(text: &str, sdk: Option<&aws_config::SdkConfig>) -> Result<String> {
    // Not YAML at all: the document's own parser reports it, with its own message.
    let Ok(mut tree) = serde_saphyr::from_str::<serde_json::Value>(text) else {
        return Ok(text.to_string());
    };
    let mut fields = crate::secrets::string_fields(&mut tree);
    fields.retain(|s| crate::secrets::has_reference(s));
    if fields.is_empty() {
        return Ok(text.to_string());
    }
    let mut values = Vec::with_capacity(fields.len());
    for f in &fields {
        values.push(f.to_string());
    }
    let resolved = expand_strings(values, sdk).await?;
    for (f, v) in fields.into_iter().zip(resolved) {
        *f = v;
    }
    Ok(serde_json::to_string(&tree)?)
}

/// [`expand_refs`] for single string values (each SSM parameter fetched once).
pub async fn expand_strings(
    values: Vec<String>,
    sdk: Option<&aws_config::SdkConfig>,
) -> Result<Vec<String>> {
    let values = values
        .iter()
        .map(|v| crate::secrets::substitute_env(v))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let mut names: Vec<String> = Vec::new();
    for v in &values {
        for n in crate::secrets::references(v) {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    if names.is_empty() {
        return Ok(values);
    }
    let Some(sdk) = sdk else {
        anyhow::bail!("configuration refers to SSM parameters but no AWS endpoint is configured")
    };
    let client = aws_sdk_ssm::Client::new(sdk);
    let mut resolved = std::collections::BTreeMap::new();
    for name in names {
        let v = crate::secrets::get_parameter(&client, &name)
            .await
            .map_err(anyhow::Error::msg)?;
        resolved.insert(name, v);
    }
    values
        .iter()
        .map(|v| crate::secrets::substitute(v, &resolved).map_err(anyhow::Error::msg))
        .collect()
}

/// Whether other processes write the store this process uses: a fact of how the
/// process runs, never of its configuration file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StoreAccess {
    /// Other processes may write it concurrently (the Lambda functions over DynamoDB).
    #[default]
    Shared,
    /// This process alone writes it (`argus dev`, whose redb file is locked to it): the
    /// gateway may write behind, claims found at start are dead, and the evaluator
    /// sweeps expired items.
    Exclusive,
}

impl StoreAccess {
    pub fn exclusive(self) -> bool {
        self == StoreAccess::Exclusive
    }
}

pub fn build_gateway(
    kv: Arc<dyn Kv>,
    cfg: &AppConfig,
    access: StoreAccess,
    auth_token: Option<String>,
) -> Result<Gateway> {
    let mut gc = GatewayConfig {
        auth_token,
        // `dev.sync_interval: 0s` asks for every answered push to be durable.
        write_behind: access.exclusive() && !cfg.dev.sync_interval.is_zero(),
        enable_admin_api: cfg.gateway.enable_admin_api,
        ..GatewayConfig::default()
    };
    gc.default_ttl_by_job
        .extend(cfg.gateway.job_ttl.iter().map(|(j, d)| (j.clone(), *d)));
    Ok(Gateway::new(kv, gc))
}

pub fn load_modules(cfg: &AppConfig) -> Result<Modules> {
    let text = match &cfg.probe.modules_file {
        Some(f) => {
            let p = cfg.resolve(f);
            std::fs::read_to_string(&p)
                .with_context(|| format!("probe.modules_file {}", p.display()))?
        }
        None => String::new(),
    };
    let mut modules = if text.trim().is_empty() {
        Modules::defaults()
    } else {
        argus_probe::load_modules(&text).map_err(|e| anyhow::anyhow!("probe modules: {e}"))?
    };
    if !cfg.extra_modules.is_empty() {
        let doc = serde_json::json!({ "modules": cfg.extra_modules }).to_string();
        let extra = argus_probe::config::parse(&doc)
            .map_err(|e| anyhow::anyhow!("modules of the Prometheus config's jobs: {e}"))?;
        for name in extra.names().map(String::from).collect::<Vec<_>>() {
            if let Some(m) = extra.get(&name) {
                modules.insert(m.clone());
            }
        }
    }
    Ok(modules)
}

/// The probe service of the location `probe.location` (set from `ARGUS_LOCATION` at
/// cold start; the first of `locations` when unset; none without `locations`).
pub fn build_probe(
    kv: Arc<dyn Kv>,
    cfg: &AppConfig,
    gateway: Arc<Gateway>,
) -> Result<ProbeService> {
    let location = cfg.probe_location(None)?;
    build_probe_at(kv, cfg, gateway, location)
}

/// The probe service of one location (`argus dev` builds one per `dev.locations`).
pub fn build_probe_at(
    kv: Arc<dyn Kv>,
    cfg: &AppConfig,
    gateway: Arc<Gateway>,
    location: Option<String>,
) -> Result<ProbeService> {
    let modules = Arc::new(load_modules(cfg)?);
    let prober = Arc::new(Prober::new(ProberConfig {
        allow_link_local: cfg.probe.allow_link_local,
        ..ProberConfig::default()
    }));
    Ok(ProbeService::new(
        kv,
        prober,
        modules,
        gateway,
        cfg.probe.clone(),
        cfg.global.scrape_interval.as_millis() as i64,
    )
    .at_location(
        location.map(|name| crate::probe_svc::Location {
            name,
            all: cfg.locations.clone(),
            quorum: cfg.quorum(),
        }),
        cfg.locations.clone(),
    )
    .with_sample_rules(cfg.sample_rules.clone()))
}

/// A location `argus dev` simulates: its own probe service (own series, bundle and
/// results), its fault injection, and whether it is silent (does not run).
pub struct SimLocation {
    pub name: String,
    pub probe: Arc<ProbeService>,
    pub silent: std::sync::atomic::AtomicBool,
}

/// Loads the Alertmanager-format configuration named by `alertmanager_config` (or a
/// single log receiver when there is none) and builds the notifier with its sinks.
/// `extra_log` (dev) adds a JSON-lines log of every notification to every receiver.
pub async fn build_notifier(
    kv: Arc<dyn Kv>,
    cfg: &AppConfig,
    access: StoreAccess,
    sdk: Option<&aws_config::SdkConfig>,
    api_token: Option<String>,
    extra_log: Option<&str>,
) -> Result<Notifier> {
    let am = load_notifier_config(cfg, sdk, extra_log).await?;
    let clients = argus_notify::sink::Clients::new(
        argus_notify::sink::default_http(),
        sdk.map(aws_sdk_sns::Client::new),
    );
    Ok(
        Notifier::new(kv, am, clients, notifier_url(cfg)).with_options(NotifierOptions {
            api_token,
            // `argus dev` owns its store: claims of an earlier process are dead.
            exclusive_store: access.exclusive(),
            ..NotifierOptions::default()
        }),
    )
}

/// The evaluator function's notifier: it only ingests (routes alerts into aggregation
/// groups in the store; the notifier function sends), so it has no integrations and
/// builds no HTTP or SNS client.
pub async fn build_ingest_notifier(
    kv: Arc<dyn Kv>,
    cfg: &AppConfig,
    sdk: Option<&aws_config::SdkConfig>,
) -> Result<Notifier> {
    let am = load_notifier_config(cfg, sdk, None).await?;
    Ok(Notifier::with_integrations(
        kv,
        am,
        Vec::new(),
        notifier_url(cfg),
    ))
}

fn notifier_url(cfg: &AppConfig) -> String {
    cfg.global
        .external_url
        .clone()
        .unwrap_or_else(|| "http://127.0.0.1:9093".to_string())
}

async fn load_notifier_config(
    cfg: &AppConfig,
    sdk: Option<&aws_config::SdkConfig>,
    extra_log: Option<&str>,
) -> Result<argus_notify::Config> {
    // Relative `templates:` and `*_file` paths are relative to the file's directory.
    let (text, base_dir) = match &cfg.alertmanager_config {
        Some(f) => {
            let p = cfg.resolve(f);
            let t = std::fs::read_to_string(&p)
                .with_context(|| format!("alertmanager_config {}", p.display()))?;
            (t, p.parent().map(|d| d.to_path_buf()))
        }
        None => (
            "route:\n  receiver: default\nreceivers:\n  - name: default\n".to_string(),
            None,
        ),
    };
    let text = expand_refs(&text, sdk)
        .await
        .context("alertmanager_config")?;
    let mut am = match &base_dir {
        Some(d) => argus_notify::load_config_in(&text, d),
        None => argus_notify::load_config(&text),
    }
    .map_err(|e| anyhow::anyhow!("alertmanager_config: {e}"))?;
    for w in &am.warnings {
        tracing::warn!("alertmanager_config: {w}");
    }
    if let Some(path) = extra_log {
        for r in &mut am.receivers {
            r.log_configs.push(argus_notify::config::LogConfig {
                path: path.to_string(),
                send_resolved: true,
            });
        }
    }
    Ok(am)
}

/// The notifier and the evaluator sending into it (with its remote_write), as a
/// [`Pipeline`] and a reload build them; with the rule files' problems.
pub async fn build_alerting(
    kv: &Arc<dyn Kv>,
    cfg: &AppConfig,
    access: StoreAccess,
    gateway: Arc<Gateway>,
    sdk: Option<&aws_config::SdkConfig>,
    notifications_log: Option<&str>,
) -> Result<(Arc<Notifier>, Evaluator, Vec<String>)> {
    let notifier =
        Arc::new(build_notifier(kv.clone(), cfg, access, sdk, None, notifications_log).await?);
    let (evaluator, warnings) =
        build_running_evaluator(kv, cfg, access, gateway, notifier.clone(), sdk).await?;
    Ok((notifier, evaluator, warnings))
}

/// The evaluator as a process runs it: [`build_evaluator`] with the `remote_write`
/// queues the configuration names (`Pipeline`, a reload and the evaluator function).
pub async fn build_running_evaluator(
    kv: &Arc<dyn Kv>,
    cfg: &AppConfig,
    access: StoreAccess,
    gateway: Arc<Gateway>,
    notifier: Arc<Notifier>,
    sdk: Option<&aws_config::SdkConfig>,
) -> Result<(Evaluator, Vec<String>)> {
    let (mut evaluator, warnings) = build_evaluator(kv.clone(), cfg, access, gateway, notifier)?;
    if let Some(rw) = build_remote_write(kv.clone(), cfg, sdk).await? {
        evaluator = evaluator.with_remote_write(rw, remote_write_budget(cfg));
    }
    Ok((evaluator, warnings))
}

/// Rule groups with their state keys (`<file name>/<group name>`).
pub type KeyedGroups = Vec<(String, argus_rules::RuleGroup)>;

/// Loads every rule file; a file that does not load is reported and left out, so one
/// bad file never silences the others.
pub fn load_rule_groups(cfg: &AppConfig) -> Result<(KeyedGroups, Vec<String>)> {
    let mut groups = Vec::new();
    let mut problems = Vec::new();
    for path in cfg.rule_paths()? {
        match argus_rules::load_rule_file(&path) {
            Ok(file) => {
                let fname = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("rules")
                    .to_string();
                for g in file.groups {
                    // State key: file name + group name (group names are unique per file).
                    groups.push((format!("{fname}/{}", g.name), g));
                }
            }
            Err(errs) => {
                for e in errs {
                    problems.push(format!("{}: {e}", path.display()));
                }
            }
        }
    }
    Ok((groups, problems))
}

pub fn eval_options(cfg: &AppConfig) -> argus_rules::EvalOptions {
    argus_rules::EvalOptions {
        external_labels: cfg.global.external_labels.clone().into_iter().collect(),
        external_url: cfg.global.external_url.clone().unwrap_or_default(),
        default_interval_ms: cfg.global.evaluation_interval.as_millis() as i64,
        ..Default::default()
    }
}

/// The evaluator, sending its alerts to the external Alertmanagers a prometheus.yml
/// names, or else into `notifier` (the built-in one's ingest).
pub fn build_evaluator(
    kv: Arc<dyn Kv>,
    cfg: &AppConfig,
    access: StoreAccess,
    gateway: Arc<Gateway>,
    notifier: Arc<Notifier>,
) -> Result<(Evaluator, Vec<String>)> {
    let (groups, problems) = load_rule_groups(cfg)?;
    let sink: Arc<dyn AlertSink> = if cfg.external_alertmanagers.is_empty() {
        notifier
    } else {
        Arc::new(ExternalAlertmanagers::new(&cfg.external_alertmanagers))
    };
    let ev = Evaluator::new(
        kv,
        gateway,
        sink,
        groups,
        eval_options(cfg),
        cfg.global.evaluation_interval,
        cfg.storage.retention,
    )
    .sweep_expired(access.exclusive())
    .with_gateway_scrape(cfg.gateway_scrape.clone());
    Ok((ev, problems))
}

/// What `argus config check` says about `remote_write`: one line per queue; an error
/// when a referenced secret file cannot be read.
pub fn check_remote_write(cfg: &AppConfig) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (i, q) in cfg.remote_write.iter().enumerate() {
        let files = [
            q.basic_auth.as_ref().and_then(|b| b.password_file.as_ref()),
            q.authorization
                .as_ref()
                .and_then(|a| a.credentials_file.as_ref()),
        ];
        for f in files.into_iter().flatten() {
            let p = cfg.resolve(f);
            std::fs::metadata(&p).with_context(|| format!("remote_write[{i}]: {}", p.display()))?;
        }
        let auth = if q.sigv4.is_some() {
            "sigv4"
        } else if q.basic_auth.is_some() {
            "basic_auth"
        } else if q.authorization.is_some() {
            "authorization"
        } else {
            "no auth"
        };
        out.push(format!(
            "remote_write {}: OK ({}, {auth}, {} write_relabel_configs)",
            q.queue_name(),
            q.url,
            q.write_relabel_configs.len()
        ));
    }
    Ok(out)
}

/// How long one tick may spend on remote_write: two thirds of the evaluation interval,
/// between 1 s and 40 s (the evaluator function's timeout is 50 s).
pub fn remote_write_budget(cfg: &AppConfig) -> std::time::Duration {
    (cfg.global.evaluation_interval * 2 / 3).clamp(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(40),
    )
}

/// The remote_write queues (none configured: `None`). Secrets in `password`,
/// `credentials` and `secret_key` may be `${ssm:/name}` or `${env:NAME}` references.
pub async fn build_remote_write(
    kv: Arc<dyn Kv>,
    cfg: &AppConfig,
    sdk: Option<&aws_config::SdkConfig>,
) -> Result<Option<Arc<argus_remote_write::RemoteWriter>>> {
    if cfg.remote_write.is_empty() {
        return Ok(None);
    }
    let mut queues = cfg.remote_write.clone();
    for (i, q) in queues.iter_mut().enumerate() {
        let secrets = [
            q.basic_auth.as_mut().and_then(|b| b.password.as_mut()),
            q.authorization
                .as_mut()
                .and_then(|a| a.credentials.as_mut()),
            q.sigv4.as_mut().and_then(|s| s.secret_key.as_mut()),
        ];
        for s in secrets.into_iter().flatten() {
            let v = expand_strings(vec![std::mem::take(s)], sdk)
                .await
                .with_context(|| format!("remote_write[{i}]"))?;
            *s = v.into_iter().next().unwrap_or_default();
        }
    }
    let external: Vec<(String, String)> = cfg.global.external_labels.clone().into_iter().collect();
    let w = argus_remote_write::RemoteWriter::build(kv, &queues, &external, &cfg.base_dir, sdk)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Some(Arc::new(w)))
}

/// Every service in one process (`argus dev`, end-to-end tests).
pub struct Pipeline {
    pub kv: Arc<dyn Kv>,
    pub config: AppConfig,
    pub gateway: Arc<Gateway>,
    pub probe: Arc<ProbeService>,
    pub evaluator: Arc<Evaluator>,
    pub notifier: Arc<Notifier>,
    /// Whether this process alone writes `kv` (reloads build with the same).
    pub access: StoreAccess,
    /// `dev.locations`: when present, these probe instead of `probe`.
    pub locations: Vec<SimLocation>,
    /// Problems found while building (bad rule files...): reported, not fatal.
    pub warnings: Vec<String>,
}

pub struct TickSummary {
    pub probe: ProbeReport,
    pub eval: EvalReport,
    pub notify: TickReport,
}

impl fmt::Display for TickSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "probe: {}", self.probe)?;
        writeln!(f, "rules: {}", self.eval)?;
        write!(f, "notify: {} groups", self.notify.groups)?;
        for n in &self.notify.notifications {
            write!(f, "\n    {n}")?;
        }
        for e in &self.notify.errors {
            write!(f, "\n    error: {e}")?;
        }
        Ok(())
    }
}

impl Pipeline {
    pub async fn build(
        kv: Arc<dyn Kv>,
        config: AppConfig,
        sdk: Option<&aws_config::SdkConfig>,
    ) -> Result<Pipeline> {
        Self::build_with(kv, config, StoreAccess::Shared, sdk, None).await
    }

    pub async fn build_with(
        kv: Arc<dyn Kv>,
        config: AppConfig,
        access: StoreAccess,
        sdk: Option<&aws_config::SdkConfig>,
        notifications_log: Option<&str>,
    ) -> Result<Pipeline> {
        let token = config
            .gateway
            .auth_token_env
            .as_ref()
            .and_then(|v| crate::env::var_as_set(v));
        let gateway = Arc::new(build_gateway(kv.clone(), &config, access, token)?);
        let probe = Arc::new(build_probe(kv.clone(), &config, gateway.clone())?);
        let (notifier, evaluator, warnings) = build_alerting(
            &kv,
            &config,
            access,
            gateway.clone(),
            sdk,
            notifications_log,
        )
        .await?;
        let mut locations = Vec::new();
        for d in &config.dev.locations {
            let p = build_probe_at(kv.clone(), &config, gateway.clone(), Some(d.name.clone()))?;
            p.set_unreachable(d.unreachable.iter().cloned());
            locations.push(SimLocation {
                name: d.name.clone(),
                probe: Arc::new(p),
                silent: d.silent.into(),
            });
        }
        Ok(Pipeline {
            kv,
            config,
            gateway,
            probe,
            evaluator: Arc::new(evaluator),
            notifier,
            access,
            locations,
            warnings,
        })
    }

    /// The simulated location named `name`.
    pub fn location(&self, name: &str) -> Option<&SimLocation> {
        self.locations.iter().find(|l| l.name == name)
    }

    /// One probe run of every location that is not silent (`dev.locations`), else of
    /// `probe`: (location name or "", its report).
    pub async fn probe_all(
        &self,
        now: Millis,
    ) -> Vec<(String, Result<ProbeReport, argus_model::StoreError>)> {
        if self.locations.is_empty() {
            return vec![(String::new(), self.probe.run(now, None).await)];
        }
        let mut out = Vec::new();
        for l in &self.locations {
            if !l.silent.load(std::sync::atomic::Ordering::SeqCst) {
                out.push((l.name.clone(), l.probe.run(now, None).await));
            }
        }
        out
    }

    /// One probe run (every simulated location's), one evaluation, one notifier
    /// tick, all at `now`.
    pub async fn tick_all(&self, now: Millis) -> Result<TickSummary> {
        let mut probe = ProbeReport::default();
        for (_, r) in self.probe_all(now).await {
            let r = r.context("probe run")?;
            probe.probed.extend(r.probed);
            probe.bad_items.extend(r.bad_items);
            probe.errors.extend(r.errors);
            probe.not_due += r.not_due;
            probe.fanned_out += r.fanned_out;
        }
        let eval = self.evaluator.tick(now).await.context("evaluation")?;
        let notify = self.notifier.tick(now).await.context("notifier tick")?;
        Ok(TickSummary {
            probe,
            eval,
            notify,
        })
    }
}

/// What every function builds once at cold start: its environment, the SDK
/// configuration, `argus.yml` and the DynamoDB store.
pub struct ColdStart {
    pub env: crate::env::FunctionEnv,
    pub sdk: aws_config::SdkConfig,
    pub config: AppConfig,
    /// The SSM version `config` came from (`ARGUS_CONFIG_SSM`), if any.
    pub config_version: Option<i64>,
    pub kv: Arc<dyn Kv>,
}

impl ColdStart {
    pub async fn load() -> Result<ColdStart> {
        let env = crate::env::FunctionEnv::from_env();
        let sdk = argus_store::aws_sdk_config().await;
        let (config, config_version) = env.load_config_versioned(&sdk).await?;
        let config = Self::adapt(&env, config)?;
        let table_sdk = match &env.home_region {
            Some(r) => sdk
                .to_builder()
                .region(aws_config::Region::new(r.clone()))
                .build(),
            None => sdk.clone(),
        };
        let kv: Arc<dyn Kv> = Arc::new(argus_store::DynamoKv::from_conf(
            &table_sdk,
            env.table_prefix.clone(),
        ));
        Ok(ColdStart {
            env,
            sdk,
            config,
            config_version,
            kv,
        })
    }

    /// What the environment adds to a loaded configuration (at cold start and to every
    /// version a warm function applies): a probe deployed to another region runs as
    /// that location (checked against `locations`) and writes to the home region's
    /// tables.
    pub fn adapt(env: &crate::env::FunctionEnv, mut config: AppConfig) -> Result<AppConfig> {
        config.probe.location = config.probe_location(env.location.as_deref())?;
        Ok(config)
    }

    /// Reads a secret parameter named by the environment (never logged).
    pub async fn secret(&self, param: Option<&String>) -> Result<Option<String>> {
        match param {
            None => Ok(None),
            Some(name) => {
                let client = aws_sdk_ssm::Client::new(&self.sdk);
                crate::secrets::get_parameter(&client, name)
                    .await
                    .map(Some)
                    .map_err(anyhow::Error::msg)
            }
        }
    }
}
