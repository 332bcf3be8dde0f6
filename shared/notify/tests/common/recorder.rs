//! The side-by-side harness for receivers: a recording HTTP server with scriptable
//! replies per path, a recording SMTP server (Python aiosmtpd as a child process), and a
//! runner that gives the real Alertmanager 0.25 and Argus the same `alertmanager.yml`
//! and the same timed alert sequence, then returns both recordings.
//!
//! Generic API (a receiver config snippet in, recordings out):
//!
//! ```ignore
//! let yaml = "route: ...\nreceivers:\n  - name: pd\n    pagerduty_configs:\n      - url: '{http}/pd'\n";
//! let run = side_by_side(yaml, &Scenario::standard(), &[]).await;
//! assert_eq!(run.argus.http_json("/pd"), run.real.http_json("/pd"));
//! ```
//!
//! In the YAML, `{http}` is the recording HTTP server's base URL (`http://127.0.0.1:P`),
//! `{smtp}` the SMTP server's `127.0.0.1:P` and `{dir}` a directory holding the
//! `files` given (for `*_file` secrets). Each implementation gets its own recorders.
//! The real Alertmanager runs with `--web.external-url=http://argus:9093`, the URL Argus'
//! test notifier uses, so links agree.
#![allow(dead_code)]

use argus_model::Millis;
use axum::extract::State;
use bytes::Bytes;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The external URL both implementations use.
pub const EXTERNAL_URL: &str = "http://argus:9093";

// ---------------------------------------------------------------- HTTP recorder

/// One scripted reply.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub delay: Duration,
    pub body: String,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            delay: Duration::ZERO,
            body: String::new(),
        }
    }
    /// 200 after `delay` (a timeout when the delay exceeds the client's).
    pub fn delayed(delay: Duration) -> Reply {
        Reply {
            status: 200,
            delay,
            body: String::new(),
        }
    }
    pub fn with_body(mut self, body: &str) -> Reply {
        self.body = body.to_string();
        self
    }
}

/// One recorded request.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Lower-case names; repeated headers joined with ", ".
    pub headers: BTreeMap<String, String>,
    pub body: Bytes,
    /// The status the recorder answered.
    pub status: u16,
}

impl Recorded {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&self.body).into_owned()))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(|s| s.as_str())
    }
    /// Delivered: answered with a 2xx status.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

#[derive(Default)]
struct HttpState {
    scripts: HashMap<String, VecDeque<Reply>>,
    default_body: HashMap<String, String>,
    requests: Vec<Recorded>,
}

/// A recording HTTP server on 127.0.0.1: every request is recorded; replies are
/// scripted per path (in order, then 200 with the path's default body).
#[derive(Clone)]
pub struct HttpRecorder {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    state: Arc<Mutex<HttpState>>,
}

impl HttpRecorder {
    pub async fn start() -> HttpRecorder {
        let state = Arc::new(Mutex::new(HttpState::default()));
        let app = axum::Router::new()
            .fallback(record_any)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        HttpRecorder { base, state }
    }
    /// Replies for `path`, in order; afterwards 200.
    pub fn script(&self, path: &str, replies: impl IntoIterator<Item = Reply>) {
        self.state
            .lock()
            .unwrap()
            .scripts
            .entry(path.to_string())
            .or_default()
            .extend(replies);
    }
    /// The body of the default 200 reply for `path` (e.g. `ok` for Slack).
    pub fn default_body(&self, path: &str, body: &str) {
        self.state
            .lock()
            .unwrap()
            .default_body
            .insert(path.to_string(), body.to_string());
    }
    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }
    /// Requests to `path`.
    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }
    /// Requests to `path` answered with 2xx.
    pub fn delivered(&self, path: &str) -> Vec<Recorded> {
        self.requests_to(path)
            .into_iter()
            .filter(|r| r.ok())
            .collect()
    }
    /// JSON bodies of the delivered requests to `path`.
    pub fn delivered_json(&self, path: &str) -> Vec<Value> {
        self.delivered(path).iter().map(|r| r.json()).collect()
    }
}

