//! The Lambda edge, shared by the four functions: the events the template wires, parsed
//! with the runtime project's own types (`aws_lambda_events`: function URL requests,
//! DynamoDB stream batches and their partial-failure response, EventBridge events),
//! plus the probe's own fan-out payload; function-URL requests are converted to and
//! from plain `http` types, so the services never see Lambda shapes.
//!
//! `lambda_http` is not used as the adapter: it serves one function per event source
//! and owns the runtime loop, while the notifier takes function URL requests, stream
//! batches and schedule ticks on the same function, and EventBridge Scheduler passes a
//! configured input (`{}`) that matches no typed event. So each payload is classified
//! here and parsed with the matching `aws_lambda_events` type.

use aws_lambda_events::dynamodb::Event as DynamoDbEvent;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use base64::Engine as _;
use bytes::Bytes;
use serde_json::Value;

/// What invoked a function.
#[derive(Debug)]
pub enum Invocation {
    /// A function URL request (payload format 2.0).
    Http(Box<http::Request<Bytes>>),
    /// A DynamoDB stream batch: the records' sequence numbers, in order (the notifier
    /// only needs to know that alerts changed, and which records to report failed).
    Stream { sequence_numbers: Vec<String> },
    /// A fanned-out shard: probe these ids, store them in `slot`.
    Shard { targets: Vec<String>, slot: String },
    /// EventBridge Scheduler / rule, or a manual invoke with `{}`.
    Schedule,
}

/// Classifies an invocation payload. Unrecognised shapes are treated as a schedule tick
/// (EventBridge Scheduler passes the configured input verbatim).
pub fn classify(mut event: Value) -> Result<Invocation, String> {
    if event
        .get("requestContext")
        .and_then(|c| c.get("http"))
        .is_some()
    {
        // `headers: null` (seen from emulators) means none; the typed map wants an object.
        if let Some(o) = event.as_object_mut() {
            if o.get("headers").is_some_and(Value::is_null) {
                o.remove("headers");
            }
        }
        let req: LambdaFunctionUrlRequest = serde_path_to_error::deserialize(event)
            .map_err(|e| format!("function URL event: {}: {}", e.path(), e.inner()))?;
        return url_request(req).map(|r| Invocation::Http(Box::new(r)));
    }
    if let Some(records) = event.get("Records").and_then(Value::as_array) {
        if !records.is_empty()
            && records
                .iter()
                .all(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:dynamodb"))
        {
            let batch: DynamoDbEvent = serde_path_to_error::deserialize(event)
                .map_err(|e| format!("DynamoDB stream event: {}: {}", e.path(), e.inner()))?;
            let sequence_numbers = batch
                .records
                .into_iter()
                .map(|r| r.change.sequence_number.unwrap_or(r.event_id))
                .collect();
            return Ok(Invocation::Stream { sequence_numbers });
        }
    }
    if let Some(ids) = event.get("shard").and_then(Value::as_array) {
        let targets = ids
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or("shard: target ids must be strings")
            })
            .collect::<Result<Vec<_>, _>>()?;
        let slot = match event.get("slot") {
            None | Some(Value::Null) => "shard".to_string(),
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => return Err("shard: slot must be a non-empty string".into()),
        };
        return Ok(Invocation::Shard { targets, slot });
    }
    if event.get("detail-type").is_some() {
        // An EventBridge rule's event (`Scheduled Event`): checked, then a tick.
        let _: EventBridgeEvent<Option<Value>> = serde_path_to_error::deserialize(event)
            .map_err(|e| format!("EventBridge event: {}: {}", e.path(), e.inner()))?;
    }
    Ok(Invocation::Schedule)
}

fn url_request(r: LambdaFunctionUrlRequest) -> Result<http::Request<Bytes>, String> {
    let body = match (r.body, r.is_base64_encoded) {
        (None, _) => Bytes::new(),
        (Some(b), false) => Bytes::from(b),
        (Some(b), true) => Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|e| format!("function URL body: {e}"))?,
        ),
    };
    let path = r
        .raw_path
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/".to_string());
    let uri = match r.raw_query_string.filter(|q| !q.is_empty()) {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let method = r
        .request_context
        .http
        .method
        .ok_or("function URL event: requestContext.http.method: missing")?;
    let mut req = http::Request::builder()
        .method(method.as_str())
        .uri(uri)
        .body(body)
        .map_err(|e| format!("function URL request: {e}"))?;
    *req.headers_mut() = r.headers;
    Ok(req)
}

/// Function URL response (payload format 2.0); binary bodies are base64-encoded.
/// `cookies` is always present: AWS accepts it absent, strict parsers (the runtime
/// emulator) do not.
pub fn url_response(resp: http::Response<Bytes>) -> LambdaFunctionUrlResponse {
    let (parts, body) = resp.into_parts();
    let mut out = LambdaFunctionUrlResponse::default();
    out.status_code = i64::from(parts.status.as_u16());
    out.headers = parts.headers;
    match std::str::from_utf8(&body) {
        Ok(text) => out.body = Some(text.to_string()),
        Err(_) => {
            out.body = Some(base64::engine::general_purpose::STANDARD.encode(&body));
            out.is_base64_encoded = true;
        }
    }
    out
}

