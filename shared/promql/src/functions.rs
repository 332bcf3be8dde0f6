//! PromQL functions, as Prometheus 2.42's `promql/functions.go`.

use crate::aggregate::{quantile, valid_label_name};
use crate::engine::{check_unique, unwrap_parens, Ev, RangeArg, Sample, Value};
use crate::error::{eval_err, PromqlError};
use crate::gomath;
use crate::MatchOp;
use argus_model::Labels;
use chrono::{DateTime, Datelike, Timelike};
use promql_parser::parser::{Call, Expr};
use regex::Regex;

type Points = [(i64, f64)];

/// Go's math.Max (NaN wins, +Inf wins).
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

fn sgn(v: f64) -> f64 {
    if v < 0.0 {
        -1.0
    } else if v > 0.0 {
        1.0
    } else {
        v
    }
}

fn map_values(v: Vec<Sample>, f: impl Fn(f64) -> f64) -> Vec<Sample> {
    v.into_iter()
        .map(|s| Sample {
            labels: s.labels.without_name(),
            value: f(s.value),
        })
        .collect()
}

fn arg(c: &Call, i: usize) -> Result<&Expr, PromqlError> {
    match c.args.args.get(i) {
        Some(a) => Ok(a),
        None => eval_err(format!(
            "function {} expects an argument at position {}",
            c.func.name,
            i + 1
        )),
    }
}

/// Labels `absent()` / `absent_over_time()` derive from a selector's equality matchers.
fn absent_labels(e: &Expr) -> Labels {
    let vs = match e {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::new(),
    };
    let mut out = Labels::new();
    let mut empty: Vec<String> = Vec::new();
    for m in crate::engine::selector_matchers(vs) {
        if m.name == "__name__" {
            continue;
        }
        if matches!(m.op, MatchOp::Equal) && out.get(&m.name).is_none() {
            out.set(&m.name, &m.value);
        } else {
            empty.push(m.name.clone());
        }
    }
    for n in empty {
        out.remove(&n);
    }
    out
}

