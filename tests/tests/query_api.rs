//! The query API side by side with a real Prometheus 2.42: the same samples are
//! backfilled into Prometheus from one OpenMetrics file (`promtool tsdb
//! create-blocks-from openmetrics`) and written into Argus's store as the evaluator's
//! per-tick chunks; then instant queries, range queries at several steps, series,
//! labels, label values and error cases must give the same JSON (series sorted,
//! floats within 1e-9 relative), and `promtool query instant|range|series|labels`
//! must print the same against both.

use argus_model::{Labels, SystemClock};
use argus_query::QueryService;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

const STEP_MS: i64 = 15_000;
const TICKS: i64 = 2 * 240; // two hours at 15 s

/// Deterministic samples at each tick: (labels, value).
fn tick_samples(i: i64) -> Vec<(Labels, f64)> {
    let mut out = Vec::new();
    for (n, inst) in [
        "https://a.example",
        "https://b.example",
        "https://c.example",
    ]
    .iter()
    .enumerate()
    {
        let n = n as i64;
        let base = |name: &str| {
            Labels::from_pairs([("__name__", name), ("instance", inst), ("job", "probe")])
        };
        // Down for a stretch on b, a blip on c.
        let up = !((n == 1 && (100..160).contains(&i)) || (n == 2 && i == 300));
        out.push((base("probe_success"), if up { 1.0 } else { 0.0 }));
        let dur = 0.05 + ((i * (n + 3)) % 17) as f64 * 0.013 + n as f64 * 0.1;
        out.push((base("probe_duration_seconds"), dur));
        for (code, rate) in [("200", 7 + n), ("500", 1 + n)] {
            // Counter with a reset at tick 200 on a.
            let k = if n == 0 && i >= 200 { i - 200 } else { i };
            let mut l = base("http_requests_total");
            l.set("code", code);
            out.push((l, (k * rate + (k * k) % 5) as f64));
        }
        let mut cum = 0.0;
        for (le, w) in [("0.1", 3), ("0.5", 5), ("1", 2), ("+Inf", 1)] {
            cum += (w * (i + n) % 11 + w) as f64;
            let mut l = base("req_bucket");
            l.set("le", le);
            out.push((l, cum * (i + 1) as f64));
        }
    }
    if i >= TICKS / 2 {
        out.push((
            Labels::from_pairs([
                ("__name__", "late_series"),
                ("instance", "z"),
                ("job", "batch"),
            ]),
            (i as f64).sqrt(),
        ));
    }
    out
}

