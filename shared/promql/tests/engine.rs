//! Engine semantics that promtool cannot check (errors, NaN, staleness, range queries),
//! each pinned to Prometheus' behaviour.

use argus_model::Labels;
use argus_promql::series_notation::parse_series_desc;
use argus_promql::{is_stale, parse, Engine, MemStorage, PromqlError, Queryable, Sample, Value};

const MIN: i64 = 60_000;

fn storage(lines: &[&str]) -> MemStorage {
    let mut st = MemStorage::new();
    for l in lines {
        let (labels, vals) = parse_series_desc(l).unwrap();
        for (i, v) in vals.into_iter().enumerate() {
            if let Some(v) = v {
                st.append(labels.clone(), i as i64 * MIN, v).unwrap();
            }
        }
    }
    st
}

fn instant(st: &dyn Queryable, e: &str, t: i64) -> Result<Value, PromqlError> {
    Engine::new().instant(&parse(e)?, t, st)
}

fn vector(st: &dyn Queryable, e: &str, t: i64) -> Vec<Sample> {
    match instant(st, e, t).unwrap_or_else(|err| panic!("{e}: {err}")) {
        Value::Vector(v) => v,
        other => panic!("{e}: not a vector: {other:?}"),
    }
}

fn err(st: &dyn Queryable, e: &str, t: i64) -> String {
    match instant(st, e, t) {
        Err(e) => e.to_string(),
        Ok(v) => panic!("{e}: expected an error, got {v:?}"),
    }
}

fn l(s: &str) -> Labels {
    argus_promql::series_notation::parse_metric(s).unwrap()
}

