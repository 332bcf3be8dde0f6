//! Amazon SNS (notify/sns, with Argus' JSON envelope): `MessageStructure=json` where
//! `default` is the v4 body and `email`/`sms` are short texts; message attributes for
//! subscription filter policies; bodies over SNS' 256 KiB limit lose alerts from the
//! end (`truncatedAlerts`, attribute `truncated=true`); FIFO topics get a group id (the
//! group key's hash) and a deduplication id (the state change's hash).

use super::{Notification, Sink, SinkError};
use crate::config::SnsConfig;
use crate::payload::Message;
use crate::render::{default_subject, default_text, Renderer};
use async_trait::async_trait;
use aws_sdk_sns::types::MessageAttributeValue;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// SNS' limit on message + attributes.
pub const MAX_BYTES: usize = 256 * 1024;

pub struct SnsSink {
    client: Option<aws_sdk_sns::Client>,
    conf: SnsConfig,
    renderer: Arc<Renderer>,
}

/// What is published, computed without I/O (tested on its own).
#[derive(Debug, Clone, PartialEq)]
pub struct Publish {
    pub subject: String,
    /// The JSON envelope (`default`, `email`, `sms`).
    pub message: String,
    pub attributes: BTreeMap<String, String>,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
}

impl SnsSink {
    pub fn new(
        client: Option<aws_sdk_sns::Client>,
        conf: SnsConfig,
        renderer: Arc<Renderer>,
    ) -> Self {
        SnsSink {
            client,
            conf,
            renderer,
        }
    }

    fn texts(&self, m: &Message) -> (String, String) {
        let subject = match &self.conf.subject {
            Some(t) => self.renderer.render(t, m).unwrap_or_else(|e| {
                tracing::warn!(receiver = %m.receiver, error = %e, "sns subject template failed; using the default");
                default_subject(m)
            }),
            None => default_subject(m),
        };
        let text = match &self.conf.message {
            Some(t) => self.renderer.render(t, m).unwrap_or_else(|e| {
                tracing::warn!(receiver = %m.receiver, error = %e, "sns message template failed; using the default");
                default_text(m)
            }),
            None => default_text(m),
        };
        (subject, text)
    }

    pub fn publish(&self, n: &Notification) -> Publish {
        let mut msg = n.message(0);
        let (subject, text) = self.texts(&msg);
        let mut attributes = BTreeMap::new();
        let common = |k: &str| {
            msg.common_labels.get(k).map(str::to_string).or_else(|| {
                msg.alerts
                    .first()
                    .and_then(|a| a.labels.get(k).map(str::to_string))
            })
        };
        if let Some(v) = common("alertname") {
            attributes.insert("alertname".to_string(), v);
        }
        if let Some(v) = common("severity") {
            attributes.insert("severity".to_string(), v);
        }
        attributes.insert("status".into(), msg.status.clone());
        attributes.insert("receiver".into(), msg.receiver.clone());
        for (k, v) in &self.conf.attributes {
            let v = self.renderer.render(v, &msg).unwrap_or_else(|_| v.clone());
            attributes.insert(k.clone(), v);
        }
        attributes.retain(|_, v| !v.is_empty());
        let attr_bytes = |a: &BTreeMap<String, String>| {
            a.iter().map(|(k, v)| k.len() + v.len() + 6).sum::<usize>()
        };
        // The email text is bounded so that the v4 body gets most of the room.
        let cap = |t: &str, n: usize| -> String { t.chars().take(n).collect() };
        let envelope = |msg: &Message, text: &str| {
            let body = serde_json::to_string(msg).unwrap_or_default();
            serde_json::json!({"default": body, "email": cap(text, MAX_BYTES / 8), "sms": cap(text, 140)}).to_string()
        };
        let mut text = text;
        let mut message = envelope(&msg, &text);
        if message.len() + attr_bytes(&attributes) + 16 > MAX_BYTES {
            attributes.insert("truncated".into(), "true".into());
            // Drop alerts from the end until it fits.
            while message.len() + attr_bytes(&attributes) > MAX_BYTES && !msg.alerts.is_empty() {
                let over = message.len() + attr_bytes(&attributes) - MAX_BYTES;
                let per = (message.len() / msg.alerts.len()).max(1);
                let drop = over.div_ceil(per).clamp(1, msg.alerts.len());
                let keep = msg.alerts.len() - drop;
                msg.alerts.truncate(keep);
                msg.truncated_alerts += drop as u64;
                if self.conf.message.is_none() {
                    text = default_text(&msg);
                }
                message = envelope(&msg, &text);
            }
            if message.len() + attr_bytes(&attributes) > MAX_BYTES {
                // Even without alerts (huge labels or texts): a bounded text only.
                let short = cap(&text, MAX_BYTES / 8);
                message =
                    serde_json::json!({"default": short, "email": short, "sms": cap(&text, 140)})
                        .to_string();
            }
        }
        let fifo = self.conf.topic_arn.ends_with(".fifo");
        Publish {
            subject: sanitize_subject(&subject),
            message,
            attributes,
            group_id: fifo.then(|| hex::encode(Sha256::digest(n.group_key.as_bytes()))),
            dedup_id: fifo.then(|| n.dedup_id.clone()),
        }
    }
}

