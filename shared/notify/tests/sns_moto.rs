//! SNS delivery against moto: topic → SQS subscription; the v4 body, message attributes,
//! FIFO topics (group and deduplication ids), truncation over 256 KiB.

mod common;
use argus_notify::{load_config, Clients, Notifier};
use aws_sdk_sns::config::{Credentials, Region, SharedCredentialsProvider};
use common::*;
use serde_json::Value;
use std::sync::Arc;

async fn sdk(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "testing", "testing", None, None, "test",
        )))
        .load()
        .await
}

/// Creates a topic and a queue subscribed to it; returns (topic arn, queue url).
async fn topic_with_queue(
    sns: &aws_sdk_sns::Client,
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    fifo: bool,
) -> (String, String) {
    let mut t = sns.create_topic().name(name);
    if fifo {
        t = t.attributes("FifoTopic", "true");
    }
    let arn = t.send().await.unwrap().topic_arn.unwrap();
    let qname = if fifo {
        format!("{}-q.fifo", name.trim_end_matches(".fifo"))
    } else {
        format!("{name}-q")
    };
    let mut q = sqs.create_queue().queue_name(&qname);
    if fifo {
        q = q.attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true");
    }
    let qurl = q.send().await.unwrap().queue_url.unwrap();
    let qarn = sqs
        .get_queue_attributes()
        .queue_url(&qurl)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    sns.subscribe()
        .topic_arn(&arn)
        .protocol("sqs")
        .endpoint(qarn)
        .send()
        .await
        .unwrap();
    (arn, qurl)
}

/// The SNS notifications (JSON envelopes) in the queue.
async fn drain(sqs: &aws_sdk_sqs::Client, qurl: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for _ in 0..3 {
        let r = sqs
            .receive_message()
            .queue_url(qurl)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let msgs = r.messages.unwrap_or_default();
        if msgs.is_empty() && !out.is_empty() {
            break;
        }
        for m in msgs {
            out.push(serde_json::from_str(m.body.as_deref().unwrap()).unwrap());
            sqs.delete_message()
                .queue_url(qurl)
                .receipt_handle(m.receipt_handle.unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    out
}

fn notifier_for(
    kv: Arc<dyn argus_model::Kv>,
    conf: &aws_config::SdkConfig,
    yaml: &str,
) -> Notifier {
    Notifier::new(
        kv,
        load_config(yaml).unwrap(),
        Clients::new(
            argus_notify::sink::default_http(),
            Some(aws_sdk_sns::Client::new(conf)),
        ),
        "http://argus",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sns_standard_fifo_and_truncation() {
    let moto = argus_testkit::moto();
    let conf = sdk(&moto.url()).await;
    let sns = aws_sdk_sns::Client::new(&conf);
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let (arn, qurl) = topic_with_queue(&sns, &sqs, "alerts", false).await;
    let (farn, fqurl) = topic_with_queue(&sns, &sqs, "alerts.fifo", true).await;
    let yaml = format!(
        r#"
route:
  receiver: team
  group_by: [alertname]
  group_wait: 1s
receivers:
  - name: team
    sns_configs:
      - topic_arn: {arn}
        subject: '{{{{ template "sns.default.subject" . }}}}'
        attributes: {{team: web}}
      - topic_arn: {farn}
"#
    );
    let n = notifier_for(kv(), &conf, &yaml);
    n.ingest(
        vec![alert(&[
            ("alertname", "SiteDown"),
            ("severity", "page"),
            ("instance", "a"),
        ])],
        T0,
    )
    .await
    .unwrap();
    let r = n.tick(T0 + S).await.unwrap();
    assert_eq!(r.sent().count(), 2, "{r:#?}");

    for (q, fifo) in [(&qurl, false), (&fqurl, true)] {
        let msgs = drain(&sqs, q).await;
        assert_eq!(msgs.len(), 1, "{msgs:#?}");
        let env = &msgs[0];
        let body: Value = serde_json::from_str(env["Message"].as_str().unwrap()).unwrap();
        assert_eq!(body["version"], "4");
        assert_eq!(body["status"], "firing");
        assert_eq!(body["groupKey"], r#"{}:{alertname="SiteDown"}"#);
        assert_eq!(body["alerts"][0]["labels"]["instance"], "a");
        let attrs = &env["MessageAttributes"];
        assert_eq!(attrs["alertname"]["Value"], "SiteDown");
        assert_eq!(attrs["severity"]["Value"], "page");
        assert_eq!(attrs["status"]["Value"], "firing");
        assert_eq!(attrs["receiver"]["Value"], "team");
        assert_eq!(env["Subject"], "[FIRING:1] SiteDown (a page)");
        if !fifo {
            assert_eq!(attrs["team"]["Value"], "web");
        }
    }

    // Resolution reaches both.
    n.ingest(
        vec![resolved(
            &[
                ("alertname", "SiteDown"),
                ("severity", "page"),
                ("instance", "a"),
            ],
            T0 + 2 * S,
        )],
        T0 + 2 * S,
    )
    .await
    .unwrap();
    n.tick(T0 + 400 * S).await.unwrap();
    for q in [&qurl, &fqurl] {
        let msgs = drain(&sqs, q).await;
        assert_eq!(msgs.len(), 1);
        let body: Value = serde_json::from_str(msgs[0]["Message"].as_str().unwrap()).unwrap();
        assert_eq!(body["status"], "resolved");
        assert_eq!(msgs[0]["MessageAttributes"]["status"]["Value"], "resolved");
    }

    // A group too big for one SNS message: alerts dropped from the end, flagged.
    let big: Vec<_> = (0..400)
        .map(|i| {
            let mut a = alert(&[("alertname", "Big"), ("instance", &format!("host-{i:03}"))]);
            a.annotations = argus_model::Labels::from_pairs([("description", "x".repeat(1000))]);
            a
        })
        .collect();
    n.ingest(big, T0 + 500 * S).await.unwrap();
    let r = n.tick(T0 + 501 * S).await.unwrap();
    assert_eq!(r.sent().count(), 2, "{r:#?}");
    let msgs = drain(&sqs, &qurl).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["MessageAttributes"]["truncated"]["Value"], "true");
    let body: Value = serde_json::from_str(msgs[0]["Message"].as_str().unwrap()).unwrap();
    let kept = body["alerts"].as_array().unwrap().len() as u64;
    assert!(kept > 100 && kept < 400, "{kept}");
    assert_eq!(kept + body["truncatedAlerts"].as_u64().unwrap(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sns_errors_are_reported_not_lost() {
    let moto = argus_testkit::moto();
    let conf = sdk(&moto.url()).await;
    // A topic that does not exist: a permanent error, reported; the next flush retries.
    let yaml = "route: {receiver: t, group_wait: 1s}\nreceivers:\n  - name: t\n    sns_configs: [{topic_arn: 'arn:aws:sns:us-east-1:123456789012:missing'}]\n";
    let n = notifier_for(kv(), &conf, yaml);
    n.ingest(vec![alert(&[("alertname", "A")])], T0)
        .await
        .unwrap();
    let r = n.tick(T0 + S).await.unwrap();
    let failed: Vec<_> = r.failed().collect();
    assert_eq!(failed.len(), 1, "{r:#?}");
    assert!(failed[0].to_string().contains("missing"), "{}", failed[0]);
}
