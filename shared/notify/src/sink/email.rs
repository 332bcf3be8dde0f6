//! E-mail (notify/email of Alertmanager 0.25) over SMTP with lettre: implicit TLS when
//! the smarthost's port is 465, else plain TCP upgraded with STARTTLS when `require_tls`
//! (default true; the server must offer it); authentication when `auth_username` is set
//! and the server advertises AUTH, with the first mechanism of the server's list that
//! the configuration can serve (CRAM-MD5 with `auth_secret`, PLAIN or LOGIN with the
//! password), as Alertmanager chooses. The message: the configured `headers` (templated,
//! Q-encoded when needed) with `Subject` (`email.default.subject`), `To` and `From`
//! defaults, `Message-Id`, `Date`, and a multipart/alternative body of the text part (if
//! `text` is set) and the HTML part (`email.default.html` by default), quoted-printable.
//! Every failure after the configuration is retried, as Alertmanager does, except
//! template and address errors.

use super::{Notification, Sink, SinkError};
use crate::config::{cerr, ConfigError, TlsConfig};
use crate::payload::{Message, PayloadAlert};
use crate::render::Renderer;
use crate::secret::Secret;
use argus_model::Labels;
use lettre::address::Envelope;
use lettre::message::{header::ContentType, Mailboxes, MultiPart, SinglePart};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, Identity, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The `global:` SMTP settings (`smtp_*`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SmtpGlobal {
    pub smtp_from: Option<String>,
    /// Default `localhost`.
    pub smtp_hello: Option<String>,
    pub smtp_smarthost: Option<String>,
    pub smtp_auth_username: Option<String>,
    pub smtp_auth_password: Option<Secret>,
    pub smtp_auth_password_file: Option<String>,
    pub smtp_auth_secret: Option<Secret>,
    pub smtp_auth_identity: Option<String>,
    /// Default true.
    pub smtp_require_tls: Option<bool>,
}

impl SmtpGlobal {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self
            .smtp_auth_password
            .as_ref()
            .is_some_and(|p| !p.is_empty())
            && self.smtp_auth_password_file.is_some()
        {
            return Err(cerr(
                "global",
                "at most one of smtp_auth_password & smtp_auth_password_file must be configured",
            ));
        }
        if let Some(h) = self.smtp_smarthost.as_deref().filter(|h| !h.is_empty()) {
            split_host_port(h).map_err(|m| cerr("global.smtp_smarthost", m))?;
        }
        Ok(())
    }
}

fn d_html() -> String {
    r#"{{ template "email.default.html" . }}"#.into()
}
pub const DEFAULT_EMAIL_SUBJECT: &str = r#"{{ template "email.default.subject" . }}"#;

/// `email_configs` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    #[serde(default)]
    pub send_resolved: bool,
    #[serde(default)]
    pub to: String,
    pub from: Option<String>,
    pub hello: Option<String>,
    pub smarthost: Option<String>,
    pub auth_username: Option<String>,
    pub auth_password: Option<Secret>,
    pub auth_password_file: Option<String>,
    pub auth_secret: Option<Secret>,
    pub auth_identity: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "d_html")]
    pub html: String,
    #[serde(default)]
    pub text: String,
    pub require_tls: Option<bool>,
    pub tls_config: Option<TlsConfig>,
}

/// `textproto.CanonicalMIMEHeaderKey`: `content-type` → `Content-Type`.
pub fn canonical_header(k: &str) -> String {
    let mut out = String::with_capacity(k.len());
    let mut up = true;
    for c in k.chars() {
        if up {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        up = c == '-';
    }
    out
}

/// Go's `net.SplitHostPort` as Alertmanager's `HostPort` uses it.
pub fn split_host_port(s: &str) -> Result<(String, String), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest
            .split_once(']')
            .ok_or_else(|| format!("address {s}: missing ']' in address"))?;
        let p = p
            .strip_prefix(':')
            .ok_or_else(|| format!("address {s}: missing port in address"))?;
        (h.to_string(), p.to_string())
    } else {
        let (h, p) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("address {s}: missing port in address"))?;
        if h.contains(':') {
            return Err(format!("address {s}: too many colons in address"));
        }
        (h.to_string(), p.to_string())
    };
    if port.is_empty() {
        return Err(format!("address {s:?}: port cannot be empty"));
    }
    Ok((host, port))
}

