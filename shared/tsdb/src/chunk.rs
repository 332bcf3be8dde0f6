//! The evaluator's TSDB: each tick's snapshot (every series the gateway exposes, plus
//! recorded and ALERTS series) stored as one compressed chunk in the `samples` table
//! (pk `chunk`, sk = tick time, TTL = retention). A warm evaluator keeps the window in
//! memory and reads only chunks newer than what it has.
//!
//! Chunk encoding (before zstd): the marker `u32 0xFFFF_FFFF` and a format byte
//! ([`CHUNK_FORMAT`], 1), then the body: u32 series count, u32 how many of them (the last ones)
//! rules generated, then per series: u16 label count, (u16 len + bytes) for each name
//! and value; then every value: u8 len + its shortest decimal form (`len` 255: NaN,
//! followed by its 8 bits LE, so staleness markers survive). Values after all labels
//! and in decimal: zstd packs digits far better than 8-byte doubles (timings change
//! every tick), about a third less per series. A part without the marker is format 0
//! (the same body, written before chunks were versioned; no chunk holds 2^32 - 1
//! series, so the two never mix up); any other format byte is an error.

use crate::TsdbError;
use argus_model::{Item, Kv, Labels, Millis, Table, UnixSecs};
use std::time::Duration;

pub const PARTITION: &str = "chunk";
/// Head chunks expire two days after their tick (or at the retention, if shorter):
/// compaction copies them into a block within about 2.5 hours, and expiry — free with
/// DynamoDB's TTL, the sweep on the embedded store — removes them, so compaction never
/// pays a delete per chunk and a reader never sees a chunk vanish under it.
pub const HEAD_TTL: Duration = Duration::from_secs(2 * 86_400);
/// DynamoDB items are limited to 400 KB; chunks are split below that.
const MAX_PART_BYTES: usize = 350 * 1024;

#[derive(Clone, Debug, PartialEq)]
pub struct Chunk {
    pub ts: Millis,
    /// What the snapshot of the gateway held at `ts`.
    pub scraped: Vec<(Labels, f64)>,
    /// What rules produced at `ts` (recorded series, ALERTS, ALERTS_FOR_STATE).
    pub generated: Vec<(Labels, f64)>,
}

/// Kept for callers of the chunk API before the TSDB had its own crate.
pub type ChunkError = TsdbError;

fn put_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    let n = b.len().min(u16::MAX as usize);
    out.extend_from_slice(&(n as u16).to_le_bytes());
    out.extend_from_slice(&b[..n]);
}

/// The format [`encode`] writes (see the module note).
pub const CHUNK_FORMAT: u8 = 1;
const FORMAT_MARKER: [u8; 4] = [0xff; 4];

pub fn encode(scraped: &[(Labels, f64)], generated: &[(Labels, f64)]) -> Vec<u8> {
    let mut raw = Vec::with_capacity((scraped.len() + generated.len()) * 64 + 5);
    raw.extend_from_slice(&FORMAT_MARKER);
    raw.push(CHUNK_FORMAT);
    raw.extend_from_slice(&((scraped.len() + generated.len()) as u32).to_le_bytes());
    raw.extend_from_slice(&(generated.len() as u32).to_le_bytes());
    for (l, _) in scraped.iter().chain(generated) {
        raw.extend_from_slice(&(l.len() as u16).to_le_bytes());
        for (k, val) in l.iter() {
            put_str(&mut raw, k);
            put_str(&mut raw, val);
        }
    }
    for (_, v) in scraped.iter().chain(generated) {
        put_value(&mut raw, *v);
    }
    zstd::encode_all(raw.as_slice(), 9).expect("zstd to memory")
}

const NAN_TAG: u8 = 255;

fn put_value(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.push(NAN_TAG);
        out.extend_from_slice(&v.to_bits().to_le_bytes());
        return;
    }
    // Rust prints the shortest string that parses back to the same double.
    let plain = v.to_string();
    let s = if plain.len() > 24 {
        format!("{v:e}")
    } else {
        plain
    };
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

