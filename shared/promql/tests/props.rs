//! Property tests: random expressions over random data never panic, and simple
//! Prometheus identities hold.

use argus_model::Labels;
use argus_promql::{is_stale, parse, stale_nan, Engine, MemStorage, Sample, Value};
use proptest::prelude::*;

const MIN: i64 = 60_000;
const T: i64 = 10 * MIN;

/// A series: per-minute values (None = no sample, Some(NaN-stale) = marker).
fn series_strategy() -> impl Strategy<Value = Vec<Option<f64>>> {
    prop::collection::vec(
        prop_oneof![
            6 => (-1e6f64..1e6).prop_map(Some),
            1 => Just(None),
            1 => Just(Some(stale_nan())),
            1 => Just(Some(f64::NAN)),
            1 => (0u32..100).prop_map(|v| Some(v as f64)),
        ],
        1..12,
    )
}

fn data_strategy() -> impl Strategy<Value = Vec<Vec<Option<f64>>>> {
    prop::collection::vec(series_strategy(), 1..12)
}

fn load(data: &[Vec<Option<f64>>]) -> MemStorage {
    let mut st = MemStorage::new();
    for (i, vals) in data.iter().enumerate() {
        let labels = Labels::from_pairs([
            ("__name__", "m".to_string()),
            ("i", i.to_string()),
            ("j", (i % 3).to_string()),
        ]);
        for (k, v) in vals.iter().enumerate() {
            if let Some(v) = v {
                st.append(labels.clone(), k as i64 * MIN, *v).unwrap();
            }
        }
        // a second metric with the same label sets for vector matching
        let other = labels.clone().with("__name__", "n");
        for (k, v) in vals.iter().enumerate().rev().take(4) {
            if let Some(v) = v {
                if !is_stale(*v) {
                    let _ = st.append(other.clone(), k as i64 * MIN, v * 2.0);
                }
            }
        }
    }
    st
}

/// The latest non-stale value within 5m of T, per series, in creation order.
fn latest(data: &[Vec<Option<f64>>]) -> Vec<f64> {
    let mut out = Vec::new();
    for vals in data {
        let mut last = None;
        for (k, v) in vals.iter().enumerate() {
            let t = k as i64 * MIN;
            if t > T {
                break;
            }
            if let Some(v) = v {
                last = Some((t, *v));
            }
        }
        if let Some((t, v)) = last {
            if t >= T - 5 * MIN && !is_stale(v) {
                out.push(v);
            }
        }
    }
    out
}

fn vector(st: &MemStorage, e: &str) -> Vec<Sample> {
    match Engine::new().instant(&parse(e).unwrap(), T, st).unwrap() {
        Value::Vector(v) => v,
        other => panic!("{e}: {other:?}"),
    }
}

fn same_bits(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn vector_expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("m".to_string()),
        Just("n".to_string()),
        Just("m{j=\"0\"}".to_string()),
        Just("m{i=~\"1|2|3\"}".to_string()),
        Just("m offset 2m".to_string()),
        Just("m @ 300".to_string()),
        Just("vector(1)".to_string()),
        Just("rate(m[5m])".to_string()),
        Just("increase(m[3m])".to_string()),
        Just("delta(m[5m])".to_string()),
        Just("irate(m[10m])".to_string()),
        Just("deriv(m[5m])".to_string()),
        Just("predict_linear(m[5m], 60)".to_string()),
        Just("avg_over_time(m[5m])".to_string()),
        Just("stddev_over_time(m[10m])".to_string()),
        Just("quantile_over_time(0.3, m[10m])".to_string()),
        Just("changes(m[10m])".to_string()),
        Just("resets(m[10m])".to_string()),
        Just("absent_over_time(m[1m])".to_string()),
        Just("max_over_time(m[4m:1m])".to_string()),
        Just("holt_winters(m[10m], 0.5, 0.5)".to_string()),
        Just("timestamp(m)".to_string()),
    ];
    leaf.prop_recursive(3, 24, 3, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop::sample::select(vec![
                    "+", "-", "*", "/", "%", "^", ">", "<=", "== bool", "!= bool", "and", "or",
                    "unless", "atan2"
                ]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("({a}) {op} ({b})")),
            (
                inner.clone(),
                prop::sample::select(vec![
                    "+ on(i)",
                    "* ignoring(__name__)",
                    "/ on(j) group_left",
                    "- ignoring(i) group_right",
                    "> on(i, j)",
                    "and on(j)",
                    "or ignoring(i)"
                ]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("({a}) {op} ({b})")),
            (
                inner.clone(),
                prop::sample::select(vec!["+", "*", ">", "<", "^", "%"]),
                -10.0f64..10.0
            )
                .prop_map(|(a, op, s)| format!("({a}) {op} {s}")),
            (
                prop::sample::select(vec![
                    "sum", "avg", "min", "max", "count", "group", "stddev", "stdvar"
                ]),
                prop::sample::select(vec!["", " by (j)", " without (i)", " by (__name__)"]),
                inner.clone()
            )
                .prop_map(|(agg, g, a)| format!("{agg}{g} ({a})")),
            (
                prop::sample::select(vec!["topk", "bottomk"]),
                0u32..5,
                inner.clone()
            )
                .prop_map(|(f, k, a)| format!("{f}({k}, {a})")),
            (-0.5f64..1.5, inner.clone()).prop_map(|(q, a)| format!("quantile({q}, {a})")),
            inner
                .clone()
                .prop_map(|a| format!("count_values(\"v\", {a})")),
            (
                prop::sample::select(vec![
                    "abs",
                    "ceil",
                    "floor",
                    "exp",
                    "sqrt",
                    "ln",
                    "log2",
                    "log10",
                    "sgn",
                    "sort",
                    "sort_desc",
                    "absent",
                    "-",
                    "round",
                    "day_of_week",
                    "hour",
                    "sin",
                    "asin",
                    "acos",
                    "atan"
                ]),
                inner.clone()
            )
                .prop_map(|(f, a)| format!("{f}({a})")),
            (inner.clone(), -5.0f64..5.0, -5.0f64..5.0)
                .prop_map(|(a, lo, hi)| format!("clamp({a}, {lo}, {hi})")),
            inner.clone().prop_map(|a| format!(
                "histogram_quantile(0.9, label_replace({a}, \"le\", \"$1\", \"j\", \"(.*)\"))"
            )),
            inner
                .clone()
                .prop_map(|a| format!("label_join({a}, \"k\", \"-\", \"i\", \"j\")")),
            inner
                .clone()
                .prop_map(|a| format!("max_over_time(({a})[3m:1m])")),
            inner.clone().prop_map(|a| format!("vector(scalar({a}))")),
        ]
    })
}

