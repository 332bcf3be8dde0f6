//! Locations at the command line (issue 18): an unknown location on a target is a clear
//! error naming the item and field at `argus config check` and `argus targets add`; a
//! quorum larger than the locations likewise; `argus cost --locations 3` adds the extra
//! regions to the bill.

use std::path::PathBuf;
use std::process::Command;

fn argus(dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let o = Command::new(PathBuf::from(env!("CARGO_BIN_EXE_argus")))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[test]
fn unknown_locations_and_quorums_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("argus.yml"),
        "locations: [eu-west-1, us-east-1]\ntargets:\n  - url: https://a.example\n  - url: https://b.example\n    locations: [eu-west-1, mars-1]\n",
    )
    .unwrap();
    let (code, out) = argus(d, &["config", "check", "argus.yml"]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("targets[1].locations[1]")
            && out.contains("https://b.example")
            && out.contains("mars-1"),
        "{out}"
    );
    std::fs::write(
        d.join("q.yml"),
        "locations: [eu-west-1, us-east-1]\nquorum: 3\n",
    )
    .unwrap();
    let (code, out) = argus(d, &["config", "check", "q.yml"]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("`quorum`") && out.contains("2 locations"),
        "{out}"
    );

    std::fs::write(d.join("argus.yml"), "locations: [eu-west-1, us-east-1]\n").unwrap();
    let (code, out) = argus(d, &["config", "check", "argus.yml"]);
    assert_eq!(code, 0, "{out}");
    let add = |loc: &str| {
        argus(
            d,
            &[
                "--data-dir",
                "data",
                "targets",
                "add",
                "https://c.example",
                "--location",
                loc,
            ],
        )
    };
    let (code, out) = add("mars-1");
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("https://c.example") && out.contains("locations[0]") && out.contains("mars-1"),
        "{out}"
    );
    let (code, out) = add("us-east-1");
    assert_eq!(code, 0, "{out}");
    let (code, out) = argus(d, &["--data-dir", "data", "targets", "list", "--json"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"us-east-1\""), "{out}");
    assert!(
        !out.contains("mars-1"),
        "the refused target was written: {out}"
    );
}

#[test]
fn cost_models_the_extra_locations() {
    let dir = tempfile::tempdir().unwrap();
    let (code, one) = argus(
        dir.path(),
        &["cost", "--targets", "100", "--interval", "1m"],
    );
    assert_eq!(code, 0, "{one}");
    assert!(!one.contains("locations extra"), "{one}");
    let (code, three) = argus(
        dir.path(),
        &[
            "cost",
            "--targets",
            "100",
            "--interval",
            "1m",
            "--locations",
            "3",
        ],
    );
    assert_eq!(code, 0, "{three}");
    assert!(
        three.contains("Inter-region transfer") && three.contains("global tables"),
        "{three}"
    );
    let total = |s: &str, prefix: &str| -> f64 {
        let l = s.lines().find(|l| l.starts_with(prefix)).unwrap();
        l.split('$')
            .nth(1)
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(
        total(&three, "total with 3 locations") > total(&three, "total  "),
        "{three}"
    );
    let (code, out) = argus(dir.path(), &["cost", "--locations", "0"]);
    assert_ne!(code, 0, "{out}");
}
