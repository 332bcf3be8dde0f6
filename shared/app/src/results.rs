//! Probe results: one compact row per target per run in the `results` table
//! (pk = target id, sk = run time, TTL), for history and uptime.

use argus_model::{Item, Kv, Millis, StoreError, Table};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResultRow {
    pub target: String,
    pub at: Millis,
    pub success: bool,
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    pub error: Option<String>,
}

const MAX_ERROR_LEN: usize = 240;

impl ResultRow {
    pub fn to_item(&self, retention_s: i64) -> Item {
        let mut item = Item::new(self.target.clone(), format!("{:013}", self.at))
            .with_attr("ok", self.success);
        item = item.with_attr("ms", self.duration_ms);
        if let Some(c) = self.status_code {
            item = item.with_attr("code", c);
        }
        if let Some(e) = &self.error {
            let mut e = e.clone();
            if e.len() > MAX_ERROR_LEN {
                let mut cut = MAX_ERROR_LEN;
                while !e.is_char_boundary(cut) {
                    cut -= 1;
                }
                e.truncate(cut);
            }
            item = item.with_attr("err", e);
        }
        item.expires_at = Some(self.at / 1000 + retention_s);
        item
    }

    pub fn from_item(item: &Item) -> Option<ResultRow> {
        Some(ResultRow {
            target: item.pk.clone(),
            at: item.sk.parse().ok()?,
            success: item.attrs.get("ok")?.as_bool()?,
            status_code: item
                .attrs
                .get("code")
                .and_then(|v| v.as_u64())
                .map(|c| c as u16),
            duration_ms: item.attrs.get("ms").and_then(|v| v.as_u64()).unwrap_or(0),
            error: item.attr_str("err").map(str::to_string),
        })
    }
}

/// Results of one target since `since` (oldest first), for history and uptime.
pub async fn history(
    kv: &dyn Kv,
    target: &str,
    since: Millis,
) -> Result<Vec<ResultRow>, StoreError> {
    let from = format!("{since:013}");
    Ok(kv
        .query(Table::Results, target, Some(&from))
        .await?
        .iter()
        .filter_map(ResultRow::from_item)
        .collect())
}

/// Fraction of successful runs.
pub fn uptime(rows: &[ResultRow]) -> Option<f64> {
    (!rows.is_empty()).then(|| rows.iter().filter(|r| r.success).count() as f64 / rows.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_round_trip() {
        let r = ResultRow {
            target: "https://example.com".into(),
            at: 1_800_000_000_000,
            success: false,
            status_code: Some(503),
            duration_ms: 123,
            error: Some("x".repeat(1000)),
        };
        let item = r.to_item(86400);
        assert!(item.approx_size() < 400, "{} bytes", item.approx_size());
        let back = ResultRow::from_item(&item).unwrap();
        assert_eq!(back.error.as_ref().unwrap().len(), MAX_ERROR_LEN);
        assert_eq!(
            (back.success, back.status_code, back.at),
            (false, Some(503), r.at)
        );
        assert_eq!(item.expires_at, Some(1_800_000_000 + 86400));
    }
}
