//! Evaluator benchmark: 10,000 series × 100 typical alert expressions per tick.
//!
//! cargo run -p argus-promql --release --example bench_promql
//!
//! Prints the time and heap per tick of this engine, then evaluates the same 100
//! expressions on the same data with the real `promtool test rules` (Prometheus 2.42)
//! and prints both and the ratio. promtool is timed twice, with and without the
//! expression tests, so its data loading is subtracted.

use argus_model::Labels;
use argus_promql::{format_value, parse, Engine, Expr, MemStorage, Value};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

struct Counting;
static CUR: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        let c = CUR.fetch_add(l.size(), Relaxed) + l.size();
        PEAK.fetch_max(c, Relaxed);
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        CUR.fetch_sub(l.size(), Relaxed);
    }
}

#[global_allocator]
static A: Counting = Counting;

const MIN: i64 = 60_000;
const TICKS_LOADED: i64 = 20; // minutes of history before the measured ticks
const LE: [&str; 8] = ["0.005", "0.01", "0.05", "0.1", "0.5", "1", "5", "+Inf"];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn f(&mut self) -> f64 {
        (self.next() % 10_000) as f64 / 10_000.0
    }
}

/// 10,000 series: up (1000), http_requests_total (3000), duration buckets (4000),
/// probe_duration_seconds (1000), memory gauges (1000).
fn series() -> Vec<(Labels, u8)> {
    let mut out = Vec::new();
    for i in 0..1000 {
        let job = format!("job{}", i % 10);
        let inst = format!("host{i}:9100");
        out.push((
            Labels::from_pairs([
                ("__name__", "up"),
                ("job", job.as_str()),
                ("instance", inst.as_str()),
            ]),
            0,
        ));
        for code in ["200", "404", "500"] {
            out.push((
                Labels::from_pairs([
                    ("__name__", "http_requests_total"),
                    ("job", job.as_str()),
                    ("instance", inst.as_str()),
                    ("code", code),
                ]),
                1,
            ));
        }
        if i < 500 {
            for (k, le) in LE.iter().enumerate() {
                out.push((
                    Labels::from_pairs([
                        ("__name__", "http_request_duration_seconds_bucket"),
                        ("job", job.as_str()),
                        ("instance", inst.as_str()),
                        ("le", le),
                    ]),
                    10 + k as u8,
                ));
            }
        }
        out.push((
            Labels::from_pairs([
                ("__name__", "probe_duration_seconds"),
                ("job", "blackbox"),
                ("instance", inst.as_str()),
            ]),
            2,
        ));
        out.push((
            Labels::from_pairs([
                (
                    "__name__",
                    if i % 2 == 0 {
                        "node_memory_free_bytes"
                    } else {
                        "node_memory_total_bytes"
                    },
                ),
                ("instance", format!("host{}:9100", i / 2).as_str()),
            ]),
            3,
        ));
    }
    out
}

fn value(kind: u8, t: i64, r: &mut Rng) -> f64 {
    let m = t / MIN;
    match kind {
        0 => {
            if r.next().is_multiple_of(50) {
                0.0
            } else {
                1.0
            }
        }
        1 => (m * 100) as f64 + (r.next() % 50) as f64,
        2 => r.f() * 3.0,
        3 => 1e9 + r.f() * 1e9,
        k => ((k - 9) as i64 * m * 10) as f64,
    }
}

fn exprs() -> Vec<String> {
    let mut v = Vec::new();
    for j in 0..10 {
        v.push(format!("up{{job=\"job{j}\"}} == 0"));
        v.push(format!("sum by (job) (rate(http_requests_total{{job=\"job{j}\", code=\"500\"}}[5m])) / sum by (job) (rate(http_requests_total{{job=\"job{j}\"}}[5m])) > 0.05"));
        v.push(format!("histogram_quantile(0.99, sum by (le, job) (rate(http_request_duration_seconds_bucket{{job=\"job{j}\"}}[5m]))) > 1"));
        v.push(format!("avg_over_time(up{{job=\"job{j}\"}}[5m]) < 0.9"));
        v.push(format!(
            "absent(up{{job=\"job{j}\", instance=\"missing\"}})"
        ));
        v.push(format!(
            "increase(http_requests_total{{job=\"job{j}\", code=\"404\"}}[5m]) > {}",
            400 + j
        ));
        v.push(format!("count by (job) (up{{job=\"job{j}\"}} == 0) > 2"));
        v.push(format!(
            "probe_duration_seconds{{instance=~\"host{j}.*\"}} > 2.5"
        ));
        v.push(format!(
            "max_over_time(probe_duration_seconds{{instance=~\"host.*{j}:9100\"}}[5m]) > 2.9"
        ));
        v.push(format!(
            "node_memory_free_bytes / ignoring(__name__) node_memory_total_bytes < {}",
            0.5 + j as f64 / 100.0
        ));
    }
    v
}

