//! Uptime rollups: hourly and daily summaries of the results runs, per target, so a
//! 30-day figure reads ~30 daily items, today's hourly items and the current hour's
//! runs, never a month of run items.
//!
//! Items (table `results`, version attribute `v` = [`ROLLUP_VERSION`], zstd JSON):
//! - pk `rollup#h`, sk = the hour's start (13-digit unix ms): one item per UTC hour
//!   holding every target probed in it;
//! - pk `rollup#d`, sk = the UTC day's start: the day's hourly summaries merged.
//!
//! An hour is *closed* [`GRACE_MS`] after it ends (a run is stored under its start
//! time once its probes finish). [`advance`] writes each closed hour and day once,
//! with `Cond::NotExists`: the summary is a pure function of the stored rows, encoded
//! deterministically (ordered maps, fixed zstd level), so recomputing a closed hour
//! yields the same item and a lost race with an overlapping invocation is harmless.
//! Rows stored for an hour after its rollup was written are not counted.

use crate::results::{check_version, decode_data, rows_of, DecodeError, ResultRow, RUNS_PK};
use argus_model::{Cond, Item, Kv, Millis, StoreError, Table};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const HOURS_PK: &str = "rollup#h";
pub const DAYS_PK: &str = "rollup#d";
pub const ROLLUP_VERSION: u64 = 1;
pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;
/// How long after its end an hour is closed.
pub const GRACE_MS: i64 = 5 * 60_000;
/// How far back [`advance`] looks for hours and days it has not written.
pub const BACKFILL_HOURS: i64 = 48;
pub const BACKFILL_DAYS: i64 = 7;
/// Daily items are kept this long (they are small); hourly ones as long as the runs.
pub const DAILY_RETENTION_S: i64 = 400 * 86_400;

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
        self.last = next.last.clone();
        if next.fail_log.is_some() {
            self.fail_log = next.fail_log.clone();
        }
        self
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

/// Chains optional summaries in time order.
pub fn chain<'a>(parts: impl IntoIterator<Item = &'a Summary>) -> Option<Summary> {
    let mut out: Option<Summary> = None;
    for p in parts {
        out = Some(match out {
            None => p.clone(),
            Some(s) => s.then(p),
        });
    }
    out
}

/// One hourly or daily rollup item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollup {
    pub start: Millis,
    pub span_ms: i64,
    pub targets: BTreeMap<String, Summary>,
}

impl Rollup {
    /// Summarises rows (any order; those outside the span are ignored).
    pub fn of_rows(start: Millis, span_ms: i64, rows: &[ResultRow]) -> Rollup {
        let mut by: BTreeMap<&str, Vec<&ResultRow>> = BTreeMap::new();
        for r in rows
            .iter()
            .filter(|r| r.at >= start && r.at < start + span_ms)
        {
            by.entry(r.target.as_str()).or_default().push(r);
        }
        let targets = by
            .into_iter()
            .filter_map(|(t, mut rs)| {
                rs.sort_by_key(|r| r.at);
                Summary::of_rows(rs).map(|s| (t.to_string(), s))
            })
            .collect();
        Rollup {
            start,
            span_ms,
            targets,
        }
    }

    /// Merges consecutive rollups (oldest first) into one spanning `start..+span_ms`.
    pub fn merge(start: Millis, span_ms: i64, parts: &[Rollup]) -> Rollup {
        let mut targets: BTreeMap<String, Summary> = BTreeMap::new();
        for p in parts {
            for (t, s) in &p.targets {
                match targets.remove(t) {
                    Some(prev) => targets.insert(t.clone(), prev.then(s)),
                    None => targets.insert(t.clone(), s.clone()),
                };
            }
        }
        Rollup {
            start,
            span_ms,
            targets,
        }
    }

    pub fn to_item(&self, pk: &str, expires_at: i64) -> Item {
        let json = serde_json::to_vec(self).expect("rollup serializes");
        let mut item = Item::new(pk, format!("{:013}", self.start)).with_attr("v", ROLLUP_VERSION);
        item.data = Some(zstd::encode_all(json.as_slice(), 9).expect("zstd to memory"));
        item.expires_at = Some(expires_at);
        item
    }

    /// The item's rollup with only `target`'s summary decoded (the others skipped).
    pub fn from_item_for(item: &Item, target: &str) -> Result<Rollup, DecodeError> {
        #[derive(Deserialize)]
        struct Raw<'a> {
            start: Millis,
            span_ms: i64,
            #[serde(borrow)]
            targets: BTreeMap<std::borrow::Cow<'a, str>, &'a serde_json::value::RawValue>,
        }
        check_version(item, ROLLUP_VERSION)?;
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
        })
    }

    pub fn from_item(item: &Item) -> Result<Rollup, DecodeError> {
        check_version(item, ROLLUP_VERSION)?;
        let r: Rollup = decode_data(item)?;
        if format!("{:013}", r.start) != item.sk {
            return Err(DecodeError::Corrupt {
                key: format!("{}/{}", item.pk, item.sk),
                message: format!("holds the rollup of {} instead", r.start),
            });
        }
        Ok(r)
    }
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
    hourly_retention_s: i64,
) -> Result<RollupReport, StoreError> {
    let mut report = RollupReport::default();
    let closed = now - GRACE_MS;
    let last_hour = floor(closed, HOUR_MS) - HOUR_MS;
    if kv
        .get(Table::Results, HOURS_PK, &format!("{last_hour:013}"))
        .await?
        .is_none()
    {
        write_hours(kv, last_hour, hourly_retention_s, &mut report).await?;
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
    retention_s: i64,
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
            let r = Rollup::of_rows(h, HOUR_MS, &rows);
            let exp = (h + HOUR_MS).div_euclid(1000) + retention_s;
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
            let exp = (d + DAY_MS).div_euclid(1000) + DAILY_RETENTION_S;
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
