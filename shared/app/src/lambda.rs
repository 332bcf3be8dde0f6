//! The Lambda edge, shared by the four functions: recognising the events the template
//! wires (function URL requests, DynamoDB stream batches, EventBridge Scheduler
//! payloads, the probe's own fan-out payload) and converting function-URL requests to
//! and from plain `http` types, so the services never see Lambda shapes.

use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// What invoked a function.
#[derive(Debug)]
pub enum Invocation {
    /// A function URL request (payload format 2.0).
    Http(Box<http::Request<Bytes>>),
    /// A DynamoDB stream batch (we only need to know that alerts changed).
    Stream { records: usize },
    /// The probe's fan-out: probe exactly these target ids.
    /// A fanned-out shard: probe these ids, store them in `slot`.
    Shard { targets: Vec<String>, slot: String },
    /// EventBridge Scheduler / rule, or a manual invoke with `{}`.
    Schedule,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UrlRequest {
    #[serde(default)]
    raw_path: Option<String>,
    #[serde(default)]
    raw_query_string: Option<String>,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    is_base64_encoded: bool,
    request_context: UrlContext,
}

#[derive(Deserialize)]
struct UrlContext {
    http: UrlHttp,
}

#[derive(Deserialize)]
struct UrlHttp {
    method: String,
}

/// Classifies an invocation payload. Unrecognised shapes are treated as a schedule tick
/// (EventBridge Scheduler passes the configured input verbatim).
pub fn classify(event: Value) -> Result<Invocation, String> {
    if event
        .get("requestContext")
        .and_then(|c| c.get("http"))
        .is_some()
    {
        let req: UrlRequest = serde_path_to_error::deserialize(event)
            .map_err(|e| format!("function URL event: {}: {}", e.path(), e.inner()))?;
        return url_request(req).map(|r| Invocation::Http(Box::new(r)));
    }
    if let Some(records) = event.get("Records").and_then(Value::as_array) {
        if records
            .iter()
            .all(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:dynamodb"))
        {
            return Ok(Invocation::Stream {
                records: records.len(),
            });
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
    Ok(Invocation::Schedule)
}

fn url_request(r: UrlRequest) -> Result<http::Request<Bytes>, String> {
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
    let mut b = http::Request::builder()
        .method(r.request_context.http.method.as_str())
        .uri(uri);
    for (k, v) in r.headers.unwrap_or_default() {
        b = b.header(k, v);
    }
    b.body(body)
        .map_err(|e| format!("function URL request: {e}"))
}

/// Function URL response (payload format 2.0); binary bodies are base64-encoded.
/// `cookies` is always present: AWS accepts it absent, strict parsers (the runtime
/// emulator) do not.
pub fn url_response(resp: http::Response<Bytes>) -> Value {
    let (parts, body) = resp.into_parts();
    let mut headers = serde_json::Map::new();
    for (k, v) in &parts.headers {
        if let Ok(s) = v.to_str() {
            headers.insert(k.as_str().to_string(), Value::String(s.to_string()));
        }
    }
    match std::str::from_utf8(&body) {
        Ok(text) => json!({
            "statusCode": parts.status.as_u16(),
            "headers": headers,
            "body": text,
            "isBase64Encoded": false,
            "cookies": []
        }),
        Err(_) => json!({
            "statusCode": parts.status.as_u16(),
            "headers": headers,
            "body": base64::engine::general_purpose::STANDARD.encode(&body),
            "isBase64Encoded": true,
            "cookies": []
        }),
    }
}

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

    #[test]
    fn function_url_request_round_trip() {
        // Payload format 2.0 as AWS documents it for function URLs.
        let ev = json!({
            "version": "2.0", "routeKey": "$default",
            "rawPath": "/metrics/job/batch/instance/a", "rawQueryString": "",
            "headers": {"content-type": "text/plain", "authorization": "Bearer t"},
            "requestContext": {"http": {"method": "PUT", "path": "/metrics/job/batch/instance/a", "protocol": "HTTP/1.1",
                                        "sourceIp": "1.2.3.4", "userAgent": "curl"}, "accountId": "123"},
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
        let v = url_response(resp);
        assert_eq!(v["statusCode"], 202);
        assert_eq!(v["body"], "ok");
        let bin = url_response(http::Response::new(Bytes::from_static(&[0xff, 0x00])));
        assert_eq!(bin["isBase64Encoded"], true);
    }

    #[test]
    fn stream_schedule_and_shard() {
        let ev = json!({"Records": [{"eventSource": "aws:dynamodb", "eventName": "INSERT"}]});
        assert!(matches!(
            classify(ev).unwrap(),
            Invocation::Stream { records: 1 }
        ));
        assert!(matches!(classify(json!({})).unwrap(), Invocation::Schedule));
        let sched =
            json!({"version": "0", "detail-type": "Scheduled Event", "source": "aws.events"});
        assert!(matches!(classify(sched).unwrap(), Invocation::Schedule));
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
                           "isBase64Encoded": false, "requestContext": {"http": {"method": "GET"}}});
        let Invocation::Http(req) = classify(nulls).unwrap() else {
            panic!("not http")
        };
        assert_eq!(req.uri(), "/-/healthy");
        let null_method = json!({"requestContext": {"http": {"method": null}}});
        let e = classify(null_method).unwrap_err();
        assert!(e.contains("requestContext.http.method"), "{e}");
        let bad = json!({"requestContext": {"http": {}}});
        assert!(classify(bad).unwrap_err().contains("function URL event"));
    }
}
