//! Prometheus rule files: parsing (YAML) and validation as `promtool check rules` does
//! (prometheus/model/rulefmt), producing rules ready to evaluate.

use argus_model::Labels;
use argus_promql::Expr;
use argus_template::prometheus::AlertTemplate;
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;

/// One problem found in a rule file, worded as promtool words it:
/// `FILE: LINE:COL: group "g", rule 2, "Name": problem`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}: {msg}")]
pub struct RuleError {
    pub file: String,
    /// Everything after `FILE: `.
    pub msg: String,
}

/// A YAML scalar read as a string (Go's yaml decodes `1`/`true` into strings too).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(String::new()))
            }
        }
        d.deserialize_str(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default, deserialize_with = "de_null_default")]
    groups: Vec<Spanned<RawGroup>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    name: Scalar,
    #[serde(default)]
    interval: Option<Scalar>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default, deserialize_with = "de_null_default")]
    rules: Vec<RawRule>,
}

/// `key:` with no value (YAML null) reads as the empty default, as Go's yaml does.
fn de_null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    record: Option<Spanned<Scalar>>,
    #[serde(default)]
    alert: Option<Spanned<Scalar>>,
    #[serde(default)]
    expr: Option<Spanned<Scalar>>,
    #[serde(default, rename = "for")]
    for_: Option<Scalar>,
    #[serde(default)]
    keep_firing_for: Option<Scalar>,
    #[serde(default)]
    labels: Option<BTreeMap<String, Scalar>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, Scalar>>,
}

/// Alerting or recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    Alerting,
    Recording,
}

/// A label or annotation of an alerting rule: its template, parsed once.
#[derive(Debug, Clone)]
pub struct TemplatedPair {
    pub name: String,
    pub template: AlertTemplate,
}

/// A validated rule, ready to evaluate.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The alert name or the recorded metric name.
    pub name: String,
    pub kind: RuleKind,
    /// The expression as written.
    pub expr_text: String,
    /// The parsed expression.
    pub expr: Arc<Expr>,
    /// `for` (alerting), ms.
    pub for_ms: i64,
    /// `keep_firing_for` (alerting), ms.
    pub keep_firing_for_ms: i64,
    /// Extra labels (templates for alerting rules; plain for recording rules), by name.
    pub labels: Vec<TemplatedPair>,
    /// Annotations (alerting rules), by name.
    pub annotations: Vec<TemplatedPair>,
}

impl Rule {
    /// The expression as Prometheus prints it (used in generator URLs).
    pub fn expr_string(&self) -> String {
        self.expr.to_string()
    }
}

/// A rule group.
#[derive(Debug, Clone)]
pub struct RuleGroup {
    pub name: String,
    /// The file the group came from.
    pub file: String,
    /// `interval`, ms; `None` = the global evaluation interval.
    pub interval_ms: Option<i64>,
    /// `limit` (0 = none).
    pub limit: usize,
    pub rules: Vec<Rule>,
}

/// A parsed, validated rule file.
#[derive(Debug, Clone)]
pub struct RuleFile {
    pub path: String,
    pub groups: Vec<RuleGroup>,
}

impl RuleFile {
    pub fn rule_count(&self) -> usize {
        self.groups.iter().map(|g| g.rules.len()).sum()
    }

    /// Rules with the same name (alert or recorded metric) and the same labels (as
    /// written) anywhere in the file: promtool's `duplicate-rules` lint. Each
    /// duplicated (name, labels) once, sorted by name, then labels.
    pub fn duplicate_rules(&self) -> Vec<(String, Vec<(String, String)>)> {
        let mut all: Vec<(String, Vec<(String, String)>)> = self
            .groups
            .iter()
            .flat_map(|g| g.rules.iter())
            .map(|r| {
                let mut l: Vec<(String, String)> = r
                    .labels
                    .iter()
                    .map(|p| (p.name.clone(), p.template.text().to_string()))
                    .collect();
                l.sort();
                (r.name.clone(), l)
            })
            .collect();
        all.sort();
        let mut dups: Vec<(String, Vec<(String, String)>)> = Vec::new();
        for w in all.windows(2) {
            if w[0] == w[1] && dups.last() != Some(&w[1]) {
                dups.push(w[1].clone());
            }
        }
        dups
    }
}

pub use argus_model::{valid_label_name, valid_metric_name};

fn duration_ms(s: &str) -> Result<i64, String> {
    argus_model::time::parse_duration(s).map(|d| d.as_millis() as i64)
}

