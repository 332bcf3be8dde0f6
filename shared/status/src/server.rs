//! A local HTTP/1.1 server for the pages (`argus dev`'s query listener until the query
//! API mounts [`StatusPage`] as its fallback; tests; the benchmark). Paths that are
//! not the status page's get a plain 404.

use crate::StatusPage;
use argus_model::Clock;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;

/// Serves `page` on `listener` until the task is dropped (which ends its connections).
pub async fn serve(
    page: Arc<StatusPage>,
    listener: tokio::net::TcpListener,
    clock: Arc<dyn Clock>,
) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let (stream, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "status page accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let page = page.clone();
        let clock = clock.clone();
        conns.spawn(async move {
            let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let page = page.clone();
                let clock = clock.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    // The pages take no body; a small limit keeps a client from
                    // streaming one forever.
                    let body = Limited::new(body, 64 * 1024)
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    let req = http::Request::from_parts(parts, body);
                    let resp = match page.handle(req, clock.now_ms()).await {
                        Some(r) => r,
                        None => http::Response::builder()
                            .status(http::StatusCode::NOT_FOUND)
                            .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
                            .body(Bytes::from_static(b"404 page not found\n"))
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
                tracing::debug!(error = %e, "status connection ended with an error");
            }
        });
    }
}
