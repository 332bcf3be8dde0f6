//! Slack incoming webhook (notify/slack of Alertmanager 0.25): the complete
//! `slack_configs` of 0.25 with its defaults, one attachment, body equal to
//! Alertmanager's. Retried: 5xx only (429 is not, as in 0.25).

use super::http::{send, truncate_runes, Authorizer};
use super::tmpl::Tmpl;
use super::{Notification, Sink, SinkError};
use crate::config::HttpConfig;
use crate::render::Renderer;
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// Alertmanager's defaults (from its `default.tmpl`, bundled).
pub const DEFAULT_SLACK_TITLE: &str = r#"{{ template "slack.default.title" . }}"#;
pub const DEFAULT_SLACK_TEXT: &str = r#"{{ template "slack.default.text" . }}"#;
const MAX_TITLE_RUNES: usize = 1024;

macro_rules! defaults {
    ($($f:ident = $v:expr;)*) => {
        $(fn $f() -> String { $v.into() })*
    };
}
defaults! {
    d_color = r#"{{ if eq .Status "firing" }}danger{{ else }}good{{ end }}"#;
    d_username = r#"{{ template "slack.default.username" . }}"#;
    d_title = DEFAULT_SLACK_TITLE;
    d_title_link = r#"{{ template "slack.default.titlelink" . }}"#;
    d_icon_emoji = r#"{{ template "slack.default.iconemoji" . }}"#;
    d_icon_url = r#"{{ template "slack.default.iconurl" . }}"#;
    d_pretext = r#"{{ template "slack.default.pretext" . }}"#;
    d_text = DEFAULT_SLACK_TEXT;
    d_fallback = r#"{{ template "slack.default.fallback" . }}"#;
    d_callback_id = r#"{{ template "slack.default.callbackid" . }}"#;
    d_footer = r#"{{ template "slack.default.footer" . }}"#;
}

