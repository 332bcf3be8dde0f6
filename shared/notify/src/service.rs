//! The notifier service: Alertmanager's alert provider, dispatcher and notification
//! pipeline with all state in the store, so any invocation continues where the last
//! one stopped.
//!
//! Items (all under fixed partitions so one query loads a table's share):
//! - `alerts`  pk `am#alerts`, sk = fingerprint: the merged alert (`StoredAlert`).
//! - `alerts`  pk `am#groups`, sk = `<route id>#<hash(group key)>`: aggregation group
//!   timer (`next_flush`, `has_flushed`) and the resolved alerts already flushed out.
//! - `nflog`   pk `am#nflog`, sk = `<receiver>/<integration>/<i>#<hash(group key)>`: last
//!   notified firing/resolved sets and the in-flight claim (owner, lease).
//! - `silences` pk `am`, sk = silence id.

use crate::alert::{alert_order, AlertError, StoredAlert};
use crate::config::Config;
use crate::dedup::{needs_update, NflogEntry, Reason};
use crate::inhibit::inhibited_by;
use crate::render::Renderer;
use crate::route::Route;
use crate::silence::{Silence, SilenceError};
use crate::sink::{build_integrations, Clients, Integration, Notification, SinkError};
use crate::timeinterval::any_contains;
use argus_model::{Alert, Cond, Item, Kv, Labels, Millis, StoreError, Table};
use futures::future::{BoxFuture, FutureExt};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub const ALERTS_PK: &str = "am#alerts";
pub const GROUPS_PK: &str = "am#groups";
pub const NFLOG_PK: &str = "am#nflog";
pub const SILENCES_PK: &str = "am";

/// How long resolved alerts and expired silences are kept (Alertmanager: 120h for
/// silences and the notification log).
const RETENTION_MS: i64 = 120 * 3600 * 1000;
const ALERT_RETENTION_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored item {key} is corrupt: {message}")]
    Corrupt { key: String, message: String },
    #[error(transparent)]
    Silence(#[from] SilenceError),
    #[error("silence {0} not found")]
    SilenceNotFound(String),
}

impl NotifyError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, NotifyError::Store(e) if e.is_retryable())
    }
}

/// Tunables; the defaults suit a Lambda with a 30 s timeout.
#[derive(Clone, Debug)]
pub struct NotifierOptions {
    /// How long a claimed notification belongs to its sender before another invocation
    /// may take it over (in the `now` timeline of `tick`).
    pub lease: Duration,
    /// Wall-clock budget for all attempts of one notification (retry with backoff).
    pub send_budget: Duration,
    /// First retry backoff (doubles up to 5 s, with jitter).
    pub backoff: Duration,
    /// Groups flushed concurrently in one tick.
    pub concurrency: usize,
    /// Bearer token required by the HTTP API (all but health checks), if set.
    pub api_token: Option<String>,
}

impl Default for NotifierOptions {
    fn default() -> Self {
        NotifierOptions {
            lease: Duration::from_secs(60),
            send_budget: Duration::from_secs(20),
            backoff: Duration::from_millis(200),
            concurrency: 16,
            api_token: None,
        }
    }
}

/// Result of an ingest: how many alerts were stored and which were rejected.
#[derive(Debug, Default, Clone, Serialize)]
pub struct IngestReport {
    pub accepted: usize,
    #[serde(skip)]
    pub rejected: Vec<AlertError>,
}

