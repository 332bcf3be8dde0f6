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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_side_by_side() {
    let yaml = format!(
        r#"
global:
  slack_api_url_file: '{{dir}}/slack_url'
route:
  receiver: slack
  group_by: [alertname]
  {STANDARD_TIMERS}
receivers:
  - name: slack
    slack_configs:
      - channel: '#ops'
      - api_url: '{{http}}/slack-full'
        send_resolved: true
        channel: '#{{{{ .CommonLabels.job }}}}'
        username: argus
        color: '{{{{ if eq .Status "firing" }}}}#ff0000{{{{ else }}}}#00ff00{{{{ end }}}}'
        title: '{{{{ .Status }}}}: {{{{ .GroupLabels.alertname }}}}'
        title_link: 'https://grafana/{{{{ .GroupLabels.alertname }}}}'
        pretext: pre
        text: '{{{{ range .Alerts }}}}{{{{ .Labels.instance }}}} {{{{ end }}}}'
        footer: 'footer {{{{ .Receiver }}}}'
        fallback: fb
        callback_id: cb-1
        icon_emoji: ':fire:'
        icon_url: https://icons/x.png
        image_url: https://img/i.png
        thumb_url: https://img/t.png
        link_names: true
        short_fields: true
        mrkdwn_in: [text, pretext]
        fields:
          - title: Severity
            value: '{{{{ .CommonLabels.severity }}}}'
          - title: Count
            value: '{{{{ .Alerts | len }}}}'
            short: false
        actions:
          - type: button
            text: Runbook
            url: https://runbooks/x
            style: primary
            name: dropped
          - type: button
            text: Ack
            name: ack
            value: '{{{{ .GroupLabels.alertname }}}}'
            confirm:
              title: Sure?
              text: Really ack?
              ok_text: Yes
              dismiss_text: No
        http_config:
          authorization:
            credentials_file: '{{dir}}/slack_token'
"#
    );
    let run = {
        // The global URL file points at each run's own recorder: written per run below.
        side_by_side_with_url_file(&yaml).await
    };
    assert_eq!(
        same_requests(&run, "/slack-global", &[]),
        3,
        "default: firing only"
    );
    assert_eq!(same_requests(&run, "/slack-full", &[]), 5);
    let a = run.argus.http.delivered("/slack-global");
    let b = a[0].json();
    assert_eq!(b["username"], "Alertmanager");
    assert_eq!(b["channel"], "#ops");
    let f = run.argus.http.delivered("/slack-full");
    assert_eq!(f[0].header("authorization"), Some("Bearer tok-1"));
}

/// [`side_by_side`] where `{dir}/slack_url` holds the run's own `{http}/slack-global`.
async fn side_by_side_with_url_file(yaml: &str) -> SideBySide {
    side_by_side_files(yaml, &Scenario::standard(), |http| {
        vec![
            ("slack_url".to_string(), format!("{http}/slack-global\n")),
            ("slack_token".to_string(), "tok-1\n".to_string()),
        ]
    })
    .await
}

