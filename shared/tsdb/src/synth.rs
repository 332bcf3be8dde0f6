//! Synthetic probe history for the side-by-side tests and the benchmark: what `argus`
//! would have stored for N blackbox targets, as OpenMetrics text that both
//! `promtool tsdb create-blocks-from openmetrics` and [`crate::import_openmetrics`] read.
//! Deterministic (a fixed-seed splitmix64), with per-target scrape offsets and a few
//! milliseconds of jitter like real scrapes, outages of 30 minutes now and then.

use std::io::{self, Write};

#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub targets: usize,
    /// First scrape (unix seconds).
    pub start_s: i64,
    pub duration_s: i64,
    pub step_s: i64,
}

/// The histogram's bucket bounds (seconds).
pub const BUCKETS: [f64; 5] = [0.05, 0.1, 0.25, 0.5, 1.0];

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

pub fn instance(i: usize) -> String {
    format!("https://site-{i:03}.example.com/")
}

impl Spec {
    pub fn scrapes(&self) -> i64 {
        self.duration_s / self.step_s
    }

    /// Samples the file holds: per target 3 gauges and a histogram of 5 buckets + Inf,
    /// sum and count.
    pub fn samples(&self) -> u64 {
        self.targets as u64 * 11 * self.scrapes() as u64
    }

    fn ts_ms(&self, t: usize, k: i64) -> i64 {
        let base = (self.start_s + k * self.step_s) * 1000 + (t as i64 * 7919) % 1000;
        base + (mix((t as u64) << 32 | k as u64) % 5) as i64
    }

    fn up(&self, t: usize, k: i64) -> bool {
        let slot = (k * self.step_s) / 1800;
        !mix(((t as u64) << 40) ^ slot as u64 ^ 0xD0D0).is_multiple_of(25)
    }

    fn duration(&self, t: usize, k: i64) -> f64 {
        let u = unit(mix(((t as u64) << 36) ^ k as u64 ^ 0xABCD));
        0.02 + u * u * 0.6 + t as f64 * 0.001
    }

    /// Writes the OpenMetrics text (families one after another, `# EOF` last).
    pub fn write(&self, w: &mut impl Write) -> io::Result<()> {
        self.write_scrapes(w, 0, self.scrapes())
    }

    /// Writes only scrapes `k0..k1` (counters still count from the first scrape), so a
    /// long history can be split into files that `promtool` reads in one pass each.
    pub fn write_scrapes(&self, w: &mut impl Write, k0: i64, k1: i64) -> io::Result<()> {
        let ts = |ms: i64| format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000));
        let lbl = |t: usize| format!("instance=\"{}\",job=\"blackbox\"", instance(t));
        writeln!(
            w,
            "# HELP probe_success Displays whether or not the probe was a success"
        )?;
        writeln!(w, "# TYPE probe_success gauge")?;
        for t in 0..self.targets {
            let l = lbl(t);
            for k in k0..k1 {
                let v = if self.up(t, k) { 1 } else { 0 };
                writeln!(w, "probe_success{{{l}}} {v} {}", ts(self.ts_ms(t, k)))?;
            }
        }
        writeln!(
            w,
            "# HELP probe_duration_seconds Returns how long the probe took to complete in seconds"
        )?;
        writeln!(w, "# TYPE probe_duration_seconds gauge")?;
        for t in 0..self.targets {
            let l = lbl(t);
            for k in k0..k1 {
                let v = self.duration(t, k);
                writeln!(
                    w,
                    "probe_duration_seconds{{{l}}} {v} {}",
                    ts(self.ts_ms(t, k))
                )?;
            }
        }
        writeln!(w, "# HELP probe_http_status_code Response HTTP status code")?;
        writeln!(w, "# TYPE probe_http_status_code gauge")?;
        for t in 0..self.targets {
            let l = lbl(t);
            for k in k0..k1 {
                let v = if self.up(t, k) { 200 } else { 503 };
                writeln!(
                    w,
                    "probe_http_status_code{{{l}}} {v} {}",
                    ts(self.ts_ms(t, k))
                )?;
            }
        }
        writeln!(
            w,
            "# HELP probe_http_duration_seconds Duration of HTTP probes"
        )?;
        writeln!(w, "# TYPE probe_http_duration_seconds histogram")?;
        for t in 0..self.targets {
            let l = lbl(t);
            let mut counts = [0u64; 6];
            let mut sum = 0.0f64;
            let mut lines: [Vec<String>; 8] = Default::default();
            for k in 0..k1 {
                let d = self.duration(t, k);
                for (i, b) in BUCKETS.iter().enumerate() {
                    if d <= *b {
                        counts[i] += 1;
                    }
                }
                counts[5] += 1;
                sum += d;
                if k < k0 {
                    continue;
                }
                let at = ts(self.ts_ms(t, k));
                for (i, c) in counts.iter().enumerate() {
                    let le = if i < 5 {
                        BUCKETS[i].to_string()
                    } else {
                        "+Inf".into()
                    };
                    lines[i].push(format!(
                        "probe_http_duration_seconds_bucket{{{l},le=\"{le}\"}} {c} {at}"
                    ));
                }
                lines[6].push(format!("probe_http_duration_seconds_sum{{{l}}} {sum} {at}"));
                lines[7].push(format!(
                    "probe_http_duration_seconds_count{{{l}}} {} {at}",
                    counts[5]
                ));
            }
            for group in lines {
                for s in group {
                    writeln!(w, "{s}")?;
                }
            }
        }
        writeln!(w, "# EOF")
    }
}
