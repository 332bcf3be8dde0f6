//! WeChat Work, as Alertmanager 0.25's notify/wechat: `GET {api_url}gettoken` for an
//! access token (kept for 2 hours), then `POST {api_url}message/send?access_token=..`.

use super::b::{self, cerr, Http, Secret};
use super::{Notification, Sink, SinkError};
use crate::config::{ConfigError, HttpConfig};
use crate::render::Renderer;
use argus_model::Millis;
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const DEFAULT_MESSAGE: &str = r#"{{ template "wechat.default.message" . }}"#;
pub const DEFAULT_TO_USER: &str = r#"{{ template "wechat.default.to_user" . }}"#;
pub const DEFAULT_TO_PARTY: &str = r#"{{ template "wechat.default.to_party" . }}"#;
pub const DEFAULT_TO_TAG: &str = r#"{{ template "wechat.default.to_tag" . }}"#;
pub const DEFAULT_AGENT_ID: &str = r#"{{ template "wechat.default.agent_id" . }}"#;
/// Alertmanager refreshes the token after two hours.
pub const TOKEN_TTL_MS: Millis = 2 * 3600 * 1000;

/// `wechat_configs` (Alertmanager 0.25 keys and defaults).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WechatConfig {
    #[serde(default)]
    pub send_resolved: bool,
    pub http_config: Option<HttpConfig>,
    /// Falls back to `global.wechat_api_secret`.
    pub api_secret: Option<Secret>,
    /// Falls back to `global.wechat_api_corp_id`.
    pub corp_id: Option<String>,
    #[serde(default = "message")]
    pub message: String,
    /// Falls back to `global.wechat_api_url`.
    pub api_url: Option<String>,
    #[serde(default = "to_user")]
    pub to_user: String,
    #[serde(default = "to_party")]
    pub to_party: String,
    #[serde(default = "to_tag")]
    pub to_tag: String,
    #[serde(default = "agent_id")]
    pub agent_id: String,
    #[serde(default)]
    pub message_type: String,
}

fn message() -> String {
    DEFAULT_MESSAGE.into()
}
fn to_user() -> String {
    DEFAULT_TO_USER.into()
}
fn to_party() -> String {
    DEFAULT_TO_PARTY.into()
}
fn to_tag() -> String {
    DEFAULT_TO_TAG.into()
}
fn agent_id() -> String {
    DEFAULT_AGENT_ID.into()
}

impl WechatConfig {
    pub fn check(&self, g: &b::GlobalB, at: &str) -> Result<(), ConfigError> {
        if !matches!(self.message_type.as_str(), "" | "text" | "markdown") {
            return Err(cerr(
                format!("{at}.message_type"),
                format!(
                    "weChat message type {:?} does not match valid options ^(text|markdown)$",
                    self.message_type
                ),
            ));
        }
        if let Some(u) = &self.api_url {
            b::check_url(u, &format!("{at}.api_url"))?;
        }
        if self.secret(g).is_none() {
            return Err(cerr(
                format!("{at}.api_secret"),
                "no global Wechat ApiSecret set",
            ));
        }
        if self.corp(g).is_none() {
            return Err(cerr(format!("{at}.corp_id"), "no global Wechat CorpID set"));
        }
        Ok(())
    }

    pub fn templates(&self) -> Vec<(String, &str)> {
        vec![
            ("message".to_string(), self.message.as_str()),
            ("to_user".into(), &self.to_user),
            ("to_party".into(), &self.to_party),
            ("to_tag".into(), &self.to_tag),
            ("agent_id".into(), &self.agent_id),
        ]
    }

    fn secret(&self, g: &b::GlobalB) -> Option<Secret> {
        self.api_secret
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| g.wechat_api_secret.clone().filter(|s| !s.is_empty()))
    }

    fn corp(&self, g: &b::GlobalB) -> Option<String> {
        self.corp_id
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| g.wechat_api_corp_id.clone().filter(|s| !s.is_empty()))
    }
}

