//! The Go compatibility rules of `argus_model` (`go::quote`, `go::format_g`,
//! `time::{parse_duration, format_duration_ms, format_go_duration_ms, parse_go_duration}`,
//! `valid_label_name`, `valid_metric_name`) compared with Go itself: `tests/go/compat.go`
//! is built with Debian's Go and prometheus/common 0.39 (the version Prometheus 2.42
//! builds with; `tests/run` installs both) and answers for the same table of inputs.
//! Without `go` (or the prometheus/common sources) the test says so and passes.

use argus_model::{go, time, valid_label_name, valid_metric_name};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const GOPATH: &str = "/usr/share/gocode";

fn hex(s: &[u8]) -> String {
    s.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Builds the Go program, or says why not.
fn build() -> Result<PathBuf, String> {
    if Command::new("go").arg("version").output().is_err() {
        return Err("`go` is not installed (apt-get install golang-go)".into());
    }
    let common = Path::new(GOPATH).join("src/github.com/prometheus/common/model");
    if !common.is_dir() {
        return Err(format!(
            "{} is missing (apt-get install golang-github-prometheus-common-dev)",
            common.display()
        ));
    }
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go_compat");
    std::fs::create_dir_all(&tmp).unwrap();
    let bin = tmp.join("compat");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/compat.go");
    let out = Command::new("go")
        .args(["build", "-o"])
        .arg(&bin)
        .arg(&src)
        .env("GO111MODULE", "off")
        .env("GOPATH", GOPATH)
        .env("GOCACHE", tmp.join("cache"))
        .env("GOFLAGS", "")
        .output()
        .map_err(|e| format!("go build: {e}"))?;
    assert!(
        out.status.success(),
        "go build failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(bin)
}

/// Runs the Go program on `(kind, input)` pairs; its answers in order.
fn ask_go(bin: &Path, cases: &[(&str, Vec<u8>)]) -> Vec<(String, Vec<u8>, String)> {
    let mut child = Command::new(bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        for (k, v) in cases {
            writeln!(stdin, "{k}\t{}", hex(v)).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let mut f = l.splitn(3, '\t');
            let k = f.next().unwrap().to_string();
            let i = unhex(f.next().unwrap());
            (k, i, f.next().unwrap_or("").to_string())
        })
        .collect()
}

fn ours(kind: &str, input: &[u8]) -> String {
    let s = std::str::from_utf8(input).unwrap_or("");
    let err = |e: String| format!("err {}", go::quote(&e));
    match kind {
        "quote" => go::quote_bytes(input),
        "g" | "v" => go::format_g(f64::from_bits(u64::from_str_radix(s, 16).unwrap())),
        "model_duration" => time::format_duration_ms(s.parse().unwrap()),
        "go_duration" => time::format_go_duration_ms(s.parse().unwrap()),
        "parse_model_duration" => match time::parse_duration(s) {
            Ok(d) => d.as_millis().to_string(),
            Err(e) => err(e),
        },
        "parse_go_duration" => match time::parse_go_duration(s) {
            Ok(d) => d.as_nanos().to_string(),
            Err(e) => err(e),
        },
        "label_name" => valid_label_name(s).to_string(),
        "metric_name" => valid_metric_name(s).to_string(),
        other => panic!("unknown kind {other}"),
    }
}

fn cases() -> Vec<(&'static str, Vec<u8>)> {
    let mut c: Vec<(&str, Vec<u8>)> = Vec::new();
    let quote: &[&[u8]] = &[
        b"",
        b"plain",
        b"a\"b\\c",
        b"line\nbreak\ttab\rcr",
        b"\x07\x08\x0c\x0b\x00\x1f\x7f",
        b"# : {}",
        "é ü 日本 😀".as_bytes(),
        "\u{a0}nbsp \u{2007} \u{202f} \u{3000} \u{2028} \u{2029} \u{1680}".as_bytes(),
        "\u{ad}shy \u{200b}zw \u{200d} \u{feff}bom \u{2066} \u{e0001} \u{110bd}".as_bytes(),
        "\u{85}nel \u{9f} \u{e000}pua \u{f0000} \u{fdd0} \u{fffe} \u{1fffe}".as_bytes(),
        "\u{300}combining a\u{301}".as_bytes(),
        b"invalid \xff \xc3 \xe2\x82 utf-8",
    ];
    for q in quote {
        c.push(("quote", q.to_vec()));
    }
    let floats = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.1,
        1e6,
        123456.0,
        999999.0,
        1234567.0,
        0.0001,
        0.00001,
        1e-5,
        1.7e9,
        1.7953159496679754e9,
        -2.5,
        1e21,
        1e20,
        123456789012345680000.0,
        5e-324,
        f64::MAX,
        f64::MIN_POSITIVE,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        99999.9,
        0.30000000000000004,
        1.0 / 3.0,
        2f64.powi(53),
        -123.456e-7,
    ];
    for f in floats {
        let bits = format!("{:x}", f64::to_bits(f)).into_bytes();
        c.push(("g", bits.clone()));
        c.push(("v", bits));
    }
    let ms: &[i64] = &[
        0,
        1,
        500,
        1000,
        1500,
        59_999,
        60_000,
        90_000,
        300_000,
        3_600_000,
        5_400_000,
        86_400_000,
        7 * 86_400_000,
        8 * 86_400_000,
        14 * 86_400_000,
        90 * 86_400_000,
        365 * 86_400_000,
        366 * 86_400_000,
        372 * 86_400_000,
        2 * 365 * 86_400_000 + 1,
        -60_000,
        -1500,
        i64::MAX / 1_000_000,
    ];
    for m in ms {
        c.push(("model_duration", m.to_string().into_bytes()));
        c.push(("go_duration", m.to_string().into_bytes()));
    }
    let model_parse = [
        "0",
        "",
        "1m",
        "1h30m",
        "500ms",
        "2d",
        "1w",
        "1y",
        "1y2w3d4h5m6s7ms",
        "90s",
        "0s",
        "00m",
        "5x",
        "m",
        "1m1h",
        "200y200y",
        "1.5h",
        " 1m",
        "1m ",
        "-1m",
        "1M",
        "106751d",
        "106752d",
        "292y",
        "293y",
        "99999999999999h",
        "9223372036854775807s",
        "340282366920938463463374607431768211455y",
    ];
    for s in model_parse {
        c.push(("parse_model_duration", s.as_bytes().to_vec()));
    }
    let go_parse = [
        "0",
        "1s",
        "1.5s",
        "500ms",
        "1m30s",
        "2h45m",
        "1h1m1h",
        ".5s",
        "5.s",
        "300us",
        "300µs",
        "10ns",
        "+5s",
        "1.0000000001s",
        "2562047h",
        "2562048h",
        "1d",
        "abc",
        "",
        "5",
        ".s",
        "1.5.5s",
    ];
    for s in go_parse {
        c.push(("parse_go_duration", s.as_bytes().to_vec()));
    }
    let names = [
        "", "a", "_", "__name__", "abc", "1abc", "a1", "a-b", "a:b", ":a", "a.b", "é", "A_Z09",
        "_1", " a",
    ];
    for n in names {
        c.push(("label_name", n.as_bytes().to_vec()));
        c.push(("metric_name", n.as_bytes().to_vec()));
    }
    c
}

#[test]
fn compatibility_rules_match_go() {
    let bin = match build() {
        Ok(b) => b,
        Err(why) => {
            eprintln!("SKIPPED go_compat: {why}");
            return;
        }
    };
    let cases = cases();
    let answers = ask_go(&bin, &cases);
    assert_eq!(answers.len(), cases.len(), "one answer per case");
    let mut bad = Vec::new();
    for ((kind, input), (gk, gi, want)) in cases.iter().zip(&answers) {
        assert_eq!((kind, input), (&gk.as_str(), gi));
        let got = ours(kind, input);
        if got != *want {
            bad.push(format!(
                "{kind} {}: go {want} / ours {got}",
                go::quote_bytes(input)
            ));
        }
    }
    assert!(bad.is_empty(), "differences from Go:\n{}", bad.join("\n"));
}
