//! DynamoKv against the faults moto cannot make, through the fault proxy in front of
//! moto: throttling and 5xx are retried within the call's limits, a write applied but
//! answered with an error is recognised when its retry fails its own condition,
//! `UnprocessedItems` are written on a later attempt, a slow answer is cut at the
//! attempt timeout, a reset connection is retried, and what cannot be done within the
//! limits comes back as a retryable error (never as a lost race or a silent success).

use argus_model::{Cond, Item, Kv, StoreError, Table};
use argus_store::{AwsLimits, DynamoKv};
use argus_testkit::faults::{Fault, FaultProxy};
use std::time::Duration;

async fn setup() -> (argus_testkit::Peer, FaultProxy, DynamoKv) {
    let moto = argus_testkit::moto();
    let direct = sdk(&moto.url()).await;
    argus_store::bootstrap(&direct, "f-", &mut |_: &str| {})
        .await
        .unwrap();
    let proxy = FaultProxy::start(&moto.url()).await;
    let conf = argus_store::aws_sdk_config_with(
        Some(&proxy.url()),
        AwsLimits {
            attempt_timeout: Duration::from_millis(300),
            operation_timeout: Duration::from_secs(3),
            ..AwsLimits::default()
        },
    )
    .await;
    let conf = creds(conf);
    (moto, proxy, DynamoKv::from_conf(&conf, "f-"))
}

fn creds(conf: aws_config::SdkConfig) -> aws_config::SdkConfig {
    conf.into_builder()
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "test"),
        ))
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .build()
}

async fn sdk(url: &str) -> aws_config::SdkConfig {
    creds(argus_store::aws_sdk_config_for(Some(url)).await)
}

fn item(pk: &str, sk: &str, body: &str) -> Item {
    let mut i = Item::new(pk, sk);
    i.data = Some(body.as_bytes().to_vec());
    i
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_faults_are_retried_recognised_or_reported_as_retryable() {
    let (_moto, proxy, kv) = setup().await;

    // Throttling and 5xx before the call: the SDK retries; the write lands once.
    proxy.script(
        "PutItem",
        [
            Some(Fault::ProvisionedThroughputExceeded),
            Some(Fault::Throttling),
            Some(Fault::RequestLimitExceeded),
        ],
    );
    assert_eq!(
        kv.put(Table::Alerts, item("a", "1", "x"), Cond::NotExists)
            .await
            .unwrap(),
        1
    );
    proxy.script(
        "GetItem",
        [Some(Fault::InternalError), Some(Fault::Unavailable)],
    );
    let got = kv.get(Table::Alerts, "a", "1").await.unwrap().unwrap();
    assert_eq!((got.version, got.data.as_deref()), (1, Some(&b"x"[..])));

    // Applied, then answered 500: the SDK's retry fails the condition the first attempt
    // satisfied; the store sees its own write and reports success, not a lost race.
    proxy.script("PutItem", [Some(Fault::AfterCall)]);
    let v = kv
        .put(Table::Alerts, item("a", "1", "y"), Cond::Version(1))
        .await
        .unwrap();
    assert_eq!(v, 2);
    // The same for an answer slower than the attempt timeout, and for NotExists.
    proxy.script("PutItem", [Some(Fault::Slow(Duration::from_millis(700)))]);
    assert_eq!(
        kv.put(Table::Alerts, item("a", "1", "z"), Cond::Version(2))
            .await
            .unwrap(),
        3
    );
    proxy.script("PutItem", [Some(Fault::AfterCall)]);
    assert_eq!(
        kv.put(Table::Alerts, item("b", "1", "new"), Cond::NotExists)
            .await
            .unwrap(),
        1
    );
    // An identical write by another writer is not ours: a conflict, fault or not.
    proxy.script("PutItem", [Some(Fault::AfterCall)]);
    let twin = kv
        .put(Table::Alerts, item("b", "1", "new"), Cond::NotExists)
        .await;
    assert!(matches!(twin, Err(StoreError::Conflict(_))), "{twin:?}");
    // A real lost race stays a conflict, with or without a fault on the way.
    proxy.script("PutItem", [Some(Fault::AfterCall)]);
    let stale = kv
        .put(Table::Alerts, item("a", "1", "other"), Cond::Version(1))
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    let got = kv.get(Table::Alerts, "a", "1").await.unwrap().unwrap();
    assert_eq!((got.version, got.data.as_deref()), (3, Some(&b"z"[..])));

    // A delete applied, then answered 500: its retry finds the item gone, as asked.
    proxy.script("DeleteItem", [Some(Fault::AfterCall)]);
    kv.put(Table::Alerts, item("e", "1", "x"), Cond::NotExists)
        .await
        .unwrap();
    kv.delete(Table::Alerts, "e", "1", Cond::Version(1))
        .await
        .unwrap();
    assert!(kv.get(Table::Alerts, "e", "1").await.unwrap().is_none());
    // A delete at a stale version of an item that is still there stays a conflict.
    let e = kv
        .delete(Table::Alerts, "a", "1", Cond::Version(1))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");

    // A connection reset before the answer: retried.
    proxy.script("GetItem", [Some(Fault::Reset)]);
    assert!(kv.get(Table::Alerts, "b", "1").await.unwrap().is_some());

    // TransactionConflictException is retried by the SDK (our classifier) ...
    proxy.script("PutItem", [Some(Fault::TransactionConflict)]);
    assert_eq!(
        kv.put(Table::Alerts, item("c", "0", "x"), Cond::NotExists)
            .await
            .unwrap(),
        1
    );
    // ... and past the attempts allowed it is retryable, never a lost race.
    proxy.script(
        "PutItem",
        std::iter::repeat_n(Some(Fault::TransactionConflict), 4),
    );
    let e = kv
        .put(Table::Alerts, item("c", "1", "x"), Cond::NotExists)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Transient(_)), "{e:?}");
    assert!(e.is_retryable());

    // Throttled past the attempts allowed: a retryable error, and nothing written.
    proxy.script(
        "PutItem",
        std::iter::repeat_n(Some(Fault::ProvisionedThroughputExceeded), 4),
    );
    let e = kv
        .put(Table::Alerts, item("d", "1", "x"), Cond::NotExists)
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert!(kv.get(Table::Alerts, "d", "1").await.unwrap().is_none());

    // UnprocessedItems: every item is written in the end, each exactly as sent.
    proxy.script(
        "BatchWriteItem",
        [
            Some(Fault::Unprocessed),
            Some(Fault::Unprocessed),
            Some(Fault::Throttling),
            Some(Fault::Unprocessed),
        ],
    );
    let items: Vec<Item> = (0..40)
        .map(|i| item("s", &format!("{i:03}"), &format!("v{i}")))
        .collect();
    kv.put_batch(Table::Samples, items).await.unwrap();
    let stored = kv.query(Table::Samples, "s", None).await.unwrap();
    assert_eq!(stored.len(), 40);
    for (i, it) in stored.iter().enumerate() {
        assert_eq!(it.data.as_deref(), Some(format!("v{i}").as_bytes()));
    }
    assert!(proxy.unprocessed_items() > 0);
    let injected = proxy.injected();
    assert_eq!(injected["UnprocessedItems"], 3, "{injected:?}");
    assert_eq!(injected["500AfterCall"], 5, "{injected:?}");
    assert_eq!(injected["SlowAnswer"], 1, "{injected:?}");
    assert_eq!(injected["ConnectionReset"], 1, "{injected:?}");
    eprintln!(
        "faults injected: {injected:?}; requests: {:?}",
        proxy.requests()
    );
}
