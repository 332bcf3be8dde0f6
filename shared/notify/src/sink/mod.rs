//! Where notifications go. One small module per integration, all behind [`Sink`].

use crate::alert::StoredAlert;
use crate::config::{Config, Receiver};
use crate::payload::Message;
use crate::render::Renderer;
use argus_model::{Labels, Millis};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

pub mod email;
pub mod http;
pub mod log;
pub mod opsgenie;
pub mod pagerduty;
pub mod slack;
pub mod sns;
pub mod tmpl;
pub mod webhook;
// Part B receivers (issue 15): each config and sink in its own file.
pub mod b;
pub mod discord;
pub mod msteams;
pub mod pushover;
pub mod telegram;
pub mod victorops;
pub mod webex;
pub mod wechat;
pub use b::DEFAULT_B_TMPL;

/// One notification for one integration of a receiver.
#[derive(Clone, Debug)]
pub struct Notification {
    pub receiver: String,
    pub group_key: String,
    pub group_labels: Labels,
    /// In notification order, already filtered for `send_resolved`.
    pub alerts: Vec<StoredAlert>,
    pub external_url: String,
    pub now: Millis,
    /// The notification-log key (receiver, integration, group).
    pub nflog_key: String,
    /// Same for every attempt at the same state change (FIFO deduplication id).
    pub dedup_id: String,
}

impl Notification {
    /// The v4 body; `max_alerts` 0 = all.
    pub fn message(&self, max_alerts: u64) -> Message {
        Message::build(
            &self.receiver,
            &self.group_key,
            &self.group_labels,
            &self.alerts,
            &self.external_url,
            max_alerts,
            self.now,
        )
    }
}

/// A failed delivery; `retryable` says whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    pub retryable: bool,
    pub message: String,
}

impl SinkError {
    pub fn retryable(m: impl Into<String>) -> Self {
        SinkError {
            retryable: true,
            message: m.into(),
        }
    }
    pub fn permanent(m: impl Into<String>) -> Self {
        SinkError {
            retryable: false,
            message: m.into(),
        }
    }
}

#[async_trait]
pub trait Sink: Send + Sync {
    /// `webhook`, `slack`, `sns`, `log`: Alertmanager's integration names.
    fn kind(&self) -> &'static str;
    fn send_resolved(&self) -> bool;
    /// One attempt; `timeout` is what is left of the attempt's budget.
    async fn send(&self, n: &Notification, timeout: Duration) -> Result<(), SinkError>;
}

/// The clients sinks share, built once (at cold start).
#[derive(Clone)]
pub struct Clients {
    pub http: reqwest::Client,
    pub sns: Option<aws_sdk_sns::Client>,
}

impl Clients {
    pub fn new(http: reqwest::Client, sns: Option<aws_sdk_sns::Client>) -> Self {
        Clients { http, sns }
    }
    /// An HTTP client only (no SNS): `sns_configs` then fail with a clear error.
    pub fn http_only() -> Self {
        Clients {
            http: default_http(),
            sns: None,
        }
    }
}

pub fn default_http() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("Argus/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default()
}

/// The integrations of one receiver, in Alertmanager's order (index per kind).
pub struct Integration {
    pub kind: &'static str,
    pub index: usize,
    pub sink: Arc<dyn Sink>,
}

/// Builds every receiver's integrations from the configuration.
pub fn build_integrations(
    config: &Config,
    clients: &Clients,
    renderer: &Arc<Renderer>,
) -> Vec<(String, Vec<Integration>)> {
    config
        .receivers
        .iter()
        .map(|r| {
            (
                r.name.clone(),
                integrations_of(r, config, clients, renderer),
            )
        })
        .collect()
}

