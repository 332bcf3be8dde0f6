//! The read side: what a query (or the evaluator's cold start) needs, by span and name.

use crate::block::{
    block_start, decode_index, read_name, sk_time, BlockIndex, BLOCK_MS, INDEX_PARTITION,
};
use crate::chunk::{chunks_of, replay_heads, Chunk, SeriesMap, PARTITION};
use crate::compact::LEAD_MS;
use crate::TsdbError;
use argus_model::{Kv, Labels, Table};
use argus_promql::{Expr, MatchOp, Matcher, MemStorage};
use promql_parser::parser::{AtModifier, Offset, VectorSelector};

/// How often a read starts over when a block was replaced while it read it.
const ATTEMPTS: u32 = 4;

fn matches(sel: &[Matcher], l: &Labels) -> bool {
    sel.iter().all(|m| m.is_match(l.get(&m.name).unwrap_or("")))
}

/// Whether a series named `name` can match the selector (its `__name__` matchers).
fn name_may_match(sel: &[Matcher], name: &str) -> bool {
    sel.iter()
        .filter(|m| m.name == "__name__")
        .all(|m| m.is_match(name))
}

/// What one read found, before it becomes a [`MemStorage`].
pub struct Loaded {
    pub series: SeriesMap,
    /// Head chunks read (the evaluator's window seeds its staleness state with the last).
    pub heads: Vec<Chunk>,
    /// Bytes of the items read (index, data and head chunks).
    pub bytes_read: usize,
    /// Items read.
    pub items_read: usize,
}

/// Loads every series matching any of `selectors` (each a conjunction of matchers; an
/// empty one matches everything) with its samples in `[start_ms, end_ms]`, from the
/// blocks of that span and the head chunks not yet compacted. Reads only the index items
/// of the span and the data items of the names the selectors can match.
///
/// Refuses with [`TsdbError::TooManySamples`] as soon as more than `max_samples` samples
/// would be loaded (counted from the blocks' indexes first, then as each item is decoded).
pub async fn load(
    kv: &dyn Kv,
    selectors: &[Vec<Matcher>],
    start_ms: i64,
    end_ms: i64,
    max_samples: usize,
) -> Result<MemStorage, TsdbError> {
    let got = load_detailed(kv, selectors, start_ms, end_ms, max_samples).await?;
    Ok(into_storage(got.series))
}

/// Series sorted by labels (as Prometheus's block querier returns them), samples in time
/// order, into a [`MemStorage`].
pub fn into_storage(series: SeriesMap) -> MemStorage {
    let mut v: Vec<(Labels, Vec<(i64, f64)>)> = series.into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    let mut st = MemStorage::new();
    for (l, mut samples) in v {
        if samples.windows(2).any(|w| w[1].0 <= w[0].0) {
            samples.sort_by_key(|s| s.0); // stable: the block's sample first
            samples.dedup_by_key(|s| s.0);
        }
        st.add_series(l, samples)
            .expect("unique labels, ascending samples");
    }
    st
}

