//! `promtool check rules` side by side with `argus_rules::check_files` on valid and
//! invalid rule files: same verdicts and the same messages, except the wording of PromQL
//! parse errors (ours come from promql-parser) and YAML decoder details.

use std::path::{Path, PathBuf};
use std::process::Command;

fn normalize(text: &str) -> Vec<String> {
    let mut out: Vec<String> = text
        .lines()
        .filter(|l| {
            let status = l.starts_with("  SUCCESS") || l.starts_with("  FAILED");
            !l.trim().is_empty() && (status || !l.starts_with(' '))
        })
        .map(|l| {
            for cut in ["could not parse expression:", "yaml: unmarshal errors:"] {
                if let Some(i) = l.find(cut) {
                    return l[..i + cut.len()].to_string();
                }
            }
            l.to_string()
        })
        .collect();
    out.sort();
    out
}

#[test]
fn check_matches_promtool() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/rules-corpus")
        .canonicalize()
        .expect("corpus");
    let mut files: Vec<PathBuf> = Vec::new();
    for sub in ["check", "rules"] {
        for e in std::fs::read_dir(root.join(sub)).expect("dir").flatten() {
            if e.path().extension().is_some_and(|x| x == "yml") {
                files.push(e.path());
            }
        }
    }
    files.sort();
    assert!(files.len() >= 20, "{} files", files.len());
    let promtool = argus_testkit::tool("promtool");
    let mut failing = 0;
    for f in &files {
        let out = Command::new(&promtool)
            .args(["check", "rules"])
            .arg(f)
            .output()
            .expect("promtool");
        let theirs = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut buf = Vec::new();
        let ok = argus_rules::check_files(std::slice::from_ref(f), &mut buf);
        let ours = String::from_utf8(buf).expect("utf8");
        assert_eq!(
            ok,
            out.status.success(),
            "{}:\n--- promtool\n{theirs}\n--- argus\n{ours}",
            f.display()
        );
        assert_eq!(
            normalize(&theirs),
            normalize(&ours),
            "{}:\n--- promtool\n{theirs}\n--- argus\n{ours}",
            f.display()
        );
        if !ok {
            failing += 1;
        }
    }
    assert!(failing >= 5, "{failing} invalid files");
}
