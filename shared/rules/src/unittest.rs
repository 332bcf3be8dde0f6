//! The `promtool test rules` runner (cmd/promtool/unittest.go, 2.42) and the
//! `promtool check rules` checker, with promtool's output format.

use crate::eval::{eval_group, AlertState, EvalOptions, GroupState};
use crate::file::{load_rule_file, RuleGroup, RuleKind, Scalar};
use crate::format::{go_duration, model_duration};
use argus_model::Labels;
use argus_promql::{series_notation, Engine, MemStorage, Value as PValue};
use argus_template::gofmt::go_quote;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

fn de_null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitTestFile {
    #[serde(default, deserialize_with = "de_null_default")]
    rule_files: Vec<String>,
    #[serde(default)]
    evaluation_interval: Option<Scalar>,
    #[serde(default, deserialize_with = "de_null_default")]
    group_eval_order: Vec<String>,
    #[serde(default, deserialize_with = "de_null_default")]
    tests: Vec<TestGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestGroup {
    #[serde(default)]
    interval: Option<Scalar>,
    #[serde(default, deserialize_with = "de_null_default")]
    input_series: Vec<InputSeries>,
    #[serde(default, deserialize_with = "de_null_default")]
    alert_rule_test: Vec<AlertTestCase>,
    #[serde(default, deserialize_with = "de_null_default")]
    promql_expr_test: Vec<PromqlTestCase>,
    #[serde(default, deserialize_with = "de_null_default")]
    external_labels: BTreeMap<String, Scalar>,
    #[serde(default, deserialize_with = "de_null_default")]
    external_url: Scalar,
    #[serde(default, deserialize_with = "de_null_default")]
    name: Scalar,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    #[serde(default, deserialize_with = "de_null_default")]
    series: Scalar,
    #[serde(default, deserialize_with = "de_null_default")]
    values: Scalar,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct AlertTestCase {
    #[serde(default)]
    eval_time: Option<Scalar>,
    #[serde(default, deserialize_with = "de_null_default")]
    alertname: Scalar,
    #[serde(default, deserialize_with = "de_null_default")]
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct ExpAlert {
    #[serde(default, deserialize_with = "de_null_default")]
    exp_labels: BTreeMap<String, Scalar>,
    #[serde(default, deserialize_with = "de_null_default")]
    exp_annotations: BTreeMap<String, Scalar>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PromqlTestCase {
    #[serde(default, deserialize_with = "de_null_default")]
    expr: Scalar,
    #[serde(default)]
    eval_time: Option<Scalar>,
    #[serde(default, deserialize_with = "de_null_default")]
    exp_samples: Vec<ExpSample>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpSample {
    #[serde(default, deserialize_with = "de_null_default")]
    labels: Scalar,
    #[serde(default)]
    value: YamlFloat,
}

/// A YAML float as Go's yaml.v2 reads one into float64: numbers and `.nan`/`.inf`;
/// other strings (even `NaN`) are an unmarshal error, kept to be reported in order.
struct YamlFloat(Result<f64, String>);

impl Default for YamlFloat {
    fn default() -> Self {
        YamlFloat(Ok(0.0))
    }
}

impl<'de> Deserialize<'de> for YamlFloat {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = YamlFloat;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a float")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<YamlFloat, E> {
                Ok(YamlFloat(Ok(v)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<YamlFloat, E> {
                Ok(YamlFloat(Ok(v as f64)))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<YamlFloat, E> {
                Ok(YamlFloat(Ok(v as f64)))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<YamlFloat, E> {
                Ok(YamlFloat(Ok(0.0)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<YamlFloat, E> {
                let f = match v {
                    ".nan" | ".NaN" | ".NAN" => Ok(f64::NAN),
                    ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Ok(f64::INFINITY),
                    "-.inf" | "-.Inf" | "-.INF" => Ok(f64::NEG_INFINITY),
                    _ => Err(format!(
                        "yaml: unmarshal errors:\n  cannot unmarshal !!str `{v}` into float64"
                    )),
                };
                Ok(YamlFloat(f))
            }
        }
        d.deserialize_any(V)
    }
}

/// The outcome of one test file: promtool's error messages (empty = passed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileReport {
    pub errors: Vec<String>,
}

impl FileReport {
    pub fn passed(&self) -> bool {
        self.errors.is_empty()
    }

    /// Alert names of failed `alert_rule_test`s.
    pub fn failed_alertnames(&self) -> BTreeSet<String> {
        failed_names(&self.errors, "    alertname: ")
    }

    /// Expressions (Go-quoted) of failed `promql_expr_test`s.
    pub fn failed_exprs(&self) -> BTreeSet<String> {
        failed_names(&self.errors, "    expr: ")
    }
}

/// Extracts `alertname: X,` / `expr: "...",` subjects from promtool-style messages.
pub fn failed_names(errors: &[String], key: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for e in errors {
        for line in e.lines() {
            if let Some(rest) = line.strip_prefix(key) {
                if let Some(i) = rest.find(", time: ") {
                    out.insert(rest[..i].to_string());
                }
            }
        }
    }
    out
}

fn dur(s: &Option<Scalar>) -> Result<i64, String> {
    match s {
        None => Ok(0),
        Some(Scalar(v)) if v.is_empty() => Ok(0),
        Some(Scalar(v)) => argus_model::time::parse_duration(v)
            .map(|d| d.as_millis() as i64)
            .map_err(|e| format!("not a valid duration string: {v:?} ({e})")),
    }
}

/// YAML options matching Go's yaml decoders: `.nan`/`.inf` pass through, no snippets.
pub(crate) fn yaml_options() -> serde_saphyr::Options {
    let mut o = serde_saphyr::Options::default();
    o.non_finite_float_policy = serde_saphyr::NonFiniteFloatPolicy::PassThrough;
    o.with_snippet = false;
    o
}

/// serde-saphyr's error, first line only (the rest is a source snippet).
pub(crate) fn yaml_error(e: &str) -> String {
    let first = e
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    format!(
        "yaml: unmarshal errors:\n  {}",
        first.trim_start_matches("error: ")
    )
}

/// Runs one test file.
pub fn run_file(path: &Path) -> FileReport {
    FileReport {
        errors: run_file_inner(path),
    }
}

fn run_file_inner(path: &Path) -> Vec<String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return vec![format!("open {}: {e}", path.display())],
    };
    let file: UnitTestFile = match serde_saphyr::from_str_with_options(&text, yaml_options()) {
        Ok(f) => f,
        Err(e) => return vec![yaml_error(&e.to_string())],
    };
    let base = path.parent().unwrap_or(Path::new(""));
    let mut rule_files = Vec::new();
    for rf in &file.rule_files {
        let p = if rf.is_empty() || Path::new(rf).is_absolute() {
            PathBuf::from(rf)
        } else {
            base.join(rf)
        };
        rule_files.extend(glob(&p));
    }
    let eval_interval = match dur(&file.evaluation_interval) {
        Ok(0) => 60_000,
        Ok(d) => d,
        Err(e) => return vec![e],
    };
    let mut order: BTreeMap<String, usize> = BTreeMap::new();
    for (i, g) in file.group_eval_order.iter().enumerate() {
        if order.insert(g.clone(), i).is_some() {
            return vec![format!("group name repeated in evaluation order: {g}")];
        }
    }
    let mut errs = Vec::new();
    for tg in &file.tests {
        errs.extend(run_group(tg, eval_interval, &order, &rule_files));
    }
    errs
}

/// `filepath.Glob` for the patterns rule_files use (`*`, `?` in the last component).
fn glob(p: &Path) -> Vec<PathBuf> {
    let s = p.to_string_lossy();
    if !s.contains(['*', '?', '[']) {
        return if p.exists() {
            vec![p.to_path_buf()]
        } else {
            Vec::new()
        };
    }
    let dir = p.parent().unwrap_or(Path::new("."));
    let pat = p
        .file_name()
        .map(|f| f.to_string_lossy().to_string())
        .unwrap_or_default();
    let re = format!(
        "^{}$",
        regex::escape(&pat)
            .replace("\\*", "[^/]*")
            .replace("\\?", "[^/]")
            .replace("\\[", "[")
            .replace("\\]", "]")
    );
    let Ok(re) = regex::Regex::new(&re) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| re.is_match(&e.file_name().to_string_lossy()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

type Pairs = Vec<(String, String)>;
type LabelsAndAnnotations = Vec<(Pairs, Pairs)>;

fn pairs_string(p: &[(String, String)]) -> String {
    let inner: Vec<String> = p
        .iter()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect();
    format!("{{{}}}", inner.join(", "))
}

fn indent_lines(lines: &str, indent: &str) -> String {
    let n: Vec<&str> = lines.split('\n').collect();
    let mut out = String::new();
    for (i, l) in n.iter().enumerate() {
        if i > 0 {
            out.push_str(indent);
        }
        out.push_str(l);
        if i != n.len() - 1 {
            out.push('\n');
        }
    }
    out
}

fn la_string(la: &LabelsAndAnnotations) -> String {
    if la.is_empty() {
        return "[]".into();
    }
    let one = |(l, a): &(Pairs, Pairs)| {
        indent_lines(
            &format!(
                "\nLabels:{}\nAnnotations:{}",
                pairs_string(l),
                pairs_string(a)
            ),
            "  ",
        )
    };
    let mut s = format!("[\n0:{}", one(&la[0]));
    for (i, x) in la[1..].iter().enumerate() {
        s.push_str(&format!(",\n{}:{}", i + 1, one(x)));
    }
    s.push_str("\n]");
    s
}

/// `strconv.FormatFloat(v, 'E', -1, 64)`.
fn format_e(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let s = format!("{:E}", v);
    let (m, e) = s.split_once('E').unwrap_or((&s, "0"));
    let e: i32 = e.parse().unwrap_or(0);
    format!("{m}E{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
}

fn samples_string(s: &[(Labels, f64)]) -> String {
    if s.is_empty() {
        return "nil".into();
    }
    s.iter()
        .map(|(l, v)| {
            let p: Vec<(String, String)> = l
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            format!("{} {}", pairs_string(&p), format_e(*v))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn run_group(
    tg: &TestGroup,
    eval_interval: i64,
    order: &BTreeMap<String, usize>,
    rule_files: &[PathBuf],
) -> Vec<String> {
    let interval = match dur(&tg.interval) {
        Ok(d) => d,
        Err(e) => return vec![e],
    };
    // Input series (the lazy loader's "load <interval>" command): samples enter the
    // storage tick by tick (`WithSamplesTill`), so rules writing into an input series
    // collide exactly when promtool's do.
    let mut input: Vec<(i64, usize, f64)> = Vec::new();
    let mut input_labels: Vec<Labels> = Vec::new();
    for s in &tg.input_series {
        let (labels, values) = match series_notation::parse_input_series(&s.series.0, &s.values.0) {
            Ok(x) => x,
            Err(e) => return vec![e.to_string()],
        };
        let id = input_labels.len();
        input_labels.push(labels);
        for (i, v) in values.into_iter().enumerate() {
            if let Some(v) = v {
                input.push((i as i64 * interval, id, v));
            }
        }
    }
    // Stable: per series, samples stay in order (duplicates at interval 0: first wins).
    input.sort_by_key(|(t, _, _)| *t);
    let mut next_input = 0;
    let mut store = MemStorage::new();
    let mut load_till = |store: &mut MemStorage, ts: i64| {
        while next_input < input.len() && input[next_input].0 <= ts {
            let (t, id, v) = input[next_input];
            let _ = store.append(input_labels[id].clone(), t, v);
            next_input += 1;
        }
    };
    // Rule groups.
    let mut groups: Vec<RuleGroup> = Vec::new();
    for f in rule_files {
        match load_rule_file(f) {
            Ok(rf) => groups.extend(rf.groups),
            Err(es) => return es.into_iter().map(|e| e.to_string()).collect(),
        }
    }
    groups.sort_by_key(|g| order.get(&g.name).copied().unwrap_or(0));
    let mut states: Vec<GroupState> = groups.iter().map(|_| GroupState::default()).collect();
    let opts = EvalOptions {
        external_labels: Labels::from_pairs(
            tg.external_labels
                .iter()
                .map(|(k, v)| (k.clone(), v.0.clone())),
        ),
        external_url: tg.external_url.0.clone(),
        default_interval_ms: if interval > 0 {
            interval
        } else {
            eval_interval
        },
        engine: Engine {
            subquery_step_ms: eval_interval,
            ..Engine::default()
        },
        collect_series: false,
        ..EvalOptions::default()
    };
    // Alert tests by eval time.
    let mut alert_tests: BTreeMap<i64, Vec<&AlertTestCase>> = BTreeMap::new();
    let mut max_t = 0i64;
    for a in &tg.alert_rule_test {
        let t = match dur(&a.eval_time) {
            Ok(t) => t,
            Err(e) => return vec![e],
        };
        if a.alertname.0.is_empty() {
            let name = if tg.name.0.is_empty() {
                String::new()
            } else {
                format!(" (in TestGroup {})", tg.name.0)
            };
            return vec![format!(
                "an item under alert_rule_test misses required attribute alertname at eval_time {}{name}",
                model_duration(t)
            )];
        }
        max_t = max_t.max(t);
        alert_tests.entry(t).or_default().push(a);
    }
    let mut expr_times = Vec::new();
    for p in &tg.promql_expr_test {
        let t = match dur(&p.eval_time) {
            Ok(t) => t,
            Err(e) => return vec![e],
        };
        max_t = max_t.max(t);
        expr_times.push(t);
    }
    let alert_times: Vec<i64> = alert_tests.keys().copied().collect();
    let mut curr = 0;
    let mut errs = Vec::new();
    let mut ts = 0i64;
    while ts <= max_t {
        load_till(&mut store, ts);
        let mut eval_errs = Vec::new();
        for (g, st) in groups.iter().zip(states.iter_mut()) {
            // A fresh state per tick is never "not newer": ts strictly increases.
            if eval_group(g, st, ts, &mut store, &opts).is_err() {
                continue;
            }
            for (r, rs) in g.rules.iter().zip(&st.rules) {
                if let Some(e) = &rs.last_error {
                    eval_errs.push(format!(
                        "    rule: {}, time: {}, err: {e}",
                        r.name,
                        go_duration(ts)
                    ));
                }
            }
        }
        if !eval_errs.is_empty() {
            errs.extend(eval_errs);
            return errs;
        }
        while curr < alert_times.len()
            && ts <= alert_times[curr]
            && alert_times[curr] < ts + eval_interval
        {
            let t = alert_times[curr];
            let tests = &alert_tests[&t];
            let wanted: BTreeSet<&str> = tests.iter().map(|a| a.alertname.0.as_str()).collect();
            let mut got: BTreeMap<&str, LabelsAndAnnotations> = BTreeMap::new();
            for (g, st) in groups.iter().zip(&states) {
                for (r, rs) in g.rules.iter().zip(&st.rules) {
                    if r.kind != RuleKind::Alerting || !wanted.contains(r.name.as_str()) {
                        continue;
                    }
                    let entry = got.entry(r.name.as_str()).or_default();
                    for a in rs.active_alerts() {
                        if a.state == AlertState::Firing {
                            let l: Vec<(String, String)> = a
                                .labels
                                .iter()
                                .map(|(k, v)| (k.to_string(), v.to_string()))
                                .collect();
                            let mut an = a.annotations.clone();
                            an.sort();
                            entry.push((l, an));
                        }
                    }
                }
            }
            for tc in tests {
                let mut got_alerts = got
                    .get(tc.alertname.0.as_str())
                    .cloned()
                    .unwrap_or_default();
                let mut exp: LabelsAndAnnotations = tc
                    .exp_alerts
                    .iter()
                    .map(|a| {
                        let mut l: BTreeMap<String, String> = a
                            .exp_labels
                            .iter()
                            .map(|(k, v)| (k.clone(), v.0.clone()))
                            .collect();
                        l.insert("alertname".into(), tc.alertname.0.clone());
                        let an: Vec<(String, String)> = a
                            .exp_annotations
                            .iter()
                            .map(|(k, v)| (k.clone(), v.0.clone()))
                            .collect();
                        (l.into_iter().collect(), an)
                    })
                    .collect();
                got_alerts.sort();
                exp.sort();
                if exp != got_alerts {
                    let name = if tg.name.0.is_empty() {
                        String::new()
                    } else {
                        format!("    name: {},\n", tg.name.0)
                    };
                    errs.push(format!(
                        "{name}    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
                        tc.alertname.0,
                        model_duration(t),
                        indent_lines(&la_string(&exp), "            "),
                        indent_lines(&la_string(&got_alerts), "            ")
                    ));
                }
            }
            curr += 1;
        }
        ts += eval_interval;
    }
    // PromQL expression tests, against everything loaded and recorded.
    load_till(&mut store, max_t);
    'outer: for (p, &t) in tg.promql_expr_test.iter().zip(&expr_times) {
        let expr_q = go_quote(&p.expr.0);
        let got = argus_promql::parse(&p.expr.0)
            .map_err(|e| e.to_string())
            .and_then(|e| {
                opts.engine
                    .instant(&e, t, &store)
                    .map_err(|e| e.to_string())
            })
            .and_then(|v| match v {
                PValue::Vector(v) => Ok(v
                    .into_iter()
                    .map(|s| (s.labels, s.value))
                    .collect::<Vec<_>>()),
                PValue::Scalar(x) => Ok(vec![(Labels::new(), x)]),
                _ => Err("rule result is not a vector or scalar".to_string()),
            });
        let mut got = match got {
            Ok(g) => g,
            Err(e) => {
                errs.push(format!(
                    "    expr: {expr_q}, time: {}, err: {e}",
                    model_duration(t)
                ));
                continue;
            }
        };
        let mut exp = Vec::new();
        for s in &p.exp_samples {
            // No `labels` (or an empty string) is the empty label set, as promtool reads
            // it (`parser.ParseMetric("")`).
            let parsed = if s.labels.0.trim().is_empty() {
                Ok(Labels::new())
            } else {
                series_notation::parse_metric(&s.labels.0)
            };
            let l = match parsed {
                Ok(l) => l,
                Err(e) => {
                    errs.push(format!(
                        "    expr: {expr_q}, time: {}, err: labels {}: {e}",
                        model_duration(t),
                        go_quote(&s.labels.0)
                    ));
                    continue 'outer;
                }
            };
            let v = match &s.value.0 {
                Ok(v) => *v,
                Err(e) => {
                    errs.push(e.clone());
                    continue 'outer;
                }
            };
            exp.push((l, v));
        }
        exp.sort_by(|a, b| a.0.cmp(&b.0));
        got.sort_by(|a, b| a.0.cmp(&b.0));
        // reflect.DeepEqual: NaN never equals NaN.
        let equal =
            exp.len() == got.len() && exp.iter().zip(&got).all(|(a, b)| a.0 == b.0 && a.1 == b.1);
        if !equal {
            errs.push(format!(
                "    expr: {expr_q}, time: {},\n        exp: {}\n        got: {}",
                model_duration(t),
                samples_string(&exp),
                samples_string(&got)
            ));
        }
    }
    errs
}

/// Runs test files, writing promtool's output; true when all passed.
pub fn run_files(paths: &[PathBuf], out: &mut dyn Write) -> bool {
    let mut ok = true;
    for p in paths {
        let _ = writeln!(out, "Unit Testing:  {}", p.display());
        let r = run_file(p);
        if r.passed() {
            let _ = writeln!(out, "  SUCCESS");
        } else {
            ok = false;
            let _ = writeln!(out, "  FAILED:");
            for e in &r.errors {
                let _ = writeln!(out, "{e}");
                let _ = writeln!(out);
            }
        }
        let _ = writeln!(out);
    }
    ok
}

/// Checks rule files as `promtool check rules`; true when all are valid.
pub fn check_files(paths: &[PathBuf], out: &mut dyn Write) -> bool {
    let mut ok = true;
    for p in paths {
        let _ = writeln!(out, "Checking {}", p.display());
        match load_rule_file(p) {
            Ok(f) => {
                // promtool's default lint (`--lint=duplicate-rules`, not fatal): reported
                // as a failure of the file, but the exit code stays 0.
                let dups = f.duplicate_rules();
                if dups.is_empty() {
                    let _ = writeln!(out, "  SUCCESS: {} rules found", f.rule_count());
                } else {
                    let _ = writeln!(out, "  FAILED:");
                    let _ = writeln!(out, "lint error {} duplicate rule(s) found.", dups.len());
                    for (name, labels) in &dups {
                        let _ = writeln!(out, "Metric: {name}\nLabel(s):");
                        for (k, v) in labels {
                            let _ = writeln!(out, "\t{k}: {v}");
                        }
                    }
                    let _ = writeln!(out, "Might cause inconsistency while recording expressions");
                }
            }
            Err(es) => {
                ok = false;
                let _ = writeln!(out, "  FAILED:");
                for e in es {
                    let _ = writeln!(out, "{e}");
                }
            }
        }
        let _ = writeln!(out);
    }
    ok
}

#[cfg(test)]
mod corpus_fix_tests {
    use super::*;

    #[test]
    fn check_reports_the_duplicate_lint_like_promtool() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.yml");
        std::fs::write(
            &p,
            "groups:\n- name: a\n  rules:\n  - alert: A\n    expr: up\n    labels: {severity: page}\n  - alert: A\n    expr: down\n    labels: {severity: page}\n",
        )
        .unwrap();
        let mut out = Vec::new();
        assert!(
            check_files(std::slice::from_ref(&p), &mut out),
            "a lint finding keeps exit code 0"
        );
        let out = String::from_utf8(out).unwrap();
        assert_eq!(
            out,
            format!(
                "Checking {}\n  FAILED:\nlint error 1 duplicate rule(s) found.\nMetric: A\nLabel(s):\n\tseverity: page\nMight cause inconsistency while recording expressions\n\n",
                p.display()
            )
        );
    }

    #[test]
    fn exp_samples_without_labels_are_the_empty_label_set() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.yml");
        std::fs::write(
            &p,
            "tests:\n- interval: 1m\n  input_series:\n  - series: up\n    values: 1 2 3\n  promql_expr_test:\n  - expr: sum(up)\n    eval_time: 2m\n    exp_samples:\n    - value: 3\n  - expr: sum(up)\n    eval_time: 2m\n    exp_samples:\n    - labels: ''\n      value: 3\n",
        )
        .unwrap();
        let mut out = Vec::new();
        assert!(
            run_files(std::slice::from_ref(&p), &mut out),
            "{}",
            String::from_utf8_lossy(&out)
        );
        // And a wrong value still fails.
        std::fs::write(
            &p,
            std::fs::read_to_string(&p)
                .unwrap()
                .replace("value: 3\n  - expr", "value: 4\n  - expr"),
        )
        .unwrap();
        let mut out = Vec::new();
        assert!(!run_files(&[p], &mut out));
    }
}
