//! How much history evaluating a rule needs (for sizing the evaluator's sample window).

use crate::file::RuleGroup;
use argus_promql::Expr;
use promql_parser::parser::Offset;
use std::time::Duration;

fn ms(d: &Duration) -> i64 {
    argus_model::time::millis(*d)
}

fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        Some(Offset::Pos(d)) => ms(d),
        Some(Offset::Neg(d)) => -ms(d),
        None => 0,
    }
}

/// How far before the evaluation time evaluating `expr` reads samples: the largest
/// `range + offset` of its range selectors and `lookback + offset` of its instant
/// selectors, subqueries adding their range and offset to their inner expression's need.
/// Selectors pinned with `@` read around their pinned time and are not counted.
pub fn history_needed_ms(expr: &Expr, lookback_ms: i64) -> i64 {
    match expr {
        Expr::VectorSelector(vs) if vs.at.is_none() => lookback_ms + offset_ms(&vs.offset),
        Expr::MatrixSelector(m) if m.vs.at.is_none() => ms(&m.range) + offset_ms(&m.vs.offset),
        Expr::VectorSelector(_) | Expr::MatrixSelector(_) => 0,
        Expr::Subquery(s) => {
            ms(&s.range) + offset_ms(&s.offset) + history_needed_ms(&s.expr, lookback_ms)
        }
        Expr::Aggregate(a) => {
            let p = a
                .param
                .as_ref()
                .map(|p| history_needed_ms(p, lookback_ms))
                .unwrap_or(0);
            p.max(history_needed_ms(&a.expr, lookback_ms))
        }
        Expr::Unary(u) => history_needed_ms(&u.expr, lookback_ms),
        Expr::Paren(p) => history_needed_ms(&p.expr, lookback_ms),
        Expr::Binary(b) => {
            history_needed_ms(&b.lhs, lookback_ms).max(history_needed_ms(&b.rhs, lookback_ms))
        }
        Expr::Call(c) => c
            .args
            .args
            .iter()
            .map(|a| history_needed_ms(a, lookback_ms))
            .max()
            .unwrap_or(0),
        _ => 0,
    }
    .max(0)
}

impl RuleGroup {
    /// The history (ms before the evaluation time) this group's rules read; the
    /// evaluator keeps at least this much. `lookback_ms` is the engine's lookback (5m).
    pub fn history_needed_ms(&self, lookback_ms: i64) -> i64 {
        self.rules
            .iter()
            .map(|r| history_needed_ms(&r.expr, lookback_ms))
            .max()
            .unwrap_or(0)
    }

    /// A key unique across loaded files (Prometheus' `GroupKey`: `file;name`), for
    /// persisting the group's state.
    pub fn key(&self) -> String {
        format!("{};{}", self.file, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(e: &str) -> i64 {
        history_needed_ms(&argus_promql::parse(e).unwrap(), 300_000)
    }

    #[test]
    fn windows() {
        assert_eq!(need("up"), 300_000);
        assert_eq!(need("1 + 2"), 0);
        assert_eq!(need("rate(x[10m])"), 600_000);
        assert_eq!(need("rate(x[10m] offset 1h) / up"), 4_200_000);
        assert_eq!(need("max_over_time(rate(x[1m])[5m:1m])"), 360_000);
        assert_eq!(
            need("sum by (j) (x) > on(j) group_left topk(1, y offset 20m)"),
            1_500_000
        );
        assert_eq!(need("absent_over_time(x[15m])"), 900_000);
        assert_eq!(need("x @ 100"), 0);
        let g = crate::parse_rule_file(
            "f.yml",
            "groups:\n- name: g\n  rules:\n  - record: a\n    expr: rate(x[2m])\n  - alert: B\n    expr: delta(y[30m]) > 0\n",
        )
        .unwrap()
        .groups
        .remove(0);
        assert_eq!(g.history_needed_ms(300_000), 1_800_000);
        assert_eq!(g.key(), "f.yml;g");
    }
}
