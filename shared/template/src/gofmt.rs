//! Go's `fmt` number and time formatting, as far as templates reach it: `%v`/`%g`/`%e`/`%f`
//! for floats (byte-identical to Go, which matters because alert annotations are compared
//! as strings), `Sprintf` with flags/width/precision, and `time.Time` printing.

use crate::value::Value;
use chrono::{Datelike, TimeZone, Timelike, Utc};

/// Unix ms of Go's zero `time.Time` (0001-01-01T00:00:00Z).
pub const GO_ZERO_TIME_MS: i64 = -62_135_596_800_000;

/// Decimal digits of a float: `0.d1d2d3... × 10^dp` (Go's `decimalSlice`).
struct Digits {
    d: Vec<u8>,
    dp: i32,
}

/// Splits Rust's `{:e}` rendering (`1.2345e-3`) into digits and decimal point position.
fn digits_from_exp(s: &str) -> Digits {
    let s = s.trim_start_matches('-');
    let (mant, exp) = s.split_once('e').unwrap_or((s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut d: Vec<u8> = mant.bytes().filter(|b| b.is_ascii_digit()).collect();
    while d.len() > 1 && d.last() == Some(&b'0') {
        d.pop();
    }
    if d == b"0" {
        return Digits {
            d: Vec::new(),
            dp: 0,
        };
    }
    Digits { d, dp: exp + 1 }
}

fn special(v: f64) -> Option<String> {
    if v.is_nan() {
        Some("NaN".into())
    } else if v.is_infinite() {
        Some(if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        })
    } else {
        None
    }
}

fn fmt_e(neg: bool, dg: &Digits, prec: usize, upper: bool) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    let first = dg.d.first().copied().unwrap_or(b'0');
    out.push(first as char);
    if prec > 0 {
        out.push('.');
        for i in 1..=prec {
            out.push(dg.d.get(i).copied().unwrap_or(b'0') as char);
        }
    }
    let exp = if dg.d.is_empty() { 0 } else { dg.dp - 1 };
    out.push(if upper { 'E' } else { 'e' });
    out.push(if exp < 0 { '-' } else { '+' });
    let a = exp.unsigned_abs();
    if a < 10 {
        out.push('0');
    }
    out.push_str(&a.to_string());
    out
}

fn fmt_f(neg: bool, dg: &Digits, prec: usize) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if dg.dp > 0 {
        for i in 0..dg.dp as usize {
            out.push(dg.d.get(i).copied().unwrap_or(b'0') as char);
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 1..=prec as i32 {
            let j = dg.dp + i - 1;
            let c = if j < 0 {
                b'0'
            } else {
                dg.d.get(j as usize).copied().unwrap_or(b'0')
            };
            out.push(c as char);
        }
    }
    out
}

/// `strconv.FormatFloat(v, 'g', prec, 64)`; `prec = None` is the shortest representation.
pub fn format_float_g(v: f64, prec: Option<usize>, upper: bool) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    let neg = v.is_sign_negative();
    let (dg, shortest) = match prec {
        None => (digits_from_exp(&format!("{:e}", v)), true),
        Some(p) => {
            let p = p.max(1);
            (digits_from_exp(&format!("{:.*e}", p - 1, v)), false)
        }
    };
    let nd = dg.d.len() as i32;
    let mut prec = match prec {
        None => nd,
        Some(p) => p.max(1) as i32,
    };
    let mut eprec = prec;
    if eprec > nd && nd >= dg.dp {
        eprec = nd;
    }
    if shortest {
        eprec = 6;
    }
    let exp = dg.dp - 1;
    if !dg.d.is_empty() && (exp < -4 || exp >= eprec) {
        if prec > nd {
            prec = nd;
        }
        return fmt_e(neg, &dg, (prec - 1).max(0) as usize, upper);
    }
    if dg.d.is_empty() {
        // Zero: Go prints "0" (or "-0").
        return if neg { "-0".into() } else { "0".into() };
    }
    if prec > dg.dp {
        prec = nd;
    }
    fmt_f(neg, &dg, (prec - dg.dp).max(0) as usize)
}

