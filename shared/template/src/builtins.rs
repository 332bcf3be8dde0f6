//! text/template's predefined functions (`and`/`or` are short-circuited in the executor).

use crate::gofmt;
use crate::value::Value;
use crate::FuncError;
use std::cmp::Ordering;

pub(crate) const NAMES: [&str; 19] = [
    "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "html", "js",
    "urlquery", "eq", "ne", "lt", "le", "gt", "ge", "call",
];

pub(crate) fn is_builtin(name: &str) -> bool {
    NAMES.contains(&name)
}

fn arity(name: &str, args: &[Value], n: usize) -> Result<(), FuncError> {
    if args.len() != n {
        return Err(FuncError::Arg(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        )));
    }
    Ok(())
}

/// `evalArgs` of html/js/urlquery: a lone string as is, else `fmt.Sprint`.
fn text_arg(args: &[Value]) -> String {
    match args {
        [Value::Str(s)] => s.to_string(),
        _ => gofmt::sprint(args),
    }
}

/// html/template's `htmlEscaper` (text context): as [`html_escape`] plus `+`.
pub fn html_text_escape(s: &str) -> String {
    if !s.contains(['"', '\'', '&', '<', '>', '+', '\0']) {
        return s.to_string();
    }
    html_escape(s).replace('+', "&#43;")
}

/// html/template's treatment of literal text in text context: a `<` that does not
/// open a tag (a letter, `/`, `!` or `?` must follow) is written as `&lt;`.
pub fn html_text_literal(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('<') {
        return std::borrow::Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len() + 8);
    let mut last = 0;
    for (i, _) in s.match_indices('<') {
        let opens = b
            .get(i + 1)
            .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, b'/' | b'!' | b'?'));
        if !opens {
            out.push_str(&s[last..i]);
            out.push_str("&lt;");
            last = i + 1;
        }
    }
    out.push_str(&s[last..]);
    std::borrow::Cow::Owned(out)
}

pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

pub fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[derive(PartialEq, Clone, Copy)]
enum Kind {
    Bool,
    Int,
    Float,
    Str,
    Invalid,
    Other,
}

fn kind(v: &Value) -> Kind {
    match v {
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::Str(_) => Kind::Str,
        Value::Nil => Kind::Invalid,
        _ => Kind::Other,
    }
}

const BAD_CMP: &str = "incompatible types for comparison";
const BAD_CMP_TYPE: &str = "invalid type for comparison";

