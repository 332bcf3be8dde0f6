//! notifier: stream records or schedule → Notifier.tick; function URL → Alertmanager v2
//! API (`argus_app::handlers::notifier`).

use argus_app::lambda::init_tracing;
use argus_app::pipeline::{self, ColdStart};
use argus_model::{Clock, SystemClock};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let cold = ColdStart::load().await?;
    let token = cold.secret(cold.env.api_token_param.as_ref()).await?;
    let notifier = Arc::new(
        pipeline::build_notifier(cold.kv.clone(), &cold.config, Some(&cold.sdk), token, None)
            .await?,
    );
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<Value>| {
        let notifier = notifier.clone();
        async move { argus_app::handlers::notifier(&notifier, ev, SystemClock.now_ms()).await }
    }))
    .await
}
