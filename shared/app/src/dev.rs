//! `argus dev`: the whole pipeline in one process with the embedded store. Probe,
//! evaluator and notifier run on their own timers (scrape interval, evaluation
//! interval, 1 s for the notifier's group timers); the gateway, blackbox `/probe` and
//! Alertmanager API listen on loopback. Progress is printed as readable lines.

use crate::config::AppConfig;
use crate::pipeline::{Pipeline, StoreAccess};
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
    let limits = listener_limits(&cfg)?;
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

    let p = Arc::new(
        Pipeline::build_with(
            kv.clone(),
            cfg.clone(),
            StoreAccess::Exclusive,
            None,
            nlog.to_str(),
        )
        .await?,
    );
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
        .and_then(|v| crate::env::var_as_set(v));
    let live = Arc::new(
        crate::reload::Live::new(
            &p,
            prom.clone(),
            load,
            nlog.to_str().map(String::from),
            clock.now_ms(),
        )
        .with_token(reload_token),
    );
    let gw_l = bind(&cfg.dev.gateway_listen, "gateway").await?;
    let bb_l = bind(&cfg.dev.blackbox_listen, "blackbox /probe").await?;
    let am_l = bind(&cfg.dev.alertmanager_listen, "alertmanager API").await?;
    let q_l = bind(&cfg.dev.query_listen, "query API").await?;
    let link = crate::devlink::DevLink::generate(format!("http://{}", q_l.local_addr()?));
    link.write(&data_dir).with_context(|| {
        format!(
            "writing {}",
            crate::devlink::DevLink::path(&data_dir).display()
        )
    })?;
    let (query, _) = crate::query::build_query(kv.clone(), &cfg, None)?;
    // Non-API paths: the CLI's link into this process, then the status page at `/`.
    let status = crate::query::status_page(kv.clone(), &cfg, p.evaluator.rule_groups(), None);
    let query = Arc::new(query.with_fallback(crate::devlink::fallback(
        kv.clone(),
        link.token.clone(),
        Some(crate::query::status_fallback(status)),
    )));
    say(&format!(
        "pushgateway http://{} · blackbox http://{}/probe · alertmanager http://{}/api/v2 · prometheus API {}/api/v1",
        cfg.dev.gateway_listen, cfg.dev.blackbox_listen, cfg.dev.alertmanager_listen, link.url
    ));
    // The listeners stop gracefully (requests in progress finish, then every
    // connection closes) before the final flush below.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let on_stop = || {
        let mut rx = stopped.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let mut servers = tokio::task::JoinSet::new();
    use argus_http::serve_with_shutdown as serve;
    let (c, l) = (clock.clone(), limits.clone());
    servers.spawn(serve(gw_l, p.gateway.clone(), c, l, on_stop()));
    let (c, l) = (clock.clone(), limits.clone());
    servers.spawn(serve(
        bb_l,
        Arc::new(ProbePort(live.clone())),
        c,
        l,
        on_stop(),
    ));
    // The API takes query forms only: dev.http's limits with the API's 1 MiB body cap.
    let l = argus_http::Limits {
        max_body_bytes: argus_query::server::limits()
            .max_body_bytes
            .min(limits.max_body_bytes),
        ..limits.clone()
    };
    let c = clock.clone();
    let query = Arc::new(QueryPort {
        live: live.clone(),
        query,
    });
    servers.spawn(serve(q_l, query, c, l, on_stop()));
    servers.spawn(serve(
        am_l,
        Arc::new(AlertmanagerPort(live.clone())),
        clock.clone(),
        limits,
        on_stop(),
    ));
    say(&format!(
        "status page {}/ · alerts {}/alerts",
        link.url, link.url
    ));
    let mut tasks = tokio::task::JoinSet::new();
    // Pushed groups live in memory and are written to the store on this timer (and
    // at exit), as the real Pushgateway persists on its `--persistence.interval`.
    if p.gateway.config().write_behind {
        tasks.spawn(p.gateway.clone().flush_every(cfg.dev.sync_interval));
    }
    tasks.spawn(reload_on_sighup(live.clone(), clock.clone()));
    tasks.spawn(watch_file_sd(live.clone()));
    {
        let (live, p, clock) = (live.clone(), p.clone(), clock.clone());
        let every = cfg.global.scrape_interval;
        tasks.spawn(async move {
            let mut iv = tokio::time::interval(every);
            iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                iv.tick().await;
                // One run per simulated location (`dev.locations`), else the current
                // (reloadable) probe service.
                let now = clock.now_ms();
                let runs = if p.locations.is_empty() {
                    vec![(String::new(), live.current().probe.run(now, None).await)]
                } else {
                    p.probe_all(now).await
                };
                for (loc, r) in runs {
                    let at = if loc.is_empty() {
                        loc
                    } else {
                        format!(" [{loc}]")
                    };
                    match r {
                        Ok(r) => say(&format!("probe{at}: {r}")),
                        Err(e) => say(&format!("probe{at}: error: {e}")),
                    }
                }
            }
        });
    }
    {
        let (live, clock) = (live.clone(), clock.clone());
        let every = cfg.global.evaluation_interval;
        tasks.spawn(async move {
            let mut iv = tokio::time::interval(every);
            iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // Let the first probe land before the first evaluation.
            tokio::time::sleep(Duration::from_secs(2)).await;
            loop {
                iv.tick().await;
                match live.current().evaluator.tick(clock.now_ms()).await {
                    Ok(r) => say(&format!("rules: {r}")),
                    Err(e) => say(&format!("rules: error: {e}")),
                }
            }
        });
    }
    // Group timers every second; each due group flushes in its own task, so a slow
    // receiver holds back only its own group. A reload that swaps the notifier
    // restarts the dispatcher on the new one (a flush cut off by that leaves a claim
    // the new one takes over at once: this process owns the store).
    {
        let (live, clock) = (live.clone(), clock.clone());
        tasks.spawn(async move {
            loop {
                let n = live.current().notifier.clone();
                let run = n
                    .clone()
                    .dispatch(clock.clone(), Duration::from_secs(1), report_notify);
                tokio::pin!(run);
                loop {
                    tokio::select! {
                        _ = &mut run => break,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {
                            if !Arc::ptr_eq(&live.current().notifier, &n) {
                                break;
                            }
                        }
                    }
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
    let _ = stop.send(true);
    while servers.join_next().await.is_some() {}
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    let _ = std::fs::remove_file(crate::devlink::DevLink::path(&data_dir));
    p.gateway
        .flush()
        .await
        .context("writing pushed metric groups to the store")?;
    store.sync().await.context("making the store durable")?;
    Ok(())
}

/// The listeners' limits from `dev.http`, with the connection cap lowered to fit the
/// open-file limit (raised to the hard limit first) when it cannot be raised enough.
fn listener_limits(cfg: &AppConfig) -> Result<argus_http::Limits> {
    let mut limits = cfg
        .dev
        .http
        .limits()
        .map_err(|(field, msg)| anyhow::anyhow!("dev.http.{field}: {msg}"))?;
    match argus_http::raise_fd_limit() {
        Ok(files) => {
            // Three listeners, plus the store, outgoing probes and webhooks.
            let fit = (files.saturating_sub(256) / 3).max(16);
            if (limits.max_connections as u64) > fit {
                say(&format!(
                    "warning: the open-file limit is {files}: dev.http.max_connections lowered from {} to {fit} per listener",
                    limits.max_connections
                ));
                limits.max_connections = fit as usize;
            }
        }
        Err(e) => say(&format!(
            "warning: cannot read or raise the open-file limit: {e}"
        )),
    }
    Ok(limits)
}

async fn reload_now(live: &crate::reload::Live, why: &str, now: argus_model::Millis) {
    match live.reload(now).await {
        Ok(r) => say(&format!("{why}: {r}")),
        Err(e) => say(&format!(
            "{why}: error: {e:#}; the running configuration is kept"
        )),
    }
}

#[cfg(unix)]
async fn reload_on_sighup(live: Arc<crate::reload::Live>, clock: Arc<dyn Clock>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        say("warning: cannot listen for SIGHUP; reload with POST /-/reload");
        return;
    };
    while hup.recv().await.is_some() {
        reload_now(&live, "SIGHUP", clock.now_ms()).await;
    }
}

#[cfg(not(unix))]
async fn reload_on_sighup(_live: Arc<crate::reload::Live>, _clock: Arc<dyn Clock>) {}

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

fn report_notify(r: argus_notify::TickReport) {
    for n in r
        .notifications
        .iter()
        .filter(|n| !matches!(n.outcome, argus_notify::Outcome::Suppressed { .. }))
    {
        say(&format!("notify: {n}"));
    }
    for e in &r.errors {
        say(&format!("notify: error: {e}"));
    }
}

/// The Alertmanager port: `POST /-/reload`, the reload gauges appended to `/metrics`,
/// and the current notifier's API (v2, v1 alerts, `/metrics`).
struct AlertmanagerPort(Arc<crate::reload::Live>);

impl argus_http::Handler for AlertmanagerPort {
    fn handle(
        &self,
        req: http::Request<bytes::Bytes>,
        now: argus_model::Millis,
    ) -> impl std::future::Future<Output = http::Response<bytes::Bytes>> + Send {
        let live = self.0.clone();
        async move { crate::reload::handle_alertmanager(&live, req, now).await }
    }
}

/// The query port: `POST /-/reload` and its gauges on `/metrics`, as Prometheus's
/// :9090, then the API (with the CLI's link and the status page as its fallbacks).
struct QueryPort<Q> {
    live: Arc<crate::reload::Live>,
    query: Arc<Q>,
}

impl<Q: argus_http::Handler> argus_http::Handler for QueryPort<Q> {
    fn handle(
        &self,
        req: http::Request<bytes::Bytes>,
        now: argus_model::Millis,
    ) -> impl std::future::Future<Output = http::Response<bytes::Bytes>> + Send {
        let (live, query) = (self.live.clone(), self.query.clone());
        async move { crate::reload::handle_query(&live, query.as_ref(), req, now).await }
    }
}

/// The blackbox port: `/probe` with the running configuration's modules, and
/// `POST /-/reload` as blackbox_exporter has it.
struct ProbePort(Arc<crate::reload::Live>);

impl argus_http::Handler for ProbePort {
    fn handle(
        &self,
        req: http::Request<bytes::Bytes>,
        now: argus_model::Millis,
    ) -> impl std::future::Future<Output = http::Response<bytes::Bytes>> + Send {
        let live = self.0.clone();
        async move { crate::reload::handle_probe(&live, req, now).await }
    }
}
