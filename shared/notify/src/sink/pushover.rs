//! Pushover, as Alertmanager 0.25's notify/pushover: `POST` to the messages endpoint
//! with every parameter in the query string (`Content-Type: text/plain`, no body).

use super::b::{self, cerr, Http, Secret};
use super::{Notification, Sink, SinkError};
use crate::config::{ConfigError, HttpConfig};
use crate::render::Renderer;
use argus_model::time::serde_duration;
use async_trait::async_trait;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// Alertmanager 0.25's fixed endpoint.
pub const API_URL: &str = "https://api.pushover.net/1/messages.json";
pub const MAX_TITLE_LEN_RUNES: usize = 250;
pub const MAX_MESSAGE_LEN_RUNES: usize = 1024;
pub const MAX_URL_LEN_RUNES: usize = 512;

pub const DEFAULT_TITLE: &str = r#"{{ template "pushover.default.title" . }}"#;
pub const DEFAULT_MESSAGE: &str = r#"{{ template "pushover.default.message" . }}"#;
pub const DEFAULT_URL: &str = r#"{{ template "pushover.default.url" . }}"#;
pub const DEFAULT_PRIORITY: &str = r#"{{ if eq .Status "firing" }}2{{ else }}0{{ end }}"#;

/// `pushover_configs` (Alertmanager 0.25 keys and defaults).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushoverConfig {
    #[serde(default = "yes")]
    pub send_resolved: bool,
    pub http_config: Option<HttpConfig>,
    #[serde(default)]
    pub user_key: Secret,
    #[serde(default)]
    pub token: Secret,
    #[serde(default = "title")]
    pub title: String,
    #[serde(default = "message")]
    pub message: String,
    #[serde(default = "url")]
    pub url: String,
    #[serde(default)]
    pub url_title: String,
    #[serde(default)]
    pub sound: String,
    #[serde(default = "priority")]
    pub priority: String,
    #[serde(default = "one_minute", with = "serde_duration")]
    pub retry: Duration,
    #[serde(default = "one_hour", with = "serde_duration")]
    pub expire: Duration,
    #[serde(default)]
    pub html: bool,
    /// Argus extension (not in Alertmanager 0.25, whose endpoint is fixed): another
    /// endpoint, for tests or a relay.
    pub api_url: Option<String>,
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
fn url() -> String {
    DEFAULT_URL.into()
}
fn priority() -> String {
    DEFAULT_PRIORITY.into()
}
fn one_minute() -> Duration {
    Duration::from_secs(60)
}
fn one_hour() -> Duration {
    Duration::from_secs(3600)
}

impl PushoverConfig {
    pub fn check(&self, at: &str) -> Result<(), ConfigError> {
        if self.user_key.is_empty() {
            return Err(cerr(
                format!("{at}.user_key"),
                "missing user key in Pushover config",
            ));
        }
        if self.token.is_empty() {
            return Err(cerr(
                format!("{at}.token"),
                "missing token in Pushover config",
            ));
        }
        if let Some(u) = &self.api_url {
            b::check_url(u, &format!("{at}.api_url"))?;
        }
        Ok(())
    }

    pub fn templates(&self) -> Vec<(String, &str)> {
        vec![
            ("token".to_string(), self.token.expose()),
            ("user_key".into(), self.user_key.expose()),
            ("title".into(), &self.title),
            ("message".into(), &self.message),
            ("url".into(), &self.url),
            ("url_title".into(), &self.url_title),
            ("priority".into(), &self.priority),
            ("sound".into(), &self.sound),
        ]
    }
}

pub struct PushoverSink {
    http: Http,
    conf: PushoverConfig,
    renderer: Arc<Renderer>,
}

impl PushoverSink {
    pub fn new(http: Http, conf: PushoverConfig, renderer: Arc<Renderer>) -> Self {
        PushoverSink {
            http,
            conf,
            renderer,
        }
    }

