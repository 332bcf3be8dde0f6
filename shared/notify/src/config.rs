//! Alertmanager's configuration file, the documented subset (see README), parsed with
//! serde-saphyr and validated with messages that name the route path, receiver and field.

use crate::matcher::{parse_matchers, MatchType, Matcher, Matchers};
use crate::route::Route;
use crate::timeinterval::TimeInterval;
use argus_model::time::serde_duration;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

pub const DEFAULT_RESOLVE_TIMEOUT: Duration = Duration::from_secs(300);
pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(300);
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

/// Why a configuration was rejected: where (`route.routes[1]`, `receivers[0] "team"`,
/// `inhibit_rules[2]`) and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

pub(crate) fn cerr(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        path: path.into(),
        message: message.into(),
    }
}

// ---------------------------------------------------------------- raw YAML shapes

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    global: RawGlobal,
    route: Option<RawRoute>,
    #[serde(default)]
    inhibit_rules: Vec<RawInhibitRule>,
    #[serde(default)]
    receivers: Vec<Receiver>,
    #[serde(default)]
    templates: Vec<String>,
    #[serde(default)]
    time_intervals: Vec<RawTimeIntervalDef>,
    /// Deprecated spelling of `time_intervals` (still accepted by Alertmanager 0.25).
    #[serde(default)]
    mute_time_intervals: Vec<RawTimeIntervalDef>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct RawGlobal {
    #[serde(default, with = "serde_duration::option")]
    resolve_timeout: Option<Duration>,
    slack_api_url: Option<crate::secret::Secret>,
    /// A file holding the Slack webhook URL (read by [`load_config_in`]).
    slack_api_url_file: Option<String>,
    http_config: Option<HttpConfig>,
    #[serde(flatten)]
    pagerduty: crate::sink::pagerduty::PagerdutyGlobal,
    #[serde(flatten)]
    opsgenie: crate::sink::opsgenie::OpsgenieGlobal,
    #[serde(flatten)]
    smtp: crate::sink::email::SmtpGlobal,
    /// Any other key: not an Alertmanager 0.25 global setting, an error (as amtool).
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
    // Part B receivers' global settings (crate::sink::b::GlobalB).
    victorops_api_url: Option<String>,
    victorops_api_key: Option<crate::sink::b::Secret>,
    victorops_api_key_file: Option<String>,
    telegram_api_url: Option<String>,
    webex_api_url: Option<String>,
    wechat_api_url: Option<String>,
    wechat_api_secret: Option<crate::sink::b::Secret>,
    wechat_api_corp_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    receiver: Option<String>,
    group_by: Option<Vec<String>>,
    #[serde(default, rename = "continue")]
    continue_: bool,
    #[serde(default, rename = "match")]
    match_eq: BTreeMap<String, String>,
    #[serde(default)]
    match_re: BTreeMap<String, String>,
    #[serde(default)]
    matchers: Vec<String>,
    #[serde(default, with = "serde_duration::option")]
    group_wait: Option<Duration>,
    #[serde(default, with = "serde_duration::option")]
    group_interval: Option<Duration>,
    #[serde(default, with = "serde_duration::option")]
    repeat_interval: Option<Duration>,
    #[serde(default)]
    mute_time_intervals: Vec<String>,
    #[serde(default)]
    active_time_intervals: Vec<String>,
    #[serde(default)]
    routes: Vec<RawRoute>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInhibitRule {
    #[serde(default)]
    source_matchers: Vec<String>,
    #[serde(default)]
    target_matchers: Vec<String>,
    #[serde(default)]
    source_match: BTreeMap<String, String>,
    #[serde(default)]
    source_match_re: BTreeMap<String, String>,
    #[serde(default)]
    target_match: BTreeMap<String, String>,
    #[serde(default)]
    target_match_re: BTreeMap<String, String>,
    #[serde(default)]
    equal: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeIntervalDef {
    name: String,
    #[serde(default)]
    time_intervals: Vec<crate::timeinterval::RawTimeInterval>,
}

// ---------------------------------------------------------------- public shapes

/// HTTP client settings of a receiver (the part of Prometheus' `http_config` that
/// Alertmanager 0.25 documents, minus OAuth 2.0).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub authorization: Option<Authorization>,
    pub bearer_token: Option<crate::secret::Secret>,
    /// Read into `bearer_token` when the configuration is loaded from a file.
    pub bearer_token_file: Option<String>,
    pub basic_auth: Option<BasicAuth>,
    /// OAuth 2.0 client credentials (a token fetched and cached per receiver).
    pub oauth2: Option<crate::sink::http::OAuth2Config>,
    /// `http://host:port` of an HTTP proxy for every request of this client.
    pub proxy_url: Option<String>,
    /// Default true; false returns a redirect response as the result.
    pub follow_redirects: Option<bool>,
    /// Accepted, not honoured: Argus' client negotiates HTTP/2 by ALPN as usual.
    pub enable_http2: Option<bool>,
    pub tls_config: Option<TlsConfig>,
}

/// Prometheus' `tls_config` (files are read when the client is built).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    /// Accepted, not honoured (the URL's host is the server name).
    pub server_name: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Accepted, not honoured (TLS 1.2 and 1.3 are offered).
    pub min_version: Option<String>,
    /// Accepted, not honoured.
    pub max_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    #[serde(default = "bearer", rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub credentials: crate::secret::Secret,
    /// Read into `credentials` when the configuration is loaded from a file.
    pub credentials_file: Option<String>,
}
fn bearer() -> String {
    "Bearer".into()
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    #[serde(default)]
    pub password: crate::secret::Secret,
    /// Read into `password` when the configuration is loaded from a file.
    pub password_file: Option<String>,
}

impl HttpConfig {
    /// Whether requests need a client of their own (proxy, redirects, TLS settings)
    /// rather than the shared one.
    pub fn needs_own_client(&self) -> bool {
        self.proxy_url.is_some()
            || self.follow_redirects == Some(false)
            || self.tls_config.is_some()
    }

