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

/// How long one AWS call may take and how often the SDK retries it: every client built
/// from [`aws_sdk_config`] (DynamoDB, SNS, Lambda, SSM) inherits these, so a throttled
/// or unreachable service costs a bounded time of the invocation, never its whole
/// timeout. Retries use the SDK's standard mode (exponential backoff with jitter,
/// throttling and 5xx and timeouts retried, a retry quota per client).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AwsLimits {
    /// One HTTP attempt (DynamoDB answers in milliseconds; a stuck connection does not).
    pub attempt_timeout: std::time::Duration,
    /// The whole call, retries included.
    pub operation_timeout: std::time::Duration,
    pub connect_timeout: std::time::Duration,
    /// Attempts per call, the first included.
    pub max_attempts: u32,
}

impl Default for AwsLimits {
    fn default() -> Self {
        AwsLimits {
            attempt_timeout: std::time::Duration::from_secs(2),
            operation_timeout: std::time::Duration::from_secs(6),
            connect_timeout: std::time::Duration::from_secs(1),
            max_attempts: 4,
        }
    }
}

impl AwsLimits {
    pub fn retry_config(&self) -> aws_config::retry::RetryConfig {
        aws_config::retry::RetryConfig::standard()
            .with_max_attempts(self.max_attempts)
            .with_initial_backoff(std::time::Duration::from_millis(25))
            .with_max_backoff(std::time::Duration::from_secs(1))
    }

    pub fn timeout_config(&self) -> aws_config::timeout::TimeoutConfig {
        aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(self.connect_timeout)
            .operation_attempt_timeout(self.attempt_timeout)
            .operation_timeout(self.operation_timeout)
            .build()
    }
}

/// Loads the AWS SDK configuration once (region, credentials, `AWS_ENDPOINT_URL`), with
/// the default [`AwsLimits`].
pub async fn aws_sdk_config() -> aws_config::SdkConfig {
    aws_sdk_config_with(None, AwsLimits::default()).await
}

/// Same, with an explicit endpoint (tests, `--endpoint-url`).
pub async fn aws_sdk_config_for(endpoint: Option<&str>) -> aws_config::SdkConfig {
    aws_sdk_config_with(endpoint, AwsLimits::default()).await
}

/// Same, with explicit limits (the fault tests use short attempt timeouts).
pub async fn aws_sdk_config_with(
    endpoint: Option<&str>,
    limits: AwsLimits,
) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(limits.retry_config())
        .timeout_config(limits.timeout_config());
    if let Some(e) = endpoint {
        loader = loader.endpoint_url(e);
    }
    loader.load().await
}
