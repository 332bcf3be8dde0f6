//! Part B receivers (victorops, pushover, telegram, webex, discord, wechat, msteams):
//! side by side with the real Alertmanager 0.25 (tests/common/recorder.rs), msteams
//! against Alertmanager 0.26's documented payload, and the fault cases per integration
//! (429 then 200, 500 then 200, 400, timeout) on Argus, each decided as Alertmanager
//! 0.25 decides it.

mod common;
use common::recorder::*;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

/// (method, path, query, content-type, authorization, body) of the requests whose path
/// starts with `prefix`, answered 2xx, in order.
type Req = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Value,
);
fn delivered(r: &Recordings, prefix: &str) -> Vec<Req> {
    r.http
        .requests()
        .iter()
        .filter(|x| x.path.starts_with(prefix) && x.ok())
        .map(|x| {
            (
                x.method.clone(),
                x.path.clone(),
                x.query.clone(),
                x.header("content-type").map(String::from),
                x.header("authorization").map(String::from),
                x.json(),
            )
        })
        .collect()
}

fn same(run: &SideBySide, prefix: &str) -> Vec<Req> {
    let (a, r) = (delivered(&run.argus, prefix), delivered(&run.real, prefix));
    assert!(
        !r.is_empty(),
        "the real Alertmanager sent nothing to {prefix}: {}",
        run.am_log
    );
    assert_eq!(a.len(), r.len(), "{prefix}: argus {a:#?}\nreal {r:#?}");
    for (i, (x, y)) in a.iter().zip(r.iter()).enumerate() {
        assert_eq!(
            x, y,
            "{prefix} request {i}: argus {:#}\nreal {:#}",
            x.5, y.5
        );
    }
    a
}

/// [`side_by_side`] with each implementation's recorder prepared first (answers with
/// the bodies the services give).
async fn side_by_side_with(
    yaml: &str,
    scenario: &Scenario,
    files: &[(&str, &str)],
    prep: impl Fn(&Recordings),
) -> SideBySide {
    let adir = tempfile::tempdir().unwrap();
    let rdir = tempfile::tempdir().unwrap();
    let mut made = Vec::new();
    for dir in [adir.path(), rdir.path()] {
        let http = HttpRecorder::start().await;
        for (name, content) in files {
            std::fs::write(dir.join(name), content).unwrap();
        }
        let text = yaml
            .replace("{http}", &http.base)
            .replace("{dir}", &dir.display().to_string());
        let rec = Recordings { http, smtp: None };
        prep(&rec);
        made.push((rec, text));
    }
    let (real, ryaml) = made.pop().unwrap();
    let (argus, ayaml) = made.pop().unwrap();
    run_argus_with(&ayaml, scenario, adir.path()).await;
    let am_log = run_real_with(&ryaml, scenario, rdir.path()).await;
    SideBySide {
        argus,
        real,
        am_log,
    }
}

const TELEGRAM_OK: &str =
    r#"{"ok":true,"result":{"message_id":1,"date":0,"chat":{"id":-100123,"type":"group"}}}"#;

