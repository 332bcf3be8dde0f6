//! The evaluator's stored rule group state is a versioned record decoded strictly: a
//! record it cannot read is reported in the tick (and counted) and left as it is; the
//! group is not evaluated, so pending and firing alerts are never reset (issue 17).

use argus_app::pipeline;
use argus_app::AppConfig;
use argus_model::{Cond, Item, Kv, Table};
use std::sync::Arc;

const T0: i64 = 1_700_000_000_000;

#[tokio::test]
async fn undecodable_state_is_reported_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: g\n    rules:\n      - alert: Always\n        expr: vector(1)\n        for: 1m\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("argus.yml"),
        "global:\n  evaluation_interval: 15s\nrule_files: [rules.yml]\n",
    )
    .unwrap();
    let cfg = AppConfig::load(&dir.path().join("argus.yml")).unwrap();
    let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open_temp().unwrap());
    let gateway = Arc::new(
        pipeline::build_gateway(kv.clone(), &cfg, pipeline::StoreAccess::Shared, None).unwrap(),
    );
    let notifier = Arc::new(
        pipeline::build_notifier(
            kv.clone(),
            &cfg,
            pipeline::StoreAccess::Shared,
            None,
            None,
            None,
        )
        .await
        .unwrap(),
    );
    let (ev, problems) = pipeline::build_evaluator(
        kv.clone(),
        &cfg,
        pipeline::StoreAccess::Shared,
        gateway,
        notifier,
    )
    .unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    let key = ev.groups().next().unwrap().to_string();

    // A healthy tick writes a format-1 record with the pending alert.
    let r = ev.tick(T0).await.unwrap();
    assert_eq!((r.pending.len(), r.undecodable_states), (1, 0), "{r}");
    let pk = argus_app::evaluator::STATE_PARTITION;
    let item = kv.get(Table::Alerts, pk, &key).await.unwrap().unwrap();
    let data = item.data.clone().unwrap();
    assert!(data.starts_with(br#"{"v":1,"#));
    assert!(argus_rules::decode_state(&data).is_ok());

    // A record the evaluator cannot read (here: a renamed field, as a careless change
    // of the domain type would write) is reported and left untouched.
    let mut broken = Item::new(pk, key.as_str());
    broken.data = Some(br#"{"v":1,"last_eval":1,"rules":[]}"#.to_vec());
    kv.put(Table::Alerts, broken, Cond::Version(item.version))
        .await
        .unwrap();
    let before = kv.get(Table::Alerts, pk, &key).await.unwrap().unwrap();
    let r = ev.tick(T0 + 15_000).await.unwrap();
    assert_eq!(r.undecodable_states, 1, "{r}");
    assert_eq!(r.groups_evaluated, 0, "{r}");
    assert!(
        r.errors
            .iter()
            .any(|e| e.contains(&key) && e.contains("unreadable") && e.contains("not evaluated")),
        "{:?}",
        r.errors
    );
    assert_eq!(r.summary()["undecodable_states"], 1);
    let after = kv.get(Table::Alerts, pk, &key).await.unwrap().unwrap();
    assert_eq!(
        (after.version, after.data),
        (before.version, before.data),
        "never replaced by a fresh state"
    );
    // A record from a newer Argus is named as such.
    let mut newer = Item::new(pk, key.as_str());
    newer.data = Some(br#"{"v":7}"#.to_vec());
    kv.put(Table::Alerts, newer, Cond::Version(after.version))
        .await
        .unwrap();
    let r = ev.tick(T0 + 30_000).await.unwrap();
    assert!(
        r.errors.iter().any(|e| e.contains("format 7")),
        "{:?}",
        r.errors
    );
}
