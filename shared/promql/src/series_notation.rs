//! The promtool / PromQL-test "expanding notation" for series, as Prometheus'
//! `parser.ParseSeriesDesc` reads it: `metric{a="b"} 1+1x10 _ stale -2x3 1e3+0x5 _x3`.
//!
//! * `a+bxN` (or `a-bxN`) expands to the N+1 values `a, a+b, ..., a+N*b` (accumulated by
//!   repeated addition, as Prometheus does);
//! * `vxN` repeats `v` N+1 times;
//! * `_` is an omitted sample (`None`), `_xN` N omitted samples;
//! * `stale` is a staleness marker (`Some(STALE_NAN)`, see [`crate::is_stale`]);
//! * numbers are Go floats, plus `Inf`/`NaN` in any case; hexadecimal is not allowed
//!   (`0x5` means "0 repeated").

use crate::error::PromqlError;
use argus_model::Labels;

/// One value of a series description: `None` for `_` (no sample at that step).
pub type SeqValue = Option<f64>;

/// Guard against `1x1000000000` exhausting memory.
const MAX_VALUES: usize = 10_000_000;

fn err<T>(input: &str, msg: impl Into<String>) -> Result<T, PromqlError> {
    Err(PromqlError::SeriesNotation {
        input: input.to_string(),
        msg: msg.into(),
    })
}

/// Parses a whole series description: a metric followed by its values
/// (`up{job="a"} 1 2 _ stale 0x3`).
pub fn parse_series_desc(input: &str) -> Result<(Labels, Vec<SeqValue>), PromqlError> {
    let (labels, rest) = parse_metric_prefix(input)?;
    let values = parse_values(rest).map_err(|e| match e {
        PromqlError::SeriesNotation { msg, .. } => PromqlError::SeriesNotation {
            input: input.to_string(),
            msg,
        },
        other => other,
    })?;
    Ok((labels, values))
}

/// Parses promtool's `input_series` entry (`series` and `values` given separately).
pub fn parse_input_series(
    series: &str,
    values: &str,
) -> Result<(Labels, Vec<SeqValue>), PromqlError> {
    parse_series_desc(&format!("{series} {values}"))
}

/// Parses a metric with optional label set: `name`, `name{a="b"}`, `{__name__="x", a='b'}`.
/// Only `=` is allowed; empty label values are dropped (as Prometheus).
pub fn parse_metric(input: &str) -> Result<Labels, PromqlError> {
    let (labels, rest) = parse_metric_prefix(input)?;
    if !rest.trim().is_empty() {
        return err(
            input,
            format!("unexpected {:?} after the metric", rest.trim()),
        );
    }
    Ok(labels)
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Parses the metric at the start of `input`, returning the labels and the rest.
fn parse_metric_prefix(input: &str) -> Result<(Labels, &str), PromqlError> {
    let s = input.trim_start();
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    let bytes: Vec<char> = s.chars().collect();
    // byte offsets for slicing the rest
    let offs: Vec<usize> = s
        .char_indices()
        .map(|(o, _)| o)
        .chain(std::iter::once(s.len()))
        .collect();
    if i < bytes.len() && is_name_start(bytes[i]) {
        let st = i;
        while i < bytes.len() && is_name_char(bytes[i]) {
            i += 1;
        }
        let name: String = bytes[st..i].iter().collect();
        pairs.push(("__name__".into(), name));
    }
    if i < bytes.len() && bytes[i] == '{' {
        i += 1;
        loop {
            while i < bytes.len() && bytes[i].is_whitespace() {
                i += 1;
            }
            if i >= bytes.len() {
                return err(input, "unterminated label set (missing '}')");
            }
            if bytes[i] == '}' {
                i += 1;
                break;
            }
            // label name (may be quoted in newer Prometheus; accept plain names)
            if !(bytes[i].is_ascii_alphabetic() || bytes[i] == '_') {
                return err(
                    input,
                    format!("expected a label name at {:?}", &s[offs[i]..]),
                );
            }
            let st = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == '_') {
                i += 1;
            }
            let lname: String = bytes[st..i].iter().collect();
            while i < bytes.len() && bytes[i].is_whitespace() {
                i += 1;
            }
            if i >= bytes.len() || bytes[i] != '=' {
                return err(input, format!("expected '=' after label name {lname:?}"));
            }
            i += 1;
            if i < bytes.len() && (bytes[i] == '~' || bytes[i] == '=') {
                return err(
                    input,
                    format!("only '=' is allowed for label {lname:?} in a series description"),
                );
            }
            while i < bytes.len() && bytes[i].is_whitespace() {
                i += 1;
            }
            let (val, n) = unquote(&bytes[i..]).map_err(|m| PromqlError::SeriesNotation {
                input: input.to_string(),
                msg: format!("label {lname:?}: {m}"),
            })?;
            i += n;
            if pairs.iter().any(|(k, _)| *k == lname) {
                return err(input, format!("duplicate label name {lname:?}"));
            }
            pairs.push((lname, val));
            while i < bytes.len() && bytes[i].is_whitespace() {
                i += 1;
            }
            if i < bytes.len() && bytes[i] == ',' {
                i += 1;
            } else if i < bytes.len() && bytes[i] == '}' {
                i += 1;
                break;
            } else {
                return err(input, "expected ',' or '}' in label set");
            }
        }
    }
    if pairs.is_empty() && i == 0 {
        return err(input, "expected a metric name or a label set");
    }
    Ok((Labels::from_pairs(pairs), &s[offs[i]..]))
}

