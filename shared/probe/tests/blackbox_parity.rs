//! Side by side with the real prometheus-blackbox-exporter: same modules file, same local
//! targets; same metric names, success, status codes, redirects, SSL flags, cert expiry.

mod common;

use argus_probe::{load_modules, Prober, ProberConfig};
use argus_testkit::{spawn_peer, tool};
use common::*;
use std::collections::BTreeSet;

fn modules_yaml(ca_file: &str) -> String {
    format!(
        r#"modules:
  http_2xx:
    prober: http
    timeout: 5s
  http_noredir:
    prober: http
    timeout: 5s
    http:
      follow_redirects: false
  http_slow:
    prober: http
    timeout: 1s
  http_tls:
    prober: http
    timeout: 5s
    http:
      tls_config:
        ca_file: {ca_file}
  http_h2:
    prober: http
    timeout: 5s
    http:
      valid_http_versions: ["HTTP/2.0"]
      tls_config:
        ca_file: {ca_file}
  http_tls_server_name:
    prober: http
    timeout: 5s
    http:
      tls_config:
        ca_file: {ca_file}
        server_name: localhost
        min_version: TLS12
  http_tls_wrong_name:
    prober: http
    timeout: 5s
    http:
      tls_config:
        ca_file: {ca_file}
        server_name: wrong.example
  http_bearer:
    prober: http
    timeout: 5s
    http:
      authorization:
        credentials: s3cret
  http_basic:
    prober: http
    timeout: 5s
    http:
      basic_auth:
        username: user
        password: pass
  http_tls_insecure:
    prober: http
    timeout: 5s
    http:
      tls_config:
        insecure_skip_verify: true
  http_tls_untrusted:
    prober: http
    timeout: 5s
  http_not_ssl:
    prober: http
    timeout: 5s
    http:
      fail_if_not_ssl: true
  http_body_match:
    prober: http
    timeout: 5s
    http:
      fail_if_body_not_matches_regexp: ["hello w.rld"]
  http_body_nomatch:
    prober: http
    timeout: 5s
    http:
      fail_if_body_not_matches_regexp: ["goodbye"]
  http_body_fail:
    prober: http
    timeout: 5s
    http:
      fail_if_body_matches_regexp: ["hello"]
  http_header:
    prober: http
    timeout: 5s
    http:
      fail_if_header_not_matches:
      - header: X-Argus
        regexp: "^yes$"
  http_header_fail:
    prober: http
    timeout: 5s
    http:
      fail_if_header_matches:
      - header: X-Argus
        regexp: "y.s"
  http_header_missing:
    prober: http
    timeout: 5s
    http:
      fail_if_header_not_matches:
      - header: X-Missing
        regexp: ".*"
  http_post:
    prober: http
    timeout: 5s
    http:
      method: POST
      body: "a=1"
      fail_if_body_not_matches_regexp: ["^POST$"]
  http_limit:
    prober: http
    timeout: 5s
    http:
      body_size_limit: 1KB
  http_gzip:
    prober: http
    timeout: 5s
    http:
      compression: gzip
      headers:
        Accept-Encoding: gzip
  http_codes:
    prober: http
    timeout: 5s
    http:
      valid_status_codes: [404]
      valid_http_versions: ["HTTP/1.1"]
  tcp_connect:
    prober: tcp
    timeout: 5s
  irc_banner:
    prober: tcp
    timeout: 5s
    tcp:
      query_response:
      - send: "NICK prober"
      - send: "USER prober prober prober :prober"
      - expect: "PING :([^ ]+)"
        send: "PONG ${{1}}"
      - expect: "^:[^ ]+ 001"
  ssh_banner:
    prober: tcp
    timeout: 1s
    tcp:
      query_response:
      - expect: "^SSH-2.0-"
      - send: "SSH-2.0-blackbox-ssh-check"
  tcp_ssh:
    prober: tcp
    timeout: 5s
    tcp:
      query_response:
      - expect: "^SSH-2.0-"
      - send: "SSH-2.0-blackbox-ssh-check"
  tcp_smtp:
    prober: tcp
    timeout: 1s
    tcp:
      query_response:
      - expect: "^220 "
  tcp_tls:
    prober: tcp
    timeout: 5s
    tcp:
      tls: true
      tls_config:
        ca_file: {ca_file}
      query_response:
      - expect: "^\\+OK"
  dns_a:
    prober: dns
    timeout: 5s
    dns:
      query_name: example.test
      query_type: A
      validate_answer_rrs:
        fail_if_not_matches_regexp: ["example\\.test\\.\\t300\\tIN\\tA\\t127\\.0\\.0\\.[12]"]
  dns_tcp:
    prober: dns
    timeout: 5s
    dns:
      transport_protocol: tcp
      query_name: example.test
      query_type: A
      validate_answer_rrs:
        fail_if_none_matches_regexp: ["127\\.0\\.0\\.2$"]
  dns_nx:
    prober: dns
    timeout: 5s
    dns:
      query_name: nope.test
      query_type: A
  dns_bad_answer:
    prober: dns
    timeout: 5s
    dns:
      query_name: example.test
      query_type: A
      validate_answer_rrs:
        fail_if_matches_regexp: [".*127\\.0\\.0\\.2"]
"#
    )
}

