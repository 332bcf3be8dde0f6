//! argus-relabel: Prometheus 2.42's relabeling (`relabel_configs`,
//! `metric_relabel_configs`, `write_relabel_configs`, `alert_relabel_configs`).
//!
//! [`RelabelConfig`] is the YAML shape with Prometheus's defaults (separator `;`, regex
//! `(.*)` fully anchored, replacement `$1`, action `replace`) and its validation
//! messages; [`RelabelConfig::compile`] turns it into a [`Relabel`] step, and
//! [`process`] applies a list of steps to a label set in order, `None` meaning the
//! series (or target) is dropped.
//!
//! Semantics follow `model/relabel/relabel.go` at v2.42.0, including its corners:
//! a `replace` whose expanded target is not a valid label name, or whose expanded
//! replacement is empty, deletes the label named by the *unexpanded* `target_label`;
//! `hashmod` is the last 8 bytes of the MD5 of the joined values, big-endian, modulo
//! `modulus`; `labelmap`/`labeldrop`/`labelkeep` look at the labels as they were
//! before the step. Regexes are Go RE2 syntax as far as the `regex` crate shares it
//! (it does for everything relabel configs use in practice: classes, groups,
//! alternation, repetition; no backreferences in either). Replacement templates use
//! `$1`, `${1}`, `$name` and `$$`, expanded with the same "longest name" rule as Go.

use argus_model::Labels;
use md5::{Digest, Md5};
use regex::Regex;
use serde::{Deserialize, Serialize};

