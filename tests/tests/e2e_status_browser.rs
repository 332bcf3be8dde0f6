//! The status page in a real browser: `argus dev` (in process) probes a local site that
//! is up and one that is down, over a store seeded with 40 hours of results history;
//! headless Debian `chromium` loads the status page, a target page and the alerts page.
//! The DOM shows the states, the uptime figures computed here from the results history
//! and the alert states; a screenshot of each page is written (paths printed); the
//! browser logs no console message; every request the pages make stays on the origin
//! (chromium's netlog), and chromium's own background requests are refused locally
//! (`--host-resolver-rules`, a dead proxy) so nothing leaves the machine.

mod common;

use argus_app::dev::DevOptions;
use argus_app::AppConfig;
use argus_model::{Cond, Kv, Millis, Table, Target};
use argus_status::results::{run_item, ResultRow};
use common::Site;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const HOUR: Millis = 3_600_000;
const DAY: Millis = 86_400_000;

fn free_addr() -> String {
    format!("127.0.0.1:{}", argus_testkit::free_port())
}

fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as Millis
}

/// Seeded history: a run every 10 minutes over the last 40 hours. The up site failed
/// 1 run in 23; the down site was up until 3 hours ago.
fn seeded(up: &str, down: &str, now: Millis) -> Vec<Vec<ResultRow>> {
    (1..=240)
        .rev()
        .map(|i| {
            let at = now - i * 600_000;
            let up_ok = i % 23 != 0;
            let down_ok = at < now - 3 * HOUR;
            let row = |t: &str, ok: bool| ResultRow {
                target: t.into(),
                at,
                success: ok,
                status_code: Some(if ok { 200 } else { 503 }),
                duration_ms: 12,
                error: (!ok).then(|| "HTTP 503 Service Unavailable".into()),
                phases_ms: Some([1, 1, 0, 9, 1]),
                log: (!ok).then(|| {
                    vec!["level=error msg=\"Invalid HTTP response status code 503\"".into()]
                }),
                ..Default::default()
            };
            vec![row(up, up_ok), row(down, down_ok)]
        })
        .collect()
}

struct Browser {
    dir: PathBuf,
    origin: String,
    n: usize,
}

impl Browser {
    fn run(&mut self, url: &str, extra: &[&str]) -> (String, String) {
        self.n += 1;
        let profile = self.dir.join(format!("profile-{}", self.n));
        let netlog = self.dir.join(format!("netlog-{}.json", self.n));
        let out = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--disable-extensions",
                "--no-pings",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--proxy-server=http://127.0.0.1:9",
                "--enable-logging=stderr",
                "--v=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--log-net-log={}", netlog.display()))
            .args(extra)
            .arg(url)
            .output()
            .expect("chromium runs (tests/run installs Debian's chromium)");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "chromium {url}: {stderr}");
        let console: Vec<&str> = stderr.lines().filter(|l| l.contains(":CONSOLE")).collect();
        assert!(console.is_empty(), "console messages on {url}: {console:?}");
        self.check_netlog(&netlog, url);
        (stdout, stderr)
    }

    /// Every request the page started went to its origin; any other request is
    /// chromium's own (no page initiator).
    fn check_netlog(&self, path: &Path, url: &str) {
        let log: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
            .as_i64()
            .unwrap();
        let mut ours = 0;
        for e in log["events"].as_array().unwrap() {
            if e["type"].as_i64() != Some(start) {
                continue;
            }
            let u = e["params"]["url"].as_str().unwrap_or("");
            let initiator = e["params"]["initiator"].as_str().unwrap_or("");
            if u.starts_with(&self.origin) {
                ours += 1;
            } else {
                assert!(
                    !initiator.starts_with("http") && !u.starts_with("data:"),
                    "{url} made a request off its origin: {u} (initiator {initiator})"
                );
            }
        }
        assert!(ours >= 1, "{url}: no request to the origin in the netlog");
    }

    fn dom(&mut self, url: &str) -> String {
        self.run(url, &["--dump-dom"]).0
    }

    fn screenshot(&mut self, url: &str, name: &str, width: u32) -> PathBuf {
        let path = self.dir.join(format!("{name}.png"));
        // On this loaded 2-core machine headless chromium now and then exits 0
        // without writing the file; it gets three tries (each one checked fully).
        let mut last = String::new();
        for _ in 0..3 {
            let (_, stderr) = self.run(
                url,
                &[
                    &format!("--screenshot={}", path.display()),
                    &format!("--window-size={width},1600"),
                    "--hide-scrollbars",
                ],
            );
            if path.exists() {
                break;
            }
            last = stderr;
        }
        let png = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("screenshot {name} not written ({e}): {last}"));
        assert!(png.starts_with(b"\x89PNG") && png.len() > 5_000, "{name}");
        println!("screenshot: {}", path.display());
        path
    }
}

