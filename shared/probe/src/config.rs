//! Probe modules: blackbox_exporter's `modules:` YAML vocabulary, validated once at load.
//!
//! `load_modules` parses a blackbox.yml-shaped document, rejects unknown fields, invalid
//! regular expressions, probers that cannot run in Lambda (`icmp`, `grpc`) and unknown DNS
//! types/classes, and merges the result over the built-in defaults (blackbox's default
//! blackbox.yml modules plus Argus' `scrape` and `dns`).

use regex::Regex;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Why a modules document was rejected; names the module and the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("modules config is not valid YAML: {0}")]
    Yaml(String),
    #[error("module {module:?}: field `{field}`: {message}")]
    Field {
        module: String,
        field: String,
        message: String,
    },
    #[error("module {module:?}: {message}")]
    Module { module: String, message: String },
}

fn ferr(module: &str, field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        module: module.into(),
        field: field.into(),
        message: message.into(),
    }
}

/// IP protocol preference (`preferred_ip_protocol`), blackbox's default is `ip6`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpProtocol {
    Ip4,
    Ip6,
}

/// TLS settings (prometheus/common `tls_config`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Inline PEM CA bundle (Argus also accepts it, like newer prometheus/common).
    #[serde(default)]
    pub ca: Option<String>,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub cert: Option<String>,
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    #[serde(default)]
    pub server_name: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
    #[serde(default)]
    pub min_version: Option<String>,
    #[serde(default)]
    pub max_version: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub credentials: Option<String>,
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
}

/// The HTTP client part shared by `http` and `scrape` modules.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub tls: TlsConfig,
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub follow_redirects: bool,
    pub enable_http2: bool,
}

#[derive(Clone, Debug)]
pub struct HeaderMatch {
    pub header: String,
    pub regexp: Regex,
    pub allow_missing: bool,
}

#[derive(Clone, Debug)]
pub struct HttpModule {
    pub valid_status_codes: Vec<u16>,
    pub valid_http_versions: Vec<String>,
    pub ip_protocol: IpProtocol,
    pub ip_protocol_fallback: bool,
    pub fail_if_ssl: bool,
    pub fail_if_not_ssl: bool,
    pub method: http::Method,
    pub headers: Vec<(String, String)>,
    pub fail_if_body_matches_regexp: Vec<regex::bytes::Regex>,
    pub fail_if_body_not_matches_regexp: Vec<regex::bytes::Regex>,
    pub fail_if_header_matches: Vec<HeaderMatch>,
    pub fail_if_header_not_matches: Vec<HeaderMatch>,
    pub body: String,
    pub compression: Option<Compression>,
    /// 0 = no limit.
    pub body_size_limit: u64,
    pub client: ClientConfig,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Identity,
    Gzip,
    Deflate,
    Br,
}

#[derive(Clone, Debug)]
pub struct QueryResponse {
    pub expect: Option<Regex>,
    pub send: String,
    pub starttls: bool,
}

#[derive(Clone, Debug)]
pub struct TcpModule {
    pub ip_protocol: IpProtocol,
    pub ip_protocol_fallback: bool,
    pub query_response: Vec<QueryResponse>,
    pub tls: bool,
    pub tls_config: TlsConfig,
}

#[derive(Clone, Debug, Default)]
pub struct RrValidator {
    pub fail_if_matches_regexp: Vec<Regex>,
    pub fail_if_all_match_regexp: Vec<Regex>,
    pub fail_if_not_matches_regexp: Vec<Regex>,
    pub fail_if_none_matches_regexp: Vec<Regex>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsTransport {
    Udp,
    Tcp,
}

#[derive(Clone, Debug)]
pub struct DnsModule {
    pub ip_protocol: IpProtocol,
    pub ip_protocol_fallback: bool,
    pub transport: DnsTransport,
    pub query_name: String,
    pub query_type: hickory_proto::rr::RecordType,
    pub query_class: hickory_proto::rr::DNSClass,
    pub recursion_desired: bool,
    /// Numeric rcodes; empty = NOERROR only.
    pub valid_rcodes: Vec<u16>,
    pub validate_answer: RrValidator,
    pub validate_authority: RrValidator,
    pub validate_additional: RrValidator,
}

/// Argus' `scrape` prober: GET a Prometheus text endpoint like Prometheus does.
#[derive(Clone, Debug)]
pub struct ScrapeModule {
    /// Appended to targets given as `host:port` (default `/metrics`).
    pub metrics_path: String,
    /// Samples above this fail the scrape (`up 0`), 0 = no limit.
    pub sample_limit: usize,
    /// Bytes of (uncompressed) body above this fail the scrape; default 10 MiB.
    pub body_size_limit: u64,
    pub ip_protocol: IpProtocol,
    pub ip_protocol_fallback: bool,
    pub headers: Vec<(String, String)>,
    pub client: ClientConfig,
}

#[derive(Clone, Debug)]
pub enum ProbeKind {
    Http(Box<HttpModule>),
    Tcp(Box<TcpModule>),
    Dns(Box<DnsModule>),
    Scrape(Box<ScrapeModule>),
}

/// One validated module.
#[derive(Clone, Debug)]
pub struct Module {
    pub name: String,
    /// `timeout:`; `None` = the prober's default timeout.
    pub timeout: Option<Duration>,
    /// Argus extension: allow link-local / instance-metadata addresses for this module.
    pub allow_link_local: bool,
    pub kind: ProbeKind,
    /// The module as written (for `?debug=true` output).
    pub source: serde_json::Value,
}

impl Module {
    /// The prober name as written in YAML (`http`, `tcp`, `dns`, `scrape`).
    pub fn prober(&self) -> &'static str {
        match self.kind {
            ProbeKind::Http(_) => "http",
            ProbeKind::Tcp(_) => "tcp",
            ProbeKind::Dns(_) => "dns",
            ProbeKind::Scrape(_) => "scrape",
        }
    }
}

