//! Prometheus' own PromQL test scripts, run against this engine.
//!
//! The scripts (`load`, `clear`, `eval instant at ...`, `eval_fail`, `eval_ordered`, and
//! at main `eval range from ... to ... step ...` with `expect` lines) are read from the
//! shared corpus (`../shared/corpus/promqltest/`, see its SOURCES.md; never copied into
//! this repository): `v2.42.0/*.test` from the tag (`promql/testdata`) and `*.test` from
//! main (`promql/promqltest/testdata`). The runner follows the reference
//! implementation (`promql/test.go` at v2.42.0, `promql/promqltest/test.go` at main):
//!
//! * lines are trimmed, `#` lines are blank; a blank line ends a command;
//! * `load <gap>`: series notation, sample `i` at `i * gap` from t=0;
//! * an instant eval runs at `<t>`, then again with `@ <t>` set on every selector and
//!   subquery (not inside a subquery) at `-10t, 0, t/5, t, 10t` (`-1s, 0, 1s` for t=0)
//!   unless the expression calls a function that is not step invariant; every one of
//!   those is also run as a range query from `t-1m` to `t+1m` step 1m and the point at
//!   `t` compared again (not for ordered cases);
//! * values compare with a relative epsilon of 1e-6 (`almostEqual`), NaN equals NaN;
//!   `{}` lines are the empty label set; a bare number expects a scalar;
//! * lookback 5m, subquery default step 1m.
//!
//! Every case is reported (file, cases, passed, failed, skipped with reason). The
//! expected outcome of every case that does not pass is in
//! `tests/promqltest-expectations.tsv`: the test fails on any case that fails or is
//! skipped without being listed (a regression) and on any listed case that now passes
//! (update the file). `PROMQLTEST_BLESS=1` rewrites the file from this run, keeping the
//! classification notes of entries that are still there.

use argus_model::time::parse_duration;
use argus_model::Labels;
use argus_promql::series_notation::{parse_series_desc, SeqValue};
use argus_promql::{parse, Engine, Expr, MatchOp, Matcher, MemStorage, PromqlError, Value};
use promql_parser::parser::{AtModifier, Expr as PExpr};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

// ---------------------------------------------------------------------------------------
// Parsing the script format.

#[derive(Debug, Clone)]
enum FailMatch {
    Any,
    Msg(String),
    Regex(String),
}

#[derive(Debug, Clone)]
enum Expected {
    Scalar(f64),
    String(String),
    /// Series lines: labels, values, position (1-based, for ordered checks).
    Series(Vec<(Labels, Vec<SeqValue>, usize)>),
}

#[derive(Debug, Clone)]
struct EvalCase {
    line: usize,
    expr: String,
    /// Instant: `start == end`, no step. Range: all three.
    start: i64,
    end: i64,
    step: Option<i64>,
    /// `expect range vector from .. to .. step ..` (main): an instant query at `end`
    /// returning a matrix, compared point by point from `start` by `step`.
    range_vector: Option<(i64, i64, i64)>,
    fail: Option<FailMatch>,
    ordered: bool,
    /// `expect warn|info` lines or `eval_warn|eval_info`: annotations are not produced
    /// by this engine, the values are still compared.
    annotations: bool,
    expected: Expected,
    /// Why the case cannot run here (native histograms in the expectation, ...).
    skip: Option<String>,
}

#[derive(Debug)]
enum Cmd {
    Clear,
    Load {
        line: usize,
        gap: i64,
        nhcb: bool,
        series: Vec<(Labels, Vec<SeqValue>)>,
        /// Series that cannot be loaded here, with the reason (native histograms,
        /// start timestamps).
        tainted: Vec<(String, String)>,
    },
    Eval(Box<EvalCase>),
}

fn dur(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('-') {
        return dur(rest).map(|d| -d);
    }
    parse_duration(s).map(|d| d.as_millis() as i64)
}

/// Go's `strconv.ParseInt(s, 0, 64)` then `ParseFloat`: what a bare number line is.
fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let int = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()
    } else if body.len() > 1 && body.starts_with('0') && body.bytes().all(|b| b.is_ascii_digit()) {
        i64::from_str_radix(&body[1..], 8).ok()
    } else if !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit()) {
        body.parse::<i64>().ok()
    } else {
        None
    };
    if let Some(n) = int {
        return Some(if neg { -(n as f64) } else { n as f64 });
    }
    let lower = body.to_ascii_lowercase();
    let v = match lower.as_str() {
        "inf" | "infinity" => Some(f64::INFINITY),
        "nan" => Some(f64::NAN),
        _ => {
            if body
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
                && body.bytes().any(|b| b.is_ascii_digit())
            {
                body.parse::<f64>().ok()
            } else {
                None
            }
        }
    }?;
    Some(if neg { -v } else { v })
}

