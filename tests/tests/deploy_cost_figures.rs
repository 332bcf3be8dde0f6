//! The DynamoDB figures in infra/measured.json, measured from the code: the real
//! services write through a counting `Kv` (over the embedded store) and every written
//! item is sized with DynamoDB's item-size rules. When the code's item design changes,
//! this test fails and prints the new figures to put in infra/measured.json, so
//! `argus cost` never prices a design the code no longer has.
//!
//! `cargo test -p argus-e2e --test deploy_cost_figures -- --nocapture` prints the
//! figures and the 100-targets-at-1m bill (docs/cost.md).

use argus_cost::{estimate, CostInputs, Measured, Op, Per, PriceTable};
use argus_model::schema::{PAYLOAD_ATTR, TTL_ATTR, VERSION_ATTR};
use argus_model::{Cond, Item, Kv, Labels, StoreError, Table, Target};
use async_trait::async_trait;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// DynamoDB's documented item size: attribute names + values (string: UTF-8 bytes,
/// number: ~1 byte per 2 significant digits + 1, binary: bytes, bool/null: 1,
/// map/list: 3 + 1 per element + elements).
fn value_size(v: &Value) -> usize {
    match v {
        Value::Null | Value::Bool(_) => 1,
        Value::Number(n) => number_size(&n.to_string()),
        Value::String(s) => s.len(),
        Value::Array(a) => 3 + a.iter().map(|e| 1 + value_size(e)).sum::<usize>(),
        Value::Object(m) => {
            3 + m
                .iter()
                .map(|(k, e)| 1 + k.len() + value_size(e))
                .sum::<usize>()
        }
    }
}

fn number_size(digits: &str) -> usize {
    let significant = digits
        .trim_start_matches('-')
        .replace('.', "")
        .trim_start_matches('0')
        .trim_end_matches('0')
        .len();
    significant.div_ceil(2) + 1
}

/// The item as `DynamoKv` stores it: keys, plain attributes, `data`, `ver`, `ttl`.
fn item_size(table: Table, item: &Item) -> usize {
    let spec = table.spec();
    let mut n = spec.pk.len() + item.pk.len();
    if let Some(sk) = spec.sk {
        n += sk.len() + item.sk.len();
    }
    n += item
        .attrs
        .iter()
        .map(|(k, v)| k.len() + value_size(v))
        .sum::<usize>();
    if let Some(d) = &item.data {
        n += PAYLOAD_ATTR.len() + d.len();
    }
    n += VERSION_ATTR.len() + number_size(&(item.version + 1).to_string());
    if let Some(t) = item.expires_at {
        n += TTL_ATTR.len() + number_size(&t.0.to_string());
    }
    n
}

#[derive(Clone, Debug)]
struct Write {
    table: Table,
    bytes: usize,
}

/// Records every item written; reads and writes go to the real embedded store.
struct Counting {
    inner: Arc<dyn Kv>,
    writes: Mutex<Vec<Write>>,
    /// GetItem calls (table, bytes of the item read).
    gets: Mutex<Vec<Write>>,
}

impl Counting {
    fn take(&self) -> Vec<Write> {
        std::mem::take(&mut *self.writes.lock().unwrap())
    }
    fn take_gets(&self) -> Vec<Write> {
        std::mem::take(&mut *self.gets.lock().unwrap())
    }
}

#[async_trait]
impl Kv for Counting {
    async fn get(&self, table: Table, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let got = self.inner.get(table, pk, sk).await?;
        let bytes = got.as_ref().map(|i| item_size(table, i)).unwrap_or(0);
        self.gets.lock().unwrap().push(Write { table, bytes });
        Ok(got)
    }
    async fn put(&self, table: Table, item: Item, cond: Cond) -> Result<u64, StoreError> {
        self.writes.lock().unwrap().push(Write {
            table,
            bytes: item_size(table, &item),
        });
        self.inner.put(table, item, cond).await
    }
    async fn put_batch(&self, table: Table, items: Vec<Item>) -> Result<(), StoreError> {
        for i in &items {
            self.writes.lock().unwrap().push(Write {
                table,
                bytes: item_size(table, i),
            });
        }
        self.inner.put_batch(table, items).await
    }
    async fn delete(&self, table: Table, pk: &str, sk: &str, cond: Cond) -> Result<(), StoreError> {
        self.writes.lock().unwrap().push(Write {
            table,
            bytes: pk.len() + sk.len(),
        });
        self.inner.delete(table, pk, sk, cond).await
    }
    async fn query(
        &self,
        table: Table,
        pk: &str,
        sk_from: Option<&str>,
    ) -> Result<Vec<Item>, StoreError> {
        self.inner.query(table, pk, sk_from).await
    }
    async fn scan(&self, table: Table) -> Result<Vec<Item>, StoreError> {
        self.inner.scan(table).await
    }
}

