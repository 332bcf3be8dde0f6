//! One contract, two real backends: the embedded redb store and DynamoDB on moto.
//! Every behaviour the services rely on (conditional writes, versions, partitions in
//! sort order, batches, native attributes for targets) is asserted on both.

use argus_model::{Cond, Item, Kv, StoreError, Table, Target};
use argus_store::{bootstrap, DynamoKv, EmbeddedKv};
use std::sync::Arc;

async fn contract(kv: Arc<dyn Kv>) {
    // Conditional create, then optimistic update.
    let item = Item::new("g1", "a").with_attr("n", 1);
    assert_eq!(
        kv.put(Table::Metrics, item.clone(), Cond::NotExists)
            .await
            .unwrap(),
        1
    );
    assert!(matches!(
        kv.put(Table::Metrics, item.clone(), Cond::NotExists).await,
        Err(StoreError::Conflict(_))
    ));
    let got = kv.get(Table::Metrics, "g1", "a").await.unwrap().unwrap();
    assert_eq!(got.version, 1);
    assert_eq!(got.attrs["n"], 1);
    let mut upd = got.clone();
    upd.attrs.insert("n".into(), 2.into());
    upd.data = Some(vec![0, 1, 2, 255]);
    upd.expires_at = Some(argus_model::UnixSecs(1_900_000_000));
    assert_eq!(
        kv.put(Table::Metrics, upd.clone(), Cond::Version(1))
            .await
            .unwrap(),
        2
    );
    // A stale writer loses.
    assert!(matches!(
        kv.put(Table::Metrics, upd.clone(), Cond::Version(1)).await,
        Err(StoreError::Conflict(_))
    ));
    let got = kv.get(Table::Metrics, "g1", "a").await.unwrap().unwrap();
    assert_eq!(
        (got.version, got.data.as_deref(), got.expires_at),
        (
            2,
            Some(&[0u8, 1, 2, 255][..]),
            Some(argus_model::UnixSecs(1_900_000_000))
        )
    );
    assert!(got.live(1_899_999_999_000) && !got.live(1_900_000_000_000));

    // Partitions are returned in sort-key order, from a start key.
    let items: Vec<Item> = ["003", "001", "002", "010"]
        .iter()
        .map(|s| Item::new("p", *s).with_attr("s", *s))
        .collect();
    kv.put_batch(Table::Samples, items).await.unwrap();
    kv.put(Table::Samples, Item::new("q", "001"), Cond::Always)
        .await
        .unwrap();
    let all: Vec<String> = kv
        .query(Table::Samples, "p", None)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.sk)
        .collect();
    assert_eq!(all, ["001", "002", "003", "010"]);
    let from: Vec<String> = kv
        .query(Table::Samples, "p", Some("002"))
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.sk)
        .collect();
    assert_eq!(from, ["002", "003", "010"]);
    // Several by key, in the order asked, absent ones as such.
    let some = kv
        .get_many(
            Table::Samples,
            "p",
            &["010".into(), "missing".into(), "001".into()],
        )
        .await
        .unwrap();
    let got: Vec<Option<(String, String)>> = some
        .iter()
        .map(|i| i.as_ref().map(|i| (i.sk.clone(), i.attrs["s"].to_string())))
        .collect();
    assert_eq!(
        got,
        [
            Some(("010".into(), "\"010\"".into())),
            None,
            Some(("001".into(), "\"001\"".into()))
        ]
    );
    assert!(kv
        .get_many(Table::Samples, "p", &[])
        .await
        .unwrap()
        .is_empty());

    // Batches larger than DynamoDB's 25-item limit.
    let many: Vec<Item> = (0..60).map(|i| Item::new("r", format!("{i:04}"))).collect();
    kv.put_batch(Table::Results, many).await.unwrap();
    assert_eq!(kv.query(Table::Results, "r", None).await.unwrap().len(), 60);

    // Conditional delete.
    assert!(matches!(
        kv.delete(Table::Metrics, "g1", "a", Cond::Version(1)).await,
        Err(StoreError::Conflict(_))
    ));
    kv.delete(Table::Metrics, "g1", "a", Cond::Version(2))
        .await
        .unwrap();
    assert!(kv.get(Table::Metrics, "g1", "a").await.unwrap().is_none());
    kv.delete(Table::Metrics, "absent", "x", Cond::Always)
        .await
        .unwrap();

    // Several conditional writes in one call: each answered on its own, in order.
    let res = kv
        .put_many(vec![
            (
                Table::Alerts,
                Item::new("m", "a").with_attr("n", 1),
                Cond::NotExists,
            ),
            (
                Table::Nflog,
                Item::new("m", "b").with_attr("n", 1),
                Cond::Version(7),
            ),
            (
                Table::Alerts,
                Item::new("m", "c").with_attr("n", 1),
                Cond::Always,
            ),
        ])
        .await
        .unwrap();
    assert_eq!(res.len(), 3);
    assert_eq!(res[0].as_ref().ok(), Some(&1));
    assert!(matches!(res[1], Err(StoreError::Conflict(_))), "{res:?}");
    assert_eq!(res[2].as_ref().ok(), Some(&1));
    assert!(kv.get(Table::Nflog, "m", "b").await.unwrap().is_none());
    assert_eq!(
        kv.get(Table::Alerts, "m", "a")
            .await
            .unwrap()
            .unwrap()
            .attrs["n"],
        1
    );
    // The same key twice: the second sees the first.
    let res = kv
        .put_many(vec![
            (
                Table::Alerts,
                Item::new("m", "a").with_attr("n", 2),
                Cond::Version(1),
            ),
            (
                Table::Alerts,
                Item::new("m", "a").with_attr("n", 3),
                Cond::Version(2),
            ),
            (
                Table::Alerts,
                Item::new("m", "a").with_attr("n", 4),
                Cond::Version(1),
            ),
        ])
        .await
        .unwrap();
    assert_eq!(res[0].as_ref().ok(), Some(&2));
    assert_eq!(res[1].as_ref().ok(), Some(&3));
    assert!(matches!(res[2], Err(StoreError::Conflict(_))), "{res:?}");
    assert_eq!(
        kv.get(Table::Alerts, "m", "a")
            .await
            .unwrap()
            .unwrap()
            .attrs["n"],
        3
    );
    assert!(kv.put_many(Vec::new()).await.unwrap().is_empty());

    // Targets keep their documented attributes (native types, no payload blob).
    let mut t = Target::new("https://example.com/health");
    t.labels.insert("team".into(), "web".into());
    t.interval = Some(std::time::Duration::from_secs(120));
    kv.put(Table::Targets, t.to_item(), Cond::Always)
        .await
        .unwrap();
    let scanned = kv.scan(Table::Targets).await.unwrap();
    assert_eq!(scanned.len(), 1);
    assert_eq!(Target::from_item(&scanned[0]).unwrap(), t);

    // Concurrent conditional writers: exactly one wins each round.
    let mut wins = 0;
    let futs: Vec<_> = (0..8)
        .map(|i| {
            let kv = kv.clone();
            async move {
                kv.put(
                    Table::Nflog,
                    Item::new("claim", "k").with_attr("owner", i),
                    Cond::NotExists,
                )
                .await
            }
        })
        .collect();
    for r in futures::future::join_all(futs).await {
        match r {
            Ok(_) => wins += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(wins, 1);
}

#[tokio::test]
async fn embedded_backend_honours_the_contract() {
    contract(Arc::new(EmbeddedKv::open_temp().unwrap())).await;
}

#[tokio::test]
async fn embedded_backend_with_interval_sync_honours_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let kv = EmbeddedKv::open_with(
        dir.path().join("s.redb"),
        argus_store::Durability::Interval(std::time::Duration::from_millis(50)),
    )
    .unwrap();
    contract(Arc::new(kv.clone())).await;
    kv.sync().await.unwrap();
}

