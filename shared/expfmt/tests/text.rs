//! Text parser and writer: pinned behaviour, differential against the real Go parser
//! (promtool), and round trips.

use argus_expfmt::*;
use std::io::Write;
use std::process::{Command, Stdio};

fn l(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

#[test]
fn parses_all_types_and_folds_summary_histogram() {
    let text = r#"# HELP http_requests_total Requests.\nSecond line \\ backslash
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000
# Escaping in label values:
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9
metric_without_timestamp_and_labels 12.47
# TYPE something_weird gauge
something_weird{problem="division by zero"} +Inf -3982045
# HELP rpc_duration_seconds A histogram.
# TYPE rpc_duration_seconds histogram
rpc_duration_seconds_bucket{le="0.05"} 24054
rpc_duration_seconds_bucket{le="0.1"} 33444
rpc_duration_seconds_bucket{le="+Inf"} 144320
rpc_duration_seconds_sum 53423
rpc_duration_seconds_count 144320
# TYPE s summary
s{quantile="0.5",x="a"} 4773
s{x="a",quantile="0.99"} 76656
s_sum{x="a"} 1.7560473e+07
s_count{x="a"} 2693
s_count{x="b"} 1
	
nan_value NaN
"#;
    let fams = parse_text(text).unwrap();
    let names: Vec<_> = fams.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "http_requests_total",
            "msdos_file_access_time_seconds",
            "metric_without_timestamp_and_labels",
            "something_weird",
            "rpc_duration_seconds",
            "s",
            "nan_value"
        ]
    );
    assert_eq!(
        fams[0].help.as_deref(),
        Some("Requests.\nSecond line \\ backslash")
    );
    assert_eq!(fams[0].kind, MetricType::Counter);
    assert_eq!(
        fams[0].metrics[0].labels,
        l(&[("code", "200"), ("method", "post")])
    );
    assert_eq!(fams[0].metrics[0].timestamp_ms, Some(1395066363000));
    assert_eq!(
        fams[1].metrics[0].labels.get("path"),
        Some("C:\\DIR\\FILE.TXT")
    );
    assert_eq!(
        fams[1].metrics[0].labels.get("error"),
        Some("Cannot find file:\n\"FILE.TXT\"")
    );
    assert_eq!(fams[2].kind, MetricType::Untyped);
    assert_eq!(fams[3].metrics[0].value, MetricValue::Gauge(f64::INFINITY));
    assert_eq!(fams[3].metrics[0].timestamp_ms, Some(-3982045));
    assert_eq!(
        fams[4].metrics[0].value,
        MetricValue::Histogram {
            buckets: vec![(0.05, 24054.0), (0.1, 33444.0), (f64::INFINITY, 144320.0)],
            sum: 53423.0,
            count: 144320.0
        }
    );
    assert_eq!(fams[5].metrics.len(), 2);
    assert_eq!(
        fams[5].metrics[0].value,
        MetricValue::Summary {
            quantiles: vec![(0.5, 4773.0), (0.99, 76656.0)],
            sum: 1.7560473e7,
            count: 2693.0
        }
    );
    assert!(fams[6].metrics[0].value.scalar().unwrap().is_nan());
}

#[test]
fn rejections_match_go_messages() {
    let cases: &[(&str, &str)] = &[
        ("foo 1", "text format parsing error in line 1: unexpected end of input stream"),
        ("foo{a=\"1\",a=\"2\"} 1\n", "text format parsing error in line 1: duplicate label names for metric \"foo\""),
        ("# TYPE foo gauge\n# TYPE foo counter\n", "text format parsing error in line 2: second TYPE line for metric name \"foo\", or TYPE reported after samples"),
        ("foo 1\n# TYPE foo gauge\n", "text format parsing error in line 2: second TYPE line for metric name \"foo\", or TYPE reported after samples"),
        ("# HELP foo a\n# HELP foo b\n", "text format parsing error in line 2: second HELP line for metric name \"foo\""),
        ("1foo 1\n", "text format parsing error in line 1: invalid metric name"),
        ("foo-bar 1\n", "text format parsing error in line 1: expected float as value, got \"-bar\""),
        ("foo 1 \n", "text format parsing error in line 1: expected integer as timestamp, got \"\""),
        ("foo 1 2 3\n", "text format parsing error in line 1: spurious string after timestamp: \" 3\""),
        ("foo{__name__=\"x\"} 1\n", "text format parsing error in line 1: label name \"__name__\" is reserved"),
        ("foo{a=1} 1\n", "text format parsing error in line 1: expected '\"' at start of label value, found '1'"),
        ("foo{a} 1\n", "text format parsing error in line 1: expected '=' after label name, found '}'"),
        ("foo{a=\"x\\q\"} 1\n", "text format parsing error in line 1: invalid escape sequence '\\q'"),
        ("# TYPE foo blah\n", "text format parsing error in line 1: unknown metric type \"blah\""),
        ("# TYPE foo-bar gauge\n", "text format parsing error in line 1: invalid metric name in comment"),
        ("\n\nfoo abc\n", "text format parsing error in line 3: expected float as value, got \"abc\""),
        ("# TYPE s summary\ns{quantile=\"x\"} 1\n", "text format parsing error in line 2: expected float as value for 'quantile' label, got \"x\""),
        ("# TYPE h histogram\nh_bucket{le=\"x\"} 1\n", "text format parsing error in line 2: expected float as value for 'le' label, got \"x\""),
        ("foo{a=\"1\" b=\"2\"} 1\n", "text format parsing error in line 1: unexpected end of label value \"1\""),
        ("foo +NaN\n", "text format parsing error in line 1: expected float as value, got \"+NaN\""),
        ("foo 1e999\n", "text format parsing error in line 1: expected float as value, got \"1e999\""),
        ("foo{a=\"1\n", "text format parsing error in line 1: label value \"1\" contains unescaped new-line"),
        ("foo{,} 1\n", "text format parsing error in line 1: invalid label name for metric \"foo\""),
    ];
    for (input, want) in cases {
        let err = parse_text(input).expect_err(input);
        assert_eq!(err.to_string(), *want, "input {input:?}");
    }
}

