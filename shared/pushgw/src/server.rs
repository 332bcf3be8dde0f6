//! A local HTTP/1.1 server for the gateway (`argus dev`, tests, benchmarks).

use crate::Gateway;
use argus_model::Clock;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;

/// Serves the gateway on `listener` until the task is dropped/aborted, which also
/// ends its open connections (each runs on a task this future owns, so nothing keeps
/// using the gateway after `argus dev` stops it). Bodies over the configured limit get
/// 413.
pub async fn serve(gw: Arc<Gateway>, listener: tokio::net::TcpListener, clock: Arc<dyn Clock>) {
    // Connection tasks are owned here: dropping this future aborts them.
    let mut conns = tokio::task::JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let (stream, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "pushgateway accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let gw = gw.clone();
        let clock = clock.clone();
        conns.spawn(async move {
            let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let gw = gw.clone();
                let clock = clock.clone();
                async move {
                    let limit = gw.config().body_limit_bytes;
                    let (parts, body) = req.into_parts();
                    let resp = match Limited::new(body, limit + 1).collect().await {
                        Ok(b) => {
                            let req = http::Request::from_parts(parts, b.to_bytes());
                            gw.handle(req, clock.now_ms()).await
                        }
                        Err(e)
                            if e.downcast_ref::<http_body_util::LengthLimitError>()
                                .is_some() =>
                        {
                            http::Response::builder()
                                .status(http::StatusCode::PAYLOAD_TOO_LARGE)
                                .body(Bytes::from(format!(
                                    "request body exceeds the limit of {limit} bytes\n"
                                )))
                                .expect("static response parts are valid")
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
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!(error = %e, "pushgateway connection ended with an error");
            }
        });
    }
}
