//! A probe run above `max_targets_per_invocation` fans out: the scheduled invocation
//! probes the first shard into slot 0 and hands the others out with slots 1..; each
//! shard invocation (here run in process through the `FanOut` port, in AWS an async
//! self-invoke) writes its own bundle and results item. Together they cover every
//! target once, and a target that moves to another slot on a later run shows once,
//! with its newest value.

mod common;

use argus_app::pipeline::Pipeline;
use argus_app::probe_svc::{FanOut, ProbeService};
use argus_app::AppConfig;
use argus_model::{Clock, Kv, Labels, SystemClock, Table, Target};
use async_trait::async_trait;
use common::Site;
use std::sync::{Arc, Mutex};

/// Records what the scheduled run hands out; the test then runs each shard as the
/// shard's own invocation would.
#[derive(Default)]
struct Recorded(Mutex<Vec<(usize, Vec<String>)>>);

#[async_trait]
impl FanOut for Recorded {
    async fn invoke_shard(&self, slot: usize, target_ids: Vec<String>) -> Result<(), String> {
        self.0.lock().unwrap().push((slot, target_ids));
        Ok(())
    }
}

async fn run_with_fan_out(probe: &ProbeService, now: i64) -> Vec<(usize, Vec<String>)> {
    let fan = Recorded::default();
    let r = probe.run(now, Some(&fan)).await.unwrap();
    assert!(r.errors.is_empty(), "{r}");
    let shards = fan.0.lock().unwrap().clone();
    assert_eq!(r.fanned_out, shards.len());
    for (slot, ids) in &shards {
        let r = probe.run_ids(ids, &slot.to_string(), now).await.unwrap();
        assert_eq!(r.probed.len(), ids.len(), "{r}");
    }
    shards
}

fn probe_success(snap: &[(Labels, f64)]) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = snap
        .iter()
        .filter(|(l, _)| l.name() == Some("probe_success"))
        .map(|(l, v)| (l.get("instance").unwrap_or_default().to_string(), *v))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanned_out_shards_write_their_own_slots_and_cover_every_target_once() {
    let statuses = [200, 200, 503, 200, 503];
    let mut sites = Vec::new();
    for s in statuses {
        sites.push(Site::start(s).await);
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("argus.yml"),
        "probe:\n  max_targets_per_invocation: 2\n",
    )
    .unwrap();
    let cfg = AppConfig::load(&dir.path().join("argus.yml")).unwrap();
    let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open_temp().unwrap());
    let p = Pipeline::build(kv.clone(), cfg, None).await.unwrap();
    for s in &sites {
        argus_app::targets::add(kv.as_ref(), &Target::new(&s.url))
            .await
            .unwrap();
    }

    let t0 = SystemClock.now_ms();
    let shards = run_with_fan_out(&p.probe, t0).await;
    // 5 targets, 2 per invocation: slot 0 here, slots 1 and 2 handed out.
    assert_eq!(
        shards
            .iter()
            .map(|(s, ids)| (*s, ids.len()))
            .collect::<Vec<_>>(),
        vec![(1, 2), (2, 1)]
    );
    let bundles = kv
        .query(Table::Metrics, argus_pushgw::BUNDLE_PK, None)
        .await
        .unwrap();
    assert_eq!(
        bundles.iter().map(|i| i.sk.as_str()).collect::<Vec<_>>(),
        ["0", "1", "2"]
    );
    let runs = kv
        .query(Table::Results, argus_app::results::RUNS_PK, None)
        .await
        .unwrap();
    assert_eq!(runs.len(), 3, "one results item per invocation");

    let expected: Vec<(String, f64)> = {
        let mut v: Vec<(String, f64)> = sites
            .iter()
            .zip(statuses)
            .map(|(s, st)| (s.url.clone(), if st == 200 { 1.0 } else { 0.0 }))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let snap = p.gateway.snapshot(t0 + 1).await.unwrap();
    assert_eq!(probe_success(&snap), expected);

    // A site recovers and one target is removed: on the next run the shards shift, so
    // targets land in other slots than before. Each still shows once, newest value.
    sites[2].set_status(200);
    argus_app::targets::remove(kv.as_ref(), &Target::new(&sites[0].url).id)
        .await
        .unwrap();
    // The next run, one scrape period (15 s by default) later.
    let t1 = t0 + 15_000;
    run_with_fan_out(&p.probe, t1).await;
    let snap = p.gateway.snapshot(t1 + 1).await.unwrap();
    let now_success = probe_success(&snap);
    assert_eq!(
        now_success
            .iter()
            .find(|(u, _)| *u == sites[2].url)
            .map(|(_, v)| *v),
        Some(1.0),
        "{now_success:?}"
    );
    assert_eq!(
        now_success.len(),
        5,
        "the removed target lingers until it expires"
    );
    // Three scrape periods after its last probe, the removed target is gone.
    let snap = p.gateway.snapshot(t0 + 3 * 15_000 + 1).await.unwrap();
    assert!(
        probe_success(&snap).iter().all(|(u, _)| *u != sites[0].url),
        "{snap:?}"
    );
    for s in &sites[1..] {
        let h = argus_app::results::history(kv.as_ref(), &Target::new(&s.url).id, 0)
            .await
            .unwrap();
        assert_eq!(h.len(), 2, "{} probed once per run: {h:?}", s.url);
    }
}
