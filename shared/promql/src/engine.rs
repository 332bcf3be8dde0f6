//! The evaluator: instant and range queries over a [`Queryable`].

use crate::error::{eval_err, PromqlError};
use crate::storage::{Queryable, Series, SeriesRef};
use crate::{is_stale, MatchOp, Matcher};
use argus_model::Labels;
use promql_parser::parser::{AtModifier, Expr, Offset, SubqueryExpr, VectorSelector};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, UNIX_EPOCH};

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub value: f64,
}

/// The result of evaluating an expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(f64),
    Vector(Vec<Sample>),
    Matrix(Vec<Series>),
    String(String),
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar(_) => "scalar",
            Value::Vector(_) => "instant vector",
            Value::Matrix(_) => "range vector",
            Value::String(_) => "string",
        }
    }
}

/// The PromQL evaluator. Configuration only; evaluation itself is stateless.
#[derive(Debug, Clone)]
pub struct Engine {
    /// How far back an instant vector selector looks for a sample (Prometheus: 5m).
    pub lookback_ms: i64,
    /// Step of subqueries without an explicit resolution (Prometheus: the global
    /// evaluation interval, 1m by default).
    pub subquery_step_ms: i64,
}

impl Default for Engine {
    fn default() -> Self {
        Engine {
            lookback_ms: argus_model::time::LOOKBACK_DELTA_MS,
            subquery_step_ms: 60 * 1000,
        }
    }
}

impl Engine {
    pub fn new() -> Self {
        Self::default()
    }

    /// Evaluates `expr` at `ts_ms` (an instant query, as rule evaluation does).
    pub fn instant(
        &self,
        expr: &Expr,
        ts_ms: i64,
        q: &dyn Queryable,
    ) -> Result<Value, PromqlError> {
        let ev = Ev {
            lookback: self.lookback_ms,
            sub_step: self.subquery_step_ms,
            q,
            start: ts_ms,
            end: ts_ms,
            pre: HashMap::new(),
        };
        ev.eval(expr, ts_ms)
    }

    /// Evaluates `expr` at every `step_ms` from `start_ms` to `end_ms` (inclusive), as
    /// Prometheus' range queries: one series per output label set, sorted by labels.
    /// Scalars become a series without labels.
    pub fn range(
        &self,
        expr: &Expr,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        q: &dyn Queryable,
    ) -> Result<Vec<Series>, PromqlError> {
        if step_ms <= 0 {
            return eval_err("zero or negative query resolution step widths are not accepted");
        }
        if end_ms < start_ms {
            return eval_err("end timestamp must not be before start time");
        }
        if end_ms.saturating_sub(start_ms) / step_ms > MAX_RANGE_POINTS {
            return eval_err(format!(
                "exceeded maximum resolution of {MAX_RANGE_POINTS} points per timeseries. Try decreasing the query resolution (?step=XX)"
            ));
        }
        let ev = Ev {
            lookback: self.lookback_ms,
            sub_step: self.subquery_step_ms,
            q,
            start: start_ms,
            end: end_ms,
            pre: HashMap::new(),
        };
        let steps = step_times(start_ms, end_ms, step_ms);
        if let Some(mut out) = ev.range_direct(expr, &steps)? {
            out.sort_by(|a, b| a.labels.cmp(&b.labels));
            return Ok(out);
        }
        let mut ev = ev;
        let mut spans = Vec::new();
        ev.spans(expr, start_ms, end_ms, &mut spans);
        for (vs, from, to) in spans {
            let sel = ev.select_for_range(&selector_matchers(vs), from, to);
            ev.pre.insert(vs as *const VectorSelector, sel);
        }
        let acc = ev.eval_steps(expr, start_ms, end_ms, step_ms, |got| {
            format!(
                "invalid expression type \"{got}\" for range query, must be Scalar or instant Vector"
            )
        })?;
        let mut out = acc.into_series();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }
}

