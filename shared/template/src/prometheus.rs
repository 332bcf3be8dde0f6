//! Prometheus' template functions and expansion (prometheus/template), as in 2.42.

use crate::gofmt::{self, format_float_g};
use crate::value::{StrMap, Value};
use crate::{FuncError, FuncMap, Template};
use argus_model::Labels;
use std::sync::Arc;

/// Runs a PromQL instant query at the evaluation time; returns the vector.
pub type QueryFn = Arc<dyn Fn(&str) -> Result<Vec<(Labels, f64)>, String> + Send + Sync>;

/// What the functions need from their surroundings.
#[derive(Clone, Default)]
pub struct PromContext {
    /// `query`; without it `query` fails with "query is not available".
    pub query: Option<QueryFn>,
    /// `externalURL` / `pathPrefix`.
    pub external_url: String,
}

/// Checks a function got exactly `n` arguments (Go template's error wording).
pub(crate) fn want(name: &str, args: &[Value], n: usize) -> Result<(), FuncError> {
    if args.len() != n {
        return Err(FuncError::Arg(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        )));
    }
    Ok(())
}

/// Argument `i` as a string (Go template's error wording otherwise).
pub(crate) fn str_arg(args: &[Value], i: usize) -> Result<&str, FuncError> {
    match &args[i] {
        Value::Str(s) => Ok(s),
        other => Err(FuncError::Arg(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        ))),
    }
}

fn float_arg(args: &[Value], i: usize) -> Result<f64, FuncError> {
    args[i].to_float().map_err(FuncError::Call)
}

fn g4(v: f64) -> String {
    format_float_g(v, Some(4), false)
}

pub fn humanize(mut v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
        return format!("{}{}", g4(v), prefix);
    }
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{}", g4(v), prefix)
}

pub fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{}", g4(v), prefix)
}

pub fn humanize_duration(mut v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    if v == 0.0 {
        return format!("{}s", g4(v));
    }
    if v.abs() >= 1.0 {
        let mut sign = "";
        if v < 0.0 {
            sign = "-";
            v = -v;
        }
        let d = v as i64;
        let (seconds, minutes, hours, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86400);
        if days != 0 {
            return format!("{sign}{days}d {hours}h {minutes}m {seconds}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {minutes}m {seconds}s");
        }
        if minutes != 0 {
            return format!("{sign}{minutes}m {seconds}s");
        }
        return format!("{sign}{}s", g4(v));
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{}s", g4(v), prefix)
}

pub fn humanize_percentage(v: f64) -> String {
    format!("{}%", g4(v * 100.0))
}

/// Seconds → `time.Time` at millisecond precision (Prometheus' `model.Time`).
fn float_to_time(v: f64) -> Result<Option<i64>, String> {
    if v.is_nan() || v.is_infinite() {
        return Ok(None);
    }
    let ns = v * 1e9;
    if ns > i64::MAX as f64 || ns < i64::MIN as f64 {
        return Err(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            gofmt::format_float_v(v)
        ));
    }
    Ok(Some((ns as i64).div_euclid(1_000_000)))
}

pub fn humanize_timestamp(v: f64) -> Result<String, String> {
    match float_to_time(v)? {
        None => Ok(g4(v)),
        Some(ms) => Ok(gofmt::go_time_string(ms)),
    }
}

/// Go's `net.SplitHostPort`.
pub fn split_host_port(hp: &str) -> Option<(String, String)> {
    if let Some(rest) = hp.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        if port.contains(':') {
            return None;
        }
        return Some((host.to_string(), port.to_string()));
    }
    let (host, port) = hp.rsplit_once(':')?;
    if host.contains(':') || host.contains('[') || host.contains(']') {
        return None;
    }
    Some((host.to_string(), port.to_string()))
}

pub fn strip_port(hp: &str) -> String {
    split_host_port(hp)
        .map(|(h, _)| h)
        .unwrap_or_else(|| hp.to_string())
}

pub fn strip_domain(hp: &str) -> String {
    let (host, port) = split_host_port(hp).unwrap_or_else(|| (hp.to_string(), String::new()));
    if host.parse::<std::net::IpAddr>().is_ok() {
        return hp.to_string();
    }
    let host = host.split('.').next().unwrap_or("").to_string();
    if port.is_empty() {
        host
    } else if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `title`, `toUpper` and `toLower`, which Prometheus and Alertmanager both define.
pub(crate) fn insert_case_funcs(m: &mut FuncMap) {
    m.insert("title", |a| {
        want("title", a, 1)?;
        Ok(Value::str(title(str_arg(a, 0)?)))
    });
    m.insert("toUpper", |a| {
        want("toUpper", a, 1)?;
        Ok(Value::str(str_arg(a, 0)?.to_uppercase()))
    });
    m.insert("toLower", |a| {
        want("toLower", a, 1)?;
        Ok(Value::str(str_arg(a, 0)?.to_lowercase()))
    });
}

/// `cases.Title(language.AmericanEnglish, cases.NoLower)`: upper-cases the first letter
/// of every word.
pub fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_word = false;
    for c in s.chars() {
        if !prev_word && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_word = c.is_alphanumeric() || c == '_' || c == '\'';
    }
    out
}

