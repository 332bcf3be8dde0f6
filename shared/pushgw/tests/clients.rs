//! Real clients and a real scraper against our gateway: Python prometheus_client
//! (push/pushadd/delete with a grouping key containing `/`), compared with the real
//! pushgateway; a real Prometheus scraping us with `honor_labels: true`.

mod common;

use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

const SCRIPT: &str = r#"
import sys
from prometheus_client import CollectorRegistry, Gauge, Counter, Histogram, push_to_gateway, pushadd_to_gateway, delete_from_gateway
gw, action = sys.argv[1], sys.argv[2]
key = {'path': '/var/tmp', 'instance': 'host:9100'}
if action == 'push':
    reg = CollectorRegistry()
    g = Gauge('job_last_success_unixtime', 'Last time a batch job successfully finished', ['kind'], registry=reg)
    g.labels('full').set(1234.5)
    h = Histogram('job_duration_seconds', 'Duration', buckets=(0.5, 1, 10), registry=reg)
    h.observe(0.7)
    push_to_gateway(gw, job='batch/nightly', grouping_key=key, registry=reg)
elif action == 'pushadd':
    reg = CollectorRegistry()
    g = Gauge('job_items', 'Items processed', registry=reg)
    g.set(3)
    pushadd_to_gateway(gw, job='batch/nightly', grouping_key=key, registry=reg)
elif action == 'delete':
    delete_from_gateway(gw, job='batch/nightly', grouping_key=key)
print('ok')
"#;

fn run_client(url: &str, action: &str, script: &std::path::Path) {
    let out = Command::new(argus_testkit::python())
        .arg(script)
        .arg(url)
        .arg(action)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{action} against {url}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_push_pushadd_delete_like_the_real_gateway() {
    let real = start_real(&[]);
    let ours = start_ours_default().await;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("client.py");
    std::fs::write(&script, SCRIPT).unwrap();
    let client = client();
    for action in ["push", "pushadd", "delete", "push"] {
        let (r, o) = (real.url(), ours.url.clone());
        let s = script.clone();
        let a = action.to_string();
        tokio::task::spawn_blocking(move || {
            run_client(&r, &a, &s);
            run_client(&o, &a, &s);
        })
        .await
        .unwrap();
        let rm = get_text(&client, format!("{}/metrics", real.url())).await;
        let om = get_text(&client, format!("{}/metrics", ours.url)).await;
        assert_eq!(
            normalise(&om),
            normalise(&rm),
            "after {action}\nreal:\n{rm}\nours:\n{om}"
        );
        match action {
            "delete" => assert!(!om.contains("job_items"), "{om}"),
            _ => assert!(
                om.contains("job_last_success_unixtime{instance=\"host:9100\",job=\"batch/nightly\",kind=\"full\",path=\"/var/tmp\"} 1234.5"),
                "{action}: {om}"
            ),
        }
        if action == "pushadd" {
            assert!(
                om.contains(
                    "job_items{instance=\"host:9100\",job=\"batch/nightly\",path=\"/var/tmp\"} 3"
                ),
                "{om}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus_scrapes_us_with_honor_labels() {
    let ours = start_ours_default().await;
    let client = client();
    let put = |path: &str, body: &'static str| {
        client.put(format!("{}{path}", ours.url)).body(body).send()
    };
    assert_eq!(
        put(
            "/metrics/job/batch/instance/inst1",
            "# TYPE probe_ok gauge\nprobe_ok{target=\"a\"} 1\n"
        )
        .await
        .unwrap()
        .status(),
        200
    );
    assert_eq!(
        put(
            "/metrics/job/cron",
            "# TYPE probe_ok gauge\nprobe_ok{target=\"b\"} 0\n"
        )
        .await
        .unwrap()
        .status(),
        200
    );
    let addr = ours.url.trim_start_matches("http://").to_string();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: pushgateway\n    honor_labels: true\n    static_configs:\n      - targets: ['{addr}']\n"),
    )
    .unwrap();
    let data = dir.path().join("data");
    let prom = argus_testkit::spawn_peer(
        "prometheus",
        &argus_testkit::tool("prometheus"),
        &[
            &format!("--config.file={}", cfg.display()),
            &format!("--storage.tsdb.path={}", data.display()),
            "--web.listen-address=127.0.0.1:{port}",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let result = loop {
        let text = get_text(
            &client,
            format!("{}/api/v1/query?query=probe_ok", prom.url()),
        )
        .await;
        // Until Prometheus is ready it answers plain text.
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        let r = v["data"]["result"].as_array().cloned().unwrap_or_default();
        if r.len() == 2 {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never ingested our series: {v}\n{}",
            prom.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let mut seen: Vec<serde_json::Value> = result.iter().map(|s| s["metric"].clone()).collect();
    seen.sort_by_key(|m| m["target"].as_str().unwrap_or("").to_string());
    assert_eq!(
        seen[0],
        serde_json::json!({"__name__": "probe_ok", "instance": "inst1", "job": "batch", "target": "a"})
    );
    // instance="" means "no instance": Prometheus does not attach the gateway's own.
    assert_eq!(
        seen[1],
        serde_json::json!({"__name__": "probe_ok", "job": "cron", "target": "b"})
    );
    // And our snapshot says exactly what Prometheus ingested.
    let now = argus_model::Clock::now_ms(&argus_model::SystemClock);
    let snap = ours.gw.snapshot(now).await.unwrap();
    let mut ours_probe: Vec<serde_json::Value> = snap
        .iter()
        .filter(|(l, _)| l.name() == Some("probe_ok"))
        .map(|(l, _)| serde_json::to_value(l).unwrap())
        .collect();
    ours_probe.sort_by_key(|m| m["target"].as_str().unwrap_or("").to_string());
    assert_eq!(ours_probe, seen);
}
