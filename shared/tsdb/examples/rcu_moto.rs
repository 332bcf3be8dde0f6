//! DynamoDB read units of the history benchmark's queries, on a `DynamoKv` in moto.
//!
//! `cargo run --release -p argus-tsdb --example rcu_moto -- [DIR]` (DIR: the data
//! directory `bench_tsdb` left, default /tmp/argus-bench-tsdb; run that first). Copies
//! the `samples` table of its embedded store into DynamoDB tables in moto (started on a
//! free 127.0.0.1 port), then loads each benchmark query's data through `load_for` over
//! the `DynamoKv`, with every read of the store recorded, and prints per query: the
//! requests made, the bytes of the items returned, and the read units DynamoDB bills for
//! them. Each answer is checked against the same load from the embedded store.
//!
//! moto answers `ReturnConsumedCapacity` with a constant (1.0 per Query, 0.5 per
//! GetItem, whatever the items' size; printed below), so the units are computed from the
//! items returned, with DynamoDB's rule for strongly consistent reads (what `DynamoKv`
//! asks for): a Query page costs its items' total size rounded up to 4 KB, one unit per
//! 4 KB, at least one; a page holds at most 1 MB; a GetItem costs its item's size
//! rounded up to 4 KB, at least one unit. Item sizes are `Item::approx_size` (attribute
//! names plus values, as DynamoDB counts them).

use argus_model::{Cond, Item, Kv, StoreError, Table};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use std::path::PathBuf;
use std::sync::Mutex;

const START_S: i64 = 1_699_999_200;
const DAYS: i64 = 15;
const PAGE: usize = 1 << 20;
const UNIT: usize = 4096;

/// What one request returned: the sizes of its items.
#[derive(Default)]
struct Meter {
    requests: Vec<(&'static str, Vec<usize>)>,
}

impl Meter {
    fn units(&self) -> (usize, usize, usize) {
        let (mut calls, mut bytes, mut units) = (0, 0, 0);
        for (op, sizes) in &self.requests {
            bytes += sizes.iter().sum::<usize>();
            if *op == "GetItem" {
                calls += 1;
                units += sizes.iter().sum::<usize>().div_ceil(UNIT).max(1);
                continue;
            }
            // Query pages: DynamoDB stops a page once 1 MB was read.
            let (mut page, mut pages) = (0usize, 0usize);
            for &s in sizes {
                page += s;
                if page >= PAGE {
                    units += page.div_ceil(UNIT);
                    pages += 1;
                    page = 0;
                }
            }
            if page > 0 || pages == 0 {
                units += page.div_ceil(UNIT).max(1);
                pages += 1;
            }
            calls += pages;
        }
        (calls, bytes, units)
    }
}

/// A `Kv` that records what each read returned.
struct Metered<'a> {
    inner: &'a dyn Kv,
    meter: Mutex<Meter>,
}

impl Metered<'_> {
    fn record(&self, op: &'static str, items: &[Item]) {
        let sizes = items.iter().map(Item::approx_size).collect();
        self.meter.lock().unwrap().requests.push((op, sizes));
    }
}

