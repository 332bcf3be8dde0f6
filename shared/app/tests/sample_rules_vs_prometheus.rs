//! What a scrape job does to the samples it scrapes, side by side with the real
//! Prometheus 2.42: the same prometheus.yml (`honor_labels: false` with conflicting
//! exposed labels, `honor_labels: true`, `metric_relabel_configs` that drop, rename,
//! add and map labels, `honor_timestamps: false` over an exposition with timestamps)
//! scrapes one local exporter under Prometheus and under Argus (targets from the file,
//! one probe run, the gateway's snapshot as the evaluator reads it). The series each
//! job stores, with their values, and `scrape_samples_post_metric_relabeling` are equal.

use argus_app::pipeline::Pipeline;
use argus_app::AppConfig;
use argus_model::Kv;
use argus_testkit::{spawn_peer, tool};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

const METRICS: &str = r#"# TYPE req_total counter
req_total{code="200",job="app",instance="orig"} 5
req_total{code="500"} 1
# TYPE temp gauge
temp{exported_job="x",job="y",team="mobile"} 3
# TYPE lat histogram
lat_bucket{le="0.1"} 1
lat_bucket{le="+Inf"} 2
lat_sum 0.3
lat_count 2
# TYPE go_gc gauge
go_gc 7
"#;
const HONOR: &str =
    "# TYPE temp gauge\ntemp{site=\"a\"} 3\n# TYPE other gauge\nother{zone=\"z\"} 1\n";
const TS: &str = "# TYPE plain gauge\nplain{k=\"v\"} 1 1700000000000\nplain{k=\"w\"} 2\n";

fn config(exporter: &str) -> String {
    format!(
        r#"global:
  scrape_interval: 1s
scrape_configs:
  - job_name: exp-plain
    static_configs:
      - targets: ['{exporter}']
        labels: {{team: web}}
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: 'go_.*'
        action: drop
      - source_labels: [code]
        regex: '5..'
        target_label: class
        replacement: server_error
      - regex: 'exported_(job)'
        replacement: 'orig_$1'
        action: labelmap
  - job_name: exp-honor
    honor_labels: true
    metrics_path: /honor
    static_configs:
      - targets: ['{exporter}']
        labels: {{team: web}}
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: temp
        target_label: __name__
        replacement: temperature
      - source_labels: [zone]
        regex: z
        action: drop
  - job_name: exp-ts
    honor_timestamps: false
    metrics_path: /ts
    static_configs:
      - targets: ['{exporter}']
"#
    )
}

/// A static exporter: `/metrics`, `/honor`, `/ts`; stops when the test ends.
fn exporter() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut first = String::new();
            if r.read_line(&mut first).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).map_or(true, |n| n == 0) || h == "\r\n" {
                    break;
                }
            }
            let path = first.split_whitespace().nth(1).unwrap_or("/");
            let body = match path {
                "/metrics" => METRICS,
                "/honor" => HONOR,
                "/ts" => TS,
                _ => "",
            };
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