/// Reads and validates a rule file.
pub fn load_rule_file(path: &Path) -> Result<RuleFile, Vec<RuleError>> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![RuleError {
            file: name.clone(),
            msg: e.to_string(),
        }]
    })?;
    parse_rule_file(&name, &text)
}

fn pos(s: &Option<Spanned<Scalar>>) -> (u64, u64) {
    match s {
        Some(sp) => (sp.referenced.line(), sp.referenced.column()),
        None => (0, 0),
    }
}

fn val(s: &Option<Spanned<Scalar>>) -> &str {
    s.as_ref().map(|x| x.value.0.as_str()).unwrap_or("")
}

/// Parses and validates rule file text; `file` names it in errors.
pub fn parse_rule_file(file: &str, text: &str) -> Result<RuleFile, Vec<RuleError>> {
    let e = |msg: String| RuleError {
        file: file.to_string(),
        msg,
    };
    // A file that is empty, `null` or only comments has no groups (promtool: "0 rules
    // found"); of several YAML documents only the first counts, as Go's yaml.Unmarshal
    // (promtool 2.42) reads it.
    let raw: RawFile = if text.trim().is_empty() {
        RawFile { groups: Vec::new() }
    } else {
        let opts = crate::unittest::yaml_options;
        let yerr =
            |err: serde_saphyr::Error| vec![e(crate::unittest::yaml_error(&err.to_string()))];
        match serde_saphyr::from_str_with_options::<Option<RawFile>>(text, opts()) {
            Ok(r) => r.unwrap_or(RawFile { groups: Vec::new() }),
            Err(err) if err.to_string().contains("multiple YAML documents") => {
                serde_saphyr::from_str_multiple_with_options::<Option<RawFile>, Vec<_>>(
                    text,
                    opts(),
                )
                .map_err(yerr)?
                .into_iter()
                .next()
                .flatten()
                .unwrap_or(RawFile { groups: Vec::new() })
            }
            Err(err) => return Err(yerr(err)),
        }
    };
    let mut errs = Vec::new();
    let mut seen = HashSet::new();
    let mut groups = Vec::new();
    for g in &raw.groups {
        let (gl, gc) = (g.referenced.line(), g.referenced.column());
        let g = &g.value;
        let gname = g.name.0.clone();
        if gname.is_empty() {
            errs.push(e(format!("{gl}:{gc}: Groupname must not be empty")));
        }
        if !seen.insert(gname.clone()) {
            errs.push(e(format!(
                "{gl}:{gc}: groupname: \"{gname}\" is repeated in the same file"
            )));
        }
        let interval_ms = match &g.interval {
            Some(s) => match duration_ms(&s.0) {
                Ok(ms) if ms > 0 => Some(ms),
                Ok(_) => None,
                Err(m) => {
                    errs.push(e(format!("group {gname:?}: invalid interval: {m}")));
                    None
                }
            },
            None => None,
        };
        let limit = match g.limit {
            Some(l) if l < 0 => {
                errs.push(e(format!("group {gname:?}: limit must not be negative")));
                0
            }
            Some(l) => l as usize,
            None => 0,
        };
        let mut rules = Vec::new();
        for (i, r) in g.rules.iter().enumerate() {
            let alert = val(&r.alert).to_string();
            let record = val(&r.record).to_string();
            let rule_name = if !alert.is_empty() {
                alert.clone()
            } else {
                record.clone()
            };
            let mut rerrs: Vec<String> = Vec::new();
            let at = |p: (u64, u64)| format!("{}:{}: ", p.0, p.1);
            let head = format!("group {gname:?}, rule {}, {rule_name:?}: ", i + 1);
            if !record.is_empty() && !alert.is_empty() {
                let (a, b) = (pos(&r.record), pos(&r.alert));
                rerrs.push(format!(
                    "{}{}{}only one of 'record' and 'alert' must be set",
                    at(a),
                    at(b),
                    head
                ));
            }
            if record.is_empty() && alert.is_empty() {
                rerrs.push(format!(
                    "{}{head}one of 'record' or 'alert' must be set",
                    at(pos(&r.record))
                ));
            }
            let expr_text = val(&r.expr).to_string();
            let mut expr = None;
            if expr_text.is_empty() {
                rerrs.push(format!(
                    "{}{head}field 'expr' must be set in rule",
                    at(pos(&r.expr))
                ));
            } else {
                match argus_promql::parse(&expr_text) {
                    Ok(x) => expr = Some(x),
                    Err(err) => rerrs.push(format!(
                        "{}{head}could not parse expression: {err}",
                        at(pos(&r.expr))
                    )),
                }
            }
            let parse_dur = |s: &Option<Scalar>, field: &str, rerrs: &mut Vec<String>| -> i64 {
                match s {
                    Some(v) => duration_ms(&v.0).unwrap_or_else(|m| {
                        rerrs.push(format!("{head}invalid '{field}': {m}"));
                        0
                    }),
                    None => 0,
                }
            };
            let for_ms = parse_dur(&r.for_, "for", &mut rerrs);
            let keep_ms = parse_dur(&r.keep_firing_for, "keep_firing_for", &mut rerrs);
            let labels: Vec<(String, String)> = r
                .labels
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.0.clone()))
                .collect();
            let annotations: Vec<(String, String)> = r
                .annotations
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.0.clone()))
                .collect();
            if !record.is_empty() {
                let rp = at(pos(&r.record));
                if !annotations.is_empty() {
                    rerrs.push(format!(
                        "{rp}{head}invalid field 'annotations' in recording rule"
                    ));
                }
                if for_ms != 0 {
                    rerrs.push(format!("{rp}{head}invalid field 'for' in recording rule"));
                }
                if keep_ms != 0 {
                    rerrs.push(format!(
                        "{rp}{head}invalid field 'keep_firing_for' in recording rule"
                    ));
                }
                if !valid_metric_name(&record) {
                    rerrs.push(format!("{rp}{head}invalid recording rule name: {record}"));
                }
            }
            for (k, _) in &labels {
                if !valid_label_name(k) || k == "__name__" {
                    rerrs.push(format!("{head}invalid label name: {k}"));
                }
            }
            for (k, _) in &annotations {
                if !valid_label_name(k) {
                    rerrs.push(format!("{head}invalid annotation name: {k}"));
                }
            }
            let mut tl = Vec::new();
            let mut ta = Vec::new();
            if !alert.is_empty() {
                for (k, v) in &labels {
                    match AlertTemplate::compile(&alert, v) {
                        Ok(t) => tl.push(TemplatedPair {
                            name: k.clone(),
                            template: t,
                        }),
                        Err(m) => rerrs.push(format!("{head}label {k:?}: {m}")),
                    }
                }
                for (k, v) in &annotations {
                    match AlertTemplate::compile(&alert, v) {
                        Ok(t) => ta.push(TemplatedPair {
                            name: k.clone(),
                            template: t,
                        }),
                        Err(m) => rerrs.push(format!("{head}annotation {k:?}: {m}")),
                    }
                }
            } else {
                for (k, v) in &labels {
                    tl.push(TemplatedPair {
                        name: k.clone(),
                        template: AlertTemplate::plain(v),
                    });
                }
            }
            if !rerrs.is_empty() {
                errs.extend(rerrs.into_iter().map(e));
                continue;
            }
            let Some(expr) = expr else { continue };
            rules.push(Rule {
                name: rule_name,
                kind: if alert.is_empty() {
                    RuleKind::Recording
                } else {
                    RuleKind::Alerting
                },
                expr_text,
                expr: Arc::new(expr),
                for_ms,
                keep_firing_for_ms: keep_ms,
                labels: tl,
                annotations: ta,
            });
        }
        groups.push(RuleGroup {
            name: gname,
            file: file.to_string(),
            interval_ms,
            limit,
            rules,
        });
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(RuleFile {
        path: file.to_string(),
        groups,
    })
}