/// What both must agree on in an e-mail: envelope, authentication, decoded headers
/// (Date, Message-Id and the multipart boundary aside) and both parts.
fn mail_view(m: &Mail) -> Value {
    let headers: std::collections::BTreeMap<String, String> = m
        .headers
        .iter()
        .filter(|(k, _)| {
            !["date", "message-id", "content-type"].contains(&k.to_ascii_lowercase().as_str())
        })
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    serde_json::json!({
        "mail_from": m.mail_from, "rcpt_tos": m.rcpt_tos, "auth": m.auth,
        "auth_mechanism": m.auth_mechanism, "headers": headers,
        "multipart": m.header("content-type").map(|c| c.starts_with("multipart/alternative")),
        "text": m.text, "html": m.html,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_side_by_side() {
    let yaml = format!(
        r#"
global:
  smtp_smarthost: '{{smtp}}'
  smtp_from: 'Alertmanager <am@example.org>'
  smtp_require_tls: false
  smtp_auth_username: u
  smtp_auth_password_file: '{{dir}}/smtp_pw'
route:
  receiver: mail
  group_by: [alertname]
  {STANDARD_TIMERS}
receivers:
  - name: mail
    email_configs:
      - to: 'ops@example.org, Team Two <two@example.org>'
        send_resolved: true
        text: '{{{{ template "__text_alert_list" .Alerts }}}}'
        headers:
          x-team: '{{{{ .CommonLabels.job }}}}'
          subject: 'Alerte {{{{ .Status }}}} – {{{{ .GroupLabels.alertname }}}} é'
      - to: 'cram@example.org'
        from: 'other@example.org'
        hello: argus.example.org
        auth_secret: p
"#
    );
    let run = side_by_side_with(
        &yaml,
        &Scenario::standard(),
        |_| vec![("smtp_pw".to_string(), "p".to_string())],
        &SmtpOptions {
            user: Some(("u".into(), "p".into())),
            ..Default::default()
        },
    )
    .await;
    let (a, r) = (run.argus.mails(), run.real.mails());
    let key = |m: &Value| m["rcpt_tos"].to_string();
    let mut av: Vec<Value> = a.iter().map(mail_view).collect();
    let mut rv: Vec<Value> = r.iter().map(mail_view).collect();
    // The two integrations send concurrently: compare per recipient list, in order.
    av.sort_by_key(key);
    rv.sort_by_key(key);
    assert_eq!(rv.len(), 5 + 3, "real: {}", run.am_log);
    assert_eq!(av.len(), rv.len(), "argus {av:#?}");
    for (x, y) in av.iter().zip(rv.iter()) {
        assert_eq!(x, y, "argus {x:#}\nreal {y:#}");
    }
    let first = av
        .iter()
        .find(|m| m["rcpt_tos"][0] == "ops@example.org")
        .unwrap();
    assert_eq!(first["auth_mechanism"], "LOGIN");
    assert_eq!(first["headers"]["subject"], "Alerte firing – Down é");
    // The server offers CRAM-MD5 LOGIN PLAIN: without a secret LOGIN, with one CRAM-MD5.
    let cram = av
        .iter()
        .find(|m| m["rcpt_tos"][0] == "cram@example.org")
        .unwrap();
    assert_eq!(cram["auth_mechanism"], "CRAM-MD5");
    assert!(cram["html"]
        .as_str()
        .unwrap()
        .contains("View in Alertmanager"));
}

/// Argus against servers offering one mechanism each (the recorder checks the
/// credentials; CRAM-MD5's digest included) and a server without STARTTLS while
/// `require_tls` is on (not sent, retried).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_auth_mechanisms_and_require_tls() {
    for (mech, creds) in [
        ("CRAM-MD5", "auth_secret: p"),
        ("PLAIN", "auth_password: p\n        auth_identity: ''"),
        ("LOGIN", "auth_password: p"),
    ] {
        let others: Vec<String> = ["CRAM-MD5", "PLAIN", "LOGIN"]
            .iter()
            .filter(|m| **m != mech)
            .map(|m| m.to_string())
            .collect();
        let smtp = SmtpRecorder::start_with(SmtpOptions {
            user: Some(("u".into(), "p".into())),
            require_auth: true,
            exclude: others,
            ..Default::default()
        });
        let yaml = format!(
            "route: {{receiver: m, group_wait: 0s}}\nreceivers:\n  - name: m\n    email_configs:\n      - to: ops@example.org\n        from: am@example.org\n        smarthost: '{}'\n        require_tls: false\n        auth_username: u\n        {creds}\n",
            smtp.addr
        );
        let dir = tempfile::tempdir().unwrap();
        let s = Scenario {
            steps: vec![(0, Step::Fire(vec![alert_json("Down", "web-1", "critical")]))],
            end: 200,
        };
        run_argus_with(&yaml, &s, dir.path()).await;
        let mails = smtp.mails();
        assert_eq!(mails.len(), 1, "{mech}: {}", smtp.log());
        assert_eq!(mails[0].auth_mechanism.as_deref(), Some(mech));
        assert_eq!(mails[0].auth.as_deref(), Some("u"));
    }
    // require_tls (the default) and no STARTTLS offered: nothing is delivered.
    let smtp = SmtpRecorder::start();
    let yaml = format!(
        "route: {{receiver: m, group_wait: 0s}}\nreceivers:\n  - name: m\n    email_configs:\n      - to: ops@example.org\n        from: am@example.org\n        smarthost: '{}'\n",
        smtp.addr
    );
    let dir = tempfile::tempdir().unwrap();
    let s = Scenario {
        steps: vec![(0, Step::Fire(vec![alert_json("Down", "web-1", "critical")]))],
        end: 200,
    };
    run_argus_with(&yaml, &s, dir.path()).await;
    assert!(smtp.mails().is_empty());
}

/// One alert through a notifier whose attempts have a 300 ms budget: returns the
/// recorder's (requests, delivered) to `path` after the first flush and after the next
/// one (group_interval later).
async fn fault_case(receiver: &str, path: &str, replies: Vec<Reply>) -> [(usize, usize); 2] {
    let http = HttpRecorder::start().await;
    http.script(path, replies);
    let yaml = format!(
        "route: {{receiver: r, group_wait: 0s, group_interval: 1s}}\nreceivers:\n  - name: r\n{}",
        receiver.replace("{http}", &http.base)
    );
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("am.yml");
    std::fs::write(&p, &yaml).unwrap();
    let cfg = argus_notify::load_config_file(&p).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let n =
        argus_notify::Notifier::new(kv(), cfg, argus_notify::Clients::http_only(), EXTERNAL_URL)
            .with_options(argus_notify::NotifierOptions {
                backoff: std::time::Duration::from_millis(20),
                send_budget: std::time::Duration::from_millis(300),
                ..Default::default()
            });
    n.ingest(
        vec![alert(&[("alertname", "Down"), ("instance", "web-1")])],
        T0,
    )
    .await
    .unwrap();
    let mut out = [(0, 0); 2];
    for (i, at) in [T0, T0 + 1000].into_iter().enumerate() {
        n.tick(at).await.unwrap();
        // A reply held past the budget finishes (unseen by the client) meanwhile.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        out[i] = (http.requests_to(path).len(), http.delivered(path).len());
    }
    out
}

/// 429 then 200, 500 then 200, 400, a reply slower than the attempt's budget: retried
/// as Alertmanager 0.25 decides per integration, and each notification delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_cases_per_integration() {
    use std::time::Duration;
    let slow = || vec![Reply::delayed(Duration::from_millis(600))];
    let cases: [(&str, &str, &str, bool); 3] = [
        (
            "pagerduty",
            "    pagerduty_configs: [{url: '{http}/pd', routing_key: k}]\n",
            "/pd",
            true,
        ),
        (
            "opsgenie",
            "    opsgenie_configs: [{api_url: '{http}/og/', api_key: k}]\n",
            "/og/v2/alerts",
            true,
        ),
        // Alertmanager 0.25 retries Slack on 5xx only.
        (
            "slack",
            "    slack_configs: [{api_url: '{http}/slack'}]\n",
            "/slack",
            false,
        ),
    ];
    for (kind, rcv, path, retries_429) in cases {
        let r = fault_case(rcv, path, vec![Reply::status(429)]).await;
        if retries_429 {
            assert_eq!(r[0], (2, 1), "{kind} 429 then 200: retried, delivered once");
        } else {
            assert_eq!(r[0], (1, 0), "{kind} 429: not retried");
        }
        let r = fault_case(rcv, path, vec![Reply::status(500)]).await;
        assert_eq!(r[0], (2, 1), "{kind} 500 then 200");
        assert_eq!(r[1], (2, 1), "{kind}: nothing more once delivered");
        let r = fault_case(rcv, path, vec![Reply::status(400)]).await;
        assert_eq!(r[0], (1, 0), "{kind} 400: not retried");
        let r = fault_case(rcv, path, slow()).await;
        assert_eq!(
            r[0].1, 0,
            "{kind} timeout: not delivered in the first flush"
        );
        assert_eq!(
            r[1].1, 1,
            "{kind} timeout: delivered once at the next flush: {r:?}"
        );
    }
}

/// A 451 from the SMTP server is retried; the mail arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_temporary_failure_is_retried_once() {
    let smtp = SmtpRecorder::start_with(SmtpOptions {
        fail_first: 1,
        ..Default::default()
    });
    let yaml = format!(
        "route: {{receiver: m, group_wait: 0s}}\nreceivers:\n  - name: m\n    email_configs:\n      - to: ops@example.org\n        from: am@example.org\n        smarthost: '{}'\n        require_tls: false\n",
        smtp.addr
    );
    let dir = tempfile::tempdir().unwrap();
    let s = Scenario {
        steps: vec![(0, Step::Fire(vec![alert_json("Down", "web-1", "critical")]))],
        end: 300,
    };
    run_argus_with(&yaml, &s, dir.path()).await;
    assert_eq!(smtp.mails().len(), 1, "{}", smtp.log());
    assert_eq!(smtp.rejected(), 1);
}

