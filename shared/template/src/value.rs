//! The data model templates see: Go's dynamic values, reduced to what Prometheus and
//! Alertmanager templates use.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::gofmt;

/// A value a template can print, index, range over and pass to functions.
#[derive(Clone, Debug, Default)]
pub enum Value {
    /// Go's invalid/nil value: prints as `<no value>`.
    #[default]
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Arc<str>),
    /// A slice (`[]interface{}` / `[]string`).
    List(Arc<Vec<Value>>),
    /// A generic map (`map[string]interface{}`); a missing key yields `Nil`.
    Map(Arc<BTreeMap<String, Value>>),
    /// A string map (`map[string]string`, Alertmanager's `KV` when `kv` is true: it then
    /// also has the methods `SortedPairs`, `Names`, `Values`, `Remove`).
    StrMap(Arc<StrMap>),
    /// A struct: named fields in declaration order, plus the type's name for errors.
    Struct(Arc<Struct>),
    /// A point in time (`time.Time`, UTC), unix milliseconds.
    Time(i64),
}

/// A `map[string]string`, optionally with Alertmanager's `KV` methods.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StrMap {
    pub map: BTreeMap<String, String>,
    pub kv: bool,
}

/// A Go struct value.
#[derive(Clone, Debug)]
pub struct Struct {
    pub type_name: &'static str,
    pub fields: Vec<(&'static str, Value)>,
}

impl Struct {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

impl Value {
    pub fn str(s: impl AsRef<str>) -> Value {
        Value::Str(Arc::from(s.as_ref()))
    }

    pub fn list(items: Vec<Value>) -> Value {
        Value::List(Arc::new(items))
    }

    /// A `map[string]string` without methods (Prometheus' `.Labels`).
    pub fn string_map<I, K, V>(pairs: I) -> Value
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self::str_map(pairs, false)
    }

    /// Alertmanager's `template.KV`: a string map with `SortedPairs`, `Names`, `Values`
    /// and `Remove`.
    pub fn kv<I, K, V>(pairs: I) -> Value
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self::str_map(pairs, true)
    }

