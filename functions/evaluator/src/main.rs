//! evaluator: scheduled tick → Evaluator (snapshot, rules, state) → alerts to the
//! notifier's store (`argus_app::handlers::evaluator`).

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
    let gateway = Arc::new(pipeline::build_gateway(
        cold.kv.clone(),
        &cold.config,
        None,
    )?);
    // The evaluator only ingests into the notifier's store; the notifier function sends.
    let notifier = Arc::new(
        pipeline::build_notifier(cold.kv.clone(), &cold.config, Some(&cold.sdk), None, None)
            .await?,
    );
    let (mut evaluator, problems) =
        pipeline::build_evaluator(cold.kv.clone(), &cold.config, gateway, notifier)?;
    if let Some(rw) =
        pipeline::build_remote_write(cold.kv.clone(), &cold.config, Some(&cold.sdk)).await?
    {
        evaluator = evaluator.with_remote_write(rw, pipeline::remote_write_budget(&cold.config));
    }
    for p in &problems {
        tracing::error!("rule file left out: {p}");
    }
    let evaluator = Arc::new(evaluator);
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<Value>| {
        let evaluator = evaluator.clone();
        async move { argus_app::handlers::evaluator(&evaluator, ev, SystemClock.now_ms()).await }
    }))
    .await
}
