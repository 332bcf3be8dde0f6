//! Table tests: each case is YAML as a user writes it, an input label set and the
//! expected output (or a drop). Expected values were worked out from Prometheus
//! v2.42.0's `model/relabel/relabel.go`; the hashmod values are Go's (the same two
//! appear in Prometheus's own tests) and were recomputed with Python's hashlib.

use super::*;

fn ls(s: &str) -> Labels {
    Labels::from_pairs(s.split(',').filter(|p| !p.is_empty()).map(|p| {
        let (k, v) = p.split_once('=').expect("k=v");
        (k.to_string(), v.to_string())
    }))
}

fn steps(yaml: &str) -> Vec<Relabel> {
    let cfgs: Vec<RelabelConfig> = serde_saphyr::from_str(yaml).expect("yaml");
    compile_all("relabel_configs", &cfgs).expect("valid")
}

fn check(yaml: &str, input: &str, want: Option<&str>) {
    let got = process(&ls(input), &steps(yaml));
    assert_eq!(got, want.map(ls), "rules:\n{yaml}\ninput: {input}");
}

#[test]
fn replace_defaults_and_templates() {
    // Defaults: regex (.*), replacement $1, separator ';'.
    check(
        "- {source_labels: [a, b], target_label: c}",
        "a=x,b=y",
        Some("a=x,b=y,c=x;y"),
    );
    // Missing source labels join as empty strings.
    check(
        "- {source_labels: [a, z], target_label: c}",
        "a=x",
        Some("a=x,c=x;"),
    );
    // Fully anchored: `o` does not match `foo`.
    check(
        "- {source_labels: [a], regex: o, target_label: b, replacement: hit}",
        "a=foo",
        Some("a=foo"),
    );
    check(
        "- {source_labels: [a], regex: 'f(o+)', target_label: b, replacement: 'x${1}y'}",
        "a=foo",
        Some("a=foo,b=xooy"),
    );
    // `$1y` is the group named `1y` (Go's longest-name rule): empty, so the label is deleted.
    check(
        "- {source_labels: [a], regex: 'f(o+)', target_label: a, replacement: '$1y'}",
        "a=foo",
        Some(""),
    );
    // Templated target label.
    check(
        "- {source_labels: [a], regex: '(.+)=(.+)', target_label: 'l_$1', replacement: '$2'}",
        "a=k=v",
        Some("a=k=v,l_k=v"),
    );
    // Expanded target invalid: the *unexpanded* target label is deleted (2.42).
    check(
        "- {source_labels: [a], regex: '(.*)', target_label: '${1}', replacement: v}",
        "a=1bad,${1}=zz",
        Some("a=1bad"),
    );
    check(
        "- {source_labels: [a], regex: '(.*)', target_label: '$1', replacement: v}",
        "a=9",
        Some("a=9"),
    );
    // A fixed replacement with no source labels sets a constant.
    check(
        "- {target_label: env, replacement: prod}",
        "a=1",
        Some("a=1,env=prod"),
    );
    // Empty result deletes.
    check(
        "- {source_labels: [nope], target_label: a}",
        "a=1",
        Some(""),
    );
    // Custom separator; `$$` is a literal dollar.
    check(
        "- {source_labels: [a, b], separator: '-', target_label: c, replacement: '$$$1'}",
        "a=1,b=2",
        Some("a=1,b=2,c=$1-2"),
    );
}

#[test]
fn keep_drop_and_equal() {
    let rules = "- {source_labels: [__name__], regex: 'probe_.*', action: drop}";
    check(rules, "__name__=probe_success", None);
    check(rules, "__name__=up", Some("__name__=up"));
    let rules = "- {source_labels: [__name__, job], regex: 'up;probe', action: keep}";
    check(
        rules,
        "__name__=up,job=probe",
        Some("__name__=up,job=probe"),
    );
    check(rules, "__name__=up,job=other", None);
    // Action names are case-insensitive.
    check(
        "- {source_labels: [a], regex: x, action: DROP}",
        "a=x",
        None,
    );
    let rules = "- {source_labels: [a], target_label: b, action: keepequal}";
    check(rules, "a=1,b=1", Some("a=1,b=1"));
    check(rules, "a=1,b=2", None);
    // Both absent: "" == "" keeps.
    check(rules, "c=1", Some("c=1"));
    let rules = "- {source_labels: [a], target_label: b, action: dropequal}";
    check(rules, "a=1,b=1", None);
    check(rules, "a=1,b=2", Some("a=1,b=2"));
}