    fn str_map<I, K, V>(pairs: I, kv: bool) -> Value
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Value::StrMap(Arc::new(StrMap {
            map: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            kv,
        }))
    }

    pub fn map<I, K>(pairs: I) -> Value
    where
        I: IntoIterator<Item = (K, Value)>,
        K: Into<String>,
    {
        Value::Map(Arc::new(
            pairs.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        ))
    }

    pub fn object(type_name: &'static str, fields: Vec<(&'static str, Value)>) -> Value {
        Value::Struct(Arc::new(Struct { type_name, fields }))
    }

    /// Go's type name, used in error messages (`wrong type for value; expected ...`).
    pub fn type_name(&self) -> &str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(_) => "[]interface {}",
            Value::Map(_) => "map[string]interface {}",
            Value::StrMap(m) if m.kv => "template.KV",
            Value::StrMap(_) => "map[string]string",
            Value::Struct(s) => s.type_name,
            Value::Time(_) => "time.Time",
        }
    }

    /// Go's `template.IsTrue`.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::StrMap(m) => !m.map.is_empty(),
            Value::Struct(_) | Value::Time(_) => true,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Prometheus' `convertToFloat`: numbers, and strings that parse as floats.
    pub fn to_float(&self) -> Result<f64, String> {
        match self {
            Value::Float(f) => Ok(*f),
            Value::Int(i) => Ok(*i as f64),
            Value::Str(s) => gofmt::parse_go_float(s)
                .ok_or_else(|| format!("strconv.ParseFloat: parsing {:?}: invalid syntax", &**s)),
            Value::Time(ms) => Ok(*ms as f64 / 1000.0),
            other => Err(format!("can't convert {} to float", other.type_name())),
        }
    }

    /// Go's `fmt.Sprint` of a single value (`%v`).
    pub fn to_go_string(&self) -> String {
        let mut s = String::new();
        self.write_go(&mut s, true);
        s
    }

    pub(crate) fn write_go(&self, out: &mut String, top: bool) {
        match self {
            Value::Nil => out.push_str(if top { "<no value>" } else { "<nil>" }),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => out.push_str(&i.to_string()),
            Value::Float(f) => out.push_str(&gofmt::format_float_v(*f)),
            Value::Str(s) => out.push_str(s),
            Value::List(l) => {
                out.push('[');
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.write_go(out, false);
                }
                out.push(']');
            }
            Value::Map(m) => {
                out.push_str("map[");
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(k);
                    out.push(':');
                    v.write_go(out, false);
                }
                out.push(']');
            }
            Value::StrMap(m) => {
                out.push_str("map[");
                for (i, (k, v)) in m.map.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(k);
                    out.push(':');
                    out.push_str(v);
                }
                out.push(']');
            }
            Value::Struct(s) => {
                out.push('{');
                for (i, (_, v)) in s.fields.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.write_go(out, false);
                }
                out.push('}');
            }
            Value::Time(ms) => out.push_str(&gofmt::go_time_string(*ms)),
        }
    }

    /// Items for `range`: list items, or (key, value) pairs of a map in key order.
    pub(crate) fn range_items(&self) -> Result<Vec<(Value, Value)>, String> {
        match self {
            Value::Nil => Ok(Vec::new()),
            Value::List(l) => Ok(l
                .iter()
                .enumerate()
                .map(|(i, v)| (Value::Int(i as i64), v.clone()))
                .collect()),
            Value::Map(m) => Ok(m.iter().map(|(k, v)| (Value::str(k), v.clone())).collect()),
            Value::StrMap(m) => Ok(m
                .map
                .iter()
                .map(|(k, v)| (Value::str(k), Value::str(v)))
                .collect()),
            Value::Int(n) => Ok((0..*n).map(|i| (Value::Int(i), Value::Int(i))).collect()),
            other => Err(format!("range can't iterate over {}", other.to_go_string())),
        }
    }

    /// Field (or zero-argument method) lookup: `.Name` on this value.
    pub(crate) fn field(&self, name: &str, missing_zero: bool) -> Result<Value, String> {
        match self {
            Value::Map(m) => Ok(m.get(name).cloned().unwrap_or(Value::Nil)),
            Value::StrMap(m) => {
                if m.kv {
                    if let Some(v) = kv_method(m, name, &[]) {
                        return v;
                    }
                }
                match m.map.get(name) {
                    Some(v) => Ok(Value::str(v)),
                    None if missing_zero => Ok(Value::str("")),
                    None => Ok(Value::Nil),
                }
            }
            Value::Struct(s) => match s.get(name) {
                Some(v) => Ok(v.clone()),
                None => match struct_method(s, name, &[]) {
                    Some(r) => r,
                    None => Err(format!(
                        "can't evaluate field {name} in type {}",
                        s.type_name
                    )),
                },
            },
            Value::List(l) => match list_method(l, name, &[]) {
                Some(r) => r,
                None => Err(format!(
                    "can't evaluate field {name} in type {}",
                    self.type_name()
                )),
            },
            Value::Time(ms) => match time_method(*ms, name, &[]) {
                Some(r) => r,
                None => Err(format!("can't evaluate field {name} in type time.Time")),
            },
            Value::Nil => Err(format!("nil pointer evaluating interface {{}}.{name}")),
            other => Err(format!(
                "can't evaluate field {name} in type {}",
                other.type_name()
            )),
        }
    }

    /// A method call with arguments: `.Labels.Remove $names`.
    pub(crate) fn call_method(&self, name: &str, args: &[Value]) -> Result<Value, String> {
        let r = match self {
            Value::StrMap(m) if m.kv => kv_method(m, name, args),
            Value::Struct(s) => struct_method(s, name, args),
            Value::List(l) => list_method(l, name, args),
            Value::Time(ms) => time_method(*ms, name, args),
            _ => None,
        };
        match r {
            Some(r) => r,
            None => Err(format!(
                "{name} has arguments but cannot be invoked as function"
            )),
        }
    }
}

fn pair(name: &str, value: &str) -> Value {
    Value::object(
        "template.Pair",
        vec![("Name", Value::str(name)), ("Value", Value::str(value))],
    )
}