fn main() {
    let series = series();
    assert_eq!(series.len(), 10_000);
    let texts = exprs();
    assert_eq!(texts.len(), 100);
    let parsed: Vec<Expr> = texts
        .iter()
        .map(|e| parse(e).unwrap_or_else(|err| panic!("{e}: {err}")))
        .collect();

    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut st = MemStorage::new();
    let mut values: Vec<Vec<f64>> = vec![Vec::new(); series.len()];
    for m in 0..=TICKS_LOADED {
        for (i, (l, kind)) in series.iter().enumerate() {
            let v = value(*kind, m * MIN, &mut rng);
            values[i].push(v);
            st.append(l.clone(), m * MIN, v).unwrap();
        }
    }
    let engine = Engine::new();
    let base_heap = CUR.load(Relaxed);

    // Measured ticks: append a scrape, evaluate all rules, drop old samples (as the evaluator).
    let ticks = 20;
    let mut eval_ns = Vec::new();
    let mut tick_peak = 0usize;
    let mut results = 0usize;
    for k in 1..=ticks {
        let t = (TICKS_LOADED + k) * MIN;
        for (l, kind) in &series {
            st.append(l.clone(), t, value(*kind, t, &mut rng)).unwrap();
        }
        st.truncate_before(t - 15 * MIN);
        PEAK.store(CUR.load(Relaxed), Relaxed);
        let before = CUR.load(Relaxed);
        let start = Instant::now();
        for e in &parsed {
            match engine.instant(e, t, &st).unwrap() {
                Value::Vector(v) => results += v.len(),
                _ => unreachable!(),
            }
        }
        eval_ns.push(start.elapsed().as_nanos() as f64);
        tick_peak = tick_peak.max(PEAK.load(Relaxed) - before);
    }
    eval_ns.sort_by(f64::total_cmp);
    let median_ms = eval_ns[eval_ns.len() / 2] / 1e6;
    let p90_ms = eval_ns[eval_ns.len() * 9 / 10] / 1e6;
    println!(
        "argus-promql: 10,000 series x 100 rules, window 15m at 1m ({} samples held)",
        st.sample_count()
    );
    println!(
        "  evaluation per tick: median {median_ms:.1} ms, p90 {p90_ms:.1} ms ({:.0} us per rule)",
        median_ms * 10.0
    );
    println!(
        "  heap: storage {:.1} MiB, transient peak per tick {:.1} MiB",
        base_heap as f64 / 1048576.0,
        tick_peak as f64 / 1048576.0
    );
    println!("  ({results} result samples over {ticks} ticks)");

    // The same expressions under the real promtool.
    let Some(promtool) = find("promtool") else {
        println!("promtool not found: skipping the comparison");
        return;
    };
    let dir = std::env::temp_dir().join(format!("argus-bench-promql-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let eval_minutes: Vec<i64> = (TICKS_LOADED - 4..=TICKS_LOADED).collect();
    let mut input = String::from("tests:\n  - interval: 1m\n    input_series:\n");
    for (i, (l, _)) in series.iter().enumerate() {
        let vals: Vec<String> = values[i].iter().map(|v| format_value(*v)).collect();
        input.push_str(&format!(
            "      - series: '{l}'\n        values: '{}'\n",
            vals.join(" ")
        ));
    }
    // Replay exactly the loaded history in a fresh storage for expectations.
    let mut st2 = MemStorage::new();
    for (i, (l, _)) in series.iter().enumerate() {
        for (m, v) in values[i].iter().enumerate() {
            st2.append(l.clone(), m as i64 * MIN, *v).unwrap();
        }
    }
    let mut with_tests = input.clone();
    with_tests.push_str("    promql_expr_test:\n");
    let mut ours_ns = 0u128;
    for (e, p) in texts.iter().zip(&parsed) {
        for &m in &eval_minutes {
            // count() keeps promtool's output small; it is negligible next to the rule.
            let wrapped = parse(&format!("count({e})")).unwrap();
            let s = Instant::now();
            let _ = engine.instant(p, m * MIN, &st2).unwrap();
            ours_ns += s.elapsed().as_nanos();
            let exp = match engine.instant(&wrapped, m * MIN, &st2).unwrap() {
                Value::Vector(v) => v,
                _ => unreachable!(),
            };
            with_tests.push_str(&format!(
                "      - expr: 'count({e})'\n        eval_time: {m}m\n",
                e = e.replace('\'', "''")
            ));
            if exp.is_empty() {
                with_tests.push_str("        exp_samples: []\n");
            } else {
                with_tests.push_str(&format!(
                    "        exp_samples:\n          - labels: '{{}}'\n            value: {}\n",
                    format_value(exp[0].value)
                ));
            }
        }
    }
    let mut without = input;
    without.push_str("    promql_expr_test:\n      - expr: '1'\n        eval_time: 0m\n        exp_samples:\n          - labels: '{}'\n            value: 1\n");
    let fa = dir.join("with.yml");
    let fb = dir.join("load_only.yml");
    std::fs::write(&fa, with_tests).unwrap();
    std::fs::write(&fb, without).unwrap();
    let time = |f: &std::path::Path| {
        let s = Instant::now();
        let out = std::process::Command::new(&promtool)
            .args(["test", "rules"])
            .arg(f)
            .output()
            .unwrap();
        let el = s.elapsed().as_secs_f64();
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout);
            panic!(
                "promtool disagrees on {}:\n{}",
                f.display(),
                &text[..text.len().min(3000)]
            );
        }
        el
    };
    let n = (texts.len() * eval_minutes.len()) as f64;
    let mut best_with = f64::MAX;
    let mut best_load = f64::MAX;
    for _ in 0..3 {
        best_with = best_with.min(time(&fa));
        best_load = best_load.min(time(&fb));
    }
    let prom_ms_per_tick = (best_with - best_load) / n * 100.0 * 1000.0;
    let ours_ms_per_tick = ours_ns as f64 / n * 100.0 / 1e6;
    println!("promtool test rules (Prometheus 2.42), same data, same 100 expressions x {} eval times (all pass):", eval_minutes.len());
    println!("  load only {best_load:.2} s, load + expressions {best_with:.2} s");
    println!("  evaluation per tick of 100 rules: promtool {prom_ms_per_tick:.1} ms, argus {ours_ms_per_tick:.1} ms, ratio {:.1}x", prom_ms_per_tick / ours_ms_per_tick);
    let _ = std::fs::remove_dir_all(&dir);
}

fn find(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}
