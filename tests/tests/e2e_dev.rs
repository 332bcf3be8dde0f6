//! `argus dev` end to end, in process: it seeds the targets of its config, probes two
//! local sites on its timer, serves the Pushgateway API, evaluates a rule and writes the
//! notification to its JSON-lines file. A group pushed over HTTP lives in memory
//! (write-behind) and is in the store after the run ends; the probe's bundle and the
//! run's results items are there too.

mod common;

use argus_app::dev::DevOptions;
use argus_app::AppConfig;
use argus_model::{Kv, Table};
use common::{get_text, Site};
use std::time::Duration;

fn free_addr() -> String {
    format!("127.0.0.1:{}", argus_testkit::free_port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argus_dev_probes_alerts_serves_pushes_and_keeps_them() {
    let up = Site::start(200).await;
    let down = Site::start(503).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = free_addr();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    std::fs::write(
        dir.path().join("rules/site.yml"),
        "groups:\n  - name: site\n    rules:\n      - alert: SiteDown\n        expr: probe_success == 0\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("am.yml"),
        "route:\n  receiver: log\n  group_by: [alertname, instance]\n  group_wait: 0s\nreceivers:\n  - name: log\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("argus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             targets:\n  - url: {}\n    labels: {{team: web}}\n  - url: {}\n\
             rule_files: ['rules/*.yml']\nalertmanager_config: am.yml\n\
             dev:\n  data_dir: data\n  notifications_file: data/notifications.jsonl\n  \
             gateway_listen: {gw}\n  blackbox_listen: {}\n  alertmanager_listen: {}\n  query_listen: {}\n  sync_interval: 1h\n",
            up.url,
            down.url,
            free_addr(),
            free_addr(),
            free_addr()
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

    let addr: std::net::SocketAddr = gw.parse().unwrap();
    assert!(
        argus_testkit::wait_for_port(addr, Duration::from_secs(10)),
        "gateway not listening"
    );
    let client = reqwest::Client::new();
    let put = client
        .put(format!("http://{gw}/metrics/job/batch/instance/n1"))
        .body("# TYPE last_success gauge\nlast_success 1234\n")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    // The probe's series and the pushed group side by side.
    let mut text = String::new();
    for _ in 0..40 {
        text = get_text(&client, format!("http://{gw}/metrics")).await;
        if text.contains("probe_success") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        text.contains(&format!(
            "probe_success{{instance=\"{}\",job=\"probe\",team=\"web\"}} 1",
            up.url
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "probe_success{{instance=\"{}\",job=\"probe\"}} 0",
            down.url
        )),
        "{text}"
    );
    assert!(
        text.contains("last_success{instance=\"n1\",job=\"batch\"} 1234"),
        "{text}"
    );

    run.await.unwrap().unwrap();

    // The notification for the failing site, written as one JSON line.
    let log = std::fs::read_to_string(dir.path().join("data/notifications.jsonl")).unwrap();
    assert!(log.contains("SiteDown") && log.contains(&down.url), "{log}");
    assert!(!log.contains(&format!("\"{}\"", up.url)), "{log}");

    // With an hour between syncs, the group only reached the store by the flush at
    // exit; the probe wrote its bundle and results items directly.
    // The store's writer thread lets go of the file just after the last handle drops.
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
    let groups = kv.query(Table::Metrics, "group", None).await.unwrap();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0].attr_str("job"), Some("batch"));
    assert_eq!(
        kv.query(Table::Metrics, argus_pushgw::BUNDLE_PK, None)
            .await
            .unwrap()
            .len(),
        1
    );
    let history = argus_app::results::history(&kv, &down.url, 0)
        .await
        .unwrap();
    assert!(
        history.len() >= 3 && history.iter().all(|r| !r.success),
        "{history:?}"
    );
}
