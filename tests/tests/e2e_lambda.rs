//! The five Lambda binaries themselves, under `cargo lambda watch` (the Lambda runtime
//! API emulator), wired to DynamoDB/SNS/SQS in moto: a scheduled event invokes probe, a
//! function-URL request pushes to the gateway, the evaluator is invoked on schedule and
//! the notifier with a DynamoDB stream batch, and the alert reaches an SQS queue through
//! SNS; the query function answers Prometheus API requests about all of it.

mod common;

use argus_model::{Kv, Target};
use common::{get_text, Site};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One function: a `cargo lambda watch --only-lambda-apis` emulator and the function's
/// binary connected to it.
struct Function {
    port: u16,
    _emulator: argus_testkit::Peer,
    _process: Proc,
}

fn start_function(bin: &str, env: &[(String, String)]) -> Function {
    let root = argus_testkit::repo_root();
    let cargo_lambda = argus_testkit::tool("cargo-lambda");
    let emulator = argus_testkit::spawn_peer_in(
        &format!("cargo-lambda-watch-{bin}"),
        &cargo_lambda,
        &[
            "lambda",
            "watch",
            "--only-lambda-apis",
            "-A",
            "127.0.0.1",
            "-P",
            "{port}",
        ],
        Some(&root),
    );
    let log = std::fs::File::create(
        std::env::temp_dir().join(format!("argus-fn-{bin}-{}.log", emulator.port)),
    )
    .unwrap();
    let exe = argus_testkit::profile_dir().join(bin);
    let child = Command::new(&exe)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env(
            "AWS_LAMBDA_RUNTIME_API",
            format!("http://127.0.0.1:{}/.rt", emulator.port),
        )
        .env("AWS_LAMBDA_FUNCTION_NAME", "_")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
    Function {
        port: emulator.port,
        _emulator: emulator,
        _process: Proc(child),
    }
}

