//! Probing from several locations, alerting on a quorum (issue 18), with time stepped
//! by the test and the shipped `examples/rules/quorum.yml`:
//! one location failing → a SiteDegraded warning, no page; two of three failing → one
//! SiteDown page, resolved once when they recover; a location gone silent → its own
//! LocationSilent alert, and no page.
//!
//! * `argus dev`'s simulated locations (`dev.locations`, in one process, per-location
//!   fault injection), on the embedded store;
//! * three regions of moto: each location's probe service built the way the probe
//!   function builds it at cold start (`ARGUS_LOCATION`, `AWS_REGION` of its own
//!   region, `ARGUS_HOME_REGION` for the tables), evaluator and notifier in the home
//!   region; the remote regions hold no table.

mod common;

use argus_app::pipeline::Pipeline;
use argus_app::probe_svc::ProbeService;
use argus_app::AppConfig;
use argus_model::{Kv, Target};
use common::{Hook, Site};
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

const STEP_MS: i64 = 15_000;
const LOCATIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-2"];

fn write_config(dir: &std::path::Path, hook: &str, dev_locations: bool) -> AppConfig {
    let rules =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rules/quorum.yml");
    std::fs::copy(rules, dir.join("quorum.yml")).unwrap();
    std::fs::write(
        dir.join("alertmanager.yml"),
        format!(
            "route:\n  receiver: ops\n  group_by: [alertname, instance, location]\n  group_wait: 0s\n  \
             group_interval: 15s\n  repeat_interval: 4h\nreceivers:\n  - name: ops\n    webhook_configs:\n      - url: {hook}\n"
        ),
    )
    .unwrap();
    let dev = if dev_locations {
        format!(
            "dev:\n  locations:\n{}",
            LOCATIONS
                .iter()
                .map(|l| format!("    - name: {l}\n"))
                .collect::<String>()
        )
    } else {
        String::new()
    };
    std::fs::write(
        dir.join("argus.yml"),
        format!(
            "global:\n  scrape_interval: 15s\n  evaluation_interval: 15s\n\
             locations: [{}]\nquorum: 2\nrule_files: [quorum.yml]\nalertmanager_config: alertmanager.yml\n{dev}",
            LOCATIONS.join(", ")
        ),
    )
    .unwrap();
    AppConfig::load(&dir.join("argus.yml")).unwrap()
}

/// The probe services of the locations, the evaluator and notifier of the home region.
struct Driver {
    probes: Vec<(String, Arc<ProbeService>)>,
    pipeline: Pipeline,
    silent: HashSet<String>,
    now: i64,
}

impl Driver {
    async fn step(&mut self) {
        self.now += STEP_MS;
        for (name, p) in &self.probes {
            if self.silent.contains(name) {
                continue;
            }
            let r = p.run(self.now, None).await.expect("probe run");
            assert!(r.errors.is_empty(), "{name}: {r}");
        }
        let e = self
            .pipeline
            .evaluator
            .tick(self.now)
            .await
            .expect("evaluation");
        assert!(e.errors.is_empty(), "{e}");
        let n = self
            .pipeline
            .notifier
            .tick(self.now)
            .await
            .expect("notifier");
        assert!(n.errors.is_empty(), "{:?}", n.errors);
    }

    fn unreachable(&self, location: &str, ids: &[&str]) {
        let (_, p) = self.probes.iter().find(|(n, _)| n == location).unwrap();
        p.set_unreachable(ids.iter().map(|s| s.to_string()));
    }
}

/// (alertname, status, severity, location) of every alert in every webhook body.
fn seen(hook: &Hook) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for b in hook.bodies.lock().unwrap().iter() {
        for a in b["alerts"].as_array().unwrap() {
            let l = &a["labels"];
            let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
            out.push((
                s(&l["alertname"]),
                s(&a["status"]),
                s(&l["severity"]),
                s(&l["location"]),
            ));
        }
    }
    out
}

fn count(hook: &Hook, alert: &str, status: &str) -> usize {
    seen(hook)
        .iter()
        .filter(|(a, s, _, _)| a == alert && s == status)
        .count()
}

