//! History benchmark against the real Prometheus 2.42, same data, same run.
//!
//! `cargo run --release -p argus-tsdb --example bench_tsdb -- [TARGETS] [DAYS] [DIR]`
//! (defaults 100 targets, 15 days at 1 m, /tmp/argus-bench-tsdb). Generates the
//! synthetic probe history (`argus_tsdb::synth`) one day per file, backfills Prometheus
//! with `promtool tsdb create-blocks-from openmetrics` and Argus with
//! `import_openmetrics` (embedded store), starts Prometheus on the blocks, waits for its
//! compaction to settle, then prints:
//! - storage: bytes per sample (Prometheus: its block directories over the sample count;
//!   Argus: the stored items of the `samples` table, keys included, as DynamoDB bills);
//! - query_range latency (median of 7 after a warm-up): Prometheus's HTTP API, body
//!   read; Argus: `load_for` + engine + the result as Prometheus's JSON;
//! - read amplification: bytes Argus read from the store over the size of exactly the
//!   samples the answer needs encoded alone, and DynamoDB read units for those reads
//!   (strongly consistent: 4 KB per unit).
//!
//! The data directory is kept between runs (delete it to regenerate).

use argus_model::{Kv, Table};
use argus_promql::Engine;
use argus_tsdb::synth::Spec;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const START_S: i64 = 1_699_999_200;

fn dir_bytes(p: &Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        n += if m.is_dir() {
            dir_bytes(&e.path())
        } else {
            m.len()
        };
    }
    n
}

