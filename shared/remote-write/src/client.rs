//! One remote-write endpoint: the HTTP request Prometheus's `storage/remote/client.go`
//! sends (headers, auth, SigV4), and the classification of its answer into "retry"
//! (5xx, 429 when `retry_on_http_429`, connection errors, timeouts) or "drop" (other
//! 4xx), as Prometheus does.

use crate::config::RemoteWriteConfig;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use std::path::Path;
use std::time::{Duration, SystemTime};

pub const USER_AGENT: &str = concat!("Argus/", env!("CARGO_PKG_VERSION"));
/// Signing name of Amazon Managed Service for Prometheus.
pub const SIGV4_SERVICE: &str = "aps";

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{field}: {message}")]
    Field { field: String, message: String },
}

/// Why a send failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// Worth retrying after a backoff (Retry-After when the server gave one).
    #[error("{message}")]
    Recoverable {
        message: String,
        retry_after: Option<Duration>,
    },
    /// The receiver refused the batch (4xx): retrying would not help.
    #[error("{message}")]
    Rejected { status: u16, message: String },
}

impl SendError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, SendError::Recoverable { .. })
    }
}

enum Auth {
    None,
    Basic { username: String, password: String },
    Header(String),
    SigV4(Box<SigV4>),
}

struct SigV4 {
    region: String,
    provider: SharedCredentialsProvider,
    cached: tokio::sync::Mutex<Option<Credentials>>,
}

pub struct Endpoint {
    url: String,
    timeout: Duration,
    headers: Vec<(String, String)>,
    retry_on_429: bool,
    auth: Auth,
    http: reqwest::Client,
}

fn read_secret_file(base: &Path, field: &str, file: &str) -> Result<String, BuildError> {
    let p = base.join(file);
    std::fs::read_to_string(&p)
        .map(|s| s.trim().to_string())
        .map_err(|e| BuildError::Field {
            field: field.into(),
            message: format!("{}: {e}", p.display()),
        })
}