/// Go's `%v` for a float64 (one home: `argus_model::go::format_g`).
pub fn format_float_v(v: f64) -> String {
    argus_model::go::format_g(v)
}

/// Go's `%e` with a precision (default 6).
pub fn format_float_e(v: f64, prec: usize, upper: bool) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    let dg = digits_from_exp(&format!("{:.*e}", prec, v));
    fmt_e(v.is_sign_negative(), &dg, prec, upper)
}

/// Go's `%f` with a precision (default 6).
pub fn format_float_f(v: f64, prec: usize) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    let s = format!("{:.*}", prec, v);
    if s.starts_with('-') || !v.is_sign_negative() {
        s
    } else {
        format!("-{s}")
    }
}

/// `strconv.ParseFloat(s, 64)` for the forms Prometheus' `convertToFloat` accepts.
pub fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.trim_start_matches(['+', '-']);
    let neg = s.starts_with('-');
    let v = match t.to_ascii_lowercase().as_str() {
        "inf" | "infinity" => f64::INFINITY,
        "nan" => f64::NAN,
        _ => {
            if t.is_empty()
                || !t.bytes().all(|b| {
                    b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-' | b'_')
                })
            {
                return None;
            }
            t.replace('_', "").parse::<f64>().ok()?
        }
    };
    Some(if neg { -v } else { v })
}

/// Go's `strconv.Quote` (one home: `argus_model::go`).
pub use argus_model::go::quote as go_quote;

/// `time.Time.String()` for a UTC time: `2006-01-02 15:04:05.999999999 +0000 UTC`.
pub fn go_time_string(ms: i64) -> String {
    go_time_format(ms, "2006-01-02 15:04:05.999999999 -0700 MST")
}

/// `time.Time.Format(layout)` in UTC for the layout elements Go defines.
pub fn go_time_format(ms: i64, layout: &str) -> String {
    let t = match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => t,
        None => return String::new(),
    };
    let nanos = t.nanosecond() as u64;
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    let month = MONTHS[t.month0() as usize];
    let day = DAYS[t.weekday().num_days_from_monday() as usize];
    let hour12 = if t.hour() % 12 == 0 {
        12
    } else {
        t.hour() % 12
    };
    let mut out = String::new();
    let b = layout;
    let mut i = 0;
    // Longest tokens first, as Go's nextStdChunk does.
    const TOKENS: [&str; 33] = [
        "January",
        "Monday",
        "Z07:00:00",
        "-07:00:00",
        "Z070000",
        "-070000",
        "Z07:00",
        "-07:00",
        "Z0700",
        "-0700",
        "2006",
        "Jan",
        "Mon",
        "MST",
        "Z07",
        "-07",
        "002",
        "__2",
        "_2",
        "01",
        "02",
        "03",
        "04",
        "05",
        "06",
        "15",
        "PM",
        "pm",
        "1",
        "2",
        "3",
        "4",
        "5",
    ];
    while i < b.len() {
        let rest = &b[i..];
        // Fractional seconds: ".000" / ",000" / ".999".
        if (rest.starts_with('.') || rest.starts_with(',')) && rest.len() > 1 {
            let c = rest.as_bytes()[1];
            if c == b'0' || c == b'9' {
                let n = rest[1..].bytes().take_while(|&x| x == c).count();
                let after = rest.as_bytes().get(1 + n).copied();
                if !after.is_some_and(|x| x.is_ascii_digit()) {
                    let frac = format!("{:09}", nanos);
                    let mut digits = frac[..n.min(9)].to_string();
                    if c == b'9' {
                        let trimmed = digits.trim_end_matches('0').to_string();
                        digits = trimmed;
                        if !digits.is_empty() {
                            out.push(rest.as_bytes()[0] as char);
                            out.push_str(&digits);
                        }
                    } else {
                        out.push(rest.as_bytes()[0] as char);
                        out.push_str(&digits);
                    }
                    i += 1 + n;
                    continue;
                }
            }
        }
        let tok = TOKENS.iter().find(|t| rest.starts_with(**t));
        match tok {
            Some(tok) => {
                let s = match *tok {
                    "January" => month.to_string(),
                    "Jan" => month[..3].to_string(),
                    "Monday" => day.to_string(),
                    "Mon" => day[..3].to_string(),
                    "MST" => "UTC".to_string(),
                    "2006" => format!("{:04}", t.year()),
                    "06" => format!("{:02}", t.year().rem_euclid(100)),
                    "01" => format!("{:02}", t.month()),
                    "1" => t.month().to_string(),
                    "02" => format!("{:02}", t.day()),
                    "_2" => format!("{:>2}", t.day()),
                    "2" => t.day().to_string(),
                    "002" => format!("{:03}", t.ordinal()),
                    "__2" => format!("{:>3}", t.ordinal()),
                    "15" => format!("{:02}", t.hour()),
                    "03" => format!("{:02}", hour12),
                    "3" => hour12.to_string(),
                    "04" => format!("{:02}", t.minute()),
                    "4" => t.minute().to_string(),
                    "05" => format!("{:02}", t.second()),
                    "5" => t.second().to_string(),
                    "PM" => (if t.hour() >= 12 { "PM" } else { "AM" }).to_string(),
                    "pm" => (if t.hour() >= 12 { "pm" } else { "am" }).to_string(),
                    z if z.starts_with('Z') => "Z".to_string(),
                    "-07:00:00" => "+00:00:00".to_string(),
                    "-070000" => "+000000".to_string(),
                    "-07:00" => "+00:00".to_string(),
                    "-0700" => "+0000".to_string(),
                    "-07" => "+00".to_string(),
                    other => other.to_string(),
                };
                out.push_str(&s);
                i += tok.len();
            }
            None => {
                let c = rest.chars().next().unwrap_or(' ');
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
    out
}

/// `fmt.Sprint(args...)`: spaces between operands when neither side is a string.
pub fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        a.write_go(&mut out, false);
    }
    out
}