/// [`load`], also saying what it read.
pub async fn load_detailed(
    kv: &dyn Kv,
    selectors: &[Vec<Matcher>],
    start_ms: i64,
    end_ms: i64,
    max_samples: usize,
) -> Result<Loaded, TsdbError> {
    if end_ms < start_ms || selectors.is_empty() {
        return Ok(Loaded {
            series: SeriesMap::new(),
            heads: Vec::new(),
            bytes_read: 0,
            items_read: 0,
        });
    }
    'attempt: for _ in 0..ATTEMPTS {
        let mut bytes_read = 0usize;
        let mut items_read = 0usize;
        let idx_items = kv
            .query_between(
                Table::Samples,
                INDEX_PARTITION,
                &sk_time(block_start(start_ms - LEAD_MS)),
                &sk_time(end_ms.saturating_add(1)),
            )
            .await?;
        let mut blocks: Vec<BlockIndex> = Vec::with_capacity(idx_items.len());
        for it in &idx_items {
            bytes_read += it.data.as_ref().map_or(0, |d| d.len());
            items_read += 1;
            blocks.push(decode_index(it)?);
        }
        // Head chunks from the first span no block covers (less the lead that seeds its
        // staleness markers). Compaction never deletes head chunks (they expire days
        // later), so one committed after the index read is still there, and read.
        let mut from = start_ms;
        while blocks
            .binary_search_by_key(&block_start(from), |b| b.start)
            .is_ok()
        {
            from = block_start(from) + BLOCK_MS;
        }
        let head_items = if from > end_ms {
            Vec::new() // blocks cover the whole span
        } else {
            kv.query_between(
                Table::Samples,
                PARTITION,
                &sk_time(from - LEAD_MS),
                &sk_time(end_ms.saturating_add(1)),
            )
            .await?
        };
        items_read += head_items.len();
        bytes_read += head_items
            .iter()
            .map(|i| i.data.as_ref().map_or(0, |d| d.len()))
            .sum::<usize>();
        let heads = chunks_of(head_items)?;
        blocks.retain(|b| b.end > start_ms);
        let covered = |ts: i64| {
            let s = block_start(ts);
            blocks.binary_search_by_key(&s, |b| b.start).is_ok()
        };
        let wanted = |l: &Labels| selectors.iter().any(|sel| matches(sel, l));
        // Upper bound from the indexes: when even it fits, no need to count as we go.
        let mut bound: u64 = 0;
        for b in &blocks {
            for e in &b.names {
                if selectors.iter().any(|sel| name_may_match(sel, &e.name)) {
                    bound += e.samples;
                }
            }
        }
        let mut out = SeriesMap::new();
        let mut count = 0usize;
        for b in &blocks {
            let fully_inside = b.start >= start_ms && b.end - 1 <= end_ms;
            for e in &b.names {
                if !selectors.iter().any(|sel| name_may_match(sel, &e.name)) {
                    continue;
                }
                let Some(series) = read_name(kv, b, e, wanted).await? else {
                    continue 'attempt;
                };
                bytes_read += e.bytes as usize;
                items_read += e.parts as usize;
                for s in series {
                    let samples: Vec<(i64, f64)> = if fully_inside {
                        s.samples
                    } else {
                        s.samples
                            .into_iter()
                            .filter(|(t, _)| *t >= start_ms && *t <= end_ms)
                            .collect()
                    };
                    count += samples.len();
                    if bound > max_samples as u64 && count > max_samples {
                        // Only reachable when the indexes' bound exceeded the limit.
                        return Err(TsdbError::TooManySamples { limit: max_samples });
                    }
                    if !samples.is_empty() {
                        out.entry(s.labels).or_default().extend(samples);
                    }
                }
            }
        }
        let from_heads = replay_heads(&heads, start_ms, end_ms.saturating_add(1), |ts, l| {
            !covered(ts) && wanted(l)
        });
        for (l, samples) in from_heads {
            count += samples.len();
            if count > max_samples {
                return Err(TsdbError::TooManySamples { limit: max_samples });
            }
            out.entry(l).or_default().extend(samples);
        }
        return Ok(Loaded {
            series: out,
            heads,
            bytes_read,
            items_read,
        });
    }
    Err(TsdbError::Contended {
        start: block_start(start_ms),
        attempts: ATTEMPTS,
    })
}

/// A selector that matches every series.
pub fn everything() -> Vec<Vec<Matcher>> {
    vec![Vec::new()]
}

/// `{__name__="name"}`.
pub fn by_name(name: &str) -> Vec<Matcher> {
    vec![Matcher::new(MatchOp::Equal, "__name__", name)]
}

