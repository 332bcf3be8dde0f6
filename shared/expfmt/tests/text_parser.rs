//! Cases from prometheus/common `expfmt/text_parse_test.go` (accepted inputs and the
//! exact error of each rejected one).

use argus_expfmt::{parse_text, MetricType, MetricValue};
use std::io::Write;
use std::process::{Command, Stdio};

/// The Go text parser's verdict (`promtool check metrics` reads stdin with it).
fn promtool_error(input: &str) -> Option<String> {
    let mut child = Command::new(argus_testkit::tool("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("error while linting: ").map(str::to_string))
}

#[test]
fn accepts_go_test_inputs() {
    let fams = parse_text(
        r#"
# Only a quite simple scenario with two metric families.
# More complicated tests of the parser happen via the test cases below.
minimal_metric 1.234
another_metric -3e3 103948
# Even that:
no_labels{} 3
# HELP line for non-existing metric will be ignored.
"#,
    )
    .unwrap();
    assert_eq!(fams.len(), 3);
    assert_eq!(fams[0].name, "minimal_metric");
    assert_eq!(fams[0].kind, MetricType::Untyped);
    assert_eq!(fams[1].metrics[0].value, MetricValue::Untyped(-3000.0));
    assert_eq!(fams[1].metrics[0].timestamp_ms, Some(103948));
    assert_eq!(fams[2].name, "no_labels");

    let fams = parse_text(
        "\n# A normal comment.\n#\n# TYPE name counter\nname{labelname=\"val1\",basename=\"basevalue\"} NaN\nname {labelname=\"val2\",basename=\"base\\\"v\\\\al\\nue\"} 0.23 1234567890\n# HELP name two-line\\n doc  str\\\\ing\n\n # HELP  name2  \tdoc str\"ing 2\n  #    TYPE    name2 gauge\nname2{labelname=\"val2\"\t,basename   =   \"basevalue2\"\t\t} +Inf 54321\nname2{ labelname = \"val1\" , }-Inf\n",
    )
    .unwrap();
    assert_eq!(fams.len(), 2);
    assert_eq!(fams[0].help.as_deref(), Some("two-line\n doc  str\\ing"));
    assert_eq!(fams[0].kind, MetricType::Counter);
    assert!(matches!(fams[0].metrics[0].value, MetricValue::Counter(v) if v.is_nan()));
    assert_eq!(
        fams[0].metrics[1].labels.get("basename"),
        Some("base\"v\\al\nue")
    );
    assert_eq!(fams[1].help.as_deref(), Some("doc str\"ing 2"));
    assert_eq!(fams[1].metrics[0].value, MetricValue::Gauge(f64::INFINITY));
    assert_eq!(
        fams[1].metrics[1].value,
        MetricValue::Gauge(f64::NEG_INFINITY)
    );
    assert_eq!(fams[1].metrics[1].labels.get("labelname"), Some("val1"));

    let fams = parse_text(
        "\n# HELP my_summary\n# TYPE my_summary summary\nmy_summary{n1=\"val1\",quantile=\"0.5\"} 110\ndecoy -1 -2\nmy_summary{n1=\"val1\",quantile=\"0.9\"} 140 1\nmy_summary_count{n1=\"val1\"} 42\n# Latest timestamp wins in case of a summary.\nmy_summary_sum{n1=\"val1\"} 4711 2\nfake_sum{n1=\"val1\"} 2001\n# TYPE another_summary summary\nanother_summary_count{n2=\"val2\",n1=\"val1\"} 20\nmy_summary_count{n2=\"val2\",n1=\"val1\"} 5 5\nanother_summary{n1=\"val1\",n2=\"val2\",quantile=\".3\"} -1.2\nmy_summary_sum{n1=\"val2\"} 08 15\nmy_summary{n1=\"val3\", quantile=\"0.2\"} 4711\n  my_summary{n1=\"val1\",n2=\"val2\",quantile=\"-12.34\",} NaN\n# some\n# funny comments\n# HELP \n# HELP\n# HELP my_summary\n# HELP my_summary \n",
    )
    .unwrap();
    let names: Vec<&str> = fams.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["my_summary", "decoy", "fake_sum", "another_summary"]
    );
    let s = &fams[0];
    assert_eq!(s.metrics.len(), 4);
    match &s.metrics[0].value {
        MetricValue::Summary {
            quantiles,
            sum,
            count,
        } => {
            assert_eq!(quantiles, &vec![(0.5, 110.0), (0.9, 140.0)]);
            assert_eq!((*sum, *count), (4711.0, 42.0));
        }
        v => panic!("{v:?}"),
    }
    assert_eq!(s.metrics[0].timestamp_ms, Some(2));
    match &fams[3].metrics[0].value {
        MetricValue::Summary {
            quantiles, count, ..
        } => {
            assert_eq!(quantiles, &vec![(0.3, -1.2)]);
            assert_eq!(*count, 20.0);
        }
        v => panic!("{v:?}"),
    }

    let fams = parse_text(
        "\n# HELP request_duration_microseconds The response latency.\n# TYPE request_duration_microseconds histogram\nrequest_duration_microseconds_bucket{le=\"100\"} 123\nrequest_duration_microseconds_bucket{le=\"120\"} 412\nrequest_duration_microseconds_bucket{le=\"144\"} 592\nrequest_duration_microseconds_bucket{le=\"172.8\"} 1524\nrequest_duration_microseconds_bucket{le=\"+Inf\"} 2693\nrequest_duration_microseconds_sum 1.7560473e+06\nrequest_duration_microseconds_count 2693\n",
    )
    .unwrap();
    match &fams[0].metrics[0].value {
        MetricValue::Histogram {
            buckets,
            sum,
            count,
        } => {
            assert_eq!(buckets.len(), 5);
            assert_eq!(buckets[3], (172.8, 1524.0));
            assert_eq!(buckets[4].0, f64::INFINITY);
            assert_eq!((*sum, *count), (1756047.3, 2693.0));
        }
        v => panic!("{v:?}"),
    }
}

#[test]
fn rejects_like_go() {
    let cases: &[(&str, &str)] = &[
        ("", ""),
        ("\nminimal_metric\n", "text format parsing error in line 2: expected float as value, got \"\""),
        ("metric{label=\"\\t\"} 3.14", "text format parsing error in line 1: invalid escape sequence '\\t'"),
        ("metric{label=\"bla\"} 3.14 2 3\n", "text format parsing error in line 1: spurious string after timestamp: \" 3\""),
        ("metric{label=\"bla\"} blubb\n", "text format parsing error in line 1: expected float as value, got \"blubb\""),
        ("\n# HELP metric one\n# HELP metric two\n", "text format parsing error in line 3: second HELP line for metric name \"metric\""),
        ("\n# TYPE metric counter\n# TYPE metric untyped\n", "text format parsing error in line 3: second TYPE line for metric name \"metric\", or TYPE reported after samples"),
        ("\nmetric 4.12\n# TYPE metric counter\n", "text format parsing error in line 3: second TYPE line for metric name \"metric\", or TYPE reported after samples"),
        ("\n# TYPE metric bla\n", "text format parsing error in line 2: unknown metric type \"bla\""),
        ("\n# TYPE met-ric\n", "text format parsing error in line 2: invalid metric name in comment"),
        ("@invalidmetric{label=\"bla\"} 3.14 2", "text format parsing error in line 1: invalid metric name"),
        ("{label=\"bla\"} 3.14 2", "text format parsing error in line 1: invalid metric name"),
        ("\n# TYPE metric histogram\nmetric_bucket{le=\"bla\"} 3.14\n", "text format parsing error in line 3: expected float as value for 'le' label, got \"bla\""),
        ("metric{label=\"bla\"} 3.14 2a\n", "text format parsing error in line 1: expected integer as timestamp, got \"2a\""),
        ("metric{label=\"bla\",label2=\"bla\"} 3.14 2 3", "text format parsing error in line 1: unexpected end of input stream"),
        ("metric{label=\"bla\",label=\"bla\"} 3.14\n", "text format parsing error in line 1: duplicate label names for metric \"metric\""),
        ("metric{__name__=\"bla\"} 3.14\n", "text format parsing error in line 1: label name \"__name__\" is reserved"),
        ("metric{a=\"1\" b=\"2\"} 3\n", "text format parsing error in line 1: unexpected end of label value \"1\""),
        ("metric{a=1} 3\n", "text format parsing error in line 1: expected '\"' at start of label value, found '1'"),
        ("metric{a-b=\"1\"} 3\n", "text format parsing error in line 1: expected '=' after label name, found '-'"),
        ("metric{a=\"x\ny\"} 3\n", "text format parsing error in line 1: label value \"x\" contains unescaped new-line"),
        ("metric{1a=\"x\"} 3\n", "text format parsing error in line 1: invalid label name for metric \"metric\""),
        ("\n# TYPE metric summary\nmetric{quantile=\"bla\"} 3.14\n", "text format parsing error in line 3: expected float as value for 'quantile' label, got \"bla\""),
        ("metric 1", "text format parsing error in line 1: unexpected end of input stream"),
        ("metric 1_0\n", "text format parsing error in line 1: expected float as value, got \"1_0\""),
        ("# HELP m a\\tb\n", "text format parsing error in line 1: invalid escape sequence '\\t'"),
    ];
    for (input, want) in cases {
        // Each pinned message is first checked against the real Go parser.
        let go = promtool_error(input).unwrap_or_default();
        assert_eq!(go, *want, "promtool on {input:?}");
        match parse_text(input) {
            Ok(f) if want.is_empty() => assert!(f.is_empty()),
            Ok(f) => panic!("{input:?} accepted: {f:?}"),
            Err(e) => assert_eq!(e.to_string(), *want, "input {input:?}"),
        }
    }
}

#[test]
fn histogram_folding_needs_type_first() {
    // Without a TYPE line, _bucket/_sum/_count are plain untyped families (as in Go).
    let fams = parse_text("h_bucket{le=\"1\"} 1\nh_sum 2\nh_count 1\n").unwrap();
    assert_eq!(fams.len(), 3);
    assert!(fams.iter().all(|f| f.kind == MetricType::Untyped));
    assert_eq!(fams[0].metrics[0].labels.get("le"), Some("1"));
}