    /// A client honouring `proxy_url`, `follow_redirects` and `tls_config` (`ca_file`,
    /// `cert_file` + `key_file`, `insecure_skip_verify`), with Argus' user agent and
    /// connect timeout. Reads the TLS files.
    pub fn build_client(&self) -> Result<reqwest::Client, String> {
        let mut b = reqwest::Client::builder()
            .user_agent(concat!("Argus/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5));
        if let Some(p) = &self.proxy_url {
            b = b.proxy(reqwest::Proxy::all(p).map_err(|e| format!("proxy_url {p:?}: {e}"))?);
        }
        if self.follow_redirects == Some(false) {
            b = b.redirect(reqwest::redirect::Policy::none());
        }
        if let Some(t) = &self.tls_config {
            let read = |f: &str| std::fs::read(f).map_err(|e| format!("tls_config: {f}: {e}"));
            if let Some(ca) = &t.ca_file {
                let pem = read(ca)?;
                for c in reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|e| format!("tls_config.ca_file {ca}: {e}"))?
                {
                    b = b.add_root_certificate(c);
                }
            }
            match (&t.cert_file, &t.key_file) {
                (Some(c), Some(k)) => {
                    let mut pem = read(c)?;
                    pem.push(b'\n');
                    pem.extend(read(k)?);
                    b = b.identity(
                        reqwest::Identity::from_pem(&pem)
                            .map_err(|e| format!("tls_config.cert_file/key_file: {e}"))?,
                    );
                }
                (None, None) => {}
                _ => return Err("tls_config: cert_file and key_file must be set together".into()),
            }
            if t.insecure_skip_verify {
                b = b.danger_accept_invalid_certs(true);
            }
        }
        b.build().map_err(|e| e.to_string())
    }

    /// The `Authorization` header value, if any.
    pub fn auth_header(&self) -> Option<String> {
        if let Some(a) = &self.authorization {
            return Some(format!("{} {}", a.kind, a.credentials.expose()));
        }
        if let Some(t) = &self.bearer_token {
            return Some(format!("Bearer {}", t.expose()));
        }
        if let Some(b) = &self.basic_auth {
            use base64::Engine;
            let raw = format!("{}:{}", b.username, b.password.expose());
            return Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            ));
        }
        None
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receiver {
    pub name: String,
    #[serde(default)]
    pub webhook_configs: Vec<WebhookConfig>,
    #[serde(default)]
    pub slack_configs: Vec<SlackConfig>,
    #[serde(default)]
    pub sns_configs: Vec<SnsConfig>,
    #[serde(default)]
    pub pagerduty_configs: Vec<crate::sink::pagerduty::PagerdutyConfig>,
    #[serde(default)]
    pub opsgenie_configs: Vec<crate::sink::opsgenie::OpsgenieConfig>,
    #[serde(default)]
    pub email_configs: Vec<crate::sink::email::EmailConfig>,
    /// Argus extension: JSON lines, one webhook v4 body per line.
    #[serde(default)]
    pub log_configs: Vec<LogConfig>,
    #[serde(default)]
    pub victorops_configs: Vec<crate::sink::victorops::VictorOpsConfig>,
    #[serde(default)]
    pub pushover_configs: Vec<crate::sink::pushover::PushoverConfig>,
    #[serde(default)]
    pub telegram_configs: Vec<crate::sink::telegram::TelegramConfig>,
    #[serde(default)]
    pub webex_configs: Vec<crate::sink::webex::WebexConfig>,
    #[serde(default)]
    pub discord_configs: Vec<crate::sink::discord::DiscordConfig>,
    #[serde(default)]
    pub wechat_configs: Vec<crate::sink::wechat::WechatConfig>,
    #[serde(default)]
    pub msteams_configs: Vec<crate::sink::msteams::MsTeamsConfig>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// 0: no limit.
    #[serde(default)]
    pub max_alerts: u64,
    #[serde(default, with = "serde_duration::option")]
    pub timeout: Option<Duration>,
    pub http_config: Option<HttpConfig>,
}

pub use crate::sink::slack::{SlackConfig, DEFAULT_SLACK_TEXT, DEFAULT_SLACK_TITLE};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnsConfig {
    pub topic_arn: String,
    /// Alertmanager's SNS endpoint override. Accepted, not honoured: the SNS client is
    /// the function's (region and endpoint from its environment); see the README.
    pub api_url: Option<String>,
    /// Alertmanager's credentials for SNS. Accepted, not honoured: Argus signs with the
    /// function's IAM role; see the README.
    pub sigv4: Option<SigV4Config>,
    /// Go template; default: the Slack-style title.
    pub subject: Option<String>,
    /// Go template for the email/SMS text; default: one line per alert.
    pub message: Option<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    #[serde(default = "yes")]
    pub send_resolved: bool,
}

/// Alertmanager's `sigv4` block (accepted for compatibility, see [`SnsConfig::sigv4`]).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigV4Config {
    pub region: Option<String>,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    pub profile: Option<String>,
    pub role_arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub path: String,
    #[serde(default = "yes")]
    pub send_resolved: bool,
}

/// An inhibition rule, compiled.
#[derive(Debug, Clone)]
pub struct InhibitRule {
    pub source: Matchers,
    pub target: Matchers,
    pub equal: Vec<String>,
}

/// A validated configuration. `Debug` leaves out the original text (it may hold
/// secrets); every secret field prints `<secret>`.
#[derive(Clone)]
pub struct Config {
    pub resolve_timeout: Duration,
    pub slack_api_url: Option<crate::secret::Secret>,
    /// `global.slack_api_url_file` as written ([`load_config_in`] reads it into
    /// `slack_api_url`).
    pub slack_api_url_file: Option<String>,
    pub http_config: HttpConfig,
    pub pagerduty: crate::sink::pagerduty::PagerdutyGlobal,
    pub opsgenie: crate::sink::opsgenie::OpsgenieGlobal,
    pub smtp: crate::sink::email::SmtpGlobal,
    pub route: Route,
    pub inhibit_rules: Vec<InhibitRule>,
    pub receivers: Vec<Receiver>,
    pub time_intervals: BTreeMap<String, Vec<TimeInterval>>,
    pub templates: Vec<String>,
    /// (path, contents) of the template files, read by [`load_config_file`].
    pub template_files: Vec<(String, String)>,
    /// The file as given (served by `GET /api/v2/status`).
    pub original: String,
    /// Accepted but unused settings (e.g. `global.smtp_smarthost`).
    pub warnings: Vec<String>,
    /// `global:` settings of the part B receivers (victorops, telegram, webex, wechat).
    pub global_b: crate::sink::b::GlobalB,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("resolve_timeout", &self.resolve_timeout)
            .field("slack_api_url", &self.slack_api_url)
            .field("http_config", &self.http_config)
            .field("pagerduty", &self.pagerduty)
            .field("opsgenie", &self.opsgenie)
            .field("smtp", &self.smtp)
            .field("route", &self.route)
            .field("receivers", &self.receivers)
            .field("templates", &self.templates)
            .field("original", &format_args!("<{} bytes>", self.original.len()))
            .field("warnings", &self.warnings)
            .field("global_b", &self.global_b)
            .finish_non_exhaustive()
    }
}

