//! A prometheus.yml with `alerting.alertmanagers` pointing at the real Alertmanager
//! 0.25: the evaluator sends to its v2 API as Prometheus does (on firing, then once a
//! resend delay of 1 m has passed, `endsAt` = now + 4 × max(evaluation interval, 1 m)),
//! and the alert Alertmanager holds has the rule's labels, the external labels and the
//! expanded annotations.

use argus_app::pipeline::Pipeline;
use argus_app::AppConfig;
use argus_model::Kv;
use argus_testkit::{spawn_peer, tool};
use serde_json::Value;
use std::sync::Arc;

async fn am_alerts(client: &reqwest::Client, base: &str) -> Vec<Value> {
    client
        .get(format!("{base}/api/v2/alerts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn rfc3339_ms(v: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .timestamp_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_the_real_alertmanager_with_prometheus_timing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("am.yml"),
        "route:\n  receiver: none\nreceivers:\n  - name: none\n",
    )
    .unwrap();
    let am = spawn_peer(
        "alertmanager",
        &tool("prometheus-alertmanager"),
        &[
            &format!("--config.file={}", d.join("am.yml").display()),
            &format!("--storage.path={}", d.join("am-data").display()),
            "--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
    );
    std::fs::create_dir_all(d.join("rules")).unwrap();
    std::fs::write(
        d.join("rules/a.yml"),
        "groups:\n  - name: a\n    rules:\n      - alert: Always\n        expr: vector(1) > 0\n        labels: {severity: page}\n        annotations: {summary: 'value {{ $value }}'}\n",
    )
    .unwrap();
    std::fs::write(
        d.join("prometheus.yml"),
        format!(
            "global:\n  evaluation_interval: 30s\n  external_labels: {{dc: eu1}}\nrule_files: [rules/a.yml]\n\
             alerting:\n  alertmanagers:\n    - static_configs: [{{targets: ['127.0.0.1:{}']}}]\n",
            am.port
        ),
    )
    .unwrap();
    std::fs::write(d.join("argus.yml"), "prometheus_config: prometheus.yml\n").unwrap();
    let mut cfg = AppConfig::load(&d.join("argus.yml")).unwrap();
    argus_app::promconfig::prepare(&mut cfg).unwrap();
    assert_eq!(cfg.external_alertmanagers.len(), 1);
    let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open(d.join("s.redb")).unwrap());
    let p = Pipeline::build(kv, cfg, None).await.unwrap();
    let client = reqwest::Client::new();

    // Whole seconds: Alertmanager keeps the times as given.
    let t0 = chrono::Utc::now().timestamp() * 1000;
    let r = p.evaluator.tick(t0).await.unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.sent_to_notifier, 1);
    let alerts = am_alerts(&client, &am.url()).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(
        a["labels"],
        serde_json::json!({"alertname": "Always", "severity": "page", "dc": "eu1"})
    );
    assert_eq!(a["annotations"], serde_json::json!({"summary": "value 1"}));
    assert_eq!(a["status"]["state"], "active");
    assert_eq!(rfc3339_ms(&a["startsAt"]), t0);
    // 4 × max(30 s evaluation interval, 1 m resend delay).
    assert_eq!(rfc3339_ms(&a["endsAt"]), t0 + 4 * 60_000);

    // Within the resend delay nothing is sent; after it, endsAt moves on.
    let r = p.evaluator.tick(t0 + 30_000).await.unwrap();
    assert_eq!(r.sent_to_notifier, 0);
    let r = p.evaluator.tick(t0 + 90_000).await.unwrap();
    assert_eq!(r.sent_to_notifier, 1);
    let a = &am_alerts(&client, &am.url()).await[0];
    assert_eq!(rfc3339_ms(&a["startsAt"]), t0);
    assert_eq!(rfc3339_ms(&a["endsAt"]), t0 + 90_000 + 4 * 60_000);

    // The Alertmanager down: the tick goes on and says why.
    drop(am);
    let r = p.evaluator.tick(t0 + 180_000).await.unwrap();
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    assert!(
        r.errors[0].contains("Alertmanager http://127.0.0.1:"),
        "{:?}",
        r.errors
    );
}