/// How a notifier tick triggered by a stream batch went, for the batch's response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamOutcome {
    /// Every due group was handled.
    Done,
    /// The tick ran, but some sends or writes failed and are due again.
    Partly,
    /// The tick did not run to its end (a store error, or the deadline).
    Failed,
}

/// The partial-batch response (`ReportBatchItemFailures`) for a stream batch.
///
/// A record is a trigger, not a unit of work: the notifier's work is the state in the
/// alerts table, and one tick handles all of it. So a tick that failed reports every
/// record (Lambda retries the batch, without bisecting it for nothing); a tick that
/// ran but left something due reports only the last record (Lambda checkpoints the
/// others and redelivers that one: a prompt retry, not a repeat of the batch); a tick
/// that finished reports none. A record that exhausts its retries goes to the dead
/// letter queue without losing anything: the scheduled flush still finds the state.
pub fn stream_response(
    sequence_numbers: &[String],
    outcome: StreamOutcome,
) -> DynamoDbEventResponse {
    let failed: Vec<&String> = match outcome {
        StreamOutcome::Done => Vec::new(),
        StreamOutcome::Partly => sequence_numbers.last().into_iter().collect(),
        StreamOutcome::Failed => sequence_numbers.iter().collect(),
    };
    let mut resp = DynamoDbEventResponse::default();
    resp.batch_item_failures = failed
        .into_iter()
        .map(|s| {
            let mut f = DynamoDbBatchItemFailure::default();
            f.item_identifier = Some(s.clone());
            f
        })
        .collect();
    resp
}

/// Time the invocation has left before Lambda stops it (`deadline` in Unix ms, 0 when
/// unknown), less `margin` to answer: zero when less than the margin is left (do not
/// start), `None` without a usable deadline. A deadline already past when the event
/// arrives is not one Lambda would give (it stops an invocation at its deadline):
/// `cargo lambda watch` sends its timeout (`600000`) where Lambda sends a Unix time,
/// and a skewed clock can do the same; such a deadline is ignored with a warning.
pub fn budget(
    deadline_ms: u64,
    now_ms: i64,
    margin: std::time::Duration,
) -> Option<std::time::Duration> {
    if deadline_ms == 0 {
        return None;
    }
    let left = deadline_ms as i64 - now_ms;
    if left <= 0 {
        tracing::warn!(
            deadline_ms,
            now_ms,
            "the invocation's deadline is already past; running without one"
        );
        return None;
    }
    let left = left - margin.as_millis() as i64;
    Some(std::time::Duration::from_millis(left.max(0) as u64))
}

/// Runs `work` until the budget is spent. Dropping it there is what Lambda would do a
/// moment later anyway, except that the handler can still answer: every service keeps
/// its stored state consistent at any await point (the tests abort runs halfway), so
/// the next invocation does what this one left.
pub async fn within<T>(
    budget: Option<std::time::Duration>,
    work: impl std::future::Future<Output = T>,
) -> Result<T, DeadlineReached> {
    match budget {
        None => Ok(work.await),
        // No time left: do not start what could not finish.
        Some(b) if b.is_zero() => Err(DeadlineReached(b)),
        Some(b) => tokio::time::timeout(b, work)
            .await
            .map_err(|_| DeadlineReached(b)),
    }
}

/// The invocation's deadline came before its work was done.
#[derive(Debug, thiserror::Error)]
#[error("stopped after {0:?}, before the invocation's deadline: the rest is left for the next invocation")]
pub struct DeadlineReached(pub std::time::Duration);

