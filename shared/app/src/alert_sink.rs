//! The port alerts leave the evaluator through when they do not go to the built-in
//! notifier: [`AlertSink`], and its adapter for external Alertmanagers
//! ([`ExternalAlertmanagers`]), which POSTs to each one's v2 API as Prometheus's
//! notifier does. The alerts arrive with Prometheus's timing already applied by
//! argus-rules (sent when they start firing, resolve, or every resend delay of 1 m;
//! `endsAt` = now + 4 × max(evaluation interval, resend delay) while firing).

use argus_model::{Alert, Millis};
use argus_promconfig::AlertmanagerTarget;

#[async_trait::async_trait]
pub trait AlertSink: Send + Sync {
    /// Delivers one batch. An error names every receiver that failed.
    async fn send(&self, alerts: Vec<Alert>, now: Millis) -> Result<(), String>;
}

/// Alertmanagers by URL (`.../api/v2/alerts`), each sent the whole batch.
pub struct ExternalAlertmanagers {
    http: reqwest::Client,
    targets: Vec<AlertmanagerTarget>,
}

impl ExternalAlertmanagers {
    pub fn new(targets: &[AlertmanagerTarget]) -> Self {
        ExternalAlertmanagers {
            http: reqwest::Client::builder()
                .user_agent(concat!("argus/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("HTTP client"),
            targets: targets.to_vec(),
        }
    }
}

#[async_trait::async_trait]
impl AlertSink for ExternalAlertmanagers {
    /// As Prometheus's `sendAll`: every Alertmanager gets the batch; the send counts as
    /// done when at least one took it, and the failures are reported either way.
    async fn send(&self, alerts: Vec<Alert>, _now: Millis) -> Result<(), String> {
        let body = serde_json::to_vec(&alerts).map_err(|e| e.to_string())?;
        let sends = self.targets.iter().map(|t| {
            let req = self
                .http
                .post(&t.url)
                .header(http::header::CONTENT_TYPE, "application/json")
                .timeout(t.timeout)
                .body(body.clone());
            async move {
                match req.send().await {
                    Ok(r) if r.status().is_success() => Ok(()),
                    Ok(r) => {
                        let code = r.status();
                        let text = r.text().await.unwrap_or_default();
                        Err(format!("Alertmanager {}: {code}: {}", t.url, text.trim()))
                    }
                    Err(e) => Err(format!("Alertmanager {}: {e}", t.url)),
                }
            }
        });
        let results = futures::future::join_all(sends).await;
        let errors: Vec<String> = results.into_iter().filter_map(Result::err).collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}
