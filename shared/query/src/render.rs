//! JSON the way Prometheus' API writes it (`util/jsonutil`, `web/api/v1`).

use argus_model::Labels;
use argus_promql::{Sample, Series, Value};
use serde_json::{json, Number, Value as J};

/// A sample timestamp: seconds with the milliseconds as a fraction, integers bare
/// (`jsonutil.MarshalTimestamp`).
pub fn ts(ms: i64) -> J {
    if ms % 1000 == 0 {
        J::Number(Number::from(ms / 1000))
    } else {
        Number::from_f64(ms as f64 / 1000.0)
            .map(J::Number)
            .unwrap_or(J::Null)
    }
}

/// A sample value: `'f'` formatting, `'e'` below 1e-6 and from 1e21
/// (`jsonutil.MarshalValue`).
pub fn value(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && a.is_finite() && !(1e-6..1e21).contains(&a) {
        go_e(v)
    } else {
        argus_promql::format_value_plain(v)
    }
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`: shortest digits, `d.ddde±XX`.
pub fn go_e(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let s = format!("{v:e}");
    let (mant, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mant}e{sign}{:02}", exp.abs())
}

pub fn point(ms: i64, v: f64) -> J {
    json!([ts(ms), value(v)])
}

pub fn labels(l: &Labels) -> J {
    let mut m = serde_json::Map::new();
    for (k, v) in l.iter() {
        m.insert(k.to_string(), J::String(v.to_string()));
    }
    J::Object(m)
}

/// RFC 3339 with nanosecond precision trimmed, as Go's `time.Time` marshals
/// (`0001-01-01T00:00:00Z` for the zero time).
pub fn time(ms: Option<i64>) -> J {
    match ms {
        None => J::String("0001-01-01T00:00:00Z".into()),
        Some(ms) => J::String(
            argus_model::time::to_datetime(ms).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        ),
    }
}

fn vector(samples: &[Sample], at: i64) -> J {
    J::Array(
        samples
            .iter()
            .map(|s| json!({"metric": labels(&s.labels), "value": point(at, s.value)}))
            .collect(),
    )
}

pub fn matrix(series: &[Series]) -> J {
    J::Array(
        series
            .iter()
            .map(|s| {
                json!({
                    "metric": labels(&s.labels),
                    "values": s.samples.iter().map(|&(t, v)| point(t, v)).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

/// `queryData` of an instant query evaluated at `at`.
pub fn instant(v: &Value, at: i64) -> J {
    let (kind, result) = match v {
        Value::Scalar(x) => ("scalar", point(at, *x)),
        Value::String(s) => ("string", json!([ts(at), s])),
        Value::Vector(samples) => ("vector", vector(samples, at)),
        Value::Matrix(series) => ("matrix", matrix(series)),
    };
    json!({"resultType": kind, "result": result})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_prometheus_writes_them() {
        assert_eq!(ts(1435781451781).to_string(), "1435781451.781");
        assert_eq!(ts(1435781451000).to_string(), "1435781451");
        assert_eq!(ts(1435781451010).to_string(), "1435781451.01");
        assert_eq!(value(1.0), "1");
        assert_eq!(value(0.1), "0.1");
        assert_eq!(value(1e21), "1e+21");
        assert_eq!(value(1.5e-7), "1.5e-07");
        assert_eq!(value(123456789.0), "123456789");
        assert_eq!(value(f64::NAN), "NaN");
        assert_eq!(value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(value(0.0), "0");
        assert_eq!(go_e(1.0), "1e+00");
        assert_eq!(go_e(-0.25), "-2.5e-01");
        assert_eq!(go_e(123.0), "1.23e+02");
        assert_eq!(time(None), "0001-01-01T00:00:00Z");
        assert_eq!(time(Some(1435781451781)), "2015-07-01T20:10:51.781Z");
        assert_eq!(time(Some(1435781451000)), "2015-07-01T20:10:51Z");
    }
}