/// Unquotes a Go string literal ("..", '..' or `..`) at the start of `c`; returns the
/// value and the number of chars consumed.
pub(crate) fn unquote(c: &[char]) -> Result<(String, usize), String> {
    let q = *c.first().ok_or("expected a quoted string")?;
    if q != '"' && q != '\'' && q != '`' {
        return Err(format!("expected a quoted string, found {q:?}"));
    }
    let mut out = String::new();
    let mut i = 1;
    while i < c.len() {
        let ch = c[i];
        if ch == q {
            return Ok((out, i + 1));
        }
        if ch == '\\' && q != '`' {
            i += 1;
            let e = *c.get(i).ok_or("unterminated escape")?;
            match e {
                'a' => out.push('\x07'),
                'b' => out.push('\x08'),
                'f' => out.push('\x0c'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'v' => out.push('\x0b'),
                '\\' => out.push('\\'),
                '\'' | '"' if e == q => out.push(e),
                'x' | 'u' | 'U' => {
                    let n = match e {
                        'x' => 2,
                        'u' => 4,
                        _ => 8,
                    };
                    let hex: String = c
                        .get(i + 1..i + 1 + n)
                        .ok_or("short hex escape")?
                        .iter()
                        .collect();
                    let v = u32::from_str_radix(&hex, 16)
                        .map_err(|_| format!("invalid escape \\{e}{hex}"))?;
                    out.push(char::from_u32(v).ok_or(format!("invalid code point \\{e}{hex}"))?);
                    i += n;
                }
                '0'..='7' => {
                    let oct: String = c
                        .get(i..i + 3)
                        .ok_or("short octal escape")?
                        .iter()
                        .collect();
                    let v = u32::from_str_radix(&oct, 8)
                        .map_err(|_| format!("invalid escape \\{oct}"))?;
                    out.push(char::from_u32(v).ok_or("invalid octal escape")?);
                    i += 2;
                }
                other => return Err(format!("unknown escape sequence \\{other}")),
            }
        } else if ch == '\n' && q != '`' {
            return Err("newline in string".into());
        } else {
            out.push(ch);
        }
        i += 1;
    }
    Err("unterminated quoted string".into())
}

/// Parses the values part of a series description.
pub fn parse_values(input: &str) -> Result<Vec<SeqValue>, PromqlError> {
    let mut out: Vec<SeqValue> = Vec::new();
    for item in input.split_whitespace() {
        parse_item(item, &mut out).or_else(|m| err(input, format!("{m} (in {item:?})")))?;
        if out.len() > MAX_VALUES {
            return err(input, format!("more than {MAX_VALUES} values"));
        }
    }
    Ok(out)
}

struct Scan<'a> {
    s: &'a [u8],
    i: usize,
}

impl Scan<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn eof(&self) -> bool {
        self.i >= self.s.len()
    }
    /// A number, `Inf`/`NaN` or (if `allow_stale`) `stale`.
    fn value(&mut self, allow_stale: bool) -> Result<f64, String> {
        let st = self.i;
        match self.peek() {
            Some(c) if c.is_ascii_alphabetic() => {
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
                {
                    self.i += 1;
                }
                let w = std::str::from_utf8(&self.s[st..self.i]).unwrap_or("");
                match w.to_ascii_lowercase().as_str() {
                    "inf" => Ok(f64::INFINITY),
                    "nan" => Ok(f64::NAN),
                    "stale" if allow_stale => Ok(crate::stale_nan()),
                    _ => Err(format!(
                        "unexpected {w:?} in series values, expected number or \"stale\""
                    )),
                }
            }
            Some(c) if c.is_ascii_digit() || c == b'.' => {
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.i += 1;
                }
                if self.peek() == Some(b'.') {
                    self.i += 1;
                    while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                        self.i += 1;
                    }
                }
                if matches!(self.peek(), Some(b'e' | b'E')) {
                    self.i += 1;
                    if matches!(self.peek(), Some(b'+' | b'-')) {
                        self.i += 1;
                    }
                    while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                        self.i += 1;
                    }
                }
                if let Some(c) = self.peek() {
                    if c != b'x' && c.is_ascii_alphanumeric() {
                        return Err(format!(
                            "bad number or duration syntax near {:?}",
                            self.rest_from(st)
                        ));
                    }
                }
                let w = std::str::from_utf8(&self.s[st..self.i]).unwrap_or("");
                w.parse::<f64>()
                    .map_err(|_| format!("invalid number {w:?}"))
            }
            _ => Err(format!("unexpected {:?}", self.rest_from(st))),
        }
    }
    fn rest_from(&self, st: usize) -> String {
        String::from_utf8_lossy(&self.s[st..]).into_owned()
    }
    fn uint(&mut self) -> Result<usize, String> {
        let st = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        let w = std::str::from_utf8(&self.s[st..self.i]).unwrap_or("");
        if w.is_empty() {
            return Err("expected a repetition count after 'x'".into());
        }
        let n: usize = w
            .parse()
            .map_err(|_| format!("invalid repetition count {w:?}"))?;
        if n > MAX_VALUES {
            return Err(format!("repetition count {n} is larger than {MAX_VALUES}"));
        }
        Ok(n)
    }
    fn signed(&mut self) -> Result<f64, String> {
        match self.peek() {
            Some(b'+') => {
                self.i += 1;
                self.value(false)
            }
            Some(b'-') => {
                self.i += 1;
                Ok(-self.value(false)?)
            }
            _ => self.value(true),
        }
    }
}

