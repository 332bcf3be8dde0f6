//! pushgateway: function URL request → Gateway (Pushgateway API) → response
//! (`argus_app::handlers::pushgateway`).

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
    let token = cold.secret(cold.env.push_token_param.as_ref()).await?;
    let gateway = Arc::new(pipeline::build_gateway(
        cold.kv.clone(),
        &cold.config,
        token,
    )?);
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<Value>| {
        let gateway = gateway.clone();
        async move { argus_app::handlers::pushgateway(&gateway, ev, SystemClock.now_ms()).await }
    }))
    .await
}
