//! The sender against a local recording receiver (axum on 127.0.0.1): request shape,
//! auth headers, Prometheus's retry rules (5xx and opt-in 429 retried, other 4xx dropped
//! and counted), the bounded backlog kept in the store, SigV4 signatures recomputed.

use argus_model::{Item, Kv, Labels, Table};
use argus_remote_write::{proto, RemoteWriteConfig, RemoteWriter, BACKLOG_PK_PREFIX};
use axum::http::{HeaderMap, StatusCode};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// A received request: headers, body, the status it was answered with.
type Received = (HeaderMap, Vec<u8>, u16);

#[derive(Clone, Default)]
struct Recorder {
    /// Status codes to answer with, in order; 204 once exhausted.
    script: Arc<Mutex<VecDeque<u16>>>,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Recorder {
    fn script(&self, codes: &[u16]) {
        *self.script.lock().unwrap() = codes.iter().copied().collect();
    }
    fn requests(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
    /// Sample values the receiver accepted (answered 2xx), in arrival order.
    fn accepted(&self) -> Vec<(String, i64, f64)> {
        let mut out = Vec::new();
        for (_, body, status) in self.requests() {
            if status / 100 != 2 {
                continue;
            }
            for ts in proto::decode(&body).unwrap().timeseries {
                let name = ts.labels().name().unwrap_or("").to_string();
                for s in ts.samples {
                    out.push((name.clone(), s.timestamp, s.value));
                }
            }
        }
        out
    }
}

async fn receiver() -> (Recorder, String) {
    let rec = Recorder::default();
    let r = rec.clone();
    let app = axum::Router::new().route(
        "/api/v1/write",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let r = r.clone();
            async move {
                let code = r.script.lock().unwrap().pop_front().unwrap_or(204);
                r.got.lock().unwrap().push((headers, body.to_vec(), code));
                (
                    StatusCode::from_u16(code).unwrap(),
                    "scripted answer\nsecond line",
                )
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/v1/write", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (rec, url)
}

fn cfg(yaml: &str) -> Vec<RemoteWriteConfig> {
    let c: Vec<RemoteWriteConfig> = serde_saphyr::from_str(yaml).unwrap();
    argus_remote_write::validate_all(&c).unwrap();
    c
}

fn samples(n: usize, v: f64) -> Vec<(Labels, f64)> {
    (0..n)
        .map(|i| {
            (
                Labels::from_pairs([("__name__", format!("m{i}")), ("job", "t".into())]),
                v,
            )
        })
        .collect()
}

async fn writer(kv: Arc<dyn Kv>, yaml: &str) -> RemoteWriter {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw"), "s3cret\n").unwrap();
    RemoteWriter::build(
        kv,
        &cfg(yaml),
        &[("region".into(), "eu".into())],
        dir.path(),
        None,
    )
    .await
    .unwrap()
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(2)
}

#[tokio::test]
async fn request_shape_headers_and_auth() {
    let (rec, url) = receiver().await;
    let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open_temp().unwrap());
    let w = writer(
        kv,
        &format!(
            "- url: {url}\n  headers: {{X-Scope-OrgID: team-a}}\n  basic_auth: {{username: u, password_file: pw}}\n  queue_config: {{max_samples_per_send: 3}}\n"
        ),
    )
    .await;
    let mut s = samples(7, 1.5);
    // A series' own label wins over the external label.
    s[0].0.set("region", "own");
    let rep = w.send_tick(1_000, &s, deadline()).await;
    assert_eq!(rep[0].sent, 7, "{:?}", rep[0]);
    let reqs = rec.requests();
    assert_eq!(reqs.len(), 3, "7 samples in batches of 3");
    let (h, body, _) = &reqs[0];
    assert_eq!(h["content-encoding"], "snappy");
    assert_eq!(h["content-type"], "application/x-protobuf");
    assert_eq!(h["x-prometheus-remote-write-version"], "0.1.0");
    assert!(h["user-agent"].to_str().unwrap().starts_with("Argus/"));
    assert_eq!(h["x-scope-orgid"], "team-a");
    // base64("u:s3cret"), the password file trimmed as Prometheus trims it.
    assert_eq!(h["authorization"], "Basic dTpzM2NyZXQ=");
    let req = proto::decode(body).unwrap();
    let first = req.timeseries[0].labels();
    assert_eq!(first.get("region"), Some("own"));
    assert_eq!(req.timeseries[1].labels().get("region"), Some("eu"));
    assert_eq!(req.timeseries[0].samples[0].timestamp, 1_000);
    assert_eq!(req.timeseries[0].samples[0].value, 1.5);
    // Bearer via `authorization`.
    let (rec2, url2) = receiver().await;
    let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open_temp().unwrap());
    let w = writer(
        kv,
        &format!("- url: {url2}\n  authorization: {{credentials: tok}}\n"),
    )
    .await;
    w.send_tick(1_000, &samples(1, 1.0), deadline()).await;
    assert_eq!(rec2.requests()[0].0["authorization"], "Bearer tok");
}

#[tokio::test]
async fn retries_drops_and_staleness() {
    let (rec, url) = receiver().await;
    let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open_temp().unwrap());
    let w = writer(
        kv.clone(),
        &format!(
            "- url: {url}\n  name: q\n  queue_config: {{min_backoff: 1ms, max_backoff: 4ms}}\n"
        ),
    )
    .await;
    // 5xx twice, then accepted: sent once, two retries.
    rec.script(&[503, 500]);
    let rep = w.send_tick(1_000, &samples(2, 1.0), deadline()).await;
    assert_eq!(
        (rep[0].sent, rep[0].retries, rep[0].requests),
        (2, 2, 3),
        "{:?}",
        rep[0]
    );
    // 400: dropped and counted, not retried, not kept.
    rec.script(&[400]);
    let rep = w.send_tick(2_000, &samples(2, 2.0), deadline()).await;
    assert_eq!(
        (
            rep[0].sent,
            rep[0].rejected,
            rep[0].requests,
            rep[0].backlog
        ),
        (0, 2, 1, 0)
    );
    assert!(
        rep[0].errors[0].contains("400 Bad Request: scripted answer"),
        "{:?}",
        rep[0].errors
    );
    // 429 without retry_on_http_429 is a 4xx like the others.
    rec.script(&[429]);
    let rep = w.send_tick(3_000, &samples(2, 3.0), deadline()).await;
    assert_eq!((rep[0].rejected, rep[0].requests), (2, 1));
    // One series vanishes: a staleness marker follows it.
    let rep = w.send_tick(4_000, &samples(1, 4.0), deadline()).await;
    assert_eq!(rep[0].sent, 2);
    let acc = rec.accepted();
    let stale: Vec<_> = acc
        .iter()
        .filter(|(_, t, v)| *t == 4_000 && v.to_bits() == 0x7ff0000000000002)
        .collect();
    assert_eq!(stale.len(), 1, "{acc:?}");
    assert_eq!(stale[0].0, "m1");
    assert!(kv
        .query(Table::Results, "remote_write#q", None)
        .await
        .unwrap()
        .is_empty());

    // With retry_on_http_429, a 429 is retried.
    let (rec, url) = receiver().await;
    let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open_temp().unwrap());
    let w = writer(
        kv,
        &format!("- url: {url}\n  queue_config: {{min_backoff: 1ms, retry_on_http_429: true}}\n"),
    )
    .await;
    rec.script(&[429]);
    let rep = w.send_tick(1_000, &samples(2, 1.0), deadline()).await;
    assert_eq!((rep[0].sent, rep[0].retries), (2, 1));
}