impl Config {
    pub fn receiver(&self, name: &str) -> Option<&Receiver> {
        self.receivers.iter().find(|r| r.name == name)
    }
}

/// Parses and validates an Alertmanager configuration.
pub fn load_config(text: &str) -> Result<Config, ConfigError> {
    let raw: RawConfig = serde_saphyr::from_str(text).map_err(|e| cerr("config", e.to_string()))?;
    let mut warnings = Vec::new();
    // Argus has every integration of Alertmanager 0.25: any other key is not one of its
    // global settings.
    if let Some(k) = raw.global.other.keys().next() {
        return Err(cerr(
            "global",
            format!("field {k} not found in type config.plain (not an Alertmanager 0.25 global setting)"),
        ));
    }
    if let Some(h) = &raw.global.http_config {
        check_http_config(h, "global.http_config")?;
    }
    raw.global.pagerduty.validate()?;
    raw.global.opsgenie.validate()?;
    raw.global.smtp.validate()?;
    if raw.global.slack_api_url.is_some() && raw.global.slack_api_url_file.is_some() {
        return Err(cerr(
            "global",
            "at most one of slack_api_url & slack_api_url_file must be configured",
        ));
    }
    let g = &raw.global;
    let global_b = crate::sink::b::GlobalB::new(
        g.victorops_api_url.clone(),
        g.victorops_api_key.clone(),
        g.victorops_api_key_file.clone(),
        g.telegram_api_url.clone(),
        g.webex_api_url.clone(),
        g.wechat_api_url.clone(),
        g.wechat_api_secret.clone(),
        g.wechat_api_corp_id.clone(),
    )?;
    // Time intervals.
    let mut time_intervals = BTreeMap::new();
    for (i, def) in raw
        .time_intervals
        .iter()
        .chain(raw.mute_time_intervals.iter())
        .enumerate()
    {
        let path = format!("time_intervals[{i}] {:?}", def.name);
        if def.name.is_empty() {
            return Err(cerr(path, "missing name"));
        }
        let mut v = Vec::new();
        for (j, t) in def.time_intervals.iter().enumerate() {
            v.push(
                TimeInterval::compile(t)
                    .map_err(|m| cerr(format!("{path}.time_intervals[{j}]"), m))?,
            );
        }
        if time_intervals.insert(def.name.clone(), v).is_some() {
            return Err(cerr(path, "time interval name is not unique"));
        }
    }
    // Receivers.
    let mut names = BTreeSet::new();
    for (i, r) in raw.receivers.iter().enumerate() {
        let path = format!("receivers[{i}] {:?}", r.name);
        if r.name.is_empty() {
            return Err(cerr(format!("receivers[{i}]"), "missing name"));
        }
        if !names.insert(r.name.clone()) {
            return Err(cerr(path, "receiver name is not unique"));
        }
        for (j, w) in r.webhook_configs.iter().enumerate() {
            check_url(&w.url).map_err(|m| cerr(format!("{path}.webhook_configs[{j}].url"), m))?;
        }
        for (j, s) in r.slack_configs.iter().enumerate() {
            let at = format!("{path}.slack_configs[{j}]");
            if s.api_url.is_some() && s.api_url_file.is_some() {
                return Err(cerr(
                    at,
                    "at most one of api_url & api_url_file must be configured",
                ));
            }
            if s.api_url.is_none()
                && s.api_url_file.is_none()
                && raw.global.slack_api_url_file.is_none()
            {
                match &raw.global.slack_api_url {
                    None => {
                        return Err(cerr(
                            format!("{at}.api_url"),
                            "missing (and no global.slack_api_url or slack_api_url_file)",
                        ))
                    }
                    Some(u) => {
                        check_url(u.expose()).map_err(|m| cerr(format!("{at}.api_url"), m))?
                    }
                }
            }
            if let Some(u) = &s.api_url {
                check_url(u.expose()).map_err(|m| cerr(format!("{at}.api_url"), m))?;
            }
            s.check_parts(&at)?;
            if let Some(h) = &s.http_config {
                check_http_config(h, &format!("{at}.http_config"))?;
            }
        }
        for (j, w) in r.webhook_configs.iter().enumerate() {
            if let Some(h) = &w.http_config {
                check_http_config(h, &format!("{path}.webhook_configs[{j}].http_config"))?;
            }
        }
        for (j, s) in r.sns_configs.iter().enumerate() {
            if let Some(u) = &s.api_url {
                check_url(u).map_err(|m| cerr(format!("{path}.sns_configs[{j}].api_url"), m))?;
                warnings.push(format!(
                    "{path}.sns_configs[{j}].api_url: not used by Argus (the SNS client's endpoint is the function's)"
                ));
            }
            if s.sigv4.is_some() {
                warnings.push(format!(
                    "{path}.sns_configs[{j}].sigv4: not used by Argus (SNS requests are signed with the function's IAM role)"
                ));
            }
            if !s.topic_arn.starts_with("arn:") {
                return Err(cerr(
                    format!("{path}.sns_configs[{j}].topic_arn"),
                    format!(
                        "{:?} is not an ARN (arn:aws:sns:REGION:ACCOUNT:NAME)",
                        s.topic_arn
                    ),
                ));
            }
        }
        for (j, c) in r.pagerduty_configs.iter().enumerate() {
            c.validate(
                &format!("{path}.pagerduty_configs[{j}]"),
                &raw.global.pagerduty,
            )?;
        }
        for (j, c) in r.opsgenie_configs.iter().enumerate() {
            c.validate(
                &format!("{path}.opsgenie_configs[{j}]"),
                &raw.global.opsgenie,
            )?;
        }
        for (j, c) in r.email_configs.iter().enumerate() {
            c.validate(&format!("{path}.email_configs[{j}]"), &raw.global.smtp)?;
        }
        for (j, l) in r.log_configs.iter().enumerate() {
            if l.path.trim().is_empty() {
                return Err(cerr(format!("{path}.log_configs[{j}].path"), "empty"));
            }
        }
        crate::sink::b::check_receiver(r, &global_b, &path)?;
    }
    // Route tree.
    let raw_route = raw
        .route
        .as_ref()
        .ok_or_else(|| cerr("route", "missing (a root route is required)"))?;
    if raw_route.receiver.as_deref().unwrap_or("").is_empty() {
        return Err(cerr("route", "root route must specify a default receiver"));
    }
    if !raw_route.matchers.is_empty()
        || !raw_route.match_eq.is_empty()
        || !raw_route.match_re.is_empty()
    {
        return Err(cerr("route", "root route must not have any matchers"));
    }
    if !raw_route.mute_time_intervals.is_empty() || !raw_route.active_time_intervals.is_empty() {
        return Err(cerr(
            "route",
            "root route must not have any mute or active time intervals",
        ));
    }
    let route = build_route(
        raw_route,
        None,
        "route",
        &mut vec![0],
        &names,
        &time_intervals,
    )?;
    // Inhibit rules.
    let mut inhibit_rules = Vec::new();
    for (i, r) in raw.inhibit_rules.iter().enumerate() {
        let path = format!("inhibit_rules[{i}]");
        let source = compile_matchers(
            &r.source_match,
            &r.source_match_re,
            &r.source_matchers,
            &format!("{path}.source"),
        )?;
        let target = compile_matchers(
            &r.target_match,
            &r.target_match_re,
            &r.target_matchers,
            &format!("{path}.target"),
        )?;
        for e in &r.equal {
            if !crate::matcher::valid_label_name(e) {
                return Err(cerr(
                    format!("{path}.equal"),
                    format!("invalid label name {e:?}"),
                ));
            }
        }
        inhibit_rules.push(InhibitRule {
            source,
            target,
            equal: r.equal.clone(),
        });
    }
    let config = Config {
        resolve_timeout: raw
            .global
            .resolve_timeout
            .unwrap_or(DEFAULT_RESOLVE_TIMEOUT),
        slack_api_url: raw.global.slack_api_url.clone(),
        slack_api_url_file: raw.global.slack_api_url_file.clone(),
        http_config: raw.global.http_config.clone().unwrap_or_default(),
        pagerduty: raw.global.pagerduty.clone(),
        opsgenie: raw.global.opsgenie.clone(),
        smtp: raw.global.smtp.clone(),
        route,
        inhibit_rules,
        receivers: raw.receivers,
        time_intervals,
        templates: raw.templates,
        template_files: Vec::new(),
        original: text.to_string(),
        warnings,
        global_b,
    };
    check_templates(&config, &crate::render::Renderer::default())?;
    Ok(config)
}

