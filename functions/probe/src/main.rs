//! probe: scheduled (EventBridge Scheduler) or a fan-out shard → ProbeService → report
//! (`argus_app::handlers::probe`). A new configuration version in SSM rebuilds the
//! probe service without a redeploy (`argus_app::warm`).

use argus_app::lambda::init_tracing;
use argus_app::pipeline::ColdStart;
use argus_app::probe_svc::{FanOut, LambdaFanOut};
use argus_model::{Clock, SystemClock};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let cold = ColdStart::load().await?;
    let warm = Arc::new(argus_app::warm::probe(&cold, SystemClock.now_ms()).await?);
    let fan_out = cold.env.function_name.clone().map(|name| {
        Arc::new(LambdaFanOut {
            client: aws_sdk_lambda::Client::new(&cold.sdk),
            function_name: name,
        })
    });
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<Value>| {
        let (warm, fan_out) = (warm.clone(), fan_out.clone());
        async move {
            let now = SystemClock.now_ms();
            let probe = warm.service(now).await;
            let fan_out = fan_out.as_deref().map(|f| f as &dyn FanOut);
            argus_app::handlers::probe(&probe, fan_out, ev, now).await
        }
    }))
    .await
}
