//! Block items: one metric name's series over one 2-hour block, and the block's index.
//!
//! A data part (before anything else, one format-version byte):
//!
//! ```text
//! u8 version (1)
//! u32 LE  length of the series section, then the section, zstd-compressed:
//!           u32 series count; per series: u16 label count (without __name__),
//!           (u16 len + bytes) per name and value, u32 sample count
//! u32 LE  length of the timestamps, then every series' timestamps (ms) one after the
//!           other, as one pco column of i64
//! rest    every series' values, one pco column of f64 (bit-exact: staleness markers
//!           and other NaNs survive)
//! ```
//!
//! Columns over all the series of a name compress far better than one stream per series
//! (regular timestamps cost almost nothing; constant values neither). The index item is
//! JSON ([`BlockIndex`]) with its own version field.

use crate::TsdbError;
use argus_model::{Item, Kv, Labels, Table, UnixSecs};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::collections::BTreeMap;
use std::time::Duration;

/// Block span: Prometheus's head compacts 2-hour blocks too.
pub const BLOCK_MS: i64 = 2 * 3_600_000;
pub const INDEX_PARTITION: &str = "idx";
pub const DATA_PREFIX: &str = "b#";
pub const FORMAT_VERSION: u8 = 1;
pub const INDEX_VERSION: u8 = 1;
/// DynamoDB items are limited to 400 KB; a name's block is split below that.
pub const MAX_PART_BYTES: usize = 350 * 1024;

/// The start of the block holding `ts`.
pub fn block_start(ts: i64) -> i64 {
    ts.div_euclid(BLOCK_MS) * BLOCK_MS
}

pub fn sk_time(ts: i64) -> String {
    // Times before 1970 are not stored (they would not sort as strings).
    format!("{:013}", ts.max(0))
}

#[derive(Clone, Debug, PartialEq)]
pub struct SeriesData {
    pub labels: Labels,
    /// Ascending, one per timestamp; staleness markers included.
    pub samples: Vec<(i64, f64)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameEntry {
    pub name: String,
    pub series: u32,
    pub samples: u64,
    pub parts: u32,
    /// Stored bytes of the data parts.
    pub bytes: u64,
}

/// The block's index item (`idx`, `<start>`): written last, it commits the block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockIndex {
    pub v: u8,
    pub start: i64,
    pub end: i64,
    /// Content hash of the data parts: their sort keys carry it, so a writer that loses
    /// the commit never overwrites the winner's parts.
    pub id: String,
    pub names: Vec<NameEntry>,
}

impl BlockIndex {
    pub fn samples(&self) -> u64 {
        self.names.iter().map(|n| n.samples).sum()
    }
    pub fn data_sk(&self, part: u32) -> String {
        format!("{}#{}#{part:03}", sk_time(self.start), self.id)
    }
}

pub fn data_pk(name: &str) -> String {
    format!("{DATA_PREFIX}{name}")
}

pub fn index_item_name(start: i64) -> String {
    format!("samples/{INDEX_PARTITION}/{}", sk_time(start))
}

pub fn decode_index(item: &Item) -> Result<BlockIndex, TsdbError> {
    let name = format!("samples/{}/{}", item.pk, item.sk);
    let bad = |why: String| TsdbError::Corrupt {
        item: name.clone(),
        why,
    };
    let data = item.data.as_deref().ok_or_else(|| bad("no data".into()))?;
    #[derive(Deserialize)]
    struct V {
        v: u8,
    }
    let v: V = serde_json::from_slice(data).map_err(|e| bad(e.to_string()))?;
    if v.v != INDEX_VERSION {
        return Err(bad(format!("unknown index format version {}", v.v)));
    }
    let idx: BlockIndex = serde_json::from_slice(data).map_err(|e| bad(e.to_string()))?;
    if sk_time(idx.start) != item.sk || idx.end != idx.start + BLOCK_MS {
        return Err(bad("span does not match its key".into()));
    }
    Ok(idx)
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    let n = b.len().min(u16::MAX as usize);
    out.extend_from_slice(&(n as u16).to_le_bytes());
    out.extend_from_slice(&b[..n]);
}

