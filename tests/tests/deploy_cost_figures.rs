//! The DynamoDB figures in infra/measured.json, measured from the code: the real
//! services write through a counting `Kv` (over the embedded store) and every written
//! item is sized with DynamoDB's item-size rules. When the code's item design changes,
//! this test fails and prints the new figures to put in infra/measured.json, so
//! `argus cost` never prices a design the code no longer has.
//!
//! `cargo test -p argus-e2e --test deploy_cost_figures -- --nocapture` prints the
//! figures and the 100-targets-at-1m bill (docs/cost.md).

use argus_app::cost::{estimate, CostInputs, Measured, Op, Per, PriceTable};
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
        n += TTL_ATTR.len() + number_size(&t.to_string());
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

struct Figures {
    target_item: f64,
    result_item: f64,
    group_items_per_push: f64,
    group_item: f64,
    group_gets_per_push: f64,
    chunk_fixed: f64,
    chunk_per_target: f64,
    series_per_target: f64,
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

    // Results: one row per target per run.
    let row = argus_app::results::ResultRow {
        target: t.id.clone(),
        at: now,
        success: true,
        status_code: Some(200),
        duration_ms: 187,
        error: None,
    };
    let result_item = item_size(Table::Results, &row.to_item(30 * 86_400)) as f64;

    // Metric groups: the probe's push of a blackbox http_2xx result per target.
    let text = std::fs::read_to_string(
        argus_testkit::repo_root().join("../shared/reference/blackbox-probe-http_2xx-up.txt"),
    )
    .or_else(|_| std::fs::read_to_string("/work/shared/reference/blackbox-probe-http_2xx-up.txt"))
    .expect("reference blackbox output");
    let families = argus_expfmt::parse_text(&text).expect("reference parses");
    let series_per_target = families.iter().map(|f| f.metrics.len()).sum::<usize>() as f64;
    let gw = argus_pushgw::Gateway::new(kv.clone(), argus_pushgw::GatewayConfig::default());
    let push = |i: usize, at: i64| {
        let families = families.clone();
        let gw = &gw;
        async move {
            let url = target_url(i);
            let w = argus_pushgw::WriteRequest::push(
                "probe",
                &[("instance", url.as_str())],
                families,
                true,
            );
            gw.push(w, at).await.expect("push")
        }
    };
    for i in 0..TARGETS {
        push(i, now).await;
    }
    kv.take();
    kv.take_gets();
    // Steady state: the next run pushes every group again.
    for i in 0..TARGETS {
        push(i, now + 60_000).await;
    }
    let writes = kv.take();
    assert!(
        writes.iter().all(|w| w.table == Table::Metrics),
        "{writes:?}"
    );
    let group_items_per_push = writes.len() as f64 / TARGETS as f64;
    let group_item = writes.iter().map(|w| w.bytes).sum::<usize>() as f64 / writes.len() as f64;
    let gets = kv.take_gets();
    assert!(gets.iter().all(|w| w.table == Table::Metrics), "{gets:?}");
    let group_gets_per_push = gets.len() as f64 / TARGETS as f64;

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
            argus_app::tsdb::write_chunk(kv.as_ref(), &chunk, 86_400)
                .await
                .expect("chunk");
            kv.take()
                .iter()
                .filter(|w| w.table == Table::Samples)
                .map(|w| w.bytes)
                .sum::<usize>() as f64
        }
    };
    let per_target = snapshot.len() / TARGETS;
    let small = chunk_bytes(snapshot[..per_target * 10].to_vec()).await;
    let full = chunk_bytes(snapshot.clone()).await;
    let chunk_per_target = (full - small) / (TARGETS - 10) as f64;
    let chunk_fixed = (full - chunk_per_target * TARGETS as f64).max(0.0);

    Figures {
        target_item,
        result_item,
        group_items_per_push,
        group_item,
        group_gets_per_push,
        chunk_fixed,
        chunk_per_target,
        series_per_target,
    }
}

fn find<'a>(
    accesses: &'a [argus_app::cost::Access],
    table: &str,
    op: Op,
) -> &'a argus_app::cost::Access {
    accesses
        .iter()
        .find(|a| a.table == table && a.op == op)
        .unwrap_or_else(|| panic!("infra/measured.json has no {op:?} on {table}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measured_json_matches_what_the_code_writes() {
    let f = measure().await;
    println!(
        "measured from the code: target item {:.0} B, result row {:.0} B, metric groups {:.2} items/push of {:.0} B ({:.2} gets/push), \
         sample chunk {:.0} B + {:.1} B/target, {} series/target",
        f.target_item, f.result_item, f.group_items_per_push, f.group_item, f.group_gets_per_push, f.chunk_fixed, f.chunk_per_target, f.series_per_target
    );
    let m = Measured::builtin();
    let mut drift = Vec::new();
    let mut check = |what: &str, file: f64, code: f64| {
        let tolerance = (code * 0.15).max(8.0);
        if (file - code).abs() > tolerance {
            drift.push(format!(
                "{what}: infra/measured.json says {file}, the code writes {code:.1}"
            ));
        }
    };
    check(
        "probe targets scan bytes",
        find(&m.probe.accesses, "targets", Op::Scan).bytes_per_item,
        f.target_item,
    );
    let results = find(&m.probe.accesses, "results", Op::Write);
    check("probe results bytes", results.bytes_per_item, f.result_item);
    assert_eq!(results.per, Per::Target);
    let groups = find(&m.probe.accesses, "metrics", Op::Write);
    check(
        "probe metric group bytes",
        groups.bytes_per_item,
        f.group_item,
    );
    check(
        "probe metric items per target",
        groups.items * 100.0,
        f.group_items_per_push * 100.0,
    );
    let reads = find(&m.probe.accesses, "metrics", Op::Read);
    check(
        "probe metric gets per target",
        reads.items * 100.0,
        f.group_gets_per_push * 100.0,
    );
    check("probe metric get bytes", reads.bytes_per_item, f.group_item);
    check(
        "gateway metric group bytes",
        find(&m.pushgateway.accesses, "metrics", Op::Write).bytes_per_item,
        f.group_item,
    );
    check(
        "evaluator metrics scan bytes",
        find(&m.evaluator.accesses, "metrics", Op::Scan).bytes_per_item,
        f.group_item,
    );
    let samples = find(&m.evaluator.accesses, "samples", Op::Write);
    check(
        "evaluator chunk bytes per target",
        samples.bytes_per_target,
        f.chunk_per_target,
    );
    check(
        "evaluator chunk fixed bytes",
        samples.bytes_per_item,
        f.chunk_fixed,
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

    // A PROJECTION, not the code's design: the probe writes its results and its metrics
    // as one compressed item per run each (bytes per target as the measured sample
    // chunk), and the evaluator reads that one item instead of scanning one group per
    // target. docs/cost.md explains it.
    let mut i = CostInputs::new(100, Duration::from_secs(60));
    for a in i
        .measured
        .probe
        .accesses
        .iter_mut()
        .chain(i.measured.evaluator.accesses.iter_mut())
    {
        if (a.table == "results" || a.table == "metrics") && a.per == Per::Target {
            a.per = Per::Invocation;
            a.bytes_per_target = if a.table == "results" {
                f.result_item
            } else {
                f.chunk_per_target
            };
            a.bytes_per_item = f.chunk_fixed;
        }
    }
    let r = estimate(&i, &PriceTable::builtin()).unwrap();
    println!("\n== PROJECTION: 100 targets every 60s, results and metrics batched per run ==\n{r}");
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
