//! PagerDuty (notify/pagerduty of Alertmanager 0.25): Events API v2 (`routing_key`) and
//! v1 (`service_key`). Dedup key / incident key = SHA-256 of the group key; summary and
//! v1 description truncated to 1024 characters; an event over 512 kB loses its custom
//! details. Retried: 5xx and 429 (v2), 5xx and 403 (v1); other statuses are not.

use super::http::{key_hash, send, truncate_runes, Authorizer};
use super::tmpl::Tmpl;
use super::{Notification, Sink, SinkError};
use crate::config::{cerr, check_url, ConfigError, HttpConfig};
use crate::render::Renderer;
use crate::secret::{read_secret_file, Secret};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// `global.pagerduty_url`'s default.
pub const DEFAULT_PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";
/// Alertmanager 0.25 posts v1 events here (not configurable there).
pub const PAGERDUTY_V1_URL: &str =
    "https://events.pagerduty.com/generic/2010-04-15/create_event.json";
const MAX_EVENT_SIZE: usize = 512_000;
const MAX_SUMMARY_RUNES: usize = 1024;

/// The `global:` setting of this integration.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PagerdutyGlobal {
    pub pagerduty_url: Option<String>,
}

fn yes() -> bool {
    true
}
fn d_client() -> String {
    r#"{{ template "pagerduty.default.client" . }}"#.into()
}
fn d_client_url() -> String {
    r#"{{ template "pagerduty.default.clientURL" . }}"#.into()
}
fn d_description() -> String {
    r#"{{ template "pagerduty.default.description" .}}"#.into()
}

