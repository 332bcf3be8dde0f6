//! The gateway service: the write path (push/delete with conditional writes and the
//! consistency checks), reads (exposition, JSON API, snapshot) and a per-process cache.

use crate::check::{self, apply_grouping, has_timestamps, related_names, suffix_collision};
use crate::group::{self, group_id, Group, GroupingKey, StoredFamily};
use crate::index::{self, GROUP_PK, IN_FLIGHT_MS};
use crate::{GatewayConfig, GatewayError, WriteRequest};
use argus_expfmt::{MetricFamily, MetricType, MetricValue};
use argus_model::{Cond, Item, Kv, Labels, Millis, StoreError, Table, UnixSecs};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

pub(crate) const MAX_ATTEMPTS: usize = 16;

/// A decoded group at a stored version, with lazily rendered views.
pub(crate) struct Cached {
    pub version: u64,
    pub group: Group,
    /// Read from a bundle (never deleted on its own; see `bundle`).
    pub bundled: bool,
    rendered: OnceLock<Vec<RenderedFamily>>,
    series: OnceLock<Vec<(Labels, f64)>>,
}

pub(crate) struct RenderedFamily {
    pub name: String,
    pub help: Option<String>,
    pub kind: MetricType,
    /// Sample lines (text format) with the grouping labels applied.
    pub samples: String,
}

impl Cached {
    fn new(version: u64, group: Group) -> Self {
        Cached {
            version,
            group,
            bundled: false,
            rendered: OnceLock::new(),
            series: OnceLock::new(),
        }
    }

    pub(crate) fn bundled(version: u64, group: Group) -> Self {
        Cached {
            bundled: true,
            ..Cached::new(version, group)
        }
    }

    pub fn rendered(&self) -> &[RenderedFamily] {
        self.rendered.get_or_init(|| render(&self.group))
    }

    pub fn series(&self) -> &[(Labels, f64)] {
        self.series.get_or_init(|| flatten(&self.group))
    }
}

fn all_families(g: &Group) -> Vec<(MetricFamily, Millis)> {
    let mut v: Vec<(MetricFamily, Millis)> = g
        .families
        .values()
        .map(|f| (f.family.clone(), f.pushed_ms))
        .collect();
    v.extend(g.timestamp_families());
    v.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    v
}

fn render(g: &Group) -> Vec<RenderedFamily> {
    let mut out = Vec::new();
    for (f, _) in all_families(g) {
        let mut samples = String::new();
        let mut labels: Vec<(&str, &str)> = Vec::new();
        for m in &f.metrics {
            labels.clear();
            merged_labels(&mut labels, &m.labels, g);
            argus_expfmt::write_metric(&mut samples, &f.name, &labels, &m.value, None);
        }
        out.push(RenderedFamily {
            name: f.name,
            help: f.help,
            kind: f.kind,
            samples,
        });
    }
    out
}

/// A metric's exposed labels: its own, overridden by the grouping key (empty values
/// included), plus `instance=""` when absent, sorted by name.
pub(crate) fn merged_labels<'a>(out: &mut Vec<(&'a str, &'a str)>, own: &'a Labels, g: &'a Group) {
    let extra = g.extra_labels(own.get("instance").is_some());
    out.extend(
        own.iter()
            .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k)),
    );
    out.extend(extra);
    out.sort_unstable_by(|a, b| a.0.cmp(b.0));
}

fn flatten(g: &Group) -> Vec<(Labels, f64)> {
    let mut out = Vec::new();
    for (f, _) in all_families(g) {
        for (mut labels, v) in argus_expfmt::series(&f) {
            for (k, val) in &g.key {
                labels.set(k, val); // empty values: absent, as Prometheus ingests them
            }
            out.push((labels, v));
        }
    }
    out
}

pub struct Gateway {
    pub(crate) kv: Arc<dyn Kv>,
    pub(crate) cfg: GatewayConfig,
    cache: Mutex<HashMap<String, Arc<Cached>>>,
    /// Decoded bundles by slot.
    pub(crate) bundles: Mutex<HashMap<String, Arc<crate::bundle::Bundle>>>,
    /// Write-behind: groups changed since the last flush (`None`: deleted).
    dirty: Mutex<HashMap<String, Option<Arc<Cached>>>>,
    /// Write-behind: the cache holds every stored group (loaded once, under the lock).
    all_loaded: tokio::sync::OnceCell<()>,
    flushing: tokio::sync::Mutex<()>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    pub(crate) started_ms: Mutex<Option<Millis>>,
    /// Stored groups and bundles that could not be decoded since start (logged each
    /// time; `argus_pushgateway_undecodable_records_total` on `/metrics` once non-zero).
    pub(crate) undecodable: std::sync::atomic::AtomicU64,
}