/// `start`, `start + step`, ... up to `end` (inclusive), as [`Ev::eval_steps`] walks them.
fn step_times(start: i64, end: i64, step: i64) -> Vec<i64> {
    let mut out = Vec::with_capacity(usize::try_from((end - start) / step + 1).unwrap_or(0));
    let mut t = start;
    while t <= end {
        out.push(t);
        let Some(next) = t.checked_add(step) else {
            break;
        };
        t = next;
    }
    out
}

/// Joins per-input-series results into output series: two input series that map to one
/// output label set are merged, and refused as Prometheus refuses them at the first
/// step where both have a value.
fn merge_outputs(parts: Vec<Series>) -> Result<Vec<Series>, PromqlError> {
    let mut idx: HashMap<Labels, usize> = HashMap::with_capacity(parts.len());
    let mut out: Vec<Series> = Vec::with_capacity(parts.len());
    for p in parts {
        if let Some(&i) = idx.get(&p.labels) {
            let a = std::mem::take(&mut out[i].samples);
            let mut merged = Vec::with_capacity(a.len() + p.samples.len());
            let (mut x, mut y) = (a.into_iter().peekable(), p.samples.into_iter().peekable());
            loop {
                match (x.peek(), y.peek()) {
                    (Some(&(ta, _)), Some(&(tb, _))) if ta == tb => {
                        return eval_err("vector cannot contain metrics with the same labelset");
                    }
                    (Some(&(ta, _)), Some(&(tb, _))) => {
                        merged.extend(if ta < tb { x.next() } else { y.next() });
                    }
                    (Some(_), None) => merged.extend(x.next()),
                    (None, Some(_)) => merged.extend(y.next()),
                    (None, None) => break,
                }
            }
            out[i].samples = merged;
        } else if !p.samples.is_empty() {
            idx.insert(p.labels.clone(), out.len());
            out.push(p);
        }
    }
    Ok(out)
}

/// Prometheus' limit on range-query points per series.
const MAX_RANGE_POINTS: i64 = 11_000;
/// Guard against subqueries that would evaluate their inner expression millions of times.
const MAX_SUBQUERY_STEPS: i64 = 1_000_000;

/// Collects per-step samples into series, refusing a label set twice at one step.
#[derive(Default)]
pub(crate) struct SeriesAcc {
    idx: HashMap<Labels, usize>,
    series: Vec<Series>,
}

impl SeriesAcc {
    pub(crate) fn push(&mut self, labels: Labels, t: i64, v: f64) -> Result<(), PromqlError> {
        if let Some(&i) = self.idx.get(&labels) {
            let s = &mut self.series[i];
            if s.samples.last().is_some_and(|&(lt, _)| lt == t) {
                return eval_err("vector cannot contain metrics with the same labelset");
            }
            s.samples.push((t, v));
        } else {
            self.idx.insert(labels.clone(), self.series.len());
            self.series.push(Series {
                labels,
                samples: vec![(t, v)],
            });
        }
        Ok(())
    }
    pub(crate) fn into_series(self) -> Vec<Series> {
        self.series
    }
}

/// A range-vector argument with the window it was selected for.
pub(crate) struct RangeArg {
    pub series: Vec<Series>,
    /// Window start and end (inclusive), ms.
    pub start: i64,
    pub end: i64,
}

impl RangeArg {
    pub fn range_ms(&self) -> i64 {
        self.end - self.start
    }
}

/// What [`Ev::select_for_range`] selected.
pub(crate) enum Selected<'a> {
    Borrowed(Vec<SeriesRef<'a>>),
    Owned(Vec<Series>),
}

impl Selected<'_> {
    fn iter(&self) -> Box<dyn Iterator<Item = SeriesRef<'_>> + '_> {
        match self {
            Selected::Borrowed(v) => Box::new(v.iter().copied()),
            Selected::Owned(v) => Box::new(v.iter().map(|s| SeriesRef {
                labels: &s.labels,
                samples: &s.samples,
            })),
        }
    }

    fn refs(&self) -> Vec<SeriesRef<'_>> {
        match self {
            Selected::Borrowed(v) => v.clone(),
            Selected::Owned(v) => v
                .iter()
                .map(|s| SeriesRef {
                    labels: &s.labels,
                    samples: &s.samples,
                })
                .collect(),
        }
    }
}

