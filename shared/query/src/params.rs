//! Request parameters as Prometheus' API reads them (`r.FormValue`, `r.Form["match[]"]`)
//! and its time / duration syntax (`web/api/v1/api.go`: `parseTime`, `parseDuration`).

/// Form values: an urlencoded POST body first, then the URL query (Go's `r.Form`
/// order, so `FormValue` prefers the body).
#[derive(Debug, Default, Clone)]
pub struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    pub fn from_request(req: &http::Request<bytes::Bytes>) -> Form {
        let mut pairs = Vec::new();
        let is_form = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|t| t.trim() == "application/x-www-form-urlencoded")
            });
        if matches!(*req.method(), http::Method::POST | http::Method::PUT) && is_form {
            pairs.extend(url::form_urlencoded::parse(req.body()).into_owned());
        }
        if let Some(q) = req.uri().query() {
            pairs.extend(url::form_urlencoded::parse(q.as_bytes()).into_owned());
        }
        Form { pairs }
    }

    /// The URL query only (what Go's `r.URL.Query()` reads).
    pub fn query_only(req: &http::Request<bytes::Bytes>) -> Form {
        Form {
            pairs: req
                .uri()
                .query()
                .map(|q| {
                    url::form_urlencoded::parse(q.as_bytes())
                        .into_owned()
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The first value, "" when absent (`FormValue`).
    pub fn get(&self, name: &str) -> &str {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Prometheus' `minTime` / `maxTime` (ms): the defaults of `start` / `end`.
pub const MIN_TIME_MS: i64 = (i64::MIN / 1000 + 62135596801) * 1000;
pub const MAX_TIME_MS: i64 = (i64::MAX / 1000 - 62135596801) * 1000 + 999;
const MIN_TIME_FORMATTED: &str = "-292273086-05-16T16:47:06Z";
const MAX_TIME_FORMATTED: &str = "292277025-08-18T07:12:54.999999999Z";

/// `parseTime`: float unix seconds (rounded to the millisecond as Go does) or RFC 3339.
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Some(t) = go_parse_float(s) {
        if t.is_finite() {
            let secs = t.trunc();
            let frac = ((t - secs) * 1000.0).round() / 1000.0;
            // time.Unix(sec, nsec) normalises nsec into [0, 1e9); FromTime then
            // truncates to milliseconds.
            let mut sec = secs as i128;
            let mut nsec = (frac * 1e9) as i128;
            if nsec < 0 {
                sec -= 1;
                nsec += 1_000_000_000;
            }
            let ms = sec * 1000 + nsec / 1_000_000;
            return Ok(ms.clamp(i64::MIN as i128, i64::MAX as i128) as i64);
        }
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        if s.contains('T') {
            return Ok(t.timestamp_millis());
        }
    }
    match s {
        MIN_TIME_FORMATTED => Ok(MIN_TIME_MS),
        MAX_TIME_FORMATTED => Ok(MAX_TIME_MS),
        _ => Err(format!("cannot parse {s:?} to a valid timestamp")),
    }
}

/// `parseTimeParam`: the default when empty, Prometheus' wrapped message otherwise.
pub fn parse_time_param(form: &Form, name: &str, default: i64) -> Result<i64, String> {
    let v = form.get(name);
    if v.is_empty() {
        return Ok(default);
    }
    parse_time(v).map_err(|e| format!("Invalid time value for '{name}': {e}"))
}

/// `parseDuration`: float seconds or a Prometheus duration; nanoseconds.
pub fn parse_duration_ns(s: &str) -> Result<i128, String> {
    if let Some(d) = go_parse_float(s) {
        let ns = d * 1e9;
        if ns > i64::MAX as f64 || ns < i64::MIN as f64 || ns.is_nan() {
            return Err(format!(
                "cannot parse {s:?} to a valid duration. It overflows int64"
            ));
        }
        return Ok(ns as i128);
    }
    match prom_duration_ms(s) {
        Some(ms) => Ok(ms as i128 * 1_000_000),
        None => Err(format!("cannot parse {s:?} to a valid duration")),
    }
}

/// Go's `strconv.ParseFloat` for the inputs that matter here (decimal, exponent,
/// `Inf`/`NaN` spelled as Go accepts them).
fn go_parse_float(s: &str) -> Option<f64> {
    if s.is_empty() || s.contains('_') {
        return None;
    }
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let lower = body.to_ascii_lowercase();
    if matches!(lower.as_str(), "inf" | "infinity" | "nan") {
        let v = if lower == "nan" {
            f64::NAN
        } else {
            f64::INFINITY
        };
        return Some(if s.starts_with('-') { -v } else { v });
    }
    if !body
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    s.parse::<f64>().ok()
}

/// `model.ParseDuration` in milliseconds (one home: `argus_model::time::parse_duration`).
pub fn prom_duration_ms(s: &str) -> Option<u64> {
    argus_model::time::parse_duration(s)
        .ok()
        .map(|d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_prometheus_parses_them() {
        assert_eq!(parse_time("1435781451.781"), Ok(1435781451781));
        assert_eq!(parse_time("1435781451"), Ok(1435781451000));
        assert_eq!(parse_time("-1.5"), Ok(-1500));
        assert_eq!(parse_time("1e3"), Ok(1_000_000));
        assert_eq!(parse_time("2015-07-01T20:10:51.781Z"), Ok(1435781451781));
        assert_eq!(parse_time("2015-07-01T22:10:51+02:00"), Ok(1435781451000));
        assert_eq!(parse_time(MIN_TIME_FORMATTED), Ok(MIN_TIME_MS));
        assert_eq!(
            parse_time("abc"),
            Err("cannot parse \"abc\" to a valid timestamp".into())
        );
        assert!(parse_time("").is_err());
        assert!(parse_time("2015-07-01").is_err());
    }

    #[test]
    fn durations_as_prometheus_parses_them() {
        assert_eq!(parse_duration_ns("15"), Ok(15_000_000_000));
        assert_eq!(parse_duration_ns("0.5"), Ok(500_000_000));
        assert_eq!(parse_duration_ns("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_duration_ns("1h"), Ok(3_600_000_000_000));
        assert_eq!(
            parse_duration_ns("30s1m"),
            Err("cannot parse \"30s1m\" to a valid duration".into())
        );
        assert!(parse_duration_ns("1e100")
            .unwrap_err()
            .contains("overflows"));
        assert!(parse_duration_ns("").is_err());
        assert_eq!(prom_duration_ms("0"), Some(0));
        assert_eq!(
            prom_duration_ms("1y2w3d4h5m6s7ms"),
            Some(
                365 * 86_400_000
                    + 14 * 86_400_000
                    + 3 * 86_400_000
                    + 4 * 3_600_000
                    + 5 * 60_000
                    + 6_000
                    + 7
            )
        );
    }

    #[test]
    fn form_prefers_the_body() {
        let req = http::Request::builder()
            .method("POST")
            .uri("/api/v1/query?query=a&match[]=x")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(bytes::Bytes::from_static(b"query=b&match%5B%5D=y"))
            .unwrap();
        let f = Form::from_request(&req);
        assert_eq!(f.get("query"), "b");
        assert_eq!(f.all("match[]"), vec!["y", "x"]);
        assert_eq!(f.get("time"), "");
    }
}
