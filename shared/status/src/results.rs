//! Probe results: the rows of one probe invocation's run (one per target) stored as one
//! compressed item in the `results` table (pk `runs`, sk = run time then slot, TTL),
//! for history and uptime. One item per run instead of one per target: DynamoDB bills
//! writes per item and per KB, and a row is ~40 bytes once compressed with its run.
//!
//! Versions (item attribute `v`): items without it are version 1 (rows without
//! `phases_ms`, `cert_expiry`, `log`); version 2 adds those optional fields. A reader
//! refuses versions it does not know ([`DecodeError::Version`]) instead of guessing.

use argus_model::{Item, Kv, Millis, StoreError, Table, UnixSecs};
use serde::{Deserialize, Serialize};

/// The phases of `probe_http_duration_seconds`, in this order (ms in [`ResultRow::phases_ms`]).
pub const PHASES: [&str; 5] = ["resolve", "connect", "tls", "processing", "transfer"];

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultRow {
    pub target: String,
    pub at: Millis,
    pub success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// v2: HTTP phase durations in whole ms, in [`PHASES`] order (http modules only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phases_ms: Option<[u32; 5]>,
    /// v2: `probe_ssl_earliest_cert_expiry` (unix seconds), when TLS was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_expiry: Option<i64>,
    /// v2: the probe's debug log (logfmt lines), kept for failed probes only and clipped
    /// to [`MAX_LOG_BYTES`]: what the target page shows as "last failure's debug output".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<Vec<String>>,
    /// v2: the location that probed (`locations:`; absent in single-location runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// Partition of the run items.
pub const RUNS_PK: &str = "runs";
/// The run item version this code writes.
pub const RUNS_VERSION: u64 = 2;

const MAX_ERROR_LEN: usize = 240;
/// Budget of a failed row's debug log (bytes over all lines).
pub const MAX_LOG_BYTES: usize = 2048;

/// Why a stored results item (run or rollup) could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("item {key}: unsupported version {version} (this build reads up to {max})")]
    Version { key: String, version: u64, max: u64 },
    #[error("item {key}: {message}")]
    Corrupt { key: String, message: String },
}

fn clip(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

impl ResultRow {
    fn clipped(mut self) -> ResultRow {
        if let Some(e) = &mut self.error {
            clip(e, MAX_ERROR_LEN);
        }
        if self.success {
            self.log = None;
        }
        if let Some(lines) = &mut self.log {
            let mut budget = MAX_LOG_BYTES;
            let mut kept = Vec::new();
            for mut l in std::mem::take(lines) {
                if budget == 0 {
                    break;
                }
                clip(&mut l, budget);
                budget -= l.len();
                kept.push(l);
            }
            *lines = kept;
        }
        self
    }
}

/// The item of one run: `slot` names the invocation (runs fanned out over several
/// invocations write one item each).
pub fn run_item(
    at: Millis,
    slot: &str,
    rows: Vec<ResultRow>,
    retention: std::time::Duration,
) -> Item {
    let rows: Vec<ResultRow> = rows.into_iter().map(ResultRow::clipped).collect();
    let json = serde_json::to_vec(&rows).expect("rows serialize");
    let mut item = Item::new(RUNS_PK, format!("{at:013}/{slot}")).with_attr("v", RUNS_VERSION);
    item.data = Some(zstd::encode_all(json.as_slice(), 9).expect("zstd to memory"));
    item.expires_at = Some(UnixSecs::floor(at).plus(retention));
    item
}

/// The version attribute of an item (1 when absent), refusing newer ones than `max`.
pub(crate) fn check_version(item: &Item, max: u64) -> Result<u64, DecodeError> {
    let key = || format!("{}/{}", item.pk, item.sk);
    let v = match item.attrs.get("v") {
        None => 1,
        Some(v) => v.as_u64().ok_or_else(|| DecodeError::Corrupt {
            key: key(),
            message: format!("attribute `v` is not a version number: {v}"),
        })?,
    };
    if v == 0 || v > max {
        return Err(DecodeError::Version {
            key: key(),
            version: v,
            max,
        });
    }
    Ok(v)
}

/// zstd + JSON payload of a results-table item.
pub(crate) fn decode_data<T: for<'de> Deserialize<'de>>(item: &Item) -> Result<T, DecodeError> {
    let key = || format!("{}/{}", item.pk, item.sk);
    let data = item.data.as_deref().ok_or_else(|| DecodeError::Corrupt {
        key: key(),
        message: "no data attribute".into(),
    })?;
    let raw = zstd::decode_all(data).map_err(|e| DecodeError::Corrupt {
        key: key(),
        message: format!("zstd: {e}"),
    })?;
    serde_json::from_slice(&raw).map_err(|e| DecodeError::Corrupt {
        key: key(),
        message: e.to_string(),
    })
}

/// zstd payload of a results-table item, decompressed.
pub(crate) fn inflate(item: &Item) -> Result<Vec<u8>, DecodeError> {
    let key = || format!("{}/{}", item.pk, item.sk);
    let data = item.data.as_deref().ok_or_else(|| DecodeError::Corrupt {
        key: key(),
        message: "no data attribute".into(),
    })?;
    zstd::decode_all(data).map_err(|e| DecodeError::Corrupt {
        key: key(),
        message: format!("zstd: {e}"),
    })
}

pub(crate) fn corrupt(item: &Item, e: impl std::fmt::Display) -> DecodeError {
    DecodeError::Corrupt {
        key: format!("{}/{}", item.pk, item.sk),
        message: e.to_string(),
    }
}

/// The rows of one target in a run item: rows of other targets are skipped, not
/// decoded (a target page reads every run item of the current hour).
pub fn rows_of_target(item: &Item, target: &str) -> Result<Vec<ResultRow>, DecodeError> {
    #[derive(Deserialize)]
    struct Head<'a> {
        #[serde(borrow)]
        target: std::borrow::Cow<'a, str>,
    }
    check_version(item, RUNS_VERSION)?;
    let raw = inflate(item)?;
    let rows: Vec<&serde_json::value::RawValue> =
        serde_json::from_slice(&raw).map_err(|e| corrupt(item, e))?;
    let mut out = Vec::new();
    for r in rows {
        let h: Head = serde_json::from_str(r.get()).map_err(|e| corrupt(item, e))?;
        if h.target == target {
            out.push(serde_json::from_str(r.get()).map_err(|e| corrupt(item, e))?);
        }
    }
    Ok(out)
}