/// What evaluating `expr` over `[start_ms, end_ms]` reads: each selector's matchers and
/// the span of samples it needs (ranges, offsets, `@`, subqueries and the instant
/// lookback included).
pub fn plan(
    expr: &Expr,
    start_ms: i64,
    end_ms: i64,
    lookback_ms: i64,
) -> Vec<(Vec<Matcher>, i64, i64)> {
    let mut out = Vec::new();
    walk(
        expr,
        start_ms,
        end_ms,
        (start_ms, end_ms),
        lookback_ms,
        &mut out,
    );
    out
}

fn dur_ms(d: &std::time::Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => dur_ms(d),
        Some(Offset::Neg(d)) => dur_ms(d).saturating_neg(),
    }
}

/// The evaluation times `[s, e]` a node sees after its `@` and offset.
fn shifted(
    at: &Option<AtModifier>,
    off: &Option<Offset>,
    s: i64,
    e: i64,
    q: (i64, i64),
) -> (i64, i64) {
    let (s, e) = match at {
        None => (s, e),
        Some(AtModifier::Start) => (q.0, q.0),
        Some(AtModifier::End) => (q.1, q.1),
        Some(AtModifier::At(t)) => {
            let ms = match t.duration_since(std::time::UNIX_EPOCH) {
                Ok(d) => dur_ms(&d),
                Err(e) => dur_ms(&e.duration()).saturating_neg(),
            };
            (ms, ms)
        }
    };
    let o = offset_ms(off);
    (s.saturating_sub(o), e.saturating_sub(o))
}

fn selector(vs: &VectorSelector) -> Vec<Matcher> {
    let mut m = vs.matchers.matchers.clone();
    if let Some(n) = &vs.name {
        m.push(Matcher::new(MatchOp::Equal, "__name__", n));
    }
    m
}

fn walk(
    e: &Expr,
    s: i64,
    end: i64,
    q: (i64, i64),
    lb: i64,
    out: &mut Vec<(Vec<Matcher>, i64, i64)>,
) {
    match e {
        Expr::VectorSelector(vs) => {
            let (a, b) = shifted(&vs.at, &vs.offset, s, end, q);
            out.push((selector(vs), a.saturating_sub(lb), b));
        }
        Expr::MatrixSelector(ms) => {
            let (a, b) = shifted(&ms.vs.at, &ms.vs.offset, s, end, q);
            out.push((selector(&ms.vs), a.saturating_sub(dur_ms(&ms.range)), b));
        }
        Expr::Subquery(sq) => {
            let (a, b) = shifted(&sq.at, &sq.offset, s, end, q);
            walk(&sq.expr, a.saturating_sub(dur_ms(&sq.range)), b, q, lb, out);
        }
        Expr::Aggregate(a) => {
            walk(&a.expr, s, end, q, lb, out);
            if let Some(p) = &a.param {
                walk(p, s, end, q, lb, out);
            }
        }
        Expr::Unary(u) => walk(&u.expr, s, end, q, lb, out),
        Expr::Binary(b) => {
            walk(&b.lhs, s, end, q, lb, out);
            walk(&b.rhs, s, end, q, lb, out);
        }
        Expr::Paren(p) => walk(&p.expr, s, end, q, lb, out),
        Expr::Call(c) => {
            for a in &c.args.args {
                walk(a, s, end, q, lb, out);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// Loads what evaluating `expr` over `[start_ms, end_ms]` needs ([`plan`], then one
/// [`load`] over the union of the spans).
pub async fn load_for(
    kv: &dyn Kv,
    expr: &Expr,
    start_ms: i64,
    end_ms: i64,
    lookback_ms: i64,
    max_samples: usize,
) -> Result<MemStorage, TsdbError> {
    let p = plan(expr, start_ms, end_ms, lookback_ms);
    if p.is_empty() {
        return Ok(MemStorage::new());
    }
    let from = p.iter().map(|x| x.1).min().unwrap_or(start_ms);
    let to = p.iter().map(|x| x.2).max().unwrap_or(end_ms);
    let sels: Vec<Vec<Matcher>> = p.into_iter().map(|x| x.0).collect();
    load(kv, &sels, from, to, max_samples).await
}
