//! argus-pushgw: the Pushgateway API as a service over the `Kv` storage port.
//!
//! [`Gateway::handle`] speaks the HTTP API of prometheus/pushgateway 1.5.1
//! (framework-neutral `http::Request`/`http::Response`); [`Gateway::push`] is the same
//! write path without HTTP (the probe calls it); [`Gateway::snapshot`] gives every live
//! series as a Prometheus scrape with `honor_labels: true` would ingest it; [`serve`]
//! runs a local HTTP server (`argus dev`, benchmarks, tests).
//!
//! Storage layout and the consistency index are described in the crate README.

mod bundle;
mod check;
mod gateway;
pub mod group;
mod http_api;
mod index;
mod server;

pub use bundle::{BUNDLE_PK, MAX_BUNDLE_BYTES};
pub use gateway::Gateway;
pub use group::{group_id, Group, GroupingKey};
pub use server::serve;

use argus_model::StoreError;
use std::collections::HashMap;
use std::time::Duration;

/// Gateway settings (built once per process / cold start).
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// When set, every request but `/-/healthy` and `/-/ready` needs
    /// `Authorization: Bearer <token>` (compared in constant time).
    pub auth_token: Option<String>,
    /// Time-to-live of groups per job when the push has no `X-Argus-TTL` header.
    /// Jobs not listed never expire (the original's behaviour).
    pub default_ttl_by_job: HashMap<String, Duration>,
    /// Largest accepted request body, before and after gzip decompression (413 above).
    pub body_limit_bytes: usize,
    /// Largest number of series a group may hold after a push (400 above).
    pub max_series_per_group: usize,
    /// Type/duplicate consistency checks (the original's default; off is its
    /// `--push.disable-consistency-check`, answering 202 without checking).
    pub consistency_check: bool,
    /// `PUT /api/v1/admin/wipe`; off by default (404, as the original without
    /// `--web.enable-admin-api`). It needs the bearer token like everything else when
    /// `auth_token` is set.
    pub enable_admin_api: bool,
    /// This process is the only writer of the store's metric groups (`argus dev`, whose
    /// redb file is locked to it): groups are kept in memory after a first load and
    /// changes reach the store when [`Gateway::flush`] runs (on a timer, and before
    /// exit), like the original's persistence file. Pushes then cost no store round
    /// trip. Never set it where other processes write the same table (Lambda).
    pub write_behind: bool,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            auth_token: None,
            default_ttl_by_job: HashMap::new(),
            body_limit_bytes: 16 << 20,
            max_series_per_group: 10_000,
            consistency_check: true,
            enable_admin_api: false,
            write_behind: false,
        }
    }
}

/// One change to one group, as the original's `storage.WriteRequest`.
#[derive(Clone, Debug)]
pub struct WriteRequest {
    /// The grouping key; must contain a non-empty `job`.
    pub labels: GroupingKey,
    /// `None` deletes the group; `Some` pushes (possibly zero families).
    pub families: Option<Vec<argus_expfmt::MetricFamily>>,
    /// PUT semantics (replace the whole group) when true, POST (replace only the
    /// pushed metric names) when false.
    pub replace: bool,
    /// Time-to-live of the group from this push; `None`: the job's default, if any.
    pub ttl: Option<Duration>,
}

impl WriteRequest {
    /// A PUT/POST of families under `job` plus extra grouping labels.
    pub fn push(
        job: &str,
        labels: &[(&str, &str)],
        families: Vec<argus_expfmt::MetricFamily>,
        replace: bool,
    ) -> Self {
        WriteRequest {
            labels: grouping_key(job, labels),
            families: Some(families),
            replace,
            ttl: None,
        }
    }

    /// A DELETE of the group.
    pub fn delete(job: &str, labels: &[(&str, &str)]) -> Self {
        WriteRequest {
            labels: grouping_key(job, labels),
            families: None,
            replace: true,
            ttl: None,
        }
    }
}

/// `job` plus the other grouping labels.
fn grouping_key(job: &str, labels: &[(&str, &str)]) -> GroupingKey {
    let mut key: GroupingKey = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    key.insert("job".into(), job.into());
    key
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Malformed request (URL, body): 400, nothing stored.
    #[error("{0}")]
    BadRequest(String),
    /// Consistency check failed: 400; the group's `push_failure_time_seconds` was set.
    #[error("pushed metrics are invalid or inconsistent with existing metrics: {0}")]
    Inconsistent(String),
    /// Body or group over a configured limit: 413 / 400.
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    TooManySeries(String),
    /// Concurrent writers kept winning the conditional write: retry later (503).
    #[error("too much contention on metric group {0}; retry")]
    Contention(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl GatewayError {
    pub fn is_retryable(&self) -> bool {
        match self {
            GatewayError::Contention(_) => true,
            GatewayError::Store(e) => e.is_retryable() || matches!(e, StoreError::Conflict(_)),
            _ => false,
        }
    }

    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode;
        match self {
            GatewayError::BadRequest(_)
            | GatewayError::Inconsistent(_)
            | GatewayError::TooManySeries(_) => StatusCode::BAD_REQUEST,
            GatewayError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::Contention(_) => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::Store(e) if e.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}