/// Bad input: clear errors naming the field.
#[test]
fn receiver_config_errors_name_the_field() {
    let base = |r: &str| format!("route: {{receiver: r}}\nreceivers:\n  - name: r\n{r}");
    let err = |r: &str| argus_notify::load_config(&base(r)).unwrap_err();
    let e = err("    pagerduty_configs: [{severity: page}]\n");
    assert_eq!(
        e.path, "receivers[0] \"r\".pagerduty_configs[0].routing_key",
        "{e}"
    );
    assert!(e.message.contains("missing service or routing key"), "{e}");
    let e = err("    pagerduty_configs: [{routing_key: a, routing_key_file: f}]\n");
    assert!(
        e.message
            .contains("at most one of routing_key & routing_key_file"),
        "{e}"
    );
    let e = err("    pagerduty_configs: [{service_key: a, service_key_file: f}]\n");
    assert!(
        e.message
            .contains("at most one of service_key & service_key_file"),
        "{e}"
    );
    let e = err("    pagerduty_configs: [{routing_key: a, url: 'not a url'}]\n");
    assert!(e.path.ends_with("pagerduty_configs[0].url"), "{e}");
    let e = err("    email_configs: [{to: a@b, from: c@d, smarthost: 'mail.example.org'}]\n");
    assert_eq!(
        e.path, "receivers[0] \"r\".email_configs[0].smarthost",
        "{e}"
    );
    assert!(e.message.contains("missing port"), "{e}");
    let e = err("    email_configs: [{to: a@b, from: c@d, smarthost: 'mail:'}]\n");
    assert!(e.message.contains("port cannot be empty"), "{e}");
    let e = err("    email_configs: [{from: c@d, smarthost: 'mail:25'}]\n");
    assert!(e.path.ends_with("email_configs[0].to"), "{e}");
    let e = err("    email_configs: [{to: a@b, smarthost: 'mail:25'}]\n");
    assert!(
        e.path.ends_with("email_configs[0].from") && e.message.contains("smtp_from"),
        "{e}"
    );
    let e = err("    email_configs: [{to: a@b, from: c@d}]\n");
    assert!(e.path.ends_with("email_configs[0].smarthost"), "{e}");
    let e = err("    email_configs: [{to: a@b, from: c@d, smarthost: 'm:25', headers: {subject: a, Subject: b}}]\n");
    assert!(e.message.contains("duplicate header \"Subject\""), "{e}");
    let e = err("    opsgenie_configs: [{api_key: a, api_key_file: f}]\n");
    assert!(
        e.message.contains("at most one of api_key & api_key_file"),
        "{e}"
    );
    let e = err("    opsgenie_configs: [{message: m}]\n");
    assert!(e.path.ends_with("opsgenie_configs[0].api_key"), "{e}");
    let e = err("    opsgenie_configs: [{api_key: a, responders: [{name: x, type: squad}]}]\n");
    assert!(e.path.ends_with("responders[0].type"), "{e}");
    let e = err("    slack_configs: [{api_url: 'http://x/', fields: [{title: t}]}]\n");
    assert!(e.path.ends_with("slack_configs[0].fields[0].value"), "{e}");
    let e =
        err("    slack_configs: [{api_url: 'http://x/', actions: [{type: button, text: t}]}]\n");
    assert!(e.message.contains("missing name or url"), "{e}");
    let e = err("    webhook_configs: [{url: 'http://x/', http_config: {bearer_token: a, basic_auth: {username: u}}}]\n");
    assert!(
        e.message.contains("at most one of basic_auth, oauth2"),
        "{e}"
    );
    let e = err("    pagerduty_configs: [{routing_key: a, description: '{{ if }}'}]\n");
    assert!(e.path.ends_with("pagerduty_configs[0].description"), "{e}");
    // A missing key file is a load error naming the field.
    let dir = tempfile::tempdir().unwrap();
    let e = argus_notify::load_config_in(
        &base("    pagerduty_configs: [{routing_key_file: nope}]\n"),
        dir.path(),
    )
    .unwrap_err();
    assert!(
        e.path.ends_with("pagerduty_configs[0].routing_key_file"),
        "{e}"
    );
}