/// Every notification template of the receivers parses.
fn check_templates(c: &Config, r: &crate::render::Renderer) -> Result<(), ConfigError> {
    for (i, rc) in c.receivers.iter().enumerate() {
        let path = format!("receivers[{i}] {:?}", rc.name);
        let check =
            |field: String, t: &str| r.check(t).map_err(|m| cerr(format!("{path}.{field}"), m));
        for (j, s) in rc.slack_configs.iter().enumerate() {
            for (f, t) in s.templates() {
                check(format!("slack_configs[{j}].{f}"), t)?;
            }
        }
        for (j, c) in rc.pagerduty_configs.iter().enumerate() {
            for (f, t) in c.templates() {
                check(format!("pagerduty_configs[{j}].{f}"), t)?;
            }
        }
        for (j, c) in rc.opsgenie_configs.iter().enumerate() {
            for (f, t) in c.templates() {
                check(format!("opsgenie_configs[{j}].{f}"), t)?;
            }
        }
        for (j, c) in rc.email_configs.iter().enumerate() {
            for (f, t) in c.templates() {
                check(format!("email_configs[{j}].{f}"), t)?;
            }
        }
        for (j, s) in rc.sns_configs.iter().enumerate() {
            if let Some(t) = &s.subject {
                check(format!("sns_configs[{j}].subject"), t)?;
            }
            if let Some(t) = &s.message {
                check(format!("sns_configs[{j}].message"), t)?;
            }
            for (k, v) in &s.attributes {
                check(format!("sns_configs[{j}].attributes.{k}"), v)?;
            }
        }
        crate::sink::b::check_templates(rc, &path, r)?;
    }
    Ok(())
}

/// Reads a configuration file: `templates:` globs and `log_configs` paths are relative
/// to the file's directory (as Alertmanager resolves template paths).
pub fn load_config_file(path: &std::path::Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| cerr(path.display().to_string(), e.to_string()))?;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    load_config_in(&text, dir)
        .map_err(|e| cerr(format!("{}: {}", path.display(), e.path), e.message))
}