fn get(port: u16, path: &str) -> String {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

const REPORT: &[&str] = &[
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
    "push_time_seconds",
    "push_failure_time_seconds",
];

type Series = BTreeSet<(BTreeMap<String, String>, String)>;

fn fmt_value(v: f64) -> String {
    format!("{v}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraped_samples_equal_the_real_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let exp = exporter();
    std::fs::write(d.join("prometheus.yml"), config(&exp.to_string())).unwrap();
    std::fs::write(d.join("argus.yml"), "prometheus_config: prometheus.yml\n").unwrap();
    std::fs::create_dir_all(d.join("data")).unwrap();
    let prom = spawn_peer(
        "prometheus",
        &tool("prometheus"),
        &[
            &format!("--config.file={}", d.join("prometheus.yml").display()),
            "--web.listen-address=127.0.0.1:{port}",
            &format!("--storage.tsdb.path={}", d.join("data").display()),
        ],
    );

    // Argus: the targets from the file, one probe run, the evaluator's view.
    let mut cfg = AppConfig::load(&d.join("argus.yml")).unwrap();
    let loaded = argus_app::promconfig::prepare(&mut cfg).unwrap().unwrap();
    let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open(d.join("s.redb")).unwrap());
    argus_app::promconfig::sync_targets(kv.as_ref(), &loaded.plan.targets)
        .await
        .unwrap();
    let p = Pipeline::build(kv, cfg, None).await.unwrap();
    let now = argus_model::Clock::now_ms(&argus_model::SystemClock);
    let r = p.probe.run(now, None).await.unwrap();
    assert_eq!(r.probed.len(), 3, "{r}");
    assert_eq!(r.up(), 3, "{r}");
    let mut argus: BTreeMap<String, Series> = BTreeMap::new();
    let mut argus_post: BTreeMap<String, String> = BTreeMap::new();
    for (l, v) in p.gateway.snapshot(now).await.unwrap() {
        let job = l.get("job").unwrap_or("").to_string();
        if !job.starts_with("exp-") {
            continue;
        }
        let name = l.name().unwrap_or("");
        if name == "scrape_samples_post_metric_relabeling" {
            argus_post.insert(job.clone(), fmt_value(v));
        }
        if REPORT.contains(&name) {
            continue;
        }
        argus
            .entry(job)
            .or_default()
            .insert((l.to_map(), fmt_value(v)));
    }

    // Prometheus: every series of the three jobs once each has been scraped.
    let end = Instant::now() + Duration::from_secs(30);
    let (prom_series, prom_post) = loop {
        let b: Value = serde_json::from_str(&get(
            prom.port,
            "/api/v1/query?query=%7Bjob%3D~%22exp-.%2A%22%7D",
        ))
        .unwrap_or(Value::Null);
        let mut series: BTreeMap<String, Series> = BTreeMap::new();
        let mut post = BTreeMap::new();
        for s in b["data"]["result"].as_array().into_iter().flatten() {
            let m: BTreeMap<String, String> = s["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            let job = m["job"].clone();
            let name = m["__name__"].clone();
            let v: f64 = s["value"][1].as_str().unwrap().parse().unwrap();
            if name == "scrape_samples_post_metric_relabeling" {
                post.insert(job.clone(), fmt_value(v));
            }
            if REPORT.contains(&name.as_str()) {
                continue;
            }
            series.entry(job).or_default().insert((m, fmt_value(v)));
        }
        if post.len() == 3 {
            break (series, post);
        }
        assert!(Instant::now() < end, "Prometheus shows {b}\n{}", prom.log());
        std::thread::sleep(Duration::from_millis(200));
    };
    drop(prom);
    // The test means something: the conflicts were renamed, a series was dropped.
    let plain = &prom_series["exp-plain"];
    assert!(
        plain
            .iter()
            .any(|(m, _)| m.get("exported_exported_job").is_some()),
        "{plain:?}"
    );
    assert!(!plain.iter().any(|(m, _)| m["__name__"] == "go_gc"));
    assert_eq!(prom_post["exp-plain"], "7");
    for job in ["exp-plain", "exp-honor", "exp-ts"] {
        assert_eq!(
            argus.get(job),
            prom_series.get(job),
            "series of {job}: Argus (left) vs Prometheus (right)"
        );
    }
    assert_eq!(
        argus_post, prom_post,
        "scrape_samples_post_metric_relabeling"
    );
}

fn put(port: u16, path: &str, body: &str) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "PUT {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(
        out.starts_with("HTTP/1.1 200") || out.starts_with("HTTP/1.0 200"),
        "{out}"
    );
}

const PUSHES: &[(&str, &str)] = &[
    (
        "/metrics/job/batch/instance/host1",
        "# TYPE jobs_done counter\njobs_done{queue=\"a\"} 3\njobs_done{queue=\"b\"} 4\n",
    ),
    (
        "/metrics/job/nightly",
        "# TYPE last_success gauge\nlast_success 17\n# TYPE noise gauge\nnoise 1\n",
    ),
];

const PUSHED: &[&str] = &[
    "jobs_done",
    "last_success",
    "noise",
    "push_failure_time_seconds",
];

