//! Time as a value. Domain code receives `now` as a parameter; only the edges read a clock.

use chrono::{DateTime, TimeZone, Utc};

/// Unix time in milliseconds (Prometheus' sample timestamp unit).
pub type Millis = i64;

/// Unix time in whole seconds: the unit of a store item's expiry (DynamoDB's TTL
/// attribute), kept apart from [`Millis`] by its type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixSecs(pub i64);

impl UnixSecs {
    /// The second `ms` falls in (rounded down, also before 1970).
    pub fn floor(ms: Millis) -> UnixSecs {
        UnixSecs(ms.div_euclid(1000))
    }

    /// The first whole second at or after `ms`.
    pub fn ceil(ms: Millis) -> UnixSecs {
        UnixSecs(ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0))
    }

    /// This second plus a duration (whole seconds, saturating).
    pub fn plus(self, d: std::time::Duration) -> UnixSecs {
        UnixSecs(
            self.0
                .saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        )
    }

    /// As milliseconds (saturating).
    pub fn as_millis(self) -> Millis {
        self.0.saturating_mul(1000)
    }
}

/// Source of "now" for services. Tests use a stepped clock; binaries use [`SystemClock`].
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> Millis;
}

#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        Utc::now().timestamp_millis()
    }
}

pub fn to_datetime(ms: Millis) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

pub fn from_datetime(t: &DateTime<Utc>) -> Millis {
    t.timestamp_millis()
}

/// RFC 3339 with millisecond precision and `Z`, the way Alertmanager prints times.
pub fn rfc3339(ms: Millis) -> String {
    to_datetime(ms).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Prometheus's default lookback delta (`--query.lookback-delta`, 5 m): how far back an
/// instant selector looks for a sample, and the staleness horizon of the engine.
pub const LOOKBACK_DELTA_MS: Millis = 5 * 60_000;

/// Prometheus's `model.ParseDuration` (prometheus/common 0.39, as in Prometheus 2.42):
/// units in the order `y w d h m s ms`, each at most once, integers only; `0` alone is
/// zero; at most `i64::MAX` nanoseconds (about 292 years). Messages are Go's.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    match s {
        "0" => return Ok(std::time::Duration::ZERO),
        "" => return Err("empty duration string".into()),
        _ => {}
    }
    const UNITS: [(&str, u128); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    let invalid = || format!("not a valid duration string: {s:?}");
    let b = s.as_bytes();
    let (mut i, mut next_unit) = (0, 0);
    let mut total: u128 = 0;
    let mut overflow = false;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        if start == ustart {
            return Err(invalid());
        }
        let unit = &s[ustart..i];
        let Some(k) = UNITS[next_unit..].iter().position(|(u, _)| *u == unit) else {
            return Err(invalid());
        };
        let (_, mult) = UNITS[next_unit + k];
        next_unit += k + 1;
        // Go's Atoi saturates (and the check then fails) on digits past i64.
        let n: u128 = s[start..ustart].parse().unwrap_or(u128::MAX);
        match n.checked_mul(mult).and_then(|v| total.checked_add(v)) {
            Some(t) if n <= MAX_DURATION_MS / mult && t <= MAX_DURATION_MS => total = t,
            _ => overflow = true,
        }
    }
    if overflow {
        return Err("duration out of range".into());
    }
    Ok(std::time::Duration::from_millis(total as u64))
}

/// The longest duration [`parse_duration`] accepts, in milliseconds (`i64::MAX`
/// nanoseconds, as Go's `time.Duration`).
const MAX_DURATION_MS: u128 = (i64::MAX as u128) / 1_000_000;

/// `d` in milliseconds, saturating at `Millis::MAX` (a `Duration` can hold far more).
pub fn millis(d: std::time::Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
}

/// Prometheus's `model.Duration.String()`: `5m`, `1h30m`, `0s`, `1w`, `8d`, `90d`
/// (years and weeks only when exact, "as it is often easier to read 90d than 12w6d").
pub fn format_duration(d: std::time::Duration) -> String {
    format_duration_ms(millis(d))
}