/// Selectors and functions of one matrix selector: the shapes a range query evaluates
/// series by series (`Ev::range_direct`), and their neighbours that it does not.
fn direct_expr() -> impl Strategy<Value = String> {
    let sel = prop_oneof![
        Just("m"),
        Just("n"),
        Just("m{j=\"0\"}"),
        Just("{__name__=~\"m|n\"}"),
        Just("m offset 2m"),
        Just("m offset -1m"),
        Just("m @ 300"),
        Just("nope"),
    ];
    let func = prop_oneof![
        Just("rate"),
        Just("increase"),
        Just("delta"),
        Just("irate"),
        Just("idelta"),
        Just("deriv"),
        Just("resets"),
        Just("changes"),
        Just("avg_over_time"),
        Just("sum_over_time"),
        Just("count_over_time"),
        Just("min_over_time"),
        Just("max_over_time"),
        Just("last_over_time"),
        Just("present_over_time"),
        Just("stddev_over_time"),
        Just("stdvar_over_time"),
        Just("absent_over_time"),
    ];
    let range = prop_oneof![Just("1m"), Just("3m"), Just("150s"), Just("10m")];
    prop_oneof![
        sel.clone().prop_map(|s| s.to_string()),
        sel.clone().prop_map(|s| format!("({s})")),
        (func, sel, range).prop_map(|(f, s, r)| {
            // `m @ 300[1m]` is not PromQL: the range goes before the modifiers.
            let m = match s.split_once(' ') {
                Some((a, b)) => format!("{a}[{r}] {b}"),
                None => format!("{s}[{r}]"),
            };
            format!("{f}({m})")
        }),
    ]
}

