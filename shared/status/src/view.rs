//! What the pages show, read from the store through the `Kv` port: targets, uptime
//! windows from the rollups (plus the runs not rolled up yet), rule group state and the
//! notifier's alerts and silences.

use crate::results::{check_version, rows_of, DecodeError, ResultRow, RUNS_PK};
use crate::rollup::{chain, Rollup, Summary, DAYS_PK, DAY_MS, HOURS_PK, HOUR_MS, ROLLUP_VERSION};
use argus_model::{Item, Kv, Millis, StoreError, Table, Target};
use argus_notify::alert::StoredAlert;
use argus_notify::silence::Silence;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Decoded rollups kept between requests (a warm function, `argus dev`): a rollup
/// item is written once and never changes, so its decoded form is reused while the
/// stored item is the same. An entry is keyed by the item's key and checked against
/// its version attribute and stored bytes (a replaced item decodes afresh), and the
/// cache holds at most `budget` bytes (an entry is counted as ten times its stored
/// size, about what its summaries take decoded), least recently used first out.
pub struct RollupCache {
    inner: Mutex<CacheInner>,
    budget: usize,
}

struct CacheInner {
    map: lru::LruCache<(String, String), Cached>,
    bytes: usize,
    hits: u64,
    misses: u64,
}

struct Cached {
    version: u64,
    data: Vec<u8>,
    rollup: Arc<Rollup>,
    cost: usize,
}

/// What a [`RollupCache`] holds and did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub entries: usize,
    pub bytes: usize,
    pub hits: u64,
    pub misses: u64,
}

/// The default budget: 64 MiB, ~80 rollups of 1,000 targets (a status page's
/// 29 days and 47 hours), well inside a 512 MB query function.
pub const DEFAULT_CACHE_BYTES: usize = 64 << 20;

impl RollupCache {
    pub fn new(budget: usize) -> RollupCache {
        RollupCache {
            inner: Mutex::new(CacheInner {
                map: lru::LruCache::unbounded(),
                bytes: 0,
                hits: 0,
                misses: 0,
            }),
            budget,
        }
    }

    pub fn stats(&self) -> CacheStats {
        let g = self.lock();
        CacheStats {
            entries: g.map.len(),
            bytes: g.bytes,
            hits: g.hits,
            misses: g.misses,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        // A panic while holding the lock leaves a consistent map (every mutation
        // is one call), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached rollup of `item`, when the stored item is the one cached.
    pub fn get(&self, item: &Item) -> Option<Arc<Rollup>> {
        let version = check_version(item, ROLLUP_VERSION).ok()?;
        let mut g = self.lock();
        let key = (item.pk.clone(), item.sk.clone());
        let hit = g
            .map
            .get(&key)
            .filter(|c| c.version == version && Some(c.data.as_slice()) == item.data.as_deref())
            .map(|c| c.rollup.clone());
        match hit {
            Some(_) => g.hits += 1,
            None => g.misses += 1,
        }
        hit
    }

    /// The rollup of `item`, decoded once and kept.
    pub fn decode(&self, item: &Item) -> Result<Arc<Rollup>, DecodeError> {
        if let Some(r) = self.get(item) {
            return Ok(r);
        }
        let version = check_version(item, ROLLUP_VERSION)?;
        let rollup = Arc::new(Rollup::from_item(item)?);
        let data = item.data.clone().unwrap_or_default();
        // Decoded summaries take about ten times their compressed size.
        let cost = data.len() * 10 + 256;
        if cost > self.budget {
            return Ok(rollup);
        }
        let mut g = self.lock();
        let key = (item.pk.clone(), item.sk.clone());
        if let Some(old) = g.map.pop(&key) {
            g.bytes -= old.cost;
        }
        while g.bytes + cost > self.budget {
            match g.map.pop_lru() {
                Some((_, old)) => g.bytes -= old.cost,
                None => break,
            }
        }
        g.bytes += cost;
        g.map.put(
            key,
            Cached {
                version,
                data,
                rollup: rollup.clone(),
                cost,
            },
        );
        Ok(rollup)
    }
}

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
    pub days: BTreeMap<Millis, Arc<Rollup>>,
    pub hours: BTreeMap<Millis, Arc<Rollup>>,
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
    /// Per location (multi-location probing only): the same windows (hourly empty).
    pub locations: BTreeMap<String, TargetStats>,
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
        History::load_with(kv, now, None, &Reading::default()).await
    }

    /// The history of `only` (every target's when `None`): a target page and a badge
    /// decode one target's summaries and rows and skip the others.
    pub async fn load_for(
        kv: &dyn Kv,
        now: Millis,
        only: Option<&str>,
    ) -> Result<History, StoreError> {
        History::load_with(kv, now, only, &Reading::default()).await
    }

