//! The query API's adapters: samples from the evaluator's chunks, rule state from the
//! `alerts` table, probe targets from the `targets` table and the results runs,
//! metadata from the stored metric groups and bundles. All of them only read (they
//! call `Kv::get`, `query` and `scan`, nothing else): the query function's role has
//! no write action either. (Not through `Gateway`: its reads remove expired groups.)

use crate::config::AppConfig;
use crate::pipeline::KeyedGroups;
#[cfg(test)]
use crate::tsdb;
use argus_model::{Kv, Labels, Millis, Table};
use argus_promql::{Matcher, MemStorage};
use argus_query::{
    GroupStatus, MetricMeta, QueryError, QueryOptions, QueryService, SampleSource, StatusSource,
    TargetStatus,
};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Arc;

fn store_err(e: impl std::fmt::Display) -> QueryError {
    QueryError::Internal(e.to_string())
}

/// Samples from the TSDB (`argus_tsdb::load`): 2-hour blocks where compaction made
/// them, per-tick head chunks after them (replayed with Prometheus' staleness for
/// series that vanish between ticks); only the metric names and span a query needs.
pub struct ChunkSamples {
    pub kv: Arc<dyn Kv>,
}

#[async_trait]
impl SampleSource for ChunkSamples {
    async fn load(
        &self,
        selectors: &[Vec<Matcher>],
        start_ms: i64,
        end_ms: i64,
        max_samples: usize,
    ) -> Result<MemStorage, QueryError> {
        argus_tsdb::load(self.kv.as_ref(), selectors, start_ms, end_ms, max_samples)
            .await
            .map_err(|e| match e {
                argus_tsdb::TsdbError::TooManySamples { .. } => QueryError::TooManySamples,
                e => store_err(e),
            })
    }
}

/// Rules, targets and metadata as the store holds them.
pub struct StoreStatus {
    pub kv: Arc<dyn Kv>,
    pub groups: KeyedGroups,
    pub default_interval_ms: i64,
    pub job: String,
    pub scrape_interval_ms: i64,
}

#[async_trait]
impl StatusSource for StoreStatus {
    async fn rule_groups(&self) -> Result<Vec<GroupStatus>, QueryError> {
        let mut out = Vec::with_capacity(self.groups.len());
        for (key, g) in &self.groups {
            let item = self
                .kv
                .get(
                    Table::Alerts,
                    crate::evaluator::STATE_PARTITION,
                    key.as_str(),
                )
                .await
                .map_err(store_err)?;
            let state = match item.as_ref().and_then(|i| i.data.as_deref()) {
                None => None,
                Some(d) => Some(
                    argus_rules::decode_state(d)
                        .map_err(|e| QueryError::Internal(format!("rule group {key}: {e}")))?,
                ),
            };
            out.push(GroupStatus {
                group: g.clone(),
                interval_ms: g.interval_ms.unwrap_or(self.default_interval_ms),
                state,
                evaluation_time_s: 0.0,
            });
        }
        Ok(out)
    }

    async fn targets(&self, now: Millis) -> Result<Vec<TargetStatus>, QueryError> {
        let (targets, _bad) = crate::targets::load_all(self.kv.as_ref())
            .await
            .map_err(store_err)?;
        let longest = targets
            .iter()
            .filter_map(|t| t.interval.map(|d| d.as_millis() as i64))
            .max()
            .unwrap_or(0)
            .max(self.scrape_interval_ms);
        // The newest result row of each target within two of its intervals.
        let since = now - (2 * longest).min(86_400_000);
        let mut last: HashMap<String, crate::results::ResultRow> = HashMap::new();
        for item in self
            .kv
            .query(
                Table::Results,
                crate::results::RUNS_PK,
                Some(&format!("{:013}", since.max(0))),
            )
            .await
            .map_err(store_err)?
        {
            for r in crate::results::rows_of(&item).unwrap_or_default() {
                if last.get(&r.target).is_none_or(|o| o.at <= r.at) {
                    last.insert(r.target.clone(), r);
                }
            }
        }
        let mut out = Vec::new();
        for t in targets.into_iter().filter(|t| t.enabled) {
            let interval = t
                .interval
                .map(|d| d.as_millis() as i64)
                .unwrap_or(self.scrape_interval_ms);
            let iv = argus_model::time::format_duration(std::time::Duration::from_millis(
                interval as u64,
            ));
            let mut labels = Labels::from_pairs(t.labels.clone());
            labels.set("instance", &t.url);
            labels.set("job", &self.job);
            let mut disc = Labels::from_pairs(t.labels.clone());
            for (k, v) in [
                ("__address__", t.url.as_str()),
                ("__metrics_path__", "/probe"),
                ("__param_module", t.module.as_str()),
                ("__param_target", t.url.as_str()),
                ("__scheme__", "http"),
                ("__scrape_interval__", iv.as_str()),
                ("__scrape_timeout__", iv.as_str()),
                ("job", self.job.as_str()),
            ] {
                disc.set(k, v);
            }
            let row = last.get(&t.id);
            out.push(TargetStatus {
                discovered_labels: disc,
                labels,
                scrape_pool: self.job.clone(),
                scrape_url: t.url.clone(),
                health: match row {
                    None => "unknown",
                    Some(r) if r.success => "up",
                    Some(_) => "down",
                }
                .into(),
                last_error: row.and_then(|r| r.error.clone()).unwrap_or_default(),
                last_scrape: row.map(|r| r.at),
                last_scrape_duration_s: row.map_or(0.0, |r| r.duration_ms as f64 / 1000.0),
                scrape_interval: iv.clone(),
                scrape_timeout: iv,
            });
        }
        Ok(out)
    }

