//! The shipped example rules (`examples/rules`) and their promtool-format tests pass
//! under the real `promtool` and under `argus`, with the same verdicts; a broken
//! expectation fails under both.

use std::path::{Path, PathBuf};
use std::process::Command;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rules")
}

fn run(tool: &Path, args: &[&str], dir: &Path) -> (i32, String) {
    let o = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", tool.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code().unwrap_or(-1), text)
}

#[test]
fn quorum_rule_tests_pass_under_promtool_and_argus() {
    let promtool = argus_testkit::tool("promtool");
    let argus = PathBuf::from(env!("CARGO_BIN_EXE_argus"));
    let dir = examples().join("tests");
    let cmd = |tool: &PathBuf| -> [&'static str; 2] {
        if *tool == promtool {
            ["test", "rules"]
        } else {
            ["rules", "test"]
        }
    };
    for tool in [&promtool, &argus] {
        let [a, b] = cmd(tool);
        let (code, out) = run(tool, &[a, b, "quorum_test.yml"], &dir);
        assert_eq!(code, 0, "{}: {out}", tool.display());
        assert!(out.contains("SUCCESS"), "{}: {out}", tool.display());
    }
    // The same file with the page expected one evaluation early fails under both.
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(dir.join("quorum_test.yml")).unwrap();
    let broken = text
        .replace(
            "../quorum.yml",
            &examples().join("quorum.yml").display().to_string(),
        )
        .replace(
            "- eval_time: 8m\n        alertname: SiteDown",
            "- eval_time: 7m\n        alertname: SiteDown",
        );
    assert_ne!(broken, text);
    std::fs::write(tmp.path().join("t.yml"), broken).unwrap();
    for tool in [&promtool, &argus] {
        let [a, b] = cmd(tool);
        let (code, out) = run(tool, &[a, b, "t.yml"], tmp.path());
        assert_eq!(code, 1, "{}: {out}", tool.display());
        assert!(out.contains("SiteDown"), "{}: {out}", tool.display());
    }
}

#[test]
fn example_rule_files_check_under_promtool_and_argus() {
    let promtool = argus_testkit::tool("promtool");
    let argus = PathBuf::from(env!("CARGO_BIN_EXE_argus"));
    let dir = examples();
    for f in ["quorum.yml", "site.yml"] {
        let (pc, pout) = run(&promtool, &["check", "rules", f], &dir);
        let (ac, aout) = run(&argus, &["rules", "check", f], &dir);
        assert_eq!((pc, ac), (0, 0), "{f}\n{pout}\n{aout}");
        let found = |s: &str| {
            s.lines()
                .find(|l| l.contains("rules found"))
                .map(|l| l.trim().to_string())
        };
        assert_eq!(found(&pout), found(&aout), "{f}");
        assert!(found(&aout).is_some(), "{aout}");
    }
}
