//! The `remote_write:` section of argus.yml: Prometheus 2.42's keys and defaults, unknown
//! keys rejected by name, validated as Prometheus validates them.

use argus_model::time::serde_duration;
use argus_relabel::RelabelConfig;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteConfig {
    pub url: String,
    /// Names the queue (and its backlog in the store); defaults to a hash of the config
    /// as in Prometheus (here: of the URL).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "d30s", with = "serde_duration")]
    pub remote_timeout: Duration,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub write_relabel_configs: Vec<RelabelConfig>,
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default)]
    pub authorization: Option<Authorization>,
    #[serde(default)]
    pub sigv4: Option<SigV4Config>,
    #[serde(default)]
    pub queue_config: QueueConfig,
    #[serde(default)]
    pub tls_config: Option<TlsConfig>,
}

/// Prometheus's `tls_config` subset: a CA to trust (besides the public roots), a
/// client certificate, or no verification at all.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    #[serde(default)]
    pub ca_file: Option<String>,
    #[serde(default)]
    pub cert_file: Option<String>,
    #[serde(default)]
    pub key_file: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
    #[serde(default)]
    pub password_file: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// Defaults to `Bearer`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing)]
    pub credentials: Option<String>,
    #[serde(default)]
    pub credentials_file: Option<String>,
}

/// Prometheus's `sigv4` block (common/sigv4): region defaults to the SDK's (AWS_REGION),
/// credentials to the default chain, `profile` picks a shared-config profile,
/// `role_arn` is assumed with STS on top of either.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigV4Config {
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub access_key: Option<String>,
    #[serde(default, skip_serializing)]
    pub secret_key: Option<String>,
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub role_arn: Option<String>,
}

/// The subset of Prometheus's `queue_config` that means something when a tick's samples
/// are sent at once; the sharding keys are recognised and refused with a reason.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    #[serde(default = "d_max_per_send")]
    pub max_samples_per_send: usize,
    #[serde(default = "d30ms", with = "serde_duration")]
    pub min_backoff: Duration,
    #[serde(default = "d5s", with = "serde_duration")]
    pub max_backoff: Duration,
    #[serde(default)]
    pub retry_on_http_429: bool,
    /// Argus: most samples kept in the store for later ticks while the receiver is
    /// unreachable; beyond it the oldest batches are dropped and counted.
    #[serde(default = "d_backlog")]
    pub max_backlog_samples: usize,
    #[serde(default, skip_serializing)]
    capacity: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    max_shards: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    min_shards: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    batch_send_deadline: Option<IgnoredAny>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            max_samples_per_send: d_max_per_send(),
            min_backoff: d30ms(),
            max_backoff: d5s(),
            retry_on_http_429: false,
            max_backlog_samples: d_backlog(),
            capacity: None,
            max_shards: None,
            min_shards: None,
            batch_send_deadline: None,
        }
    }
}

fn d30s() -> Duration {
    Duration::from_secs(30)
}
fn d30ms() -> Duration {
    Duration::from_millis(30)
}
fn d5s() -> Duration {
    Duration::from_secs(5)
}
fn d_max_per_send() -> usize {
    500
}
fn d_backlog() -> usize {
    100_000
}

/// A configuration problem: the field (`remote_write[0].basic_auth`) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {message}")]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

/// Headers Prometheus refuses in `headers` (set by the sender or by SigV4).
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-encoding",
    "content-length",
    "content-type",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "accept-encoding",
    "x-prometheus-remote-write-version",
    "x-prometheus-remote-read-version",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

impl RemoteWriteConfig {
    /// The queue's name: `name`, or the first 6 hex digits of a hash of the URL (Prometheus
    /// uses a hash of the whole config; a stable name keeps the backlog across edits).
    pub fn queue_name(&self) -> String {
        match &self.name {
            Some(n) if !n.is_empty() => n.clone(),
            _ => {
                let h = argus_model::Labels::from_pairs([("url", self.url.as_str())]).fingerprint();
                format!("{:06x}", h & 0xff_ffff)
            }
        }
    }

