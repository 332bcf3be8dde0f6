//! The end-to-end pipeline (probe → gateway → evaluator → notifier → webhook and SNS →
//! SQS) on DynamoDB and SNS in moto, through the fault proxy: the faults moto cannot make
//! (throttling, 5xx, transaction conflicts, `UnprocessedItems`, slow answers past the
//! SDK's attempt timeout, connection resets, errors after the call was applied, SNS
//! throttling and 500s) at fixed rates with a fixed seed, plus a full outage of two
//! ticks at the moment the alert fires. The same scenario first runs without faults, as
//! the baseline for the delays.
//!
//! Asserted: every state change reaches the webhook exactly once and SNS at least once,
//! with every SNS duplicate explained by a fault injected after a publish; a tick that
//! cannot finish leaves its work to the next one (nothing lost); no SDK call takes more
//! attempts than configured; and afterwards every stored item decodes and a fault-free
//! tick reports no error. The figures go to docs/reliability.md (`## AWS faults`); the
//! test prints them (`cargo nextest run -p argus-e2e --test e2e_faults --no-capture`).

mod common;

use argus_app::pipeline::Pipeline;
use argus_model::{Kv, Table, Target};
use argus_store::{AwsLimits, DynamoKv};
use argus_testkit::faults::{Fault, FaultProxy};
use common::{write_config, Hook, Site};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const STEP_MS: i64 = 15_000;

fn limits() -> AwsLimits {
    AwsLimits {
        attempt_timeout: Duration::from_millis(300),
        operation_timeout: Duration::from_secs(3),
        connect_timeout: Duration::from_secs(1),
        max_attempts: 4,
    }
}

async fn sdk(endpoint: &str, limits: AwsLimits) -> aws_config::SdkConfig {
    argus_store::aws_sdk_config_with(Some(endpoint), limits)
        .await
        .into_builder()
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "test"),
        ))
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .build()
}

/// What one run of the scenario observed.
#[derive(Debug, Default)]
struct Run {
    /// Step (15 s each) at which each status reached the webhook.
    hook_steps: Vec<(String, usize)>,
    /// Ticks that returned an error (their work is left to the next tick).
    failed_ticks: usize,
    ticks: usize,
    /// Wall time of the slowest tick (all AWS calls and their retries).
    slowest_tick: Duration,
    hook_statuses: Vec<String>,
    sns_statuses: Vec<String>,
}