fn split_first_word(l: &str) -> (&str, &str) {
    match l.find([' ', '\t']) {
        Some(i) => (&l[..i], l[i..].trim_start()),
        None => (l, ""),
    }
}

/// Parses `eval[_mod] instant [at <t>] <expr>` or `eval[_mod] range from <a> to <b>
/// step <s> <expr>`.
fn parse_eval_head(l: &str, line: usize) -> Result<EvalCase, String> {
    let (word, rest) = split_first_word(l);
    let modifier = word.strip_prefix("eval").unwrap_or("");
    let modifier = modifier.strip_prefix('_').unwrap_or(modifier);
    let (kind, rest) = split_first_word(rest);
    let mut c = EvalCase {
        line,
        expr: String::new(),
        start: 0,
        end: 0,
        step: None,
        range_vector: None,
        fail: None,
        ordered: false,
        annotations: false,
        expected: Expected::Series(Vec::new()),
        skip: None,
    };
    match kind {
        "instant" => {
            let (w, r) = split_first_word(rest);
            let (t, expr) = if w == "at" {
                let (t, e) = split_first_word(r);
                (dur(t)?, e)
            } else {
                (0, rest)
            };
            c.start = t;
            c.end = t;
            c.expr = expr.to_string();
        }
        "range" => {
            // from A to B step S EXPR
            let mut it = rest.split_whitespace();
            let (f, a, t, b, s, st) = (
                it.next(),
                it.next(),
                it.next(),
                it.next(),
                it.next(),
                it.next(),
            );
            if f != Some("from") || t != Some("to") || s != Some("step") {
                return Err(format!("line {line}: bad range eval {l:?}"));
            }
            c.start = dur(a.unwrap_or(""))?;
            c.end = dur(b.unwrap_or(""))?;
            c.step = Some(dur(st.unwrap_or(""))?);
            // The expression is everything after the sixth word.
            let mut r = rest;
            for _ in 0..6 {
                r = split_first_word(r).1;
            }
            c.expr = r.to_string();
        }
        _ => return Err(format!("line {line}: invalid evaluation command {l:?}")),
    }
    match modifier {
        "" => {}
        "fail" => c.fail = Some(FailMatch::Any),
        "ordered" => c.ordered = true,
        "warn" | "info" => c.annotations = true,
        m => return Err(format!("line {line}: unknown eval modifier {m:?}")),
    }
    Ok(c)
}

fn unquote(s: &str) -> Option<String> {
    let s = s.trim();
    if s.len() >= 2 && s.starts_with('`') && s.ends_with('`') {
        return Some(s[1..s.len() - 1].to_string());
    }
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        return serde_json::from_str::<String>(s).ok();
    }
    None
}

