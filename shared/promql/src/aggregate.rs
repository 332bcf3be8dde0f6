//! Aggregation operators, as Prometheus 2.42's `aggregation()`.

use crate::engine::{Ev, Sample, Value};
use crate::error::{eval_err, PromqlError};
use crate::format::format_value_plain;
use argus_model::Labels;
use promql_parser::parser::token::*;
use promql_parser::parser::{AggregateExpr, LabelModifier};
use std::collections::HashMap;

pub(crate) use argus_model::valid_label_name;

/// Go's `container/heap` over samples with a `less` order (root = least).
struct GoHeap {
    v: Vec<Sample>,
    less: fn(f64, f64) -> bool,
}

impl GoHeap {
    fn lt(&self, i: usize, j: usize) -> bool {
        (self.less)(self.v[i].value, self.v[j].value)
    }
    fn up(&mut self, mut j: usize) {
        while j > 0 {
            let i = (j - 1) / 2;
            if !self.lt(j, i) {
                break;
            }
            self.v.swap(i, j);
            j = i;
        }
    }
    fn down(&mut self, i0: usize) -> bool {
        let n = self.v.len();
        let mut i = i0;
        loop {
            let j1 = 2 * i + 1;
            if j1 >= n {
                break;
            }
            let mut j = j1;
            let j2 = j1 + 1;
            if j2 < n && self.lt(j2, j1) {
                j = j2;
            }
            if !self.lt(j, i) {
                break;
            }
            self.v.swap(i, j);
            i = j;
        }
        i > i0
    }
    fn push(&mut self, s: Sample) {
        self.v.push(s);
        let n = self.v.len() - 1;
        self.up(n);
    }
    fn fix(&mut self, i: usize) {
        if !self.down(i) {
            self.up(i);
        }
    }
}

/// topk order: NaN is the least.
fn less_topk(a: f64, b: f64) -> bool {
    if a.is_nan() && !b.is_nan() {
        return true;
    }
    a < b
}

/// bottomk order: NaN first too, then descending.
fn less_bottomk(a: f64, b: f64) -> bool {
    if a.is_nan() && !b.is_nan() {
        return true;
    }
    a > b
}

