//! Opsgenie (notify/opsgenie of Alertmanager 0.25): `POST {api_url}v2/alerts` to create
//! (alias = SHA-256 of the group key), `POST v2/alerts/{alias}/close?identifierType=alias`
//! when resolved, and with `update_alerts` also `PUT .../message` and `.../description`.
//! `Authorization: GenieKey <api_key>`. Message truncated to 130 characters. Retried:
//! 5xx and 429; other statuses are not.

use super::http::{key_hash, send, truncate_runes};
use super::tmpl::Tmpl;
use super::{Notification, Sink, SinkError};
use crate::config::{cerr, check_url, ConfigError, HttpConfig};
use crate::render::Renderer;
use crate::secret::{read_secret_file, Secret};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_OPSGENIE_API_URL: &str = "https://api.opsgenie.com/";
const MAX_MESSAGE_RUNES: usize = 130;

/// The `global:` settings of this integration.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OpsgenieGlobal {
    pub opsgenie_api_url: Option<String>,
    #[serde(default)]
    pub opsgenie_api_key: Secret,
    pub opsgenie_api_key_file: Option<String>,
}

fn yes() -> bool {
    true
}
fn d_message() -> String {
    r#"{{ template "opsgenie.default.message" . }}"#.into()
}
fn d_description() -> String {
    r#"{{ template "opsgenie.default.description" . }}"#.into()
}
fn d_source() -> String {
    r#"{{ template "opsgenie.default.source" . }}"#.into()
}

/// `opsgenie_configs` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsgenieConfig {
    #[serde(default = "yes")]
    pub send_resolved: bool,
    pub http_config: Option<HttpConfig>,
    #[serde(default)]
    pub api_key: Secret,
    pub api_key_file: Option<String>,
    pub api_url: Option<String>,
    #[serde(default = "d_message")]
    pub message: String,
    #[serde(default = "d_description")]
    pub description: String,
    #[serde(default = "d_source")]
    pub source: String,
    #[serde(default)]
    pub details: BTreeMap<String, String>,
    #[serde(default)]
    pub entity: String,
    #[serde(default)]
    pub responders: Vec<OpsgenieResponder>,
    /// Comma-separated (a template).
    #[serde(default)]
    pub actions: String,
    /// Comma-separated (a template).
    #[serde(default)]
    pub tags: String,
    #[serde(default)]
    pub note: String,
    #[serde(default)]
    pub priority: String,
    #[serde(default)]
    pub update_alerts: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsgenieResponder {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub username: String,
    #[serde(default, rename = "type")]
    pub kind: String,
}

impl OpsgenieConfig {
    /// Alertmanager's checks (`OpsGenieConfig.UnmarshalYAML` and the global defaults).
    pub fn validate(&self, at: &str, global: &OpsgenieGlobal) -> Result<(), ConfigError> {
        if !self.api_key.is_empty() && self.api_key_file.is_some() {
            return Err(cerr(
                at,
                "at most one of api_key & api_key_file must be configured",
            ));
        }
        if self.api_key.is_empty()
            && self.api_key_file.is_none()
            && global.opsgenie_api_key.is_empty()
            && global.opsgenie_api_key_file.is_none()
        {
            return Err(cerr(
                format!("{at}.api_key"),
                "no global OpsGenie API Key set either inline or in a file (api_key, api_key_file, global.opsgenie_api_key or opsgenie_api_key_file)",
            ));
        }
        for (i, r) in self.responders.iter().enumerate() {
            let rat = format!("{at}.responders[{i}]");
            if r.id.is_empty() && r.username.is_empty() && r.name.is_empty() {
                return Err(cerr(
                    rat,
                    "has to have at least one of id, username or name specified",
                ));
            }
            if !r.kind.contains("{{") {
                let kind = r.kind.to_lowercase();
                if !matches!(
                    kind.as_str(),
                    "team" | "teams" | "user" | "escalation" | "schedule"
                ) {
                    return Err(cerr(
                        format!("{rat}.type"),
                        format!(
                            "{:?} does not match valid options ^(team|teams|user|escalation|schedule)$",
                            r.kind
                        ),
                    ));
                }
            }
        }
        if let Some(u) = self.api_url.as_ref().or(global.opsgenie_api_url.as_ref()) {
            check_url(u).map_err(|m| cerr(format!("{at}.api_url"), m))?;
        }
        if let Some(h) = &self.http_config {
            crate::config::check_http_config(h, &format!("{at}.http_config"))?;
        }
        Ok(())
    }