fn parse_script(text: &str) -> Result<Vec<Cmd>, String> {
    let lines: Vec<String> = text
        .split('\n')
        .map(|l| {
            let l = l.trim();
            if l.starts_with('#') {
                String::new()
            } else {
                l.to_string()
            }
        })
        .collect();
    let mut cmds = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = &lines[i];
        if l.is_empty() {
            i += 1;
            continue;
        }
        let (word, rest) = split_first_word(l);
        let word = word.to_ascii_lowercase();
        if word == "clear" {
            cmds.push(Cmd::Clear);
            i += 1;
        } else if word.starts_with("load") {
            let nhcb = word == "load_with_nhcb";
            let gap = dur(rest).map_err(|e| format!("line {}: {e}", i + 1))?;
            let line = i + 1;
            let mut series = Vec::new();
            let mut tainted = Vec::new();
            i += 1;
            while i < lines.len() && !lines[i].is_empty() {
                let d = &lines[i];
                let metric_part = d.split([' ', '\t']).next().unwrap_or("");
                if d.contains("{{") {
                    tainted.push((metric_of(d), "native histogram samples".to_string()));
                } else if metric_part.ends_with("@st") {
                    tainted.push((metric_of(d), "start timestamps (@st, 3.x)".to_string()));
                } else {
                    let (m, v) =
                        parse_series_desc(d).map_err(|e| format!("line {}: {e}", i + 1))?;
                    // A series defined twice in one load: the last definition wins
                    // (the reference keeps them in a map by label hash).
                    series.retain(|(l, _): &(Labels, Vec<SeqValue>)| *l != m);
                    series.push((m, v));
                }
                i += 1;
            }
            cmds.push(Cmd::Load {
                line,
                gap,
                nhcb,
                series,
                tainted,
            });
        } else if word.starts_with("eval") {
            let mut c = parse_eval_head(l, i + 1)?;
            let mut pos = 0;
            let mut series = Vec::new();
            let mut scalar = None;
            let mut string = None;
            i += 1;
            while i < lines.len() && !lines[i].is_empty() {
                let d = lines[i].as_str();
                i += 1;
                if c.fail.is_some() && d.starts_with("expected_fail_message") {
                    c.fail = Some(FailMatch::Msg(
                        d.trim_start_matches("expected_fail_message")
                            .trim()
                            .to_string(),
                    ));
                    break;
                }
                if c.fail.is_some() && d.starts_with("expected_fail_regexp") {
                    c.fail = Some(FailMatch::Regex(
                        d.trim_start_matches("expected_fail_regexp")
                            .trim()
                            .to_string(),
                    ));
                    break;
                }
                if let Some(r) = d.strip_prefix("expect range vector") {
                    let w: Vec<&str> = r.split_whitespace().collect();
                    if w.len() != 6 || w[0] != "from" || w[2] != "to" || w[4] != "step" {
                        return Err(format!("line {i}: bad {d:?}"));
                    }
                    let (a, b, s) = (dur(w[1])?, dur(w[3])?, dur(w[5])?);
                    c.range_vector = Some((a, b, s));
                    c.start = b;
                    c.end = b;
                    continue;
                }
                if let Some(r) = d.strip_prefix("expect string") {
                    string = Some(unquote(r).ok_or_else(|| format!("line {i}: bad {d:?}"))?);
                    continue;
                }
                if d.split(' ').next() == Some("expect") {
                    let body = d["expect".len()..].trim();
                    let (kind, rest) = split_first_word(body);
                    match kind {
                        "ordered" => c.ordered = true,
                        "fail" => {
                            let rest = rest.trim();
                            c.fail = Some(if let Some(m) = rest.strip_prefix("msg:") {
                                let m = m.trim();
                                FailMatch::Msg(unquote(m).unwrap_or_else(|| m.to_string()))
                            } else if let Some(m) = rest.strip_prefix("regex:") {
                                let m = m.trim();
                                FailMatch::Regex(unquote(m).unwrap_or_else(|| m.to_string()))
                            } else {
                                FailMatch::Any
                            });
                        }
                        "warn" | "info" => c.annotations = true,
                        "no_warn" | "no_info" => {}
                        k => return Err(format!("line {i}: unknown expectation {k:?}")),
                    }
                    continue;
                }
                pos += 1;
                if let Some(f) = parse_number(d) {
                    scalar = Some(f);
                    break;
                }
                if d.contains("{{") {
                    c.skip
                        .get_or_insert_with(|| "native histogram in the expected result".into());
                    continue;
                }
                let (m, v) = parse_series_desc(d).map_err(|e| format!("line {i}: {e}"))?;
                series.push((m, v, pos));
            }
            c.expected = if let Some(s) = string {
                Expected::String(s)
            } else if let Some(f) = scalar {
                Expected::Scalar(f)
            } else {
                Expected::Series(series)
            };
            cmds.push(Cmd::Eval(Box::new(c)));
        } else {
            return Err(format!("line {}: invalid command {l:?}", i + 1));
        }
    }
    Ok(cmds)
}

/// The metric part of a series line (`name{a="b"}` up to the first blank after the
/// closing brace).
fn metric_of(d: &str) -> String {
    let ws = d.find([' ', '\t']).unwrap_or(d.len());
    let end = match d.find('{') {
        Some(b) if b < ws => d[b..].find('}').map(|e| b + e + 1).unwrap_or(d.len()),
        _ => ws,
    };
    d[..end].trim().trim_end_matches("@st").to_string()
}

// ---------------------------------------------------------------------------------------
// Running.

/// Go's `almostEqual` (promql/test.go).
fn almost_equal(a: f64, b: f64) -> bool {
    const EPSILON: f64 = 0.000001;
    let min_normal = f64::from_bits(0x0010000000000000);
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || diff < min_normal {
        return diff < EPSILON * min_normal;
    }
    diff / (a.abs() + b.abs()) < EPSILON
}

const AT_UNSAFE: &[&str] = &[
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "time",
    "timestamp",
];

fn at_of(ms: i64) -> AtModifier {
    let t = if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms as u64)
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    };
    AtModifier::At(t)
}