/// [`format_duration`] of a millisecond count; a negative one prints as nothing, as in Go.
pub fn format_duration_ms(ms: Millis) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut r = String::new();
    let mut ms = ms.max(0).unsigned_abs();
    for (unit, mult, exact) in [
        ("y", 365 * 86_400_000u64, true),
        ("w", 7 * 86_400_000, true),
        ("d", 86_400_000, false),
        ("h", 3_600_000, false),
        ("m", 60_000, false),
        ("s", 1_000, false),
        ("ms", 1, false),
    ] {
        if exact && !ms.is_multiple_of(mult) {
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

/// Go's `time.Duration.String()` of a millisecond duration: `5m0s`, `1h0m0s`, `1.5s`,
/// `500ms`, `0s`.
pub fn format_go_duration_ms(ms: Millis) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let sign = if ms < 0 { "-" } else { "" };
    let u = ms.unsigned_abs();
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

/// Go's `time.ParseDuration` (what YAML decodes into a `time.Duration`, e.g. the
/// blackbox exporter's `timeout`): signed decimal numbers with units `ns us µs ms s m h`,
/// in any order (`1.5h`, `300ms`, `2h45m`); `0` alone is zero. Negative durations are
/// refused here (none of our fields takes one). Messages are Go's.
pub fn parse_go_duration(s: &str) -> Result<std::time::Duration, String> {
    let invalid = || format!("time: invalid duration {}", crate::go::quote(s));
    let mut rest = s;
    let neg = if let Some(r) = rest.strip_prefix('-') {
        rest = r;
        true
    } else {
        if let Some(r) = rest.strip_prefix('+') {
            rest = r;
        }
        false
    };
    if rest == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0; // nanoseconds
    let mut overflow = false;
    while !rest.is_empty() {
        let int_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (int, r) = rest.split_at(int_end);
        let (frac, r) = match r.strip_prefix('.') {
            Some(r) => {
                let e = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
                r.split_at(e)
            }
            None => ("", r),
        };
        if int.is_empty() && frac.is_empty() {
            return Err(invalid());
        }
        let unit_end = r
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(r.len());
        let (unit, r) = r.split_at(unit_end);
        if unit.is_empty() {
            return Err(format!(
                "time: missing unit in duration {}",
                crate::go::quote(s)
            ));
        }
        let mult: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    crate::go::quote(unit),
                    crate::go::quote(s)
                ))
            }
        };
        let whole: u128 = int
            .parse()
            .unwrap_or(if int.is_empty() { 0 } else { u128::MAX });
        let mut v = whole.saturating_mul(mult);
        // The fraction, scaled as Go does (digits past precision are dropped).
        let mut scale: u128 = 1;
        let mut f: u128 = 0;
        for d in frac.bytes().take(30) {
            f = f * 10 + u128::from(d - b'0');
            scale *= 10;
        }
        v = v.saturating_add(f * mult / scale);
        total = total.saturating_add(v);
        if total > i64::MAX as u128 {
            overflow = true;
        }
        rest = r;
    }
    if overflow {
        return Err(invalid());
    }
    if neg && total > 0 {
        return Err(format!("negative duration {}", crate::go::quote(s)));
    }
    Ok(std::time::Duration::from_nanos(total as u64))
}

/// Serde helper: a Prometheus duration string in YAML/JSON.
pub mod serde_duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*d))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_duration(&s).map_err(serde::de::Error::custom)
    }
    pub mod option {
        use super::*;
        pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.serialize_str(&crate::time::format_duration(*d)),
                None => s.serialize_none(),
            }
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            let s = Option::<String>::deserialize(d)?;
            s.map(|s| crate::time::parse_duration(&s).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn unix_secs_round_as_named_and_saturate() {
        use super::UnixSecs;
        assert_eq!(UnixSecs::floor(1_999), UnixSecs(1));
        assert_eq!(UnixSecs::floor(-1), UnixSecs(-1));
        assert_eq!(UnixSecs::ceil(1_001), UnixSecs(2));
        assert_eq!(UnixSecs::ceil(2_000), UnixSecs(2));
        assert_eq!(
            UnixSecs(5).plus(std::time::Duration::from_millis(86_400_900)),
            UnixSecs(86_405)
        );
        assert_eq!(
            UnixSecs(1).plus(std::time::Duration::MAX),
            UnixSecs(i64::MAX)
        );
        assert_eq!(UnixSecs(i64::MAX).as_millis(), i64::MAX);
        assert_eq!(UnixSecs(3).as_millis(), 3_000);
    }

    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_round_trip() {
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert!(parse_duration("5x").is_err());
        // Go's range, as promtool answers: up to i64::MAX nanoseconds, never wrapped.
        for ok in ["106751d", "292y"] {
            assert!(parse_duration(ok).is_ok(), "{ok}");
        }
        for huge in [
            "99999999999999h",
            "9223372036854775807s",
            "106752d",
            "293y",
            "340282366920938463463374607431768211455y",
        ] {
            assert_eq!(parse_duration(huge).unwrap_err(), "duration out of range");
        }
        // Units in order, each once (Prometheus 2.42's regular expression).
        for bad in ["200y200y", "1m1h", "1.5h", " 1m", "-1m"] {
            assert_eq!(
                parse_duration(bad).unwrap_err(),
                format!("not a valid duration string: {bad:?}")
            );
        }
        assert_eq!(format_duration(Duration::from_secs(8 * 86_400)), "8d");
        assert_eq!(format_duration(Duration::from_secs(14 * 86_400)), "2w");
        assert_eq!(millis(Duration::MAX), Millis::MAX);
        assert_eq!(millis(Duration::from_secs(2)), 2000);
        assert!(!format_duration(Duration::MAX).is_empty());
        assert!(parse_duration("m").is_err());
    }

    #[test]
    fn rfc3339_millis() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
    }
}
