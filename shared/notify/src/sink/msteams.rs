//! Microsoft Teams incoming webhook, as Alertmanager 0.26+ sends it (notify/msteams,
//! absent from 0.25): an Office 365 connector `MessageCard`.

use super::b::{self, Http, Secret};
use super::{Notification, Sink, SinkError};
use crate::config::{ConfigError, HttpConfig};
use crate::render::Renderer;
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

pub const COLOR_RED: &str = "8C1A1A";
pub const COLOR_GREEN: &str = "2DC72D";
pub const COLOR_GREY: &str = "808080";
pub const DEFAULT_TITLE: &str = r#"{{ template "msteams.default.title" . }}"#;
pub const DEFAULT_TEXT: &str = r#"{{ template "msteams.default.text" . }}"#;

/// `msteams_configs` (Alertmanager 0.26 keys and defaults).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MsTeamsConfig {
    #[serde(default = "yes")]
    pub send_resolved: bool,
    pub http_config: Option<HttpConfig>,
    /// A secret URL.
    pub webhook_url: Option<Secret>,
    #[serde(default = "title")]
    pub title: String,
    #[serde(default = "text")]
    pub text: String,
}

fn yes() -> bool {
    true
}
fn title() -> String {
    DEFAULT_TITLE.into()
}
fn text() -> String {
    DEFAULT_TEXT.into()
}

impl MsTeamsConfig {
    pub fn check(&self, at: &str) -> Result<(), ConfigError> {
        b::check_webhook_url(self.webhook_url.as_ref(), at, "msteams")
    }
}

pub struct MsTeamsSink {
    http: Http,
    conf: MsTeamsConfig,
    renderer: Arc<Renderer>,
}

impl MsTeamsSink {
    pub fn new(http: Http, conf: MsTeamsConfig, renderer: Arc<Renderer>) -> Self {
        MsTeamsSink {
            http,
            conf,
            renderer,
        }
    }

    pub fn body(&self, n: &Notification) -> Result<serde_json::Value, SinkError> {
        let m = n.message(0);
        let t = b::Texts::new(&self.renderer, &m);
        let color = match m.status.as_str() {
            "firing" => COLOR_RED,
            "resolved" => COLOR_GREEN,
            _ => COLOR_GREY,
        };
        let body = json!({
            "@context": "http://schema.org/extensions",
            "type": "MessageCard",
            "title": t.t(&self.conf.title, "title"),
            "text": t.t(&self.conf.text, "text"),
            "themeColor": color,
        });
        t.finish("msteams")?;
        Ok(body)
    }
}

#[async_trait]
impl Sink for MsTeamsSink {
    fn kind(&self) -> &'static str {
        "msteams"
    }
    fn send_resolved(&self) -> bool {
        self.conf.send_resolved
    }
    async fn send(&self, n: &Notification, timeout: Duration) -> Result<(), SinkError> {
        let url = self
            .conf
            .webhook_url
            .as_ref()
            .ok_or_else(|| SinkError::permanent("msteams: no webhook_url"))?;
        let req = self.http.post_json(url.expose(), &self.body(n)?);
        let (status, body) = self.http.send(req, timeout, "msteams").await?;
        b::check(status, &body, "msteams")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::b::testutil::{notification, sink_config, yaml};

    #[test]
    fn config_errors_name_the_field() {
        let e = crate::load_config(&yaml("msteams_configs:\n      - title: x\n")).unwrap_err();
        assert!(e.path.ends_with("msteams_configs[0].webhook_url"), "{e}");
        let c = sink_config(
            "msteams_configs:\n      - webhook_url: 'http://127.0.0.1:1/webhookb2/secret-part'\n",
        );
        let conf = c.receivers[0].msteams_configs[0].clone();
        assert!(!format!("{conf:?}").contains("secret-part"));
        let s = MsTeamsSink::new(
            Http::new(reqwest::Client::new(), &HttpConfig::default()),
            conf,
            Arc::new(Renderer::default()),
        );
        assert_eq!(
            s.body(&notification(&[("web-1", false)])).unwrap()["themeColor"],
            COLOR_GREEN
        );
    }
}
