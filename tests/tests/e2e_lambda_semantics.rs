//! Lambda's own semantics, through the functions' handlers (`argus_app::handlers`) on
//! DynamoDB in moto behind the fault proxy, with time stepped by the test:
//!
//! - an asynchronous invocation that fails is retried twice by Lambda: every event is
//!   processed three times, the first failing part-way (one AWS call fails all its
//!   attempts after a seeded number of successful ones);
//! - an invocation stopped at its timeout: the probe or evaluator task is aborted at a
//!   seeded random moment, and the next invocation runs as scheduled;
//! - a stream batch delivered twice, and one whose tick partly fails (a receiver down);
//! - two schedule events at once (EventBridge delivers at least once).
//!
//! In each: every state change reaches the webhook exactly once, and afterwards every
//! stored item decodes and a clean tick reports no error. Figures: docs/reliability.md
//! (`## Lambda semantics`); `cargo nextest run -p argus-e2e --test e2e_lambda_semantics
//! --no-capture` prints them.

mod common;

use argus_app::handlers;
use argus_app::pipeline::Pipeline;
use argus_model::{Kv, Table, Target};
use argus_store::{AwsLimits, DynamoKv};
use argus_testkit::faults::{Fault, FaultProxy};
use common::{write_config, Hook, Site};
use lambda_runtime::{Context, LambdaEvent};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const STEP_MS: i64 = 15_000;

struct World {
    _moto: argus_testkit::Peer,
    proxy: FaultProxy,
    direct: DynamoKv,
    hook: Hook,
    flaky: Site,
    _healthy: Site,
    p: Arc<Pipeline>,
    _dir: tempfile::TempDir,
    now: i64,
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

impl World {
    async fn new() -> World {
        let moto = argus_testkit::moto();
        let direct_sdk = sdk(&moto.url(), AwsLimits::default()).await;
        argus_store::bootstrap(&direct_sdk, "ls-", &mut |_: &str| {})
            .await
            .unwrap();
        let proxy = FaultProxy::start(&moto.url()).await;
        let healthy = Site::start(200).await;
        let flaky = Site::start(200).await;
        let hook = Hook::start().await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = write_config(dir.path(), &hook.url, None);
        let direct = DynamoKv::from_conf(&direct_sdk, "ls-");
        for s in [&healthy, &flaky] {
            argus_app::targets::add(&direct, &Target::new(&s.url))
                .await
                .unwrap();
        }
        let limits = AwsLimits {
            attempt_timeout: Duration::from_millis(300),
            operation_timeout: Duration::from_secs(3),
            ..AwsLimits::default()
        };
        let faulty = sdk(&proxy.url(), limits).await;
        let kv: Arc<dyn Kv> = Arc::new(DynamoKv::from_conf(&faulty, "ls-"));
        // The pipeline as `Pipeline::build` makes it, with a short send budget so that a
        // receiver that is down costs a second of the test, not the default 20 s.
        let gateway = Arc::new(
            argus_app::pipeline::build_gateway(
                kv.clone(),
                &cfg,
                argus_app::pipeline::StoreAccess::Shared,
                None,
            )
            .unwrap(),
        );
        let probe =
            Arc::new(argus_app::pipeline::build_probe(kv.clone(), &cfg, gateway.clone()).unwrap());
        let notifier = Arc::new(
            argus_app::pipeline::build_notifier(
                kv.clone(),
                &cfg,
                argus_app::pipeline::StoreAccess::Shared,
                None,
                None,
                None,
            )
            .await
            .unwrap()
            .with_options(argus_notify::NotifierOptions {
                send_budget: Duration::from_secs(1),
                ..Default::default()
            }),
        );
        let (evaluator, warnings) = argus_app::pipeline::build_evaluator(
            kv.clone(),
            &cfg,
            argus_app::pipeline::StoreAccess::Shared,
            gateway.clone(),
            notifier.clone(),
        )
        .unwrap();
        let p = Arc::new(Pipeline {
            kv,
            config: cfg,
            gateway,
            probe,
            evaluator: Arc::new(evaluator),
            notifier,
            access: argus_app::pipeline::StoreAccess::Shared,
            warnings,
            locations: Vec::new(),
        });
        World {
            _moto: moto,
            proxy,
            direct,
            hook,
            flaky,
            _healthy: healthy,
            p,
            _dir: dir,
            now: argus_model::Clock::now_ms(&argus_model::SystemClock),
        }
    }