async fn scenario(mut d: Driver, site: &Site, hook: &Hook) {
    let id = site.url.as_str();
    for _ in 0..3 {
        d.step().await;
    }
    assert!(seen(hook).is_empty(), "{:?}", seen(hook));

    // One location cannot reach the site: a warning after `for` (2m), never a page.
    d.unreachable("eu-west-1", &[id]);
    for _ in 0..12 {
        d.step().await;
    }
    assert_eq!(count(hook, "SiteDegraded", "firing"), 1, "{:?}", seen(hook));
    assert_eq!(count(hook, "SiteDown", "firing"), 0, "{:?}", seen(hook));
    assert!(seen(hook).iter().all(|(_, _, sev, _)| sev == "warn"));

    // Two of three: one page (after `for`, 1m), exactly one.
    d.unreachable("ap-southeast-2", &[id]);
    for _ in 0..3 {
        d.step().await;
    }
    assert_eq!(
        count(hook, "SiteDown", "firing"),
        0,
        "paged before `for` elapsed"
    );
    for _ in 0..6 {
        d.step().await;
    }
    assert_eq!(count(hook, "SiteDown", "firing"), 1, "{:?}", seen(hook));

    // Recovery: resolved once, nothing repeats.
    d.unreachable("eu-west-1", &[]);
    d.unreachable("ap-southeast-2", &[]);
    for _ in 0..10 {
        d.step().await;
    }
    assert_eq!(count(hook, "SiteDown", "firing"), 1, "{:?}", seen(hook));
    assert_eq!(count(hook, "SiteDown", "resolved"), 1, "{:?}", seen(hook));
    assert_eq!(
        count(hook, "SiteDegraded", "resolved"),
        1,
        "{:?}",
        seen(hook)
    );

    // A location goes silent: its own alert; its silence is neither up nor a page,
    // and one location failing meanwhile is still only a warning.
    d.silent.insert("eu-west-1".into());
    for _ in 0..12 {
        d.step().await;
    }
    let silent: Vec<_> = seen(hook)
        .into_iter()
        .filter(|(a, s, _, _)| a == "LocationSilent" && s == "firing")
        .collect();
    assert_eq!(silent.len(), 1, "{:?}", seen(hook));
    assert_eq!(silent[0].3, "eu-west-1");
    assert_eq!(count(hook, "SiteDown", "firing"), 1, "{:?}", seen(hook));

    // Back: the silence alert resolves.
    d.silent.clear();
    for _ in 0..6 {
        d.step().await;
    }
    assert_eq!(
        count(hook, "LocationSilent", "resolved"),
        1,
        "{:?}",
        seen(hook)
    );
    assert_eq!(count(hook, "SiteDown", "firing"), 1, "{:?}", seen(hook));

    // Every location's rows are in the results, each with its location.
    let rows = argus_app::results::history(d.pipeline.kv.as_ref(), id, 0)
        .await
        .unwrap();
    let locs: BTreeSet<_> = rows.iter().filter_map(|r| r.location.clone()).collect();
    assert_eq!(locs.len(), 3, "{locs:?}");
    assert!(rows.iter().all(|r| r.location.is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_simulated_locations_page_on_quorum_only() {
    let site = Site::start(200).await;
    let only_us = Site::start(200).await;
    let hook = Hook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &hook.url, true);
    let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open_temp().unwrap());
    argus_app::targets::add(kv.as_ref(), &Target::new(&site.url))
        .await
        .unwrap();
    // Restricted to one location, and one naming a location nobody configured.
    let mut t = Target::new(&only_us.url);
    t.locations = vec!["us-east-1".into()];
    argus_app::targets::add(kv.as_ref(), &t).await.unwrap();
    let mut bad = Target::new("https://nowhere.invalid/");
    bad.locations = vec!["mars-1".into()];
    argus_app::targets::add(kv.as_ref(), &bad).await.unwrap();

    let p = Pipeline::build(kv.clone(), cfg, None).await.unwrap();
    assert_eq!(p.locations.len(), 3);
    let now = argus_model::Clock::now_ms(&argus_model::SystemClock);
    let mut reports = Vec::new();
    for l in &p.locations {
        reports.push((l.name.clone(), l.probe.run(now, None).await.unwrap()));
    }
    for (name, r) in &reports {
        let ids: Vec<&str> = r.probed.iter().map(|p| p.target.id.as_str()).collect();
        assert!(ids.contains(&site.url.as_str()), "{name}: {r}");
        assert_eq!(
            ids.contains(&only_us.url.as_str()),
            name == "us-east-1",
            "{name}: {r}"
        );
        assert_eq!(r.bad_items.len(), 1, "{name}: {r}");
        assert!(
            r.bad_items[0].contains("nowhere.invalid") && r.bad_items[0].contains("locations[0]"),
            "{r}"
        );
    }
    // Each location's own series, one group per (target, location).
    let snap = p.gateway.snapshot(now).await.unwrap();
    let mut with_loc = BTreeSet::new();
    for (labels, _) in &snap {
        if labels.get("__name__") == Some("probe_success")
            && labels.get("instance") == Some(site.url.as_str())
        {
            with_loc.insert(labels.get("location").unwrap_or("").to_string());
        }
    }
    assert_eq!(with_loc, LOCATIONS.iter().map(|s| s.to_string()).collect());

    let probes = p
        .locations
        .iter()
        .map(|l| (l.name.clone(), l.probe.clone()))
        .collect();
    let d = Driver {
        probes,
        pipeline: p,
        silent: HashSet::new(),
        now,
    };
    scenario(d, &site, &hook).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_regions_page_on_quorum_only() {
    let moto = argus_testkit::moto();
    for (k, v) in argus_testkit::aws_env(&moto.url()) {
        // SAFETY: set before any SDK client is built, by this test alone.
        unsafe { std::env::set_var(k, v) };
    }
    let site = Site::start(200).await;
    let hook = Hook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &hook.url, false);
    let home = argus_store::aws_sdk_config_for(Some(&moto.url())).await;
    argus_store::bootstrap(&home, "argus-", &mut |_: &str| {})
        .await
        .unwrap();

    // Each location as the probe function builds itself at cold start in its region.
    let mut probes = Vec::new();
    for l in LOCATIONS {
        // SAFETY: as above; sequential, before this location's clients are built.
        unsafe {
            std::env::set_var("ARGUS_CONFIG", dir.path().join("argus.yml"));
            std::env::set_var("ARGUS_LOCATION", l);
            std::env::set_var("AWS_REGION", l);
            std::env::set_var("ARGUS_HOME_REGION", "us-east-1");
        }
        let cold = argus_app::pipeline::ColdStart::load().await.unwrap();
        assert_eq!(cold.config.probe.location.as_deref(), Some(l));
        let gw = Arc::new(
            argus_app::pipeline::build_gateway(
                cold.kv.clone(),
                &cold.config,
                argus_app::pipeline::StoreAccess::Shared,
                None,
            )
            .unwrap(),
        );
        let p = argus_app::pipeline::build_probe(cold.kv.clone(), &cold.config, gw).unwrap();
        assert_eq!(p.location(), Some(l));
        probes.push((l.to_string(), Arc::new(p)));
    }
    // A location the template was not deployed to is refused at cold start.
    unsafe { std::env::set_var("ARGUS_LOCATION", "sa-east-1") };
    let e = argus_app::pipeline::ColdStart::load()
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("ARGUS_LOCATION") && e.contains("sa-east-1"),
        "{e}"
    );

    let kv: Arc<dyn Kv> = Arc::new(argus_store::DynamoKv::from_conf(&home, "argus-"));
    argus_app::targets::add(kv.as_ref(), &Target::new(&site.url))
        .await
        .unwrap();
    let p = Pipeline::build(kv, cfg, Some(&home)).await.unwrap();
    let now = argus_model::Clock::now_ms(&argus_model::SystemClock);
    let d = Driver {
        probes,
        pipeline: p,
        silent: HashSet::new(),
        now,
    };
    scenario(d, &site, &hook).await;

    // The remote regions hold no table: their probes wrote to the home region's.
    for r in &LOCATIONS[1..] {
        let sdk = home
            .to_builder()
            .region(aws_config::Region::new(r.to_string()))
            .build();
        let tables = aws_sdk_dynamodb::Client::new(&sdk)
            .list_tables()
            .send()
            .await
            .unwrap();
        assert!(
            tables.table_names().is_empty(),
            "{r}: {:?}",
            tables.table_names()
        );
    }
}
