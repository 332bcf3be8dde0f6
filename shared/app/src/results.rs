//! Probe results: the rows of one probe invocation's run (one per target) stored as one
//! compressed item in the `results` table (pk `runs`, sk = run time then slot, TTL),
//! for history and uptime. One item per run instead of one per target: DynamoDB bills
//! writes per item and per KB, and a row is ~40 bytes once compressed with its run.
//!
//! Row format versions: v1 rows have no `location`; v2 rows (probes run from named
//! `locations`) add it. Both decode with this code (a v1 row reads as `location:
//! None`), and a v1 reader ignores the extra field, so old and new items coexist.

use argus_model::{Item, Kv, Millis, StoreError, Table};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResultRow {
    pub target: String,
    pub at: Millis,
    pub success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The location that probed (v2 rows; absent in v1 rows and single-location runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// Partition of the run items.
pub const RUNS_PK: &str = "runs";

const MAX_ERROR_LEN: usize = 240;

impl ResultRow {
    fn clipped(mut self) -> ResultRow {
        if let Some(e) = &mut self.error {
            if e.len() > MAX_ERROR_LEN {
                let mut cut = MAX_ERROR_LEN;
                while !e.is_char_boundary(cut) {
                    cut -= 1;
                }
                e.truncate(cut);
            }
        }
        self
    }
}

/// The item of one run: `slot` names the invocation (runs fanned out over several
/// invocations write one item each).
pub fn run_item(at: Millis, slot: &str, rows: Vec<ResultRow>, retention_s: i64) -> Item {
    let rows: Vec<ResultRow> = rows.into_iter().map(ResultRow::clipped).collect();
    let json = serde_json::to_vec(&rows).expect("rows serialize");
    let mut item = Item::new(RUNS_PK, format!("{at:013}/{slot}"));
    item.data = Some(zstd::encode_all(json.as_slice(), 9).expect("zstd to memory"));
    item.expires_at = Some(at.div_euclid(1000) + retention_s);
    item
}

/// The rows of a run item; `None` when it is not one (or is corrupt).
pub fn rows_of(item: &Item) -> Option<Vec<ResultRow>> {
    let raw = zstd::decode_all(item.data.as_deref()?).ok()?;
    serde_json::from_slice(&raw).ok()
}

/// Results of one target since `since` (oldest first), for history and uptime. Reads
/// every run item since then: meant for hours or days, not months of history.
pub async fn history(
    kv: &dyn Kv,
    target: &str,
    since: Millis,
) -> Result<Vec<ResultRow>, StoreError> {
    let from = format!("{since:013}");
    let mut out = Vec::new();
    for item in kv.query(Table::Results, RUNS_PK, Some(&from)).await? {
        match rows_of(&item) {
            Some(rows) => out.extend(rows.into_iter().filter(|r| r.target == target)),
            None => tracing::warn!(run = %item.sk, "skipping unreadable results item"),
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
            location: None,
        };
        let rows: Vec<ResultRow> = (0..100).map(|i| row(i, i % 10 != 0)).collect();
        let item = run_item(1_800_000_000_000, "0", rows.clone(), 86400);
        assert_eq!(item.sk, "1800000000000/0");
        assert_eq!(item.expires_at, Some(1_800_000_000 + 86400));
        let back = rows_of(&item).unwrap();
        assert_eq!(back.len(), 100);
        assert_eq!(back[1], rows[1]);
        // Errors are clipped on a character boundary.
        assert_eq!(back[0].error.as_ref().unwrap().len(), MAX_ERROR_LEN);
        // A hundred rows fit in one 1 KB write unit or two.
        assert!(item.approx_size() < 2048, "{} bytes", item.approx_size());
        assert!(rows_of(&Item::new("runs", "x")).is_none());
    }

    #[test]
    fn v1_rows_read_and_v2_rows_carry_the_location() {
        // A v1 item as written before locations existed.
        let v1 = br#"[{"target":"t","at":5,"success":true,"status_code":200,"duration_ms":7}]"#;
        let mut item = Item::new(RUNS_PK, "0000000000005/0");
        item.data = Some(zstd::encode_all(&v1[..], 9).unwrap());
        let rows = rows_of(&item).unwrap();
        assert_eq!(rows[0].location, None);
        assert_eq!(rows[0].status_code, Some(200));
        let mut row = rows[0].clone();
        row.location = Some("eu-west-1".into());
        let item = run_item(5, "eu-west-1/0", vec![row.clone()], 60);
        assert_eq!(item.sk, "0000000000005/eu-west-1/0");
        let raw = zstd::decode_all(item.data.as_deref().unwrap()).unwrap();
        assert!(String::from_utf8(raw)
            .unwrap()
            .contains(r#""location":"eu-west-1""#));
        assert_eq!(rows_of(&item).unwrap(), vec![row]);
    }
}