impl EmailConfig {
    /// Alertmanager's checks (`EmailConfig.UnmarshalYAML`, the global SMTP defaults and
    /// `HostPort`), naming the field.
    pub fn validate(&self, at: &str, g: &SmtpGlobal) -> Result<(), ConfigError> {
        if self.to.is_empty() {
            return Err(cerr(
                format!("{at}.to"),
                "missing to address in email config",
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for h in self.headers.keys() {
            let c = canonical_header(h);
            if !seen.insert(c.clone()) {
                return Err(cerr(
                    format!("{at}.headers"),
                    format!("duplicate header {c:?} in email config"),
                ));
            }
        }
        match self.smarthost.as_deref().or(g.smtp_smarthost.as_deref()) {
            None | Some("") => {
                return Err(cerr(
                    format!("{at}.smarthost"),
                    "no global SMTP smarthost set (smarthost or global.smtp_smarthost)",
                ))
            }
            Some(h) => {
                let field = if self.smarthost.is_some() {
                    format!("{at}.smarthost")
                } else {
                    "global.smtp_smarthost".to_string()
                };
                split_host_port(h).map_err(|m| cerr(field, m))?;
            }
        }
        if self
            .from
            .as_deref()
            .or(g.smtp_from.as_deref())
            .unwrap_or("")
            .is_empty()
        {
            return Err(cerr(
                format!("{at}.from"),
                "no global SMTP from set (from or global.smtp_from)",
            ));
        }
        if self.auth_password.is_some() && self.auth_password_file.is_some() {
            return Err(cerr(
                at,
                "at most one of auth_password & auth_password_file must be configured",
            ));
        }
        if let Some(t) = &self.tls_config {
            if t.cert_file.is_some() != t.key_file.is_some() {
                return Err(cerr(
                    format!("{at}.tls_config"),
                    "cert_file and key_file must be set together",
                ));
            }
        }
        Ok(())
    }

    pub fn templates(&self) -> Vec<(String, &str)> {
        let mut v: Vec<(String, &str)> = vec![
            ("to".into(), self.to.as_str()),
            ("html".into(), self.html.as_str()),
            ("text".into(), self.text.as_str()),
        ];
        if let Some(f) = &self.from {
            v.push(("from".into(), f));
        }
        for (k, t) in &self.headers {
            v.push((format!("headers.{k}"), t));
        }
        v
    }

    pub fn read_files(&mut self, dir: &std::path::Path, at: &str) -> Result<(), ConfigError> {
        if let Some(f) = self.auth_password_file.clone() {
            // Alertmanager does not trim the password file; neither do we.
            let p = dir.join(&f);
            let t = std::fs::read_to_string(&p).map_err(|e| {
                cerr(
                    format!("{at}.auth_password_file"),
                    format!("{}: {e}", p.display()),
                )
            })?;
            self.auth_password = Some(Secret::new(t));
            self.auth_password_file = None;
        }
        Ok(())
    }
}

/// Reads `global.smtp_auth_password_file`.
pub fn read_global_files(g: &mut SmtpGlobal, dir: &std::path::Path) -> Result<(), ConfigError> {
    if let Some(f) = g.smtp_auth_password_file.clone() {
        let p = dir.join(&f);
        let t = std::fs::read_to_string(&p).map_err(|e| {
            cerr(
                "global.smtp_auth_password_file",
                format!("{}: {e}", p.display()),
            )
        })?;
        g.smtp_auth_password = Some(Secret::new(t));
        g.smtp_auth_password_file = None;
    }
    Ok(())
}

/// An e-mail integration with the global defaults applied.
pub struct EmailSink {
    conf: EmailConfig,
    host: String,
    port: u16,
    from: String,
    hello: String,
    username: String,
    password: Option<Secret>,
    secret: Option<Secret>,
    identity: String,
    require_tls: bool,
    /// (canonical name, template), with Subject/To/From defaults.
    headers: Vec<(String, String)>,
    renderer: Arc<Renderer>,
    hostname: String,
}

impl std::fmt::Debug for EmailSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSink")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The parts of a message both sides must agree on (for tests and `argus` tooling).
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub from: String,
    pub to: Vec<String>,
    /// (name, value before Q-encoding)
    pub headers: Vec<(String, String)>,
    pub text: Option<String>,
    pub html: Option<String>,
}

fn retry(what: &str, e: impl std::fmt::Display) -> SinkError {
    SinkError::retryable(format!("email: {what}: {e}"))
}

/// Go's `html/template` escaping of text and attribute values (`htmlReplacementTable`).
pub fn go_html_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\0' => o.push('\u{FFFD}'),
            '"' => o.push_str("&#34;"),
            '&' => o.push_str("&amp;"),
            '\'' => o.push_str("&#39;"),
            '+' => o.push_str("&#43;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            c => o.push(c),
        }
    }
    o
}

