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
//!    (Argus: ingest, then one `tick`), plus Argus' tick alone; and as `argus dev` runs
//!    it (`dispatch`, the store owned by the notifier), with how long the posts took.
//! 3. The tick's floor: G copies of one webhook body Argus sent, posted to the same
//!    receiver by a bare reqwest client, CONCURRENCY at once. The tick's time above
//!    this is Argus' own work per notification.
//!
//! Each dispatch line shows the CPU time its phase took (user + system, from /proc, 10 ms
//! resolution): this process (the posting client, the webhook receiver, and Argus), plus
//! Alertmanager's process for its phase.
//!
//! `BENCH_TICKS=K` runs only K rounds of ingest + tick (G alerts each, no Alertmanager),
//! to profile the tick; `BENCH_DEV=K` only K rounds of `argus dev`'s dispatch. `RUST_LOG=argus_notify::service::flush=debug` prints each flush's stages (planning,
//! log loads, claim commit and sync, sends and confirmations).
//!
//! cargo run --release -p argus-notify --example bench_notifier [-- ALERTS GROUPS CONCURRENCY]
//!
//! CONCURRENCY is `NotifierOptions::concurrency` (notifications sent at once by the
//! tick, log entries loaded at once); by default `NotifierOptions`' default (16), which
//! `argus dev` and the Lambda function use. Profile with
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
    exclusive: bool,
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
            exclusive_store: exclusive,
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
    /// The last body received.
    last: Arc<std::sync::Mutex<axum::body::Bytes>>,
}

async fn hook() -> Hook {
    let count = Arc::new(AtomicUsize::new(0));
    let last = Arc::new(std::sync::Mutex::new(axum::body::Bytes::new()));
    let (c, l) = (count.clone(), last.clone());
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let (c, l) = (c.clone(), l.clone());
        async move {
            *l.lock().unwrap() = body;
            c.fetch_add(1, Ordering::SeqCst);
            ""
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    Hook { url, count, last }
}

/// `n` copies of `body` posted to `url` by a bare client, `concurrency` at once.
async fn bare_posts(url: &str, body: axum::body::Bytes, n: usize, concurrency: usize) -> Duration {
    use futures::StreamExt;
    let http = reqwest::Client::new();
    let start = Instant::now();
    futures::stream::iter(0..n)
        .map(|_| {
            let req = http
                .post(url)
                .header("content-type", "application/json")
                .body(body.clone());
            async move {
                let r = req.send().await.expect("post");
                assert!(r.status().is_success(), "{}", r.status());
                r.bytes().await.expect("body");
            }
        })
        .buffer_unordered(concurrency.max(1))
        .for_each(|_| async {})
        .await;
    start.elapsed()
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

/// This process' CPU time so far (user + system), in ms (10 ms resolution).
fn cpu_ms() -> u64 {
    proc_cpu_ms("self")
}

/// A process' CPU time so far (user + system) from /proc, in ms (10 ms resolution).
fn proc_cpu_ms(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    f.iter().sum::<u64>() * 10
}

/// What every Argus dispatch phase shares.
struct Ctx<'a> {
    dirs: &'a tempfile::TempDir,
    hook: &'a Hook,
    concurrency: usize,
    clock: &'a Arc<dyn Clock>,
    http: &'a reqwest::Client,
    n_groups: usize,
}

impl Ctx<'_> {
    /// A notifier on a fresh store `name` (commits synced every second, as `argus dev`
    /// opens it), and its URL; `exclusive`: it owns the store, as in `argus dev`.
    async fn notifier(&self, name: &str, exclusive: bool) -> (Arc<Notifier>, String) {
        let kv = store(self.dirs, name, false);
        argus(kv, &self.hook.url, self.concurrency, self.clock, exclusive).await
    }
}

/// G alerts posted to a fresh store, then one tick: (post → last webhook, the tick).
async fn ingest_and_tick(c: &Ctx<'_>, name: &str) -> (Duration, Duration) {
    let Ctx {
        hook,
        clock,
        http,
        n_groups,
        ..
    } = *c;
    // Not the store's only user: the Lambda functions share DynamoDB.
    let (n, url) = c.notifier(name, false).await;
    let before = hook.count.load(Ordering::SeqCst);
    let t0 = Instant::now();
    post_all(http, &url, alerts(name, n_groups)).await;
    let tick_start = Instant::now();
    let report = n.tick(clock.now_ms()).await.unwrap();
    let tick = tick_start.elapsed();
    let e2e = t0.elapsed();
    let sent = report.sent().count();
    assert_eq!(
        sent, n_groups,
        "argus sent {sent} of {n_groups}: {:?}",
        report.errors
    );
    assert!(wait_count(&hook.count, before + n_groups, Duration::from_secs(10)).await);
    (e2e, tick)
}

