//! Side-by-side check against Prometheus' own `promtool test rules`.
//!
//! Every file under `tests/promtool/` is a promtool unit-test file with
//! `promql_expr_test` cases. `corpus_matches_engine` loads the input series exactly as
//! promtool does (series notation at `interval` steps from t=0) and asserts that
//! `Engine::instant` yields the expected samples; `corpus_passes_real_promtool` runs the
//! real `promtool test rules` on the same files, so the expectations are Prometheus'.
//!
//! `PROMQL_BLESS=1 cargo test -p argus-promql --test promtool_corpus corpus_matches_engine`
//! rewrites the `exp_samples` of every case from this engine's output (used to author
//! new cases; the promtool test then decides whether they are right).

use argus_model::time::parse_duration;
use argus_model::Labels;
use argus_promql::series_notation::{parse_input_series, parse_metric};
use argus_promql::{format_value, parse, Engine, MemStorage, Value};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
struct TestFile {
    #[serde(default)]
    evaluation_interval: Option<String>,
    tests: Vec<Group>,
}

#[derive(Deserialize)]
struct Group {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    input_series: Vec<InputSeries>,
    #[serde(default)]
    promql_expr_test: Vec<ExprTest>,
}

#[derive(Deserialize)]
struct InputSeries {
    series: String,
    values: String,
}

#[derive(Deserialize)]
struct ExprTest {
    expr: String,
    eval_time: String,
    #[serde(default)]
    exp_samples: Vec<ExpSample>,
}

#[derive(Deserialize)]
struct ExpSample {
    labels: String,
    value: f64,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/promtool")
}

fn corpus_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/promtool exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    v.sort();
    v
}

fn ms(d: &str) -> i64 {
    parse_duration(d)
        .unwrap_or_else(|e| panic!("bad duration {d:?}: {e}"))
        .as_millis() as i64
}

fn load(g: &Group) -> MemStorage {
    let interval = ms(g.interval.as_deref().unwrap_or("1m"));
    let mut st = MemStorage::new();
    for is in &g.input_series {
        let (labels, vals) = parse_input_series(&is.series, &is.values)
            .unwrap_or_else(|e| panic!("input series {:?}: {e}", is.series));
        for (i, v) in vals.into_iter().enumerate() {
            if let Some(v) = v {
                st.append(labels.clone(), i as i64 * interval, v).unwrap();
            }
        }
    }
    st
}

fn eval(st: &MemStorage, expr: &str, t: i64) -> Result<Vec<(Labels, f64)>, String> {
    let e = parse(expr).map_err(|e| e.to_string())?;
    let engine = Engine::new();
    let mut got = match engine.instant(&e, t, st).map_err(|e| e.to_string())? {
        Value::Vector(v) => v
            .into_iter()
            .map(|s| (s.labels, s.value))
            .collect::<Vec<_>>(),
        Value::Scalar(v) => vec![(Labels::new(), v)],
        other => return Err(format!("result is a {}", other.type_name())),
    };
    got.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(got)
}

fn yaml_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn yaml_float(v: f64) -> String {
    if v == f64::INFINITY {
        ".inf".into()
    } else if v == f64::NEG_INFINITY {
        "-.inf".into()
    } else if v.is_nan() {
        ".nan".into()
    } else {
        format_value(v)
    }
}

fn bless(path: &Path, f: &TestFile, results: &[Vec<Vec<(Labels, f64)>>]) {
    let mut o = String::new();
    o.push_str(
        "# promtool unit-test file: expectations verified by the real `promtool test rules`.\n",
    );
    if let Some(ei) = &f.evaluation_interval {
        o.push_str(&format!("evaluation_interval: {ei}\n"));
    }
    o.push_str("tests:\n");
    for (gi, g) in f.tests.iter().enumerate() {
        o.push_str(&format!(
            "  - interval: {}\n",
            g.interval.as_deref().unwrap_or("1m")
        ));
        if let Some(n) = &g.name {
            o.push_str(&format!("    name: {}\n", yaml_str(n)));
        }
        o.push_str("    input_series:\n");
        for is in &g.input_series {
            o.push_str(&format!(
                "      - series: {}\n        values: {}\n",
                yaml_str(&is.series),
                yaml_str(&is.values)
            ));
        }
        o.push_str("    promql_expr_test:\n");
        for (ti, t) in g.promql_expr_test.iter().enumerate() {
            o.push_str(&format!(
                "      - expr: {}\n        eval_time: {}\n",
                yaml_str(&t.expr),
                t.eval_time
            ));
            let r = &results[gi][ti];
            if r.is_empty() {
                o.push_str("        exp_samples: []\n");
            } else {
                o.push_str("        exp_samples:\n");
                for (l, v) in r {
                    o.push_str(&format!(
                        "          - labels: {}\n            value: {}\n",
                        yaml_str(&l.to_string()),
                        yaml_float(*v)
                    ));
                }
            }
        }
    }
    std::fs::write(path, o).unwrap();
}

#[test]
fn corpus_matches_engine() {
    let blessing = std::env::var("PROMQL_BLESS").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    let mut cases = 0;
    for path in corpus_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let f: TestFile =
            serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut results = Vec::new();
        for g in &f.tests {
            let st = load(g);
            let mut gr = Vec::new();
            for t in &g.promql_expr_test {
                cases += 1;
                let got = match eval(&st, &t.expr, ms(&t.eval_time)) {
                    Ok(g) => g,
                    Err(e) => {
                        failures.push(format!(
                            "{}: {:?} at {}: error {e}",
                            path.display(),
                            t.expr,
                            t.eval_time
                        ));
                        gr.push(Vec::new());
                        continue;
                    }
                };
                let mut exp: Vec<(Labels, f64)> = t
                    .exp_samples
                    .iter()
                    .map(|s| {
                        (
                            parse_metric(&s.labels).unwrap_or_else(|e| panic!("{e}")),
                            s.value,
                        )
                    })
                    .collect();
                exp.sort_by(|a, b| a.0.cmp(&b.0));
                let same = exp.len() == got.len()
                    && exp
                        .iter()
                        .zip(&got)
                        .all(|(a, b)| a.0 == b.0 && a.1.to_bits() == b.1.to_bits());
                if !same && !blessing {
                    let show = |v: &[(Labels, f64)]| {
                        v.iter()
                            .map(|(l, x)| format!("{l} {}", format_value(*x)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    failures.push(format!(
                        "{}: {:?} at {}\n    exp: {}\n    got: {}",
                        path.display(),
                        t.expr,
                        t.eval_time,
                        show(&exp),
                        show(&got)
                    ));
                }
                gr.push(got);
            }
            results.push(gr);
        }
        if blessing {
            bless(&path, &f, &results);
        }
    }
    assert!(cases >= 150, "corpus has only {cases} expression cases");
    assert!(
        failures.is_empty(),
        "{} of {cases} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus_passes_real_promtool() {
    let promtool = argus_testkit::tool("promtool");
    let files = corpus_files();
    assert!(!files.is_empty());
    let out = std::process::Command::new(promtool)
        .arg("test")
        .arg("rules")
        .args(&files)
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool test rules failed:\n{text}");
}
