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

fn rules(alerts: usize) -> String {
    let mut s = String::from("groups:\n  - name: a\n    rules:\n");
    for i in 0..alerts {
        s.push_str(&format!(
            "      - alert: A{i}\n        expr: vector(1) > 0\n"
        ));
    }
    s
}

/// The evaluator function as it runs in Lambda (`warm::evaluator` + its handler), its
/// configuration in moto's SSM: v1 at cold start; v2 pushed and applied by the first
/// invocation a minute after the last check, without a new cold start; an invalid v3
/// ignored (logged, counted) while v2 keeps running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_function_applies_new_versions_and_keeps_the_last_good_one() {
    let moto = argus_testkit::moto();
    let conf = sdk(&moto.url()).await;
    let ssm = aws_sdk_ssm::Client::new(&conf);
    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(src.path().join("rules")).unwrap();
    std::fs::write(src.path().join("argus.yml"), "rule_files: [rules/*.yml]\n").unwrap();
    let push_rules = |text: String| {
        std::fs::write(src.path().join("rules/a.yml"), text).unwrap();
        Bundle::collect(&src.path().join("argus.yml")).unwrap()
    };
    let name = "/argus/warm";
    let v1 = push(&ssm, name, &push_rules(rules(1))).await.unwrap();

    let env = argus_app::env::FunctionEnv::from_lookup(|k| {
        (k == "ARGUS_CONFIG_SSM").then(|| name.to_string())
    });
    let (config, config_version) = env.load_config_versioned(&conf).await.unwrap();
    assert_eq!(config_version, Some(v1));
    let cold = argus_app::pipeline::ColdStart {
        env,
        sdk: conf.clone(),
        config,
        config_version,
        kv: std::sync::Arc::new(argus_store::EmbeddedKv::open_temp().unwrap()),
    };
    let t0: i64 = 1_800_000_000_000;
    let warm = argus_app::warm::evaluator(&cold, t0).await.unwrap();
    let invoke = |now: i64| {
        let warm = &warm;
        async move {
            let svc = warm.service(now).await;
            let ev = lambda_runtime::LambdaEvent::new(
                serde_json::json!({"source": "aws.scheduler"}),
                lambda_runtime::Context::default(),
            );
            let r = argus_app::handlers::evaluator(&svc, ev, now).await.unwrap();
            r["firing"].as_u64().unwrap()
        }
    };
    let w = warm.watcher().expect("ARGUS_CONFIG_SSM is watched");
    assert_eq!(invoke(t0).await, 1);
    assert_eq!(
        w.calls(),
        0,
        "the cold start's read counts as the first check"
    );

    let v2 = push(&ssm, name, &push_rules(rules(2))).await.unwrap();
    invoke(t0 + 30_000).await;
    assert_eq!(
        (w.calls(), w.applied()),
        (0, Some(v1)),
        "not checked before a minute"
    );
    assert_eq!(
        invoke(t0 + 61_000).await,
        2,
        "v2 applied on a warm instance"
    );
    assert_eq!((w.calls(), w.applied()), (1, Some(v2)));
    invoke(t0 + 62_000).await;
    assert_eq!(w.calls(), 1, "at most one call a minute");

    // v3 pushed around `argus config push`: a rule that does not parse.
    let v3 = push(
        &ssm,
        name,
        &push_rules(
            "groups:\n  - name: a\n    rules:\n      - alert: X\n        expr: sum(\n".into(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(v3, v2 + 1);
    assert_eq!(invoke(t0 + 125_000).await, 2, "v2 keeps running");
    assert_eq!((w.calls(), w.invalid(), w.applied()), (2, 1, Some(v2)));
    assert!(w.metrics_text().contains("argus_config_invalid_total 1\n"));
    // Checked again a minute later: the same refused version is not counted twice.
    assert_eq!(invoke(t0 + 190_000).await, 2);
    assert_eq!((w.calls(), w.invalid()), (3, 1));
    // A good v4 after the bad one applies.
    let v4 = push(&ssm, name, &push_rules(rules(3))).await.unwrap();
    assert_eq!(invoke(t0 + 260_000).await, 3);
    assert_eq!(w.applied(), Some(v4));
}

#[test]
fn the_invalid_counter_is_a_cloudwatch_embedded_metric() {
    let line = argus_app::config_store::emf_line("/argus/config", 7, 1_800_000_000_000);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let m = &v["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(m["Namespace"], "Argus");
    assert_eq!(m["Metrics"][0]["Name"], "argus_config_invalid_total");
    assert_eq!(v["argus_config_invalid_total"], 1);
    assert_eq!(v["_aws"]["Timestamp"], 1_800_000_000_000i64);
    assert_eq!(m["Dimensions"][0][0], "parameter");
    assert_eq!(v["parameter"], "/argus/config");
}
