//! Uptime rollups: hourly and daily summaries of the results runs, per target, so a
//! 30-day figure reads ~30 daily items, today's hourly items and the current hour's
//! runs, never a month of run items.
//!
//! Items (table `results`, version attribute `v` = [`ROLLUP_VERSION`]):
//! - pk `rollup#h`, sk = the hour's start (13-digit unix ms): one item per UTC hour
//!   holding every target probed in it;
//! - pk `rollup#d`, sk = the UTC day's start: the day's hourly summaries merged.
//!
//! Version 2 payload (written): a per-target layout, so a target page inflates one
//! block instead of every target's summary:
//! `u32 LE n` · `zstd(JSON header)` (n bytes) · block 0 · block 1 · ..., where the
//! header is `{start, span_ms, blocks: [{first, len}]}` (each block's first target id
//! and compressed length, in target order) and each block is `zstd(JSON {t, l})` of
//! up to [`BLOCK_TARGETS`] targets: `t` their overall summaries, `l` their
//! per-location ones (multi-location runs only). Version 1 (one zstd JSON document
//! `{start, span_ms, targets}`) is still read, migrated in memory; it is never
//! rewritten (an hour's item is written once).
//!
//! With `locations:`, each target gets one summary per location (`l`, never mixed)
//! and an overall one (`t`) of the *quorum view*: the checks from every location
//! within a minute of each other (each location once) form a round, down when at least the quorum of the locations that checked
//! in it failed (default a majority), as commercial monitors confirm an outage from
//! several locations before counting it. A round with a single location reporting
//! counts that location's result, so silence never reads as up.
//!
//! An hour is *closed* [`GRACE_MS`] after it ends (a run is stored under its start
//! time once its probes finish). [`advance`] writes each closed hour and day once,
//! with `Cond::NotExists`: the summary is a pure function of the stored rows, encoded
//! deterministically (ordered maps, fixed zstd level), so recomputing a closed hour
//! yields the same item and a lost race with an overlapping invocation is harmless.
//! Rows stored for an hour after its rollup was written are not counted.

use crate::results::{check_version, decode_data, rows_of, DecodeError, ResultRow, RUNS_PK};
use argus_model::{Cond, Item, Kv, Millis, StoreError, Table, UnixSecs};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

pub const HOURS_PK: &str = "rollup#h";
pub const DAYS_PK: &str = "rollup#d";
pub const ROLLUP_VERSION: u64 = 2;
/// Targets per block of a version 2 payload: a target page inflates one block (1/32
/// of a 1,000-target item); larger blocks compress better.
pub const BLOCK_TARGETS: usize = 32;
/// Rows this close in time (from different locations) make one quorum round.
pub const ROUND_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;
/// How long after its end an hour is closed.
pub const GRACE_MS: i64 = 5 * 60_000;
/// How far back [`advance`] looks for hours and days it has not written.
pub const BACKFILL_HOURS: i64 = 48;
pub const BACKFILL_DAYS: i64 = 7;
/// Daily items are kept this long (they are small); hourly ones as long as the runs.
pub const DAILY_RETENTION: Duration = Duration::from_secs(400 * 86_400);

/// One failed stretch: from the first failed check to the first successful one after
/// it (`to: None` while it lasts).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outage {
    pub from: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Millis>,
    /// The first error seen in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One target over a span of time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// Checks and successful checks.
    pub n: u32,
    pub up: u32,
    pub dur_ms: u64,
    /// Sum of each phase (ms) over the `ph_n` checks that had phases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ph: Option<[u64; 5]>,
    #[serde(default)]
    pub ph_n: u32,
    pub first_at: Millis,
    pub first_ok: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outages: Vec<Outage>,
    /// The span's last check (without its log).
    pub last: ResultRow,
    /// The span's last failed check that kept a debug log: its time and log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_log: Option<(Millis, Vec<String>)>,
}