/// Secrets never appear in `Debug` (and so never in logs).
#[test]
fn debug_of_configs_redacts_secrets() {
    let yaml = r#"
global:
  smtp_auth_password: SECRET-smtp-global
  opsgenie_api_key: SECRET-og-global
  slack_api_url: http://SECRET-slack-global/
  http_config:
    oauth2: {client_id: id, client_secret: SECRET-oauth, token_url: 'http://t/'}
route: {receiver: r}
receivers:
  - name: r
    email_configs: [{to: a@b, from: c@d, smarthost: 'm:25', auth_password: SECRET-pw, auth_secret: SECRET-cram}]
    pagerduty_configs: [{routing_key: SECRET-rk}, {service_key: SECRET-sk}]
    opsgenie_configs: [{api_key: SECRET-og}]
    slack_configs: [{api_url: 'http://SECRET-slack/'}]
    webhook_configs:
      - url: http://x/
        http_config: {authorization: {credentials: SECRET-cred}}
      - url: http://x/
        http_config: {basic_auth: {username: u, password: SECRET-basic}}
"#;
    let c = argus_notify::load_config(yaml).unwrap();
    let d = format!("{c:?}");
    assert!(
        !d.contains("SECRET-"),
        "{}",
        &d[d.find("SECRET-").unwrap().saturating_sub(80)..]
    );
    assert!(d.contains("<secret>"));
}

