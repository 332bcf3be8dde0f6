//! Unit tests of the engine against outputs of Go's text/template.

use super::*;
use crate::prometheus::{self, PromContext};

fn run(text: &str, data: &Value) -> Result<String, Error> {
    let ctx = PromContext {
        query: None,
        external_url: "http://prom:9090/p".into(),
    };
    let mut t = Template::new("t", prometheus::funcs(ctx)).missing_key_zero(true);
    t.parse(text)?;
    t.execute(data)
}

fn ok(text: &str, data: &Value) -> String {
    run(text, data).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn labels() -> Value {
    prometheus::alert_data(
        &[("instance", "web-1.example.com:9100"), ("job", "node")],
        &[("env", "prod")],
        "http://prom:9090/p",
        0.12345,
    )
}

#[test]
fn actions_and_pipelines() {
    let d = labels();
    assert_eq!(ok("{{ .Labels.job }}", &d), "node");
    assert_eq!(ok("{{ .Labels.missing }}|", &d), "|");
    assert_eq!(ok("{{ $x := 3 }}{{ $x }}{{ $x = 4 }}{{ $x }}", &d), "34");
    assert_eq!(
        ok(
            "{{ if eq .Labels.job \"node\" }}yes{{ else }}no{{ end }}",
            &d
        ),
        "yes"
    );
    assert_eq!(ok("{{ if eq .Labels.job \"x\" }}a{{ else if eq .Labels.job \"node\" }}b{{ else }}c{{ end }}", &d), "b");
    assert_eq!(ok("{{ with .Labels.job }}<{{ . }}>{{ end }}{{ with .Labels.none }}x{{ else }}empty{{ end }}", &d), "<node>empty");
    assert_eq!(
        ok(
            "{{ range $k, $v := .Labels }}{{ $k }}={{ $v }};{{ end }}",
            &d
        ),
        "instance=web-1.example.com:9100;job=node;"
    );
    assert_eq!(
        ok("{{ range .Labels }}{{ . }} {{ end }}", &d),
        "web-1.example.com:9100 node "
    );
    assert_eq!(ok("{{ range $i, $e := args 1 2 3 }}{{ if eq $i \"arg1\" }}{{ continue }}{{ end }}{{ $e }}{{ end }}", &d), "13");
    assert_eq!(ok("{{ range .Labels }}{{ break }}{{ end }}x", &d), "x");
    assert_eq!(
        ok("{{- \"a\" -}}  \n  {{- \"b\" }} {{/* c */}} d", &d),
        "ab  d"
    );
    assert_eq!(ok("{{ \"abc\" | printf \"%s-%s\" \"x\" }}", &d), "x-abc");
    assert_eq!(ok("{{ len .Labels }} {{ index .Labels \"job\" }} {{ not true }} {{ and 1 0 }} {{ or 0 \"\" 5 }}", &d), "2 node false 0 5");
    assert_eq!(
        ok(
            "{{ define \"x\" }}[{{ . }}]{{ end }}{{ template \"x\" .Labels.job }}",
            &d
        ),
        "[node]"
    );
    assert_eq!(ok("{{ block \"b\" 1 }}({{ . }}){{ end }}", &d), "(1)");
    assert_eq!(
        ok("{{ print 1 2 \"a\" 3 }}|{{ println 1 \"a\" }}", &d),
        "1 2a3|1 a\n"
    );
    assert_eq!(
        ok(
            "{{ html \"<a href='x'>\" }} {{ js \"a'b\" }} {{ urlquery \"a b&c\" }}",
            &d
        ),
        "&lt;a href=&#39;x&#39;&gt; a\\'b a+b%26c"
    );
    assert_eq!(
        ok(
            "{{ (index (args 1 2) \"arg1\") }} {{ lt 1 2 }} {{ ge 2.5 2.5 }} {{ ne \"a\" \"b\" }}",
            &d
        ),
        "2 true true true"
    );
    assert_eq!(
        ok(
            "{{ .Value }} {{ .Missing }}",
            &Value::map([("Value", Value::Float(1e6))])
        ),
        "1e+06 <no value>"
    );
}

#[test]
fn errors_like_go() {
    let d = labels();
    let e = run("{{ nosuch 1 }}", &d).unwrap_err().to_string();
    assert_eq!(e, "template: t:1: function \"nosuch\" not defined");
    let e = run("{{ $x }}", &d).unwrap_err().to_string();
    assert_eq!(e, "template: t:1: undefined variable \"$x\"");
    let e = run("{{ if 1 }}", &d).unwrap_err().to_string();
    assert_eq!(e, "template: t:1: unexpected EOF");
    let e = run("ab\n{{ query \"up\" | first }}", &d)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "template: t:2:3: executing \"t\" at <query \"up\">: error calling query: query is not available here");
    let e = run("{{ gt .Value 1 }}", &d).unwrap_err().to_string();
    assert_eq!(e, "template: t:1:3: executing \"t\" at <gt .Value 1>: error calling gt: incompatible types for comparison");
    let e = run("{{ .Labels.job.x }}", &d).unwrap_err().to_string();
    assert!(e.contains("can't evaluate field x in type string"), "{e}");
    assert!(run("{{ end }}", &d)
        .unwrap_err()
        .to_string()
        .contains("unexpected {{end}}"));
    assert!(run("{{ .Foo }", &d).is_err());
}