impl Summary {
    /// Summary of one target's rows, oldest first (`None` for no rows).
    pub fn of_rows<'a>(rows: impl IntoIterator<Item = &'a ResultRow>) -> Option<Summary> {
        let mut out: Option<Summary> = None;
        for r in rows {
            let one = Summary::one(r);
            out = Some(match out {
                None => one,
                Some(s) => s.then(&one),
            });
        }
        out
    }

    fn one(r: &ResultRow) -> Summary {
        Summary {
            n: 1,
            up: r.success as u32,
            dur_ms: r.duration_ms,
            ph: r.phases_ms.map(|p| p.map(u64::from)),
            ph_n: r.phases_ms.is_some() as u32,
            first_at: r.at,
            first_ok: r.success,
            outages: if r.success {
                Vec::new()
            } else {
                vec![Outage {
                    from: r.at,
                    to: None,
                    error: r.error.clone(),
                }]
            },
            last: ResultRow {
                log: None,
                ..r.clone()
            },
            fail_log: r.log.clone().filter(|_| !r.success).map(|l| (r.at, l)),
        }
    }

    /// This span followed by `next` (which starts after it ends).
    pub fn then(mut self, next: &Summary) -> Summary {
        self.add_counts(next);
        self.last = next.last.clone();
        if next.fail_log.is_some() {
            self.fail_log = next.fail_log.clone();
        }
        self
    }

    /// Adds `next`'s counts, durations and phases, and its outages (an outage open at
    /// this span's end continues into `next`'s or closes at its first check): what
    /// [`Summary::then`] and [`chain`] share.
    fn add_counts(&mut self, next: &Summary) {
        self.n += next.n;
        self.up += next.up;
        self.dur_ms += next.dur_ms;
        self.ph = match (self.ph, next.ph) {
            (Some(a), Some(b)) => Some(std::array::from_fn(|i| a[i] + b[i])),
            (a, b) => a.or(b),
        };
        self.ph_n += next.ph_n;
        let mut rest = next.outages.as_slice();
        if let Some(open) = self.outages.last_mut().filter(|o| o.to.is_none()) {
            if next.first_ok {
                open.to = Some(next.first_at);
            } else if let Some((cont, tail)) = rest.split_first() {
                open.to = cont.to;
                rest = tail;
            }
        }
        self.outages.extend(rest.iter().cloned());
    }

    pub fn uptime(&self) -> Option<f64> {
        (self.n > 0).then(|| self.up as f64 / self.n as f64)
    }

    /// Mean phase durations (ms), when the checks had phases.
    pub fn mean_phases_ms(&self) -> Option<[f64; 5]> {
        let ph = self.ph?;
        (self.ph_n > 0).then(|| ph.map(|v| v as f64 / self.ph_n as f64))
    }

    pub fn mean_duration_ms(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.dur_ms as f64 / self.n as f64
        }
    }
}

/// Chains summaries in time order (as folding [`Summary::then`], without cloning
/// every part's last check and log on the way).
pub fn chain<'a>(parts: impl IntoIterator<Item = &'a Summary>) -> Option<Summary> {
    let mut it = parts.into_iter();
    let first = it.next()?;
    let mut out = Summary {
        n: first.n,
        up: first.up,
        dur_ms: first.dur_ms,
        ph: first.ph,
        ph_n: first.ph_n,
        first_at: first.first_at,
        first_ok: first.first_ok,
        outages: first.outages.clone(),
        last: ResultRow::default(),
        fail_log: None,
    };
    let mut last = first;
    let mut log = first.fail_log.as_ref();
    for next in it {
        out.add_counts(next);
        if next.fail_log.is_some() {
            log = next.fail_log.as_ref();
        }
        last = next;
    }
    out.last = last.last.clone();
    out.fail_log = log.cloned();
    Some(out)
}

