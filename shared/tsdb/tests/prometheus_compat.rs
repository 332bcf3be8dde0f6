//! Side by side with the real Prometheus 2.42: one generated OpenMetrics file (10 probe
//! targets, 2 days at 1 m) backfilled into Prometheus with `promtool tsdb
//! create-blocks-from openmetrics` and into Argus with `import_openmetrics`; every query
//! of `tests/query-corpus/probes.txt` is answered by Prometheus's HTTP API and by
//! argus-promql over `load_for(...)`: same series (sorted), floats within 1e-9 relative,
//! or an error on both sides.

use argus_promql::{Engine, Value};
use argus_tsdb::synth::Spec;
use std::collections::BTreeMap;
use std::time::Duration;

const START_S: i64 = 1_699_999_200;
const H: i64 = 3600;

type Metric = BTreeMap<String, String>;

#[derive(Debug, Clone)]
enum Res {
    Vector(Vec<(Metric, f64)>),
    Matrix(Vec<(Metric, Vec<(i64, f64)>)>),
    Scalar(f64),
    Str(String),
    /// The message, shown (Debug) when a query differs.
    Error(#[allow(dead_code)] String),
}

fn same_f(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

fn same(a: &Res, b: &Res) -> bool {
    match (a, b) {
        (Res::Error(_), Res::Error(_)) => true,
        (Res::Scalar(x), Res::Scalar(y)) => same_f(*x, *y),
        (Res::Str(x), Res::Str(y)) => x == y,
        (Res::Vector(x), Res::Vector(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.0 == q.0 && same_f(p.1, q.1))
        }
        (Res::Matrix(x), Res::Matrix(y)) => {
            x.len() == y.len()
                && x.iter().zip(y).all(|(p, q)| {
                    p.0 == q.0
                        && p.1.len() == q.1.len()
                        && p.1
                            .iter()
                            .zip(&q.1)
                            .all(|(s, t)| s.0 == t.0 && same_f(s.1, t.1))
                })
        }
        _ => false,
    }
}

fn pf(v: &serde_json::Value) -> f64 {
    match v.as_str().unwrap() {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        s => s.parse().unwrap(),
    }
}

fn pt(v: &serde_json::Value) -> i64 {
    (v.as_f64().unwrap() * 1000.0).round() as i64
}

fn metric(v: &serde_json::Value) -> Metric {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

fn from_prometheus(j: &serde_json::Value) -> Res {
    if j["status"] != "success" {
        return Res::Error(j["error"].as_str().unwrap_or("?").to_string());
    }
    let r = &j["data"]["result"];
    match j["data"]["resultType"].as_str().unwrap() {
        "vector" => {
            let mut v: Vec<(Metric, f64)> = r
                .as_array()
                .unwrap()
                .iter()
                .map(|s| (metric(&s["metric"]), pf(&s["value"][1])))
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            Res::Vector(v)
        }
        "matrix" => {
            let mut v: Vec<(Metric, Vec<(i64, f64)>)> = r
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    let vals = s["values"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| (pt(&p[0]), pf(&p[1])))
                        .collect();
                    (metric(&s["metric"]), vals)
                })
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            Res::Matrix(v)
        }
        "scalar" => Res::Scalar(pf(&r[1])),
        "string" => Res::Str(r[1].as_str().unwrap().to_string()),
        other => panic!("result type {other}"),
    }
}

fn m_of(l: &argus_model::Labels) -> Metric {
    l.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn from_argus(v: Result<Value, String>) -> Res {
    match v {
        Err(e) => Res::Error(e),
        Ok(Value::Scalar(x)) => Res::Scalar(x),
        Ok(Value::String(s)) => Res::Str(s),
        Ok(Value::Vector(s)) => {
            let mut v: Vec<(Metric, f64)> = s.iter().map(|x| (m_of(&x.labels), x.value)).collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            Res::Vector(v)
        }
        Ok(Value::Matrix(s)) => {
            let mut v: Vec<(Metric, Vec<(i64, f64)>)> = s
                .iter()
                .map(|x| (m_of(&x.labels), x.samples.clone()))
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            Res::Matrix(v)
        }
    }
}

/// A query of the corpus: expression, then instant time or (start, end, step), ms.
#[derive(Debug, Clone)]
pub enum Q {
    Instant(String, i64),
    Range(String, i64, i64, i64),
}

/// Expands the corpus file into queries for data starting at `start_s`.
pub fn corpus(text: &str, start_s: i64) -> Vec<(Q, bool)> {
    let t = |off: i64| (start_s + off) * 1000;
    let fill = |e: &str| -> String {
        let mut out = e.to_string();
        while let Some(i) = out.find("{t+") {
            let j = i + out[i..].find('}').unwrap();
            let n: i64 = out[i + 3..j].parse().unwrap();
            out.replace_range(i..=j, &(start_s + n).to_string());
        }
        out
    };
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (kind, rest) = line.split_once(' ').unwrap();
        match kind {
            "*" => {
                let e = fill(rest);
                out.push((Q::Instant(e.clone(), t(25 * H + 7)), false));
                out.push((Q::Range(e.clone(), t(20 * H), t(21 * H), 15_000), false));
                out.push((Q::Range(e.clone(), t(6 * H), t(30 * H), 300_000), false));
                out.push((Q::Range(e, t(0), t(47 * H), 3_600_000), false));
            }
            "i" => {
                let (at, e) = rest.split_once(' ').unwrap();
                out.push((Q::Instant(fill(e), t(at.parse().unwrap())), false));
            }
            "r" | "E" => {
                let mut p = rest.splitn(4, ' ');
                let s: i64 = p.next().unwrap().parse().unwrap();
                let en: i64 = p.next().unwrap().parse().unwrap();
                let st: i64 = p.next().unwrap().parse().unwrap();
                let q = Q::Range(fill(p.next().unwrap()), t(s), t(en), st * 1000);
                out.push((q, kind == "E"));
            }
            "e" => out.push((Q::Instant(fill(rest), t(25 * H)), true)),
            k => panic!("corpus line kind {k:?}: {line}"),
        }
    }
    out
}

async fn argus(kv: &dyn argus_model::Kv, q: &Q) -> Res {
    let engine = Engine::new();
    let (e, s, en) = match q {
        Q::Instant(e, t) => (e, *t, *t),
        Q::Range(e, s, en, _) => (e, *s, *en),
    };
    let expr = match argus_promql::parse(e) {
        Ok(x) => x,
        Err(err) => return Res::Error(err.to_string()),
    };
    let st =
        match argus_tsdb::load_for(kv, &expr, s, en.max(s), engine.lookback_ms, 50_000_000).await {
            Ok(st) => st,
            Err(err) => return Res::Error(err.to_string()),
        };
    match q {
        Q::Instant(_, t) => from_argus(engine.instant(&expr, *t, &st).map_err(|e| e.to_string())),
        Q::Range(_, s, en, step) => from_argus(
            engine
                .range(&expr, *s, *en, *step, &st)
                .map(Value::Matrix)
                .map_err(|e| e.to_string()),
        ),
    }
}

async fn prometheus(http: &reqwest::Client, base: &str, q: &Q) -> Res {
    let secs = |ms: i64| format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000));
    let url = match q {
        Q::Instant(e, t) => url::Url::parse_with_params(
            &format!("{base}/api/v1/query"),
            &[("query", e.as_str()), ("time", &secs(*t))],
        ),
        Q::Range(e, s, en, st) => url::Url::parse_with_params(
            &format!("{base}/api/v1/query_range"),
            &[
                ("query", e.as_str()),
                ("start", &secs(*s)),
                ("end", &secs(*en)),
                ("step", &secs(*st)),
            ],
        ),
    }
    .unwrap();
    let req = http.get(url);
    let body: serde_json::Value = req.send().await.unwrap().json().await.unwrap();
    from_prometheus(&body)
}

