//! Parsing (promql-parser) and validation against what this engine evaluates.

use crate::error::PromqlError;
use promql_parser::parser::token::*;
use promql_parser::parser::{self, Expr};

use crate::functions::SUPPORTED_FUNCTIONS;

static EXTRA: std::sync::Once = std::sync::Once::new();

/// Functions Prometheus 2.42 has that promql-parser (which follows Prometheus 3) lacks.
fn register_extra() {
    EXTRA.call_once(|| {
        use promql_parser::parser::value::ValueType;
        // Only fails on a name clash with a built-in, which would make it known anyway.
        let _ = promql_parser::parser::register_extra_functions(vec![
            promql_parser::parser::Function::new(
                "holt_winters",
                vec![ValueType::Matrix, ValueType::Scalar, ValueType::Scalar],
                0,
                ValueType::Vector,
                false,
            ),
        ]);
    });
}

/// Parses and validates a PromQL expression.
pub fn parse(expr: &str) -> Result<Expr, PromqlError> {
    register_extra();
    let e = parser::parse(expr).map_err(|msg| PromqlError::Parse {
        expr: expr.to_string(),
        msg,
    })?;
    validate(&e)?;
    Ok(e)
}

fn unsupported<T>(msg: String) -> Result<T, PromqlError> {
    Err(PromqlError::Unsupported(msg))
}

pub(crate) fn validate(e: &Expr) -> Result<(), PromqlError> {
    match e {
        Expr::Aggregate(a) => {
            let id = a.op.id();
            let ok = [
                T_SUM,
                T_AVG,
                T_COUNT,
                T_MIN,
                T_MAX,
                T_GROUP,
                T_STDDEV,
                T_STDVAR,
                T_TOPK,
                T_BOTTOMK,
                T_COUNT_VALUES,
                T_QUANTILE,
            ]
            .contains(&id);
            if !ok {
                return unsupported(format!("aggregation {} is not supported", a.op));
            }
            validate(&a.expr)?;
            if let Some(p) = &a.param {
                validate(p)?;
            }
            Ok(())
        }
        Expr::Unary(u) => validate(&u.expr),
        Expr::Binary(b) => {
            if let Some(m) = &b.modifier {
                if m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some() {
                    return unsupported(
                        "fill modifiers on binary operators are not supported".into(),
                    );
                }
            }
            validate(&b.lhs)?;
            validate(&b.rhs)
        }
        Expr::Paren(p) => validate(&p.expr),
        Expr::Subquery(s) => {
            if s.range.is_zero() {
                return unsupported("subquery range must be positive".into());
            }
            if s.step.is_some_and(|st| st.is_zero()) {
                return unsupported("subquery step must be positive".into());
            }
            validate(&s.expr)
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => Ok(()),
        Expr::VectorSelector(vs) => {
            if !vs.matchers.or_matchers.is_empty() {
                return unsupported("\"or\" inside label matchers is not supported".into());
            }
            Ok(())
        }
        Expr::MatrixSelector(ms) => {
            if !ms.vs.matchers.or_matchers.is_empty() {
                return unsupported("\"or\" inside label matchers is not supported".into());
            }
            if ms.range.is_zero() {
                return unsupported("range of a range vector selector must be positive".into());
            }
            Ok(())
        }
        Expr::Call(c) => {
            if !SUPPORTED_FUNCTIONS.contains(&c.func.name) {
                return unsupported(format!("function \"{}\" is not supported", c.func.name));
            }
            for a in &c.args.args {
                validate(a)?;
            }
            Ok(())
        }
        Expr::Extension(_) => unsupported("extension expressions are not supported".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_unsupported() {
        for (e, want) in [
            (
                "histogram_count(x)",
                "function \"histogram_count\" is not supported",
            ),
            ("limitk(2, x)", "aggregation limitk is not supported"),
            (
                "mad_over_time(x[5m])",
                "function \"mad_over_time\" is not supported",
            ),
        ] {
            match parse(e) {
                Err(PromqlError::Unsupported(m)) => assert_eq!(m, want),
                Err(other) => {
                    // the parser itself may not know the function: also a clear error
                    assert!(
                        other.to_string().contains(e.split('(').next().unwrap()),
                        "{other}"
                    );
                }
                Ok(_) => panic!("{e} accepted"),
            }
        }
        assert!(matches!(
            parse("sum(rate(x[5m])) by (job) >"),
            Err(PromqlError::Parse { .. })
        ));
        assert!(parse("sum by (job) (rate(x{a=~\"b.*\"}[5m] offset 1m @ 100))").is_ok());
    }
}
