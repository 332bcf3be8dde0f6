//! A real Prometheus (Debian's 2.42) with `alerting.alertmanagers` pointed at Argus'
//! `serve()`: its firing and then resolved alert reach a webhook through Argus.

mod common;
use argus_model::{Clock, SystemClock};
use common::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_sends_firing_and_resolved_through_argus() {
    let hook = Recorder::start().await;
    let yaml = format!(
        "route: {{receiver: hook, group_by: [alertname], group_wait: 0s, group_interval: 1s}}\nreceivers:\n  - name: hook\n    webhook_configs: [{{url: {}}}]\n",
        hook.url
    );
    let n = Arc::new(notifier(kv(), &yaml));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    tokio::spawn(argus_notify::serve(n.clone(), listener, clock.clone()));
    // The notifier's schedule.
    let ticker = {
        let (n, clock) = (n.clone(), clock.clone());
        tokio::spawn(async move {
            loop {
                n.tick(clock.now_ms()).await.unwrap();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };

    let dir = tempfile::tempdir().unwrap();
    // Fires for 4 s out of every 8 s.
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n- name: g\n  interval: 1s\n  rules:\n  - alert: Flapping\n    expr: vector(time() % 8) < 4\n    labels: {severity: page}\n    annotations: {summary: 'flaps {{ $value }}'}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global: {{evaluation_interval: 1s, scrape_interval: 1s}}\nrule_files: [rules.yml]\nalerting:\n  alertmanagers:\n    - api_version: v2\n      static_configs: [{{targets: ['{addr}']}}]\n"
        ),
    )
    .unwrap();
    let prom = argus_testkit::spawn_peer(
        "prometheus",
        &argus_testkit::tool("prometheus"),
        &[
            &format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ),
            &format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            "--web.listen-address=127.0.0.1:{port}",
        ],
    );
    let end = Instant::now() + Duration::from_secs(30);
    let mut statuses = Vec::new();
    while Instant::now() < end {
        statuses = hook
            .bodies()
            .iter()
            .map(|b| b["status"].as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>();
        if statuses.iter().any(|s| s == "firing")
            && statuses
                .iter()
                .skip_while(|s| *s != "firing")
                .any(|s| s == "resolved")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ticker.abort();
    let bodies = hook.bodies();
    assert!(
        statuses.contains(&"resolved".to_string()),
        "statuses {statuses:?}; prometheus log:\n{}",
        prom.log()
    );
    let first = &bodies[0];
    assert_eq!(first["status"], "firing");
    assert_eq!(first["groupKey"], r#"{}:{alertname="Flapping"}"#);
    let a = &first["alerts"][0];
    assert_eq!(a["labels"]["severity"], "page");
    assert!(
        a["generatorURL"]
            .as_str()
            .unwrap()
            .contains("/graph?g0.expr="),
        "{a}"
    );
    assert!(a["annotations"]["summary"]
        .as_str()
        .unwrap()
        .starts_with("flaps "));
}
