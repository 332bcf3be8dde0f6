//! The `http` prober (blackbox's ProbeHTTP) and the HTTP client engine it shares with
//! `scrape`: our own connector (DNS, TCP connect, TLS handshake timed separately) under
//! hyper's low-level connection API, so every phase is measured for real.

use crate::config::{ClientConfig, Compression, HttpModule};
use crate::net;
use crate::registry::Ctx;
use crate::tls::TlsFacts;
use crate::Prober;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use url::Url;

pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Timings of one round trip (one per redirect hop), as blackbox's roundTripTrace.
#[derive(Clone, Debug, Default)]
pub(crate) struct Trace {
    pub tls: bool,
    pub start: Option<Instant>,
    pub dns_done: Option<Instant>,
    pub connect_done: Option<Instant>,
    pub got_conn: Option<Instant>,
    pub response_start: Option<Instant>,
    pub end: Option<Instant>,
    pub tls_start: Option<Instant>,
    pub tls_done: Option<Instant>,
}

#[derive(Default)]
pub(crate) struct HttpState {
    pub traces: Vec<Trace>,
    pub redirects: usize,
    /// TLS facts of the connection that carried the final response.
    pub tls: Option<TlsFacts>,
}

/// Aborts the spawned connection task when the exchange is dropped (timeouts included).
pub(crate) struct ConnGuard(tokio::task::JoinHandle<()>);
impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A request as configured; `execute` follows redirects like Go's http.Client.
pub(crate) struct Exchange<'a> {
    pub method: Method,
    pub url: Url,
    /// Host header value of the first request.
    pub host_header: String,
    pub headers: &'a [(String, String)],
    pub body: Bytes,
    pub client: &'a ClientConfig,
    /// TLS server name for the first host.
    pub server_name: String,
    pub user_agent: &'a str,
}

pub(crate) struct Final {
    pub resp: Response<Incoming>,
    pub _guard: ConnGuard,
    /// Redirect not followed (Go's CheckRedirect error): body is not read.
    pub redirect_stopped: bool,
}

fn authority(u: &Url) -> String {
    let host = match u.host() {
        Some(url::Host::Ipv6(a)) => format!("[{a}]"),
        Some(h) => h.to_string(),
        None => String::new(),
    };
    match u.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    }
}

fn host_of(u: &Url) -> String {
    match u.host() {
        Some(url::Host::Ipv6(a)) => a.to_string(),
        Some(h) => h.to_string(),
        None => String::new(),
    }
}

fn auth_header(client: &ClientConfig) -> Result<Option<String>, String> {
    use base64::Engine;
    if let Some(b) = &client.basic_auth {
        let pw = match (&b.password, &b.password_file) {
            (Some(p), _) => p.clone(),
            (None, Some(f)) => std::fs::read_to_string(f)
                .map_err(|e| {
                    format!(
                        "unable to read basic auth password file {}: {e}",
                        f.display()
                    )
                })?
                .trim()
                .to_string(),
            _ => String::new(),
        };
        let enc = base64::engine::general_purpose::STANDARD.encode(format!("{}:{pw}", b.username));
        return Ok(Some(format!("Basic {enc}")));
    }
    if let Some(a) = &client.authorization {
        let cred = match (&a.credentials, &a.credentials_file) {
            (Some(c), _) => c.clone(),
            (None, Some(f)) => std::fs::read_to_string(f)
                .map_err(|e| {
                    format!(
                        "unable to read authorization credentials file {}: {e}",
                        f.display()
                    )
                })?
                .trim()
                .to_string(),
            _ => String::new(),
        };
        let kind = a
            .kind
            .as_deref()
            .filter(|k| !k.is_empty())
            .unwrap_or("Bearer");
        return Ok(Some(format!("{kind} {cred}")));
    }
    Ok(None)
}

