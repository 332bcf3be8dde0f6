//! What the pages show, read from the store through the `Kv` port: targets, uptime
//! windows from the rollups (plus the runs not rolled up yet), rule group state and the
//! notifier's alerts and silences.

use crate::results::{check_version, rows_of, DecodeError, ResultRow, RUNS_PK, RUNS_VERSION};
use crate::rollup::{Rollup, Summary, DAYS_PK, DAY_MS, HOURS_PK, HOUR_MS, ROLLUP_VERSION};
use argus_model::{Item, Kv, Millis, StoreError, Table, Target};
use argus_notify::alert::StoredAlert;
use argus_notify::silence::Silence;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// Decoded rollups and summarised run items kept between requests (a warm function,
/// `argus dev`): a rollup or run item is written once and never changes, so its
/// decoded form is reused while the stored item is the same. An entry is keyed by the
/// item's key and checked against its version attribute and stored bytes (a replaced
/// item decodes afresh), and the cache holds at most `budget` bytes (an entry is
/// counted as ten times its stored size, about what its summaries take decoded),
/// least recently used first out. It also keeps the current hour's summaries chained
/// from its runs' digests (a few hours at most, see [`RollupCache::hour_of_runs`]).
pub struct RollupCache {
    inner: Mutex<CacheInner>,
    budget: usize,
}

struct CacheInner {
    map: lru::LruCache<(String, String), Cached>,
    bytes: usize,
    hits: u64,
    misses: u64,
    run_hits: u64,
    run_misses: u64,
    /// Hours summarised from run digests, newest last (at most [`CHAINED_HOURS`]).
    chained: Vec<Chained>,
    /// The stored rollups' part of the index windows, for the rollups last read.
    closed: Option<Arc<ClosedIndex>>,
}

struct Cached {
    version: u64,
    data: Vec<u8>,
    payload: Payload,
    cost: usize,
}

/// A decoded item: a rollup, or a run item's digest (pk `runs`: keys never collide).
#[derive(Clone)]
enum Payload {
    Rollup(Arc<Rollup>),
    Run(Arc<RunDigest>),
}

/// One hour's summaries chained from the digests of its runs (in item order).
struct Chained {
    hour: Millis,
    parts: Vec<Arc<RunDigest>>,
    rollup: Arc<Rollup>,
}

/// How many hours of chained run summaries the cache keeps (the current hour, and
/// the previous one while it is not rolled up yet).
const CHAINED_HOURS: usize = 4;

/// What a [`RollupCache`] holds and did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub entries: usize,
    pub bytes: usize,
    /// Rollups found in / decoded into the cache.
    pub hits: u64,
    pub misses: u64,
    /// Run items whose digest came from the cache / was made.
    pub run_hits: u64,
    pub run_misses: u64,
}

/// The default budget: 64 MiB, ~80 rollups of 1,000 targets (a status page's
/// 29 days and 47 hours) and an hour of run digests, well inside a 512 MB query
/// function.
pub const DEFAULT_CACHE_BYTES: usize = 64 << 20;

/// A run item summarised for the pages (kept in the [`RollupCache`]): each target's
/// summary of its rows, per UTC hour the rows fall in. A run item is written once,
/// so `/` decodes and summarises its rows once; later requests chain each target's
/// summaries over the hour's runs, and a target page looks its own up by id.
#[derive(Debug)]
pub struct RunDigest {
    /// The newest row's time: a request at an earlier `now` reads the rows instead.
    pub max_at: Millis,
    /// Per hour (oldest first), each target's summary of its rows in that hour.
    /// Empty when the rows name locations (see `located`).
    pub hours: Vec<(Millis, BTreeMap<String, Summary>)>,
    /// The rows, kept as rows when some name a location: the quorum view forms its
    /// rounds from several locations' run items, so it is summarised from rows.
    pub located: Option<Vec<ResultRow>>,
}