/// The counts and durations of summaries in time order, and the last one's check:
/// [`chain`] without outages and failure logs (left empty), for pages that show
/// neither.
pub fn tally<'a>(parts: impl IntoIterator<Item = &'a Summary>) -> Option<Summary> {
    let mut it = parts.into_iter();
    let first = it.next()?;
    let mut out = Summary {
        n: first.n,
        up: first.up,
        dur_ms: first.dur_ms,
        ph: first.ph,
        ph_n: first.ph_n,
        first_at: first.first_at,
        first_ok: first.first_ok,
        outages: Vec::new(),
        last: ResultRow::default(),
        fail_log: None,
    };
    let mut last = first;
    for next in it {
        out.n += next.n;
        out.up += next.up;
        out.dur_ms += next.dur_ms;
        out.ph = match (out.ph, next.ph) {
            (Some(a), Some(b)) => Some(std::array::from_fn(|i| a[i] + b[i])),
            (a, b) => a.or(b),
        };
        out.ph_n += next.ph_n;
        last = next;
    }
    out.last = last.last.clone();
    Some(out)
}

/// One hourly or daily rollup item.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollup {
    pub start: Millis,
    pub span_ms: i64,
    /// Each target's summary: its rows, or with several locations the quorum view.
    pub targets: BTreeMap<String, Summary>,
    /// Per target, per location (only for rows that name a location).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub locations: BTreeMap<String, BTreeMap<String, Summary>>,
}

/// The version 1 payload (one JSON document, no locations).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RollupV1 {
    start: Millis,
    span_ms: i64,
    targets: BTreeMap<String, Summary>,
}

/// Version 2 header: where each block of targets is.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    start: Millis,
    span_ms: i64,
    blocks: Vec<BlockRef>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BlockRef {
    /// The block's first target id (blocks are in target order).
    first: String,
    /// Its compressed length in bytes.
    len: u32,
}

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Block {
    t: BTreeMap<String, Summary>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    l: BTreeMap<String, BTreeMap<String, Summary>>,
}

/// The quorum view of one target's rows from several locations (sorted by time):
/// one row per round (the checks within [`ROUND_MS`] of its first, each location
/// at most once), failed when at least `quorum` (capped at the
/// locations that checked in the round) failed. The row kept is the round's first
/// failure when it failed, else its first success (its location named).
fn quorum_rows(rows: &[&ResultRow], quorum: Option<usize>) -> Vec<ResultRow> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < rows.len() {
        // A round: the rows from its first one on, within ROUND_MS of it, until a
        // location checks a second time.
        let mut locs: Vec<&str> = Vec::new();
        let mut j = i;
        while j < rows.len() && rows[j].at - rows[i].at < ROUND_MS {
            let l = rows[j].location.as_deref().unwrap_or("");
            if locs.contains(&l) {
                break;
            }
            locs.push(l);
            j += 1;
        }
        let part = &rows[i..j];
        let reporting = locs.len().max(1);
        let failing = part.iter().filter(|r| !r.success).count();
        let need = quorum.unwrap_or(reporting / 2 + 1).clamp(1, reporting);
        let down = failing >= need;
        let pick = part
            .iter()
            .find(|r| r.success != down)
            .copied()
            .unwrap_or(part[0]);
        out.push(ResultRow {
            at: part[0].at,
            ..pick.clone()
        });
        i = j;
    }
    out
}

impl Rollup {
    /// Summarises rows (any order; those outside the span are ignored), with the
    /// default quorum (a majority of the locations checking in a round).
    pub fn of_rows(start: Millis, span_ms: i64, rows: &[ResultRow]) -> Rollup {
        Rollup::of_rows_quorum(start, span_ms, rows, None)
    }

