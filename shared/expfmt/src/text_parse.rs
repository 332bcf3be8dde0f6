//! Text format 0.0.4 parser: a port of the Go `expfmt.TextParser` state machine as
//! shipped with Pushgateway 1.5.1 / Prometheus client libraries (unquoted names).
//! Same accepted inputs, same rejections, same messages, same line numbers.

use crate::float::parse_float;
use crate::{Labels, Metric, MetricFamily, MetricType, MetricValue};
use argus_model::go::{quote as go_quote, quote_bytes as go_quote_bytes};
use std::collections::HashMap;

/// A text-format syntax error, printed exactly as Go's `expfmt.ParseError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("text format parsing error in line {line}: {msg}")]
pub struct ParseError {
    pub line: usize,
    pub msg: String,
}

/// Parses text format 0.0.4. Families come back in order of first appearance (Go
/// returns a map); families without samples (only HELP/TYPE) are dropped, as in Go.
pub fn parse_text(input: &str) -> Result<Vec<MetricFamily>, ParseError> {
    parse_text_bytes(input.as_bytes())
}

/// [`parse_text`] over raw bytes (an HTTP body): label values must be valid UTF-8,
/// as in Go; HELP text and names are taken as they are (invalid UTF-8 replaced).
pub fn parse_text_bytes(input: &[u8]) -> Result<Vec<MetricFamily>, ParseError> {
    let mut p = Parser::new(input);
    let mut state = State::StartOfLine;
    while let Some(next) = p.step(state) {
        state = next;
    }
    match p.err.take() {
        Some(Err::Eof) => {
            return Err(ParseError {
                line: p.line,
                msg: "unexpected end of input stream".into(),
            })
        }
        Some(Err::Parse(e)) => return Err(e),
        None => {}
    }
    Ok(p.finish())
}

#[derive(Clone, Copy, Debug)]
enum State {
    StartOfLine,
    StartComment,
    ReadingMetricName,
    ReadingLabels,
    StartLabelName,
    StartLabelValue,
    ReadingValue,
    StartTimestamp,
    ReadingHelp,
    ReadingType,
}

enum Err {
    Eof,
    Parse(ParseError),
}

#[derive(Default)]
struct RawFamily {
    name: String,
    help: Option<String>,
    kind: Option<MetricType>,
    metrics: Vec<RawMetric>,
}

#[derive(Default, Clone)]
struct RawMetric {
    labels: Vec<(String, String)>,
    value: Option<f64>,
    quantiles: Vec<(f64, f64)>,
    buckets: Vec<(f64, f64)>,
    sum: f64,
    count: f64,
    timestamp_ms: Option<i64>,
}

/// Where the metric being read lives: a fresh one not yet appended, or an existing
/// summary/histogram metric of family `f` at index `m`.
#[derive(Clone, Copy, PartialEq)]
enum Cur {
    Fresh,
    Existing(usize, usize),
}

struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
    err: Option<Err>,
    line: usize,
    byte: u8,
    token: Vec<u8>,
    families: Vec<RawFamily>,
    by_name: HashMap<String, usize>,
    mf: Option<usize>,
    fresh: RawMetric,
    cur: Cur,
    label_name: String,
    // Summary/histogram bookkeeping.
    current_labels: Vec<(String, String)>,
    summaries: HashMap<Vec<(String, String)>, (usize, usize)>,
    histograms: HashMap<Vec<(String, String)>, (usize, usize)>,
    quantile: f64,
    bucket: f64,
    is_summary_count: bool,
    is_summary_sum: bool,
    is_histogram_count: bool,
    is_histogram_sum: bool,
}

fn is_blank_or_tab(b: u8) -> bool {
    b == b' ' || b == b'\t'
}
fn is_label_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}
fn is_label_name_continuation(b: u8) -> bool {
    is_label_name_start(b) || b.is_ascii_digit()
}
fn is_metric_name_start(b: u8) -> bool {
    is_label_name_start(b) || b == b':'
}
fn is_metric_name_continuation(b: u8) -> bool {
    is_label_name_continuation(b) || b == b':'
}

