//! The evaluator's TSDB: each tick's snapshot (every series the gateway exposes, plus
//! recorded and ALERTS series) stored as one compressed chunk in the `samples` table
//! (pk `chunk`, sk = tick time, TTL = retention). A warm evaluator keeps the window in
//! memory and reads only chunks newer than what it has.
//!
//! Chunk encoding (before zstd): u32 series count, then per series: u16 label count,
//! (u16 len + bytes) for each name and value, f64 LE. NaN (staleness markers) survives,
//! which JSON would not.

use argus_model::{Item, Kv, Labels, Millis, StoreError, Table};

pub const PARTITION: &str = "chunk";
/// DynamoDB items are limited to 400 KB; chunks are split below that.
const MAX_PART_BYTES: usize = 350 * 1024;

#[derive(Clone, Debug, PartialEq)]
pub struct Chunk {
    pub ts: Millis,
    pub series: Vec<(Labels, f64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    #[error("corrupt sample chunk at {ts}: {why}")]
    Corrupt { ts: Millis, why: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    let n = b.len().min(u16::MAX as usize);
    out.extend_from_slice(&(n as u16).to_le_bytes());
    out.extend_from_slice(&b[..n]);
}

pub fn encode(series: &[(Labels, f64)]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(series.len() * 64);
    raw.extend_from_slice(&(series.len() as u32).to_le_bytes());
    for (l, v) in series {
        raw.extend_from_slice(&(l.len() as u16).to_le_bytes());
        for (k, val) in l.iter() {
            put_str(&mut raw, k);
            put_str(&mut raw, val);
        }
        raw.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    zstd::encode_all(raw.as_slice(), 3).expect("zstd to memory")
}

pub fn decode(ts: Millis, bytes: &[u8]) -> Result<Vec<(Labels, f64)>, ChunkError> {
    let bad = |why: &str| ChunkError::Corrupt { ts, why: why.to_string() };
    let raw = zstd::decode_all(bytes).map_err(|e| bad(&e.to_string()))?;
    let mut p = 0usize;
    let take = |p: &mut usize, n: usize| -> Result<&[u8], ChunkError> {
        let s = raw.get(*p..*p + n).ok_or_else(|| bad("truncated"))?;
        *p += n;
        Ok(s)
    };
    let count = u32::from_le_bytes(take(&mut p, 4)?.try_into().unwrap()) as usize;
    let mut out = Vec::with_capacity(count.min(1 << 20));
    for _ in 0..count {
        let nl = u16::from_le_bytes(take(&mut p, 2)?.try_into().unwrap()) as usize;
        let mut pairs = Vec::with_capacity(nl);
        for _ in 0..nl {
            let mut s = [String::new(), String::new()];
            for slot in &mut s {
                let n = u16::from_le_bytes(take(&mut p, 2)?.try_into().unwrap()) as usize;
                *slot = String::from_utf8(take(&mut p, n)?.to_vec()).map_err(|_| bad("label not UTF-8"))?;
            }
            let [k, v] = s;
            pairs.push((k, v));
        }
        let v = f64::from_bits(u64::from_le_bytes(take(&mut p, 8)?.try_into().unwrap()));
        out.push((Labels::from_pairs(pairs), v));
    }
    Ok(out)
}

/// Writes one tick's chunk (split into parts under the item size limit).
pub async fn write_chunk(kv: &dyn Kv, chunk: &Chunk, retention_s: i64) -> Result<usize, ChunkError> {
    let mut items = Vec::new();
    let mut bytes;
    // Split by series count so each compressed part stays under the limit.
    let mut parts = 1usize;
    loop {
        items.clear();
        bytes = 0;
        let per = chunk.series.len().div_ceil(parts).max(1);
        let mut too_big = false;
        for (i, part) in chunk.series.chunks(per).enumerate() {
            let data = encode(part);
            if data.len() > MAX_PART_BYTES && per > 1 {
                too_big = true;
                break;
            }
            bytes += data.len();
            let mut item = Item::new(PARTITION, format!("{:013}#{i:04}", chunk.ts));
            item.data = Some(data);
            item.expires_at = Some(chunk.ts / 1000 + retention_s);
            items.push(item);
        }
        if chunk.series.is_empty() {
            let mut item = Item::new(PARTITION, format!("{:013}#0000", chunk.ts));
            item.data = Some(encode(&[]));
            item.expires_at = Some(chunk.ts / 1000 + retention_s);
            items.push(item);
        }
        if !too_big {
            break;
        }
        parts *= 2;
    }
    kv.put_batch(Table::Samples, items).await?;
    Ok(bytes)
}

/// Chunks with tick time ≥ `since`, oldest first (parts of one tick merged).
pub async fn read_chunks(kv: &dyn Kv, since: Millis) -> Result<Vec<Chunk>, ChunkError> {
    let from = format!("{:013}", since.max(0));
    let mut out: Vec<Chunk> = Vec::new();
    for item in kv.query(Table::Samples, PARTITION, Some(&from)).await? {
        let ts: Millis = item
            .sk
            .split('#')
            .next()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| ChunkError::Corrupt { ts: 0, why: format!("bad sort key {:?}", item.sk) })?;
        let series = decode(ts, item.data.as_deref().unwrap_or_default())?;
        match out.last_mut() {
            Some(c) if c.ts == ts => c.series.extend(series),
            _ => out.push(Chunk { ts, series }),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_keeps_nan_and_labels() {
        let s = vec![
            (Labels::from_pairs([("__name__", "up"), ("job", "a")]), 1.0),
            (Labels::from_pairs([("__name__", "x")]), f64::from_bits(0x7ff0000000000002)),
        ];
        let back = decode(1, &encode(&s)).unwrap();
        assert_eq!(back[0], s[0]);
        assert_eq!(back[1].1.to_bits(), 0x7ff0000000000002);
        assert!(decode(1, b"garbage").is_err());
    }
}
