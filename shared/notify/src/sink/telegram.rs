//! Telegram Bot API, as Alertmanager 0.25 sends it (through telebot v3.1.2):
//! `POST {api_url}/bot{token}/sendMessage` with a JSON object of strings. As in 0.25
//! the token is `bot_token` only (0.26's `bot_token_file` is rejected, as amtool 0.25
//! does: a `${ssm:...}` reference keeps it out of the file).

use super::b::{self, cerr, Http, Secret};
use super::{Notification, Sink, SinkError};
use crate::config::{ConfigError, HttpConfig};
use crate::render::Renderer;
use async_trait::async_trait;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// Telegram's limit on a message's length (notify/telegram).
pub const MAX_MESSAGE_LEN_RUNES: usize = 4096;
pub const DEFAULT_MESSAGE: &str = r#"{{ template "telegram.default.message" . }}"#;

/// `telegram_configs` (Alertmanager 0.25 keys and defaults).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramConfig {
    #[serde(default = "yes")]
    pub send_resolved: bool,
    pub http_config: Option<HttpConfig>,
    /// Falls back to `global.telegram_api_url`.
    pub api_url: Option<String>,
    pub bot_token: Option<Secret>,
    #[serde(default)]
    pub chat_id: i64,
    #[serde(default = "message")]
    pub message: String,
    #[serde(default)]
    pub disable_notifications: bool,
    #[serde(default = "html")]
    pub parse_mode: String,
}

fn yes() -> bool {
    true
}
fn message() -> String {
    DEFAULT_MESSAGE.into()
}
fn html() -> String {
    "HTML".into()
}

impl TelegramConfig {
    pub fn check(&self, at: &str) -> Result<(), ConfigError> {
        if self.bot_token.as_ref().is_none_or(|t| t.is_empty()) {
            return Err(cerr(
                format!("{at}.bot_token"),
                "missing bot_token on telegram_config",
            ));
        }
        if self.chat_id == 0 {
            return Err(cerr(
                format!("{at}.chat_id"),
                "missing chat_id on telegram_config",
            ));
        }
        if !matches!(
            self.parse_mode.as_str(),
            "" | "Markdown" | "MarkdownV2" | "HTML"
        ) {
            return Err(cerr(
                format!("{at}.parse_mode"),
                format!(
                    "unknown parse_mode {:?} on telegram_config, must be Markdown, MarkdownV2, HTML or empty string",
                    self.parse_mode
                ),
            ));
        }
        if let Some(u) = &self.api_url {
            b::check_url(u, &format!("{at}.api_url"))?;
        }
        Ok(())
    }
}

pub struct TelegramSink {
    http: Http,
    conf: TelegramConfig,
    api_url: String,
    token: Option<Secret>,
    renderer: Arc<Renderer>,
}

impl TelegramSink {
    pub fn new(http: Http, conf: TelegramConfig, g: &b::GlobalB, renderer: Arc<Renderer>) -> Self {
        let api_url = conf
            .api_url
            .clone()
            .unwrap_or_else(|| g.telegram_api_url.clone());
        let token = conf.bot_token.clone();
        TelegramSink {
            http,
            conf,
            api_url,
            token,
            renderer,
        }
    }

    /// telebot's `sendMessage` parameters: every value a string.
    pub fn body(&self, n: &Notification) -> Result<serde_json::Value, SinkError> {
        let m = n.message(0);
        let html = self.conf.parse_mode == "HTML";
        let texts = b::Texts::new(&self.renderer, &m);
        let text = texts.render(&self.conf.message, html, "message");
        texts.finish("telegram")?;
        let (text, cut) = b::truncate_runes(&text, MAX_MESSAGE_LEN_RUNES);
        if cut {
            tracing::warn!(receiver = %m.receiver, max_runes = MAX_MESSAGE_LEN_RUNES, "telegram: truncated message");
        }
        let mut p = serde_json::Map::new();
        p.insert("chat_id".into(), self.conf.chat_id.to_string().into());
        p.insert("text".into(), text.into());
        if !self.conf.parse_mode.is_empty() {
            p.insert("parse_mode".into(), self.conf.parse_mode.clone().into());
        }
        p.insert("disable_web_page_preview".into(), "true".into());
        if self.conf.disable_notifications {
            p.insert("disable_notification".into(), "true".into());
        }
        Ok(serde_json::Value::Object(p))
    }
}

/// The Bot API's answer decides (`ok`), not the HTTP status, as telebot does; every
/// failure is retried, as Alertmanager 0.25 does (`return true, err`).
pub fn classify(status: u16, body: &str) -> Result<(), SinkError> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        ok: bool,
        #[serde(default)]
        error_code: u16,
        #[serde(default)]
        description: String,
    }
    match serde_json::from_str::<Answer>(body) {
        Ok(a) if a.ok => Ok(()),
        Ok(a) => Err(SinkError::retryable(format!(
            "telegram: {} ({})",
            a.description, a.error_code
        ))),
        Err(_) => Err(SinkError::retryable(format!(
            "telegram: unexpected response (status {status}): {}",
            body.chars().take(200).collect::<String>()
        ))),
    }
}