fn pco_config() -> pco::ChunkConfig {
    pco::ChunkConfig::default()
}

/// Encodes one part: `series` of one metric name.
pub fn encode_part(series: &[SeriesData]) -> Vec<u8> {
    let mut meta = Vec::with_capacity(series.len() * 48);
    meta.extend_from_slice(&(series.len() as u32).to_le_bytes());
    let n: usize = series.iter().map(|s| s.samples.len()).sum();
    let mut ts = Vec::with_capacity(n);
    let mut vs = Vec::with_capacity(n);
    for s in series {
        let pairs: Vec<(&str, &str)> = s.labels.iter().filter(|(k, _)| *k != "__name__").collect();
        meta.extend_from_slice(&(pairs.len() as u16).to_le_bytes());
        for (k, v) in pairs {
            put_str(&mut meta, k);
            put_str(&mut meta, v);
        }
        meta.extend_from_slice(&(s.samples.len() as u32).to_le_bytes());
        for &(t, v) in &s.samples {
            ts.push(t);
            vs.push(v);
        }
    }
    let meta = zstd::encode_all(meta.as_slice(), 9).expect("zstd to memory");
    let tcol = pco::standalone::simple_compress(&ts, &pco_config()).expect("pco i64");
    let vcol = pco::standalone::simple_compress(&vs, &pco_config()).expect("pco f64");
    let mut out = Vec::with_capacity(9 + meta.len() + tcol.len() + vcol.len());
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    out.extend_from_slice(&meta);
    out.extend_from_slice(&(tcol.len() as u32).to_le_bytes());
    out.extend_from_slice(&tcol);
    out.extend_from_slice(&vcol);
    out
}

/// A decoded part's series headers (labels and sample counts), before the columns.
struct Header {
    labels: Vec<(Labels, usize)>,
    tcol: std::ops::Range<usize>,
    vcol: std::ops::Range<usize>,
}

fn decode_header(item: &str, name: &str, bytes: &[u8]) -> Result<Header, TsdbError> {
    let bad = |why: &str| TsdbError::Corrupt {
        item: item.to_string(),
        why: why.to_string(),
    };
    match bytes.first() {
        Some(&FORMAT_VERSION) => {}
        Some(v) => return Err(bad(&format!("unknown block format version {v}"))),
        None => return Err(bad("empty")),
    }
    let u32_at = |p: usize| -> Result<usize, TsdbError> {
        Ok(u32::from_le_bytes(
            bytes
                .get(p..p + 4)
                .ok_or_else(|| bad("truncated"))?
                .try_into()
                .unwrap(),
        ) as usize)
    };
    let mlen = u32_at(1)?;
    let meta = bytes.get(5..5 + mlen).ok_or_else(|| bad("truncated"))?;
    let tlen = u32_at(5 + mlen)?;
    let tstart = 9 + mlen;
    if bytes.len() < tstart + tlen {
        return Err(bad("truncated"));
    }
    let raw = zstd::decode_all(meta).map_err(|e| bad(&format!("series section: {e}")))?;
    let mut p = 0usize;
    let take = |p: &mut usize, n: usize| -> Result<&[u8], TsdbError> {
        let s = raw
            .get(*p..*p + n)
            .ok_or_else(|| bad("series section truncated"))?;
        *p += n;
        Ok(s)
    };
    let count = u32::from_le_bytes(take(&mut p, 4)?.try_into().unwrap()) as usize;
    let mut labels = Vec::with_capacity(count.min(1 << 16));
    for _ in 0..count {
        let nl = u16::from_le_bytes(take(&mut p, 2)?.try_into().unwrap()) as usize;
        let mut pairs = Vec::with_capacity(nl + 1);
        pairs.push(("__name__".to_string(), name.to_string()));
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
        let n = u32::from_le_bytes(take(&mut p, 4)?.try_into().unwrap()) as usize;
        labels.push((Labels::from_pairs(pairs), n));
    }
    if p != raw.len() {
        return Err(bad("trailing bytes in the series section"));
    }
    Ok(Header {
        labels,
        tcol: tstart..tstart + tlen,
        vcol: tstart + tlen..bytes.len(),
    })
}