#[test]
fn accepted_oddities_like_go() {
    // Empty input, comments, HELP/TYPE without samples (dropped), trailing comma,
    // spaces around tokens, lowercase/uppercase types.
    assert!(parse_text("").unwrap().is_empty());
    assert!(
        parse_text("# just a comment\n# TYPE foo gauge\n# HELP foo x\n")
            .unwrap()
            .is_empty()
    );
    let f = parse_text("# TYPE foo GAUGE\nfoo { a = \"1\" , } 2\n").unwrap();
    assert_eq!(f[0].kind, MetricType::Gauge);
    assert_eq!(f[0].metrics[0].labels, l(&[("a", "1")]));
    // A `_count` of a non-summary family is its own family.
    let f = parse_text("# TYPE foo gauge\nfoo 1\nfoo_count 2\n").unwrap();
    assert_eq!(f.len(), 2);
    assert_eq!(f[1].name, "foo_count");
}

/// Runs the real Go text parser (promtool check metrics) and returns its parse
/// error, if any.
fn promtool_error(input: &str) -> Option<String> {
    promtool_error_bytes(input.as_bytes())
}

fn promtool_error_bytes(input: &[u8]) -> Option<String> {
    let mut child = Command::new(argus_testkit::tool("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("error while linting: ").map(str::to_string))
}

#[test]
fn same_verdict_as_promtool() {
    let inputs = [
        "foo 1\n",
        "foo 1",
        "foo 1 \n",
        "foo  1\n",
        "foo\t1\t2\n",
        "foo{a=\"1\",a=\"2\"} 1\n",
        "foo{a=\"1\",} 1\n",
        "foo{} 1\n",
        "foo {} 1\n",
        "{a=\"b\"} 1\n",
        "foo{a=\"\\\"\"} 1\n",
        "# HELP foo a\\\"b\nfoo 1\n",
        "# HELP foo a\\\\b\\n\nfoo 1\n",
        "# HELP foo\n",
        "# HELP\n",
        "# TYPE foo\nfoo 1\n",
        "#TYPE foo gauge\nfoo 1\n",
        "# TYPE foo gauge \nfoo 1\n",
        "# TYPE foo gauge\n# TYPE foo gauge\n",
        "foo 1\nfoo 2\n",
        "foo 0x10\n",
        "foo 1_0\n",
        "foo Inf\n",
        "foo -Infinity\n",
        "foo nan\n",
        "foo .5e-3\n",
        "foo 1 +5\n",
        "foo 1 1.5\n",
        "foo 1 -0\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n",
        "# TYPE h histogram\nh{le=\"1\"} 1\n",
        "# TYPE s summary\ns{quantile=\"0.5\"} 1\ns{quantile=\"0.5\",quantile=\"0.9\"} 1\n",
        "# TYPE s summary\ns_sum 1\n# TYPE s_count gauge\n",
        "foo{a=\"1\"}1\n",
        "foo{a=\"1\"} \n",
        "foo\n",
        "   \n\t\nfoo 1\n",
        "foo{a=\"1\"\n",
        "foo{_a1=\"x\",B=\"y\"} 1\n",
        "foo:bar 1\n",
        "_foo 1\n",
        "foo{a-b=\"1\"} 1\n",
        "foo 1 2 # comment\n",
        "# TYPE foo gauge\n# HELP foo x\nfoo 1\n",
        "foo_sum 1\n# TYPE foo summary\nfoo 1\n",
    ];
    for input in inputs {
        let want = promtool_error(input);
        let got = parse_text(input).err().map(|e| e.to_string());
        assert_eq!(got, want, "input {input:?}");
    }
    // Invalid UTF-8: in a label value (refused), in HELP (carried through).
    for input in [
        &b"foo{a=\"\xff\"} 1\n"[..],
        &b"# HELP foo \xff\nfoo 1\n"[..],
    ] {
        let want = promtool_error_bytes(input);
        let got = parse_text_bytes(input).err().map(|e| e.to_string());
        assert_eq!(got, want, "input {:?}", String::from_utf8_lossy(input));
    }
}

#[test]
fn writer_matches_go_format() {
    let fams = vec![
        MetricFamily::new("g", MetricType::Gauge)
            .with_help("a \\ help\nline")
            .with_metric(l(&[("a", "x\"y\\z\nw")]), MetricValue::Gauge(1e6)),
        MetricFamily::new("c", MetricType::Counter)
            .with_metric(Labels::new(), MetricValue::Counter(-0.0)),
        MetricFamily::new("h", MetricType::Histogram).with_metric(
            l(&[("j", "1")]),
            MetricValue::Histogram {
                buckets: vec![(0.1, 1.0), (1e6, 2.0)],
                sum: 0.25,
                count: 3e6,
            },
        ),
        MetricFamily::new("s", MetricType::Summary).with_metric(
            Labels::new(),
            MetricValue::Summary {
                quantiles: vec![(0.5, f64::NAN)],
                sum: 1.5,
                count: 2.0,
            },
        ),
        MetricFamily::new("empty", MetricType::Gauge),
    ];
    let want = "# HELP g a \\\\ help\\nline\n# TYPE g gauge\ng{a=\"x\\\"y\\\\z\\nw\"} 1e+06\n\
# TYPE c counter\nc 0\n\
# TYPE h histogram\nh_bucket{j=\"1\",le=\"0.1\"} 1\nh_bucket{j=\"1\",le=\"1e+06\"} 2\nh_bucket{j=\"1\",le=\"+Inf\"} 3e+06\nh_sum{j=\"1\"} 0.25\nh_count{j=\"1\"} 3e+06\n\
# TYPE s summary\ns{quantile=\"0.5\"} NaN\ns_sum 1.5\ns_count 2\n";
    assert_eq!(write_text(&fams), want);
    // And the Go parser accepts what we write.
    assert_eq!(promtool_error(want), None);
}

#[test]
fn series_flattening() {
    let f = MetricFamily::new("h", MetricType::Histogram).with_metric(
        l(&[("job", "x")]),
        MetricValue::Histogram {
            buckets: vec![(0.1, 1.0)],
            sum: 0.5,
            count: 2.0,
        },
    );
    let s = series(&f);
    let shown: Vec<String> = s.iter().map(|(l, v)| format!("{l} {v}")).collect();
    assert_eq!(
        shown,
        [
            "{__name__=\"h_bucket\", job=\"x\", le=\"0.1\"} 1",
            "{__name__=\"h_bucket\", job=\"x\", le=\"+Inf\"} 2",
            "{__name__=\"h_sum\", job=\"x\"} 0.5",
            "{__name__=\"h_count\", job=\"x\"} 2",
        ]
    );
    let f = MetricFamily::new("s", MetricType::Summary).with_metric(
        Labels::new(),
        MetricValue::Summary {
            quantiles: vec![(0.99, 3.0)],
            sum: 1.0,
            count: 4.0,
        },
    );
    let s = series(&f);
    assert_eq!(s[0].0.get("quantile"), Some("0.99"));
    assert_eq!(s[0].0.name(), Some("s"));
    assert_eq!(s[2], (l(&[("__name__", "s_count")]), 4.0));
}

#[test]
fn empty_label_values_do_not_split_a_histogram() {
    // Found by fuzzing: `b=""` is absent in Argus' Labels, so it must not make the
    // bucket line a different histogram from the `_sum`/`_count` lines.
    let text = "# TYPE h histogram\nh_bucket{a=\"1\",b=\"\",le=\"+Inf\"} 2\nh_sum{a=\"1\"} 3\nh_count{a=\"1\"} 2\n";
    let f = parse_text(text).unwrap();
    assert_eq!(f[0].metrics.len(), 1);
    assert_eq!(
        f[0].metrics[0].value,
        MetricValue::Histogram {
            buckets: vec![(f64::INFINITY, 2.0)],
            sum: 3.0,
            count: 2.0
        }
    );
    let written = write_text(&f);
    assert_eq!(write_text(&parse_text(&written).unwrap()), written);
}
