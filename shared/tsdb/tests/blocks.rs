//! Compaction and reads on both real backends (redb and DynamoDB in moto), stepped clock.

use argus_model::{Kv, Labels, Table};
use argus_promql::{is_stale, MatchOp, Matcher, MemStorage, Queryable};
use argus_tsdb::block::{self, BLOCK_MS, INDEX_PARTITION};
use argus_tsdb::compact::{commit, Source};
use argus_tsdb::read::{by_name, everything, load_detailed};
use argus_tsdb::{compact, load, write_chunk, Chunk, TsdbError, Window};
use std::sync::Arc;

const T0: i64 = 1_700_002_800_000 / BLOCK_MS * BLOCK_MS; // a block boundary
const MIN: i64 = 60_000;
const RET: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

fn l(name: &str, inst: &str) -> Labels {
    Labels::from_pairs([("__name__", name), ("instance", inst)])
}

/// 5 h of ticks: `up` always; `gone` until 1h30; `edge` only in the last 30 min of the
/// first block (so its marker is the second block's first tick); `rec` generated.
fn tick(i: i64) -> Chunk {
    let ts = T0 + i * MIN;
    let mut scraped = vec![(l("up", "a"), 1.0), (l("dur", "a"), 0.01 * (i % 7) as f64)];
    if ts < T0 + 90 * MIN {
        scraped.push((l("gone", "a"), i as f64));
    }
    if (T0 + 90 * MIN..T0 + BLOCK_MS).contains(&ts) {
        scraped.push((l("edge", "a"), 2.0));
    }
    Chunk {
        ts,
        scraped,
        generated: vec![(l("rec", "a"), i as f64 * 0.5)],
    }
}

async fn write_heads(kv: &dyn Kv, n: i64) {
    for i in 0..n {
        write_chunk(kv, &tick(i), RET).await.unwrap();
    }
}

fn dump(st: &MemStorage) -> Vec<(Labels, Vec<(i64, u64)>)> {
    st.series()
        .iter()
        .map(|s| {
            (
                s.labels.clone(),
                s.samples.iter().map(|(t, v)| (*t, v.to_bits())).collect(),
            )
        })
        .collect()
}

async fn all(kv: &dyn Kv) -> Vec<(Labels, Vec<(i64, u64)>)> {
    dump(
        &load(
            kv,
            &everything(),
            T0 - BLOCK_MS,
            T0 + 10 * BLOCK_MS,
            usize::MAX,
        )
        .await
        .unwrap(),
    )
}

/// Samples stored in committed blocks, counted per (series, ts): each must be once.
async fn block_samples(kv: &dyn Kv) -> usize {
    let mut n = 0;
    for it in kv
        .query(Table::Samples, INDEX_PARTITION, None)
        .await
        .unwrap()
    {
        let idx = block::decode_index(&it).unwrap();
        for e in &idx.names {
            let s = block::read_name(kv, &idx, e, |_| true)
                .await
                .unwrap()
                .unwrap();
            n += s.iter().map(|s| s.samples.len()).sum::<usize>();
        }
    }
    n
}

