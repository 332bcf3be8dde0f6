//! argus-app: the use cases. Each service takes its ports (store, gateway, prober,
//! notifier sinks) at construction, built once at cold start, and takes `now` per call.
//! The Lambda functions and `argus dev` are thin shells around these services.

pub mod alert_sink;
pub mod config;
pub mod config_store;
pub mod dev;
pub mod devlink;
pub mod env;
pub mod evaluator;
pub mod handlers;
pub mod lambda;
pub mod pipeline;
pub mod probe_svc;
pub mod promconfig;
pub mod query;
pub mod reload;
pub mod results;
pub mod secrets;
pub mod targets;
pub mod warm;

/// The TSDB lives in its own crate; re-exported so callers keep `argus_app::tsdb`.
pub use argus_tsdb as tsdb;
pub use config::AppConfig;
