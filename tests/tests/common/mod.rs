//! Local peers for the end-to-end tests: HTTP targets that can be switched to failing,
//! and a webhook receiver that records every body. All on 127.0.0.1, free ports.
#![allow(dead_code)]

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// An HTTP target whose status code the test controls.
pub struct Site {
    pub url: String,
    status: Arc<AtomicU16>,
    pub hits: Arc<AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

impl Site {
    pub async fn start(status: u16) -> Site {
        let st = Arc::new(AtomicU16::new(status));
        let hits = Arc::new(AtomicUsize::new(0));
        let (s2, h2) = (st.clone(), hits.clone());
        let app = Router::new().route(
            "/",
            get(move || {
                let (s, h) = (s2.clone(), h2.clone());
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    (
                        StatusCode::from_u16(s.load(Ordering::SeqCst)).unwrap(),
                        "hello",
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Site {
            url,
            status: st,
            hits,
            _task: task,
        }
    }

    pub fn set_status(&self, s: u16) {
        self.status.store(s, Ordering::SeqCst);
    }
}

type HookState = (Arc<Mutex<Vec<serde_json::Value>>>, Arc<AtomicU16>);

/// Records webhook bodies; answers with the status the test sets (default 200).
#[derive(Clone)]
pub struct Hook {
    pub url: String,
    pub bodies: Arc<Mutex<Vec<serde_json::Value>>>,
    status: Arc<AtomicU16>,
}

impl Hook {
    pub async fn start() -> Hook {
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let state = (bodies.clone(), status.clone());
        let app = Router::new()
            .route(
                "/hook",
                post(|State((b, s)): State<HookState>, body: String| async move {
                    let code = s.load(Ordering::SeqCst);
                    if code == 200 {
                        b.lock().unwrap().push(
                            serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
                        );
                    }
                    StatusCode::from_u16(code).unwrap()
                }),
            )
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Hook {
            url,
            bodies,
            status,
        }
    }

    pub fn set_status(&self, s: u16) {
        self.status.store(s, Ordering::SeqCst);
    }

    pub fn statuses(&self) -> Vec<String> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .map(|b| b["status"].as_str().unwrap_or("?").to_string())
            .collect()
    }
}

/// The body of a GET that must succeed at the HTTP level.
pub async fn get_text(client: &reqwest::Client, url: impl reqwest::IntoUrl) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

/// The pipeline's configuration used by the end-to-end tests: `SiteDown` (`probe_success
/// == 0` for 30 s), one receiver `ops` with the webhook and, given a topic, SNS.
pub fn write_config(
    dir: &std::path::Path,
    hook: &str,
    topic_arn: Option<&str>,
) -> argus_app::AppConfig {
    std::fs::write(
        dir.join("rules.yml"),
        r#"groups:
  - name: site
    rules:
      - alert: SiteDown
        expr: probe_success == 0
        for: 30s
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.instance }} is down"
"#,
    )
    .unwrap();
    let sns = topic_arn
        .map(|arn| format!("    sns_configs:\n      - topic_arn: {arn}\n"))
        .unwrap_or_default();
    std::fs::write(
        dir.join("alertmanager.yml"),
        format!(
            r#"route:
  receiver: ops
  group_by: [alertname, instance]
  group_wait: 0s
  group_interval: 30s
  repeat_interval: 4h
receivers:
  - name: ops
    webhook_configs:
      - url: {hook}
{sns}"#
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("argus.yml"),
        "global:\n  scrape_interval: 15s\n  evaluation_interval: 15s\nrule_files: [rules.yml]\nalertmanager_config: alertmanager.yml\n",
    )
    .unwrap();
    argus_app::AppConfig::load(&dir.join("argus.yml")).unwrap()
}