    /// [`Rollup::of_rows`] with `quorum` failing locations making a round down.
    pub fn of_rows_quorum(
        start: Millis,
        span_ms: i64,
        rows: &[ResultRow],
        quorum: Option<usize>,
    ) -> Rollup {
        let mut by: BTreeMap<&str, Vec<&ResultRow>> = BTreeMap::new();
        for r in rows
            .iter()
            .filter(|r| r.at >= start && r.at < start + span_ms)
        {
            by.entry(r.target.as_str()).or_default().push(r);
        }
        let mut targets = BTreeMap::new();
        let mut locations = BTreeMap::new();
        for (t, mut rs) in by {
            rs.sort_by(|a, b| (a.at, &a.location).cmp(&(b.at, &b.location)));
            if rs.iter().any(|r| r.location.is_some()) {
                let mut per: BTreeMap<String, Vec<&ResultRow>> = BTreeMap::new();
                for r in &rs {
                    per.entry(r.location.clone().unwrap_or_default())
                        .or_default()
                        .push(r);
                }
                let per: BTreeMap<String, Summary> = per
                    .into_iter()
                    .filter_map(|(l, rs)| Summary::of_rows(rs).map(|s| (l, s)))
                    .collect();
                locations.insert(t.to_string(), per);
                if let Some(s) = Summary::of_rows(&quorum_rows(&rs, quorum)) {
                    targets.insert(t.to_string(), s);
                }
            } else if let Some(s) = Summary::of_rows(rs) {
                targets.insert(t.to_string(), s);
            }
        }
        Rollup {
            start,
            span_ms,
            targets,
            locations,
        }
    }

    /// Every target id in the rollup (overall or per location), in order.
    fn ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self
            .targets
            .keys()
            .chain(self.locations.keys())
            .map(String::as_str)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Merges consecutive rollups (oldest first) into one spanning `start..+span_ms`.
    pub fn merge(start: Millis, span_ms: i64, parts: &[Rollup]) -> Rollup {
        fn add(into: &mut BTreeMap<String, Summary>, from: &BTreeMap<String, Summary>) {
            for (t, s) in from {
                match into.remove(t) {
                    Some(prev) => into.insert(t.clone(), prev.then(s)),
                    None => into.insert(t.clone(), s.clone()),
                };
            }
        }
        let mut targets: BTreeMap<String, Summary> = BTreeMap::new();
        let mut locations: BTreeMap<String, BTreeMap<String, Summary>> = BTreeMap::new();
        for p in parts {
            add(&mut targets, &p.targets);
            for (t, per) in &p.locations {
                add(locations.entry(t.clone()).or_default(), per);
            }
        }
        Rollup {
            start,
            span_ms,
            targets,
            locations,
        }
    }

    /// The version 2 item (see the module docs for the layout).
    pub fn to_item(&self, pk: &str, expires_at: UnixSecs) -> Item {
        let ids = self.ids();
        let mut blocks = Vec::new();
        let mut body = Vec::new();
        for chunk in ids.chunks(BLOCK_TARGETS) {
            let mut b = Block::default();
            for id in chunk {
                if let Some(s) = self.targets.get(*id) {
                    b.t.insert(id.to_string(), s.clone());
                }
                if let Some(l) = self.locations.get(*id) {
                    b.l.insert(id.to_string(), l.clone());
                }
            }
            let json = serde_json::to_vec(&b).expect("rollup block serializes");
            let z = zstd::encode_all(json.as_slice(), 9).expect("zstd to memory");
            blocks.push(BlockRef {
                first: chunk[0].to_string(),
                len: z.len() as u32,
            });
            body.extend_from_slice(&z);
        }
        let header = Header {
            start: self.start,
            span_ms: self.span_ms,
            blocks,
        };
        let json = serde_json::to_vec(&header).expect("rollup header serializes");
        let head = zstd::encode_all(json.as_slice(), 3).expect("zstd to memory");
        let mut data = Vec::with_capacity(4 + head.len() + body.len());
        data.extend_from_slice(&(head.len() as u32).to_le_bytes());
        data.extend_from_slice(&head);
        data.extend_from_slice(&body);
        let mut item = Item::new(pk, format!("{:013}", self.start)).with_attr("v", ROLLUP_VERSION);
        item.data = Some(data);
        item.expires_at = Some(expires_at);
        item
    }