const TARGETS: usize = 100;

fn target_url(i: usize) -> String {
    format!("https://service-{i:03}.example.com/healthz")
}

/// An item that grows with the targets it covers: fixed bytes + bytes per target.
#[derive(Clone, Copy, Debug)]
struct Linear {
    fixed: f64,
    per_target: f64,
}

impl Linear {
    /// From the sizes at 10 targets and at `TARGETS`.
    fn fit(small: f64, full: f64) -> Linear {
        let per_target = (full - small) / (TARGETS - 10) as f64;
        Linear {
            fixed: (full - per_target * TARGETS as f64).max(0.0),
            per_target,
        }
    }
}

struct Figures {
    target_item: f64,
    /// The run's results item.
    results: Linear,
    /// The probe's metric bundle: items written and read per run, and its size.
    bundle_writes_per_run: f64,
    bundle_gets_per_run: f64,
    bundle: Linear,
    /// A client-pushed group (the pushgateway function's item).
    group_item: f64,
    chunk: Linear,
    series_per_target: f64,
}

/// The reference output with this target's own values: the timing and size gauges
/// vary per target (as they do in reality), so compression is not flattered.
fn varied(families: &[argus_expfmt::MetricFamily], i: usize) -> Vec<argus_expfmt::MetricFamily> {
    let mut out = families.to_vec();
    for (j, f) in out.iter_mut().enumerate() {
        for (k, m) in f.metrics.iter_mut().enumerate() {
            if let argus_expfmt::MetricValue::Gauge(v) = &mut m.value {
                if *v != 0.0 && *v != 1.0 && v.fract() != 0.0 {
                    let h = (i * 7919 + j * 104_729 + k * 1_299_709) % 10_007;
                    // Timings have nanosecond resolution (`Duration::as_secs_f64`).
                    *v = (*v * (1.0 + h as f64 / 10_007.0) * 1e9).round() / 1e9;
                }
            }
        }
    }
    out
}

