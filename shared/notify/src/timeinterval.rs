//! `time_intervals` (timeinterval/timeinterval.go): times of day, weekdays, days of the
//! month (negative = from the end), months, years, optional IANA location.

use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};
use serde::Deserialize;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeInterval {
    #[serde(default)]
    pub times: Vec<RawTimeRange>,
    #[serde(default)]
    pub weekdays: Vec<String>,
    #[serde(default)]
    pub days_of_month: Vec<String>,
    #[serde(default)]
    pub months: Vec<String>,
    #[serde(default)]
    pub years: Vec<String>,
    pub location: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeRange {
    pub start_time: String,
    pub end_time: String,
}

/// One compiled interval; an empty field matches everything.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeInterval {
    /// Minutes of the day, `[start, end)`.
    pub times: Vec<(u32, u32)>,
    /// 0 = Sunday, inclusive ranges.
    pub weekdays: Vec<(u32, u32)>,
    pub days_of_month: Vec<(i32, i32)>,
    pub months: Vec<(u32, u32)>,
    pub years: Vec<(i32, i32)>,
    pub location: Option<chrono_tz::Tz>,
}

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn split_range(s: &str) -> (&str, &str) {
    match s.split_once(':') {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (s.trim(), s.trim()),
    }
}

fn parse_minutes(s: &str) -> Result<u32, String> {
    let (h, m) = s
        .split_once(':')
        .ok_or_else(|| format!("invalid time {s:?} (HH:MM)"))?;
    let h: u32 = h
        .parse()
        .map_err(|_| format!("invalid time {s:?} (HH:MM)"))?;
    let m: u32 = m
        .parse()
        .map_err(|_| format!("invalid time {s:?} (HH:MM)"))?;
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(format!("invalid time {s:?}: out of range"));
    }
    Ok(h * 60 + m)
}

fn named(s: &str, names: &[&str], offset: u32, what: &str) -> Result<u32, String> {
    let l = s.to_ascii_lowercase();
    if let Some(i) = names.iter().position(|n| *n == l) {
        return Ok(i as u32 + offset);
    }
    if offset == 1 {
        if let Ok(n) = l.parse::<u32>() {
            if (1..=12).contains(&n) {
                return Ok(n);
            }
        }
    }
    Err(format!("{s:?} is not a valid {what}"))
}

impl TimeInterval {
    pub fn compile(raw: &RawTimeInterval) -> Result<TimeInterval, String> {
        let mut times = Vec::new();
        for t in &raw.times {
            let (s, e) = (parse_minutes(&t.start_time)?, parse_minutes(&t.end_time)?);
            if s >= e {
                return Err(format!(
                    "start_time {:?} must be before end_time {:?}",
                    t.start_time, t.end_time
                ));
            }
            times.push((s, e));
        }
        let mut weekdays = Vec::new();
        for w in &raw.weekdays {
            let (a, b) = split_range(w);
            let (a, b) = (
                named(a, &WEEKDAYS, 0, "weekday")?,
                named(b, &WEEKDAYS, 0, "weekday")?,
            );
            if b < a {
                return Err(format!("weekday range {w:?}: start is after end"));
            }
            weekdays.push((a, b));
        }
        let mut days = Vec::new();
        for d in &raw.days_of_month {
            let (a, b) = split_range(d);
            let p = |x: &str| -> Result<i32, String> {
                let n: i32 = x
                    .parse()
                    .map_err(|_| format!("invalid day of month {x:?}"))?;
                if n == 0 || !(-31..=31).contains(&n) {
                    return Err(format!("day of month {n} out of range (1..31 or -31..-1)"));
                }
                Ok(n)
            };
            let (a, b) = (p(a)?, p(b)?);
            if (a > 0 && b > 0 && b < a) || (a < 0 && b < 0 && b < a) {
                return Err(format!("days_of_month range {d:?}: start is after end"));
            }
            days.push((a, b));
        }
        let mut months = Vec::new();
        for m in &raw.months {
            let (a, b) = split_range(m);
            let (a, b) = (
                named(a, &MONTHS, 1, "month")?,
                named(b, &MONTHS, 1, "month")?,
            );
            if b < a {
                return Err(format!("month range {m:?}: start is after end"));
            }
            months.push((a, b));
        }
        let mut years = Vec::new();
        for y in &raw.years {
            let (a, b) = split_range(y);
            let p = |x: &str| x.parse::<i32>().map_err(|_| format!("invalid year {x:?}"));
            let (a, b) = (p(a)?, p(b)?);
            if b < a {
                return Err(format!("year range {y:?}: start is after end"));
            }
            years.push((a, b));
        }
        let location = match &raw.location {
            None => None,
            Some(l) if l.eq_ignore_ascii_case("local") || l.eq_ignore_ascii_case("utc") => None,
            Some(l) => Some(
                l.parse::<chrono_tz::Tz>()
                    .map_err(|_| format!("unknown location {l:?}"))?,
            ),
        };
        Ok(TimeInterval {
            times,
            weekdays,
            days_of_month: days,
            months,
            years,
            location,
        })
    }

