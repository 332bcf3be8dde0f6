//! Side by side with the real tools on every file of the shared corpus
//! (`../shared/corpus/MANIFEST.tsv`; test data, never copied into this repository):
//!
//! * `rules`: `argus rules check` and `promtool check rules` (Prometheus 2.42) give the
//!   same exit code and the same `SUCCESS: N rules found` lines (or both none);
//! * `test`: `argus rules test` and `promtool test rules` give the same exit code;
//! * `amconfig`: `argus config check` and `amtool check-config` (Alertmanager 0.25) give
//!   the same verdict, for every configuration whose receivers Argus has (webhook,
//!   Slack, SNS); the others are listed as skipped (the receivers issue).
//!
//! Every disagreement fails the test. The figures (files agreeing / files, per kind)
//! are printed. In CI (`CI=true`) a missing corpus is a failure; elsewhere the test says
//! that it did not run.

use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus() -> Option<PathBuf> {
    let dir = argus_testkit::repo_root().join("../shared/corpus");
    if dir.join("MANIFEST.tsv").is_file() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "the corpus is missing at {} (CI=true: a missing corpus is a failure)",
            dir.display()
        );
    }
    eprintln!(
        "corpus_verdicts: NOT RUN: no corpus at {} (see the README's test section)",
        dir.display()
    );
    None
}

fn manifest(dir: &Path, kind: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join("MANIFEST.tsv"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(k, _)| *k == kind)
        .map(|(_, p)| p.trim().to_string())
        .collect()
}

struct Run {
    code: i32,
    out: String,
}

fn run(dir: &Path, program: &Path, args: &[&str]) -> Run {
    let o = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    let mut out = String::from_utf8_lossy(&o.stdout).into_owned();
    out.push_str(&String::from_utf8_lossy(&o.stderr));
    Run {
        code: o.status.code().unwrap_or(-1),
        out,
    }
}

fn argus() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_argus"))
}

fn found_lines(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("SUCCESS: ") && l.ends_with(" rules found"))
        .map(str::to_string)
        .collect()
}

