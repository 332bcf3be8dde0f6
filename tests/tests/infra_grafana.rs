//! The Grafana files in infra/grafana: the dashboard's schema version and datasource
//! references, both data source variants, and every panel's queries sent over HTTP
//! (`POST /api/v1/query` and `/api/v1/query_range`, as the data source's
//! `httpMethod: POST` makes Grafana do) to the query service serving the store an
//! `argus dev` wrote while probing local targets (one up, one down, one over TLS) with
//! a pushed job and a firing alert. Variables are resolved as Grafana does
//! (`label_values` through `/api/v1/label/<name>/values?match[]=`) and substituted as
//! Grafana interpolates them: "All" as the `allValue`, picked values regex-escaped
//! and joined as `(a|b)`, `$__interval`, `$__rate_interval` and `$__range` from the
//! dashboard's 24 h range and the data source's `timeInterval`.

mod common;

use argus_app::dev::DevOptions;
use argus_app::AppConfig;
use common::Site;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

const SCHEMA_VERSION: u64 = 39;

fn grafana_dir() -> std::path::PathBuf {
    argus_testkit::repo_root().join("infra/grafana")
}

fn dashboard() -> Value {
    let text = std::fs::read_to_string(grafana_dir().join("dashboards/argus.json")).unwrap();
    serde_json::from_str(&text).expect("dashboard is JSON")
}

/// Every `datasource` object anywhere in the dashboard.
fn datasources<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "datasource" {
                    out.push(x);
                }
                datasources(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| datasources(x, out)),
        _ => {}
    }
}

#[test]
fn dashboard_schema_and_datasources() {
    let d = dashboard();
    assert_eq!(d["schemaVersion"].as_u64(), Some(SCHEMA_VERSION));
    assert!(d["uid"]
        .as_str()
        .is_some_and(|u| !u.is_empty() && u.len() <= 40));
    let mut ds = Vec::new();
    datasources(&d, &mut ds);
    let panels = d["panels"].as_array().unwrap();
    let vars = d["templating"]["list"].as_array().unwrap();
    // Every panel, every target and every variable names the provisioned data source.
    assert!(
        ds.len() >= panels.len() * 2 + vars.len(),
        "{} references",
        ds.len()
    );
    for r in ds {
        assert_eq!(
            r,
            &serde_json::json!({"type": "prometheus", "uid": "argus"})
        );
    }
    let names: Vec<&str> = vars.iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["job", "instance", "team"]);
    let mut ids = std::collections::BTreeSet::new();
    for p in panels {
        assert!(ids.insert(p["id"].as_u64().unwrap()), "duplicate panel id");
        assert!(!p["targets"].as_array().unwrap().is_empty());
    }
    // Both data source variants provision uid `argus` at the query function URL; the
    // bearer token comes from the environment into secureJsonData, never literally.
    for (variant, must) in [
        ("sigv4", vec!["sigV4Auth: true", "sigV4Service: lambda"]),
        (
            "bearer",
            vec![
                "secureJsonData:",
                "httpHeaderValue1: Bearer ${ARGUS_API_TOKEN}",
            ],
        ),
    ] {
        let p = grafana_dir().join(format!("provisioning/datasources/{variant}/argus.yaml"));
        let text = std::fs::read_to_string(&p).unwrap();
        let y: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        let s = &y["datasources"][0];
        assert_eq!(s["uid"], "argus", "{variant}");
        assert_eq!(s["type"], "prometheus", "{variant}");
        assert_eq!(s["url"], "${ARGUS_QUERY_URL}", "{variant}");
        for m in must {
            assert!(text.contains(m), "{variant}: {m}");
        }
    }
    let prov =
        std::fs::read_to_string(grafana_dir().join("provisioning/dashboards/argus.yaml")).unwrap();
    assert!(prov.contains("type: file"));
}

/// `label_values(metric{...}, label)` → (selector, label).
fn label_values(q: &str) -> (String, String) {
    let inner = q
        .strip_prefix("label_values(")
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or_else(|| panic!("variable query {q}"));
    let (sel, label) = inner.rsplit_once(',').unwrap();
    (sel.trim().to_string(), label.trim().to_string())
}

/// Grafana's `prometheusSpecialRegexEscape`: a value of a multi-value or "All"
/// variable goes into a `=~"..."` string, so regex metacharacters get `\\`.
fn regex_escape(v: &str) -> String {
    let mut out = String::new();
    for c in v.chars() {
        if "\\^$*+?.()|{}[]".contains(c) {
            out.push_str("\\\\");
        }
        out.push(c);
    }
    out
}

