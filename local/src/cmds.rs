//! The commands beyond targets and bootstrap. Each is a thin shell over a library call.

use crate::stores::StoreArgs;
use anyhow::{bail, Context, Result};
use argus_app::AppConfig;
use argus_model::{Clock, SystemClock};
use std::io::Write;
use std::path::{Path, PathBuf};

/// `--config` or `./argus.yml` if present, else the defaults.
pub fn load_config(path: Option<&Path>) -> Result<AppConfig> {
    match path {
        Some(p) => Ok(AppConfig::load(p)?),
        None if Path::new("argus.yml").exists() => Ok(AppConfig::load(Path::new("argus.yml"))?),
        None => Ok(AppConfig::default()),
    }
}

/// `argus dev` flags that override argus.yml (paths relative to the working directory).
#[derive(Default)]
pub struct DevOverrides {
    pub prometheus_config: Option<std::path::PathBuf>,
    pub alertmanager_config: Option<std::path::PathBuf>,
    pub modules: Option<std::path::PathBuf>,
}

fn absolute(p: &Path) -> Result<String> {
    Ok(std::path::absolute(p)
        .with_context(|| format!("resolving {}", p.display()))?
        .display()
        .to_string())
}

/// argus.yml (optional with --prometheus-config) with the command line's overrides;
/// read at start and again by every reload.
fn dev_config(config: &Path, over: &DevOverrides) -> Result<AppConfig> {
    let mut cfg = if over.prometheus_config.is_some() && !config.exists() {
        AppConfig {
            base_dir: std::env::current_dir()?,
            ..AppConfig::default()
        }
    } else {
        AppConfig::load(config)?
    };
    if let Some(p) = &over.prometheus_config {
        cfg.prometheus_config = Some(absolute(p)?);
    }
    if let Some(p) = &over.alertmanager_config {
        cfg.alertmanager_config = Some(absolute(p)?);
    }
    if let Some(p) = &over.modules {
        cfg.probe.modules_file = Some(absolute(p)?);
    }
    Ok(cfg)
}

pub async fn dev(config: &Path, run_for: Option<String>, over: DevOverrides) -> Result<()> {
    let cfg = dev_config(config, &over)?;
    let run_for = run_for
        .map(|s| argus_model::time::parse_duration(&s).map_err(|e| anyhow::anyhow!("--for: {e}")))
        .transpose()?;
    let config = absolute(config)?;
    let load = move || dev_config(Path::new(&config), &over);
    argus_app::dev::run_reloadable(cfg, argus_app::dev::DevOptions { run_for }, Box::new(load))
        .await
}

pub async fn probe(config: Option<&Path>, target: &str, module: &str, debug: bool) -> Result<bool> {
    let cfg = load_config(config)?;
    let modules = argus_app::pipeline::load_modules(&cfg)?;
    let Some(m) = modules.get(module) else {
        bail!(
            "unknown module {module:?} (known: {})",
            modules.names().collect::<Vec<_>>().join(", ")
        );
    };
    let prober = argus_probe::Prober::new(argus_probe::ProberConfig {
        allow_link_local: cfg.probe.allow_link_local,
        ..Default::default()
    });
    let outcome = prober.probe(target, m, SystemClock.now_ms()).await;
    let mut out = std::io::stdout().lock();
    if debug {
        writeln!(out, "Logs for the probe:")?;
        for l in &outcome.log {
            writeln!(out, "{l}")?;
        }
        writeln!(out, "\n\n\nMetrics that would have been returned:")?;
    }
    write!(out, "{}", outcome.text())?;
    if debug {
        writeln!(
            out,
            "\n\n\nModule configuration:\n{}",
            serde_saphyr::to_string(&m.source).unwrap_or_default()
        )?;
    }
    Ok(outcome.success)
}

pub fn rules_check(files: &[PathBuf]) -> bool {
    argus_rules::unittest::check_files(files, &mut std::io::stdout())
}

pub fn rules_test(files: &[PathBuf]) -> bool {
    argus_rules::unittest::run_files(files, &mut std::io::stdout())
}