#[tokio::test]
async fn backlog_is_kept_in_order_bounded_and_sent_once() {
    backlog_contract(Arc::new(argus_store::EmbeddedKv::open_temp().unwrap())).await;
}

/// The same on DynamoDB (moto), through the tables `argus bootstrap` creates.
#[tokio::test]
async fn backlog_on_dynamodb() {
    let moto = argus_testkit::moto();
    let conf = argus_store::aws_sdk_config_for(Some(&moto.url()))
        .await
        .into_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new("testing", "testing", None, None, "t"),
            ),
        )
        .region(aws_config::Region::new("us-east-1"))
        .build();
    argus_store::bootstrap(&conf, "rw-", &mut |_: &str| {})
        .await
        .unwrap();
    backlog_contract(Arc::new(argus_store::DynamoKv::from_conf(&conf, "rw-"))).await;
}

async fn backlog_contract(kv: Arc<dyn Kv>) {
    let (rec, url) = receiver().await;
    let yaml = format!(
        "- url: {url}\n  name: q\n  queue_config: {{min_backoff: 5ms, max_backoff: 10ms, max_samples_per_send: 2, max_backlog_samples: 6}}\n"
    );
    let w = writer(kv.clone(), &yaml).await;
    // Down for 4 ticks of 2 samples: the backlog keeps the newest 6, drops 2 (tick 1).
    rec.script(&[503; 1000]);
    for t in 1..=4 {
        let rep = w
            .send_tick(
                t * 1000,
                &samples(2, t as f64),
                Instant::now() + Duration::from_millis(40),
            )
            .await;
        assert_eq!(rep[0].sent, 0);
        assert_eq!(
            rep[0].backlog,
            (2 * t as usize).min(6),
            "tick {t}: {:?}",
            rep[0]
        );
        assert_eq!(rep[0].overflowed, if t == 4 { 2 } else { 0 });
    }
    // A fresh writer (another Lambda invocation) reads the backlog from the store.
    rec.script(&[]);
    let w = writer(kv.clone(), &yaml).await;
    let rep = w.send_tick(5_000, &samples(2, 5.0), deadline()).await;
    assert_eq!((rep[0].sent, rep[0].backlog), (8, 0), "{:?}", rep[0]);
    let acc = rec.accepted();
    let ts: Vec<i64> = acc.iter().map(|(_, t, _)| *t).collect();
    assert_eq!(
        ts,
        vec![2000, 2000, 3000, 3000, 4000, 4000, 5000, 5000],
        "oldest first, tick 1 dropped, each once"
    );
    assert!(kv
        .query(Table::Results, "remote_write#q", None)
        .await
        .unwrap()
        .is_empty());
    // Nothing left: the next tick sends only itself.
    let rep = w.send_tick(6_000, &samples(2, 6.0), deadline()).await;
    assert_eq!(rep[0].sent, 2);

    // An unreadable record is reported and left in place, never replaced.
    let mut bad = Item::new(format!("{BACKLOG_PK_PREFIX}q"), "0000000000500#00000");
    bad.data = Some(vec![9, 1, 2]);
    kv.put(
        Table::Results,
        bad.with_attr("samples", 1u64),
        argus_model::Cond::Always,
    )
    .await
    .unwrap();
    let rep = w.send_tick(7_000, &samples(2, 7.0), deadline()).await;
    assert_eq!(rep[0].sent, 2);
    assert!(
        rep[0]
            .errors
            .iter()
            .any(|e| e.contains("unreadable (record version Some(9)")),
        "{:?}",
        rep[0].errors
    );
    assert_eq!(
        kv.query(Table::Results, "remote_write#q", None)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn deadline_stops_retrying() {
    let (rec, url) = receiver().await;
    let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open_temp().unwrap());
    let w = writer(
        kv,
        &format!("- url: {url}\n  queue_config: {{min_backoff: 20ms, max_backoff: 20ms}}\n"),
    )
    .await;
    rec.script(&[503; 1000]);
    let rep = w
        .send_tick(
            1_000,
            &samples(1, 1.0),
            Instant::now() + Duration::from_millis(100),
        )
        .await;
    // At most one attempt per backoff period inside the deadline, then kept.
    assert!(rep[0].requests >= 2 && rep[0].requests <= 6, "{:?}", rep[0]);
    assert_eq!(rep[0].backlog, 1);
    // Connection refused counts as recoverable too.
    let port = argus_testkit::free_port();
    let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open_temp().unwrap());
    let w = writer(
        kv,
        &format!(
            "- url: http://127.0.0.1:{port}/api/v1/write\n  queue_config: {{min_backoff: 10ms}}\n"
        ),
    )
    .await;
    let rep = w
        .send_tick(
            1_000,
            &samples(3, 1.0),
            Instant::now() + Duration::from_millis(50),
        )
        .await;
    assert_eq!((rep[0].sent, rep[0].backlog), (0, 3), "{:?}", rep[0]);
}