async fn reopen(path: &std::path::Path) -> EmbeddedKv {
    // The writer thread holds the database until its channel closes; give it a moment.
    for _ in 0..100 {
        if let Ok(kv) = EmbeddedKv::open(path) {
            return kv;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("cannot reopen {}", path.display())
}

/// With an hour between syncs, writes are answered and visible before any fsync, and
/// a clean close keeps them.
#[tokio::test]
async fn interval_sync_writes_are_visible_at_once_and_kept_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    {
        let kv = EmbeddedKv::open_with(
            &path,
            argus_store::Durability::Interval(std::time::Duration::from_secs(3600)),
        )
        .unwrap();
        for i in 0..20 {
            kv.put(
                Table::Metrics,
                Item::new("g", format!("{i:02}")),
                Cond::Always,
            )
            .await
            .unwrap();
            // Visible at once, before any fsync.
            assert!(kv
                .get(Table::Metrics, "g", &format!("{i:02}"))
                .await
                .unwrap()
                .is_some());
        }
    }
    let kv = reopen(&path).await;
    assert_eq!(kv.query(Table::Metrics, "g", None).await.unwrap().len(), 20);
}

#[tokio::test]
async fn embedded_store_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    {
        let kv = EmbeddedKv::open(&path).unwrap();
        kv.put(
            Table::Alerts,
            Item::new("rule#g", "state").with_attr("x", "y"),
            Cond::Always,
        )
        .await
        .unwrap();
    }
    let kv = reopen(&path).await;
    assert_eq!(
        kv.get(Table::Alerts, "rule#g", "state")
            .await
            .unwrap()
            .unwrap()
            .attr_str("x"),
        Some("y")
    );
}

#[tokio::test]
async fn dynamodb_backend_honours_the_contract_on_moto() {
    let moto = argus_testkit::moto();
    let conf = argus_store::aws_sdk_config_for(Some(&moto.url())).await;
    let conf = conf
        .into_builder()
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "test"),
        ))
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .build();
    let mut lines = Vec::new();
    let report = bootstrap(&conf, "t-", &mut |l: &str| lines.push(l.to_string()))
        .await
        .unwrap();
    assert_eq!(report.created_tables.len(), 7, "{lines:?}");
    assert!(
        report.topic_arn.ends_with(":t-alerts"),
        "{}",
        report.topic_arn
    );
    // Idempotent: a second run creates nothing and returns the same topic.
    let again = bootstrap(&conf, "t-", &mut |_: &str| {}).await.unwrap();
    assert_eq!(
        (again.created_tables.len(), again.existing_tables.len()),
        (0, 7)
    );
    assert_eq!(again.topic_arn, report.topic_arn);
    contract(Arc::new(DynamoKv::from_conf(&conf, "t-"))).await;
}