/// Decodes the series of one part that `keep` accepts (columns are decoded only when
/// one does). Strict: any inconsistency is an error naming `item`.
pub fn decode_part(
    item: &str,
    name: &str,
    bytes: &[u8],
    keep: impl Fn(&Labels) -> bool,
) -> Result<Vec<SeriesData>, TsdbError> {
    let bad = |why: String| TsdbError::Corrupt {
        item: item.to_string(),
        why,
    };
    let h = decode_header(item, name, bytes)?;
    let wanted: Vec<bool> = h.labels.iter().map(|(l, _)| keep(l)).collect();
    if !wanted.iter().any(|w| *w) {
        return Ok(Vec::new());
    }
    let ts: Vec<i64> = pco::standalone::simple_decompress(&bytes[h.tcol.clone()])
        .map_err(|e| bad(format!("timestamps: {e}")))?;
    let vs: Vec<f64> = pco::standalone::simple_decompress(&bytes[h.vcol.clone()])
        .map_err(|e| bad(format!("values: {e}")))?;
    let total: usize = h.labels.iter().map(|(_, n)| n).sum();
    if ts.len() != total || vs.len() != total {
        return Err(bad(format!(
            "{total} samples announced, {} timestamps and {} values stored",
            ts.len(),
            vs.len()
        )));
    }
    let mut out = Vec::new();
    let mut at = 0;
    for ((labels, n), w) in h.labels.into_iter().zip(wanted) {
        let range = at..at + n;
        at += n;
        if !w {
            continue;
        }
        if ts[range.clone()].windows(2).any(|p| p[0] >= p[1]) {
            return Err(bad(format!("timestamps of {labels} not ascending")));
        }
        out.push(SeriesData {
            labels,
            samples: ts[range.clone()]
                .iter()
                .copied()
                .zip(vs[range].iter().copied())
                .collect(),
        });
    }
    Ok(out)
}

/// Splits one name's series into parts under [`MAX_PART_BYTES`].
fn encode_name(series: &[SeriesData]) -> Vec<Vec<u8>> {
    let mut parts = 1usize;
    loop {
        let per = series.len().div_ceil(parts).max(1);
        let enc: Vec<Vec<u8>> = if series.is_empty() {
            vec![encode_part(series)]
        } else {
            series.chunks(per).map(encode_part).collect()
        };
        if per == 1 || enc.iter().all(|e| e.len() <= MAX_PART_BYTES) {
            return enc;
        }
        parts *= 2;
    }
}

/// A block ready to commit: its index and the data items it names.
pub struct Encoded {
    pub index: BlockIndex,
    pub items: Vec<Item>,
}

