//! The documented deployment, for real, against moto (docs/deploy.md, steps 2-4):
//! 1. create the CloudFormation stack from infra/template.yaml (FunctionsDeployed=false),
//! 2. `argus bootstrap --endpoint-url <moto>` on top of it: finds all seven tables, gets
//!    the same topic (the template and the code's schema agree, live),
//! 3. `cargo lambda deploy --binary-name <bin> argus-<bin> --iam-role <output>
//!    --env-vars <FunctionEnv output> --admerge` for the five functions (the read-only
//!    query function with its own `QueryFunctionEnv`), twice (create,
//!    then update),
//! 4. `GetFunction` shows each with the stack's role, the merged environment and the
//!    memory/timeout/tags of its `[package.metadata.lambda.deploy]`, and the uploaded
//!    package carries a config that loads from its packaged location.
//!
//! Not covered here: the FunctionsDeployed=true update (schedules, function URLs, stream
//! mapping): moto's CloudFormation has no AWS::Lambda::Url / AWS::Scheduler::Schedule.
//! cfn-lint checks that part (infra_template.rs). Invoking needs Docker in moto.
//!
//! The function binaries are the workspace's debug builds (built here if missing),
//! packaged by cargo lambda exactly as a release `bootstrap` would be.

use argus_model::schema::{DEFAULT_PREFIX, TABLES};
use argus_testkit::{moto, python, repo_root, tool};
use aws_sdk_cloudformation::types::{Capability, Parameter, StackStatus};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const FUNCTIONS: [&str; 5] = ["probe", "pushgateway", "evaluator", "notifier", "query"];
const STACK: &str = "argus";

fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(
            aws_sdk_cloudformation::config::SharedCredentialsProvider::new(
                aws_sdk_cloudformation::config::Credentials::new(
                    "testing", "testing", None, None, "moto",
                ),
            ),
        )
        .build()
}

/// Environment for the CLI tools talking to moto, isolated from any real AWS profile.
fn aws_cli_env(cmd: &mut Command, endpoint: &str) {
    cmd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN");
}

/// The `argus` CLI and the five function binaries of this build.
fn ensure_built() -> PathBuf {
    let names: Vec<&str> = FUNCTIONS.iter().copied().chain(["argus"]).collect();
    argus_testkit::workspace_bins(&names)
}

/// `[package.metadata.lambda.deploy]` of each function crate, as cargo lambda reads it.
fn deploy_metadata() -> BTreeMap<String, Value> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(repo_root())
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut by_bin = BTreeMap::new();
    for pkg in meta["packages"].as_array().unwrap() {
        for t in pkg["targets"].as_array().unwrap() {
            let name = t["name"].as_str().unwrap();
            if t["kind"].as_array().unwrap().iter().any(|k| k == "bin") && FUNCTIONS.contains(&name)
            {
                let d = pkg["metadata"]["lambda"]["deploy"].clone();
                assert!(
                    d.is_object(),
                    "{name}: no [package.metadata.lambda.deploy] in its Cargo.toml"
                );
                by_bin.insert(name.to_string(), d);
            }
        }
    }
    assert_eq!(
        by_bin.len(),
        5,
        "function binaries found: {:?}",
        by_bin.keys()
    );
    by_bin
}

async fn create_stack(cf: &aws_sdk_cloudformation::Client) -> HashMap<String, String> {
    let body = std::fs::read_to_string(repo_root().join("infra/template.yaml")).unwrap();
    cf.create_stack()
        .stack_name(STACK)
        .template_body(body)
        .capabilities(Capability::CapabilityIam)
        .parameters(
            Parameter::builder()
                .parameter_key("FunctionsDeployed")
                .parameter_value("false")
                .build(),
        )
        .parameters(
            Parameter::builder()
                .parameter_key("AlertEmail")
                .parameter_value("ops@example.com")
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "CreateStack: {}",
                aws_sdk_cloudformation::error::DisplayErrorContext(e)
            )
        });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d = cf.describe_stacks().stack_name(STACK).send().await.unwrap();
        let s = &d.stacks()[0];
        match s.stack_status() {
            Some(StackStatus::CreateComplete) => {
                return s
                    .outputs()
                    .iter()
                    .map(|o| {
                        (
                            o.output_key().unwrap().to_string(),
                            o.output_value().unwrap().to_string(),
                        )
                    })
                    .collect();
            }
            Some(StackStatus::CreateInProgress) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            other => panic!("stack {other:?}: {:?}", s.stack_status_reason()),
        }
    }
}

