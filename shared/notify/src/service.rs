//! The notifier service: Alertmanager's alert provider, dispatcher and notification
//! pipeline with all state in the store, so any invocation continues where the last
//! one stopped.
//!
//! Items (all under fixed partitions so one query loads a table's share):
//! - `alerts`  pk `am#alerts`, sk = fingerprint: the merged alert (`StoredAlert`).
//! - `alerts`  pk `am#groups`, sk = `<route id>#<hash(group key)>`: aggregation group
//!   timer (`next_flush`, `has_flushed`) and the resolved alerts already flushed out.
//! - `nflog`   pk `am#nflog`, sk = `<receiver>/<integration>/<i>#<hash(group key)>`: last
//!   notified firing/resolved sets, unconfirmed attempts and the claim of a send in
//!   progress ([`crate::nflog`]).
//! - `silences` pk `am`, sk = silence id.

use crate::alert::{alert_order, AlertError, StoredAlert};
use crate::config::Config;
use crate::dedup::Reason;
use crate::inhibit::inhibited_by;
use crate::nflog::{Claim, ClaimState, NflogError, NflogStore};
use crate::render::Renderer;
use crate::route::Route;
use crate::silence::{Silence, SilenceError};
use crate::sink::{build_integrations, Clients, Integration, Notification, SinkError};
use crate::stages::{self, HeldAlert, Selection};
use argus_model::{Alert, Clock, Cond, Item, Kv, Labels, Millis, StoreError, Table};
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
pub use crate::nflog::NFLOG_PK;
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
    /// Wall-clock budget of one `tick` (a Lambda invocation's deadline): a group not
    /// started by then stays due for the next tick (reported as `deferred`), and sends
    /// get at most what is left of it. `None`: no limit. Not used by `dispatch`.
    pub tick_budget: Option<Duration>,
    /// Bearer token required by the HTTP API (all but health checks), if set.
    pub api_token: Option<String>,
    /// This process alone uses the store (`argus dev`, whose redb file is locked to
    /// it): a claim left by another notifier instance belongs to a process that is
    /// gone, and is taken over at once instead of after its lease.
    pub exclusive_store: bool,
}

impl Default for NotifierOptions {
    fn default() -> Self {
        NotifierOptions {
            lease: Duration::from_secs(60),
            send_budget: Duration::from_secs(20),
            backoff: Duration::from_millis(200),
            concurrency: 16,
            tick_budget: Some(Duration::from_secs(25)),
            api_token: None,
            exclusive_store: false,
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
        /// An earlier attempt at this notification was never confirmed (a crash
        /// mid-send, a failure after the receiver may have read it): the receiver may
        /// now have it twice. Counted in `TickReport::possible_duplicates`.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        possible_duplicate: bool,
    },
    Failed {
        reason: Reason,
        attempts: u32,
        error: String,
    },
    /// The dedup stage decided nothing is due.
    Suppressed { reason: Reason },
    /// Everything resolved and the integration does not send resolved: logged only.
    Logged { reason: Reason },
    /// Every alert of the group was inhibited, silenced or in a muted time.
    Muted { why: String },
    /// Another invocation holds the claim on this notification.
    InFlight { owner: String },
    /// The notification-log entry cannot be read (corrupt, or a record version this
    /// release does not know): nothing is sent for it (resending as if never notified
    /// would be wrong) until the entry is repaired or deleted.
    Unreadable { error: String },
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
    /// A dead claim (its sender crashed or stopped) was taken over.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub took_over: bool,
    /// Alerts of the group not in this notification, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<HeldAlert>,
}

impl fmt::Display for NotificationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match &self.outcome {
            Outcome::Sent {
                reason,
                attempts,
                possible_duplicate,
            } => format!(
                "sent ({reason:?}, {attempts} attempt(s){})",
                if *possible_duplicate {
                    ", possible duplicate: an earlier attempt was not confirmed"
                } else {
                    ""
                }
            ),
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
            Outcome::Unreadable { error } => format!("NOT SENT, unreadable log entry: {error}"),
        };
        let what = if self.took_over {
            format!("{what} (took over a dead claim)")
        } else {
            what
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
    /// Notifications sent while an earlier attempt was unconfirmed (possible duplicates).
    pub possible_duplicates: usize,
    /// Dead claims taken over.
    pub taken_over: usize,
    /// Notification-log entries that could not be read (also in `errors`).
    pub unreadable: usize,
    /// Due groups not started before the tick's budget ran out (still due: the next
    /// tick flushes them).
    pub deferred: usize,
}

impl TickReport {
    fn absorb(&mut self, other: TickReport) {
        self.groups_due += other.groups_due;
        self.notifications.extend(other.notifications);
        self.errors.extend(other.errors);
        self.possible_duplicates += other.possible_duplicates;
        self.taken_over += other.taken_over;
        self.unreadable += other.unreadable;
        self.deferred += other.deferred;
    }

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

/// Totals since the notifier was built (`argus dev` prints them; the API serves them
/// on `/metrics`).
#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    possible_duplicates: AtomicU64,
    taken_over: AtomicU64,
    unreadable: AtomicU64,
}

/// A snapshot of the notifier's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NotifierStats {
    pub sent: u64,
    pub failed: u64,
    /// Sent while an earlier attempt was unconfirmed: the receiver may have it twice.
    pub possible_duplicates: u64,
    /// Dead claims taken over (crashed or stopped senders).
    pub taken_over: u64,
    /// Unreadable notification-log entries met (corrupt or unknown version).
    pub unreadable: u64,
}