/// Decodes a chunk part into (scraped, generated).
pub type Parts = (Vec<(Labels, f64)>, Vec<(Labels, f64)>);

pub fn decode(ts: Millis, bytes: &[u8]) -> Result<Parts, ChunkError> {
    let bad = |why: &str| TsdbError::Corrupt {
        item: format!("samples/{PARTITION}/{ts:013}"),
        why: why.to_string(),
    };
    let raw = zstd::decode_all(bytes).map_err(|e| bad(&e.to_string()))?;
    let mut p = 0usize;
    let take = |p: &mut usize, n: usize| -> Result<&[u8], ChunkError> {
        let s = raw.get(*p..*p + n).ok_or_else(|| bad("truncated"))?;
        *p += n;
        Ok(s)
    };
    if raw.starts_with(&FORMAT_MARKER) {
        match raw.get(4) {
            Some(&CHUNK_FORMAT) => p = 5,
            Some(v) => return Err(bad(&format!("unknown chunk format version {v}"))),
            None => return Err(bad("truncated")),
        }
    }
    let count = u32::from_le_bytes(take(&mut p, 4)?.try_into().unwrap()) as usize;
    let generated = u32::from_le_bytes(take(&mut p, 4)?.try_into().unwrap()) as usize;
    if generated > count {
        return Err(bad("generated count exceeds series count"));
    }
    let mut labels = Vec::with_capacity(count.min(1 << 20));
    for _ in 0..count {
        let nl = u16::from_le_bytes(take(&mut p, 2)?.try_into().unwrap()) as usize;
        let mut pairs = Vec::with_capacity(nl);
        for _ in 0..nl {
            let mut s = [String::new(), String::new()];
            for slot in &mut s {
                let n = u16::from_le_bytes(take(&mut p, 2)?.try_into().unwrap()) as usize;
                *slot = String::from_utf8(take(&mut p, n)?.to_vec())
                    .map_err(|_| bad("label not UTF-8"))?;
            }
            let [k, v] = s;
            pairs.push((k, v));
        }
        labels.push(Labels::from_pairs(pairs));
    }
    let mut out = Vec::with_capacity(labels.len());
    for l in labels {
        let n = take(&mut p, 1)?[0];
        let v = if n == NAN_TAG {
            f64::from_bits(u64::from_le_bytes(take(&mut p, 8)?.try_into().unwrap()))
        } else {
            std::str::from_utf8(take(&mut p, n as usize)?)
                .ok()
                .and_then(|s| s.parse::<f64>().ok())
                .ok_or_else(|| bad("bad value"))?
        };
        out.push((l, v));
    }
    let gen = out.split_off(count - generated);
    Ok((out, gen))
}

/// Writes one tick's chunk (split into parts under the item size limit).
/// Returns the compressed bytes written.
pub async fn write_chunk(
    kv: &dyn Kv,
    chunk: &Chunk,
    retention: Duration,
) -> Result<usize, ChunkError> {
    let total = chunk.scraped.len() + chunk.generated.len();
    let mut parts = 1usize;
    loop {
        let per = total.div_ceil(parts).max(1);
        let mut items = Vec::new();
        let mut bytes = 0;
        let mut too_big = false;
        let mut i = 0;
        let mut part = 0;
        while i < total || (total == 0 && part == 0) {
            let end = (i + per).min(total);
            let sc = &chunk.scraped[i.min(chunk.scraped.len())..end.min(chunk.scraped.len())];
            let gs = i.max(chunk.scraped.len()) - chunk.scraped.len();
            let ge = end.max(chunk.scraped.len()) - chunk.scraped.len();
            let data = encode(sc, &chunk.generated[gs..ge]);
            if data.len() > MAX_PART_BYTES && per > 1 {
                too_big = true;
                break;
            }
            bytes += data.len();
            let mut item = Item::new(PARTITION, format!("{:013}#{part:04}", chunk.ts));
            item.data = Some(data);
            item.expires_at = Some(UnixSecs::floor(chunk.ts).plus(retention.min(HEAD_TTL)));
            items.push(item);
            i = end;
            part += 1;
        }
        if !too_big {
            kv.put_batch(Table::Samples, items).await?;
            return Ok(bytes);
        }
        parts *= 2;
    }
}