#[test]
fn prometheus_functions() {
    let d = labels();
    assert_eq!(
        ok(
            "{{ humanize 1234567 }} {{ humanize 0.000123 }} {{ humanize 0 }} {{ humanize 999.99 }}",
            &d
        ),
        "1.235M 123u 0 1000"
    );
    assert_eq!(
        ok(
            "{{ humanize1024 1048576 }} {{ humanize1024 0.5 }} {{ humanize1024 2048.5 }}",
            &d
        ),
        "1Mi 0.5 2ki"
    );
    assert_eq!(ok("{{ humanizeDuration 90061 }} {{ humanizeDuration 3661.5 }} {{ humanizeDuration 61 }} {{ humanizeDuration 1.5 }} {{ humanizeDuration 0.002 }} {{ humanizeDuration 0 }}", &d), "1d 1h 1m 1s 1h 1m 1s 1m 1s 1.5s 2ms 0s");
    assert_eq!(
        ok(
            "{{ humanizePercentage 0.12345 }} {{ humanizeTimestamp 1435065584.128 }}",
            &d
        ),
        "12.35% 2015-06-23 13:19:44.128 +0000 UTC"
    );
    assert_eq!(ok("{{ humanize \"2048\" }}", &d), "2.048k");
    assert_eq!(ok("{{ .Labels.instance | stripPort }} {{ .Labels.instance | stripDomain }} {{ stripPort \"[::1]:80\" }} {{ stripDomain \"10.0.0.1:80\" }}", &d), "web-1.example.com web-1:9100 ::1 10.0.0.1:80");
    assert_eq!(
        ok(
            "{{ toUpper \"ab\" }} {{ toLower \"AB\" }} {{ title \"hello wide-world\" }}",
            &d
        ),
        "AB ab Hello Wide-World"
    );
    assert_eq!(ok("{{ reReplaceAll \"(.*):.*\" \"$1\" .Labels.instance }} {{ match \"^web\" .Labels.instance }}", &d), "web-1.example.com true");
    assert_eq!(
        ok("{{ printf \"%.2f %v %s\" .Value .Value .Labels.job }}", &d),
        "0.12 0.12345 node"
    );
    assert_eq!(
        ok(
            "{{ externalURL }} {{ pathPrefix }} {{ graphLink \"up == 0\" }}",
            &d
        ),
        "http://prom:9090/p /p /graph?g0.expr=up+%3D%3D+0&g0.tab=0"
    );
    assert_eq!(
        ok(
            "{{ .ExternalLabels.env }} {{ parseDuration \"1m30s\" }} {{ (toTime 60).Unix }}",
            &d
        ),
        "prod 90 60"
    );
}

