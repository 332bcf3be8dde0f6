//! A local HTTP server for the API (`argus dev`, 127.0.0.1:9093): axum in front of
//! [`Notifier::handle_api`].

use crate::service::Notifier;
use argus_model::Clock;
use axum::body::Body;
use axum::extract::State;
use axum::response::IntoResponse;
use std::future::Future;
use std::sync::Arc;

/// Largest request body accepted (a big batch of alerts).
pub const MAX_BODY: usize = 16 << 20;

type Shared = (Arc<Notifier>, Arc<dyn Clock>);

async fn handle(
    State((n, clock)): State<Shared>,
    req: http::Request<Body>,
) -> axum::response::Response {
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => {
            return (
                http::StatusCode::PAYLOAD_TOO_LARGE,
                format!("\"request body: {e}\""),
            )
                .into_response();
        }
    };
    let resp = n
        .handle_api(http::Request::from_parts(parts, bytes), clock.now_ms())
        .await;
    let (parts, body) = resp.into_parts();
    http::Response::from_parts(parts, Body::from(body)).into_response()
}

pub fn router(notifier: Arc<Notifier>, clock: Arc<dyn Clock>) -> axum::Router {
    axum::Router::new()
        .fallback(handle)
        .with_state((notifier, clock))
}

/// Serves the API on `listener` until the process ends.
pub async fn serve(
    notifier: Arc<Notifier>,
    listener: tokio::net::TcpListener,
    clock: Arc<dyn Clock>,
) -> std::io::Result<()> {
    axum::serve(listener, router(notifier, clock)).await
}

/// Same, stopping cleanly when `shutdown` completes (Ctrl-C in `argus dev`).
pub async fn serve_with_shutdown(
    notifier: Arc<Notifier>,
    listener: tokio::net::TcpListener,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(notifier, clock))
        .with_graceful_shutdown(shutdown)
        .await
}