/// SNS subjects: printable ASCII, no line breaks, at most 100 characters, not empty.
pub fn sanitize_subject(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                ' '
            }
        })
        .collect::<String>();
    let clean = clean.trim();
    let out: String = clean.chars().take(100).collect();
    if out.is_empty() {
        "Alert".into()
    } else {
        out
    }
}

#[async_trait]
impl Sink for SnsSink {
    fn kind(&self) -> &'static str {
        "sns"
    }
    fn send_resolved(&self) -> bool {
        self.conf.send_resolved
    }
    async fn send(&self, n: &Notification, timeout: Duration) -> Result<(), SinkError> {
        let Some(client) = &self.client else {
            return Err(SinkError::permanent(
                "sns: no SNS client configured (AWS configuration missing)",
            ));
        };
        let p = self.publish(n);
        let mut req = client
            .publish()
            .topic_arn(&self.conf.topic_arn)
            .message_structure("json")
            .message(p.message)
            .subject(p.subject);
        for (k, v) in p.attributes {
            let attr = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .map_err(|e| SinkError::permanent(format!("sns attribute {k}: {e}")))?;
            req = req.message_attributes(k, attr);
        }
        if let Some(g) = p.group_id {
            req = req.message_group_id(g);
        }
        if let Some(d) = p.dedup_id {
            req = req.message_deduplication_id(d);
        }
        match tokio::time::timeout(timeout, req.send()).await {
            Err(_) => Err(SinkError::retryable(format!(
                "sns {}: timed out after {timeout:?}",
                self.conf.topic_arn
            ))),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(SinkError {
                retryable: retryable(&e),
                message: format!(
                    "sns {}: {}",
                    self.conf.topic_arn,
                    aws_sdk_sns::error::DisplayErrorContext(&e)
                ),
            }),
        }
    }
}

