//! Migration setups side by side (issue 16): the same files (examples/migration/<n>/)
//! run under the real Prometheus 2.42 + Alertmanager 0.25 + blackbox_exporter 0.23 and
//! under `argus dev` (in this process), concurrently, against the same local servers
//! that go down and come back. Each side's Alertmanager sends to its own webhook
//! receiver; both receive the same notifications: labels, annotations, the status
//! sequence of every alert, and arrival times within a few intervals of each other.
//!
//! The files hold `__NAME__` placeholders where a user's files have addresses; the test
//! fills in the local ports of each side. On the Argus side `__ALERTMANAGER__` is
//! `argus dev`'s own Alertmanager port, so the prometheus.yml's `alerting` section is
//! used as it is (the evaluator sends to that v2 API, as Prometheus does).
//!
//! Setup 1 uses a target on a closed port where the issue has one that does not
//! resolve: resolving a name that does not exist would send a DNS query off this
//! machine.

mod common;

use argus_testkit::{free_port, spawn_peer, tool, Peer};
use common::{Hook, Site};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How far apart the two sides' notifications may arrive: one scrape interval, one
/// evaluation interval, `group_wait` and the 1 s tick of Argus's group timers (1 s
/// each in these setups). Measured: docs/bench-migration.md.
const TOLERANCE: Duration = Duration::from_secs(4);

fn example(n: &str) -> PathBuf {
    argus_testkit::repo_root()
        .join("examples/migration")
        .join(n)
}

/// Copies `src` into `dst`, replacing the placeholders in every file.
fn materialize(src: &Path, dst: &Path, subs: &[(&str, String)]) {
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
            materialize(&e.path(), &to, subs);
        } else {
            let mut text = std::fs::read_to_string(e.path()).unwrap();
            for (k, v) in subs {
                text = text.replace(k, v);
            }
            std::fs::write(to, text).unwrap();
        }
    }
}

/// One notification as a receiver saw it: per alert, when it arrived.
#[derive(Clone, Debug, PartialEq)]
struct Seen {
    key: String,
    status: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    at: Duration,
}

fn map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

type Map = BTreeMap<String, String>;
/// One alert of a body: key, status, labels, annotations.
type Entry = (String, String, Map, Map);
/// What one body says, per alert.
type Extract = fn(&Value) -> Vec<Entry>;

/// An Alertmanager webhook body: one entry per alert, keyed by alertname + instance.
fn webhook_alerts(b: &Value) -> Vec<Entry> {
    b["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            let labels = map(&a["labels"]);
            let key = format!(
                "{}{{instance={}}}",
                labels.get("alertname").cloned().unwrap_or_default(),
                labels.get("instance").cloned().unwrap_or_default()
            );
            (
                key,
                a["status"].as_str().unwrap_or("").to_string(),
                labels,
                map(&a["annotations"]),
            )
        })
        .collect()
}

/// A Slack message: its channel and first attachment's fields, keyed by the group
/// (the title without its status); the status is the title's `[FIRING:n]`/`[RESOLVED]`.
fn slack_message(b: &Value) -> Vec<Entry> {
    let a = &b["attachments"][0];
    let title = a["title"].as_str().unwrap_or("").to_string();
    let (status, rest) = title.split_once(']').unwrap_or(("", &title));
    let mut fields = BTreeMap::new();
    for k in [
        "title",
        "text",
        "color",
        "fallback",
        "title_link",
        "footer",
        "pretext",
        "callback_id",
    ] {
        if let Some(v) = a[k].as_str() {
            fields.insert(k.to_string(), v.to_string());
        }
    }
    for k in ["channel", "username", "icon_emoji", "icon_url"] {
        if let Some(v) = b[k].as_str() {
            fields.insert(k.to_string(), v.to_string());
        }
    }
    vec![(
        rest.trim().to_string(),
        status.trim_start_matches('[').to_string(),
        fields,
        BTreeMap::new(),
    )]
}

