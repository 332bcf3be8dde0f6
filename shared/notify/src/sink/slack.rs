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
                // Always sent by Alertmanager 0.25 (no omitempty); empty by default.
                "callback_id": "",
                "footer": "",
            }],
        });
        // Alertmanager's default username is `{{ template "slack.default.username" . }}`
        // ("Alertmanager"); an empty result is left out, as its `omitempty` does.
        let username = self
            .conf
            .username
            .clone()
            .unwrap_or_else(|| r#"{{ template "slack.default.username" . }}"#.to_string());
        match self.renderer.render(&username, &m) {
            Ok(u) if !u.is_empty() => body["username"] = json!(u),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(receiver = %m.receiver, error = %e, "slack username template failed; left out")
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::StoredAlert;
    use argus_model::Labels;

    #[test]
    fn body_with_default_and_custom_templates() {
        let yaml = "route: {receiver: s}\nreceivers:\n  - name: s\n    slack_configs:\n      - api_url: http://127.0.0.1:1/\n        channel: '#ops'\n        text: '{{ range .Alerts }}{{ .Labels.instance }} {{ .Annotations.summary }}{{ end }}'\n";
        let c = crate::load_config(yaml).unwrap();
        let sink = SlackSink::new(
            reqwest::Client::new(),
            c.receivers[0].slack_configs[0].clone(),
            "http://127.0.0.1:1/".into(),
            Arc::new(Renderer::default()),
        );
        let n = Notification {
            receiver: "s".into(),
            group_key: "{}:{}".into(),
            group_labels: Labels::from_pairs([("alertname", "Down")]),
            alerts: vec![StoredAlert {
                labels: Labels::from_pairs([("alertname", "Down"), ("instance", "web-1")]),
                annotations: Labels::from_pairs([("summary", "is down")]),
                starts_at: 0,
                ends_at: 1_000,
                generator_url: String::new(),
                updated_at: 0,
                timeout: false,
            }],
            external_url: "http://am".into(),
            now: 10,
            nflog_key: "k".into(),
            dedup_id: "d".into(),
        };
        let b = sink.body(&n);
        assert_eq!(b["channel"], "#ops");
        let att = &b["attachments"][0];
        assert_eq!(att["title"], "[FIRING:1] Down (web-1)");
        assert_eq!(att["text"], "web-1 is down");
        assert_eq!(att["color"], "danger");
        assert_eq!(att["title_link"], "http://am/#/alerts?receiver=s");
        // As Alertmanager 0.25 sends them by default.
        assert_eq!(b["username"], "Alertmanager");
        assert_eq!(
            (&att["footer"], &att["callback_id"]),
            (&json!(""), &json!(""))
        );
    }
}