/// What happened to one (receiver integration, group) in a tick.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Sent {
        reason: Reason,
        attempts: u32,
    },
    Failed {
        reason: Reason,
        attempts: u32,
        error: String,
    },
    /// The dedup stage decided nothing is due.
    Suppressed {
        reason: Reason,
    },
    /// Everything resolved and the integration does not send resolved: logged only.
    Logged {
        reason: Reason,
    },
    /// Every alert of the group was inhibited, silenced or in a muted time.
    Muted {
        why: String,
    },
    /// Another invocation holds the claim on this notification.
    InFlight {
        owner: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotificationReport {
    pub receiver: String,
    /// `webhook[0]`, `sns[1]`...
    pub integration: String,
    pub group_key: String,
    pub firing: usize,
    pub resolved: usize,
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl fmt::Display for NotificationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match &self.outcome {
            Outcome::Sent { reason, attempts } => {
                format!("sent ({reason:?}, {attempts} attempt(s))")
            }
            Outcome::Failed {
                reason,
                attempts,
                error,
            } => format!("FAILED ({reason:?}, {attempts} attempt(s)): {error}"),
            Outcome::Suppressed { reason } => format!("not sent ({reason:?})"),
            Outcome::Logged { reason } => {
                format!("logged without sending ({reason:?}, send_resolved off)")
            }
            Outcome::Muted { why } => format!("muted ({why})"),
            Outcome::InFlight { owner } => format!("in flight in another invocation ({owner})"),
        };
        write!(
            f,
            "{} {} {}: {} firing, {} resolved: {}",
            self.receiver, self.integration, self.group_key, self.firing, self.resolved, what
        )
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TickReport {
    pub groups: usize,
    pub groups_due: usize,
    pub notifications: Vec<NotificationReport>,
    /// Problems that did not stop the tick (corrupt items, store conflicts...).
    pub errors: Vec<String>,
}

impl TickReport {
    pub fn sent(&self) -> impl Iterator<Item = &NotificationReport> {
        self.notifications
            .iter()
            .filter(|n| matches!(n.outcome, Outcome::Sent { .. }))
    }
    pub fn failed(&self) -> impl Iterator<Item = &NotificationReport> {
        self.notifications
            .iter()
            .filter(|n| matches!(n.outcome, Outcome::Failed { .. }))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct GroupState {
    route: String,
    route_key: String,
    key: String,
    labels: Labels,
    next_flush: Millis,
    has_flushed: bool,
    /// Resolved alerts flushed out of the group: fingerprint → their `updated_at` then.
    #[serde(default)]
    removed: BTreeMap<String, Millis>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct NflogRecord {
    group_key: String,
    receiver: String,
    #[serde(default)]
    firing: Vec<String>,
    #[serde(default)]
    resolved: Vec<String>,
    /// When the last notification was sent; absent: never.
    #[serde(default)]
    sent_at: Option<Millis>,
    #[serde(default)]
    intent: Option<Intent>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Intent {
    owner: String,
    lease_until: Millis,
}

impl NflogRecord {
    fn entry(&self) -> Option<NflogEntry> {
        let parse = |v: &[String]| {
            v.iter()
                .filter_map(|h| u64::from_str_radix(h, 16).ok())
                .collect()
        };
        self.sent_at.map(|t| NflogEntry {
            firing: parse(&self.firing),
            resolved: parse(&self.resolved),
            timestamp: t,
        })
    }
}

fn hex_set(s: &BTreeSet<u64>) -> Vec<String> {
    s.iter().map(|x| format!("{x:016x}")).collect()
}

fn hash_hex(s: &str) -> String {
    hex::encode(&Sha256::digest(s.as_bytes())[..16])
}

fn to_attrs<T: Serialize>(v: &T) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    }
}

fn from_item<T: for<'de> Deserialize<'de>>(item: &Item) -> Result<T, NotifyError> {
    serde_json::from_value(serde_json::Value::Object(item.attrs.clone())).map_err(|e| {
        NotifyError::Corrupt {
            key: format!("{}/{}", item.pk, item.sk),
            message: e.to_string(),
        }
    })
}

fn secs(ms: Millis) -> i64 {
    ms.div_euclid(1000)
}

/// Alertmanager as a library: see the module docs.
pub struct Notifier {
    kv: Arc<dyn Kv>,
    config: Arc<Config>,
    integrations: HashMap<String, Vec<Integration>>,
    external_url: String,
    opts: NotifierOptions,
    instance: String,
    ticks: AtomicU64,
    started: std::time::Instant,
}

impl Notifier {
    /// Builds the notifier once (cold start): every receiver's integrations from the
    /// configuration, sharing the given clients.
    pub fn new(
        kv: Arc<dyn Kv>,
        config: Config,
        clients: Clients,
        external_url: impl Into<String>,
    ) -> Notifier {
        let renderer = Arc::new(Renderer::new(&config.template_files).unwrap_or_else(|e| {
            tracing::error!(error = %e, "notification templates do not parse; using the defaults");
            Renderer::default()
        }));
        let integrations = build_integrations(&config, &clients, &renderer);
        Notifier::with_integrations(kv, config, integrations, external_url)
    }

    /// Same with integrations built by the caller (custom sinks).
    pub fn with_integrations(
        kv: Arc<dyn Kv>,
        config: Config,
        integrations: Vec<(String, Vec<Integration>)>,
        external_url: impl Into<String>,
    ) -> Notifier {
        let instance = format!("{:08x}", rand::random::<u32>());
        Notifier {
            kv,
            config: Arc::new(config),
            integrations: integrations.into_iter().collect(),
            external_url: external_url.into().trim_end_matches('/').to_string(),
            opts: NotifierOptions::default(),
            instance,
            ticks: AtomicU64::new(0),
            started: std::time::Instant::now(),
        }
    }

    pub fn with_options(mut self, opts: NotifierOptions) -> Self {
        self.opts = opts;
        self
    }

    pub fn options(&self) -> &NotifierOptions {
        &self.opts
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn external_url(&self) -> &str {
        &self.external_url
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    // ------------------------------------------------------------------ alerts

    /// Alertmanager's `POST /api/v2/alerts`: validates, defaults the times, merges by
    /// fingerprint into the store, and starts aggregation groups (their `group_wait`
    /// counts from here). Invalid alerts are reported; the valid ones are stored.
    pub async fn ingest(
        &self,
        alerts: Vec<Alert>,
        now: Millis,
    ) -> Result<IngestReport, NotifyError> {
        let rt = self.config.resolve_timeout.as_millis() as i64;
        let mut report = IngestReport::default();
        let mut batch: BTreeMap<u64, StoredAlert> = BTreeMap::new();
        for (i, a) in alerts.into_iter().enumerate() {
            match StoredAlert::from_posted(i, a, now, rt) {
                Ok(s) => {
                    let fp = s.fingerprint();
                    let merged = StoredAlert::merge_into(batch.get(&fp), s);
                    batch.insert(fp, merged);
                }
                Err(e) => report.rejected.push(e),
            }
        }
        report.accepted = batch.len();
        // Per alert: merge into the store, then make sure its aggregation groups exist
        // (pipelined: no barrier between the two steps across the batch).
        let futs: Vec<BoxFuture<'_, Result<(), NotifyError>>> = batch
            .into_values()
            .map(|a| {
                async move {
                    let stored = self.put_alert(a, now).await?;
                    for r in self.config.route.matching(&stored.labels) {
                        let gl = r.group_labels(&stored.labels);
                        let key = r.group_key(&gl);
                        self.ensure_group(r, key, gl, stored.starts_at, now).await?;
                    }
                    Ok(())
                }
                .boxed()
            })
            .collect();
        bounded(futs, self.opts.concurrency)
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        Ok(report)
    }

    async fn put_alert(&self, new: StoredAlert, now: Millis) -> Result<StoredAlert, NotifyError> {
        let sk = new.labels.fingerprint_hex();
        for _ in 0..8 {
            let old = self.kv.get(Table::Alerts, ALERTS_PK, &sk).await?;
            let (merged, cond) = match &old {
                Some(item) => {
                    let o: Option<StoredAlert> = from_item(item).ok();
                    (
                        StoredAlert::merge_into(o.as_ref(), new.clone()),
                        Cond::Version(item.version),
                    )
                }
                None => (new.clone(), Cond::NotExists),
            };
            let mut item = Item::new(ALERTS_PK, sk.clone());
            item.attrs = to_attrs(&merged);
            item.expires_at = Some(secs(merged.ends_at.max(now) + ALERT_RETENTION_MS));
            match self.kv.put(Table::Alerts, item, cond).await {
                Ok(_) => return Ok(merged),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Transient(format!("alert {sk}: too many concurrent updates")).into())
    }

    async fn ensure_group(
        &self,
        r: &Route,
        key: String,
        labels: Labels,
        starts: Millis,
        now: Millis,
    ) -> Result<(), NotifyError> {
        let sk = format!("{}#{}", r.id, hash_hex(&key));
        let gw = r.group_wait.as_millis() as i64;
        // An alert older than group_wait flushes a new group at once.
        let old_alert = starts + gw < now;
        for _ in 0..8 {
            let item = self.kv.get(Table::Alerts, GROUPS_PK, &sk).await?;
            let (state, cond) = match item {
                None => {
                    let st = GroupState {
                        route: r.id.clone(),
                        route_key: r.key.clone(),
                        key: key.clone(),
                        labels: labels.clone(),
                        next_flush: if old_alert { now } else { now + gw },
                        has_flushed: false,
                        removed: BTreeMap::new(),
                    };
                    (st, Cond::NotExists)
                }
                Some(item) => {
                    let mut st: GroupState = from_item(&item)?;
                    if !st.has_flushed && old_alert && st.next_flush > now {
                        st.next_flush = now;
                        (st, Cond::Version(item.version))
                    } else {
                        return Ok(());
                    }
                }
            };
            let mut item = Item::new(GROUPS_PK, sk.clone());
            item.attrs = to_attrs(&state);
            match self.kv.put(Table::Alerts, item, cond).await {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Every stored alert (live items), resolved ones included.
    pub async fn stored_alerts(&self, now: Millis) -> Result<Vec<StoredAlert>, NotifyError> {
        let items = self.kv.query(Table::Alerts, ALERTS_PK, None).await?;
        let mut out = Vec::with_capacity(items.len());
        for it in items.iter().filter(|i| i.live(now)) {
            match from_item::<StoredAlert>(it) {
                Ok(a) => out.push(a),
                Err(e) => tracing::warn!(error = %e, "skipping corrupt alert item"),
            }
        }
        Ok(out)
    }

    // ------------------------------------------------------------------ silences

    pub async fn silences(&self, now: Millis) -> Result<Vec<Silence>, NotifyError> {
        let items = self.kv.query(Table::Silences, SILENCES_PK, None).await?;
        let mut out = Vec::new();
        for it in items.iter().filter(|i| i.live(now)) {
            match from_item::<Silence>(it) {
                Ok(s) => out.push(s),
                Err(e) => tracing::warn!(error = %e, "skipping corrupt silence item"),
            }
        }
        Ok(out)
    }

    pub async fn silence(&self, id: &str, now: Millis) -> Result<Option<Silence>, NotifyError> {
        match self.kv.get(Table::Silences, SILENCES_PK, id).await? {
            Some(it) if it.live(now) => Ok(Some(from_item(&it)?)),
            _ => Ok(None),
        }
    }

    async fn write_silence(&self, s: &Silence, cond: Cond) -> Result<(), NotifyError> {
        let mut item = Item::new(SILENCES_PK, s.id.clone());
        item.attrs = to_attrs(s);
        item.expires_at = Some(secs(s.ends_at + RETENTION_MS));
        self.kv.put(Table::Silences, item, cond).await?;
        Ok(())
    }

    /// Creates or updates a silence (`POST /api/v2/silences`); returns its id. As in
    /// Alertmanager, a change that cannot be made in place expires the old silence and
    /// creates a new one.
    pub async fn upsert_silence(&self, mut s: Silence, now: Millis) -> Result<String, NotifyError> {
        if s.starts_at < now {
            s.starts_at = now;
        }
        s.updated_at = now;
        s.validate()?;
        if s.ends_at <= now {
            return Err(SilenceError("end time can't be in the past".into()).into());
        }
        if !s.id.is_empty() {
            let item = self.kv.get(Table::Silences, SILENCES_PK, &s.id).await?;
            let Some(item) = item.filter(|i| i.live(now)) else {
                return Err(NotifyError::SilenceNotFound(s.id));
            };
            let old: Silence = from_item(&item)?;
            if old.can_update(&s, now) {
                self.write_silence(&s, Cond::Version(item.version)).await?;
                return Ok(s.id);
            }
            if old.state(now) != crate::silence::SilenceState::Expired {
                self.expire_silence(&old.id, now).await?;
            }
        }
        s.id = uuid::Uuid::new_v4().to_string();
        self.write_silence(&s, Cond::NotExists).await?;
        Ok(s.id)
    }

    /// `DELETE /api/v2/silence/{id}`: ends it now (pending ones end before they start).
    pub async fn expire_silence(&self, id: &str, now: Millis) -> Result<(), NotifyError> {
        for _ in 0..8 {
            let item = self.kv.get(Table::Silences, SILENCES_PK, id).await?;
            let Some(item) = item.filter(|i| i.live(now)) else {
                return Err(NotifyError::SilenceNotFound(id.into()));
            };
            let mut s: Silence = from_item(&item)?;
            match s.state(now) {
                crate::silence::SilenceState::Expired => {
                    return Err(SilenceError(format!("silence {id} already expired")).into())
                }
                crate::silence::SilenceState::Pending => {
                    s.starts_at = now;
                    s.ends_at = now;
                }
                crate::silence::SilenceState::Active => s.ends_at = now,
            }
            s.updated_at = now;
            match self.write_silence(&s, Cond::Version(item.version)).await {
                Err(NotifyError::Store(StoreError::Conflict(_))) => continue,
                r => return r,
            }
        }
        Err(StoreError::Transient(format!("silence {id}: too many concurrent updates")).into())
    }

    // ------------------------------------------------------------------ status of alerts

    /// Receivers (route order, deduplicated) an alert goes to.
    pub fn receivers_of(&self, labels: &Labels) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for r in self.config.route.matching(labels) {
            if !v.contains(&r.receiver) {
                v.push(r.receiver.clone());
            }
        }
        v
    }

    /// Ids of the silences and fingerprints of the alerts muting an alert now.
    pub fn mutes(
        &self,
        a: &StoredAlert,
        all: &[StoredAlert],
        silences: &[Silence],
        now: Millis,
    ) -> (Vec<String>, Vec<String>) {
        (
            crate::silence::silenced_by(silences, &a.labels, now),
            inhibited_by(&self.config.inhibit_rules, all, &a.labels, now),
        )
    }

    // ------------------------------------------------------------------ tick

    /// Runs every aggregation group due at `now` through inhibit → time mute → silence →
    /// dedup → claim → send (retry, backoff) → confirm, and advances the group timers.
    pub async fn tick(&self, now: Millis) -> Result<TickReport, NotifyError> {
        let tick_no = self.ticks.fetch_add(1, Ordering::Relaxed);
        let owner = format!("{}-{}", self.instance, tick_no);
        let groups = self.kv.query(Table::Alerts, GROUPS_PK, None).await?;
        let alerts = self.stored_alerts(now).await?;
        let silences = self.silences(now).await?;
        let mut report = TickReport {
            groups: groups.len(),
            ..Default::default()
        };

        // Route every alert once: (route id, group key) → alert indexes.
        let mut index: HashMap<(String, String), Vec<usize>> = HashMap::new();
        for (i, a) in alerts.iter().enumerate() {
            for r in self.config.route.matching(&a.labels) {
                let key = r.group_key(&r.group_labels(&a.labels));
                index.entry((r.id.clone(), key)).or_default().push(i);
            }
        }
        let mut known: BTreeSet<(String, String)> = BTreeSet::new();
        let mut due = Vec::new();
        for item in groups {
            match from_item::<GroupState>(&item) {
                Ok(st) => {
                    known.insert((st.route.clone(), st.key.clone()));
                    if st.next_flush <= now {
                        due.push((item, st));
                    }
                }
                Err(e) => report.errors.push(e.to_string()),
            }
        }
        // Firing alerts whose group state is missing (a failed write, a deleted group):
        // start their group as an insert would.
        for ((rid, key), idx) in &index {
            if known.contains(&(rid.clone(), key.clone()))
                || idx.iter().all(|&i| alerts[i].resolved(now))
            {
                continue;
            }
            if let Some(r) = self.config.route.by_id(rid) {
                let a = &alerts[idx[0]];
                let starts = idx
                    .iter()
                    .map(|&i| alerts[i].starts_at)
                    .min()
                    .unwrap_or(now);
                if let Err(e) = self
                    .ensure_group(r, key.clone(), r.group_labels(&a.labels), starts, now)
                    .await
                {
                    report.errors.push(format!("group {key}: {e}"));
                }
            }
        }
        report.groups_due = due.len();
        let ctx = TickCtx {
            alerts: &alerts,
            silences: &silences,
            index: &index,
            owner: &owner,
            now,
        };
        let futs: Vec<BoxFuture<'_, _>> = due
            .into_iter()
            .map(|(item, st)| self.flush_group(&ctx, item, st).boxed())
            .collect();
        let results: Vec<(Vec<NotificationReport>, Vec<String>)> =
            bounded(futs, self.opts.concurrency).await;
        for (n, e) in results {
            report.notifications.extend(n);
            report.errors.extend(e);
        }
        report.notifications.sort_by(|a, b| {
            (&a.group_key, &a.receiver, &a.integration).cmp(&(
                &b.group_key,
                &b.receiver,
                &b.integration,
            ))
        });
        Ok(report)
    }

    /// Deletes an aggregation group's item if nobody changed it since it was read.
    async fn delete_group(&self, item: &Item) -> Result<(), StoreError> {
        self.kv
            .delete(
                Table::Alerts,
                GROUPS_PK,
                &item.sk,
                Cond::Version(item.version),
            )
            .await
    }

    async fn flush_group(
        &self,
        ctx: &TickCtx<'_>,
        item: Item,
        mut st: GroupState,
    ) -> (Vec<NotificationReport>, Vec<String>) {
        let now = ctx.now;
        let mut reports = Vec::new();
        let mut errors = Vec::new();
        let route = match self.config.route.by_id(&st.route) {
            Some(r) if r.key == st.route_key => r,
            _ => {
                // The configuration changed under this group: drop it (its alerts
                // start a new group on their route).
                if let Err(e) = self.delete_group(&item).await {
                    errors.push(format!("group {}: {e}", st.key));
                }
                return (reports, errors);
            }
        };
        let members: Vec<&StoredAlert> = ctx
            .index
            .get(&(st.route.clone(), st.key.clone()))
            .map(|v| v.iter().map(|&i| &ctx.alerts[i]).collect())
            .unwrap_or_default();
        let mut members: Vec<&StoredAlert> = members
            .into_iter()
            .filter(|a| {
                st.removed
                    .get(&a.labels.fingerprint_hex())
                    .is_none_or(|&u| a.updated_at > u)
            })
            .collect();
        if members.is_empty() {
            let _ = self.delete_group(&item).await;
            return (reports, errors);
        }
        members.sort_by(|a, b| alert_order(&a.labels, &b.labels));

        // Inhibit → time active/mute → silence.
        let mut list: Vec<StoredAlert> = Vec::new();
        let mut muted_why = BTreeSet::new();
        for a in &members {
            if !inhibited_by(&self.config.inhibit_rules, ctx.alerts, &a.labels, now).is_empty() {
                muted_why.insert("inhibited");
                continue;
            }
            list.push((*a).clone());
        }
        let intervals = |names: &[String]| -> bool {
            names.iter().any(|n| {
                self.config
                    .time_intervals
                    .get(n)
                    .is_some_and(|t| any_contains(t, now))
            })
        };
        if !route.active_time_intervals.is_empty()
            && !intervals(&route.active_time_intervals)
            && !list.is_empty()
        {
            list.clear();
            muted_why.insert("outside active_time_intervals");
        }
        if !route.mute_time_intervals.is_empty()
            && intervals(&route.mute_time_intervals)
            && !list.is_empty()
        {
            list.clear();
            muted_why.insert("in mute_time_intervals");
        }
        list.retain(|a| {
            let silenced = ctx.silences.iter().any(|s| s.mutes(&a.labels, now));
            if silenced {
                muted_why.insert("silenced");
            }
            !silenced
        });

        let firing: BTreeSet<u64> = list
            .iter()
            .filter(|a| !a.resolved(now))
            .map(|a| a.fingerprint())
            .collect();
        let resolved: BTreeSet<u64> = list
            .iter()
            .filter(|a| a.resolved(now))
            .map(|a| a.fingerprint())
            .collect();
        let mut ok = true;
        let mut in_flight = false;
        let integrations = self
            .integrations
            .get(&route.receiver)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for integ in integrations {
            let name = format!("{}[{}]", integ.kind, integ.index);
            let outcome = if list.is_empty() {
                Outcome::Muted {
                    why: muted_why.iter().copied().collect::<Vec<_>>().join(", "),
                }
            } else {
                match self
                    .notify_one(ctx, route, &st, integ, &list, &firing, &resolved)
                    .await
                {
                    Ok(o) => o,
                    Err(e) => Outcome::Failed {
                        reason: Reason::NothingChanged,
                        attempts: 0,
                        error: e.to_string(),
                    },
                }
            };
            match &outcome {
                Outcome::Failed { .. } => ok = false,
                Outcome::InFlight { .. } => in_flight = true,
                _ => {}
            }
            reports.push(NotificationReport {
                receiver: route.receiver.clone(),
                integration: name,
                group_key: st.key.clone(),
                firing: firing.len(),
                resolved: resolved.len(),
                outcome,
            });
        }
        if in_flight {
            // The claim holder advances the group; if it crashed, a later tick (after
            // its lease) finds the group still due and takes over.
            return (reports, errors);
        }
        let gi = route.group_interval.as_millis().max(1) as i64;
        st.next_flush += ((now - st.next_flush).div_euclid(gi) + 1) * gi;
        st.has_flushed = true;
        if ok {
            for a in &members {
                if a.resolved(now) {
                    st.removed.insert(a.labels.fingerprint_hex(), a.updated_at);
                }
            }
        }
        // Forget removals of alerts the store no longer has.
        let all_in_route: BTreeSet<String> = ctx
            .index
            .get(&(st.route.clone(), st.key.clone()))
            .map(|v| {
                v.iter()
                    .map(|&i| ctx.alerts[i].labels.fingerprint_hex())
                    .collect()
            })
            .unwrap_or_default();
        st.removed.retain(|fp, _| all_in_route.contains(fp));
        let empty = ok && members.iter().all(|a| a.resolved(now));
        let res = if empty {
            self.delete_group(&item).await
        } else {
            let mut next = Item::new(GROUPS_PK, item.sk.clone());
            next.attrs = to_attrs(&st);
            self.kv
                .put(Table::Alerts, next, Cond::Version(item.version))
                .await
                .map(|_| ())
        };
        match res {
            Ok(()) | Err(StoreError::Conflict(_)) => {}
            Err(e) => errors.push(format!("group {}: {e}", st.key)),
        }
        (reports, errors)
    }

    #[allow(clippy::too_many_arguments)]
    async fn notify_one(
        &self,
        ctx: &TickCtx<'_>,
        route: &Route,
        st: &GroupState,
        integ: &Integration,
        list: &[StoredAlert],
        firing: &BTreeSet<u64>,
        resolved: &BTreeSet<u64>,
    ) -> Result<Outcome, NotifyError> {
        let now = ctx.now;
        let sk = format!(
            "{}/{}/{}#{}",
            route.receiver,
            integ.kind,
            integ.index,
            hash_hex(&st.key)
        );
        let send_resolved = integ.sink.send_resolved();
        let expires = Some(secs(now + RETENTION_MS));
        for _ in 0..4 {
            let item = self.kv.get(Table::Nflog, NFLOG_PK, &sk).await?;
            let (mut rec, cond) = match &item {
                Some(it) => (
                    from_item::<NflogRecord>(it).unwrap_or_default(),
                    Cond::Version(it.version),
                ),
                None => (NflogRecord::default(), Cond::NotExists),
            };
            rec.group_key = st.key.clone();
            rec.receiver = route.receiver.clone();
            if let Some(i) = &rec.intent {
                if i.lease_until > now && i.owner != ctx.owner {
                    return Ok(Outcome::InFlight {
                        owner: i.owner.clone(),
                    });
                }
            }
            let entry = rec.entry();
            let decision = needs_update(
                entry.as_ref(),
                firing,
                resolved,
                send_resolved,
                route.repeat_interval,
                now,
            );
            if !decision.send {
                return Ok(Outcome::Suppressed {
                    reason: decision.reason,
                });
            }
            // Retry stage filter: without send_resolved only firing alerts go out.
            let to_send: Vec<StoredAlert> = if send_resolved {
                list.to_vec()
            } else {
                list.iter().filter(|a| !a.resolved(now)).cloned().collect()
            };
            let confirmed = |mut rec: NflogRecord| {
                rec.firing = hex_set(firing);
                rec.resolved = hex_set(resolved);
                rec.sent_at = Some(now);
                rec.intent = None;
                let mut it = Item::new(NFLOG_PK, sk.clone());
                it.attrs = to_attrs(&rec);
                it.expires_at = expires;
                it
            };
            if to_send.is_empty() {
                match self.kv.put(Table::Nflog, confirmed(rec), cond).await {
                    Ok(_) => {
                        return Ok(Outcome::Logged {
                            reason: decision.reason,
                        })
                    }
                    Err(StoreError::Conflict(_)) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            // Claim before sending.
            let dedup_id = hash_hex(&format!(
                "{sk}|{:?}|{}|{}",
                rec.sent_at,
                hex_set(firing).join(","),
                hex_set(resolved).join(",")
            ));
            let mut claim = rec.clone();
            claim.intent = Some(Intent {
                owner: ctx.owner.to_string(),
                lease_until: now + self.opts.lease.as_millis() as i64,
            });
            let mut it = Item::new(NFLOG_PK, sk.clone());
            it.attrs = to_attrs(&claim);
            it.expires_at = expires;
            let claimed_version = match self.kv.put(Table::Nflog, it, cond).await {
                Ok(v) => v,
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            let n = Notification {
                receiver: route.receiver.clone(),
                group_key: st.key.clone(),
                group_labels: st.labels.clone(),
                alerts: to_send,
                external_url: self.external_url.clone(),
                now,
                nflog_key: sk.clone(),
                dedup_id,
            };
            let (attempts, res) = self.deliver(integ, &n).await;
            return match res {
                Ok(()) => {
                    if let Err(e) = self
                        .kv
                        .put(Table::Nflog, confirmed(rec), Cond::Version(claimed_version))
                        .await
                    {
                        tracing::error!(key = %sk, error = %e, "sent, but could not confirm in the notification log");
                    }
                    Ok(Outcome::Sent {
                        reason: decision.reason,
                        attempts,
                    })
                }
                Err(e) => {
                    // Release the claim so the next flush retries.
                    let mut released = rec;
                    released.intent = None;
                    let mut it = Item::new(NFLOG_PK, sk.clone());
                    it.attrs = to_attrs(&released);
                    it.expires_at = expires;
                    let _ = self
                        .kv
                        .put(Table::Nflog, it, Cond::Version(claimed_version))
                        .await;
                    Ok(Outcome::Failed {
                        reason: decision.reason,
                        attempts,
                        error: e.message,
                    })
                }
            };
        }
        Ok(Outcome::InFlight {
            owner: "another invocation (conflicting writes)".into(),
        })
    }

    /// Attempts until success, a non-retryable error or the send budget is spent.
    async fn deliver(&self, integ: &Integration, n: &Notification) -> (u32, Result<(), SinkError>) {
        let deadline = tokio::time::Instant::now() + self.opts.send_budget;
        let mut backoff = self.opts.backoff;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return (
                    attempts - 1,
                    Err(SinkError::retryable(
                        "send budget spent before the first attempt",
                    )),
                );
            }
            match integ.sink.send(n, left).await {
                Ok(()) => return (attempts, Ok(())),
                Err(e) if !e.retryable => return (attempts, Err(e)),
                Err(e) => {
                    let jitter = Duration::from_millis(
                        rand::random::<u64>() % (backoff.as_millis() as u64 / 2 + 1),
                    );
                    let wait = backoff + jitter;
                    if tokio::time::Instant::now() + wait >= deadline {
                        return (attempts, Err(e));
                    }
                    tracing::debug!(attempt = attempts, error = %e, "retrying notification");
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

/// Runs futures with at most `n` in flight (boxed first, so no closure is held across
/// an await: keeps the callers' futures `Send`).
async fn bounded<'a, T: Send + 'a>(futs: Vec<BoxFuture<'a, T>>, n: usize) -> Vec<T> {
    futures::stream::iter(futs)
        .buffer_unordered(n.max(1))
        .collect()
        .await
}

struct TickCtx<'a> {
    alerts: &'a [StoredAlert],
    silences: &'a [Silence],
    index: &'a HashMap<(String, String), Vec<usize>>,
    owner: &'a str,
    now: Millis,
}