/// The rows of a run item (version 1 or 2), or why it cannot be read.
pub fn rows_of(item: &Item) -> Result<Vec<ResultRow>, DecodeError> {
    check_version(item, RUNS_VERSION)?;
    decode_data(item)
}

/// Results of one target since `since` (oldest first), for history and uptime. Reads
/// every run item since then: meant for hours or days, not months of history (the
/// status page reads [`crate::rollup`] summaries for that).
pub async fn history(
    kv: &dyn Kv,
    target: &str,
    since: Millis,
) -> Result<Vec<ResultRow>, StoreError> {
    let from = format!("{since:013}");
    let mut out = Vec::new();
    for item in kv.query(Table::Results, RUNS_PK, Some(&from)).await? {
        match rows_of(&item) {
            Ok(rows) => out.extend(rows.into_iter().filter(|r| r.target == target)),
            Err(e) => tracing::warn!(error = %e, "skipping unreadable results item"),
        }
    }
    Ok(out)
}

/// Fraction of successful runs.
pub fn uptime(rows: &[ResultRow]) -> Option<f64> {
    (!rows.is_empty()).then(|| rows.iter().filter(|r| r.success).count() as f64 / rows.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_round_trip() {
        let row = |i: usize, ok: bool| ResultRow {
            target: format!("t{i}"),
            at: 1_800_000_000_000,
            success: ok,
            status_code: ok.then_some(200),
            duration_ms: 100 + i as u64,
            error: (!ok).then(|| "é".repeat(1000)),
            phases_ms: Some([1, 2, 3, 40, i as u32]),
            cert_expiry: None,
            log: Some(vec!["x".repeat(1500), "y".repeat(1500), "z".into()]),
            location: None,
        };
        let rows: Vec<ResultRow> = (0..100).map(|i| row(i, i % 10 != 0)).collect();
        let item = run_item(
            1_800_000_000_000,
            "0",
            rows.clone(),
            std::time::Duration::from_secs(86400),
        );
        assert_eq!(item.sk, "1800000000000/0");
        assert_eq!(item.expires_at, Some(UnixSecs(1_800_000_000 + 86400)));
        let back = rows_of(&item).unwrap();
        assert_eq!(back.len(), 100);
        // Successful rows keep no log; failed ones keep at most MAX_LOG_BYTES of it.
        assert_eq!(
            back[1],
            ResultRow {
                log: None,
                ..rows[1].clone()
            }
        );
        let log = back[0].log.as_ref().unwrap();
        assert_eq!(log.iter().map(String::len).sum::<usize>(), MAX_LOG_BYTES);
        assert_eq!(log.len(), 2);
        // Errors are clipped on a character boundary.
        assert_eq!(back[0].error.as_ref().unwrap().len(), MAX_ERROR_LEN);
        // A hundred rows fit in one 1 KB write unit or two.
        assert!(item.approx_size() < 2048, "{} bytes", item.approx_size());
        assert!(matches!(
            rows_of(&Item::new("runs", "x")),
            Err(DecodeError::Corrupt { .. })
        ));
    }

    #[test]
    fn version_one_items_still_read_and_newer_ones_are_refused() {
        // A version 1 item: no `v` attribute, rows without the v2 fields.
        let v1 = br#"[{"target":"a","at":5,"success":false,"duration_ms":7,"error":"boom"}]"#;
        let mut item = Item::new(RUNS_PK, "0000000000005/0");
        item.data = Some(zstd::encode_all(&v1[..], 3).unwrap());
        let rows = rows_of(&item).unwrap();
        assert_eq!(rows[0].error.as_deref(), Some("boom"));
        assert_eq!(rows[0].phases_ms, None);
        let v3 = item.clone().with_attr("v", 3);
        let e = rows_of(&v3).unwrap_err().to_string();
        assert!(e.contains("unsupported version 3"), "{e}");
        // Unknown fields are refused, not dropped.
        let mut odd = Item::new(RUNS_PK, "0000000000005/0");
        odd.data = Some(
            zstd::encode_all(
                &br#"[{"target":"a","at":5,"success":true,"duration_ms":7,"extra":1}]"#[..],
                3,
            )
            .unwrap(),
        );
        assert!(rows_of(&odd).is_err());
    }
}
