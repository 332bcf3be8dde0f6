//! argus-app: the use cases. Each service takes its ports (store, gateway, prober,
//! notifier sinks) at construction, built once at cold start, and takes `now` per call.
//! The Lambda functions and `argus dev` are thin shells around these services.

pub mod config;
pub mod env;
pub mod lambda;
pub mod cost;
pub mod results;
pub mod secrets;
pub mod targets;
pub mod tsdb;

pub use config::AppConfig;
