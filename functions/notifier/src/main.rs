//! notifier: stream records or schedule → Notifier.tick; function URL → Alertmanager v2
//! API (`argus_app::handlers::notifier`). A new configuration version in SSM rebuilds
//! the notifier without a redeploy (`argus_app::warm`).

use argus_app::lambda::init_tracing;
use argus_app::pipeline::ColdStart;
use argus_model::{Clock, SystemClock};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let cold = ColdStart::load().await?;
    let token = cold.secret(cold.env.api_token_param.as_ref()).await?;
    let warm = Arc::new(argus_app::warm::notifier(&cold, token, SystemClock.now_ms()).await?);
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<Value>| {
        let warm = warm.clone();
        async move {
            let now = SystemClock.now_ms();
            let notifier = warm.service(now).await;
            argus_app::handlers::notifier(&notifier, ev, now).await
        }
    }))
    .await
}