#[test]
fn many_to_many_and_duplicate_errors() {
    let st = storage(&[
        r#"a{x="1", y="1"} 1"#,
        r#"a{x="1", y="2"} 2"#,
        r#"b{x="1", y="1"} 3"#,
        r#"b{x="1", y="2"} 4"#,
        r#"c{x="1"} 5"#,
    ]);
    let e = err(&st, "a + on(x) b", 0);
    assert!(
        e.starts_with(
            "found duplicate series for the match group {x=\"1\"} on the right hand-side"
        ),
        "{e}"
    );
    assert!(e.contains("many-to-many matching not allowed"), "{e}");
    let e = err(&st, "c + on(x) a", 0);
    assert!(e.contains("on the right hand-side"), "{e}");
    let e = err(&st, "a + on(x) group_right c", 0);
    assert!(e.contains("on the left hand-side"), "{e}");
    assert_eq!(
        err(&st, "a + ignoring(y) c", 0),
        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
    );
    assert_eq!(vector(&st, "a + ignoring(y) group_left c", 0).len(), 2);
    assert!(err(&st, "a * on(x) group_left(y) b", 0).contains("duplicate series"));
    // metric names dropped by arithmetic make a and b collide
    assert_eq!(
        err(&st, "{__name__=~\"a|b\"} * 2", 0),
        "vector cannot contain metrics with the same labelset"
    );
    assert_eq!(
        err(&st, "sum_over_time({__name__=~\"a|b\"}[5m])", 0),
        "vector cannot contain metrics with the same labelset"
    );
    assert_eq!(
        err(&st, r#"label_replace(a, "y", "z", "", "")"#, 0),
        "vector cannot contain metrics with the same labelset"
    );
    // comparison keeps the name: no collision
    assert_eq!(vector(&st, "{__name__=~\"a|b\"} > 0", 0).len(), 4);
}

#[test]
fn function_argument_errors() {
    let st = storage(&[r#"a{x="1"} 1"#]);
    assert!(err(&st, r#"label_replace(a, "dst", "", "x", "(")"#, 0)
        .starts_with("invalid regular expression in label_replace()"));
    assert_eq!(
        err(&st, r#"label_replace(a, "1dst", "", "x", ".*")"#, 0),
        "invalid destination label name in label_replace(): 1dst"
    );
    assert_eq!(
        err(&st, r#"label_join(a, "-x", ",", "x")"#, 0),
        "invalid destination label name in label_join(): -x"
    );
    assert_eq!(
        err(&st, r#"count_values("a b", a)"#, 0),
        "invalid label name \"a b\""
    );
    assert!(err(&st, "holt_winters(a[5m], 1.5, 0.5)", 0).starts_with("invalid smoothing factor"));
    assert!(err(&st, "holt_winters(a[5m], 0.5, 0)", 0).starts_with("invalid trend factor"));
}

#[test]
fn nan_results_promtool_cannot_compare() {
    let st = storage(&[
        r#"a{x="1"} 0"#,
        r#"a{x="2"} 0"#,
        r#"h_bucket{le="1"} 1"#,
        r#"h_bucket{le="2"} 2"#,
        r#"one 1"#,
    ]);
    let v = vector(&st, "a / 0", 0);
    assert!(v.iter().all(|s| s.value.is_nan()));
    assert!(vector(&st, "a % 0", 0)[0].value.is_nan());
    // no +Inf bucket
    assert!(vector(&st, "histogram_quantile(0.5, h_bucket)", 0)[0]
        .value
        .is_nan());
    // scalar() of more than one element
    match instant(&st, "scalar(a)", 0).unwrap() {
        Value::Scalar(v) => assert!(v.is_nan()),
        other => panic!("{other:?}"),
    }
    match instant(&st, "scalar(one)", 0).unwrap() {
        Value::Scalar(v) => assert_eq!(v, 1.0),
        other => panic!("{other:?}"),
    }
    // NaN handling in min/max/topk/sort: NaN loses against numbers
    let st = storage(&["n{i=\"a\"} NaN", "n{i=\"b\"} 1", "n{i=\"c\"} 2"]);
    assert_eq!(vector(&st, "max(n)", 0)[0].value, 2.0);
    assert_eq!(vector(&st, "min(n)", 0)[0].value, 1.0);
    assert_eq!(vector(&st, "topk(1, n)", 0)[0].value, 2.0);
    assert_eq!(vector(&st, "bottomk(1, n)", 0)[0].value, 1.0);
    let s = vector(&st, "sort(n)", 0);
    assert_eq!(s[0].value, 1.0);
    assert!(s[2].value.is_nan());
    let s = vector(&st, "sort_desc(n)", 0);
    assert_eq!(s[0].value, 2.0);
    assert!(s[2].value.is_nan());
    let v = vector(&st, "topk(3, n)", 0);
    assert_eq!(
        v.iter().map(|s| s.value).take(2).collect::<Vec<_>>(),
        vec![2.0, 1.0],
        "descending"
    );
}

#[test]
fn staleness_and_lookback() {
    let mut st = storage(&["up{i=\"a\"} 1 1 stale 1"]);
    assert_eq!(vector(&st, "up", MIN).len(), 1);
    assert!(
        vector(&st, "up", 2 * MIN).is_empty(),
        "stale marker ends the series"
    );
    assert!(vector(&st, "up", 2 * MIN + 30_000).is_empty());
    assert_eq!(vector(&st, "up", 3 * MIN).len(), 1, "series comes back");
    assert_eq!(
        vector(&st, "count_over_time(up[3m])", 3 * MIN)[0].value,
        3.0,
        "markers are not samples"
    );
    // mark_stale from the storage API
    st.mark_stale(&l(r#"up{i="a"}"#), 4 * MIN);
    assert!(vector(&st, "up", 4 * MIN).is_empty());
    assert!(is_stale(st.last_sample(&l(r#"up{i="a"}"#)).unwrap().1));
    // custom lookback
    let st = storage(&["x 1"]);
    let e = Engine {
        lookback_ms: MIN,
        ..Engine::new()
    };
    let q = parse("x").unwrap();
    assert!(matches!(e.instant(&q, MIN, &st).unwrap(), Value::Vector(v) if v.len() == 1));
    assert!(matches!(e.instant(&q, MIN + 1, &st).unwrap(), Value::Vector(v) if v.is_empty()));
}

#[test]
fn range_query() {
    let st = storage(&["x{i=\"a\"} 1 2 3 4", "x{i=\"b\"} _ _ 10 11"]);
    let e = Engine::new();
    let out = e
        .range(&parse("x * 2").unwrap(), 0, 3 * MIN, MIN, &st)
        .unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].labels, l(r#"{i="a"}"#));
    assert_eq!(
        out[0].samples,
        vec![(0, 2.0), (MIN, 4.0), (2 * MIN, 6.0), (3 * MIN, 8.0)]
    );
    assert_eq!(out[1].samples, vec![(2 * MIN, 20.0), (3 * MIN, 22.0)]);
    let out = e
        .range(&parse("time()").unwrap(), 0, 2 * MIN, MIN, &st)
        .unwrap();
    assert_eq!(
        out[0].samples,
        vec![(0, 0.0), (MIN, 60.0), (2 * MIN, 120.0)]
    );
    // @ start() / end() refer to the range query's bounds
    let out = e
        .range(&parse("x{i=\"a\"} @ end()").unwrap(), 0, 2 * MIN, MIN, &st)
        .unwrap();
    assert_eq!(
        out[0].samples.iter().map(|s| s.1).collect::<Vec<_>>(),
        vec![3.0, 3.0, 3.0]
    );
    assert!(e.range(&parse("x[5m]").unwrap(), 0, MIN, MIN, &st).is_err());
    assert!(e.range(&parse("x").unwrap(), 0, MIN, 0, &st).is_err());
    assert!(
        e.range(&parse("x").unwrap(), 0, 1_000_000_000, 1, &st)
            .is_err(),
        "too many points"
    );
}

#[test]
fn instant_value_types() {
    let st = storage(&["x{i=\"a\"} 1 2 stale 4"]);
    match instant(&st, "x[5m]", 3 * MIN).unwrap() {
        Value::Matrix(m) => {
            assert_eq!(m.len(), 1);
            assert_eq!(m[0].labels.name(), Some("x"));
            assert_eq!(m[0].samples, vec![(0, 1.0), (MIN, 2.0), (3 * MIN, 4.0)]);
        }
        other => panic!("{other:?}"),
    }
    match instant(&st, "x[2m:1m]", 3 * MIN).unwrap() {
        Value::Matrix(m) => assert_eq!(m[0].samples, vec![(MIN, 2.0), (3 * MIN, 4.0)]),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        instant(&st, "\"hello\"", 0).unwrap(),
        Value::String("hello".into())
    );
    assert_eq!(instant(&st, "1 + 2", 0).unwrap(), Value::Scalar(3.0));
    assert_eq!(instant(&st, "-(1 + 2)", 0).unwrap(), Value::Scalar(-3.0));
    // unary plus is a no-op and keeps the name; unary minus drops it
    assert_eq!(vector(&st, "+x", MIN)[0].labels.name(), Some("x"));
    assert_eq!(vector(&st, "-x", MIN)[0].labels.name(), None);
    // @ before the epoch and huge offsets do not overflow
    assert!(vector(&st, "x @ -100", MIN).is_empty());
    assert!(vector(&st, "x offset 100000w", MIN).is_empty());
}

#[test]
fn unsupported_is_a_parse_time_error() {
    for e in [
        "histogram_count(x)",
        "limitk(1, x)",
        "sort_by_label(x, \"a\")",
        "mad_over_time(x[5m])",
    ] {
        match parse(e) {
            Err(PromqlError::Unsupported(m)) => assert!(m.contains("not supported"), "{m}"),
            Err(PromqlError::Parse { .. }) => {} // unknown to the parser: also a load-time error
            other => panic!("{e}: {other:?}"),
        }
    }
    assert!(parse("rate(x[5m]) + ").is_err());
    assert!(parse("x{a=\"b\" or c=\"d\"}").is_err());
}

#[test]
fn topk_ties_follow_input_order_and_dont_panic_on_huge_k() {
    let st = storage(&["t{i=\"b\"} 5", "t{i=\"a\"} 5", "t{i=\"c\"} 3"]);
    let v = vector(&st, "topk(1, t)", 0);
    assert_eq!(
        v[0].labels.get("i"),
        Some("b"),
        "first created wins a tie, as in Prometheus' head"
    );
    assert_eq!(vector(&st, "topk(1e18, t)", 0).len(), 3);
    assert!(err(&st, "topk(1e300, t)", 0).contains("overflows int64"));
    assert!(vector(&st, "topk(-1, t)", 0).is_empty());
}