/// Go's `%q` for a byte (a rune literal).
fn go_quote_byte(b: u8) -> String {
    match b {
        b'\'' => "'\\''".into(),
        b'\\' => "'\\\\'".into(),
        b'\n' => "'\\n'".into(),
        b'\r' => "'\\r'".into(),
        b'\t' => "'\\t'".into(),
        0x20..=0x7e => format!("'{}'", b as char),
        b if b < 0x20 || b == 0x7f => format!("'\\x{b:02x}'"),
        b => format!("'{}'", char::from_u32(b as u32).unwrap_or('?')),
    }
}

fn bytes_str(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl<'a> Parser<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Parser {
            buf,
            pos: 0,
            err: None,
            line: 0,
            byte: 0,
            token: Vec::new(),
            families: Vec::new(),
            by_name: HashMap::new(),
            mf: None,
            fresh: RawMetric::default(),
            cur: Cur::Fresh,
            label_name: String::new(),
            current_labels: Vec::new(),
            summaries: HashMap::new(),
            histograms: HashMap::new(),
            quantile: f64::NAN,
            bucket: f64::NAN,
            is_summary_count: false,
            is_summary_sum: false,
            is_histogram_count: false,
            is_histogram_sum: false,
        }
    }

    /// Reads the next byte into `self.byte`; false (and `err = Eof`) at the end.
    fn read(&mut self) -> bool {
        if self.pos < self.buf.len() {
            self.byte = self.buf[self.pos];
            self.pos += 1;
            true
        } else {
            self.err = Some(Err::Eof);
            false
        }
    }

    fn fail(&mut self, msg: String) -> Option<State> {
        self.err = Some(Err::Parse(ParseError {
            line: self.line,
            msg,
        }));
        None
    }

    fn mf(&self) -> &RawFamily {
        &self.families[self.mf.expect("current family is set before use")]
    }
    fn mf_mut(&mut self) -> &mut RawFamily {
        let i = self.mf.expect("current family is set before use");
        &mut self.families[i]
    }
    fn mf_type(&self) -> Option<MetricType> {
        self.mf.and_then(|i| self.families[i].kind)
    }
    fn mf_name(&self) -> String {
        self.mf
            .map(|i| self.families[i].name.clone())
            .unwrap_or_default()
    }
    fn metric_mut(&mut self) -> &mut RawMetric {
        match self.cur {
            Cur::Fresh => &mut self.fresh,
            Cur::Existing(f, m) => &mut self.families[f].metrics[m],
        }
    }

    fn skip_blank_tab(&mut self) -> bool {
        loop {
            if !self.read() {
                return false;
            }
            if !is_blank_or_tab(self.byte) {
                return true;
            }
        }
    }

    fn skip_blank_tab_if_current(&mut self) -> bool {
        if is_blank_or_tab(self.byte) {
            self.skip_blank_tab()
        } else {
            true
        }
    }

    fn read_token_until_whitespace(&mut self) -> bool {
        self.token.clear();
        while !is_blank_or_tab(self.byte) && self.byte != b'\n' {
            self.token.push(self.byte);
            if !self.read() {
                return false;
            }
        }
        true
    }

    fn read_token_until_newline(&mut self, escapes: bool) -> bool {
        self.token.clear();
        let mut escaped = false;
        loop {
            if escapes && escaped {
                match self.byte {
                    b'\\' => self.token.push(b'\\'),
                    b'n' => self.token.push(b'\n'),
                    b => {
                        self.fail(format!("invalid escape sequence '\\{}'", b as char));
                        return false;
                    }
                }
                escaped = false;
            } else {
                match self.byte {
                    b'\n' => return true,
                    b'\\' => escaped = true,
                    b => self.token.push(b),
                }
            }
            if !self.read() {
                return false;
            }
        }
    }

    fn read_token_as_metric_name(&mut self) -> bool {
        self.token.clear();
        if !is_metric_name_start(self.byte) {
            return true;
        }
        loop {
            self.token.push(self.byte);
            if !self.read() {
                return false;
            }
            if !is_metric_name_continuation(self.byte) {
                return true;
            }
        }
    }

    fn read_token_as_label_name(&mut self) -> bool {
        self.token.clear();
        if !is_label_name_start(self.byte) {
            return true;
        }
        loop {
            self.token.push(self.byte);
            if !self.read() {
                return false;
            }
            if !is_label_name_continuation(self.byte) {
                return true;
            }
        }
    }

    fn read_token_as_label_value(&mut self) -> bool {
        self.token.clear();
        let mut escaped = false;
        loop {
            if !self.read() {
                return false;
            }
            if escaped {
                match self.byte {
                    b'"' | b'\\' => self.token.push(self.byte),
                    b'n' => self.token.push(b'\n'),
                    b => {
                        self.fail(format!("invalid escape sequence '\\{}'", b as char));
                        return false;
                    }
                }
                escaped = false;
                continue;
            }
            match self.byte {
                b'"' => return true,
                b'\n' => {
                    let msg = format!(
                        "label value {} contains unescaped new-line",
                        go_quote_bytes(&self.token)
                    );
                    self.fail(msg);
                    return false;
                }
                b'\\' => escaped = true,
                b => self.token.push(b),
            }
        }
    }

    fn set_or_create_current_mf(&mut self) {
        // Metric-name tokens are ASCII: look up without allocating.
        let token = std::mem::take(&mut self.token);
        self.set_or_create_mf_named(std::str::from_utf8(&token).unwrap_or(""));
        self.token = token;
    }

    fn set_or_create_mf_named(&mut self, name: &str) {
        self.is_summary_count = false;
        self.is_summary_sum = false;
        self.is_histogram_count = false;
        self.is_histogram_sum = false;
        if let Some(&i) = self.by_name.get(name) {
            self.mf = Some(i);
            return;
        }
        let summary_name = strip_summary_suffix(name);
        if let Some(&i) = self.by_name.get(summary_name) {
            if self.families[i].kind == Some(MetricType::Summary) {
                self.mf = Some(i);
                self.is_summary_count = is_count(name);
                self.is_summary_sum = is_sum(name);
                return;
            }
        }
        let histogram_name = strip_histogram_suffix(name);
        if let Some(&i) = self.by_name.get(histogram_name) {
            if self.families[i].kind == Some(MetricType::Histogram) {
                self.mf = Some(i);
                self.is_histogram_count = is_count(name);
                self.is_histogram_sum = is_sum(name);
                return;
            }
        }
        let i = self.families.len();
        self.families.push(RawFamily {
            name: name.to_string(),
            ..Default::default()
        });
        self.by_name.insert(name.to_string(), i);
        self.mf = Some(i);
    }

    fn step(&mut self, s: State) -> Option<State> {
        match s {
            State::StartOfLine => self.start_of_line(),
            State::StartComment => self.start_comment(),
            State::ReadingMetricName => self.reading_metric_name(),
            State::ReadingLabels => self.reading_labels(),
            State::StartLabelName => self.start_label_name(),
            State::StartLabelValue => self.start_label_value(),
            State::ReadingValue => self.reading_value(),
            State::StartTimestamp => self.start_timestamp(),
            State::ReadingHelp => self.reading_help(),
            State::ReadingType => self.reading_type(),
        }
    }

    fn start_of_line(&mut self) -> Option<State> {
        self.line += 1;
        if !self.skip_blank_tab() {
            self.err = None; // the only place where EOF is the legitimate end
            return None;
        }
        match self.byte {
            b'#' => Some(State::StartComment),
            b'\n' => Some(State::StartOfLine),
            _ => Some(State::ReadingMetricName),
        }
    }

    fn start_comment(&mut self) -> Option<State> {
        if !self.skip_blank_tab() {
            return None;
        }
        if self.byte == b'\n' {
            return Some(State::StartOfLine);
        }
        if !self.read_token_until_whitespace() {
            return None;
        }
        if self.byte == b'\n' {
            return Some(State::StartOfLine);
        }
        let keyword = bytes_str(&self.token);
        if keyword != "HELP" && keyword != "TYPE" {
            while self.byte != b'\n' {
                if !self.read() {
                    return None;
                }
            }
            return Some(State::StartOfLine);
        }
        if !self.skip_blank_tab() {
            return None;
        }
        if !self.read_token_as_metric_name() {
            return None;
        }
        if self.byte == b'\n' {
            return Some(State::StartOfLine);
        }
        if !is_blank_or_tab(self.byte) {
            return self.fail("invalid metric name in comment".into());
        }
        self.set_or_create_current_mf();
        if !self.skip_blank_tab() {
            return None;
        }
        if self.byte == b'\n' {
            return Some(State::StartOfLine);
        }
        if keyword == "HELP" {
            Some(State::ReadingHelp)
        } else {
            Some(State::ReadingType)
        }
    }

    fn reading_metric_name(&mut self) -> Option<State> {
        if !self.read_token_as_metric_name() {
            return None;
        }
        if self.token.is_empty() {
            return self.fail("invalid metric name".into());
        }
        self.set_or_create_current_mf();
        if self.mf().kind.is_none() {
            self.mf_mut().kind = Some(MetricType::Untyped);
        }
        self.fresh = RawMetric::default();
        self.cur = Cur::Fresh;
        if !self.skip_blank_tab_if_current() {
            return None;
        }
        Some(State::ReadingLabels)
    }

    fn reading_labels(&mut self) -> Option<State> {
        if matches!(
            self.mf_type(),
            Some(MetricType::Summary | MetricType::Histogram)
        ) {
            self.current_labels.clear();
            let name = self.mf_name();
            self.current_labels.push(("__name__".into(), name));
            self.quantile = f64::NAN;
            self.bucket = f64::NAN;
        }
        if self.byte != b'{' {
            return Some(State::ReadingValue);
        }
        Some(State::StartLabelName)
    }

    fn start_label_name(&mut self) -> Option<State> {
        if !self.skip_blank_tab() {
            return None;
        }
        if self.byte == b'}' {
            if !self.skip_blank_tab() {
                return None;
            }
            return Some(State::ReadingValue);
        }
        if !self.read_token_as_label_name() {
            return None;
        }
        if self.token.is_empty() {
            let msg = format!(
                "invalid label name for metric {}",
                go_quote(&self.mf_name())
            );
            return self.fail(msg);
        }
        let name = bytes_str(&self.token);
        if name == "__name__" {
            return self.fail("label name \"__name__\" is reserved".into());
        }
        let kind = self.mf_type();
        let special = (kind == Some(MetricType::Summary) && name == "quantile")
            || (kind == Some(MetricType::Histogram) && name == "le");
        if !special {
            self.fresh.labels.push((name.clone(), String::new()));
        }
        self.label_name = name;
        if !self.skip_blank_tab_if_current() {
            return None;
        }
        if self.byte != b'=' {
            let msg = format!(
                "expected '=' after label name, found {}",
                go_quote_byte(self.byte)
            );
            return self.fail(msg);
        }
        // Duplicate label names.
        let labels = &self.fresh.labels;
        for i in 0..labels.len() {
            if labels[..i].iter().any(|(n, _)| *n == labels[i].0) {
                let msg = format!(
                    "duplicate label names for metric {}",
                    go_quote(&self.mf_name())
                );
                return self.fail(msg);
            }
        }
        Some(State::StartLabelValue)
    }

    fn start_label_value(&mut self) -> Option<State> {
        if !self.skip_blank_tab() {
            return None;
        }
        if self.byte != b'"' {
            let msg = format!(
                "expected '\"' at start of label value, found {}",
                go_quote_byte(self.byte)
            );
            return self.fail(msg);
        }
        if !self.read_token_as_label_value() {
            return None;
        }
        let value = match String::from_utf8(self.token.clone()) {
            Ok(v) => v,
            Err(_) => {
                let msg = format!("invalid label value {}", go_quote_bytes(&self.token));
                return self.fail(msg);
            }
        };
        let name = self.label_name.clone();
        let kind = self.mf_type();
        // The label pair was appended by start_label_name unless it is quantile/le.
        let special = (kind == Some(MetricType::Summary) && name == "quantile")
            || (kind == Some(MetricType::Histogram) && name == "le");
        if !special {
            if let Some(last) = self.fresh.labels.last_mut() {
                last.1 = value.clone();
            }
        }
        if kind == Some(MetricType::Summary) {
            if name == "quantile" {
                match parse_float(&value) {
                    Some(q) => self.quantile = q,
                    None => {
                        let msg = format!(
                            "expected float as value for 'quantile' label, got {}",
                            go_quote(&value)
                        );
                        return self.fail(msg);
                    }
                }
            } else {
                set_label(&mut self.current_labels, name.clone(), value.clone());
            }
        }
        if kind == Some(MetricType::Histogram) {
            if name == "le" {
                match parse_float(&value) {
                    Some(b) => self.bucket = b,
                    None => {
                        let msg = format!(
                            "expected float as value for 'le' label, got {}",
                            go_quote(&value)
                        );
                        return self.fail(msg);
                    }
                }
            } else {
                set_label(&mut self.current_labels, name, value.clone());
            }
        }
        if !self.skip_blank_tab() {
            return None;
        }
        match self.byte {
            b',' => Some(State::StartLabelName),
            b'}' => {
                if !self.skip_blank_tab() {
                    return None;
                }
                Some(State::ReadingValue)
            }
            _ => {
                let msg = format!("unexpected end of label value {}", go_quote(&value));
                self.fail(msg)
            }
        }
    }

    fn reading_value(&mut self) -> Option<State> {
        let fi = self.mf.expect("family set by reading_metric_name");
        let kind = self.families[fi].kind.unwrap_or(MetricType::Untyped);
        match kind {
            MetricType::Summary | MetricType::Histogram => {
                // Go's signature keeps empty-valued labels; Argus' `Labels` (what
                // Prometheus ingests) treats them as absent, so they are left out here,
                // or `h_bucket{a="1",b=""}` and `h_sum{a="1"}` would become two metrics
                // with the same labels.
                let mut sig: Vec<(String, String)> = self
                    .current_labels
                    .iter()
                    .filter(|(_, v)| !v.is_empty())
                    .cloned()
                    .collect();
                sig.sort();
                let map = if kind == MetricType::Summary {
                    &mut self.summaries
                } else {
                    &mut self.histograms
                };
                if let Some(&(f, m)) = map.get(&sig) {
                    self.cur = Cur::Existing(f, m);
                } else {
                    let m = self.families[fi].metrics.len();
                    map.insert(sig, (fi, m));
                    let fresh = std::mem::take(&mut self.fresh);
                    self.families[fi].metrics.push(fresh);
                    self.cur = Cur::Existing(fi, m);
                }
            }
            _ => {
                let m = self.families[fi].metrics.len();
                let fresh = std::mem::take(&mut self.fresh);
                self.families[fi].metrics.push(fresh);
                self.cur = Cur::Existing(fi, m);
            }
        }
        if !self.read_token_until_whitespace() {
            return None;
        }
        let tok = bytes_str(&self.token);
        let value = match parse_float(&tok) {
            Some(v) => v,
            None => {
                return self.fail(format!(
                    "expected float as value, got {}",
                    go_quote_bytes(&self.token)
                ))
            }
        };
        let (q, b) = (self.quantile, self.bucket);
        let (sc, ss, hc, hs) = (
            self.is_summary_count,
            self.is_summary_sum,
            self.is_histogram_count,
            self.is_histogram_sum,
        );
        let metric = self.metric_mut();
        match kind {
            MetricType::Counter | MetricType::Gauge | MetricType::Untyped => {
                metric.value = Some(value)
            }
            MetricType::Summary => {
                if sc {
                    metric.count = go_uint64(value);
                } else if ss {
                    metric.sum = value;
                } else if !q.is_nan() {
                    metric.quantiles.push((q, value));
                }
            }
            MetricType::Histogram => {
                if hc {
                    metric.count = go_uint64(value);
                } else if hs {
                    metric.sum = value;
                } else if !b.is_nan() {
                    metric.buckets.push((b, go_uint64(value)));
                }
            }
        }
        if self.byte == b'\n' {
            return Some(State::StartOfLine);
        }
        Some(State::StartTimestamp)
    }

    fn start_timestamp(&mut self) -> Option<State> {
        if !self.skip_blank_tab() {
            return None;
        }
        if !self.read_token_until_whitespace() {
            return None;
        }
        let tok = bytes_str(&self.token);
        let ts = match parse_go_int(&tok) {
            Some(t) => t,
            None => {
                return self.fail(format!(
                    "expected integer as timestamp, got {}",
                    go_quote_bytes(&self.token)
                ))
            }
        };
        self.metric_mut().timestamp_ms = Some(ts);
        if !self.read_token_until_newline(false) {
            return None;
        }
        if !self.token.is_empty() {
            let msg = format!(
                "spurious string after timestamp: {}",
                go_quote_bytes(&self.token)
            );
            return self.fail(msg);
        }
        Some(State::StartOfLine)
    }

    fn reading_help(&mut self) -> Option<State> {
        if self.mf().help.is_some() {
            let msg = format!(
                "second HELP line for metric name {}",
                go_quote(&self.mf_name())
            );
            return self.fail(msg);
        }
        if !self.read_token_until_newline(true) {
            return None;
        }
        let help = bytes_str(&self.token);
        self.mf_mut().help = Some(help);
        Some(State::StartOfLine)
    }

    fn reading_type(&mut self) -> Option<State> {
        if self.mf().kind.is_some() {
            let msg = format!(
                "second TYPE line for metric name {}, or TYPE reported after samples",
                go_quote(&self.mf_name())
            );
            return self.fail(msg);
        }
        if !self.read_token_until_newline(false) {
            return None;
        }
        let tok = bytes_str(&self.token);
        let kind = match tok.to_ascii_uppercase().as_str() {
            "COUNTER" => MetricType::Counter,
            "GAUGE" => MetricType::Gauge,
            "SUMMARY" => MetricType::Summary,
            "UNTYPED" => MetricType::Untyped,
            "HISTOGRAM" => MetricType::Histogram,
            _ => return self.fail(format!("unknown metric type {}", go_quote(&tok))),
        };
        self.mf_mut().kind = Some(kind);
        Some(State::StartOfLine)
    }

    fn finish(self) -> Vec<MetricFamily> {
        self.families
            .into_iter()
            .filter(|f| !f.metrics.is_empty())
            .map(|f| {
                let kind = f.kind.unwrap_or(MetricType::Untyped);
                let metrics = f
                    .metrics
                    .into_iter()
                    .map(|m| {
                        let value = match kind {
                            MetricType::Counter => MetricValue::Counter(m.value.unwrap_or(0.0)),
                            MetricType::Gauge => MetricValue::Gauge(m.value.unwrap_or(0.0)),
                            MetricType::Untyped => MetricValue::Untyped(m.value.unwrap_or(0.0)),
                            MetricType::Summary => MetricValue::Summary {
                                quantiles: m.quantiles,
                                sum: m.sum,
                                count: m.count,
                            },
                            MetricType::Histogram => MetricValue::Histogram {
                                buckets: m.buckets,
                                sum: m.sum,
                                count: m.count,
                            },
                        };
                        Metric {
                            labels: Labels::from_pairs(m.labels),
                            value,
                            timestamp_ms: m.timestamp_ms,
                        }
                    })
                    .collect();
                MetricFamily {
                    name: f.name,
                    help: f.help,
                    kind,
                    metrics,
                }
            })
            .collect()
    }
}

