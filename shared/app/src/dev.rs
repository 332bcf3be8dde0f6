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

pub async fn run(mut cfg: AppConfig, opts: DevOptions) -> Result<()> {
    cfg.owns_store = true;
    let limits = listener_limits(&cfg)?;
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
    let probe_ep = argus_probe::Endpoint::new(p.probe.prober().clone(), p.probe.modules().clone());
    let (c, l) = (clock.clone(), limits.clone());
    servers.spawn(serve(bb_l, Arc::new(probe_ep), c, l, on_stop()));
    // The API takes query forms only: dev.http's limits with the API's 1 MiB body cap.
    let l = argus_http::Limits {
        max_body_bytes: argus_query::server::limits()
            .max_body_bytes
            .min(limits.max_body_bytes),
        ..limits.clone()
    };
    let c = clock.clone();
    servers.spawn(serve(q_l, query, c, l, on_stop()));
    servers.spawn(serve(
        am_l,
        p.notifier.clone(),
        clock.clone(),
        limits,
        on_stop(),
    ));
    say(&format!("status page {}/ · alerts {}/alerts", link.url, link.url));
    let mut tasks = tokio::task::JoinSet::new();
    // Pushed groups live in memory and are written to the store on this timer (and
    // at exit), as the real Pushgateway persists on its `--persistence.interval`.
    if p.gateway.config().write_behind {
        tasks.spawn(p.gateway.clone().flush_every(cfg.dev.sync_interval));
    }
    {
        let p = p.clone();
        let every = cfg.global.scrape_interval;
        tasks.spawn(async move {
            let mut iv = tokio::time::interval(every);
            iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                iv.tick().await;
                // One run per simulated location (`dev.locations`), else one.
                for (loc, r) in p.probe_all(SystemClock.now_ms()).await {
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
        let p = p.clone();
        let every = cfg.global.evaluation_interval;
        tasks.spawn(async move {
            let mut iv = tokio::time::interval(every);
            iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // Let the first probe land before the first evaluation.
            tokio::time::sleep(Duration::from_secs(2)).await;
            loop {
                iv.tick().await;
                match p.evaluator.tick(SystemClock.now_ms()).await {
                    Ok(r) => say(&format!("rules: {r}")),
                    Err(e) => say(&format!("rules: error: {e}")),
                }
            }
        });
    }
    // Group timers every second; each due group flushes in its own task, so a slow
    // receiver holds back only its own group.
    tasks.spawn(p.notifier.clone().dispatch(
        clock.clone(),
        Duration::from_secs(1),
        |r: argus_notify::TickReport| {
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
        },
    ));
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
