//! Local targets for the probe tests and the benchmark: one HTTP server (plain and TLS,
//! same routes), a TCP banner server, a UDP DNS server, and a raw HTTP GET helper.
#![allow(dead_code)]

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

pub const LAST_MODIFIED: &str = "Wed, 21 Oct 2026 07:28:00 GMT";
pub const METRICS: &str = "# HELP app_requests_total Requests.\n# TYPE app_requests_total counter\napp_requests_total{code=\"200\"} 10\napp_requests_total{code=\"500\"} 2\n# TYPE app_latency histogram\napp_latency_bucket{le=\"0.1\"} 3\napp_latency_bucket{le=\"+Inf\"} 5\napp_latency_sum 1.5\napp_latency_count 5\nwebsocket_messages_total 42\n";

fn resp(status: u16, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap();
    r
}

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let r = match parts.as_slice() {
        ["ok"] | [""] => {
            let mut r = resp(200, "hello world");
            r.headers_mut()
                .insert("last-modified", LAST_MODIFIED.parse().unwrap());
            r.headers_mut().insert("x-argus", "yes".parse().unwrap());
            r
        }
        ["notfound"] => resp(404, "not found"),
        ["redirect", n] => {
            let n: u32 = n.parse().unwrap_or(0);
            let mut r = resp(302, "");
            let loc = if n <= 1 {
                "/ok".to_string()
            } else {
                format!("/redirect/{}", n - 1)
            };
            r.headers_mut().insert("location", loc.parse().unwrap());
            r
        }
        ["delay", ms] => {
            let ms: u64 = ms.parse().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            resp(200, "late hello")
        }
        ["hang"] => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            resp(200, "")
        }
        ["big"] => resp(200, vec![b'x'; 100_000]),
        ["gzip"] => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(b"hello compressed world, hello compressed world")
                .unwrap();
            let mut r = resp(200, e.finish().unwrap());
            r.headers_mut()
                .insert("content-encoding", "gzip".parse().unwrap());
            r
        }
        ["metrics"] => {
            let mut r = resp(200, METRICS);
            r.headers_mut()
                .insert("content-type", "text/plain; version=0.0.4".parse().unwrap());
            r
        }
        ["garbage"] => resp(200, "this is { not an exposition\n"),
        ["echo-method"] => resp(200, req.method().to_string()),
        ["auth"] => {
            let a = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            // "Basic dXNlcjpwYXNz" = user:pass
            if a == "Bearer s3cret" || a == "Basic dXNlcjpwYXNz" {
                resp(200, "welcome")
            } else {
                resp(401, "who are you")
            }
        }
        _ => resp(404, "no route"),
    };
    Ok(r)
}

/// Listens on a free loopback port and runs `conn` on each accepted connection in a
/// task of its own.
async fn serve_each<F, Fut>(conn: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            tokio::spawn(conn(s));
        }
    });
    addr
}

/// [`serve_each`] behind a TLS handshake (failed handshakes are dropped).
async fn serve_each_tls<F, Fut>(acceptor: tokio_rustls::TlsAcceptor, conn: F) -> SocketAddr
where
    F: Fn(tokio_rustls::server::TlsStream<TcpStream>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let conn = Arc::new(conn);
    serve_each(move |s| {
        let (acceptor, conn) = (acceptor.clone(), conn.clone());
        async move {
            if let Ok(tls) = acceptor.accept(s).await {
                conn(tls).await;
            }
        }
    })
    .await
}

/// Plain HTTP server on 127.0.0.1; returns its base URL.
pub async fn http_server() -> String {
    let addr = serve_each(|s| async move {
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(s), service_fn(handle))
            .await;
    })
    .await;
    format!("http://{addr}")
}

pub struct Pki {
    pub ca_file: PathBuf,
    pub ca_pem: String,
    pub leaf_not_after: i64,
    pub ca_not_after: i64,
    pub server: Arc<rustls::ServerConfig>,
    _dir: tempfile::TempDir,
}

/// A CA (valid 3650 days) and a leaf for localhost/127.0.0.1 expiring in `leaf_days`.
pub fn pki(leaf_days: i64) -> Pki {
    let at = |days: i64| {
        let d = chrono::Utc::now().date_naive() + chrono::Duration::days(days);
        use chrono::Datelike;
        let t = rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8);
        (t, d.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp())
    };
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name = rcgen::DistinguishedName::new();
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Argus Test CA");
    ca_params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Argus");
    let (ca_na, ca_ts) = at(3650);
    ca_params.not_after = ca_na;
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let mut p =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    p.distinguished_name
        .push(rcgen::DnType::OrganizationName, "Argus Tests, Inc.");
    let (na, ts) = at(leaf_days);
    p.not_after = na;
    let leaf = p.signed_by(&leaf_key, &issuer).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    Pki {
        ca_file,
        ca_pem: ca_cert.pem(),
        leaf_not_after: ts,
        ca_not_after: ca_ts,
        server: Arc::new(server),
        _dir: dir,
    }
}

/// The same routes over TLS (HTTP/1.1 only); returns `https://127.0.0.1:port`.
pub async fn https_server(pki: &Pki) -> String {
    let acceptor = tokio_rustls::TlsAcceptor::from(pki.server.clone());
    let addr = serve_each_tls(acceptor, |tls| async move {
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(tls), service_fn(handle))
            .await;
    })
    .await;
    format!("https://{addr}")
}

