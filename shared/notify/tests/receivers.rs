//! Receivers side by side with the real Alertmanager 0.25 (tests/common/recorder.rs):
//! the same alertmanager.yml and alert sequence, the recorded requests compared.

mod common;
use common::recorder::*;
use common::*;
use serde_json::Value;

/// The harness itself, on the receiver both have had for long: webhook bodies equal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_webhook_side_by_side() {
    let yaml = format!(
        "route:\n  receiver: hook\n  group_by: [alertname]\n  {STANDARD_TIMERS}\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: '{{http}}/hook'\n"
    );
    let run = side_by_side(&yaml, &Scenario::standard(), &[]).await;
    let bodies = |r: &Recordings| -> Vec<Value> {
        r.http
            .delivered("/hook")
            .iter()
            .map(|x| {
                assert_eq!(x.method, "POST");
                assert_eq!(x.header("content-type"), Some("application/json"));
                essence(&x.json())
            })
            .collect()
    };
    let (a, r) = (bodies(&run.argus), bodies(&run.real));
    let shape = |v: &[Value]| -> Vec<String> {
        v.iter()
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
            .collect()
    };
    let want = vec![
        "web-1,web-2",
        "web-1,web-2,web-3",
        "web-1,web-2r,web-3",
        "web-1,web-3",
        "web-1r,web-3r",
    ];
    assert_eq!(
        shape(&r),
        want,
        "real Alertmanager (timing?): {}",
        run.am_log
    );
    assert_eq!(shape(&a), want, "Argus");
    assert_eq!(a, r);
}

/// The SMTP recorder receives, parses and records authentication.
#[tokio::test]
async fn harness_smtp_recorder() {
    use lettre::message::{header::ContentType, MultiPart, SinglePart};
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let smtp = SmtpRecorder::start_with(SmtpOptions {
        user: Some(("u".into(), "p".into())),
        ..Default::default()
    });
    let port: u16 = smtp.addr.rsplit(':').next().unwrap().parse().unwrap();
    let m = Message::builder()
        .from("am@example.org".parse().unwrap())
        .to("ops@example.org".parse().unwrap())
        .subject("[FIRING:1] Down")
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body("t".to_string()),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body("<b>h</b>".to_string()),
                ),
        )
        .unwrap();
    let t = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(port)
        .credentials(Credentials::new("u".into(), "p".into()))
        .build();
    t.send(m).await.unwrap();
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "{}", smtp.log());
    let m = &mails[0];
    assert_eq!(m.mail_from, "am@example.org");
    assert_eq!(m.rcpt_tos, vec!["ops@example.org"]);
    assert_eq!(m.auth.as_deref(), Some("u"));
    assert_eq!(m.header("subject"), Some("[FIRING:1] Down"));
    assert_eq!(m.text.as_deref().map(str::trim), Some("t"));
    assert_eq!(m.html.as_deref().map(str::trim), Some("<b>h</b>"));
}

