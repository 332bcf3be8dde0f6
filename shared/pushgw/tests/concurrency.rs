//! Concurrent pushes to one group from two gateway instances (as two Lambda
//! instances: no shared lock or cache, only the store's conditional writes) never
//! leave a mix of bodies, on the embedded store and on DynamoDB (moto).

mod common;

use argus_model::{Kv, Table};
use argus_pushgw::{Gateway, GatewayConfig};
use bytes::Bytes;
use std::sync::Arc;

const T0: i64 = 1_800_000_000_000;

fn body(i: usize) -> String {
    let mut b = String::from("# TYPE c gauge\n");
    for k in 0..5 {
        b.push_str(&format!("c{{k=\"{k}\"}} {i}\n"));
    }
    b.push_str(&format!("only_{i} 1\n"));
    b
}

async fn hammer(kv: Arc<dyn Kv>, n: usize) {
    let a = Arc::new(Gateway::new(kv.clone(), GatewayConfig::default()));
    let b = Arc::new(Gateway::new(kv.clone(), GatewayConfig::default()));
    let mut tasks = Vec::new();
    for i in 0..n {
        let g = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let req = http::Request::builder()
                .method("PUT")
                .uri("/metrics/job/race/instance/x")
                .body(Bytes::from(body(i)))
                .unwrap();
            let r = g.handle(req, T0 + i as i64).await;
            (r.status(), String::from_utf8_lossy(r.body()).into_owned())
        }));
    }
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
    for g in [&a, &b] {
        let snap = g.snapshot(T0 + n as i64).await.unwrap();
        let c: Vec<f64> = snap
            .iter()
            .filter(|(l, _)| l.name() == Some("c"))
            .map(|(_, v)| *v)
            .collect();
        let only: Vec<String> = snap
            .iter()
            .filter_map(|(l, _)| {
                l.name()
                    .filter(|n| n.starts_with("only_"))
                    .map(str::to_string)
            })
            .collect();
        assert_eq!(c.len(), 5, "{snap:?}");
        assert_eq!(only.len(), 1, "a mix of bodies: {only:?}");
        let winner = only[0].trim_start_matches("only_").parse::<f64>().unwrap();
        assert!(
            c.iter().all(|v| *v == winner),
            "series from different bodies: {c:?} vs {winner}"
        );
    }
    // The metric-type index: exactly one member (this group) for the name.
    let idx = kv
        .query(Table::Metrics, "type#c#gauge", None)
        .await
        .unwrap();
    assert_eq!(idx.len(), 1, "{idx:?}");
    // A DELETE after the pushes removes the group; the index releases the name.
    let req = http::Request::builder()
        .method("DELETE")
        .uri("/metrics/job/race/instance/x")
        .body(Bytes::new())
        .unwrap();
    assert_eq!(a.handle(req, T0 + 1000).await.status(), 202);
    assert!(b
        .snapshot(T0 + 1000)
        .await
        .unwrap()
        .iter()
        .all(|(l, _)| l.get("job") != Some("race")));
    let idx = kv
        .query(Table::Metrics, "type#c#gauge", None)
        .await
        .unwrap();
    assert!(idx.is_empty(), "members left after DELETE: {idx:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pushes_never_mix_embedded() {
    let kv = argus_store::EmbeddedKv::open_temp().unwrap();
    hammer(Arc::new(kv), 40).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pushes_never_mix_dynamodb_on_moto() {
    let (_moto, kv) = common::moto_kv("pg-").await;
    hammer(Arc::new(kv), 12).await;
}

/// Four concurrent pushes per round, two of each type, to four groups.
async fn type_race(gateways: [Arc<Gateway>; 2]) -> usize {
    let mut rounds_with_a_winner = 0;
    for round in 0..20 {
        let mut tasks = Vec::new();
        let plan = [(0, "gauge"), (1, "counter"), (0, "counter"), (1, "gauge")];
        for (i, (gi, kind)) in plan.into_iter().enumerate() {
            let g = gateways[gi].clone();
            let body = format!("# TYPE m{round} {kind}\nm{round} 1\n");
            tasks.push(tokio::spawn(async move {
                let req = http::Request::builder()
                    .method("PUT")
                    .uri(format!("/metrics/job/j{i}"))
                    .body(Bytes::from(body))
                    .unwrap();
                (kind, g.handle(req, T0 + round).await.status().as_u16())
            }));
        }
        let mut ok_kinds = Vec::new();
        for t in tasks {
            let (kind, status) = t.await.unwrap();
            assert!(status == 200 || status == 400, "{status}");
            if status == 200 {
                ok_kinds.push(kind);
            }
        }
        ok_kinds.sort();
        ok_kinds.dedup();
        assert!(
            ok_kinds.len() <= 1,
            "round {round}: both types accepted: {ok_kinds:?}"
        );
        rounds_with_a_winner += usize::from(ok_kinds.len() == 1);
        // What is stored agrees: one TYPE line for the name.
        let text = gateways[0].metrics_text(T0 + round).await.unwrap();
        let types = text
            .lines()
            .filter(|l| l.starts_with(&format!("# TYPE m{round} ")))
            .count();
        assert!(types <= 1, "{text}");
    }
    rounds_with_a_winner
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conflicting_types_one_instance_first_wins() {
    let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open_temp().unwrap());
    let g = Arc::new(Gateway::new(kv, GatewayConfig::default()));
    // Claims of a name serialise within a process: every round has a winner.
    assert_eq!(type_race([g.clone(), g]).await, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conflicting_types_two_instances_never_both_succeed() {
    let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open_temp().unwrap());
    let a = Arc::new(Gateway::new(kv.clone(), GatewayConfig::default()));
    let b = Arc::new(Gateway::new(kv, GatewayConfig::default()));
    // Across instances a tight race may reject both sides (never accept both).
    type_race([a, b]).await;
}