    async fn metadata(&self, now: Millis) -> Result<Vec<MetricMeta>, QueryError> {
        let mut groups = Vec::new();
        for item in self
            .kv
            .query(Table::Metrics, "group", None)
            .await
            .map_err(store_err)?
        {
            match item.data.as_deref().map(argus_pushgw::group::decode) {
                Some(Ok(g)) => groups.push(g),
                _ => tracing::warn!(group = %item.sk, "metadata: skipping unreadable metric group"),
            }
        }
        for item in self
            .kv
            .query(Table::Metrics, argus_pushgw::BUNDLE_PK, None)
            .await
            .map_err(store_err)?
        {
            match item.data.as_deref().map(argus_pushgw::group::decode_bundle) {
                Some(Ok(gs)) => groups.extend(gs),
                _ => {
                    tracing::warn!(bundle = %item.sk, "metadata: skipping unreadable metric bundle")
                }
            }
        }
        let mut out: Vec<MetricMeta> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for g in groups.iter().filter(|g| g.live(now)) {
            let fams = g
                .families
                .values()
                .map(|f| f.family.clone())
                .chain(g.timestamp_families().into_iter().map(|(f, _)| f));
            for f in fams {
                let kind = match f.kind.as_str() {
                    "untyped" => "unknown",
                    k => k,
                };
                let m = MetricMeta {
                    metric: f.name.clone(),
                    kind: kind.to_string(),
                    help: f.help.clone().unwrap_or_default(),
                    unit: String::new(),
                };
                if seen.insert(m.clone()) {
                    out.push(m);
                }
            }
        }
        Ok(out)
    }
}

/// The query API over `kv` as `argus.yml` configures it (dev and the `query` function).
pub fn build_query(
    kv: Arc<dyn Kv>,
    cfg: &AppConfig,
    auth_token: Option<String>,
) -> anyhow::Result<(QueryService, Vec<String>)> {
    let (groups, problems) = crate::pipeline::load_rule_groups(cfg)?;
    let eval_ms = cfg.global.evaluation_interval.as_millis() as i64;
    let opts = QueryOptions {
        max_samples: cfg.query.max_samples,
        timeout: cfg.query.timeout,
        lookback_ms: cfg.query.lookback_delta.as_millis() as i64,
        subquery_step_ms: eval_ms,
        auth_token: auth_token.clone(),
        ..QueryOptions::default()
    };
    let samples = Arc::new(ChunkSamples { kv: kv.clone() });
    let page = status_page(kv.clone(), cfg, &groups, auth_token.clone());
    let status = Arc::new(StoreStatus {
        kv,
        groups,
        default_interval_ms: eval_ms,
        job: cfg.probe.job.clone(),
        scrape_interval_ms: cfg.global.scrape_interval.as_millis() as i64,
    });
    let svc = QueryService::new(samples, status, opts).with_fallback(status_fallback(page));
    Ok((svc, problems))
}

/// What fits a query function of `memory_mb`: a loaded sample costs up to ~64 bytes
/// in memory (value, time, its series' share), so `query.max_samples` is capped by the
/// memory size; and a query ends (25 s) before the invocation's own timeout (30 s).
pub fn fit_to_function(cfg: &mut AppConfig, memory_mb: usize) {
    cfg.query.max_samples = cfg.query.max_samples.min(memory_mb * (1 << 20) / 64);
    cfg.query.timeout = cfg.query.timeout.min(std::time::Duration::from_secs(25));
}