async fn record_any(
    State(s): State<Arc<Mutex<HttpState>>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> (axum::http::StatusCode, String) {
    let path = uri.path().to_string();
    let reply = {
        let mut g = s.lock().unwrap();
        let scripted = g.scripts.get_mut(&path).and_then(|q| q.pop_front());
        scripted.unwrap_or_else(|| Reply {
            status: 200,
            delay: Duration::ZERO,
            body: g.default_body.get(&path).cloned().unwrap_or_default(),
        })
    };
    let mut hs: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in headers.iter() {
        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
        hs.entry(k.as_str().to_string())
            .and_modify(|e| {
                e.push_str(", ");
                e.push_str(&v)
            })
            .or_insert(v);
    }
    let rec = Recorded {
        method: method.to_string(),
        path,
        query: uri.query().unwrap_or("").to_string(),
        headers: hs,
        body,
        status: reply.status,
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
        // A client that gave up meanwhile did not get this reply: it is still recorded
        // (the receiver saw the request), with the status it would have had.
    }
    s.lock().unwrap().requests.push(rec);
    (
        axum::http::StatusCode::from_u16(reply.status).unwrap(),
        reply.body,
    )
}

// ---------------------------------------------------------------- SMTP recorder

/// One received e-mail, parsed by Python's `email` package.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
pub struct Mail {
    /// SMTP envelope.
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    /// The user that authenticated (with the mechanism), if any.
    pub auth: Option<String>,
    pub auth_mechanism: Option<String>,
    /// Whether the session was TLS (STARTTLS) when the message was sent.
    pub tls: bool,
    /// Decoded headers (RFC 2047 decoded), in order.
    pub headers: Vec<(String, String)>,
    /// Decoded bodies of the text/plain and text/html parts.
    pub text: Option<String>,
    pub html: Option<String>,
    /// The whole message as received.
    pub raw: String,
}

impl Mail {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

const SMTP_SERVER: &str = r#"
import asyncio, base64, email, email.policy, hmac, json, os, ssl, sys
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

out_dir, port, user, password, require_auth, certfile, keyfile = sys.argv[1:8]
counter = [0]

class Handler:
    async def handle_DATA(self, server, session, envelope):
        raw = envelope.content.decode("utf-8", "replace")
        msg = email.message_from_string(raw, policy=email.policy.default)
        headers = [(k, str(v)) for k, v in msg.items()]
        text = html = None
        for part in msg.walk():
            ct = part.get_content_type()
            if part.is_multipart():
                continue
            if ct == "text/plain" and text is None:
                text = part.get_content()
            elif ct == "text/html" and html is None:
                html = part.get_content()
        ad = session.auth_data
        rec = {
            "mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
            "auth": ad.login.decode() if isinstance(ad, LoginPassword) else (ad if isinstance(ad, str) else None),
            "auth_mechanism": getattr(session, "argus_mech", None),
            "tls": session.ssl is not None,
            "headers": headers, "text": text, "html": html, "raw": raw,
        }
        counter[0] += 1
        tmp = os.path.join(out_dir, "%06d.tmp" % counter[0])
        with open(tmp, "w") as f:
            json.dump(rec, f)
        os.rename(tmp, os.path.join(out_dir, "%06d.json" % counter[0]))
        return "250 OK"

def authenticator(server, session, envelope, mechanism, auth_data):
    session.argus_mech = mechanism
    if isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user and auth_data.password.decode() == password:
        return AuthResult(success=True, auth_data=auth_data)
    return AuthResult(success=False, handled=False)

class ArgusSMTP(SMTP):
    # CRAM-MD5 (RFC 2195), which aiosmtpd does not bundle.
    async def auth_CRAM_MD5(self, _, args):
        challenge = b"<%d.argus@127.0.0.1>" % os.getpid()
        resp = await self.challenge_auth(base64.b64encode(challenge), encode_to_b64=False)
        if resp is None or not isinstance(resp, bytes):
            return AuthResult(success=False, handled=False)
        try:
            u, digest = resp.decode().rsplit(" ", 1)
        except ValueError:
            return AuthResult(success=False, handled=False)
        want = hmac.new(password.encode(), challenge, "md5").hexdigest()
        self.session.argus_mech = "CRAM-MD5"
        if u == user and hmac.compare_digest(digest, want):
            return AuthResult(success=True, auth_data=u)
        return AuthResult(success=False, handled=False)

class ArgusController(Controller):
    def factory(self):
        kw = dict(authenticator=authenticator if user else None,
                  auth_required=require_auth == "1", auth_require_tls=False)
        if certfile:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(certfile, keyfile)
            kw["tls_context"] = ctx
        return ArgusSMTP(self.handler, **kw)

c = ArgusController(Handler(), hostname="127.0.0.1", port=int(port))
c.start()
print("listening", flush=True)
try:
    asyncio.get_event_loop().run_forever()
except KeyboardInterrupt:
    pass
"#;

/// SMTP server options.
#[derive(Clone, Debug, Default)]
pub struct SmtpOptions {
    /// Accepted credentials (PLAIN, LOGIN, CRAM-MD5) when set.
    pub user: Option<(String, String)>,
    pub require_auth: bool,
    /// (cert, key) PEM files: STARTTLS offered.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// A recording SMTP server (aiosmtpd in the repository's `.venv`: `pip install -r
/// tests/requirements.txt`), each received message written as JSON to a directory.
pub struct SmtpRecorder {
    /// `127.0.0.1:PORT`
    pub addr: String,
    dir: tempfile::TempDir,
    _peer: argus_testkit::Peer,
}

impl SmtpRecorder {
    pub fn start() -> SmtpRecorder {
        SmtpRecorder::start_with(SmtpOptions::default())
    }
    pub fn start_with(o: SmtpOptions) -> SmtpRecorder {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("smtp_server.py");
        std::fs::write(&script, SMTP_SERVER).unwrap();
        let out = dir.path().join("mail");
        std::fs::create_dir(&out).unwrap();
        let (u, p) = o.user.clone().unwrap_or_default();
        let (c, k) = o
            .tls
            .clone()
            .map(|(c, k)| (c.display().to_string(), k.display().to_string()))
            .unwrap_or_default();
        let script_s = script.display().to_string();
        let out_s = out.display().to_string();
        let req = if o.require_auth { "1" } else { "0" };
        let peer = argus_testkit::spawn_peer(
            "aiosmtpd",
            &argus_testkit::python(),
            &[&script_s, &out_s, "{port}", &u, &p, req, &c, &k],
        );
        SmtpRecorder {
            addr: format!("127.0.0.1:{}", peer.port),
            dir,
            _peer: peer,
        }
    }
    /// Messages received so far, in order.
    pub fn mails(&self) -> Vec<Mail> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path().join("mail"))
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }
    pub fn log(&self) -> String {
        self._peer.log()
    }
}

// ---------------------------------------------------------------- scenario and runner

/// One step of an alert sequence.
#[derive(Clone, Debug)]
pub enum Step {
    /// POST /api/v2/alerts with these alerts (no endsAt: firing).
    Fire(Vec<Value>),
    /// POST them again with endsAt = now.
    Resolve(Vec<Value>),
}

/// A timed alert sequence: steps at offsets (ms), the run ends at `end` ms.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub steps: Vec<(u64, Step)>,
    pub end: u64,
}

