//! infra/template.yaml against the code: the tables must be exactly
//! `argus_model::schema::TABLES` (keys, TTL attribute, stream), cfn-lint must pass, and no
//! parameter default may carry a secret. Each checker is also run on a doctored template
//! to show it catches what it is meant to catch.

use argus_model::schema::{DEFAULT_PREFIX, TABLES, TOPIC_NAME};
use argus_testkit::{repo_root, tool};
use serde::Deserialize;
use serde_saphyr::Tagged;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Template {
    #[serde(default)]
    parameters: BTreeMap<String, Parameter>,
    resources: BTreeMap<String, Resource>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Parameter {
    #[serde(default)]
    default: Option<serde_json::Value>,
    #[serde(default)]
    no_echo: Option<bool>,
}

#[derive(Deserialize)]
struct Resource {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "Properties", default)]
    props: Option<Props>,
}

/// The properties we check; everything else (tagged intrinsics included) is ignored.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Props {
    table_name: Option<Tagged<String>>,
    topic_name: Option<Tagged<String>>,
    billing_mode: Option<String>,
    attribute_definitions: Option<Vec<AttrDef>>,
    key_schema: Option<Vec<KeyElem>>,
    time_to_live_specification: Option<Ttl>,
    stream_specification: Option<Stream>,
    function_name: Option<Tagged<String>>,
    function_response_types: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AttrDef {
    attribute_name: String,
    attribute_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyElem {
    attribute_name: String,
    key_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Ttl {
    attribute_name: String,
    enabled: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Stream {
    stream_view_type: String,
}

fn template_text() -> String {
    std::fs::read_to_string(repo_root().join("infra/template.yaml")).expect("infra/template.yaml")
}

fn parse(text: &str) -> Template {
    serde_saphyr::from_str(text)
        .unwrap_or_else(|e| panic!("infra/template.yaml does not parse: {e}"))
}

/// `!Sub "${Prefix}<name>"` → `<name>`; anything else is reported.
fn prefixed_name(field: &str, v: &Tagged<String>) -> Result<String, String> {
    let tag = v.1.as_deref();
    let value = &v.0;
    match (tag, value.strip_prefix("${Prefix}")) {
        (Some("!Sub"), Some(rest)) => Ok(rest.to_string()),
        _ => Err(format!(
            "{field} must be !Sub \"${{Prefix}}<name>\", found tag {tag:?} value {value:?}"
        )),
    }
}

/// Every difference between the template's tables and the code's schema.
fn table_problems(t: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let mut found: BTreeMap<String, (&str, &Props)> = BTreeMap::new();
    for (id, r) in &t.resources {
        if r.kind != "AWS::DynamoDB::Table" {
            continue;
        }
        let Some(p) = &r.props else {
            problems.push(format!("{id}: table without Properties"));
            continue;
        };
        let Some(name) = &p.table_name else {
            problems.push(format!("{id}: no TableName"));
            continue;
        };
        match prefixed_name(&format!("{id}.TableName"), name) {
            Ok(n) => {
                if found.insert(n.clone(), (id, p)).is_some() {
                    problems.push(format!("table {n} defined twice"));
                }
            }
            Err(e) => problems.push(e),
        }
    }
    for spec in TABLES {
        let Some((id, p)) = found.remove(spec.name) else {
            problems.push(format!(
                "table {} (schema.rs) is missing from the template",
                spec.name
            ));
            continue;
        };
        if p.billing_mode.as_deref() != Some("PAY_PER_REQUEST") {
            problems.push(format!(
                "{id}: BillingMode must be PAY_PER_REQUEST, found {:?}",
                p.billing_mode
            ));
        }
        let keys: Vec<(String, String)> = p
            .key_schema
            .iter()
            .flatten()
            .map(|k| (k.attribute_name.clone(), k.key_type.clone()))
            .collect();
        let mut want = vec![(spec.pk.to_string(), "HASH".to_string())];
        if let Some(sk) = spec.sk {
            want.push((sk.to_string(), "RANGE".to_string()));
        }
        if keys != want {
            problems.push(format!("{id}: KeySchema {keys:?}, schema.rs says {want:?}"));
        }
        let mut attrs: Vec<(String, String)> = p
            .attribute_definitions
            .iter()
            .flatten()
            .map(|a| (a.attribute_name.clone(), a.attribute_type.clone()))
            .collect();
        attrs.sort();
        // Keys are strings in both backends and in `argus bootstrap`.
        let mut want_attrs: Vec<(String, String)> = want
            .iter()
            .map(|(n, _)| (n.clone(), "S".to_string()))
            .collect();
        want_attrs.sort();
        if attrs != want_attrs {
            problems.push(format!(
                "{id}: AttributeDefinitions {attrs:?}, expected {want_attrs:?}"
            ));
        }
        let ttl = p
            .time_to_live_specification
            .as_ref()
            .filter(|t| t.enabled)
            .map(|t| t.attribute_name.as_str());
        if ttl != spec.ttl {
            problems.push(format!(
                "{id}: TTL attribute {ttl:?}, schema.rs says {:?}",
                spec.ttl
            ));
        }
        let stream = p
            .stream_specification
            .as_ref()
            .map(|s| s.stream_view_type.as_str());
        if stream != spec.stream {
            problems.push(format!(
                "{id}: stream {stream:?}, schema.rs says {:?}",
                spec.stream
            ));
        }
    }
    for (extra, (id, _)) in found {
        problems.push(format!("{id}: table {extra} is not in schema.rs TABLES"));
    }
    problems
}

/// Parameter defaults and literal text that look like secrets.
fn secret_problems(text: &str, t: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let secretish =
        regex::Regex::new(r"(?i)(token|secret|password|passwd|apikey|api_key|webhook|credential)")
            .unwrap();
    for (name, p) in &t.parameters {
        if !secretish.is_match(name) {
            continue;
        }
        let default = p.default.as_ref().and_then(|d| d.as_str()).unwrap_or("");
        // Allowed: nothing, or the *name* of an SSM parameter (a path), never a value.
        if !default.is_empty() && !default.starts_with('/') {
            problems.push(format!(
                "parameter {name} has a default that looks like a secret value"
            ));
        }
        if default.is_empty() && p.default.is_some() && p.no_echo != Some(true) {
            problems.push(format!("parameter {name} takes a secret value: it needs NoEcho: true (better: an SSM path)"));
        }
    }
    let patterns = [
        (r"AKIA[0-9A-Z]{16}", "an AWS access key id"),
        (r"(?i)aws_secret_access_key", "an AWS secret key"),
        (r"hooks\.slack\.com/services/", "a Slack webhook URL"),
        (r"xox[abpr]-[0-9A-Za-z-]{10,}", "a Slack token"),
        (r"-----BEGIN [A-Z ]*PRIVATE KEY-----", "a private key"),
        (r"(?i)bearer [A-Za-z0-9._~+/-]{16,}", "a bearer token"),
        (r"https?://[^/\s:@]+:[^/\s@]+@", "credentials in a URL"),
    ];
    for (pat, what) in patterns {
        if let Some(m) = regex::Regex::new(pat).unwrap().find(text) {
            let line = text[..m.start()].lines().count().max(1);
            problems.push(format!("line {line}: looks like {what}"));
        }
    }
    problems
}

fn cfn_lint(path: &Path) -> std::process::Output {
    Command::new(tool("cfn-lint"))
        .arg("--")
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run cfn-lint: {e}"))
}

#[test]
fn template_tables_match_schema() {
    let text = template_text();
    let t = parse(&text);
    let problems = table_problems(&t);
    assert!(
        problems.is_empty(),
        "template vs schema.rs:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn template_prefix_and_topic_match_code() {
    let text = template_text();
    let t = parse(&text);
    let prefix = t
        .parameters
        .get("Prefix")
        .and_then(|p| p.default.as_ref())
        .and_then(|d| d.as_str());
    assert_eq!(
        prefix,
        Some(DEFAULT_PREFIX),
        "Prefix default must be schema::DEFAULT_PREFIX"
    );
    let topics: Vec<String> = t
        .resources
        .values()
        .filter(|r| r.kind == "AWS::SNS::Topic")
        .filter_map(|r| r.props.as_ref()?.topic_name.as_ref())
        .map(|n| prefixed_name("TopicName", n).unwrap())
        .collect();
    assert_eq!(topics, [TOPIC_NAME], "one topic named <prefix>{TOPIC_NAME}");
}

#[test]
fn table_check_catches_drift() {
    let text = template_text();
    // Stream removed from alerts.
    let no_stream = text.replace(
        "      StreamSpecification:\n        StreamViewType: NEW_IMAGE\n",
        "",
    );
    assert_ne!(
        no_stream, text,
        "doctoring failed: the alerts stream spec moved"
    );
    let p = table_problems(&parse(&no_stream));
    assert!(
        p.iter().any(|m| m.contains("AlertsTable: stream None")),
        "{p:?}"
    );
    // A table renamed (one missing, one extra), a wrong TTL attribute, a wrong key type.
    let drift = text
        .replace("\"${Prefix}nflog\"", "\"${Prefix}notlog\"")
        .replacen(
            "TimeToLiveSpecification: { AttributeName: ttl, Enabled: true }",
            "TimeToLiveSpecification: { AttributeName: expires, Enabled: true }",
            1,
        )
        .replacen(
            "- { AttributeName: id, KeyType: HASH }",
            "- { AttributeName: id, KeyType: RANGE }",
            1,
        );
    let p = table_problems(&parse(&drift));
    assert!(
        p.iter()
            .any(|m| m.contains("table nflog (schema.rs) is missing")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|m| m.contains("table notlog is not in schema.rs")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|m| m.contains("ResultsTable: TTL attribute Some(\"expires\")")),
        "{p:?}"
    );
    assert!(
        p.iter().any(|m| m.contains("TargetsTable: KeySchema")),
        "{p:?}"
    );
    // A literal (non-!Sub) name.
    let literal = text.replace(
        "TableName: !Sub \"${Prefix}silences\"",
        "TableName: argus-silences",
    );
    let p = table_problems(&parse(&literal));
    assert!(
        p.iter()
            .any(|m| m.contains("SilencesTable.TableName must be !Sub")),
        "{p:?}"
    );
}

#[test]
fn template_has_no_secrets() {
    let text = template_text();
    let p = secret_problems(&text, &parse(&text));
    assert!(
        p.is_empty(),
        "secret-looking content in infra/template.yaml:\n  {}",
        p.join("\n  ")
    );
}

#[test]
fn secret_check_catches_secrets() {
    let text = template_text();
    let bad = text.replacen(
        "Parameters:\n",
        "Parameters:\n  SlackWebhook:\n    Type: String\n    Default: https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX\n  ApiToken:\n    Type: String\n    Default: \"\"\n",
        1,
    );
    let p = secret_problems(&bad, &parse(&bad));
    assert!(
        p.iter()
            .any(|m| m.contains("parameter SlackWebhook has a default")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|m| m.contains("parameter ApiToken takes a secret value")),
        "{p:?}"
    );
    assert!(p.iter().any(|m| m.contains("a Slack webhook URL")), "{p:?}");
}

#[test]
fn cfn_lint_passes() {
    let path = repo_root().join("infra/template.yaml");
    let out = cfn_lint(&path);
    assert!(
        out.status.success(),
        "cfn-lint infra/template.yaml failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn cfn_lint_rejects_a_broken_template() {
    let bad = template_text().replacen("BillingMode: PAY_PER_REQUEST", "BillingMode: FREE", 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("template.yaml");
    std::fs::write(&path, bad).unwrap();
    let out = cfn_lint(&path);
    assert!(!out.status.success(), "cfn-lint accepted BillingMode: FREE");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("FREE"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The notifier answers stream batches with `batchItemFailures`
/// (`argus_app::lambda::stream_response`); Lambda reads that only when the mapping says
/// so, and otherwise counts every batch as a success.
fn stream_mapping_problems(t: &Template) -> Vec<String> {
    let mappings: Vec<&Props> = t
        .resources
        .values()
        .filter(|r| r.kind == "AWS::Lambda::EventSourceMapping")
        .filter_map(|r| r.props.as_ref())
        .collect();
    if mappings.is_empty() {
        return vec!["no event source mapping for the alerts stream".into()];
    }
    let mut problems = Vec::new();
    for m in mappings {
        let f = m
            .function_name
            .as_ref()
            .map(|f| f.0.clone())
            .unwrap_or_default();
        let types = m.function_response_types.clone().unwrap_or_default();
        if !types.iter().any(|t| t == "ReportBatchItemFailures") {
            problems.push(format!(
                "event source mapping of {f} lacks FunctionResponseTypes: [ReportBatchItemFailures]"
            ));
        }
    }
    problems
}

#[test]
fn stream_mapping_reports_batch_item_failures() {
    let text = template_text();
    assert_eq!(stream_mapping_problems(&parse(&text)), Vec::<String>::new());
    let doctored = text.replace(
        "FunctionResponseTypes: [ReportBatchItemFailures]",
        "FunctionResponseTypes: []",
    );
    assert_ne!(doctored, text);
    assert_eq!(stream_mapping_problems(&parse(&doctored)).len(), 1);
}

/// Actions in the `QueryRole` resource that are not reads (its promise: read-only).
fn query_role_writes(text: &str) -> Vec<String> {
    let start = text.find("\n  QueryRole:\n").expect("QueryRole resource");
    let rest = &text[start + 1..];
    // The resource ends at the next resource at the same indentation.
    let end = regex::Regex::new(r"\n  [A-Za-z]")
        .unwrap()
        .find_at(rest, 3)
        .map_or(rest.len(), |m| m.start());
    let block = &rest[..end];
    const READS: &[&str] = &[
        "sts:AssumeRole",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "ssm:GetParameter",
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:Scan",
    ];
    let rx = regex::Regex::new(
        r"\b(dynamodb|sns|sqs|ssm|logs|lambda|sts|s3|kms|iam|scheduler|events):[A-Za-z*]+",
    )
    .unwrap();
    let found: Vec<String> = rx
        .find_iter(block)
        .map(|m| m.as_str().to_string())
        .collect();
    assert!(
        found.iter().any(|a| a == "dynamodb:Query"),
        "no actions found in {block}"
    );
    found
        .into_iter()
        .filter(|a| !READS.contains(&a.as_str()))
        .collect()
}

#[test]
fn query_role_is_read_only() {
    let text = template_text();
    let w = query_role_writes(&text);
    assert!(w.is_empty(), "QueryRole grants writes: {w:?}");
    // The check sees a write slipped in.
    let doctored = text.replacen(
        "Sid: ReadOnly\n                Effect: Allow\n                Action: [dynamodb:GetItem, dynamodb:Query, dynamodb:Scan]",
        "Sid: ReadOnly\n                Effect: Allow\n                Action: [dynamodb:GetItem, dynamodb:Query, dynamodb:Scan, dynamodb:PutItem]",
        1,
    );
    assert_ne!(
        doctored, text,
        "doctoring failed: the QueryRole actions moved"
    );
    assert_eq!(query_role_writes(&doctored), ["dynamodb:PutItem"]);
}

/// infra/probe-location.yaml (one more probe location, issue 18): cfn-lint clean, the
/// role reaches exactly the home region's tables the probe uses (names from the
/// schema), and the function environment names the location and the home region.
#[test]
fn probe_location_template_lints_and_points_at_the_home_tables() {
    let path = repo_root().join("infra/probe-location.yaml");
    let out = cfn_lint(&path);
    assert!(
        out.status.success(),
        "cfn-lint infra/probe-location.yaml failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let tables: Vec<&str> = text
        .match_indices(":table/${Prefix}")
        .map(|(i, m)| {
            let rest = &text[i + m.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect();
    assert_eq!(tables, ["targets", "results", "metrics"]);
    for t in &tables {
        assert!(
            argus_model::schema::TABLES.iter().any(|s| s.name == *t),
            "{t}"
        );
    }
    assert!(text.contains("dynamodb:${HomeRegion}:"));
    assert!(text.contains("ARGUS_LOCATION=${AWS::Region},ARGUS_HOME_REGION=${HomeRegion}"));
}