    /// Prometheus's checks, worded as Prometheus words them; `at` is the field path.
    pub fn validate(&self, at: &str) -> Result<(), ConfigError> {
        let err = |field: &str, message: String| {
            Err(ConfigError {
                field: if field.is_empty() {
                    at.to_string()
                } else {
                    format!("{at}.{field}")
                },
                message,
            })
        };
        match url::Url::parse(&self.url) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {
                if u.host_str().is_none_or(str::is_empty) {
                    return err("url", format!("host is missing in URL {:?}", self.url));
                }
            }
            Ok(u) => {
                return err(
                    "url",
                    format!("scheme {:?} not supported (http or https)", u.scheme()),
                )
            }
            Err(e) => return err("url", format!("{:?}: {e}", self.url)),
        }
        if self.remote_timeout.is_zero() {
            return err("remote_timeout", "must be greater than 0".into());
        }
        for h in self.headers.keys() {
            let l = h.to_ascii_lowercase();
            if l == "authorization" {
                return err(
                    "headers",
                    "authorization header must be changed via the basic_auth, authorization, oauth2, or sigv4 parameter".into(),
                );
            }
            if RESERVED_HEADERS.contains(&l.as_str()) {
                return err(
                    "headers",
                    format!("{h} is a reserved header. It must not be changed"),
                );
            }
            if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                return err("headers", format!("{h:?} is not a valid header name"));
            }
        }
        for (h, v) in &self.headers {
            if http::HeaderValue::from_str(v).is_err() {
                return err(&format!("headers.{h}"), "not a valid header value".into());
            }
        }
        if let Some(b) = &self.basic_auth {
            if b.password.is_some() && b.password_file.is_some() {
                return err(
                    "basic_auth",
                    "at most one of basic_auth password & password_file must be configured".into(),
                );
            }
        }
        if let Some(a) = &self.authorization {
            if self.basic_auth.is_some() {
                return err(
                    "authorization",
                    "at most one of basic_auth, oauth2 & authorization must be configured".into(),
                );
            }
            if a.credentials.is_some() && a.credentials_file.is_some() {
                return err(
                    "authorization",
                    "at most one of authorization credentials & credentials_file must be configured".into(),
                );
            }
            if a.kind
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("basic"))
            {
                return err(
                    "authorization.type",
                    "authorization type cannot be set to \"basic\", use \"basic_auth\" instead"
                        .into(),
                );
            }
        }
        if let Some(s) = &self.sigv4 {
            if self.basic_auth.is_some() || self.authorization.is_some() {
                return err(
                    "sigv4",
                    "at most one of basic_auth, authorization, oauth2, & sigv4 must be configured"
                        .into(),
                );
            }
            if s.access_key.is_some() != s.secret_key.is_some() {
                return err(
                    "sigv4",
                    "must provide a AWS SigV4 Access key and Secret Key if credentials are specified in the SigV4 config".into(),
                );
            }
        }
        if let Some(t) = &self.tls_config {
            match (&t.cert_file, &t.key_file) {
                (Some(c), None) => {
                    return err(
                        "tls_config",
                        format!("client cert file {c:?} specified without client key file"),
                    )
                }
                (None, Some(k)) => {
                    return err(
                        "tls_config",
                        format!("client key file {k:?} specified without client cert file"),
                    )
                }
                _ => {}
            }
        }
        argus_relabel::compile_all("write_relabel_configs", &self.write_relabel_configs).map_err(
            |e| ConfigError {
                field: at.to_string(),
                message: e.0,
            },
        )?;
        let q = &self.queue_config;
        if q.max_samples_per_send == 0 {
            return err(
                "queue_config.max_samples_per_send",
                "must be at least 1".into(),
            );
        }
        if q.min_backoff > q.max_backoff {
            return err(
                "queue_config.min_backoff",
                "must not be greater than max_backoff".into(),
            );
        }
        for (key, set) in [
            ("capacity", q.capacity.is_some()),
            ("max_shards", q.max_shards.is_some()),
            ("min_shards", q.min_shards.is_some()),
            ("batch_send_deadline", q.batch_send_deadline.is_some()),
        ] {
            if set {
                return err(
                    &format!("queue_config.{key}"),
                    "not supported by Argus: each evaluator tick sends its samples at once, in batches of max_samples_per_send, and keeps what it could not send in a backlog bounded by max_backlog_samples".into(),
                );
            }
        }
        Ok(())
    }
}

/// Validates a list: every entry, and queue names unique (Prometheus: "found multiple
/// remote write configs with job name").
pub fn validate_all(cfgs: &[RemoteWriteConfig]) -> Result<(), ConfigError> {
    let mut names = std::collections::BTreeSet::new();
    for (i, c) in cfgs.iter().enumerate() {
        let at = format!("remote_write[{i}]");
        c.validate(&at)?;
        if !names.insert(c.queue_name()) {
            return Err(ConfigError {
                field: format!("{at}.name"),
                message: format!(
                    "found multiple remote write configs with job name {:?}",
                    c.queue_name()
                ),
            });
        }
    }
    Ok(())
}
