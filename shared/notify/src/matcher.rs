//! Label matchers (`name="v"`, `!=`, `=~`, `!~`) as Alertmanager's `pkg/labels`:
//! parsing of the matcher syntax used in `matchers:` lists, `filter=` query parameters and
//! amtool, anchored regexes, and the `String()` form that ends up in group keys.

use argus_model::Labels;
use argus_template::gofmt::go_quote;
use regex::Regex;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MatchType {
    Equal,
    NotEqual,
    Regexp,
    NotRegexp,
}

impl MatchType {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Equal => "=",
            MatchType::NotEqual => "!=",
            MatchType::Regexp => "=~",
            MatchType::NotRegexp => "!~",
        }
    }
    pub fn is_regex(self) -> bool {
        matches!(self, MatchType::Regexp | MatchType::NotRegexp)
    }
    pub fn is_equal(self) -> bool {
        matches!(self, MatchType::Equal | MatchType::Regexp)
    }
    pub fn from_flags(is_equal: bool, is_regex: bool) -> Self {
        match (is_equal, is_regex) {
            (true, false) => MatchType::Equal,
            (false, false) => MatchType::NotEqual,
            (true, true) => MatchType::Regexp,
            (false, true) => MatchType::NotRegexp,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad matcher {input:?}: {message}")]
pub struct MatcherError {
    pub input: String,
    pub message: String,
}

/// One matcher; regexes are fully anchored, as in Alertmanager.
#[derive(Clone, Debug)]
pub struct Matcher {
    pub name: String,
    pub op: MatchType,
    pub value: String,
    re: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && self.op == o.op && self.value == o.value
    }
}
impl Eq for Matcher {}

impl Matcher {
    pub fn new(name: &str, op: MatchType, value: &str) -> Result<Matcher, MatcherError> {
        let re = if op.is_regex() {
            Some(
                Regex::new(&format!("^(?:{value})$")).map_err(|e| MatcherError {
                    input: format!("{name}{}{value:?}", op.as_str()),
                    message: format!("invalid regular expression: {e}"),
                })?,
            )
        } else {
            None
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            re,
        })
    }

    /// Matches a single value (a missing label is the empty string, as in Alertmanager).
    pub fn matches_value(&self, v: &str) -> bool {
        match self.op {
            MatchType::Equal => v == self.value,
            MatchType::NotEqual => v != self.value,
            MatchType::Regexp => self.re.as_ref().is_some_and(|r| r.is_match(v)),
            MatchType::NotRegexp => !self.re.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_value(labels.get(&self.name).unwrap_or(""))
    }

    /// Parses one matcher, `name op value` with the value quoted or bare.
    pub fn parse(s: &str) -> Result<Matcher, MatcherError> {
        let mut v = parse_matchers(s)?;
        if v.len() != 1 {
            return Err(MatcherError {
                input: s.into(),
                message: "expected exactly one matcher".into(),
            });
        }
        Ok(v.remove(0))
    }
}

impl fmt::Display for Matcher {
    /// `name="value"` with Go `%q` quoting: the form in Alertmanager's group keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.name,
            self.op.as_str(),
            go_quote(&self.value)
        )
    }
}

/// A list of matchers that must all match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Matchers(pub Vec<Matcher>);

impl Matchers {
    pub fn matches(&self, labels: &Labels) -> bool {
        self.0.iter().all(|m| m.matches(labels))
    }
    /// Sorts as Alertmanager's `labels.Matchers` (name, value, type).
    pub fn sort(&mut self) {
        self.0
            .sort_by(|a, b| (&a.name, &a.value, a.op).cmp(&(&b.name, &b.value, b.op)));
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Matchers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{m}")?;
        }
        f.write_str("}")
    }
}

/// Prometheus `LabelSet.String()`: `{a="1", b="2"}` with Go quoting.
pub fn labels_string(l: &Labels) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in l.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(k);
        out.push('=');
        out.push_str(&go_quote(v));
    }
    out.push('}');
    out
}