#[async_trait]
impl Kv for Metered<'_> {
    async fn get(&self, table: Table, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let got = self.inner.get(table, pk, sk).await?;
        self.record("GetItem", got.as_slice());
        Ok(got)
    }
    async fn put(&self, table: Table, item: Item, cond: Cond) -> Result<u64, StoreError> {
        self.inner.put(table, item, cond).await
    }
    async fn put_batch(&self, table: Table, items: Vec<Item>) -> Result<(), StoreError> {
        self.inner.put_batch(table, items).await
    }
    async fn delete(&self, table: Table, pk: &str, sk: &str, cond: Cond) -> Result<(), StoreError> {
        self.inner.delete(table, pk, sk, cond).await
    }
    async fn query(
        &self,
        table: Table,
        pk: &str,
        sk_from: Option<&str>,
    ) -> Result<Vec<Item>, StoreError> {
        let got = self.inner.query(table, pk, sk_from).await?;
        self.record("Query", &got);
        Ok(got)
    }
    async fn query_between(
        &self,
        table: Table,
        pk: &str,
        sk_from: &str,
        sk_to: &str,
    ) -> Result<Vec<Item>, StoreError> {
        let got = self.inner.query_between(table, pk, sk_from, sk_to).await?;
        self.record("Query", &got);
        Ok(got)
    }
    async fn scan(&self, table: Table) -> Result<Vec<Item>, StoreError> {
        self.inner.scan(table).await
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or("/tmp/argus-bench-tsdb".into()),
    );
    let embedded = argus_store::EmbeddedKv::open(dir.join("argus.redb"))
        .expect("the bench_tsdb data directory (run bench_tsdb first)");
    let moto = argus_testkit::moto();
    let conf = argus_store::aws_sdk_config_for(Some(&moto.url()))
        .await
        .into_builder()
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "bench"),
        ))
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .build();
    argus_store::bootstrap::bootstrap(&conf, "bench-", &mut |_: &str| {})
        .await
        .unwrap();
    let dynamo = argus_store::DynamoKv::from_conf(&conf, "bench-");
    let items = embedded.scan(Table::Samples).await.unwrap();
    let n = items.len();
    let bytes: usize = items.iter().map(Item::approx_size).sum();
    let t = std::time::Instant::now();
    for chunk in items.chunks(25) {
        dynamo
            .put_batch(Table::Samples, chunk.to_vec())
            .await
            .unwrap();
    }
    eprintln!(
        "copied {n} items ({bytes} B) of `samples` into moto in {:.1?}",
        t.elapsed()
    );

    // What moto says when asked for the consumed capacity of a large Query.
    let biggest = items.iter().max_by_key(|i| i.approx_size()).unwrap();
    let asked = dynamo
        .client()
        .query()
        .table_name(dynamo.table_name(Table::Samples))
        .consistent_read(true)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(biggest.pk.clone()))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    let sizes: Vec<usize> = items
        .iter()
        .filter(|i| i.pk == biggest.pk)
        .map(Item::approx_size)
        .collect();
    let returned: usize = sizes.iter().sum();
    let rule = Meter {
        requests: vec![("Query", sizes)],
    }
    .units();
    println!(
        "moto's ConsumedCapacity for one Query of partition {} ({} items, {returned} B, one page): {:?} units (DynamoDB's rule: {} units in {} pages of at most 1 MB)",
        biggest.pk,
        asked.count,
        asked.consumed_capacity().and_then(|c| c.capacity_units()),
        rule.2,
        rule.0
    );
    drop(items);

    let end = START_S * 1000 + DAYS * 86_400_000 - 30_000;
    let lookback = argus_promql::Engine::new().lookback_ms;
    println!("\n| query | span | requests | bytes returned | read units (strongly consistent) | eventually consistent |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for (q, span) in [
        ("probe_success", 7 * 86_400_000i64),
        ("probe_duration_seconds", 7 * 86_400_000),
        ("probe_success", 3_600_000),
        ("probe_duration_seconds", 3_600_000),
        ("rate(probe_http_duration_seconds_count[5m])", 3_600_000),
    ] {
        let expr = argus_promql::parse(q).unwrap();
        let start = end - span;
        let metered = Metered {
            inner: &dynamo,
            meter: Mutex::default(),
        };
        let got = argus_tsdb::load_for(&metered, &expr, start, end, lookback, 50_000_000)
            .await
            .unwrap();
        let want = argus_tsdb::load_for(&embedded, &expr, start, end, lookback, 50_000_000)
            .await
            .unwrap();
        let bits = |st: &argus_promql::MemStorage| -> Vec<(argus_model::Labels, Vec<(i64, u64)>)> {
            st.series()
                .iter()
                .map(|s| {
                    let pts = s.samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
                    (s.labels.clone(), pts)
                })
                .collect()
        };
        assert!(
            bits(&got) == bits(&want),
            "{q}: DynamoDB and embedded differ"
        );
        let (calls, bytes, units) = metered.meter.lock().unwrap().units();
        println!(
            "| `{q}` | {} | {calls} | {bytes} B | **{units}** | {:.1} |",
            if span >= 86_400_000 {
                format!("{} d", span / 86_400_000)
            } else {
                format!("{} h", span / 3_600_000)
            },
            units as f64 / 2.0
        );
    }
}
