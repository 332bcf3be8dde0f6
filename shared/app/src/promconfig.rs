//! A prometheus.yml run by Argus (`argus dev --prometheus-config`, `prometheus_config:`
//! in argus.yml, `argus import prometheus`): argus-promconfig maps it, this module
//! applies the result to an [`AppConfig`] and to the targets table.
//!
//! Targets from a prometheus.yml have ids starting with [`ID_PREFIX`] (`prom:<job>/
//! <instance>`); [`sync_targets`] writes them and removes the `prom:` targets the file no
//! longer yields, leaving targets added by hand alone.

use crate::config::AppConfig;
use anyhow::{Context, Result};
use argus_model::{Cond, Kv, Table, Target};
pub use argus_promconfig::ID_PREFIX;
use argus_promconfig::{FileSdError, Global, Plan, PromConfig, TargetGroup};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A prometheus.yml read, its file_sd files read and mapped.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub path: PathBuf,
    pub global: Global,
    pub plan: Plan,
    /// file_sd files that could not be read or parsed (their last good targets are
    /// kept on a refresh; a first read has none).
    pub file_errors: Vec<FileSdError>,
    pub config: PromConfig,
    pub base_dir: PathBuf,
    /// The file_sd groups the plan was made from.
    pub files: BTreeMap<PathBuf, Vec<TargetGroup>>,
    pub remote_write: Vec<argus_remote_write::RemoteWriteConfig>,
}

/// Reads and maps `path`. A structural error (bad YAML, a bad relabel rule, a timeout
/// above the interval) is an error naming the field; what cannot map is in
/// `plan.warnings`.
pub fn load(path: &Path) -> Result<Loaded> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading Prometheus config {}", path.display()))?;
    let origin = path.display().to_string();
    let cfg = argus_promconfig::parse(&text, &origin)?;
    let global = cfg.global().map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let (files, file_errors) = argus_promconfig::read_file_sd(&cfg, &base);
    let plan = argus_promconfig::plan(&cfg, &files, &base)
        .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    let mut remote_write = Vec::new();
    for (i, v) in cfg.remote_write.iter().enumerate() {
        let rw: argus_remote_write::RemoteWriteConfig = serde_json::from_value(v.clone())
            .map_err(|e| anyhow::anyhow!("{origin}: remote_write[{i}]: {e}"))?;
        remote_write.push(rw);
    }
    argus_remote_write::validate_all(&remote_write)
        .map_err(|e| anyhow::anyhow!("{origin}: {}: {}", e.field, e.message))?;
    Ok(Loaded {
        path: path.to_path_buf(),
        global,
        plan,
        file_errors,
        remote_write,
        config: cfg,
        base_dir: base,
        files,
    })
}

impl Loaded {
    /// Re-reads the file_sd files (same prometheus.yml), keeping the last good groups
    /// of a file that fails now, and maps again.
    pub fn refresh(&self) -> Result<Loaded> {
        let (mut files, file_errors) = argus_promconfig::read_file_sd(&self.config, &self.base_dir);
        argus_promconfig::keep_last_good(&mut files, &file_errors, &self.files);
        let plan = argus_promconfig::plan(&self.config, &files, &self.base_dir)
            .map_err(|e| anyhow::anyhow!("{}: {e}", self.path.display()))?;
        Ok(Loaded {
            plan,
            file_errors,
            files,
            ..self.clone()
        })
    }

    /// The shortest `refresh_interval` of the file_sd configs (`None`: no file_sd).
    pub fn refresh_interval(&self) -> Option<std::time::Duration> {
        self.config
            .file_sd_patterns()
            .into_iter()
            .map(|(_, _, d)| d)
            .min()
    }

    /// Modification times of the matched file_sd files.
    pub fn stamps(&self) -> BTreeMap<PathBuf, Option<std::time::SystemTime>> {
        argus_promconfig::file_sd_stamps(&self.config, &self.base_dir)
    }
}

/// Applies a loaded prometheus.yml to `cfg`: the global intervals (the probe schedule
/// runs at the shortest interval any target has, so every target keeps its own),
/// external labels, rule files, remote_write queues and the scrape jobs' modules.
pub fn apply(cfg: &mut AppConfig, l: &Loaded) {
    let shortest = l
        .plan
        .targets
        .iter()
        .filter_map(|t| t.interval)
        .min()
        .unwrap_or(l.global.scrape_interval);
    cfg.global.scrape_interval = l.global.scrape_interval.min(shortest);
    cfg.global.evaluation_interval = l.global.evaluation_interval;
    for (k, v) in &l.global.external_labels {
        cfg.global.external_labels.insert(k.clone(), v.clone());
    }
    cfg.rule_files.extend(l.plan.rule_files.iter().cloned());
    cfg.remote_write.extend(l.remote_write.iter().cloned());
    cfg.extra_modules = l.plan.modules.clone();
    cfg.sample_rules = l.plan.sample_rules.clone();
    cfg.gateway_scrape = l.plan.gateway_scrape.clone();
    // An `alertmanagers` section that cannot map is in the warnings; alerts then go to
    // the built-in notifier.
    cfg.external_alertmanagers = l.config.alertmanagers().unwrap_or_default();
}