/// `pagerduty_configs` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyConfig {
    #[serde(default = "yes")]
    pub send_resolved: bool,
    pub http_config: Option<HttpConfig>,
    #[serde(default)]
    pub service_key: Secret,
    pub service_key_file: Option<String>,
    #[serde(default)]
    pub routing_key: Secret,
    pub routing_key_file: Option<String>,
    /// v2 endpoint; default `global.pagerduty_url`. Argus also uses it for v1 when set
    /// here (Alertmanager 0.25 always posts v1 to events.pagerduty.com).
    pub url: Option<String>,
    #[serde(default = "d_client")]
    pub client: String,
    #[serde(default = "d_client_url")]
    pub client_url: String,
    #[serde(default = "d_description")]
    pub description: String,
    /// Alertmanager's four default details are added unless overridden.
    #[serde(default)]
    pub details: BTreeMap<String, String>,
    #[serde(default)]
    pub images: Vec<PagerdutyImage>,
    #[serde(default)]
    pub links: Vec<PagerdutyLink>,
    /// Default: `client`.
    pub source: Option<String>,
    #[serde(default)]
    pub severity: String,
    #[serde(default)]
    pub class: String,
    #[serde(default)]
    pub component: String,
    #[serde(default)]
    pub group: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyImage {
    #[serde(default)]
    pub src: String,
    #[serde(default)]
    pub alt: String,
    #[serde(default)]
    pub href: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyLink {
    #[serde(default)]
    pub href: String,
    #[serde(default)]
    pub text: String,
}

/// `DefaultPagerdutyDetails`.
pub const DEFAULT_DETAILS: [(&str, &str); 4] = [
    (
        "firing",
        r#"{{ template "pagerduty.default.instances" .Alerts.Firing }}"#,
    ),
    (
        "resolved",
        r#"{{ template "pagerduty.default.instances" .Alerts.Resolved }}"#,
    ),
    ("num_firing", r#"{{ .Alerts.Firing | len }}"#),
    ("num_resolved", r#"{{ .Alerts.Resolved | len }}"#),
];

impl PagerdutyConfig {
    /// Alertmanager's checks (`PagerdutyConfig.UnmarshalYAML`), naming the field.
    pub fn validate(&self, at: &str, global: &PagerdutyGlobal) -> Result<(), ConfigError> {
        if self.routing_key.is_empty()
            && self.service_key.is_empty()
            && self.routing_key_file.is_none()
            && self.service_key_file.is_none()
        {
            return Err(cerr(
                format!("{at}.routing_key"),
                "missing service or routing key in PagerDuty config (routing_key, routing_key_file, service_key or service_key_file)",
            ));
        }
        if !self.routing_key.is_empty() && self.routing_key_file.is_some() {
            return Err(cerr(
                at,
                "at most one of routing_key & routing_key_file must be configured",
            ));
        }
        if !self.service_key.is_empty() && self.service_key_file.is_some() {
            return Err(cerr(
                at,
                "at most one of service_key & service_key_file must be configured",
            ));
        }
        if let Some(u) = self.url.as_ref().or(global.pagerduty_url.as_ref()) {
            check_url(u).map_err(|m| cerr(format!("{at}.url"), m))?;
        }
        if let Some(h) = &self.http_config {
            crate::config::check_http_config(h, &format!("{at}.http_config"))?;
        }
        Ok(())
    }

    /// Every template text, for the configuration check.
    pub fn templates(&self) -> Vec<(String, &str)> {
        let mut v: Vec<(String, &str)> = vec![
            ("client".into(), self.client.as_str()),
            ("client_url".into(), self.client_url.as_str()),
            ("description".into(), self.description.as_str()),
            ("severity".into(), self.severity.as_str()),
            ("class".into(), self.class.as_str()),
            ("component".into(), self.component.as_str()),
            ("group".into(), self.group.as_str()),
        ];
        if let Some(s) = &self.source {
            v.push(("source".into(), s));
        }
        for (k, t) in &self.details {
            v.push((format!("details.{k}"), t));
        }
        v
    }

    /// Reads `routing_key_file` / `service_key_file` and the http_config files.
    pub fn read_files(&mut self, dir: &std::path::Path, at: &str) -> Result<(), ConfigError> {
        if let Some(f) = self.routing_key_file.clone() {
            self.routing_key =
                read_secret_file(dir, &f).map_err(|m| cerr(format!("{at}.routing_key_file"), m))?;
        }
        if let Some(f) = self.service_key_file.clone() {
            self.service_key =
                read_secret_file(dir, &f).map_err(|m| cerr(format!("{at}.service_key_file"), m))?;
        }
        if let Some(h) = &mut self.http_config {
            crate::config::read_http_files(h, dir, &format!("{at}.http_config"))?;
        }
        Ok(())
    }

    fn is_v1(&self) -> bool {
        !self.service_key.is_empty() || self.service_key_file.is_some()
    }
}

pub struct PagerdutySink {
    http: reqwest::Client,
    conf: PagerdutyConfig,
    url: String,
    auth: Authorizer,
    renderer: Arc<Renderer>,
}

#[derive(Serialize)]
struct Image {
    src: String,
    alt: String,
    href: String,
}

#[derive(Serialize)]
struct Link {
    href: String,
    text: String,
}

impl PagerdutySink {
    pub fn new(
        http: reqwest::Client,
        conf: PagerdutyConfig,
        global: &PagerdutyGlobal,
        http_config: &HttpConfig,
        renderer: Arc<Renderer>,
    ) -> Self {
        let url = if conf.is_v1() {
            conf.url.clone().unwrap_or_else(|| PAGERDUTY_V1_URL.into())
        } else {
            conf.url
                .clone()
                .or(global.pagerduty_url.clone())
                .unwrap_or_else(|| DEFAULT_PAGERDUTY_URL.into())
        };
        PagerdutySink {
            http,
            auth: Authorizer::new(http_config),
            conf,
            url,
            renderer,
        }
    }

    /// The event Alertmanager 0.25 would post (JSON), or why none can be sent.
    pub fn body(&self, n: &Notification) -> Result<Value, SinkError> {
        let m = n.message(0);
        let resolved = m.status == "resolved";
        let event = if resolved { "resolve" } else { "trigger" };
        let key = key_hash(&n.group_key);
        // Details: each its own template, an error fails at once (as Alertmanager).
        let mut details = Map::new();
        let mut all: BTreeMap<&str, &str> = DEFAULT_DETAILS.into_iter().collect();
        for (k, v) in &self.conf.details {
            all.insert(k, v);
        }
        for (k, v) in all {
            let d = self
                .renderer
                .render(v, &m)
                .map_err(|e| SinkError::permanent(format!("pagerduty: {k:?}: template: {e}")))?;
            details.insert(k.to_string(), Value::String(d));
        }
        let mut t = Tmpl::new(&self.renderer, &m);
        let mut obj = Map::new();
        let put = |o: &mut Map<String, Value>, k: &str, v: String| {
            if !v.is_empty() {
                o.insert(k.into(), Value::String(v));
            }
        };
        if self.conf.is_v1() {
            let (description, _) = truncate_runes(&t.t(&self.conf.description), MAX_SUMMARY_RUNES);
            let key_t = t.t(self.conf.service_key.expose());
            put(&mut obj, "service_key", key_t.clone());
            put(&mut obj, "incident_key", key);
            put(&mut obj, "event_type", event.into());
            put(&mut obj, "description", description);
            // `event_action` has no omitempty in Alertmanager's struct, nor `payload`.
            obj.insert("event_action".into(), Value::String(String::new()));
            obj.insert("payload".into(), Value::Null);
            if !resolved {
                let c = t.t(&self.conf.client);
                let cu = t.t(&self.conf.client_url);
                put(&mut obj, "client", c);
                put(&mut obj, "client_url", cu);
            }
            if !details.is_empty() {
                obj.insert("details".into(), Value::Object(details));
            }
            t.finish("pagerduty v1")?;
            if key_t.is_empty() {
                return Err(SinkError::permanent(
                    "pagerduty v1: service key cannot be empty",
                ));
            }
        } else {
            let (summary, _) = truncate_runes(&t.t(&self.conf.description), MAX_SUMMARY_RUNES);
            let severity = if self.conf.severity.is_empty() {
                "error".to_string()
            } else {
                t.t(&self.conf.severity)
            };
            let source = t.t(self.conf.source.as_deref().unwrap_or(&self.conf.client));
            let mut payload = Map::new();
            payload.insert("summary".into(), Value::String(summary));
            payload.insert("source".into(), Value::String(source));
            payload.insert("severity".into(), Value::String(severity));
            let class = t.t(&self.conf.class);
            let component = t.t(&self.conf.component);
            let group = t.t(&self.conf.group);
            put(&mut payload, "class", class);
            put(&mut payload, "component", component);
            put(&mut payload, "group", group);
            if !details.is_empty() {
                payload.insert("custom_details".into(), Value::Object(details));
            }
            let client = t.t(&self.conf.client);
            let client_url = t.t(&self.conf.client_url);
            let routing_key = t.t(self.conf.routing_key.expose());
            let images: Vec<Image> = self
                .conf
                .images
                .iter()
                .map(|i| Image {
                    src: t.t(&i.src),
                    alt: t.t(&i.alt),
                    href: t.t(&i.href),
                })
                .filter(|i| !i.src.is_empty())
                .collect();
            let links: Vec<Link> = self
                .conf
                .links
                .iter()
                .map(|l| Link {
                    href: t.t(&l.href),
                    text: t.t(&l.text),
                })
                .filter(|l| !l.href.is_empty())
                .collect();
            put(&mut obj, "routing_key", routing_key.clone());
            put(&mut obj, "dedup_key", key);
            obj.insert("event_action".into(), Value::String(event.into()));
            obj.insert("payload".into(), Value::Object(payload));
            put(&mut obj, "client", client);
            put(&mut obj, "client_url", client_url);
            if !images.is_empty() {
                obj.insert("images".into(), json!(images));
            }
            if !links.is_empty() {
                obj.insert("links".into(), json!(links));
            }
            t.finish("pagerduty")?;
            if routing_key.is_empty() {
                return Err(SinkError::permanent(
                    "pagerduty: routing key cannot be empty",
                ));
            }
        }
        Ok(Value::Object(obj))
    }

    /// The encoded event; over 512 kB the custom details are replaced, as Alertmanager does.
    pub fn encode(&self, mut v: Value) -> Vec<u8> {
        let mut b = serde_json::to_vec(&v).unwrap_or_default();
        if b.len() > MAX_EVENT_SIZE {
            let msg = json!({"error": "Custom details have been removed because the original event exceeds the maximum size of 512kB"});
            if self.conf.is_v1() {
                v["details"] = msg;
            } else {
                v["payload"]["custom_details"] = msg;
            }
            tracing::warn!(
                size = b.len(),
                "pagerduty: event too large, custom details removed"
            );
            b = serde_json::to_vec(&v).unwrap_or_default();
        }
        b.push(b'\n');
        b
    }
}

#[async_trait::async_trait]
impl Sink for PagerdutySink {
    fn kind(&self) -> &'static str {
        "pagerduty"
    }
    fn send_resolved(&self) -> bool {
        self.conf.send_resolved
    }
    async fn send(&self, n: &Notification, timeout: Duration) -> Result<(), SinkError> {
        let body = self.encode(self.body(n)?);
        let auth = self.auth.header(&self.http).await?;
        let (retry, what): (&[u16], &str) = if self.conf.is_v1() {
            (&[403], "pagerduty v1")
        } else {
            (&[429], "pagerduty")
        };
        send(
            &self.http,
            reqwest::Method::POST,
            &self.url,
            &[("content-type", "application/json")],
            auth.as_ref(),
            body,
            timeout,
            retry,
            what,
        )
        .await
        .map(|_| ())
    }
}
