//! The notification pipeline on the embedded store, time stepped by the test.

mod common;
use common::*;
use std::time::Duration;

fn cfg(url: &str, extra_route: &str, extra: &str) -> String {
    format!(
        r#"
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 1h
{extra_route}
receivers:
  - name: hook
    webhook_configs:
      - url: {url}
{extra}
"#
    )
}

#[tokio::test]
async fn group_wait_interval_repeat_and_resolve() {
    let hook = Recorder::start().await;
    let n = notifier(kv(), &cfg(&hook.url, "", ""));
    let a = [("alertname", "SiteDown"), ("instance", "a")];
    let b = [("alertname", "SiteDown"), ("instance", "b")];
    n.ingest(vec![alert(&a)], T0).await.unwrap();
    // group_wait not over: nothing.
    let r = n.tick(T0 + 29 * S).await.unwrap();
    assert_eq!(r.groups_due, 0);
    assert!(hook.bodies().is_empty());
    n.ingest(vec![alert(&b)], T0 + 10 * S).await.unwrap();
    let r = n.tick(T0 + 30 * S).await.unwrap();
    assert_eq!(r.sent().count(), 1, "{r:?}");
    let bodies = hook.take();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["groupKey"], r#"{}:{alertname="SiteDown"}"#);
    assert_eq!(bodies[0]["alerts"].as_array().unwrap().len(), 2);
    assert_eq!(bodies[0]["status"], "firing");
    assert_eq!(bodies[0]["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    // Keep the alerts alive (as Prometheus re-sends), nothing changes: no notification at
    // the next group_interval.
    for t in [60, 120, 180, 240, 300, 330] {
        n.ingest(vec![alert(&a), alert(&b)], T0 + t * S)
            .await
            .unwrap();
        n.tick(T0 + t * S).await.unwrap();
    }
    assert!(hook.bodies().is_empty());
    // One resolves: sent at the next interval (send_resolved defaults to true).
    n.ingest(vec![alert(&a), resolved(&b, T0 + 400 * S)], T0 + 400 * S)
        .await
        .unwrap();
    n.tick(T0 + 500 * S).await.unwrap();
    assert!(hook.bodies().is_empty(), "group_interval not over");
    let r = n.tick(T0 + 630 * S).await.unwrap();
    let sent: Vec<_> = r.sent().collect();
    assert_eq!(sent.len(), 1, "{r:?}");
    assert!(matches!(
        sent[0].outcome,
        argus_notify::Outcome::Sent {
            reason: argus_notify::Reason::NewResolved,
            ..
        }
    ));
    let body = hook.take().remove(0);
    assert_eq!(body["alerts"][1]["status"], "resolved");
    assert_eq!(body["status"], "firing");
    // The resolved alert left the group: next flush only has `a`; repeat after 1h.
    let mut t = 630;
    while t < 630 + 3600 + 300 {
        t += 60;
        n.ingest(vec![alert(&a)], T0 + t * S).await.unwrap();
        n.tick(T0 + t * S).await.unwrap();
    }
    let bodies = hook.take();
    assert_eq!(bodies.len(), 1, "exactly one repeat: {bodies:#?}");
    assert_eq!(bodies[0]["alerts"].as_array().unwrap().len(), 1);
    // All resolved: one resolved notification, then the group is gone.
    n.ingest(vec![resolved(&a, T0 + t * S)], T0 + t * S)
        .await
        .unwrap();
    for _ in 0..10 {
        t += 60;
        n.tick(T0 + t * S).await.unwrap();
    }
    let bodies = hook.take();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["status"], "resolved");
    let r = n.tick(T0 + (t + 600) * S).await.unwrap();
    assert_eq!(r.groups, 0, "empty group removed: {r:?}");
}

#[tokio::test]
async fn old_alert_flushes_at_once_and_resolved_only_is_not_sent() {
    let hook = Recorder::start().await;
    let n = notifier(kv(), &cfg(&hook.url, "", ""));
    let mut old = alert(&[("alertname", "Old")]);
    old.starts_at = Some(T0 - 3600 * S);
    n.ingest(vec![old], T0).await.unwrap();
    n.tick(T0 + S).await.unwrap();
    assert_eq!(hook.take().len(), 1, "alert older than group_wait: no wait");
    // A group that only ever saw resolved alerts says nothing.
    n.ingest(vec![resolved(&[("alertname", "Gone")], T0)], T0 + S)
        .await
        .unwrap();
    let r = n.tick(T0 + 60 * S).await.unwrap();
    assert!(hook.bodies().is_empty(), "{r:?}");
}

#[tokio::test]
async fn send_resolved_false_logs_but_does_not_send_resolved() {
    let hook = Recorder::start().await;
    let yaml = cfg(
        &hook.url,
        "",
        "        send_resolved: false\n        max_alerts: 1",
    );
    let n = notifier(kv(), &yaml);
    let a = [("alertname", "X"), ("instance", "1")];
    let b = [("alertname", "X"), ("instance", "2")];
    n.ingest(vec![alert(&a), alert(&b)], T0).await.unwrap();
    n.tick(T0 + 30 * S).await.unwrap();
    let body = hook.take().remove(0);
    assert_eq!(body["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(body["truncatedAlerts"], 1);
    n.ingest(
        vec![resolved(&a, T0 + 60 * S), resolved(&b, T0 + 60 * S)],
        T0 + 60 * S,
    )
    .await
    .unwrap();
    let r = n.tick(T0 + 330 * S).await.unwrap();
    assert!(hook.bodies().is_empty());
    assert!(
        matches!(
            r.notifications[0].outcome,
            argus_notify::Outcome::Logged { .. }
        ),
        "{r:?}"
    );
}

#[tokio::test]
async fn routes_inhibition_and_silences() {
    let hook = Recorder::start().await;
    let page = Recorder::start().await;
    let yaml = format!(
        r#"
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 10s
  routes:
    - matchers: [severity="page"]
      receiver: page
      continue: true
inhibit_rules:
  - source_matchers: [severity="page"]
    target_matchers: [severity="warn"]
    equal: [instance]
receivers:
  - name: hook
    webhook_configs: [{{url: {}}}]
  - name: page
    webhook_configs: [{{url: {}}}]
"#,
        hook.url, page.url
    );
    let n = notifier(kv(), &yaml);
    n.ingest(
        vec![
            alert(&[
                ("alertname", "Down"),
                ("severity", "page"),
                ("instance", "a"),
            ]),
            alert(&[
                ("alertname", "Slow"),
                ("severity", "warn"),
                ("instance", "a"),
            ]),
            alert(&[
                ("alertname", "Slow2"),
                ("severity", "warn"),
                ("instance", "b"),
            ]),
        ],
        T0,
    )
    .await
    .unwrap();
    // Silence Slow2.
    let sid = n
        .upsert_silence(
            argus_notify::silence::Silence {
                id: String::new(),
                matchers: vec![argus_notify::silence::ApiMatcher {
                    name: "alertname".into(),
                    value: "Slow2".into(),
                    is_regex: false,
                    is_equal: true,
                }],
                starts_at: T0,
                ends_at: T0 + 3600 * S,
                updated_at: 0,
                created_by: "test".into(),
                comment: "maintenance".into(),
            },
            T0,
        )
        .await
        .unwrap();
    let r = n.tick(T0 + 10 * S).await.unwrap();
    // `page` got Down (a matching child route replaces its parent, `continue` only
    // goes on to siblings); Slow is inhibited, Slow2 silenced.
    let pk: Vec<_> = page
        .take()
        .iter()
        .map(|b| b["groupKey"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        pk,
        vec![r#"{}/{severity="page"}:{alertname="Down"}"#.to_string()]
    );
    assert!(hook.take().is_empty(), "{r:#?}");
    let muted: Vec<_> = r
        .notifications
        .iter()
        .filter(|n| matches!(n.outcome, argus_notify::Outcome::Muted { .. }))
        .collect();
    assert_eq!(muted.len(), 2, "{r:#?}");
    // Expire the silence: Slow2 goes out at its next flush.
    n.expire_silence(&sid, T0 + 20 * S).await.unwrap();
    n.ingest(
        vec![alert(&[
            ("alertname", "Slow2"),
            ("severity", "warn"),
            ("instance", "b"),
        ])],
        T0 + 300 * S,
    )
    .await
    .unwrap();
    let r = n.tick(T0 + 310 * S).await.unwrap();
    let hk: Vec<_> = hook
        .take()
        .iter()
        .map(|b| b["groupKey"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(hk, vec![r#"{}:{alertname="Slow2"}"#.to_string()], "{r:#?}");
}

#[tokio::test]
async fn mute_time_intervals_hold_notifications() {
    let hook = Recorder::start().await;
    let yaml = format!(
        r#"
time_intervals:
  - name: morning
    time_intervals:
      - times: [{{start_time: "09:00", end_time: "11:00"}}]
route:
  receiver: hook
  group_wait: 10s
  group_interval: 1m
  routes:
    - matchers: [team="db"]
      mute_time_intervals: [morning]
receivers:
  - name: hook
    webhook_configs: [{{url: {}}}]
"#,
        hook.url
    );
    let n = notifier(kv(), &yaml);
    // T0 is 10:00 UTC: muted.
    n.ingest(vec![alert(&[("alertname", "A"), ("team", "db")])], T0)
        .await
        .unwrap();
    let r = n.tick(T0 + 10 * S).await.unwrap();
    assert!(hook.bodies().is_empty(), "{r:?}");
    // 11:00: sent.
    n.ingest(
        vec![alert(&[("alertname", "A"), ("team", "db")])],
        T0 + 3600 * S,
    )
    .await
    .unwrap();
    n.tick(T0 + 3610 * S).await.unwrap();
    assert_eq!(hook.take().len(), 1);
}

#[tokio::test]
async fn webhook_500_then_200_is_retried_once_delivered() {
    let hook = Recorder::start().await;
    hook.push_response(500, Duration::ZERO);
    hook.push_response(503, Duration::ZERO);
    let n = notifier(kv(), &cfg(&hook.url, "", ""));
    n.ingest(vec![alert(&[("alertname", "A")])], T0)
        .await
        .unwrap();
    let r = n.tick(T0 + 30 * S).await.unwrap();
    assert!(
        matches!(
            r.notifications[0].outcome,
            argus_notify::Outcome::Sent { attempts: 3, .. }
        ),
        "{r:?}"
    );
    assert_eq!(hook.take().len(), 1);
    assert_eq!(hook.hits(), 3);
    // Not sent again.
    n.ingest(vec![alert(&[("alertname", "A")])], T0 + 300 * S)
        .await
        .unwrap();
    n.tick(T0 + 330 * S).await.unwrap();
    assert!(hook.bodies().is_empty());
}

#[tokio::test]
async fn webhook_4xx_is_not_retried_and_next_flush_retries() {
    let hook = Recorder::start().await;
    hook.push_response(400, Duration::ZERO);
    let n = notifier(kv(), &cfg(&hook.url, "", ""));
    n.ingest(vec![alert(&[("alertname", "A")])], T0)
        .await
        .unwrap();
    let r = n.tick(T0 + 30 * S).await.unwrap();
    match &r.notifications[0].outcome {
        argus_notify::Outcome::Failed {
            attempts, error, ..
        } => {
            assert_eq!(*attempts, 1);
            assert!(error.contains("400"), "{error}");
        }
        o => panic!("{o:?}"),
    }
    assert_eq!(r.failed().count(), 1);
    // The next group_interval flush delivers it.
    n.ingest(vec![alert(&[("alertname", "A")])], T0 + 300 * S)
        .await
        .unwrap();
    let r = n.tick(T0 + 330 * S).await.unwrap();
    assert_eq!(r.sent().count(), 1, "{r:?}");
    assert_eq!(hook.take().len(), 1);
}

#[tokio::test]
async fn webhook_timeout_is_retried() {
    let hook = Recorder::start().await;
    hook.push_response(200, Duration::from_secs(3));
    let yaml = cfg(&hook.url, "", "        timeout: 500ms");
    let n = notifier(kv(), &yaml);
    n.ingest(vec![alert(&[("alertname", "A")])], T0)
        .await
        .unwrap();
    let r = n.tick(T0 + 30 * S).await.unwrap();
    assert!(
        matches!(
            r.notifications[0].outcome,
            argus_notify::Outcome::Sent { attempts: 2, .. }
        ),
        "{r:?}"
    );
    // Give the slow first request time to finish on the server side: it was abandoned by
    // the client, so the server's write may or may not land; the second one did.
    assert!(hook.hits() >= 2);
}

#[tokio::test]
async fn concurrent_ticks_send_once() {
    let hook = Recorder::start().await;
    // A slow receiver keeps the first sender busy while the second tick runs.
    hook.push_response(200, Duration::from_millis(300));
    let store = kv();
    let yaml = cfg(&hook.url, "", "");
    let n1 = notifier(store.clone(), &yaml);
    let n2 = notifier(store.clone(), &yaml);
    n1.ingest(vec![alert(&[("alertname", "A")])], T0)
        .await
        .unwrap();
    // Same payload twice (a duplicated Lambda event).
    n2.ingest(vec![alert(&[("alertname", "A")])], T0)
        .await
        .unwrap();
    let (r1, r2) = tokio::join!(n1.tick(T0 + 30 * S), n2.tick(T0 + 30 * S));
    let (r1, r2) = (r1.unwrap(), r2.unwrap());
    assert_eq!(r1.sent().count() + r2.sent().count(), 1, "{r1:?} {r2:?}");
    // And the same instance ticking twice at once.
    let (r3, r4) = tokio::join!(n1.tick(T0 + 31 * S), n1.tick(T0 + 31 * S));
    assert_eq!(r3.unwrap().sent().count() + r4.unwrap().sent().count(), 0);
    assert_eq!(hook.take().len(), 1);
}

/// A sink that never answers: the invocation is "killed" mid-send.
struct Hang;
#[async_trait::async_trait]
impl argus_notify::Sink for Hang {
    fn kind(&self) -> &'static str {
        "webhook"
    }
    fn send_resolved(&self) -> bool {
        true
    }
    async fn send(
        &self,
        _: &argus_notify::Notification,
        _: Duration,
    ) -> Result<(), argus_notify::SinkError> {
        futures::future::pending().await
    }
}

#[tokio::test]
async fn crashed_tick_is_taken_over_after_the_lease() {
    let hook = Recorder::start().await;
    let store = kv();
    let yaml = cfg(&hook.url, "", "");
    let cfg = argus_notify::load_config(&yaml).unwrap();
    let crashing = argus_notify::Notifier::with_integrations(
        store.clone(),
        cfg,
        vec![(
            "hook".into(),
            vec![argus_notify::Integration {
                kind: "webhook",
                index: 0,
                sink: std::sync::Arc::new(Hang),
            }],
        )],
        "",
    );
    crashing
        .ingest(vec![alert(&[("alertname", "A")])], T0)
        .await
        .unwrap();
    // The invocation dies after claiming (its future is dropped mid-send).
    let killed = tokio::time::timeout(Duration::from_millis(300), crashing.tick(T0 + 30 * S)).await;
    assert!(killed.is_err());
    let healthy = notifier(store.clone(), &yaml);
    // Within the lease (60s): the claim is respected.
    let r = healthy.tick(T0 + 40 * S).await.unwrap();
    assert!(
        matches!(
            r.notifications[0].outcome,
            argus_notify::Outcome::InFlight { .. }
        ),
        "{r:?}"
    );
    assert!(hook.bodies().is_empty());
    // After the lease: taken over, delivered once.
    let r = healthy.tick(T0 + 91 * S).await.unwrap();
    assert_eq!(r.sent().count(), 1, "{r:?}");
    healthy.tick(T0 + 92 * S).await.unwrap();
    healthy
        .ingest(vec![alert(&[("alertname", "A")])], T0 + 300 * S)
        .await
        .unwrap();
    healthy.tick(T0 + 400 * S).await.unwrap();
    assert_eq!(hook.take().len(), 1);
}

#[tokio::test]
async fn state_survives_a_new_instance() {
    let hook = Recorder::start().await;
    let store = kv();
    let yaml = cfg(&hook.url, "", "");
    notifier(store.clone(), &yaml)
        .ingest(vec![alert(&[("alertname", "A")])], T0)
        .await
        .unwrap();
    notifier(store.clone(), &yaml)
        .tick(T0 + 30 * S)
        .await
        .unwrap();
    notifier(store.clone(), &yaml)
        .ingest(vec![alert(&[("alertname", "A")])], T0 + 60 * S)
        .await
        .unwrap();
    notifier(store.clone(), &yaml)
        .tick(T0 + 330 * S)
        .await
        .unwrap();
    assert_eq!(hook.take().len(), 1);
}

#[tokio::test]
async fn log_receiver_writes_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/alerts.jsonl");
    let yaml = format!(
        "route: {{receiver: log, group_wait: 1s}}\nreceivers:\n  - name: log\n    log_configs: [{{path: {}}}]\n",
        path.display()
    );
    let n = notifier(kv(), &yaml);
    n.ingest(vec![alert(&[("alertname", "A")])], T0)
        .await
        .unwrap();
    n.tick(T0 + S).await.unwrap();
    n.ingest(
        vec![resolved(&[("alertname", "A")], T0 + 2 * S)],
        T0 + 2 * S,
    )
    .await
    .unwrap();
    n.tick(T0 + 400 * S).await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["status"], "firing");
    assert_eq!(lines[1]["status"], "resolved");
    assert_eq!(lines[1]["version"], "4");
}