/// A range query answered from instant queries at each step, as Prometheus defines it.
fn range_by_instants(
    st: &MemStorage,
    e: &str,
    start: i64,
    end: i64,
    step: i64,
) -> Result<Vec<argus_promql::Series>, String> {
    let expr = parse(e).unwrap();
    let mut out: Vec<argus_promql::Series> = Vec::new();
    let mut t = start;
    while t <= end {
        let v = Engine::new()
            .instant(&expr, t, st)
            .map_err(|e| e.to_string())?;
        let samples = match v {
            Value::Vector(v) => v,
            Value::Scalar(x) => vec![Sample {
                labels: Labels::new(),
                value: x,
            }],
            _ => return Err("not a vector".into()),
        };
        for s in samples {
            match out.iter_mut().find(|o| o.labels == s.labels) {
                Some(o) => o.samples.push((t, s.value)),
                None => out.push(argus_promql::Series {
                    labels: s.labels,
                    samples: vec![(t, s.value)],
                }),
            }
        }
        t += step;
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(out)
}

fn same_series(a: &[argus_promql::Series], b: &[argus_promql::Series]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.labels == y.labels
                && x.samples.len() == y.samples.len()
                && x.samples
                    .iter()
                    .zip(&y.samples)
                    .all(|(p, q)| p.0 == q.0 && same_bits(p.1, q.1))
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// A range query gives, bit for bit, what instant queries at each of its steps give
    /// (and fails when one of them fails), for the series-by-series shapes and for the
    /// step-by-step ones.
    #[test]
    fn range_equals_instants_at_each_step(
        data in data_strategy(),
        e in prop_oneof![3 => direct_expr(), 1 => vector_expr()],
        step in prop_oneof![Just(MIN), Just(3 * MIN), Just(45_000i64)],
        start in prop_oneof![Just(0i64), Just(2 * MIN + 500)],
    ) {
        let st = load(&data);
        let Ok(expr) = parse(&e) else { return Ok(()) };
        if e.contains("start()") || e.contains("end()") {
            return Ok(()); // resolve to the range's ends, not to each instant
        }
        let want = range_by_instants(&st, &e, start, T, step);
        let got = Engine::new().range(&expr, start, T, step, &st).map_err(|e| e.to_string());
        match (&got, &want) {
            (Ok(g), Ok(w)) => prop_assert!(same_series(g, w), "{}: {:?} vs {:?}", e, g, w),
            (Err(g), Err(w)) => prop_assert_eq!(g, w, "{}", e),
            _ => prop_assert!(false, "{}: {:?} vs {:?}", e, got, want),
        }
    }

    #[test]
    fn random_expressions_never_panic(data in data_strategy(), e in vector_expr()) {
        let st = load(&data);
        if let Ok(expr) = parse(&e) {
            let eng = Engine::new();
            let _ = eng.instant(&expr, T, &st);
            let _ = eng.range(&expr, 0, T, 3 * MIN, &st);
        }
    }

    #[test]
    fn aggregation_identities(data in data_strategy()) {
        let st = load(&data);
        let vals = latest(&data);
        let sum = vector(&st, "sum(m)");
        let count = vector(&st, "count(m)");
        if vals.is_empty() {
            prop_assert!(sum.is_empty());
            prop_assert!(count.is_empty());
            prop_assert_eq!(vector(&st, "absent(m)").len(), 1);
        } else {
            let manual = vals.iter().fold(0.0, |a, b| a + b);
            prop_assert!(same_bits(sum[0].value, manual), "sum {} vs {}", sum[0].value, manual);
            prop_assert_eq!(count[0].value, vals.len() as f64);
            prop_assert!(vector(&st, "absent(m)").is_empty());
            prop_assert_eq!(vector(&st, "group(m)")[0].value, 1.0);
            let k = vector(&st, "topk(3, m)");
            prop_assert_eq!(k.len(), vals.len().min(3));
            let by_j: f64 = vector(&st, "count by (j) (m)").iter().map(|s| s.value).sum();
            prop_assert_eq!(by_j, vals.len() as f64);
        }
        // a + 0 == a (name dropped), a and a == a, a unless a == {}
        let m = vector(&st, "m");
        let plus0 = vector(&st, "m + 0");
        prop_assert_eq!(m.len(), plus0.len());
        for (a, b) in m.iter().zip(&plus0) {
            prop_assert_eq!(a.labels.without_name(), b.labels.clone());
            prop_assert!(same_bits(a.value + 0.0, b.value));
        }
        prop_assert_eq!(vector(&st, "m and m").len(), m.len());
        prop_assert_eq!(vector(&st, "m or m").len(), m.len());
        prop_assert!(vector(&st, "m unless m").is_empty());
        let filtered = vector(&st, "m > 0");
        prop_assert!(filtered.iter().all(|s| s.value > 0.0 && s.labels.name() == Some("m")));
        prop_assert_eq!(filtered.len(), vals.iter().filter(|v| **v > 0.0).count());
    }

    #[test]
    fn rate_of_counter_is_non_negative(incs in prop::collection::vec(0u32..1000, 2..30), reset_at in 0usize..30) {
        let mut st = MemStorage::new();
        let l = Labels::from_pairs([("__name__", "c")]);
        let mut v = 0.0;
        for (k, inc) in incs.iter().enumerate() {
            v = if k == reset_at { 0.0 } else { v + *inc as f64 };
            st.append(l.clone(), k as i64 * 15_000, v).unwrap();
        }
        let end = (incs.len() as i64 - 1) * 15_000;
        for e in ["rate(c[2m])", "increase(c[5m])", "irate(c[1m])"] {
            if let Value::Vector(out) = Engine::new().instant(&parse(e).unwrap(), end, &st).unwrap() {
                for s in out {
                    prop_assert!(s.value >= 0.0, "{} = {}", e, s.value);
                }
            }
        }
    }
}

/// Guards the fuzz test's usefulness: most generated expressions must be valid PromQL
/// (otherwise `random_expressions_never_panic` would mostly test the parser).
#[test]
fn generated_expressions_mostly_parse() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strat = vector_expr();
    let (mut ok, total) = (0, 300);
    let mut bad = Vec::new();
    for _ in 0..total {
        let e = strat.new_tree(&mut runner).unwrap().current();
        match parse(&e) {
            Ok(_) => ok += 1,
            Err(err) => bad.push(format!("{e}: {err}")),
        }
    }
    assert!(
        ok * 10 >= total * 9,
        "only {ok}/{total} parse; e.g. {:?}",
        &bad[..bad.len().min(3)]
    );
}
