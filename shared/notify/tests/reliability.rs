//! At-least-once delivery across a crash mid-send, unreadable log entries, and
//! independent groups and integrations (issue 11, defects 1 and 2), on the embedded
//! store with time stepped by the test (the dispatcher test uses the real clock).

mod common;
use argus_model::{Item, Kv, Table};
use argus_notify::{
    Integration, Notification, Notifier, NotifierOptions, Outcome, Sink, SinkError,
};
use common::*;
use std::sync::Arc;
use std::time::Duration;

fn cfg(url: &str) -> String {
    format!(
        r#"
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
receivers:
  - name: hook
    webhook_configs:
      - url: {url}
"#
    )
}

/// A sink that never answers: the process "dies" mid-send.
struct Hang;
#[async_trait::async_trait]
impl Sink for Hang {
    fn kind(&self) -> &'static str {
        "webhook"
    }
    fn send_resolved(&self) -> bool {
        true
    }
    async fn send(&self, _: &Notification, _: Duration) -> Result<(), SinkError> {
        futures::future::pending().await
    }
}

fn hanging(store: Arc<dyn Kv>, yaml: &str) -> Notifier {
    Notifier::with_integrations(
        store,
        argus_notify::load_config(yaml).unwrap(),
        vec![(
            "hook".into(),
            vec![Integration {
                kind: "webhook",
                index: 0,
                sink: Arc::new(Hang),
            }],
        )],
        "",
    )
}

fn with_opts(n: Notifier, exclusive: bool) -> Notifier {
    let o = n.options().clone();
    n.with_options(NotifierOptions {
        exclusive_store: exclusive,
        ..o
    })
}

/// The firing is claimed and (as far as anyone knows) delivered, the sender dies, the
/// alert resolves. Before: the claim blocked the group for its lease, then the log
/// still said "never notified" and the resolved was never sent.
async fn crash_then_resolve(exclusive: bool) {
    let hook = Recorder::start().await;
    let store = kv();
    let yaml = cfg(&hook.url);
    let a = [("alertname", "A")];
    let crashing = hanging(store.clone(), &yaml);
    crashing.ingest(vec![alert(&a)], T0).await.unwrap();
    let killed = tokio::time::timeout(Duration::from_millis(300), crashing.tick(T0 + 30 * S)).await;
    assert!(killed.is_err(), "the send hangs");
    drop(crashing);

    let healthy = with_opts(notifier(store.clone(), &yaml), exclusive);
    // The alert resolves 5 s after the crash.
    healthy
        .ingest(vec![resolved(&a, T0 + 35 * S)], T0 + 35 * S)
        .await
        .unwrap();
    // Still inside the 60 s lease.
    let r = healthy.tick(T0 + 40 * S).await.unwrap();
    if exclusive {
        // The restarted owner of the store takes its predecessor's claim over at once,
        // and sends the resolved: the receiver may hold the firing.
        assert_eq!(r.taken_over, 1, "{r:#?}");
        let sent: Vec<_> = r.sent().collect();
        assert_eq!(sent.len(), 1, "{r:#?}");
        assert!(matches!(
            sent[0].outcome,
            Outcome::Sent {
                reason: argus_notify::Reason::AllResolved,
                possible_duplicate: true,
                ..
            }
        ));
    } else {
        assert!(
            matches!(r.notifications[0].outcome, Outcome::InFlight { .. }),
            "{r:#?}"
        );
        assert!(hook.bodies().is_empty());
        // After the lease: taken over, the resolved goes out.
        let r = healthy.tick(T0 + 91 * S).await.unwrap();
        assert_eq!((r.taken_over, r.sent().count()), (1, 1), "{r:#?}");
    }
    let bodies = hook.take();
    assert_eq!(bodies.len(), 1, "{bodies:#?}");
    assert_eq!(bodies[0]["status"], "resolved");
    assert_eq!(bodies[0]["alerts"][0]["status"], "resolved");
    // Counted, then settled: nothing more for this group.
    let stats = healthy.stats();
    assert_eq!((stats.taken_over, stats.possible_duplicates), (1, 1));
    // Served on /metrics, in a format the real promtool accepts.
    let resp = healthy
        .handle_api(
            http::Request::get("/metrics")
                .body(bytes::Bytes::new())
                .unwrap(),
            T0 + 41 * S,
        )
        .await;
    assert_eq!(resp.status(), 200);
    let text = String::from_utf8(resp.body().to_vec()).unwrap();
    assert!(
        text.contains("\nargus_notifier_possible_duplicates_total 1\n")
            && text.contains("\nargus_notifier_claims_taken_over_total 1\n")
            && text.contains("\nargus_notifier_notifications_total 1\n"),
        "{text}"
    );
    let mut check = std::process::Command::new(argus_testkit::tool("promtool"))
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let r = healthy.tick(T0 + 1000 * S).await.unwrap();
    assert_eq!(r.sent().count(), 0, "{r:#?}");
    assert!(hook.bodies().is_empty());
}

