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
            Ok(Arc::new(argus_store::EmbeddedKv::open(&p).with_context(
                || format!("opening the embedded store {}", p.display()),
            )?))
        }
    }
}
