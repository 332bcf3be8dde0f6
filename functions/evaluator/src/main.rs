//! evaluator: scheduled tick → Evaluator (snapshot, rules, state) → alerts to the
//! notifier's store (`argus_app::handlers::evaluator`). A new configuration version in
//! SSM rebuilds the evaluator without a redeploy (`argus_app::warm`).

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
    let warm = Arc::new(argus_app::warm::evaluator(&cold, SystemClock.now_ms()).await?);
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<Value>| {
        let warm = warm.clone();
        async move {
            let now = SystemClock.now_ms();
            let evaluator = warm.service(now).await;
            argus_app::handlers::evaluator(&evaluator, ev, now).await
        }
    }))
    .await
}
