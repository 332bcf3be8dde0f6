//! argus-notify: Alertmanager, serverless. See README.md.

pub mod alert;
pub mod api;
pub mod config;
pub mod dedup;
mod gotmpl;
pub mod inhibit;
pub mod matcher;
pub mod nflog;
pub mod payload;
pub mod render;
pub mod route;
pub mod secret;
pub mod server;
pub mod service;
pub mod silence;
pub mod sink;
pub mod stages;
pub mod timeinterval;

pub use config::{load_config, load_config_file, load_config_in, Config, ConfigError};
pub use dedup::{needs_update, needs_update_with, Decision, NflogEntry, Reason, Unconfirmed};
pub use nflog::{NflogError, NflogRecord, NflogStore};
pub use payload::Message;
pub use server::{serve, serve_with_shutdown};
pub use service::{
    IngestReport, NotificationReport, Notifier, NotifierOptions, NotifierStats, NotifyError,
    Outcome, TickReport,
};
pub use sink::{Clients, Integration, Notification, Sink, SinkError};
