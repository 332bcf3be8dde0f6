//! Shared helpers of the pushgw integration tests.
#![allow(dead_code)]

use argus_model::{Clock, Millis, SystemClock};
use argus_pushgw::{serve, Gateway, GatewayConfig};
use argus_testkit::{spawn_peer, tool, Peer};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Our gateway served on a free loopback port with an embedded store.
pub struct Ours {
    pub url: String,
    pub gw: Arc<Gateway>,
    task: tokio::task::JoinHandle<()>,
    pub kv: argus_store::EmbeddedKv,
}

impl Drop for Ours {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start_ours(cfg: GatewayConfig, clock: Arc<dyn Clock>) -> Ours {
    let kv = argus_store::EmbeddedKv::open_temp().expect("temp store");
    let gw = Arc::new(Gateway::new(Arc::new(kv.clone()), cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(serve(gw.clone(), listener, clock));
    Ours { url, gw, task, kv }
}

pub async fn start_ours_default() -> Ours {
    start_ours(GatewayConfig::default(), Arc::new(SystemClock)).await
}

/// The real prometheus-pushgateway (Debian), persistence off, admin API on.
pub fn start_real(extra: &[&str]) -> Peer {
    let mut args = vec![
        "--web.listen-address=127.0.0.1:{port}",
        "--persistence.file=",
        "--web.enable-admin-api",
    ];
    args.extend_from_slice(extra);
    spawn_peer("pushgateway", &tool("prometheus-pushgateway"), &args)
}

/// A clock the test steps by hand.
#[derive(Default)]
pub struct StepClock(pub AtomicI64);

impl StepClock {
    pub fn at(ms: Millis) -> Arc<Self> {
        Arc::new(StepClock(AtomicI64::new(ms)))
    }
    pub fn advance(&self, ms: Millis) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for StepClock {
    fn now_ms(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_gzip().build().unwrap()
}

/// `GET /metrics` normalised for comparison: the real gateway's own families (go_*,
/// process_*, pushgateway_*) dropped, push timestamps reduced to zero/non-zero, sample
/// lines sorted within each family.
pub fn normalise(text: &str) -> Vec<String> {
    let mut blocks: Vec<(String, Vec<String>, Vec<String>)> = Vec::new(); // (name, headers, samples)
    for line in text.lines() {
        if let Some(rest) = line
            .strip_prefix("# HELP ")
            .or_else(|| line.strip_prefix("# TYPE "))
        {
            let name = rest.split(' ').next().unwrap_or("").to_string();
            if blocks.last().is_none_or(|b| b.0 != name) {
                blocks.push((name, Vec::new(), Vec::new()));
            }
            blocks.last_mut().unwrap().1.push(line.to_string());
        } else if !line.is_empty() {
            let mut l = line.to_string();
            if l.starts_with("push_time_seconds{") || l.starts_with("push_failure_time_seconds{") {
                let (head, value) = l.rsplit_once(' ').unwrap();
                l = format!("{head} {}", if value == "0" { "0" } else { "<ts>" });
            } else if l.split('{').next().is_some_and(|n| n.ends_with("_created")) {
                // Client-side creation times differ between two pushes.
                let (head, _) = l.rsplit_once(' ').unwrap();
                l = format!("{head} <created>");
            }
            match blocks.last_mut() {
                Some(b) => b.2.push(l),
                None => blocks.push((String::new(), Vec::new(), vec![l])),
            }
        }
    }
    let mut out = Vec::new();
    blocks.retain(|b| {
        !["go_", "process_", "pushgateway_"]
            .iter()
            .any(|p| b.0.starts_with(p))
    });
    blocks.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, headers, mut samples) in blocks {
        out.extend(headers);
        samples.sort();
        out.extend(samples);
    }
    out
}

/// A moto server and a bootstrapped DynamoDB store on it (tables named `prefix*`). Keep
/// the peer alive while the store is used.
pub async fn moto_kv(prefix: &str) -> (Peer, argus_store::DynamoKv) {
    let moto = argus_testkit::moto();
    let conf = argus_store::aws_sdk_config_for(Some(&moto.url()))
        .await
        .into_builder()
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "test"),
        ))
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .build();
    argus_store::bootstrap(&conf, prefix, &mut |_: &str| {})
        .await
        .unwrap();
    let kv = argus_store::DynamoKv::from_conf(&conf, prefix);
    (moto, kv)
}

/// The body of a GET that must succeed at the HTTP level.
pub async fn get_text(client: &reqwest::Client, url: impl reqwest::IntoUrl) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}