/// Families compared by exact value (when present on either side).
const EXACT: &[&str] = &[
    "probe_success",
    "probe_http_status_code",
    "probe_http_redirects",
    "probe_http_ssl",
    "probe_http_version",
    "probe_http_content_length",
    "probe_http_uncompressed_body_length",
    "probe_http_last_modified_timestamp_seconds",
    "probe_failed_due_to_regex",
    "probe_ssl_earliest_cert_expiry",
    "probe_ssl_last_chain_expiry_timestamp_seconds",
    "probe_ssl_last_chain_info",
    "probe_tls_version_info",
    "probe_ip_protocol",
    "probe_ip_addr_hash",
    "probe_dns_answer_rrs",
    "probe_dns_authority_rrs",
    "probe_dns_additional_rrs",
    "probe_dns_query_succeeded",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_verdicts_and_metrics_as_blackbox_exporter() {
    let pki = pki(30);
    let http = http_server().await;
    let https = https_server(&pki).await;
    let h2 = https_h2_server(&pki).await;
    let ssh = banner_server("SSH-2.0-OpenSSH_9.2 argus-test\r\n").await;
    let pop3s = tls_banner_server(&pki, "+OK POP3 ready\r\n").await;
    let dns = dns_server().await;
    let irc = irc_server().await;
    let refused = refused_addr();

    let yaml = modules_yaml(pki.ca_file.to_str().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("blackbox.yml");
    std::fs::write(&cfg, &yaml).unwrap();
    let bb = spawn_peer(
        "blackbox",
        &tool("prometheus-blackbox-exporter"),
        &[
            &format!("--config.file={}", cfg.display()),
            "--web.listen-address=127.0.0.1:{port}",
        ],
    );
    let modules = load_modules(&yaml).expect("the same file loads in Argus");
    let prober = Prober::new(ProberConfig::default());

    // (module, target, expected probe_success)
    let cases: Vec<(&str, String, bool)> = vec![
        ("http_2xx", format!("{http}/ok"), true),
        ("http_2xx", format!("{http}/notfound"), false),
        ("http_2xx", format!("{http}/redirect/3"), true),
        (
            "http_2xx",
            http.trim_start_matches("http://").to_string() + "/ok",
            true,
        ),
        ("http_noredir", format!("{http}/redirect/1"), false),
        ("http_slow", format!("{http}/delay/3000"), false),
        ("http_2xx", format!("http://{refused}/"), false),
        ("http_tls", format!("{https}/ok"), true),
        ("http_tls", format!("{https}/redirect/2"), true),
        ("http_tls_insecure", format!("{https}/ok"), true),
        ("http_tls_server_name", format!("{https}/ok"), true),
        ("http_tls_wrong_name", format!("{https}/ok"), false),
        ("http_bearer", format!("{http}/auth"), true),
        ("http_basic", format!("{http}/auth"), true),
        ("http_2xx", format!("{http}/auth"), false),
        ("irc_banner", irc.to_string(), true),
        ("ssh_banner", irc.to_string(), false),
        ("http_h2", format!("{h2}/redirect/1"), true),
        ("http_h2", format!("{https}/ok"), false),
        ("http_tls_untrusted", format!("{https}/ok"), false),
        ("http_not_ssl", format!("{http}/ok"), false),
        ("http_body_match", format!("{http}/ok"), true),
        ("http_body_nomatch", format!("{http}/ok"), false),
        ("http_body_fail", format!("{http}/ok"), false),
        ("http_header", format!("{http}/ok"), true),
        ("http_header_fail", format!("{http}/ok"), false),
        ("http_header_missing", format!("{http}/ok"), false),
        ("http_post", format!("{http}/echo-method"), true),
        ("http_limit", format!("{http}/big"), false),
        ("http_gzip", format!("{http}/gzip"), true),
        ("http_codes", format!("{http}/notfound"), true),
        ("tcp_connect", ssh.to_string(), true),
        ("tcp_connect", refused.to_string(), false),
        ("tcp_ssh", ssh.to_string(), true),
        ("tcp_smtp", ssh.to_string(), false),
        ("tcp_tls", pop3s.to_string(), true),
        ("dns_a", dns.to_string(), true),
        ("dns_nx", dns.to_string(), false),
        ("dns_tcp", dns.to_string(), true),
        ("dns_bad_answer", dns.to_string(), false),
    ];

    let mut failures = Vec::new();
    for (module, target, want) in &cases {
        let m = modules.get(module).unwrap();
        let path = format!("/probe?module={module}&target={}", urlencode(target));
        let (theirs, ours) = tokio::join!(get(bb.addr(), &path), prober.probe(target, m, 0));
        assert_eq!(
            theirs.0, 200,
            "{module} {target}: blackbox said {}",
            theirs.1
        );
        let t = samples(&theirs.1);
        let o = samples(&ours.text());
        assert!(
            t.contains_key("probe_success") && o.contains_key("probe_success"),
            "{module} {target}: {}",
            theirs.1
        );
        if std::env::var("ARGUS_PARITY_DUMP").as_deref() == Ok(module) {
            eprintln!(
                "=== {module} {target}\n--- blackbox\n{}\n--- argus\n{}\n{}",
                theirs.1,
                ours.text(),
                ours.log.join("\n")
            );
        }
        let label = format!("{module} {target}");
        let tn: BTreeSet<_> = t.keys().cloned().collect();
        let on: BTreeSet<_> = o.keys().cloned().collect();
        if tn != on {
            failures.push(format!(
                "{label}: metric names differ\n  blackbox only: {:?}\n  argus only: {:?}",
                tn.difference(&on).collect::<Vec<_>>(),
                on.difference(&tn).collect::<Vec<_>>()
            ));
        }
        for name in EXACT {
            if t.get(*name) != o.get(*name) {
                failures.push(format!(
                    "{label}: {name}: blackbox {:?} argus {:?}",
                    t.get(*name),
                    o.get(*name)
                ));
            }
        }
        // Same phases reported (values are timings).
        for name in ["probe_http_duration_seconds", "probe_dns_duration_seconds"] {
            let tk: Option<Vec<_>> = t.get(name).map(|m| m.keys().cloned().collect());
            let ok: Option<Vec<_>> = o.get(name).map(|m| m.keys().cloned().collect());
            if tk != ok {
                failures.push(format!(
                    "{label}: {name} phases: blackbox {tk:?} argus {ok:?}"
                ));
            }
        }
        if ours.success != *want {
            failures.push(format!(
                "{label}: argus success {} want {want}; log:\n{}",
                ours.success,
                ours.log.join("\n")
            ));
        }
        if !ours.success && ours.error.is_none() {
            failures.push(format!("{label}: failed without an error message"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}\n\nblackbox log:\n{}",
        failures.len(),
        failures.join("\n"),
        bb.log()
    );

    // Spot checks against what the servers really are.
    let ok = prober
        .probe(
            &format!("{https}/redirect/2"),
            modules.get("http_tls").unwrap(),
            0,
        )
        .await;
    assert_eq!(ok.value("probe_http_redirects"), Some(2.0));
    assert_eq!(ok.value("probe_http_ssl"), Some(1.0));
    assert_eq!(
        ok.value("probe_ssl_earliest_cert_expiry"),
        Some(pki.leaf_not_after as f64)
    );
    assert_eq!(ok.status_code, Some(200));
}