impl Gateway {
    pub fn new(kv: Arc<dyn Kv>, cfg: GatewayConfig) -> Self {
        Gateway {
            kv,
            cfg,
            cache: Mutex::new(HashMap::new()),
            bundles: Mutex::new(HashMap::new()),
            dirty: Mutex::new(HashMap::new()),
            all_loaded: tokio::sync::OnceCell::new(),
            flushing: tokio::sync::Mutex::new(()),
            locks: Mutex::new(HashMap::new()),
            started_ms: Mutex::new(None),
            undecodable: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn config(&self) -> &GatewayConfig {
        &self.cfg
    }

    fn cache_get(&self, gid: &str) -> Option<Arc<Cached>> {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(gid)
            .cloned()
    }

    fn cache_put(&self, gid: &str, c: Arc<Cached>) {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(gid.to_string(), c);
    }

    fn cache_drop(&self, gid: &str) {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(gid);
    }

    /// Serialises changes to one group within this process, in arrival order
    /// (tokio's mutex is fair). Across processes, conditional writes order them.
    async fn lock_group(
        &self,
        gid: &str,
    ) -> (
        Arc<tokio::sync::Mutex<()>>,
        tokio::sync::OwnedMutexGuard<()>,
    ) {
        let m = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(gid.to_string()).or_default().clone()
        };
        let guard = m.clone().lock_owned().await;
        (m, guard)
    }

    fn unlock_group(
        &self,
        gid: &str,
        m: Arc<tokio::sync::Mutex<()>>,
        guard: tokio::sync::OwnedMutexGuard<()>,
    ) {
        drop(guard);
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        // Two references: the map's and ours. Nobody else waits: forget the lock.
        if Arc::strong_count(&m) == 2 {
            locks.remove(gid);
        }
    }

    /// Reads a group from the store (bypassing the cache) and caches it. With
    /// write-behind the cache is the truth.
    async fn load(&self, gid: &str) -> Result<Option<Arc<Cached>>, GatewayError> {
        if self.cfg.write_behind {
            self.ensure_loaded().await?;
            return Ok(self.cache_get(gid));
        }
        match self.kv.get(Table::Metrics, GROUP_PK, gid).await? {
            None => {
                self.cache_drop(gid);
                Ok(None)
            }
            Some(item) => {
                let c = Arc::new(self.decode_item(&item)?);
                self.cache_put(gid, c.clone());
                Ok(Some(c))
            }
        }
    }

    fn decode_item(&self, item: &Item) -> Result<Cached, GatewayError> {
        let data = item.data.as_deref().ok_or_else(|| {
            GatewayError::Store(StoreError::Permanent(format!(
                "metric group {} has no payload",
                item.sk
            )))
        })?;
        Ok(Cached::new(item.version, group::decode(data)?))
    }

    /// Writes the group if the stored one is still at `prev_version`. On failure the
    /// group comes back with the error (a conflicting push redoes from it).
    async fn store(
        &self,
        gid: &str,
        g: Group,
        prev_version: u64,
    ) -> Result<Arc<Cached>, (StoreError, Group)> {
        if self.cfg.write_behind {
            let c = Arc::new(Cached::new(prev_version + 1, g));
            self.cache_put(gid, c.clone());
            self.dirty_set(gid, Some(c.clone()));
            return Ok(c);
        }
        let mut item = group_item(gid, &g);
        item.version = prev_version;
        let v = match self
            .kv
            .put(Table::Metrics, item, Cond::Version(prev_version))
            .await
        {
            Ok(v) => v,
            Err(e) => return Err((e, g)),
        };
        let c = Arc::new(Cached::new(v, g));
        self.cache_put(gid, c.clone());
        Ok(c)
    }

    /// Deletes a group's item if still at `version` (write-behind: at the next flush).
    async fn delete_item(&self, gid: &str, version: u64) -> Result<(), StoreError> {
        if self.cfg.write_behind {
            self.dirty_set(gid, None);
            return Ok(());
        }
        self.kv
            .delete(Table::Metrics, GROUP_PK, gid, Cond::Version(version))
            .await
    }

    fn dirty_set(&self, gid: &str, c: Option<Arc<Cached>>) {
        self.dirty
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(gid.to_string(), c);
    }

    /// Write-behind: loads every stored group into the cache, once.
    async fn ensure_loaded(&self) -> Result<(), GatewayError> {
        self.all_loaded
            .get_or_try_init(|| async { self.load_from_store().await.map(|_| ()) })
            .await?;
        Ok(())
    }

    /// Write-behind: writes the changes since the last flush to the store (one batch
    /// of puts, then the deletes). Returns how many groups were written. Without
    /// write-behind there is nothing to do.
    pub async fn flush(&self) -> Result<usize, GatewayError> {
        if !self.cfg.write_behind {
            return Ok(0);
        }
        let _one_at_a_time = self.flushing.lock().await;
        let batch = std::mem::take(&mut *self.dirty.lock().unwrap_or_else(|e| e.into_inner()));
        if batch.is_empty() {
            return Ok(0);
        }
        let puts: Vec<Item> = batch
            .iter()
            .filter_map(|(gid, c)| c.as_ref().map(|c| group_item(gid, &c.group)))
            .collect();
        let written = async {
            if !puts.is_empty() {
                self.kv.put_batch(Table::Metrics, puts).await?;
            }
            for (gid, c) in &batch {
                if c.is_none() {
                    match self
                        .kv
                        .delete(Table::Metrics, GROUP_PK, gid, Cond::Always)
                        .await
                    {
                        Ok(()) | Err(StoreError::Conflict(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            Ok(())
        }
        .await;
        let n = batch.len();
        if let Err(e) = written {
            // Keep what was not superseded meanwhile for the next flush.
            let mut dirty = self.dirty.lock().unwrap_or_else(|e| e.into_inner());
            for (gid, c) in batch {
                dirty.entry(gid).or_insert(c);
            }
            return Err(e.into());
        }
        Ok(n)
    }

    /// Write-behind: flushes every `every` until the task is dropped.
    pub async fn flush_every(self: Arc<Self>, every: std::time::Duration) {
        let mut iv = tokio::time::interval(every);
        iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            iv.tick().await;
            if let Err(e) = self.flush().await {
                tracing::warn!(error = %e, "could not write metric groups to the store; will retry");
            }
        }
    }

    /// Every stored group (live or not), current as of the store, using the cache for
    /// groups whose version did not change; then the bundled groups, where the most
    /// recent push of a grouping key wins.
    pub(crate) async fn load_all(&self) -> Result<Vec<(String, Arc<Cached>)>, GatewayError> {
        let mut out = if self.cfg.write_behind {
            self.ensure_loaded().await?;
            self.cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        } else {
            self.load_from_store().await?
        };
        let bundles = self.load_bundles().await?;
        if !bundles.is_empty() {
            let mut by_id: HashMap<String, Arc<Cached>> = out.into_iter().collect();
            for b in &bundles {
                for (gid, c) in &b.groups {
                    match by_id.get(gid) {
                        Some(have) if have.group.push_ms >= c.group.push_ms => {}
                        _ => {
                            by_id.insert(gid.clone(), c.clone());
                        }
                    }
                }
            }
            out = by_id.into_iter().collect();
        }
        out.sort_by(|a, b| a.1.group.key.cmp(&b.1.group.key));
        Ok(out)
    }

    /// The pushed groups as stored, refreshing the cache.
    async fn load_from_store(&self) -> Result<Vec<(String, Arc<Cached>)>, GatewayError> {
        let items = self.kv.query(Table::Metrics, GROUP_PK, None).await?;
        let old: HashMap<String, Arc<Cached>> =
            std::mem::take(&mut *self.cache.lock().unwrap_or_else(|e| e.into_inner()));
        let mut fresh = HashMap::with_capacity(items.len());
        let mut out = Vec::with_capacity(items.len());
        for item in &items {
            let c = match old.get(&item.sk) {
                Some(c) if c.version == item.version => c.clone(),
                _ => match self.decode_item(item) {
                    Ok(c) => Arc::new(c),
                    Err(e) => {
                        self.note_undecodable();
                        tracing::error!(group = %item.sk, error = %e, "skipping unreadable metric group (left as stored)");
                        continue;
                    }
                },
            };
            fresh.insert(item.sk.clone(), c.clone());
            out.push((item.sk.clone(), c));
        }
        keep_newer(
            &mut self.cache.lock().unwrap_or_else(|e| e.into_inner()),
            fresh,
            |c| c.version,
        );
        Ok(out)
    }

    /// Live groups; expired ones are removed from the store in passing.
    pub(crate) async fn live_groups(&self, now: Millis) -> Result<Vec<Arc<Cached>>, GatewayError> {
        let all = self.load_all().await?;
        let mut live = Vec::with_capacity(all.len());
        for (gid, c) in all {
            if c.group.live(now) {
                live.push(c);
            } else if !c.bundled {
                self.remove_expired(&gid, &c).await;
            }
        }
        Ok(live)
    }

    /// After a group's item was deleted: drop it from the cache and release its claims
    /// on the metric-type index.
    async fn forget_deleted(&self, gid: &str, c: &Cached) {
        self.cache_drop(gid);
        if self.cfg.consistency_check {
            let names: Vec<(String, MetricType)> = c
                .group
                .families
                .iter()
                .map(|(n, f)| (n.clone(), f.family.kind))
                .collect();
            self.release(gid, &names).await;
        }
    }

    async fn remove_expired(&self, gid: &str, c: &Cached) {
        match self.delete_item(gid, c.version).await {
            Ok(()) => {
                self.forget_deleted(gid, c).await;
                tracing::info!(group = ?c.group.key, "removed expired metric group");
            }
            Err(StoreError::Conflict(_)) => {} // changed meanwhile: a push revived it
            Err(e) => {
                tracing::warn!(group = ?c.group.key, error = %e, "could not remove expired metric group")
            }
        }
    }

    pub(crate) fn validate_key(key: &GroupingKey) -> Result<(), GatewayError> {
        match key.get("job") {
            Some(j) if !j.is_empty() => {}
            _ => return Err(GatewayError::BadRequest("job name is required".into())),
        }
        for k in key.keys() {
            if !argus_expfmt::is_valid_label_name(k) || k.starts_with("__") {
                return Err(GatewayError::BadRequest(format!(
                    "improper label name {k:?}"
                )));
            }
        }
        Ok(())
    }

    fn ttl_for(&self, w: &WriteRequest) -> Option<std::time::Duration> {
        w.ttl
            .or_else(|| {
                w.labels
                    .get("job")
                    .and_then(|j| self.cfg.default_ttl_by_job.get(j).copied())
            })
            .filter(|d| !d.is_zero())
    }

    /// Applies one write request (push or delete), the same path as the HTTP API.
    pub async fn push(&self, w: WriteRequest, now: Millis) -> Result<(), GatewayError> {
        Self::validate_key(&w.labels)?;
        let gid = group_id(&w.labels);
        let (m, guard) = self.lock_group(&gid).await;
        let r = self.push_locked(&gid, w, now).await;
        self.unlock_group(&gid, m, guard);
        r
    }

    async fn push_locked(
        &self,
        gid: &str,
        w: WriteRequest,
        now: Millis,
    ) -> Result<(), GatewayError> {
        let ttl = self.ttl_for(&w);
        let expires_at_ms = ttl.map(|d| now.saturating_add(argus_model::time::millis(d)));
        let Some(families) = w.families else {
            return self.delete_locked(gid).await;
        };
        let mut pushed = apply_grouping(families, &w.labels);
        let pushed_names: Vec<String> = pushed.keys().cloned().collect();
        if self.cfg.consistency_check && has_timestamps(&pushed) {
            self.record_failure(gid, &w.labels, now, expires_at_ms)
                .await?;
            return Err(GatewayError::Inconsistent(
                "pushed metrics must not have timestamps".into(),
            ));
        }
        let mut cur = self.cache_get(gid);
        let mut fresh_read = false;
        // Names newly claimed in the index by this push (released again on failure).
        let mut claimed: Vec<(String, MetricType)> = Vec::new();
        for _ in 0..MAX_ATTEMPTS {
            if cur.is_none() && !fresh_read {
                cur = self.load(gid).await?;
                fresh_read = true;
            }
            let (base, version) = match &cur {
                Some(c) => (Some(&c.group), c.version),
                None => (None, 0),
            };
            let mut next = match base {
                // PUT keeps nothing but the group's timestamps: do not copy families.
                Some(g) if w.replace => Group {
                    families: BTreeMap::new(),
                    key: g.key.clone(),
                    ..g.header()
                },
                Some(g) => g.clone(),
                None => Group::new(w.labels.clone()),
            };
            // Moved, not copied: a retry takes them back from the group it tried.
            for (name, family) in std::mem::take(&mut pushed) {
                next.families.insert(
                    name,
                    StoredFamily {
                        family,
                        pushed_ms: now,
                    },
                );
            }
            // The gateway's own families always win over pushed ones of the same name.
            next.families.remove(group::PUSH_TIME);
            next.families.remove(group::PUSH_FAILURE_TIME);
            next.push_ms = Some(now);
            next.push_set_ms = now;
            if next.failure_ms.is_none() {
                next.failure_set_ms = now;
            }
            next.expires_at_ms = expires_at_ms;
            let series = next.series_count();
            if series > self.cfg.max_series_per_group {
                self.release(gid, &claimed).await;
                return Err(GatewayError::TooManySeries(format!(
                    "group would hold {series} series, more than the limit of {}",
                    self.cfg.max_series_per_group
                )));
            }
            if self.cfg.consistency_check {
                let problem = match check::check_group(&next) {
                    Err(msg) => Some(msg),
                    Ok(()) => {
                        self.check_index(gid, base, &next, now, &mut claimed)
                            .await?
                    }
                };
                if let Some(msg) = problem {
                    self.release(gid, &claimed).await;
                    self.record_failure(gid, &w.labels, now, expires_at_ms)
                        .await?;
                    return Err(GatewayError::Inconsistent(msg));
                }
            }
            // Members to drop after the write: names gone from the group, and the old
            // type of re-typed names.
            let removed: Vec<(String, MetricType)> = base
                .map(|g| {
                    g.families
                        .iter()
                        .filter(|(n, f)| {
                            next.families.get(*n).map(|nf| nf.family.kind) != Some(f.family.kind)
                        })
                        .map(|(n, f)| (n.clone(), f.family.kind))
                        .collect()
                })
                .unwrap_or_default();
            match self.store(gid, next, version).await {
                Ok(_) => {
                    if self.cfg.consistency_check {
                        self.release(gid, &removed).await;
                    }
                    return Ok(());
                }
                Err((StoreError::Conflict(_), tried)) => {
                    // Someone else (another process) changed the group: re-read, redo
                    // with the pushed families taken back from what we tried.
                    pushed = tried
                        .families
                        .into_iter()
                        .filter(|(n, _)| pushed_names.contains(n))
                        .map(|(n, f)| (n, f.family))
                        .collect();
                    cur = self.load(gid).await?;
                    // Claims stay valid for the retry only for names still new; the
                    // retry re-evaluates and `claimed` prevents double counting.
                }
                Err((e, _)) => {
                    self.release(gid, &claimed).await;
                    return Err(e.into());
                }
            }
        }
        self.release(gid, &claimed).await;
        Err(GatewayError::Contention(format!("{:?}", w.labels)))
    }

    async fn delete_locked(&self, gid: &str) -> Result<(), GatewayError> {
        let mut cur = match self.cache_get(gid) {
            Some(c) => Some(c),
            None => self.load(gid).await?,
        };
        for _ in 0..MAX_ATTEMPTS {
            let Some(c) = cur else { return Ok(()) };
            match self.delete_item(gid, c.version).await {
                Ok(()) => {
                    self.forget_deleted(gid, &c).await;
                    return Ok(());
                }
                Err(StoreError::Conflict(_)) => cur = self.load(gid).await?,
                Err(e) => return Err(e.into()),
            }
        }
        Err(GatewayError::Contention(gid.to_string()))
    }

    /// Sets `push_failure_time_seconds` of the group (creating it, with a zero push
    /// time, when it does not exist), as the original does for a rejected push.
    async fn record_failure(
        &self,
        gid: &str,
        key: &GroupingKey,
        now: Millis,
        exp: Option<Millis>,
    ) -> Result<(), GatewayError> {
        let mut cur = match self.cache_get(gid) {
            Some(c) => Some(c),
            None => self.load(gid).await?,
        };
        for _ in 0..MAX_ATTEMPTS {
            let (mut g, version) = match &cur {
                Some(c) => (c.group.clone(), c.version),
                None => {
                    let mut g = Group::new(key.clone());
                    g.push_set_ms = now;
                    g.expires_at_ms = exp;
                    (g, 0)
                }
            };
            g.failure_ms = Some(now);
            g.failure_set_ms = now;
            match self.store(gid, g, version).await {
                Ok(_) => return Ok(()),
                Err((StoreError::Conflict(_), _)) => cur = self.load(gid).await?,
                Err((e, _)) => return Err(e.into()),
            }
        }
        Err(GatewayError::Contention(gid.to_string()))
    }

    /// Cross-group check through the index for names the group gains (or re-types):
    /// writes their member items (recorded in `claimed`, so a failed push can drop
    /// them again), then looks for live holders of conflicting types. Returns a
    /// problem message, if any.
    async fn check_index(
        &self,
        gid: &str,
        base: Option<&Group>,
        next: &Group,
        now: Millis,
        claimed: &mut Vec<(String, MetricType)>,
    ) -> Result<Option<String>, GatewayError> {
        let changed: Vec<(&String, MetricType)> = next
            .families
            .iter()
            .filter(|(name, f)| {
                base.and_then(|g| g.families.get(*name))
                    .map(|f| f.family.kind)
                    != Some(f.family.kind)
            })
            .map(|(name, f)| (name, f.family.kind))
            .collect();
        if changed.is_empty() {
            return Ok(None);
        }
        // Within this process, claims of the same names serialise (the first pusher
        // wins, as in the original); across processes the member protocol decides.
        let mut lock_names: Vec<String> = changed
            .iter()
            .flat_map(|(n, k)| {
                std::iter::once(format!("name#{n}")).chain(
                    related_names(n, *k)
                        .into_iter()
                        .map(|r| format!("name#{r}")),
                )
            })
            .collect();
        lock_names.sort();
        lock_names.dedup();
        let mut guards = Vec::with_capacity(lock_names.len());
        for l in &lock_names {
            guards.push((l.as_str(), self.lock_group(l).await));
        }
        let r = self.check_names(gid, &changed, next, now, claimed).await;
        for (l, (m, g)) in guards.into_iter().rev() {
            self.unlock_group(l, m, g);
        }
        r
    }

    async fn check_names(
        &self,
        gid: &str,
        changed: &[(&String, MetricType)],
        next: &Group,
        now: Millis,
        claimed: &mut Vec<(String, MetricType)>,
    ) -> Result<Option<String>, GatewayError> {
        let puts = changed
            .iter()
            .map(|(name, kind)| index::put_member(&*self.kv, name, *kind, gid, now));
        for r in futures::future::join_all(puts).await {
            r?;
        }
        for (name, kind) in changed {
            let c = ((*name).clone(), *kind);
            if !claimed.contains(&c) {
                claimed.push(c);
            }
        }
        // Every probe (name, type that would conflict, message), looked up at once:
        // the partitions are empty unless there is a conflict (one round trip on
        // DynamoDB instead of one per probe).
        let mut probes: Vec<(String, MetricType, String)> = Vec::new();
        for (name, kind) in changed {
            for other in index::ALL_TYPES.into_iter().filter(|k| k != kind) {
                let msg = format!(
                    "gathered metric family {name} has type {} but should have {}",
                    kind.proto_name(),
                    other.proto_name()
                );
                probes.push(((*name).clone(), other, msg));
            }
            for related in related_names(name, *kind) {
                if next.families.contains_key(&related) {
                    continue; // checked locally
                }
                for k in index::ALL_TYPES {
                    // Only types that would collide are worth a look.
                    if let Some(msg) =
                        suffix_collision(name, *kind, |n| (n == related).then_some(k))
                    {
                        probes.push((related.clone(), k, msg));
                    }
                }
            }
        }
        let found = futures::future::join_all(
            probes
                .iter()
                .map(|(n, k, _)| self.live_holder(n, *k, gid, now)),
        )
        .await;
        for ((_, _, msg), held) in probes.into_iter().zip(found) {
            if held? {
                return Ok(Some(msg));
            }
        }
        self.check_bundled(gid, changed, now).await
    }

    /// Bundled groups (the probe's) are not in the type index: the names a push gains
    /// are checked against every live one directly, so a push cannot take a probe
    /// family's name with another type (the original, which stores the probe's groups
    /// like any other, answers 400 for it too).
    async fn check_bundled(
        &self,
        gid: &str,
        changed: &[(&String, MetricType)],
        now: Millis,
    ) -> Result<Option<String>, GatewayError> {
        for bundle in self.load_bundles().await? {
            for (bgid, c) in &bundle.groups {
                if bgid == gid || !c.group.live(now) {
                    continue;
                }
                let lookup = |n: &str| c.group.families.get(n).map(|f| f.family.kind);
                for (name, kind) in changed {
                    if let Some(held) = lookup(name).filter(|held| held != kind) {
                        return Ok(Some(format!(
                            "gathered metric family {name} has type {} but should have {}",
                            kind.proto_name(),
                            held.proto_name()
                        )));
                    }
                    if let Some(msg) = suffix_collision(name, *kind, lookup) {
                        return Ok(Some(msg));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Whether a live group other than `gid` holds `name` with type `kind`. Members
    /// whose group does not hold it count while in flight and are deleted once stale.
    async fn live_holder(
        &self,
        name: &str,
        kind: MetricType,
        gid: &str,
        now: Millis,
    ) -> Result<bool, GatewayError> {
        for m in index::members(&*self.kv, name, kind).await? {
            if m.group == gid {
                continue;
            }
            let held = match self.cache_get(&m.group) {
                Some(c) => Some(c),
                None => self.load(&m.group).await?,
            }
            .filter(|c| c.group.live(now))
            .and_then(|c| c.group.families.get(name).map(|f| f.family.kind));
            if held == Some(kind) || (held.is_none() && m.at > now - IN_FLIGHT_MS) {
                return Ok(true);
            }
            if m.at <= now - IN_FLIGHT_MS {
                let _ = index::delete_member(&*self.kv, name, kind, &m.group).await;
            }
        }
        Ok(false)
    }

    /// Drops this group's member items.
    async fn release(&self, gid: &str, names: &[(String, MetricType)]) {
        let dels = names
            .iter()
            .map(|(n, k)| index::delete_member(&*self.kv, n, *k, gid));
        for ((name, _), r) in names.iter().zip(futures::future::join_all(dels).await) {
            if let Err(e) = r {
                // A stale member is harmless: the verifying path deletes it.
                tracing::warn!(metric = %name, error = %e, "could not release metric index member");
            }
        }
    }

    /// Every live series as a Prometheus scrape of the gateway with
    /// `honor_labels: true` ingests it (grouping labels applied; empty values absent),
    /// including `push_time_seconds` and `push_failure_time_seconds`.
    pub async fn snapshot(&self, now: Millis) -> Result<Vec<(Labels, f64)>, GatewayError> {
        let groups = self.live_groups(now).await?;
        let mut out = Vec::with_capacity(groups.iter().map(|c| c.series().len()).sum());
        for c in &groups {
            out.extend(c.series().iter().cloned());
        }
        Ok(out)
    }

    /// [`snapshot`](Self::snapshot) in two parts: the series of pushed groups, and those
    /// of the probe runs' bundled groups (what a prometheus.yml's Pushgateway job would
    /// scrape is the first part only).
    pub async fn snapshot_parts(
        &self,
        now: Millis,
    ) -> Result<(Vec<(Labels, f64)>, Vec<(Labels, f64)>), GatewayError> {
        let groups = self.live_groups(now).await?;
        let (mut pushed, mut bundled) = (Vec::new(), Vec::new());
        for c in &groups {
            let out = if c.bundled { &mut bundled } else { &mut pushed };
            out.extend(c.series().iter().cloned());
        }
        Ok((pushed, bundled))
    }

    /// `GET /metrics`: all live groups in text format, one HELP/TYPE per family.
    pub async fn metrics_text(&self, now: Millis) -> Result<String, GatewayError> {
        let groups = self.live_groups(now).await?;
        struct Fam<'a> {
            help: Option<&'a str>,
            kind: MetricType,
            chunks: Vec<&'a str>,
        }
        let mut fams: BTreeMap<&str, Fam> = BTreeMap::new();
        let mut size = 0;
        for c in &groups {
            for r in c.rendered() {
                let e = fams.entry(r.name.as_str()).or_insert_with(|| Fam {
                    help: r.help.as_deref(),
                    kind: r.kind,
                    chunks: Vec::new(),
                });
                if e.kind != r.kind {
                    tracing::warn!(metric = %r.name, "inconsistent types across groups (consistency check off); skipping");
                    continue;
                }
                if e.help.is_none() {
                    e.help = r.help.as_deref();
                }
                size += r.samples.len();
                e.chunks.push(&r.samples);
            }
        }
        let mut out = String::with_capacity(size + fams.len() * 64);
        for (name, f) in fams {
            if let Some(h) = f.help {
                out.push_str("# HELP ");
                out.push_str(name);
                out.push(' ');
                for ch in h.chars() {
                    match ch {
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        c => out.push(c),
                    }
                }
                out.push('\n');
            }
            out.push_str("# TYPE ");
            out.push_str(name);
            out.push(' ');
            out.push_str(f.kind.as_str());
            out.push('\n');
            for c in f.chunks {
                out.push_str(c);
            }
        }
        let bad = self.undecodable_records();
        if bad > 0 {
            out.push_str(&format!(
                "# HELP argus_pushgateway_undecodable_records_total Stored metric groups and bundles that could not be decoded (left as stored).\n# TYPE argus_pushgateway_undecodable_records_total counter\nargus_pushgateway_undecodable_records_total {bad}\n"
            ));
        }
        Ok(out)
    }

    /// Stored groups and bundles that could not be decoded since this gateway started.
    pub fn undecodable_records(&self) -> u64 {
        self.undecodable.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn note_undecodable(&self) {
        self.undecodable
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// `GET /api/v1/metrics` body.
    pub async fn metrics_json(&self, now: Millis) -> Result<Value, GatewayError> {
        let groups = self.live_groups(now).await?;
        let mut data = Vec::with_capacity(groups.len());
        for c in &groups {
            let g = &c.group;
            let mut obj = Map::new();
            obj.insert("labels".into(), json!(g.key));
            obj.insert(
                "last_push_successful".into(),
                json!(g.last_push_successful()),
            );
            for (f, at) in all_families(g) {
                let mut metrics = Vec::with_capacity(f.metrics.len());
                for m in &f.metrics {
                    let mut pairs = Vec::new();
                    merged_labels(&mut pairs, &m.labels, g);
                    let labels: BTreeMap<&str, &str> = pairs.into_iter().collect();
                    let mut mo = Map::new();
                    mo.insert("labels".into(), json!(labels));
                    match &m.value {
                        MetricValue::Counter(v)
                        | MetricValue::Gauge(v)
                        | MetricValue::Untyped(v) => {
                            mo.insert("value".into(), json!(argus_expfmt::format_g(*v)));
                        }
                        MetricValue::Summary {
                            quantiles,
                            sum,
                            count,
                        } => {
                            let q: BTreeMap<String, String> = quantiles
                                .iter()
                                .map(|(q, v)| {
                                    (
                                        argus_expfmt::format_float(*q),
                                        argus_expfmt::format_float(*v),
                                    )
                                })
                                .collect();
                            mo.insert("quantiles".into(), json!(q));
                            mo.insert("count".into(), json!(count_str(*count)));
                            mo.insert("sum".into(), json!(argus_expfmt::format_float(*sum)));
                        }
                        MetricValue::Histogram {
                            buckets,
                            sum,
                            count,
                        } => {
                            let b: BTreeMap<String, String> = buckets
                                .iter()
                                .map(|(le, c)| (argus_expfmt::format_float(*le), count_str(*c)))
                                .collect();
                            mo.insert("buckets".into(), json!(b));
                            mo.insert("count".into(), json!(count_str(*count)));
                            mo.insert("sum".into(), json!(argus_expfmt::format_float(*sum)));
                        }
                    }
                    metrics.push(Value::Object(mo));
                }
                let mut fo = Map::new();
                fo.insert("time_stamp".into(), json!(rfc3339_nano(at)));
                fo.insert("type".into(), json!(f.kind.proto_name()));
                if let Some(h) = &f.help {
                    fo.insert("help".into(), json!(h));
                }
                fo.insert("metrics".into(), Value::Array(metrics));
                obj.insert(f.name.clone(), Value::Object(fo));
            }
            data.push(Value::Object(obj));
        }
        Ok(json!({"status": "success", "data": data}))
    }

    /// `PUT /api/v1/admin/wipe`: deletes every group and the metric index.
    pub async fn wipe(&self) -> Result<(), GatewayError> {
        // No flush may write a wiped group back.
        let _no_flush = self.flushing.lock().await;
        for item in self.kv.scan(Table::Metrics).await? {
            match self
                .kv
                .delete(Table::Metrics, &item.pk, &item.sk, Cond::Always)
                .await
            {
                Ok(()) | Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.bundles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.dirty.lock().unwrap_or_else(|e| e.into_inner()).clear();
        Ok(())
    }
}

/// Puts what a listing read into a cache, except where the cache meanwhile got a newer
/// version (written by this process while the listing ran).
pub(crate) fn keep_newer<T>(
    cache: &mut HashMap<String, Arc<T>>,
    listed: HashMap<String, Arc<T>>,
    version: impl Fn(&T) -> u64,
) {
    for (k, v) in listed {
        match cache.get(&k) {
            Some(existing) if version(existing) >= version(&v) => {}
            _ => {
                cache.insert(k, v);
            }
        }
    }
}

/// The stored item of a pushed group.
fn group_item(gid: &str, g: &Group) -> Item {
    let mut item = Item::new(GROUP_PK, gid);
    item.data = Some(group::encode(g));
    item.expires_at = g
        .expires_at_ms
        .map(|ms| UnixSecs(UnixSecs::floor(ms).0 + 1));
    item.attrs.insert(
        "job".into(),
        json!(g.key.get("job").cloned().unwrap_or_default()),
    );
    item.attrs.insert("labels".into(), json!(g.key));
    item
}

fn count_str(c: f64) -> String {
    if c >= 0.0 && c.fract() == 0.0 && c < 1.8446744073709552e19 {
        (c as u64).to_string()
    } else {
        argus_expfmt::format_float(c)
    }
}

/// Go's `time.Time` JSON form (RFC 3339 with nanoseconds, trailing zeros trimmed).
pub(crate) fn rfc3339_nano(ms: Millis) -> String {
    argus_model::time::to_datetime(ms).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}
