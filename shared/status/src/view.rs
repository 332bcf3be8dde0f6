//! What the pages show, read from the store through the `Kv` port: targets, uptime
//! windows from the rollups (plus the runs not rolled up yet), rule group state and the
//! notifier's alerts and silences.

use crate::results::{rows_of, ResultRow, RUNS_PK};
use crate::rollup::{chain, Rollup, Summary, DAYS_PK, DAY_MS, HOURS_PK, HOUR_MS};
use argus_model::{Item, Kv, Millis, StoreError, Table, Target};
use argus_notify::alert::StoredAlert;
use argus_notify::silence::Silence;
use std::collections::BTreeMap;

/// Partition of the evaluator's rule group state (table `alerts`, sk `<file>/<group>`);
/// the evaluator (argus-app) writes it under this name.
pub const RULES_PK: &str = "rules";

fn floor(t: Millis, span: i64) -> Millis {
    t.div_euclid(span) * span
}

/// The summaries the pages need: daily ones for the last 29 closed days, hourly ones
/// since the earlier of today's start and 23 hours before the current hour, and the
/// runs after the newest hourly item, bucketed by hour.
pub struct History {
    pub now: Millis,
    pub days: BTreeMap<Millis, Rollup>,
    pub hours: BTreeMap<Millis, Rollup>,
    /// Items that could not be read (named).
    pub unreadable: Vec<String>,
    /// How many items were read (rollups and runs), for the page footer.
    pub items_read: usize,
}

/// Uptime windows: the current UTC hour and the 23 before it; the current UTC day
/// and the 6 (29) before it.
pub const WINDOWS: [&str; 3] = ["24h", "7d", "30d"];

#[derive(Clone, Debug, Default)]
pub struct TargetStats {
    pub w24: Option<Summary>,
    pub w7d: Option<Summary>,
    pub w30d: Option<Summary>,
    /// The 24 hours of the 24 h window, oldest first.
    pub hourly: Vec<(Millis, Option<Summary>)>,
}

impl TargetStats {
    pub fn window(&self, w: &str) -> Option<&Summary> {
        match w {
            "24h" => self.w24.as_ref(),
            "7d" => self.w7d.as_ref(),
            "30d" => self.w30d.as_ref(),
            _ => None,
        }
    }

    /// The newest check (the 30-day window's last).
    pub fn last(&self) -> Option<&ResultRow> {
        self.w30d.as_ref().map(|s| &s.last)
    }
}

impl History {
    /// Every target's history.
    pub async fn load(kv: &dyn Kv, now: Millis) -> Result<History, StoreError> {
        History::load_for(kv, now, None).await
    }

    /// The history of `only` (every target's when `None`): a target page and a badge
    /// decode one target's summaries and rows and skip the others.
    pub async fn load_for(
        kv: &dyn Kv,
        now: Millis,
        only: Option<&str>,
    ) -> Result<History, StoreError> {
        let day0 = floor(now, DAY_MS);
        let hour0 = floor(now, HOUR_MS);
        let mut h = History {
            now,
            days: BTreeMap::new(),
            hours: BTreeMap::new(),
            unreadable: Vec::new(),
            items_read: 0,
        };
        let dfrom = day0 - 29 * DAY_MS;
        for item in query(kv, DAYS_PK, dfrom).await? {
            h.items_read += 1;
            if let Some(r) = h.rollup(&item, only).filter(|r| r.start < day0) {
                h.days.insert(r.start, r);
            }
        }
        let hfrom = day0.min(hour0 - 23 * HOUR_MS);
        for item in query(kv, HOURS_PK, hfrom).await? {
            h.items_read += 1;
            if let Some(r) = h.rollup(&item, only).filter(|r| r.start < hour0 + HOUR_MS) {
                h.hours.insert(r.start, r);
            }
        }
        let runs_from = h
            .hours
            .keys()
            .next_back()
            .map_or(hfrom, |s| s + HOUR_MS)
            .max(hfrom);
        let mut rows: Vec<ResultRow> = Vec::new();
        for item in query(kv, RUNS_PK, runs_from).await? {
            h.items_read += 1;
            let decoded = match only {
                Some(id) => crate::results::rows_of_target(&item, id),
                None => rows_of(&item),
            };
            match decoded {
                Ok(r) => rows.extend(r.into_iter().filter(|r| r.at <= now)),
                Err(e) => h.unreadable.push(e.to_string()),
            }
        }
        let mut hr = floor(runs_from, HOUR_MS);
        while hr <= hour0 {
            let r = Rollup::of_rows(hr, HOUR_MS, &rows);
            if !r.targets.is_empty() {
                h.hours.insert(hr, r);
            }
            hr += HOUR_MS;
        }
        Ok(h)
    }

