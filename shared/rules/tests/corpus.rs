//! Side by side: every file of tests/rules-corpus through the real `promtool test rules`
//! (Debian's prometheus 2.42) and through argus-rules' runner. Verdicts must be equal,
//! and for failing files the same failing alert names, expressions and rules.

use argus_rules::unittest::failed_names;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, PartialEq)]
struct Verdict {
    passed: bool,
    alertnames: BTreeSet<String>,
    exprs: BTreeSet<String>,
    rules: BTreeSet<String>,
}

fn verdict(passed: bool, errors: &[String]) -> Verdict {
    Verdict {
        passed,
        alertnames: failed_names(errors, "    alertname: "),
        exprs: failed_names(errors, "    expr: "),
        rules: failed_names(errors, "    rule: "),
    }
}

fn promtool_verdict(promtool: &Path, dir: &Path, file: &Path) -> (Verdict, String) {
    let out = Command::new(promtool)
        .arg("test")
        .arg("rules")
        .arg(file.file_name().expect("file name"))
        .current_dir(dir)
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let code = out.status.code().expect("promtool exit code");
    assert!(
        code == 0 || code == 1,
        "promtool exit code {code} for {}:\n{text}",
        file.display()
    );
    // Messages are separated by blank lines; the subject lines are what we compare.
    let msgs: Vec<String> = text.lines().map(str::to_string).collect();
    (verdict(code == 0, &msgs), text)
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/rules-corpus")
        .canonicalize()
        .expect("corpus dir")
}

fn corpus_files() -> Vec<PathBuf> {
    let dir = corpus_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".test.yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn corpus_verdicts_match_promtool() {
    let promtool = argus_testkit::tool("promtool");
    let files = corpus_files();
    assert!(files.len() >= 40, "corpus has only {} files", files.len());
    let dir = files[0].parent().expect("dir").to_path_buf();

    // promtool runs in parallel threads (it is the slow side); ours runs meanwhile.
    let handles: Vec<_> = files
        .chunks(files.len().div_ceil(4))
        .map(|chunk| {
            let chunk = chunk.to_vec();
            let promtool = promtool.clone();
            let dir = dir.clone();
            std::thread::spawn(move || {
                chunk
                    .iter()
                    .map(|f| (f.clone(), promtool_verdict(&promtool, &dir, f)))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let ours: Vec<(PathBuf, Verdict, Vec<String>)> = files
        .iter()
        .map(|f| {
            let r = argus_rules::run_file(f);
            (f.clone(), verdict(r.passed(), &r.errors), r.errors)
        })
        .collect();
    let theirs: Vec<(PathBuf, (Verdict, String))> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("promtool thread"))
        .collect();

    let mut failing = 0;
    let mut mismatches = Vec::new();
    for ((f, ours, errors), (f2, (theirs, text))) in ours.iter().zip(&theirs) {
        assert_eq!(f, f2);
        if !theirs.passed {
            failing += 1;
        }
        if ours != theirs {
            mismatches.push(format!(
                "{}:\n  promtool: {theirs:?}\n  argus:    {ours:?}\n--- promtool output\n{text}\n--- argus errors\n{}",
                f.display(),
                errors.join("\n\n")
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} files differ:\n{}",
        mismatches.len(),
        files.len(),
        mismatches.join("\n")
    );
    assert!(failing >= 8, "only {failing} deliberately failing files");
    assert!(failing < files.len(), "every file fails");
}

#[test]
fn output_is_byte_identical_for_assertion_failures() {
    // Where no engine error message is involved, the whole output is promtool's.
    let promtool = argus_testkit::tool("promtool");
    let dir = corpus_dir();
    for name in [
        "fail_several.test.yml",
        "fail_wrong_label.test.yml",
        "fail_promql_labels.test.yml",
        "fail_dup_labelset.test.yml",
        "site_down_basic.test.yml",
    ] {
        let path = dir.join(name);
        let out = Command::new(&promtool)
            .arg("test")
            .arg("rules")
            .arg(&path)
            .output()
            .expect("promtool");
        let mut theirs = String::from_utf8_lossy(&out.stdout).to_string();
        // promtool prints FAILED and the messages on stderr; stdout has the blank lines.
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        let mut ours = Vec::new();
        let ok = argus_rules::run_files(std::slice::from_ref(&path), &mut ours);
        let ours = String::from_utf8(ours).expect("utf8");
        assert_eq!(ok, out.status.success(), "{name}");
        // Compare content ignoring the stdout/stderr interleaving: same lines, same order
        // within each stream.
        let strip = |s: &str| {
            s.lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        theirs.push_str(&err);
        let mut a = strip(&theirs);
        let mut b = strip(&ours);
        a.sort();
        b.sort();
        assert_eq!(a, b, "{name}:\n--- promtool\n{theirs}\n--- argus\n{ours}");
    }
}
