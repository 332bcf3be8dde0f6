//! Many targets, bad input, timeouts, the link-local guard, scraping and the /probe
//! endpoint.

mod common;

use argus_model::{SystemClock, Target};
use argus_probe::{load_modules, serve, Prober, ProberConfig};
use common::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MODULES: &str = r#"modules:
  fast:
    prober: http
    timeout: 300ms
  limited:
    prober: http
    timeout: 2s
    http:
      body_size_limit: 4KB
  scrape_tiny_body:
    prober: scrape
    timeout: 2s
    scrape:
      body_size_limit: 64
  scrape_small:
    prober: scrape
    timeout: 2s
    scrape:
      sample_limit: 3
"#;

fn target(url: &str, module: &str) -> Target {
    let mut t = Target::new(url);
    t.module = module.to_string();
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_per_target_failure_never_a_failed_run() {
    let http = http_server().await;
    let modules = load_modules(MODULES).unwrap();
    let prober = Prober::new(ProberConfig::default());
    let targets = vec![
        target(&format!("{http}/ok"), "http_2xx"),
        target(&format!("{http}/ok"), "no_such_module"),
        target("http://", "http_2xx"),
        target("ftp://files.example.com/x", "http_2xx"),
        target(&format!("{http}/big"), "limited"),
        target(&http.replace("http://", ""), "scrape"),
        target(&format!("{http}/garbage"), "scrape"),
        target(&format!("{http}/notfound"), "scrape"),
        target(&format!("{http}/metrics"), "scrape_small"),
        target("127.0.0.1", "tcp_connect"),
        target(&format!("{http}/ok"), "http_post_2xx"),
        target(&format!("{http}/metrics"), "scrape_tiny_body"),
    ];
    let out = prober
        .run_targets(targets, &modules, 8, 1_700_000_000_000)
        .await;
    assert_eq!(out.len(), 12);
    let check = |i: usize, ok: bool, needle: &str| {
        let (t, o) = &out[i];
        assert_eq!(o.success, ok, "{}: {:?} {:?}", t.url, o.error, o.log);
        if !ok {
            let e = o.error.clone().unwrap_or_default();
            assert!(
                e.contains(needle),
                "{} ({}): error {e:?} lacks {needle:?}",
                t.url,
                t.module
            );
            let v = o.value("probe_success").or(o.value("up"));
            assert_eq!(v, Some(0.0), "{}: {}", t.url, o.text());
        }
    };
    check(0, true, "");
    check(1, false, "unknown module \"no_such_module\"");
    check(2, false, "invalid target URL");
    check(3, false, "unsupported URL scheme \"ftp\"");
    check(4, false, "too large");
    assert_eq!(
        out[4].1.value("probe_http_uncompressed_body_length"),
        Some(4096.0)
    );
    // A scrape target given as host:port gets /metrics.
    check(5, true, "");
    assert_eq!(out[5].1.value("up"), Some(1.0));
    assert_eq!(out[5].1.value("scrape_samples_scraped"), Some(7.0));
    check(6, false, "invalid exposition text");
    check(7, false, "server returned HTTP status 404");
    check(8, false, "sample limit exceeded");
    check(9, false, "missing port");
    // The built-in http_post_2xx accepts the 200 of a POST.
    check(10, true, "");
    check(11, false, "body size limit exceeded (64 bytes)");
}

#[test]
fn invalid_regexp_is_a_config_error_naming_module_and_field() {
    let e = load_modules("modules:\n  m:\n    prober: http\n    http:\n      fail_if_header_matches:\n      - header: X\n        regexp: '(unclosed'\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("\"m\"") && e.contains("fail_if_header_matches") && e.contains("(unclosed"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_target_does_not_delay_the_others_beyond_its_timeout() {
    let http = http_server().await;
    let modules = load_modules(MODULES).unwrap();
    let prober = Prober::new(ProberConfig::default());
    let fast = modules.get("fast").unwrap().clone();
    let mut jobs = vec![
        (Target::new(&format!("{http}/hang")), fast.clone()),
        (Target::new(&format!("{http}/hang")), fast.clone()),
    ];
    for i in 0..40 {
        jobs.push((
            Target::new(&format!("{http}/delay/{}", 10 + i % 3 * 10)),
            fast.clone(),
        ));
    }
    let start = Instant::now();
    let out = prober.run_many(jobs, 4, 0).await;
    let wall = start.elapsed();
    assert!(!out[0].success && !out[1].success);
    assert!(
        out[0].error.as_deref().unwrap_or("").contains("deadline"),
        "{:?}",
        out[0].error
    );
    assert!(
        out[0].duration >= Duration::from_millis(290)
            && out[0].duration < Duration::from_millis(800),
        "{:?}",
        out[0].duration
    );
    assert!(
        out[2..].iter().all(|o| o.success),
        "{:?}",
        out.iter().map(|o| &o.error).collect::<Vec<_>>()
    );
    // Two slots hang for 300 ms; the 40 others (≤ 30 ms each) run in the other two.
    assert!(wall < Duration::from_millis(1500), "wall {wall:?}");
    // The timed-out probe still reports blackbox's families, with the connect phase.
    let t = out[0].text();
    assert!(
        t.contains("probe_http_duration_seconds{phase=\"connect\"}")
            && t.contains("probe_http_status_code 0"),
        "{t}"
    );
}

#[tokio::test]
async fn link_local_and_metadata_addresses_are_refused() {
    let modules = load_modules("").unwrap();
    let prober = Prober::new(ProberConfig::default());
    for (target, module) in [
        ("http://169.254.169.254/latest/meta-data/", "http_2xx"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "http_2xx"),
        ("http://[fe80::1]:8080/", "http_2xx"),
        // IPv4-mapped IPv6 forms of the metadata addresses.
        (
            "http://[::ffff:169.254.169.254]/latest/meta-data/",
            "http_2xx",
        ),
        ("[::ffff:169.254.170.2]:80", "tcp_connect"),
        ("[::ffff:a9fe:a9fe]:80", "scrape"),
        ("169.254.170.2:80", "tcp_connect"),
        ("169.254.169.253", "dns"),
        ("169.254.169.254:80", "scrape"),
    ] {
        let start = Instant::now();
        let o = prober.probe(target, modules.get(module).unwrap(), 0).await;
        assert!(!o.success, "{target}");
        let e = o.error.clone().unwrap_or_default();
        assert!(
            e.contains("refusing to probe") && e.contains("allow_link_local"),
            "{target}: {e}"
        );
        assert!(
            start.elapsed() < Duration::from_millis(200),
            "{target}: refused before any connection"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_the_metadata_service_is_refused() {
    // A local server redirecting to 169.254.169.254 (SSRF through redirects), plainly
    // and in its IPv4-mapped IPv6 form.
    for (location, refused) in [
        (
            "http://169.254.169.254/latest/meta-data/",
            "169.254.169.254",
        ),
        (
            "http://[::ffff:169.254.169.254]/latest/meta-data/",
            "::ffff:169.254.169.254",
        ),
    ] {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let redirect =
            format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n");
        let server = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(redirect.as_bytes()).await;
            }
        });
        let modules = load_modules("").unwrap();
        let prober = Prober::new(ProberConfig::default());
        let o = prober
            .probe(
                &format!("http://{addr}/"),
                modules.get("http_2xx").unwrap(),
                0,
            )
            .await;
        server.abort();
        assert!(!o.success, "{location}");
        let e = o.error.unwrap_or_default();
        assert!(
            e.contains(&format!("refusing to probe {refused}:")),
            "{location}: {e}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_endpoint_is_blackbox_compatible() {
    let http = http_server().await;
    let modules = Arc::new(load_modules("").unwrap());
    let prober = Arc::new(Prober::new(ProberConfig::default()));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let server = tokio::spawn(serve(prober, modules, l, Arc::new(SystemClock)));

    let (status, body) = get(
        addr,
        &format!(
            "/probe?target={}&module=http_2xx",
            urlencode(&format!("{http}/ok"))
        ),
    )
    .await;
    assert_eq!(status, 200);
    let s = samples(&body);
    assert_eq!(s["probe_success"][""], 1.0);
    assert_eq!(s["probe_http_status_code"][""], 200.0);
    // Families in blackbox's (sorted) order.
    let names: Vec<_> = argus_expfmt::parse_text(&body)
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);

    let (status, body) = get(
        addr,
        &format!(
            "/probe?target={}&debug=true",
            urlencode(&format!("{http}/notfound"))
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.starts_with("Logs for the probe:\n"), "{body}");
    assert!(
        body.contains("msg=\"Invalid HTTP response status code, wanted 2xx\" status_code=404"),
        "{body}"
    );
    assert!(
        body.contains("Metrics that would have been returned:\n")
            && body.contains("probe_success 0"),
        "{body}"
    );
    assert!(
        body.contains("Module configuration:\nprober: http"),
        "{body}"
    );

    let (status, body) = get(addr, "/probe?target=x&module=nope").await;
    assert_eq!((status, body.as_str()), (400, "Unknown module \"nope\"\n"));
    let (status, body) = get(addr, "/probe?module=http_2xx").await;
    assert_eq!(
        (status, body.as_str()),
        (400, "Target parameter is missing\n")
    );
    assert_eq!(get(addr, "/-/healthy").await.0, 200);
    server.abort();
}