/// Runs `check` on every file with a few workers (the tools are single-threaded
/// processes; two cores).
fn par_map<T: Send>(files: &[String], check: impl Fn(&str) -> T + Sync) -> Vec<T> {
    let chunks: Vec<&[String]> = files.chunks(files.len().div_ceil(3).max(1)).collect();
    std::thread::scope(|s| {
        let hs: Vec<_> = chunks
            .iter()
            .map(|c| {
                let check = &check;
                s.spawn(move || c.iter().map(|f| check(f)).collect::<Vec<T>>())
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    })
}

fn report(kind: &str, total: usize, disagreements: &[String], skipped: &[String]) {
    let checked = total - skipped.len();
    println!(
        "{kind}: {} of {checked} files agree{}",
        checked - disagreements.len(),
        if skipped.is_empty() {
            String::new()
        } else {
            format!(" ({} more skipped)", skipped.len())
        }
    );
    for s in skipped {
        println!("  skipped: {s}");
    }
    assert!(
        disagreements.is_empty(),
        "{kind}: {} disagreement(s) with the real tool:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

#[test]
fn rules_check_agrees_with_promtool() {
    let Some(dir) = corpus() else { return };
    let promtool = argus_testkit::tool("promtool");
    let files = manifest(&dir, "rules");
    assert!(
        files.len() > 100,
        "MANIFEST lists {} rule files",
        files.len()
    );
    let diffs: Vec<String> = par_map(&files, |f| {
        let p = run(&dir, &promtool, &["check", "rules", f]);
        let a = run(&dir, &argus(), &["rules", "check", f]);
        let (pf, af) = (found_lines(&p.out), found_lines(&a.out));
        (p.code != a.code || pf != af).then(|| {
            format!(
                "{f}: promtool exit {} {pf:?}, argus exit {} {af:?}\n--- promtool:\n{}--- argus:\n{}",
                p.code, a.code, p.out, a.out
            )
        })
    })
    .into_iter()
    .flatten()
    .collect();
    report("rules (check rules)", files.len(), &diffs, &[]);
}

#[test]
fn rules_test_agrees_with_promtool() {
    let Some(dir) = corpus() else { return };
    let promtool = argus_testkit::tool("promtool");
    let files = manifest(&dir, "test");
    assert!(
        files.len() > 10,
        "MANIFEST lists {} test files",
        files.len()
    );
    let diffs: Vec<String> = par_map(&files, |f| {
        let p = run(&dir, &promtool, &["test", "rules", f]);
        let a = run(&dir, &argus(), &["rules", "test", f]);
        (p.code != a.code).then(|| {
            format!(
                "{f}: promtool exit {}, argus exit {}\n--- promtool:\n{}--- argus:\n{}",
                p.code, a.code, p.out, a.out
            )
        })
    })
    .into_iter()
    .flatten()
    .collect();
    report("test (test rules)", files.len(), &diffs, &[]);
}

/// The receiver integrations Argus implements (`log_configs` is Argus' own).
const ARGUS_RECEIVERS: &[&str] = &[
    "webhook_configs",
    "slack_configs",
    "sns_configs",
    "email_configs",
    "pagerduty_configs",
    "opsgenie_configs",
    "victorops_configs",
    "pushover_configs",
    "telegram_configs",
    "webex_configs",
    "discord_configs",
    "wechat_configs",
    "msteams_configs",
];

/// The receiver kinds of a configuration that Argus does not have (empty: in scope).
/// A file that is not YAML, or has no receiver list, is in scope (both tools judge it).
fn foreign_receivers(text: &str) -> Vec<String> {
    let Ok(v) = serde_saphyr::from_str::<serde_json::Value>(text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for r in v
        .get("receivers")
        .and_then(|r| r.as_array())
        .into_iter()
        .flatten()
    {
        for k in r.as_object().into_iter().flat_map(|o| o.keys()) {
            if k.ends_with("_configs") && !ARGUS_RECEIVERS.contains(&k.as_str()) {
                out.push(k.clone());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn config_check_agrees_with_amtool() {
    let Some(dir) = corpus() else { return };
    let amtool = argus_testkit::tool("amtool");
    let files = manifest(&dir, "amconfig");
    assert!(files.len() > 50, "MANIFEST lists {} configs", files.len());
    let mut skipped = Vec::new();
    let mut in_scope = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        let foreign = foreign_receivers(&text);
        if foreign.is_empty() {
            in_scope.push(f.clone());
        } else {
            skipped.push(format!(
                "{f}: receivers issue ({} not in Argus)",
                foreign.join(", ")
            ));
        }
    }
    let diffs: Vec<String> = par_map(&in_scope, |f| {
        let p = run(&dir, &amtool, &["check-config", f]);
        let a = run(&dir, &argus(), &["config", "check", f]);
        ((p.code == 0) != (a.code == 0)).then(|| {
            format!(
                "{f}: amtool exit {}, argus exit {}\n--- amtool:\n{}--- argus:\n{}",
                p.code, a.code, p.out, a.out
            )
        })
    })
    .into_iter()
    .flatten()
    .collect();
    report("amconfig (check-config)", files.len(), &diffs, &skipped);
}

#[test]
fn scope_detection_sees_foreign_receivers() {
    let t = "route: {receiver: a}\nreceivers:\n- name: a\n  webhook_configs: [{url: 'http://x'}]\n- name: b\n  email_configs: [{to: x}]\n  jira_configs: []\n  zz_configs: []\n";
    assert_eq!(
        foreign_receivers(t),
        vec!["jira_configs".to_string(), "zz_configs".to_string()]
    );
    assert!(foreign_receivers("route: {receiver: a}\nreceivers:\n- name: a\n").is_empty());
}