/// Raw TLS listener (for the tcp prober with `tls: true`): sends a banner line.
pub async fn tls_banner_server(pki: &Pki, banner: &'static str) -> SocketAddr {
    let acceptor = tokio_rustls::TlsAcceptor::from(pki.server.clone());
    serve_each_tls(acceptor, move |mut tls| async move {
        let _ = tls.write_all(banner.as_bytes()).await;
        let _ = tls.flush().await;
        let mut buf = [0u8; 256];
        let _ = tokio::time::timeout(Duration::from_secs(2), tls.read(&mut buf)).await;
    })
    .await
}

/// TCP server that sends `banner`, then reads one line.
pub async fn banner_server(banner: &'static str) -> SocketAddr {
    serve_each(move |s| async move {
        let (r, mut w) = s.into_split();
        let _ = w.write_all(banner.as_bytes()).await;
        let mut line = String::new();
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            BufReader::new(r).read_line(&mut line),
        )
        .await;
    })
    .await
}

/// IRC-like server: reads NICK and USER, sends `PING :tok42`, answers `PONG tok42`
/// with a 001 welcome.
pub async fn irc_server() -> SocketAddr {
    serve_each(|s| async move {
        let (r, mut w) = s.into_split();
        let mut r = BufReader::new(r);
        let mut line = String::new();
        for _ in 0..2 {
            line.clear();
            if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
        }
        let _ = w
            .write_all(b":irc.test NOTICE * :hello\r\nPING :tok42\r\n")
            .await;
        line.clear();
        let _ = r.read_line(&mut line).await;
        if line.trim_end() == "PONG tok42" {
            let _ = w.write_all(b":irc.test 001 prober :Welcome\r\n").await;
        }
    })
    .await
}

/// A port where nothing listens.
pub fn refused_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    a
}

fn dns_answer(query: &[u8]) -> Option<Vec<u8>> {
    use hickory_proto::op::{Message, ResponseCode};
    use hickory_proto::rr::{rdata::A, Name, RData, Record, RecordType};
    let q = Message::from_vec(query).ok()?;
    let mut r = Message::response(q.metadata.id, q.metadata.op_code);
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    r.metadata.authoritative = true;
    let name = Name::from_ascii("example.test.").unwrap();
    if let Some(query) = q.queries.first() {
        r.add_query(query.clone());
        if query.name() == &name && matches!(query.query_type(), RecordType::A | RecordType::ANY) {
            r.add_answer(Record::from_rdata(
                name.clone(),
                300,
                RData::A(A(std::net::Ipv4Addr::new(127, 0, 0, 1))),
            ));
            r.add_answer(Record::from_rdata(
                name,
                300,
                RData::A(A(std::net::Ipv4Addr::new(127, 0, 0, 2))),
            ));
        } else if query.name() != &name {
            r.metadata.response_code = ResponseCode::NXDomain;
        }
    }
    r.to_vec().ok()
}

/// Tiny authoritative DNS server on UDP and TCP (same port): `example.test. A
/// 127.0.0.1, 127.0.0.2`, NXDOMAIN for other names.
pub async fn dns_server() -> SocketAddr {
    let (sock, tcp) = loop {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        if let Ok(t) = TcpListener::bind(sock.local_addr().unwrap()).await {
            break (sock, t);
        }
    };
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                continue;
            };
            if let Some(wire) = dns_answer(&buf[..n]) {
                let _ = sock.send_to(&wire, peer).await;
            }
        }
    });
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = tcp.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut len = [0u8; 2];
                if s.read_exact(&mut len).await.is_err() {
                    return;
                }
                let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
                if s.read_exact(&mut q).await.is_err() {
                    return;
                }
                if let Some(wire) = dns_answer(&q) {
                    let mut out = (wire.len() as u16).to_be_bytes().to_vec();
                    out.extend(wire);
                    let _ = s.write_all(&out).await;
                }
            });
        }
    });
    addr
}

/// The same routes over TLS offering ALPN h2 and http/1.1 (HTTP/2 when negotiated).
pub async fn https_h2_server(pki: &Pki) -> String {
    let mut cfg = (*pki.server).clone();
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let addr = serve_each_tls(acceptor, |tls| async move {
        let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
            .serve_connection(TokioIo::new(tls), service_fn(handle))
            .await;
    })
    .await;
    format!("https://{addr}")
}

/// GET over HTTP/1.0 (no chunking), returns (status, body).
pub async fn get(addr: SocketAddr, path_and_query: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path_and_query} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// name → (labels → value) from exposition text.
pub fn samples(text: &str) -> BTreeMap<String, BTreeMap<String, f64>> {
    let fams =
        argus_expfmt::parse_text(text).unwrap_or_else(|e| panic!("bad exposition {e:?}:\n{text}"));
    let mut out = BTreeMap::new();
    for f in &fams {
        let m: &mut BTreeMap<String, f64> = out.entry(f.name.clone()).or_default();
        for (labels, v) in argus_expfmt::series(f) {
            let l: Vec<String> = labels
                .iter()
                .filter(|(k, _)| *k != "__name__")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            m.insert(l.join(","), v);
        }
    }
    out
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
