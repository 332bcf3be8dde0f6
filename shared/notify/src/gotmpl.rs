//! Glue to `argus-template` (Go text/template with Alertmanager's data model and
//! functions), with Alertmanager's default templates (`default.tmpl`) preloaded.

use crate::payload::Message;
use argus_template::alertmanager::{self, AlertData};
use argus_template::{Template, Value};

/// Alertmanager 0.25's `template/default.tmpl`, as released (every integration's
/// default texts).
pub const DEFAULT_TMPL: &str = include_str!("default.tmpl");
/// Alertmanager 0.25's `template/email.tmpl` (`email.default.subject`,
/// `email.default.html`), as released.
pub const EMAIL_TMPL: &str = include_str!("email.tmpl");

/// The base template set: functions, default definitions, then the user's files.
pub fn base(files: &[(String, String)]) -> Result<Template, String> {
    // Alertmanager: `Option("missingkey=zero")`.
    let mut t = Template::new("base", alertmanager::funcs()).missing_key_zero(true);
    t.parse_as("__default", "default.tmpl", DEFAULT_TMPL)
        .map_err(|e| e.to_string())?;
    t.parse_as("__email", "email.tmpl", EMAIL_TMPL)
        .map_err(|e| e.to_string())?;
    t.parse_as("__default_b", "default.tmpl", crate::sink::DEFAULT_B_TMPL)
        .map_err(|e| e.to_string())?;
    for (name, text) in files {
        t.parse_as(&format!("__file:{name}"), name, text)
            .map_err(|e| e.to_string())?;
    }
    Ok(t)
}

/// Parses one template text (config check).
pub fn check(base: &Template, src: &str) -> Result<(), String> {
    let mut t = base.clone();
    t.parse_as("__check", "config", src)
        .map_err(|e| e.to_string())
}

/// `template.Data` of a notification.
pub fn data(m: &Message) -> Value {
    let alerts: Vec<Value> = m
        .alerts
        .iter()
        .map(|a| {
            let parse = |s: &str| {
                chrono::DateTime::parse_from_rfc3339(s)
                    .map(|t| t.timestamp_millis())
                    .ok()
            };
            alertmanager::alert(&AlertData {
                status: &a.status,
                labels: &a.labels,
                annotations: &a.annotations,
                starts_at: parse(&a.starts_at).unwrap_or(0),
                ends_at: if a.ends_at.starts_with("0001-") {
                    None
                } else {
                    parse(&a.ends_at)
                },
                generator_url: &a.generator_url,
                fingerprint: a.fingerprint.clone(),
            })
        })
        .collect();
    alertmanager::data(
        &m.receiver,
        &m.status,
        alerts,
        &m.group_labels,
        &m.common_labels,
        &m.common_annotations,
        &m.external_url,
    )
}

/// Renders `src` over the notification.
pub fn render(base: &Template, src: &str, m: &Message) -> Result<String, String> {
    let mut t = base.clone();
    t.parse_as("__text", "config", src)
        .map_err(|e| e.to_string())?;
    t.execute_template("__text", &data(m))
        .map_err(|e| e.to_string())
}

/// Renders `src` as Alertmanager's `TmplHTML` does (html/template, text context).
pub fn render_html(base: &Template, src: &str, m: &Message) -> Result<String, String> {
    let mut t = base.clone().html_text(true);
    t.parse_as("__text", "config", src)
        .map_err(|e| e.to_string())?;
    t.execute_template("__text", &data(m))
        .map_err(|e| e.to_string())
}