fn compile(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(pattern).map_err(|e| {
        format!(
            "error parsing regexp: {}",
            e.to_string().lines().last().unwrap_or("")
        )
    })
}

/// Go's `ReplaceAllString` expansion syntax is Rust regex's (`$1`, `${name}`).
fn re_replace_all(args: &[Value]) -> Result<Value, FuncError> {
    want("reReplaceAll", args, 3)?;
    let (pattern, repl, text) = (str_arg(args, 0)?, str_arg(args, 1)?, str_arg(args, 2)?);
    let re = compile(pattern)
        .map_err(|e| FuncError::Call(format!("regexp: Compile({pattern:?}): {e}")))?;
    Ok(Value::str(re.replace_all(text, repl)))
}

fn match_fn(args: &[Value]) -> Result<Value, FuncError> {
    want("match", args, 2)?;
    let re = compile(str_arg(args, 0)?).map_err(FuncError::Call)?;
    Ok(Value::Bool(re.is_match(str_arg(args, 1)?)))
}

/// A query result sample as templates see it (`.Labels`, `.Value`).
pub fn sample(labels: &Labels, value: f64) -> Value {
    Value::object(
        "*template.sample",
        vec![
            (
                "Labels",
                Value::StrMap(Arc::new(StrMap {
                    map: labels.to_map(),
                    kv: false,
                })),
            ),
            ("Value", Value::Float(value)),
        ],
    )
}

fn sample_arg<'a>(name: &str, v: &'a Value) -> Result<&'a crate::value::Struct, FuncError> {
    match v {
        Value::Struct(s) if s.type_name == "*template.sample" => Ok(s),
        Value::Nil => Err(FuncError::Call(format!("{name}: nil sample"))),
        other => Err(FuncError::Arg(format!(
            "wrong type for value; expected *template.sample; got {}",
            other.type_name()
        ))),
    }
}

fn sample_label(s: &crate::value::Struct, label: &str) -> String {
    match s.get("Labels") {
        Some(Value::StrMap(m)) => m.map.get(label).cloned().unwrap_or_default(),
        _ => String::new(),
    }
}

fn query_result(v: &Value) -> Result<&[Value], FuncError> {
    match v {
        Value::List(l) => Ok(l),
        Value::Nil => Ok(&[]),
        other => Err(FuncError::Arg(format!(
            "wrong type for value; expected template.queryResult; got {}",
            other.type_name()
        ))),
    }
}