/// Prometheus' `quantile` over values (sorted with NaN first).
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| {
        if less_topk(*a, *b) {
            std::cmp::Ordering::Less
        } else if less_topk(*b, *a) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (n - 1.0).min(lower + 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

struct Group {
    labels: Labels,
    value: f64,
    mean: f64,
    count: f64,
    heap: Option<GoHeap>,
    values: Vec<f64>,
}

pub(crate) fn aggregate(ev: &Ev, a: &AggregateExpr, ts: i64) -> Result<Value, PromqlError> {
    let op = a.op.id();
    let (without, mut names) = match &a.modifier {
        Some(LabelModifier::Include(ls)) => (false, ls.labels.clone()),
        Some(LabelModifier::Exclude(ls)) => (true, ls.labels.clone()),
        None => (false, Vec::new()),
    };
    let mut k: i64 = 0;
    let mut q = 0.0;
    let mut value_label = String::new();
    match op {
        T_TOPK | T_BOTTOMK => {
            let p = param(ev, a, ts)?;
            if !(-9.223372036854775e18..=9.223372036854775e18).contains(&p) || p.is_nan() {
                return eval_err(format!(
                    "Scalar value {} overflows int64",
                    crate::format_value(p)
                ));
            }
            k = p as i64;
            if k < 1 {
                return Ok(Value::Vector(Vec::new()));
            }
        }
        T_QUANTILE => q = param(ev, a, ts)?,
        T_COUNT_VALUES => {
            let Some(p) = &a.param else {
                return eval_err("count_values needs a label name parameter");
            };
            value_label = ev.eval_string(p, ts)?;
            if !valid_label_name(&value_label) {
                return eval_err(format!("invalid label name {value_label:?}"));
            }
            if !without {
                names.push(value_label.clone());
            }
        }
        _ => {}
    }
    let vec = ev.eval_vector(&a.expr, ts)?;
    let mut drop_names = names.clone();
    if without {
        drop_names.push("__name__".into());
    }
    let mut idx: HashMap<Labels, usize> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    let cap = usize::try_from(k)
        .unwrap_or(usize::MAX)
        .min(vec.len())
        .max(1);
    for s in vec {
        let key = if op == T_COUNT_VALUES {
            let metric = s
                .labels
                .clone()
                .with(&value_label, &format_value_plain(s.value));
            if without {
                metric.drop(&drop_names)
            } else {
                metric.keep(&names)
            }
        } else if without {
            s.labels.drop(&drop_names)
        } else {
            s.labels.keep(&names)
        };
        let gi = match idx.get(&key) {
            Some(&i) => i,
            None => {
                let mut g = Group {
                    labels: key.clone(),
                    value: s.value,
                    mean: s.value,
                    count: 1.0,
                    heap: None,
                    values: Vec::new(),
                };
                match op {
                    T_STDVAR | T_STDDEV => g.value = 0.0,
                    T_TOPK | T_BOTTOMK => {
                        let mut h = GoHeap {
                            v: Vec::with_capacity(cap),
                            less: if op == T_TOPK {
                                less_topk
                            } else {
                                less_bottomk
                            },
                        };
                        h.v.push(Sample {
                            labels: s.labels,
                            value: s.value,
                        });
                        g.heap = Some(h);
                    }
                    T_QUANTILE => g.values.push(s.value),
                    T_GROUP => g.value = 1.0,
                    _ => {}
                }
                idx.insert(key, groups.len());
                groups.push(g);
                continue;
            }
        };
        let g = &mut groups[gi];
        let v = s.value;
        match op {
            T_SUM => g.value += v,
            T_AVG => {
                g.count += 1.0;
                if g.mean.is_infinite() {
                    if v.is_infinite() && (g.mean > 0.0) == (v > 0.0) {
                        continue;
                    }
                    if !v.is_infinite() && !v.is_nan() {
                        continue;
                    }
                }
                g.mean += v / g.count - g.mean / g.count;
            }
            T_GROUP => {}
            T_MAX => {
                if g.value < v || g.value.is_nan() {
                    g.value = v
                }
            }
            T_MIN => {
                if g.value > v || g.value.is_nan() {
                    g.value = v
                }
            }
            T_COUNT | T_COUNT_VALUES => g.count += 1.0,
            T_STDVAR | T_STDDEV => {
                g.count += 1.0;
                let delta = v - g.mean;
                g.mean += delta / g.count;
                g.value += delta * (v - g.mean);
            }
            T_TOPK | T_BOTTOMK => {
                let Some(h) = g.heap.as_mut() else { continue };
                if (h.v.len() as i64) < k {
                    h.push(Sample {
                        labels: s.labels,
                        value: v,
                    });
                    continue;
                }
                let root = h.v[0].value;
                let replace = if op == T_TOPK {
                    root < v || (root.is_nan() && !v.is_nan())
                } else {
                    root > v || (root.is_nan() && !v.is_nan())
                };
                if replace {
                    h.v[0] = Sample {
                        labels: s.labels,
                        value: v,
                    };
                    if k > 1 {
                        h.fix(0);
                    }
                }
            }
            T_QUANTILE => g.values.push(v),
            _ => return eval_err(format!("aggregation {} is not supported", a.op)),
        }
    }
    let mut out = Vec::with_capacity(groups.len());
    for mut g in groups {
        let value = match op {
            T_AVG => g.mean,
            T_COUNT | T_COUNT_VALUES => g.count,
            T_STDVAR => g.value / g.count,
            T_STDDEV => (g.value / g.count).sqrt(),
            T_QUANTILE => quantile(q, &mut g.values),
            T_TOPK | T_BOTTOMK => {
                if let Some(h) = g.heap.take() {
                    let less = h.less;
                    let mut v = h.v;
                    // sort.Reverse(heap): descending in the heap's order.
                    v.sort_by(|a, b| {
                        if less(b.value, a.value) {
                            std::cmp::Ordering::Less
                        } else if less(a.value, b.value) {
                            std::cmp::Ordering::Greater
                        } else {
                            std::cmp::Ordering::Equal
                        }
                    });
                    out.extend(v);
                }
                continue;
            }
            _ => g.value,
        };
        out.push(Sample {
            labels: g.labels,
            value,
        });
    }
    Ok(Value::Vector(out))
}

fn param(ev: &Ev, a: &AggregateExpr, ts: i64) -> Result<f64, PromqlError> {
    match &a.param {
        Some(p) => ev.eval_scalar(p, ts),
        None => eval_err(format!("aggregation {} needs a parameter", a.op)),
    }
}