/// Records the arrival time of each new body of `hook`.
struct Watch {
    hook: Hook,
    extract: Extract,
    seen: Vec<Seen>,
    n: usize,
}

impl Watch {
    fn new(hook: Hook, extract: Extract) -> Watch {
        Watch {
            hook,
            extract,
            seen: Vec::new(),
            n: 0,
        }
    }

    fn poll(&mut self, t0: Instant) {
        let bodies = self.hook.bodies.lock().unwrap().clone();
        for b in &bodies[self.n..] {
            for (key, status, labels, annotations) in (self.extract)(b) {
                self.seen.push(Seen {
                    key,
                    status,
                    labels,
                    annotations,
                    at: t0.elapsed(),
                });
            }
        }
        self.n = bodies.len();
    }

    /// Per alert: its notifications with repeats of the same status folded.
    fn sequences(&self) -> BTreeMap<String, Vec<Seen>> {
        let mut out: BTreeMap<String, Vec<Seen>> = BTreeMap::new();
        for s in &self.seen {
            let v = out.entry(s.key.clone()).or_default();
            if v.last().is_none_or(|l| l.status != s.status) {
                v.push(s.clone());
            }
        }
        out
    }
}

/// The real stack on the files of `dir` (already materialized).
struct Real {
    _prom: Peer,
    _am: Peer,
    _bb: Option<Peer>,
}

fn alertmanager(dir: &Path) -> Peer {
    std::fs::create_dir_all(dir.join("am-data")).unwrap();
    spawn_peer(
        "alertmanager",
        &tool("prometheus-alertmanager"),
        &[
            &format!("--config.file={}", dir.join("alertmanager.yml").display()),
            &format!("--storage.path={}", dir.join("am-data").display()),
            "--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            // What `argus dev` links to (`global.external_url` in argus.yml changes it).
            "--web.external-url=http://127.0.0.1:9093",
        ],
    )
}

fn blackbox(dir: &Path) -> Peer {
    spawn_peer(
        "blackbox_exporter",
        &tool("prometheus-blackbox-exporter"),
        &[
            &format!("--config.file={}", dir.join("blackbox.yml").display()),
            "--web.listen-address=127.0.0.1:{port}",
        ],
    )
}

fn prometheus(dir: &Path) -> Peer {
    std::fs::create_dir_all(dir.join("prom-data")).unwrap();
    spawn_peer(
        "prometheus",
        &tool("prometheus"),
        &[
            &format!("--config.file={}", dir.join("prometheus.yml").display()),
            &format!("--storage.tsdb.path={}", dir.join("prom-data").display()),
            "--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
        ],
    )
}

/// `argus dev` on the files of `dir`, its Alertmanager on `am_port`, for `run_for`.
fn argus_dev(dir: &Path, am_port: u16, run_for: Duration) -> tokio::task::JoinHandle<()> {
    argus_dev_with(dir, am_port, free_port(), run_for)
}

/// [`argus_dev`] with its gateway on `gw_port`.
fn argus_dev_with(
    dir: &Path,
    am_port: u16,
    gw_port: u16,
    run_for: Duration,
) -> tokio::task::JoinHandle<()> {
    argus_dev_ports(dir, am_port, gw_port, free_port(), run_for)
}

/// [`argus_dev`] with its gateway on `gw_port` and query API on `query_port`.
fn argus_dev_ports(
    dir: &Path,
    am_port: u16,
    gw_port: u16,
    query_port: u16,
    run_for: Duration,
) -> tokio::task::JoinHandle<()> {
    let mut cfg = argus_app::AppConfig::load(&dir.join("argus.yml")).unwrap();
    cfg.dev.alertmanager_listen = format!("127.0.0.1:{am_port}");
    cfg.dev.gateway_listen = format!("127.0.0.1:{gw_port}");
    cfg.dev.blackbox_listen = format!("127.0.0.1:{}", free_port());
    cfg.dev.query_listen = format!("127.0.0.1:{query_port}");
    cfg.dev.data_dir = dir.join(".argus").display().to_string();
    cfg.dev.notifications_file = dir.join(".argus/n.jsonl").display().to_string();
    tokio::spawn(async move {
        argus_app::dev::run(
            cfg,
            argus_app::dev::DevOptions {
                run_for: Some(run_for),
            },
        )
        .await
        .expect("argus dev");
    })
}

