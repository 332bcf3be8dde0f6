//! Bundles (the probe's write path): many groups in one item per slot, shown beside
//! pushed groups with the same labels, replaced per group, expiring, and never losing
//! a group when two writers update the same slot at once (embedded store and moto).

mod common;

use argus_model::{Cond, Item, Kv, Labels, Table};
use argus_pushgw::{Gateway, GatewayConfig, WriteRequest, BUNDLE_PK};
use std::sync::Arc;
use std::time::Duration;

const T0: i64 = 1_800_000_000_000;
const KEEP: Duration = Duration::from_secs(180);

fn families(v: f64) -> Vec<argus_expfmt::MetricFamily> {
    argus_expfmt::parse_text(&format!(
        "# HELP probe_success Displays whether or not the probe was a success\n\
         # TYPE probe_success gauge\nprobe_success {v}\n\
         # HELP probe_duration_seconds Returns how long the probe took to complete in seconds\n\
         # TYPE probe_duration_seconds gauge\nprobe_duration_seconds 0.{}\n",
        (v * 1000.0) as u64 + 123
    ))
    .unwrap()
}

fn write(url: &str, v: f64) -> WriteRequest {
    WriteRequest::push(
        "probe",
        &[("instance", url), ("team", "web")],
        families(v),
        true,
    )
}

fn value(snap: &[(Labels, f64)], name: &str, instance: &str) -> Option<f64> {
    snap.iter()
        .find(|(l, _)| l.name() == Some(name) && l.get("instance") == Some(instance))
        .map(|(_, v)| *v)
}

fn embedded() -> Arc<dyn Kv> {
    Arc::new(argus_store::EmbeddedKv::open_temp().unwrap())
}