/// Grafana's time variables for a dashboard range of `range_s` seconds shown at
/// `max_points` points, with the data source's `timeInterval` (scrape interval).
struct TimeVars {
    range_s: i64,
    /// `$__interval` (also the range queries' step), seconds.
    interval_s: i64,
    /// `$__rate_interval`: max(`$__interval` + scrape interval, 4 × scrape interval).
    rate_interval_s: i64,
}

impl TimeVars {
    fn new(range_s: i64, max_points: i64, scrape_s: i64) -> TimeVars {
        // Grafana's rangeutil.roundInterval for the ranges used here (a 24 h range
        // over 1,000 points is 86.4 s, which Grafana rounds to 1m30s), then
        // never below the data source's minimum interval.
        let raw_ms = range_s * 1000 / max_points;
        // (upper bound of the raw interval, rounded interval), both in ms.
        const ROUND: [(i64, i64); 17] = [
            (15, 10),
            (35, 20),
            (75, 50),
            (150, 100),
            (350, 200),
            (750, 500),
            (1500, 1000),
            (3500, 2000),
            (7500, 5000),
            (12500, 10000),
            (17500, 15000),
            (25000, 20000),
            (45000, 30000),
            (75000, 60000),
            (105000, 90000),
            (150000, 120000),
            (270000, 180000),
        ];
        let rounded_ms = ROUND
            .iter()
            .find(|(max, _)| raw_ms <= *max)
            .map_or(300000, |(_, r)| *r);
        let interval_s = (rounded_ms / 1000).max(scrape_s);
        TimeVars {
            range_s,
            interval_s,
            rate_interval_s: (interval_s + scrape_s).max(4 * scrape_s),
        }
    }
}

/// A dashboard expression with its variables as Grafana interpolates them: each
/// template variable's current selection (`None`: "All", i.e. its `allValue`), and
/// the time variables.
fn substitute(
    expr: &str,
    vars: &[Value],
    sel: &std::collections::BTreeMap<String, Vec<String>>,
    tv: &TimeVars,
) -> String {
    let mut out = expr.to_string();
    for v in vars {
        let name = v["name"].as_str().unwrap();
        let value = match sel.get(name).map(Vec::as_slice) {
            None | Some([]) => v["allValue"].as_str().unwrap().to_string(),
            Some([one]) => regex_escape(one),
            Some(many) => format!(
                "({})",
                many.iter()
                    .map(|x| regex_escape(x))
                    .collect::<Vec<_>>()
                    .join("|")
            ),
        };
        out = out
            .replace(&format!("${{{name}}}"), &value)
            .replace(&format!("${name}"), &value);
    }
    // Longest names first: `$__rate_interval` before `$__interval`.
    out.replace("$__rate_interval", &format!("{}s", tv.rate_interval_s))
        .replace("$__interval", &format!("{}s", tv.interval_s))
        .replace("$__range", &format!("{}s", tv.range_s))
}

/// The data source as Grafana's Prometheus plugin calls it (`httpMethod: POST`).
struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    /// A POST form (queries), or a GET with the parameters in the URL (label values:
    /// Prometheus serves `/api/v1/label/<name>/values` on GET only).
    async fn call(&self, path: &str, form: &[(&str, String)]) -> Value {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        let req = if path.starts_with("/api/v1/label/") {
            self.client.get(format!("{}{path}?{body}", self.base))
        } else {
            self.client
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
        };
        let r = req.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{path} {form:?}: {status} {text:?}: {e}"));
        assert_eq!(status, 200, "{path} {form:?}: {v}");
        assert_eq!(v["status"], "success", "{path} {form:?}: {v}");
        v["data"].clone()
    }

    /// An instant query's vector (a panel with `instant: true`).
    async fn instant(&self, expr: &str, t: i64) -> Vec<Value> {
        let d = self
            .call(
                "/api/v1/query",
                &[("query", expr.into()), ("time", t.to_string())],
            )
            .await;
        assert_eq!(d["resultType"], "vector", "{expr}: {d}");
        d["result"].as_array().unwrap().clone()
    }

    /// A range query over the dashboard's range, start and end aligned to the step
    /// as Grafana's `alignRange` does.
    async fn range(&self, expr: &str, t: i64, tv: &TimeVars) -> Vec<Value> {
        let step = tv.interval_s;
        let end = t.div_euclid(step) * step;
        let start = (t - tv.range_s).div_euclid(step) * step;
        let d = self
            .call(
                "/api/v1/query_range",
                &[
                    ("query", expr.into()),
                    ("start", start.to_string()),
                    ("end", end.to_string()),
                    ("step", step.to_string()),
                ],
            )
            .await;
        assert_eq!(d["resultType"], "matrix", "{expr}: {d}");
        d["result"].as_array().unwrap().clone()
    }

    /// `label_values(selector, label)` as Grafana resolves it:
    /// `/api/v1/label/<label>/values?match[]=<selector>` over the dashboard's range.
    async fn label_values(&self, sel: &str, label: &str, t: i64, tv: &TimeVars) -> Vec<String> {
        let d = self
            .call(
                &format!("/api/v1/label/{label}/values"),
                &[
                    ("match[]", sel.into()),
                    ("start", (t - tv.range_s).to_string()),
                    ("end", t.to_string()),
                ],
            )
            .await;
        d.as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }
}