    pub fn templates(&self) -> Vec<(String, &str)> {
        let mut v: Vec<(String, &str)> = vec![
            ("message".into(), self.message.as_str()),
            ("description".into(), self.description.as_str()),
            ("source".into(), self.source.as_str()),
            ("entity".into(), self.entity.as_str()),
            ("actions".into(), self.actions.as_str()),
            ("tags".into(), self.tags.as_str()),
            ("note".into(), self.note.as_str()),
            ("priority".into(), self.priority.as_str()),
        ];
        for (k, t) in &self.details {
            v.push((format!("details.{k}"), t));
        }
        for (i, r) in self.responders.iter().enumerate() {
            v.push((format!("responders[{i}].type"), r.kind.as_str()));
            v.push((format!("responders[{i}].name"), r.name.as_str()));
        }
        v
    }

    pub fn read_files(&mut self, dir: &std::path::Path, at: &str) -> Result<(), ConfigError> {
        if let Some(f) = self.api_key_file.clone() {
            self.api_key =
                read_secret_file(dir, &f).map_err(|m| cerr(format!("{at}.api_key_file"), m))?;
        }
        if let Some(h) = &mut self.http_config {
            crate::config::read_http_files(h, dir, &format!("{at}.http_config"))?;
        }
        Ok(())
    }
}

/// Reads `global.opsgenie_api_key_file`.
pub fn read_global_files(g: &mut OpsgenieGlobal, dir: &std::path::Path) -> Result<(), ConfigError> {
    if let Some(f) = g.opsgenie_api_key_file.clone() {
        g.opsgenie_api_key =
            read_secret_file(dir, &f).map_err(|m| cerr("global.opsgenie_api_key_file", m))?;
    }
    Ok(())
}

/// `safeSplit`: split on `sep`, drop empty items.
fn safe_split(s: &str, sep: char) -> Vec<String> {
    s.trim()
        .split(sep)
        .filter(|x| !x.is_empty())
        .map(String::from)
        .collect()
}

pub struct OpsgenieSink {
    http: reqwest::Client,
    conf: OpsgenieConfig,
    /// Ends with `/`.
    api_url: String,
    api_key: Secret,
    renderer: Arc<Renderer>,
}

/// One request Opsgenie receives.
#[derive(Debug, Clone, PartialEq)]
pub struct OpsgenieRequest {
    pub method: reqwest::Method,
    pub url: String,
    pub body: Value,
}

impl OpsgenieSink {
    pub fn new(
        http: reqwest::Client,
        conf: OpsgenieConfig,
        global: &OpsgenieGlobal,
        renderer: Arc<Renderer>,
    ) -> Self {
        // A responder type is checked case-insensitively but sent as written: Alertmanager
        // 0.25 lower-cases a copy (`for _, r := range`), so `Team` reaches Opsgenie as is.
        let mut api_url = conf
            .api_url
            .clone()
            .or(global.opsgenie_api_url.clone())
            .unwrap_or_else(|| DEFAULT_OPSGENIE_API_URL.into());
        // As Alertmanager: the path gets a trailing slash (query kept).
        if let Ok(mut u) = url::Url::parse(&api_url) {
            if !u.path().ends_with('/') {
                let p = format!("{}/", u.path());
                u.set_path(&p);
            }
            api_url = u.to_string();
        }
        let api_key = if conf.api_key.is_empty() && conf.api_key_file.is_none() {
            global.opsgenie_api_key.clone()
        } else {
            conf.api_key.clone()
        };
        OpsgenieSink {
            http,
            conf,
            api_url,
            api_key,
            renderer,
        }
    }

    fn endpoint(&self, path: &str, alias_query: bool) -> String {
        let mut u = match url::Url::parse(&self.api_url) {
            Ok(u) => u,
            Err(_) => return format!("{}{path}", self.api_url),
        };
        let p = format!("{}{path}", u.path());
        u.set_path(&p);
        if alias_query {
            u.query_pairs_mut().append_pair("identifierType", "alias");
        }
        u.to_string()
    }