impl RunDigest {
    /// The digest of one run item's rows.
    pub fn of_rows(rows: Vec<ResultRow>) -> RunDigest {
        let max_at = rows.iter().map(|r| r.at).max().unwrap_or(Millis::MIN);
        if rows.iter().any(|r| r.location.is_some()) {
            return RunDigest {
                max_at,
                hours: Vec::new(),
                located: Some(rows),
            };
        }
        let mut starts: Vec<Millis> = rows.iter().map(|r| floor(r.at, HOUR_MS)).collect();
        starts.sort_unstable();
        starts.dedup();
        let hours = starts
            .into_iter()
            .map(|h| (h, Rollup::of_rows(h, HOUR_MS, &rows).targets))
            .collect();
        RunDigest {
            max_at,
            hours,
            located: None,
        }
    }

    /// About how many bytes it holds (the cache's cost of it).
    fn approx_bytes(&self) -> usize {
        fn row(r: &ResultRow) -> usize {
            std::mem::size_of::<ResultRow>()
                + r.target.len()
                + r.error.as_ref().map_or(0, String::len)
                + r.log.iter().flatten().map(|l| l.len() + 24).sum::<usize>()
                + r.location.as_ref().map_or(0, String::len)
        }
        let summaries: usize = self
            .hours
            .iter()
            .flat_map(|(_, m)| m.iter())
            .map(|(id, s)| {
                id.len()
                    + std::mem::size_of::<Summary>()
                    + row(&s.last)
                    + s.outages
                        .iter()
                        .map(|o| 48 + o.error.as_ref().map_or(0, String::len))
                        .sum::<usize>()
                    + s.fail_log
                        .iter()
                        .flat_map(|(_, l)| l)
                        .map(|l| l.len() + 24)
                        .sum::<usize>()
            })
            .sum();
        summaries + self.located.iter().flatten().map(row).sum::<usize>()
    }

    /// The targets' summaries in the hour starting at `start`.
    pub fn hour(&self, start: Millis) -> Option<&BTreeMap<String, Summary>> {
        self.hours.iter().find(|(h, _)| *h == start).map(|(_, m)| m)
    }
}

/// `parts` chained in order, when each starts no earlier than the one before ends
/// (as the rows' stable sort by time would order them); `None` when runs overlap.
fn chain_ordered(parts: &[&Summary]) -> Option<Option<Summary>> {
    if parts.windows(2).any(|w| w[1].first_at < w[0].last.at) {
        return None;
    }
    Some(crate::rollup::chain(parts.iter().copied()))
}

/// One hour's summaries from the digests of its runs (item order): `None` when
/// some target's runs overlap in time (then the rows are summarised instead).
fn hour_from_digests(hour: Millis, digests: &[Arc<RunDigest>]) -> Option<Rollup> {
    let mut by: BTreeMap<&str, Vec<&Summary>> = BTreeMap::new();
    for d in digests {
        for (id, s) in d.hour(hour).into_iter().flatten() {
            by.entry(id.as_str()).or_default().push(s);
        }
    }
    let mut targets = BTreeMap::new();
    for (id, parts) in by {
        if let Some(s) = chain_ordered(&parts)? {
            targets.insert(id.to_string(), s);
        }
    }
    Some(Rollup {
        start: hour,
        span_ms: HOUR_MS,
        targets,
        locations: BTreeMap::new(),
    })
}