async fn scenario(kv: Arc<dyn Kv>) {
    let kv = kv.as_ref();
    write_heads(kv, 300).await;
    let before = all(kv).await;
    // Markers as the window writes them: `gone` at 1h30, `edge` at the second block.
    let find = |d: &Vec<(Labels, Vec<(i64, u64)>)>, n: &str| {
        d.iter()
            .find(|(x, _)| x.name() == Some(n))
            .unwrap()
            .1
            .clone()
    };
    let gone = find(&before, "gone");
    assert_eq!(gone.last().unwrap().0, T0 + 90 * MIN);
    assert!(is_stale(f64::from_bits(gone.last().unwrap().1)));
    let edge = find(&before, "edge");
    assert_eq!(edge.last().unwrap().0, T0 + BLOCK_MS);
    assert!(is_stale(f64::from_bits(edge.last().unwrap().1)));

    // Killed before its commit: parts written, no index. Nothing changes for readers.
    let heads = argus_tsdb::chunk::read_chunks_between(kv, T0, T0 + BLOCK_MS)
        .await
        .unwrap();
    let m = argus_tsdb::chunk::replay_heads(&heads[..30], T0, T0 + BLOCK_MS, |_, _| true);
    let mut by: std::collections::BTreeMap<String, Vec<block::SeriesData>> = Default::default();
    for (labels, samples) in m {
        by.entry(labels.name().unwrap().to_string())
            .or_default()
            .push(block::SeriesData { labels, samples });
    }
    kv.put_batch(Table::Samples, block::encode_block(T0, &by, RET).items)
        .await
        .unwrap();
    assert_eq!(all(kv).await, before);

    // Killed after the commit, before deleting heads: readers see each sample once.
    assert!(commit(kv, T0, Source::Heads, RET).await.unwrap() > 0);
    assert_eq!(all(kv).await, before);
    assert_eq!(
        commit(kv, T0, Source::Heads, RET).await.unwrap(),
        0,
        "second commit adds nothing"
    );

    // Overlapping compactions with readers in between, at 5h: blocks 1 and 2 are due.
    let now = T0 + 5 * 60 * MIN;
    let (a, b, r1, r2) = tokio::join!(
        compact(kv, now, RET, false),
        compact(kv, now, RET, false),
        all(kv),
        all(kv)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(r1, before, "query during compaction");
    assert_eq!(r2, before, "query during compaction");
    assert!(a.blocks_written + b.blocks_written >= 1, "{a:?} {b:?}");
    assert_eq!(all(kv).await, before);
    // Blocks hold each sample of the first two blocks exactly once.
    let in_blocks = block_samples(kv).await;
    let expected: usize = before
        .iter()
        .flat_map(|(_, s)| s.iter())
        .filter(|(t, _)| *t < T0 + 2 * BLOCK_MS)
        .count();
    assert_eq!(in_blocks, expected);
    // Compaction deletes no head chunk (they expire); a second run has nothing to do.
    let left = kv
        .query(Table::Samples, argus_tsdb::PARTITION, None)
        .await
        .unwrap();
    assert_eq!(left.len(), 300);
    let again = compact(kv, now, RET, false).await.unwrap();
    assert_eq!(again.blocks_written, 0, "{again:?}");
    assert_eq!(all(kv).await, before);
    // A reader skips the head chunks that blocks cover.
    let recent = load_detailed(kv, &[by_name("up")], T0 + BLOCK_MS, now, usize::MAX)
        .await
        .unwrap();
    let heads_read = recent.items_read - 2 * 2; // 2 index items, 2 data items (blocks 1, 2)
    assert!(
        heads_read <= 60 + 2 * 10 + 1,
        "{} items read",
        recent.items_read
    );

    // Reads by name and span: one name over one block reads far less than everything.
    let one = load_detailed(kv, &[by_name("up")], T0, T0 + BLOCK_MS - 1, usize::MAX)
        .await
        .unwrap();
    let every = load_detailed(kv, &everything(), T0, now, usize::MAX)
        .await
        .unwrap();
    assert_eq!(one.series.len(), 1);
    assert_eq!(one.series.values().next().unwrap().len(), 120);
    assert!(
        one.bytes_read * 3 < every.bytes_read,
        "{} vs {}",
        one.bytes_read,
        every.bytes_read
    );
    // Label matchers beyond the name, and regex names.
    let sel = vec![Matcher::new(
        MatchOp::Re(regex_of("up|dur")),
        "__name__",
        "up|dur",
    )];
    let st = load(kv, &[sel], T0, now, usize::MAX).await.unwrap();
    assert_eq!(st.series_count(), 2);
    let m = [Matcher::new(MatchOp::Equal, "__name__", "up")];
    assert_eq!(st.select(&m, T0, now)[0].samples.len(), 300);

    // The limit: refused, never loaded.
    match load(kv, &everything(), T0, now, 1000).await {
        Err(TsdbError::TooManySamples { limit: 1000 }) => {}
        other => panic!("{:?}", other.map(|s| s.sample_count())),
    }
    assert!(load(kv, &[by_name("up")], T0, now, 300).await.is_ok());

    // Cold window over a span that is in blocks only.
    let mut w = Window::new(30 * MIN);
    w.catch_up(kv, T0 + BLOCK_MS).await.unwrap();
    let s = w.storage.select(&m, 0, i64::MAX);
    assert_eq!(s[0].samples.len(), 31);

    // Retention: the sweep removes blocks past it, and expired head chunks a block
    // covers; an uncovered head chunk stays until the retention.
    let swept = argus_tsdb::sweep(
        kv,
        T0 + 3 * BLOCK_MS,
        std::time::Duration::from_secs(3 * 3600),
    )
    .await
    .unwrap();
    assert!(swept > 0);
    let idx = kv
        .query(Table::Samples, INDEX_PARTITION, None)
        .await
        .unwrap();
    assert_eq!(idx.len(), 1, "block 1 expired, block 2 kept");
    let late = T0 + 3 * BLOCK_MS + 2 * 86_400_000;
    argus_tsdb::sweep(kv, late, std::time::Duration::from_secs(10 * 86_400))
        .await
        .unwrap();
    let left: Vec<i64> = kv
        .query(Table::Samples, argus_tsdb::PARTITION, None)
        .await
        .unwrap()
        .iter()
        .map(|i| argus_tsdb::chunk::chunk_ts(i).unwrap())
        .collect();
    assert_eq!(
        left.first(),
        Some(&(T0 + 2 * BLOCK_MS)),
        "covered heads swept, block 3's kept"
    );
    assert_eq!(left.len(), 60);

    // A corrupt block item is an error naming it.
    let it = kv
        .query(Table::Samples, "b#up", None)
        .await
        .unwrap()
        .pop()
        .unwrap();
    let mut bad = it.clone();
    bad.data = Some(vec![1, 2, 3]);
    kv.put(Table::Samples, bad, argus_model::Cond::Always)
        .await
        .unwrap();
    let e = load(kv, &[by_name("up")], T0, now, usize::MAX)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains(&format!("samples/b#up/{}", it.sk)),
        "{e}"
    );
}

