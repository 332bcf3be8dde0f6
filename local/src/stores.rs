//! Which store a CLI command talks to: the embedded file (default, what `argus dev`
//! uses) or DynamoDB (`--aws`, or any endpoint with `--endpoint-url`).

use anyhow::{Context, Result};
use argus_model::Kv;
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args, Clone, Debug)]
pub struct StoreArgs {
    /// Data directory of the embedded store (used unless --aws or --endpoint-url).
    #[arg(long, global = true, default_value = ".argus", env = "ARGUS_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Use DynamoDB (credentials and region from the usual AWS environment).
    #[arg(long, global = true)]
    pub aws: bool,
    /// Use DynamoDB at this AWS-compatible endpoint (LocalStack, moto).
    #[arg(long = "store-endpoint", global = true, env = "ARGUS_STORE_ENDPOINT")]
    pub endpoint: Option<String>,
    /// Table name prefix in DynamoDB.
    #[arg(long, global = true, default_value = argus_model::schema::DEFAULT_PREFIX, env = "ARGUS_TABLE_PREFIX")]
    pub table_prefix: String,
}

impl StoreArgs {
    pub fn embedded_path(&self) -> PathBuf {
        self.data_dir.join("argus.redb")
    }

    pub async fn open(&self) -> Result<Arc<dyn Kv>> {
        if self.aws || self.endpoint.is_some() {
            let conf = argus_store::aws_sdk_config_for(self.endpoint.as_deref()).await;
            Ok(Arc::new(argus_store::DynamoKv::from_conf(
                &conf,
                self.table_prefix.clone(),
            )))
        } else {
            let p = self.embedded_path();
            match argus_store::EmbeddedKv::open(&p) {
                Ok(kv) => Ok(Arc::new(kv)),
                // A running `argus dev` holds the file: use its store over HTTP.
                Err(e) => match self.running_dev().filter(|_| is_locked(&e)) {
                    Some(link) => Ok(argus_app::devlink::RemoteKv::new(link)),
                    None => Err(e)
                        .with_context(|| format!("opening the embedded store {}", p.display())),
                },
            }
        }
    }

    /// The running `argus dev` of this data directory, if its store is locked by it
    /// and it left its link file (URL and token).
    pub fn running_dev(&self) -> Option<argus_app::devlink::DevLink> {
        if self.aws || self.endpoint.is_some() {
            return None;
        }
        argus_app::devlink::DevLink::read(&self.data_dir).ok()
    }
}

/// The embedded store's "held by another process" error.
pub fn is_locked(e: &argus_model::StoreError) -> bool {
    e.to_string().contains("already open in another process")
}
