//! Throughput of the text parser, text writer, protobuf codec and series flattening on
//! a Pushgateway-sized exposition (GROUPS groups × 50 series, as `GET /metrics` of a
//! gateway holding that many groups). Release build:
//! `cargo run --release -p argus-expfmt --example bench_expfmt [GROUPS]`.
//! For reference it also times the Go parser on the same text (`promtool check
//! metrics`, which parses with expfmt.TextParser and then lints).

use argus_expfmt::*;
use std::time::Instant;

fn main() {
    let groups: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let mut text = String::new();
    // 5 families × 10 series per group, job/instance labels like a pushed group.
    for f in 0..5 {
        text.push_str(&format!(
            "# HELP bench_metric_{f} A benchmark gauge.\n# TYPE bench_metric_{f} gauge\n"
        ));
        for g in 0..groups {
            for s in 0..10 {
                text.push_str(&format!(
                    "bench_metric_{f}{{instance=\"host-{g}.example.com:9100\",job=\"batch\",series=\"s{s}\"}} {}\n",
                    (g * 10 + s) as f64 * 1.25e-3 + 1e6
                ));
            }
        }
    }
    let mb = text.len() as f64 / 1e6;
    let series_n = groups * 50;
    println!("input: {groups} groups × 50 series = {series_n} series, {mb:.1} MB of text");

    let t = Instant::now();
    let fams = parse_text(&text).expect("parses");
    let parse = t.elapsed().as_secs_f64();
    println!(
        "parse_text        {:8.1} ms  {:7.1} MB/s  {:6.2} M series/s",
        parse * 1e3,
        mb / parse,
        series_n as f64 / parse / 1e6
    );

    let t = Instant::now();
    let out = write_text(&fams);
    let write = t.elapsed().as_secs_f64();
    println!(
        "write_text        {:8.1} ms  {:7.1} MB/s",
        write * 1e3,
        out.len() as f64 / 1e6 / write
    );

    let t = Instant::now();
    let bytes = encode_delimited(&fams);
    let enc = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let back = decode_delimited(&bytes).expect("decodes");
    let dec = t.elapsed().as_secs_f64();
    assert_eq!(back.len(), fams.len());
    println!(
        "encode_delimited  {:8.1} ms  ({:.1} MB protobuf)",
        enc * 1e3,
        bytes.len() as f64 / 1e6
    );
    println!("decode_delimited  {:8.1} ms", dec * 1e3);

    let t = Instant::now();
    let n: usize = fams.iter().map(|f| series(f).len()).sum();
    let ser = t.elapsed().as_secs_f64();
    println!("series            {:8.1} ms  ({n} samples)", ser * 1e3);

    // Go's parser on the same input, for scale (parse + lint; start-up included).
    let path = std::env::temp_dir().join("argus-bench-expfmt.txt");
    if std::fs::write(&path, &text).is_ok() {
        let t = Instant::now();
        let ok = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::fs::File::open(&path).expect("temp file"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok();
        let go = t.elapsed().as_secs_f64();
        if ok {
            println!(
                "promtool check metrics (Go TextParser + lint) {:8.1} ms  → parse_text is {:.1}× faster",
                go * 1e3,
                go / parse
            );
        }
        let _ = std::fs::remove_file(&path);
    }
}
