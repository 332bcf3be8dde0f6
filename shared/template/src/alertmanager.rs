//! Alertmanager's notification template functions and data (alertmanager/template).

use crate::prometheus::{insert_case_funcs, str_arg, want};
use crate::value::{string_list, Value};
use crate::{FuncError, FuncMap};
use argus_model::time::{rfc3339, Millis};
use argus_model::Labels;

/// Alertmanager's `DefaultFuncs` (plus `date`, UTC only).
pub fn funcs() -> FuncMap {
    let mut m = FuncMap::new();
    insert_case_funcs(&mut m);
    m.insert("join", |a| {
        want("join", a, 2)?;
        let sep = str_arg(a, 0)?;
        let items = string_list(&a[1]).map_err(FuncError::Arg)?;
        Ok(Value::str(items.join(sep)))
    });
    m.insert("match", |a| {
        want("match", a, 2)?;
        let re = regex::Regex::new(str_arg(a, 0)?).map_err(|e| FuncError::Call(e.to_string()))?;
        Ok(Value::Bool(re.is_match(str_arg(a, 1)?)))
    });
    m.insert("safeHtml", |a| {
        want("safeHtml", a, 1)?;
        Ok(Value::str(str_arg(a, 0)?))
    });
    m.insert("reReplaceAll", |a| {
        want("reReplaceAll", a, 3)?;
        let re = regex::Regex::new(str_arg(a, 0)?).map_err(|e| FuncError::Call(e.to_string()))?;
        Ok(Value::str(re.replace_all(str_arg(a, 2)?, str_arg(a, 1)?)))
    });
    m.insert("stringSlice", |a| {
        let items: Result<Vec<Value>, FuncError> = (0..a.len())
            .map(|i| str_arg(a, i).map(Value::str))
            .collect();
        Ok(Value::list(items?))
    });
    m.insert("date", |a| {
        want("date", a, 2)?;
        let layout = str_arg(a, 0)?;
        match &a[1] {
            Value::Time(ms) => Ok(Value::str(crate::gofmt::go_time_format(*ms, layout))),
            other => Err(FuncError::Arg(format!(
                "wrong type for value; expected time.Time; got {}",
                other.type_name()
            ))),
        }
    });
    m
}

/// A template set as Alertmanager builds one: its functions and `missingkey=zero`.
/// Add files with [`Template::parse_as`].
pub fn template(name: &str) -> crate::Template {
    crate::Template::new(name, funcs()).missing_key_zero(true)
}

/// One alert as Alertmanager templates see it (`template.Alert`).
pub struct AlertData<'a> {
    pub status: &'a str,
    pub labels: &'a Labels,
    pub annotations: &'a Labels,
    pub starts_at: Millis,
    /// `None` prints as Go's zero time.
    pub ends_at: Option<Millis>,
    pub generator_url: &'a str,
    pub fingerprint: String,
}

fn kv(l: &Labels) -> Value {
    Value::kv(l.iter())
}

pub fn alert(a: &AlertData<'_>) -> Value {
    Value::object(
        "template.Alert",
        vec![
            ("Status", Value::str(a.status)),
            ("Labels", kv(a.labels)),
            ("Annotations", kv(a.annotations)),
            ("StartsAt", Value::Time(a.starts_at)),
            (
                "EndsAt",
                Value::Time(a.ends_at.unwrap_or(crate::gofmt::GO_ZERO_TIME_MS)),
            ),
            ("GeneratorURL", Value::str(a.generator_url)),
            ("Fingerprint", Value::str(&a.fingerprint)),
        ],
    )
}

/// The notification data (`template.Data`): `.Receiver`, `.Status`, `.Alerts` (with
/// `.Firing`/`.Resolved`), `.GroupLabels`, `.CommonLabels`, `.CommonAnnotations`,
/// `.ExternalURL`.
pub fn data(
    receiver: &str,
    status: &str,
    alerts: Vec<Value>,
    group_labels: &Labels,
    common_labels: &Labels,
    common_annotations: &Labels,
    external_url: &str,
) -> Value {
    Value::object(
        "*template.Data",
        vec![
            ("Receiver", Value::str(receiver)),
            ("Status", Value::str(status)),
            ("Alerts", Value::list(alerts)),
            ("GroupLabels", kv(group_labels)),
            ("CommonLabels", kv(common_labels)),
            ("CommonAnnotations", kv(common_annotations)),
            ("ExternalURL", Value::str(external_url)),
        ],
    )
}

/// RFC 3339 as Alertmanager's JSON prints times (helper for callers building data).
pub fn time_string(ms: Millis) -> String {
    rfc3339(ms)
}
