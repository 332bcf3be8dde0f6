//! Go-compatible float formatting.

/// Formats a sample value as Go's `%v` / `strconv.FormatFloat(v, 'g', -1, 64)` does:
/// what Prometheus templates print for `$value` and what promtool prints in its
/// diffs (`1e+06`, `0.1`, `123456`, `1.5e-07`, `NaN`, `+Inf`, `-Inf`). The one
/// implementation is the exposition format's.
pub fn format_value(v: f64) -> String {
    argus_expfmt::format_g(v)
}

/// Formats as Go's `strconv.FormatFloat(v, 'f', -1, 64)`: shortest digits, never an
/// exponent (what the Prometheus HTTP API and `count_values` print).
pub fn format_value_plain(v: f64) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let (neg, digits, exp) = shortest(v);
    let s = fixed(&digits, exp);
    if neg {
        format!("-{s}")
    } else {
        s
    }
}

fn special(v: f64) -> Option<String> {
    if v.is_nan() {
        Some("NaN".into())
    } else if v == f64::INFINITY {
        Some("+Inf".into())
    } else if v == f64::NEG_INFINITY {
        Some("-Inf".into())
    } else {
        None
    }
}

/// Shortest round-trip decimal digits and the decimal exponent of the first digit.
fn shortest(v: f64) -> (bool, String, i32) {
    let s = format!("{:e}", v.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    (v.is_sign_negative(), digits, exp)
}

fn fixed(digits: &str, exp: i32) -> String {
    let n = digits.len() as i32;
    if exp < 0 {
        let mut s = String::from("0.");
        for _ in 0..(-exp - 1) {
            s.push('0');
        }
        s.push_str(digits);
        s
    } else if exp + 1 >= n {
        let mut s = digits.to_string();
        for _ in 0..(exp + 1 - n) {
            s.push('0');
        }
        s
    } else {
        let (a, b) = digits.split_at((exp + 1) as usize);
        format!("{a}.{b}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_percent_v() {
        let cases = [
            (0.0, "0"),
            (1.0, "1"),
            (-1.5, "-1.5"),
            (0.1, "0.1"),
            (123456.0, "123456"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e21, "1e+21"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (100.0, "100"),
            (0.3333333333333333, "0.3333333333333333"),
        ];
        for (v, s) in cases {
            assert_eq!(format_value(v), s, "{v}");
        }
    }

    #[test]
    fn go_f_minus_one() {
        let cases = [
            (1e21, "1000000000000000000000"),
            (1e-7, "0.0000001"),
            (1.5, "1.5"),
            (-2.0, "-2"),
            (f64::INFINITY, "+Inf"),
            (1e6, "1000000"),
        ];
        for (v, s) in cases {
            assert_eq!(format_value_plain(v), s, "{v}");
        }
    }
}
