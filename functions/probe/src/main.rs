//! probe: scheduled (EventBridge Scheduler) or a fan-out shard → ProbeService → report.

use argus_app::lambda::{classify, init_tracing, Invocation};
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
            let now = SystemClock.now_ms();
            let report = match classify(ev.payload)? {
                Invocation::Shard { targets, slot } => probe.run_ids(&targets, &slot, now).await?,
                _ => {
                    probe
                        .run(now, fan_out.as_deref().map(|f| f as &dyn FanOut))
                        .await?
                }
            };
            tracing::info!(
                probed = report.probed.len(),
                up = report.up(),
                fanned_out = report.fanned_out,
                "{report}"
            );
            Ok::<_, Error>(report.summary())
        }
    }))
    .await
}
