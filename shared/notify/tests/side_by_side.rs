//! Side by side with the real Alertmanager 0.25: the same configuration and the same
//! timed sequence of alerts and silences (the real one in real time with short timers,
//! Argus on a stepped clock) must produce the same webhook bodies (times and
//! externalURL aside): grouping, group_wait/group_interval/repeat_interval, inhibition,
//! silences, send_resolved.

mod common;
use argus_model::Millis;
use bytes::Bytes;
use common::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Virtual time unit (ms): the real Alertmanager runs with group_wait = 1 unit.
const U: u64 = 1000;

fn config(url: &str) -> String {
    format!(
        r#"
route:
  receiver: hook
  group_by: [alertname]
  group_wait: {gw}ms
  group_interval: {gi}ms
  repeat_interval: {ri}ms
inhibit_rules:
  - source_matchers: [severity="page"]
    target_matchers: [severity="warn"]
    equal: [instance]
receivers:
  - name: hook
    webhook_configs:
      - url: {url}
"#,
        gw = U,
        gi = 2 * U,
        ri = 3 * U
    )
}

#[derive(Clone, Debug)]
enum Step {
    Post(Vec<Value>),
    Resolve(Vec<(&'static str, &'static str, &'static str)>),
    Silence(&'static str),
    Expire,
}

fn a(name: &str, instance: &str, severity: &str) -> Value {
    json!({"labels": {"alertname": name, "instance": instance, "severity": severity}, "annotations": {"summary": format!("{name} on {instance}")}})
}

/// (time in tenths of a unit, step). Flushes of every group fall on whole units
/// (group_wait 1, group_interval 2); events happen half a unit away from them.
fn scenario() -> Vec<(u64, Step)> {
    vec![
        (0, Step::Silence("S")),
        (
            0,
            Step::Post(vec![
                a("A", "1", "warn"),
                a("A", "2", "warn"),
                a("P", "1", "page"),
                a("S", "1", "warn"),
            ]),
        ),
        (15, Step::Post(vec![a("A", "3", "warn")])),
        (35, Step::Resolve(vec![("A", "2", "warn")])),
        (55, Step::Expire),
        (65, Step::Resolve(vec![("P", "1", "page")])),
    ]
}
const END: u64 = 85;

fn resolved_json(v: &(&str, &str, &str), ends: &str) -> Value {
    let mut x = a(v.0, v.1, v.2);
    x["endsAt"] = ends.into();
    x
}

fn silence_json(name: &str, starts: &str, ends: &str) -> Value {
    json!({"matchers": [{"name": "alertname", "value": name, "isRegex": false, "isEqual": true}],
           "startsAt": starts, "endsAt": ends, "createdBy": "test", "comment": "side by side"})
}

fn by_group(bodies: &[Value]) -> BTreeMap<String, Vec<Value>> {
    let mut m: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for b in bodies {
        m.entry(b["groupKey"].as_str().unwrap_or("").to_string())
            .or_default()
            .push(essence(b));
    }
    m
}

async fn run_argus(hook: &Recorder) -> Vec<Value> {
    let n = Arc::new(notifier(kv(), &config(&hook.url)));
    let t0: Millis = T0;
    let at = |tenths: u64| t0 + (tenths * U / 10) as Millis;
    let req = |method: &str, path: &str, body: Value| {
        http::Request::builder()
            .method(method)
            .uri(path)
            .body(Bytes::from(serde_json::to_vec(&body).unwrap()))
            .unwrap()
    };
    let mut silence_id = String::new();
    let steps = scenario();
    // Tick every 0.1 unit, applying the steps due first.
    for tenth in 0..=END {
        let now = at(tenth);
        for (_, step) in steps.iter().filter(|(t, _)| *t == tenth) {
            match step {
                Step::Post(alerts) => {
                    let r = n
                        .handle_api(
                            req("POST", "/api/v2/alerts", Value::Array(alerts.clone())),
                            now,
                        )
                        .await;
                    assert_eq!(r.status(), 200);
                }
                Step::Resolve(list) => {
                    let ends = argus_model::time::rfc3339(now);
                    let body = Value::Array(list.iter().map(|v| resolved_json(v, &ends)).collect());
                    let r = n.handle_api(req("POST", "/api/v2/alerts", body), now).await;
                    assert_eq!(r.status(), 200);
                }
                Step::Silence(name) => {
                    let body = silence_json(
                        name,
                        &argus_model::time::rfc3339(now),
                        &argus_model::time::rfc3339(now + 3_600_000),
                    );
                    let r = n
                        .handle_api(req("POST", "/api/v2/silences", body), now)
                        .await;
                    assert_eq!(r.status(), 200);
                    let v: Value = serde_json::from_slice(r.body()).unwrap();
                    silence_id = v["silenceID"].as_str().unwrap().to_string();
                }
                Step::Expire => {
                    let r = n
                        .handle_api(
                            req(
                                "DELETE",
                                &format!("/api/v2/silence/{silence_id}"),
                                Value::Null,
                            ),
                            now,
                        )
                        .await;
                    assert_eq!(r.status(), 200);
                }
            }
        }
        n.tick(now).await.unwrap();
    }
    hook.bodies()
}

async fn run_real(hook: &Recorder) -> (Vec<Value>, String) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("am.yml");
    std::fs::write(&cfg, config(&hook.url)).unwrap();
    let bin = argus_testkit::tool("prometheus-alertmanager");
    let cfg_arg = format!("--config.file={}", cfg.display());
    let storage = format!("--storage.path={}", dir.path().join("data").display());
    let am = argus_testkit::spawn_peer(
        "alertmanager",
        &bin,
        &[
            &cfg_arg,
            &storage,
            "--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
    );
    let http = reqwest::Client::new();
    let base = am.url();
    // Ready?
    for _ in 0..100 {
        if http
            .get(format!("{base}/-/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let start = tokio::time::Instant::now();
    let mut silence_id = String::new();
    for (tenth, step) in scenario() {
        tokio::time::sleep_until(start + Duration::from_millis(tenth * U / 10)).await;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        match step {
            Step::Post(alerts) => {
                let r = http
                    .post(format!("{base}/api/v2/alerts"))
                    .json(&alerts)
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success());
            }
            Step::Resolve(list) => {
                let body: Vec<Value> = list.iter().map(|v| resolved_json(v, &now)).collect();
                let r = http
                    .post(format!("{base}/api/v2/alerts"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success());
            }
            Step::Silence(name) => {
                let ends = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
                let r = http
                    .post(format!("{base}/api/v2/silences"))
                    .json(&silence_json(name, &now, &ends))
                    .send()
                    .await
                    .unwrap();
                let v: Value = r.json().await.unwrap();
                silence_id = v["silenceID"].as_str().unwrap().to_string();
            }
            Step::Expire => {
                let r = http
                    .delete(format!("{base}/api/v2/silence/{silence_id}"))
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success());
            }
        }
    }
    tokio::time::sleep_until(start + Duration::from_millis(END * U / 10)).await;
    (hook.bodies(), am.log())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_notifications_as_alertmanager() {
    let argus_hook = Recorder::start().await;
    let real_hook = Recorder::start().await;
    let argus = run_argus(&argus_hook).await;
    let (real, log) = run_real(&real_hook).await;
    let (a, r) = (by_group(&argus), by_group(&real));
    // Keep the expectation explicit too: what the scenario must produce.
    let summary = |m: &BTreeMap<String, Vec<Value>>| -> BTreeMap<String, Vec<String>> {
        m.iter()
            .map(|(k, v)| {
                let s = v
                    .iter()
                    .map(|b| {
                        b["alerts"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|x| {
                                format!(
                                    "{}{}",
                                    x["labels"]["instance"].as_str().unwrap(),
                                    if x["status"] == "resolved" { "r" } else { "" }
                                )
                            })
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .collect();
                (k.clone(), s)
            })
            .collect()
    };
    let want: BTreeMap<String, Vec<String>> = [
        (r#"{}:{alertname="A"}"#, vec!["2", "2,3", "2r,3", "1,3"]),
        (r#"{}:{alertname="P"}"#, vec!["1", "1", "1r"]),
        (r#"{}:{alertname="S"}"#, vec!["1"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(
        summary(&r),
        want,
        "the real Alertmanager did not behave as the scenario expects (timing?); log:\n{log}"
    );
    assert_eq!(summary(&a), want, "Argus");
    assert_eq!(a, r, "bodies differ");
}
