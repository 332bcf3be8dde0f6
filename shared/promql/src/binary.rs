//! Binary operators: arithmetic, comparison (filter and bool), set operators and
//! vector matching, as Prometheus' `VectorBinop` / `VectorscalarBinop`.

use crate::engine::{check_unique, Ev, Sample, Value};
use crate::error::{eval_err, PromqlError};
use argus_model::Labels;
use promql_parser::parser::token::*;
use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};
use std::collections::{HashMap, HashSet};

#[derive(Clone, Copy, PartialEq)]
enum Card {
    OneToOne,
    ManyToOne,
    OneToMany,
}

struct Matching {
    on: bool,
    names: Vec<String>,
    card: Card,
    include: Vec<String>,
}

impl Matching {
    fn signature(&self, l: &Labels) -> Labels {
        if self.on {
            l.keep(&self.names)
        } else {
            let mut drop = self.names.clone();
            drop.push("__name__".into());
            l.drop(&drop)
        }
    }
}

pub(crate) fn is_comparison(op: u16) -> bool {
    [T_EQLC, T_NEQ, T_GTR, T_LSS, T_GTE, T_LTE].contains(&op)
}

fn drops_name(op: u16) -> bool {
    // Prometheus 2.42 keeps the name for atan2.
    [T_ADD, T_SUB, T_MUL, T_DIV, T_POW, T_MOD].contains(&op)
}

/// `vectorElemBinop`: the value and whether a comparison holds.
fn elem(op: u16, l: f64, r: f64) -> Result<(f64, bool), PromqlError> {
    Ok(match op {
        T_ADD => (l + r, true),
        T_SUB => (l - r, true),
        T_MUL => (l * r, true),
        T_DIV => (l / r, true),
        T_POW => (crate::gomath::pow(l, r), true),
        T_MOD => (l % r, true),
        T_ATAN2 => (crate::gomath::atan2(l, r), true),
        T_EQLC => (l, l == r),
        T_NEQ => (l, l != r),
        T_GTR => (l, l > r),
        T_LSS => (l, l < r),
        T_GTE => (l, l >= r),
        T_LTE => (l, l <= r),
        _ => return eval_err(format!("operator {op} not allowed for this operation")),
    })
}

/// Scalar–scalar arithmetic (comparisons need `bool`, which the parser enforces).
fn scalar_op(op: u16, l: f64, r: f64, return_bool: bool) -> Result<f64, PromqlError> {
    let (v, keep) = elem(op, l, r)?;
    if is_comparison(op) {
        if return_bool {
            return Ok(if keep { 1.0 } else { 0.0 });
        }
        // Without bool Prometheus rejects this at parse time; be total anyway.
        return Ok(if keep { v } else { f64::NAN });
    }
    Ok(v)
}

pub(crate) fn binary(ev: &Ev, b: &BinaryExpr, ts: i64) -> Result<Value, PromqlError> {
    let op = b.op.id();
    let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
    let lhs = ev.eval(&b.lhs, ts)?;
    let rhs = ev.eval(&b.rhs, ts)?;
    let out = match (lhs, rhs) {
        (Value::Scalar(l), Value::Scalar(r)) => {
            return Ok(Value::Scalar(scalar_op(op, l, r, return_bool)?))
        }
        (Value::Vector(l), Value::Scalar(r)) => vector_scalar(op, l, r, false, return_bool)?,
        (Value::Scalar(l), Value::Vector(r)) => vector_scalar(op, r, l, true, return_bool)?,
        (Value::Vector(l), Value::Vector(r)) => {
            let (on, names) = match b.modifier.as_ref().and_then(|m| m.matching.as_ref()) {
                Some(LabelModifier::Include(ls)) => (true, ls.labels.clone()),
                Some(LabelModifier::Exclude(ls)) => (false, ls.labels.clone()),
                None => (false, Vec::new()),
            };
            let (card, include) = match b.modifier.as_ref().map(|m| &m.card) {
                Some(VectorMatchCardinality::ManyToOne(ls)) => (Card::ManyToOne, ls.labels.clone()),
                Some(VectorMatchCardinality::OneToMany(ls)) => (Card::OneToMany, ls.labels.clone()),
                _ => (Card::OneToOne, Vec::new()),
            };
            let m = Matching {
                on,
                names,
                card,
                include,
            };
            match op {
                T_LAND => and(l, r, &m),
                T_LOR => or(l, r, &m),
                T_LUNLESS => unless(l, r, &m),
                _ => vector_vector(op, l, r, &m, return_bool)?,
            }
        }
        (l, r) => {
            return eval_err(format!(
            "binary expression must contain only scalar and instant vector types, got {} and {}",
            l.type_name(),
            r.type_name()
        ))
        }
    };
    check_unique(&out)?;
    Ok(Value::Vector(out))
}