#[tokio::test]
async fn bundled_groups_look_like_pushed_ones() {
    let kv = embedded();
    let gw = Gateway::new(kv.clone(), GatewayConfig::default());
    let v = gw
        .push_bundle(
            "0",
            vec![write("https://a", 1.0), write("https://b", 0.0)],
            KEEP,
            T0,
        )
        .await
        .unwrap();
    assert!(v.iter().all(Result::is_ok));
    // One item holds both.
    let items = kv.query(Table::Metrics, BUNDLE_PK, None).await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].sk, "0");

    // The same labels as a push to job/probe/instance/<url>/team/web.
    let snap = gw.snapshot(T0 + 1).await.unwrap();
    assert_eq!(value(&snap, "probe_success", "https://a"), Some(1.0));
    assert_eq!(value(&snap, "probe_success", "https://b"), Some(0.0));
    assert_eq!(
        value(&snap, "push_time_seconds", "https://a"),
        Some(T0 as f64 / 1000.0)
    );
    let (labels, _) = snap
        .iter()
        .find(|(l, _)| l.name() == Some("probe_success"))
        .unwrap();
    assert_eq!(labels.get("job"), Some("probe"));
    assert_eq!(labels.get("team"), Some("web"));

    // A fresh gateway (another Lambda instance) reads the same from the store, and
    // /metrics renders it like any group.
    let other = Gateway::new(kv.clone(), GatewayConfig::default());
    let text = other.metrics_text(T0 + 1).await.unwrap();
    assert!(
        text.contains(r#"probe_success{instance="https://a",job="probe",team="web"} 1"#),
        "{text}"
    );
    assert_eq!(
        text.matches("# TYPE probe_success gauge").count(),
        1,
        "{text}"
    );
    let json = other.metrics_json(T0 + 1).await.unwrap();
    assert_eq!(json["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_run_replaces_its_targets_keeps_the_others_and_expired_ones_go() {
    let gw = Gateway::new(embedded(), GatewayConfig::default());
    gw.push_bundle(
        "0",
        vec![write("https://a", 1.0), write("https://b", 1.0)],
        KEEP,
        T0,
    )
    .await
    .unwrap();
    // The next run probes only `a` (b has a longer interval): b stays.
    gw.push_bundle("0", vec![write("https://a", 0.0)], KEEP, T0 + 60_000)
        .await
        .unwrap();
    let snap = gw.snapshot(T0 + 60_001).await.unwrap();
    assert_eq!(value(&snap, "probe_success", "https://a"), Some(0.0));
    assert_eq!(value(&snap, "probe_success", "https://b"), Some(1.0));
    // b is not probed again: it leaves every view after KEEP...
    let later = T0 + KEEP.as_millis() as i64 + 1;
    let snap = gw.snapshot(later).await.unwrap();
    assert_eq!(value(&snap, "probe_success", "https://b"), None);
    assert!(!gw.metrics_text(later).await.unwrap().contains("https://b"));
    // ...and is dropped from the item by the next write.
    gw.push_bundle("0", vec![write("https://a", 1.0)], KEEP, later)
        .await
        .unwrap();
    let groups = gw.metrics_json(later).await.unwrap();
    assert_eq!(groups["data"].as_array().unwrap().len(), 1);
    // A per-write TTL overrides the default.
    let mut short = write("https://c", 1.0);
    short.ttl = Some(Duration::from_secs(1));
    gw.push_bundle("0", vec![short], KEEP, later).await.unwrap();
    let snap = gw.snapshot(later + 2_000).await.unwrap();
    assert_eq!(value(&snap, "probe_success", "https://c"), None);
    assert_eq!(value(&snap, "probe_success", "https://a"), Some(1.0));
}

#[tokio::test]
async fn the_newest_copy_of_a_key_wins_across_slots_and_pushes() {
    let gw = Gateway::new(embedded(), GatewayConfig::default());
    gw.push_bundle("0", vec![write("https://a", 1.0)], KEEP, T0)
        .await
        .unwrap();
    // The target moved to another invocation's slot.
    gw.push_bundle("1", vec![write("https://a", 0.0)], KEEP, T0 + 60_000)
        .await
        .unwrap();
    let snap = gw.snapshot(T0 + 60_001).await.unwrap();
    let a: Vec<f64> = snap
        .iter()
        .filter(|(l, _)| l.name() == Some("probe_success"))
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(a, vec![0.0], "one series per key, the newest");
    // A client pushing the same key later wins too; its own push is kept as usual.
    gw.push(
        WriteRequest::push(
            "probe",
            &[("instance", "https://a"), ("team", "web")],
            argus_expfmt::parse_text("probe_success 7\n").unwrap(),
            true,
        ),
        T0 + 90_000,
    )
    .await
    .unwrap();
    let snap = gw.snapshot(T0 + 90_001).await.unwrap();
    assert_eq!(value(&snap, "probe_success", "https://a"), Some(7.0));
    assert_eq!(value(&snap, "probe_duration_seconds", "https://a"), None);
}

#[tokio::test]
async fn bad_writes_are_refused_one_by_one_and_corrupt_bundles_are_replaced() {
    let kv = embedded();
    let gw = Gateway::new(kv.clone(), GatewayConfig::default());
    let mut stamped = write("https://t", 1.0);
    if let Some(f) = stamped.families.as_mut() {
        f[0].metrics[0].timestamp_ms = Some(5);
    }
    let nojob = WriteRequest::push("", &[], families(1.0), true);
    let v = gw
        .push_bundle(
            "0",
            vec![stamped, write("https://ok", 1.0), nojob],
            KEEP,
            T0,
        )
        .await
        .unwrap();
    assert!(v[0]
        .as_ref()
        .unwrap_err()
        .to_string()
        .contains("timestamps"));
    assert!(v[1].is_ok());
    assert!(v[2].as_ref().unwrap_err().to_string().contains("job"));
    let snap = gw.snapshot(T0).await.unwrap();
    assert_eq!(value(&snap, "probe_success", "https://ok"), Some(1.0));
    assert_eq!(value(&snap, "probe_success", "https://t"), None);

    // Garbage in the item: readers skip it, the next write replaces it.
    let mut junk = Item::new(BUNDLE_PK, "0");
    junk.data = Some(b"not zstd".to_vec());
    kv.put(Table::Metrics, junk, Cond::Always).await.unwrap();
    let fresh = Gateway::new(kv.clone(), GatewayConfig::default());
    assert_eq!(
        value(
            &fresh.snapshot(T0).await.unwrap(),
            "probe_success",
            "https://ok"
        ),
        None
    );
    fresh
        .push_bundle("0", vec![write("https://ok", 0.0)], KEEP, T0 + 1)
        .await
        .unwrap();
    let snap = fresh.snapshot(T0 + 2).await.unwrap();
    assert_eq!(value(&snap, "probe_success", "https://ok"), Some(0.0));
    // Wipe removes bundles too.
    fresh.wipe().await.unwrap();
    assert!(fresh.snapshot(T0 + 3).await.unwrap().is_empty());
}

/// Two writers (two Lambda instances: no shared cache) add different targets to the
/// same slot at once: the conditional write makes the second redo, nothing is lost.
async fn concurrent_writers_lose_nothing(kv: Arc<dyn Kv>) {
    let a = Arc::new(Gateway::new(kv.clone(), GatewayConfig::default()));
    let b = Arc::new(Gateway::new(kv.clone(), GatewayConfig::default()));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let g = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            g.push_bundle(
                "0",
                vec![write(&format!("https://t{i}"), 1.0)],
                KEEP,
                T0 + i,
            )
            .await
            .unwrap()
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap().iter().all(Result::is_ok));
    }
    let snap = a.snapshot(T0 + 100).await.unwrap();
    for i in 0..16 {
        assert_eq!(
            value(&snap, "probe_success", &format!("https://t{i}")),
            Some(1.0),
            "t{i} lost"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_embedded() {
    concurrent_writers_lose_nothing(embedded()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_dynamodb() {
    let (_moto, kv) = common::moto_kv("bd-").await;
    let kv: Arc<dyn Kv> = Arc::new(kv);
    concurrent_writers_lose_nothing(kv).await;
}
