//! The whole path, end to end, with time driven by the test:
//! two local sites (one healthy, one that starts failing) → probe → pushgateway →
//! evaluator (`probe_success == 0` with `for:` two intervals) → notifier → SNS (→ SQS)
//! and a webhook receiver (Alertmanager v4 body). Runs on DynamoDB in moto and on the
//! embedded store; the same services, the same assertions.

mod common;

use argus_app::pipeline::Pipeline;
use argus_model::{Kv, Target};
use common::{write_config, Hook, Site};
use std::sync::Arc;
use std::time::Duration;

const STEP_MS: i64 = 15_000;

/// Drives the pipeline one tick at a time until `done` or `max_steps`.
async fn step(p: &Pipeline, now: &mut i64) {
    *now += STEP_MS;
    let report = p.tick_all(*now).await.expect("pipeline tick");
    eprintln!("t+{}s: {report}", (*now / 1000) % 100_000);
}

async fn scenario(
    kv: Arc<dyn Kv>,
    sdk: Option<aws_config::SdkConfig>,
    topic_arn: Option<String>,
) -> Hook {
    let healthy = Site::start(200).await;
    let flaky = Site::start(200).await;
    let hook = Hook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &hook.url, topic_arn.as_deref());
    argus_app::targets::add(kv.as_ref(), &Target::new(&healthy.url))
        .await
        .unwrap();
    argus_app::targets::add(kv.as_ref(), &Target::new(&flaky.url))
        .await
        .unwrap();
    let p = Pipeline::build(kv.clone(), cfg, sdk.as_ref())
        .await
        .expect("pipeline builds");

    let mut now = argus_model::Clock::now_ms(&argus_model::SystemClock);
    step(&p, &mut now).await;
    assert!(hook.bodies.lock().unwrap().is_empty());

    flaky.set_status(500);
    // Pending for `for: 30s` (two evaluation intervals), then firing.
    step(&p, &mut now).await;
    step(&p, &mut now).await;
    assert!(
        hook.bodies.lock().unwrap().is_empty(),
        "fired before `for` elapsed"
    );
    for _ in 0..3 {
        step(&p, &mut now).await;
        if !hook.bodies.lock().unwrap().is_empty() {
            break;
        }
    }
    assert_eq!(
        hook.statuses(),
        ["firing"],
        "exactly one firing notification"
    );
    {
        let b = &hook.bodies.lock().unwrap()[0];
        assert_eq!(b["version"], "4");
        assert_eq!(b["receiver"], "ops");
        assert_eq!(b["alerts"][0]["labels"]["alertname"], "SiteDown");
        assert_eq!(b["alerts"][0]["labels"]["instance"], flaky.url.as_str());
        assert_eq!(b["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
        assert_eq!(
            b["alerts"][0]["annotations"]["summary"],
            format!("{} is down", flaky.url)
        );
        assert_eq!(
            b["groupKey"],
            format!(
                "{{}}:{{alertname=\"SiteDown\", instance=\"{}\"}}",
                flaky.url
            )
        );
    }

    // Recovery → resolved, once.
    flaky.set_status(200);
    for _ in 0..8 {
        step(&p, &mut now).await;
        if hook.bodies.lock().unwrap().len() > 1 {
            break;
        }
    }
    // A few more ticks must not repeat anything.
    for _ in 0..4 {
        step(&p, &mut now).await;
    }
    assert_eq!(hook.statuses(), ["firing", "resolved"]);
    for b in hook.bodies.lock().unwrap().iter() {
        for a in b["alerts"].as_array().unwrap() {
            assert_ne!(
                a["labels"]["instance"],
                healthy.url.as_str(),
                "the healthy site alerted"
            );
        }
    }
    assert!(
        healthy.hits.load(std::sync::atomic::Ordering::SeqCst) >= 10,
        "healthy site was probed every tick"
    );
    hook
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_down_alerts_and_resolves_on_the_embedded_store() {
    let kv = Arc::new(argus_store::EmbeddedKv::open_temp().unwrap());
    scenario(kv, None, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_down_alerts_and_resolves_on_dynamodb_and_sns_in_moto() {
    let moto = argus_testkit::moto();
    for (k, v) in argus_testkit::aws_env(&moto.url()) {
        // SAFETY: set before any SDK client is built in this test process' test thread.
        unsafe { std::env::set_var(k, v) };
    }
    let sdk = argus_store::aws_sdk_config_for(Some(&moto.url())).await;
    let report = argus_store::bootstrap(&sdk, "e2e-", &mut |_: &str| {})
        .await
        .unwrap();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue = sqs
        .create_queue()
        .queue_name("alerts")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let qarn = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    let sns = aws_sdk_sns::Client::new(&sdk);
    sns.subscribe()
        .topic_arn(&report.topic_arn)
        .protocol("sqs")
        .endpoint(&qarn)
        .send()
        .await
        .unwrap();

    let kv = Arc::new(argus_store::DynamoKv::from_conf(&sdk, "e2e-"));
    scenario(kv, Some(sdk.clone()), Some(report.topic_arn.clone())).await;

    // The same two notifications reached SNS → SQS, with attributes for filter policies.
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let out = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in out.messages() {
            let envelope: serde_json::Value = serde_json::from_str(m.body().unwrap()).unwrap();
            let attrs = &envelope["MessageAttributes"];
            assert_eq!(attrs["alertname"]["Value"], "SiteDown");
            assert_eq!(attrs["severity"]["Value"], "page");
            let body: serde_json::Value =
                serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
            assert_eq!(body["version"], "4");
            assert_eq!(attrs["status"]["Value"], body["status"]);
            statuses.push(body["status"].as_str().unwrap().to_string());
            sqs.delete_message()
                .queue_url(&queue)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
        if statuses.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(statuses, ["firing", "resolved"]);
}
