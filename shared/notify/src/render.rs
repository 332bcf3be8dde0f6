//! Notification texts: Go templates from the configuration (Slack title/text, SNS
//! subject/message) rendered over Alertmanager's data, with Alertmanager's default
//! templates and the `templates:` files available to `{{ template "name" . }}`.

use crate::payload::Message;

/// Renders configured Go templates over the notification data.
#[derive(Debug, Clone)]
pub struct Renderer {
    base: argus_template::Template,
}

impl Default for Renderer {
    fn default() -> Self {
        Renderer::new(&[]).expect("the built-in default templates parse")
    }
}

impl Renderer {
    /// `files`: (name, contents) of the `templates:` files.
    pub fn new(files: &[(String, String)]) -> Result<Self, String> {
        Ok(Renderer {
            base: crate::gotmpl::base(files)?,
        })
    }

    /// Renders one template text. Plain text without actions is returned as is.
    pub fn render(&self, src: &str, msg: &Message) -> Result<String, String> {
        if !src.contains("{{") {
            return Ok(src.to_string());
        }
        crate::gotmpl::render(&self.base, src, msg)
    }

    /// Renders as Alertmanager's `TmplHTML` (html/template): action output escaped.
    pub fn render_html(&self, src: &str, msg: &Message) -> Result<String, String> {
        if !src.contains("{{") {
            return Ok(src.to_string());
        }
        crate::gotmpl::render_html(&self.base, src, msg)
    }

    /// Whether a template text parses (for `argus config check`).
    pub fn check(&self, src: &str) -> Result<(), String> {
        crate::gotmpl::check(&self.base, src)
    }
}

/// Alertmanager's `__subject`: `[FIRING:2] SiteDown (prod web)`.
pub fn default_subject(m: &Message) -> String {
    let mut s = format!("[{}", m.status.to_uppercase());
    if m.status == "firing" {
        s.push_str(&format!(":{}", m.firing().count()));
    }
    s.push_str("] ");
    s.push_str(
        &m.group_labels
            .iter()
            .map(|(_, v)| v)
            .collect::<Vec<_>>()
            .join(" "),
    );
    s.push(' ');
    if m.common_labels.len() > m.group_labels.len() {
        let extra: Vec<&str> = m
            .common_labels
            .iter()
            .filter(|(k, _)| m.group_labels.get(k).is_none())
            .map(|(_, v)| v)
            .collect();
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
            if let Some(sum) = a
                .annotations
                .get("summary")
                .or(a.annotations.get("description"))
            {
                s.push_str(&format!(": {sum}"));
            }
        }
    }
    if m.truncated_alerts > 0 {
        s.push_str(&format!(
            "\n\n({} more alerts not shown)",
            m.truncated_alerts
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::StoredAlert;
    use argus_model::Labels;

    fn a(i: &str) -> StoredAlert {
        StoredAlert {
            labels: Labels::from_pairs([
                ("alertname", "SiteDown"),
                ("instance", i),
                ("job", "web"),
            ]),
            annotations: Labels::from_pairs([("summary", "down")]),
            starts_at: 0,
            ends_at: 100,
            generator_url: String::new(),
            updated_at: 0,
            timeout: false,
        }
    }

    #[test]
    fn subject_like_alertmanager() {
        let gl = Labels::from_pairs([("alertname", "SiteDown")]);
        let m = Message::build("r", "k", &gl, &[a("x"), a("y")], "", 0, 50);
        assert_eq!(default_subject(&m), "[FIRING:2] SiteDown (web)");
        let m = Message::build("r", "k", &gl, &[a("x")], "", 0, 150);
        assert_eq!(default_subject(&m), "[RESOLVED] SiteDown (x web)");
        assert!(
            default_text(&m).contains("Resolved:\n- alertname=SiteDown instance=x job=web: down")
        );
        let m = Message::build("r", "k", &Labels::new(), &[a("x"), a("y")], "", 0, 50);
        assert_eq!(default_subject(&m), "[FIRING:2]  (SiteDown web)");
    }

    /// The Go template `__subject` and the Rust default agree.
    #[test]
    fn templates_render_alertmanager_data() {
        let r = Renderer::default();
        let gl = Labels::from_pairs([("alertname", "SiteDown")]);
        for (alerts, now) in [(vec![a("x"), a("y")], 50), (vec![a("x")], 150)] {
            let m = Message::build("team-x", "k", &gl, &alerts, "http://am", 0, now);
            assert_eq!(
                r.render(r#"{{ template "slack.default.title" . }}"#, &m)
                    .unwrap(),
                default_subject(&m)
            );
        }
        let m = Message::build("team x", "k", &gl, &[a("x"), a("y")], "http://am", 0, 50);
        let t = r#"{{ range .Alerts.Firing }}{{ .Labels.instance }}:{{ .Annotations.summary }} {{ end }}|{{ .CommonLabels.SortedPairs }}|{{ template "slack.default.titlelink" . }}"#;
        let out = r.render(t, &m).unwrap();
        assert!(out.starts_with("x:down y:down |"), "{out}");
        assert!(
            out.ends_with("|http://am/#/alerts?receiver=team+x"),
            "{out}"
        );
        let msg = r
            .render(r#"{{ template "sns.default.message" . }}"#, &m)
            .unwrap();
        assert!(
            // Alertmanager 0.25's default.tmpl, as released: a blank line after the
            // annotations.
            msg.starts_with("down\n\nAlerts Firing:\nLabels:\n - alertname = SiteDown\n"),
            "{msg}"
        );
        assert!(r.render("{{ .Nope", &m).is_err());
        assert!(r.check("{{ if }}").is_err());
        assert_eq!(r.render("plain", &m).unwrap(), "plain");
    }
}
