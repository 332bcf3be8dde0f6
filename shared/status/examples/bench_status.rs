//! Status page benchmark (not a timed test): 1,000 targets probed every minute, with
//! 29 daily rollups, the last 47 hourly rollups and the current hour's run items (30
//! runs) in an embedded store; times `StatusPage::handle` server-side (store reads,
//! decoding, rendering, gzip) for `/` and for one target page, and the bytes sent.
//! No real tool renders this page, so figures are against the budget (100 ms and
//! 200 KB for `/`, 20 ms for a target page).
//!
//! ```sh
//! CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
//! CARGO_PROFILE_RELEASE_OPT_LEVEL=3 CARGO_PROFILE_RELEASE_PANIC=unwind \
//!   cargo run --release -p argus-status --example bench_status
//! # knobs: BENCH_TARGETS (1000), BENCH_RUNS (30 runs in the current hour), BENCH_REPS (20)
//! # BENCH_DUMP=<file> writes the index served (to compare renderings)
//! ```

use argus_model::{Cond, Kv, Millis, Table, Target};
use argus_status::results::{run_item, ResultRow};
use argus_status::rollup::{Rollup, DAYS_PK, DAY_MS, HOURS_PK, HOUR_MS};
use argus_status::view::History;
use argus_status::{ids, StatusConfig, StatusPage};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Instant;

