//! What the receivers of part B (victorops, pushover, telegram, webex, discord, wechat,
//! msteams) share: secrets that never print, `*_file` secrets read at each notification
//! (as Alertmanager does), the `global:` settings they fall back to, Alertmanager's
//! truncation helpers, templating (the first error fails the notification), and one HTTP attempt
//! classified as Alertmanager's `notify.Retrier` does.

use super::SinkError;
use crate::config::{ConfigError, HttpConfig, Receiver};
use crate::payload::Message;
use crate::render::Renderer;
use std::path::Path;
use std::time::Duration;

/// Alertmanager 0.26's msteams definitions (the bundled `default.tmpl` is 0.25's and
/// has the other receivers'), parsed after it.
pub const DEFAULT_B_TMPL: &str = include_str!("default-b.tmpl");

pub use crate::secret::Secret;

/// A secret given inline or as a file (read, trimmed, at each notification as
/// Alertmanager 0.25 reads `api_key_file`; relative paths are relative to the
/// configuration's directory, resolved by [`crate::load_config_in`]).
#[derive(Clone, Debug, PartialEq)]
pub enum SecretSource {
    Inline(Secret),
    File(String),
}

impl SecretSource {
    pub fn from_pair(inline: &Option<Secret>, file: &Option<String>) -> Option<SecretSource> {
        match (inline, file) {
            (Some(s), _) if !s.is_empty() => Some(SecretSource::Inline(s.clone())),
            (_, Some(f)) if !f.is_empty() => Some(SecretSource::File(f.clone())),
            _ => None,
        }
    }
    /// The secret; a file that cannot be read is a permanent error naming the file.
    pub fn get(&self, what: &str) -> Result<Secret, SinkError> {
        match self {
            SecretSource::Inline(s) => Ok(s.clone()),
            SecretSource::File(f) => std::fs::read_to_string(f)
                .map(|t| Secret::new(t.trim()))
                .map_err(|e| SinkError::permanent(format!("{what}: failed to read {f}: {e}"))),
        }
    }
}

/// `base_dir.join(f)` for a relative `*_file` path.
pub fn resolve_path(f: &mut Option<String>, base_dir: &Path) {
    if let Some(p) = f {
        if !p.is_empty() && Path::new(p.as_str()).is_relative() {
            *p = base_dir.join(p.as_str()).display().to_string();
        }
    }
}

pub const DEFAULT_VICTOROPS_API_URL: &str =
    "https://alert.victorops.com/integrations/generic/20131114/alert/";
pub const DEFAULT_TELEGRAM_API_URL: &str = "https://api.telegram.org";
pub const DEFAULT_WEBEX_API_URL: &str = "https://webexapis.com/v1/messages";
pub const DEFAULT_WECHAT_API_URL: &str = "https://qyapi.weixin.qq.com/cgi-bin/";

/// The `global:` settings of these receivers, with Alertmanager 0.25's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct GlobalB {
    pub victorops_api_url: String,
    pub victorops_api_key: Option<Secret>,
    pub victorops_api_key_file: Option<String>,
    pub telegram_api_url: String,
    pub webex_api_url: String,
    pub wechat_api_url: String,
    pub wechat_api_secret: Option<Secret>,
    pub wechat_api_corp_id: Option<String>,
}

impl Default for GlobalB {
    fn default() -> Self {
        GlobalB {
            victorops_api_url: DEFAULT_VICTOROPS_API_URL.into(),
            victorops_api_key: None,
            victorops_api_key_file: None,
            telegram_api_url: DEFAULT_TELEGRAM_API_URL.into(),
            webex_api_url: DEFAULT_WEBEX_API_URL.into(),
            wechat_api_url: DEFAULT_WECHAT_API_URL.into(),
            wechat_api_secret: None,
            wechat_api_corp_id: None,
        }
    }
}

impl GlobalB {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        victorops_api_url: Option<String>,
        victorops_api_key: Option<Secret>,
        victorops_api_key_file: Option<String>,
        telegram_api_url: Option<String>,
        webex_api_url: Option<String>,
        wechat_api_url: Option<String>,
        wechat_api_secret: Option<Secret>,
        wechat_api_corp_id: Option<String>,
    ) -> Result<GlobalB, ConfigError> {
        let d = GlobalB::default();
        let url = |v: Option<String>, d: String, key: &str| -> Result<String, ConfigError> {
            match v {
                None => Ok(d),
                Some(u) => check_url(&u, &format!("global.{key}")).map(|_| u),
            }
        };
        if victorops_api_key.is_some() && victorops_api_key_file.is_some() {
            return Err(cerr(
                "global",
                "at most one of victorops_api_key & victorops_api_key_file must be configured",
            ));
        }
        Ok(GlobalB {
            victorops_api_url: url(victorops_api_url, d.victorops_api_url, "victorops_api_url")?,
            victorops_api_key,
            victorops_api_key_file,
            telegram_api_url: url(telegram_api_url, d.telegram_api_url, "telegram_api_url")?,
            webex_api_url: url(webex_api_url, d.webex_api_url, "webex_api_url")?,
            wechat_api_url: url(wechat_api_url, d.wechat_api_url, "wechat_api_url")?,
            wechat_api_secret,
            wechat_api_corp_id,
        })
    }
}