/// `fmt.Sprintln(args...)`: always spaces, and a newline.
pub fn sprintln(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        a.write_go(&mut out, false);
    }
    out.push('\n');
    out
}

#[derive(Default, Clone, Copy)]
struct Flags {
    plus: bool,
    minus: bool,
    sharp: bool,
    zero: bool,
    space: bool,
}

fn pad(s: String, width: Option<usize>, f: Flags, numeric: bool) -> String {
    let Some(w) = width else { return s };
    let n = s.chars().count();
    if n >= w {
        return s;
    }
    let fill = w - n;
    if f.minus {
        return s + &" ".repeat(fill);
    }
    if f.zero && numeric {
        // Zeros go after the sign.
        let (sign, digits) = match s.chars().next() {
            Some(c @ ('+' | '-' | ' ')) => (c.to_string(), s[1..].to_string()),
            _ => (String::new(), s),
        };
        if digits.chars().all(|c| c.is_ascii_alphabetic() || c == '+') && !digits.is_empty() {
            // Inf/NaN are padded with spaces.
            return " ".repeat(fill) + &sign + &digits;
        }
        return sign + &"0".repeat(fill) + &digits;
    }
    " ".repeat(fill) + &s
}

fn bad_verb(verb: char, v: &Value) -> String {
    match v {
        Value::Nil => format!("%!{verb}(<nil>)"),
        _ => format!("%!{verb}({}={})", v.type_name(), v.to_go_string_inner()),
    }
}

impl Value {
    fn to_go_string_inner(&self) -> String {
        let mut s = String::new();
        self.write_go(&mut s, false);
        s
    }
}

fn sign_prefix(s: String, f: Flags, nonneg: bool) -> String {
    if nonneg && f.plus {
        format!("+{s}")
    } else if nonneg && f.space {
        format!(" {s}")
    } else {
        s
    }
}