/// victorops, telegram, webex, discord and wechat in one receiver, one run: every
/// request equal (method, path with the key, query, Content-Type, Authorization, JSON).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn part_b_side_by_side() {
    let yaml = format!(
        r#"
global:
  victorops_api_url: '{{http}}/vo/'
  victorops_api_key_file: '{{dir}}/vo_key'
  telegram_api_url: '{{http}}/tg'
  webex_api_url: '{{http}}/webex/messages'
  wechat_api_url: '{{http}}/wechat/'
  wechat_api_secret: corp-secret
  wechat_api_corp_id: corp-1
route:
  receiver: b
  group_by: [alertname]
  {STANDARD_TIMERS}
receivers:
  - name: b
    victorops_configs:
      - routing_key: 'team-{{{{ .GroupLabels.alertname }}}}'
        custom_fields:
          severity: '{{{{ .CommonLabels.severity }}}}'
      - api_url: '{{http}}/vo2'
        api_key: inline-key
        routing_key: ops
        message_type: '{{{{ if eq .CommonLabels.severity "critical" }}}}WARNING{{{{ else }}}}INFO{{{{ end }}}}'
        state_message: '{{{{ range .Alerts }}}}{{{{ .Labels.instance }}}} {{{{ end }}}}'
        entity_display_name: 'Down in {{{{ .CommonLabels.job }}}}'
        monitoring_tool: prom
    telegram_configs:
      - bot_token: 'tok:1'
        chat_id: -100123
      - api_url: '{{http}}/tg2'
        bot_token: 'tok:2'
        chat_id: 42
        parse_mode: ''
        disable_notifications: true
        message: '{{{{ .Status }}}} {{{{ range .Alerts }}}}<{{{{ .Labels.instance }}}}> {{{{ end }}}}'
      - api_url: '{{http}}/tg3'
        bot_token: 'tok:3'
        chat_id: 43
        parse_mode: MarkdownV2
    webex_configs:
      - room_id: room-1
        http_config:
          authorization:
            credentials: webex-bot-token
    discord_configs:
      - webhook_url: '{{http}}/discord/1/tok'
      - webhook_url: '{{http}}/discord/2/tok'
        title: '{{{{ .CommonLabels.alertname }}}} ({{{{ len .Alerts.Firing }}}})'
        message: '{{{{ .CommonAnnotations.summary }}}}'
    wechat_configs:
      - send_resolved: true
        to_user: '@all'
        agent_id: '1000002'
      - send_resolved: true
        api_url: '{{http}}/wechat2'
        message_type: markdown
        to_party: '2'
        to_tag: 'tag-{{{{ .GroupLabels.alertname }}}}'
      - api_url: '{{http}}/wechat3/'
"#
    );
    // Each implementation gets its own recorder: answers as the services do.
    let prepare = |r: &Recordings| {
        for p in [
            "/tg/bottok:1/sendMessage",
            "/tg2/bottok:2/sendMessage",
            "/tg3/bottok:3/sendMessage",
        ] {
            r.http.default_body(p, TELEGRAM_OK);
        }
        for p in ["/wechat/gettoken", "/wechat2/gettoken", "/wechat3/gettoken"] {
            r.http.default_body(
                p,
                r#"{"errcode":0,"errmsg":"ok","access_token":"AT-1","expires_in":7200}"#,
            );
        }
        for p in [
            "/wechat/message/send",
            "/wechat2/message/send",
            "/wechat3/message/send",
        ] {
            r.http.default_body(p, r#"{"errcode":0,"errmsg":"ok"}"#);
        }
    };
    let run = side_by_side_with(
        &yaml,
        &Scenario::standard(),
        &[("vo_key", "file-key\n")],
        prepare,
    )
    .await;

    let vo = same(&run, "/vo/");
    assert_eq!(vo.len(), 5);
    assert_eq!(vo[0].1, "/vo/file-key/team-Down");
    assert_eq!(vo[0].5["message_type"], "CRITICAL");
    assert_eq!(vo[0].5["severity"], "critical");
    assert_eq!(vo[4].5["message_type"], "RECOVERY");
    let vo2 = same(&run, "/vo2");
    assert_eq!(vo2[0].1, "/vo2/inline-key/ops");
    assert_eq!(vo2[0].5["message_type"], "WARNING");

    let tg = same(&run, "/tg/");
    assert_eq!(tg.len(), 5);
    assert_eq!(tg[0].5["parse_mode"], "HTML");
    // html/template escaped the generator URL's '+' as Alertmanager does.
    assert!(tg[0].5["text"]
        .as_str()
        .unwrap()
        .contains("up&#43;%3D%3D&#43;0"));
    let tg2 = same(&run, "/tg2/");
    assert_eq!(tg2[0].5["text"], "firing <web-1> <web-2> ");
    assert_eq!(tg2[0].5["disable_notification"], "true");
    same(&run, "/tg3/");

    let wx = same(&run, "/webex/");
    assert_eq!(wx.len(), 5);
    assert_eq!(wx[0].4.as_deref(), Some("Bearer webex-bot-token"));
    assert_eq!(wx[0].5["roomId"], "room-1");

    let d1 = same(&run, "/discord/1/");
    assert_eq!(d1.len(), 5);
    assert_eq!(d1[0].5["embeds"][0]["color"], 0x992D22);
    assert_eq!(d1[4].5["embeds"][0]["color"], 0x2ECC71);
    same(&run, "/discord/2/");

    // WeChat: one token fetch (kept for 2 h), then the messages.
    let w = same(&run, "/wechat/");
    assert_eq!(w[0].0, "GET");
    assert_eq!(w[0].1, "/wechat/gettoken");
    assert_eq!(w[0].2, "corpid=corp-1&corpsecret=corp-secret");
    assert_eq!(w.len(), 6, "{w:#?}");
    assert!(w[1..]
        .iter()
        .all(|r| r.1 == "/wechat/message/send" && r.2 == "access_token=AT-1"));
    assert_eq!(w[1].5["touser"], "@all");
    let w2 = same(&run, "/wechat2");
    assert_eq!(w2[1].5["msgtype"], "markdown");
    assert_eq!(w2[1].5["totag"], "tag-Down");
    // send_resolved is false by default for wechat: no resolved-only message.
    let w3 = same(&run, "/wechat3/");
    assert!(w3.len() < w.len(), "{w3:#?}");
}