fn attr_row<'a>(dom: &'a str, target: &str) -> &'a str {
    // Chromium serializes `&`, `<` and `>` in attribute values as entities.
    let esc = target
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let key = format!("data-target=\"{esc}\"");
    let at = dom
        .find(&key)
        .unwrap_or_else(|| panic!("no row for {target}"));
    let end = dom[at..].find("</tr>").unwrap() + at;
    &dom[at..end]
}

fn checks(row: &str, window: &str) -> String {
    let re = regex::Regex::new(&format!(
        "data-window=\"{window}\" data-checks=\"([0-9]+/[0-9]+)\">([^<]*)<"
    ))
    .unwrap();
    let c = re
        .captures(row)
        .unwrap_or_else(|| panic!("no {window} cell in {row}"));
    format!("{} {}", &c[1], &c[2])
}

fn expected(rows: &[ResultRow], target: &str, from: Millis, to: Millis) -> String {
    let rs: Vec<&ResultRow> = rows
        .iter()
        .filter(|r| r.target == target && r.at >= from && r.at <= to)
        .collect();
    let up = rs.iter().filter(|r| r.success).count();
    format!(
        "{up}/{} {:.2}%",
        rs.len(),
        up as f64 * 100.0 / rs.len() as f64
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_shows_states_uptime_and_alerts() {
    let up = Site::start(200).await;
    let down = Site::start(503).await;
    let dir = tempfile::tempdir().unwrap();
    let query = free_addr();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    std::fs::write(
        dir.path().join("rules/site.yml"),
        "groups:\n  - name: site\n    rules:\n\
         \x20     - alert: SiteDown\n        expr: probe_success == 0\n        annotations:\n          summary: '{{ $labels.instance }} is down <b>bold?</b>'\n\
         \x20     - alert: UpForAnHour\n        expr: probe_success == 1\n        for: 1h\n\
         \x20     - alert: NeverFires\n        expr: vector(1) > 2\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("argus.yml"),
        format!(
            "global:\n  scrape_interval: 1h\n  evaluation_interval: 1s\n\
             targets:\n  - url: {}\n    labels: {{team: web}}\n  - url: {}\n\
             rule_files: ['rules/*.yml']\n\
             dev:\n  data_dir: data\n  notifications_file: data/notifications.jsonl\n  \
             gateway_listen: {}\n  blackbox_listen: {}\n  alertmanager_listen: {}\n  query_listen: {query}\n",
            up.url,
            down.url,
            free_addr(),
            free_addr(),
            free_addr()
        ),
    )
    .unwrap();

    // Seed the store: 40 hours of results and a paused target.
    let store = dir.path().join("data/argus.redb");
    let t0 = now_ms();
    let history = seeded(&up.url, &down.url, t0);
    {
        let kv = argus_store::EmbeddedKv::open(&store).unwrap();
        for rows in &history {
            let item = run_item(
                rows[0].at,
                "0",
                rows.clone(),
                std::time::Duration::from_secs(30 * 86_400),
            );
            kv.put(Table::Results, item, Cond::Always).await.unwrap();
        }
        let mut paused = Target::new("https://paused.example/<i>");
        paused.enabled = false;
        kv.put(Table::Targets, paused.to_item(), Cond::Always)
            .await
            .unwrap();
        kv.sync().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let cfg = AppConfig::load(&dir.path().join("argus.yml")).unwrap();
    let run = tokio::spawn(argus_app::dev::run(
        cfg,
        DevOptions {
            // Long enough for 7 chromium runs at ~3.5 s each on a loaded machine
            // (load average 20 seen); pages fetched after the stop fail.
            run_for: Some(Duration::from_secs(32)),
        },
    ));
    let origin = format!("http://{query}");
    assert!(
        argus_testkit::wait_for_port(query.parse().unwrap(), Duration::from_secs(10)),
        "status page not listening"
    );
    // Wait for the first probe run and a firing SiteDown.
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..100 {
        let index = common::get_text(&client, format!("{origin}/")).await;
        let alerts = common::get_text(&client, format!("{origin}/alerts")).await;
        if !index.contains("data-state=\"never\"")
            && alerts.contains("data-rule=\"SiteDown\" data-state=\"firing\"")
            && alerts.contains("data-rule=\"UpForAnHour\" data-state=\"pending\"")
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "the first probe and evaluation did not show up");

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("status-browser");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let mut b = Browser {
        dir: shots.clone(),
        origin: origin.clone(),
        n: 0,
    };
    let rendered = now_ms();
    let index = b.dom(&format!("{origin}/"));
    let down_page = b.dom(&format!(
        "{origin}{}",
        argus_status::ids::target_path(&down.url)
    ));
    let alerts = b.dom(&format!("{origin}/alerts"));
    b.screenshot(&format!("{origin}/"), "index", 1280);
    b.screenshot(&format!("{origin}/"), "index-phone", 390);
    b.screenshot(
        &format!("{origin}{}", argus_status::ids::target_path(&down.url)),
        "target",
        1280,
    );
    b.screenshot(&format!("{origin}/alerts"), "alerts", 1280);

    // No external URL anywhere in the pages.
    let ext = regex::Regex::new(r#"(?i)(src|href)="(https?:)?//"#).unwrap();
    for (name, page) in [
        ("index", &index),
        ("target", &down_page),
        ("alerts", &alerts),
    ] {
        assert!(!ext.is_match(page), "{name} links off the origin");
    }

    // States; single-location probing shows no location rows.
    assert!(!index.contains("data-location=") && !down_page.contains("data-location="));
    assert!(attr_row(&index, &up.url).contains("data-state=\"up\""));
    assert!(attr_row(&index, &down.url).contains("data-state=\"down\""));
    assert!(attr_row(&index, "https://paused.example/<i>").contains("data-state=\"paused\""));
    assert!(down_page.contains("data-state=\"down\""));
    assert!(down_page.contains("ongoing"), "the current outage");
    assert!(
        down_page.contains("msg=\"Probe failed\""),
        "the live probe's debug output"
    );
    // Alert states, as in Prometheus's /alerts.
    for (rule, state) in [
        ("SiteDown", "firing"),
        ("UpForAnHour", "pending"),
        ("NeverFires", "inactive"),
    ] {
        assert!(
            alerts.contains(&format!("data-rule=\"{rule}\" data-state=\"{state}\"")),
            "{rule} {state}"
        );
    }
    assert!(
        alerts.contains("is down &lt;b&gt;bold?&lt;/b&gt;"),
        "annotation escaped"
    );
    assert!(attr_row(&index, &down.url).contains("SiteDown"));

    run.await.unwrap().unwrap();

    // The uptime figures, computed here from the results history in the store.
    let mut kv = None;
    for _ in 0..100 {
        if let Ok(k) = argus_store::EmbeddedKv::open(&store) {
            kv = Some(k);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let kv = kv.expect("store reopens");
    let mut rows = argus_app::results::history(&kv, &up.url, 0).await.unwrap();
    rows.extend(
        argus_app::results::history(&kv, &down.url, 0)
            .await
            .unwrap(),
    );
    let live = rows.iter().filter(|r| r.at >= t0).count();
    assert_eq!(live, 2, "one live run of both targets");
    let hour0 = rendered.div_euclid(HOUR) * HOUR;
    let day0 = rendered.div_euclid(DAY) * DAY;
    for t in [&up.url, &down.url] {
        let row = attr_row(&index, t);
        assert_eq!(
            checks(row, "24h"),
            expected(&rows, t, hour0 - 23 * HOUR, rendered),
            "{t} 24h"
        );
        assert_eq!(
            checks(row, "7d"),
            expected(&rows, t, day0 - 6 * DAY, rendered),
            "{t} 7d"
        );
        assert_eq!(
            checks(row, "30d"),
            expected(&rows, t, day0 - 29 * DAY, rendered),
            "{t} 30d"
        );
    }
    // The rollups were written by the probe run (the seeded hours are closed).
    assert!(!kv
        .query(Table::Results, argus_status::rollup::HOURS_PK, None)
        .await
        .unwrap()
        .is_empty());
    println!("screenshots in {}", shots.display());
}

/// `argus dev` with three simulated locations, one of which cannot reach a site:
/// chromium shows the site up overall (the quorum view: 1 of 3 failing is below the
/// majority), a row per location with that location down and its error, and each
/// location's uptime equal to the figure computed here from its own rows in the
/// results history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_shows_state_per_location() {
    let site = Site::start(200).await;
    let dir = tempfile::tempdir().unwrap();
    let query = free_addr();
    let locs = ["us-east-1", "eu-west-1", "ap-southeast-2"];
    std::fs::write(
        dir.path().join("argus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             locations: [{}]\n\
             targets:\n  - url: {}\n\
             dev:\n  data_dir: data\n  notifications_file: data/notifications.jsonl\n  \
             gateway_listen: {}\n  blackbox_listen: {}\n  alertmanager_listen: {}\n  query_listen: {query}\n  \
             locations:\n    - name: us-east-1\n    - name: eu-west-1\n      unreachable: ['{}']\n    - name: ap-southeast-2\n",
            locs.join(", "),
            site.url,
            free_addr(),
            free_addr(),
            free_addr(),
            site.url,
        ),
    )
    .unwrap();
    let cfg = AppConfig::load(&dir.path().join("argus.yml")).unwrap();
    argus_app::dev::run(
        cfg.clone(),
        DevOptions {
            run_for: Some(Duration::from_secs(5)),
        },
    )
    .await
    .unwrap();
    // The store argus dev wrote, served as argus dev serves it (the query API with
    // the status page as its fallback) over a real listener, without a deadline.
    let store = dir.path().join("data/argus.redb");
    let mut kv = None;
    for _ in 0..100 {
        if let Ok(k) = argus_store::EmbeddedKv::open(&store) {
            kv = Some(k);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let kv: std::sync::Arc<dyn Kv> = std::sync::Arc::new(kv.expect("store reopens"));
    let (svc, _) = argus_app::query::build_query(kv.clone(), &cfg, None).unwrap();
    let listener = tokio::net::TcpListener::bind(&query).await.unwrap();
    let server = tokio::spawn(argus_http::serve(
        listener,
        std::sync::Arc::new(svc),
        std::sync::Arc::new(argus_model::SystemClock),
        argus_http::Limits::default(),
    ));
    let origin = format!("http://{query}");
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("status-browser-locations");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let mut b = Browser {
        dir: shots.clone(),
        origin: origin.clone(),
        n: 0,
    };
    let index = b.dom(&format!("{origin}/"));
    let page_url = format!("{origin}{}", argus_status::ids::target_path(&site.url));
    let page = b.dom(&page_url);
    b.screenshot(&page_url, "target-locations", 1280);
    server.abort();

    // Overall up (quorum view), the unreachable location down with its error.
    assert!(attr_row(&index, &site.url).contains("data-state=\"up\""));
    let loc_row = |dom: &str, l: &str| -> String {
        let key = format!("data-location=\"{l}\"");
        let at = dom.find(&key).unwrap_or_else(|| panic!("no row for {l}"));
        let end = dom[at..].find("</tr>").unwrap() + at;
        dom[at..end].to_string()
    };
    for l in locs {
        let (r, p) = (loc_row(&index, l), loc_row(&page, l));
        let want = if l == "eu-west-1" { "down" } else { "up" };
        assert!(r.contains(&format!("data-state=\"{want}\"")), "{l}: {r}");
        assert!(p.contains(&format!("data-state=\"{want}\"")), "{l}: {p}");
    }
    assert!(loc_row(&page, "eu-west-1").contains("unreachable from eu-west-1"));
    assert!(page.contains("counts as down when at least 2 of the locations"));

    // Each location's uptime, computed here from its own rows in the history.
    let rows = argus_app::results::history(kv.as_ref(), &site.url, 0)
        .await
        .unwrap();
    for l in locs {
        let mine: Vec<ResultRow> = rows
            .iter()
            .filter(|r| r.location.as_deref() == Some(l))
            .cloned()
            .collect();
        assert!(mine.len() >= 2, "{l} has rows");
        for (dom, name) in [(&index, "index"), (&page, "target page")] {
            let row = loc_row(dom, l);
            for w in ["24h", "7d", "30d"] {
                assert_eq!(
                    checks(&row, w),
                    expected(&mine, &site.url, 0, now_ms()),
                    "{name}: {l} {w}"
                );
            }
        }
    }
    assert!(checks(&loc_row(&index, "eu-west-1"), "24h").starts_with("0/"));
    // The overall row counts one check per round (argus dev runs every location at
    // the same time), not one per location.
    let overall = checks(attr_row(&index, &site.url), "24h");
    let rounds: std::collections::BTreeSet<i64> = rows.iter().map(|r| r.at).collect();
    assert_eq!(
        overall,
        format!("{0}/{0} 100.00%", rounds.len()),
        "{overall}"
    );
    println!("screenshots in {}", shots.display());
}