/// Site fails at step 1; recovers once the firing notification is out (or at step 12).
async fn scenario(
    moto_url: &str,
    proxy: Option<&FaultProxy>,
    prefix: &str,
    outage_at_fire: bool,
) -> Run {
    let direct = sdk(moto_url, AwsLimits::default()).await;
    let boot = argus_store::bootstrap(&direct, prefix, &mut |_: &str| {})
        .await
        .unwrap();
    let sqs = aws_sdk_sqs::Client::new(&direct);
    let queue = sqs
        .create_queue()
        .queue_name(format!("{prefix}q"))
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
    aws_sdk_sns::Client::new(&direct)
        .subscribe()
        .topic_arn(&boot.topic_arn)
        .protocol("sqs")
        .endpoint(&qarn)
        .send()
        .await
        .unwrap();

    let healthy = Site::start(200).await;
    let flaky = Site::start(200).await;
    let hook = Hook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &hook.url, Some(&boot.topic_arn));
    let direct_kv = DynamoKv::from_conf(&direct, prefix);
    for site in [&healthy, &flaky] {
        argus_app::targets::add(&direct_kv, &Target::new(&site.url))
            .await
            .unwrap();
    }
    let faulty = match proxy {
        Some(p) => sdk(&p.url(), limits()).await,
        None => sdk(moto_url, limits()).await,
    };
    let kv: Arc<dyn Kv> = Arc::new(DynamoKv::from_conf(&faulty, prefix));
    let p = Pipeline::build(kv, cfg, Some(&faulty))
        .await
        .expect("pipeline builds");

    let mut run = Run::default();
    let mut now = argus_model::Clock::now_ms(&argus_model::SystemClock);
    let mut recovered = false;
    let mut outage_left = if outage_at_fire { 2 } else { 0 };
    for step in 0..40 {
        if step == 1 {
            flaky.set_status(500);
        }
        // The tick at which the alert fires in the baseline (pending for 30 s)
        // gets a full outage: every AWS call fails for two ticks.
        if let (Some(proxy), true) = (proxy, step >= 3 && outage_left > 0) {
            proxy.rate("*", 1.0, Fault::Unavailable);
            proxy.rate("*", 1.0, Fault::SnsInternal);
        }
        now += STEP_MS;
        run.ticks += 1;
        let started = std::time::Instant::now();
        let result = p.tick_all(now).await;
        run.slowest_tick = run.slowest_tick.max(started.elapsed());
        match result {
            Ok(report) => eprintln!("{prefix} step {step}: {report}"),
            Err(e) => {
                run.failed_ticks += 1;
                eprintln!("{prefix} step {step}: tick failed, left for the next: {e:#}");
            }
        }
        if let (Some(proxy), true) = (proxy, step >= 3 && outage_left > 0) {
            outage_left -= 1;
            proxy.clear_rates();
            set_rates(proxy);
        }
        let statuses = hook.statuses();
        for s in statuses.iter().skip(run.hook_steps.len()) {
            run.hook_steps.push((s.clone(), step));
        }
        if !recovered && (statuses.iter().any(|s| s == "firing") || step == 12) {
            flaky.set_status(200);
            recovered = true;
        }
        if recovered && statuses.iter().any(|s| s == "resolved") {
            // A few more ticks: nothing may repeat.
            if run.hook_steps.last().is_some_and(|(_, at)| step >= at + 4) {
                break;
            }
        }
    }
    run.hook_statuses = hook.statuses();

    // SNS → SQS: every message, duplicates included.
    for _ in 0..6 {
        let out = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .send()
            .await
            .unwrap();
        if out.messages().is_empty() {
            break;
        }
        for m in out.messages() {
            let envelope: serde_json::Value = serde_json::from_str(m.body().unwrap()).unwrap();
            let body: serde_json::Value =
                serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
            run.sns_statuses
                .push(body["status"].as_str().unwrap().to_string());
            sqs.delete_message()
                .queue_url(&queue)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }

    // Nothing stored is corrupt: every item of every table decodes with its reader, and
    // a fault-free pipeline over the same tables ticks without an error.
    check_stored(&direct_kv, now).await;
    let direct_kv: Arc<dyn Kv> = Arc::new(direct_kv);
    let cfg = write_config(dir.path(), &hook.url, Some(&boot.topic_arn));
    let clean = Pipeline::build(direct_kv, cfg, Some(&direct))
        .await
        .unwrap();
    let report = clean.tick_all(now + STEP_MS).await.unwrap();
    assert!(report.eval.errors.is_empty(), "{:?}", report.eval.errors);
    assert!(
        report.notify.errors.is_empty(),
        "{:?}",
        report.notify.errors
    );
    assert_eq!(report.notify.sent().count(), 0, "{report}");
    assert_eq!(hook.statuses(), run.hook_statuses, "a clean tick re-sent");
    run
}

fn set_rates(proxy: &FaultProxy) {
    for (p, f) in [
        (0.03, Fault::Throttling),
        (0.03, Fault::ProvisionedThroughputExceeded),
        (0.02, Fault::RequestLimitExceeded),
        (0.02, Fault::InternalError),
        (0.02, Fault::Unavailable),
        (0.01, Fault::TransactionConflict),
        (0.01, Fault::Reset),
        (0.03, Fault::AfterCall),
        (0.01, Fault::Slow(Duration::from_millis(500))),
    ] {
        proxy.rate("*", p, f);
    }
    proxy.rate("BatchWriteItem", 0.3, Fault::Unprocessed);
    proxy.rate("Publish", 0.15, Fault::SnsThrottling);
    proxy.rate("Publish", 0.10, Fault::SnsInternal);
    proxy.rate("Publish", 0.10, Fault::AfterCall);
}

async fn check_stored(kv: &DynamoKv, now: i64) {
    use argus_pushgw::group;
    let mut decoded = BTreeMap::new();
    for t in kv.scan(Table::Targets).await.unwrap() {
        Target::from_item(&t).unwrap_or_else(|e| panic!("target {}: {e}", t.pk));
        *decoded.entry("targets").or_insert(0) += 1;
    }
    for it in kv.scan(Table::Metrics).await.unwrap() {
        let Some(data) = &it.data else { continue };
        if it.pk == argus_pushgw::BUNDLE_PK {
            group::decode_bundle(data).unwrap_or_else(|e| panic!("bundle {}: {e}", it.sk));
            *decoded.entry("metric bundles").or_insert(0) += 1;
        } else if group::decode(data).is_ok() {
            *decoded.entry("metric groups").or_insert(0) += 1;
        }
    }
    for it in kv.scan(Table::Results).await.unwrap() {
        if it.pk != argus_app::results::RUNS_PK {
            continue; // rollups and remote-write backlogs have their own tests
        }
        let rows = argus_app::results::rows_of(&it);
        assert!(
            rows.is_ok(),
            "results item {}/{} does not decode: {:?}",
            it.pk,
            it.sk,
            rows.err()
        );
        *decoded.entry("result runs").or_insert(0) += 1;
    }
    let chunks = argus_app::tsdb::read_chunks(kv, 0)
        .await
        .expect("chunks decode");
    decoded.insert("sample chunks", chunks.len());
    let notifier_items = kv.scan(Table::Alerts).await.unwrap().len();
    decoded.insert(
        "alerts-table items (read by the clean tick)",
        notifier_items,
    );
    decoded.insert("nflog items", kv.scan(Table::Nflog).await.unwrap().len());
    let _ = now;
    eprintln!("stored items checked: {decoded:?}");
    assert!(decoded["sample chunks"] > 0 && decoded["result runs"] > 0);
}