pub struct WechatSink {
    http: Http,
    conf: WechatConfig,
    /// Ends with `/`.
    api_url: String,
    secret: Secret,
    corp_id: String,
    message_type: String,
    renderer: Arc<Renderer>,
    /// (access token, fetched at): kept for [`TOKEN_TTL_MS`] as Alertmanager does.
    token: Mutex<Option<(Secret, Millis)>>,
}

impl WechatSink {
    pub fn new(http: Http, conf: WechatConfig, g: &b::GlobalB, renderer: Arc<Renderer>) -> Self {
        let mut api_url = conf
            .api_url
            .clone()
            .unwrap_or_else(|| g.wechat_api_url.clone());
        if !api_url.ends_with('/') {
            api_url.push('/');
        }
        let message_type = if conf.message_type.is_empty() {
            "text".to_string()
        } else {
            conf.message_type.clone()
        };
        WechatSink {
            http,
            secret: conf.secret(g).unwrap_or_default(),
            corp_id: conf.corp(g).unwrap_or_default(),
            conf,
            api_url,
            message_type,
            renderer,
            token: Mutex::new(None),
        }
    }

    /// The message (`weChatMessage`: `text` and `markdown` are always there, Go's
    /// `omitempty` does not drop structs).
    pub fn body(&self, n: &Notification) -> Result<serde_json::Value, SinkError> {
        let m = n.message(0);
        let texts = b::Texts::new(&self.renderer, &m);
        let content = texts.t(&self.conf.message, "message");
        let (text, markdown) = if self.message_type == "markdown" {
            (String::new(), content)
        } else {
            (content, String::new())
        };
        let mut body = json!({
            "text": {"content": text},
            "safe": "0",
            "msgtype": self.message_type,
            "markdown": {"content": markdown},
        });
        for (k, src) in [
            ("touser", &self.conf.to_user),
            ("toparty", &self.conf.to_party),
            ("totag", &self.conf.to_tag),
            ("agentid", &self.conf.agent_id),
        ] {
            let v = texts.t(src, k);
            if !v.is_empty() {
                body[k] = v.into();
            }
        }
        texts.finish("wechat")?;
        Ok(body)
    }

    async fn access_token(&self, n: &Notification, timeout: Duration) -> Result<Secret, SinkError> {
        if let Some((t, at)) = self.token.lock().unwrap().clone() {
            if n.now - at <= TOKEN_TTL_MS {
                return Ok(t);
            }
        }
        let m = n.message(0);
        let texts = b::Texts::new(&self.renderer, &m);
        let secret = texts.t(self.secret.expose(), "api_secret");
        let corp = texts.t(&self.corp_id, "corp_id");
        texts.finish("wechat")?;
        let mut u = url::Url::parse(&format!("{}gettoken", self.api_url))
            .map_err(|e| SinkError::permanent(format!("wechat: api_url: {e}")))?;
        u.query_pairs_mut()
            .append_pair("corpid", &corp)
            .append_pair("corpsecret", &secret);
        let (status, body) = self
            .http
            .send(self.http.client.get(u.as_str()), timeout, "wechat gettoken")
            .await?;
        // As Alertmanager: the status is not looked at; an answer that is not the token's
        // JSON is not retried.
        let _ = status;
        #[derive(Deserialize)]
        struct Token {
            #[serde(default)]
            access_token: String,
        }
        let tok: Token = serde_json::from_str(&body)
            .map_err(|e| SinkError::permanent(format!("wechat gettoken: {e}")))?;
        if tok.access_token.is_empty() {
            return Err(SinkError::permanent(format!(
                "wechat: invalid APISecret for CorpID: {}",
                self.corp_id
            )));
        }
        let t = Secret::new(tok.access_token);
        *self.token.lock().unwrap() = Some((t.clone(), n.now));
        Ok(t)
    }
}