/// Evaluation context of one query.
pub(crate) struct Ev<'a> {
    pub lookback: i64,
    pub sub_step: i64,
    pub q: &'a dyn Queryable,
    /// Query start and end: what `@ start()` / `@ end()` resolve to.
    pub start: i64,
    pub end: i64,
    /// A range query's selections, made once for the whole query: each selector of the
    /// expression (keyed by its address in the tree) with the series it can see at any
    /// step. Steps then only cut windows out of them.
    pub pre: HashMap<*const VectorSelector, Selected<'a>>,
}

pub(crate) fn dur_ms(d: &Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => dur_ms(d),
        Some(Offset::Neg(d)) => dur_ms(d).saturating_neg(),
    }
}

pub(crate) fn check_unique(v: &[Sample]) -> Result<(), PromqlError> {
    if v.len() < 2 {
        return Ok(());
    }
    let mut seen = HashSet::with_capacity(v.len());
    for s in v {
        if !seen.insert(&s.labels) {
            return eval_err("vector cannot contain metrics with the same labelset");
        }
    }
    Ok(())
}

/// The label matchers of a selector, including the metric name.
pub(crate) fn selector_matchers(vs: &VectorSelector) -> Vec<Matcher> {
    let mut m = vs.matchers.matchers.clone();
    if let Some(n) = &vs.name {
        if !m
            .iter()
            .any(|x| x.name == "__name__" && matches!(x.op, MatchOp::Equal) && x.value == *n)
        {
            m.push(Matcher::new(MatchOp::Equal, "__name__", n));
        }
    }
    m
}