/// `http_config.oauth2` (client credentials, secret from a file): the same token
/// request and the same bearer on the notifications as Alertmanager 0.25.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth2_side_by_side() {
    let yaml = format!(
        r#"
global:
  http_config:
    oauth2:
      client_id: argus
      client_secret_file: '{{dir}}/oauth_secret'
      token_url: '{{http}}/token'
      scopes: [alerts, write]
      endpoint_params: {{audience: pd}}
route:
  receiver: pd
  group_by: [alertname]
  {STANDARD_TIMERS}
receivers:
  - name: pd
    pagerduty_configs:
      - url: '{{http}}/pd'
        routing_key: k
"#
    );
    let run = side_by_side_setup(
        &yaml,
        &Scenario::standard(),
        |_| vec![("oauth_secret".to_string(), "s3cret\n".to_string())],
        &SmtpOptions::default(),
        |h| {
            h.default_body(
                "/token",
                r#"{"access_token":"tok-9","token_type":"bearer","expires_in":3600}"#,
            )
        },
    )
    .await;
    assert_eq!(same_requests(&run, "/pd", &[]), 5);
    type TokenRequest = (String, Option<String>, Vec<(String, String)>);
    let form = |r: &Recordings| -> Vec<TokenRequest> {
        r.http
            .requests_to("/token")
            .iter()
            .map(|x| {
                let mut f: Vec<(String, String)> = url::form_urlencoded::parse(&x.body)
                    .map(|(a, b)| (a.into_owned(), b.into_owned()))
                    .collect();
                f.sort();
                (
                    x.header("content-type").unwrap_or("").to_string(),
                    x.header("authorization").map(String::from),
                    f,
                )
            })
            .collect()
    };
    let (a, r) = (form(&run.argus), form(&run.real));
    assert_eq!(a, r);
    assert_eq!(a.len(), 1, "the token is cached: {a:?}");
    assert_eq!(
        run.argus.http.delivered("/pd")[0].header("authorization"),
        Some("Bearer tok-9")
    );
}