#[async_trait]
impl Sink for WechatSink {
    fn kind(&self) -> &'static str {
        "wechat"
    }
    fn send_resolved(&self) -> bool {
        self.conf.send_resolved
    }
    async fn send(&self, n: &Notification, timeout: Duration) -> Result<(), SinkError> {
        let token = self.access_token(n, timeout).await?;
        let mut u = url::Url::parse(&format!("{}message/send", self.api_url))
            .map_err(|e| SinkError::permanent(format!("wechat: api_url: {e}")))?;
        u.query_pairs_mut()
            .append_pair("access_token", token.expose());
        let req = self.http.post_json(u.as_str(), &self.body(n)?);
        let (status, body) = self.http.send(req, timeout, "wechat").await?;
        if status != 200 {
            // Alertmanager retries every status but 200.
            return Err(SinkError::retryable(format!(
                "wechat: unexpected status code {status}"
            )));
        }
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            code: i64,
            #[serde(default)]
            error: String,
        }
        let a: Answer = serde_json::from_str(&body)
            .map_err(|e| SinkError::retryable(format!("wechat: {e}")))?;
        match a.code {
            0 => Ok(()),
            42001 => {
                // The access token expired: fetch a new one on the retry.
                *self.token.lock().unwrap() = None;
                Err(SinkError::retryable(format!("wechat: {}", a.error)))
            }
            _ => Err(SinkError::permanent(format!("wechat: {}", a.error))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::b::testutil::{notification, sink_config, yaml};

    #[test]
    fn body_like_alertmanager() {
        let c = sink_config("wechat_configs:\n      - {api_secret: s3cr3t, corp_id: corp, to_user: '@all', agent_id: '1000002'}\n");
        let conf = c.receivers[0].wechat_configs[0].clone();
        assert!(!format!("{conf:?}").contains("s3cr3t"));
        let s = WechatSink::new(
            Http::new(reqwest::Client::new(), &HttpConfig::default()),
            conf,
            &c.global_b,
            Arc::new(Renderer::default()),
        );
        assert_eq!(s.api_url, "https://qyapi.weixin.qq.com/cgi-bin/");
        let b = s.body(&notification(&[("web-1", true)])).unwrap();
        assert_eq!(b["msgtype"], "text");
        assert_eq!(b["safe"], "0");
        assert_eq!(b["touser"], "@all");
        assert_eq!(b["agentid"], "1000002");
        assert!(b.get("toparty").is_none() && b.get("totag").is_none());
        assert_eq!(b["markdown"]["content"], "");
        let text = b["text"]["content"].as_str().unwrap();
        assert!(
            text.starts_with("[FIRING:1] Down (web-1)\nis down\nAlerts Firing:\n"),
            "{text:?}"
        );
        assert!(
            text.ends_with("AlertmanagerUrl:\nhttp://am/#/alerts?receiver=r"),
            "{text:?}"
        );
    }

    #[test]
    fn config_errors_name_the_field() {
        let e = crate::load_config(&yaml("wechat_configs:\n      - {corp_id: c}\n")).unwrap_err();
        assert!(e.path.ends_with("wechat_configs[0].api_secret"), "{e}");
        let e =
            crate::load_config(&yaml("wechat_configs:\n      - {api_secret: s}\n")).unwrap_err();
        assert!(e.path.ends_with("wechat_configs[0].corp_id"), "{e}");
        let e = crate::load_config(&yaml(
            "wechat_configs:\n      - {api_secret: s, corp_id: c, message_type: html}\n",
        ))
        .unwrap_err();
        assert!(e.path.ends_with("message_type"), "{e}");
        let y = format!("global:\n  wechat_api_secret: s\n  wechat_api_corp_id: c\n  wechat_api_url: http://127.0.0.1:1/cgi-bin\n{}", yaml("wechat_configs:\n      - {message_type: markdown}\n"));
        let c = crate::load_config(&y).unwrap();
        let s = WechatSink::new(
            Http::new(reqwest::Client::new(), &HttpConfig::default()),
            c.receivers[0].wechat_configs[0].clone(),
            &c.global_b,
            Arc::new(Renderer::default()),
        );
        assert_eq!(s.api_url, "http://127.0.0.1:1/cgi-bin/");
        let b = s.body(&notification(&[("web-1", true)])).unwrap();
        assert_eq!(b["text"]["content"], "");
        assert!(b["markdown"]["content"]
            .as_str()
            .unwrap()
            .starts_with("[FIRING:1]"));
    }
}