/// The notification data with every string value escaped for HTML (what `html/template`
/// does to values it prints; see the README for where this differs).
fn escaped(m: &Message) -> Message {
    let l =
        |x: &Labels| Labels::from_pairs(x.iter().map(|(k, v)| (k.to_string(), go_html_escape(v))));
    Message {
        receiver: go_html_escape(&m.receiver),
        status: m.status.clone(),
        alerts: m
            .alerts
            .iter()
            .map(|a| PayloadAlert {
                status: a.status.clone(),
                labels: l(&a.labels),
                annotations: l(&a.annotations),
                starts_at: a.starts_at.clone(),
                ends_at: a.ends_at.clone(),
                generator_url: go_html_escape(&a.generator_url),
                fingerprint: a.fingerprint.clone(),
            })
            .collect(),
        group_labels: l(&m.group_labels),
        common_labels: l(&m.common_labels),
        common_annotations: l(&m.common_annotations),
        external_url: go_html_escape(&m.external_url),
        version: m.version.clone(),
        group_key: m.group_key.clone(),
        truncated_alerts: m.truncated_alerts,
    }
}

/// `html/template` drops the template's HTML comments (values cannot contain any: they
/// are escaped).
pub fn strip_html_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("<!--") {
        out.push_str(&rest[..i]);
        match rest[i + 4..].find("-->") {
            Some(j) => rest = &rest[i + 4 + j + 3..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// `mime.QEncoding.Encode("utf-8", v)`: unchanged unless it has control or non-ASCII
/// characters; then RFC 2047 encoded words (B encoding, at most 75 characters each).
pub fn encode_header(v: &str) -> String {
    if !v.bytes().any(|b| !(b' '..=b'~').contains(&b) && b != b'\t') {
        return v.to_string();
    }
    use base64::Engine;
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in v.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| {
            format!(
                "=?utf-8?b?{}?=",
                base64::engine::general_purpose::STANDARD.encode(w.as_bytes())
            )
        })
        .collect::<Vec<_>>()
        .join("\r\n ")
}

fn is_localhost(h: &str) -> bool {
    matches!(h, "localhost" | "127.0.0.1" | "::1")
}

impl EmailSink {
    pub fn new(conf: EmailConfig, g: &SmtpGlobal, renderer: Arc<Renderer>) -> Self {
        let smarthost = conf
            .smarthost
            .clone()
            .or(g.smtp_smarthost.clone())
            .unwrap_or_default();
        let (host, port) = split_host_port(&smarthost).unwrap_or_default();
        let from = conf
            .from
            .clone()
            .or(g.smtp_from.clone())
            .unwrap_or_default();
        let mut headers: Vec<(String, String)> = conf
            .headers
            .iter()
            .map(|(k, v)| (canonical_header(k), v.clone()))
            .collect();
        for (k, v) in [
            ("Subject", DEFAULT_EMAIL_SUBJECT.to_string()),
            ("To", conf.to.clone()),
            ("From", from.clone()),
        ] {
            if !headers.iter().any(|(h, _)| h == k) {
                headers.push((k.to_string(), v));
            }
        }
        // As Alertmanager: the receiver's password (or file) replaces the global one.
        let password = match (&conf.auth_password, &conf.auth_password_file) {
            (None, None) => g.smtp_auth_password.clone(),
            (p, _) => p.clone(),
        };
        let hostname = match ClientId::default() {
            ClientId::Domain(d) => d,
            _ => "localhost".into(),
        };
        EmailSink {
            host,
            port: port.parse().unwrap_or(25),
            from,
            hello: conf
                .hello
                .clone()
                .filter(|h| !h.is_empty())
                .or(g.smtp_hello.clone())
                .unwrap_or_else(|| "localhost".into()),
            username: conf
                .auth_username
                .clone()
                .filter(|u| !u.is_empty())
                .or(g.smtp_auth_username.clone())
                .unwrap_or_default(),
            password,
            secret: conf
                .auth_secret
                .clone()
                .filter(|s| !s.is_empty())
                .or(g.smtp_auth_secret.clone()),
            identity: conf
                .auth_identity
                .clone()
                .filter(|s| !s.is_empty())
                .or(g.smtp_auth_identity.clone())
                .unwrap_or_default(),
            require_tls: conf.require_tls.or(g.smtp_require_tls).unwrap_or(true),
            headers,
            renderer,
            hostname,
            conf,
        }
    }

    /// Renders addresses, headers and parts.
    pub fn render(&self, n: &Notification) -> Result<Rendered, SinkError> {
        let m = n.message(0);
        let r = |src: &str, what: &str| {
            self.renderer
                .render(src, &m)
                .map_err(|e| SinkError::permanent(format!("email: execute {what} template: {e}")))
        };
        let from_t = r(&self.from, "'from'")?;
        let to_t = r(&self.conf.to, "'to'")?;
        let from: Mailboxes = from_t
            .parse()
            .map_err(|e| SinkError::permanent(format!("email: parse 'from' addresses: {e}")))?;
        let from: Vec<_> = from.into_iter().collect();
        if from.len() != 1 {
            return Err(SinkError::permanent(format!(
                "email: must be exactly one 'from' address (got: {})",
                from.len()
            )));
        }
        let to: Mailboxes = to_t
            .parse()
            .map_err(|e| SinkError::permanent(format!("email: parse 'to' addresses: {e}")))?;
        let mut headers = Vec::new();
        for (k, t) in &self.headers {
            headers.push((k.clone(), r(t, &format!("{k:?} header"))?));
        }
        let text = if self.conf.text.is_empty() {
            None
        } else {
            Some(r(&self.conf.text, "text")?)
        };
        let html = if self.conf.html.is_empty() {
            None
        } else {
            Some(strip_html_comments(
                &self
                    .renderer
                    .render(&self.conf.html, &escaped(&m))
                    .map_err(|e| {
                        SinkError::permanent(format!("email: execute html template: {e}"))
                    })?,
            ))
        };
        Ok(Rendered {
            from: from[0].email.to_string(),
            to: to.into_iter().map(|m| m.email.to_string()).collect(),
            headers,
            text,
            html,
        })
    }

    /// The message as sent (headers, then the multipart body).
    pub fn format(&self, r: &Rendered, now: argus_model::Millis) -> Vec<u8> {
        let mut out = String::new();
        for (k, v) in &r.headers {
            out.push_str(&format!("{k}: {}\r\n", encode_header(v)));
        }
        if !r.headers.iter().any(|(k, _)| k == "Message-Id") {
            let nanos = now as i128 * 1_000_000 + (rand::random::<u32>() % 1_000_000) as i128;
            out.push_str(&format!(
                "Message-Id: <{nanos}.{}@{}>\r\n",
                rand::random::<u64>(),
                self.hostname
            ));
        }
        let date = chrono::DateTime::from_timestamp_millis(now)
            .unwrap_or_default()
            .format("%a, %d %b %Y %H:%M:%S %z");
        out.push_str(&format!("Date: {date}\r\n"));
        out.push_str("MIME-Version: 1.0\r\n");
        let mut mp = MultiPart::alternative().build();
        if let Some(t) = &r.text {
            mp = mp.singlepart(
                SinglePart::builder()
                    .header(ContentType::parse("text/plain; charset=UTF-8").unwrap())
                    .header(lettre::message::header::ContentTransferEncoding::QuotedPrintable)
                    .body(t.clone()),
            );
        }
        if let Some(h) = &r.html {
            mp = mp.singlepart(
                SinglePart::builder()
                    .header(ContentType::parse("text/html; charset=UTF-8").unwrap())
                    .header(lettre::message::header::ContentTransferEncoding::QuotedPrintable)
                    .body(h.clone()),
            );
        }
        let mut bytes = out.into_bytes();
        bytes.extend(mp.formatted());
        bytes
    }

    fn tls(&self) -> Result<TlsParameters, SinkError> {
        let t = self.conf.tls_config.clone().unwrap_or_default();
        let name = t
            .server_name
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or(self.host.clone());
        let mut b =
            TlsParameters::builder(name).dangerous_accept_invalid_certs(t.insecure_skip_verify);
        if let Some(ca) = &t.ca_file {
            let pem = std::fs::read(ca).map_err(|e| {
                SinkError::permanent(format!("email: tls_config.ca_file {ca}: {e}"))
            })?;
            b = b.add_root_certificate(Certificate::from_pem(&pem).map_err(|e| {
                SinkError::permanent(format!("email: tls_config.ca_file {ca}: {e}"))
            })?);
        }
        if let (Some(c), Some(k)) = (&t.cert_file, &t.key_file) {
            let read = |f: &str| {
                std::fs::read(f)
                    .map_err(|e| SinkError::permanent(format!("email: tls_config {f}: {e}")))
            };
            b =
                b.identify_with(Identity::from_pem(&read(c)?, &read(k)?).map_err(|e| {
                    SinkError::permanent(format!("email: tls_config cert/key: {e}"))
                })?);
        }
        b.build_rustls()
            .map_err(|e| SinkError::permanent(format!("email: parse TLS configuration: {e}")))
    }

    async fn deliver(
        &self,
        env: &Envelope,
        msg: &[u8],
        timeout: Duration,
    ) -> Result<(), SinkError> {
        let hello = ClientId::Domain(self.hello.clone());
        let addr = format!("{}:{}", self.host, self.port);
        let implicit = self.port == 465;
        let tls = if implicit || self.require_tls {
            Some(self.tls()?)
        } else {
            None
        };
        let mut conn = AsyncSmtpConnection::connect_tokio1(
            (self.host.as_str(), self.port),
            Some(timeout),
            &hello,
            if implicit { tls.clone() } else { None },
            None,
        )
        .await
        .map_err(|e| retry("establish connection to server", e))?;
        if self.require_tls && !implicit {
            if !conn.can_starttls() {
                let _ = conn.quit().await;
                return Err(SinkError::retryable(format!(
                    "email: 'require_tls' is true (default) but {addr:?} does not advertise the STARTTLS extension"
                )));
            }
            conn.starttls(tls.clone().expect("built above"), &hello)
                .await
                .map_err(|e| retry("send STARTTLS command", e))?;
        }
        if !self.username.is_empty() {
            // The server's AUTH list, in its order (lettre keeps only the mechanisms it
            // implements, and not CRAM-MD5).
            let ehlo = conn
                .command(lettre::transport::smtp::commands::Ehlo::new(hello.clone()))
                .await
                .map_err(|e| retry("send EHLO command", e))?;
            let mechs: Option<Vec<String>> = ehlo.message().find_map(|l| {
                let l = l.trim();
                let up = l.to_ascii_uppercase();
                up.strip_prefix("AUTH ")
                    .or(up.strip_prefix("AUTH="))
                    .map(|rest| rest.split_whitespace().map(String::from).collect())
            });
            if let Some(mechs) = mechs {
                self.auth(&mut conn, &mechs).await?;
            }
        }
        conn.send(env, msg)
            .await
            .map_err(|e| retry("send message", e))?;
        let _ = conn.quit().await;
        Ok(())
    }

    /// Alertmanager's `auth`: the first of the server's mechanisms we can serve.
    async fn auth(
        &self,
        conn: &mut AsyncSmtpConnection,
        mechs: &[String],
    ) -> Result<(), SinkError> {
        use base64::Engine;
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let mut errs = Vec::new();
        let cmd = |s: String| Line(s);
        for mech in mechs {
            match mech.as_str() {
                "CRAM-MD5" => {
                    let Some(secret) = self.secret.as_ref().filter(|s| !s.is_empty()) else {
                        errs.push("missing secret for CRAM-MD5 auth mechanism".to_string());
                        continue;
                    };
                    let r = conn
                        .command(cmd("AUTH CRAM-MD5".into()))
                        .await
                        .map_err(|e| retry("CRAM-MD5 auth", e))?;
                    let challenge = r.first_line().unwrap_or("").trim();
                    let challenge = base64::engine::general_purpose::STANDARD
                        .decode(challenge)
                        .map_err(|e| retry("CRAM-MD5 auth: challenge", e))?;
                    let digest = hex::encode(hmac_md5(secret.expose().as_bytes(), &challenge));
                    conn.command(cmd(b64(format!("{} {digest}", self.username).as_bytes())))
                        .await
                        .map_err(|e| retry("CRAM-MD5 auth", e))?;
                    return Ok(());
                }
                "PLAIN" | "LOGIN" => {
                    let Some(pw) = self.password.as_ref().filter(|p| !p.is_empty()) else {
                        errs.push(format!("missing password for {mech} auth mechanism"));
                        continue;
                    };
                    // Go's PlainAuth refuses to send the password in the clear to anything
                    // but localhost; so does LOGIN here.
                    if !conn.is_encrypted() && !is_localhost(&self.host) {
                        return Err(SinkError::retryable(format!(
                            "email: {mech} auth: unencrypted connection"
                        )));
                    }
                    if mech == "PLAIN" {
                        let raw = format!("{}\0{}\0{}", self.identity, self.username, pw.expose());
                        conn.command(cmd(format!("AUTH PLAIN {}", b64(raw.as_bytes()))))
                            .await
                            .map_err(|e| retry("PLAIN auth", e))?;
                    } else {
                        conn.command(cmd("AUTH LOGIN".into()))
                            .await
                            .map_err(|e| retry("LOGIN auth", e))?;
                        conn.command(cmd(b64(self.username.as_bytes())))
                            .await
                            .map_err(|e| retry("LOGIN auth", e))?;
                        conn.command(cmd(b64(pw.expose().as_bytes())))
                            .await
                            .map_err(|e| retry("LOGIN auth", e))?;
                    }
                    return Ok(());
                }
                _ => {}
            }
        }
        if errs.is_empty() {
            errs.push(format!("unknown auth mechanism: {}", mechs.join(" ")));
        }
        Err(SinkError::retryable(format!(
            "email: find auth mechanism: {}",
            errs.join("; ")
        )))
    }
}

/// One SMTP command line (lettre's `command` writes what `Display` gives).
struct Line(String);
impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\r\n", self.0)
    }
}

