//! Benchmark: a large generated `promtool test rules` file timed under the real promtool
//! and under argus-rules' runner in the same run, plus evaluator time and memory per
//! tick for 10,000 series × 100 rules.
//!
//! ```text
//! cargo run --release -p argus-rules --example bench_rules
//! BENCH_FAMILIES=20 BENCH_INSTANCES=100 BENCH_HOURS=24 cargo run --release -p argus-rules --example bench_rules
//! ```

use argus_model::Labels;
use argus_promql::MemStorage;
use argus_rules::{eval_group, parse_rule_file, EvalOptions, GroupState};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Rules per metric family: 2 recording rules and 8 alerting rules.
fn rules_yaml(families: usize) -> String {
    let mut y = String::from("groups:\n");
    for k in 0..families {
        let _ = write!(
            y,
            r#"  - name: family{k}
    rules:
      - record: instance:bench_requests:rate5m_{k}
        expr: rate(bench_requests_total_{k}[5m])
      - record: job:bench_requests:rate5m_{k}
        expr: sum by (job) (instance:bench_requests:rate5m_{k})
      - alert: HighRate{k}
        expr: job:bench_requests:rate5m_{k} > 20
        for: 5m
        labels: {{severity: page}}
        annotations:
          summary: "{{{{ $labels.job }}}} at {{{{ humanize $value }}}} req/s"
      - alert: InstanceHot{k}
        expr: instance:bench_requests:rate5m_{k} > 1.5
        for: 10m
        annotations:
          summary: "{{{{ $labels.instance }}}} at {{{{ printf \"%.2f\" $value }}}}"
      - alert: GaugeHigh{k}
        expr: bench_gauge_{k} > 90
        for: 2m
        annotations:
          summary: "{{{{ $labels.instance }}}} gauge {{{{ $value }}}}"
      - alert: GaugeLow{k}
        expr: bench_gauge_{k} < 5
      - alert: GaugeAvgHigh{k}
        expr: avg by (job) (bench_gauge_{k}) > 60
        for: 15m
      - alert: Absent{k}
        expr: absent(bench_gauge_{k}{{instance="missing"}})
        for: 30m
      - alert: MaxOverTime{k}
        expr: max_over_time(bench_gauge_{k}[10m]) > 98
      - alert: Ratio{k}
        expr: sum by (job) (rate(bench_requests_total_{k}{{code="500"}}[5m])) / sum by (job) (rate(bench_requests_total_{k}[5m])) > 0.5
"#
        );
    }
    y
}

fn test_yaml(families: usize, instances: usize, hours: usize) -> String {
    let steps = hours * 60;
    let mut y = String::from("rule_files: [bench_rules.yml]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n");
    for k in 0..families {
        for i in 0..instances {
            let job = i % 10;
            let code = if i % 7 == 0 { "500" } else { "200" };
            // Counters with different slopes, gauges as saw-tooth runs.
            let _ = writeln!(
                y,
                "      - series: 'bench_requests_total_{k}{{job=\"j{job}\",instance=\"i{i}\",code=\"{code}\"}}'\n        values: '0+{}x{steps}'",
                (i % 5) * 30 + 10
            );
            let base = (i * 7 + k * 3) % 100;
            let mut vals = String::new();
            let mut left = steps + 1;
            let mut v = base;
            while left > 0 {
                let run = left.min(60);
                let _ = write!(vals, "{v}+0x{} ", run - 1);
                left -= run;
                v = (v + 37) % 100;
            }
            let _ = writeln!(y, "      - series: 'bench_gauge_{k}{{job=\"j{job}\",instance=\"i{i}\"}}'\n        values: '{}'", vals.trim());
        }
    }
    y.push_str("    alert_rule_test:\n");
    for h in (1..=hours).step_by(6.max(hours / 4).min(hours)) {
        let _ = writeln!(y, "      - eval_time: {h}h\n        alertname: NoSuchAlert");
    }
    let _ = writeln!(
        y,
        "      - eval_time: {hours}h\n        alertname: NoSuchAlert"
    );
    y.push_str("    promql_expr_test:\n");
    let _ = writeln!(y, "      - expr: count(ALERTS) >= 0\n        eval_time: {hours}h\n        exp_samples:\n          - labels: '{{}}'\n            value: -1");
    y
}

/// (user + system) CPU seconds of this process, from /proc/self/stat.
fn cpu_self() -> f64 {
    stat_fields("/proc/self/stat")
        .map(|f| (f[13] + f[14]) as f64 / 100.0)
        .unwrap_or(0.0)
}

