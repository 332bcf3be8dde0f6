//! Discord webhook, as Alertmanager 0.25's notify/discord: one embed with title,
//! description and colour; title and description truncated as Alertmanager 0.27+
//! does (256 and 4096 characters, Discord's limits; 0.25 sends them whole and Discord
//! answers 400).

use super::b::{self, Http, Secret};
use super::{Notification, Sink, SinkError};
use crate::config::{ConfigError, HttpConfig};
use crate::render::Renderer;
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

pub const MAX_TITLE_LEN_RUNES: usize = 256;
pub const MAX_DESCRIPTION_LEN_RUNES: usize = 4096;
pub const COLOR_RED: u32 = 0x992D22;
pub const COLOR_GREEN: u32 = 0x2ECC71;
pub const COLOR_GREY: u32 = 0x95A5A6;
pub const DEFAULT_TITLE: &str = r#"{{ template "discord.default.title" . }}"#;
pub const DEFAULT_MESSAGE: &str = r#"{{ template "discord.default.message" . }}"#;

/// `discord_configs` (Alertmanager 0.25 keys and defaults).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscordConfig {
    #[serde(default = "yes")]
    pub send_resolved: bool,
    pub http_config: Option<HttpConfig>,
    /// A secret URL (it holds the webhook's token).
    pub webhook_url: Option<Secret>,
    #[serde(default = "title")]
    pub title: String,
    #[serde(default = "message")]
    pub message: String,
}

fn yes() -> bool {
    true
}
fn title() -> String {
    DEFAULT_TITLE.into()
}
fn message() -> String {
    DEFAULT_MESSAGE.into()
}

impl DiscordConfig {
    pub fn check(&self, at: &str) -> Result<(), ConfigError> {
        b::check_webhook_url(self.webhook_url.as_ref(), at, "discord")
    }
}

pub struct DiscordSink {
    http: Http,
    conf: DiscordConfig,
    renderer: Arc<Renderer>,
}

impl DiscordSink {
    pub fn new(http: Http, conf: DiscordConfig, renderer: Arc<Renderer>) -> Self {
        DiscordSink {
            http,
            conf,
            renderer,
        }
    }

    pub fn body(&self, n: &Notification) -> Result<serde_json::Value, SinkError> {
        let m = n.message(0);
        let t = b::Texts::new(&self.renderer, &m);
        let (title, cut) = b::truncate_runes(&t.t(&self.conf.title, "title"), MAX_TITLE_LEN_RUNES);
        if cut {
            tracing::warn!(receiver = %m.receiver, max_runes = MAX_TITLE_LEN_RUNES, "discord: truncated title");
        }
        let (description, cut) = b::truncate_runes(
            &t.t(&self.conf.message, "message"),
            MAX_DESCRIPTION_LEN_RUNES,
        );
        if cut {
            tracing::warn!(receiver = %m.receiver, max_runes = MAX_DESCRIPTION_LEN_RUNES, "discord: truncated message");
        }
        let color = match m.status.as_str() {
            "firing" => COLOR_RED,
            "resolved" => COLOR_GREEN,
            _ => COLOR_GREY,
        };
        t.finish("discord")?;
        Ok(json!({
            "content": "",
            "embeds": [{"title": title, "description": description, "color": color}],
        }))
    }
}

#[async_trait]
impl Sink for DiscordSink {
    fn kind(&self) -> &'static str {
        "discord"
    }
    fn send_resolved(&self) -> bool {
        self.conf.send_resolved
    }
    async fn send(&self, n: &Notification, timeout: Duration) -> Result<(), SinkError> {
        let url = self
            .conf
            .webhook_url
            .as_ref()
            .ok_or_else(|| SinkError::permanent("discord: no webhook_url"))?;
        let req = self.http.post_json(url.expose(), &self.body(n)?);
        let (status, body) = self.http.send(req, timeout, "discord").await?;
        b::check(status, &body, "discord")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::b::testutil::{notification, sink_config, yaml};

    fn sink(extra: &str) -> DiscordSink {
        let c = sink_config(&format!(
            "discord_configs:\n      - webhook_url: 'http://127.0.0.1:1/api/webhooks/1/tok'\n{extra}"
        ));
        let conf = c.receivers[0].discord_configs[0].clone();
        assert!(!format!("{conf:?}").contains("tok"));
        DiscordSink::new(
            Http::new(reqwest::Client::new(), &HttpConfig::default()),
            conf,
            Arc::new(Renderer::default()),
        )
    }

    #[test]
    fn a_template_error_fails_the_notification() {
        // As Alertmanager's `tmplText`: the first error fails the send (not retried),
        // no field falls back to another text.
        let e = sink("        message: '{{ (index .Alerts 5).Status }}'\n")
            .body(&notification(&[("web-1", true)]))
            .unwrap_err();
        assert!(!e.retryable, "{e}");
        assert!(e.to_string().contains("discord: template message"), "{e}");
    }

    #[test]
    fn body_like_alertmanager() {
        let b = sink("").body(&notification(&[("web-1", true)])).unwrap();
        assert_eq!(b["content"], "");
        assert_eq!(b["embeds"][0]["title"], "[FIRING:1] Down (web-1)");
        assert_eq!(b["embeds"][0]["color"], 10038562);
        assert!(b["embeds"][0]["description"]
            .as_str()
            .unwrap()
            .starts_with("\n\nAlerts Firing:\n"));
        let b = sink("").body(&notification(&[("web-1", false)])).unwrap();
        assert_eq!(b["embeds"][0]["color"], 3066993);
    }

    #[test]
    fn truncation_as_alertmanager_027() {
        let b = sink(&format!(
            "        title: '{}'\n        message: '{}'\n",
            "t".repeat(300),
            "d".repeat(5000)
        ))
        .body(&notification(&[("web-1", true)]))
        .unwrap();
        let t = b["embeds"][0]["title"].as_str().unwrap();
        let d = b["embeds"][0]["description"].as_str().unwrap();
        assert_eq!((t.chars().count(), d.chars().count()), (256, 4096));
        assert!(t.ends_with('…') && d.ends_with('…'));
    }

    #[test]
    fn config_errors_name_the_field() {
        let e = crate::load_config(&yaml("discord_configs:\n      - title: x\n")).unwrap_err();
        assert!(e.path.ends_with("discord_configs[0].webhook_url"), "{e}");
        let e = crate::load_config(&yaml(
            "discord_configs:\n      - webhook_url: 'not a url secret'\n",
        ))
        .unwrap_err();
        assert!(
            e.path.ends_with("webhook_url") && !e.message.contains("not a url"),
            "{e}"
        );
    }
}
