//! Go duration printing, as promtool's messages use it.

/// Prometheus' `model.Duration.String()`: `5m`, `1h30m`, `0s`, `1w`, `90d` (years and
/// weeks only when exact).
pub fn model_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut ms = ms;
    let mut r = String::new();
    if ms < 0 {
        r.push('-');
        ms = -ms;
    }
    for (unit, mult, exact) in [
        ("y", 1000 * 60 * 60 * 24 * 365i64, true),
        ("w", 1000 * 60 * 60 * 24 * 7, true),
        ("d", 1000 * 60 * 60 * 24, false),
        ("h", 1000 * 60 * 60, false),
        ("m", 1000 * 60, false),
        ("s", 1000, false),
        ("ms", 1, false),
    ] {
        if exact && ms % mult != 0 {
            continue;
        }
        let v = ms / mult;
        if v > 0 {
            r.push_str(&format!("{v}{unit}"));
            ms -= v * mult;
        }
    }
    r
}

/// Go's `time.Duration.String()` for a millisecond duration: `5m0s`, `1h0m0s`, `1.5s`,
/// `500ms`, `0s`.
pub fn go_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let neg = ms < 0;
    let u = ms.unsigned_abs();
    let sign = if neg { "-" } else { "" };
    if u < 1000 {
        return format!("{sign}{u}ms");
    }
    let h = u / 3_600_000;
    let m = (u / 60_000) % 60;
    let s = (u / 1000) % 60;
    let frac = u % 1000;
    let secs = if frac == 0 {
        format!("{s}s")
    } else {
        let f = format!("{frac:03}");
        format!("{s}.{}s", f.trim_end_matches('0'))
    };
    if h > 0 {
        format!("{sign}{h}h{m}m{secs}")
    } else if m > 0 {
        format!("{sign}{m}m{secs}")
    } else {
        format!("{sign}{secs}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_go() {
        assert_eq!(model_duration(0), "0s");
        assert_eq!(model_duration(300_000), "5m");
        assert_eq!(model_duration(5_400_000), "1h30m");
        assert_eq!(model_duration(7 * 86_400_000), "1w");
        assert_eq!(model_duration(8 * 86_400_000), "8d");
        assert_eq!(model_duration(1500), "1s500ms");
        assert_eq!(go_duration(300_000), "5m0s");
        assert_eq!(go_duration(3_600_000), "1h0m0s");
        assert_eq!(go_duration(1500), "1.5s");
        assert_eq!(go_duration(500), "500ms");
        assert_eq!(go_duration(0), "0s");
    }
}