/// JSON logs to stdout (CloudWatch), level from `RUST_LOG` (default info).
pub fn init_tracing() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .without_time()
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn function_url_request_round_trip() {
        // Payload format 2.0 as AWS documents it for function URLs.
        let ev = json!({
            "version": "2.0", "routeKey": "$default",
            "rawPath": "/metrics/job/batch/instance/a", "rawQueryString": "",
            "headers": {"content-type": "text/plain", "authorization": "Bearer t"},
            "requestContext": {"http": {"method": "PUT", "path": "/metrics/job/batch/instance/a", "protocol": "HTTP/1.1",
                                        "sourceIp": "1.2.3.4", "userAgent": "curl"}, "accountId": "123",
                               "timeEpoch": 1_583_348_638_390_i64},
            "body": "YSAxCg==", "isBase64Encoded": true
        });
        let Invocation::Http(req) = classify(ev).unwrap() else {
            panic!("not http")
        };
        assert_eq!(req.method(), "PUT");
        assert_eq!(req.uri().path(), "/metrics/job/batch/instance/a");
        assert_eq!(req.headers()["authorization"], "Bearer t");
        assert_eq!(&req.body()[..], b"a 1\n");
        let resp = http::Response::builder()
            .status(202)
            .header("x", "y")
            .body(Bytes::from_static(b"ok"))
            .unwrap();
        let v = serde_json::to_value(url_response(resp)).unwrap();
        assert_eq!(v["statusCode"], 202);
        assert_eq!(v["body"], "ok");
        assert_eq!(v["headers"]["x"], "y");
        assert_eq!(v["isBase64Encoded"], false);
        assert_eq!(v["cookies"], json!([]));
        let bin = url_response(http::Response::new(Bytes::from_static(&[0xff, 0x00])));
        let bin = serde_json::to_value(bin).unwrap();
        assert_eq!(bin["isBase64Encoded"], true);
        assert_eq!(bin["body"], "/wA=");
    }

    #[test]
    fn stream_schedule_and_shard() {
        let ev = json!({"Records": [
            {"eventID": "e1", "eventName": "INSERT", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
             "dynamodb": {"Keys": {"pk": {"S": "am"}}, "SequenceNumber": "111", "SizeBytes": 26, "StreamViewType": "NEW_IMAGE"}},
            {"eventID": "e2", "eventName": "MODIFY", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
             "dynamodb": {"Keys": {"pk": {"S": "am"}}, "SequenceNumber": "222", "SizeBytes": 26}}
        ]});
        let Invocation::Stream { sequence_numbers } = classify(ev).unwrap() else {
            panic!("not a stream batch")
        };
        assert_eq!(sequence_numbers, ["111", "222"]);
        // A record without the fields AWS always sends is named, not guessed.
        let bad = json!({"Records": [{"eventSource": "aws:dynamodb"}]});
        let e = classify(bad).unwrap_err();
        assert!(e.starts_with("DynamoDB stream event: Records[0]"), "{e}");
        assert!(matches!(classify(json!({})).unwrap(), Invocation::Schedule));
        let sched = json!({"version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events",
                           "account": "123", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
                           "resources": ["arn:aws:events:us-east-1:123:rule/r"], "detail": {}});
        assert!(matches!(classify(sched).unwrap(), Invocation::Schedule));
        let bad_rule = json!({"detail-type": "Scheduled Event"});
        assert!(classify(bad_rule).unwrap_err().contains("source"));
        let Invocation::Shard { targets, slot } =
            classify(json!({"shard": ["a", "b"], "slot": "3"})).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (targets, slot.as_str()),
            (vec!["a".to_string(), "b".to_string()], "3")
        );
        assert!(classify(json!({"shard": ["a"], "slot": ["x"]})).is_err());
        assert!(classify(json!({"shard": [1]})).is_err());
        // Nulls where AWS (and cargo lambda's emulator) may send them.
        let nulls = json!({"rawPath": "/-/healthy", "rawQueryString": null, "headers": null, "body": null,
                           "isBase64Encoded": false, "requestContext": {"http": {"method": "GET"}, "timeEpoch": 0}});
        let Invocation::Http(req) = classify(nulls).unwrap() else {
            panic!("not http")
        };
        assert_eq!(req.uri(), "/-/healthy");
        let null_method = json!({"isBase64Encoded": false, "requestContext": {"http": {"method": null}, "timeEpoch": 0}});
        let e = classify(null_method).unwrap_err();
        assert!(e.contains("requestContext.http.method"), "{e}");
        let bad = json!({"requestContext": {"http": {}}});
        assert!(classify(bad).unwrap_err().contains("function URL event"));
    }

    #[test]
    fn partial_batch_responses() {
        let seqs = vec!["1".to_string(), "2".to_string(), "3".to_string()];
        let ids = |o| {
            serde_json::to_value(stream_response(&seqs, o)).unwrap()["batchItemFailures"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["itemIdentifier"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert!(ids(StreamOutcome::Done).is_empty());
        assert_eq!(ids(StreamOutcome::Partly), ["3"]);
        assert_eq!(ids(StreamOutcome::Failed), ["1", "2", "3"]);
        let v = serde_json::to_value(stream_response(&seqs, StreamOutcome::Done)).unwrap();
        assert_eq!(v, json!({"batchItemFailures": []}));
    }

    #[tokio::test]
    async fn deadlines() {
        use std::time::Duration;
        assert_eq!(budget(0, 5, Duration::from_secs(1)), None);
        assert_eq!(
            budget(10_000, 2_000, Duration::from_secs(1)),
            Some(Duration::from_millis(7_000))
        );
        assert_eq!(
            budget(2_500, 2_000, Duration::from_secs(1)),
            Some(Duration::ZERO)
        );
        assert_eq!(budget(1_000, 2_000, Duration::from_secs(1)), None);
        assert_eq!(within(None, async { 3 }).await.unwrap(), 3);
        let stopped = within(Some(Duration::from_millis(1)), std::future::pending::<()>()).await;
        assert!(stopped
            .unwrap_err()
            .to_string()
            .contains("left for the next"));
    }
}