impl RollupCache {
    pub fn new(budget: usize) -> RollupCache {
        RollupCache {
            inner: Mutex::new(CacheInner {
                map: lru::LruCache::unbounded(),
                bytes: 0,
                hits: 0,
                misses: 0,
                run_hits: 0,
                run_misses: 0,
                chained: Vec::new(),
                closed: None,
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
            run_hits: g.run_hits,
            run_misses: g.run_misses,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        // A panic while holding the lock leaves a consistent map (every mutation
        // is one call), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached payload of `item`, when the stored item is the one cached (same
    /// key, version attribute and bytes).
    fn lookup(&self, item: &Item, version: u64) -> Option<Payload> {
        let mut g = self.lock();
        let key = (item.pk.clone(), item.sk.clone());
        let hit = g
            .map
            .get(&key)
            .filter(|c| c.version == version && Some(c.data.as_slice()) == item.data.as_deref())
            .map(|c| c.payload.clone());
        match (&hit, item.pk == RUNS_PK) {
            (Some(_), false) => g.hits += 1,
            (None, false) => g.misses += 1,
            (Some(_), true) => g.run_hits += 1,
            (None, true) => g.run_misses += 1,
        }
        hit
    }

    fn insert(&self, item: &Item, version: u64, payload: Payload) {
        let data = item.data.clone().unwrap_or_default();
        // Decoded summaries take about ten times their compressed size; a digest
        // is counted by what it holds (rows compress better than summaries).
        let held = match &payload {
            Payload::Rollup(_) => data.len() * 10,
            Payload::Run(d) => d.approx_bytes() + data.len(),
        };
        let cost = held + 256;
        if cost > self.budget {
            return;
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
                payload,
                cost,
            },
        );
    }

    /// The cached rollup of `item`, when the stored item is the one cached.
    pub fn get(&self, item: &Item) -> Option<Arc<Rollup>> {
        let version = check_version(item, ROLLUP_VERSION).ok()?;
        match self.lookup(item, version)? {
            Payload::Rollup(r) => Some(r),
            Payload::Run(_) => None,
        }
    }

    /// The rollup of `item`, decoded once and kept.
    pub fn decode(&self, item: &Item) -> Result<Arc<Rollup>, DecodeError> {
        if let Some(r) = self.get(item) {
            return Ok(r);
        }
        let version = check_version(item, ROLLUP_VERSION)?;
        let rollup = Arc::new(Rollup::from_item(item)?);
        self.insert(item, version, Payload::Rollup(rollup.clone()));
        Ok(rollup)
    }

    /// The cached digest of run item `item`, when the stored item is the one cached.
    pub fn get_digest(&self, item: &Item) -> Option<Arc<RunDigest>> {
        if item.pk != RUNS_PK {
            return None;
        }
        let version = check_version(item, RUNS_VERSION).ok()?;
        match self.lookup(item, version)? {
            Payload::Run(d) => Some(d),
            Payload::Rollup(_) => None,
        }
    }

    /// The digest of run item `item` ([`rows_of`] summarised), made once and kept.
    pub fn digest(&self, item: &Item) -> Result<Arc<RunDigest>, DecodeError> {
        if let Some(d) = self.get_digest(item) {
            return Ok(d);
        }
        let version = check_version(item, RUNS_VERSION)?;
        let d = Arc::new(RunDigest::of_rows(rows_of(item)?));
        if item.pk == RUNS_PK {
            self.insert(item, version, Payload::Run(d.clone()));
        }
        Ok(d)
    }

    /// The closed index windows of `h` ([`ClosedIndex`]), made once for the same
    /// stored rollups in the same hour.
    fn closed_index(&self, h: &History) -> Option<Arc<ClosedIndex>> {
        if let Some(c) = self.lock().closed.as_ref().filter(|c| c.matches(h)) {
            return Some(c.clone());
        }
        let c = Arc::new(ClosedIndex::of(h)?);
        self.lock().closed = Some(c.clone());
        Some(c)
    }

    /// Every target's summary of `hour` chained from `digests` (its runs, in item
    /// order), kept while the same digests are asked for again; `None` when some
    /// target's runs overlap in time (the caller summarises the rows instead).
    pub fn hour_of_runs(&self, hour: Millis, digests: &[Arc<RunDigest>]) -> Option<Arc<Rollup>> {
        let same = |c: &Chained| {
            c.hour == hour
                && c.parts.len() == digests.len()
                && c.parts.iter().zip(digests).all(|(a, b)| Arc::ptr_eq(a, b))
        };
        if digests.iter().all(|d| d.hour(hour).is_none()) {
            // No run in that hour: nothing to keep.
            return hour_from_digests(hour, &[]).map(Arc::new);
        }
        if let Some(c) = self.lock().chained.iter().find(|c| same(c)) {
            return Some(c.rollup.clone());
        }
        let rollup = Arc::new(hour_from_digests(hour, digests)?);
        let mut g = self.lock();
        g.chained.retain(|c| c.hour != hour);
        if g.chained.len() >= CHAINED_HOURS {
            g.chained.remove(0);
        }
        g.chained.push(Chained {
            hour,
            parts: digests.to_vec(),
            rollup: rollup.clone(),
        });
        Some(rollup)
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
    /// Hours from here on were summarised from run items, not read as rollups.
    live_from: Millis,
    /// The stored rollups' part of every target's index windows (with a cache).
    closed: Option<Arc<ClosedIndex>>,
}

/// The part of every target's index windows ([`History::index_stats`]) that comes
/// from stored rollups, tallied once and kept in the [`RollupCache`] while the same
/// rollups are read in the same hour: `/` then adds only the hours summarised from
/// run items. Built only when no summary has locations.
pub struct ClosedIndex {
    hour0: Millis,
    live_from: Millis,
    days: Vec<Arc<Rollup>>,
    hours: Vec<Arc<Rollup>>,
    targets: HashMap<String, ClosedTarget>,
}

/// One target's windows over the stored rollups, and its stored hours of the 24.
struct ClosedTarget {
    w24: Option<Summary>,
    w7d: Option<Summary>,
    w30d: Option<Summary>,
    hourly: Vec<Option<Summary>>,
}

impl ClosedIndex {
    fn matches(&self, h: &History) -> bool {
        let same = |a: &[Arc<Rollup>], b: &BTreeMap<Millis, Arc<Rollup>>, below: Millis| {
            let b: Vec<&Arc<Rollup>> = b.range(..below).map(|(_, r)| r).collect();
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| Arc::ptr_eq(x, y))
        };
        self.hour0 == floor(h.now, HOUR_MS)
            && self.live_from == h.live_from
            && same(&self.days, &h.days, Millis::MAX)
            && same(&self.hours, &h.hours, h.live_from)
    }

    /// The closed windows of every target in `h`'s stored rollups (`None` when some
    /// summary has locations: those take the general path).
    fn of(h: &History) -> Option<ClosedIndex> {
        let stored = h
            .days
            .values()
            .chain(h.hours.range(..h.live_from).map(|(_, r)| r));
        let live = h.hours.range(h.live_from..).map(|(_, r)| r);
        if stored.clone().chain(live).any(|r| !r.locations.is_empty()) {
            return None;
        }
        let mut ids: Vec<&str> = Vec::new();
        for r in stored {
            ids.extend(r.targets.keys().map(String::as_str));
        }
        ids.sort_unstable();
        ids.dedup();
        let hour0 = floor(h.now, HOUR_MS);
        let targets = ids
            .into_iter()
            .map(|id| {
                let stored = |r: &Rollup| r.span_ms != HOUR_MS || r.start < h.live_from;
                let w = h.windows(
                    |r| stored(r).then(|| r.targets.get(id)).flatten(),
                    true,
                    tally,
                );
                let c = ClosedTarget {
                    w24: w.w24,
                    w7d: w.w7d,
                    w30d: w.w30d,
                    hourly: w
                        .hourly
                        .iter()
                        .map(|(_, s)| s.and_then(|s| tally(&[s])))
                        .collect(),
                };
                (id.to_string(), c)
            })
            .collect();
        Some(ClosedIndex {
            hour0,
            live_from: h.live_from,
            days: h.days.values().cloned().collect(),
            hours: h
                .hours
                .range(..h.live_from)
                .map(|(_, r)| r.clone())
                .collect(),
            targets,
        })
    }
}

/// Uptime windows: the current UTC hour and the 23 before it; the current UTC day
/// and the 6 (29) before it.
pub const WINDOWS: [&str; 3] = ["24h", "7d", "30d"];

/// One target's windows, borrowing the hourly summaries from its [`History`].
#[derive(Clone, Debug, Default)]
pub struct TargetStats<'a> {
    pub w24: Option<Summary>,
    pub w7d: Option<Summary>,
    pub w30d: Option<Summary>,
    /// The 24 hours of the 24 h window, oldest first.
    pub hourly: Vec<(Millis, Option<&'a Summary>)>,
    /// Per location (multi-location probing only): the same windows (hourly empty).
    pub locations: BTreeMap<String, TargetStats<'a>>,
}

impl TargetStats<'_> {
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
            live_from: Millis::MAX,
            closed: None,
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
        let items = query(kv, RUNS_PK, runs_from).await?;
        h.items_read += items.len();
        // With a cache, `/` summarises each run item once (its digest) and a target
        // page uses the digests `/` made; without one (or for a run not digested
        // yet) a target page decodes its own rows only.
        let mut runs: Vec<Run> = Vec::with_capacity(items.len());
        for item in &items {
            runs.push(match (only, reading.cache) {
                (None, Some(c)) => match c.digest(item) {
                    Ok(d) => Run::Digest(d),
                    Err(e) => {
                        h.unreadable.push(e.to_string());
                        Run::Bad
                    }
                },
                (Some(_), Some(c)) => c.get_digest(item).map_or(Run::Item, Run::Digest),
                (_, None) => Run::Item,
            });
        }
        let first_hour = floor(runs_from, HOUR_MS);
        h.live_from = first_hour;
        let hours_of_runs = (0..)
            .map(|i| first_hour + i * HOUR_MS)
            .take_while(|hr| *hr <= hour0);
        // Single-location digests, none with rows after `now`: chain each target's
        // summaries over the runs (the same figures as summarising the rows).
        let digests: Option<Vec<Arc<RunDigest>>> = runs
            .iter()
            .filter(|r| !matches!(r, Run::Bad))
            .map(|r| match r {
                Run::Digest(d) if d.located.is_none() && d.max_at <= now => Some(d.clone()),
                _ => None,
            })
            .collect();
        let chained: Option<Vec<(Millis, Arc<Rollup>)>> = digests.and_then(|ds| {
            hours_of_runs
                .clone()
                .map(|hr| {
                    let r = match (only, reading.cache) {
                        (None, Some(c)) => c.hour_of_runs(hr, &ds)?,
                        (None, None) => Arc::new(hour_from_digests(hr, &ds)?),
                        (Some(id), _) => Arc::new(target_hour(hr, &ds, id)?),
                    };
                    Some((hr, r))
                })
                .collect()
        });
        if let Some(chained) = chained {
            for (hr, r) in chained {
                if !r.targets.is_empty() {
                    h.hours.insert(hr, r);
                }
            }
            return Ok(h.with_closed(only, reading.cache));
        }
        let mut rows: Vec<ResultRow> = Vec::new();
        for (item, run) in items.iter().zip(&runs) {
            match run {
                Run::Bad => continue,
                Run::Digest(d) => {
                    if let Some(located) = &d.located {
                        let mine = |r: &&ResultRow| only.is_none_or(|id| r.target == id);
                        rows.extend(located.iter().filter(|r| r.at <= now).filter(mine).cloned());
                        continue;
                    }
                }
                Run::Item => {}
            }
            let decoded = match only {
                Some(id) => crate::results::rows_of_target(item, id),
                None => rows_of(item),
            };
            match decoded {
                Ok(r) => rows.extend(r.into_iter().filter(|r| r.at <= now)),
                Err(e) => h.unreadable.push(e.to_string()),
            }
        }
        for hr in hours_of_runs {
            let r = Rollup::of_rows_quorum(hr, HOUR_MS, &rows, reading.quorum);
            if !r.targets.is_empty() {
                h.hours.insert(hr, Arc::new(r));
            }
        }
        Ok(h.with_closed(only, reading.cache))
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

    /// With a cache, every target's closed index windows (`/` only).
    fn with_closed(mut self, only: Option<&str>, cache: Option<&RollupCache>) -> History {
        if let (None, Some(c)) = (only, cache) {
            self.closed = c.closed_index(&self);
        }
        self
    }

    /// `id`'s windows, with their outages and the last failure's log.
    pub fn stats(&self, id: &str) -> TargetStats<'_> {
        self.stats_with(id, chain)
    }

    /// `id`'s windows as the index shows them: counts, durations and the last check,
    /// without outages or failure logs (left empty, in the hourly summaries too: the
    /// index shows neither, and copying a month of outages for every target was most
    /// of the windows' cost). With a cache, the stored rollups' part is tallied once
    /// ([`ClosedIndex`]) and each request adds the hours summarised from runs.
    pub fn index_stats(&self, id: &str) -> TargetStats<'_> {
        let Some(closed) = &self.closed else {
            return self.stats_with(id, tally);
        };
        // The stored rollups' part, then the hours summarised from runs (all of
        // them later, and inside every window).
        let c = closed.targets.get(id);
        let live: Vec<&Summary> = self
            .hours
            .range(self.live_from..)
            .filter_map(|(_, r)| r.targets.get(id))
            .collect();
        let join =
            |w: Option<&Summary>| crate::rollup::tally(w.into_iter().chain(live.iter().copied()));
        let hour0 = floor(self.now, HOUR_MS);
        let hourly = (0..24)
            .map(|i| {
                let s = hour0 - (23 - i) * HOUR_MS;
                let sum = if s >= self.live_from {
                    self.hours.get(&s).and_then(|r| r.targets.get(id))
                } else {
                    c.and_then(|c| c.hourly[i as usize].as_ref())
                };
                (s, sum)
            })
            .collect();
        TargetStats {
            w24: join(c.and_then(|c| c.w24.as_ref())),
            w7d: join(c.and_then(|c| c.w7d.as_ref())),
            w30d: join(c.and_then(|c| c.w30d.as_ref())),
            hourly,
            locations: BTreeMap::new(),
        }
    }