    /// [`History::load_for`] reusing `reading.cache` for closed rollups (every
    /// rollup decoded for `/` is kept; a target page uses a cached rollup, else
    /// decodes its target's block only) and `reading.quorum` for the current hour.
    pub async fn load_with(
        kv: &dyn Kv,
        now: Millis,
        only: Option<&str>,
        reading: &Reading<'_>,
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
            if let Some(r) = h
                .rollup(&item, only, reading.cache)
                .filter(|r| r.start < day0)
            {
                h.days.insert(r.start, r);
            }
        }
        let hfrom = day0.min(hour0 - 23 * HOUR_MS);
        for item in query(kv, HOURS_PK, hfrom).await? {
            h.items_read += 1;
            if let Some(r) = h
                .rollup(&item, only, reading.cache)
                .filter(|r| r.start < hour0 + HOUR_MS)
            {
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
            let r = Rollup::of_rows_quorum(hr, HOUR_MS, &rows, reading.quorum);
            if !r.targets.is_empty() {
                h.hours.insert(hr, Arc::new(r));
            }
            hr += HOUR_MS;
        }
        Ok(h)
    }

    fn rollup(
        &mut self,
        item: &Item,
        only: Option<&str>,
        cache: Option<&RollupCache>,
    ) -> Option<Arc<Rollup>> {
        let r = match (only, cache) {
            (None, Some(c)) => c.decode(item),
            (Some(id), Some(c)) => match c.get(item) {
                Some(r) => Ok(r),
                None => Rollup::from_item_for(item, id).map(Arc::new),
            },
            (Some(id), None) => Rollup::from_item_for(item, id).map(Arc::new),
            (None, None) => Rollup::from_item(item).map(Arc::new),
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
        let mut out = self.windows(|r| r.targets.get(id), true);
        let mut locs: Vec<&str> = Vec::new();
        for r in self.days.values().chain(self.hours.values()) {
            if let Some(per) = r.locations.get(id) {
                locs.extend(per.keys().map(String::as_str));
            }
        }
        locs.sort_unstable();
        locs.dedup();
        for l in locs {
            let s = self.windows(|r| r.locations.get(id).and_then(|p| p.get(l)), false);
            out.locations.insert(l.to_string(), s);
        }
        out
    }

    /// The windows of the summaries `get` picks from each rollup.
    fn windows<'a>(
        &'a self,
        get: impl Fn(&'a Rollup) -> Option<&'a Summary> + Copy,
        keep_hourly: bool,
    ) -> TargetStats {
        let day0 = floor(self.now, DAY_MS);
        let hour0 = floor(self.now, HOUR_MS);
        let hour_of = |start: Millis| self.hours.get(&start).and_then(|r| get(r));
        let hours_in =
            |from: Millis, to: Millis| self.hours.range(from..to).filter_map(move |(_, r)| get(r));
        let today: Vec<&Summary> = hours_in(day0, hour0 + HOUR_MS).collect();
        // Days 29..1 before today, each its daily rollup or (not rolled up yet)
        // its hours when still read; then today's hours.
        let mut parts: Vec<&Summary> = Vec::new();
        let mut start_7d = 0;
        for i in (1..30).rev() {
            let d = day0 - i * DAY_MS;
            if i == 6 {
                start_7d = parts.len();
            }
            match self.days.get(&d) {
                Some(r) => parts.extend(get(r)),
                None => parts.extend(hours_in(d, d + DAY_MS)),
            }
        }
        parts.extend(today);
        let hourly: Vec<(Millis, Option<&Summary>)> = (0..24)
            .map(|i| {
                let s = hour0 - (23 - i) * HOUR_MS;
                (s, hour_of(s))
            })
            .collect();
        TargetStats {
            w24: chain(hourly.iter().filter_map(|(_, s)| *s)),
            w7d: chain(parts[start_7d..].iter().copied()),
            w30d: chain(parts.iter().copied()),
            hourly: if keep_hourly {
                hourly.into_iter().map(|(t, s)| (t, s.cloned())).collect()
            } else {
                Vec::new()
            },
            locations: BTreeMap::new(),
        }
    }
}

/// How a [`History`] is read: the rollup cache to reuse and the quorum of the
/// current hour's rounds (`None`: a majority of the locations that checked).
#[derive(Clone, Copy, Default)]
pub struct Reading<'a> {
    pub cache: Option<&'a RollupCache>,
    pub quorum: Option<usize>,
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