/// The routing timers [`Scenario::standard`] expects (as YAML route keys).
pub const STANDARD_TIMERS: &str = "group_wait: 1s\n  group_interval: 2s\n  repeat_interval: 3s";

pub fn alert_json(name: &str, instance: &str, severity: &str) -> Value {
    json!({
        "labels": {"alertname": name, "instance": instance, "severity": severity, "job": "node"},
        "annotations": {"summary": format!("{name} on {instance}"), "description": format!("{instance} is down")},
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up+%3D%3D+0",
    })
}

impl Scenario {
    /// With group_wait 1s, group_interval 2s, repeat_interval 3s (`STANDARD_TIMERS`), one
    /// group `{alertname="Down"}`: 0 s two alerts fire → flush at 1 s; 1.5 s a third
    /// joins (grouped) → 3 s; 3.5 s one resolves → 5 s (firing 2 + resolved 1); 7 s
    /// nothing (unchanged, repeat not due); 9 s repeated; 9.5 s the rest resolve → 11 s.
    pub fn standard() -> Scenario {
        let a = |i: &str| alert_json("Down", i, "critical");
        Scenario {
            steps: vec![
                (0, Step::Fire(vec![a("web-1"), a("web-2")])),
                (1500, Step::Fire(vec![a("web-3")])),
                (3500, Step::Resolve(vec![a("web-2")])),
                (9500, Step::Resolve(vec![a("web-1"), a("web-3")])),
            ],
            end: 11500,
        }
    }
}

/// What one implementation sent.
pub struct Recordings {
    pub http: HttpRecorder,
    pub smtp: Option<SmtpRecorder>,
}

impl Recordings {
    pub fn mails(&self) -> Vec<Mail> {
        self.smtp.as_ref().map(|s| s.mails()).unwrap_or_default()
    }
}

/// Both recordings of one run, and the real Alertmanager's log.
pub struct SideBySide {
    pub argus: Recordings,
    pub real: Recordings,
    pub am_log: String,
}

/// A recording HTTP server (and an SMTP server when the YAML has `{smtp}`), the YAML
/// with its placeholders replaced and the `files` written into `dir`.
async fn prepare(yaml: &str, files: &[(&str, &str)], dir: &Path) -> (Recordings, String) {
    let http = HttpRecorder::start().await;
    let smtp = yaml.contains("{smtp}").then(SmtpRecorder::start);
    for (name, content) in files {
        std::fs::write(dir.join(name), content).unwrap();
    }
    let text = yaml
        .replace("{http}", &http.base)
        .replace("{dir}", &dir.display().to_string())
        .replace(
            "{smtp}",
            smtp.as_ref().map(|s| s.addr.as_str()).unwrap_or(""),
        );
    (Recordings { http, smtp }, text)
}

fn resolved_json(v: &Value, ends: &str) -> Value {
    let mut x = v.clone();
    x["endsAt"] = ends.into();
    x
}