/// Static labels of a recording rule as a label set.
pub(crate) fn plain_labels(pairs: &[TemplatedPair]) -> Labels {
    Labels::from_pairs(
        pairs
            .iter()
            .map(|p| (p.name.clone(), p.template.text().to_string())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_valid_file() {
        let f = parse_rule_file(
            "r.yml",
            "groups:\n- name: g\n  interval: 30s\n  limit: 5\n  rules:\n  - record: job:up:sum\n    expr: sum by (job) (up)\n    labels: {team: a}\n  - alert: Down\n    expr: up == 0\n    for: 5m\n    keep_firing_for: 1m\n    labels: {severity: page}\n    annotations:\n      summary: '{{ $labels.instance }} down'\n",
        )
        .unwrap();
        let g = &f.groups[0];
        assert_eq!(
            (g.name.as_str(), g.interval_ms, g.limit),
            ("g", Some(30_000), 5)
        );
        assert_eq!(g.rules[0].kind, RuleKind::Recording);
        assert_eq!(g.rules[1].for_ms, 300_000);
        assert_eq!(g.rules[1].keep_firing_for_ms, 60_000);
        assert_eq!(f.rule_count(), 2);
    }

    #[test]
    fn reports_problems_like_promtool() {
        let text = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up ==\n  - record: 'bad name'\n    expr: up\n    for: 1m\n  - alert: B\n    record: c\n    expr: up\n  - expr: up\n  - alert: C\n    expr: up\n    labels: {'bad-l': x}\n    annotations: {s: '{{ .Foo '}\n- name: g\n";
        let errs = parse_rule_file("bad.yml", text).unwrap_err();
        let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert!(
            msgs[0].starts_with(
                "bad.yml: 5:11: group \"g\", rule 1, \"A\": could not parse expression: "
            ),
            "{msgs:?}"
        );
        assert_eq!(msgs[1], "bad.yml: 6:13: group \"g\", rule 2, \"bad name\": invalid field 'for' in recording rule");
        assert_eq!(msgs[2], "bad.yml: 6:13: group \"g\", rule 2, \"bad name\": invalid recording rule name: bad name");
        assert_eq!(msgs[3], "bad.yml: 10:13: 9:12: group \"g\", rule 3, \"B\": only one of 'record' and 'alert' must be set");
        assert_eq!(
            msgs[4],
            "bad.yml: 0:0: group \"g\", rule 4, \"\": one of 'record' or 'alert' must be set"
        );
        assert_eq!(
            msgs[5],
            "bad.yml: group \"g\", rule 5, \"C\": invalid label name: bad-l"
        );
        assert_eq!(msgs[6], "bad.yml: group \"g\", rule 5, \"C\": annotation \"s\": template: __alert_C:1: unclosed action");
        assert_eq!(
            msgs[7],
            "bad.yml: 17:3: groupname: \"g\" is repeated in the same file"
        );
        assert_eq!(msgs.len(), 8);
    }

    #[test]
    fn empty_null_and_multi_document_files() {
        // promtool 2.42: "SUCCESS: 0 rules found" for each of these.
        for text in [
            "",
            "null\n",
            "# only a comment\n",
            "groups:\n",
            "groups:\n- name: g\n  rules:\n",
        ] {
            let f = parse_rule_file("e.yml", text).unwrap_or_else(|e| panic!("{text:?}: {e:?}"));
            assert_eq!(f.rule_count(), 0, "{text:?}");
        }
        // Only the first document counts, even if a later one would be invalid.
        let text = "groups:\n- name: a\n  rules:\n  - record: x\n    expr: up\n---\ngroups:\n- name: b\n  rules:\n  - record: y\n    expr: up\n  - record: z\n    expr: up\n";
        let f = parse_rule_file("m.yml", text).unwrap();
        assert_eq!((f.groups.len(), f.rule_count()), (1, 1));
        assert_eq!(f.groups[0].name, "a");
        // A broken first document is still an error.
        assert!(parse_rule_file("m.yml", "groups: [\n---\ngroups: []\n").is_err());
    }

    #[test]
    fn duplicate_rules_like_promtool() {
        let text = "groups:\n- name: a\n  rules:\n  - record: x\n    expr: up\n  - alert: A\n    expr: up\n    labels: {s: page}\n- name: b\n  rules:\n  - record: x\n    expr: sum(up)\n  - record: x\n    expr: max(up)\n  - alert: A\n    expr: up\n    labels: {s: page}\n  - alert: A\n    expr: up\n    labels: {s: warn}\n";
        let f = parse_rule_file("d.yml", text).unwrap();
        assert_eq!(
            f.duplicate_rules(),
            vec![
                ("A".to_string(), vec![("s".to_string(), "page".to_string())]),
                ("x".to_string(), vec![]),
            ],
            "each duplicated (name, labels) once, sorted"
        );
    }

    #[test]
    fn unknown_fields_are_errors() {
        let errs = parse_rule_file(
            "u.yml",
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    bogus: 1\n",
        )
        .unwrap_err();
        assert!(errs[0].to_string().contains("bogus"), "{errs:?}");
    }
}

#[cfg(test)]
mod scalar_tests {
    use super::*;

    #[test]
    fn scalars_keep_their_text() {
        #[derive(Deserialize)]
        struct S {
            a: Scalar,
            b: Scalar,
            c: Scalar,
            d: Scalar,
            e: Scalar,
        }
        let s: S = serde_saphyr::from_str("a: n\nb: 1.0\nc: yes\nd: 010\ne: 'x'\n").unwrap();
        assert_eq!(
            [s.a.0, s.b.0, s.c.0, s.d.0, s.e.0],
            ["n", "1.0", "yes", "010", "x"]
        );
    }
}