fn value_of(s: &Value) -> f64 {
    s["value"][1].as_str().unwrap().parse().unwrap()
}

async fn tls_site() -> String {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(s).await else {
                    return;
                };
                let svc = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from_static(b"ok")),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    format!("https://{addr}/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_query_returns_data_from_argus_dev() {
    let up = Site::start(200).await;
    let down = Site::start(503).await;
    let tls = tls_site().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = format!("127.0.0.1:{}", argus_testkit::free_port());
    let free = || format!("127.0.0.1:{}", argus_testkit::free_port());
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: site\n    rules:\n      - alert: SiteDown\n        expr: probe_success == 0\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("blackbox.yml"),
        "modules:\n  https_selfsigned:\n    prober: http\n    http:\n      tls_config:\n        insecure_skip_verify: true\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("argus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             probe:\n  modules_file: blackbox.yml\n\
             targets:\n  - url: {}\n    labels: {{team: web}}\n  - url: {}\n  - url: {tls}\n    module: https_selfsigned\n\
             rule_files: [rules.yml]\n\
             dev:\n  data_dir: data\n  notifications_file: data/n.jsonl\n  gateway_listen: {gw}\n  \
             blackbox_listen: {}\n  alertmanager_listen: {}\n  query_listen: {}\n  sync_interval: 0s\n",
            up.url,
            down.url,
            free(),
            free(),
            free()
        ),
    )
    .unwrap();
    let cfg = AppConfig::load(&dir.path().join("argus.yml")).unwrap();
    let cfg2 = cfg.clone();
    let run = tokio::spawn(argus_app::dev::run(
        cfg,
        DevOptions {
            run_for: Some(Duration::from_secs(6)),
        },
    ));
    assert!(argus_testkit::wait_for_port(
        gw.parse().unwrap(),
        Duration::from_secs(10)
    ));
    let put = reqwest::Client::new()
        .put(format!(
            "http://{gw}/metrics/job/nightly_backup/instance/db1"
        ))
        .body("# TYPE backup_last_success gauge\nbackup_last_success 1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    run.await.unwrap().unwrap();

    // The store argus dev wrote, served by the query service over a real listener.
    let path = dir.path().join("data/argus.redb");
    let mut kv = None;
    for _ in 0..100 {
        if let Ok(k) = argus_store::EmbeddedKv::open(&path) {
            kv = Some(k);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let kv: Arc<dyn argus_model::Kv> = Arc::new(kv.expect("store reopens"));
    let mut w = argus_app::tsdb::Window::new(24 * 3_600_000 + 5 * 60_000);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    w.catch_up(kv.as_ref(), now + 1).await.unwrap();
    let last_ms = w.last_ts().expect("argus dev stored sample chunks");
    let (svc, _) = argus_app::query::build_query(kv.clone(), &cfg2, None).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(argus_http::serve(
        listener,
        Arc::new(svc),
        Arc::new(argus_model::SystemClock),
        argus_http::Limits::default(),
    ));
    let api = Api {
        client: reqwest::Client::new(),
        base: format!("http://{addr}"),
    };

    // The dashboard's 24 h range on a 1,000-point panel, with the data source's
    // `timeInterval: 1m`; "now" is the first step boundary after the last sample
    // (Grafana aligns a range query's end down to the step), which stays within the
    // 5-minute lookback of the probe's samples.
    let d = dashboard();
    let range = &d["time"];
    assert_eq!(
        (range["from"].as_str(), range["to"].as_str()),
        (Some("now-24h"), Some("now"))
    );
    let tv = TimeVars::new(86_400, 1000, 60);
    assert_eq!((tv.interval_s, tv.rate_interval_s), (90, 240));
    let t = (last_ms / 1000).div_euclid(tv.interval_s) * tv.interval_s + tv.interval_s;
    assert!(t * 1000 - last_ms < 5 * 60_000);

    let vars = d["templating"]["list"].as_array().unwrap().clone();
    // Each variable's values, resolved in order with the earlier ones at "All".
    let mut options = std::collections::BTreeMap::new();
    let all = std::collections::BTreeMap::new();
    for v in &vars {
        let (sel, label) = label_values(v["query"]["query"].as_str().unwrap());
        let sel = substitute(&sel, &vars, &all, &tv);
        let values = api.label_values(&sel, &label, t, &tv).await;
        assert!(!values.is_empty(), "variable {label}: no values from {sel}");
        options.insert(v["name"].as_str().unwrap().to_string(), values);
    }
    assert_eq!(options["job"], ["probe"]);
    assert_eq!(options["team"], ["web"]);
    assert_eq!(options["instance"].len(), 3, "{options:?}");
    // Every panel has data with "All" everywhere, and with one instance picked (the
    // TLS site, whose URL has regex metacharacters); the figures below also pick
    // job, team and two instances.
    let one: std::collections::BTreeMap<String, Vec<String>> =
        [("instance".to_string(), vec![tls.clone()])].into();
    let picked: std::collections::BTreeMap<String, Vec<String>> = [
        ("job".to_string(), vec!["probe".to_string()]),
        ("team".to_string(), vec!["web".to_string()]),
        (
            "instance".to_string(),
            vec![up.url.clone(), down.url.clone()],
        ),
    ]
    .into();
    let mut checked = 0;
    for sel in [&all, &one] {
        for p in d["panels"].as_array().unwrap() {
            for tq in p["targets"].as_array().unwrap() {
                let expr = substitute(tq["expr"].as_str().unwrap(), &vars, sel, &tv);
                assert!(!expr.contains('$'), "{expr}: a variable left");
                let instant = tq["instant"].as_bool() == Some(true);
                let got = if instant {
                    api.instant(&expr, t).await
                } else {
                    api.range(&expr, t, &tv).await
                };
                assert!(
                    !got.is_empty(),
                    "panel {:?} ({sel:?}): {expr} returned no data",
                    p["title"]
                );
                if !instant {
                    assert!(
                        got.iter()
                            .all(|s| !s["values"].as_array().unwrap().is_empty()),
                        "panel {:?}: {expr}: a series without points",
                        p["title"]
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 22, "{checked}");
    // The figures behind the panels are the setup's: 2 up, 1 down, SiteDown firing,
    // a certificate with days left, the pushed job; one picked instance is one series.
    let sub = |e: &str, sel| substitute(e, &vars, sel, &tv);
    let up_expr = r#"sum(probe_success{job=~"$job", instance=~"$instance", team=~"$team"})"#;
    assert_eq!(value_of(&api.instant(&sub(up_expr, &all), t).await[0]), 2.0);
    assert_eq!(value_of(&api.instant(&sub(up_expr, &one), t).await[0]), 1.0);
    assert_eq!(
        value_of(&api.instant(&sub(up_expr, &picked), t).await[0]),
        1.0
    );
    let down_expr = r#"count(probe_success{job=~"$job", instance=~"$instance", team=~"$team"} == 0) or vector(0)"#;
    assert_eq!(
        value_of(&api.instant(&sub(down_expr, &all), t).await[0]),
        1.0
    );
    assert_eq!(
        value_of(&api.instant(&sub(down_expr, &picked), t).await[0]),
        0.0,
        "the down site has no team"
    );
    let state = r#"probe_success{job=~"$job", instance=~"$instance", team=~"$team"}"#;
    assert_eq!(api.instant(&sub(state, &one), t).await.len(), 1);
    assert_eq!(
        api.instant(&sub(state, &picked), t).await.len(),
        1,
        "team=web has one"
    );
    let firing = api
        .instant(r#"count(ALERTS{alertstate="firing"})"#, t)
        .await;
    assert_eq!(value_of(&firing[0]), 1.0);
    let days = api
        .instant(r#"(probe_ssl_earliest_cert_expiry - time()) / 86400"#, t)
        .await;
    assert!(days.len() == 1 && value_of(&days[0]) > 1000.0, "{days:?}");
    let pushed = api
        .instant(
            r#"time() - max by (job, instance) (push_time_seconds{job!="probe"})"#,
            t,
        )
        .await;
    assert_eq!(pushed.len(), 1);
    assert_eq!(pushed[0]["metric"]["job"], "nightly_backup");
    server.abort();
}
