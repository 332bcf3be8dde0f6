//! local/docker-compose.yml and its LocalStack ready hook. Docker has no engine here, so:
//! - the compose file is checked statically (pinned tag that needs no auth token, ports on
//!   127.0.0.1 only, the SERVICES list, the hook mounted) and by `docker compose config`
//!   / `docker-compose config` when one is installed;
//! - the hook itself is RUN, unchanged, against moto (the same script LocalStack runs,
//!   pointed at another endpoint): `argus bootstrap` + `cargo lambda deploy` of the four
//!   functions, then the SDK sees them.

use argus_model::schema::{DEFAULT_PREFIX, TABLES};
use argus_testkit::{moto, python, repo_root};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

/// The last localstack/localstack tag that starts without LOCALSTACK_AUTH_TOKEN.
const LAST_FREE_LOCALSTACK: (u32, u32, u32) = (4, 14, 0);
const SERVICES: &[&str] = &[
    "dynamodb",
    "sns",
    "sqs",
    "lambda",
    "events",
    "scheduler",
    "ssm",
    "logs",
    "iam",
    "sts",
];
const HOOK: &str = "local/init/ready.d/10-argus.sh";

fn compose_text() -> String {
    std::fs::read_to_string(repo_root().join("local/docker-compose.yml"))
        .expect("local/docker-compose.yml")
}

/// Every rule the compose file must follow; empty when it does.
fn compose_problems(text: &str) -> Vec<String> {
    let doc: Value = match serde_saphyr::from_str(text) {
        Ok(v) => v,
        Err(e) => return vec![format!("does not parse: {e}")],
    };
    let mut problems = Vec::new();
    let Some(ls) = doc["services"]["localstack"].as_object() else {
        return vec!["no services.localstack".into()];
    };
    // Image: localstack/localstack:X.Y.Z with X.Y.Z <= the last free release.
    let image = ls.get("image").and_then(Value::as_str).unwrap_or("");
    match image
        .strip_prefix("localstack/localstack:")
        .map(|t| t.split('.').map(str::parse::<u32>).collect::<Vec<_>>())
    {
        Some(v) if v.len() == 3 && v.iter().all(Result::is_ok) => {
            let v: Vec<u32> = v.into_iter().map(Result::unwrap).collect();
            if (v[0], v[1], v[2]) > LAST_FREE_LOCALSTACK {
                problems.push(format!(
                    "image {image}: releases after 4.14.0 need LOCALSTACK_AUTH_TOKEN"
                ));
            }
        }
        _ => problems.push(format!(
            "image {image:?} is not pinned to a localstack/localstack:X.Y.Z release"
        )),
    }
    // Ports: loopback only.
    for p in ls
        .get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let s = p
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| p.to_string());
        if !s.starts_with("127.0.0.1:") {
            problems.push(format!("port {s} is not bound to 127.0.0.1"));
        }
    }
    // SERVICES: exactly what Argus uses.
    let env = &ls.get("environment").cloned().unwrap_or(Value::Null);
    let services = match env {
        Value::Object(m) => m
            .get("SERVICES")
            .and_then(Value::as_str)
            .map(str::to_string),
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .find_map(|s| s.strip_prefix("SERVICES=").map(str::to_string)),
        _ => None,
    };
    match services {
        None => problems.push("environment SERVICES missing".into()),
        Some(s) => {
            let got: BTreeSet<&str> = s.split(',').map(str::trim).collect();
            let want: BTreeSet<&str> = SERVICES.iter().copied().collect();
            if got != want {
                problems.push(format!("SERVICES {got:?}, expected {want:?}"));
            }
        }
    }
    if let Value::Object(m) = env {
        if m.keys()
            .any(|k| k.contains("AUTH_TOKEN") || k.contains("API_KEY"))
        {
            problems.push("an auth token/API key in the environment".into());
        }
    }
    // The ready hook directory is mounted where LocalStack runs hooks.
    let vols: Vec<String> = ls
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    if !vols
        .iter()
        .any(|v| v.starts_with("./init/ready.d:/etc/localstack/init/ready.d"))
    {
        problems.push("./init/ready.d is not mounted at /etc/localstack/init/ready.d".into());
    }
    problems
}

#[test]
fn compose_file_follows_the_rules() {
    let p = compose_problems(&compose_text());
    assert!(
        p.is_empty(),
        "local/docker-compose.yml:\n  {}",
        p.join("\n  ")
    );
}

#[test]
fn compose_check_catches_violations() {
    let text = compose_text();
    let bad = text
        .replace(
            "localstack/localstack:4.14.0",
            "localstack/localstack:latest",
        )
        .replace("\"127.0.0.1:4566:4566\"", "\"4566:4566\"")
        .replace(",scheduler,", ",s3,scheduler,");
    assert_ne!(bad, text);
    let p = compose_problems(&bad);
    assert!(p.iter().any(|m| m.contains("not pinned")), "{p:?}");
    assert!(
        p.iter().any(|m| m.contains("port 4566:4566 is not bound")),
        "{p:?}"
    );
    assert!(p.iter().any(|m| m.contains("SERVICES")), "{p:?}");
    let p = compose_problems(&text.replace(
        "localstack/localstack:4.14.0",
        "localstack/localstack:4.15.0",
    ));
    assert!(
        p.iter().any(|m| m.contains("need LOCALSTACK_AUTH_TOKEN")),
        "{p:?}"
    );
}

