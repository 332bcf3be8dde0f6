//! argus-notify: Alertmanager, serverless. See README.md.

pub mod alert;
pub mod config;
pub mod dedup;
pub mod inhibit;
pub mod matcher;
pub mod payload;
pub mod route;
pub mod silence;
pub mod timeinterval;

pub use config::{load_config, Config, ConfigError};
pub use dedup::{needs_update, Decision, NflogEntry, Reason};
pub use payload::Message;