/// `argus tsdb import FILE`: OpenMetrics backfill into blocks, with progress.
pub async fn tsdb_import(store: &StoreArgs, config: Option<&Path>, file: &Path) -> Result<()> {
    let cfg = load_config(config)?;
    let f = std::fs::File::open(file).with_context(|| format!("reading {}", file.display()))?;
    let kv = store.open().await?;
    eprintln!("validating {} ...", file.display());
    let report = argus_app::tsdb::import_openmetrics(
        kv.as_ref(),
        std::io::BufReader::new(f),
        cfg.storage.retention,
        &mut |line: &str| eprintln!("{line}"),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    println!(
        "imported {} samples of {} series ({} new) into {} blocks from {} lines",
        report.samples, report.series, report.added, report.blocks, report.lines
    );
    Ok(())
}

/// Validates an argus.yml (with its rule files, modules and Alertmanager config) or a
/// plain Alertmanager configuration file.
pub fn config_check(file: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let looks_like_am = text
        .lines()
        .any(|l| l.starts_with("route:") || l.starts_with("receivers:"));
    if looks_like_am {
        let c = argus_notify::load_config(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        for w in &c.warnings {
            println!("warning: {w}");
        }
        println!("{}: OK ({} receivers)", file.display(), c.receivers.len());
        return Ok(());
    }
    let cfg = AppConfig::load(file)?;
    let modules = argus_app::pipeline::load_modules(&cfg)?;
    println!(
        "{}: OK ({} probe modules, {} seed targets)",
        file.display(),
        modules.names().count(),
        cfg.targets.len()
    );
    let (groups, problems) = argus_app::pipeline::load_rule_groups(&cfg)?;
    for p in &problems {
        println!("  rules: {p}");
    }
    println!("  rules: {} groups", groups.len());
    for line in argus_app::pipeline::check_remote_write(&cfg)? {
        println!("  {line}");
    }
    if let Some(am) = &cfg.alertmanager_config {
        let p = cfg.resolve(am);
        let text = std::fs::read_to_string(&p)
            .with_context(|| format!("alertmanager_config {}", p.display()))?;
        let c = argus_notify::load_config(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
        println!(
            "  alertmanager_config {}: OK ({} receivers)",
            p.display(),
            c.receivers.len()
        );
    }
    if !problems.is_empty() {
        bail!("{} problem(s) in rule files", problems.len());
    }
    Ok(())
}

async fn notifier(store: &StoreArgs, config: Option<&Path>) -> Result<argus_notify::Notifier> {
    let cfg = load_config(config)?;
    let kv = store.open().await?;
    argus_app::pipeline::build_notifier(
        kv,
        &cfg,
        argus_app::pipeline::StoreAccess::Shared,
        None,
        None,
        None,
    )
    .await
}

pub async fn alerts_list(store: &StoreArgs, config: Option<&Path>) -> Result<()> {
    let n = notifier(store, config).await?;
    let now = SystemClock.now_ms();
    let alerts = n.stored_alerts(now).await?;
    let silences = n.silences(now).await?;
    println!(
        "{:<24} {:<10} {:<25} LABELS",
        "ALERTNAME", "STATE", "STARTS AT"
    );
    for a in &alerts {
        let (inhibited, silenced) = n.mutes(a, &alerts, &silences, now);
        let state = if a.ends_at <= now {
            "resolved"
        } else if !silenced.is_empty() || !inhibited.is_empty() {
            "suppressed"
        } else {
            "active"
        };
        println!(
            "{:<24} {:<10} {:<25} {}",
            a.labels.get("alertname").unwrap_or(""),
            state,
            argus_model::time::rfc3339(a.starts_at),
            a.labels
        );
    }
    Ok(())
}

pub async fn silences_list(store: &StoreArgs, config: Option<&Path>) -> Result<()> {
    let n = notifier(store, config).await?;
    let now = SystemClock.now_ms();
    println!(
        "{:<38} {:<8} {:<25} {:<12} MATCHERS / COMMENT",
        "ID", "STATE", "ENDS AT", "CREATED BY"
    );
    for s in n.silences(now).await? {
        let m: Vec<String> = s
            .matchers
            .iter()
            .map(|m| {
                format!(
                    "{}{}{:?}",
                    m.name,
                    argus_notify::matcher::MatchType::from_flags(m.is_equal, m.is_regex).as_str(),
                    m.value
                )
            })
            .collect();
        println!(
            "{:<38} {:<8} {:<25} {:<12} {} / {}",
            s.id,
            s.state(now).as_str(),
            argus_model::time::rfc3339(s.ends_at),
            s.created_by,
            m.join(","),
            s.comment
        );
    }
    Ok(())
}

pub async fn silences_add(
    store: &StoreArgs,
    config: Option<&Path>,
    matchers: &[String],
    duration: &str,
    author: &str,
    comment: &str,
) -> Result<()> {
    if matchers.is_empty() {
        bail!("give at least one matcher, e.g. alertname=SiteDown");
    }
    let mut api = Vec::new();
    for m in matchers {
        let parsed =
            argus_notify::matcher::Matcher::parse(m).map_err(|e| anyhow::anyhow!("{e}"))?;
        api.push(argus_notify::silence::ApiMatcher {
            name: parsed.name.clone(),
            value: parsed.value.clone(),
            is_regex: parsed.op.is_regex(),
            is_equal: parsed.op.is_equal(),
        });
    }
    let d = argus_model::time::parse_duration(duration)
        .map_err(|e| anyhow::anyhow!("--duration: {e}"))?;
    let now = SystemClock.now_ms();
    let s = argus_notify::silence::Silence {
        id: String::new(),
        matchers: api,
        starts_at: now,
        ends_at: now.saturating_add(argus_model::time::millis(d)),
        updated_at: now,
        created_by: author.to_string(),
        comment: comment.to_string(),
    };
    let n = notifier(store, config).await?;
    let id = n.upsert_silence(s, now).await?;
    println!("{id}");
    Ok(())
}

pub async fn silences_expire(
    store: &StoreArgs,
    config: Option<&Path>,
    ids: &[String],
) -> Result<()> {
    let n = notifier(store, config).await?;
    let now = SystemClock.now_ms();
    for id in ids {
        n.expire_silence(id, now)
            .await
            .with_context(|| format!("silence {id}"))?;
        println!("expired {id}");
    }
    Ok(())
}

/// `argus import prometheus FILE`: the file's targets into the targets table.
pub async fn import_prometheus(
    store: &crate::stores::StoreArgs,
    file: &Path,
    dry_run: bool,
) -> Result<()> {
    let l = argus_app::promconfig::load(file)?;
    for line in argus_app::promconfig::summary(&l) {
        println!("{line}");
    }
    for r in &l.plan.rule_files {
        println!("rule files: {r}");
    }
    if !l.plan.modules.is_empty() {
        println!(
            "the scrape jobs need these probe modules (add them to probe.modules_file):\n{}",
            argus_promconfig::modules_document(&l.plan)
        );
    }
    if dry_run {
        for t in &l.plan.targets {
            println!("{}", serde_json::to_string(t)?);
        }
        return Ok(());
    }
    let kv = store.open().await?;
    let s = argus_app::promconfig::sync_targets(kv.as_ref(), &l.plan.targets).await?;
    println!(
        "imported {} targets from {} ({} earlier imported targets removed)",
        s.written,
        file.display(),
        s.removed.len()
    );
    Ok(())
}

/// `argus config push argus.yml`: validate the bundle as a function would load it,
/// then upload it as a new SSM version.
pub async fn config_push(file: &Path, parameter: &str, endpoint: Option<&str>) -> Result<()> {
    use argus_app::config_store::Bundle;
    let bundle = Bundle::collect(file)?;
    // Validate exactly what will be uploaded: written out, then loaded from there.
    let tmp = std::env::temp_dir().join(format!("argus-push-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let checked = bundle.materialize(&tmp).and_then(|p| Bundle::validate(&p));
    let _ = std::fs::remove_dir_all(&tmp);
    checked.with_context(|| format!("{} is not valid; nothing was uploaded", file.display()))?;
    let conf = argus_store::aws_sdk_config_for(endpoint).await;
    let client = aws_sdk_ssm::Client::new(&conf);
    let version = argus_app::config_store::push(&client, parameter, &bundle).await?;
    println!(
        "pushed {} ({} files) as {parameter} version {version}; functions with ARGUS_CONFIG_SSM={parameter} load it at their next cold start",
        file.display(),
        bundle.files.len()
    );
    Ok(())
}