fn openmetrics(t0: i64) -> String {
    // Families grouped, each series' samples in time order.
    let mut by_name: std::collections::BTreeMap<
        String,
        std::collections::BTreeMap<Labels, Vec<(i64, f64)>>,
    > = Default::default();
    for i in 0..TICKS {
        for (l, v) in tick_samples(i) {
            by_name
                .entry(l.name().unwrap().to_string())
                .or_default()
                .entry(l)
                .or_default()
                .push((t0 + i * STEP_MS, v));
        }
    }
    let mut out = String::new();
    for (name, series) in by_name {
        out.push_str(&format!("# TYPE {name} gauge\n"));
        for (l, samples) in series {
            let pairs: Vec<String> = l
                .iter()
                .filter(|(k, _)| *k != "__name__")
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect();
            for (t, v) in samples {
                out.push_str(&format!(
                    "{name}{{{}}} {v} {}.{:03}\n",
                    pairs.join(","),
                    t / 1000,
                    t % 1000
                ));
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

struct Sides {
    _prom: argus_testkit::Peer,
    prom_url: String,
    argus: Arc<QueryService>,
    argus_url: String,
    _dir: tempfile::TempDir,
    t0: i64,
    _server: tokio::task::JoinHandle<()>,
}

async fn setup() -> Sides {
    let now = chrono::Utc::now().timestamp_millis();
    // Three hours ago, on a 2h block boundary's worth of slack: inside retention.
    let t0 = (now - 3 * 3_600_000) / 3_600_000 * 3_600_000;
    let dir = tempfile::tempdir().unwrap();
    let om = dir.path().join("data.om");
    std::fs::write(&om, openmetrics(t0)).unwrap();
    let tsdb = dir.path().join("tsdb");
    let out = std::process::Command::new(argus_testkit::tool("promtool"))
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&tsdb)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "backfill failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, "global: {}\n").unwrap();
    let prom = argus_testkit::spawn_peer(
        "prometheus",
        &argus_testkit::tool("prometheus"),
        &[
            &format!("--config.file={}", cfg.display()),
            &format!("--storage.tsdb.path={}", tsdb.display()),
            "--web.listen-address=127.0.0.1:{port}",
        ],
    );
    let prom_url = prom.url();
    // Ready once the blocks are loaded.
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("{prom_url}/-/ready")).send().await {
            if r.status() == 200 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let kv: Arc<dyn argus_model::Kv> = Arc::new(
        argus_store::EmbeddedKv::open_with(
            dir.path().join("argus.redb"),
            argus_store::Durability::Interval(Duration::from_secs(60)),
        )
        .unwrap(),
    );
    for i in 0..TICKS {
        let c = argus_app::tsdb::Chunk {
            ts: t0 + i * STEP_MS,
            scraped: tick_samples(i),
            generated: vec![],
        };
        argus_app::tsdb::write_chunk(kv.as_ref(), &c, std::time::Duration::from_secs(86400 * 30))
            .await
            .unwrap();
    }
    let cfg = argus_app::AppConfig::parse("global:\n  evaluation_interval: 1m\n", "t.yml").unwrap();
    let (svc, _) = argus_app::query::build_query(kv, &cfg, None).unwrap();
    let argus = Arc::new(svc);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let argus_url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(argus_query::serve(
        argus.clone(),
        listener,
        Arc::new(SystemClock),
    ));
    Sides {
        _prom: prom,
        prom_url,
        argus,
        argus_url,
        _dir: dir,
        t0,
        _server: server,
    }
}

async fn get(client: &reqwest::Client, base: &str, path_and_query: &str) -> (u16, Value) {
    let r = client
        .get(format!("{base}{path_and_query}"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, v)
}

/// Sorts result series by their labels (Prometheus does not sort instant vectors).
fn normalize(mut v: Value) -> Value {
    if let Some(res) = v
        .get_mut("data")
        .and_then(|d| d.get_mut("result"))
        .and_then(Value::as_array_mut)
    {
        res.sort_by_key(|s| s["metric"].to_string());
    }
    v
}

fn close(a: &Value, b: &Value, path: &str) -> Result<(), String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let kx: Vec<_> = x.keys().collect();
            let ky: Vec<_> = y.keys().collect();
            if kx != ky {
                return Err(format!("{path}: keys {kx:?} vs {ky:?}"));
            }
            for k in x.keys() {
                close(&x[k], &y[k], &format!("{path}.{k}"))?;
            }
            Ok(())
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Err(format!("{path}: {} vs {} elements", x.len(), y.len()));
            }
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                close(p, q, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (Value::String(p), Value::String(q)) if p != q => {
            match (p.parse::<f64>(), q.parse::<f64>()) {
                (Ok(f), Ok(g)) if (f - g).abs() <= 1e-9 * f.abs().max(g.abs()) => Ok(()),
                _ => Err(format!("{path}: {p:?} vs {q:?}")),
            }
        }
        (Value::Number(p), Value::Number(q)) => {
            let (f, g) = (p.as_f64().unwrap(), q.as_f64().unwrap());
            if (f - g).abs() <= 1e-9 * f.abs().max(g.abs()) {
                Ok(())
            } else {
                Err(format!("{path}: {f} vs {g}"))
            }
        }
        _ if a == b => Ok(()),
        _ => Err(format!("{path}: {a} vs {b}")),
    }
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

const QUERIES: &[&str] = &[
    "probe_success",
    "probe_success == 0",
    "sum(probe_success)",
    "avg by (instance) (probe_duration_seconds)",
    "rate(http_requests_total[5m])",
    "irate(http_requests_total[1m])",
    "increase(http_requests_total[10m])",
    "sum without (code) (rate(http_requests_total[5m]))",
    "histogram_quantile(0.9, sum by (le) (rate(req_bucket[5m])))",
    "histogram_quantile(0.5, rate(req_bucket[10m]))",
    "absent(nonexistent)",
    "absent_over_time(probe_success[5m])",
    "absent_over_time(nonexistent{job=\"x\"}[5m])",
    "topk(2, probe_duration_seconds)",
    "bottomk(1, probe_duration_seconds)",
    "probe_duration_seconds offset 10m",
    "max_over_time(probe_duration_seconds[10m:1m])",
    "max_over_time(rate(http_requests_total[5m])[30m:2m] offset 5m)",
    "label_replace(probe_success, \"host\", \"$1\", \"instance\", \"https://(.*)\")",
    "predict_linear(probe_duration_seconds[30m], 3600)",
    "count_over_time(late_series[10m])",
    "late_series",
    "1 + 2",
    "scalar(sum(probe_success))",
    "time()",
    "vector(1)",
    "count by (instance) (http_requests_total)",
    "quantile(0.5, probe_duration_seconds)",
    "stddev(probe_duration_seconds)",
    "deriv(probe_duration_seconds[10m])",
    "resets(http_requests_total[30m])",
    "changes(probe_success[30m])",
    "probe_success{instance=~\"https://[ab].*\"}",
    "sum by (job) (rate(http_requests_total{code=\"500\"}[5m])) / sum by (job) (rate(http_requests_total[5m]))",
    "probe_success and on (instance) probe_duration_seconds > 0.2",
    "avg_over_time(probe_success[1h])",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_answers_as_prometheus_does() {
    let s = setup().await;
    let c = reqwest::Client::new();
    let t = |ticks: i64| s.t0 + ticks * STEP_MS;
    let secs = |ms: i64| format!("{}.{:03}", ms / 1000, ms % 1000);
    let mut paths: Vec<String> = Vec::new();
    for q in QUERIES {
        for at in [t(40), t(250), t(TICKS - 1) + 7_000, t(TICKS + 10)] {
            paths.push(format!("/api/v1/query?query={}&time={}", enc(q), secs(at)));
        }
        if q.contains("1 + 2") || q.contains("time()") {
            continue;
        }
        for (start, end, step) in [
            (t(20), t(TICKS), "5m"),
            (t(100), t(200), "15s"),
            (t(0), t(TICKS + 30), "60"),
            (t(30) + 500, t(90), "37.5"),
        ] {
            paths.push(format!(
                "/api/v1/query_range?query={}&start={}&end={}&step={step}",
                enc(q),
                secs(start),
                secs(end)
            ));
        }
    }
    // `@`, strings and range selectors in instant queries.
    paths.push(format!(
        "/api/v1/query?query={}&time={}",
        enc(&format!("probe_duration_seconds @ {}", secs(t(100)))),
        secs(t(300))
    ));
    paths.push(format!(
        "/api/v1/query?query={}&time={}",
        enc("\"hello\""),
        secs(t(3))
    ));
    paths.push(format!(
        "/api/v1/query?query={}&time={}",
        enc("probe_success[1m]"),
        secs(t(50))
    ));
    paths.push(format!(
        "/api/v1/query?query={}&time={}",
        enc("http_requests_total{instance=\"https://a.example\"}[2m] offset 1m"),
        secs(t(210))
    ));
    // Series, labels, label values.
    let span = format!("start={}&end={}", secs(t(0)), secs(t(TICKS)));
    for p in [
        format!("/api/v1/series?match[]=probe_success&{span}"),
        format!(
            "/api/v1/series?match[]={}&match[]=late_series&{span}",
            enc("{instance=\"https://a.example\"}")
        ),
        format!(
            "/api/v1/series?match[]=late_series&start={}&end={}",
            secs(t(0)),
            secs(t(10))
        ),
        "/api/v1/series?match[]=probe_success".to_string(),
        format!("/api/v1/labels?{span}"),
        "/api/v1/labels".to_string(),
        format!("/api/v1/labels?match[]=req_bucket&{span}"),
        format!("/api/v1/label/instance/values?{span}"),
        "/api/v1/label/__name__/values".to_string(),
        format!(
            "/api/v1/label/le/values?match[]={}",
            enc("req_bucket{instance=\"https://b.example\"}")
        ),
        "/api/v1/label/nothere/values".to_string(),
        format!("/api/v1/query_exemplars?query=probe_success&{span}"),
    ] {
        paths.push(p);
    }
    let mut failures = Vec::new();
    let mut with_data = 0;
    for p in &paths {
        let (sa, a) = get(&c, &s.argus_url, p).await;
        let (sp, b) = get(&c, &s.prom_url, p).await;
        let d = &b["data"];
        if d["result"].as_array().is_some_and(|r| !r.is_empty())
            || d["resultType"] == "scalar"
            || d.as_array().is_some_and(|r| !r.is_empty())
        {
            with_data += 1;
        }
        if sa != sp {
            failures.push(format!("{p}: status {sa} vs Prometheus {sp}: {a} / {b}"));
            continue;
        }
        if let Err(e) = close(&normalize(a.clone()), &normalize(b.clone()), "") {
            failures.push(format!("{p}: {e}\n  argus: {a}\n  prom:  {b}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} requests differ:\n{}",
        failures.len(),
        paths.len(),
        failures.join("\n")
    );
    // Not vacuous: most answers carry data.
    assert!(
        with_data * 10 > paths.len() * 8,
        "{with_data} of {} answers have data",
        paths.len()
    );
    eprintln!("{} requests, {with_data} with data, all equal", paths.len());
    // The data is there on both sides.
    let (_, v) = get(
        &c,
        &s.prom_url,
        &format!(
            "/api/v1/query?query=count(probe_success)&time={}",
            secs(t(10))
        ),
    )
    .await;
    assert_eq!(v["data"]["result"][0]["value"][1], "3", "{v}");
    let _ = &s.argus;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_match_prometheus() {
    let s = setup().await;
    let c = reqwest::Client::new();
    let t = s.t0 / 1000 + 600;
    // (path, compare the message too)
    let cases: Vec<(String, bool)> = vec![
        (
            "/api/v1/query?query=probe_success&time=abc".to_string(),
            true,
        ),
        (
            format!("/api/v1/query?query=probe_success&time={t}&timeout=abc"),
            true,
        ),
        (
            format!("/api/v1/query?query={}&time={t}", enc("sum(")),
            false,
        ),
        (format!("/api/v1/query?query=&time={t}"), true),
        (
            format!(
                "/api/v1/query?query={}&time={t}&timeout=0.000000001",
                enc("rate(http_requests_total[1h])")
            ),
            // Prometheus names the phase the deadline passed in, and with a 1 ns
            // timeout that depends on which of Go's ready `select` cases runs first
            // ("query queue" or a later phase): the phase is compared below, not the
            // whole message.
            false,
        ),
        (
            format!(
                "/api/v1/query?query={}&time={t}",
                enc("label_replace(probe_success, \"instance\", \"x\", \"\", \"\")")
            ),
            true,
        ),
        (
            format!(
                "/api/v1/query_range?query=probe_success&start={t}&end={}&step=0",
                t + 60
            ),
            true,
        ),
        (
            format!(
                "/api/v1/query_range?query=probe_success&start={t}&end={}&step=-1",
                t + 60
            ),
            true,
        ),
        (
            format!(
                "/api/v1/query_range?query=probe_success&start={t}&end={}&step=abc",
                t + 60
            ),
            true,
        ),
        (
            format!(
                "/api/v1/query_range?query=probe_success&start={}&end={t}&step=15",
                t + 60
            ),
            true,
        ),
        (
            format!("/api/v1/query_range?query=probe_success&start=x&end={t}&step=15"),
            true,
        ),
        (
            format!("/api/v1/query_range?query=probe_success&start={t}&end=y&step=15"),
            true,
        ),
        (
            format!(
                "/api/v1/query_range?query=probe_success&start={t}&end={}&step=1",
                t + 11001
            ),
            true,
        ),
        (
            format!(
                "/api/v1/query_range?query=probe_success&start={t}&end={}&step=1",
                t + 11000
            ),
            true,
        ),
        (
            format!(
                "/api/v1/query_range?query={}&start={t}&end={}&step=15",
                enc("probe_success[5m]"),
                t + 60
            ),
            true,
        ),
        (
            format!(
                "/api/v1/query_range?query={}&start={t}&end={}&step=15",
                enc("\"x\""),
                t + 60
            ),
            true,
        ),
        (
            format!(
                "/api/v1/query_range?query={}&start={t}&end={}&step=15",
                enc("sum("),
                t + 60
            ),
            false,
        ),
        ("/api/v1/series".to_string(), true),
        (
            format!("/api/v1/series?match[]={}", enc("{__name__=~\".*\"}")),
            true,
        ),
        (
            "/api/v1/series?match[]=probe_success&start=abc".to_string(),
            true,
        ),
        ("/api/v1/label/1abc/values".to_string(), true),
        ("/api/v1/labels?start=x".to_string(), true),
        ("/api/v1/rules?type=foo".to_string(), true),
        ("/api/v1/metadata?limit=x".to_string(), true),
        (
            "/api/v1/query_exemplars?query=up&start=10&end=5".to_string(),
            true,
        ),
        ("/api/v1/nothing".to_string(), false),
    ];
    let mut failures = Vec::new();
    for (p, msg) in &cases {
        let (sa, a) = get(&c, &s.argus_url, p).await;
        let (sp, b) = get(&c, &s.prom_url, p).await;
        let same = sa == sp
            && a.get("errorType") == b.get("errorType")
            && a.get("status") == b.get("status")
            && (!msg || a.get("error") == b.get("error"));
        let timeout_prefix = |v: &serde_json::Value| {
            v.get("error")
                .and_then(|e| e.as_str())
                .is_some_and(|e| e.starts_with("query timed out in "))
        };
        let phases_ok = b.get("errorType").and_then(|t| t.as_str()) != Some("timeout")
            || (timeout_prefix(&a) && timeout_prefix(&b));
        if !same || !phases_ok {
            failures.push(format!("{p}: {sa} {a}\n   Prometheus: {sp} {b}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `promtool query` prints the same against both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_query_prints_the_same() {
    let s = setup().await;
    let t = |ticks: i64| (s.t0 + ticks * STEP_MS) / 1000;
    let runs: Vec<Vec<String>> = vec![
        vec![
            "instant".into(),
            "--time".into(),
            t(100).to_string(),
            "{URL}".into(),
            "sum by (instance) (rate(http_requests_total[5m]))".into(),
        ],
        vec![
            "instant".into(),
            "--time".into(),
            t(50).to_string(),
            "{URL}".into(),
            "probe_success".into(),
        ],
        vec![
            "range".into(),
            "--start".into(),
            t(10).to_string(),
            "--end".into(),
            t(60).to_string(),
            "--step".into(),
            "1m".into(),
            "{URL}".into(),
            "probe_duration_seconds".into(),
        ],
        vec![
            "series".into(),
            "--match".into(),
            "probe_success".into(),
            "--start".into(),
            t(0).to_string(),
            "--end".into(),
            t(TICKS).to_string(),
            "{URL}".into(),
        ],
        vec![
            "labels".into(),
            "--start".into(),
            t(0).to_string(),
            "--end".into(),
            t(TICKS).to_string(),
            "{URL}".into(),
            "instance".into(),
        ],
    ];
    let promtool = argus_testkit::tool("promtool");
    for args in runs {
        let run = |url: &str| {
            let a: Vec<String> = args.iter().map(|x| x.replace("{URL}", url)).collect();
            let out = std::process::Command::new(&promtool)
                .arg("query")
                .args(&a)
                .output()
                .unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).to_string(),
                String::from_utf8_lossy(&out.stderr).to_string(),
            )
        };
        let ours = run(&s.argus_url);
        let theirs = run(&s.prom_url);
        assert_eq!(ours.0, Some(0), "{args:?}: {ours:?}");
        assert!(
            !theirs.1.trim().is_empty(),
            "{args:?}: empty output from Prometheus"
        );
        assert_eq!(ours, theirs, "{args:?}");
    }
}