#[test]
fn ready_hook_exists_and_calls_argus_bootstrap_and_cargo_lambda_deploy() {
    let dir = repo_root().join("local/init/ready.d");
    let hooks: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sh"))
        .collect();
    assert!(!hooks.is_empty(), "no *.sh hook in {}", dir.display());
    let all: String = hooks
        .iter()
        .map(|h| std::fs::read_to_string(h).unwrap())
        .collect();
    assert!(
        all.contains("bootstrap --endpoint-url"),
        "no `argus bootstrap --endpoint-url` in the hook"
    );
    assert!(
        all.contains("deploy --endpoint-url"),
        "no `cargo lambda deploy --endpoint-url` in the hook"
    );
    for h in &hooks {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(h).unwrap().permissions().mode();
        assert!(
            mode & 0o111 != 0,
            "{} is not executable (LocalStack skips it)",
            h.display()
        );
        let st = Command::new("bash").arg("-n").arg(h).status().unwrap();
        assert!(st.success(), "{}: bash syntax error", h.display());
    }
}

/// `docker compose config -q` (plugin) or `docker-compose config -q` (Debian's
/// docker-compose); both work without a Docker engine. Skipped, saying so, when neither
/// is installed.
#[test]
fn compose_config_is_valid_for_docker_compose() {
    let file = repo_root().join("local/docker-compose.yml");
    let candidates: [(&str, &[&str]); 2] = [("docker", &["compose"]), ("docker-compose", &[])];
    for (prog, pre) in candidates {
        let probe = Command::new(prog).args(pre).arg("version").output();
        if !probe.is_ok_and(|o| o.status.success()) {
            continue;
        }
        let out = Command::new(prog)
            .args(pre)
            .arg("-f")
            .arg(&file)
            .args(["config", "-q"])
            .env("HOME", "/tmp")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{prog} {pre:?} config -q rejects local/docker-compose.yml:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    eprintln!("NOTE: neither `docker compose` nor `docker-compose` is installed: compose schema check skipped (apt-get install docker-compose)");
}

#[test]
fn ready_hook_deploys_on_moto() {
    let bin = argus_testkit::profile_dir();
    for b in [
        "argus",
        "probe",
        "pushgateway",
        "evaluator",
        "notifier",
        "query",
    ] {
        assert!(
            bin.join(b).is_file(),
            "{} missing: build the workspace first (cargo build --bins)",
            bin.join(b).display()
        );
    }
    let moto = moto();
    let endpoint = moto.url();
    let aws = |c: &mut Command| {
        c.env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env_remove("AWS_PROFILE");
    };
    // moto checks that the execution role exists (LocalStack's hook creates one with awslocal).
    let mut c = Command::new(python());
    c.args([
        "-c",
        "import boto3,sys,json\n\
         iam=boto3.client('iam',endpoint_url=sys.argv[1])\n\
         t={'Version':'2012-10-17','Statement':[{'Effect':'Allow','Principal':{'Service':'lambda.amazonaws.com'},'Action':'sts:AssumeRole'}]}\n\
         print(iam.create_role(RoleName='argus-local-lambda',AssumeRolePolicyDocument=json.dumps(t))['Role']['Arn'])",
        &endpoint,
    ]);
    aws(&mut c);
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "create role: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let role = String::from_utf8_lossy(&out.stdout).trim().to_string();

    let mut hook = Command::new("bash");
    hook.arg(repo_root().join(HOOK))
        .env("ARGUS_ENDPOINT_URL", &endpoint)
        .env("ARGUS_SRC", repo_root())
        .env("ARGUS_BIN_DIR", &bin)
        .env("ARGUS_ROLE_ARN", &role)
        .env("ARGUS_TABLE_PREFIX", DEFAULT_PREFIX);
    aws(&mut hook);
    let out = hook.output().unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "ready hook failed:\n{log}");
    assert!(
        log.contains(&format!("ready: {} tables created", TABLES.len())),
        "{log}"
    );
    assert!(
        log.contains("[argus] ready: tables, topic arn:aws:sns:us-east-1:"),
        "{log}"
    );

    // What the emulator now has: the four functions with the role and the topic.
    let mut c = Command::new(python());
    c.args([
        "-c",
        "import boto3,sys,json\n\
         l=boto3.client('lambda',endpoint_url=sys.argv[1])\n\
         print(json.dumps({f['FunctionName']:{'role':f['Role'],'env':f.get('Environment',{}).get('Variables',{})} for f in l.list_functions()['Functions']}))",
        &endpoint,
    ]);
    aws(&mut c);
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "list functions: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fns: Value = serde_json::from_slice(&out.stdout).unwrap();
    for f in ["probe", "pushgateway", "evaluator", "notifier", "query"] {
        let name = format!("{DEFAULT_PREFIX}{f}");
        let got = &fns[&name];
        assert_eq!(got["role"], role.as_str(), "{name}: {fns}");
        assert!(
            got["env"]["ARGUS_TOPIC_ARN"]
                .as_str()
                .is_some_and(|a| a.ends_with(":argus-alerts")),
            "{name}: {got}"
        );
        assert_eq!(
            got["env"]["ARGUS_TABLE_PREFIX"], DEFAULT_PREFIX,
            "{name}: {got}"
        );
        assert_eq!(
            got["env"]["ARGUS_CONFIG"], "/var/task/infra/config/argus.yml",
            "{name}: {got}"
        );
    }
}