    /// The site fails from step 1 and recovers once the firing notification is out.
    fn script_site(&self, step: usize) {
        if step == 1 {
            self.flaky.set_status(500);
        }
        if self.hook.statuses().iter().any(|s| s == "firing") {
            self.flaky.set_status(200);
        }
    }

    fn done(&self) -> bool {
        self.hook.statuses().len() >= 2
    }

    /// Every stored item decodes, and a fault-free tick over the same tables reports
    /// no error and sends nothing.
    async fn check_consistent(&self) {
        self.proxy.clear();
        for t in self.direct.scan(Table::Targets).await.unwrap() {
            Target::from_item(&t).unwrap();
        }
        for it in self.direct.scan(Table::Results).await.unwrap() {
            if it.pk == argus_app::results::RUNS_PK {
                let rows = argus_app::results::rows_of(&it);
                assert!(rows.is_ok(), "{}: {:?}", it.sk, rows.err());
            }
        }
        for it in self.direct.scan(Table::Metrics).await.unwrap() {
            if it.pk == argus_pushgw::BUNDLE_PK {
                argus_pushgw::group::decode_bundle(it.data.as_deref().unwrap()).unwrap();
            }
        }
        argus_app::tsdb::read_chunks(&self.direct, 0).await.unwrap();
        let before = self.hook.statuses();
        let r = self.p.tick_all(self.now + STEP_MS).await.unwrap();
        assert!(r.eval.errors.is_empty(), "{:?}", r.eval.errors);
        assert!(r.notify.errors.is_empty(), "{:?}", r.notify.errors);
        assert_eq!(r.notify.sent().count(), 0, "{r}");
        assert_eq!(self.hook.statuses(), before);
    }
}

fn ev(payload: Value) -> LambdaEvent<Value> {
    LambdaEvent::new(payload, Context::default())
}

fn schedule() -> Value {
    json!({"version": "0", "id": "e", "detail-type": "Scheduled Event", "source": "aws.events",
           "account": "123456789012", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
           "resources": [], "detail": {}})
}

#[derive(Clone, Copy, Debug)]
enum Function {
    Probe,
    Evaluator,
    Notifier,
}

async fn invoke(p: &Pipeline, f: Function, payload: Value, now: i64) -> Result<Value, String> {
    let r = match f {
        Function::Probe => handlers::probe(&p.probe, None, ev(payload), now).await,
        Function::Evaluator => handlers::evaluator(&p.evaluator, ev(payload), now).await,
        Function::Notifier => handlers::notifier(&p.notifier, ev(payload), now).await,
    };
    r.map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_invocations_retried_twice_after_an_error_do_not_duplicate() {
    let mut w = World::new().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let (mut first_failed, mut steps) = (0, 0);
    for step in 0..16 {
        w.script_site(step);
        w.now += STEP_MS;
        steps += 1;
        for f in [Function::Probe, Function::Evaluator, Function::Notifier] {
            // Attempt 1 fails part-way: after a few calls, one call fails every attempt.
            let ok_calls = rng.random_range(0..6);
            w.proxy.script(
                "*",
                std::iter::repeat_n(None, ok_calls)
                    .chain(std::iter::repeat_n(Some(Fault::Unavailable), 4)),
            );
            let first = invoke(&w.p, f, schedule(), w.now).await;
            w.proxy.clear();
            if first.is_err() {
                first_failed += 1;
            }
            // Lambda's two retries of the same event (the second is a duplicate when
            // the first retry succeeded).
            for _ in 0..2 {
                invoke(&w.p, f, schedule(), w.now)
                    .await
                    .unwrap_or_else(|e| panic!("{f:?} retry failed: {e}"));
            }
        }
        if w.done() && step > 8 {
            break;
        }
    }
    assert_eq!(w.hook.statuses(), ["firing", "resolved"]);
    // One run item per scheduled time, however often its event was processed.
    let runs = w.direct.scan(Table::Results).await.unwrap().len();
    assert!(
        runs <= steps,
        "{runs} result runs for {steps} schedule times"
    );
    w.check_consistent().await;
    println!(
        "FIGURES lambda-async-retries: {steps} schedule times x 3 functions, each event processed 3 times; first attempt failed {first_failed}; webhook {:?} (expected 2, duplicated 0, lost 0); result runs {runs}; faults {:?}",
        w.hook.statuses(),
        w.proxy.injected()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocations_killed_halfway_leave_consistent_state() {
    let mut w = World::new().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let (mut killed, mut completed) = (0, 0);
    let mut steps = 0;
    for step in 0..30 {
        w.script_site(step);
        w.now += STEP_MS;
        steps += 1;
        for f in [Function::Probe, Function::Evaluator] {
            // Most invocations are stopped at a random moment of their run.
            if rng.random_bool(0.7) {
                let (p, now) = (w.p.clone(), w.now);
                let task = tokio::spawn(async move { invoke(&p, f, schedule(), now).await });
                let at = Duration::from_millis(rng.random_range(0..60));
                tokio::time::sleep(at).await;
                if task.is_finished() {
                    completed += 1;
                } else {
                    killed += 1;
                }
                task.abort();
                let _ = task.await;
            } else {
                invoke(&w.p, f, schedule(), w.now).await.unwrap();
                completed += 1;
            }
        }
        invoke(&w.p, Function::Notifier, schedule(), w.now)
            .await
            .unwrap();
        if w.done() && step > 10 {
            break;
        }
    }
    assert!(
        killed > 3,
        "only {killed} invocations were stopped part-way"
    );
    assert_eq!(w.hook.statuses(), ["firing", "resolved"]);
    w.check_consistent().await;
    println!(
        "FIGURES lambda-killed: {steps} schedule times; probe/evaluator invocations stopped part-way {killed}, completed {completed}; webhook {:?} (expected 2, duplicated 0, lost 0)",
        w.hook.statuses()
    );
}

fn stream(seqs: &[&str]) -> Value {
    let records: Vec<Value> = seqs
        .iter()
        .map(|s| json!({"eventID": format!("e{s}"), "eventName": "INSERT", "eventSource": "aws:dynamodb",
                        "awsRegion": "us-east-1", "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/ls-alerts/stream/x",
                        "dynamodb": {"Keys": {"pk": {"S": "am"}}, "SequenceNumber": s, "SizeBytes": 30, "StreamViewType": "NEW_IMAGE"}}))
        .collect();
    json!({ "Records": records })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_batches_twice_partly_failing_and_two_schedule_events_at_once() {
    let mut w = World::new().await;
    let mut partial = Vec::new();
    let mut seq = 100;
    for step in 0..20 {
        w.script_site(step);
        w.now += STEP_MS;
        // Two schedule events at once for the probe and the evaluator.
        let (a, b) = tokio::join!(
            invoke(&w.p, Function::Probe, schedule(), w.now),
            invoke(&w.p, Function::Probe, schedule(), w.now)
        );
        a.unwrap();
        b.unwrap();
        let (a, b) = tokio::join!(
            invoke(&w.p, Function::Evaluator, schedule(), w.now),
            invoke(&w.p, Function::Evaluator, schedule(), w.now)
        );
        a.unwrap();
        b.unwrap();
        // The receiver is down until a batch has partly failed because of it.
        if partial.is_empty() {
            w.hook.set_status(500);
        }
        let seqs = [format!("{seq}"), format!("{}", seq + 1)];
        seq += 2;
        let batch = stream(&[&seqs[0], &seqs[1]]);
        // The batch, and the same batch again, and a schedule tick at the same time.
        let (r1, r2, r3) = tokio::join!(
            invoke(&w.p, Function::Notifier, batch.clone(), w.now),
            invoke(&w.p, Function::Notifier, batch, w.now),
            invoke(&w.p, Function::Notifier, schedule(), w.now)
        );
        for r in [&r1, &r2] {
            let failures = r.as_ref().unwrap()["batchItemFailures"].clone();
            if failures.as_array().is_some_and(|a| !a.is_empty()) {
                partial.push(failures);
            }
        }
        r3.unwrap();
        w.hook.set_status(200);
        if w.done() && step > 8 {
            break;
        }
    }
    assert_eq!(w.hook.statuses(), ["firing", "resolved"]);
    assert!(!partial.is_empty(), "no batch failed part-way");
    for f in &partial {
        assert_eq!(f.as_array().unwrap().len(), 1, "{f}: only the last record");
    }
    w.check_consistent().await;
    println!(
        "FIGURES lambda-stream: batches reported partly failed {} ({:?}); webhook {:?} (expected 2, duplicated 0, lost 0)",
        partial.len(),
        partial,
        w.hook.statuses()
    );
}
