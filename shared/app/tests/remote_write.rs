//! The evaluator's remote_write into the real `prometheus --web.enable-remote-write-receiver`
//! (2.42): what Prometheus received, queried back through its HTTP API, equals Argus's
//! own answer over its store (labels and values, staleness included); with the receiver
//! down for a few ticks and back, exactly the ticks beyond the backlog bound are
//! missing and every sample arrives once.

use argus_app::pipeline;
use argus_app::AppConfig;
use argus_model::{Kv, Labels, Millis};
use argus_remote_write::proto;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const STEP: i64 = 15_000;

fn prometheus(dir: &Path) -> argus_testkit::Peer {
    std::fs::write(
        dir.join("prometheus.yml"),
        "global: {scrape_interval: 1m}\n",
    )
    .unwrap();
    argus_testkit::spawn_peer(
        "prometheus",
        &argus_testkit::tool("prometheus"),
        &[
            &format!("--config.file={}", dir.join("prometheus.yml").display()),
            &format!("--storage.tsdb.path={}", dir.join("data").display()),
            "--web.listen-address=127.0.0.1:{port}",
            "--web.enable-remote-write-receiver",
        ],
    )
}

/// (labels, value) of an instant query, sorted; values as f64.
type Answer = Vec<(BTreeMap<String, String>, f64)>;