fn parse_item(item: &str, out: &mut Vec<SeqValue>) -> Result<(), String> {
    let mut sc = Scan {
        s: item.as_bytes(),
        i: 0,
    };
    if sc.peek() == Some(b'_') {
        sc.i += 1;
        if sc.eof() {
            out.push(None);
            return Ok(());
        }
        if sc.peek() != Some(b'x') {
            return Err("expected 'x' after '_'".into());
        }
        sc.i += 1;
        let n = sc.uint()?;
        if !sc.eof() {
            return Err("unexpected characters after the repetition count".into());
        }
        out.extend(std::iter::repeat_n(None, n));
        return Ok(());
    }
    let mut v = sc.signed()?;
    if sc.eof() {
        out.push(Some(v));
        return Ok(());
    }
    match sc.peek() {
        Some(b'x') => {
            sc.i += 1;
            let n = sc.uint()?;
            if !sc.eof() {
                return Err("unexpected characters after the repetition count".into());
            }
            out.extend(std::iter::repeat_n(Some(v), n + 1));
        }
        Some(b'+' | b'-') => {
            let d = sc.signed()?;
            if sc.peek() != Some(b'x') {
                return Err("expected 'x' after the increment".into());
            }
            sc.i += 1;
            let n = sc.uint()?;
            if !sc.eof() {
                return Err("unexpected characters after the repetition count".into());
            }
            out.push(Some(v));
            for _ in 0..n {
                v += d;
                out.push(Some(v));
            }
        }
        _ => return Err("unexpected characters after the value".into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::is_stale;

    fn vals(s: &str) -> Vec<SeqValue> {
        parse_values(s).unwrap()
    }

    #[test]
    fn expanding_notation() {
        assert_eq!(
            vals("1+1x3"),
            vec![Some(1.0), Some(2.0), Some(3.0), Some(4.0)]
        );
        assert_eq!(vals("1-1x2"), vec![Some(1.0), Some(0.0), Some(-1.0)]);
        assert_eq!(vals("-2x2"), vec![Some(-2.0); 3]);
        assert_eq!(vals("_ _x2 5"), vec![None, None, None, Some(5.0)]);
        assert_eq!(vals("1e3+0x1"), vec![Some(1000.0), Some(1000.0)]);
        assert_eq!(vals("0x2"), vec![Some(0.0); 3]);
        assert_eq!(
            vals(".5 Inf -Inf"),
            vec![Some(0.5), Some(f64::INFINITY), Some(f64::NEG_INFINITY)]
        );
        let v = vals("1 stale 2");
        assert!(is_stale(v[1].unwrap()));
        assert!(vals("NaN")[0].unwrap().is_nan());
        assert_eq!(vals(""), vec![]);
        // accumulation by repeated addition, as Prometheus
        let v = vals("0+0.1x3");
        assert_eq!(v[3], Some(0.1 + 0.1 + 0.1));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "1+1",
            "abc",
            "1x",
            "_y3",
            "1x3y",
            "1+stalex2",
            "1..2",
            "1e",
            "0xff",
        ] {
            assert!(parse_values(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn metric() {
        let (l, v) = parse_series_desc(r#"up{job="a", instance='b\n'} 1 2"#).unwrap();
        assert_eq!(l.to_string(), r#"{__name__="up", instance="b\n", job="a"}"#);
        assert_eq!(v.len(), 2);
        let l = parse_metric(r#"{__name__="x:y",a="1",}"#).unwrap();
        assert_eq!(l.name(), Some("x:y"));
        assert_eq!(parse_metric("{}").unwrap(), Labels::new());
        assert!(parse_metric(r#"x{a=~"b"}"#).is_err());
        assert!(parse_metric(r#"x{a="b""#).is_err());
        assert!(parse_metric(r#"x{a="b",a="c"}"#).is_err());
        let (l, _) = parse_input_series("ns:rec", "1").unwrap();
        assert_eq!(l.name(), Some("ns:rec"));
    }
}