#[test]
fn query_functions() {
    let q: prometheus::QueryFn = std::sync::Arc::new(|e: &str| {
        if e == "up" {
            Ok(vec![
                (
                    argus_model::Labels::from_pairs([("instance", "b"), ("job", "x")]),
                    1.0,
                ),
                (
                    argus_model::Labels::from_pairs([("instance", "a"), ("job", "x")]),
                    0.0,
                ),
            ])
        } else {
            Ok(vec![])
        }
    });
    let mut t = Template::new(
        "q",
        prometheus::funcs(PromContext {
            query: Some(q),
            external_url: String::new(),
        }),
    );
    t.parse("{{ with query \"up\" }}{{ . | first | value }} {{ (. | first).Labels.instance }}{{ end }}|{{ range sortByLabel \"instance\" (query \"up\") }}{{ label \"instance\" . }}={{ .Value }} {{ end }}|{{ with query \"none\" }}x{{ else }}none{{ end }}").unwrap();
    assert_eq!(t.execute(&Value::Nil).unwrap(), "1 b|a=0 b=1 |none");
    let out = prometheus::expand_alert_text(
        "A",
        "{{ query \"none\" | first | value }}",
        &labels(),
        &t.funcs,
    );
    assert!(
        out.starts_with(
            "<error expanding template: error executing template __alert_A: template: __alert_A:1:"
        ),
        "{out}"
    );
    assert!(
        out.ends_with("error calling first: first() called on vector with no elements>"),
        "{out}"
    );
}

#[test]
fn alertmanager_data() {
    let l1 = argus_model::Labels::from_pairs([
        ("alertname", "Down"),
        ("instance", "a"),
        ("severity", "page"),
    ]);
    let l2 = argus_model::Labels::from_pairs([
        ("alertname", "Down"),
        ("instance", "b"),
        ("severity", "page"),
    ]);
    let none = argus_model::Labels::new();
    let mk = |l: &argus_model::Labels, status: &'static str| {
        alertmanager::alert(&alertmanager::AlertData {
            status,
            labels: l,
            annotations: &none,
            starts_at: 0,
            ends_at: None,
            generator_url: "",
            fingerprint: l.fingerprint_hex(),
        })
    };
    let common = argus_model::Labels::from_pairs([("alertname", "Down"), ("severity", "page")]);
    let d = alertmanager::data(
        "team",
        "firing",
        vec![mk(&l1, "firing"), mk(&l2, "resolved")],
        &common,
        &common,
        &none,
        "http://am",
    );
    let mut t = Template::new("am", alertmanager::funcs()).missing_key_zero(true);
    t.parse(concat!(
        "{{ define \"__subject\" }}[{{ .Status | toUpper }}{{ if eq .Status \"firing\" }}:{{ .Alerts.Firing | len }}{{ end }}] ",
        "{{ .GroupLabels.SortedPairs.Values | join \" \" }} {{ if gt (len .CommonLabels) (len .GroupLabels) }}",
        "({{ with .CommonLabels.Remove .GroupLabels.Names }}{{ .Values | join \" \" }}{{ end }}){{ end }}{{ end }}",
        "{{ template \"__subject\" . }}|{{ range .Alerts.Resolved }}{{ .Labels.instance }}{{ end }}|",
        "{{ range .CommonLabels.SortedPairs }}{{ .Name }}={{ .Value }},{{ end }}|{{ .CommonLabels.nope }}|",
        "{{ join \",\" (stringSlice \"a\" \"b\") }}|{{ (index .Alerts 0).EndsAt }}"
    ))
    .unwrap();
    assert_eq!(
        t.execute(&d).unwrap(),
        "[FIRING:1] Down page |b|alertname=Down,severity=page,||a,b|0001-01-01 00:00:00 +0000 UTC"
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("{{".to_string()),
            Just("}}".to_string()),
            Just("{{- ".to_string()),
            Just(" -}}".to_string()),
            Just("{{ end }}".to_string()),
            Just("{{ else }}".to_string()),
            Just("{{ if .Value }}".to_string()),
            Just("{{ range $k, $v := .Labels }}".to_string()),
            Just("{{ with .Labels.job }}".to_string()),
            Just("{{ break }}".to_string()),
            Just("{{ $x := 1 }}".to_string()),
            Just("{{ $x }}".to_string()),
            Just("{{ printf \"%5.2f|%d|%s|%v\" .Value 3 \"a\" }}".to_string()),
            Just("{{ humanize .Value }}".to_string()),
            Just("{{ index .Labels \"job\" }}".to_string()),
            Just("{{ template \"t\" . }}".to_string()),
            Just("{{ define \"t\" }}x{{ end }}".to_string()),
            Just("(".to_string()),
            Just(")".to_string()),
            Just("|".to_string()),
            Just("\"".to_string()),
            Just("`".to_string()),
            Just("/*".to_string()),
            "[ -~]{0,8}",
        ]
    }

    proptest! {
        #[test]
        fn never_panics(parts in proptest::collection::vec(fragment(), 0..12)) {
            let text: String = parts.concat();
            let _ = run(&text, &labels());
        }

        #[test]
        fn sprintf_never_panics(f in "[ -~]{0,16}", x in proptest::num::f64::ANY, i in any::<i64>()) {
            let _ = gofmt::sprintf(&f, &[Value::Float(x), Value::Int(i), Value::str("s")]);
        }

        #[test]
        fn shortest_float_round_trips(x in proptest::num::f64::NORMAL) {
            let s = gofmt::format_float_v(x);
            prop_assert_eq!(s.parse::<f64>().unwrap(), x);
        }
    }
}