/// Chunks with tick time ≥ `since`, oldest first (parts of one tick merged).
pub async fn read_chunks(kv: &dyn Kv, since: Millis) -> Result<Vec<Chunk>, ChunkError> {
    let from = format!("{:013}", since.max(0));
    chunks_of(kv.query(Table::Samples, PARTITION, Some(&from)).await?)
}

/// Chunks with `from` ≤ tick time < `to`, oldest first.
pub async fn read_chunks_between(
    kv: &dyn Kv,
    from: Millis,
    to: Millis,
) -> Result<Vec<Chunk>, ChunkError> {
    let (f, t) = (format!("{:013}", from.max(0)), format!("{:013}", to.max(0)));
    chunks_of(kv.query_between(Table::Samples, PARTITION, &f, &t).await?)
}

/// The tick time in a head chunk's sort key.
pub fn chunk_ts(item: &Item) -> Result<Millis, TsdbError> {
    item.sk
        .split('#')
        .next()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| TsdbError::Corrupt {
            item: format!("samples/{PARTITION}/{}", item.sk),
            why: "bad sort key".into(),
        })
}

pub(crate) fn chunks_of(items: Vec<Item>) -> Result<Vec<Chunk>, ChunkError> {
    let mut out: Vec<Chunk> = Vec::new();
    for item in items {
        let ts = chunk_ts(&item)?;
        let (scraped, generated) = decode(ts, item.data.as_deref().unwrap_or_default())?;
        match out.last_mut() {
            Some(c) if c.ts == ts => {
                c.scraped.extend(scraped);
                c.generated.extend(generated);
            }
            _ => out.push(Chunk {
                ts,
                scraped,
                generated,
            }),
        }
    }
    Ok(out)
}

/// Samples per series, as a block or a query holds them.
pub type SeriesMap = std::collections::HashMap<Labels, Vec<(Millis, f64)>>;

/// Replays head chunks (oldest first) into series, with the staleness markers the
/// window would write (a series missing from the next tick is marked stale there),
/// keeping the samples with `from ≤ ts < to` for which `keep(ts, labels)` holds. Chunks
/// before `from` only seed what the first kept tick compares with.
pub fn replay_heads(
    chunks: &[Chunk],
    from: Millis,
    to: Millis,
    keep: impl Fn(Millis, &Labels) -> bool,
) -> SeriesMap {
    use std::collections::HashSet;
    let mut out = SeriesMap::new();
    let mut prev: [HashSet<&Labels>; 2] = Default::default();
    for c in chunks {
        let emit = c.ts >= from && c.ts < to;
        for (slot, series) in [&c.scraped, &c.generated].into_iter().enumerate() {
            let cur: HashSet<&Labels> = series.iter().map(|(l, _)| l).collect();
            if emit {
                for gone in prev[slot].difference(&cur) {
                    if keep(c.ts, gone) {
                        out.entry((*gone).clone())
                            .or_default()
                            .push((c.ts, argus_promql::stale_nan()));
                    }
                }
                for (l, v) in series {
                    if keep(c.ts, l) {
                        out.entry(l.clone()).or_default().push((c.ts, *v));
                    }
                }
            }
            prev[slot] = cur;
        }
    }
    out
}

/// The evaluation window in memory: the last `span` of chunks as a PromQL-queryable
/// store. Scraped series missing from a tick get a staleness marker at that tick, as
/// Prometheus does for a series that disappears from a scrape. Rule output goes stale
/// the same way, but live that is the rule engine's job (it tracks what each rule wrote);
/// the window does it only when replaying stored chunks.
pub struct Window {
    pub storage: argus_promql::MemStorage,
    last_ts: Option<Millis>,
    last_scraped: std::collections::HashSet<Labels>,
    last_generated: std::collections::HashSet<Labels>,
    span_ms: i64,
}