/// PagerDuty Events API v1 (`service_key`): Alertmanager 0.25 always posts it to
/// events.pagerduty.com, so it cannot be recorded side by side; Argus honours `url`
/// and sends the v1 event of Alertmanager's code (checked here field by field), with
/// the description truncated to 1024 characters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_v1_event() {
    let http = HttpRecorder::start().await;
    let yaml = format!(
        "route: {{receiver: r, group_wait: 0s, group_interval: 1s}}\nreceivers:\n  - name: r\n    pagerduty_configs:\n      - url: '{}/v1'\n        service_key: sk\n        description: '{{{{ range .Alerts }}}}{}{{{{ end }}}}'\n",
        http.base,
        "x".repeat(1500)
    );
    let n = notifier(kv(), &yaml);
    n.ingest(vec![alert(&[("alertname", "Down")])], T0)
        .await
        .unwrap();
    n.tick(T0).await.unwrap();
    n.ingest(vec![resolved(&[("alertname", "Down")], T0 + 500)], T0 + 500)
        .await
        .unwrap();
    n.tick(T0 + 1000).await.unwrap();
    let b = http.delivered_json("/v1");
    assert_eq!(b.len(), 2);
    let t = &b[0];
    assert_eq!(t["service_key"], "sk");
    assert_eq!(t["event_type"], "trigger");
    assert_eq!(t["event_action"], "");
    assert_eq!(t["payload"], Value::Null);
    assert_eq!(t["client"], "Alertmanager");
    assert_eq!(t["client_url"], "http://argus:9093/#/alerts?receiver=r");
    let d = t["description"].as_str().unwrap();
    assert_eq!(d.chars().count(), 1024);
    assert!(d.ends_with('…'));
    assert_eq!(t["details"]["num_firing"], "1");
    assert_eq!(t["incident_key"].as_str().unwrap().len(), 64);
    assert!(t.get("routing_key").is_none() && t.get("dedup_key").is_none());
    let r = &b[1];
    assert_eq!(r["event_type"], "resolve");
    assert_eq!(r["incident_key"], t["incident_key"]);
    assert!(r.get("client").is_none(), "no client on resolve (v1)");
}

/// STARTTLS (`require_tls`, the default) with a self-signed certificate accepted by
/// `tls_config.insecure_skip_verify`, and PLAIN over it: the same mails as
/// Alertmanager 0.25, sent over TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_starttls_side_by_side() {
    let certs = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let yaml = format!(
        r#"
route:
  receiver: mail
  group_by: [alertname]
  {STANDARD_TIMERS}
receivers:
  - name: mail
    email_configs:
      - to: ops@example.org
        from: am@example.org
        smarthost: '{{smtp}}'
        auth_username: u
        auth_password: p
        tls_config: {{insecure_skip_verify: true}}
"#
    );
    let run = side_by_side_with(
        &yaml,
        &Scenario::standard(),
        |_| vec![],
        &SmtpOptions {
            user: Some(("u".into(), "p".into())),
            tls: Some((cert, key)),
            exclude: vec!["CRAM-MD5".into(), "LOGIN".into()],
            ..Default::default()
        },
    )
    .await;
    let (a, r) = (run.argus.mails(), run.real.mails());
    assert_eq!(r.len(), 3, "real: {}", run.am_log);
    assert_eq!(a.len(), r.len());
    for (x, y) in a.iter().zip(r.iter()) {
        assert!(x.tls && y.tls);
        assert_eq!(x.auth_mechanism.as_deref(), Some("PLAIN"));
        assert_eq!(mail_view(x), mail_view(y));
    }
}