fn format_one(
    verb: char,
    f: Flags,
    width: Option<usize>,
    prec: Option<usize>,
    v: &Value,
) -> String {
    match (verb, v) {
        ('v', Value::Float(x)) | ('g', Value::Float(x)) | ('G', Value::Float(x)) => {
            let s = format_float_g(*x, if verb == 'v' { None } else { prec }, verb == 'G');
            let s = if f.plus && x.is_infinite() {
                s
            } else {
                sign_prefix(s, f, !x.is_sign_negative() && !x.is_nan())
            };
            pad(s, width, f, true)
        }
        ('e' | 'E', Value::Float(x)) => {
            let s = sign_prefix(
                format_float_e(*x, prec.unwrap_or(6), verb == 'E'),
                f,
                *x >= 0.0,
            );
            pad(s, width, f, true)
        }
        ('f' | 'F', Value::Float(x)) => {
            let s = format_float_f(*x, prec.unwrap_or(6));
            let s = if x.is_infinite() {
                s
            } else {
                sign_prefix(s, f, *x >= 0.0)
            };
            pad(s, width, f, true)
        }
        ('v' | 'd', Value::Int(i)) => pad(sign_prefix(i.to_string(), f, *i >= 0), width, f, true),
        ('x', Value::Int(i)) => pad(
            if *i < 0 {
                format!("-{:x}", i.unsigned_abs())
            } else {
                format!("{:x}", i)
            },
            width,
            f,
            true,
        ),
        ('X', Value::Int(i)) => pad(
            if *i < 0 {
                format!("-{:X}", i.unsigned_abs())
            } else {
                format!("{:X}", i)
            },
            width,
            f,
            true,
        ),
        ('o', Value::Int(i)) => pad(format!("{:o}", i), width, f, true),
        ('b', Value::Int(i)) => pad(format!("{:b}", i), width, f, true),
        ('c', Value::Int(i)) => pad(
            char::from_u32(*i as u32).unwrap_or('\u{fffd}').to_string(),
            width,
            f,
            false,
        ),
        ('q', Value::Int(i)) => pad(
            format!("'{}'", char::from_u32(*i as u32).unwrap_or('\u{fffd}')),
            width,
            f,
            false,
        ),
        ('s' | 'v', Value::Str(s)) => {
            let s: String = match prec {
                Some(p) => s.chars().take(p).collect(),
                None => s.to_string(),
            };
            pad(s, width, f, false)
        }
        ('q', Value::Str(s)) => pad(go_quote(s), width, f, false),
        ('x', Value::Str(s)) => pad(
            s.bytes().map(|b| format!("{b:02x}")).collect(),
            width,
            f,
            false,
        ),
        ('X', Value::Str(s)) => pad(
            s.bytes().map(|b| format!("{b:02X}")).collect(),
            width,
            f,
            false,
        ),
        ('t' | 'v', Value::Bool(b)) => pad(b.to_string(), width, f, false),
        ('v', other) => pad(other.to_go_string_inner(), width, f, false),
        (
            's',
            Value::List(_) | Value::Map(_) | Value::StrMap(_) | Value::Struct(_) | Value::Time(_),
        ) => pad(v.to_go_string_inner(), width, f, false),
        ('d', Value::List(l)) => {
            // Go applies the verb element-wise to slices.
            let items: Vec<String> = l
                .iter()
                .map(|x| format_one('d', f, None, prec, x))
                .collect();
            pad(format!("[{}]", items.join(" ")), width, f, false)
        }
        _ => bad_verb(verb, v),
    }
}