/// [`load_config`] for a text whose relative paths (`templates:` globs, `log_configs`
/// paths) are relative to `base_dir`; reads and checks the template files.
pub fn load_config_in(text: &str, base_dir: &std::path::Path) -> Result<Config, ConfigError> {
    let mut c = load_config(text)?;
    let dir = base_dir;
    for (i, pat) in c.templates.clone().iter().enumerate() {
        let full = dir.join(pat);
        let entries = glob::glob(&full.to_string_lossy())
            .map_err(|e| cerr(format!("templates[{i}]"), e.to_string()))?;
        for entry in entries {
            let p = entry.map_err(|e| cerr(format!("templates[{i}]"), e.to_string()))?;
            let t = std::fs::read_to_string(&p)
                .map_err(|e| cerr(format!("templates[{i}] {}", p.display()), e.to_string()))?;
            c.template_files.push((p.display().to_string(), t));
        }
    }
    // URL files (relative to the configuration's directory), read once here: a changed
    // file takes effect when the configuration is loaded again.
    let read_url = |f: &str, at: String| -> Result<String, ConfigError> {
        let p = dir.join(f);
        let t = std::fs::read_to_string(&p)
            .map_err(|e| cerr(at.clone(), format!("{}: {e}", p.display())))?;
        let u = t.trim().to_string();
        check_url(&u).map_err(|m| cerr(at, m))?;
        Ok(u)
    };
    if let Some(f) = c.slack_api_url_file.clone() {
        c.slack_api_url = Some(crate::secret::Secret::new(read_url(
            &f,
            "global.slack_api_url_file".into(),
        )?));
    }
    for (i, r) in c.receivers.iter_mut().enumerate() {
        for (j, s) in r.slack_configs.iter_mut().enumerate() {
            if let Some(f) = s.api_url_file.clone() {
                s.api_url = Some(crate::secret::Secret::new(read_url(
                    &f,
                    format!(
                        "receivers[{i}] {:?}.slack_configs[{j}].api_url_file",
                        r.name
                    ),
                )?));
            }
        }
    }
    read_http_files(&mut c.http_config, dir, "global.http_config")?;
    crate::sink::opsgenie::read_global_files(&mut c.opsgenie, dir)?;
    crate::sink::email::read_global_files(&mut c.smtp, dir)?;
    for (i, r) in c.receivers.iter_mut().enumerate() {
        let at = format!("receivers[{i}] {:?}", r.name);
        for (j, w) in r.webhook_configs.iter_mut().enumerate() {
            if let Some(h) = &mut w.http_config {
                read_http_files(h, dir, &format!("{at}.webhook_configs[{j}].http_config"))?;
            }
        }
        for (j, s) in r.slack_configs.iter_mut().enumerate() {
            if let Some(h) = &mut s.http_config {
                read_http_files(h, dir, &format!("{at}.slack_configs[{j}].http_config"))?;
            }
        }
        for (j, c) in r.pagerduty_configs.iter_mut().enumerate() {
            c.read_files(dir, &format!("{at}.pagerduty_configs[{j}]"))?;
        }
        for (j, c) in r.opsgenie_configs.iter_mut().enumerate() {
            c.read_files(dir, &format!("{at}.opsgenie_configs[{j}]"))?;
        }
        for (j, c) in r.email_configs.iter_mut().enumerate() {
            c.read_files(dir, &format!("{at}.email_configs[{j}]"))?;
        }
    }
    // Clients with their own settings are built once here so that a bad proxy URL or
    // TLS file is a load error, not a failed notification.
    let mut hcs = vec![("global.http_config".to_string(), c.http_config.clone())];
    for (i, r) in c.receivers.iter().enumerate() {
        for (j, w) in r.webhook_configs.iter().enumerate() {
            if let Some(h) = &w.http_config {
                hcs.push((
                    format!(
                        "receivers[{i}] {:?}.webhook_configs[{j}].http_config",
                        r.name
                    ),
                    h.clone(),
                ));
            }
        }
        for (j, s) in r.slack_configs.iter().enumerate() {
            if let Some(h) = &s.http_config {
                hcs.push((
                    format!("receivers[{i}] {:?}.slack_configs[{j}].http_config", r.name),
                    h.clone(),
                ));
            }
        }
        let own =
            |kind: &str, j: usize| format!("receivers[{i}] {:?}.{kind}[{j}].http_config", r.name);
        for (j, c) in r.pagerduty_configs.iter().enumerate() {
            hcs.extend(
                c.http_config
                    .clone()
                    .map(|h| (own("pagerduty_configs", j), h)),
            );
        }
        for (j, c) in r.opsgenie_configs.iter().enumerate() {
            hcs.extend(
                c.http_config
                    .clone()
                    .map(|h| (own("opsgenie_configs", j), h)),
            );
        }
        hcs.extend(crate::sink::b::http_configs(
            r,
            &format!("receivers[{i}] {:?}", r.name),
        ));
    }
    for (at, h) in hcs {
        if h.needs_own_client() {
            h.build_client().map_err(|m| cerr(at, m))?;
        }
    }
    let renderer =
        crate::render::Renderer::new(&c.template_files).map_err(|m| cerr("templates", m))?;
    check_templates(&c, &renderer)?;
    for r in &mut c.receivers {
        crate::sink::b::resolve_paths(r, &mut c.global_b, dir);
        for l in &mut r.log_configs {
            let p = std::path::Path::new(&l.path);
            if p.is_relative() {
                l.path = dir.join(p).display().to_string();
            }
        }
    }
    Ok(c)
}

/// Reads the `*_file` credentials of an `http_config` (relative to `dir`).
pub(crate) fn read_http_files(
    h: &mut HttpConfig,
    dir: &std::path::Path,
    at: &str,
) -> Result<(), ConfigError> {
    use crate::secret::read_secret_file;
    if let Some(f) = h.bearer_token_file.clone() {
        h.bearer_token = Some(
            read_secret_file(dir, &f).map_err(|m| cerr(format!("{at}.bearer_token_file"), m))?,
        );
    }
    if let Some(a) = &mut h.authorization {
        if let Some(f) = a.credentials_file.clone() {
            a.credentials = read_secret_file(dir, &f)
                .map_err(|m| cerr(format!("{at}.authorization.credentials_file"), m))?;
        }
    }
    if let Some(b) = &mut h.basic_auth {
        if let Some(f) = b.password_file.clone() {
            b.password = read_secret_file(dir, &f)
                .map_err(|m| cerr(format!("{at}.basic_auth.password_file"), m))?;
        }
    }
    if let Some(o) = &mut h.oauth2 {
        if let Some(f) = o.client_secret_file.clone() {
            o.client_secret = read_secret_file(dir, &f)
                .map_err(|m| cerr(format!("{at}.oauth2.client_secret_file"), m))?;
        }
    }
    Ok(())
}