#[tokio::test]
async fn a_resolved_after_a_crash_mid_send_is_delivered_by_the_restarted_owner_at_once() {
    crash_then_resolve(true).await;
}

#[tokio::test]
async fn a_resolved_after_a_crash_mid_send_is_delivered_after_the_lease() {
    crash_then_resolve(false).await;
}

/// The crash happens while the alert still fires: the restarted owner resends the
/// firing (a counted possible duplicate), then the resolved in its turn.
#[tokio::test]
async fn a_firing_interrupted_by_a_crash_is_resent_and_counted() {
    let hook = Recorder::start().await;
    let store = kv();
    let yaml = cfg(&hook.url);
    let a = [("alertname", "A")];
    let crashing = hanging(store.clone(), &yaml);
    crashing.ingest(vec![alert(&a)], T0).await.unwrap();
    let _ = tokio::time::timeout(Duration::from_millis(300), crashing.tick(T0 + 30 * S)).await;
    drop(crashing);
    let healthy = with_opts(notifier(store.clone(), &yaml), true);
    let r = healthy.tick(T0 + 31 * S).await.unwrap();
    assert_eq!((r.taken_over, r.possible_duplicates), (1, 1), "{r:#?}");
    assert_eq!(hook.take().len(), 1);
    healthy
        .ingest(vec![resolved(&a, T0 + 60 * S)], T0 + 60 * S)
        .await
        .unwrap();
    let r = healthy.tick(T0 + 331 * S).await.unwrap();
    assert_eq!((r.sent().count(), r.possible_duplicates), (1, 0), "{r:#?}");
    let bodies = hook.take();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["status"], "resolved");
}

/// A send that fails (timeout: the receiver may have processed it) is an unconfirmed
/// attempt: if the alert resolves before the next flush, the resolved still goes out.
#[tokio::test]
async fn a_timed_out_firing_still_gets_its_resolved() {
    let hook = Recorder::start().await;
    // The receiver takes 2 s for every attempt within a 1 s budget: all fail.
    for _ in 0..4 {
        hook.push_response(200, Duration::from_secs(2));
    }
    let store = kv();
    let yaml = format!("{}        timeout: 300ms\n", cfg(&hook.url));
    let n = notifier(store.clone(), &yaml).with_options(NotifierOptions {
        send_budget: Duration::from_millis(700),
        backoff: Duration::from_millis(20),
        ..Default::default()
    });
    let a = [("alertname", "A")];
    n.ingest(vec![alert(&a)], T0).await.unwrap();
    let r = n.tick(T0 + 30 * S).await.unwrap();
    assert_eq!(r.failed().count(), 1, "{r:#?}");
    n.ingest(vec![resolved(&a, T0 + 60 * S)], T0 + 60 * S)
        .await
        .unwrap();
    // Let the abandoned slow answers finish, then answer at once.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    hook.state.lock().unwrap().responses.clear();
    hook.take();
    let r = n.tick(T0 + 330 * S).await.unwrap();
    let sent: Vec<_> = r.sent().collect();
    assert_eq!(sent.len(), 1, "{r:#?}");
    assert!(matches!(
        sent[0].outcome,
        Outcome::Sent {
            reason: argus_notify::Reason::AllResolved,
            possible_duplicate: true,
            ..
        }
    ));
    assert_eq!(hook.take()[0]["status"], "resolved");
}

