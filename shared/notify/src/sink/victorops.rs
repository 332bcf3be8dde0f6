//! VictorOps (Splunk On-Call) REST endpoint, as Alertmanager 0.25's notify/victorops:
//! `POST {api_url}{api_key}/{routing_key}` with a flat JSON object.

use super::b::{self, cerr, Http, Secret, SecretSource};
use super::{Notification, Sink, SinkError};
use crate::config::{ConfigError, HttpConfig};
use crate::render::Renderer;
use async_trait::async_trait;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// `notify/victorops`: state messages longer than this are truncated.
pub const MAX_MESSAGE_LEN_RUNES: usize = 20480;

pub const DEFAULT_STATE_MESSAGE: &str = r#"{{ template "victorops.default.state_message" . }}"#;
pub const DEFAULT_ENTITY_DISPLAY_NAME: &str =
    r#"{{ template "victorops.default.entity_display_name" . }}"#;
pub const DEFAULT_MONITORING_TOOL: &str = r#"{{ template "victorops.default.monitoring_tool" . }}"#;

/// `victorops_configs` (Alertmanager 0.25 keys and defaults).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VictorOpsConfig {
    #[serde(default = "yes")]
    pub send_resolved: bool,
    pub http_config: Option<HttpConfig>,
    pub api_key: Option<Secret>,
    pub api_key_file: Option<String>,
    /// Falls back to `global.victorops_api_url`.
    pub api_url: Option<String>,
    #[serde(default)]
    pub routing_key: String,
    #[serde(default = "critical")]
    pub message_type: String,
    #[serde(default = "state_message")]
    pub state_message: String,
    #[serde(default = "entity_display_name")]
    pub entity_display_name: String,
    #[serde(default = "monitoring_tool")]
    pub monitoring_tool: String,
    #[serde(default)]
    pub custom_fields: BTreeMap<String, String>,
}

fn yes() -> bool {
    true
}
fn critical() -> String {
    "CRITICAL".into()
}
fn state_message() -> String {
    DEFAULT_STATE_MESSAGE.into()
}
fn entity_display_name() -> String {
    DEFAULT_ENTITY_DISPLAY_NAME.into()
}
fn monitoring_tool() -> String {
    DEFAULT_MONITORING_TOOL.into()
}

const RESERVED: &[&str] = &[
    "routing_key",
    "message_type",
    "state_message",
    "entity_display_name",
    "monitoring_tool",
    "entity_id",
    "entity_state",
];

impl VictorOpsConfig {
    pub fn check(&self, g: &b::GlobalB, at: &str) -> Result<(), ConfigError> {
        if self.routing_key.is_empty() {
            return Err(cerr(
                format!("{at}.routing_key"),
                "missing Routing key in VictorOps config",
            ));
        }
        if self.api_key.is_some() && self.api_key_file.is_some() {
            return Err(cerr(
                at,
                "at most one of api_key & api_key_file must be configured",
            ));
        }
        if let Some(k) = RESERVED
            .iter()
            .find(|k| self.custom_fields.contains_key(**k))
        {
            return Err(cerr(
                format!("{at}.custom_fields"),
                format!("victorOps config contains custom field {k} which cannot be used as it conflicts with the fixed/static fields"),
            ));
        }
        if let Some(u) = &self.api_url {
            b::check_url(u, &format!("{at}.api_url"))?;
        }
        if self.key_source(g).is_none() {
            return Err(cerr(
                format!("{at}.api_key"),
                "no global VictorOps API Key set (api_key, api_key_file or global.victorops_api_key[_file])",
            ));
        }
        Ok(())
    }

    pub fn templates(&self) -> Vec<(String, &str)> {
        let mut v = vec![
            ("routing_key".to_string(), self.routing_key.as_str()),
            ("message_type".into(), &self.message_type),
            ("state_message".into(), &self.state_message),
            ("entity_display_name".into(), &self.entity_display_name),
            ("monitoring_tool".into(), &self.monitoring_tool),
        ];
        for (k, t) in &self.custom_fields {
            v.push((format!("custom_fields.{k}"), t));
        }
        v
    }

    fn key_source(&self, g: &b::GlobalB) -> Option<SecretSource> {
        SecretSource::from_pair(&self.api_key, &self.api_key_file)
            .or_else(|| SecretSource::from_pair(&g.victorops_api_key, &g.victorops_api_key_file))
    }
}

pub struct VictorOpsSink {
    http: Http,
    conf: VictorOpsConfig,
    /// Ends with `/` (Alertmanager appends one).
    api_url: String,
    key: Option<SecretSource>,
    renderer: Arc<Renderer>,
}

impl VictorOpsSink {
    pub fn new(http: Http, conf: VictorOpsConfig, g: &b::GlobalB, renderer: Arc<Renderer>) -> Self {
        let mut api_url = conf
            .api_url
            .clone()
            .unwrap_or_else(|| g.victorops_api_url.clone());
        if !api_url.ends_with('/') {
            api_url.push('/');
        }
        let key = conf.key_source(g);
        VictorOpsSink {
            http,
            conf,
            api_url,
            key,
            renderer,
        }
    }