/// Runs the request and its redirects; fills `st.traces`, `st.redirects`, `st.tls`.
pub(crate) async fn execute(
    ctx: &mut Ctx,
    p: &Prober,
    st: &mut HttpState,
    ex: Exchange<'_>,
    first_ip: IpAddr,
) -> Result<Final, String> {
    let auth = auth_header(ex.client)?;
    let first_host = authority(&ex.url);
    let mut url = ex.url.clone();
    let mut method = ex.method.clone();
    let mut body = ex.body.clone();
    let mut host_header = ex.host_header.clone();
    let mut hop = 0usize;
    loop {
        ctx.info(
            "Making HTTP request",
            &[("url", &url), ("host", &host_header)],
        );
        let mut trace = Trace {
            tls: url.scheme() == "https",
            ..Default::default()
        };
        // Address: hop 0 was resolved by chooseProtocol; later hops resolve here.
        let host = host_of(&url);
        let ip = if hop == 0 {
            let now = Instant::now();
            trace.start = Some(now);
            trace.dns_done = Some(now);
            first_ip
        } else if let Some(ip) = net::parse_ip_literal(&host) {
            let now = Instant::now();
            trace.start = Some(now);
            trace.dns_done = Some(now);
            ip
        } else {
            trace.start = Some(Instant::now());
            let ips = net::lookup(&host).await;
            trace.dns_done = Some(Instant::now());
            match ips {
                Ok(ips) => ips[0],
                Err(e) => {
                    st.traces.push(trace);
                    return Err(e);
                }
            }
        };
        st.traces.push(trace);
        net::guard(ctx, ip)?;
        let port = url.port_or_known_default().unwrap_or(80);
        let tr = st.traces.last_mut().expect("trace pushed");
        let tcp = TcpStream::connect(SocketAddr::new(ip, port))
            .await
            .map_err(|e| format!("dial tcp {}: {e}", SocketAddr::new(ip, port)))?;
        tr.connect_done = Some(Instant::now());
        let _ = tcp.set_nodelay(true);
        let (io, h2): (Box<dyn Io>, bool) = if url.scheme() == "https" {
            let built = p.tls.get(&ex.client.tls, ex.client.enable_http2)?;
            let sni = if authority(&url) == first_host {
                ex.server_name.clone()
            } else {
                host.clone()
            };
            let name = crate::tls::server_name(&sni)?;
            tr.tls_start = Some(Instant::now());
            let conn = tokio_rustls::TlsConnector::from(built.config.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| format!("tls: {e}"));
            tr.tls_done = Some(Instant::now());
            let conn = conn?;
            let (_, c) = conn.get_ref();
            st.tls = Some(TlsFacts::from_conn(c, &built));
            let h2 = c.alpn_protocol() == Some(b"h2");
            (Box::new(conn), h2)
        } else {
            st.tls = None;
            (Box::new(tcp), false)
        };
        let tr = st.traces.last_mut().expect("trace pushed");
        tr.got_conn = Some(Instant::now());

        let mut path = url.path().to_string();
        if let Some(q) = url.query() {
            path.push('?');
            path.push_str(q);
        }
        let uri = if h2 {
            format!("{}://{}{}", url.scheme(), host_header, path)
        } else {
            path
        };
        let mut req = Request::builder().method(method.clone()).uri(&uri);
        if !h2 {
            req = req.header(http::header::HOST, &host_header);
        }
        let mut has_ua = false;
        for (k, v) in ex.headers {
            if k.eq_ignore_ascii_case("host") {
                continue;
            }
            has_ua |= k.eq_ignore_ascii_case("user-agent");
            req = req.header(k.as_str(), v.as_str());
        }
        if !has_ua {
            req = req.header(http::header::USER_AGENT, ex.user_agent);
        }
        if let Some(a) = &auth {
            req = req.header(http::header::AUTHORIZATION, a.as_str());
        }
        if !body.is_empty() {
            req = req.header(http::header::CONTENT_LENGTH, body.len());
        }
        if !h2 {
            req = req.header(http::header::CONNECTION, "close");
        }
        let req = req
            .body(Full::new(body.clone()))
            .map_err(|e| format!("invalid request: {e}"))?;

        let (resp, guard) = if h2 {
            let (mut send, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
                    .await
                    .map_err(|e| format!("http2 handshake: {e}"))?;
            let guard = ConnGuard(tokio::spawn(async move {
                let _ = conn.await;
            }));
            (
                send.send_request(req).await.map_err(|e| e.to_string())?,
                guard,
            )
        } else {
            let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
                .await
                .map_err(|e| format!("http handshake: {e}"))?;
            let guard = ConnGuard(tokio::spawn(async move {
                let _ = conn.await;
            }));
            (
                send.send_request(req).await.map_err(|e| e.to_string())?,
                guard,
            )
        };
        st.traces.last_mut().expect("trace pushed").response_start = Some(Instant::now());
        ctx.info(
            "Received HTTP response",
            &[("status_code", &resp.status().as_u16())],
        );

        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let is_redirect = matches!(status, 301 | 302 | 303 | 307 | 308);
        let Some(location) = location.filter(|_| is_redirect) else {
            return Ok(Final {
                resp,
                _guard: guard,
                redirect_stopped: false,
            });
        };
        ctx.info("Received redirect", &[("location", &location)]);
        st.redirects = hop + 1;
        if st.redirects > 10 || !ex.client.follow_redirects {
            ctx.info("Not following redirect", &[]);
            ctx.reason(format!("redirect to {location:?} not followed (follow_redirects: false or more than 10 redirects)"));
            return Ok(Final {
                resp,
                _guard: guard,
                redirect_stopped: true,
            });
        }
        let next = url
            .join(&location)
            .map_err(|e| format!("failed to parse Location header {location:?}: {e}"))?;
        if next.scheme() != "http" && next.scheme() != "https" {
            return Err(format!(
                "redirect to unsupported protocol scheme {:?}",
                next.scheme()
            ));
        }
        let relative = Url::parse(&location).is_err();
        host_header = if relative && host_header != authority(&url) {
            host_header
        } else {
            authority(&next)
        };
        if (301..=303).contains(&status) && method != Method::GET && method != Method::HEAD {
            method = Method::GET;
            body = Bytes::new();
        }
        drop(resp);
        drop(guard);
        url = next;
        hop += 1;
    }
}

/// Where decompressed body bytes go: counts, enforces the limit, optionally keeps them.
pub(crate) struct Sink {
    pub count: u64,
    pub limit: u64,
    pub keep: bool,
    pub buf: Vec<u8>,
    pub exceeded: bool,
}

impl Write for Sink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut n = data.len();
        if self.limit > 0 && self.count + n as u64 > self.limit {
            n = (self.limit - self.count) as usize;
            self.exceeded = true;
        }
        self.count += n as u64;
        if self.keep {
            self.buf.extend_from_slice(&data[..n]);
        }
        if self.exceeded {
            return Err(std::io::Error::other(format!(
                "http: response body too large (limit {} bytes)",
                self.limit
            )));
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

enum Decoder {
    Identity(Sink),
    Gzip(flate2::write::GzDecoder<Sink>),
    Deflate(flate2::write::DeflateDecoder<Sink>),
    Br(Box<brotli_decompressor::DecompressorWriter<Sink>>),
}

impl Decoder {
    fn write_all(&mut self, d: &[u8]) -> std::io::Result<()> {
        match self {
            Decoder::Identity(s) => s.write_all(d),
            Decoder::Gzip(g) => g.write_all(d),
            Decoder::Deflate(g) => g.write_all(d),
            Decoder::Br(b) => b.write_all(d),
        }
    }
    fn sink(&self) -> &Sink {
        match self {
            Decoder::Identity(s) => s,
            Decoder::Gzip(g) => g.get_ref(),
            Decoder::Deflate(g) => g.get_ref(),
            Decoder::Br(b) => b.get_ref(),
        }
    }
    fn finish(self) -> (Sink, Option<String>) {
        match self {
            Decoder::Identity(s) => (s, None),
            Decoder::Gzip(g) => match g.finish() {
                Ok(s) => (s, None),
                Err(e) => (
                    Sink {
                        count: 0,
                        limit: 0,
                        keep: false,
                        buf: Vec::new(),
                        exceeded: false,
                    },
                    Some(e.to_string()),
                ),
            },
            Decoder::Deflate(g) => match g.finish() {
                Ok(s) => (s, None),
                Err(e) => (
                    Sink {
                        count: 0,
                        limit: 0,
                        keep: false,
                        buf: Vec::new(),
                        exceeded: false,
                    },
                    Some(e.to_string()),
                ),
            },
            Decoder::Br(mut b) => {
                let err = b.close().err().map(|e| e.to_string());
                match b.into_inner() {
                    Ok(s) => (s, err),
                    Err(s) => (
                        s,
                        Some(err.unwrap_or_else(|| "brotli: unexpected end of stream".into())),
                    ),
                }
            }
        }
    }
}

pub(crate) struct BodyResult {
    pub bytes: u64,
    pub kept: Vec<u8>,
    pub error: Option<String>,
    pub exceeded: bool,
}

/// Reads the whole body through the decoder; never holds more than `limit` bytes.
pub(crate) async fn read_body(
    mut body: Incoming,
    compression: Option<Compression>,
    limit: u64,
    keep: bool,
) -> BodyResult {
    let sink = Sink {
        count: 0,
        limit,
        keep,
        buf: Vec::new(),
        exceeded: false,
    };
    let mut dec = match compression {
        None | Some(Compression::Identity) => Decoder::Identity(sink),
        Some(Compression::Gzip) => Decoder::Gzip(flate2::write::GzDecoder::new(sink)),
        Some(Compression::Deflate) => Decoder::Deflate(flate2::write::DeflateDecoder::new(sink)),
        Some(Compression::Br) => Decoder::Br(Box::new(
            brotli_decompressor::DecompressorWriter::new(sink, 4096),
        )),
    };
    let mut error = None;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Ok(data) = f.into_data() {
                    if let Err(e) = dec.write_all(&data) {
                        error = Some(e.to_string());
                        break;
                    }
                }
            }
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    let exceeded = dec.sink().exceeded;
    let count = dec.sink().count;
    if error.is_some() {
        let kept = if keep {
            dec.sink().buf.clone()
        } else {
            Vec::new()
        };
        return BodyResult {
            bytes: count,
            kept,
            error,
            exceeded,
        };
    }
    let (sink, err) = dec.finish();
    BodyResult {
        bytes: sink.count.max(count),
        kept: sink.buf,
        error: err,
        exceeded: sink.exceeded,
    }
}

fn version_number(v: Version) -> (f64, &'static str) {
    match v {
        Version::HTTP_09 => (0.9, "HTTP/0.9"),
        Version::HTTP_10 => (1.0, "HTTP/1.0"),
        Version::HTTP_11 => (1.1, "HTTP/1.1"),
        Version::HTTP_2 => (2.0, "HTTP/2.0"),
        Version::HTTP_3 => (3.0, "HTTP/3.0"),
        _ => (0.0, "unknown"),
    }
}

fn header_values<'a>(h: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    h.get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap_or(""))
        .collect()
}

