//! Flushing a batch of due groups (a whole tick, or one group of `dispatch`) with
//! tick-wide store writes:
//!
//! 1. plan: every group's mute stages, then per integration its log entry (loaded
//!    concurrently) through the dedup stage;
//! 2. claim, in chunks (4 × `concurrency` jobs, then each chunk twice the last): every
//!    notification of the chunk to send is claimed, with the writes of the entries
//!    that change without a send (logged, dead claims taken over), in one
//!    [`Kv::put_many`] (one commit in the embedded store), then one [`Kv::sync`]:
//!    every claim is durable before its send.
//!    A claim that loses its condition means someone else changed the entry: it is
//!    loaded and planned again (at most 4 rounds), never sent on. The next chunk is
//!    planned and claimed while the earlier chunks' notifications are sent;
//! 3. send: the claimed notifications, at most `concurrency` at once, each attempt
//!    spawned on the runtime (so every core renders and sends); a send that can no
//!    longer start (the tick's budget, or too little of the claim's lease left) is
//!    withdrawn and its group stays due;
//! 4. confirm: as sends complete, their confirmations (or releases) and the timers of
//!    the groups that are done are written in batches, one [`Kv::put_many`] in flight
//!    at a time taking everything that completed meanwhile; a batch starts with 64
//!    writes queued, or 2 ms after its oldest, or when the sends are over (fewer,
//!    larger commits for the store's single writer).

use super::*;
use crate::nflog::{Loaded, NflogRecord};
use crate::sink::Sink;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// One due group of a batch.
struct GroupRun<'c> {
    item: Item,
    st: GroupState,
    route: &'c Route,
    members: Vec<&'c StoredAlert>,
    sel: Selection,
    /// One per integration; `None`: withdrawn (deferred), not reported.
    reports: Vec<Option<NotificationReport>>,
    /// Integrations whose outcome is not known yet.
    open: usize,
    /// A send was withdrawn: the group stays due (its timer is not advanced).
    deferred: bool,
    /// Dead claims taken over by withdrawn sends (recorded in the store, not reported).
    taken_over_unreported: usize,
    errors: Vec<String>,
}

/// A confirmation batch written: the groups' errors, and the groups it ended.
type Committed = (Vec<(usize, String)>, Vec<usize>);

/// Where `dispatch` takes each group's report as the group ends: (item key, report).
pub(super) type OnGroupDone = dyn Fn(&str, TickReport) + Send + Sync;

/// One integration of one group, to plan against its log entry.
struct Job<'c> {
    g: usize,
    i: usize,
    integ: &'c Integration,
    key: String,
}

/// What planning decided for one job.
enum Step {
    Done {
        outcome: Outcome,
        took_over: bool,
    },
    /// A conditional write of the entry, then what follows from its success.
    Write((Table, Item, Cond), Then),
}

enum Then {
    /// A dead claim taken over with nothing to send.
    Suppressed {
        reason: Reason,
    },
    /// Only resolved alerts due, not sent by this integration: logged.
    Logged {
        reason: Reason,
        took_over: bool,
        held: Vec<HeldAlert>,
    },
    Claim(Box<ClaimPlan>),
}

struct ClaimPlan {
    record: NflogRecord,
    n: Notification,
    reason: Reason,
    possible_duplicate: bool,
    took_over: bool,
    held: Vec<HeldAlert>,
}

/// A claimed notification, to send.
struct ToSend {
    g: usize,
    i: usize,
    claimed: Claimed,
    /// Shared with the send's task (its alerts are not copied per send).
    n: Arc<Notification>,
    sink: Arc<dyn Sink>,
    reason: Reason,
    possible_duplicate: bool,
    took_over: bool,
    held: Vec<HeldAlert>,
}