fn want_args(name: &str, args: &[Value], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

/// Alertmanager's `KV` methods.
fn kv_method(m: &StrMap, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
    let r =
        match name {
            "SortedPairs" => want_args(name, args, 0)
                .map(|_| Value::list(m.map.iter().map(|(k, v)| pair(k, v)).collect())),
            "Names" => want_args(name, args, 0)
                .map(|_| Value::list(m.map.keys().map(Value::str).collect())),
            "Values" => want_args(name, args, 0)
                .map(|_| Value::list(m.map.values().map(Value::str).collect())),
            "Remove" => want_args(name, args, 1).and_then(|_| {
                let names = string_list(&args[0])?;
                let map = m
                    .map
                    .iter()
                    .filter(|(k, _)| !names.contains(k))
                    .map(|(k, v)| (k.clone(), v.clone()));
                Ok(Value::StrMap(Arc::new(StrMap {
                    map: map.collect(),
                    kv: true,
                })))
            }),
            _ => return None,
        };
    Some(r)
}

/// A list of strings from a `[]string`-like value.
pub fn string_list(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::List(l) => l
            .iter()
            .map(|x| match x {
                Value::Str(s) => Ok(s.to_string()),
                other => Err(format!(
                    "wrong type for value; expected string; got {}",
                    other.type_name()
                )),
            })
            .collect(),
        Value::Nil => Ok(Vec::new()),
        other => Err(format!(
            "wrong type for value; expected []string; got {}",
            other.type_name()
        )),
    }
}

/// Methods of list types: Alertmanager's `Alerts.Firing`/`Resolved`, `Pairs.Names`/`Values`.
fn list_method(l: &[Value], name: &str, args: &[Value]) -> Option<Result<Value, String>> {
    let is_alerts = l
        .first()
        .is_some_and(|v| matches!(v, Value::Struct(s) if s.type_name == "template.Alert"));
    let is_pairs = l
        .first()
        .is_some_and(|v| matches!(v, Value::Struct(s) if s.type_name == "template.Pair"));
    let by_status = |status: &str| {
        Value::list(
            l.iter()
                .filter(|a| matches!(a, Value::Struct(s) if s.get("Status").and_then(|v| v.as_str()) == Some(status)))
                .cloned()
                .collect(),
        )
    };
    let field_of = |f: &str| {
        Value::list(
            l.iter()
                .map(|p| match p {
                    Value::Struct(s) => s.get(f).cloned().unwrap_or_default(),
                    _ => Value::Nil,
                })
                .collect(),
        )
    };
    let r = match name {
        // An empty list has no element type to tell; the methods then return empty lists.
        "Firing" if is_alerts || l.is_empty() => {
            want_args(name, args, 0).map(|_| by_status("firing"))
        }
        "Resolved" if is_alerts || l.is_empty() => {
            want_args(name, args, 0).map(|_| by_status("resolved"))
        }
        "Names" if is_pairs || l.is_empty() => want_args(name, args, 0).map(|_| field_of("Name")),
        "Values" if is_pairs || l.is_empty() => want_args(name, args, 0).map(|_| field_of("Value")),
        _ => return None,
    };
    Some(r)
}

fn struct_method(_s: &Struct, _name: &str, _args: &[Value]) -> Option<Result<Value, String>> {
    None
}

/// `time.Time` methods templates commonly use.
fn time_method(ms: i64, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
    let r = match name {
        "Unix" => want_args(name, args, 0).map(|_| Value::Int(ms.div_euclid(1000))),
        "UnixMilli" => want_args(name, args, 0).map(|_| Value::Int(ms)),
        "UTC" | "Local" => want_args(name, args, 0).map(|_| Value::Time(ms)),
        "IsZero" => want_args(name, args, 0).map(|_| Value::Bool(ms == gofmt::GO_ZERO_TIME_MS)),
        "Format" => want_args(name, args, 1).and_then(|_| match &args[0] {
            Value::Str(layout) => Ok(Value::str(gofmt::go_time_format(ms, layout))),
            other => Err(format!(
                "wrong type for value; expected string; got {}",
                other.type_name()
            )),
        }),
        _ => return None,
    };
    Some(r)
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_go_string())
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::str(s)
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(Arc::from(s))
    }
}
impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