/// Dispatch as `argus dev` runs it: `Notifier::dispatch` (1 s rounds, and a round at
/// once when an ingest makes a group due), flushing while the alerts arrive. Returns
/// the time from the first post to the last webhook, the posts' time and the CPU.
async fn dev_dispatch(c: &Ctx<'_>, name: &str) -> (Duration, Duration, u64) {
    let (hook, n_groups) = (c.hook, c.n_groups);
    let (n, url) = c.notifier(name, true).await;
    let dispatcher = tokio::spawn(n.clone().dispatch(
        c.clock.clone(),
        Duration::from_secs(1),
        |_| {},
    ));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = hook.count.load(Ordering::SeqCst);
    let cpu0 = cpu_ms();
    let t0 = Instant::now();
    post_all(c.http, &url, alerts("dev", n_groups)).await;
    let posts = t0.elapsed();
    assert!(
        wait_count(&hook.count, before + n_groups, Duration::from_secs(60)).await,
        "argus dev's dispatch did not notify all"
    );
    let e2e = t0.elapsed();
    let cpu = cpu_ms() - cpu0;
    dispatcher.abort();
    (e2e, posts, cpu)
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n_alerts = args.first().copied().unwrap_or(20_000);
    let n_groups = args.get(1).copied().unwrap_or(2_000);
    let concurrency = args
        .get(2)
        .copied()
        .unwrap_or(NotifierOptions::default().concurrency);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .init();
    let http = reqwest::Client::new();

    // ---------------------------------------------------------------- Argus
    let argus_hook = hook().await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let dirs = tempfile::tempdir().unwrap();
    let ctx = Ctx {
        dirs: &dirs,
        hook: &argus_hook,
        concurrency,
        clock: &clock,
        http: &http,
        n_groups,
    };
    // `BENCH_TICKS=K`: only K rounds of ingest + tick (to profile the tick), then stop.
    if let Some(k) = std::env::var("BENCH_TICKS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        for round in 0..k {
            let cpu0 = cpu_ms();
            let (e2e, tick) = ingest_and_tick(&ctx, &format!("tick-{round}.redb")).await;
            let cpu1 = cpu_ms();
            let body = argus_hook.last.lock().unwrap().clone();
            let bare = bare_posts(&argus_hook.url, body, n_groups, concurrency).await;
            let cpu2 = cpu_ms();
            println!(
                "round {round}: ingest + tick {e2e:.2?} ({} ms CPU), the tick alone {tick:.2?}; bare client {bare:.2?} ({} ms CPU)",
                cpu1 - cpu0,
                cpu2 - cpu1
            );
        }
        return;
    }
    // `BENCH_DEV=K`: only K rounds of `argus dev`'s dispatch (to profile it), then stop.
    if let Some(k) = std::env::var("BENCH_DEV")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        for round in 0..k {
            let (e2e, posts, cpu) = dev_dispatch(&ctx, &format!("dev-{round}.redb")).await;
            println!(
                "round {round}: argus dev dispatch {e2e:.2?} ({cpu} ms CPU), the posts {posts:.2?}"
            );
        }
        return;
    }
    let (_n, url) = argus(
        store(&dirs, "every.redb", true),
        &argus_hook.url,
        concurrency,
        &clock,
        true,
    )
    .await;
    let argus_ingest_every = post_all(&http, &url, alerts("ingest", n_alerts)).await;
    let (_n, url) = argus(
        store(&dirs, "dev.redb", false),
        &argus_hook.url,
        concurrency,
        &clock,
        true,
    )
    .await;
    let argus_ingest = post_all(&http, &url, alerts("ingest", n_alerts)).await;

    // Dispatch: a fresh store so the tick sees only the G groups.
    let cpu0 = cpu_ms();
    let (argus_e2e, argus_tick) = ingest_and_tick(&ctx, "dispatch.redb").await;
    let argus_cpu = cpu_ms() - cpu0;

    // Dispatch as `argus dev` runs it.
    let (argus_dev_e2e, argus_dev_posts, argus_dev_cpu) =
        dev_dispatch(&ctx, "dev-dispatch.redb").await;

    // The tick's floor: the same number of one of its bodies, from a bare client.
    let body = argus_hook.last.lock().unwrap().clone();
    let before = argus_hook.count.load(Ordering::SeqCst);
    let cpu0 = cpu_ms();
    let bare = bare_posts(&argus_hook.url, body.clone(), n_groups, concurrency).await;
    let bare_cpu = cpu_ms() - cpu0;
    assert_eq!(argus_hook.count.load(Ordering::SeqCst), before + n_groups);

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
    let am_pid = am.pid().to_string();
    let cpu0 = cpu_ms() + proc_cpu_ms(&am_pid);
    let t0 = Instant::now();
    post_all(&http, &am.url(), alerts("dispatch", n_groups)).await;
    let am_posts = t0.elapsed();
    assert!(
        wait_count(&am_hook.count, before + n_groups, Duration::from_secs(120)).await,
        "alertmanager did not notify all"
    );
    let am_e2e = t0.elapsed();
    let am_cpu = cpu_ms() + proc_cpu_ms(&am_pid) - cpu0;
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
        "  argus (ingest + 1 tick) {:>9.0}/s  ({:.2?}, {argus_cpu} ms CPU; the tick alone {:.2?} = {:.0}/s)",
        rate(n_groups, argus_e2e),
        argus_e2e,
        argus_tick,
        rate(n_groups, argus_tick)
    );
    println!(
        "  argus (as argus dev: dispatch woken by ingest) {:>5.0}/s  ({:.2?}, the posts {argus_dev_posts:.2?}, {argus_dev_cpu} ms CPU, ratio {:.2})",
        rate(n_groups, argus_dev_e2e),
        argus_dev_e2e,
        am_e2e.as_secs_f64() / argus_dev_e2e.as_secs_f64()
    );
    println!(
        "  alertmanager 0.25      {:>10.0}/s  ({:.2?}, the posts {am_posts:.2?}, {am_cpu} ms CPU)",
        rate(n_groups, am_e2e),
        am_e2e
    );
    println!(
        "  ratio argus/alertmanager: {:.2}",
        rate(n_groups, argus_e2e) / rate(n_groups, am_e2e)
    );
    println!(
        "  the tick's floor: {n_groups} bodies of {} bytes from a bare reqwest client, {concurrency} at once: {:.2?} = {:.0}/s, {bare_cpu} ms CPU (the tick takes {:.1}x that)",
        body.len(),
        bare,
        rate(n_groups, bare),
        argus_tick.as_secs_f64() / bare.as_secs_f64()
    );
}
