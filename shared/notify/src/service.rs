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
use crate::nflog::{Claim, ClaimState, Claimed, NflogError, NflogStore};
use crate::records::{self, GroupState, RecordError, RecordKind};
use crate::render::Renderer;
use crate::route::Route;
use crate::silence::{Silence, SilenceError};
use crate::sink::{build_integrations, Clients, Integration, Notification, SinkError};
use crate::stages::{self, HeldAlert, Selection};
use argus_model::{Alert, Clock, Cond, Item, Kv, Labels, Millis, StoreError, Table, UnixSecs};
use futures::future::{BoxFuture, FutureExt};
use futures::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod flush;
mod recent;

pub const ALERTS_PK: &str = "am#alerts";
pub const GROUPS_PK: &str = "am#groups";
pub use crate::nflog::NFLOG_PK;
pub const SILENCES_PK: &str = "am";

/// The least time between the start of a round and that of a round woken by an
/// ingest (`dispatch`). Measured with the bench (docs/bench-notifier.md, step 6): 5 ms
/// made a round, and a claim sync, every 6 ms while alerts streamed in, and the ingest
/// waited behind them; 30 ms had the stream's last notification out soonest.
const WOKEN_ROUND_SPACING: Duration = Duration::from_millis(30);

/// How long resolved alerts and expired silences are kept (Alertmanager: 120h for
/// silences and the notification log).
const RETENTION_MS: i64 = 120 * 3600 * 1000;
const ALERT_RETENTION_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored alert, group or silence that cannot be read (corrupt, or a record
    /// version this release does not know): reported, never replaced.
    #[error(transparent)]
    Unreadable(#[from] RecordError),
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
    /// Notifications sent at once in one tick (and log entries loaded at once);
    /// `dispatch`: groups flushed at once.
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

fn hex_set(s: &BTreeSet<u64>) -> Vec<String> {
    s.iter().map(|x| format!("{x:016x}")).collect()
}

fn hash_hex(s: &str) -> String {
    hex::encode(&Sha256::digest(s.as_bytes())[..16])
}

fn item_key(item: &Item) -> String {
    format!("{}/{}", item.pk, item.sk)
}

fn alert_item(a: &StoredAlert, now: Millis) -> Item {
    let mut item = Item::new(ALERTS_PK, a.labels.fingerprint_hex());
    item.attrs = records::encode_alert(a);
    item.expires_at = Some(UnixSecs::floor(a.ends_at.max(now) + ALERT_RETENTION_MS));
    item
}

fn group_item(sk: &str, st: &GroupState) -> Item {
    let mut item = Item::new(GROUPS_PK, sk);
    item.attrs = records::encode_group(st);
    item
}

/// The group a new alert starts or joins, as one ingest wants it.
struct GroupWant<'r> {
    route: &'r Route,
    key: String,
    labels: Labels,
    /// The earliest `starts_at` of the batch's alerts in it.
    starts: Millis,
}

/// What an alert arriving in a group writes to its state (`current`: as stored, with
/// its version): a new group's timer (`group_wait` from now; at once for an alert older
/// than that), or an earlier flush of a group not flushed yet for an old alert.
/// `None`: nothing to change.
fn group_write(
    g: &GroupWant<'_>,
    current: Option<(GroupState, u64)>,
    now: Millis,
) -> Option<(GroupState, Cond)> {
    let gw = g.route.group_wait.as_millis() as i64;
    let old_alert = g.starts + gw < now;
    match current {
        None => Some((
            GroupState {
                route: g.route.id.clone(),
                route_key: g.route.key.clone(),
                key: g.key.clone(),
                labels: g.labels.clone(),
                next_flush: if old_alert { now } else { now + gw },
                has_flushed: false,
                removed: BTreeMap::new(),
            },
            Cond::NotExists,
        )),
        Some((mut st, version)) if !st.has_flushed && old_alert && st.next_flush > now => {
            st.next_flush = now;
            Some((st, Cond::Version(version)))
        }
        Some(_) => None,
    }
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
    /// Unreadable stored records met, by [`RecordKind::index`].
    records_unreadable: [AtomicU64; 3],
    rounds_full: AtomicU64,
    rounds_woken: AtomicU64,
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
    /// Unreadable stored alerts, groups and silences met (each time one is read).
    pub unreadable_records: u64,
    /// Rounds (ticks, `dispatch` rounds) that loaded every group and alert.
    pub rounds_full: u64,
    /// `dispatch` rounds that loaded only the groups ingests made due.
    pub rounds_woken: u64,
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
    /// Raised by an ingest that made a group due now (`group_wait` 0, or an alert
    /// older than it): [`Notifier::dispatch`] then runs a round at once, as
    /// Alertmanager's aggregation group flushes when its `group_wait` is up.
    due_now: tokio::sync::Notify,
    /// What the ingests wrote, for `dispatch`'s woken rounds (kept only with
    /// `exclusive_store`; see `service/recent.rs`).
    recent: std::sync::Mutex<recent::Recent>,
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
            due_now: tokio::sync::Notify::new(),
            recent: Default::default(),
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
            unreadable_records: c
                .records_unreadable
                .iter()
                .map(|x| x.load(Ordering::Relaxed))
                .sum(),
            rounds_full: c.rounds_full.load(Ordering::Relaxed),
            rounds_woken: c.rounds_woken.load(Ordering::Relaxed),
        }
    }

    /// Unreadable stored records met since start, per kind.
    pub fn unreadable_records(&self) -> Vec<(RecordKind, u64)> {
        RecordKind::ALL
            .iter()
            .map(|k| {
                (
                    *k,
                    self.counters.records_unreadable[k.index()].load(Ordering::Relaxed),
                )
            })
            .collect()
    }

    /// Counts and logs a stored record that cannot be read; returns it as the error of
    /// the operation that met it.
    fn unreadable(&self, e: RecordError) -> RecordError {
        self.counters.records_unreadable[e.kind().index()].fetch_add(1, Ordering::Relaxed);
        tracing::error!(record = e.kind().as_str(), key = e.key(), error = %e, "unreadable stored record: reported and left as it is");
        e
    }

    fn decode_alert(&self, item: &Item) -> Result<StoredAlert, RecordError> {
        records::decode_alert(&item_key(item), &item.attrs).map_err(|e| self.unreadable(e))
    }

    fn decode_group(&self, item: &Item) -> Result<GroupState, RecordError> {
        records::decode_group(&item_key(item), &item.attrs).map_err(|e| self.unreadable(e))
    }

    fn decode_silence(&self, item: &Item) -> Result<Silence, RecordError> {
        records::decode_silence(&item_key(item), &item.attrs).map_err(|e| self.unreadable(e))
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, recent::Recent> {
        // Its methods do not panic: a poisoned lock still holds a consistent index.
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
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
        self.store_alerts(batch.into_values().collect(), now)
            .await?;
        Ok(report)
    }

    /// Merges the alerts into the store and starts or advances their aggregation
    /// groups, with every write of the batch in one [`Kv::put_many`] (one transaction,
    /// one commit in the embedded store). A write that loses its condition to a
    /// concurrent writer is read and merged again. An unreadable stored alert or group
    /// fails the batch before anything is written (it is never replaced).
    async fn store_alerts(&self, alerts: Vec<StoredAlert>, now: Millis) -> Result<(), NotifyError> {
        let mut pending_alerts = alerts;
        let mut groups: HashMap<String, GroupWant<'_>> = HashMap::new();
        let mut pending_groups: BTreeSet<String> = BTreeSet::new();
        // A group this batch wrote is due now (or, with `exclusive_store`, sooner than
        // any before): wake the dispatcher once it is stored.
        let mut due_now = false;
        for _ in 0..8 {
            if pending_alerts.is_empty() && pending_groups.is_empty() {
                if due_now {
                    self.due_now.notify_one();
                }
                return Ok(());
            }
            let fps: Vec<String> = pending_alerts
                .iter()
                .map(|a| a.labels.fingerprint_hex())
                .collect();
            let olds = self.kv.get_many(Table::Alerts, ALERTS_PK, &fps).await?;
            let mut writes: Vec<(Table, Item, Cond)> = Vec::with_capacity(pending_alerts.len() * 2);
            let mut merged_alerts = Vec::with_capacity(pending_alerts.len());
            // The groups (sort keys) of each alert written, for `recent`.
            let mut alert_groups: Vec<Vec<String>> = Vec::with_capacity(pending_alerts.len());
            for (a, old) in pending_alerts.iter().zip(olds) {
                let (merged, cond) = match old {
                    Some(item) => {
                        let o = self.decode_alert(&item)?;
                        (
                            StoredAlert::merge_into(Some(&o), a.clone()),
                            Cond::Version(item.version),
                        )
                    }
                    None => (a.clone(), Cond::NotExists),
                };
                let mut in_groups = Vec::new();
                for r in self.config.route.matching(&merged.labels) {
                    let labels = r.group_labels(&merged.labels);
                    let key = r.group_key(&labels);
                    let sk = format!("{}#{}", r.id, hash_hex(&key));
                    in_groups.push(sk.clone());
                    groups
                        .entry(sk.clone())
                        .and_modify(|g| g.starts = g.starts.min(merged.starts_at))
                        .or_insert(GroupWant {
                            route: r,
                            key,
                            labels,
                            starts: merged.starts_at,
                        });
                    pending_groups.insert(sk);
                }
                alert_groups.push(in_groups);
                writes.push((Table::Alerts, alert_item(&merged, now), cond));
                merged_alerts.push(merged);
            }
            let n_alerts = writes.len();
            let group_sks: Vec<String> = pending_groups.iter().cloned().collect();
            let stored_groups = self
                .kv
                .get_many(Table::Alerts, GROUPS_PK, &group_sks)
                .await?;
            let mut written_groups = Vec::new();
            for (sk, item) in group_sks.into_iter().zip(stored_groups) {
                let g = &groups[&sk];
                let current = item
                    .as_ref()
                    .map(|i| self.decode_group(i).map(|st| (st, i.version)))
                    .transpose()?;
                match group_write(g, current, now) {
                    Some((st, cond)) => {
                        due_now |= st.next_flush <= now;
                        writes.push((Table::Alerts, group_item(&sk, &st), cond));
                        written_groups.push((sk, st.next_flush));
                    }
                    None => {
                        pending_groups.remove(&sk);
                    }
                }
            }
            let results = self.kv.put_many(writes).await?;
            let mut retry_alerts = Vec::new();
            let mut stored = Vec::new();
            let mut scheduled = Vec::new();
            for (i, r) in results.into_iter().enumerate() {
                let conflict = match r {
                    Ok(_) => false,
                    Err(StoreError::Conflict(_)) => true,
                    Err(e) => return Err(e.into()),
                };
                if i < n_alerts {
                    if conflict {
                        retry_alerts.push(pending_alerts[i].clone());
                    } else {
                        stored.push(i);
                    }
                } else if !conflict {
                    let (sk, at) = &written_groups[i - n_alerts];
                    pending_groups.remove(sk);
                    scheduled.push((sk.clone(), *at));
                }
            }
            if self.opts.exclusive_store {
                // A group due sooner than any before: `dispatch` re-arms its timer.
                due_now |= self.recent().ingested(
                    stored.into_iter().map(|i| {
                        (
                            merged_alerts[i].labels.fingerprint_hex(),
                            alert_groups[i].as_slice(),
                        )
                    }),
                    scheduled,
                );
            }
            pending_alerts = retry_alerts;
        }
        Err(StoreError::Transient("alerts: too many concurrent updates".into()).into())
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
        let want = GroupWant {
            route: r,
            key,
            labels,
            starts,
        };
        for _ in 0..8 {
            let item = self.kv.get(Table::Alerts, GROUPS_PK, &sk).await?;
            let current = item
                .as_ref()
                .map(|i| self.decode_group(i).map(|st| (st, i.version)))
                .transpose()?;
            let Some((st, cond)) = group_write(&want, current, now) else {
                return Ok(());
            };
            match self.kv.put(Table::Alerts, group_item(&sk, &st), cond).await {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Every stored alert (live items), resolved ones included. An unreadable stored
    /// alert is an error (counted and logged): a listing without it would be wrong.
    pub async fn stored_alerts(&self, now: Millis) -> Result<Vec<StoredAlert>, NotifyError> {
        let (alerts, mut bad) = self.load_alerts(now).await?;
        match bad.is_empty() {
            true => Ok(alerts),
            false => Err(bad.swap_remove(0).into()),
        }
    }

    /// Every readable stored alert, and the unreadable ones (counted and logged).
    async fn load_alerts(
        &self,
        now: Millis,
    ) -> Result<(Vec<StoredAlert>, Vec<RecordError>), NotifyError> {
        let items = self.kv.query(Table::Alerts, ALERTS_PK, None).await?;
        let mut out = Vec::with_capacity(items.len());
        let mut bad = Vec::new();
        for it in items.iter().filter(|i| i.live(now)) {
            match self.decode_alert(it) {
                Ok(a) => out.push(a),
                Err(e) => bad.push(e),
            }
        }
        Ok((out, bad))
    }

    // ------------------------------------------------------------------ silences

    /// Every stored silence (live items). An unreadable one is an error (counted and
    /// logged).
    pub async fn silences(&self, now: Millis) -> Result<Vec<Silence>, NotifyError> {
        let (silences, mut bad) = self.load_silences(now).await?;
        match bad.is_empty() {
            true => Ok(silences),
            false => Err(bad.swap_remove(0).into()),
        }
    }

    async fn load_silences(
        &self,
        now: Millis,
    ) -> Result<(Vec<Silence>, Vec<RecordError>), NotifyError> {
        let items = self.kv.query(Table::Silences, SILENCES_PK, None).await?;
        let mut out = Vec::new();
        let mut bad = Vec::new();
        for it in items.iter().filter(|i| i.live(now)) {
            match self.decode_silence(it) {
                Ok(s) => out.push(s),
                Err(e) => bad.push(e),
            }
        }
        Ok((out, bad))
    }

    pub async fn silence(&self, id: &str, now: Millis) -> Result<Option<Silence>, NotifyError> {
        match self.kv.get(Table::Silences, SILENCES_PK, id).await? {
            Some(it) if it.live(now) => Ok(Some(self.decode_silence(&it)?)),
            _ => Ok(None),
        }
    }

    async fn write_silence(&self, s: &Silence, cond: Cond) -> Result<(), NotifyError> {
        let mut item = Item::new(SILENCES_PK, s.id.clone());
        item.attrs = records::encode_silence(s);
        item.expires_at = Some(UnixSecs::floor(s.ends_at + RETENTION_MS));
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
            let old = self.decode_silence(&item)?;
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
            let mut s = self.decode_silence(&item)?;
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
    /// time intervals → silences) and, per integration, dedup → claim → send (retry,
    /// backoff, within `send_budget`) → confirm, and advances the group timers. The
    /// whole tick's claims are written in one [`Kv::put_many`] and made durable before
    /// any send; at most `concurrency` sends run at once, spawned on the runtime; the
    /// confirmations and timers are written in batches as sends complete (see
    /// `service/flush.rs`). The tick returns when every due group is done, so a Lambda
    /// invocation is bounded by its `tick_budget`.
    pub async fn tick(&self, now: Millis) -> Result<TickReport, NotifyError> {
        let (mut report, mut data, due) = self.prepare(now).await?;
        let deadline = self
            .opts
            .tick_budget
            .map(|b| tokio::time::Instant::now() + b);
        if let Some(d) = Arc::get_mut(&mut data) {
            d.deadline = deadline;
        }
        report.absorb(self.flush_batch(&data, due, None).await);
        report.notifications.sort_by(|a, b| {
            (&a.group_key, &a.receiver, &a.integration).cmp(&(
                &b.group_key,
                &b.receiver,
                &b.integration,
            ))
        });
        Ok(report)
    }

    /// For a long-running process (`argus dev`): every `every`, and at once when an
    /// ingest makes a group due (`group_wait: 0s`, or an alert older than its group's
    /// wait), finds the due groups and flushes them without waiting for them: the
    /// round's groups go out together as a tick's do (one claim commit, sends at most
    /// `concurrency` at once), and each group is over, reported to `on_report` and
    /// eligible for its next flush as soon as its own sends are confirmed. So a slow
    /// receiver delays only its own group, as in Alertmanager, where every
    /// aggregation group has its own goroutine; a group still flushing from an
    /// earlier round is left alone until it is done. Wake-ups that arrive while a
    /// round loads coalesce into one more round. When this process owns the store
    /// (`exclusive_store`), a round is also woken when the next group written here
    /// comes due (its `group_wait` or `group_interval` up, as Alertmanager's group
    /// timers), and, unless an inhibit rule needs every alert, a woken round loads
    /// only the groups due and their members (`service/recent.rs`); the periodic
    /// rounds load everything. Runs until dropped; dropping it
    /// aborts the flushes in progress (their claims are then taken over by the next
    /// start).
    pub async fn dispatch(
        self: Arc<Self>,
        clock: Arc<dyn Clock>,
        every: Duration,
        mut on_report: impl FnMut(TickReport) + Send + 'static,
    ) {
        // Groups being flushed (by item key), and the reports of those that ended.
        let mut busy: BTreeSet<String> = BTreeSet::new();
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<(String, TickReport)>();
        let mut tasks: tokio::task::JoinSet<TickReport> = tokio::task::JoinSet::new();
        let mut batches: HashMap<tokio::task::Id, Vec<String>> = HashMap::new();
        let mut iv = tokio::time::interval(every);
        iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_round = tokio::time::Instant::now();
        let mut last_load = Duration::ZERO;
        // An ingest made a group due: a round starts at `wake_at`.
        let mut woken = false;
        loop {
            // A round woken by an ingest starts at least `WOKEN_ROUND_SPACING` (and four
            // times what loading the last woken round took) after the last round: a
            // stream of ingests then makes few rounds, each flushing many groups, instead
            // of one claim sync (which stalls the store's writer, and so the ingests)
            // every few milliseconds. An alert after a quiet spell goes out at once.
            let wake_at = last_round + (last_load * 4).max(WOKEN_ROUND_SPACING);
            // With `exclusive_store`: when the next group written here comes due (its
            // `group_wait` or `group_interval` up), as Alertmanager's group timers.
            let timer = self.recent().next_at().map(|at| {
                tokio::time::Instant::now()
                    + Duration::from_millis((at - clock.now_ms()).max(0) as u64)
            });
            let round = tokio::select! {
                _ = iv.tick() => Some(false),
                _ = self.due_now.notified(), if !woken => {
                    woken = true;
                    None
                }
                _ = tokio::time::sleep_until(timer.unwrap_or(wake_at)), if !woken && timer.is_some() => {
                    woken = true;
                    None
                }
                _ = tokio::time::sleep_until(wake_at), if woken => Some(true),
                Some((sk, report)) = done_rx.recv() => {
                    busy.remove(&sk);
                    on_report(report);
                    None
                }
                Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    // The batch is over: every group of it is free again (those that
                    // ended without a report of their own too).
                    while let Ok((sk, report)) = done_rx.try_recv() {
                        busy.remove(&sk);
                        on_report(report);
                    }
                    let (id, rest) = match done {
                        Ok((id, r)) => (id, Ok(r)),
                        Err(e) => (e.id(), Err(e)),
                    };
                    for sk in batches.remove(&id).unwrap_or_default() {
                        busy.remove(&sk);
                    }
                    match rest {
                        Ok(rest) => {
                            if !rest.notifications.is_empty()
                                || !rest.errors.is_empty()
                                || rest.deferred > 0
                            {
                                on_report(rest);
                            }
                        }
                        Err(e) => on_report(TickReport {
                            errors: vec![format!("a flush task failed: {e}")],
                            ..Default::default()
                        }),
                    }
                    None
                }
            };
            let Some(by_ingest) = round else {
                continue;
            };
            woken = false;
            last_round = tokio::time::Instant::now();
            let now = clock.now_ms();
            // A woken round loads only the groups the ingests made due (when this
            // process owns the store); the periodic ones load everything.
            let targeted = match by_ingest {
                true => self.prepare_woken(now).await,
                false => None,
            };
            let full = targeted.is_none();
            let loaded = match targeted {
                Some(r) => r,
                None => self.prepare(now).await,
            };
            if by_ingest {
                last_load = last_round.elapsed();
            }
            let (head, data, due) = match loaded {
                Ok(x) => x,
                Err(e) => {
                    on_report(TickReport {
                        errors: vec![e.to_string()],
                        ..Default::default()
                    });
                    continue;
                }
            };
            let stored = head.groups;
            if !head.errors.is_empty() {
                on_report(head);
            }
            // A group still flushing is left out: its flush's end schedules its next.
            let due: Vec<(Item, GroupState)> = due
                .into_iter()
                .filter(|(item, _)| !busy.contains(&item.sk))
                .collect();
            tracing::debug!(full, groups = stored, due = due.len(), busy = busy.len(), load = ?last_round.elapsed(), "dispatch round");
            if due.is_empty() {
                continue;
            }
            let sks: Vec<String> = due.iter().map(|(item, _)| item.sk.clone()).collect();
            busy.extend(sks.iter().cloned());
            let (me, tx) = (self.clone(), done_tx.clone());
            let handle = tasks.spawn(async move {
                let cb = move |sk: &str, r: TickReport| {
                    let _ = tx.send((sk.to_string(), r));
                };
                me.flush_batch(&data, due, Some(&cb)).await
            });
            batches.insert(handle.id(), sks);
        }
    }

    /// Loads what a round needs (groups, alerts, silences), routes every alert once,
    /// starts missing groups, and returns the due ones.
    async fn prepare(&self, now: Millis) -> Result<Prepared, NotifyError> {
        let started = tokio::time::Instant::now();
        let tick_no = self.ticks.fetch_add(1, Ordering::Relaxed);
        let owner = format!("{}-{}", self.instance, tick_no);
        self.counters.rounds_full.fetch_add(1, Ordering::Relaxed);
        let mark = self.recent().load_mark();
        let groups = self.kv.query(Table::Alerts, GROUPS_PK, None).await?;
        let (alerts, bad_alerts) = self.load_alerts(now).await?;
        let (silences, bad_silences) = self.load_silences(now).await?;
        let mut report = TickReport {
            groups: groups.len(),
            ..Default::default()
        };
        // Unreadable alerts and silences are reported (and counted); the readable ones
        // are flushed. An unreadable silence mutes nothing until it is repaired.
        report.errors.extend(
            bad_alerts
                .iter()
                .chain(&bad_silences)
                .map(|e| format!("{e}: not used until repaired or deleted")),
        );

        let index = self.route_index(&alerts);
        if self.opts.exclusive_store {
            let members = index
                .iter()
                .map(|((rid, key), idx)| {
                    (
                        format!("{rid}#{}", hash_hex(key)),
                        idx.iter()
                            .map(|&i| alerts[i].labels.fingerprint_hex())
                            .collect(),
                    )
                })
                .collect();
            self.recent().loaded(mark, members, bad_alerts.is_empty());
        }
        let mut known: BTreeSet<(String, String)> = BTreeSet::new();
        let mut unreadable_groups: BTreeSet<String> = BTreeSet::new();
        let mut due = Vec::new();
        for item in groups {
            match self.decode_group(&item) {
                Ok(st) => {
                    known.insert((st.route.clone(), st.key.clone()));
                    if st.next_flush <= now {
                        due.push((item, st));
                    }
                }
                Err(e) => {
                    report.errors.push(format!(
                        "{e}: its group is not flushed until repaired or deleted"
                    ));
                    unreadable_groups.insert(item.sk);
                }
            }
        }
        // Firing alerts whose group state is missing (a failed write, a deleted group):
        // start their group as an insert would.
        for ((rid, key), idx) in &index {
            if known.contains(&(rid.clone(), key.clone()))
                || idx.iter().all(|&i| alerts[i].resolved(now))
                || unreadable_groups.contains(&format!("{rid}#{}", hash_hex(key)))
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
        if self.opts.exclusive_store {
            // This round saw every group due now: their timers are spent.
            self.recent().spent(mark, now);
        }
        let data = Arc::new(TickData {
            alerts_complete: bad_alerts.is_empty(),
            alerts,
            silences,
            index,
            owner,
            now,
            deadline: None,
            started,
        });
        Ok((report, data, due))
    }

    /// Routes every alert once: (route id, group key) → alert indexes.
    fn route_index(&self, alerts: &[StoredAlert]) -> HashMap<(String, String), Vec<usize>> {
        let mut index: HashMap<(String, String), Vec<usize>> = HashMap::new();
        for (i, a) in alerts.iter().enumerate() {
            for r in self.config.route.matching(&a.labels) {
                let key = r.group_key(&r.group_labels(&a.labels));
                index.entry((r.id.clone(), key)).or_default().push(i);
            }
        }
        index
    }

    /// A woken round of `dispatch` (see `service/recent.rs`): loads only the groups
    /// ingests made due since the last woken round, by key, and their members, with
    /// every silence. `None`: a full round is needed instead (the member index is not
    /// complete, or inhibit rules need every alert).
    async fn prepare_woken(&self, now: Millis) -> Option<Result<Prepared, NotifyError>> {
        if !self.opts.exclusive_store || !self.config.inhibit_rules.is_empty() {
            return None;
        }
        let due = self.recent().take_due(now)?;
        Some(self.load_woken(due, now).await)
    }

    async fn load_woken(
        &self,
        due: Vec<(String, Vec<String>)>,
        now: Millis,
    ) -> Result<Prepared, NotifyError> {
        let started = tokio::time::Instant::now();
        let tick_no = self.ticks.fetch_add(1, Ordering::Relaxed);
        let owner = format!("{}-{}", self.instance, tick_no);
        if due.is_empty() {
            // Woken to re-arm the timer, or for groups a full round took: no reads.
            let data = TickData {
                alerts: Vec::new(),
                alerts_complete: true,
                silences: Vec::new(),
                index: HashMap::new(),
                owner,
                now,
                deadline: None,
                started,
            };
            return Ok((TickReport::default(), Arc::new(data), Vec::new()));
        }
        self.counters.rounds_woken.fetch_add(1, Ordering::Relaxed);
        let sks: Vec<String> = due.iter().map(|(sk, _)| sk.clone()).collect();
        let groups = self.kv.get_many(Table::Alerts, GROUPS_PK, &sks).await?;
        let fps: BTreeSet<&String> = due.iter().flat_map(|(_, fps)| fps).collect();
        let fps: Vec<String> = fps.into_iter().cloned().collect();
        let items = self.kv.get_many(Table::Alerts, ALERTS_PK, &fps).await?;
        let (silences, bad_silences) = self.load_silences(now).await?;
        let mut report = TickReport::default();
        let mut alerts = Vec::with_capacity(items.len());
        let mut bad_alerts = 0;
        for it in items.iter().flatten().filter(|i| i.live(now)) {
            match self.decode_alert(it) {
                Ok(a) => alerts.push(a),
                Err(e) => {
                    bad_alerts += 1;
                    report
                        .errors
                        .push(format!("{e}: not used until repaired or deleted"));
                }
            }
        }
        report.errors.extend(
            bad_silences
                .iter()
                .map(|e| format!("{e}: not used until repaired or deleted")),
        );
        let mut due = Vec::new();
        for item in groups.into_iter().flatten() {
            report.groups += 1;
            match self.decode_group(&item) {
                Ok(st) if st.next_flush <= now => due.push((item, st)),
                Ok(_) => {}
                Err(e) => report.errors.push(format!(
                    "{e}: its group is not flushed until repaired or deleted"
                )),
            }
        }
        report.groups_due = due.len();
        let data = Arc::new(TickData {
            alerts_complete: bad_alerts == 0,
            index: self.route_index(&alerts),
            alerts,
            silences,
            owner,
            now,
            deadline: None,
            started,
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
}

/// A round's load: its report so far, what its flushes share, and the due groups.
type Prepared = (TickReport, Arc<TickData>, Vec<(Item, GroupState)>);

/// What one round loaded, shared by its group flushes (owned: spawned flushes of
/// `dispatch` outlive the round).
struct TickData {
    alerts: Vec<StoredAlert>,
    /// Every stored alert was readable: a group without members is empty (otherwise
    /// its members may be the unreadable ones, and it is kept).
    alerts_complete: bool,
    silences: Vec<Silence>,
    index: HashMap<(String, String), Vec<usize>>,
    /// `<instance>-<tick>`: the owner of this round's claims.
    owner: String,
    now: Millis,
    /// The tick's wall-clock deadline (`tick_budget`), if any.
    deadline: Option<tokio::time::Instant>,
    /// When the round started (its claims' leases count from about then).
    started: tokio::time::Instant,
}