    fn rollup(&mut self, item: &Item, only: Option<&str>) -> Option<Rollup> {
        let r = match only {
            Some(id) => Rollup::from_item_for(item, id),
            None => Rollup::from_item(item),
        };
        match r {
            Ok(r) => Some(r),
            Err(e) => {
                self.unreadable.push(e.to_string());
                None
            }
        }
    }

    pub fn stats(&self, id: &str) -> TargetStats {
        let day0 = floor(self.now, DAY_MS);
        let hour0 = floor(self.now, HOUR_MS);
        let hour_of = |start: Millis| self.hours.get(&start).and_then(|r| r.targets.get(id));
        let hours_in = |from: Millis, to: Millis| {
            chain(
                self.hours
                    .range(from..to)
                    .filter_map(|(_, r)| r.targets.get(id)),
            )
        };
        let today = hours_in(day0, hour0 + HOUR_MS);
        let days = |n: i64| {
            let mut out: Option<Summary> = None;
            let mut add = |s: &Summary| {
                out = Some(match out.take() {
                    None => s.clone(),
                    Some(acc) => acc.then(s),
                })
            };
            for d in (1..n).rev().map(|i| day0 - i * DAY_MS) {
                match self.days.get(&d) {
                    Some(r) => r.targets.get(id).into_iter().for_each(&mut add),
                    // Not rolled up (yet): the day's hours, when still read.
                    None => hours_in(d, d + DAY_MS).iter().for_each(&mut add),
                }
            }
            today.iter().for_each(&mut add);
            out
        };
        let hourly: Vec<(Millis, Option<Summary>)> = (0..24)
            .map(|i| {
                let s = hour0 - (23 - i) * HOUR_MS;
                (s, hour_of(s).cloned())
            })
            .collect();
        TargetStats {
            w24: chain(hourly.iter().filter_map(|(_, s)| s.as_ref())),
            w7d: days(7),
            w30d: days(30),
            hourly,
        }
    }
}

async fn query(kv: &dyn Kv, pk: &str, from: Millis) -> Result<Vec<Item>, StoreError> {
    kv.query(Table::Results, pk, Some(&format!("{from:013}")))
        .await
}

/// Every target item (bad ones named beside the good ones).
pub async fn targets(kv: &dyn Kv) -> Result<(Vec<Target>, Vec<String>), StoreError> {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for item in kv.scan(Table::Targets).await? {
        match Target::from_item(&item) {
            Ok(t) => good.push(t),
            Err(e) => bad.push(e.to_string()),
        }
    }
    good.sort_by(|a, b| a.id.cmp(&b.id));
    Ok((good, bad))
}

fn from_attrs<T: for<'de> serde::Deserialize<'de>>(item: &Item) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::Object(item.attrs.clone()))
        .map_err(|e| format!("{}/{}: {e}", item.pk, item.sk))
}

/// The notifier's alerts still active at `now` (`ends_at` in the future).
pub async fn firing_alerts(
    kv: &dyn Kv,
    now: Millis,
    bad: &mut Vec<String>,
) -> Result<Vec<StoredAlert>, StoreError> {
    let mut out = Vec::new();
    for it in kv
        .query(Table::Alerts, argus_notify::service::ALERTS_PK, None)
        .await?
        .iter()
        .filter(|i| i.live(now))
    {
        match from_attrs::<StoredAlert>(it) {
            Ok(a) if a.ends_at > now => out.push(a),
            Ok(_) => {}
            Err(e) => bad.push(e),
        }
    }
    Ok(out)
}

/// Silences that are not expired.
pub async fn silences(
    kv: &dyn Kv,
    now: Millis,
    bad: &mut Vec<String>,
) -> Result<Vec<Silence>, StoreError> {
    let mut out = Vec::new();
    for it in kv
        .query(Table::Silences, argus_notify::service::SILENCES_PK, None)
        .await?
        .iter()
        .filter(|i| i.live(now))
    {
        match from_attrs::<Silence>(it) {
            Ok(s) => out.push(s),
            Err(e) => bad.push(e),
        }
    }
    out.sort_by_key(|s| s.starts_at);
    Ok(out)
}

/// A rule group's stored state (`None` before its first evaluation).
pub async fn group_state(
    kv: &dyn Kv,
    key: &str,
    bad: &mut Vec<String>,
) -> Result<Option<argus_rules::GroupState>, StoreError> {
    let Some(item) = kv.get(Table::Alerts, RULES_PK, key).await? else {
        return Ok(None);
    };
    match item.data.as_deref().map(argus_rules::decode_state) {
        Some(Ok(s)) => Ok(Some(s)),
        Some(Err(e)) => {
            bad.push(format!("rule group state {key}: {e}"));
            Ok(None)
        }
        None => Ok(None),
    }
}