#[tokio::test]
async fn write_relabel_configs_apply_after_external_labels() {
    let (rec, url) = receiver().await;
    let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open_temp().unwrap());
    let w = writer(
        kv,
        &format!(
            "- url: {url}\n  write_relabel_configs:\n    - {{source_labels: [__name__], regex: m1, action: drop}}\n    - {{source_labels: [region], target_label: dc, replacement: 'dc-$1'}}\n"
        ),
    )
    .await;
    let rep = w.send_tick(1_000, &samples(3, 1.0), deadline()).await;
    assert_eq!((rep[0].sent, rep[0].relabel_dropped), (2, 1));
    let req = proto::decode(&rec.requests()[0].1).unwrap();
    let names: Vec<String> = req
        .timeseries
        .iter()
        .map(|t| t.labels().name().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["m0", "m2"]);
    assert_eq!(req.timeseries[0].labels().get("dc"), Some("dc-eu"));
}

/// SigV4 with static keys: the Authorization header has the documented shape, and the
/// signature recomputed with aws-sigv4 from what the receiver got (its headers, its body,
/// the time in X-Amz-Date) is the same.
#[tokio::test]
async fn sigv4_signature_verifies() {
    let (rec, url) = receiver().await;
    let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open_temp().unwrap());
    let w = writer(
        kv,
        &format!("- url: {url}\n  sigv4: {{region: eu-west-1, access_key: AKIDEXAMPLE, secret_key: wJalrXUtnFEMI}}\n"),
    )
    .await;
    let rep = w.send_tick(1_000, &samples(2, 1.0), deadline()).await;
    assert_eq!(rep[0].sent, 2, "{:?}", rep[0]);
    let (h, body, _) = rec.requests().remove(0);
    let auth = h["authorization"].to_str().unwrap().to_string();
    let date = h["x-amz-date"].to_str().unwrap().to_string();
    let rx = regex_lite(&auth);
    assert_eq!(
        rx.0,
        format!("AKIDEXAMPLE/{}/eu-west-1/aps/aws4_request", &date[..8])
    );
    for must in [
        "content-encoding",
        "content-type",
        "host",
        "x-amz-date",
        "x-prometheus-remote-write-version",
    ] {
        assert!(
            rx.1.split(';').any(|s| s == must),
            "{must} not signed: {auth}"
        );
    }
    assert_eq!(rx.2.len(), 64);
    // Recompute from the received request.
    let time = parse_amz_date(&date);
    let signed: Vec<String> = rx.1.split(';').map(str::to_string).collect();
    let headers: Vec<(String, String)> = signed
        .iter()
        .filter(|n| *n != "x-amz-date")
        .map(|n| (n.clone(), h[n.as_str()].to_str().unwrap().to_string()))
        .collect();
    let creds =
        aws_credential_types::Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI", None, None, "t");
    let again =
        argus_remote_write::client::sign_v4(&url, &headers, &body, &creds, "eu-west-1", time)
            .unwrap();
    let again_auth = again
        .iter()
        .find(|(k, _)| k == "authorization")
        .unwrap()
        .1
        .clone();
    assert_eq!(again_auth, auth);
    // A different body does not verify.
    let wrong =
        argus_remote_write::client::sign_v4(&url, &headers, b"other", &creds, "eu-west-1", time)
            .unwrap();
    assert_ne!(
        wrong.iter().find(|(k, _)| k == "authorization").unwrap().1,
        auth
    );
}