    /// The requests Alertmanager 0.25 would make, in order, and the API key.
    pub fn requests(&self, n: &Notification) -> Result<(Vec<OpsgenieRequest>, String), SinkError> {
        let m = n.message(0);
        let alias = key_hash(&n.group_key);
        let mut t = Tmpl::new(&self.renderer, &m);
        let mut details = Map::new();
        for (k, v) in m.common_labels.iter() {
            details.insert(k.to_string(), Value::String(v.to_string()));
        }
        for (k, v) in &self.conf.details {
            details.insert(k.clone(), Value::String(t.t(v)));
        }
        let mut out = Vec::new();
        if m.status == "resolved" {
            out.push(OpsgenieRequest {
                method: reqwest::Method::POST,
                url: self.endpoint(&format!("v2/alerts/{alias}/close"), true),
                body: json!({"source": t.t(&self.conf.source)}),
            });
        } else {
            let (message, cut) = truncate_runes(&t.t(&self.conf.message), MAX_MESSAGE_RUNES);
            if cut {
                tracing::warn!(receiver = %m.receiver, "opsgenie: message truncated to {MAX_MESSAGE_RUNES} characters");
            }
            let mut responders = Vec::new();
            for r in &self.conf.responders {
                let (id, name, username, kind) =
                    (t.t(&r.id), t.t(&r.name), t.t(&r.username), t.t(&r.kind));
                if id.is_empty() && name.is_empty() && username.is_empty() && kind.is_empty() {
                    continue;
                }
                if kind == "teams" {
                    for team in safe_split(&name, ',') {
                        responders.push(json!({"name": team, "type": "team"}));
                    }
                    continue;
                }
                let mut o = Map::new();
                for (k, v) in [("id", id), ("name", name), ("username", username)] {
                    if !v.is_empty() {
                        o.insert(k.into(), Value::String(v));
                    }
                }
                o.insert("type".into(), Value::String(kind));
                responders.push(Value::Object(o));
            }
            let description = t.t(&self.conf.description);
            let mut body = Map::new();
            body.insert("alias".into(), Value::String(alias.clone()));
            body.insert("message".into(), Value::String(message.clone()));
            if !description.is_empty() {
                body.insert("description".into(), Value::String(description.clone()));
            }
            body.insert("details".into(), Value::Object(details));
            body.insert("source".into(), Value::String(t.t(&self.conf.source)));
            if !responders.is_empty() {
                body.insert("responders".into(), Value::Array(responders));
            }
            let tags = safe_split(&t.t(&self.conf.tags), ',');
            if !tags.is_empty() {
                body.insert("tags".into(), json!(tags));
            }
            for (k, src) in [
                ("note", &self.conf.note),
                ("priority", &self.conf.priority),
                ("entity", &self.conf.entity),
            ] {
                let v = t.t(src);
                if !v.is_empty() {
                    body.insert(k.into(), Value::String(v));
                }
            }
            let actions = safe_split(&t.t(&self.conf.actions), ',');
            if !actions.is_empty() {
                body.insert("actions".into(), json!(actions));
            }
            out.push(OpsgenieRequest {
                method: reqwest::Method::POST,
                url: self.endpoint("v2/alerts", false),
                body: Value::Object(body),
            });
            if self.conf.update_alerts {
                let omit_empty = |k: &str, v: String| {
                    if v.is_empty() {
                        json!({})
                    } else {
                        json!({ k: v })
                    }
                };
                out.push(OpsgenieRequest {
                    method: reqwest::Method::PUT,
                    url: self.endpoint(&format!("v2/alerts/{alias}/message"), true),
                    body: omit_empty("message", message),
                });
                out.push(OpsgenieRequest {
                    method: reqwest::Method::PUT,
                    url: self.endpoint(&format!("v2/alerts/{alias}/description"), true),
                    body: omit_empty("description", description),
                });
            }
        }
        let key = t.t(self.api_key.expose());
        t.finish("opsgenie")?;
        Ok((out, key))
    }
}

#[async_trait::async_trait]
impl Sink for OpsgenieSink {
    fn kind(&self) -> &'static str {
        "opsgenie"
    }
    fn send_resolved(&self) -> bool {
        self.conf.send_resolved
    }
    async fn send(&self, n: &Notification, timeout: Duration) -> Result<(), SinkError> {
        let (reqs, key) = self.requests(n)?;
        // The GenieKey header takes the place of any `http_config` credentials, as in
        // Alertmanager (whose client sets Authorization only when the request has none).
        let genie = Secret::new(format!("GenieKey {key}"));
        for r in reqs {
            let mut body = serde_json::to_vec(&r.body).unwrap_or_default();
            body.push(b'\n');
            send(
                &self.http,
                r.method,
                &r.url,
                &[("content-type", "application/json")],
                Some(&genie),
                body,
                timeout,
                &[429],
                "opsgenie",
            )
            .await?;
        }
        Ok(())
    }
}
