//! probe: scheduled (EventBridge Scheduler) or a fan-out shard → ProbeService → report
//! (`argus_app::handlers::probe`).

use argus_app::lambda::init_tracing;
use argus_app::pipeline::{self, ColdStart};
use argus_app::probe_svc::{FanOut, LambdaFanOut};
use argus_model::{Clock, SystemClock};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let cold = ColdStart::load().await?;
    let gateway = Arc::new(pipeline::build_gateway(
        cold.kv.clone(),
        &cold.config,
        None,
    )?);
    let probe = Arc::new(pipeline::build_probe(
        cold.kv.clone(),
        &cold.config,
        gateway,
    )?);
    let fan_out = cold.env.function_name.clone().map(|name| {
        Arc::new(LambdaFanOut {
            client: aws_sdk_lambda::Client::new(&cold.sdk),
            function_name: name,
        })
    });
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<Value>| {
        let (probe, fan_out) = (probe.clone(), fan_out.clone());
        async move {
            let fan_out = fan_out.as_deref().map(|f| f as &dyn FanOut);
            argus_app::handlers::probe(&probe, fan_out, ev, SystemClock.now_ms()).await
        }
    }))
    .await
}