/// Alertmanager as a library: see the module docs.
pub struct Notifier {
    kv: Arc<dyn Kv>,
    nflog: NflogStore,
    counters: Counters,
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
        let instance = format!("{:016x}", rand::random::<u64>());
        Notifier {
            nflog: NflogStore::new(kv.clone()),
            counters: Counters::default(),
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

    /// Totals since start: sent, failed, possible duplicates, claims taken over,
    /// unreadable log entries.
    pub fn stats(&self) -> NotifierStats {
        let c = &self.counters;
        NotifierStats {
            sent: c.sent.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            possible_duplicates: c.possible_duplicates.load(Ordering::Relaxed),
            taken_over: c.taken_over.load(Ordering::Relaxed),
            unreadable: c.unreadable.load(Ordering::Relaxed),
        }
    }

    /// The typed notification log (reports, tests).
    pub fn nflog(&self) -> &NflogStore {
        &self.nflog
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

    /// Runs every aggregation group due at `now` through the mute stages (inhibit →
    /// time intervals → silences) and, per integration concurrently, dedup → claim →
    /// send (retry, backoff, within `send_budget`) → confirm, and advances the group
    /// timers. Groups run concurrently (at most `concurrency`); the tick returns when
    /// every due group is done, so a Lambda invocation is bounded by `send_budget`.
    pub async fn tick(&self, now: Millis) -> Result<TickReport, NotifyError> {
        let (mut report, mut data, due) = self.prepare(now).await?;
        let deadline = self
            .opts
            .tick_budget
            .map(|b| tokio::time::Instant::now() + b);
        if let Some(d) = Arc::get_mut(&mut data) {
            d.deadline = deadline;
        }
        let data = &data;
        let futs: Vec<BoxFuture<'_, TickReport>> = due
            .into_iter()
            .map(|(item, st)| {
                async move {
                    if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                        return TickReport {
                            deferred: 1,
                            ..Default::default()
                        };
                    }
                    self.flush_group(data, item, st).await
                }
                .boxed()
            })
            .collect();
        for r in bounded(futs, self.opts.concurrency).await {
            report.absorb(r);
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

    /// For a long-running process (`argus dev`): every `every`, finds the due groups
    /// and starts each one's flush as its own task (at most `concurrency` at once),
    /// without waiting for them; a group still flushing from an earlier round is left
    /// alone until it is done. So a slow receiver delays only its own group, as in
    /// Alertmanager, where every aggregation group has its own goroutine. Each
    /// finished group's report (and each round's errors) goes to `on_report`. Runs
    /// until dropped; dropping it aborts the flushes in progress (their claims are
    /// then taken over by the next start).
    pub async fn dispatch(
        self: Arc<Self>,
        clock: Arc<dyn Clock>,
        every: Duration,
        mut on_report: impl FnMut(TickReport) + Send + 'static,
    ) {
        let permits = Arc::new(tokio::sync::Semaphore::new(self.opts.concurrency.max(1)));
        let mut running: HashMap<tokio::task::Id, String> = HashMap::new();
        let mut busy: BTreeSet<String> = BTreeSet::new();
        let mut tasks: tokio::task::JoinSet<TickReport> = tokio::task::JoinSet::new();
        let mut iv = tokio::time::interval(every);
        iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = iv.tick() => {
                    let now = clock.now_ms();
                    let (head, data, due) = match self.prepare(now).await {
                        Ok(x) => x,
                        Err(e) => {
                            on_report(TickReport {
                                errors: vec![e.to_string()],
                                ..Default::default()
                            });
                            continue;
                        }
                    };
                    if !head.errors.is_empty() {
                        on_report(head);
                    }
                    for (item, st) in due {
                        if busy.contains(&item.sk) {
                            continue;
                        }
                        let sk = item.sk.clone();
                        let (me, data, permits) = (self.clone(), data.clone(), permits.clone());
                        let handle = tasks.spawn(async move {
                            let _permit = permits.acquire_owned().await;
                            me.flush_group(&data, item, st).await
                        });
                        running.insert(handle.id(), sk.clone());
                        busy.insert(sk);
                    }
                }
                Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    let (id, report) = match done {
                        Ok((id, r)) => (id, Some(r)),
                        Err(e) => (e.id(), None),
                    };
                    if let Some(sk) = running.remove(&id) {
                        busy.remove(&sk);
                        if report.is_none() {
                            on_report(TickReport {
                                errors: vec![format!("group {sk}: flush task failed")],
                                ..Default::default()
                            });
                        }
                    }
                    if let Some(r) = report {
                        on_report(r);
                    }
                }
            }
        }
    }