async fn measure() -> Figures {
    let embedded: Arc<dyn Kv> =
        Arc::new(argus_store::EmbeddedKv::open_temp().expect("embedded store"));
    let kv = Arc::new(Counting {
        inner: embedded,
        writes: Mutex::new(Vec::new()),
        gets: Mutex::new(Vec::new()),
    });
    let now: i64 = 1_795_000_000_000;

    // Targets table: what the probe scans.
    let t = Target::new(&target_url(7));
    let target_item = item_size(Table::Targets, &t.to_item()) as f64;

    // Results: one item per run holding every target's row.
    let row = |i: usize| {
        argus_app::results::ResultRow {
        target: Target::new(&target_url(i)).id,
        at: now,
        success: !i.is_multiple_of(17),
        status_code: Some(if i.is_multiple_of(17) { 503 } else { 200 }),
        duration_ms: 150 + (i as u64 * 37) % 400,
        error: i
            .is_multiple_of(17)
            .then(|| "HTTP 503 Service Unavailable".to_string()),
        // What an http_2xx probe stores since results v2 (failed probes also keep
        // their debug log).
        phases_ms: Some([
            1 + (i as u32 * 13) % 3,
            4 + (i as u32 * 29) % 5,
            9 + (i as u32 * 17) % 7,
            140 + (i as u32 * 37) % 90,
            1 + (i as u32 * 7) % 2,
        ]),
        cert_expiry: Some(1_800_000_000 + (i as i64 % 40) * 86_400),
        log: i.is_multiple_of(17).then(|| {
            vec![
                format!("ts=2026-11-16T12:00:00Z module=http_2xx target={} level=info msg=\"Beginning probe\" probe=http timeout_seconds=10", target_url(i)),
                format!("ts=2026-11-16T12:00:00Z module=http_2xx target={} level=error msg=\"Invalid HTTP response status code, wanted 2xx\" status_code=503", target_url(i)),
            ]
        }),
        location: None,
    }
    };
    let results_bytes = |n: usize| {
        let rows = (0..n).map(row).collect();
        item_size(
            Table::Results,
            &argus_app::results::run_item(
                now,
                "0",
                rows,
                std::time::Duration::from_secs(30 * 86_400),
            ),
        ) as f64
    };
    let results = Linear::fit(results_bytes(10), results_bytes(TARGETS));

    // Metric groups: the probe's run pushes a blackbox http_2xx result per target into
    // its bundle.
    let text = std::fs::read_to_string(
        argus_testkit::repo_root().join("../shared/reference/blackbox-probe-http_2xx-up.txt"),
    )
    .or_else(|_| std::fs::read_to_string("/work/shared/reference/blackbox-probe-http_2xx-up.txt"))
    .expect("reference blackbox output");
    let families = argus_expfmt::parse_text(&text).expect("reference parses");
    let series_per_target = families.iter().map(|f| f.metrics.len()).sum::<usize>() as f64;
    let gw = argus_pushgw::Gateway::new(kv.clone(), argus_pushgw::GatewayConfig::default());
    let write = |i: usize| {
        let url = target_url(i);
        argus_pushgw::WriteRequest::push(
            "probe",
            &[("instance", url.as_str())],
            varied(&families, i),
            true,
        )
    };
    let run = |slot: &'static str, n: usize, at: i64| {
        let gw = &gw;
        let writes = (0..n).map(write).collect();
        async move {
            let verdicts = gw
                .push_bundle(slot, writes, Duration::from_secs(180), at)
                .await
                .expect("bundle");
            assert!(verdicts.iter().all(Result::is_ok), "{verdicts:?}");
        }
    };
    run("small", 10, now).await;
    run("0", TARGETS, now).await;
    kv.take();
    kv.take_gets();
    // Steady state: the next run rewrites each bundle.
    run("small", 10, now + 60_000).await;
    let small = kv.take();
    kv.take_gets();
    run("0", TARGETS, now + 60_000).await;
    let writes = kv.take();
    assert!(
        writes.iter().all(|w| w.table == Table::Metrics),
        "{writes:?}"
    );
    let bundle_writes_per_run = writes.len() as f64;
    let bundle = Linear::fit(small[0].bytes as f64, writes[0].bytes as f64);
    let gets = kv.take_gets();
    assert!(gets.iter().all(|w| w.table == Table::Metrics), "{gets:?}");
    let bundle_gets_per_run = gets.len() as f64;
    gw.wipe().await.expect("wipe");
    run("0", TARGETS, now + 60_000).await;
    kv.take();

    // A client's push of the same output: one group item.
    gw.push(write(0), now + 60_000).await.expect("push");
    let group_item = kv
        .take()
        .iter()
        .filter(|w| w.table == Table::Metrics)
        .map(|w| w.bytes)
        .max()
        .unwrap_or(0) as f64;

    // Samples: the evaluator's snapshot of every group as one chunk per tick.
    let snapshot: Vec<(Labels, f64)> = gw.snapshot(now + 60_000).await.expect("snapshot");
    let chunk_bytes = |series: Vec<(Labels, f64)>| {
        let kv = kv.clone();
        async move {
            let chunk = argus_app::tsdb::Chunk {
                ts: now + 60_000,
                scraped: series,
                generated: Vec::new(),
            };
            argus_app::tsdb::write_chunk(
                kv.as_ref(),
                &chunk,
                std::time::Duration::from_secs(86_400),
            )
            .await
            .expect("chunk");
            kv.take()
                .iter()
                .filter(|w| w.table == Table::Samples)
                .map(|w| w.bytes)
                .sum::<usize>() as f64
        }
    };
    // The client's group shares the first target's key: count the probe's series only.
    let per_target = snapshot.len() / TARGETS;
    let small = chunk_bytes(snapshot[..per_target * 10].to_vec()).await;
    let full = chunk_bytes(snapshot[..per_target * TARGETS].to_vec()).await;

    Figures {
        target_item,
        results,
        bundle_writes_per_run,
        bundle_gets_per_run,
        bundle,
        group_item,
        chunk: Linear::fit(small, full),
        series_per_target,
    }
}

/// Records a figure that drifted more than 15 % (or 8 bytes) from the code's.
fn close(drift: &mut Vec<String>, what: &str, file: f64, code: f64) {
    if (file - code).abs() > (code * 0.15).max(8.0) {
        drift.push(format!(
            "{what}: infra/measured.json says {file}, the code writes {code:.1}"
        ));
    }
}

