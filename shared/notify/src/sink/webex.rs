//! Webex, as Alertmanager 0.25's notify/webex: `POST {api_url}` with `{markdown, roomId}`
//! and the bot's token as `http_config.authorization`.

use super::b::{self, cerr, Http};
use super::{Notification, Sink, SinkError};
use crate::config::{ConfigError, HttpConfig};
use crate::render::Renderer;
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// The largest message Webex takes, in bytes (notify/webex).
pub const MAX_MESSAGE_SIZE: usize = 7439;
pub const DEFAULT_MESSAGE: &str = r#"{{ template "webex.default.message" . }}"#;

/// `webex_configs` (Alertmanager 0.25 keys and defaults).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebexConfig {
    #[serde(default = "yes")]
    pub send_resolved: bool,
    pub http_config: Option<HttpConfig>,
    /// Falls back to `global.webex_api_url`.
    pub api_url: Option<String>,
    #[serde(default = "message")]
    pub message: String,
    #[serde(default)]
    pub room_id: String,
}

fn yes() -> bool {
    true
}
fn message() -> String {
    DEFAULT_MESSAGE.into()
}

impl WebexConfig {
    pub fn check(&self, at: &str) -> Result<(), ConfigError> {
        if self.room_id.is_empty() {
            return Err(cerr(
                format!("{at}.room_id"),
                "missing room_id on webex_config",
            ));
        }
        if self
            .http_config
            .as_ref()
            .and_then(|h| h.authorization.as_ref())
            .is_none()
        {
            return Err(cerr(
                format!("{at}.http_config.authorization"),
                "missing webex_configs.http_config.authorization",
            ));
        }
        if let Some(u) = &self.api_url {
            b::check_url(u, &format!("{at}.api_url"))?;
        }
        Ok(())
    }
}

pub struct WebexSink {
    http: Http,
    conf: WebexConfig,
    api_url: String,
    renderer: Arc<Renderer>,
}

impl WebexSink {
    pub fn new(http: Http, conf: WebexConfig, g: &b::GlobalB, renderer: Arc<Renderer>) -> Self {
        let api_url = conf
            .api_url
            .clone()
            .unwrap_or_else(|| g.webex_api_url.clone());
        WebexSink {
            http,
            conf,
            api_url,
            renderer,
        }
    }

    pub fn body(&self, n: &Notification) -> Result<serde_json::Value, SinkError> {
        let m = n.message(0);
        let texts = b::Texts::new(&self.renderer, &m);
        let text = texts.t(&self.conf.message, "message");
        texts.finish("webex")?;
        let (text, cut) = b::truncate_bytes(&text, MAX_MESSAGE_SIZE);
        if cut {
            tracing::debug!(receiver = %m.receiver, "webex: message truncated to the maximum Webex allows");
        }
        let mut body = json!({ "markdown": text });
        if !self.conf.room_id.is_empty() {
            body["roomId"] = self.conf.room_id.clone().into();
        }
        Ok(body)
    }
}

#[async_trait]
impl Sink for WebexSink {
    fn kind(&self) -> &'static str {
        "webex"
    }
    fn send_resolved(&self) -> bool {
        self.conf.send_resolved
    }
    async fn send(&self, n: &Notification, timeout: Duration) -> Result<(), SinkError> {
        let req = self.http.post_json(&self.api_url, &self.body(n)?);
        let (status, body) = self.http.send(req, timeout, "webex").await?;
        b::check(status, &body, "webex")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::b::testutil::{notification, sink_config, yaml};

    #[test]
    fn body_and_truncation() {
        let c = sink_config("webex_configs:\n      - room_id: R1\n        http_config: {authorization: {credentials: bot-token}}\n");
        let conf = c.receivers[0].webex_configs[0].clone();
        let s = WebexSink::new(
            Http::new(reqwest::Client::new(), conf.http_config.as_ref().unwrap()),
            conf,
            &c.global_b,
            Arc::new(Renderer::default()),
        );
        assert_eq!(s.api_url, "https://webexapis.com/v1/messages");
        let b = s.body(&notification(&[("web-1", true)])).unwrap();
        assert_eq!(b["roomId"], "R1");
        assert!(
            b["markdown"]
                .as_str()
                .unwrap()
                .starts_with("is down\n\nAlerts Firing:\n"),
            "{b}"
        );
        let c = sink_config(&format!("webex_configs:\n      - room_id: R1\n        message: '{}'\n        http_config: {{authorization: {{credentials: t}}}}\n", "ü".repeat(4000)));
        let conf = c.receivers[0].webex_configs[0].clone();
        let s = WebexSink::new(
            Http::new(reqwest::Client::new(), &HttpConfig::default()),
            conf,
            &c.global_b,
            Arc::new(Renderer::default()),
        );
        let m = s.body(&notification(&[("web-1", true)])).unwrap()["markdown"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            m.len() <= MAX_MESSAGE_SIZE && m.ends_with('…'),
            "{}",
            m.len()
        );
        assert_eq!(m.len(), 7436 / 2 * 2 + 3);
    }

    #[test]
    fn config_errors_name_the_field() {
        let e = crate::load_config(&yaml(
            "webex_configs:\n      - http_config: {authorization: {credentials: t}}\n",
        ))
        .unwrap_err();
        assert!(e.path.ends_with("webex_configs[0].room_id"), "{e}");
        let e = crate::load_config(&yaml("webex_configs:\n      - room_id: r\n")).unwrap_err();
        assert!(
            e.path
                .ends_with("webex_configs[0].http_config.authorization"),
            "{e}"
        );
    }
}
