//! Benchmark (not a test): Argus' notifier against the real Alertmanager 0.25 on this
//! machine.
//!
//! 1. Ingest: alerts accepted per second on `POST /api/v2/alerts` (batches of 10,
//!    8 concurrent clients), Argus `serve()` on the embedded store vs Alertmanager.
//!    Argus runs twice: on the store as `argus dev` opens it by default (commits
//!    synced at most every second, `dev.sync_interval: 1s`; the notification log's
//!    claims are still synced before any send), and with every commit synced.
//! 2. Dispatch: G alerts, each its own group (`group_by: ['...']`, `group_wait: 0s`),
//!    to a local webhook: time from the first POST to the G-th webhook received
//!    (Argus: ingest, then one `tick`), plus Argus' tick alone.
//!
//! cargo run --release -p argus-notify --example bench_notifier [-- ALERTS GROUPS CONCURRENCY]
//!
//! CONCURRENCY is `NotifierOptions::concurrency` (notifications sent at once by the
//! tick, log entries loaded at once), 64 by default as `argus dev`'s. Profile with
//! `perf record -g target/release/examples/bench_notifier` (the Argus side is the
//! `tokio-rt-worker` and `argus-redb-writer` threads).

use argus_model::{Clock, SystemClock};
use argus_notify::{load_config, Clients, Notifier, NotifierOptions};
use argus_store::{Durability, EmbeddedKv};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The allocator the `argus` binary uses (local/src/main.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: usize = 10;

/// A store in a temporary directory, opened as `argus dev` opens its own by default
/// (`dev.sync_interval: 1s`), or with every commit synced.
fn store(dir: &tempfile::TempDir, name: &str, every_commit: bool) -> Arc<dyn argus_model::Kv> {
    let durability = match every_commit {
        true => Durability::EveryCommit,
        false => Durability::Interval(Duration::from_secs(1)),
    };
    Arc::new(EmbeddedKv::open_with(dir.path().join(name), durability).unwrap())
}

/// Argus' notifier served on a free port: (notifier, base URL).
async fn argus(
    kv: Arc<dyn argus_model::Kv>,
    hook: &str,
    concurrency: usize,
    clock: &Arc<dyn Clock>,
) -> (Arc<Notifier>, String) {
    let n = Arc::new(
        Notifier::new(
            kv,
            load_config(&config(hook)).unwrap(),
            Clients::http_only(),
            "http://bench",
        )
        .with_options(NotifierOptions {
            concurrency,
            ..Default::default()
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(argus_notify::serve(n.clone(), l, clock.clone()));
    (n, url)
}
const CLIENTS: usize = 8;

fn config(hook: &str) -> String {
    format!(
        "route:\n  receiver: hook\n  group_by: ['...']\n  group_wait: 0s\n  group_interval: 1h\n  repeat_interval: 24h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: {hook}\n"
    )
}

fn alerts(prefix: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({"labels": {"alertname": "BenchAlert", "run": prefix, "instance": format!("host-{i:06}"), "severity": "warn"},
                   "annotations": {"summary": "benchmark alert"}})
        })
        .collect()
}

async fn post_all(http: &reqwest::Client, url: &str, alerts: Vec<Value>) -> Duration {
    let batches: Vec<Vec<Value>> = alerts.chunks(BATCH).map(|c| c.to_vec()).collect();
    let batches = Arc::new(std::sync::Mutex::new(batches));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (http, url, batches) = (http.clone(), url.to_string(), batches.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let b = batches.lock().unwrap().pop();
                let Some(b) = b else { break };
                let r = http
                    .post(format!("{url}/api/v2/alerts"))
                    .json(&b)
                    .send()
                    .await
                    .expect("post");
                assert!(r.status().is_success(), "{}", r.status());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    start.elapsed()
}

struct Hook {
    url: String,
    count: Arc<AtomicUsize>,
}

async fn hook() -> Hook {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let app = axum::Router::new().fallback(move || {
        let c = c.clone();
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            ""
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    Hook { url, count }
}

async fn wait_count(c: &AtomicUsize, n: usize, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while c.load(Ordering::SeqCst) < n {
        if Instant::now() > end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    true
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n_alerts = args.first().copied().unwrap_or(20_000);
    let n_groups = args.get(1).copied().unwrap_or(2_000);
    let concurrency = args.get(2).copied().unwrap_or(64);
    let http = reqwest::Client::new();

    // ---------------------------------------------------------------- Argus
    let argus_hook = hook().await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let dirs = tempfile::tempdir().unwrap();
    let (_n, url) = argus(
        store(&dirs, "every.redb", true),
        &argus_hook.url,
        concurrency,
        &clock,
    )
    .await;
    let argus_ingest_every = post_all(&http, &url, alerts("ingest", n_alerts)).await;
    let (_n, url) = argus(
        store(&dirs, "dev.redb", false),
        &argus_hook.url,
        concurrency,
        &clock,
    )
    .await;
    let argus_ingest = post_all(&http, &url, alerts("ingest", n_alerts)).await;

    // Dispatch: a fresh store so the tick sees only the G groups.
    let (n2, argus_url2) = argus(
        store(&dirs, "dispatch.redb", false),
        &argus_hook.url,
        concurrency,
        &clock,
    )
    .await;
    let before = argus_hook.count.load(Ordering::SeqCst);
    let t0 = Instant::now();
    post_all(&http, &argus_url2, alerts("dispatch", n_groups)).await;
    let tick_start = Instant::now();
    let report = n2.tick(clock.now_ms()).await.unwrap();
    let argus_tick = tick_start.elapsed();
    let argus_e2e = t0.elapsed();
    let sent = report.sent().count();
    assert_eq!(
        sent, n_groups,
        "argus sent {sent} of {n_groups}: {:?}",
        report.errors
    );
    assert!(
        wait_count(
            &argus_hook.count,
            before + n_groups,
            Duration::from_secs(10)
        )
        .await
    );

    // Dispatch as `argus dev` runs it: `Notifier::dispatch` (1 s rounds, and a round at
    // once when an ingest makes a group due), flushing while the alerts arrive.
    let (n3, argus_url3) = argus(
        store(&dirs, "dev-dispatch.redb", false),
        &argus_hook.url,
        concurrency,
        &clock,
    )
    .await;
    let dispatcher = tokio::spawn(n3.clone().dispatch(
        clock.clone(),
        Duration::from_secs(1),
        |_| {},
    ));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = argus_hook.count.load(Ordering::SeqCst);
    let t0 = Instant::now();
    post_all(&http, &argus_url3, alerts("dev", n_groups)).await;
    assert!(
        wait_count(
            &argus_hook.count,
            before + n_groups,
            Duration::from_secs(60)
        )
        .await,
        "argus dev's dispatch did not notify all"
    );
    let argus_dev_e2e = t0.elapsed();
    dispatcher.abort();

    // ---------------------------------------------------------------- Alertmanager
    let am_hook = hook().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("am.yml");
    std::fs::write(&cfg, config(&am_hook.url)).unwrap();
    let bin = argus_testkit::tool("prometheus-alertmanager");
    let am = argus_testkit::spawn_peer(
        "alertmanager",
        &bin,
        &[
            &format!("--config.file={}", cfg.display()),
            &format!("--storage.path={}", dir.path().join("data").display()),
            "--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
    );
    // Ingest (its dispatcher also starts notifying these right away: group_wait 0s).
    let am_ingest = post_all(&http, &am.url(), alerts("ingest", n_alerts)).await;
    assert!(
        wait_count(&am_hook.count, n_alerts, Duration::from_secs(120)).await,
        "alertmanager did not notify all"
    );
    let before = am_hook.count.load(Ordering::SeqCst);
    let t0 = Instant::now();
    post_all(&http, &am.url(), alerts("dispatch", n_groups)).await;
    assert!(
        wait_count(&am_hook.count, before + n_groups, Duration::from_secs(120)).await,
        "alertmanager did not notify all"
    );
    let am_e2e = t0.elapsed();
    drop(am);

    let rate = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    println!("alerts ingested/s (POST /api/v2/alerts, {n_alerts} alerts, batches of {BATCH}, {CLIENTS} clients):");
    println!(
        "  argus (as argus dev)   {:>10.0}/s  ({:.2?})",
        rate(n_alerts, argus_ingest),
        argus_ingest
    );
    println!(
        "  argus (every commit synced) {:>5.0}/s  ({:.2?}, ratio {:.2})",
        rate(n_alerts, argus_ingest_every),
        argus_ingest_every,
        am_ingest.as_secs_f64() / argus_ingest_every.as_secs_f64()
    );
    println!(
        "  alertmanager 0.25      {:>10.0}/s  ({:.2?})",
        rate(n_alerts, am_ingest),
        am_ingest
    );
    println!(
        "  ratio argus/alertmanager: {:.2}",
        rate(n_alerts, argus_ingest) / rate(n_alerts, am_ingest)
    );
    println!(
        "notifications dispatched/s ({n_groups} groups, one webhook each, post → last webhook, concurrency {concurrency}):"
    );
    println!(
        "  argus (ingest + 1 tick) {:>9.0}/s  ({:.2?}; the tick alone {:.2?} = {:.0}/s)",
        rate(n_groups, argus_e2e),
        argus_e2e,
        argus_tick,
        rate(n_groups, argus_tick)
    );
    println!(
        "  argus (as argus dev: dispatch woken by ingest) {:>5.0}/s  ({:.2?}, ratio {:.2})",
        rate(n_groups, argus_dev_e2e),
        argus_dev_e2e,
        am_e2e.as_secs_f64() / argus_dev_e2e.as_secs_f64()
    );
    println!(
        "  alertmanager 0.25      {:>10.0}/s  ({:.2?})",
        rate(n_groups, am_e2e),
        am_e2e
    );
    println!(
        "  ratio argus/alertmanager: {:.2}",
        rate(n_groups, argus_e2e) / rate(n_groups, am_e2e)
    );
}
