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

fn example(n: &str) -> PathBuf {
    argus_testkit::repo_root().join("examples/migration").join(n)
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

/// Records the arrival time of each new body of `hook`.
struct Watch {
    hook: Hook,
    seen: Vec<Seen>,
    n: usize,
}

impl Watch {
    fn new(hook: Hook) -> Watch {
        Watch {
            hook,
            seen: Vec::new(),
            n: 0,
        }
    }

    fn poll(&mut self, t0: Instant, key_of: &dyn Fn(&BTreeMap<String, String>) -> String) {
        let bodies = self.hook.bodies.lock().unwrap().clone();
        for b in &bodies[self.n..] {
            for a in b["alerts"].as_array().into_iter().flatten() {
                let labels = map(&a["labels"]);
                self.seen.push(Seen {
                    key: key_of(&labels),
                    status: a["status"].as_str().unwrap_or("").to_string(),
                    labels,
                    annotations: map(&a["annotations"]),
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
        ],
    )
}

/// `argus dev` on the files of `dir`, its Alertmanager on `am_port`, for `run_for`.
fn argus_dev(dir: &Path, am_port: u16, run_for: Duration) -> tokio::task::JoinHandle<()> {
    let mut cfg = argus_app::AppConfig::load(&dir.join("argus.yml")).unwrap();
    cfg.dev.alertmanager_listen = format!("127.0.0.1:{am_port}");
    cfg.dev.gateway_listen = format!("127.0.0.1:{}", free_port());
    cfg.dev.blackbox_listen = format!("127.0.0.1:{}", free_port());
    cfg.dev.query_listen = format!("127.0.0.1:{}", free_port());
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
    let strip = |m: &BTreeMap<String, Vec<Seen>>| -> BTreeMap<String, Vec<(String, BTreeMap<String, String>, BTreeMap<String, String>)>> {
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
            let d = if x.at > y.at { x.at - y.at } else { y.at - x.at };
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
    let app_addr = app.url.trim_start_matches("http://").trim_end_matches('/').to_string();
    let closed = format!("127.0.0.1:{}", free_port());
    let (real_hook, argus_hook) = (Hook::start().await, Hook::start().await);
    let src = example("1-blackbox");
    let real_dir = tempfile::tempdir().unwrap();
    let argus_dir = tempfile::tempdir().unwrap();

    let common = [("__APP__", app_addr.clone()), ("__CLOSED__", closed.clone())];
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
    let key = |l: &BTreeMap<String, String>| {
        format!(
            "{}{{instance={}}}",
            l.get("alertname").cloned().unwrap_or_default(),
            l.get("instance").cloned().unwrap_or_default()
        )
    };
    let (mut real, mut argus) = (Watch::new(real_hook), Watch::new(argus_hook));
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
        real.poll(t0, &key);
        argus.poll(t0, &key);
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
    let times = assert_same(
        &real,
        &argus,
        Duration::from_secs(3),
        Duration::from_secs(10),
    );
    eprintln!("setup 1 arrival times:\n{times}");
}