fn mark_and_append(
    storage: &mut argus_promql::MemStorage,
    prev: &mut std::collections::HashSet<Labels>,
    ts: Millis,
    series: &[(Labels, f64)],
) {
    let keys: std::collections::HashSet<Labels> = series.iter().map(|(l, _)| l.clone()).collect();
    for gone in prev.difference(&keys) {
        storage.mark_stale(gone, ts);
    }
    for (l, v) in series {
        // Out-of-order or duplicate samples are dropped, as Prometheus drops them.
        let _ = storage.append(l.clone(), ts, *v);
    }
    *prev = keys;
}

impl Window {
    pub fn new(span_ms: i64) -> Self {
        Window {
            storage: argus_promql::MemStorage::new(),
            last_ts: None,
            last_scraped: Default::default(),
            last_generated: Default::default(),
            span_ms,
        }
    }

    pub fn last_ts(&self) -> Option<Millis> {
        self.last_ts
    }

    /// Appends one tick's scrape. Ticks at or before the last one are ignored (seen).
    pub fn append(&mut self, ts: Millis, scraped: &[(Labels, f64)]) -> bool {
        if self.last_ts.is_some_and(|l| ts <= l) {
            return false;
        }
        mark_and_append(&mut self.storage, &mut self.last_scraped, ts, scraped);
        self.last_ts = Some(ts);
        self.storage.truncate_before(ts - self.span_ms);
        true
    }

    /// Records what rules generated live at the last tick (already in the storage).
    pub fn note_generated(&mut self, labels: impl Iterator<Item = Labels>) {
        self.last_generated = labels.collect();
    }

    /// Replays a stored chunk (scrape and rule output).
    pub fn replay(&mut self, c: &Chunk) -> bool {
        if !self.append(c.ts, &c.scraped) {
            return false;
        }
        mark_and_append(
            &mut self.storage,
            &mut self.last_generated,
            c.ts,
            &c.generated,
        );
        true
    }