pub fn cerr(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        path: path.into(),
        message: message.into(),
    }
}

/// An absolute http(s) URL, or an error naming the field.
pub fn check_url(u: &str, at: &str) -> Result<url::Url, ConfigError> {
    let parsed = url::Url::parse(u).map_err(|e| cerr(at, format!("invalid URL {u:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(cerr(
            at,
            format!("unsupported scheme in {u:?} (http or https)"),
        ));
    }
    Ok(parsed)
}

/// Checks of these receivers in a receiver (`path`: `receivers[0] "name"`), with the
/// global settings (as Alertmanager's `Config.UnmarshalYAML`).
pub fn check_receiver(r: &Receiver, g: &GlobalB, path: &str) -> Result<(), ConfigError> {
    for (j, c) in r.victorops_configs.iter().enumerate() {
        c.check(g, &format!("{path}.victorops_configs[{j}]"))?;
    }
    for (j, c) in r.pushover_configs.iter().enumerate() {
        c.check(&format!("{path}.pushover_configs[{j}]"))?;
    }
    for (j, c) in r.telegram_configs.iter().enumerate() {
        c.check(&format!("{path}.telegram_configs[{j}]"))?;
    }
    for (j, c) in r.webex_configs.iter().enumerate() {
        c.check(&format!("{path}.webex_configs[{j}]"))?;
    }
    for (j, c) in r.discord_configs.iter().enumerate() {
        c.check(&format!("{path}.discord_configs[{j}]"))?;
    }
    for (j, c) in r.wechat_configs.iter().enumerate() {
        c.check(g, &format!("{path}.wechat_configs[{j}]"))?;
    }
    for (j, c) in r.msteams_configs.iter().enumerate() {
        c.check(&format!("{path}.msteams_configs[{j}]"))?;
    }
    Ok(())
}

/// Every template field of these receivers parses.
pub fn check_templates(r: &Receiver, path: &str, renderer: &Renderer) -> Result<(), ConfigError> {
    let mut all: Vec<(String, &str)> = Vec::new();
    for (j, c) in r.victorops_configs.iter().enumerate() {
        for (f, t) in c.templates() {
            all.push((format!("victorops_configs[{j}].{f}"), t));
        }
    }
    for (j, c) in r.pushover_configs.iter().enumerate() {
        for (f, t) in c.templates() {
            all.push((format!("pushover_configs[{j}].{f}"), t));
        }
    }
    for (j, c) in r.telegram_configs.iter().enumerate() {
        all.push((format!("telegram_configs[{j}].message"), &c.message));
    }
    for (j, c) in r.webex_configs.iter().enumerate() {
        all.push((format!("webex_configs[{j}].message"), &c.message));
    }
    for (j, c) in r.discord_configs.iter().enumerate() {
        all.push((format!("discord_configs[{j}].title"), &c.title));
        all.push((format!("discord_configs[{j}].message"), &c.message));
    }
    for (j, c) in r.wechat_configs.iter().enumerate() {
        for (f, t) in c.templates() {
            all.push((format!("wechat_configs[{j}].{f}"), t));
        }
    }
    for (j, c) in r.msteams_configs.iter().enumerate() {
        all.push((format!("msteams_configs[{j}].title"), &c.title));
        all.push((format!("msteams_configs[{j}].text"), &c.text));
    }
    for (field, t) in all {
        renderer
            .check(t)
            .map_err(|m| cerr(format!("{path}.{field}"), m))?;
    }
    Ok(())
}

/// Relative `*_file` paths of these receivers become relative to `base_dir`.
pub fn resolve_paths(r: &mut Receiver, g: &mut GlobalB, base_dir: &Path) {
    resolve_path(&mut g.victorops_api_key_file, base_dir);
    for c in &mut r.victorops_configs {
        resolve_path(&mut c.api_key_file, base_dir);
    }
}