/// Asserts the same notifications; times within `tolerance` for those the real side
/// sent after `settled` (before it, both stacks are still starting: reported only).
fn assert_same(real: &Watch, argus: &Watch, tolerance: Duration, settled: Duration) -> String {
    let (r, a) = (real.sequences(), argus.sequences());
    let strip = |m: &BTreeMap<String, Vec<Seen>>| -> BTreeMap<String, Vec<(String, Map, Map)>> {
        m.iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.iter()
                        .map(|s| (s.status.clone(), s.labels.clone(), s.annotations.clone()))
                        .collect(),
                )
            })
            .collect()
    };
    assert_eq!(
        strip(&a),
        strip(&r),
        "notifications: Argus (left) vs the real stack (right)\nreal: {:#?}\nargus: {:#?}",
        real.seen,
        argus.seen
    );
    let mut report = String::new();
    for (k, rv) in &r {
        for (x, y) in rv.iter().zip(&a[k]) {
            let d = x.at.abs_diff(y.at);
            report.push_str(&format!(
                "{k} {}: real {:.1}s, argus {:.1}s\n",
                x.status,
                x.at.as_secs_f64(),
                y.at.as_secs_f64()
            ));
            assert!(
                x.at < settled || d <= tolerance,
                "{k} {}: real at {:?}, Argus at {:?}",
                x.status,
                x.at,
                y.at
            );
        }
    }
    report
}

/// Setup 1: blackbox multi-target with relabeling over a file of targets (one on a
/// closed port); the app goes down for 12 s and comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn setup_1_blackbox_file_sd() {
    let app = Site::start(200).await;
    let app_addr = app
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let closed = format!("127.0.0.1:{}", free_port());
    let (real_hook, argus_hook) = (Hook::start().await, Hook::start().await);
    let src = example("1-blackbox");
    let real_dir = tempfile::tempdir().unwrap();
    let argus_dir = tempfile::tempdir().unwrap();

    let common = [
        ("__APP__", app_addr.clone()),
        ("__CLOSED__", closed.clone()),
    ];
    // The real stack: blackbox_exporter and Alertmanager first (their ports go into
    // prometheus.yml).
    materialize(
        &src,
        real_dir.path(),
        &[
            common[0].clone(),
            common[1].clone(),
            ("__WEBHOOK__", real_hook.url.clone()),
        ],
    );
    let bb = blackbox(real_dir.path());
    let am = alertmanager(real_dir.path());
    let p = real_dir.path().join("prometheus.yml");
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("__BLACKBOX__", &bb.addr().to_string())
        .replace("__ALERTMANAGER__", &am.addr().to_string());
    std::fs::write(&p, text).unwrap();

    let am_port = free_port();
    materialize(
        &src,
        argus_dir.path(),
        &[
            common[0].clone(),
            common[1].clone(),
            ("__WEBHOOK__", argus_hook.url.clone()),
            ("__ALERTMANAGER__", format!("127.0.0.1:{am_port}")),
            ("__BLACKBOX__", "127.0.0.1:9115".into()),
        ],
    );

    let t0 = Instant::now();
    let prom = prometheus(real_dir.path());
    let dev = argus_dev(argus_dir.path(), am_port, Duration::from_secs(36));
    let _real = Real {
        _prom: prom,
        _am: am,
        _bb: Some(bb),
    };
    let (mut real, mut argus) = (
        Watch::new(real_hook, webhook_alerts),
        Watch::new(argus_hook, webhook_alerts),
    );
    let mut down = false;
    let mut up_again = false;
    while t0.elapsed() < Duration::from_secs(35) {
        if !down && t0.elapsed() >= Duration::from_secs(10) {
            app.set_status(500);
            down = true;
        }
        if !up_again && t0.elapsed() >= Duration::from_secs(22) {
            app.set_status(200);
            up_again = true;
        }
        real.poll(t0);
        argus.poll(t0);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    dev.await.unwrap();
    let seq = real.sequences();
    let statuses = |k: &str| -> Vec<String> {
        seq.get(k)
            .map(|v| v.iter().map(|s| s.status.clone()).collect())
            .unwrap_or_default()
    };
    // The test means something: the real stack saw the outage and the closed port.
    assert_eq!(
        statuses(&format!("SiteDown{{instance=http://{app_addr}/}}")),
        ["firing", "resolved"],
        "{:#?}",
        real.seen
    );
    assert_eq!(
        statuses(&format!("SiteDown{{instance=http://{closed}/}}")),
        ["firing"],
        "{:#?}",
        real.seen
    );
    let times = assert_same(&real, &argus, TOLERANCE, Duration::from_secs(10));
    eprintln!("setup 1 arrival times:\n{times}");
}