pub(crate) fn unwrap_parens(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

impl<'a> Ev<'a> {
    pub fn at_time(&self, at: &Option<AtModifier>, ts: i64) -> i64 {
        match at {
            None => ts,
            Some(AtModifier::Start) => self.start,
            Some(AtModifier::End) => self.end,
            Some(AtModifier::At(t)) => match t.duration_since(UNIX_EPOCH) {
                Ok(d) => dur_ms(&d),
                Err(e) => dur_ms(&e.duration()).saturating_neg(),
            },
        }
    }

    pub fn eval(&self, e: &Expr, ts: i64) -> Result<Value, PromqlError> {
        match e {
            Expr::NumberLiteral(n) => Ok(Value::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(Value::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, ts),
            Expr::Unary(u) => match self.eval(&u.expr, ts)? {
                Value::Scalar(v) => Ok(Value::Scalar(-v)),
                Value::Vector(vs) => {
                    let out: Vec<Sample> = vs
                        .into_iter()
                        .map(|s| Sample {
                            labels: s.labels.without_name(),
                            value: -s.value,
                        })
                        .collect();
                    check_unique(&out)?;
                    Ok(Value::Vector(out))
                }
                other => eval_err(format!(
                    "unary expression only allowed on scalar or instant vector, got {}",
                    other.type_name()
                )),
            },
            Expr::VectorSelector(vs) => Ok(Value::Vector(
                self.instant_selector(vs, ts)
                    .into_iter()
                    .map(|(labels, _, value)| Sample { labels, value })
                    .collect(),
            )),
            Expr::MatrixSelector(_) | Expr::Subquery(_) => {
                Ok(Value::Matrix(self.range_arg(e, ts)?.series))
            }
            Expr::Aggregate(a) => crate::aggregate::aggregate(self, a, ts),
            Expr::Binary(b) => crate::binary::binary(self, b, ts),
            Expr::Call(c) => crate::functions::call(self, c, ts),
            Expr::Extension(_) => Err(PromqlError::Unsupported(
                "extension expressions are not supported".into(),
            )),
        }
    }

    pub fn eval_vector(&self, e: &Expr, ts: i64) -> Result<Vec<Sample>, PromqlError> {
        match self.eval(e, ts)? {
            Value::Vector(v) => Ok(v),
            other => eval_err(format!(
                "expected instant vector, got {}",
                other.type_name()
            )),
        }
    }

    pub fn eval_scalar(&self, e: &Expr, ts: i64) -> Result<f64, PromqlError> {
        match self.eval(e, ts)? {
            Value::Scalar(v) => Ok(v),
            other => eval_err(format!("expected scalar, got {}", other.type_name())),
        }
    }

    pub fn eval_string(&self, e: &Expr, ts: i64) -> Result<String, PromqlError> {
        match self.eval(e, ts)? {
            Value::String(v) => Ok(v),
            other => eval_err(format!("expected string, got {}", other.type_name())),
        }
    }

    /// An instant vector selector: the latest non-stale sample within the lookback of
    /// each matching series, as (labels, sample time, value).
    pub fn instant_selector(&self, vs: &VectorSelector, ts: i64) -> Vec<(Labels, i64, f64)> {
        let t = self
            .at_time(&vs.at, ts)
            .saturating_sub(offset_ms(&vs.offset));
        let from = t.saturating_sub(self.lookback);
        let mut out = Vec::new();
        if let Some(pre) = self.pre.get(&(vs as *const VectorSelector)) {
            for s in pre.iter() {
                let i = s.samples.partition_point(|&(st, _)| st <= t);
                let Some(&(st, v)) = i.checked_sub(1).map(|j| &s.samples[j]) else {
                    continue;
                };
                if st < from || is_stale(v) {
                    continue;
                }
                out.push((s.labels.clone(), st, v));
            }
            return out;
        }
        let m = selector_matchers(vs);
        for s in self.q.select(&m, from, t) {
            // select is inclusive of both ends; take the last sample at or before t.
            let Some(&(st, v)) = s.samples.iter().rev().find(|&&(st, _)| st <= t) else {
                continue;
            };
            if st < from || is_stale(v) {
                continue;
            }
            out.push((s.labels, st, v));
        }
        out
    }

    /// Evaluates a range-vector expression (matrix selector or subquery, maybe in
    /// parentheses) at `ts`.
    pub fn range_arg(&self, e: &Expr, ts: i64) -> Result<RangeArg, PromqlError> {
        match unwrap_parens(e) {
            Expr::MatrixSelector(ms) => {
                let end = self
                    .at_time(&ms.vs.at, ts)
                    .saturating_sub(offset_ms(&ms.vs.offset));
                let start = end.saturating_sub(dur_ms(&ms.range));
                if let Some(pre) = self.pre.get(&(&ms.vs as *const VectorSelector)) {
                    let mut series = Vec::new();
                    for s in pre.iter() {
                        let lo = s.samples.partition_point(|&(t, _)| t < start);
                        let hi = s.samples.partition_point(|&(t, _)| t <= end);
                        let samples: Vec<(i64, f64)> = s.samples[lo.min(hi)..hi]
                            .iter()
                            .copied()
                            .filter(|&(_, v)| !is_stale(v))
                            .collect();
                        if !samples.is_empty() {
                            series.push(Series {
                                labels: s.labels.clone(),
                                samples,
                            });
                        }
                    }
                    return Ok(RangeArg { series, start, end });
                }
                let m = selector_matchers(&ms.vs);
                let mut series = self.q.select(&m, start, end);
                series.retain_mut(|s| {
                    s.samples
                        .retain(|&(t, v)| t >= start && t <= end && !is_stale(v));
                    !s.samples.is_empty()
                });
                Ok(RangeArg { series, start, end })
            }
            Expr::Subquery(sq) => self.subquery(sq, ts),
            other => eval_err(format!("expected a range vector, got {}", describe(other))),
        }
    }

    /// Evaluates `expr` at `start`, `start + step`, ... up to `end` (a range query or a
    /// subquery) into series; anything but a scalar or an instant vector is an error
    /// worded by `wrong_type` from the value's type name.
    fn eval_steps(
        &self,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
        wrong_type: impl Fn(&str) -> String,
    ) -> Result<SeriesAcc, PromqlError> {
        let mut acc = SeriesAcc::default();
        let mut t = start;
        while t <= end {
            match self.eval(expr, t)? {
                Value::Scalar(v) => acc.push(Labels::new(), t, v)?,
                Value::Vector(vs) => {
                    for s in vs {
                        acc.push(s.labels, t, s.value)?;
                    }
                }
                other => return eval_err(wrong_type(other.type_name())),
            }
            let Some(next) = t.checked_add(step) else {
                break;
            };
            t = next;
        }
        Ok(acc)
    }

    /// A range query over `steps` evaluated series by series instead of step by step,
    /// for the shapes where that gives the same answer: a plain vector selector, and a
    /// function of one range vector (`rate`, `*_over_time`, ...) over a matrix
    /// selector. As Prometheus's `rangeEval` does with its iterators over preloaded
    /// series, the selector is evaluated once over the whole span (one
    /// [`Queryable::select`]) and each series' samples are walked once with cursors
    /// that only move forward; labels are computed once per series, not per step.
    /// `None` for every other expression (evaluated step by step).
    pub(crate) fn range_direct(
        &self,
        expr: &Expr,
        steps: &[i64],
    ) -> Result<Option<Vec<Series>>, PromqlError> {
        let (Some(&first), Some(&last)) = (steps.first(), steps.last()) else {
            return Ok(None);
        };
        match unwrap_parens(expr) {
            Expr::VectorSelector(vs) => {
                let off = offset_ms(&vs.offset);
                let at = |t: i64| self.at_time(&vs.at, t).saturating_sub(off);
                // Evaluation times never decrease: with `@` they are all one time.
                let (lo, hi) = (at(first), at(last));
                let m = selector_matchers(vs);
                let selected = self.select_for_range(&m, lo.saturating_sub(self.lookback), hi);
                let mut parts = Vec::new();
                for s in selected.refs() {
                    let mut pts = Vec::with_capacity(steps.len().min(s.samples.len() * 2));
                    let mut i = 0; // samples[..i] are at or before the evaluation time
                    for &t in steps {
                        let tt = at(t);
                        while i < s.samples.len() && s.samples[i].0 <= tt {
                            i += 1;
                        }
                        let Some(&(st, v)) = i.checked_sub(1).map(|j| &s.samples[j]) else {
                            continue;
                        };
                        if st < tt.saturating_sub(self.lookback) || is_stale(v) {
                            continue;
                        }
                        pts.push((t, v));
                    }
                    parts.push(Series {
                        labels: s.labels.clone(),
                        samples: pts,
                    });
                }
                merge_outputs(parts).map(Some)
            }
            Expr::Call(c) if c.args.args.len() == 1 => {
                let Some((keep_name, f)) = crate::functions::simple_range_fn(c.func.name) else {
                    return Ok(None);
                };
                let Expr::MatrixSelector(ms) = unwrap_parens(&c.args.args[0]) else {
                    return Ok(None);
                };
                let off = offset_ms(&ms.vs.offset);
                let range = dur_ms(&ms.range);
                let at = |t: i64| self.at_time(&ms.vs.at, t).saturating_sub(off);
                let (lo, hi) = (at(first), at(last));
                let m = selector_matchers(&ms.vs);
                let mut parts = Vec::new();
                let mut buf: Vec<(i64, f64)> = Vec::new();
                let selected = self.select_for_range(&m, lo.saturating_sub(range), hi);
                for s in selected.refs() {
                    let mut pts = Vec::with_capacity(steps.len());
                    let (mut a, mut b) = (0, 0); // window: samples[a..b]
                    let n = s.samples.len();
                    for &t in steps {
                        let end = at(t);
                        let start = end.saturating_sub(range);
                        while a < n && s.samples[a].0 < start {
                            a += 1;
                        }
                        b = b.max(a);
                        while b < n && s.samples[b].0 <= end {
                            b += 1;
                        }
                        let mut w = &s.samples[a..b];
                        if w.iter().any(|&(_, v)| is_stale(v)) {
                            buf.clear();
                            buf.extend(w.iter().filter(|&&(_, v)| !is_stale(v)));
                            w = &buf;
                        }
                        if w.is_empty() {
                            continue;
                        }
                        let ra = RangeArg {
                            series: Vec::new(),
                            start,
                            end,
                        };
                        if let Some(v) = f(w, &ra) {
                            pts.push((t, v));
                        }
                    }
                    let labels = if keep_name {
                        s.labels.clone()
                    } else {
                        s.labels.without_name()
                    };
                    parts.push(Series {
                        labels,
                        samples: pts,
                    });
                }
                merge_outputs(parts).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Each selector node of `e` evaluated at times in `[s, e_]` (after the `@` and
    /// offsets above it), with the span of samples it can read there: the instant
    /// lookback or the range before its first evaluation time, up to its last.
    /// Subqueries widen the times to their own range.
    fn spans<'e>(
        &self,
        e: &'e Expr,
        s: i64,
        e_: i64,
        out: &mut Vec<(&'e VectorSelector, i64, i64)>,
    ) {
        let shifted = |at: &Option<AtModifier>, off: &Option<Offset>| {
            let o = offset_ms(off);
            let (a, b) = match at {
                None => (s, e_),
                Some(_) => {
                    let t = self.at_time(at, s);
                    (t, t)
                }
            };
            (a.saturating_sub(o), b.saturating_sub(o))
        };
        match e {
            Expr::VectorSelector(vs) => {
                let (a, b) = shifted(&vs.at, &vs.offset);
                out.push((vs, a.saturating_sub(self.lookback), b));
            }
            Expr::MatrixSelector(ms) => {
                let (a, b) = shifted(&ms.vs.at, &ms.vs.offset);
                out.push((&ms.vs, a.saturating_sub(dur_ms(&ms.range)), b));
            }
            Expr::Subquery(sq) => {
                let (a, b) = shifted(&sq.at, &sq.offset);
                self.spans(&sq.expr, a.saturating_sub(dur_ms(&sq.range)), b, out);
            }
            Expr::Aggregate(a) => {
                self.spans(&a.expr, s, e_, out);
                if let Some(p) = &a.param {
                    self.spans(p, s, e_, out);
                }
            }
            Expr::Unary(u) => self.spans(&u.expr, s, e_, out),
            Expr::Binary(b) => {
                self.spans(&b.lhs, s, e_, out);
                self.spans(&b.rhs, s, e_, out);
            }
            Expr::Paren(p) => self.spans(&p.expr, s, e_, out),
            Expr::Call(c) => {
                for a in &c.args.args {
                    self.spans(a, s, e_, out);
                }
            }
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
    }

    /// One selection for a whole range query: borrowed from the storage when it can,
    /// else copied once.
    fn select_for_range(&self, m: &[Matcher], from: i64, to: i64) -> Selected<'a> {
        match self.q.select_borrowed(m, from, to) {
            Some(refs) => Selected::Borrowed(refs),
            None => Selected::Owned(self.q.select(m, from, to)),
        }
    }

    fn subquery(&self, sq: &SubqueryExpr, ts: i64) -> Result<RangeArg, PromqlError> {
        let end = self
            .at_time(&sq.at, ts)
            .saturating_sub(offset_ms(&sq.offset));
        let range = dur_ms(&sq.range);
        let step = match &sq.step {
            Some(s) => dur_ms(s),
            None => self.sub_step,
        };
        if step <= 0 {
            return eval_err("subquery step must be positive");
        }
        if range / step > MAX_SUBQUERY_STEPS {
            return eval_err(format!(
                "subquery [{}ms:{step}ms] would evaluate more than {MAX_SUBQUERY_STEPS} steps",
                range
            ));
        }
        let raw_start = end.saturating_sub(range);
        // First timestamp >= raw_start that is a multiple of step (Go integer division).
        let mut t = step * (raw_start / step);
        if t < raw_start {
            t += step;
        }
        let acc = self.eval_steps(&sq.expr, t, end, step, |got| {
            format!("subquery is only allowed on instant vector, got {got}")
        })?;
        Ok(RangeArg {
            series: acc.into_series(),
            start: raw_start,
            end,
        })
    }
}

fn describe(e: &Expr) -> &'static str {
    match e {
        Expr::NumberLiteral(_) => "scalar",
        Expr::StringLiteral(_) => "string",
        _ => "instant vector",
    }
}