fn env(name: &str, d: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn row(t: &str, i: usize, at: Millis) -> ResultRow {
    // One target in 50 is failing; others fail one check in 500.
    let h = (at / 60_000) as usize;
    let ok = !(i.is_multiple_of(50) || (h + i).is_multiple_of(500));
    ResultRow {
        target: t.to_string(),
        at,
        success: ok,
        status_code: Some(if ok { 200 } else { 503 }),
        duration_ms: 80 + (i * 7 + h) as u64 % 300,
        error: (!ok).then(|| "invalid HTTP response status code 503, wanted 2xx".into()),
        phases_ms: Some([
            1 + (i as u32 % 50) / 10,
            5,
            12,
            50 + (i + h) as u32 % 200,
            2,
        ]),
        cert_expiry: Some(1_830_000_000 + i as i64 * 86_400),
        log: (!ok).then(|| {
            vec![
                format!("ts=2027-01-01T00:00:00Z module=http_2xx target={t} level=info msg=\"Beginning probe\""),
                format!("ts=2027-01-01T00:00:00Z module=http_2xx target={t} level=error msg=\"Invalid HTTP response status code, wanted 2xx\" status_code=503"),
            ]
        }),
        location: None,
    }
}

fn rows_between(ids: &[String], from: Millis, to: Millis, step: Millis) -> Vec<ResultRow> {
    let mut out = Vec::new();
    let mut at = from;
    while at < to {
        out.extend(ids.iter().enumerate().map(|(i, t)| row(t, i, at)));
        at += step;
    }
    out
}

async fn seed_targets(kv: &dyn Kv, ids: &[String]) {
    for (i, id) in ids.iter().enumerate() {
        let mut t = Target::new(id);
        t.labels.insert("team".into(), format!("team-{}", i % 7));
        kv.put(Table::Targets, t.to_item(), Cond::Always)
            .await
            .unwrap();
    }
}

#[tokio::main]
async fn main() {
    let n = env("BENCH_TARGETS", 1000);
    let runs = env("BENCH_RUNS", 30) as i64;
    let reps = env("BENCH_REPS", 20);
    // The same history twice: rollups as version 2 items (written now) and as
    // version 1 items (written by earlier builds, read by migration).
    let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open_temp().unwrap());
    let kv1: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open_temp().unwrap());
    let day0 = 1_830_000_000_000 / DAY_MS * DAY_MS;
    let hour0 = day0 + 14 * HOUR_MS;
    let now = hour0 + runs * 60_000;
    let ids: Vec<String> = (0..n)
        .map(|i| format!("https://service-{i:04}.shop.example.com/health"))
        .collect();
    seed_targets(kv.as_ref(), &ids).await;
    seed_targets(kv1.as_ref(), &ids).await;
    let t = Instant::now();
    // 29 closed days (rows every 10 minutes stand in for the minute runs: the same
    // summary shape), the 47 closed hours before the current one (minute rows), then
    // the current hour's run items.
    let mut items = Vec::new();
    for d in 1..=29 {
        let start = day0 - d * DAY_MS;
        let r = Rollup::of_rows(
            start,
            DAY_MS,
            &rows_between(&ids, start, start + DAY_MS, 600_000),
        );
        items.push((DAYS_PK, r));
    }
    for h in 1..=47 {
        let start = hour0 - h * HOUR_MS;
        let r = Rollup::of_rows(
            start,
            HOUR_MS,
            &rows_between(&ids, start, start + HOUR_MS, 60_000),
        );
        items.push((HOURS_PK, r));
    }
    let mut sizes = [[0usize; 2]; 2]; // [v1, v2] × [hour, day]
    for (pk, r) in items {
        let exp = argus_model::UnixSecs(now / 1000 + 86_400 * 40);
        let i = usize::from(pk == DAYS_PK);
        for (v, item) in [(0, r.to_item_v1(pk, exp)), (1, r.to_item(pk, exp))] {
            let size = item.data.as_ref().map_or(0, Vec::len);
            sizes[v][i] = sizes[v][i].max(size);
            let store = if v == 0 { &kv1 } else { &kv };
            store.put(Table::Results, item, Cond::Always).await.unwrap();
        }
    }
    for m in 0..runs {
        let at = hour0 + m * 60_000;
        let rows: Vec<ResultRow> = ids.iter().enumerate().map(|(i, t)| row(t, i, at)).collect();
        for store in [&kv, &kv1] {
            let item = run_item(
                at,
                "0",
                rows.clone(),
                std::time::Duration::from_secs(86_400 * 40),
            );
            store.put(Table::Results, item, Cond::Always).await.unwrap();
        }
    }
    eprintln!(
        "seeded {n} targets in {:.1} s; largest rollup compressed: hourly {:.1} KB (v1 {:.1} KB), daily {:.1} KB (v1 {:.1} KB)",
        t.elapsed().as_secs_f64(),
        sizes[1][0] as f64 / 1024.0,
        sizes[0][0] as f64 / 1024.0,
        sizes[1][1] as f64 / 1024.0,
        sizes[0][1] as f64 / 1024.0,
    );

    // Where the time goes: loading (reads, zstd, JSON) cold and warm, and the windows.
    let cache = argus_status::view::RollupCache::new(argus_status::view::DEFAULT_CACHE_BYTES);
    let reading = argus_status::view::Reading {
        cache: Some(&cache),
        quorum: None,
    };
    let mut loads = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let hist = History::load_with(kv.as_ref(), now, None, &reading)
            .await
            .unwrap();
        loads.push((t.elapsed().as_secs_f64() * 1000.0, hist));
    }
    let t = Instant::now();
    for id in &ids {
        std::hint::black_box(loads[2].1.stats(id));
    }
    let full = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    for id in &ids {
        std::hint::black_box(loads[2].1.index_stats(id));
    }
    let brief = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    let (targets, _) = argus_status::view::targets(kv.as_ref()).await.unwrap();
    let scan = t.elapsed().as_secs_f64() * 1000.0;
    eprintln!(
        "History::load cold {:.1} ms, warm {:.1} ms ({} items; cache {:?}); windows of every target {:.1} ms (index: {:.1} ms); {} targets read in {:.1} ms",
        loads[0].0,
        loads[2].0,
        loads[2].1.items_read,
        cache.stats(),
        full,
        brief,
        targets.len(),
        scan,
    );
    {
        // The gzip of the index alone.
        let page = StatusPage::new(kv.clone(), StatusConfig::default(), Vec::new(), None);
        let req = http::Request::get("/").body(Bytes::new()).unwrap();
        let body = page.handle(req, now).await.unwrap().into_body();
        if let Ok(path) = std::env::var("BENCH_DUMP") {
            // The index as served (for comparing renderings).
            std::fs::write(path, &body).unwrap();
        }
        let t = Instant::now();
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&body).unwrap();
        let z = enc.finish().unwrap();
        eprintln!(
            "gzip of the index ({:.0} KB to {:.0} KB): {:.1} ms",
            body.len() as f64 / 1024.0,
            z.len() as f64 / 1024.0,
            t.elapsed().as_secs_f64() * 1000.0
        );
    }
    println!(
        "{n} targets, {runs} runs in the current hour, {reps} repetitions each; load average {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split(' ')
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let target = ids::target_path(&ids[n / 2]);
    let badge = format!("/badge/{}/uptime/30d.svg", ids::encode(&ids[n / 2]));
    let warm = StatusPage::new(kv.clone(), StatusConfig::default(), Vec::new(), None);
    // Warm: one page object (a warm function, `argus dev`), its cache filled by
    // the first request; cold: a new page object (empty cache) per request.
    for (name, path) in [
        ("/", "/".to_string()),
        ("/target/…", target),
        ("/badge/…", badge),
    ] {
        measure(|| None, &warm, now, reps, &format!("{name} warm"), &path).await;
        for (store, v) in [(&kv, "v2"), (&kv1, "v1")] {
            let cold = || {
                Some(StatusPage::new(
                    store.clone(),
                    StatusConfig::default(),
                    Vec::new(),
                    None,
                ))
            };
            measure(cold, &warm, now, reps, &format!("{name} cold {v}"), &path).await;
        }
    }
}

async fn measure(
    fresh: impl Fn() -> Option<StatusPage>,
    warm: &StatusPage,
    now: Millis,
    reps: usize,
    name: &str,
    path: &str,
) {
    let mut times = Vec::new();
    let mut sizes = (0, 0);
    if fresh().is_none() {
        // The request that fills the cache is not counted.
        let req = http::Request::get(path).body(Bytes::new()).unwrap();
        warm.handle(req, now).await.unwrap();
    }
    for _ in 0..reps {
        let page = fresh();
        let page = page.as_ref().unwrap_or(warm);
        let req = http::Request::get(path)
            .header("accept-encoding", "gzip")
            .body(Bytes::new())
            .unwrap();
        let t = Instant::now();
        let r = page.handle(req, now).await.unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(r.status(), 200, "{path}");
        sizes.0 = r.body().len();
        let plain = http::Request::get(path).body(Bytes::new()).unwrap();
        sizes.1 = page.handle(plain, now).await.unwrap().body().len();
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{name:<18} median {:>7.1} ms  min {:>7.1} ms  max {:>7.1} ms  sent {:>6.1} KB gzip ({:.1} KB uncompressed)",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1],
        sizes.0 as f64 / 1024.0,
        sizes.1 as f64 / 1024.0
    );
}