    /// Reads the chunks written since what the window holds. Cold, it loads the whole
    /// span with [`crate::load`] (blocks and head chunks alike) and seeds its staleness
    /// state with the last head chunk; returns the head chunks read.
    pub async fn catch_up(&mut self, kv: &dyn Kv, now: Millis) -> Result<usize, ChunkError> {
        let since = match self.last_ts {
            Some(l) => (l + 1).max(now - self.span_ms),
            None => {
                let from = now - self.span_ms;
                let got = crate::read::load_detailed(
                    kv,
                    &crate::read::everything(),
                    from,
                    now,
                    usize::MAX,
                )
                .await?;
                let last_block_ts = got
                    .series
                    .values()
                    .filter_map(|s| s.iter().map(|x| x.0).max())
                    .max();
                self.storage = crate::read::into_storage(got.series);
                let n = got.heads.iter().filter(|c| c.ts >= from).count();
                if let Some(c) = got.heads.last() {
                    self.last_scraped = c.scraped.iter().map(|(l, _)| l.clone()).collect();
                    self.last_generated = c.generated.iter().map(|(l, _)| l.clone()).collect();
                    self.last_ts = Some(c.ts);
                } else {
                    self.last_ts = last_block_ts;
                }
                return Ok(n);
            }
        };
        let mut n = 0;
        for c in read_chunks(kv, since).await? {
            if self.replay(&c) {
                n += 1;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argus_promql::Queryable;

    fn l(name: &str) -> Labels {
        Labels::from_pairs([("__name__", name)])
    }

    #[test]
    fn encoding_keeps_nan_labels_and_the_split() {
        let s = vec![(Labels::from_pairs([("__name__", "up"), ("job", "a")]), 1.0)];
        let g = vec![(l("x"), f64::from_bits(0x7ff0000000000002))];
        let (bs, bg) = decode(1, &encode(&s, &g)).unwrap();
        assert_eq!(bs, s);
        assert_eq!(bg[0].1.to_bits(), 0x7ff0000000000002);
        assert!(decode(1, b"garbage").is_err());
        // Format 0 (no marker, written before chunks were versioned) still reads; an
        // unknown format is an error, never an empty chunk.
        let v1 = zstd::decode_all(encode(&s, &g).as_slice()).unwrap();
        assert_eq!(&v1[..5], &[0xff, 0xff, 0xff, 0xff, CHUNK_FORMAT]);
        let v0 = zstd::encode_all(&v1[5..], 1).unwrap();
        let (s0, g0) = decode(1, &v0).unwrap();
        assert_eq!((s0, g0[0].1.to_bits()), (bs.clone(), bg[0].1.to_bits()));
        let mut v9 = v1.clone();
        v9[4] = 9;
        let e = decode(1, &zstd::encode_all(v9.as_slice(), 1).unwrap()).unwrap_err();
        assert!(
            e.to_string().contains("unknown chunk format version 9"),
            "{e}"
        );
        // Every double comes back bit for bit (decimal values are the shortest exact form).
        let odd = [
            0.1 + 0.2,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            1.795e9,
            0.012345678,
            -123456789012345680000.0,
        ];
        let s: Vec<(Labels, f64)> = odd.iter().map(|v| (l("v"), *v)).collect();
        let (back, _) = decode(1, &encode(&s, &[])).unwrap();
        for ((_, a), (_, b)) in s.iter().zip(&back) {
            assert_eq!(a.to_bits(), b.to_bits(), "{a:e}");
        }
    }

    #[tokio::test]
    async fn chunks_round_trip_through_the_store_and_mark_staleness() {
        let kv = argus_store::EmbeddedKv::open_temp().unwrap();
        let c1 = Chunk {
            ts: 1000,
            scraped: vec![(l("a"), 1.0), (l("b"), 2.0)],
            generated: vec![(l("r"), 3.0)],
        };
        let c2 = Chunk {
            ts: 2000,
            scraped: vec![(l("a"), 1.5)],
            generated: vec![],
        };
        write_chunk(&kv, &c1, Duration::from_secs(3600))
            .await
            .unwrap();
        write_chunk(&kv, &c2, Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!(
            read_chunks(&kv, 0).await.unwrap(),
            vec![c1.clone(), c2.clone()]
        );
        assert_eq!(read_chunks(&kv, 1500).await.unwrap(), vec![c2]);
        let mut w = Window::new(600_000);
        assert_eq!(w.catch_up(&kv, 2500).await.unwrap(), 2);
        // b and r vanished at 2000: both end with a staleness marker there.
        for name in ["b", "r"] {
            let m = [argus_promql::Matcher::new(
                argus_promql::MatchOp::Equal,
                "__name__",
                name,
            )];
            let s = w.storage.select(&m, 0, 3000);
            let last = s[0].samples.last().unwrap();
            assert_eq!(last.0, 2000);
            assert!(argus_promql::is_stale(last.1), "{name} not stale");
        }
        // Ticks already seen are refused.
        assert!(!w.append(2000, &[]));
        assert_eq!(w.catch_up(&kv, 2500).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn big_chunks_are_split_under_the_item_limit() {
        let kv = argus_store::EmbeddedKv::open_temp().unwrap();
        // Random-ish labels so zstd can't shrink them below the limit.
        let scraped: Vec<(Labels, f64)> = (0..40_000u64)
            .map(|i| {
                let h = i.wrapping_mul(0x9E3779B97F4A7C15);
                (
                    Labels::from_pairs([
                        ("__name__", "m".to_string()),
                        ("id", format!("{h:016x}{i}")),
                    ]),
                    i as f64,
                )
            })
            .collect();
        let c = Chunk {
            ts: 5,
            scraped,
            generated: vec![(l("g"), 1.0)],
        };
        write_chunk(&kv, &c, Duration::from_secs(60)).await.unwrap();
        let items = kv.query(Table::Samples, PARTITION, None).await.unwrap();
        assert!(items.len() > 1, "not split");
        assert!(items
            .iter()
            .all(|i| i.data.as_ref().unwrap().len() <= MAX_PART_BYTES));
        let back = read_chunks(&kv, 0).await.unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].scraped.len(), 40_000);
        assert_eq!(back[0].generated, c.generated);
    }
}