/// Compares the delivered requests to `path` of both runs: method, Content-Type and
/// Authorization, query, and JSON bodies (after `ignore` of the given pointers).
fn same_requests(run: &SideBySide, path: &str, ignored: &[&str]) -> usize {
    let view = |r: &Recordings| -> Vec<(
        String,
        String,
        std::collections::BTreeMap<String, String>,
        Value,
    )> {
        r.http
            .delivered(path)
            .iter()
            .map(|x| {
                (
                    x.method.clone(),
                    x.query.clone(),
                    meaningful_headers(x, &[]),
                    ignore(&x.json(), ignored),
                )
            })
            .collect()
    };
    let (a, r) = (view(&run.argus), view(&run.real));
    assert!(
        !r.is_empty(),
        "the real Alertmanager sent nothing to {path}: {}",
        run.am_log
    );
    assert_eq!(
        a.len(),
        r.len(),
        "{path}: number of requests; argus {a:#?}\nreal {r:#?}"
    );
    for (x, y) in a.iter().zip(r.iter()) {
        assert_eq!(x, y, "{path}");
    }
    r.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_side_by_side() {
    let yaml = format!(
        r#"
route:
  receiver: pd
  group_by: [alertname]
  {STANDARD_TIMERS}
receivers:
  - name: pd
    pagerduty_configs:
      - url: '{{http}}/pd'
        routing_key_file: '{{dir}}/pd_key'
        severity: '{{{{ .CommonLabels.severity }}}}'
        class: node
        component: '{{{{ .GroupLabels.alertname }}}}'
        group: '{{{{ .CommonLabels.job }}}}'
        details:
          runbook: 'https://runbooks/{{{{ .GroupLabels.alertname }}}}'
        images:
          - src: 'https://img/{{{{ .Status }}}}.png'
            alt: status
            href: https://img
          - src: ''
        links:
          - href: '{{{{ .ExternalURL }}}}'
            text: Alertmanager
      - url: '{{http}}/pd-default'
        routing_key: key-2
"#
    );
    let run = side_by_side(&yaml, &Scenario::standard(), &[("pd_key", "key-1\n")]).await;
    assert_eq!(same_requests(&run, "/pd", &[]), 5);
    assert_eq!(same_requests(&run, "/pd-default", &[]), 5);
    let first = &run.argus.http.delivered("/pd")[0].json();
    assert_eq!(first["routing_key"], "key-1");
    assert_eq!(first["payload"]["severity"], "critical");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opsgenie_side_by_side() {
    let yaml = format!(
        r#"
global:
  opsgenie_api_url: '{{http}}/og/'
  opsgenie_api_key_file: '{{dir}}/og_key'
route:
  receiver: og
  group_by: [alertname]
  {STANDARD_TIMERS}
receivers:
  - name: og
    opsgenie_configs:
      - api_key: key-1
        details:
          runbook: 'https://runbooks/{{{{ .GroupLabels.alertname }}}}'
        responders:
          - name: sre
            type: Team
          - name: 'db,web'
            type: teams
          - username: alice@example.org
            type: user
        tags: 'prod, {{{{ .CommonLabels.job }}}} ,'
        note: note
        priority: '{{{{ if eq .CommonLabels.severity "critical" }}}}P1{{{{ else }}}}P3{{{{ end }}}}'
        entity: '{{{{ .GroupLabels.alertname }}}}'
        actions: 'restart,page'
        update_alerts: true
      - api_url: '{{http}}/og-default'
"#
    );
    let run = side_by_side(&yaml, &Scenario::standard(), &[("og_key", "key-2")]).await;
    let all =
        |r: &Recordings, prefix: &str| -> Vec<(String, String, String, Option<String>, Value)> {
            r.http
                .requests()
                .iter()
                .filter(|x| x.path.starts_with(prefix) && x.ok())
                .map(|x| {
                    (
                        x.method.clone(),
                        x.path.clone(),
                        x.query.clone(),
                        x.header("authorization").map(String::from),
                        x.json(),
                    )
                })
                .collect()
        };
    for prefix in ["/og/", "/og-default/"] {
        let (a, r) = (all(&run.argus, prefix), all(&run.real, prefix));
        assert!(!r.is_empty(), "{}", run.am_log);
        assert_eq!(a.len(), r.len(), "{prefix}: {a:#?}\n{r:#?}");
        for (i, (x, y)) in a.iter().zip(r.iter()).enumerate() {
            assert_eq!(
                x, y,
                "{prefix} request {i}: argus {:#}\nreal {:#}",
                x.4, y.4
            );
        }
    }
    let a = all(&run.argus, "/og/");
    // 4 firing notifications × (create + 2 updates) + 1 close.
    assert_eq!(a.len(), 13);
    assert_eq!(a[0].3.as_deref(), Some("GenieKey key-1"));
    assert!(a[12].1.ends_with("/close") && a[12].2 == "identifierType=alias");
    assert_eq!(
        all(&run.argus, "/og-default/")[0].3.as_deref(),
        Some("GenieKey key-2")
    );
}
