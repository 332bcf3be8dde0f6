//! The functions' environment, parsed once at cold start into typed config.
//! (Names are the contract with `infra/template.yaml`.)

use crate::config::AppConfig;
use argus_model::schema::DEFAULT_PREFIX;

/// One environment variable, unset or empty being `None`. Every read of the process
/// environment in argus-app goes through this module.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// One environment variable as it is set (an empty value is `Some("")`): the bearer
/// tokens named by `gateway.auth_token_env`.
pub fn var_as_set(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[derive(Clone, Debug)]
pub struct FunctionEnv {
    /// `ARGUS_TABLE_PREFIX`: prefix of every table name.
    pub table_prefix: String,
    /// `ARGUS_CONFIG`: path of argus.yml in the package (default /var/task/argus.yml).
    pub config_path: String,
    /// `ARGUS_CONFIG_SSM`: SSM parameter holding argus.yml (instead of the file).
    pub config_ssm: Option<String>,
    /// `ARGUS_TOPIC_ARN`: default SNS topic for `sns_configs` without `topic_arn`.
    pub topic_arn: Option<String>,
    /// `ARGUS_PUSH_TOKEN_PARAM`: SSM parameter with the gateway's bearer token.
    pub push_token_param: Option<String>,
    /// `ARGUS_API_TOKEN_PARAM`: SSM parameter with the notifier API's bearer token.
    pub api_token_param: Option<String>,
    /// `ARGUS_QUERY_TOKEN_PARAM`: SSM parameter with the query API's bearer token
    /// (only when its function URL is public; with IAM auth there is none).
    pub query_token_param: Option<String>,
    /// `AWS_LAMBDA_FUNCTION_NAME` (set by Lambda): the probe's own name, for fan-out.
    pub function_name: Option<String>,
    /// `ARGUS_LOCATION`: the location (one of argus.yml's `locations`) this probe is.
    pub location: Option<String>,
    /// `ARGUS_HOME_REGION`: region of the tables when this function runs elsewhere
    /// (a probe deployed to a remote location writes cross-region to the home tables).
    pub home_region: Option<String>,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (set by Lambda, MB): what the query function
    /// may load.
    pub memory_mb: Option<usize>,
}

impl FunctionEnv {
    pub fn from_env() -> FunctionEnv {
        Self::from_lookup(var)
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> FunctionEnv {
        FunctionEnv {
            table_prefix: get("ARGUS_TABLE_PREFIX").unwrap_or_else(|| DEFAULT_PREFIX.to_string()),
            config_path: get("ARGUS_CONFIG").unwrap_or_else(|| "/var/task/argus.yml".to_string()),
            config_ssm: get("ARGUS_CONFIG_SSM"),
            topic_arn: get("ARGUS_TOPIC_ARN"),
            push_token_param: get("ARGUS_PUSH_TOKEN_PARAM"),
            api_token_param: get("ARGUS_API_TOKEN_PARAM"),
            query_token_param: get("ARGUS_QUERY_TOKEN_PARAM"),
            function_name: get("AWS_LAMBDA_FUNCTION_NAME"),
            location: get("ARGUS_LOCATION"),
            home_region: get("ARGUS_HOME_REGION"),
            memory_mb: get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").and_then(|m| m.parse().ok()),
        }
    }

    /// Loads argus.yml from SSM or the package; a missing file means the defaults
    /// (no rules, default modules) so a bare deploy still probes and pushes. The SSM
    /// parameter holds either argus.yml itself or a bundle from `argus config push`
    /// (argus.yml with its files, written out under the temp directory). A
    /// `prometheus_config:` is applied (intervals, rule files, modules, Alertmanagers).
    pub async fn load_config(&self, sdk: &aws_config::SdkConfig) -> anyhow::Result<AppConfig> {
        Ok(self.load_config_versioned(sdk).await?.0)
    }

    /// [`load_config`](Self::load_config), with the SSM version read (the one a warm
    /// function's watcher starts from; `None` for a packaged file).
    pub async fn load_config_versioned(
        &self,
        sdk: &aws_config::SdkConfig,
    ) -> anyhow::Result<(AppConfig, Option<i64>)> {
        if let Some(param) = &self.config_ssm {
            let client = aws_sdk_ssm::Client::new(sdk);
            let out = client
                .get_parameter()
                .name(param)
                .with_decryption(true)
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "SSM parameter {param}: {}",
                        aws_sdk_ssm::error::DisplayErrorContext(e)
                    )
                })?;
            let p = out
                .parameter
                .ok_or_else(|| anyhow::anyhow!("SSM parameter {param} has no value"))?;
            let text = p.value.unwrap_or_default();
            let mut cfg = if crate::config_store::is_bundle(&text) {
                let b = crate::config_store::Bundle::from_json(&text)?;
                let dir = std::env::temp_dir().join("argus-config").join("cold-start");
                let _ = std::fs::remove_dir_all(&dir);
                AppConfig::load(&b.materialize(&dir)?)?
            } else {
                AppConfig::parse(&text, param)?
            };
            crate::promconfig::prepare(&mut cfg)?;
            return Ok((cfg, Some(p.version)));
        }
        let path = std::path::Path::new(&self.config_path);
        if path.exists() {
            let mut cfg = AppConfig::load(path)?;
            crate::promconfig::prepare(&mut cfg)?;
            Ok((cfg, None))
        } else {
            tracing::warn!(path = %self.config_path, "no argus.yml in the package; using defaults");
            Ok((AppConfig::default(), None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let e = FunctionEnv::from_lookup(|_| None);
        assert_eq!(e.table_prefix, "argus-");
        assert_eq!(e.config_path, "/var/task/argus.yml");
        let e =
            FunctionEnv::from_lookup(|k| (k == "ARGUS_TABLE_PREFIX").then(|| "prod-".to_string()));
        assert_eq!(e.table_prefix, "prod-");
    }
}