/// Sets `@ ts` on every selector and subquery that is not inside a subquery (as
/// `atModifierTestCases`); returns whether the expression calls a step-variant function
/// outside subqueries.
fn set_at(e: &mut PExpr, ts: i64) -> bool {
    fn pin(at: &mut Option<AtModifier>, ts: i64) {
        // Go's `Timestamp == nil` is also true for `@ start()` / `@ end()`, and the
        // pinned timestamp then wins when the expression is printed and re-parsed.
        if !matches!(at, Some(AtModifier::At(_))) {
            *at = Some(at_of(ts));
        }
    }
    match e {
        PExpr::VectorSelector(vs) => {
            pin(&mut vs.at, ts);
            false
        }
        PExpr::MatrixSelector(ms) => {
            pin(&mut ms.vs.at, ts);
            false
        }
        PExpr::Subquery(sq) => {
            pin(&mut sq.at, ts);
            false
        }
        PExpr::Aggregate(a) => {
            let mut u = set_at(&mut a.expr, ts);
            if let Some(p) = a.param.as_mut() {
                u |= set_at(p, ts);
            }
            u
        }
        PExpr::Unary(u) => set_at(&mut u.expr, ts),
        PExpr::Binary(b) => {
            let l = set_at(&mut b.lhs, ts);
            let r = set_at(&mut b.rhs, ts);
            l || r
        }
        PExpr::Paren(p) => set_at(&mut p.expr, ts),
        PExpr::Call(c) => {
            let mut u = AT_UNSAFE.contains(&c.func.name);
            for a in c.args.args.iter_mut() {
                u |= set_at(a, ts);
            }
            u
        }
        PExpr::NumberLiteral(_) | PExpr::StringLiteral(_) | PExpr::Extension(_) => false,
    }
}

/// The matchers of every selector in `e` (to find out whether a case reads series
/// this runner could not load).
fn selectors(e: &PExpr, out: &mut Vec<Vec<Matcher>>) {
    fn vs_matchers(vs: &promql_parser::parser::VectorSelector) -> Vec<Matcher> {
        let mut m = vs.matchers.matchers.clone();
        if let Some(n) = &vs.name {
            m.push(Matcher::new(MatchOp::Equal, "__name__", n));
        }
        m
    }
    match e {
        PExpr::VectorSelector(vs) => out.push(vs_matchers(vs)),
        PExpr::MatrixSelector(ms) => out.push(vs_matchers(&ms.vs)),
        PExpr::Subquery(sq) => selectors(&sq.expr, out),
        PExpr::Aggregate(a) => {
            selectors(&a.expr, out);
            if let Some(p) = &a.param {
                selectors(p, out);
            }
        }
        PExpr::Unary(u) => selectors(&u.expr, out),
        PExpr::Binary(b) => {
            selectors(&b.lhs, out);
            selectors(&b.rhs, out);
        }
        PExpr::Paren(p) => selectors(&p.expr, out),
        PExpr::Call(c) => c.args.args.iter().for_each(|a| selectors(a, out)),
        _ => {}
    }
}

struct Env {
    storage: MemStorage,
    /// Series loaded elsewhere that this runner could not load (metric text, reason).
    tainted: Vec<(Labels, String)>,
}

impl Env {
    fn new() -> Self {
        Env {
            storage: MemStorage::new(),
            tainted: Vec::new(),
        }
    }

    fn taint_reason(&self, e: &PExpr) -> Option<String> {
        let mut sels = Vec::new();
        selectors(e, &mut sels);
        for (labels, why) in &self.tainted {
            for m in &sels {
                if m.iter()
                    .all(|m| m.is_match(labels.get(&m.name).unwrap_or("")))
                {
                    return Some(why.clone());
                }
            }
        }
        None
    }
}

#[derive(Debug, PartialEq, Eq, Clone, Copy, PartialOrd, Ord)]
enum Outcome {
    Pass,
    Fail,
    Skip,
}

struct CaseResult {
    line: usize,
    expr: String,
    outcome: Outcome,
    /// Failure message or skip reason.
    detail: String,
    annotations: bool,
}

fn value_of(v: &Value) -> String {
    match v {
        Value::Scalar(f) => format!("scalar {f}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Vector(v) => {
            let items: Vec<String> = v
                .iter()
                .map(|s| format!("{} {}", s.labels, s.value))
                .collect();
            format!("vector [{}]", items.join(", "))
        }
        Value::Matrix(m) => format!("matrix of {} series", m.len()),
    }
}

