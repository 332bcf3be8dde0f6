//! The gateway service without a network: auth, limits, expiry, snapshot, the typed
//! write path, and the metric-type index.

mod common;

use argus_expfmt::{MetricFamily, MetricType, MetricValue};
use argus_model::{Kv, Labels, Table};
use argus_pushgw::{Gateway, GatewayConfig, GatewayError, WriteRequest};
use bytes::Bytes;
use http::{Request, StatusCode};
use std::sync::Arc;
use std::time::Duration;

const T0: i64 = 1_800_000_000_000;

fn gw(cfg: GatewayConfig) -> (Gateway, argus_store::EmbeddedKv) {
    let kv = argus_store::EmbeddedKv::open_temp().unwrap();
    (Gateway::new(Arc::new(kv.clone()), cfg), kv)
}

fn req(method: &str, path: &str, body: &str) -> Request<Bytes> {
    Request::builder()
        .method(method)
        .uri(path)
        .body(Bytes::from(body.to_string()))
        .unwrap()
}

async fn call(g: &Gateway, r: Request<Bytes>, now: i64) -> (StatusCode, String) {
    let resp = g.handle(r, now).await;
    (
        resp.status(),
        String::from_utf8_lossy(resp.body()).into_owned(),
    )
}

async fn metrics(g: &Gateway, now: i64) -> String {
    call(g, req("GET", "/metrics", ""), now).await.1
}

#[tokio::test]
async fn bearer_auth_guards_everything_but_health() {
    let (g, _kv) = gw(GatewayConfig {
        auth_token: Some("s3cret-token".into()),
        ..Default::default()
    });
    for path in ["/-/healthy", "/-/ready"] {
        assert_eq!(call(&g, req("GET", path, ""), T0).await.0, StatusCode::OK);
    }
    for (method, path) in [
        ("PUT", "/metrics/job/a"),
        ("GET", "/metrics"),
        ("GET", "/api/v1/metrics"),
        ("PUT", "/api/v1/admin/wipe"),
        ("DELETE", "/metrics/job/a"),
    ] {
        let (s, _) = call(&g, req(method, path, "x 1\n"), T0).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {path}");
        for bad in [
            "Bearer wrong",
            "Bearer s3cret-token2",
            "Basic czNjcmV0LXRva2Vu",
            "s3cret-token",
            "Bearer s3cret-toke",
        ] {
            let mut r = req(method, path, "x 1\n");
            r.headers_mut()
                .insert("authorization", bad.parse().unwrap());
            assert_eq!(
                call(&g, r, T0).await.0,
                StatusCode::UNAUTHORIZED,
                "{method} {path} {bad}"
            );
        }
    }
    assert!(
        !metrics(&g, T0).await.contains("x{"),
        "unauthenticated push stored nothing"
    );
    let mut r = req("PUT", "/metrics/job/a", "x 1\n");
    r.headers_mut()
        .insert("authorization", "Bearer s3cret-token".parse().unwrap());
    assert_eq!(call(&g, r, T0).await.0, StatusCode::OK);
    let mut r = req("GET", "/metrics", "");
    r.headers_mut()
        .insert("authorization", "Bearer s3cret-token".parse().unwrap());
    assert!(call(&g, r, T0)
        .await
        .1
        .contains("x{instance=\"\",job=\"a\"} 1"));
}