/// HMAC-MD5 (RFC 2104) for CRAM-MD5 (RFC 2195).
fn hmac_md5(key: &[u8], msg: &[u8]) -> [u8; 16] {
    use md5::{Digest, Md5};
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..16].copy_from_slice(&Md5::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Md5::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Md5::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

#[async_trait::async_trait]
impl Sink for EmailSink {
    fn kind(&self) -> &'static str {
        "email"
    }
    fn send_resolved(&self) -> bool {
        self.conf.send_resolved
    }
    async fn send(&self, n: &Notification, timeout: Duration) -> Result<(), SinkError> {
        let r = self.render(n)?;
        let from: lettre::Address = r
            .from
            .parse()
            .map_err(|e| SinkError::permanent(format!("email: from: {e}")))?;
        let to: Vec<lettre::Address> =
            r.to.iter()
                .map(|t| t.parse())
                .collect::<Result<_, _>>()
                .map_err(|e| SinkError::permanent(format!("email: to: {e}")))?;
        let env = Envelope::new(Some(from), to)
            .map_err(|e| SinkError::permanent(format!("email: envelope: {e}")))?;
        let msg = self.format(&r, n.now);
        match tokio::time::timeout(timeout, self.deliver(&env, &msg, timeout)).await {
            Ok(r) => r,
            Err(_) => Err(SinkError::retryable(format!(
                "email: timed out after {timeout:?}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_md5_rfc2202() {
        // RFC 2202 test case 2.
        assert_eq!(
            hex::encode(hmac_md5(b"Jefe", b"what do ya want for nothing?")),
            "750c783e6ab0b503eaa86e310a5db738"
        );
        // RFC 2195's example.
        assert_eq!(
            hex::encode(hmac_md5(
                b"tanstaaftanstaaf",
                b"<1896.697170952@postoffice.reston.mci.net>"
            )),
            "b913a602c7eda7a495b4e6e7334d3890"
        );
    }

    #[test]
    fn helpers() {
        assert_eq!(canonical_header("x-PRIORITY"), "X-Priority");
        assert_eq!(canonical_header("subject"), "Subject");
        assert_eq!(
            split_host_port("smtp:587").unwrap(),
            ("smtp".into(), "587".into())
        );
        assert_eq!(
            split_host_port("[::1]:25").unwrap(),
            ("::1".into(), "25".into())
        );
        assert!(split_host_port("smtp")
            .unwrap_err()
            .contains("missing port"));
        assert!(split_host_port("smtp:")
            .unwrap_err()
            .contains("port cannot be empty"));
        assert_eq!(encode_header("[FIRING:1] Down"), "[FIRING:1] Down");
        assert_eq!(encode_header("é"), "=?utf-8?b?w6k=?=");
        assert_eq!(
            go_html_escape("a+b<'\"&>"),
            "a&#43;b&lt;&#39;&#34;&amp;&gt;"
        );
    }
}