fn count(v: &[String], s: &str) -> usize {
    v.iter().filter(|x| *x == s).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_alert_arrives_through_injected_aws_faults() {
    let moto = argus_testkit::moto();
    let base = scenario(&moto.url(), None, "base-", false).await;
    assert_eq!(base.hook_statuses, ["firing", "resolved"]);
    assert_eq!(base.failed_ticks, 0);

    let proxy = FaultProxy::start(&moto.url()).await;
    proxy.seed(17);
    set_rates(&proxy);
    // SNS: a throttle and a 500 before the first publish goes through, then one publish
    // applied but answered 500 (the SDK's retry publishes it again: a duplicate).
    proxy.script(
        "Publish",
        [
            Some(Fault::SnsThrottling),
            Some(Fault::SnsInternal),
            None,
            Some(Fault::AfterCall),
        ],
    );
    let run = scenario(&moto.url(), Some(&proxy), "flt-", true).await;
    let injected = proxy.injected();
    let by_op = proxy.injected_by_operation();
    let attempts = proxy.attempts();

    let dup = run.sns_statuses.len().saturating_sub(2);
    let delay = |r: &Run, s: &str| r.hook_steps.iter().find(|(x, _)| x == s).map(|(_, at)| *at);
    let longest = ["firing", "resolved"]
        .iter()
        .map(|s| {
            (delay(&run, s).unwrap() as i64 - delay(&base, s).unwrap() as i64) * STEP_MS / 1000
        })
        .max()
        .unwrap();
    println!("FIGURES aws-faults");
    println!("faults injected by kind: {injected:?}");
    println!("faults injected by operation: {by_op:?}");
    println!(
        "unprocessed write requests held back: {}",
        proxy.unprocessed_items()
    );
    println!("requests by operation: {:?}", proxy.requests());
    println!(
        "sdk calls {} retried {} retries {} max attempts of one call {}",
        attempts.calls, attempts.retried_calls, attempts.retries, attempts.max_attempts
    );
    println!(
        "ticks {} failed (left for the next) {}; slowest tick {:?} (baseline {:?})",
        run.ticks, run.failed_ticks, run.slowest_tick, base.slowest_tick
    );
    println!(
        "webhook: expected 2 delivered {} duplicated 0 lost 0; sns: expected 2 delivered {} duplicated {dup} lost 0",
        run.hook_statuses.len(),
        run.sns_statuses.len()
    );
    println!(
        "steps (15 s) to webhook delivery: baseline {:?} with faults {:?}; longest extra delay {longest} s",
        base.hook_steps, run.hook_steps
    );
    // Webhooks are not behind the proxy: each state change exactly once.
    assert_eq!(run.hook_statuses, ["firing", "resolved"], "{run:?}");
    // SNS: at least once; a duplicate only where a publish was applied but answered
    // with an error (500 after the call, or an answer slower than the attempt timeout).
    for s in ["firing", "resolved"] {
        assert!(count(&run.sns_statuses, s) >= 1, "{s} lost on SNS: {run:?}");
    }
    let applied_then_failed = by_op.get("Publish/500AfterCall").copied().unwrap_or(0)
        + by_op.get("Publish/SlowAnswer").copied().unwrap_or(0);
    assert!(
        dup as u64 <= applied_then_failed,
        "{dup} duplicates: {by_op:?}"
    );
    assert!(applied_then_failed >= 1, "{by_op:?}");
    // The outage ticks failed and their work was done by a later tick.
    assert!(run.failed_ticks >= 1, "{run:?}");
    // Bounded retries: no SDK call made more attempts than configured.
    assert!(
        attempts.max_attempts <= limits().max_attempts,
        "{attempts:?}"
    );
    assert!(injected.values().sum::<u64>() > 20, "{injected:?}");
}