fn compare_vector(c: &EvalCase, got: &[(Labels, f64)], ordered: bool) -> Result<(), String> {
    let exp: &[(Labels, Vec<SeqValue>, usize)] = match &c.expected {
        Expected::Series(s) => s,
        Expected::Scalar(f) => {
            return Err(format!(
                "expected scalar {f}, got a vector of {}",
                got.len()
            ))
        }
        Expected::String(s) => return Err(format!("expected string {s:?}, got a vector")),
    };
    let mut seen = HashSet::new();
    for (i, (l, v)) in got.iter().enumerate() {
        let Some((_, vals, pos)) = exp.iter().rev().find(|(el, _, _)| el == l) else {
            return Err(format!("unexpected metric {l} in result, has value {v}"));
        };
        if ordered && *pos != i + 1 {
            return Err(format!(
                "expected metric {l} at position {pos} but was at {}",
                i + 1
            ));
        }
        let want = vals.first().copied().flatten().unwrap_or(f64::NAN);
        if vals.len() != 1 || !almost_equal(want, *v) {
            return Err(format!("expected {want} for {l} but got {v}"));
        }
        seen.insert(l.clone());
    }
    for (l, vals, _) in exp {
        if !seen.contains(l) {
            return Err(format!("expected metric {l} with {vals:?} not found"));
        }
    }
    Ok(())
}

fn compare_matrix(
    c: &EvalCase,
    got: &[argus_promql::Series],
    start: i64,
    end: i64,
    step: i64,
) -> Result<(), String> {
    let exp: &[(Labels, Vec<SeqValue>, usize)] = match &c.expected {
        Expected::Series(s) => s,
        Expected::Scalar(f) => return Err(format!("expected scalar {f}, got a matrix")),
        Expected::String(s) => return Err(format!("expected string {s:?}, got a matrix")),
    };
    for w in got.windows(2) {
        if w[0].labels > w[1].labels {
            return Err("matrix results should always be sorted by labels".into());
        }
    }
    let mut seen = HashSet::new();
    for s in got {
        let Some((_, vals, _)) = exp.iter().rev().find(|(el, _, _)| *el == s.labels) else {
            return Err(format!(
                "unexpected metric {} in result, has {:?}",
                s.labels, s.samples
            ));
        };
        let mut want = Vec::new();
        for (i, v) in vals.iter().enumerate() {
            let t = start + i as i64 * step;
            if t > end {
                return Err(format!(
                    "expected {} points for {}, but the range cannot return this many",
                    vals.len(),
                    s.labels
                ));
            }
            if let Some(v) = v {
                want.push((t, *v));
            }
        }
        if want.len() != s.samples.len() {
            return Err(format!(
                "expected {} points for {} ({want:?}), got {:?}",
                want.len(),
                s.labels,
                s.samples
            ));
        }
        for ((wt, wv), (gt, gv)) in want.iter().zip(&s.samples) {
            if wt != gt || !almost_equal(*wv, *gv) {
                return Err(format!(
                    "expected {wv}@{wt} for {}, got {gv}@{gt} (all: {:?})",
                    s.labels, s.samples
                ));
            }
        }
        seen.insert(s.labels.clone());
    }
    for (l, _, _) in exp {
        if !seen.contains(l) {
            return Err(format!("expected metric {l} not found"));
        }
    }
    Ok(())
}

fn fail_matches(f: &FailMatch, msg: &str) -> Result<(), String> {
    match f {
        FailMatch::Any => Ok(()),
        FailMatch::Msg(m) if m == msg => Ok(()),
        FailMatch::Regex(r) => match regex::Regex::new(r) {
            Ok(re) if re.is_match(msg) => Ok(()),
            _ => Err(format!("expected error matching {r:?}, got {msg:?}")),
        },
        FailMatch::Msg(m) => Err(format!("expected error {m:?}, got {msg:?}")),
    }
}

