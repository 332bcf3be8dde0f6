//! Notification texts: Go templates from the configuration (Slack title/text, SNS
//! subject/message) rendered over Alertmanager's data, and the default texts.

use crate::payload::Message;

/// Renders configured Go templates over the notification data.
#[derive(Debug, Default)]
pub struct Renderer {
    /// Contents of the `templates:` files (definitions usable with `{{ template "x" . }}`).
    pub definitions: Vec<String>,
}

impl Renderer {
    pub fn new(definitions: Vec<String>) -> Self {
        Renderer { definitions }
    }

    /// Renders one template text. Plain text without actions is returned as is.
    pub fn render(&self, src: &str, msg: &Message) -> Result<String, String> {
        if !src.contains("{{") {
            return Ok(src.to_string());
        }
        crate::gotmpl::render(&self.definitions, src, msg)
    }
}

/// Alertmanager's `__subject`: `[FIRING:2] SiteDown (prod web)`.
pub fn default_subject(m: &Message) -> String {
    let mut s = format!("[{}", m.status.to_uppercase());
    if m.status == "firing" {
        s.push_str(&format!(":{}", m.firing().count()));
    }
    s.push_str("] ");
    s.push_str(&m.group_labels.iter().map(|(_, v)| v).collect::<Vec<_>>().join(" "));
    s.push(' ');
    if m.common_labels.len() > m.group_labels.len() {
        let extra: Vec<&str> =
            m.common_labels.iter().filter(|(k, _)| m.group_labels.get(k).is_none()).map(|(_, v)| v).collect();
        s.push_str(&format!("({})", extra.join(" ")));
    }
    s
}

/// A short plain-text body (email/SMS): the subject, then one line per alert.
pub fn default_text(m: &Message) -> String {
    let mut s = default_subject(m).trim_end().to_string();
    for (title, status) in [("Firing", "firing"), ("Resolved", "resolved")] {
        let list: Vec<_> = m.alerts.iter().filter(|a| a.status == status).collect();
        if list.is_empty() {
            continue;
        }
        s.push_str(&format!("\n\n{title}:"));
        for a in list {
            let labels: Vec<String> = a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            s.push_str(&format!("\n- {}", labels.join(" ")));
            if let Some(sum) = a.annotations.get("summary").or(a.annotations.get("description")) {
                s.push_str(&format!(": {sum}"));
            }
        }
    }
    if m.truncated_alerts > 0 {
        s.push_str(&format!("\n\n({} more alerts not shown)", m.truncated_alerts));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::StoredAlert;
    use argus_model::Labels;

    #[test]
    fn subject_like_alertmanager() {
        let a = |i: &str| StoredAlert {
            labels: Labels::from_pairs([("alertname", "SiteDown"), ("instance", i), ("job", "web")]),
            annotations: Labels::from_pairs([("summary", "down")]),
            starts_at: 0,
            ends_at: 100,
            generator_url: String::new(),
            updated_at: 0,
            timeout: false,
        };
        let gl = Labels::from_pairs([("alertname", "SiteDown")]);
        let m = Message::build("r", "k", &gl, &[a("x"), a("y")], "", 0, 50);
        assert_eq!(default_subject(&m), "[FIRING:2] SiteDown (web)");
        let m = Message::build("r", "k", &gl, &[a("x")], "", 0, 150);
        assert_eq!(default_subject(&m), "[RESOLVED] SiteDown (x web)");
        assert!(default_text(&m).contains("Resolved:\n- alertname=SiteDown instance=x job=web: down"));
        let m = Message::build("r", "k", &Labels::new(), &[a("x"), a("y")], "", 0, 50);
        assert_eq!(default_subject(&m), "[FIRING:2]  (SiteDown web)");
    }
}