/// A corrupt or unknown-version log entry is reported and nothing is sent for it (not
/// "never notified", which would resend the firing); the entry is left as it is.
#[tokio::test]
async fn unreadable_log_entries_are_reported_not_resent() {
    let hook = Recorder::start().await;
    let store = kv();
    let yaml = cfg(&hook.url);
    let n = notifier(store.clone(), &yaml);
    n.ingest(vec![alert(&[("alertname", "A")])], T0)
        .await
        .unwrap();
    n.tick(T0 + 30 * S).await.unwrap();
    assert_eq!(hook.take().len(), 1);
    let entries = n.nflog().all().await.unwrap();
    assert_eq!(entries.len(), 1);
    let key = entries[0].0.clone();
    assert_eq!(entries[0].1.as_ref().unwrap().integration, "webhook[0]");
    for (i, (bad, kind)) in [
        (
            serde_json::json!({"v": 7, "future": true}),
            "record version 7",
        ),
        (
            serde_json::json!({"v": 1, "receiver": "hook", "integration": "webhook[0]",
                "group_key": "g", "sent": {"firing": ["not hex"], "resolved": [], "at": 1}}),
            "corrupt",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let t = T0 + 330 * S + i as i64 * 300 * S;
        let mut it = Item::new(argus_notify::service::NFLOG_PK, key.clone());
        it.attrs = bad.as_object().unwrap().clone();
        store
            .put(Table::Nflog, it, argus_model::Cond::Always)
            .await
            .unwrap();
        // A new alert in the group would normally be sent at the next interval.
        n.ingest(
            vec![
                alert(&[("alertname", "A")]),
                alert(&[("alertname", "A"), ("i", "2")]),
            ],
            t - 10 * S,
        )
        .await
        .unwrap();
        let before = n.stats().unreadable;
        let r = n.tick(t).await.unwrap();
        assert_eq!(r.unreadable, 1, "{r:#?}");
        assert!(
            r.errors
                .iter()
                .any(|e| e.contains(kind) && e.contains(&key)),
            "{r:#?}"
        );
        assert!(
            matches!(&r.notifications[0].outcome, Outcome::Unreadable { error } if error.contains(kind)),
            "{r:#?}"
        );
        assert!(hook.bodies().is_empty(), "nothing resent");
        assert_eq!(n.stats().unreadable, before + 1);
        // Left as it was.
        let it = store
            .get(Table::Nflog, argus_notify::service::NFLOG_PK, &key)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(serde_json::Value::Object(it.attrs), bad);
    }
}

/// Polls `f` until it holds (15 s at most: a generous bound, not a measurement).
async fn wait_for(what: &str, f: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "waited 15 s for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A receiver that answers only when the test lets it: group A's webhook is held while
/// group B's notification and both groups' log lines go out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_keeps_groups_and_integrations_independent() {
    let gate = Arc::new(tokio::sync::Notify::new());
    let seen: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let (g2, s2) = (gate.clone(), seen.clone());
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let (gate, seen) = (g2.clone(), s2.clone());
        async move {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let name = v["groupLabels"]["alertname"].as_str().unwrap().to_string();
            seen.lock().unwrap().push(name.clone());
            if name == "A" {
                gate.notified().await;
            }
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("n.jsonl");
    let yaml = format!(
        "route: {{receiver: hook, group_by: [alertname], group_wait: 0s, group_interval: 1s}}\n\
         receivers:\n  - name: hook\n    webhook_configs: [{{url: {url}}}]\n    log_configs: [{{path: {}}}]\n",
        log.display()
    );
    let n = Arc::new(notifier(kv(), &yaml).with_options(NotifierOptions {
        send_budget: Duration::from_secs(60),
        ..Default::default()
    }));
    let clock: Arc<dyn argus_model::Clock> = Arc::new(argus_model::SystemClock);
    let reports: Arc<std::sync::Mutex<Vec<argus_notify::TickReport>>> = Arc::default();
    let r2 = reports.clone();
    let dispatcher = tokio::spawn(n.clone().dispatch(
        clock.clone(),
        Duration::from_millis(100),
        move |r| r2.lock().unwrap().push(r),
    ));
    let now = || clock.now_ms();
    n.ingest(vec![alert(&[("alertname", "A")])], now())
        .await
        .unwrap();
    wait_for("A's webhook", || seen.lock().unwrap().contains(&"A".into())).await;
    n.ingest(vec![alert(&[("alertname", "B")])], now())
        .await
        .unwrap();
    let lines = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_for("B's webhook", || seen.lock().unwrap().contains(&"B".into())).await;
    wait_for("both log lines", || {
        let l = lines();
        l.contains(r#"{}:{alertname=\"A\"}"#) && l.contains(r#"{}:{alertname=\"B\"}"#)
    })
    .await;
    // A is still held: no report for its webhook yet.
    let a_webhook_done = |reports: &[argus_notify::TickReport]| {
        reports.iter().flat_map(|r| &r.notifications).any(|n| {
            n.group_key.contains("\"A\"")
                && n.integration == "webhook[0]"
                && matches!(n.outcome, Outcome::Sent { .. })
        })
    };
    assert!(!a_webhook_done(&reports.lock().unwrap()));
    gate.notify_one();
    wait_for("A's webhook answered", || {
        a_webhook_done(&reports.lock().unwrap())
    })
    .await;
    // A's group flushed once in all that time (no second flush while it was held).
    assert_eq!(seen.lock().unwrap().iter().filter(|s| *s == "A").count(), 1);
    dispatcher.abort();
}

/// A Lambda tick stops at its budget: the group it could not start stays due and the
/// next tick sends it; the send cut short by the budget is retried, not lost.
#[tokio::test]
async fn a_tick_stops_at_its_budget_and_leaves_the_rest_due() {
    let hook = Recorder::start().await;
    // The first POST takes 2 s: longer than the whole tick budget.
    hook.push_response(200, Duration::from_secs(2));
    let n = notifier(kv(), &cfg(&hook.url)).with_options(NotifierOptions {
        concurrency: 1,
        tick_budget: Some(Duration::from_millis(400)),
        backoff: Duration::from_millis(20),
        ..Default::default()
    });
    n.ingest(
        vec![alert(&[("alertname", "A")]), alert(&[("alertname", "B")])],
        T0,
    )
    .await
    .unwrap();
    let r = n.tick(T0 + 30 * S).await.unwrap();
    assert_eq!((r.groups_due, r.deferred), (2, 1), "{r:#?}");
    assert_eq!(r.failed().count(), 1, "{r:#?}");
    // Let the abandoned slow answer finish server-side, then forget it.
    tokio::time::sleep(Duration::from_millis(1700)).await;
    hook.take();
    // Next tick: the deferred group (never flushed: still due) and the failed one's
    // retry at its group_interval.
    let r = n.tick(T0 + 31 * S).await.unwrap();
    assert_eq!((r.sent().count(), r.deferred), (1, 0), "{r:#?}");
    // Both still firing (re-sent by their source, as Prometheus does).
    n.ingest(
        vec![alert(&[("alertname", "A")]), alert(&[("alertname", "B")])],
        T0 + 300 * S,
    )
    .await
    .unwrap();
    let r = n.tick(T0 + 331 * S).await.unwrap();
    assert_eq!(r.sent().count(), 1, "{r:#?}");
    let mut names: Vec<String> = hook
        .take()
        .iter()
        .map(|b| b["groupLabels"]["alertname"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["A", "B"]);
}

/// The store as the notifier uses it: every write call and `sync`, in order, with
/// the nflog claims, other nflog writes and group timers each call holds.
struct Traced {
    inner: argus_store::EmbeddedKv,
    events: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Traced {
    fn log(&self, e: String) {
        self.events.lock().unwrap().push(e);
    }
    fn kinds<'a>(writes: impl Iterator<Item = (&'a Table, &'a Item)>) -> String {
        let (mut claims, mut nflog, mut groups, mut other) = (0, 0, 0, 0);
        for (t, i) in writes {
            match (t, i.pk.as_str()) {
                (Table::Nflog, _) if i.attrs.contains_key("claim") => claims += 1,
                (Table::Nflog, _) => nflog += 1,
                (Table::Alerts, argus_notify::service::GROUPS_PK) => groups += 1,
                _ => other += 1,
            }
        }
        format!("claims={claims} nflog={nflog} groups={groups} other={other}")
    }
}

#[async_trait::async_trait]
impl Kv for Traced {
    async fn get(
        &self,
        t: Table,
        pk: &str,
        sk: &str,
    ) -> Result<Option<Item>, argus_model::StoreError> {
        self.inner.get(t, pk, sk).await
    }
    async fn put(
        &self,
        t: Table,
        item: Item,
        cond: argus_model::Cond,
    ) -> Result<u64, argus_model::StoreError> {
        self.log(format!("put {}", Self::kinds([(&t, &item)].into_iter())));
        self.inner.put(t, item, cond).await
    }
    async fn put_batch(&self, t: Table, items: Vec<Item>) -> Result<(), argus_model::StoreError> {
        self.log("put_batch".into());
        self.inner.put_batch(t, items).await
    }
    async fn put_many(
        &self,
        writes: Vec<(Table, Item, argus_model::Cond)>,
    ) -> Result<Vec<Result<u64, argus_model::StoreError>>, argus_model::StoreError> {
        self.log(format!(
            "put_many {}",
            Self::kinds(writes.iter().map(|(t, i, _)| (t, i)))
        ));
        self.inner.put_many(writes).await
    }
    async fn delete(
        &self,
        t: Table,
        pk: &str,
        sk: &str,
        cond: argus_model::Cond,
    ) -> Result<(), argus_model::StoreError> {
        self.log("delete".into());
        self.inner.delete(t, pk, sk, cond).await
    }
    async fn query(
        &self,
        t: Table,
        pk: &str,
        from: Option<&str>,
    ) -> Result<Vec<Item>, argus_model::StoreError> {
        self.inner.query(t, pk, from).await
    }
    async fn scan(&self, t: Table) -> Result<Vec<Item>, argus_model::StoreError> {
        self.inner.scan(t).await
    }
    async fn sync(&self) -> Result<(), argus_model::StoreError> {
        self.log("sync".into());
        Kv::sync(&self.inner).await
    }
}

/// A sink that logs its sends into the store's trace.
struct Logging(Arc<std::sync::Mutex<Vec<String>>>);
#[async_trait::async_trait]
impl Sink for Logging {
    fn kind(&self) -> &'static str {
        "webhook"
    }
    fn send_resolved(&self) -> bool {
        true
    }
    async fn send(&self, _: &Notification, _: Duration) -> Result<(), SinkError> {
        self.0.lock().unwrap().push("send".into());
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok(())
    }
}

/// A tick claims the notifications it sends in chunks (4 × its concurrency, then each
/// twice the last), one store call a chunk, and makes each chunk's claims durable (`Kv::sync`, on a store that
/// syncs only when asked) before any of them is sent; the next chunk is claimed while
/// the first is sent. Otherwise it writes only confirmations and group timers, batched:
/// each notification confirmed once, each group's timer written once.
#[tokio::test]
async fn a_tick_claims_in_chunks_each_durable_before_its_sends() {
    let dir = tempfile::tempdir().unwrap();
    let inner = argus_store::EmbeddedKv::open_with(
        dir.path().join("argus.redb"),
        argus_store::Durability::Interval(Duration::from_secs(3600)),
    )
    .unwrap();
    let events: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let store: Arc<dyn Kv> = Arc::new(Traced {
        inner,
        events: events.clone(),
    });
    let n = Notifier::with_integrations(
        store.clone(),
        argus_notify::load_config(&cfg("http://unused")).unwrap(),
        vec![(
            "hook".into(),
            vec![Integration {
                kind: "webhook",
                index: 0,
                sink: Arc::new(Logging(events.clone())),
            }],
        )],
        "",
    )
    .with_options(NotifierOptions {
        concurrency: 4,
        ..Default::default()
    });
    let alerts = (0..20)
        .map(|i| alert(&[("alertname", &format!("A{i:02}"))]))
        .collect();
    n.ingest(alerts, T0).await.unwrap();
    events.lock().unwrap().clear();
    let r = n.tick(T0 + 30 * S).await.unwrap();
    assert_eq!(r.sent().count(), 20, "{r:#?}");
    let ev = events.lock().unwrap().clone();
    assert_eq!(
        ev[..2],
        ["put_many claims=16 nflog=0 groups=0 other=0", "sync"],
        "{ev:#?}"
    );
    // No send ever runs ahead of the claims made durable.
    let (mut claims, mut durable, mut sends, mut confirmed, mut timers) = (0, 0, 0, 0, 0);
    let mut chunks = Vec::new();
    for e in &ev {
        if e == "send" {
            sends += 1;
            assert!(
                sends <= durable,
                "a send before its claim was durable: {ev:#?}"
            );
            continue;
        }
        if e == "sync" {
            durable = claims;
            continue;
        }
        let Some(k) = e.strip_prefix("put_many claims=") else {
            panic!("unexpected store call: {e} in {ev:#?}");
        };
        let (c, k) = k.split_once(" nflog=").unwrap();
        let (nflog, rest) = k.split_once(" groups=").unwrap();
        let (groups, other) = rest.split_once(" other=").unwrap();
        assert_eq!(other, "0", "{ev:#?}");
        let c: usize = c.parse().unwrap();
        if c > 0 {
            chunks.push(c);
        }
        claims += c;
        confirmed += nflog.parse::<usize>().unwrap();
        timers += groups.parse::<usize>().unwrap();
    }
    assert_eq!(chunks, [16, 4], "{ev:#?}");
    assert_eq!((sends, confirmed, timers), (20, 20, 20), "{ev:#?}");
    // Every claim confirmed: the next tick in the group interval sends nothing.
    let entries = n.nflog().all().await.unwrap();
    assert_eq!(entries.len(), 20);
    assert!(entries
        .iter()
        .all(|(_, r)| r.as_ref().unwrap().claim.is_none() && r.as_ref().unwrap().sent.is_some()));
    let r = n.tick(T0 + 60 * S).await.unwrap();
    assert_eq!((r.groups_due, r.sent().count()), (0, 0), "{r:#?}");
}

/// `dispatch` with 60 s rounds (so only ingests and timers wake it in a test), once its
/// first round (at start, a full one) has run.
async fn dispatching(
    n: &Arc<Notifier>,
    clock: &Arc<dyn argus_model::Clock>,
) -> tokio::task::JoinHandle<()> {
    let d = tokio::spawn(
        n.clone()
            .dispatch(clock.clone(), Duration::from_secs(60), |_| {}),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    d
}

/// What a webhook receiver recorded: what `pick` took of each body, and when it came.
type Arrivals<T> = Arc<std::sync::Mutex<Vec<(T, std::time::Instant)>>>;

/// A webhook receiver on a free port recording each body's `pick` and its arrival.
async fn timed_hook<T: Send + 'static>(pick: fn(&serde_json::Value) -> T) -> (String, Arrivals<T>) {
    let seen: Arrivals<T> = Arc::default();
    let s2 = seen.clone();
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let seen = s2.clone();
        async move {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            seen.lock()
                .unwrap()
                .push((pick(&v), std::time::Instant::now()));
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// `dispatch` flushes a group that an ingest made due at once, as Alertmanager flushes
/// an aggregation group when its `group_wait` is up, not at its next round: with a
/// 60 s round, a `group_wait: 0s` alert reaches the webhook in well under a second,
/// and an alert on a route with a 1 h `group_wait` does not go out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_flushes_a_group_due_at_ingest_without_waiting_for_its_round() {
    let (url, seen) =
        timed_hook(|v| v["groupLabels"]["alertname"].as_str().unwrap().to_string()).await;
    let yaml = format!(
        "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 0s\n  routes:\n    - matchers: [alertname=Slow]\n      group_wait: 1h\n\
         receivers:\n  - name: hook\n    webhook_configs: [{{url: {url}}}]\n"
    );
    let n = Arc::new(notifier(kv(), &yaml));
    let clock: Arc<dyn argus_model::Clock> = Arc::new(argus_model::SystemClock);
    let dispatcher = dispatching(&n, &clock).await;
    n.ingest(vec![alert(&[("alertname", "Slow")])], clock.now_ms())
        .await
        .unwrap();
    let ingested = std::time::Instant::now();
    n.ingest(vec![alert(&[("alertname", "Now")])], clock.now_ms())
        .await
        .unwrap();
    wait_for("Now's webhook", || !seen.lock().unwrap().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "Now");
    let after = got[0].1 - ingested;
    assert!(
        after < Duration::from_secs(2),
        "arrived {after:?} after the ingest"
    );
    dispatcher.abort();
}

/// An old alert (started before its group's `group_wait`) joins a waiting group and
/// makes it due now. When the process owns its store, `dispatch`'s woken round loads
/// only that group and its members (not every stored group and alert): the
/// notification must still carry every member, those stored before the dispatcher
/// started (known from its first full round) and those ingested since (known from the
/// ingests), and nothing of the other waiting group. Without the store to itself, the
/// woken round is a full one, with the same notification.
async fn a_woken_round_sends_every_member(exclusive: bool) {
    let hook = Recorder::start().await;
    let yaml = format!(
        "route: {{receiver: hook, group_by: [alertname], group_wait: 1h, group_interval: 1h}}\n\
         receivers:\n  - name: hook\n    webhook_configs: [{{url: {}}}]\n",
        hook.url
    );
    let store = kv();
    let n = Arc::new(with_opts(notifier(store, &yaml), exclusive));
    let clock: Arc<dyn argus_model::Clock> = Arc::new(argus_model::SystemClock);
    let now = || clock.now_ms();
    // Stored before the dispatcher starts: both groups wait an hour.
    n.ingest(
        vec![
            alert(&[("alertname", "X"), ("instance", "a")]),
            alert(&[("alertname", "Y"), ("instance", "a")]),
        ],
        now(),
    )
    .await
    .unwrap();
    let dispatcher = dispatching(&n, &clock).await;
    assert_eq!(hook.hits(), 0);
    n.ingest(vec![alert(&[("alertname", "X"), ("instance", "c")])], now())
        .await
        .unwrap();
    let mut old = alert(&[("alertname", "X"), ("instance", "b")]);
    old.starts_at = Some(now() - 2 * 3600 * S);
    n.ingest(vec![old], now()).await.unwrap();
    wait_for("X's webhook", || hook.hits() > 0).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:#?}");
    let instances: Vec<&str> = bodies[0]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["instance"].as_str().unwrap())
        .collect();
    assert_eq!(instances, ["a", "b", "c"], "{:#}", bodies[0]);
    assert_eq!(bodies[0]["groupLabels"]["alertname"], "X");
    let stats = n.stats();
    assert_eq!(stats.sent, 1);
    match exclusive {
        true => {
            assert_eq!((stats.rounds_full, stats.rounds_woken), (1, 1), "{stats:?}");
            let text = n.metrics_text();
            assert!(
                text.contains("\nargus_notifier_rounds_total{kind=\"woken\"} 1\n"),
                "{text}"
            );
        }
        false => assert_eq!((stats.rounds_full, stats.rounds_woken), (2, 0), "{stats:?}"),
    }
    dispatcher.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_woken_round_of_the_stores_owner_loads_only_the_due_group_with_all_its_members() {
    a_woken_round_sends_every_member(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_woken_round_without_the_store_to_itself_is_a_full_round() {
    a_woken_round_sends_every_member(false).await;
}

/// When the process owns its store, `dispatch` flushes a group when its `group_wait`
/// is up, and again when its `group_interval` is, as Alertmanager's aggregation-group
/// timers fire: with a 60 s round, the first notification comes 300 ms after the
/// ingest (not before: the group waits) and the group's next, with the alert added
/// meanwhile, 400 ms after that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_flushes_a_group_when_its_wait_and_then_its_interval_are_up() {
    let (url, seen) = timed_hook(|v| v["alerts"].as_array().unwrap().len()).await;
    let yaml = format!(
        "route: {{receiver: hook, group_by: [alertname], group_wait: 300ms, group_interval: 400ms}}\n\
         receivers:\n  - name: hook\n    webhook_configs: [{{url: {url}}}]\n"
    );
    let n = Arc::new(with_opts(notifier(kv(), &yaml), true));
    let clock: Arc<dyn argus_model::Clock> = Arc::new(argus_model::SystemClock);
    let dispatcher = dispatching(&n, &clock).await;
    let ingested = std::time::Instant::now();
    n.ingest(
        vec![alert(&[("alertname", "A"), ("i", "1")])],
        clock.now_ms(),
    )
    .await
    .unwrap();
    wait_for("the first notification", || {
        !seen.lock().unwrap().is_empty()
    })
    .await;
    n.ingest(
        vec![alert(&[("alertname", "A"), ("i", "2")])],
        clock.now_ms(),
    )
    .await
    .unwrap();
    wait_for("the second notification", || {
        seen.lock().unwrap().len() >= 2
    })
    .await;
    let got = seen.lock().unwrap().clone();
    let first = got[0].1 - ingested;
    let second = got[1].1 - got[0].1;
    assert_eq!((got[0].0, got[1].0), (1, 2), "{got:?}");
    assert!(
        first >= Duration::from_millis(300) && first < Duration::from_secs(2),
        "the first came {first:?} after the ingest (group_wait 300ms)"
    );
    assert!(
        second >= Duration::from_millis(300) && second < Duration::from_secs(2),
        "the second came {second:?} after the first (group_interval 400ms)"
    );
    dispatcher.abort();
}
