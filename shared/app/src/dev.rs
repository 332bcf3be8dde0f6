//! `argus dev`: the whole pipeline in one process with the embedded store. Probe,
//! evaluator and notifier run on their own timers (scrape interval, evaluation
//! interval, 1 s for the notifier's group timers); the gateway, blackbox `/probe` and
//! Alertmanager API listen on loopback. Progress is printed as readable lines.

use crate::config::AppConfig;
use crate::pipeline::Pipeline;
use anyhow::{Context, Result};
use argus_model::{Clock, Kv, SystemClock};
use std::sync::Arc;
use std::time::Duration;

pub struct DevOptions {
    /// Stop after this long (tests, demos); `None` runs until Ctrl-C.
    pub run_for: Option<Duration>,
}

fn say(line: &str) {
    let t = chrono::Local::now().format("%H:%M:%S");
    for (i, l) in line.lines().enumerate() {
        if i == 0 {
            println!("{t} {l}");
        } else {
            println!("         {l}");
        }
    }
}

async fn bind(addr: &str, what: &str) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("{what}: cannot listen on {addr}"))
}

pub async fn run(cfg: AppConfig, opts: DevOptions) -> Result<()> {
    // Without a loader, a reload re-reads the files this configuration names.
    let same = cfg.clone();
    run_reloadable(cfg, opts, Box::new(move || Ok(same.clone()))).await
}

/// [`run`], with `load` re-reading the configuration on SIGHUP and `POST /-/reload`
/// (see `crate::reload`).
pub async fn run_reloadable(
    mut cfg: AppConfig,
    opts: DevOptions,
    load: Box<dyn Fn() -> Result<AppConfig> + Send + Sync>,
) -> Result<()> {
    cfg.owns_store = true;
    let prom = crate::promconfig::prepare(&mut cfg)?;
    let data_dir = cfg.resolve(&cfg.dev.data_dir);
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("data dir {}", data_dir.display()))?;
    let store_path = data_dir.join("argus.redb");
    let durability = match cfg.dev.sync_interval {
        d if d.is_zero() => argus_store::Durability::EveryCommit,
        d => argus_store::Durability::Interval(d),
    };
    let store = argus_store::EmbeddedKv::open_with(&store_path, durability)?;
    let kv: Arc<dyn Kv> = Arc::new(store.clone());
    let nlog = cfg.resolve(&cfg.dev.notifications_file);
    if let Some(dir) = nlog.parent() {
        std::fs::create_dir_all(dir)?;
    }
    say(&format!(
        "store {} · notifications → {}",
        store_path.display(),
        nlog.display()
    ));

    if let Some(l) = &prom {
        for line in crate::promconfig::summary(l) {
            say(&line);
        }
        let s = crate::promconfig::sync_targets(kv.as_ref(), &l.plan.targets).await?;
        if !s.removed.is_empty() {
            say(&format!(
                "removed {} targets the Prometheus config no longer has",
                s.removed.len()
            ));
        }
    }
    let mut seeded = 0;
    for t in cfg.targets() {
        if crate::targets::add_if_absent(kv.as_ref(), &t).await? {
            seeded += 1;
        }
    }
    let (targets, bad) = crate::targets::load_all(kv.as_ref()).await?;
    say(&format!(
        "{} targets ({} new from the config); edit with `argus targets`",
        targets.len(),
        seeded
    ));
    for b in bad {
        say(&format!("warning: {b}"));
    }

    let p = Arc::new(Pipeline::build_with(kv.clone(), cfg.clone(), None, nlog.to_str()).await?);
    for w in &p.warnings {
        say(&format!("warning: {w}"));
    }
    say(&format!(
        "rule groups: {}",
        p.evaluator.groups().collect::<Vec<_>>().join(", ")
    ));

    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let reload_token = cfg
        .gateway
        .auth_token_env
        .as_ref()
        .and_then(|v| std::env::var(v).ok());
    let live = Arc::new(
        crate::reload::Live::new(
            &p,
            prom.clone(),
            Box::new(move || {
                let mut c = load()?;
                c.owns_store = true;
                Ok(c)
            }),
            nlog.to_str().map(String::from),
            clock.now_ms(),
        )
        .with_token(reload_token),
    );
    let gw_l = bind(&cfg.dev.gateway_listen, "gateway").await?;
    let bb_l = bind(&cfg.dev.blackbox_listen, "blackbox /probe").await?;
    let am_l = bind(&cfg.dev.alertmanager_listen, "alertmanager API").await?;
    say(&format!(
        "pushgateway http://{} · blackbox http://{}/probe · alertmanager http://{}/api/v2",
        cfg.dev.gateway_listen, cfg.dev.blackbox_listen, cfg.dev.alertmanager_listen
    ));
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(argus_pushgw::serve(p.gateway.clone(), gw_l, clock.clone()));
    // Pushed groups live in memory and are written to the store on this timer (and
    // at exit), as the real Pushgateway persists on its `--persistence.interval`.
    if p.gateway.config().write_behind {
        tasks.spawn(p.gateway.clone().flush_every(cfg.dev.sync_interval));
    }
    tasks.spawn(argus_probe::serve(
        p.probe.prober().clone(),
        p.probe.modules().clone(),
        bb_l,
        clock.clone(),
    ));
    {
        // The notifier's API, `POST /-/reload` and the reload gauges on /metrics.
        let router = crate::reload::alertmanager_router(live.clone(), clock.clone());
        tasks.spawn(async move {
            if let Err(e) = axum::serve(am_l, router).await {
                say(&format!("alertmanager API stopped: {e}"));
            }
        });
    }
    tasks.spawn(reload_on_sighup(live.clone()));
    tasks.spawn(watch_file_sd(live.clone()));
    {
        let live = live.clone();
        let every = cfg.global.scrape_interval;
        tasks.spawn(async move {
            let mut iv = tokio::time::interval(every);
            iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                iv.tick().await;
                match live.current().probe.run(SystemClock.now_ms(), None).await {
                    Ok(r) => say(&format!("probe: {r}")),
                    Err(e) => say(&format!("probe: error: {e}")),
                }
            }
        });
    }
    {
        let live = live.clone();
        let every = cfg.global.evaluation_interval;
        tasks.spawn(async move {
            let mut iv = tokio::time::interval(every);
            iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // Let the first probe land before the first evaluation.
            tokio::time::sleep(Duration::from_secs(2)).await;
            loop {
                iv.tick().await;
                match live.current().evaluator.tick(SystemClock.now_ms()).await {
                    Ok(r) => say(&format!("rules: {r}")),
                    Err(e) => say(&format!("rules: error: {e}")),
                }
            }
        });
    }
    {
        let live = live.clone();
        tasks.spawn(async move {
            let mut iv = tokio::time::interval(Duration::from_secs(1));
            loop {
                iv.tick().await;
                match live.current().notifier.tick(SystemClock.now_ms()).await {
                    Ok(r) => {
                        for n in r.notifications.iter().filter(|n| {
                            !matches!(n.outcome, argus_notify::Outcome::Suppressed { .. })
                        }) {
                            say(&format!("notify: {n}"));
                        }
                        for e in &r.errors {
                            say(&format!("notify: error: {e}"));
                        }
                    }
                    Err(e) => say(&format!("notify: error: {e}")),
                }
            }
        });
    }
    match opts.run_for {
        Some(d) => tokio::time::sleep(d).await,
        None => {
            tokio::signal::ctrl_c().await?;
            println!();
        }
    }
    say("stopping; alert state is kept in the store");
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    p.gateway
        .flush()
        .await
        .context("writing pushed metric groups to the store")?;
    store.sync().await.context("making the store durable")?;
    Ok(())
}