/// A configured request header's value (names compare case-insensitively).
pub(crate) fn header(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

fn match_headers(ctx: &mut Ctx, h: &HeaderMap, m: &HttpModule) -> bool {
    for spec in &m.fail_if_header_matches {
        let values = header_values(h, &spec.header);
        if values.is_empty() {
            if !spec.allow_missing {
                ctx.error("Missing required header", &[("header", &spec.header)]);
                return false;
            }
            continue;
        }
        if values.iter().any(|v| spec.regexp.is_match(v)) {
            ctx.error(
                "Header matched regular expression",
                &[
                    ("header", &spec.header),
                    ("regexp", &spec.regexp),
                    ("value_count", &values.len()),
                ],
            );
            return false;
        }
    }
    for spec in &m.fail_if_header_not_matches {
        let values = header_values(h, &spec.header);
        if values.is_empty() {
            if !spec.allow_missing {
                ctx.error("Missing required header", &[("header", &spec.header)]);
                return false;
            }
            continue;
        }
        if !values.iter().any(|v| spec.regexp.is_match(v)) {
            ctx.error(
                "Header did not match regular expression",
                &[
                    ("header", &spec.header),
                    ("regexp", &spec.regexp),
                    ("value_count", &values.len()),
                ],
            );
            return false;
        }
    }
    true
}

/// Largest body kept for body regexps when the module sets no `body_size_limit`.
pub(crate) const REGEX_BODY_CAP: u64 = 32 << 20;

const DURATION_HELP: &str = "Duration of http request by phase, summed over all redirects";

/// blackbox's ProbeHTTP. `deadline` bounds everything; metrics are complete on timeout.
pub(crate) async fn probe_http(
    ctx: &mut Ctx,
    p: &Prober,
    target: &str,
    m: &HttpModule,
    deadline: tokio::time::Instant,
) -> bool {
    let r = &mut ctx.reg;
    r.vec("probe_http_duration_seconds", DURATION_HELP);
    r.gauge(
        "probe_http_content_length",
        "Length of http content response",
    );
    r.gauge(
        "probe_http_uncompressed_body_length",
        "Length of uncompressed response body",
    );
    r.gauge("probe_http_redirects", "The number of redirects");
    r.gauge(
        "probe_http_ssl",
        "Indicates if SSL was used for the final redirect",
    );
    r.gauge("probe_http_status_code", "Response HTTP status code");
    r.gauge(
        "probe_http_version",
        "Returns the version of HTTP of the probe response",
    );
    r.gauge(
        "probe_failed_due_to_regex",
        "Indicates if probe failed due to regex",
    );

    let mut st = HttpState::default();
    let mut out = Outcome::default();
    let success =
        match tokio::time::timeout_at(deadline, run_http(ctx, p, target, m, &mut st, &mut out))
            .await
        {
            Ok(s) => s,
            Err(_) => {
                ctx.error(
                    "Error for HTTP request",
                    &[("err", &"context deadline exceeded (probe timeout)")],
                );
                false
            }
        };
    finish(ctx, &st, m, success, &out)
}

#[derive(Default)]
struct Outcome {
    status: u16,
    content_length: i64,
    body_bytes: u64,
}

fn finish(ctx: &mut Ctx, st: &HttpState, m: &HttpModule, mut success: bool, out: &Outcome) -> bool {
    for (i, t) in st.traces.iter().enumerate() {
        let secs = |a: Option<Instant>, b: Option<Instant>| match (a, b) {
            (Some(a), Some(b)) => b.saturating_duration_since(a).as_secs_f64(),
            _ => 0.0,
        };
        if i != 0 {
            add_phase(ctx, "resolve", secs(t.start, t.dns_done));
        }
        if t.got_conn.is_none() {
            continue;
        }
        if t.tls {
            add_phase(ctx, "connect", secs(t.dns_done, t.connect_done));
            add_phase(ctx, "tls", secs(t.tls_start, t.tls_done));
        } else {
            add_phase(ctx, "connect", secs(t.dns_done, t.got_conn));
        }
        if t.response_start.is_none() {
            continue;
        }
        add_phase(ctx, "processing", secs(t.got_conn, t.response_start));
        if t.end.is_none() {
            continue;
        }
        add_phase(ctx, "transfer", secs(t.response_start, t.end));
    }
    if let Some(tls) = &st.tls {
        ctx.reg.set("probe_http_ssl", 1.0);
        tls.record(ctx);
        if m.fail_if_ssl {
            ctx.error("Final request was over SSL", &[]);
            success = false;
        }
    } else if m.fail_if_not_ssl {
        ctx.error("Final request was not over SSL", &[]);
        success = false;
    }
    ctx.reg.set("probe_http_status_code", out.status as f64);
    ctx.reg
        .set("probe_http_content_length", out.content_length as f64);
    ctx.reg
        .set("probe_http_uncompressed_body_length", out.body_bytes as f64);
    ctx.reg.set("probe_http_redirects", st.redirects as f64);
    success
}

fn add_phase(ctx: &mut Ctx, phase: &'static str, v: f64) {
    ctx.reg
        .add_l("probe_http_duration_seconds", &[("phase", phase)], v);
}

/// Parses an http/https target; a bare `host[:port]/path` gets `http://`.
pub(crate) fn parse_target(target: &str) -> Result<Url, String> {
    let t = target.trim();
    let with_scheme = if t.starts_with("http://") || t.starts_with("https://") {
        t.to_string()
    } else if let Some((scheme, _)) = t.split_once("://") {
        return Err(format!("unsupported URL scheme {scheme:?} in target {t:?}: the http prober speaks http and https"));
    } else {
        format!("http://{t}")
    };
    let url = Url::parse(&with_scheme).map_err(|e| format!("invalid target URL {t:?}: {e}"))?;
    if url.host().is_none() {
        return Err(format!("invalid target URL {t:?}: no host"));
    }
    Ok(url)
}

async fn run_http(
    ctx: &mut Ctx,
    p: &Prober,
    target: &str,
    m: &HttpModule,
    st: &mut HttpState,
    out: &mut Outcome,
) -> bool {
    let mut url = match parse_target(target) {
        Ok(u) => u,
        Err(e) => {
            ctx.error("Could not parse target URL", &[("err", &e)]);
            return false;
        }
    };
    let orig_host = host_of(&url);
    let orig_authority = authority(&url);
    let (ip, lookup) =
        net::choose_protocol(ctx, m.ip_protocol, m.ip_protocol_fallback, &orig_host).await;
    add_phase(ctx, "resolve", lookup);
    let ip = match ip {
        Ok(ip) => ip,
        Err(e) => {
            ctx.error("Error resolving address", &[("err", &e)]);
            return false;
        }
    };
    let host_override = header(&m.headers, "host");
    let server_name = m
        .client
        .tls
        .server_name
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| host_override.clone())
        .unwrap_or_else(|| orig_host.clone());
    // Replace the host with the resolved IP, as blackbox does.
    let set = match ip {
        IpAddr::V4(a) => url.set_ip_host(IpAddr::V4(a)),
        IpAddr::V6(a) => url.set_ip_host(IpAddr::V6(a)),
    };
    if set.is_err() {
        ctx.error("Error creating request", &[("err", &"cannot set host")]);
        return false;
    }
    for phase in ["connect", "tls", "processing", "transfer"] {
        add_phase(ctx, phase, 0.0);
    }
    let ex = Exchange {
        method: m.method.clone(),
        url,
        host_header: host_override.unwrap_or(orig_authority),
        headers: &m.headers,
        body: Bytes::from(m.body.clone()),
        client: &m.client,
        server_name,
        user_agent: &p.user_agent,
    };
    let fin = match execute(ctx, p, st, ex, ip).await {
        Ok(f) => f,
        Err(e) => {
            ctx.error("Error for HTTP request", &[("err", &e)]);
            return false;
        }
    };
    let resp = fin.resp;
    let status = resp.status().as_u16();
    out.status = status;
    let mut success = if !m.valid_status_codes.is_empty() {
        let ok = m.valid_status_codes.contains(&status);
        if !ok {
            let codes = format!("{:?}", m.valid_status_codes);
            ctx.info(
                "Invalid HTTP response status code",
                &[("status_code", &status), ("valid_status_codes", &codes)],
            );
            ctx.reason(format!(
                "invalid HTTP response status code {status} (valid: {codes})"
            ));
        }
        ok
    } else if (200..300).contains(&status) {
        true
    } else {
        ctx.info(
            "Invalid HTTP response status code, wanted 2xx",
            &[("status_code", &status)],
        );
        ctx.reason(format!(
            "invalid HTTP response status code {status}, wanted 2xx"
        ));
        false
    };
    if success && (!m.fail_if_header_matches.is_empty() || !m.fail_if_header_not_matches.is_empty())
    {
        success = match_headers(ctx, resp.headers(), m);
        ctx.reg
            .set("probe_failed_due_to_regex", if success { 0.0 } else { 1.0 });
    }
    let no_body =
        m.method == Method::HEAD || status == 204 || status == 304 || (100..200).contains(&status);
    out.content_length = match resp
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
    {
        Some(n) => n,
        None if no_body => 0,
        None => -1,
    };
    let last_modified = resp
        .headers()
        .get(http::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    let (version_num, proto) = version_number(resp.version());
    let regex_needed = success
        && (!m.fail_if_body_matches_regexp.is_empty()
            || !m.fail_if_body_not_matches_regexp.is_empty());
    if !fin.redirect_stopped {
        let body = resp.into_body();
        // Regexps need the whole body in memory: without a configured limit, cap it so a
        // huge response cannot exhaust a Lambda's memory (blackbox has no such cap).
        let limit = if regex_needed && m.body_size_limit == 0 {
            REGEX_BODY_CAP
        } else {
            m.body_size_limit
        };
        let res = read_body(body, m.compression, limit, regex_needed).await;
        if regex_needed {
            if res.error.is_some() {
                ctx.error(
                    "Error reading HTTP body",
                    &[("err", &res.error.as_deref().unwrap_or(""))],
                );
                success = false;
            } else {
                success = match_body(ctx, &res.kept, m);
            }
            ctx.reg
                .set("probe_failed_due_to_regex", if success { 0.0 } else { 1.0 });
        }
        if let Some(e) = &res.error {
            ctx.info("Failed to read HTTP response body", &[("err", e)]);
            ctx.reason(format!("failed to read HTTP response body: {e}"));
            success = false;
        }
        out.body_bytes = res.bytes;
    } else if regex_needed {
        // Go reads the (already closed) body: nothing matches.
        success = match_body(ctx, &[], m);
        ctx.reg
            .set("probe_failed_due_to_regex", if success { 0.0 } else { 1.0 });
    }
    if let Some(t) = st.traces.last_mut() {
        t.end = Some(Instant::now());
    }
    if let Some(lm) = last_modified {
        ctx.reg.gauge(
            "probe_http_last_modified_timestamp_seconds",
            "Returns the Last-Modified HTTP response header in unixtime",
        );
        ctx.reg.set(
            "probe_http_last_modified_timestamp_seconds",
            lm.as_secs() as f64,
        );
    }
    ctx.reg.set("probe_http_version", version_num);
    if !m.valid_http_versions.is_empty() && !m.valid_http_versions.iter().any(|v| v == proto) {
        ctx.error("Invalid HTTP version number", &[("version", &proto)]);
        success = false;
    }
    success
}

fn match_body(ctx: &mut Ctx, body: &[u8], m: &HttpModule) -> bool {
    for re in &m.fail_if_body_matches_regexp {
        if re.is_match(body) {
            ctx.error("Body matched regular expression", &[("regexp", re)]);
            return false;
        }
    }
    for re in &m.fail_if_body_not_matches_regexp {
        if !re.is_match(body) {
            ctx.error("Body did not match regular expression", &[("regexp", re)]);
            return false;
        }
    }
    true
}