#[async_trait]
impl Sink for TelegramSink {
    fn kind(&self) -> &'static str {
        "telegram"
    }
    fn send_resolved(&self) -> bool {
        self.conf.send_resolved
    }
    async fn send(&self, n: &Notification, timeout: Duration) -> Result<(), SinkError> {
        let token = self
            .token
            .as_ref()
            .ok_or_else(|| SinkError::permanent("telegram: no bot_token"))?;
        // As telebot: the URL and "/bot" concatenated (the token is never logged).
        let url = format!("{}/bot{}/sendMessage", self.api_url, token.expose());
        let req = self.http.post_json(&url, &self.body(n)?);
        let (status, body) = self.http.send(req, timeout, "telegram").await?;
        classify(status, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::b::testutil::{notification, sink_config, yaml};
    use serde_json::json;

    fn sink(extra: &str) -> TelegramSink {
        let c = sink_config(&format!(
            "telegram_configs:\n      - {{bot_token: 'tok:en', chat_id: -1001{extra}}}\n"
        ));
        let conf = c.receivers[0].telegram_configs[0].clone();
        assert!(!format!("{conf:?}").contains("tok:en"));
        TelegramSink::new(
            Http::new(reqwest::Client::new(), &HttpConfig::default()),
            conf,
            &c.global_b,
            Arc::new(Renderer::default()),
        )
    }

    #[test]
    fn body_like_telebot() {
        let s = sink("");
        let mut n = notification(&[("web-1", true)]);
        n.alerts[0].generator_url = "http://prom/graph?g0.expr=up+%3E+0&g0.tab=1".into();
        let b = s.body(&n).unwrap();
        assert_eq!(b["chat_id"], "-1001");
        assert_eq!(b["parse_mode"], "HTML");
        assert_eq!(b["disable_web_page_preview"], "true");
        assert!(b.get("disable_notification").is_none());
        // html/template escapes the values: & and + of the generator URL.
        let text = b["text"].as_str().unwrap();
        assert!(
            text.contains("Source: http://prom/graph?g0.expr=up&#43;%3E&#43;0&amp;g0.tab=1"),
            "{text}"
        );
        assert!(
            text.starts_with("\n\nAlerts Firing:\nLabels:\n"),
            "{text:?}"
        );
        let s = sink(", parse_mode: '', disable_notifications: true, message: '{{ range .Alerts }}{{ .Labels.instance }}{{ end }}'");
        assert_eq!(
            s.body(&n).unwrap(),
            json!({"chat_id": "-1001", "text": "web-1", "disable_web_page_preview": "true", "disable_notification": "true"})
        );
    }

    #[test]
    fn long_message_truncated() {
        let s = sink(&format!(", message: '{}'", "é".repeat(5000)));
        let t = s.body(&notification(&[("web-1", true)])).unwrap()["text"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(t.chars().count(), 4096);
        assert!(t.ends_with('…'));
    }

    #[test]
    fn answers_decide() {
        assert!(classify(200, r#"{"ok":true,"result":{"message_id":1}}"#).is_ok());
        let e = classify(
            400,
            r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#,
        )
        .unwrap_err();
        // Retried, as Alertmanager 0.25 retries every telebot error.
        assert!(e.retryable && e.message.contains("chat not found"), "{e}");
        assert!(classify(429, r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 1","parameters":{"retry_after":1}}"#).unwrap_err().retryable);
        assert!(
            classify(502, "<html>bad gateway</html>")
                .unwrap_err()
                .retryable
        );
        assert!(classify(200, "not json").unwrap_err().retryable);
    }

    #[test]
    fn config_errors_name_the_field() {
        let e = crate::load_config(&yaml("telegram_configs:\n      - {chat_id: 1}\n")).unwrap_err();
        assert!(e.path.ends_with("telegram_configs[0].bot_token"), "{e}");
        let e =
            crate::load_config(&yaml("telegram_configs:\n      - {bot_token: t}\n")).unwrap_err();
        assert!(e.path.ends_with("telegram_configs[0].chat_id"), "{e}");
        let e = crate::load_config(&yaml(
            "telegram_configs:\n      - {bot_token: t, chat_id: 1, parse_mode: html}\n",
        ))
        .unwrap_err();
        assert!(
            e.path.ends_with("parse_mode") && e.message.contains("\"html\""),
            "{e}"
        );
        // Alertmanager 0.26's key: amtool 0.25 rejects it, so does Argus.
        let e = crate::load_config(&yaml(
            "telegram_configs:\n      - {bot_token_file: f, chat_id: 1}\n",
        ))
        .unwrap_err();
        assert!(
            e.to_string().contains("unknown field `bot_token_file`"),
            "{e}"
        );
        let e = crate::load_config(&yaml(
            "telegram_configs:\n      - {bot_token: t, chat_id: x}\n",
        ))
        .unwrap_err();
        assert!(
            e.to_string().contains("chat_id") || e.to_string().contains("invalid"),
            "{e}"
        );
    }
}