/// Encodes a block's series (per name, sorted by labels) into items with TTL
/// `block end + retention`.
pub fn encode_block(
    start: i64,
    by_name: &BTreeMap<String, Vec<SeriesData>>,
    retention: Duration,
) -> Encoded {
    let mut hash = sha2::Sha256::new();
    let mut encoded = Vec::new();
    for (name, series) in by_name {
        if series.is_empty() {
            continue;
        }
        let parts = encode_name(series);
        hash.update((name.len() as u64).to_le_bytes());
        hash.update(name.as_bytes());
        for p in &parts {
            hash.update((p.len() as u64).to_le_bytes());
            hash.update(p);
        }
        encoded.push((name, series, parts));
    }
    let id = hex::encode(&hash.finalize()[..8]);
    let end = start + BLOCK_MS;
    let expires = Some(UnixSecs::floor(end).plus(retention));
    let mut index = BlockIndex {
        v: INDEX_VERSION,
        start,
        end,
        id,
        names: Vec::new(),
    };
    let mut items = Vec::new();
    for (name, series, parts) in encoded {
        index.names.push(NameEntry {
            name: name.clone(),
            series: series.len() as u32,
            samples: series.iter().map(|s| s.samples.len() as u64).sum(),
            parts: parts.len() as u32,
            bytes: parts.iter().map(|p| p.len() as u64).sum(),
        });
        for (i, p) in parts.into_iter().enumerate() {
            let mut item = Item::new(data_pk(name), index.data_sk(i as u32));
            item.data = Some(p);
            item.expires_at = expires;
            items.push(item);
        }
    }
    Encoded { index, items }
}

pub fn index_item(index: &BlockIndex, retention: Duration) -> Item {
    let mut item = Item::new(INDEX_PARTITION, sk_time(index.start));
    item.data = Some(serde_json::to_vec(index).expect("index serializes"));
    item.expires_at = Some(UnixSecs::floor(index.end).plus(retention));
    item
}

/// Reads one committed block's data for `name` (all parts), or `None` when a part is
/// missing (the block was replaced meanwhile: the caller reads the index again).
pub async fn read_name(
    kv: &dyn Kv,
    index: &BlockIndex,
    entry: &NameEntry,
    keep: impl Fn(&Labels) -> bool,
) -> Result<Option<Vec<SeriesData>>, TsdbError> {
    let pk = data_pk(&entry.name);
    let from = format!("{}#{}#", sk_time(index.start), index.id);
    let to = format!("{}#{}$", sk_time(index.start), index.id);
    let items = kv.query_between(Table::Samples, &pk, &from, &to).await?;
    if items.len() != entry.parts as usize {
        return Ok(None);
    }
    let mut out = Vec::new();
    for it in items {
        let name = format!("samples/{}/{}", it.pk, it.sk);
        let data = it.data.as_deref().unwrap_or_default();
        out.extend(decode_part(&name, &entry.name, data, &keep)?);
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_round_trip_bit_exact_and_reject_corruption() {
        let odd = [
            0.1 + 0.2,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            argus_promql::stale_nan(),
            5e-324,
            1.795e9,
        ];
        let series = vec![
            SeriesData {
                labels: Labels::from_pairs([("__name__", "m"), ("a", "1")]),
                samples: odd
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (i as i64 * 60_000, *v))
                    .collect(),
            },
            SeriesData {
                labels: Labels::from_pairs([("__name__", "m"), ("a", "2")]),
                samples: vec![(5, 1.0)],
            },
        ];
        let bytes = encode_part(&series);
        let back = decode_part("x", "m", &bytes, |_| true).unwrap();
        assert_eq!(back.len(), 2);
        for (a, b) in series[0].samples.iter().zip(&back[0].samples) {
            assert_eq!(a.0, b.0);
            assert_eq!(a.1.to_bits(), b.1.to_bits(), "{}", a.1);
        }
        assert_eq!(back[1], series[1]);
        // Only the wanted series.
        let one = decode_part("x", "m", &bytes, |l| l.get("a") == Some("2")).unwrap();
        assert_eq!(one, vec![series[1].clone()]);
        // Corruption is an error naming the item, wherever it is.
        let mut v2 = bytes.clone();
        v2[0] = 9;
        let e = decode_part("samples/b#m/1", "m", &v2, |_| true).unwrap_err();
        assert!(
            e.to_string().contains("samples/b#m/1") && e.to_string().contains("version 9"),
            "{e}"
        );
        for cut in [1, 6, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                decode_part("x", "m", &bytes[..cut], |_| true).is_err(),
                "cut {cut}"
            );
        }
    }
}