fn run_instant(
    engine: &Engine,
    st: &MemStorage,
    c: &EvalCase,
    e: &Expr,
    t: i64,
    label: &str,
) -> Result<(), String> {
    let res = engine.instant(e, t, st);
    let v = match (res, &c.fail) {
        (Err(err), Some(f)) => return fail_matches(f, &err.to_string()),
        (Err(err), None) => return Err(format!("{label} at {t}ms: error {err}")),
        (Ok(v), Some(_)) => {
            return Err(format!(
                "{label} at {t}ms: expected an error, got {}",
                value_of(&v)
            ))
        }
        (Ok(v), None) => v,
    };
    match &v {
        Value::Vector(vs) => {
            let got: Vec<(Labels, f64)> = vs.iter().map(|s| (s.labels.clone(), s.value)).collect();
            compare_vector(c, &got, c.ordered).map_err(|m| format!("{label} at {t}ms: {m}"))?;
        }
        Value::Scalar(f) => match &c.expected {
            Expected::Scalar(w) if almost_equal(*w, *f) => {}
            _ => return Err(format!("{label} at {t}ms: got scalar {f}")),
        },
        Value::String(s) => match &c.expected {
            Expected::String(w) if w == s => return Ok(()),
            _ => return Err(format!("{label} at {t}ms: got string {s:?}")),
        },
        Value::Matrix(m) => {
            let Some((a, b, s)) = c.range_vector else {
                return Err(format!(
                    "{label} at {t}ms: received range result on instant evaluation"
                ));
            };
            let mut m = m.clone();
            m.sort_by(|x, y| x.labels.cmp(&y.labels));
            return compare_matrix(c, &m, a, b, s).map_err(|m| format!("{label} at {t}ms: {m}"));
        }
    }
    if c.ordered || c.range_vector.is_some() {
        return Ok(());
    }
    // The same query in range mode, checked at the middle step.
    let series = engine
        .range(e, t - 60_000, t + 60_000, 60_000, st)
        .map_err(|err| format!("{label} at {t}ms in range mode: error {err}"))?;
    let mut got = Vec::new();
    for s in &series {
        if let Some(&(_, v)) = s.samples.iter().find(|&&(pt, _)| pt == t) {
            got.push((s.labels.clone(), v));
        }
    }
    if let Value::Scalar(_) = v {
        let f = got.first().map(|x| x.1).unwrap_or(f64::NAN);
        match &c.expected {
            Expected::Scalar(w) if almost_equal(*w, f) => Ok(()),
            _ => Err(format!("{label} at {t}ms range mode: got scalar {f}")),
        }
    } else {
        compare_vector(c, &got, false).map_err(|m| format!("{label} at {t}ms range mode: {m}"))
    }
}

fn run_case(engine: &Engine, env: &Env, c: &EvalCase) -> (Outcome, String) {
    if let Some(why) = &c.skip {
        return (Outcome::Skip, why.clone());
    }
    let e = match parse(&c.expr) {
        Ok(e) => e,
        Err(PromqlError::Unsupported(m)) => return (Outcome::Skip, format!("unsupported: {m}")),
        Err(err) if c.fail.is_some() => {
            return match fail_matches(c.fail.as_ref().unwrap(), &err.to_string()) {
                Ok(()) => (Outcome::Pass, String::new()),
                Err(m) => (Outcome::Fail, m),
            }
        }
        Err(err) => return (Outcome::Fail, format!("parse: {err}")),
    };
    let r = if let Some(step) = c.step {
        match (
            engine.range(&e, c.start, c.end, step, &env.storage),
            &c.fail,
        ) {
            (Err(err), Some(f)) => fail_matches(f, &err.to_string()),
            (Err(err), None) => Err(format!("error {err}")),
            (Ok(_), Some(_)) => Err("expected an error, got a result".into()),
            (Ok(m), None) => compare_matrix(c, &m, c.start, c.end, step),
        }
    } else {
        let t = c.start;
        let mut r = run_instant(engine, &env.storage, c, &e, t, "query");
        if r.is_ok() {
            let mut pinned = e.clone();
            if !set_at(&mut pinned, t) {
                let times: Vec<i64> = if t == 0 {
                    vec![-1000, 0, 1000]
                } else {
                    vec![-10 * t, 0, t / 5, t, 10 * t]
                };
                for et in times {
                    r = run_instant(engine, &env.storage, c, &pinned, et, "with @ pinned");
                    if r.is_err() {
                        break;
                    }
                }
            }
        }
        r
    };
    match r {
        Ok(()) => (Outcome::Pass, String::new()),
        Err(m) => match env.taint_reason(&e) {
            Some(why) => (Outcome::Skip, why),
            None => (Outcome::Fail, m),
        },
    }
}

