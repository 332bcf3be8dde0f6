//! Stored alerts, aggregation groups and silences that cannot be read (corrupt, or a
//! record version this release does not know) are reported (an error from the
//! operation, a log line, `argus_notifier_records_unreadable_total` on `/metrics`) and
//! left as they are: never reset to a default or overwritten (issue 17 §2).

mod common;
use argus_model::{Cond, Item, Kv, Table};
use argus_notify::service::{ALERTS_PK, GROUPS_PK, SILENCES_PK};
use bytes::Bytes;
use common::*;
use serde_json::{json, Value};
use std::sync::Arc;

fn cfg(url: &str) -> String {
    format!(
        "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 30s\n  group_interval: 5m\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: {url}\n"
    )
}

/// The two unreadable shapes every kind is tried with.
fn bad_records() -> [(Value, &'static str); 2] {
    [
        (json!({"v": 9, "from": "the future"}), "record version 9"),
        (json!({"v": 1, "labels": "not a map"}), "corrupt"),
    ]
}

async fn overwrite(store: &Arc<dyn Kv>, table: Table, pk: &str, sk: &str, v: &Value) {
    let mut it = Item::new(pk, sk);
    it.attrs = v.as_object().unwrap().clone();
    store.put(table, it, Cond::Always).await.unwrap();
}

async fn attrs(store: &Arc<dyn Kv>, table: Table, pk: &str, sk: &str) -> Value {
    Value::Object(store.get(table, pk, sk).await.unwrap().unwrap().attrs)
}

async fn api(n: &argus_notify::Notifier, method: &str, path: &str, body: Value) -> (u16, String) {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .body(Bytes::from(serde_json::to_vec(&body).unwrap()))
        .unwrap();
    let r = n.handle_api(req, T0 + 60 * S).await;
    (
        r.status().as_u16(),
        String::from_utf8_lossy(r.body()).into_owned(),
    )
}

fn counted(n: &argus_notify::Notifier, kind: &str) -> u64 {
    let text = n.metrics_text();
    let line = format!("argus_notifier_records_unreadable_total{{record=\"{kind}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&line))
        .unwrap_or_else(|| panic!("no {line:?} in\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn an_unreadable_alert_is_reported_not_replaced() {
    let hook = Recorder::start().await;
    let store = kv();
    let n = notifier(store.clone(), &cfg(&hook.url));
    let a = alert(&[("alertname", "A")]);
    n.ingest(vec![a.clone()], T0).await.unwrap();
    let sk = a.labels.fingerprint_hex();
    assert_eq!(attrs(&store, Table::Alerts, ALERTS_PK, &sk).await["v"], 1);
    for (bad, what) in bad_records() {
        overwrite(&store, Table::Alerts, ALERTS_PK, &sk, &bad).await;
        let before = counted(&n, "alert");
        // Posting the same alert again would merge into it: an error, nothing written.
        let err = n.ingest(vec![a.clone()], T0 + 10 * S).await.unwrap_err();
        assert!(
            err.to_string().contains(what) && err.to_string().contains(&sk),
            "{err}"
        );
        let (status, body) = api(
            &n,
            "POST",
            "/api/v2/alerts",
            json!([{"labels": {"alertname": "A"}}]),
        )
        .await;
        assert_eq!(status, 500, "{body}");
        assert!(body.contains(what), "{body}");
        // Listing alerts fails rather than leaving it out.
        let (status, body) = api(&n, "GET", "/api/v2/alerts", Value::Null).await;
        assert_eq!(status, 500, "{body}");
        // The tick reports it and goes on.
        let r = n.tick(T0 + 30 * S).await.unwrap();
        assert!(
            r.errors.iter().any(|e| e.contains(what) && e.contains(&sk)),
            "{r:#?}"
        );
        assert!(counted(&n, "alert") >= before + 4);
        assert_eq!(attrs(&store, Table::Alerts, ALERTS_PK, &sk).await, bad);
    }
}

#[tokio::test]
async fn an_unreadable_group_is_reported_not_reset() {
    let hook = Recorder::start().await;
    let store = kv();
    let n = notifier(store.clone(), &cfg(&hook.url));
    n.ingest(vec![alert(&[("alertname", "A")])], T0)
        .await
        .unwrap();
    let groups = store.query(Table::Alerts, GROUPS_PK, None).await.unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].attrs["v"], 1);
    let sk = groups[0].sk.clone();
    for (bad, what) in bad_records() {
        overwrite(&store, Table::Alerts, GROUPS_PK, &sk, &bad).await;
        let before = counted(&n, "group");
        // A new alert of the group: the ingest fails instead of starting it afresh.
        let err = n
            .ingest(vec![alert(&[("alertname", "A"), ("i", "2")])], T0 + 5 * S)
            .await
            .unwrap_err();
        assert!(err.to_string().contains(what), "{err}");
        // The tick reports it, sends nothing for it, and does not recreate it.
        let r = n.tick(T0 + 60 * S).await.unwrap();
        assert!(
            r.errors.iter().any(|e| e.contains(what) && e.contains(&sk)),
            "{r:#?}"
        );
        assert_eq!(r.sent().count(), 0, "{r:#?}");
        assert!(hook.bodies().is_empty());
        assert_eq!(counted(&n, "group"), before + 2);
        assert_eq!(attrs(&store, Table::Alerts, GROUPS_PK, &sk).await, bad);
    }
}

#[tokio::test]
async fn an_unreadable_silence_is_reported_not_dropped() {
    let hook = Recorder::start().await;
    let store = kv();
    let n = notifier(store.clone(), &cfg(&hook.url));
    let (status, body) = api(
        &n,
        "POST",
        "/api/v2/silences",
        json!({"matchers": [{"name": "alertname", "value": "A", "isRegex": false}],
               "startsAt": "2026-11-23T10:00:00Z", "endsAt": "2026-11-23T12:00:00Z",
               "createdBy": "t", "comment": "c"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["silenceID"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        attrs(&store, Table::Silences, SILENCES_PK, &id).await["v"],
        1
    );
    n.ingest(vec![alert(&[("alertname", "A")])], T0)
        .await
        .unwrap();
    for (bad, what) in bad_records() {
        overwrite(&store, Table::Silences, SILENCES_PK, &id, &bad).await;
        let before = counted(&n, "silence");
        for (method, path) in [
            ("GET", "/api/v2/silences".to_string()),
            ("GET", format!("/api/v2/silence/{id}")),
            ("DELETE", format!("/api/v2/silence/{id}")),
        ] {
            let (status, body) = api(&n, method, &path, Value::Null).await;
            assert_eq!(status, 500, "{method} {path}: {body}");
            assert!(body.contains(what) && body.contains(&id), "{body}");
        }
        let r = n.tick(T0 + 30 * S).await.unwrap();
        assert!(
            r.errors.iter().any(|e| e.contains(what) && e.contains(&id)),
            "{r:#?}"
        );
        assert_eq!(counted(&n, "silence"), before + 4);
        assert_eq!(attrs(&store, Table::Silences, SILENCES_PK, &id).await, bad);
    }
}
