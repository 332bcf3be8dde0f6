//! Compaction: head chunks of a finished 2-hour span become one block, and the sweep
//! that ends retention on the embedded store (DynamoDB's TTL does it in AWS; the sweep
//! is harmless there).
//!
//! Commit protocol for block `[S, S+2h)` (the same for compaction and import):
//! 1. read the block's index item (its version: 0 when absent) and, if committed, its data;
//! 2. read the head chunks of `[S - LEAD, S+2h)` (the lead only to mark series that
//!    vanished at the block's first tick);
//! 3. merge (per series, one sample per timestamp, what is stored wins); nothing new: done;
//! 4. write the data parts under the content id of the merged block (a writer with the
//!    same content writes the same items), then put the index item with
//!    `Cond::Version(read version)`; a lost race deletes its own parts and starts over.
//!
//! Head chunks are never deleted by compaction: they expire ([`crate::chunk::HEAD_TTL`]),
//! and readers skip the ones a committed block covers. Killed anywhere, a rerun finds
//! either no index (nothing committed) or the committed block, and merging the heads
//! again adds nothing.

use crate::block::{
    block_start, data_pk, decode_index, encode_block, index_item, read_name, sk_time, BlockIndex,
    SeriesData, BLOCK_MS, INDEX_PARTITION,
};
use crate::chunk::{chunk_ts, read_chunks_between, replay_heads, SeriesMap, HEAD_TTL, PARTITION};
use crate::TsdbError;
use argus_model::time::millis;
use argus_model::{Cond, Kv, Millis, StoreError, Table};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// How long after a block's end its compaction waits, so every tick of it is written.
pub const SETTLE_MS: i64 = 10 * 60_000;
/// Head chunks before a block that its compaction replays to mark series that vanished
/// at the block's first tick.
pub const LEAD_MS: i64 = 10 * 60_000;
const ATTEMPTS: u32 = 5;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct CompactReport {
    pub blocks_written: usize,
    /// Samples added to blocks.
    pub samples: u64,
    /// Items removed by the retention sweep.
    pub swept: usize,
}

/// Where new samples for a block come from.
pub enum Source<'a> {
    /// The head chunks of the block (re-read at every attempt).
    Heads,
    /// Given samples (import).
    Given(&'a SeriesMap),
}

/// Whether a compaction is worth running at `now`, given the last tick before it.
pub fn due(prev_tick: Option<Millis>, now: Millis) -> bool {
    match prev_tick {
        None => true,
        Some(p) => block_start(p - SETTLE_MS) != block_start(now - SETTLE_MS),
    }
}

/// Compacts every finished span of the last [`HEAD_TTL`] not yet in a block, oldest
/// first; with `sweep` (the embedded store, which has no TTL) it then deletes what has
/// expired.
pub async fn compact(
    kv: &dyn Kv,
    now: Millis,
    retention: Duration,
    sweep_expired: bool,
) -> Result<CompactReport, TsdbError> {
    let mut report = CompactReport::default();
    let horizon = block_start(now - millis(HEAD_TTL));
    let mut committed = BTreeSet::new();
    for it in kv
        .query_between(
            Table::Samples,
            INDEX_PARTITION,
            &sk_time(horizon),
            &sk_time(now),
        )
        .await?
    {
        committed.insert(decode_index(&it)?.start);
    }
    let mut s = horizon;
    while s + BLOCK_MS + SETTLE_MS <= now {
        if !committed.contains(&s) {
            let added = commit(kv, s, Source::Heads, retention).await?;
            if added > 0 {
                report.blocks_written += 1;
                report.samples += added;
            }
        }
        s += BLOCK_MS;
    }
    if sweep_expired {
        report.swept = sweep(kv, now, retention).await?;
    }
    Ok(report)
}

async fn read_index(kv: &dyn Kv, s: i64) -> Result<(Option<BlockIndex>, u64), TsdbError> {
    match kv.get(Table::Samples, INDEX_PARTITION, &sk_time(s)).await? {
        Some(item) => Ok((Some(decode_index(&item)?), item.version)),
        None => Ok((None, 0)),
    }
}

/// A committed block's series, or `None` if it changed while being read.
async fn read_block(kv: &dyn Kv, idx: &BlockIndex) -> Result<Option<SeriesMap>, TsdbError> {
    let mut out = SeriesMap::new();
    for e in &idx.names {
        match read_name(kv, idx, e, |_| true).await? {
            Some(series) => out.extend(series.into_iter().map(|s| (s.labels, s.samples))),
            None => return Ok(None),
        }
    }
    Ok(Some(out))
}

/// Merges `new` into `into`: per series one sample per timestamp, `into`'s wins.
/// Returns how many samples were added.
pub fn merge(into: &mut SeriesMap, new: SeriesMap) -> u64 {
    let mut added = 0u64;
    for (l, mut samples) in new {
        let cur = into.entry(l).or_default();
        let before = cur.len();
        samples.sort_by_key(|s| s.0);
        if cur
            .last()
            .is_none_or(|l| samples.first().is_some_and(|f| f.0 > l.0))
        {
            cur.extend(samples);
        } else {
            cur.extend(samples);
            cur.sort_by_key(|s| s.0); // stable: what was stored first stays first
        }
        cur.dedup_by_key(|s| s.0);
        added += (cur.len() - before) as u64;
    }
    added
}