/// A step of planning one chunk of jobs, done.
enum Planned<'c> {
    /// The chunk's (or its retried jobs') log entries, loaded.
    Loaded(Vec<Job<'c>>, Vec<Result<Loaded, NflogError>>),
    /// Their writes made: what follows from each write's result.
    Written(Vec<(Job<'c>, Then)>, WriteResults),
    /// The chunk's claims made durable (or not), and how long that took.
    Synced(Vec<ToSend>, Result<(), StoreError>, Duration),
}

type WriteResults = Result<Vec<Result<u64, StoreError>>, StoreError>;

/// A chunk's jobs are planned at most this many times (a write that lost its
/// condition is planned again); those left are in flight elsewhere.
const CLAIM_ROUNDS: usize = 4;

/// A send's result: `None` when it was withdrawn before any attempt.
type Sent = (ToSend, Option<(u32, Result<(), SinkError>)>);

/// What a write in a confirmation batch is, for its result.
enum Tag {
    Confirm {
        key: String,
        delivered: bool,
    },
    Unsent {
        key: String,
    },
    /// A group's next timer: the group, when it is next due.
    Group(usize, Millis),
}

/// A group whose flush is over: what becomes of its item.
enum GroupEnd {
    /// The group's state, and when it is next due.
    Write(Item, Cond, Millis),
    Delete(Item),
}

/// The writes made since the last confirmation batch.
#[derive(Default)]
struct Pending {
    writes: Vec<(Tag, (Table, Item, Cond))>,
    /// Groups to delete once the batch holding their confirmations is written.
    deletes: Vec<(usize, Item)>,
    /// Groups over with nothing of their own to write: they end with this batch.
    ended: Vec<usize>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn len(&self) -> usize {
        self.writes.len() + self.deletes.len() + self.ended.len()
    }
}

/// A confirmation batch starts with this many writes (and ended groups) queued, ...
const CONFIRM_BATCH: usize = 64;
/// ... or once its oldest has waited this long, or when the sends are over.
const CONFIRM_WAIT: Duration = Duration::from_millis(2);

/// A spawned task, aborted when dropped (a tick whose future is dropped stops its
/// sends, as an unspawned one would).
struct Spawned<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for Spawned<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for Spawned<T> {
    type Output = Result<T, tokio::task::JoinError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<'c> GroupRun<'c> {
    /// Records an integration's outcome; `true` when it was the group's last.
    fn close(&mut self, i: usize, outcome: Outcome, took_over: bool, held: Vec<HeldAlert>) -> bool {
        if let Some(r) = self.reports[i].as_mut() {
            r.outcome = outcome;
            r.took_over = took_over;
            r.held.extend(held);
        }
        self.open -= 1;
        self.open == 0
    }

    /// An integration's send withdrawn before any attempt.
    fn withdraw(&mut self, i: usize, took_over: bool) -> bool {
        self.reports[i] = None;
        self.deferred = true;
        self.taken_over_unreported += usize::from(took_over);
        self.open -= 1;
        self.open == 0
    }
}

fn failed(error: impl fmt::Display) -> Outcome {
    Outcome::Failed {
        reason: Reason::NothingChanged,
        attempts: 0,
        error: error.to_string(),
    }
}

impl Notifier {
    /// Flushes the due groups: see the module docs. Groups not started before the
    /// tick's deadline are deferred (still due). With `on_done`, each group's report
    /// goes there (with the group's item key) as soon as the group is over (its end
    /// written), and the returned report holds only what belongs to no group; without
    /// it, the returned report holds everything.
    pub(super) async fn flush_batch(
        &self,
        ctx: &TickData,
        due: Vec<(Item, GroupState)>,
        on_done: Option<&OnGroupDone>,
    ) -> TickReport {
        let now = ctx.now;
        let t_start = tokio::time::Instant::now();
        let mut out = TickReport::default();
        let mut groups: Vec<GroupRun<'_>> = Vec::with_capacity(due.len());
        let mut jobs: Vec<Job<'_>> = Vec::new();
        for (item, st) in due {
            if ctx
                .deadline
                .is_some_and(|d| tokio::time::Instant::now() >= d)
            {
                out.deferred += 1;
                continue;
            }
            let route = match self.config.route.by_id(&st.route) {
                Some(r) if r.key == st.route_key => r,
                _ => {
                    // The configuration changed under this group: drop it (its alerts
                    // start a new group on their route).
                    if let Err(e) = self.delete_group(&item).await {
                        out.errors.push(format!("group {}: {e}", st.key));
                    }
                    continue;
                }
            };
            let mut members: Vec<&StoredAlert> = ctx
                .index
                .get(&(st.route.clone(), st.key.clone()))
                .map(|v| {
                    v.iter()
                        .map(|&i| &ctx.alerts[i])
                        .filter(|a| {
                            st.removed
                                .get(&a.labels.fingerprint_hex())
                                .is_none_or(|&u| a.updated_at > u)
                        })
                        .collect()
                })
                .unwrap_or_default();
            if members.is_empty() {
                if ctx.alerts_complete {
                    let _ = self.delete_group(&item).await;
                }
                continue;
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
            let g = groups.len();
            let reports: Vec<Option<NotificationReport>> = integrations
                .iter()
                .map(|integ| {
                    Some(NotificationReport {
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
                    })
                })
                .collect();
            let mut open = 0;
            if !sel.alerts.is_empty() {
                let hash = hash_hex(&st.key);
                for (i, integ) in integrations.iter().enumerate() {
                    jobs.push(Job {
                        g,
                        i,
                        integ,
                        key: NflogStore::key(&route.receiver, integ.kind, integ.index, &hash),
                    });
                    open += 1;
                }
            }
            groups.push(GroupRun {
                item,
                st,
                route,
                members,
                sel,
                reports,
                open,
                deferred: false,
                taken_over_unreported: 0,
                errors: Vec::new(),
            });
        }

        let planned_at = tokio::time::Instant::now();
        let mut pending = Pending::default();
        // Groups with nothing to send (every alert muted) are done already.
        for g in 0..groups.len() {
            if groups[g].open == 0 {
                self.group_done(ctx, &mut groups, g, &mut pending);
            }
        }

        // Plan and claim in chunks, each chunk's claims made durable before its sends
        // start; the next chunk is planned while the earlier ones are sent. Within a
        // chunk, a job whose write lost its condition is planned again (at most
        // `CLAIM_ROUNDS` rounds) against the entry as it is now.
        let n = self.opts.concurrency.max(1);
        // The first chunk is 4 × `concurrency` jobs, each next one twice the last: the
        // sends start early and the syncs stay few (each one stalls the store's writer).
        let mut chunk = n.saturating_mul(4).max(1);
        let mut chunks: VecDeque<Vec<Job<'_>>> = VecDeque::new();
        let mut jobs = jobs.into_iter().peekable();
        while jobs.peek().is_some() {
            chunks.push_back(jobs.by_ref().take(chunk).collect());
            chunk = chunk.saturating_mul(2);
        }
        let nchunks = chunks.len();
        // The chunk being planned: its step in flight, its round, its claims not yet
        // made durable.
        let mut planner: futures::stream::FuturesUnordered<BoxFuture<'_, Planned<'_>>> =
            futures::stream::FuturesUnordered::new();
        let mut round = 0;
        let mut claimed: Vec<ToSend> = Vec::new();
        // Claims made durable, waiting for a send slot; the sends under way.
        let mut ready: VecDeque<ToSend> = VecDeque::new();
        let mut sends: futures::stream::FuturesUnordered<BoxFuture<'_, Sent>> =
            futures::stream::FuturesUnordered::new();
        let mut first_send: Option<Duration> = None;
        // The claims' syncs, in all.
        let mut t_sync = Duration::ZERO;
        let mut commits: futures::stream::FuturesUnordered<BoxFuture<'_, Committed>> =
            futures::stream::FuturesUnordered::new();
        let mut nsent = 0usize;
        let mut ncommits = 0usize;
        // When the oldest write waiting for a confirmation batch was queued.
        let mut pending_since: Option<tokio::time::Instant> = None;
        loop {
            if planner.is_empty() {
                if let Some(c) = chunks.pop_front() {
                    round = 0;
                    planner.push(self.load_jobs(c, n));
                }
            }
            while sends.len() < n {
                let Some(s) = ready.pop_front() else { break };
                first_send.get_or_insert_with(|| t_start.elapsed());
                sends.push(self.send_one(ctx, s).boxed());
            }
            let sends_done = planner.is_empty() && ready.is_empty() && sends.is_empty();
            if pending.is_empty() {
                pending_since = None;
            } else {
                let since = *pending_since.get_or_insert_with(tokio::time::Instant::now);
                // A batch starts once the last one is written, and when it is full
                // enough (or has waited long enough, or nothing more is coming): fewer,
                // larger commits for the store's single writer.
                if commits.is_empty()
                    && (sends_done
                        || pending.len() >= CONFIRM_BATCH
                        || since.elapsed() >= CONFIRM_WAIT)
                {
                    ncommits += 1;
                    let batch = std::mem::take(&mut pending);
                    pending_since = None;
                    commits.push(self.commit(batch).boxed());
                }
            }
            if sends_done && commits.is_empty() {
                break;
            }
            let batch_due = pending_since
                .filter(|_| commits.is_empty())
                .map(|t| t + CONFIRM_WAIT);
            tokio::select! {
                _ = tokio::time::sleep_until(batch_due.unwrap_or_else(tokio::time::Instant::now)), if batch_due.is_some() => {}
                Some(step) = planner.next(), if !planner.is_empty() => {
                    let next = match step {
                        Planned::Loaded(jobs, loads) => {
                            self.planned(ctx, &mut groups, &mut pending, jobs, loads)
                        }
                        Planned::Written(thens, results) => {
                            round += 1;
                            let retry = self.written(ctx, &mut groups, &mut pending, thens, results, &mut claimed);
                            match round < CLAIM_ROUNDS && !retry.is_empty() {
                                true => Some(self.load_jobs(retry, n)),
                                false => {
                                    for job in retry {
                                        let outcome = Outcome::InFlight {
                                            owner: "another invocation (conflicting writes)".into(),
                                        };
                                        if groups[job.g].close(job.i, outcome, false, vec![]) {
                                            self.group_done(ctx, &mut groups, job.g, &mut pending);
                                        }
                                    }
                                    None
                                }
                            }
                        }
                        Planned::Synced(list, Ok(()), took) => {
                            t_sync += took;
                            ready.extend(list);
                            None
                        }
                        // Not durable: nothing is sent on these claims.
                        Planned::Synced(list, Err(e), took) => {
                            t_sync += took;
                            for s in list {
                                let key = s.claimed.key.clone();
                                pending.writes.push((
                                    Tag::Unsent { key },
                                    NflogStore::unsent_write(s.claimed, now),
                                ));
                                if groups[s.g].close(s.i, failed(&e), s.took_over, vec![]) {
                                    self.group_done(ctx, &mut groups, s.g, &mut pending);
                                }
                            }
                            None
                        }
                    };
                    // A chunk whose planning is over makes its claims durable.
                    match next {
                        Some(f) => planner.push(f),
                        None if !claimed.is_empty() => {
                            let list = std::mem::take(&mut claimed);
                            let kv = &self.kv;
                            planner.push(
                                async move {
                                    let t = tokio::time::Instant::now();
                                    let r = kv.sync().await;
                                    Planned::Synced(list, r, t.elapsed())
                                }
                                .boxed(),
                            );
                        }
                        None => {}
                    }
                }
                Some((s, res)) = sends.next(), if !sends.is_empty() => {
                    nsent += 1;
                    self.sent(ctx, &mut groups, s, res, &mut pending)
                }
                Some((errors, ended)) = commits.next(), if !commits.is_empty() => {
                    for (g, e) in errors {
                        groups[g].errors.push(e);
                    }
                    if let Some(cb) = on_done {
                        for g in ended {
                            let mut r = TickReport::default();
                            self.report_group(&mut groups[g], &mut r);
                            cb(&groups[g].item.sk, r);
                        }
                    }
                }
            }
        }

        tracing::debug!(
            groups = groups.len(),
            claim_chunks = nchunks,
            sends = nsent,
            confirm_batches = ncommits,
            groups_planned = ?planned_at.saturating_duration_since(t_start),
            first_send = ?first_send,
            claim_syncs = ?t_sync,
            total = ?t_start.elapsed(),
            "flushed a batch"
        );
        for mut g in groups {
            self.report_group(&mut g, &mut out);
        }
        out
    }

    /// Loads the log entries of `jobs`, `n` at once.
    fn load_jobs<'a>(&'a self, jobs: Vec<Job<'a>>, n: usize) -> BoxFuture<'a, Planned<'a>> {
        let nflog = &self.nflog;
        async move {
            // `n` entries per read (one read transaction in the embedded store, `n`
            // reads at once in DynamoDB).
            let keys: Vec<String> = jobs.iter().map(|j| j.key.clone()).collect();
            let mut loads: Vec<Result<Loaded, NflogError>> = Vec::with_capacity(keys.len());
            for chunk in keys.chunks(n.max(1)) {
                loads.extend(nflog.load_many(chunk).await);
            }
            Planned::Loaded(jobs, loads)
        }
        .boxed()
    }

    /// The dedup stage of loaded jobs: the outcomes of those with nothing to write, and
    /// the writes of the others (to make next).
    fn planned<'a>(
        &'a self,
        ctx: &TickData,
        groups: &mut [GroupRun<'a>],
        pending: &mut Pending,
        jobs: Vec<Job<'a>>,
        loads: Vec<Result<Loaded, NflogError>>,
    ) -> Option<BoxFuture<'a, Planned<'a>>> {
        let mut writes = Vec::new();
        let mut thens: Vec<(Job<'_>, Then)> = Vec::new();
        for (job, loaded) in jobs.into_iter().zip(loads) {
            let step = match loaded {
                Ok(loaded) => self.plan_one(ctx, &groups[job.g], &job, loaded),
                Err(e) if e.is_unreadable() => Step::Done {
                    outcome: Outcome::Unreadable {
                        error: e.to_string(),
                    },
                    took_over: false,
                },
                Err(e) => Step::Done {
                    outcome: failed(e),
                    took_over: false,
                },
            };
            match step {
                Step::Done { outcome, took_over } => {
                    if groups[job.g].close(job.i, outcome, took_over, vec![]) {
                        self.group_done(ctx, groups, job.g, pending);
                    }
                }
                Step::Write(w, then) => {
                    writes.push(w);
                    thens.push((job, then));
                }
            }
        }
        if writes.is_empty() {
            return None;
        }
        let kv = &self.kv;
        Some(async move { Planned::Written(thens, kv.put_many(writes).await) }.boxed())
    }

    /// The writes of planned jobs made: claims join `claimed`, the other outcomes are
    /// recorded. Returns the jobs whose write lost its condition (to plan again).
    fn written<'a>(
        &self,
        ctx: &TickData,
        groups: &mut [GroupRun<'a>],
        pending: &mut Pending,
        thens: Vec<(Job<'a>, Then)>,
        results: WriteResults,
        claimed: &mut Vec<ToSend>,
    ) -> Vec<Job<'a>> {
        let mut retry = Vec::new();
        for (k, (job, then)) in thens.into_iter().enumerate() {
            let r = match &results {
                Ok(rs) => match rs.get(k) {
                    Some(Ok(v)) => Ok(*v),
                    Some(Err(StoreError::Conflict(_))) => {
                        retry.push(job);
                        continue;
                    }
                    Some(Err(e)) => Err(e.to_string()),
                    None => Err("the store answered fewer writes than asked".into()),
                },
                Err(e) => Err(e.to_string()),
            };
            let (outcome, took_over, held) = match (r, then) {
                (Err(e), _) => (failed(e), false, vec![]),
                (Ok(_), Then::Suppressed { reason }) => {
                    (Outcome::Suppressed { reason }, true, vec![])
                }
                (
                    Ok(_),
                    Then::Logged {
                        reason,
                        took_over,
                        held,
                    },
                ) => (Outcome::Logged { reason }, took_over, held),
                (Ok(version), Then::Claim(c)) => {
                    let c = *c;
                    claimed.push(ToSend {
                        g: job.g,
                        i: job.i,
                        claimed: NflogStore::claimed(job.key, c.record, version),
                        n: Arc::new(c.n),
                        sink: job.integ.sink.clone(),
                        reason: c.reason,
                        possible_duplicate: c.possible_duplicate,
                        took_over: c.took_over,
                        held: c.held,
                    });
                    continue;
                }
            };
            if groups[job.g].close(job.i, outcome, took_over, held) {
                self.group_done(ctx, groups, job.g, pending);
            }
        }
        retry
    }

    /// Moves a finished group's outcomes into `out` (and the counters); a group
    /// reported once reports nothing again.
    fn report_group(&self, g: &mut GroupRun<'_>, out: &mut TickReport) {
        out.deferred += usize::from(std::mem::take(&mut g.deferred));
        let taken = std::mem::take(&mut g.taken_over_unreported);
        out.taken_over += taken;
        self.counters
            .taken_over
            .fetch_add(taken as u64, Ordering::Relaxed);
        out.errors.append(&mut g.errors);
        for r in std::mem::take(&mut g.reports).into_iter().flatten() {
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
                    self.counters.failed.fetch_add(1, Ordering::Relaxed);
                }
                Outcome::Unreadable { error } => {
                    out.unreadable += 1;
                    self.counters.unreadable.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(receiver = %r.receiver, integration = %r.integration, group = %r.group_key, error = %error, "unreadable notification-log entry: nothing sent for it");
                    out.errors.push(error.clone());
                }
                _ => {}
            }
            if r.took_over {
                out.taken_over += 1;
                self.counters.taken_over.fetch_add(1, Ordering::Relaxed);
            }
            out.notifications.push(r);
        }
    }

    /// The dedup stage of one integration against its loaded log entry: what to write
    /// (and then send), or the outcome when nothing is.
    fn plan_one(&self, ctx: &TickData, g: &GroupRun<'_>, job: &Job<'_>, loaded: Loaded) -> Step {
        let now = ctx.now;
        let (route, st, integ) = (g.route, &g.st, job.integ);
        let mut rec = loaded.record.clone().unwrap_or_default();
        rec.receiver = route.receiver.clone();
        rec.integration = format!("{}[{}]", integ.kind, integ.index);
        rec.group_key = st.key.clone();
        let took_over = match rec.claim_state(&ctx.owner, self.opts.exclusive_store, now) {
            ClaimState::Live { owner } => {
                return Step::Done {
                    outcome: Outcome::InFlight { owner },
                    took_over: false,
                }
            }
            ClaimState::Dead => {
                let c = rec.claim.as_ref().map(|c| c.owner.clone());
                tracing::warn!(key = %job.key, owner = ?c, "taking over a dead claim: what it was sending may have been delivered");
                rec.take_over()
            }
            ClaimState::Free => {
                rec.take_over();
                false
            }
        };
        let plan = stages::dedup_stage(
            &g.sel,
            rec.sent.as_ref(),
            rec.unconfirmed.as_ref(),
            integ.sink.send_resolved(),
            route,
            now,
        );
        let reason = plan.decision.reason;
        if !plan.decision.send {
            // Record the take-over (so it is not found again) even with nothing due.
            // Every alert is held as "unchanged": the outcome says so once.
            return match took_over {
                true => Step::Write(
                    NflogStore::record_write(&loaded, &rec, now),
                    Then::Suppressed { reason },
                ),
                false => Step::Done {
                    outcome: Outcome::Suppressed { reason },
                    took_over: false,
                },
            };
        }
        if plan.send.is_empty() {
            // Everything resolved and the integration does not send resolved: the log
            // is cleared, nothing goes out.
            rec.sent = Some(plan.entry.clone());
            rec.unconfirmed = None;
            return Step::Write(
                NflogStore::record_write(&loaded, &rec, now),
                Then::Logged {
                    reason,
                    took_over,
                    held: plan.held,
                },
            );
        }
        let dedup_id = hash_hex(&format!(
            "{}|{:?}|{}|{}",
            job.key,
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
        let (write, record) = NflogStore::claim_write(&loaded, rec, claim, now);
        let n = Notification {
            receiver: route.receiver.clone(),
            group_key: st.key.clone(),
            group_labels: st.labels.clone(),
            alerts: plan.send,
            external_url: self.external_url.clone(),
            now,
            nflog_key: job.key.clone(),
            dedup_id,
        };
        Step::Write(
            write,
            Then::Claim(Box::new(ClaimPlan {
                record,
                n,
                reason,
                possible_duplicate: plan.decision.unconfirmed,
                took_over,
                held: plan.held,
            })),
        )
    }

    /// Sends one claimed notification (its attempts spawned on the runtime), unless
    /// it can no longer start: past the tick's deadline, or with less of its claim's
    /// lease left than a send may take (then another invocation could take it over
    /// while it is still being sent). The attempts end before the lease does.
    async fn send_one(&self, ctx: &TickData, s: ToSend) -> Sent {
        let start = tokio::time::Instant::now();
        let lease_end = ctx.started + self.opts.lease;
        let margin = self.opts.send_budget.min(self.opts.lease / 2);
        if ctx.deadline.is_some_and(|d| start >= d) || start + margin > lease_end {
            return (s, None);
        }
        let deadline = Some(ctx.deadline.map_or(lease_end, |d| d.min(lease_end)));
        let task = Spawned(tokio::spawn(deliver(
            s.sink.clone(),
            s.n.clone(),
            self.opts.send_budget,
            self.opts.backoff,
            deadline,
        )));
        match task.await {
            // Nothing was attempted (no time left): withdrawn.
            Ok((0, _)) => (s, None),
            Ok(r) => (s, Some(r)),
            Err(e) => (
                s,
                Some((
                    1,
                    Err(SinkError::retryable(format!("send task failed: {e}"))),
                )),
            ),
        }
    }

    /// A send is over: its outcome, and its confirmation (or release, or withdrawal)
    /// queued with the group's end when it was the group's last.
    fn sent(
        &self,
        ctx: &TickData,
        groups: &mut [GroupRun<'_>],
        s: ToSend,
        res: Option<(u32, Result<(), SinkError>)>,
        pending: &mut Pending,
    ) {
        let now = ctx.now;
        let key = s.claimed.key.clone();
        let last = match res {
            None => {
                pending.writes.push((
                    Tag::Unsent { key },
                    NflogStore::unsent_write(s.claimed, now),
                ));
                groups[s.g].withdraw(s.i, s.took_over)
            }
            Some((attempts, res)) => {
                let delivered = res.is_ok();
                let outcome = match res {
                    Ok(()) => Outcome::Sent {
                        reason: s.reason,
                        attempts,
                        possible_duplicate: s.possible_duplicate,
                    },
                    // The claim is released (what it sent joins the unconfirmed
                    // attempts) so the next flush retries.
                    Err(e) => Outcome::Failed {
                        reason: s.reason,
                        attempts,
                        error: e.message,
                    },
                };
                let write = match delivered {
                    true => NflogStore::confirm_write(s.claimed, now),
                    false => NflogStore::release_write(s.claimed, now),
                };
                pending
                    .writes
                    .push((Tag::Confirm { key, delivered }, write));
                groups[s.g].close(s.i, outcome, s.took_over, s.held)
            }
        };
        if last {
            self.group_done(ctx, groups, s.g, pending);
        }
    }

    /// Every integration of group `g` is done: queue what becomes of its item (the next
    /// timer, or its deletion when it is empty; nothing while another invocation holds
    /// one of its claims, or when a send was withdrawn: it stays due).
    fn group_done(
        &self,
        ctx: &TickData,
        groups: &mut [GroupRun<'_>],
        g: usize,
        pending: &mut Pending,
    ) {
        match Self::group_end(ctx, &mut groups[g]) {
            Some(GroupEnd::Write(item, cond, at)) => pending
                .writes
                .push((Tag::Group(g, at), (Table::Alerts, item, cond))),
            Some(GroupEnd::Delete(item)) => pending.deletes.push((g, item)),
            // Nothing to write: the group is over with the next batch.
            None => pending.ended.push(g),
        }
    }

    fn group_end(ctx: &TickData, g: &mut GroupRun<'_>) -> Option<GroupEnd> {
        let now = ctx.now;
        let outcomes = || g.reports.iter().flatten().map(|r| &r.outcome);
        // The claim holder advances the group; if it crashed, a later tick (after its
        // lease, or at once when this process owns the store) takes over.
        if g.deferred || outcomes().any(|o| matches!(o, Outcome::InFlight { .. })) {
            return None;
        }
        let ok =
            !outcomes().any(|o| matches!(o, Outcome::Failed { .. } | Outcome::Unreadable { .. }));
        let st = &mut g.st;
        let gi = g.route.group_interval.as_millis().max(1) as i64;
        st.next_flush += ((now - st.next_flush).div_euclid(gi) + 1) * gi;
        st.has_flushed = true;
        if ok {
            for a in &g.members {
                if a.resolved(now) {
                    st.removed.insert(a.labels.fingerprint_hex(), a.updated_at);
                }
            }
        }
        // Forget removals of alerts the store no longer has.
        if !st.removed.is_empty() {
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
        }
        let empty = ok && g.members.iter().all(|a| a.resolved(now));
        Some(match empty {
            true => GroupEnd::Delete(g.item.clone()),
            false => GroupEnd::Write(
                group_item(&g.item.sk, st),
                Cond::Version(g.item.version),
                st.next_flush,
            ),
        })
    }

    /// Writes a batch of confirmations, releases and group timers in one
    /// [`Kv::put_many`], then deletes the batch's empty groups. Returns the groups'
    /// errors (a conflict on a group is someone else's newer write: not an error) and
    /// the groups the batch ended (their timer written or item deleted, or nothing of
    /// theirs to write).
    async fn commit(&self, batch: Pending) -> Committed {
        let mut errors = Vec::new();
        let ended: Vec<usize> = batch
            .writes
            .iter()
            .filter_map(|(t, _)| match t {
                Tag::Group(g, _) => Some(*g),
                _ => None,
            })
            .chain(batch.deletes.iter().map(|(g, _)| *g))
            .chain(batch.ended.iter().copied())
            .collect();
        let (tags, writes): (Vec<Tag>, Vec<(Table, Item, Cond)>) = batch.writes.into_iter().unzip();
        // The groups' sort keys, to schedule their next flush once written.
        let group_sks: Vec<Option<String>> = tags
            .iter()
            .zip(&writes)
            .map(|(t, (_, item, _))| {
                (self.opts.exclusive_store && matches!(t, Tag::Group(..))).then(|| item.sk.clone())
            })
            .collect();
        if !writes.is_empty() {
            match self.kv.put_many(writes).await {
                Ok(results) => {
                    for ((tag, r), sk) in tags.iter().zip(results).zip(group_sks) {
                        let e = match r {
                            Ok(_) => {
                                if let (Tag::Group(_, at), Some(sk)) = (tag, sk) {
                                    self.recent().schedule(sk, *at);
                                }
                                continue;
                            }
                            Err(e) => e,
                        };
                        let conflict = matches!(e, StoreError::Conflict(_));
                        match tag {
                            Tag::Confirm {
                                key,
                                delivered: true,
                            } if conflict => {
                                tracing::warn!(key = %key, "sent, but the claim was taken over meanwhile: its taker resends (a possible duplicate)")
                            }
                            Tag::Confirm {
                                key,
                                delivered: false,
                            } if conflict => {
                                tracing::warn!(key = %key, "a failed send's claim was taken over meanwhile")
                            }
                            Tag::Confirm { key, .. } | Tag::Unsent { key } => {
                                tracing::error!(key = %key, error = %e, "could not write the end of a claim: it is taken over after its lease")
                            }
                            Tag::Group(..) if conflict => {}
                            Tag::Group(g, _) => errors.push((*g, format!("group: {e}"))),
                        }
                    }
                }
                Err(e) => {
                    for tag in &tags {
                        match tag {
                            Tag::Confirm {
                                key,
                                delivered: true,
                            } => {
                                tracing::error!(key = %key, error = %e, "sent, but could not confirm in the notification log (the next flush may resend it)")
                            }
                            Tag::Confirm { key, .. } | Tag::Unsent { key } => {
                                tracing::error!(key = %key, error = %e, "could not release a claim: it is taken over after its lease")
                            }
                            Tag::Group(g, _) => errors.push((*g, format!("group: {e}"))),
                        }
                    }
                }
            }
        }
        let deletes = futures::future::join_all(
            batch
                .deletes
                .iter()
                .map(|(g, item)| async move { (*g, self.delete_group(item).await) }),
        )
        .await;
        for (g, r) in deletes {
            match r {
                Ok(()) | Err(StoreError::Conflict(_)) => {}
                Err(e) => errors.push((g, format!("group: {e}"))),
            }
        }
        (errors, ended)
    }
}

/// Attempts until success, a non-retryable error, or the send budget (or `deadline`)
/// is spent.
async fn deliver(
    sink: Arc<dyn Sink>,
    n: Arc<Notification>,
    send_budget: Duration,
    backoff: Duration,
    deadline: Option<tokio::time::Instant>,
) -> (u32, Result<(), SinkError>) {
    let mut end = tokio::time::Instant::now() + send_budget;
    if let Some(t) = deadline {
        end = end.min(t);
    }
    let mut backoff = backoff;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let left = end.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return (
                attempts - 1,
                Err(SinkError::retryable(
                    "send budget spent before the first attempt",
                )),
            );
        }
        match sink.send(&n, left).await {
            Ok(()) => return (attempts, Ok(())),
            Err(e) if !e.retryable => return (attempts, Err(e)),
            Err(e) => {
                let jitter = Duration::from_millis(
                    rand::random::<u64>() % (backoff.as_millis() as u64 / 2 + 1),
                );
                let wait = backoff + jitter;
                if tokio::time::Instant::now() + wait >= end {
                    return (attempts, Err(e));
                }
                tracing::debug!(attempt = attempts, error = %e, "retrying notification");
                tokio::time::sleep(wait).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