/// Writes the data, backfills Prometheus, starts it; returns the peer and the file.
pub async fn start_prometheus(
    spec: Spec,
    dir: &std::path::Path,
) -> (argus_testkit::Peer, std::path::PathBuf) {
    let file = dir.join("data.om");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        spec.write(&mut w).unwrap();
    }
    let blocks = dir.join("prom");
    let out = std::process::Command::new(argus_testkit::tool("promtool"))
        .args(["tsdb", "create-blocks-from", "openmetrics", "-q"])
        .arg(&file)
        .arg(&blocks)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  evaluation_interval: 1m\n").unwrap();
    let peer = argus_testkit::spawn_peer(
        "prometheus",
        &argus_testkit::tool("prometheus"),
        &[
            &format!("--config.file={}", cfg.display()),
            &format!("--storage.tsdb.path={}", blocks.display()),
            "--storage.tsdb.retention.time=100y",
            "--web.listen-address=127.0.0.1:{port}",
        ],
    );
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(r) = http.get(format!("{}/-/ready", peer.url())).send().await {
            if r.status().is_success() {
                return (peer, file);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("prometheus not ready: {}", peer.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_answers_like_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec {
        targets: 10,
        start_s: START_S,
        duration_s: 2 * 86_400,
        step_s: 60,
    };
    let (prom, file) = start_prometheus(spec, dir.path()).await;
    let kv = argus_store::EmbeddedKv::open_temp().unwrap();
    let r = argus_tsdb::import_openmetrics(
        &kv,
        std::io::BufReader::new(std::fs::File::open(&file).unwrap()),
        std::time::Duration::from_secs(100 * 365 * 86_400),
        &mut |_: &str| {},
    )
    .await
    .unwrap();
    assert_eq!(r.samples, spec.samples());
    let text =
        std::fs::read_to_string(argus_testkit::repo_root().join("tests/query-corpus/probes.txt"))
            .unwrap();
    let queries = corpus(&text, START_S);
    assert!(queries.len() >= 200, "{}", queries.len());
    let http = reqwest::Client::new();
    let mut bad = Vec::new();
    let mut errors = 0;
    for (q, want_err) in &queries {
        let p = prometheus(&http, &prom.url(), q).await;
        let a = argus(&kv, q).await;
        if matches!(p, Res::Error(_)) {
            errors += 1;
        }
        if *want_err != matches!(p, Res::Error(_)) {
            bad.push(format!(
                "{q:?}: the corpus expects error={want_err}, Prometheus said {p:?}"
            ));
        } else if !same(&p, &a) {
            let show = |r: &Res| {
                let s = format!("{r:?}");
                s.chars().take(600).collect::<String>()
            };
            bad.push(format!(
                "{q:?}\n  prometheus: {}\n  argus:      {}",
                show(&p),
                show(&a)
            ));
        }
    }
    assert!(errors >= 10, "{errors} error cases");
    assert!(
        bad.is_empty(),
        "{} of {} queries differ:\n{}",
        bad.len(),
        queries.len(),
        bad.join("\n")
    );
}