/// Whether a failed publish is worth another attempt (the SDK has already retried it
/// within its limits): throttling (`Throttling`, `KMSThrottling`...), 5xx, 429, and
/// every failure to get an answer (timeout, connection, unreadable response) are; a
/// request SNS refused (`InvalidParameter`, `NotFound`, `AuthorizationError`...) or one
/// that could not even be built is not.
pub(crate) fn retryable(
    e: &aws_sdk_sns::error::SdkError<
        aws_sdk_sns::operation::publish::PublishError,
        aws_sdk_sns::config::http::HttpResponse,
    >,
) -> bool {
    use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};
    match e {
        SdkError::ServiceError(s) => {
            let status = s.raw().status().as_u16();
            let code = s.err().code().unwrap_or("");
            status >= 500
                || status == 429
                || code.contains("Throttl")
                || code == "InternalError"
                || code == "ServiceUnavailable"
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ConstructionFailure(_) => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::StoredAlert;
    use argus_model::Labels;

    fn note(n_alerts: usize, annotation_len: usize) -> Notification {
        let alerts = (0..n_alerts)
            .map(|i| StoredAlert {
                labels: Labels::from_pairs([
                    ("alertname", "Big".to_string()),
                    ("i", i.to_string()),
                    ("severity", "page".into()),
                ]),
                annotations: Labels::from_pairs([("summary", "x".repeat(annotation_len))]),
                starts_at: 0,
                ends_at: 10_000,
                generator_url: String::new(),
                updated_at: 0,
                timeout: false,
            })
            .collect();
        Notification {
            receiver: "team".into(),
            group_key: "{}:{}".into(),
            group_labels: Labels::new(),
            alerts,
            external_url: String::new(),
            now: 0,
            nflog_key: "k".into(),
            dedup_id: "d".into(),
        }
    }

    fn sink(arn: &str) -> SnsSink {
        let conf = SnsConfig {
            topic_arn: arn.into(),
            api_url: None,
            sigv4: None,
            subject: None,
            message: None,
            attributes: BTreeMap::new(),
            send_resolved: true,
        };
        SnsSink::new(None, conf, Arc::new(Renderer::default()))
    }

    #[test]
    fn publish_errors_are_classified() {
        use aws_sdk_sns::error::{ErrorMetadata, SdkError};
        use aws_sdk_sns::operation::publish::PublishError;
        use aws_smithy_runtime_api::http::{Response, StatusCode};
        use aws_smithy_types::body::SdkBody;
        let service = |status: u16, code: &str| {
            let err = PublishError::generic(ErrorMetadata::builder().code(code).build());
            let raw = Response::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
            retryable(&SdkError::service_error(err, raw))
        };
        assert!(service(400, "Throttling"));
        assert!(service(400, "KMSThrottling"));
        assert!(service(500, "InternalError"));
        assert!(service(503, "ServiceUnavailable"));
        assert!(service(429, "TooManyRequests"));
        assert!(!service(400, "InvalidParameter"));
        assert!(!service(404, "NotFound"));
        assert!(!service(403, "AuthorizationError"));
        assert!(retryable(&SdkError::timeout_error("slow")));
        assert!(!retryable(&SdkError::construction_failure("bad request")));
    }

    #[test]
    fn envelope_and_attributes() {
        let p = sink("arn:aws:sns:us-east-1:1:t").publish(&note(2, 10));
        let env: serde_json::Value = serde_json::from_str(&p.message).unwrap();
        let body: Message = serde_json::from_str(env["default"].as_str().unwrap()).unwrap();
        assert_eq!(body.alerts.len(), 2);
        assert!(env["email"].as_str().unwrap().starts_with("[FIRING:2]"));
        assert_eq!(p.attributes["alertname"], "Big");
        assert_eq!(p.attributes["severity"], "page");
        assert_eq!(p.attributes["status"], "firing");
        assert_eq!(p.attributes["receiver"], "team");
        assert!(!p.attributes.contains_key("truncated"));
        assert_eq!(p.group_id, None);
    }

    #[test]
    fn truncates_over_limit_and_fifo_ids() {
        let p = sink("arn:aws:sns:us-east-1:1:t.fifo").publish(&note(100, 5000));
        assert!(p.message.len() <= MAX_BYTES, "{}", p.message.len());
        assert_eq!(p.attributes["truncated"], "true");
        let env: serde_json::Value = serde_json::from_str(&p.message).unwrap();
        let body: Message = serde_json::from_str(env["default"].as_str().unwrap()).unwrap();
        assert!(body.truncated_alerts > 0);
        assert_eq!(body.alerts.len() as u64 + body.truncated_alerts, 100);
        assert_eq!(p.group_id.as_ref().unwrap().len(), 64);
        assert_eq!(p.dedup_id.as_deref(), Some("d"));
        assert_eq!(sanitize_subject("a\nb é"), "a b");
    }
}