fn eq(args: &[Value]) -> Result<bool, FuncError> {
    let Some((a, rest)) = args.split_first() else {
        return Err(FuncError::Arg(
            "wrong number of args for eq: want at least 1 got 0".into(),
        ));
    };
    if rest.is_empty() {
        return Err(FuncError::Call("missing argument for comparison".into()));
    }
    let k1 = kind(a);
    for b in rest {
        let k2 = kind(b);
        let truth = if k1 != k2 {
            if k1 != Kind::Invalid && k2 != Kind::Invalid {
                return Err(FuncError::Call(BAD_CMP.into()));
            }
            false
        } else {
            match (a, b) {
                (Value::Bool(x), Value::Bool(y)) => x == y,
                (Value::Int(x), Value::Int(y)) => x == y,
                (Value::Float(x), Value::Float(y)) => x == y,
                (Value::Str(x), Value::Str(y)) => x == y,
                (Value::Nil, Value::Nil) => true,
                (Value::Time(x), Value::Time(y)) => x == y,
                _ => {
                    return Err(FuncError::Call(format!(
                        "non-comparable type {}: {}",
                        a.to_go_string(),
                        a.type_name()
                    )));
                }
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

fn order(name: &str, args: &[Value]) -> Result<Ordering, FuncError> {
    arity(name, args, 2)?;
    let (a, b) = (&args[0], &args[1]);
    let (k1, k2) = (kind(a), kind(b));
    if matches!(k1, Kind::Invalid | Kind::Other | Kind::Bool)
        || matches!(k2, Kind::Invalid | Kind::Other | Kind::Bool)
    {
        if k1 != k2
            && !matches!(k1, Kind::Bool)
            && !matches!(k2, Kind::Bool)
            && k1 != Kind::Invalid
            && k2 != Kind::Invalid
        {
            return Err(FuncError::Call(BAD_CMP.into()));
        }
        return Err(FuncError::Call(BAD_CMP_TYPE.into()));
    }
    if k1 != k2 {
        return Err(FuncError::Call(BAD_CMP.into()));
    }
    Ok(match (a, b) {
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y).unwrap_or(Ordering::Greater),
        (Value::Str(x), Value::Str(y)) => x.cmp(y),
        _ => Ordering::Equal,
    })
}

fn lt_ord(name: &str, args: &[Value]) -> Result<bool, FuncError> {
    // NaN compares false for < as in Go.
    if let [Value::Float(x), Value::Float(y)] = args {
        return Ok(x < y);
    }
    Ok(order(name, args)? == Ordering::Less)
}

fn index(args: &[Value]) -> Result<Value, FuncError> {
    let Some((item, idx)) = args.split_first() else {
        return Err(FuncError::Arg(
            "wrong number of args for index: want at least 1 got 0".into(),
        ));
    };
    let mut cur = item.clone();
    for i in idx {
        cur = match (&cur, i) {
            (Value::List(l), Value::Int(n)) => {
                if *n < 0 || *n as usize >= l.len() {
                    return Err(FuncError::Call(format!(
                        "error calling index: index out of range: {n}"
                    )));
                }
                l[*n as usize].clone()
            }
            (Value::Str(s), Value::Int(n)) => {
                let b = s.as_bytes();
                if *n < 0 || *n as usize >= b.len() {
                    return Err(FuncError::Call(format!(
                        "error calling index: index out of range: {n}"
                    )));
                }
                Value::Int(b[*n as usize] as i64)
            }
            (Value::List(_) | Value::Str(_), other) => {
                return Err(FuncError::Call(format!(
                    "cannot index slice/array with type {}",
                    other.type_name()
                )))
            }
            (Value::Map(m), Value::Str(k)) => m.get(&**k).cloned().unwrap_or_default(),
            (Value::StrMap(m), Value::Str(k)) => {
                Value::str(m.map.get(&**k).map(String::as_str).unwrap_or(""))
            }
            (Value::Map(_) | Value::StrMap(_), other) => {
                return Err(FuncError::Call(format!(
                    "value has type {}; should be string",
                    other.type_name()
                )))
            }
            (Value::Nil, _) => return Err(FuncError::Call("index of untyped nil".into())),
            (other, _) => {
                return Err(FuncError::Call(format!(
                    "can't index item of type {}",
                    other.type_name()
                )))
            }
        };
    }
    Ok(cur)
}

fn slice(args: &[Value]) -> Result<Value, FuncError> {
    let Some((item, idx)) = args.split_first() else {
        return Err(FuncError::Arg(
            "wrong number of args for slice: want at least 1 got 0".into(),
        ));
    };
    let len = match item {
        Value::List(l) => l.len(),
        Value::Str(s) => s.len(),
        Value::Nil => return Err(FuncError::Call("slice of untyped nil".into())),
        other => {
            return Err(FuncError::Call(format!(
                "can't slice item of type {}",
                other.type_name()
            )))
        }
    };
    if idx.len() > 2 {
        return Err(FuncError::Call(format!(
            "too many slice indexes: {}",
            idx.len()
        )));
    }
    let mut bounds = [0usize, len];
    for (k, i) in idx.iter().enumerate() {
        match i {
            Value::Int(n) if *n >= 0 && (*n as usize) <= len => bounds[k] = *n as usize,
            Value::Int(n) => return Err(FuncError::Call(format!("index out of range: {n}"))),
            other => {
                return Err(FuncError::Call(format!(
                    "cannot index slice/array with type {}",
                    other.type_name()
                )))
            }
        }
    }
    if bounds[0] > bounds[1] {
        return Err(FuncError::Call(format!(
            "invalid slice index: {} > {}",
            bounds[0], bounds[1]
        )));
    }
    Ok(match item {
        Value::List(l) => Value::list(l[bounds[0]..bounds[1]].to_vec()),
        Value::Str(s) => Value::str(String::from_utf8_lossy(&s.as_bytes()[bounds[0]..bounds[1]])),
        _ => Value::Nil,
    })
}

pub(crate) fn call(name: &str, args: &[Value]) -> Result<Value, FuncError> {
    Ok(match name {
        "not" => {
            arity(name, args, 1)?;
            Value::Bool(!args[0].truthy())
        }
        "len" => {
            arity(name, args, 1)?;
            match &args[0] {
                Value::Str(s) => Value::Int(s.len() as i64),
                Value::List(l) => Value::Int(l.len() as i64),
                Value::Map(m) => Value::Int(m.len() as i64),
                Value::StrMap(m) => Value::Int(m.map.len() as i64),
                Value::Nil => return Err(FuncError::Call("len of nil pointer".into())),
                other => {
                    return Err(FuncError::Call(format!(
                        "len of type {}",
                        other.type_name()
                    )))
                }
            }
        }
        "index" => index(args)?,
        "slice" => slice(args)?,
        "print" => Value::str(gofmt::sprint(args)),
        "println" => Value::str(gofmt::sprintln(args)),
        "printf" => match args.split_first() {
            Some((Value::Str(f), rest)) => Value::str(gofmt::sprintf(f, rest)),
            Some((other, _)) => {
                return Err(FuncError::Arg(format!(
                    "wrong type for value; expected string; got {}",
                    other.type_name()
                )))
            }
            None => {
                return Err(FuncError::Arg(
                    "wrong number of args for printf: want at least 1 got 0".into(),
                ))
            }
        },
        "html" => Value::str(html_escape(&text_arg(args))),
        "js" => Value::str(js_escape(&text_arg(args))),
        "urlquery" => Value::str(query_escape(&text_arg(args))),
        "eq" => Value::Bool(eq(args)?),
        "ne" => {
            arity(name, args, 2)?;
            Value::Bool(!eq(args)?)
        }
        "lt" => Value::Bool(lt_ord(name, args)?),
        "le" => {
            if let [Value::Float(x), Value::Float(y)] = args {
                Value::Bool(x <= y)
            } else {
                Value::Bool(order(name, args)? != Ordering::Greater)
            }
        }
        "gt" => {
            if let [Value::Float(x), Value::Float(y)] = args {
                Value::Bool(x > y)
            } else {
                Value::Bool(order(name, args)? == Ordering::Greater)
            }
        }
        "ge" => {
            if let [Value::Float(x), Value::Float(y)] = args {
                Value::Bool(x >= y)
            } else {
                Value::Bool(order(name, args)? != Ordering::Less)
            }
        }
        "call" => {
            return Err(FuncError::Call(
                "call of non-function values is not supported".into(),
            ))
        }
        other => return Err(FuncError::Arg(format!("function {other:?} not defined"))),
    })
}