impl Endpoint {
    /// Built once at cold start. Files (`password_file`, `credentials_file`) are read now,
    /// relative to `base_dir`; SigV4 credentials come from `sdk`'s chain (or the default
    /// chain when `sdk` is `None`), from `profile`, or from the static keys, and
    /// `role_arn` is assumed on top.
    pub async fn build(
        cfg: &RemoteWriteConfig,
        base_dir: &Path,
        sdk: Option<&aws_config::SdkConfig>,
        http: reqwest::Client,
    ) -> Result<Endpoint, BuildError> {
        let auth = if let Some(b) = &cfg.basic_auth {
            let password = match (&b.password, &b.password_file) {
                (Some(p), _) => p.clone(),
                (None, Some(f)) => read_secret_file(base_dir, "basic_auth.password_file", f)?,
                (None, None) => String::new(),
            };
            Auth::Basic {
                username: b.username.clone(),
                password,
            }
        } else if let Some(a) = &cfg.authorization {
            let creds = match (&a.credentials, &a.credentials_file) {
                (Some(c), _) => c.clone(),
                (None, Some(f)) => read_secret_file(base_dir, "authorization.credentials_file", f)?,
                (None, None) => String::new(),
            };
            let kind = a.kind.clone().unwrap_or_else(|| "Bearer".into());
            Auth::Header(format!("{kind} {creds}"))
        } else if let Some(s) = &cfg.sigv4 {
            Auth::SigV4(Box::new(build_sigv4(s, sdk).await?))
        } else {
            Auth::None
        };
        let http = match &cfg.tls_config {
            None => http,
            Some(t) => tls_client(t, base_dir)?,
        };
        Ok(Endpoint {
            url: cfg.url.clone(),
            timeout: cfg.remote_timeout,
            headers: cfg
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            retry_on_429: cfg.queue_config.retry_on_http_429,
            auth,
            http,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// One POST of an encoded body, bounded by `remote_timeout` and `budget`.
    pub async fn send(&self, body: &[u8], budget: Duration) -> Result<(), SendError> {
        let mut headers: Vec<(String, String)> = vec![
            ("content-encoding".into(), "snappy".into()),
            ("content-type".into(), "application/x-protobuf".into()),
            ("user-agent".into(), USER_AGENT.into()),
            ("x-prometheus-remote-write-version".into(), "0.1.0".into()),
        ];
        headers.extend(self.headers.iter().cloned());
        match &self.auth {
            Auth::None => {}
            Auth::Basic { username, password } => {
                use base64::Engine as _;
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                headers.push(("authorization".into(), format!("Basic {token}")));
            }
            Auth::Header(h) => headers.push(("authorization".into(), h.clone())),
            Auth::SigV4(s) => {
                let creds = s.credentials().await?;
                let signed = sign_v4(
                    &self.url,
                    &headers,
                    body,
                    &creds,
                    &s.region,
                    SystemTime::now(),
                )
                .map_err(|e| SendError::Recoverable {
                    message: format!("sigv4: {e}"),
                    retry_after: None,
                })?;
                headers.extend(signed);
            }
        }
        let mut req = self
            .http
            .post(&self.url)
            .timeout(self.timeout.min(budget))
            .body(body.to_vec());
        for (k, v) in &headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = req.send().await.map_err(|e| SendError::Recoverable {
            message: format!("{}: {}", self.url, error_chain(&e)),
            retry_after: None,
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = resp.text().await.unwrap_or_default();
        let line: String = text
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(256)
            .collect();
        let message = format!("server returned HTTP status {status}: {line}");
        if status.is_server_error() || (self.retry_on_429 && status.as_u16() == 429) {
            Err(SendError::Recoverable {
                message,
                retry_after,
            })
        } else {
            Err(SendError::Rejected {
                status: status.as_u16(),
                message,
            })
        }
    }
}

/// A client of its own for a queue with `tls_config` (files read now).
fn tls_client(t: &crate::config::TlsConfig, base: &Path) -> Result<reqwest::Client, BuildError> {
    let field = |f: &str, m: String| BuildError::Field {
        field: format!("tls_config.{f}"),
        message: m,
    };
    let read = |f: &str, name: &str| {
        let p = base.join(name);
        std::fs::read(&p).map_err(|e| field(f, format!("{}: {e}", p.display())))
    };
    let mut b = reqwest::Client::builder();
    if let Some(ca) = &t.ca_file {
        let pem = read("ca_file", ca)?;
        for c in reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| field("ca_file", format!("{ca}: {e}")))?
        {
            b = b.add_root_certificate(c);
        }
    }
    if let (Some(c), Some(k)) = (&t.cert_file, &t.key_file) {
        let mut pem = read("cert_file", c)?;
        pem.push(b'\n');
        pem.extend(read("key_file", k)?);
        let id = reqwest::Identity::from_pem(&pem)
            .map_err(|e| field("cert_file", format!("{c} / {k}: {e}")))?;
        b = b.identity(id);
    }
    if t.insecure_skip_verify {
        b = b.danger_accept_invalid_certs(true);
    }
    b.build().map_err(|e| field("", e.to_string()))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

async fn build_sigv4(
    s: &crate::config::SigV4Config,
    sdk: Option<&aws_config::SdkConfig>,
) -> Result<SigV4, BuildError> {
    let loaded;
    let sdk = match sdk {
        Some(c) => c,
        None => {
            let mut l = aws_config::defaults(aws_config::BehaviorVersion::latest());
            if let Some(p) = &s.profile {
                l = l.profile_name(p);
            }
            loaded = l.load().await;
            &loaded
        }
    };
    let region = s
        .region
        .clone()
        .or_else(|| sdk.region().map(|r| r.to_string()))
        .ok_or_else(|| BuildError::Field {
            field: "sigv4.region".into(),
            message: "not set, and the AWS SDK found no region (AWS_REGION)".into(),
        })?;
    let base: SharedCredentialsProvider = match (&s.access_key, &s.secret_key, &s.profile) {
        (Some(ak), Some(sk), _) => {
            SharedCredentialsProvider::new(Credentials::new(ak, sk, None, None, "argus-config"))
        }
        (_, _, Some(p)) => SharedCredentialsProvider::new(
            aws_config::profile::ProfileFileCredentialsProvider::builder()
                .profile_name(p)
                .build(),
        ),
        _ => sdk
            .credentials_provider()
            .ok_or_else(|| BuildError::Field {
                field: "sigv4".into(),
                message: "the AWS SDK has no credentials provider".into(),
            })?,
    };
    let provider = match &s.role_arn {
        Some(role) => {
            let conf = sdk
                .to_builder()
                .region(aws_config::Region::new(region.clone()))
                .build();
            SharedCredentialsProvider::new(
                aws_config::sts::AssumeRoleProvider::builder(role)
                    .session_name("argus-remote-write")
                    .configure(&conf)
                    .build_from_provider(base)
                    .await,
            )
        }
        None => base,
    };
    Ok(SigV4 {
        region,
        provider,
        cached: tokio::sync::Mutex::new(None),
    })
}

impl SigV4 {
    /// Credentials, cached until five minutes before they expire.
    async fn credentials(&self) -> Result<Credentials, SendError> {
        let mut c = self.cached.lock().await;
        if let Some(cur) = c.as_ref() {
            let fresh = cur
                .expiry()
                .is_none_or(|e| e > SystemTime::now() + Duration::from_secs(300));
            if fresh {
                return Ok(cur.clone());
            }
        }
        let got =
            self.provider
                .provide_credentials()
                .await
                .map_err(|e| SendError::Recoverable {
                    message: format!("sigv4 credentials: {}", error_chain(&e)),
                    retry_after: None,
                })?;
        *c = Some(got.clone());
        Ok(got)
    }
}

/// SigV4 headers (`authorization`, `x-amz-date`, and `x-amz-security-token` for session
/// credentials) for a POST of `body` to `url` with `headers`, signed for `aps`.
pub fn sign_v4(
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    creds: &Credentials,
    region: &str,
    time: SystemTime,
) -> Result<Vec<(String, String)>, String> {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    let identity = creds.clone().into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SIGV4_SERVICE)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let signable = SignableRequest::new(
        "POST",
        url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _sig) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}