    /// Loads what a round needs (groups, alerts, silences), routes every alert once,
    /// starts missing groups, and returns the due ones.
    async fn prepare(
        &self,
        now: Millis,
    ) -> Result<(TickReport, Arc<TickData>, Vec<(Item, GroupState)>), NotifyError> {
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
        let data = Arc::new(TickData {
            alerts,
            silences,
            index,
            owner,
            now,
            deadline: None,
        });
        Ok((report, data, due))
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

    /// One group: mute stages, then every integration of its receiver concurrently,
    /// then the group timer. Returns the group's share of a tick report.
    async fn flush_group(&self, ctx: &TickData, item: Item, mut st: GroupState) -> TickReport {
        let now = ctx.now;
        let mut out = TickReport::default();
        let route = match self.config.route.by_id(&st.route) {
            Some(r) if r.key == st.route_key => r,
            _ => {
                // The configuration changed under this group: drop it (its alerts
                // start a new group on their route).
                if let Err(e) = self.delete_group(&item).await {
                    out.errors.push(format!("group {}: {e}", st.key));
                }
                return out;
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
            return out;
        }
        members.sort_by(|a, b| alert_order(&a.labels, &b.labels));
        let sel = stages::mute_stages(
            &members,
            &self.config,
            route,
            &ctx.alerts,
            &ctx.silences,
            now,
        );

        let integrations = self
            .integrations
            .get(&route.receiver)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        // Integrations are independent: a slow one delays only itself.
        let futs = integrations.iter().map(|integ| {
            let sel = &sel;
            let st = &st;
            async move {
                let mut report = NotificationReport {
                    receiver: route.receiver.clone(),
                    integration: format!("{}[{}]", integ.kind, integ.index),
                    group_key: st.key.clone(),
                    firing: sel.firing.len(),
                    resolved: sel.resolved.len(),
                    outcome: Outcome::Muted {
                        why: sel.muted_why(),
                    },
                    took_over: false,
                    held: sel.held.clone(),
                };
                if sel.alerts.is_empty() {
                    return report;
                }
                match self.notify_one(ctx, route, st, integ, sel).await {
                    Ok(one) => {
                        report.outcome = one.outcome;
                        report.took_over = one.took_over;
                        report.held.extend(one.held);
                    }
                    Err(e) if e.is_unreadable() => {
                        report.outcome = Outcome::Unreadable {
                            error: e.to_string(),
                        }
                    }
                    Err(e) => {
                        report.outcome = Outcome::Failed {
                            reason: Reason::NothingChanged,
                            attempts: 0,
                            error: e.to_string(),
                        }
                    }
                }
                report
            }
        });
        let reports: Vec<NotificationReport> = futures::future::join_all(futs).await;
        let mut ok = true;
        let mut in_flight = false;
        for r in &reports {
            match &r.outcome {
                Outcome::Sent {
                    possible_duplicate, ..
                } => {
                    self.counters.sent.fetch_add(1, Ordering::Relaxed);
                    if *possible_duplicate {
                        out.possible_duplicates += 1;
                        self.counters
                            .possible_duplicates
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
                Outcome::Failed { .. } => {
                    ok = false;
                    self.counters.failed.fetch_add(1, Ordering::Relaxed);
                }
                Outcome::Unreadable { error } => {
                    ok = false;
                    out.unreadable += 1;
                    self.counters.unreadable.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(receiver = %r.receiver, integration = %r.integration, group = %r.group_key, error = %error, "unreadable notification-log entry: nothing sent for it");
                    out.errors.push(error.clone());
                }
                Outcome::InFlight { .. } => in_flight = true,
                _ => {}
            }
            if r.took_over {
                out.taken_over += 1;
                self.counters.taken_over.fetch_add(1, Ordering::Relaxed);
            }
        }
        out.notifications = reports;
        if in_flight {
            // The claim holder advances the group; if it crashed, a later tick (after
            // its lease, or at once when this process owns the store) takes over.
            return out;
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
            Err(e) => out.errors.push(format!("group {}: {e}", st.key)),
        }
        out
    }

    /// One integration of one group: the dedup stage against its log entry, then
    /// claim → send → confirm/release through the [`NflogStore`].
    async fn notify_one(
        &self,
        ctx: &TickData,
        route: &Route,
        st: &GroupState,
        integ: &Integration,
        sel: &Selection,
    ) -> Result<OneResult, NflogError> {
        let now = ctx.now;
        let key = NflogStore::key(&route.receiver, integ.kind, integ.index, &hash_hex(&st.key));
        let send_resolved = integ.sink.send_resolved();
        for _ in 0..4 {
            let loaded = self.nflog.load(&key).await?;
            let mut rec = loaded.record.clone().unwrap_or_default();
            rec.receiver = route.receiver.clone();
            rec.integration = format!("{}[{}]", integ.kind, integ.index);
            rec.group_key = st.key.clone();
            let took_over = match rec.claim_state(&ctx.owner, self.opts.exclusive_store, now) {
                ClaimState::Live { owner } => {
                    return Ok(OneResult::of(Outcome::InFlight { owner }, false, vec![]))
                }
                ClaimState::Dead => {
                    let c = rec.claim.as_ref().map(|c| c.owner.clone());
                    tracing::warn!(key = %key, owner = ?c, "taking over a dead claim: what it was sending may have been delivered");
                    rec.take_over()
                }
                ClaimState::Free => {
                    rec.take_over();
                    false
                }
            };
            let plan = stages::dedup_stage(
                sel,
                rec.sent.as_ref(),
                rec.unconfirmed.as_ref(),
                send_resolved,
                route,
                now,
            );
            let reason = plan.decision.reason;
            if !plan.decision.send {
                // Record the take-over (so it is not found again) even with nothing due.
                if took_over && !self.nflog.write(&loaded, &rec, now).await? {
                    continue;
                }
                // Every alert is held as "unchanged": the outcome says so once.
                return Ok(OneResult::of(
                    Outcome::Suppressed { reason },
                    took_over,
                    vec![],
                ));
            }
            if plan.send.is_empty() {
                // Everything resolved and the integration does not send resolved: the
                // log is cleared, nothing goes out.
                rec.sent = Some(plan.entry.clone());
                rec.unconfirmed = None;
                if !self.nflog.write(&loaded, &rec, now).await? {
                    continue;
                }
                return Ok(OneResult::of(
                    Outcome::Logged { reason },
                    took_over,
                    plan.held,
                ));
            }
            let dedup_id = hash_hex(&format!(
                "{key}|{:?}|{}|{}",
                rec.sent.as_ref().map(|e| e.timestamp),
                hex_set(&plan.entry.firing).join(","),
                hex_set(&plan.entry.resolved).join(",")
            ));
            let claim = Claim {
                owner: ctx.owner.clone(),
                lease_until: now + self.opts.lease.as_millis() as i64,
                sending: Some(plan.entry.clone()),
                dedup_id: dedup_id.clone(),
            };
            let Some(claimed) = self.nflog.claim(&loaded, rec, claim, now).await? else {
                continue;
            };
            let n = Notification {
                receiver: route.receiver.clone(),
                group_key: st.key.clone(),
                group_labels: st.labels.clone(),
                alerts: plan.send,
                external_url: self.external_url.clone(),
                now,
                nflog_key: key.clone(),
                dedup_id,
            };
            let (attempts, res) = self.deliver(integ, &n, ctx.deadline).await;
            let outcome = match res {
                Ok(()) => {
                    match self.nflog.confirm(claimed, now).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(key = %key, "sent, but the claim was taken over meanwhile: its taker resends (a possible duplicate)")
                        }
                        Err(e) => {
                            tracing::error!(key = %key, error = %e, "sent, but could not confirm in the notification log (the next flush may resend it)")
                        }
                    }
                    Outcome::Sent {
                        reason,
                        attempts,
                        possible_duplicate: plan.decision.unconfirmed,
                    }
                }
                Err(e) => {
                    // Release the claim (what it sent joins the unconfirmed attempts)
                    // so the next flush retries.
                    if let Err(re) = self.nflog.release(claimed, now).await {
                        tracing::error!(key = %key, error = %re, "could not release a claim: it is taken over after its lease");
                    }
                    Outcome::Failed {
                        reason,
                        attempts,
                        error: e.message,
                    }
                }
            };
            return Ok(OneResult::of(outcome, took_over, plan.held));
        }
        Ok(OneResult::of(
            Outcome::InFlight {
                owner: "another invocation (conflicting writes)".into(),
            },
            false,
            vec![],
        ))
    }

    /// Attempts until success, a non-retryable error or the send budget is spent.
    async fn deliver(
        &self,
        integ: &Integration,
        n: &Notification,
        tick_deadline: Option<tokio::time::Instant>,
    ) -> (u32, Result<(), SinkError>) {
        let mut deadline = tokio::time::Instant::now() + self.opts.send_budget;
        if let Some(t) = tick_deadline {
            deadline = deadline.min(t);
        }
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

struct OneResult {
    outcome: Outcome,
    took_over: bool,
    held: Vec<HeldAlert>,
}

impl OneResult {
    fn of(outcome: Outcome, took_over: bool, held: Vec<HeldAlert>) -> OneResult {
        OneResult {
            outcome,
            took_over,
            held,
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

/// What one round loaded, shared by its group flushes (owned: spawned flushes of
/// `dispatch` outlive the round).
struct TickData {
    alerts: Vec<StoredAlert>,
    silences: Vec<Silence>,
    index: HashMap<(String, String), Vec<usize>>,
    /// `<instance>-<tick>`: the owner of this round's claims.
    owner: String,
    now: Millis,
    /// The tick's wall-clock deadline (`tick_budget`), if any.
    deadline: Option<tokio::time::Instant>,
}