/// Prometheus's defaults.
pub const DEFAULT_SEPARATOR: &str = ";";
pub const DEFAULT_REGEX: &str = "(.*)";
pub const DEFAULT_REPLACEMENT: &str = "$1";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Action {
    #[default]
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

impl Action {
    /// Case-insensitive, as Prometheus's YAML unmarshalling.
    pub fn parse(s: &str) -> Result<Action, RelabelError> {
        Ok(match s.to_lowercase().as_str() {
            "replace" => Action::Replace,
            "keep" => Action::Keep,
            "drop" => Action::Drop,
            "keepequal" => Action::KeepEqual,
            "dropequal" => Action::DropEqual,
            "hashmod" => Action::HashMod,
            "labelmap" => Action::LabelMap,
            "labeldrop" => Action::LabelDrop,
            "labelkeep" => Action::LabelKeep,
            "lowercase" => Action::Lowercase,
            "uppercase" => Action::Uppercase,
            _ => return Err(RelabelError(format!("unknown relabel action {s:?}"))),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }
}

/// A configuration error, worded as Prometheus words it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RelabelError(pub String);

/// One relabel rule as written in YAML. Absent fields take Prometheus's defaults;
/// unknown fields are rejected by name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_labels: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub separator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modulus: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

/// A compiled, validated relabel step.
#[derive(Clone, Debug)]
pub struct Relabel {
    pub action: Action,
    pub source_labels: Vec<String>,
    pub separator: String,
    regex: Regex,
    regex_src: String,
    pub modulus: u64,
    pub target_label: String,
    pub replacement: String,
}

pub use argus_model::valid_label_name;

/// Prometheus's `relabelTarget`: names with `$1`/`${name}` references.
fn valid_template_target(s: &str) -> bool {
    static RX: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RX.get_or_init(|| {
        Regex::new(r"^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$").expect("static regex")
    })
    .is_match(s)
}

/// Compiles `s` fully anchored, as Prometheus's `NewRegexp`.
pub fn anchored(s: &str) -> Result<Regex, RelabelError> {
    Regex::new(&format!("^(?:{s})$")).map_err(|e| RelabelError(format!("invalid regex {s:?}: {e}")))
}

impl RelabelConfig {
    /// Validates as Prometheus's `Config.Validate` does and compiles the regex.
    pub fn compile(&self) -> Result<Relabel, RelabelError> {
        let action = Action::parse(self.action.as_deref().unwrap_or("replace"))?;
        let source_labels = self.source_labels.clone().unwrap_or_default();
        for l in &source_labels {
            if !valid_label_name(l) {
                return Err(RelabelError(format!("{l:?} is not a valid label name")));
            }
        }
        let separator = self
            .separator
            .clone()
            .unwrap_or_else(|| DEFAULT_SEPARATOR.into());
        let regex_src = self.regex.clone().unwrap_or_else(|| DEFAULT_REGEX.into());
        let regex = anchored(&regex_src)?;
        let modulus = self.modulus.unwrap_or(0);
        let target_label = self.target_label.clone().unwrap_or_default();
        let replacement = self
            .replacement
            .clone()
            .unwrap_or_else(|| DEFAULT_REPLACEMENT.into());
        let a = action.as_str();
        let err = |m: String| Err(RelabelError(m));
        if modulus == 0 && action == Action::HashMod {
            return err("relabel configuration for hashmod requires non-zero modulus".into());
        }
        let needs_target = matches!(
            action,
            Action::Replace
                | Action::HashMod
                | Action::Lowercase
                | Action::Uppercase
                | Action::KeepEqual
                | Action::DropEqual
        );
        if needs_target && target_label.is_empty() {
            return err(format!(
                "relabel configuration for {a} action requires 'target_label' value"
            ));
        }
        let templated = target_label.contains('$');
        let invalid_target =
            || format!("{target_label:?} is invalid 'target_label' for {a} action");
        if action == Action::Replace && !templated && !valid_label_name(&target_label) {
            return err(invalid_target());
        }
        if action == Action::Replace && templated && !valid_template_target(&target_label) {
            return err(invalid_target());
        }
        let case_or_equal = matches!(
            action,
            Action::Lowercase | Action::Uppercase | Action::KeepEqual | Action::DropEqual
        );
        if case_or_equal && !valid_label_name(&target_label) {
            return err(invalid_target());
        }
        if case_or_equal && replacement != DEFAULT_REPLACEMENT {
            return err(format!("'replacement' can not be set for {a} action"));
        }
        if action == Action::LabelMap && !valid_template_target(&replacement) {
            return err(format!(
                "{replacement:?} is invalid 'replacement' for {a} action"
            ));
        }
        if action == Action::HashMod && !valid_label_name(&target_label) {
            return err(invalid_target());
        }
        if matches!(action, Action::KeepEqual | Action::DropEqual)
            && (self.regex.is_some()
                || modulus != 0
                || separator != DEFAULT_SEPARATOR
                || replacement != DEFAULT_REPLACEMENT)
        {
            return err(format!(
                "{a} action requires only 'source_labels' and `target_label`, and no other fields"
            ));
        }
        if matches!(action, Action::LabelDrop | Action::LabelKeep)
            && (self.source_labels.is_some()
                || !target_label.is_empty()
                || modulus != 0
                || separator != DEFAULT_SEPARATOR
                || replacement != DEFAULT_REPLACEMENT)
        {
            return err(format!(
                "{a} action requires only 'regex', and no other fields"
            ));
        }
        Ok(Relabel {
            action,
            source_labels,
            separator,
            regex,
            regex_src,
            modulus,
            target_label,
            replacement,
        })
    }
}

/// Compiles a list, naming the failing entry by index (`write_relabel_configs[2]: ...`).
pub fn compile_all(field: &str, cfgs: &[RelabelConfig]) -> Result<Vec<Relabel>, RelabelError> {
    cfgs.iter()
        .enumerate()
        .map(|(i, c)| {
            c.compile()
                .map_err(|e| RelabelError(format!("{field}[{i}]: {e}")))
        })
        .collect()
}

/// The MD5-based value Prometheus's `hashmod` uses: the last 8 bytes of the digest,
/// big-endian, modulo `modulus`.
pub fn hashmod(value: &str, modulus: u64) -> u64 {
    let d = Md5::digest(value.as_bytes());
    let mut last = [0u8; 8];
    last.copy_from_slice(&d[8..16]);
    u64::from_be_bytes(last) % modulus
}

impl Relabel {
    pub fn regex(&self) -> &str {
        &self.regex_src
    }

    /// Applies this step; `false` drops the label set.
    pub fn apply(&self, lbls: &mut Labels) -> bool {
        let val = self
            .source_labels
            .iter()
            .map(|l| lbls.get(l).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(&self.separator);
        match self.action {
            Action::Drop => return !self.regex.is_match(&val),
            Action::Keep => return self.regex.is_match(&val),
            Action::DropEqual => return lbls.get(&self.target_label).unwrap_or("") != val,
            Action::KeepEqual => return lbls.get(&self.target_label).unwrap_or("") == val,
            Action::Replace => {
                let Some(caps) = self.regex.captures(&val) else {
                    return true;
                };
                let mut target = String::new();
                caps.expand(&self.target_label, &mut target);
                if !valid_label_name(&target) {
                    lbls.remove(&self.target_label);
                    return true;
                }
                let mut res = String::new();
                caps.expand(&self.replacement, &mut res);
                if res.is_empty() {
                    lbls.remove(&self.target_label);
                    return true;
                }
                lbls.set(&target, &res);
            }
            Action::Lowercase => lbls.set(&self.target_label, &val.to_lowercase()),
            Action::Uppercase => lbls.set(&self.target_label, &val.to_uppercase()),
            Action::HashMod => {
                lbls.set(&self.target_label, &hashmod(&val, self.modulus).to_string());
            }
            Action::LabelMap => {
                let before = lbls.clone();
                for (name, value) in before.iter() {
                    if self.regex.is_match(name) {
                        let res = self.regex.replace_all(name, self.replacement.as_str());
                        lbls.set(&res, value);
                    }
                }
            }
            Action::LabelDrop | Action::LabelKeep => {
                let keep_matching = self.action == Action::LabelKeep;
                let before = lbls.clone();
                for (name, _) in before.iter() {
                    if self.regex.is_match(name) != keep_matching {
                        lbls.remove(name);
                    }
                }
            }
        }
        true
    }
}

/// Applies the steps in order; `None` when one of them drops the label set.
pub fn process(lbls: &Labels, steps: &[Relabel]) -> Option<Labels> {
    let mut out = lbls.clone();
    for s in steps {
        if !s.apply(&mut out) {
            return None;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests;