/// `slack_configs` entry (Alertmanager 0.25).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// Falls back to `global.slack_api_url`.
    pub api_url: Option<Secret>,
    /// A file holding the URL; [`crate::load_config_in`] reads it into `api_url`.
    pub api_url_file: Option<String>,
    #[serde(default)]
    pub channel: String,
    #[serde(default = "d_username")]
    pub username: String,
    #[serde(default = "d_color")]
    pub color: String,
    #[serde(default = "d_title")]
    pub title: String,
    #[serde(default = "d_title_link")]
    pub title_link: String,
    #[serde(default = "d_pretext")]
    pub pretext: String,
    #[serde(default = "d_text")]
    pub text: String,
    #[serde(default)]
    pub fields: Vec<SlackField>,
    #[serde(default)]
    pub short_fields: bool,
    #[serde(default = "d_footer")]
    pub footer: String,
    #[serde(default = "d_fallback")]
    pub fallback: String,
    #[serde(default = "d_callback_id")]
    pub callback_id: String,
    #[serde(default = "d_icon_emoji")]
    pub icon_emoji: String,
    #[serde(default = "d_icon_url")]
    pub icon_url: String,
    #[serde(default)]
    pub image_url: String,
    #[serde(default)]
    pub thumb_url: String,
    #[serde(default)]
    pub link_names: bool,
    #[serde(default)]
    pub mrkdwn_in: Vec<String>,
    #[serde(default)]
    pub actions: Vec<SlackAction>,
    #[serde(default)]
    pub send_resolved: bool,
    pub http_config: Option<HttpConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SlackField {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SlackAction {
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub style: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    #[serde(default, rename = "confirm", skip_serializing_if = "Option::is_none")]
    pub confirm: Option<SlackConfirm>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfirm {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ok_text: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dismiss_text: String,
}

impl SlackConfig {
    /// Alertmanager's checks of fields and actions (`SlackField`, `SlackAction`,
    /// `SlackConfirmationField` UnmarshalYAML), naming the field. Normalises actions as
    /// Alertmanager does (a URL action drops name, value and confirm).
    pub fn check_parts(&self, at: &str) -> Result<(), crate::ConfigError> {
        use crate::config::cerr;
        for (i, f) in self.fields.iter().enumerate() {
            if f.title.is_empty() {
                return Err(cerr(
                    format!("{at}.fields[{i}].title"),
                    "missing title in Slack field configuration",
                ));
            }
            if f.value.is_empty() {
                return Err(cerr(
                    format!("{at}.fields[{i}].value"),
                    "missing value in Slack field configuration",
                ));
            }
        }
        for (i, a) in self.actions.iter().enumerate() {
            let aat = format!("{at}.actions[{i}]");
            if a.kind.is_empty() {
                return Err(cerr(
                    format!("{aat}.type"),
                    "missing type in Slack action configuration",
                ));
            }
            if a.text.is_empty() {
                return Err(cerr(
                    format!("{aat}.text"),
                    "missing text in Slack action configuration",
                ));
            }
            if a.url.is_empty() && a.name.is_empty() {
                return Err(cerr(
                    aat,
                    "missing name or url in Slack action configuration",
                ));
            }
            if let Some(c) = &a.confirm {
                if c.text.is_empty() {
                    return Err(cerr(
                        format!("{aat}.confirm.text"),
                        "missing text in Slack confirmation configuration",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Every template text, for the configuration check.
    pub fn templates(&self) -> Vec<(String, &str)> {
        let mut v: Vec<(String, &str)> = [
            ("title", &self.title),
            ("text", &self.text),
            ("channel", &self.channel),
            ("username", &self.username),
            ("color", &self.color),
            ("title_link", &self.title_link),
            ("pretext", &self.pretext),
            ("footer", &self.footer),
            ("fallback", &self.fallback),
            ("callback_id", &self.callback_id),
            ("icon_emoji", &self.icon_emoji),
            ("icon_url", &self.icon_url),
            ("image_url", &self.image_url),
            ("thumb_url", &self.thumb_url),
        ]
        .into_iter()
        .map(|(k, t)| (k.to_string(), t.as_str()))
        .collect();
        for (i, f) in self.fields.iter().enumerate() {
            v.push((format!("fields[{i}].title"), &f.title));
            v.push((format!("fields[{i}].value"), &f.value));
        }
        for (i, a) in self.actions.iter().enumerate() {
            v.push((format!("actions[{i}].text"), &a.text));
            v.push((format!("actions[{i}].url"), &a.url));
        }
        v
    }
}

pub struct SlackSink {
    http: reqwest::Client,
    conf: SlackConfig,
    url: Secret,
    auth: Authorizer,
    renderer: Arc<Renderer>,
}

impl SlackSink {
    pub fn new(
        http: reqwest::Client,
        conf: SlackConfig,
        url: Secret,
        renderer: Arc<Renderer>,
    ) -> Self {
        let auth = Authorizer::new(&conf.http_config.clone().unwrap_or_default());
        SlackSink::with_auth(http, conf, url, auth, renderer)
    }

    pub fn with_auth(
        http: reqwest::Client,
        mut conf: SlackConfig,
        url: Secret,
        auth: Authorizer,
        renderer: Arc<Renderer>,
    ) -> Self {
        for a in &mut conf.actions {
            if !a.url.is_empty() {
                a.name.clear();
                a.value.clear();
                a.confirm = None;
            }
        }
        SlackSink {
            http,
            conf,
            url,
            auth,
            renderer,
        }
    }

    /// The JSON Slack receives (Alertmanager 0.25's `request`), or a template error.
    pub fn try_body(&self, n: &Notification) -> Result<Value, SinkError> {
        let m = n.message(0);
        let c = &self.conf;
        let mut t = Tmpl::new(&self.renderer, &m);
        let (title, cut) = truncate_runes(&t.t(&c.title), MAX_TITLE_RUNES);
        if cut {
            tracing::warn!(receiver = %m.receiver, "slack: title truncated to {MAX_TITLE_RUNES} characters");
        }
        let mrkdwn_in: Vec<String> = if c.mrkdwn_in.is_empty() {
            vec!["fallback".into(), "pretext".into(), "text".into()]
        } else {
            c.mrkdwn_in.clone()
        };
        let mut att = Map::new();
        let opt = |o: &mut Map<String, Value>, k: &str, v: String| {
            if !v.is_empty() {
                o.insert(k.into(), Value::String(v));
            }
        };
        opt(&mut att, "title", title);
        let title_link = t.t(&c.title_link);
        opt(&mut att, "title_link", title_link);
        let pretext = t.t(&c.pretext);
        opt(&mut att, "pretext", pretext);
        att.insert("text".into(), Value::String(t.t(&c.text)));
        att.insert("fallback".into(), Value::String(t.t(&c.fallback)));
        att.insert("callback_id".into(), Value::String(t.t(&c.callback_id)));
        if !c.fields.is_empty() {
            let fields: Vec<SlackField> = c
                .fields
                .iter()
                .map(|f| SlackField {
                    title: t.t(&f.title),
                    value: t.t(&f.value),
                    short: Some(f.short.unwrap_or(c.short_fields)),
                })
                .collect();
            att.insert(
                "fields".into(),
                serde_json::to_value(fields).unwrap_or_default(),
            );
        }
        if !c.actions.is_empty() {
            let actions: Vec<SlackAction> = c
                .actions
                .iter()
                .map(|a| SlackAction {
                    kind: t.t(&a.kind),
                    text: t.t(&a.text),
                    url: t.t(&a.url),
                    style: t.t(&a.style),
                    name: t.t(&a.name),
                    value: t.t(&a.value),
                    confirm: a.confirm.as_ref().map(|f| SlackConfirm {
                        title: t.t(&f.title),
                        text: t.t(&f.text),
                        ok_text: t.t(&f.ok_text),
                        dismiss_text: t.t(&f.dismiss_text),
                    }),
                })
                .collect();
            att.insert(
                "actions".into(),
                serde_json::to_value(actions).unwrap_or_default(),
            );
        }
        let image_url = t.t(&c.image_url);
        opt(&mut att, "image_url", image_url);
        let thumb_url = t.t(&c.thumb_url);
        opt(&mut att, "thumb_url", thumb_url);
        att.insert("footer".into(), Value::String(t.t(&c.footer)));
        let color = t.t(&c.color);
        opt(&mut att, "color", color);
        att.insert(
            "mrkdwn_in".into(),
            Value::Array(mrkdwn_in.into_iter().map(Value::String).collect()),
        );
        let mut body = Map::new();
        let channel = t.t(&c.channel);
        opt(&mut body, "channel", channel);
        let username = t.t(&c.username);
        opt(&mut body, "username", username);
        let icon_emoji = t.t(&c.icon_emoji);
        opt(&mut body, "icon_emoji", icon_emoji);
        let icon_url = t.t(&c.icon_url);
        opt(&mut body, "icon_url", icon_url);
        if c.link_names {
            body.insert("link_names".into(), Value::Bool(true));
        }
        body.insert("attachments".into(), Value::Array(vec![Value::Object(att)]));
        t.finish("slack")?;
        Ok(Value::Object(body))
    }

    /// [`SlackSink::try_body`]; on a template error, `null`.
    pub fn body(&self, n: &Notification) -> Value {
        self.try_body(n).unwrap_or(Value::Null)
    }
}

#[async_trait::async_trait]
impl Sink for SlackSink {
    fn kind(&self) -> &'static str {
        "slack"
    }
    fn send_resolved(&self) -> bool {
        self.conf.send_resolved
    }
    async fn send(&self, n: &Notification, timeout: Duration) -> Result<(), SinkError> {
        let mut body = serde_json::to_vec(&self.try_body(n)?)
            .map_err(|e| SinkError::permanent(e.to_string()))?;
        body.push(b'\n');
        let auth = self.auth.header(&self.http).await?;
        let what = format!("slack channel {:?}", self.conf.channel);
        send(
            &self.http,
            reqwest::Method::POST,
            self.url.expose(),
            &[("content-type", "application/json")],
            auth.as_ref(),
            body,
            timeout,
            &[],
            &what,
        )
        .await
        .map(|_| ())
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
            Secret::new("http://127.0.0.1:1/"),
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
        assert_eq!(b["username"], "Alertmanager");
        let att = &b["attachments"][0];
        assert_eq!(att["title"], "[FIRING:1] Down (web-1)");
        assert_eq!(att["text"], "web-1 is down");
        assert_eq!(att["color"], "danger");
        assert_eq!(att["callback_id"], "");
        assert_eq!(att["footer"], "");
        assert_eq!(att["title_link"], "http://am/#/alerts?receiver=s");
        // Debug never shows the URL.
        assert!(!format!("{:?}", c.receivers[0]).contains("127.0.0.1:1"));
    }
}