/// (credential scope, signed headers, signature) of an AWS4-HMAC-SHA256 header.
fn regex_lite(auth: &str) -> (String, String, String) {
    let rest = auth.strip_prefix("AWS4-HMAC-SHA256 ").expect(auth);
    let mut parts = rest.split(", ");
    let cred = parts.next().unwrap().strip_prefix("Credential=").unwrap();
    let signed = parts
        .next()
        .unwrap()
        .strip_prefix("SignedHeaders=")
        .unwrap();
    let sig = parts.next().unwrap().strip_prefix("Signature=").unwrap();
    assert!(sig.chars().all(|c| c.is_ascii_hexdigit()));
    (cred.into(), signed.into(), sig.into())
}

fn parse_amz_date(d: &str) -> SystemTime {
    // 20260101T120000Z
    let dt = chrono::NaiveDateTime::parse_from_str(d, "%Y%m%dT%H%M%SZ").unwrap();
    SystemTime::UNIX_EPOCH + Duration::from_secs(dt.and_utc().timestamp() as u64)
}

/// A TLS receiver with a certificate from a test CA: answers 204 to one request per
/// connection; records the bodies. Returns (url, CA PEM).
async fn tls_receiver(got: Arc<Mutex<Vec<Vec<u8>>>>) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = l.accept().await.unwrap();
            let (acceptor, got) = (acceptor.clone(), got.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = tls.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map(|v| v.trim().parse().unwrap())
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        got.lock()
                            .unwrap()
                            .push(buf[end + 4..end + 4 + len].to_vec());
                        let _ = tls
                            .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                            .await;
                        let _ = tls.shutdown().await;
                        return;
                    }
                }
            });
        }
    });
    (
        format!("https://localhost:{port}/api/v1/write"),
        ca_cert.pem(),
    )
}