/// Prometheus' text-mode function map (prometheus/template `NewTemplateExpander`).
pub fn funcs(ctx: PromContext) -> FuncMap {
    let mut m = FuncMap::new();
    let q = ctx.query.clone();
    m.insert("query", move |a| {
        want("query", a, 1)?;
        let expr = str_arg(a, 0)?;
        let f = q
            .as_ref()
            .ok_or_else(|| FuncError::Call("query is not available here".into()))?;
        let v = f(expr).map_err(FuncError::Call)?;
        Ok(Value::list(v.iter().map(|(l, x)| sample(l, *x)).collect()))
    });
    m.insert("first", |a| {
        want("first", a, 1)?;
        query_result(&a[0])?
            .first()
            .cloned()
            .ok_or_else(|| FuncError::Call("first() called on vector with no elements".into()))
    });
    m.insert("label", |a| {
        want("label", a, 2)?;
        let l = str_arg(a, 0)?;
        Ok(Value::str(sample_label(sample_arg("label", &a[1])?, l)))
    });
    m.insert("value", |a| {
        want("value", a, 1)?;
        Ok(sample_arg("value", &a[0])?
            .get("Value")
            .cloned()
            .unwrap_or_default())
    });
    m.insert("strvalue", |a| {
        want("strvalue", a, 1)?;
        Ok(Value::str(sample_label(
            sample_arg("strvalue", &a[0])?,
            "__value__",
        )))
    });
    m.insert("args", |a| {
        Ok(Value::map(
            a.iter()
                .enumerate()
                .map(|(i, v)| (format!("arg{i}"), v.clone())),
        ))
    });
    m.insert("reReplaceAll", re_replace_all);
    m.insert("safeHtml", |a| {
        want("safeHtml", a, 1)?;
        Ok(Value::str(str_arg(a, 0)?))
    });
    m.insert("match", match_fn);
    insert_case_funcs(&mut m);
    m.insert("graphLink", |a| {
        want("graphLink", a, 1)?;
        Ok(Value::str(format!(
            "/graph?g0.expr={}&g0.tab=0",
            crate::query_escape(str_arg(a, 0)?)
        )))
    });
    m.insert("tableLink", |a| {
        want("tableLink", a, 1)?;
        Ok(Value::str(format!(
            "/graph?g0.expr={}&g0.tab=1",
            crate::query_escape(str_arg(a, 0)?)
        )))
    });
    m.insert("sortByLabel", |a| {
        want("sortByLabel", a, 2)?;
        let l = str_arg(a, 0)?.to_string();
        let mut v = query_result(&a[1])?.to_vec();
        v.sort_by_cached_key(|s| match s {
            Value::Struct(s) => sample_label(s, &l),
            _ => String::new(),
        });
        Ok(Value::list(v))
    });
    m.insert("humanize", |a| {
        want("humanize", a, 1)?;
        Ok(Value::str(humanize(float_arg(a, 0)?)))
    });
    m.insert("humanize1024", |a| {
        want("humanize1024", a, 1)?;
        Ok(Value::str(humanize1024(float_arg(a, 0)?)))
    });
    m.insert("humanizeDuration", |a| {
        want("humanizeDuration", a, 1)?;
        Ok(Value::str(humanize_duration(float_arg(a, 0)?)))
    });
    m.insert("humanizePercentage", |a| {
        want("humanizePercentage", a, 1)?;
        Ok(Value::str(humanize_percentage(float_arg(a, 0)?)))
    });
    m.insert("humanizeTimestamp", |a| {
        want("humanizeTimestamp", a, 1)?;
        Ok(Value::str(humanize_timestamp(float_arg(a, 0)?)?))
    });
    m.insert("toTime", |a| {
        want("toTime", a, 1)?;
        let v = float_arg(a, 0)?;
        match float_to_time(v)? {
            Some(ms) => Ok(Value::Time(ms)),
            None => Err(FuncError::Call("value is NaN or Inf".into())),
        }
    });
    m.insert("parseDuration", |a| {
        want("parseDuration", a, 1)?;
        let d = argus_model::time::parse_duration(str_arg(a, 0)?).map_err(FuncError::Call)?;
        Ok(Value::Float(d.as_secs_f64()))
    });
    m.insert("stripPort", |a| {
        want("stripPort", a, 1)?;
        Ok(Value::str(strip_port(str_arg(a, 0)?)))
    });
    m.insert("stripDomain", |a| {
        want("stripDomain", a, 1)?;
        Ok(Value::str(strip_domain(str_arg(a, 0)?)))
    });
    let url = ctx.external_url.clone();
    m.insert("externalURL", move |a| {
        want("externalURL", a, 0)?;
        Ok(Value::str(&url))
    });
    let url = ctx.external_url;
    m.insert("pathPrefix", move |a| {
        want("pathPrefix", a, 0)?;
        Ok(Value::str(url_path(&url)))
    });
    m
}

/// Go's `url.URL.Path` of an absolute URL (empty when there is none).
fn url_path(u: &str) -> String {
    let Some((_, rest)) = u.split_once("://") else {
        return String::new();
    };
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    match rest.find('/') {
        Some(i) => rest[i..].to_string(),
        None => String::new(),
    }
}

/// The data Prometheus gives alert label/annotation templates
/// (`AlertTemplateData`): `.Labels`, `.ExternalLabels`, `.ExternalURL`, `.Value`.
pub fn alert_data<K: AsRef<str>, V: AsRef<str>>(
    labels: &[(K, V)],
    external_labels: &[(K, V)],
    external_url: &str,
    value: f64,
) -> Value {
    let sm = |pairs: &[(K, V)]| {
        Value::StrMap(Arc::new(StrMap {
            map: pairs
                .iter()
                .map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string()))
                .collect(),
            kv: false,
        }))
    };
    Value::object(
        "struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value float64 }",
        vec![
            ("Labels", sm(labels)),
            ("ExternalLabels", sm(external_labels)),
            ("ExternalURL", Value::str(external_url)),
            ("Value", Value::Float(value)),
        ],
    )
}