/// TLS key and certificate come in pairs. (`proxy_url` is checked when the client is
/// built: amtool accepts any string Go's `url.Parse` does, `foo` included.)
pub(crate) fn check_http_config(h: &HttpConfig, at: &str) -> Result<(), ConfigError> {
    // As Prometheus' `HTTPClientConfig.Validate`.
    if h.bearer_token.is_some() && h.bearer_token_file.is_some() {
        return Err(cerr(
            at,
            "at most one of bearer_token & bearer_token_file must be configured",
        ));
    }
    let schemes = [
        h.basic_auth.is_some(),
        h.oauth2.is_some(),
        h.bearer_token.is_some() || h.bearer_token_file.is_some(),
        h.authorization.is_some(),
    ];
    if schemes.iter().filter(|x| **x).count() > 1 {
        return Err(cerr(
            at,
            "at most one of basic_auth, oauth2, bearer_token & bearer_token_file, authorization must be configured",
        ));
    }
    if let Some(a) = &h.authorization {
        if !a.credentials.is_empty() && a.credentials_file.is_some() {
            return Err(cerr(
                format!("{at}.authorization"),
                "at most one of credentials & credentials_file must be configured",
            ));
        }
        if a.kind.eq_ignore_ascii_case("basic") {
            return Err(cerr(
                format!("{at}.authorization.type"),
                "authorization type cannot be set to \"basic\", use \"basic_auth\" instead",
            ));
        }
    }
    if let Some(b) = &h.basic_auth {
        if !b.password.is_empty() && b.password_file.is_some() {
            return Err(cerr(
                format!("{at}.basic_auth"),
                "at most one of basic_auth password & password_file must be configured",
            ));
        }
    }
    if let Some(o) = &h.oauth2 {
        if !o.client_secret.is_empty() && o.client_secret_file.is_some() {
            return Err(cerr(
                format!("{at}.oauth2"),
                "at most one of oauth2 client_secret & client_secret_file must be configured",
            ));
        }
        check_url(&o.token_url).map_err(|m| cerr(format!("{at}.oauth2.token_url"), m))?;
    }
    if let Some(t) = &h.tls_config {
        if t.cert_file.is_some() != t.key_file.is_some() {
            return Err(cerr(
                format!("{at}.tls_config"),
                "cert_file and key_file must be set together",
            ));
        }
    }
    Ok(())
}

pub(crate) fn check_url(u: &str) -> Result<(), String> {
    let parsed = url::Url::parse(u).map_err(|e| format!("invalid URL {u:?}: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("unsupported scheme in {u:?} (http or https)"));
    }
    Ok(())
}

fn compile_matchers(
    eq: &BTreeMap<String, String>,
    re: &BTreeMap<String, String>,
    list: &[String],
    path: &str,
) -> Result<Matchers, ConfigError> {
    let mut out = Vec::new();
    for (k, v) in eq {
        if !crate::matcher::valid_label_name(k) {
            return Err(cerr(
                format!("{path}_match"),
                format!("invalid label name {k:?}"),
            ));
        }
        out.push(
            Matcher::new(k, MatchType::Equal, v)
                .map_err(|e| cerr(format!("{path}_match"), e.to_string()))?,
        );
    }
    for (k, v) in re {
        if !crate::matcher::valid_label_name(k) {
            return Err(cerr(
                format!("{path}_match_re"),
                format!("invalid label name {k:?}"),
            ));
        }
        out.push(
            Matcher::new(k, MatchType::Regexp, v)
                .map_err(|e| cerr(format!("{path}_match_re"), e.to_string()))?,
        );
    }
    for (i, s) in list.iter().enumerate() {
        let ms =
            parse_matchers(s).map_err(|e| cerr(format!("{path}_matchers[{i}]"), e.to_string()))?;
        out.extend(ms);
    }
    let mut m = Matchers(out);
    m.sort();
    Ok(m)
}

fn build_route(
    raw: &RawRoute,
    parent: Option<&Route>,
    path: &str,
    pos: &mut Vec<usize>,
    receivers: &BTreeSet<String>,
    intervals: &BTreeMap<String, Vec<TimeInterval>>,
) -> Result<Route, ConfigError> {
    let matchers = if parent.is_some() {
        compile_matchers(&raw.match_eq, &raw.match_re, &raw.matchers, path).map_err(|e| {
            cerr(
                path,
                format!(
                    "{}: {}",
                    e.path.trim_start_matches(path).trim_start_matches('_'),
                    e.message
                ),
            )
        })?
    } else {
        Matchers::default()
    };
    let receiver = match &raw.receiver {
        Some(r) if !r.is_empty() => r.clone(),
        _ => parent.map(|p| p.receiver.clone()).unwrap_or_default(),
    };
    if !receivers.contains(&receiver) {
        return Err(cerr(
            path,
            format!("receiver {receiver:?} does not exist (define it under receivers)"),
        ));
    }
    let (group_by, group_by_all) = match &raw.group_by {
        Some(g) => {
            if g.iter().any(|x| x == "...") {
                if g.len() > 1 {
                    return Err(cerr(
                        format!("{path}.group_by"),
                        "cannot have wildcard '...' and other labels at the same time",
                    ));
                }
                (Vec::new(), true)
            } else {
                let mut seen = BTreeSet::new();
                for l in g {
                    if !crate::matcher::valid_label_name(l) {
                        return Err(cerr(
                            format!("{path}.group_by"),
                            format!("invalid label name {l:?}"),
                        ));
                    }
                    if !seen.insert(l) {
                        return Err(cerr(
                            format!("{path}.group_by"),
                            format!("duplicated label {l:?}"),
                        ));
                    }
                }
                (g.clone(), false)
            }
        }
        None => parent
            .map(|p| (p.group_by.clone(), p.group_by_all))
            .unwrap_or_default(),
    };
    let inherit = |v: Option<Duration>, f: fn(&Route) -> Duration, d: Duration| {
        v.or(parent.map(f)).unwrap_or(d)
    };
    let group_wait = inherit(raw.group_wait, |p| p.group_wait, DEFAULT_GROUP_WAIT);
    let group_interval = inherit(
        raw.group_interval,
        |p| p.group_interval,
        DEFAULT_GROUP_INTERVAL,
    );
    let repeat_interval = inherit(
        raw.repeat_interval,
        |p| p.repeat_interval,
        DEFAULT_REPEAT_INTERVAL,
    );
    if group_interval.is_zero() {
        return Err(cerr(format!("{path}.group_interval"), "cannot be zero"));
    }
    if repeat_interval.is_zero() {
        return Err(cerr(format!("{path}.repeat_interval"), "cannot be zero"));
    }
    for n in raw
        .mute_time_intervals
        .iter()
        .chain(raw.active_time_intervals.iter())
    {
        if !intervals.contains_key(n) {
            return Err(cerr(
                path,
                format!("time interval {n:?} does not exist (define it under time_intervals)"),
            ));
        }
    }
    let key = match parent {
        Some(p) => format!("{}/{}", p.key, matchers),
        None => matchers.to_string(),
    };
    let mut route = Route {
        key,
        path: path.to_string(),
        id: pos
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join("."),
        matchers,
        receiver,
        group_by,
        group_by_all,
        group_wait,
        group_interval,
        repeat_interval,
        continue_: raw.continue_,
        mute_time_intervals: raw.mute_time_intervals.clone(),
        active_time_intervals: raw.active_time_intervals.clone(),
        routes: Vec::new(),
    };
    let mut children = Vec::new();
    for (i, child) in raw.routes.iter().enumerate() {
        pos.push(i);
        children.push(build_route(
            child,
            Some(&route),
            &format!("{path}.routes[{i}]"),
            pos,
            receivers,
            intervals,
        )?);
        pos.pop();
    }
    route.routes = children;
    Ok(route)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_templates_and_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.tmpl"),
            r#"{{ define "my.title" }}T:{{ .Status }}{{ end }}"#,
        )
        .unwrap();
        let yaml = "templates: ['*.tmpl']\nroute: {receiver: r}\nreceivers:\n  - name: r\n    log_configs: [{path: out/x.jsonl}]\n    slack_configs: [{api_url: 'http://127.0.0.1:1/', title: '{{ template \"my.title\" . }}'}]\n";
        std::fs::write(dir.path().join("am.yml"), yaml).unwrap();
        let c = load_config_file(&dir.path().join("am.yml")).unwrap();
        assert_eq!(c.template_files.len(), 1);
        assert_eq!(
            c.receivers[0].log_configs[0].path,
            dir.path().join("out/x.jsonl").display().to_string()
        );
        let e = load_config_file(&dir.path().join("nope.yml")).unwrap_err();
        assert!(e.path.contains("nope.yml"));
    }

    const BASIC: &str = r#"
