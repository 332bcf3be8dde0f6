//! argus-store: the two real backends of the [`argus_model::Kv`] port, and bootstrap.
//!
//! - [`EmbeddedKv`]: a redb file, for `argus dev` and fast tests. Writes go through one
//!   writer thread that commits concurrent writes together (group commit), each with its
//!   own condition, so throughput does not pay one fsync per write.
//! - [`DynamoKv`]: DynamoDB through the AWS SDK; any endpoint via `AWS_ENDPOINT_URL`
//!   (moto in tests, LocalStack locally).
//! - [`bootstrap`]: creates the tables (from `argus_model::schema`) and the SNS topic on
//!   any AWS-compatible endpoint; idempotent.

pub mod bootstrap;
mod codec;
pub mod dynamo;
pub mod embedded;

pub use bootstrap::{bootstrap, BootstrapReport};
pub use dynamo::DynamoKv;
pub use embedded::{Durability, EmbeddedKv};

/// Loads the AWS SDK configuration once (region, credentials, `AWS_ENDPOINT_URL`).
pub async fn aws_sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// Same, with an explicit endpoint (tests, `--endpoint-url`).
pub async fn aws_sdk_config_for(endpoint: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(e) = endpoint {
        loader = loader.endpoint_url(e);
    }
    loader.load().await
}