    /// The query parameters, in Alertmanager's order (`url.Values.Encode` sorts them).
    pub fn params(&self, n: &Notification) -> Result<Vec<(&'static str, String)>, SinkError> {
        let m = n.message(0);
        let texts = b::Texts::new(&self.renderer, &m);
        let t = |src: &str, what: &str| texts.t(src, what);
        let mut p = vec![
            ("token", t(self.conf.token.expose(), "token")),
            ("user", t(self.conf.user_key.expose(), "user_key")),
        ];
        let (title, cut) = b::truncate_runes(&t(&self.conf.title, "title"), MAX_TITLE_LEN_RUNES);
        if cut {
            tracing::warn!(receiver = %m.receiver, max_runes = MAX_TITLE_LEN_RUNES, "pushover: truncated title");
        }
        p.push(("title", title));
        let message = if self.conf.html {
            p.push(("html", "1".into()));
            texts.render(&self.conf.message, true, "message")
        } else {
            t(&self.conf.message, "message")
        };
        let (message, cut) = b::truncate_runes(&message, MAX_MESSAGE_LEN_RUNES);
        if cut {
            tracing::warn!(receiver = %m.receiver, max_runes = MAX_MESSAGE_LEN_RUNES, "pushover: truncated message");
        }
        let mut message = message.trim().to_string();
        if message.is_empty() {
            // Pushover rejects empty messages.
            message = "(no details)".into();
        }
        p.push(("message", message));
        let (u, cut) = b::truncate_runes(&t(&self.conf.url, "url"), MAX_URL_LEN_RUNES);
        if cut {
            tracing::warn!(receiver = %m.receiver, max_runes = MAX_URL_LEN_RUNES, "pushover: truncated url");
        }
        p.push(("url", u));
        p.push(("url_title", t(&self.conf.url_title, "url_title")));
        p.push(("priority", t(&self.conf.priority, "priority")));
        p.push(("retry", self.conf.retry.as_secs().to_string()));
        p.push(("expire", self.conf.expire.as_secs().to_string()));
        p.push(("sound", t(&self.conf.sound, "sound")));
        p.sort_by_key(|(k, _)| *k);
        texts.finish("pushover")?;
        Ok(p)
    }
}

#[async_trait]
impl Sink for PushoverSink {
    fn kind(&self) -> &'static str {
        "pushover"
    }
    fn send_resolved(&self) -> bool {
        self.conf.send_resolved
    }
    async fn send(&self, n: &Notification, timeout: Duration) -> Result<(), SinkError> {
        let mut u = url::Url::parse(self.conf.api_url.as_deref().unwrap_or(API_URL))
            .map_err(|e| SinkError::permanent(format!("pushover: api_url: {e}")))?;
        // Go's url.Values.Encode: form encoding (space as '+').
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.params(n)?)
            .finish();
        u.set_query(Some(&q));
        // The URL holds the token: never logged (Http::send drops it from errors).
        let req = self
            .http
            .client
            .post(u.as_str())
            .header("content-type", "text/plain");
        let (status, body) = self.http.send(req, timeout, "pushover").await?;
        b::check(status, &body, "pushover")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::b::testutil::{notification, sink_config, yaml};

    #[test]
    fn params_like_alertmanager() {
        let c = sink_config("pushover_configs:\n      - {user_key: u-key, token: t-key, retry: 30s, expire: 2h, sound: siren}\n");
        let conf = c.receivers[0].pushover_configs[0].clone();
        assert!(!format!("{conf:?}").contains("t-key"));
        let s = PushoverSink::new(
            Http::new(reqwest::Client::new(), &HttpConfig::default()),
            conf,
            Arc::new(Renderer::default()),
        );
        let p: std::collections::BTreeMap<_, _> = s
            .params(&notification(&[("web-1", true)]))
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(p["token"], "t-key");
        assert_eq!(p["user"], "u-key");
        assert_eq!(p["title"], "[FIRING:1] Down (web-1)");
        assert_eq!(p["priority"], "2");
        assert_eq!(p["retry"], "30");
        assert_eq!(p["expire"], "7200");
        assert_eq!(p["sound"], "siren");
        assert_eq!(p["url"], "http://am/#/alerts?receiver=r");
        assert!(
            p["message"].starts_with("is down\n\nAlerts Firing:\nLabels:"),
            "{:?}",
            p["message"]
        );
        assert!(!p.contains_key("html"));
        let p: std::collections::BTreeMap<_, _> = s
            .params(&notification(&[("web-1", false)]))
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(p["priority"], "0");
    }

    #[test]
    fn long_title_truncated_and_errors() {
        let c = sink_config(&format!(
            "pushover_configs:\n      - {{user_key: u, token: t, title: '{}', message: '  '}}\n",
            "x".repeat(300)
        ));
        let s = PushoverSink::new(
            Http::new(reqwest::Client::new(), &HttpConfig::default()),
            c.receivers[0].pushover_configs[0].clone(),
            Arc::new(Renderer::default()),
        );
        let p: std::collections::BTreeMap<_, _> = s
            .params(&notification(&[("web-1", true)]))
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(p["title"].chars().count(), 250);
        assert!(p["title"].ends_with('…'));
        assert_eq!(p["message"], "(no details)");
        let e = crate::load_config(&yaml("pushover_configs:\n      - {token: t}\n")).unwrap_err();
        assert!(e.path.ends_with("pushover_configs[0].user_key"), "{e}");
        let e =
            crate::load_config(&yaml("pushover_configs:\n      - {user_key: u}\n")).unwrap_err();
        assert!(e.path.ends_with("pushover_configs[0].token"), "{e}");
    }
}
