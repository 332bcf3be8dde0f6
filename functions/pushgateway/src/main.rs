//! pushgateway: function URL request → Gateway (Pushgateway API) → response
//! (`argus_app::handlers::pushgateway`). A new configuration version in SSM rebuilds
//! the gateway (job TTLs, admin API) without a redeploy (`argus_app::warm`).

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
    let token = cold.secret(cold.env.push_token_param.as_ref()).await?;
    let warm = Arc::new(argus_app::warm::pushgateway(&cold, token, SystemClock.now_ms()).await?);
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<Value>| {
        let warm = warm.clone();
        async move {
            let now = SystemClock.now_ms();
            let gateway = warm.service(now).await;
            argus_app::handlers::pushgateway(&gateway, ev, now).await
        }
    }))
    .await
}