    fn stats_with<'a>(&'a self, id: &str, join: Join<'a>) -> TargetStats<'a> {
        let mut out = self.windows(|r| r.targets.get(id), true, join);
        let mut locs: Vec<&str> = Vec::new();
        for r in self.days.values().chain(self.hours.values()) {
            if let Some(per) = r.locations.get(id) {
                locs.extend(per.keys().map(String::as_str));
            }
        }
        locs.sort_unstable();
        locs.dedup();
        for l in locs {
            let s = self.windows(|r| r.locations.get(id).and_then(|p| p.get(l)), false, join);
            out.locations.insert(l.to_string(), s);
        }
        out
    }

    /// The windows of the summaries `get` picks from each rollup, each joined by `join`.
    fn windows<'a>(
        &'a self,
        get: impl Fn(&'a Rollup) -> Option<&'a Summary> + Copy,
        keep_hourly: bool,
        join: Join<'a>,
    ) -> TargetStats<'a> {
        let day0 = floor(self.now, DAY_MS);
        let hour0 = floor(self.now, HOUR_MS);
        let hour_of = |start: Millis| self.hours.get(&start).and_then(|r| get(r));
        let hours_in =
            |from: Millis, to: Millis| self.hours.range(from..to).filter_map(move |(_, r)| get(r));
        // Days 29..1 before today, each its daily rollup or (not rolled up yet)
        // its hours when still read; then today's hours.
        let mut parts: Vec<&Summary> = Vec::with_capacity(64);
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
        parts.extend(hours_in(day0, hour0 + HOUR_MS));
        let hourly: Vec<(Millis, Option<&Summary>)> = (0..24)
            .map(|i| {
                let s = hour0 - (23 - i) * HOUR_MS;
                (s, hour_of(s))
            })
            .collect();
        let w24: Vec<&Summary> = hourly.iter().filter_map(|(_, s)| *s).collect();
        TargetStats {
            w24: join(&w24),
            w7d: join(&parts[start_7d..]),
            w30d: join(&parts),
            hourly: if keep_hourly { hourly } else { Vec::new() },
            locations: BTreeMap::new(),
        }
    }
}

/// How a window's parts are joined: [`chain`] or [`tally`].
type Join<'a> = fn(&[&'a Summary]) -> Option<Summary>;

fn chain(parts: &[&Summary]) -> Option<Summary> {
    crate::rollup::chain(parts.iter().copied())
}

fn tally(parts: &[&Summary]) -> Option<Summary> {
    crate::rollup::tally(parts.iter().copied())
}

/// One run item as read: its digest, the item itself (not digested), or unreadable
/// (reported).
enum Run {
    Digest(Arc<RunDigest>),
    Item,
    Bad,
}

/// `id`'s summary of `hour` from the digests of its runs (`None`: runs overlap).
fn target_hour(hour: Millis, digests: &[Arc<RunDigest>], id: &str) -> Option<Rollup> {
    let parts: Vec<&Summary> = digests
        .iter()
        .filter_map(|d| d.hour(hour)?.get(id))
        .collect();
    let mut r = Rollup {
        start: hour,
        span_ms: HOUR_MS,
        ..Rollup::default()
    };
    if let Some(s) = chain_ordered(&parts)? {
        r.targets.insert(id.to_string(), s);
    }
    Some(r)
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
