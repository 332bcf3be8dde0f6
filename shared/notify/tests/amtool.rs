//! The real `amtool` (Alertmanager 0.25's CLI, a go-openapi client that validates
//! responses) against Argus' `serve()`: alert query, silence add/query/expire, config show.

mod common;
use argus_model::{Clock, SystemClock};
use common::*;
use serde_json::Value;
use std::process::Command;
use std::sync::Arc;

fn amtool(url: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(argus_testkit::tool("amtool"))
        .arg(format!("--alertmanager.url={url}"))
        .args(args)
        .output()
        .expect("run amtool");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn run(url: String, args: Vec<&'static str>) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || amtool(&url, &args))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amtool_alerts_and_silences() {
    let hook = Recorder::start().await;
    let yaml = format!("route: {{receiver: hook, group_by: [alertname]}}\nreceivers:\n  - name: hook\n    webhook_configs: [{{url: {}}}]\n", hook.url);
    let n = Arc::new(notifier(kv(), &yaml));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    tokio::spawn(argus_notify::serve(n.clone(), listener, clock.clone()));
    n.ingest(
        vec![
            alert(&[("alertname", "SiteDown"), ("instance", "web-1")]),
            alert(&[("alertname", "Other")]),
        ],
        clock.now_ms(),
    )
    .await
    .unwrap();

    let (ok, out, err) = run(url.clone(), vec!["alert", "query", "-o", "json"]).await;
    assert!(ok, "alert query failed: {err}");
    let alerts: Vec<Value> = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(alerts.len(), 2, "{out}");
    let (ok, out, err) = run(url.clone(), vec!["alert", "query", "alertname=SiteDown"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("SiteDown") && !out.contains("Other"), "{out}");

    let (ok, out, err) = run(
        url.clone(),
        vec![
            "silence",
            "add",
            "alertname=SiteDown",
            "--comment=maintenance",
            "--author=ops",
            "--duration=1h",
        ],
    )
    .await;
    assert!(ok, "silence add failed: {err}");
    let id = out.trim().to_string();
    assert_eq!(id.len(), 36, "a UUID: {out}");

    let (ok, out, err) = run(url.clone(), vec!["silence", "query", "-o", "json"]).await;
    assert!(ok, "{err}");
    let list: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["status"]["state"], "active");
    assert_eq!(list[0]["createdBy"], "ops");

    // The alert is now suppressed.
    let (ok, out, err) = run(
        url.clone(),
        vec!["alert", "query", "-o", "json", "--silenced"],
    )
    .await;
    assert!(ok, "{err}");
    let alerts: Vec<Value> = serde_json::from_str(&out).unwrap();
    let site = alerts
        .iter()
        .find(|a| a["labels"]["alertname"] == "SiteDown")
        .expect("silenced alert listed");
    assert_eq!(site["status"]["state"], "suppressed");
    assert_eq!(site["status"]["silencedBy"][0], id.as_str());

    let (ok, _, err) = run(
        url.clone(),
        vec!["silence", "expire", Box::leak(id.clone().into_boxed_str())],
    )
    .await;
    assert!(ok, "silence expire failed: {err}");
    let (ok, out, _) = run(url.clone(), vec!["silence", "query", "-q"]).await;
    assert!(ok);
    assert!(
        out.trim().is_empty(),
        "expired silences are hidden by default: {out}"
    );
    let (ok, out, _) = run(url.clone(), vec!["silence", "query", "--expired", "-q"]).await;
    assert!(ok);
    assert_eq!(out.trim(), id);

    let (ok, out, err) = run(url.clone(), vec!["config", "show"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("webhook_configs"), "{out}");

    // Bad input is a 400 with a message, not a crash.
    let r = reqwest::Client::new()
        .post(format!("{url}/api/v2/alerts"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("invalid alerts JSON"));
    let r = reqwest::Client::new()
        .post(format!("{url}/api/v2/alerts"))
        .body(r#"[{"labels":{}}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("at least one label pair"));
}

#[tokio::test]
async fn bearer_token_guards_all_but_health() {
    let n = notifier(kv(), "route: {receiver: x}\nreceivers: [{name: x}]\n").with_options(
        argus_notify::NotifierOptions {
            api_token: Some("s3cret".into()),
            ..Default::default()
        },
    );
    let req = |path: &str, auth: Option<&str>| {
        let mut b = http::Request::builder().uri(path);
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        b.body(bytes::Bytes::new()).unwrap()
    };
    assert_eq!(
        n.handle_api(req("/-/healthy", None), T0).await.status(),
        200
    );
    assert_eq!(n.handle_api(req("/-/ready", None), T0).await.status(), 200);
    assert_eq!(
        n.handle_api(req("/api/v2/alerts", None), T0).await.status(),
        401
    );
    assert_eq!(
        n.handle_api(req("/api/v2/alerts", Some("Bearer nope")), T0)
            .await
            .status(),
        401
    );
    assert_eq!(
        n.handle_api(req("/api/v2/alerts", Some("Bearer s3cret")), T0)
            .await
            .status(),
        200
    );
    assert_eq!(
        n.handle_api(req("/api/v2/receivers", Some("Bearer s3cret")), T0)
            .await
            .status(),
        200
    );
    assert_eq!(
        n.handle_api(req("/api/v2/nope", Some("Bearer s3cret")), T0)
            .await
            .status(),
        404
    );
}
