//! Alertmanager's own default templates (Debian's default.tmpl) rendered by the real
//! `amtool template render` (its built-in example data) and by this engine with the same
//! data: the output must be byte-identical for every definition.

use argus_template::{alertmanager, Template, Value};
use std::process::Command;

fn kv(pairs: &[(&str, &str)]) -> Value {
    Value::kv(pairs.iter().copied())
}

/// amtool's example data (cli/template_render.go), minus the times (they are `now`-relative).
fn example_data() -> Value {
    let alert = |labels: Value, annotations: Value, fp: &str| {
        Value::object(
            "template.Alert",
            vec![
                ("Status", Value::str("alertstatus")),
                ("Labels", labels),
                ("Annotations", annotations),
                ("StartsAt", Value::Time(0)),
                ("EndsAt", Value::Time(0)),
                ("GeneratorURL", Value::str("https://generatorurl.com")),
                ("Fingerprint", Value::str(fp)),
            ],
        )
    };
    let a1 = alert(
        kv(&[
            ("commonlabelkey1", "commonlabelvalue1"),
            ("commonlabelkey2", "commonlabelvalue2"),
            ("instance", "foo.bar:1234"),
            ("label1", "value1"),
            ("label2", "value2"),
        ]),
        kv(&[
            ("annotation1", "value1"),
            ("annotation2", "value2"),
            ("commonannotationkey1", "commonannotationvalue1"),
            ("commonannotationkey2", "commonannotationvalue2"),
        ]),
        "fingerprint1",
    );
    let a2 = alert(
        kv(&[
            ("baz", "qux"),
            ("commonlabelkey1", "commonlabelvalue1"),
            ("commonlabelkey2", "commonlabelvalue2"),
            ("foo", "bar"),
        ]),
        kv(&[
            ("aaa", "bbb"),
            ("ccc", "ddd"),
            ("commonannotationkey1", "commonannotationvalue1"),
            ("commonannotationkey2", "commonannotationvalue2"),
        ]),
        "fingerprint2",
    );
    Value::object(
        "*template.Data",
        vec![
            ("Receiver", Value::str("receiver")),
            ("Status", Value::str("alertstatus")),
            ("Alerts", Value::list(vec![a1, a2])),
            (
                "GroupLabels",
                kv(&[
                    ("grouplabelkey1", "grouplabelvalue1"),
                    ("grouplabelkey2", "grouplabelvalue2"),
                ]),
            ),
            (
                "CommonLabels",
                kv(&[
                    ("commonlabelkey1", "commonlabelvalue1"),
                    ("commonlabelkey2", "commonlabelvalue2"),
                ]),
            ),
            (
                "CommonAnnotations",
                kv(&[
                    ("commonannotationkey1", "commonannotationvalue1"),
                    ("commonannotationkey2", "commonannotationvalue2"),
                ]),
            ),
            ("ExternalURL", Value::str("https://example.com")),
        ],
    )
}

const EXTRA: &str = r#"
{{ define "argus.list" }}{{ template "__text_alert_list" .Alerts }}{{ template "pagerduty.default.instances" .Alerts }}{{ end }}
{{ define "argus.test" }}{{ .Status | title }} {{ len .Alerts }} {{ .Alerts.Firing | len }}/{{ .Alerts.Resolved | len }}
{{ range $i, $a := .Alerts }}{{ $i }}: {{ $a.Labels.SortedPairs.Names | join "," }} {{ $a.Annotations.Values | join "," }} {{ $a.Labels.instance }}|{{ $a.Labels.nope }}|
{{ end }}{{ with .CommonLabels.Remove (stringSlice "commonlabelkey1") }}{{ .Names }}{{ end }} {{ reReplaceAll "(grouplabel)key" "${1}K" (.GroupLabels.Names | join " ") }}
{{ if match "^https://" .ExternalURL }}secure{{ end }} {{ printf "%-10s|%5.2f|%x" .Receiver 3.14159 255 }} {{ .GroupLabels.SortedPairs }}
{{- range .Alerts }}{{ if eq .Labels.foo "bar" }} foo={{ .Labels.foo | toUpper }}{{ end }}{{ end }}
{{ safeHtml "<b>" }} {{ html "<b>" }} {{ urlquery "a b" }} {{ js "x'y" }} {{ index .CommonLabels "commonlabelkey2" }} {{ toLower "ABC" }}
{{ end }}"#;

#[test]
fn default_templates_render_like_amtool() {
    let default = std::fs::read_to_string("/usr/share/prometheus/alertmanager/default.tmpl")
        .expect("default.tmpl");
    let dir = std::env::temp_dir().join(format!("argus-amtool-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let extra_path = dir.join("extra.tmpl");
    std::fs::write(&extra_path, EXTRA).unwrap();
    std::fs::write(dir.join("default.tmpl"), &default).unwrap();

    let mut names: Vec<String> = default
        .split("define \"")
        .skip(1)
        .filter_map(|s| s.split('"').next().map(str::to_string))
        // Takes a list of alerts (it is called with `.Alerts.Firing`); covered through
        // the definitions that call it.
        .filter(|n| n != "__text_alert_list" && n != "pagerduty.default.instances")
        .collect();
    names.push("argus.test".into());
    names.push("argus.list".into());
    assert!(names.len() > 30);
    let text: String = names
        .iter()
        .map(|n| format!("=====[{n}]=====\n{{{{ template \"{n}\" . }}}}\n"))
        .collect();

    let out = Command::new(argus_testkit::tool("amtool"))
        .args(["template", "render"])
        .arg(format!("--template.glob={}/*.tmpl", dir.display()))
        .arg(format!("--template.text={text}"))
        .output()
        .expect("amtool");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "amtool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = String::from_utf8(out.stdout).unwrap();

    // Alertmanager, like Prometheus, parses with missingkey=zero.
    let mut t = Template::new("main", alertmanager::funcs()).missing_key_zero(true);
    t.parse_as("default.tmpl", "default.tmpl", &default)
        .unwrap();
    t.parse_as("extra.tmpl", "extra.tmpl", EXTRA).unwrap();
    t.parse_as("main", "main", &text).unwrap();
    let ours = t.execute(&example_data()).unwrap();

    let split = |s: &str| -> Vec<(String, String)> {
        s.split("=====[")
            .skip(1)
            .map(|p| {
                let (name, body) = p.split_once("]=====\n").unwrap();
                (name.to_string(), body.trim_end_matches('\n').to_string())
            })
            .collect()
    };
    let (a, b) = (split(&theirs), split(&ours));
    assert_eq!(a.len(), names.len());
    let mut differ = Vec::new();
    for ((n, x), (_, y)) in a.iter().zip(&b) {
        if x != y {
            differ.push(format!("{n}:\n--- amtool\n{x}\n--- argus\n{y}"));
        }
    }
    assert!(
        differ.is_empty(),
        "{} of {} definitions differ:\n{}",
        differ.len(),
        names.len(),
        differ.join("\n")
    );
}