/// The status page (`argus-status`) over the same store, with the API's bearer token
/// unless `status_page.public` opens parts of it, and the quorum of `locations:`
/// for its per-location view. Built once per process (cold start, `argus dev`), so
/// its rollup cache serves every request after the first.
pub fn status_page(
    kv: Arc<dyn Kv>,
    cfg: &AppConfig,
    groups: &[(String, argus_rules::RuleGroup)],
    bearer_token: Option<String>,
) -> Arc<argus_status::StatusPage> {
    let quorum = (!cfg.locations.is_empty()).then(|| cfg.quorum());
    Arc::new(
        argus_status::StatusPage::new(kv, cfg.status_page.clone(), groups.to_vec(), bearer_token)
            .with_quorum(quorum),
    )
}

/// Mounts the status page as the query API's fallback: its paths (`/`, `/target/..`,
/// `/alerts`, `/badge/..`), else Prometheus's 404.
pub fn status_fallback(page: Arc<argus_status::StatusPage>) -> argus_query::Fallback {
    Arc::new(move |req: http::Request<bytes::Bytes>, now| {
        let page = page.clone();
        Box::pin(async move {
            match page.handle(req, now).await {
                Some(resp) => resp,
                None => argus_query::not_found(),
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    async fn service(max_samples: usize) -> QueryService {
        let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open_temp().unwrap());
        for i in 0..20i64 {
            let c = tsdb::Chunk {
                ts: 1_000_000 + i * 15_000,
                scraped: vec![
                    (
                        Labels::from_pairs([("__name__", "m"), ("i", "a")]),
                        i as f64,
                    ),
                    (Labels::from_pairs([("__name__", "m"), ("i", "b")]), 1.0),
                ],
                generated: vec![],
            };
            tsdb::write_chunk(kv.as_ref(), &c, std::time::Duration::from_secs(86400))
                .await
                .unwrap();
        }
        let mut cfg = AppConfig::default();
        cfg.query.max_samples = max_samples;
        build_query(kv, &cfg, None).unwrap().0
    }

    async fn get(svc: &QueryService, uri: &str) -> (u16, serde_json::Value) {
        let req = http::Request::builder()
            .uri(uri)
            .body(Bytes::new())
            .unwrap();
        let r = svc.handle(req, 2_000_000).await;
        (
            r.status().as_u16(),
            serde_json::from_slice(r.body()).unwrap(),
        )
    }

    #[tokio::test]
    async fn too_many_samples_is_refused_with_prometheus_error() {
        let svc = service(30).await;
        // 2 series × 20 ticks = 40 samples in the hour before 1285 s.
        let (st, v) = get(&svc, "/api/v1/query?query=count_over_time(m[1h])&time=1285").await;
        assert_eq!(st, 422, "{v}");
        assert_eq!(v["errorType"], "execution");
        assert_eq!(
            v["error"],
            "query processing would load too many samples into memory in query execution"
        );
        // A query reading less passes.
        let (st, v) = get(&svc, "/api/v1/query?query=count_over_time(m[2m])&time=1285").await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["data"]["result"][0]["value"][1], "9", "{v}");
        let svc = service(40).await;
        let (st, _) = get(&svc, "/api/v1/query?query=count_over_time(m[1h])&time=1285").await;
        assert_eq!(st, 200, "exactly the limit is allowed");
    }

    #[tokio::test]
    async fn an_expired_timeout_is_a_503() {
        let svc = service(1000).await;
        let (st, v) = get(&svc, "/api/v1/query?query=m&time=1285&timeout=0.000000001").await;
        assert_eq!(st, 503, "{v}");
        assert_eq!(v["errorType"], "timeout");
        assert_eq!(v["error"], "query timed out in query execution");
        let (st, _) = get(&svc, "/api/v1/query?query=m&time=1285&timeout=10s").await;
        assert_eq!(st, 200);
    }

    #[tokio::test]
    async fn rules_alerts_and_targets_from_the_store() {
        let svc = service(1000).await;
        let (st, v) = get(&svc, "/api/v1/rules").await;
        assert_eq!(
            (st, &v["data"]["groups"]),
            (200, &serde_json::json!([])),
            "{v}"
        );
        let (_, v) = get(&svc, "/api/v1/targets").await;
        assert_eq!(v["data"]["activeTargets"], serde_json::json!([]));
        let (_, v) = get(&svc, "/api/v1/status/buildinfo").await;
        assert!(v["data"]["version"].is_string(), "{v}");
    }
}