fn run_file(text: &str) -> Result<Vec<CaseResult>, String> {
    let cmds = parse_script(text)?;
    let engine = Engine::new();
    let mut env = Env::new();
    let mut out = Vec::new();
    for cmd in cmds {
        match cmd {
            Cmd::Clear => env = Env::new(),
            Cmd::Load {
                line,
                gap,
                nhcb,
                series,
                tainted,
            } => {
                for (m, why) in tainted {
                    let labels = argus_promql::series_notation::parse_metric(&m)
                        .map_err(|e| format!("line {line}: {e}"))?;
                    env.tainted.push((labels, why));
                }
                for (labels, vals) in series {
                    if nhcb {
                        // load_with_nhcb also loads each classic histogram as a native
                        // histogram with custom buckets under the base name.
                        if let Some(base) = labels.name().and_then(|n| n.strip_suffix("_bucket")) {
                            let mut l = labels.clone();
                            l.set("__name__", base);
                            l.remove("le");
                            env.tainted
                                .push((l, "native histograms with custom buckets".into()));
                        }
                    }
                    for (i, v) in vals.iter().enumerate() {
                        if let Some(v) = v {
                            env.storage
                                .append(labels.clone(), i as i64 * gap, *v)
                                .map_err(|e| format!("load at line {line}: {e}"))?;
                        }
                    }
                }
            }
            Cmd::Eval(c) => {
                let (outcome, detail) = run_case(&engine, &env, &c);
                out.push(CaseResult {
                    line: c.line,
                    expr: c.expr.clone(),
                    outcome,
                    detail,
                    annotations: c.annotations,
                });
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// The corpus and the expectations file.

fn corpus() -> Option<PathBuf> {
    let dir = argus_testkit::repo_root().join("../shared/corpus/promqltest");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "the corpus is missing at {} (CI=true: a missing corpus is a failure)",
            dir.display()
        );
    }
    eprintln!(
        "promqltest: NOT RUN: no corpus at {} (see the README's test section)",
        dir.display()
    );
    None
}

fn test_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut v = Vec::new();
    for (prefix, d) in [("v2.42.0/", dir.join("v2.42.0")), ("", dir.to_path_buf())] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "test"))
            .collect();
        files.sort();
        for p in files {
            let name = format!("{prefix}{}", p.file_name().unwrap().to_string_lossy());
            v.push((name, p));
        }
    }
    v
}

fn expectations_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/promqltest-expectations.tsv")
}

/// `case<TAB>status<TAB>note`, status `skip` or `fail`; the note of a `fail` starts
/// with its classification: `3.x:` (a Prometheus 3.x semantic change this engine does
/// not follow, by design) or `defect:` (an Argus defect not fixed yet).
fn read_expectations() -> BTreeMap<String, (String, String)> {
    let mut m = BTreeMap::new();
    let Ok(text) = std::fs::read_to_string(expectations_path()) else {
        return m;
    };
    for l in text.lines() {
        if l.starts_with('#') || l.trim().is_empty() {
            continue;
        }
        let mut it = l.splitn(3, '\t');
        let (k, s, n) = (it.next(), it.next(), it.next());
        if let (Some(k), Some(s)) = (k, s) {
            m.insert(k.to_string(), (s.to_string(), n.unwrap_or("").to_string()));
        }
    }
    m
}