/// Runs Argus on a stepped clock (a tick every 100 ms of virtual time, steps applied
/// first), with the configuration loaded as a file in `dir` (so `*_file` paths work).
pub async fn run_argus_with(yaml: &str, scenario: &Scenario, dir: &Path) {
    let path = dir.join("alertmanager.yml");
    std::fs::write(&path, yaml).unwrap();
    let cfg = argus_notify::load_config_file(&path).unwrap_or_else(|e| panic!("config: {e}"));
    let n = argus_notify::Notifier::new(
        super::kv(),
        cfg,
        argus_notify::Clients::http_only(),
        EXTERNAL_URL,
    )
    .with_options(argus_notify::NotifierOptions {
        backoff: Duration::from_millis(20),
        send_budget: Duration::from_secs(5),
        ..Default::default()
    });
    let t0: Millis = super::T0;
    let req = |body: Value| {
        http::Request::builder()
            .method("POST")
            .uri("/api/v2/alerts")
            .body(Bytes::from(serde_json::to_vec(&body).unwrap()))
            .unwrap()
    };
    let mut t = 0u64;
    while t <= scenario.end {
        let now = t0 + t as Millis;
        for (_, step) in scenario.steps.iter().filter(|(at, _)| *at == t) {
            let body = match step {
                Step::Fire(v) => Value::Array(v.clone()),
                Step::Resolve(v) => {
                    let ends = argus_model::time::rfc3339(now);
                    Value::Array(v.iter().map(|x| resolved_json(x, &ends)).collect())
                }
            };
            let r = n.handle_api(req(body), now).await;
            assert_eq!(r.status(), 200, "{:?}", r.body());
        }
        n.tick(now).await.unwrap();
        t += 100;
    }
}

/// Runs the real Alertmanager 0.25 (`prometheus-alertmanager`) with the configuration
/// in real time; returns its log.
pub async fn run_real_with(yaml: &str, scenario: &Scenario, dir: &Path) -> String {
    let cfg = dir.join("alertmanager.yml");
    std::fs::write(&cfg, yaml).unwrap();
    let bin = argus_testkit::tool("prometheus-alertmanager");
    let cfg_arg = format!("--config.file={}", cfg.display());
    let storage = format!("--storage.path={}", dir.join("data").display());
    let ext = format!("--web.external-url={EXTERNAL_URL}");
    let am = argus_testkit::spawn_peer(
        "alertmanager",
        &bin,
        &[
            &cfg_arg,
            &storage,
            &ext,
            "--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=debug",
        ],
    );
    let http = reqwest::Client::new();
    let base = am.url();
    for _ in 0..100 {
        if http
            .get(format!("{base}/-/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let start = tokio::time::Instant::now();
    for (at, step) in &scenario.steps {
        tokio::time::sleep_until(start + Duration::from_millis(*at)).await;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let body = match step {
            Step::Fire(v) => v.clone(),
            Step::Resolve(v) => v.iter().map(|x| resolved_json(x, &now)).collect(),
        };
        let r = http
            .post(format!("{base}/api/v2/alerts"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
    tokio::time::sleep_until(start + Duration::from_millis(scenario.end)).await;
    am.log()
}

/// The same configuration (placeholders `{http}`, `{smtp}`, `{dir}`; `files` written
/// into `{dir}`) and scenario, given to Argus and to the real Alertmanager 0.25, each
/// with its own recorders. The real one runs in real time (about `scenario.end`).
pub async fn side_by_side(yaml: &str, scenario: &Scenario, files: &[(&str, &str)]) -> SideBySide {
    let adir = tempfile::tempdir().unwrap();
    let rdir = tempfile::tempdir().unwrap();
    let (argus, ayaml) = prepare(yaml, files, adir.path()).await;
    let (real, ryaml) = prepare(yaml, files, rdir.path()).await;
    run_argus_with(&ayaml, scenario, adir.path()).await;
    let am_log = run_real_with(&ryaml, scenario, rdir.path()).await;
    SideBySide {
        argus,
        real,
        am_log,
    }
}

/// Replaces the values at these JSON pointers (where present) with `"<ignored>"`, for
/// what must differ between two runs (times).
pub fn ignore(v: &Value, pointers: &[&str]) -> Value {
    let mut v = v.clone();
    for p in pointers {
        if let Some(x) = v.pointer_mut(p) {
            *x = Value::String("<ignored>".into());
        }
    }
    v
}

/// The headers that carry meaning: Content-Type and Authorization (and any given).
pub fn meaningful_headers(r: &Recorded, extra: &[&str]) -> BTreeMap<String, String> {
    let mut names = vec!["content-type", "authorization"];
    names.extend(extra);
    names
        .iter()
        .filter_map(|n| r.header(n).map(|v| (n.to_string(), v.to_string())))
        .collect()
}
