//! Log receiver (Argus extension): one v4 body per line, appended and flushed, for log
//! shippers and `argus dev`.

use super::{Notification, Sink, SinkError};
use crate::config::LogConfig;
use async_trait::async_trait;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

pub struct LogSink {
    conf: LogConfig,
    lock: Mutex<()>,
}

impl LogSink {
    pub fn new(conf: LogConfig) -> Self {
        LogSink {
            conf,
            lock: Mutex::new(()),
        }
    }
}

#[async_trait]
impl Sink for LogSink {
    fn kind(&self) -> &'static str {
        "log"
    }
    fn send_resolved(&self) -> bool {
        self.conf.send_resolved
    }
    async fn send(&self, n: &Notification, _timeout: Duration) -> Result<(), SinkError> {
        let mut line =
            serde_json::to_vec(&n.message(0)).map_err(|e| SinkError::permanent(e.to_string()))?;
        line.push(b'\n');
        let path = std::path::Path::new(&self.conf.path);
        let _g = self.lock.lock().await;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir).await.map_err(|e| {
                SinkError::permanent(format!(
                    "log {}: cannot create directory: {e}",
                    self.conf.path
                ))
            })?;
        }
        let mut f = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await
            .map_err(|e| SinkError::retryable(format!("log {}: {e}", self.conf.path)))?;
        f.write_all(&line)
            .await
            .map_err(|e| SinkError::retryable(format!("log {}: {e}", self.conf.path)))?;
        f.flush()
            .await
            .map_err(|e| SinkError::retryable(format!("log {}: {e}", self.conf.path)))?;
        Ok(())
    }
}
