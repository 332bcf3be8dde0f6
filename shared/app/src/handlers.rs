//! The five functions' handlers, one named function each (as in the Lambda runtime's
//! `basic-sdk` example): parse the event, call one service method within the
//! invocation's deadline, map the result. `functions/*` build the service at cold
//! start and pass these to `lambda_runtime::run`; the tests call them with events
//! shaped as AWS sends them.
//!
//! The deadline: Lambda stops an invocation at its timeout wherever it is. A handler
//! stops its work [`MARGIN`] before that (see [`lambda::within`]) so it can still
//! answer: a stream batch then reports its records failed (Lambda redelivers them), an
//! asynchronous invocation returns an error (Lambda retries it twice), an HTTP request
//! gets a 503. Either way the work left is found by the next invocation.

use crate::evaluator::Evaluator;
use crate::lambda::{self, classify, stream_response, url_response, Invocation, StreamOutcome};
use crate::probe_svc::{FanOut, ProbeService};
use argus_model::Millis;
use argus_notify::Notifier;
use argus_pushgw::Gateway;
use bytes::Bytes;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;
use std::time::Duration;

/// Time kept back from the invocation's timeout to answer.
pub const MARGIN: Duration = Duration::from_millis(1500);

fn budget<T>(event: &LambdaEvent<T>, now: Millis) -> Option<Duration> {
    lambda::budget(event.context.deadline, now, MARGIN)
}

/// A function URL request answered by `answer` within the deadline (503 after it).
async fn url_request<F>(budget: Option<Duration>, answer: F) -> Result<Value, Error>
where
    F: std::future::Future<Output = http::Response<Bytes>>,
{
    let resp = match lambda::within(budget, answer).await {
        Ok(r) => r,
        Err(e) => unavailable(&e),
    };
    Ok(serde_json::to_value(url_response(resp))?)
}

fn unavailable(e: &lambda::DeadlineReached) -> http::Response<Bytes> {
    http::Response::builder()
        .status(503)
        .header("content-type", "text/plain; charset=utf-8")
        .header("retry-after", "1")
        .body(Bytes::from(format!("{e}\n")))
        .expect("static response")
}

/// probe: a schedule tick probes the due targets (fanning out above the per-invocation
/// limit); a fan-out shard probes exactly its targets.
pub async fn probe(
    svc: &ProbeService,
    fan_out: Option<&dyn FanOut>,
    event: LambdaEvent<Value>,
    now: Millis,
) -> Result<Value, Error> {
    let budget = budget(&event, now);
    let report = match classify(event.payload)? {
        Invocation::Shard { targets, slot } => {
            lambda::within(budget, svc.run_ids(&targets, &slot, now)).await??
        }
        Invocation::Http(_) => {
            return Err("the probe function takes schedule and shard events".into())
        }
        _ => lambda::within(budget, svc.run(now, fan_out)).await??,
    };
    tracing::info!(
        probed = report.probed.len(),
        up = report.up(),
        fanned_out = report.fanned_out,
        "{report}"
    );
    Ok(report.summary())
}

/// evaluator: one evaluation of every rule group at `now`.
pub async fn evaluator(
    svc: &Evaluator,
    event: LambdaEvent<Value>,
    now: Millis,
) -> Result<Value, Error> {
    let report = lambda::within(budget(&event, now), svc.tick(now)).await??;
    tracing::info!(
        series = report.series,
        firing = report.firing.len(),
        "{report}"
    );
    Ok(report.summary())
}

/// notifier: the Alertmanager v2 API on the function URL; a stream batch of the alerts
/// table or a schedule tick flushes the due groups. A stream batch answers with the
/// partial-batch response (`ReportBatchItemFailures`, see [`lambda::stream_response`]).
pub async fn notifier(
    svc: &Notifier,
    event: LambdaEvent<Value>,
    now: Millis,
) -> Result<Value, Error> {
    let budget = budget(&event, now);
    match classify(event.payload)? {
        Invocation::Http(req) => url_request(budget, svc.handle_api(*req, now)).await,
        Invocation::Stream { sequence_numbers } => {
            let outcome = match lambda::within(budget, svc.tick(now)).await {
                Ok(Ok(report)) => {
                    log_tick(&report);
                    if report.failed().next().is_some() || !report.errors.is_empty() {
                        StreamOutcome::Partly
                    } else {
                        StreamOutcome::Done
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, records = sequence_numbers.len(), "notifier tick failed; the batch is reported failed");
                    StreamOutcome::Failed
                }
                Err(e) => {
                    tracing::warn!(error = %e, records = sequence_numbers.len(), "the batch is reported failed");
                    StreamOutcome::Failed
                }
            };
            Ok(serde_json::to_value(stream_response(
                &sequence_numbers,
                outcome,
            ))?)
        }
        Invocation::Schedule | Invocation::Shard { .. } => {
            let report = lambda::within(budget, svc.tick(now)).await??;
            log_tick(&report);
            Ok(serde_json::to_value(&report)?)
        }
    }
}