fn vector_scalar(
    op: u16,
    v: Vec<Sample>,
    s: f64,
    swap: bool,
    return_bool: bool,
) -> Result<Vec<Sample>, PromqlError> {
    let cmp = is_comparison(op);
    let mut out = Vec::with_capacity(v.len());
    for mut smp in v {
        let (mut l, mut r) = (smp.value, s);
        if swap {
            std::mem::swap(&mut l, &mut r);
        }
        let (mut value, mut keep) = elem(op, l, r)?;
        // With the scalar on the left of a comparison, the output keeps the vector value.
        if cmp && swap {
            value = r;
        }
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
            keep = true;
        }
        if keep {
            smp.value = value;
            if drops_name(op) || return_bool {
                smp.labels = smp.labels.without_name();
            }
            out.push(smp);
        }
    }
    Ok(out)
}

fn result_metric(l: &Labels, r: &Labels, op: u16, m: &Matching) -> Labels {
    let mut out = if drops_name(op) {
        l.without_name()
    } else {
        l.clone()
    };
    if m.card == Card::OneToOne {
        out = if m.on {
            out.keep(&m.names)
        } else {
            out.drop(&m.names)
        };
    }
    for n in &m.include {
        match r.get(n) {
            Some(v) => out.set(n, v),
            None => out.remove(n),
        }
    }
    out
}

fn vector_vector(
    op: u16,
    lhs: Vec<Sample>,
    rhs: Vec<Sample>,
    m: &Matching,
    return_bool: bool,
) -> Result<Vec<Sample>, PromqlError> {
    let (lhs, rhs) = if m.card == Card::OneToMany {
        (rhs, lhs)
    } else {
        (lhs, rhs)
    };
    let mut right: HashMap<Labels, &Sample> = HashMap::with_capacity(rhs.len());
    for rs in &rhs {
        let sig = m.signature(&rs.labels);
        if let Some(dup) = right.get(&sig) {
            let side = if m.card == Card::OneToMany {
                "left"
            } else {
                "right"
            };
            let matched = if m.on {
                rs.labels.keep(&m.names)
            } else {
                sig.clone()
            };
            return eval_err(format!(
                "found duplicate series for the match group {matched} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                rs.labels, dup.labels
            ));
        }
        right.insert(sig, rs);
    }
    let mut matched: HashMap<Labels, HashSet<Labels>> = HashMap::new();
    let mut out = Vec::new();
    for ls in &lhs {
        let sig = m.signature(&ls.labels);
        let Some(rs) = right.get(&sig) else { continue };
        let (mut vl, mut vr) = (ls.value, rs.value);
        if m.card == Card::OneToMany {
            std::mem::swap(&mut vl, &mut vr);
        }
        let (mut value, keep) = elem(op, vl, vr)?;
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            continue;
        }
        let mut metric = result_metric(&ls.labels, &rs.labels, op, m);
        if return_bool {
            metric = metric.without_name();
        }
        match matched.get_mut(&sig) {
            Some(set) => {
                if m.card == Card::OneToOne {
                    return eval_err("multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)");
                }
                if !set.insert(metric.clone()) {
                    return eval_err(
                        "multiple matches for labels: grouping labels must ensure unique matches",
                    );
                }
            }
            None => {
                let mut set = HashSet::new();
                if m.card != Card::OneToOne {
                    set.insert(metric.clone());
                }
                matched.insert(sig, set);
            }
        }
        out.push(Sample {
            labels: metric,
            value,
        });
    }
    Ok(out)
}

fn and(lhs: Vec<Sample>, rhs: Vec<Sample>, m: &Matching) -> Vec<Sample> {
    let right: HashSet<Labels> = rhs.iter().map(|s| m.signature(&s.labels)).collect();
    lhs.into_iter()
        .filter(|s| right.contains(&m.signature(&s.labels)))
        .collect()
}

fn or(lhs: Vec<Sample>, rhs: Vec<Sample>, m: &Matching) -> Vec<Sample> {
    let left: HashSet<Labels> = lhs.iter().map(|s| m.signature(&s.labels)).collect();
    let mut out = lhs;
    out.extend(
        rhs.into_iter()
            .filter(|s| !left.contains(&m.signature(&s.labels))),
    );
    out
}

fn unless(lhs: Vec<Sample>, rhs: Vec<Sample>, m: &Matching) -> Vec<Sample> {
    let right: HashSet<Labels> = rhs.iter().map(|s| m.signature(&s.labels)).collect();
    lhs.into_iter()
        .filter(|s| !right.contains(&m.signature(&s.labels)))
        .collect()
}