/// Prometheus's persistent blocks (ULID directories with a meta.json).
fn blocks(p: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|d| d.join("meta.json").exists() && !d.to_string_lossy().contains(".tmp"))
        .collect();
    v.sort();
    v
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The result as Prometheus's query_range JSON (`jsonutil`'s number formats), written
/// straight into a buffer.
fn to_json(series: &[argus_promql::Series]) -> Vec<u8> {
    use std::fmt::Write;
    let mut out = String::with_capacity(64 + series.len() * 64);
    out.push_str(r#"{"status":"success","data":{"resultType":"matrix","result":["#);
    for (i, s) in series.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"metric":"#);
        let metric: serde_json::Map<String, serde_json::Value> = s
            .labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.into()))
            .collect();
        out.push_str(&serde_json::to_string(&metric).unwrap());
        out.push_str(r#","values":["#);
        for (j, (t, v)) in s.samples.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            // Prometheus's jsonutil: seconds, with the milliseconds only when not zero;
            // the value as strconv 'f' -1 (Rust's shortest round-trip Display prints the
            // same digits) from 1e-6 to 1e21, 'e' outside.
            let (secs, ms) = (t.div_euclid(1000), t.rem_euclid(1000));
            if ms == 0 {
                let _ = write!(out, "[{secs},\"");
            } else {
                let _ = write!(out, "[{secs}.{ms:03},\"");
            }
            let a = v.abs();
            if v.is_nan() {
                out.push_str("NaN");
            } else if v.is_infinite() {
                out.push_str(if *v > 0.0 { "+Inf" } else { "-Inf" });
            } else if a == 0.0 || (1e-6..1e21).contains(&a) {
                let _ = write!(out, "{v}");
            } else {
                let e = format!("{v:e}");
                let (m, x) = e.split_once('e').unwrap_or((&e, "0"));
                let x: i32 = x.parse().unwrap_or(0);
                let _ = write!(out, "{m}e{}{:02}", if x < 0 { '-' } else { '+' }, x.abs());
            }
            out.push_str("\"]");
        }
        out.push_str("]}");
    }
    out.push_str("]}}");
    out.into_bytes()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let targets: usize = args.get(1).map_or(100, |a| a.parse().unwrap());
    let days: i64 = args.get(2).map_or(15, |a| a.parse().unwrap());
    let dir = PathBuf::from(
        args.get(3)
            .cloned()
            .unwrap_or("/tmp/argus-bench-tsdb".into()),
    );
    let spec = Spec {
        targets,
        start_s: START_S,
        duration_s: days * 86_400,
        step_s: 60,
    };
    std::fs::create_dir_all(&dir).unwrap();
    let prom_dir = dir.join("prom");
    let done = dir.join("loaded");
    let cached = done.exists();
    let kv = argus_store::EmbeddedKv::open(dir.join("argus.redb")).unwrap();
    if !done.exists() {
        let _ = std::fs::remove_dir_all(&prom_dir);
        let per_day = 86_400 / spec.step_s;
        let (mut t_prom, mut t_argus) = (Duration::ZERO, Duration::ZERO);
        for d in 0..days {
            let file = dir.join(format!("day-{d:02}.om"));
            {
                let mut w = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
                spec.write_scrapes(&mut w, d * per_day, (d + 1) * per_day)
                    .unwrap();
            }
            let t = Instant::now();
            let out = std::process::Command::new(argus_testkit::tool("promtool"))
                .args(["tsdb", "create-blocks-from", "openmetrics", "-q"])
                .arg(&file)
                .arg(&prom_dir)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            t_prom += t.elapsed();
            let t = Instant::now();
            let f = std::io::BufReader::new(std::fs::File::open(&file).unwrap());
            argus_tsdb::import_openmetrics(
                &kv,
                f,
                std::time::Duration::from_secs(100 * 365 * 86_400),
                &mut |_: &str| {},
            )
            .await
            .unwrap();
            t_argus += t.elapsed();
            std::fs::remove_file(&file).unwrap();
            eprintln!(
                "day {}/{days} loaded (promtool {t_prom:.1?}, argus import {t_argus:.1?} so far)",
                d + 1
            );
        }
        println!(
            "backfill: promtool {t_prom:.1?}, argus import {t_argus:.1?} ({:.2}x)",
            t_argus.as_secs_f64() / t_prom.as_secs_f64()
        );
        std::fs::write(&done, "").unwrap();
    }
    let samples = spec.samples();

    // Prometheus on the backfilled blocks; wait until its compaction settles.
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  evaluation_interval: 1m\n").unwrap();
    let prom = argus_testkit::spawn_peer(
        "prometheus-bench",
        &argus_testkit::tool("prometheus"),
        &[
            &format!("--config.file={}", cfg.display()),
            &format!("--storage.tsdb.path={}", prom_dir.display()),
            "--storage.tsdb.retention.time=100y",
            "--web.listen-address=127.0.0.1:{port}",
        ],
    );
    let http = reqwest::Client::new();
    loop {
        if let Ok(r) = http.get(format!("{}/-/ready", prom.url())).send().await {
            if r.status().is_success() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut last = (0usize, 0u64);
    let mut stable = 0;
    let t = Instant::now();
    while stable < if cached { 3 } else { 30 } && t.elapsed() < Duration::from_secs(900) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let b = blocks(&prom_dir);
        let now = (b.len(), b.iter().map(|p| dir_bytes(p)).sum::<u64>());
        if now == last {
            stable += 1;
        } else {
            stable = 0;
            eprintln!("prometheus: {} blocks, {} bytes", now.0, now.1);
        }
        last = now;
    }
    let (nblocks, prom_bytes) = last;
    let prom_bps = prom_bytes as f64 / samples as f64;
    let items = kv.scan(Table::Samples).await.unwrap();
    let argus_bytes: usize = items.iter().map(|i| i.approx_size()).sum();
    let argus_bps = argus_bytes as f64 / samples as f64;
    println!("\n{targets} targets x 11 series, {days} days at 1m: {samples} samples");
    println!(
        "storage: prometheus {prom_bytes} B in {nblocks} blocks = {prom_bps:.3} B/sample; argus {argus_bytes} B in {} items = {argus_bps:.3} B/sample; ratio {:.2}x",
        items.len(),
        argus_bps / prom_bps
    );
    drop(items);

    let end = START_S * 1000 + days * 86_400_000 - 30_000;
    let engine = Engine::new();
    println!("\n| query | span, step | prometheus | argus | ratio | bytes read | needed | amplification | DynamoDB RCU |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (q, span, step) in [
        ("probe_success", 7 * 86_400_000i64, 300_000i64),
        ("probe_duration_seconds", 7 * 86_400_000, 300_000),
        ("probe_success", 3_600_000, 15_000),
        ("probe_duration_seconds", 3_600_000, 15_000),
        (
            "rate(probe_http_duration_seconds_count[5m])",
            3_600_000,
            15_000,
        ),
    ] {
        let start = end - span;
        let secs = |ms: i64| format!("{:.3}", ms as f64 / 1000.0);
        let url = url::Url::parse_with_params(
            &format!("{}/api/v1/query_range", prom.url()),
            &[
                ("query", q),
                ("start", &secs(start)),
                ("end", &secs(end)),
                ("step", &secs(step)),
            ],
        )
        .unwrap();
        let mut pt = Vec::new();
        let mut pbody = 0;
        for i in 0..8 {
            let t = Instant::now();
            let body = http
                .get(url.clone())
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            if i > 0 {
                pt.push(t.elapsed());
            }
            pbody = body.len();
        }
        let expr = argus_promql::parse(q).unwrap();
        let mut at = Vec::new();
        let mut abody = 0;
        let mut points = 0;
        let mut phases = [Duration::ZERO; 3];
        for i in 0..8 {
            let t = Instant::now();
            let st = argus_tsdb::load_for(&kv, &expr, start, end, engine.lookback_ms, 50_000_000)
                .await
                .unwrap();
            let t1 = t.elapsed();
            let out = engine.range(&expr, start, end, step, &st).unwrap();
            let t2 = t.elapsed();
            let body = to_json(&out);
            if i > 0 {
                at.push(t.elapsed());
                phases[0] += t1;
                phases[1] += t2 - t1;
                phases[2] += t.elapsed() - t2;
            }
            abody = body.len();
            points = out.iter().map(|s| s.samples.len()).sum::<usize>();
        }
        let (p, a) = (median(pt), median(at));
        // What was read, and the same samples encoded alone.
        let plan = argus_tsdb::plan(&expr, start, end, engine.lookback_ms);
        let from = plan.iter().map(|x| x.1).min().unwrap();
        let sels: Vec<_> = plan.into_iter().map(|x| x.0).collect();
        let got = argus_tsdb::read::load_detailed(&kv, &sels, from, end, usize::MAX)
            .await
            .unwrap();
        let mut needed: Vec<argus_tsdb::SeriesData> = got
            .series
            .iter()
            .map(|(l, s)| argus_tsdb::SeriesData {
                labels: l.clone(),
                samples: s.clone(),
            })
            .collect();
        needed.sort_by(|a, b| a.labels.cmp(&b.labels));
        let ideal = argus_tsdb::block::encode_part(&needed).len();
        let n_needed: usize = needed.iter().map(|s| s.samples.len()).sum();
        let rcu = got.bytes_read.div_ceil(4096);
        println!(
            "| `{q}` | {}h, {}s | {:.1} ms | {:.1} ms | {:.2}x | {} B | {ideal} B ({n_needed} samples; Prometheus's {:.0} B) | {:.2}x | {rcu} |",
            span / 3_600_000,
            step / 1000,
            p.as_secs_f64() * 1e3,
            a.as_secs_f64() * 1e3,
            a.as_secs_f64() / p.as_secs_f64(),
            got.bytes_read,
            n_needed as f64 * prom_bps,
            got.bytes_read as f64 / ideal as f64,
        );
        eprintln!(
            "   ({q}: load {:.1?}, engine {:.1?}, json {:.1?} per run)",
            phases[0] / 7,
            phases[1] / 7,
            phases[2] / 7
        );
        eprintln!("   ({q}: {points} points; JSON {pbody} B from prometheus, {abody} B from argus; {} items read)", got.items_read);
    }
    drop(prom);
    let _ = kv.query(Table::Samples, "idx", None).await;
}