global:
  resolve_timeout: 1m
  smtp_smarthost: localhost:25
route:
  receiver: default
  group_by: [alertname]
  routes:
    - matchers: ['severity="page"', 'team=~"a|b"']
      receiver: pager
      group_wait: 10s
      routes:
        - match: {env: prod}
          group_by: ['...']
    - match_re: {service: "^(db|cache)$"}
      continue: true
receivers:
  - name: default
    webhook_configs:
      - url: http://127.0.0.1:5001/
  - name: pager
    sns_configs:
      - topic_arn: arn:aws:sns:us-east-1:123456789012:alerts
    log_configs:
      - path: /tmp/x.jsonl
inhibit_rules:
  - source_matchers: [severity="page"]
    target_matchers: [severity="warn"]
    equal: [instance]
"#;

    #[test]
    fn defaults_and_inheritance() {
        let c = load_config(BASIC).unwrap();
        assert_eq!(c.resolve_timeout, Duration::from_secs(60));
        // smtp_smarthost is a setting of email_configs (none here): no warning.
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(c.smtp.smtp_smarthost.as_deref(), Some("localhost:25"));
        let r = &c.route;
        assert_eq!(r.key, "{}");
        assert_eq!(r.group_wait, DEFAULT_GROUP_WAIT);
        assert_eq!(r.group_interval, DEFAULT_GROUP_INTERVAL);
        assert_eq!(r.repeat_interval, DEFAULT_REPEAT_INTERVAL);
        let p = &r.routes[0];
        assert_eq!(p.key, r#"{}/{severity="page",team=~"a|b"}"#);
        assert_eq!(p.receiver, "pager");
        assert_eq!(p.group_by, vec!["alertname".to_string()]);
        assert_eq!(p.group_wait, Duration::from_secs(10));
        let pp = &p.routes[0];
        assert_eq!(pp.key, r#"{}/{severity="page",team=~"a|b"}/{env="prod"}"#);
        assert!(pp.group_by_all);
        assert_eq!(pp.group_wait, Duration::from_secs(10));
        assert_eq!(pp.receiver, "pager");
        assert_eq!(pp.id, "0.0.0");
        assert!(r.routes[1].continue_);
        assert_eq!(r.routes[1].key, r#"{}/{service=~"^(db|cache)$"}"#);
        let w = &c.receivers[0].webhook_configs[0];
        assert!(w.send_resolved);
        assert!(c.receivers[1].sns_configs[0].send_resolved);
        assert_eq!(c.inhibit_rules[0].equal, vec!["instance".to_string()]);
    }

    #[test]
    fn errors_name_the_place() {
        let e = load_config(&BASIC.replace("receiver: pager", "receiver: nobody")).unwrap_err();
        assert_eq!(e.path, "route.routes[0]");
        assert!(e.message.contains("\"nobody\" does not exist"), "{e}");
        let e =
            load_config(&BASIC.replace("'severity=\"page\"'", "'severity=~\"(\"'")).unwrap_err();
        assert!(e.path.starts_with("route.routes[0]"), "{e}");
        assert!(e.message.contains("regular expression"), "{e}");
        let e =
            load_config(&BASIC.replace("url: http://127.0.0.1:5001/", "url: nope")).unwrap_err();
        assert_eq!(e.path, "receivers[0] \"default\".webhook_configs[0].url");
        let e =
            load_config(&BASIC.replace("group_by: ['...']", "group_by: ['...', a]")).unwrap_err();
        assert_eq!(e.path, "route.routes[0].routes[0].group_by");
        let e = load_config(&BASIC.replace("log_configs:", "jira_configs:")).unwrap_err();
        assert!(e.to_string().contains("jira_configs"), "{e}");
        let e = load_config("route: {receiver: x}\nreceivers: [{name: y}]").unwrap_err();
        assert!(e.message.contains("\"x\" does not exist"));
        let e = load_config("receivers: [{name: y}]").unwrap_err();
        assert_eq!(e.path, "route");
        let e = load_config(&BASIC.replace("log_configs:", "slack_configs:\n      - api_url: http://x/\n        title: '{{ if }}'\n    log_configs:")).unwrap_err();
        assert_eq!(
            e.path, "receivers[1] \"pager\".slack_configs[0].title",
            "{e}"
        );
        let e = load_config("route: {receiver: y, repeat_interval: 5q}\nreceivers: [{name: y}]")
            .unwrap_err();
        assert!(e.to_string().contains("duration"), "{e}");
    }

    #[test]
    fn global_keys_like_amtool() {
        let base = "route: {receiver: r}\nreceivers: [{name: r}]\n";
        // Every integration's settings are Argus's own (none is ignored with a warning).
        let c = load_config(&format!("global:\n  wechat_api_corp_id: 'x'\n{base}")).unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(c.global_b.wechat_api_corp_id.as_deref(), Some("x"));
        // Not an Alertmanager 0.25 global setting: rejected (amtool: "field slack_app_token
        // not found in type config.plain").
        for k in ["slack_app_token: x", "smtp_smarhost: 'localhost:25'"] {
            let e = load_config(&format!("global:\n  {k}\n{base}")).unwrap_err();
            assert_eq!(e.path, "global", "{e}");
            assert!(e.message.contains("not found in type config.plain"), "{e}");
        }
    }

    #[test]
    fn slack_url_files_are_read_at_load() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("global_url"), "http://127.0.0.1:9/global\n").unwrap();
        std::fs::write(dir.path().join("own_url"), "http://127.0.0.1:9/own").unwrap();
        let yaml = "global:\n  slack_api_url_file: global_url\nroute: {receiver: r}\nreceivers:\n  - name: r\n    slack_configs:\n      - channel: a\n      - channel: b\n        api_url_file: own_url\n";
        // `config check` (no I/O) accepts it without reading the files, as amtool does.
        let c = load_config(yaml).unwrap();
        assert_eq!(c.slack_api_url, None);
        let c = load_config_in(yaml, dir.path()).unwrap();
        assert_eq!(
            c.slack_api_url.as_ref().map(|s| s.expose()),
            Some("http://127.0.0.1:9/global")
        );
        let r = &c.receivers[0].slack_configs;
        assert_eq!(r[0].api_url, None, "falls back to the global URL");
        assert_eq!(
            r[1].api_url.as_ref().map(|s| s.expose()),
            Some("http://127.0.0.1:9/own")
        );
        let e = load_config_in(&yaml.replace("own_url", "missing"), dir.path()).unwrap_err();
        assert!(e.path.ends_with("slack_configs[1].api_url_file"), "{e}");
        let both = "global:\n  slack_api_url: http://x/\n  slack_api_url_file: f\nroute: {receiver: r}\nreceivers: [{name: r}]\n";
        assert!(load_config(both)
            .unwrap_err()
            .message
            .contains("at most one of slack_api_url & slack_api_url_file"));
        let both = "route: {receiver: r}\nreceivers:\n  - name: r\n    slack_configs: [{api_url: 'http://x/', api_url_file: f}]\n";
        assert!(load_config(both)
            .unwrap_err()
            .message
            .contains("at most one of api_url & api_url_file"));
        let none =
            "route: {receiver: r}\nreceivers:\n  - name: r\n    slack_configs: [{channel: a}]\n";
        assert!(load_config(none).unwrap_err().path.ends_with("api_url"));
    }

    #[test]
    fn alertmanager_025_keys_are_accepted() {
        let yaml = r#"
global:
  http_config:
    follow_redirects: false
    enable_http2: true
route: {receiver: r}
receivers:
  - name: r
    sns_configs:
      - api_url: https://sns.us-east-2.amazonaws.com
        topic_arn: arn:aws:sns:us-east-2:123456789012:alerts
        sigv4: {region: us-east-2, access_key: a, secret_key: s}
    webhook_configs:
      - url: http://127.0.0.1:9/
        http_config:
          proxy_url: http://127.0.0.1:3128
          tls_config: {insecure_skip_verify: true, server_name: x, min_version: TLS12}
"#;
        let c = load_config(yaml).unwrap();
        assert_eq!(c.http_config.follow_redirects, Some(false));
        let w = c.receivers[0].webhook_configs[0]
            .http_config
            .as_ref()
            .unwrap();
        assert_eq!(w.proxy_url.as_deref(), Some("http://127.0.0.1:3128"));
        assert!(w.needs_own_client() && c.http_config.needs_own_client());
        assert_eq!(
            c.warnings.len(),
            2,
            "sns api_url and sigv4 are not used: {:?}",
            c.warnings
        );
        let bad = yaml.replace("insecure_skip_verify: true,", "cert_file: c,");
        assert!(load_config(&bad)
            .unwrap_err()
            .message
            .contains("cert_file and key_file"));
        let unknown = yaml.replace("enable_http2: true", "enable_http3: true");
        assert!(load_config(&unknown)
            .unwrap_err()
            .to_string()
            .contains("enable_http3"));
    }

    /// A one-shot HTTP server on 127.0.0.1 answering `response`; returns its address
    /// and a handle yielding the request it read.
    fn one_shot(response: &'static str) -> (String, std::thread::JoinHandle<String>) {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap();
            s.write_all(response.as_bytes()).unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        (addr, h)
    }

    #[tokio::test]
    async fn own_client_honours_proxy_and_redirects() {
        // follow_redirects: false returns the 302 itself.
        let (addr, h) = one_shot(
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/elsewhere\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        let hc = HttpConfig {
            follow_redirects: Some(false),
            ..Default::default()
        };
        let r = hc
            .build_client()
            .unwrap()
            .get(format!("http://{addr}/x"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 302);
        h.join().unwrap();
        // proxy_url: the request goes to the proxy, in absolute form.
        let (proxy, h) = one_shot("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        let hc = HttpConfig {
            proxy_url: Some(format!("http://{proxy}")),
            ..Default::default()
        };
        let r = hc
            .build_client()
            .unwrap()
            .post("http://receiver.invalid/hook")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 204);
        let req = h.join().unwrap();
        assert!(
            req.starts_with("POST http://receiver.invalid/hook HTTP/1.1"),
            "{req}"
        );
    }
}
