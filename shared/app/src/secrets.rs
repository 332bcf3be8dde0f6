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

/// The part of a YAML line before a comment (`#` at the start or after white space,
/// outside quotes): references in comments are neither resolved nor required.
fn code_part(line: &str) -> &str {
    let (mut single, mut double) = (false, false);
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev_space => return &line[..i],
            _ => {}
        }
        prev_space = c.is_whitespace();
    }
    line
}

/// Applies `f` to the code part of every line, keeping comments as they are.
fn map_code(text: &str, mut f: impl FnMut(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let code = code_part(line);
        out.push_str(&f(code));
        out.push_str(&line[code.len()..]);
    }
    out
}

/// The SSM parameter names a text refers to, in order of first appearance.
pub fn references(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in text
        .lines()
        .flat_map(|l| pattern().captures_iter(code_part(l)))
    {
        let name = c[1].to_string();
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// Substitutes resolved values; a reference without a value is an error naming it.
pub fn substitute(text: &str, values: &BTreeMap<String, String>) -> Result<String, String> {
    let mut missing = None;
    let out = map_code(text, |code| {
        pattern()
            .replace_all(code, |c: &regex::Captures| match values.get(&c[1]) {
                Some(v) => v.clone(),
                None => {
                    missing.get_or_insert_with(|| c[1].to_string());
                    String::new()
                }
            })
            .into_owned()
    });
    match missing {
        Some(m) => Err(format!("SSM parameter {m} was not resolved")),
        None => Ok(out),
    }
}

/// Substitutes `${env:NAME}` with the environment variable (an unset one is an error).
pub fn substitute_env(text: &str) -> Result<String, String> {
    static P: OnceLock<Regex> = OnceLock::new();
    let p =
        P.get_or_init(|| Regex::new(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}").expect("valid regex"));
    let mut missing = None;
    let out = map_code(text, |code| {
        p.replace_all(code, |c: &regex::Captures| match std::env::var(&c[1]) {
            Ok(v) => v,
            Err(_) => {
                missing.get_or_insert_with(|| c[1].to_string());
                String::new()
            }
        })
        .into_owned()
    });
    match missing {
        Some(m) => Err(format!("environment variable {m} is not set")),
        None => Ok(out),
    }
}

/// Fetches every referenced parameter from SSM (decrypted) and substitutes it.
pub async fn resolve_ssm(text: &str, conf: &aws_config::SdkConfig) -> Result<String, String> {
    let names = references(text);
    if names.is_empty() {
        return Ok(text.to_string());
    }
    let client = aws_sdk_ssm::Client::new(conf);
    let mut values = BTreeMap::new();
    for name in names {
        values.insert(name.clone(), get_parameter(&client, &name).await?);
    }
    substitute(text, &values)
}

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
    fn comments_are_left_alone() {
        let t = "# url: ${ssm:/argus/old}\nurl: ${ssm:/argus/hook} # was ${ssm:/argus/older}\nq: 'a # ${ssm:/argus/q}'\n";
        assert_eq!(references(t), ["/argus/hook", "/argus/q"]);
        let mut v = BTreeMap::new();
        v.insert("/argus/hook".to_string(), "H".to_string());
        v.insert("/argus/q".to_string(), "Q".to_string());
        assert_eq!(
            substitute(t, &v).unwrap(),
            "# url: ${ssm:/argus/old}\nurl: H # was ${ssm:/argus/older}\nq: 'a # Q'\n"
        );
        assert!(substitute_env("# ${env:ARGUS_SURELY_UNSET_VAR}\nx: 1").is_ok());
    }
}