#[tokio::test]
async fn tls_config_ca_file() {
    let got = Arc::new(Mutex::new(Vec::new()));
    let (url, ca) = tls_receiver(got.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca).unwrap();
    let build = |yaml: String| {
        let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open_temp().unwrap());
        let dir = dir.path().to_path_buf();
        async move {
            RemoteWriter::build(kv, &cfg(&yaml), &[], &dir, None)
                .await
                .unwrap()
        }
    };
    // Without the CA the certificate is not trusted: kept for later, not sent.
    let w = build(format!("- url: {url}\n")).await;
    let rep = w
        .send_tick(
            1_000,
            &samples(1, 1.0),
            Instant::now() + Duration::from_millis(300),
        )
        .await;
    assert_eq!((rep[0].sent, rep[0].backlog), (0, 1), "{:?}", rep[0]);
    assert!(got.lock().unwrap().is_empty());
    // With it: sent.
    let w = build(format!("- url: {url}\n  tls_config: {{ca_file: ca.pem}}\n")).await;
    let rep = w.send_tick(1_000, &samples(2, 1.0), deadline()).await;
    assert_eq!(rep[0].sent, 2, "{:?}", rep[0]);
    // insecure_skip_verify also connects.
    let w = build(format!(
        "- url: {url}\n  tls_config: {{insecure_skip_verify: true}}\n"
    ))
    .await;
    let rep = w.send_tick(1_000, &samples(1, 1.0), deadline()).await;
    assert_eq!(rep[0].sent, 1, "{:?}", rep[0]);
    let bodies = got.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2);
    assert_eq!(proto::sample_count(&proto::decode(&bodies[0]).unwrap()), 2);
    // A missing file is a build error naming the field.
    let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open_temp().unwrap());
    let e = RemoteWriter::build(
        kv,
        &cfg(&format!(
            "- url: {url}\n  tls_config: {{ca_file: nope.pem}}\n"
        )),
        &[],
        dir.path(),
        None,
    )
    .await
    .err()
    .expect("missing CA file")
    .to_string();
    assert!(
        e.contains("tls_config.ca_file") && e.contains("nope.pem"),
        "{e}"
    );
}