/// A validated set of modules by name.
#[derive(Clone, Debug, Default)]
pub struct Modules {
    map: BTreeMap<String, Module>,
}

impl Modules {
    /// The built-in modules only.
    pub fn defaults() -> Modules {
        parse(DEFAULT_MODULES).expect("built-in modules are valid")
    }
    pub fn get(&self, name: &str) -> Option<&Module> {
        self.map.get(name)
    }
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(|s| s.as_str())
    }
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    pub fn insert(&mut self, m: Module) {
        self.map.insert(m.name.clone(), m);
    }
}

/// Built-in modules: blackbox_exporter's default blackbox.yml (less `icmp*` and `grpc*`,
/// which cannot run in Lambda), a `dns` example, and Argus' `scrape`.
pub const DEFAULT_MODULES: &str = r#"
modules:
  http_2xx:
    prober: http
  http_post_2xx:
    prober: http
    http:
      method: POST
  tcp_connect:
    prober: tcp
  pop3s_banner:
    prober: tcp
    tcp:
      query_response:
      - expect: "^+OK"
      tls: true
      tls_config:
        insecure_skip_verify: false
  ssh_banner:
    prober: tcp
    tcp:
      query_response:
      - expect: "^SSH-2.0-"
      - send: "SSH-2.0-blackbox-ssh-check"
  irc_banner:
    prober: tcp
    tcp:
      query_response:
      - send: "NICK prober"
      - send: "USER prober prober prober :prober"
      - expect: "PING :([^ ]+)"
        send: "PONG ${1}"
      - expect: "^:[^ ]+ 001"
  dns:
    prober: dns
    dns:
      query_name: "example.com"
      query_type: "A"
      valid_rcodes:
      - NOERROR
  scrape:
    prober: scrape
"#;

/// Parses a blackbox.yml-shaped document (`modules:` map) and merges it over the
/// built-in defaults (a module with a default's name replaces it).
pub fn load_modules(yaml: &str) -> Result<Modules, ConfigError> {
    let mut all = Modules::defaults();
    for (_, m) in parse(yaml)?.map {
        all.insert(m);
    }
    Ok(all)
}

