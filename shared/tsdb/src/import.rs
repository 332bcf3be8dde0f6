//! Backfill: OpenMetrics text (what `promtool tsdb create-blocks-from openmetrics`
//! reads) written straight into blocks, merged with what a block already holds.
//!
//! The whole input is validated before anything is written: a bad line is an error
//! naming it, and leaves the store as it was.

use crate::block::{block_start, BLOCK_MS};
use crate::chunk::SeriesMap;
use crate::compact::{commit, Source};
use crate::TsdbError;
use argus_model::{Kv, Labels};
use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct ImportReport {
    pub lines: usize,
    pub series: usize,
    /// Samples read from the input.
    pub samples: u64,
    /// Samples the blocks did not hold yet.
    pub added: u64,
    pub blocks: usize,
}

/// Parsed input: series interned once, samples per block.
#[derive(Default)]
pub struct Parsed {
    pub series: Vec<Labels>,
    /// block start → series id → samples (in input order).
    pub blocks: BTreeMap<i64, HashMap<usize, Vec<(i64, f64)>>>,
    pub lines: usize,
    pub samples: u64,
}

fn err(line: usize, why: impl Into<String>) -> TsdbError {
    TsdbError::Input {
        line,
        why: why.into(),
    }
}

fn valid_name(s: &str, metric: bool) -> bool {
    if metric {
        argus_model::valid_metric_name(s)
    } else {
        argus_model::valid_label_name(s)
    }
}

/// Parses `{a="b",c="d"}` at the start of `s`; returns the pairs and the rest.
/// Label pairs as written.
type Pairs = Vec<(String, String)>;

fn parse_labels(line: usize, s: &str) -> Result<(Pairs, &str), TsdbError> {
    let mut rest = &s[1..];
    let mut out = Vec::new();
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((out, r));
        }
        let eq = rest
            .find('=')
            .ok_or_else(|| err(line, "expected label name and '='"))?;
        let name = &rest[..eq];
        if !valid_name(name, false) {
            return Err(err(line, format!("invalid label name {name:?}")));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or_else(|| err(line, format!("label {name}: expected '\"'")))?;
        let mut val = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => val.push('\n'),
                    Some((_, '\\')) => val.push('\\'),
                    Some((_, '"')) => val.push('"'),
                    _ => return Err(err(line, format!("label {name}: invalid escape"))),
                },
                Some((_, c)) => val.push(c),
                None => return Err(err(line, format!("label {name}: unterminated value"))),
            }
        };
        if out.iter().any(|(k, _)| k == name) {
            return Err(err(line, format!("duplicate label {name}")));
        }
        out.push((name.to_string(), val));
        rest = &rest[end + 1..];
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if !rest.starts_with('}') {
            return Err(err(line, "expected ',' or '}' after a label"));
        }
    }
}

fn parse_value(line: usize, s: &str) -> Result<f64, TsdbError> {
    match s {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| err(line, format!("invalid value {s:?}"))),
    }
}

/// Seconds with an optional fraction, to milliseconds (exact, no float rounding).
fn parse_ts(line: usize, s: &str) -> Result<i64, TsdbError> {
    let bad = || err(line, format!("invalid timestamp {s:?}"));
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        // Exponent forms: through a double, as Prometheus's parser does.
        let v: f64 = s.parse().map_err(|_| bad())?;
        if !v.is_finite() {
            return Err(bad());
        }
        return Ok((v * 1000.0).round() as i64);
    }
    let secs: i64 = int.parse().map_err(|_| bad())?;
    let mut ms = 0i64;
    for (i, b) in frac.bytes().take(3).enumerate() {
        ms += (b - b'0') as i64 * [100, 10, 1][i];
    }
    let v = secs
        .checked_mul(1000)
        .and_then(|x| x.checked_add(ms))
        .ok_or_else(bad)?;
    Ok(if neg { -v } else { v })
}

