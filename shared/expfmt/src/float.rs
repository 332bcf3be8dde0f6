//! Numbers as Go prints and parses them.

pub use argus_model::go::format_g;
pub(crate) use argus_model::go::push_g;

/// Formats a sample value or `le`/`quantile` label value exactly as the Go text writer
/// (`writeFloat` in `expfmt`): like [`format_g`] but negative zero prints as `0`.
pub fn format_float(f: f64) -> String {
    let mut out = String::new();
    push_float(&mut out, f);
    out
}

pub(crate) fn push_float(out: &mut String, f: f64) {
    if f == 0.0 {
        out.push('0');
    } else if f == 1.0 {
        out.push('1');
    } else if f == -1.0 {
        out.push_str("-1");
    } else {
        push_g(out, f);
    }
}

/// Parses a float as the Go text parser does (`strconv.ParseFloat` refusing `p`, `P`
/// and `_`): decimal or exponent notation, `Inf`/`Infinity` with optional sign, `NaN`
/// without sign (any case). Overflow is an error, as in Go.
pub fn parse_float(s: &str) -> Option<f64> {
    if s.is_empty() || s.contains(['p', 'P', '_']) {
        return None;
    }
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let is_inf = body.eq_ignore_ascii_case("inf") || body.eq_ignore_ascii_case("infinity");
    if body.eq_ignore_ascii_case("nan") {
        return (body.len() == s.len()).then_some(f64::NAN);
    }
    // Rust accepts a superset of the remaining Go syntax only for "nan" with sign
    // (handled above); everything else (digits, '.', exponent) matches.
    if !is_inf
        && !body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    if v.is_infinite() && !is_inf {
        return None; // out of range: Go returns ErrRange
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_g_formatting() {
        let cases: &[(f64, &str)] = &[
            (1e6, "1e+06"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.7e9, "1.7e+09"),
            (1.7953159496679754e9, "1.7953159496679754e+09"),
            (-2.5, "-2.5"),
            (100.0, "100"),
            (1e21, "1e+21"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (-0.0, "-0"),
            (12.5, "12.5"),
            (99999.9, "99999.9"),
        ];
        for (f, want) in cases {
            assert_eq!(format_g(*f), *want, "{f:?}");
        }
        assert_eq!(format_float(-0.0), "0");
        assert_eq!(format_float(1.0), "1");
    }

    #[test]
    fn go_parse_float() {
        assert_eq!(parse_float("1e3"), Some(1000.0));
        assert_eq!(parse_float("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_float("-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_float("Infinity"), Some(f64::INFINITY));
        assert!(parse_float("NaN").unwrap().is_nan());
        assert!(parse_float("nan").unwrap().is_nan());
        assert_eq!(parse_float("+NaN"), None);
        assert_eq!(parse_float("1e400"), None);
        assert_eq!(parse_float("0x1p3"), None);
        assert_eq!(parse_float("1_000"), None);
        assert_eq!(parse_float(""), None);
        assert_eq!(parse_float(".5"), Some(0.5));
        assert_eq!(parse_float("5."), Some(5.0));
        assert_eq!(parse_float("abc"), None);
    }
}
