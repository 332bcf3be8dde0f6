//! Bad input never stops the rest: a malformed URL and a broken item in the targets
//! table, a rule file that does not parse, a webhook that answers 500. Each is reported
//! clearly, and everything else keeps working.

mod common;

use argus_app::pipeline::Pipeline;
use argus_app::AppConfig;
use argus_model::{Clock, Cond, Item, Kv, SystemClock, Table, Target};
use common::{Hook, Site};
use std::sync::Arc;

fn config(dir: &std::path::Path, hook: &str, extra_rules: &[(&str, &str)]) -> AppConfig {
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("good.yml"),
        "groups:\n  - name: site\n    rules:\n      - alert: SiteDown\n        expr: probe_success == 0\n",
    )
    .unwrap();
    for (name, text) in extra_rules {
        std::fs::write(rules.join(name), text).unwrap();
    }
    std::fs::write(
        dir.join("am.yml"),
        format!("route:\n  receiver: ops\n  group_by: [alertname, instance]\n  group_wait: 0s\n  group_interval: 1m\nreceivers:\n  - name: ops\n    webhook_configs:\n      - url: {hook}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("argus.yml"),
        "rule_files: ['rules/*.yml']\nalertmanager_config: am.yml\n",
    )
    .unwrap();
    AppConfig::load(&dir.join("argus.yml")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_targets_are_reported_and_the_good_one_is_still_probed() {
    let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open_temp().unwrap());
    let good = Site::start(200).await;
    let hook = Hook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let p = Pipeline::build(kv.clone(), config(dir.path(), &hook.url, &[]), None)
        .await
        .unwrap();

    argus_app::targets::add(kv.as_ref(), &Target::new(&good.url))
        .await
        .unwrap();
    argus_app::targets::add(kv.as_ref(), &Target::new("http://exa mple.com/ not a url"))
        .await
        .unwrap();
    let unreachable = format!("http://127.0.0.1:{}/", argus_testkit::free_port());
    argus_app::targets::add(kv.as_ref(), &Target::new(&unreachable))
        .await
        .unwrap();
    // An item a user broke by hand in the console: no url, interval of the wrong type.
    kv.put(
        Table::Targets,
        Item::new("broken", "").with_attr("interval", 5),
        Cond::Always,
    )
    .await
    .unwrap();

    let r = p.probe.run(SystemClock.now_ms(), None).await.unwrap();
    assert_eq!(r.bad_items.len(), 1, "{r}");
    assert!(r.bad_items[0].contains("\"broken\""), "{}", r.bad_items[0]);
    let by_url = |u: &str| {
        r.probed
            .iter()
            .find(|p| p.target.url == u)
            .unwrap_or_else(|| panic!("{u} not probed: {r}"))
    };
    assert!(by_url(&good.url).success);
    let bad = by_url("http://exa mple.com/ not a url");
    assert!(
        !bad.success && bad.error.as_deref().is_some_and(|e| !e.is_empty()),
        "{bad:?}"
    );
    let down = by_url(&unreachable);
    assert!(
        !down.success && down.error.as_deref().unwrap().contains("refused"),
        "{down:?}"
    );
    // Results were written for every probed target, including the failures.
    let rows = argus_app::results::history(kv.as_ref(), &unreachable, 0)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(!rows[0].success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_rule_file_is_reported_and_the_others_still_alert() {
    let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open_temp().unwrap());
    let down = Site::start(503).await;
    let hook = Hook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let broken = "groups:\n  - name: broken\n    rules:\n      - alert: Bad\n        expr: sum(rate(x[5m]) by\n";
    let p = Pipeline::build(
        kv.clone(),
        config(dir.path(), &hook.url, &[("broken.yml", broken)]),
        None,
    )
    .await
    .unwrap();
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    assert!(
        p.warnings[0].contains("broken.yml") && p.warnings[0].contains("Bad"),
        "{}",
        p.warnings[0]
    );
    assert_eq!(p.evaluator.groups().collect::<Vec<_>>(), ["good.yml/site"]);

    argus_app::targets::add(kv.as_ref(), &Target::new(&down.url))
        .await
        .unwrap();
    let now = SystemClock.now_ms();
    p.tick_all(now).await.unwrap();
    assert_eq!(hook.statuses(), ["firing"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_answering_500_is_retried_on_later_ticks_and_delivered_once() {
    let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open_temp().unwrap());
    let down = Site::start(500).await;
    let hook = Hook::start().await;
    hook.set_status(500);
    let dir = tempfile::tempdir().unwrap();
    let p = Pipeline::build(kv.clone(), config(dir.path(), &hook.url, &[]), None)
        .await
        .unwrap();
    argus_app::targets::add(kv.as_ref(), &Target::new(&down.url))
        .await
        .unwrap();

    let mut now = SystemClock.now_ms();
    let s = p.tick_all(now).await.unwrap();
    let failed: Vec<String> = s.notify.failed().map(|n| n.to_string()).collect();
    assert_eq!(failed.len(), 1, "{s}");
    assert!(failed[0].contains("500"), "{}", failed[0]);
    assert!(hook.bodies.lock().unwrap().is_empty());

    hook.set_status(200);
    for _ in 0..6 {
        now += 15_000;
        p.tick_all(now).await.unwrap();
    }
    assert_eq!(
        hook.statuses(),
        ["firing"],
        "delivered exactly once after the receiver recovered"
    );
}