/// Issue 11, defect 6: the wipe API is off unless enabled, answering as the real
/// Pushgateway 1.5.1 does without `--web.enable-admin-api` (404 for every method;
/// with it, 202 for PUT and 405 for the rest); enabled, it still needs the token.
#[tokio::test]
async fn the_wipe_api_is_off_unless_enabled_and_then_needs_the_token() {
    let wipe = |method: &str, token: Option<&str>| {
        let mut r = req(method, "/api/v1/admin/wipe", "");
        if let Some(t) = token {
            r.headers_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        r
    };
    let (off, _kv) = gw(GatewayConfig::default());
    assert_eq!(
        call(&off, req("PUT", "/metrics/job/keep", "kept 1\n"), T0)
            .await
            .0,
        StatusCode::OK
    );
    for method in ["PUT", "GET", "POST", "DELETE"] {
        assert_eq!(
            call(&off, wipe(method, None), T0).await,
            (StatusCode::NOT_FOUND, "404 page not found\n".to_string()),
            "{method}"
        );
    }
    assert!(metrics(&off, T0).await.contains("kept{"), "nothing wiped");

    let (on, _kv) = gw(GatewayConfig {
        enable_admin_api: true,
        auth_token: Some("adm1n".into()),
        ..Default::default()
    });
    let mut push = req("PUT", "/metrics/job/gone", "gone 1\n");
    push.headers_mut()
        .insert("authorization", "Bearer adm1n".parse().unwrap());
    assert_eq!(call(&on, push, T0).await.0, StatusCode::OK);
    assert_eq!(
        call(&on, wipe("PUT", None), T0).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&on, wipe("PUT", Some("wrong")), T0).await.0,
        StatusCode::UNAUTHORIZED
    );
    for method in ["GET", "POST", "DELETE"] {
        assert_eq!(
            call(&on, wipe(method, Some("adm1n")), T0).await.0,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method}"
        );
    }
    assert_eq!(
        call(&on, wipe("PUT", Some("adm1n")), T0).await.0,
        StatusCode::ACCEPTED
    );
    let mut get = req("GET", "/metrics", "");
    get.headers_mut()
        .insert("authorization", "Bearer adm1n".parse().unwrap());
    assert!(!call(&on, get, T0).await.1.contains("gone{"), "wiped");
}

