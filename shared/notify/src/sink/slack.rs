//! Slack incoming webhook (notify/slack): one attachment with the rendered title and text.

use super::webhook::post_json;
use super::{Notification, Sink, SinkError};
use crate::config::SlackConfig;
use crate::render::{default_subject, Renderer};
use async_trait::async_trait;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

pub struct SlackSink {
    http: reqwest::Client,
    conf: SlackConfig,
    url: String,
    renderer: Arc<Renderer>,
}

impl SlackSink {
    pub fn new(
        http: reqwest::Client,
        conf: SlackConfig,
        url: String,
        renderer: Arc<Renderer>,
    ) -> Self {
        SlackSink {
            http,
            conf,
            url,
            renderer,
        }
    }

    /// The JSON Slack receives.
    pub fn body(&self, n: &Notification) -> serde_json::Value {
        let m = n.message(0);
        let title = self.renderer.render(&self.conf.title, &m).unwrap_or_else(|e| {
            tracing::warn!(receiver = %m.receiver, error = %e, "slack title template failed; using the default title");
            default_subject(&m)
        });
        let text = self.renderer.render(&self.conf.text, &m).unwrap_or_else(|e| {
            tracing::warn!(receiver = %m.receiver, error = %e, "slack text template failed; using the default text");
            crate::render::default_text(&m)
        });
        let color = if m.status == "firing" {
            "danger"
        } else {
            "good"
        };
        let link = format!(
            "{}/#/alerts?receiver={}",
            m.external_url,
            url::form_urlencoded::byte_serialize(m.receiver.as_bytes()).collect::<String>()
        );
        let mut body = json!({
            "channel": self.conf.channel,
            "attachments": [{
                "title": title,
                "title_link": link,
                "text": text,
                "fallback": format!("{title} | {link}"),
                "color": color,
                "mrkdwn_in": ["fallback", "pretext", "text"],
            }],
        });
        if let Some(u) = &self.conf.username {
            body["username"] = json!(u);
        }
        body
    }
}

#[async_trait]
impl Sink for SlackSink {
    fn kind(&self) -> &'static str {
        "slack"
    }
    fn send_resolved(&self) -> bool {
        self.conf.send_resolved
    }
    async fn send(&self, n: &Notification, timeout: Duration) -> Result<(), SinkError> {
        let body =
            serde_json::to_vec(&self.body(n)).map_err(|e| SinkError::permanent(e.to_string()))?;
        let auth = self.conf.http_config.as_ref().and_then(|h| h.auth_header());
        post_json(
            &self.http,
            &self.url,
            body,
            auth.as_deref(),
            timeout,
            "slack",
        )
        .await
    }
}