/// The `http_config` blocks of these receivers (`at` named), to build their clients
/// when the configuration is loaded.
pub fn http_configs(r: &Receiver, path: &str) -> Vec<(String, HttpConfig)> {
    let mut v = Vec::new();
    let mut push = |kind: &str, j: usize, h: &Option<HttpConfig>| {
        if let Some(h) = h {
            v.push((format!("{path}.{kind}[{j}].http_config"), h.clone()));
        }
    };
    for (j, c) in r.victorops_configs.iter().enumerate() {
        push("victorops_configs", j, &c.http_config);
    }
    for (j, c) in r.pushover_configs.iter().enumerate() {
        push("pushover_configs", j, &c.http_config);
    }
    for (j, c) in r.telegram_configs.iter().enumerate() {
        push("telegram_configs", j, &c.http_config);
    }
    for (j, c) in r.webex_configs.iter().enumerate() {
        push("webex_configs", j, &c.http_config);
    }
    for (j, c) in r.discord_configs.iter().enumerate() {
        push("discord_configs", j, &c.http_config);
    }
    for (j, c) in r.wechat_configs.iter().enumerate() {
        push("wechat_configs", j, &c.http_config);
    }
    for (j, c) in r.msteams_configs.iter().enumerate() {
        push("msteams_configs", j, &c.http_config);
    }
    v
}

/// Alertmanager's `notify.TruncateInRunes`: at most `n` characters, the last one `…`.
pub fn truncate_runes(s: &str, n: usize) -> (String, bool) {
    let count = s.chars().count();
    if count <= n {
        return (s.to_string(), false);
    }
    if n <= 3 {
        return (s.chars().take(n).collect(), true);
    }
    let mut out: String = s.chars().take(n - 1).collect();
    out.push('…');
    (out, true)
}

/// Alertmanager's `notify.TruncateInBytes`: at most `n` bytes of UTF-8, ending in `…`.
pub fn truncate_bytes(s: &str, n: usize) -> (String, bool) {
    if s.len() <= n {
        return (s.to_string(), false);
    }
    if n <= 3 {
        return (
            if n == 3 {
                "…".to_string()
            } else {
                ".".repeat(n)
            },
            true,
        );
    }
    let target = n - 3;
    let mut end = target;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (format!("{}…", &s[..end]), true)
}

/// Alertmanager's `Key.Hash()`: sha256 of the group key, hex.
pub fn key_hash(group_key: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(group_key.as_bytes()))
}

/// `{at}.webhook_url` is set and a valid URL (Alertmanager's "no <kind> webhook URL
/// provided"). The URL is a secret: an error does not repeat it.
pub fn check_webhook_url(url: Option<&Secret>, at: &str, kind: &str) -> Result<(), ConfigError> {
    let at = format!("{at}.webhook_url");
    match url {
        None => Err(cerr(at, format!("no {kind} webhook URL provided"))),
        Some(u) => check_url(u.expose(), &at)
            .map(|_| ())
            .map_err(|_| cerr(at, "invalid URL (<secret>)")),
    }
}

/// Renders a receiver's templates and keeps the first error, which fails the
/// notification without a retry, as Alertmanager's `notify.TmplText` /
/// `TmplHTML` do (the same rule as [`super::tmpl::Tmpl`]; this one works through a
/// shared reference, so closures can borrow it).
pub struct Texts<'a> {
    r: &'a Renderer,
    m: &'a Message,
    err: std::cell::RefCell<Option<String>>,
}

impl<'a> Texts<'a> {
    pub fn new(r: &'a Renderer, m: &'a Message) -> Self {
        Texts {
            r,
            m,
            err: std::cell::RefCell::new(None),
        }
    }

    /// `src` rendered as text ("" once an error is kept).
    pub fn t(&self, src: &str, what: &str) -> String {
        self.render(src, false, what)
    }

    /// `src` rendered as text, or with html/template's escaping when `html`.
    pub fn render(&self, src: &str, html: bool, what: &str) -> String {
        if self.err.borrow().is_some() || src.is_empty() {
            return String::new();
        }
        let out = if html {
            self.r.render_html(src, self.m)
        } else {
            self.r.render(src, self.m)
        };
        out.unwrap_or_else(|e| {
            *self.err.borrow_mut() = Some(format!("{what}: {e}"));
            String::new()
        })
    }

    /// The first template error, as a permanent failure naming the integration and
    /// the field.
    pub fn finish(self, integration: &str) -> Result<(), SinkError> {
        match self.err.into_inner() {
            None => Ok(()),
            Some(e) => Err(SinkError::permanent(format!("{integration}: template {e}"))),
        }
    }
}

/// An HTTP client with the `Authorization` of its `http_config` (fixed credentials or
/// OAuth 2.0 client credentials, see [`super::http::Authorizer`]).
#[derive(Clone)]
pub struct Http {
    pub client: reqwest::Client,
    pub auth: std::sync::Arc<super::http::Authorizer>,
}

impl Http {
    pub fn new(client: reqwest::Client, hc: &HttpConfig) -> Self {
        Http {
            client,
            auth: std::sync::Arc::new(super::http::Authorizer::new(hc)),
        }
    }