    /// A version 2 payload's header and the byte range of each block, checked.
    fn layout(item: &Item) -> Result<(Header, Vec<std::ops::Range<usize>>), DecodeError> {
        let bad = |m: &str| crate::results::corrupt(item, m);
        let data = item
            .data
            .as_deref()
            .ok_or_else(|| bad("no data attribute"))?;
        let n = data
            .get(..4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(|| bad("payload shorter than its header length"))?;
        let head = data
            .get(4..4 + n)
            .ok_or_else(|| bad("header runs past the payload"))?;
        let json = zstd::decode_all(head)
            .map_err(|e| crate::results::corrupt(item, format!("zstd: {e}")))?;
        let h: Header =
            serde_json::from_slice(&json).map_err(|e| crate::results::corrupt(item, e))?;
        check_start(item, h.start)?;
        let mut at = 4 + n;
        let mut ranges = Vec::with_capacity(h.blocks.len());
        for (i, b) in h.blocks.iter().enumerate() {
            if i > 0 && h.blocks[i - 1].first >= b.first {
                return Err(bad("blocks are not in target order"));
            }
            let end = at + b.len as usize;
            if end > data.len() {
                return Err(bad("a block runs past the payload"));
            }
            ranges.push(at..end);
            at = end;
        }
        if at != data.len() {
            return Err(bad("bytes after the last block"));
        }
        Ok((h, ranges))
    }

    fn block(item: &Item, range: std::ops::Range<usize>) -> Result<Block, DecodeError> {
        let data = item.data.as_deref().unwrap_or_default();
        let json = zstd::decode_all(&data[range])
            .map_err(|e| crate::results::corrupt(item, format!("zstd: {e}")))?;
        serde_json::from_slice(&json).map_err(|e| crate::results::corrupt(item, e))
    }

    /// The item's rollup with only `target`'s summaries decoded: one block of a
    /// version 2 item; a version 1 item is inflated and the others skipped.
    pub fn from_item_for(item: &Item, target: &str) -> Result<Rollup, DecodeError> {
        if check_version(item, ROLLUP_VERSION)? == 2 {
            let (h, ranges) = Rollup::layout(item)?;
            let mut r = Rollup {
                start: h.start,
                span_ms: h.span_ms,
                ..Rollup::default()
            };
            let i = h.blocks.partition_point(|b| b.first.as_str() <= target);
            if i > 0 {
                let mut b = Rollup::block(item, ranges[i - 1].clone())?;
                if let Some(s) = b.t.remove(target) {
                    r.targets.insert(target.to_string(), s);
                }
                if let Some(l) = b.l.remove(target) {
                    r.locations.insert(target.to_string(), l);
                }
            }
            return Ok(r);
        }
        #[derive(Deserialize)]
        struct Raw<'a> {
            start: Millis,
            span_ms: i64,
            #[serde(borrow)]
            targets: BTreeMap<std::borrow::Cow<'a, str>, &'a serde_json::value::RawValue>,
        }
        let raw = crate::results::inflate(item)?;
        let r: Raw = serde_json::from_slice(&raw).map_err(|e| crate::results::corrupt(item, e))?;
        if format!("{:013}", r.start) != item.sk {
            return Err(crate::results::corrupt(
                item,
                format!("holds the rollup of {} instead", r.start),
            ));
        }
        let mut targets = BTreeMap::new();
        if let Some(v) = r.targets.get(target) {
            let s: Summary =
                serde_json::from_str(v.get()).map_err(|e| crate::results::corrupt(item, e))?;
            targets.insert(target.to_string(), s);
        }
        Ok(Rollup {
            start: r.start,
            span_ms: r.span_ms,
            targets,
            locations: BTreeMap::new(),
        })
    }

    /// The whole rollup of a version 1 or 2 item.
    pub fn from_item(item: &Item) -> Result<Rollup, DecodeError> {
        if check_version(item, ROLLUP_VERSION)? == 2 {
            let (h, ranges) = Rollup::layout(item)?;
            let mut r = Rollup {
                start: h.start,
                span_ms: h.span_ms,
                ..Rollup::default()
            };
            for range in ranges {
                let b = Rollup::block(item, range)?;
                r.targets.extend(b.t);
                r.locations.extend(b.l);
            }
            return Ok(r);
        }
        let r: RollupV1 = decode_data(item)?;
        check_start(item, r.start)?;
        Ok(Rollup {
            start: r.start,
            span_ms: r.span_ms,
            targets: r.targets,
            locations: BTreeMap::new(),
        })
    }