/// Reads and validates the whole input.
pub fn parse_openmetrics(input: impl BufRead) -> Result<Parsed, TsdbError> {
    let mut p = Parsed::default();
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut eof = false;
    for (i, line) in input.lines().enumerate() {
        let n = i + 1;
        let line = line.map_err(|e| err(n, e.to_string()))?;
        p.lines = n;
        if eof {
            return Err(err(n, "content after # EOF"));
        }
        if line == "# EOF" {
            eof = true;
            continue;
        }
        if let Some(meta) = line.strip_prefix("# ") {
            let kind = meta.split(' ').next().unwrap_or("");
            if !matches!(kind, "TYPE" | "HELP" | "UNIT") {
                return Err(err(n, format!("unknown metadata line {kind:?}")));
            }
            continue;
        }
        if line.is_empty() {
            return Err(err(n, "empty line"));
        }
        // Series key: the name and labels, as written.
        let key_end = match line.find('{') {
            Some(b) if b < line.find(' ').unwrap_or(usize::MAX) => {
                let (_, rest) = parse_labels(n, &line[b..])?;
                line.len() - rest.len()
            }
            _ => line.find(' ').ok_or_else(|| err(n, "expected a value"))?,
        };
        let key = &line[..key_end];
        let rest = line[key_end..]
            .strip_prefix(' ')
            .ok_or_else(|| err(n, "expected a space before the value"))?;
        let rest = rest.split(" # ").next().unwrap_or(rest); // exemplar
        let mut fields = rest.split(' ');
        let v = parse_value(n, fields.next().unwrap_or(""))?;
        let ts = match fields.next() {
            Some(t) => parse_ts(n, t)?,
            None => {
                return Err(err(
                    n,
                    "expected a timestamp (backfill needs one per sample)",
                ))
            }
        };
        if fields.next().is_some() {
            return Err(err(n, "unexpected text after the timestamp"));
        }
        let id = match ids.get(key) {
            Some(&id) => id,
            None => {
                let (name, pairs) = match key.find('{') {
                    Some(b) => (&key[..b], parse_labels(n, &key[b..])?.0),
                    None => (key, Vec::new()),
                };
                if !valid_name(name, true) {
                    return Err(err(n, format!("invalid metric name {name:?}")));
                }
                let mut all = vec![("__name__".to_string(), name.to_string())];
                all.extend(pairs.into_iter().filter(|(_, v)| !v.is_empty()));
                let id = p.series.len();
                p.series.push(Labels::from_pairs(all));
                ids.insert(key.to_string(), id);
                id
            }
        };
        p.blocks
            .entry(block_start(ts))
            .or_default()
            .entry(id)
            .or_default()
            .push((ts, v));
        p.samples += 1;
    }
    if !eof {
        return Err(err(p.lines + 1, "the input does not end with # EOF"));
    }
    Ok(p)
}

/// Imports OpenMetrics text into blocks, block by block, calling `progress` after each.
pub async fn import_openmetrics(
    kv: &dyn Kv,
    input: impl BufRead,
    retention: std::time::Duration,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<ImportReport, TsdbError> {
    let parsed = parse_openmetrics(input)?;
    let mut report = ImportReport {
        lines: parsed.lines,
        series: parsed.series.len(),
        samples: parsed.samples,
        ..Default::default()
    };
    let total = parsed.blocks.len();
    for (i, (start, by_id)) in parsed.blocks.into_iter().enumerate() {
        let mut map = SeriesMap::with_capacity(by_id.len());
        let mut n = 0usize;
        for (id, samples) in by_id {
            n += samples.len();
            map.insert(parsed.series[id].clone(), samples);
        }
        let series = map.len();
        let added = commit(kv, start, Source::Given(&map), retention).await?;
        report.added += added;
        report.blocks += 1;
        progress(&format!(
            "block {}/{total} [{}, {}): {series} series, {n} samples, {added} new",
            i + 1,
            fmt_ms(start),
            fmt_ms(start + BLOCK_MS)
        ));
    }
    Ok(report)
}

fn fmt_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_openmetrics_and_names_bad_lines() {
        let ok = "# HELP up x\n# TYPE up gauge\nup{job=\"a\",i=\"q\\\"\"} 1 1700000000.5\nup 0 1700000060\n# EOF\n";
        let p = parse_openmetrics(ok.as_bytes()).unwrap();
        assert_eq!(p.series.len(), 2);
        assert_eq!(p.series[0].get("i"), Some("q\""));
        assert_eq!(p.samples, 2);
        let all: Vec<(i64, f64)> = p
            .blocks
            .values()
            .flat_map(|m| m.values().flatten().copied())
            .collect();
        assert!(all.contains(&(1_700_000_000_500, 1.0)) && all.contains(&(1_700_000_060_000, 0.0)));
        for (bad, line, what) in [
            ("up 1\n# EOF\n", 1, "timestamp"),
            ("up 1 1\nup{a=\"b} 1 1\n# EOF\n", 2, "unterminated"),
            ("up x 1\n# EOF\n", 1, "invalid value"),
            ("up 1 1\n", 2, "EOF"),
            ("1up 1 1\n# EOF\n", 1, "metric name"),
            ("up 1 1\n# EOF\nup 1 2\n", 3, "after # EOF"),
        ] {
            match parse_openmetrics(bad.as_bytes()) {
                Err(TsdbError::Input { line: l, why }) => {
                    assert_eq!(l, line, "{bad:?}: {why}");
                    assert!(why.contains(what), "{bad:?}: {why}");
                }
                other => panic!("{bad:?}: {:?}", other.map(|p| p.samples)),
            }
        }
        assert_eq!(fmt_ms(1_700_000_000_000), "2023-11-14T22:13Z");
    }
}
