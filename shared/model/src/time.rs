//! Time as a value. Domain code receives `now` as a parameter; only the edges read a clock.

use chrono::{DateTime, TimeZone, Utc};

/// Unix time in milliseconds (Prometheus' sample timestamp unit).
pub type Millis = i64;

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

/// Parses a Prometheus duration (`1m`, `1h30m`, `500ms`, `2d`, `1w`, `1y`).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    let mut total: u128 = 0;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(format!("not a valid duration string: {s:?}"));
        }
        let n: u128 = s[start..i]
            .parse()
            .map_err(|_| format!("not a valid duration string: {s:?}"))?;
        let ustart = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit_ms: u128 = match &s[ustart..i] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            _ => return Err(format!("not a valid duration string: {s:?}")),
        };
        // Go's limit (prometheus/common `model.ParseDuration`): a duration is an int64
        // of nanoseconds, about 292 years; beyond it "duration out of range".
        total = n
            .checked_mul(unit_ms)
            .and_then(|v| total.checked_add(v))
            .filter(|t| *t <= MAX_DURATION_MS)
            .ok_or_else(|| format!("duration out of range: {s:?}"))?;
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

/// Formats a duration the way Prometheus does (`1h30m`, `5m`, `0s`).
pub fn format_duration(d: std::time::Duration) -> String {
    let mut ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("y", 365 * 86_400_000u64),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{}", ms / size, unit));
            ms %= size;
        }
    }
    out
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
            "200y200y",
        ] {
            assert_eq!(
                parse_duration(huge).unwrap_err(),
                format!("duration out of range: {huge:?}")
            );
        }
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
