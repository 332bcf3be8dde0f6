//! Every CLI command while `argus dev` runs (issue 12, section 4): redb locks the store
//! file to dev, so the CLI goes through dev's link file (URL + token, mode 0600) to its
//! store and its Prometheus API. A target added this way is probed on the next run
//! and queryable right after; silences and alerts work; `argus query` answers instant
//! and range queries, also with `--url`/`--token`, and refuses a wrong token.

mod common;

use common::Site;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `argus` binary of this build (built with the workspace if missing).
fn argus_bin() -> PathBuf {
    argus_testkit::workspace_bins(&["argus"]).join("argus")
}

fn run(bin: &Path, data: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("ARGUS_QUERY_TOKEN")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn ok(bin: &Path, data: &Path, args: &[&str]) -> String {
    let (good, out, err) = run(bin, data, args);
    assert!(good, "argus {args:?} failed: {out}{err}");
    out
}

fn free_addr() -> String {
    format!("127.0.0.1:{}", argus_testkit::free_port())
}

/// Polls `argus query` until its output satisfies `pred` (probe runs every second).
fn query_until(bin: &Path, data: &Path, expr: &str, pred: impl Fn(&str) -> bool) -> String {
    let end = Instant::now() + Duration::from_secs(20);
    let mut last = String::new();
    while Instant::now() < end {
        let (good, out, err) = run(bin, data, &["query", expr]);
        if good && pred(&out) {
            return out;
        }
        last = format!("{out}{err}");
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("argus query {expr:?} never matched: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cli_command_works_while_argus_dev_runs() {
    let bin = argus_bin();
    let seeded = Site::start(200).await;
    let added = Site::start(503).await;
    let imported = Site::start(200).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    std::fs::write(
        dir.path().join("rules/site.yml"),
        "groups:\n  - name: site\n    rules:\n      - alert: SiteDown\n        expr: probe_success == 0\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("am.yml"),
        "route:\n  receiver: log\n  group_wait: 0s\nreceivers:\n  - name: log\n",
    )
    .unwrap();
    let q = free_addr();
    std::fs::write(
        dir.path().join("argus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             targets:\n  - url: {}\n\
             rule_files: ['rules/*.yml']\nalertmanager_config: am.yml\n\
             dev:\n  data_dir: data\n  notifications_file: data/notifications.jsonl\n  \
             gateway_listen: {}\n  blackbox_listen: {}\n  alertmanager_listen: {}\n  query_listen: {q}\n",
            seeded.url,
            free_addr(),
            free_addr(),
            free_addr()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let log = std::fs::File::create(dir.path().join("dev.log")).unwrap();
    let _dev = Proc(
        Command::new(&bin)
            .arg("dev")
            .arg("--config")
            .arg(dir.path().join("argus.yml"))
            .args(["--for", "2m"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    assert!(
        argus_testkit::wait_for_port(q.parse().unwrap(), Duration::from_secs(30)),
        "dev's query API never listened: {}",
        std::fs::read_to_string(dir.path().join("dev.log")).unwrap_or_default()
    );
    // The link file: owner-only.
    let link = data.join("dev-api.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&link).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{link:?} mode {mode:o}");
    }
    let link_v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&link).unwrap()).unwrap();
    let token = link_v["token"].as_str().unwrap().to_string();

    // The store is dev's: opening it directly fails, the CLI goes through dev.
    assert!(argus_store::EmbeddedKv::open(data.join("argus.redb")).is_err());

    // targets add, then the next run probes it and the query shows it.
    let out = ok(
        &bin,
        &data,
        &["targets", "add", &added.url, "--label", "team=web"],
    );
    assert!(out.contains("added"), "{out}");
    let out = query_until(&bin, &data, "probe_success", |o| o.contains(&added.url));
    assert!(
        out.contains(&format!(
            "probe_success{{instance=\"{}\", job=\"probe\", team=\"web\"}} => 0 @[",
            added.url
        )),
        "{out}"
    );
    assert!(added.hits.load(std::sync::atomic::Ordering::SeqCst) > 0);

    // targets import and list.
    let sd = dir.path().join("sd.yml");
    std::fs::write(
        &sd,
        format!("- targets: ['{}']\n  labels: {{env: prod}}\n", imported.url),
    )
    .unwrap();
    let out = ok(&bin, &data, &["targets", "import", sd.to_str().unwrap()]);
    assert!(out.contains("imported 1 targets"), "{out}");
    let list = ok(&bin, &data, &["targets", "list"]);
    for u in [&seeded.url, &added.url, &imported.url] {
        assert!(list.contains(u.as_str()), "{u} not in {list}");
    }
    query_until(&bin, &data, "probe_success{env=\"prod\"}", |o| {
        o.contains(&imported.url)
    });

    // A range query through the running dev.
    let now = chrono::Utc::now().timestamp();
    let out = ok(
        &bin,
        &data,
        &[
            "query",
            "probe_success",
            "--start",
            &(now - 60).to_string(),
            "--end",
            &now.to_string(),
            "--step",
            "1s",
        ],
    );
    assert!(
        out.contains(&format!("instance=\"{}\"", seeded.url)) && out.contains(" =>\n1 @["),
        "{out}"
    );

    // --url and --token against dev's API; a wrong token is refused.
    let url = format!("http://{q}");
    let out = ok(
        &bin,
        &data,
        &[
            "query",
            "count(probe_success)",
            "--url",
            &url,
            "--token",
            &token,
        ],
    );
    assert!(out.starts_with("{} => 3 @["), "{out}");
    let (good, out, err) = run(
        &bin,
        &data,
        &["query", "up", "--url", &url, "--token", "wrong"],
    );
    // The API itself has no token in dev; the admin route does.
    assert!(good, "{out}{err}");
    let c = reqwest::Client::new();
    let r = c
        .post(format!("{url}/-/argus/kv"))
        .bearer_auth("wrong")
        .body("{\"op\":\"scan\",\"table\":\"targets\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // The alert for the failing target: in the notifier's store and in the API.
    let end = Instant::now() + Duration::from_secs(20);
    let mut alerts = String::new();
    while Instant::now() < end {
        alerts = ok(
            &bin,
            &data,
            &[
                "alerts",
                "list",
                "--config",
                dir.path().join("argus.yml").to_str().unwrap(),
            ],
        );
        if alerts.contains(&added.url) {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        alerts.contains("SiteDown") && alerts.contains(&added.url),
        "{alerts}"
    );
    let out = ok(&bin, &data, &["query", "ALERTS{alertstate=\"firing\"}"]);
    assert!(out.contains(&added.url), "{out}");

    // Silences: add, list, expire.
    let cfg = dir.path().join("argus.yml");
    let cfg = cfg.to_str().unwrap();
    let id = ok(
        &bin,
        &data,
        &[
            "silences",
            "add",
            "alertname=SiteDown",
            "--comment",
            "maintenance",
            "--config",
            cfg,
        ],
    );
    let id = id.trim().to_string();
    assert!(!id.is_empty());
    let list = ok(&bin, &data, &["silences", "list", "--config", cfg]);
    assert!(list.contains(&id) && list.contains("active"), "{list}");
    let out = ok(&bin, &data, &["silences", "expire", &id, "--config", cfg]);
    assert!(out.contains("expired"), "{out}");
    let list = ok(&bin, &data, &["silences", "list", "--config", cfg]);
    assert!(list.contains(&id) && list.contains("expired"), "{list}");

    // targets rm: gone from the table; a missing id is an error.
    let out = ok(&bin, &data, &["targets", "rm", &added.url]);
    assert!(out.contains("removed"), "{out}");
    assert!(!ok(&bin, &data, &["targets", "list"]).contains(&added.url));
    let (good, _, err) = run(&bin, &data, &["targets", "rm", "https://nope.example"]);
    assert!(!good && err.contains("no target"), "{err}");

    // A bad query is a clear error.
    let (good, _, err) = run(&bin, &data, &["query", "sum("]);
    assert!(!good && err.contains("bad_data"), "{err}");
}

/// Without a running dev, `argus query` answers from the store in process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_without_dev_reads_the_store() {
    let bin = argus_bin();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        let kv = argus_store::EmbeddedKv::open(data.join("argus.redb")).unwrap();
        let now = chrono::Utc::now().timestamp_millis();
        for (i, v) in [1.0, 2.0, 4.0].iter().enumerate() {
            let c = argus_app::tsdb::Chunk {
                ts: now - 30_000 + i as i64 * 10_000,
                scraped: vec![(
                    argus_model::Labels::from_pairs([("__name__", "m"), ("job", "j")]),
                    *v,
                )],
                generated: vec![],
            };
            argus_app::tsdb::write_chunk(&kv, &c, std::time::Duration::from_secs(3600))
                .await
                .unwrap();
        }
        kv.sync().await.unwrap();
    }
    // The writer thread lets go of the file just after the handle drops.
    let mut out = String::new();
    for _ in 0..50 {
        let (good, o, _) = run(&bin, &data, &["query", "m"]);
        if good {
            out = o;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(out.starts_with("m{job=\"j\"} => 4 @["), "{out}");
    let (good, _, err) = run(&bin, &data, &["query", "m", "--time", "abc"]);
    assert!(!good && err.contains("--time"), "{err}");
}