/// Prometheus' `extrapolatedRate`.
fn extrapolated_rate(pts: &Points, ra: &RangeArg, is_counter: bool, is_rate: bool) -> Option<f64> {
    if pts.len() < 2 {
        return None;
    }
    let (first_t, first_v) = pts[0];
    let (last_t, last_v) = pts[pts.len() - 1];
    let mut result = last_v - first_v;
    if is_counter {
        let mut last = 0.0;
        for &(_, v) in pts {
            if v < last {
                result += last;
            }
            last = v;
        }
    }
    let mut to_start = (first_t - ra.start) as f64 / 1000.0;
    let to_end = (ra.end - last_t) as f64 / 1000.0;
    let sampled = (last_t - first_t) as f64 / 1000.0;
    let avg_between = sampled / (pts.len() - 1) as f64;
    if is_counter && result > 0.0 && first_v >= 0.0 {
        let to_zero = sampled * (first_v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = avg_between * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        avg_between / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        avg_between / 2.0
    };
    let mut factor = interval / sampled;
    if is_rate {
        factor /= ra.range_ms() as f64 / 1000.0;
    }
    Some(result * factor)
}

/// Prometheus' `instantValue` (irate / idelta).
fn instant_value(pts: &Points, is_rate: bool) -> Option<f64> {
    if pts.len() < 2 {
        return None;
    }
    let (lt, lv) = pts[pts.len() - 1];
    let (pt, pv) = pts[pts.len() - 2];
    let mut r = if is_rate && lv < pv { lv } else { lv - pv };
    let interval = lt - pt;
    if interval == 0 {
        return None;
    }
    if is_rate {
        r /= interval as f64 / 1000.0;
    }
    Some(r)
}

/// Prometheus' `linearRegression` (slope, intercept at `intercept_t`), with Kahan sums.
fn linear_regression(pts: &Points, intercept_t: i64) -> (f64, f64) {
    let mut n = 0.0;
    let (mut sum_x, mut c_x, mut sum_y, mut c_y) = (0.0, 0.0, 0.0, 0.0);
    let (mut sum_xy, mut c_xy, mut sum_x2, mut c_x2) = (0.0, 0.0, 0.0, 0.0);
    let init_y = pts[0].1;
    let mut const_y = true;
    for (i, &(t, v)) in pts.iter().enumerate() {
        if const_y && i > 0 && v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (t - intercept_t) as f64 / 1e3;
        (sum_x, c_x) = kahan_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_inc(v, sum_y, c_y);
        (sum_xy, c_xy) = kahan_inc(x * v, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_inc(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let (sum_x, sum_y, sum_xy, sum_x2) = (sum_x + c_x, sum_y + c_y, sum_xy + c_xy, sum_x2 + c_x2);
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

fn holt_winters(pts: &Points, sf: f64, tf: f64) -> Option<f64> {
    let l = pts.len();
    if l < 2 {
        return None;
    }
    let (mut s0, mut s1) = (0.0, pts[0].1);
    let mut b = pts[1].1 - pts[0].1;
    for (i, &(_, v)) in pts.iter().enumerate().skip(1) {
        let x = sf * v;
        if i - 1 != 0 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Some(s1)
}

/// Kahan–Neumaier summation step (Prometheus' `kahanSumInc`).
fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

fn sum_over_time(pts: &Points) -> f64 {
    let (mut sum, mut c) = (0.0, 0.0);
    for &(_, v) in pts {
        (sum, c) = kahan_inc(v, sum, c);
    }
    if sum.is_infinite() {
        sum
    } else {
        sum + c
    }
}

fn avg_over_time(pts: &Points) -> f64 {
    let (mut mean, mut count, mut c) = (0.0f64, 0.0, 0.0);
    for &(_, v) in pts {
        count += 1.0;
        if mean.is_infinite() {
            if v.is_infinite() && (mean > 0.0) == (v > 0.0) {
                continue;
            }
            if !v.is_infinite() && !v.is_nan() {
                continue;
            }
        }
        (mean, c) = kahan_inc(v / count - mean / count, mean, c);
    }
    if mean.is_infinite() {
        mean
    } else {
        mean + c
    }
}

fn stdvar_over_time(pts: &Points) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(_, v) in pts {
        count += 1.0;
        let delta = v - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// Applies `f` to each series of a range argument; the output drops the metric name
/// unless `keep_name`.
fn over_range(
    ra: RangeArg,
    keep_name: bool,
    mut f: impl FnMut(&Points, &RangeArg) -> Option<f64>,
) -> Result<Vec<Sample>, PromqlError> {
    let mut out = Vec::with_capacity(ra.series.len());
    for s in &ra.series {
        if let Some(v) = f(&s.samples, &ra) {
            let labels = if keep_name {
                s.labels.clone()
            } else {
                s.labels.without_name()
            };
            out.push(Sample { labels, value: v });
        }
    }
    check_unique(&out)?;
    Ok(out)
}

fn date_fn(
    ev: &Ev,
    c: &Call,
    ts: i64,
    f: fn(DateTime<chrono::Utc>) -> f64,
) -> Result<Vec<Sample>, PromqlError> {
    let input = if c.args.args.is_empty() {
        vec![Sample {
            labels: Labels::new(),
            value: ts as f64 / 1000.0,
        }]
    } else {
        ev.eval_vector(arg(c, 0)?, ts)?
    };
    Ok(map_values(input, |v| {
        if !v.is_finite() {
            return f64::NAN;
        }
        match DateTime::from_timestamp(v.trunc() as i64, 0) {
            Some(t) => f(t),
            None => f64::NAN,
        }
    }))
}

fn days_in_month(t: DateTime<chrono::Utc>) -> f64 {
    let (y, m) = (t.year(), t.month());
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    match (
        chrono::NaiveDate::from_ymd_opt(y, m, 1),
        chrono::NaiveDate::from_ymd_opt(ny, nm, 1),
    ) {
        (Some(a), Some(b)) => (b - a).num_days() as f64,
        _ => f64::NAN,
    }
}

struct Bucket {
    upper: f64,
    count: f64,
}

/// Prometheus' `bucketQuantile` for classic histograms.
fn bucket_quantile(q: f64, mut buckets: Vec<Bucket>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.upper.total_cmp(&b.upper));
    match buckets.last() {
        Some(b) if b.upper == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    // coalesce buckets with the same upper bound
    let mut co: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets {
        match co.last_mut() {
            Some(l) if l.upper == b.upper => l.count += b.count,
            _ => co.push(b),
        }
    }
    // ensure monotonic
    let mut max = f64::NEG_INFINITY;
    for b in co.iter_mut() {
        if b.count > max {
            max = b.count;
        } else if b.count < max {
            b.count = max;
        }
    }
    if co.len() < 2 {
        return f64::NAN;
    }
    let observations = co[co.len() - 1].count;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let n = co.len() - 1;
    let b = co[..n].partition_point(|x| x.count < rank);
    if b == n {
        return co[n - 1].upper;
    }
    if b == 0 && co[0].upper <= 0.0 {
        return co[0].upper;
    }
    let mut start = 0.0;
    let end = co[b].upper;
    let mut count = co[b].count;
    if b > 0 {
        start = co[b - 1].upper;
        count -= co[b - 1].count;
        rank -= co[b - 1].count;
    }
    start + (end - start) * (rank / count)
}

fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "+inf" | "inf" | "+infinity" | "infinity" => return Some(f64::INFINITY),
        "-inf" | "-infinity" => return Some(f64::NEG_INFINITY),
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    if t != s {
        return None;
    }
    s.parse::<f64>().ok()
}

fn histogram_quantile(q: f64, v: Vec<Sample>) -> Vec<Sample> {
    let mut idx: std::collections::HashMap<Labels, usize> = std::collections::HashMap::new();
    let mut groups: Vec<(Labels, Vec<Bucket>)> = Vec::new();
    for s in v {
        let Some(upper) = s.labels.get("le").and_then(parse_go_float) else {
            continue;
        };
        // Buckets group by every label but `le` (the metric name included, as 2.42);
        // the output drops the name too, so two histograms differing only by name
        // collide ("vector cannot contain metrics with the same labelset").
        let mut key = s.labels.clone();
        key.remove("le");
        let i = *idx.entry(key.clone()).or_insert_with(|| {
            groups.push((key.without_name(), Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push(Bucket {
            upper,
            count: s.value,
        });
    }
    groups
        .into_iter()
        .map(|(labels, b)| Sample {
            labels,
            value: bucket_quantile(q, b),
        })
        .collect()
}

fn anchored(re: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{re})$"))
}

fn label_replace(ev: &Ev, c: &Call, ts: i64) -> Result<Vec<Sample>, PromqlError> {
    let v = ev.eval_vector(arg(c, 0)?, ts)?;
    let dst = ev.eval_string(arg(c, 1)?, ts)?;
    let repl = ev.eval_string(arg(c, 2)?, ts)?;
    let src = ev.eval_string(arg(c, 3)?, ts)?;
    let re_s = ev.eval_string(arg(c, 4)?, ts)?;
    let re = anchored(&re_s).map_err(|_| {
        PromqlError::Eval(format!(
            "invalid regular expression in label_replace(): {re_s}"
        ))
    })?;
    if !valid_label_name(&dst) {
        return eval_err(format!(
            "invalid destination label name in label_replace(): {dst}"
        ));
    }
    let mut out = Vec::with_capacity(v.len());
    for mut s in v {
        let sv = s.labels.get(&src).unwrap_or("").to_string();
        if let Some(caps) = re.captures(&sv) {
            let mut res = String::new();
            caps.expand(&repl, &mut res);
            s.labels.set(&dst, &res);
        }
        out.push(s);
    }
    check_unique(&out)?;
    Ok(out)
}

fn label_join(ev: &Ev, c: &Call, ts: i64) -> Result<Vec<Sample>, PromqlError> {
    let v = ev.eval_vector(arg(c, 0)?, ts)?;
    let dst = ev.eval_string(arg(c, 1)?, ts)?;
    let sep = ev.eval_string(arg(c, 2)?, ts)?;
    let mut srcs = Vec::new();
    for i in 3..c.args.args.len() {
        let s = ev.eval_string(arg(c, i)?, ts)?;
        if !valid_label_name(&s) {
            return eval_err(format!("invalid source label name in label_join(): {s}"));
        }
        srcs.push(s);
    }
    if !valid_label_name(&dst) {
        return eval_err(format!(
            "invalid destination label name in label_join(): {dst}"
        ));
    }
    let mut out = Vec::with_capacity(v.len());
    for mut s in v {
        let joined = srcs
            .iter()
            .map(|n| s.labels.get(n).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(&sep);
        s.labels.set(&dst, &joined);
        out.push(s);
    }
    check_unique(&out)?;
    Ok(out)
}

fn sort_by_value(mut v: Vec<Sample>, desc: bool) -> Vec<Sample> {
    v.sort_by(|a, b| {
        use std::cmp::Ordering::*;
        match (a.value.is_nan(), b.value.is_nan()) {
            (true, true) => Equal,
            (true, false) => Greater,
            (false, true) => Less,
            _ => {
                let o = a.value.partial_cmp(&b.value).unwrap_or(Equal);
                if desc {
                    o.reverse()
                } else {
                    o
                }
            }
        }
    });
    v
}

/// Functions this engine evaluates (Prometheus 2.42 names): exactly the names [`call`]
/// and [`simple_range_fn`] match, which the test `supported_functions_are_the_match_arms` checks by reading
/// this file (`validate` refuses any other before evaluation starts).
pub(crate) const SUPPORTED_FUNCTIONS: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "count_over_time",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "days_in_month",
    "deg",
    "delta",
    "deriv",
    "exp",
    "floor",
    "histogram_quantile",
    "holt_winters",
    "hour",
    "idelta",
    "increase",
    "irate",
    "label_join",
    "label_replace",
    "last_over_time",
    "ln",
    "log10",
    "log2",
    "max_over_time",
    "min_over_time",
    "minute",
    "month",
    "pi",
    "predict_linear",
    "present_over_time",
    "quantile_over_time",
    "rad",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_desc",
    "sqrt",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "vector",
    "year",
];

/// A function over one range vector, evaluated by [`over_range`] per series.
pub(crate) type RangeFn = fn(&Points, &RangeArg) -> Option<f64>;

/// The functions whose only argument is a range vector: the function applied to one
/// series' window and whether the output keeps the metric name. The instant path
/// (`call`) and the range-query path over matrix selectors (`Ev::range_direct`) both
/// use this one table.
pub(crate) fn simple_range_fn(name: &str) -> Option<(bool, RangeFn)> {
    match name {
        "rate" => Some((false, |p, r| extrapolated_rate(p, r, true, true))),
        "increase" => Some((false, |p, r| extrapolated_rate(p, r, true, false))),
        "delta" => Some((false, |p, r| extrapolated_rate(p, r, false, false))),
        "irate" => Some((false, |p, _| instant_value(p, true))),
        "idelta" => Some((false, |p, _| instant_value(p, false))),
        "deriv" => Some((false, |p, _| {
            (p.len() >= 2).then(|| linear_regression(p, p[0].0).0)
        })),
        "resets" => Some((false, |p, _| {
            let mut n = 0.0;
            for w in p.windows(2) {
                if w[1].1 < w[0].1 {
                    n += 1.0;
                }
            }
            Some(n)
        })),
        "changes" => Some((false, |p, _| {
            let mut n = 0.0;
            for w in p.windows(2) {
                let (a, b) = (w[0].1, w[1].1);
                if a != b && !(a.is_nan() && b.is_nan()) {
                    n += 1.0;
                }
            }
            Some(n)
        })),
        "avg_over_time" => Some((false, |p, _| Some(avg_over_time(p)))),
        "sum_over_time" => Some((false, |p, _| Some(sum_over_time(p)))),
        "count_over_time" => Some((false, |p, _| Some(p.len() as f64))),
        "min_over_time" => Some((false, |p, _| {
            let mut m = p[0].1;
            for &(_, v) in p {
                if v < m || m.is_nan() {
                    m = v;
                }
            }
            Some(m)
        })),
        "max_over_time" => Some((false, |p, _| {
            let mut m = p[0].1;
            for &(_, v) in p {
                if v > m || m.is_nan() {
                    m = v;
                }
            }
            Some(m)
        })),
        "last_over_time" => Some((true, |p, _| p.last().map(|x| x.1))),
        "present_over_time" => Some((false, |_, _| Some(1.0))),
        "stddev_over_time" => Some((false, |p, _| Some(stdvar_over_time(p).sqrt()))),
        "stdvar_over_time" => Some((false, |p, _| Some(stdvar_over_time(p)))),
        _ => None,
    }
}

pub(crate) fn call(ev: &Ev, c: &Call, ts: i64) -> Result<Value, PromqlError> {
    let name = c.func.name;
    let vec = |i: usize| -> Result<Vec<Sample>, PromqlError> { ev.eval_vector(arg(c, i)?, ts) };
    let scalar = |i: usize| -> Result<f64, PromqlError> { ev.eval_scalar(arg(c, i)?, ts) };
    let range = |i: usize| -> Result<RangeArg, PromqlError> { ev.range_arg(arg(c, i)?, ts) };
    if let Some((keep_name, f)) = simple_range_fn(name) {
        return Ok(Value::Vector(over_range(range(0)?, keep_name, f)?));
    }
    let out = match name {
        "time" => return Ok(Value::Scalar(ts as f64 / 1000.0)),
        "pi" => return Ok(Value::Scalar(std::f64::consts::PI)),
        "scalar" => {
            let v = vec(0)?;
            return Ok(Value::Scalar(if v.len() == 1 {
                v[0].value
            } else {
                f64::NAN
            }));
        }
        "vector" => vec![Sample {
            labels: Labels::new(),
            value: scalar(0)?,
        }],
        "abs" => map_values(vec(0)?, f64::abs),
        "ceil" => map_values(vec(0)?, f64::ceil),
        "floor" => map_values(vec(0)?, f64::floor),
        "exp" => map_values(vec(0)?, f64::exp),
        "sqrt" => map_values(vec(0)?, f64::sqrt),
        "ln" => map_values(vec(0)?, gomath::ln),
        "log2" => map_values(vec(0)?, gomath::log2),
        "log10" => map_values(vec(0)?, gomath::log10),
        "sgn" => map_values(vec(0)?, sgn),
        "acos" => map_values(vec(0)?, gomath::acos),
        "acosh" => map_values(vec(0)?, f64::acosh),
        "asin" => map_values(vec(0)?, gomath::asin),
        "asinh" => map_values(vec(0)?, f64::asinh),
        "atan" => map_values(vec(0)?, gomath::atan),
        "atanh" => map_values(vec(0)?, f64::atanh),
        "cos" => map_values(vec(0)?, f64::cos),
        "cosh" => map_values(vec(0)?, f64::cosh),
        "sin" => map_values(vec(0)?, f64::sin),
        "sinh" => map_values(vec(0)?, f64::sinh),
        "tan" => map_values(vec(0)?, f64::tan),
        "tanh" => map_values(vec(0)?, f64::tanh),
        "deg" => map_values(vec(0)?, |v| v * 180.0 / std::f64::consts::PI),
        "rad" => map_values(vec(0)?, |v| v * std::f64::consts::PI / 180.0),
        "round" => {
            let to_nearest = if c.args.args.len() > 1 {
                scalar(1)?
            } else {
                1.0
            };
            let inv = 1.0 / to_nearest;
            map_values(vec(0)?, |v| (v * inv + 0.5).floor() / inv)
        }
        "clamp" => {
            let v = vec(0)?;
            let (min, max) = (scalar(1)?, scalar(2)?);
            if max < min {
                Vec::new()
            } else {
                map_values(v, |x| go_max(min, go_min(max, x)))
            }
        }
        "clamp_max" => {
            let max = scalar(1)?;
            map_values(vec(0)?, |x| go_min(max, x))
        }
        "clamp_min" => {
            let min = scalar(1)?;
            map_values(vec(0)?, |x| go_max(min, x))
        }
        "timestamp" => {
            let a = arg(c, 0)?;
            if let Expr::VectorSelector(vs) = unwrap_parens(a) {
                ev.instant_selector(vs, ts)
                    .into_iter()
                    .map(|(l, t, _)| Sample {
                        labels: l.without_name(),
                        value: t as f64 / 1000.0,
                    })
                    .collect()
            } else {
                map_values(vec(0)?, |_| ts as f64 / 1000.0)
            }
        }
        "sort" => return Ok(Value::Vector(sort_by_value(vec(0)?, false))),
        "sort_desc" => return Ok(Value::Vector(sort_by_value(vec(0)?, true))),
        "absent" => {
            if vec(0)?.is_empty() {
                vec![Sample {
                    labels: absent_labels(arg(c, 0)?),
                    value: 1.0,
                }]
            } else {
                Vec::new()
            }
        }
        "absent_over_time" => {
            let ra = range(0)?;
            if ra.series.iter().any(|s| !s.samples.is_empty()) {
                Vec::new()
            } else {
                vec![Sample {
                    labels: absent_labels(unwrap_parens(arg(c, 0)?)),
                    value: 1.0,
                }]
            }
        }
        "label_replace" => label_replace(ev, c, ts)?,
        "label_join" => label_join(ev, c, ts)?,
        "histogram_quantile" => {
            let q = scalar(0)?;
            histogram_quantile(q, vec(1)?)
        }
        "day_of_month" => date_fn(ev, c, ts, |t| t.day() as f64)?,
        "day_of_week" => date_fn(ev, c, ts, |t| t.weekday().num_days_from_sunday() as f64)?,
        "day_of_year" => date_fn(ev, c, ts, |t| t.ordinal() as f64)?,
        "days_in_month" => date_fn(ev, c, ts, days_in_month)?,
        "hour" => date_fn(ev, c, ts, |t| t.hour() as f64)?,
        "minute" => date_fn(ev, c, ts, |t| t.minute() as f64)?,
        "month" => date_fn(ev, c, ts, |t| t.month() as f64)?,
        "year" => date_fn(ev, c, ts, |t| t.year() as f64)?,
        "predict_linear" => {
            let d = scalar(1)?;
            over_range(range(0)?, false, |p, _| {
                (p.len() >= 2).then(|| {
                    let (slope, intercept) = linear_regression(p, ts);
                    intercept + slope * d
                })
            })?
        }
        "holt_winters" => {
            let sf = scalar(1)?;
            let tf = scalar(2)?;
            if sf <= 0.0 || sf >= 1.0 {
                return eval_err(format!(
                    "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
                ));
            }
            if tf <= 0.0 || tf >= 1.0 {
                return eval_err(format!(
                    "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
                ));
            }
            over_range(range(0)?, false, |p, _| holt_winters(p, sf, tf))?
        }
        "quantile_over_time" => {
            let q = scalar(0)?;
            over_range(range(1)?, false, |p, _| {
                let mut vals: Vec<f64> = p.iter().map(|x| x.1).collect();
                Some(quantile(q, &mut vals))
            })?
        }
        other => {
            return Err(PromqlError::Unsupported(format!(
                "function \"{other}\" is not supported"
            )))
        }
    };
    check_unique(&out)?;
    Ok(Value::Vector(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table and the `match` in [`call`] cannot drift: the arms are read from this
    /// file's source and must be the table, in any order.
    #[test]
    fn supported_functions_are_the_match_arms() {
        let src = include_str!("functions.rs");
        // The arms of `call`'s match and of `simple_range_fn`'s (the range functions
        // `call` hands over to it).
        let region = |from: &str, to: &str| {
            let start = src.find(from).expect(from);
            let end = start + src[start..].find(to).expect(to);
            &src[start..end]
        };
        let mut arms: Vec<&str> = [
            region("    let out = match name {", "        other => {"),
            region("pub(crate) fn simple_range_fn", "        _ => None,"),
        ]
        .iter()
        .flat_map(|r| r.lines())
        .filter_map(|l| {
            let l = l.strip_prefix("        \"")?;
            let (name, rest) = l.split_once('"')?;
            rest.starts_with(" =>").then_some(name)
        })
        .collect();
        arms.sort_unstable();
        let mut table = SUPPORTED_FUNCTIONS.to_vec();
        table.sort_unstable();
        assert_eq!(arms, table);
    }

    #[test]
    fn go_math_compat() {
        assert!(go_max(1.0, f64::NAN).is_nan());
        assert!(go_min(f64::NAN, 1.0).is_nan());
        assert_eq!(go_max(-0.0, 2.0), 2.0);
        // Kahan: 1e100 + 1 - 1e100 + 1 == 2 (as Prometheus' sum_over_time)
        assert_eq!(
            sum_over_time(&[(0, 1e100), (1, 1.0), (2, -1e100), (3, 1.0)]),
            2.0
        );
    }

    #[test]
    fn bucket_quantile_edges() {
        let b = |v: &[(f64, f64)]| {
            v.iter()
                .map(|&(upper, count)| Bucket { upper, count })
                .collect::<Vec<_>>()
        };
        assert!(
            bucket_quantile(0.5, b(&[(1.0, 1.0)])).is_nan(),
            "no +Inf bucket"
        );
        assert_eq!(
            bucket_quantile(0.5, b(&[(1.0, 5.0), (f64::INFINITY, 10.0)])),
            1.0
        );
        assert_eq!(
            bucket_quantile(0.5, b(&[(2.0, 10.0), (f64::INFINITY, 10.0)])),
            1.0
        );
        // non-monotonic counts are fixed up
        assert_eq!(
            bucket_quantile(0.5, b(&[(1.0, 10.0), (2.0, 5.0), (f64::INFINITY, 10.0)])),
            0.5
        );
        assert_eq!(bucket_quantile(-1.0, b(&[])), f64::NEG_INFINITY);
    }
}