/// Checks an item that grows with the targets (one per run).
fn linear(drift: &mut Vec<String>, what: &str, a: &argus_cost::Access, code: Linear) {
    assert_eq!(a.per, Per::Invocation, "{what}: one item per run");
    close(
        drift,
        &format!("{what} fixed bytes"),
        a.bytes_per_item,
        code.fixed,
    );
    // Per-target bytes are small: 15 % or 1.5 bytes.
    if (a.bytes_per_target - code.per_target).abs() > (code.per_target * 0.15).max(1.5) {
        drift.push(format!(
            "{what} bytes per target: infra/measured.json says {}, the code writes {:.1}",
            a.bytes_per_target, code.per_target
        ));
    }
}

fn find<'a>(accesses: &'a [argus_cost::Access], table: &str, op: Op) -> &'a argus_cost::Access {
    accesses
        .iter()
        .find(|a| a.table == table && a.op == op)
        .unwrap_or_else(|| panic!("infra/measured.json has no {op:?} on {table}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measured_json_matches_what_the_code_writes() {
    let f = measure().await;
    println!(
        "measured from the code: target item {:.0} B; per run: results {:.0} B + {:.1} B/target, \
         bundle {} writes + {} gets of {:.0} B + {:.1} B/target; client group {:.0} B; \
         sample chunk {:.0} B + {:.1} B/target; {} series/target",
        f.target_item,
        f.results.fixed,
        f.results.per_target,
        f.bundle_writes_per_run,
        f.bundle_gets_per_run,
        f.bundle.fixed,
        f.bundle.per_target,
        f.group_item,
        f.chunk.fixed,
        f.chunk.per_target,
        f.series_per_target
    );
    let m = Measured::builtin();
    let mut drift = Vec::new();
    let results = find(&m.probe.accesses, "results", Op::Write);
    linear(&mut drift, "probe results", results, f.results);
    let bundle_w = find(&m.probe.accesses, "metrics", Op::Write);
    linear(&mut drift, "probe bundle write", bundle_w, f.bundle);
    let bundle_r = find(&m.probe.accesses, "metrics", Op::Read);
    linear(&mut drift, "probe bundle read", bundle_r, f.bundle);
    let scan = find(&m.evaluator.accesses, "metrics", Op::Scan);
    linear(&mut drift, "evaluator metrics scan", scan, f.bundle);
    let chunk = find(&m.evaluator.accesses, "samples", Op::Write);
    linear(&mut drift, "evaluator samples chunk", chunk, f.chunk);
    let mut check = |what: &str, file: f64, code: f64| close(&mut drift, what, file, code);
    check(
        "probe targets scan bytes",
        find(&m.probe.accesses, "targets", Op::Scan).bytes_per_item,
        f.target_item,
    );
    check(
        "probe bundle writes per run",
        bundle_w.items,
        f.bundle_writes_per_run,
    );
    check(
        "probe bundle gets per run",
        bundle_r.items,
        f.bundle_gets_per_run,
    );
    check(
        "gateway metric group bytes",
        find(&m.pushgateway.accesses, "metrics", Op::Write).bytes_per_item,
        f.group_item,
    );
    check(
        "series per target",
        m.series_per_target,
        f.series_per_target,
    );
    assert!(
        drift.is_empty(),
        "update infra/measured.json:\n  {}",
        drift.join("\n  ")
    );

    // The bill docs/cost.md quotes.
    for (targets, interval) in [(100u64, 60u64), (1000, 60), (100, 300)] {
        let r = estimate(
            &CostInputs::new(targets, Duration::from_secs(interval)),
            &PriceTable::builtin(),
        )
        .unwrap();
        println!("\n== {targets} targets every {interval}s ==\n{r}");
    }
}

#[test]
fn item_size_rules() {
    // Strings count their UTF-8 bytes, numbers ~1 byte per 2 digits + 1.
    assert_eq!(number_size("1795000000"), 3); // "1795" significant → 2 + 1
    assert_eq!(number_size("187"), 3);
    assert_eq!(value_size(&Value::String("héllo".into())), 6);
    assert_eq!(value_size(&serde_json::json!({"a": true})), 3 + 1 + 1 + 1);
    let item = Item::new("k", "").with_attr("x", "yz");
    // targets: pk "id"+"k" = 3, attr x+yz = 3, ver = 3 + 2.
    assert_eq!(item_size(Table::Targets, &item), 3 + 3 + 5);
}