/// Parses a modules document without the defaults.
pub fn parse(yaml: &str) -> Result<Modules, ConfigError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[serde(default)]
        modules: Option<BTreeMap<String, serde_json::Value>>,
    }
    if yaml.trim().is_empty() {
        return Ok(Modules::default());
    }
    let doc: Doc = serde_saphyr::from_str(yaml).map_err(|e| ConfigError::Yaml(e.to_string()))?;
    let mut out = Modules::default();
    for (name, v) in doc.modules.unwrap_or_default() {
        let raw: RawModule =
            serde_json::from_value(v.clone()).map_err(|e| ConfigError::Module {
                module: name.clone(),
                message: e.to_string(),
            })?;
        out.insert(raw.validate(&name, v)?);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModule {
    prober: Option<String>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    allow_link_local: bool,
    #[serde(default)]
    http: Option<RawHttp>,
    #[serde(default)]
    tcp: Option<RawTcp>,
    #[serde(default)]
    dns: Option<RawDns>,
    #[serde(default)]
    scrape: Option<RawScrape>,
    #[serde(default)]
    icmp: Option<serde_json::Value>,
    #[serde(default)]
    grpc: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    #[serde(default)]
    valid_status_codes: Vec<u16>,
    #[serde(default)]
    valid_http_versions: Vec<String>,
    #[serde(default)]
    preferred_ip_protocol: Option<String>,
    #[serde(default)]
    ip_protocol_fallback: Option<bool>,
    #[serde(default)]
    skip_resolve_phase_with_proxy: bool,
    #[serde(default)]
    no_follow_redirects: Option<bool>,
    #[serde(default)]
    fail_if_ssl: bool,
    #[serde(default)]
    fail_if_not_ssl: bool,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    fail_if_body_matches_regexp: Vec<String>,
    #[serde(default)]
    fail_if_body_not_matches_regexp: Vec<String>,
    #[serde(default)]
    fail_if_header_matches: Vec<RawHeaderMatch>,
    #[serde(default)]
    fail_if_header_not_matches: Vec<RawHeaderMatch>,
    #[serde(default)]
    body: String,
    #[serde(default)]
    compression: Option<String>,
    #[serde(default)]
    body_size_limit: Option<serde_json::Value>,
    #[serde(flatten)]
    client: RawClient,
}

#[derive(Deserialize, Default)]
struct RawClient {
    #[serde(default)]
    basic_auth: Option<BasicAuth>,
    #[serde(default)]
    authorization: Option<Authorization>,
    #[serde(default)]
    bearer_token: Option<String>,
    #[serde(default)]
    bearer_token_file: Option<PathBuf>,
    #[serde(default)]
    tls_config: Option<TlsConfig>,
    #[serde(default)]
    follow_redirects: Option<bool>,
    #[serde(default)]
    enable_http2: Option<bool>,
    #[serde(default)]
    proxy_url: Option<String>,
    #[serde(default)]
    oauth2: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeaderMatch {
    #[serde(default)]
    header: String,
    #[serde(default)]
    regexp: String,
    #[serde(default)]
    allow_missing: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawQueryResponse {
    #[serde(default)]
    expect: Option<String>,
    #[serde(default)]
    send: String,
    #[serde(default)]
    starttls: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTcp {
    #[serde(default)]
    preferred_ip_protocol: Option<String>,
    #[serde(default)]
    ip_protocol_fallback: Option<bool>,
    #[serde(default)]
    source_ip_address: Option<String>,
    #[serde(default)]
    query_response: Vec<RawQueryResponse>,
    #[serde(default)]
    tls: bool,
    #[serde(default)]
    tls_config: Option<TlsConfig>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRrValidator {
    #[serde(default)]
    fail_if_matches_regexp: Vec<String>,
    #[serde(default)]
    fail_if_all_match_regexp: Vec<String>,
    #[serde(default)]
    fail_if_not_matches_regexp: Vec<String>,
    #[serde(default)]
    fail_if_none_matches_regexp: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDns {
    #[serde(default)]
    preferred_ip_protocol: Option<String>,
    #[serde(default)]
    ip_protocol_fallback: Option<bool>,
    #[serde(default)]
    dns_over_tls: bool,
    #[serde(default)]
    tls_config: Option<TlsConfig>,
    #[serde(default)]
    source_ip_address: Option<String>,
    #[serde(default)]
    transport_protocol: Option<String>,
    #[serde(default)]
    query_class: Option<String>,
    #[serde(default)]
    query_name: Option<String>,
    #[serde(default)]
    query_type: Option<String>,
    #[serde(default)]
    recursion_desired: Option<bool>,
    #[serde(default)]
    valid_rcodes: Option<Vec<String>>,
    #[serde(default)]
    validate_answer_rrs: RawRrValidator,
    #[serde(default)]
    validate_authority_rrs: RawRrValidator,
    #[serde(default)]
    validate_additional_rrs: RawRrValidator,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawScrape {
    #[serde(default)]
    metrics_path: Option<String>,
    #[serde(default)]
    sample_limit: usize,
    #[serde(default)]
    body_size_limit: Option<serde_json::Value>,
    #[serde(default)]
    preferred_ip_protocol: Option<String>,
    #[serde(default)]
    ip_protocol_fallback: Option<bool>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(flatten)]
    client: RawClient,
}

impl RawModule {
    fn validate(self, name: &str, source: serde_json::Value) -> Result<Module, ConfigError> {
        let prober = self.prober.as_deref().unwrap_or("");
        let timeout = match &self.timeout {
            None => None,
            Some(s) => {
                let d = parse_go_duration(s).map_err(|e| ferr(name, "timeout", e))?;
                (!d.is_zero()).then_some(d)
            }
        };
        let kind = match prober {
            "http" => ProbeKind::Http(Box::new(self.http.unwrap_or_default().validate(name)?)),
            "tcp" => ProbeKind::Tcp(Box::new(self.tcp.unwrap_or_default().validate(name)?)),
            "dns" => match self.dns {
                Some(d) => ProbeKind::Dns(Box::new(d.validate(name)?)),
                None => return Err(ferr(name, "dns.query_name", "query name must be set for DNS module")),
            },
            "scrape" => ProbeKind::Scrape(Box::new(self.scrape.unwrap_or_default().validate(name)?)),
            "icmp" => {
                return Err(ferr(
                    name,
                    "prober",
                    "prober `icmp` is not supported: ICMP needs raw sockets, which AWS Lambda does not allow; use `tcp` (connect) or `http` instead",
                ))
            }
            "grpc" => {
                return Err(ferr(name, "prober", "prober `grpc` is not supported by Argus; use `http` or `tcp`"))
            }
            "" => return Err(ferr(name, "prober", "missing; one of http, tcp, dns, scrape")),
            other => {
                return Err(ferr(name, "prober", format!("unknown prober {other:?}; one of http, tcp, dns, scrape")))
            }
        };
        // A section for another prober is accepted (blackbox ignores it) but icmp/grpc
        // sections are kept only as values; nothing else to check.
        let _ = (&self.icmp, &self.grpc);
        Ok(Module {
            name: name.to_string(),
            timeout,
            allow_link_local: self.allow_link_local,
            kind,
            source,
        })
    }
}

fn ip_protocol(module: &str, field: &str, v: &Option<String>) -> Result<IpProtocol, ConfigError> {
    match v.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("ip6") => Ok(IpProtocol::Ip6),
        Some("ip4") => Ok(IpProtocol::Ip4),
        Some(o) => Err(ferr(module, field, format!("{o:?} is not one of ip4, ip6"))),
    }
}

fn regex(module: &str, field: &str, s: &str) -> Result<Regex, ConfigError> {
    Regex::new(s).map_err(|e| {
        ferr(
            module,
            field,
            format!("could not compile regular expression {s:?}: {e}"),
        )
    })
}

fn bregex(module: &str, field: &str, s: &str) -> Result<regex::bytes::Regex, ConfigError> {
    regex::bytes::Regex::new(s).map_err(|e| {
        ferr(
            module,
            field,
            format!("could not compile regular expression {s:?}: {e}"),
        )
    })
}

impl RawClient {
    fn validate(self, module: &str, section: &str) -> Result<ClientConfig, ConfigError> {
        let f = |x: &str| format!("{section}.{x}");
        if self.proxy_url.is_some() {
            return Err(ferr(
                module,
                &f("proxy_url"),
                "proxies are not supported by Argus probes",
            ));
        }
        if self.oauth2.is_some() {
            return Err(ferr(
                module,
                &f("oauth2"),
                "oauth2 is not supported by Argus probes",
            ));
        }
        let mut authorization = self.authorization;
        if self.bearer_token.is_some() || self.bearer_token_file.is_some() {
            if authorization.is_some() || self.basic_auth.is_some() {
                return Err(ferr(
                    module,
                    &f("bearer_token"),
                    "at most one of basic_auth, authorization, bearer_token may be set",
                ));
            }
            authorization = Some(Authorization {
                kind: Some("Bearer".into()),
                credentials: self.bearer_token,
                credentials_file: self.bearer_token_file,
            });
        }
        if authorization.is_some() && self.basic_auth.is_some() {
            return Err(ferr(
                module,
                &f("authorization"),
                "at most one of basic_auth, authorization may be set",
            ));
        }
        if let Some(a) = &authorization {
            if a.credentials.is_some() && a.credentials_file.is_some() {
                return Err(ferr(
                    module,
                    &f("authorization"),
                    "at most one of credentials, credentials_file may be set",
                ));
            }
            if a.kind
                .as_deref()
                .is_some_and(|k| k.eq_ignore_ascii_case("basic"))
            {
                return Err(ferr(
                    module,
                    &f("authorization.type"),
                    "authorization type cannot be set to \"basic\", use \"basic_auth\" instead",
                ));
            }
        }
        if let Some(b) = &self.basic_auth {
            if b.password.is_some() && b.password_file.is_some() {
                return Err(ferr(
                    module,
                    &f("basic_auth"),
                    "at most one of password, password_file may be set",
                ));
            }
        }
        let tls = self.tls_config.unwrap_or_default();
        check_tls(module, &f("tls_config"), &tls)?;
        Ok(ClientConfig {
            tls,
            basic_auth: self.basic_auth,
            authorization,
            follow_redirects: self.follow_redirects.unwrap_or(true),
            enable_http2: self.enable_http2.unwrap_or(true),
        })
    }
}

fn check_tls(module: &str, field: &str, t: &TlsConfig) -> Result<(), ConfigError> {
    for (k, v) in [
        ("min_version", &t.min_version),
        ("max_version", &t.max_version),
    ] {
        if let Some(v) = v {
            if tls_version(v).is_none() {
                return Err(ferr(
                    module,
                    &format!("{field}.{k}"),
                    format!("unknown TLS version {v:?}; one of TLS10, TLS11, TLS12, TLS13"),
                ));
            }
        }
    }
    if t.ca.is_some() && t.ca_file.is_some() {
        return Err(ferr(module, field, "at most one of ca, ca_file may be set"));
    }
    if t.cert.is_some() && t.cert_file.is_some() || t.key.is_some() && t.key_file.is_some() {
        return Err(ferr(
            module,
            field,
            "at most one of cert/cert_file and key/key_file may be set",
        ));
    }
    let has_cert = t.cert.is_some() || t.cert_file.is_some();
    let has_key = t.key.is_some() || t.key_file.is_some();
    if has_cert != has_key {
        return Err(ferr(
            module,
            field,
            "client cert and key must be given together",
        ));
    }
    Ok(())
}

/// `TLS10`..`TLS13` → 10..13.
pub(crate) fn tls_version(s: &str) -> Option<u8> {
    match s {
        "TLS10" => Some(10),
        "TLS11" => Some(11),
        "TLS12" => Some(12),
        "TLS13" => Some(13),
        _ => None,
    }
}

fn header_matches(
    module: &str,
    field: &str,
    v: Vec<RawHeaderMatch>,
) -> Result<Vec<HeaderMatch>, ConfigError> {
    v.into_iter()
        .map(|h| {
            if h.header.is_empty() {
                return Err(ferr(
                    module,
                    field,
                    "header name must be set for HTTP header matchers",
                ));
            }
            if h.regexp.is_empty() {
                return Err(ferr(
                    module,
                    field,
                    "regexp must be set for HTTP header matchers",
                ));
            }
            Ok(HeaderMatch {
                regexp: regex(module, field, &h.regexp)?,
                header: h.header,
                allow_missing: h.allow_missing,
            })
        })
        .collect()
}

impl RawHttp {
    fn validate(self, m: &str) -> Result<HttpModule, ConfigError> {
        let mut client = self.client.validate(m, "http")?;
        if let Some(nf) = self.no_follow_redirects {
            client.follow_redirects = !nf;
        }
        if self.skip_resolve_phase_with_proxy {
            return Err(ferr(
                m,
                "http.skip_resolve_phase_with_proxy",
                "proxies are not supported by Argus probes",
            ));
        }
        let method = match self.method.as_deref() {
            None | Some("") => http::Method::GET,
            Some(s) => http::Method::from_bytes(s.as_bytes())
                .map_err(|_| ferr(m, "http.method", format!("invalid HTTP method {s:?}")))?,
        };
        let compression = match self
            .compression
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("") => None,
            Some("identity") => Some(Compression::Identity),
            Some("gzip") => Some(Compression::Gzip),
            Some("deflate") => Some(Compression::Deflate),
            Some("br") => Some(Compression::Br),
            Some(o) => {
                return Err(ferr(
                    m,
                    "http.compression",
                    format!(
                    "unsupported compression algorithm {o:?}; one of br, deflate, gzip, identity"
                ),
                ))
            }
        };
        let mut headers = Vec::new();
        for (k, v) in self.headers {
            http::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| ferr(m, "http.headers", format!("invalid header name {k:?}")))?;
            http::HeaderValue::from_str(&v)
                .map_err(|_| ferr(m, "http.headers", format!("invalid value for header {k:?}")))?;
            if k.eq_ignore_ascii_case("accept-encoding") {
                if let Some(c) = self.compression.as_deref().filter(|c| !c.is_empty()) {
                    if !accept_encoding_covers(c, &v) {
                        return Err(ferr(
                            m,
                            "http.headers",
                            format!("invalid configuration \"{k}: {v}\", \"compression: {c}\""),
                        ));
                    }
                }
            }
            headers.push((k, v));
        }
        let mut valid_http_versions = Vec::new();
        for v in self.valid_http_versions {
            if !matches!(
                v.as_str(),
                "HTTP/1.0" | "HTTP/1.1" | "HTTP/2.0" | "HTTP/2" | "HTTP/3.0"
            ) {
                return Err(ferr(
                    m,
                    "http.valid_http_versions",
                    format!("unknown HTTP version {v:?}"),
                ));
            }
            valid_http_versions.push(if v == "HTTP/2" {
                "HTTP/2.0".to_string()
            } else {
                v
            });
        }
        for c in &self.valid_status_codes {
            if !(100..=999).contains(c) {
                return Err(ferr(
                    m,
                    "http.valid_status_codes",
                    format!("{c} is not an HTTP status code"),
                ));
            }
        }
        Ok(HttpModule {
            valid_status_codes: self.valid_status_codes,
            valid_http_versions,
            ip_protocol: ip_protocol(m, "http.preferred_ip_protocol", &self.preferred_ip_protocol)?,
            ip_protocol_fallback: self.ip_protocol_fallback.unwrap_or(true),
            fail_if_ssl: self.fail_if_ssl,
            fail_if_not_ssl: self.fail_if_not_ssl,
            method,
            headers,
            fail_if_body_matches_regexp: self
                .fail_if_body_matches_regexp
                .iter()
                .map(|s| bregex(m, "http.fail_if_body_matches_regexp", s))
                .collect::<Result<_, _>>()?,
            fail_if_body_not_matches_regexp: self
                .fail_if_body_not_matches_regexp
                .iter()
                .map(|s| bregex(m, "http.fail_if_body_not_matches_regexp", s))
                .collect::<Result<_, _>>()?,
            fail_if_header_matches: header_matches(
                m,
                "http.fail_if_header_matches",
                self.fail_if_header_matches,
            )?,
            fail_if_header_not_matches: header_matches(
                m,
                "http.fail_if_header_not_matches",
                self.fail_if_header_not_matches,
            )?,
            body: self.body,
            compression,
            body_size_limit: match &self.body_size_limit {
                None => 0,
                Some(v) => parse_bytes(v).map_err(|e| ferr(m, "http.body_size_limit", e))?,
            },
            client,
        })
    }
}

/// Whether an Accept-Encoding header value includes the configured compression.
fn accept_encoding_covers(compression: &str, accept: &str) -> bool {
    accept.split(',').any(|part| {
        let mut it = part.split(';');
        let enc = it.next().unwrap_or("").trim();
        let q = it
            .find_map(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .map(|q| q.trim().parse::<f32>().unwrap_or(0.0))
            })
            .unwrap_or(1.0);
        q > 0.0 && (enc.eq_ignore_ascii_case(compression) || enc == "*")
    })
}

impl RawTcp {
    fn validate(self, m: &str) -> Result<TcpModule, ConfigError> {
        if self
            .source_ip_address
            .as_deref()
            .is_some_and(|s| !s.is_empty())
        {
            return Err(ferr(
                m,
                "tcp.source_ip_address",
                "not supported by Argus probes",
            ));
        }
        let tls_config = self.tls_config.unwrap_or_default();
        check_tls(m, "tcp.tls_config", &tls_config)?;
        let mut qr = Vec::new();
        for (i, q) in self.query_response.into_iter().enumerate() {
            let field = format!("tcp.query_response[{i}].expect");
            qr.push(QueryResponse {
                expect: match q.expect.as_deref() {
                    None | Some("") => None,
                    Some(s) => Some(regex(m, &field, s)?),
                },
                send: q.send,
                starttls: q.starttls,
            });
        }
        Ok(TcpModule {
            ip_protocol: ip_protocol(m, "tcp.preferred_ip_protocol", &self.preferred_ip_protocol)?,
            ip_protocol_fallback: self.ip_protocol_fallback.unwrap_or(true),
            query_response: qr,
            tls: self.tls,
            tls_config,
        })
    }
}

impl RawRrValidator {
    fn validate(self, m: &str, section: &str) -> Result<RrValidator, ConfigError> {
        let list = |field: &str, v: Vec<String>| -> Result<Vec<Regex>, ConfigError> {
            v.iter()
                .map(|s| regex(m, &format!("dns.{section}.{field}"), s))
                .collect()
        };
        Ok(RrValidator {
            fail_if_matches_regexp: list("fail_if_matches_regexp", self.fail_if_matches_regexp)?,
            fail_if_all_match_regexp: list(
                "fail_if_all_match_regexp",
                self.fail_if_all_match_regexp,
            )?,
            fail_if_not_matches_regexp: list(
                "fail_if_not_matches_regexp",
                self.fail_if_not_matches_regexp,
            )?,
            fail_if_none_matches_regexp: list(
                "fail_if_none_matches_regexp",
                self.fail_if_none_matches_regexp,
            )?,
        })
    }
}

/// miekg/dns rcode names → numeric codes.
pub(crate) fn rcode_from_name(s: &str) -> Option<u16> {
    Some(match s {
        "NOERROR" => 0,
        "FORMERR" => 1,
        "SERVFAIL" => 2,
        "NXDOMAIN" => 3,
        "NOTIMP" => 4,
        "REFUSED" => 5,
        "YXDOMAIN" => 6,
        "YXRRSET" => 7,
        "NXRRSET" => 8,
        "NOTAUTH" => 9,
        "NOTZONE" => 10,
        "BADSIG" | "BADVERS" => 16,
        "BADKEY" => 17,
        "BADTIME" => 18,
        "BADMODE" => 19,
        "BADNAME" => 20,
        "BADALG" => 21,
        "BADTRUNC" => 22,
        "BADCOOKIE" => 23,
        _ => return None,
    })
}

impl RawDns {
    fn validate(self, m: &str) -> Result<DnsModule, ConfigError> {
        use std::str::FromStr;
        let query_name = match self.query_name.as_deref() {
            None | Some("") => {
                return Err(ferr(
                    m,
                    "dns.query_name",
                    "query name must be set for DNS module",
                ))
            }
            Some(q) => q.to_string(),
        };
        if self.dns_over_tls || self.tls_config.is_some() {
            return Err(ferr(
                m,
                "dns.dns_over_tls",
                "DNS over TLS is not supported by Argus probes",
            ));
        }
        if self
            .source_ip_address
            .as_deref()
            .is_some_and(|s| !s.is_empty())
        {
            return Err(ferr(
                m,
                "dns.source_ip_address",
                "not supported by Argus probes",
            ));
        }
        let transport = match self.transport_protocol.as_deref() {
            None | Some("") | Some("udp") => DnsTransport::Udp,
            Some("tcp") => DnsTransport::Tcp,
            Some(o) => {
                return Err(ferr(
                    m,
                    "dns.transport_protocol",
                    format!("expected udp or tcp, got {o:?}"),
                ))
            }
        };
        let query_type = match self.query_type.as_deref() {
            None | Some("") => hickory_proto::rr::RecordType::ANY,
            Some(t) => hickory_proto::rr::RecordType::from_str(t).map_err(|_| {
                ferr(
                    m,
                    "dns.query_type",
                    format!("query type '{t}' is not valid"),
                )
            })?,
        };
        let query_class = match self.query_class.as_deref() {
            None | Some("") => hickory_proto::rr::DNSClass::IN,
            Some(c) => hickory_proto::rr::DNSClass::from_str(c).map_err(|_| {
                ferr(
                    m,
                    "dns.query_class",
                    format!("query class '{c}' is not valid"),
                )
            })?,
        };
        let mut valid_rcodes = Vec::new();
        for r in self.valid_rcodes.unwrap_or_default() {
            valid_rcodes.push(
                rcode_from_name(&r)
                    .ok_or_else(|| ferr(m, "dns.valid_rcodes", format!("invalid rcode {r:?}")))?,
            );
        }
        Hostname::check(&query_name).map_err(|e| ferr(m, "dns.query_name", e))?;
        Ok(DnsModule {
            ip_protocol: ip_protocol(m, "dns.preferred_ip_protocol", &self.preferred_ip_protocol)?,
            ip_protocol_fallback: self.ip_protocol_fallback.unwrap_or(true),
            transport,
            query_name,
            query_type,
            query_class,
            recursion_desired: self.recursion_desired.unwrap_or(true),
            valid_rcodes,
            validate_answer: self
                .validate_answer_rrs
                .validate(m, "validate_answer_rrs")?,
            validate_authority: self
                .validate_authority_rrs
                .validate(m, "validate_authority_rrs")?,
            validate_additional: self
                .validate_additional_rrs
                .validate(m, "validate_additional_rrs")?,
        })
    }
}

struct Hostname;
impl Hostname {
    fn check(q: &str) -> Result<(), String> {
        let fq = if q.ends_with('.') {
            q.to_string()
        } else {
            format!("{q}.")
        };
        hickory_proto::rr::Name::from_utf8(&fq)
            .map(|_| ())
            .map_err(|e| format!("invalid query name {q:?}: {e}"))
    }
}

impl RawScrape {
    fn validate(self, m: &str) -> Result<ScrapeModule, ConfigError> {
        let client = self.client.validate(m, "scrape")?;
        let metrics_path = self.metrics_path.unwrap_or_else(|| "/metrics".into());
        if !metrics_path.starts_with('/') {
            return Err(ferr(m, "scrape.metrics_path", "must start with /"));
        }
        let mut headers = Vec::new();
        for (k, v) in self.headers {
            http::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| ferr(m, "scrape.headers", format!("invalid header name {k:?}")))?;
            http::HeaderValue::from_str(&v).map_err(|_| {
                ferr(
                    m,
                    "scrape.headers",
                    format!("invalid value for header {k:?}"),
                )
            })?;
            headers.push((k, v));
        }
        Ok(ScrapeModule {
            metrics_path,
            sample_limit: self.sample_limit,
            body_size_limit: match &self.body_size_limit {
                None => 10 << 20,
                Some(v) => parse_bytes(v).map_err(|e| ferr(m, "scrape.body_size_limit", e))?,
            },
            ip_protocol: ip_protocol(
                m,
                "scrape.preferred_ip_protocol",
                &self.preferred_ip_protocol,
            )?,
            ip_protocol_fallback: self.ip_protocol_fallback.unwrap_or(true),
            headers,
            client,
        })
    }
}

/// Byte sizes as alecthomas/units Base2Bytes: `1024`, `10KB`, `1MiB`, `1GB` (base 2).
pub fn parse_bytes(v: &serde_json::Value) -> Result<u64, String> {
    match v {
        serde_json::Value::Number(n) => n.as_u64().ok_or_else(|| format!("{n} is not a byte size")),
        serde_json::Value::String(s) => {
            let s = s.trim();
            let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let (num, unit) = s.split_at(split);
            let n: u64 = num
                .parse()
                .map_err(|_| format!("{s:?} is not a byte size"))?;
            let mult: u64 = match unit {
                "" | "B" => 1,
                "K" | "KB" | "KiB" => 1 << 10,
                "M" | "MB" | "MiB" => 1 << 20,
                "G" | "GB" | "GiB" => 1 << 30,
                "T" | "TB" | "TiB" => 1 << 40,
                _ => {
                    return Err(format!(
                        "{s:?} is not a byte size (units: B, KB, MB, GB, TB)"
                    ))
                }
            };
            n.checked_mul(mult)
                .ok_or_else(|| format!("{s:?} is too large"))
        }
        other => Err(format!("{other} is not a byte size")),
    }
}

/// Go's `time.ParseDuration` (the blackbox exporter's `timeout` is a `time.Duration`),
/// and beyond it a Prometheus duration (`1d`), which argus.yml users write elsewhere.
/// Both rules live in `argus_model::time`.
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    argus_model::time::parse_go_duration(s)
        .or_else(|e| argus_model::time::parse_duration(s).map_err(|_| e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load() {
        let m = Modules::defaults();
        for n in [
            "http_2xx",
            "http_post_2xx",
            "tcp_connect",
            "pop3s_banner",
            "ssh_banner",
            "irc_banner",
            "dns",
            "scrape",
        ] {
            assert!(m.get(n).is_some(), "{n}");
        }
        match &m.get("http_post_2xx").unwrap().kind {
            ProbeKind::Http(h) => {
                assert_eq!(h.method, http::Method::POST);
                assert!(h.ip_protocol_fallback);
                assert_eq!(h.ip_protocol, IpProtocol::Ip6);
                assert!(h.client.follow_redirects);
            }
            _ => panic!(),
        }
        match &m.get("irc_banner").unwrap().kind {
            ProbeKind::Tcp(t) => assert_eq!(t.query_response.len(), 4),
            _ => panic!(),
        }
    }

    #[test]
    fn user_modules_merge_over_defaults() {
        let m = load_modules("modules:\n  http_2xx:\n    prober: http\n    timeout: 3s\n    http:\n      valid_status_codes: [200, 301]\n  mine:\n    prober: tcp\n").unwrap();
        assert_eq!(
            m.get("http_2xx").unwrap().timeout,
            Some(Duration::from_secs(3))
        );
        assert!(m.get("mine").is_some());
        assert!(m.get("tcp_connect").is_some());
    }

    #[test]
    fn errors_name_module_and_field() {
        let e = load_modules("modules:\n  bad:\n    prober: http\n    http:\n      fail_if_body_matches_regexp: ['(']\n").unwrap_err().to_string();
        assert!(
            e.contains("\"bad\"")
                && e.contains("fail_if_body_matches_regexp")
                && e.contains("regular expression"),
            "{e}"
        );
        let e = load_modules("modules:\n  p:\n    prober: icmp\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"p\"") && e.contains("Lambda"), "{e}");
        let e =
            load_modules("modules:\n  u:\n    prober: http\n    http:\n      no_such_option: 1\n")
                .unwrap_err()
                .to_string();
        assert!(e.contains("\"u\"") && e.contains("no_such_option"), "{e}");
        let e = load_modules("modules:\n  d:\n    prober: dns\n    dns:\n      query_name: x\n      query_type: BOGUS\n").unwrap_err().to_string();
        assert!(e.contains("query_type") && e.contains("BOGUS"), "{e}");
        let e = load_modules("modules:\n  d:\n    prober: dns\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("query_name"), "{e}");
        let e = load_modules("modules:\n  t:\n    prober: tcp\n    tcp:\n      query_response:\n      - expect: '[z-a]'\n").unwrap_err().to_string();
        assert!(e.contains("query_response[0].expect"), "{e}");
        let e = load_modules("modules:\n  t:\n    prober: http\n    timeout: 5q\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("timeout"), "{e}");
        let e = load_modules("modules: [").unwrap_err().to_string();
        assert!(e.contains("YAML"), "{e}");
        let e = load_modules("modules:\n  c:\n    prober: http\n    http:\n      compression: gzip\n      headers:\n        Accept-Encoding: br\n").unwrap_err().to_string();
        assert!(e.contains("compression"), "{e}");
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_bytes(&serde_json::json!("1MB")).unwrap(), 1 << 20);
        assert_eq!(parse_bytes(&serde_json::json!(512)).unwrap(), 512);
        assert!(parse_bytes(&serde_json::json!("1XB")).is_err());
        assert_eq!(
            parse_go_duration("1.5s").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(parse_go_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert!(parse_go_duration("abc").is_err());
    }
}
