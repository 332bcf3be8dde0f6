//! What a query needs from storage: its selectors and the time span they read
//! (Prometheus' `FindMinMaxTime`: offsets, `@`, ranges, subqueries and the lookback).

use argus_promql::{Expr, MatchOp, Matcher};
use promql_parser::parser::{AtModifier, Offset, VectorSelector};
use std::time::{Duration, UNIX_EPOCH};

/// The selectors of an expression and the span `[start_ms, end_ms]` they read.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub selectors: Vec<Vec<Matcher>>,
    pub start_ms: i64,
    pub end_ms: i64,
}

fn ms(d: &Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn offset(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => ms(d),
        Some(Offset::Neg(d)) => ms(d).saturating_neg(),
    }
}

/// The fixed time of an `@` modifier within a query over `[qs, qe]`.
fn at_time(at: &Option<AtModifier>, qs: i64, qe: i64) -> Option<i64> {
    match at {
        None => None,
        Some(AtModifier::Start) => Some(qs),
        Some(AtModifier::End) => Some(qe),
        Some(AtModifier::At(t)) => Some(match t.duration_since(UNIX_EPOCH) {
            Ok(d) => ms(&d),
            Err(e) => ms(&e.duration()).saturating_neg(),
        }),
    }
}

/// A selector's matchers with its metric name as a matcher.
pub fn matchers_of(vs: &VectorSelector) -> Vec<Matcher> {
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

struct Walk {
    qs: i64,
    qe: i64,
    lookback: i64,
    sub_step: i64,
    selectors: Vec<Vec<Matcher>>,
    min: i64,
    max: i64,
}

impl Walk {
    fn note(&mut self, m: Vec<Matcher>, lo: i64, hi: i64) {
        if !self.selectors.contains(&m) {
            self.selectors.push(m);
        }
        self.min = self.min.min(lo);
        self.max = self.max.max(hi);
    }

    /// `lo..hi`: the evaluation times of `e` (before its own modifiers).
    fn expr(&mut self, e: &Expr, lo: i64, hi: i64) {
        match e {
            Expr::VectorSelector(vs) => self.selector(vs, 0, lo, hi),
            Expr::MatrixSelector(m) => self.selector(&m.vs, ms(&m.range), lo, hi),
            Expr::Subquery(sq) => {
                let (lo, hi) = match at_time(&sq.at, self.qs, self.qe) {
                    Some(t) => (t, t),
                    None => (lo, hi),
                };
                let off = offset(&sq.offset);
                let step = sq.step.as_ref().map(ms).unwrap_or(self.sub_step).max(1);
                // The inner expression runs at step multiples in
                // [lo - off - range, hi - off].
                let inner_lo = lo
                    .saturating_sub(off)
                    .saturating_sub(ms(&sq.range))
                    .saturating_sub(step);
                self.expr(&sq.expr, inner_lo, hi.saturating_sub(off));
            }
            Expr::Aggregate(a) => {
                self.expr(&a.expr, lo, hi);
                if let Some(p) = &a.param {
                    self.expr(p, lo, hi);
                }
            }
            Expr::Unary(u) => self.expr(&u.expr, lo, hi),
            Expr::Binary(b) => {
                self.expr(&b.lhs, lo, hi);
                self.expr(&b.rhs, lo, hi);
            }
            Expr::Paren(p) => self.expr(&p.expr, lo, hi),
            Expr::Call(c) => {
                for a in &c.args.args {
                    self.expr(a, lo, hi);
                }
            }
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
    }

    fn selector(&mut self, vs: &VectorSelector, range: i64, lo: i64, hi: i64) {
        let (lo, hi) = match at_time(&vs.at, self.qs, self.qe) {
            Some(t) => (t, t),
            None => (lo, hi),
        };
        let off = offset(&vs.offset);
        // Range selectors read `range` back; instant selectors the lookback.
        let back = if range > 0 { range } else { self.lookback };
        self.note(
            matchers_of(vs),
            lo.saturating_sub(off).saturating_sub(back),
            hi.saturating_sub(off),
        );
    }
}

/// The plan of `expr` evaluated at every step of `[start_ms, end_ms]`.
pub fn plan(expr: &Expr, start_ms: i64, end_ms: i64, lookback_ms: i64, sub_step_ms: i64) -> Plan {
    let mut w = Walk {
        qs: start_ms,
        qe: end_ms,
        lookback: lookback_ms,
        sub_step: sub_step_ms,
        selectors: Vec::new(),
        min: i64::MAX,
        max: i64::MIN,
    };
    w.expr(expr, start_ms, end_ms);
    if w.selectors.is_empty() {
        return Plan {
            selectors: Vec::new(),
            start_ms,
            end_ms,
        };
    }
    Plan {
        selectors: w.selectors,
        start_ms: w.min,
        end_ms: w.max,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(q: &str, s: i64, e: i64) -> Plan {
        plan(&argus_promql::parse(q).unwrap(), s, e, 300_000, 60_000)
    }

    #[test]
    fn spans_follow_offsets_ranges_at_and_subqueries() {
        let t = 10_000_000;
        let x = p("up", t, t);
        assert_eq!((x.start_ms, x.end_ms), (t - 300_000, t));
        assert_eq!(x.selectors.len(), 1);
        let x = p("rate(a[10m] offset 1h)", t, t + 60_000);
        assert_eq!(
            (x.start_ms, x.end_ms),
            (t - 3_600_000 - 600_000, t + 60_000 - 3_600_000)
        );
        let x = p("a @ 1000 + b", t, t);
        assert_eq!((x.start_ms, x.end_ms), (1_000_000 - 300_000, t));
        assert_eq!(x.selectors.len(), 2);
        let x = p("max_over_time(rate(a[5m])[30m:1m] offset 5m)", t, t);
        assert_eq!(x.start_ms, t - 300_000 - 1_800_000 - 60_000 - 300_000);
        assert_eq!(x.end_ms, t - 300_000);
        let x = p("a + a", t, t);
        assert_eq!(x.selectors.len(), 1, "one selector read once");
        let x = p("1 + 1", t, t);
        assert!(x.selectors.is_empty());
        let x = p("a offset -5m", t, t);
        assert_eq!(x.end_ms, t + 300_000);
    }
}