fn log_tick(report: &argus_notify::TickReport) {
    for n in &report.notifications {
        tracing::info!("{n}");
    }
    for e in &report.errors {
        tracing::warn!("{e}");
    }
}

/// pushgateway: the Pushgateway API on the function URL.
pub async fn pushgateway(
    svc: &Gateway,
    event: LambdaEvent<Value>,
    now: Millis,
) -> Result<Value, Error> {
    let budget = budget(&event, now);
    match classify(event.payload)? {
        Invocation::Http(req) => url_request(budget, svc.handle(*req, now)).await,
        other => {
            Err(format!("the pushgateway serves function URL requests only, got {other:?}").into())
        }
    }
}

/// query: the Prometheus HTTP API (and the status page) on the function URL; read-only.
pub async fn query(
    svc: &argus_query::QueryService,
    event: LambdaEvent<Value>,
    now: Millis,
) -> Result<Value, Error> {
    let budget = budget(&event, now);
    match classify(event.payload)? {
        Invocation::Http(req) => url_request(budget, svc.handle(*req, now)).await,
        other => Err(format!(
            "the query function serves function URL requests only, got {other:?}"
        )
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AppConfig;
    use argus_model::{Alert, Kv, Labels};
    use serde_json::json;
    use std::sync::Arc;

    const NOW: Millis = 1_760_000_000_000;

    fn event(payload: Value, deadline: u64) -> LambdaEvent<Value> {
        let mut ctx = lambda_runtime::Context::default();
        ctx.deadline = deadline;
        LambdaEvent::new(payload, ctx)
    }

    fn url_event(method: &str, path: &str, body: &str) -> Value {
        json!({"version": "2.0", "rawPath": path, "rawQueryString": "", "headers": {},
               "requestContext": {"http": {"method": method, "path": path}, "timeEpoch": NOW},
               "body": body, "isBase64Encoded": false})
    }

    fn stream_event(seqs: &[&str]) -> Value {
        let records: Vec<Value> = seqs
            .iter()
            .map(|s| json!({"eventID": format!("e{s}"), "eventName": "INSERT", "eventSource": "aws:dynamodb",
                            "awsRegion": "us-east-1", "dynamodb": {"Keys": {"pk": {"S": "am"}}, "SequenceNumber": s, "SizeBytes": 10}}))
            .collect();
        json!({ "Records": records })
    }

    fn kv() -> Arc<dyn Kv> {
        Arc::new(argus_store::EmbeddedKv::open_temp().unwrap())
    }

    fn notifier_with(kv: Arc<dyn Kv>, webhook: &str, log: &std::path::Path) -> Notifier {
        let text = format!(
            "route:\n  receiver: ops\n  group_wait: 0s\nreceivers:\n  - name: ops\n    webhook_configs:\n      - url: {webhook}\n"
        );
        let mut am = argus_notify::load_config(&text).unwrap();
        am.receivers[0]
            .log_configs
            .push(argus_notify::config::LogConfig {
                path: log.display().to_string(),
                send_resolved: true,
            });
        Notifier::new(
            kv,
            am,
            argus_notify::Clients::http_only(),
            "http://127.0.0.1:9093",
        )
        .with_options(argus_notify::NotifierOptions {
            send_budget: Duration::from_millis(300),
            backoff: Duration::from_millis(50),
            ..Default::default()
        })
    }

    fn alert(name: &str) -> Alert {
        Alert {
            labels: Labels::from_pairs([("alertname", name.to_string())]),
            annotations: Labels::new(),
            starts_at: Some(NOW - 60_000),
            ends_at: None,
            generator_url: String::new(),
        }
    }

    fn failures(v: &Value) -> Vec<String> {
        v["batchItemFailures"]
            .as_array()
            .unwrap_or_else(|| panic!("not a batch response: {v}"))
            .iter()
            .map(|f| f["itemIdentifier"].as_str().unwrap().to_string())
            .collect()
    }

    #[tokio::test]
    async fn notifier_stream_batches_report_item_failures() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("n.jsonl");
        let lines = || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .count()
        };
        // A webhook that refuses connections: the send fails, retryably.
        let down = notifier_with(kv(), "http://127.0.0.1:1/hook", &log);
        down.ingest(vec![alert("A")], NOW).await.unwrap();
        let r = notifier(&down, event(stream_event(&["1", "2", "3"]), 0), NOW)
            .await
            .unwrap();
        assert_eq!(failures(&r), ["3"], "only the last record is redelivered");

        // A healthy receiver: nothing failed; the same batch delivered twice sends once.
        let sent_before = lines();
        let mut am = argus_notify::load_config(
            "route:\n  receiver: ops\n  group_wait: 0s\nreceivers:\n  - name: ops\n",
        )
        .unwrap();
        am.receivers[0]
            .log_configs
            .push(argus_notify::config::LogConfig {
                path: log.display().to_string(),
                send_resolved: true,
            });
        let up2 = Notifier::new(kv(), am, argus_notify::Clients::http_only(), "");
        up2.ingest(vec![alert("B")], NOW).await.unwrap();
        for _ in 0..2 {
            let r = notifier(&up2, event(stream_event(&["7", "8"]), 0), NOW + 1000)
                .await
                .unwrap();
            assert!(failures(&r).is_empty(), "{r}");
        }
        assert_eq!(lines() - sent_before, 1, "the redelivered batch sent again");

        // A record AWS would never send is an error naming the field.
        let e = notifier(
            &up2,
            event(json!({"Records": [{"eventSource": "aws:dynamodb"}]}), 0),
            NOW,
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("Records[0]"), "{e}");
    }

    #[tokio::test]
    async fn notifier_api_and_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let n = notifier_with(kv(), "http://127.0.0.1:1/hook", &dir.path().join("n.jsonl"));
        let r = notifier(&n, event(url_event("GET", "/-/healthy", ""), 0), NOW)
            .await
            .unwrap();
        assert_eq!(r["statusCode"], 200, "{r}");
        // Less time left than the margin: the batch is reported failed, whole.
        let r = notifier(
            &n,
            event(stream_event(&["1", "2"]), (NOW + 1000) as u64),
            NOW,
        )
        .await
        .unwrap();
        assert_eq!(failures(&r), ["1", "2"]);
        let r = notifier(
            &n,
            event(url_event("GET", "/api/v2/alerts", ""), (NOW + 1000) as u64),
            NOW,
        )
        .await
        .unwrap();
        assert_eq!(r["statusCode"], 503, "{r}");
        // A schedule tick past its deadline is an error (Lambda retries it).
        assert!(notifier(&n, event(json!({}), (NOW + 1000) as u64), NOW)
            .await
            .is_err());
        let ok = notifier(&n, event(json!({}), 0), NOW).await.unwrap();
        assert_eq!(ok["groups"], 0, "{ok}");
    }

    fn app_config(dir: &std::path::Path) -> AppConfig {
        std::fs::write(
            dir.join("rules.yml"),
            "groups:\n  - name: g\n    rules:\n      - alert: Up\n        expr: vector(1)\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("argus.yml"),
            "global:\n  scrape_interval: 15s\n  evaluation_interval: 15s\nrule_files: [rules.yml]\n",
        )
        .unwrap();
        AppConfig::load(&dir.join("argus.yml")).unwrap()
    }

    #[tokio::test]
    async fn pushgateway_probe_and_evaluator() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = app_config(dir.path());
        let kv = kv();
        let gw = Arc::new(
            crate::pipeline::build_gateway(
                kv.clone(),
                &cfg,
                crate::pipeline::StoreAccess::Shared,
                None,
            )
            .unwrap(),
        );
        let put = url_event("PUT", "/metrics/job/j", "m 1\n");
        let r = pushgateway(&gw, event(put, 0), NOW).await.unwrap();
        assert_eq!(r["statusCode"], 200, "{r}");
        let r = pushgateway(&gw, event(url_event("GET", "/metrics", ""), 0), NOW)
            .await
            .unwrap();
        assert!(r["body"].as_str().unwrap().contains("m{"), "{r}");
        assert!(pushgateway(&gw, event(json!({}), 0), NOW).await.is_err());

        let probe_svc = crate::pipeline::build_probe(kv.clone(), &cfg, gw.clone()).unwrap();
        let r = probe(&probe_svc, None, event(json!({}), 0), NOW)
            .await
            .unwrap();
        assert_eq!(r["probed"], 0, "no targets: {r}");
        assert!(
            probe(&probe_svc, None, event(url_event("GET", "/", ""), 0), NOW)
                .await
                .is_err()
        );

        let n = Arc::new(notifier_with(
            kv.clone(),
            "http://127.0.0.1:1/hook",
            &dir.path().join("n.jsonl"),
        ));
        let (ev, problems) =
            crate::pipeline::build_evaluator(kv, &cfg, crate::pipeline::StoreAccess::Shared, gw, n)
                .unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        let r = evaluator(&ev, event(json!({"source": "aws.scheduler"}), 0), NOW)
            .await
            .unwrap();
        assert_eq!(r["firing"], 1, "{r}");
        // Past its deadline: an error, so Lambda's asynchronous retry runs it again.
        assert!(
            evaluator(&ev, event(json!({}), (NOW + 16_000) as u64), NOW + 15_000)
                .await
                .is_err()
        );
    }
}