/// An app's `/metrics` whose body (and status) the test sets.
struct Exporter {
    addr: String,
    state: std::sync::Arc<std::sync::Mutex<(u16, String)>>,
}

impl Exporter {
    async fn start(body: &str) -> Exporter {
        use axum::extract::State;
        type St = std::sync::Arc<std::sync::Mutex<(u16, String)>>;
        let state: St = std::sync::Arc::new(std::sync::Mutex::new((200, body.to_string())));
        let app = axum::Router::new()
            .route(
                "/metrics",
                axum::routing::get(|State(s): State<St>| async move {
                    let (code, body) = s.lock().unwrap().clone();
                    (
                        axum::http::StatusCode::from_u16(code).unwrap(),
                        [("content-type", "text/plain; version=0.0.4")],
                        body,
                    )
                }),
            )
            .with_state(state.clone());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            axum::serve(l, app).await.unwrap();
        });
        Exporter { addr, state }
    }

    fn set(&self, code: u16, body: &str) {
        *self.state.lock().unwrap() = (code, body.to_string());
    }
}

fn app_body(error_ratio: f64, queue: u32) -> String {
    format!(
        "# TYPE app_error_ratio gauge\napp_error_ratio {error_ratio}\n# TYPE app_queue_depth gauge\napp_queue_depth{{queue=\"orders\"}} {queue}\n"
    )
}

