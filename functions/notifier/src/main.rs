//! notifier: stream records or schedule → Notifier.tick; function URL → Alertmanager v2 API.

use argus_app::lambda::{classify, init_tracing, url_response, Invocation};
use argus_app::pipeline::{self, ColdStart};
use argus_model::{Clock, SystemClock};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let cold = ColdStart::load().await?;
    let token = cold.secret(cold.env.api_token_param.as_ref()).await?;
    let notifier = Arc::new(
        pipeline::build_notifier(cold.kv.clone(), &cold.config, Some(&cold.sdk), token, None)
            .await?,
    );
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<Value>| {
        let notifier = notifier.clone();
        async move {
            let now = SystemClock.now_ms();
            match classify(ev.payload)? {
                Invocation::Http(req) => {
                    Ok::<_, Error>(url_response(notifier.handle_api(*req, now).await))
                }
                _ => {
                    let report = notifier.tick(now).await?;
                    for n in &report.notifications {
                        tracing::info!("{n}");
                    }
                    for e in &report.errors {
                        tracing::warn!("{e}");
                    }
                    Ok(serde_json::to_value(&report)?)
                }
            }
        }
    }))
    .await
}