#[test]
fn hashmod_matches_go() {
    check(
        "- {source_labels: [c], target_label: d, action: hashmod, modulus: 1000}",
        "a=foo,b=bar,c=baz",
        Some("a=foo,b=bar,c=baz,d=976"),
    );
    check(
        "- {source_labels: [a], target_label: b, action: hashmod, modulus: 1000}",
        "a=foo\nbar",
        Some("a=foo\nbar,b=734"),
    );
    assert_eq!(hashmod("https://a.example;probe", 8), 1);
    assert_eq!(hashmod("", 7), 1);
    assert_eq!(hashmod("x", 1 << 63), 8487128391145514918);
}

#[test]
fn label_actions_and_case() {
    check(
        "- {regex: '__meta_(.+)', action: labelmap}",
        "__meta_zone=a,__meta_rack=b,x=1",
        Some("__meta_zone=a,__meta_rack=b,x=1,zone=a,rack=b"),
    );
    check(
        "- {regex: '(b.*)', replacement: 'new_$1', action: labelmap}",
        "a=1,b1=2,b2=3",
        Some("a=1,b1=2,b2=3,new_b1=2,new_b2=3"),
    );
    check(
        "- {regex: 'b.*', action: labeldrop}",
        "a=1,b1=2,b2=3",
        Some("a=1"),
    );
    check(
        "- {regex: 'b.*|__name__', action: labelkeep}",
        "__name__=m,a=1,b1=2",
        Some("__name__=m,b1=2"),
    );
    check(
        "- {source_labels: [a, b], target_label: l, action: lowercase}",
        "a=AbC,b=ÄÖ",
        Some("a=AbC,b=ÄÖ,l=abc;äö"),
    );
    check(
        "- {source_labels: [a], target_label: a, action: uppercase}",
        "a=abc",
        Some("a=ABC"),
    );
}

#[test]
fn steps_see_previous_output() {
    check(
        "- {source_labels: [a], target_label: b}\n- {source_labels: [b], regex: x, action: drop}",
        "a=x",
        None,
    );
    check(
        "- {source_labels: [a], target_label: b}\n- {regex: a, action: labeldrop}",
        "a=x",
        Some("b=x"),
    );
}

fn compile_err(yaml: &str) -> String {
    match serde_saphyr::from_str::<Vec<RelabelConfig>>(yaml) {
        Err(e) => e.to_string(),
        Ok(cfgs) => compile_all("write_relabel_configs", &cfgs)
            .expect_err("must be rejected")
            .to_string(),
    }
}

#[test]
fn validation_messages() {
    let cases = [
        (
            "- {action: hashmod, target_label: a}",
            "requires non-zero modulus",
        ),
        ("- {action: replace}", "requires 'target_label' value"),
        (
            "- {action: lowercase, source_labels: [a]}",
            "requires 'target_label'",
        ),
        (
            "- {target_label: '1a'}",
            "\"1a\" is invalid 'target_label' for replace",
        ),
        (
            "- {target_label: 'a-$1'}",
            "is invalid 'target_label' for replace",
        ),
        (
            "- {action: uppercase, target_label: b, replacement: x}",
            "'replacement' can not be set for uppercase",
        ),
        (
            "- {action: labelmap, replacement: '1$'}",
            "invalid 'replacement' for labelmap",
        ),
        (
            "- {action: keepequal, target_label: b, regex: '(.*)'}",
            "keepequal action requires only 'source_labels'",
        ),
        (
            "- {action: labeldrop, regex: a, source_labels: [x]}",
            "labeldrop action requires only 'regex'",
        ),
        ("- {action: explode}", "unknown relabel action \"explode\""),
        ("- {regex: '(', target_label: a}", "invalid regex"),
        (
            "- {source_labels: ['a-b'], target_label: a}",
            "\"a-b\" is not a valid label name",
        ),
        ("- {target_lable: a}", "target_lable"),
    ];
    for (yaml, want) in cases {
        let e = compile_err(yaml);
        assert!(e.contains(want), "{yaml}: {e}");
    }
    assert!(compile_err("- {action: explode}").starts_with("write_relabel_configs[0]: "));
}
