//! The `scrape` prober beside a real Prometheus 2.42 scraping the same local targets:
//! same `up`, `scrape_samples_scraped`, `scrape_samples_post_metric_relabeling`.

mod common;

use argus_probe::{load_modules, Prober, ProberConfig};
use argus_testkit::{spawn_peer, tool};
use common::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Instant query; `None` while Prometheus is not ready yet (503).
async fn try_query(addr: std::net::SocketAddr, q: &str) -> Option<BTreeMap<String, f64>> {
    let (status, body) = get(addr, &format!("/api/v1/query?query={}", urlencode(q))).await;
    if status == 503 {
        return None;
    }
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut out = BTreeMap::new();
    for r in v["data"]["result"].as_array().cloned().unwrap_or_default() {
        let job = r["metric"]["job"].as_str().unwrap_or("").to_string();
        let val: f64 = r["value"][1].as_str().unwrap_or("NaN").parse().unwrap();
        out.insert(job, val);
    }
    Some(out)
}

async fn query(addr: std::net::SocketAddr, q: &str) -> BTreeMap<String, f64> {
    try_query(addr, q).await.expect("prometheus ready")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_synthetic_series_match_prometheus() {
    let http = http_server().await;
    let hostport = http.trim_start_matches("http://").to_string();
    let refused = refused_addr().to_string();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prometheus.yml");
    let jobs = [
        ("good", "/metrics", hostport.clone()),
        ("garbage", "/garbage", hostport.clone()),
        ("notfound", "/notfound", hostport.clone()),
        ("refused", "/metrics", refused.clone()),
    ];
    let mut yaml =
        String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
    for (job, path, t) in &jobs {
        yaml.push_str(&format!("  - job_name: {job}\n    metrics_path: {path}\n    static_configs:\n      - targets: ['{t}']\n"));
    }
    std::fs::write(&cfg, yaml).unwrap();
    let data = dir.path().join("data");
    let prom = spawn_peer(
        "prometheus",
        &tool("prometheus"),
        &[
            &format!("--config.file={}", cfg.display()),
            "--web.listen-address=127.0.0.1:{port}",
            &format!("--storage.tsdb.path={}", data.display()),
        ],
    );

    let modules = load_modules("").unwrap();
    let prober = Prober::new(ProberConfig::default());
    let scrape = modules.get("scrape").unwrap();

    // Wait until Prometheus scraped every job once.
    let deadline = Instant::now() + Duration::from_secs(20);
    let theirs = loop {
        let up = try_query(prom.addr(), "up").await.unwrap_or_default();
        if up.len() == jobs.len() {
            break up;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus did not scrape all jobs: {up:?}\n{}",
            prom.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let samples = query(prom.addr(), "scrape_samples_scraped").await;
    let post = query(prom.addr(), "scrape_samples_post_metric_relabeling").await;

    for (job, path, t) in &jobs {
        let target = format!("http://{t}{path}");
        let o = prober.probe(&target, scrape, 0).await;
        assert_eq!(
            o.value("up"),
            Some(theirs[*job]),
            "{job}: up; error {:?}",
            o.error
        );
        assert_eq!(
            o.value("scrape_samples_scraped"),
            Some(samples[*job]),
            "{job}: scrape_samples_scraped"
        );
        assert_eq!(
            o.value("scrape_samples_post_metric_relabeling"),
            Some(post[*job]),
            "{job}: post relabeling"
        );
        assert!(o
            .value("scrape_duration_seconds")
            .is_some_and(|d| d > 0.0 && d < 1.0));
        assert_eq!(o.success, theirs[*job] == 1.0);
    }
    // The good target's own series come back as families.
    let o = prober.probe(&hostport, scrape, 0).await;
    let s = samples_of(&o.text());
    assert_eq!(s.get("websocket_messages_total"), Some(&42.0));
    let all = common::samples(&o.text());
    assert_eq!(all["app_requests_total"]["code=500"], 2.0);
    assert_eq!(all["app_latency"]["le=0.1"], 3.0);
}

fn samples_of(text: &str) -> BTreeMap<String, f64> {
    samples(text)
        .into_iter()
        .filter_map(|(k, m)| m.get("").map(|v| (k, *v)))
        .collect()
}