    /// Whether the instant (unix ms) falls in this interval.
    pub fn contains(&self, now_ms: i64) -> bool {
        let utc: DateTime<Utc> = argus_model::time::to_datetime(now_ms);
        match self.location {
            Some(tz) => self.contains_local(&tz.from_utc_datetime(&utc.naive_utc())),
            None => self.contains_local(&utc),
        }
    }

    fn contains_local<T: TimeZone>(&self, t: &DateTime<T>) -> bool {
        if !self.times.is_empty() {
            let m = t.hour() * 60 + t.minute();
            if !self.times.iter().any(|(s, e)| m >= *s && m < *e) {
                return false;
            }
        }
        if !self.days_of_month.is_empty() {
            let dim = days_in_month(t.year(), t.month()) as i32;
            let day = t.day() as i32;
            let ok = self.days_of_month.iter().any(|(b, e)| {
                let begin = if *b < 0 { dim + b + 1 } else { *b };
                let end = if *e < 0 { dim + e + 1 } else { *e };
                if begin > dim {
                    return false;
                }
                let begin = begin.clamp(-dim, dim);
                let end = end.clamp(-dim, dim);
                day >= begin && day <= end
            });
            if !ok {
                return false;
            }
        }
        if !self.months.is_empty()
            && !self
                .months
                .iter()
                .any(|(a, b)| (*a..=*b).contains(&t.month()))
        {
            return false;
        }
        if !self.weekdays.is_empty() {
            let wd = t.weekday().num_days_from_sunday();
            if !self.weekdays.iter().any(|(a, b)| (*a..=*b).contains(&wd)) {
                return false;
            }
        }
        if !self.years.is_empty()
            && !self
                .years
                .iter()
                .any(|(a, b)| (*a..=*b).contains(&t.year()))
        {
            return false;
        }
        true
    }
}

fn days_in_month(y: i32, m: u32) -> u32 {
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let first_next = chrono::NaiveDate::from_ymd_opt(ny, nm, 1);
    let first = chrono::NaiveDate::from_ymd_opt(y, m, 1);
    match (first, first_next) {
        (Some(a), Some(b)) => (b - a).num_days() as u32,
        _ => 31,
    }
}

/// Whether any interval of the list contains the instant.
pub fn any_contains(intervals: &[TimeInterval], now_ms: i64) -> bool {
    intervals.iter().any(|i| i.contains(now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_millis()
    }

    fn ti(y: &str) -> TimeInterval {
        TimeInterval::compile(&serde_saphyr::from_str::<RawTimeInterval>(y).unwrap()).unwrap()
    }

    #[test]
    fn business_hours() {
        let t =
            ti("times: [{start_time: '09:00', end_time: '17:00'}]\nweekdays: ['monday:friday']");
        assert!(t.contains(ms("2026-11-23T09:00:00Z"))); // Monday
        assert!(!t.contains(ms("2026-11-23T17:00:00Z"))); // end exclusive
        assert!(!t.contains(ms("2026-11-22T10:00:00Z"))); // Sunday
        let t = ti("times: [{start_time: '09:00', end_time: '17:00'}]\nlocation: Europe/Berlin");
        assert!(t.contains(ms("2026-11-23T08:30:00Z"))); // 09:30 in Berlin
        assert!(!t.contains(ms("2026-11-23T16:30:00Z")));
    }

    #[test]
    fn days_months_years() {
        let t = ti("days_of_month: ['-1']\nmonths: ['february', '11:12']\nyears: ['2026:2027']");
        assert!(t.contains(ms("2026-11-30T12:00:00Z")));
        assert!(!t.contains(ms("2026-11-29T12:00:00Z")));
        assert!(t.contains(ms("2027-02-28T12:00:00Z")));
        assert!(!t.contains(ms("2028-02-29T12:00:00Z")));
        assert!(!t.contains(ms("2026-10-31T12:00:00Z")));
    }

    #[test]
    fn bad_values() {
        let c =
            |y: &str| TimeInterval::compile(&serde_saphyr::from_str::<RawTimeInterval>(y).unwrap());
        assert!(c("weekdays: [funday]").unwrap_err().contains("funday"));
        assert!(c("days_of_month: ['0']").is_err());
        assert!(c("times: [{start_time: '10:00', end_time: '09:00'}]").is_err());
        assert!(c("location: Mars/Olympus").unwrap_err().contains("Mars"));
    }
}