/// A prometheus.yml's Pushgateway job becomes Argus's gateway: what its scrape does
/// to the pushed series (`honor_labels: false` renaming the pushed job/instance to
/// `exported_*`, `honor_labels: true` keeping them, `metric_relabel_configs`) equals
/// the real Prometheus 2.42 scraping the real Pushgateway with the same pushes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushgateway_jobs_equal_the_real_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pgw = spawn_peer(
        "pushgateway",
        &tool("prometheus-pushgateway"),
        &["--web.listen-address=127.0.0.1:{port}"],
    );
    for (path, body) in PUSHES {
        put(pgw.port, path, body);
    }
    let job = |name: &str, honor: bool| {
        format!(
            "  - job_name: {name}\n    honor_labels: {honor}\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n        labels: {{env: prod}}\n    metric_relabel_configs:\n      - source_labels: [__name__]\n        regex: 'noise|push_failure_time_seconds'\n        action: drop\n      - source_labels: [exported_job]\n        target_label: pushed_by\n",
            pgw.port
        )
    };
    let head = "global:\n  scrape_interval: 1s\nscrape_configs:\n";
    let both = format!(
        "{head}{}{}",
        job("pushgateway", false),
        job("pushgateway-honor", true)
    );
    std::fs::write(d.join("prometheus.yml"), &both).unwrap();
    std::fs::create_dir_all(d.join("data")).unwrap();
    let prom = spawn_peer(
        "prometheus",
        &tool("prometheus"),
        &[
            &format!("--config.file={}", d.join("prometheus.yml").display()),
            "--web.listen-address=127.0.0.1:{port}",
            &format!("--storage.tsdb.path={}", d.join("data").display()),
        ],
    );

    // Argus: one gateway with the same pushes; each job's scrape of it.
    let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open(d.join("s.redb")).unwrap());
    let now = argus_model::Clock::now_ms(&argus_model::SystemClock);
    let mut argus: BTreeMap<String, Series> = BTreeMap::new();
    let mut gateway = None;
    for (name, honor) in [("pushgateway", false), ("pushgateway-honor", true)] {
        let sub = d.join(name);
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(
            sub.join("prometheus.yml"),
            format!("{head}{}", job(name, honor)),
        )
        .unwrap();
        std::fs::write(sub.join("argus.yml"), "prometheus_config: prometheus.yml\n").unwrap();
        let mut cfg = AppConfig::load(&sub.join("argus.yml")).unwrap();
        argus_app::promconfig::prepare(&mut cfg).unwrap();
        assert!(cfg.gateway_scrape.is_some(), "{name} is the gateway job");
        let p = Pipeline::build(kv.clone(), cfg, None).await.unwrap();
        if gateway.is_none() {
            for (path, body) in PUSHES {
                let req = http::Request::builder()
                    .method("PUT")
                    .uri(*path)
                    .body(bytes::Bytes::from(body.to_string()))
                    .unwrap();
                let r = p.gateway.handle(req, now).await;
                assert_eq!(r.status(), 200);
            }
            gateway = Some(());
        }
        for (l, v) in p.evaluator.scrape_gateway(now + 1000).await.unwrap() {
            let name = l.name().unwrap_or("").to_string();
            if !PUSHED.contains(&name.as_str()) {
                continue; // push_time_seconds: the time of each push, different by nature
            }
            let job = if honor {
                "pushgateway-honor"
            } else {
                "pushgateway"
            };
            argus
                .entry(job.into())
                .or_default()
                .insert((l.to_map(), fmt_value(v)));
        }
    }

    // Prometheus: the series of the two jobs (the honor job's keep the pushed job).
    let end = Instant::now() + Duration::from_secs(30);
    let prom_series = loop {
        let b: Value = serde_json::from_str(&get(
            prom.port,
            "/api/v1/query?query=%7Benv%3D%22prod%22%7D",
        ))
        .unwrap_or(Value::Null);
        let mut series: BTreeMap<String, Series> = BTreeMap::new();
        let mut ups = 0;
        for s in b["data"]["result"].as_array().into_iter().flatten() {
            let m: BTreeMap<String, String> = s["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            let name = m["__name__"].clone();
            if name == "up" {
                ups += 1;
            }
            // The pushed families only (the real Pushgateway's own go_*, process_*
            // and pushgateway_* metrics have no counterpart in Argus's gateway).
            if !PUSHED.contains(&name.as_str()) {
                continue;
            }
            // Which job scraped it: the honor job's series keep the pushed job.
            let job = if m.get("job").is_some_and(|j| j == "pushgateway") {
                "pushgateway"
            } else {
                "pushgateway-honor"
            };
            let v: f64 = s["value"][1].as_str().unwrap().parse().unwrap();
            series
                .entry(job.into())
                .or_default()
                .insert((m, fmt_value(v)));
        }
        if ups == 2 && series.len() == 2 {
            break series;
        }
        assert!(Instant::now() < end, "Prometheus shows {b}\n{}", prom.log());
        std::thread::sleep(Duration::from_millis(200));
    };
    drop((prom, pgw));
    let plain = &prom_series["pushgateway"];
    assert!(
        plain
            .iter()
            .any(|(m, _)| m.get("exported_job").map(String::as_str) == Some("batch")),
        "{plain:?}"
    );
    assert_eq!(argus, prom_series, "Argus (left) vs Prometheus (right)");
}