/// msteams (not in Alertmanager 0.25): the body Alertmanager 0.26 sends, written out
/// from its source (notify/msteams/msteams.go: `teamsMessage` with `@context`
/// `http://schema.org/extensions`, `type` `MessageCard`, `themeColor` 8C1A1A firing /
/// 2DC72D resolved; template/default.tmpl: `msteams.default.title` = `__subject`,
/// `msteams.default.text` with `__text_alert_list_markdown`).
#[tokio::test]
async fn msteams_like_alertmanager_026() {
    let dir = tempfile::tempdir().unwrap();
    let http = HttpRecorder::start().await;
    let yaml = format!(
        "route:\n  receiver: t\n  group_by: [alertname]\n  {STANDARD_TIMERS}\nreceivers:\n  - name: t\n    msteams_configs:\n      - webhook_url: '{}/teams/hook'\n",
        http.base
    );
    run_argus_with(&yaml, &Scenario::standard(), dir.path()).await;
    let got = http.delivered("/teams/hook");
    assert_eq!(got.len(), 5);
    assert_eq!(got[0].header("content-type"), Some("application/json"));
    let alert = |i: &str| {
        format!(
            "\nLabels:\n  - alertname = Down\n  - instance = {i}\n  - job = node\n  - severity = critical\n\nAnnotations:\n  - description = {i} is down\n  - summary = Down on {i}\n\nSource: http://prometheus:9090/graph?g0.expr=up+%3D%3D+0\n"
        )
    };
    let want_first = json!({
        "@context": "http://schema.org/extensions",
        "type": "MessageCard",
        "title": "[FIRING:2] Down (node critical)",
        "text": format!("\n\n# Alerts Firing:\n{}{}\n\n\n\n", alert("web-1"), alert("web-2")),
        "themeColor": "8C1A1A",
    });
    assert_eq!(got[0].json(), want_first, "{:#}", got[0].json());
    let last = got[4].json();
    assert_eq!(last["title"], "[RESOLVED] Down (node critical)");
    assert_eq!(last["themeColor"], "2DC72D");
    assert_eq!(
        last["text"],
        format!(
            "\n\n\n# Alerts Resolved:\n{}{}\n\n\n",
            alert("web-1"),
            alert("web-3")
        )
    );
}

// ---------------------------------------------------------------- faults

/// How a receiver is configured against the recorder and where it posts.
struct Target {
    yaml: &'static str,
    /// The path whose replies are scripted.
    path: &'static str,
    /// The body of a successful reply.
    ok: &'static str,
    /// Extra paths answered with a body (wechat's token).
    extra: &'static [(&'static str, &'static str)],
    /// The 4xx reply (some APIs answer JSON).
    bad: &'static str,
    /// 429's body.
    limited: &'static str,
}