fn by_name(map: SeriesMap) -> BTreeMap<String, Vec<SeriesData>> {
    let mut out: BTreeMap<String, Vec<SeriesData>> = BTreeMap::new();
    for (labels, samples) in map {
        if samples.is_empty() {
            continue;
        }
        let name = labels.name().unwrap_or("").to_string();
        out.entry(name)
            .or_default()
            .push(SeriesData { labels, samples });
    }
    for v in out.values_mut() {
        v.sort_by(|a, b| a.labels.cmp(&b.labels));
    }
    out
}

async fn delete_parts(kv: &dyn Kv, idx: &BlockIndex) -> Result<(), TsdbError> {
    for e in &idx.names {
        for p in 0..e.parts {
            kv.delete(
                Table::Samples,
                &data_pk(&e.name),
                &idx.data_sk(p),
                Cond::Always,
            )
            .await?;
        }
    }
    Ok(())
}

/// Merges samples into block `s` and commits it (see the module docs). Returns the
/// samples added (0: the block already held them all).
pub async fn commit(
    kv: &dyn Kv,
    s: i64,
    source: Source<'_>,
    retention: Duration,
) -> Result<u64, TsdbError> {
    debug_assert_eq!(s, block_start(s));
    let end = s + BLOCK_MS;
    for _ in 0..ATTEMPTS {
        let (old, version) = read_index(kv, s).await?;
        let new = match &source {
            Source::Heads => {
                let heads = read_chunks_between(kv, s - LEAD_MS, end).await?;
                replay_heads(&heads, s, end, |_, _| true)
            }
            Source::Given(m) => (*m).clone(),
        };
        let mut merged = match &old {
            Some(idx) => match read_block(kv, idx).await? {
                Some(m) => m,
                None => continue,
            },
            None => SeriesMap::new(),
        };
        let added = merge(&mut merged, new);
        if added == 0 {
            return Ok(0);
        }
        let enc = encode_block(s, &by_name(merged), retention);
        kv.put_batch(Table::Samples, enc.items).await?;
        match kv
            .put(
                Table::Samples,
                index_item(&enc.index, retention),
                Cond::Version(version),
            )
            .await
        {
            Ok(_) => {
                if let Some(old) = old.filter(|o| o.id != enc.index.id) {
                    delete_parts(kv, &old).await?;
                }
                return Ok(added);
            }
            Err(StoreError::Conflict(_)) => {
                let (winner, _) = read_index(kv, s).await?;
                if winner.as_ref().is_none_or(|w| w.id != enc.index.id) {
                    delete_parts(kv, &enc.index).await?;
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(TsdbError::Contended {
        start: s,
        attempts: ATTEMPTS,
    })
}

/// Deletes blocks older than the retention (`now - retention`) and head chunks past
/// their expiry that a committed block covers (an uncompacted one is kept until the
/// retention, so a stalled compaction loses nothing here). For the embedded store:
/// DynamoDB's TTL does the same for free. A corrupt expired index is reported, not
/// deleted blindly.
pub async fn sweep(kv: &dyn Kv, now: Millis, retention: Duration) -> Result<usize, TsdbError> {
    let cutoff = now.saturating_sub(millis(retention));
    let mut n = 0;
    if cutoff - BLOCK_MS >= 0 {
        let to = sk_time(cutoff - BLOCK_MS + 1);
        for item in kv
            .query_between(Table::Samples, INDEX_PARTITION, &sk_time(0), &to)
            .await?
        {
            let idx = decode_index(&item)?;
            delete_parts(kv, &idx).await?;
            kv.delete(Table::Samples, INDEX_PARTITION, &item.sk, Cond::Always)
                .await?;
            n += 1 + idx.names.iter().map(|e| e.parts as usize).sum::<usize>();
        }
    }
    let head_cutoff = now - millis(HEAD_TTL.min(retention));
    if head_cutoff > 0 {
        let heads = kv
            .query_between(
                Table::Samples,
                PARTITION,
                &sk_time(0),
                &sk_time(head_cutoff),
            )
            .await?;
        let mut covered: BTreeSet<i64> = BTreeSet::new();
        if let Some(first) = heads.first() {
            for it in kv
                .query_between(
                    Table::Samples,
                    INDEX_PARTITION,
                    &sk_time(block_start(chunk_ts(first)?)),
                    &sk_time(head_cutoff),
                )
                .await?
            {
                covered.insert(decode_index(&it)?.start);
            }
        }
        for item in heads {
            let ts = chunk_ts(&item)?;
            if ts < cutoff || (!item.live(now) && covered.contains(&block_start(ts))) {
                kv.delete(Table::Samples, PARTITION, &item.sk, Cond::Always)
                    .await?;
                n += 1;
            }
        }
    }
    Ok(n)
}
