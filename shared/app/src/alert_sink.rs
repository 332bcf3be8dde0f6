//! The port alerts leave the evaluator through, as Prometheus's rule manager takes a
//! `NotifyFunc`: [`AlertSink`], with two adapters: the built-in notifier's ingest
//! (`impl AlertSink for Notifier`), and external Alertmanagers
//! ([`ExternalAlertmanagers`]), which POSTs to each one's v2 API as Prometheus's
//! notifier does. The alerts arrive with Prometheus's timing already applied by
//! argus-rules (sent when they start firing, resolve, or every resend delay of 1 m;
//! `endsAt` = now + 4 × max(evaluation interval, resend delay) while firing).

use argus_model::{Alert, Millis};
use argus_promconfig::AlertmanagerTarget;

#[async_trait::async_trait]
pub trait AlertSink: Send + Sync {
    /// Delivers one batch.
    async fn send(&self, alerts: Vec<Alert>, now: Millis) -> Result<(), SendError>;
}

/// Why a batch did not get through, and what the evaluator does about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Reported in the tick (naming every receiver that failed); the group's state
    /// advances and the alerts go again at their next resend, as Prometheus's notifier
    /// drops a failed batch.
    Reported(String),
    /// The group's state is not written, so the next tick hands over the same
    /// transitions (the built-in notifier's store did not take them).
    Retry(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Reported(e) | SendError::Retry(e) => f.write_str(e),
        }
    }
}

/// The built-in notifier: alerts are ingested into the store, as `POST /api/v2/alerts`.
#[async_trait::async_trait]
impl AlertSink for argus_notify::Notifier {
    async fn send(&self, alerts: Vec<Alert>, now: Millis) -> Result<(), SendError> {
        self.ingest(alerts, now)
            .await
            .map(drop)
            .map_err(|e| SendError::Retry(e.to_string()))
    }
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
    async fn send(&self, alerts: Vec<Alert>, _now: Millis) -> Result<(), SendError> {
        let body = serde_json::to_vec(&alerts).map_err(|e| SendError::Reported(e.to_string()))?;
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
            Err(SendError::Reported(errors.join("; ")))
        }
    }
}
