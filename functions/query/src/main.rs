//! query: function URL request → QueryService (Prometheus HTTP API, read-only) → response.

use argus_app::lambda::{classify, init_tracing, url_response, Invocation};
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
    // What fits the function: a loaded sample costs up to ~64 bytes in memory (value,
    // time, its series' share), so `query.max_samples` is capped by the memory size;
    // and a query ends before the invocation's own timeout (30 s) does.
    let memory_mb: usize = std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(512);
    config.query.max_samples = config.query.max_samples.min(memory_mb * (1 << 20) / 64);
    config.query.timeout = config.query.timeout.min(std::time::Duration::from_secs(25));
    let (svc, problems) = argus_app::query::build_query(cold.kv.clone(), &config, token)?;
    for p in problems {
        tracing::warn!("rule files: {p}");
    }
    let svc = Arc::new(svc);
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<Value>| {
        let svc = svc.clone();
        async move {
            match classify(ev.payload)? {
                Invocation::Http(req) => {
                    Ok::<_, Error>(url_response(svc.handle(*req, SystemClock.now_ms()).await))
                }
                other => Err(format!(
                    "the query function serves function URL requests only, got {other:?}"
                )
                .into()),
            }
        }
    }))
    .await
}