async fn reload_now(live: &crate::reload::Live, why: &str) {
    match live.reload(SystemClock.now_ms()).await {
        Ok(r) => say(&format!("{why}: {r}")),
        Err(e) => say(&format!(
            "{why}: error: {e:#}; the running configuration is kept"
        )),
    }
}

#[cfg(unix)]
async fn reload_on_sighup(live: Arc<crate::reload::Live>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        say("warning: cannot listen for SIGHUP; reload with POST /-/reload");
        return;
    };
    while hup.recv().await.is_some() {
        reload_now(&live, "SIGHUP").await;
    }
}

#[cfg(not(unix))]
async fn reload_on_sighup(_live: Arc<crate::reload::Live>) {}

/// Re-reads the file_sd files when one changes (checked every second) and every
/// `refresh_interval`, as Prometheus's file discovery does.
async fn watch_file_sd(live: Arc<crate::reload::Live>) {
    let mut stamps = None;
    let mut last_full = tokio::time::Instant::now();
    let mut iv = tokio::time::interval(Duration::from_secs(1));
    loop {
        iv.tick().await;
        let cur = live.current();
        let Some(l) = cur.prometheus.as_ref() else {
            stamps = None;
            continue;
        };
        let now_stamps = l.stamps();
        let refresh = l.refresh_interval();
        drop(cur);
        let due = refresh.is_some_and(|r| last_full.elapsed() >= r);
        let changed = stamps.as_ref().is_some_and(|s| s != &now_stamps);
        stamps = Some(now_stamps);
        if !(changed || due) {
            continue;
        }
        last_full = tokio::time::Instant::now();
        match live.refresh_targets().await {
            Some(Ok(s)) if changed => say(&format!(
                "file_sd: targets re-read ({} written, {} removed)",
                s.written,
                s.removed.len()
            )),
            Some(Err(e)) => say(&format!("file_sd: error: {e:#}")),
            _ => {}
        }
        if let Some(l) = live.current().prometheus.as_ref() {
            for e in &l.file_errors {
                say(&format!(
                    "file_sd: warning: {e} (its last good targets are kept)"
                ));
            }
        }
    }
}
