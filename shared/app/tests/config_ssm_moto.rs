//! The configuration in SSM Parameter Store (moto): a pushed bundle is picked up by the
//! watcher (and by a cold start), checked at most once a minute with one GetParameter
//! call; an invalid version that got there around `argus config push` is refused once,
//! counted, and the last good one stays.

use argus_app::config_store::{push, Bundle, SsmConfigWatcher};
use aws_config::Region;
use aws_sdk_ssm::config::{Credentials, SharedCredentialsProvider};

async fn sdk(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "testing", "testing", None, None, "test",
        )))
        .load()
        .await
}

fn write_setup(dir: &std::path::Path, threshold: u32) {
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::create_dir_all(dir.join("targets")).unwrap();
    std::fs::write(
        dir.join("argus.yml"),
        "prometheus_config: prometheus.yml\nalertmanager_config: am.yml\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("prometheus.yml"),
        "global: {evaluation_interval: 30s}\nrule_files: [rules/*.yml]\nscrape_configs:\n  - job_name: app\n    file_sd_configs: [{files: [targets/*.json]}]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("rules/a.yml"),
        format!("groups:\n  - name: a\n    rules:\n      - alert: High\n        expr: vector({threshold}) > 1\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("targets/t.json"),
        r#"[{"targets": ["127.0.0.1:1"]}]"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("am.yml"),
        "route: {receiver: x}\nreceivers: [{name: x}]\n",
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_picks_up_pushed_versions_and_ignores_bad_ones() {
    let moto = argus_testkit::moto();
    let conf = sdk(&moto.url()).await;
    let ssm = aws_sdk_ssm::Client::new(&conf);
    let src = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    write_setup(src.path(), 5);

    let b = Bundle::collect(&src.path().join("argus.yml")).unwrap();
    let names: Vec<&str> = b.files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "am.yml",
            "argus.yml",
            "prometheus.yml",
            "rules/a.yml",
            "targets/t.json"
        ]
    );
    let v1 = push(&ssm, "/argus/config", &b).await.unwrap();
    let w = SsmConfigWatcher::new(ssm.clone(), "/argus/config", work.path(), None);
    let t0 = 1_800_000_000_000;
    let (v, cfg) = w.poll(t0).await.unwrap().expect("first version");
    assert_eq!(v, v1);
    assert_eq!(
        cfg.global.evaluation_interval,
        std::time::Duration::from_secs(30)
    );
    // Not due: no call at all. Due but unchanged: one call, nothing to apply.
    assert!(w.poll(t0 + 30_000).await.unwrap().is_none());
    assert_eq!(w.calls(), 1);
    assert!(w.poll(t0 + 60_000).await.unwrap().is_none());
    assert_eq!(w.calls(), 2);

    // An edit pushed: the next check applies it.
    write_setup(src.path(), 7);
    let v2 = push(
        &ssm,
        "/argus/config",
        &Bundle::collect(&src.path().join("argus.yml")).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(v2, v1 + 1);
    let (v, cfg) = w.poll(t0 + 120_000).await.unwrap().expect("new version");
    assert_eq!(v, v2);
    let (groups, problems) = argus_app::pipeline::load_rule_groups(&cfg).unwrap();
    assert!(problems.is_empty());
    assert_eq!(groups[0].1.rules[0].expr_string(), "vector(7) > 1");
    // A cold start reads the same bundle from ARGUS_CONFIG_SSM.
    let env = argus_app::env::FunctionEnv::from_lookup(|k| {
        (k == "ARGUS_CONFIG_SSM").then(|| "/argus/config".to_string())
    });
    let cold = env.load_config(&conf).await.unwrap();
    assert_eq!(
        cold.global.evaluation_interval,
        std::time::Duration::from_secs(30)
    );
    let (groups, _) = argus_app::pipeline::load_rule_groups(&cold).unwrap();
    assert_eq!(groups[0].1.rules[0].expr_string(), "vector(7) > 1");

    // A broken rule uploaded around the CLI: refused once, counted, not fetched again.
    let mut bad = Bundle::collect(&src.path().join("argus.yml")).unwrap();
    bad.files.insert(
        "rules/a.yml".into(),
        "groups:\n  - name: a\n    rules:\n      - alert: X\n        expr: sum(\n".into(),
    );
    push(&ssm, "/argus/config", &bad).await.unwrap();
    let e = w.poll(t0 + 180_000).await.unwrap_err();
    assert!(format!("{e:#}").contains("rules/a.yml"), "{e:#}");
    assert!(w.metrics_text().contains("argus_config_invalid_total 1\n"));
    assert!(w
        .metrics_text()
        .contains(&format!("argus_config_version {v2}\n")));
    assert!(w.poll(t0 + 240_000).await.unwrap().is_none());
    // Not JSON at all: refused too.
    ssm.put_parameter()
        .name("/argus/config")
        .value("not: a bundle")
        .overwrite(true)
        .send()
        .await
        .unwrap();
    assert!(w.poll(t0 + 300_000).await.is_err());
    assert!(w.metrics_text().contains("argus_config_invalid_total 2\n"));
    // A bundle path escaping the directory is refused before anything is written.
    let mut evil = Bundle::collect(&src.path().join("argus.yml")).unwrap();
    evil.files.insert("../escape.yml".into(), "x".into());
    assert!(evil.materialize(work.path()).is_err());
}