/// Parses Alertmanager's matcher list syntax: `{a="b", c=~"d.*"}` or `a=b,c!~d`.
pub fn parse_matchers(input: &str) -> Result<Vec<Matcher>, MatcherError> {
    let err = |m: &str| MatcherError {
        input: input.to_string(),
        message: m.to_string(),
    };
    let mut s = input.trim();
    if let Some(rest) = s.strip_prefix('{') {
        s = rest
            .strip_suffix('}')
            .ok_or_else(|| err("missing closing '}'"))?
            .trim();
    } else if s.ends_with('}') {
        return Err(err("missing opening '{'"));
    }
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= chars.len() {
            break;
        }
        // name
        let start = i;
        while i < chars.len()
            && !matches!(chars[i], '=' | '!' | '~' | ',')
            && !chars[i].is_whitespace()
        {
            i += 1;
        }
        let name: String = chars[start..i].iter().collect();
        let name = name.trim_matches('"').to_string();
        if name.is_empty() {
            return Err(err("missing label name"));
        }
        if !valid_label_name(&name) {
            return Err(err(&format!("invalid label name {name:?}")));
        }
        skip_ws(&mut i);
        let op = if chars[i..].starts_with(&['=', '~']) {
            i += 2;
            MatchType::Regexp
        } else if chars[i..].starts_with(&['!', '~']) {
            i += 2;
            MatchType::NotRegexp
        } else if chars[i..].starts_with(&['!', '=']) {
            i += 2;
            MatchType::NotEqual
        } else if chars[i..].starts_with(&['=']) {
            i += 1;
            MatchType::Equal
        } else {
            return Err(err(&format!(
                "expected an operator (=, !=, =~, !~) after {name:?}"
            )));
        };
        skip_ws(&mut i);
        let value = if i < chars.len() && chars[i] == '"' {
            i += 1;
            let mut v = String::new();
            let mut closed = false;
            while i < chars.len() {
                match chars[i] {
                    '\\' if i + 1 < chars.len() => {
                        i += 1;
                        match chars[i] {
                            'n' => v.push('\n'),
                            't' => v.push('\t'),
                            'r' => v.push('\r'),
                            c => {
                                // Keep regex escapes intact: `\.` stays `\.`; `\"` and `\\` unescape.
                                if c != '"' && c != '\\' {
                                    v.push('\\');
                                }
                                v.push(c)
                            }
                        }
                    }
                    '"' => {
                        closed = true;
                        i += 1;
                        break;
                    }
                    c => v.push(c),
                }
                i += 1;
            }
            if !closed {
                return Err(err("unterminated quoted value"));
            }
            v
        } else {
            let start = i;
            while i < chars.len() && chars[i] != ',' {
                i += 1;
            }
            chars[start..i]
                .iter()
                .collect::<String>()
                .trim()
                .to_string()
        };
        out.push(Matcher::new(&name, op, &value).map_err(|e| MatcherError {
            input: input.into(),
            message: e.message,
        })?);
        skip_ws(&mut i);
        if i < chars.len() {
            if chars[i] == ',' {
                i += 1;
            } else {
                return Err(err(&format!(
                    "unexpected {:?} after matcher {name:?}",
                    chars[i]
                )));
            }
        }
    }
    Ok(out)
}

pub use argus_model::valid_label_name;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_forms() {
        let m = parse_matchers(
            r#"{alertname="Site Down", severity=~"page|crit", env!="dev",x!~"a\.b"}"#,
        )
        .unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].to_string(), r#"alertname="Site Down""#);
        assert_eq!(m[1].op, MatchType::Regexp);
        assert_eq!(m[3].value, r"a\.b");
        let m = parse_matchers("severity=page").unwrap();
        assert_eq!(m[0].value, "page");
        assert!(parse_matchers("=x").is_err());
        assert!(parse_matchers("a~x").is_err());
        assert!(parse_matchers("a=~\"(\"").is_err());
        assert!(parse_matchers("{a=\"x\"").is_err());
    }

    #[test]
    fn regex_is_anchored_and_missing_label_is_empty() {
        let l = Labels::from_pairs([("severity", "pager")]);
        assert!(!Matcher::parse("severity=~page").unwrap().matches(&l));
        assert!(Matcher::parse("severity=~page.*").unwrap().matches(&l));
        assert!(Matcher::parse("team=\"\"").unwrap().matches(&l));
        assert!(Matcher::parse("team!~.+").unwrap().matches(&l));
    }

    #[test]
    fn go_quoting() {
        assert_eq!(go_quote("a\"b\\c\n"), r#""a\"b\\c\n""#);
        assert_eq!(go_quote("é"), "\"é\"");
        assert_eq!(
            labels_string(&Labels::from_pairs([("b", "2"), ("a", "1")])),
            r#"{a="1", b="2"}"#
        );
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// What a matcher prints (the group-key form) parses back to the same matcher.
        #[test]
        fn display_parses_back(name in "[a-zA-Z_][a-zA-Z0-9_]{0,8}", value in "[ -~é\\n\\t]{0,12}", op in 0usize..2) {
            let op = [MatchType::Equal, MatchType::NotEqual][op];
            let m = Matcher::new(&name, op, &value).unwrap();
            let back = Matcher::parse(&m.to_string()).unwrap();
            prop_assert_eq!(back, m);
        }

        /// Arbitrary input never panics the parser.
        #[test]
        fn parser_never_panics(s in "\\PC{0,40}") {
            let _ = parse_matchers(&s);
        }
    }
}