/// Fields of a /proc stat file after the command name (1-based field n is `f[n-1]`,
/// numeric fields only meaningful from field 4 on).
fn stat_fields(path: &str) -> Option<Vec<u64>> {
    let s = std::fs::read_to_string(path).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let mut v = vec![0, 0];
    v.extend(
        rest.split_whitespace()
            .map(|x| x.parse::<u64>().unwrap_or(0)),
    );
    Some(v)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn side_by_side(dir: &Path) {
    let families = env("BENCH_FAMILIES", 10);
    let instances = env("BENCH_INSTANCES", 50);
    let hours = env("BENCH_HOURS", 24);
    std::fs::write(dir.join("bench_rules.yml"), rules_yaml(families)).expect("write rules");
    let test = dir.join("bench.test.yml");
    std::fs::write(&test, test_yaml(families, instances, hours)).expect("write test");
    println!(
        "promtool test file: {} series, {} rules, {} h at 1m ({} evaluations per rule)",
        families * instances * 2,
        families * 10,
        hours,
        hours * 60 + 1
    );

    let t = Instant::now();
    let c0 = cpu_self();
    let mut ours_out = Vec::new();
    let ours_ok = argus_rules::run_files(std::slice::from_ref(&test), &mut ours_out);
    let ours = t.elapsed().as_secs_f64();
    let ours_cpu = cpu_self() - c0;
    let verdict = |ok: bool| if ok { "pass" } else { "fail" };
    println!(
        "argus-rules runner: {ours:.2} s wall, {ours_cpu:.2} s CPU (verdict: {})",
        verdict(ours_ok)
    );
    if std::env::var("BENCH_SKIP_PROMTOOL").is_ok() {
        return;
    }

    let promtool = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".into());
    // A shell runs promtool and then prints its own /proc stat: cutime + cstime are the
    // CPU seconds of the waited-for child (promtool, all its threads).
    let script = format!(
        "{promtool} test rules '{}'; cat /proc/$$/stat >&2",
        test.display()
    );
    let t = Instant::now();
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("run promtool");
    let theirs = t.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let stat_line = stderr.lines().last().unwrap_or("").to_string();
    let their_cpu = stat_line
        .rfind(')')
        .map(|i| {
            let mut f = vec![0u64, 0];
            f.extend(
                stat_line[i + 2..]
                    .split_whitespace()
                    .map(|x| x.parse::<u64>().unwrap_or(0)),
            );
            (f[15] + f[16]) as f64 / 100.0
        })
        .unwrap_or(0.0);
    let their_text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr);
    let their_ok = !their_text.contains("FAILED");
    println!(
        "promtool 2.42:      {theirs:.2} s wall, {their_cpu:.2} s CPU (verdict: {})",
        verdict(their_ok)
    );
    println!(
        "ratio promtool/argus: {:.2}x wall, {:.2}x CPU",
        theirs / ours,
        their_cpu / ours_cpu
    );
    let got = |s: &str| {
        s.lines()
            .find(|l| l.trim_start().starts_with("got:"))
            .map(|l| l.trim().to_string())
    };
    let ours_text = String::from_utf8_lossy(&ours_out).to_string();
    println!(
        "count(ALERTS) at the end: promtool {:?}, argus {:?}",
        got(&their_text).unwrap_or_default(),
        got(&ours_text).unwrap_or_default()
    );
    if ours_ok != their_ok {
        println!("VERDICTS DIFFER\n--- promtool\n{their_text}\n--- argus\n{ours_text}");
    }
}

fn per_tick() {
    // 10,000 series × 100 rules (10 families of the rules above over 500 instances × 2).
    let families = 10;
    let instances = 500;
    let group_yaml = rules_yaml(families);
    let file = parse_rule_file("bench_rules.yml", &group_yaml).expect("rules");
    let before = rss_kib();
    let mut store = MemStorage::new();
    let ticks = 30i64;
    let mut states: Vec<GroupState> = file.groups.iter().map(|_| GroupState::default()).collect();
    let opts = EvalOptions::default();
    let mut per_tick = Vec::new();
    for t in 0..ticks {
        let ts = t * 60_000;
        for k in 0..families {
            for i in 0..instances {
                let job = format!("j{}", i % 10);
                let inst = format!("i{i}");
                let code = if i % 7 == 0 { "500" } else { "200" };
                let c = Labels::from_pairs([
                    ("__name__", format!("bench_requests_total_{k}")),
                    ("job", job.clone()),
                    ("instance", inst.clone()),
                    ("code", code.to_string()),
                ]);
                store
                    .append(c, ts, (t * ((i as i64 % 5) * 30 + 10)) as f64)
                    .expect("append");
                let g = Labels::from_pairs([
                    ("__name__", format!("bench_gauge_{k}")),
                    ("job", job),
                    ("instance", inst),
                ]);
                store
                    .append(g, ts, ((i * 7 + k * 3 + t as usize) % 100) as f64)
                    .expect("append");
            }
        }
        let start = Instant::now();
        for (g, st) in file.groups.iter().zip(states.iter_mut()) {
            eval_group(g, st, ts, &mut store, &opts).expect("eval");
        }
        per_tick.push(start.elapsed().as_secs_f64());
    }
    let after = rss_kib();
    per_tick.sort_by(|a, b| a.total_cmp(b));
    let median = per_tick[per_tick.len() / 2];
    println!(
        "evaluator: 10000 input series ({} with recorded and ALERTS series) x {} rules: median {:.1} ms per tick (max {:.1} ms); RSS growth {:.1} MiB for {} ticks of samples ({} samples)",
        store.series_count(),
        families * 10,
        median * 1000.0,
        per_tick.last().copied().unwrap_or(0.0) * 1000.0,
        (after.saturating_sub(before)) as f64 / 1024.0,
        ticks,
        store.sample_count()
    );
}

fn main() {
    // The per-tick figures first, so their RSS growth is not hidden by memory the
    // allocator kept from the side-by-side run.
    if std::env::var("BENCH_SKIP_TICK").is_err() {
        per_tick();
    }
    if std::env::var("BENCH_SKIP_SIDE").is_ok() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("argus-bench-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    side_by_side(&dir);
    let _ = std::fs::remove_dir_all(&dir);
}