async fn prom_query(base: &str, expr: &str, at: Millis) -> Answer {
    let enc: String = expr
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let v: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "{base}/api/v1/query?query={enc}&time={}",
            at as f64 / 1000.0
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "success", "{v}");
    let mut out: Answer = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let labels = r["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            (
                labels,
                r["value"][1].as_str().unwrap().parse::<f64>().unwrap(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Argus's own answer over its store, as `argus query` computes it.
async fn argus_query(kv: &dyn Kv, expr: &str, at: Millis) -> Answer {
    let mut w = argus_app::tsdb::Window::new(24 * 3_600_000);
    w.catch_up(kv, at + 1).await.unwrap();
    let parsed = argus_promql::parse(expr).unwrap();
    let argus_promql::Value::Vector(v) = argus_promql::Engine::new()
        .instant(&parsed, at, &w.storage)
        .unwrap()
    else {
        panic!("not a vector")
    };
    let mut out: Answer = v
        .into_iter()
        .map(|s| (s.labels.to_map(), s.value))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The gateway and the evaluator as the evaluator function builds them, with a short
/// remote-write budget per tick (the test steps ticks faster than real time).
struct Rig {
    gateway: Arc<argus_pushgw::Gateway>,
    evaluator: argus_app::evaluator::Evaluator,
}

async fn rig(kv: Arc<dyn Kv>, cfg: &AppConfig, budget_ms: u64) -> Rig {
    let gateway = Arc::new(
        pipeline::build_gateway(kv.clone(), cfg, pipeline::StoreAccess::Shared, None).unwrap(),
    );
    let notifier = Arc::new(
        pipeline::build_notifier(
            kv.clone(),
            cfg,
            pipeline::StoreAccess::Shared,
            None,
            None,
            None,
        )
        .await
        .unwrap(),
    );
    let (ev, problems) = pipeline::build_evaluator(
        kv.clone(),
        cfg,
        pipeline::StoreAccess::Shared,
        gateway.clone(),
        notifier,
    )
    .unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    let rw = pipeline::build_remote_write(kv, cfg, None)
        .await
        .unwrap()
        .expect("remote_write configured");
    Rig {
        gateway,
        evaluator: ev.with_remote_write(rw, Duration::from_millis(budget_ms)),
    }
}

async fn push(p: &Rig, method: &str, path: &str, body: &str, now: Millis) {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .body(Bytes::from(body.to_string()))
        .unwrap();
    let resp = p.gateway.handle(req, now).await;
    assert!(
        resp.status().is_success(),
        "{method} {path}: {:?}",
        resp.body()
    );
}

fn config(dir: &Path, remote: &str) -> AppConfig {
    std::fs::write(
        dir.join("rules.yml"),
        r#"groups:
  - name: g
    rules:
      - record: job:temp:max
        expr: max by (job) (temp)
      - alert: Hot
        expr: temp > 20
        labels: {severity: page}
"#,
    )
    .unwrap();
    let text = format!(
        "global:\n  evaluation_interval: 15s\n  external_labels: {{region: test}}\nrule_files: [rules.yml]\nremote_write:\n{remote}"
    );
    std::fs::write(dir.join("argus.yml"), text).unwrap();
    AppConfig::load(&dir.join("argus.yml")).unwrap()
}

/// A tick time a few minutes back, on a 15 s boundary (Prometheus accepts it).
fn start() -> Millis {
    use argus_model::Clock;
    (argus_model::SystemClock.now_ms() - 10 * 60_000) / STEP * STEP
}

fn with_region(a: Answer) -> Answer {
    let mut out: Answer = a
        .into_iter()
        .map(|(mut l, v)| {
            l.entry("region".into()).or_insert_with(|| "test".into());
            (l, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_receives_what_the_evaluator_had() {
    let dir = tempfile::tempdir().unwrap();
    let prom = prometheus(dir.path());
    let cfg = config(
        dir.path(),
        &format!(
            "  - url: {}/api/v1/write\n    name: prom\n    write_relabel_configs:\n      - {{source_labels: [__name__], regex: 'hidden_.*', action: drop}}\n",
            prom.url()
        ),
    );
    let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open_temp().unwrap());
    let p = rig(kv.clone(), &cfg, 5_000).await;
    let t0 = start();
    let ticks = 8;
    for i in 0..ticks {
        let now = t0 + i * STEP;
        push(
            &p,
            "PUT",
            "/metrics/job/batch/instance/a",
            &format!(
                "# TYPE jobs_total counter\njobs_total {}\nhidden_secret 1\ntemp{{room=\"x\"}} {}\n",
                5 + i,
                19.0 + i as f64 * 0.5
            ),
            now - 1,
        )
        .await;
        if i < 3 {
            push(
                &p,
                "PUT",
                "/metrics/job/batch/instance/b",
                "temp{room=\"y\"} 21.25\n",
                now - 1,
            )
            .await;
        } else if i == 3 {
            push(&p, "DELETE", "/metrics/job/batch/instance/b", "", now - 1).await;
        }
        let rep = p.evaluator.tick(now).await.unwrap();
        let q = &rep.remote_write[0];
        assert!(
            q.errors.is_empty() && q.sent > 0 && q.backlog == 0,
            "tick {i}: {q}"
        );
    }
    let last = t0 + (ticks - 1) * STEP;
    // Argus has the hidden metric; Prometheus must not.
    assert!(!argus_query(kv.as_ref(), "hidden_secret", last)
        .await
        .is_empty());
    assert!(prom_query(&prom.url(), "hidden_secret", last)
        .await
        .is_empty());
    let everything = "{__name__=~\".+\",__name__!~\"hidden_.*\"}";
    let mut exprs = vec![
        (everything.to_string(), last),
        // Right after group b went away: both see it stale.
        (everything.to_string(), t0 + 3 * STEP),
        (everything.to_string(), t0 + 2 * STEP),
    ];
    // Range functions drop the name: one query per metric name.
    let mut names: Vec<String> = argus_query(kv.as_ref(), everything, last)
        .await
        .into_iter()
        .map(|(l, _)| l["__name__"].clone())
        .collect();
    names.dedup();
    for n in &names {
        exprs.push((format!("count_over_time({{__name__=\"{n}\"}}[10m])"), last));
        exprs.push((format!("sum_over_time({{__name__=\"{n}\"}}[10m])"), last));
    }
    for (expr, at) in exprs {
        let ours = with_region(argus_query(kv.as_ref(), &expr, at).await);
        let theirs = prom_query(&prom.url(), &expr, at).await;
        assert!(!ours.is_empty(), "{expr}");
        assert_eq!(theirs, ours, "{expr} @ {at}\n{}", prom.log());
    }
    // Every kind of series arrived: pushed, recorded, ALERTS.
    let names: Vec<String> = prom_query(&prom.url(), everything, last)
        .await
        .into_iter()
        .map(|(l, _)| l["__name__"].clone())
        .collect();
    for want in [
        "jobs_total",
        "temp",
        "job:temp:max",
        "ALERTS",
        "ALERTS_FOR_STATE",
        "push_time_seconds",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
}

/// Forwards remote-write requests to Prometheus, answering 503 itself while `down`;
/// records every (series, timestamp) that Prometheus accepted.
#[derive(Clone, Default)]
struct Proxy {
    down: Arc<AtomicBool>,
    delivered: Arc<Mutex<HashMap<(Labels, i64), usize>>>,
}

async fn proxy(target: String) -> (Proxy, String) {
    let px = Proxy::default();
    let p2 = px.clone();
    let client = reqwest::Client::new();
    let app = axum::Router::new().route(
        "/api/v1/write",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let (px, client, target) = (p2.clone(), client.clone(), target.clone());
                async move {
                    if px.down.load(Ordering::SeqCst) {
                        return (
                            axum::http::StatusCode::SERVICE_UNAVAILABLE,
                            String::from("down"),
                        );
                    }
                    let mut req = client.post(&target).body(body.to_vec());
                    for (k, v) in &headers {
                        if k != "host" && k != "content-length" {
                            req = req.header(k.as_str(), v.as_bytes());
                        }
                    }
                    let resp = req.send().await.unwrap();
                    let status = resp.status();
                    if status.is_success() {
                        let wr = proto::decode(&body).unwrap();
                        let mut d = px.delivered.lock().unwrap();
                        for ts in wr.timeseries {
                            for s in &ts.samples {
                                *d.entry((ts.labels(), s.timestamp)).or_default() += 1;
                            }
                        }
                    }
                    let text = resp.text().await.unwrap_or_default();
                    (
                        axum::http::StatusCode::from_u16(status.as_u16()).unwrap(),
                        text,
                    )
                }
            },
        ),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/v1/write", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (px, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_down_then_back_loses_only_beyond_the_bound_and_sends_once() {
    let dir = tempfile::tempdir().unwrap();
    let prom = prometheus(dir.path());
    let (px, url) = proxy(format!("{}/api/v1/write", prom.url())).await;
    // temp, push_time_seconds, push_failure_time_seconds, job:temp:max, ALERTS and
    // ALERTS_FOR_STATE (temp > 20): 6 samples a tick. Bound: 3 ticks' worth.
    let per_tick = 6;
    let cfg = config(
        dir.path(),
        &format!(
            "  - url: {url}\n    name: px\n    queue_config: {{min_backoff: 5ms, max_backoff: 20ms, max_samples_per_send: 5, max_backlog_samples: {}}}\n",
            3 * per_tick
        ),
    );
    let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open_temp().unwrap());
    let p = rig(kv.clone(), &cfg, 150).await;
    let t0 = start();
    let ticks = 10;
    let down = 3..8; // 5 ticks down, bound 3: ticks 3 and 4 are dropped
    let mut sent_total = 0;
    let mut overflow_total = 0;
    for i in 0..ticks {
        let now = t0 + i * STEP;
        px.down.store(down.contains(&i), Ordering::SeqCst);
        push(
            &p,
            "PUT",
            "/metrics/job/j/instance/a",
            &format!("temp {}\n", 21 + i),
            now - 1,
        )
        .await;
        let rep = p.evaluator.tick(now).await.unwrap();
        let q = &rep.remote_write[0];
        sent_total += q.sent;
        overflow_total += q.overflowed;
        if down.contains(&i) {
            assert_eq!(q.sent, 0, "tick {i}: {q}");
            assert_eq!(
                q.backlog,
                per_tick * (i - down.start + 1).min(3) as usize,
                "tick {i}: {q}"
            );
        } else {
            assert_eq!(q.backlog, 0, "tick {i}: {q}");
        }
    }
    assert_eq!(overflow_total, 2 * per_tick);
    assert_eq!(sent_total, (ticks as usize - 2) * per_tick);
    // Nothing arrived twice at the receiver.
    let d = px.delivered.lock().unwrap().clone();
    let dup: Vec<_> = d.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dup.is_empty(), "sent twice: {dup:?}");
    assert_eq!(d.len(), (ticks as usize - 2) * per_tick);
    // Prometheus holds each series' samples of every tick except the two dropped ones.
    let last = t0 + (ticks - 1) * STEP;
    let series = prom_query(&prom.url(), "{__name__=~\".+\"}", last).await;
    assert_eq!(series.len(), per_tick, "{series:?}");
    for (l, _) in &series {
        let name = &l["__name__"];
        let n = prom_query(&prom.url(), &format!("count_over_time({name}[10m])"), last).await;
        assert_eq!(n.len(), 1, "{name}: {n:?}");
        assert_eq!(n[0].1, (ticks - 2) as f64, "{name}");
    }
    // Exactly ticks 3 and 4 are missing.
    let at3 = prom_query(&prom.url(), "temp", t0 + 3 * STEP).await;
    assert_eq!(
        at3[0].1, 23.0,
        "tick 3's lookback finds tick 2's sample: {at3:?}"
    );
    let ts = prom_query(&prom.url(), "timestamp(temp)", t0 + 4 * STEP).await;
    assert_eq!(ts[0].1, ((t0 + 2 * STEP) / 1000) as f64);
    let ts = prom_query(&prom.url(), "timestamp(temp)", t0 + 5 * STEP).await;
    assert_eq!(ts[0].1, ((t0 + 5 * STEP) / 1000) as f64);
}

#[test]
fn config_check_names_queues_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let write = |text: &str| {
        std::fs::write(dir.path().join("argus.yml"), text).unwrap();
        AppConfig::load(&dir.path().join("argus.yml"))
    };
    let cfg = write(
        "remote_write:\n  - url: http://127.0.0.1:1/api/v1/write\n    name: a\n    basic_auth: {username: u, password_file: pw}\n",
    )
    .unwrap();
    let e = pipeline::check_remote_write(&cfg).unwrap_err();
    assert!(
        format!("{e:#}").contains("remote_write[0]") && format!("{e:#}").contains("pw"),
        "{e:#}"
    );
    std::fs::write(dir.path().join("pw"), "x").unwrap();
    let lines = pipeline::check_remote_write(&cfg).unwrap();
    assert_eq!(lines, vec!["remote_write a: OK (http://127.0.0.1:1/api/v1/write, basic_auth, 0 write_relabel_configs)"]);
    // Unknown keys are refused at load, naming the key.
    let e =
        write("remote_write:\n  - url: http://a/\n    queue_config: {max_samples_per_sent: 1}\n")
            .unwrap_err()
            .to_string();
    assert!(e.contains("max_samples_per_sent"), "{e}");
}
