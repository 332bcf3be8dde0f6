//! query: function URL request → QueryService (Prometheus HTTP API and the status page,
//! read-only) → response (`argus_app::handlers::query`).

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
    let token = cold.secret(cold.env.query_token_param.as_ref()).await?;
    let mut config = cold.config.clone();
    argus_app::query::fit_to_function(&mut config, cold.env.memory_mb.unwrap_or(512));
    let (svc, problems) = argus_app::query::build_query(cold.kv.clone(), &config, token)?;
    for p in problems {
        tracing::warn!("rule files: {p}");
    }
    let svc = Arc::new(svc);
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<Value>| {
        let svc = svc.clone();
        async move { argus_app::handlers::query(&svc, ev, SystemClock.now_ms()).await }
    }))
    .await
}