fn cargo_lambda_deploy(
    endpoint: &str,
    lambda_dir: &Path,
    bin: &str,
    role: &str,
    env: &str,
) -> Value {
    let mut cmd = Command::new(tool("cargo-lambda"));
    cmd.current_dir(repo_root())
        .args([
            "lambda",
            "deploy",
            "--endpoint-url",
            endpoint,
            "--iam-role",
            role,
        ])
        .arg("--lambda-dir")
        .arg(lambda_dir)
        .args([
            "--binary-name",
            bin,
            "--env-vars",
            env,
            "--admerge",
            "--output-format",
            "json",
        ])
        .arg(format!("{DEFAULT_PREFIX}{bin}"));
    aws_cli_env(&mut cmd, endpoint);
    let out = cmd.output().expect("cargo-lambda");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cargo lambda deploy {bin} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The JSON report is the last `{...}` block of stdout (progress lines come first).
    let start = stdout
        .find('{')
        .unwrap_or_else(|| panic!("no JSON from cargo lambda: {stdout}"));
    serde_json::from_str(&stdout[start..])
        .unwrap_or_else(|e| panic!("cargo lambda output {e}: {stdout}"))
}

/// Lists and extracts the uploaded zip with Python's zipfile (no zip crate needed).
fn unzip(zip: &Path, into: &Path) -> Vec<String> {
    let out = Command::new(python())
        .args(["-c", "import sys,zipfile\nz=zipfile.ZipFile(sys.argv[1])\nz.extractall(sys.argv[2])\nprint('\\n'.join(z.namelist()))"])
        .arg(zip)
        .arg(into)
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stack_bootstrap_and_cargo_lambda_deploy_on_moto() {
    let bin_dir = ensure_built();
    let metadata = deploy_metadata();
    let moto = moto();
    let endpoint = moto.url();
    let conf = sdk_config(&endpoint);
    let cf = aws_sdk_cloudformation::Client::new(&conf);

    // 1. The stack (everything around the functions).
    let outputs = create_stack(&cf).await;
    for key in [
        "TablePrefix",
        "TopicArn",
        "DeadLetterQueueUrl",
        "FunctionEnv",
        "QueryFunctionEnv",
    ]
    .into_iter()
    .chain(FUNCTIONS.map(|f| match f {
        "probe" => "ProbeRoleArn",
        "pushgateway" => "PushgatewayRoleArn",
        "evaluator" => "EvaluatorRoleArn",
        "query" => "QueryRoleArn",
        _ => "NotifierRoleArn",
    })) {
        assert!(
            outputs.contains_key(key),
            "stack output {key} missing: {outputs:?}"
        );
    }
    assert_eq!(outputs["TablePrefix"], DEFAULT_PREFIX);
    assert!(
        !outputs.contains_key("PushgatewayUrl"),
        "URLs only exist with FunctionsDeployed=true"
    );

    // The stack's tables, as moto created them from the template, match schema.rs.
    let ddb = aws_sdk_dynamodb::Client::new(&conf);
    for spec in TABLES {
        let name = format!("{DEFAULT_PREFIX}{}", spec.name);
        let t = ddb
            .describe_table()
            .table_name(&name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let t = t.table().unwrap();
        let keys: Vec<(String, String)> = t
            .key_schema()
            .iter()
            .map(|k| {
                (
                    k.attribute_name().to_string(),
                    k.key_type().as_str().to_string(),
                )
            })
            .collect();
        let mut want = vec![(spec.pk.to_string(), "HASH".to_string())];
        if let Some(sk) = spec.sk {
            want.push((sk.to_string(), "RANGE".to_string()));
        }
        assert_eq!(keys, want, "{name} key schema");
        let stream = t
            .stream_specification()
            .filter(|s| s.stream_enabled())
            .and_then(|s| s.stream_view_type())
            .map(|v| v.as_str().to_string());
        assert_eq!(stream.as_deref(), spec.stream, "{name} stream");
    }

    // 2. `argus bootstrap` on the same endpoint: idempotent, agrees with the template.
    let mut cmd = Command::new(bin_dir.join("argus"));
    cmd.args(["bootstrap", "--endpoint-url", &endpoint]);
    aws_cli_env(&mut cmd, &endpoint);
    let out = cmd.output().expect("argus bootstrap");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "argus bootstrap: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("ready: 0 tables created, 7 already there"),
        "bootstrap found other tables than the stack made:\n{text}"
    );
    assert!(
        text.contains(&outputs["TopicArn"]),
        "bootstrap's topic is not the stack's {}:\n{text}",
        outputs["TopicArn"]
    );

    // 3. cargo lambda deploy, five functions, create then update.
    let lambda_dir = tempfile::tempdir().unwrap();
    for f in FUNCTIONS {
        let d = lambda_dir.path().join(f);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(bin_dir.join(f), d.join("bootstrap")).unwrap();
    }
    let env_of = |f: &str| {
        outputs[if f == "query" {
            "QueryFunctionEnv"
        } else {
            "FunctionEnv"
        }]
        .clone()
    };
    let role_of = |f: &str| {
        let key = format!("{}{}RoleArn", f[..1].to_uppercase(), &f[1..]);
        outputs[&key].clone()
    };
    for round in ["create", "update"] {
        for f in FUNCTIONS {
            let report =
                cargo_lambda_deploy(&endpoint, lambda_dir.path(), f, &role_of(f), &env_of(f));
            let arn = report["function_arn"].as_str().unwrap_or_default();
            assert!(
                arn.contains(&format!(":function:{DEFAULT_PREFIX}{f}")),
                "{round} {f}: {report}"
            );
        }
    }

    // 4. What AWS (moto) now holds.
    let lambda = aws_sdk_lambda::Client::new(&conf);
    let env_map = |s: &str| -> BTreeMap<String, String> {
        s.split(',')
            .map(|kv| kv.split_once('=').expect("KEY=VALUE"))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        env_map(&outputs["FunctionEnv"])["ARGUS_TOPIC_ARN"],
        outputs["TopicArn"]
    );
    // The query function's default URL auth is IAM: no token parameter, no topic.
    assert_eq!(
        env_map(&outputs["QueryFunctionEnv"])
            .keys()
            .collect::<Vec<_>>(),
        ["ARGUS_TABLE_PREFIX"],
        "{}",
        outputs["QueryFunctionEnv"]
    );
    for f in FUNCTIONS {
        let stack_env = env_map(&env_of(f));
        let name = format!("{DEFAULT_PREFIX}{f}");
        let got = lambda
            .get_function()
            .function_name(&name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let c = got.configuration().unwrap();
        let meta = &metadata[f];
        assert_eq!(c.role(), Some(role_of(f).as_str()), "{name} role");
        assert_eq!(
            c.runtime().map(|r| r.as_str()),
            Some("provided.al2023"),
            "{name} runtime"
        );
        assert_eq!(c.handler(), Some("bootstrap"), "{name} handler");
        assert_eq!(
            c.memory_size().map(i64::from),
            meta["memory"].as_i64(),
            "{name} memory"
        );
        assert_eq!(
            c.timeout().map(i64::from),
            meta["timeout"].as_i64(),
            "{name} timeout"
        );
        let env = c
            .environment()
            .and_then(|e| e.variables())
            .cloned()
            .unwrap_or_default();
        // Stack outputs and crate metadata, merged (--admerge).
        for (k, v) in &stack_env {
            assert_eq!(
                env.get(k).map(String::as_str),
                Some(v.as_str()),
                "{name} env {k}: {env:?}"
            );
        }
        for (k, v) in meta["env"].as_object().expect("metadata env") {
            assert_eq!(
                env.get(k).map(String::as_str),
                v.as_str(),
                "{name} env {k}: {env:?}"
            );
        }
        assert_eq!(
            env.len(),
            stack_env.len() + meta["env"].as_object().unwrap().len(),
            "{name}: unexpected env {env:?}"
        );
        let tags = got.tags().cloned().unwrap_or_default();
        assert_eq!(
            tags.get("component").map(String::as_str),
            Some(f),
            "{name} tags {tags:?}"
        );

        // The package cargo lambda uploaded: bootstrap + the config it points at, loadable
        // from where ARGUS_CONFIG says, with every file it references.
        let zip = lambda_dir.path().join(f).join("bootstrap.zip");
        let root = tempfile::tempdir().unwrap();
        let names = unzip(&zip, root.path());
        assert!(names.iter().any(|n| n == "bootstrap"), "{f}.zip: {names:?}");
        let cfg_path = env["ARGUS_CONFIG"]
            .strip_prefix("/var/task/")
            .expect("ARGUS_CONFIG under /var/task");
        let cfg = argus_app::AppConfig::load(&root.path().join(cfg_path))
            .unwrap_or_else(|e| panic!("{f}: packaged config: {e}"));
        let rules = cfg.rule_paths().unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(
            !rules.is_empty() && rules.iter().all(|p| p.is_file()),
            "{f}: rule files {rules:?}"
        );
        for p in [
            cfg.probe.modules_file.clone(),
            cfg.alertmanager_config.clone(),
        ]
        .into_iter()
        .flatten()
        {
            assert!(
                cfg.resolve(&p).is_file(),
                "{f}: {p} referenced by argus.yml is not in the package ({names:?})"
            );
        }
    }
}
