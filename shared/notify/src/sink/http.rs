//! What the HTTP integrations share: one request with Alertmanager's retry decision
//! (`notify.Retrier`: 2xx ok, 5xx retried, plus the integration's own retry codes), and
//! the `http_config` credentials: `authorization`, `bearer_token`, `basic_auth` and
//! OAuth 2.0 client credentials (a token fetched from `token_url` and cached until it
//! expires, as Go's `clientcredentials` does).

use super::SinkError;
use crate::config::HttpConfig;
use crate::secret::Secret;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Prometheus' `oauth2` block (client credentials grant).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Config {
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Secret,
    /// Read into `client_secret` when the configuration is loaded from a file.
    pub client_secret_file: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub token_url: String,
    #[serde(default)]
    pub endpoint_params: BTreeMap<String, String>,
    /// Accepted; the token request goes through the receiver's client.
    pub tls_config: Option<crate::config::TlsConfig>,
    pub proxy_url: Option<String>,
}

/// The `Authorization` header of a receiver's requests.
pub struct Authorizer {
    fixed: Option<Secret>,
    oauth2: Option<(OAuth2Config, Mutex<Option<(Secret, Instant)>>)>,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authorizer(<secret>)")
    }
}

impl Authorizer {
    pub fn new(h: &HttpConfig) -> Authorizer {
        Authorizer {
            fixed: h.auth_header().map(Secret::new),
            oauth2: h.oauth2.clone().map(|o| (o, Mutex::new(None))),
        }
    }

    /// The header value (fetching or reusing an OAuth 2.0 token), if any.
    pub async fn header(&self, http: &reqwest::Client) -> Result<Option<Secret>, SinkError> {
        if let Some(f) = &self.fixed {
            return Ok(Some(f.clone()));
        }
        let Some((o, cache)) = &self.oauth2 else {
            return Ok(None);
        };
        let cached = cache.lock().unwrap().clone();
        if let Some((tok, until)) = cached {
            if Instant::now() < until {
                return Ok(Some(tok));
            }
        }
        let mut form: Vec<(String, String)> =
            vec![("grant_type".into(), "client_credentials".into())];
        if !o.scopes.is_empty() {
            form.push(("scope".into(), o.scopes.join(" ")));
        }
        for (k, v) in &o.endpoint_params {
            form.push((k.clone(), v.clone()));
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter())
            .finish();
        let resp = http
            .post(&o.token_url)
            .basic_auth(&o.client_id, Some(o.client_secret.expose()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| SinkError::retryable(format!("oauth2 token request: {e}")))?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            // The token endpoint refusing the client is not cured by retrying soon,
            // except when it is overloaded.
            let m = format!("oauth2 token request: status {status}");
            return Err(if status == 429 || status >= 500 {
                SinkError::retryable(m)
            } else {
                SinkError::permanent(m)
            });
        }
        #[derive(Deserialize)]
        struct Token {
            access_token: String,
            #[serde(default)]
            token_type: Option<String>,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let t: Token = resp
            .json()
            .await
            .map_err(|e| SinkError::retryable(format!("oauth2 token response: {e}")))?;
        let kind = match t.token_type.as_deref() {
            None | Some("") => "Bearer".to_string(),
            Some(k) if k.eq_ignore_ascii_case("bearer") => "Bearer".to_string(),
            Some(k) => k.to_string(),
        };
        let value = Secret::new(format!("{kind} {}", t.access_token));
        // Go's oauth2 treats a token as expired 10 s early; no expiry: kept.
        let until = Instant::now()
            + t.expires_in
                .map(|s| Duration::from_secs(s.saturating_sub(10)))
                .unwrap_or(Duration::from_secs(365 * 24 * 3600));
        *cache.lock().unwrap() = Some((value.clone(), until));
        Ok(Some(value))
    }
}

/// One HTTP request with Alertmanager's retry decision: 2xx ok; 5xx and `retry_codes`
/// retryable; any other status permanent; transport errors and timeouts retryable.
#[allow(clippy::too_many_arguments)]
pub async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    headers: &[(&str, &str)],
    auth: Option<&Secret>,
    body: Vec<u8>,
    timeout: Duration,
    retry_codes: &[u16],
    what: &str,
) -> Result<String, SinkError> {
    let mut req = http.request(method, url).body(body).timeout(timeout);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(a) = auth {
        req = req.header("authorization", a.expose());
    }
    match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap_or_default();
            classify(status, &text, retry_codes, what).map(|_| text)
        }
        Err(e) if e.is_timeout() => Err(SinkError::retryable(format!(
            "{what}: timed out after {timeout:?}"
        ))),
        // The URL may hold a secret (Slack's): say what failed without it.
        Err(e) => Err(SinkError::retryable(format!(
            "{what}: {}",
            super::webhook::error_chain(&e.without_url())
        ))),
    }
}

/// `notify.Retrier.Check`.
pub fn classify(status: u16, body: &str, retry_codes: &[u16], what: &str) -> Result<(), SinkError> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    let body = body.trim();
    let short: String = body.chars().take(200).collect();
    let m = if short.is_empty() {
        format!("{what}: unexpected status code {status}")
    } else {
        format!("{what}: unexpected status code {status}: {short}")
    };
    if status >= 500 || retry_codes.contains(&status) {
        Err(SinkError::retryable(m))
    } else {
        Err(SinkError::permanent(m))
    }
}

/// `notify.TruncateInRunes`: at most `n` characters, the last one `…` when cut.
pub fn truncate_runes(s: &str, n: usize) -> (String, bool) {
    if s.chars().count() <= n {
        return (s.to_string(), false);
    }
    if n <= 3 {
        return (s.chars().take(n).collect(), true);
    }
    let mut t: String = s.chars().take(n - 1).collect();
    t.push('…');
    (t, true)
}

/// `notify.Key.Hash()`: hex SHA-256 of the group key (PagerDuty's dedup key, Opsgenie's
/// alias).
pub fn key_hash(group_key: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(group_key.as_bytes()))
}

/// The client for a receiver's `http_config` (own client when it needs one).
pub fn client_for(h: &HttpConfig, shared: &reqwest::Client, receiver: &str) -> reqwest::Client {
    if !h.needs_own_client() {
        return shared.clone();
    }
    h.build_client().unwrap_or_else(|e| {
        tracing::error!(receiver = %receiver, error = %e, "http_config: client not built, using the default client");
        shared.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retrier_and_truncation() {
        assert!(classify(202, "", &[], "x").is_ok());
        assert!(classify(503, "", &[], "x").unwrap_err().retryable);
        assert!(!classify(429, "", &[], "x").unwrap_err().retryable);
        assert!(classify(429, "", &[429], "x").unwrap_err().retryable);
        assert!(!classify(400, "bad", &[429], "x").unwrap_err().retryable);
        assert_eq!(truncate_runes("abcdef", 4), ("abc…".to_string(), true));
        assert_eq!(truncate_runes("abc", 4), ("abc".to_string(), false));
        assert_eq!(truncate_runes("ééééé", 3), ("ééé".to_string(), true));
        assert_eq!(
            key_hash(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