fn targets(kind: &str) -> Target {
    match kind {
        "victorops" => Target {
            yaml: "victorops_configs: [{api_url: '{http}/vo/', api_key: k, routing_key: r}]",
            path: "/vo/k/r",
            ok: r#"{"result":"success"}"#,
            extra: &[],
            bad: r#"{"result":"failure","message":"bad"}"#,
            limited: "",
        },
        "pushover" => Target {
            yaml: "pushover_configs: [{api_url: '{http}/1/messages.json', user_key: u, token: t}]",
            path: "/1/messages.json",
            ok: r#"{"status":1}"#,
            extra: &[],
            bad: r#"{"user":"invalid","errors":["user identifier is invalid"],"status":0}"#,
            limited: "",
        },
        "telegram" => Target {
            yaml: "telegram_configs: [{api_url: '{http}/tg', bot_token: 'b:t', chat_id: 5}]",
            path: "/tg/botb:t/sendMessage",
            ok: TELEGRAM_OK,
            extra: &[],
            bad: r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#,
            limited: r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 1","parameters":{"retry_after":1}}"#,
        },
        "webex" => Target {
            yaml: "webex_configs: [{api_url: '{http}/webex', room_id: r, http_config: {authorization: {credentials: t}}}]",
            path: "/webex",
            ok: "{}",
            extra: &[],
            bad: r#"{"message":"bad"}"#,
            limited: "",
        },
        "discord" => Target {
            yaml: "discord_configs: [{webhook_url: '{http}/discord/1/t'}]",
            path: "/discord/1/t",
            ok: "",
            extra: &[],
            bad: r#"{"code":50006,"message":"Cannot send an empty message"}"#,
            limited: r#"{"message":"You are being rate limited.","retry_after":1,"global":false}"#,
        },
        "wechat" => Target {
            yaml: "wechat_configs: [{api_url: '{http}/wc/', api_secret: s, corp_id: c}]",
            path: "/wc/message/send",
            ok: r#"{"errcode":0,"errmsg":"ok"}"#,
            extra: &[("/wc/gettoken", r#"{"access_token":"AT"}"#)],
            bad: "bad request",
            limited: "",
        },
        "msteams" => Target {
            yaml: "msteams_configs: [{webhook_url: '{http}/teams'}]",
            path: "/teams",
            ok: "1",
            extra: &[],
            bad: "Bad payload",
            limited: "Microsoft Teams endpoint returned HTTP error 429",
        },
        k => panic!("{k}"),
    }
}

enum Fault {
    Status(u16),
    Timeout,
}

/// One fault on the first attempt; returns (attempts of the first flush, whether it
/// was delivered by it, requests the receiver saw in all, deliveries in all).
async fn fault(kind: &str, f: Fault) -> (u32, bool, usize, usize) {
    let t = targets(kind);
    let http = HttpRecorder::start().await;
    http.default_body(t.path, t.ok);
    for (p, b) in t.extra {
        http.default_body(p, b);
    }
    let reply = match f {
        Fault::Status(400) => Reply::status(400).with_body(t.bad),
        Fault::Status(429) => Reply::status(429).with_body(t.limited),
        Fault::Status(s) => Reply::status(s).with_body("upstream failed"),
        Fault::Timeout => Reply::delayed(Duration::from_millis(1500)).with_body(t.ok),
    };
    http.script(t.path, [reply]);
    let yaml = format!(
        "route:\n  receiver: r\n  group_wait: 1s\n  group_interval: 10s\n  repeat_interval: 1h\nreceivers:\n  - name: r\n    {}\n",
        t.yaml.replace("{http}", &http.base)
    );
    let cfg = argus_notify::load_config(&yaml).unwrap_or_else(|e| panic!("{kind}: {e}"));
    let n =
        argus_notify::Notifier::new(kv(), cfg, argus_notify::Clients::http_only(), EXTERNAL_URL)
            .with_options(argus_notify::NotifierOptions {
                backoff: Duration::from_millis(20),
                // An attempt that hangs spends the whole budget (then the next flush).
                send_budget: Duration::from_millis(700),
                ..Default::default()
            });
    n.ingest(vec![alert(&[("alertname", "A")])], T0)
        .await
        .unwrap();
    let r = n.tick(T0 + 2 * S).await.unwrap();
    let (attempts, sent) = match &r.notifications[..] {
        [x] => match &x.outcome {
            argus_notify::Outcome::Sent { attempts, .. } => (*attempts, true),
            argus_notify::Outcome::Failed { attempts, .. } => (*attempts, false),
            o => panic!("{kind}: {o:?}"),
        },
        v => panic!("{kind}: {v:?}"),
    };
    // Later flushes: the next group_interval (delivers what failed), then nothing new.
    for at in [12, 22, 32] {
        n.ingest(vec![alert(&[("alertname", "A")])], T0 + at * S - 500)
            .await
            .unwrap();
        n.tick(T0 + at * S).await.unwrap();
    }
    // A request abandoned by the client is recorded when the recorder answers it.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let all = http.requests_to(t.path);
    let delivered_after_answer = all.iter().filter(|x| x.ok()).count();
    (attempts, sent, all.len(), delivered_after_answer)
}

/// Alertmanager 0.25's retry decision per integration: `notify.Retrier{}` (5xx only)
/// for victorops, pushover, webex, discord, msteams; every failure for telegram
/// (telebot's errors) and every non-200 for wechat.
fn retried(kind: &str, status: u16) -> bool {
    match kind {
        "telegram" | "wechat" => true,
        _ => status >= 500,
    }
}

async fn faults_of(kind: &str) {
    for s in [429, 500, 400] {
        let got = fault(kind, Fault::Status(s)).await;
        if retried(kind, s) {
            // Retried within the flush: delivered once.
            assert_eq!(got, (2, true, 2, 1), "{kind} {s} (retried)");
        } else {
            // Not retried: the next flush (group_interval later) delivers it, once.
            assert_eq!(got, (1, false, 2, 1), "{kind} {s} (not retried)");
        }
    }
    // Timeout: the attempt spends the budget and is abandoned, but the receiver got it
    // (answered late): it is not sent again (the notification log keeps the attempt as
    // possibly delivered), so it arrives once.
    let got = fault(kind, Fault::Timeout).await;
    assert_eq!(got, (1, false, 1, 1), "{kind} timeout");
}

#[tokio::test]
async fn victorops_faults() {
    faults_of("victorops").await;
}
#[tokio::test]
async fn pushover_faults() {
    faults_of("pushover").await;
}
#[tokio::test]
async fn telegram_faults() {
    faults_of("telegram").await;
}
#[tokio::test]
async fn webex_faults() {
    faults_of("webex").await;
}
#[tokio::test]
async fn discord_faults() {
    faults_of("discord").await;
}
#[tokio::test]
async fn wechat_faults() {
    faults_of("wechat").await;
}
#[tokio::test]
async fn msteams_faults() {
    faults_of("msteams").await;
}

/// WeChat: an expired access token (42001) is dropped and fetched again on the retry.
#[tokio::test]
async fn wechat_expired_token_is_refetched() {
    let http = HttpRecorder::start().await;
    http.script(
        "/wc/gettoken",
        [Reply::status(200).with_body(r#"{"access_token":"OLD"}"#)],
    );
    http.default_body("/wc/gettoken", r#"{"access_token":"NEW"}"#);
    http.script(
        "/wc/message/send",
        [Reply::status(200).with_body(r#"{"code":42001,"error":"access_token expired"}"#)],
    );
    http.default_body("/wc/message/send", r#"{"errcode":0}"#);
    let yaml = format!(
        "route:\n  receiver: r\n  group_wait: 1s\nreceivers:\n  - name: r\n    wechat_configs: [{{api_url: '{}/wc/', api_secret: s, corp_id: c}}]\n",
        http.base
    );
    let n = notifier(kv(), &yaml);
    n.ingest(vec![alert(&[("alertname", "A")])], T0)
        .await
        .unwrap();
    let r = n.tick(T0 + 2 * S).await.unwrap();
    assert_eq!(r.sent().count(), 1, "{r:?}");
    let sends: Vec<String> = http
        .requests_to("/wc/message/send")
        .iter()
        .map(|x| x.query.clone())
        .collect();
    assert_eq!(sends, vec!["access_token=OLD", "access_token=NEW"]);
}

/// Secrets stay out of errors: a failing request's error names the integration, not
/// the URL with the key.
#[tokio::test]
async fn errors_do_not_carry_secrets() {
    let yaml = "route:\n  receiver: r\n  group_wait: 1s\nreceivers:\n  - name: r\n    victorops_configs: [{api_url: 'http://127.0.0.1:1/vo/', api_key: very-secret-key, routing_key: r}]\n    telegram_configs: [{api_url: 'http://127.0.0.1:1', bot_token: 'very-secret-token', chat_id: 1}]\n";
    let cfg = argus_notify::load_config(yaml).unwrap();
    assert!(!format!("{:?}", cfg.receivers).contains("very-secret"));
    let n =
        argus_notify::Notifier::new(kv(), cfg, argus_notify::Clients::http_only(), EXTERNAL_URL)
            .with_options(argus_notify::NotifierOptions {
                backoff: Duration::from_millis(20),
                send_budget: Duration::from_millis(300),
                ..Default::default()
            });
    n.ingest(vec![alert(&[("alertname", "A")])], T0)
        .await
        .unwrap();
    let r = n.tick(T0 + 2 * S).await.unwrap();
    assert_eq!(r.failed().count(), 2, "{r:?}");
    let text = format!(
        "{r:?} {}",
        r.notifications
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    assert!(!text.contains("very-secret"), "{text}");
}

/// `api_key_file` secrets are read at each notification (as Alertmanager 0.25), relative to
/// the configuration's directory.
#[tokio::test]
async fn secret_files_are_read_at_each_notification() {
    let dir = tempfile::tempdir().unwrap();
    let http = HttpRecorder::start().await;
    std::fs::write(dir.path().join("vo"), "K1\n").unwrap();
    let yaml = format!(
        "global:\n  victorops_api_key_file: vo\nroute:\n  receiver: r\n  group_wait: 1s\n  group_interval: 10s\n  repeat_interval: 15s\nreceivers:\n  - name: r\n    victorops_configs: [{{api_url: '{b}/vo', routing_key: r}}]\n",
        b = http.base
    );
    std::fs::write(dir.path().join("am.yml"), &yaml).unwrap();
    let cfg = argus_notify::load_config_file(&dir.path().join("am.yml")).unwrap();
    let n =
        argus_notify::Notifier::new(kv(), cfg, argus_notify::Clients::http_only(), EXTERNAL_URL);
    n.ingest(vec![alert(&[("alertname", "A")])], T0)
        .await
        .unwrap();
    let r = n.tick(T0 + 2 * S).await.unwrap();
    assert_eq!(r.sent().count(), 1, "{r:?}");
    std::fs::write(dir.path().join("vo"), "K2").unwrap();
    // The repeat (repeat_interval 15s) goes out at the flush of 22s, with the new files.
    n.ingest(vec![alert(&[("alertname", "A")])], T0 + 21 * S)
        .await
        .unwrap();
    assert_eq!(n.tick(T0 + 22 * S).await.unwrap().sent().count(), 1);
    let paths: Vec<String> = http.requests().iter().map(|x| x.path.clone()).collect();
    for p in ["/vo/K1/r", "/vo/K2/r"] {
        assert!(paths.contains(&p.to_string()), "{p}: {paths:?}");
    }
}

// ---------------------------------------------------------------- pushover

/// Alertmanager 0.25 posts to the fixed `https://api.pushover.net/1/messages.json`.
/// Both implementations reach the recorder through `http_config.proxy_url`: this
/// proxy answers `CONNECT`, terminates TLS with a certificate for api.pushover.net from
/// a test CA (`tls_config.ca_file`) and relays the plain HTTP to `recorder`.
/// Returns (proxy URL, CA PEM).
async fn pushover_mitm(recorder: String) -> (String, String) {
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["api.pushover.net".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = format!("http://{}", l.local_addr().unwrap());
    let upstream = recorder.trim_start_matches("http://").to_string();
    tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = l.accept().await else {
                return;
            };
            let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if tcp.read(&mut b).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(b[0]);
                }
                if !head.starts_with(b"CONNECT api.pushover.net:443 ") {
                    let _ = tcp.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n").await;
                    return;
                }
                let _ = tcp
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await;
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut up) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
            });
        }
    });
    (proxy, ca_cert.pem())
}

/// The query parameters of a Pushover request, decoded (Go and Rust escape a few
/// characters differently; the values are what counts).
fn pushover_params(q: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushover_side_by_side() {
    let yaml = format!(
        r#"
route:
  receiver: p
  group_by: [alertname]
  {STANDARD_TIMERS}
receivers:
  - name: p
    pushover_configs:
      - user_key: user-1
        token: app-token
        http_config: &h
          proxy_url: '{{proxy}}'
          tls_config:
            ca_file: '{{dir}}/ca.pem'
      - user_key: user-2
        token: app-token
        html: true
        title: '{{{{ .CommonLabels.alertname }}}} & co'
        message: '{{{{ range .Alerts }}}}<{{{{ .Labels.instance }}}}> {{{{ end }}}}'
        url_title: Alertmanager
        sound: siren
        priority: '1'
        retry: 30s
        expire: 2h
        http_config: *h
"#
    );
    let adir = tempfile::tempdir().unwrap();
    let rdir = tempfile::tempdir().unwrap();
    let mut recs = Vec::new();
    for dir in [adir.path(), rdir.path()] {
        let http = HttpRecorder::start().await;
        http.default_body("/1/messages.json", r#"{"status":1,"request":"r"}"#);
        let (proxy, ca) = pushover_mitm(http.base.clone()).await;
        std::fs::write(dir.join("ca.pem"), ca).unwrap();
        let text = yaml
            .replace("{proxy}", &proxy)
            .replace("{dir}", &dir.display().to_string());
        recs.push((http, text));
    }
    run_argus_with(&recs[0].1, &Scenario::standard(), adir.path()).await;
    let am_log = run_real_with(&recs[1].1, &Scenario::standard(), rdir.path()).await;
    /// Method, path, Content-Type, query pairs and body length of one request.
    type Seen = (String, String, Option<String>, Vec<(String, String)>, usize);
    let view = |h: &HttpRecorder| -> Vec<Seen> {
        h.delivered("/1/messages.json")
            .iter()
            .map(|x| {
                (
                    x.method.clone(),
                    x.path.clone(),
                    x.header("content-type").map(String::from),
                    pushover_params(&x.query),
                    x.body.len(),
                )
            })
            .collect()
    };
    let (mut a, mut r) = (view(&recs[0].0), view(&recs[1].0));
    assert_eq!(r.len(), 10, "real Alertmanager: {am_log}");
    // The two integrations send concurrently: compare in a stable order.
    a.sort();
    r.sort();
    assert_eq!(a.len(), r.len());
    for (x, y) in a.iter().zip(r.iter()) {
        assert_eq!(x, y);
    }
    let user2: Vec<_> = a
        .iter()
        .filter(|x| x.3.contains(&("user".into(), "user-2".into())))
        .collect();
    let p: std::collections::BTreeMap<_, _> = user2[0].3.iter().cloned().collect();
    // html: the message escaped by html/template, the title not (text template).
    assert_eq!(p["html"], "1");
    assert!(p["message"].starts_with("&lt;web-"), "{p:?}");
    assert_eq!(p["title"], "Down & co");
    assert_eq!(a[0].2.as_deref(), Some("text/plain"));
}