/// Loads `cfg.prometheus_config` (if set) and applies it.
pub fn prepare(cfg: &mut AppConfig) -> Result<Option<Loaded>> {
    let Some(p) = cfg.prometheus_config.clone() else {
        return Ok(None);
    };
    let l = load(&cfg.resolve(&p))?;
    apply(cfg, &l);
    Ok(Some(l))
}

/// What [`sync_targets`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Synced {
    pub written: usize,
    pub removed: Vec<String>,
}

/// Writes `targets` and deletes the `prom:` targets not among them.
pub async fn sync_targets(kv: &dyn Kv, targets: &[Target]) -> Result<Synced> {
    let mut out = Synced::default();
    let keep: std::collections::BTreeSet<&str> = targets.iter().map(|t| t.id.as_str()).collect();
    for t in targets {
        kv.put(Table::Targets, t.to_item(), Cond::Always)
            .await
            .with_context(|| format!("writing target {}", t.id))?;
        out.written += 1;
    }
    for item in kv.scan(Table::Targets).await? {
        if item.pk.starts_with(ID_PREFIX) && !keep.contains(item.pk.as_str()) {
            kv.delete(Table::Targets, &item.pk, "", Cond::Always)
                .await?;
            out.removed.push(item.pk.clone());
        }
    }
    Ok(out)
}

/// The human summary of a load: jobs mapped, notes, warnings, file errors.
pub fn summary(l: &Loaded) -> Vec<String> {
    let mut out = Vec::new();
    let probes = l
        .plan
        .targets
        .iter()
        .filter(|t| !t.module.starts_with("prometheus_job:"))
        .count();
    out.push(format!(
        "{}: {} targets ({} probe, {} scrape), {} dropped by relabeling, {} rule file patterns",
        l.path.display(),
        l.plan.targets.len(),
        probes,
        l.plan.targets.len() - probes,
        l.plan.dropped.values().sum::<usize>(),
        l.plan.rule_files.len()
    ));
    out.extend(l.plan.notes.iter().map(|n| format!("note: {n}")));
    out.extend(l.plan.warnings.iter().map(|w| format!("warning: {w}")));
    out.extend(
        l.file_errors
            .iter()
            .map(|e| format!("warning: file_sd: {e}")),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn load_apply_and_sync() {
        let dir = std::env::temp_dir().join(format!("argus-promapp-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("targets")).unwrap();
        std::fs::write(
            dir.join("prometheus.yml"),
            "global:\n  scrape_interval: 1m\n  evaluation_interval: 30s\n  external_labels: {dc: x}\nrule_files: [rules/*.yml]\nscrape_configs:\n  - job_name: bb\n    metrics_path: /probe\n    params: {module: [tcp_connect]}\n    file_sd_configs: [{files: [targets/*.json]}]\n    relabel_configs:\n      - {source_labels: [__address__], target_label: __param_target}\n      - {source_labels: [__param_target], target_label: instance}\n      - {target_label: __address__, replacement: '127.0.0.1:9115'}\n  - job_name: app\n    scrape_interval: 15s\n    static_configs: [{targets: ['127.0.0.1:8080']}]\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("targets/a.json"),
            r#"[{"targets": ["db:5432"], "labels": {"team": "data"}}]"#,
        )
        .unwrap();
        let l = load(&dir.join("prometheus.yml")).unwrap();
        let mut cfg = AppConfig::default();
        apply(&mut cfg, &l);
        assert_eq!(
            cfg.global.scrape_interval,
            std::time::Duration::from_secs(15)
        );
        assert_eq!(
            cfg.global.evaluation_interval,
            std::time::Duration::from_secs(30)
        );
        assert_eq!(cfg.global.external_labels["dc"], "x");
        assert!(cfg.rule_files[0].ends_with("rules/*.yml"));
        assert!(cfg.extra_modules.contains_key("prometheus_job:app"));
        let modules = crate::pipeline::load_modules(&cfg).unwrap();
        assert_eq!(
            modules.get("prometheus_job:app").unwrap().prober(),
            "scrape"
        );

        let kv = argus_store::EmbeddedKv::open(dir.join("s.redb")).unwrap();
        crate::targets::add(&kv, &Target::new("https://by-hand.example"))
            .await
            .unwrap();
        kv.put(
            Table::Targets,
            Target {
                id: "prom:gone/x".into(),
                ..Target::new("x")
            }
            .to_item(),
            Cond::Always,
        )
        .await
        .unwrap();
        let s = sync_targets(&kv, &l.plan.targets).await.unwrap();
        assert_eq!(s.written, 2);
        assert_eq!(s.removed, vec!["prom:gone/x".to_string()]);
        let (all, bad) = crate::targets::load_all(&kv).await.unwrap();
        assert!(bad.is_empty());
        let ids: Vec<&str> = all.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "https://by-hand.example",
                "prom:app/127.0.0.1:8080",
                "prom:bb/db:5432"
            ]
        );
        let db = all.iter().find(|t| t.id == "prom:bb/db:5432").unwrap();
        assert_eq!(
            (db.url.as_str(), db.module.as_str()),
            ("db:5432", "tcp_connect")
        );
        assert_eq!(db.labels["job"], "bb");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