    /// One request; a response of any status is `Ok((status, body))`; a transport error
    /// or time-out is retryable. Error texts never carry the URL (it may hold secrets).
    pub async fn send(
        &self,
        mut req: reqwest::RequestBuilder,
        timeout: Duration,
        what: &str,
    ) -> Result<(u16, String), SinkError> {
        if let Some(a) = self.auth.header(&self.client).await? {
            req = req.header("authorization", a.expose());
        }
        match req.timeout(timeout).send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let text = resp.text().await.unwrap_or_default();
                Ok((status, text))
            }
            Err(e) if e.is_timeout() => Err(SinkError::retryable(format!(
                "{what}: timed out after {timeout:?}"
            ))),
            Err(e) => Err(SinkError::retryable(format!(
                "{what}: {}",
                super::webhook::error_chain(&e.without_url())
            ))),
        }
    }

    /// POST a JSON body (`Content-Type: application/json`, as `notify.PostJSON`).
    pub fn post_json(&self, url: &str, body: &serde_json::Value) -> reqwest::RequestBuilder {
        self.client
            .post(url)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body).unwrap_or_default())
    }
}

/// Alertmanager's `notify.Retrier{}` (victorops, pushover, webex, discord, msteams): 2xx
/// ok, 5xx retried, any other status (429 included) not. The body is in the error.
pub fn check(status: u16, body: &str, what: &str) -> Result<(), SinkError> {
    super::http::classify(status, body, &[], what)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Outputs of Alertmanager 0.25's `TruncateInRunes` / `TruncateInBytes`.
    #[test]
    fn truncation_like_alertmanager() {
        assert_eq!(truncate_runes("abcdef", 6), ("abcdef".into(), false));
        assert_eq!(truncate_runes("abcdef", 4), ("abc…".into(), true));
        assert_eq!(truncate_runes("abcdef", 2), ("ab".into(), true));
        assert_eq!(truncate_runes("ééééé", 3), ("ééé".into(), true));
        assert_eq!(truncate_bytes("abcdef", 6), ("abcdef".into(), false));
        assert_eq!(truncate_bytes("abcdef", 5), ("ab…".into(), true));
        assert_eq!(truncate_bytes("abcdef", 3), ("…".into(), true));
        assert_eq!(truncate_bytes("abcdef", 2), ("..".into(), true));
        // Never cuts a character: "é" is 2 bytes.
        assert_eq!(truncate_bytes("aéé", 4), ("a…".into(), true));
        assert_eq!(truncate_bytes("aééé", 6), ("aé…".into(), true));
        assert_eq!(truncate_bytes("aééé", 5), ("a…".into(), true));
        assert_eq!(truncate_bytes("aéé", 5), ("aéé".into(), false));
        assert_eq!(
            key_hash(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "<secret>");
        let src = SecretSource::Inline(s);
        assert!(!format!("{src:?}").contains("hunter2"));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("k");
        std::fs::write(&f, "  key-from-file\n").unwrap();
        let src = SecretSource::File(f.display().to_string());
        assert_eq!(src.get("x").unwrap().expose(), "key-from-file");
        let e = SecretSource::File("/nonexistent/k".into())
            .get("victorops api_key_file")
            .unwrap_err();
        assert!(!e.retryable && e.message.contains("/nonexistent/k"), "{e}");
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use crate::alert::StoredAlert;
    use crate::config::Config;
    use crate::sink::Notification;
    use argus_model::Labels;

    /// A configuration whose one receiver `r` has `body` (YAML indented 4 spaces).
    pub fn yaml(body: &str) -> String {
        format!("route: {{receiver: r}}\nreceivers:\n  - name: r\n    {body}")
    }

    pub fn sink_config(body: &str) -> Config {
        crate::load_config(&yaml(body)).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A notification of group `{alertname="Down"}`: (instance, firing) per alert.
    pub fn notification(alerts: &[(&str, bool)]) -> Notification {
        let now = 10_000;
        Notification {
            receiver: "r".into(),
            group_key: "{}:{alertname=\"Down\"}".into(),
            group_labels: Labels::from_pairs([("alertname", "Down")]),
            alerts: alerts
                .iter()
                .map(|(i, firing)| StoredAlert {
                    labels: Labels::from_pairs([("alertname", "Down"), ("instance", i)]),
                    annotations: Labels::from_pairs([("summary", "is down")]),
                    starts_at: 0,
                    ends_at: if *firing { now + 1000 } else { now - 1000 },
                    generator_url: "http://prom/graph".into(),
                    updated_at: 0,
                    timeout: false,
                })
                .collect(),
            external_url: "http://am".into(),
            now,
            nflog_key: "k".into(),
            dedup_id: "d".into(),
        }
    }
}
