//! Differential test of the writer (and float formatting) against Go's
//! `expfmt.MetricFamilyToText`: random families are pushed as text to the real
//! `prometheus-pushgateway`, which parses them with the Go parser and serves them back
//! with the Go writer; its `/metrics` lines for those families must equal ours.

use argus_expfmt::*;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;

fn http(addr: std::net::SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let (status, body) = http_raw(addr, method, path, body, "");
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Minimal HTTP/1.1 client (Connection: close), enough for the gateway.
fn http_raw(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
    accept: &str,
) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("connect");
    let accept = if accept.is_empty() {
        String::new()
    } else {
        format!("Accept: {accept}\r\n")
    };
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{accept}Content-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let status: u16 = std::str::from_utf8(&resp[9..12])
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body_start = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(resp.len(), |i| i + 4);
    let head = String::from_utf8_lossy(&resp[..body_start]).to_ascii_lowercase();
    let mut body = resp[body_start..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
        let n =
            usize::from_str_radix(std::str::from_utf8(&rest[..i]).unwrap().trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.extend_from_slice(&rest[i + 2..i + 2 + n]);
        rest = &rest[i + 2 + n + 2..];
    }
    out
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => any::<f64>(),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => -1e7..1e7f64,
        1 => (0i64..100_000_000).prop_map(|x| x as f64),
        1 => (0u32..100_000).prop_map(|x| x as f64 / 100_000.0),
        1 => (-30i32..30).prop_map(|e| 10f64.powi(e)),
    ]
}

fn family(idx: usize) -> impl Strategy<Value = MetricFamily> {
    let kind = prop_oneof![
        Just(MetricType::Counter),
        Just(MetricType::Gauge),
        Just(MetricType::Untyped),
        Just(MetricType::Summary),
        Just(MetricType::Histogram),
    ];
    let help = prop::option::of(prop_oneof![
        "[^ \\t].{0,16}",
        Just("with \\ and\nnewline".to_string())
    ]);
    let label = (
        "[a-zA-Z][a-zA-Z0-9_]{0,6}",
        prop_oneof!["[ -~]{1,8}", ".{1,4}", Just("q\"b\\n\nx".to_string())],
    )
        .prop_filter("reserved", |(n, _)| {
            !["le", "quantile", "job", "instance", "i"].contains(&n.as_str())
        });
    let count = prop_oneof![(0u64..20_000_000).prop_map(|c| c as f64), Just(1e6)];
    (
        kind,
        help,
        prop::collection::vec(
            (
                prop::collection::vec(label, 0..3),
                float(),
                float(),
                count,
                prop::collection::vec((float(), (0u64..5_000_000).prop_map(|c| c as f64)), 0..4),
            ),
            1..4,
        ),
    )
        .prop_map(move |(kind, help, ms)| MetricFamily {
            name: format!("argus_fam{idx}"),
            help,
            kind,
            metrics: ms
                .into_iter()
                .enumerate()
                .map(|(i, (labels, v, sum, count, pairs))| {
                    let value = match kind {
                        MetricType::Counter => MetricValue::Counter(v),
                        MetricType::Gauge => MetricValue::Gauge(v),
                        MetricType::Untyped => MetricValue::Untyped(v),
                        MetricType::Summary => MetricValue::Summary {
                            quantiles: pairs
                                .iter()
                                .map(|(q, c)| ((q.abs() % 1.0).max(0.0), *c))
                                .collect(),
                            sum,
                            count,
                        },
                        MetricType::Histogram => MetricValue::Histogram {
                            // NaN bounds are dropped by the Go parser; keep them out.
                            buckets: pairs
                                .iter()
                                .filter(|(le, _)| !le.is_nan())
                                .copied()
                                .collect(),
                            sum,
                            count,
                        },
                    };
                    Metric {
                        labels: Labels::from_pairs(labels).with("i", &i.to_string()),
                        value,
                        timestamp_ms: None,
                    }
                })
                .collect(),
        })
}

/// Lines of the families named `argus_fam*`, grouped per family, sorted within it
/// (the gateway sorts metrics by label values; our order is the input order).
fn by_family(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let name = line
            .trim_start_matches("# HELP ")
            .trim_start_matches("# TYPE ")
            .split(['{', ' '])
            .next()
            .unwrap_or("");
        if let Some(rest) = name.strip_prefix("argus_fam") {
            let idx: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            out.entry(idx).or_default().push(line.to_string());
        }
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

#[test]
fn writer_output_equals_go_writer_output() {
    let gw = argus_testkit::spawn_peer(
        "pushgateway-expfmt",
        &argus_testkit::tool("prometheus-pushgateway"),
        &["--web.listen-address=127.0.0.1:{port}"],
    );
    let mut runner = TestRunner::deterministic();
    let fams: Vec<MetricFamily> = (0..300)
        .map(|i| family(i).new_tree(&mut runner).expect("generate").current())
        .collect();

    let body = write_text(&fams);
    // Our writer's output must be accepted by the Go parser (and the gateway's checks).
    let (status, msg) = http(gw.addr(), "PUT", "/metrics/job/w", body.as_bytes());
    assert_eq!(status, 200, "gateway refused our text: {msg}");
    let (status, served) = http(gw.addr(), "GET", "/metrics", b"");
    assert_eq!(status, 200);

    // What the Go writer printed, against ours with the gateway's grouping labels.
    let mut ours = String::new();
    for f in &fams {
        write_header(&mut ours, f);
        for m in &f.metrics {
            let mut labels: Vec<(&str, &str)> = m.labels.iter().collect();
            labels.extend([("instance", ""), ("job", "w")]);
            labels.sort();
            write_metric(&mut ours, &f.name, &labels, &m.value, None);
        }
    }
    let want = by_family(&served);
    let got = by_family(&ours);
    assert_eq!(want.len(), 300, "every family served back");
    for (idx, lines) in &want {
        assert_eq!(
            got.get(idx),
            Some(lines),
            "family argus_fam{idx} differs from the Go writer"
        );
    }

    // The same families encoded by Go's protobuf encoder (content negotiation on
    // /metrics): our decoder must read exactly what the Go text writer printed.
    let (status, proto) = http_raw(gw.addr(), "GET", "/metrics", b"", PROTO_ACCEPT);
    assert_eq!(status, 200);
    let decoded = decode_delimited(&proto).expect("Go-encoded delimited protobuf decodes");
    assert!(
        decoded.len() > 300,
        "gateway families plus ours: {}",
        decoded.len()
    );
    let mut from_proto = String::new();
    for f in &decoded {
        write_header(&mut from_proto, f);
        for m in &f.metrics {
            // The model drops empty label values; the gateway's `instance=""` comes back here.
            let mut labels: Vec<(&str, &str)> = m.labels.iter().collect();
            if m.labels.get("job").is_some() && m.labels.get("instance").is_none() {
                labels.push(("instance", ""));
                labels.sort();
            }
            write_metric(&mut from_proto, &f.name, &labels, &m.value, m.timestamp_ms);
        }
    }
    let via_proto = by_family(&from_proto);
    for (idx, lines) in &want {
        assert_eq!(
            via_proto.get(idx),
            Some(lines),
            "family argus_fam{idx} decoded from Go's protobuf differs"
        );
    }
}

const PROTO_ACCEPT: &str =
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited";
