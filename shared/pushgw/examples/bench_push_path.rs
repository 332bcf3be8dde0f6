//! Where a push's CPU time goes (not a test): parse, encode/decode of the stored
//! group, and whole pushes through `Gateway::push` (no HTTP) with the store in the
//! directory `BENCH_STORE_DIR` (default: a temp dir; /dev/shm removes fsync cost).
//!
//! `cargo run --release -p argus-pushgw --example bench_push_path`

// As the `argus` binary (`argus dev`) runs it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use argus_pushgw::{Gateway, GatewayConfig, WriteRequest};
use std::sync::Arc;
use std::time::Instant;

fn body(seed: usize) -> String {
    let mut b = String::new();
    for f in 0..5 {
        b.push_str(&format!(
            "# HELP bench_metric_{f} Benchmark family {f}.\n# TYPE bench_metric_{f} gauge\n"
        ));
        for s in 0..10 {
            b.push_str(&format!(
                "bench_metric_{f}{{series=\"s{s}\",shard=\"{}\"}} {}.5\n",
                s % 3,
                seed + s
            ));
        }
    }
    b
}

fn per_op(name: &str, n: usize, f: impl FnMut(usize)) {
    let mut f = f;
    let t = Instant::now();
    for i in 0..n {
        f(i);
    }
    let us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!("{name:<40} {us:>8.1} µs/op");
}

fn main() {
    let n = 5000;
    let text = body(1);
    per_op("parse_text (50 series)", n, |_| {
        std::hint::black_box(argus_expfmt::parse_text(&text).unwrap());
    });
    let fams = argus_expfmt::parse_text(&text).unwrap();
    let mut g = argus_pushgw::Group::new(
        [("job".to_string(), "bench".to_string())]
            .into_iter()
            .collect(),
    );
    for f in fams.clone() {
        g.families.insert(
            f.name.clone(),
            argus_pushgw::group::StoredFamily {
                family: f,
                pushed_ms: 1,
            },
        );
    }
    per_op("group encode (json+protobuf+zstd)", n, |_| {
        std::hint::black_box(argus_pushgw::group::encode(&g));
    });
    let enc = argus_pushgw::group::encode(&g);
    println!(
        "  stored payload: {} bytes (text body {} bytes)",
        enc.len(),
        text.len()
    );
    per_op("group decode", n, |_| {
        std::hint::black_box(argus_pushgw::group::decode(&enc).unwrap());
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let kv = match std::env::var("BENCH_STORE_DIR") {
        Ok(dir) => argus_store::EmbeddedKv::open(
            std::path::Path::new(&dir).join(format!("path-{}.redb", std::process::id())),
        )
        .unwrap(),
        Err(_) => argus_store::EmbeddedKv::open_temp().unwrap(),
    };
    for conc in [1usize, 16] {
        let total = 4000;
        let t = Instant::now();
        rt.block_on(async {
            let mut tasks = Vec::new();
            for w in 0..conc {
                let kv = kv.clone();
                let payload = enc.clone();
                tasks.push(tokio::spawn(async move {
                    use argus_model::Kv;
                    let mut i = w;
                    while i < total {
                        let mut item = argus_model::Item::new("bench", format!("k{}", i % 100));
                        item.data = Some(payload.clone());
                        kv.put(argus_model::Table::Metrics, item, argus_model::Cond::Always)
                            .await
                            .unwrap();
                        i += conc;
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        });
        println!(
            "Kv::put (embedded), {conc:>2} concurrent          {:>8.0} puts/s",
            total as f64 / t.elapsed().as_secs_f64()
        );
    }
    let gw = Arc::new(Gateway::new(Arc::new(kv.clone()), GatewayConfig::default()));
    for conc in [1usize, 16, 64] {
        let t = Instant::now();
        let total = 4000;
        rt.block_on(async {
            let mut tasks = Vec::new();
            for w in 0..conc {
                let gw = gw.clone();
                let fams = fams.clone();
                tasks.push(tokio::spawn(async move {
                    let mut i = w;
                    while i < total {
                        let inst = format!("host-{}", i % 100);
                        gw.push(
                            WriteRequest::push("bench", &[("instance", &inst)], fams.clone(), true),
                            1_800_000_000_000 + i as i64,
                        )
                        .await
                        .unwrap();
                        i += conc;
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        });
        println!(
            "Gateway::push, {conc:>2} concurrent, 100 groups  {:>8.0} pushes/s",
            total as f64 / t.elapsed().as_secs_f64()
        );
    }
    if let Ok(dir) = std::env::var("BENCH_STORE_DIR") {
        let _ = std::fs::remove_file(
            std::path::Path::new(&dir).join(format!("path-{}.redb", std::process::id())),
        );
    }
}
