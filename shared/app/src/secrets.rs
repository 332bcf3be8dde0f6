//! Secrets by reference. Configuration text may say `${ssm:/argus/slack-url}`; at cold
//! start each reference is fetched once from SSM Parameter Store (with decryption) and
//! substituted in memory. Values never reach logs or the template; errors name the
//! parameter, never its value.

use regex::Regex;
use std::collections::BTreeMap;
use std::sync::OnceLock;

fn pattern() -> &'static Regex {
    static P: OnceLock<Regex> = OnceLock::new();
    P.get_or_init(|| Regex::new(r"\$\{ssm:([A-Za-z0-9_.\-/]+)\}").expect("valid regex"))
}

fn env_pattern() -> &'static Regex {
    static P: OnceLock<Regex> = OnceLock::new();
    P.get_or_init(|| Regex::new(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}").expect("valid regex"))
}

/// The SSM parameter names a string refers to, in order of first appearance.
pub fn references(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in pattern().captures_iter(text) {
        let name = c[1].to_string();
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// Substitutes resolved values into one string; a reference without a value is an
/// error naming it. The value is inserted as it is: callers substitute into parsed
/// string fields (see [`string_fields`]), never into a document's text.
pub fn substitute(text: &str, values: &BTreeMap<String, String>) -> Result<String, String> {
    let mut missing = None;
    let out = pattern()
        .replace_all(text, |c: &regex::Captures| match values.get(&c[1]) {
            Some(v) => v.clone(),
            None => {
                missing.get_or_insert_with(|| c[1].to_string());
                String::new()
            }
        })
        .into_owned();
    match missing {
        Some(m) => Err(format!("SSM parameter {m} was not resolved")),
        None => Ok(out),
    }
}

/// Substitutes `${env:NAME}` in one string with the environment variable (an unset one
/// is an error).
pub fn substitute_env(text: &str) -> Result<String, String> {
    let mut missing = None;
    let out = env_pattern()
        .replace_all(text, |c: &regex::Captures| {
            match crate::env::var_as_set(&c[1]) {
                Some(v) => v,
                None => {
                    missing.get_or_insert_with(|| c[1].to_string());
                    String::new()
                }
            }
        })
        .into_owned();
    match missing {
        Some(m) => Err(format!("environment variable {m} is not set")),
        None => Ok(out),
    }
}

/// Whether a string holds an `${env:...}` or `${ssm:...}` reference.
pub fn has_reference(s: &str) -> bool {
    pattern().is_match(s) || env_pattern().is_match(s)
}

/// Every string scalar of a parsed document (map keys excepted), in document order.
pub fn string_fields(v: &mut serde_json::Value) -> Vec<&mut String> {
    let mut out = Vec::new();
    fn walk<'a>(v: &'a mut serde_json::Value, out: &mut Vec<&'a mut String>) {
        match v {
            serde_json::Value::String(s) => out.push(s),
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| walk(x, out)),
            serde_json::Value::Object(m) => m.values_mut().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(v, &mut out);
    out
}

/// One SSM parameter, decrypted.
pub async fn get_parameter(client: &aws_sdk_ssm::Client, name: &str) -> Result<String, String> {
    let out = client
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| {
            format!(
                "SSM parameter {name}: {}",
                aws_sdk_ssm::error::DisplayErrorContext(e)
            )
        })?;
    out.parameter
        .and_then(|p| p.value)
        .ok_or_else(|| format!("SSM parameter {name} has no value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_substitutes() {
        let t = "url: ${ssm:/argus/hook}\nagain: ${ssm:/argus/hook} ${ssm:other}";
        assert_eq!(references(t), ["/argus/hook", "other"]);
        let mut v = BTreeMap::new();
        v.insert(
            "/argus/hook".to_string(),
            "https://hooks.example/x".to_string(),
        );
        let e = substitute(t, &v).unwrap_err();
        assert_eq!(e, "SSM parameter other was not resolved");
        v.insert("other".into(), "o".into());
        assert_eq!(
            substitute(t, &v).unwrap(),
            "url: https://hooks.example/x\nagain: https://hooks.example/x o"
        );
    }

    #[test]
    fn string_fields_of_a_document() {
        let mut v: serde_json::Value =
            serde_saphyr::from_str("a: x\nb: [w, {c: z}]\nn: 1\n").unwrap();
        let mut got: Vec<String> = string_fields(&mut v)
            .into_iter()
            .map(|s| s.clone())
            .collect();
        got.sort();
        assert_eq!(got, ["w", "x", "z"]);
        assert!(has_reference("a ${ssm:/x} b") && has_reference("${env:HOME}"));
        assert!(!has_reference("$ssm:/x"));
    }
}
