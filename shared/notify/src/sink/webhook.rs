//! Webhook: POST the v4 body (notify/webhook). 2xx ok; 5xx, 429 and transport errors are
//! retryable; other statuses are not.

use super::{Notification, Sink, SinkError};
use crate::config::WebhookConfig;
use async_trait::async_trait;
use std::time::Duration;

pub struct WebhookSink {
    http: reqwest::Client,
    conf: WebhookConfig,
    /// `conf.url`, parsed once (not per send).
    url: Result<reqwest::Url, String>,
    auth: Option<String>,
}

impl WebhookSink {
    pub fn new(http: reqwest::Client, conf: WebhookConfig, auth: Option<String>) -> Self {
        let url = reqwest::Url::parse(&conf.url).map_err(|e| e.to_string());
        WebhookSink {
            http,
            conf,
            url,
            auth,
        }
    }
}

/// Classifies an HTTP response status the way Alertmanager's retrier does.
pub fn check_status(status: u16, body: &str, what: &str) -> Result<(), SinkError> {
    match status {
        200..=299 => Ok(()),
        429 | 500..=599 => Err(SinkError::retryable(format!(
            "{what}: unexpected status code {status}: {}",
            short(body)
        ))),
        _ => Err(SinkError::permanent(format!(
            "{what}: unexpected status code {status}: {}",
            short(body)
        ))),
    }
}

fn short(s: &str) -> &str {
    let s = s.trim();
    match s.char_indices().nth(200) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

pub async fn post_json(
    http: &reqwest::Client,
    url: impl reqwest::IntoUrl,
    body: Vec<u8>,
    auth: Option<&str>,
    timeout: Duration,
    what: &str,
) -> Result<(), SinkError> {
    let mut req = http
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .timeout(timeout);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap_or_default();
            check_status(status, &text, what)
        }
        Err(e) if e.is_timeout() => Err(SinkError::retryable(format!(
            "{what}: timed out after {timeout:?}"
        ))),
        Err(e) => Err(SinkError::retryable(format!("{what}: {}", error_chain(&e)))),
    }
}

pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[async_trait]
impl Sink for WebhookSink {
    fn kind(&self) -> &'static str {
        "webhook"
    }
    fn send_resolved(&self) -> bool {
        self.conf.send_resolved
    }
    async fn send(&self, n: &Notification, timeout: Duration) -> Result<(), SinkError> {
        let msg = n.message(self.conf.max_alerts);
        let body = serde_json::to_vec(&msg).map_err(|e| SinkError::permanent(e.to_string()))?;
        let timeout = self.conf.timeout.map_or(timeout, |t| t.min(timeout));
        let url = self.url.clone().map_err(|e| {
            SinkError::permanent(format!("webhook {}: invalid URL: {e}", self.conf.url))
        })?;
        post_json(
            &self.http,
            url,
            body,
            self.auth.as_deref(),
            timeout,
            &format!("webhook {}", self.conf.url),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        assert!(check_status(204, "", "w").is_ok());
        assert!(check_status(503, "busy", "w").unwrap_err().retryable);
        assert!(check_status(429, "", "w").unwrap_err().retryable);
        let e = check_status(400, "bad", "w").unwrap_err();
        assert!(!e.retryable && e.message.contains("400") && e.message.contains("bad"));
    }
}