    /// A version 1 item of this rollup (no locations), as builds before version 2
    /// wrote it: for migration tests and the benchmark's comparison.
    pub fn to_item_v1(&self, pk: &str, expires_at: UnixSecs) -> Item {
        #[derive(Serialize)]
        struct V1<'a> {
            start: Millis,
            span_ms: i64,
            targets: &'a BTreeMap<String, Summary>,
        }
        let json = serde_json::to_vec(&V1 {
            start: self.start,
            span_ms: self.span_ms,
            targets: &self.targets,
        })
        .expect("rollup serializes");
        let mut item = Item::new(pk, format!("{:013}", self.start)).with_attr("v", 1);
        item.data = Some(zstd::encode_all(json.as_slice(), 9).expect("zstd to memory"));
        item.expires_at = Some(expires_at);
        item
    }
}

fn check_start(item: &Item, start: Millis) -> Result<(), DecodeError> {
    if format!("{start:013}") != item.sk {
        return Err(crate::results::corrupt(
            item,
            format!("holds the rollup of {start} instead"),
        ));
    }
    Ok(())
}

/// What one [`advance`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RollupReport {
    pub hours_written: usize,
    pub days_written: usize,
    /// Items another invocation wrote first.
    pub already_written: usize,
    /// Stored items that could not be read (named; they were not replaced).
    pub unreadable: Vec<String>,
}

fn floor(t: Millis, span: i64) -> Millis {
    t.div_euclid(span) * span
}

/// Writes the rollups of the closed hours and days not written yet (looking back
/// [`BACKFILL_HOURS`] / [`BACKFILL_DAYS`]). Cheap when there is nothing to do: one
/// get for the last closed hour and one for the last closed day.
pub async fn advance(
    kv: &dyn Kv,
    now: Millis,
    hourly_retention: Duration,
) -> Result<RollupReport, StoreError> {
    advance_with(kv, now, hourly_retention, None).await
}

/// [`advance`] with the configured quorum (failing locations that make a round
/// down; `None`: a majority of those that checked).
pub async fn advance_with(
    kv: &dyn Kv,
    now: Millis,
    hourly_retention: Duration,
    quorum: Option<usize>,
) -> Result<RollupReport, StoreError> {
    let mut report = RollupReport::default();
    let closed = now - GRACE_MS;
    let last_hour = floor(closed, HOUR_MS) - HOUR_MS;
    if kv
        .get(Table::Results, HOURS_PK, &format!("{last_hour:013}"))
        .await?
        .is_none()
    {
        write_hours(kv, last_hour, hourly_retention, quorum, &mut report).await?;
    }
    let last_day = floor(closed, DAY_MS) - DAY_MS;
    if kv
        .get(Table::Results, DAYS_PK, &format!("{last_day:013}"))
        .await?
        .is_none()
    {
        write_days(kv, last_day, &mut report).await?;
    }
    Ok(report)
}