#[test]
fn prometheus_promql_test_scripts() {
    let Some(dir) = corpus() else { return };
    let expectations = read_expectations();
    let bless = std::env::var("PROMQLTEST_BLESS").is_ok_and(|v| v == "1");
    let mut table = String::new();
    let _ = writeln!(
        table,
        "{:<34} {:>6} {:>6} {:>6} {:>7}  skipped (reason: count)",
        "file", "cases", "passed", "failed", "skipped"
    );
    let mut problems = Vec::new();
    let mut new_exp = BTreeMap::new();
    let mut totals: BTreeMap<&str, [usize; 4]> = BTreeMap::new();
    let mut listing = String::new();
    for (name, path) in test_files(&dir) {
        let text = std::fs::read_to_string(&path).unwrap();
        let results = match run_file(&text) {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("{name}: the file does not run: {e}"));
                continue;
            }
        };
        let (mut p, mut f, mut s) = (0, 0, 0);
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for r in &results {
            let key = format!("{name}:{}", r.line);
            let status = match r.outcome {
                Outcome::Pass => {
                    p += 1;
                    None
                }
                Outcome::Fail => {
                    f += 1;
                    Some("fail")
                }
                Outcome::Skip => {
                    s += 1;
                    *reasons.entry(r.detail.clone()).or_default() += 1;
                    Some("skip")
                }
            };
            let listed = expectations.get(&key);
            match (status, listed) {
                (None, None) => {}
                (None, Some((st, _))) => problems.push(format!(
                    "{key} is listed as {st} but passes now: remove it from the expectations file ({})",
                    r.expr
                )),
                (Some(st), Some((lst, _))) if lst == st => {}
                (Some(st), _) => problems.push(format!(
                    "{key}: {st} (not listed as such): {} -- {}",
                    r.expr, r.detail
                )),
            }
            if let Some(st) = status {
                let note = match (st, listed) {
                    (st, Some((lst, n))) if lst == st && st == "fail" => n.clone(),
                    ("fail", _) => format!("unclassified: {}", r.detail),
                    _ => r.detail.clone(),
                };
                if st == "fail" && !(note.starts_with("3.x:") || note.starts_with("defect:")) {
                    problems.push(format!(
                        "{key}: a failure must be classified as `3.x:` or `defect:` in the expectations file ({note})"
                    ));
                }
                new_exp.insert(key.clone(), (st.to_string(), note));
                let _ = writeln!(listing, "  {key} {st}: {} -- {}", r.expr, r.detail);
            }
        }
        let ann = results.iter().filter(|r| r.annotations).count();
        let rs: Vec<String> = reasons.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let _ = writeln!(
            table,
            "{:<34} {:>6} {:>6} {:>6} {:>7}  {}{}",
            name,
            results.len(),
            p,
            f,
            s,
            rs.join("; "),
            if ann > 0 {
                format!(" [{ann} with annotation expectations, values compared only]")
            } else {
                String::new()
            }
        );
        let kind = if name.starts_with("v2.42.0/") {
            "v2.42.0"
        } else {
            "main"
        };
        let t = totals.entry(kind).or_default();
        t[0] += results.len();
        t[1] += p;
        t[2] += f;
        t[3] += s;
    }
    for (k, t) in &totals {
        let _ = writeln!(
            table,
            "TOTAL {k}: {} cases, {} passed, {} failed, {} skipped",
            t[0], t[1], t[2], t[3]
        );
    }
    println!("{table}");
    println!("cases not passing:\n{listing}");
    if bless {
        let mut o = String::from(
            "# Expected outcome of every PromQL test-script case that does not pass (tests/promqltest.rs).\n\
             # case<TAB>status<TAB>note. status: skip (reason) or fail; a fail's note starts with\n\
             # `3.x:` (Prometheus 3.x semantics this 2.42-compatible engine does not follow) or\n\
             # `defect:` (an Argus defect not fixed yet). Regenerate: PROMQLTEST_BLESS=1 cargo test\n\
             # -p argus-promql --test promqltest (keeps the notes of failures still listed).\n",
        );
        for (k, (s, n)) in &new_exp {
            let _ = writeln!(o, "{k}\t{s}\t{n}");
        }
        std::fs::write(expectations_path(), o).unwrap();
        println!("wrote {}", expectations_path().display());
        return;
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) against tests/promqltest-expectations.tsv:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn runner_compares_like_prometheus() {
    // A wrong expectation must fail: the runner itself is checked on a tiny script.
    let ok = "load 1m\n  m{a=\"1\"} 1 2 3\n\neval instant at 2m m\n  m{a=\"1\"} 3\n";
    let r = run_file(ok).unwrap();
    assert_eq!(r[0].outcome, Outcome::Pass, "{}", r[0].detail);
    let wrong = "load 1m\n  m{a=\"1\"} 1 2 3\n\neval instant at 2m m\n  m{a=\"1\"} 4\n";
    assert_eq!(run_file(wrong).unwrap()[0].outcome, Outcome::Fail);
    let missing = "load 1m\n  m{a=\"1\"} 1 2 3\n\neval instant at 2m m\n";
    assert_eq!(run_file(missing).unwrap()[0].outcome, Outcome::Fail);
    let fail = "load 1m\n  m 1\n\neval_fail instant at 0m m\n";
    assert_eq!(run_file(fail).unwrap()[0].outcome, Outcome::Fail);
    let range = "load 1m\n  m 1+1x3\n\neval range from 0 to 2m step 1m m\n  m 1 2 3\n";
    assert_eq!(run_file(range).unwrap()[0].outcome, Outcome::Pass);
    let range_bad = "load 1m\n  m 1+1x3\n\neval range from 0 to 2m step 1m m\n  m 1 _ 3\n";
    assert_eq!(run_file(range_bad).unwrap()[0].outcome, Outcome::Fail);
    assert!(almost_equal(1.0, 1.0 + 1e-9));
    assert!(!almost_equal(1.0, 1.0001));
    assert!(almost_equal(f64::NAN, f64::NAN));
    assert_eq!(parse_number("0x10"), Some(16.0));
    assert_eq!(parse_number("-Inf"), Some(f64::NEG_INFINITY));
    assert_eq!(parse_number("m{a=\"b\"} 1"), None);
}
