//! Benchmark (not a test): pushes per second of a 50-series group and `GET /metrics`
//! time, Argus's gateway (consistency check ON, embedded redb store, served by
//! `serve()`) against the real prometheus-pushgateway with
//! `--push.disable-consistency-check`, same load generator, at 10 and 10,000 stored
//! groups. Run:
//!
//! ```text
//! cargo run --release -p argus-pushgw --example bench_pushgateway
//! ```
//!
//! Environment: `BENCH_PUSHES` (pushes per measurement, default 4000),
//! `BENCH_CONCURRENCY` (in-flight requests, default 16), `BENCH_GROUPS` (large store
//! size, default 10000).

// As the `argus` binary (`argus dev`) runs it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use argus_model::SystemClock;
use argus_pushgw::{serve, Gateway, GatewayConfig};
use bytes::Bytes;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// 5 families × 10 series = 50 series, the shape of a typical batch-job push.
fn body(seed: usize) -> Bytes {
    let mut b = String::new();
    for f in 0..5 {
        b.push_str(&format!(
            "# HELP bench_metric_{f} Benchmark family {f}.\n# TYPE bench_metric_{f} gauge\n"
        ));
        for s in 0..10 {
            b.push_str(&format!(
                "bench_metric_{f}{{series=\"s{s}\",shard=\"{}\"}} {}.5\n",
                s % 3,
                seed + s
            ));
        }
    }
    Bytes::from(b)
}

/// PUTs `n` pushes with `conc` in flight, group = `i % groups`, returns pushes/s.
async fn push_load(
    client: &reqwest::Client,
    base: &str,
    n: usize,
    conc: usize,
    groups: usize,
    offset: usize,
) -> f64 {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..conc {
        let client = client.clone();
        let base = base.to_string();
        let next = next.clone();
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let g = (i + offset) % groups;
                let url = format!("{base}/metrics/job/bench/instance/host-{g}");
                let r = client
                    .put(&url)
                    .body(body(i))
                    .send()
                    .await
                    .expect("push sent");
                let status = r.status();
                let _ = r.bytes().await;
                assert!(status.is_success(), "push {i} to {url}: {status}");
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

async fn get_metrics(client: &reqwest::Client, base: &str) -> (Duration, usize) {
    let start = Instant::now();
    let body = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    (start.elapsed(), body.len())
}

async fn get_metrics_median(client: &reqwest::Client, base: &str) -> (Duration, usize) {
    let mut v = Vec::new();
    for _ in 0..3 {
        v.push(get_metrics(client, base).await);
    }
    v.sort();
    v[1]
}

struct Figures {
    small: f64,
    large: f64,
    get: Duration,
    get_bytes: usize,
}

async fn run(
    name: &str,
    client: &reqwest::Client,
    base: &str,
    n: usize,
    conc: usize,
    large: usize,
) -> Figures {
    // Warm-up and 10 groups.
    push_load(client, base, 200, conc, 10, 0).await;
    let small = push_load(client, base, n, conc, 10, 0).await;
    println!("{name}: {small:.0} pushes/s into 10 groups");
    // Fill up to `large` groups, then measure across them.
    let t = Instant::now();
    push_load(client, base, large, conc, large, 0).await;
    println!(
        "{name}: filled {large} groups in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let big = push_load(client, base, n, conc, large, 7).await;
    println!("{name}: {big:.0} pushes/s into {large} groups");
    let (get, get_bytes) = get_metrics_median(client, base).await;
    println!(
        "{name}: GET /metrics {:.3}s for {:.1} MB",
        get.as_secs_f64(),
        get_bytes as f64 / 1e6
    );
    Figures {
        small,
        large: big,
        get,
        get_bytes,
    }
}

fn main() {
    let n = env("BENCH_PUSHES", 4000);
    let conc = env("BENCH_CONCURRENCY", 16);
    let large = env("BENCH_GROUPS", 10_000);

    // Our gateway on its own runtime (2 workers), as `argus dev` would run it.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("argus-gw")
        .enable_all()
        .build()
        .unwrap();
    // BENCH_STORE_DIR puts the redb file elsewhere (e.g. /dev/shm, to see the cost
    // of fsync on this disk).
    // As `argus dev` opens it: fsync at most every second (`dev.sync_interval`);
    // BENCH_SYNC=every fsyncs every commit.
    let durability = match std::env::var("BENCH_SYNC").as_deref() {
        Ok("every") => argus_store::Durability::EveryCommit,
        _ => argus_store::Durability::Interval(Duration::from_secs(1)),
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = std::env::var("BENCH_STORE_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| dir.path().to_path_buf());
    let kv = argus_store::EmbeddedKv::open_with(
        dir.join(format!("bench-{}.redb", std::process::id())),
        durability,
    )
    .expect("store");
    println!(
        "argus store: {durability:?}, gateway write-behind: {}",
        durability != argus_store::Durability::EveryCommit
    );
    let listener = server_rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let ours_url = format!("http://{}", listener.local_addr().unwrap());
    // As `argus dev` runs it: groups in memory, written behind every second
    // (BENCH_SYNC=every: every push written and fsynced before the answer).
    let write_behind = durability != argus_store::Durability::EveryCommit;
    let gw = Arc::new(Gateway::new(
        Arc::new(kv.clone()),
        GatewayConfig {
            write_behind,
            ..GatewayConfig::default()
        },
    ));
    if write_behind {
        server_rt.spawn(gw.clone().flush_every(Duration::from_secs(1)));
    }
    server_rt.spawn(serve(gw, listener, Arc::new(SystemClock)));

    let real = argus_testkit::spawn_peer(
        "pushgateway-bench",
        &argus_testkit::tool("prometheus-pushgateway"),
        &[
            "--web.listen-address=127.0.0.1:{port}",
            "--persistence.file=",
            "--push.disable-consistency-check",
        ],
    );

    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("loadgen")
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(conc)
        .no_gzip()
        .build()
        .unwrap();
    println!("load: {n} PUTs of a 50-series group per measurement, {conc} in flight; large store: {large} groups\n");
    let r = client_rt.block_on(run(
        "real (check off)",
        &client,
        &real.url(),
        n,
        conc,
        large,
    ));
    let o = client_rt.block_on(run("argus (check on) ", &client, &ours_url, n, conc, large));
    println!();
    println!("| measure | real pushgateway 1.5.1 (check off) | argus (check on, redb) | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| pushes/s, 10 groups | {:.0} | {:.0} | {:.2}x |",
        r.small,
        o.small,
        o.small / r.small
    );
    println!(
        "| pushes/s, {large} groups | {:.0} | {:.0} | {:.2}x |",
        r.large,
        o.large,
        o.large / r.large
    );
    println!(
        "| GET /metrics, {large} groups x 50 series | {:.3} s ({:.1} MB) | {:.3} s ({:.1} MB) | {:.2}x the time |",
        r.get.as_secs_f64(),
        r.get_bytes as f64 / 1e6,
        o.get.as_secs_f64(),
        o.get_bytes as f64 / 1e6,
        o.get.as_secs_f64() / r.get.as_secs_f64()
    );
    println!(
        "argus flatness 10 -> {large} groups: {:+.1}%",
        (o.large / o.small - 1.0) * 100.0
    );
    drop(real);
}