/// Setup 3: an app's /metrics with rules using `for`, templated labels and
/// annotations, routed by severity: critical to a Slack-format receiver (a local
/// stand-in for Slack, Alertmanager's default Slack templates), warning to a webhook.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn setup_3_app_rules_slack() {
    let app = Exporter::start(&app_body(0.01, 3)).await;
    let hooks = [
        Hook::start().await,
        Hook::start().await,
        Hook::start().await,
        Hook::start().await,
    ];
    let src = example("3-app-slack");
    let real_dir = tempfile::tempdir().unwrap();
    let argus_dir = tempfile::tempdir().unwrap();
    materialize(
        &src,
        real_dir.path(),
        &[
            ("__APP__", app.addr.clone()),
            ("__WEBHOOK__", hooks[0].url.clone()),
            ("__SLACK__", hooks[1].url.clone()),
        ],
    );
    let am = alertmanager(real_dir.path());
    let p = real_dir.path().join("prometheus.yml");
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("__ALERTMANAGER__", &am.addr().to_string());
    std::fs::write(&p, text).unwrap();
    let am_port = free_port();
    materialize(
        &src,
        argus_dir.path(),
        &[
            ("__APP__", app.addr.clone()),
            ("__WEBHOOK__", hooks[2].url.clone()),
            ("__SLACK__", hooks[3].url.clone()),
            ("__ALERTMANAGER__", format!("127.0.0.1:{am_port}")),
        ],
    );
    let t0 = Instant::now();
    let _prom = prometheus(real_dir.path());
    let _am = am;
    let dev = argus_dev(argus_dir.path(), am_port, Duration::from_secs(33));
    let [h0, h1, h2, h3] = hooks;
    let mut watches = [
        Watch::new(h0, webhook_alerts),
        Watch::new(h1, slack_message),
        Watch::new(h2, webhook_alerts),
        Watch::new(h3, slack_message),
    ];
    // 0-8 s healthy; 8-20 s errors at 35 %, the queue backs up from 12 s; then
    // healthy again; at 24 s the app stops answering for good (up = 0 on both sides,
    // no alert on it: the gauges go stale and the alerts stay resolved).
    let mut phase = 0;
    while t0.elapsed() < Duration::from_secs(32) {
        let t = t0.elapsed().as_secs();
        let want = match t {
            0..=7 => 0,
            8..=11 => 1,
            12..=19 => 2,
            _ => 3,
        };
        if want != phase {
            phase = want;
            match phase {
                1 => app.set(200, &app_body(0.35, 3)),
                2 => app.set(200, &app_body(0.35, 250)),
                _ => app.set(200, &app_body(0.01, 3)),
            }
        }
        for w in &mut watches {
            w.poll(t0);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    dev.await.unwrap();
    let [real_hook, real_slack, argus_hook, argus_slack] = watches;
    let statuses = |w: &Watch| -> Vec<String> {
        w.sequences()
            .values()
            .flat_map(|v| v.iter().map(|s| s.status.clone()))
            .collect()
    };
    assert_eq!(
        statuses(&real_hook),
        ["firing", "resolved"],
        "{:#?}",
        real_hook.seen
    );
    assert_eq!(statuses(&real_slack).len(), 2, "{:#?}", real_slack.seen);
    let mut times = assert_same(&real_hook, &argus_hook, TOLERANCE, Duration::from_secs(8));
    times.push_str(&assert_same(
        &real_slack,
        &argus_slack,
        TOLERANCE,
        Duration::from_secs(8),
    ));
    eprintln!("setup 3 arrival times:\n{times}");
}

/// Fills in `src` for the real side (`subs` + its Alertmanager, started here) and the
/// Argus side (`argus_subs` + `__ALERTMANAGER__` = the returned port).
fn two_sides<'a>(
    src: &Path,
    real_dir: &Path,
    argus_dir: &Path,
    subs: &[(&'a str, String)],
    real_subs: &[(&'a str, String)],
    argus_subs: &[(&'a str, String)],
) -> (Peer, u16) {
    let all = |extra: &[(&'a str, String)]| -> Vec<(&'a str, String)> {
        subs.iter()
            .chain(extra)
            .map(|(k, v)| (*k, v.clone()))
            .collect()
    };
    materialize(src, real_dir, &all(real_subs));
    let am = alertmanager(real_dir);
    let p = real_dir.join("prometheus.yml");
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("__ALERTMANAGER__", &am.addr().to_string());
    std::fs::write(&p, text).unwrap();
    let am_port = free_port();
    let mut a = all(argus_subs);
    a.push(("__ALERTMANAGER__", format!("127.0.0.1:{am_port}")));
    materialize(src, argus_dir, &a);
    (am, am_port)
}

/// Setup 2: a custom exporter through file_sd targets; it goes down for 5 s, then for
/// 12 s. "The data stopped arriving" fires twice, the long-disruption alert once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn setup_2_exporter_file_sd() {
    let body = "# TYPE jobs_queue_length gauge\njobs_queue_length{queue=\"mail\"} 4\n";
    let exporter = Exporter::start(body).await;
    let (real_hook, argus_hook) = (Hook::start().await, Hook::start().await);
    let (real_dir, argus_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (am, am_port) = two_sides(
        &example("2-exporter-file-sd"),
        real_dir.path(),
        argus_dir.path(),
        &[("__EXPORTER__", exporter.addr.clone())],
        &[("__WEBHOOK__", real_hook.url.clone())],
        &[("__WEBHOOK__", argus_hook.url.clone())],
    );
    let t0 = Instant::now();
    let _prom = prometheus(real_dir.path());
    let _am = am;
    let dev = argus_dev(argus_dir.path(), am_port, Duration::from_secs(38));
    let (mut real, mut argus) = (
        Watch::new(real_hook, webhook_alerts),
        Watch::new(argus_hook, webhook_alerts),
    );
    let mut down = None;
    while t0.elapsed() < Duration::from_secs(37) {
        let t = t0.elapsed().as_secs();
        let want = (10..15).contains(&t) || (19..31).contains(&t);
        if down != Some(want) {
            down = Some(want);
            exporter.set(if want { 503 } else { 200 }, body);
        }
        real.poll(t0);
        argus.poll(t0);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    dev.await.unwrap();
    let seq = real.sequences();
    let statuses = |k: &str| -> Vec<String> {
        seq.get(k)
            .map(|v| v.iter().map(|s| s.status.clone()).collect())
            .unwrap_or_default()
    };
    assert_eq!(
        statuses("DataStopped{instance=}"),
        ["firing", "resolved", "firing", "resolved"],
        "{:#?}",
        real.seen
    );
    assert_eq!(
        statuses(&format!("LongDisruption{{instance={}}}", exporter.addr)),
        ["firing", "resolved"],
        "{:#?}",
        real.seen
    );
    let times = assert_same(&real, &argus, TOLERANCE, Duration::from_secs(8));
    eprintln!("setup 2 arrival times:\n{times}");
}

/// Setup 4: two pushers with an `instance` in the grouping key push to a Pushgateway
/// (the real one; Argus's gateway on the other side), scraped with `honor_labels:
/// true`; worker-2 stops for 12 s: the rate-drop alert fires and resolves.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn setup_4_pushers_through_the_gateway() {
    let pgw = spawn_peer(
        "pushgateway",
        &tool("prometheus-pushgateway"),
        &["--web.listen-address=127.0.0.1:{port}"],
    );
    let gw_port = free_port();
    let (real_hook, argus_hook) = (Hook::start().await, Hook::start().await);
    let (real_dir, argus_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (am, am_port) = two_sides(
        &example("4-pushgateway"),
        real_dir.path(),
        argus_dir.path(),
        &[],
        &[
            ("__WEBHOOK__", real_hook.url.clone()),
            ("__PUSHGATEWAY__", pgw.addr().to_string()),
        ],
        &[
            ("__WEBHOOK__", argus_hook.url.clone()),
            ("__PUSHGATEWAY__", format!("127.0.0.1:{gw_port}")),
        ],
    );
    let t0 = Instant::now();
    let _prom = prometheus(real_dir.path());
    let _am = am;
    let dev = argus_dev_with(argus_dir.path(), am_port, gw_port, Duration::from_secs(35));
    let (mut real, mut argus) = (
        Watch::new(real_hook, webhook_alerts),
        Watch::new(argus_hook, webhook_alerts),
    );
    let client = reqwest::Client::new();
    let gateways = [pgw.url(), format!("http://127.0.0.1:{gw_port}")];
    let mut counts = [0u64; 2];
    let mut next_push = Duration::ZERO;
    while t0.elapsed() < Duration::from_secs(34) {
        if t0.elapsed() >= next_push {
            next_push += Duration::from_millis(500);
            let t = t0.elapsed().as_secs();
            counts[0] += 5;
            if !(10..22).contains(&t) {
                counts[1] += 5;
            }
            for (i, c) in counts.iter().enumerate() {
                let body =
                    format!("# TYPE orders_processed_total counter\norders_processed_total {c}\n");
                for g in &gateways {
                    // Argus's gateway answers once `argus dev` is up; a push before
                    // that is simply lost on that side, as with a gateway not up yet.
                    let _ = client
                        .put(format!("{g}/metrics/job/orders/instance/worker-{}", i + 1))
                        .body(body.clone())
                        .send()
                        .await;
                }
            }
        }
        real.poll(t0);
        argus.poll(t0);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    dev.await.unwrap();
    drop(pgw);
    let seq = real.sequences();
    assert_eq!(
        seq.get("OrderRateDropped{instance=worker-2}")
            .map(|v| v.iter().map(|s| s.status.as_str()).collect::<Vec<_>>()),
        Some(vec!["firing", "resolved"]),
        "{:#?}",
        real.seen
    );
    let times = assert_same(&real, &argus, TOLERANCE, Duration::from_secs(8));
    eprintln!("setup 4 arrival times:\n{times}");
}

#[derive(Default, Clone, Copy)]
struct Deployment {
    ok: u64,
    errors: u64,
    fast: u64,
    slow: u64,
    heartbeat: f64,
}

impl Deployment {
    fn body(&self) -> String {
        let n = self.fast + self.slow;
        format!(
            "# TYPE http_requests_total counter\n\
             http_requests_total{{code=\"200\"}} {}\n\
             http_requests_total{{code=\"500\"}} {}\n\
             # TYPE http_request_duration_seconds histogram\n\
             http_request_duration_seconds_bucket{{le=\"0.1\"}} {}\n\
             http_request_duration_seconds_bucket{{le=\"0.5\"}} {}\n\
             http_request_duration_seconds_bucket{{le=\"1\"}} {n}\n\
             http_request_duration_seconds_bucket{{le=\"+Inf\"}} {n}\n\
             http_request_duration_seconds_sum {}\n\
             http_request_duration_seconds_count {n}\n\
             # TYPE app_heartbeat_timestamp_seconds gauge\n\
             app_heartbeat_timestamp_seconds {}\n",
            self.ok,
            self.errors,
            self.fast,
            self.fast,
            self.fast as f64 * 0.05 + self.slow as f64 * 0.8,
            self.heartbeat
        )
    }
}

/// Setup 5: blue and green deployments, eight rules (two recording; rate,
/// histogram_quantile, a heartbeat, "both deployments down"), `promtool check rules`
/// on the file, and a reload of both sides after a threshold is edited.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn setup_5_blue_green_with_reload() {
    let src = example("5-blue-green");
    let check = std::process::Command::new(tool("promtool"))
        .args(["check", "rules"])
        .arg(src.join("rules/app.yml"))
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
    assert!(String::from_utf8_lossy(&check.stdout).contains("SUCCESS: 8 rules found"));
    let rules = argus_rules::load_rule_file(&src.join("rules/app.yml")).unwrap();
    assert_eq!(rules.groups[0].rules.len(), 8);

    let (blue, green) = (Exporter::start("").await, Exporter::start("").await);
    let (real_hook, argus_hook) = (Hook::start().await, Hook::start().await);
    let (real_dir, argus_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (am, am_port) = two_sides(
        &src,
        real_dir.path(),
        argus_dir.path(),
        &[
            ("__BLUE__", blue.addr.clone()),
            ("__GREEN__", green.addr.clone()),
        ],
        &[("__WEBHOOK__", real_hook.url.clone())],
        &[("__WEBHOOK__", argus_hook.url.clone())],
    );
    let now_s = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    let mut d = [Deployment::default(); 2];
    d[0].heartbeat = now_s();
    d[1].heartbeat = now_s();
    blue.set(200, &d[0].body());
    green.set(200, &d[1].body());
    let t0 = Instant::now();
    let prom = prometheus(real_dir.path());
    let _am = am;
    let query_port = free_port();
    let dev = argus_dev_ports(
        argus_dir.path(),
        am_port,
        free_port(),
        query_port,
        Duration::from_secs(37),
    );
    let (mut real, mut argus) = (
        Watch::new(real_hook, webhook_alerts),
        Watch::new(argus_hook, webhook_alerts),
    );
    let client = reqwest::Client::new();
    let mut next = Duration::ZERO;
    let mut reloaded = false;
    // 8-16 s: green is slow (p90 0.8 s); 6-16 s: blue's heartbeat is stuck;
    // 14 s: SlowRequests' threshold goes from 0.5 to 5 and both sides reload;
    // 18-27 s: blue is down, 21-27 s green too.
    while t0.elapsed() < Duration::from_secs(36) {
        let el = t0.elapsed();
        if el >= next {
            next += Duration::from_millis(500);
            let t = el.as_secs();
            for (i, dep) in d.iter_mut().enumerate() {
                dep.ok += 10;
                if i == 1 && (8..16).contains(&t) {
                    dep.slow += 10;
                } else {
                    dep.fast += 10;
                }
                if !(i == 0 && (6..16).contains(&t)) {
                    dep.heartbeat = now_s();
                }
            }
            let down = [(18..27).contains(&t), (21..27).contains(&t)];
            blue.set(if down[0] { 503 } else { 200 }, &d[0].body());
            green.set(if down[1] { 503 } else { 200 }, &d[1].body());
        }
        if !reloaded && el >= Duration::from_secs(14) {
            reloaded = true;
            for dir in [real_dir.path(), argus_dir.path()] {
                let p = dir.join("rules/app.yml");
                let text = std::fs::read_to_string(&p)
                    .unwrap()
                    .replace("[5s]))) > 0.5", "[5s]))) > 5");
                std::fs::write(&p, text).unwrap();
            }
            for port in [prom.port, query_port] {
                let r = client
                    .post(format!("http://127.0.0.1:{port}/-/reload"))
                    .send()
                    .await
                    .unwrap();
                assert!(
                    r.status().is_success(),
                    "reload on :{port}: {:?}",
                    r.text().await
                );
            }
        }
        real.poll(t0);
        argus.poll(t0);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    dev.await.unwrap();
    drop(prom);
    let seq = real.sequences();
    let statuses = |k: &str| -> Vec<&str> {
        seq.get(k)
            .map(|v| v.iter().map(|s| s.status.as_str()).collect())
            .unwrap_or_default()
    };
    assert_eq!(
        statuses("BothDeploymentsDown{instance=}"),
        ["firing", "resolved"],
        "{:#?}",
        real.seen
    );
    // A deliberate difference (docs/bench-migration.md): the reload changed
    // SlowRequests' threshold while it fired. Argus evaluates the new rule with the
    // old state and sends the resolution at once; Prometheus 2.42 sent none in this
    // setup (the alert would end in Alertmanager at its `endsAt`, 4 × the 1 m resend
    // delay later). The firing notification is compared; the resolution is not.
    assert_eq!(
        statuses("SlowRequests{instance=}"),
        ["firing"],
        "{:#?}",
        real.seen
    );
    let slow_resolved = |s: &Seen| s.key == "SlowRequests{instance=}" && s.status == "resolved";
    let resolved_at: Vec<Duration> = argus
        .seen
        .iter()
        .filter(|s| slow_resolved(s))
        .map(|s| s.at)
        .collect();
    assert!(
        resolved_at.len() == 1 && resolved_at[0] >= Duration::from_secs(14),
        "Argus resolves the edited alert after the reload: {resolved_at:?}"
    );
    argus.seen.retain(|s| !slow_resolved(s));
    let times = assert_same(&real, &argus, TOLERANCE, Duration::from_secs(8));
    eprintln!("setup 5 arrival times:\n{times}");
}
