//! A local HTTP/1.1 listener for the API (`argus dev`, tests). Bodies (POSTed query
//! forms) are capped at 1 MiB.

use crate::QueryService;
use argus_model::Clock;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;

const BODY_LIMIT: usize = 1 << 20;

/// Serves `svc` on `listener` until the future is dropped (which ends its connections).
pub async fn serve(
    svc: Arc<QueryService>,
    listener: tokio::net::TcpListener,
    clock: Arc<dyn Clock>,
) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let (stream, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "query API accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let svc = svc.clone();
        let clock = clock.clone();
        conns.spawn(async move {
            let handler = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let svc = svc.clone();
                let clock = clock.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    let resp = match Limited::new(body, BODY_LIMIT).collect().await {
                        Ok(b) => {
                            let req = http::Request::from_parts(parts, b.to_bytes());
                            svc.handle(req, clock.now_ms()).await
                        }
                        Err(e) => http::Response::builder()
                            .status(http::StatusCode::BAD_REQUEST)
                            .body(Bytes::from(format!("reading request body: {e}\n")))
                            .expect("static response parts are valid"),
                    };
                    Ok::<_, Infallible>(resp.map(Full::new))
                }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), handler)
                .await
            {
                tracing::debug!(error = %e, "query API connection ended with an error");
            }
        });
    }
}