/// Go's `fmt.Sprintf` for the verbs and flags templates use.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut argi = 0;
    let chars: Vec<char> = format.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '%' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        let mut f = Flags::default();
        while i < chars.len() {
            match chars[i] {
                '+' => f.plus = true,
                '-' => f.minus = true,
                '#' => f.sharp = true,
                '0' => f.zero = !f.minus,
                ' ' => f.space = true,
                _ => break,
            }
            i += 1;
        }
        let mut width = None;
        if i < chars.len() && chars[i] == '*' {
            i += 1;
            match args.get(argi) {
                Some(Value::Int(w)) => {
                    if *w < 0 {
                        f.minus = true;
                    }
                    width = Some(w.unsigned_abs() as usize);
                }
                _ => out.push_str("%!(BADWIDTH)"),
            }
            argi += 1;
        } else {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if i > start {
                width = chars[start..i].iter().collect::<String>().parse().ok();
            }
        }
        let mut prec = None;
        if i < chars.len() && chars[i] == '.' {
            i += 1;
            if i < chars.len() && chars[i] == '*' {
                i += 1;
                match args.get(argi) {
                    Some(Value::Int(p)) if *p >= 0 => prec = Some(*p as usize),
                    _ => out.push_str("%!(BADPREC)"),
                }
                argi += 1;
            } else {
                let start = i;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                prec = Some(
                    chars[start..i]
                        .iter()
                        .collect::<String>()
                        .parse()
                        .unwrap_or(0),
                );
            }
        }
        if i >= chars.len() {
            out.push_str("%!(NOVERB)");
            break;
        }
        let verb = chars[i];
        i += 1;
        if verb == '%' {
            out.push('%');
            continue;
        }
        match args.get(argi) {
            None => out.push_str(&format!("%!{verb}(MISSING)")),
            Some(v) => out.push_str(&format_one(verb, f, width, prec, v)),
        }
        argi += 1;
    }
    if argi < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[argi..]
            .iter()
            .map(|v| match v {
                Value::Nil => "<nil>".to_string(),
                v => format!("{}={}", v.type_name(), v.to_go_string_inner()),
            })
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_go() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1"),
            (0.5, "0.5"),
            (1e6, "1e+06"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.0, "0"),
            (-2.5, "-2.5"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e21, "1e+21"),
        ];
        for (v, want) in cases {
            assert_eq!(format_float_v(*v), *want, "{v}");
        }
        let g4: &[(f64, &str)] = &[
            (1.0, "1"),
            (100000.0, "1e+05"),
            (1234.5, "1234"),
            (0.5, "0.5"),
            (123.456, "123.5"),
            (1200.0, "1200"),
            (12000.0, "1.2e+04"),
            (12345.0, "1.234e+04"),
            (0.0, "0"),
            (99.99, "99.99"),
            (999.95, "1000"),
            (9999.5, "1e+04"),
        ];
        for (v, want) in g4 {
            assert_eq!(format_float_g(*v, Some(4), false), *want, "{v}");
        }
    }

    #[test]
    fn sprintf_like_go() {
        let f = Value::Float(2.5125);
        assert_eq!(sprintf("%.2f", std::slice::from_ref(&f)), "2.51");
        assert_eq!(sprintf("%f", std::slice::from_ref(&f)), "2.512500");
        assert_eq!(sprintf("%e", std::slice::from_ref(&f)), "2.512500e+00");
        assert_eq!(
            sprintf(
                "%5.1f|%-6s|%03d",
                &[f.clone(), Value::str("ab"), Value::Int(7)]
            ),
            "  2.5|ab    |007"
        );
        assert_eq!(
            sprintf("%d", std::slice::from_ref(&f)),
            "%!d(float64=2.5125)"
        );
        assert_eq!(sprintf("%s", &[Value::Int(3)]), "%!s(int=3)");
        assert_eq!(sprintf("%s %s", &[Value::str("a")]), "a %!s(MISSING)");
        assert_eq!(
            sprintf("%s", &[Value::str("a"), Value::Int(1)]),
            "a%!(EXTRA int=1)"
        );
        assert_eq!(
            sprintf("%q 100%%", &[Value::str("x\"y")]),
            "\"x\\\"y\" 100%"
        );
        assert_eq!(
            sprintf("%v %v", &[Value::Float(1e6), Value::Bool(true)]),
            "1e+06 true"
        );
        assert_eq!(
            sprintf("%+d %x", &[Value::Int(5), Value::Int(255)]),
            "+5 ff"
        );
    }

    #[test]
    fn time_like_go() {
        assert_eq!(go_time_string(1000), "1970-01-01 00:00:01 +0000 UTC");
        assert_eq!(go_time_string(1500), "1970-01-01 00:00:01.5 +0000 UTC");
        assert_eq!(
            go_time_format(0, "2006-01-02T15:04:05Z07:00"),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(
            go_time_format(90_061_000, "Mon Jan _2 3:04PM"),
            "Fri Jan  2 1:01AM"
        );
    }
}