fn set_label(labels: &mut Vec<(String, String)>, name: String, value: String) {
    if let Some(l) = labels.iter_mut().find(|(n, _)| *n == name) {
        l.1 = value;
    } else {
        labels.push((name, value));
    }
}

/// Go's `uint64(f)` for the counts the parser stores as integers (truncation; Rust
/// saturates where Go's result is platform-defined: NaN and negatives give 0).
fn go_uint64(v: f64) -> f64 {
    (v as u64) as f64
}

/// `strconv.ParseInt(s, 10, 64)`: optional sign, decimal digits only.
fn parse_go_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn is_count(n: &str) -> bool {
    n.len() > 6 && n.ends_with("_count")
}
fn is_sum(n: &str) -> bool {
    n.len() > 4 && n.ends_with("_sum")
}
fn is_bucket(n: &str) -> bool {
    n.len() > 7 && n.ends_with("_bucket")
}
fn strip_summary_suffix(n: &str) -> &str {
    if is_count(n) {
        &n[..n.len() - 6]
    } else if is_sum(n) {
        &n[..n.len() - 4]
    } else {
        n
    }
}
fn strip_histogram_suffix(n: &str) -> &str {
    if is_bucket(n) {
        &n[..n.len() - 7]
    } else {
        strip_summary_suffix(n)
    }
}
