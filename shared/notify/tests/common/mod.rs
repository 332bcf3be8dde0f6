//! Shared test helpers: a recording webhook receiver, a store, a notifier on a stepped clock.
#![allow(dead_code)]

pub mod recorder;

use argus_model::{Alert, Kv, Labels, Millis};
use argus_notify::{load_config, Clients, Notifier, NotifierOptions};
use axum::extract::State;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
pub struct Script {
    /// Responses to give, in order (status, delay); then 200.
    pub responses: VecDeque<(u16, Duration)>,
    pub bodies: Vec<serde_json::Value>,
    pub hits: usize,
}

#[derive(Clone)]
pub struct Recorder {
    pub url: String,
    pub state: Arc<Mutex<Script>>,
}

impl Recorder {
    pub async fn start() -> Recorder {
        let state = Arc::new(Mutex::new(Script::default()));
        let app = axum::Router::new()
            .fallback(record)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Recorder { url, state }
    }
    pub fn push_response(&self, status: u16, delay: Duration) {
        self.state
            .lock()
            .unwrap()
            .responses
            .push_back((status, delay));
    }
    pub fn bodies(&self) -> Vec<serde_json::Value> {
        self.state.lock().unwrap().bodies.clone()
    }
    pub fn hits(&self) -> usize {
        self.state.lock().unwrap().hits
    }
    pub fn take(&self) -> Vec<serde_json::Value> {
        std::mem::take(&mut self.state.lock().unwrap().bodies)
    }
}

async fn record(
    State(s): State<Arc<Mutex<Script>>>,
    body: axum::body::Bytes,
) -> (axum::http::StatusCode, &'static str) {
    let (status, delay) = {
        let mut g = s.lock().unwrap();
        g.hits += 1;
        g.responses.pop_front().unwrap_or((200, Duration::ZERO))
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if status == 200 {
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        s.lock().unwrap().bodies.push(v);
    }
    (axum::http::StatusCode::from_u16(status).unwrap(), "")
}

pub fn kv() -> Arc<dyn Kv> {
    Arc::new(argus_store::EmbeddedKv::open_temp().unwrap())
}

/// 2026-11-23T10:00:00Z, a Monday.
pub const T0: Millis = 1_795_428_000_000;
pub const S: Millis = 1000;

pub fn notifier(kv: Arc<dyn Kv>, yaml: &str) -> Notifier {
    let cfg = load_config(yaml).unwrap_or_else(|e| panic!("config: {e}"));
    Notifier::new(kv, cfg, Clients::http_only(), "http://argus:9093").with_options(
        NotifierOptions {
            backoff: Duration::from_millis(20),
            send_budget: Duration::from_secs(5),
            ..Default::default()
        },
    )
}

pub fn alert(pairs: &[(&str, &str)]) -> Alert {
    Alert {
        labels: Labels::from_pairs(pairs.iter().copied()),
        annotations: Labels::from_pairs([("summary", "it broke")]),
        starts_at: None,
        ends_at: None,
        generator_url: String::new(),
    }
}

pub fn resolved(pairs: &[(&str, &str)], at: Millis) -> Alert {
    let mut a = alert(pairs);
    a.ends_at = Some(at);
    a
}

/// The parts of a webhook body that both implementations must agree on.
pub fn essence(v: &serde_json::Value) -> serde_json::Value {
    let mut v = v.clone();
    v["externalURL"] = "".into();
    for a in v["alerts"].as_array_mut().into_iter().flatten() {
        a["startsAt"] = "".into();
        if a["status"] == "resolved" {
            a["endsAt"] = "".into();
        }
        a["generatorURL"] = "".into();
    }
    v
}