impl Function {
    async fn invoke(&self, http: &reqwest::Client, payload: Value) -> Value {
        let url = format!(
            "http://127.0.0.1:{}/2015-03-31/functions/_/invocations",
            self.port
        );
        let resp = http.post(url).json(&payload).send().await.unwrap();
        let text = resp.text().await.unwrap();
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/lambda-url/_{path}", self.port)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_five_functions_under_the_runtime_emulator_alert_through_sns_and_answer_queries() {
    // The binaries under test (built with the workspace if missing).
    argus_testkit::workspace_bins(&["probe", "pushgateway", "evaluator", "notifier", "query"]);

    let moto = argus_testkit::moto();
    let sdk = argus_store::aws_sdk_config_for(Some(&moto.url())).await;
    let sdk = sdk
        .into_builder()
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "test"),
        ))
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .build();
    let report = argus_store::bootstrap(&sdk, "lam-", &mut |_: &str| {})
        .await
        .unwrap();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue = sqs
        .create_queue()
        .queue_name("lam-alerts")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let qarn = "arn:aws:sqs:us-east-1:123456789012:lam-alerts";
    aws_sdk_sns::Client::new(&sdk)
        .subscribe()
        .topic_arn(&report.topic_arn)
        .protocol("sqs")
        .endpoint(qarn)
        .send()
        .await
        .unwrap();

    let site = Site::start(500).await;
    let kv = argus_store::DynamoKv::from_conf(&sdk, "lam-");
    kv.put(
        argus_model::Table::Targets,
        Target::new(&site.url).to_item(),
        argus_model::Cond::Always,
    )
    .await
    .unwrap();
    let _ = &kv as &dyn Kv;

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: site\n    rules:\n      - alert: SiteDown\n        expr: probe_success == 0\n        labels: {severity: page}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("am.yml"),
        "route:\n  receiver: ops\n  group_by: [alertname, instance]\n  group_wait: 0s\nreceivers:\n  - name: ops\n    sns_configs:\n      - topic_arn: ${env:ARGUS_TOPIC_ARN}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("argus.yml"),
        "rule_files: [rules.yml]\nalertmanager_config: am.yml\n",
    )
    .unwrap();

    let env: Vec<(String, String)> = argus_testkit::aws_env(&moto.url())
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .chain([
            ("ARGUS_TABLE_PREFIX".to_string(), "lam-".to_string()),
            (
                "ARGUS_CONFIG".to_string(),
                dir.path().join("argus.yml").display().to_string(),
            ),
            ("ARGUS_TOPIC_ARN".to_string(), report.topic_arn.clone()),
        ])
        .collect();
    let probe = start_function("probe", &env);
    let gateway = start_function("pushgateway", &env);
    let evaluator = start_function("evaluator", &env);
    let notifier = start_function("notifier", &env);
    let query = start_function("query", &env);
    let http = reqwest::Client::builder()
        .user_agent("argus-e2e")
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();

    // EventBridge Scheduler invokes the probe with the input the template configures.
    let r = probe.invoke(&http, json!({})).await;
    assert_eq!(
        (r["probed"].as_u64(), r["down"].as_u64()),
        (Some(1), Some(1)),
        "{r}"
    );

    // The gateway's health check answers once its binary polls the emulator.
    let mut healthy = false;
    for _ in 0..100 {
        if http
            .get(gateway.url("/-/healthy"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        healthy,
        "the pushgateway function never answered /-/healthy"
    );

    // A batch job pushes through the gateway's function URL.
    let put = http
        .put(gateway.url("/metrics/job/nightly/instance/batch-1"))
        .header("content-type", "text/plain; version=0.0.4")
        .header("user-agent", "argus-e2e")
        .body("batch_last_success_timestamp_seconds 1.7e9\n")
        .send()
        .await
        .unwrap();
    if put.status() != 200 {
        let body = put.text().await.unwrap();
        for f in ["probe", "pushgateway"] {
            let p = std::env::temp_dir().join(format!(
                "argus-fn-{f}-{}.log",
                if f == "probe" {
                    probe.port
                } else {
                    gateway.port
                }
            ));
            eprintln!(
                "--- {f} log:\n{}",
                std::fs::read_to_string(p).unwrap_or_default()
            );
        }
        panic!("push through the function URL failed: {body}");
    }
    let metrics = get_text(&http, gateway.url("/metrics")).await;
    assert!(
        metrics.contains(
            r#"batch_last_success_timestamp_seconds{instance="batch-1",job="nightly"} 1.7e+09"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("probe_success{"),
        "the probe's push is visible too: {metrics}"
    );

    // The evaluator's scheduled tick: the alert fires (no `for`) and goes to the notifier's store.
    let r = evaluator
        .invoke(&http, json!({"source": "aws.scheduler"}))
        .await;
    assert_eq!(r["firing"].as_u64(), Some(1), "{r}");
    assert_eq!(r["sent_to_notifier"].as_u64(), Some(1), "{r}");

    // The query function answers Prometheus' API from what the others stored.
    let mut ready = false;
    for _ in 0..100 {
        if http
            .get(query.url("/-/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "the query function never answered /-/ready");
    let api = |path: &str| {
        let url = query.url(path);
        let http = http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let (st, v) = api("/api/v1/query?query=probe_success").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["resultType"], "vector", "{v}");
    assert_eq!(v["data"]["result"][0]["value"][1], "0", "{v}");
    assert_eq!(
        v["data"]["result"][0]["metric"]["instance"],
        site.url.as_str(),
        "{v}"
    );
    let (_, v) = api("/api/v1/rules?type=alert").await;
    let rule = &v["data"]["groups"][0]["rules"][0];
    assert_eq!(
        (
            rule["name"].as_str(),
            rule["state"].as_str(),
            rule["health"].as_str()
        ),
        (Some("SiteDown"), Some("firing"), Some("ok")),
        "{v}"
    );
    let (_, v) = api("/api/v1/alerts").await;
    assert_eq!(
        v["data"]["alerts"][0]["labels"]["alertname"], "SiteDown",
        "{v}"
    );
    let (_, v) = api("/api/v1/targets").await;
    let t = &v["data"]["activeTargets"][0];
    assert_eq!(
        (t["health"].as_str(), t["scrapeUrl"].as_str()),
        (Some("down"), Some(site.url.as_str())),
        "{v}"
    );
    let (st, v) = api("/api/v1/query?query=sum(").await;
    assert_eq!(
        (st, v["errorType"].as_str()),
        (400, Some("bad_data")),
        "{v}"
    );

    // The alerts table's stream triggers the notifier.
    // Its answer is the partial-batch response: nothing failed.
    let stream = json!({"Records": [{"eventID": "1", "eventName": "INSERT", "eventSource": "aws:dynamodb",
                                      "awsRegion": "us-east-1",
                                      "dynamodb": {"Keys": {"pk": {"S": "am"}}, "SequenceNumber": "100", "SizeBytes": 20}}]});
    let r = notifier.invoke(&http, stream.clone()).await;
    assert_eq!(r, json!({"batchItemFailures": []}));

    // … and SNS delivered it to the subscribed queue, with filterable attributes.
    let mut got = None;
    for _ in 0..20 {
        let out = sqs
            .receive_message()
            .queue_url(&queue)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        if let Some(m) = out.messages().first() {
            got = Some(serde_json::from_str::<Value>(m.body().unwrap()).unwrap());
            break;
        }
    }
    let envelope = got.expect("an SNS message in the queue");
    assert_eq!(envelope["MessageAttributes"]["status"]["Value"], "firing");
    assert_eq!(
        envelope["MessageAttributes"]["alertname"]["Value"],
        "SiteDown"
    );
    let body: Value = serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
    assert_eq!(body["alerts"][0]["labels"]["instance"], site.url.as_str());

    // The same batch delivered again sends nothing new.
    let r = notifier.invoke(&http, stream).await;
    assert_eq!(r, json!({"batchItemFailures": []}));
    let again = sqs
        .receive_message()
        .queue_url(&queue)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    assert!(again.messages().is_empty(), "{again:?}");
}
