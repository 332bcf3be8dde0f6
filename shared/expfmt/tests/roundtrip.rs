//! Property tests: write→parse and encode→decode round trips, and "never panics" on
//! arbitrary input for both parsers (the fuzz targets in `tests/fuzz/` run the same
//! properties with coverage guidance).

use argus_expfmt::*;
use proptest::prelude::*;

fn label_name() -> impl Strategy<Value = String> {
    // Valid, not reserved (`__`), not the names a family type treats specially.
    "[a-zA-Z][a-zA-Z0-9_]{0,8}".prop_filter("special", |s| s != "le" && s != "quantile")
}

fn label_value() -> impl Strategy<Value = String> {
    // Escapes, quotes, newlines and non-ASCII; never empty (empty values are dropped).
    prop_oneof![
        "[a-z0-9]{1,6}",
        "[ -~]{1,10}",
        ".{1,6}",
        Just("a\\b\"c\nd".to_string()),
        Just("ünï 😀".to_string()),
    ]
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(1e6),
        Just(0.0),
        Just(-1.0),
        (-1e9..1e9f64),
        (0u32..1000).prop_map(|x| x as f64 / 1000.0),
    ]
    // -0 is written as `0`, as Go's writer does: not a round-trip difference that matters.
    .prop_map(|f| if f == 0.0 { 0.0 } else { f })
}

fn count() -> impl Strategy<Value = f64> {
    // Counts are uint64 in the data model.
    prop_oneof![
        (0u64..10_000_000).prop_map(|c| c as f64),
        Just(1e6),
        Just(0.0)
    ]
}

fn value(kind: MetricType) -> BoxedStrategy<MetricValue> {
    match kind {
        MetricType::Counter => float().prop_map(MetricValue::Counter).boxed(),
        MetricType::Gauge => float().prop_map(MetricValue::Gauge).boxed(),
        MetricType::Untyped => float().prop_map(MetricValue::Untyped).boxed(),
        MetricType::Summary => (
            prop::collection::vec((0u32..=100, float()), 0..4),
            float(),
            count(),
        )
            .prop_map(|(q, sum, count)| MetricValue::Summary {
                quantiles: q.into_iter().map(|(q, v)| (q as f64 / 100.0, v)).collect(),
                sum,
                count,
            })
            .boxed(),
        MetricType::Histogram => (
            prop::collection::vec((-1000i32..1000, count()), 0..4),
            float(),
            count(),
        )
            .prop_map(|(b, sum, count)| {
                let mut buckets: Vec<(f64, f64)> =
                    b.into_iter().map(|(le, c)| (le as f64 / 10.0, c)).collect();
                buckets.push((f64::INFINITY, count));
                MetricValue::Histogram {
                    buckets,
                    sum,
                    count,
                }
            })
            .boxed(),
    }
}

fn family(idx: usize) -> impl Strategy<Value = MetricFamily> {
    let kind = prop_oneof![
        Just(MetricType::Counter),
        Just(MetricType::Gauge),
        Just(MetricType::Untyped),
        Just(MetricType::Summary),
        Just(MetricType::Histogram),
    ];
    // HELP text: empty or blank-led help does not survive the text format (the Go parser
    // skips blanks after the name), so it starts with a visible character.
    let help = prop::option::of(prop_oneof![
        "[^ \t].{0,20}",
        Just("multi\nline \\ help".to_string())
    ]);
    (kind, help, 1usize..4).prop_flat_map(move |(kind, help, n)| {
        let metric = (
            prop::collection::vec((label_name(), label_value()), 0..3),
            value(kind),
            prop::option::of(any::<i64>()),
        );
        prop::collection::vec(metric, n).prop_map(move |ms| MetricFamily {
            name: format!("fam{idx}_x"),
            help: help.clone(),
            kind,
            metrics: ms
                .into_iter()
                .enumerate()
                .map(|(i, (labels, value, ts))| Metric {
                    // A distinct `i` label keeps label sets unique within the family.
                    labels: Labels::from_pairs(labels).with("i", &i.to_string()),
                    value,
                    timestamp_ms: ts,
                })
                .collect(),
        })
    })
}

fn families() -> impl Strategy<Value = Vec<MetricFamily>> {
    (1usize..5).prop_flat_map(|n| (0..n).map(family).collect::<Vec<_>>())
}

/// NaN-aware structural comparison (Debug prints NaN as NaN on both sides).
fn same(a: &[MetricFamily], b: &[MetricFamily]) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn text_round_trip(fams in families()) {
        let text = write_text(&fams);
        let back = parse_text(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let a = format!("{fams:#?}");
        let b = format!("{back:#?}");
        let diff: Vec<(&str, &str)> = a.lines().zip(b.lines()).filter(|(x, y)| x != y).take(3).collect();
        prop_assert!(a == b, "differs: {diff:?}");
    }

    #[test]
    fn protobuf_round_trip(fams in families()) {
        let bytes = encode_delimited(&fams);
        let back = decode_delimited(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(same(&fams, &back));
    }

    #[test]
    fn text_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_text_bytes(&bytes);
    }

    #[test]
    fn text_parser_never_panics_on_near_valid_text(
        lines in prop::collection::vec(
            prop_oneof![
                "# (HELP|TYPE) [a-z_]{0,5}( [a-zA-Z\\\\n ]{0,8})?",
                "[a-z_]{1,5}(\\{([a-z]{1,3}=\"[a-z\\\\\"]{0,3}\",?){0,3}\\})? [-+0-9.eEInfa]{0,6}( -?[0-9]{0,4})?",
                "[ \t#{}=\",a-z0-9]{0,12}",
            ],
            0..12,
        ),
        trailing_newline in any::<bool>(),
    ) {
        let mut text = lines.join("\n");
        if trailing_newline {
            text.push('\n');
        }
        if let Ok(fams) = parse_text(&text) {
            // whatever is accepted, the writer's output is accepted again
            let written = write_text(&fams);
            prop_assert!(parse_text(&written).is_ok(), "{text:?} -> {written:?}");
        }
    }

    #[test]
    fn protobuf_decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_delimited(&bytes);
    }

    #[test]
    fn protobuf_decoder_survives_corrupted_valid_input(fams in families(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut bytes = encode_delimited(&fams);
        for (i, b) in flips {
            let i = i.index(bytes.len());
            bytes[i] ^= b | 1;
        }
        let _ = decode_delimited(&bytes);
    }
}

#[test]
fn huge_length_prefix_is_an_error_not_an_allocation() {
    // varint length 2^62 followed by nothing
    let bytes = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40];
    assert!(decode_delimited(&bytes).is_err());
}
