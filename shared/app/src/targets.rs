//! The targets table as the user sees it: add, list, remove, import a Prometheus
//! `file_sd` / static target list.

use argus_model::{Cond, Kv, StoreError, Table, Target};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Reads every target item. Items that do not parse are returned as errors beside the
/// good ones, so one bad row never stops the others from being probed.
pub async fn load_all(kv: &dyn Kv) -> Result<(Vec<Target>, Vec<String>), StoreError> {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for item in kv.scan(Table::Targets).await? {
        match Target::from_item(&item) {
            Ok(t) => good.push(t),
            Err(e) => bad.push(e.to_string()),
        }
    }
    Ok((good, bad))
}

pub async fn add(kv: &dyn Kv, t: &Target) -> Result<(), StoreError> {
    kv.put(Table::Targets, t.to_item(), Cond::Always)
        .await
        .map(|_| ())
}

/// Adds the target only if no item with its id exists (seeding keeps user edits).
pub async fn add_if_absent(kv: &dyn Kv, t: &Target) -> Result<bool, StoreError> {
    match kv.put(Table::Targets, t.to_item(), Cond::NotExists).await {
        Ok(_) => Ok(true),
        Err(StoreError::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

pub async fn remove(kv: &dyn Kv, id: &str) -> Result<bool, StoreError> {
    let existed = kv.get(Table::Targets, id, "").await?.is_some();
    kv.delete(Table::Targets, id, "", Cond::Always).await?;
    Ok(existed)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SdGroup {
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Parses a Prometheus file_sd list (YAML or JSON: `[{targets: [...], labels: {...}}]`).
/// The special labels `__param_module` / `module` pick the module, `__scrape_interval__`
/// the interval; other `__`-prefixed labels are dropped as Prometheus drops them.
pub fn parse_file_sd(text: &str, default_module: &str) -> Result<Vec<Target>, String> {
    let groups: Vec<SdGroup> = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (gi, g) in groups.into_iter().enumerate() {
        let module = g
            .labels
            .get("__param_module")
            .or_else(|| g.labels.get("module"))
            .cloned()
            .unwrap_or_else(|| default_module.to_string());
        let interval = match g.labels.get("__scrape_interval__") {
            Some(s) => Some(
                argus_model::time::parse_duration(s)
                    .map_err(|e| format!("group {gi}: __scrape_interval__: {e}"))?,
            ),
            None => None,
        };
        let labels: BTreeMap<String, String> = g
            .labels
            .into_iter()
            .filter(|(k, _)| !k.starts_with("__") && k != "module")
            .collect();
        for (ti, url) in g.targets.into_iter().enumerate() {
            if url.trim().is_empty() {
                return Err(format!("group {gi}: targets[{ti}] is empty"));
            }
            let mut t = Target::new(url.trim());
            t.module = module.clone();
            t.labels = labels.clone();
            t.interval = interval;
            out.push(t);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_sd_yaml_and_json() {
        let y = "- targets: ['https://a.example', 'https://b.example']\n  labels:\n    team: web\n    __param_module: http_post_2xx\n";
        let t = parse_file_sd(y, "http_2xx").unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].module, "http_post_2xx");
        assert_eq!(t[1].labels.get("team").map(String::as_str), Some("web"));
        assert!(!t[0].labels.contains_key("__param_module"));
        let j = r#"[{"targets": ["db:5432"], "labels": {"module": "tcp_connect"}}]"#;
        assert_eq!(
            parse_file_sd(j, "http_2xx").unwrap()[0].module,
            "tcp_connect"
        );
        let e = parse_file_sd("- targets: ['']\n", "http_2xx").unwrap_err();
        assert!(e.contains("targets[0]"), "{e}");
        assert!(parse_file_sd("- nottargets: []\n", "http_2xx").is_err());
    }
}