/// The variable definitions Prometheus prepends to every alert template.
pub const ALERT_DEFS: &str =
    "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// Prometheus' `Expander.Expand`: parses (with `missingkey=zero`) and executes, wrapping
/// errors as `error parsing template NAME: ...` / `error executing template NAME: ...`.
pub fn expand(name: &str, text: &str, data: &Value, funcs: &FuncMap) -> Result<String, String> {
    let mut t = Template::new(name, funcs.clone()).missing_key_zero(true);
    t.parse(text)
        .map_err(|e| format!("error parsing template {name}: {e}"))?;
    t.execute(data)
        .map_err(|e| format!("error executing template {name}: {e}"))
}

/// Expands an alert label or annotation template as an alerting rule does: the
/// `$labels`/`$value`/... definitions are prepended, and a failure yields
/// `<error expanding template: ...>`.
pub fn expand_alert_text(rule_name: &str, text: &str, data: &Value, funcs: &FuncMap) -> String {
    let full = format!("{ALERT_DEFS}{text}");
    match expand(&format!("__alert_{rule_name}"), &full, data, funcs) {
        Ok(s) => s,
        Err(e) => format!("<error expanding template: {e}>"),
    }
}

/// `ParseTest` of a rule's label/annotation template (as `promtool check rules`).
pub fn check_alert_text(rule_name: &str, text: &str) -> Result<(), String> {
    AlertTemplate::compile(rule_name, text).map(|_| ())
}

/// A borrowed query function: PromQL text to an instant vector at the evaluation time.
pub type QueryRef<'a> = &'a dyn Fn(&str) -> Result<Vec<(Labels, f64)>, String>;

/// What an alert template may reach at expansion time.
pub struct ExpandEnv<'a> {
    /// Runs `query` at the evaluation time.
    pub query: Option<QueryRef<'a>>,
    pub external_url: &'a str,
}

/// A rule's label or annotation template, parsed once and expanded per alert.
#[derive(Debug, Clone)]
pub struct AlertTemplate {
    name: String,
    text: String,
    /// `None` when the text has no action: it expands to itself.
    tmpl: Option<Template>,
}

thread_local! {
    static BASE_FUNCS: FuncMap = funcs(PromContext::default());
}

impl AlertTemplate {
    /// Parses `text` as Prometheus does for alert `rule_name` (definitions prepended,
    /// `missingkey=zero`); the error is Go's parse error.
    pub fn compile(rule_name: &str, text: &str) -> Result<AlertTemplate, String> {
        let name = format!("__alert_{rule_name}");
        if !text.contains("{{") {
            return Ok(AlertTemplate {
                name,
                text: text.to_string(),
                tmpl: None,
            });
        }
        let full = format!("{ALERT_DEFS}{text}");
        let fm = BASE_FUNCS.with(|f| f.clone());
        let mut t = Template::new(&name, fm).missing_key_zero(true);
        t.parse(&full).map_err(|e| e.to_string())?;
        Ok(AlertTemplate {
            name,
            text: text.to_string(),
            tmpl: Some(t),
        })
    }

    /// A text used verbatim (recording rule labels).
    pub fn plain(text: &str) -> AlertTemplate {
        AlertTemplate {
            name: String::new(),
            text: text.to_string(),
            tmpl: None,
        }
    }

    /// Whether the text has actions (else it expands to itself).
    pub fn is_templated(&self) -> bool {
        self.tmpl.is_some()
    }

    /// The source text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Expands for one alert; failures read `<error expanding template: ...>`.
    pub fn expand(&self, data: &Value, env: &ExpandEnv<'_>) -> String {
        let Some(t) = &self.tmpl else {
            return self.text.clone();
        };
        let ov = |name: &str, args: &[Value]| -> Option<Result<Value, FuncError>> {
            match name {
                "query" => Some(match env.query {
                    None => Err(FuncError::Call("query is not available here".into())),
                    Some(q) => want("query", args, 1).and_then(|_| {
                        let v = q(str_arg(args, 0)?).map_err(FuncError::Call)?;
                        Ok(Value::list(v.iter().map(|(l, x)| sample(l, *x)).collect()))
                    }),
                }),
                "externalURL" => Some(want(name, args, 0).map(|_| Value::str(env.external_url))),
                "pathPrefix" => {
                    Some(want(name, args, 0).map(|_| Value::str(url_path(env.external_url))))
                }
                _ => None,
            }
        };
        match t.execute_with(data, &ov) {
            Ok(s) => s,
            Err(e) => format!(
                "<error expanding template: error executing template {}: {e}>",
                self.name
            ),
        }
    }
}