#[tokio::test]
async fn limits_reject_with_413_and_400_and_store_nothing() {
    let (g, _kv) = gw(GatewayConfig {
        body_limit_bytes: 300,
        max_series_per_group: 5,
        ..Default::default()
    });
    let big = "a_metric_with_a_long_name{label=\"value\"} 1\n".repeat(10);
    let (s, b) = call(&g, req("PUT", "/metrics/job/big", &big), T0).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{b}");
    assert!(b.contains("300 bytes"), "{b}");
    // A gzip bomb: small on the wire, over the limit once inflated.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut enc, "z 1\n".repeat(10_000).as_bytes()).unwrap();
    let gz = enc.finish().unwrap();
    assert!(gz.len() < 300, "{}", gz.len());
    let mut r = Request::builder()
        .method("PUT")
        .uri("/metrics/job/bomb")
        .body(Bytes::from(gz))
        .unwrap();
    r.headers_mut()
        .insert("content-encoding", "gzip".parse().unwrap());
    assert_eq!(call(&g, r, T0).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    // Six series in a group limited to five.
    let body =
        "s{i=\"1\"} 1\ns{i=\"2\"} 1\ns{i=\"3\"} 1\ns{i=\"4\"} 1\ns{i=\"5\"} 1\ns{i=\"6\"} 1\n";
    let (s, b) = call(&g, req("PUT", "/metrics/job/many", body), T0).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(b.contains("limit of 5"), "{b}");
    // POST adding to an existing group counts what is already there.
    assert_eq!(
        call(&g, req("PUT", "/metrics/job/many", "a 1\nb 1\nc 1\n"), T0)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        call(
            &g,
            req(
                "POST",
                "/metrics/job/many",
                "d 1\ne{x=\"1\"} 1\ne{x=\"2\"} 1\n"
            ),
            T0
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    let m = metrics(&g, T0).await;
    for absent in ["a_metric_with_a_long_name", "z{", "s{i=", "e{", "d{"] {
        assert!(!m.lines().any(|l| l.starts_with(absent)), "{absent} in {m}");
    }
    assert!(
        !m.contains("job=\"big\"") && !m.contains("job=\"bomb\""),
        "{m}"
    );
    assert!(m.contains("a{instance=\"\",job=\"many\"} 1"), "{m}");
}

#[tokio::test]
async fn groups_expire_after_their_ttl() {
    expiry(false).await;
}

/// The same with write-behind (`argus dev`); then a restarted gateway loads what the
/// flushes wrote.
#[tokio::test]
async fn groups_expire_after_their_ttl_with_write_behind() {
    let (g, kv) = expiry(true).await;
    g.flush().await.unwrap();
    let t = T0 + 21 * 60_000 + 1;
    let restarted = Gateway::new(
        Arc::new(kv.clone()),
        GatewayConfig {
            write_behind: true,
            ..Default::default()
        },
    );
    assert_eq!(metrics(&restarted, t).await, metrics(&g, t).await);
    assert!(metrics(&restarted, t).await.contains("forever_metric"));
    // Nothing was written before a flush.
    call(&restarted, req("PUT", "/metrics/job/late", "late 1\n"), t).await;
    let stored = |kv: argus_store::EmbeddedKv| async move {
        kv.query(Table::Metrics, "group", None).await.unwrap().len()
    };
    let before = stored(kv.clone()).await;
    restarted.flush().await.unwrap();
    assert_eq!(stored(kv.clone()).await, before + 1);
    assert_eq!(restarted.flush().await.unwrap(), 0, "nothing left to write");
}

async fn expiry(write_behind: bool) -> (Gateway, argus_store::EmbeddedKv) {
    let mut by_job = std::collections::HashMap::new();
    by_job.insert("batch".to_string(), Duration::from_secs(60));
    let (g, kv) = gw(GatewayConfig {
        default_ttl_by_job: by_job,
        write_behind,
        ..Default::default()
    });
    let mut r = req("PUT", "/metrics/job/ttl/instance/x", "ttl_metric 1\n");
    r.headers_mut()
        .insert("x-argus-ttl", "10m".parse().unwrap());
    assert_eq!(call(&g, r, T0).await.0, StatusCode::OK);
    assert_eq!(
        call(&g, req("PUT", "/metrics/job/batch", "batch_metric 1\n"), T0)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        call(
            &g,
            req("PUT", "/metrics/job/forever", "forever_metric 1\n"),
            T0
        )
        .await
        .0,
        StatusCode::OK
    );
    let mut bad = req("PUT", "/metrics/job/ttl", "x 1\n");
    bad.headers_mut()
        .insert("x-argus-ttl", "soon".parse().unwrap());
    let (s, b) = call(&g, bad, T0).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(b.contains("X-Argus-TTL"), "{b}");
    // Issue 11, defect 4: a TTL past Go's duration range used to wrap to a past expiry
    // (200, then the group gone): it is refused with a message and nothing is stored.
    for huge in ["99999999999999h", "9223372036854775807s"] {
        let mut r = req("PUT", "/metrics/job/huge_ttl", "huge_ttl_metric 1\n");
        r.headers_mut().insert("x-argus-ttl", huge.parse().unwrap());
        let (s, b) = call(&g, r, T0).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        assert!(
            b.contains(&format!(
                "invalid X-Argus-TTL header \"{huge}\": duration out of range"
            )),
            "{b}"
        );
    }
    // The longest TTL in range is accepted and kept.
    let mut r = req("PUT", "/metrics/job/long_ttl", "long_ttl_metric 1\n");
    r.headers_mut()
        .insert("x-argus-ttl", "292y".parse().unwrap());
    assert_eq!(call(&g, r, T0).await.0, StatusCode::OK);
    let m = metrics(&g, T0 + 1).await;
    assert!(
        m.contains("long_ttl_metric{") && !m.contains("huge_ttl_metric"),
        "{m}"
    );
    let mut del = req("DELETE", "/metrics/job/long_ttl", "");
    del.headers_mut()
        .insert("x-argus-ttl", "1s".parse().unwrap());
    assert_eq!(call(&g, del, T0).await.0, StatusCode::ACCEPTED);

    let m = metrics(&g, T0 + 59_000).await;
    assert!(
        m.contains("ttl_metric{") && m.contains("batch_metric{") && m.contains("forever_metric{"),
        "{m}"
    );
    let m = metrics(&g, T0 + 61_000).await;
    assert!(
        m.contains("ttl_metric{") && !m.contains("batch_metric{") && m.contains("forever_metric{"),
        "{m}"
    );
    // Lazily removed from the store once seen expired.
    g.flush().await.unwrap();
    let groups = kv.query(Table::Metrics, "group", None).await.unwrap();
    assert_eq!(groups.len(), 2);
    let snap = g.snapshot(T0 + 10 * 60_000 + 1).await.unwrap();
    assert!(
        snap.iter().all(|(l, _)| l.get("job") == Some("forever")),
        "{snap:?}"
    );
    assert!(snap.iter().any(|(l, _)| l.name() == Some("forever_metric")));
    // A push refreshes the expiry; a push without TTL to a job without default keeps
    // the group forever.
    let mut r = req("PUT", "/metrics/job/ttl/instance/x", "ttl_metric 2\n");
    r.headers_mut().insert("x-argus-ttl", "1m".parse().unwrap());
    let t1 = T0 + 20 * 60_000;
    assert_eq!(call(&g, r, t1).await.0, StatusCode::OK);
    assert!(metrics(&g, t1 + 59_000)
        .await
        .contains("ttl_metric{instance=\"x\",job=\"ttl\"} 2"));
    assert!(!metrics(&g, t1 + 60_000).await.contains("ttl_metric"));
    // An expired metric name no longer holds its type.
    assert_eq!(
        call(
            &g,
            req(
                "PUT",
                "/metrics/job/other",
                "# TYPE ttl_metric counter\nttl_metric 1\n"
            ),
            t1 + 61_000
        )
        .await
        .0,
        StatusCode::OK
    );
    (g, kv)
}

#[tokio::test]
async fn snapshot_is_what_prometheus_ingests_with_honor_labels() {
    let (g, _kv) = gw(GatewayConfig::default());
    let body = "# TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\nup_ish{job=\"overridden\",instance=\"kept\"} 1\n";
    assert_eq!(
        call(&g, req("PUT", "/metrics/job/j/zone/z1", body), T0)
            .await
            .0,
        StatusCode::OK
    );
    let mut snap = g.snapshot(T0).await.unwrap();
    snap.sort_by(|a, b| a.0.cmp(&b.0));
    let shown: Vec<String> = snap.iter().map(|(l, v)| format!("{l} {v}")).collect();
    assert_eq!(
        shown,
        [
            "{__name__=\"h_bucket\", job=\"j\", le=\"+Inf\", zone=\"z1\"} 2",
            "{__name__=\"h_bucket\", job=\"j\", le=\"0.5\", zone=\"z1\"} 1",
            "{__name__=\"h_count\", job=\"j\", zone=\"z1\"} 2",
            "{__name__=\"h_sum\", job=\"j\", zone=\"z1\"} 3",
            "{__name__=\"push_failure_time_seconds\", job=\"j\", zone=\"z1\"} 0",
            &format!(
                "{{__name__=\"push_time_seconds\", job=\"j\", zone=\"z1\"}} {}",
                T0 as f64 / 1000.0
            ),
            "{__name__=\"up_ish\", instance=\"kept\", job=\"j\", zone=\"z1\"} 1",
        ]
    );
}

#[tokio::test]
async fn typed_write_path_matches_http() {
    let (g, _kv) = gw(GatewayConfig::default());
    let fam = MetricFamily {
        name: "probe_success".into(),
        help: Some("Probe result.".into()),
        kind: MetricType::Gauge,
        metrics: vec![argus_expfmt::Metric {
            labels: Labels::from_pairs([("target", "https://x")]),
            value: MetricValue::Gauge(1.0),
            timestamp_ms: None,
        }],
    };
    g.push(
        WriteRequest::push(
            "probe",
            &[("instance", "https://x")],
            vec![fam.clone()],
            true,
        ),
        T0,
    )
    .await
    .unwrap();
    let m = metrics(&g, T0).await;
    assert!(
        m.contains("probe_success{instance=\"https://x\",job=\"probe\",target=\"https://x\"} 1"),
        "{m}"
    );
    // A typed push gets the same rejections.
    let mut bad = fam.clone();
    bad.kind = MetricType::Counter;
    bad.metrics[0].value = MetricValue::Counter(1.0);
    let e = g
        .push(WriteRequest::push("probe2", &[], vec![bad], true), T0)
        .await
        .unwrap_err();
    assert!(matches!(e, GatewayError::Inconsistent(_)), "{e}");
    assert!(!e.is_retryable());
    let e = g
        .push(WriteRequest::push("", &[], vec![], true), T0)
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "job name is required");
    g.push(
        WriteRequest::delete("probe", &[("instance", "https://x")]),
        T0,
    )
    .await
    .unwrap();
    assert!(!metrics(&g, T0).await.contains("probe_success{"));
}

#[tokio::test]
async fn type_index_is_released_by_delete_and_replace() {
    let (g, _kv) = gw(GatewayConfig {
        enable_admin_api: true,
        ..Default::default()
    });
    let put = |job: &'static str, body: &'static str| {
        req(
            "PUT",
            Box::leak(format!("/metrics/job/{job}").into_boxed_str()),
            body,
        )
    };
    assert_eq!(
        call(&g, put("a", "# TYPE m gauge\nm 1\n"), T0).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&g, put("b", "# TYPE m gauge\nm 1\n"), T0).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&g, put("c", "# TYPE m counter\nm 1\n"), T0).await.0,
        StatusCode::BAD_REQUEST
    );
    // The failed push created group c with a failure time, as the original does.
    assert!(metrics(&g, T0)
        .await
        .contains("push_failure_time_seconds{instance=\"\",job=\"c\"} 1.8e+09"));
    assert_eq!(
        call(&g, req("DELETE", "/metrics/job/a", ""), T0).await.0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        call(&g, put("c", "# TYPE m counter\nm 1\n"), T0).await.0,
        StatusCode::BAD_REQUEST,
        "b still holds m"
    );
    // PUT replacing b's content drops m from b: the name is free again.
    assert_eq!(call(&g, put("b", "other 1\n"), T0).await.0, StatusCode::OK);
    assert_eq!(
        call(&g, put("c", "# TYPE m counter\nm 1\n"), T0).await.0,
        StatusCode::OK
    );
    // Re-typing within the only group holding the name is allowed.
    assert_eq!(
        call(&g, put("c", "# TYPE m summary\nm_sum 1\nm_count 1\n"), T0)
            .await
            .0,
        StatusCode::OK
    );
    // Suffix collision across groups: m is a summary in c.
    let (s, b) = call(&g, put("d", "m_count 1\n"), T0).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(b.contains("collides"), "{b}");
    assert_eq!(
        call(&g, req("PUT", "/api/v1/admin/wipe", ""), T0).await.0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        call(&g, put("d", "m_count 1\n"), T0).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn json_api_and_status() {
    let (g, _kv) = gw(GatewayConfig::default());
    let body = "# HELP g A gauge.\n# TYPE g gauge\ng{a=\"1\"} 1.5e+06\n# TYPE s summary\ns{quantile=\"0.5\"} 2\ns_sum 3\ns_count 4\n";
    assert_eq!(
        call(&g, req("PUT", "/metrics/job/j/instance/i", body), T0)
            .await
            .0,
        StatusCode::OK
    );
    let (s, b) = call(&g, req("GET", "/api/v1/metrics", ""), T0).await;
    assert_eq!(s, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["status"], "success");
    let grp = &v["data"][0];
    assert_eq!(
        grp["labels"],
        serde_json::json!({"instance": "i", "job": "j"})
    );
    assert_eq!(grp["last_push_successful"], true);
    assert_eq!(grp["g"]["type"], "GAUGE");
    assert_eq!(grp["g"]["help"], "A gauge.");
    assert_eq!(grp["g"]["metrics"][0]["value"], "1.5e+06");
    assert_eq!(
        grp["g"]["metrics"][0]["labels"],
        serde_json::json!({"a": "1", "instance": "i", "job": "j"})
    );
    assert_eq!(
        grp["s"]["metrics"][0]["quantiles"],
        serde_json::json!({"0.5": "2"})
    );
    assert_eq!(grp["s"]["metrics"][0]["count"], "4");
    assert_eq!(grp["push_time_seconds"]["metrics"][0]["value"], "1.8e+09");
    assert_eq!(grp["g"]["time_stamp"], "2027-01-15T08:00:00Z");
    let (s, b) = call(&g, req("GET", "/api/v1/status", ""), T0).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        b.contains("\"push.disable-consistency-check\":\"false\""),
        "{b}"
    );
}

#[tokio::test]
async fn consistency_check_off_answers_202() {
    let (g, _kv) = gw(GatewayConfig {
        consistency_check: false,
        ..Default::default()
    });
    assert_eq!(
        call(&g, req("PUT", "/metrics/job/a", "x 1 123\n"), T0)
            .await
            .0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        call(&g, req("PUT", "/metrics/job/a", "x 1"), T0).await.0,
        StatusCode::BAD_REQUEST
    );
}
