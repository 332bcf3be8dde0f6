//! The Grafana files in infra/grafana: the dashboard's schema version and datasource
//! references, both data source variants, and every panel's query evaluated with
//! argus-promql over the samples an `argus dev` stored while probing local targets
//! (one up, one down, one over TLS) with a pushed job and a firing alert. Template
//! variables are substituted as Grafana does for "All" (their `allValue`, `.*`).

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

fn substitute(expr: &str, vars: &[Value]) -> String {
    let mut out = expr.to_string();
    for v in vars {
        let name = v["name"].as_str().unwrap();
        let all = v["allValue"].as_str().unwrap();
        out = out
            .replace(&format!("${{{name}}}"), all)
            .replace(&format!("${name}"), all);
    }
    out.replace("$__rate_interval", "1m")
        .replace("$__interval", "15s")
        .replace("$__range", "24h")
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

    let path = dir.path().join("data/argus.redb");
    let mut kv = None;
    for _ in 0..100 {
        if let Ok(k) = argus_store::EmbeddedKv::open(&path) {
            kv = Some(k);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let kv = kv.expect("store reopens");
    let mut w = argus_app::tsdb::Window::new(24 * 3_600_000 + 5 * 60_000);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    w.catch_up(&kv, now + 1).await.unwrap();
    let ts = w.last_ts().expect("argus dev stored sample chunks");
    let engine = argus_promql::Engine::new();
    let eval = |expr: &str| {
        let parsed = argus_promql::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        match engine.instant(&parsed, ts, &w.storage) {
            Ok(argus_promql::Value::Vector(v)) => v,
            Ok(argus_promql::Value::Scalar(_)) => panic!("{expr}: a scalar, not a vector"),
            Ok(other) => panic!("{expr}: unexpected {other:?}"),
            Err(e) => panic!("{expr}: {e}"),
        }
    };

    let d = dashboard();
    let vars = d["templating"]["list"].as_array().unwrap().clone();
    for v in &vars {
        let (sel, label) = label_values(v["query"]["query"].as_str().unwrap());
        let sel = substitute(&sel, &vars);
        let values: Vec<String> = eval(&sel)
            .iter()
            .filter_map(|s| s.labels.get(&label).map(str::to_string))
            .collect();
        assert!(!values.is_empty(), "variable {label}: no values from {sel}");
    }
    let mut checked = 0;
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            let expr = substitute(t["expr"].as_str().unwrap(), &vars);
            let v = eval(&expr);
            assert!(
                !v.is_empty(),
                "panel {:?}: {expr} returned no data",
                p["title"]
            );
            checked += 1;
        }
    }
    assert!(checked >= 11);
    // The figures behind the panels are the setup's: 2 up, 1 down, SiteDown firing,
    // a certificate with days left, the pushed job.
    assert_eq!(eval(r#"sum(probe_success{job=~".*"})"#)[0].value, 2.0);
    assert_eq!(eval(r#"count(ALERTS{alertstate="firing"})"#)[0].value, 1.0);
    let days = eval(r#"(probe_ssl_earliest_cert_expiry - time()) / 86400"#);
    assert!(days.len() == 1 && days[0].value > 1000.0, "{days:?}");
    let pushed = eval(r#"time() - max by (job, instance) (push_time_seconds{job!="probe"})"#);
    assert_eq!(pushed.len(), 1);
    assert_eq!(pushed[0].labels.get("job"), Some("nightly_backup"));
}