fn regex_of(s: &str) -> regex::Regex {
    regex::Regex::new(&format!("^(?:{s})$")).unwrap()
}

#[tokio::test]
async fn compaction_on_the_embedded_store() {
    scenario(Arc::new(argus_store::EmbeddedKv::open_temp().unwrap())).await;
}

#[tokio::test]
async fn compaction_on_dynamodb_in_moto() {
    let moto = argus_testkit::moto();
    let conf = argus_store::aws_sdk_config_for(Some(&moto.url())).await;
    let conf = conf
        .into_builder()
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "test"),
        ))
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .build();
    argus_store::bootstrap::bootstrap(&conf, "t-", &mut |_: &str| {})
        .await
        .unwrap();
    scenario(Arc::new(argus_store::DynamoKv::from_conf(&conf, "t-"))).await;
}

#[tokio::test]
async fn import_writes_blocks_merges_and_refuses_bad_input_whole() {
    let kv = argus_store::EmbeddedKv::open_temp().unwrap();
    let t = T0 / 1000;
    let mut text = String::from("# TYPE up gauge\n");
    for i in 0..300 {
        text += &format!(
            "up{{instance=\"a\"}} 1 {}\nup{{instance=\"b\"}} {} {}\n",
            t + i * 60,
            i,
            t + i * 60
        );
    }
    text += "# EOF\n";
    let mut lines = Vec::new();
    let r = argus_tsdb::import_openmetrics(&kv, text.as_bytes(), RET, &mut |l: &str| {
        lines.push(l.to_string())
    })
    .await
    .unwrap();
    assert_eq!((r.samples, r.added, r.blocks), (600, 600, 3));
    assert_eq!(lines.len(), 3, "{lines:?}");
    let again = argus_tsdb::import_openmetrics(&kv, text.as_bytes(), RET, &mut |_: &str| {})
        .await
        .unwrap();
    assert_eq!(again.added, 0);
    let st = load(&kv, &[by_name("up")], T0, T0 + 300 * MIN, usize::MAX)
        .await
        .unwrap();
    assert_eq!(st.sample_count(), 600);
    // A bad line anywhere: an error naming it, nothing written.
    let kv2 = argus_store::EmbeddedKv::open_temp().unwrap();
    let bad = text.replace(
        &format!("up{{instance=\"b\"}} 7 {}", t + 7 * 60),
        "up{instance=\"b\"} seven 1",
    );
    let e = argus_tsdb::import_openmetrics(&kv2, bad.as_bytes(), RET, &mut |_: &str| {})
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with("line 17:"), "{e}");
    assert!(kv2.scan(Table::Samples).await.unwrap().is_empty());
}