    /// The JSON body (`createVictorOpsPayload`).
    pub fn body(&self, n: &Notification) -> Result<serde_json::Value, SinkError> {
        let m = n.message(0);
        let texts = b::Texts::new(&self.renderer, &m);
        let t = |src: &str, what: &str| texts.t(src, what);
        let mut message_type = t(&self.conf.message_type, "message_type");
        if m.status == "firing" && !matches!(message_type.as_str(), "INFO" | "WARNING" | "CRITICAL")
        {
            message_type = "CRITICAL".into();
        }
        if m.status == "resolved" {
            message_type = "RECOVERY".into();
        }
        let (state_message, truncated) = b::truncate_runes(
            &t(&self.conf.state_message, "state_message"),
            MAX_MESSAGE_LEN_RUNES,
        );
        if truncated {
            tracing::warn!(receiver = %m.receiver, max_runes = MAX_MESSAGE_LEN_RUNES, "victorops: truncated state_message");
        }
        let mut msg = serde_json::Map::new();
        msg.insert("message_type".into(), message_type.into());
        msg.insert("entity_id".into(), b::key_hash(&n.group_key).into());
        msg.insert(
            "entity_display_name".into(),
            t(&self.conf.entity_display_name, "entity_display_name").into(),
        );
        msg.insert("state_message".into(), state_message.into());
        msg.insert(
            "monitoring_tool".into(),
            t(&self.conf.monitoring_tool, "monitoring_tool").into(),
        );
        for (k, v) in &self.conf.custom_fields {
            msg.insert(k.clone(), t(v, "custom_fields").into());
        }
        texts.finish("victorops")?;
        Ok(serde_json::Value::Object(msg))
    }

    /// `{api_url}{api_key}/{routing_key}` (the key is in the path: never logged).
    fn url(&self, n: &Notification, key: &Secret) -> Result<url::Url, SinkError> {
        let m = n.message(0);
        let texts = b::Texts::new(&self.renderer, &m);
        let routing = texts.t(&self.conf.routing_key, "routing_key");
        texts.finish("victorops")?;
        let mut u = url::Url::parse(&self.api_url)
            .map_err(|e| SinkError::permanent(format!("victorops: api_url: {e}")))?;
        let path = format!("{}{}/{}", u.path(), key.expose(), routing);
        u.set_path(&path);
        Ok(u)
    }
}

#[async_trait]
impl Sink for VictorOpsSink {
    fn kind(&self) -> &'static str {
        "victorops"
    }
    fn send_resolved(&self) -> bool {
        self.conf.send_resolved
    }
    async fn send(&self, n: &Notification, timeout: Duration) -> Result<(), SinkError> {
        let key = self
            .key
            .as_ref()
            .ok_or_else(|| SinkError::permanent("victorops: no API key"))?
            .get("victorops: api_key_file")?;
        let url = self.url(n, &key)?;
        let req = self.http.post_json(url.as_str(), &self.body(n)?);
        let (status, body) = self.http.send(req, timeout, "victorops").await?;
        b::check(status, &body, "victorops")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::b::testutil::{notification, sink_config};
    use serde_json::json;

    #[test]
    fn body_and_url_like_alertmanager() {
        let c = sink_config(
            "victorops_configs:\n      - api_key: secret-key\n        api_url: http://127.0.0.1:1/integrations/alert\n        routing_key: '{{ .GroupLabels.alertname }} team'\n        message_type: WARNING\n        custom_fields: {runbook: 'http://rb/{{ .CommonLabels.alertname }}'}\n",
        );
        let conf = c.receivers[0].victorops_configs[0].clone();
        assert!(!format!("{conf:?}").contains("secret-key"));
        let s = VictorOpsSink::new(
            Http::new(reqwest::Client::new(), &HttpConfig::default()),
            conf,
            &c.global_b,
            Arc::new(Renderer::default()),
        );
        let n = notification(&[("web-1", true)]);
        let body = s.body(&n).unwrap();
        assert_eq!(
            body,
            json!({
                "message_type": "WARNING",
                "entity_id": b::key_hash(&n.group_key),
                "entity_display_name": "[FIRING:1] Down (web-1)",
                "state_message": "is down\nAlerts Firing:\nLabels:\n - alertname = Down\n - instance = web-1\nAnnotations:\n - summary = is down\nSource: http://prom/graph\n\n",
                "monitoring_tool": "Alertmanager",
                "runbook": "http://rb/Down",
            })
        );
        let u = s.url(&n, &Secret::new("secret-key")).unwrap();
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:1/integrations/alert/secret-key/Down%20team"
        );
        // Resolved: RECOVERY whatever message_type says.
        let body = s.body(&notification(&[("web-1", false)])).unwrap();
        assert_eq!(body["message_type"], "RECOVERY");
    }

    #[test]
    fn config_errors_name_the_field() {
        let e = crate::load_config(&crate::sink::b::testutil::yaml(
            "victorops_configs:\n      - api_key: k\n",
        ))
        .unwrap_err();
        assert!(e.path.ends_with("victorops_configs[0].routing_key"), "{e}");
        let e = crate::load_config(&crate::sink::b::testutil::yaml(
            "victorops_configs:\n      - routing_key: r\n",
        ))
        .unwrap_err();
        assert!(e.message.contains("no global VictorOps API Key"), "{e}");
        let e = crate::load_config(&crate::sink::b::testutil::yaml(
            "victorops_configs:\n      - {routing_key: r, api_key: k, custom_fields: {entity_id: x}}\n",
        ))
        .unwrap_err();
        assert!(e.message.contains("entity_id"), "{e}");
        let e = crate::load_config(&crate::sink::b::testutil::yaml(
            "victorops_configs:\n      - {routing_key: r, api_key: k, api_key_file: f}\n",
        ))
        .unwrap_err();
        assert!(
            e.message.contains("at most one of api_key & api_key_file"),
            "{e}"
        );
        // The global key is enough.
        let y = format!(
            "global:\n  victorops_api_key_file: /k\n{}",
            crate::sink::b::testutil::yaml("victorops_configs:\n      - routing_key: r\n")
        );
        crate::load_config(&y).unwrap();
    }
}