fn integrations_of(
    r: &Receiver,
    config: &Config,
    clients: &Clients,
    renderer: &Arc<Renderer>,
) -> Vec<Integration> {
    let mut v: Vec<Integration> = Vec::new();
    // `proxy_url`, `follow_redirects: false` and `tls_config` need a client of their own
    // (checked when the configuration was loaded).
    let client_for = |h: &crate::config::HttpConfig| {
        if !h.needs_own_client() {
            return clients.http.clone();
        }
        h.build_client().unwrap_or_else(|e| {
            tracing::error!(receiver = %r.name, error = %e, "http_config: client not built, using the default client");
            clients.http.clone()
        })
    };
    for (i, w) in r.webhook_configs.iter().enumerate() {
        let hc = w.http_config.as_ref().unwrap_or(&config.http_config);
        let http = client_for(hc);
        let auth = hc.auth_header();
        v.push(Integration {
            kind: "webhook",
            index: i,
            sink: Arc::new(webhook::WebhookSink::new(http, w.clone(), auth)),
        });
    }
    for (i, s) in r.slack_configs.iter().enumerate() {
        let url = s
            .api_url
            .clone()
            .or(config.slack_api_url.clone())
            .unwrap_or_default();
        let hc = s.http_config.as_ref().unwrap_or(&config.http_config);
        v.push(Integration {
            kind: "slack",
            index: i,
            sink: Arc::new(slack::SlackSink::with_auth(
                client_for(hc),
                s.clone(),
                url,
                http::Authorizer::new(hc),
                renderer.clone(),
            )),
        });
    }
    for (i, s) in r.sns_configs.iter().enumerate() {
        v.push(Integration {
            kind: "sns",
            index: i,
            sink: Arc::new(sns::SnsSink::new(
                clients.sns.clone(),
                s.clone(),
                renderer.clone(),
            )),
        });
    }
    for (i, c) in r.email_configs.iter().enumerate() {
        v.push(Integration {
            kind: "email",
            index: i,
            sink: Arc::new(email::EmailSink::new(
                c.clone(),
                &config.smtp,
                renderer.clone(),
            )),
        });
    }
    for (i, c) in r.pagerduty_configs.iter().enumerate() {
        let hc = c.http_config.as_ref().unwrap_or(&config.http_config);
        v.push(Integration {
            kind: "pagerduty",
            index: i,
            sink: Arc::new(pagerduty::PagerdutySink::new(
                client_for(hc),
                c.clone(),
                &config.pagerduty,
                hc,
                renderer.clone(),
            )),
        });
    }
    for (i, c) in r.opsgenie_configs.iter().enumerate() {
        let hc = c.http_config.as_ref().unwrap_or(&config.http_config);
        v.push(Integration {
            kind: "opsgenie",
            index: i,
            sink: Arc::new(opsgenie::OpsgenieSink::new(
                client_for(hc),
                c.clone(),
                &config.opsgenie,
                renderer.clone(),
            )),
        });
    }
    for (i, l) in r.log_configs.iter().enumerate() {
        v.push(Integration {
            kind: "log",
            index: i,
            sink: Arc::new(log::LogSink::new(l.clone())),
        });
    }
    let http_b = |h: &Option<crate::config::HttpConfig>| {
        let hc = h.as_ref().unwrap_or(&config.http_config);
        b::Http::new(client_for(hc), hc)
    };
    for (i, c) in r.victorops_configs.iter().enumerate() {
        v.push(Integration {
            kind: "victorops",
            index: i,
            sink: Arc::new(victorops::VictorOpsSink::new(
                http_b(&c.http_config),
                c.clone(),
                &config.global_b,
                renderer.clone(),
            )),
        });
    }
    for (i, c) in r.pushover_configs.iter().enumerate() {
        v.push(Integration {
            kind: "pushover",
            index: i,
            sink: Arc::new(pushover::PushoverSink::new(
                http_b(&c.http_config),
                c.clone(),
                renderer.clone(),
            )),
        });
    }
    for (i, c) in r.telegram_configs.iter().enumerate() {
        v.push(Integration {
            kind: "telegram",
            index: i,
            sink: Arc::new(telegram::TelegramSink::new(
                http_b(&c.http_config),
                c.clone(),
                &config.global_b,
                renderer.clone(),
            )),
        });
    }
    for (i, c) in r.webex_configs.iter().enumerate() {
        v.push(Integration {
            kind: "webex",
            index: i,
            sink: Arc::new(webex::WebexSink::new(
                http_b(&c.http_config),
                c.clone(),
                &config.global_b,
                renderer.clone(),
            )),
        });
    }
    for (i, c) in r.discord_configs.iter().enumerate() {
        v.push(Integration {
            kind: "discord",
            index: i,
            sink: Arc::new(discord::DiscordSink::new(
                http_b(&c.http_config),
                c.clone(),
                renderer.clone(),
            )),
        });
    }
    for (i, c) in r.wechat_configs.iter().enumerate() {
        v.push(Integration {
            kind: "wechat",
            index: i,
            sink: Arc::new(wechat::WechatSink::new(
                http_b(&c.http_config),
                c.clone(),
                &config.global_b,
                renderer.clone(),
            )),
        });
    }
    for (i, c) in r.msteams_configs.iter().enumerate() {
        v.push(Integration {
            kind: "msteams",
            index: i,
            sink: Arc::new(msteams::MsTeamsSink::new(
                http_b(&c.http_config),
                c.clone(),
                renderer.clone(),
            )),
        });
    }
    v
}