#[test]
fn recursion_is_bounded() {
    let e = run(
        "{{ define \"t\" }}{{ template \"t\" . }}{{ end }}{{ template \"t\" . }}",
        &labels(),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("exceeded maximum template depth"),
        "{e}"
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("{{{{ {}1{} }}}}", "(".repeat(5000), ")".repeat(5000));
    assert!(run(&deep, &labels())
        .unwrap_err()
        .to_string()
        .contains("nested too deeply"));
    let ifs = format!("{}x{}", "{{ if 1 }}".repeat(5000), "{{ end }}".repeat(5000));
    assert!(run(&ifs, &labels())
        .unwrap_err()
        .to_string()
        .contains("nested too deeply"));
    let ok = format!("{}x{}", "{{ if 1 }}".repeat(50), "{{ end }}".repeat(50));
    assert_eq!(run(&ok, &labels()).unwrap(), "x");
}

/// Go's html/template in text context (Alertmanager's `TmplHTML`): action output is
/// escaped (`+` too), literal text and nested templates' text are not.
#[test]
fn html_text_mode_escapes_action_output() {
    let mut t = Template::new("t", FuncMap::new()).html_text(true);
    t.parse(r#"{{ define "x" }}<b>{{ . }}</b>{{ end }}<i>{{ "a&b<c>'d\"+e" }}</i> {{ template "x" "1+1" }}"#)
        .unwrap();
    assert_eq!(
        t.execute(&Value::Nil).unwrap(),
        "<i>a&amp;b&lt;c&gt;&#39;d&#34;&#43;e</i> <b>1&#43;1</b>"
    );
    // A literal '<' that opens no tag is escaped too (Alertmanager 0.25's Pushover
    // with html: true renders `<{{ .x }}> 1 < 2` as `&lt;x> 1 &lt; 2`).
    let mut t = Template::new("t", FuncMap::new()).html_text(true);
    t.parse(r#"<{{ "x" }}> 1 < 2 <br/>"#).unwrap();
    assert_eq!(t.execute(&Value::Nil).unwrap(), "&lt;x> 1 &lt; 2 <br/>");
}