async fn put_once(kv: &dyn Kv, item: Item, report: &mut RollupReport) -> Result<bool, StoreError> {
    match kv.put(Table::Results, item, Cond::NotExists).await {
        Ok(_) => Ok(true),
        Err(StoreError::Conflict(_)) => {
            report.already_written += 1;
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

async fn existing(
    kv: &dyn Kv,
    pk: &str,
    from: Millis,
    report: &mut RollupReport,
) -> Result<BTreeMap<Millis, Option<Rollup>>, StoreError> {
    let mut out = BTreeMap::new();
    for item in kv
        .query(Table::Results, pk, Some(&format!("{from:013}")))
        .await?
    {
        let Ok(start) = item.sk.parse::<Millis>() else {
            report
                .unreadable
                .push(format!("{pk}/{}: bad sort key", item.sk));
            continue;
        };
        match Rollup::from_item(&item) {
            Ok(r) => out.insert(start, Some(r)),
            Err(e) => {
                // Present but unreadable: reported, and never overwritten.
                report.unreadable.push(e.to_string());
                out.insert(start, None)
            }
        };
    }
    Ok(out)
}

async fn write_hours(
    kv: &dyn Kv,
    last_hour: Millis,
    retention: Duration,
    quorum: Option<usize>,
    report: &mut RollupReport,
) -> Result<(), StoreError> {
    let from = last_hour - (BACKFILL_HOURS - 1) * HOUR_MS;
    let have = existing(kv, HOURS_PK, from, report).await?;
    let Some(first_missing) = (0..BACKFILL_HOURS)
        .map(|i| from + i * HOUR_MS)
        .find(|h| !have.contains_key(h))
    else {
        return Ok(());
    };
    let mut rows: Vec<ResultRow> = Vec::new();
    for item in kv
        .query(
            Table::Results,
            RUNS_PK,
            Some(&format!("{first_missing:013}")),
        )
        .await?
    {
        match rows_of(&item) {
            Ok(r) => rows.extend(r.into_iter().filter(|r| r.at < last_hour + HOUR_MS)),
            Err(e) => report.unreadable.push(e.to_string()),
        }
    }
    let Some(first_row) = rows.iter().map(|r| r.at).min() else {
        return Ok(());
    };
    let mut h = floor(first_row, HOUR_MS).max(first_missing);
    while h <= last_hour {
        if !have.contains_key(&h) {
            let r = Rollup::of_rows_quorum(h, HOUR_MS, &rows, quorum);
            let exp = UnixSecs::floor(h + HOUR_MS).plus(retention);
            if put_once(kv, r.to_item(HOURS_PK, exp), report).await? {
                report.hours_written += 1;
            }
        }
        h += HOUR_MS;
    }
    Ok(())
}

async fn write_days(
    kv: &dyn Kv,
    last_day: Millis,
    report: &mut RollupReport,
) -> Result<(), StoreError> {
    let from = last_day - (BACKFILL_DAYS - 1) * DAY_MS;
    let have = existing(kv, DAYS_PK, from, report).await?;
    let hours = existing(kv, HOURS_PK, from, report).await?;
    let mut d = from;
    while d <= last_day {
        let parts: Vec<Rollup> = hours
            .range(d..d + DAY_MS)
            .filter_map(|(_, r)| r.clone())
            .collect();
        if !have.contains_key(&d) && !parts.is_empty() {
            let r = Rollup::merge(d, DAY_MS, &parts);
            let exp = UnixSecs::floor(d + DAY_MS).plus(DAILY_RETENTION);
            if put_once(kv, r.to_item(DAYS_PK, exp), report).await? {
                report.days_written += 1;
            }
        }
        d += DAY_MS;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t: &str, at: Millis, ok: bool) -> ResultRow {
        ResultRow {
            target: t.into(),
            at,
            success: ok,
            duration_ms: 10,
            error: (!ok).then(|| format!("down at {at}")),
            ..Default::default()
        }
    }

    #[test]
    fn outages_are_stitched_across_spans() {
        // up, down, down | down, up | up, down
        let a =
            Summary::of_rows(&[row("t", 0, true), row("t", 1, false), row("t", 2, false)]).unwrap();
        let b = Summary::of_rows(&[row("t", 3, false), row("t", 4, true)]).unwrap();
        let c = Summary::of_rows(&[row("t", 5, true), row("t", 6, false)]).unwrap();
        let all = chain([&a, &b, &c]).unwrap();
        let flat = Summary::of_rows(&[
            row("t", 0, true),
            row("t", 1, false),
            row("t", 2, false),
            row("t", 3, false),
            row("t", 4, true),
            row("t", 5, true),
            row("t", 6, false),
        ])
        .unwrap();
        assert_eq!(all, flat);
        assert_eq!(all.n, 7);
        assert_eq!(all.up, 3);
        assert_eq!(
            all.outages,
            vec![
                Outage {
                    from: 1,
                    to: Some(4),
                    error: Some("down at 1".into())
                },
                Outage {
                    from: 6,
                    to: None,
                    error: Some("down at 6".into())
                }
            ]
        );
        assert!(all.last.at == 6 && !all.last.success);
    }
}
